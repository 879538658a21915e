//! `.dockerignore` tables: the cases moby's patternmatcher and ignorefile tests establish, restated as ours.

use super::ignore::{PatternMatcher, clean, read_ignore_file};

fn matches(patterns: &[&str], path: &str) -> bool {
    PatternMatcher::new(patterns).unwrap_or_else(|e| panic!("{patterns:?}: {e}")).matches(path)
}

#[test]
fn single_pattern_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("*", "fileutils.go", true),
        ("*.go", "fileutils.go", true),
        ("**", "file", true),
        ("**", "file/", true),
        ("**/", "file", true),
        ("**", "/", true),
        ("**", "dir/file", true),
        ("**/", "dir/file/", true),
        ("**/**", "dir/file", true),
        ("dir/**", "dir/file", true),
        ("dir/**", "dir/dir2/file/", true),
        ("**/dir", "dir", true),
        ("**/dir", "dir/file", true),
        ("**/dir2/*", "dir/dir2/file", true),
        ("**/dir2/*", "dir/dir2/file/", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**file", "file", true),
        ("**file", "dir/dir/file", true),
        ("**/file", "dir/dir/file", true),
        ("**/file*", "dir/dir/file.txt", true),
        ("**/file*txt", "dir/dir/file.txt", true),
        ("**/**/*.txt", "dir/dir/file.txt", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("**/*.txt", "file.txt", true),
        ("**/**/*.txt", "file.txt", true),
        ("a**/*.txt", "a/file.txt", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("a/*.txt", "a/dir/file.txt", false),
        ("a/*.txt", "a/file.txt", true),
        ("a/*.txt**", "a/file.txt", true),
        ("a[b-d]e", "ae", false),
        ("a[b-d]e", "ace", true),
        ("a[b-d]e", "aae", false),
        ("a[^b-d]e", "aze", true),
        (".*", ".foo", true),
        (".*", "foo", false),
        ("abc.def", "abcdef", false),
        ("abc.def", "abc.def", true),
        ("abc?def", "abcZdef", true),
        ("abc?def", "abcdef", false),
        ("a\\\\", "a\\", true),
        ("a\\*b", "a*b", true),
        ("**/foo/bar", "foo/bar", true),
        ("**/foo/bar", "dir/dir2/foo/bar", true),
        ("abc/**", "abc", false),
        ("abc/**", "abc/def/ghi", true),
        ("**/.foo", ".foo", true),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a(b)c/def", "a(b)c/xyz", false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true),
        // a pattern for a directory excludes what is inside it
        ("docs", "docs/README.md", true),
        ("docs/", "docs/README.md", true),
        ("a*", "ab/c", true),
        ("a*/b", "a/c/b", false),
        // ./ means the context root (a leading / is dropped when the ignore file is read, see below)
        ("./target", "target/debug/app", true),
        ("target", "src/target", false),
    ];
    for (pattern, path, want) in cases {
        assert_eq!(matches(&[pattern], path), *want, "pattern {pattern:?} path {path:?}");
    }
}

#[test]
fn exceptions_and_order() {
    let cases: &[(&[&str], &str, bool)] = &[
        (&["!fileutils.go", "*.go"], "fileutils.go", true),
        (&["*.go", "!fileutils.go"], "fileutils.go", false),
        (&["docs", "!docs/README.md"], "docs/README.md", false),
        (&["docs/", "!docs/README.md"], "docs/README.md", false),
        (&["docs/*", "!docs/README.md"], "docs/README.md", false),
        (&["docs", "!docs/README.md"], "docs/other.md", true),
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (&["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", true),
        (&["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false),
        (&[], "/any/path/there", false),
        (&["", "  ", "docs"], "docs", true),
        (&["docs", "  !docs/README.md  "], "docs/README.md", false),
    ];
    for (patterns, path, want) in cases {
        assert_eq!(matches(patterns, path), *want, "patterns {patterns:?} path {path:?}");
    }
    assert!(PatternMatcher::new(&["docs", "!docs/README.md"]).unwrap().has_exclusions());
    assert!(!PatternMatcher::new(&["docs"]).unwrap().has_exclusions());
}

#[test]
fn malformed_patterns_are_errors() {
    assert!(PatternMatcher::new(&["!"]).is_err());
    assert!(PatternMatcher::new(&["["]).is_err());
    assert!(PatternMatcher::new(&["a[b"]).is_err());
}

#[test]
fn ignore_file_reading() {
    let text = "\u{feff}# comment\n\n  node_modules  \n/abs/path\n!/keep/this\n ! spaced\n./dot/slash\na/../b\n  # not a comment\n*.log\n";
    assert_eq!(
        read_ignore_file(text),
        vec!["node_modules", "abs/path", "!keep/this", "!spaced", "dot/slash", "b", "# not a comment", "*.log"]
    );
    assert_eq!(read_ignore_file("/\n"), vec!["/"]);
    let from_file = read_ignore_file("/node_modules\n");
    assert!(PatternMatcher::new(&from_file).unwrap().matches("node_modules/x"));
}

#[test]
fn go_clean() {
    for (input, want) in [
        ("", "."),
        ("a/", "a"),
        ("./a", "a"),
        ("a//b", "a/b"),
        ("/a/../b", "/b"),
        ("../x", "../x"),
        ("/..", "/"),
        ("a/b/..", "a"),
    ] {
        assert_eq!(clean(input), want, "{input:?}");
    }
}

#[test]
fn reinclusion_below_excluded_directories() {
    let pm = PatternMatcher::new(&["node_modules", "secret", "!secret/public", "!**/keep.txt", "!README.md"]).unwrap();
    assert!(pm.may_reinclude_under("secret"));
    assert!(pm.may_reinclude_under("node_modules"), "`**/keep.txt` may match anywhere");
    let pm = PatternMatcher::new(&["node_modules", "secret", "!secret/public", "!README.md"]).unwrap();
    assert!(!pm.may_reinclude_under("node_modules"));
    assert!(!pm.may_reinclude_under("secret/private"));
    assert!(pm.may_reinclude_under("secret/public"));
}

/// Issue 13, finding 9: the indexed matcher gives moby's answer (every pattern tried in order) for every path, on
/// a generated mix of exact, prefix, suffix and glob patterns with exceptions, rooted and wildcard-first.
#[test]
fn the_index_agrees_with_trying_every_pattern() {
    let parts = ["a", "b", "src", "logs", "x.txt", "y.log", "node_modules", "tmp-1", "dir"];
    let shapes = [
        "{0}",
        "{0}/{1}",
        "{0}/**",
        "**/{1}",
        "{0}/*.log",
        "*/{1}",
        "{0}/**/{1}",
        "**",
        "{0}?",
        "{0}/[xy].*",
        "**{1}",
        "{0}**/*.txt",
        "!{0}/{1}",
        "!**/{1}",
        "{0}/{1}/**",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut paths = Vec::new();
    for _ in 0..300 {
        let depth = 1 + next(4);
        let p: Vec<&str> = (0..depth).map(|_| parts[next(parts.len())]).collect();
        paths.push(p.join("/"));
    }
    for round in 0..60 {
        let n = 1 + next(12);
        let patterns: Vec<String> = (0..n)
            .map(|_| {
                let shape = shapes[next(shapes.len())];
                shape.replace("{0}", parts[next(parts.len())]).replace("{1}", parts[next(parts.len())])
            })
            .collect();
        let m = PatternMatcher::new(&patterns).unwrap_or_else(|e| panic!("{patterns:?}: {e}"));
        for path in &paths {
            assert_eq!(m.matches(path), m.matches_every_pattern(path), "round {round}: {patterns:?} on {path}");
        }
    }
}

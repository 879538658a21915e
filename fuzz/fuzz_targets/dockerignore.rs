//! The `.dockerignore` matcher: reading the file, compiling its patterns, matching paths.
//!
//! The input is a `.dockerignore` file; its lines that start with `>` are not patterns but paths to match (when
//! there are none, paths are made from the patterns themselves). Properties, for every path:
//! - the indexed matcher agrees with moby's loop over every pattern (`matches_every_pattern`);
//! - a directory that is excluded while something below it is not is one the walk must enter
//!   (`may_reinclude_under`), or that file would be lost from the context;
//! - appending the path itself as a pattern excludes it, and appending `!path` after that includes it again;
//!   a pattern followed by its own `!` exception excludes nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use octopush_fuzz::ignore::{PatternMatcher, read_ignore_file};

/// Bounds that keep one run fast (every matcher built compiles its globs to regexes); the interesting structure
/// fits well within them.
const MAX_PATTERNS: usize = 32;
const MAX_PATHS: usize = 16;
/// How many paths and patterns the checks that build a new matcher each look at.
const REBUILDS: usize = 3;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (path_lines, ignore_lines): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with('>'));
    let patterns: Vec<String> = read_ignore_file(&ignore_lines.join("\n")).into_iter().take(MAX_PATTERNS).collect();
    let mut paths: Vec<String> = path_lines.iter().filter_map(|l| relative(&l[1..])).collect();
    if paths.is_empty() {
        paths = patterns.iter().flat_map(|p| paths_like(p)).collect();
    }
    paths.truncate(MAX_PATHS);
    // Raw lines too, as `--exclude=` flags reach the matcher without the file's cleaning.
    let raw: Vec<&str> = ignore_lines.iter().copied().take(MAX_PATTERNS).collect();
    if let Ok(pm) = PatternMatcher::new(&raw) {
        paths.iter().for_each(|p| check_agrees(&pm, p));
    }
    let Ok(pm) = PatternMatcher::new(&patterns) else { return };
    for path in &paths {
        check_agrees(&pm, path);
        check_walk(&pm, path);
    }
    for path in paths.iter().filter(|p| is_literal(p)).take(REBUILDS) {
        let mut with = patterns.clone();
        with.push(path.clone());
        let pm = PatternMatcher::new(&with).expect("a literal path is a valid pattern");
        assert!(pm.matches(path), "{with:?} does not exclude {path:?}");
        with.push(format!("!{path}"));
        let pm = PatternMatcher::new(&with).expect("a literal exception is a valid pattern");
        assert!(!pm.matches(path), "{with:?} still excludes {path:?}");
    }
    // Not for a pattern with spaces around it: the matcher trims a pattern (and cleans it again), but not what
    // follows a `!` (moby's patternmatcher alike), so `/\t*` in a file is `\t*` after reading and `*` when
    // matched, while `!\t*` is an exception for names starting with a tab (fuzz/corpus/dockerignore/leading-tab).
    let plain = |p: &&String| !p.starts_with('!') && *p != "/" && p.trim() == p.as_str();
    for p in patterns.iter().filter(plain).take(REBUILDS) {
        let pair = [p.clone(), format!("!{p}")];
        let pm = PatternMatcher::new(&pair).expect("a valid pattern makes a valid exception");
        for path in &paths {
            assert!(!pm.matches(path), "{pair:?} excludes {path:?}");
        }
    }
});

fn check_agrees(pm: &PatternMatcher, path: &str) {
    assert_eq!(pm.matches(path), pm.matches_every_pattern(path), "the index and moby's loop disagree on {path:?}");
}

/// Every excluded directory above a path that is not excluded must be walked into.
fn check_walk(pm: &PatternMatcher, path: &str) {
    if pm.matches(path) {
        return;
    }
    for (i, _) in path.match_indices('/') {
        let dir = &path[..i];
        if pm.matches(dir) {
            assert!(pm.may_reinclude_under(dir), "{dir:?} is excluded and not walked, but {path:?} is included");
        }
    }
}

/// A clean relative path (`a/b`), as the context walk names files; `None` when nothing is left.
fn relative(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split('/').filter(|p| !p.is_empty() && *p != "." && *p != "..").collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Paths a pattern is about: its wildcards filled in, and a file below it.
fn paths_like(pattern: &str) -> Vec<String> {
    let p = pattern.trim_start_matches('!');
    let filled: String = p
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | '\\'))
        .map(|c| match c {
            '*' => 'x',
            '?' => 'y',
            c => c,
        })
        .collect();
    relative(&filled).map(|f| vec![format!("{f}/sub/file"), f]).unwrap_or_default()
}

/// A path that, written as a pattern, stands for itself alone.
fn is_literal(path: &str) -> bool {
    !path.starts_with('!') && !path.contains(['*', '?', '[', ']', '\\']) && path.trim() == path
}

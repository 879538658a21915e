//! `.dockerignore` files and moby's `patternmatcher` semantics, ported: `**`, `*`, `?`, `[...]`, `\` escapes,
//! `!` exceptions, patterns cleaned like Go's `filepath.Clean` (a leading `/` or `./` means the context root),
//! the last matching pattern wins, and a pattern that matches a parent directory matches everything inside it.
//!
//! At scale (issue 13, finding 9: 10,000 patterns on 50,000 files took minutes) the patterns are compiled once and
//! indexed: exact paths, `dir/**` prefixes and `**/name` suffixes are hash lookups of the path's prefixes and
//! suffixes, and globs are tried only when their literal first component is the path's (or they start with a
//! wildcard). Which patterns hit is then replayed in order, so the last-match-wins result is moby's.

use std::collections::HashMap;
use std::path::Path;

/// A compiled list of patterns.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
    index: Index,
}

/// Pattern numbers by what a path must be, start with or end with, or by a glob's literal first component.
#[derive(Debug, Clone, Default)]
struct Index {
    exact: HashMap<String, Vec<usize>>,
    prefix: HashMap<String, Vec<usize>>,
    suffix: HashMap<String, Vec<usize>>,
    /// `Kind::Suffix` patterns `**/name`, which also match the path `name` itself.
    whole: HashMap<String, Vec<usize>>,
    /// Globs by their leading literal directories (`logs/run1` for `logs/run1/*.log`): tried only on paths under
    /// them.
    regex_by_dir: HashMap<String, Vec<usize>>,
    /// Globs whose first component has a wildcard: tried on every path.
    regex_any: Vec<usize>,
}

impl Index {
    fn add(&mut self, i: usize, p: &Pattern) {
        let key = |m: &mut HashMap<String, Vec<usize>>, k: &str| m.entry(k.to_string()).or_default().push(i);
        match &p.kind {
            Kind::Exact => key(&mut self.exact, &p.cleaned),
            Kind::Prefix => key(&mut self.prefix, &p.cleaned[..p.cleaned.len() - 2]),
            Kind::Suffix => {
                let suffix = &p.cleaned[2..];
                key(&mut self.suffix, suffix);
                if let Some(s) = suffix.strip_prefix('/') {
                    key(&mut self.whole, s);
                }
            }
            Kind::Regex(_) => {
                let literal = |c: &&&str| !c.contains(['*', '?', '[', ']', '\\']);
                let parts: Vec<&str> = p.cleaned.split('/').collect();
                // The last component is the one the glob is in when all the others are literal.
                let dirs = parts[..parts.len() - 1].iter().take_while(literal).count();
                if dirs == 0 {
                    self.regex_any.push(i);
                } else {
                    key(&mut self.regex_by_dir, &parts[..dirs].join("/"));
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    /// `dir/**`: everything under `dir/`.
    Prefix,
    /// `**/name`: anything ending so.
    Suffix,
    Regex(regex::Regex),
}

impl PatternMatcher {
    /// Compiles patterns as written in a `.dockerignore` (after [`read_ignore_file`]) or `--exclude=` flags.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let mut pm = PatternMatcher::default();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean(p);
            let exclusion = p.starts_with('!');
            if exclusion {
                if p.len() == 1 {
                    return Err("illegal exclusion pattern: \"!\"".into());
                }
                p.remove(0);
                pm.exclusions = true;
            }
            let kind = compile(&p).map_err(|e| format!("invalid pattern {p:?}: {e}"))?;
            let pattern = Pattern { cleaned: p, exclusion, kind };
            pm.index.add(pm.patterns.len(), &pattern);
            pm.patterns.push(pattern);
        }
        Ok(pm)
    }

    /// Whether any pattern is an `!` exception (then excluded directories must still be walked).
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether an `!` exception could re-include something below the excluded directory `dir`: only then must the
    /// walk go into it (so an excluded `node_modules` is not listed because some unrelated `!README.md` exists).
    pub fn may_reinclude_under(&self, dir: &str) -> bool {
        let dirs: Vec<&str> = dir.split('/').collect();
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            let parts: Vec<&str> = p.cleaned.split('/').collect();
            for (i, d) in dirs.iter().enumerate() {
                let Some(part) = parts.get(i) else { return true };
                if part.contains("**") {
                    return true;
                }
                if !glob_match(part, d).unwrap_or(true) {
                    return false;
                }
            }
            true
        })
    }

    /// Whether `file` (slash-separated, relative to the context) is matched: by a pattern for itself or for one
    /// of its parent directories, and not undone by a later `!` pattern (moby's `MatchesOrParentMatches`).
    pub fn matches(&self, file: &str) -> bool {
        let hits = self.hits(file);
        let mut matched = false;
        for i in hits {
            if self.patterns[i].exclusion == matched {
                matched = !matched;
            }
        }
        matched
    }

    /// moby's loop as written, every pattern against the file and each parent: the oracle the index is tested
    /// against, by the unit tests and by the `dockerignore` fuzz target (cargo-fuzz builds with `--cfg fuzzing`).
    #[cfg(any(test, fuzzing))]
    pub fn matches_every_pattern(&self, file: &str) -> bool {
        let parent = dir(file);
        let parent_dirs: Vec<&str> = if parent == "." { Vec::new() } else { parent.split('/').collect() };
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion == matched
                && (p.matches(file) || (1..=parent_dirs.len()).any(|i| p.matches(&parent_dirs[..i].join("/"))))
            {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// The patterns that match `file` or one of its parent directories, in order, found through the index.
    fn hits(&self, file: &str) -> Vec<usize> {
        let ix = &self.index;
        let mut hits: Vec<usize> = Vec::new();
        let mut add = |v: Option<&Vec<usize>>| hits.extend(v.into_iter().flatten());
        // The file and each parent directory (moby cleans the parent with `filepath.Dir`, which a clean
        // relative path does not change), each checked as the pattern kinds need.
        let mut candidates: Vec<&str> = vec![file];
        if dir(file) != "." {
            candidates.extend(file.match_indices('/').map(|(i, _)| &file[..i]).filter(|p| !p.is_empty()));
        }
        // A prefix pattern matching a parent matches the file too: the file alone is enough.
        for (i, _) in file.char_indices().chain(std::iter::once((file.len(), ' '))) {
            add(ix.prefix.get(&file[..i]));
        }
        for path in &candidates {
            add(ix.exact.get(*path));
            add(ix.whole.get(*path));
            for (i, _) in path.char_indices() {
                add(ix.suffix.get(&path[i..]));
            }
            add(ix.suffix.get(""));
        }
        let mut tried: Vec<usize> = Vec::new();
        for path in &candidates {
            // The globs under each directory above `path`, then those that may match anywhere.
            let dirs = path.match_indices('/').map(|(i, _)| &path[..i]);
            let under = dirs.filter_map(|d| ix.regex_by_dir.get(d)).flatten();
            for &i in under.chain(&ix.regex_any) {
                if self.patterns[i].matches(path) {
                    tried.push(i);
                }
            }
        }
        hits.extend(tried);
        hits.sort_unstable();
        hits.dedup();
        hits
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|s| s == path)
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }
}

fn should_escape(c: char) -> bool {
    ".+()|{}$".contains(c)
}

fn compile(pattern: &str) -> Result<Kind, regex::Error> {
    let mut re = String::from("^");
    #[derive(PartialEq)]
    enum T {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut kind = T::Exact;
    let chars: Vec<char> = pattern.chars().collect();
    let mut pos = 0;
    let mut iteration = 0;
    while pos < chars.len() {
        let c = chars[pos];
        pos += 1;
        match c {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos >= chars.len() {
                    if kind == T::Exact {
                        kind = T::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = T::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = T::Regex;
                }
                if iteration == 0 {
                    kind = T::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = T::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = T::Regex;
            }
            c if should_escape(c) => {
                re.push('\\');
                re.push(c);
            }
            '\\' => match chars.get(pos) {
                Some(&n) => {
                    pos += 1;
                    re.push('\\');
                    re.push(n);
                    kind = T::Regex;
                }
                None => re.push('\\'),
            },
            '[' | ']' => {
                re.push(c);
                kind = T::Regex;
            }
            c => re.push(c),
        }
        iteration += 1;
    }
    // Go validates every pattern with filepath.Match; an unbalanced bracket can only come from `[` or `]`,
    // which always make a regex, so compiling it is the same check.
    Ok(match kind {
        T::Exact => Kind::Exact,
        T::Prefix => Kind::Prefix,
        T::Suffix => Kind::Suffix,
        T::Regex => {
            re.push('$');
            Kind::Regex(regex::Regex::new(&re)?)
        }
    })
}

/// Go's `path.Clean`: lexical, `/`-separated.
pub(crate) fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `path.Dir`.
fn dir(p: &str) -> String {
    match p.rfind('/') {
        Some(i) => clean(&p[..=i]),
        None => ".".into(),
    }
}

/// Reads `.dockerignore` text as moby's `ignorefile.ReadAll`: `#` comment lines, trimmed and cleaned patterns, a
/// leading `/` dropped so `/a` and `a` are the same.
pub fn read_ignore_file(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut p = if pattern.is_empty() { String::new() } else { clean(pattern) };
        if p.len() > 1 && p.starts_with('/') {
            p.remove(0);
        }
        out.push(if invert { format!("!{p}") } else { p });
    }
    out
}

/// The ignore file for a build: `<Dockerfile>.dockerignore` beside the Dockerfile wins over the context's
/// `.dockerignore`. Returns the file used, if any, and its patterns.
pub fn load_ignore_patterns(
    context: &Path,
    dockerfile: &Path,
) -> std::io::Result<Option<(std::path::PathBuf, Vec<String>)>> {
    let mut candidates = Vec::new();
    if let Some(name) = dockerfile.file_name() {
        let mut n = name.to_os_string();
        n.push(".dockerignore");
        candidates.push(dockerfile.with_file_name(n));
    }
    candidates.push(context.join(".dockerignore"));
    for c in candidates {
        match std::fs::read_to_string(&c) {
            Ok(text) => return Ok(Some((c, read_ignore_file(&text)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Go's `filepath.Match` for one path component: `*`, `?`, `[a-z]`, `[^...]`, `\` escapes.
pub(crate) fn glob_match(pattern: &str, name: &str) -> Result<bool, String> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n).ok_or_else(|| format!("bad pattern {pattern:?}: unbalanced `[` or trailing `\\`"))
}

fn glob_at(p: &[char], n: &[char]) -> Option<bool> {
    let Some((&c, rest)) = p.split_first() else { return Some(n.is_empty()) };
    match c {
        '*' => {
            for i in 0..=n.len() {
                if n[..i].contains(&'/') {
                    break;
                }
                if glob_at(rest, &n[i..])? {
                    return Some(true);
                }
            }
            Some(false)
        }
        '?' => Some(matches!(n.first(), Some(&ch) if ch != '/') && glob_at(rest, &n[1..])?),
        '[' => {
            let close = rest.iter().skip(1).position(|&x| x == ']').map(|i| i + 1)?;
            let (class, after) = (&rest[..close], &rest[close + 1..]);
            let (negate, class) = match class.split_first() {
                Some(('^', c)) => (true, c),
                _ => (false, class),
            };
            let Some(&ch) = n.first() else { return Some(false) };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                let lo = class[i];
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= lo <= ch && ch <= class[i + 2];
                    i += 3;
                } else {
                    hit |= lo == ch;
                    i += 1;
                }
            }
            Some(hit != negate && ch != '/' && glob_at(after, &n[1..])?)
        }
        '\\' => {
            let (&lit, rest) = rest.split_first()?;
            Some(n.first() == Some(&lit) && glob_at(rest, &n[1..])?)
        }
        c => Some(n.first() == Some(&c) && glob_at(rest, &n[1..])?),
    }
}

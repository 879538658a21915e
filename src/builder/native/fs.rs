//! What a stage's own layers contain: a map from path to entry, kept while the stage is evaluated so that later
//! instructions can see it (COPY into a directory made earlier, `COPY --from=stage`, `--chown=name` read from an
//! `/etc/passwd` we copied in). Base image layers are never downloaded, so for a registry base the map is partial
//! (`complete` is false); for `FROM scratch` it is the whole filesystem.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use super::context::{Item, Root, has_wildcards};
use super::copy::relink;
use crate::builder::ignore::PatternMatcher;
use crate::builder::ignore::glob_match;

/// Where a regular file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    /// A file on disk: in the build context, or unpacked from an ADDed archive into the work directory.
    Disk(PathBuf),
    /// Bytes held in memory: heredoc files.
    Inline(Arc<Vec<u8>>),
}

impl Content {
    pub(crate) fn open(&self) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            Content::Disk(p) => Box::new(std::fs::File::open(p)?),
            Content::Inline(b) => Box::new(b.as_slice()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File {
        content: Content,
        size: u64,
    },
    Symlink(String),
    /// A hard link to another path (slash-separated, relative to `/`) in the same layer.
    Hardlink(String),
}

/// One filesystem entry as it goes into a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
}

impl Node {
    pub(crate) fn dir(mode: u32, uid: u64, gid: u64, mtime: i64) -> Node {
        Node { kind: Kind::Dir, mode, uid, gid, mtime }
    }

    pub(crate) fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir)
    }
}

/// Entries keyed by path relative to `/` without leading or trailing slashes (`app/bin/server`).
#[derive(Debug, Clone, Default)]
pub(crate) struct FsTree {
    nodes: BTreeMap<String, Node>,
    /// True when the tree is the entire filesystem (the stage started from scratch).
    pub complete: bool,
}

impl FsTree {
    pub(crate) fn new(complete: bool) -> Self {
        FsTree { nodes: BTreeMap::new(), complete }
    }

    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Applies a layer's entries: a non-directory replacing anything hides what was below it.
    pub(crate) fn apply(&mut self, entries: &BTreeMap<String, Node>) {
        for (path, node) in entries {
            let replaces_dir = self.nodes.get(path).is_some_and(Node::is_dir) && !node.is_dir();
            if replaces_dir {
                let prefix = format!("{path}/");
                self.nodes.retain(|p, _| !p.starts_with(&prefix));
            }
            self.nodes.insert(path.clone(), node.clone());
        }
    }

    /// Whether `src` (a COPY source, no wildcards) names a regular file of this tree itself: then what is below
    /// it in a base does not matter.
    pub(crate) fn holds_file(&self, src: &str) -> bool {
        let path = normalize_in_root(src);
        !has_wildcards(&path)
            && self.resolve(&path).and_then(|r| self.nodes.get(&r)).is_some_and(|n| matches!(n.kind, Kind::File { .. }))
    }

    /// Puts `upper`'s entries over this tree's, as its layers would be unpacked on top.
    pub(crate) fn overlay(&mut self, upper: &FsTree) {
        self.apply(&upper.nodes);
    }

    /// Deletes `path` and what is below it (a whiteout).
    pub(crate) fn remove(&mut self, path: &str) {
        self.nodes.remove(path);
        self.remove_below(path);
    }

    /// Deletes what is below the directory `path`, keeping the directory (an opaque whiteout).
    pub(crate) fn remove_below(&mut self, path: &str) {
        let prefix = if path.is_empty() { String::new() } else { format!("{path}/") };
        self.nodes.retain(|p, _| !p.starts_with(&prefix));
    }

    /// `path` and everything under it, paths relative to `path` (`""` for `path` itself).
    pub(crate) fn subtree(&self, path: &str) -> Vec<(String, Node)> {
        let mut out = Vec::new();
        if let Some(n) = self.nodes.get(path) {
            out.push((String::new(), n.clone()));
        }
        let prefix = if path.is_empty() { String::new() } else { format!("{path}/") };
        for (p, n) in self.nodes.range(prefix.clone()..) {
            let Some(rel) = p.strip_prefix(&prefix) else { break };
            if !rel.is_empty() {
                out.push((rel.to_string(), n.clone()));
            }
        }
        out
    }

    /// Sources in another stage's files: a path or wildcard resolved in that stage's self.
    pub(crate) fn roots(
        &self,
        src: &str,
        excludes: &PatternMatcher,
        name: &str,
        description: &str,
        doublestar: bool,
    ) -> Result<Vec<Root>, String> {
        let pattern = normalize_in_root(src);
        let wildcard = has_wildcards(&pattern);
        let candidates: Vec<String> = if wildcard {
            let parts: Vec<&str> = pattern.split('/').collect();
            let mut found = Vec::new();
            for p in self.paths() {
                let comps: Vec<&str> = p.split('/').collect();
                if components_match(&parts, &comps, doublestar) {
                    found.push(p.to_string());
                }
            }
            found
        } else {
            vec![pattern.clone()]
        };
        let mut roots = Vec::new();
        for path in candidates {
            let resolved = if path.is_empty() { Some(String::new()) } else { self.resolve(&path) };
            let Some(resolved) = resolved.filter(|r| r.is_empty() || self.get(r).is_some()) else {
                if wildcard {
                    continue;
                }
                let why = if self.complete {
                    String::new()
                } else {
                    format!(
                        "; the native builder does not download base image layers, so it can only copy what this Dockerfile \
                     put into {description} (COPY, ADD, WORKDIR); set `builder: engine` to build it through the Docker Engine"
                    )
                };
                return Err(format!("--from={name} {src}: not found in {description}{why}"));
            };
            let sub = self.subtree(&resolved);
            let is_dir = resolved.is_empty() || sub.first().is_some_and(|(_, n)| n.is_dir());
            let mut items = Vec::new();
            if resolved.is_empty() {
                items.push(Item { rel: String::new(), node: Node::dir(0o755, 0, 0, 0), inode: None });
            }
            for (rel, mut node) in sub {
                if !rel.is_empty() && !excludes.is_empty() && excludes.matches(&rel) {
                    continue;
                }
                // Hard links inside the copied tree are re-pointed; links to outside become copies.
                if let Kind::Hardlink(target) = &node.kind {
                    let inside = if resolved.is_empty() {
                        Some(target.clone())
                    } else {
                        target.strip_prefix(&format!("{resolved}/")).map(str::to_string)
                    };
                    match inside {
                        Some(t) => node.kind = Kind::Hardlink(t),
                        None => match self.resolve(target).and_then(|t| self.get(&t)) {
                            Some(Node { kind: kind @ Kind::File { .. }, .. }) => node.kind = kind.clone(),
                            _ => continue,
                        },
                    }
                }
                items.push(Item { rel, node, inode: None });
            }
            let name = path.rsplit('/').next().unwrap_or_default().to_string();
            roots.push(Root { is_dir, name, path: path.clone(), items });
        }
        Ok(relink(roots))
    }

    /// Every path in the tree, for wildcard matching.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// Follows symlinks (relative to their directory or absolute within this tree) up to 40 hops, as the
    /// kernel would inside the image. Returns the resolved path, or `None` when it leaves the tree.
    pub(crate) fn resolve(&self, path: &str) -> Option<String> {
        let mut current = path.to_string();
        for _ in 0..MAX_LINKS {
            match self.nodes.get(&current).map(|n| &n.kind) {
                Some(Kind::Symlink(target)) => current = link_target(&current, target),
                Some(Kind::Hardlink(target)) => current = target.clone(),
                Some(_) => return Some(current),
                None => return None,
            }
        }
        None
    }

    /// The bytes of a regular file (following links), read whole: only for small files such as `/etc/passwd`.
    pub(crate) fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        let Some(resolved) = self.resolve(path) else { return Ok(None) };
        let Some(Node { kind: Kind::File { content, .. }, .. }) = self.nodes.get(&resolved) else { return Ok(None) };
        let mut buf = Vec::new();
        content.open()?.take(16 << 20).read_to_end(&mut buf)?;
        Ok(Some(buf))
    }
}

/// Go's `filepath.Match` per component; with `doublestar`, a `**` component matches any number of components.
fn components_match(parts: &[&str], comps: &[&str], doublestar: bool) -> bool {
    match parts.split_first() {
        None => comps.is_empty(),
        Some((&"**", rest)) if doublestar => (0..=comps.len()).any(|i| components_match(rest, &comps[i..], true)),
        Some((pat, rest)) => comps
            .split_first()
            .is_some_and(|(c, more)| glob_match(pat, c).unwrap_or(false) && components_match(rest, more, doublestar)),
    }
}

/// Symbolic links followed before giving up, as the kernel does.
pub(crate) const MAX_LINKS: usize = 40;

/// Where a symbolic link at `path` whose target is `target` leads (relative to its directory, or absolute within
/// the image root), without leading slash.
pub(crate) fn link_target(path: &str, target: &str) -> String {
    let dir = if target.starts_with('/') { "" } else { path.rsplit_once('/').map_or("", |(d, _)| d) };
    normalize_in_root(&format!("{dir}/{target}"))
}

/// Cleans a path inside an image root: `..` cannot climb above `/`. Returns it without leading slash.
pub(crate) fn normalize_in_root(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.join("/")
}

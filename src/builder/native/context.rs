//! The build context: a directory, minus what `.dockerignore` excludes (excluded paths do not exist for COPY).
//! Resolves COPY/ADD sources in it (paths, Go-style globs, symlinks followed inside the context as BuildKit's
//! `FollowSymlinks` does) and lists what each source contributes, with metadata read from disk.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::fs::{Content, Kind, Node, normalize_in_root};
use crate::builder::ignore::{PatternMatcher, clean, glob_match};

pub(crate) struct Context {
    pub root: PathBuf,
    ignore: PatternMatcher,
    /// The work directory when it lies inside the context: never copied (it holds the layers being written).
    skip: Option<String>,
    /// The ignore file in effect, for messages.
    pub ignore_file: Option<PathBuf>,
}

/// One entry a source contributes, `rel` relative to the source (`""` is the source itself).
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub rel: String,
    pub node: Node,
    /// Device and inode of a regular file with several links, to keep hard links within one COPY.
    pub inode: Option<(u64, u64)>,
}

/// A resolved source: a file, or a directory whose contents are copied.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    pub is_dir: bool,
    /// The source's own name (a file lands at `dest/name` when the destination is a directory).
    pub name: String,
    /// Its path from the root of what it is copied from (the context or a stage), for `--parents`.
    pub path: String,
    pub items: Vec<Item>,
}

impl Context {
    pub(crate) fn new(root: PathBuf, ignore: PatternMatcher, ignore_file: Option<PathBuf>, work_dir: &Path) -> Context {
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let skip = canonical(work_dir)
            .strip_prefix(canonical(&root))
            .ok()
            .and_then(|r| r.to_str().map(str::to_string))
            .filter(|r| !r.is_empty());
        Context { root, ignore, skip, ignore_file }
    }

    fn excluded(&self, rel: &str) -> bool {
        if let Some(skip) = &self.skip {
            if rel == skip || rel.strip_prefix(skip.as_str()).is_some_and(|r| r.starts_with('/')) {
                return true;
            }
        }
        !rel.is_empty() && self.ignore.matches(rel)
    }

    /// Resolves one source (after variable expansion) to what it copies. A wildcard matching nothing gives no
    /// roots; a plain path that does not exist, or is excluded, is an error. `doublestar` (`--parents`): a `**`
    /// component matches any number of directories, as BuildKit's `--parents` patterns do.
    pub(crate) fn roots(&self, src: &str, excludes: &PatternMatcher, doublestar: bool) -> Result<Vec<Root>, String> {
        let cleaned = clean(&format!("./{src}"));
        if cleaned == ".." || cleaned.starts_with("../") {
            return Err(format!(
                "{src}: the source is outside the build context; sources are relative to the context directory {}",
                self.root.display()
            ));
        }
        let rel = if cleaned == "." { String::new() } else { cleaned.trim_start_matches('/').to_string() };
        let wildcard = has_wildcards(&rel);
        let candidates = if wildcard { self.glob(&rel, doublestar)? } else { vec![rel.clone()] };
        let mut roots = Vec::new();
        for path in candidates {
            let resolved = self.resolve_links(&path)?;
            let abs = self.root.join(&resolved);
            let meta = match std::fs::symlink_metadata(&abs) {
                Ok(m) if !self.excluded(&path) && !self.excluded(&resolved) => m,
                Ok(_) | Err(_) if wildcard => continue,
                Ok(_) => {
                    return Err(format!(
                        "{src}: excluded by {}; remove the pattern that matches it to copy it",
                        self.ignore_name()
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(format!("{src}: not found in the build context {}", self.root.display()));
                }
                Err(e) => return Err(format!("{src}: {e}")),
            };
            let name = path.rsplit('/').next().unwrap_or_default().to_string();
            if meta.is_dir() {
                let mut items = vec![Item { rel: String::new(), node: node_from(&abs, &meta, "")?, inode: None }];
                self.walk(&abs, &resolved, "", excludes, &mut items)?;
                roots.push(Root { is_dir: true, name, path: path.clone(), items });
            } else {
                let node = node_from(&abs, &meta, &path)?;
                roots.push(Root {
                    is_dir: false,
                    name,
                    path: path.clone(),
                    items: vec![Item { rel: String::new(), node, inode: inode(&meta) }],
                });
            }
        }
        Ok(roots)
    }

    /// A directory of the context as `--parents` recreates it (mode and mtime from disk).
    pub(crate) fn dir_node(&self, rel: &str) -> Option<Node> {
        let meta = std::fs::metadata(self.root.join(rel)).ok().filter(|m| m.is_dir())?;
        Some(Node::dir(meta.mode() & 0o7777, 0, 0, meta.mtime()))
    }

    fn ignore_name(&self) -> String {
        self.ignore_file
            .as_ref()
            .and_then(|p| p.file_name())
            .map_or(".dockerignore".into(), |n| n.to_string_lossy().into_owned())
    }

    /// Lists a directory recursively. Returns whether anything was included (an excluded directory is walked
    /// when `!` exceptions exist, and kept as a parent if something inside is re-included).
    fn walk(
        &self,
        dir: &Path,
        ctx_rel: &str,
        rel: &str,
        excludes: &PatternMatcher,
        out: &mut Vec<Item>,
    ) -> Result<bool, String> {
        let mut children: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("reading {}: {e}", dir.display()))?;
        children.sort_by_key(|e| e.file_name());
        let mut any = false;
        for child in children {
            let os_name = child.file_name();
            let lossy = os_name.to_string_lossy();
            let child_ctx = join(ctx_rel, &lossy);
            let child_rel = join(rel, &lossy);
            let skip = self.excluded(&child_ctx) || (!excludes.is_empty() && excludes.matches(&child_rel));
            let path = child.path();
            let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            let descend = meta.is_dir()
                && (!skip
                    || (self.ignore.has_exclusions() && self.ignore.may_reinclude_under(&child_ctx))
                    || (excludes.has_exclusions() && excludes.may_reinclude_under(&child_rel)));
            if skip && !descend {
                continue;
            }
            if os_name.to_str().is_none() {
                return Err(format!(
                    "{child_ctx}: the file name is not valid UTF-8; rename it or add it to .dockerignore"
                ));
            }
            // A pipe, socket or device is not dropped in silence: the user hears which, and what to do.
            let Some(node) = node_from_opt(&path, &meta, &child_ctx)? else {
                return Err(format!(
                    "{child_ctx} is a {}, which the native builder does not put in a layer: add it to .dockerignore, \
                     or set `builder: engine`",
                    special_kind(&meta)
                ));
            };
            let at = out.len();
            if !skip {
                out.push(Item { rel: child_rel.clone(), node: node.clone(), inode: inode(&meta) });
                any = true;
            }
            if descend && self.walk(&path, &child_ctx, &child_rel, excludes, out)? && skip {
                out.insert(at, Item { rel: child_rel, node, inode: None });
                any = true;
            }
        }
        Ok(any)
    }

    /// Follows symlinks in `rel` component by component, never leaving the context (as `fs.RootPath` does).
    fn resolve_links(&self, rel: &str) -> Result<String, String> {
        let mut done: Vec<String> = Vec::new();
        let mut pending: Vec<String> = rel.split('/').filter(|s| !s.is_empty()).rev().map(str::to_string).collect();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            done.push(part);
            let abs = self.root.join(done.join("/"));
            let Ok(meta) = std::fs::symlink_metadata(&abs) else { continue };
            if !meta.file_type().is_symlink() {
                continue;
            }
            hops += 1;
            if hops > 255 {
                return Err(format!("{rel}: too many levels of symbolic links"));
            }
            let target = std::fs::read_link(&abs).map_err(|e| format!("{}: {e}", abs.display()))?;
            let target = target.to_string_lossy().into_owned();
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            pending.extend(target.split('/').filter(|s| !s.is_empty()).rev().map(str::to_string));
        }
        Ok(done.join("/"))
    }

    /// Expands a wildcard path one component at a time (Go's `filepath.Match` per component).
    fn glob(&self, pattern: &str, doublestar: bool) -> Result<Vec<String>, String> {
        let mut current = vec![String::new()];
        for comp in pattern.split('/').filter(|c| !c.is_empty()) {
            let mut next = Vec::new();
            for base in &current {
                if doublestar && comp == "**" {
                    next.push(base.clone());
                    self.descendants(base, &mut next)?;
                    continue;
                }
                if !has_wildcards(comp) {
                    let p = join(base, &unescape(comp));
                    if std::fs::symlink_metadata(self.root.join(&p)).is_ok() {
                        next.push(p);
                    }
                    continue;
                }
                let dir = self.root.join(self.resolve_links(base)?);
                let Ok(entries) = std::fs::read_dir(&dir) else { continue };
                for e in entries.flatten() {
                    let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
                    if glob_match(comp, &name)? {
                        next.push(join(base, &name));
                    }
                }
            }
            next.sort();
            next.dedup();
            current = next;
        }
        Ok(current)
    }

    /// Every path below the directory `base` (symlinks listed, not followed), for `**`.
    fn descendants(&self, base: &str, out: &mut Vec<String>) -> Result<(), String> {
        let dir = self.root.join(self.resolve_links(base)?);
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(()) };
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
            let path = join(base, &name);
            out.push(path.clone());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                self.descendants(&path, out)?;
            }
        }
        Ok(())
    }
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() { b.to_string() } else { format!("{a}/{b}") }
}

fn inode(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    (meta.is_file() && meta.nlink() > 1).then(|| (meta.dev(), meta.ino()))
}

fn node_from(path: &Path, meta: &std::fs::Metadata, rel: &str) -> Result<Node, String> {
    node_from_opt(path, meta, rel)?.ok_or_else(|| format!("{rel}: not a regular file, directory or symlink"))
}

/// The entry for a file on disk; `None` for sockets, pipes and devices, which a COPY skips.
fn node_from_opt(path: &Path, meta: &std::fs::Metadata, rel: &str) -> Result<Option<Node>, String> {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File { content: Content::Disk(path.to_path_buf()), size: meta.len() }
    } else if ft.is_symlink() {
        let target = std::fs::read_link(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let Some(t) = target.to_str() else {
            return Err(format!("{rel}: the symlink target is not valid UTF-8"));
        };
        Kind::Symlink(t.to_string())
    } else {
        return Ok(None);
    };
    let mode = if ft.is_symlink() { 0o777 } else { meta.mode() & 0o7777 };
    Ok(Some(Node { kind, mode, uid: 0, gid: 0, mtime: meta.mtime() }))
}

/// What a file that is neither a regular file, a directory nor a symlink is, in words.
fn special_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let ft = meta.file_type();
    if ft.is_fifo() {
        "named pipe (FIFO)"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

/// Whether a path has unescaped `*`, `?` or `[` (BuildKit's `containsWildcards`).
pub(crate) fn has_wildcards(s: &str) -> bool {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' | '[' => return true,
            '\\' => {
                chars.next();
            }
            _ => {}
        }
    }
    false
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// A path under `/` for the image, from a destination as written (absolute or relative to `workdir`).
pub(crate) fn image_path(workdir: &str, dest: &str) -> String {
    if dest.starts_with('/') { normalize_in_root(dest) } else { normalize_in_root(&format!("{workdir}/{dest}")) }
}

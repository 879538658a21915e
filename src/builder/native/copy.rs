//! COPY and ADD as Docker does them, turned into one layer's entries: `COPY dir /dst` copies the directory's
//! contents; a file goes to `/dst/name` when the destination ends with `/` or is an existing directory, else
//! to `/dst`; several sources need a destination ending with `/`; `--chown`, `--chmod` and hard links within one
//! instruction; ADD of a local tar (plain or gzip) unpacks it.
//!
//! Directory entries for paths we did not create are the one place where not reading base layers shows: for a
//! registry base we cannot know whether `/usr/local` or `/home/node` exists, is a symlink (`/bin` on merged-usr
//! distributions), or has its own owner and mode, and writing an entry for it would replace those. So with a
//! registry base, parents are written only when this stage created them, and a destination directory is written
//! unless it is a standard system directory or the base's WORKDIR (assumed to exist). From `scratch` the stage
//! knows its whole filesystem and writes parents as Docker does (0755, owned by `--chown`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use super::archive;
use super::chmod::Chmod;
use super::context::{Context, Item, Root, image_path};
use super::fs::{Content, FsTree, Kind, Node, normalize_in_root};
use crate::builder::ignore::PatternMatcher;

/// Where COPY reads from.
pub(crate) enum Source {
    Context(Arc<Context>),
    /// Another stage's files; `description` names it in messages (`stage build (FROM golang:1.22)`).
    Stage {
        tree: Arc<FsTree>,
        name: String,
        description: String,
    },
}

/// How entries are owned and stamped, shared by COPY, ADD and WORKDIR.
#[derive(Clone, Debug, Default)]
pub(crate) struct Policy {
    /// `--chown` (or USER for WORKDIR): owner of every entry written and of created directories.
    pub chown: Option<(u64, u64)>,
    pub chmod: Option<Chmod>,
    /// `SOURCE_DATE_EPOCH`: every entry's mtime when set.
    pub epoch: Option<i64>,
    /// mtime of what the instruction creates (parents, heredoc files) when there is no epoch.
    pub now: i64,
    /// The base image's WORKDIR, assumed to exist.
    pub base_workdir: Option<String>,
}

/// Everything one COPY/ADD needs, owned, so it can run on a blocking thread.
pub(crate) struct CopyJob {
    pub keyword: &'static str,
    pub source: Source,
    pub sources: Vec<String>,
    /// Inline files: name and (expanded) bytes.
    pub heredocs: Vec<(String, Vec<u8>)>,
    /// ADD's URL downloads: file name (the URL path's last segment) and entry (contents in the work directory).
    pub downloads: Vec<(String, Node)>,
    pub dest: String,
    pub workdir: String,
    pub excludes: Vec<String>,
    pub unpack: bool,
    /// `--parents`: each source keeps its path (below a `/./` pivot, if any) under the destination.
    pub parents: bool,
    pub policy: Policy,
    pub work_dir: PathBuf,
}

/// The result: entries of the layer, and warnings (skipped special files).
pub(crate) struct Planned {
    pub entries: BTreeMap<String, Node>,
    pub warnings: Vec<String>,
}

/// Directories any Linux base has (FHS), never written as entries over a registry base.
const SYSTEM_DIRS: &[&str] = &[
    "bin",
    "boot",
    "dev",
    "etc",
    "home",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "media",
    "mnt",
    "opt",
    "proc",
    "root",
    "run",
    "sbin",
    "srv",
    "sys",
    "tmp",
    "usr",
    "var",
    "usr/bin",
    "usr/sbin",
    "usr/lib",
    "usr/lib64",
    "usr/libexec",
    "usr/include",
    "usr/share",
    "usr/src",
    "usr/local",
    "usr/local/bin",
    "usr/local/sbin",
    "usr/local/lib",
    "usr/local/share",
    "usr/local/include",
    "usr/local/etc",
    "usr/local/src",
    "var/lib",
    "var/log",
    "var/cache",
    "var/tmp",
    "var/run",
    "var/lock",
    "var/spool",
    "var/opt",
    "var/mail",
    "var/www",
    "etc/ssl",
    "etc/ssl/certs",
];

pub(crate) fn is_system_dir(path: &str) -> bool {
    SYSTEM_DIRS.contains(&path)
}

impl CopyJob {
    /// Resolves the sources and lays them out under the destination. `tree` is the stage's filesystem so far.
    pub(crate) fn plan(&self, tree: &FsTree) -> Result<Planned, String> {
        let excludes = PatternMatcher::new(&self.excludes).map_err(|e| format!("--exclude: {e}"))?;
        let dest_path = image_path(&self.workdir, &self.dest);
        let dest_is_dir =
            self.dest.ends_with('/') || self.dest.ends_with("/.") || self.dest == "." || dest_path.is_empty();
        let mut roots: Vec<Root> = Vec::new();
        // For `--parents`: per root, the pivot directory and the path kept below it.
        let mut kept: Vec<Option<(String, String)>> = Vec::new();
        let mut archives = Vec::new();
        let mut warnings = Vec::new();
        for src in &self.sources {
            let pivot = match src.find("/./") {
                Some(i) if self.parents => normalize_in_root(&src[..i]),
                _ => String::new(),
            };
            let found = match &self.source {
                Source::Context(ctx) => ctx.roots(src, &excludes, self.parents)?,
                Source::Stage { tree: other, name, description } => {
                    other.roots(src, &excludes, name, description, self.parents)?
                }
            };
            for root in found {
                if self.unpack && !root.is_dir {
                    if let Some(Kind::File { content: Content::Disk(path), .. }) =
                        root.items.first().map(|i| &i.node.kind)
                    {
                        if let Some(kind) = archive::sniff(path.as_path()).map_err(|e| format!("{src}: {e}"))? {
                            archives.push((src.clone(), path.clone(), kind));
                            continue;
                        }
                    }
                }
                kept.push(self.parents.then(|| split_at_pivot(&root.path, &pivot)));
                roots.push(root);
            }
        }
        for (name, bytes) in &self.heredocs {
            let node = Node {
                kind: Kind::File { size: bytes.len() as u64, content: Content::Inline(Arc::new(bytes.clone())) },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: self.policy.now,
            };
            roots.push(Root {
                is_dir: false,
                name: name.clone(),
                path: String::new(),
                items: vec![Item { rel: String::new(), node, inode: None }],
            });
        }
        let first_download = roots.len();
        for (name, node) in &self.downloads {
            roots.push(Root {
                is_dir: false,
                name: name.clone(),
                path: String::new(),
                items: vec![Item { rel: String::new(), node: node.clone(), inode: None }],
            });
        }
        kept.resize(roots.len(), None);
        let given = self.sources.len() + self.heredocs.len() + self.downloads.len();
        if (given > 1 || roots.len() + archives.len() > 1) && !dest_is_dir && !self.parents {
            return Err(format!(
                "When using {} with more than one source file, the destination must be a directory and end with a /: write `{}/`",
                self.keyword, self.dest
            ));
        }
        let mut out = Layout { policy: &self.policy, tree, entries: BTreeMap::new(), inodes: HashMap::new() };
        for (i, (root, kept)) in roots.iter().zip(&kept).enumerate() {
            if let Some((pivot, keep)) = kept {
                self.place_with_parents(&mut out, root, pivot, keep, &dest_path);
                continue;
            }
            if root.is_dir {
                out.put_dir(&dest_path, root);
            } else {
                let into = dest_is_dir || out.exists_as_dir(&dest_path);
                let target = if into { join(&dest_path, &root.name) } else { dest_path.clone() };
                if into {
                    out.target_dir(&dest_path, None);
                }
                out.put(target.clone(), &root.items[0]);
                // A download keeps the server's Last-Modified (as Docker does) when it is not later than
                // SOURCE_DATE_EPOCH: the time belongs to the content, so the layer stays reproducible.
                if let (true, Some(n)) = (i >= first_download, out.entries.get_mut(&target)) {
                    n.mtime = n.mtime.min(root.items[0].node.mtime);
                }
            }
        }
        for (src, path, kind) in &archives {
            out.target_dir(&dest_path, None);
            let (items, w) =
                archive::unpack(path, *kind, &self.work_dir).map_err(|e| format!("{src}: unpacking: {e}"))?;
            warnings.extend(w.into_iter().map(|w| format!("{src}: {w}")));
            for item in &items {
                out.put(join(&dest_path, &item.rel), item);
            }
        }
        out.link_hardlinks();
        out.add_parents();
        let Layout { entries, .. } = out;
        Ok(Planned { entries, warnings })
    }
}

impl CopyJob {
    /// `--parents`: `root` at `dest/keep`, the directories between `dest` and it recreated from the source's
    /// own (mode, mtime; owner as `--chown` says), as BuildKit copies them.
    fn place_with_parents(&self, out: &mut Layout, root: &Root, pivot: &str, keep: &str, dest: &str) {
        out.target_dir(dest, None);
        let comps: Vec<&str> = keep.split('/').filter(|c| !c.is_empty()).collect();
        for k in 1..comps.len() {
            let rel = comps[..k].join("/");
            let like = match &self.source {
                Source::Context(ctx) => ctx.dir_node(&join(pivot, &rel)),
                Source::Stage { tree, .. } => tree.get(&join(pivot, &rel)).filter(|n| n.is_dir()).cloned(),
            };
            out.target_dir(&join(dest, &rel), like.as_ref());
        }
        let target = join(dest, keep);
        if root.is_dir {
            out.put_dir(&target, root);
        } else {
            out.put(target, &root.items[0]);
        }
    }
}

/// `path` split at the pivot `pivot` (a pattern: `a/b*` matched `a/b2`): the pivot directory it matched, and
/// the components after it.
fn split_at_pivot(path: &str, pivot: &str) -> (String, String) {
    let depth = pivot.split('/').filter(|c| !c.is_empty()).count();
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let depth = depth.min(comps.len());
    (comps[..depth].join("/"), comps[depth..].join("/"))
}

/// The entries `mkdir -p /path` adds (WORKDIR): the directory owned by `policy.chown`, and parents by the same
/// rules as COPY.
pub(crate) fn mkdir_entries(tree: &FsTree, path: &str, policy: &Policy) -> BTreeMap<String, Node> {
    let mut out = Layout { policy, tree, entries: BTreeMap::new(), inodes: HashMap::new() };
    out.target_dir(path, None);
    out.add_parents();
    out.entries
}

struct Layout<'a> {
    policy: &'a Policy,
    tree: &'a FsTree,
    entries: BTreeMap<String, Node>,
    inodes: HashMap<(u64, u64), Vec<String>>,
}

impl Layout<'_> {
    fn adjust(&self, mut node: Node) -> Node {
        if let Some((uid, gid)) = self.policy.chown {
            node.uid = uid;
            node.gid = gid;
        }
        if let (Some(chmod), false) = (&self.policy.chmod, matches!(node.kind, Kind::Symlink(_))) {
            node.mode = chmod.apply(node.mode, node.is_dir());
        }
        if let Some(epoch) = self.policy.epoch {
            node.mtime = epoch;
        }
        node
    }

    fn put(&mut self, path: String, item: &Item) {
        if path.is_empty() {
            return;
        }
        if let Some(key) = item.inode {
            self.inodes.entry(key).or_default().push(path.clone());
        }
        let node = self.adjust(item.node.clone());
        self.entries.insert(path, node);
    }

    /// A directory source at `at`: its contents below, `at` itself made like the source directory.
    fn put_dir(&mut self, at: &str, root: &Root) {
        self.target_dir(at, Some(&root.items[0].node));
        for item in &root.items[1..] {
            self.put(join(at, &item.rel), item);
        }
    }

    fn exists_as_dir(&self, path: &str) -> bool {
        path.is_empty()
            || self.entries.get(path).is_some_and(Node::is_dir)
            || self.tree.get(path).is_some_and(Node::is_dir)
            || (!self.tree.complete && self.assumed(path))
    }

    fn assumed(&self, path: &str) -> bool {
        is_system_dir(path) || self.policy.base_workdir.as_deref().map(normalize_in_root).as_deref() == Some(path)
    }

    /// The directory a COPY writes into: kept as it is if the stage has it, created from `like` (the source
    /// directory) or as 0755 otherwise, and left alone over a registry base when it is a standard directory.
    fn target_dir(&mut self, path: &str, like: Option<&Node>) {
        if path.is_empty() || self.entries.get(path).is_some_and(Node::is_dir) {
            return;
        }
        if let Some(existing) = self.tree.get(path).filter(|n| n.is_dir()) {
            self.entries.insert(path.to_string(), existing.clone());
            return;
        }
        if !self.tree.complete && self.assumed(path) {
            return;
        }
        let node = match like {
            Some(n) => self.adjust(n.clone()),
            None => self.created_dir(),
        };
        self.entries.insert(path.to_string(), node);
    }

    fn created_dir(&self) -> Node {
        let (uid, gid) = self.policy.chown.unwrap_or((0, 0));
        Node::dir(0o755, uid, gid, self.policy.epoch.unwrap_or(self.policy.now))
    }

    /// Hard links within this instruction: the first path (in layer order) holds the data, the others link to it.
    fn link_hardlinks(&mut self) {
        for paths in self.inodes.values() {
            let mut paths: Vec<&String> = paths.iter().filter(|p| self.entries.contains_key(*p)).collect();
            paths.sort();
            paths.dedup();
            let Some((first, rest)) = paths.split_first() else { continue };
            for p in rest {
                if let Some(n) = self.entries.get_mut(*p) {
                    n.kind = Kind::Hardlink((*first).clone());
                }
            }
        }
    }

    /// Whether the nearest ancestor of `path` that we know of was written by this build.
    fn ancestor_written(&self, path: &str) -> bool {
        let mut p = path;
        while let Some((up, _)) = p.rsplit_once('/') {
            p = up;
            if self.tree.get(p).is_some() {
                return true;
            }
        }
        false
    }

    fn add_parents(&mut self) {
        let paths: Vec<String> = self.entries.keys().cloned().collect();
        for p in paths {
            let mut parent = p.as_str();
            while let Some((up, _)) = parent.rsplit_once('/') {
                parent = up;
                if self.entries.contains_key(parent) {
                    continue;
                }
                if let Some(known) = self.tree.get(parent) {
                    self.entries.insert(parent.to_string(), known.clone());
                } else if self.tree.complete || self.ancestor_written(parent) {
                    // Under a directory this Dockerfile wrote (WORKDIR /srv/app, then COPY to /srv/app/conf/x),
                    // a parent we never wrote is new: create it owned as `--chown` says, as Docker does.
                    let node = self.created_dir();
                    self.entries.insert(parent.to_string(), node);
                }
            }
        }
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// Hard links inside one root (targets relative to the root) become shared inode keys, so [`Layout`] links them
/// in layer order whatever their names; a link whose target is not copied is dropped.
pub(crate) fn relink(mut roots: Vec<Root>) -> Vec<Root> {
    for (r, root) in roots.iter_mut().enumerate() {
        let mut keep = vec![true; root.items.len()];
        #[allow(clippy::needless_range_loop)] // items are read and written by index in the loop
        for i in 0..root.items.len() {
            let Kind::Hardlink(target) = &root.items[i].node.kind else { continue };
            let Some(j) =
                root.items.iter().position(|it| &it.rel == target && !matches!(it.node.kind, Kind::Hardlink(_)))
            else {
                keep[i] = false;
                continue;
            };
            // Synthetic keys cannot collide with a real device and inode: sources never mix context and stages.
            let id = (u64::MAX - r as u64, j as u64);
            root.items[j].inode = Some(id);
            root.items[i].node.kind = root.items[j].node.kind.clone();
            root.items[i].inode = Some(id);
        }
        let mut k = keep.into_iter();
        root.items.retain(|_| k.next().unwrap_or(true));
    }
    roots
}

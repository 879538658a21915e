//! An image's layers unpacked onto disk, bottom first, as a container runtime's snapshotter would: whiteouts
//! delete what lower layers put there, opaque markers empty a directory of it, and modes, owners (when root),
//! modification times, symlinks and hard links are kept. Nothing is ever written outside the destination: an
//! entry whose path has `..` or is absolute, a path that goes through a symlink pointing outside (an absolute
//! one, or a relative one climbing above the root), a hard link to a file outside, and a device file when not
//! root are refused with an error naming the layer and the entry. Symlinks inside the root are followed as the
//! image would see them. The caller unpacks into a fresh directory and renames it into place, so a refused image
//! leaves nothing behind.

use std::collections::HashSet;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::{OPAQUE, UnsafePath, WHITEOUT_PREFIX, entry_path, open_layer};

/// How deep a chain of symlinks may go before the path is refused (Linux's own limit is 40).
const MAX_LINK_HOPS: usize = 40;

#[derive(Debug, Clone, Copy, Default)]
pub struct DirOptions {
    /// Running as root: owners are applied and device files may be made.
    pub as_root: bool,
}

impl DirOptions {
    /// Options for this process: root when the effective user is 0.
    pub fn for_this_process() -> DirOptions {
        // SAFETY: geteuid has no preconditions and cannot fail.
        DirOptions { as_root: unsafe { libc::geteuid() } == 0 }
    }
}

/// What was unpacked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub bytes: u64,
    pub whiteouts: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry that would write outside the destination, or that cannot be made safely.
    #[error("layer {layer}, entry `{entry}`: refused: {reason}")]
    Refused { layer: usize, entry: String, reason: String },
    #[error("layer {layer} cannot be read: {source}")]
    Read { layer: usize, source: io::Error },
    #[error("layer {layer}, entry `{entry}`: {source}")]
    Write { layer: usize, entry: String, source: io::Error },
}

/// Unpacks the layer blobs at `layers` (bottom first; gzip, zstd or plain tar) into `dest`, an existing empty
/// directory.
pub fn unpack_into_dir(layers: &[PathBuf], dest: &Path, options: DirOptions) -> Result<UnpackStats, UnpackError> {
    let mut unpacker = Unpacker { dest, options, stats: UnpackStats::default(), dirs: Vec::new() };
    for (i, layer) in layers.iter().enumerate() {
        unpacker.layer(i + 1, layer)?;
    }
    unpacker.finish_dirs()?;
    Ok(unpacker.stats)
}

/// A directory's metadata, applied once everything below it is written (its mode may forbid writing).
struct DirMeta {
    path: PathBuf,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

struct Unpacker<'a> {
    dest: &'a Path,
    options: DirOptions,
    stats: UnpackStats,
    dirs: Vec<DirMeta>,
}

/// Where one entry is, for its errors.
struct At<'e> {
    layer: usize,
    entry: &'e str,
}

impl At<'_> {
    fn refuse(&self, reason: impl Into<String>) -> UnpackError {
        UnpackError::Refused { layer: self.layer, entry: self.entry.to_string(), reason: reason.into() }
    }
    fn write(&self, source: io::Error) -> UnpackError {
        UnpackError::Write { layer: self.layer, entry: self.entry.to_string(), source }
    }
}

impl Unpacker<'_> {
    fn layer(&mut self, n: usize, blob: &Path) -> Result<(), UnpackError> {
        let read = |source| UnpackError::Read { layer: n, source };
        let mut archive = tar::Archive::new(open_layer(blob).map_err(read)?);
        // What this layer wrote, and the directories above it: an opaque marker keeps those.
        let mut written: HashSet<PathBuf> = HashSet::new();
        for entry in archive.entries().map_err(read)? {
            let mut entry = entry.map_err(read)?;
            let raw_bytes = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw_bytes).into_owned();
            let at = At { layer: n, entry: &shown };
            let rel = entry_path(Path::new(OsStr::from_bytes(&raw_bytes))).map_err(|e| at.refuse(e.to_string()))?;
            let Some(name) = rel.file_name().map(OsStr::to_os_string) else {
                continue; // the root itself: its metadata stays the destination's
            };
            let parent_rel = rel.parent().unwrap_or(Path::new(""));
            let name_bytes = name.as_bytes();
            if name_bytes == OPAQUE.as_bytes() {
                self.stats.whiteouts += 1;
                if let Some(dir) = self.resolve(parent_rel, false, &at)? {
                    self.empty_except(&dir, &written).map_err(|e| at.write(e))?;
                }
                continue;
            }
            if let Some(victim) = name_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
                // `.wh..` would delete the parent, `.wh.` the directory itself.
                if matches!(victim, b"" | b"." | b"..") {
                    return Err(at.refuse("a whiteout that names no file of its directory"));
                }
                self.stats.whiteouts += 1;
                if let Some(dir) = self.resolve(parent_rel, false, &at)? {
                    remove_any(&dir.join(OsStr::from_bytes(victim))).map_err(|e| at.write(e))?;
                }
                continue;
            }
            let parent = self.resolve(parent_rel, true, &at)?.ok_or_else(|| at.refuse("its directory is missing"))?;
            let target = parent.join(&name);
            self.entry(&mut entry, &target, &at)?;
            self.stats.entries += 1;
            let mut p = target.as_path();
            while p != self.dest && written.insert(p.to_path_buf()) {
                match p.parent() {
                    Some(up) => p = up,
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// Writes one entry at `target` (its parent resolved and inside the destination).
    fn entry<R: io::Read>(&mut self, entry: &mut tar::Entry<R>, target: &Path, at: &At) -> Result<(), UnpackError> {
        let h = entry.header();
        // Empty numeric fields read as 0, as Go's archive/tar reads them.
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let (uid, gid) = (h.uid().unwrap_or(0), h.gid().unwrap_or(0));
        let mtime = h.mtime().unwrap_or(0);
        let kind = h.entry_type();
        let w = |e| at.write(e);
        match kind {
            tar::EntryType::Directory => {
                let existing = std::fs::symlink_metadata(target).ok();
                if !existing.as_ref().is_some_and(|m| m.is_dir()) {
                    remove_any(target).map_err(w)?;
                    std::fs::DirBuilder::new().mode(0o700).create(target).map_err(w)?;
                }
                self.dirs.push(DirMeta { path: target.to_path_buf(), mode, uid, gid, mtime });
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                remove_any(target).map_err(w)?;
                // create_new: never through a symlink that appeared at the final name.
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(target)
                    .map_err(w)?;
                self.stats.bytes += io::copy(entry, &mut file).map_err(w)?;
                drop(file);
                self.metadata(target, Some(mode), uid, gid, mtime).map_err(w)?;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name_bytes().ok_or_else(|| at.refuse("a symlink without a target"))?;
                remove_any(target).map_err(w)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&link), target).map_err(w)?;
                self.metadata(target, None, uid, gid, mtime).map_err(w)?;
            }
            tar::EntryType::Link => {
                let link = entry.link_name_bytes().ok_or_else(|| at.refuse("a hard link without a target"))?;
                let shown = String::from_utf8_lossy(&link).into_owned();
                let rel = entry_path(Path::new(OsStr::from_bytes(&link))).map_err(|e| match e {
                    UnsafePath::Absolute => at.refuse(format!("a hard link to `{shown}`, outside the image")),
                    UnsafePath::ParentDir => at.refuse(format!("a hard link to `{shown}`, which leaves the image")),
                })?;
                let parent = rel.parent().unwrap_or(Path::new(""));
                let source = self
                    .resolve(parent, false, at)?
                    .map(|dir| dir.join(rel.file_name().unwrap_or_default()))
                    .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| !m.is_dir()))
                    .ok_or_else(|| at.refuse(format!("a hard link to `{shown}`, which is not a file of the image")))?;
                if source != target {
                    remove_any(target).map_err(w)?;
                    std::fs::hard_link(&source, target).map_err(w)?;
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (what, file_type) = match kind {
                    tar::EntryType::Char => ("character device", libc::S_IFCHR),
                    tar::EntryType::Block => ("block device", libc::S_IFBLK),
                    _ => ("named pipe", libc::S_IFIFO),
                };
                if file_type != libc::S_IFIFO && !self.options.as_root {
                    return Err(at.refuse(format!(
                        "a {what}, which only root may make: run as root, or install to `oci:` or `docker-archive:`"
                    )));
                }
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                remove_any(target).map_err(w)?;
                mknod(target, file_type | (mode & 0o777), libc::makedev(major, minor)).map_err(w)?;
                self.metadata(target, Some(mode), uid, gid, mtime).map_err(w)?;
            }
            other => return Err(at.refuse(format!("its type ({other:?}) is not one a layer may hold"))),
        }
        Ok(())
    }

    /// Owner (when root; before the mode, since chown clears set-id bits), mode (not for symlinks), and mtime.
    fn metadata(&self, path: &Path, mode: Option<u32>, uid: u64, gid: u64, mtime: u64) -> io::Result<()> {
        if self.options.as_root {
            let id = |v: u64| u32::try_from(v).ok();
            std::os::unix::fs::lchown(path, id(uid), id(gid))?;
        }
        if let Some(mode) = mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
        set_mtime(path, mtime)
    }

    /// Directories last, deepest first, so a read-only one still got its contents.
    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        // A directory given by two layers keeps the upper layer's metadata: the later entry.
        let mut seen = HashSet::new();
        let mut dirs: Vec<DirMeta> =
            std::mem::take(&mut self.dirs).into_iter().rev().filter(|d| seen.insert(d.path.clone())).collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
        for d in dirs.iter().filter(|d| std::fs::symlink_metadata(&d.path).is_ok_and(|m| m.is_dir())) {
            let shown = d.path.strip_prefix(self.dest).unwrap_or(&d.path).display().to_string();
            self.metadata(&d.path, Some(d.mode), d.uid, d.gid, d.mtime).map_err(|e| UnpackError::Write {
                layer: 0,
                entry: shown,
                source: e,
            })?;
        }
        Ok(())
    }

    /// The real directory `rel` (relative to the root, normalised) is, following symlinks inside the root as the
    /// image would; refused when one points outside. Missing directories are made when `create`, else `None`.
    fn resolve(&self, rel: &Path, create: bool, at: &At) -> Result<Option<PathBuf>, UnpackError> {
        let mut queue: std::collections::VecDeque<OsString> =
            rel.components().map(|c| c.as_os_str().to_os_string()).collect();
        let mut resolved: Vec<OsString> = Vec::new();
        let mut hops = 0;
        while let Some(part) = queue.pop_front() {
            if part == ".." {
                if resolved.pop().is_none() {
                    return Err(at.refuse("a symlink on its path climbs above the image's root"));
                }
                continue;
            }
            if part == "." || part.is_empty() {
                continue;
            }
            let here = self.path_of(&resolved).join(&part);
            match std::fs::symlink_metadata(&here) {
                Ok(m) if m.is_dir() => resolved.push(part),
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    let link = std::fs::read_link(&here).map_err(|e| at.write(e))?;
                    let shown = here.strip_prefix(self.dest).unwrap_or(&here).display().to_string();
                    if link.is_absolute() {
                        return Err(at.refuse(format!(
                            "its path goes through `{shown}`, a symlink to `{}`, which points outside the image's \
                             root",
                            link.display()
                        )));
                    }
                    if hops > MAX_LINK_HOPS {
                        return Err(at.refuse(format!("its path goes through `{shown}`, a symlink loop")));
                    }
                    for (i, c) in link.components().enumerate() {
                        queue.insert(i, c.as_os_str().to_os_string());
                    }
                }
                Ok(_) if create => {
                    // A file where a directory is needed: replaced, as tar does.
                    std::fs::remove_file(&here).map_err(|e| at.write(e))?;
                    std::fs::DirBuilder::new().mode(0o755).create(&here).map_err(|e| at.write(e))?;
                    resolved.push(part);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    std::fs::DirBuilder::new().mode(0o755).create(&here).map_err(|e| at.write(e))?;
                    resolved.push(part);
                }
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(at.write(e)),
            }
        }
        Ok(Some(self.path_of(&resolved)))
    }

    fn path_of(&self, parts: &[OsString]) -> PathBuf {
        let mut p = self.dest.to_path_buf();
        p.extend(parts);
        p
    }

    /// Opaque directory: removes what is in `dir` unless this layer wrote it (descending into directories above
    /// something it wrote).
    fn empty_except(&self, dir: &Path, written: &HashSet<PathBuf>) -> io::Result<()> {
        for child in std::fs::read_dir(dir)? {
            let path = child?.path();
            if !written.contains(&path) {
                remove_any(&path)?;
            } else if std::fs::symlink_metadata(&path)?.is_dir() {
                self.empty_except(&path, written)?;
            }
        }
        Ok(())
    }
}

/// Removes whatever is at `path` (a directory with its contents; a symlink itself, never what it points to);
/// nothing there is fine.
fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::other("a path with a NUL byte"))
}

fn mknod(path: &Path, mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    let c = c_path(path)?;
    // SAFETY: `c` is a valid NUL-terminated path that lives across the call.
    match unsafe { libc::mknod(c.as_ptr(), mode, dev) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Sets the modification (and access) time of `path` itself, a symlink included.
fn set_mtime(path: &Path, mtime: u64) -> io::Result<()> {
    let c = c_path(path)?;
    // `try_into` names no `time_t`: musl deprecates the alias (it is 64-bit there already).
    let t = libc::timespec { tv_sec: mtime.try_into().unwrap_or(0), tv_nsec: 0 };
    let times = [t, t];
    // SAFETY: `c` is a valid path and `times` two initialised timespecs, both alive across the call.
    match unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Removes a tree that may hold directories without write permission (a failed unpack as non-root).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    fn open_up(p: &Path) {
        if let Ok(m) = std::fs::symlink_metadata(p) {
            if m.is_dir() {
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
                if let Ok(children) = std::fs::read_dir(p) {
                    for c in children.flatten() {
                        open_up(&c.path());
                    }
                }
            }
        }
    }
    open_up(path);
    remove_any(path)
}

#[cfg(test)]
#[path = "dir_tests.rs"]
mod tests;

//! The layer cache: republishing unchanged inputs must not re-tar and re-compress them. A layer's bytes are a
//! pure function of its entries (paths, modes, owners, clamped mtimes, link targets, file contents) and of the
//! writer's format, so a key over those, with each file's content identified by its metadata as git's index
//! does (device, inode, size, mtime and ctime in nanoseconds), names the layer the same inputs gave last time.
//! A hit costs one `stat` per file instead of reading and compressing every byte.
//!
//! Layout of the cache directory (shared safely by concurrent runs: every file is written to a temporary name and
//! renamed into place):
//! - `blobs/sha256/HEX`: compressed layers, hard-linked from the build's work directory when it is on the same
//!   filesystem, copied otherwise;
//! - `layers/KEY`: `{"digest", "size", "diff_id", "media_type"}` for the layer the key produced. Its mtime is
//!   the last use, for pruning.
//!
//! What keeps a hit honest:
//! - ctime cannot be set from user space, so a file rewritten with the same size and a restored mtime still
//!   changes the key;
//! - a file whose ctime or mtime is within [`LayerCache::racy_window`] of the time the key is computed is
//!   "racily clean" (git's term): it could change again within the same timestamp tick after we read it, and
//!   keep its times, so such a layer is written but not recorded. Linux stamps files from a clock that ticks
//!   every few milliseconds, so 100 ms is a wide margin; a file whose times have no nanoseconds at all is on a
//!   filesystem with whole-second (or FAT's two-second) stamps and gets two seconds;
//! - contents that live in the build's own work directory (unpacked archives) have new paths every run, so
//!   layers holding them are not recorded at all;
//! - a hit is used only if its blob is still there with the recorded size.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};

use super::fs::{Content, Kind, Node};
use super::layer::write_layer;
use crate::builder::compress::Compression;
use crate::image::{Blob, BlobSource, Descriptor, Digest, Layer};

/// Bumped whenever the tar writer changes the bytes it produces for the same entries.
const FORMAT: &str = "octopush-layer-cache 1; tar: sorted, PAX for overflow, dirs with trailing slash";

/// The racy window on filesystems that stamp whole seconds.
const COARSE_STAMPS: Duration = Duration::from_secs(2);

/// Layers are pruned, least recently used first, once the blobs take more than this.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;

#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
    /// Files changed this recently are not trusted to stay as read (see the module documentation).
    pub racy_window: Duration,
    pub max_bytes: u64,
}

/// A record in `layers/`: the layer's descriptor and diff_id.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    descriptor: Descriptor,
    diff_id: Digest,
}

impl LayerCache {
    /// Opens (and creates) a cache directory, and prunes it to `max_bytes`. Pruning happens here, never while
    /// a build runs, so a layer this build took from the cache stays until it is pushed.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<LayerCache> {
        std::fs::create_dir_all(dir.join("blobs").join("sha256"))?;
        std::fs::create_dir_all(dir.join("layers"))?;
        let cache = LayerCache { dir: dir.to_path_buf(), racy_window: Duration::from_millis(100), max_bytes };
        cache.prune()?;
        Ok(cache)
    }

    /// The cache a build uses: the one in `dir`, opened with the default size; a cache that cannot be opened is
    /// a warning, and the build goes on without one.
    pub fn for_build(dir: Option<&Path>, progress: &dyn crate::progress::Progress) -> Option<LayerCache> {
        let dir = dir?;
        match LayerCache::open(dir, DEFAULT_MAX_BYTES) {
            Ok(c) => Some(c),
            Err(e) => {
                progress
                    .warning(&format!("the layer cache {} cannot be used, building without it: {e}", dir.display()));
                None
            }
        }
    }

    /// The key the cache records a layer of `entries` under, or `None` when it must not be recorded (tests look
    /// at keys through it; [`LayerStore::write`] computes the same [`LayerKey`] once for its memo and the cache).
    #[cfg(test)]
    pub(crate) fn key(&self, entries: &BTreeMap<String, Node>, format: &str, work_dir: &Path) -> Option<String> {
        entries_key(entries, format, work_dir, self.racy_window).filter(|k| k.recordable).map(|k| k.key)
    }

    /// The layer recorded under `key`, if its blob is still in place.
    pub(crate) fn get(&self, key: &str) -> Option<Layer> {
        let index = self.dir.join("layers").join(key);
        let entry: Entry = serde_json::from_slice(&std::fs::read(&index).ok()?).ok()?;
        let blob = self.blob_path(&entry.descriptor.digest);
        if std::fs::metadata(&blob).ok()?.len() != entry.descriptor.size {
            return None;
        }
        // Mark it used, for pruning; failing to is harmless.
        let _ = std::fs::File::options().append(true).open(&index).and_then(|f| f.set_modified(SystemTime::now()));
        Some(Layer {
            blob: Blob { descriptor: entry.descriptor, source: BlobSource::File(blob) },
            diff_id: entry.diff_id,
        })
    }

    /// Records `layer` (whose blob is a file) under `key`.
    pub(crate) fn put(&self, key: &str, layer: &Layer) -> io::Result<()> {
        let BlobSource::File(src) = &layer.blob.source else { return Ok(()) };
        let d = &layer.blob.descriptor;
        let dest = self.blob_path(&d.digest);
        if std::fs::metadata(&dest).map(|m| m.len()).ok() != Some(d.size) {
            let tmp = self.dir.join("blobs").join(format!(".tmp-{}-{}", std::process::id(), d.digest.hex()));
            let _ = std::fs::remove_file(&tmp);
            if std::fs::hard_link(src, &tmp).is_err() {
                std::fs::copy(src, &tmp)?;
            }
            std::fs::rename(&tmp, &dest)?;
        }
        let entry = Entry { descriptor: d.clone(), diff_id: layer.diff_id.clone() };
        let index = self.dir.join("layers").join(key);
        let tmp = index.with_file_name(format!(".tmp-{}-{key}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(&entry).map_err(io::Error::other)?)?;
        std::fs::rename(&tmp, &index)
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs").join(digest.algorithm()).join(digest.hex())
    }

    /// Drops the least recently used layers until the blobs fit in `max_bytes`, then blobs no layer names, and
    /// work directories a killed run left behind (a day old).
    fn prune(&self) -> io::Result<()> {
        for e in std::fs::read_dir(&self.dir)?.flatten() {
            let stale = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
            if e.file_name().to_string_lossy().starts_with("work-") && stale.is_some_and(|age| age.as_secs() > 86_400) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let mut layers = Vec::new();
        for e in std::fs::read_dir(self.dir.join("layers"))? {
            let e = e?;
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(entry) = std::fs::read(e.path()).map(|b| serde_json::from_slice::<Entry>(&b)) else { continue };
            let used = e.metadata()?.modified()?;
            layers.push((used, e.path(), entry.ok()));
        }
        let mut total: u64 = 0;
        let mut counted = BTreeSet::new();
        for (_, _, entry) in &layers {
            if let Some(Entry { descriptor: d, .. }) = entry {
                if counted.insert(d.digest.hex()) {
                    total += d.size;
                }
            }
        }
        if total <= self.max_bytes {
            return Ok(());
        }
        layers.sort_by_key(|(used, _, _)| *used);
        let mut keep = BTreeSet::new();
        let mut kept: u64 = 0;
        for (_, path, entry) in layers.iter().rev() {
            let Some(Entry { descriptor: d, .. }) = entry else {
                let _ = std::fs::remove_file(path);
                continue;
            };
            let hex = d.digest.hex();
            if keep.contains(hex) {
                continue;
            }
            if kept + d.size <= self.max_bytes {
                kept += d.size;
                keep.insert(hex.to_string());
            } else {
                let _ = std::fs::remove_file(path);
            }
        }
        for e in std::fs::read_dir(self.dir.join("blobs").join("sha256"))? {
            let e = e?;
            if !keep.contains(e.file_name().to_string_lossy().as_ref()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(())
    }
}

/// Where a build's layers come from: the persistent [`LayerCache`] when there is one, and a memo of the layers
/// this build wrote, so a layer that comes out the same for every platform of a multi-platform build is written
/// once (the second platform's COPY plans the same entries over the same files).
#[derive(Debug, Default)]
pub(crate) struct LayerStore {
    pub cache: Option<LayerCache>,
    memo: Mutex<HashMap<String, Layer>>,
}

/// Where a layer that was not written came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hit {
    /// The persistent cache: an earlier build recorded it.
    Cache,
    /// This build wrote it already (for another platform, or a split build's tail ahead of the export).
    Build,
}

pub(crate) struct Cached {
    pub layer: Layer,
    /// `None` when the layer was written.
    pub hit: Option<Hit>,
    pub warning: Option<String>,
}

impl LayerStore {
    pub(crate) fn new(cache: Option<LayerCache>) -> LayerStore {
        LayerStore { cache, memo: Mutex::default() }
    }

    /// A layer for `entries`: one this build already wrote, else one the cache recorded for the same inputs,
    /// else written to `work_dir` (and recorded). A cache that cannot record is not an error: the warning says
    /// why and the build goes on.
    pub(crate) fn write(
        &self,
        entries: &BTreeMap<String, Node>,
        work_dir: &Path,
        compression: Compression,
    ) -> io::Result<Cached> {
        let racy_window = self.cache.as_ref().map_or(Duration::ZERO, |c| c.racy_window);
        let key = entries_key(entries, compression.cache_key(), work_dir, racy_window);
        let memo_key = key.as_ref().map(|k| k.key.as_str());
        if let Some(layer) = memo_key.and_then(|k| self.memo.lock().unwrap_or_else(|p| p.into_inner()).get(k).cloned())
        {
            return Ok(Cached { layer, hit: Some(Hit::Build), warning: None });
        }
        let remember = |layer: &Layer| {
            if let Some(k) = memo_key {
                self.memo.lock().unwrap_or_else(|p| p.into_inner()).insert(k.to_string(), layer.clone());
            }
        };
        let recordable = key.as_ref().filter(|k| k.recordable).map(|k| k.key.as_str());
        let key = self.cache.as_ref().zip(recordable);
        if let Some(layer) = key.as_ref().and_then(|(c, k)| c.get(k)) {
            remember(&layer);
            return Ok(Cached { layer, hit: Some(Hit::Cache), warning: None });
        }
        let layer = write_layer(entries, work_dir, compression)?;
        remember(&layer);
        let warning = match key {
            Some((c, k)) => {
                c.put(k, &layer).err().map(|e| format!("the layer cache in {} is not updated: {e}", c.dir.display()))
            }
            None => None,
        };
        Ok(Cached { layer, hit: None, warning })
    }
}

/// A key over everything a layer's bytes depend on: the same key, the same bytes. `recordable` is false when
/// the persistent cache must not keep it (a file is racily clean within `racy_window`, or lives in `work_dir`);
/// the build's own memo can still use it, since the same file read twice within one build is the same file.
struct LayerKey {
    key: String,
    recordable: bool,
}

/// The [`LayerKey`] of `entries` written in `format`, or `None` when a file cannot be read.
fn entries_key(
    entries: &BTreeMap<String, Node>,
    format: &str,
    work_dir: &Path,
    racy_window: Duration,
) -> Option<LayerKey> {
    let now = SystemTime::now();
    let mut recordable = true;
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    field(FORMAT.as_bytes());
    field(format.as_bytes());
    for (path, node) in entries {
        field(path.as_bytes());
        field(&node.mode.to_le_bytes());
        field(&node.uid.to_le_bytes());
        field(&node.gid.to_le_bytes());
        field(&node.mtime.to_le_bytes());
        match &node.kind {
            Kind::Dir => field(b"d"),
            Kind::Symlink(t) => {
                field(b"s");
                field(t.as_bytes());
            }
            Kind::Hardlink(t) => {
                field(b"h");
                field(t.as_bytes());
            }
            Kind::File { content: Content::Inline(bytes), size } => {
                field(b"i");
                field(&size.to_le_bytes());
                field(&Sha256::digest(bytes.as_slice()));
            }
            Kind::File { content: Content::Disk(p), size } => {
                let m = std::fs::metadata(p).ok()?;
                let changed = [m.modified().ok()?, ctime(&m)?];
                let window = if racy_window.is_zero() {
                    Duration::ZERO
                } else if m.mtime_nsec() == 0 && m.ctime_nsec() == 0 {
                    racy_window.max(COARSE_STAMPS)
                } else {
                    racy_window
                };
                let racy = changed
                    .iter()
                    .any(|t| !window.is_zero() && now.duration_since(*t).map_or(true, |age| age < window));
                if racy || p.starts_with(work_dir) {
                    recordable = false;
                }
                field(b"f");
                field(p.as_os_str().as_encoded_bytes());
                field(&size.to_le_bytes());
                for n in [m.dev(), m.ino(), m.size()] {
                    field(&n.to_le_bytes());
                }
                for n in [m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()] {
                    field(&n.to_le_bytes());
                }
            }
        }
    }
    Some(LayerKey { key: hex::encode(h.finalize()), recordable })
}

fn ctime(m: &std::fs::Metadata) -> Option<SystemTime> {
    let secs = u64::try_from(m.ctime()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, u32::try_from(m.ctime_nsec()).ok()?))
}

//! Reading files out of a registry base's layers, for the few instructions that need to see inside the base
//! (`--chown=name` and `USER name` need `/etc/passwd` and `/etc/group`). Layers are downloaded into the work
//! directory from the top down, only until the file is found or a whiteout hides it, and each layer and each
//! answer is kept for the rest of the build, so one base is read at most once per file.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Mutex;

use super::fs::{FsTree, MAX_LINKS, link_target, normalize_in_root};
use super::{BaseResolver, BuildError};
use crate::image::{BlobSource, Digest, Layer};
use crate::unpack::{Whiteout, open_layer, whiteout};

/// Files larger than this are not read into memory (`/etc/passwd` is a few kilobytes).
const MAX_FILE: u64 = 16 << 20;

/// What a build has downloaded from its bases and the files read from them.
#[derive(Default)]
pub(crate) struct BaseFiles {
    /// Layer blob digest -> the downloaded file.
    blobs: Mutex<HashMap<Digest, PathBuf>>,
    /// (the base's layer digests, path) -> the file's bytes, `None` when the base does not have it.
    files: Mutex<HashMap<FileKey, Option<Vec<u8>>>>,
    /// `COPY --from=<image>` sources unpacked so far, by reference and platform.
    images: Mutex<HashMap<String, Arc<FsTree>>>,
}

/// A file of one base: its layers' digests and the path.
type FileKey = (Vec<Digest>, String);

/// What one layer says about a path.
#[derive(Debug, PartialEq)]
pub(crate) enum Found {
    /// A regular file with these bytes.
    File(Vec<u8>),
    /// A symbolic link (its target, as written) or a hard link (`/` + the linked path).
    Link(String),
    /// Deleted or hidden by a whiteout, or not a regular file: lower layers do not count.
    Gone,
    /// The layer does not mention it: look below.
    NotHere,
}

impl BaseFiles {
    /// The bytes of `path` (relative to `/`) in the image made of `layers` (bottom first), following symbolic
    /// links; `None` when the image does not have it as a regular file.
    pub(crate) async fn read<R: BaseResolver>(
        &self,
        bases: &R,
        layers: &[Layer],
        path: &str,
        work_dir: &Path,
    ) -> Result<Option<Vec<u8>>, BuildError> {
        let key = (layers.iter().map(|l| l.blob.descriptor.digest.clone()).collect::<Vec<_>>(), path.to_string());
        let mut files = self.files.lock().await;
        if let Some(known) = files.get(&key) {
            return Ok(known.clone());
        }
        let mut wanted = normalize_in_root(path);
        let mut hops = 0;
        let result = 'search: loop {
            for layer in layers.iter().rev() {
                let file = self.layer_file(bases, layer, work_dir).await?;
                let target = wanted.clone();
                let found = tokio::task::spawn_blocking(move || scan_layer(&file, &target))
                    .await
                    .map_err(|e| BuildError::Options(format!("the layer reader stopped: {e}")))?
                    .map_err(|e| BuildError::io("reading the base layer", layer_path(work_dir, layer), e))?;
                match found {
                    Found::File(bytes) => break 'search Some(bytes),
                    Found::Gone => break 'search None,
                    Found::NotHere => continue,
                    Found::Link(target) => {
                        hops += 1;
                        if hops > MAX_LINKS {
                            break 'search None;
                        }
                        wanted = link_target(&wanted, &target);
                        continue 'search;
                    }
                }
            }
            break None;
        };
        files.insert(key, result.clone());
        Ok(result)
    }

    /// An image unpacked earlier in this build (`key`: reference and platform).
    pub(crate) async fn image(&self, key: &str) -> Option<Arc<FsTree>> {
        self.images.lock().await.get(key).cloned()
    }

    pub(crate) async fn remember_image(&self, key: String, tree: Arc<FsTree>) {
        self.images.lock().await.insert(key, tree);
    }

    /// The layer's blob on disk: downloaded once per build into the work directory.
    pub(crate) async fn layer_file<R: BaseResolver>(
        &self,
        bases: &R,
        layer: &Layer,
        work_dir: &Path,
    ) -> Result<PathBuf, BuildError> {
        if let BlobSource::File(p) = &layer.blob.source {
            return Ok(p.clone());
        }
        let digest = &layer.blob.descriptor.digest;
        let mut blobs = self.blobs.lock().await;
        if let Some(p) = blobs.get(digest) {
            return Ok(p.clone());
        }
        let dest = layer_path(work_dir, layer);
        bases.fetch_blob(&layer.blob, &dest).await?;
        blobs.insert(digest.clone(), dest.clone());
        Ok(dest)
    }
}

fn layer_path(work_dir: &Path, layer: &Layer) -> PathBuf {
    let d = &layer.blob.descriptor.digest;
    work_dir.join(format!(".base-{}-{}", d.algorithm(), d.hex()))
}

/// What the layer at `file` holds at `target`: the entry itself, or a whiteout of it or of a parent (`.wh.NAME`),
/// or an opaque marker (`.wh..wh..opq`) in a parent, which hides what lower layers had there.
pub(crate) fn scan_layer(file: &Path, target: &str) -> std::io::Result<Found> {
    let mut archive = tar::Archive::new(open_layer(file)?);
    let mut ancestors = Vec::new();
    let mut p = target;
    while let Some((up, _)) = p.rsplit_once('/') {
        ancestors.push(up);
        p = up;
    }
    ancestors.push("");
    let mut found = Found::NotHere;
    let mut hidden = false;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = normalize_in_root(&String::from_utf8_lossy(&entry.path_bytes()));
        match whiteout(&path) {
            Some(Whiteout::Opaque(dir)) => {
                hidden |= ancestors.contains(&dir);
                continue;
            }
            Some(Whiteout::Delete(victim)) => {
                hidden |= victim == target || target.starts_with(&format!("{victim}/"));
                continue;
            }
            None => {}
        }
        if path != target {
            continue;
        }
        let link = || entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default();
        found = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if entry.size() > MAX_FILE {
                    return Err(std::io::Error::other(format!("/{target} is over {MAX_FILE} bytes")));
                }
                let mut bytes = Vec::new();
                (&mut entry).take(MAX_FILE).read_to_end(&mut bytes)?;
                Found::File(bytes)
            }
            tar::EntryType::Symlink => Found::Link(link()),
            tar::EntryType::Link => Found::Link(format!("/{}", link())),
            _ => Found::Gone,
        };
    }
    Ok(match found {
        Found::NotHere if hidden => Found::Gone,
        other => other,
    })
}

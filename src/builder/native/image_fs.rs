//! `COPY --from=<image>`: an image's layers, downloaded into the work directory and unpacked in order into an
//! [`FsTree`] as a container runtime would (whiteouts delete, opaque markers empty a directory of what lower
//! layers put there), file contents stored on disk beside them, never in memory. How a layer is read and what a
//! whiteout is live in [`crate::unpack`], which `install`'s `dir:` target shares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::archive;
use super::fs::FsTree;
use crate::unpack::{Whiteout, layer_kind, whiteout};

/// Unpacks the layer blobs at `layers` (bottom first) into a complete tree; contents go below `work_dir`.
pub(crate) fn unpack_image(layers: &[PathBuf], work_dir: &Path) -> Result<FsTree, String> {
    let mut tree = FsTree::new(true);
    for (n, layer) in layers.iter().enumerate() {
        let kind = layer_kind(layer).map_err(|e| format!("layer {}: {e}", n + 1))?;
        let (items, _) = archive::unpack(layer, kind, work_dir).map_err(|e| format!("layer {}: {e}", n + 1))?;
        let mut entries = BTreeMap::new();
        let mut opaque = Vec::new();
        let mut deleted = Vec::new();
        for item in items {
            match whiteout(&item.rel) {
                Some(Whiteout::Opaque(dir)) => opaque.push(dir.to_string()),
                Some(Whiteout::Delete(path)) => deleted.push(path),
                None => {
                    entries.insert(item.rel, item.node);
                }
            }
        }
        for dir in &opaque {
            tree.remove_below(dir);
        }
        for path in &deleted {
            tree.remove(path);
        }
        tree.apply(&entries);
    }
    Ok(tree)
}

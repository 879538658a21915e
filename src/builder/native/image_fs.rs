//! `COPY --from=<image>`: an image's layers, downloaded into the work directory and unpacked in order into an
//! [`FsTree`] as a container runtime would (whiteouts delete, opaque markers empty a directory of what lower
//! layers put there), file contents stored on disk beside them, never in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::archive::{self, ArchiveKind};
use super::fs::FsTree;

const OPAQUE: &str = ".wh..wh..opq";

/// What a whiteout entry of a layer does to what lower layers put there.
pub(crate) enum Whiteout<'a> {
    /// `DIR/.wh..wh..opq`: DIR is emptied (and kept).
    Opaque(&'a str),
    /// `DIR/.wh.NAME`: DIR/NAME and what is below it are deleted.
    Delete(String),
}

/// The whiteout a layer entry at `path` (normalised, relative to `/`) is, if it is one.
pub(crate) fn whiteout(path: &str) -> Option<Whiteout<'_>> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    if name == OPAQUE {
        return Some(Whiteout::Opaque(dir));
    }
    let victim = name.strip_prefix(".wh.")?;
    Some(Whiteout::Delete(if dir.is_empty() { victim.to_string() } else { format!("{dir}/{victim}") }))
}

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

/// A layer blob is a gzip, zstd or plain tar, told apart by its first bytes (an empty layer is just zeros, so
/// not sniffed as ADD sniffs).
fn layer_kind(path: &Path) -> std::io::Result<ArchiveKind> {
    let mut head = [0u8; 4];
    let n = std::io::Read::read(&mut std::fs::File::open(path)?, &mut head)?;
    Ok(match &head[..n] {
        [0x1f, 0x8b, ..] => ArchiveKind::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => ArchiveKind::Zstd,
        _ => ArchiveKind::Tar,
    })
}

/// Opens a layer blob as a tar stream, whatever its compression ([`layer_kind`]).
pub(crate) fn open_layer(path: &Path) -> std::io::Result<Box<dyn std::io::Read>> {
    archive::open(path, layer_kind(path)?)
}

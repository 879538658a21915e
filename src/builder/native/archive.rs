//! ADD's local archives: recognising a tar (plain or gzip) by its bytes, as Docker does rather than by name,
//! and unpacking it safely (no `..` paths; contents go to files in the work directory, never to the context).

use std::io::Read;

use super::context::{Item, Root};
use super::copy::relink;
use super::fs::{Content, Kind, Node, normalize_in_root};
pub(crate) use crate::unpack::{ArchiveKind, open};

/// Whether an ADDed file is an archive to unpack (tar, gzip or zstd). bzip2 and xz cannot be unpacked without
/// more codecs: that is an error rather than a silent copy of the compressed file.
pub(crate) fn sniff(path: &std::path::Path) -> Result<Option<ArchiveKind>, String> {
    let mut head = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(512).read_to_end(&mut head)).map_err(|e| e.to_string())?;
    let unsupported = |what: &str| {
        Err(format!(
            "{what}-compressed archives cannot be unpacked by the native builder yet; use .tar or .tar.gz, or COPY \
             the file to keep it compressed"
        ))
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut inner = Vec::new();
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let _ = flate2::read::GzDecoder::new(file).take(512).read_to_end(&mut inner);
        return Ok(is_tar_header(&inner).then_some(ArchiveKind::Gzip));
    }
    if head.starts_with(b"BZh") {
        return unsupported("bzip2");
    }
    if head.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
        return unsupported("xz");
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let mut inner = Vec::new();
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        if let Ok(d) = zstd::stream::read::Decoder::new(file) {
            let _ = d.take(512).read_to_end(&mut inner);
        }
        return Ok(is_tar_header(&inner).then_some(ArchiveKind::Zstd));
    }
    Ok(is_tar_header(&head).then_some(ArchiveKind::Tar))
}

/// A tar header: the `ustar` magic, or an old-style header whose checksum adds up.
fn is_tar_header(b: &[u8]) -> bool {
    if b.len() < 512 {
        return false;
    }
    if &b[257..262] == b"ustar" {
        return true;
    }
    let field = String::from_utf8_lossy(&b[148..156]);
    let Ok(stored) = u64::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8) else { return false };
    let sum: u64 =
        b[..512].iter().enumerate().map(|(i, &x)| if (148..156).contains(&i) { 32 } else { u64::from(x) }).sum();
    stored == sum && b[0] != 0
}

/// Unpacks an archive: file contents go to a directory in the work directory, entries come back relative to
/// the destination.
pub(crate) fn unpack(
    path: &std::path::Path,
    kind: ArchiveKind,
    work_dir: &std::path::Path,
) -> std::io::Result<(Vec<Item>, Vec<String>)> {
    let reader = open(path, kind)?;
    let store = tempfile::Builder::new().prefix(".unpack-").tempdir_in(work_dir)?.keep();
    let mut archive = tar::Archive::new(reader);
    let mut items = Vec::new();
    let mut warnings = Vec::new();
    for (n, entry) in archive.entries()?.enumerate() {
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        // As Docker's ADD, a leading `/` is taken as the root; `..` is refused (the check layers get too).
        let rel = crate::unpack::entry_path(std::path::Path::new(raw.trim_start_matches('/')))
            .map_err(|e| std::io::Error::other(format!("{raw}: {e}")))?
            .to_string_lossy()
            .into_owned();
        let h = entry.header();
        // Empty numeric fields read as 0, as Go's archive/tar reads them.
        let (mode, uid, gid) = (h.mode().unwrap_or(0o644) & 0o7777, h.uid().unwrap_or(0), h.gid().unwrap_or(0));
        let mtime = h.mtime().unwrap_or(0) as i64;
        let node_kind = match h.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                let stored = store.join(n.to_string());
                std::io::copy(&mut entry, &mut std::fs::File::create(&stored)?)?;
                Kind::File { content: Content::Disk(stored), size }
            }
            tar::EntryType::Symlink => Kind::Symlink(
                entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default(),
            ),
            tar::EntryType::Link => {
                let target =
                    entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default();
                Kind::Hardlink(normalize_in_root(&target))
            }
            other => {
                warnings.push(format!("skipped {raw} ({other:?} entries are not supported)"));
                continue;
            }
        };
        if rel.is_empty() {
            continue;
        }
        items.push(Item { rel, node: Node { kind: node_kind, mode, uid, gid, mtime }, inode: None });
    }
    let root = Root { is_dir: true, name: String::new(), path: String::new(), items };
    Ok((relink(vec![root]).pop().map(|r| r.items).unwrap_or_default(), warnings))
}

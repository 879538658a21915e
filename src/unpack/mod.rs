//! Image layers as a container runtime reads them, in one place for everything that unpacks one: the native
//! builder's `COPY --from=<image>` and ADD (into its tree of a stage's files) and `install`'s `dir:` target
//! (onto disk, [`unpack_into_dir`]). A layer is a tar, plain, gzip or zstd, told apart by its first bytes; its
//! entries' paths are checked here ([`entry_path`]: never `..`, never absolute), and whiteouts (`.wh.NAME`,
//! `.wh..wh..opq`) are recognised here ([`whiteout`]).

mod dir;

use std::io::Read;
use std::path::{Component, Path, PathBuf};

pub use dir::{DirOptions, UnpackError, UnpackStats, remove_tree, unpack_into_dir};

/// The name of the opaque-directory marker: its directory keeps only what the same layer puts in it.
pub const OPAQUE: &str = ".wh..wh..opq";
/// The prefix of a whiteout: `.wh.NAME` deletes NAME of lower layers.
pub const WHITEOUT_PREFIX: &str = ".wh.";

/// How a layer or archive is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    Tar,
    Gzip,
    Zstd,
}

/// The tar stream of the archive at `path`, decompressed as `kind` says.
pub fn open(path: &Path, kind: ArchiveKind) -> std::io::Result<Box<dyn Read + Send>> {
    let file = std::fs::File::open(path)?;
    Ok(match kind {
        ArchiveKind::Tar => Box::new(file),
        ArchiveKind::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
        ArchiveKind::Zstd => Box::new(zstd::stream::read::Decoder::new(file)?),
    })
}

/// A layer blob is a gzip, zstd or plain tar, told apart by its first bytes (an empty layer is just zeros, so
/// it is not sniffed for a tar header as ADD sniffs archives).
pub fn layer_kind(path: &Path) -> std::io::Result<ArchiveKind> {
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path)?.read(&mut head)?;
    Ok(match &head[..n] {
        [0x1f, 0x8b, ..] => ArchiveKind::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => ArchiveKind::Zstd,
        _ => ArchiveKind::Tar,
    })
}

/// Opens a layer blob as a tar stream, whatever its compression ([`layer_kind`]).
pub fn open_layer(path: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    open(path, layer_kind(path)?)
}

/// What a whiteout entry of a layer does to what lower layers put there.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// `DIR/.wh..wh..opq`: DIR is emptied of what lower layers put there (and kept).
    Opaque(&'a str),
    /// `DIR/.wh.NAME`: DIR/NAME and what is below it are deleted.
    Delete(String),
}

/// The whiteout a layer entry at `path` (normalised, relative to `/`) is, if it is one.
pub fn whiteout(path: &str) -> Option<Whiteout<'_>> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    if name == OPAQUE {
        return Some(Whiteout::Opaque(dir));
    }
    // `.wh.`, `.wh..` and `.wh...` name no file of the directory: not whiteouts (nothing above is ever deleted).
    let victim = name.strip_prefix(WHITEOUT_PREFIX).filter(|v| !matches!(*v, "" | "." | ".."))?;
    Some(Whiteout::Delete(if dir.is_empty() { victim.to_string() } else { format!("{dir}/{victim}") }))
}

/// Why an entry's path cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnsafePath {
    #[error("its path has a `..` component, which would leave the image's root")]
    ParentDir,
    #[error("its path is absolute")]
    Absolute,
}

/// An entry's path, relative to the root and normalised (`./a//b/` is `a/b`; the root itself is empty).
/// Refused: a `..` component anywhere, and an absolute path.
pub fn entry_path(raw: &Path) -> Result<PathBuf, UnsafePath> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir => return Err(UnsafePath::ParentDir),
            Component::RootDir | Component::Prefix(_) => return Err(UnsafePath::Absolute),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_are_recognised() {
        assert_eq!(whiteout("a/b/.wh..wh..opq"), Some(Whiteout::Opaque("a/b")));
        assert_eq!(whiteout(".wh..wh..opq"), Some(Whiteout::Opaque("")));
        assert_eq!(whiteout("etc/.wh.passwd"), Some(Whiteout::Delete("etc/passwd".into())));
        assert_eq!(whiteout(".wh.tmp"), Some(Whiteout::Delete("tmp".into())));
        assert_eq!(whiteout("etc/passwd"), None);
        assert_eq!(whiteout("etc/x.wh.y"), None);
        assert_eq!(whiteout("etc/.wh.."), None, "never the parent");
        assert_eq!(whiteout("etc/.wh."), None);
    }

    #[test]
    fn entry_paths_are_normalised_and_never_leave_the_root() {
        let ok = |s: &str| entry_path(Path::new(s)).unwrap();
        assert_eq!(ok("./bin//sh"), PathBuf::from("bin/sh"));
        assert_eq!(ok("usr/lib/"), PathBuf::from("usr/lib"));
        assert_eq!(ok("./"), PathBuf::new());
        assert_eq!(ok("a/./b"), PathBuf::from("a/b"));
        assert_eq!(entry_path(Path::new("../../x")), Err(UnsafePath::ParentDir));
        assert_eq!(entry_path(Path::new("a/../../b")), Err(UnsafePath::ParentDir));
        assert_eq!(entry_path(Path::new("a/b/..")), Err(UnsafePath::ParentDir));
        assert_eq!(entry_path(Path::new("/etc/passwd")), Err(UnsafePath::Absolute));
    }

    #[test]
    fn layers_are_sniffed_by_their_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let tar = {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_ustar();
            h.set_size(2);
            h.set_mode(0o644);
            b.append_data(&mut h, "f", &b"hi"[..]).unwrap();
            b.into_inner().unwrap()
        };
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, &tar).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        for (name, bytes, kind) in
            [("t", &tar, ArchiveKind::Tar), ("g", &gz, ArchiveKind::Gzip), ("z", &zst, ArchiveKind::Zstd)]
        {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            assert_eq!(layer_kind(&path).unwrap(), kind);
            let mut out = Vec::new();
            open_layer(&path).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, tar);
        }
    }
}

//! Writes one layer: a deterministic tar, compressed (gzip or zstd, on every core: `compress`), both hashed while
//! they stream to a file in the work directory.
//!
//! The bytes depend only on the entries, never on the machine, its number of cores or the clock, so the same COPY
//! gives the same digests on every run and for every platform (shared layers then upload once):
//! - entries in path order (parents first), directories named `dir/`, no user or group names;
//! - USTAR headers as Go's `archive/tar` writes them when the fields fit, and a PAX record (`path`, `linkpath`,
//!   `size`, `uid`, `gid`, `mtime`) in front of an entry whose field does not fit: a path over the USTAR split
//!   limits or not ASCII, a link target over 100 bytes, a file of 8 GiB or more, ids over 2097151. PAX rather
//!   than GNU long names because every OCI tool reads PAX and Go writes it;
//! - compressed as `compress` documents byte for byte (gzip level 6 in fixed 128 KiB blocks by default; zstd
//!   level 3 on request).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;

use super::fs::{Kind, Node};
use crate::builder::compress::{Compression, write_layer_with};
use crate::image::Layer;

/// The largest value of an 11-digit octal field (size, mtime): 8 GiB - 1.
const USTAR_MAX_NUMERIC: u64 = 0o777_7777_7777;
const USTAR_MAX_ID: u64 = 0o7777777;

/// Writes `entries` (keys: paths relative to `/`) as a layer file in `work_dir` compressed with `compression`,
/// named by its digest.
pub(crate) fn write_layer(
    entries: &BTreeMap<String, Node>,
    work_dir: &Path,
    compression: Compression,
) -> io::Result<Layer> {
    write_layer_with(work_dir, compression, |out| {
        let mut tar = tar::Builder::new(out);
        for (path, node) in entries {
            append(&mut tar, path, node)?;
        }
        tar.into_inner().map(drop)
    })
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, node: &Node) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
    let name = if node.is_dir() { format!("{path}/") } else { path.to_string() };
    if !set_ustar_name(&mut h, &name) {
        pax.push(("path", name.clone().into_bytes()));
        let placeholder: String = name.chars().map(|c| if c.is_ascii() { c } else { '_' }).take(99).collect();
        set_field(&mut h.as_old_mut().name, placeholder.as_bytes());
    }
    h.set_mode(node.mode & 0o7777);
    if node.uid > USTAR_MAX_ID {
        pax.push(("uid", node.uid.to_string().into_bytes()));
    }
    if node.gid > USTAR_MAX_ID {
        pax.push(("gid", node.gid.to_string().into_bytes()));
    }
    h.set_uid(node.uid.min(USTAR_MAX_ID));
    h.set_gid(node.gid.min(USTAR_MAX_ID));
    let mtime = u64::try_from(node.mtime).unwrap_or(0);
    if node.mtime < 0 || mtime > USTAR_MAX_NUMERIC {
        pax.push(("mtime", node.mtime.to_string().into_bytes()));
    }
    h.set_mtime(mtime.min(USTAR_MAX_NUMERIC));
    let mut size = 0;
    match &node.kind {
        Kind::Dir => h.set_entry_type(tar::EntryType::Directory),
        Kind::File { size: s, .. } => {
            h.set_entry_type(tar::EntryType::Regular);
            size = *s;
        }
        Kind::Symlink(target) | Kind::Hardlink(target) => {
            h.set_entry_type(if matches!(node.kind, Kind::Symlink(_)) {
                tar::EntryType::Symlink
            } else {
                tar::EntryType::Link
            });
            if target.len() <= 100 && target.is_ascii() {
                set_field(&mut h.as_old_mut().linkname, target.as_bytes());
            } else {
                pax.push(("linkpath", target.clone().into_bytes()));
            }
        }
    }
    if size > USTAR_MAX_NUMERIC {
        pax.push(("size", size.to_string().into_bytes()));
    }
    h.set_size(size);
    h.set_cksum();
    if !pax.is_empty() {
        tar.append_pax_extensions(pax.iter().map(|(k, v)| (*k, v.as_slice())))?;
    }
    match &node.kind {
        Kind::File { content, size } => {
            let reader = content.open().map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
            tar.append(&h, Exact { inner: reader.take(*size), remaining: *size, path })
        }
        _ => tar.append(&h, io::empty()),
    }
}

/// Puts `name` in the USTAR name (and prefix) fields if it fits and is ASCII; false if it needs a PAX record.
fn set_ustar_name(h: &mut tar::Header, name: &str) -> bool {
    if !name.is_ascii() {
        return false;
    }
    let Some(ustar) = h.as_ustar_mut() else { return false };
    let b = name.as_bytes();
    if b.len() <= 100 {
        set_field(&mut ustar.name, b);
        return true;
    }
    // Split at a slash: prefix up to 155 bytes, the rest (non-empty) up to 100.
    let split =
        (0..b.len()).rev().filter(|&i| b[i] == b'/').find(|&i| i <= 155 && b.len() - i - 1 <= 100 && i + 1 < b.len());
    match split {
        Some(i) => {
            set_field(&mut ustar.prefix, &b[..i]);
            set_field(&mut ustar.name, &b[i + 1..]);
            true
        }
        None => false,
    }
}

fn set_field(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Reads exactly `remaining` bytes, failing if the file got shorter since it was listed (a tar header already
/// promised its size).
struct Exact<'a, R> {
    inner: R,
    remaining: u64,
    path: &'a str,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} changed while the layer was written (it is shorter than when it was listed)", self.path),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

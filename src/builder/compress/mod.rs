//! Layer compression on every core, with bytes that depend only on the tar, never on the machine or its number of
//! cores (the same inputs must give the same layer digest everywhere). Two codecs, chosen by the `compression`
//! input:
//!
//! **gzip** (the default; every registry and runtime reads it): one gzip member written pigz-style on every
//! core, deflate level 6 where it gains something and stored blocks where the tar holds noise; [`gzip`] gives
//! the format.
//!
//! **zstd** (`application/vnd.oci.image.layer.v1.tar+zstd`: smaller and several times faster, but only recent
//! runtimes pull it, containerd 1.5+ and podman among them; check the engines that pull the image): libzstd 1.5.7 (zstd-sys pinned in Cargo.toml, built from its bundled sources), level
//! [`ZSTD_LEVEL`], content checksum on, always in multi-threaded mode with jobs of [`ZSTD_JOB`] bytes. zstd's
//! multi-threaded mode cuts the input into jobs whose size comes from the parameters, not from the number of
//! workers, so its output is the same for 1 worker or 8 (checked by `tests` for 1, 2 and 4 workers and several
//! write patterns); single-threaded mode (0 workers) writes different frames, so it is never used, even on one
//! core. Memory: a job in and out per worker plus the 2 MiB window of level 3.

use std::io::{self, Write};
use std::path::Path;

use crate::image::{Blob, BlobSource, Descriptor, Growing, HashingWriter, Layer, media_type};

mod gzip;
#[cfg(test)]
mod tests;

pub use gzip::GZIP_BLOCK;
use gzip::ParallelGzip;

/// zstd's default level: faster than gzip -1 and smaller than gzip -6 (CRATES.md).
pub const ZSTD_LEVEL: i32 = 3;
/// Bytes of tar per zstd job (a parameter, so the output does not depend on libzstd's default for it).
pub const ZSTD_JOB: u32 = 4 << 20;

/// How layers are compressed (the `compression` input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    /// Plain tar, not an input value: layers handed to a local engine, which would only decompress them (a split
    /// build's tail loaded ahead). Never pushed.
    Uncompressed,
}

impl Compression {
    /// The values the `compression` input accepts.
    pub const NAMES: [&'static str; 2] = ["gzip", "zstd"];

    pub fn parse(name: &str) -> Option<Compression> {
        match name {
            "gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Uncompressed => "uncompressed",
        }
    }

    /// The OCI layer media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => media_type::OCI_LAYER_GZIP,
            Compression::Zstd => media_type::OCI_LAYER_ZSTD,
            Compression::Uncompressed => media_type::OCI_LAYER_TAR,
        }
    }

    /// The layer file's extension in the work directory.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "tar.gz",
            Compression::Zstd => "tar.zst",
            Compression::Uncompressed => "tar",
        }
    }

    /// Names the codec and every setting that decides its bytes, for the layer cache's keys: it changes whenever
    /// the compressed bytes for the same tar would (`tests::compressed_bytes_are_pinned_to_the_cache_key` fails
    /// when the bytes change and the key does not).
    pub fn cache_key(self) -> &'static str {
        match self {
            Compression::Gzip => {
                "gzip 6, zlib-rs 0.5.5, 128 KiB blocks, sync flushes, uniform blocks and 4 KiB chunks stored, \
                 32 KiB dictionaries before each deflated run, a new compressor for each"
            }
            Compression::Zstd => "zstd 3, libzstd 1.5.7, multi-threaded, 4 MiB jobs, checksum",
            Compression::Uncompressed => "tar",
        }
    }

    /// A compressing writer onto `out`, on `threads` threads (the bytes do not depend on it).
    pub(crate) fn encoder<W: Write>(self, out: W, threads: usize) -> io::Result<Encoder<W>> {
        Ok(match self {
            Compression::Gzip => Encoder::Gzip(ParallelGzip::new(out, threads)?),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                e.multithread(threads.clamp(1, 64) as u32)?;
                e.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB))?;
                e.include_checksum(true)?;
                Encoder::Zstd(e)
            }
            Compression::Uncompressed => Encoder::Plain(out),
        })
    }
}

/// Writes one layer file into `dir`: `write` produces the uncompressed tar, which is hashed (the `diff_id`),
/// compressed on every core and hashed again (the blob's digest) as it streams to a temporary file, renamed
/// after its digest when done. Shared by the native builder (tars it writes) and the engine builder (tars the
/// engine exports).
pub(crate) fn write_layer_with(
    dir: &Path,
    compression: Compression,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<Layer> {
    write_layer_announced(dir, compression, None, write)
}

/// [`write_layer_with`], handing the blob to `announce` as a [`Growing`] blob before its first byte is written,
/// so a push can stream it while it is compressed. The growing blob ends as the layer's blob, or with the error.
pub(crate) fn write_layer_announced(
    dir: &Path,
    compression: Compression,
    announce: Option<&dyn Fn(Growing)>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<Layer> {
    let tmp = tempfile::Builder::new().prefix(".layer-").tempfile_in(dir)?;
    let finisher = match announce {
        Some(announce) => {
            let (growing, finisher) = Growing::new(tmp.reopen()?);
            announce(growing);
            Some(finisher)
        }
        None => None,
    };
    let written = (|| -> io::Result<Layer> {
        let file: Box<dyn Write + '_> = match &finisher {
            Some(f) => Box::new(f.writer(tmp.as_file())),
            None => Box::new(tmp.as_file()),
        };
        let blob = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file));
        let encoder = compression.encoder(blob, default_threads())?;
        // Blocks of tar go to the encoder whole rather than 512 bytes at a time.
        let mut tar = HashingWriter::new(io::BufWriter::with_capacity(256 << 10, encoder));
        write(&mut tar)?;
        let (diff_id, _, buffered) = tar.finish();
        let encoder = buffered.into_inner().map_err(|e| e.into_error())?;
        let (digest, size, mut out) = encoder.finish()?.finish();
        out.flush()?;
        drop(out);
        tmp.as_file().sync_all()?;
        let path = dir.join(format!("{}-{}.{}", digest.algorithm(), digest.hex(), compression.extension()));
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(Layer {
            blob: Blob {
                descriptor: Descriptor::new(compression.media_type(), digest, size),
                source: BlobSource::File(path),
            },
            diff_id,
        })
    })();
    match (finisher, &written) {
        (Some(f), Ok(layer)) => f.finish(layer.blob.clone()),
        (Some(f), Err(e)) => f.fail(e.to_string()),
        (None, _) => {}
    }
    written
}

/// The threads to compress on: every core this process may use.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A compressing writer; [`Encoder::finish`] writes the end of the stream and gives the inner writer back.
pub(crate) enum Encoder<W: Write> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Plain(W),
}

impl<W: Write> Encoder<W> {
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(g) => g.finish(),
            Encoder::Zstd(z) => z.finish(),
            Encoder::Plain(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(g) => g.write(buf),
            Encoder::Zstd(z) => z.write(buf),
            Encoder::Plain(w) => w.write(buf),
        }
    }

    /// Does not cut a block or a job (that would change the bytes): only [`Encoder::finish`] ends the stream.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

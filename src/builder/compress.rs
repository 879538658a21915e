//! Layer compression on every core, with bytes that depend only on the tar, never on the machine or its number of
//! cores (the same inputs must give the same layer digest everywhere). Two codecs, chosen by the `compression`
//! input:
//!
//! **gzip** (the default; every registry and runtime reads it), written pigz-style by hand on flate2's raw
//! `Compress` with the zlib-rs backend (pinned in Cargo.toml, since the backend decides the bytes), level 6:
//! - a gzip header of 10 bytes: `1f 8b 08 00`, mtime `00 00 00 00`, XFL `00`, OS `ff` (no name, no extra);
//! - the tar cut into blocks of exactly [`GZIP_BLOCK`] bytes (the last one shorter, possibly empty when the tar
//!   is); block *i* is compressed as raw deflate, from a reset compressor, with the last 32 KiB of block *i-1* as
//!   its preset dictionary (so the ratio stays zlib's: matches reach back across the cut);
//! - every block but the last ends with a sync flush (an empty stored block, byte-aligned, `00 00 ff ff`), the
//!   last with a final block (BFINAL), so the concatenation is one ordinary deflate stream and the file one
//!   gzip member that `gzip -t`, Go's `compress/gzip` and zlib read like any other;
//! - the trailer: CRC-32 of the tar (each block's CRC combined in order) and its length mod 2^32, little-endian.
//!
//! - a block whose byte histogram is as flat as random bytes' (compressed or encrypted data) is written as stored
//!   blocks rather than deflated: deflate gains nothing there and spends most of a layer's time on it;
//!
//! Each block's bytes are a function of (block, previous block's tail, level, last or not) alone; the block
//! boundaries depend only on the tar's length. So workers can take blocks in any order on any number of threads
//! (1 compresses inline) and the output is the same, which `tests` checks for 1, 2 and 4 threads. At most two
//! blocks per thread are in flight (128 KiB in, about as much out), so memory stays a few hundred KiB per thread.
//! The bytes differ from single-threaded `gzip -6` (the sync flushes), so layer digests changed once, with this
//! format.
//!
//! **zstd** (`application/vnd.oci.image.layer.v1.tar+zstd`: smaller and several times faster, but only recent
//! runtimes pull it, containerd 1.5+ and podman among them; check the engines that pull the image): libzstd 1.5.7 (zstd-sys pinned in Cargo.toml, built from its bundled sources), level
//! [`ZSTD_LEVEL`], content checksum on, always in multi-threaded mode with jobs of [`ZSTD_JOB`] bytes. zstd's
//! multi-threaded mode cuts the input into jobs whose size comes from the parameters, not from the number of
//! workers, so its output is the same for 1 worker or 8 (checked by `tests` for 1, 2 and 4 workers and several
//! write patterns); single-threaded mode (0 workers) writes different frames, so it is never used, even on one
//! core. Memory: a job in and out per worker plus the 2 MiB window of level 3.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, FlushCompress, Status};

use std::path::Path;

use crate::image::{Blob, BlobSource, Descriptor, HashingWriter, Layer, media_type};

/// Bytes of tar per gzip block: pigz's default.
pub const GZIP_BLOCK: usize = 128 << 10;
/// zlib's default level: about a third of the tar's size (CRATES.md has the measurements).
const GZIP_LEVEL: u32 = 6;
/// The deflate window: how much of the previous block primes the next.
const DICT: usize = 32 << 10;
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
        }
    }

    /// The OCI layer media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => media_type::OCI_LAYER_GZIP,
            Compression::Zstd => media_type::OCI_LAYER_ZSTD,
        }
    }

    /// The layer file's extension in the work directory.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "tar.gz",
            Compression::Zstd => "tar.zst",
        }
    }

    /// Names the codec and every setting that decides its bytes, for the layer cache's keys: it changes whenever
    /// the compressed bytes for the same tar would.
    pub fn cache_key(self) -> &'static str {
        match self {
            Compression::Gzip => {
                "gzip 6, zlib-rs 0.5.5, 128 KiB blocks with 32 KiB dictionaries, sync flushes, uniform blocks stored"
            }
            Compression::Zstd => "zstd 3, libzstd 1.5.7, multi-threaded, 4 MiB jobs, checksum",
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
    let tmp = tempfile::Builder::new().prefix(".layer-").tempfile_in(dir)?;
    let blob = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, tmp.as_file()));
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
}

/// The threads to compress on: every core this process may use.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A compressing writer; [`Encoder::finish`] writes the end of the stream and gives the inner writer back.
pub(crate) enum Encoder<W: Write> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(g) => g.finish(),
            Encoder::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(g) => g.write(buf),
            Encoder::Zstd(z) => z.write(buf),
        }
    }

    /// Does not cut a block or a job (that would change the bytes): only [`Encoder::finish`] ends the stream.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One gzip member, its blocks compressed on worker threads and written in order (the module documentation
/// gives the format).
pub(crate) struct ParallelGzip<W: Write> {
    out: W,
    /// Input of the block being filled.
    block: Vec<u8>,
    /// The last [`DICT`] bytes of the previous block (empty before the first).
    dict: Vec<u8>,
    crc: crc32fast::Hasher,
    len: u64,
    workers: Option<Workers>,
    /// Replies of blocks sent to the workers, oldest first.
    pending: VecDeque<Receiver<io::Result<Compressed>>>,
    /// The compressor used when there are no workers.
    inline: Option<Compress>,
}

struct Job {
    input: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Compressed>>,
}

struct Compressed {
    data: Vec<u8>,
    crc: crc32fast::Hasher,
}

struct Workers {
    jobs: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
    max_in_flight: usize,
}

impl<W: Write> ParallelGzip<W> {
    fn new(mut out: W, threads: usize) -> io::Result<ParallelGzip<W>> {
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        let threads = threads.clamp(1, 64);
        let (workers, inline) = if threads == 1 {
            (None, Some(Compress::new(flate2::Compression::new(GZIP_LEVEL), false)))
        } else {
            (Some(Workers::start(threads)?), None)
        };
        Ok(ParallelGzip {
            out,
            block: Vec::with_capacity(GZIP_BLOCK),
            dict: Vec::new(),
            crc: crc32fast::Hasher::new(),
            len: 0,
            workers,
            pending: VecDeque::new(),
            inline,
        })
    }

    /// Hands the filled block to a worker (or compresses it here), keeping its tail as the next dictionary.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let input = std::mem::replace(&mut self.block, if last { Vec::new() } else { Vec::with_capacity(GZIP_BLOCK) });
        let tail = input[input.len().saturating_sub(DICT)..].to_vec();
        let dict = std::mem::replace(&mut self.dict, tail);
        if let Some(c) = &mut self.inline {
            let done = compress_block(c, &input, &dict, last)?;
            return self.emit(done);
        }
        let Some(workers) = &self.workers else { return Err(io::Error::other("the gzip writer has no compressor")) };
        let max = workers.max_in_flight;
        while self.pending.len() >= max {
            self.write_oldest()?;
        }
        let (reply, rx) = sync_channel(1);
        let sent =
            self.workers.as_ref().and_then(|w| w.jobs.as_ref()).map(|j| j.send(Job { input, dict, last, reply }));
        if !matches!(sent, Some(Ok(()))) {
            return Err(stopped());
        }
        self.pending.push_back(rx);
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(rx) = self.pending.pop_front() else { return Ok(()) };
        let done = rx.recv().map_err(|_| stopped())??;
        self.emit(done)
    }

    fn emit(&mut self, done: Compressed) -> io::Result<()> {
        self.crc.combine(&done.crc);
        self.out.write_all(&done.data)
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        if let Some(mut w) = self.workers.take() {
            w.stop();
        }
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&(self.len as u32).to_le_bytes())?;
        let ParallelGzip { out, .. } = self;
        Ok(out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // A full block is sent only once more input arrives, so the last block is never an empty one after a
        // full one (the cut points depend on the length alone either way).
        if self.block.len() == GZIP_BLOCK {
            self.dispatch(false)?;
        }
        let n = buf.len().min(GZIP_BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Workers {
    fn start(threads: usize) -> io::Result<Workers> {
        let (tx, rx) = sync_channel::<Job>(threads);
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx = rx.clone();
            let handle = std::thread::Builder::new().name(format!("gzip-{i}")).spawn(move || work(&rx))?;
            handles.push(handle);
        }
        Ok(Workers { jobs: Some(tx), threads: handles, max_in_flight: 2 * threads })
    }

    fn stop(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A worker: takes the next block, compresses it, replies; stops when the writer is gone.
fn work(jobs: &Mutex<Receiver<Job>>) {
    let mut c = Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
    loop {
        let job = match jobs.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let done = compress_block(&mut c, &job.input, &job.dict, job.last);
        // The writer may have given up (an error elsewhere): nothing to do then.
        let _ = job.reply.send(done);
    }
}

/// One block as raw deflate from a reset compressor primed with `dict`; a sync flush unless `last`. A block that
/// looks incompressible ([`looks_incompressible`]) is stored instead, which costs a copy where deflate would
/// spend most of a layer's compression time to gain nothing.
fn compress_block(c: &mut Compress, input: &[u8], dict: &[u8], last: bool) -> io::Result<Compressed> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(input);
    if looks_incompressible(input) {
        return Ok(Compressed { data: stored_blocks(input, last), crc });
    }
    c.reset();
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    let mut data = Vec::with_capacity(input.len() / 2 + 1024);
    let start = c.total_in();
    loop {
        if data.len() == data.capacity() {
            data.reserve(data.capacity().max(4096));
        }
        let consumed = (c.total_in() - start) as usize;
        let status = c.compress_vec(&input[consumed..], &mut data, flush).map_err(io::Error::other)?;
        let all_in = (c.total_in() - start) as usize == input.len();
        match status {
            Status::StreamEnd => break,
            // zlib's rule: a flush is complete once deflate returns with output space left.
            _ if !last && all_in && data.len() < data.capacity() => break,
            _ => {}
        }
    }
    Ok(Compressed { data, crc })
}

/// Whether a block's byte histogram is as flat as random bytes: already-compressed or encrypted data, which
/// deflate cannot shrink. The test is Pearson's chi-square against the uniform distribution, in integers so the
/// decision is the same on every machine: random bytes give about 255 (255 degrees of freedom), text and
/// binaries tens of thousands. A block of uniform bytes that repeat within it (rare in a layer) is stored too,
/// and is a little larger than deflate would make it: still correct, and still reproducible.
fn looks_incompressible(input: &[u8]) -> bool {
    /// Below this, the histogram says too little (and the block costs little either way).
    const MIN: usize = 16 << 10;
    /// Random bytes stay far below this (it is about 30 standard deviations above their mean).
    const CHI_SQUARE_MAX: u128 = 1000;
    if input.len() < MIN {
        return false;
    }
    let mut counts = [0u64; 256];
    for &b in input {
        counts[b as usize] += 1;
    }
    // chi2 = sum((c - n/256)^2 / (n/256)) = sum((256c - n)^2) / (256n)
    let n = input.len() as u128;
    let sum: u128 = counts.iter().map(|&c| (256 * c as i128 - n as i128).unsigned_abs().pow(2)).sum();
    sum < CHI_SQUARE_MAX * 256 * n
}

/// `input` as deflate stored blocks (at most 65,535 bytes each), the last one final when `last`. The stream is
/// byte-aligned where a block starts (after the header or the previous block's sync flush) and stays so.
fn stored_blocks(input: &[u8], last: bool) -> Vec<u8> {
    const MAX: usize = 65_535;
    let mut out = Vec::with_capacity(input.len() + 5 * (input.len() / MAX + 1));
    let count = input.len().div_ceil(MAX).max(1);
    for i in 0..count {
        let chunk = &input[(i * MAX).min(input.len())..((i + 1) * MAX).min(input.len())];
        // BFINAL, BTYPE 00 (stored), then padding to the byte boundary.
        out.push(u8::from(last && i + 1 == count));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn stopped() -> io::Error {
    io::Error::other("a gzip compression thread stopped")
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::process::{Command, Stdio};

    use super::*;

    /// Mixed input: compressible text and incompressible noise, over several blocks and not a multiple of one.
    fn sample(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        while out.len() < len {
            // 100 KB of text, then 300 KB of noise: whole blocks of each, stored and deflated ones side by side.
            if out.len() % 400_000 < 100_000 {
                out.extend_from_slice(format!("line {} of a layer that compresses well\n", out.len() % 997).as_bytes());
            } else {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out.truncate(len);
        out
    }

    /// Writes `input` in pieces of `chunk` bytes.
    fn compress(c: Compression, input: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        let mut e = c.encoder(Vec::new(), threads).unwrap();
        for piece in input.chunks(chunk.max(1)) {
            e.write_all(piece).unwrap();
        }
        e.finish().unwrap()
    }

    fn tool(program: &str, args: &[&str], input: &[u8]) -> std::process::Output {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} is needed (scripts/install-test-deps.sh): {e}"));
        let mut stdin = child.stdin.take().unwrap();
        let owned = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&owned));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        out
    }

    const SIZES: [usize; 5] = [0, 1, GZIP_BLOCK, 3 * GZIP_BLOCK, 5 * GZIP_BLOCK + 12_345];

    #[test]
    fn gzip_bytes_do_not_depend_on_threads_or_write_sizes() {
        for len in SIZES {
            let input = sample(len);
            let one = compress(Compression::Gzip, &input, 1, 1 << 20);
            for (threads, chunk) in [(2, 1 << 20), (4, 4096), (4, 7), (2, GZIP_BLOCK + 1)] {
                assert!(
                    one == compress(Compression::Gzip, &input, threads, chunk),
                    "gzip of {len} bytes differs with {threads} threads and writes of {chunk}"
                );
            }
        }
    }

    #[test]
    fn noise_is_stored_and_text_deflated() {
        let input = sample(400_000);
        assert!(!looks_incompressible(&input[..GZIP_BLOCK]), "text");
        assert!(looks_incompressible(&input[100_000..100_000 + GZIP_BLOCK]), "noise");
        assert!(!looks_incompressible(&input[100_000..100_000 + 8192]), "too short to tell");
        // Half text and half noise still deflates.
        assert!(!looks_incompressible(&input[100_000 - GZIP_BLOCK / 2..100_000 + GZIP_BLOCK / 2]));
        let noise = &input[100_000..100_000 + GZIP_BLOCK];
        let stored = stored_blocks(noise, true);
        assert_eq!(stored.len(), noise.len() + 3 * 5, "three stored blocks of at most 65,535 bytes");
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(stored.as_slice()).read_to_end(&mut back).unwrap();
        assert!(back == noise);
        assert_eq!(stored_blocks(&[], true), vec![1, 0, 0, 0xff, 0xff], "an empty final block");
    }

    #[test]
    fn gzip_is_one_member_that_gzip_and_flate2_read_back() {
        for len in SIZES {
            let input = sample(len);
            let gz = compress(Compression::Gzip, &input, 4, 65_536);
            assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff], "header");
            let t = tool("gzip", &["-t"], &gz);
            assert!(t.status.success(), "gzip -t: {}", String::from_utf8_lossy(&t.stderr));
            let d = tool("gzip", &["-dc"], &gz);
            assert!(d.status.success(), "gzip -dc: {}", String::from_utf8_lossy(&d.stderr));
            assert!(d.stdout == input, "gzip -dc of {len} bytes gives other bytes");
            // One member: a single-member decoder reads everything.
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut back).unwrap();
            assert!(back == input, "flate2 single-member decoder of {len} bytes");
        }
    }

    #[test]
    fn gzip_ratio_stays_close_to_single_stream_gzip() {
        let input = sample(2 << 20);
        let ours = compress(Compression::Gzip, &input, 2, 1 << 20).len();
        let mut single = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
        single.write_all(&input).unwrap();
        let single = single.finish().unwrap().len();
        assert!(ours <= single + single / 100 + 1024, "parallel {ours} bytes vs single stream {single}");
    }

    #[test]
    fn zstd_bytes_do_not_depend_on_workers_or_write_sizes() {
        for len in [0, 1, 300_000, (ZSTD_JOB as usize) * 2 + 77_777] {
            let input = sample(len);
            let one = compress(Compression::Zstd, &input, 1, 1 << 20);
            for (threads, chunk) in [(2, 1 << 20), (4, 4096), (2, 1_000_003)] {
                assert!(
                    one == compress(Compression::Zstd, &input, threads, chunk),
                    "zstd of {len} bytes differs with {threads} workers and writes of {chunk}"
                );
            }
            let d = tool("zstd", &["-dc"], &one);
            assert!(d.status.success(), "zstd -dc: {}", String::from_utf8_lossy(&d.stderr));
            assert!(d.stdout == input, "zstd -dc of {len} bytes gives other bytes");
        }
    }

    #[test]
    fn input_values() {
        for name in Compression::NAMES {
            assert_eq!(Compression::parse(name).map(Compression::name), Some(name));
        }
        assert_eq!(Compression::parse("xz"), None);
        assert_eq!(Compression::default(), Compression::Gzip);
        assert_eq!(Compression::Zstd.media_type(), "application/vnd.oci.image.layer.v1.tar+zstd");
        assert_ne!(Compression::Gzip.cache_key(), Compression::Zstd.cache_key());
    }
}

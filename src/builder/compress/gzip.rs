//! gzip layers, written pigz-style by hand on flate2's raw `Compress` with the zlib-rs backend (pinned in
//! Cargo.toml, since the backend decides the bytes), level 6, on every core:
//! - a gzip header of 10 bytes: `1f 8b 08 00`, mtime `00 00 00 00`, XFL `00`, OS `ff` (no name, no extra);
//! - the tar cut into blocks of exactly [`GZIP_BLOCK`] bytes (the last one shorter, possibly empty when the tar
//!   is), each written by [`compress_block`] as below;
//! - every block but the last ends with a sync flush (an empty stored block, byte-aligned, `00 00 ff ff`), the
//!   last with a final block (BFINAL), so the concatenation is one ordinary deflate stream and the file one
//!   gzip member that `gzip -t`, Go's `compress/gzip` and zlib read like any other;
//! - the trailer: CRC-32 of the tar (each block's CRC combined in order) and its length mod 2^32, little-endian.
//!
//! Inside a block, deflate is spent only where it gains something. A block whose byte histogram is as flat as
//! random bytes' (compressed or encrypted data: images, fonts, archives, most of a binary's `.rodata` does not
//! qualify) is written as stored blocks. Otherwise the block is cut into chunks of [`CHUNK`] bytes, each chunk
//! judged the same way, and each run of chunks of one kind becomes one segment: a noise segment is stored, a
//! compressible one is raw deflate from a new compressor ([`deflate`] says why never a reset one) whose preset
//! dictionary is the 32 KiB of tar before it (the previous block's tail included), so matches reach back across
//! every cut and the ratio stays zlib's.
//! Deflate on noise gains nothing and runs slower than on text (53 against 81 MB/s on this project's bench
//! data), and a layer of many small files mixes the two inside most blocks: measured on the engine bench's two
//! layers (bench/RESULTS.md), the chunks cut the compression CPU by a fifth with the same size.
//!
//! Each block's bytes are a function of (block, previous block's tail, level, last or not) alone, and the block
//! boundaries depend only on the tar's length. So workers can take blocks in any order on any number of threads
//! (1 compresses inline) and the output is the same, which the tests check for 1, 2 and 4 threads. At most
//! [`READ_AHEAD`] blocks, or four per thread on many cores, are in flight (each 128 KiB in, a 32 KiB copy of the
//! tail before it, and its output: about as much as its input, twice that at worst while it grows), so memory
//! stays flat: 5 to 10 MiB on 2 cores, whatever the layer's size.
//! The bytes differ from single-threaded `gzip -6` (the sync flushes): layer digests changed with this format,
//! and again when chunks were judged apart (the layer cache's key names the format, [`super::Compression::cache_key`]).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, FlushCompress, Status};

/// Bytes of tar per gzip block: pigz's default.
pub const GZIP_BLOCK: usize = 128 << 10;
/// zlib's default level: about a third of the tar's size (CRATES.md has the measurements).
pub(super) const GZIP_LEVEL: u32 = 6;
/// The deflate window: how much of the tar before a segment primes its compressor.
const DICT: usize = 32 << 10;
/// Bytes per chunk judged on its own inside a block: small enough to find the noise of small files between
/// text (4 KiB found a fifth more of it than 8 KiB on the bench's site), large enough that a histogram of
/// random bytes stays far from one of text (16 samples a byte value).
pub(super) const CHUNK: usize = 4 << 10;
/// Blocks in flight (queued, compressing or waiting to be written) on a few cores: 4 MiB of tar, so the writer
/// runs ahead through noise, which is stored at once, while the workers still deflate the text before it (the
/// bench's layers alternate 1 MiB of each). With the queue as deep as two blocks per thread, the workers stood idle
/// for a quarter of the export on 2 cores; with this, export + compression of the w5 image took 3.1 s instead of
/// 3.9 s. Many cores get four blocks per thread.
const READ_AHEAD: usize = 32;
/// Below this a whole block's histogram says too little, and the block costs little either way.
const BLOCK_MIN: usize = 16 << 10;

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
    pub(super) fn new(mut out: W, threads: usize) -> io::Result<ParallelGzip<W>> {
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        let threads = threads.clamp(1, 64);
        let workers = if threads == 1 { None } else { Some(Workers::start(threads)?) };
        Ok(ParallelGzip {
            out,
            block: Vec::with_capacity(GZIP_BLOCK),
            dict: Vec::new(),
            crc: crc32fast::Hasher::new(),
            len: 0,
            workers,
            pending: VecDeque::new(),
        })
    }

    /// Hands the filled block to a worker (or compresses it here), keeping its tail as the next dictionary.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let input = std::mem::replace(&mut self.block, if last { Vec::new() } else { Vec::with_capacity(GZIP_BLOCK) });
        let tail = input[input.len().saturating_sub(DICT)..].to_vec();
        let dict = std::mem::replace(&mut self.dict, tail);
        let Some(workers) = &self.workers else {
            let done = compress_block(&input, &dict, last)?;
            return self.emit(done);
        };
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
        let max_in_flight = (4 * threads).max(READ_AHEAD);
        let (tx, rx) = sync_channel::<Job>(max_in_flight);
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx = rx.clone();
            let handle = std::thread::Builder::new().name(format!("gzip-{i}")).spawn(move || work(&rx))?;
            handles.push(handle);
        }
        Ok(Workers { jobs: Some(tx), threads: handles, max_in_flight })
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
    loop {
        let job = match jobs.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let done = compress_block(&job.input, &job.dict, job.last);
        // The writer may have given up (an error elsewhere): nothing to do then.
        let _ = job.reply.send(done);
    }
}

/// One block: stored when it looks like noise as a whole ([`looks_incompressible`]), otherwise its segments
/// ([`segments`]) in order, noise stored and the rest deflated by a new compressor primed with the 32 KiB of tar
/// before it. Every segment but the block's last ends byte-aligned (stored blocks are, deflate segments end
/// with a sync flush); the block's last segment ends with a sync flush, or with the final block when `last`.
fn compress_block(input: &[u8], dict: &[u8], last: bool) -> io::Result<Compressed> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(input);
    let mut data = Vec::with_capacity(input.len() / 2 + 1024);
    if input.len() >= BLOCK_MIN && looks_incompressible(input) {
        stored_blocks(input, last, &mut data);
        return Ok(Compressed { data, crc });
    }
    let segments = segments(input);
    for (k, (range, noise)) in segments.iter().enumerate() {
        let final_block = last && k + 1 == segments.len();
        if *noise {
            stored_blocks(&input[range.clone()], final_block, &mut data);
        } else {
            deflate(&input[range.clone()], &dictionary(dict, input, range.start), final_block, &mut data)?;
        }
    }
    Ok(Compressed { data, crc })
}

/// The block cut into runs of [`CHUNK`]-byte chunks of one kind: `(range, noise)`, in order, covering it all (one
/// compressible segment for an empty block). A chunk shorter than [`CHUNK`] (the block's tail) counts as
/// compressible.
pub(super) fn segments(input: &[u8]) -> Vec<(Range<usize>, bool)> {
    let mut out: Vec<(Range<usize>, bool)> = Vec::new();
    for start in (0..input.len().max(1)).step_by(CHUNK) {
        let end = (start + CHUNK).min(input.len());
        let noise = end - start == CHUNK && looks_incompressible(&input[start..end]);
        match out.last_mut() {
            Some((range, kind)) if *kind == noise => range.end = end,
            _ => out.push((start..end, noise)),
        }
    }
    out
}

/// The [`DICT`] bytes of tar before `at` in `input`, reaching into `dict` (the previous block's tail) when `at`
/// is near the block's start.
fn dictionary<'a>(dict: &'a [u8], input: &'a [u8], at: usize) -> Cow<'a, [u8]> {
    if at >= DICT {
        return Cow::Borrowed(&input[at - DICT..at]);
    }
    if at == 0 {
        return Cow::Borrowed(dict);
    }
    let from_dict = &dict[dict.len().saturating_sub(DICT - at)..];
    Cow::Owned([from_dict, &input[..at]].concat())
}

/// `input` as raw deflate onto `out`, primed with `dict`: a sync flush at the end, or the final block when `last`.
///
/// Always from a new compressor, never a reset one: zlib-rs 0.5.5's `deflateReset` leaves state behind (stale
/// window bytes past the input, which a match search at the end of the input can read) that changes the bytes of
/// a few blocks by a byte or two: 10 of 127 blocks of word soup came out different from a compressor that had
/// compressed the block before, so the layer digest depended on which worker had taken which block. A new
/// compressor starts from zeroed memory, and costs about 4 µs (a block takes about 1.5 ms).
fn deflate(input: &[u8], dict: &[u8], last: bool, out: &mut Vec<u8>) -> io::Result<()> {
    let mut c = Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    out.reserve(input.len() / 2 + 1024);
    let start = c.total_in();
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(4096));
        }
        let consumed = (c.total_in() - start) as usize;
        let status = c.compress_vec(&input[consumed..], out, flush).map_err(io::Error::other)?;
        let all_in = (c.total_in() - start) as usize == input.len();
        match status {
            Status::StreamEnd => return Ok(()),
            // zlib's rule: a flush is complete once deflate returns with output space left.
            _ if !last && all_in && out.len() < out.capacity() => return Ok(()),
            _ => {}
        }
    }
}

/// Whether bytes' histogram is as flat as random bytes': already-compressed or encrypted data, which deflate
/// cannot shrink. The test is Pearson's chi-square against the uniform distribution, in integers so the decision
/// is the same on every machine: random bytes give about 255 (255 degrees of freedom, whatever their length),
/// text and binaries thousands or more (base64 gives three times its length, hex fifteen). A run of uniform
/// bytes that repeats (rare in a layer) is stored too, a little larger than deflate would make it: still
/// correct, and still reproducible.
pub(super) fn looks_incompressible(input: &[u8]) -> bool {
    /// Random bytes stay far below this (it is about 30 standard deviations above their mean).
    const CHI_SQUARE_MAX: u128 = 1000;
    if input.is_empty() {
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

/// `input` as deflate stored blocks (at most 65,535 bytes each) onto `out`, the last one final when `last`. The
/// stream is byte-aligned where a segment starts (after the header, a sync flush or stored blocks) and stays so.
pub(super) fn stored_blocks(input: &[u8], last: bool, out: &mut Vec<u8>) {
    const MAX: usize = 65_535;
    out.reserve(input.len() + 5 * (input.len() / MAX + 1));
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
}

fn stopped() -> io::Error {
    io::Error::other("a gzip compression thread stopped")
}

//! The codecs' bytes: the same for any number of threads and write sizes, and read back by the real tools.

use std::io::Read;
use std::process::{Command, Stdio};

use super::gzip::{CHUNK, GZIP_BLOCK, GZIP_LEVEL, looks_incompressible, segments, stored_blocks};
use super::*;

/// Mixed input: compressible text and incompressible noise, over several blocks and not a multiple of one.
fn sample(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < len {
        // In every 400 KB: 100 KB of text, 150 KB of noise, then 150 KB of small files, 6,000 bytes of text and
        // 6,000 of noise in turn: whole blocks of each kind, stored and deflated side by side, and blocks whose
        // noise chunks are stored between deflated runs of text.
        let at = out.len() % 400_000;
        if at < 100_000 || (at >= 250_000 && (at - 250_000) % 12_000 < 6_000) {
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

/// Text as the bench's sites hold it: lines of 12 words drawn from a vocabulary of 4,000 random words.
fn word_soup(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words: Vec<Vec<u8>> =
        (0..4000).map(|_| (0..2 + next() % 9).map(|_| b'a' + (next() % 26) as u8).collect()).collect();
    let mut out = Vec::with_capacity(len + 200);
    while out.len() < len {
        for i in 0..12 {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(&words[(next() % 4000) as usize]);
        }
        out.push(b'\n');
    }
    out.truncate(len);
    out
}

/// A compressor that was reset after other input wrote a few blocks of such text differently from a new one (10
/// of 127 blocks, zlib-rs 0.5.5), so the bytes depended on which worker had compressed what before: on 64 blocks,
/// one thread against two and four would differ.
#[test]
fn gzip_bytes_of_text_do_not_depend_on_which_worker_took_which_block() {
    let input = word_soup(8 << 20);
    let one = compress(Compression::Gzip, &input, 1, 1 << 20);
    for (threads, chunk) in [(2, 1 << 20), (4, 65_536), (3, 100_003)] {
        let other = compress(Compression::Gzip, &input, threads, chunk);
        assert!(one == other, "{threads} threads: {} bytes against {} with one", other.len(), one.len());
    }
    let d = tool("gzip", &["-dc"], &one);
    assert!(d.status.success() && d.stdout == input, "gzip -dc gives the text back");
}

#[test]
fn noise_is_stored_and_text_deflated() {
    let input = sample(400_000);
    assert!(!looks_incompressible(&input[..GZIP_BLOCK]), "text");
    assert!(looks_incompressible(&input[100_000..100_000 + GZIP_BLOCK]), "noise");
    // Half text and half noise still deflates.
    assert!(!looks_incompressible(&input[100_000 - GZIP_BLOCK / 2..100_000 + GZIP_BLOCK / 2]));
    let noise = &input[100_000..100_000 + GZIP_BLOCK];
    let mut stored = Vec::new();
    stored_blocks(noise, true, &mut stored);
    assert_eq!(stored.len(), noise.len() + 3 * 5, "three stored blocks of at most 65,535 bytes");
    let mut back = Vec::new();
    flate2::read::DeflateDecoder::new(stored.as_slice()).read_to_end(&mut back).unwrap();
    assert!(back == noise);
    let mut empty = Vec::new();
    stored_blocks(&[], true, &mut empty);
    assert_eq!(empty, vec![1, 0, 0, 0xff, 0xff], "an empty final block");
}

#[test]
fn noise_chunks_between_text_are_stored_and_text_deflated() {
    let input = sample(400_000);
    let is_noise = |i: usize| (100_000..250_000).contains(&i) || (i >= 250_000 && (i - 250_000) % 12_000 >= 6_000);
    // A block of small files, 6,000 bytes of text and of noise in turn, cut across chunks.
    let block = &input[260_000..260_000 + GZIP_BLOCK];
    assert!(!looks_incompressible(block), "as a whole, the block is not noise");
    let segs = segments(block);
    assert_eq!(segs.first().map(|s| s.0.start), Some(0));
    assert_eq!(segs.last().map(|s| s.0.end), Some(block.len()));
    assert!(segs.windows(2).all(|w| w[0].0.end == w[1].0.start && w[0].1 != w[1].1), "runs alternate: {segs:?}");
    let stored: Vec<_> = segs.iter().filter(|s| s.1).map(|s| s.0.clone()).collect();
    assert!(stored.len() >= 8, "most 6,000-byte pieces of noise hold a whole chunk: {segs:?}");
    for r in &stored {
        assert!(r.start % CHUNK == 0 && r.len() % CHUNK == 0, "stored runs are whole chunks: {r:?}");
        // A chunk that reaches a few lines into the next piece of text is still noise to the histogram (and
        // storing those lines costs a few hundred bytes); one with more text is deflated.
        let text = r.clone().filter(|i| !is_noise(260_000 + i)).count();
        assert!(text <= CHUNK / 8, "a stored run holds {text} bytes of text: {r:?}");
    }
    // Chunks straddling text and noise, and the text, are deflated.
    assert!(segs.iter().filter(|s| !s.1).all(|s| s.0.clone().any(|i| !is_noise(260_000 + i))));
    // A block of text alone is one deflated run; an empty block is one (empty) run to deflate.
    assert_eq!(segments(&input[..64 << 10]), vec![(0..64 << 10, false)]);
    assert_eq!(segments(&[]), vec![(0..0, false)]);
    // A tail shorter than a chunk is deflated even when it is noise.
    let noise_tail = &input[100_000..100_000 + CHUNK + 100];
    assert_eq!(segments(noise_tail), vec![(0..CHUNK, true), (CHUNK..CHUNK + 100, false)]);
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

/// The layer cache keeps compressed layers under `cache_key`: if the bytes for the same tar change (a codec
/// setting, a dependency), the key must change too, or a cache filled before would mix both. This pins each
/// codec's bytes to its key; when it fails on purpose, change the key and then the digests here.
#[test]
fn compressed_bytes_are_pinned_to_the_cache_key() {
    let mut input = sample(5 * GZIP_BLOCK + 12_345);
    input.extend(word_soup(1 << 20));
    let pinned = [
        (
            Compression::Gzip,
            "gzip 6, zlib-rs 0.5.5, 128 KiB blocks, sync flushes, uniform blocks and 4 KiB chunks stored, 32 KiB \
             dictionaries before each deflated run, a new compressor for each",
            "2733eff27c54aac63b155f84ec1885bfd45735d18e49d83f6b3a9daf32c00ae9",
        ),
        (
            Compression::Zstd,
            "zstd 3, libzstd 1.5.7, multi-threaded, 4 MiB jobs, checksum",
            "97d89117c3b698124b8d4cb155522f6b1ae896eaf7c8443ddfc5b5d03204006d",
        ),
    ];
    for (c, key, digest) in pinned {
        let got = crate::image::Digest::of(&compress(c, &input, 2, 1 << 16));
        assert_eq!(
            (c.cache_key(), got.hex()),
            (key, digest),
            "{c:?}: if the bytes changed, change cache_key too, then both here"
        );
    }
}

/// A sink that takes `left` bytes, then fails.
struct FailingSink {
    left: usize,
}

impl Write for FailingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("the disk is full"));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sink failing partway gives its error back, from `write` or `finish`, and neither that nor dropping an
/// unfinished encoder hangs on the workers.
#[test]
fn a_failing_sink_is_an_error_and_nothing_hangs() {
    let input = sample(40 * GZIP_BLOCK);
    for c in [Compression::Gzip, Compression::Zstd] {
        let mut e = c.encoder(FailingSink { left: 100_000 }, 2).unwrap();
        let written = input.chunks(1 << 16).try_for_each(|piece| e.write_all(piece));
        let err = match written {
            Err(err) => err,
            Ok(()) => e.finish().map(|_| ()).expect_err("the sink failed, so must the encoder"),
        };
        assert!(err.to_string().contains("the disk is full"), "{c:?}: {err}");
        // Dropped unfinished, with blocks in flight.
        let mut e = c.encoder(FailingSink { left: usize::MAX }, 2).unwrap();
        e.write_all(&input[..20 * GZIP_BLOCK]).unwrap();
        drop(e);
    }
}

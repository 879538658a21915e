//! A blob that is still being written: a compressed layer whose file grows while the compressor works, announced
//! before its digest is known so that a push can stream it as it grows (as `docker push` streams a layer it
//! compresses) instead of starting when the last byte is written.
//!
//! The writer side ([`Finisher::writer`]) sits under the compressor's buffer and tells how many bytes reached the
//! file after each write; [`Finisher::finish`] gives the finished blob (digest, size, final path), or
//! [`Finisher::fail`] says why there will be none. Each reader ([`Growing::chunks`]) reads the file with positional
//! reads on a descriptor opened before the file is renamed after its digest, so any number of readers (one per
//! push target) go at their own pace, and none holds more than one chunk in memory.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::watch;

use super::Blob;

/// How far the writer is.
#[derive(Debug, Clone)]
enum State {
    /// This many bytes are in the file.
    Writing(u64),
    Done(Box<Blob>),
    Failed(String),
}

/// The reading end, cloneable: each clone reads the whole blob from its start.
#[derive(Debug, Clone)]
pub struct Growing {
    file: Arc<File>,
    state: watch::Receiver<State>,
}

/// The writing end: bytes written through it land in the file and are announced to every reader.
pub struct GrowingWriter<'a> {
    file: &'a File,
    written: u64,
    state: Arc<watch::Sender<State>>,
}

/// What the writer of a growing blob keeps: ends it with [`Finisher::finish`] or [`Finisher::fail`]. Dropped
/// without either, it fails the blob.
pub struct Finisher {
    state: Arc<watch::Sender<State>>,
}

/// Bytes per read, and so per chunk a reader yields.
const CHUNK: usize = 256 << 10;

impl Growing {
    /// A growing blob over `file`, which the writer fills through [`Finisher::writer`] on `out` (the same file,
    /// its own descriptor). `read` must be a descriptor of the same file opened for reading.
    pub fn new(read: File) -> (Growing, Finisher) {
        let (tx, rx) = watch::channel(State::Writing(0));
        (Growing { file: Arc::new(read), state: rx }, Finisher { state: Arc::new(tx) })
    }

    /// The finished blob, once the writer is done; the writer's error otherwise.
    pub async fn finished(&self) -> Result<Blob, String> {
        let mut rx = self.state.clone();
        loop {
            match &*rx.borrow_and_update() {
                State::Done(blob) => return Ok((**blob).clone()),
                State::Failed(e) => return Err(e.clone()),
                State::Writing(_) => {}
            }
            if rx.changed().await.is_err() {
                return Err(stopped());
            }
        }
    }

    /// The blob's bytes from its start, in chunks as they reach the file; ends after the last byte of the
    /// finished blob, or with the writer's error.
    pub fn chunks(&self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let start = (self.file.clone(), self.state.clone(), 0u64);
        futures_util::stream::try_unfold(start, |(file, mut rx, offset)| async move {
            loop {
                let (available, done) = match &*rx.borrow_and_update() {
                    State::Writing(n) => (*n, false),
                    State::Done(blob) => (blob.descriptor.size, true),
                    State::Failed(e) => return Err(io::Error::other(e.clone())),
                };
                if offset < available {
                    let want = (available - offset).min(CHUNK as u64) as usize;
                    let f = file.clone();
                    let chunk = tokio::task::spawn_blocking(move || {
                        let mut buf = vec![0u8; want];
                        f.read_exact_at(&mut buf, offset).map(|()| buf)
                    })
                    .await
                    .map_err(io::Error::other)??;
                    return Ok(Some((Bytes::from(chunk), (file, rx, offset + want as u64))));
                }
                if done {
                    return Ok(None);
                }
                if rx.changed().await.is_err() {
                    return Err(io::Error::other(stopped()));
                }
            }
        })
    }
}

impl Finisher {
    /// The writer onto `file` (the growing blob's file) whose writes readers see.
    pub fn writer<'a>(&self, file: &'a File) -> GrowingWriter<'a> {
        GrowingWriter { file, written: 0, state: self.state.clone() }
    }

    /// The blob is complete: `blob` is it, under its final path.
    pub fn finish(self, blob: Blob) {
        self.state.send_replace(State::Done(Box::new(blob)));
    }

    pub fn fail(self, why: String) {
        self.state.send_replace(State::Failed(why));
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        self.state.send_if_modified(|s| match s {
            State::Writing(_) => {
                *s = State::Failed(stopped());
                true
            }
            _ => false,
        });
    }
}

impl Write for GrowingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (&*self.file).write(buf)?;
        self.written += n as u64;
        let written = self.written;
        self.state.send_replace(State::Writing(written));
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.file).flush()
    }
}

fn stopped() -> String {
    "the layer's writer stopped before it was complete".to_string()
}

#[cfg(test)]
mod tests {
    use futures_util::TryStreamExt as _;

    use super::*;
    use crate::image::{BlobSource, Descriptor, Digest};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_get_every_byte_as_it_is_written_and_the_finished_blob() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let out = File::create(&path).unwrap();
        let (growing, finisher) = Growing::new(File::open(&path).unwrap());
        let early = growing.chunks();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let expected = data.clone();
        let writer = std::thread::spawn(move || {
            let mut w = finisher.writer(&out);
            for piece in data.chunks(70_001) {
                w.write_all(piece).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            let descriptor = Descriptor::new("application/octet-stream", Digest::of(&data), data.len() as u64);
            finisher.finish(Blob { descriptor, source: BlobSource::File(path) });
        });
        let read: Vec<Bytes> = early.try_collect().await.unwrap();
        writer.join().unwrap();
        assert_eq!(read.concat(), expected);
        assert!(read.len() > 1, "read in chunks as it grew");
        // A reader that starts after the end reads it all too.
        let late: Vec<Bytes> = growing.chunks().try_collect().await.unwrap();
        assert_eq!(late.concat(), expected);
        assert_eq!(growing.finished().await.unwrap().descriptor.size, expected.len() as u64);
    }

    #[tokio::test]
    async fn a_writer_that_stops_fails_its_readers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let out = File::create(&path).unwrap();
        let (growing, finisher) = Growing::new(File::open(&path).unwrap());
        finisher.writer(&out).write_all(b"partial").unwrap();
        drop(finisher);
        let err = growing.chunks().try_collect::<Vec<Bytes>>().await.unwrap_err();
        assert!(err.to_string().contains("stopped before it was complete"), "{err}");
        assert!(growing.finished().await.is_err());
        let (growing, finisher) = Growing::new(File::open(&path).unwrap());
        finisher.fail("the engine's export broke off".into());
        let err = growing.chunks().try_collect::<Vec<Bytes>>().await.unwrap_err();
        assert!(err.to_string().contains("export broke off"), "{err}");
    }
}

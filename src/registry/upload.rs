//! Blob uploads that stream from their source (a file, bytes, or another registry's GET) and never hold a layer in
//! memory: one streaming PUT up to the monolithic threshold, fixed-size PATCH chunks above it. A failed upload is
//! restarted as a whole, from a new POST, by reopening its source. A blob still being written (a layer the
//! engine's export is compressing) goes up in one streamed PATCH as it grows, then the PUT with its digest.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::TryStreamExt;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio_util::io::{ReaderStream, StreamReader};
use url::Url;

use super::transport::{Body, Target};
use super::{Action, RegistryClient, RegistryError};
use crate::image::{Blob, BlobSource, Digest, Growing, ImageName};

const OCTET_STREAM: &str = "application/octet-stream";

/// The upload URL a response points to: its `Location`, relative to the request's URL or absolute.
pub fn resolve_location(request: &Url, headers: &HeaderMap) -> Option<Url> {
    let raw = headers.get(LOCATION)?.to_str().ok()?.trim();
    if raw.is_empty() {
        return None;
    }
    request.join(raw).ok()
}

/// The upload URL with `digest=` added, after any query it already has (`?_state=…` becomes `?_state=…&digest=…`).
pub fn with_digest(location: &Url, digest: &Digest) -> Url {
    let mut u = location.clone();
    u.query_pairs_mut().append_pair("digest", digest.as_str());
    u
}

type Source = Box<dyn AsyncRead + Send + Unpin>;

/// Counts bytes read through it into a shared counter (progress lines, the stall watchdog).
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl RegistryClient {
    /// Uploads a blob into `name`, streaming it from its source. Retried as a whole.
    pub async fn upload_blob(&self, name: &ImageName, blob: &Blob) -> Result<(), RegistryError> {
        let sent = Arc::new(AtomicU64::new(0));
        self.upload_blob_with(&Target::new(name, Action::Push), blob, None, &sent).await
    }

    /// Uploads under the retry policy; the first try may use an already open `session` (a refused mount's).
    pub(crate) async fn upload_blob_with(
        &self,
        t: &Target,
        blob: &Blob,
        mut session: Option<Url>,
        sent: &Arc<AtomicU64>,
    ) -> Result<(), RegistryError> {
        let what = format!("uploading {} to {}", blob.descriptor.digest, t.name);
        self.retrying(&what, || self.upload_once(t, blob, session.take(), sent.clone())).await
    }

    async fn upload_once(
        &self,
        t: &Target,
        blob: &Blob,
        session: Option<Url>,
        sent: Arc<AtomicU64>,
    ) -> Result<(), RegistryError> {
        sent.store(0, Ordering::Relaxed);
        // Open the source first: if it fails, no session is left open.
        let source = self.open_source(blob).await?;
        let location = match session {
            Some(u) => u,
            None => self.start_upload(t).await?,
        };
        let source = Counting { inner: source, count: sent.clone() };
        let result = if blob.descriptor.size <= self.inner.options.monolithic_threshold {
            self.put_monolithic(t, blob, &location, source, &sent).await
        } else {
            self.put_chunked(t, blob, location.clone(), source, &sent).await
        };
        if result.is_err() {
            self.cancel_upload(t, location).await;
        }
        result
    }

    /// Uploads a blob while it is written, as `docker push` uploads a layer it compresses: POST, one PATCH whose
    /// body streams the bytes as they reach the file (the registry API's stream upload), and once the writer is
    /// done the PUT with the digest, which the registry checks. Returns the finished blob. Not retried: the
    /// stream cannot be replayed, and the caller uploads the finished file instead ([`super::push_growing_to`]).
    pub(crate) async fn upload_growing(
        &self,
        t: &Target,
        growing: &Growing,
        sent: &Arc<AtomicU64>,
    ) -> Result<Blob, RegistryError> {
        let mut location = self.start_upload(t).await?;
        let result = async {
            let counter = sent.clone();
            let chunks = growing.chunks().inspect_ok(move |c| {
                counter.fetch_add(c.len() as u64, Ordering::Relaxed);
            });
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
            let body = Body::Stream(Some(reqwest::Body::wrap_stream(chunks)));
            let send = self.send(t, Method::PATCH, location.clone(), headers, body, None);
            let resp = self.watch(sent, &t.name.registry, "a layer's upload as it is compressed", send).await?;
            if !resp.status().is_success() {
                return Err(self.error_for(t, "upload session", &Method::PATCH, &location, resp).await);
            }
            location = resolve_location(&location, resp.headers()).unwrap_or(location.clone());
            let blob = growing
                .finished()
                .await
                .map_err(|e| RegistryError::Io { path: Default::default(), source: std::io::Error::other(e) })?;
            let offset = sent.load(Ordering::Relaxed);
            if offset != blob.descriptor.size {
                return Err(self.short_source(&blob, offset));
            }
            // A push of the same blob from a finished file that starts after this point (another platform's
            // identical layer) waits for this PUT under the blob's lock, then finds the blob there.
            let lock = self.blob_lock(&t.name, &blob.descriptor.digest);
            let put = async {
                let _only_one = lock.lock().await;
                self.put_digest(t, &location, &blob.descriptor.digest).await
            }
            .await;
            drop(lock);
            self.prune_blob_locks();
            put.map(|()| blob)
        }
        .await;
        if result.is_err() {
            self.cancel_upload(t, location).await;
        }
        result
    }

    /// A reader over the blob's bytes, checked against the descriptor's size where that is known up front.
    async fn open_source(&self, blob: &Blob) -> Result<Source, RegistryError> {
        let d = &blob.descriptor;
        match &blob.source {
            BlobSource::File(path) => {
                let io = |source| RegistryError::Io { path: path.clone(), source };
                let file = tokio::fs::File::open(path).await.map_err(io)?;
                let len = file.metadata().await.map_err(io)?.len();
                if len != d.size {
                    let msg = format!("holds {len} bytes, but blob {} should have {}", d.digest, d.size);
                    return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidData, msg)));
                }
                Ok(Box::new(file))
            }
            BlobSource::Bytes(b) => {
                if b.len() as u64 != d.size {
                    return Err(RegistryError::Io {
                        path: Default::default(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("blob {} holds {} bytes, its descriptor says {}", d.digest, b.len(), d.size),
                        ),
                    });
                }
                Ok(Box::new(std::io::Cursor::new(b.clone())))
            }
            BlobSource::Registry(from) => {
                let resp = self.open_blob_once(&Target::new(from, Action::Pull), &d.digest).await?;
                let stream = resp.bytes_stream().map_err(std::io::Error::other);
                Ok(Box::new(StreamReader::new(stream)))
            }
        }
    }

    /// POST to open an upload session; its `Location` is where the bytes go.
    async fn start_upload(&self, t: &Target) -> Result<Url, RegistryError> {
        let url = self.url(&t.name, "blobs/uploads/")?;
        let timeout = Some(self.inner.options.timeout);
        let resp = self.send(t, Method::POST, url.clone(), HeaderMap::new(), Body::Empty, timeout).await?;
        if !resp.status().is_success() {
            return Err(self.error_for(t, "upload endpoint", &Method::POST, &url, resp).await);
        }
        resolve_location(&url, resp.headers()).ok_or_else(|| RegistryError::Protocol {
            registry: t.name.registry.clone(),
            message: format!("it answered the upload POST with {} but no usable Location header", resp.status()),
        })
    }

    async fn put_monolithic(
        &self,
        t: &Target,
        blob: &Blob,
        location: &Url,
        source: Counting<Source>,
        sent: &AtomicU64,
    ) -> Result<(), RegistryError> {
        let d = &blob.descriptor;
        let url = with_digest(location, &d.digest);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(d.size));
        let body = reqwest::Body::wrap_stream(ReaderStream::with_capacity(source, 256 << 10));
        let send = self.send(t, Method::PUT, url.clone(), headers, Body::Stream(Some(body)), None);
        let resp = self.watch(sent, &t.name.registry, &format!("the upload of {}", d.digest), send).await?;
        self.finish_upload(t, d.digest.clone(), &url, resp).await
    }

    async fn put_chunked(
        &self,
        t: &Target,
        blob: &Blob,
        mut location: Url,
        mut source: Counting<Source>,
        sent: &AtomicU64,
    ) -> Result<(), RegistryError> {
        let d = &blob.descriptor;
        let chunk_size = self.inner.options.chunk_size;
        let timeout = Some(self.inner.options.timeout);
        let mut offset: u64 = 0;
        let mut buf = vec![0u8; chunk_size];
        loop {
            let n = self.read_chunk(blob, &mut source, &mut buf).await?;
            if n == 0 {
                break;
            }
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
            let range = format!("{offset}-{}", offset + n as u64 - 1);
            headers.insert(CONTENT_RANGE, HeaderValue::from_str(&range).unwrap_or(HeaderValue::from_static("0-0")));
            let chunk = Body::Bytes(Bytes::copy_from_slice(&buf[..n]));
            let resp = self.send(t, Method::PATCH, location.clone(), headers, chunk, timeout).await?;
            if !resp.status().is_success() {
                return Err(self.error_for(t, "upload session", &Method::PATCH, &location, resp).await);
            }
            // The spec requires a Location after each PATCH; some registries keep the session URL instead.
            location = resolve_location(&location, resp.headers()).unwrap_or(location);
            offset += n as u64;
            if n < chunk_size {
                break;
            }
        }
        sent.store(offset, Ordering::Relaxed);
        if offset != d.size {
            return Err(self.short_source(blob, offset));
        }
        self.put_digest(t, &location, &d.digest).await
    }

    /// The PUT that ends an upload whose bytes were sent by PATCH: no body, the digest in the query.
    async fn put_digest(&self, t: &Target, location: &Url, digest: &Digest) -> Result<(), RegistryError> {
        let url = with_digest(location, digest);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
        let timeout = Some(self.inner.options.timeout);
        let resp = self.send(t, Method::PUT, url.clone(), headers, Body::Empty, timeout).await?;
        self.finish_upload(t, digest.clone(), &url, resp).await
    }

    /// Fills `buf` from the source unless it ends first; returns how much was read.
    async fn read_chunk(
        &self,
        blob: &Blob,
        source: &mut Counting<Source>,
        buf: &mut [u8],
    ) -> Result<usize, RegistryError> {
        let mut filled = 0;
        while filled < buf.len() {
            let read = source.read(&mut buf[filled..]);
            let n = tokio::time::timeout(self.inner.options.timeout, read)
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the source stopped sending"))
                .and_then(|r| r)
                .map_err(|e| self.source_error(blob, e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        Ok(filled)
    }

    fn source_error(&self, blob: &Blob, e: std::io::Error) -> RegistryError {
        match &blob.source {
            BlobSource::File(path) => RegistryError::Io { path: path.clone(), source: e },
            BlobSource::Registry(from) => RegistryError::Transport {
                registry: from.registry.clone(),
                what: format!("the download of {}", blob.descriptor.digest),
                detail: e.to_string(),
                temporary: true,
            },
            BlobSource::Bytes(_) => RegistryError::Io { path: Default::default(), source: e },
        }
    }

    fn short_source(&self, blob: &Blob, got: u64) -> RegistryError {
        let msg =
            format!("gave {got} bytes for blob {}, whose size is {}", blob.descriptor.digest, blob.descriptor.size);
        self.source_error(blob, std::io::Error::new(std::io::ErrorKind::UnexpectedEof, msg))
    }

    /// Checks the answer to the final PUT: 201 Created (the spec's answer; go-containerregistry insists on it
    /// too), and the registry's digest when it states one.
    async fn finish_upload(
        &self,
        t: &Target,
        expected: Digest,
        url: &Url,
        resp: reqwest::Response,
    ) -> Result<(), RegistryError> {
        if !resp.status().is_success() {
            return Err(self.error_for(t, "upload session", &Method::PUT, url, resp).await);
        }
        if resp.status().as_u16() != 201 {
            return Err(RegistryError::NotDistribution {
                registry: t.name.registry.clone(),
                message: format!("it answered {} to the last PUT of blob {expected}, not 201 Created", resp.status()),
            });
        }
        let stated = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::trim);
        match stated.map(str::parse::<Digest>) {
            Some(Ok(actual)) if actual != expected => Err(RegistryError::DigestMismatch {
                registry: t.name.registry.clone(),
                what: format!("the uploaded blob {expected}"),
                expected,
                actual,
            }),
            _ => Ok(()),
        }
    }

    /// Runs a streaming request, failing it (temporarily) when `counter` stops moving for the timeout.
    pub(crate) async fn watch<T>(
        &self,
        counter: &AtomicU64,
        registry: &str,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, RegistryError>>,
    ) -> Result<T, RegistryError> {
        let stall = self.inner.options.timeout;
        let mut tick = tokio::time::interval((stall / 4).max(Duration::from_millis(10)));
        let (mut last, mut since) = (counter.load(Ordering::Relaxed), Instant::now());
        tokio::pin!(fut);
        loop {
            tokio::select! {
                r = &mut fut => return r,
                _ = tick.tick() => {
                    let now = counter.load(Ordering::Relaxed);
                    if now != last {
                        (last, since) = (now, Instant::now());
                    } else if since.elapsed() >= stall {
                        return Err(super::blobs::stalled(registry, what, stall));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(LOCATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn location_table() {
        let req = Url::parse("http://127.0.0.1:5000/v2/a/b/blobs/uploads/").unwrap();
        let table: &[(&str, Option<&str>)] = &[
            ("/v2/a/b/blobs/uploads/u1?_state=xyz", Some("http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1?_state=xyz")),
            ("https://upload.example/v2/a/b/u2", Some("https://upload.example/v2/a/b/u2")),
            ("u3", Some("http://127.0.0.1:5000/v2/a/b/blobs/uploads/u3")),
            ("", None),
        ];
        for (value, want) in table {
            assert_eq!(resolve_location(&req, &loc(value)).map(|u| u.to_string()).as_deref(), *want, "{value}");
        }
        assert_eq!(resolve_location(&req, &HeaderMap::new()), None);
    }

    #[test]
    fn digest_is_appended_after_an_existing_query() {
        let d = Digest::of(b"");
        let u = with_digest(&Url::parse("http://r/v2/a/blobs/uploads/u?_state=ab%2Bc").unwrap(), &d);
        assert_eq!(u.query(), Some(format!("_state=ab%2Bc&digest=sha256%3A{}", d.hex()).as_str()));
        let pairs: Vec<_> = u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        assert_eq!(pairs, vec![("_state".into(), "ab+c".into()), ("digest".into(), d.to_string())]);
        let u = with_digest(&Url::parse("http://r/v2/a/blobs/uploads/u").unwrap(), &d);
        assert_eq!(
            u.query_pairs().next().map(|(k, v)| (k.into_owned(), v.into_owned())),
            Some(("digest".into(), d.to_string()))
        );
    }
}

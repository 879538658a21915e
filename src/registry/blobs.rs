//! Blob reads and existence checks: HEAD, cross-repository mount, and streaming GET with digest verification
//! (into a writer or a file, never whole into memory; only small blobs such as configs are read into bytes).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, Response};
use sha2::Digest as _;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use url::Url;

use super::transport::{Body, Target};
use super::upload::resolve_location;
use super::{Action, RegistryClient, RegistryError};
use crate::image::{Descriptor, Digest, ImageName};

/// The most we read into memory as one blob: image configs are a few KiB; 8 MiB leaves room for long histories.
pub const MAX_SMALL_BLOB: u64 = 8 << 20;

/// The answer to a mount request.
pub(crate) enum Mount {
    Mounted,
    /// 202: the registry opened an ordinary upload session instead (its `Location`, when given).
    Refused(Option<Url>),
}

/// sha256 or sha512, whichever the expected digest uses.
pub(crate) enum BlobHasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl BlobHasher {
    pub fn for_digest(d: &Digest) -> Self {
        match d.algorithm() {
            "sha512" => BlobHasher::Sha512(sha2::Sha512::new()),
            _ => BlobHasher::Sha256(sha2::Sha256::new()),
        }
    }
    pub fn update(&mut self, data: &[u8]) {
        match self {
            BlobHasher::Sha256(h) => h.update(data),
            BlobHasher::Sha512(h) => h.update(data),
        }
    }
    pub fn finish(self) -> Digest {
        let (alg, hex) = match self {
            BlobHasher::Sha256(h) => ("sha256", hex::encode(h.finalize())),
            BlobHasher::Sha512(h) => ("sha512", hex::encode(h.finalize())),
        };
        // A well-formed algorithm and hex string always parse.
        format!("{alg}:{hex}").parse().unwrap_or_else(|_| Digest::of(b""))
    }
}

impl RegistryClient {
    /// Whether `digest` is in the repository (HEAD). A yes must carry the blob's `Docker-Content-Digest`.
    pub async fn blob_exists(&self, name: &ImageName, digest: &Digest) -> Result<bool, RegistryError> {
        self.blob_exists_as(&Target::new(name, Action::Pull), digest, None).await
    }

    /// HEAD of a blob whose size may be known. A registry saying it has the blob must prove it (issue 13): with
    /// a `Docker-Content-Digest` equal to `digest`, or without one, a `Content-Length` equal to `size`.
    pub(crate) async fn blob_exists_as(
        &self,
        t: &Target,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<bool, RegistryError> {
        let what = format!("checking blob {digest} in {}", t.name);
        self.retrying(&what, || async {
            let url = self.url(&t.name, &format!("blobs/{digest}"))?;
            let timeout = Some(self.inner.options.timeout);
            let resp = self.send(t, Method::HEAD, url.clone(), HeaderMap::new(), Body::Empty, timeout).await?;
            match resp.status().as_u16() {
                200..=299 => self.check_blob_head(t, digest, size, resp.headers()).map(|()| true),
                404 => Ok(false),
                _ => Err(self.error_for(t, &format!("blob {digest}"), &Method::HEAD, &url, resp).await),
            }
        })
        .await
    }

    fn check_blob_head(
        &self,
        t: &Target,
        digest: &Digest,
        size: Option<u64>,
        h: &HeaderMap,
    ) -> Result<(), RegistryError> {
        let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
        let stated = header("docker-content-digest");
        let length = header("content-length").and_then(|v| v.parse::<u64>().ok());
        let proof = match (stated, size) {
            (Some(d), _) if d == digest.as_str() => return Ok(()),
            (Some(d), _) => format!("its HEAD of blob {digest} answered with the digest `{d}`"),
            (None, Some(size)) if length == Some(size) => return Ok(()),
            (None, Some(size)) => format!(
                "its HEAD of blob {digest} ({size} bytes) claimed the blob exists with neither its digest nor its \
                 size ({})",
                length.map_or("no Content-Length".to_string(), |n| format!("Content-Length {n}"))
            ),
            (None, None) => format!("its HEAD of blob {digest} claimed the blob exists without its digest"),
        };
        Err(RegistryError::NotDistribution { registry: t.name.registry.clone(), message: proof })
    }

    /// Mounts `digest` from the repository `from` (same registry) into `to`. A refused mount (202) opens an upload
    /// session; this cancels it (DELETE) and answers false. The push pipeline instead uploads into that session.
    pub async fn mount_blob(&self, to: &ImageName, from: &ImageName, digest: &Digest) -> Result<bool, RegistryError> {
        match self.try_mount(to, from, digest).await? {
            Mount::Mounted => Ok(true),
            Mount::Refused(session) => {
                if let Some(location) = session {
                    self.cancel_upload(&Target::new(to, Action::Push), location).await;
                }
                Ok(false)
            }
        }
    }

    pub(crate) async fn try_mount(
        &self,
        to: &ImageName,
        from: &ImageName,
        digest: &Digest,
    ) -> Result<Mount, RegistryError> {
        let t = Target::mount(to, from);
        let what = format!("mounting {digest} from {} into {}", from.repository, to.repository);
        self.retrying(&what, || async {
            let mut url = self.url(to, "blobs/uploads/")?;
            url.query_pairs_mut().append_pair("mount", digest.as_str()).append_pair("from", &from.repository);
            let timeout = Some(self.inner.options.timeout);
            let resp = self.send(&t, Method::POST, url.clone(), HeaderMap::new(), Body::Empty, timeout).await?;
            match resp.status().as_u16() {
                201 => Ok(Mount::Mounted),
                202 => Ok(Mount::Refused(resolve_location(&url, resp.headers()))),
                _ => Err(self.error_for(&t, "upload endpoint", &Method::POST, &url, resp).await),
            }
        })
        .await
    }

    /// Abandons an upload session, best effort: a registry purges stale sessions itself anyway.
    pub(crate) async fn cancel_upload(&self, t: &Target, location: Url) {
        let timeout = Some(Duration::from_secs(10).min(self.inner.options.timeout));
        let _ = self.send(t, Method::DELETE, location, HeaderMap::new(), Body::Empty, timeout).await;
    }

    /// A GET of a blob whose headers arrived with success; the body is the caller's to stream. Not retried.
    pub(crate) async fn open_blob_once(&self, t: &Target, digest: &Digest) -> Result<Response, RegistryError> {
        let url = self.url(&t.name, &format!("blobs/{digest}"))?;
        let what = format!("GET blob {digest}");
        let send = self.send(t, Method::GET, url.clone(), HeaderMap::new(), Body::Empty, None);
        let resp = within(self.inner.options.timeout, &t.name.registry, &what, send).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(self.error_for(t, &format!("blob {digest}"), &Method::GET, &url, resp).await)
    }

    /// Streams a blob into `w`, checking size and digest; returns the bytes written. The GET is retried until the
    /// body starts; a failure while streaming is returned (the writer cannot be rewound).
    pub async fn fetch_blob_to<W: AsyncWrite + Unpin>(
        &self,
        name: &ImageName,
        desc: &Descriptor,
        w: &mut W,
    ) -> Result<u64, RegistryError> {
        let t = Target::new(name, Action::Pull);
        let what = format!("downloading {} from {name}", desc.digest);
        let resp = self.retrying(&what, || self.open_blob_once(&t, &desc.digest)).await?;
        self.stream_body(&t, desc, resp, w, None).await
    }

    /// Streams a blob into a file (created or truncated), checking its digest; the whole download is retried, and
    /// the file is removed if it fails.
    pub async fn fetch_blob_to_file(
        &self,
        name: &ImageName,
        desc: &Descriptor,
        path: &Path,
    ) -> Result<u64, RegistryError> {
        let t = Target::new(name, Action::Pull);
        let what = format!("downloading {} from {name}", desc.digest);
        let result = self
            .retrying(&what, || async {
                let resp = self.open_blob_once(&t, &desc.digest).await?;
                let io = |source| RegistryError::Io { path: path.to_path_buf(), source };
                let mut file = tokio::fs::File::create(path).await.map_err(io)?;
                let n = self.stream_body(&t, desc, resp, &mut file, Some(path)).await?;
                file.flush().await.map_err(io)?;
                file.sync_all().await.map_err(io)?;
                Ok(n)
            })
            .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(path).await;
        }
        result
    }

    /// Reads a small blob (a config) into memory, checking its digest; refuses blobs over [`MAX_SMALL_BLOB`].
    pub async fn fetch_blob_bytes(&self, name: &ImageName, desc: &Descriptor) -> Result<Bytes, RegistryError> {
        if desc.size > MAX_SMALL_BLOB {
            return Err(RegistryError::Protocol {
                registry: name.registry.clone(),
                message: format!(
                    "blob {} is {} bytes, more than the {MAX_SMALL_BLOB} read into memory for configs",
                    desc.digest, desc.size
                ),
            });
        }
        let t = Target::new(name, Action::Pull);
        let what = format!("downloading {} from {name}", desc.digest);
        self.retrying(&what, || async {
            let resp = self.open_blob_once(&t, &desc.digest).await?;
            let mut buf = Vec::with_capacity(usize::try_from(desc.size).unwrap_or(0));
            self.stream_body(&t, desc, resp, &mut buf, None).await?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    /// Copies a blob response into `w`, hashing as it goes; each read must progress within the timeout.
    async fn stream_body<W: AsyncWrite + Unpin>(
        &self,
        t: &Target,
        desc: &Descriptor,
        mut resp: Response,
        w: &mut W,
        path: Option<&Path>,
    ) -> Result<u64, RegistryError> {
        let registry = &t.name.registry;
        let what = format!("the download of {}", desc.digest);
        let mut hasher = BlobHasher::for_digest(&desc.digest);
        let mut n: u64 = 0;
        let io = |source| RegistryError::Io { path: path.map(Path::to_path_buf).unwrap_or_default(), source };
        loop {
            let seen = true;
            let next = within(self.inner.options.timeout, registry, &what, async {
                resp.chunk().await.map_err(|e| super::transport::classify(registry, &what, e, seen))
            })
            .await?;
            let Some(chunk) = next else { break };
            n += chunk.len() as u64;
            if n > desc.size {
                return Err(RegistryError::Protocol {
                    registry: registry.clone(),
                    message: format!("blob {} is longer than its descriptor's {} bytes", desc.digest, desc.size),
                });
            }
            hasher.update(&chunk);
            w.write_all(&chunk).await.map_err(io)?;
        }
        let actual = hasher.finish();
        if actual != desc.digest || n != desc.size {
            return Err(RegistryError::DigestMismatch {
                registry: registry.clone(),
                what: format!("blob {} ({n} of {} bytes)", desc.digest, desc.size),
                expected: desc.digest.clone(),
                actual,
            });
        }
        Ok(n)
    }
}

/// Runs `fut`, failing with a temporary transport error if it takes longer than `d`.
pub(crate) async fn within<T>(
    d: Duration,
    registry: &str,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, RegistryError>>,
) -> Result<T, RegistryError> {
    match tokio::time::timeout(d, fut).await {
        Ok(r) => r,
        Err(_) => Err(stalled(registry, what, d)),
    }
}

/// The temporary transport error for a request that made no progress for `d`.
pub(crate) fn stalled(registry: &str, what: &str, d: Duration) -> RegistryError {
    RegistryError::Transport {
        registry: registry.to_string(),
        what: what.to_string(),
        detail: format!("no progress for {} s", d.as_secs()),
        temporary: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hasher_follows_the_expected_algorithm() {
        let h256 = BlobHasher::for_digest(&Digest::of(b"x"));
        let mut h = h256;
        h.update(b"hello");
        assert_eq!(h.finish(), Digest::of(b"hello"));
        let sha512: Digest = format!("sha512:{}", "0".repeat(128)).parse().unwrap();
        let mut h = BlobHasher::for_digest(&sha512);
        h.update(b"");
        assert_eq!(
            h.finish().as_str(),
            "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
    }
}

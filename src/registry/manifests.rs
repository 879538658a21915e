//! Manifest and index reads and writes: GET (digest-checked), HEAD (what a tag points at) and PUT by tag or digest.

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};

use super::transport::{Body, Target, read_limited};
use super::{Action, RegistryClient, RegistryError};
use crate::image::{Descriptor, Digest, ImageName, RawManifest, media_type};

/// Distribution refuses manifests over 4 MiB; nothing larger is a manifest.
pub const MAX_MANIFEST: usize = 4 << 20;

fn accept() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(ACCEPT, HeaderValue::from_static(media_type::MANIFEST_ACCEPT));
    h
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The `Content-Type` without parameters (`; charset=…`).
fn media_type_header(h: &HeaderMap) -> Option<String> {
    header(h, "content-type").map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
}

/// The media type a manifest declares in its body (`mediaType`), for registries that answer a generic type.
fn declared_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(bytes).ok()?;
    p.media_type.or_else(|| p.manifests.map(|_| media_type::OCI_INDEX.to_string()))
}

impl RegistryClient {
    /// The manifest or index `reference` (a tag or a digest) points at. Fetched by digest, the bytes must hash to
    /// it; by tag, they must match the registry's `Docker-Content-Digest` when it sends one.
    pub async fn get_manifest(&self, name: &ImageName, reference: &str) -> Result<RawManifest, RegistryError> {
        let t = Target::new(name, Action::Pull);
        let what = format!("getting manifest {reference} of {name}");
        self.retrying(&what, || self.get_manifest_once(&t, reference)).await
    }

    async fn get_manifest_once(&self, t: &Target, reference: &str) -> Result<RawManifest, RegistryError> {
        let url = self.url(&t.name, &format!("manifests/{reference}"))?;
        let timeout = Some(self.inner.options.timeout);
        let resp = self.send(t, Method::GET, url.clone(), accept(), Body::Empty, timeout).await?;
        if !resp.status().is_success() {
            return Err(self.error_for(t, &format!("manifest `{reference}`"), &Method::GET, &url, resp).await);
        }
        let registry = &t.name.registry;
        let content_type = media_type_header(resp.headers());
        let stated: Option<Digest> = header(resp.headers(), "docker-content-digest").and_then(|v| v.parse().ok());
        let bytes = read_limited(resp, MAX_MANIFEST, registry, &format!("manifest `{reference}`"), true).await?;
        let actual = Digest::of(&bytes);
        let expected = match reference.parse::<Digest>() {
            Ok(d) => Some(d),
            Err(_) => stated.filter(|d| d.algorithm() == "sha256"),
        };
        if let Some(expected) = expected.filter(|d| d.algorithm() == "sha256") {
            if expected != actual {
                return Err(RegistryError::DigestMismatch {
                    registry: registry.clone(),
                    what: format!("manifest `{reference}` of {}", t.name),
                    expected,
                    actual,
                });
            }
        }
        let declared = declared_media_type(&bytes);
        let media_type = match content_type {
            Some(ct) if media_type::is_index(&ct) || media_type::is_manifest(&ct) => ct,
            other => declared.or(other).unwrap_or_else(|| media_type::OCI_MANIFEST.to_string()),
        };
        Ok(RawManifest { media_type, bytes, digest: actual })
    }

    /// What `reference` points at, without its body; `None` if the registry has no such manifest.
    pub async fn head_manifest(&self, name: &ImageName, reference: &str) -> Result<Option<Descriptor>, RegistryError> {
        self.head_manifest_as(&Target::new(name, Action::Pull), reference).await
    }

    /// [`RegistryClient::head_manifest`] with the scopes of `t` (a push reads back what it wrote with its token).
    pub(crate) async fn head_manifest_as(
        &self,
        t: &Target,
        reference: &str,
    ) -> Result<Option<Descriptor>, RegistryError> {
        let what = format!("checking manifest {reference} of {}", t.name);
        self.retrying(&what, || async {
            let url = self.url(&t.name, &format!("manifests/{reference}"))?;
            let timeout = Some(self.inner.options.timeout);
            let resp = self.send(t, Method::HEAD, url.clone(), accept(), Body::Empty, timeout).await?;
            if resp.status().as_u16() == 404 {
                return Ok(None);
            }
            if !resp.status().is_success() {
                return Err(self.error_for(t, &format!("manifest `{reference}`"), &Method::HEAD, &url, resp).await);
            }
            let h = resp.headers();
            let digest = header(h, "docker-content-digest").and_then(|v| v.parse::<Digest>().ok());
            let size = header(h, "content-length").and_then(|v| v.parse::<u64>().ok());
            let mt = media_type_header(h);
            match (digest, size, mt) {
                (Some(d), Some(s), Some(m)) => Ok(Some(Descriptor::new(m, d, s))),
                // Some registries leave these out of a HEAD: ask for the body instead.
                _ => {
                    let raw = self.get_manifest_once(t, reference).await?;
                    Ok(Some(raw.descriptor()))
                }
            }
        })
        .await
    }

    /// Stores a manifest under a tag or its digest; returns its digest, checked against the registry's. The
    /// registry must answer 201 Created, as the distribution spec requires, and state the same digest if it
    /// states one; a server answering 200 to anything (a web page, a proxy's error page) stored nothing.
    pub async fn put_manifest(
        &self,
        name: &ImageName,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<Digest, RegistryError> {
        let t = Target::new(name, Action::Push);
        let what = format!("putting manifest {reference} of {name}");
        self.retrying(&what, || async {
            let url = self.url(&t.name, &format!("manifests/{reference}"))?;
            let mut headers = HeaderMap::new();
            let ct = HeaderValue::from_str(&manifest.media_type)
                .unwrap_or_else(|_| HeaderValue::from_static(media_type::OCI_MANIFEST));
            headers.insert(CONTENT_TYPE, ct);
            headers.insert(CONTENT_LENGTH, HeaderValue::from(manifest.bytes.len() as u64));
            let timeout = Some(self.inner.options.timeout);
            let body = Body::Bytes(manifest.bytes.clone());
            let resp = self.send(&t, Method::PUT, url.clone(), headers, body, timeout).await?;
            if !resp.status().is_success() {
                return Err(self.error_for(&t, &format!("manifest `{reference}`"), &Method::PUT, &url, resp).await);
            }
            if resp.status().as_u16() != 201 {
                return Err(RegistryError::NotDistribution {
                    registry: name.registry.clone(),
                    message: format!(
                        "it answered {} to the PUT of manifest `{reference}`, not 201 Created",
                        resp.status()
                    ),
                });
            }
            let stated = header(resp.headers(), "docker-content-digest");
            if let Some(raw) = stated.filter(|v| v.parse::<Digest>().is_err()) {
                return Err(RegistryError::NotDistribution {
                    registry: name.registry.clone(),
                    message: format!(
                        "it stored manifest `{reference}` under the digest `{raw}`, which is not a digest"
                    ),
                });
            }
            match stated.and_then(|v| v.parse::<Digest>().ok()) {
                Some(d) if d.algorithm() == "sha256" && d != manifest.digest => Err(RegistryError::DigestMismatch {
                    registry: name.registry.clone(),
                    what: format!("the stored manifest `{reference}`"),
                    expected: manifest.digest.clone(),
                    actual: d,
                }),
                _ => Ok(manifest.digest.clone()),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_from_the_body_when_the_header_is_generic() {
        assert_eq!(
            declared_media_type(
                br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#
            )
            .as_deref(),
            Some(media_type::DOCKER_MANIFEST)
        );
        assert_eq!(
            declared_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(media_type::OCI_INDEX)
        );
        assert_eq!(declared_media_type(br#"{"schemaVersion":2,"config":{}}"#), None);
        assert_eq!(declared_media_type(b"nope"), None);
    }
}

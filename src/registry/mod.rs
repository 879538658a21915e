//! The registry client: OCI distribution over HTTP(S) with auth, retries, blob HEAD / mount / streaming upload,
//! manifests, the push pipeline and base-image resolution.
//!
//! The transport is ours, on reqwest, rather than oci-client's `Client`: its `push()` holds every layer in memory,
//! never HEADs a blob (a second push re-uploads everything), has no retries, asks for a mount token scoped to the
//! target repository only (so cross-repository mounts are refused) and leaves the refused session open, and sends
//! one PATCH per stream item (CRATES.md measured 2,560 requests for 10 MiB). oci-client stays in use for its
//! reference grammar (`image::ImageRef::parse`).
//!
//! Retries happen at one level only: each public operation here (a HEAD, a whole blob upload from a fresh POST,
//! a manifest PUT) is retried as a unit by [`RetryPolicy`]; nothing beneath it retries, and a stream is never
//! replayed: a file-backed upload is restarted by reopening the file.

mod auth;
mod blobs;
mod docker_config;
mod error;
mod manifests;
mod preflight;
mod pull;
mod push;
mod retry;
mod tags;
mod token;
mod transport;
mod upload;

#[cfg(test)]
pub(crate) mod distribution;
#[cfg(test)]
mod e2e_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod proof_tests;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) use auth::sensitive as sensitive_header;
pub use auth::{Challenge, Credentials, parse_challenges, repository_scope};
pub use docker_config::{DockerConfig, DockerConfigError, IDENTITY_TOKEN_USER};
pub use error::{Action, ErrorEntry, PUSH_PERMISSION_HINT, RegistryError, parse_envelope};
pub use pull::{read_image_for, read_images, resolve_image, resolve_index};
pub use push::{BlobOutcome, PushReport, push, push_after, push_blob_to, push_growing_to};
pub use retry::{RetryPolicy, parse_retry_after};
pub use tags::Deleted;
/// An error and its causes on one line, each once, with secrets scrubbed.
pub(crate) use transport::chain as error_chain;
pub use upload::{resolve_location, with_digest};

use crate::image::{ImageName, is_loopback_host};
use crate::progress::{Progress, Quiet};

/// How the client connects and transfers.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// A PEM bundle of extra CA certificates, trusted on top of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Hosts (`host[:port]`) reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Blob transfers at once in a push.
    pub jobs: usize,
    pub retry: RetryPolicy,
    pub user_agent: String,
    /// Bytes per PATCH in a chunked upload. 4 MiB: ghcr.io refuses larger chunks (CRATES.md).
    pub chunk_size: usize,
    /// Blobs up to this size go up in one streaming PUT; larger ones in `chunk_size` PATCHes. 64 MiB keeps most
    /// layers at two requests (POST, PUT) while bounding a single request, so a slow proxy or a registry's body
    /// limit never sees more than that, and a big layer reports progress chunk by chunk.
    pub monolithic_threshold: u64,
    /// Longest a request may go without progress: without a response for small requests, without a byte sent or
    /// received while streaming a blob (a whole upload may take longer).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// How often a long blob upload logs how far it got (plain lines: Actions logs are not terminals).
    pub progress_interval: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            ca_file: None,
            insecure_registries: Vec::new(),
            jobs: 4,
            retry: RetryPolicy::default(),
            user_agent: concat!("octopush/", env!("CARGO_PKG_VERSION")).to_string(),
            chunk_size: 4 << 20,
            monolithic_threshold: 64 << 20,
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(30),
            progress_interval: Duration::from_secs(5),
        }
    }
}

/// A registry client for any number of registries. Cheap to clone: clones share connections, tokens and counters.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    options: ClientOptions,
    credentials: Mutex<HashMap<String, Credentials>>,
    /// Where hosts without explicit credentials get theirs (a docker `config.json`), looked up once per host.
    docker_config: docker_config::Fallback,
    auth: token::AuthState,
    progress: std::sync::RwLock<Arc<dyn Progress>>,
    /// Hosts that have answered at least once: a connection error to them later is a drop, worth retrying.
    seen: Mutex<HashSet<String>>,
    /// Per (registry, repository, digest) locks, so two pushes sharing the client never upload one blob twice.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    retries: AtomicU64,
    /// For plain-HTTP-allowed hosts: whether the host turned out to speak TLS (probed once, as Docker does).
    speaks_tls: tokio::sync::Mutex<HashMap<String, bool>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<String> = self.inner.credentials.lock().map(|c| c.keys().cloned().collect()).unwrap_or_default();
        f.debug_struct("RegistryClient")
            .field("options", &self.inner.options)
            .field("credentials_for", &hosts)
            .finish_non_exhaustive()
    }
}

/// How long the first contact with a plain-HTTP-allowed host waits for its TLS handshake, then for a plain HTTP
/// answer: a registry on loopback or a LAN answers in milliseconds.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// What rustls-platform-verifier says when the system has no CA certificate at all.
const NO_SYSTEM_ROOTS: &str = "No CA certificates were loaded from the system";

impl RegistryClient {
    pub fn new(options: ClientOptions) -> Result<Self, RegistryError> {
        RegistryClient::build(options, |b| b)
    }

    /// `new`, with a last change to the HTTP client builder (tests pin host names to 127.0.0.1 with it).
    pub(crate) fn build(
        options: ClientOptions,
        tweak: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<Self, RegistryError> {
        let extra = match &options.ca_file {
            None => Vec::new(),
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| RegistryError::CaFile { path: path.clone(), detail: e.to_string() })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| RegistryError::CaFile { path: path.clone(), detail: e.without_url().to_string() })?;
                if certs.is_empty() {
                    return Err(RegistryError::CaFile { path: path.clone(), detail: "it holds no certificate".into() });
                }
                certs
            }
        };
        let builder = || {
            reqwest::Client::builder()
                .user_agent(options.user_agent.clone())
                .connect_timeout(options.connect_timeout)
                .pool_idle_timeout(Duration::from_secs(60))
        };
        let client_error = |e: reqwest::Error| {
            RegistryError::Client(format!(
                "{} (is a rustls crypto provider installed?)",
                transport::chain(&e.without_url())
            ))
        };
        let http = match tweak(builder().tls_certs_merge(extra.clone())).build() {
            Ok(http) => http,
            // A machine (or a minimal image) without any CA certificate: the platform verifier refuses to start,
            // which would break plain-HTTP and `ca_file` registries too. Trust only `ca_file` then; a TLS registry
            // signed by a public CA fails at its handshake with the TLS error, which names `ca_file`.
            Err(e) if transport::chain(&e).contains(NO_SYSTEM_ROOTS) => {
                tweak(builder().tls_certs_only(extra)).build().map_err(client_error)?
            }
            Err(e) => return Err(client_error(e)),
        };
        let options = ClientOptions { jobs: options.jobs.max(1), chunk_size: options.chunk_size.max(1), ..options };
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                http,
                options,
                credentials: Mutex::new(HashMap::new()),
                docker_config: docker_config::Fallback::default(),
                auth: token::AuthState::default(),
                progress: std::sync::RwLock::new(Arc::new(Quiet)),
                seen: Mutex::new(HashSet::new()),
                in_flight: Mutex::new(HashMap::new()),
                retries: AtomicU64::new(0),
                speaks_tls: tokio::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Where retries and other transport events are reported (a quiet sink until set).
    pub fn set_progress(&self, progress: Arc<dyn Progress>) {
        if let Ok(mut p) = self.inner.progress.write() {
            *p = progress;
        }
    }

    /// Credentials for a registry host (`ghcr.io`, `127.0.0.1:5000`); sent only once the host asks for them.
    pub fn set_credentials(&self, host: &str, credentials: Credentials) {
        if let Ok(mut m) = self.inner.credentials.lock() {
            m.insert(host.trim().to_ascii_lowercase(), credentials);
        }
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// How many operations were retried since the client was made.
    pub fn retry_count(&self) -> u64 {
        self.inner.retries.load(Ordering::Relaxed)
    }

    pub(crate) fn progress(&self) -> Arc<dyn Progress> {
        match self.inner.progress.read() {
            Ok(p) => p.clone(),
            Err(_) => Arc::new(Quiet),
        }
    }

    fn credentials(&self, name: &ImageName) -> Option<Credentials> {
        self.explicit_credentials(name).or_else(|| self.inner.docker_config.cached(&name.registry))
    }

    /// The credentials set with [`RegistryClient::set_credentials`] for `name`'s registry (or its API host).
    fn explicit_credentials(&self, name: &ImageName) -> Option<Credentials> {
        let m = self.inner.credentials.lock().ok()?;
        m.get(&name.registry).or_else(|| m.get(name.api_host())).cloned()
    }

    /// Plain HTTP for loopback hosts (as Docker does) and the configured insecure registries; HTTPS otherwise.
    fn plain_http(&self, host: &str) -> bool {
        is_loopback_host(host) || self.inner.options.insecure_registries.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// The URL to really use: loopback and insecure hosts may speak TLS (a local registry with a test CA), so
    /// like Docker we try HTTPS first, once per host, and use plain HTTP only when the host does not speak TLS.
    /// Unlike Docker, an untrusted certificate is not skipped: it is an error that says to set `ca_file`.
    pub(crate) async fn effective_url(&self, mut url: url::Url) -> Result<url::Url, RegistryError> {
        let host = transport::authority(&url);
        if url.scheme() != "http" || !self.plain_http(&host) {
            return Ok(url);
        }
        let mut known = self.inner.speaks_tls.lock().await;
        let tls = match known.get(&host) {
            Some(tls) => *tls,
            None => {
                let speaks = self.probe_tls(&host).await?;
                known.insert(host.clone(), speaks);
                speaks
            }
        };
        if tls {
            let _ = url.set_scheme("https");
        }
        Ok(url)
    }

    /// Whether `host` speaks TLS. A port that accepts the connection but never answers the TLS handshake used to
    /// cost 5 s (issue 13, finding 10): after [`PROBE_TIMEOUT`] it is asked in plain HTTP, which it either
    /// answers (plain HTTP then, with a warning saying so) or not (an error saying it answered neither).
    async fn probe_tls(&self, host: &str) -> Result<bool, RegistryError> {
        let timeout = PROBE_TIMEOUT.min(self.inner.options.connect_timeout);
        let tls = self.inner.http.get(format!("https://{host}/v2/")).timeout(timeout).send().await;
        match tls {
            Ok(_) => return Ok(true),
            // A certificate we do not trust still means the host speaks TLS: going on over HTTPS gives the TLS
            // error (which names `ca_file`), where plain HTTP would get "HTTP request to an HTTPS server".
            Err(e) if transport::is_certificate_error(&e) => return Ok(true),
            Err(e) if !e.is_timeout() => return Ok(false),
            Err(_) => {}
        }
        let plain = self.inner.http.get(format!("http://{host}/v2/")).timeout(timeout).send().await;
        match plain {
            Ok(resp) => {
                // A slow TLS server answers plain HTTP with 400 "Client sent an HTTP request to an HTTPS server".
                let body = transport::read_capped(resp, 4096).await.unwrap_or_default();
                if String::from_utf8_lossy(&body).contains("HTTPS server") {
                    return Ok(true);
                }
                self.progress().warning(&format!(
                    "{host} accepted the connection but did not answer the TLS handshake within {:.1} s; it answers \
                     plain HTTP, so plain HTTP is used",
                    timeout.as_secs_f64()
                ));
                Ok(false)
            }
            Err(_) => Err(RegistryError::NoAnswer { registry: host.to_string(), waited: timeout * 2 }),
        }
    }

    /// `SCHEME://HOST/v2/REPOSITORY/SUFFIX`.
    pub(crate) fn url(&self, name: &ImageName, suffix: &str) -> Result<url::Url, RegistryError> {
        let host = name.api_host();
        let scheme = if self.plain_http(host) { "http" } else { "https" };
        let raw = format!("{scheme}://{host}/v2/{}/{suffix}", name.repository);
        url::Url::parse(&raw).map_err(|_| RegistryError::Protocol {
            registry: name.registry.clone(),
            message: format!("`{raw}` is not a valid URL"),
        })
    }

    fn mark_seen(&self, host: &str) {
        if let Ok(mut s) = self.inner.seen.lock() {
            if !s.contains(host) {
                s.insert(host.to_string());
            }
        }
    }

    fn was_seen(&self, host: &str) -> bool {
        self.inner.seen.lock().map(|s| s.contains(host)).unwrap_or(false)
    }

    /// The lock serialising work on one blob in one repository.
    fn blob_lock(&self, name: &ImageName, digest: &crate::image::Digest) -> Arc<tokio::sync::Mutex<()>> {
        let key = format!("{name}@{digest}");
        match self.inner.in_flight.lock() {
            Ok(mut m) => m.entry(key).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// Forgets blob locks nobody holds any more.
    fn prune_blob_locks(&self) {
        if let Ok(mut m) = self.inner.in_flight.lock() {
            m.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
    }
}

/// Makes reqwest usable in tests: the binary installs ring as the process's rustls provider; tests do the same.
#[cfg(test)]
pub(crate) fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_hosts_use_plain_http() {
        install_crypto();
        let c = RegistryClient::new(ClientOptions {
            insecure_registries: vec!["registry.lan:5000".into()],
            ..ClientOptions::default()
        })
        .unwrap();
        let url = |reg: &str| c.url(&ImageName::new(reg, "a/b").unwrap(), "blobs/uploads/").unwrap().to_string();
        assert_eq!(url("127.0.0.1:5000"), "http://127.0.0.1:5000/v2/a/b/blobs/uploads/");
        assert_eq!(url("localhost:5000"), "http://localhost:5000/v2/a/b/blobs/uploads/");
        assert_eq!(url("registry.lan:5000"), "http://registry.lan:5000/v2/a/b/blobs/uploads/");
        assert_eq!(url("ghcr.io"), "https://ghcr.io/v2/a/b/blobs/uploads/");
        assert_eq!(url("docker.io"), "https://registry-1.docker.io/v2/a/b/blobs/uploads/");
        // Issue 13, finding 5: names that only look local are TLS, as is a listed host on another port.
        assert_eq!(url("127.evil.example"), "https://127.evil.example/v2/a/b/blobs/uploads/");
        assert_eq!(url("127.0.0.1.nip.io:5000"), "https://127.0.0.1.nip.io:5000/v2/a/b/blobs/uploads/");
        assert_eq!(url("localhost.example"), "https://localhost.example/v2/a/b/blobs/uploads/");
        assert_eq!(url("registry.lan:5001"), "https://registry.lan:5001/v2/a/b/blobs/uploads/");
        assert_eq!(url("127.0.0.9:8080"), "http://127.0.0.9:8080/v2/a/b/blobs/uploads/");
        assert_eq!(url("[::1]:5000"), "http://[::1]:5000/v2/a/b/blobs/uploads/");
    }

    #[test]
    fn a_bad_ca_file_is_named_with_the_input_to_fix() {
        install_crypto();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let e = RegistryClient::new(ClientOptions { ca_file: Some(path.clone()), ..Default::default() }).unwrap_err();
        assert!(matches!(e, RegistryError::CaFile { .. }), "{e:?}");
        assert!(e.to_string().contains("`ca_file`"), "{e}");
        let e =
            RegistryClient::new(ClientOptions { ca_file: Some(dir.path().join("missing.pem")), ..Default::default() })
                .unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }

    #[test]
    fn debug_never_shows_passwords() {
        install_crypto();
        let c = RegistryClient::new(ClientOptions::default()).unwrap();
        c.set_credentials("GHCR.io", Credentials::new("octocat", crate::secret::Secret::new("ghp_hidden")));
        let d = format!("{c:?}");
        assert!(d.contains("ghcr.io") && !d.contains("ghp_hidden"), "{d}");
        assert_eq!(c.credentials(&ImageName::new("ghcr.io", "a").unwrap()).unwrap().username, "octocat");
    }
}

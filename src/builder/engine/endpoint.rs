//! Where the Docker Engine is and how to reach it, as the docker CLI reads it: `DOCKER_HOST` (`unix://PATH` or
//! `tcp://HOST:PORT`), `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` (`ca.pem`, `cert.pem`, `key.pem`), else
//! `/var/run/docker.sock`. The edge reads the variables; [`Endpoint::from_vars`] only interprets them.
//!
//! [`Dialer`] opens one connection per request and speaks HTTP/1.1 on it with upgrades enabled, because the
//! BuildKit session (`POST /session`) turns its connection into HTTP/2 that we serve. bollard's typed endpoints
//! ride on the same dialer ([`Dialer::docker`]), so a remote engine over TLS works the same for both.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::image::is_loopback_host;

/// The engine's socket path when `DOCKER_HOST` is unset: what every container action has mounted.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How long connecting may take before the engine counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(
        "DOCKER_HOST=`{0}` is not an engine address octopush can use: set it to `unix:///path/to/docker.sock` or `tcp://HOST:PORT`"
    )]
    BadHost(String),
    #[error(
        "DOCKER_HOST=`{0}`: ssh:// engines are not supported; forward the socket (`ssh -L /tmp/docker.sock:/var/run/docker.sock HOST`) and set DOCKER_HOST=unix:///tmp/docker.sock"
    )]
    Ssh(String),
    #[error("the engine's TLS files in {dir} (DOCKER_CERT_PATH): {message}")]
    Tls { dir: PathBuf, message: String },
}

/// The docker CLI's TLS files for a `tcp://` engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `DOCKER_CERT_PATH`, else `~/.docker`.
    pub dir: PathBuf,
}

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp { host: String, port: u16, tls: Option<TlsFiles> },
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp { host, port, tls } => {
                write!(f, "tcp://{host}:{port}{}", if tls.is_some() { " (TLS)" } else { "" })
            }
        }
    }
}

impl Endpoint {
    /// The endpoint the docker CLI would use given these variables (`None`: unset). `home` finds `~/.docker`
    /// when `DOCKER_CERT_PATH` is unset.
    pub fn from_vars(
        docker_host: Option<&str>,
        tls_verify: Option<&str>,
        cert_path: Option<&str>,
        home: Option<&str>,
    ) -> Result<Endpoint, EndpointError> {
        let Some(host) = docker_host.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(Endpoint::default());
        };
        let bad = || EndpointError::BadHost(host.to_string());
        if let Some(path) = host.strip_prefix("unix://") {
            return if path.is_empty() { Err(bad()) } else { Ok(Endpoint::Unix(PathBuf::from(path))) };
        }
        if host.starts_with("ssh://") {
            return Err(EndpointError::Ssh(host.to_string()));
        }
        let rest = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("http://")).ok_or_else(bad)?;
        let authority = rest.split('/').next().unwrap_or_default();
        let url = url::Url::parse(&format!("tcp://{authority}")).map_err(|_| bad())?;
        let name = url.host_str().filter(|h| !h.is_empty()).ok_or_else(bad)?;
        let name = name.trim_start_matches('[').trim_end_matches(']').to_string();
        // The docker CLI's ports: 2376 with TLS, 2375 without.
        let verify = tls_verify.map(str::trim).is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
        let port = url.port().unwrap_or(if verify { 2376 } else { 2375 });
        let tls = verify.then(|| TlsFiles {
            dir: cert_path
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .or_else(|| home.map(|h| Path::new(h).join(".docker")))
                .unwrap_or_else(|| PathBuf::from(".docker")),
        });
        Ok(Endpoint::Tcp { host: name, port, tls })
    }

    /// True when requests to it leave this machine unencrypted: `tcp://` without TLS to a host that is not a
    /// loopback address.
    pub fn is_plain_remote(&self) -> bool {
        matches!(self, Endpoint::Tcp { host, tls: None, .. } if !is_loopback_host(host))
    }
}

/// Why a request did not get a response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection: the socket is absent, refused, or silent.
    #[error(transparent)]
    Connect(io::Error),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// A connection the dialer hands out.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Opens connections to one engine.
#[derive(Clone)]
pub struct Dialer {
    endpoint: Endpoint,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer").field("endpoint", &self.endpoint).finish()
    }
}

impl Dialer {
    /// A dialer for `endpoint`, with its TLS files read now (a missing or bad file is an error naming it).
    pub fn new(endpoint: Endpoint) -> Result<Dialer, EndpointError> {
        let tls = match &endpoint {
            Endpoint::Tcp { host, tls: Some(files), .. } => Some((Arc::new(tls_config(files)?), server_name(host)?)),
            _ => None,
        };
        Ok(Dialer { endpoint, tls })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// One new connection to the engine.
    pub async fn connect(&self) -> io::Result<Box<dyn Io>> {
        let connecting = async {
            Ok::<Box<dyn Io>, io::Error>(match &self.endpoint {
                Endpoint::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
                Endpoint::Tcp { host, port, .. } => {
                    let tcp = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                    tcp.set_nodelay(true)?;
                    match &self.tls {
                        None => Box::new(tcp),
                        Some((config, name)) => {
                            let connector = tokio_rustls::TlsConnector::from(config.clone());
                            Box::new(connector.connect(name.clone(), tcp).await.map_err(|e| self.tls_error(e))?)
                        }
                    }
                }
            })
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer within 10 s"))?
    }

    /// A failed TLS handshake, said as what to check; its kind is `InvalidData`, which
    /// [`super::client::Engine::connect`] tells apart from an engine that is not there.
    fn tls_error(&self, e: io::Error) -> io::Error {
        let dir = match &self.endpoint {
            Endpoint::Tcp { tls: Some(files), .. } => files.dir.display().to_string(),
            _ => String::new(),
        };
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the TLS handshake failed ({e}): the engine's certificate must be signed by {dir}/ca.pem, and the \
                 engine must accept {dir}/cert.pem (DOCKER_CERT_PATH)"
            ),
        )
    }

    /// Sends `req` on a new connection (HTTP/1.1, upgrades allowed) and returns the response head; the body
    /// streams from the connection, which lives until the body (or the upgraded stream) is dropped.
    pub async fn send<B>(&self, req: Request<B>) -> Result<Response<Incoming>, SendError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let io = self.connect().await.map_err(SendError::Connect)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender.send_request(origin_form(req, &self.endpoint)).await?)
    }

    /// bollard's client for this engine, every request going through [`Dialer::send`]. `timeout` bounds each
    /// request's wait for its response head (not the streaming body).
    pub fn docker(&self, timeout: Duration) -> Result<bollard::Docker, bollard::errors::Error> {
        let dialer = self.clone();
        bollard::Docker::connect_with_custom_transport(
            move |req: bollard::BollardRequest| {
                let dialer = dialer.clone();
                async move {
                    dialer.send(req).await.map_err(|e| match e {
                        SendError::Connect(err) => bollard::errors::Error::IOError { err },
                        SendError::Http(err) => bollard::errors::Error::HyperResponseError { err },
                    })
                }
            },
            Some("http://docker"),
            timeout.as_secs().max(1),
            bollard::API_DEFAULT_VERSION,
        )
    }
}

/// The request with an origin-form target (`/v1.41/build?...`) and a `Host` header, as a daemon expects on a
/// connection of its own.
fn origin_form<B>(req: Request<B>, endpoint: &Endpoint) -> Request<B> {
    let (mut parts, body) = req.into_parts();
    if let Some(pq) = parts.uri.path_and_query().cloned() {
        if let Ok(uri) = http::Uri::builder().path_and_query(pq).build() {
            parts.uri = uri;
        }
    }
    let host = match endpoint {
        Endpoint::Unix(_) => "docker".to_string(),
        Endpoint::Tcp { host, port, .. } if host.contains(':') => format!("[{host}]:{port}"),
        Endpoint::Tcp { host, port, .. } => format!("{host}:{port}"),
    };
    if let Ok(v) = http::HeaderValue::from_str(&host) {
        parts.headers.insert(http::header::HOST, v);
    }
    Request::from_parts(parts, body)
}

fn server_name(host: &str) -> Result<ServerName<'static>, EndpointError> {
    ServerName::try_from(host.to_string()).map_err(|_| EndpointError::Tls {
        dir: PathBuf::new(),
        message: format!("`{host}` is not a name a TLS certificate can be checked against"),
    })
}

/// The docker CLI's client TLS: trust `ca.pem` (only it, as the CLI does), present `cert.pem`/`key.pem` when
/// both exist.
fn tls_config(files: &TlsFiles) -> Result<rustls::ClientConfig, EndpointError> {
    let fail = |message: String| EndpointError::Tls { dir: files.dir.clone(), message };
    let ca = files.dir.join("ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&ca)
        .map_err(|e| fail(format!("reading {}: {e}", ca.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("reading {}: {e}", ca.display())))?;
    for cert in certs {
        roots.add(cert).map_err(|e| fail(format!("{}: {e}", ca.display())))?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let (cert, key) = (files.dir.join("cert.pem"), files.dir.join("key.pem"));
    if !cert.exists() && !key.exists() {
        return Ok(builder.with_no_client_auth());
    }
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| fail(format!("reading {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| fail(format!("reading {}: {e}", key.display())))?;
    builder.with_client_auth_cert(chain, key).map_err(|e| fail(format!("the client certificate and key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(host: Option<&str>, verify: Option<&str>, certs: Option<&str>) -> Result<Endpoint, EndpointError> {
        Endpoint::from_vars(host, verify, certs, Some("/home/u"))
    }

    #[test]
    fn docker_host_is_read_as_the_docker_cli_reads_it() {
        assert_eq!(from(None, None, None).unwrap(), Endpoint::Unix("/var/run/docker.sock".into()));
        assert_eq!(from(Some(" "), None, None).unwrap(), Endpoint::default());
        assert_eq!(from(Some("unix:///tmp/d.sock"), None, None).unwrap(), Endpoint::Unix("/tmp/d.sock".into()));
        assert_eq!(
            from(Some("tcp://build-host:2375"), None, None).unwrap(),
            Endpoint::Tcp { host: "build-host".into(), port: 2375, tls: None }
        );
        assert_eq!(
            from(Some("tcp://10.0.0.5"), Some("1"), None).unwrap(),
            Endpoint::Tcp {
                host: "10.0.0.5".into(),
                port: 2376,
                tls: Some(TlsFiles { dir: "/home/u/.docker".into() })
            },
            "TLS: port 2376 and ~/.docker by default"
        );
        assert_eq!(
            from(Some("tcp://[::1]:2376"), Some("1"), Some("/certs")).unwrap(),
            Endpoint::Tcp { host: "::1".into(), port: 2376, tls: Some(TlsFiles { dir: "/certs".into() }) }
        );
        assert_eq!(
            from(Some("tcp://h:1"), Some(""), Some("/certs")).unwrap(),
            Endpoint::Tcp { host: "h".into(), port: 1, tls: None },
            "an empty DOCKER_TLS_VERIFY is unset, as for the CLI"
        );
    }

    #[test]
    fn unusable_hosts_say_what_to_set() {
        for bad in ["unix://", "npipe:////./pipe/docker_engine", "tcp://", "fd://", "/var/run/docker.sock"] {
            let e = from(Some(bad), None, None).unwrap_err().to_string();
            assert!(e.contains("DOCKER_HOST") && e.contains("unix:///"), "{bad}: {e}");
        }
        let e = from(Some("ssh://me@host"), None, None).unwrap_err().to_string();
        assert!(e.contains("ssh -L"), "{e}");
    }

    #[test]
    fn plain_tcp_to_another_host_is_flagged() {
        assert!(from(Some("tcp://build-host:2375"), None, None).unwrap().is_plain_remote());
        assert!(!from(Some("tcp://127.0.0.1:2375"), None, None).unwrap().is_plain_remote());
        assert!(!from(Some("tcp://build-host"), Some("1"), None).unwrap().is_plain_remote());
        assert!(!Endpoint::default().is_plain_remote());
    }

    #[test]
    fn missing_tls_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = Dialer::new(Endpoint::Tcp {
            host: "h".into(),
            port: 2376,
            tls: Some(TlsFiles { dir: dir.path().to_path_buf() }),
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("ca.pem") && e.contains("DOCKER_CERT_PATH"), "{e}");
    }

    #[tokio::test]
    async fn an_absent_socket_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let d = Dialer::new(Endpoint::Unix(dir.path().join("none.sock"))).unwrap();
        let req = Request::get("/_ping").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
        let e = d.send(req).await.unwrap_err();
        assert!(matches!(&e, SendError::Connect(io) if io.kind() == io::ErrorKind::NotFound), "{e:?}");
    }
}

//! The BuildKit session: the channel through which the engine's BuildKit calls back into octopush during a build,
//! for registry credentials (to pull private bases) and for `RUN --mount=type=secret` values.
//!
//! The engine API takes `POST /session` with `Upgrade: h2c`; the connection then carries HTTP/2 with octopush as
//! the gRPC *server*, and a build that names the session id in `/build?session=` uses it. We serve the session
//! ourselves rather than through bollard: bollard 0.21's `build_image` opens a session of its own that offers
//! only Auth (its secrets provider is crate-private, per `../shared/ENGINE.md`), and its Moby gRPC driver, which
//! does take secrets, returns no progress stream and holds the whole context in memory. Here the services are:
//! - `grpc.health.v1.Health`: BuildKit checks the session is alive;
//! - `moby.filesync.v1.Auth/Credentials`: the user name and secret for a registry host, from the credentials
//!   octopush resolved before the build (inputs, `registry_auth`, docker `config.json`, helpers); BuildKit then
//!   does the token exchange itself. Nothing goes on a command line or into a log;
//! - `moby.buildkit.secrets.v1.Secrets/GetSecret`: the `secrets` and `secret_files` inputs, by id.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use bollard_buildkit_proto::health::health_check_response::ServingStatus;
use bollard_buildkit_proto::health::health_server::{Health, HealthServer};
use bollard_buildkit_proto::health::{HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use bollard_buildkit_proto::moby::filesync::v1::auth_server::{Auth, AuthServer};
use bollard_buildkit_proto::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse, GetTokenAuthorityRequest,
    GetTokenAuthorityResponse, VerifyTokenAuthorityRequest, VerifyTokenAuthorityResponse,
};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::{Request, Response, Status};

use super::endpoint::Dialer;
use crate::registry::Credentials;
use crate::secret::Secret;

/// BuildKit refuses secrets larger than this (its own limit, `MaxSecretSize`).
const MAX_SECRET_SIZE: u64 = 500 * 1024;

/// Where a build secret's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretSource {
    /// A value from the `secrets` input (masked at the edge).
    Value(Secret),
    /// A file from the `secret_files` input, read when BuildKit asks for it.
    File(PathBuf),
}

/// What the session answers with.
#[derive(Debug, Clone, Default)]
pub struct SessionServices {
    /// Registry credentials by host (as BuildKit asks: `ghcr.io`, `127.0.0.1:5000`, `registry-1.docker.io`).
    pub credentials: BTreeMap<String, Credentials>,
    pub secrets: BTreeMap<String, SecretSource>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("opening the BuildKit session: {0}")]
    Send(#[from] super::endpoint::SendError),
    /// The engine answered `/session` with something other than `101 Switching Protocols`: no BuildKit there.
    #[error("the engine does not offer BuildKit sessions (POST /session answered {0})")]
    NotOffered(http::StatusCode),
    #[error("opening the BuildKit session: {0}")]
    Upgrade(hyper::Error),
}

/// A session being served; dropping it ends it.
pub struct Session {
    pub id: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// gRPC methods the session offers, announced in `X-Docker-Expose-Session-Grpc-Method`: BuildKit calls only
/// what is listed.
const METHODS: [&str; 3] = [
    "/grpc.health.v1.Health/Check",
    "/moby.filesync.v1.Auth/Credentials",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
];

impl Session {
    /// Opens a session on the engine and serves `services` on it until dropped. `name` is shown by the engine
    /// (the context directory's name, as the docker CLI sends it).
    pub async fn start(dialer: &Dialer, name: &str, services: SessionServices) -> Result<Session, SessionError> {
        let id = random_id();
        let mut req = http::Request::post("/session")
            .header(http::header::CONNECTION, "Upgrade")
            .header(http::header::UPGRADE, "h2c")
            .header("X-Docker-Expose-Session-Uuid", &id)
            .header("X-Docker-Expose-Session-Name", sanitize(name))
            .header("X-Docker-Expose-Session-Sharedkey", random_id());
        for m in METHODS {
            req = req.header("X-Docker-Expose-Session-Grpc-Method", m);
        }
        let req = req.body(Empty::<bytes::Bytes>::new()).expect("static request parts are valid");
        let response = dialer.send(req).await?;
        if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            return Err(SessionError::NotOffered(response.status()));
        }
        let upgraded = hyper::upgrade::on(response).await.map_err(SessionError::Upgrade)?;
        let io = Connection(TokioIo::new(upgraded));
        let services = Arc::new(services);
        let router = tonic::transport::Server::builder()
            .add_service(HealthServer::new(HealthService))
            .add_service(AuthServer::new(AuthService(services.clone())))
            .add_service(SecretsServer::new(SecretsService(services)));
        let task = tokio::spawn(async move {
            // The engine closes the connection when the build ends; nothing to report either way.
            let _ = router.serve_with_incoming(futures_util::stream::iter([Ok::<_, std::io::Error>(io)])).await;
        });
        Ok(Session { id, task })
    }
}

/// 25 random lowercase alphanumerics, as BuildKit's identity package makes them.
fn random_id() -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..25).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// A header-safe session name.
fn sanitize(name: &str) -> String {
    let clean: String = name.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
    if clean.is_empty() { "octopush".into() } else { clean }
}

/// The upgraded connection, as tonic's server takes it.
struct Connection(TokioIo<hyper::upgrade::Upgraded>);

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

struct HealthService;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(&self, _: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse { status: ServingStatus::Serving as i32 }))
    }

    async fn list(&self, _: Request<HealthListRequest>) -> Result<Response<HealthListResponse>, Status> {
        Err(Status::unimplemented("not offered"))
    }

    type WatchStream = Pin<Box<dyn futures_util::Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

    async fn watch(&self, _: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("not offered"))
    }
}

/// Registry credentials for BuildKit, by the host it asks for.
struct AuthService(Arc<SessionServices>);

/// The user name docker's config uses to mark an identity token (`registry::docker_config`).
const IDENTITY_TOKEN_USER: &str = "<token>";

impl AuthService {
    fn lookup(&self, host: &str) -> Option<&Credentials> {
        let creds = &self.0.credentials;
        // BuildKit asks for Docker Hub by the host it talks to.
        let alias = match host {
            "registry-1.docker.io" | "index.docker.io" => Some("docker.io"),
            _ => None,
        };
        creds.get(host).or_else(|| alias.and_then(|a| creds.get(a)))
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn credentials(&self, req: Request<CredentialsRequest>) -> Result<Response<CredentialsResponse>, Status> {
        let host = req.into_inner().host;
        // Unknown hosts get empty credentials: BuildKit then pulls anonymously.
        let response = match self.lookup(&host) {
            None => CredentialsResponse::default(),
            // An identity token goes as the secret with no user name, as the docker CLI's provider sends it.
            Some(c) if c.username == IDENTITY_TOKEN_USER => {
                CredentialsResponse { username: String::new(), secret: c.password.expose().to_string() }
            }
            Some(c) => CredentialsResponse { username: c.username.clone(), secret: c.password.expose().to_string() },
        };
        Ok(Response::new(response))
    }

    async fn fetch_token(&self, _: Request<FetchTokenRequest>) -> Result<Response<FetchTokenResponse>, Status> {
        Err(Status::unimplemented("BuildKit fetches tokens itself with Credentials"))
    }

    async fn get_token_authority(
        &self,
        _: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("not offered"))
    }

    async fn verify_token_authority(
        &self,
        _: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("not offered"))
    }
}

/// `RUN --mount=type=secret` values, by id.
struct SecretsService(Arc<SessionServices>);

#[tonic::async_trait]
impl Secrets for SecretsService {
    async fn get_secret(&self, req: Request<GetSecretRequest>) -> Result<Response<GetSecretResponse>, Status> {
        let id = req.into_inner().id;
        let data = match self.0.secrets.get(&id) {
            // NotFound lets BuildKit fail a `required=true` mount with its own message and skip an optional one.
            None => {
                return Err(Status::not_found(format!(
                    "secret {id} not found: give it in `secrets` or `secret_files`"
                )));
            }
            Some(SecretSource::Value(v)) => v.expose().as_bytes().to_vec(),
            Some(SecretSource::File(path)) => {
                let meta = tokio::fs::metadata(path)
                    .await
                    .map_err(|e| Status::not_found(format!("secret {id}: {}: {e}", path.display())))?;
                if meta.len() > MAX_SECRET_SIZE {
                    return Err(Status::failed_precondition(format!(
                        "secret {id}: {} is {} bytes, over BuildKit's limit of {MAX_SECRET_SIZE}",
                        path.display(),
                        meta.len()
                    )));
                }
                tokio::fs::read(path)
                    .await
                    .map_err(|e| Status::not_found(format!("secret {id}: {}: {e}", path.display())))?
            }
        };
        Ok(Response::new(GetSecretResponse { data }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services() -> Arc<SessionServices> {
        let mut s = SessionServices::default();
        s.credentials.insert("ghcr.io".into(), Credentials::new("octocat", Secret::new("ghp_x")));
        s.credentials.insert("docker.io".into(), Credentials::new("hubber", Secret::new("hub-pass")));
        s.credentials.insert("id.example".into(), Credentials::new(IDENTITY_TOKEN_USER, Secret::new("refresh")));
        s.secrets.insert("token".into(), SecretSource::Value(Secret::new("s3cr3t")));
        s.secrets.insert("missing-file".into(), SecretSource::File("/nonexistent/secret".into()));
        Arc::new(s)
    }

    async fn creds(host: &str) -> (String, String) {
        let r = AuthService(services())
            .credentials(Request::new(CredentialsRequest { host: host.into() }))
            .await
            .unwrap()
            .into_inner();
        (r.username, r.secret)
    }

    #[tokio::test]
    async fn credentials_answer_by_host_with_docker_hub_aliases_and_identity_tokens() {
        assert_eq!(creds("ghcr.io").await, ("octocat".into(), "ghp_x".into()));
        assert_eq!(creds("registry-1.docker.io").await, ("hubber".into(), "hub-pass".into()));
        assert_eq!(creds("id.example").await, (String::new(), "refresh".into()));
        assert_eq!(creds("quay.io").await, (String::new(), String::new()), "unknown hosts pull anonymously");
    }

    #[tokio::test]
    async fn secrets_answer_by_id_and_unknown_ids_are_not_found() {
        let s = SecretsService(services());
        let get =
            |id: &str| s.get_secret(Request::new(GetSecretRequest { id: id.into(), annotations: Default::default() }));
        assert_eq!(get("token").await.unwrap().into_inner().data, b"s3cr3t");
        let e = get("nope").await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
        assert!(e.message().contains("`secrets`"), "{}", e.message());
        let e = get("missing-file").await.unwrap_err();
        assert!(e.message().contains("/nonexistent/secret"), "{}", e.message());
    }

    #[test]
    fn session_ids_are_fresh_and_names_header_safe() {
        assert_ne!(random_id(), random_id());
        assert_eq!(random_id().len(), 25);
        assert_eq!(sanitize("my app\n"), "myapp");
        assert_eq!(sanitize(""), "octopush");
    }
}

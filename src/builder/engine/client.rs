//! One Docker Engine, connected: its API version (negotiated once, as `../shared/ENGINE.md` advises: bollard
//! defaults to a version newer than old engines accept), what it runs on, whether it offers BuildKit and which
//! platforms its BuildKit can run. bollard serves the typed endpoints (version, inspect, export, pull); the
//! BuildKit session and the `/build` request go through the same [`Dialer`].

use std::time::Duration;

use bollard_buildkit_proto::moby::buildkit::v1::ListWorkersRequest;
use bollard_buildkit_proto::moby::buildkit::v1::control_client::ControlClient;
use http_body_util::Empty;

use super::endpoint::{Dialer, Endpoint, SendError};
use crate::image::{
    Blob, BlobSource, ContainerConfig, Descriptor, Digest, Image, ImageConfig, Layer, Platform, RootFs, media_type,
};

/// How long a plain API call may wait for its answer's head (builds and exports stream for as long as they
/// take).
const API_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Nothing answered: no socket, connection refused, or silence.
    #[error("no Docker Engine answered at {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    #[error("the Docker Engine at {endpoint}: {message}")]
    Api { endpoint: String, message: String },
}

/// A connected engine.
pub struct Engine {
    pub(crate) dialer: Dialer,
    pub(crate) docker: bollard::Docker,
    /// `1.41`: the version every request of ours is made with.
    pub api: String,
    /// The engine's own version (`20.10.24`) and platform.
    pub version: String,
    pub platform: Platform,
}

impl Engine {
    /// Connects and negotiates the API version; an engine that does not answer is [`EngineError::Unreachable`].
    pub async fn connect(endpoint: Endpoint) -> Result<Engine, EngineError> {
        let name = endpoint.to_string();
        let dialer =
            Dialer::new(endpoint).map_err(|e| EngineError::Api { endpoint: name.clone(), message: e.to_string() })?;
        let docker = dialer.docker(API_TIMEOUT).map_err(|e| api_error(&name, e))?;
        let docker = docker.negotiate_version().await.map_err(|e| match e {
            // A TLS failure means an engine is there: the error is about the certificates, not its absence.
            bollard::errors::Error::IOError { err } if err.kind() != std::io::ErrorKind::InvalidData => {
                EngineError::Unreachable { endpoint: name.clone(), message: err.to_string() }
            }
            other => api_error(&name, other),
        })?;
        let v = docker.version().await.map_err(|e| api_error(&name, e))?;
        let client = docker.client_version();
        let platform = Platform::new(
            v.os.as_deref().unwrap_or("linux"),
            &normalize_arch(v.arch.as_deref().unwrap_or("amd64")),
            None,
        );
        Ok(Engine {
            dialer,
            docker,
            api: format!("{}.{}", client.major_version, client.minor_version),
            version: v.version.unwrap_or_default(),
            platform,
        })
    }

    /// The image `id` as the engine's inspection describes it, before any export: its platform, settings (the
    /// `config` object) and diff_ids, each layer a placeholder whose digest is its diff_id and whose bytes are not
    /// here. Good for what reads settings only (a split build's tail built ahead), never for a push.
    pub async fn image_settings(&self, id: &str) -> Result<Image, String> {
        let inspect = self.docker.inspect_image(id).await.map_err(|e| describe(&e))?;
        let settings = serde_json::to_value(&inspect.config)
            .and_then(serde_json::from_value::<Option<ContainerConfig>>)
            .map_err(|e| format!("the image's settings: {e}"))?;
        let diff_ids = inspect.root_fs.and_then(|r| r.layers).unwrap_or_default();
        let diff_ids =
            diff_ids.iter().map(|d| d.parse::<Digest>()).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
        let layers = diff_ids
            .iter()
            .map(|d| Layer {
                blob: Blob {
                    descriptor: Descriptor::new(media_type::OCI_LAYER_GZIP, d.clone(), 0),
                    source: BlobSource::Bytes(Default::default()),
                },
                diff_id: d.clone(),
            })
            .collect();
        let config = ImageConfig {
            architecture: inspect.architecture.unwrap_or_default(),
            os: inspect.os.unwrap_or_default(),
            variant: inspect.variant.filter(|v| !v.is_empty()),
            config: settings,
            rootfs: RootFs { kind: "layers".into(), diff_ids },
            ..ImageConfig::default()
        };
        Ok(Image::from_parts(config, layers))
    }

    /// Removes the image `id` (its layers stay while another image holds them). A failure leaves an untagged
    /// image behind and is not an error.
    pub async fn remove_image(&self, id: &str) {
        let _ = self.docker.remove_image(id, None::<bollard::query_parameters::RemoveImageOptions>, None).await;
    }

    pub fn endpoint(&self) -> String {
        self.dialer.endpoint().to_string()
    }

    /// `/v1.41/PATH`.
    pub(crate) fn path(&self, path: &str) -> String {
        format!("/v{}{path}", self.api)
    }

    /// Whether the engine speaks the BuildKit API at all (API 1.39 and later on Linux; a session may still be
    /// refused, which the build then reports).
    pub fn offers_buildkit(&self) -> bool {
        let mut parts = self.api.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        self.platform.os == "linux" && (major, minor) >= (1, 39)
    }

    /// The platforms the engine's BuildKit can run (its own, and those registered for emulation), from
    /// BuildKit's `ListWorkers` over the engine's `/grpc` endpoint. `None` when that endpoint is not there.
    pub async fn buildkit_platforms(&self) -> Option<Vec<Platform>> {
        let dialer = self.dialer.clone();
        let path = self.path("/grpc");
        let connector = tower::service_fn(move |_: http::Uri| {
            let (dialer, path) = (dialer.clone(), path.clone());
            async move {
                let req = http::Request::post(path)
                    .header(http::header::CONNECTION, "Upgrade")
                    .header(http::header::UPGRADE, "h2c")
                    .body(Empty::<bytes::Bytes>::new())
                    .map_err(std::io::Error::other)?;
                let response = dialer.send(req).await.map_err(|e| match e {
                    SendError::Connect(e) => e,
                    SendError::Http(e) => std::io::Error::other(e),
                })?;
                if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
                    return Err(std::io::Error::other(format!("/grpc answered {}", response.status())));
                }
                hyper::upgrade::on(response).await.map_err(std::io::Error::other)
            }
        });
        let channel =
            tonic::transport::Endpoint::from_static("http://docker").connect_with_connector(connector).await.ok()?;
        let workers = tokio::time::timeout(
            Duration::from_secs(10),
            ControlClient::new(channel).list_workers(ListWorkersRequest { filter: Vec::new() }),
        )
        .await
        .ok()?
        .ok()?
        .into_inner();
        let mut platforms: Vec<Platform> = Vec::new();
        for p in workers.record.iter().flat_map(|w| w.platforms.iter()) {
            let variant = (!p.variant.is_empty()).then_some(p.variant.as_str());
            let platform = Platform::new(&p.os, &p.architecture, variant);
            if !platforms.contains(&platform) {
                platforms.push(platform);
            }
        }
        Some(platforms)
    }
}

fn api_error(endpoint: &str, e: bollard::errors::Error) -> EngineError {
    EngineError::Api { endpoint: endpoint.to_string(), message: describe(&e) }
}

/// A bollard error in one line: the engine's own message when it sent one.
pub(crate) fn describe(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, message } => {
            format!("{message} ({status_code})")
        }
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// Go's architecture names are OCI's; a few engines report the kernel's.
fn normalize_arch(arch: &str) -> String {
    match arch {
        "x86_64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.to_string(),
    }
}

//! Building an image from a Dockerfile, with one of two builders behind one seam:
//! - [`native`]: daemonless, for Dockerfiles whose needed stages have no `RUN` (base layers stay in the
//!   registry, each COPY/ADD is one reproducible layer);
//! - [`engine`]: everything else, through the Docker Engine the runner mounts (BuildKit over the engine API),
//!   its result exported and pushed with our own registry client.
//!
//! Both yield the same [`Artifact`] value, and both send each new layer blob to the [`LayerSink`] as soon as it
//! is written, so the publish pipeline uploads while the build goes on and treats their results alike.
//! [`plan`] reads the Dockerfile once and [`choose`] picks the builder from it, before any work starts. Under
//! `auto`, a target whose last `RUN` is followed by `COPY` is [`split`]: the engine builds up to that RUN and the
//! native builder lays the rest on its image.
//!
//! Shared by both: the options ([`BuildOptions`]), errors ([`BuildError`]), `.dockerignore` matching
//! ([`ignore`]), layer compression ([`compress`]) and base image resolution ([`BaseResolver`]).

pub mod compress;
pub mod engine;
mod error;
pub mod ignore;
pub mod native;
mod plan;
pub mod split;

#[cfg(test)]
mod ignore_tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};

pub use compress::Compression;
pub use error::BuildError;
pub use ignore::{PatternMatcher, read_ignore_file};
pub use native::{DEFAULT_CACHE_BYTES, Fetched, LayerCache, platform_of};
pub use plan::{BuilderChoice, BuilderKind, Plan, choose};

use crate::image::{Blob, Image, ImageRef, Platform};
use crate::registry::Credentials;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// The Dockerfile, already resolved to a path.
    pub dockerfile: PathBuf,
    /// The stage to build (`--target`); the last stage when `None`.
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    /// Platforms to build; empty means the base's platform: its only one, else the one matching
    /// `host_platform`, else linux/amd64 (the host's platform for scratch).
    pub platforms: Vec<Platform>,
    /// The platform of the machine running the build (`BUILDPLATFORM`, and the default above); the caller
    /// fills it, with [`platform_of`] from `std::env::consts`.
    pub host_platform: Platform,
    /// Labels added to the final config (they win over the Dockerfile's).
    pub labels: BTreeMap<String, String>,
    /// Timestamp for `created`, history and every file in our layers. The caller passes the commit time when
    /// `SOURCE_DATE_EPOCH` is unset; `None` means now (and then builds are not reproducible).
    pub source_date_epoch: Option<i64>,
    /// Where layer files are written; the caller owns it and keeps it until the image is pushed.
    pub work_dir: PathBuf,
    /// A [`LayerCache`] directory: layers whose inputs have not changed since a build recorded them are taken
    /// from it instead of being written again. `None`: no cache.
    pub cache_dir: Option<PathBuf>,
    /// How layers are compressed (the bytes, and so the digests, differ per codec).
    pub compression: Compression,
    /// Where the engine is and what only the engine builder takes (`pull`, `secrets`, ...).
    pub engine: engine::EngineOptions,
}

/// Turns a `FROM` reference into an image whose layers stay in the registry.
pub trait BaseResolver: Sync {
    fn resolve(&self, base: &ImageRef, platform: &Platform) -> impl Future<Output = Result<Image, BuildError>> + Send;
    fn platforms(&self, base: &ImageRef) -> impl Future<Output = Result<Vec<Platform>, BuildError>> + Send;
    /// Downloads a base layer's blob to `dest`, checking its digest. Used only when a file must be read from
    /// the base (`--chown=name`, `COPY --from=image`).
    fn fetch_blob(&self, blob: &Blob, dest: &Path) -> impl Future<Output = Result<(), BuildError>> + Send;
    /// Fetches an ADD URL into `dest` (a file in the work directory), hashing it ([`fetch::fetch_http`] does it
    /// over HTTP).
    fn fetch_url(&self, url: &str, dest: &Path) -> impl Future<Output = Result<Fetched, BuildError>> + Send;
    /// The credentials for a registry host the build pulls from, as the push would use them (the engine builder
    /// hands them to the engine). None by default.
    fn credentials(&self, registry: &str) -> impl Future<Output = Result<Option<Credentials>, BuildError>> + Send {
        let _ = registry;
        async { Ok(None) }
    }
}

/// A resolver for Dockerfiles that only build `FROM scratch`: any registry base is an error.
pub struct ScratchOnly;

impl BaseResolver for ScratchOnly {
    async fn resolve(&self, base: &ImageRef, _: &Platform) -> Result<Image, BuildError> {
        Err(BuildError::base(base, "no registry access is configured for this build (only FROM scratch works)"))
    }

    async fn platforms(&self, base: &ImageRef) -> Result<Vec<Platform>, BuildError> {
        Err(BuildError::base(base, "no registry access is configured for this build (only FROM scratch works)"))
    }

    async fn fetch_blob(&self, blob: &Blob, _: &Path) -> Result<(), BuildError> {
        Err(BuildError::base(
            blob.descriptor.digest.as_str(),
            "no registry access is configured for this build (only FROM scratch works)",
        ))
    }

    async fn fetch_url(&self, url: &str, _: &Path) -> Result<Fetched, BuildError> {
        Err(BuildError::Fetch {
            url: url.to_string(),
            message: "no network access is configured for this build".into(),
        })
    }
}

/// Receives the blob of every layer of the final image as soon as it is written, while later layers are still
/// being compressed, so a publisher can start uploading it ([`build_with_sink`]). The same blob can come twice
/// (a layer shared by two platforms); layers of stages the image is not built from (a `COPY --from` source
/// stage) are not sent.
pub type LayerSink = tokio::sync::mpsc::UnboundedSender<SinkItem>;

/// What a build sends its [`LayerSink`]: one item a layer, so the size of the larger variant does not matter.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum SinkItem {
    /// A layer blob, written.
    Blob(Blob),
    /// A layer blob still being written (the engine's layers, compressed as the export streams): a push can
    /// stream it as it grows. Its finished blob is not sent again.
    Growing(crate::image::Growing),
}

impl From<Blob> for SinkItem {
    fn from(blob: Blob) -> SinkItem {
        SinkItem::Blob(blob)
    }
}

/// Builds `plan`'s target with the builder `choice` names (as [`choose`] picked it), sending each new layer blob
/// to `sink` as soon as it is written.
pub async fn build_with_sink<R: BaseResolver>(
    choice: &BuilderChoice,
    opts: &BuildOptions,
    plan: &Plan,
    bases: &R,
    progress: &dyn crate::progress::Progress,
    sink: Option<LayerSink>,
) -> Result<crate::image::Artifact, BuildError> {
    match (choice.kind, &choice.split) {
        (BuilderKind::Engine, Some(split)) => split::build_with_sink(opts, plan, split, bases, progress, sink).await,
        (BuilderKind::Engine, None) => engine::build_with_sink(opts, plan, bases, progress, sink).await,
        (BuilderKind::Native | BuilderKind::Auto, _) => {
            native::build_with_sink(opts, plan, bases, progress, sink).await
        }
    }
}

//! The native builder: a Dockerfile and a context directory in, an image (or a multi-platform index) out,
//! without a daemon, without root and without downloading base layers (as ko and jib do). Each COPY, ADD and
//! WORKDIR writes one deterministic gzip layer into `work_dir`; metadata instructions edit the config; base layers
//! stay references in their registry. RUN is refused: it needs a container runtime. Layers are downloaded (into
//! `work_dir`, through [`BaseResolver::fetch_blob`]) only to see inside an image: `--chown=NAME` and `USER NAME`
//! read `/etc/passwd` and `/etc/group` from the base (`base_files`), `COPY --from=<image>` unpacks it
//! (`image_fs`); `ADD <url>` fetches through [`BaseResolver::fetch_url`] ([`fetch`]).
//!
//! Layout: [`ignore`] (`.dockerignore`), `context` (sources in the context), `fs` (what the stage's own layers hold),
//! `copy` (COPY/ADD semantics), `chmod` (`--chmod`), `archive` (ADD's tars), `layer` (tar + gzip), `stage`
//! (evaluation) and `config` (metadata instructions).

mod archive;
mod base_files;
mod cache;
mod chmod;
mod compress;
mod config;
mod context;
mod copy;
mod error;
pub mod fetch;
mod fs;
pub mod ignore;
mod image_fs;
mod layer;
mod stage;

#[cfg(test)]
mod ignore_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use cache::{DEFAULT_MAX_BYTES as DEFAULT_CACHE_BYTES, LayerCache};
pub use compress::Compression;
pub use error::BuildError;
pub use fetch::Fetched;
pub use ignore::{PatternMatcher, read_ignore_file};
pub use stage::platform_of;

use crate::dockerfile::{self, Dockerfile, shell::Lexer};
use crate::image::{Artifact, Blob, Image, ImageIndex, ImageRef, Platform};
use crate::progress::Progress;

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
pub type LayerSink = tokio::sync::mpsc::UnboundedSender<Blob>;

/// Builds the target stage for every platform: one image, or an index when several platforms are asked for.
pub async fn build<R: BaseResolver>(
    opts: &BuildOptions,
    bases: &R,
    progress: &dyn Progress,
) -> Result<Artifact, BuildError> {
    build_with_sink(opts, bases, progress, None).await
}

/// [`build`], sending each layer to `sink` when it is committed. The sink is dropped when the build ends (with
/// or without an error), which closes the channel.
pub async fn build_with_sink<R: BaseResolver>(
    opts: &BuildOptions,
    bases: &R,
    progress: &dyn Progress,
    sink: Option<LayerSink>,
) -> Result<Artifact, BuildError> {
    let text = tokio::fs::read_to_string(&opts.dockerfile)
        .await
        .map_err(|e| BuildError::io("reading the Dockerfile", &opts.dockerfile, e))?;
    let label = display_name(&opts.context, &opts.dockerfile);
    let df = dockerfile::parse(&text, &label)?;
    let target = target_index(&df, opts.target.as_deref())?;
    tokio::fs::create_dir_all(&opts.work_dir)
        .await
        .map_err(|e| BuildError::io("creating the work directory", &opts.work_dir, e))?;
    let ctx = Arc::new(open_context(opts)?);
    let now = chrono::Utc::now().timestamp();
    let timestamp = opts.source_date_epoch.unwrap_or(now);
    let created = chrono::DateTime::from_timestamp(timestamp, 0)
        .ok_or_else(|| BuildError::Options(format!("source_date_epoch {timestamp} is out of range")))?
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let platforms = if opts.platforms.is_empty() {
        vec![default_platform(&df, target, opts, bases).await?]
    } else {
        opts.platforms.clone()
    };
    if let Some(dup) = platforms.iter().enumerate().find(|(i, p)| platforms[..*i].contains(p)) {
        return Err(BuildError::Options(format!("the platform {} is listed twice", dup.1)));
    }
    let cache = match &opts.cache_dir {
        None => None,
        Some(dir) => match LayerCache::open(dir, cache::DEFAULT_MAX_BYTES) {
            Ok(c) => Some(c),
            Err(e) => {
                progress
                    .warning(&format!("the layer cache {} cannot be used, building without it: {e}", dir.display()));
                None
            }
        },
    };
    let layers = Arc::new(cache::LayerStore::new(cache));
    // Files and layers read from images, shared by every platform (a `FROM --platform=$BUILDPLATFORM` base is
    // the same for all of them).
    let base_files = base_files::BaseFiles::default();
    let mut images = Vec::new();
    let mut used_args = BTreeSet::new();
    for platform in &platforms {
        if platforms.len() > 1 {
            progress.info(&format!("building for {platform}"));
        }
        let env = stage::Env {
            opts,
            df: &df,
            file: &label,
            ctx: ctx.clone(),
            progress,
            created: &created,
            now: timestamp,
            layers: layers.clone(),
            layer_sink: sink.as_ref(),
            base_files: &base_files,
        };
        let (image, used) = stage::Evaluator::new(env, bases, platform.clone()).run(target).await?;
        used_args.extend(used);
        images.push(image);
    }
    let unused: Vec<&String> = opts.build_args.keys().filter(|k| !used_args.contains(*k)).collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        progress.warning(&format!("build-args not consumed by any ARG in the Dockerfile: {}", names.join(", ")));
    }
    Ok(match images.len() {
        1 => Artifact::Image(images.remove(0)),
        _ => Artifact::Index(ImageIndex { images, annotations: BTreeMap::new() }),
    })
}

/// How the Dockerfile is named in errors: relative to the context when inside it.
fn display_name(context: &Path, dockerfile: &Path) -> String {
    dockerfile.strip_prefix(context).unwrap_or(dockerfile).display().to_string()
}

fn target_index(df: &Dockerfile, target: Option<&str>) -> Result<usize, BuildError> {
    let Some(t) = target else { return Ok(df.stages.len() - 1) };
    let wanted = t.to_ascii_lowercase();
    df.stages.iter().position(|s| s.name.as_deref() == Some(wanted.as_str())).ok_or_else(|| {
        let names: Vec<&str> = df.stages.iter().filter_map(|s| s.name.as_deref()).collect();
        BuildError::Options(if names.is_empty() {
            format!("target stage `{t}` not found: no stage has a name (name one with FROM ... AS {t})")
        } else {
            format!("target stage `{t}` not found; the Dockerfile's stages are: {}", names.join(", "))
        })
    })
}

fn open_context(opts: &BuildOptions) -> Result<context::Context, BuildError> {
    let meta =
        std::fs::metadata(&opts.context).map_err(|e| BuildError::io("reading the build context", &opts.context, e))?;
    if !meta.is_dir() {
        return Err(BuildError::Options(format!("the build context {} is not a directory", opts.context.display())));
    }
    let loaded = ignore::load_ignore_patterns(&opts.context, &opts.dockerfile)
        .map_err(|e| BuildError::io("reading .dockerignore in", &opts.context, e))?;
    let (file, patterns) = match loaded {
        Some((f, p)) => (Some(f), p),
        None => (None, Vec::new()),
    };
    let matcher = PatternMatcher::new(&patterns).map_err(|e| {
        let f = file.as_ref().map_or(".dockerignore".into(), |f| f.display().to_string());
        BuildError::Options(format!("{f}: {e}"))
    })?;
    Ok(context::Context::new(opts.context.clone(), matcher, file, &opts.work_dir))
}

/// The platform to build when none is given: from the target's `FROM --platform`, else the base's only
/// platform, else the one matching the host, else linux/amd64; scratch builds for the host.
async fn default_platform<R: BaseResolver>(
    df: &Dockerfile,
    target: usize,
    opts: &BuildOptions,
    bases: &R,
) -> Result<Platform, BuildError> {
    let host = opts.host_platform.clone();
    let global = stage::global_args(df, opts, &host, &host, &mut BTreeSet::new()).unwrap_or_default();
    let lexer = Lexer::new(df.escape);
    let mut idx = target;
    // The registry base the target comes from, through its FROM parents.
    let base = loop {
        let s = &df.stages[idx];
        if let Some(p) = &s.platform {
            let expanded = lexer.process_word(p, &global).unwrap_or_default();
            if let Some(p) = Platform::parse(&expanded) {
                return Ok(p);
            }
        }
        let base = lexer.process_word(&s.base, &global).unwrap_or_else(|_| s.base.clone());
        let lower = base.to_ascii_lowercase();
        if lower == "scratch" {
            return Ok(host);
        }
        match stage::stage_named(df, idx, &lower) {
            Some(parent) => idx = parent,
            None => break base,
        }
    };
    let Ok(r) = ImageRef::parse(&base) else { return Ok(host) };
    let available = bases.platforms(&r).await?;
    let amd64 = Platform::new("linux", "amd64", None);
    if let [only] = available.as_slice() {
        return Ok(only.clone());
    }
    if available.is_empty() {
        return Ok(host);
    }
    if let Some(p) = available.iter().find(|p| same_platform(p, &host)) {
        return Ok(p.clone());
    }
    if let Some(p) = available.iter().find(|p| same_platform(p, &amd64)) {
        return Ok(p.clone());
    }
    let names: Vec<String> = available.iter().map(Platform::to_string).collect();
    Err(BuildError::Options(format!(
        "{base} has no image for this machine ({host}) nor for linux/amd64, only {}: set the `platforms` input to \
         the ones to build, for example `platforms: {}`",
        names.join(", "),
        names[0]
    )))
}

/// Same os and architecture, and the same variant once each architecture's default is filled in (`arm64` is
/// `arm64/v8`, `arm` is `arm/v7`).
fn same_platform(a: &Platform, b: &Platform) -> bool {
    let variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", None) => Some("v8".to_string()),
        ("arm", None) => Some("v7".to_string()),
        (_, v) => v.map(str::to_string),
    };
    a.os == b.os && a.architecture == b.architecture && variant(a) == variant(b)
}

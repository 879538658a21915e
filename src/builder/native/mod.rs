//! The native builder: a Dockerfile and a context directory in, an image (or a multi-platform index) out,
//! without a daemon, without root and without downloading base layers (as ko and jib do). Each COPY, ADD and
//! WORKDIR writes one deterministic gzip layer into `work_dir`; metadata instructions edit the config; base layers
//! stay references in their registry. A Dockerfile whose target needs RUN goes to the engine builder instead
//! (`builder::choose`). Layers are downloaded (into
//! `work_dir`, through [`BaseResolver::fetch_blob`]) only to see inside an image: `--chown=NAME` and `USER NAME`
//! read `/etc/passwd` and `/etc/group` from the base (`base_files`), `COPY --from=<image>` unpacks it
//! (`image_fs`); `ADD <url>` fetches through [`BaseResolver::fetch_url`] ([`fetch`]).
//!
//! Layout: `context` (sources in the context), `fs` (what the stage's own layers hold),
//! `copy` (COPY/ADD semantics), `chmod` (`--chmod`), `archive` (ADD's tars), `layer` (tar + gzip), `stage`
//! (evaluation) and `config` (metadata instructions).

mod archive;
mod base_files;
mod cache;
mod chmod;
mod config;
mod context;
mod copy;
pub mod fetch;
mod fs;
mod image_fs;
mod layer;
pub(crate) mod stage;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use cache::{DEFAULT_MAX_BYTES as DEFAULT_CACHE_BYTES, LayerCache};
pub use fetch::Fetched;
pub use stage::platform_of;

use super::ignore::{self, PatternMatcher};
use super::plan::{self, Plan};
use super::{BaseResolver, BuildError, BuildOptions, LayerSink};

use crate::dockerfile::{Dockerfile, shell::Lexer};
use crate::image::{Artifact, ImageIndex, ImageRef, Platform};
use crate::progress::Progress;

/// Builds the target stage for every platform: one image, or an index when several platforms are asked for.
/// Reads the Dockerfile itself; [`build_with_sink`] takes the [`Plan`] the builder choice was made from.
pub async fn build<R: BaseResolver>(
    opts: &BuildOptions,
    bases: &R,
    progress: &dyn Progress,
) -> Result<Artifact, BuildError> {
    build_with_sink(opts, &Plan::read(opts)?, bases, progress, None).await
}

/// Builds `plan`'s target, sending each layer to `sink` when it is committed. The sink is dropped when the build
/// ends (with or without an error), which closes the channel.
pub async fn build_with_sink<R: BaseResolver>(
    opts: &BuildOptions,
    plan: &Plan,
    bases: &R,
    progress: &dyn Progress,
    sink: Option<LayerSink>,
) -> Result<Artifact, BuildError> {
    let (df, label, target) = (&plan.dockerfile, &plan.label, plan.target);
    tokio::fs::create_dir_all(&opts.work_dir)
        .await
        .map_err(|e| BuildError::io("creating the work directory", &opts.work_dir, e))?;
    let ctx = Arc::new(open_context(opts)?);
    let (timestamp, created) = creation_time(opts)?;
    let platforms = if opts.platforms.is_empty() {
        vec![default_platform(df, target, opts, bases).await?]
    } else {
        opts.platforms.clone()
    };
    if let Some(dup) = platforms.iter().enumerate().find(|(i, p)| platforms[..*i].contains(p)) {
        return Err(BuildError::Options(format!("the platform {} is listed twice", dup.1)));
    }
    let cache = LayerCache::for_build(opts.cache_dir.as_deref(), progress);
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
            df,
            file: label,
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

/// The instructions of `plan`'s target stage from index `from` on, laid on the engine's build of the stage up to
/// there (`builder::split`). A tail can be built more than once, on different bases: layers whose inputs did not
/// change are taken from the first build (its memo), so a build ahead on the engine's settings, while the
/// engine's image is still being exported, leaves the build on the exported image little to do. The build-args
/// are the engine's to check: an unused one is not warned about here.
pub(crate) struct Tail<'a> {
    opts: &'a BuildOptions,
    plan: &'a Plan,
    from: usize,
    ctx: Arc<context::Context>,
    timestamp: i64,
    created: String,
    layers: Arc<cache::LayerStore>,
}

impl<'a> Tail<'a> {
    pub(crate) fn new(
        opts: &'a BuildOptions,
        plan: &'a Plan,
        from: usize,
        progress: &dyn Progress,
    ) -> Result<Self, BuildError> {
        let ctx = Arc::new(open_context(opts)?);
        let (timestamp, created) = creation_time(opts)?;
        let layers = Arc::new(cache::LayerStore::new(LayerCache::for_build(opts.cache_dir.as_deref(), progress)));
        Ok(Tail { opts, plan, from, ctx, timestamp, created, layers })
    }

    /// The tail laid on `image`, each new layer sent to `sink`.
    pub(crate) async fn build<R: BaseResolver>(
        &self,
        image: crate::image::Image,
        bases: &R,
        progress: &dyn Progress,
        sink: Option<LayerSink>,
    ) -> Result<crate::image::Image, BuildError> {
        let base_files = base_files::BaseFiles::default();
        let platform = image.platform();
        let env = stage::Env {
            opts: self.opts,
            df: &self.plan.dockerfile,
            file: &self.plan.label,
            ctx: self.ctx.clone(),
            progress,
            created: &self.created,
            now: self.timestamp,
            layers: self.layers.clone(),
            layer_sink: sink.as_ref(),
            base_files: &base_files,
        };
        let resume = stage::Resume { stage: self.plan.target, from: self.from, image };
        let (image, _) = stage::Evaluator::new(env, bases, platform).resuming(resume).run(self.plan.target).await?;
        Ok(image)
    }
}

/// The build's timestamp (`source_date_epoch`, else now) and its RFC 3339 form for `created`.
fn creation_time(opts: &BuildOptions) -> Result<(i64, String), BuildError> {
    let timestamp = opts.source_date_epoch.unwrap_or_else(|| chrono::Utc::now().timestamp());
    let created = chrono::DateTime::from_timestamp(timestamp, 0)
        .ok_or_else(|| BuildError::Options(format!("source_date_epoch {timestamp} is out of range")))?
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok((timestamp, created))
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
        match plan::stage_named(df, idx, &lower) {
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
pub(crate) fn same_platform(a: &Platform, b: &Platform) -> bool {
    let variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", None) => Some("v8".to_string()),
        ("arm", None) => Some("v7".to_string()),
        (_, v) => v.map(str::to_string),
    };
    a.os == b.os && a.architecture == b.architecture && variant(a) == variant(b)
}

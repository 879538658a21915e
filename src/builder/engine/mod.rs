//! The engine builder: Dockerfiles with `RUN`, built by the Docker Engine the runner mounts, then taken out of it
//! as an image value that octopush's own registry client pushes (parallel compression, mounts, retries, one auth
//! path, the same tags, outputs and summary as native builds).
//!
//! A build: connect to the engine ([`endpoint`], [`client`]); choose BuildKit when it offers it, else the classic
//! builder with a warning naming what will then fail; pull `cache_from` images; per platform, send the context
//! ([`context`]) and run the build ([`build`]) with our BuildKit session ([`session`]) serving registry
//! credentials and secrets, printing its log ([`progress`]) and placing a failure on its Dockerfile line
//! ([`failure`]); then export it ([`export`]), reusing the base image's blobs where its layers are the base's.

mod build;
pub mod client;
pub mod context;
pub mod endpoint;
mod export;
mod failure;
mod load;
mod progress;
pub mod session;
mod v1_ids;

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures_util::StreamExt as _;

pub use client::{Engine, EngineError};
pub use endpoint::{Endpoint, EndpointError};
pub use load::load;
pub use session::SecretSource;

use super::native::stage::global_args;
use super::plan::{RunSite, root_base};
use super::{BaseResolver, BuildError, BuildOptions, LayerCache, LayerSink, Plan};
use crate::image::{Artifact, Image, ImageIndex, ImageRef, Platform};
use crate::progress::Progress;
use crate::registry::Credentials;
use build::{Mode, Params};
use session::{Session, SessionServices};

/// What only the engine builder takes.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub endpoint: Endpoint,
    /// Always pull the bases (`pull`, v1's `always_pull`).
    pub pull: bool,
    pub no_cache: bool,
    /// The network RUN instructions get (`default`, `none`, `host`); the engine's default when `None`.
    pub network: Option<String>,
    /// Images whose layers the build may reuse (`cache_from`, v1's `cache_froms`), pulled first.
    pub cache_from: Vec<String>,
    /// `RUN --mount=type=secret` values by id.
    pub secrets: BTreeMap<String, SecretSource>,
    /// The classic builder even where BuildKit is offered (`DOCKER_BUILDKIT=0`, as the docker CLI reads it).
    pub classic: bool,
    /// References the engine tags its image with, so later steps can run it (`docker run REF`).
    pub tags: Vec<String>,
}

/// The part of a Dockerfile the engine builds when the native builder lays the rest (`builder::split`).
#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// The Dockerfile cut after the target's last `RUN` (in the work directory).
    pub dockerfile: PathBuf,
    /// Whether those lines read the build context; when not, the engine gets the Dockerfile alone.
    pub context: bool,
    /// Gets the image ID as soon as the engine has built it, before the export.
    pub built: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

/// Builds `plan`'s target on the engine for every platform asked for (the engine's own when none is).
pub async fn build_with_sink<R: BaseResolver>(
    opts: &BuildOptions,
    plan: &Plan,
    bases: &R,
    progress: &dyn Progress,
    sink: Option<LayerSink>,
) -> Result<Artifact, BuildError> {
    build(opts, plan, None, bases, progress, sink).await
}

/// Builds `part` of `plan`'s target: its own Dockerfile, the context only if it reads it, and no tags (the
/// engine gets the whole image later, [`load`]).
pub(crate) async fn build_part<R: BaseResolver>(
    opts: &BuildOptions,
    plan: &Plan,
    part: &Part,
    bases: &R,
    progress: &dyn Progress,
    sink: Option<LayerSink>,
) -> Result<Artifact, BuildError> {
    build(opts, plan, Some(part), bases, progress, sink).await
}

async fn build<R: BaseResolver>(
    opts: &BuildOptions,
    plan: &Plan,
    part: Option<&Part>,
    bases: &R,
    progress: &dyn Progress,
    sink: Option<LayerSink>,
) -> Result<Artifact, BuildError> {
    let eo = &opts.engine;
    let engine = match Engine::connect(eo.endpoint.clone()).await {
        Ok(engine) => engine,
        Err(EngineError::Unreachable { endpoint, message }) => return Err(no_engine(plan, endpoint, message)),
        Err(EngineError::Api { endpoint, message }) => return Err(BuildError::Engine { endpoint, message }),
    };
    progress.info(&format!(
        "Docker Engine {} (API {}, {}) at {}",
        engine.version,
        engine.api,
        engine.platform,
        engine.endpoint()
    ));
    if eo.endpoint.is_plain_remote() {
        progress.warning(&format!(
            "{} is reached over plain TCP: the build context, secrets and registry credentials cross the network \
             unencrypted. Set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to use the engine's TLS port.",
            engine.endpoint()
        ));
    }
    let mut buildkit = !eo.classic && engine.offers_buildkit();
    if eo.classic {
        progress.info("DOCKER_BUILDKIT=0: building with the engine's classic builder");
    } else if !buildkit {
        progress.warning(&classic_warning(plan, &format!("the engine (API {}) offers no BuildKit", engine.api)));
    }
    let platforms = platforms_to_build(&engine, opts, buildkit, progress).await?;
    let credentials = credentials(opts, plan, bases, &platforms).await?;
    // BuildKit imports `cache_from` itself, lazily, from the registry (only the layers it reuses); the classic
    // builder reuses only images the engine holds, so they are pulled first.
    if !buildkit {
        pull_cache_from(&engine, &eo.cache_from, &credentials, progress).await;
    }
    let mut ctx = context::ContextSpec::new(&opts.context, &opts.dockerfile)?;
    if let Some(part) = part {
        ctx = ctx.with_dockerfile(&part.dockerfile, part.context);
    }
    tokio::fs::create_dir_all(&opts.work_dir)
        .await
        .map_err(|e| BuildError::io("creating the work directory", &opts.work_dir, e))?;
    let cache = LayerCache::for_build(opts.cache_dir.as_deref(), progress);
    let mut images = Vec::new();
    for platform in &platforms {
        let mut params = Params {
            tags: if part.is_some() { Vec::new() } else { eo.tags.clone() },
            build_args: opts.build_args.clone(),
            labels: opts.labels.clone(),
            target: opts.target.clone(),
            platform: platform.clone(),
            pull: eo.pull,
            no_cache: eo.no_cache,
            network: eo.network.clone(),
            cache_from: eo.cache_from.clone(),
            credentials: credentials.clone(),
        };
        if buildkit && !eo.cache_from.is_empty() {
            // The image then carries its cache metadata (inline), so the next build's `cache_from` can use it.
            params.build_args.entry("BUILDKIT_INLINE_CACHE".into()).or_insert_with(|| "1".into());
        }
        if platforms.len() > 1 {
            progress.info(&format!("building for {}", platform.as_ref().map(Platform::to_string).unwrap_or_default()));
            // Each platform's image is tagged by its own build; the last would win, so none is tagged.
            params.tags.clear();
        }
        let session = match buildkit {
            true => {
                let services = SessionServices { credentials: credentials.clone(), secrets: eo.secrets.clone() };
                let name = opts.context.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                match Session::start(&engine.dialer, &name, services).await {
                    Ok(s) => Some(s),
                    Err(session::SessionError::NotOffered(status)) => {
                        buildkit = false;
                        let why = format!("the engine refused a BuildKit session ({status})");
                        progress.warning(&classic_warning(plan, &why));
                        None
                    }
                    Err(e) => return Err(BuildError::Engine { endpoint: engine.endpoint(), message: e.to_string() }),
                }
            }
            false => None,
        };
        let mode = match &session {
            Some(s) => Mode::BuildKit { session: s.id.clone() },
            None => Mode::Classic,
        };
        let id = build::run(&engine, &mode, &params, ctx.clone(), plan, progress).await?;
        drop(session);
        progress.info(&format!("built {id}"));
        if let Some(tx) = part.and_then(|p| p.built.as_ref()) {
            let _ = tx.send(id.clone());
        }
        let base = resolve_base(opts, plan, bases, platform.as_ref().unwrap_or(&engine.platform), progress).await;
        let export = export::Export {
            work_dir: &opts.work_dir,
            compression: opts.compression,
            cache: cache.as_ref(),
            sink: sink.as_ref(),
        };
        images.push(export::export(&engine, &id, base.as_ref(), &export, progress).await?);
    }
    Ok(match images.len() {
        1 => Artifact::Image(images.remove(0)),
        _ => Artifact::Index(ImageIndex { images, annotations: BTreeMap::new() }),
    })
}

/// The error for a Dockerfile that needs an engine when none answered: at its first RUN.
fn no_engine(plan: &Plan, endpoint: String, cause: String) -> BuildError {
    let run = plan.first_run.clone().unwrap_or(RunSite { line: 1, text: "the build".into() });
    BuildError::NoEngine { file: plan.label.clone(), line: run.line, instruction: run.text, endpoint, cause }
}

fn classic_warning(plan: &Plan, why: &str) -> String {
    let mut text = format!("{why}: building with the classic builder");
    if plan.buildkit_only.is_empty() {
        return text;
    }
    text.push_str(", which cannot run these lines of the Dockerfile:");
    for f in &plan.buildkit_only {
        text.push_str(&format!("\n  {}:{}: {}", plan.label, f.line, f.feature));
    }
    text
}

/// The platforms to build: `None` (the engine's own) when none is asked for; otherwise each one, checked
/// against what the engine can run before anything is built.
async fn platforms_to_build(
    engine: &Engine,
    opts: &BuildOptions,
    buildkit: bool,
    progress: &dyn Progress,
) -> Result<Vec<Option<Platform>>, BuildError> {
    if opts.platforms.is_empty() {
        return Ok(vec![None]);
    }
    let runnable = match buildkit {
        true => engine.buildkit_platforms().await.unwrap_or_default(),
        false => Vec::new(),
    };
    let runnable = if runnable.is_empty() { vec![engine.platform.clone()] } else { runnable };
    let names: Vec<String> = runnable.iter().map(Platform::to_string).collect();
    progress.debug(&format!("the engine can run {}", names.join(", ")));
    let missing: Vec<String> = opts
        .platforms
        .iter()
        .filter(|p| !runnable.iter().any(|r| super::native::same_platform(r, p)))
        .map(Platform::to_string)
        .collect();
    if !missing.is_empty() {
        let can = names;
        return Err(BuildError::Options(format!(
            "input `platforms`: the Docker Engine at {} runs {} only, so it cannot run the RUN steps for {}: build \
             each platform in its own job on a runner of that platform (a matrix with `runs-on: ubuntu-24.04-arm` \
             for linux/arm64), or register QEMU emulation on this runner first (docker/setup-qemu-action)",
            engine.endpoint(),
            can.join(", "),
            missing.join(", ")
        )));
    }
    Ok(opts.platforms.iter().cloned().map(Some).collect())
}

/// Credentials for the registries the build pulls from (its bases, `COPY --from` images, `cache_from`), by
/// host, from the same chain the push uses.
async fn credentials<R: BaseResolver>(
    opts: &BuildOptions,
    plan: &Plan,
    bases: &R,
    platforms: &[Option<Platform>],
) -> Result<BTreeMap<String, Credentials>, BuildError> {
    let mut refs: Vec<String> = opts.engine.cache_from.clone();
    let df = &plan.dockerfile;
    let lexer = crate::dockerfile::shell::Lexer::new(df.escape);
    for p in platforms {
        let p = p.as_ref().unwrap_or(&opts.host_platform);
        let global = global_args(df, opts, p, &opts.host_platform, &mut Default::default()).unwrap_or_default();
        for (i, stage) in df.stages.iter().enumerate().filter(|(i, _)| plan.needed[*i]) {
            if let Ok(base) = lexer.process_word(&stage.base, &global) {
                if super::plan::stage_named(df, i, &base.to_ascii_lowercase()).is_none() {
                    refs.push(base);
                }
            }
            for ins in &stage.instructions {
                if let crate::dockerfile::InstructionKind::Copy(c) = &ins.kind {
                    refs.extend(c.from.iter().filter(|f| super::plan::stage_for_from(df, f).is_none()).cloned());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for r in refs.iter().filter(|r| !r.eq_ignore_ascii_case("scratch")) {
        let Ok(r) = ImageRef::parse(r) else { continue };
        let host = r.name.registry.clone();
        if out.contains_key(&host) {
            continue;
        }
        if let Some(c) = bases.credentials(&host).await? {
            out.insert(host, c);
        }
    }
    Ok(out)
}

/// Pulls the `cache_from` images into the engine so their layers can be reused; a failure is a warning, as for
/// `docker build --cache-from`.
async fn pull_cache_from(
    engine: &Engine,
    refs: &[String],
    credentials: &BTreeMap<String, Credentials>,
    progress: &dyn Progress,
) {
    for r in refs {
        let Ok(parsed) = ImageRef::parse(r) else {
            progress.warning(&format!("cache_from: `{r}` is not an image reference; skipped"));
            continue;
        };
        let creds = credentials.get(&parsed.name.registry).map(|c| bollard::auth::DockerCredentials {
            username: Some(c.username.clone()),
            password: Some(c.password.expose().to_string()),
            serveraddress: Some(parsed.name.registry.clone()),
            ..Default::default()
        });
        let options =
            bollard::query_parameters::CreateImageOptions { from_image: Some(r.clone()), ..Default::default() };
        let mut pull = engine.docker.create_image(Some(options), None, creds);
        let mut failed = None;
        while let Some(item) = pull.next().await {
            if let Err(e) = item {
                failed = Some(client::describe(&e));
                break;
            }
        }
        match failed {
            None => progress.info(&format!("cache_from: pulled {r}")),
            Some(e) => progress.warning(&format!("cache_from: could not pull {r} ({e}); building without its cache")),
        }
    }
}

/// The registry image the target is built on, for matching its layers to the base's blobs. A base that cannot
/// be resolved costs uploads, not the build: every layer is then pushed.
async fn resolve_base<R: BaseResolver>(
    opts: &BuildOptions,
    plan: &Plan,
    bases: &R,
    platform: &Platform,
    progress: &dyn Progress,
) -> Option<Image> {
    let global =
        global_args(&plan.dockerfile, opts, platform, &opts.host_platform, &mut Default::default()).unwrap_or_default();
    let base = root_base(&plan.dockerfile, plan.target, &global)?;
    let r = ImageRef::parse(&base).ok()?;
    match bases.resolve(&r, platform).await {
        Ok(image) => Some(image),
        Err(e) => {
            progress.warning(&format!(
                "could not read the base image {r} ({e}): its layers will be uploaded with the image's own"
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::plan::BuildkitOnly;

    fn plan(text: &str) -> Plan {
        let df = crate::dockerfile::parse(text, "Dockerfile").unwrap();
        let target = df.stages.len() - 1;
        let needed = vec![true; df.stages.len()];
        let (label, first_run, buildkit_only, split) = ("Dockerfile".into(), None, Vec::new(), None);
        Plan { dockerfile: df, label, target, needed, first_run, buildkit_only, split }
    }

    #[test]
    fn the_classic_fallback_names_the_lines_it_cannot_run() {
        let mut p = plan("FROM scratch\n");
        assert_eq!(classic_warning(&p, "no BuildKit"), "no BuildKit: building with the classic builder");
        p.buildkit_only =
            vec![BuildkitOnly { line: 3, feature: "RUN --mount" }, BuildkitOnly { line: 9, feature: "COPY --link" }];
        assert_eq!(
            classic_warning(&p, "no BuildKit"),
            "no BuildKit: building with the classic builder, which cannot run these lines of the Dockerfile:\n  \
             Dockerfile:3: RUN --mount\n  Dockerfile:9: COPY --link"
        );
    }

    #[test]
    fn no_engine_is_reported_at_the_first_run() {
        let mut p = plan("FROM scratch\nRUN make\n");
        p.first_run = Some(RunSite { line: 2, text: "RUN make".into() });
        let e = no_engine(&p, "unix:///var/run/docker.sock".into(), "No such file or directory".into());
        assert_eq!(e.line(), Some(2));
        let text = e.to_string();
        assert!(text.starts_with("Dockerfile:2: `RUN make` needs a container runtime"), "{text}");
        assert!(
            text.contains("unix:///var/run/docker.sock (No such file or directory)") && text.contains("DOCKER_HOST")
        );
    }
}

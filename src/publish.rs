//! The publish pipeline: build an [`Artifact`] natively (bases resolved from registries, their layers downloaded
//! only when the Dockerfile looks inside them), then send the same value to every place asked for: each target
//! registry (one push, many tags) and an OCI layout.
//!
//! Uploads overlap the build ([`push_while`]): each layer of the final image goes to every target as soon as it
//! is written, while later layers still compress; the push that follows the build finds them done (they are
//! neither asked for nor counted twice) and sends the rest (base layers, configs), then the manifests.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use futures_util::{StreamExt, TryStreamExt, stream};
use std::path::{Path, PathBuf};

use crate::builder::{self, BaseResolver, BuildError, BuildOptions, BuilderKind, LayerSink, Plan, SinkItem, native};
use crate::image::{Artifact, Blob, BlobSource, Digest, Image, ImageName, ImageRef, Platform, RawManifest};
use crate::progress::Progress;
use crate::registry::{self, BlobOutcome, Credentials, PushReport, RegistryClient, RegistryError};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("writing the OCI layout at {dir}: {source}")]
    Layout { dir: PathBuf, source: crate::layout::LayoutError },
    #[error("writing the docker archive {}: {source}", path.display())]
    DockerArchive { path: PathBuf, source: crate::docker_archive::DockerArchiveError },
    #[error(transparent)]
    Handoff(#[from] crate::handoff::HandoffError),
}

/// What to build and where it goes.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    pub build: BuildOptions,
    /// Which builder builds it (`auto`: native unless the target needs RUN).
    pub builder: BuilderKind,
    /// Registries and repositories to push to (empty: push nothing).
    pub targets: Vec<ImageName>,
    /// Tag names, each pushed to every target.
    pub tags: Vec<String>,
    /// Also write an OCI image layout here.
    pub layout: Option<PathBuf>,
    /// Also write a `docker load` archive (single-platform builds only).
    pub docker_archive: Option<crate::docker_archive::DockerArchiveOutput>,
    /// Annotations on every image manifest.
    pub annotations: BTreeMap<String, String>,
    /// Annotations on the index (multi-platform builds only).
    pub index_annotations: BTreeMap<String, String>,
    /// `push_by_digest`: push without tags, and leave a hand-off for the merge job of this run.
    pub by_digest: Option<crate::handoff::Scope>,
}

/// What was published.
#[derive(Debug, Clone)]
pub struct Published {
    /// The manifest (or index) the tags point at.
    pub manifest: RawManifest,
    /// The config digest of the (first) image: what `docker images` calls the image ID.
    pub image_id: Digest,
    /// `REGISTRY/REPOSITORY:TAG` for every pushed tag.
    pub references: Vec<String>,
    pub platforms: Vec<Platform>,
    /// Each image's manifest digest with its platform (the image itself for a single-platform push).
    pub manifests: Vec<(Platform, Digest)>,
    pub layout: Option<PathBuf>,
    /// Bytes of every blob and the manifest(s).
    pub size: u64,
    pub uploaded: usize,
    pub mounted: usize,
    pub skipped: usize,
    pub bytes_uploaded: u64,
    pub reports: Vec<PushReport>,
    /// How long each phase took, in order (`prepare`, `build`, `push`; a merge's `read` and `push`). Uploads
    /// overlap the build, so `push` is what was left after it.
    pub phases: Vec<(&'static str, std::time::Duration)>,
}

/// Resolves `FROM` images through the registry client: manifest and config only.
pub struct RegistryBases<'a>(pub &'a RegistryClient);

impl BaseResolver for RegistryBases<'_> {
    async fn resolve(&self, base: &ImageRef, platform: &Platform) -> Result<Image, BuildError> {
        registry::resolve_image(self.0, base, platform).await.map_err(|e| BuildError::base(base, e))
    }

    async fn platforms(&self, base: &ImageRef) -> Result<Vec<Platform>, BuildError> {
        registry::resolve_index(self.0, base).await.map_err(|e| BuildError::base(base, e))
    }

    async fn fetch_blob(&self, blob: &Blob, dest: &Path) -> Result<(), BuildError> {
        let BlobSource::Registry(name) = &blob.source else {
            return Err(BuildError::Options(format!("{} is not a registry blob", blob.descriptor.digest)));
        };
        self.0.fetch_blob_to_file(name, &blob.descriptor, dest).await.map_err(|e| BuildError::base(name, e))?;
        Ok(())
    }

    async fn fetch_url(&self, url: &str, dest: &Path) -> Result<builder::Fetched, BuildError> {
        let fail = |message: String| BuildError::Fetch { url: url.to_string(), message };
        let client = reqwest::Client::builder()
            .user_agent(self.0.options().user_agent.clone())
            .connect_timeout(self.0.options().connect_timeout)
            // A server that stops sending fails the step instead of hanging it.
            .read_timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        native::fetch::fetch_http(&client, url, dest).await.map_err(fail)
    }

    async fn credentials(&self, registry: &str) -> Result<Option<Credentials>, BuildError> {
        let name = ImageName::new(registry, "library/any").map_err(|e| BuildError::base(registry, e))?;
        self.0.resolve_credentials(&name).await.map_err(|e| BuildError::base(registry, e))
    }
}

pub async fn publish(
    client: &RegistryClient,
    req: &PublishRequest,
    progress: &dyn Progress,
) -> Result<Published, PublishError> {
    let bases = RegistryBases(client);
    let mut clock = Phases::start();
    // The builder is chosen once, from the Dockerfile, before any work starts.
    let plan = Plan::read(&req.build)?;
    let choice = builder::choose(&plan, req.builder)?;
    progress.info(&format!("builder: {} ({})", choice.name(), choice.reason));
    check_push(client, &req.targets, progress).await?;
    clock.lap("prepare");
    let (artifact, ahead) = push_while(client, &req.targets, progress, |sink| {
        builder::build_with_sink(&choice, &req.build, &plan, &bases, progress, sink)
    })
    .await?;
    let artifact = with_annotations(artifact, &req.annotations, &req.index_annotations);
    // By digest: no tag, then the hand-off a merge job finds.
    let tags: &[String] = if req.by_digest.is_some() { &[] } else { &req.tags };
    let delivery = Delivery {
        targets: req.targets.clone(),
        tags: tags.to_vec(),
        layout: req.layout.clone(),
        docker_archive: req.docker_archive.clone(),
    };
    clock.lap("build");
    let mut published = deliver(client, &artifact, &delivery, &ahead, progress).await?;
    if let Some(scope) = &req.by_digest {
        for target in &req.targets {
            crate::handoff::leave(client, target, &artifact, scope, progress).await?;
        }
    }
    clock.lap("push");
    published.phases = clock.done();
    Ok(published)
}

/// Times phases one after another.
pub(crate) struct Phases {
    since: std::time::Instant,
    laps: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    pub(crate) fn start() -> Phases {
        Phases { since: std::time::Instant::now(), laps: Vec::new() }
    }

    /// Ends the phase `name` now.
    pub(crate) fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.laps.push((name, now - self.since));
        self.since = now;
    }

    pub(crate) fn done(self) -> Vec<(&'static str, std::time::Duration)> {
        self.laps
    }
}

/// Fails in seconds, before any build, when a target refuses these credentials a push (one upload session
/// opened and cancelled per target).
pub async fn check_push(
    client: &RegistryClient,
    targets: &[ImageName],
    progress: &dyn Progress,
) -> Result<(), PublishError> {
    for target in targets {
        client.check_push(target).await?;
        progress.debug(&format!("{target} accepts pushes with these credentials"));
    }
    Ok(())
}

/// Where a finished image value goes: registries (every tag to every target, by digest when there is no tag),
/// an OCI layout, a docker archive.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    pub targets: Vec<ImageName>,
    pub tags: Vec<String>,
    pub layout: Option<PathBuf>,
    pub docker_archive: Option<crate::docker_archive::DockerArchiveOutput>,
}

/// Sends `artifact` everywhere `delivery` says. `ahead` holds, per target, the blobs already pushed while the
/// image was built ([`push_while`]); it may be empty.
pub async fn deliver(
    client: &RegistryClient,
    artifact: &Artifact,
    delivery: &Delivery,
    ahead: &[BTreeMap<Digest, BlobOutcome>],
    progress: &dyn Progress,
) -> Result<Published, PublishError> {
    let manifest = artifact.manifest();
    let images = artifact.images();
    let image_id = images.first().map(|i| i.config_blob().descriptor.digest).unwrap_or_else(|| manifest.digest.clone());
    // Attestation manifests ride along in an index; they are not platforms.
    let platform_images = images.iter().filter(|i| !i.is_attestation());
    let platforms = platform_images.clone().map(|i| i.index_platform()).collect();
    let manifests = platform_images.map(|i| (i.index_platform(), i.manifest().digest)).collect();
    let size =
        images.iter().flat_map(|i| i.blobs()).map(|b| b.descriptor.size).sum::<u64>() + manifest.bytes.len() as u64;

    let mut published = Published {
        manifest,
        image_id,
        references: Vec::new(),
        platforms,
        manifests,
        layout: None,
        size,
        uploaded: 0,
        mounted: 0,
        skipped: 0,
        bytes_uploaded: 0,
        reports: Vec::new(),
        phases: Vec::new(),
    };
    // Local outputs first: whatever can fail here fails before any manifest or tag is in a registry.
    if let Some(dir) = &delivery.layout {
        let tag = delivery.tags.first().map(String::as_str);
        crate::layout::write_layout(dir, artifact, tag, Some(client))
            .await
            .map_err(|source| PublishError::Layout { dir: dir.clone(), source })?;
        progress.info(&format!(
            "wrote the OCI layout {}{}",
            dir.display(),
            tag.map(|t| format!(" ({t})")).unwrap_or_default()
        ));
        published.layout = Some(dir.clone());
    }
    if let Some(out) = &delivery.docker_archive {
        crate::docker_archive::write_docker_archive(&out.path, artifact, &out.repo_tags, Some(client))
            .await
            .map_err(|source| PublishError::DockerArchive { path: out.path.clone(), source })?;
        progress.info(&format!("wrote the docker archive {}", out.path.display()));
    }
    let none = BTreeMap::new();
    for (i, target) in delivery.targets.iter().enumerate() {
        let done = ahead.get(i).unwrap_or(&none);
        let report = registry::push_after(client, target, artifact, &delivery.tags, done, progress).await?;
        published.uploaded += report.uploaded;
        published.mounted += report.mounted;
        published.skipped += report.skipped;
        published.bytes_uploaded += report.bytes_uploaded;
        published.references.extend(delivery.tags.iter().map(|t| format!("{target}:{t}")));
        published.reports.push(report);
    }
    Ok(published)
}

/// Runs `build` (which sends each layer blob to the sink it is given, as [`native::build_with_sink`] does) while
/// pushing every blob it sends to each of `targets`, the client's `jobs` at a time, each distinct blob once per
/// target. Returns the build's value and, per target (same order), what was done for each blob. The first error
/// of either side ends both (an upload error does not wait for the build to finish); with no targets, the build
/// runs alone.
pub async fn push_while<T, F, Fut>(
    client: &RegistryClient,
    targets: &[ImageName],
    progress: &dyn Progress,
    build: F,
) -> Result<(T, Vec<BTreeMap<Digest, BlobOutcome>>), PublishError>
where
    F: FnOnce(Option<LayerSink>) -> Fut,
    Fut: Future<Output = Result<T, BuildError>>,
{
    if targets.is_empty() {
        return Ok((build(None).await?, Vec::new()));
    }
    let (sink, blobs) = tokio::sync::mpsc::unbounded_channel::<SinkItem>();
    // The sink moves into the build and is dropped when it ends, which ends the stream of blobs below.
    let building = async { build(Some(sink)).await.map_err(PublishError::from) };
    let pushing = async {
        let mut seen = BTreeSet::new();
        let received = stream::unfold(blobs, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
        let jobs = received
            .filter(move |item| {
                std::future::ready(match item {
                    SinkItem::Blob(b) => seen.insert(b.descriptor.digest.clone()),
                    SinkItem::Growing(_) => true,
                })
            })
            .flat_map(|item| stream::iter((0..targets.len()).map(move |i| (i, item.clone()))));
        let results: Vec<Option<(usize, Digest, BlobOutcome)>> = jobs
            .map(|(i, item)| async move {
                match item {
                    SinkItem::Blob(blob) => {
                        let outcome = registry::push_blob_to(client, &targets[i], &blob, progress).await?;
                        Ok::<_, PublishError>(Some((i, blob.descriptor.digest, outcome)))
                    }
                    // A blob streamed as it is written; when the stream fails, the push uploads the finished file.
                    SinkItem::Growing(growing) => {
                        Ok(registry::push_growing_to(client, &targets[i], &growing, progress)
                            .await
                            .map(|(digest, outcome)| (i, digest, outcome)))
                    }
                }
            })
            .buffer_unordered(client.options().jobs)
            .try_collect()
            .await?;
        let mut done = vec![BTreeMap::new(); targets.len()];
        for (i, digest, outcome) in results.into_iter().flatten() {
            // A blob streamed up and then found there by a push of the same blob counts as uploaded.
            let kept = done[i].entry(digest).or_insert(outcome);
            if matches!(outcome, BlobOutcome::Uploaded(_)) {
                *kept = outcome;
            }
        }
        Ok(done)
    };
    tokio::try_join!(building, pushing)
}

/// Manifest annotations go on every image manifest; index annotations on the index, when there is one.
fn with_annotations(
    artifact: Artifact,
    manifest: &BTreeMap<String, String>,
    index: &BTreeMap<String, String>,
) -> Artifact {
    match artifact {
        Artifact::Image(i) if manifest.is_empty() => Artifact::Image(i),
        Artifact::Image(i) => Artifact::Image(i.with_annotations(manifest.clone())),
        Artifact::Index(mut idx) => {
            if !manifest.is_empty() {
                idx.images = idx.images.into_iter().map(|i| i.with_annotations(manifest.clone())).collect();
            }
            idx.annotations.extend(index.clone());
            Artifact::Index(idx)
        }
    }
}

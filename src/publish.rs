//! The publish pipeline: build an [`Artifact`] natively (bases resolved from registries, never downloaded), then
//! send the same value to every place asked for: each target registry (one push, many tags) and an OCI layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::build::{self, BaseResolver, BuildError, BuildOptions};
use crate::image::{Artifact, Blob, BlobSource, Digest, Image, ImageName, ImageRef, Platform, RawManifest};
use crate::progress::Progress;
use crate::registry::{self, PushReport, RegistryClient, RegistryError};

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
}

/// What to build and where it goes.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    pub build: BuildOptions,
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
    pub layout: Option<PathBuf>,
    /// Bytes of every blob and the manifest(s).
    pub size: u64,
    pub uploaded: usize,
    pub mounted: usize,
    pub skipped: usize,
    pub bytes_uploaded: u64,
    pub reports: Vec<PushReport>,
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
}

pub async fn publish(
    client: &RegistryClient,
    req: &PublishRequest,
    progress: &dyn Progress,
) -> Result<Published, PublishError> {
    let artifact = build::build(&req.build, &RegistryBases(client), progress).await?;
    let artifact = with_annotations(artifact, &req.annotations, &req.index_annotations);
    let manifest = artifact.manifest();
    let images = artifact.images();
    let image_id = images.first().map(|i| i.config_blob().descriptor.digest).unwrap_or_else(|| manifest.digest.clone());
    let platforms = images.iter().map(|i| i.platform()).collect();
    let size =
        images.iter().flat_map(|i| i.blobs()).map(|b| b.descriptor.size).sum::<u64>() + manifest.bytes.len() as u64;

    let mut published = Published {
        manifest,
        image_id,
        references: Vec::new(),
        platforms,
        layout: None,
        size,
        uploaded: 0,
        mounted: 0,
        skipped: 0,
        bytes_uploaded: 0,
        reports: Vec::new(),
    };
    for target in &req.targets {
        let report = registry::push(client, target, &artifact, &req.tags, progress).await?;
        published.uploaded += report.uploaded;
        published.mounted += report.mounted;
        published.skipped += report.skipped;
        published.bytes_uploaded += report.bytes_uploaded;
        published.references.extend(req.tags.iter().map(|t| format!("{target}:{t}")));
        published.reports.push(report);
    }
    if let Some(dir) = &req.layout {
        let tag = req.tags.first().map(String::as_str);
        crate::layout::write_layout(dir, &artifact, tag, Some(client))
            .await
            .map_err(|source| PublishError::Layout { dir: dir.clone(), source })?;
        progress.info(&format!(
            "wrote the OCI layout {}{}",
            dir.display(),
            tag.map(|t| format!(" ({t})")).unwrap_or_default()
        ));
        published.layout = Some(dir.clone());
    }
    if let Some(out) = &req.docker_archive {
        crate::docker_archive::write_docker_archive(&out.path, &artifact, &out.repo_tags, Some(client))
            .await
            .map_err(|source| PublishError::DockerArchive { path: out.path.clone(), source })?;
        progress.info(&format!("wrote the docker archive {}", out.path.display()));
    }
    Ok(published)
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

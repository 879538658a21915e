//! One image installed: read from the registry for the wanted platform with its manifest and config kept byte
//! for byte, its layers downloaded concurrently (digest and size checked while streaming, by the registry
//! client), then placed: unpacked into a directory (beside it first, renamed into place only when every entry
//! passed), written as an OCI layout or a docker archive, or loaded into the Docker Engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::{StreamExt as _, TryStreamExt as _};

use super::InstallError;
use crate::builder::engine::Endpoint;
use crate::image::{Artifact, Descriptor, Digest, Image, ImageName, ImageRef, Platform};
use crate::progress::{Progress, human_bytes};
use crate::registry::{RegistryClient, read_image_for};
use crate::unpack::{DirOptions, UnpackError, remove_tree, unpack_into_dir};

/// Where an image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageTarget {
    /// `dir:PATH`: the root filesystem, unpacked.
    Dir(PathBuf),
    /// `oci:PATH`: an OCI image layout.
    Oci(PathBuf),
    /// `docker-archive:FILE`: a tar `docker load` reads.
    DockerArchive(PathBuf),
    /// `docker`: loaded into the engine.
    Docker(Endpoint),
}

impl ImageTarget {
    /// `dir`, `oci`, `docker-archive` or `docker`.
    pub fn kind(&self) -> &'static str {
        match self {
            ImageTarget::Dir(_) => "dir",
            ImageTarget::Oci(_) => "oci",
            ImageTarget::DockerArchive(_) => "docker-archive",
            ImageTarget::Docker(_) => "docker",
        }
    }

    /// The path it names, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ImageTarget::Dir(p) | ImageTarget::Oci(p) | ImageTarget::DockerArchive(p) => Some(p),
            ImageTarget::Docker(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImageRequest {
    pub reference: ImageRef,
    pub target: ImageTarget,
    /// The platform to pick from an index.
    pub platform: Platform,
    /// Whether `platform` was asked for: then a single image of another platform is an error, not a warning.
    pub platform_given: bool,
}

/// What was installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub reference: String,
    /// The manifest's digest, as the registry has it.
    pub digest: Digest,
    /// The config's digest (the image ID `docker images` shows).
    pub image_id: Digest,
    pub platform: Platform,
    pub target: ImageTarget,
    pub layers: usize,
    /// Compressed bytes downloaded.
    pub size: u64,
}

/// Installs one image.
pub async fn install_image(
    client: &RegistryClient,
    request: &ImageRequest,
    progress: &dyn Progress,
) -> Result<Installed, InstallError> {
    let r = &request.reference;
    let shown = r.to_string();
    let image = read_image_for(client, r, &request.platform, request.platform_given)
        .await
        .map_err(|e| InstallError::registry(&shown, e))?;
    if !request.platform_given && image.platform().architecture != request.platform.architecture {
        progress.warning(&format!(
            "{shown} is a {} image, not one for this runner ({}); installing it as asked",
            image.platform(),
            request.platform
        ));
    }
    let manifest = image.manifest();
    let size: u64 = image.layers().iter().map(|l| l.blob.descriptor.size).sum();
    progress.info(&format!(
        "{shown}: {} ({}), {} layers, {} to download",
        manifest.digest,
        image.platform(),
        image.layers().len(),
        human_bytes(size)
    ));
    // Downloads go beside the target (same file system: the layout hard-links them, the rename is atomic).
    let work_parent = match request.target.path() {
        Some(p) => prepare_parent(p).map_err(|e| InstallError::Io { path: p.to_path_buf(), source: e })?,
        None => std::env::temp_dir(),
    };
    let work = tempfile::Builder::new()
        .prefix(".octopush-install-")
        .tempdir_in(&work_parent)
        .map_err(|e| InstallError::Io { path: work_parent.clone(), source: e })?;
    let result = place(client, request, image.clone(), work.path(), progress).await;
    if result.is_err() {
        let _ = remove_tree(work.path());
    }
    result?;
    Ok(Installed {
        reference: shown,
        digest: manifest.digest,
        image_id: image.config_blob().descriptor.digest,
        platform: image.platform(),
        target: request.target.clone(),
        layers: image.layers().len(),
        size,
    })
}

async fn place(
    client: &RegistryClient,
    request: &ImageRequest,
    image: Image,
    work: &Path,
    progress: &dyn Progress,
) -> Result<(), InstallError> {
    let shown = request.reference.to_string();
    let blobs = work.join("blobs");
    std::fs::create_dir_all(&blobs).map_err(|e| InstallError::Io { path: blobs.clone(), source: e })?;
    let files = download_layers(client, &request.reference.name, &image, &blobs)
        .await
        .map_err(|e| InstallError::registry(&shown, e))?;
    let image = image.with_local_blobs(&files);
    match &request.target {
        ImageTarget::Dir(path) => {
            if !is_new_or_empty_dir(path) {
                return Err(InstallError::TargetExists { path: path.clone() });
            }
            let layers: Vec<PathBuf> =
                image.layers().iter().map(|l| files[&l.blob.descriptor.digest].clone()).collect();
            let rootfs = work.join("rootfs");
            std::fs::create_dir(&rootfs).map_err(|e| InstallError::Io { path: rootfs.clone(), source: e })?;
            let (dest, for_error) = (rootfs.clone(), path.clone());
            let unpacked =
                tokio::task::spawn_blocking(move || unpack_into_dir(&layers, &dest, DirOptions::for_this_process()))
                    .await
                    .map_err(|e| InstallError::Io { path: rootfs.clone(), source: std::io::Error::other(e) })?;
            let stats = unpacked.map_err(|source| match source {
                UnpackError::Refused { .. } => {
                    InstallError::Unsafe { reference: shown.clone(), path: for_error, source }
                }
                source => InstallError::Unpack { reference: shown.clone(), path: for_error, source },
            })?;
            let io = |e| InstallError::Io { path: path.clone(), source: e };
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&rootfs, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
            if path.is_dir() {
                std::fs::remove_dir(path).map_err(io)?;
            }
            std::fs::rename(&rootfs, path).map_err(io)?;
            progress.info(&format!(
                "{shown}: unpacked into {} ({} entries, {}, {} whiteouts applied)",
                path.display(),
                stats.entries,
                human_bytes(stats.bytes),
                stats.whiteouts
            ));
        }
        ImageTarget::Oci(path) => {
            let tag = request.reference.tag.as_deref().filter(|_| request.reference.digest.is_none());
            crate::layout::write_layout(path, &Artifact::Image(image), tag, None)
                .await
                .map_err(|source| InstallError::Layout { reference: shown.clone(), source })?;
            progress.info(&format!("{shown}: written as an OCI layout in {}", path.display()));
        }
        ImageTarget::DockerArchive(path) => {
            let tags = repo_tags(&request.reference);
            crate::docker_archive::write_docker_archive(path, &Artifact::Image(image), &tags, None)
                .await
                .map_err(|source| InstallError::Archive { reference: shown.clone(), source })?;
            progress.info(&format!("{shown}: written as a docker archive at {}", path.display()));
        }
        ImageTarget::Docker(endpoint) => {
            let id = super::engine::load(endpoint, &image, &repo_tags(&request.reference), &shown).await?;
            progress.info(&format!("{shown}: loaded into the Docker Engine at {endpoint} as {id}"));
        }
    }
    Ok(())
}

/// Every distinct layer blob of `image` into `dir`, `jobs` at a time, each checked against its digest and size
/// as it streams (a mismatch fails the install and leaves no file).
async fn download_layers(
    client: &RegistryClient,
    name: &ImageName,
    image: &Image,
    dir: &Path,
) -> Result<BTreeMap<Digest, PathBuf>, crate::registry::RegistryError> {
    let unique: BTreeMap<Digest, Descriptor> =
        image.layers().iter().map(|l| (l.blob.descriptor.digest.clone(), l.blob.descriptor.clone())).collect();
    futures_util::stream::iter(unique.into_values())
        .map(|desc| async move {
            let path = dir.join(format!("{}-{}", desc.digest.algorithm(), desc.digest.hex()));
            client.fetch_blob_to_file(name, &desc, &path).await.map(|_| (desc.digest, path))
        })
        .buffer_unordered(client.options().jobs)
        .try_collect()
        .await
}

/// `NAME:TAG` for `docker load` when the reference has a tag (a digest-only reference loads untagged).
fn repo_tags(r: &ImageRef) -> Vec<String> {
    match (&r.tag, &r.digest) {
        (Some(tag), None) => vec![format!("{}:{tag}", r.name)],
        _ => Vec::new(),
    }
}

/// The folder a target goes into, made if missing.
fn prepare_parent(path: &Path) -> std::io::Result<PathBuf> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    Ok(parent.to_path_buf())
}

/// Whether `path` does not exist yet or is an empty directory.
pub fn is_new_or_empty_dir(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        Ok(m) => m.is_dir() && std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none()),
    }
}

//! `install`'s library: images pulled from a registry, verified and safely placed into a directory, an OCI
//! layout, a docker archive or the Docker Engine ([`images`]), and package clients set up for GitHub Packages
//! ([`clients`]). It knows nothing of the environment: the edge (`install_cmd`) hands it validated requests.

pub mod clients;
mod engine;
mod images;

use std::path::PathBuf;

pub use images::{ImageRequest, ImageTarget, Installed, install_image, is_new_or_empty_dir};

use crate::docker_archive::DockerArchiveError;
use crate::layout::LayoutError;
use crate::registry::RegistryError;
use crate::unpack::UnpackError;

/// What to tell a user whose pull was refused: GitHub Packages refuses a workflow token for a package that has
/// not granted the repository access, and a job whose token lacks `packages: read`.
pub const PULL_PERMISSION_HINT: &str = "on GitHub Packages, give the job `permissions: packages: read`, and grant \
    this repository read access under the package's \"Manage Actions access\" settings (packages of another owner \
    or repository refuse the workflow token otherwise); for other registries, check the `username` and `password` \
    inputs or `registry_auth`";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{reference}: {source}")]
    Registry { reference: String, source: RegistryError },
    /// A pull refused for want of access: the error and what to change.
    #[error("{reference}: {source}: {PULL_PERMISSION_HINT}")]
    Denied { reference: String, source: RegistryError },
    #[error("{reference} has no image for {wanted}; it offers {}: set `platform` to one of them", available.join(", "))]
    NoPlatform { reference: String, wanted: String, available: Vec<String> },
    #[error("refused to install {reference} into {}: {source}; nothing was written there", path.display())]
    Unsafe { reference: String, path: PathBuf, source: UnpackError },
    #[error("cannot install {reference} into {}: {source}", path.display())]
    Unpack { reference: String, path: PathBuf, source: UnpackError },
    #[error(
        "{} already exists and is not an empty directory: `dir:` installs into a new folder; remove it first or name \
         another",
        path.display()
    )]
    TargetExists { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("writing {reference} as an OCI layout: {source}")]
    Layout { reference: String, source: LayoutError },
    #[error("writing {reference} as a docker archive: {source}")]
    Archive { reference: String, source: DockerArchiveError },
    #[error("loading {reference} into the Docker Engine at {endpoint}: {message}")]
    Engine { reference: String, endpoint: String, message: String },
}

impl InstallError {
    /// A registry error about `reference`, with the access hint when the registry refused.
    pub fn registry(reference: &str, source: RegistryError) -> InstallError {
        let reference = reference.to_string();
        match source {
            RegistryError::NoMatchingPlatform { wanted, available, .. } => {
                InstallError::NoPlatform { reference, wanted, available }
            }
            RegistryError::Unauthorized { .. }
            | RegistryError::Denied { .. }
            | RegistryError::BadCredentials { .. } => InstallError::Denied { reference, source },
            source => InstallError::Registry { reference, source },
        }
    }
}

//! Package clients set up for GitHub Packages, as a user would by hand, for each owner: npm, Maven, Gradle,
//! NuGet, RubyGems (gem and Bundler) and docker. Files go into one folder (the edge picks one a later step can
//! read: under the runner's temp directory, never the workspace), each readable by its owner only; what a later
//! step needs to find them is returned as environment variables for `GITHUB_ENV`. Where a client can be pointed
//! at a file, the token stays in that file; Gradle and NuGet read credentials from environment variables only
//! (short of moving their whole home folder), so theirs are variables, which the runner masks.

mod render;
pub mod urls;

use std::path::{Path, PathBuf};

use crate::secret::Secret;
pub use urls::PackageUrls;

/// A package client octopush can set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    Npm,
    Maven,
    Gradle,
    Nuget,
    Rubygems,
    Docker,
}

impl Ecosystem {
    pub const ALL: [Ecosystem; 6] =
        [Ecosystem::Npm, Ecosystem::Maven, Ecosystem::Gradle, Ecosystem::Nuget, Ecosystem::Rubygems, Ecosystem::Docker];

    pub fn parse(s: &str) -> Option<Ecosystem> {
        Self::ALL.into_iter().find(|e| e.name().eq_ignore_ascii_case(s.trim()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::Maven => "maven",
            Ecosystem::Gradle => "gradle",
            Ecosystem::Nuget => "nuget",
            Ecosystem::Rubygems => "rubygems",
            Ecosystem::Docker => "docker",
        }
    }
}

/// What to set up.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    pub ecosystems: Vec<Ecosystem>,
    /// GitHub users or organisations whose packages the clients read (the first is the default one).
    pub owners: Vec<String>,
    pub username: String,
    pub token: Secret,
    pub urls: PackageUrls,
    /// Where the files are written, as this process sees it.
    pub dir: PathBuf,
    /// The same folder as later steps see it (they differ when the action runs in a container).
    pub exported_dir: PathBuf,
    /// A docker `config.json` in force now, whose other registries the new one keeps.
    pub docker_config: Option<Vec<u8>>,
    /// `MAVEN_ARGS` in force now, kept after ours.
    pub maven_args: Option<String>,
}

/// One client, set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    pub ecosystem: Ecosystem,
    /// The files written, as later steps see them.
    pub files: Vec<PathBuf>,
    /// The environment variables a later step gets (names only: some hold the token).
    pub variables: Vec<String>,
    /// The registries the client now reads, per owner.
    pub registries: Vec<String>,
}

/// Everything set up: per client, and the variables to export (in order).
#[derive(Debug, Clone, Default)]
pub struct ClientSetup {
    pub configured: Vec<Configured>,
    pub env: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot write the {ecosystem} configuration {}: {source}", path.display())]
    Write { ecosystem: &'static str, path: PathBuf, source: std::io::Error },
    #[error("the docker config to extend is not valid JSON: {0}")]
    DockerConfig(String),
}

/// Writes every requested client's configuration into `request.dir` and returns what a later step needs.
pub fn set_up(request: &ClientRequest) -> Result<ClientSetup, ClientError> {
    let mut setup = ClientSetup::default();
    for &eco in &request.ecosystems {
        let rendered = render::render(eco, request)?;
        let mut files = Vec::new();
        for (rel, content) in &rendered.files {
            let path = request.dir.join(rel);
            write_private(&path, content.as_bytes()).map_err(|source| ClientError::Write {
                ecosystem: eco.name(),
                path: path.clone(),
                source,
            })?;
            files.push(request.exported_dir.join(rel));
        }
        let variables = rendered.env.iter().map(|(k, _)| k.clone()).collect();
        setup.env.extend(rendered.env);
        setup.configured.push(Configured { ecosystem: eco, files, variables, registries: rendered.registries });
    }
    Ok(setup)
}

/// Writes `bytes` to `path` readable by its owner only (folders too), through a temporary name.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent)?;
    }
    let tmp = path.with_extension(format!("tmp{}", rand::random::<u32>()));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

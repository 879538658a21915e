//! Raw inputs become one validated [`Config`] in two phases: [`Config::parse`] checks types, grammar and defaults
//! without touching the file system or the network, then [`Config::check`] looks at the files it names. Every
//! error names the input at fault and how to fix it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use octopush::builder::engine::{Endpoint, EngineOptions, SecretSource};
use octopush::builder::{BuilderKind, Compression};
use octopush::image::{ImageName, ImageRef, Platform};
use octopush::meta::{GitContext, MetaInputs};
use octopush::registry::Credentials;
use octopush::secret::Secret;

use crate::actions::Env;
use crate::cli::RawInputs;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("input `{input}`: {message}")]
    Input { input: &'static str, message: String },
    #[error("{0}")]
    Environment(String),
    /// An `images`, `tags`, `labels`, ... line meta refused; its message names the input and the line.
    #[error(transparent)]
    Meta(#[from] octopush::meta::MetaError),
}

pub(crate) fn bad(input: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Input { input, message: message.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Publish,
    Meta,
    Merge,
    Prune,
    Restore,
    Install,
}

/// Everything a run needs, validated. Nothing below this reads the environment.
#[derive(Debug)]
pub struct Config {
    pub command: CommandKind,
    pub meta: MetaInputs,
    pub git: GitContext,
    /// For the REST API (repository description, license). Masked before anything is printed.
    pub github_token: Option<Secret>,
    pub source_date_epoch: Option<i64>,
    /// Whether the computed OCI labels go on the image (`add_git_labels`).
    pub apply_labels: bool,
    pub publish: PublishConfig,
    /// `command: merge`: the sources as given (empty: this run's hand-offs).
    pub merge_sources: Vec<ImageRef>,
    /// `prune` and `restore`: the package and the rules.
    pub packages: Option<crate::prune_cmd::PackagesConfig>,
    /// `install`: the images and package clients.
    pub install: Option<crate::install_cmd::InstallConfig>,
}

#[derive(Debug)]
pub struct PublishConfig {
    pub targets: Vec<ImageName>,
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub platforms: Vec<Platform>,
    pub push: bool,
    /// Why `push: auto` does not push (a pull request from a fork), for a notice.
    pub push_notice: Option<String>,
    pub output: Option<PathBuf>,
    /// `output: docker-archive:FILE`: a `docker load` tar (one platform only).
    pub docker_archive: Option<PathBuf>,
    /// Credentials by registry host. `username`/`password` go only to GitHub's registries and the `registry`
    /// host, never to another registry named in `images` (that one gets what `registry_auth` gives it).
    pub credentials: BTreeMap<String, Credentials>,
    pub ca_file: Option<PathBuf>,
    pub jobs: usize,
    /// The layer cache directory (`None`: off).
    pub cache_dir: Option<PathBuf>,
    pub compression: Compression,
    /// `builder`: native, engine, or chosen from the Dockerfile.
    pub builder: BuilderKind,
    /// `push_by_digest`: push untagged and leave a hand-off for the merge job.
    pub push_by_digest: bool,
    /// Where the engine is (`DOCKER_HOST`, ...) and the engine builder's inputs; `tags` is filled by the run.
    pub engine: EngineOptions,
    /// Hosts (`host[:port]`, lowercased) that may be reached over plain HTTP besides loopback IP literals and
    /// `localhost` (`insecure_registries`).
    pub insecure_registries: Vec<String>,
    /// `--example`: the embedded example replaces the context and Dockerfile.
    pub example: bool,
}

impl Config {
    /// Phase one: parse and default, no I/O.
    pub fn parse(raw: &RawInputs, env: &Env, payload: Option<serde_json::Value>) -> Result<Config, ConfigError> {
        let command = match raw.get("command").map(str::trim).unwrap_or("publish") {
            "publish" => CommandKind::Publish,
            "meta" => CommandKind::Meta,
            "merge" => CommandKind::Merge,
            "prune" => CommandKind::Prune,
            "restore" => CommandKind::Restore,
            "install" => CommandKind::Install,
            other => {
                return Err(bad(
                    "command",
                    format!(
                        "`{other}` is not a command: use `publish`, `meta`, `merge`, `prune`, `restore` or `install`"
                    ),
                ));
            }
        };
        let git = GitContext::from_vars(&env.github_vars(), payload);

        let registry = raw.get("registry").unwrap_or("ghcr.io").trim().to_string();
        if octopush::image::registry_host(&registry).is_err() {
            return Err(bad(
                "registry",
                format!(
                    "`{registry}` is not a registry: give host[:port], for example `ghcr.io` or `registry.lan:5000`"
                ),
            ));
        }
        let repository = match raw.get("repository") {
            Some(r) => r.trim().to_string(),
            None => env.non_empty("GITHUB_REPOSITORY").map(str::to_string).unwrap_or_default(),
        };
        // `install` reads its `images` lines (`REFERENCE TARGET`) itself; publishing's credential rules then
        // apply to the registries they name.
        let install = match command {
            CommandKind::Install => Some(crate::install_cmd::parse(raw, env)?),
            _ => None,
        };
        let image_lines = match command {
            CommandKind::Install => Vec::new(),
            _ => raw.lines("images"),
        };
        let targets = if let Some(install) = &install {
            install.image_names()
        } else if image_lines.is_empty() {
            if repository.is_empty() && command == CommandKind::Meta {
                // `meta` computes tag names and labels without an image name, as metadata-action does.
                Vec::new()
            } else if repository.is_empty() {
                return Err(bad(
                    "repository",
                    "no repository to publish to: set `repository` (for example `octo-org/app`) or `images`; \
                     outside a workflow GITHUB_REPOSITORY is not set",
                ));
            } else {
                let name = ImageName::new(&registry, &repository).map_err(|e| bad("repository", e.to_string()))?;
                vec![github_packages_path(name, "repository")?]
            }
        } else {
            octopush::meta::image_names(&image_lines)?
                .into_iter()
                .map(|name| github_packages_path(name, "images"))
                .collect::<Result<Vec<_>, _>>()?
        };
        let images: Vec<String> = if image_lines.is_empty() {
            targets.iter().map(ToString::to_string).collect()
        } else {
            image_lines.clone()
        };

        let bool_or =
            |name: &'static str, default: bool| raw.bool(name).map(|v| v.unwrap_or(default)).map_err(|m| bad(name, m));
        let meta = MetaInputs {
            images,
            tags: raw.lines("tags"),
            flavor: raw.lines("flavor"),
            labels: raw.lines("labels"),
            annotations: raw.lines("annotations"),
            tag_with_ref: bool_or("tag_with_ref", false)?,
            tag_with_sha: bool_or("tag_with_sha", false)?,
            pr_head_sha: bool_or("pr_head_sha", false)? || env.var("DOCKER_METADATA_PR_HEAD_SHA") == Some("true"),
        };

        let source_date_epoch = match env.non_empty("SOURCE_DATE_EPOCH") {
            None => None,
            Some(v) => Some(v.trim().parse::<i64>().map_err(|_| {
                ConfigError::Environment(format!(
                    "SOURCE_DATE_EPOCH must be a number of seconds since 1970 (for example `git log -1 --format=%ct`), not `{v}`"
                ))
            })?),
        };

        let github_token =
            raw.get("github_token").or_else(|| env.non_empty("GITHUB_TOKEN")).map(|t| Secret::new(t.trim()));
        let merge_sources = match (command, targets.first()) {
            (CommandKind::Merge, Some(first)) => raw
                .lines("sources")
                .iter()
                .map(|line| {
                    octopush::merge::source_ref(line, first).map_err(|e| {
                        bad(
                            "sources",
                            format!("`{line}` is not an image: {e} (use REPO@sha256:..., a digest or a tag)"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => Vec::new(),
        };
        let publish = parse_publish(raw, env, targets, &git)?;
        let packages = match command {
            CommandKind::Prune | CommandKind::Restore => {
                let has_token = raw.get("github_token").or_else(|| env.non_empty("GITHUB_TOKEN")).is_some();
                Some(crate::prune_cmd::PackagesConfig::parse(raw, command, &git, &publish.targets, has_token)?)
            }
            CommandKind::Publish | CommandKind::Meta | CommandKind::Merge | CommandKind::Install => None,
        };
        Ok(Config {
            merge_sources,
            command,
            meta,
            git,
            github_token,
            source_date_epoch,
            apply_labels: bool_or("add_git_labels", true)?,
            publish,
            packages,
            install,
        })
    }

    /// Phase two: check what the inputs name on disk.
    pub fn check(self) -> Result<Config, ConfigError> {
        if let Some(install) = &self.install {
            install.check()?;
            if let Some(ca) = &self.publish.ca_file {
                if !ca.is_file() {
                    return Err(bad("ca_file", format!("`{}` does not exist or is not a file", ca.display())));
                }
            }
            return Ok(self);
        }
        if !matches!(self.command, CommandKind::Publish | CommandKind::Merge) || self.publish.example {
            return Ok(self);
        }
        let p = &self.publish;
        if self.command == CommandKind::Merge {
            self.check_push_credentials()?;
            return Ok(self);
        }
        if !p.context.is_dir() {
            return Err(bad(
                "path",
                format!(
                    "the build context `{}` is not a directory: set `path` to the folder to build",
                    p.context.display()
                ),
            ));
        }
        if !p.dockerfile.is_file() {
            return Err(bad(
                "dockerfile",
                format!(
                    "no Dockerfile at `{}`: set `dockerfile` to its path, or `path` to the folder that holds it",
                    p.dockerfile.display()
                ),
            ));
        }
        if let Some(ca) = &p.ca_file {
            if !ca.is_file() {
                return Err(bad("ca_file", format!("`{}` does not exist or is not a file", ca.display())));
            }
        }
        for (id, source) in &p.engine.secrets {
            if let SecretSource::File(path) = source {
                if !path.is_file() {
                    return Err(bad(
                        "secret_files",
                        format!("the file for secret `{id}`, `{}`, does not exist or is not a file", path.display()),
                    ));
                }
            }
        }
        if p.push {
            self.check_push_credentials()?;
        }
        if p.push_by_digest && !p.push && p.push_notice.is_none() {
            return Err(bad("push_by_digest", "`push_by_digest: true` pushes, so it cannot go with `push: false`"));
        }
        if !p.push && p.push_notice.is_none() && p.output.is_none() && p.docker_archive.is_none() {
            return Err(bad(
                "push",
                "`push: false` with no `output` would build and throw the image away: set `output: oci:DIR` to keep it",
            ));
        }
        Ok(self)
    }

    /// GitHub's registries always need a token to push.
    fn check_push_credentials(&self) -> Result<(), ConfigError> {
        let p = &self.publish;
        match p.targets.iter().find(|t| is_github_registry(&t.registry) && !p.credentials.contains_key(&t.registry)) {
            None => Ok(()),
            Some(gh) => Err(bad(
                "password",
                format!(
                    "pushing to {} needs a token and none was given: pass `password: ${{{{ secrets.GITHUB_TOKEN }}}}` \
                     (the default when the step runs in a workflow) and give the job `permissions: packages: write`",
                    gh.registry
                ),
            )),
        }
    }
}

/// `push: auto|true|false`. `auto` (the default) pushes, except on a pull request from a fork: such runs get no
/// secrets and a read-only token, so the image is built (which checks the Dockerfile) and not pushed, with a
/// notice saying why. An explicit `true` there cannot work, and is refused up front.
fn parse_push(raw: &RawInputs, git: &GitContext) -> Result<(bool, Option<String>), ConfigError> {
    let fork = git.is_fork_pull_request();
    let value = raw.get("push").map(|v| v.trim().to_ascii_lowercase());
    match value.as_deref() {
        None | Some("auto") if fork => Ok((
            false,
            Some(
                "This pull request comes from a fork: its run has no secrets and a read-only token, so the image is \
                 built but not pushed (`push: auto`)."
                    .into(),
            ),
        )),
        None | Some("auto") => Ok((true, None)),
        Some("true") if fork => Err(bad(
            "push",
            "`push: true` cannot work on a pull request from a fork: GitHub gives such runs no secrets and a \
             read-only token. Leave `push` unset (`auto` builds without pushing there), or publish from `push` \
             events after the merge",
        )),
        Some("true") => Ok((true, None)),
        Some("false") => Ok((false, None)),
        Some(other) => Err(bad("push", format!("`{other}` is not `auto`, `true` or `false`"))),
    }
}

/// The docker `config.json` other registries' credentials come from: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`. The edge reads it first thing, to mask its secrets before any other output.
pub fn docker_config_path(env: &Env) -> Option<PathBuf> {
    env.non_empty("DOCKER_CONFIG")
        .map(|d| Path::new(d.trim()).join("config.json"))
        .or_else(|| env.non_empty("HOME").map(|h| Path::new(h).join(".docker").join("config.json")))
}

/// A `registry_auth` line's raw parts, `HOST=USERNAME:PASSWORD`, unchecked: the edge masks the password with it
/// before anything is printed, and [`Config::parse`] checks them.
pub fn split_registry_auth(line: &str) -> Option<(&str, &str, &str)> {
    let (host, cred) = line.split_once('=')?;
    let (user, pass) = cred.split_once(':')?;
    Some((host, user, pass))
}

/// A shell variable name, as `ARG` declares one and `$NAME` refers to it: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_arg_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_github_registry(host: &str) -> bool {
    host == "ghcr.io" || host == "docker.pkg.github.com"
}

/// docker.pkg.github.com takes only `OWNER/REPO/IMAGE`; other registries any repository path.
fn github_packages_path(name: ImageName, input: &'static str) -> Result<ImageName, ConfigError> {
    if name.registry == "docker.pkg.github.com" && name.repository.split('/').count() != 3 {
        return Err(bad(
            input,
            format!(
                "docker.pkg.github.com needs three path parts, OWNER/REPO/IMAGE (for example `{}/app`), not `{}`",
                name.repository, name.repository
            ),
        ));
    }
    Ok(name)
}

mod publish;
pub(crate) use publish::engine_endpoint;
use publish::parse_publish;

#[cfg(test)]
mod tests;

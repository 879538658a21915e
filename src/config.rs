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

fn parse_publish(
    raw: &RawInputs,
    env: &Env,
    targets: Vec<ImageName>,
    git: &GitContext,
) -> Result<PublishConfig, ConfigError> {
    let workspace = env.non_empty("GITHUB_WORKSPACE").map(PathBuf::from);
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        match (&workspace, p.is_absolute()) {
            (Some(ws), false) => ws.join(p),
            _ => p.to_path_buf(),
        }
    };
    let context = resolve(raw.get("path").unwrap_or("."));
    let dockerfile = match raw.get("dockerfile") {
        Some(d) => resolve(d.trim()),
        None => context.join("Dockerfile"),
    };
    let mut build_args = BTreeMap::new();
    for entry in raw.list("build_args") {
        match entry.split_once('=') {
            Some((k, v)) if is_arg_name(k.trim()) => {
                build_args.insert(k.trim().to_string(), v.to_string());
            }
            Some((k, _)) if !k.trim().is_empty() => {
                return Err(bad(
                    "build_args",
                    format!(
                        "`{}` is not a build argument name: use letters, digits and `_`, not starting with a digit, \
                         as the Dockerfile's `ARG` names it (`$NAME` could not refer to it otherwise)",
                        k.trim()
                    ),
                ));
            }
            _ => return Err(bad("build_args", format!("`{entry}` is not `NAME=value`"))),
        }
    }
    let platforms = raw
        .list("platforms")
        .iter()
        .map(|p| {
            Platform::parse(p).ok_or_else(|| {
                bad("platforms", format!("`{p}` is not a platform: use `os/arch[/variant]`, e.g. `linux/arm64`"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (push, push_notice) = parse_push(raw, git)?;
    let (mut output, mut docker_archive) = (None, None);
    if let Some(o) = raw.get("output").map(str::trim) {
        match (o.strip_prefix("oci:"), o.strip_prefix("docker-archive:")) {
            (Some(dir), _) if !dir.is_empty() => output = Some(resolve(dir)),
            (_, Some(file)) if !file.is_empty() => docker_archive = Some(resolve(file)),
            _ => {
                return Err(bad(
                    "output",
                    format!(
                        "`{o}` is not a supported output: use `oci:DIR` (an OCI image layout) or \
                         `docker-archive:FILE` (a tar for `docker load`)"
                    ),
                ));
            }
        }
    }
    if docker_archive.is_some() && platforms.len() > 1 {
        return Err(bad(
            "output",
            format!(
                "a docker archive holds one image, but `platforms` asks for {}: build one platform, or use \
                 `output: oci:DIR`, which holds them all",
                platforms.len()
            ),
        ));
    }
    let password = raw.get("password").or_else(|| env.non_empty("GITHUB_TOKEN")).map(|p| p.trim().to_string());
    let username = raw.get("username").or_else(|| env.non_empty("GITHUB_ACTOR")).map(|u| u.trim().to_string());
    let default_credentials = match (username, password) {
        (Some(u), Some(p)) => {
            Some(Credentials::new(u, Secret::new(p)).from_source("the `username` and `password` inputs"))
        }
        (None, Some(_)) => {
            return Err(bad(
                "username",
                "a password was given but no user name: set `username` (for ghcr.io, your GitHub user)",
            ));
        }
        (Some(_), None) | (None, None) => None,
    };
    let mut credentials = BTreeMap::new();
    if let Some(creds) = default_credentials {
        let registry_host = raw.get("registry").map(|r| r.trim().to_ascii_lowercase());
        for t in &targets {
            if is_github_registry(&t.registry) || registry_host.as_deref() == Some(t.registry.as_str()) {
                credentials.insert(t.registry.clone(), creds.clone());
            }
        }
    }
    for line in raw.lines("registry_auth") {
        let parsed = split_registry_auth(&line).and_then(|(host, user, pass)| {
            let host = host.trim().to_ascii_lowercase();
            (!host.is_empty() && !user.trim().is_empty() && !pass.is_empty()).then(|| {
                let source = format!("the `registry_auth` line for {host}");
                (host, Credentials::new(user.trim(), Secret::new(pass.trim())).from_source(source))
            })
        });
        match parsed {
            Some((host, creds)) => {
                credentials.insert(host, creds);
            }
            // The line holds a secret: name its host only.
            None => {
                let host = line.split_once('=').map(|(h, _)| h.trim()).unwrap_or("?");
                return Err(bad("registry_auth", format!("the line for `{host}` is not `HOST=USERNAME:PASSWORD`")));
            }
        }
    }
    let jobs = match raw.get("jobs") {
        None => 4,
        Some(j) => j
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| bad("jobs", format!("`{j}` is not a number from 1 to 64")))?,
    };
    let cache_dir = match raw.get("cache_dir").map(str::trim) {
        Some("false") => None,
        Some(dir) => Some(resolve(dir)),
        None => env
            .non_empty("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| env.non_empty("HOME").map(|h| Path::new(h).join(".cache")))
            .filter(|d| d.is_absolute())
            .map(|d| d.join("octopush")),
    };
    let compression = match raw.get("compression").map(str::trim) {
        None => Compression::default(),
        Some(c) => Compression::parse(&c.to_ascii_lowercase()).ok_or_else(|| {
            bad("compression", format!("`{c}` is not a layer compression: use {}", Compression::NAMES.join(" or ")))
        })?,
    };
    let builder = match raw.get("builder").map(str::trim) {
        None => BuilderKind::Auto,
        Some(b) => BuilderKind::parse(&b.to_ascii_lowercase())
            .ok_or_else(|| bad("builder", format!("`{b}` is not a builder: use {}", BuilderKind::NAMES.join(", "))))?,
    };
    let engine = parse_engine(raw, env, &resolve)?;
    let push_by_digest = raw.bool("push_by_digest").map_err(|m| bad("push_by_digest", m))?.unwrap_or(false);
    let insecure_registries = raw
        .lines("insecure_registries")
        .iter()
        .map(|line| {
            octopush::image::registry_host(line).map_err(|_| {
                bad(
                    "insecure_registries",
                    format!(
                        "`{line}` is not a registry host: give one `host[:port]` per line, e.g. `registry.lan:5000`"
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PublishConfig {
        push_by_digest,
        targets,
        context,
        dockerfile,
        target: raw.get("target").map(|t| t.trim().to_string()),
        build_args,
        platforms,
        push,
        push_notice,
        output,
        docker_archive,
        credentials,
        ca_file: raw.get("ca_file").map(|c| resolve(c.trim())),
        jobs,
        cache_dir,
        compression,
        builder,
        engine,
        insecure_registries,
        example: raw.example,
    })
}

/// The engine builder's inputs, and the engine's address as the docker CLI reads it from the environment.
fn parse_engine(raw: &RawInputs, env: &Env, resolve: &dyn Fn(&str) -> PathBuf) -> Result<EngineOptions, ConfigError> {
    let endpoint = engine_endpoint(env)?;
    let flag = |name: &'static str| raw.bool(name).map(|v| v.unwrap_or(false)).map_err(|m| bad(name, m));
    let network = match raw.get("network").map(str::trim) {
        None => None,
        Some(n) if n.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) => Some(n.to_string()),
        Some(n) => return Err(bad("network", format!("`{n}` is not a network name: use `default`, `none` or `host`"))),
    };
    let mut secrets = BTreeMap::new();
    let mut add = |input: &'static str, id: &str, source: SecretSource| {
        let id = id.trim();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            return Err(bad(input, format!("`{id}` is not a secret id: use letters, digits, `_`, `.` and `-`")));
        }
        if secrets.insert(id.to_string(), source).is_some() {
            return Err(bad(input, format!("the secret `{id}` is given twice (in `secrets` or `secret_files`)")));
        }
        Ok(())
    };
    for line in raw.lines("secrets") {
        // The line holds the value: an error names the id only.
        match line.split_once('=') {
            Some((id, value)) => add("secrets", id, SecretSource::Value(Secret::new(value)))?,
            None => return Err(bad("secrets", "each line must be `ID=value` (a line without `=` was given)")),
        }
    }
    for line in raw.lines("secret_files") {
        match line.split_once('=') {
            Some((id, path)) if !path.trim().is_empty() => {
                add("secret_files", id, SecretSource::File(resolve(path.trim())))?
            }
            _ => return Err(bad("secret_files", format!("`{line}` is not `ID=PATH`"))),
        }
    }
    let mut cache_from = raw.list("cache_from");
    cache_from.extend(raw.list("cache_froms"));
    Ok(EngineOptions {
        endpoint,
        pull: flag("pull")? || flag("always_pull")?,
        no_cache: flag("no_cache")?,
        network,
        cache_from,
        secrets,
        classic: env.var("DOCKER_BUILDKIT").map(str::trim).is_some_and(|v| v == "0" || v.eq_ignore_ascii_case("false")),
        tags: Vec::new(),
    })
}

/// The engine's address, as the docker CLI reads it from the environment (`DOCKER_HOST`, `DOCKER_TLS_VERIFY`,
/// `DOCKER_CERT_PATH`).
pub(crate) fn engine_endpoint(env: &Env) -> Result<Endpoint, ConfigError> {
    Endpoint::from_vars(
        env.var("DOCKER_HOST"),
        env.var("DOCKER_TLS_VERIFY"),
        env.var("DOCKER_CERT_PATH"),
        env.non_empty("HOME"),
    )
    .map_err(|e| ConfigError::Environment(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    fn parse(raw: &[(&'static str, &str)], vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::parse(&RawInputs::from_pairs(raw), &env(vars), None)
    }

    #[test]
    fn defaults_publish_the_workflow_repository_to_ghcr_lowercased() {
        let c = parse(
            &[],
            &[("GITHUB_REPOSITORY", "Octo-Org/App"), ("GITHUB_ACTOR", "octocat"), ("GITHUB_TOKEN", "t0ken")],
        )
        .unwrap();
        assert_eq!(c.command, CommandKind::Publish);
        assert_eq!(c.publish.targets[0].to_string(), "ghcr.io/octo-org/app");
        assert_eq!(c.meta.images, vec!["ghcr.io/octo-org/app"]);
        assert!(c.publish.push);
        let creds = &c.publish.credentials["ghcr.io"];
        assert_eq!((creds.username.as_str(), creds.password.expose()), ("octocat", "t0ken"));
    }

    #[test]
    fn errors_name_the_input_and_the_fix() {
        let e = parse(&[("repository", "a b")], &[]).unwrap_err().to_string();
        assert!(e.starts_with("input `repository`:"), "{e}");
        let e =
            parse(&[("registry", "docker.pkg.github.com"), ("repository", "octo/app")], &[]).unwrap_err().to_string();
        assert!(e.contains("OWNER/REPO/IMAGE"), "{e}");
        let e = parse(&[("repository", "a/b"), ("build_args", "NOVALUE")], &[]).unwrap_err().to_string();
        assert!(e.contains("`build_args`") && e.contains("NAME=value"), "{e}");
        // Issue 13, finding 7: names no `$NAME` could refer to were accepted.
        for (args, name) in [("1BAD=x", "`1BAD`"), ("A B=x", "`A B`"), ("OK=1\nA-B=2", "`A-B`"), ("É=1", "`É`")] {
            let e = parse(&[("repository", "a/b"), ("build_args", args)], &[]).unwrap_err().to_string();
            assert!(
                e.starts_with("input `build_args`:") && e.contains(name) && e.contains("not starting with a digit")
            );
        }
        let c = parse(&[("repository", "a/b"), ("build_args", "_A1=x,b_2=y=z")], &[]).unwrap();
        assert_eq!(c.publish.build_args.get("b_2").map(String::as_str), Some("y=z"));
        let e = parse(&[("repository", "a/b"), ("platforms", "linux")], &[]).unwrap_err().to_string();
        assert!(e.contains("os/arch"), "{e}");
        let e = parse(&[("repository", "a/b"), ("output", "tar:x")], &[]).unwrap_err().to_string();
        assert!(e.contains("oci:DIR"), "{e}");
        let e = parse(&[("command", "deploy"), ("repository", "a/b")], &[]).unwrap_err().to_string();
        assert!(e.contains("`publish`, `meta`, `merge`, `prune`, `restore` or `install`"), "{e}");
        let e = parse(&[], &[]).unwrap_err().to_string();
        assert!(e.contains("set `repository`"), "{e}");
        let e = parse(&[("repository", "a/b")], &[("SOURCE_DATE_EPOCH", "yesterday")]).unwrap_err().to_string();
        assert!(e.contains("SOURCE_DATE_EPOCH"), "{e}");
        let e = parse(&[("repository", "a/b"), ("password", "p")], &[]).unwrap_err().to_string();
        assert!(e.contains("`username`"), "{e}");
    }

    #[test]
    fn default_credentials_go_only_to_github_and_the_registry_host() {
        let vars = [("GITHUB_ACTOR", "octocat"), ("GITHUB_TOKEN", "t0ken")];
        let c = parse(
            &[("images", "ghcr.io/o/a\nquay.io/o/a\n127.0.0.1:5000/o/a"), ("registry_auth", "quay.io=robot:qu4y-p4ss")],
            &vars,
        )
        .unwrap();
        let hosts: Vec<&str> = c.publish.credentials.keys().map(String::as_str).collect();
        assert_eq!(hosts, vec!["ghcr.io", "quay.io"], "no workflow token for 127.0.0.1:5000");
        assert_eq!(c.publish.credentials["quay.io"].username, "robot");
        assert_eq!(c.publish.credentials["quay.io"].password.expose(), "qu4y-p4ss");
        // Where each came from is what a rejection tells the user to check.
        assert_eq!(c.publish.credentials["quay.io"].source, "the `registry_auth` line for quay.io");
        assert_eq!(c.publish.credentials["ghcr.io"].source, "the `username` and `password` inputs");
        let c = parse(&[("registry", "127.0.0.1:5000"), ("repository", "o/a")], &vars).unwrap();
        assert_eq!(c.publish.credentials["127.0.0.1:5000"].username, "octocat", "the `registry` host gets them");
        let e =
            parse(&[("repository", "o/a"), ("registry_auth", "quay.io=robot-without-password")], &vars).unwrap_err();
        assert!(e.to_string().contains("`quay.io` is not `HOST=USERNAME:PASSWORD`"), "{e}");
        assert!(!e.to_string().contains("robot-without-password"));
    }

    #[test]
    fn images_lines_split_into_registries_and_honour_enable() {
        let c = parse(
            &[(
                "images",
                "ghcr.io/Octo/App\nname=127.0.0.1:5000/x/y,enable=true\nname=docker.io/z/w,enable=false\nbusybox",
            )],
            &[],
        )
        .unwrap();
        let t: Vec<String> = c.publish.targets.iter().map(ToString::to_string).collect();
        assert_eq!(t, vec!["ghcr.io/octo/app", "127.0.0.1:5000/x/y", "docker.io/library/busybox"]);
    }

    #[test]
    fn output_takes_a_docker_archive_for_one_platform_only() {
        let ws = [("GITHUB_WORKSPACE", "/ws")];
        let c = parse(&[("repository", "a/b"), ("output", "docker-archive:out/image.tar")], &ws).unwrap();
        assert_eq!(c.publish.docker_archive, Some(PathBuf::from("/ws/out/image.tar")));
        assert_eq!(c.publish.output, None);
        let c =
            parse(&[("repository", "a/b"), ("output", "docker-archive:/abs.tar"), ("platforms", "linux/arm64")], &ws)
                .unwrap();
        assert_eq!(c.publish.docker_archive, Some(PathBuf::from("/abs.tar")));
        let e = parse(
            &[("repository", "a/b"), ("output", "docker-archive:x.tar"), ("platforms", "linux/amd64,linux/arm64")],
            &ws,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("input `output`:") && e.contains("`platforms`") && e.contains("oci:DIR"), "{e}");
        let e = parse(&[("repository", "a/b"), ("output", "docker-archive:")], &ws).unwrap_err().to_string();
        assert!(e.contains("docker-archive:FILE"), "{e}");
    }

    #[test]
    fn compression_is_gzip_or_zstd() {
        assert_eq!(parse(&[("repository", "a/b")], &[]).unwrap().publish.compression, Compression::Gzip);
        let zstd = parse(&[("repository", "a/b"), ("compression", " ZSTD ")], &[]).unwrap();
        assert_eq!(zstd.publish.compression, Compression::Zstd);
        let e = parse(&[("repository", "a/b"), ("compression", "xz")], &[]).unwrap_err().to_string();
        assert!(e.contains("`compression`") && e.contains("`xz`") && e.contains("gzip or zstd"), "{e}");
    }

    #[test]
    fn insecure_registries_are_hosts_one_per_line() {
        let c = parse(&[("repository", "a/b"), ("insecure_registries", "Registry.LAN:5000\nhttp://10.0.0.7/\n")], &[])
            .unwrap();
        assert_eq!(c.publish.insecure_registries, vec!["registry.lan:5000", "10.0.0.7"]);
        assert!(parse(&[("repository", "a/b")], &[]).unwrap().publish.insecure_registries.is_empty());
        let e = parse(&[("repository", "a/b"), ("insecure_registries", "registry.lan:port")], &[]).unwrap_err();
        let m = e.to_string();
        assert!(m.starts_with("input `insecure_registries`:") && m.contains("`registry.lan:port`"), "{m}");
        assert!(m.contains("host[:port]"), "{m}");
    }

    #[test]
    fn check_reports_missing_dockerfile_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().to_str().unwrap();
        let e = parse(&[("repository", "a/b"), ("path", "nope")], &[("GITHUB_WORKSPACE", ws)])
            .unwrap()
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("`path`"), "{e}");
        let e = parse(&[("repository", "a/b")], &[("GITHUB_WORKSPACE", ws)]).unwrap().check().unwrap_err();
        assert!(e.to_string().contains("no Dockerfile at"), "{e}");
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let c = parse(&[("repository", "a/b"), ("username", "u"), ("password", "p")], &[("GITHUB_WORKSPACE", ws)])
            .unwrap()
            .check()
            .unwrap();
        assert_eq!(c.publish.dockerfile, dir.path().join("Dockerfile"));
        let e = parse(&[("repository", "a/b"), ("push", "false")], &[("GITHUB_WORKSPACE", ws)])
            .unwrap()
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("oci:DIR"), "{e}");
        let e = parse(&[("repository", "a/b"), ("username", "u")], &[("GITHUB_WORKSPACE", ws)])
            .unwrap()
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("input `password`") && e.to_string().contains("packages: write"), "{e}");
    }
}

//! One run of the action or the CLI: collect inputs, mask secrets, validate, compute the metadata, then publish
//! or just report it; outputs and the summary are written here, at the edge.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use chrono::Utc;
use clap::ArgMatches;

use octopush::meta::{self, Meta, RepoData};
use octopush::publish::{self, PublishRequest, Published};
use octopush::registry::{ClientOptions, DockerConfig, RegistryClient};

use crate::actions::{Env, Log, files};
use crate::cli::RawInputs;
use crate::config::{self, CommandKind, Config, ConfigError, PublishConfig};
use crate::summary;

/// The example `octopush publish --example` builds, embedded so it works from any directory.
const EXAMPLE: &[(&str, &str)] = &[
    ("Dockerfile", include_str!("../examples/hello/Dockerfile")),
    (".dockerignore", include_str!("../examples/hello/.dockerignore")),
    ("README.md", include_str!("../examples/hello/README.md")),
    ("hello.txt", include_str!("../examples/hello/hello.txt")),
    ("site/index.html", include_str!("../examples/hello/site/index.html")),
];

pub async fn run(env: &Env, matches: &ArgMatches, log: &Log) -> anyhow::Result<()> {
    let (subcommand, sub_matches) = match matches.subcommand() {
        Some((name, m)) => (Some(name), Some(m)),
        None => (None, None),
    };
    let root_command = matches.get_one::<String>("command").map(|c| c.trim().to_string());
    if subcommand.is_none() && !env.in_actions() && root_command.is_none() {
        anyhow::bail!(
            "no command given: run `octopush publish`, `meta`, `merge`, `prune`, `restore` or `install` (`octopush \
             --help` lists them)"
        );
    }
    let mut raw = RawInputs::collect(sub_matches, env);
    if RawInputs::password_from_stdin(sub_matches) {
        let mut password = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut password)
            .context("reading the password from standard input (--password-stdin)")?;
        let password = password.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            return Err(
                ConfigError::Input { input: "password", message: "--password-stdin read nothing".into() }.into()
            );
        }
        raw.set("password", password);
    }
    // Outside a workflow, the commit is the local checkout's.
    let context = std::path::PathBuf::from(raw.get("path").unwrap_or(".").trim());
    let filled = crate::local_git::fill_from_checkout(env.clone(), &context);
    let env = &filled;
    // Secrets are masked before anything else is printed.
    for secret in [raw.get("password"), raw.get("github_token"), env.non_empty("GITHUB_TOKEN")].into_iter().flatten() {
        log.add_secret(secret);
    }
    for line in raw.lines("registry_auth") {
        if let Some((_, _, password)) = config::split_registry_auth(&line) {
            log.add_secret(password.trim());
        }
    }
    // Build secrets: the value after the first `=` of each line.
    for line in raw.lines("secrets") {
        if let Some((_, value)) = line.split_once('=') {
            log.add_secret(value);
        }
    }
    match (subcommand, root_command.as_deref()) {
        (Some(name), Some(other)) if name != other => {
            return Err(ConfigError::Input {
                input: "command",
                message: format!("`--command {other}` and the subcommand `{name}` disagree: give one of them"),
            }
            .into());
        }
        (Some(name), _) | (None, Some(name)) => raw.set("command", name),
        (None, None) => {}
    }
    // The docker config's secrets too, before any other line (issue 13, finding 8); `meta` never reads it.
    let docker_config = match raw.get("command").map(str::trim) {
        Some("meta") => None,
        _ => config::docker_config_path(env).and_then(|path| load_docker_config(&path, log)),
    };
    let example_dir = if raw.example { Some(prepare_example(&mut raw, env)?) } else { None };

    let payload = env.event_payload().map_err(ConfigError::Environment)?;
    let mut config = Config::parse(&raw, env, payload)?.check()?;
    if let Some(dir) = &example_dir {
        config.publish.context = dir.path().to_path_buf();
        config.publish.dockerfile = dir.path().join("Dockerfile");
    }

    match config.command {
        CommandKind::Prune | CommandKind::Restore => {
            crate::prune_cmd::run(env, &config, docker_config.as_ref(), log).await
        }
        CommandKind::Install => crate::install_cmd::run(env, &config, docker_config.as_ref(), log).await,
        CommandKind::Meta | CommandKind::Publish | CommandKind::Merge => {
            meta_or_publish(env, &config, docker_config.as_ref(), log).await
        }
    }
}

/// `meta`, `publish` and `merge`: compute the tags and labels, then build (or merge) and push, or only report
/// them.
async fn meta_or_publish(
    env: &Env,
    config: &Config,
    docker_config: Option<&DockerConfig>,
    log: &Log,
) -> anyhow::Result<()> {
    let repo = repository_data(config, log).await;
    // `created` follows the commit (reproducible); `{{date}}` the run, unless SOURCE_DATE_EPOCH pins both.
    let now = Utc::now();
    let clock = meta::created_time(config.source_date_epoch, &config.git, now);
    let date = meta::date_time(config.source_date_epoch, now);
    let meta =
        meta::compute_with_date(&config.meta, &config.git, clock, date, &repo).context("computing tags and labels")?;
    for notice in &meta.notices {
        log.notice(notice);
    }
    if let (CommandKind::Publish, Some(notice)) = (config.command, &config.publish.push_notice) {
        log.notice(notice);
    }
    for tag in &meta.tag_names {
        log.debug(&format!("tag: {tag}"));
    }

    match config.command {
        CommandKind::Meta => {
            write_outputs(env, &meta_outputs(&meta))?;
            log.line(&format!("version: {}", meta.version.as_deref().unwrap_or("")));
            for t in &meta.tags {
                log.line(t);
            }
            Ok(())
        }
        CommandKind::Publish | CommandKind::Merge => {
            // What the step must write after the push is checked before it (issue 13, finding 3).
            if let Some(file) = env.output_file() {
                files::check_writable("GITHUB_OUTPUT", &file)?;
            }
            if let Some(file) = env.summary_file() {
                files::check_writable("GITHUB_STEP_SUMMARY", &file)?;
            }
            let started = Instant::now();
            let published = match config.command {
                CommandKind::Merge => merge_images(config, &meta, env, docker_config, log).await?,
                _ => {
                    let workspace = env.non_empty("GITHUB_WORKSPACE");
                    let scope =
                        (config.publish.push_by_digest && config.publish.push).then(|| handoff_scope(config, env));
                    publish_image(config, &meta, clock.timestamp(), workspace, scope, docker_config, log).await?
                }
            };
            let elapsed = started.elapsed();
            let mut outputs = meta_outputs(&meta);
            outputs.extend(publish_outputs(&published));
            write_outputs(env, &outputs)?;
            if let Some(file) = env.summary_file() {
                files::append_summary(&file, &log.redact(&summary::markdown(&published, &meta, elapsed)))?;
            }
            log.line(&summary::one_line(&published, elapsed));
            Ok(())
        }
        // `run` sends these to prune_cmd before any metadata is computed; were one to get here, it is that.
        CommandKind::Prune | CommandKind::Restore => crate::prune_cmd::run(env, config, docker_config, log).await,
        CommandKind::Install => crate::install_cmd::run(env, config, docker_config, log).await,
    }
}

/// The run a `push_by_digest` hand-off belongs to and a merge looks for: `GITHUB_RUN_ID`, `GITHUB_RUN_ATTEMPT`
/// and the commit (outside a workflow, `local` and `1`).
fn handoff_scope(config: &Config, env: &Env) -> octopush::handoff::Scope {
    octopush::handoff::Scope {
        run_id: env.non_empty("GITHUB_RUN_ID").unwrap_or("local").trim().to_string(),
        attempt: env.non_empty("GITHUB_RUN_ATTEMPT").unwrap_or("1").trim().to_string(),
        sha: config.git.sha.clone(),
    }
}

async fn merge_images(
    config: &Config,
    meta: &Meta,
    env: &Env,
    docker_config: Option<&DockerConfig>,
    log: &Log,
) -> anyhow::Result<Published> {
    let client = registry_client(&config.publish, docker_config, log)?;
    let request = octopush::merge::MergeRequest {
        sources: config.merge_sources.clone(),
        scope: Some(handoff_scope(config, env)),
        delivery: publish::Delivery {
            targets: config.publish.targets.clone(),
            tags: meta.tag_names.clone(),
            layout: None,
            docker_archive: None,
        },
        index_annotations: meta.index_annotations(),
    };
    log.group("Merge and push");
    let result = octopush::merge::merge(&client, &request, log).await;
    log.end_group();
    Ok(result?)
}

/// Writes the embedded example into a temporary folder and fills the inputs it needs.
fn prepare_example(raw: &mut RawInputs, env: &Env) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir().context("creating a folder for the example")?;
    for (name, text) in EXAMPLE {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing the example's {name}"))?;
    }
    let publishing_somewhere = raw.get("registry").is_some() || raw.get("images").is_some();
    if raw.get("repository").is_none() && raw.get("images").is_none() && env.non_empty("GITHUB_REPOSITORY").is_none() {
        raw.set("repository", "octopush/example");
    }
    if !publishing_somewhere && raw.get("output").is_none() {
        raw.set("output", "oci:out/example");
        raw.set("push", "false");
    }
    if raw.get("tags").is_none() && raw.bool("tag_with_ref").ok().flatten().is_none() {
        raw.set("tags", "latest");
    }
    Ok(dir)
}

/// The repository's description, license and URL from the REST API; without a token or a network, what the
/// environment gives, with a notice.
async fn repository_data(config: &Config, log: &Log) -> RepoData {
    let fallback = RepoData::fallback(&config.git);
    // The embedded example is not this repository's: nothing to ask GitHub about it.
    if config.git.repository.is_empty() || config.publish.example {
        return fallback;
    }
    match meta::fetch_repo(&config.git.api_url, config.github_token.as_ref(), &config.git.repository).await {
        Ok(repo) => repo,
        Err(e) => {
            log.notice(&format!(
                "Could not read {} from GitHub's API at {}: labels use what the environment gives (no description \
                 or license).",
                config.git.repository, config.git.api_url
            ));
            log.debug(&e.to_string());
            fallback
        }
    }
}

async fn publish_image(
    config: &Config,
    meta: &Meta,
    created: i64,
    workspace: Option<&str>,
    by_digest: Option<octopush::handoff::Scope>,
    docker_config: Option<&DockerConfig>,
    log: &Log,
) -> anyhow::Result<Published> {
    let p = &config.publish;
    let client = registry_client(p, docker_config, log)?;
    // Inside the cache directory when there is one, so new layers are hard-linked into it rather than copied.
    let work = match p.cache_dir.as_deref().map(|d| std::fs::create_dir_all(d).map(|_| d)) {
        Some(Ok(dir)) => tempfile::Builder::new().prefix("work-").tempdir_in(dir),
        _ => tempfile::tempdir(),
    }
    .context("creating a work folder for layers")?;
    // A computed label without a value (no description or license known) would only blank the Dockerfile's own.
    let labels = match config.apply_labels {
        true => meta
            .labels
            .iter()
            .filter(|(k, v)| !v.is_empty() || meta.user_labels.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        false => meta.user_labels.clone(),
    };
    let references: Vec<String> =
        p.targets.iter().flat_map(|t| meta.tag_names.iter().map(move |tag| format!("{t}:{tag}"))).collect();
    let request = PublishRequest {
        builder: p.builder,
        build: octopush::builder::BuildOptions {
            context: p.context.clone(),
            dockerfile: p.dockerfile.clone(),
            target: p.target.clone(),
            build_args: p.build_args.clone(),
            platforms: p.platforms.clone(),
            labels,
            source_date_epoch: Some(created),
            work_dir: work.path().to_path_buf(),
            host_platform: octopush::builder::platform_of(std::env::consts::OS, std::env::consts::ARCH),
            cache_dir: p.cache_dir.clone(),
            compression: p.compression,
            // The engine tags what it built as it will be pushed, so a later step can `docker run` it.
            engine: octopush::builder::engine::EngineOptions { tags: references.clone(), ..p.engine.clone() },
        },
        targets: if p.push { p.targets.clone() } else { Vec::new() },
        tags: meta.tag_names.clone(),
        layout: p.output.clone(),
        // `docker load` names the image with every target and tag, pushed or not.
        docker_archive: p
            .docker_archive
            .clone()
            .map(|path| octopush::docker_archive::DockerArchiveOutput { path, repo_tags: references.clone() }),
        annotations: meta.annotations_at("manifest"),
        index_annotations: meta.index_annotations(),
        by_digest,
    };
    log.group("Build and push");
    let result = publish::publish(&client, &request, log).await;
    log.end_group();
    result.map_err(|error| match &error {
        // An error about a Dockerfile line is annotated on that line, relative to the workspace as GitHub wants.
        publish::PublishError::Build(b) if b.line().is_some() => {
            let file = workspace_relative(&p.dockerfile, workspace);
            anyhow::Error::new(AtLine { file, line: b.line().unwrap_or(1), error })
        }
        _ => error.into(),
    })
}

/// The registry client with the inputs' credentials, falling back to the docker `config.json` (its secrets
/// masked): publish pushes with it, prune reads manifests with it.
pub fn registry_client(
    p: &PublishConfig,
    docker_config: Option<&DockerConfig>,
    log: &Log,
) -> anyhow::Result<RegistryClient> {
    let options = ClientOptions {
        ca_file: p.ca_file.clone(),
        jobs: p.jobs,
        insecure_registries: p.insecure_registries.clone(),
        ..ClientOptions::default()
    };
    let client = RegistryClient::new(options)?;
    // Retries are logged as warnings, so a run that succeeded after faults says so.
    client.set_progress(std::sync::Arc::new(log.clone()));
    for (host, creds) in &p.credentials {
        client.set_credentials(host, creds.clone());
    }
    if let Some(docker_config) = docker_config {
        let log = log.clone();
        client.set_docker_config(docker_config.clone(), move |secret| log.add_secret(secret));
    }
    Ok(client)
}

/// An error the annotation places on a line of a file.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct AtLine {
    pub file: String,
    pub line: usize,
    #[source]
    pub error: publish::PublishError,
}

fn workspace_relative(path: &Path, workspace: Option<&str>) -> String {
    workspace.and_then(|ws| path.strip_prefix(ws).ok()).unwrap_or(path).display().to_string()
}

/// The docker `config.json`, its secrets masked. Missing: none. Malformed: a warning naming it, and none, as the
/// docker CLI does.
fn load_docker_config(path: &Path, log: &Log) -> Option<DockerConfig> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            log.warning(&format!("Not using the docker config {}: {e}", path.display()));
            return None;
        }
    };
    match DockerConfig::parse(path, &bytes) {
        Ok(config) => {
            for secret in config.secrets() {
                log.add_secret(secret);
            }
            log.debug(&format!("registry credentials may come from {}", path.display()));
            Some(config)
        }
        Err(e) => {
            log.warning(&format!("Not using the docker config: {e}"));
            None
        }
    }
}

fn meta_outputs(meta: &Meta) -> Vec<(&'static str, String)> {
    let kv = |m: &std::collections::BTreeMap<String, String>| {
        m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n")
    };
    vec![
        ("version", meta.version.clone().unwrap_or_default()),
        ("tags", meta.tags.join("\n")),
        ("tag-names", meta.tag_names.join("\n")),
        ("labels", kv(&meta.labels)),
        ("annotations", kv(&meta.annotations)),
        ("json", meta.json.to_string()),
    ]
}

fn publish_outputs(p: &Published) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("digest", p.manifest.digest.to_string()),
        ("imageid", p.image_id.to_string()),
        ("metadata", summary::metadata_json(p).to_string()),
    ];
    // With `push: false` nothing was pushed: `tags` keeps the computed references.
    if !p.references.is_empty() {
        out.push(("tags", p.references.join("\n")));
    }
    out
}

/// Later entries win, so publish's `tags` (what was pushed) replaces meta's.
pub(crate) fn write_outputs(env: &Env, outputs: &[(&'static str, String)]) -> anyhow::Result<()> {
    let Some(file) = env.output_file() else { return Ok(()) };
    let mut last = std::collections::BTreeMap::new();
    for (k, v) in outputs {
        last.insert(*k, v);
    }
    for (k, v) in last {
        files::write_output(Path::new(&file), k, v)?;
    }
    Ok(())
}

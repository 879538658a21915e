//! `command: prune` and `command: restore` at the edge: the validated inputs become a request to the library
//! (`octopush::packages`), with the registry client and credentials publishing uses; the decision table goes to
//! the log and the job summary, the versions to the `deleted`, `kept`, `planned` and `restored` outputs.

mod inputs;
mod report;

use std::sync::Arc;

use chrono::Utc;

use octopush::packages::prune::find_package;
use octopush::packages::{self, ApiOptions, PackagesApi, PruneRequest};
use octopush::progress::Progress;

use crate::actions::{Env, Log, files};
use crate::config::{CommandKind, Config};

pub use inputs::PackagesConfig;
pub(crate) use inputs::is_login;

pub async fn run(
    env: &Env,
    config: &Config,
    docker_config: Option<&octopush::registry::DockerConfig>,
    log: &Log,
) -> anyhow::Result<()> {
    let Some(p) = config.packages.as_ref() else {
        anyhow::bail!("the `{:?}` command has no package inputs", config.command);
    };
    let progress: Arc<dyn Progress> = Arc::new(log.clone());
    let options =
        ApiOptions { api_url: config.git.api_url.clone(), token: config.github_token.clone(), ..ApiOptions::default() };
    let api = PackagesApi::new(options, progress)?;
    match config.command {
        CommandKind::Restore => restore(env, &api, p, log).await,
        _ => prune(env, config, &api, p, docker_config, log).await,
    }
}

async fn prune(
    env: &Env,
    config: &Config,
    api: &PackagesApi,
    p: &PackagesConfig,
    docker_config: Option<&octopush::registry::DockerConfig>,
    log: &Log,
) -> anyhow::Result<()> {
    let client = crate::run::registry_client(&config.publish, docker_config, log)?;
    let now = Utc::now();
    let request = PruneRequest {
        owner: p.owner.clone(),
        owner_kind: None,
        package_type: p.package_type,
        package: p.package.clone(),
        image: p.image.clone(),
        policy: p.policy.clone(),
        now,
        jobs: config.publish.jobs.max(8),
    };
    log.group(&format!("Reading the versions of {}/{}", p.owner, p.package));
    let plan = packages::plan(api, &client, &request, log).await;
    let report = match plan {
        Ok(plan) => packages::prune(api, plan, p.dry_run, log).await,
        Err(e) => {
            log.end_group();
            return Err(e.into());
        }
    };
    log.end_group();
    log.line(&report::text_table(&report, now));
    crate::run::write_outputs(env, &report::outputs(&report))?;
    if let Some(file) = env.summary_file() {
        files::append_summary(&file, &log.redact(&report::markdown(&report, now)))?;
    }
    log.line(&report::one_line(&report));
    match report.failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

async fn restore(env: &Env, api: &PackagesApi, p: &PackagesConfig, log: &Log) -> anyhow::Result<()> {
    let package = find_package(api, &p.owner, None, p.package_type, &p.package).await?;
    let report = packages::restore(api, package, &p.versions, log).await;
    crate::run::write_outputs(env, &report::restore_outputs(&report))?;
    if let Some(file) = env.summary_file() {
        files::append_summary(&file, &log.redact(&report::restore_markdown(&report)))?;
    }
    log.line(&format!("{}: {} versions restored", report.package, report.restored.len()));
    match report.failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

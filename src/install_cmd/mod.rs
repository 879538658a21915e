//! `command: install` at the edge: package clients are set up in a folder a later step can read (the runner's
//! temp directory, as the host sees it even when the action runs in a container) and pointed at through
//! `GITHUB_ENV`; then each image is installed with publishing's registry client and credentials. What was
//! installed and configured goes to the log, the `installed` and `clients` outputs and the job summary.

mod inputs;
mod report;

use std::path::{Path, PathBuf};

use octopush::install::clients::{self, ClientRequest};
use octopush::install::install_image;
use octopush::registry::DockerConfig;

use crate::actions::{Env, Log, files};
use crate::config::{Config, ConfigError, bad};

pub use inputs::InstallConfig;

/// Where the runner mounts `RUNNER_TEMP/_github_home` in a container action's container (as `HOME`); nothing
/// else of `RUNNER_TEMP` is mounted there.
const CONTAINER_HOME: &str = "/github/home";

pub async fn run(env: &Env, config: &Config, docker_config: Option<&DockerConfig>, log: &Log) -> anyhow::Result<()> {
    let Some(install) = config.install.as_ref() else {
        anyhow::bail!("the `{:?}` command has no install inputs", config.command);
    };
    // What the step must write is checked before anything is pulled.
    for (variable, file) in [
        ("GITHUB_OUTPUT", env.output_file()),
        ("GITHUB_STEP_SUMMARY", env.summary_file()),
        ("GITHUB_ENV", env.env_file()),
    ] {
        if let Some(file) = file {
            files::check_writable(variable, &file)?;
        }
    }
    let setup = if install.registries.is_empty() { None } else { Some(set_up_clients(env, install, log)?) };

    let mut installed = Vec::new();
    if !install.images.is_empty() {
        let client = crate::run::registry_client(&config.publish, docker_config, log)?;
        log.group(&format!(
            "Installing {} image{}",
            install.images.len(),
            if install.images.len() == 1 { "" } else { "s" }
        ));
        for request in &install.images {
            match install_image(&client, request, log).await {
                Ok(done) => installed.push(done),
                Err(e) => {
                    log.end_group();
                    return Err(e.into());
                }
            }
        }
        log.end_group();
    }
    crate::run::write_outputs(env, &report::outputs(&installed, setup.as_ref()))?;
    if let Some(file) = env.summary_file() {
        files::append_summary(&file, &log.redact(&report::markdown(&installed, setup.as_ref())))?;
    }
    log.line(&report::one_line(&installed, setup.as_ref()));
    Ok(())
}

fn set_up_clients(
    env: &Env,
    install: &InstallConfig,
    log: &Log,
) -> anyhow::Result<octopush::install::clients::ClientSetup> {
    let token = install.token.clone().ok_or_else(|| {
        bad(
            "password",
            "setting up package clients needs a token: pass `password: ${{ secrets.GITHUB_TOKEN }}` (the default in \
             a workflow) and give the job `permissions: packages: read`",
        )
    })?;
    let (dir, exported_dir) = client_folder(env, Path::new(CONTAINER_HOME))?;
    // The docker config in force now: its other logins are kept in the one written for later steps.
    let docker_config = crate::config::docker_config_path(env).and_then(|p| std::fs::read(p).ok());
    let request = ClientRequest {
        ecosystems: install.registries.clone(),
        owners: install.owners.clone(),
        username: install.username.clone(),
        token,
        urls: install.urls.clone(),
        dir,
        exported_dir,
        docker_config,
        maven_args: env.non_empty("MAVEN_ARGS").map(str::to_string),
    };
    let setup = clients::set_up(&request)?;
    match env.env_file() {
        Some(file) => {
            for (name, value) in &setup.env {
                files::export_variable(&file, name, value)?;
            }
        }
        None => {
            log.line("Not in a workflow (no GITHUB_ENV): set these in your shell to use the clients:");
            for (name, value) in &setup.env {
                log.line(&format!("  export {name}='{value}'"));
            }
        }
    }
    for c in &setup.configured {
        log.line(&format!("{}: {}", c.ecosystem.name(), c.registries.join(", ")));
    }
    Ok(setup)
}

/// The folder client files are written to, as this process sees it, and the same folder as a later step sees
/// it. In the runner's container action only `RUNNER_TEMP/_github_home` is shared with the host (mounted at
/// `container_home`, which is `HOME`). act gives a docker action a `RUNNER_TEMP` of the container's own and
/// shares its file-command folder (`GITHUB_ENV`'s) with later steps, at the same path when its cache is mounted
/// into the container. On the host (a CLI run, a JavaScript-free composite) it is `RUNNER_TEMP` itself; outside
/// a workflow, a new temporary folder. Never inside the workspace.
fn client_folder(env: &Env, container_home: &Path) -> Result<(PathBuf, PathBuf), ConfigError> {
    let runner_temp = env.non_empty("RUNNER_TEMP").map(|t| PathBuf::from(t.trim()));
    let home = env.non_empty("HOME").map(Path::new);
    let act_commands =
        env.env_file().filter(|_| env.var("ACT") == Some("true")).and_then(|f| f.parent().map(Path::to_path_buf));
    let (dir, exported) = match (&runner_temp, home, act_commands) {
        (Some(temp), Some(home), _) if home == container_home && container_home.is_dir() => {
            (container_home.join(".octopush"), temp.join("_github_home").join(".octopush"))
        }
        (_, _, Some(commands)) => (commands.join("octopush"), commands.join("octopush")),
        (Some(temp), _, _) => (temp.join("octopush"), temp.join("octopush")),
        (None, _, None) => {
            let dir = std::env::temp_dir().join(format!("octopush-clients-{:08x}", rand::random::<u32>()));
            (dir.clone(), dir)
        }
    };
    if let Some(ws) = env.non_empty("GITHUB_WORKSPACE").map(Path::new) {
        if dir.starts_with(ws) || exported.starts_with(ws) {
            return Err(ConfigError::Environment(format!(
                "RUNNER_TEMP ({}) is inside the workspace ({}): client configuration holds the token and is never \
                 written there",
                exported.display(),
                ws.display()
            )));
        }
    }
    Ok((dir, exported))
}

impl From<clients::ClientError> for ConfigError {
    fn from(e: clients::ClientError) -> ConfigError {
        ConfigError::Environment(e.to_string())
    }
}

/// Phase one of the install inputs (no I/O), with the engine address the `docker` target uses.
pub fn parse(raw: &crate::cli::RawInputs, env: &Env) -> Result<InstallConfig, ConfigError> {
    InstallConfig::parse(raw, env, crate::config::engine_endpoint(env)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn in_a_container_action_files_go_to_the_mounted_home_and_later_steps_get_the_host_path() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path().to_str().unwrap();
        let e =
            env(&[("RUNNER_TEMP", "/home/runner/work/_temp"), ("HOME", h), ("GITHUB_WORKSPACE", "/github/workspace")]);
        let (dir, exported) = client_folder(&e, home.path()).unwrap();
        assert_eq!(dir, home.path().join(".octopush"));
        assert_eq!(exported, PathBuf::from("/home/runner/work/_temp/_github_home/.octopush"));
    }

    #[test]
    fn on_the_host_files_go_to_runner_temp_and_never_to_the_workspace() {
        let e = env(&[("RUNNER_TEMP", "/tmp/rt"), ("HOME", "/home/me"), ("GITHUB_WORKSPACE", "/ws")]);
        let (dir, exported) = client_folder(&e, Path::new("/github/home")).unwrap();
        assert_eq!((dir.as_path(), exported.as_path()), (Path::new("/tmp/rt/octopush"), Path::new("/tmp/rt/octopush")));
        let e = env(&[("RUNNER_TEMP", "/ws/tmp"), ("GITHUB_WORKSPACE", "/ws")]);
        assert!(client_folder(&e, Path::new("/github/home")).unwrap_err().to_string().contains("inside the workspace"));
        let (dir, _) = client_folder(&env(&[]), Path::new("/github/home")).unwrap();
        assert!(dir.starts_with(std::env::temp_dir()));
    }

    #[test]
    fn under_act_files_go_beside_its_file_commands() {
        let e = env(&[("ACT", "true"), ("RUNNER_TEMP", "/tmp"), ("GITHUB_ENV", "/c/act/workflow/envs.txt")]);
        let (dir, exported) = client_folder(&e, Path::new("/github/home")).unwrap();
        assert_eq!(
            (dir.as_path(), exported.as_path()),
            (Path::new("/c/act/workflow/octopush"), Path::new("/c/act/workflow/octopush"))
        );
    }
}

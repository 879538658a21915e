//! The local stand-in for GitHub's Packages REST API (`tests/support/github_api.py`) as a process owned by a
//! test: a state file (tokens, accounts, packages, faults) in, a port out, one JSON log line per request so
//! tests can see every call (and that a dry run sent no DELETE). Container packages live in a real registry.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::registry::Registry;
use super::start_support_script;

/// One request the API answered, as it logged it (never with the token).
#[derive(Debug, Clone, Deserialize)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    /// `bearer` or `token`, `None` without an `Authorization` header.
    pub auth: Option<String>,
}

/// A running API server on 127.0.0.1.
pub struct GithubApi {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for GithubApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GithubApi {
    /// Starts the server with `state` (see the script's docstring for its shape).
    pub fn start(state: &Value) -> GithubApi {
        let dir = tempfile::Builder::new().prefix("octopush-github-api-").tempdir().expect("tempdir");
        let (state_file, log, err) =
            (dir.path().join("state.json"), dir.path().join("requests.log"), dir.path().join("stderr"));
        std::fs::write(&state_file, serde_json::to_vec_pretty(state).expect("state JSON")).expect("write state");
        let configure = |cmd: &mut Command| {
            cmd.arg("--state").arg(&state_file).arg("--log").arg(&log);
        };
        let (child, port) = start_support_script("github_api.py", configure, &err)
            .unwrap_or_else(|stderr| panic!("the GitHub API stand-in did not print its port; its stderr:\n{stderr}"));
        GithubApi { child, port, log, _dir: dir }
    }

    /// `http://127.0.0.1:PORT`, for `GITHUB_API_URL`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<ApiRequest> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad API log line {l}: {e}")))
            .collect()
    }

    /// The requests with `method`.
    pub fn requests_with(&self, method: &str) -> Vec<ApiRequest> {
        self.requests().into_iter().filter(|r| r.method == method).collect()
    }
}

/// A container package in `registry`'s repository `owner/name`, with `versions` as `(id, digest, created_at)`.
pub fn container_package(registry: &Registry, owner: &str, name: &str, versions: &[(u64, String, String)]) -> Value {
    let mut spec = json!({"url": registry.url(), "repository": format!("{owner}/{name}").to_lowercase()});
    if let Some((user, pass)) = registry.credentials() {
        spec["user"] = json!(user);
        spec["password"] = json!(pass);
    }
    json!({
        "owner": owner, "type": "container", "name": name, "registry": spec,
        "versions": versions.iter().map(|(id, digest, created)| json!({"id": id, "name": digest, "created_at": created})).collect::<Vec<_>>()
    })
}

/// GitHub's timestamp format for a time `age` ago.
pub fn ago(age: Duration) -> String {
    let at = chrono::Utc::now() - chrono::Duration::from_std(age).expect("age in range");
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `n` days (and `h` hours) ago.
pub fn days_ago(n: u64, h: u64) -> String {
    ago(Duration::from_secs(n * 86_400 + h * 3_600))
}

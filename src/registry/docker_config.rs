//! Credentials from a docker `config.json`, as `docker login` writes it: `auths` entries keyed by host or URL
//! (`https://index.docker.io/v1/`, `http://host:port`, `host:port/path`), each with `auth` (base64
//! `user:password`), `username`/`password` or an `identitytoken`; and credential helpers (`credHelpers` per host,
//! `credsStore` for the rest), run as `docker-credential-NAME get`. The edge finds and reads the file; this module
//! takes its bytes. Precedence follows docker: a host's helper, else `credsStore`, else its `auths` entry.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::auth::Credentials;
use super::{RegistryClient, RegistryError};
use crate::image::ImageName;
use crate::secret::Secret;

/// The user name that marks an identity token (an OAuth2 refresh token) rather than a password, as docker's
/// credential helpers return it.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

/// The `auths` key and helper server URL docker uses for Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DockerConfigError {
    #[error("{} is not a valid docker config: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
    #[error(
        "the credential helper docker-credential-{helper} (named in {}) failed for {server}: {detail}",
        path.display()
    )]
    Helper { helper: String, server: String, path: PathBuf, detail: String },
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// A parsed docker config: credentials by host, and which helper serves which host.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    /// (host as written, normalised host, credentials), in file order.
    auths: Vec<(String, String, Credentials)>,
    /// The `auth` values as written (base64 of `username:password`): secrets in their own right.
    raw_auths: Vec<Secret>,
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
}

/// `host[:port]` of an `auths` key or server address: scheme and path dropped, lower case (docker's
/// `ConvertToHostname`).
pub fn hostname(key: &str) -> String {
    let k = key.trim().to_ascii_lowercase();
    let k = k.strip_prefix("https://").or_else(|| k.strip_prefix("http://")).unwrap_or(&k);
    k.split('/').next().unwrap_or_default().to_string()
}

/// The hosts an `auths` key may be written as for a registry: Docker Hub is `index.docker.io` in docker's files.
fn aliases(registry: &str) -> Vec<String> {
    let r = registry.to_ascii_lowercase();
    if matches!(r.as_str(), "docker.io" | "index.docker.io" | "registry-1.docker.io") {
        vec!["index.docker.io".into(), "docker.io".into(), "registry-1.docker.io".into()]
    } else {
        vec![r]
    }
}

/// What docker passes a helper (and how it keys its files) for a registry.
fn server_address(registry: &str) -> String {
    if aliases(registry).len() > 1 { DOCKER_HUB_KEY.to_string() } else { registry.to_ascii_lowercase() }
}

fn decode_auth(value: &str) -> Option<(String, String)> {
    let engines = [&base64::engine::general_purpose::STANDARD, &base64::engine::general_purpose::STANDARD_NO_PAD];
    let bytes = engines.iter().find_map(|e| e.decode(value.trim()).ok())?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.trim_end_matches('\0').to_string()))
}

impl DockerConfig {
    /// Parses the bytes of the file at `path` (named in errors). Entries with nothing usable are skipped.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<DockerConfig, DockerConfigError> {
        let invalid = |detail: String| DockerConfigError::Invalid { path: path.to_path_buf(), detail };
        let raw: RawConfig = if bytes.iter().all(u8::is_ascii_whitespace) {
            RawConfig::default()
        } else {
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?
        };
        let mut auths = Vec::new();
        let mut raw_auths = Vec::new();
        for (key, entry) in raw.auths {
            let creds = if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
                Some(Credentials::new(IDENTITY_TOKEN_USER, Secret::new(token)))
            } else if let Some(auth) = entry.auth.filter(|a| !a.trim().is_empty()) {
                raw_auths.push(Secret::new(auth.trim()));
                let (user, pass) = decode_auth(&auth)
                    .ok_or_else(|| invalid(format!("the `auth` of `{key}` is not base64 of `username:password`")))?;
                Some(Credentials::new(user, Secret::new(pass)))
            } else {
                match (entry.username, entry.password) {
                    (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Some(Credentials::new(u, Secret::new(p))),
                    _ => None,
                }
            };
            if let Some(c) = creds {
                let c = c.from_source(format!("the `auths` entry `{key}` in {}", path.display()));
                auths.push((key.trim().to_ascii_lowercase(), hostname(&key), c));
            }
        }
        let cred_helpers = raw.cred_helpers.into_iter().map(|(k, v)| (hostname(&k), v)).collect();
        let creds_store = raw.creds_store.filter(|s| !s.trim().is_empty());
        Ok(DockerConfig { path: path.to_path_buf(), auths, raw_auths, cred_helpers, creds_store })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every password and token written in the file, and each `auth` value as written (its base64 gives the
    /// password away), to mask before anything is printed.
    pub fn secrets(&self) -> Vec<&str> {
        let passwords = self.auths.iter().map(|(_, _, c)| c.password.expose());
        passwords.chain(self.raw_auths.iter().map(Secret::expose)).collect()
    }

    /// The helper that serves `registry`: its `credHelpers` entry, else `credsStore`.
    pub fn helper_for(&self, registry: &str) -> Option<&str> {
        aliases(registry)
            .iter()
            .find_map(|h| self.cred_helpers.get(h))
            .or(self.creds_store.as_ref())
            .map(String::as_str)
    }

    /// The `auths` entry for `registry`: a key written as the host itself first, then any key for that host.
    pub fn stored(&self, registry: &str) -> Option<&Credentials> {
        let hosts = aliases(registry);
        let hub = hosts.len() > 1;
        let exact = self.auths.iter().find(|(key, _, _)| hosts.contains(key) || (hub && key == DOCKER_HUB_KEY));
        exact.or_else(|| self.auths.iter().find(|(_, host, _)| hosts.contains(host))).map(|(_, _, c)| c)
    }

    /// Credentials for `registry` (`ghcr.io`, `127.0.0.1:5000`, `docker.io`), running its helper if it has one.
    /// `None` when the file has none for it (docker then goes anonymous too).
    pub async fn credentials(&self, registry: &str) -> Result<Option<Credentials>, DockerConfigError> {
        match self.helper_for(registry) {
            Some(helper) => self.run_helper(helper, &server_address(registry)).await,
            None => Ok(self.stored(registry).cloned()),
        }
    }

    /// Credentials for an image's registry.
    pub async fn credentials_for(&self, name: &ImageName) -> Result<Option<Credentials>, DockerConfigError> {
        self.credentials(&name.registry).await
    }

    /// `docker-credential-HELPER get` (found on PATH) with the server address on stdin; `{"Username","Secret"}`
    /// on stdout.
    async fn run_helper(&self, helper: &str, server: &str) -> Result<Option<Credentials>, DockerConfigError> {
        self.run_helper_in(None, helper, server).await
    }

    /// [`Self::run_helper`], the helper taken from `dir` when given (tests).
    async fn run_helper_in(
        &self,
        dir: Option<&Path>,
        helper: &str,
        server: &str,
    ) -> Result<Option<Credentials>, DockerConfigError> {
        let fail = |detail: String| DockerConfigError::Helper {
            helper: helper.to_string(),
            server: server.to_string(),
            path: self.path.clone(),
            detail,
        };
        let program = format!("docker-credential-{helper}");
        let path = dir.map(|d| d.join(&program)).unwrap_or_else(|| PathBuf::from(&program));
        let mut child = tokio::process::Command::new(path)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    fail(format!("{program} is not on PATH: install it, or remove the helper from the file"))
                }
                _ => fail(format!("cannot start {program}: {e}")),
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper may exit without reading (a failing one often does): its exit status says what happened.
            match stdin.write_all(server.as_bytes()).await {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(fail(format!("writing to it: {e}")));
                }
                _ => {}
            }
        }
        let out = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| fail(format!("it gave no answer in {} s", HELPER_TIMEOUT.as_secs())))?
            .map_err(|e| fail(e.to_string()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            // docker treats this answer of the helper protocol as "no credentials", not as a failure.
            if stdout.contains("credentials not found") {
                return Ok(None);
            }
            let said = [stdout.trim(), String::from_utf8_lossy(&out.stderr).trim()]
                .into_iter()
                .find(|s| !s.is_empty())
                .map(|s| s.lines().next().unwrap_or_default().chars().take(200).collect::<String>())
                .unwrap_or_default();
            let said = if said.is_empty() { String::new() } else { format!(": {said}") };
            return Err(fail(format!("it exited with {}{said}", out.status)));
        }
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let answer: Answer = serde_json::from_slice(&out.stdout)
            .map_err(|_| fail("its answer is not the helper protocol's {\"Username\", \"Secret\"} JSON".into()))?;
        if answer.secret.is_empty() {
            return Ok(None);
        }
        let source = format!("what docker-credential-{helper} (named in {}) stores for {server}", self.path.display());
        Ok(Some(Credentials::new(answer.username, Secret::new(answer.secret)).from_source(source)))
    }
}

/// Called with each secret a lookup yields, before it is used (the edge masks it).
type OnSecret = Arc<dyn Fn(&str) + Send + Sync>;

/// A client's docker config and what it has looked up so far, per registry host.
#[derive(Default)]
pub(super) struct Fallback {
    config: Mutex<Option<(Arc<DockerConfig>, OnSecret)>>,
    found: Mutex<HashMap<String, Option<Credentials>>>,
    /// One lookup at a time, so concurrent first requests run a helper once.
    looking: tokio::sync::Mutex<()>,
}

impl Fallback {
    /// What a lookup for `registry` found, if one ran.
    pub(super) fn cached(&self, registry: &str) -> Option<Credentials> {
        self.found.lock().ok()?.get(registry).cloned().flatten()
    }
}

impl RegistryClient {
    /// Credentials for hosts that have none set with [`RegistryClient::set_credentials`]: looked up in `config`
    /// (running its helpers) the first time a host is contacted. `on_secret` gets every password or token found,
    /// before it is sent anywhere.
    pub fn set_docker_config(&self, config: DockerConfig, on_secret: impl Fn(&str) + Send + Sync + 'static) {
        if let Ok(mut c) = self.inner.docker_config.config.lock() {
            *c = Some((Arc::new(config), Arc::new(on_secret)));
        }
    }

    /// The credentials for a request to `name`: explicit ones, else the docker config's (looked up once).
    pub(crate) async fn resolve_credentials(&self, name: &ImageName) -> Result<Option<Credentials>, RegistryError> {
        let fallback = &self.inner.docker_config;
        let explicit = self.explicit_credentials(name);
        if explicit.is_some() {
            return Ok(explicit);
        }
        let Some((config, on_secret)) = fallback.config.lock().ok().and_then(|c| c.clone()) else { return Ok(None) };
        let _one_at_a_time = fallback.looking.lock().await;
        if let Some(found) = fallback.found.lock().ok().and_then(|f| f.get(&name.registry).cloned()) {
            return Ok(found);
        }
        let found = config.credentials(&name.registry).await?;
        if let Some(c) = &found {
            on_secret(c.password.expose());
        }
        if let Ok(mut f) = fallback.found.lock() {
            f.insert(name.registry.clone(), found.clone());
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn parse(json: &str) -> Result<DockerConfig, DockerConfigError> {
        DockerConfig::parse(Path::new("/home/u/.docker/config.json"), json.as_bytes())
    }

    fn user_pass(c: Option<&Credentials>) -> Option<(&str, &str)> {
        c.map(|c| (c.username.as_str(), c.password.expose()))
    }

    #[test]
    fn every_key_form_finds_its_host() {
        let c = parse(&format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{hub}"}},
                "http://127.0.0.1:5000": {{"auth": "{local}"}},
                "registry.example.com:8443/some/path": {{"username": "robot", "password": "pw3"}},
                "GHCR.io": {{"auth": "{gh}", "email": "x@y"}},
                "quay.io": {{}}
            }}}}"#,
            hub = b64("hubuser:hub:pass:with:colons"),
            local = b64("local:pw2"),
            gh = b64("octocat:ghp_x"),
        ))
        .unwrap();
        assert_eq!(user_pass(c.stored("docker.io")), Some(("hubuser", "hub:pass:with:colons")));
        assert_eq!(user_pass(c.stored("127.0.0.1:5000")), Some(("local", "pw2")));
        assert_eq!(user_pass(c.stored("registry.example.com:8443")), Some(("robot", "pw3")));
        assert_eq!(user_pass(c.stored("ghcr.io")), Some(("octocat", "ghp_x")));
        assert_eq!(c.stored("quay.io"), None, "an empty entry gives nothing");
        assert_eq!(c.stored("127.0.0.1:5001"), None);
        assert_eq!(c.stored("registry.example.com"), None, "the port is part of the host");
        let mut secrets = c.secrets();
        secrets.sort();
        // Issue 13, finding 8: each `auth` value is masked too; its base64 gives the password away.
        let (hub, local, gh) = (b64("hubuser:hub:pass:with:colons"), b64("local:pw2"), b64("octocat:ghp_x"));
        let mut want = vec!["ghp_x", "hub:pass:with:colons", "pw2", "pw3", &hub, &local, &gh];
        want.sort();
        assert_eq!(secrets, want);
    }

    #[test]
    fn a_key_written_as_the_host_wins_over_a_url_for_it() {
        let c = parse(&format!(
            r#"{{"auths": {{"https://127.0.0.1:5000/v2/": {{"auth": "{a}"}}, "127.0.0.1:5000": {{"auth": "{b}"}}}}}}"#,
            a = b64("url:1"),
            b = b64("host:2")
        ))
        .unwrap();
        assert_eq!(user_pass(c.stored("127.0.0.1:5000")), Some(("host", "2")));
    }

    #[test]
    fn auth_beats_username_and_identity_tokens_are_marked() {
        let c = parse(&format!(
            r#"{{"auths": {{
                "a.example": {{"auth": "{a}", "username": "other", "password": "other"}},
                "b.example": {{"auth": "{b}", "identitytoken": "refresh-123"}},
                "c.example": {{"auth": "{unpadded}"}}
            }}}}"#,
            a = b64("user:pass"),
            b = b64("user:pass"),
            unpadded = b64("ab:c").trim_end_matches('='),
        ))
        .unwrap();
        assert_eq!(user_pass(c.stored("a.example")), Some(("user", "pass")));
        assert_eq!(user_pass(c.stored("b.example")), Some((IDENTITY_TOKEN_USER, "refresh-123")));
        assert_eq!(user_pass(c.stored("c.example")), Some(("ab", "c")));
    }

    #[test]
    fn malformed_files_name_the_file_and_never_the_secret() {
        let e = parse("{bad").unwrap_err().to_string();
        assert!(e.starts_with("/home/u/.docker/config.json is not a valid docker config"), "{e}");
        let e = parse(r#"{"auths": {"h": {"auth": "!!!not-base64"}}}"#).unwrap_err().to_string();
        assert!(e.contains("`auth` of `h`") && !e.contains("!!!"), "{e}");
        let e = parse(&format!(r#"{{"auths": {{"h": {{"auth": "{}"}}}}}}"#, b64("nocolon"))).unwrap_err().to_string();
        assert!(e.contains("username:password") && !e.contains("nocolon"), "{e}");
        assert!(parse("").unwrap().stored("h").is_none(), "an empty file is an empty config, as docker has it");
        assert!(parse(r#"{"auths": {}, "currentContext": "x", "plugins": {}}"#).is_ok());
    }

    #[test]
    fn helpers_per_host_then_the_store() {
        let c = parse(
            r#"{"auths": {"a.example": {"auth": "dTpw"}, "127.0.0.1:5000": {}},
                "credHelpers": {"https://a.example": "pass", "b.example": "ecr-login"}}"#,
        )
        .unwrap();
        assert_eq!(c.helper_for("a.example"), Some("pass"), "a helper beats the auths entry, as in docker");
        assert_eq!(c.helper_for("b.example"), Some("ecr-login"));
        assert_eq!(c.helper_for("c.example"), None);
        let c = parse(r#"{"credsStore": "desktop", "credHelpers": {"b.example": "gcloud"}}"#).unwrap();
        assert_eq!(c.helper_for("c.example"), Some("desktop"));
        assert_eq!(c.helper_for("b.example"), Some("gcloud"));
        assert_eq!(server_address("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_address("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(hostname("HTTPS://Registry.Example:443/v1/"), "registry.example:443");
    }

    #[tokio::test]
    async fn helpers_run_with_the_server_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str| {
            let p = dir.path().join(format!("docker-credential-{name}"));
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        };
        script("echo", r#"read s; printf '{"ServerURL":"%s","Username":"u-%s","Secret":"s3cr3t"}' "$s" "$s""#);
        script("none", "echo 'credentials not found in native keychain'; exit 1");
        script("broken", "echo 'cannot reach the vault' >&2; exit 3");
        script("garbage", "echo hello");
        let c = parse(r#"{"credHelpers": {"e.example": "octotest-missing-helper"}}"#).unwrap();
        let run = |helper: &'static str, server: &'static str| c.run_helper_in(Some(dir.path()), helper, server);
        let got = run("echo", "127.0.0.1:5000").await.unwrap().unwrap();
        assert_eq!((got.username.as_str(), got.password.expose()), ("u-127.0.0.1:5000", "s3cr3t"));
        assert_eq!(
            got.source, "what docker-credential-echo (named in /home/u/.docker/config.json) stores for 127.0.0.1:5000",
            "a rejection names the helper to fix"
        );
        assert_eq!(run("none", "b.example").await.unwrap(), None, "not found is no credentials, as in docker");
        let e = run("broken", "c.example").await.unwrap_err().to_string();
        assert!(e.contains("docker-credential-broken") && e.contains("cannot reach the vault"), "{e}");
        assert!(e.contains("/home/u/.docker/config.json") && e.contains("c.example"), "{e}");
        let e = run("garbage", "d.example").await.unwrap_err().to_string();
        assert!(e.contains("helper protocol") && !e.contains("hello"), "{e}");
        let e = c.credentials("e.example").await.unwrap_err().to_string();
        assert!(e.contains("docker-credential-octotest-missing-helper is not on PATH"), "{e}");
    }
}

//! Package registries for the install tests, real servers on 127.0.0.1: verdaccio (npm, token auth, installed
//! by scripts/install-test-deps.sh into tests/support/verdaccio) and `tests/support/package_repo.py`, a static
//! repository behind Basic auth that Maven and RubyGems read (HTTP/1.1, PUT to deploy). Also the "later step":
//! a command run with the variables a step exported through `GITHUB_ENV`, as the runner applies them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::http::curl;
use super::{run_ok, start_support_script, support_dir, tool, wait_for};

/// A running verdaccio. Dropping it kills it and removes its storage.
pub struct Verdaccio {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Verdaccio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Verdaccio {
    /// Starts verdaccio 6 where every package needs an authenticated user, to read too (as GitHub Packages'
    /// npm registry does), with no uplink.
    pub fn start() -> Verdaccio {
        let bin = support_dir().join("verdaccio/node_modules/verdaccio/bin/verdaccio");
        assert!(
            bin.is_file(),
            "{} is missing: run scripts/install-test-deps.sh (it installs verdaccio)",
            bin.display()
        );
        let dir = tempfile::Builder::new().prefix("octopush-verdaccio-").tempdir().expect("tempdir");
        let port = free_port();
        let config = format!(
            "storage: {storage}\nauth:\n  htpasswd:\n    file: {htpasswd}\n    max_users: 100\nuplinks: {{}}\n\
             packages:\n  '@*/*':\n    access: $authenticated\n    publish: $authenticated\n  '**':\n    \
             access: $authenticated\n    publish: $authenticated\nlog: {{ type: stdout, format: pretty, level: warn }}\n",
            storage = dir.path().join("storage").display(),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, config).expect("write verdaccio config");
        let log = std::fs::File::create(dir.path().join("verdaccio.log")).expect("log file");
        let child = Command::new(tool("node"))
            .arg(&bin)
            .arg("--config")
            .arg(&config_path)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start verdaccio: {e}"));
        let v = Verdaccio { child, port, dir };
        wait_for("verdaccio to answer /-/ping", Duration::from_secs(60), || {
            let r = super::http::curl_result("GET", &format!("{}-/ping", v.url()), &[], None, &[]).ok()?;
            (r.status == 200).then_some(())
        });
        v
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Creates `user` and returns its npm token (what `npm adduser` gets).
    pub fn token(&self, user: &str, pass: &str) -> String {
        let body = serde_json::json!({"name": user, "password": pass}).to_string();
        let r = curl(
            "PUT",
            &format!("{}-/user/org.couchdb.user:{user}", self.url()),
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
            &[],
        );
        assert_eq!(r.status, 201, "verdaccio adduser: {}", r.text());
        r.json()["token"].as_str().expect("token").to_string()
    }

    /// Publishes `name@version` (a package whose `index.js` exports `marker`) with `token`, through npm.
    pub fn publish(&self, name: &str, version: &str, marker: &str, token: &str) {
        let work = tempfile::tempdir().expect("tempdir");
        let pkg = work.path().join("pkg");
        std::fs::create_dir_all(&pkg).expect("mkdir");
        let manifest = serde_json::json!({"name": name, "version": version, "main": "index.js"});
        std::fs::write(pkg.join("package.json"), manifest.to_string()).expect("package.json");
        std::fs::write(pkg.join("index.js"), format!("module.exports = {marker:?};\n")).expect("index.js");
        let scope = name.split('/').next().expect("scoped name");
        let npmrc = work.path().join("npmrc");
        let host = self.url().trim_start_matches("http:").to_string();
        std::fs::write(&npmrc, format!("{scope}:registry={}\n{host}:_authToken={token}\n", self.url())).expect("npmrc");
        run_ok(
            Command::new(tool("npm"))
                .args(["publish", "--userconfig"])
                .arg(&npmrc)
                .current_dir(&pkg)
                .env("HOME", work.path())
                .env("npm_config_cache", work.path().join("cache")),
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("verdaccio.log")).unwrap_or_default()
    }
}

/// A free TCP port on 127.0.0.1 (verdaccio cannot report one it picked itself).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// `tests/support/package_repo.py` serving `root()`. Dropping it kills it.
pub struct PackageRepo {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for PackageRepo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PackageRepo {
    /// A repository behind Basic `user`/`pass`; `maven` ignores the second path segment (GitHub's layout).
    pub fn start(user: &str, pass: &str, maven: bool) -> PackageRepo {
        let dir = tempfile::Builder::new().prefix("octopush-pkgrepo-").tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).expect("mkdir root");
        let configure = |cmd: &mut Command| {
            cmd.arg(&root).arg(user).arg(pass);
            if maven {
                cmd.arg("--maven");
            }
        };
        let (child, port) = start_support_script("package_repo.py", configure, &dir.path().join("requests.log"))
            .unwrap_or_else(|e| panic!("package_repo.py did not start: {e}"));
        PackageRepo { child, port, dir }
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// What is served.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// One line per request: `METHOD PATH STATUS auth=yes|no`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}

/// The environment a later `run:` step gets: `base`, with every variable the step exported through `GITHUB_ENV`
/// applied on top, as the runner does between steps.
pub fn later_step_env(
    base: &BTreeMap<String, String>,
    exported: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = base.clone();
    env.extend(exported.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// Runs `program ARGS` as a later step would: exactly `env`, in `dir`, no stdin. Returns the output.
pub fn run_step(program: &str, args: &[&str], env: &BTreeMap<String, String>, dir: &Path) -> std::process::Output {
    let mut cmd = Command::new(tool(program));
    cmd.args(args).env_clear().envs(env).current_dir(dir);
    super::run(&mut cmd)
}

/// Every file below `dir` (symlinks not followed) whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => {
                    let bytes = std::fs::read(&path).unwrap_or_default();
                    if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                        found.push(path);
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// Maven's global settings for the tests: Maven Central is out of reach, so `central` is Debian's repository of
/// plugins, and the local repository is the test's own, `dir/m2`. Written to `dir/global-settings.xml`.
pub fn maven_global_settings(dir: &Path) -> PathBuf {
    let path = dir.join("global-settings.xml");
    std::fs::write(
        &path,
        format!(
            "<settings><localRepository>{}</localRepository><mirrors><mirror><id>debian</id>\
             <mirrorOf>central</mirrorOf><url>file:///usr/share/maven-repo</url></mirror></mirrors></settings>\n",
            dir.join("m2").display()
        ),
    )
    .unwrap();
    path
}

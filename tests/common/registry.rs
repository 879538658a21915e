//! A real CNCF distribution registry (Debian's `docker-registry` 2.8) per test, on 127.0.0.1 with a free port,
//! filesystem storage in a temporary directory and its access log in a file, in one of four modes: anonymous,
//! htpasswd (bcrypt), TLS (own CA) or ghcr-style bearer tokens from `tests/support/token_issuer.py`. It writes its
//! own config (the packaged one listens on all interfaces) and runs with a cleared environment, so no
//! `REGISTRY_*` variable of the caller's can change it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::http::{HARNESS_USER_AGENT, HttpResponse, curl, curl_result, plain_get_status};
use super::tls::{TestPki, make_pki};
use super::token::{ISSUER, SERVICE, TokenIssuer, TokenRequest};
use super::{run_ok, tool, wait_for};

/// The `Accept` header a manifest GET/HEAD must send to distribution 2.8 (else 404/400 for OCI content).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The four ways a test registry can be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Plain HTTP, no authentication.
    Anonymous,
    /// Plain HTTP, Basic credentials checked against a bcrypt htpasswd entry.
    Htpasswd { user: String, pass: String },
    /// HTTPS (HTTP/2) with a certificate from a fresh test CA ([`Registry::ca_file`]), no authentication.
    Tls,
    /// Plain HTTP, bearer tokens from a ghcr-style issuer: anonymous callers may pull, `user`/`pass` may push.
    Token { user: String, pass: String },
}

impl Mode {
    pub fn htpasswd(user: &str, pass: &str) -> Mode {
        Mode::Htpasswd { user: user.into(), pass: pass.into() }
    }
    pub fn token(user: &str, pass: &str) -> Mode {
        Mode::Token { user: user.into(), pass: pass.into() }
    }
}

/// Authentication of a registry started with [`Registry::start_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    #[default]
    None,
    Htpasswd {
        user: String,
        pass: String,
    },
    /// Tokens live `expires_in` seconds (300 like ghcr.io unless a test wants them to run out).
    Token {
        user: String,
        pass: String,
        expires_in: u64,
    },
}

/// Any combination of TLS and authentication (the four [`Mode`]s are the common ones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub tls: bool,
    pub auth: Auth,
}

impl From<Mode> for Options {
    fn from(mode: Mode) -> Options {
        match mode {
            Mode::Anonymous => Options::default(),
            Mode::Tls => Options { tls: true, auth: Auth::None },
            Mode::Htpasswd { user, pass } => Options { tls: false, auth: Auth::Htpasswd { user, pass } },
            Mode::Token { user, pass } => Options { tls: false, auth: Auth::Token { user, pass, expires_in: 300 } },
        }
    }
}

/// One access-log line: `127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 401 87 "" "curl/7.88.1"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub method: String,
    /// Path and query, as requested.
    pub path: String,
    /// `HTTP/1.1`, or `HTTP/2.0` over TLS.
    pub protocol: String,
    pub status: u16,
    pub user_agent: String,
}

impl AccessEntry {
    fn parse(line: &str) -> Option<AccessEntry> {
        let start = line.find('"')? + 1;
        let len = line[start..].find('"')?;
        let mut request = line[start..start + len].split_whitespace();
        let (method, path, protocol) = (request.next()?, request.next()?, request.next().unwrap_or(""));
        let rest = &line[start + len + 1..];
        let status = rest.split_whitespace().next()?.parse().ok()?;
        let ua = rest.trim_end().strip_suffix('"').and_then(|r| r.rfind('"').map(|i| &r[i + 1..])).unwrap_or("");
        Some(AccessEntry {
            method: method.into(),
            path: path.into(),
            protocol: protocol.into(),
            status,
            user_agent: ua.into(),
        })
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or(&self.path)
    }

    /// A request the harness itself made (readiness probes, log syncs, curl checks).
    pub fn is_harness(&self) -> bool {
        self.user_agent.starts_with(HARNESS_USER_AGENT)
    }
}

/// A running registry. Dropping it kills the process (and its token issuer) and deletes its storage.
pub struct Registry {
    child: Child,
    host: String,
    options: Options,
    pki: Option<TestPki>,
    issuer: Option<TokenIssuer>,
    access_log: PathBuf,
    registry_log: PathBuf,
    cert_dir: PathBuf,
    syncs: AtomicU64,
    started_in: Duration,
    dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SYNC_MARK: &str = "octopush-harness-sync=";

impl Registry {
    /// Starts a registry in `mode` and waits until `/v2/` answers.
    pub fn start(mode: Mode) -> Registry {
        Registry::start_with(mode.into())
    }

    /// Starts a registry with any combination of TLS and authentication.
    pub fn start_with(options: Options) -> Registry {
        let begin = Instant::now();
        let bin = tool("docker-registry");
        let dir = tempfile::Builder::new().prefix("octopush-registry-").tempdir().expect("tempdir");
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:0\n  secret: octopush-test-secret\n",
            data = dir.path().join("data").display()
        );
        let pki = options.tls.then(|| make_pki(&dir.path().join("pki")));
        if let Some(pki) = &pki {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                pki.server_cert.display(),
                pki.server_key.display()
            ));
        }
        let mut issuer = None;
        match &options.auth {
            Auth::None => {}
            Auth::Htpasswd { user, pass } => {
                let entry = run_ok(Command::new(tool("htpasswd")).args(["-Bbn", user, pass]));
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, entry.trim_end().to_string() + "\n").expect("write htpasswd");
                config
                    .push_str(&format!("auth:\n  htpasswd:\n    realm: octopush-test\n    path: {}\n", file.display()));
            }
            Auth::Token { user, pass, expires_in } => {
                let iss = TokenIssuer::start_with(user, pass, *expires_in);
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    \
                     rootcertbundle: {}\n",
                    iss.url(),
                    iss.cert_file().display()
                ));
                issuer = Some(iss);
            }
        }
        // skopeo's --dest-cert-dir: only the CA, as ca.crt (a *.cert/*.key pair there would be a client cert).
        let cert_dir = dir.path().join("certs.d");
        std::fs::create_dir_all(&cert_dir).expect("create certs.d");
        if let Some(pki) = &pki {
            std::fs::copy(&pki.ca_cert, cert_dir.join("ca.crt")).expect("copy CA");
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, &config).expect("write registry config");
        let (access_log, registry_log) = (dir.path().join("access.log"), dir.path().join("registry.log"));
        // The access log goes to stdout, everything else to stderr.
        let mut child = Command::new(&bin)
            .arg("serve")
            .arg(&config_path)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&access_log).expect("access log file"))
            .stderr(std::fs::File::create(&registry_log).expect("registry log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let host = wait_for("docker-registry to say `listening on`", Duration::from_secs(20), || {
            let log = std::fs::read_to_string(&registry_log).unwrap_or_default();
            if let Some(i) = log.find("listening on 127.0.0.1:") {
                let addr: String = log[i + "listening on ".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                return Some(addr);
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("docker-registry exited ({status}) before listening:\n{log}\n--- config\n{config}");
            }
            None
        });
        let mut reg = Registry {
            child,
            host,
            options,
            pki,
            issuer,
            access_log,
            registry_log,
            cert_dir,
            syncs: AtomicU64::new(0),
            started_in: Duration::ZERO,
            dir,
        };
        wait_for("the registry's /v2/ to answer", Duration::from_secs(20), || reg.probe("/v2/"));
        reg.started_in = begin.elapsed();
        reg
    }

    /// Status of a harness GET to `path`, `None` if nothing answers.
    fn probe(&self, path: &str) -> Option<u16> {
        match &self.pki {
            None => plain_get_status(&self.host, path),
            Some(pki) => {
                let ca = pki.ca_cert.to_string_lossy().into_owned();
                curl_result("GET", &format!("{}{path}", self.url()), &[], None, &["--cacert", &ca])
                    .ok()
                    .map(|r| r.status)
            }
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `http://127.0.0.1:PORT`, or `https://...` in TLS mode.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.pki.is_some() { "https" } else { "http" }, self.host)
    }

    /// `127.0.0.1:PORT/<repo_ref>`, e.g. `image("base/busybox:1")`.
    pub fn image(&self, repo_ref: &str) -> String {
        format!("{}/{repo_ref}", self.host)
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The user and password that may push, if the registry wants credentials.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match &self.options.auth {
            Auth::None => None,
            Auth::Htpasswd { user, pass } | Auth::Token { user, pass, .. } => Some((user, pass)),
        }
    }

    /// The test CA's certificate (PEM) that clients must trust. Panics unless TLS is on.
    pub fn ca_file(&self) -> &Path {
        &self.pki.as_ref().expect("ca_file(): this registry was not started with TLS").ca_cert
    }

    /// A directory holding only `ca.crt` (empty without TLS), for `skopeo --dest-cert-dir` and the like.
    pub fn cert_dir(&self) -> &Path {
        &self.cert_dir
    }

    /// The token issuer. Panics unless the registry uses token auth.
    pub fn issuer(&self) -> &TokenIssuer {
        self.issuer.as_ref().expect("issuer(): this registry was not started in token mode")
    }

    /// Token requests so far that did not come from the harness (empty unless token mode).
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.issuer.as_ref().map(|i| i.requests()).unwrap_or_default()
    }

    /// How long start-up took, config writing and certificate/issuer creation included.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The registry's own (non-access) log so far.
    pub fn registry_log(&self) -> String {
        std::fs::read_to_string(&self.registry_log).unwrap_or_default()
    }

    /// Makes sure every request answered so far is in the access log: sends a marked request and waits for its
    /// line (the registry writes a line when its handler returns, which can be after the client saw the body).
    fn sync(&self) {
        let n = self.syncs.fetch_add(1, Ordering::SeqCst);
        let path = format!("/v2/?{SYNC_MARK}{n}");
        wait_for("the registry to answer a log-sync request", Duration::from_secs(10), || self.probe(&path));
        let needle = format!("{SYNC_MARK}{n} ");
        wait_for("the log-sync request in the access log", Duration::from_secs(10), || {
            std::fs::read_to_string(&self.access_log).unwrap_or_default().contains(&needle).then_some(())
        });
    }

    /// The whole access log so far (every request, the harness's own readiness probes and syncs included).
    pub fn access_log(&self) -> String {
        self.sync();
        std::fs::read_to_string(&self.access_log).unwrap_or_default()
    }

    /// Every access-log entry so far, parsed, the harness's own included.
    pub fn access_entries(&self) -> Vec<AccessEntry> {
        self.access_log().lines().filter_map(AccessEntry::parse).collect()
    }

    /// Requests so far that did not come from the harness, were not 401 auth challenges, used `method` and whose
    /// path contains `needle`.
    pub fn requests(&self, method: &str, needle: &str) -> Vec<AccessEntry> {
        self.counted().into_iter().filter(|e| e.method == method && e.path.contains(needle)).collect()
    }

    /// The entries the counting helpers look at: not the harness's own requests, not 401 challenges.
    fn counted(&self) -> Vec<AccessEntry> {
        self.access_entries().into_iter().filter(|e| !e.is_harness() && e.status != 401).collect()
    }

    /// How many times `GET /v2/<any repo>/blobs/<digest>` was served (HEADs, 401s and harness reads not counted):
    /// how often a layer was downloaded.
    pub fn blob_gets(&self, digest: &str) -> usize {
        let suffix = format!("/blobs/{digest}");
        self.counted().iter().filter(|e| e.method == "GET" && e.path_only().ends_with(&suffix)).count()
    }

    /// How many blob-upload requests (POST, PATCH and PUT under `/blobs/uploads/`, mount POSTs included) were
    /// made. A monolithic upload is a POST and a PUT; use [`Registry::blob_puts`] to count finished blobs.
    pub fn blob_uploads(&self) -> usize {
        self.counted()
            .iter()
            .filter(|e| matches!(e.method.as_str(), "POST" | "PUT" | "PATCH") && e.path.contains("/blobs/uploads/"))
            .count()
    }

    /// How many blob uploads were completed (PUT `/blobs/uploads/...?digest=` answered 201).
    pub fn blob_puts(&self) -> usize {
        self.counted()
            .iter()
            .filter(|e| e.method == "PUT" && e.path.contains("/blobs/uploads/") && e.status == 201)
            .count()
    }

    /// How many cross-repository mounts succeeded (POST `...?mount=` answered 201).
    pub fn blob_mounts(&self) -> usize {
        self.counted().iter().filter(|e| e.method == "POST" && e.path.contains("mount=") && e.status == 201).count()
    }

    /// How many manifests (or indexes) were stored (PUT `/manifests/` answered 201).
    pub fn manifest_puts(&self) -> usize {
        self.counted().iter().filter(|e| e.method == "PUT" && e.path.contains("/manifests/") && e.status == 201).count()
    }

    /// curl options that authenticate a request to `path` as the configured user (none when anonymous) and
    /// trust the test CA.
    fn auth_args(&self, method: &str, path: &str, anonymous: bool) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(pki) = &self.pki {
            args.extend(["--cacert".to_string(), pki.ca_cert.to_string_lossy().into_owned()]);
        }
        match &self.options.auth {
            Auth::None => {}
            Auth::Htpasswd { user, pass } => {
                if !anonymous {
                    args.extend(["-u".to_string(), format!("{user}:{pass}")]);
                }
            }
            Auth::Token { user, pass, .. } => {
                let scope = scope_for(method, path);
                let scopes: Vec<&str> = scope.iter().map(String::as_str).collect();
                let creds = (!anonymous).then_some((user.as_str(), pass.as_str()));
                let token = self.issuer().token(&scopes, creds);
                args.extend(["-H".to_string(), format!("Authorization: Bearer {token}")]);
            }
        }
        args
    }

    /// A request to `path` (e.g. `/v2/base/busybox/tags/list`) with curl, authenticated as the configured user
    /// (a bearer token fetched from the issuer for the scope the path needs, in token mode).
    pub fn curl(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> HttpResponse {
        let args = self.auth_args(method, path, false);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(method, &format!("{}{path}", self.url()), headers, body, &args)
    }

    /// Like [`Registry::curl`] but as an anonymous caller (in token mode: with an anonymous, pull-only token).
    pub fn curl_anonymous(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpResponse {
        let args = self.auth_args(method, path, true);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(method, &format!("{}{path}", self.url()), headers, body, &args)
    }

    /// `GET /v2/<repo>/manifests/<reference>` with the OCI and Docker types accepted: the full response.
    pub fn manifest_response(&self, repo: &str, reference: &str) -> HttpResponse {
        self.curl("GET", &format!("/v2/{repo}/manifests/{reference}"), &[("Accept", MANIFEST_ACCEPT)], None)
    }

    /// The manifest bytes and the `Docker-Content-Digest` header; panics unless the registry answers 200.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> (Vec<u8>, String) {
        let resp = self.manifest_response(repo, reference);
        assert_eq!(resp.status, 200, "GET manifest {repo}:{reference} from {}: {}", self.host, resp.text());
        let digest = resp.header("docker-content-digest").unwrap_or_default().to_string();
        (resp.body, digest)
    }

    /// The manifest parsed as JSON, with its content type (`application/vnd.oci.image.index.v1+json`...).
    pub fn get_manifest_json(&self, repo: &str, reference: &str) -> (serde_json::Value, String) {
        let resp = self.manifest_response(repo, reference);
        assert_eq!(resp.status, 200, "GET manifest {repo}:{reference} from {}: {}", self.host, resp.text());
        (resp.json(), resp.header("content-type").unwrap_or_default().to_string())
    }

    /// A blob's bytes; panics unless 200.
    pub fn get_blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let resp = self.curl("GET", &format!("/v2/{repo}/blobs/{digest}"), &[], None);
        assert_eq!(resp.status, 200, "GET blob {repo}@{digest} from {}: {}", self.host, resp.text());
        resp.body
    }

    /// Whether `HEAD /v2/<repo>/blobs/<digest>` answers 200.
    pub fn has_blob(&self, repo: &str, digest: &str) -> bool {
        self.curl("HEAD", &format!("/v2/{repo}/blobs/{digest}"), &[], None).status == 200
    }

    /// The repository's tags, sorted; empty if the repository is unknown.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let resp = self.curl("GET", &format!("/v2/{repo}/tags/list"), &[], None);
        if resp.status == 404 {
            return Vec::new();
        }
        assert_eq!(resp.status, 200, "GET tags of {repo}: {}", resp.text());
        let mut tags: Vec<String> = resp.json()["tags"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t.as_str().map(String::from)).collect())
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// skopeo options to write to this registry as the configured user: `--dest-creds` (or `--dest-no-creds`)
    /// and TLS settings (the test CA, or plain HTTP with `--dest-tls-verify=false`).
    pub fn skopeo_dest_args(&self) -> Vec<String> {
        self.skopeo_args("dest", false)
    }

    /// skopeo options to read from this registry (`--src-...`), anonymously if `anonymous`.
    pub fn skopeo_src_args(&self, anonymous: bool) -> Vec<String> {
        self.skopeo_args("src", anonymous)
    }

    fn skopeo_args(&self, side: &str, anonymous: bool) -> Vec<String> {
        let mut args = Vec::new();
        if self.pki.is_some() {
            args.push(format!("--{side}-cert-dir={}", self.cert_dir.display()));
        } else {
            args.push(format!("--{side}-tls-verify=false"));
        }
        match self.credentials() {
            Some((u, p)) if !anonymous => args.push(format!("--{side}-creds={u}:{p}")),
            _ => args.push(format!("--{side}-no-creds")),
        }
        args
    }

    /// `skopeo copy [--all] SRC docker://HOST/<dest>` with the right credentials and TLS settings, digests
    /// preserved. Panics with skopeo's output on failure.
    pub fn skopeo_copy_to(&self, src: &str, dest: &str, all: bool) -> String {
        let out = self.skopeo_copy_to_result(src, dest, all, false);
        if !out.status.success() {
            panic!("skopeo copy {src} -> {dest} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Like [`Registry::skopeo_copy_to`], returning skopeo's output whatever happened; `anonymous` pushes
    /// without credentials.
    pub fn skopeo_copy_to_result(&self, src: &str, dest: &str, all: bool, anonymous: bool) -> std::process::Output {
        let mut cmd = Command::new(tool("skopeo"));
        cmd.args(["--insecure-policy", "copy", "--retry-times=0", "--preserve-digests"]);
        if all {
            cmd.arg("--all");
        }
        cmd.args(self.skopeo_args("dest", anonymous)).arg(src).arg(format!("docker://{}/{dest}", self.host));
        // No auth.json of the developer's may answer for us.
        cmd.env("REGISTRY_AUTH_FILE", self.dir.path().join("no-auth.json"));
        super::run(&mut cmd)
    }

    /// The registry's temporary directory (config, logs, storage under `data/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The token scope a request to `path` needs: `repository:NAME:pull` for reads, `pull,push` for writes,
/// `pull,push,delete` for DELETE; none for `/v2/`.
fn scope_for(method: &str, path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    let rest = rest.split('?').next().unwrap_or(rest);
    let end = ["/manifests/", "/blobs/", "/tags/"].iter().filter_map(|m| rest.rfind(m)).max()?;
    let actions = match method {
        "GET" | "HEAD" => "pull",
        "DELETE" => "pull,push,delete",
        _ => "pull,push",
    };
    Some(format!("repository:{}:{actions}", &rest[..end]))
}

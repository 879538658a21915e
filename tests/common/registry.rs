//! A real CNCF distribution registry (Debian's `docker-registry` 2.8) per test, on 127.0.0.1 with a free port,
//! filesystem storage in a temporary directory and its access log in a file, in one of four modes: anonymous,
//! htpasswd (bcrypt), TLS (own CA) or ghcr-style bearer tokens from `tests/support/token_issuer.py`. It writes its
//! own config (the packaged one listens on all interfaces) and runs with a cleared environment, so no
//! `REGISTRY_*` variable of the caller's can change it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::access::AccessEntry;
use super::http::{curl_result, plain_get_status};
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
        /// What the issuer grants the user (`pull,push,delete,*`; `pull` makes a registry the user may only read).
        actions: String,
    },
}

impl Auth {
    /// Token auth as ghcr.io does it: the user gets what it asks for, tokens valid 300 s.
    pub fn token(user: &str, pass: &str) -> Auth {
        Auth::Token { user: user.into(), pass: pass.into(), expires_in: 300, actions: "pull,push,delete,*".into() }
    }
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
            Mode::Token { user, pass } => Options { tls: false, auth: Auth::token(&user, &pass) },
        }
    }
}

/// A running registry. Dropping it kills the process (and its token issuer) and deletes its storage.
pub struct Registry {
    child: Child,
    host: String,
    pub(super) options: Options,
    pub(super) pki: Option<TestPki>,
    pub(super) issuer: Option<TokenIssuer>,
    access_log: PathBuf,
    registry_log: PathBuf,
    pub(super) cert_dir: PathBuf,
    syncs: AtomicU64,
    started_in: Duration,
    pub(super) dir: tempfile::TempDir,
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
            Auth::Token { user, pass, expires_in, actions } => {
                let iss = TokenIssuer::start_granting(user, pass, *expires_in, actions);
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

    /// The registry's temporary directory (config, logs, storage under `data/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

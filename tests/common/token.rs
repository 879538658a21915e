//! The ghcr-style token issuer (`tests/support/token_issuer.py`) as a process owned by a test: Basic
//! credentials in, RS256 JWTs with an `x5c` header out, one JSON log line per request so tests can count token
//! requests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use serde::Deserialize;

use super::http::{HttpResponse, curl};
use super::start_support_script;

/// The service name the registry announces and the issuer puts in `aud`.
pub const SERVICE: &str = "octopush-test-registry";
/// The `iss` claim, which the registry checks.
pub const ISSUER: &str = "octopush-test-issuer";

/// One request the issuer answered, as it logged it (never with credentials).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenRequest {
    /// `GET` or `POST` (OAuth2 form).
    pub method: String,
    pub path: String,
    pub service: String,
    /// Every `scope` asked for, e.g. `repository:octo/app:pull,push`.
    pub scopes: Vec<String>,
    /// The Basic user name, `None` for an anonymous caller.
    pub account: Option<String>,
    /// 200, or 401 for wrong credentials.
    pub status: u16,
    /// What the token grants, one entry per valid scope.
    pub granted: Vec<Grant>,
    /// True for the harness's own requests (`X-Octopush-Harness` header).
    pub harness: bool,
    pub user_agent: String,
}

/// One `access` claim entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Grant {
    #[serde(rename = "type")]
    pub typ: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// A running token issuer on 127.0.0.1.
pub struct TokenIssuer {
    child: Child,
    port: u16,
    cert: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TokenIssuer {
    /// Starts an issuer that knows one account, with tokens valid for 300 s.
    pub fn start(user: &str, pass: &str) -> TokenIssuer {
        TokenIssuer::start_with(user, pass, 300)
    }

    /// Starts an issuer whose tokens expire after `expires_in` seconds (for token-refresh tests).
    pub fn start_with(user: &str, pass: &str, expires_in: u64) -> TokenIssuer {
        TokenIssuer::start_granting(user, pass, expires_in, "pull,push,delete,*")
    }

    /// Starts an issuer that grants the user at most `actions` (comma-separated).
    pub fn start_granting(user: &str, pass: &str, expires_in: u64, actions: &str) -> TokenIssuer {
        let dir = tempfile::Builder::new().prefix("octopush-issuer-").tempdir().expect("tempdir");
        let (cert, log, err) =
            (dir.path().join("issuer.crt"), dir.path().join("issuer.log"), dir.path().join("stderr"));
        let configure = |cmd: &mut Command| {
            cmd.args(["--user", user, "--issuer", ISSUER, "--expires-in", &expires_in.to_string()])
                .args(["--authenticated-actions", actions, "--cert-out"])
                .arg(&cert)
                .arg("--log")
                .arg(&log)
                .env("TOKEN_ISSUER_PASSWORD", pass);
        };
        let (child, port) = start_support_script("token_issuer.py", configure, &err).unwrap_or_else(|stderr| {
            let hint = if stderr.contains("No module named 'cryptography'") {
                "python3 cannot import cryptography: run scripts/install-test-deps.sh\n"
            } else {
                ""
            };
            panic!("{hint}the token issuer did not print its port; its stderr:\n{stderr}");
        });
        TokenIssuer { child, port, cert, log, _dir: dir }
    }

    /// The realm: `http://127.0.0.1:PORT/token`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM certificate whose key signs the tokens (the registry's `rootcertbundle`).
    pub fn cert_file(&self) -> &Path {
        &self.cert
    }

    /// Every request so far, the harness's own included.
    pub fn all_requests(&self) -> Vec<TokenRequest> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad issuer log line {l}: {e}")))
            .collect()
    }

    /// The requests so far that did not come from the harness itself (the ones a test usually counts).
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.all_requests().into_iter().filter(|r| !r.harness).collect()
    }

    /// Asks for a token with curl (marked as the harness's own request). `creds` `None` is an anonymous caller.
    /// Returns the raw response: 200 with `{"token",...}`, or 401 for wrong credentials.
    pub fn request_token(&self, scopes: &[&str], creds: Option<(&str, &str)>) -> HttpResponse {
        let mut url = format!("{}?service={SERVICE}", self.url());
        for s in scopes {
            url.push_str("&scope=");
            url.push_str(&s.replace(' ', "%20"));
        }
        let userpass = creds.map(|(u, p)| format!("{u}:{p}"));
        let mut extra = Vec::new();
        if let Some(up) = &userpass {
            extra.extend(["-u", up.as_str()]);
        }
        curl("GET", &url, &[("X-Octopush-Harness", "1")], None, &extra)
    }

    /// A token for `scopes`, panicking unless the issuer answers 200.
    pub fn token(&self, scopes: &[&str], creds: Option<(&str, &str)>) -> String {
        let resp = self.request_token(scopes, creds);
        assert_eq!(resp.status, 200, "token request for {scopes:?} failed: {}", resp.text());
        resp.json()["token"].as_str().expect("token in the issuer's answer").to_string()
    }
}

/// The claims of a JWT, decoded without checking the signature (the registry does that).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    jwt_part(token, 1)
}

/// The header of a JWT (`alg`, `x5c`...).
pub fn jwt_header(token: &str) -> serde_json::Value {
    jwt_part(token, 0)
}

fn jwt_part(token: &str, index: usize) -> serde_json::Value {
    use base64::Engine as _;
    let part = token.split('.').nth(index).unwrap_or_else(|| panic!("not a JWT: {token}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("JWT part is base64url");
    serde_json::from_slice(&bytes).expect("JWT part is JSON")
}

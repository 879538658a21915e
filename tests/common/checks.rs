//! Independent checks of what is in a test registry: curl requests authenticated as each mode wants (Basic,
//! or a bearer token fetched from the issuer for the scope the path needs; the test CA in TLS mode), and skopeo
//! options and copies. Never octopush's own client.

use std::process::Command;

use super::http::{HttpResponse, curl};
use super::registry::{Auth, MANIFEST_ACCEPT, Registry};
use super::tool;

impl Registry {
    /// curl options that authenticate a request to `path` as the configured user (none when anonymous) and
    /// trust the test CA.
    pub(super) fn auth_args(&self, method: &str, path: &str, anonymous: bool) -> Vec<String> {
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
        assert_eq!(resp.status, 200, "GET manifest {repo}:{reference} from {}: {}", self.host(), resp.text());
        let digest = resp.header("docker-content-digest").unwrap_or_default().to_string();
        (resp.body, digest)
    }

    /// The manifest parsed as JSON, with its content type (`application/vnd.oci.image.index.v1+json`...).
    pub fn get_manifest_json(&self, repo: &str, reference: &str) -> (serde_json::Value, String) {
        let resp = self.manifest_response(repo, reference);
        assert_eq!(resp.status, 200, "GET manifest {repo}:{reference} from {}: {}", self.host(), resp.text());
        (resp.json(), resp.header("content-type").unwrap_or_default().to_string())
    }

    /// A blob's bytes; panics unless 200.
    pub fn get_blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let resp = self.curl("GET", &format!("/v2/{repo}/blobs/{digest}"), &[], None);
        assert_eq!(resp.status, 200, "GET blob {repo}@{digest} from {}: {}", self.host(), resp.text());
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
        cmd.args(self.skopeo_args("dest", anonymous)).arg(src).arg(format!("docker://{}/{dest}", self.host()));
        // No auth.json of the developer's may answer for us.
        cmd.env("REGISTRY_AUTH_FILE", self.dir.path().join("no-auth.json"));
        super::run(&mut cmd)
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

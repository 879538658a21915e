//! Registry failures as typed values: parsed from the distribution spec's `{"errors":[...]}` envelope, worded to
//! say what to change, classified for the retry policy, and never carrying a token, password or `Authorization`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::image::Digest;

/// Whether an operation reads or writes a repository: decides token scopes and the advice in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    /// Deleting a manifest (distribution's token scope `delete`).
    Delete,
}

/// The advice for a refused push, registry-independent because GitHub's registries are the usual case.
pub const PUSH_PERMISSION_HINT: &str = "give the workflow `permissions: packages: write`, and if the package already \
    exists, grant this repository write access under the package's \"Manage Actions access\" settings (or link the \
    package to this repository with the `org.opencontainers.image.source` label); for other registries, check that \
    the `username` and `password` inputs may push to this repository";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{}", unauthorized(registry, repository, *action, username.as_deref()))]
    Unauthorized { registry: String, repository: String, action: Action, username: Option<String> },

    #[error("the registry {registry} rejected the credentials for {username}: check {origin}")]
    BadCredentials { registry: String, username: String, origin: String },

    #[error("{}", denied(registry, repository, *action, message))]
    Denied { registry: String, repository: String, action: Action, message: String },

    #[error("{registry}/{repository} has no {what}: check the image name and reference")]
    NotFound { registry: String, repository: String, what: String },

    #[error("the registry {registry} answered {status} to {request}{}", code_message(code, message))]
    Registry {
        registry: String,
        status: u16,
        /// Method and URL, without the query string: upload URLs carry opaque state that only clutters a message.
        request: String,
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },

    #[error(
        "cannot connect to the registry {registry} ({detail}): check the `registry` input (host[:port]) and that \
         the registry is reachable from here"
    )]
    Connect {
        registry: String,
        detail: String,
        /// The host had answered before in this run, so this is a dropped connection, worth retrying.
        mid_transfer: bool,
    },

    #[error(
        "the TLS connection to {registry} failed ({detail}): if the registry uses a private certificate authority, \
         pass its PEM certificate in the `ca_file` input"
    )]
    Tls { registry: String, detail: String },

    #[error(
        "{registry} accepted a connection but answered neither the TLS handshake nor plain HTTP within {} s: check \
         that the `registry` input's port is the registry's",
        waited.as_secs_f64()
    )]
    NoAnswer { registry: String, waited: Duration },

    #[error("the connection to {registry} failed during {what} ({detail})")]
    Transport { registry: String, what: String, detail: String, temporary: bool },

    #[error("{what} from {registry} has digest {actual}, expected {expected}: the content was changed on the way")]
    DigestMismatch { registry: String, what: String, expected: Digest, actual: Digest },

    #[error("the registry {registry} broke the distribution protocol: {message}")]
    Protocol { registry: String, message: String },

    /// A server that answers, but not as a distribution registry does: it claimed to hold or store something
    /// without the proof the spec requires (a digest, a 201, the tag reading back). Nothing it said is trusted.
    #[error(
        "{registry} does not speak the OCI distribution API ({message}), so nothing can be taken as stored there: \
         check that the `registry` or `images` input names a container registry (host and port)"
    )]
    NotDistribution { registry: String, message: String },

    #[error(
        "{reference} has no image for {wanted}; it offers {}: set `platforms` to one of them or pick another base",
        if available.is_empty() { "none".to_string() } else { available.join(", ") }
    )]
    NoMatchingPlatform { reference: String, wanted: String, available: Vec<String> },

    #[error("{reference} is not a container image: {detail}")]
    NotAnImage { reference: String, detail: String },

    #[error("the tag `{0}` is not valid: use at most 128 characters from `A-Za-z0-9_.-`, not starting with `.` or `-`")]
    InvalidTag(String),

    #[error("cannot use the CA file {path}: {detail}: pass a PEM file of certificates in the `ca_file` input")]
    CaFile { path: PathBuf, detail: String },

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("cannot set up the HTTP client: {0}")]
    Client(String),

    #[error(
        "the docker config gives {registry} an identity token, but {registry} asks for a user name and password \
         (Basic auth), which an identity token cannot stand for: log in to it with a password \
         (`docker login {registry}`), or give its credentials in `registry_auth`"
    )]
    IdentityTokenWithBasic { registry: String },

    /// Credentials from a docker `config.json` could not be had (its credential helper failed).
    #[error(transparent)]
    DockerConfig(#[from] super::docker_config::DockerConfigError),
}

fn unauthorized(registry: &str, repository: &str, action: Action, username: Option<&str>) -> String {
    match (action, username) {
        (Action::Push, Some(u)) => {
            format!("the registry {registry} did not let {u} push to {registry}/{repository}: {PUSH_PERMISSION_HINT}")
        }
        (Action::Push, None) if registry == "ghcr.io" || registry == "docker.pkg.github.com" => format!(
            "pushing to {registry}/{repository} needs credentials: set the `username` and `password` inputs, and \
             {PUSH_PERMISSION_HINT}"
        ),
        // `username` and `password` go only to GitHub's registries and the `registry` input's host.
        (Action::Push, None) => format!(
            "pushing to {registry}/{repository} needs credentials and none were given for {registry}: add a \
             `registry_auth` line `{registry}=USERNAME:PASSWORD` (from secrets), or, when it is the `registry` input, \
             set `username` and `password`"
        ),
        (Action::Pull, Some(u)) => format!(
            "the registry {registry} did not let {u} pull {registry}/{repository}: check the image name and that \
             the `username` and `password` inputs may read it"
        ),
        (Action::Pull, None) => format!(
            "pulling {registry}/{repository} needs credentials: check the image name (registries answer 401 for \
             repositories that do not exist) or set the `username` and `password` inputs"
        ),
        (Action::Delete, _) => format!(
            "the registry {registry} did not let these credentials delete manifests of {registry}/{repository}: \
             they need delete rights there"
        ),
    }
}

fn denied(registry: &str, repository: &str, action: Action, message: &str) -> String {
    let said = if message.is_empty() { String::new() } else { format!(" ({message})") };
    match action {
        Action::Push if registry == "ghcr.io" => {
            format!("push to {registry}/{repository} was denied{said}: {}", ghcr_push_advice(repository, message))
        }
        Action::Push => format!("push to {registry}/{repository} was denied{said}: {PUSH_PERMISSION_HINT}"),
        Action::Pull => format!(
            "reading {registry}/{repository} was denied{said}: check that the `username` and `password` inputs may \
             read it"
        ),
        Action::Delete => format!("deleting from {registry}/{repository} was denied{said}"),
    }
}

/// What ghcr.io's refusal of a push means, from its wording: the workflow token lacks `packages: write` (its scope
/// shows it), the package does not give this repository write access ("Manage Actions access"), or the
/// organisation does not let workflow tokens create packages. `permission_denied: write_package` can be the first
/// or the second, so it gets both fixes.
pub fn ghcr_push_advice(repository: &str, message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    let owner = repository.split('/').next().unwrap_or(repository);
    let package = repository.split_once('/').map(|(_, p)| p).unwrap_or(repository);
    let settings = format!(
        "https://github.com/orgs/{owner}/packages/container/{}/settings (https://github.com/users/{owner}/... for a \
         personal account)",
        package.replace('/', "%2F")
    );
    if lower.contains("does not match expected scopes") || lower.contains("scope") {
        "the token may not write packages: give the job `permissions: packages: write` (or use a token with the \
         `write:packages` scope)"
            .to_string()
    } else if lower.contains("not allowed to create") {
        format!(
            "the organisation {owner} does not let workflow tokens create packages: an organisation owner can allow it \
             under Settings > Packages, or create the package once by hand and give this repository write access \
             under its \"Manage Actions access\""
        )
    } else if lower.contains("not allowed to write") {
        format!(
            "the package exists and does not give this repository write access: add the repository with the Write \
             role under \"Manage Actions access\" at {settings}"
        )
    } else {
        PUSH_PERMISSION_HINT.to_string()
    }
}

fn code_message(code: &str, message: &str) -> String {
    match (code.is_empty(), message.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(": {code}"),
        (true, false) => format!(": {message}"),
        (false, false) => format!(": {code}: {message}"),
    }
}

impl RegistryError {
    /// Whether trying the same operation again may succeed: 408, 429, 5xx, dropped connections and timeouts.
    pub fn is_temporary(&self) -> bool {
        match self {
            // DIGEST_INVALID: the registry got other bytes than we sent (we hash what we send, from its source):
            // a body cut or changed on the way. Sending it again from its source may succeed.
            RegistryError::Registry { status, code, .. } => {
                matches!(status, 408 | 429 | 500..=599)
                    || code == "TOOMANYREQUESTS"
                    || code == "UNAVAILABLE"
                    || code == "DIGEST_INVALID"
            }
            RegistryError::Connect { mid_transfer, .. } => *mid_transfer,
            RegistryError::Transport { temporary, .. } => *temporary,
            _ => false,
        }
    }

    /// A manifest PUT refused because a blob (or child manifest) it references is unknown: right after the blob
    /// was uploaded, another job pushing into the same repository can cause this; HEAD and upload again, then
    /// put the manifest again.
    pub fn is_blob_unknown(&self) -> bool {
        matches!(self, RegistryError::Registry { code, .. } if code == "MANIFEST_BLOB_UNKNOWN" || code == "BLOB_UNKNOWN")
    }

    /// How long the registry asked us to wait (`Retry-After` on 429 and 503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RegistryError::Registry { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// One entry of the distribution spec's error envelope.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ErrorEntry {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

/// The entries of `{"errors":[{code,message,detail}]}`; empty when the body is something else.
pub fn parse_envelope(body: &[u8]) -> Vec<ErrorEntry> {
    serde_json::from_slice::<Envelope>(body).map(|e| e.errors).unwrap_or_default()
}

/// `code` and `message` summarising a response body: the envelope's entries, or the start of a non-JSON body
/// (a proxy's HTML page). Secrets that a misbehaving server might echo are scrubbed.
pub(crate) fn summarise_body(body: &[u8]) -> (String, String) {
    let entries = parse_envelope(body);
    if entries.is_empty() {
        let text = String::from_utf8_lossy(body);
        let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        return (String::new(), scrub(&truncate(&line, 200)));
    }
    let code = entries[0].code.clone();
    let message = entries
        .iter()
        .map(|e| {
            let detail = match &e.detail {
                Some(serde_json::Value::String(s)) if !s.is_empty() => format!(" ({})", truncate(s, 200)),
                Some(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                    let s = v.to_string();
                    if s.len() <= 200 { format!(" ({s})") } else { String::new() }
                }
                _ => String::new(),
            };
            format!("{}{detail}", e.message)
        })
        .collect::<Vec<_>>()
        .join("; ");
    (code, scrub(&message))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Replaces what follows `Bearer ` / `Basic ` (an echoed `Authorization` value) with `<redacted>`.
pub(crate) fn scrub(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let lower = rest.to_ascii_lowercase();
        let hit = ["bearer ", "basic "].iter().filter_map(|k| lower.find(k).map(|i| (i, k.len()))).min();
        let Some((i, len)) = hit else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i + len]);
        let after = &rest[i + len..];
        let end = after.find(|c: char| c.is_whitespace() || c == '"' || c == ',').unwrap_or(after.len());
        if end > 0 {
            out.push_str("<redacted>");
        }
        rest = &after[end..];
    }
}

/// A URL for a message: scheme, host and path, no query (upload state) and no user info.
pub(crate) fn display_url(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ghcr_refusals_say_which_fix_applies() {
        let scope =
            ghcr_push_advice("octo-org/app", "permission_denied: The token provided does not match expected scopes.");
        assert!(scope.contains("`permissions: packages: write`"), "{scope}");
        let access =
            ghcr_push_advice("octo-org/app/web", "denied: installation not allowed to Write organization package");
        assert!(access.contains("Manage Actions access"), "{access}");
        assert!(access.contains("https://github.com/orgs/octo-org/packages/container/app%2Fweb/settings"), "{access}");
        let create =
            ghcr_push_advice("octo-org/app", "denied: installation not allowed to Create organization package");
        assert!(create.contains("does not let workflow tokens create packages"), "{create}");
        assert_eq!(ghcr_push_advice("octo-org/app", "something else"), PUSH_PERMISSION_HINT);
        let e = RegistryError::Denied {
            registry: "ghcr.io".into(),
            repository: "octo-org/app".into(),
            action: Action::Push,
            message: "permission_denied: write_package".into(),
        };
        assert!(e.to_string().contains("Manage Actions access"), "{e}");
    }

    #[test]
    fn envelope_is_parsed_and_summarised() {
        let body = br#"{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"blob upload invalid","detail":"digest mismatch"},{"code":"X","message":"second","detail":[{"Type":"repository","Name":"a","Action":"push"}]}]}"#;
        let entries = parse_envelope(body);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].code, "BLOB_UPLOAD_INVALID");
        let (code, message) = summarise_body(body);
        assert_eq!(code, "BLOB_UPLOAD_INVALID");
        assert!(message.starts_with("blob upload invalid (digest mismatch); second ("), "{message}");
        assert!(message.contains(r#""Action":"push""#), "{message}");
        assert!(parse_envelope(b"<html>502 Bad Gateway</html>").is_empty());
        assert_eq!(
            summarise_body(b"<html>\n502   Bad\nGateway</html>"),
            (String::new(), "<html> 502 Bad Gateway</html>".into())
        );
        assert!(parse_envelope(b"").is_empty());
    }

    #[test]
    fn echoed_authorization_values_are_scrubbed() {
        let s = scrub("denied for header Bearer eyJhbGciOi.secret.sig, and basic dXNlcjpwYXNz end");
        assert_eq!(s, "denied for header Bearer <redacted>, and basic <redacted> end");
        assert!(!s.contains("eyJ") && !s.contains("dXNl"));
        assert_eq!(scrub("no secrets here"), "no secrets here");
        let (_, m) = summarise_body(br#"{"errors":[{"code":"DENIED","message":"bad Authorization: Bearer abc.def"}]}"#);
        assert!(!m.contains("abc.def"), "{m}");
    }

    #[test]
    fn push_refusals_name_the_workflow_permission_and_package_access() {
        for e in [
            RegistryError::Unauthorized {
                registry: "ghcr.io".into(),
                repository: "octo-org/app".into(),
                action: Action::Push,
                username: Some("octocat".into()),
            },
            RegistryError::Denied {
                registry: "ghcr.io".into(),
                repository: "octo-org/app".into(),
                action: Action::Push,
                message: "permission_denied: write_package".into(),
            },
        ] {
            let m = e.to_string();
            assert!(m.contains("ghcr.io/octo-org/app"), "{m}");
            assert!(m.contains("permissions: packages: write"), "{m}");
            assert!(m.contains("Manage Actions access"), "{m}");
            assert!(m.contains("org.opencontainers.image.source"), "{m}");
            assert!(!e.is_temporary());
        }
    }

    #[test]
    fn other_messages_name_the_input_to_fix() {
        let m = RegistryError::BadCredentials {
            registry: "127.0.0.1:5000".into(),
            username: "user".into(),
            origin: "the `username` and `password` inputs".into(),
        }
        .to_string();
        assert_eq!(
            m,
            "the registry 127.0.0.1:5000 rejected the credentials for user: check the `username` and `password` inputs"
        );
        let m = RegistryError::Connect {
            registry: "registry.example:5000".into(),
            detail: "connection refused".into(),
            mid_transfer: false,
        }
        .to_string();
        assert!(m.contains("registry.example:5000") && m.contains("`registry` input"), "{m}");
        let m =
            RegistryError::Tls { registry: "r.example".into(), detail: "invalid peer certificate".into() }.to_string();
        assert!(m.contains("`ca_file`"), "{m}");
        let m = RegistryError::NoMatchingPlatform {
            reference: "busybox:1".into(),
            wanted: "linux/s390x".into(),
            available: vec!["linux/amd64".into(), "linux/arm64/v8".into()],
        }
        .to_string();
        assert!(m.contains("linux/amd64, linux/arm64/v8") && m.contains("linux/s390x"), "{m}");
    }

    #[test]
    fn temporary_classification() {
        let reg = |status, code: &str| RegistryError::Registry {
            registry: "r".into(),
            status,
            request: "GET u".into(),
            code: code.into(),
            message: String::new(),
            retry_after: None,
        };
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(reg(s, "").is_temporary(), "{s}");
        }
        for s in [400, 404, 405, 413] {
            assert!(!reg(s, "").is_temporary(), "{s}");
        }
        assert!(reg(400, "TOOMANYREQUESTS").is_temporary());
        // Issue 13, finding 4: the registry saw other bytes than we sent; from the source again they may arrive.
        assert!(reg(400, "DIGEST_INVALID").is_temporary());
        assert!(!reg(400, "MANIFEST_INVALID").is_temporary());
        assert!(
            reg(400, "MANIFEST_BLOB_UNKNOWN").is_blob_unknown() && !reg(400, "MANIFEST_BLOB_UNKNOWN").is_temporary()
        );
        let c = |mid_transfer| RegistryError::Connect { registry: "r".into(), detail: "d".into(), mid_transfer };
        assert!(!c(false).is_temporary(), "a registry that never answered is a configuration problem");
        assert!(c(true).is_temporary());
    }

    #[test]
    fn display_url_drops_query_and_userinfo() {
        let u = url::Url::parse("https://u:p@ghcr.io/v2/a/blobs/uploads/x?_state=abc&digest=sha256:1").unwrap();
        assert_eq!(display_url(&u), "https://ghcr.io/v2/a/blobs/uploads/x");
    }
}

//! Registry authentication: parsing `WWW-Authenticate` challenges, the Bearer token exchange ghcr.io and Docker
//! Hub use (Basic credentials in, a token for a set of scopes out), and plain Basic; tokens are cached per host and
//! scope set until shortly before they expire.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;

use super::error::{Action, RegistryError, summarise_body};
use crate::secret::Secret;

/// A user name and password (or token) for one registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: Secret) -> Self {
        Credentials { username: username.into(), password }
    }

    fn basic_header(&self) -> HeaderValue {
        let raw = format!("{}:{}", self.username, self.password.expose());
        sensitive(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw)))
    }
}

/// A header value marked sensitive, so `http`'s `Debug` prints `Sensitive` instead of it.
fn sensitive(value: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

/// One challenge of a `WWW-Authenticate` header: scheme (lowercased) and parameters (keys lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses every challenge in a `WWW-Authenticate` value (RFC 9110 §11.6.1): several challenges, quoted values
/// with commas and escapes inside, unquoted values, whitespace anywhere it may be. Never fails: garbage is skipped.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut p = Cursor { s: header.as_bytes(), i: 0 };
    let mut out = Vec::new();
    loop {
        p.skip(|b| b == b',' || b.is_ascii_whitespace());
        if p.at_end() {
            return out;
        }
        let Some(scheme) = p.token() else {
            p.i += 1;
            continue;
        };
        let mut params = BTreeMap::new();
        loop {
            p.skip(|b| b.is_ascii_whitespace());
            if p.peek() == Some(b',') {
                p.i += 1;
                continue;
            }
            let start = p.i;
            let Some(key) = p.token() else { break };
            p.skip(|b| b.is_ascii_whitespace());
            if p.peek() != Some(b'=') {
                p.i = start; // the next challenge's scheme
                break;
            }
            p.i += 1;
            p.skip(|b| b.is_ascii_whitespace());
            let value = if p.peek() == Some(b'"') { p.quoted() } else { p.unquoted() };
            params.insert(key.to_ascii_lowercase(), value);
        }
        out.push(Challenge { scheme: scheme.to_ascii_lowercase(), params });
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn unquoted(&mut self) -> String {
        let start = self.i;
        self.skip(|b| b != b',' && !b.is_ascii_whitespace());
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn quoted(&mut self) -> String {
        self.i += 1; // opening quote
        let mut v = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        v.push(next);
                        self.i += 1;
                    }
                }
                _ => v.push(b),
            }
        }
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// The token scope for reading (`pull`) or writing (`pull,push`) a repository.
pub fn repository_scope(repository: &str, action: Action) -> String {
    match action {
        Action::Pull => format!("repository:{repository}:pull"),
        Action::Push => format!("repository:{repository}:pull,push"),
    }
}

/// How a host wants to be authenticated, learnt from its first 401.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scheme {
    Basic,
    Bearer { realm: String, service: Option<String> },
}

impl Scheme {
    /// The scheme to use from a set of challenges: Bearer if offered (it carries scopes), else Basic.
    pub(crate) fn from_challenges(challenges: &[Challenge]) -> Option<Scheme> {
        let bearer = challenges.iter().find(|c| c.scheme == "bearer").and_then(|c| {
            let realm = c.params.get("realm").filter(|r| !r.is_empty())?;
            Some(Scheme::Bearer { realm: realm.clone(), service: c.params.get("service").cloned() })
        });
        bearer.or_else(|| challenges.iter().any(|c| c.scheme == "basic").then_some(Scheme::Basic))
    }
}

struct CachedToken {
    token: Secret,
    usable_until: Instant,
}

/// Learnt schemes and cached tokens, shared by every request of a client.
#[derive(Default)]
pub(crate) struct AuthState {
    schemes: Mutex<HashMap<String, Scheme>>,
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
    /// Serialises token requests, so concurrent first requests to a host fetch one token, not `jobs` of them.
    pub(crate) fetching: tokio::sync::Mutex<()>,
}

fn cache_key(host: &str, scopes: &[String]) -> (String, String) {
    let mut s = scopes.to_vec();
    s.sort();
    s.dedup();
    (host.to_string(), s.join(" "))
}

impl AuthState {
    pub(crate) fn scheme(&self, host: &str) -> Option<Scheme> {
        self.schemes.lock().ok()?.get(host).cloned()
    }

    pub(crate) fn set_scheme(&self, host: &str, scheme: Scheme) {
        if let Ok(mut m) = self.schemes.lock() {
            m.insert(host.to_string(), scheme);
        }
    }

    /// The `Authorization` value we already have for a request: Basic for Basic hosts, a cached unexpired token.
    pub(crate) fn cached_header(
        &self,
        host: &str,
        scopes: &[String],
        creds: Option<&Credentials>,
    ) -> Option<HeaderValue> {
        match self.scheme(host)? {
            Scheme::Basic => creds.map(Credentials::basic_header),
            Scheme::Bearer { .. } => {
                let tokens = self.tokens.lock().ok()?;
                let t = tokens.get(&cache_key(host, scopes)).filter(|t| t.usable_until > Instant::now())?;
                Some(sensitive(&format!("Bearer {}", t.token.expose())))
            }
        }
    }

    pub(crate) fn forget_token(&self, host: &str, scopes: &[String]) {
        if let Ok(mut m) = self.tokens.lock() {
            m.remove(&cache_key(host, scopes));
        }
    }

    fn store_token(&self, host: &str, scopes: &[String], token: Secret, lifetime: Duration) {
        if let Ok(mut m) = self.tokens.lock() {
            m.insert(cache_key(host, scopes), CachedToken { token, usable_until: Instant::now() + usable(lifetime) });
        }
    }
}

/// How long a token is used: its lifetime minus a margin (half of it, at most 30 s) so that a request started
/// just before expiry, or a clock skew, does not meet a 401 halfway through an upload.
fn usable(lifetime: Duration) -> Duration {
    lifetime - (lifetime / 2).min(Duration::from_secs(30))
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// What a token request needs to know about the caller, for the request and for its error messages.
pub(crate) struct TokenRequest<'a> {
    pub host: &'a str,
    pub registry: &'a str,
    pub repository: &'a str,
    pub action: Action,
    pub scopes: &'a [String],
    pub creds: Option<&'a Credentials>,
    /// Hosts we may talk plain HTTP to: credentials are never sent to any other `http://` realm.
    pub plain_http_ok: &'a dyn Fn(&str) -> bool,
}

/// Fetches a Bearer token from `realm` for `scopes` (Basic credentials if we have them, else anonymous), caches it,
/// and returns the header to send.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    state: &AuthState,
    realm: &str,
    service: Option<&str>,
    req: &TokenRequest<'_>,
    timeout: Duration,
) -> Result<HeaderValue, RegistryError> {
    let protocol = |message: String| RegistryError::Protocol { registry: req.registry.to_string(), message };
    let mut url =
        url::Url::parse(realm).map_err(|_| protocol(format!("its token realm `{realm}` is not a valid URL")))?;
    if url.scheme() != "https" && !(url.scheme() == "http" && (req.plain_http_ok)(url.authority())) {
        return Err(protocol(format!(
            "its token realm `{realm}` is not HTTPS; credentials are only sent over plain HTTP to loopback or \
             insecure registries"
        )));
    }
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for scope in req.scopes {
            q.append_pair("scope", scope);
        }
    }
    let mut rb = http.get(url.clone()).timeout(timeout);
    if let Some(c) = req.creds {
        rb = rb.header(AUTHORIZATION, c.basic_header());
    }
    let resp = rb.send().await.map_err(|e| super::transport::classify(req.registry, "the token request", e, true))?;
    let status = resp.status().as_u16();
    let body = super::transport::read_capped(resp, 1 << 20)
        .await
        .map_err(|e| super::transport::classify(req.registry, "the token request", e, true))?;
    match status {
        200..=299 => {}
        401 => {
            return Err(match req.creds {
                Some(c) => {
                    RegistryError::BadCredentials { registry: req.registry.to_string(), username: c.username.clone() }
                }
                None => RegistryError::Unauthorized {
                    registry: req.registry.to_string(),
                    repository: req.repository.to_string(),
                    action: req.action,
                    username: None,
                },
            });
        }
        403 => {
            return Err(RegistryError::Denied {
                registry: req.registry.to_string(),
                repository: req.repository.to_string(),
                action: req.action,
                message: summarise_body(&body).1,
            });
        }
        _ => {
            let (code, message) = summarise_body(&body);
            return Err(RegistryError::Registry {
                registry: req.registry.to_string(),
                status,
                request: format!("GET {}", super::error::display_url(&url)),
                code,
                message,
                retry_after: None,
            });
        }
    }
    let parsed: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| protocol("its token endpoint answered something that is not a token response".into()))?;
    let token = parsed
        .token
        .filter(|t| !t.is_empty())
        .or(parsed.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| protocol("its token endpoint answered without a `token` or `access_token`".into()))?;
    let header = sensitive(&format!("Bearer {token}"));
    let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(60));
    state.store_token(req.host, req.scopes, Secret::new(token), lifetime);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn challenge_parser_table() {
        let table: Vec<(&str, Vec<Challenge>)> = vec![
            (
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull""#,
                vec![ch(
                    "bearer",
                    &[
                        ("realm", "https://ghcr.io/token"),
                        ("service", "ghcr.io"),
                        ("scope", "repository:user/image:pull"),
                    ],
                )],
            ),
            (r#"Basic realm="Registry Realm""#, vec![ch("basic", &[("realm", "Registry Realm")])]),
            (
                // Docker Hub's shape, a scope with a comma inside quotes, spaces after commas.
                r#"Bearer realm="https://auth.docker.io/token", service="registry.docker.io", scope="repository:library/busybox:pull,push""#,
                vec![ch(
                    "bearer",
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:library/busybox:pull,push"),
                    ],
                )],
            ),
            (
                r#"Basic realm="a, b", Bearer realm="https://t.example/token",service=svc"#,
                vec![
                    ch("basic", &[("realm", "a, b")]),
                    ch("bearer", &[("realm", "https://t.example/token"), ("service", "svc")]),
                ],
            ),
            (
                r#"BEARER Realm = "https://x/token" , error="insufficient_scope""#,
                vec![ch("bearer", &[("realm", "https://x/token"), ("error", "insufficient_scope")])],
            ),
            (r#"Bearer realm="with \"escaped\" quote""#, vec![ch("bearer", &[("realm", r#"with "escaped" quote"#)])]),
            (r#"Bearer realm="unterminated"#, vec![ch("bearer", &[("realm", "unterminated")])]),
            ("Negotiate", vec![ch("negotiate", &[])]),
            ("", vec![]),
            (r#"  , ,"#, vec![]),
            (r#"=weird "stuff""#, vec![ch("weird", &[]), ch("stuff", &[])]),
        ];
        for (input, want) in table {
            assert_eq!(parse_challenges(input), want, "input: {input}");
        }
    }

    #[test]
    fn scheme_prefers_bearer_and_needs_a_realm() {
        let both = parse_challenges(r#"Basic realm="r", Bearer realm="https://t/token",service="s""#);
        assert_eq!(
            Scheme::from_challenges(&both),
            Some(Scheme::Bearer { realm: "https://t/token".into(), service: Some("s".into()) })
        );
        assert_eq!(Scheme::from_challenges(&parse_challenges(r#"Basic realm="r""#)), Some(Scheme::Basic));
        assert_eq!(Scheme::from_challenges(&parse_challenges(r#"Bearer service="s""#)), None);
    }

    #[test]
    fn scope_strings() {
        assert_eq!(repository_scope("octo-org/app", Action::Pull), "repository:octo-org/app:pull");
        assert_eq!(repository_scope("octo-org/app", Action::Push), "repository:octo-org/app:pull,push");
        // The cache key does not depend on the order scopes were asked in.
        let a = cache_key("h", &["repository:b:pull".into(), "repository:a:pull,push".into()]);
        let b = cache_key("h", &["repository:a:pull,push".into(), "repository:b:pull".into()]);
        assert_eq!(a, b);
    }

    #[test]
    fn tokens_are_used_until_a_margin_before_expiry() {
        assert_eq!(usable(Duration::from_secs(60)), Duration::from_secs(30));
        assert_eq!(usable(Duration::from_secs(300)), Duration::from_secs(270));
        let state = AuthState::default();
        state.set_scheme("h", Scheme::Bearer { realm: "https://h/token".into(), service: None });
        let scopes = vec!["repository:a:pull".to_string()];
        state.store_token("h", &scopes, Secret::new("tok"), Duration::from_secs(60));
        let h = state.cached_header("h", &scopes, None).unwrap();
        assert_eq!(h.to_str().unwrap(), "Bearer tok");
        assert!(h.is_sensitive());
        assert!(!format!("{h:?}").contains("tok"), "Debug of the header hides the token");
        assert!(state.cached_header("h", &["repository:b:pull".to_string()], None).is_none());
        state.forget_token("h", &scopes);
        assert!(state.cached_header("h", &scopes, None).is_none());
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = Credentials::new("octocat", Secret::new("ghp_secret"));
        assert!(!format!("{c:?}").contains("ghp_secret"));
        assert_eq!(c.basic_header().to_str().unwrap(), "Basic b2N0b2NhdDpnaHBfc2VjcmV0");
    }
}

//! Registry authentication, the parts without I/O: credentials, parsing `WWW-Authenticate` challenges (Basic and
//! Bearer, several per header, quoted values with commas), choosing the scheme, and token scope strings.
//! The token exchange and cache are in `token.rs`.

use std::collections::BTreeMap;

use base64::Engine as _;
use reqwest::header::HeaderValue;

use super::error::Action;
use crate::secret::Secret;

/// A user name and password (or token) for one registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
    /// Where they came from, as the place to check when the registry rejects them (`the \`registry_auth\`
    /// line for HOST`, a docker `config.json`, a credential helper).
    pub source: String,
}

impl Credentials {
    /// Credentials whose source is only "the credentials given for" the registry; see [`Credentials::from_source`].
    pub fn new(username: impl Into<String>, password: Secret) -> Self {
        Credentials { username: username.into(), password, source: "the credentials given for it".into() }
    }

    /// Names where the credentials came from, for the error a rejection gives.
    pub fn from_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    pub(crate) fn basic_header(&self) -> HeaderValue {
        let raw = format!("{}:{}", self.username, self.password.expose());
        sensitive(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw)))
    }
}

/// A header value marked sensitive, so `http`'s `Debug` prints `Sensitive` instead of it.
pub(crate) fn sensitive(value: &str) -> HeaderValue {
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
        Action::Delete => format!("repository:{repository}:delete"),
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
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = Credentials::new("octocat", Secret::new("ghp_secret"));
        assert!(!format!("{c:?}").contains("ghp_secret"));
        assert_eq!(c.basic_header().to_str().unwrap(), "Basic b2N0b2NhdDpnaHBfc2VjcmV0");
    }
}

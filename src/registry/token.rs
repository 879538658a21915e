//! Bearer tokens: the exchange at the realm a challenge names (Basic credentials in, a token for a set of scopes
//! out, as ghcr.io and Docker Hub do it) and the per-host, per-scope-set cache that keeps a token until shortly
//! before it expires. Also remembers which scheme each host asked for.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;

use super::auth::{Credentials, Scheme, sensitive};
use super::error::{Action, RegistryError, summarise_body};
use crate::secret::Secret;

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
    pub plain_http_ok: &'a (dyn Fn(&str) -> bool + Sync),
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
    // An identity token (docker's `identitytoken`) is an OAuth2 refresh token: POSTed to the realm, as docker does.
    if let Some(refresh) = req.creds.filter(|c| c.username == super::IDENTITY_TOKEN_USER) {
        // Built in a block of its own: the serializer is not `Send`, so it must not live across an await.
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", refresh.password.expose())
                .append_pair("client_id", "octopush");
            if let Some(s) = service {
                form.append_pair("service", s);
            }
            if !req.scopes.is_empty() {
                form.append_pair("scope", &req.scopes.join(" "));
            }
            form.finish()
        };
        let rb = http.post(url.clone()).timeout(timeout).header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        let rb = rb.body(body);
        return token_response(state, req, rb, &url, "POST").await;
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
    token_response(state, req, rb, &url, "GET").await
}

/// Sends a token request and turns its answer into a cached token and the header to send.
async fn token_response(
    state: &AuthState,
    req: &TokenRequest<'_>,
    rb: reqwest::RequestBuilder,
    url: &url::Url,
    method: &str,
) -> Result<HeaderValue, RegistryError> {
    let protocol = |message: String| RegistryError::Protocol { registry: req.registry.to_string(), message };
    let resp = rb.send().await.map_err(|e| super::transport::classify(req.registry, "the token request", e, true))?;
    let status = resp.status().as_u16();
    let body = super::transport::read_capped(resp, 1 << 20)
        .await
        .map_err(|e| super::transport::classify(req.registry, "the token request", e, true))?;
    match status {
        200..=299 => {}
        401 => {
            return Err(match req.creds {
                Some(c) => RegistryError::BadCredentials {
                    registry: req.registry.to_string(),
                    username: c.username.clone(),
                    origin: c.source.clone(),
                },
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
                request: format!("{method} {}", super::error::display_url(url)),
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

    #[test]
    fn the_cache_key_ignores_scope_order() {
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
}

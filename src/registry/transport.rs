//! One request to a registry: attaching the right `Authorization` (answering a 401 challenge once, if the body
//! can be sent again), turning transport failures and unexpected statuses into [`RegistryError`]s. No retries
//! here: those wrap whole operations (`retry.rs`).

use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, Response};
use url::Url;

use super::RegistryClient;
use super::auth::{self, Credentials, Scheme};
use super::error::{Action, RegistryError, display_url, summarise_body};
use super::retry::parse_retry_after;
use super::token::{self, TokenRequest};
use crate::image::ImageName;

/// Which repository a request is for, whether it reads or writes, and the token scopes it needs.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub name: ImageName,
    pub action: Action,
    pub scopes: Vec<String>,
}

impl Target {
    pub fn new(name: &ImageName, action: Action) -> Self {
        Target { name: name.clone(), action, scopes: vec![auth::repository_scope(&name.repository, action)] }
    }

    /// A cross-repository mount: push to `to` and pull from `from`, in one token.
    pub fn mount(to: &ImageName, from: &ImageName) -> Self {
        let mut t = Target::new(to, Action::Push);
        t.scopes.push(auth::repository_scope(&from.repository, Action::Pull));
        t
    }
}

/// A request body. `Stream` is sent at most once: a 401 on it is returned, not answered.
pub(crate) enum Body {
    Empty,
    Bytes(Bytes),
    Stream(Option<reqwest::Body>),
}

impl Body {
    fn next(&mut self) -> Option<reqwest::Body> {
        match self {
            Body::Empty => None,
            Body::Bytes(b) => Some(b.clone().into()),
            Body::Stream(s) => s.take(),
        }
    }
}

/// `host[:port]` of a URL, to decide whether it may get the registry's `Authorization`.
pub(crate) fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

impl RegistryClient {
    /// Sends one request, authenticating as the host asks. `timeout` bounds the whole exchange (None for streams,
    /// which are watched for stalls instead). Any status is returned; callers check the ones they expect.
    pub(crate) async fn send(
        &self,
        t: &Target,
        method: Method,
        url: Url,
        headers: HeaderMap,
        mut body: Body,
        timeout: Option<Duration>,
    ) -> Result<Response, RegistryError> {
        let host = t.name.api_host().to_ascii_lowercase();
        let url = self.effective_url(url).await?;
        let creds = self.resolve_credentials(&t.name).await?;
        let mut authz = self.authorization(t, creds.as_ref()).await?;
        let mut answered_challenge = false;
        loop {
            let replayable = !matches!(body, Body::Stream(_));
            let mut rb = self.inner.http.request(method.clone(), url.clone()).headers(headers.clone());
            if let (Some(h), true) = (&authz, authority(&url) == host) {
                rb = rb.header(AUTHORIZATION, h.clone());
            }
            if let Some(b) = body.next() {
                rb = rb.body(b);
            }
            if let Some(d) = timeout {
                rb = rb.timeout(d);
            }
            let what = format!("{method} {}", display_url(&url));
            let resp = rb.send().await.map_err(|e| classify(&t.name.registry, &what, e, self.was_seen(&host)))?;
            self.mark_seen(&host);
            if resp.status() != reqwest::StatusCode::UNAUTHORIZED || answered_challenge || !replayable {
                return Ok(resp);
            }
            let challenges: Vec<_> = resp
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(auth::parse_challenges)
                .collect();
            let Some(scheme) = Scheme::from_challenges(&challenges) else { return Ok(resp) };
            if scheme == Scheme::Basic && authz.is_some() {
                return Ok(resp); // our Basic credentials were refused; sending them again changes nothing
            }
            self.inner.auth.set_scheme(&host, scheme);
            self.inner.auth.forget_token(&host, &t.scopes);
            authz = self.authorization(t, creds.as_ref()).await?;
            if authz.is_none() {
                return Ok(resp);
            }
            answered_challenge = true;
        }
    }

    /// The `Authorization` for a request: cached, or a fresh token when the host is known to want Bearer.
    async fn authorization(
        &self,
        t: &Target,
        creds: Option<&Credentials>,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let host = t.name.api_host().to_ascii_lowercase();
        let state = &self.inner.auth;
        if let (Some(Scheme::Basic), Some(c)) = (state.scheme(&host), creds) {
            if c.username == super::IDENTITY_TOKEN_USER {
                return Err(RegistryError::IdentityTokenWithBasic { registry: t.name.registry.clone() });
            }
        }
        if let Some(h) = state.cached_header(&host, &t.scopes, creds) {
            return Ok(Some(h));
        }
        let Some(Scheme::Bearer { realm, service }) = state.scheme(&host) else { return Ok(None) };
        let _one_at_a_time = state.fetching.lock().await;
        if let Some(h) = state.cached_header(&host, &t.scopes, creds) {
            return Ok(Some(h));
        }
        let plain_http_ok = |h: &str| self.plain_http(h);
        let req = TokenRequest {
            host: &host,
            registry: &t.name.registry,
            repository: &t.name.repository,
            action: t.action,
            scopes: &t.scopes,
            creds,
            plain_http_ok: &plain_http_ok,
        };
        let timeout = self.inner.options.timeout;
        token::fetch_token(&self.inner.http, state, &realm, service.as_deref(), &req, timeout).await.map(Some)
    }

    /// The error for a response whose status the caller did not expect. `what` names the object (`manifest
    /// `latest``, `blob sha256:…`) for a 404.
    pub(crate) async fn error_for(
        &self,
        t: &Target,
        what: &str,
        method: &Method,
        url: &Url,
        resp: Response,
    ) -> RegistryError {
        let status = resp.status().as_u16();
        let retry_after = match status {
            429 | 503 => resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, std::time::SystemTime::now())),
            _ => None,
        };
        let body = read_capped(resp, 64 << 10).await.unwrap_or_default();
        let (code, message) = summarise_body(&body);
        let registry = t.name.registry.clone();
        let repository = t.name.repository.clone();
        let creds = self.credentials(&t.name);
        match (status, code.as_str()) {
            (401, _) | (_, "UNAUTHORIZED") => {
                let basic = self.inner.auth.scheme(&t.name.api_host().to_ascii_lowercase()) == Some(Scheme::Basic);
                match creds {
                    Some(c) if basic => {
                        RegistryError::BadCredentials { registry, username: c.username, origin: c.source }
                    }
                    c => RegistryError::Unauthorized {
                        registry,
                        repository,
                        action: t.action,
                        username: c.map(|c| c.username),
                    },
                }
            }
            (403, _) | (_, "DENIED") => RegistryError::Denied { registry, repository, action: t.action, message },
            (404, _) => RegistryError::NotFound { registry, repository, what: what.to_string() },
            _ => RegistryError::Registry {
                registry,
                status,
                request: format!("{method} {}", display_url(url)),
                code,
                message,
                retry_after,
            },
        }
    }
}

/// Reads at most `max` bytes of a body (the rest is dropped): for error bodies and token responses.
pub(crate) async fn read_capped(mut resp: Response, max: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = max.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= max {
            break;
        }
    }
    Ok(out)
}

/// Reads a whole body that must not exceed `max` bytes (manifests, configs).
pub(crate) async fn read_limited(
    mut resp: Response,
    max: usize,
    registry: &str,
    what: &str,
    seen: bool,
) -> Result<Bytes, RegistryError> {
    let mut out = Vec::new();
    loop {
        let chunk = resp.chunk().await.map_err(|e| classify(registry, what, e, seen))?;
        let Some(chunk) = chunk else { return Ok(out.into()) };
        if out.len() + chunk.len() > max {
            return Err(RegistryError::Protocol {
                registry: registry.to_string(),
                message: format!("{what} is larger than {max} bytes, more than any registry should serve"),
            });
        }
        out.extend_from_slice(&chunk);
    }
}

/// Turns a reqwest failure into our error, without the URL (it could carry upload state) and by kind: TLS,
/// connecting (temporary only if the host answered before), timeouts and dropped connections (temporary).
pub(crate) fn classify(registry: &str, what: &str, err: reqwest::Error, seen: bool) -> RegistryError {
    let err = err.without_url();
    let detail = chain(&err);
    let registry = registry.to_string();
    if is_tls(&err) {
        return RegistryError::Tls { registry, detail };
    }
    if err.is_builder() {
        return RegistryError::Client(detail);
    }
    if err.is_connect() {
        return RegistryError::Connect { registry, detail, mid_transfer: seen };
    }
    let temporary = err.is_timeout() || err.is_request() || err.is_body() || err.is_decode();
    RegistryError::Transport { registry, what: what.to_string(), detail, temporary }
}

/// An error and its causes as one line, repeated messages dropped.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    super::error::scrub(&parts.join(": "))
}

/// Whether a rustls error is somewhere in the chain.
fn is_tls(err: &(dyn StdError + 'static)) -> bool {
    rustls_error(err).is_some()
}

/// Whether the chain holds a rustls certificate error: the server spoke TLS and showed a certificate we do not
/// trust (as opposed to a server that does not speak TLS at all).
pub(crate) fn is_certificate_error(err: &(dyn StdError + 'static)) -> bool {
    matches!(rustls_error(err), Some(rustls::Error::InvalidCertificate(_)))
}

/// The rustls error in the chain, looking inside `io::Error`s too (hyper-util wraps the handshake's
/// `io::Error(InvalidData, rustls::Error)` in another `io::Error`, whose `source()` skips both).
fn rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let mut inner: Option<&(dyn StdError + 'static)> = Some(e);
        while let Some(i) = inner {
            if let Some(r) = i.downcast_ref::<rustls::Error>() {
                return Some(r);
            }
            inner =
                i.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|b| b as &(dyn StdError + 'static));
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_targets_ask_for_both_scopes() {
        let to = ImageName::new("ghcr.io", "octo-org/app").unwrap();
        let from = ImageName::new("ghcr.io", "octo-org/base").unwrap();
        let t = Target::mount(&to, &from);
        assert_eq!(t.scopes, vec!["repository:octo-org/app:pull,push", "repository:octo-org/base:pull"]);
        assert_eq!(Target::new(&from, Action::Pull).scopes, vec!["repository:octo-org/base:pull"]);
    }

    #[test]
    fn authority_includes_the_port() {
        assert_eq!(authority(&Url::parse("http://127.0.0.1:5000/v2/").unwrap()), "127.0.0.1:5000");
        assert_eq!(authority(&Url::parse("https://GHCR.io/v2/").unwrap()), "ghcr.io");
    }
}

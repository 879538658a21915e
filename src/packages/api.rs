//! GitHub's Packages REST API through octocrab's typed endpoints: the owner's kind (user or organisation), the
//! package, its versions (every page, following the `Link` headers) and deleting and restoring versions.
//!
//! octocrab's own retry layer is off: retries happen here, at one level, with what octocrab hands back (status,
//! headers, message): a secondary rate limit's `retry-after`, the primary limit's `x-ratelimit-reset`, 5xx and
//! dropped connections, each wait logged and none longer than [`ApiOptions::max_wait`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use octocrab::Octocrab;
use octocrab::models::packages::{PackageType, PackageVersion};
use octocrab::service::middleware::retry::RetryConfig;

use super::{ApiAction, PackagesError, Version};
use crate::progress::Progress;
use crate::registry::{RetryPolicy, error_chain as chain, parse_retry_after};
use crate::secret::Secret;

/// How to reach the API.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// `GITHUB_API_URL`: `https://api.github.com`, a GitHub Enterprise Server's `/api/v3`, or a test server.
    pub api_url: String,
    pub token: Option<Secret>,
    /// Tries per request, the first included.
    pub attempts: u32,
    /// The longest wait for a rate limit to reset; a longer one fails with [`PackagesError::RateLimited`].
    pub max_wait: Duration,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            api_url: "https://api.github.com".into(),
            token: None,
            attempts: 5,
            max_wait: Duration::from_secs(15 * 60),
        }
    }
}

/// Who owns a package: the API's routes differ (`/orgs/...` or `/users/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    User,
    Organization,
}

/// A package, with its owner's kind known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRef {
    pub owner: String,
    pub kind: OwnerKind,
    pub package_type: PackageType,
    pub name: String,
}

impl PackageRef {
    /// The API route of the package, as GitHub's docs write it (the name's `/` encoded as `%2F`).
    pub fn route(&self) -> String {
        let prefix = match self.kind {
            OwnerKind::User => "users",
            OwnerKind::Organization => "orgs",
        };
        format!("/{prefix}/{}/packages/{}/{}", self.owner, self.package_type, self.name.replace('/', "%2F"))
    }
}

impl std::fmt::Display for PackageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            OwnerKind::User => "user",
            OwnerKind::Organization => "organisation",
        };
        write!(f, "{} package `{}` of the {kind} `{}`", self.package_type, self.name, self.owner)
    }
}

/// Why a request waits before it is tried again.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    pub duration: Duration,
    pub why: &'static str,
}

/// Whether (and how long) to wait before trying a failed request again, from its status, headers and message,
/// as GitHub's rate-limit documentation says. `retry` counts from 1.
pub fn retry_wait(status: u16, headers: &HeaderMap, message: &str, now: SystemTime, retry: u32) -> Option<Wait> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let limited = status == 429 || status == 403;
    if limited {
        if let Some(d) = header("retry-after").and_then(|v| parse_retry_after(v, now)) {
            return Some(Wait { duration: d.max(Duration::from_secs(1)), why: "a secondary rate limit (retry-after)" });
        }
        if header("x-ratelimit-remaining") == Some("0") {
            if let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok()) {
                let at = SystemTime::UNIX_EPOCH + Duration::from_secs(reset);
                let d = at.duration_since(now).unwrap_or(Duration::ZERO) + Duration::from_secs(1);
                return Some(Wait { duration: d, why: "the rate limit (x-ratelimit-reset)" });
            }
        }
        // GitHub: "wait at least one minute before retrying" when a limit gives no header.
        if status == 429 || message.to_ascii_lowercase().contains("rate limit") {
            return Some(Wait { duration: Duration::from_secs(60), why: "a secondary rate limit" });
        }
        return None;
    }
    matches!(status, 500 | 502 | 503 | 504)
        .then(|| Wait { duration: RetryPolicy::default().backoff(retry), why: "a server error" })
}

/// The Packages API for one token.
pub struct PackagesApi {
    crab: Octocrab,
    options: ApiOptions,
    progress: Arc<dyn Progress>,
}

impl PackagesApi {
    pub fn new(options: ApiOptions, progress: Arc<dyn Progress>) -> Result<PackagesApi, PackagesError> {
        let client_error = |detail: String| PackagesError::Client { api_url: options.api_url.clone(), detail };
        let mut builder = Octocrab::builder()
            .base_uri(options.api_url.as_str())
            .map_err(|e| client_error(format!("not a URL ({e}): check GITHUB_API_URL")))?
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(60)));
        if let Some(token) = options.token.as_ref().filter(|t| !t.is_empty()) {
            builder = builder.personal_token(token.expose().to_string());
        }
        let crab = builder.build().map_err(|e| client_error(e.to_string()))?;
        Ok(PackagesApi { crab, options, progress })
    }

    /// Whether `owner` is a user or an organisation (`GET /users/{owner}` answers both, with `type`).
    pub async fn owner_kind(&self, owner: &str) -> Result<OwnerKind, PackagesError> {
        #[derive(serde::Deserialize)]
        struct Account {
            #[serde(rename = "type")]
            kind: String,
        }
        let route = format!("/users/{owner}");
        let request = format!("GET {route}");
        let account: Account = self
            .call(&request, || self.crab.get(route.as_str(), None::<&()>))
            .await
            .map_err(|e| self.api_error(e, ApiAction::FindOwner, owner, &request, None))?;
        Ok(if account.kind == "Organization" { OwnerKind::Organization } else { OwnerKind::User })
    }

    fn handler(&self, package: &PackageRef) -> octocrab::packages::PackagesHandler<'_> {
        match package.kind {
            OwnerKind::User => self.crab.packages().user(package.owner.as_str()),
            OwnerKind::Organization => self.crab.packages().org(package.owner.as_str()),
        }
    }

    /// Checks that the package exists and may be read, so a wrong name fails with what was tried.
    pub async fn check_package(&self, package: &PackageRef) -> Result<(), PackagesError> {
        let request = format!("GET {}", package.route());
        let handler = self.handler(package);
        self.call(&request, || handler.get(package.package_type, package.name.as_str()))
            .await
            .map(drop)
            .map_err(|e| self.api_error(e, ApiAction::GetPackage, &package.to_string(), &request, None))
    }

    /// Every active version, newest first as GitHub lists them, following `Link: rel="next"` to the last page.
    pub async fn list_versions(&self, package: &PackageRef) -> Result<Vec<Version>, PackagesError> {
        const MAX_PAGES: usize = 10_000;
        let handler = self.handler(package);
        let mut request = format!("GET {}/versions?per_page=100", package.route());
        let what = package.to_string();
        let mut page = self
            .call(&request, || handler.list_versions(package.package_type, package.name.as_str()).per_page(100).send())
            .await
            .map_err(|e| self.api_error(e, ApiAction::List, &what, &request, None))?;
        let mut versions: Vec<Version> = page.take_items().into_iter().map(version_of).collect();
        let mut pages = 1;
        while let Some(next) = page.next.clone() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(PackagesError::EndlessPaging { pages: MAX_PAGES });
            }
            request = format!("GET {next}");
            let next = Some(next);
            let fetched = self
                .call(&request, || self.crab.get_page::<PackageVersion>(&next))
                .await
                .map_err(|e| self.api_error(e, ApiAction::List, &what, &request, None))?;
            let Some(mut fetched) = fetched else { break };
            versions.extend(fetched.take_items().into_iter().map(version_of));
            page = fetched;
        }
        self.progress.debug(&format!("{what}: {} versions on {pages} pages", versions.len()));
        Ok(versions)
    }

    /// One version (deleted ones too, within the restore window).
    pub async fn get_version(&self, package: &PackageRef, id: u64) -> Result<Version, PackagesError> {
        let request = format!("GET {}/versions/{id}", package.route());
        let handler = self.handler(package);
        self.call(&request, || handler.get_version(package.package_type, package.name.as_str(), id))
            .await
            .map(version_of)
            .map_err(|e| self.api_error(e, ApiAction::GetVersion, &package.to_string(), &request, Some(id)))
    }

    /// Deletes a version. A retried DELETE that finds it gone counts as done: the first try went through.
    pub async fn delete_version(&self, package: &PackageRef, id: u64) -> Result<(), PackagesError> {
        let request = format!("DELETE {}/versions/{id}", package.route());
        let handler = self.handler(package);
        let mut tries = 0;
        let result = self
            .call(&request, || {
                tries += 1;
                handler.delete_version(package.package_type, package.name.as_str(), id)
            })
            .await;
        match result {
            Err(CallError::Octocrab(octocrab::Error::GitHub { source, .. }))
                if source.status_code.as_u16() == 404 && tries > 1 =>
            {
                Ok(())
            }
            other => other.map_err(|e| self.api_error(e, ApiAction::Delete, &package.to_string(), &request, Some(id))),
        }
    }

    /// Restores a deleted version (GitHub keeps them 30 days).
    pub async fn restore_version(&self, package: &PackageRef, id: u64) -> Result<(), PackagesError> {
        let request = format!("POST {}/versions/{id}/restore", package.route());
        let handler = self.handler(package);
        self.call(&request, || handler.restore_version(package.package_type, package.name.as_str(), id))
            .await
            .map_err(|e| self.api_error(e, ApiAction::Restore, &package.to_string(), &request, Some(id)))
    }

    /// Runs one request under the retry policy; the final failure is octocrab's, for the caller to word.
    async fn call<T, F, Fut>(&self, request: &str, mut op: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, octocrab::Error>>,
    {
        let attempts = self.options.attempts.max(1);
        let mut attempt = 1;
        loop {
            let err = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if attempt >= attempts {
                return Err(CallError::Octocrab(err));
            }
            let wait = match &err {
                octocrab::Error::GitHub { source, .. } => {
                    let headers = source.headers.clone().unwrap_or_default();
                    retry_wait(source.status_code.as_u16(), &headers, &source.message, SystemTime::now(), attempt)
                }
                e if is_transport(e) => {
                    Some(Wait { duration: RetryPolicy::default().backoff(attempt), why: "a dropped connection" })
                }
                _ => None,
            };
            let Some(wait) = wait else { return Err(CallError::Octocrab(err)) };
            if wait.duration > self.options.max_wait {
                return Err(CallError::WaitTooLong(wait.duration));
            }
            self.progress.warning(&format!(
                "{request}: GitHub's API answered with {}; trying again in {:.1} s ({}/{attempts})",
                wait.why,
                wait.duration.as_secs_f64(),
                attempt + 1
            ));
            tokio::time::sleep(wait.duration).await;
            attempt += 1;
        }
    }

    /// octocrab's failure as ours, worded for the operation.
    fn api_error(
        &self,
        err: CallError,
        action: ApiAction,
        what: &str,
        request: &str,
        id: Option<u64>,
    ) -> PackagesError {
        let request = request.to_string();
        let err = match err {
            CallError::Octocrab(e) => e,
            CallError::WaitTooLong(wait) => {
                return PackagesError::RateLimited { request, wait, limit: self.options.max_wait };
            }
        };
        match err {
            octocrab::Error::GitHub { source, .. } => {
                let message = source.message.clone();
                let versioned = |what: &str| match id {
                    Some(id) => format!("version {id} of the {what}"),
                    None => format!("the {what}"),
                };
                match source.status_code.as_u16() {
                    401 => PackagesError::BadToken { request, message },
                    403 => PackagesError::Forbidden { action, what: versioned(what), request, message },
                    404 => match (action, id) {
                        (ApiAction::FindOwner, _) => PackagesError::OwnerNotFound { owner: what.to_string(), request },
                        (_, Some(id)) => PackagesError::VersionNotFound { action, id, what: what.to_string(), request },
                        _ => PackagesError::PackageNotFound { what: what.to_string(), request },
                    },
                    status => PackagesError::Api { request, status, message },
                }
            }
            e if is_transport(&e) => PackagesError::Connect { request, detail: chain(&e) },
            e => PackagesError::Api { request, status: 0, message: chain(&e) },
        }
    }
}

/// How a request failed in the end: octocrab's error, or a rate limit that asks for too long a wait.
enum CallError {
    Octocrab(octocrab::Error),
    WaitTooLong(Duration),
}

fn is_transport(e: &octocrab::Error) -> bool {
    matches!(e, octocrab::Error::Service { .. } | octocrab::Error::Hyper { .. })
}

fn version_of(v: PackageVersion) -> Version {
    let tags = v
        .metadata
        .map(|m| match (m.container, m.docker) {
            (Some(c), _) => c.tags,
            (None, Some(d)) => d.tag,
            (None, None) => Vec::new(),
        })
        .unwrap_or_default();
    Version { id: v.id.0, name: v.name, tags, created_at: v.created_at, updated_at: v.updated_at }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn waits_follow_githubs_rate_limit_headers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let secs = |w: Option<Wait>| w.map(|w| w.duration.as_secs());
        type Row<'a> = (u16, &'a [(&'static str, &'a str)], &'a str, Option<u64>);
        let rows: &[Row] = &[
            (403, &[("retry-after", "30")], "You have exceeded a secondary rate limit.", Some(30)),
            (429, &[("retry-after", "2")], "", Some(2)),
            (
                403,
                &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1700000100")],
                "API rate limit exceeded",
                Some(101),
            ),
            (
                403,
                &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1699999000")],
                "API rate limit exceeded",
                Some(1),
            ),
            (429, &[], "", Some(60)),
            (403, &[], "You have exceeded a secondary rate limit", Some(60)),
            // A real refusal is not retried.
            (403, &[("x-ratelimit-remaining", "4999")], "Resource not accessible by integration", None),
            (404, &[("retry-after", "1")], "Not Found", None),
            (422, &[], "Validation Failed", None),
        ];
        for (status, h, message, want) in rows {
            assert_eq!(secs(retry_wait(*status, &headers(h), message, now, 1)), *want, "{status} {h:?}");
        }
        let w = retry_wait(502, &HeaderMap::new(), "", now, 1).unwrap();
        assert!(w.duration <= Duration::from_millis(500) && w.why == "a server error", "{w:?}");
    }

    #[test]
    fn routes_encode_the_package_name_and_follow_the_owner_kind() {
        let p = PackageRef {
            owner: "octo-org".into(),
            kind: OwnerKind::Organization,
            package_type: PackageType::Container,
            name: "app/sub".into(),
        };
        assert_eq!(p.route(), "/orgs/octo-org/packages/container/app%2Fsub");
        assert_eq!(p.to_string(), "container package `app/sub` of the organisation `octo-org`");
        let u = PackageRef { kind: OwnerKind::User, owner: "octocat".into(), ..p };
        assert_eq!(u.route(), "/users/octocat/packages/container/app%2Fsub");
    }
}

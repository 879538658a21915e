//! What can go wrong talking to GitHub's Packages API or reading the registry for a prune, each worded with the
//! fix: the permission to give, the input to check and what was tried. Never carries the token.

use std::time::Duration;

use crate::registry::RegistryError;

/// Which API operation failed: decides the permission a 403 asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiAction {
    FindOwner,
    GetPackage,
    List,
    GetVersion,
    Delete,
    Restore,
}

impl std::fmt::Display for ApiAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ApiAction::FindOwner => "look up",
            ApiAction::GetPackage => "read",
            ApiAction::List => "list the versions of",
            ApiAction::GetVersion => "read",
            ApiAction::Delete => "delete",
            ApiAction::Restore => "restore",
        })
    }
}

/// What GitHub's docs say a refused delete or restore needs.
pub const WRITE_HINT: &str = "the token needs `packages: write` (give the job `permissions: packages: write`), \
    and deleting or restoring a version needs admin access to the package: in the package's settings, under \
    \"Manage Actions access\", give this repository the Admin role (or pass a personal access token with \
    `delete:packages` in `github_token`)";

/// What a refused read needs.
pub const READ_HINT: &str = "the token needs `packages: read` (give the job `permissions: packages: read`) and \
    access to the package: in the package's settings, under \"Manage Actions access\", add this repository";

#[derive(Debug, thiserror::Error)]
pub enum PackagesError {
    #[error("GitHub refused to {action} {what} (HTTP 403 from {request}: {message}): {}", hint(*action))]
    Forbidden { action: ApiAction, what: String, request: String, message: String },

    #[error(
        "GitHub rejected the token (HTTP 401 from {request}: {message}): pass a valid token in `github_token` (the \
         workflow's token by default)"
    )]
    BadToken { request: String, message: String },

    #[error(
        "there is no {what} (HTTP 404 from {request}): check the `package` input (by default the image name after \
         the owner: `app` for ghcr.io/octo-org/app) and `owner`; GitHub also answers 404 when the token may not \
         read the package, so check that {READ_HINT}"
    )]
    PackageNotFound { what: String, request: String },

    #[error("there is no GitHub user or organisation `{owner}` (HTTP 404 from {request}): check the `owner` input")]
    OwnerNotFound { owner: String, request: String },

    #[error(
        "there is no version {id} of {what} to {action} (HTTP 404 from {request}): take the ids from a prune's \
         `deleted` output; GitHub restores a version only within 30 days of its deletion"
    )]
    VersionNotFound { action: ApiAction, id: u64, what: String, request: String },

    #[error("GitHub answered HTTP {status} to {request}: {message}")]
    Api { request: String, status: u16, message: String },

    #[error(
        "GitHub's API rate limit for this token is used up and {request} would have to wait {} (until the reset \
         GitHub names), longer than the {} octopush waits: run the job again later",
        humanize(*wait), humanize(*limit)
    )]
    RateLimited { request: String, wait: Duration, limit: Duration },

    #[error("cannot reach GitHub's API for {request} ({detail}): check GITHUB_API_URL and the network")]
    Connect { request: String, detail: String },

    #[error("cannot use GitHub's API at `{api_url}`: {detail}")]
    Client { api_url: String, detail: String },

    #[error(
        "cannot read {image} from its registry, so what its kept tags need is unknown and nothing was deleted: \
         {source}"
    )]
    Registry {
        image: String,
        #[source]
        source: Box<RegistryError>,
    },

    #[error("listing the versions did not end after {pages} pages of 100: GitHub's `Link` headers loop")]
    EndlessPaging { pages: usize },
}

fn hint(action: ApiAction) -> &'static str {
    match action {
        ApiAction::Delete | ApiAction::Restore => WRITE_HINT,
        _ => READ_HINT,
    }
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 120 { format!("{} min", s.div_ceil(60)) } else { format!("{s} s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_delete_names_write_and_admin_and_a_refused_list_names_read() {
        let e = PackagesError::Forbidden {
            action: ApiAction::Delete,
            what: "version 7 of the container package `app` of the organisation `octo-org`".into(),
            request: "DELETE /orgs/octo-org/packages/container/app/versions/7".into(),
            message: "Resource not accessible by integration".into(),
        }
        .to_string();
        for part in ["delete version 7", "packages: write", "Admin role", "delete:packages", "/versions/7"] {
            assert!(e.contains(part), "{part} in {e}");
        }
        let e = PackagesError::Forbidden {
            action: ApiAction::List,
            what: "x".into(),
            request: "GET y".into(),
            message: "m".into(),
        }
        .to_string();
        assert!(e.contains("packages: read") && !e.contains("packages: write"), "{e}");
        let e = PackagesError::RateLimited {
            request: "GET /x".into(),
            wait: Duration::from_secs(3000),
            limit: Duration::from_secs(900),
        };
        assert!(e.to_string().contains("50 min") && e.to_string().contains("15 min"), "{e}");
    }
}

//! Package versions on GitHub Packages: listing, deleting and restoring them through GitHub's REST API
//! (octocrab), and the retention policy `prune` applies, which never deletes a version a kept tag still needs.
//!
//! The pieces are separate so each can be tested on its own: [`api`] talks to GitHub, [`rules`] parses the
//! policy's inputs, [`graph`] reads from the registry what each version points at, [`policy`] is the pure decision
//! and [`prune`] runs the whole with a progress sink. Nothing here reads the environment or prints.

pub mod api;
mod error;
pub mod graph;
pub mod policy;
pub mod prune;
pub mod rules;

#[cfg(test)]
mod policy_tests;

use chrono::{DateTime, Utc};

pub use api::{ApiOptions, OwnerKind, PackageRef, PackagesApi};
pub use error::{ApiAction, PackagesError};
pub use graph::{Graph, Relation};
pub use octocrab::models::packages::PackageType;
pub use policy::{Decision, Policy, Reason};
pub use prune::{Outcome, Plan, PruneReport, PruneRequest, RestoreReport, Row, find_package, plan, prune, restore};
pub use rules::{TagPattern, parse_age};

/// One version of a package as the API lists it. For a container package its `name` is the manifest digest and
/// `tags` the tags pointing at it; for npm, Maven, NuGet and RubyGems the name is the version string and there
/// are no tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub id: u64,
    pub name: String,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Version {
    /// How the version is named in messages: its first tag, else its name (a digest, shortened).
    pub fn label(&self) -> String {
        match self.tags.first() {
            Some(tag) => tag.clone(),
            None => short_digest(&self.name),
        }
    }
}

/// `sha256:0123456789ab` (12 hex digits), for tables and reasons; other names unchanged.
pub fn short_digest(name: &str) -> String {
    match name.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
            format!("{alg}:{}", &hex[..12])
        }
        _ => name.to_string(),
    }
}

/// The package type an input names (`container`, `npm`, `maven`, `nuget`, `rubygems`).
pub fn parse_package_type(s: &str) -> Option<PackageType> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "container" => PackageType::Container,
        "npm" => PackageType::Npm,
        "maven" => PackageType::Maven,
        "nuget" => PackageType::Nuget,
        "rubygems" => PackageType::Rubygems,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_shortened_for_people_and_names_kept() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(short_digest(&d), "sha256:abababababab");
        assert_eq!(short_digest("1.2.3"), "1.2.3");
        assert_eq!(parse_package_type(" NPM "), Some(PackageType::Npm));
        assert_eq!(parse_package_type("docker"), None, "docker.pkg.github.com packages were migrated to ghcr.io");
    }
}

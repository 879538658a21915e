//! A prune from start to end: find the package, list its versions, read from the registry what each one needs,
//! decide, then delete in an order that never leaves a kept index without a child (or, in a dry run, only say
//! what would go). And its undo: restoring versions by id.

use chrono::{DateTime, Utc};

use super::api::{OwnerKind, PackageRef, PackagesApi};
use super::graph::{Graph, read_graph, resolve_tags};
use super::policy::{Decision, Policy, decide, deletion_order};
use super::{PackageType, PackagesError, Version};
use crate::image::ImageName;
use crate::progress::Progress;
use crate::registry::RegistryClient;

/// What to prune.
#[derive(Debug, Clone)]
pub struct PruneRequest {
    pub owner: String,
    /// Known already (skips the lookup), or asked of the API.
    pub owner_kind: Option<OwnerKind>,
    pub package_type: PackageType,
    pub package: String,
    /// Where a container package's manifests are read (`ghcr.io/OWNER/PACKAGE`); `None` for other types.
    pub image: Option<ImageName>,
    pub policy: Policy,
    pub now: DateTime<Utc>,
    /// Manifests read at once.
    pub jobs: usize,
}

/// What happened to a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Kept,
    Deleted,
    /// A dry run: it would have been deleted.
    WouldDelete,
    /// To be deleted, but an earlier deletion failed and the prune stopped.
    NotReached,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub version: Version,
    pub decision: Decision,
    pub outcome: Outcome,
}

/// The decisions of a prune, before anything is deleted.
#[derive(Debug)]
pub struct Plan {
    pub package: PackageRef,
    pub versions: Vec<Version>,
    pub decisions: Vec<Decision>,
    pub graph: Graph,
}

/// What a prune did. `failure` is the deletion that stopped it, if one did.
#[derive(Debug)]
pub struct PruneReport {
    pub package: PackageRef,
    /// Every version, newest first.
    pub rows: Vec<Row>,
    /// The rows the rules delete, in the order they are (or in a dry run would be) deleted.
    pub order: Vec<usize>,
    pub dry_run: bool,
    pub failure: Option<PackagesError>,
}

impl PruneReport {
    pub fn deleted(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| matches!(r.outcome, Outcome::Deleted | Outcome::WouldDelete))
    }

    pub fn kept(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.outcome == Outcome::Kept)
    }
}

/// The package `owner`/`name`, with the owner's kind asked of the API unless known, checked to exist.
pub async fn find_package(
    api: &PackagesApi,
    owner: &str,
    kind: Option<OwnerKind>,
    package_type: PackageType,
    name: &str,
) -> Result<PackageRef, PackagesError> {
    let kind = match kind {
        Some(k) => k,
        None => api.owner_kind(owner).await?,
    };
    let package = PackageRef { owner: owner.to_string(), kind, package_type, name: name.to_string() };
    api.check_package(&package).await?;
    Ok(package)
}

/// Lists, reads the registry and decides; deletes nothing.
pub async fn plan(
    api: &PackagesApi,
    registry: &RegistryClient,
    request: &PruneRequest,
    progress: &dyn Progress,
) -> Result<Plan, PackagesError> {
    let package = find_package(api, &request.owner, request.owner_kind, request.package_type, &request.package).await?;
    let mut versions = api.list_versions(&package).await?;
    versions.sort_by_key(|v| std::cmp::Reverse((v.created_at, v.id)));
    progress.info(&format!("{package}: {} versions", versions.len()));
    let (graph, decisions) = match &request.image {
        Some(image) => {
            let mut graph = read_graph(registry, image, &versions, request.jobs, progress).await?;
            // The kept tags are looked up in the registry: where they point now is kept too.
            let first = decide(&versions, &graph, &request.policy, request.now);
            let kept_tags: Vec<String> = versions
                .iter()
                .zip(&first)
                .filter(|(_, d)| !d.is_delete())
                .flat_map(|(v, _)| v.tags.iter().cloned())
                .collect();
            resolve_tags(registry, image, &kept_tags, request.jobs, &mut graph).await?;
            let decisions = decide(&versions, &graph, &request.policy, request.now);
            (graph, decisions)
        }
        None => {
            // npm, Maven, NuGet, RubyGems: the version string is what the tag rules match.
            let named: Vec<Version> =
                versions.iter().map(|v| Version { tags: vec![v.name.clone()], ..v.clone() }).collect();
            let graph = Graph::default();
            let decisions = decide(&named, &graph, &request.policy, request.now);
            (graph, decisions)
        }
    };
    Ok(Plan { package, versions, decisions, graph })
}

/// Carries out a plan: deletes what it decided (parents before what they hold), or nothing in a dry run. The
/// first failed deletion stops the rest.
pub async fn prune(api: &PackagesApi, plan: Plan, dry_run: bool, progress: &dyn Progress) -> PruneReport {
    let Plan { package, versions, decisions, graph } = plan;
    let chosen: Vec<usize> = (0..versions.len()).filter(|i| decisions[*i].is_delete()).collect();
    let mut outcomes: Vec<Outcome> = decisions
        .iter()
        .map(|d| match (d.is_delete(), dry_run) {
            (false, _) => Outcome::Kept,
            (true, true) => Outcome::WouldDelete,
            (true, false) => Outcome::NotReached,
        })
        .collect();
    let mut failure = None;
    let order = deletion_order(&versions, &graph, &chosen);
    if !dry_run {
        for &i in &order {
            let v = &versions[i];
            match api.delete_version(&package, v.id).await {
                Ok(()) => {
                    progress.info(&format!("deleted version {} ({})", v.id, v.label()));
                    outcomes[i] = Outcome::Deleted;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
    }
    let rows = versions
        .into_iter()
        .zip(decisions)
        .zip(outcomes)
        .map(|((version, decision), outcome)| Row { version, decision, outcome })
        .collect();
    PruneReport { package, rows, order, dry_run, failure }
}

/// What a restore did: the versions restored, in order, and the failure that stopped it, if one did.
#[derive(Debug)]
pub struct RestoreReport {
    pub package: PackageRef,
    pub restored: Vec<Version>,
    pub failure: Option<PackagesError>,
}

/// Restores versions by id, last deleted first (a prune deletes an index before its children, so its children
/// come back before it).
pub async fn restore(api: &PackagesApi, package: PackageRef, ids: &[u64], progress: &dyn Progress) -> RestoreReport {
    let mut restored = Vec::new();
    let mut failure = None;
    for &id in ids.iter().rev() {
        let result = match api.restore_version(&package, id).await {
            Ok(()) => api.get_version(&package, id).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => {
                progress.info(&format!("restored version {id} ({})", v.label()));
                restored.push(v);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    RestoreReport { package, restored, failure }
}

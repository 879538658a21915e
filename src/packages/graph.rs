//! What each version of a container package points at, read from the registry with the client (and
//! credentials) publishing uses: an index's children and attestation manifests, the `subject` of OCI referrers,
//! buildx's `vnd.docker.reference.digest` annotations, and the `sha256-<digest>.sig/.att/.sbom` tags. The
//! retention policy walks these edges from every kept version, so nothing a kept tag needs is ever deleted.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{StreamExt as _, stream};
use serde_json::Value;

use super::rules::{AttachedKind, attached_to};
use super::{PackagesError, Version};
use crate::image::ImageName;
use crate::progress::Progress;
use crate::registry::{RegistryClient, RegistryError};

/// Why keeping one version keeps another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Relation {
    /// A platform image of an index.
    Child,
    /// A buildx attestation manifest (`unknown/unknown` in the index, `vnd.docker.reference.digest` to its image).
    Attestation,
    /// An OCI referrer: its `subject` is the other version.
    Referrer,
    /// A cosign signature (`sha256-<digest>.sig`).
    Signature,
    /// A cosign attestation (`sha256-<digest>.att`).
    CosignAttestation,
    /// A cosign SBOM (`sha256-<digest>.sbom`).
    Sbom,
    /// The OCI referrers tag schema's index (`sha256-<digest>`).
    ReferrersIndex,
    /// Where the registry says a tag GitHub lists on the other version points now (it moved since).
    MovedTag,
}

impl Relation {
    /// `child of`, `attestation of`, ...: what the kept version is to the one that keeps it.
    pub fn describe(self) -> &'static str {
        match self {
            Relation::Child => "child of",
            Relation::Attestation => "attestation of",
            Relation::Referrer => "referrer of",
            Relation::Signature => "signature of",
            Relation::CosignAttestation => "cosign attestation of",
            Relation::Sbom => "SBOM of",
            Relation::ReferrersIndex => "referrers index of",
            Relation::MovedTag => "tag moved here from",
        }
    }
}

/// One edge: keeping `from` keeps `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub to: String,
    pub relation: Relation,
}

/// The edges between a package's versions (by digest), and what the registry said about its tags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    edges: BTreeMap<String, BTreeSet<Edge>>,
    /// Where the registry says a tag points now, for the tags that were looked up.
    pub tag_targets: BTreeMap<String, String>,
    /// Versions whose manifest the registry does not have (nothing can need them).
    pub missing: BTreeSet<String>,
}

const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

impl Graph {
    pub fn add(&mut self, from: &str, to: &str, relation: Relation) {
        if from != to {
            self.edges.entry(from.to_string()).or_default().insert(Edge { to: to.to_string(), relation });
        }
    }

    /// What keeping `digest` keeps directly.
    pub fn edges_from(&self, digest: &str) -> impl Iterator<Item = &Edge> {
        self.edges.get(digest).into_iter().flatten()
    }

    /// The edges a manifest or index (its JSON) implies.
    pub fn add_manifest(&mut self, digest: &str, bytes: &[u8]) {
        let Ok(doc) = serde_json::from_slice::<Value>(bytes) else { return };
        let str_at = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        for desc in doc.get("manifests").and_then(Value::as_array).into_iter().flatten() {
            let Some(child) = str_at(desc, "digest") else { continue };
            let annotations = desc.get("annotations");
            let refers_to = annotations.and_then(|a| str_at(a, REFERENCE_DIGEST));
            let unknown_platform = desc.get("platform").is_some_and(|p| {
                str_at(p, "os").as_deref() == Some("unknown") && str_at(p, "architecture").as_deref() == Some("unknown")
            });
            let is_attestation = annotations.and_then(|a| str_at(a, REFERENCE_TYPE)).as_deref()
                == Some("attestation-manifest")
                || unknown_platform;
            self.add(digest, &child, if is_attestation { Relation::Attestation } else { Relation::Child });
            if let Some(image) = refers_to {
                self.add(&image, &child, Relation::Attestation);
            }
        }
        if let Some(subject) = doc.get("subject").and_then(|s| str_at(s, "digest")) {
            self.add(&subject, digest, Relation::Referrer);
        }
        if let Some(image) = doc.get("annotations").and_then(|a| str_at(a, REFERENCE_DIGEST)) {
            self.add(&image, digest, Relation::Attestation);
        }
    }

    /// A copy with an edge from each version to where the registry says its tags point now, when that is another
    /// version: keeping a version keeps its tags working.
    pub fn with_moved_tags(&self, versions: &[Version]) -> Graph {
        let mut g = self.clone();
        for v in versions {
            for tag in &v.tags {
                if let Some(target) = self.tag_targets.get(tag) {
                    g.add(&v.name, target, Relation::MovedTag);
                }
            }
        }
        g
    }

    /// The edges the `sha256-<digest>.sig/.att/.sbom` and `sha256-<digest>` tags imply.
    pub fn add_tags(&mut self, versions: &[Version]) {
        for v in versions {
            for tag in &v.tags {
                if let Some((subject, kind)) = attached_to(tag) {
                    let relation = match kind {
                        AttachedKind::Signature => Relation::Signature,
                        AttachedKind::Attestation => Relation::CosignAttestation,
                        AttachedKind::Sbom => Relation::Sbom,
                        AttachedKind::Referrers => Relation::ReferrersIndex,
                    };
                    self.add(&subject, &v.name, relation);
                }
            }
        }
    }
}

/// Reads every version's manifest from `image` (by digest, `jobs` at a time) and builds the graph. A manifest
/// the registry does not have is recorded as missing; any other failure stops the prune, since deciding without
/// the edges could delete what a kept tag needs.
pub async fn read_graph(
    client: &RegistryClient,
    image: &ImageName,
    versions: &[Version],
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Graph, PackagesError> {
    let mut graph = Graph::default();
    graph.add_tags(versions);
    let digests: Vec<&str> = versions.iter().map(|v| v.name.as_str()).filter(|n| n.starts_with("sha256:")).collect();
    progress.info(&format!("Reading {} manifests from {image}", digests.len()));
    let mut results = stream::iter(digests)
        .map(|digest| async move { (digest, client.get_manifest(image, digest).await) })
        .buffer_unordered(jobs.max(1));
    while let Some((digest, result)) = results.next().await {
        match result {
            Ok(raw) => graph.add_manifest(digest, &raw.bytes),
            Err(RegistryError::NotFound { .. }) => {
                progress.warning(&format!(
                    "{image}@{digest} is listed by GitHub but the registry has no such manifest; nothing can need it"
                ));
                graph.missing.insert(digest.to_string());
            }
            Err(e) => return Err(PackagesError::Registry { image: image.to_string(), source: Box::new(e) }),
        }
    }
    Ok(graph)
}

/// Asks the registry where each of `tags` points now (a tag moved since GitHub listed it keeps its new target
/// too). A tag the registry does not know is left out.
pub async fn resolve_tags(
    client: &RegistryClient,
    image: &ImageName,
    tags: &[String],
    jobs: usize,
    graph: &mut Graph,
) -> Result<(), PackagesError> {
    let mut results = stream::iter(tags)
        .map(|tag| async move { (tag, client.head_manifest(image, tag).await) })
        .buffer_unordered(jobs.max(1));
    while let Some((tag, result)) = results.next().await {
        match result {
            Ok(Some(desc)) => {
                graph.tag_targets.insert(tag.clone(), desc.digest.to_string());
            }
            Ok(None) => {}
            Err(e) => return Err(PackagesError::Registry { image: image.to_string(), source: Box::new(e) }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn edges(g: &Graph, from: &str) -> Vec<(String, Relation)> {
        g.edges_from(from).map(|e| (e.to.clone(), e.relation)).collect()
    }

    #[test]
    fn an_index_keeps_its_children_and_buildx_attestations() {
        let index = json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d('a'), "size": 1,
                 "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d('b'), "size": 1,
                 "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d('c'), "size": 1,
                 "platform": {"os": "unknown", "architecture": "unknown"},
                 "annotations": {"vnd.docker.reference.digest": d('a'), "vnd.docker.reference.type": "attestation-manifest"}}
            ]
        });
        let mut g = Graph::default();
        g.add_manifest(&d('i'), &serde_json::to_vec(&index).unwrap());
        assert_eq!(
            edges(&g, &d('i')),
            vec![(d('a'), Relation::Child), (d('b'), Relation::Child), (d('c'), Relation::Attestation)]
        );
        assert_eq!(edges(&g, &d('a')), vec![(d('c'), Relation::Attestation)], "the image keeps its attestation");
    }

    #[test]
    fn a_referrer_is_kept_by_its_subject_and_tags_by_their_digest() {
        let referrer = json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/spdx+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": d('0'), "size": 2},
            "layers": [],
            "subject": {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d('i'), "size": 9}
        });
        let mut g = Graph::default();
        g.add_manifest(&d('r'), &serde_json::to_vec(&referrer).unwrap());
        g.add_manifest(&d('x'), b"not json");
        let hex = "i".repeat(64);
        let now = chrono::Utc::now();
        let v = |name: String, tags: &[&str]| Version {
            id: 1,
            name,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            created_at: now,
            updated_at: now,
        };
        // `i` is not hex: that tag names nothing. `e` is.
        let e_hex = "e".repeat(64);
        g.add_tags(&[
            v(d('s'), &[&format!("sha256-{e_hex}.sig")]),
            v(d('t'), &[&format!("sha256-{hex}.sig")]),
            v(d('u'), &[&format!("sha256-{e_hex}")]),
        ]);
        assert_eq!(edges(&g, &d('i')), vec![(d('r'), Relation::Referrer)]);
        assert_eq!(edges(&g, &d('e')), vec![(d('s'), Relation::Signature), (d('u'), Relation::ReferrersIndex)]);
        assert_eq!(edges(&g, &d('x')), vec![]);
    }
}

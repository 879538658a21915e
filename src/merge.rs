//! Merging images pushed by digest (one per platform, typically one per job of a build matrix) into one index,
//! then tagging it as a publish would.
//!
//! Each source is read as the registry holds it, byte for byte (an image, or every image of an index: its
//! attestation manifests included), so each child keeps the digest its job reported. Two sources with the same
//! platform are refused before anything is written. The index lists the images ordered by platform, then the
//! attestations after the images they describe, so the same sources always give the same index digest whatever
//! order the jobs finished in. Blobs go to the targets as pushes do: already there, mounted from another
//! repository of the same registry, or streamed from another registry.

use std::collections::BTreeMap;

use crate::handoff::{self, Scope};
use crate::image::{Artifact, Image, ImageIndex, ImageName, ImageRef, Platform};
use crate::progress::Progress;
use crate::publish::{self, Delivery, PublishError, Published};
use crate::registry::{self, RegistryClient, RegistryError};

/// The annotation BuildKit puts on an attestation's index entry, naming the image it describes.
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

/// What to merge and where the index goes.
#[derive(Debug, Clone)]
pub struct MergeRequest {
    /// The sources as given; empty: this run's hand-offs in the first target ([`handoff`]).
    pub sources: Vec<ImageRef>,
    /// The run whose hand-offs to take (and delete) when `sources` is empty.
    pub scope: Option<Scope>,
    pub delivery: Delivery,
    pub index_annotations: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("reading the source {source_ref}: {error}")]
    Source { source_ref: String, error: RegistryError },
    #[error(
        "input `sources`: {platform} comes from both {first} and {second}: a merged index holds one image per \
         platform; drop one of them, or give each matrix job a different platform"
    )]
    SamePlatform { platform: String, first: String, second: String },
    #[error(
        "input `sources`: none given, and no image was pushed by digest for run {run} at commit {sha} to {target} \
         (no `octopush-handoff-{run}-*` tag): run the matrix jobs with `push_by_digest: true` and the same \
         `images`/`repository` before this job (`needs:`), or list the digests in `sources`"
    )]
    NothingToMerge { run: String, sha: String, target: String },
    #[error(
        "input `sources`: none given; outside a workflow run there is no hand-off to find: list the images to merge"
    )]
    NoSources,
    #[error(transparent)]
    Handoff(#[from] handoff::HandoffError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Reads the sources, builds the index and delivers it.
pub async fn merge(
    client: &RegistryClient,
    req: &MergeRequest,
    progress: &dyn Progress,
) -> Result<Published, MergeError> {
    let mut clock = publish::Phases::start();
    publish::check_push(client, &req.delivery.targets, progress).await?;
    let first_target = req.delivery.targets.first();
    let (sources, handoffs) = match (req.sources.is_empty(), &req.scope, first_target) {
        (false, _, _) => (req.sources.clone(), Vec::new()),
        (true, Some(scope), Some(target)) => {
            let found = handoff::find(client, target, scope).await?;
            if found.is_empty() {
                return Err(MergeError::NothingToMerge {
                    run: scope.run_id.clone(),
                    sha: scope.sha.clone(),
                    target: target.to_string(),
                });
            }
            progress.info(&format!(
                "found {} image(s) this run pushed by digest: {}",
                found.len(),
                found.iter().map(|f| f.tag.as_str()).collect::<Vec<_>>().join(", ")
            ));
            (found.iter().map(|f| f.reference.clone()).collect(), found)
        }
        _ => return Err(MergeError::NoSources),
    };

    let mut images: Vec<(String, Image)> = Vec::new();
    for source in &sources {
        let read = registry::read_images(client, source)
            .await
            .map_err(|error| MergeError::Source { source_ref: source.to_string(), error })?;
        progress.info(&format!("{source}: {}", describe(&read)));
        images.extend(read.into_iter().map(|i| (source.to_string(), i)));
    }
    let index = ImageIndex { images: ordered(images).map_err(|e| *e)?, annotations: req.index_annotations.clone() };
    clock.lap("read");
    let mut published = publish::deliver(client, &Artifact::Index(index), &req.delivery, &[], progress).await?;
    if let Some(target) = first_target.filter(|_| !handoffs.is_empty()) {
        handoff::remove(client, target, &handoffs, progress).await;
    }
    clock.lap("push");
    published.phases = clock.done();
    Ok(published)
}

fn describe(images: &[Image]) -> String {
    let (attestations, platforms): (Vec<&Image>, Vec<&Image>) = images.iter().partition(|i| i.is_attestation());
    let mut text = platforms.iter().map(|i| i.index_platform().to_string()).collect::<Vec<_>>().join(", ");
    if !attestations.is_empty() {
        text.push_str(&format!(" and {} attestation manifest(s)", attestations.len()));
    }
    text
}

fn platform_key(p: &Platform) -> String {
    p.to_string()
}

/// An image and the source it came from, as written.
type Sourced = (String, Image);

/// The images in index order, refusing a platform twice: images by platform, then each attestation after the
/// image it describes (those whose image is not merged are left out).
fn ordered(images: Vec<Sourced>) -> Result<Vec<Image>, Box<MergeError>> {
    let (attestations, platforms): (Vec<Sourced>, Vec<Sourced>) =
        images.into_iter().partition(|(_, i)| i.is_attestation());
    let mut by_platform: BTreeMap<String, Sourced> = BTreeMap::new();
    for (source, image) in platforms {
        let key = platform_key(&image.index_platform());
        if let Some((first, existing)) = by_platform.get(&key) {
            if existing.manifest().digest == image.manifest().digest {
                continue; // the same image named twice
            }
            return Err(Box::new(MergeError::SamePlatform { platform: key, first: first.clone(), second: source }));
        }
        by_platform.insert(key, (source, image));
    }
    let mut out = Vec::new();
    for (_, (_, image)) in by_platform {
        let digest = image.manifest().digest.to_string();
        let mut about: Vec<Image> = attestations
            .iter()
            .filter(|(_, a)| a.index_annotations().get(REFERENCE_DIGEST) == Some(&digest))
            .map(|(_, a)| a.clone())
            .collect();
        about.sort_by_key(|a| a.manifest().digest.to_string());
        about.dedup_by_key(|a| a.manifest().digest.to_string());
        out.push(image);
        out.extend(about);
    }
    Ok(out)
}

/// A `sources` line as a reference: `REGISTRY/REPO@sha256:...` or `REGISTRY/REPO:TAG` as written; a bare
/// digest or a bare tag names that in `target`.
pub fn source_ref(line: &str, target: &ImageName) -> Result<ImageRef, String> {
    let line = line.trim();
    if line.parse::<crate::image::Digest>().is_ok() {
        return Ok(ImageRef { name: target.clone(), tag: None, digest: Some(line.to_string()) });
    }
    if !line.contains('/') && !line.contains('@') && !line.contains(':') && crate::image::is_valid_tag(line) {
        return Ok(ImageRef { name: target.clone(), tag: Some(line.to_string()), digest: None });
    }
    ImageRef::parse(line).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Digest, RawManifest, media_type};
    use bytes::Bytes;

    /// An image as a registry holds it, for `platform`, with an index entry's annotations.
    fn image(platform: &str, salt: &str, annotations: &[(&str, &str)]) -> Image {
        let p = Platform::parse(platform).unwrap();
        let config = Bytes::from(format!(
            r#"{{"architecture":"{}","os":"{}","rootfs":{{"type":"layers","diff_ids":[]}},"salt":"{salt}"}}"#,
            p.architecture, p.os
        ));
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":{}}},"layers":[]}}"#,
            media_type::OCI_MANIFEST,
            media_type::OCI_CONFIG,
            Digest::of(&config),
            config.len()
        );
        let raw = RawManifest::new(media_type::OCI_MANIFEST, manifest.into_bytes());
        let entry = annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Image::from_registry(&ImageName::new("r.example", "a").unwrap(), raw, config, Vec::new())
            .unwrap()
            .with_index_entry(Some(p), entry)
    }

    #[test]
    fn the_order_is_by_platform_with_attestations_after_their_image_whatever_the_input_order() {
        let arm = image("linux/arm64", "a", &[]);
        let amd = image("linux/amd64", "b", &[]);
        let arm_digest = arm.manifest().digest.to_string();
        let att = image(
            "unknown/unknown",
            "c",
            &[(REFERENCE_DIGEST, &arm_digest), ("vnd.docker.reference.type", "attestation-manifest")],
        );
        let orphan =
            image("unknown/unknown", "d", &[(REFERENCE_DIGEST, "sha256:nothing"), ("vnd.docker.reference.type", "x")]);
        let one = ordered(vec![
            ("s1".into(), att.clone()),
            ("s1".into(), arm.clone()),
            ("s2".into(), amd.clone()),
            ("s1".into(), orphan.clone()),
        ])
        .unwrap();
        let two =
            ordered(vec![("s2".into(), amd.clone()), ("s1".into(), arm.clone()), ("s1".into(), att.clone())]).unwrap();
        let digests = |v: &[Image]| v.iter().map(|i| i.manifest().digest).collect::<Vec<_>>();
        assert_eq!(digests(&one), digests(&two), "same sources, same order");
        assert_eq!(digests(&one), vec![amd.manifest().digest, arm.manifest().digest, att.manifest().digest]);
        let idx = |v: Vec<Image>| ImageIndex { images: v, annotations: BTreeMap::new() }.manifest().digest;
        assert_eq!(idx(one), idx(two), "the same index digest");
    }

    #[test]
    fn a_platform_twice_is_refused_naming_both_sources() {
        let e = ordered(vec![
            ("r/a@sha256:1".into(), image("linux/amd64", "x", &[])),
            ("r/b@sha256:2".into(), image("linux/amd64", "y", &[])),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("linux/amd64 comes from both r/a@sha256:1 and r/b@sha256:2"), "{e}");
        assert!(e.starts_with("input `sources`"), "{e}");
        // The very same image twice is not a conflict.
        let same = image("linux/amd64", "x", &[]);
        assert_eq!(ordered(vec![("a".into(), same.clone()), ("b".into(), same)]).unwrap().len(), 1);
    }

    #[test]
    fn sources_may_be_bare_digests_or_tags_of_the_target() {
        let target = ImageName::new("ghcr.io", "octo/app").unwrap();
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(source_ref(&d, &target).unwrap().to_string(), format!("ghcr.io/octo/app@{d}"));
        assert_eq!(source_ref("amd64-build", &target).unwrap().to_string(), "ghcr.io/octo/app:amd64-build");
        assert_eq!(source_ref(&format!("quay.io/o/a@{d}"), &target).unwrap().to_string(), format!("quay.io/o/a@{d}"));
        assert!(source_ref("not a ref", &target).is_err());
    }
}

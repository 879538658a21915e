//! Handing image digests from the jobs of a build matrix to the job that merges them, with nothing but the
//! registry. A matrix's job outputs overwrite each other, so each job that pushes by digest also leaves a
//! *hand-off*: a small OCI index of what it pushed, tagged
//! `octopush-handoff-<run id>-<run attempt>-<first 12 hex digits of the pushed digest>` and annotated with the
//! run and the commit. The merge job of the same run lists the repository's tags, takes every hand-off of its run
//! and attempt whose commit is its own, and, once the merged index is tagged, deletes them by digest: deleting a
//! hand-off index removes its tag and nothing else (the images it lists are the merged index's children now).
//! A registry that does not delete through its API (ghcr.io; distribution without `storage.delete.enabled`) keeps
//! them; the merge says which tags are left and how to remove them.

use std::collections::BTreeMap;

use crate::image::{Artifact, Digest, ImageIndex, ImageName, ImageRef};
use crate::progress::{Progress, Quiet};
use crate::registry::{self, Deleted, RegistryClient, RegistryError};

pub const TAG_PREFIX: &str = "octopush-handoff-";
pub const RUN: &str = "dev.octopush.handoff.run";
pub const ATTEMPT: &str = "dev.octopush.handoff.attempt";
pub const SHA: &str = "dev.octopush.handoff.sha";
/// The digest the job pushed (an image or an index).
pub const PUSHED: &str = "dev.octopush.handoff.pushed";

/// The workflow run a hand-off belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub run_id: String,
    pub attempt: String,
    pub sha: String,
}

impl Scope {
    fn prefix(&self) -> String {
        format!("{TAG_PREFIX}{}-{}-", self.run_id, self.attempt)
    }

    /// The hand-off tag for a pushed digest.
    pub fn tag(&self, pushed: &Digest) -> String {
        format!("{}{}", self.prefix(), &pushed.hex()[..12])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("leaving the hand-off for the merge job in {target}: {source}")]
    Leave { target: String, source: RegistryError },
    #[error("finding the images this run pushed by digest to {target}: {source}")]
    Find { target: String, source: RegistryError },
}

/// Leaves the hand-off for `pushed` (already in `target`) in `target`.
pub async fn leave(
    client: &RegistryClient,
    target: &ImageName,
    pushed: &Artifact,
    scope: &Scope,
    progress: &dyn Progress,
) -> Result<(), HandoffError> {
    let images = pushed.images().into_iter().cloned().collect();
    let digest = pushed.manifest().digest;
    let annotations = BTreeMap::from([
        (RUN.to_string(), scope.run_id.clone()),
        (ATTEMPT.to_string(), scope.attempt.clone()),
        (SHA.to_string(), scope.sha.clone()),
        (PUSHED.to_string(), digest.to_string()),
    ]);
    let index = Artifact::Index(ImageIndex { images, annotations });
    let tag = scope.tag(&digest);
    // Everything it lists is in place already: this puts one small index.
    registry::push(client, target, &index, std::slice::from_ref(&tag), &Quiet)
        .await
        .map_err(|source| HandoffError::Leave { target: target.to_string(), source })?;
    progress.info(&format!("left {target}:{tag} for the merge job of run {}", scope.run_id));
    Ok(())
}

/// A hand-off found in a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub tag: String,
    /// The hand-off index's own digest, to delete it by.
    pub index: Digest,
    /// `target:tag`, to read the images it lists.
    pub reference: ImageRef,
}

/// The hand-offs of `scope` in `target`, in tag order.
pub async fn find(client: &RegistryClient, target: &ImageName, scope: &Scope) -> Result<Vec<Found>, HandoffError> {
    let fail = |source| HandoffError::Find { target: target.to_string(), source };
    let prefix = scope.prefix();
    let mut tags: Vec<String> =
        client.list_tags(target).await.map_err(fail)?.into_iter().filter(|t| t.starts_with(&prefix)).collect();
    tags.sort();
    let mut found = Vec::new();
    for tag in tags {
        let raw = client.get_manifest(target, &tag).await.map_err(fail)?;
        let index: crate::image::Index = match serde_json::from_slice(&raw.bytes) {
            Ok(i) => i,
            Err(_) => continue,
        };
        let of_this_commit = index.annotations.as_ref().and_then(|a| a.get(SHA)).is_some_and(|s| *s == scope.sha);
        if of_this_commit {
            let reference = ImageRef { name: target.clone(), tag: Some(tag.clone()), digest: None };
            found.push(Found { tag, index: raw.digest, reference });
        }
    }
    Ok(found)
}

/// Deletes the hand-offs a merge used. A registry that cannot delete leaves them, with one warning naming them.
pub async fn remove(client: &RegistryClient, target: &ImageName, found: &[Found], progress: &dyn Progress) {
    let mut left = Vec::new();
    let mut why = String::new();
    for f in found {
        match client.delete_manifest(target, &f.index).await {
            Ok(Deleted::Yes) => progress.debug(&format!("deleted the hand-off {target}:{}", f.tag)),
            Ok(Deleted::Unsupported(said)) => {
                why = said;
                left.push(f.tag.clone());
            }
            Err(e) => {
                why = e.to_string();
                left.push(f.tag.clone());
            }
        }
    }
    if !left.is_empty() {
        progress.warning(&format!(
            "{} did not delete the hand-off tags ({why}); they are small indexes of this run's images and can go: {}. \
             On ghcr.io, delete those package versions (or let a retention policy do it).",
            target.registry,
            left.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_off_tags_are_valid_tags_scoped_to_the_run_and_attempt() {
        let scope = Scope { run_id: "1658821493".into(), attempt: "2".into(), sha: "2f2d842".into() };
        let d = Digest::of(b"image");
        let tag = scope.tag(&d);
        assert_eq!(tag, format!("octopush-handoff-1658821493-2-{}", &d.hex()[..12]));
        assert!(crate::image::is_valid_tag(&tag));
        assert!(tag.starts_with(&scope.prefix()));
        let other_attempt = Scope { attempt: "1".into(), ..scope.clone() };
        assert!(!tag.starts_with(&other_attempt.prefix()));
    }
}

//! The push pipeline, after go-containerregistry's `remote.Write` / `MultiWrite`: every distinct blob once (HEAD,
//! else mount from the same registry, else upload or copy registry to registry), `jobs` at a time; then platform
//! manifests by digest; then the top manifest once per tag, only when everything it references is in place.
//!
//! Nothing is reported as pushed before the registry confirmed it (issue 13): after tagging, each tag is read
//! back (HEAD) and must give the pushed digest. A manifest PUT refused with MANIFEST_BLOB_UNKNOWN (another job
//! pushing into the same repository at once can cause it) is repaired here, the one level that can: the blobs
//! are HEADed and uploaded again if missing, then the manifest is put again, within the retry policy's tries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use super::blobs::Mount;
use super::transport::Target;
use super::{Action, RegistryClient, RegistryError};
use crate::image::{Artifact, Blob, BlobSource, Digest, Growing, ImageName, RawManifest, is_valid_tag};
use crate::progress::{Progress, human_bytes};

/// What a push did, for outputs and the job summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushReport {
    /// The digest of the top manifest (the index for multi-platform images): what the tags point at.
    pub digest: Digest,
    pub manifest_size: u64,
    /// Distinct blobs plus every manifest, in bytes.
    pub total_size: u64,
    pub uploaded: usize,
    pub mounted: usize,
    pub skipped: usize,
    pub bytes_uploaded: u64,
    pub tags: Vec<String>,
}

/// What was done for one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// It was there already.
    Skipped,
    Mounted,
    /// Uploaded (or copied from another registry), with its size.
    Uploaded(u64),
}

/// Pushes `artifact` to `target`, tagged with each of `tags` (by digest only when `tags` is empty).
pub async fn push(
    client: &RegistryClient,
    target: &ImageName,
    artifact: &Artifact,
    tags: &[String],
    progress: &dyn Progress,
) -> Result<PushReport, RegistryError> {
    push_after(client, target, artifact, tags, &BTreeMap::new(), progress).await
}

/// One blob to `target` as [`push`] sends each (HEAD, else mount, else upload), for blobs pushed ahead of the
/// rest (layers uploaded while the build goes on). Safe to run beside a push of the same client: the same blob
/// to the same repository is never in flight twice.
pub async fn push_blob_to(
    client: &RegistryClient,
    target: &ImageName,
    blob: &Blob,
    progress: &dyn Progress,
) -> Result<BlobOutcome, RegistryError> {
    push_blob(client, &Target::new(target, Action::Push), blob, progress).await
}

/// Streams a blob that is still being written to `target` as it grows ([`RegistryClient::upload_growing`]);
/// returns its digest and outcome once the registry confirmed it. `None` when the stream did not go through (a
/// registry that refuses a streamed PATCH, a dropped connection, a writer that failed): the push then uploads the
/// finished blob from its file as any other ([`push_after`]), with retries, and reports any error it meets.
pub async fn push_growing_to(
    client: &RegistryClient,
    target: &ImageName,
    growing: &Growing,
    progress: &dyn Progress,
) -> Option<(Digest, BlobOutcome)> {
    let t = Target::new(target, Action::Push);
    let sent = Arc::new(AtomicU64::new(0));
    let upload = client.upload_growing(&t, growing, &sent);
    let uploaded = with_progress(client, progress, &sent, upload, |n| {
        format!("uploading a layer to {target} as it is compressed: {} so far", human_bytes(n))
    })
    .await;
    match uploaded {
        Ok(blob) => {
            let d = blob.descriptor;
            progress.info(&format!("uploaded {} ({}) as it was compressed", short(&d.digest), human_bytes(d.size)));
            Some((d.digest, BlobOutcome::Uploaded(d.size)))
        }
        Err(e) => {
            progress
                .debug(&format!("streaming a layer to {target} as it was compressed failed ({e}); uploading it whole"));
            None
        }
    }
}

/// [`push`], where the blobs in `done` were already pushed to `target` ([`push_blob_to`]): they are not asked
/// for again, and the report counts them by what was done then.
pub async fn push_after(
    client: &RegistryClient,
    target: &ImageName,
    artifact: &Artifact,
    tags: &[String],
    done: &BTreeMap<Digest, BlobOutcome>,
    progress: &dyn Progress,
) -> Result<PushReport, RegistryError> {
    if let Some(bad) = tags.iter().find(|t| !is_valid_tag(t)) {
        return Err(RegistryError::InvalidTag(bad.clone()));
    }
    let blobs = artifact.blobs();
    let t = Target::new(target, Action::Push);
    let mut outcomes: Vec<BlobOutcome> = blobs.keys().filter_map(|d| done.get(d).copied()).collect();
    let todo: Vec<&Blob> = blobs.values().filter(|b| !done.contains_key(&b.descriptor.digest)).collect();
    let pushed: Vec<BlobOutcome> = stream::iter(todo)
        .map(|b| push_blob(client, &t, b, progress))
        .buffer_unordered(client.options().jobs)
        .try_collect()
        .await?;
    outcomes.extend(pushed);

    let children: Vec<RawManifest> = match artifact {
        Artifact::Image(_) => Vec::new(),
        Artifact::Index(index) => index.images.iter().map(|i| i.manifest()).collect(),
    };
    let mut distinct_children: BTreeMap<Digest, &RawManifest> = BTreeMap::new();
    for m in &children {
        distinct_children.entry(m.digest.clone()).or_insert(m);
    }
    let all_blobs: Vec<&Blob> = blobs.values().collect();
    let repair = Repair { client, t: &t, blobs: &all_blobs, progress };
    stream::iter(distinct_children.values())
        .map(|m| async {
            repair.put(m.digest.as_str(), m, &[]).await?;
            progress.info(&format!("pushed platform manifest {}", short(&m.digest)));
            Ok::<_, RegistryError>(())
        })
        .buffer_unordered(client.options().jobs)
        .try_collect::<Vec<()>>()
        .await?;

    let top = artifact.manifest();
    let children: Vec<&RawManifest> = distinct_children.values().copied().collect();
    let references: Vec<&str> =
        if tags.is_empty() { vec![top.digest.as_str()] } else { tags.iter().map(String::as_str).collect() };
    for reference in &references {
        repair.put(reference, &top, &children).await?;
    }
    // Each tag must read back as what was pushed before it is reported (a server answering 200 to anything
    // would otherwise look like a registry that stored it all).
    for reference in &references {
        verify_reference(client, &t, reference, &top.digest).await?;
        let at = if tags.is_empty() { "@" } else { ":" };
        progress.info(&format!("pushed {target}{at}{reference} ({})", top.digest));
    }

    let mut report = PushReport {
        digest: top.digest.clone(),
        manifest_size: top.bytes.len() as u64,
        total_size: blobs.values().map(|b| b.descriptor.size).sum::<u64>()
            + distinct_children.values().map(|m| m.bytes.len() as u64).sum::<u64>()
            + top.bytes.len() as u64,
        uploaded: 0,
        mounted: 0,
        skipped: 0,
        bytes_uploaded: 0,
        tags: tags.to_vec(),
    };
    for o in outcomes {
        match o {
            BlobOutcome::Skipped => report.skipped += 1,
            BlobOutcome::Mounted => report.mounted += 1,
            BlobOutcome::Uploaded(n) => {
                report.uploaded += 1;
                report.bytes_uploaded += n;
            }
        }
    }
    Ok(report)
}

/// Puts manifests, repairing a MANIFEST_BLOB_UNKNOWN refusal: HEAD (and upload again if missing) every blob of
/// the push and the `children` manifests, then put again, after the policy's backoff, within its tries. The
/// operations it calls retry transient failures themselves; this retries only what they cannot repair.
struct Repair<'a> {
    client: &'a RegistryClient,
    t: &'a Target,
    blobs: &'a [&'a Blob],
    progress: &'a dyn Progress,
}

impl Repair<'_> {
    async fn put(
        &self,
        reference: &str,
        manifest: &RawManifest,
        children: &[&RawManifest],
    ) -> Result<(), RegistryError> {
        let policy = &self.client.options().retry;
        let mut attempt = 1;
        loop {
            match self.client.put_manifest(&self.t.name, reference, manifest).await {
                Err(e) if e.is_blob_unknown() && attempt < policy.attempts.max(1) => {
                    let delay = policy.backoff(attempt);
                    self.client.count_retry();
                    self.progress.warning(&format!(
                        "putting manifest {reference} of {} failed ({e}); checking its blobs again and putting it \
                         again in {:.1} s ({}/{})",
                        self.t.name,
                        delay.as_secs_f64(),
                        attempt + 1,
                        policy.attempts
                    ));
                    tokio::time::sleep(delay).await;
                    for blob in self.blobs {
                        push_blob(self.client, self.t, blob, self.progress).await?;
                    }
                    for child in children {
                        self.client.put_manifest(&self.t.name, child.digest.as_str(), child).await?;
                    }
                    attempt += 1;
                }
                result => return result.map(|_| ()),
            }
        }
    }
}

/// Reads `reference` back (HEAD, or GET when the registry leaves the digest out) and checks it gives `expected`.
async fn verify_reference(
    client: &RegistryClient,
    t: &Target,
    reference: &str,
    expected: &Digest,
) -> Result<(), RegistryError> {
    let message = match client.head_manifest_as(t, reference).await {
        Ok(Some(d)) if &d.digest == expected => return Ok(()),
        Ok(Some(d)) => format!(
            "right after storing `{reference}` as {expected} it answers {} for it (if another push moved the tag \
             at the same moment, push again)",
            d.digest
        ),
        Ok(None) => format!("right after storing `{reference}` it has no manifest `{reference}`"),
        Err(RegistryError::DigestMismatch { actual, .. }) => {
            format!("right after storing `{reference}` as {expected} it serves content with digest {actual} for it")
        }
        Err(e) => return Err(e),
    };
    Err(RegistryError::NotDistribution { registry: t.name.registry.clone(), message })
}

/// One blob, with no other push of the same client working on it at the same time.
async fn push_blob(
    client: &RegistryClient,
    t: &Target,
    blob: &Blob,
    progress: &dyn Progress,
) -> Result<BlobOutcome, RegistryError> {
    let lock = client.blob_lock(&t.name, &blob.descriptor.digest);
    let result = {
        let _only_one = lock.lock().await;
        push_blob_locked(client, t, blob, progress).await
    };
    drop(lock);
    client.prune_blob_locks();
    result
}

/// HEAD, else mount (same registry), else upload from its source, reporting a line for each.
async fn push_blob_locked(
    client: &RegistryClient,
    t: &Target,
    blob: &Blob,
    progress: &dyn Progress,
) -> Result<BlobOutcome, RegistryError> {
    let d = &blob.descriptor;
    if client.blob_exists_as(t, &d.digest, Some(d.size)).await? {
        progress.info(&format!("exists {} ({})", short(&d.digest), human_bytes(d.size)));
        return Ok(BlobOutcome::Skipped);
    }
    let mut session = None;
    if let BlobSource::Registry(from) = &blob.source {
        if from.registry == t.name.registry && from.repository != t.name.repository {
            match client.try_mount(&t.name, from, &d.digest).await {
                Ok(Mount::Mounted) => {
                    progress.info(&format!(
                        "mounted {} from {} ({})",
                        short(&d.digest),
                        from.repository,
                        human_bytes(d.size)
                    ));
                    return Ok(BlobOutcome::Mounted);
                }
                Ok(Mount::Refused(s)) => {
                    progress.debug(&format!(
                        "mount of {} from {} refused; copying it",
                        short(&d.digest),
                        from.repository
                    ));
                    session = s;
                }
                Err(
                    e @ (RegistryError::Unauthorized { .. }
                    | RegistryError::Denied { .. }
                    | RegistryError::NotFound { .. }),
                ) => {
                    progress.debug(&format!(
                        "mount of {} from {} failed ({e}); copying it",
                        short(&d.digest),
                        from.repository
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }
    let sent = Arc::new(AtomicU64::new(0));
    let upload = client.upload_blob_with(t, blob, session, &sent);
    with_progress(client, progress, &sent, upload, |n| {
        format!("uploading {}: {} of {}", short(&d.digest), human_bytes(n), human_bytes(d.size))
    })
    .await?;
    let verb = if matches!(blob.source, BlobSource::Registry(_)) { "copied" } else { "uploaded" };
    progress.info(&format!("{verb} {} ({})", short(&d.digest), human_bytes(d.size)));
    Ok(BlobOutcome::Uploaded(d.size))
}

/// Runs an upload, logging `line(bytes sent so far)` every progress interval until it ends (plain lines: Actions
/// logs are not terminals).
async fn with_progress<T>(
    client: &RegistryClient,
    progress: &dyn Progress,
    sent: &AtomicU64,
    upload: impl std::future::Future<Output = T>,
    line: impl Fn(u64) -> String,
) -> T {
    tokio::pin!(upload);
    let every = client.options().progress_interval.max(std::time::Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            r = &mut upload => return r,
            _ = tick.tick() => progress.info(&line(sent.load(Ordering::Relaxed))),
        }
    }
}

/// `sha256:0123456789ab…`, as progress lines show digests.
fn short(d: &Digest) -> String {
    format!("{}:{}…", d.algorithm(), d.short())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_digest() {
        assert_eq!(short(&Digest::of(b"")), "sha256:e3b0c44298fc…");
    }
}

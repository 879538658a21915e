//! Issue 13, findings 1 and 4, against the scripted fake in `testing.rs`: a server must prove what it claims
//! (a blob HEAD carries the digest or the size, a manifest PUT answers 201 with our digest, every tag reads back
//! as pushed), and the two refusals a retry repairs (DIGEST_INVALID after a cut body, MANIFEST_BLOB_UNKNOWN right
//! after an upload) are retried at the level that can replay them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use super::testing::{FakeRegistry, Reply, fast_client, image, random_blob};
use super::{ClientOptions, RegistryError, push};
use crate::image::{Artifact, Digest, ImageName, RawManifest};
use crate::progress::Collect;

fn name(fake: &FakeRegistry) -> ImageName {
    ImageName::new(&fake.host(), "a/b").unwrap()
}

fn html() -> Reply {
    Reply::Respond {
        status: 200,
        headers: vec![("Content-Type".into(), "text/html".into())],
        body: b"<html><body>Welcome to nginx!</body></html>".to_vec(),
    }
}

/// What a registry answers to a HEAD of `m` by tag or digest.
fn manifest_head(m: &RawManifest) -> Reply {
    Reply::with(
        200,
        &[
            ("Docker-Content-Digest", m.digest.as_str()),
            ("Content-Type", m.media_type.as_str()),
            ("Content-Length", &m.bytes.len().to_string()),
        ],
    )
}

fn one_layer_image(dir: &std::path::Path) -> Artifact {
    Artifact::Image(image("linux/amd64", vec![random_blob(dir, "layer", 3000)]))
}

#[tokio::test]
async fn a_server_answering_200_to_everything_is_not_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeRegistry::start(|_| html()).await;
    let client = fast_client(ClientOptions::default());
    let progress = Collect::default();
    let e = push(&client, &name(&fake), &one_layer_image(dir.path()), &["v1".into()], &progress).await.unwrap_err();
    assert!(matches!(e, RegistryError::NotDistribution { .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains(&fake.host()) && m.contains("does not speak the OCI distribution API"), "{m}");
    assert!(m.contains("`registry`"), "{m}");
    let lines = progress.lines();
    assert!(!lines.iter().any(|l| l.contains("exists") || l.contains("pushed")), "{lines:?}");
    assert_eq!(client.retry_count(), 0, "not a temporary failure");
}

#[tokio::test]
async fn a_blob_head_must_carry_the_digest_or_the_size() {
    type Headers = Vec<(&'static str, String)>;
    let d = Digest::of(b"blob");
    let cases: Vec<(Headers, Option<u64>, bool)> = vec![
        (vec![("Docker-Content-Digest", d.to_string())], None, true),
        (vec![("Docker-Content-Digest", d.to_string())], Some(4), true),
        (vec![("Content-Length", "4".into())], Some(4), true),
        (vec![("Docker-Content-Digest", Digest::of(b"other").to_string())], Some(4), false),
        (vec![("Content-Length", "5".into())], Some(4), false),
        (vec![], Some(4), false),
        (vec![("Content-Length", "4".into())], None, false),
    ];
    for (headers, size, ok) in cases {
        let h = headers.clone();
        let fake = FakeRegistry::start(move |_| {
            let refs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mut r = Reply::with(200, &refs);
            if let Reply::Respond { headers, .. } = &mut r {
                if !headers.iter().any(|(k, _)| k == "Content-Length") {
                    headers.push(("Content-Length".into(), "0".into()));
                }
            }
            r
        })
        .await;
        let client = fast_client(ClientOptions::default());
        let t = super::transport::Target::new(&name(&fake), super::Action::Pull);
        let got = client.blob_exists_as(&t, &d, size).await;
        match (ok, got) {
            (true, Ok(true)) => {}
            (false, Err(RegistryError::NotDistribution { message, .. })) => {
                assert!(message.contains(d.as_str()), "{message}")
            }
            (_, other) => panic!("{headers:?} with size {size:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_manifest_put_must_answer_201_with_our_digest() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = one_layer_image(dir.path());
    let top = artifact.manifest();
    let blobs: Vec<(Digest, u64)> =
        artifact.blobs().values().map(|b| (b.descriptor.digest.clone(), b.descriptor.size)).collect();
    for (status, digest, want) in [
        (200, Some(top.digest.to_string()), "not 201 Created"),
        (202, None, "not 201 Created"),
        (201, Some("sha256:nonsense".to_string()), "not a digest"),
        (201, Some(Digest::of(b"another").to_string()), "expected"),
    ] {
        let (blobs, stated) = (blobs.clone(), digest.clone());
        let fake = FakeRegistry::start(move |req| {
            if req.method == "HEAD" && req.target.contains("/blobs/") {
                let (d, size) = blobs.iter().find(|(d, _)| req.target.ends_with(d.as_str())).unwrap();
                return Reply::with(
                    200,
                    &[("Docker-Content-Digest", d.as_str()), ("Content-Length", &size.to_string())],
                );
            }
            match &stated {
                Some(d) => Reply::with(status, &[("Docker-Content-Digest", d.as_str())]),
                None => Reply::status(status),
            }
        })
        .await;
        let client = fast_client(ClientOptions::default());
        let e = push(&client, &name(&fake), &artifact, &["v1".into()], &Collect::default()).await.unwrap_err();
        assert!(e.to_string().contains(want), "{status} {digest:?}: {e}");
    }
}

#[tokio::test]
async fn every_tag_must_read_back_as_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = one_layer_image(dir.path());
    let top = artifact.manifest();
    let blobs: Vec<(Digest, u64)> =
        artifact.blobs().values().map(|b| (b.descriptor.digest.clone(), b.descriptor.size)).collect();
    let elsewhere = RawManifest { digest: Digest::of(b"x"), ..top.clone() };
    // `v2` reads back as another manifest, `v3` not at all.
    let (t, b) = (top.clone(), blobs.clone());
    let fake = FakeRegistry::start(move |req| match req.method.as_str() {
        "HEAD" if req.target.contains("/blobs/") => {
            let (d, size) = b.iter().find(|(d, _)| req.target.ends_with(d.as_str())).unwrap();
            Reply::with(200, &[("Docker-Content-Digest", d.as_str()), ("Content-Length", &size.to_string())])
        }
        "HEAD" if req.target.ends_with("/v1") => manifest_head(&t),
        "HEAD" if req.target.ends_with("/v2") => manifest_head(&elsewhere),
        "HEAD" => Reply::status(404),
        "PUT" => Reply::with(201, &[("Docker-Content-Digest", t.digest.as_str())]),
        _ => Reply::status(500),
    })
    .await;
    let client = fast_client(ClientOptions::default());
    let progress = Collect::default();
    let r = push(&client, &name(&fake), &artifact, &["v1".into()], &progress).await.unwrap();
    assert_eq!(r.digest, top.digest);
    assert!(progress.lines().iter().any(|l| l.contains(":v1 (")), "{:?}", progress.lines());
    for (tag, want) in [("v2", "answers sha256:2d711642"), ("v3", "has no manifest `v3`")] {
        let progress = Collect::default();
        let e = push(&client, &name(&fake), &artifact, &[tag.into()], &progress).await.unwrap_err();
        assert!(matches!(e, RegistryError::NotDistribution { .. }), "{e:?}");
        assert!(e.to_string().contains(want), "{tag}: {e}");
        assert!(!progress.lines().iter().any(|l| l.contains("pushed")), "{:?}", progress.lines());
    }
}

/// Finding 4: a body cut on the way makes the registry answer 400 DIGEST_INVALID; the upload restarts from a new
/// POST with the whole file, under the one retry policy.
#[tokio::test]
async fn digest_invalid_restarts_the_upload_from_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let layer = random_blob(dir.path(), "blob", 100_000);
    let digest = layer.blob.descriptor.digest.clone();
    let puts = Arc::new(AtomicUsize::new(0));
    let (p, d) = (puts.clone(), digest.clone());
    let fake = FakeRegistry::start(move |req| match req.method.as_str() {
        "POST" => Reply::with(202, &[("Location", "/v2/a/b/blobs/uploads/s")]),
        "PUT" if p.fetch_add(1, SeqCst) == 0 => Reply::Respond {
            status: 400,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body:
                br#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#
                    .to_vec(),
        },
        "PUT" => Reply::with(201, &[("Docker-Content-Digest", d.as_str())]),
        _ => Reply::status(204),
    })
    .await;
    let client = fast_client(ClientOptions::default());
    client.upload_blob(&name(&fake), &layer.blob).await.unwrap();
    let seen = fake.seen();
    let posts = seen.iter().filter(|s| s.method == "POST").count();
    assert_eq!((posts, puts.load(SeqCst), client.retry_count()), (2, 2, 1));
    let last = seen.iter().rev().find(|s| s.method == "PUT").unwrap();
    assert_eq!(Digest::of(&last.body), digest, "the whole blob again, from the file");
}

/// Finding 4: MANIFEST_BLOB_UNKNOWN right after the upload: HEAD the blobs again, upload the one the registry
/// lost, and put the manifest again; the tag is written once everything is in place.
#[tokio::test]
async fn manifest_blob_unknown_heads_and_uploads_again_then_puts_again() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = one_layer_image(dir.path());
    let top = artifact.manifest();
    let layer = artifact.blobs().values().find(|b| b.descriptor.size == 3000).unwrap().descriptor.clone();
    let manifest_puts = Arc::new(AtomicUsize::new(0));
    let layer_heads = Arc::new(AtomicUsize::new(0));
    let (mp, lh, t, l) = (manifest_puts.clone(), layer_heads.clone(), top.clone(), layer.clone());
    let fake = FakeRegistry::start(move |req| {
        let is_layer = req.target.ends_with(l.digest.as_str());
        match req.method.as_str() {
            // Missing at first, then (after the first upload) lost once more, then there.
            "HEAD" if is_layer => match lh.fetch_add(1, SeqCst) {
                0 | 1 => Reply::status(404),
                _ => Reply::with(200, &[("Docker-Content-Digest", l.digest.as_str())]),
            },
            "HEAD" if req.target.contains("/blobs/") => Reply::status(404),
            "HEAD" => manifest_head(&t),
            "POST" => Reply::with(202, &[("Location", "/v2/a/b/blobs/uploads/s")]),
            "PUT" if req.target.contains("/manifests/") => {
                if mp.fetch_add(1, SeqCst) == 0 {
                    Reply::Respond {
                        status: 400,
                        headers: vec![("Content-Type".into(), "application/json".into())],
                        body: br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#
                            .to_vec(),
                    }
                } else {
                    Reply::with(201, &[("Docker-Content-Digest", t.digest.as_str())])
                }
            }
            "PUT" => {
                let d = req.target.split("digest=").nth(1).unwrap_or_default().replace("%3A", ":");
                Reply::with(201, &[("Docker-Content-Digest", d.as_str())])
            }
            _ => Reply::status(500),
        }
    })
    .await;
    let client = fast_client(ClientOptions::default());
    let progress = Collect::default();
    let r = push(&client, &name(&fake), &artifact, &["v1".into()], &progress).await.unwrap();
    assert_eq!(r.digest, top.digest);
    assert_eq!(manifest_puts.load(SeqCst), 2);
    let layer_uploads = fake
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.target.contains("/blobs/") && s.body.len() as u64 == layer.size)
        .count();
    assert_eq!(layer_uploads, 2, "the lost layer went up again");
    assert_eq!(client.retry_count(), 1);
    let lines = progress.lines();
    assert!(lines.iter().any(|l| l.starts_with("warning:") && l.contains("MANIFEST_BLOB_UNKNOWN")), "{lines:?}");
}

/// The repair has the policy's budget: a registry that keeps refusing ends the push after that many tries.
#[tokio::test]
async fn manifest_blob_unknown_gives_up_after_the_policy_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = one_layer_image(dir.path());
    let blobs: Vec<(Digest, u64)> =
        artifact.blobs().values().map(|b| (b.descriptor.digest.clone(), b.descriptor.size)).collect();
    let fake = FakeRegistry::start(move |req| match req.method.as_str() {
        "HEAD" => {
            let (d, size) = blobs.iter().find(|(d, _)| req.target.ends_with(d.as_str())).unwrap();
            Reply::with(200, &[("Docker-Content-Digest", d.as_str()), ("Content-Length", &size.to_string())])
        }
        _ => Reply::Respond {
            status: 400,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#.to_vec(),
        },
    })
    .await;
    let client = fast_client(ClientOptions::default());
    let e = push(&client, &name(&fake), &artifact, &["v1".into()], &Collect::default()).await.unwrap_err();
    assert!(e.is_blob_unknown(), "{e:?}");
    let puts = fake.seen().iter().filter(|s| s.method == "PUT").count();
    assert_eq!(puts, 4, "four tries in all, as the policy says");
    assert_eq!(client.retry_count(), 3);
}

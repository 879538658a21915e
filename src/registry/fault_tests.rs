//! Faults a real registry will not produce on demand, against the scripted fake in `testing.rs`: 5xx then
//! success, 429 with `Retry-After`, a reset mid-upload, a wrong `Docker-Content-Digest`, a missing `Location`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use super::testing::{FakeRegistry, Reply, fast_client, random_blob};
use super::{ClientOptions, RegistryError};
use crate::image::{Digest, ImageName};
use crate::progress::Collect;

fn name(fake: &FakeRegistry) -> ImageName {
    ImageName::new(&fake.host(), "a/b").unwrap()
}

#[tokio::test]
async fn a_500_then_success_is_retried_once_and_counted() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let x = Digest::of(b"x");
    let fake = FakeRegistry::start(move |_| {
        if c.fetch_add(1, SeqCst) == 0 {
            Reply::status(500)
        } else {
            Reply::with(200, &[("Docker-Content-Digest", x.as_str())])
        }
    })
    .await;
    let client = fast_client(ClientOptions::default());
    let progress = Arc::new(Collect::default());
    client.set_progress(progress.clone());
    assert!(client.blob_exists(&name(&fake), &Digest::of(b"x")).await.unwrap());
    assert_eq!(fake.seen().len(), 2);
    assert_eq!(client.retry_count(), 1);
    let lines = progress.lines();
    assert!(lines.iter().any(|l| l.starts_with("warning:") && l.contains("500") && l.contains("(2/4)")), "{lines:?}");
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_the_policy_attempts() {
    let fake = FakeRegistry::start(|_| Reply::Respond {
        status: 503,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: br#"{"errors":[{"code":"UNAVAILABLE","message":"down for maintenance"}]}"#.to_vec(),
    })
    .await;
    let client = fast_client(ClientOptions::default());
    let e = client.get_manifest(&name(&fake), "latest").await.unwrap_err();
    assert_eq!(fake.seen().len(), 4, "four tries in all");
    assert_eq!(client.retry_count(), 3);
    assert!(matches!(e, RegistryError::Registry { status: 503, .. }), "{e:?}");
    assert!(e.to_string().contains("down for maintenance"), "{e}");
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let fake = FakeRegistry::start(move |_| {
        if c.fetch_add(1, SeqCst) == 0 { Reply::with(429, &[("Retry-After", "1")]) } else { Reply::status(404) }
    })
    .await;
    let client = fast_client(ClientOptions::default());
    let start = Instant::now();
    assert!(!client.blob_exists(&name(&fake), &Digest::of(b"x")).await.unwrap());
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(950), "waited only {waited:?}; the backoff alone is ~10 ms");
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn a_reset_mid_upload_restarts_from_a_new_post_with_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let layer = random_blob(dir.path(), "blob", 300_000);
    let digest = layer.blob.descriptor.digest.clone();
    let puts = Arc::new(AtomicUsize::new(0));
    let posts = Arc::new(AtomicUsize::new(0));
    let (p, q, d) = (puts.clone(), posts.clone(), digest.clone());
    let fake = FakeRegistry::start(move |req| match req.method.as_str() {
        "POST" => {
            let n = q.fetch_add(1, SeqCst);
            Reply::with(202, &[("Location", &format!("/v2/a/b/blobs/uploads/session-{n}?_state=s{n}"))])
        }
        "PUT" if p.fetch_add(1, SeqCst) == 0 => Reply::ResetAfter(64 << 10),
        "PUT" => Reply::with(201, &[("Docker-Content-Digest", d.as_str())]),
        _ => Reply::status(500),
    })
    .await;
    let client = fast_client(ClientOptions::default());
    client.upload_blob(&name(&fake), &layer.blob).await.unwrap();
    let seen = fake.seen();
    let methods: Vec<&str> = seen.iter().map(|s| s.method.as_str()).collect();
    assert!(methods.starts_with(&["POST", "PUT"]), "{methods:?}");
    assert!(methods.ends_with(&["POST", "PUT"]), "{methods:?}");
    assert_eq!(posts.load(SeqCst), 2, "the upload restarted with a new session");
    let last = seen.iter().rev().find(|s| s.method == "PUT").unwrap();
    assert!(last.target.starts_with("/v2/a/b/blobs/uploads/session-1?_state=s1&digest=sha256%3A"), "{}", last.target);
    assert_eq!(last.body.len(), 300_000);
    assert_eq!(Digest::of(&last.body), digest, "the whole file was sent again");
    assert_eq!(last.header("content-type"), Some("application/octet-stream"));
    assert_eq!(client.retry_count(), 1);
}

#[tokio::test]
async fn a_wrong_docker_content_digest_is_an_error_and_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let layer = random_blob(dir.path(), "blob", 1000);
    let fake = FakeRegistry::start(|req| match req.method.as_str() {
        "POST" => Reply::with(202, &[("Location", "/v2/a/b/blobs/uploads/x")]),
        "PUT" => Reply::with(201, &[("Docker-Content-Digest", Digest::of(b"something else").as_str())]),
        _ => Reply::status(204),
    })
    .await;
    let client = fast_client(ClientOptions::default());
    let e = client.upload_blob(&name(&fake), &layer.blob).await.unwrap_err();
    match &e {
        RegistryError::DigestMismatch { expected, actual, .. } => {
            assert_eq!(expected, &layer.blob.descriptor.digest);
            assert_eq!(actual, &Digest::of(b"something else"));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert_eq!(fake.seen().iter().filter(|s| s.method == "PUT").count(), 1);
    assert_eq!(fake.seen().iter().filter(|s| s.method == "DELETE").count(), 1, "the failed session is cancelled");
}

#[tokio::test]
async fn a_missing_location_is_a_protocol_error() {
    let dir = tempfile::tempdir().unwrap();
    let layer = random_blob(dir.path(), "blob", 10);
    let fake = FakeRegistry::start(|_| Reply::status(202)).await;
    let client = fast_client(ClientOptions::default());
    let e = client.upload_blob(&name(&fake), &layer.blob).await.unwrap_err();
    assert!(matches!(e, RegistryError::Protocol { .. }), "{e:?}");
    assert!(e.to_string().contains("Location") && e.to_string().contains(&fake.host()), "{e}");
    assert_eq!(fake.seen().len(), 1, "not retried");
}

#[tokio::test]
async fn a_manifest_whose_bytes_do_not_match_the_requested_digest_is_refused() {
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#.to_vec();
    let fake = FakeRegistry::start(move |_| Reply::Respond {
        status: 200,
        headers: vec![("Content-Type".into(), "application/vnd.oci.image.manifest.v1+json".into())],
        body: body.clone(),
    })
    .await;
    let client = fast_client(ClientOptions::default());
    let wanted = Digest::of(b"another manifest");
    let e = client.get_manifest(&name(&fake), wanted.as_str()).await.unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { ref expected, .. } if *expected == wanted), "{e:?}");
}

#[tokio::test]
async fn a_stalled_registry_times_out_and_is_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let found = || Reply::with(200, &[("Docker-Content-Digest", Digest::of(b"x").as_str())]);
    let fake = FakeRegistry::start(move |_| {
        match c.fetch_add(1, SeqCst) {
            0 => Reply::After(Duration::from_millis(600), Box::new(found())), // later than the timeout
            _ => found(),
        }
    })
    .await;
    let client = fast_client(ClientOptions { timeout: Duration::from_millis(200), ..ClientOptions::default() });
    assert!(client.blob_exists(&name(&fake), &Digest::of(b"x")).await.unwrap());
    assert_eq!(client.retry_count(), 1);
}

#[tokio::test]
async fn connection_refused_names_the_registry_input_and_is_not_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    drop(listener); // nothing listens there now
    let client = fast_client(ClientOptions::default());
    let e = client.blob_exists(&ImageName::new(&host, "a/b").unwrap(), &Digest::of(b"x")).await.unwrap_err();
    assert!(matches!(e, RegistryError::Connect { mid_transfer: false, .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains(&host) && m.contains("`registry` input"), "{m}");
    assert_eq!(client.retry_count(), 0);
}

#[tokio::test]
async fn a_long_upload_logs_how_far_it_got() {
    let dir = tempfile::tempdir().unwrap();
    let layer = random_blob(dir.path(), "blob", 50_000);
    let img = super::testing::image("linux/amd64", vec![layer]);
    let top = img.manifest();
    let fake = FakeRegistry::start(move |req| match req.method.as_str() {
        "HEAD" if req.target.contains("/manifests/") => Reply::with(
            200,
            &[
                ("Docker-Content-Digest", top.digest.as_str()),
                ("Content-Type", top.media_type.as_str()),
                ("Content-Length", &top.bytes.len().to_string()),
            ],
        ),
        "HEAD" => Reply::status(404),
        "POST" => Reply::with(202, &[("Location", "/v2/a/b/blobs/uploads/x")]),
        "PUT" if req.target.contains("/blobs/") => {
            Reply::After(Duration::from_millis(400), Box::new(Reply::status(201)))
        }
        _ => Reply::status(201),
    })
    .await;
    let client = fast_client(ClientOptions { progress_interval: Duration::from_millis(100), ..Default::default() });
    let progress = Collect::default();
    let r = super::push(&client, &name(&fake), &crate::image::Artifact::Image(img), &[], &progress).await.unwrap();
    assert_eq!(r.uploaded, 2);
    let lines = progress.lines();
    let periodic =
        lines.iter().filter(|l| l.starts_with("info: uploading sha256:") && l.contains("of 50.0 kB")).count();
    assert!(periodic >= 2, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("uploaded sha256:") && l.ends_with("(50.0 kB)")), "{lines:?}");
    assert!(client.inner.in_flight.lock().unwrap().is_empty(), "blob locks are released");
}

/// Issue 13, finding 5: a name that only looks local (`127.evil.example`) is spoken to over TLS, never plain HTTP;
/// listing it in `insecure_registries` is what allows plain HTTP.
#[tokio::test]
async fn a_name_starting_with_127_gets_tls_unless_listed_as_insecure() {
    let fake = FakeRegistry::start(|_| Reply::with(200, &[("Docker-Content-Digest", Digest::of(b"x").as_str())])).await;
    let host = format!("127.evil.example:{}", fake.addr.port());
    let pinned = |options: ClientOptions| {
        super::install_crypto();
        super::RegistryClient::build(options, |b| b.resolve("127.evil.example", fake.addr)).unwrap()
    };
    let target = ImageName::new(&host, "a/b").unwrap();
    let tls_only = pinned(ClientOptions::default());
    tls_only.set_credentials(&host, super::Credentials::new("u", crate::secret::Secret::new("p4ss")));
    let e = tls_only.blob_exists(&target, &Digest::of(b"x")).await.unwrap_err();
    assert!(matches!(e, RegistryError::Tls { .. } | RegistryError::Connect { .. }), "{e:?}");
    assert!(fake.seen().is_empty(), "no plain HTTP request: {:?}", fake.seen());

    let listed = pinned(ClientOptions { insecure_registries: vec![host.clone()], ..ClientOptions::default() });
    assert!(listed.blob_exists(&target, &Digest::of(b"x")).await.unwrap());
    assert_eq!(fake.seen().len(), 1, "{:?}", fake.seen());
}

/// A listener that accepts connections and answers a plain HTTP request with `reply` (or never, when `None`), but
/// never answers a TLS ClientHello.
async fn mute_to_tls(reply: Option<&'static str>) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                // Each request on a kept-alive connection is answered; a ClientHello never is.
                while matches!(s.read(&mut buf).await, Ok(1..)) {
                    match reply {
                        Some(r) if buf[0] != 0x16 => {
                            let _ = s.write_all(r.as_bytes()).await;
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    (addr, task)
}

/// Issue 13, finding 10: a port that accepts TCP but never answers TLS cost 5 s before the fallback; now the
/// fallback comes within the probe's 1.5 s and says so.
#[tokio::test]
async fn a_port_silent_to_tls_falls_back_to_plain_http_quickly_and_says_so() {
    let d = Digest::of(b"x");
    let reply: &'static str = Box::leak(
        format!("HTTP/1.1 200 OK\r\nDocker-Content-Digest: {d}\r\nContent-Length: 0\r\n\r\n").into_boxed_str(),
    );
    let (addr, task) = mute_to_tls(Some(reply)).await;
    let client = fast_client(ClientOptions::default());
    let progress = Arc::new(Collect::default());
    client.set_progress(progress.clone());
    let start = Instant::now();
    assert!(client.blob_exists(&ImageName::new(&addr.to_string(), "a/b").unwrap(), &d).await.unwrap());
    let took = start.elapsed();
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    let lines = progress.lines();
    assert!(
        lines.iter().any(|l| l.starts_with("warning:") && l.contains("did not answer the TLS handshake")),
        "{lines:?}"
    );
    task.abort();
}

/// Issue 13, finding 10: a port that answers neither TLS nor HTTP fails fast with an error naming it.
#[tokio::test]
async fn a_port_that_answers_nothing_fails_fast_naming_the_registry_input() {
    let (addr, task) = mute_to_tls(None).await;
    let client = fast_client(ClientOptions::default());
    let start = Instant::now();
    let host = addr.to_string();
    let e = client.blob_exists(&ImageName::new(&host, "a/b").unwrap(), &Digest::of(b"x")).await.unwrap_err();
    let took = start.elapsed();
    assert!(took < Duration::from_millis(3500), "took {took:?}");
    assert!(matches!(e, RegistryError::NoAnswer { .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains(&host) && m.contains("neither the TLS handshake nor plain HTTP") && m.contains("`registry`"));
    assert_eq!(client.retry_count(), 0);
    task.abort();
}

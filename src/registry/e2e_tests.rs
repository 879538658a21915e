//! The client against a real distribution registry (Debian's `docker-registry`), results checked with plain
//! reqwest GETs and the registry's access log: push and read back, idempotent re-push, chunked uploads,
//! cross-repository mounts, registry-to-registry copies, htpasswd credentials, platform resolution.

use crate::image::{Artifact, Digest, History, ImageIndex, ImageName, ImageRef, Platform, media_type};
use crate::progress::Collect;

use super::distribution::Distribution;
use super::testing::{fast_client, gzip_layer, image, random_blob};
use super::{ClientOptions, Credentials, RegistryError, push, resolve_image, resolve_index};
use crate::secret::Secret;

/// A GET with nothing of ours in between: status, content type and body.
async fn raw_get(url: &str) -> (u16, String, Vec<u8>) {
    super::install_crypto();
    let resp = reqwest::Client::new().get(url).header("Accept", media_type::MANIFEST_ACCEPT).send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

fn name(reg: &Distribution, repo: &str) -> ImageName {
    ImageName::new(&reg.host, repo).unwrap()
}

#[tokio::test]
async fn push_of_file_blobs_reads_back_identically_and_a_second_push_uploads_nothing() {
    let reg = Distribution::start();
    let dir = tempfile::tempdir().unwrap();
    let img = image(
        "linux/amd64",
        vec![
            gzip_layer(dir.path(), "l1", &[("hello.txt", b"hello world\n")]),
            gzip_layer(dir.path(), "l2", &[("etc/motd", b"welcome\n")]),
        ],
    );
    let artifact = Artifact::Image(img.clone());
    let client = fast_client(ClientOptions::default());
    let target = name(&reg, "octo-org/app");
    let tags = vec!["v1".to_string(), "latest".to_string()];
    let progress = Collect::default();
    let r = push(&client, &target, &artifact, &tags, &progress).await.unwrap();

    let blob_total: u64 = img.blobs().iter().map(|b| b.descriptor.size).sum();
    assert_eq!(r.digest, img.manifest().digest);
    assert_eq!((r.uploaded, r.mounted, r.skipped), (3, 0, 0));
    assert_eq!(r.bytes_uploaded, blob_total);
    assert_eq!(r.total_size, blob_total + r.manifest_size);
    assert_eq!(r.tags, tags);
    let uploaded_lines = progress.lines().iter().filter(|l| l.starts_with("info: uploaded sha256:")).count();
    assert_eq!(uploaded_lines, 3, "{:?}", progress.lines());

    for reference in ["v1", "latest", r.digest.as_str()] {
        let (status, ct, body) = raw_get(&format!("http://{}/v2/octo-org/app/manifests/{reference}", reg.host)).await;
        assert_eq!(status, 200, "{reference}");
        assert_eq!(ct, media_type::OCI_MANIFEST);
        assert_eq!(Digest::of(&body), r.digest, "{reference}");
    }
    for blob in img.blobs() {
        let d = &blob.descriptor.digest;
        let (status, _, body) = raw_get(&format!("http://{}/v2/octo-org/app/blobs/{d}", reg.host)).await;
        assert_eq!(status, 200);
        assert_eq!(&Digest::of(&body), d);
    }

    let again = push(&client, &target, &artifact, &tags, &Collect::default()).await.unwrap();
    assert_eq!((again.uploaded, again.mounted, again.skipped, again.bytes_uploaded), (0, 0, 3, 0));
    assert_eq!(again.digest, r.digest);
    assert_eq!(reg.requests("PUT", "/blobs/uploads/").len(), 3, "blob PUTs happened in the first push only");
}

#[tokio::test]
async fn blobs_over_the_threshold_go_up_in_chunks_and_arrive_intact() {
    let reg = Distribution::start();
    let dir = tempfile::tempdir().unwrap();
    let chunk = 64 << 10;
    let exact = random_blob(dir.path(), "exact", 3 * chunk); // ends on a chunk boundary
    let ragged = random_blob(dir.path(), "ragged", 2 * chunk + 4321);
    let small = gzip_layer(dir.path(), "small", &[("a", b"a")]);
    let img = image("linux/amd64", vec![exact.clone(), ragged.clone(), small]);
    let client = fast_client(ClientOptions { monolithic_threshold: 100_000, chunk_size: chunk, ..Default::default() });
    let target = name(&reg, "big/blobs");
    let r = push(&client, &target, &Artifact::Image(img), &["1".into()], &Collect::default()).await.unwrap();
    assert_eq!(r.uploaded, 4);
    assert_eq!(reg.requests("PATCH", "/v2/big/blobs/blobs/uploads/").len(), 3 + 3, "3 chunks each, none for the rest");
    for layer in [&exact, &ragged] {
        let d = &layer.blob.descriptor.digest;
        let (status, _, body) = raw_get(&format!("http://{}/v2/big/blobs/blobs/{d}", reg.host)).await;
        assert_eq!(status, 200);
        assert_eq!(body.len() as u64, layer.blob.descriptor.size);
        assert_eq!(&Digest::of(&body), d);
    }
}

#[tokio::test]
async fn a_base_layer_in_another_repository_is_mounted_not_downloaded() {
    let reg = Distribution::start();
    let dir = tempfile::tempdir().unwrap();
    let client = fast_client(ClientOptions::default());
    let base_layer = gzip_layer(dir.path(), "base", &[("bin/sh", b"#!fake shell")]);
    let base_digest = base_layer.blob.descriptor.digest.clone();
    let base = image("linux/amd64", vec![base_layer]);
    push(&client, &name(&reg, "base/busybox"), &Artifact::Image(base), &["1".into()], &Collect::default())
        .await
        .unwrap();

    let r = ImageRef::parse(&format!("{}/base/busybox:1", reg.host)).unwrap();
    let resolved = resolve_image(&client, &r, &Platform::new("linux", "amd64", None)).await.unwrap();
    let derived = resolved.with_layer(
        gzip_layer(dir.path(), "app", &[("app/main", b"binary")]),
        History { created_by: Some("COPY main /app/".into()), ..Default::default() },
    );
    let progress = Collect::default();
    let target = name(&reg, "octo-org/app");
    let report = push(&client, &target, &Artifact::Image(derived), &["1".into()], &progress).await.unwrap();
    assert_eq!((report.mounted, report.uploaded, report.skipped), (1, 2, 0));
    assert!(progress.lines().iter().any(|l| l.contains("mounted sha256:") && l.contains("from base/busybox")));
    assert!(client.blob_exists(&target, &base_digest).await.unwrap());
    assert!(reg.requests("GET", &format!("/blobs/{base_digest}")).is_empty(), "the base layer was never downloaded");
    assert_eq!(reg.requests("POST", &format!("mount={}", base_digest.as_str().replace(':', "%3A"))).len(), 1);
    let (status, _, body) = raw_get(&format!("http://{}/v2/octo-org/app/manifests/1", reg.host)).await;
    assert_eq!((status, Digest::of(&body)), (200, report.digest));
}

#[tokio::test]
async fn a_base_layer_on_another_registry_is_copied_across_in_chunks() {
    let (src, dst) = (Distribution::start(), Distribution::start());
    let dir = tempfile::tempdir().unwrap();
    let chunk = 64 << 10;
    let client = fast_client(ClientOptions { monolithic_threshold: 100_000, chunk_size: chunk, ..Default::default() });
    let base_layer = random_blob(dir.path(), "base", 200_000);
    let base_digest = base_layer.blob.descriptor.digest.clone();
    let base = image("linux/amd64", vec![base_layer]);
    push(&client, &name(&src, "base/img"), &Artifact::Image(base), &["1".into()], &Collect::default()).await.unwrap();
    let r = ImageRef::parse(&format!("{}/base/img:1", src.host)).unwrap();
    let resolved = resolve_image(&client, &r, &Platform::new("linux", "amd64", None)).await.unwrap();
    let report = push(&client, &name(&dst, "copy/img"), &Artifact::Image(resolved), &["1".into()], &Collect::default())
        .await
        .unwrap();
    assert_eq!((report.uploaded, report.mounted), (2, 0));
    assert_eq!(src.requests("GET", &format!("/blobs/{base_digest}")).len(), 1, "read once from the source");
    assert_eq!(dst.requests("PATCH", "/v2/copy/img/blobs/uploads/").len(), 4, "200,000 bytes in 64 KiB chunks");
    let (status, _, body) = raw_get(&format!("http://{}/v2/copy/img/blobs/{base_digest}", dst.host)).await;
    assert_eq!((status, Digest::of(&body)), (200, base_digest));
}

#[tokio::test]
async fn htpasswd_right_password_pushes_and_a_wrong_one_names_the_inputs() {
    let reg = Distribution::start_htpasswd("octocat", "right-pass");
    let dir = tempfile::tempdir().unwrap();
    let artifact = Artifact::Image(image("linux/amd64", vec![gzip_layer(dir.path(), "l", &[("f", b"f")])]));
    let target = name(&reg, "private/app");

    let good = fast_client(ClientOptions::default());
    good.set_credentials(&reg.host, Credentials::new("octocat", Secret::new("right-pass")));
    let r = push(&good, &target, &artifact, &["1".into()], &Collect::default()).await.unwrap();
    assert_eq!(r.uploaded, 2);
    assert_eq!(good.get_manifest(&target, "1").await.unwrap().digest, r.digest);

    let bad = fast_client(ClientOptions::default());
    bad.set_credentials(
        &reg.host,
        Credentials::new("octocat", Secret::new("wrong-pass")).from_source("the `username` and `password` inputs"),
    );
    let e = push(&bad, &target, &artifact, &["2".into()], &Collect::default()).await.unwrap_err();
    assert!(matches!(e, RegistryError::BadCredentials { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "the registry {} rejected the credentials for octocat: check the `username` and `password` inputs",
            reg.host
        )
    );
    assert!(!format!("{e} {e:?}").contains("wrong-pass"));

    let anonymous = fast_client(ClientOptions::default());
    let e = push(&anonymous, &target, &artifact, &["3".into()], &Collect::default()).await.unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("registry_auth") && m.contains("`username` and `password`"), "{m}");
}

#[tokio::test]
async fn resolve_image_picks_the_platform_from_an_index_without_downloading_layers() {
    let reg = Distribution::start();
    let dir = tempfile::tempdir().unwrap();
    let amd = image("linux/amd64", vec![gzip_layer(dir.path(), "amd", &[("arch", b"amd64")])]);
    let arm = image("linux/arm64/v8", vec![gzip_layer(dir.path(), "arm", &[("arch", b"arm64")])]);
    let index = ImageIndex { images: vec![amd.clone(), arm.clone()], annotations: Default::default() };
    let client = fast_client(ClientOptions::default());
    let target = name(&reg, "base/multi");
    let r = push(&client, &target, &Artifact::Index(index.clone()), &["1".into()], &Collect::default()).await.unwrap();
    assert_eq!(r.digest, index.manifest().digest);
    assert_eq!(r.uploaded, 4);
    let (_, ct, _) = raw_get(&format!("http://{}/v2/base/multi/manifests/1", reg.host)).await;
    assert_eq!(ct, media_type::OCI_INDEX);

    let reference = ImageRef::parse(&format!("{}/base/multi:1", reg.host)).unwrap();
    let got = resolve_image(&client, &reference, &Platform::new("linux", "arm64", None)).await.unwrap();
    assert_eq!(got.config().architecture, "arm64");
    assert_eq!(got.layers().len(), 1);
    assert_eq!(got.layers()[0].blob.descriptor.digest, arm.layers()[0].blob.descriptor.digest);
    assert_eq!(got.layers()[0].blob.source, crate::image::BlobSource::Registry(target.clone()));
    assert_eq!(got.manifest().digest, arm.manifest().digest, "the resolved value reproduces the pushed manifest");

    let platforms: Vec<String> =
        resolve_index(&client, &reference).await.unwrap().iter().map(|p| p.to_string()).collect();
    assert_eq!(platforms, vec!["linux/amd64", "linux/arm64/v8"]);
    let e = resolve_image(&client, &reference, &Platform::new("linux", "s390x", None)).await.unwrap_err();
    assert!(e.to_string().contains("linux/amd64, linux/arm64/v8"), "{e}");

    for layer in [&amd.layers()[0], &arm.layers()[0]] {
        let d = &layer.blob.descriptor.digest;
        assert!(reg.requests("GET", &format!("/blobs/{d}")).is_empty(), "layer {d} was downloaded");
    }
    let e = resolve_image(
        &client,
        &ImageRef::parse(&format!("{}/base/none:1", reg.host)).unwrap(),
        &Platform::new("linux", "amd64", None),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e:?}");
}

/// The `scope` parameters of a token request, in order.
fn scopes(req: &super::testing::Seen) -> Vec<String> {
    let url = url::Url::parse(&format!("http://issuer{}", req.target)).unwrap();
    url.query_pairs().filter(|(k, _)| k == "scope").map(|(_, v)| v.into_owned()).collect()
}

#[tokio::test]
async fn token_auth_like_ghcr_one_token_per_scope_set_mount_scopes_and_refusals() {
    let (reg, issuer) = Distribution::start_token_auth("octocat", "ghp_right").await;
    let dir = tempfile::tempdir().unwrap();
    let client = fast_client(ClientOptions::default());
    client.set_credentials(&reg.host, Credentials::new("octocat", Secret::new("ghp_right")));
    let base = name(&reg, "octo-org/base");
    let artifact = Artifact::Image(image("linux/amd64", vec![gzip_layer(dir.path(), "base", &[("bin/sh", b"sh")])]));
    push(&client, &base, &artifact, &["1".into()], &Collect::default()).await.unwrap();
    let seen = issuer.seen();
    assert_eq!(seen.len(), 1, "one token served every request of the push: {seen:?}");
    assert_eq!(scopes(&seen[0]), vec!["repository:octo-org/base:pull,push"]);
    assert!(seen[0].target.contains("service=test-registry"));
    assert!(seen[0].header("authorization").is_some_and(|h| h.starts_with("Basic ")));

    let r = ImageRef::parse(&format!("{}/octo-org/base:1", reg.host)).unwrap();
    let resolved = resolve_image(&client, &r, &Platform::new("linux", "amd64", None)).await.unwrap();
    let app = name(&reg, "octo-org/app");
    let report = push(&client, &app, &Artifact::Image(resolved), &["1".into()], &Collect::default()).await.unwrap();
    assert_eq!(report.mounted, 1);
    let mount_tokens: Vec<_> = issuer
        .seen()
        .iter()
        .map(scopes)
        .filter(|s| s == &["repository:octo-org/app:pull,push", "repository:octo-org/base:pull"])
        .collect();
    assert_eq!(mount_tokens.len(), 1, "both scopes in one token request: {:?}", issuer.seen());

    let anonymous = fast_client(ClientOptions::default());
    assert_eq!(anonymous.get_manifest(&base, "1").await.unwrap().digest, artifact.manifest().digest);
    assert!(issuer.seen().last().unwrap().header("authorization").is_none(), "anonymous token request");
    let e = push(&anonymous, &name(&reg, "octo-org/other"), &artifact, &["1".into()], &Collect::default())
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { action: super::Action::Push, .. }), "{e:?}");
    let m = e.to_string();
    // Not a GitHub registry: the fix is credentials for this host, not the workflow's permissions.
    assert!(m.contains("registry_auth") && m.contains("=USERNAME:PASSWORD") && !m.contains("packages: write"), "{m}");

    let wrong = fast_client(ClientOptions::default());
    wrong.set_credentials(
        &reg.host,
        Credentials::new("octocat", Secret::new("ghp_wrong")).from_source("the `username` and `password` inputs"),
    );
    let e = push(&wrong, &app, &artifact, &["2".into()], &Collect::default()).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "the registry {} rejected the credentials for octocat: check the `username` and `password` inputs",
            reg.host
        )
    );
    for text in [format!("{e}"), format!("{e:?}"), format!("{client:?}"), format!("{wrong:?}")] {
        assert!(!text.contains("ghp_") && !text.contains("eyJ"), "a secret leaked: {text}");
    }
}

#[tokio::test]
async fn https_with_a_private_ca_works_over_http2_and_without_the_ca_file_names_it() {
    let (reg, _pki, ca) = Distribution::start_tls();
    let addr: std::net::SocketAddr = reg.host.parse().unwrap();
    let host = format!("registry.test:{}", addr.port());
    let pinned = |options: ClientOptions| {
        super::install_crypto();
        super::RegistryClient::build(options, |b| b.resolve("registry.test", addr)).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let artifact = Artifact::Image(image("linux/amd64", vec![gzip_layer(dir.path(), "l", &[("f", b"tls")])]));
    let target = ImageName::new(&host, "tls/app").unwrap();

    let trusted = pinned(ClientOptions { ca_file: Some(ca), ..Default::default() });
    let r = push(&trusted, &target, &artifact, &["1".into()], &Collect::default()).await.unwrap();
    assert_eq!(r.uploaded, 2);
    assert_eq!(trusted.get_manifest(&target, "1").await.unwrap().digest, r.digest);
    assert!(!reg.requests("PUT", "HTTP/2.0").is_empty(), "HTTP/2 over TLS: {:?}", reg.access_log());

    let untrusted = pinned(ClientOptions::default());
    let e = push(&untrusted, &target, &artifact, &["1".into()], &Collect::default()).await.unwrap_err();
    assert!(matches!(e, RegistryError::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("`ca_file`") && e.to_string().contains(&host), "{e}");
    assert_eq!(untrusted.retry_count(), 0, "a certificate problem is not retried");
}

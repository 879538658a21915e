//! Layer compression and uploads that overlap the build, against a real registry: `compression: zstd` through
//! the binary (media type in the manifest, `zstd -dc` of the pushed blob), every layer blob uploaded exactly
//! once per target while the build goes on, with the same digest as a build that pushes nothing; and, in
//! process, the overlap itself (a layer is in the registry before the build returns) and an early upload error
//! that ends the build with the registry's error instead of hanging.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Mode, Registry, RunResult, Workflow, push_busybox_base, run_ok, tar_entries, tool};
use octopush::builder::{BuildError, SinkItem};
use octopush::image::{Blob, BlobSource, Descriptor, Digest, Growing, ImageName, media_type};
use octopush::progress::Quiet;
use octopush::publish::{PublishError, push_while};
use octopush::registry::{BlobOutcome, ClientOptions, RegistryClient, RegistryError};

/// Bytes that do not compress much, so a layer of them takes a while to compress (`seed` makes each distinct).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A Dockerfile with four COPY layers on the busybox base in `registry`, the layer cache off (layers must be
/// compressed, not taken from a cache).
fn four_layers(wf: Workflow, registry: &Registry) -> Workflow {
    wf.input("cache_dir", "false")
        .file("one/small.txt", "the first layer\n")
        .file("two/noise.bin", noise(3 << 20, 2))
        .file("three/noise.bin", noise(2 << 20, 3))
        .file("four/readme.md", "# four\n".repeat(10_000))
        .file(
            "Dockerfile",
            format!(
                "FROM {}/base/busybox:1\nCOPY one/ /one/\nCOPY two/ /two/\nCOPY three/ /three/\nCOPY four/ /four/\n",
                registry.host()
            ),
        )
}

/// `zstd -dc` of `blob`.
fn unzstd(blob: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool("zstd"))
        .args(["-dc"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("zstd (scripts/install-test-deps.sh)");
    let mut stdin = child.stdin.take().unwrap();
    let owned = blob.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &owned));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "zstd -dc failed");
    out.stdout
}

fn blobs_json(result: &RunResult) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_str(result.output("metadata")).expect("metadata output");
    json["blobs"].clone()
}

#[test]
fn zstd_layers_are_pushed_with_their_media_type_and_zstd_reads_them() {
    let registry = Registry::start(Mode::Anonymous);
    let base = push_busybox_base(&registry, "base/busybox:1");
    let result = Workflow::new()
        .input("registry", registry.host())
        .input("repository", "octo-org/zstd")
        .input("tags", "v1")
        .input("compression", "zstd")
        .input("cache_dir", "false")
        .file("app/hello.txt", "hello from a zstd layer\n")
        .file("app/data.bin", noise(300_000, 7))
        .file("Dockerfile", format!("FROM {}/base/busybox:1\nCOPY app/ /app/\n", registry.host()))
        .run();
    result.assert_success();
    let (manifest, _) = registry.get_manifest_json("octo-org/zstd", "v1");
    assert_eq!(registry.get_manifest("octo-org/zstd", "v1").1, result.output("digest"));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{manifest}");
    assert_eq!(layers[0]["digest"], base.layer_digest.as_str(), "the base layer stays as it is");
    assert_eq!(layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    assert_eq!(layers[1]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd", "{manifest}");

    let blob = registry.get_blob("octo-org/zstd", layers[1]["digest"].as_str().unwrap());
    assert_eq!(&blob[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
    let tar_bytes = unzstd(&blob);
    let config: serde_json::Value =
        serde_json::from_slice(&registry.get_blob("octo-org/zstd", manifest["config"]["digest"].as_str().unwrap()))
            .unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][1], common::sha256_digest(&tar_bytes), "diff_id is the tar's digest");
    let files = tar_entries(tar_bytes.as_slice());
    assert_eq!(files.get("app/hello.txt").map(Vec::as_slice), Some(&b"hello from a zstd layer\n"[..]));
    assert_eq!(files.get("app/data.bin"), Some(&noise(300_000, 7)));
}

#[test]
fn gzip_layers_pass_gzip_t_and_unpack() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let result = four_layers(Workflow::new(), &registry)
        .input("registry", registry.host())
        .input("repository", "octo-org/gz")
        .input("tags", "v1")
        .run();
    result.assert_success();
    let (manifest, _) = registry.get_manifest_json("octo-org/gz", "v1");
    let layer = &manifest["layers"][2];
    assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    let blob = registry.get_blob("octo-org/gz", layer["digest"].as_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.tar.gz");
    std::fs::write(&path, &blob).unwrap();
    run_ok(Command::new("gzip").arg("-t").arg(&path));
    let files = tar_entries(run_ok_bytes(Command::new("gzip").arg("-dc").arg(&path)).as_slice());
    assert_eq!(files.get("two/noise.bin"), Some(&noise(3 << 20, 2)), "{:?}", files.keys());
}

fn run_ok_bytes(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn each_layer_is_uploaded_once_per_target_and_the_digest_is_that_of_a_build_without_push() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let host = registry.host().to_string();
    // skopeo's push of the base counts too: measure from here.
    let (uploads_before, puts_before) = (registry.blob_uploads(), registry.blob_puts());

    // Pushing nothing (an OCI layout only): the build runs alone, no overlap.
    let layout = tempfile::tempdir().unwrap();
    let alone = four_layers(Workflow::new(), &registry)
        .input("registry", &host)
        .input("repository", "octo-org/one")
        .input("tags", "v1")
        .input("push", "false")
        .input("output", &format!("oci:{}", layout.path().display()))
        .run();
    alone.assert_success();
    assert_eq!(registry.blob_uploads(), uploads_before, "nothing pushed:\n{}", registry.access_log());

    let images = format!("{host}/octo-org/one\n{host}/octo-org/two");
    let result = four_layers(Workflow::new(), &registry).input("images", &images).input("tags", "v1").run();
    result.assert_success();
    assert_eq!(result.output("digest"), alone.output("digest"), "same digest with and without overlapping uploads");

    for repo in ["octo-org/one", "octo-org/two"] {
        let (manifest, _) = registry.get_manifest_json(repo, "v1");
        assert_eq!(registry.get_manifest(repo, "v1").1, result.output("digest"));
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 5, "base + four COPY layers: {manifest}");
        for layer in &layers[1..] {
            let d = layer["digest"].as_str().unwrap();
            let puts: Vec<_> = registry
                .requests("PUT", &format!("digest={}", d.replace(':', "%3A")))
                .into_iter()
                .filter(|e| e.path.starts_with(&format!("/v2/{repo}/blobs/uploads/")))
                .collect();
            assert_eq!(puts.len(), 1, "{repo}: {d} uploaded {} times:\n{}", puts.len(), registry.access_log());
            assert_eq!(puts[0].status, 201);
            let blob = registry.get_blob(repo, d);
            assert_eq!(common::sha256_digest(&blob), d, "{repo}: the blob under {d} has that digest");
            assert_eq!(blob.len() as u64, layer["size"].as_u64().unwrap());
        }
    }
    // Four layers and the config to each of the two repositories; the base mounted into each.
    assert_eq!(registry.blob_puts() - puts_before, 10, "{}", registry.access_log());
    let blobs = blobs_json(&result);
    assert_eq!(blobs["uploaded"], 10, "{blobs}");
    assert_eq!(blobs["mounted"], 2, "{blobs}");
    assert_eq!(blobs["skipped"], 0, "{blobs}");
}

/// A layer file in `dir` and its blob.
fn layer_blob(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Blob {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    Blob {
        descriptor: Descriptor::new(media_type::OCI_LAYER_GZIP, Digest::of(bytes), bytes.len() as u64),
        source: BlobSource::File(path),
    }
}

fn client() -> RegistryClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    RegistryClient::new(ClientOptions::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_is_in_the_registry_before_the_build_returns() {
    let registry = Registry::start(Mode::Anonymous);
    let dir = tempfile::tempdir().unwrap();
    let blob = layer_blob(dir.path(), "layer", &noise(100_000, 11));
    let digest = blob.descriptor.digest.clone();
    let target = ImageName::parse(&format!("{}/octo-org/overlap", registry.host())).unwrap();
    let client = client();
    let registry_ref = &registry;
    let sent = blob.clone();
    let (seen_during_build, ahead) = push_while(&client, std::slice::from_ref(&target), &Quiet, |sink| async move {
        let sink = sink.expect("a sink when there are targets");
        sink.send(sent.clone().into()).unwrap();
        // The same blob again (a layer shared by two platforms) must not go up twice.
        sink.send(sent.into()).unwrap();
        // The "build" goes on only once the registry holds the layer: without overlapping uploads it never would.
        for _ in 0..600 {
            let puts = tokio::task::block_in_place(|| registry_ref.blob_puts());
            if puts > 0 {
                return Ok(puts);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(BuildError::Options("the layer was not uploaded while the build went on".into()))
    })
    .await
    .unwrap();
    assert_eq!(seen_during_build, 1);
    assert_eq!(ahead.len(), 1);
    assert_eq!(ahead[0].get(&digest), Some(&BlobOutcome::Uploaded(100_000)));
    assert_eq!(registry.blob_puts(), 1, "{}", registry.access_log());
    assert!(registry.has_blob("octo-org/overlap", digest.as_str()));
}

/// A layer announced while it is written (the engine's export does so) is streamed up as it grows: the upload
/// session is open before its last byte is written, and the registry holds the finished blob under its digest,
/// sent in one streamed PATCH and confirmed by the PUT; the same blob sent again as a finished file is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_layer_is_streamed_up_while_it_is_written() {
    let registry = Registry::start(Mode::Anonymous);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("growing.gz");
    let data = noise(3 << 20, 21);
    let digest = Digest::of(&data);
    let target = ImageName::parse(&format!("{}/octo-org/growing", registry.host())).unwrap();
    let client = client();
    let registry_ref = &registry;
    let (opened_before_the_end, done) = push_while(&client, std::slice::from_ref(&target), &Quiet, |sink| {
        let (path, data, digest) = (path.clone(), data.clone(), digest.clone());
        async move {
            let out = std::fs::File::create(&path).unwrap();
            let (growing, finisher) = Growing::new(std::fs::File::open(&path).unwrap());
            let sink = sink.expect("a sink");
            sink.send(SinkItem::Growing(growing)).unwrap();
            let mut writer = finisher.writer(&out);
            let (first, rest) = data.split_at(1 << 20);
            std::io::Write::write_all(&mut writer, first).unwrap();
            // The session is opened on the announcement: the registry sees the POST before the blob is complete.
            let mut opened = false;
            for _ in 0..600 {
                opened = tokio::task::block_in_place(|| !registry_ref.requests("POST", "/blobs/uploads/").is_empty());
                if opened {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            std::io::Write::write_all(&mut writer, rest).unwrap();
            let descriptor = Descriptor::new(media_type::OCI_LAYER_GZIP, digest, data.len() as u64);
            let blob = Blob { descriptor, source: BlobSource::File(path) };
            finisher.finish(blob.clone());
            // The same blob sent again once it is up (another platform's identical layer, from the layer cache)
            // is found there, not sent again.
            for _ in 0..600 {
                if tokio::task::block_in_place(|| registry_ref.blob_puts()) > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sink.send(blob.into()).unwrap();
            Ok::<_, BuildError>(opened)
        }
    })
    .await
    .unwrap();
    assert!(opened_before_the_end, "no upload session was opened while the layer was written");
    assert_eq!(done[0].get(&digest), Some(&BlobOutcome::Uploaded(3 << 20)));
    assert!(registry.has_blob("octo-org/growing", digest.as_str()));
    assert!(registry.get_blob("octo-org/growing", digest.as_str()) == data, "the registry holds other bytes");
    let log = registry.access_log();
    assert_eq!(registry.requests("PATCH", "/blobs/uploads/").len(), 1, "one streamed PATCH: {log}");
    assert_eq!(registry.blob_puts(), 1, "{log}");
}

/// A growing layer whose writer fails is not reported pushed: the push leaves it to the upload of finished blobs
/// (which has none to send), cancels the session, and writes no blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_layer_whose_writer_fails_is_not_reported_pushed() {
    let registry = Registry::start(Mode::Anonymous);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.gz");
    let target = ImageName::parse(&format!("{}/octo-org/broken", registry.host())).unwrap();
    let client = client();
    let ((), done) = push_while(&client, std::slice::from_ref(&target), &Quiet, |sink| async move {
        let out = std::fs::File::create(&path).unwrap();
        let (growing, finisher) = Growing::new(std::fs::File::open(&path).unwrap());
        sink.expect("a sink").send(SinkItem::Growing(growing)).unwrap();
        std::io::Write::write_all(&mut finisher.writer(&out), &noise(1 << 20, 5)).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        finisher.fail("the engine's export broke off".into());
        Ok::<_, BuildError>(())
    })
    .await
    .unwrap();
    assert!(done[0].is_empty(), "{:?}", done[0]);
    assert_eq!(registry.blob_puts(), 0, "{}", registry.access_log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_upload_error_ends_the_build_with_that_error() {
    let registry = Registry::start(Mode::htpasswd("octocat", "s3cr3t-p4ss"));
    let dir = tempfile::tempdir().unwrap();
    let blob = layer_blob(dir.path(), "layer", b"a layer nobody may push");
    let target = ImageName::parse(&format!("{}/octo-org/denied", registry.host())).unwrap();
    let client = client();
    let run = push_while(&client, std::slice::from_ref(&target), &Quiet, |sink| async move {
        sink.expect("a sink").send(blob.into()).unwrap();
        // A build that would never end on its own: only the upload's error can end it.
        std::future::pending::<()>().await;
        Ok::<(), BuildError>(())
    });
    let result = tokio::time::timeout(Duration::from_secs(120), run).await.expect("the upload error ended the build");
    match result {
        Err(PublishError::Registry(e @ RegistryError::Unauthorized { .. })) => {
            assert!(e.to_string().contains(registry.host()), "{e}")
        }
        other => panic!("expected the registry's unauthorized error, got {other:?}"),
    }
    assert_eq!(registry.blob_puts(), 0);
}

/// What runtimes make of our layers: dockerd pulls the multi-block gzip layers and runs the image. For zstd,
/// the test states what this Docker (20.10, Debian 12) does, so the README's claim is a checked fact.
#[test]
fn dockerd_pulls_and_runs_gzip_layers_and_states_what_it_does_with_zstd() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let docker = common::Dockerd::start();
    for compression in ["gzip", "zstd"] {
        let result = Workflow::new()
            .input("registry", registry.host())
            .input("repository", &format!("octo-org/run-{compression}"))
            .input("tags", "v1")
            .input("compression", compression)
            .input("cache_dir", "false")
            // Several 128 KiB blocks: the multi-block stream is what is being checked.
            .file("app/data.bin", noise(1 << 20, 11))
            .file("app/hello.txt", format!("hello from {compression}\n"))
            .file(
                "Dockerfile",
                format!(
                    "FROM {}/base/busybox:1\nCOPY app/ /app/\nCMD [\"cat\", \"/app/hello.txt\"]\n",
                    registry.host()
                ),
            )
            .run();
        result.assert_success();
        let reference = format!("{}/octo-org/run-{compression}:v1", registry.host());
        let pull = docker.docker(&["pull", &reference]);
        let ran = pull
            .status
            .success()
            .then(|| docker.docker(&["run", "--rm", "--network", "none", &reference]))
            .filter(|o| o.status.success());
        let stderr = String::from_utf8_lossy(&pull.stderr).into_owned();
        match (compression, ran) {
            ("gzip", Some(out)) => {
                assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from gzip\n");
                let args = ["run", "--rm", "--network", "none", &reference, "sha256sum", "/app/data.bin"];
                let sum = docker.docker_ok(&args);
                let expected = common::sha256_digest(&noise(1 << 20, 11));
                assert!(sum.starts_with(expected.trim_start_matches("sha256:")), "{sum} vs {expected}");
            }
            ("gzip", None) => panic!("dockerd could not pull or run the gzip image: {stderr}\n{}", docker.log()),
            (_, Some(out)) => panic!(
                "dockerd 20.10 now runs zstd layers ({}): update the README's compression row",
                String::from_utf8_lossy(&out.stdout)
            ),
            (_, None) => assert!(!pull.status.success(), "dockerd 20.10 refuses the zstd image at pull: {stderr}"),
        }
    }
}

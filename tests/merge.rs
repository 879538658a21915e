//! Issue "multi-platform images from a matrix": jobs push one platform each by digest, and `command: merge` makes
//! one index of them and tags it. Run as the runner runs the binary, against real registries; checked with curl
//! (through the harness) and skopeo, never with octopush's own registry client.

mod common;

use common::workflow::SHA;
use common::{Mode, MultiBase, Registry, Workflow};

const USER: &str = "octocat";
const PASSWORD: &str = "ghp_mergeP4ssw0rdThatMustNeverLeak";
const REPO: &str = "octo-org/app/multi";

/// A matrix job of run `run`: builds `platform` natively on the two-platform base and pushes it by digest.
fn matrix_job(registry: &Registry, run: &str, platform: &str) -> Workflow {
    let mut wf = Workflow::new()
        .input("registry", registry.host())
        .input("repository", REPO)
        .input("platforms", platform)
        .input("push_by_digest", "true")
        .env("GITHUB_RUN_ID", run)
        .file(
            "Dockerfile",
            format!("FROM {}/base/multi:1\nARG TARGETARCH\nCOPY $TARGETARCH.txt /arch.txt\n", registry.host()),
        )
        .file("amd64.txt", "amd64\n")
        .file("arm64.txt", "arm64\n");
    if let Some((user, pass)) = registry.credentials() {
        wf = wf.input("username", user).input("password", pass);
    }
    wf
}

/// The merge job of run `run`, with v1's tag inputs.
fn merge_job(registry: &Registry, run: &str) -> Workflow {
    let mut wf = Workflow::new()
        .input("command", "merge")
        .input("registry", registry.host())
        .input("repository", REPO)
        .input("tag_with_ref", "true")
        .input("tag_with_sha", "true")
        .env("GITHUB_RUN_ID", run);
    if let Some((user, pass)) = registry.credentials() {
        wf = wf.input("username", user).input("password", pass);
    }
    wf
}

fn push_base(registry: &Registry) -> MultiBase {
    common::push_busybox_multiplatform(registry, "base/multi:1")
}

#[test]
fn matrix_jobs_pushed_by_digest_merge_into_one_tagged_index() {
    let registry = Registry::start(Mode::token(USER, PASSWORD));
    push_base(&registry);
    let run = "4242";
    let arm = matrix_job(&registry, run, "linux/arm64").run();
    arm.assert_success();
    let amd = matrix_job(&registry, run, "linux/amd64").run();
    amd.assert_success();
    // By digest: no tag but the hand-offs.
    let mut tags = registry.tags(REPO);
    tags.sort();
    assert_eq!(tags.len(), 2, "{tags:?}");
    assert!(tags.iter().all(|t| t.starts_with(&format!("octopush-handoff-{run}-1-"))), "{tags:?}");
    for job in [&amd, &arm] {
        let metadata: serde_json::Value = serde_json::from_str(job.output("metadata")).unwrap();
        assert_eq!(metadata["manifests"][0]["digest"], job.output("digest"), "{metadata}");
    }

    let merged = merge_job(&registry, run).run();
    merged.assert_success();
    let host = registry.host();
    let expected = vec![format!("{host}/{REPO}:latest"), format!("{host}/{REPO}:sha-{}", &SHA[..7])];
    assert_eq!(merged.output("tags").lines().collect::<Vec<_>>(), expected, "{}", merged.dump());
    let (index, media_type) = registry.get_manifest_json(REPO, "latest");
    assert_eq!(media_type, "application/vnd.oci.image.index.v1+json");
    assert_eq!(registry.get_manifest(REPO, "latest").1, merged.output("digest"));
    let children: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (m["platform"]["architecture"].as_str().unwrap().to_string(), m["digest"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        children,
        vec![
            ("amd64".to_string(), amd.output("digest").to_string()),
            ("arm64".to_string(), arm.output("digest").to_string())
        ],
        "exactly the two platforms, each child the digest its job reported"
    );
    // The hand-offs are gone; the tags are the merge's.
    let mut tags = registry.tags(REPO);
    tags.sort();
    assert_eq!(tags, vec!["latest".to_string(), format!("sha-{}", &SHA[..7])]);
    // A real client copies the whole index.
    let dest = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::tool("skopeo"))
        .args(["--insecure-policy", "copy", "--all", "--retry-times=0"])
        .args(registry.skopeo_src_args(false))
        .arg(format!("docker://{host}/{REPO}:latest"))
        .arg(format!("oci:{}:copy", dest.path().display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo copy --all: {}", String::from_utf8_lossy(&out.stderr));
    common::assert_no_secret(&merged, PASSWORD);

    // Merging again (explicit sources this time, in the other order) gives the same index.
    let again = merge_job(&registry, run)
        .input("sources", &format!("{}\n{}", arm.output("digest"), amd.output("digest")))
        .run();
    again.assert_success();
    assert_eq!(again.output("digest"), merged.output("digest"), "deterministic: same sources, same index");
}

#[test]
fn two_sources_with_one_platform_are_refused_and_nothing_is_tagged() {
    let registry = Registry::start(Mode::Anonymous);
    push_base(&registry);
    let first = matrix_job(&registry, "1", "linux/amd64").run();
    first.assert_success();
    let second = matrix_job(&registry, "2", "linux/amd64").file("amd64.txt", "another amd64\n").run();
    second.assert_success();
    let result = merge_job(&registry, "3")
        .input("sources", &format!("{}\n{}", first.output("digest"), second.output("digest")))
        .run();
    let error = result.assert_clean_failure("linux/amd64 comes from both");
    assert!(error.contains("input `sources`"), "{error}");
    assert!(!registry.tags(REPO).iter().any(|t| t == "latest"), "no tag written");
    assert_eq!(registry.requests("PUT", "/manifests/latest").len(), 0);
}

#[test]
fn merging_from_another_repository_of_the_registry_mounts_its_blobs() {
    let registry = Registry::start(Mode::Anonymous);
    push_base(&registry);
    let amd = matrix_job(&registry, "7", "linux/amd64").run();
    amd.assert_success();
    let arm = matrix_job(&registry, "7", "linux/arm64").run();
    arm.assert_success();
    let puts_before = registry.requests("PUT", "/blobs/uploads/").len();
    let mounts_before = registry.blob_mounts();
    let result = merge_job(&registry, "8")
        .input("repository", "octo-org/app/released")
        .input(
            "sources",
            &format!(
                "{}/{REPO}@{}\n{}/{REPO}@{}",
                registry.host(),
                amd.output("digest"),
                registry.host(),
                arm.output("digest")
            ),
        )
        .run();
    result.assert_success();
    // Two base layers, two COPY layers, two configs: all mounted, none uploaded.
    assert_eq!(registry.blob_mounts() - mounts_before, 6, "{}", registry.access_log());
    assert_eq!(registry.requests("PUT", "/blobs/uploads/").len(), puts_before, "no upload:\n{}", registry.access_log());
    let (index, _) = registry.get_manifest_json("octo-org/app/released", "latest");
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
}

#[test]
fn without_sources_or_hand_offs_the_merge_says_what_to_do() {
    let registry = Registry::start(Mode::Anonymous);
    let result = merge_job(&registry, "99").run();
    let error = result.assert_clean_failure("push_by_digest: true");
    assert!(error.contains("run 99") && error.contains("`sources`"), "{error}");
}

/// An index with an attestation manifest (as BuildKit writes provenance: `unknown/unknown`, annotated with the
/// image it describes) merges with another platform: the attestation is carried, after its image, with its
/// annotations, and is not counted as a platform.
#[test]
fn attestations_are_carried_and_not_counted_as_platforms() {
    use common::image::{OCI_MANIFEST, write_blob};
    let registry = Registry::start(Mode::Anonymous);
    push_base(&registry);
    // An amd64 image with its attestation, in an OCI layout, pushed with skopeo.
    let layout = tempfile::tempdir().unwrap();
    let base = common::image::write_busybox_platforms_layout(layout.path(), "o/att", "amd", &["amd64"]);
    let image = &base.images[0];
    let statement =
        br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2"}"#;
    let statement_digest = write_blob(layout.path(), statement);
    let config = serde_json::json!({
        "architecture": "unknown", "os": "unknown", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [statement_digest]}
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = write_blob(layout.path(), &config);
    let attestation = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": statement_digest, "size": statement.len(),
                    "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}]
    }))
    .unwrap();
    let attestation_digest = write_blob(layout.path(), &attestation);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": image.manifest_digest, "size": image.manifest.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": attestation_digest, "size": attestation.len(),
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.digest": image.manifest_digest,
                             "vnd.docker.reference.type": "attestation-manifest"}}
        ]
    }))
    .unwrap();
    let index_digest = write_blob(layout.path(), &index);
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest, "size": index.len(),
        "annotations": {"org.opencontainers.image.ref.name": "amd"}}]});
    std::fs::write(layout.path().join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    registry.skopeo_copy_to(&format!("oci:{}:amd", layout.path().display()), "o/att:amd", true);

    let arm = matrix_job(&registry, "5", "linux/arm64").run();
    arm.assert_success();
    let result = merge_job(&registry, "6")
        .input("sources", &format!("{}/o/att:amd\n{}", registry.host(), arm.output("digest")))
        .run();
    result.assert_success();
    let (merged, _) = registry.get_manifest_json(REPO, "latest");
    let entries = merged["manifests"].as_array().unwrap();
    let digests: Vec<&str> = entries.iter().map(|e| e["digest"].as_str().unwrap()).collect();
    assert_eq!(digests, vec![image.manifest_digest.as_str(), attestation_digest.as_str(), arm.output("digest")]);
    assert_eq!(entries[1]["platform"]["os"], "unknown");
    assert_eq!(entries[1]["annotations"]["vnd.docker.reference.digest"], image.manifest_digest.as_str());
    let metadata: serde_json::Value = serde_json::from_str(result.output("metadata")).unwrap();
    assert_eq!(metadata["platforms"], serde_json::json!(["linux/amd64", "linux/arm64/v8"]), "{metadata}");
    // The attestation and its in-toto blob are in the target.
    assert!(registry.has_blob(REPO, &statement_digest));
}

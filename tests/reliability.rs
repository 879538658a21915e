//! Issue 13 end to end: the binary runs as the runner runs it and pushes through the fault-injecting proxy
//! (`common::proxy`) in front of a real registry. What landed is read from the registry directly (curl), never
//! through the proxy or octopush's client: a fault must end in an error naming the registry or in a retried
//! success whose digest the registry confirms, never in a success for something that is not there.

mod common;

use common::{Fault, FaultProxy, Kind, Mode, Registry, Rule, RunResult, Workflow, push_busybox_base};

const REPO: &str = "octo-org/app";

/// A step pushing `REPO:v1` through `proxy`, built on the busybox base that sits in `registry` itself.
fn step(registry: &Registry, proxy: &FaultProxy) -> Workflow {
    Workflow::new()
        .input("registry", proxy.host())
        .input("repository", REPO)
        .input("tags", "v1")
        .file("hello.txt", "hello through a proxy\n")
        .file("Dockerfile", format!("FROM {}/base/busybox:1\nCOPY hello.txt /srv/hello.txt\n", registry.host()))
}

fn errors(result: &RunResult) -> Vec<String> {
    result.commands().into_iter().filter(|(c, _)| c == "error").map(|(_, l)| l).collect()
}

fn warnings(result: &RunResult) -> Vec<String> {
    result.commands().into_iter().filter(|(c, _)| c == "warning").map(|(_, l)| l).collect()
}

/// The run succeeded, and the registry (asked directly) has `v1` at the `digest` output.
fn assert_pushed(registry: &Registry, result: &RunResult) {
    result.assert_success();
    assert_eq!(registry.tags(REPO), vec!["v1".to_string()], "{}", result.dump());
    let (_, digest) = registry.get_manifest(REPO, "v1");
    assert_eq!(digest, result.output("digest"), "the digest output is what the registry holds");
}

/// The run failed with one error naming the proxy (the registry the step was given) and nothing was tagged.
fn assert_refused(registry: &Registry, proxy: &FaultProxy, result: &RunResult, needle: &str) {
    result.assert_failure();
    let errors = errors(result);
    assert_eq!(errors.len(), 1, "{}", result.dump());
    assert!(errors[0].contains(proxy.host()) && errors[0].contains(needle), "{}", errors[0]);
    assert!(!result.outputs.contains_key("digest"), "no digest output for a failed push: {:?}", result.outputs);
    assert!(registry.tags(REPO).is_empty(), "nothing was tagged");
}

/// Finding 1: a server answering `200` with a web page to everything got "already there ... pushed", exit 0.
#[test]
fn a_web_server_in_the_registrys_place_is_refused() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let proxy = FaultProxy::start(registry.host(), vec![Rule::all(Fault::Garbage)]);
    let result = step(&registry, &proxy).run();
    assert_refused(&registry, &proxy, &result, "does not speak the OCI distribution API");
    assert!(!result.stdout.contains("exists sha256") && !result.stdout.contains("pushed 127."), "{}", result.dump());
}

/// Finding 1: the registry gets every blob, but the manifest PUT is answered by something else with `200`.
#[test]
fn a_manifest_put_answered_200_by_something_else_is_refused() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let proxy = FaultProxy::start(registry.host(), vec![Rule::every(Kind::ManifestPut, Fault::Garbage)]);
    let result = step(&registry, &proxy).run();
    assert_refused(&registry, &proxy, &result, "not 201 Created");
}

/// Finding 1: the manifest is stored, but the tag does not read back as pushed (a cache answering for it).
#[test]
fn a_tag_that_does_not_read_back_is_refused() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let proxy = FaultProxy::start(
        registry.host(),
        vec![
            Rule::every(Kind::ManifestHead, Fault::registry_error(404, "MANIFEST_UNKNOWN", "manifest unknown")),
            Rule::every(Kind::ManifestGet, Fault::registry_error(404, "MANIFEST_UNKNOWN", "manifest unknown")),
        ],
    );
    let result = step(&registry, &proxy).run();
    result.assert_failure();
    let errors = errors(&result);
    assert_eq!(errors.len(), 1, "{}", result.dump());
    assert!(errors[0].contains(proxy.host()) && errors[0].contains("has no manifest `v1`"), "{}", errors[0]);
    assert!(!result.outputs.contains_key("digest"));
}

/// Finding 4: a body cut on the way makes the registry answer 400 DIGEST_INVALID; the upload restarts from its
/// source and the push succeeds.
#[test]
fn digest_invalid_after_a_cut_body_is_retried_from_the_source() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let proxy = FaultProxy::start(registry.host(), vec![Rule::nth(Kind::UploadFinish, 1, Fault::CutRequestBody(10))]);
    let result = step(&registry, &proxy).run();
    assert_pushed(&registry, &result);
    let warnings = warnings(&result);
    assert!(warnings.iter().any(|w| w.contains("DIGEST_INVALID")), "{}", result.dump());
    assert_eq!(proxy.faulted().len(), 1);
}

/// Finding 4: MANIFEST_BLOB_UNKNOWN right after the uploads: the blobs are checked (and sent) again and the
/// manifest put again.
#[test]
fn manifest_blob_unknown_is_repaired_and_the_manifest_put_again() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let unknown = Fault::registry_error(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry");
    let proxy = FaultProxy::start(registry.host(), vec![Rule::nth(Kind::ManifestPut, 1, unknown)]);
    let result = step(&registry, &proxy).run();
    assert_pushed(&registry, &result);
    assert!(warnings(&result).iter().any(|w| w.contains("MANIFEST_BLOB_UNKNOWN")), "{}", result.dump());
    let heads = proxy.seen().iter().filter(|s| s.kind == Kind::BlobHead).count();
    assert!(heads >= 6, "three blobs HEADed before the first PUT and again after the refusal: {heads}");
    assert_eq!(proxy.count(Kind::ManifestPut), 2);
}

/// Transient faults of every kind on one push: each is retried where it happened and the push succeeds with the
/// digest the registry holds.
#[test]
fn resets_delays_429_503_and_cut_responses_are_retried() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let proxy = FaultProxy::start(
        registry.host(),
        vec![
            Rule::nth(Kind::BlobHead, 1, Fault::Reset),
            Rule::nth(Kind::BlobHead, 2, Fault::Delay(std::time::Duration::from_millis(300))),
            Rule::nth(Kind::UploadStart, 1, Fault::retry_after(503, 0)),
            Rule::nth(Kind::UploadFinish, 1, Fault::Reset),
            Rule::nth(Kind::ManifestPut, 1, Fault::retry_after(429, 1)),
            Rule::nth(Kind::ManifestHead, 1, Fault::CutResponse(12)),
        ],
    );
    let started = std::time::Instant::now();
    let result = step(&registry, &proxy).run();
    assert_pushed(&registry, &result);
    assert_eq!(proxy.faulted().len(), 6, "{:?}", proxy.faulted());
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "the 429's Retry-After was honoured");
    assert!(warnings(&result).len() >= 5, "each retry is logged: {}", result.dump());
}

/// Finding 3: an unwritable GITHUB_OUTPUT or GITHUB_STEP_SUMMARY failed the step only after the push.
#[test]
fn unwritable_step_files_fail_the_step_before_anything_is_pushed() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let proxy = FaultProxy::start(registry.host(), Vec::new());
    let wf = step(&registry, &proxy);
    let not_a_file = wf.workspace().join("hello.txt").join("output");
    for variable in ["GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"] {
        let result = step(&registry, &proxy).env(variable, not_a_file.to_str().unwrap()).run();
        result.assert_failure();
        let errors = errors(&result);
        assert_eq!(errors.len(), 1, "{}", result.dump());
        assert!(errors[0].contains(variable) && errors[0].contains("nothing was built or pushed"), "{}", errors[0]);
        assert!(registry.tags(REPO).is_empty(), "{variable}: nothing tagged");
        assert!(proxy.seen().is_empty(), "{variable}: the registry was not even asked: {:?}", proxy.seen());
    }
}

/// Eight publishes at once into one repository, of the same image under the same tag (as re-run jobs of a matrix
/// do), sharing the base layer and the COPY layer: each succeeds with the digest a sequential run gives, and the
/// tag reads back as that digest from the registry itself.
#[test]
fn eight_concurrent_publishes_into_one_repository_all_succeed_with_the_sequential_digest() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let direct = FaultProxy::start(registry.host(), Vec::new());
    let sequential = step(&registry, &direct).run();
    sequential.assert_success();
    let want = sequential.output("digest").to_string();
    let fresh = Registry::start(Mode::Anonymous);
    push_busybox_base(&fresh, "base/busybox:1");
    let proxy = FaultProxy::start(fresh.host(), Vec::new());
    let runs: Vec<RunResult> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let wf = step(&fresh, &proxy).file(
                    "Dockerfile",
                    format!("FROM {}/base/busybox:1\nCOPY hello.txt /srv/hello.txt\n", registry.host()),
                );
                s.spawn(move || wf.run())
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a publish thread panicked")).collect()
    });
    for (i, result) in runs.iter().enumerate() {
        result.assert_success();
        assert_eq!(result.output("digest"), want, "publish {i}: {}", result.dump());
    }
    let (_, digest) = fresh.get_manifest(REPO, "v1");
    assert_eq!(digest, want, "the tag in the registry");
    // A manifest put again was refused first (MANIFEST_BLOB_UNKNOWN while another job's upload of the same blob
    // was in flight, the 4 in 160): each such retry is in its run's warnings.
    let extra = proxy.count(Kind::ManifestPut) - 8;
    let retried = runs.iter().flat_map(warnings).filter(|w| w.contains("putting manifest")).count();
    assert_eq!(extra, retried, "every extra manifest PUT is a logged repair");
}

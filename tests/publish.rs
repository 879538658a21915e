//! End to end, issue "walking skeleton": the binary runs as the Actions runner runs it (environment, event file,
//! `GITHUB_OUTPUT`), builds a Dockerfile natively on a base that sits in a real registry, and pushes; what landed
//! is checked with independent clients (curl through the harness, skopeo), never with our own registry client.

mod common;

use std::collections::BTreeMap;

use common::workflow::SHA;
use common::{BaseImage, Mode, Registry, RunResult, Workflow, assert_no_secret, gunzip_entries, push_busybox_base};

const USER: &str = "octocat";
const PASSWORD: &str = "ghp_s3cr3tP4ssw0rdThatMustNeverLeak";
const REPO: &str = "octo-org/app/octo-image";

/// A project whose Dockerfile uses every instruction the skeleton supports, on the busybox base in `registry`.
fn project(wf: Workflow, registry: &Registry) -> Workflow {
    wf.file("app/hello.sh", "#!/bin/sh\necho hello\n").file("app/static/index.html", "<h1>hi</h1>\n").file(
        "Dockerfile",
        format!(
            "FROM {}/base/busybox:1\n\
                 ENV APP_MODE=production GREETING=hello\n\
                 WORKDIR /srv/app\n\
                 LABEL com.example.team=octo\n\
                 COPY app/ ./\n\
                 COPY app/hello.sh /usr/local/bin/hello\n\
                 ENTRYPOINT [\"/bin/sh\"]\n\
                 CMD [\"/usr/local/bin/hello\"]\n",
            registry.host()
        ),
    )
}

/// The classic step: `registry`, `repository: Octo-Org/App/octo-image`, `tag_with_sha`, `tag_with_ref`, on a push
/// to master.
fn classic_step(registry: &Registry) -> Workflow {
    let mut wf = Workflow::new()
        .input("registry", registry.host())
        .input("repository", "Octo-Org/App/octo-image")
        .input("tag_with_sha", "true")
        .input("tag_with_ref", "true");
    if let Some((user, pass)) = registry.credentials() {
        wf = wf.input("username", user).input("password", pass);
    }
    if registry.options().tls {
        wf = wf.input("ca_file", registry.ca_file().to_str().unwrap());
    }
    project(wf, registry)
}

/// Everything the acceptance list asks of one publish, checked against the registry.
fn check_published(registry: &Registry, base: &BaseImage, result: &RunResult) {
    let host = registry.host();
    // Tags: latest (master) and sha-XXXXXXX, under the lowercased repository.
    let expected_refs = vec![format!("{host}/{REPO}:latest"), format!("{host}/{REPO}:sha-{}", &SHA[..7])];
    assert_eq!(result.output("tags").lines().collect::<Vec<_>>(), expected_refs, "{}", result.dump());
    let mut tags = registry.tags(REPO);
    tags.sort();
    assert_eq!(tags, vec!["latest".to_string(), format!("sha-{}", &SHA[..7])]);

    // The digest output is the registry's, for both tags.
    let digest = result.output("digest").to_string();
    for tag in ["latest".to_string(), format!("sha-{}", &SHA[..7])] {
        let (_, registry_digest) = registry.get_manifest(REPO, &tag);
        assert_eq!(registry_digest, digest, "digest output vs registry for {tag}");
    }

    // The config carries the Dockerfile's ENV, WORKDIR, LABEL, ENTRYPOINT, CMD on top of the base's.
    let (manifest, _) = registry.get_manifest_json(REPO, "latest");
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    assert_eq!(result.output("imageid"), config_digest);
    let config: serde_json::Value = serde_json::from_slice(&registry.get_blob(REPO, config_digest)).unwrap();
    let c = &config["config"];
    let env: Vec<&str> = c["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(env.contains(&"APP_MODE=production") && env.contains(&"GREETING=hello"), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "the base's PATH is kept: {env:?}");
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["Labels"]["com.example.team"], "octo");
    assert_eq!(c["Labels"]["org.opencontainers.image.revision"], SHA);
    assert_eq!(c["Labels"]["org.opencontainers.image.source"], "https://github.com/Octo-Org/App");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh"]));
    assert_eq!(c["Cmd"], serde_json::json!(["/usr/local/bin/hello"]));

    // Layers: the base's layer first, untouched, then ours holding the copied files.
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers[0]["digest"], base.layer_digest.as_str());
    assert!(layers.len() >= 3, "base + two COPY layers: {layers:?}");
    let mut files = BTreeMap::new();
    for layer in &layers[1..] {
        files.extend(gunzip_entries(&registry.get_blob(REPO, layer["digest"].as_str().unwrap())));
    }
    assert_eq!(
        files.get("srv/app/hello.sh").map(Vec::as_slice),
        Some(&b"#!/bin/sh\necho hello\n"[..]),
        "{:?}",
        files.keys()
    );
    assert_eq!(files.get("srv/app/static/index.html").map(Vec::as_slice), Some(&b"<h1>hi</h1>\n"[..]));
    assert!(files.contains_key("usr/local/bin/hello"), "{:?}", files.keys());

    // The base layer was never downloaded to build.
    assert_eq!(registry.blob_gets(&base.layer_digest), 0, "base layer GETs:\n{}", registry.access_log());

    // The token never shows, except in the mask command.
    if let Some((_, pass)) = registry.credentials() {
        assert_no_secret(result, pass);
        assert!(result.stdout.contains(&format!("::add-mask::{pass}")));
    }
    // A summary was written.
    assert!(result.summary.contains(&digest), "summary: {}", result.summary);
}

fn publish_twice(mode: Mode) {
    let registry = Registry::start(mode);
    let base = push_busybox_base(&registry, "base/busybox:1");
    let step = classic_step(&registry);
    let first = step.run();
    first.assert_success();
    check_published(&registry, &base, &first);

    // The same commit again: same digest, no blob uploaded (the push check before the build opens and cancels
    // one upload session; no upload is completed).
    let uploads_before = registry.blob_puts();
    let second = step.run();
    second.assert_success();
    assert_eq!(second.output("digest"), first.output("digest"), "reproducible: same inputs, same digest");
    assert_eq!(registry.blob_puts(), uploads_before, "second publish uploaded blobs:\n{}", registry.access_log());
    let meta: serde_json::Value = serde_json::from_str(second.output("metadata")).unwrap();
    assert_eq!(meta["blobs"]["uploaded"], 0, "{meta}");
}

/// Republishing unchanged inputs takes every layer from the layer cache (in the job's `HOME`), with the same
/// digest as a build without it; `cache_dir: false` turns it off.
#[test]
fn republishing_unchanged_inputs_takes_layers_from_the_cache() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let step = classic_step(&registry);
    // Files changed within the last 100 ms are not recorded (racily clean): let the checkout age.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let cached_lines = |r: &RunResult| r.stdout.lines().filter(|l| l.contains("from the cache")).count();
    let first = step.run();
    first.assert_success();
    assert_eq!(cached_lines(&first), 0, "{}", first.dump());
    let blobs = step.home().join(".cache/octopush/blobs/sha256");
    let recorded = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    assert!(recorded >= 2, "the COPY layers are recorded in {}: {recorded}", blobs.display());

    let second = step.run();
    second.assert_success();
    assert_eq!(second.output("digest"), first.output("digest"));
    assert!(cached_lines(&second) >= 2, "every COPY layer comes from the cache:\n{}", second.dump());

    // The same checkout with the cache turned off: every layer written again, to the same digest.
    let off = step.input("cache_dir", "false").run();
    off.assert_success();
    assert_eq!(cached_lines(&off), 0, "{}", off.dump());
    assert_eq!(off.output("digest"), first.output("digest"), "the cache does not change the image");
}

#[test]
fn token_mode_publishes_latest_and_sha_tags() {
    publish_twice(Mode::token(USER, PASSWORD));
}

#[test]
fn anonymous_mode_publishes() {
    publish_twice(Mode::Anonymous);
}

#[test]
fn htpasswd_mode_publishes() {
    publish_twice(Mode::htpasswd(USER, PASSWORD));
}

#[test]
fn tls_mode_publishes_with_a_ca_file() {
    publish_twice(Mode::Tls);
}

/// A machine or minimal image without any CA certificate (`SSL_CERT_FILE` at an empty file): plain-HTTP and
/// `ca_file` registries still work, and a TLS registry without `ca_file` fails cleanly, naming `ca_file`.
#[test]
fn no_system_ca_certificates_still_publish_over_http_and_with_a_ca_file() {
    let plain = Registry::start(Mode::Anonymous);
    push_busybox_base(&plain, "base/busybox:1");
    let wf = classic_step(&plain);
    let empty = wf.runner_temp().join("no-certs.pem");
    std::fs::write(&empty, "").unwrap();
    let no_roots = |wf: Workflow| wf.env("SSL_CERT_FILE", empty.to_str().unwrap()).env_remove("SSL_CERT_DIR");
    let result = no_roots(wf).run();
    result.assert_success();
    assert_eq!(plain.get_manifest(REPO, "latest").1, result.output("digest"));

    let tls = Registry::start(Mode::Tls);
    push_busybox_base(&tls, "base/busybox:1");
    let result = no_roots(classic_step(&tls)).run();
    result.assert_success();
    assert_eq!(tls.get_manifest(REPO, "latest").1, result.output("digest"));

    let without_ca = project(Workflow::new(), &tls).input("registry", tls.host()).input("repository", "o/a");
    let result = no_roots(without_ca).run();
    result.assert_clean_failure("ca_file");
}

#[test]
fn wrong_password_fails_with_one_clear_error() {
    for mode in [Mode::token(USER, PASSWORD), Mode::htpasswd(USER, PASSWORD)] {
        let registry = Registry::start(mode);
        push_busybox_base(&registry, "base/busybox:1");
        let wrong = "ghp_wrongWrongWrongPassword";
        let result = classic_step(&registry).input("password", wrong).run();
        result.assert_clean_failure("`password`");
        assert_no_secret(&result, wrong);
    }
}

#[test]
fn missing_dockerfile_names_the_input() {
    let registry = Registry::start(Mode::Anonymous);
    let result = Workflow::new().input("registry", registry.host()).input("dockerfile", "nope/Dockerfile").run();
    result.assert_clean_failure("dockerfile");
}

#[test]
fn malformed_repository_names_the_input() {
    let registry = Registry::start(Mode::Anonymous);
    let result = project(Workflow::new(), &registry)
        .input("registry", registry.host())
        .input("repository", "octo org/app")
        .run();
    result.assert_clean_failure("repository");
}

#[test]
fn run_instruction_is_refused_with_its_line_by_the_native_builder() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let uploads_before = registry.blob_uploads();
    let result = Workflow::new()
        .input("registry", registry.host())
        .input("builder", "native")
        .file("Dockerfile", format!("FROM {}/base/busybox:1\nCOPY . /src\nRUN make\n", registry.host()))
        .run();
    result.assert_clean_failure("Dockerfile:3: RUN needs a container runtime, and `builder: native`");
    // Refused before any work: no layer built, nothing pushed, not even the base resolved.
    assert!(!result.stdout.contains("COPY . /src"), "{}", result.dump());
    assert_eq!(registry.blob_uploads(), uploads_before);
}

#[test]
fn unreachable_registry_names_the_registry_input() {
    let result =
        Workflow::new().input("registry", "127.0.0.1:1").file("Dockerfile", "FROM scratch\nCOPY Dockerfile /\n").run();
    result.assert_clean_failure("registry");
}

#[test]
fn ghcr_without_a_token_explains_the_permission() {
    let result = Workflow::new().input("registry", "ghcr.io").file("Dockerfile", "FROM scratch\n").run();
    result.assert_clean_failure("packages: write");
}

#[test]
fn annotations_and_labels_inputs_reach_the_image() {
    let registry = Registry::start(Mode::Anonymous);
    let result = Workflow::new()
        .input("registry", registry.host())
        .input("tags", "v1")
        .input("annotations", "org.example.team=octo\nmanifest:org.example.tier=gold")
        .input("labels", "org.opencontainers.image.title=Custom title")
        .file("Dockerfile", "FROM scratch\nCOPY Dockerfile /\n")
        .run();
    result.assert_success();
    let (manifest, _) = registry.get_manifest_json("octo-org/app", "v1");
    assert_eq!(manifest["annotations"]["org.example.team"], "octo", "{manifest}");
    assert_eq!(manifest["annotations"]["org.example.tier"], "gold", "{manifest}");
    let keys: Vec<&String> = manifest["annotations"].as_object().unwrap().keys().collect();
    assert!(keys.iter().all(|k| !k.contains(':')), "no level prefixes on manifest annotations: {keys:?}");
    let config: serde_json::Value =
        serde_json::from_slice(&registry.get_blob("octo-org/app", manifest["config"]["digest"].as_str().unwrap()))
            .unwrap();
    assert_eq!(config["config"]["Labels"]["org.opencontainers.image.title"], "Custom title");
    assert_eq!(result.output("version"), "v1");
}

#[test]
fn several_images_each_get_their_own_credentials() {
    let first = Registry::start(Mode::htpasswd(USER, PASSWORD));
    let second_password = "second-registry-p4ssw0rd";
    let second = Registry::start(Mode::htpasswd("robot", second_password));
    let result = Workflow::new()
        .input("registry", first.host())
        .input("username", USER)
        .input("password", PASSWORD)
        .input("images", &format!("{}/octo/app\n{}/mirror/app", first.host(), second.host()))
        .input("registry_auth", &format!("{}=robot:{second_password}", second.host()))
        .input("tags", "v2")
        .file("Dockerfile", "FROM scratch\nCOPY Dockerfile /\n")
        .run();
    result.assert_success();
    let (_, d1) = first.get_manifest("octo/app", "v2");
    let (_, d2) = second.get_manifest("mirror/app", "v2");
    assert_eq!(d1, result.output("digest"));
    assert_eq!(d2, result.output("digest"));
    assert_eq!(
        result.output("tags").lines().collect::<Vec<_>>(),
        vec![format!("{}/octo/app:v2", first.host()), format!("{}/mirror/app:v2", second.host())]
    );
    assert_no_secret(&result, PASSWORD);
    assert_no_secret(&result, second_password);
}

/// `command: meta` with no token and the API unreachable still links the image to its repository.
#[test]
fn meta_without_token_or_network_gives_source_and_revision() {
    let result = Workflow::new().input("command", "meta").input("tag_with_sha", "true").run();
    result.assert_success();
    let labels: Vec<&str> = result.output("labels").lines().collect();
    assert!(labels.contains(&"org.opencontainers.image.source=https://github.com/Octo-Org/App"), "{labels:?}");
    assert!(labels.contains(&format!("org.opencontainers.image.revision={SHA}").as_str()), "{labels:?}");
    assert_eq!(result.output("tags"), format!("ghcr.io/octo-org/app:sha-{}", &SHA[..7]));
    assert!(result.stdout.contains("::notice::"), "a notice says the API was not reachable: {}", result.dump());
}

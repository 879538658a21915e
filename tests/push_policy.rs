//! Issue "a real action": whether and where a step may push is settled before anything is built. A token the
//! registry lets only pull fails the step at once with the fix; a pull request from a fork builds and pushes
//! nothing, with a notice, and refuses an explicit `push: true`; a multi-platform index carries the annotations
//! GitHub's package page reads. Checked against real registries, never with octopush's own client.

mod common;

use common::{Auth, Mode, Options, Registry, Workflow};

const USER: &str = "octocat";
const PASSWORD: &str = "ghp_policyP4ssw0rdThatMustNeverLeak";

#[test]
fn a_token_that_may_only_pull_fails_before_the_build() {
    let registry = Registry::start_with(Options {
        tls: false,
        auth: Auth::Token { user: USER.into(), pass: PASSWORD.into(), expires_in: 300, actions: "pull".into() },
    });
    let started = std::time::Instant::now();
    let result = Workflow::new()
        .input("registry", registry.host())
        .input("repository", "octo-org/app")
        .input("username", USER)
        .input("password", PASSWORD)
        .file("Dockerfile", "FROM scratch\nCOPY big.bin /big.bin\n")
        .file("big.bin", vec![7u8; 8 << 20])
        .run();
    let took = started.elapsed();
    let error = result.assert_clean_failure("permissions: packages: write");
    assert!(error.contains(&registry.host().to_string()) && error.contains("octo-org/app"), "{error}");
    // Refused before the build: no layer was written, nothing uploaded.
    assert!(!result.stdout.contains("COPY big.bin"), "the build did not start:\n{}", result.dump());
    assert!(registry.requests("PUT", "/blobs/uploads/").is_empty(), "{}", registry.access_log());
    eprintln!("refused in {took:?}");
    common::assert_no_secret(&result, PASSWORD);
}

/// A `pull_request` event payload from a fork (`someone/app`) into `Octo-Org/App`.
fn fork_event() -> serde_json::Value {
    serde_json::json!({
        "number": 7,
        "pull_request": {
            "number": 7,
            "head": {"ref": "patch-1", "sha": common::workflow::SHA, "repo": {"full_name": "someone/app", "fork": true}},
            "base": {"ref": "master", "repo": {"full_name": "Octo-Org/App"}}
        },
        "repository": {"full_name": "Octo-Org/App", "default_branch": "master"}
    })
}

#[test]
fn a_pull_request_from_a_fork_builds_and_pushes_nothing() {
    let registry = Registry::start(Mode::Anonymous);
    let step = || {
        Workflow::new()
            .input("registry", registry.host())
            .input("repository", "octo-org/app")
            .input("tag_with_ref", "true")
            .env("GITHUB_REF", "refs/pull/7/merge")
            .env("GITHUB_HEAD_REF", "patch-1")
            .env("GITHUB_BASE_REF", "master")
            .event("pull_request", &fork_event())
            .file("Dockerfile", "FROM scratch\nCOPY app.txt /app.txt\n")
            .file("app.txt", "from a fork\n")
    };
    let result = step().run();
    result.assert_success();
    let notices: Vec<&str> = result.stdout.lines().filter(|l| l.starts_with("::notice::")).collect();
    assert!(notices.iter().any(|n| n.contains("fork") && n.contains("not pushed")), "{}", result.dump());
    assert!(result.stdout.contains("COPY app.txt"), "the image was built:\n{}", result.dump());
    assert!(registry.tags("octo-org/app").is_empty());
    assert!(registry.requests("POST", "/blobs/uploads/").is_empty(), "nothing pushed:\n{}", registry.access_log());

    let result = step().input("push", "true").run();
    let error = result.assert_clean_failure("input `push`");
    assert!(error.contains("fork") && error.contains("read-only token"), "{error}");
}

#[test]
fn a_multi_platform_index_carries_what_the_package_page_reads() {
    let registry = Registry::start(Mode::Anonymous);
    common::push_busybox_multiplatform(&registry, "base/multi:1");
    let result = Workflow::new()
        .input("registry", registry.host())
        .input("repository", "octo-org/app")
        .input("tags", "v1")
        .input("platforms", "linux/amd64,linux/arm64")
        .input("labels", "org.opencontainers.image.description=Octo's app\norg.opencontainers.image.licenses=MIT")
        .file("Dockerfile", format!("FROM {}/base/multi:1\nCOPY app.txt /app.txt\n", registry.host()))
        .file("app.txt", "x")
        .run();
    result.assert_success();
    // The summary says what was pushed, for which platforms, and how long each phase took.
    for needle in ["| Platforms | linux/amd64, linux/arm64/v8 |", "(prepare ", ", build ", ", push "] {
        assert!(result.summary.contains(needle), "`{needle}` not in the summary:\n{}", result.summary);
    }
    let (index, media_type) = registry.get_manifest_json("octo-org/app", "v1");
    assert_eq!(media_type, "application/vnd.oci.image.index.v1+json");
    let a = &index["annotations"];
    assert_eq!(a["org.opencontainers.image.description"], "Octo's app", "{index}");
    assert_eq!(a["org.opencontainers.image.licenses"], "MIT", "{index}");
    assert_eq!(a["org.opencontainers.image.source"], "https://github.com/Octo-Org/App", "{index}");
    // And each manifest, as labels and annotations.
    for entry in index["manifests"].as_array().unwrap() {
        let (manifest, _) = registry.get_manifest_json("octo-org/app", entry["digest"].as_str().unwrap());
        assert_eq!(manifest["annotations"]["org.opencontainers.image.source"], "https://github.com/Octo-Org/App");
    }
}

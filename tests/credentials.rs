//! Registry credentials from a docker `config.json` (`$DOCKER_CONFIG/config.json`), end to end: `auths` entries,
//! a credential helper on PATH, an identity token against a token registry, precedence of the inputs, and a base
//! streamed from one private registry into another. Every secret is masked and appears nowhere else.

mod common;

use std::path::Path;

use base64::Engine as _;
use common::{Mode, Registry, Workflow, assert_no_secret, push_busybox_base};

const PASS_A: &str = "config-json-p4ss-for-registry-A";
const PASS_B: &str = "config-json-p4ss-for-registry-B";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A step building `FROM <base>` plus one COPY, with `DOCKER_CONFIG` pointing at a folder holding `config`.
fn step(base: &str, config: &serde_json::Value) -> Workflow {
    let wf = Workflow::new()
        .file("hello.txt", "hello\n")
        .file("Dockerfile", format!("FROM {base}\nCOPY hello.txt /hello.txt\n"))
        .input("repository", "octo-org/app")
        .input("tags", "v1");
    let dir = wf.runner_temp().join("docker-config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(config).unwrap()).unwrap();
    wf.env("DOCKER_CONFIG", dir.to_str().unwrap())
}

fn assert_masked(result: &common::RunResult, secret: &str) {
    assert_no_secret(result, secret);
    assert!(
        result.stdout.lines().any(|l| l.starts_with("::add-mask::") && l.contains(secret)),
        "the secret is masked first:\n{}",
        result.dump()
    );
}

#[test]
fn auths_entry_reads_a_private_base_and_pushes() {
    let a = Registry::start(Mode::htpasswd("robot", PASS_A));
    let base = push_busybox_base(&a, "base/busybox:1");
    let config =
        serde_json::json!({"auths": {format!("http://{}", a.host()): {"auth": b64(&format!("robot:{PASS_A}"))}}});
    let result = step(&base.reference, &config).input("registry", a.host()).run();
    result.assert_success();
    let (_, digest) = a.get_manifest("octo-org/app", "v1");
    assert_eq!(digest, result.output("digest"));
    assert_masked(&result, PASS_A);
}

#[test]
fn a_credential_helper_on_path_gives_the_password() {
    let a = Registry::start(Mode::htpasswd("robot", PASS_A));
    let base = push_busybox_base(&a, "base/busybox:1");
    let wf = step(&base.reference, &serde_json::json!({"credsStore": "octotest"})).input("registry", a.host());
    let bin = wf.runner_temp().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let asked = wf.runner_temp().join("asked");
    let helper = bin.join("docker-credential-octotest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\necho \"$server\" >> {asked}\n\
             if [ \"$server\" = {host} ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"robot\",\"Secret\":\"{PASS_A}\"}}' \"$server\"\n\
             else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
            asked = asked.display(),
            host = a.host()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), wf.environment()["PATH"]);
    let wf = wf.env("PATH", &path);
    let result = wf.run();
    result.assert_success();
    let (_, digest) = a.get_manifest("octo-org/app", "v1");
    assert_eq!(digest, result.output("digest"));
    assert_eq!(std::fs::read_to_string(&asked).unwrap(), format!("{}\n", a.host()), "asked once, for the host");
    assert_masked(&result, PASS_A);
}

#[test]
fn a_failing_helper_is_named_in_one_clear_error() {
    let a = Registry::start(Mode::Anonymous);
    let base = push_busybox_base(&a, "base/busybox:1");
    let result =
        step(&base.reference, &serde_json::json!({"credsStore": "octotest-absent"})).input("registry", a.host()).run();
    result.assert_failure();
    let errors: Vec<String> = result.commands().into_iter().filter(|(c, _)| c == "error").map(|(_, l)| l).collect();
    assert_eq!(errors.len(), 1, "{}", result.dump());
    assert!(errors[0].contains("docker-credential-octotest-absent") && errors[0].contains("config.json"), "{errors:?}");
}

#[test]
fn a_malformed_config_json_is_a_warning_naming_it_as_docker_does() {
    let a = Registry::start(Mode::Anonymous);
    let base = push_busybox_base(&a, "base/busybox:1");
    let wf = step(&base.reference, &serde_json::json!({})).input("registry", a.host());
    let file = Path::new(&wf.environment()["DOCKER_CONFIG"]).join("config.json");
    std::fs::write(&file, "{\"auths\": {").unwrap();
    let result = wf.run();
    result.assert_success();
    let warnings: Vec<String> = result.commands().into_iter().filter(|(c, _)| c == "warning").map(|(_, l)| l).collect();
    assert!(warnings.iter().any(|w| w.contains(&file.display().to_string())), "{}", result.dump());
}

#[test]
fn an_identity_token_is_used_as_a_refresh_token() {
    let a = Registry::start(Mode::token("robot", PASS_A));
    let base = push_busybox_base(&a, "base/busybox:1");
    let token = "refresh-identity-token-from-docker-login";
    let config = serde_json::json!({"auths": {a.host(): {"identitytoken": token}}});
    let result = step(&base.reference, &config).input("registry", a.host()).run();
    result.assert_success();
    let (_, digest) = a.get_manifest("octo-org/app", "v1");
    assert_eq!(digest, result.output("digest"));
    let ours: Vec<_> = a.token_requests().into_iter().filter(|r| r.user_agent.starts_with("octopush/")).collect();
    assert!(!ours.is_empty() && ours.iter().all(|r| r.method == "POST"), "refresh-token grants only: {ours:?}");
    assert!(ours.iter().any(|r| r.scopes.iter().any(|s| s == "repository:octo-org/app:pull,push")), "{ours:?}");
    assert_masked(&result, token);
}

#[test]
fn an_identity_token_for_a_password_registry_is_refused_clearly() {
    let a = Registry::start(Mode::htpasswd("robot", PASS_A));
    let base = push_busybox_base(&a, "base/busybox:1");
    let token = "refresh-identity-token-for-a-basic-registry";
    let config = serde_json::json!({"auths": {a.host(): {"identitytoken": token}}});
    let result = step(&base.reference, &config).input("registry", a.host()).run();
    result.assert_failure();
    let errors: Vec<String> = result.commands().into_iter().filter(|(c, _)| c == "error").map(|(_, l)| l).collect();
    assert_eq!(errors.len(), 1, "{}", result.dump());
    assert!(errors[0].contains("identity token") && errors[0].contains("registry_auth"), "{errors:?}");
    assert_no_secret(&result, token);
}

/// The base sits in registry A (credentials from config.json), the target is registry B (credentials from the
/// `registry_auth` input, which beats the wrong ones config.json has for B). B cannot mount from A, so every base
/// layer is streamed from A into B: one GET each at A, an upload at B, never a mount.
#[test]
fn a_base_in_one_private_registry_streams_into_another() {
    let a = Registry::start(Mode::htpasswd("robot-a", PASS_A));
    let b = Registry::start(Mode::htpasswd("robot-b", PASS_B));
    let base = push_busybox_base(&a, "base/busybox:1");
    let config = serde_json::json!({"auths": {
        a.host(): {"auth": b64(&format!("robot-a:{PASS_A}"))},
        b.host(): {"username": "robot-b", "password": "wrong-password-in-config"},
    }});
    let gets_before = a.blob_gets(&base.layer_digest);
    let result = step(&base.reference, &config)
        .input("registry", b.host())
        .input("registry_auth", &format!("{}=robot-b:{PASS_B}", b.host()))
        .run();
    result.assert_success();
    assert_eq!(a.blob_gets(&base.layer_digest) - gets_before, 1, "the base layer is read from A exactly once");
    assert!(b.has_blob("octo-org/app", &base.layer_digest), "B holds the base layer");
    assert_eq!(b.get_blob("octo-org/app", &base.layer_digest).len() as u64, base.layer_size);
    assert_eq!(b.blob_mounts(), 0, "no cross-registry mount");
    let (bytes, digest) = b.get_manifest("octo-org/app", "v1");
    assert_eq!(digest, result.output("digest"));
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(manifest["layers"][0]["digest"], base.layer_digest.as_str(), "the base layer comes first");
    assert_eq!(a.manifest_puts(), 1, "nothing but the base (pushed by the harness) went to A");
    assert_masked(&result, PASS_A);
    assert_no_secret(&result, PASS_B);
}

/// A rejected password names where it came from: the config.json entry, the `registry_auth` line, or the
/// `username`/`password` inputs (tests/publish.rs), so the user knows which one to fix.
#[test]
fn a_rejected_password_names_where_it_came_from() {
    let a = Registry::start(Mode::htpasswd("robot", PASS_A));
    let base = push_busybox_base(&a, "base/busybox:1");
    let wrong = "config-json-wrong-p4ss";
    let key = format!("http://{}", a.host());
    let config = serde_json::json!({"auths": {&key: {"auth": b64(&format!("robot:{wrong}"))}}});
    let wf = step(&base.reference, &config).input("registry", a.host());
    let file = wf.runner_temp().join("docker-config/config.json");
    let result = wf.run();
    result.assert_failure();
    let errors: Vec<&str> = result.stdout.lines().filter(|l| l.starts_with("::error")).collect();
    assert_eq!(errors.len(), 1, "{}", result.dump());
    assert!(
        errors[0].contains(&format!("the `auths` entry `{key}` in {}", file.display())),
        "the error names the config.json entry: {}",
        errors[0]
    );
    assert_no_secret(&result, wrong);

    let result = step(&base.reference, &serde_json::json!({}))
        .input("registry", a.host())
        .input("registry_auth", &format!("{}=robot:{wrong}", a.host()))
        .run();
    result.assert_failure();
    let errors: Vec<&str> = result.stdout.lines().filter(|l| l.starts_with("::error")).collect();
    assert_eq!(errors.len(), 1, "{}", result.dump());
    assert!(errors[0].contains(&format!("the `registry_auth` line for {}", a.host())), "{}", errors[0]);
    assert_no_secret(&result, wrong);
}

/// Issue 13, finding 8: the docker config's secrets were masked after three other lines; now every `::add-mask::`
/// comes before any other output, and the `auth` value itself (base64 of `user:password`) is masked too.
#[test]
fn docker_config_secrets_are_masked_before_any_other_output() {
    let a = Registry::start(Mode::htpasswd("robot", PASS_A));
    let base = push_busybox_base(&a, "base/busybox:1");
    let auth = b64(&format!("robot:{PASS_A}"));
    let config = serde_json::json!({"auths": {format!("http://{}", a.host()): {"auth": auth}}});
    let result = step(&base.reference, &config).input("registry", a.host()).run();
    result.assert_success();
    let lines: Vec<&str> = result.stdout.lines().collect();
    let first_other = lines.iter().position(|l| !l.starts_with("::add-mask::")).unwrap_or(lines.len());
    let masks = &lines[..first_other];
    assert!(masks.iter().any(|l| l.contains(PASS_A)), "the password is masked first:\n{}", result.dump());
    assert!(masks.iter().any(|l| l.contains(&auth)), "the auth value is masked first:\n{}", result.dump());
    assert!(
        lines[first_other..].iter().all(|l| !l.starts_with("::add-mask::")),
        "no mask comes after other output:\n{}",
        result.dump()
    );
    assert_masked(&result, PASS_A);
    assert_no_secret(&result, &auth);
}

//! Tests of the test harness itself (`tests/common`), with independent clients only (skopeo, curl, docker):
//! every registry mode takes a push and serves it back, the access log counts what happened, the token issuer
//! grants what ghcr.io would, TLS needs the test CA, Docker Engine pulls and runs the busybox base, and the
//! `Workflow` runner sets up the environment and parses file commands as the Actions runner does.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::registry::MANIFEST_ACCEPT;
use common::token::{ISSUER, SERVICE, jwt_claims, jwt_header};
use common::workflow::parse_file_command;
use common::{
    Dockerd, Mode, Options, Registry, Workflow, assert_no_secret, push_busybox_base, push_busybox_multiplatform,
    run_ok, sha256_digest, tool,
};

/// Pushes the busybox base, reads manifest, config and layer back with curl and checks digests and log counts.
fn push_and_read_back(reg: &Registry) -> common::BaseImage {
    let base = push_busybox_base(reg, "base/busybox:1");
    assert_eq!(base.reference, format!("{}/base/busybox:1", reg.host()));

    let (bytes, digest) = reg.get_manifest("base/busybox", "1");
    assert_eq!(digest, base.manifest_digest, "Docker-Content-Digest is the digest computed before the push");
    assert_eq!(sha256_digest(&bytes), base.manifest_digest);
    assert_eq!(bytes, base.manifest, "skopeo --preserve-digests kept the manifest byte for byte");
    let (by_digest, _) = reg.get_manifest("base/busybox", &base.manifest_digest);
    assert_eq!(by_digest, bytes);

    let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(manifest["mediaType"], common::image::OCI_MANIFEST);
    assert_eq!(manifest["layers"][0]["digest"], base.layer_digest.as_str());
    let config = reg.get_blob("base/busybox", &base.config_digest);
    assert_eq!(sha256_digest(&config), base.config_digest);
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["config"]["Cmd"][0], "/bin/sh");
    assert!(config["config"]["Env"][0].as_str().unwrap().starts_with("PATH=/"));
    assert_eq!(config["rootfs"]["diff_ids"][0], base.diff_id.as_str());
    let layer = reg.get_blob("base/busybox", &base.layer_digest);
    assert_eq!(sha256_digest(&layer), base.layer_digest);
    assert_eq!(layer.len() as u64, base.layer_size);
    assert!(reg.has_blob("base/busybox", &base.layer_digest));
    assert_eq!(reg.tags("base/busybox"), vec!["1".to_string()]);
    assert_eq!(reg.tags("no/such-repo"), Vec::<String>::new());

    // skopeo's push: two blobs (config, layer) and one manifest; the harness's own reads are not counted.
    assert_eq!(reg.blob_puts(), 2, "{}", reg.access_log());
    assert!(reg.blob_uploads() >= 4, "POST + PUT per blob at least:\n{}", reg.access_log());
    assert_eq!(reg.manifest_puts(), 1);
    assert_eq!(reg.blob_gets(&base.layer_digest), 0, "curl's GETs are the harness's own");
    assert!(reg.access_log().contains(&format!("/v2/base/busybox/blobs/{}", base.layer_digest)));
    base
}

/// skopeo pulls the base into an OCI layout: one counted download of the layer.
fn pull_with_skopeo(reg: &Registry, base: &common::BaseImage) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(tool("skopeo"));
    cmd.args(["--insecure-policy", "copy"])
        .args(reg.skopeo_src_args(false))
        .arg(format!("docker://{}", base.reference))
        .arg(format!("oci:{}:pulled", dir.path().display()));
    run_ok(&mut cmd);
    assert_eq!(reg.blob_gets(&base.layer_digest), 1, "{}", reg.access_log());
    assert_eq!(reg.blob_gets(&base.config_digest), 1);
}

#[test]
fn anonymous_registry_takes_a_skopeo_push_serves_it_to_curl_and_counts_requests() {
    let t = Instant::now();
    let reg = Registry::start(Mode::Anonymous);
    eprintln!("anonymous registry started in {:?} (constructor {:?})", reg.started_in(), t.elapsed());
    assert!(reg.host().starts_with("127.0.0.1:"));
    assert!(reg.url().starts_with("http://127.0.0.1:"));
    let base = push_and_read_back(&reg);
    pull_with_skopeo(&reg, &base);

    // A second push finds both blobs there and uploads nothing.
    push_busybox_base(&reg, "base/busybox:1");
    assert_eq!(reg.blob_puts(), 2, "{}", reg.access_log());

    // The log lines are the registry's own (combined log format), with skopeo's user agent.
    let entries = reg.access_entries();
    assert!(entries.iter().any(|e| e.user_agent.starts_with("skopeo") && e.method == "PUT"), "{entries:?}");
    assert!(entries.iter().all(|e| e.protocol == "HTTP/1.1" || e.protocol == "HTTP/1.0"));
}

#[test]
fn htpasswd_registry_wants_the_right_credentials() {
    let t = Instant::now();
    let reg = Registry::start(Mode::htpasswd("octo", "hunter2-secret"));
    eprintln!("htpasswd registry started in {:?} (constructor {:?})", reg.started_in(), t.elapsed());
    assert_eq!(reg.credentials(), Some(("octo", "hunter2-secret")));
    let base = push_and_read_back(&reg);

    let anonymous = reg.curl_anonymous("GET", "/v2/base/busybox/manifests/1", &[("Accept", MANIFEST_ACCEPT)], None);
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.header("www-authenticate").unwrap().starts_with("Basic"), "{:?}", anonymous.headers);
    let wrong = common::http::curl("GET", &format!("{}/v2/", reg.url()), &[], None, &["-u", "octo:wrong"]);
    assert_eq!(wrong.status, 401);

    let out = reg.skopeo_copy_to_result(&format!("docker://{}", base.reference), "other/copy:1", false, true);
    assert!(!out.status.success(), "an anonymous push must fail");
    assert!(reg.tags("other/copy").is_empty());
}

#[test]
fn tls_registry_is_reached_only_with_the_test_ca() {
    let t = Instant::now();
    let reg = Registry::start(Mode::Tls);
    eprintln!("TLS registry started in {:?} (constructor {:?})", reg.started_in(), t.elapsed());
    assert!(reg.url().starts_with("https://127.0.0.1:"));
    assert!(reg.cert_dir().join("ca.crt").is_file());
    push_and_read_back(&reg);

    let ca = reg.ca_file().to_string_lossy().into_owned();
    let url = format!("{}/v2/", reg.url());
    let ok = common::http::curl_result("GET", &url, &[], None, &["--cacert", &ca]).expect("curl --cacert");
    assert_eq!(ok.status, 200);
    let localhost = url.replace("127.0.0.1", "localhost");
    let ok = common::http::curl_result("GET", &localhost, &[], None, &["--cacert", &ca]).expect("SAN DNS:localhost");
    assert_eq!(ok.status, 200);
    let err = common::http::curl_result("GET", &url, &[], None, &[]).expect_err("the system roots do not know the CA");
    assert!(err.contains("certificate"), "{err}");
    let plain = common::http::curl_result("GET", &url.replace("https://", "http://"), &[], None, &[]);
    assert!(plain.map(|r| r.status == 400).unwrap_or(true), "plain HTTP to the TLS port gets nowhere");
    assert!(reg.access_entries().iter().any(|e| e.protocol == "HTTP/2.0"), "the registry speaks HTTP/2 over TLS");
}

#[test]
fn token_registry_grants_like_ghcr() {
    let t = Instant::now();
    let reg = Registry::start(Mode::token("octo", "ghp_harnessSecret123"));
    eprintln!("token registry started in {:?} (constructor {:?})", reg.started_in(), t.elapsed());
    let issuer = reg.issuer();
    assert!(issuer.url().starts_with("http://127.0.0.1:"));
    let challenge = common::http::curl("GET", &format!("{}/v2/", reg.url()), &[], None, &[]);
    assert_eq!(challenge.status, 401);
    let www = challenge.header("www-authenticate").unwrap();
    assert!(www.contains(&format!("realm=\"{}\"", issuer.url())) && www.contains(SERVICE), "{www}");

    // Anonymous callers get pull only, whatever they ask for.
    let anon = issuer.token(&["repository:base/busybox:pull,push"], None);
    let header = jwt_header(&anon);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["x5c"].as_array().map(Vec::len), Some(1));
    let claims = jwt_claims(&anon);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], SERVICE);
    assert_eq!(claims["sub"], "");
    for k in ["exp", "nbf", "iat"] {
        assert!(claims[k].as_i64().is_some(), "{k} in {claims}");
    }
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "base/busybox", "actions": ["pull"]}])
    );
    let resp = issuer.request_token(&["repository:a/b:pull"], None).json();
    assert_eq!(resp["expires_in"], 300);
    assert_eq!(resp["token"], resp["access_token"]);
    assert!(resp["issued_at"].as_str().is_some_and(|s| s.ends_with('Z')));

    // An anonymous push fails, a push with the right credentials works.
    let layout = tempfile::tempdir().unwrap();
    common::image::write_busybox_layout(layout.path(), "base/busybox", "1");
    let src = format!("oci:{}:1", layout.path().display());
    let out = reg.skopeo_copy_to_result(&src, "base/busybox:1", false, true);
    assert!(!out.status.success(), "anonymous push must be refused");
    let denied = reg.curl_anonymous("POST", "/v2/base/busybox/blobs/uploads/", &[], None);
    assert_eq!(denied.status, 401, "{}", denied.text());
    let base = push_and_read_back(&reg);
    let pushes: Vec<_> = reg.token_requests().into_iter().filter(|r| r.account.as_deref() == Some("octo")).collect();
    assert!(!pushes.is_empty(), "skopeo asked the issuer with Basic credentials");
    assert!(pushes.iter().any(|r| r.granted.iter().any(|g| g.actions.contains(&"push".to_string()))), "{pushes:?}");
    assert!(reg.token_requests().iter().all(|r| !r.harness));
    assert!(issuer.all_requests().iter().any(|r| r.harness), "the harness's own requests are logged, marked");

    // Public pull with an anonymous token, like ghcr.io.
    let public = reg.curl_anonymous("GET", "/v2/base/busybox/manifests/1", &[("Accept", MANIFEST_ACCEPT)], None);
    assert_eq!(public.status, 200);

    // Wrong credentials: 401 from the issuer, and skopeo cannot push.
    let wrong = issuer.request_token(&["repository:base/busybox:pull,push"], Some(("octo", "wrong")));
    assert_eq!(wrong.status, 401);
    let before = reg.token_requests().len();
    let mut cmd = Command::new(tool("skopeo"));
    cmd.args(["--insecure-policy", "copy", "--retry-times=0", "--dest-tls-verify=false"])
        .arg("--dest-creds=octo:wrong")
        .arg(&src)
        .arg(format!("docker://{}/base/busybox:2", reg.host()));
    let out = common::run(&mut cmd);
    assert!(!out.status.success());
    let after = reg.token_requests();
    assert!(after.len() > before && after[before..].iter().any(|r| r.status == 401), "{after:?}");

    // Two scopes in one token, as a cross-repository mount asks.
    let token = issuer.token(
        &["repository:app/target:pull,push", "repository:base/busybox:pull"],
        Some(("octo", "ghp_harnessSecret123")),
    );
    let access = &jwt_claims(&token)["access"];
    assert_eq!(access.as_array().map(Vec::len), Some(2), "{access}");
    assert_eq!(access[0]["actions"], serde_json::json!(["pull", "push"]));
    assert_eq!(access[1]["actions"], serde_json::json!(["pull"]));
    let mount = common::http::curl(
        "POST",
        &format!("{}/v2/app/target/blobs/uploads/?mount={}&from=base/busybox", reg.url(), base.layer_digest),
        &[("Authorization", &format!("Bearer {token}"))],
        None,
        &[],
    );
    assert_eq!(mount.status, 201, "{}", mount.text());
    assert!(reg.has_blob("app/target", &base.layer_digest));
    assert_eq!(common::http::HARNESS_USER_AGENT, "octopush-test-harness");
}

#[test]
fn tls_and_token_auth_combine() {
    let reg = Registry::start_with(Options {
        tls: true,
        auth: common::Auth::Token {
            user: "octo".into(),
            pass: "pw".into(),
            expires_in: 60,
            actions: "pull,push,delete,*".into(),
        },
    });
    push_and_read_back(&reg);
    assert_eq!(reg.issuer().request_token(&["repository:x/y:pull"], None).json()["expires_in"], 60);
}

#[test]
fn two_platform_base_is_an_index_of_amd64_and_arm64() {
    let reg = Registry::start(Mode::Anonymous);
    let base = push_busybox_multiplatform(&reg, "base/busybox:multi");
    let (bytes, digest) = reg.get_manifest("base/busybox", "multi");
    assert_eq!(digest, base.index_digest);
    assert_eq!(bytes, base.index);
    let (index, content_type) = reg.get_manifest_json("base/busybox", "multi");
    assert_eq!(content_type, common::image::OCI_INDEX);
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    for image in &base.images {
        let (m, d) = reg.get_manifest("base/busybox", &image.manifest_digest);
        assert_eq!(d, image.manifest_digest);
        assert_eq!(m, image.manifest);
        let config: serde_json::Value =
            serde_json::from_slice(&reg.get_blob("base/busybox", &image.config_digest)).unwrap();
        assert_eq!(format!("linux/{}", config["architecture"].as_str().unwrap()), image.platform);
    }
    assert_ne!(base.platform("linux/amd64").layer_digest, base.platform("linux/arm64").layer_digest);
    assert_eq!(reg.manifest_puts(), 3, "two manifests and the index");
    assert_eq!(reg.blob_puts(), 4, "a config and a layer per platform");
}

#[test]
fn busybox_rootfs_is_static_and_has_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    common::busybox_rootfs(dir.path());
    let busybox = dir.path().join("bin/busybox");
    assert!(busybox.is_file());
    assert_eq!(std::fs::read_link(dir.path().join("bin/sh")).unwrap(), Path::new("busybox"));
    let out = run_ok(Command::new(&busybox).args(["echo", "static"]));
    assert_eq!(out.trim(), "static");
    assert!(dir.path().join("etc/passwd").is_file());
}

#[test]
fn dockerd_pulls_the_base_from_the_registry_and_runs_it() {
    let reg = Registry::start(Mode::Anonymous);
    let base = push_busybox_base(&reg, "base/busybox:1");
    let t = Instant::now();
    let docker = Dockerd::start();
    eprintln!("dockerd started in {:?} (constructor {:?})", docker.started_in(), t.elapsed());
    let version = docker.docker_ok(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!version.trim().is_empty());
    assert!(docker.host().starts_with("unix:///"));

    docker.docker_ok(&["pull", &base.reference]);
    assert_eq!(reg.blob_gets(&base.layer_digest), 1, "dockerd downloaded the layer once");
    let id = docker.docker_ok(&["image", "inspect", "--format", "{{index .RepoDigests 0}}", &base.reference]);
    assert_eq!(id.trim(), base.by_digest());
    let hi = docker.docker_ok(&["run", "--rm", "--network", "none", &base.reference, "/bin/busybox", "echo", "hi"]);
    assert_eq!(hi.trim(), "hi");
    let path = docker.docker_ok(&["run", "--rm", "--network", "none", &base.reference, "sh", "-c", "echo $PATH"]);
    assert_eq!(path.trim(), common::image::BASE_PATH);

    // A base can also come without a registry.
    docker.docker_ok(&["image", "rm", &base.reference]);
    docker.import_busybox("local/busybox:imported");
    let out = docker.docker_ok(&["run", "--rm", "--network", "none", "local/busybox:imported", "echo", "imported"]);
    assert_eq!(out.trim(), "imported");
}

#[test]
fn workflow_runs_with_a_runner_environment_and_parses_file_commands() {
    let script = r###"
        echo "::add-mask::$INPUT_PASSWORD"
        echo "plain=$INPUT_TAG_WITH_SHA" >> "$GITHUB_OUTPUT"
        printf 'tags<<EOF_1\nghcr.io/octo-org/app:1\nghcr.io/octo-org/app:latest\nEOF_1\n' >> "$GITHUB_OUTPUT"
        echo "odd=a<<b" >> "$GITHUB_OUTPUT"
        echo "EXPORTED=yes" >> "$GITHUB_ENV"
        echo "## Summary" >> "$GITHUB_STEP_SUMMARY"
        echo "workspace is $(pwd)"
        echo "to stderr" >&2
        exit 3
    "###;
    let wf = Workflow::new()
        .program("/bin/sh")
        .args(&["-c", script])
        .input("tag with sha", "true")
        .input("build-args", "A=1")
        .input("password", "s3cr3t-value")
        .env("EXTRA", "x");
    let r = wf.run();
    assert_eq!(r.status.code(), Some(3));
    assert_eq!(r.outputs.get("plain").map(String::as_str), Some("true"));
    assert_eq!(r.output("tags"), "ghcr.io/octo-org/app:1\nghcr.io/octo-org/app:latest");
    assert_eq!(r.output("odd"), "a<<b");
    assert_eq!(r.exported_env.get("EXPORTED").map(String::as_str), Some("yes"));
    assert_eq!(r.summary, "## Summary\n");
    assert_eq!(r.stderr.trim(), "to stderr");
    assert!(r.stdout.contains(&format!("workspace is {}", wf.workspace().display())));
    assert_eq!(r.commands().first().map(|(n, _)| n.as_str()), Some("add-mask"));
    assert_no_secret(&r, "s3cr3t-value");

    // `env` itself, not through sh: dash drops variables whose names are not identifiers (INPUT_BUILD-ARGS).
    let printed = wf.run_with(Path::new("/usr/bin/env"), &[]).assert_success().stdout.clone();
    let env = parse_file_command(&printed);
    for (k, v) in [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REPOSITORY", "Octo-Org/App"),
        ("GITHUB_REF", "refs/heads/master"),
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_ACTOR", "octocat"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_API_URL", common::workflow::CLOSED_API_URL),
        ("INPUT_TAG_WITH_SHA", "true"),
        ("INPUT_BUILD-ARGS", "A=1"),
        ("EXTRA", "x"),
    ] {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(env["GITHUB_SHA"].len(), 40);
    assert!(env["GITHUB_SHA"].chars().all(|c| c.is_ascii_hexdigit()));
    for k in ["GITHUB_WORKSPACE", "RUNNER_TEMP", "HOME", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_EVENT_PATH"] {
        assert!(Path::new(&env[k]).exists(), "{k}={}", env[k]);
    }
    assert!(env["HOME"] != std::env::var("HOME").unwrap_or_default(), "HOME is isolated");
    for (k, _) in std::env::vars() {
        let ours = wf.environment().contains_key(&k) || ["PWD", "SHLVL", "_", "OLDPWD"].contains(&k.as_str());
        assert!(ours || !env.contains_key(&k), "{k} came from the test's environment: it must be cleared");
    }
    assert!(env.keys().all(|k| wf.environment().contains_key(k) || ["PWD", "SHLVL", "_"].contains(&k.as_str())));
    let event: serde_json::Value = serde_json::from_slice(&std::fs::read(&env["GITHUB_EVENT_PATH"]).unwrap()).unwrap();
    assert_eq!(event["repository"]["default_branch"], "master");
    assert_eq!(event["after"], env["GITHUB_SHA"].as_str());

    // The API URL is a closed port: refused at once.
    let refused = common::http::curl_result("GET", common::workflow::CLOSED_API_URL, &[], None, &["--max-time", "5"]);
    assert!(refused.is_err());

    // Each run starts with empty file-command files.
    let again = Workflow::new().program("/bin/true").run();
    assert!(again.outputs.is_empty() && again.summary.is_empty());
    assert!(Path::new(env!("CARGO_BIN_EXE_octopush")).is_file());
}

#[test]
#[should_panic(expected = "the secret leaked on stdout line 2")]
fn assert_no_secret_catches_a_leak() {
    let r = Workflow::new()
        .program("/bin/sh")
        .args(&["-c", "echo \"::add-mask::$INPUT_TOKEN\"; echo \"token is $INPUT_TOKEN\""])
        .input("token", "ghp_leaky")
        .run();
    assert_no_secret(&r, "ghp_leaky");
}

#[test]
#[should_panic(expected = "the secret leaked in output")]
fn assert_no_secret_looks_at_outputs() {
    let r = Workflow::new()
        .program("/bin/sh")
        .args(&["-c", "echo \"t=$INPUT_TOKEN\" >> \"$GITHUB_OUTPUT\""])
        .input("token", "ghp_leaky")
        .run();
    assert_no_secret(&r, "ghp_leaky");
}

#[test]
#[should_panic(expected = "no closing delimiter")]
fn unterminated_heredoc_output_is_an_error() {
    parse_file_command("x<<EOF\nvalue\n");
}

#[test]
fn install_script_finds_everything_already_there() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-test-deps.sh");
    let t = Instant::now();
    let out = run_ok(Command::new("bash").arg(&script));
    assert!(out.contains("Debian packages already installed"), "{out}");
    assert!(out.contains("act already installed"), "{out}");
    assert!(t.elapsed().as_secs() < 30, "a second run must be quick: {:?}", t.elapsed());
}

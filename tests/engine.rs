//! Issue "engine builder", acceptance: Dockerfiles with RUN go through a real Docker Engine (Debian's dockerd
//! 20.10, started per test, BuildKit through its API with our session, and the classic builder), and what it
//! built is pushed by octopush's own registry client. What landed is checked with independent clients (curl
//! through the harness, the docker CLI), never with octopush's registry client.
//!
//! The testbed's dockerd has no bridge network, so every build here uses `network: none` (a runner's engine has
//! its bridge). Its BuildKit (Engine 20.10's built-in Dockerfile frontend) refuses heredocs, which need Engine
//! 23+; they are not part of these Dockerfiles (the native builder's tests cover heredocs in COPY).

mod common;

use common::workflow::SHA;
use common::{BaseImage, Dockerd, Mode, Registry, Workflow, assert_no_secret, gunzip_entries, push_busybox_base};

const USER: &str = "octocat";
const PASSWORD: &str = "ghp_engineP4ssw0rdThatMustNeverLeak";
const REPO: &str = "octo-org/app/engine";

/// A registry with the busybox base, and an engine.
struct Bed {
    registry: Registry,
    base: BaseImage,
    dockerd: Dockerd,
}

fn bed(mode: Mode) -> Bed {
    let registry = Registry::start(mode);
    let base = push_busybox_base(&registry, "base/busybox:1");
    Bed { registry, base, dockerd: Dockerd::start() }
}

/// The v1 step against `bed`, building through its engine with network `none`.
fn step(bed: &Bed) -> Workflow {
    let mut wf = Workflow::new()
        .input("registry", bed.registry.host())
        .input("repository", "Octo-Org/App/engine")
        .input("tag_with_sha", "true")
        .input("tag_with_ref", "true")
        .input("network", "none")
        .env("DOCKER_HOST", &bed.dockerd.host());
    if let Some((user, pass)) = bed.registry.credentials() {
        wf = wf.input("username", user).input("password", pass);
    }
    wf
}

/// Two stages, `ARG` before `FROM`, a cache mount, `COPY --from=<stage>`, a RUN that writes a file, `USER`. The
/// last RUN also writes 17 MiB of noise: a layer large enough to be streamed up while it is compressed.
fn buildkit_dockerfile(bed: &Bed) -> String {
    format!(
        "ARG BASE={}/base/busybox:1\n\
         FROM ${{BASE}} AS build\n\
         RUN --mount=type=cache,target=/cache echo warm > /cache/marker && mkdir -p /out && \\\n    \
             echo \"built by RUN in $(cat /cache/marker) cache\" > /out/message\n\
         FROM ${{BASE}}\n\
         COPY --from=build /out/message /srv/message\n\
         COPY app.txt /srv/app.txt\n\
         RUN echo \"written by the final stage\" > /srv/from-run && head -c 17825792 /dev/urandom > /srv/noise && \\\n    \
             chown -R 65534 /srv\n\
         USER 65534\n\
         CMD [\"cat\", \"/srv/message\", \"/srv/from-run\", \"/srv/app.txt\"]\n",
        bed.registry.host()
    )
}

/// Pulls `reference` into the engine afresh (its local copy removed first) and runs it; returns what it printed.
fn run_pushed(bed: &Bed, reference: &str) -> String {
    let d = &bed.dockerd;
    if let Some((user, pass)) = bed.registry.credentials() {
        d.docker_ok(&["login", bed.registry.host(), "-u", user, "-p", pass]);
    }
    let _ = d.docker(&["rmi", "-f", reference]);
    d.docker_ok(&["pull", reference]);
    d.docker_ok(&["run", "--rm", "--network", "none", reference])
}

/// Requests octopush itself made (by its user agent) with `method` and `needle` in the path.
fn octopush_requests(registry: &Registry, method: &str, needle: &str) -> usize {
    registry.requests(method, needle).iter().filter(|e| e.user_agent.starts_with("octopush/")).count()
}

#[test]
fn buildkit_builds_run_and_octopush_pushes_to_a_token_registry() {
    let bed = bed(Mode::token(USER, PASSWORD));
    let result = step(&bed).file("Dockerfile", buildkit_dockerfile(&bed)).file("app.txt", "from the context\n").run();
    result.assert_success();
    let host = bed.registry.host();
    let out = &result.stdout;
    assert!(out.contains("builder: engine (the target needs `RUN --mount=type=cache"), "{}", result.dump());
    assert!(out.contains("::group::Build and push") && out.contains("#1 "), "BuildKit's log in a group:\n{out}");
    // Engine 20.10 names saved layers by v1 ID: each is known from its directory's `json` before its bytes, so
    // the three new layers are compressed while the export streams, and none is spooled to disk first.
    assert!(out.contains("(3 compressed as they streamed, 0 spooled first)"), "{}", result.dump());

    // Tags from v1's inputs, and the digest output is the registry's.
    let expected = vec![format!("{host}/{REPO}:latest"), format!("{host}/{REPO}:sha-{}", &SHA[..7])];
    assert_eq!(result.output("tags").lines().collect::<Vec<_>>(), expected, "{}", result.dump());
    let digest = result.output("digest");
    for tag in ["latest".to_string(), format!("sha-{}", &SHA[..7])] {
        assert_eq!(bed.registry.get_manifest(REPO, &tag).1, digest, "digest output vs registry for {tag}");
    }
    let (manifest, _) = bed.registry.get_manifest_json(REPO, "latest");
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    assert_eq!(result.output("imageid"), config_digest, "imageid is the engine's image ID");
    let config: serde_json::Value = serde_json::from_slice(&bed.registry.get_blob(REPO, config_digest)).unwrap();
    assert_eq!(config["config"]["User"], "65534");
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.revision"], SHA,
        "computed labels reach the engine"
    );

    // The base's layer is the base's blob, neither downloaded nor uploaded by octopush; each new layer went up
    // once.
    let layers: Vec<&str> =
        manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
    assert_eq!(layers[0], bed.base.layer_digest, "the first layer is the base's own blob");
    assert_eq!(
        octopush_requests(&bed.registry, "GET", &format!("/blobs/{}", bed.base.layer_digest)),
        0,
        "{}",
        bed.registry.access_log()
    );
    let encoded = bed.base.layer_digest.replace(':', "%3A");
    assert_eq!(
        octopush_requests(&bed.registry, "PUT", &encoded),
        0,
        "mounted, not uploaded:\n{}",
        bed.registry.access_log()
    );
    for (i, layer) in layers.iter().enumerate().skip(1) {
        assert_eq!(bed.registry.upload_puts_of(layer), 1, "{layer} uploaded once:\n{}", bed.registry.access_log());
        // The last RUN's 17 MiB layer was streamed while it was compressed (one PATCH as it grew, then the
        // PUT); the small COPY layers went up once written.
        let line = out.lines().find(|l| l.contains(&format!("uploaded {}… (", &layer[..19])));
        let streamed = line.is_some_and(|l| l.ends_with(") as it was compressed"));
        assert_eq!(streamed, i == 3, "{layer}: {out}");
    }
    assert_eq!(
        octopush_requests(&bed.registry, "PATCH", "/blobs/uploads/"),
        1,
        "one streamed PATCH, for the large layer:\n{}",
        bed.registry.access_log()
    );
    // The new layers hold what RUN and COPY made.
    let mut files = std::collections::BTreeMap::new();
    for layer in &layers[1..] {
        files.extend(gunzip_entries(&bed.registry.get_blob(REPO, layer)));
    }
    assert_eq!(
        files.get("srv/message").map(Vec::as_slice),
        Some(&b"built by RUN in warm cache\n"[..]),
        "{:?}",
        files.keys()
    );

    // The pushed image runs, and prints what RUN wrote.
    let printed = run_pushed(&bed, &format!("{host}/{REPO}:latest"));
    assert_eq!(printed, "built by RUN in warm cache\nwritten by the final stage\nfrom the context\n");
    assert_no_secret(&result, PASSWORD);
}

#[test]
fn the_classic_builder_publishes_the_same_way() {
    let bed = bed(Mode::htpasswd(USER, PASSWORD));
    let dockerfile = format!(
        "ARG BASE={}/base/busybox:1\nFROM ${{BASE}} AS build\nRUN mkdir -p /out && echo classic > /out/message\n\
         FROM ${{BASE}}\nCOPY --from=build /out/message /message\nRUN echo run >> /message\nCMD [\"cat\", \"/message\"]\n",
        bed.registry.host()
    );
    let result = step(&bed).env("DOCKER_BUILDKIT", "0").file("Dockerfile", dockerfile).run();
    result.assert_success();
    assert!(result.stdout.contains("classic builder") && result.stdout.contains("Step 1/"), "{}", result.dump());
    assert!(result.stdout.contains("(2 compressed as they streamed, 0 spooled first)"), "{}", result.dump());
    let host = bed.registry.host();
    assert_eq!(bed.registry.get_manifest(REPO, "latest").1, result.output("digest"));
    let (manifest, _) = bed.registry.get_manifest_json(REPO, "latest");
    assert_eq!(manifest["layers"][0]["digest"], bed.base.layer_digest.as_str());
    assert_eq!(octopush_requests(&bed.registry, "GET", &format!("/blobs/{}", bed.base.layer_digest)), 0);
    assert_eq!(run_pushed(&bed, &format!("{host}/{REPO}:latest")), "classic\nrun\n");
    assert_no_secret(&result, PASSWORD);
}

#[test]
fn a_failing_run_is_annotated_on_its_line_and_nothing_is_pushed() {
    let bed = bed(Mode::Anonymous);
    let dockerfile = format!(
        "FROM {}/base/busybox:1\nCOPY app.txt /app.txt\nRUN echo preparing && \\\n    echo \"half-way there\" && exit 3\n",
        bed.registry.host()
    );
    for classic in [false, true] {
        let mut wf = step(&bed).file("Dockerfile", &dockerfile).file("app.txt", "x");
        if classic {
            wf = wf.env("DOCKER_BUILDKIT", "0");
        }
        let result = wf.run();
        let error = result.assert_clean_failure("file=Dockerfile,line=3");
        assert!(error.contains("Dockerfile:3: `RUN echo preparing"), "{error}");
        assert!(error.contains("half-way there"), "the output's tail is in the error: {error}");
        assert!(error.contains("exit code: 3") || error.contains("non-zero code: 3"), "{error}");
        assert!(bed.registry.tags(REPO).is_empty(), "no tag was written (classic: {classic})");
        assert_eq!(octopush_requests(&bed.registry, "PUT", "/manifests/"), 0);
        // The push was only checked (an upload session opened and cancelled), no blob sent.
        assert_eq!(octopush_requests(&bed.registry, "PUT", "/blobs/uploads/"), 0, "nothing was pushed");
    }
}

#[test]
fn a_secret_reaches_run_and_is_nowhere_else() {
    let bed = bed(Mode::Anonymous);
    const SECRET: &str = "s3cr3t-build-value-4a7c";
    // The Dockerfile checks the secret by its hash: the value itself must appear nowhere but in the input.
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(SECRET.as_bytes()))
    };
    let dockerfile = format!(
        "FROM {}/base/busybox:1\n\
         RUN --mount=type=secret,id=api_token test \"$(sha256sum < /run/secrets/api_token | cut -d' ' -f1)\" = {sha} && \
             echo \"token length $(wc -c < /run/secrets/api_token)\" > /proof\n\
         RUN --mount=type=secret,id=from_file cat /run/secrets/from_file > /copied-from-file-secret-proof\n",
        bed.registry.host()
    );
    let wf = step(&bed).input("secrets", &format!("api_token={SECRET}")).file("Dockerfile", &dockerfile);
    let secret_file = wf.runner_temp().join("file-secret");
    std::fs::write(&secret_file, "file secret\n").unwrap();
    let result = wf.input("secret_files", &format!("from_file={}", secret_file.display())).run();
    result.assert_success();
    assert!(result.stdout.contains(&format!("::add-mask::{SECRET}")));
    assert_no_secret(&result, SECRET);
    // Not in any layer, the config or its history.
    let (manifest, _) = bed.registry.get_manifest_json(REPO, "latest");
    let config = bed.registry.get_blob(REPO, manifest["config"]["digest"].as_str().unwrap());
    assert!(!String::from_utf8_lossy(&config).contains(SECRET), "config: {}", String::from_utf8_lossy(&config));
    let mut files = std::collections::BTreeMap::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let blob = bed.registry.get_blob(REPO, layer["digest"].as_str().unwrap());
        for (path, data) in gunzip_entries(&blob) {
            assert!(!String::from_utf8_lossy(&data).contains(SECRET), "{path} holds the secret");
            files.insert(path, data);
        }
    }
    assert_eq!(
        files.get("proof").map(Vec::as_slice),
        Some(&format!("token length {}\n", SECRET.len()).into_bytes()[..])
    );
    assert_eq!(files.get("copied-from-file-secret-proof").map(Vec::as_slice), Some(&b"file secret\n"[..]));
    assert!(!files.keys().any(|p| p.starts_with("run/secrets/api_token")), "the mount point holds nothing");
}

#[test]
fn auto_picks_native_without_run_and_the_engine_with_it() {
    let bed = bed(Mode::Anonymous);
    let native = format!("FROM {}/base/busybox:1\nCOPY app.txt /app.txt\n", bed.registry.host());
    let result = step(&bed).file("Dockerfile", native).file("app.txt", "x").run();
    result.assert_success();
    assert!(result.stdout.contains("builder: native (no stage the target needs has RUN"), "{}", result.dump());
    assert!(!result.stdout.contains("Docker Engine"), "the engine is not contacted: {}", result.dump());

    let with_run = format!("FROM {}/base/busybox:1\nRUN echo hi > /hi\n", bed.registry.host());
    let result = step(&bed).file("Dockerfile", with_run).run();
    result.assert_success();
    assert!(
        result.stdout.contains("builder: engine (the target needs `RUN echo hi > /hi` (Dockerfile:2)"),
        "{}",
        result.dump()
    );
}

#[test]
fn without_an_engine_the_error_names_the_run_line() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let wf = Workflow::new().input("registry", registry.host()).input("repository", "o/a");
    let missing = wf.runner_temp().join("no-docker.sock");
    let result = wf
        .env("DOCKER_HOST", &format!("unix://{}", missing.display()))
        .file("Dockerfile", format!("FROM {}/base/busybox:1\nCOPY . /src\nRUN make\n", registry.host()))
        .run();
    let error = result.assert_clean_failure("file=Dockerfile,line=3");
    assert!(error.contains("Dockerfile:3: `RUN make` needs a container runtime"), "{error}");
    assert!(error.contains("DOCKER_HOST") && error.contains("runner with Docker"), "the fix: {error}");
    assert_eq!(octopush_requests(&registry, "PUT", "/blobs/uploads/"), 0, "nothing was pushed");

    // Without DOCKER_HOST, /var/run/docker.sock is tried, and named.
    let result = Workflow::new()
        .input("registry", registry.host())
        .input("repository", "o/a")
        .env_remove("DOCKER_HOST")
        .file("Dockerfile", "FROM scratch\nRUN true\n")
        .run();
    if !std::path::Path::new("/var/run/docker.sock").exists() {
        let error = result.assert_clean_failure("line=2");
        assert!(error.contains("/var/run/docker.sock"), "{error}");
    }
}

#[test]
fn platforms_the_engine_cannot_run_are_refused_before_building() {
    let bed = bed(Mode::Anonymous);
    let other = if common::image::host_arch() == "amd64" { "linux/s390x" } else { "linux/amd64" };
    let result = step(&bed)
        .input("platforms", &format!("linux/{},{other}", common::image::host_arch()))
        .file("Dockerfile", format!("FROM {}/base/busybox:1\nRUN true\n", bed.registry.host()))
        .run();
    let error = result.assert_clean_failure("platforms");
    assert!(error.contains(other) && error.contains("runs-on") && error.contains("QEMU"), "{error}");
    assert!(!result.stdout.contains("#1 "), "nothing was built: {}", result.dump());
}

/// A remote build host: the engine on TCP with TLS that verifies clients, reached with the docker CLI's
/// `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`. The BuildKit session and the export cross the same
/// TLS connection kind. A wrong CA is an error naming the TLS files, not a hang or a plain-text fallback.
#[test]
fn a_remote_engine_over_tls_builds_like_a_local_one() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = common::tls::make_pki(&pki_dir.path().join("pki"));
    let dockerd = Dockerd::start_tls(&pki);
    let certs = pki_dir.path().join("client");
    common::tls::client_cert(&pki, &certs);
    std::fs::copy(&pki.ca_cert, certs.join("ca.pem")).unwrap();
    let step = |certs: &std::path::Path| {
        Workflow::new()
            .input("registry", registry.host())
            .input("repository", "o/remote")
            .input("tags", "v1")
            .input("network", "none")
            .env("DOCKER_HOST", &format!("tcp://{}", dockerd.tcp()))
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", certs.to_str().unwrap())
            .file("Dockerfile", format!("FROM {}/base/busybox:1\nRUN echo remote > /where\n", registry.host()))
    };
    let result = step(&certs).run();
    result.assert_success();
    assert!(result.stdout.contains(&format!("at tcp://{} (TLS)", dockerd.tcp())), "{}", result.dump());
    let (manifest, _) = registry.get_manifest_json("o/remote", "v1");
    let top = manifest["layers"].as_array().unwrap().last().unwrap()["digest"].as_str().unwrap().to_string();
    assert_eq!(
        gunzip_entries(&registry.get_blob("o/remote", &top)).get("where").map(Vec::as_slice),
        Some(&b"remote\n"[..])
    );

    // Another CA: the engine's certificate is not trusted.
    let other = common::tls::make_pki(&pki_dir.path().join("other"));
    let wrong = pki_dir.path().join("wrong");
    common::tls::client_cert(&other, &wrong);
    std::fs::copy(&other.ca_cert, wrong.join("ca.pem")).unwrap();
    let error = step(&wrong).run().assert_clean_failure("TLS handshake failed");
    assert!(error.contains(&format!("tcp://{}", dockerd.tcp())) && error.contains("ca.pem"), "{error}");
    assert!(error.contains("DOCKER_CERT_PATH") && !error.contains("no Docker Engine answered"), "{error}");
}

/// `cache_from` (v1's `cache_froms`): a fresh engine reuses the RUN layer of an image octopush pushed before,
/// with BuildKit (inline cache metadata, imported from the registry) and with the classic builder (pulled first).
#[test]
fn cache_from_lets_a_fresh_engine_reuse_the_run_layer() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let dockerfile = format!(
        "FROM {}/base/busybox:1\nRUN echo expensive > /result && date +%s%N > /stamp\nCOPY app.txt /app.txt\n",
        registry.host()
    );
    for (classic, input) in [(false, "cache_from"), (true, "cache_froms")] {
        let repo = if classic { "o/cached-classic" } else { "o/cached" };
        let cache = format!("{}/{repo}:latest", registry.host());
        let publish = |dockerd: &Dockerd, app: &str| {
            let mut wf = Workflow::new()
                .input("registry", registry.host())
                .input("repository", repo)
                .input("tags", "latest")
                .input("network", "none")
                .input(input, &cache)
                .env("DOCKER_HOST", &dockerd.host())
                .file("Dockerfile", &dockerfile)
                .file("app.txt", app);
            if classic {
                wf = wf.env("DOCKER_BUILDKIT", "0");
            }
            let result = wf.run();
            result.assert_success();
            result
        };
        // The first build has no cache to use: a warning at most, and the image is pushed.
        let first = publish(&Dockerd::start(), "one");
        let (m1, _) = registry.get_manifest_json(repo, "latest");
        // A new engine, with nothing cached: the RUN step comes from the pushed image.
        let second = publish(&Dockerd::start(), "two");
        let (m2, _) = registry.get_manifest_json(repo, "latest");
        let run_layer = |m: &serde_json::Value| m["layers"][1]["digest"].as_str().unwrap().to_string();
        assert_eq!(run_layer(&m1), run_layer(&m2), "the RUN layer was reused, not run again:\n{}", second.dump());
        assert_ne!(m1["layers"][2], m2["layers"][2], "the COPY layer changed");
        let reused = if classic { "Using cache" } else { "CACHED" };
        assert!(second.stdout.contains(reused), "{}", second.dump());
        assert!(!first.stdout.contains(reused), "a fresh engine had nothing to reuse:\n{}", first.dump());
    }
}

/// Two platforms the engine can run (on amd64: amd64 and 386, which BuildKit lists as its own): one index, each
/// image on its platform's base blob, RUN run once per platform with its `TARGETARCH`.
#[test]
fn platforms_the_engine_runs_give_one_index() {
    let archs: [&str; 2] = match common::image::host_arch() {
        "amd64" => ["amd64", "386"],
        _ => ["arm64", "arm"],
    };
    let registry = Registry::start(Mode::Anonymous);
    let base = common::image::push_busybox_platforms(&registry, "base/multi:1", &archs);
    let dockerd = Dockerd::start();
    let result = Workflow::new()
        .input("registry", registry.host())
        .input("repository", "o/multi")
        .input("tags", "v1")
        .input("network", "none")
        .input("platforms", &archs.map(|a| format!("linux/{a}")).join(","))
        .env("DOCKER_HOST", &dockerd.host())
        .file(
            "Dockerfile",
            format!("FROM {}/base/multi:1\nARG TARGETARCH\nRUN echo $TARGETARCH > /arch\n", registry.host()),
        )
        .run();
    result.assert_success();
    let (index, _) = registry.get_manifest_json("o/multi", "v1");
    assert_eq!(result.output("digest"), registry.get_manifest("o/multi", "v1").1);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "{index}");
    for (entry, arch) in manifests.iter().zip(archs) {
        assert_eq!(entry["platform"]["architecture"], arch, "{index}");
        let (manifest, _) = registry.get_manifest_json("o/multi", entry["digest"].as_str().unwrap());
        let layers = manifest["layers"].as_array().unwrap();
        let base_image = base.images.iter().find(|i| i.platform == format!("linux/{arch}")).unwrap();
        assert_eq!(layers[0]["digest"], base_image.layer_digest.as_str(), "{arch} sits on its base's blob");
        let top = gunzip_entries(&registry.get_blob("o/multi", layers[1]["digest"].as_str().unwrap()));
        assert_eq!(top.get("arch").map(Vec::as_slice), Some(format!("{arch}\n").as_bytes()));
    }
}

/// The engine's image flows to the local outputs like a native one: `push: false` with `output:
/// docker-archive:FILE` gives a tar that `docker load` takes (the base layer fetched from the registry into it),
/// and the loaded image runs.
#[test]
fn an_engine_build_can_go_to_a_docker_archive_instead_of_a_registry() {
    let bed = bed(Mode::Anonymous);
    let wf = step(&bed).input("push", "false").input("output", "docker-archive:out/image.tar").file(
        "Dockerfile",
        format!("FROM {}/base/busybox:1\nRUN echo archived > /a\nCMD [\"cat\", \"/a\"]\n", bed.registry.host()),
    );
    let archive = wf.workspace().join("out/image.tar");
    let result = wf.run();
    result.assert_success();
    assert!(bed.registry.tags(REPO).is_empty(), "nothing pushed");
    let other = Dockerd::start();
    let loaded = other.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
    let reference = format!("{}/{REPO}:latest", bed.registry.host());
    assert!(loaded.contains(&reference), "{loaded}");
    assert_eq!(other.docker_ok(&["run", "--rm", "--network", "none", &reference]), "archived\n");
    let id = other.docker_ok(&["image", "inspect", "-f", "{{.Id}}", &reference]);
    assert_eq!(id.trim(), result.output("imageid"), "the engine's image ID survives the round trip");
}

/// `auto` splits a Dockerfile whose last RUN is followed by COPY: the engine builds to that RUN (given the
/// Dockerfile alone, since those lines read nothing from the context), the native builder lays the rest on its
/// image, reading `/etc/passwd` from the engine's layer for `--chown=app`. The result is the image `builder:
/// engine` makes of the same Dockerfile (same settings, history and files), and the engine holds it under its
/// tags with the `imageid` output as its ID, as for a build made wholly by the engine.
#[test]
fn auto_builds_up_to_the_last_run_on_the_engine_and_lays_the_rest_natively() {
    let bed = bed(Mode::Anonymous);
    let host = bed.registry.host().to_string();
    let dockerfile = format!(
        "FROM {host}/base/busybox:1\n\
         ARG GREETING=hello\n\
         RUN mkdir -p /etc /srv && echo 'app:x:4242:4343::/srv:/bin/sh' >> /etc/passwd \\\n\
         \x20   && echo 'app:x:4343:' >> /etc/group && echo \"$GREETING from RUN\" > /srv/from-run\n\
         ENV MODE=production\n\
         WORKDIR /srv\n\
         COPY --chown=4242:4343 site/ ./site/\n\
         COPY app.txt ${{MODE}}-$GREETING.txt\n\
         USER app\n\
         WORKDIR /srv/data\n\
         CMD [\"cat\", \"/srv/from-run\", \"/srv/production-hello.txt\", \"/srv/site/index.html\"]\n"
    );
    let wf = |builder: &str, repo: &str| {
        step(&bed)
            .input("repository", repo)
            .input("builder", builder)
            .file("Dockerfile", &dockerfile)
            .file("app.txt", "from the context\n")
            .file("site/index.html", "<p>site</p>\n")
    };
    let result = wf("auto", "octo-org/app/split").run();
    result.assert_success();
    let out = &result.stdout;
    assert!(out.contains("builder: engine, then native (the target needs `RUN mkdir"), "{}", result.dump());
    assert!(out.contains("laid natively from line 5"), "{}", result.dump());
    assert!(out.contains("lines 1-4 (to its last RUN) and gets the Dockerfile alone"), "{}", result.dump());
    let reference = format!("{host}/octo-org/app/split:latest");
    assert!(out.contains(&format!("into the engine as {reference}")), "{}", result.dump());
    // The tail was built ahead, while the engine's image was exported: the build on the exported image found
    // both COPY layers written. Not WORKDIR /srv/data, owned by `app`, whose ids are in the engine's layers only:
    // it was written again, owned as RUN's /etc/passwd says (the listing below compares it with BuildKit's). The
    // engine holds no image but the loaded one.
    assert_eq!(out.matches("already written by this build").count(), 2, "{}", result.dump());
    let dangling = bed.dockerd.docker_ok(&["image", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling, "", "no image is left untagged");

    // The engine holds the whole image under the tag, by the ID the step reports.
    let d = &bed.dockerd;
    let id = d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", &reference]);
    assert_eq!(id.trim(), result.output("imageid"), "{}", result.dump());
    let expected = "hello from RUN\nfrom the context\n<p>site</p>\n";
    assert_eq!(d.docker_ok(&["run", "--rm", "--network", "none", &reference]), expected, "the engine's copy runs");

    // What was pushed: the base's blob, the RUN's layer and the native COPY and WORKDIR layers, each uploaded once.
    assert_eq!(bed.registry.get_manifest("octo-org/app/split", "latest").1, result.output("digest"));
    let (manifest, _) = bed.registry.get_manifest_json("octo-org/app/split", "latest");
    let layers: Vec<&str> =
        manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
    assert_eq!(layers.len(), 5, "{manifest}");
    assert_eq!(layers[0], bed.base.layer_digest);
    assert_eq!(octopush_requests(&bed.registry, "GET", &format!("/blobs/{}", bed.base.layer_digest)), 0);
    for layer in &layers[1..] {
        assert_eq!(bed.registry.upload_puts_of(layer), 1, "{layer} uploaded once:\n{}", bed.registry.access_log());
    }
    assert_eq!(run_pushed(&bed, &reference), expected);
    let owner = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &reference,
        "/bin/busybox",
        "stat",
        "-c",
        "%u:%g",
        "/srv/site/index.html",
    ]);
    assert_eq!(owner, "4242:4343\n", "--chown=app:app read the user and group RUN added");

    // With zstd layers too (which Engine 20.10 cannot pull), the engine holds the image under its tag, and it
    // runs.
    let zstd = wf("auto", "octo-org/app/split-zstd").input("compression", "zstd").run();
    zstd.assert_success();
    let zstd_ref = format!("{host}/octo-org/app/split-zstd:latest");
    assert!(zstd.stdout.contains(&format!("into the engine as {zstd_ref}")), "{}", zstd.dump());
    assert!(!zstd.stdout.contains("did not take"), "{}", zstd.dump());
    let (manifest, _) = bed.registry.get_manifest_json("octo-org/app/split-zstd", "latest");
    assert_eq!(manifest["layers"][4]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd", "{manifest}");
    assert_eq!(d.docker_ok(&["run", "--rm", "--network", "none", &zstd_ref]), expected, "the engine's copy runs");

    // `builder: engine` makes the same image of it: same settings, history and files.
    let whole = wf("engine", "octo-org/app/whole").run();
    whole.assert_success();
    assert!(whole.stdout.contains("builder: engine (`builder: engine` was asked for)"), "{}", whole.dump());
    let config = |repo: &str| {
        let (m, _) = bed.registry.get_manifest_json(repo, "latest");
        let digest = m["config"]["digest"].as_str().unwrap().to_string();
        serde_json::from_slice::<serde_json::Value>(&bed.registry.get_blob(repo, &digest)).unwrap()
    };
    let (split, engine) = (config("octo-org/app/split"), config("octo-org/app/whole"));
    for key in ["Env", "Cmd", "User", "WorkingDir", "Labels", "Entrypoint"] {
        assert_eq!(split["config"][key], engine["config"][key], "config.{key}");
    }
    // The same history: Engine 20.10's BuildKit leaves `--chown` out of a COPY's entry, and later ones write it, as
    // the native builder does (set aside here); and where BuildKit commits a layer with nothing in it for WORKDIR
    // of a directory RUN made, the native builder commits none (as on a registry base).
    let history = |c: &serde_json::Value| -> Vec<(String, Option<bool>)> {
        let all = c["history"].as_array().unwrap().iter();
        all.map(|h| {
            let by = h["created_by"].as_str().unwrap_or("").replace(" --chown=4242:4343", "");
            let empty = (!by.starts_with("WORKDIR")).then_some(h["empty_layer"] == true);
            (by, empty)
        })
        .collect()
    };
    assert_eq!(history(&split), history(&engine));
    let listing = |r: &str| {
        d.docker_ok(&["run", "--rm", "--network", "none", r, "/bin/busybox", "ls", "-lnR", "/srv"])
            .lines()
            .map(|l| {
                // Mode, owner, group, size and name: the native builder dates files at the commit
                // (`SOURCE_DATE_EPOCH`), BuildKit keeps the context's times.
                let w: Vec<&str> = l.split_whitespace().collect();
                if w.len() < 8 { w.join(" ") } else { [w[0], w[2], w[3], w[4], w[w.len() - 1]].join(" ") }
            })
            .collect::<Vec<_>>()
    };
    let whole_ref = format!("{host}/octo-org/app/whole:latest");
    assert_eq!(listing(&reference), listing(&whole_ref), "the same files, modes, owners and sizes under /srv");
}

//! Issue "a real action": every workflow in `examples/workflows/` is one a user can copy, and each runs here
//! under nektos/act through the repository's `action.yml` (the action image built from the test binary), adapted
//! only where the test bed cannot give what GitHub gives (`common::act::TestBed`): a token-auth registry on
//! 127.0.0.1 instead of ghcr.io, act's host runner, a copy instead of `actions/checkout`. What landed is checked
//! with curl, skopeo and the docker CLI.

mod common;

use std::path::Path;

use common::act::{ActResult, TestBed, act_push_with, action_yml_with_image, build_action_image, commit_push_event};
use common::{Dockerd, Mode, Registry, gunzip_entries};

const USER: &str = "example-robot";
const PASSWORD: &str = "Example-Pa55word-5b8d2f0e";
const ACTION_IMAGE: &str = "octopush-examples/action:test";
/// `GITHUB_REPOSITORY` act takes from the git remote, lowercased as the image's repository.
const REPO: &str = "octo-org/app";

/// One example's run: its registry, engine and act's result.
struct Run {
    registry: Registry,
    dockerd: Dockerd,
    result: ActResult,
    sha: String,
    _dir: tempfile::TempDir,
}

/// Runs `examples/workflows/<name>` for a push of `git_ref`, in a repository holding `files`, adapted by `adapt`.
fn run_example(
    name: &str,
    git_ref: &str,
    password: &str,
    files: &[(&str, Vec<u8>)],
    engine: bool,
    adapt: impl FnOnce(&Registry, TestBed) -> TestBed,
) -> Run {
    let registry = Registry::start(Mode::token(USER, password));
    let dockerd = Dockerd::start();
    build_action_image(&dockerd, Path::new(env!("CARGO_BIN_EXE_octopush")), ACTION_IMAGE);
    let dir = tempfile::Builder::new().prefix("octopush-example-").tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    let write = |rel: &str, data: &[u8]| {
        let path = repo.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir");
        std::fs::write(&path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    };
    for (rel, data) in files {
        write(rel, data);
    }
    write("action/action.yml", action_yml_with_image(&format!("docker://{ACTION_IMAGE}")).as_bytes());
    let bed =
        TestBed { registry: registry.host().to_string(), user: USER.into(), repo: repo.clone(), ..TestBed::default() };
    let bed = adapt(&registry, bed);
    let example = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflows").join(name))
        .unwrap_or_else(|e| panic!("examples/workflows/{name}: {e}"));
    write(".github/workflows/example.yml", bed.adapt(&example).as_bytes());
    let sha = commit_push_event(dir.path(), "Octo-Org/App", git_ref);
    let result = act_push_with(dir.path(), &dockerd, ".github/workflows/example.yml", password, engine);
    assert!(result.status.success(), "act failed ({}):\n{}", result.status, result.dump());
    let all = result.all();
    assert!(!all.contains("panicked") && !all.contains(password), "{}", result.dump());
    Run { registry, dockerd, result, sha, _dir: dir }
}

fn dockerfile_scratch() -> (&'static str, Vec<u8>) {
    ("Dockerfile", b"FROM scratch\nCOPY app.txt /app.txt\n".to_vec())
}

#[test]
fn the_classic_v1_step_publishes_latest_and_the_sha() {
    let run = run_example(
        "classic-v1.yml",
        "refs/heads/master",
        PASSWORD,
        &[dockerfile_scratch(), ("app.txt", b"v1\n".to_vec())],
        false,
        |_, bed| bed,
    );
    let mut tags = run.registry.tags(REPO);
    tags.sort();
    assert_eq!(tags, vec!["latest".to_string(), format!("sha-{}", &run.sha[..7])], "{}", run.result.dump());
    let (_, digest) = run.registry.get_manifest(REPO, "latest");
    assert_eq!(run.result.marked("| octopush-octopush1=="), vec![digest]);
}

#[test]
fn the_metadata_action_rules_tag_the_branch_and_the_sha() {
    let run = run_example(
        "metadata-tags.yml",
        "refs/heads/main",
        PASSWORD,
        &[dockerfile_scratch(), ("app.txt", b"rules\n".to_vec())],
        false,
        |_, bed| bed,
    );
    let mut tags = run.registry.tags(REPO);
    tags.sort();
    assert_eq!(tags, vec!["main".to_string(), format!("sha-{}", &run.sha[..7])], "{}", run.result.dump());
    let (_, digest) = run.registry.get_manifest(REPO, "main");
    assert_eq!(
        run.result.marked("| pushed sha256:"),
        vec![format!("{} as main", &digest["sha256:".len()..])],
        "{}",
        run.result.dump()
    );
}

#[test]
fn a_dockerfile_with_run_builds_through_the_engine_mounted_into_the_action() {
    let example =
        |rel: &str| std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/run").join(rel)).unwrap();
    let run = run_example(
        "engine-run.yml",
        "refs/heads/main",
        PASSWORD,
        &[("examples/run/Dockerfile", example("Dockerfile")), ("examples/run/message.txt", example("message.txt"))],
        true,
        |registry, mut bed| {
            let base = common::push_busybox_base(registry, "base/busybox:1");
            bed.with.push(("build_args".into(), format!("BASE={}", base.reference)));
            // The test bed's engine has no bridge network.
            bed.with.push(("network".into(), "none".into()));
            bed
        },
    );
    let out = &run.result.stdout;
    assert!(out.contains("builder: engine"), "{}", run.result.dump());
    let reference = format!("{}/{REPO}:latest", run.registry.host());
    let (manifest, _) = run.registry.get_manifest_json(REPO, "latest");
    let layers = manifest["layers"].as_array().unwrap();
    let mut files = std::collections::BTreeMap::new();
    for layer in &layers[1..] {
        files.extend(gunzip_entries(&run.registry.get_blob(REPO, layer["digest"].as_str().unwrap())));
    }
    assert!(files.contains_key("srv/greeting-length") && files.contains_key("srv/built"), "{:?}", files.keys());
    // The pushed image runs.
    run.dockerd.docker_ok(&["login", run.registry.host(), "-u", USER, "-p", PASSWORD]);
    let _ = run.dockerd.docker(&["rmi", "-f", &reference]);
    let printed = run.dockerd.docker_ok(&["run", "--rm", "--network", "none", &reference]);
    assert!(printed.starts_with("a Dockerfile with RUN, built by octopush"), "{printed}");
}

#[test]
fn prebuilt_binaries_become_a_two_platform_index() {
    let run = run_example(
        "multi-arch-binaries.yml",
        "refs/tags/v1.2.3",
        PASSWORD,
        &[(
            "examples/multi-arch/Dockerfile",
            std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/multi-arch/Dockerfile")).unwrap(),
        )],
        false,
        |_, mut bed| {
            bed.runs.push((
                "./build-binaries.sh".into(),
                "mkdir -p dist && echo amd64 > dist/app-amd64 && echo arm64 > dist/app-arm64".into(),
            ));
            bed
        },
    );
    let (index, media_type) = run.registry.get_manifest_json(REPO, "1.2.3");
    assert_eq!(media_type, "application/vnd.oci.image.index.v1+json", "{}", run.result.dump());
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    for (entry, arch) in manifests.iter().zip(["amd64", "arm64"]) {
        assert_eq!(entry["platform"]["architecture"], arch);
        let (m, _) = run.registry.get_manifest_json(REPO, entry["digest"].as_str().unwrap());
        let files = gunzip_entries(&run.registry.get_blob(REPO, m["layers"][0]["digest"].as_str().unwrap()));
        assert_eq!(files.get("usr/local/bin/app").map(Vec::as_slice), Some(format!("{arch}\n").as_bytes()));
    }
}

/// Issue "multi-platform images from a matrix": `multi-platform-matrix.yml`'s two-job matrix (linux/amd64,
/// linux/arm64, native builder) pushes by digest to a token-auth registry, and its merge job, which `needs:` it,
/// tags one index of both, found through the run's hand-offs. The tag resolves to an index of exactly the two
/// platforms, each child the digest its job printed, and `skopeo copy --all` of the tag succeeds.
#[test]
fn a_matrix_pushes_by_digest_and_a_merge_job_tags_one_index() {
    let files = [
        ("Dockerfile", b"FROM BASE\nARG TARGETARCH\nCOPY $TARGETARCH.txt /arch.txt\n".to_vec()),
        ("amd64.txt", b"amd64\n".to_vec()),
        ("arm64.txt", b"arm64\n".to_vec()),
    ];
    let run =
        run_example("multi-platform-matrix.yml", "refs/heads/master", PASSWORD, &files, false, |registry, bed| {
            common::push_busybox_multiplatform(registry, "base/multi:1");
            // The Dockerfile names the base in this registry.
            let dockerfile = bed.repo.join("Dockerfile");
            let text = std::fs::read_to_string(&dockerfile).unwrap().replace("BASE", &registry.image("base/multi:1"));
            std::fs::write(&dockerfile, text).unwrap();
            bed
        });
    let mut pushed: Vec<(String, String)> = run
        .result
        .marked("| octopush-octopush1=")
        .iter()
        .filter_map(|l| l.split_once('=').map(|(p, d)| (p.to_string(), d.trim().to_string())))
        .collect();
    pushed.sort();
    assert_eq!(pushed.len(), 2, "{}", run.result.dump());
    let (index, _) = run.registry.get_manifest_json(REPO, "master");
    let children: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let platform = format!("{}/{}", p["os"].as_str().unwrap(), p["architecture"].as_str().unwrap());
            (platform, m["digest"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(children, pushed, "the index holds exactly what each job pushed");
    let (_, tag_digest) = run.registry.get_manifest(REPO, "master");
    assert_eq!(run.result.marked("| octopush-octopush2=="), vec![tag_digest.clone()], "{}", run.result.dump());
    let copy = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::tool("skopeo"))
        .args(["--insecure-policy", "copy", "--all", "--retry-times=0"])
        .args(run.registry.skopeo_src_args(false))
        .arg(format!("docker://{}/{REPO}:master", run.registry.host()))
        .arg(format!("oci:{}:copy", copy.path().display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo copy --all: {}", String::from_utf8_lossy(&out.stderr));
    let mut tags = run.registry.tags(REPO);
    tags.sort();
    assert_eq!(
        tags,
        vec!["master".to_string(), format!("sha-{}", &run.sha[..7])],
        "the example's tags; the hand-offs deleted"
    );
}

/// `install.yml`: an image's files into the workspace, and npm and Maven set up with the job's token, each used
/// by a later `run:` step. One token serves all three here as the workflow token does on GitHub: the registry's
/// password, a verdaccio token (npm) and the Basic password of a Maven repository laid out as GitHub's.
#[test]
fn install_puts_an_image_in_the_workspace_and_sets_up_npm_and_maven_for_later_steps() {
    let verdaccio = common::packages_servers::Verdaccio::start();
    let token = verdaccio.token(USER, PASSWORD);
    verdaccio.publish("@octo-org/greeting", "2.0.0", "hello from npm", &token);
    let maven = common::packages_servers::PackageRepo::start(USER, &token, true);
    let artifact = maven.root().join("octo-org/com/example/hello/1.0.0");
    std::fs::create_dir_all(&artifact).unwrap();
    let pom = "<project><modelVersion>4.0.0</modelVersion><groupId>com.example</groupId>\
               <artifactId>hello</artifactId><version>1.0.0</version></project>\n";
    let jar = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    for (name, data) in [("hello-1.0.0.pom", pom.as_bytes()), ("hello-1.0.0.jar", jar.as_slice())] {
        let path = artifact.join(name);
        std::fs::write(&path, data).unwrap();
        // GitHub's Maven registry serves checksums beside each file, and Maven checks them.
        let out = std::process::Command::new(common::tool("sha1sum")).arg(&path).output().unwrap();
        let sha1 = String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string();
        std::fs::write(artifact.join(format!("{name}.sha1")), sha1).unwrap();
    }
    let m2 = tempfile::tempdir().unwrap();
    let global = common::packages_servers::maven_global_settings(m2.path());
    let files = [(
        "package.json",
        br#"{"name": "app", "version": "0.0.0", "private": true, "dependencies": {"@octo-org/greeting": "2.0.0"}}"#
            .to_vec(),
    )];
    let run = run_example("install.yml", "refs/heads/main", &token, &files, false, |registry, mut bed| {
        use common::image::Entry;
        let greet = b"#!/bin/sh\necho \"hello from the toolchain image\"\n".to_vec();
        common::image::push_layers(
            registry,
            "octo-org/toolchain:1",
            vec![vec![Entry::Dir("bin", 0o755), Entry::File("bin/greet", 0o755, greet)]],
            false,
        );
        bed.replace.push(("ghcr.io/OWNER/".into(), format!("{}/octo-org/", registry.host())));
        bed.with.push(("npm_registry".into(), verdaccio.url()));
        bed.with.push(("maven_registry".into(), maven.url()));
        // `npm ci` needs a lock file the test bed would have to write by hand; `npm install` resolves the same.
        bed.runs.push(("npm ci".into(), "npm install --no-audit --no-fund && node -e \"console.log('octopush-npm=' + require('@octo-org/greeting'))\"".into()));
        // Debian's Maven is 3.8, which predates MAVEN_ARGS (hosted runners have 3.9): passed on as 3.9's launcher
        // does. Its offline plugins cannot run a whole `package`; fetching the dependency is what is tested.
        bed.runs.push((
            "mvn -B package".into(),
            format!(
                "mvn -B $MAVEN_ARGS -gs {} org.apache.maven.plugins:maven-dependency-plugin:3.5.0:get \
                 -Dartifact=com.example:hello:1.0.0 && echo octopush-mvn=$((6 * 7))",
                global.display()
            ),
        ));
        bed
    });
    let dump = run.result.dump();
    assert_eq!(run.result.marked("| hello from the toolchain image"), vec![String::new()], "{dump}");
    assert_eq!(run.result.marked("| octopush-npm="), vec!["hello from npm".to_string()], "{dump}");
    assert!(run.result.marked("octopush-mvn=").contains(&"42".to_string()), "{dump}");
    assert!(m2.path().join("m2/com/example/hello/1.0.0/hello-1.0.0.jar").is_file(), "{dump}");
    let authed = maven.requests().iter().any(|l| l.contains("/com/example/hello/1.0.0/hello-1.0.0.jar 200 auth=yes"));
    assert!(authed, "the jar came with the token: {:?}", maven.requests());
    // The clients' files are beside act's file commands, never in the workspace (act's `hostexecutor`).
    let leaked: Vec<_> = common::packages_servers::files_containing(&run._dir.path().join("act-cache"), &token)
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "hostexecutor"))
        .collect();
    assert!(leaked.is_empty(), "the token is in the workspace: {leaked:?}");
    let npmrc = run.result.marked("::set-env:: NPM_CONFIG_USERCONFIG=");
    assert!(npmrc.len() == 1 && npmrc[0].ends_with("/act/workflow/octopush/npm/.npmrc"), "{dump}");
}

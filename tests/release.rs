//! The release (issue 10): `scripts/release.sh`, which `.github/workflows/release.yml` runs on a tag push, run
//! here against a local ghcr-style registry (token auth, anonymous pull). One difference from a release: the
//! cargo profile is `release-check` (Cargo.toml), the `release` profile (static, stripped, panic = abort)
//! without its optimisation (no LTO, opt-level 0, many codegen units), which is most of the build's time on
//! CI's 2 cores and changes nothing checked here; the release workflow and `bench/startup.sh` build with
//! `release`. It cross-compiles both static musl binaries, publishes them with octopush's native builder as one
//! linux/amd64 + linux/arm64 index, writes the release's action.yml pinned to that index's digest, commits it,
//! tags it and pushes the tags to a bare remote.
//! Everything is then checked with other tools: curl for the registry, dockerd to run the amd64 image,
//! qemu-aarch64 (Debian's qemu-user) to run the arm64 binary, git for the tags, and nektos/act to run a workflow
//! whose action points at the image by digest.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::act::{act_push, commit_push_event};
use common::{Dockerd, Mode, Registry, gunzip_entries, run_ok};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const USER: &str = "release-bot";
const PASSWORD: &str = "Rel3ase-T0ken-5c1f9a2e";
const IMAGE_REPO: &str = "octo-org/octopush";
/// The cold build of both targets takes most of it (about 11 minutes on 2 cores shared with another build; a
/// warm run of this file takes 10 s).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(45 * 60);

/// What one run of the release script printed and wrote.
struct Released {
    /// `HOST/octo-org/octopush@sha256:...`, the script's last line.
    reference: String,
    digest: String,
    /// The release's action.yml, as the script wrote it.
    action_yml: String,
    stdout: String,
    stderr: String,
}

/// Runs `scripts/release.sh` for `registry` with `args` after the common ones, outside any workflow (every
/// `GITHUB_*` and `INPUT_*` variable of the caller's removed), the credentials in `GITHUB_ACTOR`/`GITHUB_TOKEN`
/// as in the workflow, and `out` for its files. Returns its exit status and what it printed.
fn run_release(registry: &Registry, out: &Path, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/release.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .args(["--image", &format!("{}/{IMAGE_REPO}", registry.host()), "--profile", "release-check"])
        .arg("--target-dir")
        .arg(target_dir())
        .arg("--out")
        .arg(out)
        .args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("GITHUB_") || name.starts_with("INPUT_") || name.starts_with("RUNNER_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("GITHUB_ACTOR", USER)
        .env("GITHUB_TOKEN", PASSWORD)
        // No GitHub API from here; a closed port fails at once.
        .env("GITHUB_API_URL", "http://127.0.0.1:1")
        .env("GIT_AUTHOR_NAME", "Release Bot")
        .env("GIT_AUTHOR_EMAIL", "release-bot@users.noreply.github.com")
        .env("GIT_COMMITTER_NAME", "Release Bot")
        .env("GIT_COMMITTER_EMAIL", "release-bot@users.noreply.github.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    common::wait_with_timeout(child, "scripts/release.sh", RELEASE_TIMEOUT)
}

/// [`run_release`], which must succeed.
fn release(registry: &Registry, out: &Path, args: &[&str]) -> Released {
    let (status, stdout, stderr) = run_release(registry, out, args);
    assert!(status.success(), "scripts/release.sh failed ({status}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    let reference = stdout.lines().last().unwrap_or_default().trim().to_string();
    let prefix = format!("{}/{IMAGE_REPO}@", registry.host());
    let digest = reference.strip_prefix(&prefix).unwrap_or_else(|| panic!("last line {reference:?}:\n{stderr}"));
    let action_yml = std::fs::read_to_string(out.join("action.yml")).expect("the release's action.yml");
    Released { digest: digest.to_string(), reference, action_yml, stdout, stderr }
}

/// The target directory the test build uses: this crate's, so a rerun builds nothing again. The release
/// profile's own directories (`target/<triple>/release-check`) keep it apart from `cargo test`'s build.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// `git ARGS` in `dir` with a fixed identity and no configuration of the machine's; returns stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    run_ok(
        Command::new(common::tool("git"))
            .args(["-c", "user.name=Octo Cat", "-c", "user.email=octocat@users.noreply.github.com"])
            .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir),
    )
    .trim()
    .to_string()
}

/// A checkout as the release workflow has it: `main` with an older commit tagged `v0` (the previous release's
/// major tag) and HEAD holding the repository's real action.yml, tagged `vVERSION` (the tag push that starts
/// the release); both tags and the branch pushed to the bare repository `origin`. Returns (checkout, origin).
fn source_checkout(dir: &Path) -> (PathBuf, PathBuf) {
    let (work, origin) = (dir.join("checkout"), dir.join("origin.git"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&origin).unwrap();
    git(&origin, &["init", "-q", "--bare"]);
    git(&work, &["init", "-q"]);
    std::fs::write(work.join("README.md"), "octopush\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "the previous release"]);
    git(&work, &["tag", "v0"]);
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml");
    std::fs::copy(&real, work.join("action.yml")).expect("copy action.yml");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "the commit to release"]);
    git(&work, &["tag", &format!("v{VERSION}")]);
    git(&work, &["remote", "add", "origin", &origin.to_string_lossy()]);
    git(&work, &["push", "-q", "origin", "main", "--tags"]);
    (work, origin)
}

/// The ELF machine (`e_machine`: 62 x86-64, 183 AArch64) of a 64-bit little-endian executable, and whether it
/// asks for a program interpreter (`PT_INTERP`: a dynamic loader, which a `FROM scratch` image has none of).
fn elf_machine_and_interp(bin: &[u8]) -> (u16, bool) {
    assert!(bin.len() > 64 && bin.starts_with(b"\x7fELF\x02\x01"), "not a 64-bit little-endian ELF file");
    let u16_at = |o: usize| u16::from_le_bytes([bin[o], bin[o + 1]]);
    let phoff = u64::from_le_bytes(bin[32..40].try_into().unwrap()) as usize;
    let (entsize, count) = (u16_at(54) as usize, u16_at(56) as usize);
    let interp = (0..count).any(|i| {
        let at = phoff + i * entsize;
        u32::from_le_bytes(bin[at..at + 4].try_into().unwrap()) == 3
    });
    (u16_at(18), interp)
}

/// The `/usr/local/bin/octopush` file of the image for `platform` under the index `index`, read from its layers.
fn binary_of(registry: &Registry, index: &serde_json::Value, platform: &str) -> Vec<u8> {
    let child = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| {
            format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())
                == platform
        })
        .unwrap_or_else(|| panic!("no {platform} in the index: {index}"));
    let (manifest, _) = registry.get_manifest_json(IMAGE_REPO, child["digest"].as_str().unwrap());
    let mut found = None;
    for layer in manifest["layers"].as_array().expect("layers") {
        let blob = registry.get_blob(IMAGE_REPO, layer["digest"].as_str().unwrap());
        if let Some(bin) = gunzip_entries(&blob).remove("usr/local/bin/octopush") {
            found = Some(bin);
        }
    }
    found.unwrap_or_else(|| panic!("no usr/local/bin/octopush in the {platform} image: {manifest}"))
}

/// `action.yml` parsed, as a JSON value.
fn parse_action(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("action.yml does not parse ({e}):\n{text}"))
}

/// Issue 10: the release script publishes one index of both platforms, each a static binary that runs (amd64
/// in dockerd from the pushed reference, arm64 under qemu-aarch64), writes an action.yml that differs from the
/// repository's only in `runs.image`, the pushed digest, and commits it on top of the tagged commit, replacing
/// the remote's `vX.Y.Z` and moving `vX`, while `main` keeps `image: Dockerfile`.
#[test]
fn the_release_publishes_both_platforms_and_pins_the_digest_it_pushed() {
    let registry = Registry::start(Mode::token(USER, PASSWORD));
    let dir = tempfile::Builder::new().prefix("octopush-release-").tempdir().expect("tempdir");
    let (checkout, origin) = source_checkout(dir.path());
    let source_head = git(&checkout, &["rev-parse", "HEAD"]);
    let repo_arg = checkout.to_string_lossy().into_owned();
    let out = dir.path().join("out");
    let released = release(&registry, &out, &["--repo", &repo_arg, "--git-commit", "--git-push", "origin"]);

    // One index of exactly the two platforms, under every image tag, with the digest the script printed.
    let (index, content_type) = registry.get_manifest_json(IMAGE_REPO, VERSION);
    assert_eq!(content_type, "application/vnd.oci.image.index.v1+json", "{index}");
    let mut platforms: Vec<String> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())
        })
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{index}");
    let (major, minor) = {
        let mut parts = VERSION.split('.');
        let major = parts.next().unwrap().to_string();
        (major.clone(), format!("{major}.{}", parts.next().unwrap()))
    };
    let mut expected_tags = vec![VERSION.to_string(), minor, major.clone()];
    expected_tags.sort();
    assert_eq!(registry.tags(IMAGE_REPO), expected_tags);
    for tag in &expected_tags {
        let (_, digest) = registry.get_manifest(IMAGE_REPO, tag);
        assert_eq!(digest, released.digest, "tag {tag}:\n{}", released.stderr);
    }

    // The release's action.yml is the repository's, with only runs.image pinned to that digest.
    let real = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml")).unwrap();
    let (mut ours, mut theirs) = (parse_action(&released.action_yml), parse_action(&real));
    assert_eq!(theirs["runs"]["image"], "Dockerfile", "main keeps building from the Dockerfile");
    assert_eq!(ours["runs"]["image"], format!("docker://{}", released.reference));
    assert_eq!(ours["runs"]["using"], "docker");
    ours["runs"]["image"] = serde_json::Value::Null;
    theirs["runs"]["image"] = serde_json::Value::Null;
    assert_eq!(ours, theirs, "the release's action.yml differs from the repository's beyond runs.image");

    // The amd64 image runs from the pushed reference in a real dockerd (pulled anonymously, as from a public
    // package), which has no loader or libc to offer: the binary is static.
    let dockerd = Dockerd::start();
    let said = dockerd.docker_ok(&["run", "--rm", "--network", "none", &released.reference, "--version"]);
    assert_eq!(said.trim(), format!("octopush {VERSION}"));
    let arch = dockerd.docker_ok(&["image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", &released.reference]);
    assert_eq!(arch.trim(), "linux/amd64");

    // Both binaries from the registry's layers: the right machine, no program interpreter; the arm64 one runs
    // under qemu-aarch64 (with no sysroot: a dynamic binary would find no loader).
    let amd64 = binary_of(&registry, &index, "linux/amd64");
    assert_eq!(elf_machine_and_interp(&amd64), (62, false), "amd64: x86-64, static");
    let arm64 = binary_of(&registry, &index, "linux/arm64");
    assert_eq!(elf_machine_and_interp(&arm64), (183, false), "arm64: AArch64, static");
    let arm64_path = dir.path().join("octopush-arm64");
    std::fs::write(&arm64_path, &arm64).unwrap();
    std::fs::set_permissions(&arm64_path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let said = run_ok(Command::new(common::tool("qemu-aarch64")).arg(&arm64_path).arg("--version"));
    assert_eq!(said.trim(), format!("octopush {VERSION}"));

    // The remote: vVERSION is an annotated tag of a commit on top of the tagged one that changes action.yml
    // only, to the file the script wrote; v0 moved there; main did not move.
    let tag = format!("v{VERSION}");
    let commit = git(&origin, &["rev-parse", &format!("{tag}^{{commit}}")]);
    assert_ne!(commit, source_head, "{tag} must name the release commit");
    assert_eq!(git(&origin, &["cat-file", "-t", &tag]), "tag", "{tag} is annotated");
    assert_eq!(git(&origin, &["rev-parse", &format!("{commit}^")]), source_head, "its parent is the tagged commit");
    assert_eq!(git(&origin, &["diff", "--name-only", &source_head, &commit]), "action.yml");
    assert_eq!(git(&origin, &["show", &format!("{commit}:action.yml")]), released.action_yml.trim_end());
    assert_eq!(git(&origin, &["rev-parse", &format!("v{major}^{{commit}}")]), commit, "v{major} moved");
    assert_eq!(git(&origin, &["rev-parse", "main"]), source_head, "main keeps `image: Dockerfile`");
    assert!(git(&origin, &["show", &tag]).contains(&released.reference), "the tag message names the image");
    assert!(released.stdout.ends_with(&format!("{}\n", released.reference)), "{}", released.stdout);
}

/// A version other than Cargo.toml's (the binary's `--version`), or a tag that names another commit than
/// HEAD, stops the release before anything is built or pushed.
#[test]
fn the_release_refuses_a_wrong_version_or_tag_before_building() {
    let registry = Registry::start(Mode::token(USER, PASSWORD));
    let dir = tempfile::Builder::new().prefix("octopush-release-").tempdir().expect("tempdir");
    let (checkout, _) = source_checkout(dir.path());
    let repo_arg = checkout.to_string_lossy().into_owned();
    let out = dir.path().join("out");

    let (status, _, stderr) = run_release(&registry, &out, &["--version", "99.0.0"]);
    assert!(!status.success());
    assert!(stderr.contains(&format!("releasing 99.0.0, but Cargo.toml says {VERSION}")), "{stderr}");

    // The tag the release starts from moved to a later commit: releasing HEAD~1 would replace it.
    std::fs::write(checkout.join("later.txt"), "later\n").unwrap();
    git(&checkout, &["add", "-A"]);
    git(&checkout, &["commit", "-q", "-m", "later"]);
    git(&checkout, &["tag", "-f", &format!("v{VERSION}")]);
    git(&checkout, &["checkout", "-q", "HEAD~1"]);
    let (status, _, stderr) = run_release(&registry, &out, &["--repo", &repo_arg, "--git-commit"]);
    assert!(!status.success());
    assert!(stderr.contains(&format!("tag v{VERSION} names")) && stderr.contains("not HEAD"), "{stderr}");

    assert!(!stderr.contains("cargo zigbuild"), "nothing was built:\n{stderr}");
    assert!(registry.tags(IMAGE_REPO).is_empty(), "nothing was pushed");
}

/// Issue 10's acceptance under act: a workflow whose `uses:` names an action directory holding the release's
/// action.yml, as the script wrote it (`runs.image: docker://HOST/octo-org/octopush@sha256:...`), publishes an
/// image with it. act has dockerd pull the action's image by digest from the local registry (anonymously, as
/// from a public package) and runs it: nothing is built, and dockerd ends up holding that one image.
#[test]
fn a_workflow_runs_the_released_action_by_digest_under_act() {
    let registry = Registry::start(Mode::token(USER, PASSWORD));
    let dir = tempfile::Builder::new().prefix("octopush-release-act-").tempdir().expect("tempdir");
    let released = release(&registry, &dir.path().join("out"), &[]);
    let dockerd = Dockerd::start();

    let repo = dir.path().join("repo");
    let write = |rel: &str, text: &str| {
        let path = repo.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    };
    write("Dockerfile", "FROM scratch\nCOPY hello.txt /hello.txt\n");
    write("hello.txt", "hello from the released action\n");
    write("action/action.yml", &released.action_yml);
    write(
        ".github/workflows/publish.yml",
        &format!(
            r#"name: publish
on: push
jobs:
  publish:
    runs-on: ubuntu-latest
    steps:
      - run: cp -a '{repo}/.' "$GITHUB_WORKSPACE/"
      - id: publish
        uses: ./action
        with:
          registry: {host}
          repository: octo-org/app
          tags: latest
          username: {USER}
          password: ${{{{ secrets.REGISTRY_PASSWORD }}}}
      - run: echo "octopush-digest=${{{{ steps.publish.outputs.digest }}}}"
"#,
            repo = repo.display(),
            host = registry.host(),
        ),
    );
    commit_push_event(dir.path(), "Octo-Org/App", "refs/heads/master");

    let result = act_push(dir.path(), &dockerd, ".github/workflows/publish.yml", PASSWORD);
    assert!(result.status.success(), "act failed ({}):\n{}", result.status, result.dump());

    // The step ran the released image: it published, and the digest it printed is the registry's.
    let (_, pushed) = registry.get_manifest("octo-org/app", "latest");
    assert_eq!(result.marked("| octopush-digest="), vec![pushed], "{}", result.dump());

    // Pulled by digest, never built: act said it pulled that reference and built nothing, the registry served
    // the index by digest to dockerd, and dockerd holds that image and no other.
    let all = result.all();
    assert!(
        all.lines().any(|l| l.contains("docker pull") && l.contains(&released.reference)),
        "act did not pull {}:\n{}",
        released.reference,
        result.dump()
    );
    assert!(!all.contains("docker build"), "act built an image:\n{}", result.dump());
    let by_digest = registry.requests("GET", &format!("/v2/{IMAGE_REPO}/manifests/{}", released.digest));
    assert!(
        by_digest.iter().any(|e| e.status == 200 && e.user_agent.starts_with("docker/")),
        "dockerd did not fetch the index by digest: {by_digest:?}"
    );
    let images = dockerd.docker_ok(&["image", "ls", "--digests", "--format", "{{.Repository}}@{{.Digest}}"]);
    assert_eq!(images.trim(), released.reference, "dockerd's images");
}

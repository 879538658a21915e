//! Issue "a real action": the binary as a plain command line, as a new user meets it outside a workflow. The
//! commit comes from the local checkout (so the same inputs give the same digest), `meta` needs no image name,
//! `--command` works, the password can come from standard input instead of `ps`, `--help` shows defaults and
//! examples, and the embedded example keeps its own labels without asking GitHub anything.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{Mode, Registry};

const USER: &str = "octocat";
const PASSWORD: &str = "cli-Pa55word-7c1e9a3f";

/// The binary in `dir` with nothing of a workflow in its environment.
fn octopush(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_octopush"));
    cmd.current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.join(".home"))
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run octopush")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git").arg("-C").arg(dir).args(args).status().expect("git").success();
    assert!(ok, "git {args:?}");
}

/// A git checkout with a Dockerfile, committed at a fixed time, on branch `main`.
fn checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("Dockerfile"), "FROM scratch\nCOPY app.txt /app.txt\n").unwrap();
    std::fs::write(d.join("app.txt"), "app\n").unwrap();
    git(d, &["init", "-q", "-b", "main"]);
    git(d, &["add", "."]);
    git(d, &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "one", "--date=@1700000000"]);
    git(d, &["remote", "add", "origin", "https://github.com/Octo-Org/App.git"]);
    dir
}

#[test]
fn meta_outside_a_workflow_reads_the_checkout_and_needs_no_image() {
    let dir = checkout();
    let out = run(&mut octopush(dir.path(), &["meta", "--tags", "type=ref,event=branch", "--tag-with-sha"]));
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    assert!(printed.contains("version: main"), "{printed}");
    let sha = String::from_utf8(
        Command::new("git").arg("-C").arg(dir.path()).args(["rev-parse", "HEAD"]).output().unwrap().stdout,
    )
    .unwrap();
    assert!(printed.contains(&format!("sha-{}", &sha[..7])), "the checkout's commit: {printed}");
    // `--command` before no subcommand does the same.
    let out = run(&mut octopush(dir.path(), &["--command", "meta"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&mut octopush(dir.path(), &["--command", "merge", "meta"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("disagree"), "{}", text(&out));
}

#[test]
fn the_same_commit_gives_the_same_digest_from_a_terminal() {
    let registry = Registry::start(Mode::htpasswd(USER, PASSWORD));
    let publish = |dir: &Path| {
        let mut cmd = octopush(
            dir,
            &[
                "publish",
                "--registry",
                registry.host(),
                "--repository",
                "o/cli",
                "--tag-with-sha",
                "--username",
                USER,
                "--password-stdin",
            ],
        );
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), format!("{PASSWORD}\n").as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert!(!text(&out).contains(PASSWORD), "the password from stdin is not printed");
        text(&out)
    };
    let first = checkout();
    let second = checkout();
    // Other mtimes on the second checkout: only the commit decides the digest.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    std::fs::File::options().append(true).open(second.path().join("app.txt")).unwrap().set_modified(later).unwrap();
    let a = publish(first.path());
    let b = publish(second.path());
    let digest = |out: &str| out.split('(').nth(1).and_then(|r| r.split(')').next()).map(str::to_string).unwrap();
    assert_eq!(digest(&a), digest(&b), "{a}\n{b}");
    assert!(a.contains("o/cli:sha-"), "{a}");
}

#[test]
fn help_shows_defaults_and_examples() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&mut octopush(dir.path(), &["publish", "--help"]));
    let help = text(&out);
    assert!(help.contains("[default: ghcr.io]") && help.contains("[default: auto]"), "{help}");
    assert!(help.contains("[in a workflow: ${{ github.token }}]"), "{help}");
    assert!(help.contains("Examples:") && help.contains("--password-stdin"), "{help}");
}

#[test]
fn the_example_keeps_its_labels_and_asks_github_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&mut octopush(dir.path(), &["publish", "--example", "--output", "oci:out", "--push", "false"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("GitHub's API"), "no notice about the API: {}", text(&out));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let blob = |hex: &str| std::fs::read(dir.path().join("out/blobs/sha256").join(hex)).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&blob(&manifest_digest)).unwrap();
    let config_hex = manifest["config"]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let config: serde_json::Value = serde_json::from_slice(&blob(&config_hex)).unwrap();
    let labels = &config["config"]["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.description"], "A static page, built by octopush without a Docker daemon",
        "{labels}"
    );
}

//! `command: install` of images, end to end: the binary run as the runner runs a step, against a real registry
//! (images pushed by skopeo, checked with skopeo and dockerd, never octopush's own client). A directory install
//! runs a binary of the image and keeps its links and whiteouts; an OCI layout keeps the registry's digest;
//! hostile layers are refused, each on its own, with exit 1 and nothing written outside (or at) the target; the
//! engine target loads an image that runs.

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use common::image::{Entry, busybox_entries, push_layers, registry_manifest};
use common::{Dockerd, Mode, Registry, RunResult, Workflow, push_busybox_multiplatform, run_ok, tool};

fn install(registry: &Registry, images: &str) -> (Workflow, RunResult) {
    let wf = Workflow::new().input("command", "install").input("images", images).input("registry", registry.host());
    let result = wf.run();
    (wf, result)
}

/// The one `::error::` line of a failed run.
fn error_line(r: &RunResult) -> String {
    let errors: Vec<String> = r.commands().into_iter().filter(|(n, _)| n == "error").map(|(_, l)| l).collect();
    assert_eq!(errors.len(), 1, "one ::error:: annotation:\n{}", r.dump());
    errors[0].clone()
}

/// Entries of the working directory's parent of `target` other than `keep`: what a failed install left there.
fn leftovers(parent: &Path) -> Vec<String> {
    std::fs::read_dir(parent).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

#[test]
fn a_dir_install_runs_its_binary_and_keeps_links_and_whiteouts() {
    let registry = Registry::start(Mode::Anonymous);
    let mut lower = busybox_entries();
    lower.push(Entry::Dir("opt", 0o755));
    lower.push(Entry::File("opt/old.txt", 0o644, b"removed by the upper layer\n".to_vec()));
    lower.push(Entry::File("opt/kept.txt", 0o640, b"kept\n".to_vec()));
    lower.push(Entry::Hardlink("opt/kept-link.txt".into(), "opt/kept.txt".into()));
    let upper = vec![
        Entry::File("opt/.wh.old.txt", 0o644, Vec::new()),
        Entry::File("opt/new.txt", 0o600, b"from the upper layer\n".to_vec()),
    ];
    let (digest, _) = push_layers(&registry, "tools/box:1", vec![lower, upper], false);
    let (wf, r) = install(&registry, &format!("{} dir:rootfs", registry.image("tools/box:1")));
    r.assert_success();
    let root = wf.workspace().join("rootfs");
    let out =
        run_ok(std::process::Command::new(root.join("bin/busybox")).args(["sh", "-c", "echo ran from the image"]));
    assert_eq!(out.trim(), "ran from the image");
    let sh = std::fs::symlink_metadata(root.join("bin/sh")).unwrap();
    assert!(sh.file_type().is_symlink(), "bin/sh stays a symlink");
    assert_eq!(std::fs::read_link(root.join("bin/sh")).unwrap(), Path::new("busybox"));
    let (a, b) = (
        std::fs::metadata(root.join("opt/kept.txt")).unwrap(),
        std::fs::metadata(root.join("opt/kept-link.txt")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "the hard link is kept as one file");
    assert_eq!(a.mode() & 0o7777, 0o640, "modes kept");
    assert!(!root.join("opt/old.txt").exists(), "the upper layer's whiteout removed the lower file");
    assert_eq!(std::fs::read_to_string(root.join("opt/new.txt")).unwrap(), "from the upper layer\n");
    assert_eq!(std::fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777, 0o1777);
    let installed: serde_json::Value = serde_json::from_str(r.output("installed")).unwrap();
    assert_eq!(installed[0]["digest"], digest.as_str());
    assert_eq!(installed[0]["target"], "dir");
    assert_eq!(installed[0]["path"], root.to_str().unwrap());
    assert!(r.summary.contains(&digest) && r.summary.contains("dir:"), "{}", r.summary);
    assert_eq!(leftovers(&wf.workspace()), vec!["rootfs"], "no work folder left beside the target");
}

#[test]
fn an_oci_install_of_a_docker_schema2_image_keeps_the_registry_digest() {
    let registry = Registry::start(Mode::htpasswd("reader", "Re4der-pass"));
    let (digest, config) = push_layers(&registry, "tools/schema2:1", vec![busybox_entries()], true);
    let raw: serde_json::Value = serde_json::from_slice(&registry_manifest(&registry, "tools/schema2:1")).unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.docker.distribution.manifest.v2+json", "skopeo pushed schema 2");
    let wf = Workflow::new()
        .input("command", "install")
        .input("images", &format!("{} oci:layout", registry.image("tools/schema2:1")))
        .input("registry_auth", &format!("{}=reader:Re4der-pass", registry.host()));
    let r = wf.run();
    r.assert_success();
    let layout = wf.workspace().join("layout");
    let inspect =
        run_ok(std::process::Command::new(tool("skopeo")).arg("inspect").arg(format!("oci:{}", layout.display())));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], digest.as_str(), "skopeo reads the registry's digest from the layout");
    let raw_layout = run_ok(
        std::process::Command::new(tool("skopeo")).args(["inspect", "--raw"]).arg(format!("oci:{}", layout.display())),
    );
    assert_eq!(common::sha256_digest(raw_layout.as_bytes()), digest, "the manifest's bytes are the registry's");
    let installed: serde_json::Value = serde_json::from_str(r.output("installed")).unwrap();
    assert_eq!(installed[0]["image_id"], config.as_str());
}

#[test]
fn the_runners_platform_is_picked_from_an_index_unless_platform_says_otherwise() {
    let registry = Registry::start(Mode::Anonymous);
    let base = push_busybox_multiplatform(&registry, "base/multi:1");
    let host = format!("linux/{}", common::image::host_arch());
    let other = if host == "linux/amd64" { "linux/arm64" } else { "linux/amd64" };
    let (wf, r) = install(&registry, &format!("{} dir:mine", base.reference));
    r.assert_success();
    let installed: serde_json::Value = serde_json::from_str(r.output("installed")).unwrap();
    assert_eq!(installed[0]["digest"], base.platform(&host).manifest_digest.as_str());
    assert!(run_ok(std::process::Command::new(wf.workspace().join("mine/bin/busybox")).arg("true")).is_empty());
    let r = Workflow::new()
        .input("command", "install")
        .input("images", &format!("{} oci:theirs", base.reference))
        .input("platform", other)
        .run();
    r.assert_success();
    let installed: serde_json::Value = serde_json::from_str(r.output("installed")).unwrap();
    assert_eq!(installed[0]["digest"], base.platform(other).manifest_digest.as_str());
    let r = Workflow::new()
        .input("command", "install")
        .input("images", &format!("{} oci:none", base.reference))
        .input("platform", "linux/s390x")
        .run();
    r.assert_failure();
    let e = error_line(&r);
    assert!(e.contains("no image for linux/s390x") && e.contains("linux/arm64") && e.contains("`platform`"), "{e}");
}

/// A hostile image's install fails with one error naming the image and the entry, and leaves nothing: no
/// target, no work folder, nothing outside.
fn assert_refused(layers: Vec<Vec<Entry>>, entry: &str, reason: &str) -> Workflow {
    let registry = Registry::start(Mode::Anonymous);
    push_layers(&registry, "evil/image:1", layers, false);
    let reference = registry.image("evil/image:1");
    let (wf, r) = install(&registry, &format!("{reference} dir:deep/er/rootfs"));
    r.assert_failure();
    assert_eq!(r.status.code(), Some(1));
    let e = error_line(&r);
    assert!(e.contains(&reference) && e.contains(&format!("entry `{entry}`")) && e.contains(reason), "{e}");
    let parent = wf.workspace().join("deep/er");
    assert!(leftovers(&parent).is_empty(), "nothing left beside the target: {:?}", leftovers(&parent));
    wf
}

#[test]
fn a_layer_entry_climbing_out_with_dot_dot_is_refused() {
    let wf = assert_refused(vec![vec![Entry::RawFile(b"../../x".to_vec())]], "../../x", "`..`");
    for dir in [wf.workspace(), wf.workspace().join("deep"), wf.workspace().join("deep/er")] {
        assert!(!dir.join("x").exists(), "{} was written", dir.join("x").display());
    }
}

#[test]
fn a_file_written_through_an_absolute_symlink_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    let link: &'static str = Box::leak(target.into_boxed_str());
    let layers = vec![
        vec![Entry::Symlink("escape".into(), link)],
        vec![Entry::File("escape/pwned", 0o644, b"written outside\n".to_vec())],
    ];
    assert_refused(layers, "escape/pwned", "points outside the image's root");
    assert!(!outside.path().join("pwned").exists(), "nothing was written through the symlink");
}

#[test]
fn a_hard_link_to_etc_passwd_is_refused() {
    let links_before = std::fs::metadata("/etc/passwd").unwrap().nlink();
    assert_refused(
        vec![vec![Entry::Hardlink("passwd".into(), "/etc/passwd".into())]],
        "passwd",
        "hard link to `/etc/passwd`, outside the image",
    );
    assert_eq!(std::fs::metadata("/etc/passwd").unwrap().nlink(), links_before);
}

#[test]
fn a_layer_whose_digest_does_not_match_is_refused() {
    let registry = Registry::start(Mode::Anonymous);
    push_layers(&registry, "evil/tampered:1", vec![busybox_entries()], false);
    let manifest: serde_json::Value = serde_json::from_slice(&registry_manifest(&registry, "evil/tampered:1")).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    // The registry serves what its storage holds: flip one byte of the layer there, size unchanged.
    let data = registry.dir().join(format!("data/docker/registry/v2/blobs/sha256/{}/{layer}/data", &layer[..2]));
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let reference = registry.image("evil/tampered:1");
    let (wf, r) = install(&registry, &format!("{reference} dir:rootfs"));
    r.assert_failure();
    let e = error_line(&r);
    assert!(e.contains(&reference) && e.contains(&format!("sha256:{layer}")) && e.contains("expected"), "{e}");
    assert!(leftovers(&wf.workspace()).is_empty(), "{:?}", leftovers(&wf.workspace()));
}

#[test]
fn a_refused_pull_names_the_package_access_fix() {
    let registry = Registry::start(Mode::htpasswd("owner", "0wner-pass"));
    push_layers(&registry, "private/app:1", vec![busybox_entries()], false);
    let (_, r) = install(&registry, &format!("{} dir:rootfs", registry.image("private/app:1")));
    r.assert_failure();
    let e = error_line(&r);
    assert!(e.contains("Manage Actions access") && e.contains("permissions: packages: read"), "{e}");
}

#[test]
fn the_docker_target_loads_an_image_that_runs_and_the_archive_loads_too() {
    let registry = Registry::start(Mode::Anonymous);
    let (_, config) = push_layers(&registry, "tools/run:1", vec![busybox_entries()], true);
    let dockerd = Dockerd::start();
    let reference = registry.image("tools/run:1");
    let wf = Workflow::new()
        .input("command", "install")
        .input("images", &format!("{reference} docker\n{reference} docker-archive:out/run.tar"))
        .env("DOCKER_HOST", &dockerd.host());
    let r = wf.run();
    r.assert_success();
    let id = dockerd.docker_ok(&["image", "inspect", "-f", "{{.Id}}", &reference]);
    assert_eq!(id.trim(), config, "the engine's image ID is the config's digest");
    let out = dockerd.docker_ok(&["run", "--rm", "--network", "none", &reference, "sh", "-c", "echo ran in dockerd"]);
    assert_eq!(out.trim(), "ran in dockerd");
    let installed: serde_json::Value = serde_json::from_str(r.output("installed")).unwrap();
    assert_eq!(installed[0]["target"], "docker");
    let archive = installed[1]["path"].as_str().unwrap().to_string();
    dockerd.docker_ok(&["rmi", &reference]);
    let loaded = dockerd.docker_ok(&["load", "-i", &archive]);
    assert!(loaded.contains(&reference), "{loaded}");
}

//! Issue "native builder", acceptance: what octopush builds natively (base layers left in the registry) is the
//! image Docker builds from the same Dockerfile and context: the same file tree above the base and the same
//! runtime config; `platforms` gives an index whose images sit on each platform's base layer with the right
//! `TARGETARCH` files and never download a base layer; and `SOURCE_DATE_EPOCH` makes the digest independent of
//! checkout mtimes. Everything is checked over HTTP with the harness's curl client and unpacked here, never with
//! octopush's own registry client.

mod common;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use common::{Dockerd, Mode, MultiBase, Registry, RunResult, Workflow, push_busybox_base, push_busybox_multiplatform};

// ---------------------------------------------------------------------------------------------------------------
// Unpacking layers into a file tree, as a container runtime does.

/// What a path is, with its content: file bytes, or a symlink's target.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
}

/// One path of an unpacked tree; the mtime is deliberately not kept (see `same_tree_and_config_as_dockerd`).
#[derive(Clone, PartialEq, Eq)]
struct Node {
    kind: Kind,
    /// Permission bits with setuid/setgid/sticky (`mode & 0o7777`); the type bits are in `kind`.
    mode: u32,
    uid: u64,
    gid: u64,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::File(data) if data.len() <= 200 => format!("file {:?}", String::from_utf8_lossy(data)),
            Kind::File(data) => format!("file ({} bytes)", data.len()),
            Kind::Dir => "dir".to_string(),
            Kind::Symlink(target) => format!("symlink -> {target}"),
        };
        write!(f, "{kind} {:o} {}:{}", self.mode, self.uid, self.gid)
    }
}

type Tree = BTreeMap<String, Node>;

/// `./a/b/` and `/a/b` both become `a/b`.
fn clean(path: &str) -> String {
    path.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/').to_string()
}

fn remove_subtree(tree: &mut Tree, path: &str, keep_root: bool) {
    let prefix = format!("{path}/");
    tree.retain(|p, _| !(p.starts_with(&prefix) || (!keep_root && p == path)));
}

/// Applies one layer (gzip or plain tar, by its media type) on top of `tree`: entries replace what was there
/// (a non-directory replacing a directory removes its contents), `.wh.NAME` deletes NAME and what is below it,
/// `.wh..wh..opq` empties its directory of what lower layers put there. Hard links become a copy of their
/// target, which is what the path holds once unpacked.
fn apply_layer(tree: &mut Tree, media_type: &str, blob: &[u8]) {
    let reader: Box<dyn std::io::Read + '_> = if media_type.ends_with("gzip") {
        Box::new(flate2::read::GzDecoder::new(blob))
    } else {
        assert!(media_type.ends_with(".tar") || media_type.ends_with("tar"), "unexpected layer type {media_type}");
        Box::new(blob)
    };
    let mut archive = tar::Archive::new(reader);
    // Paths this layer itself wrote: an opaque marker hides only what lower layers put in its directory.
    let mut this_layer: std::collections::HashSet<String> = std::collections::HashSet::new();
    for entry in archive.entries().expect("layer is a tar") {
        let mut entry = entry.expect("tar entry");
        let path = clean(&entry.path().expect("entry path").to_string_lossy());
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d.to_string(), n.to_string()),
            None => (String::new(), path.clone()),
        };
        if name == ".wh..wh..opq" {
            let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
            tree.retain(|p, _| !p.starts_with(&prefix) || *p == dir || this_layer.contains(p));
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let victim = if dir.is_empty() { hidden.to_string() } else { format!("{dir}/{hidden}") };
            remove_subtree(tree, &victim, false);
            continue;
        }
        let header = entry.header();
        let (mode, uid, gid) =
            (header.mode().expect("mode") & 0o7777, header.uid().expect("uid"), header.gid().expect("gid"));
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => {
                Kind::Symlink(entry.link_name().expect("link name").expect("symlink target").to_string_lossy().into())
            }
            tar::EntryType::Link => {
                let target = clean(&entry.link_name().expect("link name").expect("link target").to_string_lossy());
                let node = tree.get(&target).unwrap_or_else(|| panic!("hard link {path} -> missing {target}"));
                node.kind.clone()
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).expect("read tar entry");
                Kind::File(data)
            }
            other => panic!("unexpected tar entry type {other:?} for {path}"),
        };
        if path.is_empty() {
            continue; // `./`, the root itself: its metadata is the runtime's, not the image's.
        }
        if kind != Kind::Dir {
            remove_subtree(tree, &path, true);
        } else if tree.get(&path).is_some_and(|n| n.kind != Kind::Dir) {
            tree.remove(&path);
        }
        // A symlink's permission bits mean nothing on Linux (lchmod does not exist; runtimes create them 0777).
        let mode = if matches!(kind, Kind::Symlink(_)) { 0o777 } else { mode };
        this_layer.insert(path.clone());
        tree.insert(path, Node { kind, mode, uid, gid });
    }
}

/// The image's layers as (media type, digest), in order.
fn layers_of(manifest: &serde_json::Value) -> Vec<(String, String)> {
    manifest["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("no layers in {manifest}"))
        .iter()
        .map(|l| (l["mediaType"].as_str().unwrap().to_string(), l["digest"].as_str().unwrap().to_string()))
        .collect()
}

/// The tree the layers after the first (the shared base) make, unpacked in order on an empty directory.
/// A path whose parent directory no layer (base included) has gets the parent a runtime's `mkdir -p` makes:
/// a directory, 0755, root-owned. So an image that omits such a parent entry and one that writes exactly that
/// entry unpack to the same thing, and compare equal. (octopush omits them on purpose over a registry base: for
/// `WORKDIR /srv/app` it writes `srv/app` but not `srv`, which Docker writes as 0755 root.)
fn upper_tree(registry: &Registry, repo: &str, manifest: &serde_json::Value, base: &Tree) -> Tree {
    let mut tree = Tree::new();
    for (media_type, digest) in &layers_of(manifest)[1..] {
        apply_layer(&mut tree, media_type, &registry.get_blob(repo, digest));
    }
    let paths: Vec<String> = tree.keys().cloned().collect();
    for path in paths {
        let mut parent = path.as_str();
        while let Some((up, _)) = parent.rsplit_once('/') {
            parent = up;
            if !tree.contains_key(parent) && !base.contains_key(parent) {
                tree.insert(parent.to_string(), Node { kind: Kind::Dir, mode: 0o755, uid: 0, gid: 0 });
            }
        }
    }
    tree
}

/// A readable list of every path where `a` and `b` differ; empty when they are the same.
fn tree_diff(a_name: &str, a: &Tree, b_name: &str, b: &Tree) -> String {
    let mut out = String::new();
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    for p in paths {
        match (a.get(p), b.get(p)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => out.push_str(&format!("  /{p}\n    {a_name}: {x:?}\n    {b_name}: {y:?}\n")),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// 1. The same tree and config as Docker's own build.

/// `chmod MODE` on a workspace file.
fn chmod(wf: &Workflow, rel: &str, mode: u32) {
    std::fs::set_permissions(wf.workspace().join(rel), std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A context with a small tree (nested directory, executable, symlink), an ignored log next to an excepted one,
/// and a multi-stage Dockerfile that uses every instruction the native builder supports except RUN.
/// `extra` is inserted after the last COPY of the final stage.
fn comparison_project(registry: &Registry, extra: &str) -> Workflow {
    let dockerfile = format!(
        "# ARGs before the first FROM: one names the base, one is redeclared in the final stage for an ENV.\n\
         ARG BASE={host}/base/busybox:1\n\
         ARG APP_VERSION=1.2.3\n\
         \n\
         FROM scratch AS files\n\
         COPY tree/ /tree/\n\
         COPY *.log /logs/\n\
         \n\
         FROM ${{BASE}}\n\
         ARG APP_VERSION\n\
         ENV APP_VERSION=${{APP_VERSION}} APP_HOME=/srv/app\n\
         WORKDIR /srv/app\n\
         COPY --from=files /tree /srv/app/tree\n\
         COPY --from=files /logs/ /srv/app/logs/\n\
         COPY --chown=1000:1000 --chmod=640 conf/app.conf /srv/app/app.conf\n\
         {extra}\
         LABEL com.example.team=octo com.example.version=${{APP_VERSION}}\n\
         USER 1000\n\
         EXPOSE 8080/tcp\n\
         VOLUME /data\n\
         HEALTHCHECK --interval=30s CMD [\"/bin/true\"]\n\
         STOPSIGNAL SIGTERM\n\
         ENTRYPOINT [\"/bin/sh\", \"-c\"]\n\
         CMD [\"/srv/app/tree/bin/run.sh\"]\n",
        host = registry.host(),
        extra = if extra.is_empty() { String::new() } else { format!("{extra}\n") }
    );
    let wf = Workflow::new()
        .file("Dockerfile", dockerfile)
        // Docker's .dockerignore patterns match from the context root: `*.log` drops `debug.log` but not
        // `tree/sub/nested.log`; `!keep.log` brings `keep.log` back.
        .file(".dockerignore", "*.log\n!keep.log\n")
        .file("debug.log", "ignored\n")
        .file("keep.log", "kept by the exception\n")
        .file("tree/a.txt", "alpha\n")
        .file("tree/sub/b.txt", "beta\n")
        .file("tree/sub/deeper/c.txt", "gamma\n")
        .file("tree/sub/nested.log", "not matched by a root-level *.log\n")
        .file("tree/bin/run.sh", "#!/bin/sh\necho run\n")
        .file("tree/private.txt", "owner only\n")
        .file("conf/app.conf", "listen=8080\n");
    chmod(&wf, "tree/bin/run.sh", 0o755);
    chmod(&wf, "tree/private.txt", 0o600);
    std::os::unix::fs::symlink("a.txt", wf.workspace().join("tree/link")).expect("symlink");
    std::os::unix::fs::symlink("../a.txt", wf.workspace().join("tree/sub/up")).expect("symlink");
    wf
}

/// The image config's `config` object of the image `repo:reference`, with its manifest.
fn manifest_and_config(registry: &Registry, repo: &str, reference: &str) -> (serde_json::Value, serde_json::Value) {
    let (manifest, content_type) = registry.get_manifest_json(repo, reference);
    assert!(manifest["layers"].is_array(), "{repo}:{reference} is not an image manifest ({content_type}): {manifest}");
    let config_digest = manifest["config"]["digest"].as_str().expect("config digest");
    let config: serde_json::Value =
        serde_json::from_slice(&registry.get_blob(repo, config_digest)).expect("config is JSON");
    (manifest, config)
}

/// The runtime config fields the Dockerfile sets, as they appear in `config.config`; Labels without the
/// `org.opencontainers.image.*` ones (octopush adds source, revision, created...; the base has a title).
fn runtime_fields(config: &serde_json::Value) -> BTreeMap<&'static str, serde_json::Value> {
    let c = &config["config"];
    let mut out = BTreeMap::new();
    for key in
        ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Healthcheck", "StopSignal"]
    {
        out.insert(key, c[key].clone());
    }
    let labels: serde_json::Map<String, serde_json::Value> = c["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.starts_with("org.opencontainers.image."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    out.insert("Labels", serde_json::Value::Object(labels));
    out
}

#[test]
fn same_tree_and_config_as_dockerd() {
    compare_with_docker("");
}

/// `COPY --chown` to a file in a directory that does not exist yet, below a directory this stage made
/// (`WORKDIR /srv/app`): Docker creates `/srv/app/conf` owned by the `--chown` user (0755, 1000:1000), and since
/// the stage itself made `/srv/app`, the builder knows `conf` is new there even over a registry base.
#[test]
fn chown_copy_creates_new_parent_owned_like_dockerd() {
    compare_with_docker("COPY --chown=1000:1000 --chmod=640 conf/app.conf /srv/app/conf/app.conf");
}

/// Builds `comparison_project(extra)` with octopush and with Docker and compares the two images.
fn compare_with_docker(extra: &str) {
    let registry = Registry::start(Mode::Anonymous);
    let base = push_busybox_base(&registry, "base/busybox:1");
    let wf = comparison_project(&registry, extra)
        .input("registry", registry.host())
        .input("repository", "cmp/octopush")
        .input("tags", "octo");

    // octopush, as the action.
    let result = wf.run();
    result.assert_success();

    // Docker, from the same workspace. `--chmod` needs BuildKit (the classic builder refuses it), which dockerd
    // 20.10 runs in-process; it pulls the base from the registry (127.0.0.0/8 is insecure by default) and the
    // push leaves the base layer where it is (same digest, already in the registry).
    let dockerd = Dockerd::start();
    let docker_ref = registry.image("cmp/docker:1");
    let context = wf.workspace().to_string_lossy().into_owned();
    common::run_ok(dockerd.command().env("DOCKER_BUILDKIT", "1").args([
        "build",
        "--progress=plain",
        "-t",
        &docker_ref,
        &context,
    ]));
    dockerd.docker_ok(&["push", &docker_ref]);

    let (octo_manifest, octo_config) = manifest_and_config(&registry, "cmp/octopush", "octo");
    let (docker_manifest, docker_config) = manifest_and_config(&registry, "cmp/docker", "1");

    // Both images start with the base's one layer, untouched.
    for (who, m) in [("octopush", &octo_manifest), ("docker", &docker_manifest)] {
        assert_eq!(layers_of(m)[0].1, base.layer_digest, "{who}'s first layer is not the base's: {m}");
    }

    // The base's tree, to judge the directory entries Docker writes above it.
    let mut base_tree = Tree::new();
    apply_layer(
        &mut base_tree,
        &layers_of(&octo_manifest)[0].0,
        &registry.get_blob("base/busybox", &base.layer_digest),
    );

    let mut octo_tree = upper_tree(&registry, "cmp/octopush", &octo_manifest, &base_tree);
    let mut docker_tree = upper_tree(&registry, "cmp/docker", &docker_manifest, &base_tree);
    // What is ignored, and why:
    // - mtimes: not kept in `Node` at all (octopush uses SOURCE_DATE_EPOCH or the commit time, Docker the
    //   context's mtimes and the build time for directories it creates).
    // - directory entries for paths that are directories in the base with exactly the base's mode and owner:
    //   Docker's layer diff writes a parent such as `etc/` whenever something below it
    //   changes, only to carry its new mtime; unpacked, it leaves the base's directory as it was. octopush does
    //   not know the base's tree and writes no entry for it. Any other difference in such an entry (mode, owner,
    //   type) is kept and compared.
    for tree in [&mut octo_tree, &mut docker_tree] {
        tree.retain(|path, node| !(node.kind == Kind::Dir && base_tree.get(path) == Some(node)));
    }

    // The context made it as expected (a sanity check of the comparison itself, on Docker's side).
    for must in ["srv/app/tree/a.txt", "srv/app/tree/link", "srv/app/tree/sub/nested.log", "srv/app/logs/keep.log"] {
        assert!(docker_tree.contains_key(must), "docker's image lacks /{must}: {docker_tree:#?}");
    }
    assert!(!docker_tree.contains_key("srv/app/logs/debug.log"), "{docker_tree:#?}");

    let diff = tree_diff("octopush", &octo_tree, "docker", &docker_tree);
    assert!(diff.is_empty(), "the file trees above the base differ:\n{diff}\n{}", result.dump());

    // The runtime config.
    let (octo_fields, docker_fields) = (runtime_fields(&octo_config), runtime_fields(&docker_config));
    for (key, docker_value) in &docker_fields {
        assert_eq!(octo_fields[key], *docker_value, "config field {key}: octopush vs docker");
    }
    // And what the Dockerfile said, so that two equally wrong builders cannot pass.
    assert_eq!(docker_fields["User"], "1000");
    assert_eq!(docker_fields["StopSignal"], "SIGTERM");
    assert_eq!(docker_fields["WorkingDir"], "/srv/app");
    assert_eq!(
        docker_fields["Healthcheck"],
        serde_json::json!({"Test": ["CMD", "/bin/true"], "Interval": 30_000_000_000u64})
    );
    assert_eq!(docker_fields["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(docker_fields["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(
        docker_fields["Labels"],
        serde_json::json!({"com.example.team": "octo", "com.example.version": "1.2.3"})
    );
    assert!(
        docker_fields["Env"].as_array().unwrap().contains(&serde_json::json!("APP_VERSION=1.2.3")),
        "{:?}",
        docker_fields["Env"]
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 2 and 4. Two platforms: an index, TARGETARCH, and no base layer downloaded.

const ARCHES: [&str; 2] = ["amd64", "arm64"];

fn app_contents(arch: &str) -> String {
    format!("the {arch} build of the app\n")
}

/// Publishes `ARG TARGETARCH` + `COPY dist/app-${TARGETARCH} /app` for linux/amd64 and linux/arm64 on the
/// two-platform busybox base, as `multi/app:1`.
fn build_two_platforms() -> (Registry, MultiBase, RunResult) {
    let registry = Registry::start(Mode::Anonymous);
    let base = push_busybox_multiplatform(&registry, "base/multi:1");
    let mut wf = Workflow::new()
        .input("registry", registry.host())
        .input("repository", "multi/app")
        .input("tags", "1")
        .input("platforms", "linux/amd64,linux/arm64")
        .file("Dockerfile", format!("FROM {}\nARG TARGETARCH\nCOPY dist/app-${{TARGETARCH}} /app\n", base.reference));
    for arch in ARCHES {
        wf = wf.file(&format!("dist/app-{arch}"), app_contents(arch));
    }
    let result = wf.run();
    result.assert_success();
    (registry, base, result)
}

#[test]
fn two_platforms_give_an_index_with_targetarch() {
    let (registry, base, result) = build_two_platforms();
    let (index, content_type) = registry.get_manifest_json("multi/app", "1");
    assert_eq!(content_type, "application/vnd.oci.image.index.v1+json", "{index}");
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{index}");
    let (_, index_digest) = registry.get_manifest("multi/app", "1");
    assert_eq!(result.output("digest"), index_digest, "the digest output is the index's");

    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 2, "{index}");
    let platforms: Vec<String> = manifests
        .iter()
        .map(|m| {
            format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{index}");

    for (entry, arch) in manifests.iter().zip(ARCHES) {
        let digest = entry["digest"].as_str().unwrap();
        let (manifest, config) = manifest_and_config(&registry, "multi/app", digest);
        assert_eq!(config["architecture"], arch, "config of the {arch} image");
        assert_eq!(config["os"], "linux");
        let layers = layers_of(&manifest);
        let base_image = base.platform(&format!("linux/{arch}"));
        assert_eq!(layers[0].1, base_image.layer_digest, "the {arch} image's first layer is its base's: {manifest}");
        let mut tree = Tree::new();
        for (media_type, layer) in &layers[1..] {
            apply_layer(&mut tree, media_type, &registry.get_blob("multi/app", layer));
        }
        let app = tree.get("app").unwrap_or_else(|| panic!("no /app in the {arch} image: {tree:#?}"));
        assert_eq!(app.kind, Kind::File(app_contents(arch).into_bytes()), "/app of the {arch} image");
    }
}

#[test]
fn no_base_layer_download_for_two_platforms() {
    let (registry, base, _) = build_two_platforms();
    for image in &base.images {
        assert_eq!(
            registry.blob_gets(&image.layer_digest),
            0,
            "the {} base layer was downloaded:\n{}",
            image.platform,
            registry.access_log()
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Reproducible: the same sources at another time give the same digest.

/// Sets the mtime of everything in the workspace (directories too) to `date` with `touch -h -d`.
fn touch_all(wf: &Workflow, date: &str) {
    common::run_ok(Command::new("find").arg(wf.workspace()).args(["-exec", "touch", "-h", "-d", date, "{}", "+"]));
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::symlink_metadata(path).expect("stat").modified().expect("mtime")
}

#[test]
fn same_digest_from_two_checkouts() {
    let registry = Registry::start(Mode::Anonymous);
    push_busybox_base(&registry, "base/busybox:1");
    let checkout = |date: &str, epoch: &str| {
        let wf = comparison_project(&registry, "")
            .input("registry", registry.host())
            .input("repository", "repro/app")
            .input("tags", "1")
            .env("SOURCE_DATE_EPOCH", epoch);
        touch_all(&wf, date);
        wf
    };
    let first = checkout("2001-02-03 04:05:06", "1700000000");
    let second = checkout("2024-06-07 08:09:10", "1700000000");
    assert_ne!(
        mtime(&first.workspace().join("tree/a.txt")),
        mtime(&second.workspace().join("tree/a.txt")),
        "the two checkouts must differ in mtimes"
    );
    let (a, b) = (first.run(), second.run());
    a.assert_success();
    b.assert_success();
    assert_eq!(a.output("digest"), b.output("digest"), "same sources and SOURCE_DATE_EPOCH, different mtimes");

    let third = checkout("2001-02-03 04:05:06", "1800000000").run();
    third.assert_success();
    assert_ne!(a.output("digest"), third.output("digest"), "another SOURCE_DATE_EPOCH must give another digest");
}

//! The native builder's Dockerfile features that need more than a base's manifest: `--chown=NAME` read from the
//! base's own `/etc/passwd` and `/etc/group` (downloading layers top down only until found), `COPY --from=<image>`,
//! `ADD <url>` with `--checksum`, `COPY --parents`, symbolic `--chmod`, the runner's platform by default, and
//! files over 8 GiB. Each runs the binary as the runner does against a real registry and reads the pushed layers
//! back over HTTP with the harness's client.

mod common;

use std::io::Read as _;

use serde_json::json;

use common::image::{Entry as BaseEntry, gzip_layer, write_blob};
use common::{Mode, Registry, Workflow};

/// Entries of a test base layer: a directory (0755), a file (0644) or a symlink, as `common::image` writes them.
fn dir(p: &'static str) -> BaseEntry {
    BaseEntry::Dir(p, 0o755)
}

fn file(p: &'static str, data: &str) -> BaseEntry {
    BaseEntry::File(p, 0o644, data.as_bytes().to_vec())
}

fn link(p: &str, target: &'static str) -> BaseEntry {
    BaseEntry::Symlink(p.to_string(), target)
}

/// Pushes an image of `layers` (bottom first) for this machine's architecture as `repo_tag` with skopeo;
/// returns the layer digests.
fn push_layered_base(registry: &Registry, repo_tag: &str, layers: Vec<Vec<BaseEntry>>) -> Vec<String> {
    let layout = tempfile::tempdir().expect("tempdir");
    let (_, tag) = repo_tag.rsplit_once(':').expect("REPO:TAG");
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut digests = Vec::new();
    for l in layers {
        let (gz, diff_id) = gzip_layer(l);
        let d = write_blob(layout.path(), &gz);
        descs.push(json!({"mediaType": common::image::OCI_LAYER_GZIP, "digest": d, "size": gz.len()}));
        diff_ids.push(diff_id);
        digests.push(d);
    }
    let config = serde_json::to_vec(&json!({
        "architecture": common::image::host_arch(), "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config");
    let config_digest = write_blob(layout.path(), &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": common::image::OCI_MANIFEST,
        "config": {"mediaType": common::image::OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": descs,
    }))
    .expect("manifest");
    let manifest_digest = write_blob(layout.path(), &manifest);
    std::fs::write(layout.path().join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": common::image::OCI_MANIFEST, "digest": manifest_digest, "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(layout.path().join("index.json"), serde_json::to_vec(&index).expect("index")).expect("index");
    registry.skopeo_copy_to(&format!("oci:{}:{tag}", layout.path().display()), repo_tag, false);
    digests
}

/// One entry of a pushed layer as read back.
#[derive(Debug, Clone)]
struct Entry {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    data: Vec<u8>,
}

/// The layers of `repo:tag` in the registry, each as its entries (data kept for files up to 1 MiB).
fn pushed_layers(registry: &Registry, repo: &str, tag: &str) -> Vec<Vec<Entry>> {
    let (manifest, _) = registry.get_manifest_json(repo, tag);
    let layers = manifest["layers"].as_array().unwrap_or_else(|| panic!("no layers: {manifest}"));
    layers
        .iter()
        .map(|l| {
            let blob = registry.get_blob(repo, l["digest"].as_str().expect("digest"));
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob.as_slice()));
            archive
                .entries()
                .expect("tar")
                .map(|e| {
                    let mut e = e.expect("entry");
                    let h = e.header().clone();
                    let mut data = Vec::new();
                    if e.size() <= 1 << 20 {
                        e.read_to_end(&mut data).expect("data");
                    }
                    Entry {
                        path: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                        kind: h.entry_type(),
                        mode: h.mode().expect("mode"),
                        uid: h.uid().expect("uid"),
                        gid: h.gid().expect("gid"),
                        mtime: h.mtime().expect("mtime"),
                        data,
                    }
                })
                .collect()
        })
        .collect()
}

fn find<'a>(layer: &'a [Entry], path: &str) -> &'a Entry {
    layer
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no {path} in {:?}", layer.iter().map(|e| e.path.as_str()).collect::<Vec<_>>()))
}

fn publish(registry: &Registry, repo: &str, dockerfile: String) -> Workflow {
    Workflow::new()
        .input("registry", registry.host())
        .input("repository", repo)
        .input("tags", "1")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .file("Dockerfile", dockerfile)
}

// ---------------------------------------------------------------------------------------------------------------
// 1. --chown=NAME over a registry base.

const OLD_PASSWD: &str = "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
const NEW_PASSWD: &str = "root:x:0:0::/root:/bin/sh\napp:x:4242:4343::/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\nstaff:x:50:\n";

/// A three-layer base: `/etc/group` and an old `/etc/passwd` at the bottom, a newer `/etc/passwd` in the middle
/// (a symlink to `passwd.real`, as some distributions have), something unrelated on top.
fn push_user_base(registry: &Registry) -> Vec<String> {
    push_layered_base(
        registry,
        "base/users:1",
        vec![
            vec![dir("etc"), file("etc/passwd", OLD_PASSWD), file("etc/group", GROUP), dir("bin")],
            vec![dir("etc"), file("etc/passwd.real", NEW_PASSWD), link("etc/passwd", "passwd.real")],
            vec![dir("usr"), file("usr/README", "unrelated\n")],
        ],
    )
}

#[test]
fn chown_names_from_the_base_layers() {
    let registry = Registry::start(Mode::Anonymous);
    let layers = push_user_base(&registry);
    let df = format!(
        "FROM {}/base/users:1\nCOPY --chown=app a.txt /srv/a\nCOPY --chown=app:staff a.txt /srv/b\nUSER app\nWORKDIR /home/app/data\n",
        registry.host()
    );
    let result = publish(&registry, "feat/chown", df).file("a.txt", "a\n").run();
    result.assert_success();
    let pushed = pushed_layers(&registry, "feat/chown", "1");
    assert_eq!(pushed.len(), 6, "three base layers and three of ours");
    let a = find(&pushed[3], "srv/a");
    assert_eq!(
        (a.uid, a.gid),
        (4242, 4343),
        "the middle layer's passwd (through its symlink); without a group, the user's primary group (BuildKit's readUser)"
    );
    let b = find(&pushed[4], "srv/b");
    assert_eq!((b.uid, b.gid), (4242, 50), "the group from the bottom layer");
    let wd = find(&pushed[5], "home/app/data/");
    assert_eq!((wd.uid, wd.gid), (4242, 4343), "USER app + WORKDIR");
    for (i, d) in layers.iter().enumerate() {
        assert_eq!(registry.blob_gets(d), 1, "base layer {i} downloaded once:\n{}", registry.access_log());
    }
}

#[test]
fn chown_user_only_downloads_the_layers_above_passwd() {
    let registry = Registry::start(Mode::Anonymous);
    let layers = push_user_base(&registry);
    let df = format!("FROM {}/base/users:1\nCOPY --chown=app a.txt /a\nCOPY --chown=app a.txt /b\n", registry.host());
    publish(&registry, "feat/chown-top", df).file("a.txt", "a\n").run().assert_success();
    let pushed = pushed_layers(&registry, "feat/chown-top", "1");
    assert_eq!((find(&pushed[3], "a").uid, find(&pushed[4], "b").uid), (4242, 4242));
    assert_eq!(registry.blob_gets(&layers[2]), 1, "{}", registry.access_log());
    assert_eq!(registry.blob_gets(&layers[1]), 1, "{}", registry.access_log());
    assert_eq!(registry.blob_gets(&layers[0]), 0, "the bottom layer is not needed: {}", registry.access_log());
}

// ---------------------------------------------------------------------------------------------------------------
// 2. COPY --from=<image>.

#[test]
fn copy_from_an_image_reference() {
    let registry = Registry::start(Mode::Anonymous);
    push_layered_base(
        &registry,
        "tools/image:2",
        vec![
            vec![dir("etc"), file("etc/a.conf", "a\n"), file("etc/b.conf", "b\n"), dir("opt")],
            vec![dir("opt"), dir("opt/tool"), file("opt/tool/run", "v1\n"), file("opt/tool/old", "old\n")],
            vec![
                file("etc/.wh.a.conf", ""),
                dir("opt/tool"),
                file("opt/tool/.wh..wh..opq", ""),
                file("opt/tool/run", "v2\n"),
                link("opt/tool/latest", "run"),
            ],
        ],
    );
    let host = registry.host();
    let df = format!(
        "FROM scratch\nCOPY --from={host}/tools/image:2 /etc/ /conf/\nCOPY --from={host}/tools/image:2 /opt/tool /tool\n"
    );
    publish(&registry, "feat/from-image", df).run().assert_success();
    let pushed = pushed_layers(&registry, "feat/from-image", "1");
    let names = |l: &[Entry]| l.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
    assert_eq!(names(&pushed[0]), ["conf/", "conf/b.conf"], "a.conf is deleted by the top layer's whiteout");
    assert_eq!(names(&pushed[1]), ["tool/", "tool/latest", "tool/run"], "the opaque directory hides `old`");
    assert_eq!(find(&pushed[1], "tool/run").data, b"v2\n");
    assert_eq!(find(&pushed[1], "tool/latest").kind, tar::EntryType::Symlink);

    let df = format!("FROM scratch\nCOPY --from={host}/tools/missing:1 /etc/ /conf/\n");
    let result = publish(&registry, "feat/from-missing", df).run();
    result.assert_failure();
    let text = result.dump();
    assert!(
        text.contains(&format!(
            "Dockerfile:2: COPY --from={host}/tools/missing:1: no stage has that name, and the image cannot be used"
        )),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 3. ADD <url>.

/// `python3 -m http.server` on a free port of 127.0.0.1 serving `dir`; killed on drop.
struct HttpServer {
    child: std::process::Child,
    port: u16,
}

impl HttpServer {
    fn start(dir: &std::path::Path) -> HttpServer {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(common::tool("python3"))
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
        let port = line.split_whitespace().nth(5).and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{line}"));
        HttpServer { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn add_url_with_checksum() {
    let registry = Registry::start(Mode::Anonymous);
    let served = tempfile::tempdir().expect("tempdir");
    std::fs::write(served.path().join("tool.tar.gz"), gzip_layer(vec![file("inside", "x\n")]).0).expect("write");
    let server = HttpServer::start(served.path());
    let url = format!("http://127.0.0.1:{}/tool.tar.gz", server.port);
    let sum = common::sha256_digest(&std::fs::read(served.path().join("tool.tar.gz")).expect("read"));
    let df = format!("FROM scratch\nADD --checksum={sum} {url} /opt/\n");
    publish(&registry, "feat/add-url", df).run().assert_success();
    let pushed = pushed_layers(&registry, "feat/add-url", "1");
    let tool = find(&pushed[0], "opt/tool.tar.gz");
    assert_eq!((tool.kind, tool.mode, tool.uid, tool.mtime), (tar::EntryType::Regular, 0o600, 0, 1_700_000_000));
    assert_eq!(tool.data, std::fs::read(served.path().join("tool.tar.gz")).expect("read"), "kept as fetched");

    let wrong = common::sha256_digest(b"something else");
    let result =
        publish(&registry, "feat/add-url-bad", format!("FROM scratch\nADD --checksum={wrong} {url} /opt/\n")).run();
    result.assert_failure();
    let text = result.dump();
    assert!(text.contains("Dockerfile:2:") && text.contains(&wrong) && text.contains(&sum), "{text}");
}

// ---------------------------------------------------------------------------------------------------------------
// 6. A file over 8 GiB: a PAX `size` record, streamed (a sparse file: no disk, zeros compress fast).

#[test]
fn a_file_over_8_gib_gets_a_pax_size() {
    const SIZE: u64 = (8 << 30) + 1;
    let out = tempfile::tempdir().expect("tempdir");
    let layout = out.path().join("layout");
    let wf = Workflow::new()
        .input("repository", "feat/big")
        .input("tags", "1")
        .input("push", "false")
        .input("output", &format!("oci:{}", layout.display()))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .file("Dockerfile", "FROM scratch\nCOPY big.bin /data/big.bin\n");
    let big = std::fs::File::create(wf.workspace().join("big.bin")).expect("create");
    big.set_len(SIZE).expect("a sparse 8 GiB + 1 byte file");
    drop(big);
    // The binary runs under a Python parent that reports its peak resident memory (ru_maxrss, KiB).
    let rss_file = out.path().join("maxrss");
    let wrapper = out.path().join("maxrss.py");
    std::fs::write(
        &wrapper,
        "import resource, subprocess, sys\n\
         rc = subprocess.call(sys.argv[2:])\n\
         open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
         sys.exit(rc)\n",
    )
    .expect("wrapper");
    let args = [wrapper, rss_file.clone(), std::path::PathBuf::from(env!("CARGO_BIN_EXE_octopush"))]
        .map(|p| p.to_string_lossy().into_owned());
    wf.run_with(&common::tool("python3"), &args).assert_success();
    let peak_kib: u64 = std::fs::read_to_string(&rss_file).expect("maxrss").trim().parse().expect("a number");
    assert!(peak_kib < 256 << 10, "octopush peaked at {peak_kib} KiB for an 8 GiB file: it must stream");

    let read_json = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).expect("json")
    };
    let blob = |d: &str| layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    let index = read_json(layout.join("index.json"));
    let manifest = read_json(blob(index["manifests"][0]["digest"].as_str().expect("manifest digest")));
    let layers = manifest["layers"].as_array().expect("layers");
    let data_layer = blob(layers[0]["digest"].as_str().expect("layer digest"));

    // The head of the tar: a PAX header whose `size` record carries the length USTAR's 11 octal digits cannot.
    let mut head = vec![0u8; 4096];
    let gz = std::fs::File::open(&data_layer).expect("layer");
    flate2::read::GzDecoder::new(gz).read_exact(&mut head).expect("gunzip the head");
    let pax = head.chunks(512).position(|h| h[156] == b'x').expect("a PAX header before the file");
    let record = String::from_utf8_lossy(&head[(pax + 1) * 512..(pax + 2) * 512]).into_owned();
    assert!(record.contains(&format!(" size={SIZE}\n")), "PAX records: {record:?}");
    let file_header = &head[(pax + 2) * 512..(pax + 3) * 512];
    assert!(file_header.starts_with(b"data/big.bin\0"), "{:?}", String::from_utf8_lossy(&file_header[..100]));

    // The whole layer through GNU tar: the file has its length and the archive ends where it should.
    let listing = common::run_ok(std::process::Command::new("tar").arg("-tvzf").arg(&data_layer));
    let line = listing.lines().find(|l| l.ends_with("data/big.bin")).unwrap_or_else(|| panic!("{listing}"));
    assert!(line.split_whitespace().any(|w| w == SIZE.to_string()), "{line}");
}

/// What dockerd's BuildKit makes of `ADD <url> /dl/` (it fetches from the daemon itself, so 127.0.0.1 is the
/// test's server) is what octopush makes: the name, mode 0600, root, the server's `Last-Modified` as mtime (not
/// later than SOURCE_DATE_EPOCH), the bytes as served (a tar.gz is not unpacked).
#[test]
fn add_url_like_dockerd() {
    let registry = Registry::start(Mode::Anonymous);
    let served = tempfile::tempdir().expect("tempdir");
    let tgz = served.path().join("tool.tar.gz");
    std::fs::write(&tgz, gzip_layer(vec![file("inside", "x\n")]).0).expect("write");
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    std::fs::File::options().write(true).open(&tgz).expect("open").set_modified(mtime).expect("mtime");
    let server = HttpServer::start(served.path());
    let df = format!("FROM scratch\nADD http://127.0.0.1:{}/tool.tar.gz /dl/\n", server.port);

    let wf = publish(&registry, "cmp/add-octopush", df);
    wf.run().assert_success();
    let dockerd = common::Dockerd::start();
    let docker_ref = registry.image("cmp/add-docker:1");
    let context = wf.workspace().to_string_lossy().into_owned();
    common::run_ok(dockerd.command().env("DOCKER_BUILDKIT", "1").args(["build", "-t", &docker_ref, &context]));
    dockerd.docker_ok(&["push", &docker_ref]);

    let ours = pushed_layers(&registry, "cmp/add-octopush", "1");
    let docker = pushed_layers(&registry, "cmp/add-docker", "1");
    let (o, d) = (find(&ours[0], "dl/tool.tar.gz"), find(&docker[0], "dl/tool.tar.gz"));
    assert_eq!(
        (o.kind, o.mode & 0o7777, o.uid, o.gid, o.mtime, &o.data),
        (d.kind, d.mode & 0o7777, d.uid, d.gid, d.mtime, &d.data),
        "octopush (SOURCE_DATE_EPOCH 1700000000, after Last-Modified) vs docker"
    );
    assert_eq!((d.mode & 0o7777, d.mtime), (0o600, 1_600_000_000), "what Docker does");
}

// ---------------------------------------------------------------------------------------------------------------
// 5. The default platform.

/// Pushes an index of one tiny image per `(architecture, variant)` as `repo_tag`.
fn push_index_base(registry: &Registry, repo_tag: &str, platforms: &[(&'static str, Option<&str>)]) {
    let layout = tempfile::tempdir().expect("tempdir");
    let (_, tag) = repo_tag.rsplit_once(':').expect("REPO:TAG");
    let mut manifests = Vec::new();
    for (arch, variant) in platforms {
        let (gz, diff_id) = gzip_layer(vec![file("arch", arch)]);
        let layer = write_blob(layout.path(), &gz);
        let mut platform = json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            platform["variant"] = json!(v);
        }
        let mut config = platform.clone();
        config["rootfs"] = json!({"type": "layers", "diff_ids": [diff_id]});
        config["config"] = json!({});
        let config = serde_json::to_vec(&config).expect("config");
        let config_digest = write_blob(layout.path(), &config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": common::image::OCI_MANIFEST,
            "config": {"mediaType": common::image::OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": common::image::OCI_LAYER_GZIP, "digest": layer, "size": gz.len()}],
        }))
        .expect("manifest");
        let digest = write_blob(layout.path(), &manifest);
        manifests.push(json!({"mediaType": common::image::OCI_MANIFEST, "digest": digest, "size": manifest.len(), "platform": platform}));
    }
    let index =
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": common::image::OCI_INDEX, "manifests": manifests}))
            .expect("index");
    let index_digest = write_blob(layout.path(), &index);
    std::fs::write(layout.path().join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    let top = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": common::image::OCI_INDEX, "digest": index_digest, "size": index.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(layout.path().join("index.json"), serde_json::to_vec(&top).expect("index")).expect("index.json");
    registry.skopeo_copy_to(&format!("oci:{}:{tag}", layout.path().display()), repo_tag, true);
}

#[test]
fn default_platform_is_the_runners_else_a_clear_error() {
    let registry = Registry::start(Mode::Anonymous);
    let host = common::image::host_arch();
    push_index_base(&registry, "base/multi:1", &[("s390x", None), (host, None), ("ppc64le", None)]);
    let df = format!("FROM {}/base/multi:1\nCOPY a.txt /a\n", registry.host());
    publish(&registry, "feat/default-platform", df).file("a.txt", "a\n").run().assert_success();
    let (manifest, _) = registry.get_manifest_json("feat/default-platform", "1");
    let config: serde_json::Value = serde_json::from_slice(
        &registry.get_blob("feat/default-platform", manifest["config"]["digest"].as_str().expect("config")),
    )
    .expect("config");
    assert_eq!(config["architecture"], host, "the runner's platform among three: {config}");

    push_index_base(&registry, "base/other:1", &[("s390x", None), ("riscv64", None)]);
    let df = format!("FROM {}/base/other:1\nCOPY a.txt /a\n", registry.host());
    let result = publish(&registry, "feat/no-platform", df).file("a.txt", "a\n").run();
    result.assert_failure();
    let text = result.dump();
    assert!(
        text.contains(&format!("has no image for this machine (linux/{host}")) // the edge told the builder
            && text.contains("only linux/s390x, linux/riscv64")
            && text.contains("`platforms` input"),
        "{text}"
    );
}

/// `--chown=NAME:GROUP` over a registry base, `COPY --from=<image>` and `COPY --from=<stage>` of the base's
/// files give what dockerd's BuildKit gives for the same Dockerfile.
#[test]
fn base_files_like_dockerd() {
    let registry = Registry::start(Mode::Anonymous);
    let base = common::push_busybox_base(&registry, "base/busybox:1");
    let df = format!(
        "FROM {b} AS tools\n\
         FROM {b}\n\
         COPY --chown=nobody:nogroup a.txt /srv/a.txt\n\
         COPY --from={b} /etc/passwd /copied/passwd\n\
         COPY --from=tools /etc/group /copied/group\n",
        b = base.reference
    );
    let wf = publish(&registry, "cmp/base-octopush", df).file("a.txt", "a\n");
    wf.run().assert_success();
    let dockerd = common::Dockerd::start();
    let docker_ref = registry.image("cmp/base-docker:1");
    let context = wf.workspace().to_string_lossy().into_owned();
    common::run_ok(dockerd.command().env("DOCKER_BUILDKIT", "1").args(["build", "-t", &docker_ref, &context]));
    dockerd.docker_ok(&["push", &docker_ref]);

    let ours: Vec<Entry> = pushed_layers(&registry, "cmp/base-octopush", "1").concat();
    let docker: Vec<Entry> = pushed_layers(&registry, "cmp/base-docker", "1").concat();
    for path in ["srv/a.txt", "copied/passwd", "copied/group"] {
        let (o, d) = (find(&ours, path), find(&docker, path));
        assert_eq!(
            (o.kind, o.mode & 0o7777, o.uid, o.gid, &o.data),
            (d.kind, d.mode & 0o7777, d.uid, d.gid, &d.data),
            "/{path}: octopush vs docker"
        );
    }
    let a = find(&docker, "srv/a.txt");
    assert_eq!((a.uid, a.gid), (65534, 65534), "nobody:nogroup in the busybox base");
}

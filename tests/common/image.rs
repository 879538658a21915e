//! Base images for the tests to build `FROM`, made without any daemon: a busybox-static root filesystem in a
//! deterministic gzip tar layer, an OCI config (`PATH`, `/bin/sh`), written as an OCI image layout and pushed
//! with `skopeo copy --preserve-digests`, so the digests computed here are the ones in the registry. A
//! two-platform variant (linux/amd64 + linux/arm64 index) has the real busybox for this machine's architecture
//! and a placeholder file for the other one (it is never run).

use std::io::Write as _;
use std::path::Path;

use serde_json::json;

use super::registry::Registry;
use super::{sha256_digest, tool};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The `PATH` the base image's config sets.
pub const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Busybox applets linked in `/bin` (`/bin/busybox --list` has them all; these cover shell scripts in RUN).
const APPLETS: &str = "\
     sh ash [ basename cat chmod chown cp cut date dirname du echo env false find grep gzip head hostname \
     id ln ls mkdir mv printf pwd rm sed sha256sum sleep sort stat tail tar test touch tr true uname uniq \
     wc wget which whoami xargs";

/// Fixed mtime of every entry, so the layer (and so every digest) is the same on every run.
const MTIME: u64 = 1_700_000_000;
const CREATED: &str = "2023-11-14T22:13:20Z";

pub enum Entry {
    Dir(&'static str, u32),
    File(&'static str, u32, Vec<u8>),
    /// A symlink at a path (relative to `/`) to a target.
    Symlink(String, &'static str),
    /// A hard link at a path to a target, both written into the header as given (a hostile layer's `/etc/passwd`
    /// included).
    Hardlink(String, String),
    /// A one-byte file whose name is written into the header as given, where the tar crate would refuse it
    /// (`../../x`, `/abs`).
    RawFile(Vec<u8>),
}

/// A base image as pushed: its name, digests and raw bytes.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// `127.0.0.1:PORT/base/busybox:1` (or `base/busybox:1` before a push).
    pub reference: String,
    pub repo: String,
    pub tag: String,
    /// `linux/amd64`...
    pub platform: String,
    pub manifest_digest: String,
    pub manifest: Vec<u8>,
    pub config_digest: String,
    pub config: Vec<u8>,
    /// The one gzip layer: its digest, size, and the digest of the uncompressed tar (the config's diff_id).
    pub layer_digest: String,
    pub layer_size: u64,
    pub diff_id: String,
}

impl BaseImage {
    /// `HOST/REPO@sha256:...` of the manifest.
    pub fn by_digest(&self) -> String {
        let name = self.reference.rsplit_once(':').map(|(n, _)| n).unwrap_or(&self.reference);
        format!("{name}@{}", self.manifest_digest)
    }
}

/// A two-platform base: the index and one [`BaseImage`] per platform (references point at the index's tag).
#[derive(Debug, Clone)]
pub struct MultiBase {
    pub reference: String,
    pub repo: String,
    pub tag: String,
    pub index_digest: String,
    pub index: Vec<u8>,
    /// `linux/amd64` first, then `linux/arm64`.
    pub images: Vec<BaseImage>,
}

impl MultiBase {
    /// The image for `platform` (`linux/arm64`...); panics if there is none.
    pub fn platform(&self, platform: &str) -> &BaseImage {
        self.images
            .iter()
            .find(|i| i.platform == platform)
            .unwrap_or_else(|| panic!("no {platform} in {:?}", self.reference))
    }
}

/// This machine's architecture in OCI terms.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("the test base images know amd64 and arm64, not {other}"),
    }
}

/// The statically linked busybox of Debian's busybox-static (`/bin/busybox`), checked to have no ELF interpreter
/// so that it runs in an otherwise empty root filesystem.
pub fn static_busybox() -> Vec<u8> {
    let path = tool("busybox");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        is_static_elf(&bytes),
        "{} is dynamically linked: install Debian's busybox-static (run scripts/install-test-deps.sh)",
        path.display()
    );
    bytes
}

/// True for a 64-bit little-endian ELF file without a PT_INTERP program header.
fn is_static_elf(b: &[u8]) -> bool {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap_or_default()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        b.get(o..o + 4).is_some_and(|t| u32::from_le_bytes(t.try_into().unwrap_or_default()) != 3)
    })
}

/// The busybox base root filesystem's entries (this machine's static busybox, applet symlinks, `/etc`, `/tmp`).
pub fn busybox_entries() -> Vec<Entry> {
    rootfs_entries(static_busybox())
}

fn rootfs_entries(busybox: Vec<u8>) -> Vec<Entry> {
    let mut entries = vec![
        Entry::Dir("bin", 0o755),
        Entry::File("bin/busybox", 0o755, busybox),
        Entry::Dir("etc", 0o755),
        Entry::File("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n".to_vec()),
        Entry::File(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n".to_vec(),
        ),
        Entry::Dir("root", 0o700),
        Entry::Dir("tmp", 0o1777),
        Entry::Dir("usr", 0o755),
        Entry::Dir("usr/bin", 0o755),
        Entry::Dir("var", 0o755),
    ];
    for applet in APPLETS.split_whitespace() {
        entries.push(Entry::Symlink(format!("bin/{applet}"), "busybox"));
    }
    entries
}

/// Writes the busybox base root filesystem into `dest` (created if needed): `/bin/busybox` (static) with applet
/// symlinks, `/etc/passwd`, `/etc/group`, `/tmp`, `/root`, `/usr/bin`, `/var`. Usable with `docker import` or
/// as a build context.
pub fn busybox_rootfs(dest: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dest).expect("create rootfs dir");
    for entry in rootfs_entries(static_busybox()) {
        match entry {
            Entry::Dir(p, mode) => {
                std::fs::create_dir_all(dest.join(p)).expect("mkdir");
                std::fs::set_permissions(dest.join(p), std::fs::Permissions::from_mode(mode)).expect("chmod");
            }
            Entry::File(p, mode, data) => {
                std::fs::write(dest.join(p), data).expect("write file");
                std::fs::set_permissions(dest.join(p), std::fs::Permissions::from_mode(mode)).expect("chmod");
            }
            Entry::Symlink(path, target) => {
                let link = dest.join(path);
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink(target, link).expect("symlink");
            }
            Entry::Hardlink(..) | Entry::RawFile(_) => unreachable!("the base root filesystem has neither"),
        }
    }
}

/// An uncompressed tar of the entries, every entry root-owned with the fixed mtime.
pub fn tar_of(entries: Vec<Entry>) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        match entry {
            Entry::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(mode);
                h.set_size(0);
                builder.append_data(&mut h, format!("{p}/"), std::io::empty()).expect("tar dir");
            }
            Entry::File(p, mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(mode);
                h.set_size(data.len() as u64);
                builder.append_data(&mut h, p, data.as_slice()).expect("tar file");
            }
            Entry::Symlink(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                builder.append_link(&mut h, path, target).expect("tar symlink");
            }
            Entry::Hardlink(path, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
                h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                h.set_cksum();
                builder.append(&h, std::io::empty()).expect("tar hard link");
            }
            Entry::RawFile(name) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(1);
                h.as_old_mut().name[..name.len()].copy_from_slice(&name);
                h.set_cksum();
                builder.append(&h, &b"x"[..]).expect("tar raw file");
            }
        }
    }
    builder.into_inner().expect("finish tar")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip finish")
}

/// The base layer for `arch`: the real static busybox when `arch` is this machine's, else a placeholder file.
/// Returns (gzip bytes, uncompressed tar digest).
fn base_layer(arch: &str) -> (Vec<u8>, String) {
    // On amd64 the linux/386 image gets the host's busybox too: it is labelled 386, and the kernel runs it, so an
    // engine can RUN in it for a two-platform build (the engine builder's tests).
    let busybox = if arch == host_arch() || (arch == "386" && host_arch() == "amd64") {
        static_busybox()
    } else {
        format!("placeholder: the {arch} busybox of the octopush test base; it is never run\n").into_bytes()
    };
    gzip_layer(rootfs_entries(busybox))
}

/// A gzip layer of the entries and its diff_id (the digest of the tar).
pub fn gzip_layer(entries: Vec<Entry>) -> (Vec<u8>, String) {
    let tar = tar_of(entries);
    let diff_id = sha256_digest(&tar);
    (gzip(&tar), diff_id)
}

/// Writes a blob into an OCI layout's `blobs/sha256`; returns its digest.
pub fn write_blob(layout: &Path, data: &[u8]) -> String {
    let digest = sha256_digest(data);
    let dir = layout.join("blobs").join("sha256");
    std::fs::create_dir_all(&dir).expect("create blobs dir");
    std::fs::write(dir.join(digest.trim_start_matches("sha256:")), data).expect("write blob");
    digest
}

/// Writes one platform's layer, config and manifest into the layout's blobs; the returned image has no host.
fn write_image(layout: &Path, repo: &str, tag: &str, arch: &str) -> BaseImage {
    let (layer, diff_id) = base_layer(arch);
    let layer_digest = write_blob(layout, &layer);
    let mut config = json!({
        "created": CREATED,
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": [format!("PATH={BASE_PATH}")],
            "Cmd": ["/bin/sh"],
            "WorkingDir": "/",
            "Labels": {"org.opencontainers.image.title": "octopush test base (busybox-static)"}
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": "octopush test harness: busybox-static root filesystem"}]
    });
    if arch == "arm64" {
        config["variant"] = json!("v8");
    }
    let config = serde_json::to_vec(&config).expect("config JSON");
    let config_digest = write_blob(layout, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": layer.len()}]
    }))
    .expect("manifest JSON");
    let manifest_digest = write_blob(layout, &manifest);
    BaseImage {
        reference: format!("{repo}:{tag}"),
        repo: repo.into(),
        tag: tag.into(),
        platform: format!("linux/{arch}"),
        manifest_digest,
        manifest,
        config_digest,
        config,
        layer_digest,
        layer_size: layer.len() as u64,
        diff_id,
    }
}

/// Pushes an image of the given layers (bottom first; each a gzip tar of its entries) with the busybox base's
/// config for this machine's architecture, as `repo_tag`, with skopeo (`docker_schema2`: as a Docker schema 2
/// manifest, skopeo's `-f v2s2`). Returns the manifest and config digests skopeo reports for the registry.
pub fn push_layers(
    registry: &Registry,
    repo_tag: &str,
    layers: Vec<Vec<Entry>>,
    docker_schema2: bool,
) -> (String, String) {
    let (repo, tag) = split_repo_tag(repo_tag);
    let layout = tempfile::Builder::new().prefix("octopush-layers-").tempdir().expect("tempdir");
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for entries in layers {
        let (gz, diff_id) = gzip_layer(entries);
        let digest = write_blob(layout.path(), &gz);
        descriptors.push(json!({"mediaType": OCI_LAYER_GZIP, "digest": digest, "size": gz.len()}));
        diff_ids.push(diff_id);
    }
    let config = serde_json::to_vec(&json!({
        "created": CREATED,
        "architecture": host_arch(),
        "os": "linux",
        "config": {"Env": [format!("PATH={BASE_PATH}")], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": diff_ids.iter().map(|_| json!({"created": CREATED, "created_by": "octopush test layers"})).collect::<Vec<_>>()
    }))
    .expect("config JSON");
    let config_digest = write_blob(layout.path(), &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": descriptors
    }))
    .expect("manifest JSON");
    let manifest_digest = write_blob(layout.path(), &manifest);
    write_layout_index(layout.path(), OCI_MANIFEST, &manifest_digest, manifest.len(), tag);
    let src = format!("oci:{}:{tag}", layout.path().display());
    let _ = repo;
    if docker_schema2 {
        let mut cmd = std::process::Command::new(tool("skopeo"));
        cmd.args(["--insecure-policy", "copy", "-q", "--retry-times=0", "-f", "v2s2"]);
        cmd.args(registry.skopeo_dest_args()).arg(&src).arg(format!("docker://{}", registry.image(repo_tag)));
        cmd.env("REGISTRY_AUTH_FILE", registry.dir().join("no-auth.json"));
        super::run_ok(&mut cmd);
    } else {
        registry.skopeo_copy_to(&src, repo_tag, false);
    }
    // What the registry holds, as skopeo reads it: the manifest's digest is the digest of its bytes.
    let raw = registry_manifest(registry, repo_tag);
    let m: serde_json::Value = serde_json::from_slice(&raw).expect("manifest JSON");
    (sha256_digest(&raw), m["config"]["digest"].as_str().expect("config digest").to_string())
}

/// The manifest bytes of `repo_ref` in `registry`, read with `skopeo inspect --raw`.
pub fn registry_manifest(registry: &Registry, repo_ref: &str) -> Vec<u8> {
    let mut cmd = std::process::Command::new(tool("skopeo"));
    cmd.args(["inspect", "--raw"]).args(registry.skopeo_src_args(false).iter().map(|a| a.replace("--src-", "--")));
    cmd.arg(format!("docker://{}", registry.image(repo_ref)));
    cmd.env("REGISTRY_AUTH_FILE", registry.dir().join("no-auth.json"));
    let out = super::run(&mut cmd);
    assert!(out.status.success(), "skopeo inspect --raw failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn platform_json(arch: &str) -> serde_json::Value {
    if arch == "arm64" {
        json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
    } else {
        json!({"architecture": arch, "os": "linux"})
    }
}

fn write_layout_index(layout: &Path, media_type: &str, digest: &str, size: usize, tag: &str) {
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": media_type, "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }]
    });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).expect("index JSON"))
        .expect("write index.json");
}

fn split_repo_tag(repo_tag: &str) -> (&str, &str) {
    let (repo, tag) = repo_tag.rsplit_once(':').unwrap_or_else(|| panic!("{repo_tag}: want REPO:TAG"));
    assert!(!repo.is_empty() && !tag.contains('/'), "{repo_tag}: want REPO:TAG such as base/busybox:1");
    (repo, tag)
}

/// Writes the single-platform busybox base as an OCI image layout in `layout` (tag `tag`), for this machine's
/// architecture.
pub fn write_busybox_layout(layout: &Path, repo: &str, tag: &str) -> BaseImage {
    let image = write_image(layout, repo, tag, host_arch());
    write_layout_index(layout, OCI_MANIFEST, &image.manifest_digest, image.manifest.len(), tag);
    image
}

/// Builds the busybox base (one gzip layer, config with `PATH` and `Cmd ["/bin/sh"]`) for this machine's
/// architecture and pushes it to `registry` as `repo_tag` (e.g. `base/busybox:1`) with skopeo, using the
/// registry's credentials and CA. No daemon is involved.
pub fn push_busybox_base(registry: &Registry, repo_tag: &str) -> BaseImage {
    let (repo, tag) = split_repo_tag(repo_tag);
    let layout = tempfile::Builder::new().prefix("octopush-base-").tempdir().expect("tempdir");
    let mut image = write_busybox_layout(layout.path(), repo, tag);
    registry.skopeo_copy_to(&format!("oci:{}:{tag}", layout.path().display()), repo_tag, false);
    image.reference = registry.image(repo_tag);
    image
}

/// Writes the two-platform base (index of linux/amd64 and linux/arm64) as an OCI layout in `layout`.
pub fn write_busybox_multiplatform_layout(layout: &Path, repo: &str, tag: &str) -> MultiBase {
    write_busybox_platforms_layout(layout, repo, tag, &["amd64", "arm64"])
}

/// Writes a base index of linux/`archs` as an OCI layout in `layout`.
pub fn write_busybox_platforms_layout(layout: &Path, repo: &str, tag: &str, archs: &[&str]) -> MultiBase {
    let images: Vec<BaseImage> = archs.iter().map(|a| write_image(layout, repo, tag, a)).collect();
    let manifests: Vec<serde_json::Value> = images
        .iter()
        .map(|i| {
            json!({
                "mediaType": OCI_MANIFEST, "digest": i.manifest_digest, "size": i.manifest.len(),
                "platform": platform_json(i.platform.trim_start_matches("linux/"))
            })
        })
        .collect();
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}))
        .expect("index JSON");
    let index_digest = write_blob(layout, &index);
    write_layout_index(layout, OCI_INDEX, &index_digest, index.len(), tag);
    MultiBase { reference: format!("{repo}:{tag}"), repo: repo.into(), tag: tag.into(), index_digest, index, images }
}

/// Pushes the two-platform busybox base (an OCI index of linux/amd64 and linux/arm64) as `repo_tag` with
/// `skopeo copy --all`.
pub fn push_busybox_multiplatform(registry: &Registry, repo_tag: &str) -> MultiBase {
    push_busybox_platforms(registry, repo_tag, &["amd64", "arm64"])
}

/// Pushes a base index of linux/`archs` as `repo_tag` with `skopeo copy --all`.
pub fn push_busybox_platforms(registry: &Registry, repo_tag: &str, archs: &[&str]) -> MultiBase {
    let (repo, tag) = split_repo_tag(repo_tag);
    let layout = tempfile::Builder::new().prefix("octopush-base-").tempdir().expect("tempdir");
    let mut base = write_busybox_platforms_layout(layout.path(), repo, tag, archs);
    registry.skopeo_copy_to(&format!("oci:{}:{tag}", layout.path().display()), repo_tag, true);
    base.reference = registry.image(repo_tag);
    for image in &mut base.images {
        image.reference = base.reference.clone();
    }
    base
}

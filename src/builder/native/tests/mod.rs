//! Builder tests: build into a temporary directory with a scratch or fake registry resolver, then open the gzip
//! layer files written and check their entries, the config, the history and the digests.

mod base_files;
mod cache;
mod layers;
mod parents_chmod;
mod stages;
mod urls;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::build;
use crate::builder::{BaseResolver, BuildError, BuildOptions, ScratchOnly};
use crate::image::{
    Artifact, Blob, BlobSource, ContainerConfig, Descriptor, Digest, Image, ImageConfig, ImageName, ImageRef, Layer,
    Platform, RootFs, digest_file, media_type,
};
use crate::progress::{Collect, Quiet};

/// 2020-01-10T00:30:00Z
pub(super) const EPOCH: i64 = 1_578_616_200;

pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub ctx: PathBuf,
    pub work: PathBuf,
}

pub(super) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path().join("ctx");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&ctx).expect("mkdir ctx");
    Fixture { _dir: dir, ctx, work }
}

impl Fixture {
    pub fn file(&self, rel: &str, content: &str, mode: u32) -> &Self {
        let p = self.ctx.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        self
    }

    pub fn opts(&self, dockerfile: &str) -> BuildOptions {
        let df = self.ctx.join("Dockerfile");
        std::fs::write(&df, dockerfile).expect("write Dockerfile");
        BuildOptions {
            context: self.ctx.clone(),
            dockerfile: df,
            target: None,
            build_args: BTreeMap::new(),
            platforms: Vec::new(),
            labels: BTreeMap::new(),
            source_date_epoch: Some(EPOCH),
            work_dir: self.work.clone(),
            host_platform: Platform::new("linux", "amd64", None),
            cache_dir: None,
            compression: crate::builder::Compression::Gzip,
            engine: Default::default(),
        }
    }
}

pub(super) async fn build_image<R: BaseResolver>(opts: &BuildOptions, bases: &R) -> Image {
    match build(opts, bases, &Quiet).await {
        Ok(Artifact::Image(i)) => i,
        Ok(Artifact::Index(_)) => panic!("expected one image, got an index"),
        Err(e) => panic!("build failed: {e}"),
    }
}

pub(super) async fn scratch_build(opts: &BuildOptions) -> Image {
    build_image(opts, &ScratchOnly).await
}

pub(super) async fn build_err(opts: &BuildOptions) -> BuildError {
    match build(opts, &FakeBases::default(), &Quiet).await {
        Ok(_) => panic!("the build should fail"),
        Err(e) => e,
    }
}

pub(super) async fn build_collect(opts: &BuildOptions) -> (Result<Artifact, BuildError>, Vec<String>) {
    let progress = Collect::default();
    let r = build(opts, &FakeBases::default(), &progress).await;
    (r, progress.lines())
}

/// One tar entry as read back.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry {
    pub path: String,
    /// `d` directory, `f` file, `l` symlink, `h` hard link.
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: Option<String>,
    pub data: Vec<u8>,
}

/// Opens a layer we wrote, checks both digests against the bytes, and lists its entries.
pub(super) fn entries(layer: &Layer) -> Vec<Entry> {
    let BlobSource::File(path) = &layer.blob.source else { panic!("layer is not a file: {:?}", layer.blob.source) };
    assert_eq!(layer.blob.descriptor.media_type, media_type::OCI_LAYER_GZIP);
    let (digest, size) = digest_file(path).expect("digest");
    assert_eq!(digest, layer.blob.descriptor.digest, "blob digest");
    assert_eq!(size, layer.blob.descriptor.size, "blob size");
    let gz = std::fs::read(path).expect("read layer");
    assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255], "gzip header: no name, mtime 0, OS 255");
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut tar_bytes).expect("gunzip");
    assert_eq!(Digest::of(&tar_bytes), layer.diff_id, "diff_id");
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    for e in archive.entries().expect("entries") {
        let mut e = e.expect("entry");
        let h = e.header().clone();
        assert!(h.username_bytes().is_none_or(|u| u.is_empty()), "no user names");
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Regular => 'f',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            other => panic!("unexpected entry type {other:?}"),
        };
        let path = String::from_utf8(e.path_bytes().into_owned()).expect("utf-8 path");
        let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("data");
        out.push(Entry {
            path,
            kind,
            mode: h.mode().expect("mode"),
            uid: h.uid().expect("uid"),
            gid: h.gid().expect("gid"),
            mtime: h.mtime().expect("mtime"),
            link,
            data,
        });
    }
    out
}

pub(super) fn paths(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.path.as_str()).collect()
}

pub(super) fn entry<'a>(entries: &'a [Entry], path: &str) -> &'a Entry {
    entries.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("no {path} in {:?}", paths(entries)))
}

pub(super) fn history(image: &Image) -> Vec<(String, bool)> {
    image
        .config()
        .history
        .iter()
        .map(|h| (h.created_by.clone().unwrap_or_default(), h.empty_layer.unwrap_or(false)))
        .collect()
}

pub(super) fn container(image: &Image) -> &ContainerConfig {
    image.config().config.as_ref().expect("container config")
}

/// A resolver serving fake registry images: each has one layer left in the registry.
#[derive(Default)]
pub(super) struct FakeBases {
    pub images: BTreeMap<String, ImageConfig>,
    /// The base layers (gzip tar bytes, bottom first) every image has; one fake layer when empty.
    pub layers: Vec<Vec<u8>>,
    /// Digests of the blobs fetched, in order.
    pub fetched: std::sync::Mutex<Vec<Digest>>,
    /// The platforms every image offers; linux/amd64 and linux/arm64/v8 when empty.
    pub platforms: Vec<Platform>,
}

impl FakeBases {
    pub fn with(name: &str, config: ContainerConfig) -> Self {
        let mut images = BTreeMap::new();
        let cfg = ImageConfig { config: Some(config), ..ImageConfig::default() };
        images.insert(name.to_string(), cfg);
        FakeBases { images, ..FakeBases::default() }
    }

    /// The base layers as the resolver lists them.
    fn base_layers(&self) -> Vec<Layer> {
        if self.layers.is_empty() {
            return vec![base_layer()];
        }
        self.layers
            .iter()
            .map(|gz| Layer {
                blob: Blob {
                    descriptor: Descriptor::new(media_type::OCI_LAYER_GZIP, Digest::of(gz), gz.len() as u64),
                    source: BlobSource::Registry(ImageName::new("registry.example", "base").expect("name")),
                },
                diff_id: Digest::of(gz),
            })
            .collect()
    }

    pub fn fetched(&self) -> Vec<Digest> {
        self.fetched.lock().expect("lock").clone()
    }
}

/// A gzip layer of `(path, content)` files (a `None` content is a directory), root-owned, mode 0644.
pub(super) fn gz_layer(files: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut h = tar::Header::new_ustar();
        match content {
            Some(c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(c.len() as u64);
                tar.append_data(&mut h, path, c.as_bytes()).expect("tar file");
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, path, std::io::empty()).expect("tar dir");
            }
        }
    }
    let tar = tar.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    gz.finish().expect("gzip")
}

pub(super) fn base_layer() -> Layer {
    Layer {
        blob: Blob {
            descriptor: Descriptor::new(media_type::DOCKER_LAYER_GZIP, Digest::of(b"base layer"), 10),
            source: BlobSource::Registry(ImageName::new("registry.example", "base").expect("name")),
        },
        diff_id: Digest::of(b"base tar"),
    }
}

impl BaseResolver for FakeBases {
    async fn resolve(&self, base: &ImageRef, platform: &Platform) -> Result<Image, BuildError> {
        let Some(cfg) = self.images.get(&base.to_string()) else {
            return Err(BuildError::base(base, format!("{base} not found")));
        };
        let config = ImageConfig {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone(),
            rootfs: RootFs { kind: "layers".into(), diff_ids: vec![base_layer().diff_id] },
            ..cfg.clone()
        };
        let layers = self.base_layers();
        let config = ImageConfig {
            rootfs: RootFs { kind: "layers".into(), diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect() },
            ..config
        };
        Ok(Image::from_parts(config, layers))
    }

    async fn platforms(&self, base: &ImageRef) -> Result<Vec<Platform>, BuildError> {
        match self.images.get(&base.to_string()) {
            Some(_) if !self.platforms.is_empty() => Ok(self.platforms.clone()),
            Some(_) => Ok(vec![Platform::new("linux", "amd64", None), Platform::new("linux", "arm64", Some("v8"))]),
            None => Err(BuildError::base(base, "not found")),
        }
    }

    async fn fetch_blob(&self, blob: &Blob, dest: &Path) -> Result<(), BuildError> {
        self.fetched.lock().expect("lock").push(blob.descriptor.digest.clone());
        let bytes = if self.layers.is_empty() {
            gz_layer(&[])
        } else {
            let found = self.layers.iter().find(|gz| Digest::of(gz) == blob.descriptor.digest);
            found.cloned().ok_or_else(|| BuildError::base("registry.example/base", "no such blob"))?
        };
        std::fs::write(dest, bytes).map_err(|e| BuildError::io("writing", dest, e))
    }

    async fn fetch_url(&self, url: &str, dest: &Path) -> Result<crate::builder::native::Fetched, BuildError> {
        crate::registry::install_crypto();
        let client = reqwest::Client::builder().no_proxy().build().expect("client");
        crate::builder::native::fetch::fetch_http(&client, url, dest)
            .await
            .map_err(|message| BuildError::Fetch { url: url.to_string(), message })
    }
}

pub(super) fn set_mtime(path: &Path, secs: i64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
    let f = std::fs::File::options().write(true).open(path).or_else(|_| std::fs::File::open(path)).expect("open");
    f.set_modified(t).expect("set mtime");
}

//! The image as a value (after go-containerregistry's `pkg/v1`): a config, an ordered list of layers, and the
//! manifest derived from them. Where its bytes live (a file we built, a blob already in a registry, bytes in
//! memory) is recorded per blob, so the same value can flow to a registry, an OCI layout or an archive.

mod config;
mod digest;
mod growing;
mod manifest;
mod name;

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;

pub use config::{ContainerConfig, Healthcheck, History, ImageConfig, RootFs};
pub use digest::{Digest, HashingWriter, InvalidDigest, digest_file};
pub use growing::{Finisher, Growing, GrowingWriter};
pub use manifest::{Descriptor, Index, Manifest, Platform, media_type, to_canonical_json};
pub use name::{ImageName, ImageRef, InvalidName, is_loopback_host, is_valid_tag, registry_host};

/// Where a blob's bytes can be read from.
#[derive(Debug, Clone, PartialEq)]
pub enum BlobSource {
    /// A file on disk: a layer we built, or a blob in an OCI layout. Streamed, never read whole.
    File(PathBuf),
    /// Small bytes held in memory: configs and manifests only.
    Bytes(Bytes),
    /// A blob that sits in a registry repository (a base image's layer). Pushing to the same registry mounts it;
    /// it is never downloaded to build.
    Registry(ImageName),
}

/// A blob and where to get it.
#[derive(Debug, Clone, PartialEq)]
pub struct Blob {
    pub descriptor: Descriptor,
    pub source: BlobSource,
}

/// A layer: its compressed blob and the digest of its uncompressed tar (the config's `diff_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub blob: Blob,
    pub diff_id: Digest,
}

/// An image value. Functions that change it take `self` and return the new value.
///
/// An image read from a place (a registry, the engine's export) keeps the exact bytes it was read with: its
/// config (so the image ID stays what the place says) and, from a registry, its manifest (so its digest and
/// media type, Docker schema 2 included, stay the same when it moves). A change serialises anew what it touches:
/// a new layer or config change both, new annotations the manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    config: ImageConfig,
    /// The config's bytes as read, while the config is unchanged.
    raw_config: Option<Bytes>,
    /// The manifest as read, while nothing it describes has changed.
    raw_manifest: Option<RawManifest>,
    /// The repository the config was read from, while it is unchanged: pushing to the same registry mounts it.
    config_home: Option<ImageName>,
    layers: Vec<Layer>,
    annotations: BTreeMap<String, String>,
    /// How an index lists the image, as the index it was read from said: its platform (which may be more precise
    /// than the config's) and the descriptor's annotations (an attestation names its subject there).
    entry_platform: Option<Platform>,
    entry_annotations: BTreeMap<String, String>,
}

impl Image {
    /// The empty image (`FROM scratch`) for a platform.
    pub fn scratch(platform: &Platform) -> Image {
        let config = ImageConfig {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone(),
            ..ImageConfig::default()
        };
        Self::from_parts(config, Vec::new())
    }

    /// An image from a base's config and layers (layer count must match `rootfs.diff_ids`; the caller checks).
    pub fn from_parts(config: ImageConfig, layers: Vec<Layer>) -> Image {
        Image {
            config,
            raw_config: None,
            raw_manifest: None,
            config_home: None,
            layers,
            annotations: BTreeMap::new(),
            entry_platform: None,
            entry_annotations: BTreeMap::new(),
        }
    }

    /// An image from config bytes as a place gave them, kept byte for byte, and its layers (bottom up, one per
    /// `rootfs.diff_ids` entry; the caller checks).
    pub fn from_raw_config(raw: Bytes, layers: Vec<Layer>) -> Result<Image, serde_json::Error> {
        let config = serde_json::from_slice(&raw)?;
        Ok(Image { raw_config: Some(raw), ..Self::from_parts(config, layers) })
    }

    /// An image as the registry repository `home` holds it: its manifest and config bytes kept, its layers (the
    /// manifest's, with the config's diff_ids; the caller checks they match) left where they are. The manifest's
    /// annotations are the image's.
    pub fn from_registry(
        home: &ImageName,
        manifest: RawManifest,
        config: Bytes,
        layers: Vec<Layer>,
    ) -> Result<Image, serde_json::Error> {
        let parsed: Manifest = serde_json::from_slice(&manifest.bytes)?;
        let image = Self::from_raw_config(config, layers)?;
        Ok(Image {
            raw_manifest: Some(manifest),
            config_home: Some(home.clone()),
            annotations: parsed.annotations.unwrap_or_default(),
            ..image
        })
    }

    /// The image as an index lists it: `platform` (else the config's) and the entry's annotations.
    pub fn with_index_entry(mut self, platform: Option<Platform>, annotations: BTreeMap<String, String>) -> Image {
        self.entry_platform = platform;
        self.entry_annotations = annotations;
        self
    }

    /// The platform an index lists the image under.
    pub fn index_platform(&self) -> Platform {
        self.entry_platform.clone().unwrap_or_else(|| self.platform())
    }

    pub fn index_annotations(&self) -> &BTreeMap<String, String> {
        &self.entry_annotations
    }

    /// Whether this is an attestation manifest rather than a platform's image: `unknown/unknown`, or an index
    /// entry that names the image it describes (`vnd.docker.reference.type`, as BuildKit writes them).
    pub fn is_attestation(&self) -> bool {
        let p = self.index_platform();
        (p.os == "unknown" && p.architecture == "unknown")
            || self.entry_annotations.contains_key("vnd.docker.reference.type")
    }

    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.annotations
    }

    pub fn platform(&self) -> Platform {
        self.config.platform()
    }

    /// The same image with its layers read from local files (`files` by digest, after a download) and its config
    /// from the bytes it was read with: where the bytes live changes, not the bytes, so every digest and the
    /// manifest stay as they were.
    pub fn with_local_blobs(mut self, files: &BTreeMap<Digest, PathBuf>) -> Image {
        for layer in &mut self.layers {
            if let Some(path) = files.get(&layer.blob.descriptor.digest) {
                layer.blob.source = BlobSource::File(path.clone());
            }
        }
        if self.raw_config.is_some() {
            self.config_home = None;
        }
        self
    }

    /// The image with its config changed by `f`.
    pub fn with_config(mut self, f: impl FnOnce(&mut ImageConfig)) -> Image {
        f(&mut self.config);
        self.raw_config = None;
        self.config_home = None;
        self.raw_manifest = None;
        self
    }

    /// The image with `layer` on top, recorded in `rootfs` and `history`.
    pub fn with_layer(mut self, layer: Layer, history: History) -> Image {
        self.raw_config = None;
        self.config_home = None;
        self.raw_manifest = None;
        self.config.rootfs.diff_ids.push(layer.diff_id.clone());
        self.config.history.push(history);
        self.layers.push(layer);
        self
    }

    /// The image with a history entry for an instruction that made no layer.
    pub fn with_empty_history(mut self, mut history: History) -> Image {
        self.raw_config = None;
        self.config_home = None;
        self.raw_manifest = None;
        history.empty_layer = Some(true);
        self.config.history.push(history);
        self
    }

    pub fn with_annotations(mut self, annotations: BTreeMap<String, String>) -> Image {
        if annotations.iter().any(|(k, v)| self.annotations.get(k) != Some(v)) {
            self.raw_manifest = None;
        }
        self.annotations.extend(annotations);
        self
    }

    /// The config blob: the bytes it was read with, else the config serialised; and their descriptor. A config
    /// still as a registry holds it is sourced from there, so a push to the same registry mounts it.
    pub fn config_blob(&self) -> Blob {
        let bytes = self.raw_config.clone().unwrap_or_else(|| Bytes::from(to_canonical_json(&self.config)));
        let descriptor = Descriptor::new(media_type::OCI_CONFIG, Digest::of(&bytes), bytes.len() as u64);
        let source = match &self.config_home {
            Some(home) => BlobSource::Registry(home.clone()),
            None => BlobSource::Bytes(bytes),
        };
        Blob { descriptor, source }
    }

    /// The manifest for this image, with its bytes and digest: the one it was read with, else an OCI manifest.
    /// Docker layer media types of base layers are written as their OCI equivalents (the bytes are the same gzip
    /// tar), as buildah does for OCI output.
    pub fn manifest(&self) -> RawManifest {
        if let Some(raw) = &self.raw_manifest {
            return raw.clone();
        }
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let mut d = l.blob.descriptor.clone();
                if d.media_type == media_type::DOCKER_LAYER_GZIP {
                    d.media_type = media_type::OCI_LAYER_GZIP.into();
                }
                d
            })
            .collect();
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.into()),
            config: self.config_blob().descriptor,
            layers,
            subject: None,
            annotations: (!self.annotations.is_empty()).then(|| self.annotations.clone()),
        };
        RawManifest::new(media_type::OCI_MANIFEST, to_canonical_json(&manifest))
    }

    /// Every blob of the image, config first, then layers bottom-up.
    pub fn blobs(&self) -> Vec<Blob> {
        std::iter::once(self.config_blob()).chain(self.layers.iter().map(|l| l.blob.clone())).collect()
    }
}

/// Serialised manifest or index bytes with their media type and digest: what gets PUT and what tags point at.
#[derive(Debug, Clone, PartialEq)]
pub struct RawManifest {
    pub media_type: String,
    pub bytes: Bytes,
    pub digest: Digest,
}

impl RawManifest {
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Self {
        let digest = Digest::of(&bytes);
        RawManifest { media_type: media_type.into(), bytes: bytes.into(), digest }
    }

    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.media_type.clone(), self.digest.clone(), self.bytes.len() as u64)
    }
}

/// Several platform images under one index.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageIndex {
    pub images: Vec<Image>,
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    pub fn manifest(&self) -> RawManifest {
        let manifests = self
            .images
            .iter()
            .map(|img| {
                let mut d = img.manifest().descriptor();
                d.platform = Some(img.index_platform());
                d.annotations = (!img.entry_annotations.is_empty()).then(|| img.entry_annotations.clone());
                d
            })
            .collect();
        let index = Index {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.into()),
            manifests,
            annotations: (!self.annotations.is_empty()).then(|| self.annotations.clone()),
        };
        RawManifest::new(media_type::OCI_INDEX, to_canonical_json(&index))
    }
}

/// What a build produces and a push publishes.
// One value per build, moved rather than copied around: boxing the image would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Artifact {
    Image(Image),
    Index(ImageIndex),
}

impl Artifact {
    /// The top-level manifest: the one tags point at.
    pub fn manifest(&self) -> RawManifest {
        match self {
            Artifact::Image(i) => i.manifest(),
            Artifact::Index(i) => i.manifest(),
        }
    }

    pub fn images(&self) -> Vec<&Image> {
        match self {
            Artifact::Image(i) => vec![i],
            Artifact::Index(i) => i.images.iter().collect(),
        }
    }

    /// Every distinct blob of every image (configs and layers), by digest: what a push or a layout must hold.
    pub fn blobs(&self) -> BTreeMap<Digest, Blob> {
        let mut blobs = BTreeMap::new();
        for image in self.images() {
            for blob in image.blobs() {
                blobs.entry(blob.descriptor.digest.clone()).or_insert(blob);
            }
        }
        blobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(bytes: &'static [u8]) -> Layer {
        Layer {
            blob: Blob {
                descriptor: Descriptor::new(media_type::DOCKER_LAYER_GZIP, Digest::of(bytes), bytes.len() as u64),
                source: BlobSource::Bytes(Bytes::from_static(bytes)),
            },
            diff_id: Digest::of(b"tar"),
        }
    }

    #[test]
    fn with_layer_records_rootfs_and_history_and_is_deterministic() {
        let img = Image::scratch(&Platform::new("linux", "amd64", None))
            .with_layer(layer(b"a"), History { created_by: Some("COPY a /".into()), ..Default::default() });
        assert_eq!(img.config().rootfs.diff_ids.len(), 1);
        assert_eq!(img.config().history.len(), 1);
        let m1 = img.manifest();
        let m2 = img.clone().manifest();
        assert_eq!(m1.digest, m2.digest);
        let parsed: Manifest = serde_json::from_slice(&m1.bytes).unwrap();
        assert_eq!(parsed.layers[0].media_type, media_type::OCI_LAYER_GZIP, "docker layer type mapped to OCI");
        assert_eq!(parsed.config.digest, img.config_blob().descriptor.digest);
        assert_eq!(img.blobs().len(), 2);
    }

    #[test]
    fn config_bytes_read_from_a_place_are_kept_until_the_config_changes() {
        // Docker's spacing and key order, and a field the model does not know.
        let raw = Bytes::from_static(
            br#"{"architecture":"amd64","os":"linux","docker_version":"20.10.24","rootfs":{"type":"layers","diff_ids":[]}}"#,
        );
        let img = Image::from_raw_config(raw.clone(), Vec::new()).unwrap();
        assert_eq!(img.platform(), Platform::new("linux", "amd64", None));
        let blob = img.config_blob();
        assert_eq!(blob.descriptor.digest, Digest::of(&raw), "the image ID stays the place's");
        assert_eq!(blob.source, BlobSource::Bytes(raw.clone()));
        let annotated = img.clone().with_annotations(BTreeMap::from([("a".into(), "b".into())]));
        assert_eq!(annotated.config_blob().descriptor.digest, Digest::of(&raw), "annotations are not in the config");
        let changed = img.with_config(|c| c.os = "linux".into());
        assert_ne!(changed.config_blob().descriptor.digest, Digest::of(&raw), "a changed config is serialised anew");
        assert!(Image::from_raw_config(Bytes::from_static(b"not json"), Vec::new()).is_err());
    }

    #[test]
    fn a_manifest_read_from_a_registry_is_kept_until_something_it_describes_changes() {
        // A Docker schema 2 manifest, with its own spacing: written back, it must stay byte for byte.
        let config =
            Bytes::from_static(br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#);
        let json = format!(
            r#"{{"schemaVersion": 2, "mediaType": "{}", "config": {{"mediaType": "{}", "digest": "{}", "size": {}}}, "layers": []}}"#,
            media_type::DOCKER_MANIFEST,
            media_type::DOCKER_CONFIG,
            Digest::of(&config),
            config.len()
        );
        let raw = RawManifest::new(media_type::DOCKER_MANIFEST, json.into_bytes());
        let home = ImageName::new("ghcr.io", "octo/app").unwrap();
        let img = Image::from_registry(&home, raw.clone(), config, Vec::new()).unwrap();
        assert_eq!(img.config_blob().source, BlobSource::Registry(home), "mountable from where it was read");
        assert_eq!(img.manifest(), raw, "exact bytes, media type and digest");
        assert_eq!(img.clone().with_annotations(BTreeMap::new()).manifest(), raw, "no new annotation, no change");
        let annotated = img.clone().with_annotations(BTreeMap::from([("a".into(), "b".into())]));
        assert_ne!(annotated.manifest().digest, raw.digest);
        assert_eq!(annotated.manifest().media_type, media_type::OCI_MANIFEST);
        let entry = img.with_index_entry(Some(Platform::new("linux", "arm64", Some("v8"))), BTreeMap::new());
        let index = ImageIndex { images: vec![entry], annotations: BTreeMap::new() };
        let parsed: Index = serde_json::from_slice(&index.manifest().bytes).unwrap();
        assert_eq!(parsed.manifests[0].digest, raw.digest);
        assert_eq!(parsed.manifests[0].media_type, media_type::DOCKER_MANIFEST);
        assert_eq!(
            parsed.manifests[0].platform.as_ref().unwrap().to_string(),
            "linux/arm64/v8",
            "the entry's platform"
        );
    }

    #[test]
    fn index_descriptors_carry_platforms() {
        let a = Image::scratch(&Platform::new("linux", "amd64", None));
        let b = Image::scratch(&Platform::new("linux", "arm64", Some("v8")));
        let idx = ImageIndex { images: vec![a, b], annotations: BTreeMap::new() };
        let parsed: Index = serde_json::from_slice(&idx.manifest().bytes).unwrap();
        assert_eq!(parsed.manifests.len(), 2);
        assert_eq!(parsed.manifests[1].platform.as_ref().unwrap().to_string(), "linux/arm64/v8");
    }
}

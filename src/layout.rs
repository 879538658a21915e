//! OCI image layouts (image-spec `image-layout.md`): an artifact written as a directory that skopeo, umoci and
//! buildah read (`--output oci:DIR`), and a layout read back as an artifact whose blobs are files, so it can be
//! pushed. A local output must hold every byte, so base layers that live in a registry are streamed into it here.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::image::{
    Artifact, Blob, BlobSource, Descriptor, Digest, Image, ImageConfig, ImageIndex, Index, Layer, Manifest,
    RawManifest, media_type, to_canonical_json,
};
use crate::registry::{RegistryClient, RegistryError};

/// The annotation that names an entry of `index.json` (what `oci:DIR:TAG` refers to).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(
        "blob {digest} is still in the registry ({name}) and no registry client was given to copy it into the layout"
    )]
    NeedsRegistry { digest: Digest, name: String },
    #[error("{} is not a valid OCI layout: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
    #[error("the layout {} has no image `{reference}`; it has: {}", path.display(), if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    NotFound { path: PathBuf, reference: String, available: Vec<String> },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io { path: path.to_path_buf(), source }
}

/// The name an `index.json` entry is given ([`REF_NAME`]), if any.
fn ref_name(d: &Descriptor) -> Option<String> {
    d.annotations.as_ref().and_then(|a| a.get(REF_NAME)).cloned()
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs").join(digest.algorithm()).join(digest.hex())
}

/// Writes `artifact` into the layout at `dir` (created if needed) and names it `tag` in `index.json`; returns the
/// top manifest. Idempotent: blobs already present with the right size are left alone, and an `index.json` entry
/// with the same name (or, untagged, the same digest) is replaced. `fetch_remote` copies registry-held blobs.
pub async fn write_layout(
    dir: &Path,
    artifact: &Artifact,
    tag: Option<&str>,
    fetch_remote: Option<&RegistryClient>,
) -> Result<RawManifest, LayoutError> {
    tokio::fs::create_dir_all(dir.join("blobs").join("sha256")).await.map_err(io_err(dir))?;
    let marker = dir.join("oci-layout");
    write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).await?;

    for blob in artifact.blobs().values() {
        put_blob(dir, blob, fetch_remote).await?;
    }
    if let Artifact::Index(index) = artifact {
        for image in &index.images {
            put_manifest(dir, &image.manifest()).await?;
        }
    }
    let top = artifact.manifest();
    put_manifest(dir, &top).await?;

    let index_path = dir.join("index.json");
    let mut index = match tokio::fs::read(&index_path).await {
        Ok(bytes) => parse::<Index>(&index_path, &bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Index {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.into()),
            manifests: Vec::new(),
            annotations: None,
        },
        Err(e) => return Err(io_err(&index_path)(e)),
    };
    index.manifests.retain(|d| match tag {
        Some(t) => ref_name(d).as_deref() != Some(t),
        None => !(ref_name(d).is_none() && d.digest == top.digest),
    });
    let mut entry = top.descriptor();
    if let Some(t) = tag {
        entry.annotations = Some(BTreeMap::from([(REF_NAME.to_string(), t.to_string())]));
    }
    if let Artifact::Image(image) = artifact {
        entry.platform = Some(image.platform());
    }
    index.manifests.push(entry);
    write_atomic(&index_path, &to_canonical_json(&index)).await?;
    Ok(top)
}

async fn put_manifest(dir: &Path, m: &RawManifest) -> Result<(), LayoutError> {
    let path = blob_path(dir, &m.digest);
    if !present(&path, m.bytes.len() as u64).await {
        write_atomic(&path, &m.bytes).await?;
    }
    Ok(())
}

async fn present(path: &Path, size: u64) -> bool {
    tokio::fs::metadata(path).await.map(|m| m.is_file() && m.len() == size).unwrap_or(false)
}

/// A blob into `blobs/ALG/HEX`: a file hard-linked (copied across filesystems), bytes written, a registry blob
/// streamed and digest-checked. Always through a temporary name, so a crash never leaves a truncated blob.
async fn put_blob(dir: &Path, blob: &Blob, remote: Option<&RegistryClient>) -> Result<(), LayoutError> {
    let d = &blob.descriptor;
    let dest = blob_path(dir, &d.digest);
    if present(&dest, d.size).await {
        return Ok(());
    }
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io_err(parent))?;
    }
    let tmp = dest.with_file_name(format!(".{}.{}.tmp", d.digest.hex(), rand::random::<u32>()));
    let result = match &blob.source {
        BlobSource::Bytes(b) => tokio::fs::write(&tmp, b).await.map_err(io_err(&tmp)),
        BlobSource::File(src) => {
            let (src, to) = (src.clone(), tmp.clone());
            let linked = tokio::task::spawn_blocking(move || {
                std::fs::hard_link(&src, &to).or_else(|_| std::fs::copy(&src, &to).map(|_| ())).map_err(|e| (src, e))
            })
            .await
            .map_err(|e| io_err(&tmp)(io::Error::other(e)))?;
            linked.map_err(|(src, e)| LayoutError::Io { path: src, source: e })
        }
        BlobSource::Registry(name) => match remote {
            Some(client) => client.fetch_blob_to_file(name, d, &tmp).await.map(|_| ()).map_err(LayoutError::from),
            None => Err(LayoutError::NeedsRegistry { digest: d.digest.clone(), name: name.to_string() }),
        },
    };
    match result {
        Ok(()) => tokio::fs::rename(&tmp, &dest).await.map_err(io_err(&dest)),
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(e)
        }
    }
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        rand::random::<u32>()
    ));
    tokio::fs::write(&tmp, bytes).await.map_err(io_err(&tmp))?;
    tokio::fs::rename(&tmp, path).await.map_err(io_err(path))
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, LayoutError> {
    serde_json::from_slice(bytes).map_err(|e| LayoutError::Invalid { path: path.to_path_buf(), detail: e.to_string() })
}

/// Reads the image or index named `reference` (a ref name or a digest; `None` when the layout holds exactly one)
/// from the layout at `dir`, its blobs as files in the layout. Configs are re-serialised the way we write them,
/// so an image from another tool may get a new config digest; one we wrote reads back to the same manifest.
pub fn read_layout(dir: &Path, reference: Option<&str>) -> Result<Artifact, LayoutError> {
    let index_path = dir.join("index.json");
    let index: Index = parse(&index_path, &std::fs::read(&index_path).map_err(io_err(&index_path))?)?;
    let chosen = match reference {
        Some(r) => index.manifests.iter().find(|d| ref_name(d).as_deref() == Some(r) || d.digest.as_str() == r),
        None if index.manifests.len() == 1 => index.manifests.first(),
        None => None,
    };
    let Some(desc) = chosen else {
        return Err(LayoutError::NotFound {
            path: dir.to_path_buf(),
            reference: reference.unwrap_or("(the only image)").to_string(),
            available: index.manifests.iter().map(|d| ref_name(d).unwrap_or_else(|| d.digest.to_string())).collect(),
        });
    };
    if media_type::is_index(&desc.media_type) {
        let inner: Index = parse(&blob_path(dir, &desc.digest), &read_blob(dir, desc, 4 << 20)?)?;
        let images = inner
            .manifests
            .iter()
            .filter(|d| d.platform.as_ref().is_none_or(|p| p.os != "unknown"))
            .map(|d| read_image(dir, d))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Artifact::Index(ImageIndex { images, annotations: inner.annotations.unwrap_or_default() }));
    }
    Ok(Artifact::Image(read_image(dir, desc)?))
}

fn read_image(dir: &Path, desc: &Descriptor) -> Result<Image, LayoutError> {
    let path = blob_path(dir, &desc.digest);
    let manifest: Manifest = parse(&path, &read_blob(dir, desc, 4 << 20)?)?;
    let config_path = blob_path(dir, &manifest.config.digest);
    let config: ImageConfig = parse(&config_path, &read_blob(dir, &manifest.config, 8 << 20)?)?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(LayoutError::Invalid {
            path,
            detail: format!("{} layers but {} diff_ids", manifest.layers.len(), config.rootfs.diff_ids.len()),
        });
    }
    let mut layers = Vec::new();
    for (d, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        let file = blob_path(dir, &d.digest);
        let len = std::fs::metadata(&file).map_err(io_err(&file))?.len();
        if len != d.size {
            return Err(LayoutError::Invalid {
                path: file,
                detail: format!("{len} bytes, the manifest says {}", d.size),
            });
        }
        layers.push(Layer {
            blob: Blob { descriptor: d.clone(), source: BlobSource::File(file) },
            diff_id: diff_id.clone(),
        });
    }
    Ok(Image::from_parts(config, layers).with_annotations(manifest.annotations.unwrap_or_default()))
}

/// A small blob's bytes, checked against its descriptor's digest.
fn read_blob(dir: &Path, d: &Descriptor, max: u64) -> Result<Vec<u8>, LayoutError> {
    let path = blob_path(dir, &d.digest);
    if d.size > max {
        return Err(LayoutError::Invalid {
            path,
            detail: format!("{} bytes is too large for a manifest or config", d.size),
        });
    }
    let bytes = std::fs::read(&path).map_err(io_err(&path))?;
    if d.digest.algorithm() == "sha256" && Digest::of(&bytes) != d.digest {
        return Err(LayoutError::Invalid { path, detail: format!("its content does not hash to {}", d.digest) });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;

    use super::*;
    use crate::image::{ImageName, ImageRef, Platform, digest_file};
    use crate::progress::Quiet;
    use crate::registry::distribution::Distribution;
    use crate::registry::testing::{fast_client, gzip_layer, image};
    use crate::registry::{ClientOptions, push, resolve_image};

    /// Runs a peer tool; a missing one fails the test with the way to install it.
    fn run(tool: &str, args: &[&str]) -> String {
        let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
            panic!("cannot run {tool} ({e}): run scripts/install-test-deps.sh (it installs skopeo and umoci)")
        });
        assert!(out.status.success(), "{tool} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn entries(dir: &Path) -> Vec<(Option<String>, Digest)> {
        let index: Index = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        index.manifests.iter().map(|d| (ref_name(d), d.digest.clone())).collect()
    }

    #[tokio::test]
    async fn skopeo_and_umoci_read_what_we_write_and_rewriting_is_idempotent() {
        let work = tempfile::tempdir().unwrap();
        let out = work.path().join("layout");
        let layer = gzip_layer(work.path(), "l1", &[("hello.txt", b"hello")]);
        let BlobSource::File(layer_src) = layer.blob.source.clone() else { unreachable!() };
        let img = image("linux/amd64", vec![layer.clone()]);
        let m = write_layout(&out, &Artifact::Image(img.clone()), Some("v1"), None).await.unwrap();
        assert_eq!(m.digest, img.manifest().digest);

        let inspected: serde_json::Value =
            serde_json::from_str(&run("skopeo", &["inspect", &format!("oci:{}:v1", out.display())])).unwrap();
        assert_eq!(inspected["Digest"], m.digest.as_str());
        assert_eq!(inspected["Architecture"], "amd64");
        assert_eq!(inspected["Layers"][0], layer.blob.descriptor.digest.as_str());
        assert!(run("umoci", &["ls", "--layout", &out.display().to_string()]).lines().any(|l| l.trim() == "v1"));

        let layer_dst = blob_path(&out, &layer.blob.descriptor.digest);
        assert_eq!(
            std::fs::metadata(&layer_dst).unwrap().ino(),
            std::fs::metadata(&layer_src).unwrap().ino(),
            "hard-linked"
        );
        let config_path = blob_path(&out, &img.config_blob().descriptor.digest);
        let before = std::fs::metadata(&config_path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_layout(&out, &Artifact::Image(img.clone()), Some("v1"), None).await.unwrap();
        assert_eq!(
            std::fs::metadata(&config_path).unwrap().modified().unwrap(),
            before,
            "an existing blob is not rewritten"
        );
        assert_eq!(entries(&out), vec![(Some("v1".into()), m.digest.clone())]);

        let other = image("linux/amd64", vec![gzip_layer(work.path(), "l2", &[("other", b"other")])]);
        write_layout(&out, &Artifact::Image(img.clone()), Some("v2"), None).await.unwrap();
        let m2 = write_layout(&out, &Artifact::Image(other), Some("v1"), None).await.unwrap();
        assert_eq!(entries(&out), vec![(Some("v2".into()), m.digest.clone()), (Some("v1".into()), m2.digest.clone())]);

        let back = read_layout(&out, Some("v2")).unwrap();
        assert_eq!(back.manifest().digest, m.digest, "what we wrote reads back to the same manifest");
        let Artifact::Image(back) = back else { panic!("expected an image") };
        assert_eq!(back.layers()[0].blob.source, BlobSource::File(layer_dst));
        assert!(matches!(read_layout(&out, Some(m2.digest.as_str())), Ok(Artifact::Image(_))), "found by digest too");
        let e = read_layout(&out, Some("nope")).unwrap_err();
        assert!(e.to_string().contains("v2, v1"), "{e}");
        assert!(matches!(read_layout(&out, None), Err(LayoutError::NotFound { .. })), "two images: a name is needed");
    }

    #[tokio::test]
    async fn registry_blobs_are_streamed_in_and_an_index_read_back_pushes_to_the_same_digest() {
        let reg = Distribution::start();
        let work = tempfile::tempdir().unwrap();
        let client = fast_client(ClientOptions::default());
        let base_layer = gzip_layer(work.path(), "base", &[("bin/sh", b"shell")]);
        let base_digest = base_layer.blob.descriptor.digest.clone();
        let base = ImageName::new(&reg.host, "base/img").unwrap();
        push(&client, &base, &Artifact::Image(image("linux/amd64", vec![base_layer])), &["1".into()], &Quiet)
            .await
            .unwrap();
        let r = ImageRef::parse(&format!("{}/base/img:1", reg.host)).unwrap();
        let resolved = resolve_image(&client, &r, &Platform::new("linux", "amd64", None)).await.unwrap();

        let out = work.path().join("single");
        let e = write_layout(&out, &Artifact::Image(resolved.clone()), Some("x"), None).await.unwrap_err();
        assert!(matches!(e, LayoutError::NeedsRegistry { .. }), "{e:?}");
        assert!(!blob_path(&out, &base_digest).exists(), "nothing half-written");

        let arm = image("linux/arm64/v8", vec![gzip_layer(work.path(), "arm", &[("arch", b"arm64")])]);
        let index = Artifact::Index(ImageIndex { images: vec![resolved, arm], annotations: Default::default() });
        let out = work.path().join("multi");
        let m = write_layout(&out, &index, Some("multi"), Some(&client)).await.unwrap();
        assert_eq!(m.digest, index.manifest().digest);
        assert_eq!(digest_file(&blob_path(&out, &base_digest)).unwrap().0, base_digest);
        assert_eq!(reg.requests("GET", &format!("/blobs/{base_digest}")).len(), 1, "streamed from the registry once");
        let raw = run("skopeo", &["inspect", "--raw", &format!("oci:{}:multi", out.display())]);
        assert_eq!(Digest::of(raw.as_bytes()), m.digest);

        let back = read_layout(&out, Some("multi")).unwrap();
        assert!(matches!(back, Artifact::Index(ref i) if i.images.len() == 2));
        assert_eq!(back.manifest().digest, m.digest);
        let target = ImageName::new(&reg.host, "from/layout").unwrap();
        let report = push(&client, &target, &back, &["1".into()], &Quiet).await.unwrap();
        assert_eq!(report.digest, m.digest);
        assert_eq!(report.uploaded, 4, "two configs and two layers, all from the layout's files");
    }

    #[tokio::test]
    async fn a_layout_made_by_umoci_is_read() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("umoci");
        let d = dir.display().to_string();
        run("umoci", &["init", "--layout", &d]);
        run("umoci", &["new", "--image", &format!("{d}:t")]);
        let Artifact::Image(img) = read_layout(&dir, Some("t")).unwrap() else { panic!("expected an image") };
        assert!(img.layers().is_empty());
        assert_eq!(img.config().os, "linux");
    }
}

//! `docker save` archives (`--output docker-archive:FILE`): a tar that `docker load` reads, with `manifest.json`
//! (`Config`, `RepoTags`, `Layers`), the config blob and each layer as its compressed blob (`docker load` sniffs
//! the compression, as it does for go-containerregistry's tarballs). Base layers that stay in a registry are
//! streamed from it into the tar, never held in memory; the file appears whole or not at all (temp file, rename).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::image::{Artifact, Blob, BlobSource, Descriptor, Digest, Image};
use crate::registry::{RegistryClient, RegistryError};

#[derive(Debug, thiserror::Error)]
pub enum DockerArchiveError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(
        "a docker archive holds one image, and this build made {count} (one per platform): set `platforms` to one \
         platform, or use `output: oci:DIR`, which holds them all"
    )]
    MultiPlatform { count: usize },
    #[error("blob {digest} is still in the registry ({name}) and no registry client was given to copy it")]
    NeedsRegistry { digest: Digest, name: String },
}

/// A docker archive to write: where, and the `NAME:TAG` references `docker load` gives the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerArchiveOutput {
    pub path: PathBuf,
    pub repo_tags: Vec<String>,
}

/// One entry of `manifest.json`, as `docker save` writes it.
#[derive(Serialize)]
struct Entry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Where a blob goes inside the archive (docker 25's own `docker save` uses the same names).
fn member(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}

/// Writes `artifact` (a single image) as a docker archive at `path`, named `repo_tags` (`NAME:TAG` each; may be
/// empty). Registry-held layers are fetched with `client`.
pub async fn write_docker_archive(
    path: &Path,
    artifact: &Artifact,
    repo_tags: &[String],
    client: Option<&RegistryClient>,
) -> Result<(), DockerArchiveError> {
    let image = match artifact {
        Artifact::Image(image) => image,
        Artifact::Index(index) => return Err(DockerArchiveError::MultiPlatform { count: index.images.len() }),
    };
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| DockerArchiveError::Io { path: p, source }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent).await.map_err(io(parent))?;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("archive");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", rand::random::<u32>()));
    let result = async {
        let file = tokio::fs::File::create(&tmp).await.map_err(io(&tmp))?;
        let mut w = tokio::io::BufWriter::with_capacity(256 << 10, file);
        write_tar(&mut w, &tmp, image, repo_tags, client, &BTreeSet::new()).await?;
        w.flush().await.map_err(io(&tmp))?;
        let file = w.into_inner();
        file.sync_all().await.map_err(io(&tmp))?;
        tokio::fs::rename(&tmp, path).await.map_err(io(path))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

/// Writes `image` as a docker archive into the stream `w` (the engine's `POST /images/load` reads it, from
/// install's `docker` target and from a split build); `path` only names it in errors. The `held` layers (those
/// the reader has already) are listed in `manifest.json` but not written.
pub(crate) async fn write_tar<W: AsyncWrite + Unpin>(
    w: &mut W,
    path: &Path,
    image: &Image,
    repo_tags: &[String],
    client: Option<&RegistryClient>,
    held: &BTreeSet<Digest>,
) -> Result<(), DockerArchiveError> {
    let io = |source| DockerArchiveError::Io { path: path.to_path_buf(), source };
    let config = image.config_blob();
    let entry = Entry {
        config: member(&config.descriptor.digest),
        repo_tags: repo_tags.to_vec(),
        layers: image.layers().iter().map(|l| member(&l.blob.descriptor.digest)).collect(),
    };
    let manifest = serde_json::to_vec(&[entry]).map_err(|e| io(std::io::Error::other(e)))?;
    let manifest = Blob {
        descriptor: Descriptor::new("application/json", Digest::of(&manifest), manifest.len() as u64),
        source: BlobSource::Bytes(manifest.into()),
    };
    write_member(w, "manifest.json", &manifest, path, client).await?;
    let mut written: Vec<&Digest> = Vec::new();
    let blobs: Vec<&Blob> = std::iter::once(&config).chain(image.layers().iter().map(|l| &l.blob)).collect();
    for blob in blobs {
        // An image may hold the same layer twice; the tar holds it once.
        if written.contains(&&blob.descriptor.digest) || held.contains(&blob.descriptor.digest) {
            continue;
        }
        let name = member(&blob.descriptor.digest);
        write_member(w, &name, blob, path, client).await?;
        written.push(&blob.descriptor.digest);
    }
    // The end of a tar: two zero blocks.
    w.write_all(&[0u8; 1024]).await.map_err(io)
}

/// One tar member: header, the blob's bytes streamed from its source, padding to 512. Its descriptor gives the
/// size to check (and the digest, for registry blobs, which the client checks as it streams).
async fn write_member<W: AsyncWrite + Unpin>(
    w: &mut W,
    name: &str,
    blob: &Blob,
    path: &Path,
    client: Option<&RegistryClient>,
) -> Result<(), DockerArchiveError> {
    let io = |source| DockerArchiveError::Io { path: path.to_path_buf(), source };
    let size = blob.descriptor.size;
    let mut header = tar::Header::new_ustar();
    header.set_path(name).map_err(io)?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    w.write_all(header.as_bytes()).await.map_err(io)?;
    let copied = match &blob.source {
        BlobSource::Bytes(bytes) => {
            w.write_all(bytes).await.map_err(io)?;
            bytes.len() as u64
        }
        BlobSource::File(src) => {
            let src_io = |source| DockerArchiveError::Io { path: src.clone(), source };
            let mut file = tokio::fs::File::open(src).await.map_err(src_io)?;
            tokio::io::copy(&mut file, w).await.map_err(src_io)?
        }
        BlobSource::Registry(from) => {
            let Some(client) = client else {
                let digest = blob.descriptor.digest.clone();
                return Err(DockerArchiveError::NeedsRegistry { digest, name: from.to_string() });
            };
            client.fetch_blob_to(from, &blob.descriptor, w).await?
        }
    };
    if copied != size {
        let msg = format!("{name} should hold {size} bytes, its source gave {copied}");
        return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidData, msg)));
    }
    let pad = (512 - (size % 512) as usize) % 512;
    w.write_all(&[0u8; 512][..pad]).await.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{History, ImageIndex, Layer, Platform, media_type};
    use std::io::Read as _;

    fn layer(bytes: &'static [u8], file: Option<&Path>) -> Layer {
        let source = match file {
            Some(f) => {
                std::fs::write(f, bytes).unwrap();
                BlobSource::File(f.to_path_buf())
            }
            None => BlobSource::Bytes(bytes::Bytes::from_static(bytes)),
        };
        Layer {
            blob: Blob {
                descriptor: Descriptor::new(media_type::OCI_LAYER_GZIP, Digest::of(bytes), bytes.len() as u64),
                source,
            },
            diff_id: Digest::of(b"uncompressed"),
        }
    }

    fn members(path: &Path) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
        let mut out = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push((name, data));
        }
        out
    }

    #[tokio::test]
    async fn manifest_config_and_each_layer_once() {
        let dir = tempfile::tempdir().unwrap();
        let h = || History::default();
        let image = Image::scratch(&Platform::new("linux", "amd64", None))
            .with_layer(layer(b"first layer bytes", Some(&dir.path().join("l1"))), h())
            .with_layer(layer(b"second", None), h())
            .with_layer(layer(b"second", None), h());
        let out = dir.path().join("sub/image.tar");
        let tags = vec!["127.0.0.1:5000/octo/app:v1".to_string()];
        write_docker_archive(&out, &Artifact::Image(image.clone()), &tags, None).await.unwrap();
        let m = members(&out);
        let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
        let config = image.config_blob().descriptor.digest;
        let l1 = Digest::of(b"first layer bytes");
        let l2 = Digest::of(b"second");
        assert_eq!(names, vec!["manifest.json".to_string(), member(&config), member(&l1), member(&l2)]);
        let manifest: serde_json::Value = serde_json::from_slice(&m[0].1).unwrap();
        assert_eq!(
            manifest,
            serde_json::json!([{
                "Config": member(&config),
                "RepoTags": tags,
                "Layers": [member(&l1), member(&l2), member(&l2)],
            }])
        );
        assert_eq!(Digest::of(&m[1].1), config, "the config bytes are the image ID's");
        assert_eq!(m[2].1, b"first layer bytes");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[tokio::test]
    async fn several_platforms_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let images = ["amd64", "arm64"].map(|a| Image::scratch(&Platform::new("linux", a, None))).to_vec();
        let artifact = Artifact::Index(ImageIndex { images, annotations: Default::default() });
        let out = dir.path().join("image.tar");
        let e = write_docker_archive(&out, &artifact, &[], None).await.unwrap_err();
        assert!(matches!(e, DockerArchiveError::MultiPlatform { count: 2 }), "{e:?}");
        assert!(e.to_string().contains("`platforms`"), "{e}");
        assert!(!out.exists());
    }

    #[tokio::test]
    async fn a_short_source_fails_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = layer(b"0123456789", Some(&dir.path().join("l")));
        l.blob.descriptor.size = 20;
        let image = Image::scratch(&Platform::new("linux", "amd64", None)).with_layer(l, History::default());
        let out = dir.path().join("image.tar");
        let e = write_docker_archive(&out, &Artifact::Image(image), &[], None).await.unwrap_err();
        assert!(e.to_string().contains("should hold 20 bytes"), "{e}");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("l")]);
    }
}

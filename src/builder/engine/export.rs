//! Taking the built image out of the engine as an image value for our own push.
//!
//! The engine's `GET /images/{id}/get` is a `docker save` archive, streamed and never held in memory. Its
//! layers are uncompressed tars (`<id>/layer.tar` before Engine 25, `blobs/sha256/<diff_id>` after). The config
//! is kept byte for byte, so the image ID stays the engine's. Then, layer by layer, in the config's
//! `rootfs.diff_ids` order:
//! - a layer whose diff_id equals the base image's at the same depth is the base's blob, still in its registry:
//!   it is skipped in the archive (never stored, compressed or uploaded; the push mounts or HEAD-skips it);
//! - a layer compressed before (same diff_id and codec, in the layer cache) is taken from the cache;
//! - every other layer is compressed on every core as it is read; a large one is announced to the push before
//!   its first byte ([`SinkItem::Growing`]), so its upload streams while it is compressed, and a small one is
//!   handed over once written, so uploads overlap the rest of the export. What a layer is shows before its
//!   bytes: from its name (`blobs/sha256/`), or from its directory's `json`, which comes first and whose v1 ID
//!   hashes the layer's chain ID ([`super::v1_ids`]). Only a layer that neither explains is spooled to the work
//!   directory and hashed first. A layer the archive already holds compressed (an engine whose image store
//!   keeps compressed blobs) is used as it is.
//!
//! When the cache holds the config and every new layer (an unchanged rebuild, which BuildKit answers from its
//! cache with the same image ID), the archive is not read at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::TryStreamExt as _;

use super::client::{Engine, describe};
use super::v1_ids::{chain_ids, depth_of};
use crate::builder::compress::{Compression, write_layer_announced, write_layer_with};
use crate::builder::{BuildError, LayerCache, LayerSink, SinkItem};
use crate::image::{Blob, BlobSource, Descriptor, Digest, Growing, HashingWriter, Image, Layer, media_type};
use crate::progress::{Progress, human_bytes};

/// Entries this small are read into memory (configs, `manifest.json`); larger ones are spooled to disk.
const SMALL: u64 = 4 << 20;

/// Layers from this size on (uncompressed) are streamed up while they are compressed. Below it the upload
/// would gain little, and a finished blob lets the push ask the registry for it first.
const STREAM_FROM: u64 = 16 << 20;

/// What the export needs to know before reading the archive.
pub struct Export<'a> {
    pub work_dir: &'a Path,
    pub compression: Compression,
    pub cache: Option<&'a LayerCache>,
    pub sink: Option<&'a LayerSink>,
}

/// The engine's image `id` as an image value: `base`'s layers where they match, the rest compressed here.
pub async fn export(
    engine: &Engine,
    id: &str,
    base: Option<&Image>,
    opts: &Export<'_>,
    progress: &dyn Progress,
) -> Result<Image, BuildError> {
    let fail = |message: String| BuildError::Engine { endpoint: engine.endpoint(), message };
    let inspect =
        engine.docker.inspect_image(id).await.map_err(|e| fail(format!("inspecting {id}: {}", describe(&e))))?;
    let image_id = inspect
        .id
        .as_deref()
        .unwrap_or(id)
        .parse::<Digest>()
        .map_err(|e| fail(format!("the engine's image ID: {e}")))?;
    let diff_ids = inspect
        .root_fs
        .and_then(|r| r.layers)
        .unwrap_or_default()
        .iter()
        .map(|d| d.parse::<Digest>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("the image's layers: {e}")))?;

    // The base's layers, as deep as they match.
    let base_layers: Vec<Layer> = match base {
        None => Vec::new(),
        Some(b) => {
            b.layers().iter().zip(&diff_ids).take_while(|(l, d)| &l.diff_id == *d).map(|(l, _)| l.clone()).collect()
        }
    };
    let new: Vec<Digest> = diff_ids[base_layers.len()..].to_vec();
    let mut have: HashMap<Digest, Layer> = HashMap::new();
    if let Some(cache) = opts.cache {
        for d in &new {
            if let Some(layer) = cache.get(&layer_key(d, opts.compression)).filter(|l| &l.diff_id == d) {
                have.insert(d.clone(), layer);
            }
        }
    }
    let cached_config = opts
        .cache
        .and_then(|c| c.get(&config_key(&image_id)))
        .and_then(|l| match l.blob.source {
            BlobSource::File(path) => std::fs::read(path).ok().map(Bytes::from),
            _ => None,
        })
        .filter(|bytes| Digest::of(bytes) == image_id);
    progress.info(&format!(
        "image {}: {} layers, {} from the base image, {} new{}",
        image_id.short(),
        diff_ids.len(),
        base_layers.len(),
        new.len(),
        if have.is_empty() { String::new() } else { format!(" ({} already compressed)", have.len()) }
    ));
    for layer in have.values() {
        send(opts.sink, layer);
    }

    let config = match cached_config {
        Some(bytes) if have.len() == new.len() => {
            progress.info("every new layer and the config are in the layer cache: nothing to export");
            bytes
        }
        _ => {
            let wanted = Wanted {
                image_id: image_id.clone(),
                base: base_layers.iter().map(|l| l.diff_id.clone()).collect(),
                new: new.iter().filter(|d| !have.contains_key(*d)).cloned().collect(),
                order: diff_ids.clone(),
            };
            let stream = engine.docker.export_image(id).map_err(|e| io::Error::other(describe(&e)));
            let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
            let (dir, compression, sink) = (opts.work_dir.to_path_buf(), opts.compression, opts.sink.cloned());
            let started = std::time::Instant::now();
            let read =
                tokio::task::spawn_blocking(move || read_archive(reader, &wanted, &dir, compression, sink.as_ref()))
                    .await
                    .map_err(|e| fail(format!("reading the export: {e}")))?
                    .map_err(|e| fail(format!("reading the exported image {id}: {e}")))?;
            progress.info(&format!(
                "exported and compressed {} new layer(s), {} compressed, in {:.1}s ({} compressed as they \
                 streamed, {} spooled first)",
                read.layers.len(),
                human_bytes(read.layers.values().map(|l| l.blob.descriptor.size).sum()),
                started.elapsed().as_secs_f64(),
                read.streamed,
                read.spooled,
            ));
            if let Some(cache) = opts.cache {
                for (d, layer) in &read.layers {
                    record(cache, &layer_key(d, opts.compression), layer, progress);
                }
                if let Some(layer) = config_layer(&read.config, opts.work_dir) {
                    record(cache, &config_key(&image_id), &layer, progress);
                }
            }
            have.extend(read.layers);
            read.config
        }
    };
    let mut layers = base_layers;
    for d in &new {
        let layer = have.remove(d).ok_or_else(|| fail(format!("the export holds no layer with diff_id {d}")))?;
        layers.push(layer);
    }
    Image::from_raw_config(config, layers).map_err(|e| fail(format!("the image config is not valid JSON: {e}")))
}

fn send(sink: Option<&LayerSink>, layer: &Layer) {
    if let Some(sink) = sink {
        // A closed sink (the publisher stopped on an error) is not the export's concern.
        let _ = sink.send(layer.blob.clone().into());
    }
}

fn record(cache: &LayerCache, key: &str, layer: &Layer, progress: &dyn Progress) {
    if let Err(e) = cache.put(key, layer) {
        progress.warning(&format!("could not keep a layer in the layer cache: {e}"));
    }
}

/// The cache key of an engine layer: its diff_id and how it is compressed.
fn layer_key(diff_id: &Digest, compression: Compression) -> String {
    let mut h = HashingWriter::new(io::sink());
    let _ = io::Write::write_all(&mut h, format!("engine layer\n{diff_id}\n{}", compression.cache_key()).as_bytes());
    format!("engine-{}", h.finish().0.hex())
}

/// The cache key of an engine image's config, by the image ID (its digest).
fn config_key(image_id: &Digest) -> String {
    format!("engine-config-{}", image_id.hex())
}

/// The config as a cache record: a "layer" whose blob is the config file and whose diff_id is its digest.
fn config_layer(config: &Bytes, dir: &Path) -> Option<Layer> {
    let digest = Digest::of(config);
    let path = dir.join(format!("config-{}.json", digest.hex()));
    std::fs::write(&path, config).ok()?;
    let descriptor = Descriptor::new(media_type::OCI_CONFIG, digest.clone(), config.len() as u64);
    Some(Layer { blob: Blob { descriptor, source: BlobSource::File(path) }, diff_id: digest })
}

/// What to take from the archive.
struct Wanted {
    image_id: Digest,
    /// diff_ids to skip (the base's).
    base: BTreeSet<Digest>,
    /// diff_ids to compress.
    new: BTreeSet<Digest>,
    /// Every diff_id in order, to pair with `manifest.json`'s layer paths.
    order: Vec<Digest>,
}

/// What the archive gave.
struct Archived {
    config: Bytes,
    layers: BTreeMap<Digest, Layer>,
    /// New layers compressed while they were read, and those spooled and hashed before.
    streamed: usize,
    spooled: usize,
}

/// An entry kept for after the archive is read: `manifest.json` decides what it is.
struct Spooled {
    path: PathBuf,
    digest: Digest,
    size: u64,
}

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `manifest.json` of a `docker save` archive.
#[derive(serde::Deserialize)]
struct SaveManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

fn read_archive(
    reader: impl Read,
    wanted: &Wanted,
    dir: &Path,
    compression: Compression,
    sink: Option<&LayerSink>,
) -> io::Result<Archived> {
    let mut archive = tar::Archive::new(reader);
    let mut layers: BTreeMap<Digest, Layer> = BTreeMap::new();
    let mut config: Option<Bytes> = None;
    let mut small: HashMap<String, Bytes> = HashMap::new();
    let mut spooled: HashMap<String, Spooled> = HashMap::new();
    let chain = chain_ids(&wanted.order);
    // Legacy layer directories whose `json` told which layer their `layer.tar` is.
    let mut known: HashMap<String, Digest> = HashMap::new();
    let (mut streamed, mut spooled_count) = (0, 0);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path()?.to_string_lossy().into_owned();
        let size = entry.size();
        // What it is shows before a byte is read: named by digest, or a legacy layer whose `json` came first.
        let named = name.strip_prefix("blobs/sha256/").and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok());
        if let Some(d) = named.or_else(|| name.strip_suffix("/layer.tar").and_then(|dir| known.get(dir).cloned())) {
            if wanted.base.contains(&d) && !wanted.new.contains(&d) {
                continue;
            }
            if wanted.new.contains(&d) && !layers.contains_key(&d) {
                // A large layer is announced to the push before its first byte and streamed up while it is
                // compressed; a small one goes once written (the push asks the registry for it first).
                let announce = |growing: Growing| {
                    if let Some(sink) = sink {
                        let _ = sink.send(SinkItem::Growing(growing));
                    }
                };
                let streamed_up = sink.is_some() && size >= STREAM_FROM;
                let announce = streamed_up.then_some(&announce as &dyn Fn(Growing));
                let layer =
                    write_layer_announced(dir, compression, announce, |out| io::copy(&mut entry, out).map(drop))?;
                if layer.diff_id != d {
                    return Err(io::Error::other(format!(
                        "{name} does not hold the layer {d} its name or v1 ID says (it is {})",
                        layer.diff_id
                    )));
                }
                if !streamed_up {
                    send(sink, &layer);
                }
                layers.insert(d, layer);
                streamed += 1;
                continue;
            }
        }
        if size <= SMALL {
            let mut bytes = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut bytes)?;
            let bytes = Bytes::from(bytes);
            if let Some(layer_dir) = name.strip_suffix("/json") {
                if let Some(depth) = depth_of(&bytes, &chain) {
                    known.insert(layer_dir.to_string(), wanted.order[depth].clone());
                }
            }
            let digest = Digest::of(&bytes);
            if digest == wanted.image_id {
                config = Some(bytes.clone());
            }
            if wanted.new.contains(&digest) && !layers.contains_key(&digest) {
                let layer = write_layer_with(dir, compression, |out| out.write_all(&bytes))?;
                send(sink, &layer);
                layers.insert(digest, layer);
                streamed += 1;
            } else {
                small.insert(name, bytes);
            }
            continue;
        }
        // A legacy `<id>/layer.tar`, or a blob the name does not explain: spool it and see what it is.
        let file = tempfile::Builder::new().prefix(".export-").tempfile_in(dir)?;
        let mut out = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file.as_file()));
        io::copy(&mut entry, &mut out)?;
        let (digest, size, buffered) = out.finish();
        buffered.into_inner().map_err(|e| e.into_error())?;
        if wanted.new.contains(&digest) && !layers.contains_key(&digest) {
            let mut spool = std::fs::File::open(file.path())?;
            let layer = write_layer_with(dir, compression, |out| io::copy(&mut spool, out).map(drop))?;
            send(sink, &layer);
            layers.insert(digest, layer);
            spooled_count += 1;
        } else if !wanted.base.contains(&digest) {
            let (_, path) = file.keep().map_err(|e| e.error)?;
            spooled.insert(name, Spooled { path, digest, size });
        }
    }
    let config = config.ok_or_else(|| io::Error::other(format!("the archive holds no config {}", wanted.image_id)))?;
    // Layers the archive holds compressed are found through manifest.json: its layer paths are in diff_id order.
    if wanted.new.iter().any(|d| !layers.contains_key(d)) {
        let manifest: Vec<SaveManifest> = small
            .get("manifest.json")
            .map(|b| serde_json::from_slice(b))
            .transpose()
            .map_err(|e| io::Error::other(format!("manifest.json: {e}")))?
            .unwrap_or_default();
        let entry = manifest
            .iter()
            .find(|m| small.get(&m.config).is_some_and(|b| Digest::of(b) == wanted.image_id))
            .ok_or_else(|| io::Error::other("manifest.json does not list the image".to_string()))?;
        for (d, path) in wanted.order.iter().zip(&entry.layers) {
            if !wanted.new.contains(d) || layers.contains_key(d) {
                continue;
            }
            let (digest, size, file) = match (spooled.remove(path), small.get(path)) {
                (Some(s), _) => {
                    let keep = dir.join(format!("{}-{}.blob", s.digest.algorithm(), s.digest.hex()));
                    std::fs::rename(&s.path, &keep)?;
                    (s.digest.clone(), s.size, keep)
                }
                (None, Some(bytes)) => {
                    let digest = Digest::of(bytes);
                    let keep = dir.join(format!("{}-{}.blob", digest.algorithm(), digest.hex()));
                    std::fs::write(&keep, bytes)?;
                    (digest, bytes.len() as u64, keep)
                }
                (None, None) => continue,
            };
            let media = sniff(&file)?
                .ok_or_else(|| io::Error::other(format!("{path} is neither the layer {d} nor a compressed layer")))?;
            let layer = Layer {
                blob: Blob { descriptor: Descriptor::new(media, digest, size), source: BlobSource::File(file) },
                diff_id: d.clone(),
            };
            send(sink, &layer);
            layers.insert(d.clone(), layer);
        }
    }
    Ok(Archived { config, layers, streamed, spooled: spooled_count })
}

/// The layer media type of a compressed file, from its magic bytes; `None` for anything else.
fn sniff(path: &Path) -> io::Result<Option<&'static str>> {
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(path)?.read(&mut magic)?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Some(media_type::OCI_LAYER_GZIP),
        [0x28, 0xb5, 0x2f, 0xfd] => Some(media_type::OCI_LAYER_ZSTD),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }

    /// A `docker save` archive as Engine 20.10 writes it: layers under `<id>/layer.tar` in name order, then the
    /// config and `manifest.json`.
    fn legacy_archive(layers: &[&[u8]], config: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut paths = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let path = format!("{i:064x}/layer.tar");
            add(&mut b, &path, l);
            paths.push(path);
        }
        let config_name = format!("{}.json", Digest::of(config).hex());
        add(&mut b, &config_name, config);
        let manifest = serde_json::json!([{ "Config": config_name, "RepoTags": null, "Layers": paths }]);
        add(&mut b, "manifest.json", manifest.to_string().as_bytes());
        b.into_inner().unwrap()
    }

    #[test]
    fn base_layers_are_skipped_and_new_ones_compressed_and_sent() {
        let dir = tempfile::tempdir().unwrap();
        let base = vec![1u8; 5 << 20];
        let new_big = vec![2u8; 6 << 20];
        let new_small = b"small layer".to_vec();
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
        let archive = legacy_archive(&[&new_big, &base, &new_small], &config);
        let wanted = Wanted {
            image_id: Digest::of(&config),
            base: BTreeSet::from([Digest::of(&base)]),
            new: BTreeSet::from([Digest::of(&new_big), Digest::of(&new_small)]),
            order: vec![Digest::of(&base), Digest::of(&new_big), Digest::of(&new_small)],
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let read = read_archive(archive.as_slice(), &wanted, dir.path(), Compression::Gzip, Some(&tx)).unwrap();
        assert_eq!(read.config, config);
        assert_eq!(read.layers.len(), 2);
        for (d, layer) in &read.layers {
            assert_eq!(&layer.diff_id, d);
            let BlobSource::File(path) = &layer.blob.source else { panic!("a file") };
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_end(&mut tar).unwrap();
            assert_eq!(&Digest::of(&tar), d, "the blob decompresses to the layer");
        }
        let mut sent = 0;
        while rx.try_recv().is_ok() {
            sent += 1;
        }
        assert_eq!(sent, 2, "each new layer went to the push as soon as it was written");
        assert_eq!(
            (read.streamed, read.spooled),
            (1, 1),
            "without `json`, a large new layer is spooled and hashed first"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".export-"))
            .collect();
        assert!(left.is_empty(), "no spool is left behind: {left:?}");
    }

    /// Engine 20.10's archive with each directory's `json` before its `layer.tar`, as `docker save` writes it:
    /// every layer is known before it is read, so none is spooled, and the base's is not compressed.
    #[test]
    fn legacy_layers_known_by_their_v1_ids_are_compressed_as_they_stream() {
        let dir = tempfile::tempdir().unwrap();
        let (base, new_big, new_small) = (vec![1u8; 5 << 20], vec![2u8; 6 << 20], b"small layer".to_vec());
        let order = vec![Digest::of(&base), Digest::of(&new_big), Digest::of(&new_small)];
        let chain = chain_ids(&order);
        let mut parent: Option<String> = None;
        let mut dirs = Vec::new();
        for (i, bytes) in [&base, &new_big, &new_small].into_iter().enumerate() {
            let (id, json) = super::super::v1_ids::legacy_json(&chain[i], parent.as_deref());
            dirs.push((id.clone(), json, bytes.clone()));
            parent = Some(id);
        }
        dirs.sort();
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
        let mut b = tar::Builder::new(Vec::new());
        for (id, json, layer) in &dirs {
            add(&mut b, &format!("{id}/VERSION"), b"1.0");
            add(&mut b, &format!("{id}/json"), json.as_bytes());
            add(&mut b, &format!("{id}/layer.tar"), layer);
        }
        add(&mut b, &format!("{}.json", Digest::of(&config).hex()), &config);
        let archive = b.into_inner().unwrap();
        let wanted = Wanted {
            image_id: Digest::of(&config),
            base: BTreeSet::from([order[0].clone()]),
            new: BTreeSet::from([order[1].clone(), order[2].clone()]),
            order: order.clone(),
        };
        let read = read_archive(archive.as_slice(), &wanted, dir.path(), Compression::Gzip, None).unwrap();
        assert_eq!((read.streamed, read.spooled), (2, 0), "both new layers compressed as they were read");
        assert_eq!(read.layers.keys().cloned().collect::<BTreeSet<_>>(), wanted.new);
        for (d, layer) in &read.layers {
            assert_eq!(&layer.diff_id, d);
        }
    }

    #[test]
    fn a_layer_the_archive_holds_compressed_is_used_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let tar_bytes = vec![3u8; 5 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar_bytes).unwrap();
        let gz = gz.finish().unwrap();
        let config = br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
        let archive = legacy_archive(&[&gz], &config);
        let wanted = Wanted {
            image_id: Digest::of(&config),
            base: BTreeSet::new(),
            new: BTreeSet::from([Digest::of(&tar_bytes)]),
            order: vec![Digest::of(&tar_bytes)],
        };
        let read = read_archive(archive.as_slice(), &wanted, dir.path(), Compression::Gzip, None).unwrap();
        let layer = &read.layers[&Digest::of(&tar_bytes)];
        assert_eq!(layer.blob.descriptor.digest, Digest::of(&gz), "not compressed again");
        assert_eq!(layer.blob.descriptor.media_type, media_type::OCI_LAYER_GZIP);
    }

    #[test]
    fn a_missing_config_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let archive = legacy_archive(&[b"x"], b"{}");
        let wanted = Wanted {
            image_id: Digest::of(b"another config"),
            base: BTreeSet::new(),
            new: BTreeSet::new(),
            order: Vec::new(),
        };
        let e = read_archive(archive.as_slice(), &wanted, dir.path(), Compression::Gzip, None).err().unwrap();
        assert!(e.to_string().contains("no config"), "{e}");
    }
}

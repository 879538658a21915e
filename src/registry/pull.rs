//! Reading images from a registry without downloading their layers: base-image resolution for builds (the
//! manifest through an index, for the wanted platform, and the config), and [`read_images`], which keeps every
//! manifest and config byte for byte (images that only move: merge, install). Layers become
//! `BlobSource::Registry` references and are never downloaded here.

use serde::de::DeserializeOwned;

use super::{RegistryClient, RegistryError};
use crate::image::{
    Blob, BlobSource, Descriptor, Digest, Image, ImageConfig, ImageRef, Index, Layer, Manifest, Platform, RawManifest,
    media_type,
};

/// The image `r` names for `platform`, its layers left in the registry.
pub async fn resolve_image(client: &RegistryClient, r: &ImageRef, platform: &Platform) -> Result<Image, RegistryError> {
    let top = client.get_manifest(&r.name, r.reference()).await?;
    let (raw, via_index) = if media_type::is_index(&top.media_type) {
        let index: Index = parse(r, &top, "index")?;
        let Some(desc) = pick_platform(&index.manifests, platform) else {
            return Err(RegistryError::NoMatchingPlatform {
                reference: r.to_string(),
                wanted: platform.to_string(),
                available: platforms_of(&index.manifests).iter().map(Platform::to_string).collect(),
            });
        };
        (client.get_manifest(&r.name, desc.digest.as_str()).await?, true)
    } else {
        (top, false)
    };
    if !media_type::is_manifest(&raw.media_type) {
        return Err(RegistryError::NotAnImage {
            reference: r.to_string(),
            detail: format!("its manifest has media type {}", raw.media_type),
        });
    }
    let manifest: Manifest = parse(r, &raw, "manifest")?;
    let config = read_config(client, r, &manifest.config).await?;
    let found = config.platform();
    if !via_index && !config.architecture.is_empty() && !platform_matches(&found, platform) {
        return Err(RegistryError::NoMatchingPlatform {
            reference: r.to_string(),
            wanted: platform.to_string(),
            available: vec![found.to_string()],
        });
    }
    let layers = layers_of(r, &raw.digest, &manifest, &config)?;
    Ok(Image::from_parts(config, layers))
}

/// A manifest's layers, left in `r`'s repository, paired with the config's diff_ids (which must be as many).
fn layers_of(
    r: &ImageRef,
    digest: &Digest,
    manifest: &Manifest,
    config: &ImageConfig,
) -> Result<Vec<Layer>, RegistryError> {
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(RegistryError::NotAnImage {
            reference: r.to_string(),
            detail: format!(
                "{digest} lists {} layers but its config has {} diff_ids",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        });
    }
    Ok(manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .map(|(desc, diff_id)| Layer {
            blob: Blob { descriptor: desc.clone(), source: BlobSource::Registry(r.name.clone()) },
            diff_id: diff_id.clone(),
        })
        .collect())
}

/// Every image `r` names, as the registry holds it: the one image, or each image of its index with the entry's
/// platform and annotations (attestation manifests included). Manifests and configs keep their bytes; layers stay
/// in `r`'s repository.
pub async fn read_images(client: &RegistryClient, r: &ImageRef) -> Result<Vec<Image>, RegistryError> {
    let top = client.get_manifest(&r.name, r.reference()).await?;
    if !media_type::is_index(&top.media_type) {
        return Ok(vec![read_manifest(client, r, top).await?]);
    }
    let index: Index = parse(r, &top, "index")?;
    let mut images = Vec::new();
    for entry in &index.manifests {
        if !media_type::is_manifest(&entry.media_type) {
            return Err(RegistryError::NotAnImage {
                reference: r.to_string(),
                detail: format!("its index lists {} of media type {}", entry.digest, entry.media_type),
            });
        }
        let raw = client.get_manifest(&r.name, entry.digest.as_str()).await?;
        let image = read_manifest(client, r, raw).await?;
        images.push(image.with_index_entry(entry.platform.clone(), entry.annotations.clone().unwrap_or_default()));
    }
    Ok(images)
}

/// The image `r` names for `platform`, kept byte for byte (manifest and config), its layers left in the registry:
/// from an index, the entry for `platform`; a single image is taken whatever its platform unless `strict`. What
/// `install` moves: the manifest and its digest stay the registry's.
pub async fn read_image_for(
    client: &RegistryClient,
    r: &ImageRef,
    platform: &Platform,
    strict: bool,
) -> Result<Image, RegistryError> {
    let top = client.get_manifest(&r.name, r.reference()).await?;
    if !media_type::is_index(&top.media_type) {
        let image = read_manifest(client, r, top).await?;
        if strict && !platform_matches(&image.platform(), platform) {
            return Err(RegistryError::NoMatchingPlatform {
                reference: r.to_string(),
                wanted: platform.to_string(),
                available: vec![image.platform().to_string()],
            });
        }
        return Ok(image);
    }
    let index: Index = parse(r, &top, "index")?;
    let Some(entry) = pick_platform(&index.manifests, platform) else {
        return Err(RegistryError::NoMatchingPlatform {
            reference: r.to_string(),
            wanted: platform.to_string(),
            available: platforms_of(&index.manifests).iter().map(Platform::to_string).collect(),
        });
    };
    // Asked by digest, the client checks the bytes against it.
    let raw = client.get_manifest(&r.name, entry.digest.as_str()).await?;
    let image = read_manifest(client, r, raw).await?;
    Ok(image.with_index_entry(entry.platform.clone(), entry.annotations.clone().unwrap_or_default()))
}

/// One image manifest of `r` and its config, both kept as read.
async fn read_manifest(client: &RegistryClient, r: &ImageRef, raw: RawManifest) -> Result<Image, RegistryError> {
    let manifest: Manifest = parse(r, &raw, "manifest")?;
    let config_bytes = client.fetch_blob_bytes(&r.name, &manifest.config).await?;
    let invalid = |e: serde_json::Error| RegistryError::Protocol {
        registry: r.name.registry.clone(),
        message: format!("the config of {r} ({}) is not an image config: {e}", manifest.config.digest),
    };
    let config: ImageConfig = serde_json::from_slice(&config_bytes).map_err(invalid)?;
    let layers = layers_of(r, &raw.digest, &manifest, &config)?;
    Image::from_registry(&r.name, raw, config_bytes, layers).map_err(invalid)
}

/// The platforms `r` offers: its index's entries, or the one its config names.
pub async fn resolve_index(client: &RegistryClient, r: &ImageRef) -> Result<Vec<Platform>, RegistryError> {
    let top = client.get_manifest(&r.name, r.reference()).await?;
    if media_type::is_index(&top.media_type) {
        let index: Index = parse(r, &top, "index")?;
        return Ok(platforms_of(&index.manifests));
    }
    let manifest: Manifest = parse(r, &top, "manifest")?;
    let config = read_config(client, r, &manifest.config).await?;
    Ok(vec![config.platform()])
}

async fn read_config(client: &RegistryClient, r: &ImageRef, desc: &Descriptor) -> Result<ImageConfig, RegistryError> {
    if desc.media_type != media_type::OCI_CONFIG && desc.media_type != media_type::DOCKER_CONFIG {
        return Err(RegistryError::NotAnImage {
            reference: r.to_string(),
            detail: format!("its config has media type {} (an artifact, not an image)", desc.media_type),
        });
    }
    let bytes = client.fetch_blob_bytes(&r.name, desc).await?;
    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
        registry: r.name.registry.clone(),
        message: format!("the config of {r} is not a valid image config: {e}"),
    })
}

fn parse<T: DeserializeOwned>(r: &ImageRef, raw: &RawManifest, kind: &str) -> Result<T, RegistryError> {
    serde_json::from_slice(&raw.bytes).map_err(|e| RegistryError::Protocol {
        registry: r.name.registry.clone(),
        message: format!("the {kind} {} of {r} is not valid: {e}", raw.digest),
    })
}

/// Real platforms of an index (attestation entries, `unknown/unknown`, are not images).
fn platforms_of(manifests: &[Descriptor]) -> Vec<Platform> {
    manifests
        .iter()
        .filter_map(|d| d.platform.clone())
        .filter(|p| p.os != "unknown" && p.architecture != "unknown")
        .collect()
}

/// The first entry for `wanted`.
pub(crate) fn pick_platform<'a>(manifests: &'a [Descriptor], wanted: &Platform) -> Option<&'a Descriptor> {
    manifests.iter().find(|d| d.platform.as_ref().is_some_and(|p| platform_matches(p, wanted)))
}

/// os and architecture equal; the variant compared only when wanted, with each architecture's default variant
/// filled in (`linux/arm64` is `v8`, `linux/arm` is `v7`, as containerd normalises them).
pub(crate) fn platform_matches(candidate: &Platform, wanted: &Platform) -> bool {
    if candidate.os != wanted.os || candidate.architecture != wanted.architecture {
        return false;
    }
    let normal = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", None) => Some("v8".to_string()),
        ("arm", None) => Some("v7".to_string()),
        (_, v) => v.map(str::to_string),
    };
    match (wanted.variant.is_some() || wanted.architecture == "arm", normal(wanted), normal(candidate)) {
        (false, _, _) => true,
        (true, w, c) => w == c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Digest;

    fn desc(p: Option<&str>) -> Descriptor {
        let mut d = Descriptor::new(media_type::OCI_MANIFEST, Digest::of(p.unwrap_or("none").as_bytes()), 1);
        d.platform = p.and_then(Platform::parse);
        d
    }

    #[test]
    fn platform_matching_table() {
        let p = |s: &str| Platform::parse(s).unwrap();
        let table = [
            ("linux/amd64", "linux/amd64", true),
            ("linux/arm64/v8", "linux/arm64", true),
            ("linux/arm64", "linux/arm64/v8", true),
            ("linux/arm64/v8", "linux/arm64/v8", true),
            ("linux/arm/v6", "linux/arm/v7", false),
            ("linux/arm/v7", "linux/arm", true),
            ("linux/arm", "linux/arm/v7", true),
            ("linux/arm/v6", "linux/arm", false),
            ("linux/amd64/v3", "linux/amd64", true),
            ("linux/amd64", "linux/amd64/v3", false),
            ("windows/amd64", "linux/amd64", false),
            ("linux/arm64", "linux/amd64", false),
        ];
        for (candidate, wanted, want) in table {
            assert_eq!(platform_matches(&p(candidate), &p(wanted)), want, "{candidate} for {wanted}");
        }
    }

    #[test]
    fn picks_from_an_index_and_ignores_attestations() {
        let m =
            vec![desc(Some("unknown/unknown")), desc(Some("linux/amd64")), desc(Some("linux/arm64/v8")), desc(None)];
        let got = pick_platform(&m, &Platform::parse("linux/arm64").unwrap()).unwrap();
        assert_eq!(got.platform.as_ref().unwrap().to_string(), "linux/arm64/v8");
        assert!(pick_platform(&m, &Platform::parse("linux/s390x").unwrap()).is_none());
        let names: Vec<String> = platforms_of(&m).iter().map(Platform::to_string).collect();
        assert_eq!(names, vec!["linux/amd64", "linux/arm64/v8"]);
    }
}

//! Which layer a `<v1 id>/` directory of a legacy `docker save` archive holds, known before its `layer.tar`.
//!
//! Engines before 25 name a saved layer by its v1 ID, and write the directories in the order of those IDs, so
//! the name says nothing of whether a layer is the base's (skip it) or a new one (compress it). Hashing the
//! layer's bytes tells, but only once they are all read: the layer would have to be spooled, then compressed,
//! and reading and compressing could not overlap. Yet the v1 ID is a hash too, of things the archive shows
//! first: moby's `image/v1.CreateID` hashes the directory's `json` (the v1 image, without `id` and `parent`)
//! with `layer_id` = the layer's chain ID and `parent` = the parent's v1 ID, as Go marshals a map: keys sorted,
//! values as they are. Each directory's `VERSION` and `json` come before its `layer.tar` (the archive is written
//! by walking a directory in name order), so the `json` gives the layer's depth, and with it its diff_id, before
//! a byte of the layer is read. moby sets `os` on a saved v1 image after computing the ID of every layer but the
//! top one, so the ID is tried with and without `os`.
//!
//! A match is a sha256 preimage of the engine's own ID, so it cannot be wrong by chance; and the layer's diff_id
//! is still checked once it is compressed. When nothing matches (another engine's format), the caller falls
//! back to spooling and hashing the layer.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};

use crate::image::Digest;

/// The chain IDs of a layer stack: `chain[0] = diff_ids[0]`, `chain[i] = sha256(chain[i-1] + " " + diff_ids[i])`.
pub(super) fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match chain.last() {
            None => d.clone(),
            Some(parent) => Digest::of(format!("{parent} {d}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}

/// The depth (index into `chain`) of the layer whose v1 image is `json`, or `None` when its ID matches none.
pub(super) fn depth_of(json: &[u8], chain: &[Digest]) -> Option<usize> {
    let mut fields: BTreeMap<String, &RawValue> = serde_json::from_slice(json).ok()?;
    let id: String = serde_json::from_str(fields.remove("id")?.get()).ok()?;
    let parent: Option<String> = match fields.remove("parent") {
        Some(raw) => Some(serde_json::from_str(raw.get()).ok()?),
        None => None,
    };
    let without_os = {
        let mut f = fields.clone();
        f.remove("os").map(|_| f)
    };
    // The first layer has no parent; any other has one.
    let depths = match parent {
        None => 0..chain.len().min(1),
        Some(_) => 1..chain.len(),
    };
    for variant in std::iter::once(&fields).chain(without_os.as_ref()) {
        for depth in depths.clone() {
            if hex::encode(create_id(variant, &chain[depth], parent.as_deref())) == id {
                return Some(depth);
            }
        }
    }
    None
}

/// moby's `v1.CreateID`: the sha256 of the v1 image's fields plus `layer_id` and `parent`, marshalled as Go
/// marshals a `map[string]*json.RawMessage` (sorted keys, no spaces, each value's bytes as they were written).
fn create_id(fields: &BTreeMap<String, &RawValue>, chain_id: &Digest, parent_hex: Option<&str>) -> [u8; 32] {
    let layer_id = serde_json::to_string(chain_id.as_str()).unwrap_or_default();
    let parent = parent_hex.map(|p| serde_json::to_string(&format!("sha256:{p}")).unwrap_or_default());
    let mut all: BTreeMap<&str, &str> = fields.iter().map(|(k, v)| (k.as_str(), v.get())).collect();
    all.insert("layer_id", &layer_id);
    if let Some(p) = &parent {
        all.insert("parent", p);
    }
    let mut h = Sha256::new();
    h.update(b"{");
    for (i, (k, v)) in all.iter().enumerate() {
        if i > 0 {
            h.update(b",");
        }
        h.update(serde_json::to_string(k).unwrap_or_default().as_bytes());
        h.update(b":");
        h.update(v.as_bytes());
    }
    h.update(b"}");
    h.finalize().into()
}

/// A directory's `json` as moby writes it for a layer that is not the top one: `{"id":…,"parent":…,…}`.
#[cfg(test)]
pub(super) fn legacy_json(chain_id: &Digest, parent_hex: Option<&str>) -> (String, String) {
    let created = RawValue::from_string("\"1970-01-01T00:00:00Z\"".into()).unwrap();
    let fields = BTreeMap::from([("created".to_string(), &*created)]);
    let id = hex::encode(create_id(&fields, chain_id, parent_hex));
    let parent = parent_hex.map(|p| format!(r#","parent":"{p}""#)).unwrap_or_default();
    (id.clone(), format!(r#"{{"id":"{id}"{parent},"created":"1970-01-01T00:00:00Z","os":"linux"}}"#))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `docker save` of Debian's dockerd 20.10.24 wrote for a BuildKit image (a `docker import`ed base, a
    /// RUN, a COPY, a CMD with `&<>`): each directory's `json`, and the image's diff_ids.
    const BASE: &str = r#"{"id":"ebff2d5a73bc222218bf870ffc7861ae4653eccb3b2aeffd75316f700fb74eef","created":"1970-01-01T00:00:00Z","container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"os":"linux"}"#;
    const RUN: &str = r#"{"id":"56189219339842ca62f70bfef969cc0818df87b4854dd71ce5280c85a8b072d6","parent":"ebff2d5a73bc222218bf870ffc7861ae4653eccb3b2aeffd75316f700fb74eef","created":"1970-01-01T00:00:00Z","container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"os":"linux"}"#;
    const TOP: &str = r#"{"id":"6cb8706e003a8029053598141a7f74615425d98dfa10309a37d949e795531bea","parent":"56189219339842ca62f70bfef969cc0818df87b4854dd71ce5280c85a8b072d6","created":"2026-12-05T06:46:53.796192961Z","container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/busybox","echo","a\u0026b\u003cc\u003e"],"ArgsEscaped":true,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"architecture":"amd64","os":"linux"}"#;

    fn diff_ids() -> Vec<Digest> {
        [
            "sha256:2f7f86f2f8a95cf6fddc973c16b3fdc208c6c9576500d137edcd652cc1803962",
            "sha256:99e7f47cdaabb54df9a222923005d18a8cfde9daa7792f3220e124631a397dd6",
            "sha256:42d4032f042798c154dc83e597b0d11b45a7a79120a3ea6fb0096d8f478f6856",
        ]
        .iter()
        .map(|d| d.parse().unwrap())
        .collect()
    }

    #[test]
    fn each_directory_of_a_real_save_is_matched_to_its_depth() {
        let chain = chain_ids(&diff_ids());
        assert_eq!(depth_of(BASE.as_bytes(), &chain), Some(0));
        assert_eq!(depth_of(RUN.as_bytes(), &chain), Some(1));
        assert_eq!(depth_of(TOP.as_bytes(), &chain), Some(2));
    }

    #[test]
    fn another_stack_or_an_altered_json_matches_nothing() {
        let mut other = diff_ids();
        other[0] = Digest::of(b"another base");
        let chain = chain_ids(&other);
        assert_eq!(depth_of(RUN.as_bytes(), &chain), None, "the chain differs below");
        let chain = chain_ids(&diff_ids());
        assert_eq!(depth_of(TOP.replace("a\\u0026b", "a&b").as_bytes(), &chain), None, "bytes are hashed as written");
        assert_eq!(depth_of(BASE.replace("1970", "1971").as_bytes(), &chain), None);
        assert_eq!(depth_of(b"not json", &chain), None);
        assert_eq!(depth_of(br#"{"created":"x"}"#, &chain), None, "no id");
        assert_eq!(depth_of(BASE.as_bytes(), &[]), None);
    }

    #[test]
    fn chain_ids_follow_the_oci_image_spec() {
        let d = diff_ids();
        let chain = chain_ids(&d);
        assert_eq!(chain[0], d[0]);
        assert_eq!(chain[1], Digest::of(format!("{} {}", d[0], d[1]).as_bytes()));
        assert_eq!(chain[2], Digest::of(format!("{} {}", chain[1], d[2]).as_bytes()));
    }
}

//! Package contents for the prune tests, pushed straight to a test registry with curl: small images (a shared
//! layer, a config per platform), two-platform indexes with a buildx-style attestation manifest, cosign-style
//! signatures (`sha256-<digest>.sig`) and OCI referrers (`subject`). Many manifests go up in one curl process
//! (`--next`), so a package of hundreds of versions is quick to fill.

use std::process::Command;

use serde_json::{Value, json};

use super::image::{Entry, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, gzip_layer};
use super::registry::Registry;
use super::{run, sha256_digest, tool};

/// A manifest or index as pushed: its digest and bytes.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: String,
    pub bytes: Vec<u8>,
    pub media_type: String,
}

impl Pushed {
    /// The `sha256-<hex>` prefix of the cosign and referrers tag schemes.
    pub fn tag_prefix(&self) -> String {
        self.digest.replace(':', "-")
    }

    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.bytes.len()})
    }
}

/// Pushes blobs and manifests to one repository of a registry, as its configured user.
pub struct Pusher<'a> {
    registry: &'a Registry,
    repo: String,
    layer: Value,
}

impl<'a> Pusher<'a> {
    /// Also uploads the one small layer every image shares.
    pub fn new(registry: &'a Registry, repo: &str) -> Pusher<'a> {
        let mut p = Pusher { registry, repo: repo.to_string(), layer: Value::Null };
        let (layer, _) = gzip_layer(vec![Entry::File("hello.txt", 0o644, b"hello from the prune tests\n".to_vec())]);
        p.layer = p.blob(OCI_LAYER_GZIP, &layer);
        p
    }

    /// Uploads a blob (POST, then PUT to the upload's location); returns its descriptor.
    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = sha256_digest(bytes);
        let start = self.registry.curl("POST", &format!("/v2/{}/blobs/uploads/", self.repo), &[], None);
        assert_eq!(start.status, 202, "starting an upload: {}", start.text());
        let location = start.header("location").expect("upload location").to_string();
        let path = location.strip_prefix(&self.registry.url()).unwrap_or(&location);
        let sep = if path.contains('?') { '&' } else { '?' };
        let done = self.registry.curl("PUT", &format!("{path}{sep}digest={digest}"), &[], Some(bytes));
        assert_eq!(done.status, 201, "finishing the upload of {digest}: {}", done.text());
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    /// A config blob for `os/arch`, made distinct by `note`.
    pub fn config(&self, arch: &str, note: &str) -> Value {
        let config = json!({
            "architecture": arch, "os": "linux",
            "config": {"Labels": {"note": note}},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(note.as_bytes())]}
        });
        self.blob(OCI_CONFIG, &serde_json::to_vec(&config).expect("config JSON"))
    }

    /// An image manifest (not pushed) over the shared layer.
    pub fn image(&self, config: &Value, annotations: Value) -> Pushed {
        manifest(json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [self.layer],
            "annotations": annotations
        }))
    }

    /// PUTs each `(reference, manifest)` (a tag or the digest), in one curl process; panics unless every one
    /// answers 201.
    pub fn put(&self, items: &[(String, &Pushed)]) {
        if items.is_empty() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = self.registry.auth_args("PUT", &format!("/v2/{}/manifests/x", self.repo), false);
        let mut cmd = Command::new(tool("curl"));
        for (i, (reference, m)) in items.iter().enumerate() {
            if i > 0 {
                cmd.arg("--next");
            }
            let file = dir.path().join(format!("{i}.json"));
            std::fs::write(&file, &m.bytes).expect("write manifest");
            cmd.args([
                "-sS",
                "-X",
                "PUT",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}\\n",
                "-A",
                super::http::HARNESS_USER_AGENT,
            ])
            .args(["-H", &format!("Content-Type: {}", m.media_type)])
            .arg("--data-binary")
            .arg(format!("@{}", file.display()))
            .args(&auth)
            .arg(format!("{}/v2/{}/manifests/{reference}", self.registry.url(), self.repo));
        }
        let out = run(&mut cmd);
        let codes = String::from_utf8_lossy(&out.stdout).into_owned();
        let codes: Vec<&str> = codes.lines().collect();
        assert!(
            out.status.success() && codes.len() == items.len() && codes.iter().all(|c| *c == "201"),
            "PUT of {} manifests: statuses {codes:?}, curl said {}",
            items.len(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Pushes a two-platform index (linux/amd64, linux/arm64) tagged `tags`, its children untagged; with
    /// `attestation`, a buildx-style attestation manifest for the amd64 image (`unknown/unknown`,
    /// `vnd.docker.reference.digest`). Returns the index and its children, the attestation last.
    pub fn index(&self, note: &str, tags: &[&str], attestation: bool) -> (Pushed, Vec<Pushed>) {
        let mut children: Vec<Pushed> = ["amd64", "arm64"]
            .iter()
            .map(|arch| self.image(&self.config(arch, &format!("{note} {arch}")), json!({})))
            .collect();
        let mut descriptors: Vec<Value> = children
            .iter()
            .zip(["amd64", "arm64"])
            .map(|(c, arch)| {
                let mut d = c.descriptor();
                d["platform"] = json!({"os": "linux", "architecture": arch});
                d
            })
            .collect();
        if attestation {
            let statement = json!({"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://slsa.dev/provenance/v0.2", "note": note});
            let layer = self.blob("application/vnd.in-toto+json", &serde_json::to_vec(&statement).expect("JSON"));
            let config = self
                .blob(OCI_CONFIG, format!(r#"{{"architecture":"unknown","os":"unknown","note":"{note}"}}"#).as_bytes());
            let att = manifest(json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]
            }));
            let mut d = att.descriptor();
            d["platform"] = json!({"os": "unknown", "architecture": "unknown"});
            d["annotations"] = json!({
                "vnd.docker.reference.digest": children[0].digest,
                "vnd.docker.reference.type": "attestation-manifest"
            });
            descriptors.push(d);
            children.push(att);
        }
        let index = manifest(json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}));
        let mut puts: Vec<(String, &Pushed)> = children.iter().map(|c| (c.digest.clone(), c)).collect();
        puts.push((index.digest.clone(), &index));
        puts.extend(tags.iter().map(|t| (t.to_string(), &index)));
        self.put(&puts);
        (index, children)
    }

    /// Pushes a cosign-style signature of `subject`, tagged `sha256-<hex>.sig`.
    pub fn signature(&self, subject: &Pushed) -> Pushed {
        let payload = json!({"critical": {"image": {"docker-manifest-digest": subject.digest}, "type": "cosign container image signature"}});
        let mut layer =
            self.blob("application/vnd.dev.cosign.simplesigning.v1+json", &serde_json::to_vec(&payload).expect("JSON"));
        layer["annotations"] = json!({"dev.cosignproject.cosign/signature": "MEUCIQDtest"});
        let config = self.blob(
            OCI_CONFIG,
            format!(r#"{{"architecture":"","os":"","note":"sig of {}"}}"#, subject.digest).as_bytes(),
        );
        let sig = manifest(json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}));
        self.put(&[(format!("{}.sig", subject.tag_prefix()), &sig)]);
        sig
    }

    /// Pushes an untagged OCI referrer (an SBOM artifact) whose `subject` is `subject`.
    pub fn referrer(&self, subject: &Pushed) -> Pushed {
        let sbom = self.blob("application/spdx+json", br#"{"spdxVersion":"SPDX-2.3","name":"prune-test"}"#);
        let config = self.blob(
            OCI_CONFIG,
            format!(r#"{{"architecture":"","os":"","note":"sbom of {}"}}"#, subject.digest).as_bytes(),
        );
        let r = manifest(json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
            "config": config, "layers": [sbom], "subject": subject.descriptor()
        }));
        self.put(&[(r.digest.clone(), &r)]);
        r
    }
}

fn manifest(value: Value) -> Pushed {
    let bytes = serde_json::to_vec(&value).expect("manifest JSON");
    let media_type = value["mediaType"].as_str().unwrap_or(OCI_MANIFEST).to_string();
    Pushed { digest: sha256_digest(&bytes), bytes, media_type }
}

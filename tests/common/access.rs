//! The registry's access log, parsed, and the counts tests ask for (blob downloads, uploads, mounts, manifest
//! PUTs). The harness's own requests (User-Agent `octopush-test-harness`) and 401 auth challenges are left out
//! of the counts, so a count says what a client under test did.

use super::http::HARNESS_USER_AGENT;
use super::registry::Registry;

/// One access-log line: `127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 401 87 "" "curl/7.88.1"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub method: String,
    /// Path and query, as requested.
    pub path: String,
    /// `HTTP/1.1`, or `HTTP/2.0` over TLS.
    pub protocol: String,
    pub status: u16,
    pub user_agent: String,
}

impl AccessEntry {
    pub(super) fn parse(line: &str) -> Option<AccessEntry> {
        let start = line.find('"')? + 1;
        let len = line[start..].find('"')?;
        let mut request = line[start..start + len].split_whitespace();
        let (method, path, protocol) = (request.next()?, request.next()?, request.next().unwrap_or(""));
        let rest = &line[start + len + 1..];
        let status = rest.split_whitespace().next()?.parse().ok()?;
        let ua = rest.trim_end().strip_suffix('"').and_then(|r| r.rfind('"').map(|i| &r[i + 1..])).unwrap_or("");
        Some(AccessEntry {
            method: method.into(),
            path: path.into(),
            protocol: protocol.into(),
            status,
            user_agent: ua.into(),
        })
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or(&self.path)
    }

    /// A request the harness itself made (readiness probes, log syncs, curl checks).
    pub fn is_harness(&self) -> bool {
        self.user_agent.starts_with(HARNESS_USER_AGENT)
    }
}

impl Registry {
    /// Requests so far that did not come from the harness, were not 401 auth challenges, used `method` and whose
    /// path contains `needle`.
    pub fn requests(&self, method: &str, needle: &str) -> Vec<AccessEntry> {
        self.counted().into_iter().filter(|e| e.method == method && e.path.contains(needle)).collect()
    }

    /// The entries the counting helpers look at: not the harness's own requests, not 401 challenges.
    fn counted(&self) -> Vec<AccessEntry> {
        self.access_entries().into_iter().filter(|e| !e.is_harness() && e.status != 401).collect()
    }

    /// How many times `GET /v2/<any repo>/blobs/<digest>` was served (HEADs, 401s and harness reads not counted):
    /// how often a layer was downloaded.
    pub fn blob_gets(&self, digest: &str) -> usize {
        let suffix = format!("/blobs/{digest}");
        self.counted().iter().filter(|e| e.method == "GET" && e.path_only().ends_with(&suffix)).count()
    }

    /// How many blob-upload requests (POST, PATCH and PUT under `/blobs/uploads/`, mount POSTs included) were
    /// made. A monolithic upload is a POST and a PUT; use [`Registry::blob_puts`] to count finished blobs.
    pub fn blob_uploads(&self) -> usize {
        self.counted()
            .iter()
            .filter(|e| matches!(e.method.as_str(), "POST" | "PUT" | "PATCH") && e.path.contains("/blobs/uploads/"))
            .count()
    }

    /// How many blob uploads were completed (PUT `/blobs/uploads/...?digest=` answered 201).
    pub fn blob_puts(&self) -> usize {
        self.counted()
            .iter()
            .filter(|e| e.method == "PUT" && e.path.contains("/blobs/uploads/") && e.status == 201)
            .count()
    }

    /// How many cross-repository mounts succeeded (POST `...?mount=` answered 201).
    pub fn blob_mounts(&self) -> usize {
        self.counted().iter().filter(|e| e.method == "POST" && e.path.contains("mount=") && e.status == 201).count()
    }

    /// How many manifests (or indexes) were stored (PUT `/manifests/` answered 201).
    pub fn manifest_puts(&self) -> usize {
        self.counted().iter().filter(|e| e.method == "PUT" && e.path.contains("/manifests/") && e.status == 201).count()
    }

    /// How many completed uploads (PUT answered 201) carried `digest`: how often that blob was sent.
    pub fn upload_puts_of(&self, digest: &str) -> usize {
        let encoded = digest.replace(':', "%3A");
        self.counted()
            .iter()
            .filter(|e| e.method == "PUT" && e.path.contains("/blobs/uploads/") && e.status == 201)
            .filter(|e| e.path.contains(digest) || e.path.contains(&encoded))
            .count()
    }
}

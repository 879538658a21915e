//! ADD's URL sources: an HTTP(S) GET streamed to a file in the work directory while it is hashed, with the
//! `Last-Modified` time BuildKit gives the file. The resolver decides how to fetch ([`super::BaseResolver::fetch_url`]);
//! [`fetch_http`] is the plain way over a `reqwest` client, which the edge builds.

use std::path::Path;

use sha2::Digest as _;
use tokio::io::AsyncWriteExt;

use crate::image::Digest;

/// A file fetched for ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub digest: Digest,
    pub size: u64,
    /// The `Last-Modified` header, seconds since the epoch.
    pub last_modified: Option<i64>,
}

/// GETs `url` into `dest`, hashing it on the way; any status but 2xx is an error naming it.
pub async fn fetch_http(client: &reqwest::Client, url: &str, dest: &Path) -> Result<Fetched, String> {
    let chain = |e: &dyn std::error::Error| {
        let mut s = e.to_string();
        let mut cur = e.source();
        while let Some(c) = cur {
            s.push_str(&format!(": {c}"));
            cur = c.source();
        }
        s
    };
    let mut resp = client.get(url).send().await.map_err(|e| chain(&e))?;
    if !resp.status().is_success() {
        return Err(format!("the server answered {}", resp.status()));
    }
    let last_modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| chrono::DateTime::parse_from_rfc2822(s).ok())
        .map(|d| d.timestamp());
    let io = |e: std::io::Error| format!("writing {}: {e}", dest.display());
    let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| chain(&e))? {
        hasher.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    Ok(Fetched { digest: Digest::from_sha256(hasher.finalize().into()), size, last_modified })
}

/// The file name ADD gives a URL's download in a destination directory: the URL path's last segment, as
/// BuildKit names it (`__unnamed__` when the path has none).
pub(crate) fn url_file_name(url: &str) -> String {
    let path = url::Url::parse(url).map(|u| u.path().to_string()).unwrap_or_default();
    let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let base = percent_decode(base);
    if base.is_empty() || base == "." { "__unnamed__".to_string() } else { base }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `--checksum=sha256:HEX` checked for form; the digest to compare with.
pub(crate) fn parse_checksum(spec: &str) -> Result<Digest, String> {
    let hex = spec.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()));
    let Some(hex) = hex else {
        return Err(format!("--checksum={spec}: write sha256: followed by the 64 hex digits of the file's SHA-256"));
    };
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex, &mut bytes).map_err(|e| format!("--checksum={spec}: {e}"))?;
    Ok(Digest::from_sha256(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_checksums() {
        assert_eq!(url_file_name("https://example.com/dl/tool-1.2.tar.gz?x=1"), "tool-1.2.tar.gz");
        assert_eq!(url_file_name("https://example.com/dl/a%20b.txt"), "a b.txt");
        assert_eq!(url_file_name("https://example.com/dir/"), "dir");
        assert_eq!(url_file_name("https://example.com"), "__unnamed__");
        let d = parse_checksum(&format!("sha256:{}", "ab".repeat(32))).unwrap();
        assert_eq!(d.to_string(), format!("sha256:{}", "ab".repeat(32)));
        assert!(parse_checksum("md5:00").unwrap_err().contains("64 hex digits"));
    }
}

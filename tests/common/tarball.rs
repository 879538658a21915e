//! Reading layer tars in tests: every regular file's path (without a trailing slash) and bytes.

use std::collections::BTreeMap;
use std::io::Read;

/// Entries of an uncompressed tar, directories with empty contents.
pub fn tar_entries(tar: impl Read) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in tar::Archive::new(tar).entries().expect("read tar") {
        let mut entry = entry.expect("tar entry");
        let path = entry.path().expect("entry path").to_string_lossy().trim_end_matches('/').to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("entry data");
        out.insert(path, data);
    }
    out
}

/// Entries of a gzip layer blob.
pub fn gunzip_entries(blob: &[u8]) -> BTreeMap<String, Vec<u8>> {
    tar_entries(flate2::read::GzDecoder::new(blob))
}

//! Image references (`FROM`, pulls), image names (targets), registry hosts and tags, on any text.
//!
//! Properties: what parses prints back to text that parses to the same value; every accepted name makes the
//! registry URL the client will ask (so a bad name fails where it is read, not at the first request); a tag
//! in a parsed reference obeys the tag grammar, and every tag the grammar accepts survives a reference.

#![no_main]

use libfuzzer_sys::fuzz_target;
use octopush_fuzz::image::{ImageName, ImageRef, is_loopback_host, is_valid_tag, registry_host};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(r) = ImageRef::parse(s) {
        let shown = r.to_string();
        assert_eq!(ImageRef::parse(&shown).as_ref(), Ok(&r), "{s:?} printed as {shown:?}");
        if let Some(t) = &r.tag {
            assert!(is_valid_tag(t), "{s:?} has the tag {t:?}");
        }
        assert!(!r.reference().is_empty());
        check_name(&r.name);
    }
    if let Ok(n) = ImageName::parse(s) {
        let shown = n.to_string();
        assert_eq!(ImageName::parse(&shown).as_ref(), Ok(&n), "{s:?} printed as {shown:?}");
        check_name(&n);
    }
    // Split as a target: `registry/repository`.
    if let Some((registry, repository)) = s.split_once('/') {
        if let Ok(n) = ImageName::new(registry, repository) {
            assert_eq!(ImageName::new(&n.registry, &n.repository).as_ref(), Ok(&n));
            check_name(&n);
        }
    }
    if let Ok(host) = registry_host(s) {
        assert_eq!(registry_host(&host).as_ref(), Ok(&host), "{s:?} normalised to {host:?}");
        check_host(&host);
    }
    if is_valid_tag(s) {
        let r = ImageRef::parse(&format!("ghcr.io/octo-org/app:{s}"));
        assert_eq!(r.ok().and_then(|r| r.tag).as_deref(), Some(s), "the valid tag {s:?} in a reference");
    }
    is_loopback_host(s);
});

fn check_name(n: &ImageName) {
    assert!(!n.repository.is_empty());
    assert_eq!(n.repository, n.repository.to_ascii_lowercase());
    check_host(&n.registry);
    check_host(n.api_host());
    let url = format!("https://{}/v2/{}/manifests/latest", n.api_host(), n.repository);
    let parsed = url::Url::parse(&url).unwrap_or_else(|e| panic!("{n} makes the URL {url:?}: {e}"));
    assert_eq!(parsed.path(), format!("/v2/{}/manifests/latest", n.repository), "{n}");
}

/// A registry host the client will speak to: it makes a URL with that host and port, and nothing more.
fn check_host(host: &str) {
    let url = format!("https://{host}/v2/");
    let parsed = url::Url::parse(&url).unwrap_or_else(|e| panic!("the registry {host:?} makes the URL {url:?}: {e}"));
    assert_eq!(parsed.path(), "/v2/", "{host:?}");
    assert!(parsed.username().is_empty() && parsed.password().is_none(), "{host:?} carries credentials");
    assert!(parsed.query().is_none() && parsed.fragment().is_none(), "{host:?}");
    let authority = match parsed.port() {
        Some(p) => format!("{}:{p}", parsed.host_str().unwrap_or_default()),
        None => parsed.host_str().unwrap_or_default().to_string(),
    };
    // `url` drops a default port (`:443`) and writes an IPv6 address in its canonical form (`[0::1]` is `[::1]`):
    // that one is compared as the address it is, not as text. (IPv4 hosts are accepted only in dotted decimal.)
    let written = host.strip_suffix(":443").unwrap_or(host);
    if let Some((ip, after)) = written.strip_prefix('[').and_then(|h| h.split_once(']')) {
        let ip: std::net::Ipv6Addr = ip.parse().unwrap_or_else(|e| panic!("{host:?} is bracketed but no IPv6: {e}"));
        assert_eq!(parsed.host(), Some(url::Host::Ipv6(ip)), "the registry {host:?} is spoken to as {authority:?}");
        let port = after.strip_prefix(':').map(|p| p.parse::<u16>().expect("a port"));
        assert_eq!(parsed.port(), port, "the registry {host:?} is spoken to as {authority:?}");
        return;
    }
    assert_eq!(authority, written, "the registry {host:?} is spoken to as {authority:?}");
}

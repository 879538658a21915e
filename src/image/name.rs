//! Image names: a registry host and a repository path, as targets (`REGISTRY/REPOSITORY`) and as `FROM` references.

use std::fmt;

/// A registry and repository, e.g. `ghcr.io` + `octo-org/app`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageName {
    pub registry: String,
    pub repository: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InvalidName {
    #[error("the registry `{0}` is not a valid host[:port]")]
    Registry(String),
    #[error(
        "the repository `{0}` is not valid: use lowercase letters, digits and the separators `.`, `_`, `__`, `-` \
         between path components separated by `/` (for example `octo-org/app`)"
    )]
    Repository(String),
    #[error(
        "the tag `{0}` is not valid: use up to 128 ASCII letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
    )]
    Tag(String),
    #[error("the image reference `{0}` is not valid: {1}")]
    Reference(String, String),
}

/// Docker Hub's canonical names, as every client resolves short names.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

impl ImageName {
    /// A target name: registry and repository are lowercased (registries require it, owners often have capitals),
    /// then checked against the distribution grammar.
    pub fn new(registry: &str, repository: &str) -> Result<Self, InvalidName> {
        let registry = registry_host(registry)?;
        let repository = repository.trim().trim_matches('/').to_ascii_lowercase();
        if !valid_repository(&repository) {
            return Err(InvalidName::Repository(repository));
        }
        Ok(ImageName { registry, repository })
    }

    /// A full image name without tag or digest (`ghcr.io/octo/app`, `busybox`), split as Docker does: the first
    /// component is the registry when it has a `.` or `:` or is `localhost`; otherwise the name is Docker Hub's,
    /// where a one-part name is an official `library/` image.
    pub fn parse(name: &str) -> Result<Self, InvalidName> {
        let name = name.trim();
        let (first, rest) = name.split_once('/').unwrap_or(("", name));
        if first.contains('.') || first.contains(':') || first == "localhost" {
            ImageName::new(first, rest)
        } else if name.contains('/') {
            ImageName::new(DOCKER_HUB, name)
        } else {
            ImageName::new(DOCKER_HUB, &format!("library/{name}"))
        }
    }

    /// The host to talk HTTP to (`docker.io` is served from `registry-1.docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB { DOCKER_HUB_API } else { &self.registry }
    }

    /// Loopback registries speak plain HTTP, as Docker assumes.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

/// A parsed `FROM` / pull reference: name plus tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub name: ImageName,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses with Docker's normalisation (`busybox` is `docker.io/library/busybox:latest`), using oci-client's
    /// reference grammar.
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        let r: oci_client::Reference =
            s.parse().map_err(|e: oci_client::ParseError| InvalidName::Reference(s.into(), e.to_string()))?;
        // The host as a target's is: lowercase, and one that makes a URL (oci-client's grammar takes `927.0.0.1`).
        let registry = match r.registry().to_ascii_lowercase().as_str() {
            DOCKER_HUB_API | "index.docker.io" => DOCKER_HUB.to_string(),
            other if valid_host(other) => other.to_string(),
            other => return Err(InvalidName::Reference(s.into(), InvalidName::Registry(other.into()).to_string())),
        };
        // oci-client accepts upper case in repositories; the distribution grammar does not.
        if !valid_repository(r.repository()) {
            return Err(InvalidName::Reference(s.into(), InvalidName::Repository(r.repository().into()).to_string()));
        }
        // oci-client's `\w` takes any Unicode letter; the distribution grammar is ASCII (found by fuzzing).
        if let Some(t) = r.tag().filter(|t| !is_valid_tag(t)) {
            return Err(InvalidName::Reference(s.into(), InvalidName::Tag(t.into()).to_string()));
        }
        // Every spelling of Docker Hub names the same repositories: a one-part name there is an official image,
        // as `docker.io/x` is (oci-client adds `library/` only for `docker.io` and `index.docker.io` as written;
        // `registry-1.docker.io/x` and `Docker.io/x` used to name `x` and print as `docker.io/x`, another image;
        // found by fuzzing).
        let repository = if registry == DOCKER_HUB && !r.repository().contains('/') {
            format!("library/{}", r.repository())
        } else {
            r.repository().to_string()
        };
        Ok(ImageRef {
            name: ImageName { registry, repository },
            tag: r.tag().map(str::to_string),
            digest: r.digest().map(str::to_string),
        })
    }

    /// What to ask the registry for: the digest if pinned, else the tag, else `latest`.
    pub fn reference(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// A registry host as the user wrote it (`GHCR.io`, `https://registry.lan:5000/`), lowercased without scheme or
/// trailing slash, and checked to be `host[:port]`.
pub fn registry_host(registry: &str) -> Result<String, InvalidName> {
    let registry = registry.trim().trim_end_matches('/').to_ascii_lowercase();
    let registry =
        registry.strip_prefix("https://").or_else(|| registry.strip_prefix("http://")).unwrap_or(&registry).to_string();
    if !valid_host(&registry) {
        return Err(InvalidName::Registry(registry));
    }
    Ok(registry)
}

/// The distribution spec's tag grammar: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Whether `host` (`host[:port]`) is this machine for certain: an IP literal in 127.0.0.0/8, `::1`, or
/// `localhost`. Only these may be spoken to over plain HTTP without being named in `insecure_registries`; a name
/// that merely looks local (`127.evil.example`, `localhost.example`) resolves wherever its DNS says.
pub fn is_loopback_host(host: &str) -> bool {
    let h = strip_port(host.trim());
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let ip = h.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(h);
    ip.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map(|(h, _)| h).map(|h| &host[..h.len() + 1]).unwrap_or(host);
    }
    // A bare IPv6 literal (`::1`) has colons but no port.
    if host.matches(':').count() > 1 {
        return host;
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

/// `host[:port]` that makes a URL with exactly that host and port (found by fuzzing, issue 13: a bracketed host
/// that is no IPv6 address, a port such as `+80` or `0080`, a name ending in a number that is no IPv4 address,
/// like `927.0.0.1`, or a bad punycode label (`xn--e`) used to be accepted and fail only at the first request, or
/// speak to another port).
fn valid_host(host: &str) -> bool {
    if host.is_empty() || host.contains('/') {
        return false;
    }
    if let Some(rest) = host.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else { return false };
        return ip.parse::<std::net::Ipv6Addr>().is_ok()
            && (after.is_empty() || after.strip_prefix(':').is_some_and(valid_port));
    }
    let (name, port) = host.rsplit_once(':').map_or((host, None), |(h, p)| (h, Some(p)));
    if port.is_some_and(|p| !valid_port(p)) {
        return false;
    }
    let labels_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    // The URL parser reqwest uses must keep the name as written: it reads a name whose last label is a number as
    // an IPv4 address (`127.1` is `127.0.0.1`, `927.0.0.1` is none) and an `xn--` label as punycode (`xn--e` is
    // not valid punycode, found by fuzzing).
    labels_ok && url::Host::parse(name).is_ok_and(|h| h.to_string() == name)
}

/// A port as a URL keeps it: decimal digits, no sign, no leading zero.
fn valid_port(p: &str) -> bool {
    p.parse::<u16>().is_ok_and(|n| n.to_string() == p)
}

/// The distribution spec's repository grammar: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
fn valid_repository(repo: &str) -> bool {
    !repo.is_empty() && repo.len() <= 255 && repo.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'a'..=b'z' | b'0'..=b'9' => i += 1,
            b'.' | b'_' | b'-' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
                    i += 1;
                }
                let sep = &c[start..i];
                if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_are_lowercased_and_checked() {
        let n = ImageName::new("GHCR.io", "Octo-Org/App/octo-image").unwrap();
        assert_eq!(n.to_string(), "ghcr.io/octo-org/app/octo-image");
        assert!(ImageName::new("127.0.0.1:5000", "a/b").unwrap().is_loopback());
        assert!(!ImageName::new("ghcr.io", "a/b").unwrap().is_loopback());
        assert!(matches!(ImageName::new("ghcr.io", "a//b"), Err(InvalidName::Repository(_))));
        assert!(matches!(ImageName::new("ghcr.io", "a/b c"), Err(InvalidName::Repository(_))));
        assert!(matches!(ImageName::new("ghcr.io", "a/-b"), Err(InvalidName::Repository(_))));
        assert!(matches!(ImageName::new("ghcr.io", "a/b...c"), Err(InvalidName::Repository(_))));
        assert!(ImageName::new("ghcr.io", "a/b__c.d-e---f").is_ok());
        assert!(matches!(ImageName::new("bad host", "a"), Err(InvalidName::Registry(_))));
        assert!(matches!(ImageName::new("host:99999", "a"), Err(InvalidName::Registry(_))));
        assert_eq!(ImageName::new("https://ghcr.io/", "a").unwrap().registry, "ghcr.io");
    }

    #[test]
    fn full_names_split_like_docker() {
        let n = |s: &str| ImageName::parse(s).map(|n| n.to_string());
        assert_eq!(n("ghcr.io/Octo/App").unwrap(), "ghcr.io/octo/app");
        assert_eq!(n("127.0.0.1:5000/x/y").unwrap(), "127.0.0.1:5000/x/y");
        assert_eq!(n("localhost/x").unwrap(), "localhost/x");
        assert_eq!(n("octo/app").unwrap(), "docker.io/octo/app");
        assert_eq!(n("busybox").unwrap(), "docker.io/library/busybox");
        assert!(matches!(ImageName::parse("ghcr.io/a b"), Err(InvalidName::Repository(_))));
    }

    /// Issue 13, finding 5: any host starting with `127.` was taken for loopback and spoken to over plain HTTP,
    /// credentials included.
    #[test]
    fn only_loopback_ip_literals_and_localhost_are_loopback() {
        for local in [
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.255.0.9:80",
            "localhost",
            "LOCALHOST:5000",
            "[::1]",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback_host(local), "{local}");
        }
        for remote in [
            "127.evil.example",
            "127.evil.example:5000",
            "127.0.0.1.nip.io",
            "127.0.0.1.evil.example:443",
            "127.1",
            "localhost.example",
            "localhostx:5000",
            "128.0.0.1",
            "10.0.0.1:5000",
            "[::2]:5000",
            "[::ffff:127.0.0.1]",
            "ghcr.io",
            "",
        ] {
            assert!(!is_loopback_host(remote), "{remote}");
        }
    }

    /// Found by fuzzing (issue 13, fuzz/corpus/reference/927-not-ipv4 and punycode): hosts that pass the label
    /// grammar but make no URL, or a URL with another host or port, were accepted and failed only at the first
    /// request.
    #[test]
    fn hosts_are_those_a_url_keeps() {
        for bad in [
            "927.0.0.1:5000",
            "127.1",
            "10.0.0.256",
            "a.0x1f",
            "host:+80",
            "host:0080",
            "host:",
            "[zz]",
            "[::1",
            "[::1]x",
            "[::1]:+1",
            "xn--e",
            "registry.xn--e:5000",
            "010.0.0.1",
        ] {
            assert!(matches!(registry_host(bad), Err(InvalidName::Registry(_))), "{bad}");
        }
        for ok in [
            "927.example",
            "1password.com",
            "10.0.0.1:5000",
            "[::1]:5000",
            "[fe80::1]",
            "host:0",
            "a-1.b2c",
            "xn--bcher-kva.example",
            "ab--c.example",
        ] {
            assert!(registry_host(ok).is_ok(), "{ok}");
        }
        assert!(ImageRef::parse("927.0.0.1:5000/img").is_err());
        // fuzz/corpus/reference/unicode-tag: oci-client's grammar takes any Unicode letter in a tag.
        assert!(ImageRef::parse("localhost:5000/app:v\u{466}1").is_err());
        assert!(ImageRef::parse("app:\u{e9}t\u{e9}").is_err());
        assert_eq!(ImageRef::parse("GHCR.io/o/r:v1").unwrap().name.registry, "ghcr.io");
    }

    /// Found by fuzzing (issue 13, fuzz/corpus/reference/hub-api-host): `registry-1.docker.io/x` parsed to the
    /// repository `x` on Docker Hub and printed as `docker.io/x`, which is `docker.io/library/x`.
    #[test]
    fn every_spelling_of_docker_hub_names_official_images_alike() {
        for s in [
            "busybox:1",
            "docker.io/busybox:1",
            "index.docker.io/busybox:1",
            "registry-1.docker.io/busybox:1",
            "Docker.IO/busybox:1",
        ] {
            let r = ImageRef::parse(s).unwrap();
            assert_eq!(r.to_string(), "docker.io/library/busybox:1", "{s}");
            assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r, "{s}");
        }
        let r = ImageRef::parse("registry-1.docker.io/octo/app").unwrap();
        assert_eq!((r.name.registry.as_str(), r.name.repository.as_str()), ("docker.io", "octo/app"));
    }

    #[test]
    fn tag_grammar() {
        for ok in ["latest", "v1.2.3", "sha-2f2d842", "_x", "A-b_c.d", &"a".repeat(128)] {
            assert!(is_valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "ä", &"a".repeat(129)] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn from_references_normalise_like_docker() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.name.registry, "docker.io");
        assert_eq!(r.name.repository, "library/busybox");
        assert_eq!(r.reference(), "latest");
        let r = ImageRef::parse("127.0.0.1:5000/base/busybox:1").unwrap();
        assert_eq!(r.name.registry, "127.0.0.1:5000");
        assert_eq!(r.name.repository, "base/busybox");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert!(r.name.is_loopback());
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = ImageRef::parse(&format!("ghcr.io/o/r@{d}")).unwrap();
        assert_eq!(r.reference(), d);
        assert!(ImageRef::parse("UPPER/case").is_err());
    }
}

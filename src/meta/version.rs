//! Version strings from git tags: node-semver's strict grammar (leading `v` allowed) and PEP 440 as
//! `@renovate/pep440` reads and normalises it, the two libraries behind metadata-action's `semver` and `pep440`.

use std::sync::LazyLock;

use regex::Regex;

/// JavaScript's `Number.MAX_SAFE_INTEGER`: node-semver refuses larger components.
const MAX_SAFE: u64 = (1 << 53) - 1;

static SEMVER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let num = "0|[1-9][0-9]*";
    let pre_id = format!("(?:{num}|[0-9]*[a-zA-Z-][a-zA-Z0-9-]*)");
    let build_id = "[a-zA-Z0-9-]+";
    Regex::new(&format!(
        r"^v?({num})\.({num})\.({num})(?:-({pre_id}(?:\.{pre_id})*))?(?:\+({build_id}(?:\.{build_id})*))?$"
    ))
    .ok()
});

/// A semantic version, with the fields metadata-action's `pattern` can name.
#[derive(Debug, Clone, PartialEq)]
pub struct SemVer {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub prerelease: Vec<String>,
    pub build: Vec<String>,
    /// The string as given (with its `v`).
    pub raw: String,
}

impl SemVer {
    /// node-semver's `valid()`: strict grammar after trimming, `v` prefix allowed, components up to 2^53-1.
    pub fn parse(raw: &str) -> Option<SemVer> {
        if raw.len() > 256 {
            return None;
        }
        let c = SEMVER.as_ref()?.captures(raw.trim())?;
        let n = |i: usize| c.get(i)?.as_str().parse::<u64>().ok().filter(|n| *n <= MAX_SAFE);
        let list = |i: usize| c.get(i).map(|m| m.as_str().split('.').map(str::to_string).collect()).unwrap_or_default();
        Some(SemVer { major: n(1)?, minor: n(2)?, patch: n(3)?, prerelease: list(4), build: list(5), raw: raw.into() })
    }

    pub fn is_prerelease(&self) -> bool {
        !self.prerelease.is_empty()
    }

    /// node-semver's `version`: `MAJOR.MINOR.PATCH[-PRERELEASE]`, without the `v` or build metadata.
    pub fn version(&self) -> String {
        let mut s = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if self.is_prerelease() {
            s.push('-');
            s.push_str(&self.prerelease.join("."));
        }
        s
    }

    /// What `{{name}}` gives in a semver `pattern` (arrays print as JavaScript does, comma-joined).
    pub fn field(&self, name: &str) -> Option<String> {
        Some(match name {
            "version" => self.version(),
            "major" => self.major.to_string(),
            "minor" => self.minor.to_string(),
            "patch" => self.patch.to_string(),
            "raw" => self.raw.clone(),
            "prerelease" => self.prerelease.join(","),
            "build" => self.build.join(","),
            _ => return None,
        })
    }
}

static PEP440: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)^\s*v?(?:(?:(?P<epoch>[0-9]+)!)?(?P<release>[0-9]+(?:\.[0-9]+)*)",
        r"(?P<pre>[-_\.]?(?P<pre_l>a|b|c|rc|alpha|beta|pre|preview)[-_\.]?(?P<pre_n>[0-9]+)?)?",
        r"(?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_\.]?(?P<post_l>post|rev|r)[-_\.]?(?P<post_n2>[0-9]+)?))?",
        r"(?P<dev>[-_\.]?(?P<dev_l>dev)[-_\.]?(?P<dev_n>[0-9]+)?)?)",
        r"(?:\+(?P<local>[a-z0-9]+(?:[-_\.][a-z0-9]+)*))?\s*$"
    ))
    .ok()
});

/// A PEP 440 version.
#[derive(Debug, Clone, PartialEq)]
pub struct Pep440 {
    pub epoch: u64,
    pub release: Vec<u64>,
    pub pre: Option<(String, u64)>,
    pub post: Option<u64>,
    pub dev: Option<u64>,
    pub local: Option<Vec<String>>,
    pub raw: String,
}

impl Pep440 {
    /// `@renovate/pep440`'s `valid()` (no surrounding blanks) and `parse()`.
    pub fn parse(raw: &str) -> Option<Pep440> {
        if raw.trim() != raw {
            return None;
        }
        let c = PEP440.as_ref()?.captures(raw)?;
        let num = |s: &str| s.parse::<u64>().ok();
        let opt_num = |name: &str| match c.name(name) {
            Some(m) => num(m.as_str()).map(Some),
            None => Some(None),
        };
        let letter = |l: &str| {
            match l.to_ascii_lowercase().as_str() {
                "alpha" => "a",
                "beta" => "b",
                "c" | "pre" | "preview" => "rc",
                other => return other.to_string(),
            }
            .to_string()
        };
        let pre = match c.name("pre_l") {
            Some(l) => Some((letter(l.as_str()), opt_num("pre_n")?.unwrap_or(0))),
            None => None,
        };
        let post =
            if c.name("post_l").is_some() { Some(opt_num("post_n2")?.unwrap_or(0)) } else { opt_num("post_n1")? };
        let dev = if c.name("dev_l").is_some() { Some(opt_num("dev_n")?.unwrap_or(0)) } else { None };
        let local = c.name("local").map(|m| {
            m.as_str()
                .split(['.', '_', '-'])
                .map(|p| p.parse::<u64>().map(|n| n.to_string()).unwrap_or_else(|_| p.to_ascii_lowercase()))
                .collect()
        });
        Some(Pep440 {
            epoch: opt_num("epoch")?.unwrap_or(0),
            release: c.name("release")?.as_str().split('.').map(num).collect::<Option<Vec<_>>>()?,
            pre,
            post,
            dev,
            local,
            raw: raw.to_string(),
        })
    }

    /// Pre-, post- and dev-releases: metadata-action gives them only `{{version}}` (or `{{raw}}`), never `latest`.
    pub fn is_special(&self) -> bool {
        self.pre.is_some() || self.post.is_some() || self.dev.is_some()
    }

    /// `clean()`: the normalised form (`1.1beta2` is `1.1b2`, `1.0dev4` is `1.0.dev4`). The local segment is
    /// joined with commas, as the library does (it prints an array).
    pub fn clean(&self) -> String {
        let mut s = String::new();
        if self.epoch != 0 {
            s.push_str(&format!("{}!", self.epoch));
        }
        s.push_str(&self.release.iter().map(u64::to_string).collect::<Vec<_>>().join("."));
        if let Some((l, n)) = &self.pre {
            s.push_str(&format!("{l}{n}"));
        }
        if let Some(n) = self.post {
            s.push_str(&format!(".post{n}"));
        }
        if let Some(n) = self.dev {
            s.push_str(&format!(".dev{n}"));
        }
        if let Some(local) = &self.local {
            s.push('+');
            s.push_str(&local.join(","));
        }
        s
    }

    /// What `{{name}}` gives in a pep440 `pattern`.
    pub fn field(&self, name: &str) -> Option<String> {
        let part = |i: usize| self.release.get(i).copied().unwrap_or(0).to_string();
        Some(match name {
            "raw" => self.raw.clone(),
            "version" => self.clean(),
            "major" => part(0),
            "minor" => part(1),
            "patch" => part(2),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_accepts_what_node_semver_accepts() {
        let v = SemVer::parse("v2.0.8-beta.67").unwrap_or_else(|| panic!("valid"));
        assert_eq!((v.major, v.minor, v.patch), (2, 0, 8));
        assert_eq!(v.version(), "2.0.8-beta.67");
        assert_eq!(v.field("raw").as_deref(), Some("v2.0.8-beta.67"));
        assert_eq!(v.field("prerelease").as_deref(), Some("beta,67"));
        assert!(v.is_prerelease());
        let v = SemVer::parse("1.2.3+build.5").unwrap_or_else(|| panic!("valid"));
        assert_eq!(v.version(), "1.2.3");
        assert!(!v.is_prerelease());
        assert!(SemVer::parse(" v1.2.3 ").is_some());
        assert!(SemVer::parse("1.0.0-alpha-1.0").is_some());
        assert!(SemVer::parse("1.0.0-0a").is_some());
    }

    #[test]
    fn semver_refuses_what_node_semver_refuses() {
        for bad in [
            "1.2",
            "v1.2.3rc2",
            "01.2.3",
            "1.2.3-01",
            "1.2.3-",
            "=1.2.3",
            "sometag",
            "p1-v1.0.0",
            "20200110-RC2",
            "1.2.3.4",
            "9007199254740992.0.0",
            "release1",
        ] {
            assert_eq!(SemVer::parse(bad), None, "{bad}");
        }
        assert!(SemVer::parse("9007199254740991.0.0").is_some());
    }

    fn clean(s: &str) -> Option<String> {
        Pep440::parse(s).map(|v| v.clean())
    }

    #[test]
    fn pep440_normalises_as_the_library_does() {
        assert_eq!(clean("1.1beta2").as_deref(), Some("1.1b2"));
        assert_eq!(clean("1.0dev4").as_deref(), Some("1.0.dev4"));
        assert_eq!(clean("1.2.3rc2").as_deref(), Some("1.2.3rc2"));
        assert_eq!(clean("v1.2.3rc2").as_deref(), Some("1.2.3rc2"));
        assert_eq!(clean("1.2post1").as_deref(), Some("1.2.post1"));
        assert_eq!(clean("v1.1.1").as_deref(), Some("1.1.1"));
        assert_eq!(clean("1.0-1").as_deref(), Some("1.0.post1"));
        assert_eq!(clean("1.0.PREVIEW").as_deref(), Some("1.0rc0"));
        assert_eq!(clean("1!2.01_rev3.DEV").as_deref(), Some("1!2.1.post3.dev0"));
        assert_eq!(clean("1.0+Ubuntu.01").as_deref(), Some("1.0+ubuntu,1"));
        assert_eq!(clean("1.2").as_deref(), Some("1.2"));
    }

    #[test]
    fn pep440_classifies_and_splits() {
        let special = |s: &str| Pep440::parse(s).map(|v| v.is_special());
        assert_eq!(special("1.1beta2"), Some(true));
        assert_eq!(special("1.2post1"), Some(true));
        assert_eq!(special("1.0dev4"), Some(true));
        assert_eq!(special("1.2.3"), Some(false));
        let v = Pep440::parse("1.2").unwrap_or_else(|| panic!("valid"));
        assert_eq!(v.field("major").as_deref(), Some("1"));
        assert_eq!(v.field("minor").as_deref(), Some("2"));
        assert_eq!(v.field("patch").as_deref(), Some("0"));
        for bad in ["sometag", "v1.2.3-beta.67.x", " 1.2", "1.2 ", "release1", "p1-v1.0.0"] {
            assert_eq!(Pep440::parse(bad), None, "{bad}");
        }
    }
}

//! The grammar of prune's inputs: tag patterns (`v*`, `pr-?`), ages (`7d`, `12h`, `1w2d`) and the tags that are
//! not names at all but attachments of another version (cosign's `sha256-<hex>.sig`, the OCI referrers tag).

use std::time::Duration;

/// A tag pattern: `*` matches any run of characters, `?` one character, everything else itself; the whole
/// tag must match.
#[derive(Debug, Clone)]
pub struct TagPattern {
    text: String,
    regex: regex::Regex,
}

impl TagPattern {
    pub fn parse(text: &str) -> Result<TagPattern, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an empty pattern matches no tag".into());
        }
        if let Some(c) = text.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-*?".contains(*c))) {
            return Err(format!(
                "`{text}` has `{c}`, which no tag can hold: tags use `A-Za-z0-9_.-`, and patterns add `*` and `?`"
            ));
        }
        let mut re = String::from("^");
        for c in text.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push('$');
        let regex = regex::Regex::new(&re).map_err(|e| format!("`{text}`: {e}"))?;
        Ok(TagPattern { text: text.to_string(), regex })
    }

    pub fn matches(&self, tag: &str) -> bool {
        self.regex.is_match(tag)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for TagPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// An age: whole numbers with units `w`, `d`, `h`, `m`, `s`, in that order and each at most once (`7d`,
/// `1d12h`, `90m`); `0` alone is zero.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("`{text}` is not an age: write a number and a unit, such as `7d`, `12h`, `1w` or `1d12h`");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let units: [(char, u64); 5] = [('w', 604_800), ('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
    let mut rest = text;
    let mut next_unit = 0;
    let mut seconds: u64 = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = rest[digits..].chars().next().ok_or_else(bad)?;
        let offset = units[next_unit..].iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        let scale = units[next_unit + offset].1;
        next_unit += offset + 1;
        seconds = number.checked_mul(scale).and_then(|s| s.checked_add(seconds)).ok_or_else(bad)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    Ok(Duration::from_secs(seconds))
}

/// An age for people: the largest units, at most two (`9d 4h`, `3h 12m`, `45s`).
pub fn human_age(age: Duration) -> String {
    let s = age.as_secs();
    let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// What kind of attachment a tag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachedKind {
    /// cosign's `.sig`.
    Signature,
    /// cosign's `.att` (in-toto attestations).
    Attestation,
    /// cosign's `.sbom`.
    Sbom,
    /// The OCI 1.1 referrers tag schema: `sha256-<hex>` alone, an index of the referrers.
    Referrers,
}

/// The digest a tag is attached to, for the tags that name another version rather than a release:
/// `sha256-<hex>.sig`, `.att`, `.sbom` (cosign) and `sha256-<hex>` (the OCI referrers tag schema).
pub fn attached_to(tag: &str) -> Option<(String, AttachedKind)> {
    let rest = tag.strip_prefix("sha256-")?;
    let (hex, kind) = match rest.split_once('.') {
        None => (rest, AttachedKind::Referrers),
        Some((hex, "sig")) => (hex, AttachedKind::Signature),
        Some((hex, "att")) => (hex, AttachedKind::Attestation),
        Some((hex, "sbom")) => (hex, AttachedKind::Sbom),
        Some(_) => return None,
    };
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
        .then(|| (format!("sha256:{hex}"), kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_tags() {
        let rows: &[(&str, &str, bool)] = &[
            ("v*", "v1.2.0", true),
            ("v*", "av1", false),
            ("latest", "latest", true),
            ("latest", "latest-rc", false),
            ("pr-?", "pr-5", true),
            ("pr-?", "pr-12", false),
            ("sha-*", "sha-2f2d842", true),
            ("1.2.*", "1.2.3", true),
            ("1.2.*", "1x2.3", false),
            ("*", "anything", true),
        ];
        for (pattern, tag, want) in rows {
            assert_eq!(TagPattern::parse(pattern).unwrap().matches(tag), *want, "{pattern} vs {tag}");
        }
        let e = TagPattern::parse("v[0-9]+").unwrap_err();
        assert!(e.contains("`[`") && e.contains("`*` and `?`"), "{e}");
        assert!(TagPattern::parse("  ").is_err());
    }

    #[test]
    fn ages_take_weeks_days_hours_minutes_seconds() {
        let rows: &[(&str, u64)] =
            &[("7d", 604_800), ("12h", 43_200), ("1w", 604_800), ("1d12h", 129_600), ("90m", 5_400), ("0", 0)];
        for (text, secs) in rows {
            assert_eq!(parse_age(text), Ok(Duration::from_secs(*secs)), "{text}");
        }
        for bad in ["", "7", "d", "7x", "1h1d", "1d1d", "-1d", "1.5d", "99999999999999999999w"] {
            let e = parse_age(bad).unwrap_err();
            assert!(e.contains("`7d`"), "{bad}: {e}");
        }
        assert_eq!(human_age(Duration::from_secs(9 * 86_400 + 4 * 3_600 + 60)), "9d 4h");
        assert_eq!(human_age(Duration::from_secs(3 * 3_600 + 12 * 60)), "3h 12m");
        assert_eq!(human_age(Duration::from_secs(45)), "45s");
        assert_eq!(human_age(Duration::from_secs(30 * 86_400)), "30d");
    }

    #[test]
    fn attachment_tags_name_their_subject() {
        let hex = "0123456789abcdef".repeat(4);
        let d = format!("sha256:{hex}");
        assert_eq!(attached_to(&format!("sha256-{hex}.sig")), Some((d.clone(), AttachedKind::Signature)));
        assert_eq!(attached_to(&format!("sha256-{hex}.att")), Some((d.clone(), AttachedKind::Attestation)));
        assert_eq!(attached_to(&format!("sha256-{hex}.sbom")), Some((d.clone(), AttachedKind::Sbom)));
        assert_eq!(attached_to(&format!("sha256-{hex}")), Some((d, AttachedKind::Referrers)));
        assert_eq!(attached_to(&format!("sha256-{hex}.zip")), None);
        assert_eq!(attached_to("sha256-abc.sig"), None);
        assert_eq!(attached_to("sha-2f2d842"), None);
        assert_eq!(attached_to(&format!("sha256-{}.sig", "AB".repeat(32))), None, "digests are lower-case");
    }
}

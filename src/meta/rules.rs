//! The grammar of `tags` rule lines (`type=semver,pattern={{version}}`): their types, attributes and defaults,
//! as metadata-action fills them in, with errors that say what to write.

use super::fields::{fields, key_value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Schedule,
    Semver,
    Pep440,
    Match,
    Edge,
    Ref,
    Raw,
    Sha,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "schedule" => Kind::Schedule,
            "semver" => Kind::Semver,
            "pep440" => Kind::Pep440,
            "match" => Kind::Match,
            "edge" => Kind::Edge,
            "ref" => Kind::Ref,
            "raw" => Kind::Raw,
            "sha" => Kind::Sha,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Schedule => "schedule",
            Kind::Semver => "semver",
            Kind::Pep440 => "pep440",
            Kind::Match => "match",
            Kind::Edge => "edge",
            Kind::Ref => "ref",
            Kind::Raw => "raw",
            Kind::Sha => "sha",
        }
    }

    fn default_priority(self) -> f64 {
        match self {
            Kind::Schedule => 1000.0,
            Kind::Semver | Kind::Pep440 => 900.0,
            Kind::Match => 800.0,
            Kind::Edge => 700.0,
            Kind::Ref => 600.0,
            Kind::Raw => 200.0,
            Kind::Sha => 100.0,
        }
    }

    /// Attributes this type reads besides `type`, `enable`, `priority`, `prefix` and `suffix`.
    fn own_attributes(self) -> &'static [&'static str] {
        match self {
            Kind::Schedule => &["pattern"],
            Kind::Semver | Kind::Pep440 => &["pattern", "value", "match"],
            Kind::Match => &["pattern", "group", "value"],
            Kind::Edge => &["branch"],
            Kind::Ref => &["event"],
            Kind::Raw => &["value"],
            Kind::Sha => &["format"],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefEvent {
    Branch,
    Tag,
    Pr,
}

/// One `type=` line, defaults filled in as metadata-action fills them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub kind: Kind,
    /// Unexpanded; `true`/`false` after expansion.
    pub enable: String,
    pub priority: f64,
    /// `None`: not given, so the flavor's applies. `ref,event=pr` defaults to `pr-`, `sha` to `sha-`.
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    /// `raw`'s value, or the version source for `semver`/`pep440`/`match` (empty: the git tag).
    pub value: String,
    pub pattern: String,
    /// `semver`/`pep440`: a regex whose group 1 is the version.
    pub match_re: String,
    pub group: usize,
    pub branch: String,
    pub event: Option<RefEvent>,
    pub long_sha: bool,
    /// Attributes this type does not read (typos, usually).
    pub ignored: Vec<String>,
}

impl Rule {
    /// Parses one rule line; the error says what to write instead.
    pub fn parse(line: &str) -> Result<Rule, String> {
        let mut kind = None;
        let mut attrs: Vec<(String, String)> = Vec::new();
        for f in fields(line)? {
            match key_value(&f) {
                (Some(k), v) if k == "type" => {
                    kind = Some(Kind::parse(&v).ok_or_else(|| {
                        format!("unknown `type={v}`: use schedule, semver, pep440, match, edge, ref, raw or sha")
                    })?);
                }
                (Some(k), v) => set(&mut attrs, k, v),
                (None, v) if v.is_empty() => {}
                (None, v) => set(&mut attrs, "value".into(), v),
            }
        }
        let kind = kind.unwrap_or(Kind::Raw);
        let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        let need = |k: &str, example: &str| {
            get(k).ok_or_else(|| format!("`type={}` needs `{k}=` (for example `{example}`)", kind.name()))
        };
        let mut rule = Rule {
            kind,
            enable: get("enable").unwrap_or_else(|| "true".into()),
            priority: kind.default_priority(),
            prefix: get("prefix"),
            suffix: get("suffix"),
            value: get("value").unwrap_or_default(),
            pattern: String::new(),
            match_re: get("match").unwrap_or_default(),
            group: 0,
            branch: get("branch").unwrap_or_default(),
            event: None,
            long_sha: false,
            ignored: attrs
                .iter()
                .map(|(k, _)| k.clone())
                .filter(|k| {
                    !["enable", "priority", "prefix", "suffix"].contains(&k.as_str())
                        && !kind.own_attributes().contains(&k.as_str())
                })
                .collect(),
        };
        if let Some(p) = get("priority") {
            rule.priority = match p.parse::<f64>() {
                Ok(n) if n.is_finite() => n,
                _ if p.is_empty() => 0.0,
                _ => return Err(format!("`priority={p}` is not a number")),
            };
        }
        match kind {
            Kind::Schedule => rule.pattern = get("pattern").unwrap_or_else(|| "nightly".into()),
            Kind::Semver | Kind::Pep440 => {
                rule.pattern = need("pattern", "pattern={{version}}")?;
                if !rule.match_re.is_empty() {
                    super::tags::js_regex(&rule.match_re, "")?;
                }
            }
            Kind::Match => {
                rule.pattern = need("pattern", r"pattern=v(\d.\d.\d),group=1")?;
                match super::tags::regex_literal(&rule.pattern) {
                    Some((body, flags)) => super::tags::js_regex(body, flags)?,
                    None => super::tags::js_regex(&rule.pattern, "")?,
                };
                let g = get("group").unwrap_or_else(|| "0".into());
                rule.group = g.parse().map_err(|_| format!("`group={g}` is not a group number (0, 1, 2...)"))?;
            }
            Kind::Ref => {
                let event = need("event", "event=branch")?;
                rule.event = Some(match event.as_str() {
                    "branch" => RefEvent::Branch,
                    "tag" => RefEvent::Tag,
                    "pr" => RefEvent::Pr,
                    _ => return Err(format!("`event={event}` is not one of branch, tag, pr")),
                });
                if rule.event == Some(RefEvent::Pr) && rule.prefix.is_none() {
                    rule.prefix = Some("pr-".into());
                }
            }
            Kind::Raw => {
                if get("value").is_none() {
                    return Err("`type=raw` needs a value (`type=raw,value=TAG`)".into());
                }
            }
            Kind::Sha => {
                if rule.prefix.is_none() {
                    rule.prefix = Some("sha-".into());
                }
                rule.long_sha = match get("format").as_deref() {
                    None | Some("short") => false,
                    Some("long") => true,
                    Some(f) => return Err(format!("`format={f}` is not `short` or `long`")),
                };
            }
            Kind::Edge => {}
        }
        Ok(rule)
    }
}

/// Later attributes replace earlier ones, as in metadata-action.
fn set(attrs: &mut Vec<(String, String)>, k: String, v: String) {
    attrs.retain(|(a, _)| *a != k);
    attrs.push((k, v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_by_type() {
        let r = Rule::parse("type=schedule").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.pattern.as_str(), r.priority), ("nightly", 1000.0));
        let r = Rule::parse("type=ref,event=pr").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.prefix.as_deref(), r.priority), (Some("pr-"), 600.0));
        let r = Rule::parse("type=ref,event=pr,prefix=").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.prefix.as_deref(), Some(""));
        let r = Rule::parse("type=sha,format=long,priority=2000").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.prefix.as_deref(), r.long_sha, r.priority), (Some("sha-"), true, 2000.0));
        let r = Rule::parse("type=raw,my,enable=false").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.value.as_str(), r.enable.as_str(), r.priority), ("my", "false", 200.0));
        let r = Rule::parse(r#"type=match,"pattern=v(.*)",group=1"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.pattern.as_str(), r.group), ("v(.*)", 1));
        let r = Rule::parse("type=edge,branch=dev,pattern=x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.branch.as_str(), r.ignored.clone()), ("dev", vec!["pattern".to_string()]));
        let r = Rule::parse("value=x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.kind, Kind::Raw);
    }

    #[test]
    fn rule_errors_say_what_to_write() {
        for (line, says) in [
            ("type=semver", "needs `pattern=`"),
            ("type=pep440,value=1.0", "needs `pattern=`"),
            ("type=match", "needs `pattern=`"),
            ("type=match,pattern=x,group=one", "not a group number"),
            ("type=ref", "needs `event=`"),
            ("type=ref,event=commit", "not one of branch, tag, pr"),
            ("type=raw", "needs a value"),
            ("type=sha,format=medium", "not `short` or `long`"),
            ("type=nightly", "unknown `type=nightly`"),
            ("type=raw,value=x,priority=high", "not a number"),
        ] {
            let e = Rule::parse(line).err().unwrap_or_default();
            assert!(e.contains(says), "{line}: {e}");
        }
    }
}

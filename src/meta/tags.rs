//! Tag names: metadata-action's rules applied in priority order (the first value is the version, `latest` by
//! the first rule that produced one), build-push-action v1's static, ref and sha tags, and the tag grammar
//! enforced on all of them so that nothing a registry refuses leaves here.

use regex::{Regex, RegexBuilder};

use super::expr::Template;
use super::flavor::Flavor;
use super::rules::{Kind, RefEvent, Rule};
use super::scope::{GLOBAL_NAMES, Scope, version_pattern};
use super::version::{Pep440, SemVer};
use super::{MetaError, MetaInputs};

/// A rule with the line it came from, for messages.
pub struct Line {
    pub rule: Rule,
    pub number: usize,
    pub text: String,
}

impl Line {
    fn error(&self, message: impl Into<String>) -> MetaError {
        MetaError::Line { input: "tags", line: self.number, text: self.text.clone(), message: message.into() }
    }

    fn note(&self, notices: &mut Vec<String>, message: impl std::fmt::Display) {
        notices.push(format!("tags: line {} `{}`: {message}", self.number, self.text));
    }
}

/// What the rules produced.
#[derive(Debug, Default, PartialEq)]
pub struct Version {
    pub main: Option<String>,
    pub partial: Vec<String>,
    pub latest: bool,
}

/// Runs the rules (already sorted by priority) as metadata-action's `getVersion` does.
pub fn evaluate(lines: &[Line], flavor: &Flavor, s: &Scope, notices: &mut Vec<String>) -> Result<Version, MetaError> {
    let mut v = Version::default();
    let mut latest: Option<bool> = None;
    for line in lines {
        let rule = &line.rule;
        if !rule.ignored.is_empty() {
            line.note(notices, format!("`type={}` does not read {}", rule.kind.name(), rule.ignored.join(", ")));
        }
        let mut unknown = Vec::new();
        let enabled = s.global(&rule.enable, &mut unknown).map_err(|e| line.error(e))?;
        match enabled.as_str() {
            "true" => {}
            "false" => continue,
            other => {
                return Err(line.error(format!("`enable` must be `true` or `false` after expansion, not `{other}`")));
            }
        }
        let produced = produce(line, flavor, s, &mut unknown, notices)?;
        for name in unknown {
            line.note(
                notices,
                format!("`{{{{{name}}}}}` is not known there and gives nothing (expressions: {GLOBAL_NAMES})"),
            );
        }
        let Some((value, latest_auto)) = produced.filter(|(v, _)| !v.is_empty()) else { continue };
        let Some(tag) = enforce(&value, notices) else { continue };
        match &v.main {
            None => v.main = Some(tag),
            Some(main) if *main != tag && !v.partial.contains(&tag) => v.partial.push(tag),
            Some(_) => {}
        }
        latest.get_or_insert(flavor.latest.unwrap_or(latest_auto));
    }
    v.latest = latest.unwrap_or(false);
    Ok(v)
}

/// The value one rule gives (before sanitising) and whether it makes `latest` under `latest=auto`.
fn produce(
    line: &Line,
    flavor: &Flavor,
    s: &Scope,
    unknown: &mut Vec<String>,
    notices: &mut Vec<String>,
) -> Result<Option<(String, bool)>, MetaError> {
    let rule = &line.rule;
    let ctx = s.ctx;
    let err = |e: String| line.error(e);
    let affix = |v: String, unknown: &mut Vec<String>| -> Result<String, MetaError> {
        let prefix = match &rule.prefix {
            Some(p) => s.global(p, unknown).map_err(err)?,
            None => s.global(&flavor.prefix, unknown).map_err(err)?,
        };
        let suffix = match &rule.suffix {
            Some(p) => s.global(p, unknown).map_err(err)?,
            None => s.global(&flavor.suffix, unknown).map_err(err)?,
        };
        Ok(format!("{prefix}{v}{suffix}"))
    };
    // Prefix and suffix go on first: a rule whose value is empty still gives its prefix, as in metadata-action.
    let out = |v: String, latest: bool, unknown: &mut Vec<String>| -> Result<Option<(String, bool)>, MetaError> {
        Ok(Some((affix(v, unknown)?, latest)))
    };
    // The version source of semver, pep440 and match: `value=`, else the git tag.
    let source = |unknown: &mut Vec<String>| -> Result<Option<String>, MetaError> {
        if !rule.value.is_empty() {
            return s.global(&rule.value, unknown).map(Some).map_err(err);
        }
        Ok(ctx.tag().map(str::to_string))
    };
    match rule.kind {
        Kind::Schedule => {
            if !ctx.event_name.contains("schedule") {
                return Ok(None);
            }
            let v = s.schedule(&rule.pattern, unknown).map_err(err)?;
            out(v, false, unknown)
        }
        Kind::Semver | Kind::Pep440 => {
            let Some(mut raw) = source(unknown)? else { return Ok(None) };
            if !rule.match_re.is_empty() {
                let re = js_regex(&rule.match_re, "").map_err(err)?;
                match re.captures(&raw) {
                    None => line.note(notices, format!("`{}` does not match `{raw}`", rule.match_re)),
                    Some(c) => match c.get(1) {
                        Some(m) => raw = m.as_str().to_string(),
                        None => {
                            line.note(notices, format!("`match={}` has no group 1 in `{raw}`", rule.match_re));
                            return Ok(None);
                        }
                    },
                }
            }
            let raw = raw.replace('/', "-");
            let pattern = &rule.pattern;
            if rule.kind == Kind::Semver {
                let Some(v) = SemVer::parse(&raw) else {
                    line.note(notices, format!("`{raw}` is not a valid semver (https://semver.org/): no tag"));
                    return Ok(None);
                };
                let field = |n: &str| v.field(n);
                let rendered = if v.is_prerelease() && !Template::is_raw_statement(pattern) {
                    v.version()
                } else {
                    version_pattern(pattern, &field, unknown).map_err(err)?
                };
                out(rendered, !v.is_prerelease(), unknown)
            } else {
                let Some(v) = Pep440::parse(&raw) else {
                    line.note(
                        notices,
                        format!("`{raw}` is not a PEP 440 version (https://peps.python.org/pep-0440/): no tag"),
                    );
                    return Ok(None);
                };
                let rendered = match (v.is_special(), Template::is_raw_statement(pattern)) {
                    (true, true) => raw.clone(),
                    (true, false) => v.clean(),
                    (false, _) => version_pattern(pattern, &|n: &str| v.field(n), unknown).map_err(err)?,
                };
                out(rendered, !v.is_special(), unknown)
            }
        }
        Kind::Match => {
            let Some(raw) = source(unknown)? else { return Ok(None) };
            let (re, global) = match regex_literal(&rule.pattern) {
                Some((body, flags)) => (js_regex(body, flags).map_err(err)?, flags.contains('g')),
                None => (js_regex(&rule.pattern, "").map_err(err)?, false),
            };
            let found: Option<Vec<Option<String>>> = if global {
                let all: Vec<Option<String>> = re.find_iter(&raw).map(|m| Some(m.as_str().to_string())).collect();
                (!all.is_empty()).then_some(all)
            } else {
                re.captures(&raw).map(|c| c.iter().map(|m| m.map(|m| m.as_str().to_string())).collect())
            };
            let Some(groups) = found else {
                line.note(notices, format!("`{}` does not match `{raw}`", rule.pattern));
                return Ok(None);
            };
            let Some(Some(v)) = groups.get(rule.group) else {
                line.note(notices, format!("group {} does not exist for `{}`", rule.group, rule.pattern));
                return Ok(None);
            };
            out(v.clone(), true, unknown)
        }
        Kind::Ref => {
            let (v, latest) = match rule.event {
                Some(RefEvent::Branch) => (ctx.branch().map(str::to_string), false),
                Some(RefEvent::Tag) => (ctx.tag().map(str::to_string), true),
                Some(RefEvent::Pr) => (ctx.pull().map(|p| p.strip_suffix("/merge").unwrap_or(p).to_string()), false),
                None => (None, false),
            };
            match v {
                Some(v) => out(v, latest, unknown),
                None => Ok(None),
            }
        }
        Kind::Edge => {
            let Some(branch) = ctx.branch() else { return Ok(None) };
            let want =
                if rule.branch.is_empty() { s.repo.default_branch.as_deref().unwrap_or("") } else { &rule.branch };
            if want != branch {
                return Ok(None);
            }
            out("edge".into(), false, unknown)
        }
        Kind::Raw => {
            let v = s.global(&rule.value, unknown).map_err(err)?;
            out(v, false, unknown)
        }
        Kind::Sha => {
            if s.sha.is_empty() {
                return Ok(None);
            }
            let v = if rule.long_sha { s.sha.clone() } else { s.short_sha() };
            out(v, false, unknown)
        }
    }
}

/// `/body/flags`, as metadata-action recognises a regex literal in `type=match` patterns.
pub fn regex_literal(p: &str) -> Option<(&str, &str)> {
    let inner = p.strip_prefix('/')?;
    let end = inner.rfind('/')?;
    (end > 0).then(|| (&inner[..end], &inner[end + 1..]))
}

/// Compiles a JavaScript regex: `\d`, `\w`, `\s` and their negations are ASCII as in JavaScript; flags `i`, `m`,
/// `s`, `u`, `g` (the caller handles `g`).
pub fn js_regex(body: &str, flags: &str) -> Result<Regex, String> {
    let mut b = RegexBuilder::new(&translate(body));
    for f in flags.chars() {
        match f {
            'i' => b.case_insensitive(true),
            'm' => b.multi_line(true),
            's' => b.dot_matches_new_line(true),
            'g' | 'u' | 'v' | 'd' => &mut b,
            other => return Err(format!("the regex flag `{other}` is not supported (i, m, s, u, g are)")),
        };
    }
    b.build().map_err(|e| {
        format!("`{body}` is not a regular expression octopush can run (look-around and back-references are not supported): {e}")
    })
}

fn translate(js: &str) -> String {
    let mut out = String::new();
    let mut chars = js.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[A-Za-z0-9_]"),
            Some('W') => out.push_str("[^A-Za-z0-9_]"),
            Some('/') => out.push('/'),
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// metadata-action's sanitising: every run of characters outside `[A-Za-z0-9._-]` becomes one `-`.
pub fn sanitize(t: &str) -> String {
    let mut s = String::with_capacity(t.len());
    let mut in_run = false;
    for c in t.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            s.push(c);
            in_run = false;
        } else if !in_run {
            s.push('-');
            in_run = true;
        }
    }
    s
}

/// Sanitises, then applies what registries also require and metadata-action does not check: no leading `.` or
/// `-` (dropped) and at most 128 characters (cut), each with a notice. `None` when nothing is left.
pub fn enforce(value: &str, notices: &mut Vec<String>) -> Option<String> {
    let clean = sanitize(value);
    let trimmed = clean.trim_start_matches(['.', '-']);
    if trimmed.is_empty() {
        notices
            .push(format!("the tag `{value}` has no character a tag may start with (letters, digits, `_`): skipped"));
        return None;
    }
    if trimmed.len() != clean.len() {
        notices.push(format!("the tag `{clean}` may not start with `.` or `-`: using `{trimmed}`"));
    }
    if trimmed.len() > 128 {
        let cut = &trimmed[..128];
        notices.push(format!("the tag `{trimmed}` is longer than 128 characters: cut to `{cut}`"));
        return Some(cut.to_string());
    }
    Some(trimmed.to_string())
}

/// The v1 `tags` list entries: tag names as typed, which must already be valid.
pub fn static_tag(t: &str) -> Result<String, String> {
    if crate::image::is_valid_tag(t) {
        return Ok(t.to_string());
    }
    let hint = if t.contains("{{") {
        " (expressions need a rule line: `type=raw,value=...`)"
    } else if t.contains(':') || t.contains('/') {
        " (`tags` takes tag names; the image names go in `images`)"
    } else if t.contains('=') {
        " (a rule line needs `type=`, for example `type=raw,value=...`)"
    } else {
        ""
    };
    Err(format!(
        "`{t}` is not a valid tag: up to 128 characters from `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`{hint}"
    ))
}

/// build-push-action v1's `tag_with_ref` and `tag_with_sha` tags, in that order.
pub fn v1_tags(inputs: &MetaInputs, s: &Scope, notices: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let r = &s.ctx.git_ref;
    if inputs.tag_with_ref {
        let t = if r == "refs/heads/master" {
            Some("latest".to_string())
        } else if let Some(b) = s.ctx.branch() {
            Some(b.replace('/', "-"))
        } else if let Some(t) = s.ctx.tag() {
            Some(t.to_string())
        } else {
            s.ctx.pull().map(|p| format!("pr-{}", p.replace('/', "-")))
        };
        if let Some(t) = t.filter(|t| !t.is_empty()) {
            out.extend(enforce(&t, notices));
        }
    }
    if inputs.tag_with_sha && !s.sha.is_empty() {
        out.push(format!("sha-{}", s.sha.chars().take(7).collect::<String>()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitising_keeps_case_and_collapses_runs() {
        assert_eq!(sanitize("my/feature#1245"), "my-feature-1245");
        assert_eq!(sanitize("a//b"), "a-b");
        assert_eq!(sanitize("Été_1.0"), "-t-_1.0");
        assert_eq!(sanitize("2020-01-10T00:30:00Z"), "2020-01-10T00-30-00Z");
    }

    #[test]
    fn enforcing_the_tag_grammar() {
        let mut n = Vec::new();
        assert_eq!(enforce("v1.0", &mut n), Some("v1.0".into()));
        assert!(n.is_empty());
        assert_eq!(enforce("-x", &mut n), Some("x".into()));
        assert_eq!(enforce("#12 fix", &mut n), Some("12-fix".into()));
        assert_eq!(enforce(".hidden", &mut n), Some("hidden".into()));
        assert_eq!(enforce("_ok", &mut n), Some("_ok".into()));
        assert_eq!(enforce("--", &mut n), None);
        let long = "a".repeat(200);
        assert_eq!(enforce(&long, &mut n).map(|t| t.len()), Some(128));
        assert_eq!(enforce(&"b".repeat(128), &mut n).map(|t| t.len()), Some(128));
        assert_eq!(n.len(), 5, "{n:?}");
    }

    #[test]
    fn static_tags_are_checked_not_rewritten() {
        assert_eq!(static_tag("v1.2_3-x"), Ok("v1.2_3-x".into()));
        for (bad, hint) in [
            ("ghcr.io/o/app:1", "image names go in `images`"),
            ("{{branch}}", "rule line"),
            ("value=x", "needs `type=`"),
            ("-x", ""),
            ("a b", ""),
        ] {
            let e = static_tag(bad).err().unwrap_or_default();
            assert!(e.contains("not a valid tag") && e.contains(hint), "{bad}: {e}");
        }
        assert!(static_tag(&"x".repeat(129)).is_err());
    }

    #[test]
    fn javascript_regexes() {
        let re = js_regex(r"^v(\d.\d.\d)$", "i").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(re.captures("V1.2.3").and_then(|c| c.get(1)).map(|m| m.as_str()), Some("1.2.3"));
        assert!(js_regex(r"\d", "").is_ok_and(|r| !r.is_match("٣")));
        assert!(js_regex(r"p1\/v", "").is_ok_and(|r| r.is_match("p1/v")));
        assert!(js_regex(r"(?=x)", "").is_err());
        assert!(js_regex("x", "y").is_err());
        assert_eq!(regex_literal(r"/^v(\d)$/ig"), Some((r"^v(\d)$", "ig")));
        assert_eq!(regex_literal(r"p1/v(\d)"), None);
        assert_eq!(regex_literal("//"), None);
    }
}

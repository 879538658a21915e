//! Labels and annotations: metadata-action's eight OCI keys from the repository and the event, then the user's
//! `key=value` lines (expressions expanded) replacing them by key. Annotations carry a level
//! (`manifest:`, `index:`, `manifest-descriptor:`, `index-descriptor:`, optionally `[platform]`); plain lines
//! and the defaults are `manifest:`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use super::scope::{GLOBAL_NAMES, Scope};
use super::{MetaError, RepoData};

pub const OCI: &str = "org.opencontainers.image";

/// The eight OCI keys, in metadata-action's order.
pub fn defaults(repo: &RepoData, version: &str, created: DateTime<Utc>, sha: &str) -> Vec<(String, String)> {
    [
        ("title", repo.name.clone()),
        ("description", repo.description.clone().unwrap_or_default()),
        ("url", repo.html_url.clone()),
        ("source", repo.html_url.clone()),
        ("version", version.to_string()),
        ("created", created.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ("revision", sha.to_string()),
        ("licenses", repo.license_spdx.clone().unwrap_or_default()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("{OCI}.{k}"), v))
    .collect()
}

/// The lines of `labels` or `annotations` as `(key, value)`, expressions expanded (`scope`), or literally
/// (`None`). Blank lines and `#` comments are skipped.
pub fn pairs(
    lines: &[String],
    input: &'static str,
    scope: Option<&Scope>,
    notices: &mut Vec<String>,
) -> Result<Vec<(String, String)>, MetaError> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let err = |message: String| MetaError::Line { input, line: i + 1, text: text.to_string(), message };
        let mut unknown = Vec::new();
        let expanded = match scope {
            Some(s) => s.global(text, &mut unknown).map_err(err)?,
            None => text.to_string(),
        };
        for name in unknown {
            notices.push(format!(
                "{input}: line {} `{text}`: `{{{{{name}}}}}` is not known and gives nothing (expressions: {GLOBAL_NAMES})",
                i + 1
            ));
        }
        // metadata-action drops lines without `=` silently; they are dropped here too, but the user hears of it.
        // An empty or spaced key is refused in the docker CLI's words (`opts.ValidateLabel`).
        let what = if input == "labels" { "label" } else { "annotation" };
        match expanded.split_once('=') {
            Some((k, _)) if k.trim().is_empty() => {
                return Err(err(format!("invalid {what} '{expanded}': empty name (write `key=value`)")));
            }
            Some((k, _)) if k.trim().contains(char::is_whitespace) => {
                return Err(err(format!(
                    "{what} '{}' contains whitespaces (keys are reverse-DNS names such as `com.example.team`)",
                    k.trim()
                )));
            }
            Some((k, v)) => out.push((k.trim().to_string(), v.to_string())),
            None => notices.push(format!("{input}: line {} `{text}` is not `key=value`: ignored", i + 1)),
        }
    }
    Ok(out)
}

/// Defaults, then the user's pairs replacing them by key.
pub fn merge(defaults: Vec<(String, String)>, user: Vec<(String, String)>) -> BTreeMap<String, String> {
    defaults.into_iter().chain(user).collect()
}

/// Annotations keyed `LEVEL:key`: the defaults at `manifest`, then the user's, each at the levels its key names
/// (`index,manifest:key`) or at `manifest`.
pub fn annotations(
    defaults: Vec<(String, String)>,
    user: Vec<(String, String)>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in defaults {
        out.insert(format!("manifest:{k}"), v);
    }
    for (k, v) in user {
        let (levels, key) = split_levels(&k)?;
        for level in levels {
            out.insert(format!("{level}:{key}"), v.clone());
        }
    }
    Ok(out)
}

/// `index,manifest[linux/amd64]:key` → (`["index", "manifest[linux/amd64]"]`, `key`); a key without `:` is at
/// `manifest`. A prefix that is not a list of levels is refused in buildx's words (`unknown annotation type`).
fn split_levels(k: &str) -> Result<(Vec<String>, String), String> {
    const LEVELS: [&str; 4] = ["manifest", "index", "manifest-descriptor", "index-descriptor"];
    let Some((head, key)) = k.split_once(':') else { return Ok((vec!["manifest".into()], k.into())) };
    let levels: Vec<&str> = head.split(',').map(str::trim).collect();
    let is_level = |l: &str| {
        let base = l.split_once('[').map_or(l, |(b, _)| b);
        LEVELS.contains(&base) && (base == l || l.ends_with(']'))
    };
    if let Some(bad) = levels.iter().find(|l| !is_level(l)) {
        return Err(format!(
            "unknown annotation type \"{bad}\": prefix the key with {} (several comma-separated, each optionally \
             with [os/arch]), or with nothing for `manifest`",
            LEVELS.join(", ")
        ));
    }
    if key.trim().is_empty() {
        return Err(format!("`{k}` names a level but no key"));
    }
    Ok((levels.into_iter().map(str::to_string).collect(), key.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_eight_defaults() {
        let repo = RepoData {
            name: "App".into(),
            description: Some("An app".into()),
            html_url: "https://github.com/o/App".into(),
            license_spdx: Some("MIT".into()),
            default_branch: None,
        };
        let created = DateTime::from_timestamp(1578616200, 0).unwrap_or_default();
        let d: BTreeMap<_, _> = defaults(&repo, "1.0", created, "abc").into_iter().collect();
        assert_eq!(d.len(), 8);
        assert_eq!(d["org.opencontainers.image.created"], "2020-01-10T00:30:00.000Z");
        assert_eq!(d["org.opencontainers.image.source"], "https://github.com/o/App");
        assert_eq!(d["org.opencontainers.image.licenses"], "MIT");
        assert_eq!(d["org.opencontainers.image.revision"], "abc");
    }

    #[test]
    fn user_lines_are_key_value() {
        let lines: Vec<String> = ["a=1", "# note", "", "b = x=y", "c="].iter().map(|s| s.to_string()).collect();
        let p = pairs(&lines, "labels", None, &mut Vec::new()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p, kv(&[("a", "1"), ("b", " x=y"), ("c", "")]));
        let mut notices = Vec::new();
        let p = pairs(&["novalue".to_string()], "labels", None, &mut notices).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.is_empty());
        assert_eq!(notices, ["labels: line 1 `novalue` is not `key=value`: ignored"]);
    }

    #[test]
    fn merge_replaces_by_key() {
        let m = merge(kv(&[("a", "1"), ("b", "2")]), kv(&[("b", "3"), ("c", "4")]));
        assert_eq!(m.into_iter().collect::<Vec<_>>(), kv(&[("a", "1"), ("b", "3"), ("c", "4")]));
    }

    #[test]
    fn annotation_levels() {
        let a = annotations(
            kv(&[("t", "d")]),
            kv(&[
                ("x", "1"),
                ("index:y", "2"),
                ("index,manifest-descriptor:z", "3"),
                ("manifest[linux/amd64]:w", "4"),
                ("manifest:t", "6"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let keys: Vec<&str> = a.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["index:y", "index:z", "manifest-descriptor:z", "manifest:t", "manifest:x", "manifest[linux/amd64]:w"]
        );
        assert_eq!(a["manifest:t"], "6");
        assert!(annotations(vec![], kv(&[("index:", "x")])).is_err());
        // Issue 13, finding 7: an unknown prefix was taken as part of the key.
        for bad in ["com.ex:k", "indx:k", "index,foo:k", "manifest[linux/amd64:k"] {
            let e = annotations(vec![], kv(&[(bad, "v")])).unwrap_err();
            assert!(e.starts_with("unknown annotation type \"") && e.contains("index-descriptor"), "{bad}: {e}");
        }
    }

    /// Issue 13, finding 7: empty and spaced keys were accepted; refused in the docker CLI's words.
    #[test]
    fn empty_and_spaced_keys_are_refused() {
        for (input, line, want) in [
            ("labels", "=x", "invalid label '=x': empty name"),
            ("labels", "  = x", "invalid label '= x': empty name"),
            ("labels", "a b=1", "label 'a b' contains whitespaces"),
            ("annotations", "=x", "invalid annotation '=x': empty name"),
            ("annotations", "my key=1", "annotation 'my key' contains whitespaces"),
        ] {
            let e = pairs(&[line.to_string()], input, None, &mut Vec::new()).unwrap_err().to_string();
            assert!(e.starts_with(&format!("input `{input}`, line 1 ")) && e.contains(want), "{line}: {e}");
        }
        let mut notices = Vec::new();
        assert!(pairs(&["novalue".to_string()], "labels", None, &mut notices).unwrap().is_empty());
        assert_eq!(notices.len(), 1, "a line without `=` is still dropped with a notice, as metadata-action does");
    }
}

//! Tags, labels and annotations: a pure function of (inputs, event context, clock, repository data).
//! This pass covers build-push-action v1's inputs (`tags`, `tag_with_ref`, `tag_with_sha`), plain tag lists,
//! metadata-action's default rules, and the eight OCI labels; `type=` rule lines are refused with a clear error.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("input `{input}`: {message}")]
    Input { input: &'static str, message: String },
    #[error("reading the repository {repository} from GitHub's API: {message}")]
    Api { repository: String, message: String },
}

#[derive(Debug, Clone, Default)]
pub struct GitContext {
    pub event_name: String,
    pub sha: String,
    pub git_ref: String,
    pub head_ref: String,
    pub base_ref: String,
    pub repository: String,
    pub server_url: String,
    pub api_url: String,
    pub payload: Value,
}

impl GitContext {
    pub fn from_vars(vars: &BTreeMap<String, String>, payload: Option<Value>) -> GitContext {
        let v = |k: &str| vars.get(k).cloned().unwrap_or_default();
        let or = |k: &str, d: &str| vars.get(k).filter(|s| !s.is_empty()).cloned().unwrap_or_else(|| d.to_string());
        GitContext {
            event_name: v("GITHUB_EVENT_NAME"),
            sha: v("GITHUB_SHA"),
            git_ref: v("GITHUB_REF"),
            head_ref: v("GITHUB_HEAD_REF"),
            base_ref: v("GITHUB_BASE_REF"),
            repository: v("GITHUB_REPOSITORY"),
            server_url: or("GITHUB_SERVER_URL", "https://github.com"),
            api_url: or("GITHUB_API_URL", "https://api.github.com"),
            payload: payload.unwrap_or(Value::Null),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RepoData {
    pub name: String,
    pub description: Option<String>,
    pub html_url: String,
    pub license_spdx: Option<String>,
    pub default_branch: Option<String>,
}

impl RepoData {
    pub fn fallback(ctx: &GitContext) -> RepoData {
        RepoData {
            name: ctx.repository.rsplit('/').next().unwrap_or_default().to_string(),
            html_url: if ctx.repository.is_empty() {
                String::new()
            } else {
                format!("{}/{}", ctx.server_url.trim_end_matches('/'), ctx.repository)
            },
            default_branch: ctx.payload["repository"]["default_branch"].as_str().map(str::to_string),
            ..RepoData::default()
        }
    }
}

/// `GET /repos/{owner}/{repo}` through octocrab, with `api_url` as its base (GitHub Enterprise Server works).
pub async fn fetch_repo(api_url: &str, token: Option<&Secret>, full_name: &str) -> Result<RepoData, MetaError> {
    let err = |message: String| MetaError::Api { repository: full_name.to_string(), message };
    let (owner, name) = full_name.split_once('/').ok_or_else(|| err("not an owner/repo name".into()))?;
    let mut builder = octocrab::Octocrab::builder()
        .base_uri(api_url)
        .map_err(|e| err(e.to_string()))?
        .set_connect_timeout(Some(std::time::Duration::from_secs(5)))
        .set_read_timeout(Some(std::time::Duration::from_secs(10)));
    if let Some(t) = token {
        builder = builder.personal_token(t.expose().to_string());
    }
    let client = builder.build().map_err(|e| err(e.to_string()))?;
    let repo = client.repos(owner, name).get().await.map_err(|e| err(octocrab_message(&e)))?;
    Ok(RepoData {
        name: repo.name,
        description: repo.description,
        html_url: repo.html_url.map(|u| u.to_string()).unwrap_or_default(),
        license_spdx: repo.license.map(|l| l.spdx_id).filter(|s| !s.is_empty() && s != "NOASSERTION"),
        default_branch: repo.default_branch,
    })
}

fn octocrab_message(e: &octocrab::Error) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => source.message.clone(),
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(c) = src {
                s = format!("{s}: {c}");
                src = c.source();
            }
            s
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct MetaInputs {
    pub images: Vec<String>,
    pub tags: Vec<String>,
    pub flavor: Vec<String>,
    pub labels: Vec<String>,
    pub annotations: Vec<String>,
    pub tag_with_ref: bool,
    pub tag_with_sha: bool,
    pub pr_head_sha: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub version: Option<String>,
    pub tag_names: Vec<String>,
    pub tags: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub json: Value,
}

/// `SOURCE_DATE_EPOCH`, else the commit's time from the event payload, else `now`.
pub fn created_time(source_date_epoch: Option<i64>, ctx: &GitContext, now: DateTime<Utc>) -> DateTime<Utc> {
    if let Some(t) = source_date_epoch.and_then(|s| DateTime::from_timestamp(s, 0)) {
        return t;
    }
    let p = &ctx.payload;
    [&p["head_commit"]["timestamp"], &p["pull_request"]["head"]["repo"]["pushed_at"], &p["repository"]["pushed_at"]]
        .iter()
        .filter_map(|v| v.as_str())
        .find_map(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now)
}

pub fn compute(
    inputs: &MetaInputs,
    ctx: &GitContext,
    clock: DateTime<Utc>,
    repo: &RepoData,
) -> Result<Meta, MetaError> {
    let names = tag_names(inputs, ctx)?;
    let version = names.first().cloned();
    let images: Vec<String> = inputs.images.iter().map(|i| i.trim().to_ascii_lowercase()).collect();
    let tags = images.iter().flat_map(|i| names.iter().map(move |t| format!("{i}:{t}"))).collect();
    let mut labels = BTreeMap::new();
    let oci = |k: &str| format!("org.opencontainers.image.{k}");
    labels.insert(oci("title"), repo.name.clone());
    labels.insert(oci("description"), repo.description.clone().unwrap_or_default());
    labels.insert(oci("url"), repo.html_url.clone());
    labels.insert(oci("source"), repo.html_url.clone());
    labels.insert(oci("version"), version.clone().unwrap_or_default());
    labels.insert(oci("created"), clock.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    labels.insert(oci("revision"), ctx.sha.clone());
    labels.insert(oci("licenses"), repo.license_spdx.clone().unwrap_or_default());
    labels.extend(parse_pairs(&inputs.labels, "labels")?);
    let annotations: BTreeMap<String, String> = parse_pairs(&inputs.annotations, "annotations")?
        .into_iter()
        .map(|(k, v)| (k.strip_prefix("manifest:").map(str::to_string).unwrap_or(k), v))
        .collect();
    let json = serde_json::json!({ "tags": &tags, "labels": &labels, "annotations": &annotations });
    Ok(Meta { version, tag_names: names, tags, labels, annotations, json })
}

/// The user's `labels` alone (for `add_git_labels: false`).
pub fn user_labels(inputs: &MetaInputs) -> Result<BTreeMap<String, String>, MetaError> {
    parse_pairs(&inputs.labels, "labels")
}

fn parse_pairs(lines: &[String], input: &'static str) -> Result<BTreeMap<String, String>, MetaError> {
    let mut out = BTreeMap::new();
    for entry in lines.iter().flat_map(|l| l.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        match entry.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => return Err(MetaError::Input { input, message: format!("`{entry}` is not `key=value`") }),
        }
    }
    Ok(out)
}

fn tag_names(inputs: &MetaInputs, ctx: &GitContext) -> Result<Vec<String>, MetaError> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |t: String| {
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    };
    for line in &inputs.tags {
        if line.contains("type=") {
            return Err(MetaError::Input {
                input: "tags",
                message: format!("`{line}`: metadata-action `type=` rules are not supported yet; use plain tags"),
            });
        }
        for t in line.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            push(check_tag(t)?);
        }
    }
    let r = &ctx.git_ref;
    let v1 = inputs.tag_with_ref || inputs.tag_with_sha || !inputs.tags.is_empty();
    if inputs.tag_with_ref {
        let t = if r == "refs/heads/master" {
            "latest".to_string()
        } else if let Some(b) = r.strip_prefix("refs/heads/") {
            b.replace('/', "-")
        } else if let Some(t) = r.strip_prefix("refs/tags/") {
            t.to_string()
        } else if let Some(p) = r.strip_prefix("refs/pull/") {
            format!("pr-{}", p.replace('/', "-"))
        } else {
            String::new()
        };
        push(sanitize(&t));
    }
    if inputs.tag_with_sha && ctx.sha.len() >= 7 {
        push(format!("sha-{}", &ctx.sha[..7]));
    }
    if !v1 {
        // metadata-action's default rules: the branch, the tag, pr-N.
        if let Some(b) = r.strip_prefix("refs/heads/") {
            push(sanitize(b));
        } else if let Some(t) = r.strip_prefix("refs/tags/") {
            push(sanitize(t));
            push("latest".into());
        } else if let Some(p) = r.strip_prefix("refs/pull/") {
            push(format!("pr-{}", p.trim_end_matches("/merge")));
        }
    }
    Ok(out)
}

/// Every run of characters outside `[A-Za-z0-9._-]` becomes `-`; at most 128 characters; no leading `.` or `-`.
fn sanitize(t: &str) -> String {
    let mut s = String::new();
    for c in t.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            s.push(c);
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    let s = s.trim_start_matches(['.', '-']);
    s.chars().take(128).collect()
}

fn check_tag(t: &str) -> Result<String, MetaError> {
    let ok = !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(t.to_string())
    } else {
        Err(MetaError::Input {
            input: "tags",
            message: format!(
                "`{t}` is not a valid tag: up to 128 characters from `[A-Za-z0-9._-]`, not starting with `.` or `-`"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "676cae2f85471aeff6776463c72881ebd902dcf9";

    fn ctx(git_ref: &str) -> GitContext {
        GitContext {
            event_name: "push".into(),
            sha: SHA.into(),
            git_ref: git_ref.into(),
            repository: "Octo-Org/App".into(),
            server_url: "https://github.com".into(),
            ..GitContext::default()
        }
    }

    fn names(tags: &[&str], with_ref: bool, with_sha: bool, git_ref: &str) -> Result<Vec<String>, MetaError> {
        let inputs = MetaInputs {
            images: vec!["ghcr.io/Octo-Org/App".into()],
            tags: tags.iter().map(|t| t.to_string()).collect(),
            tag_with_ref: with_ref,
            tag_with_sha: with_sha,
            ..MetaInputs::default()
        };
        compute(&inputs, &ctx(git_ref), Utc::now(), &RepoData::fallback(&ctx(git_ref))).map(|m| m.tag_names)
    }

    /// One row: `tags` lines, `tag_with_ref`, `tag_with_sha`, the git ref, the expected tags.
    type Row = (&'static [&'static str], bool, bool, &'static str, &'static [&'static str]);

    /// build-push-action v1's rules, as TAGS.md lists them.
    #[test]
    fn v1_rules_table() {
        let rows: &[Row] = &[
            (&[], true, false, "refs/heads/master", &["latest"]),
            (&[], true, false, "refs/heads/main", &["main"]),
            (&[], true, false, "refs/heads/my/branch", &["my-branch"]),
            (&[], true, false, "refs/tags/v1.0.0", &["v1.0.0"]),
            (&[], true, false, "refs/pull/2/merge", &["pr-2-merge"]),
            (&[], false, true, "refs/heads/master", &["sha-676cae2"]),
            (&["a,b", "", "c"], true, true, "refs/heads/dev", &["a", "b", "c", "dev", "sha-676cae2"]),
            (&["latest"], true, false, "refs/heads/master", &["latest"]),
            (&[], false, false, "refs/heads/feature/x", &["feature-x"]),
            (&[], false, false, "refs/tags/v2.1", &["v2.1", "latest"]),
            (&[], false, false, "refs/pull/7/merge", &["pr-7"]),
        ];
        for (tags, with_ref, with_sha, git_ref, want) in rows {
            assert_eq!(
                names(tags, *with_ref, *with_sha, git_ref).unwrap(),
                *want,
                "{tags:?} {with_ref} {with_sha} {git_ref}"
            );
        }
    }

    #[test]
    fn invalid_tags_are_refused_before_any_push() {
        for bad in ["-lead", ".lead", "sp ace", &"x".repeat(129)] {
            let e = names(&[bad], false, false, "refs/heads/master").unwrap_err().to_string();
            assert!(e.starts_with("input `tags`:") && e.contains("128"), "{e}");
        }
        assert!(names(&["type=semver,pattern={{version}}"], false, false, "refs/tags/v1").is_err());
    }

    #[test]
    fn images_lowercased_labels_and_created() {
        let inputs = MetaInputs {
            images: vec!["ghcr.io/Octo-Org/App".into()],
            tags: vec!["v1".into()],
            labels: vec!["org.opencontainers.image.title=Custom".into()],
            ..MetaInputs::default()
        };
        let c = ctx("refs/heads/master");
        let clock = created_time(Some(1578616200), &c, Utc::now());
        let m = compute(&inputs, &c, clock, &RepoData::fallback(&c)).unwrap();
        assert_eq!(m.tags, vec!["ghcr.io/octo-org/app:v1"]);
        assert_eq!(m.version.as_deref(), Some("v1"));
        assert_eq!(m.labels["org.opencontainers.image.source"], "https://github.com/Octo-Org/App");
        assert_eq!(m.labels["org.opencontainers.image.revision"], SHA);
        assert_eq!(m.labels["org.opencontainers.image.title"], "Custom", "user labels override");
        assert_eq!(m.labels["org.opencontainers.image.created"], "2020-01-10T00:30:00.000Z");
    }

    #[test]
    fn created_prefers_source_date_epoch_then_the_commit_time() {
        let mut c = ctx("refs/heads/master");
        let now = Utc::now();
        assert_eq!(created_time(None, &c, now), now);
        c.payload = serde_json::json!({"head_commit": {"timestamp": "2021-03-04T05:06:07+01:00"}});
        assert_eq!(created_time(None, &c, now).to_rfc3339(), "2021-03-04T04:06:07+00:00");
        assert_eq!(created_time(Some(0), &c, now).timestamp(), 0);
    }
}

//! What `{{...}}` names mean where: the global expressions (`{{branch}}`, `{{date 'YYYYMMDD'}}`...) in values,
//! prefixes, suffixes, `enable` and labels; `{{date}}` alone in schedule patterns; version fields in
//! semver/pep440 patterns.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::datefmt;
use super::expr::{Call, Param, Resolved, Template};
use super::{GitContext, RepoData};

/// The event and clocks expressions are evaluated against.
pub struct Scope<'a> {
    pub ctx: &'a GitContext,
    pub repo: &'a RepoData,
    /// The commit the build is for (`GITHUB_SHA`, or the pull request's head with `pr_head_sha`).
    pub sha: String,
    /// `{{date}}`.
    pub date: DateTime<Utc>,
    /// `{{commit_date}}`.
    pub commit_date: DateTime<Utc>,
    /// metadata-action's short sha length.
    pub short_sha_len: usize,
}

pub const GLOBAL_NAMES: &str =
    "branch, tag, sha, base_ref, is_default_branch, is_not_default_branch, date, commit_date";

impl Scope<'_> {
    pub fn short_sha(&self) -> String {
        self.sha.chars().take(self.short_sha_len).collect()
    }

    fn is_default_branch(&self) -> bool {
        self.ctx.is_default_branch(self.repo.default_branch.as_deref())
    }

    /// Expands the global expressions in `src`; unknown names render empty and land in `unknown`.
    pub fn global(&self, src: &str, unknown: &mut Vec<String>) -> Result<String, String> {
        if !src.contains("{{") {
            return Ok(src.to_string());
        }
        Template::parse(src)?.render(
            &mut |c: &Call| {
                Ok(Resolved::Value(match c.name.as_str() {
                    "branch" => self.ctx.branch().unwrap_or_default().to_string(),
                    "tag" => self.ctx.tag().unwrap_or_default().to_string(),
                    "sha" => self.short_sha(),
                    "base_ref" => self.ctx.base_ref_expr(),
                    "is_default_branch" => self.is_default_branch().to_string(),
                    "is_not_default_branch" => (!self.is_default_branch()).to_string(),
                    "date" => date(c, self.date)?,
                    "commit_date" => date(c, self.commit_date)?,
                    _ => return Ok(Resolved::Unknown),
                }))
            },
            unknown,
        )
    }

    /// A schedule `pattern`: only `{{date}}` and `{{commit_date}}` are known there, as in metadata-action.
    pub fn schedule(&self, src: &str, unknown: &mut Vec<String>) -> Result<String, String> {
        Template::parse(src)?.render(
            &mut |c: &Call| {
                Ok(match c.name.as_str() {
                    "date" => Resolved::Value(date(c, self.date)?),
                    "commit_date" => Resolved::Value(date(c, self.commit_date)?),
                    _ => Resolved::Unknown,
                })
            },
            unknown,
        )
    }
}

/// A version `pattern`, with `field` answering `{{version}}`, `{{major}}`...
pub fn version_pattern(
    src: &str,
    field: &dyn Fn(&str) -> Option<String>,
    unknown: &mut Vec<String>,
) -> Result<String, String> {
    Template::parse(src)?.render(&mut |c: &Call| Ok(field(&c.name).map_or(Resolved::Unknown, Resolved::Value)), unknown)
}

/// `{{date 'FORMAT' tz='Zone'}}`: a format that is not a string (or none) gives moment's default format.
fn date(c: &Call, instant: DateTime<Utc>) -> Result<String, String> {
    let format = match c.params.first() {
        Some(Param::Str(s)) | Some(Param::Num(s)) => Some(s.as_str()),
        _ => None,
    };
    let mut tz = Tz::UTC;
    for (k, v) in &c.hash {
        match (k.as_str(), v) {
            ("tz", Param::Str(name)) => {
                tz = datefmt::zone(name).ok_or_else(|| {
                    format!(
                        "`{name}` in `{{{{{} tz=...}}}}` is not a time zone name (for example `Europe/Paris`)",
                        c.name
                    )
                })?;
            }
            ("tz", _) => return Err(format!("`tz=` in `{{{{{}}}}}` takes a quoted zone name", c.name)),
            (other, _) => return Err(format!("unknown attribute `{other}` in `{{{{{}}}}}` (only `tz=`)", c.name)),
        }
    }
    Ok(datefmt::format(instant, tz, format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn scope_on(git_ref: &str, event: &str) -> (GitContext, RepoData) {
        let vars: BTreeMap<String, String> = [
            ("GITHUB_REF", git_ref),
            ("GITHUB_EVENT_NAME", event),
            ("GITHUB_SHA", "860c1904a1ce19322e91ac35af1ab07466440c37"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ctx = GitContext::from_vars(&vars, Some(json!({"repository": {"default_branch": "master"}})));
        (ctx, RepoData::default())
    }

    fn clock() -> DateTime<Utc> {
        DateTime::from_timestamp(1578616200, 0).unwrap_or_default()
    }

    /// The scope every test here evaluates in: the fixed clock, 7-character short shas.
    fn test_scope<'a>(ctx: &'a GitContext, repo: &'a RepoData) -> Scope<'a> {
        Scope { ctx, repo, sha: ctx.sha.clone(), date: clock(), commit_date: clock(), short_sha_len: 7 }
    }

    fn expand(git_ref: &str, src: &str) -> Result<String, String> {
        let (ctx, repo) = scope_on(git_ref, "push");
        test_scope(&ctx, &repo).global(src, &mut Vec::new())
    }

    #[test]
    fn global_names() {
        assert_eq!(expand("refs/heads/master", "{{branch}}-{{tag}}-{{sha}}").as_deref(), Ok("master--860c190"));
        assert_eq!(expand("refs/tags/v1", "{{branch}}-{{tag}}").as_deref(), Ok("-v1"));
        assert_eq!(
            expand("refs/heads/master", "{{is_default_branch}}/{{is_not_default_branch}}").as_deref(),
            Ok("true/false")
        );
        assert_eq!(expand("refs/heads/dev", "{{is_default_branch}}").as_deref(), Ok("false"));
        assert_eq!(
            expand("refs/heads/x", "{{date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}}").as_deref(),
            Ok("20200110-093000")
        );
        assert_eq!(expand("refs/heads/x", "{{commit_date YYYY-MM-DD-HHmmSS}}").as_deref(), Ok("2020-01-10T00:30:00Z"));
    }

    #[test]
    fn date_errors() {
        assert!(expand("refs/heads/x", "{{date 'YYYY' tz='Nowhere/Special'}}").is_err_and(|e| e.contains("time zone")));
        assert!(expand("refs/heads/x", "{{date 'YYYY' zone='UTC'}}").is_err_and(|e| e.contains("only `tz=`")));
    }

    #[test]
    fn schedule_patterns_know_only_dates() {
        let (ctx, repo) = scope_on("refs/heads/master", "schedule");
        let s = test_scope(&ctx, &repo);
        let mut unknown = Vec::new();
        assert_eq!(s.schedule("n-{{date 'YYYYMMDD'}}-{{branch}}", &mut unknown).as_deref(), Ok("n-20200110-"));
        assert_eq!(unknown, vec!["branch".to_string()]);
    }
}

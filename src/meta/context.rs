//! The event a workflow runs for, from the runner's `GITHUB_*` variables and the event payload, and what the
//! rules read from it (branch, tag, pull request, default branch, commit time), as metadata-action reads them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct GitContext {
    /// `GITHUB_EVENT_NAME` (`push`, `pull_request`, `schedule`...).
    pub event_name: String,
    /// `GITHUB_SHA`.
    pub sha: String,
    /// `GITHUB_REF`, except on `pull_request_target`, where it is the pull request's merge ref
    /// (`refs/pull/N/merge`) as metadata-action sets it: the runner's ref there is the base branch, and tagging a
    /// pull request's build as that branch (or `latest`) would be wrong.
    pub git_ref: String,
    /// `GITHUB_HEAD_REF` (pull requests).
    pub head_ref: String,
    /// `GITHUB_BASE_REF` (pull requests).
    pub base_ref: String,
    /// `GITHUB_REPOSITORY` (`owner/repo`).
    pub repository: String,
    /// `GITHUB_SERVER_URL`, default `https://github.com`.
    pub server_url: String,
    /// `GITHUB_API_URL`, default `https://api.github.com`.
    pub api_url: String,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<String>,
    /// The event payload (`GITHUB_EVENT_PATH`), `Null` when there is none.
    pub payload: Value,
}

impl GitContext {
    /// `vars` are the runner's variables (only `GITHUB_*` are read); nothing here reads the environment.
    pub fn from_vars(vars: &BTreeMap<String, String>, payload: Option<Value>) -> GitContext {
        let v = |k: &str| vars.get(k).map(|s| s.trim().to_string()).unwrap_or_default();
        let or = |k: &str, d: &str| Some(v(k)).filter(|s| !s.is_empty()).unwrap_or_else(|| d.to_string());
        let payload = payload.unwrap_or(Value::Null);
        let event_name = v("GITHUB_EVENT_NAME");
        let mut git_ref = v("GITHUB_REF");
        if event_name.contains("pull_request_target") {
            let number = ["/number", "/pull_request/number"].iter().find_map(|p| payload.pointer(p)?.as_u64());
            if let Some(n) = number {
                git_ref = format!("refs/pull/{n}/merge");
            }
        }
        GitContext {
            event_name,
            sha: v("GITHUB_SHA"),
            git_ref,
            head_ref: v("GITHUB_HEAD_REF"),
            base_ref: v("GITHUB_BASE_REF"),
            repository: v("GITHUB_REPOSITORY"),
            server_url: or("GITHUB_SERVER_URL", "https://github.com"),
            api_url: or("GITHUB_API_URL", "https://api.github.com"),
            run_id: Some(v("GITHUB_RUN_ID")).filter(|s| !s.is_empty()),
            payload,
        }
    }

    /// The branch of `refs/heads/...`, else `None`.
    pub fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }

    /// The tag of `refs/tags/...`, else `None`.
    pub fn tag(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/tags/")
    }

    /// `N/merge` of `refs/pull/N/merge`, else `None`.
    pub fn pull(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/pull/")
    }

    /// A `pull_request` event whose head is in another repository (a fork): the run has no secrets and a
    /// read-only token, so nothing can be pushed. `pull_request_target` runs in the base repository's context
    /// and is not one.
    pub fn is_fork_pull_request(&self) -> bool {
        if self.event_name != "pull_request" {
            return false;
        }
        let head = self.payload_str("/pull_request/head/repo/full_name");
        let base = self.payload_str("/pull_request/base/repo/full_name").or(self.payload_str("/repository/full_name"));
        let forked = self.payload.pointer("/pull_request/head/repo/fork").and_then(Value::as_bool) == Some(true);
        match (head, base) {
            (Some(h), Some(b)) => !h.eq_ignore_ascii_case(b),
            _ => forked,
        }
    }

    fn payload_str(&self, pointer: &str) -> Option<&str> {
        self.payload.pointer(pointer).and_then(Value::as_str)
    }

    /// The commit the build is for: `GITHUB_SHA`, or with `pr_head_sha` on pull request events the head of the
    /// pull request (`DOCKER_METADATA_PR_HEAD_SHA`), since `GITHUB_SHA` is then a merge commit nobody pushed.
    pub fn commit_sha(&self, pr_head_sha: bool) -> String {
        if pr_head_sha && self.event_name.contains("pull_request") {
            if let Some(head) = self.payload_str("/pull_request/head/sha") {
                return head.to_string();
            }
        }
        self.sha.clone()
    }

    /// The commit's time from the payload, as metadata-action finds it: the pushed commit whose id is `sha`, else
    /// `head_commit` if it is that commit.
    pub fn commit_time(&self, sha: &str) -> Option<DateTime<Utc>> {
        let parse = |v: &Value| {
            let s = v.get("timestamp")?.as_str()?;
            DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
        };
        let is_sha = |v: &&Value| !sha.is_empty() && v.get("id").and_then(Value::as_str) == Some(sha);
        let commits = self.payload.get("commits").and_then(Value::as_array);
        commits
            .and_then(|cs| cs.iter().find(is_sha).and_then(parse))
            .or_else(|| self.payload.get("head_commit").filter(is_sha).and_then(parse))
    }

    /// `{{base_ref}}`: on a tag, the payload's `base_ref` branch; on a pull request, its base branch.
    pub fn base_ref_expr(&self) -> String {
        if self.tag().is_some() {
            if let Some(b) = self.payload_str("/base_ref") {
                return b.strip_prefix("refs/heads/").unwrap_or(b).to_string();
            }
        }
        if self.pull().is_some() {
            if let Some(b) = self.payload_str("/pull_request/base/ref") {
                return b.to_string();
            }
            return self.base_ref.clone();
        }
        String::new()
    }

    /// `{{is_default_branch}}`: the ref's branch is the payload's `repository.default_branch` (or, when the payload
    /// has none, the repository's), or the event is one that always runs on the default branch.
    pub fn is_default_branch(&self, repo_default: Option<&str>) -> bool {
        let branch = self.git_ref.strip_prefix("refs/heads/").unwrap_or(&self.git_ref);
        if branch.is_empty() {
            return false;
        }
        let default = self.payload_str("/repository/default_branch").or(repo_default);
        if default == Some(branch) {
            return true;
        }
        ["create", "discussion", "issues", "schedule"].iter().any(|e| self.event_name.contains(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(pairs: &[(&str, &str)], payload: Value) -> GitContext {
        let vars = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        GitContext::from_vars(&vars, Some(payload))
    }

    #[test]
    fn a_pull_request_from_another_repository_is_a_fork() {
        let pr = |head: &str| serde_json::json!({"pull_request": {"head": {"repo": {"full_name": head}}, "base": {"repo": {"full_name": "octo/app"}}}});
        assert!(ctx(&[("GITHUB_EVENT_NAME", "pull_request")], pr("someone/app")).is_fork_pull_request());
        assert!(!ctx(&[("GITHUB_EVENT_NAME", "pull_request")], pr("Octo/App")).is_fork_pull_request());
        assert!(!ctx(&[("GITHUB_EVENT_NAME", "pull_request_target")], pr("someone/app")).is_fork_pull_request());
        assert!(!ctx(&[("GITHUB_EVENT_NAME", "push")], Value::Null).is_fork_pull_request());
        let only_flag = serde_json::json!({"pull_request": {"head": {"repo": {"fork": true}}}});
        assert!(ctx(&[("GITHUB_EVENT_NAME", "pull_request")], only_flag).is_fork_pull_request());
    }

    #[test]
    fn defaults_for_urls() {
        let c = GitContext::from_vars(&BTreeMap::new(), None);
        assert_eq!(c.server_url, "https://github.com");
        assert_eq!(c.api_url, "https://api.github.com");
        assert_eq!(c.payload, Value::Null);
        assert_eq!(c.run_id, None);
    }

    #[test]
    fn pull_request_target_uses_the_pull_request_ref() {
        let c = ctx(
            &[("GITHUB_EVENT_NAME", "pull_request_target"), ("GITHUB_REF", "refs/heads/main")],
            json!({"number": 7}),
        );
        assert_eq!(c.git_ref, "refs/pull/7/merge");
        let c = ctx(&[("GITHUB_EVENT_NAME", "pull_request_target"), ("GITHUB_REF", "refs/heads/main")], json!({}));
        assert_eq!(c.git_ref, "refs/heads/main");
    }

    #[test]
    fn head_sha_only_on_pull_requests() {
        let p = json!({"pull_request": {"head": {"sha": "bbb"}}});
        let pr = ctx(&[("GITHUB_EVENT_NAME", "pull_request"), ("GITHUB_SHA", "aaa")], p.clone());
        assert_eq!(pr.commit_sha(true), "bbb");
        assert_eq!(pr.commit_sha(false), "aaa");
        let push = ctx(&[("GITHUB_EVENT_NAME", "push"), ("GITHUB_SHA", "aaa")], p);
        assert_eq!(push.commit_sha(true), "aaa");
    }

    #[test]
    fn commit_time_from_the_matching_commit() {
        let p = json!({
            "commits": [{"id": "other", "timestamp": "2001-01-01T00:00:00Z"}, {"id": "aaa", "timestamp": "2022-04-19T11:27:24+02:00"}],
            "head_commit": {"id": "aaa", "timestamp": "1999-01-01T00:00:00Z"}
        });
        let c = ctx(&[("GITHUB_SHA", "aaa")], p);
        assert_eq!(c.commit_time("aaa").map(|t| t.to_rfc3339()), Some("2022-04-19T09:27:24+00:00".into()));
        assert_eq!(c.commit_time("zzz"), None);
        let c = ctx(&[], json!({"head_commit": {"id": "aaa", "timestamp": "not a time"}}));
        assert_eq!(c.commit_time("aaa"), None);
    }

    #[test]
    fn default_branch_rules() {
        let p = json!({"repository": {"default_branch": "main"}});
        let on = |r: &str, e: &str, p: Value| ctx(&[("GITHUB_REF", r), ("GITHUB_EVENT_NAME", e)], p);
        assert!(on("refs/heads/main", "push", p.clone()).is_default_branch(None));
        assert!(!on("refs/heads/dev", "push", p.clone()).is_default_branch(None));
        assert!(!on("refs/tags/v1", "push", p.clone()).is_default_branch(None));
        assert!(on("refs/heads/x", "schedule", json!({})).is_default_branch(None));
        assert!(on("refs/heads/main", "push", json!({})).is_default_branch(Some("main")));
        assert!(!on("", "schedule", json!({})).is_default_branch(None));
    }

    #[test]
    fn base_ref_on_tags_and_pull_requests() {
        let c = ctx(&[("GITHUB_REF", "refs/tags/v1")], json!({"base_ref": "refs/heads/main"}));
        assert_eq!(c.base_ref_expr(), "main");
        let c = ctx(&[("GITHUB_REF", "refs/tags/v1")], json!({"base_ref": null}));
        assert_eq!(c.base_ref_expr(), "");
        let c = ctx(&[("GITHUB_REF", "refs/pull/3/merge"), ("GITHUB_BASE_REF", "dev")], json!({}));
        assert_eq!(c.base_ref_expr(), "dev");
        let c = ctx(&[("GITHUB_REF", "refs/heads/x")], json!({"base_ref": "refs/heads/main"}));
        assert_eq!(c.base_ref_expr(), "");
    }
}

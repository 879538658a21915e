//! Outside a workflow, the commit comes from the local git checkout, as the runner's `GITHUB_*` variables give it
//! inside one: `GITHUB_SHA` (HEAD), `GITHUB_REF` (the branch, or the tag at HEAD), `GITHUB_REPOSITORY` (from a
//! github.com `origin`), and `SOURCE_DATE_EPOCH` (the commit's time), so the same commit gives the same digest on
//! every run and `tag_with_sha`/`tag_with_ref` work from a terminal. What the environment already sets wins.

use std::path::Path;
use std::process::Command;

use crate::actions::Env;

/// `env` with what the checkout at `dir` tells, when not in a workflow and `GITHUB_SHA` is unset.
pub fn fill_from_checkout(env: Env, dir: &Path) -> Env {
    if env.in_actions() || env.non_empty("GITHUB_SHA").is_some() {
        return env;
    }
    let Some(sha) = git(dir, &["rev-parse", "--verify", "-q", "HEAD"]) else { return env };
    let mut env = env.with_var("GITHUB_SHA", &sha);
    if env.non_empty("GITHUB_REF").is_none() {
        let branch = git(dir, &["symbolic-ref", "-q", "HEAD"]);
        let tag = || git(dir, &["describe", "--exact-match", "--tags", "HEAD"]).map(|t| format!("refs/tags/{t}"));
        if let Some(r) = branch.or_else(tag) {
            env = env.with_var("GITHUB_REF", r);
        }
    }
    if env.non_empty("SOURCE_DATE_EPOCH").is_none() {
        if let Some(time) = git(dir, &["log", "-1", "--format=%ct", "HEAD"]) {
            env = env.with_var("SOURCE_DATE_EPOCH", time);
        }
    }
    if env.non_empty("GITHUB_REPOSITORY").is_none() {
        if let Some(repo) = git(dir, &["remote", "get-url", "origin"]).and_then(|u| github_repository(&u)) {
            env = env.with_var("GITHUB_REPOSITORY", repo);
        }
    }
    env
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).stderr(std::process::Stdio::null()).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// `owner/repo` of a github.com remote URL (`https://github.com/o/r.git`, `git@github.com:o/r.git`).
fn github_repository(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("git@github.com:"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    let rest = rest.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = rest.split('/');
    let (owner, repo) = (parts.next()?, parts.next()?);
    (parts.next().is_none() && !owner.is_empty() && !repo.is_empty()).then(|| format!("{owner}/{repo}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = Command::new("git").arg("-C").arg(dir).args(args).status().unwrap().success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn the_checkout_gives_commit_ref_time_and_repository() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        run(d, &["init", "-q", "-b", "main"]);
        std::fs::write(d.join("a"), "a").unwrap();
        run(d, &["add", "a"]);
        run(d, &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "one", "--date=@1700000000"]);
        run(d, &["remote", "add", "origin", "https://github.com/Octo-Org/App.git"]);
        let env = fill_from_checkout(Env::default(), d);
        assert_eq!(env.var("GITHUB_SHA").map(str::len), Some(40));
        assert_eq!(env.var("GITHUB_REF"), Some("refs/heads/main"));
        assert_eq!(env.var("GITHUB_REPOSITORY"), Some("Octo-Org/App"));
        assert!(env.var("SOURCE_DATE_EPOCH").is_some());
        // What is set wins; in a workflow nothing is read.
        let set = fill_from_checkout(Env::default().with_var("SOURCE_DATE_EPOCH", "5"), d);
        assert_eq!(set.var("SOURCE_DATE_EPOCH"), Some("5"));
        let in_actions = fill_from_checkout(Env::default().with_var("GITHUB_ACTIONS", "true"), d);
        assert_eq!(in_actions.var("GITHUB_SHA"), None);
        // Not a checkout: nothing.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(fill_from_checkout(Env::default(), empty.path()).var("GITHUB_SHA"), None);
    }

    #[test]
    fn github_remotes_name_the_repository() {
        assert_eq!(github_repository("git@github.com:o/r.git").as_deref(), Some("o/r"));
        assert_eq!(github_repository("https://github.com/o/r").as_deref(), Some("o/r"));
        assert_eq!(github_repository("https://gitlab.com/o/r.git"), None);
        assert_eq!(github_repository("https://github.com/o/r/tree/x"), None);
    }
}

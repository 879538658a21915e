//! `command: prune` and `command: restore` run as the runner runs them, against a local stand-in for GitHub's
//! Packages API (tests/support/github_api.py) whose container packages live in a real CNCF registry with
//! ghcr-style token auth: what the API deletes is deleted from the registry, and every kept tag is pulled with
//! `skopeo copy --all` afterwards.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::{Value, json};

use common::github_api::{GithubApi, container_package, days_ago};
use common::packages::{Pushed, Pusher};
use common::{Mode, Registry, RunResult, Workflow, assert_no_secret, tool};

const OWNER: &str = "octo-org";
const PACKAGE: &str = "app";
const REPO: &str = "octo-org/app";
/// A token that may delete (admin on the package) and one that may only read.
const TOKEN: &str = "ghs_PruneTestToken0123456789abcdef";
const READ_TOKEN: &str = "ghs_ReadOnlyToken0123456789abcdef";
const USER: &str = "octocat";
const PASS: &str = "registry-s3cret-pass";

/// The acceptance package: a tagged two-platform index with an attestation, its signature and an SBOM referrer;
/// an older two-platform index tagged only `sha-...` with a young signature; 30 untagged images aged 1 h to
/// 29 days.
struct Scenario {
    registry: Registry,
    api: GithubApi,
    new_index: Pushed,
    old_index: Pushed,
    old_sig: Pushed,
}

const KEPT_IDS: &[u64] = &[100, 101, 102, 103, 104, 105, 300, 301, 302, 303, 304, 305, 306];
const KEPT_TAGS: &[&str] = &["latest", "sha-bbbbbbb", "v1.2.0"];

fn deleted_ids() -> BTreeSet<u64> {
    [200, 201, 202, 203].into_iter().chain(307..330).collect()
}

fn scenario(extra_state: Value) -> Scenario {
    let registry = Registry::start(Mode::token(USER, PASS));
    let pusher = Pusher::new(&registry, REPO);
    let (old_index, old_children) = pusher.index("old", &["sha-aaaaaaa"], false);
    let old_sig = pusher.signature(&old_index);
    let (new_index, new_children) = pusher.index("new", &["v1.2.0", "latest", "sha-bbbbbbb"], true);
    let new_sig = pusher.signature(&new_index);
    let referrer = pusher.referrer(&new_index);
    let config = pusher.config("amd64", "untagged");
    let untagged: Vec<Pushed> = (0..30).map(|i| pusher.image(&config, json!({"build": i.to_string()}))).collect();
    pusher.put(&untagged.iter().map(|u| (u.digest.clone(), u)).collect::<Vec<_>>());

    let mut versions = vec![(100, new_index.digest.clone(), days_ago(10, 0))];
    for (i, c) in new_children.iter().enumerate() {
        versions.push((101 + i as u64, c.digest.clone(), days_ago(10, 0)));
    }
    versions.push((104, new_sig.digest.clone(), days_ago(10, 0)));
    versions.push((105, referrer.digest.clone(), days_ago(10, 0)));
    versions.push((200, old_index.digest.clone(), days_ago(20, 0)));
    for (i, c) in old_children.iter().enumerate() {
        versions.push((201 + i as u64, c.digest.clone(), days_ago(20, 0)));
    }
    versions.push((203, old_sig.digest.clone(), days_ago(2, 0)));
    for (i, u) in untagged.iter().enumerate() {
        versions.push((300 + i as u64, u.digest.clone(), days_ago(i as u64, 1)));
    }
    let mut state = json!({
        "tokens": {TOKEN: {"login": "github-actions[bot]", "write": true}, READ_TOKEN: {"login": "reader", "write": false}},
        "accounts": {OWNER: "Organization", USER: "User"},
        "packages": [container_package(&registry, OWNER, PACKAGE, &versions)],
    });
    if let Value::Object(extra) = extra_state {
        for (k, v) in extra {
            state[k] = v;
        }
    }
    let api = GithubApi::start(&state);
    Scenario { registry, api, new_index, old_index, old_sig }
}

/// A prune step of the acceptance scenario: `keep_last: 1`, `untagged_older_than: 7d`.
fn prune_step(s: &Scenario, token: &str) -> Workflow {
    Workflow::new()
        .env("GITHUB_API_URL", &s.api.url())
        .input("command", "prune")
        .input("registry", s.registry.host())
        .input("repository", REPO)
        .input("username", USER)
        .input("password", PASS)
        .input("github_token", token)
        .input("keep_last", "1")
        .input("untagged_older_than", "7d")
}

fn ids(output: &str) -> BTreeSet<u64> {
    let v: Value = serde_json::from_str(output).unwrap_or_else(|e| panic!("not JSON ({e}): {output}"));
    v.as_array().expect("a JSON list").iter().map(|r| r["id"].as_u64().expect("an id")).collect()
}

fn reason_of(output: &str, id: u64) -> String {
    let v: Value = serde_json::from_str(output).expect("JSON");
    let row = v.as_array().expect("list").iter().find(|r| r["id"] == id);
    row.unwrap_or_else(|| panic!("no version {id} in {output}"))["reason"].as_str().unwrap_or_default().to_string()
}

/// The ids the API was asked to delete.
fn api_deletes(api: &GithubApi) -> BTreeSet<u64> {
    api.requests_with("DELETE")
        .iter()
        .filter_map(|r| r.path.rsplit('/').next().and_then(|id| id.parse().ok()))
        .collect()
}

/// `skopeo copy --all` of `reference` out of the registry, with its credentials, into an OCI layout.
fn pull_all(reg: &Registry, reference: &str) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(tool("skopeo"));
    cmd.args(["--insecure-policy", "copy", "--all", "--retry-times=0"])
        .args(reg.skopeo_src_args(false))
        .arg(format!("docker://{}/{reference}", reg.host()))
        .arg(format!("oci:{}:pulled", dir.path().display()))
        .env("REGISTRY_AUTH_FILE", dir.path().join("no-auth.json"));
    common::run(&mut cmd)
}

fn manifest_status(reg: &Registry, digest: &str) -> u16 {
    reg.manifest_response(REPO, digest).status
}

/// The decision table's lines for the versions (header and rows), from the log.
fn table_rows(result: &RunResult) -> Vec<String> {
    result
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("version id"))
        .take_while(|l| !l.trim().is_empty() && !l.contains(": "))
        .map(str::to_string)
        .collect()
}

#[test]
fn prune_deletes_exactly_the_expected_versions_and_every_kept_tag_still_pulls() {
    let s = scenario(json!({}));
    let result = prune_step(&s, TOKEN).run();
    result.assert_success();

    // Exactly the old index, its children and signature, and the 23 untagged images older than 7 days.
    assert_eq!(api_deletes(&s.api), deleted_ids(), "{}", result.dump());
    assert_eq!(ids(result.output("deleted")), deleted_ids());
    assert_eq!(ids(result.output("kept")), KEPT_IDS.iter().copied().collect());
    assert_eq!(result.output("dry-run"), "false");

    // The kept index's children, attestation, signature and referrer were kept for it, each saying why.
    let kept = result.output("kept");
    assert_eq!(reason_of(kept, 100), "among the newest 1 tagged");
    assert_eq!(reason_of(kept, 101), "child of `latest`");
    assert_eq!(reason_of(kept, 102), "child of `latest`");
    assert_eq!(reason_of(kept, 103), "attestation of `latest`");
    assert_eq!(reason_of(kept, 104), "signature of `latest`");
    assert_eq!(reason_of(kept, 105), "referrer of `latest`");
    assert_eq!(reason_of(kept, 306), "untagged, 6d 1h old (newer than 7d)");
    let deleted = result.output("deleted");
    assert_eq!(reason_of(deleted, 200), "tagged, older than the newest 1");
    assert_eq!(reason_of(deleted, 203), "signature of deleted `sha-aaaaaaa`");
    assert_eq!(reason_of(deleted, 329), "untagged, 29d 1h old (older than 7d)");
    // An index goes before its children, so a failure part way never leaves an index without one.
    let order: Vec<u64> =
        serde_json::from_str::<Vec<Value>>(deleted).unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect();
    let pos = |id| order.iter().position(|x| *x == id).unwrap();
    assert!(pos(200) < pos(201) && pos(200) < pos(202) && pos(200) < pos(203), "{order:?}");

    // The registry agrees: the deleted manifests are gone, the kept tags are all there and pull whole.
    assert_eq!(manifest_status(&s.registry, &s.old_index.digest), 404);
    assert_eq!(manifest_status(&s.registry, &s.old_sig.digest), 404);
    let mut want_tags: Vec<String> = KEPT_TAGS.iter().map(|t| t.to_string()).collect();
    want_tags.push(format!("{}.sig", s.new_index.tag_prefix()));
    want_tags.sort();
    assert_eq!(s.registry.tags(REPO), want_tags);
    for tag in &want_tags {
        let out = pull_all(&s.registry, &format!("{REPO}:{tag}"));
        assert!(out.status.success(), "skopeo copy --all {tag}: {}", String::from_utf8_lossy(&out.stderr));
    }

    // The table in the log and in the job summary: id, digest, tags, age, decision and reason.
    let rows = table_rows(&result);
    assert_eq!(rows.len(), 1 + 40, "{}", result.stdout);
    assert!(rows[0].split_whitespace().collect::<Vec<_>>().starts_with(&["version", "id", "digest", "tags", "age"]));
    let row_103 = rows.iter().find(|r| r.starts_with("103 ")).expect("a row for 103");
    assert!(row_103.contains("10d") && row_103.contains("keep") && row_103.ends_with("attestation of `latest`"));
    let row_100 = rows.iter().find(|r| r.starts_with("100 ")).expect("a row for 100");
    assert!(row_100.contains("latest, sha-bbbbbbb, v1.2.0") && row_100.contains(&s.new_index.digest[..19]));
    assert!(result.summary.contains("| Version | Digest | Tags | Age | Decision | Reason |"), "{}", result.summary);
    assert!(result.summary.contains("| 203 |") && result.summary.contains("signature of deleted `sha-aaaaaaa`"));
    assert!(result.stdout.contains("27 versions deleted, 13 kept"), "{}", result.stdout);

    // The owner was looked up, then the organisation's routes used, with the token; which was never shown.
    let paths: Vec<String> = s.api.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(paths[0], "GET /users/octo-org");
    assert!(paths[1..].iter().all(|p| p.contains(" /orgs/octo-org/packages/container/app")), "{paths:?}");
    assert!(s.api.requests().iter().all(|r| r.auth.as_deref() == Some("bearer")));
    assert_no_secret(&result, TOKEN);
    assert_no_secret(&result, PASS);
}

#[test]
fn a_dry_run_prints_the_same_decisions_and_deletes_nothing() {
    let s = scenario(json!({}));
    // On a pull request, dry_run defaults to true.
    let pr = json!({"number": 7, "pull_request": {"number": 7, "head": {"sha": "1111111111111111111111111111111111111111", "ref": "feature"}, "base": {"ref": "master"}}});
    let dry = prune_step(&s, TOKEN).event("pull_request", &pr).env("GITHUB_REF", "refs/pull/7/merge").run();
    dry.assert_success();
    assert!(s.api.requests_with("DELETE").is_empty(), "a dry run sent a DELETE: {:?}", s.api.requests());
    assert_eq!(dry.output("dry-run"), "true");
    assert_eq!(ids(dry.output("deleted")), BTreeSet::new(), "nothing was deleted");
    assert_eq!(ids(dry.output("planned")), deleted_ids());
    assert!(
        dry.stdout.contains("dry run, 27 versions would be deleted, 13 kept; nothing was deleted"),
        "{}",
        dry.stdout
    );
    assert!(dry.summary.contains("**Dry run:**"));
    assert_eq!(manifest_status(&s.registry, &s.old_index.digest), 200, "the registry still holds everything");
    assert!(s.registry.tags(REPO).contains(&"sha-aaaaaaa".to_string()));

    // `dry_run: true` on a push is a dry run too; `false` then deletes, with the very same decisions.
    let explicit = prune_step(&s, TOKEN).input("dry_run", "true").run();
    explicit.assert_success();
    assert!(s.api.requests_with("DELETE").is_empty());
    let real = prune_step(&s, TOKEN).input("dry_run", "false").run();
    real.assert_success();
    assert_eq!(api_deletes(&s.api), deleted_ids());
    let normalise = |rows: Vec<String>| -> Vec<String> {
        rows.iter()
            .map(|r| r.replace("would delete", "deleted").split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(normalise(table_rows(&dry)), normalise(table_rows(&real)));
    assert_eq!(normalise(table_rows(&dry)), normalise(table_rows(&explicit)));
}

#[test]
fn a_refused_delete_names_the_fix_and_exits_1() {
    let s = scenario(json!({}));
    let result = prune_step(&s, READ_TOKEN).run();
    result.assert_failure();
    assert_eq!(result.status.code(), Some(1));
    let errors: Vec<String> =
        result.commands().into_iter().filter(|(name, _)| name == "error").map(|(_, line)| line).collect();
    assert_eq!(errors.len(), 1, "one ::error:: line: {}", result.dump());
    let e = &errors[0];
    for part in
        ["HTTP 403", "Resource not accessible by integration", "packages: write", "Admin role", "delete:packages"]
    {
        assert!(e.contains(part), "{part} missing from {e}");
    }
    assert!(e.contains("DELETE /orgs/octo-org/packages/container/app/versions/"), "{e}");
    assert!(!result.stderr.contains("panicked"), "{}", result.stderr);
    // It stopped at the first refusal: nothing is gone, and the outputs say so.
    assert_eq!(s.api.requests_with("DELETE").len(), 1);
    assert_eq!(ids(result.output("deleted")), BTreeSet::new());
    assert_eq!(manifest_status(&s.registry, &s.old_index.digest), 200);
    assert_no_secret(&result, READ_TOKEN);
}

#[test]
fn restore_brings_back_what_a_prune_deleted() {
    let s = scenario(json!({}));
    let pruned = prune_step(&s, TOKEN).run();
    pruned.assert_success();
    assert_eq!(manifest_status(&s.registry, &s.old_index.digest), 404);

    let restored = Workflow::new()
        .env("GITHUB_API_URL", &s.api.url())
        .input("command", "restore")
        .input("registry", s.registry.host())
        .input("repository", REPO)
        .input("github_token", TOKEN)
        .input("versions", pruned.output("deleted"))
        .run();
    restored.assert_success();
    assert_eq!(ids(restored.output("restored")), deleted_ids());
    // Restored in reverse deletion order: children before the index that lists them.
    let posts: Vec<String> = s.api.requests_with("POST").iter().map(|r| r.path.clone()).collect();
    let pos = |id: u64| posts.iter().position(|p| p.ends_with(&format!("/versions/{id}/restore"))).unwrap();
    assert!(pos(201) < pos(200) && pos(202) < pos(200), "{posts:?}");
    assert_eq!(manifest_status(&s.registry, &s.old_index.digest), 200);
    let out = pull_all(&s.registry, &format!("{REPO}:sha-aaaaaaa"));
    assert!(out.status.success(), "the restored tag pulls: {}", String::from_utf8_lossy(&out.stderr));
    assert_no_secret(&restored, TOKEN);
}

/// 250 untagged versions of a user's package, 100 a page: the 50 on the third page are the old ones.
#[test]
fn all_250_versions_on_3_pages_are_seen_for_a_users_package() {
    let registry = Registry::start(Mode::Anonymous);
    let repo = "octocat/tool";
    let pusher = Pusher::new(&registry, repo);
    let config = pusher.config("amd64", "paging");
    let images: Vec<Pushed> = (0..250).map(|i| pusher.image(&config, json!({"n": i.to_string()}))).collect();
    pusher.put(&images.iter().map(|m| (m.digest.clone(), m)).collect::<Vec<_>>());
    let versions: Vec<(u64, String, String)> = images
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let created = if i < 200 { days_ago(0, i as u64 / 4) } else { days_ago(10, i as u64 - 200) };
            (1000 + i as u64, m.digest.clone(), created)
        })
        .collect();
    let api = GithubApi::start(&json!({
        "tokens": {TOKEN: {"login": "octocat", "write": true}},
        "accounts": {"octocat": "User"},
        "packages": [container_package(&registry, "octocat", "tool", &versions)],
    }));
    let result = Workflow::new()
        .env("GITHUB_API_URL", &api.url())
        .input("command", "prune")
        .input("registry", registry.host())
        .input("repository", repo)
        .input("github_token", TOKEN)
        .input("untagged_older_than", "7d")
        .run();
    result.assert_success();
    let lists: Vec<String> = api
        .requests_with("GET")
        .into_iter()
        .filter(|r| r.path == "/users/octocat/packages/container/tool/versions")
        .map(|r| r.query)
        .collect();
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert!(lists[1].contains("page=2") && lists[2].contains("page=3"), "{lists:?}");
    assert_eq!(api_deletes(&api), (1200..1250).collect::<BTreeSet<u64>>());
    assert_eq!(ids(result.output("kept")).len(), 200);
    assert!(api.requests().iter().all(|r| !r.path.starts_with("/orgs/")), "a user's package uses /users/ routes");
    assert_eq!(manifest_status_in(&registry, repo, &images[249].digest), 404);
    assert_eq!(manifest_status_in(&registry, repo, &images[0].digest), 200);
}

fn manifest_status_in(reg: &Registry, repo: &str, digest: &str) -> u16 {
    reg.manifest_response(repo, digest).status
}

/// Secondary rate limits (`retry-after`), an exhausted primary limit (`x-ratelimit-reset`) and a 502 are waited
/// out and retried; an npm package's versions follow the same tag rules by their version strings.
#[test]
fn rate_limits_and_server_errors_are_waited_out() {
    let reset = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 2).to_string();
    let versions: Vec<Value> = (0..5)
        .map(|i| json!({"id": 50 + i, "name": format!("1.0.{i}"), "created_at": days_ago(5 - i as u64, 0)}))
        .collect();
    let route = "/orgs/octo-org/packages/npm/widget";
    let api = GithubApi::start(&json!({
        "tokens": {TOKEN: {"login": "github-actions[bot]", "write": true}},
        "accounts": {OWNER: "Organization"},
        "packages": [{"owner": OWNER, "type": "npm", "name": "widget", "versions": versions}],
        "faults": [
            {"method": "GET", "path": route, "status": 502, "body": {"message": "Server Error"}, "times": 1},
            {"method": "GET", "path": format!("{route}/versions"), "status": 403, "times": 1,
             "headers": {"retry-after": "1"},
             "body": {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}},
            {"method": "DELETE", "path": format!("{route}/versions/50"), "status": 403, "times": 1,
             "headers": {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset, "x-ratelimit-limit": "5000"},
             "body": {"message": "API rate limit exceeded for installation ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}}
        ]
    }));
    let result = Workflow::new()
        .env("GITHUB_API_URL", &api.url())
        .input("command", "prune")
        .input("package_type", "npm")
        .input("owner", OWNER)
        .input("package", "widget")
        .input("github_token", TOKEN)
        .input("keep_last", "2")
        .run();
    result.assert_success();
    assert_eq!(api_deletes(&api), [50, 51, 52].into_iter().collect::<BTreeSet<u64>>(), "{}", result.dump());
    assert_eq!(reason_of(result.output("kept"), 54), "among the newest 2 tagged");
    assert!(result.stdout.contains("a secondary rate limit (retry-after)"), "{}", result.stdout);
    assert!(result.stdout.contains("the rate limit (x-ratelimit-reset)"), "{}", result.stdout);
    assert!(result.stdout.contains("a server error"), "{}", result.stdout);
    let statuses: Vec<u16> = api.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 2);
    assert_eq!(statuses.iter().filter(|s| **s == 502).count(), 1);
}

#[test]
fn a_wrong_package_or_owner_names_what_was_tried() {
    let api = GithubApi::start(&json!({
        "tokens": {TOKEN: {"login": "github-actions[bot]", "write": true}},
        "accounts": {OWNER: "Organization"},
        "packages": [],
    }));
    let step = || {
        Workflow::new()
            .env("GITHUB_API_URL", &api.url())
            .input("command", "prune")
            .input("repository", REPO)
            .input("github_token", TOKEN)
            .input("untagged_older_than", "7d")
    };
    let result = step().input("package", "nope").run();
    result.assert_failure();
    let error = result.commands().into_iter().find(|(n, _)| n == "error").map(|(_, l)| l).expect("an ::error::");
    for part in [
        "container package `nope` of the organisation `octo-org`",
        "GET /orgs/octo-org/packages/container/nope",
        "`package` input",
        "packages: read",
    ] {
        assert!(error.contains(part), "{part} missing from {error}");
    }
    let result = step().input("owner", "nobody").run();
    result.assert_failure();
    let error = result.commands().into_iter().find(|(n, _)| n == "error").map(|(_, l)| l).expect("an ::error::");
    assert!(
        error.contains("no GitHub user or organisation `nobody`") && error.contains("GET /users/nobody"),
        "{error}"
    );
    let result = step().input("github_token", "ghs_wrong_token_value").run();
    result.assert_failure();
    assert!(result.stdout.contains("HTTP 401") && result.stdout.contains("`github_token`"), "{}", result.stdout);
    assert_no_secret(&result, "ghs_wrong_token_value");
}

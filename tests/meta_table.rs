//! Our table of tag and label scenarios: each row names an event fixture (`tests/fixtures/events/NAME.json`:
//! the runner's `GITHUB_*` variables and the event payload), the inputs, and the expected version, tags and
//! labels. Every v1 rule of TAGS.md is here, as are the tag grammar, several registries and lowercasing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use octopush::meta::{GitContext, Meta, MetaInputs, RepoData, compute, created_time};
use serde_json::Value;

const SHA: &str = "676cae2f85471aeff6776463c72881ebd902dcf9";
const HEAD_SHA: &str = "3370e228f2209994d57af4427fe64e71bb79ac96";

#[derive(Clone, Copy, Default)]
enum Repo {
    /// What the REST API gives (description, license).
    #[default]
    Api,
    /// No API: what the environment gives.
    Fallback,
}

#[derive(Default)]
struct Row {
    id: &'static str,
    event: &'static str,
    images: &'static [&'static str],
    tags: &'static [&'static str],
    flavor: &'static [&'static str],
    labels: &'static [&'static str],
    annotations: &'static [&'static str],
    tag_with_ref: bool,
    tag_with_sha: bool,
    pr_head_sha: bool,
    repo: Repo,
    /// Expected:
    version: Option<&'static str>,
    want_tags: &'static [&'static str],
    /// Labels that must be there with these values (the others are checked by `all_eight_labels`).
    want_labels: &'static [(&'static str, &'static str)],
    want_annotations: &'static [(&'static str, &'static str)],
    /// A notice containing this.
    want_notice: Option<&'static str>,
    /// The error, instead of a result.
    want_error: Option<&'static str>,
}

fn row(id: &'static str, event: &'static str) -> Row {
    Row { id, event, images: &["ghcr.io/octo-org/app"], ..Row::default() }
}

const OCI_SOURCE: &str = "org.opencontainers.image.source";
const OCI_REVISION: &str = "org.opencontainers.image.revision";
const OCI_VERSION: &str = "org.opencontainers.image.version";
const OCI_TITLE: &str = "org.opencontainers.image.title";
const OCI_DESCRIPTION: &str = "org.opencontainers.image.description";
const OCI_LICENSES: &str = "org.opencontainers.image.licenses";
const OCI_CREATED: &str = "org.opencontainers.image.created";

fn rows() -> Vec<Row> {
    vec![
        // --- build-push-action v1, exactly as TAGS.md lists it ---
        Row {
            tags: &["v1,stable,,edge"],
            version: Some("v1"),
            want_tags: &["ghcr.io/octo-org/app:v1", "ghcr.io/octo-org/app:stable", "ghcr.io/octo-org/app:edge"],
            ..row("v1-static-tags-in-order-skipping-empty", "push_main")
        },
        Row {
            tag_with_ref: true,
            version: Some("latest"),
            want_tags: &["ghcr.io/octo-org/app:latest"],
            ..row("v1-ref-master-is-latest-only", "push_master")
        },
        Row {
            tag_with_ref: true,
            version: Some("main"),
            want_tags: &["ghcr.io/octo-org/app:main"],
            ..row("v1-ref-main-is-main", "push_main")
        },
        Row {
            tag_with_ref: true,
            version: Some("my-branch"),
            want_tags: &["ghcr.io/octo-org/app:my-branch"],
            ..row("v1-ref-branch-slash-to-dash", "push_branch_slash")
        },
        Row {
            tag_with_ref: true,
            version: Some("v1.0.0"),
            want_tags: &["ghcr.io/octo-org/app:v1.0.0"],
            ..row("v1-ref-tag-as-is-no-latest", "push_tag_v1.0.0")
        },
        Row {
            tag_with_ref: true,
            version: Some("pr-2-merge"),
            want_tags: &["ghcr.io/octo-org/app:pr-2-merge"],
            ..row("v1-ref-pull-request", "pull_request")
        },
        Row {
            tag_with_sha: true,
            version: Some("sha-676cae2"),
            want_tags: &["ghcr.io/octo-org/app:sha-676cae2"],
            ..row("v1-sha-seven-characters", "push_main")
        },
        Row {
            tags: &["stable"],
            tag_with_ref: true,
            tag_with_sha: true,
            version: Some("stable"),
            want_tags: &[
                "ghcr.io/octo-org/app:stable",
                "ghcr.io/octo-org/app:latest",
                "ghcr.io/octo-org/app:sha-676cae2",
            ],
            ..row("v1-order-static-ref-sha", "push_master")
        },
        Row {
            tags: &["latest,sha-676cae2"],
            tag_with_ref: true,
            tag_with_sha: true,
            version: Some("latest"),
            want_tags: &["ghcr.io/octo-org/app:latest", "ghcr.io/octo-org/app:sha-676cae2"],
            ..row("v1-duplicates-dropped", "push_master")
        },
        Row {
            tag_with_ref: true,
            tag_with_sha: true,
            repo: Repo::Fallback,
            version: Some("v1.0.0"),
            want_tags: &["ghcr.io/octo-org/app:v1.0.0", "ghcr.io/octo-org/app:sha-676cae2"],
            want_labels: &[
                (OCI_SOURCE, "https://github.com/Octo-Org/App"),
                (OCI_REVISION, SHA),
                (OCI_CREATED, "2020-01-10T00:30:00.000Z"),
                (OCI_TITLE, "App"),
                (OCI_DESCRIPTION, ""),
                (OCI_LICENSES, ""),
            ],
            ..row("v1-git-labels-from-the-environment", "push_tag_v1.0.0")
        },
        Row {
            tag_with_ref: true,
            version: Some("123_Hot.Fix"),
            want_tags: &["ghcr.io/octo-org/app:123_Hot.Fix"],
            want_notice: Some("may not start with"),
            ..row("v1-ref-unpushable-branch-is-made-pushable", "push_branch_hash")
        },
        Row {
            tag_with_ref: true,
            version: Some("pr-2-merge"),
            want_tags: &["ghcr.io/octo-org/app:pr-2-merge"],
            ..row("v1-ref-on-pull-request-target-is-the-pr", "pull_request_target")
        },
        // --- metadata-action's default rules on each event ---
        Row {
            version: Some("main"),
            want_tags: &["ghcr.io/octo-org/app:main"],
            ..row("default-push-branch", "push_main")
        },
        Row {
            version: Some("v1.2.3"),
            want_tags: &["ghcr.io/octo-org/app:v1.2.3", "ghcr.io/octo-org/app:latest"],
            ..row("default-push-tag", "push_tag_v1.2.3")
        },
        Row {
            version: Some("pr-2"),
            want_tags: &["ghcr.io/octo-org/app:pr-2"],
            ..row("default-pull-request", "pull_request")
        },
        Row {
            version: Some("pr-2"),
            want_tags: &["ghcr.io/octo-org/app:pr-2"],
            ..row("default-pull-request-target", "pull_request_target")
        },
        Row {
            version: Some("nightly"),
            want_tags: &["ghcr.io/octo-org/app:nightly", "ghcr.io/octo-org/app:main"],
            ..row("default-schedule", "schedule")
        },
        Row {
            version: Some("main"),
            want_tags: &["ghcr.io/octo-org/app:main"],
            ..row("default-workflow-dispatch", "workflow_dispatch")
        },
        Row {
            version: Some("v1.2.3"),
            want_tags: &["ghcr.io/octo-org/app:v1.2.3", "ghcr.io/octo-org/app:latest"],
            ..row("default-workflow-dispatch-on-tag", "workflow_dispatch_tag")
        },
        Row {
            version: Some("v1.2.3"),
            want_tags: &["ghcr.io/octo-org/app:v1.2.3", "ghcr.io/octo-org/app:latest"],
            ..row("default-release", "release")
        },
        Row {
            version: Some("gh-readonly-queue-main-pr-2-676cae2f85471aeff6776463c72881ebd902dcf9"),
            want_tags: &["ghcr.io/octo-org/app:gh-readonly-queue-main-pr-2-676cae2f85471aeff6776463c72881ebd902dcf9"],
            ..row("default-merge-group", "merge_group")
        },
        Row {
            version: Some("v1.0"),
            want_tags: &["ghcr.io/octo-org/app:v1.0", "ghcr.io/octo-org/app:latest"],
            ..row("default-non-semver-v-tag-keeps-its-v", "push_tag_v1.0")
        },
        // --- rules ---
        Row {
            tags: &[
                "type=semver,pattern={{version}}",
                "type=semver,pattern={{major}}.{{minor}}",
                "type=semver,pattern={{major}}",
            ],
            version: Some("1.2.3"),
            want_tags: &[
                "ghcr.io/octo-org/app:1.2.3",
                "ghcr.io/octo-org/app:1.2",
                "ghcr.io/octo-org/app:1",
                "ghcr.io/octo-org/app:latest",
            ],
            want_labels: &[(OCI_VERSION, "1.2.3")],
            ..row("semver-tag", "push_tag_v1.2.3")
        },
        Row {
            tags: &[
                "type=semver,pattern={{version}}",
                "type=semver,pattern={{major}}.{{minor}}",
                "type=semver,pattern={{major}}",
            ],
            version: Some("2.0.0-rc.1"),
            want_tags: &["ghcr.io/octo-org/app:2.0.0-rc.1"],
            ..row("semver-prerelease-only-its-version-no-latest", "push_tag_v2.0.0-rc.1")
        },
        Row {
            tags: &["type=semver,pattern={{version}}", "type=ref,event=tag"],
            version: Some("v1.0"),
            want_tags: &["ghcr.io/octo-org/app:v1.0", "ghcr.io/octo-org/app:latest"],
            want_notice: Some("`v1.0` is not a valid semver"),
            ..row("semver-refuses-a-non-semver-v-tag", "push_tag_v1.0")
        },
        Row {
            tags: &["type=pep440,pattern={{version}}", "type=match,pattern=v(.*),group=1,suffix=-m"],
            version: Some("1.0"),
            want_tags: &["ghcr.io/octo-org/app:1.0", "ghcr.io/octo-org/app:1.0-m", "ghcr.io/octo-org/app:latest"],
            ..row("pep440-and-match-on-a-non-semver-v-tag", "push_tag_v1.0")
        },
        Row {
            tags: &["type=semver,pattern={{version}}"],
            version: Some("1.2.3"),
            want_tags: &["ghcr.io/octo-org/app:1.2.3", "ghcr.io/octo-org/app:latest"],
            ..row("semver-on-workflow-dispatch-of-a-tag", "workflow_dispatch_tag")
        },
        Row {
            tags: &["type=ref,event=tag", "type=raw,value=base-{{base_ref}}"],
            version: Some("v1.2.3"),
            want_tags: &[
                "ghcr.io/octo-org/app:v1.2.3",
                "ghcr.io/octo-org/app:base-main",
                "ghcr.io/octo-org/app:latest",
            ],
            ..row("base-ref-of-a-tag-push", "push_tag_v1.2.3")
        },
        Row {
            tags: &["type=ref,event=pr", "type=sha", "type=raw,value=into-{{base_ref}}"],
            pr_head_sha: true,
            version: Some("pr-2"),
            want_tags: &[
                "ghcr.io/octo-org/app:pr-2",
                "ghcr.io/octo-org/app:into-main",
                "ghcr.io/octo-org/app:sha-3370e22",
            ],
            want_labels: &[(OCI_REVISION, HEAD_SHA)],
            ..row("pr-head-sha", "pull_request")
        },
        Row {
            tags: &["type=sha", "type=raw,value=x,enable={{is_default_branch}}"],
            version: Some("sha-a9c8c58"),
            want_tags: &["ghcr.io/octo-org/app:sha-a9c8c58"],
            want_labels: &[(OCI_REVISION, "a9c8c5828b91be19d9728548b24759e352367ef1")],
            ..row("pr-merge-sha-without-pr-head-sha", "pull_request")
        },
        Row {
            tags: &[
                "type=schedule,pattern={{date 'YYYYMMDD'}}",
                "type=schedule,pattern=nightly-{{date 'HHmm' tz='Asia/Tokyo'}}",
            ],
            version: Some("20200110"),
            want_tags: &["ghcr.io/octo-org/app:20200110", "ghcr.io/octo-org/app:nightly-0930"],
            ..row("schedule-date-patterns", "schedule")
        },
        Row {
            tags: &["type=edge", "type=raw,value=default,enable={{is_default_branch}}"],
            version: Some("edge"),
            want_tags: &["ghcr.io/octo-org/app:edge", "ghcr.io/octo-org/app:default"],
            ..row("edge-on-the-default-branch", "workflow_dispatch")
        },
        Row {
            tags: &["type=edge", "type=raw,value=other,enable={{is_not_default_branch}}"],
            version: Some("other"),
            want_tags: &["ghcr.io/octo-org/app:other"],
            ..row("no-edge-elsewhere", "workflow_dispatch_dev")
        },
        Row {
            tags: &["type=ref,event=tag"],
            flavor: &["latest=false", "prefix=app-,onlatest=true", "suffix=-slim"],
            version: Some("app-v1.2.3-slim"),
            want_tags: &["ghcr.io/octo-org/app:app-v1.2.3-slim"],
            ..row("flavor-latest-false-prefix-suffix", "push_tag_v1.2.3")
        },
        Row {
            tags: &["type=raw,value=one"],
            flavor: &["latest=true", "suffix=-slim,onlatest=true"],
            version: Some("one-slim"),
            want_tags: &["ghcr.io/octo-org/app:one-slim", "ghcr.io/octo-org/app:latest-slim"],
            ..row("flavor-latest-true-onlatest", "push_main")
        },
        Row {
            tags: &["static-one", "type=ref,event=branch"],
            tag_with_sha: true,
            version: Some("main"),
            want_tags: &[
                "ghcr.io/octo-org/app:static-one",
                "ghcr.io/octo-org/app:main",
                "ghcr.io/octo-org/app:sha-676cae2",
            ],
            ..row("static-and-rules-and-v1-mixed", "push_main")
        },
        // --- the tag grammar: charset, leading character, 128 characters ---
        Row {
            tags: &["type=ref,event=branch"],
            version: Some("my-branch"),
            want_tags: &["ghcr.io/octo-org/app:my-branch"],
            ..row("charset-slash-sanitised", "push_branch_slash")
        },
        Row {
            tags: &["type=raw,value=Ünïcode name/with spaces"],
            version: Some("n-code-name-with-spaces"),
            want_tags: &["ghcr.io/octo-org/app:n-code-name-with-spaces"],
            want_notice: Some("may not start with"),
            ..row("charset-runs-to-one-dash-and-no-leading-dash", "push_main")
        },
        Row {
            tags: &["type=raw,value=.hidden"],
            version: Some("hidden"),
            want_tags: &["ghcr.io/octo-org/app:hidden"],
            want_notice: Some("may not start with `.` or `-`"),
            ..row("leading-dot-trimmed", "push_main")
        },
        Row {
            tags: &["type=ref,event=branch"],
            version: Some(
                "feature-very-long-name-very-long-name-very-long-name-very-long-name-very-long-name-very-long-name-very-long-name-very-long-name-",
            ),
            want_tags: &[
                "ghcr.io/octo-org/app:feature-very-long-name-very-long-name-very-long-name-very-long-name-very-long-name-very-long-name-very-long-name-very-long-name-",
            ],
            want_notice: Some("longer than 128 characters"),
            ..row("128-characters-cut", "push_branch_long")
        },
        Row {
            tags: &["type=raw,value=---", "type=raw,value=kept"],
            version: Some("kept"),
            want_tags: &["ghcr.io/octo-org/app:kept"],
            want_notice: Some("skipped"),
            ..row("nothing-pushable-left-is-skipped", "push_main")
        },
        Row {
            tags: &["-bad"],
            want_error: Some("input `tags`, line 1 `-bad`: `-bad` is not a valid tag"),
            ..row("static-leading-dash-is-an-error", "push_main")
        },
        Row {
            tags: &["a", "ok,with space"],
            want_error: Some("input `tags`, line 2 `ok,with space`"),
            ..row("static-bad-charset-is-an-error", "push_main")
        },
        Row {
            tags: &["type=semver,value={{tag}}"],
            want_error: Some("input `tags`, line 1 `type=semver,value={{tag}}`: `type=semver` needs `pattern=`"),
            ..row("rule-error-names-the-line", "push_main")
        },
        // --- images: several registries, lowercasing, attributes ---
        Row {
            images: &[
                "ghcr.io/Octo-Org/App",
                "docker.io/OctoOrg/app",
                "name=quay.io/octo/App,enable=true",
                "name=registry.example.com:5000/x/y,enable=false",
            ],
            version: Some("main"),
            want_tags: &["ghcr.io/octo-org/app:main", "docker.io/octoorg/app:main", "quay.io/octo/app:main"],
            ..row("images-several-registries-lowercased", "push_main")
        },
        Row {
            images: &["ghcr.io/octo-org/app, octo/app"],
            tags: &["type=ref,event=tag"],
            version: Some("v1.2.3"),
            want_tags: &[
                "ghcr.io/octo-org/app:v1.2.3",
                "ghcr.io/octo-org/app:latest",
                "octo/app:v1.2.3",
                "octo/app:latest",
            ],
            ..row("images-comma-list", "push_tag_v1.2.3")
        },
        Row {
            images: &["ghcr.io/octo-org/app:v1"],
            want_error: Some("input `images`, line 1"),
            ..row("images-with-a-tag-is-an-error", "push_main")
        },
        Row { images: &[], version: Some("main"), want_tags: &["main"], ..row("no-images-gives-names", "push_main") },
        // --- labels and annotations ---
        Row {
            labels: &["org.opencontainers.image.title=Custom", "com.example.branch={{branch}}"],
            annotations: &["index:org.opencontainers.image.description=For the index", "com.example.note=n"],
            version: Some("main"),
            want_tags: &["ghcr.io/octo-org/app:main"],
            want_labels: &[
                (OCI_TITLE, "Custom"),
                ("com.example.branch", "main"),
                (OCI_DESCRIPTION, "The octo app"),
                (OCI_LICENSES, "MIT"),
                (OCI_VERSION, "main"),
            ],
            want_annotations: &[
                ("manifest:org.opencontainers.image.title", "App"),
                ("index:org.opencontainers.image.description", "For the index"),
                ("manifest:com.example.note", "n"),
            ],
            ..row("labels-override-and-annotation-levels", "push_main")
        },
    ]
}

fn fixture(name: &str) -> Result<(BTreeMap<String, String>, Value), String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let env = v["env"]
        .as_object()
        .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    Ok((env, v["payload"].clone()))
}

fn api_repo() -> RepoData {
    RepoData {
        name: "App".into(),
        description: Some("The octo app".into()),
        html_url: "https://github.com/Octo-Org/App".into(),
        license_spdx: Some("MIT".into()),
        default_branch: Some("main".into()),
    }
}

fn clock() -> DateTime<Utc> {
    DateTime::from_timestamp(1578616200, 0).unwrap_or_default()
}

fn lines(s: &[&str]) -> Vec<String> {
    s.iter().map(|l| l.to_string()).collect()
}

fn run(r: &Row) -> Result<Result<Meta, String>, String> {
    let (env, payload) = fixture(r.event)?;
    let ctx = GitContext::from_vars(&env, Some(payload));
    let repo = match r.repo {
        Repo::Api => api_repo(),
        Repo::Fallback => RepoData::fallback(&ctx),
    };
    let inputs = MetaInputs {
        images: lines(r.images),
        tags: lines(r.tags),
        flavor: lines(r.flavor),
        labels: lines(r.labels),
        annotations: lines(r.annotations),
        tag_with_ref: r.tag_with_ref,
        tag_with_sha: r.tag_with_sha,
        pr_head_sha: r.pr_head_sha,
    };
    Ok(compute(&inputs, &ctx, clock(), &repo).map_err(|e| e.to_string()))
}

fn check(r: &Row) -> Result<(), String> {
    let got = run(r)?;
    let meta = match (got, r.want_error) {
        (Err(e), Some(want)) if e.contains(want) => return Ok(()),
        (Err(e), _) => return Err(format!("error: {e}")),
        (Ok(m), Some(want)) => return Err(format!("wanted the error `{want}`, got tags {:?}", m.tags)),
        (Ok(m), None) => m,
    };
    let mut diffs = Vec::new();
    if meta.version.as_deref() != r.version {
        diffs.push(format!("version {:?}, want {:?}", meta.version, r.version));
    }
    if meta.tags != r.want_tags {
        diffs.push(format!("tags {:?}, want {:?}", meta.tags, r.want_tags));
    }
    for t in &meta.tag_names {
        let ok = t.len() <= 128
            && !t.starts_with(['.', '-'])
            && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok {
            diffs.push(format!("`{t}` is not a valid tag"));
        }
    }
    let all_eight = ["title", "description", "url", "source", "version", "created", "revision", "licenses"];
    for k in all_eight {
        if !meta.labels.contains_key(&format!("org.opencontainers.image.{k}")) {
            diffs.push(format!("no {k} label"));
        }
    }
    if meta.labels.get(OCI_VERSION).map(String::as_str) != Some(r.version.unwrap_or("")) {
        diffs.push(format!("version label {:?}", meta.labels.get(OCI_VERSION)));
    }
    for (k, v) in r.want_labels {
        if meta.labels.get(*k).map(String::as_str) != Some(v) {
            diffs.push(format!("label {k} = {:?}, want {v:?}", meta.labels.get(*k)));
        }
    }
    for (k, v) in r.want_annotations {
        if meta.annotations.get(*k).map(String::as_str) != Some(v) {
            diffs.push(format!("annotation {k} = {:?}, want {v:?}", meta.annotations.get(*k)));
        }
    }
    if let Some(n) = r.want_notice {
        if !meta.notices.iter().any(|m| m.contains(n)) {
            diffs.push(format!("no notice with `{n}` in {:?}", meta.notices));
        }
    }
    if diffs.is_empty() { Ok(()) } else { Err(diffs.join("; ")) }
}

#[test]
fn table() {
    let rows = rows();
    let mut ids = std::collections::BTreeSet::new();
    let mut failed = Vec::new();
    for r in &rows {
        assert!(ids.insert(r.id), "duplicate row id {}", r.id);
        if let Err(e) = check(r) {
            eprintln!("FAIL {} ({}): {e}", r.id, r.event);
            failed.push(r.id);
        }
    }
    eprintln!("{} passed, {} failed", rows.len() - failed.len(), failed.len());
    assert!(failed.is_empty(), "failed rows: {failed:?}");
}

#[test]
fn every_fixture_is_used() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
    let used: std::collections::BTreeSet<&str> = rows().iter().map(|r| r.event).collect();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().trim_end_matches(".json").to_string();
        assert!(used.contains(name.as_str()), "fixture {name} is in no row");
    }
}

#[test]
fn created_is_the_commit_time_unless_source_date_epoch() {
    let (env, payload) = fixture("push_main").unwrap_or_else(|e| panic!("{e}"));
    let ctx = GitContext::from_vars(&env, Some(payload));
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    assert_eq!(created_time(None, &ctx, now).to_rfc3339(), "2022-04-19T09:04:39+00:00");
    assert_eq!(created_time(Some(1578616200), &ctx, now), clock());
    let (env, payload) = fixture("schedule").unwrap_or_else(|e| panic!("{e}"));
    let ctx = GitContext::from_vars(&env, Some(payload));
    assert_eq!(created_time(None, &ctx, now), now);
}

//! docker/metadata-action's own 102 cases (`../shared/conformance/metadata-action`, see its README) run through
//! `meta::compute` with the suite's clock (2020-01-10T00:30:00Z) and repository (repo.json).
//!
//! The folder lives outside this repository, beside the clone in this project's CI and sessions only: in CI
//! (`CI=true`) its absence fails the test; elsewhere (a fresh clone with nothing beside it) the test says plainly
//! that the cases were not there and passes. `OCTOPUSH_META_CONFORMANCE=DIR` points at another copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use octopush::meta::{GitContext, MetaInputs, RepoData, compute};
use serde_json::Value;

fn shared_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("OCTOPUSH_META_CONFORMANCE") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(&manifest).join("shared/conformance/metadata-action")
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A dotenv file: `KEY=VALUE` lines, `#` comments.
fn dotenv(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

fn kv_map(lines: &[String]) -> BTreeMap<String, String> {
    lines.iter().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Labels equal, `created` compared as an instant.
fn same_labels(want: &BTreeMap<String, String>, got: &BTreeMap<String, String>) -> bool {
    const CREATED: &str = "org.opencontainers.image.created";
    want.len() == got.len()
        && want.iter().all(|(k, v)| match got.get(k) {
            Some(g) if k == CREATED => g == v || (instant(g).is_some() && instant(g) == instant(v)),
            Some(g) => g == v,
            None => false,
        })
}

fn run_case(dir: &Path, case: &Value, repo_json: &Value, clock: DateTime<Utc>) -> Result<(), String> {
    let env_file = case["env"].as_str().ok_or("no env")?;
    let mut vars = dotenv(&dir.join("fixtures").join(env_file))?;
    // The suite's harness falls back to docker/repo when the fixture gives no repository.
    if vars.get("GITHUB_REPOSITORY").is_none_or(|r| r.is_empty()) {
        vars.insert("GITHUB_REPOSITORY".into(), "docker/repo".into());
    }
    let payload = match vars.get("GITHUB_EVENT_PATH").filter(|p| !p.is_empty()) {
        Some(p) => {
            let name = Path::new(p).file_name().ok_or("bad GITHUB_EVENT_PATH")?;
            let path = dir.join("fixtures").join(name);
            if path.exists() { Some(read_json(&path)?) } else { None }
        }
        None => None,
    };
    let ctx = GitContext::from_vars(&vars, payload);
    let repo = RepoData::from_api_json(repo_json);
    let i = &case["inputs"];
    let inputs = MetaInputs {
        images: strings(&i["images"]),
        tags: strings(&i["tags"]),
        flavor: strings(&i["flavor"]),
        labels: strings(&i["labels"]),
        annotations: strings(&i["annotations"]),
        ..MetaInputs::default()
    };
    let meta = compute(&inputs, &ctx, clock, &repo).map_err(|e| format!("error: {e}"))?;

    let mut diffs = Vec::new();
    let want_version = case["version"].as_str().map(str::to_string);
    if meta.version != want_version {
        diffs.push(format!("version {:?}, want {want_version:?}", meta.version));
    }
    let want_tags = strings(&case["tags"]);
    if meta.tags != want_tags {
        diffs.push(format!("tags {:?}, want {want_tags:?}", meta.tags));
    }
    let mut want_names: Vec<String> = Vec::new();
    for t in &want_tags {
        let name = if inputs.images.is_empty() { t.as_str() } else { t.rsplit(':').next().unwrap_or(t) };
        if !want_names.iter().any(|n| n == name) {
            want_names.push(name.to_string());
        }
    }
    if meta.tag_names != want_names {
        diffs.push(format!("tag-names {:?}, want {want_names:?}", meta.tag_names));
    }
    let want_partial = strings(&case["partial"]);
    if meta.partial != want_partial {
        diffs.push(format!("partial {:?}, want {want_partial:?}", meta.partial));
    }
    if Some(meta.latest) != case["latest"].as_bool() {
        diffs.push(format!("latest {}, want {}", meta.latest, case["latest"]));
    }
    let want_labels = kv_map(&strings(&case["labels"]));
    if !same_labels(&want_labels, &meta.labels) {
        diffs.push(format!("labels {:?}, want {want_labels:?}", meta.labels));
    }
    // Annotations: the eight defaults (as labels would be without the `labels` input) at `manifest:`, then the
    // case's `annotations` lines over them.
    let mut want_ann: BTreeMap<String, String> = BTreeMap::new();
    let oci = |k: &str| format!("org.opencontainers.image.{k}");
    let s = |p: &str| repo_json.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    for (k, v) in [
        ("title", s("/name")),
        ("description", s("/description")),
        ("url", s("/html_url")),
        ("source", s("/html_url")),
        ("licenses", s("/license/spdx_id")),
        ("version", want_version.clone().unwrap_or_default()),
        ("created", want_labels.get(&oci("created")).cloned().unwrap_or_default()),
        ("revision", want_labels.get(&oci("revision")).cloned().unwrap_or_default()),
    ] {
        want_ann.insert(oci(k), v);
    }
    want_ann.extend(kv_map(&inputs.annotations));
    let got_ann = meta.annotations_at("manifest");
    if !same_labels(&want_ann, &got_ann) || meta.annotations.len() != got_ann.len() {
        diffs.push(format!("annotations {:?}, want manifest: {want_ann:?}", meta.annotations));
    }
    if meta.json["tags"] != serde_json::json!(meta.tags) || meta.json["tag-names"] != serde_json::json!(meta.tag_names)
    {
        diffs.push(format!("json {}", meta.json));
    }
    if diffs.is_empty() { Ok(()) } else { Err(diffs.join("; ")) }
}

#[test]
fn metadata_action_cases() {
    let dir = shared_dir();
    if !dir.join("cases.json").exists() {
        let msg = format!("the metadata-action conformance cases are not there ({})", dir.display());
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}: this project's CI always has them beside the clone (or set OCTOPUSH_META_CONFORMANCE=DIR)");
        }
        eprintln!("note: {msg}; they exist only beside this project's own CI checkout, so nothing was compared");
        return;
    }
    let cases = read_json(&dir.join("cases.json")).unwrap_or_else(|e| panic!("{e}"));
    let repo = read_json(&dir.join("fixtures/repo.json")).unwrap_or_else(|e| panic!("{e}"));
    let clock = instant("2020-01-10T00:30:00Z").unwrap_or_default();
    let cases = cases.as_array().cloned().unwrap_or_default();
    let mut failed = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("?");
        if let Err(e) = run_case(&dir, case, &repo, clock) {
            eprintln!("FAIL {id}: {e}");
            failed.push(id.to_string());
        }
    }
    eprintln!("{} passed, {} failed", cases.len() - failed.len(), failed.len());
    assert_eq!(cases.len(), 102, "the suite has 102 cases");
    assert!(failed.is_empty(), "failed: {failed:?}");
}

//! `compute` as a whole: order of static, rule and v1 tags, errors naming their input and line, notices, images,
//! annotations and the JSON shape.

use super::*;
use std::collections::BTreeMap;

fn ctx(git_ref: &str, event: &str) -> GitContext {
    let vars: BTreeMap<String, String> = [
        ("GITHUB_REF", git_ref),
        ("GITHUB_EVENT_NAME", event),
        ("GITHUB_SHA", "676cae2f85471aeff6776463c72881ebd902dcf9"),
        ("GITHUB_REPOSITORY", "Octo-Org/App"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    GitContext::from_vars(&vars, Some(json!({"repository": {"default_branch": "main"}})))
}

fn lines(s: &[&str]) -> Vec<String> {
    s.iter().map(|l| l.to_string()).collect()
}

fn clock() -> DateTime<Utc> {
    DateTime::from_timestamp(1578616200, 0).unwrap_or_default()
}

fn run(inputs: MetaInputs, c: &GitContext) -> Result<Meta, MetaError> {
    compute(&inputs, c, clock(), &RepoData::fallback(c))
}

fn names(inputs: MetaInputs, git_ref: &str) -> Vec<String> {
    run(inputs, &ctx(git_ref, "push")).map(|m| m.tag_names).unwrap_or_else(|e| vec![format!("ERR {e}")])
}

#[test]
fn statics_then_rules_then_v1() {
    let inputs = MetaInputs {
        tags: lines(&["stable, edge", "type=semver,pattern={{version}}", "stable"]),
        tag_with_ref: true,
        tag_with_sha: true,
        ..MetaInputs::default()
    };
    assert_eq!(names(inputs, "refs/tags/v1.2.3"), ["stable", "edge", "1.2.3", "latest", "v1.2.3", "sha-676cae2"]);
}

#[test]
fn version_is_the_rules_else_the_first_tag() {
    let c = ctx("refs/tags/v1.2.3", "push");
    let m = run(MetaInputs { tags: lines(&["a", "type=semver,pattern={{version}}"]), ..Default::default() }, &c);
    assert_eq!(m.ok().and_then(|m| m.version), Some("1.2.3".into()));
    let m = run(MetaInputs { tags: lines(&["a,b"]), ..Default::default() }, &c);
    assert_eq!(m.ok().and_then(|m| m.version), Some("a".into()));
}

#[test]
fn defaults_only_without_any_tag_input() {
    assert_eq!(names(MetaInputs::default(), "refs/heads/feature/x"), ["feature-x"]);
    let sha_only = MetaInputs { tag_with_sha: true, ..Default::default() };
    assert_eq!(names(sha_only, "refs/heads/feature/x"), ["sha-676cae2"]);
}

#[test]
fn errors_name_the_input_and_line() {
    let cases = [
        (
            MetaInputs { tags: lines(&["a", "type=semver"]), ..Default::default() },
            "input `tags`, line 2 `type=semver`: `type=semver` needs `pattern=`",
        ),
        (
            MetaInputs { tags: lines(&["ok", "ghcr.io/o/app:1"]), ..Default::default() },
            "input `tags`, line 2 `ghcr.io/o/app:1`: `ghcr.io/o/app:1` is not a valid tag",
        ),
        (
            MetaInputs { flavor: lines(&["latest=always"]), ..Default::default() },
            "input `flavor`, line 1 `latest=always`: `latest=always` is not auto, true or false",
        ),
        (
            MetaInputs { images: lines(&["ghcr.io/o/app:v1"]), ..Default::default() },
            "input `images`, line 1 `ghcr.io/o/app:v1`",
        ),
        (
            MetaInputs { tags: lines(&["type=raw,value=x,enable={{branch}}"]), ..Default::default() },
            "`enable` must be `true` or `false` after expansion, not `main`",
        ),
        (
            MetaInputs { tags: lines(&["type=raw,value={{date 'YYYY' tz='Mars/Base'}}"]), ..Default::default() },
            "is not a time zone name",
        ),
        (MetaInputs { tags: lines(&["type=match,pattern=(?=x)"]), ..Default::default() }, "look-around"),
        (
            MetaInputs { tags: lines(&["type=raw,value={{#if x}}y{{/if}}"]), ..Default::default() },
            "blocks and partials",
        ),
    ];
    for (inputs, want) in cases {
        let got = run(inputs, &ctx("refs/heads/main", "push")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(got.contains(want), "{got}\n  wanted: {want}");
    }
}

#[test]
fn bad_values_from_the_event_are_trimmed_with_a_notice() {
    let c = ctx(&format!("refs/heads/-{}", "x".repeat(140)), "push");
    let m = run(MetaInputs::default(), &c).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.tag_names, ["x".repeat(128)]);
    assert_eq!(m.notices.len(), 2, "{:?}", m.notices);
    let c = ctx("refs/heads/.hidden", "push");
    let m = run(MetaInputs { tag_with_ref: true, ..Default::default() }, &c).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.tag_names, ["hidden"]);
}

#[test]
fn notices_for_unknown_expressions_and_attributes() {
    let inputs = MetaInputs { tags: lines(&["type=raw,value=x{{nope}},patern=y"]), ..Default::default() };
    let m = run(inputs, &ctx("refs/heads/main", "push")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.tag_names, ["x"]);
    assert!(m.notices.iter().any(|n| n.contains("`{{nope}}` is not known")), "{:?}", m.notices);
    assert!(m.notices.iter().any(|n| n.contains("does not read patern")), "{:?}", m.notices);
}

#[test]
fn images_are_lowercased_deduplicated_and_may_be_disabled() {
    let inputs = MetaInputs {
        images: lines(&[
            "ghcr.io/Octo-Org/App",
            "# comment",
            "ghcr.io/octo-org/app",
            "name=Docker.io/Octo/App,enable=false",
            "quay.io/o/a, localhost:5000/x",
        ]),
        tags: lines(&["v1"]),
        ..Default::default()
    };
    let m = run(inputs, &ctx("refs/heads/main", "push")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.tags, ["ghcr.io/octo-org/app:v1", "quay.io/o/a:v1", "localhost:5000/x:v1"]);
}

#[test]
fn labels_annotations_and_json() {
    let inputs = MetaInputs {
        images: lines(&["ghcr.io/o/app"]),
        labels: lines(&["org.opencontainers.image.title=Mine", "built.from={{branch}}"]),
        annotations: lines(&["index:org.opencontainers.image.description=Index", "x=y"]),
        ..Default::default()
    };
    let m = run(inputs, &ctx("refs/heads/main", "push")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.labels["org.opencontainers.image.title"], "Mine");
    assert_eq!(m.labels["org.opencontainers.image.source"], "https://github.com/Octo-Org/App");
    assert_eq!(m.labels["built.from"], "main");
    assert_eq!(m.user_labels.len(), 2);
    assert_eq!(m.annotations["manifest:org.opencontainers.image.title"], "App");
    assert_eq!(
        m.annotations_at("index").into_iter().collect::<Vec<_>>(),
        [("org.opencontainers.image.description".to_string(), "Index".to_string())]
    );
    assert_eq!(m.annotations_at("manifest").len(), 9);
    // The pushed index also carries what GitHub's package page reads (the user's `index:` value wins; the empty
    // description of the repository data would not be set).
    let index = m.index_annotations();
    assert_eq!(index["org.opencontainers.image.description"], "Index");
    assert_eq!(index["org.opencontainers.image.source"], "https://github.com/Octo-Org/App");
    assert_eq!(
        index.get("org.opencontainers.image.licenses").map(String::as_str),
        m.labels.get("org.opencontainers.image.licenses").map(String::as_str).filter(|v| !v.is_empty())
    );
    assert_eq!(m.json["tags"], json!(["ghcr.io/o/app:main"]));
    assert_eq!(m.json["tag-names"], json!(["main"]));
    assert_eq!(m.json["labels"]["built.from"], json!("main"));
    assert_eq!(m.json["annotations"][0], json!("index:org.opencontainers.image.description=Index"));
}

#[test]
fn the_two_clocks() {
    let c = ctx("refs/heads/main", "push");
    let later = DateTime::from_timestamp(1700000000, 0).unwrap_or_default();
    let inputs = MetaInputs {
        tags: lines(&["type=raw,value={{date 'YYYYMMDD'}}", "type=raw,value=c{{commit_date 'YYYYMMDD'}}"]),
        ..Default::default()
    };
    let m = compute_with_date(&inputs, &c, clock(), later, &RepoData::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.tag_names, ["20231114", "c20200110"]);
    assert_eq!(m.labels["org.opencontainers.image.created"], "2020-01-10T00:30:00.000Z");
}

#[test]
fn created_time_prefers_source_date_epoch_then_the_commit() {
    let vars: BTreeMap<String, String> =
        [("GITHUB_SHA", "aaa")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let c = GitContext::from_vars(
        &vars,
        Some(json!({"head_commit": {"id": "aaa", "timestamp": "2022-04-19T11:04:39+02:00"}})),
    );
    let now = DateTime::from_timestamp(1800000000, 0).unwrap_or_default();
    assert_eq!(created_time(Some(1578616200), &c, now), clock());
    assert_eq!(created_time(None, &c, now).to_rfc3339(), "2022-04-19T09:04:39+00:00");
    assert_eq!(created_time(None, &GitContext::default(), now), now);
    assert_eq!(date_time(None, now), now);
    assert_eq!(date_time(Some(1578616200), now), clock());
}

#[test]
fn user_labels_literal() {
    let inputs = MetaInputs { labels: lines(&["a={{branch}}"]), ..Default::default() };
    assert_eq!(user_labels(&inputs).ok().map(|m| m["a"].clone()), Some("{{branch}}".into()));
}

#[test]
fn rule_lines_are_recognised_by_a_type_field() {
    assert!(is_rule_line("type=raw,value=x"));
    assert!(is_rule_line("value=x, TYPE = raw"));
    assert!(is_rule_line(r#""type=match",pattern=x"#));
    assert!(!is_rule_line("latest,stable"));
    assert!(!is_rule_line("typed"));
}

#[test]
fn odd_input_never_panics() {
    let fragments = [
        "",
        "{{",
        "}}",
        "{{{",
        "}}}",
        "{{~",
        "~}}",
        "{{!",
        "{{!--",
        "--}}",
        "\\",
        "\\{{",
        "\"",
        "'",
        ",",
        "=",
        "type=",
        "type=raw",
        "type=match",
        "pattern=",
        "/",
        "//",
        "[",
        "]",
        "é",
        "ÿ",
        "日本",
        "🐙",
        "{{date '",
        "{{date 'Y[é",
        "{{date \"",
        "tz='",
        "{{commit_date",
        "{{branch}}",
        "{{ raw }}",
        "value=",
        "enable=",
        "priority=1e3",
        "group=99",
        "prefix=-",
        "suffix=.",
        "manifest:",
        "index,",
        "name=",
        "latest=",
        "#",
        " ",
        "\t",
        "a=b=c",
    ];
    let c = ctx("refs/tags/v1.2.3-rc.1+é", "push");
    let mut count = 0;
    for a in fragments {
        for b in fragments {
            let line = format!("{a}{b}");
            let typed = format!("type=raw,value={line}");
            let date = format!("type=raw,value={{{{date '{line}'}}}}");
            let m = format!("type=match,\"pattern={line}\",group=1");
            for inputs in [
                MetaInputs { tags: vec![line.clone(), typed.clone(), date, m], ..Default::default() },
                MetaInputs { flavor: vec![line.clone()], labels: vec![line.clone()], ..Default::default() },
                MetaInputs { images: vec![line.clone()], annotations: vec![line.clone()], ..Default::default() },
            ] {
                let _ = run(inputs, &c);
                count += 1;
            }
        }
    }
    assert!(count > 1000);
}

#[test]
fn label_lines_without_a_key_are_dropped_with_a_notice() {
    // metadata-action's json01: `invalid` is dropped, `foo=` is an empty label.
    let inputs = MetaInputs { labels: lines(&["invalid", "foo="]), ..Default::default() };
    let m = run(inputs, &ctx("refs/heads/main", "push")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.labels.get("foo").map(String::as_str), Some(""));
    assert!(!m.labels.contains_key("invalid"));
    assert_eq!(m.labels.len(), 9);
    assert!(m.notices.iter().any(|n| n.contains("`invalid` is not `key=value`: ignored")), "{:?}", m.notices);
}

//! Tags, labels and annotations: a pure function of (inputs, event context, clock, repository data), as
//! docker/metadata-action computes them, plus build-push-action v1's tag inputs (TAGS.md is the contract).
//!
//! - A `tags` line with `type=` is a metadata-action rule; any other line is a comma-separated list of static
//!   tags (v1), emitted first. Then the rules' tags (version, the others, `latest`), then v1's ref and sha tags.
//!   Duplicates are dropped. Without any rule line or v1 input, metadata-action's default rules apply.
//! - `version` is the rules' version, or else the first tag.
//! - Every tag obeys the registry grammar: rule and ref values are sanitised as metadata-action does, and what it
//!   lets through (a leading `.` or `-`, more than 128 characters) is trimmed with a notice in `Meta::notices`;
//!   static tags are the user's own words, so an invalid one is an error naming the line.
//! - `created` (and `{{commit_date}}`) use the build's clock: `SOURCE_DATE_EPOCH`, else the commit's time from
//!   the payload, else now (`created_time`); `{{date}}` uses `SOURCE_DATE_EPOCH` or now (`date_time`).

mod context;
mod datefmt;
mod expr;
mod fields;
mod flavor;
mod images;
mod labels;
mod repo;
mod rules;
mod scope;
mod tags;
mod version;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub use context::GitContext;
pub use images::image_names;
pub use repo::{RepoData, fetch_repo};
pub use tags::sanitize;

use flavor::Flavor;
use rules::Rule;
use scope::Scope;
use tags::Line;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// A line of an input (`tags`, `flavor`, `images`, `labels`, `annotations`), numbered from 1.
    #[error("input `{input}`, line {line} `{text}`: {message}")]
    Line { input: &'static str, line: usize, text: String, message: String },
    #[error("input `{input}`: {message}")]
    Input { input: &'static str, message: String },
    #[error("reading the repository {repository} from GitHub's API: {message}")]
    Api { repository: String, message: String },
}

#[derive(Debug, Clone, Default)]
pub struct MetaInputs {
    /// Lines of `images` (metadata-action's `name=...,enable=...` attributes allowed), defaulted by the edge.
    pub images: Vec<String>,
    /// Lines of `tags`: rule lines and/or comma-separated static tags.
    pub tags: Vec<String>,
    pub flavor: Vec<String>,
    pub labels: Vec<String>,
    pub annotations: Vec<String>,
    pub tag_with_ref: bool,
    pub tag_with_sha: bool,
    /// `DOCKER_METADATA_PR_HEAD_SHA`: on pull request events, the revision is the pull request's head commit.
    pub pr_head_sha: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub version: Option<String>,
    /// Tag names, in order.
    pub tag_names: Vec<String>,
    /// Full references: every enabled image with every tag name (bare names when there is no image).
    pub tags: Vec<String>,
    /// The eight OCI labels with the user's `labels` over them.
    pub labels: BTreeMap<String, String>,
    /// The user's `labels` alone, expanded (for `add_git_labels: false`).
    pub user_labels: BTreeMap<String, String>,
    /// Keyed `LEVEL:key` (`manifest:org.opencontainers.image.title`), as metadata-action's `annotations` output
    /// prints them; `annotations_at` gives one level's plain keys.
    pub annotations: BTreeMap<String, String>,
    /// The rules' other tags (metadata-action's `partial`) and whether they added `latest`.
    pub partial: Vec<String>,
    pub latest: bool,
    /// metadata-action's output shape: `{tags, tag-names, labels: {k: v}, annotations: ["LEVEL:k=v"]}`.
    pub json: Value,
    /// What the user should hear about (a version that did not parse, a tag that was trimmed...).
    pub notices: Vec<String>,
}

impl Meta {
    /// The annotations of one level (`manifest`, `index`, ...), keys without the level.
    pub fn annotations_at(&self, level: &str) -> BTreeMap<String, String> {
        self.annotations
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(level)?.strip_prefix(':')?.to_string(), v.clone())))
            .collect()
    }

    /// What a pushed index carries: the `index:` annotations, and by default the labels GitHub's package page
    /// reads from a multi-platform image's index (`description`, `source`, `licenses`; ghcr.io does not look into
    /// the children), when they have a value and the user did not set them.
    pub fn index_annotations(&self) -> BTreeMap<String, String> {
        let mut out = self.annotations_at("index");
        for key in ["description", "source", "licenses"].map(|k| format!("org.opencontainers.image.{k}")) {
            if let Some(v) = self.labels.get(&key).filter(|v| !v.is_empty()) {
                out.entry(key).or_insert_with(|| v.clone());
            }
        }
        out
    }
}

/// The build's clock for `created` and `{{commit_date}}`: `SOURCE_DATE_EPOCH`, else the commit's time from the
/// event payload, else `now`.
pub fn created_time(source_date_epoch: Option<i64>, ctx: &GitContext, now: DateTime<Utc>) -> DateTime<Utc> {
    source_date_epoch.and_then(|s| DateTime::from_timestamp(s, 0)).or_else(|| ctx.commit_time(&ctx.sha)).unwrap_or(now)
}

/// The clock for `{{date}}`: `SOURCE_DATE_EPOCH`, else `now`.
pub fn date_time(source_date_epoch: Option<i64>, now: DateTime<Utc>) -> DateTime<Utc> {
    source_date_epoch.and_then(|s| DateTime::from_timestamp(s, 0)).unwrap_or(now)
}

/// `compute_with_date` with one clock for `created`, `{{commit_date}}` and `{{date}}`.
pub fn compute(
    inputs: &MetaInputs,
    ctx: &GitContext,
    clock: DateTime<Utc>,
    repo: &RepoData,
) -> Result<Meta, MetaError> {
    compute_with_date(inputs, ctx, clock, clock, repo)
}

/// Version, tags, labels and annotations. `clock` is `created_time`'s (for `created` and `{{commit_date}}`),
/// `date` is `date_time`'s (for `{{date}}`).
pub fn compute_with_date(
    inputs: &MetaInputs,
    ctx: &GitContext,
    clock: DateTime<Utc>,
    date: DateTime<Utc>,
    repo: &RepoData,
) -> Result<Meta, MetaError> {
    let mut notices = Vec::new();
    let images = images::images(&inputs.images)?;
    let mut flavor = Flavor::default();
    for (n, line) in lines(&inputs.flavor) {
        flavor.apply_line(line).map_err(|m| line_error("flavor", n, line, m))?;
    }
    let (statics, mut rules) = tag_lines(&inputs.tags)?;
    if rules.is_empty() && statics.is_empty() && !inputs.tag_with_ref && !inputs.tag_with_sha {
        for text in ["type=schedule", "type=ref,event=branch", "type=ref,event=tag", "type=ref,event=pr"] {
            let rule = Rule::parse(text).map_err(|m| line_error("tags", 0, text, m))?;
            rules.push(Line { rule, number: 0, text: format!("{text} (default)") });
        }
    }
    rules.sort_by(|a, b| b.rule.priority.partial_cmp(&a.rule.priority).unwrap_or(std::cmp::Ordering::Equal));

    let sha = ctx.commit_sha(inputs.pr_head_sha);
    let scope = Scope { ctx, repo, sha: sha.clone(), date, commit_date: clock, short_sha_len: 7 };
    let v = tags::evaluate(&rules, &flavor, &scope, &mut notices)?;

    let mut names: Vec<String> = Vec::new();
    let mut add = |t: String| {
        if !names.contains(&t) {
            names.push(t);
        }
    };
    statics.into_iter().for_each(&mut add);
    if let Some(main) = &v.main {
        add(main.clone());
        v.partial.iter().cloned().for_each(&mut add);
        if v.latest {
            let mut unknown = Vec::new();
            let expand = |s: &str, unknown: &mut Vec<String>| scope.global(s, unknown);
            let prefix = if flavor.prefix_latest { expand(&flavor.prefix, &mut unknown) } else { Ok(String::new()) };
            let suffix = if flavor.suffix_latest { expand(&flavor.suffix, &mut unknown) } else { Ok(String::new()) };
            let msg = |m: String| MetaError::Input { input: "flavor", message: m };
            let latest = format!("{}latest{}", prefix.map_err(msg)?, suffix.map_err(msg)?);
            tags::enforce(&latest, &mut notices).into_iter().for_each(&mut add);
        }
    }
    tags::v1_tags(inputs, &scope, &mut notices).into_iter().for_each(&mut add);

    let version = v.main.clone().or_else(|| names.first().cloned());
    let refs: Vec<String> = if images.is_empty() {
        names.clone()
    } else {
        images.iter().flat_map(|i| names.iter().map(move |t| format!("{i}:{t}"))).collect()
    };

    let defaults = labels::defaults(repo, version.as_deref().unwrap_or(""), clock, &sha);
    let user = labels::pairs(&inputs.labels, "labels", Some(&scope), &mut notices)?;
    let user_labels: BTreeMap<String, String> = user.iter().cloned().collect();
    let all_labels = labels::merge(defaults.clone(), user);
    let user_annotations = labels::pairs(&inputs.annotations, "annotations", Some(&scope), &mut notices)?;
    let annotations = labels::annotations(defaults, user_annotations)
        .map_err(|message| MetaError::Input { input: "annotations", message })?;

    let json = json!({
        "tags": refs,
        "tag-names": names,
        "labels": all_labels,
        "annotations": annotations.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
    });
    Ok(Meta {
        version,
        tag_names: names,
        tags: refs,
        labels: all_labels,
        user_labels,
        annotations,
        partial: v.partial,
        latest: v.latest,
        json,
        notices,
    })
}

/// The user's `labels` alone, taken literally (expressions are not expanded: `Meta::user_labels` has them
/// expanded).
pub fn user_labels(inputs: &MetaInputs) -> Result<BTreeMap<String, String>, MetaError> {
    Ok(labels::pairs(&inputs.labels, "labels", None, &mut Vec::new())?.into_iter().collect())
}

/// Non-blank, non-comment lines with their 1-based numbers.
fn lines(input: &[String]) -> impl Iterator<Item = (usize, &str)> {
    input.iter().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

fn line_error(input: &'static str, line: usize, text: &str, message: String) -> MetaError {
    MetaError::Line { input, line, text: text.to_string(), message }
}

/// A line is a rule when one of its fields is `type=...`.
fn is_rule_line(line: &str) -> bool {
    line.split(',').any(|f| {
        let f = f.trim().trim_start_matches('"').trim_start();
        f.get(..4).is_some_and(|k| k.eq_ignore_ascii_case("type")) && f[4..].trim_start().starts_with('=')
    })
}

fn tag_lines(input: &[String]) -> Result<(Vec<String>, Vec<Line>), MetaError> {
    let mut statics = Vec::new();
    let mut rules = Vec::new();
    for (n, line) in lines(input) {
        if is_rule_line(line) {
            let rule = Rule::parse(line).map_err(|m| line_error("tags", n, line, m))?;
            rules.push(Line { rule, number: n, text: line.to_string() });
            continue;
        }
        for t in line.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let t = tags::static_tag(t).map_err(|m| line_error("tags", n, line, m))?;
            if !statics.contains(&t) {
                statics.push(t);
            }
        }
    }
    Ok((statics, rules))
}

#[cfg(test)]
mod tests;

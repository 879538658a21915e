//! What a prune or restore shows: the decision table for the log and the job summary (version id, digest, tags,
//! age, decision and reason), and the `deleted`, `kept`, `planned` and `restored` outputs as JSON.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use octopush::packages::prune::{Outcome, RestoreReport};
use octopush::packages::rules::human_age;
use octopush::packages::{PruneReport, Row, Version, short_digest};

fn decision(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Kept => "keep",
        Outcome::Deleted => "deleted",
        Outcome::WouldDelete => "would delete",
        Outcome::NotReached => "not deleted (stopped)",
    }
}

fn age(v: &Version, now: DateTime<Utc>) -> String {
    human_age((now - v.created_at).to_std().unwrap_or_default())
}

fn tags(v: &Version) -> String {
    v.tags.join(", ")
}

/// The table as plain aligned text, one line per version.
pub fn text_table(report: &PruneReport, now: DateTime<Utc>) -> String {
    let header = ["version id", "digest", "tags", "age", "decision", "reason"].map(String::from);
    let mut lines: Vec<[String; 6]> = vec![header];
    for r in &report.rows {
        lines.push([
            r.version.id.to_string(),
            short_digest(&r.version.name),
            tags(&r.version),
            age(&r.version, now),
            decision(r.outcome).to_string(),
            r.decision.reason().to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..6).map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for l in &lines {
        let mut line = String::new();
        for (c, cell) in l.iter().enumerate() {
            if c == 5 {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One line: how many versions went and stayed.
pub fn one_line(report: &PruneReport) -> String {
    let deleted = report.deleted().count();
    let kept = report.kept().count();
    if report.dry_run {
        format!("{}: dry run, {deleted} versions would be deleted, {kept} kept; nothing was deleted", report.package)
    } else {
        format!("{}: {deleted} versions deleted, {kept} kept", report.package)
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

pub fn markdown(report: &PruneReport, now: DateTime<Utc>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### Pruned the {}\n", report.package);
    if report.dry_run {
        let _ = writeln!(s, "**Dry run:** nothing was deleted; *would delete* marks what a real run deletes.\n");
    }
    let _ = writeln!(s, "{}\n", one_line(report));
    let _ = writeln!(s, "| Version | Digest | Tags | Age | Decision | Reason |\n|---|---|---|---|---|---|");
    for r in &report.rows {
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} | {} | {} |",
            r.version.id,
            short_digest(&r.version.name),
            cell(&r.version.tags.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")),
            age(&r.version, now),
            decision(r.outcome),
            cell(&r.decision.reason().to_string())
        );
    }
    s.push('\n');
    s
}

fn row_json(r: &Row) -> Value {
    json!({
        "id": r.version.id,
        "name": r.version.name,
        "tags": r.version.tags,
        "created_at": r.version.created_at.to_rfc3339(),
        "reason": r.decision.reason().to_string(),
    })
}

/// `deleted` (what was deleted, in the order it was, which `restore` undoes backwards), `kept` (newest first),
/// `planned` (what the rules delete: `deleted` after a full run, what would go in a dry run) and `dry-run`.
pub fn outputs(report: &PruneReport) -> Vec<(&'static str, String)> {
    let list = |rows: Vec<&Row>| Value::Array(rows.into_iter().map(row_json).collect()).to_string();
    let planned: Vec<&Row> = report.order.iter().map(|i| &report.rows[*i]).collect();
    let deleted: Vec<&Row> = planned.iter().copied().filter(|r| r.outcome == Outcome::Deleted).collect();
    vec![
        ("deleted", list(deleted)),
        ("kept", list(report.kept().collect())),
        ("planned", list(planned)),
        ("dry-run", report.dry_run.to_string()),
    ]
}

pub fn restore_outputs(report: &RestoreReport) -> Vec<(&'static str, String)> {
    let restored: Vec<Value> =
        report.restored.iter().map(|v| json!({"id": v.id, "name": v.name, "tags": v.tags})).collect();
    vec![("restored", Value::Array(restored).to_string())]
}

pub fn restore_markdown(report: &RestoreReport) -> String {
    let mut s =
        format!("### Restored versions of the {}\n\n| Version | Name | Tags |\n|---|---|---|\n", report.package);
    for v in &report.restored {
        let _ = writeln!(s, "| {} | `{}` | {} |", v.id, short_digest(&v.name), cell(&tags(v)));
    }
    s.push('\n');
    s
}

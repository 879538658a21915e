//! The job summary (Markdown for `GITHUB_STEP_SUMMARY`), the one-line report, and the `metadata` output.

use std::fmt::Write as _;
use std::time::Duration;

use octopush::meta::Meta;
use octopush::progress::human_bytes;
use octopush::publish::Published;

pub fn markdown(p: &Published, meta: &Meta, elapsed: Duration) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### Published with octopush\n");
    if p.references.is_empty() && p.reports.is_empty() {
        let _ = writeln!(s, "Built, not pushed (`push: false`).\n");
    } else if p.references.is_empty() {
        let _ = writeln!(s, "Pushed by digest, without a tag (`push_by_digest`), for a `command: merge` job.\n");
    }
    let _ = writeln!(s, "| | |\n|---|---|");
    for r in &p.references {
        let _ = writeln!(s, "| Reference | `{r}` |");
    }
    if let Some(dir) = &p.layout {
        let _ = writeln!(s, "| OCI layout | `{}` |", dir.display());
    }
    let _ = writeln!(s, "| Digest | `{}` |", p.manifest.digest);
    let _ = writeln!(s, "| Image ID | `{}` |", p.image_id);
    if let Some(v) = &meta.version {
        let _ = writeln!(s, "| Version | `{v}` |");
    }
    let _ =
        writeln!(s, "| Platforms | {} |", p.platforms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
    let _ = writeln!(s, "| Size | {} |", human_bytes(p.size));
    let _ = writeln!(
        s,
        "| Blobs | {} uploaded ({}), {} mounted, {} already there |",
        p.uploaded,
        human_bytes(p.bytes_uploaded),
        p.mounted,
        p.skipped
    );
    let _ = writeln!(s, "| Time | {:.1} s{} |", elapsed.as_secs_f64(), phases(p));
    if !meta.labels.is_empty() {
        let _ = writeln!(s, "\n<details><summary>Labels</summary>\n\n```");
        for (k, v) in &meta.labels {
            let _ = writeln!(s, "{k}={v}");
        }
        let _ = writeln!(s, "```\n</details>");
    }
    s.push('\n');
    s
}

/// ` (prepare 0.3 s, build 8.0 s, push 4.1 s)`, or nothing.
fn phases(p: &Published) -> String {
    if p.phases.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = p.phases.iter().map(|(name, d)| format!("{name} {:.1} s", d.as_secs_f64())).collect();
    format!(" ({})", parts.join(", "))
}

pub fn one_line(p: &Published, elapsed: Duration) -> String {
    let what = match (p.references.is_empty(), p.reports.is_empty()) {
        (false, _) => format!("pushed {}", p.references.join(", ")),
        (true, false) => "pushed by digest".to_string(),
        (true, true) => "built".to_string(),
    };
    format!(
        "{what} ({}) in {:.1} s{}: {} blobs uploaded, {} mounted, {} already there",
        p.manifest.digest,
        elapsed.as_secs_f64(),
        phases(p),
        p.uploaded,
        p.mounted,
        p.skipped
    )
}

pub fn metadata_json(p: &Published) -> serde_json::Value {
    serde_json::json!({
        "digest": p.manifest.digest,
        "mediaType": p.manifest.media_type,
        "imageId": p.image_id,
        "references": p.references,
        "platforms": p.platforms.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "manifests": p.manifests.iter().map(|(platform, digest)| serde_json::json!({
            "platform": platform.to_string(),
            "digest": digest,
        })).collect::<Vec<_>>(),
        "size": p.size,
        "blobs": { "uploaded": p.uploaded, "mounted": p.mounted, "skipped": p.skipped, "bytesUploaded": p.bytes_uploaded },
        "layout": p.layout,
    })
}

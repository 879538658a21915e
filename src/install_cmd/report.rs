//! What an install reports: the `installed` and `clients` outputs (JSON), the job summary's tables and the last
//! log line. Never a token: client entries name files and variables, not their values.

use serde_json::json;

use octopush::install::Installed;
use octopush::install::clients::ClientSetup;
use octopush::progress::human_bytes;

fn target_text(i: &Installed) -> String {
    match i.target.path() {
        Some(p) => format!("{}:{}", i.target.kind(), p.display()),
        None => i.target.kind().to_string(),
    }
}

pub fn installed_json(installed: &[Installed]) -> serde_json::Value {
    installed
        .iter()
        .map(|i| {
            json!({
                "reference": i.reference,
                "digest": i.digest.as_str(),
                "image_id": i.image_id.as_str(),
                "platform": i.platform.to_string(),
                "target": i.target.kind(),
                "path": i.target.path().map(|p| p.display().to_string()),
                "layers": i.layers,
                "size": i.size,
            })
        })
        .collect()
}

pub fn clients_json(setup: Option<&ClientSetup>) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for c in setup.map(|s| s.configured.as_slice()).unwrap_or_default() {
        out.insert(
            c.ecosystem.name().to_string(),
            json!({
                "files": c.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                "variables": c.variables,
                "registries": c.registries,
            }),
        );
    }
    serde_json::Value::Object(out)
}

pub fn outputs(installed: &[Installed], setup: Option<&ClientSetup>) -> Vec<(&'static str, String)> {
    vec![("installed", installed_json(installed).to_string()), ("clients", clients_json(setup).to_string())]
}

pub fn markdown(installed: &[Installed], setup: Option<&ClientSetup>) -> String {
    let mut md = String::from("### Installed with octopush\n\n");
    if !installed.is_empty() {
        md.push_str("| Image | Digest | Platform | Into | Layers |\n| --- | --- | --- | --- | --- |\n");
        for i in installed {
            md.push_str(&format!(
                "| `{}` | `{}` | {} | `{}` | {} ({}) |\n",
                i.reference,
                i.digest,
                i.platform,
                target_text(i),
                i.layers,
                human_bytes(i.size)
            ));
        }
        md.push('\n');
    }
    if let Some(setup) = setup {
        md.push_str("| Client | Reads | Files | Variables for later steps |\n| --- | --- | --- | --- |\n");
        for c in &setup.configured {
            let files: Vec<String> = c.files.iter().map(|f| format!("`{}`", f.display())).collect();
            let vars: Vec<String> = c.variables.iter().map(|v| format!("`{v}`")).collect();
            md.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                c.ecosystem.name(),
                c.registries.join("<br>"),
                if files.is_empty() { "-".to_string() } else { files.join("<br>") },
                vars.join(" ")
            ));
        }
        md.push('\n');
    }
    md
}

pub fn one_line(installed: &[Installed], setup: Option<&ClientSetup>) -> String {
    let images: Vec<String> = installed.iter().map(|i| format!("{} -> {}", i.reference, target_text(i))).collect();
    let clients: Vec<&str> =
        setup.map(|s| s.configured.iter().map(|c| c.ecosystem.name()).collect()).unwrap_or_default();
    match (images.is_empty(), clients.is_empty()) {
        (false, false) => format!("installed {}; set up {}", images.join(", "), clients.join(", ")),
        (false, true) => format!("installed {}", images.join(", ")),
        _ => format!("set up {}", clients.join(", ")),
    }
}

//! The text of each client's configuration, as its own documentation writes it: `.npmrc` lines, a Maven
//! `settings.xml`, a `NuGet.Config`, a `.gemrc` and Bundler config, a docker `config.json`, and the environment
//! variables that point a later step at them. Pure functions of the request; nothing is written here.

use base64::Engine as _;

use super::{ClientError, ClientRequest, Ecosystem};

/// One client's files (relative to the folder) and variables.
pub(super) struct Rendered {
    pub files: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    pub registries: Vec<String>,
}

pub(super) fn render(eco: Ecosystem, r: &ClientRequest) -> Result<Rendered, ClientError> {
    let exported = |rel: &str| r.exported_dir.join(rel).display().to_string();
    let owners: Vec<String> = r.owners.iter().map(|o| o.to_ascii_lowercase()).collect();
    Ok(match eco {
        Ecosystem::Npm => {
            let mut text = String::from("; GitHub Packages for npm, written by octopush (command: install)\n");
            for o in &owners {
                text.push_str(&format!("@{o}:registry={}\n", r.urls.npm));
            }
            text.push_str(&format!("{}:_authToken={}\n", npm_auth_key(&r.urls.npm), r.token.expose()));
            Rendered {
                files: vec![("npm/.npmrc".into(), text)],
                env: vec![("NPM_CONFIG_USERCONFIG".into(), exported("npm/.npmrc"))],
                registries: owners.iter().map(|o| format!("@{o} -> {}", r.urls.npm)).collect(),
            }
        }
        Ecosystem::Maven => {
            let settings = exported("maven/settings.xml");
            let args = match r.maven_args.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
                Some(existing) if existing.contains(&settings) => existing.to_string(),
                Some(existing) => format!("-s {settings} {existing}"),
                None => format!("-s {settings}"),
            };
            Rendered {
                files: vec![("maven/settings.xml".into(), maven_settings(r, &owners))],
                env: vec![("MAVEN_ARGS".into(), args), ("OCTOPUSH_MAVEN_SETTINGS".into(), settings)],
                registries: owners.iter().map(|o| maven_url(r, o)).collect(),
            }
        }
        Ecosystem::Gradle => {
            // `credentials(PasswordCredentials)` of a repository named `GitHubPackages` reads these, and GitHub's
            // own Gradle examples read `gpr.user` and `gpr.key`.
            let mut env = Vec::new();
            for (user, key) in [("GitHubPackagesUsername", "GitHubPackagesPassword"), ("gpr.user", "gpr.key")] {
                env.push((format!("ORG_GRADLE_PROJECT_{user}"), r.username.clone()));
                env.push((format!("ORG_GRADLE_PROJECT_{key}"), r.token.expose().to_string()));
            }
            Rendered { files: Vec::new(), env, registries: owners.iter().map(|o| maven_url(r, o)).collect() }
        }
        Ecosystem::Nuget => {
            let mut env = vec![("OCTOPUSH_NUGET_CONFIG".into(), exported("nuget/NuGet.Config"))];
            for (name, _) in nuget_sources(r, &owners) {
                env.push((
                    format!("NuGetPackageSourceCredentials_{name}"),
                    format!("Username={};Password={}", r.username, r.token.expose()),
                ));
            }
            Rendered {
                files: vec![("nuget/NuGet.Config".into(), nuget_config(r, &owners))],
                env,
                registries: nuget_sources(r, &owners).into_iter().map(|(_, url)| url).collect(),
            }
        }
        Ecosystem::Rubygems => {
            let sources: Vec<String> = owners.iter().map(|o| format!("{}{o}/", r.urls.rubygems)).collect();
            let mut gemrc = String::from(
                "# GitHub Packages for RubyGems, written by octopush (command: install)\n---\n:sources:\n",
            );
            for s in &sources {
                gemrc.push_str(&format!("- \"{}\"\n", with_credentials(s, &r.username, r.token.expose())));
            }
            gemrc.push_str("- \"https://rubygems.org/\"\n");
            let pair = format!("{}:{}", r.username, r.token.expose());
            let mut bundle = String::from("---\n");
            let mut keys: Vec<String> = sources.iter().map(|s| bundler_key(s)).collect();
            if let Some(host) = url::Url::parse(&r.urls.rubygems).ok().and_then(|u| u.host_str().map(str::to_string)) {
                keys.push(bundler_key(&host));
            }
            for key in keys {
                bundle.push_str(&format!("{key}: \"{}\"\n", yaml_escape(&pair)));
            }
            Rendered {
                files: vec![("rubygems/gemrc".into(), gemrc), ("rubygems/bundle/config".into(), bundle)],
                env: vec![
                    ("GEMRC".into(), exported("rubygems/gemrc")),
                    ("BUNDLE_USER_CONFIG".into(), exported("rubygems/bundle/config")),
                ],
                registries: sources,
            }
        }
        Ecosystem::Docker => {
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", r.username, r.token.expose()).as_bytes());
            let mut config: serde_json::Value = match &r.docker_config {
                Some(bytes) => serde_json::from_slice(bytes).map_err(|e| ClientError::DockerConfig(e.to_string()))?,
                None => serde_json::json!({}),
            };
            if !config.is_object() {
                return Err(ClientError::DockerConfig("its top level is not an object".into()));
            }
            config["auths"] = match config.get("auths") {
                Some(a) if a.is_object() => a.clone(),
                _ => serde_json::json!({}),
            };
            config["auths"][&r.urls.containers] = serde_json::json!({ "auth": auth });
            // A credential helper for the host would win over `auths`: ours is the one to use.
            if let Some(helpers) = config.get_mut("credHelpers").and_then(|h| h.as_object_mut()) {
                helpers.remove(&r.urls.containers);
            }
            let text = serde_json::to_string_pretty(&config).unwrap_or_default() + "\n";
            Rendered {
                files: vec![("docker/config.json".into(), text)],
                env: vec![("DOCKER_CONFIG".into(), exported("docker"))],
                registries: vec![r.urls.containers.clone()],
            }
        }
    })
}

/// npm's key for a registry's token: the URL without its scheme (`//npm.pkg.github.com/`).
pub(super) fn npm_auth_key(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    format!("//{rest}")
}

/// GitHub's Maven repository of an owner: every repository of it (`OWNER/*`).
fn maven_url(r: &ClientRequest, owner: &str) -> String {
    format!("{}{owner}/*", r.urls.maven)
}

/// Repository (and NuGet source) ids: `github` for the first owner (the id GitHub's own examples use, so a
/// `pom.xml` written from them matches), `github-OWNER` for the others.
fn repository_ids(owners: &[String]) -> Vec<(String, &String)> {
    owners.iter().enumerate().map(|(i, o)| (if i == 0 { "github".into() } else { format!("github-{o}") }, o)).collect()
}

/// Server ids with credentials: every repository id, and `github-OWNER` for the first owner too.
fn server_ids(owners: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = repository_ids(owners).into_iter().map(|(id, _)| id).collect();
    if let Some(first) = owners.first() {
        ids.push(format!("github-{first}"));
    }
    ids
}

fn maven_settings(r: &ClientRequest, owners: &[String]) -> String {
    let mut repos = String::new();
    let mut servers = String::new();
    for (id, owner) in repository_ids(owners) {
        repos.push_str(&format!(
            "        <repository>\n          <id>{id}</id>\n          <url>{}</url>\n          \
             <releases><enabled>true</enabled></releases>\n          \
             <snapshots><enabled>true</enabled></snapshots>\n        </repository>\n",
            xml_escape(&maven_url(r, owner))
        ));
    }
    for id in server_ids(owners) {
        servers.push_str(&format!(
            "    <server>\n      <id>{id}</id>\n      <username>{}</username>\n      <password>{}</password>\n    \
             </server>\n",
            xml_escape(&r.username),
            xml_escape(r.token.expose())
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!-- GitHub Packages for Maven, written by octopush (command: install) -->\n\
         <settings xmlns=\"http://maven.apache.org/SETTINGS/1.0.0\"\n          \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n          \
         xsi:schemaLocation=\"http://maven.apache.org/SETTINGS/1.0.0 https://maven.apache.org/xsd/settings-1.0.0.xsd\">\n  \
         <activeProfiles>\n    <activeProfile>github</activeProfile>\n  </activeProfiles>\n  \
         <profiles>\n    <profile>\n      <id>github</id>\n      <repositories>\n{repos}      </repositories>\n    \
         </profile>\n  </profiles>\n  <servers>\n{servers}  </servers>\n</settings>\n"
    )
}

/// NuGet sources, named as [`repository_ids`] names Maven's.
fn nuget_sources(r: &ClientRequest, owners: &[String]) -> Vec<(String, String)> {
    repository_ids(owners).into_iter().map(|(id, o)| (id, format!("{}{o}/index.json", r.urls.nuget))).collect()
}

fn nuget_config(r: &ClientRequest, owners: &[String]) -> String {
    let sources = nuget_sources(r, owners);
    let mut adds = String::new();
    let mut creds = String::new();
    for (name, url) in &sources {
        adds.push_str(&format!("    <add key=\"{name}\" value=\"{}\" />\n", xml_escape(url)));
        creds.push_str(&format!(
            "    <{name}>\n      <add key=\"Username\" value=\"{}\" />\n      \
             <add key=\"ClearTextPassword\" value=\"{}\" />\n    </{name}>\n",
            xml_escape(&r.username),
            xml_escape(r.token.expose())
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <!-- GitHub Packages for NuGet, written by octopush (command: install) -->\n\
         <configuration>\n  <packageSources>\n{adds}  </packageSources>\n  \
         <packageSourceCredentials>\n{creds}  </packageSourceCredentials>\n</configuration>\n"
    )
}

/// `https://USER:TOKEN@host/path/`, both parts percent-encoded.
fn with_credentials(url: &str, user: &str, token: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username(user);
            let _ = u.set_password(Some(token));
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// Bundler's settings key for a host or URL (`bundle config set HOST USER:TOKEN` stores this).
pub(super) fn bundler_key(host_or_url: &str) -> String {
    format!("BUNDLE_{}", host_or_url.replace('.', "__").replace('-', "___").to_ascii_uppercase())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn yaml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

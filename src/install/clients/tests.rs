//! Each client's files and variables, checked as the client would read them (XML, JSON, YAML, ini lines).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;

use super::render::{bundler_key, npm_auth_key};
use super::*;

const TOKEN: &str = "ghs_Cl1ent-T0ken&<x>";

fn request(dir: &Path, ecosystems: &[Ecosystem]) -> ClientRequest {
    ClientRequest {
        ecosystems: ecosystems.to_vec(),
        owners: vec!["Octo-Org".into(), "other".into()],
        username: "octocat".into(),
        token: Secret::new(TOKEN),
        urls: PackageUrls::for_server("https://github.com", true).unwrap(),
        dir: dir.join("written"),
        exported_dir: PathBuf::from("/home/runner/work/_temp/_github_home/octopush"),
        docker_config: None,
        maven_args: None,
    }
}

fn read(dir: &Path, rel: &str) -> String {
    let path = dir.join("written").join(rel);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{rel} is readable by its owner only");
    std::fs::read_to_string(path).unwrap()
}

fn env(setup: &ClientSetup) -> BTreeMap<String, String> {
    setup.env.iter().cloned().collect()
}

#[test]
fn npm_scopes_every_owner_to_the_registry_with_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let setup = set_up(&request(dir.path(), &[Ecosystem::Npm])).unwrap();
    let npmrc = read(dir.path(), "npm/.npmrc");
    assert!(npmrc.contains("@octo-org:registry=https://npm.pkg.github.com/\n"), "{npmrc}");
    assert!(npmrc.contains("@other:registry=https://npm.pkg.github.com/\n"), "{npmrc}");
    assert!(npmrc.contains(&format!("//npm.pkg.github.com/:_authToken={TOKEN}\n")), "{npmrc}");
    assert_eq!(
        env(&setup)["NPM_CONFIG_USERCONFIG"],
        "/home/runner/work/_temp/_github_home/octopush/npm/.npmrc",
        "the path a later step on the host sees"
    );
    assert_eq!(
        setup.configured[0].files,
        vec![PathBuf::from("/home/runner/work/_temp/_github_home/octopush/npm/.npmrc")]
    );
    assert_eq!(npm_auth_key("http://127.0.0.1:4873/"), "//127.0.0.1:4873/");
}

#[test]
fn maven_settings_have_a_server_per_repository_id_and_an_active_profile() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = request(dir.path(), &[Ecosystem::Maven]);
    r.maven_args = Some("-B -ntp".into());
    let setup = set_up(&r).unwrap();
    let xml = read(dir.path(), "maven/settings.xml");
    assert!(xml.contains("<activeProfile>github</activeProfile>"), "{xml}");
    assert!(xml.contains("<id>github</id>\n          <url>https://maven.pkg.github.com/octo-org/*</url>"), "{xml}");
    assert!(xml.contains("<id>github-other</id>\n          <url>https://maven.pkg.github.com/other/*</url>"), "{xml}");
    for id in ["github", "github-octo-org", "github-other"] {
        let server = format!(
            "<id>{id}</id>\n      <username>octocat</username>\n      <password>ghs_Cl1ent-T0ken&amp;&lt;x&gt;</password>"
        );
        assert!(xml.contains(&server), "server {id} in {xml}");
    }
    assert!(!xml.contains(TOKEN), "the token is XML-escaped");
    let e = env(&setup);
    let settings = "/home/runner/work/_temp/_github_home/octopush/maven/settings.xml";
    assert_eq!(e["MAVEN_ARGS"], format!("-s {settings} -B -ntp"), "the step's own MAVEN_ARGS kept");
    assert_eq!(e["OCTOPUSH_MAVEN_SETTINGS"], settings);
}

#[test]
fn gradle_gets_the_properties_password_credentials_read() {
    let dir = tempfile::tempdir().unwrap();
    let setup = set_up(&request(dir.path(), &[Ecosystem::Gradle])).unwrap();
    let e = env(&setup);
    assert_eq!(e["ORG_GRADLE_PROJECT_GitHubPackagesUsername"], "octocat");
    assert_eq!(e["ORG_GRADLE_PROJECT_GitHubPackagesPassword"], TOKEN);
    assert_eq!(e["ORG_GRADLE_PROJECT_gpr.user"], "octocat");
    assert_eq!(e["ORG_GRADLE_PROJECT_gpr.key"], TOKEN);
    assert!(setup.configured[0].files.is_empty());
    assert_eq!(
        setup.configured[0].registries,
        vec!["https://maven.pkg.github.com/octo-org/*", "https://maven.pkg.github.com/other/*"]
    );
}

#[test]
fn nuget_gets_a_source_with_credentials_per_owner() {
    let dir = tempfile::tempdir().unwrap();
    let setup = set_up(&request(dir.path(), &[Ecosystem::Nuget])).unwrap();
    let xml = read(dir.path(), "nuget/NuGet.Config");
    assert!(xml.contains(r#"<add key="github" value="https://nuget.pkg.github.com/octo-org/index.json" />"#), "{xml}");
    assert!(xml.contains(r#"<add key="github-other" value="https://nuget.pkg.github.com/other/index.json" />"#));
    assert!(xml.contains("<github>\n      <add key=\"Username\" value=\"octocat\" />\n      <add key=\"ClearTextPassword\" value=\"ghs_Cl1ent-T0ken&amp;&lt;x&gt;\" />"), "{xml}");
    let e = env(&setup);
    assert_eq!(e["NuGetPackageSourceCredentials_github"], format!("Username=octocat;Password={TOKEN}"));
    assert!(e.contains_key("NuGetPackageSourceCredentials_github-other"));
    assert!(e["OCTOPUSH_NUGET_CONFIG"].ends_with("/nuget/NuGet.Config"));
}

#[test]
fn rubygems_gets_gem_sources_and_bundler_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let setup = set_up(&request(dir.path(), &[Ecosystem::Rubygems])).unwrap();
    let gemrc = read(dir.path(), "rubygems/gemrc");
    assert!(
        gemrc.contains("- \"https://octocat:ghs_Cl1ent-T0ken&%3Cx%3E@rubygems.pkg.github.com/octo-org/\"\n"),
        "{gemrc}"
    );
    assert!(gemrc.contains("- \"https://rubygems.org/\"\n"), "public gems still resolve: {gemrc}");
    let bundle = read(dir.path(), "rubygems/bundle/config");
    assert!(bundle.contains(&format!("BUNDLE_RUBYGEMS__PKG__GITHUB__COM: \"octocat:{TOKEN}\"")), "{bundle}");
    assert!(bundle.contains("BUNDLE_HTTPS://RUBYGEMS__PKG__GITHUB__COM/OTHER/: "), "{bundle}");
    let e = env(&setup);
    assert!(e["GEMRC"].ends_with("/rubygems/gemrc") && e["BUNDLE_USER_CONFIG"].ends_with("/rubygems/bundle/config"));
    assert_eq!(bundler_key("my-host.example"), "BUNDLE_MY___HOST__EXAMPLE");
}

#[test]
fn docker_gets_an_auth_for_the_container_registry_and_keeps_other_logins() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = request(dir.path(), &[Ecosystem::Docker]);
    r.docker_config = Some(br#"{"auths":{"quay.io":{"auth":"eDp5"}},"credHelpers":{"ghcr.io":"desktop"}}"#.to_vec());
    let setup = set_up(&r).unwrap();
    let config: serde_json::Value = serde_json::from_str(&read(dir.path(), "docker/config.json")).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("octocat:{TOKEN}"));
    assert_eq!(config["auths"]["ghcr.io"]["auth"], auth.as_str());
    assert_eq!(config["auths"]["quay.io"]["auth"], "eDp5", "other logins kept");
    assert!(config["credHelpers"].get("ghcr.io").is_none(), "a helper for ghcr.io would win over the token");
    assert_eq!(env(&setup)["DOCKER_CONFIG"], "/home/runner/work/_temp/_github_home/octopush/docker");
    r.docker_config = Some(b"[1]".to_vec());
    assert!(matches!(set_up(&r), Err(ClientError::DockerConfig(_))));
}

#[test]
fn ecosystems_parse_by_name() {
    assert_eq!(Ecosystem::parse(" NPM "), Some(Ecosystem::Npm));
    assert_eq!(Ecosystem::parse("rubygems"), Some(Ecosystem::Rubygems));
    assert_eq!(Ecosystem::parse("pip"), None);
}

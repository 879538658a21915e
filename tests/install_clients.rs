//! `command: install` with `registries`: package clients set up with the token, then used by a later step that
//! only gets what the step exported through `GITHUB_ENV`, against real servers: npm against verdaccio (token
//! auth, also with the step run in a container laid out as the runner lays out a container action), Maven
//! against a repository behind Basic auth (`mvn dependency:get` of an artifact `mvn deploy` put there), gem
//! against a gem source behind Basic auth. No literal token may be in the workspace, the log, the outputs or the
//! summary.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::act::build_action_image;
use common::packages_servers::{
    PackageRepo, Verdaccio, files_containing, later_step_env, maven_global_settings, run_step,
};
use common::{Dockerd, RunResult, Workflow, run_ok, tool};

/// Panics if `secret` is anywhere a user or a later upload could see it: the log (but a `::add-mask::` line),
/// the outputs, the summary, or a file in the workspace. (Files under `RUNNER_TEMP` hold it, readable by the
/// runner's user only, as a client's own login would.)
fn assert_token_kept_out(wf: &Workflow, r: &RunResult, secret: &str) {
    for (i, line) in r.stdout.lines().chain(r.stderr.lines()).enumerate() {
        assert!(!line.contains(secret) || line.starts_with("::add-mask::"), "token on log line {i}: {line}");
    }
    assert!(r.stdout.contains(&format!("::add-mask::{secret}")), "the token is masked first:\n{}", r.stdout);
    for (k, v) in &r.outputs {
        assert!(!v.contains(secret), "token in output {k}");
    }
    assert!(!r.summary.contains(secret), "token in the summary");
    let found = files_containing(&wf.workspace(), secret);
    assert!(found.is_empty(), "the token was written into the workspace: {found:?}");
}

#[test]
fn npm_install_of_a_scoped_package_works_in_a_later_step_with_the_token() {
    let verdaccio = Verdaccio::start();
    let token = verdaccio.token("octocat", "Npm-Pa55word-31c9");
    verdaccio.publish("@octo-org/greeting", "1.2.3", "hello from verdaccio", &token);
    let wf = Workflow::new()
        .input("command", "install")
        .input("registries", "npm")
        .input("password", &token)
        .input("npm_registry", &verdaccio.url())
        .file("package.json", r#"{"name": "app", "version": "0.0.0", "private": true}"#);
    let r = wf.run();
    r.assert_success();
    let npmrc = &r.exported_env["NPM_CONFIG_USERCONFIG"];
    assert!(Path::new(npmrc).starts_with(wf.runner_temp()), "{npmrc} is under RUNNER_TEMP");
    assert!(r.exported_env.values().all(|v| !v.contains(&token)), "npm's token stays in its file");
    let env = later_step_env(wf.environment(), &r.exported_env);
    let out = run_step("npm", &["install", "--no-audit", "--no-fund", "@octo-org/greeting"], &env, &wf.workspace());
    assert!(
        out.status.success(),
        "npm install failed:\n{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        verdaccio.log()
    );
    let node = run_step("node", &["-e", "console.log(require('@octo-org/greeting'))"], &env, &wf.workspace());
    assert_eq!(String::from_utf8_lossy(&node.stdout).trim(), "hello from verdaccio");
    assert_token_kept_out(&wf, &r, &token);
    let clients: serde_json::Value = serde_json::from_str(r.output("clients")).unwrap();
    assert_eq!(clients["npm"]["files"][0], npmrc.as_str());
    assert_eq!(clients["npm"]["variables"][0], "NPM_CONFIG_USERCONFIG");
    assert!(r.summary.contains("NPM_CONFIG_USERCONFIG") && r.summary.contains("@octo-org"), "{}", r.summary);
    // Without the token the package is refused: the later step's success is the configuration's doing.
    let bare = later_step_env(wf.environment(), &BTreeMap::new());
    std::fs::remove_dir_all(wf.workspace().join("node_modules")).unwrap();
    let out = run_step("npm", &["install", "--no-audit", "--no-fund", "@octo-org/greeting"], &bare, &wf.workspace());
    assert!(!out.status.success(), "npm installed the package without octopush's configuration");
}

#[test]
fn maven_dependency_get_of_a_deployed_artifact_works_in_a_later_step() {
    let (user, pass) = ("octocat", "Mvn-T0ken-8a2f");
    let repo = PackageRepo::start(user, pass, true);
    let work = tempfile::tempdir().unwrap();
    let global = maven_global_settings(work.path());
    // Deploy com.example:hello:1.0.0 as a publishing workflow would, with `mvn deploy:deploy-file`.
    let jar = work.path().join("hello.jar");
    run_ok(Command::new(tool("python3")).args([
        "-c",
        "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], 'w'); z.writestr('hello.txt', 'hello from maven'); z.close()",
        jar.to_str().unwrap(),
    ]));
    let deploy = work.path().join("deploy-settings.xml");
    std::fs::write(&deploy, format!("<settings><servers><server><id>github</id><username>{user}</username><password>{pass}</password></server></servers></settings>")).unwrap();
    run_ok(Command::new(tool("mvn")).args(["-B", "-q", "-gs"]).arg(&global).arg("-s").arg(&deploy).args([
        "org.apache.maven.plugins:maven-deploy-plugin:3.0.0:deploy-file",
        &format!("-Dfile={}", jar.display()),
        "-DgroupId=com.example",
        "-DartifactId=hello",
        "-Dversion=1.0.0",
        "-Dpackaging=jar",
        "-DrepositoryId=github",
        &format!("-Durl={}octo-org/app", repo.url()),
    ]));
    let wf = Workflow::new()
        .input("command", "install")
        .input("registries", "maven")
        .input("username", user)
        .input("password", pass)
        .input("maven_registry", &repo.url());
    let r = wf.run();
    r.assert_success();
    let env = later_step_env(wf.environment(), &r.exported_env);
    // Debian's Maven is 3.8, which predates MAVEN_ARGS (read by Maven 3.9's launcher, as on hosted runners):
    // the step passes it on as that launcher does.
    let script = format!(
        "mvn -B $MAVEN_ARGS -gs {} org.apache.maven.plugins:maven-dependency-plugin:3.5.0:get \
         -Dartifact=com.example:hello:1.0.0",
        global.display()
    );
    let out = run_step("sh", &["-c", &script], &env, &wf.workspace());
    assert!(out.status.success(), "mvn dependency:get failed:\n{}", String::from_utf8_lossy(&out.stdout));
    assert!(work.path().join("m2/com/example/hello/1.0.0/hello-1.0.0.jar").is_file());
    let gets: Vec<String> = repo
        .requests()
        .into_iter()
        .filter(|l| l.starts_with("GET /octo-org/*/com/example/hello/1.0.0/hello-1.0.0.jar "))
        .collect();
    assert!(gets.iter().any(|l| l.ends_with("200 auth=yes")), "the jar came with the credentials: {gets:?}");
    assert_token_kept_out(&wf, &r, pass);
}

#[test]
fn gem_install_from_a_source_with_credentials_works_in_a_later_step() {
    let (user, pass) = ("octocat", "Gem-T0ken-51be");
    let repo = PackageRepo::start(user, pass, false);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join("lib")).unwrap();
    std::fs::write(
        src.join("hello_octo.gemspec"),
        "Gem::Specification.new do |s|\n  s.name = 'hello_octo'\n  s.version = '1.0.0'\n  s.summary = 'octopush test gem'\n  \
         s.authors = ['octopush']\n  s.files = ['lib/hello_octo.rb']\n  s.license = 'MIT'\nend\n",
    )
    .unwrap();
    std::fs::write(src.join("lib/hello_octo.rb"), "module HelloOcto\n  MARK = 'hello from the gem source'\nend\n")
        .unwrap();
    let gem_env = |cmd: &mut Command| {
        cmd.env("HOME", work.path()).env("GEM_HOME", work.path().join("build-gems"));
    };
    let mut build = Command::new(tool("gem"));
    gem_env(build.args(["build", "hello_octo.gemspec"]).current_dir(&src));
    run_ok(&mut build);
    let owner_dir = repo.root().join("octo-org");
    std::fs::create_dir_all(owner_dir.join("gems")).unwrap();
    std::fs::copy(src.join("hello_octo-1.0.0.gem"), owner_dir.join("gems/hello_octo-1.0.0.gem")).unwrap();
    let mut index = Command::new(tool("gem"));
    gem_env(index.args(["generate_index", "--directory"]).arg(&owner_dir));
    run_ok(&mut index);

    let wf = Workflow::new()
        .input("command", "install")
        .input("registries", "rubygems")
        .input("username", user)
        .input("password", pass)
        .input("rubygems_registry", &repo.url());
    let r = wf.run();
    r.assert_success();
    let mut env = later_step_env(wf.environment(), &r.exported_env);
    env.insert("GEM_HOME".into(), wf.runner_temp().join("gems").display().to_string());
    let out = run_step("gem", &["install", "--no-document", "hello_octo"], &env, &wf.workspace());
    assert!(
        out.status.success(),
        "gem install failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    env.insert("GEM_PATH".into(), env["GEM_HOME"].clone());
    let ruby = run_step("ruby", &["-e", "require 'hello_octo'; puts HelloOcto::MARK"], &env, &wf.workspace());
    assert_eq!(String::from_utf8_lossy(&ruby.stdout).trim(), "hello from the gem source");
    assert!(
        repo.requests().iter().any(|l| l == "GET /octo-org/gems/hello_octo-1.0.0.gem 200 auth=yes"),
        "{:?}",
        repo.requests()
    );
    assert_token_kept_out(&wf, &r, pass);
}

#[test]
fn every_client_is_configured_for_each_owner_from_the_server_url() {
    let token = "ghs_EveryClient-T0ken-77c1";
    let wf = Workflow::new()
        .input("command", "install")
        .input("registries", "npm, maven, gradle, nuget, rubygems, docker")
        .input("owners", "Octo-Org\nother-org")
        .input("password", token)
        .env("GITHUB_SERVER_URL", "https://ghe.example.com");
    let r = wf.run();
    r.assert_success();
    let clients: serde_json::Value = serde_json::from_str(r.output("clients")).unwrap();
    for (eco, file, needle) in [
        ("npm", "npm/.npmrc", "@other-org:registry=https://npm.ghe.example.com/"),
        ("maven", "maven/settings.xml", "<url>https://maven.ghe.example.com/other-org/*</url>"),
        ("nuget", "nuget/NuGet.Config", "https://nuget.ghe.example.com/octo-org/index.json"),
        ("rubygems", "rubygems/gemrc", "@rubygems.ghe.example.com/other-org/"),
        ("docker", "docker/config.json", "containers.ghe.example.com"),
    ] {
        let path = wf.runner_temp().join("octopush").join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(text.contains(needle), "{eco}: {needle} not in {text}");
        assert!(clients[eco]["files"].as_array().unwrap().iter().any(|f| f == path.to_str().unwrap()), "{clients}");
    }
    assert_eq!(r.exported_env["DOCKER_CONFIG"], wf.runner_temp().join("octopush/docker").display().to_string());
    assert_eq!(r.exported_env["ORG_GRADLE_PROJECT_GitHubPackagesPassword"], token, "Gradle reads it from there only");
    assert!(
        clients["gradle"]["variables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "ORG_GRADLE_PROJECT_GitHubPackagesUsername")
    );
    assert_token_kept_out(&wf, &r, token);
}

/// The runner runs a container action with only `RUNNER_TEMP/_github_home` (as `/github/home`, the `HOME`), the
/// workspace and the file-command folder mounted; a later `run:` step runs on the host, where `RUNNER_TEMP` is
/// the host's. The step here runs in dockerd exactly so, and npm on the host then installs with what it left.
#[test]
fn in_a_container_action_the_configuration_lands_where_the_host_step_reads_it() {
    let verdaccio = Verdaccio::start();
    let token = verdaccio.token("octocat", "Npm-C0ntainer-92d4");
    verdaccio.publish("@octo-org/greeting", "2.0.0", "hello from the container run", &token);
    let dockerd = Dockerd::start();
    let image = "octopush-install/action:test";
    build_action_image(&dockerd, Path::new(env!("CARGO_BIN_EXE_octopush")), image);
    let wf = Workflow::new().file("package.json", r#"{"name": "app", "version": "0.0.0", "private": true}"#);
    let temp = wf.runner_temp();
    let github_home = temp.join("_github_home");
    std::fs::create_dir_all(&github_home).unwrap();
    let files = wf.files_dir();
    let mount = |host: &Path, inside: &str| format!("{}:{inside}", host.display());
    let out = dockerd.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-v",
        &mount(&github_home, "/github/home"),
        "-v",
        &mount(&wf.workspace(), "/github/workspace"),
        "-v",
        &mount(&files, "/github/file_commands"),
        "-e",
        "HOME=/github/home",
        "-e",
        &format!("RUNNER_TEMP={}", temp.display()),
        "-e",
        "GITHUB_WORKSPACE=/github/workspace",
        "-e",
        "GITHUB_ENV=/github/file_commands/env",
        "-e",
        "GITHUB_OUTPUT=/github/file_commands/output",
        "-e",
        "GITHUB_ACTIONS=true",
        "-e",
        "GITHUB_REPOSITORY_OWNER=Octo-Org",
        "-e",
        "GITHUB_ACTOR=octocat",
        "-e",
        "INPUT_COMMAND=install",
        "-e",
        "INPUT_REGISTRIES=npm",
        "-e",
        &format!("INPUT_PASSWORD={token}"),
        "-e",
        &format!("INPUT_NPM_REGISTRY={}", verdaccio.url()),
        image,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "the action container failed:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let exported = common::workflow::parse_file_command(&std::fs::read_to_string(files.join("env")).unwrap());
    let npmrc = &exported["NPM_CONFIG_USERCONFIG"];
    assert_eq!(Path::new(npmrc), temp.join("_github_home/.octopush/npm/.npmrc"), "the host's path of the file");
    let env = later_step_env(wf.environment(), &exported);
    let out = run_step("npm", &["install", "--no-audit", "--no-fund", "@octo-org/greeting"], &env, &wf.workspace());
    assert!(out.status.success(), "npm install on the host failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let node = run_step("node", &["-e", "console.log(require('@octo-org/greeting'))"], &env, &wf.workspace());
    assert_eq!(String::from_utf8_lossy(&node.stdout).trim(), "hello from the container run");
    assert!(files_containing(&wf.workspace(), &token).is_empty(), "no token in the workspace");
    for line in stdout.lines() {
        assert!(!line.contains(&token) || line.starts_with("::add-mask::"), "token in the log: {line}");
    }
}

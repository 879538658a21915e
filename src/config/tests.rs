use super::*;

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn parse(raw: &[(&'static str, &str)], vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::parse(&RawInputs::from_pairs(raw), &env(vars), None)
}

#[test]
fn defaults_publish_the_workflow_repository_to_ghcr_lowercased() {
    let c =
        parse(&[], &[("GITHUB_REPOSITORY", "Octo-Org/App"), ("GITHUB_ACTOR", "octocat"), ("GITHUB_TOKEN", "t0ken")])
            .unwrap();
    assert_eq!(c.command, CommandKind::Publish);
    assert_eq!(c.publish.targets[0].to_string(), "ghcr.io/octo-org/app");
    assert_eq!(c.meta.images, vec!["ghcr.io/octo-org/app"]);
    assert!(c.publish.push);
    let creds = &c.publish.credentials["ghcr.io"];
    assert_eq!((creds.username.as_str(), creds.password.expose()), ("octocat", "t0ken"));
}

#[test]
fn errors_name_the_input_and_the_fix() {
    let e = parse(&[("repository", "a b")], &[]).unwrap_err().to_string();
    assert!(e.starts_with("input `repository`:"), "{e}");
    let e = parse(&[("registry", "docker.pkg.github.com"), ("repository", "octo/app")], &[]).unwrap_err().to_string();
    assert!(e.contains("OWNER/REPO/IMAGE"), "{e}");
    let e = parse(&[("repository", "a/b"), ("build_args", "NOVALUE")], &[]).unwrap_err().to_string();
    assert!(e.contains("`build_args`") && e.contains("NAME=value"), "{e}");
    // Issue 13, finding 7: names no `$NAME` could refer to were accepted.
    for (args, name) in [("1BAD=x", "`1BAD`"), ("A B=x", "`A B`"), ("OK=1\nA-B=2", "`A-B`"), ("É=1", "`É`")] {
        let e = parse(&[("repository", "a/b"), ("build_args", args)], &[]).unwrap_err().to_string();
        assert!(e.starts_with("input `build_args`:") && e.contains(name) && e.contains("not starting with a digit"));
    }
    let c = parse(&[("repository", "a/b"), ("build_args", "_A1=x,b_2=y=z")], &[]).unwrap();
    assert_eq!(c.publish.build_args.get("b_2").map(String::as_str), Some("y=z"));
    let e = parse(&[("repository", "a/b"), ("platforms", "linux")], &[]).unwrap_err().to_string();
    assert!(e.contains("os/arch"), "{e}");
    let e = parse(&[("repository", "a/b"), ("output", "tar:x")], &[]).unwrap_err().to_string();
    assert!(e.contains("oci:DIR"), "{e}");
    let e = parse(&[("command", "deploy"), ("repository", "a/b")], &[]).unwrap_err().to_string();
    assert!(e.contains("`publish`, `meta`, `merge`, `prune`, `restore` or `install`"), "{e}");
    let e = parse(&[], &[]).unwrap_err().to_string();
    assert!(e.contains("set `repository`"), "{e}");
    let e = parse(&[("repository", "a/b")], &[("SOURCE_DATE_EPOCH", "yesterday")]).unwrap_err().to_string();
    assert!(e.contains("SOURCE_DATE_EPOCH"), "{e}");
    let e = parse(&[("repository", "a/b"), ("password", "p")], &[]).unwrap_err().to_string();
    assert!(e.contains("`username`"), "{e}");
}

#[test]
fn default_credentials_go_only_to_github_and_the_registry_host() {
    let vars = [("GITHUB_ACTOR", "octocat"), ("GITHUB_TOKEN", "t0ken")];
    let c = parse(
        &[("images", "ghcr.io/o/a\nquay.io/o/a\n127.0.0.1:5000/o/a"), ("registry_auth", "quay.io=robot:qu4y-p4ss")],
        &vars,
    )
    .unwrap();
    let hosts: Vec<&str> = c.publish.credentials.keys().map(String::as_str).collect();
    assert_eq!(hosts, vec!["ghcr.io", "quay.io"], "no workflow token for 127.0.0.1:5000");
    assert_eq!(c.publish.credentials["quay.io"].username, "robot");
    assert_eq!(c.publish.credentials["quay.io"].password.expose(), "qu4y-p4ss");
    // Where each came from is what a rejection tells the user to check.
    assert_eq!(c.publish.credentials["quay.io"].source, "the `registry_auth` line for quay.io");
    assert_eq!(c.publish.credentials["ghcr.io"].source, "the `username` and `password` inputs");
    let c = parse(&[("registry", "127.0.0.1:5000"), ("repository", "o/a")], &vars).unwrap();
    assert_eq!(c.publish.credentials["127.0.0.1:5000"].username, "octocat", "the `registry` host gets them");
    let e = parse(&[("repository", "o/a"), ("registry_auth", "quay.io=robot-without-password")], &vars).unwrap_err();
    assert!(e.to_string().contains("`quay.io` is not `HOST=USERNAME:PASSWORD`"), "{e}");
    assert!(!e.to_string().contains("robot-without-password"));
}

#[test]
fn images_lines_split_into_registries_and_honour_enable() {
    let c = parse(
        &[(
            "images",
            "ghcr.io/Octo/App\nname=127.0.0.1:5000/x/y,enable=true\nname=docker.io/z/w,enable=false\nbusybox",
        )],
        &[],
    )
    .unwrap();
    let t: Vec<String> = c.publish.targets.iter().map(ToString::to_string).collect();
    assert_eq!(t, vec!["ghcr.io/octo/app", "127.0.0.1:5000/x/y", "docker.io/library/busybox"]);
}

#[test]
fn output_takes_a_docker_archive_for_one_platform_only() {
    let ws = [("GITHUB_WORKSPACE", "/ws")];
    let c = parse(&[("repository", "a/b"), ("output", "docker-archive:out/image.tar")], &ws).unwrap();
    assert_eq!(c.publish.docker_archive, Some(PathBuf::from("/ws/out/image.tar")));
    assert_eq!(c.publish.output, None);
    let c = parse(&[("repository", "a/b"), ("output", "docker-archive:/abs.tar"), ("platforms", "linux/arm64")], &ws)
        .unwrap();
    assert_eq!(c.publish.docker_archive, Some(PathBuf::from("/abs.tar")));
    let e = parse(
        &[("repository", "a/b"), ("output", "docker-archive:x.tar"), ("platforms", "linux/amd64,linux/arm64")],
        &ws,
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("input `output`:") && e.contains("`platforms`") && e.contains("oci:DIR"), "{e}");
    let e = parse(&[("repository", "a/b"), ("output", "docker-archive:")], &ws).unwrap_err().to_string();
    assert!(e.contains("docker-archive:FILE"), "{e}");
}

#[test]
fn compression_is_gzip_or_zstd() {
    assert_eq!(parse(&[("repository", "a/b")], &[]).unwrap().publish.compression, Compression::Gzip);
    let zstd = parse(&[("repository", "a/b"), ("compression", " ZSTD ")], &[]).unwrap();
    assert_eq!(zstd.publish.compression, Compression::Zstd);
    let e = parse(&[("repository", "a/b"), ("compression", "xz")], &[]).unwrap_err().to_string();
    assert!(e.contains("`compression`") && e.contains("`xz`") && e.contains("gzip or zstd"), "{e}");
}

#[test]
fn insecure_registries_are_hosts_one_per_line() {
    let c =
        parse(&[("repository", "a/b"), ("insecure_registries", "Registry.LAN:5000\nhttp://10.0.0.7/\n")], &[]).unwrap();
    assert_eq!(c.publish.insecure_registries, vec!["registry.lan:5000", "10.0.0.7"]);
    assert!(parse(&[("repository", "a/b")], &[]).unwrap().publish.insecure_registries.is_empty());
    let e = parse(&[("repository", "a/b"), ("insecure_registries", "registry.lan:port")], &[]).unwrap_err();
    let m = e.to_string();
    assert!(m.starts_with("input `insecure_registries`:") && m.contains("`registry.lan:port`"), "{m}");
    assert!(m.contains("host[:port]"), "{m}");
}

#[test]
fn check_reports_missing_dockerfile_and_context() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().to_str().unwrap();
    let e =
        parse(&[("repository", "a/b"), ("path", "nope")], &[("GITHUB_WORKSPACE", ws)]).unwrap().check().unwrap_err();
    assert!(e.to_string().contains("`path`"), "{e}");
    let e = parse(&[("repository", "a/b")], &[("GITHUB_WORKSPACE", ws)]).unwrap().check().unwrap_err();
    assert!(e.to_string().contains("no Dockerfile at"), "{e}");
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let c = parse(&[("repository", "a/b"), ("username", "u"), ("password", "p")], &[("GITHUB_WORKSPACE", ws)])
        .unwrap()
        .check()
        .unwrap();
    assert_eq!(c.publish.dockerfile, dir.path().join("Dockerfile"));
    let e =
        parse(&[("repository", "a/b"), ("push", "false")], &[("GITHUB_WORKSPACE", ws)]).unwrap().check().unwrap_err();
    assert!(e.to_string().contains("oci:DIR"), "{e}");
    let e =
        parse(&[("repository", "a/b"), ("username", "u")], &[("GITHUB_WORKSPACE", ws)]).unwrap().check().unwrap_err();
    assert!(e.to_string().contains("input `password`") && e.to_string().contains("packages: write"), "{e}");
}

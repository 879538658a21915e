//! `install`'s inputs, parsed and checked without I/O: `images` lines (`REFERENCE TARGET`), `registries`,
//! `owners`, `platform`, and the package registries' URLs from `GITHUB_SERVER_URL` or their inputs.

use std::path::{Path, PathBuf};

use octopush::builder::engine::Endpoint;
use octopush::image::{ImageName, ImageRef, Platform};
use octopush::install::clients::urls::{base_url, host};
use octopush::install::clients::{Ecosystem, PackageUrls};
use octopush::install::{ImageRequest, ImageTarget};
use octopush::secret::Secret;

use crate::actions::Env;
use crate::cli::RawInputs;
use crate::config::{ConfigError, bad};

/// What an install does, validated.
#[derive(Debug)]
pub struct InstallConfig {
    pub images: Vec<ImageRequest>,
    pub registries: Vec<Ecosystem>,
    pub owners: Vec<String>,
    pub urls: PackageUrls,
    /// The clients' user name and token (`username`, `password`, else the workflow's actor and token).
    pub username: String,
    pub token: Option<Secret>,
}

impl InstallConfig {
    pub fn parse(raw: &RawInputs, env: &Env, engine: Endpoint) -> Result<InstallConfig, ConfigError> {
        let (platform, platform_given) = match raw.get("platform").map(str::trim) {
            Some(p) => (
                Platform::parse(p).ok_or_else(|| {
                    bad("platform", format!("`{p}` is not a platform: use `os/arch[/variant]`, e.g. `linux/arm64`"))
                })?,
                true,
            ),
            None => (octopush::builder::platform_of(std::env::consts::OS, std::env::consts::ARCH), false),
        };
        let paths = Paths::of(env);
        let mut images = Vec::new();
        for line in raw.lines("images") {
            let request = image_line(&line, &paths, &engine, &platform, platform_given)?;
            let clash = images
                .iter()
                .any(|i: &ImageRequest| request.target.path().is_some() && i.target.path() == request.target.path());
            if clash {
                return Err(bad(
                    "images",
                    format!("two lines install into `{}`: give each its own", line_target(&line)),
                ));
            }
            images.push(request);
        }
        let mut registries = Vec::new();
        for name in raw.list("registries") {
            let eco = Ecosystem::parse(&name).ok_or_else(|| {
                bad(
                    "registries",
                    format!("`{name}` is not a package client octopush sets up: use npm, maven, gradle, nuget, rubygems or docker"),
                )
            })?;
            if !registries.contains(&eco) {
                registries.push(eco);
            }
        }
        if images.is_empty() && registries.is_empty() {
            return Err(bad(
                "images",
                "`command: install` needs `images` (`REFERENCE TARGET` lines) or `registries` (npm, maven, gradle, \
                 nuget, rubygems, docker), or both",
            ));
        }
        let mut owners: Vec<String> = raw.list("owners");
        if owners.is_empty() {
            owners.extend(env.non_empty("GITHUB_REPOSITORY_OWNER").map(|o| o.trim().to_string()));
        }
        if let Some(o) = owners.iter().find(|o| !crate::prune_cmd::is_login(o)) {
            return Err(bad(
                "owners",
                format!("`{o}` is not a GitHub user or organisation name (letters, digits, `-`)"),
            ));
        }
        if !registries.is_empty() && owners.is_empty() {
            return Err(bad(
                "owners",
                "no owner to set the package clients up for: set `owners` (outside a workflow \
                 GITHUB_REPOSITORY_OWNER is not set)",
            ));
        }
        let server = env.non_empty("GITHUB_SERVER_URL").unwrap_or("https://github.com");
        let isolation = raw.bool("subdomain_isolation").map_err(|m| bad("subdomain_isolation", m))?.unwrap_or(true);
        let mut urls =
            PackageUrls::for_server(server, isolation).map_err(|e| ConfigError::Environment(e.to_string()))?;
        for (input, slot) in [
            ("npm_registry", &mut urls.npm),
            ("maven_registry", &mut urls.maven),
            ("nuget_registry", &mut urls.nuget),
            ("rubygems_registry", &mut urls.rubygems),
        ] {
            if let Some(v) = raw.get(input) {
                *slot = base_url(v).map_err(|m| bad(input, m))?;
            }
        }
        if let Some(v) = raw.get("docker_registry") {
            urls.containers = host(v).map_err(|m| bad("docker_registry", m))?;
        }
        let token = raw.get("password").or_else(|| env.non_empty("GITHUB_TOKEN")).map(|t| Secret::new(t.trim()));
        if !registries.is_empty() && token.is_none() {
            return Err(bad(
                "password",
                "setting up package clients needs a token: pass `password: ${{ secrets.GITHUB_TOKEN }}` (the \
                 default in a workflow) and give the job `permissions: packages: read`",
            ));
        }
        let username = raw
            .get("username")
            .or_else(|| env.non_empty("GITHUB_ACTOR"))
            .map(|u| u.trim().to_string())
            .unwrap_or_else(|| "octopush".into());
        Ok(InstallConfig { images, registries, owners, urls, username, token })
    }

    /// The registries and repositories the images come from: publishing's credentials rules apply to them.
    pub fn image_names(&self) -> Vec<ImageName> {
        self.images.iter().map(|i| i.reference.name.clone()).collect()
    }

    /// Phase two: a `dir:` target must be new or an empty directory (checked before anything is pulled).
    pub fn check(&self) -> Result<(), ConfigError> {
        for i in &self.images {
            if let ImageTarget::Dir(path) = &i.target {
                if !octopush::install::is_new_or_empty_dir(path) {
                    return Err(bad(
                        "images",
                        format!(
                            "{} already exists and is not an empty directory: `dir:` installs into a new folder; \
                             remove it first or name another",
                            path.display()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How a target path is read: relative to the workspace, and, when the step runs as the runner runs a container
/// action, translated into the container. There the runner mounts the workspace at `/github/workspace` and
/// `RUNNER_TEMP/_github_home` at `/github/home`, and nothing else of `RUNNER_TEMP`: a path such as
/// `${{ runner.temp }}/toolchain` (the host's path) would be written into the container and vanish with it.
struct Paths {
    workspace: Option<PathBuf>,
    /// The host's `RUNNER_TEMP`, when in the runner's container.
    container_temp: Option<PathBuf>,
}

impl Paths {
    fn of(env: &Env) -> Paths {
        let workspace = env.non_empty("GITHUB_WORKSPACE").map(PathBuf::from);
        let in_container = env.var("HOME") == Some("/github/home")
            && workspace.as_deref() == Some(Path::new("/github/workspace"))
            && env.var("ACT") != Some("true");
        let container_temp = env.non_empty("RUNNER_TEMP").filter(|_| in_container).map(|t| PathBuf::from(t.trim()));
        Paths { workspace, container_temp }
    }

    fn resolve(&self, target: &str, p: &str) -> Result<PathBuf, ConfigError> {
        let path = Path::new(p);
        if !path.is_absolute() {
            return Ok(match &self.workspace {
                Some(ws) => ws.join(path),
                None => path.to_path_buf(),
            });
        }
        if let Some(temp) = &self.container_temp {
            if let Ok(rest) = path.strip_prefix(temp.join("_github_home")) {
                return Ok(Path::new("/github/home").join(rest));
            }
            if path.starts_with(temp) {
                return Err(bad(
                    "images",
                    format!(
                        "`{target}` is in the runner's temp directory, which the runner does not share with the \
                         action's container (only its `_github_home` folder): what is installed there would vanish \
                         with the container. Name a path in the workspace instead, e.g. `dir:.tools/toolchain`"
                    ),
                ));
            }
        }
        Ok(path.to_path_buf())
    }
}

fn line_target(line: &str) -> &str {
    line.split_whitespace().nth(1).unwrap_or("")
}

/// One `images` line: `REFERENCE TARGET`.
fn image_line(
    line: &str,
    paths: &Paths,
    engine: &Endpoint,
    platform: &Platform,
    platform_given: bool,
) -> Result<ImageRequest, ConfigError> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let [reference, target] = parts[..] else {
        return Err(bad(
            "images",
            format!(
                "`{line}` is not `REFERENCE TARGET`: give an image and where it goes, e.g. \
                 `ghcr.io/octo-org/tool:1 dir:tools/rootfs` (targets: dir:PATH, oci:PATH, docker-archive:FILE, docker)"
            ),
        ));
    };
    let reference = ImageRef::parse(reference).map_err(|e| bad("images", e.to_string()))?;
    let path_of = |kind: &str, rest: &str| {
        if rest.is_empty() {
            Err(bad("images", format!("`{target}` names no path: write `{kind}:PATH`")))
        } else {
            paths.resolve(target, rest)
        }
    };
    let target = if target == "docker" {
        ImageTarget::Docker(engine.clone())
    } else if let Some(p) = target.strip_prefix("dir:") {
        ImageTarget::Dir(path_of("dir", p)?)
    } else if let Some(p) = target.strip_prefix("oci:") {
        ImageTarget::Oci(path_of("oci", p)?)
    } else if let Some(p) = target.strip_prefix("docker-archive:") {
        ImageTarget::DockerArchive(path_of("docker-archive", p)?)
    } else {
        return Err(bad(
            "images",
            format!("`{target}` is not a target: use dir:PATH, oci:PATH, docker-archive:FILE or docker"),
        ));
    };
    Ok(ImageRequest { reference, target, platform: platform.clone(), platform_given })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    fn parse(raw: &[(&'static str, &str)], vars: &[(&str, &str)]) -> Result<InstallConfig, ConfigError> {
        InstallConfig::parse(&RawInputs::from_pairs(raw), &env(vars), Endpoint::default())
    }

    #[test]
    fn image_lines_name_a_reference_and_a_target_resolved_in_the_workspace() {
        let c = parse(
            &[(
                "images",
                "ghcr.io/octo-org/tool:1 dir:rootfs\n127.0.0.1:5000/a/b@sha256:0123456789012345678901234567890123456789012345678901234567890123 oci:/abs/layout\nbusybox docker-archive:out/b.tar\nghcr.io/o/x docker",
            )],
            &[("GITHUB_WORKSPACE", "/ws")],
        )
        .unwrap();
        let targets: Vec<&ImageTarget> = c.images.iter().map(|i| &i.target).collect();
        assert_eq!(targets[0], &ImageTarget::Dir("/ws/rootfs".into()));
        assert_eq!(targets[1], &ImageTarget::Oci("/abs/layout".into()));
        assert_eq!(targets[2], &ImageTarget::DockerArchive("/ws/out/b.tar".into()));
        assert_eq!(targets[3].kind(), "docker");
        assert_eq!(c.images[2].reference.to_string(), "docker.io/library/busybox:latest");
        assert!(!c.images[0].platform_given);
    }

    #[test]
    fn in_the_runners_container_host_temp_paths_are_translated_or_refused() {
        let runner = [
            ("HOME", "/github/home"),
            ("GITHUB_WORKSPACE", "/github/workspace"),
            ("RUNNER_TEMP", "/home/runner/work/_temp"),
        ];
        let c = parse(&[("images", "ghcr.io/o/a:1 dir:/home/runner/work/_temp/_github_home/tools")], &runner).unwrap();
        assert_eq!(c.images[0].target, ImageTarget::Dir("/github/home/tools".into()));
        let c = parse(&[("images", "ghcr.io/o/a:1 oci:.tools/layout")], &runner).unwrap();
        assert_eq!(c.images[0].target, ImageTarget::Oci("/github/workspace/.tools/layout".into()));
        let e = parse(&[("images", "ghcr.io/o/a:1 dir:/home/runner/work/_temp/tools")], &runner).unwrap_err();
        let e = e.to_string();
        assert!(e.starts_with("input `images`:") && e.contains("would vanish") && e.contains("dir:.tools"), "{e}");
        // On the host (a CLI run, act's host runner) the same path is taken as written.
        let host = [("HOME", "/home/runner"), ("GITHUB_WORKSPACE", "/ws"), ("RUNNER_TEMP", "/home/runner/work/_temp")];
        let c = parse(&[("images", "ghcr.io/o/a:1 dir:/home/runner/work/_temp/tools")], &host).unwrap();
        assert_eq!(c.images[0].target, ImageTarget::Dir("/home/runner/work/_temp/tools".into()));
    }

    #[test]
    fn bad_lines_name_the_input_and_the_grammar() {
        let e = parse(&[("images", "ghcr.io/o/a:1")], &[]).unwrap_err().to_string();
        assert!(e.starts_with("input `images`:") && e.contains("REFERENCE TARGET"), "{e}");
        let e = parse(&[("images", "ghcr.io/o/a:1 tar:x")], &[]).unwrap_err().to_string();
        assert!(e.contains("`tar:x` is not a target"), "{e}");
        let e = parse(&[("images", "ghcr.io/o/a:1 dir:")], &[]).unwrap_err().to_string();
        assert!(e.contains("dir:PATH"), "{e}");
        let e = parse(&[("images", "ghcr.io/o/a:1 dir:x\nghcr.io/o/b:1 dir:x")], &[]).unwrap_err().to_string();
        assert!(e.contains("two lines install into `dir:x`"), "{e}");
        let e = parse(&[], &[]).unwrap_err().to_string();
        assert!(e.contains("needs `images`") && e.contains("`registries`"), "{e}");
        let e = parse(&[("registries", "npm,pip")], &[]).unwrap_err().to_string();
        assert!(e.starts_with("input `registries`:") && e.contains("`pip`"), "{e}");
        let e = parse(&[("images", "a/b:1 docker"), ("platform", "linux")], &[]).unwrap_err().to_string();
        assert!(e.starts_with("input `platform`:"), "{e}");
        let e = parse(&[("registries", "npm")], &[("GITHUB_TOKEN", "t")]).unwrap_err().to_string();
        assert!(e.starts_with("input `owners`:"), "{e}");
        let e = parse(&[("registries", "npm"), ("owners", "o")], &[]).unwrap_err().to_string();
        assert!(e.starts_with("input `password`:") && e.contains("packages: read"), "{e}");
        let e = parse(&[("registries", "npm"), ("owners", "a b")], &[]).unwrap_err().to_string();
        assert!(e.contains("`a b` is not a GitHub user"), "{e}");
    }

    #[test]
    fn package_urls_follow_the_server_and_their_inputs() {
        let vars = [
            ("GITHUB_REPOSITORY_OWNER", "Octo-Org"),
            ("GITHUB_SERVER_URL", "https://ghe.example.com"),
            ("GITHUB_TOKEN", "t0ken"),
            ("GITHUB_ACTOR", "octocat"),
        ];
        let c = parse(&[("registries", "npm, maven\nnpm")], &vars).unwrap();
        assert_eq!(c.registries, vec![Ecosystem::Npm, Ecosystem::Maven]);
        assert_eq!(c.owners, vec!["Octo-Org"]);
        assert_eq!((c.username.as_str(), c.token.as_ref().map(Secret::expose)), ("octocat", Some("t0ken")));
        assert_eq!(c.urls.npm, "https://npm.ghe.example.com/");
        let c = parse(&[("registries", "npm"), ("subdomain_isolation", "false")], &vars).unwrap();
        assert_eq!(c.urls.npm, "https://ghe.example.com/_registry/npm/");
        let c = parse(
            &[
                ("registries", "npm"),
                ("owners", "a,b"),
                ("npm_registry", "http://127.0.0.1:4873"),
                ("docker_registry", "127.0.0.1:5000"),
            ],
            &vars,
        )
        .unwrap();
        assert_eq!((c.urls.npm.as_str(), c.urls.containers.as_str()), ("http://127.0.0.1:4873/", "127.0.0.1:5000"));
        assert_eq!(c.owners, vec!["a", "b"]);
        let e = parse(&[("registries", "npm"), ("maven_registry", "nope")], &vars).unwrap_err().to_string();
        assert!(e.starts_with("input `maven_registry`:"), "{e}");
    }

    #[test]
    fn a_platform_given_is_strict() {
        let c = parse(&[("images", "a/b:1 docker"), ("platform", "linux/arm64")], &[]).unwrap();
        assert_eq!(c.images[0].platform.to_string(), "linux/arm64");
        assert!(c.images[0].platform_given);
    }

    #[test]
    fn a_dir_target_must_be_new_or_empty() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().to_str().unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        std::fs::create_dir(dir.path().join("full")).unwrap();
        std::fs::write(dir.path().join("full/x"), "x").unwrap();
        let ok = parse(&[("images", "a/b:1 dir:empty\na/b:2 dir:new")], &[("GITHUB_WORKSPACE", ws)]).unwrap();
        ok.check().unwrap();
        let e = parse(&[("images", "a/b:1 dir:full")], &[("GITHUB_WORKSPACE", ws)]).unwrap().check().unwrap_err();
        assert!(e.to_string().contains("not an empty directory"), "{e}");
    }
}

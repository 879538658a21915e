//! The publish inputs: images and tags, credentials, the build's options, and the engine's, each checked with
//! the input it came from.

use super::*;

pub(super) fn parse_publish(
    raw: &RawInputs,
    env: &Env,
    targets: Vec<ImageName>,
    git: &GitContext,
) -> Result<PublishConfig, ConfigError> {
    let workspace = env.non_empty("GITHUB_WORKSPACE").map(PathBuf::from);
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        match (&workspace, p.is_absolute()) {
            (Some(ws), false) => ws.join(p),
            _ => p.to_path_buf(),
        }
    };
    let context = resolve(raw.get("path").unwrap_or("."));
    let dockerfile = match raw.get("dockerfile") {
        Some(d) => resolve(d.trim()),
        None => context.join("Dockerfile"),
    };
    let mut build_args = BTreeMap::new();
    for entry in raw.list("build_args") {
        match entry.split_once('=') {
            Some((k, v)) if is_arg_name(k.trim()) => {
                build_args.insert(k.trim().to_string(), v.to_string());
            }
            Some((k, _)) if !k.trim().is_empty() => {
                return Err(bad(
                    "build_args",
                    format!(
                        "`{}` is not a build argument name: use letters, digits and `_`, not starting with a digit, \
                         as the Dockerfile's `ARG` names it (`$NAME` could not refer to it otherwise)",
                        k.trim()
                    ),
                ));
            }
            _ => return Err(bad("build_args", format!("`{entry}` is not `NAME=value`"))),
        }
    }
    let platforms = raw
        .list("platforms")
        .iter()
        .map(|p| {
            Platform::parse(p).ok_or_else(|| {
                bad("platforms", format!("`{p}` is not a platform: use `os/arch[/variant]`, e.g. `linux/arm64`"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (push, push_notice) = parse_push(raw, git)?;
    let (mut output, mut docker_archive) = (None, None);
    if let Some(o) = raw.get("output").map(str::trim) {
        match (o.strip_prefix("oci:"), o.strip_prefix("docker-archive:")) {
            (Some(dir), _) if !dir.is_empty() => output = Some(resolve(dir)),
            (_, Some(file)) if !file.is_empty() => docker_archive = Some(resolve(file)),
            _ => {
                return Err(bad(
                    "output",
                    format!(
                        "`{o}` is not a supported output: use `oci:DIR` (an OCI image layout) or \
                         `docker-archive:FILE` (a tar for `docker load`)"
                    ),
                ));
            }
        }
    }
    if docker_archive.is_some() && platforms.len() > 1 {
        return Err(bad(
            "output",
            format!(
                "a docker archive holds one image, but `platforms` asks for {}: build one platform, or use \
                 `output: oci:DIR`, which holds them all",
                platforms.len()
            ),
        ));
    }
    let password = raw.get("password").or_else(|| env.non_empty("GITHUB_TOKEN")).map(|p| p.trim().to_string());
    let username = raw.get("username").or_else(|| env.non_empty("GITHUB_ACTOR")).map(|u| u.trim().to_string());
    let default_credentials = match (username, password) {
        (Some(u), Some(p)) => {
            Some(Credentials::new(u, Secret::new(p)).from_source("the `username` and `password` inputs"))
        }
        (None, Some(_)) => {
            return Err(bad(
                "username",
                "a password was given but no user name: set `username` (for ghcr.io, your GitHub user)",
            ));
        }
        (Some(_), None) | (None, None) => None,
    };
    let mut credentials = BTreeMap::new();
    if let Some(creds) = default_credentials {
        let registry_host = raw.get("registry").map(|r| r.trim().to_ascii_lowercase());
        for t in &targets {
            if is_github_registry(&t.registry) || registry_host.as_deref() == Some(t.registry.as_str()) {
                credentials.insert(t.registry.clone(), creds.clone());
            }
        }
    }
    for line in raw.lines("registry_auth") {
        let parsed = split_registry_auth(&line).and_then(|(host, user, pass)| {
            let host = host.trim().to_ascii_lowercase();
            (!host.is_empty() && !user.trim().is_empty() && !pass.is_empty()).then(|| {
                let source = format!("the `registry_auth` line for {host}");
                (host, Credentials::new(user.trim(), Secret::new(pass.trim())).from_source(source))
            })
        });
        match parsed {
            Some((host, creds)) => {
                credentials.insert(host, creds);
            }
            // The line holds a secret: name its host only.
            None => {
                let host = line.split_once('=').map(|(h, _)| h.trim()).unwrap_or("?");
                return Err(bad("registry_auth", format!("the line for `{host}` is not `HOST=USERNAME:PASSWORD`")));
            }
        }
    }
    let jobs = match raw.get("jobs") {
        None => 4,
        Some(j) => j
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| bad("jobs", format!("`{j}` is not a number from 1 to 64")))?,
    };
    let cache_dir = match raw.get("cache_dir").map(str::trim) {
        Some("false") => None,
        Some(dir) => Some(resolve(dir)),
        None => env
            .non_empty("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| env.non_empty("HOME").map(|h| Path::new(h).join(".cache")))
            .filter(|d| d.is_absolute())
            .map(|d| d.join("octopush")),
    };
    let compression = match raw.get("compression").map(str::trim) {
        None => Compression::default(),
        Some(c) => Compression::parse(&c.to_ascii_lowercase()).ok_or_else(|| {
            bad("compression", format!("`{c}` is not a layer compression: use {}", Compression::NAMES.join(" or ")))
        })?,
    };
    let builder = match raw.get("builder").map(str::trim) {
        None => BuilderKind::Auto,
        Some(b) => BuilderKind::parse(&b.to_ascii_lowercase())
            .ok_or_else(|| bad("builder", format!("`{b}` is not a builder: use {}", BuilderKind::NAMES.join(", "))))?,
    };
    let engine = parse_engine(raw, env, &resolve)?;
    let push_by_digest = raw.bool("push_by_digest").map_err(|m| bad("push_by_digest", m))?.unwrap_or(false);
    let insecure_registries = raw
        .lines("insecure_registries")
        .iter()
        .map(|line| {
            octopush::image::registry_host(line).map_err(|_| {
                bad(
                    "insecure_registries",
                    format!(
                        "`{line}` is not a registry host: give one `host[:port]` per line, e.g. `registry.lan:5000`"
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PublishConfig {
        push_by_digest,
        targets,
        context,
        dockerfile,
        target: raw.get("target").map(|t| t.trim().to_string()),
        build_args,
        platforms,
        push,
        push_notice,
        output,
        docker_archive,
        credentials,
        ca_file: raw.get("ca_file").map(|c| resolve(c.trim())),
        jobs,
        cache_dir,
        compression,
        builder,
        engine,
        insecure_registries,
        example: raw.example,
    })
}

/// The engine builder's inputs, and the engine's address as the docker CLI reads it from the environment.
pub(super) fn parse_engine(
    raw: &RawInputs,
    env: &Env,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<EngineOptions, ConfigError> {
    let endpoint = engine_endpoint(env)?;
    let flag = |name: &'static str| raw.bool(name).map(|v| v.unwrap_or(false)).map_err(|m| bad(name, m));
    let network = match raw.get("network").map(str::trim) {
        None => None,
        Some(n) if n.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) => Some(n.to_string()),
        Some(n) => return Err(bad("network", format!("`{n}` is not a network name: use `default`, `none` or `host`"))),
    };
    let mut secrets = BTreeMap::new();
    let mut add = |input: &'static str, id: &str, source: SecretSource| {
        let id = id.trim();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            return Err(bad(input, format!("`{id}` is not a secret id: use letters, digits, `_`, `.` and `-`")));
        }
        if secrets.insert(id.to_string(), source).is_some() {
            return Err(bad(input, format!("the secret `{id}` is given twice (in `secrets` or `secret_files`)")));
        }
        Ok(())
    };
    for line in raw.lines("secrets") {
        // The line holds the value: an error names the id only.
        match line.split_once('=') {
            Some((id, value)) => add("secrets", id, SecretSource::Value(Secret::new(value)))?,
            None => return Err(bad("secrets", "each line must be `ID=value` (a line without `=` was given)")),
        }
    }
    for line in raw.lines("secret_files") {
        match line.split_once('=') {
            Some((id, path)) if !path.trim().is_empty() => {
                add("secret_files", id, SecretSource::File(resolve(path.trim())))?
            }
            _ => return Err(bad("secret_files", format!("`{line}` is not `ID=PATH`"))),
        }
    }
    let mut cache_from = raw.list("cache_from");
    cache_from.extend(raw.list("cache_froms"));
    Ok(EngineOptions {
        endpoint,
        pull: flag("pull")? || flag("always_pull")?,
        no_cache: flag("no_cache")?,
        network,
        cache_from,
        secrets,
        classic: env.var("DOCKER_BUILDKIT").map(str::trim).is_some_and(|v| v == "0" || v.eq_ignore_ascii_case("false")),
        tags: Vec::new(),
    })
}

/// The engine's address, as the docker CLI reads it from the environment (`DOCKER_HOST`, `DOCKER_TLS_VERIFY`,
/// `DOCKER_CERT_PATH`).
pub(crate) fn engine_endpoint(env: &Env) -> Result<Endpoint, ConfigError> {
    Endpoint::from_vars(
        env.var("DOCKER_HOST"),
        env.var("DOCKER_TLS_VERIFY"),
        env.var("DOCKER_CERT_PATH"),
        env.non_empty("HOME"),
    )
    .map_err(|e| ConfigError::Environment(e.to_string()))
}

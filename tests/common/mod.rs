//! Test support for the integration tests: real servers on 127.0.0.1 (CNCF distribution registry in four auth
//! modes, a ghcr-style token issuer, Docker Engine), busybox base images pushed with skopeo, and a runner-like
//! `Workflow` that runs the octopush binary. Every test gets its own instances; dropping one kills its processes
//! and removes its temporary directories. A missing tool is a panic that names `scripts/install-test-deps.sh`,
//! never a silent skip. Verification goes through independent clients (curl, skopeo, docker), never octopush's
//! own registry client. Package registries (verdaccio, a Maven/RubyGems repository) for `install` live in
//! `packages_servers`. Use it with `mod common;` from a file in `tests/`.
#![allow(dead_code)]

pub mod access;
pub mod act;
pub mod checks;
pub mod dockerd;
pub mod github_api;
pub mod http;
pub mod image;
pub mod packages;
pub mod packages_servers;
pub mod proxy;
pub mod registry;
pub mod tarball;
pub mod tls;
pub mod token;
pub mod workflow;

// Re-exports for the test files; each test binary uses only some of them.
#[allow(unused_imports)]
pub use access::AccessEntry;
#[allow(unused_imports)]
pub use dockerd::Dockerd;
#[allow(unused_imports)]
pub use http::HttpResponse;
#[allow(unused_imports)]
pub use image::{BaseImage, MultiBase, busybox_rootfs, push_busybox_base, push_busybox_multiplatform};
#[allow(unused_imports)]
pub use proxy::{Fault, FaultProxy, Kind, Rule};
#[allow(unused_imports)]
pub use registry::{Auth, Mode, Options, Registry};
#[allow(unused_imports)]
pub use tarball::{gunzip_entries, tar_entries};
#[allow(unused_imports)]
pub use token::{TokenIssuer, TokenRequest};
#[allow(unused_imports)]
pub use workflow::{RunResult, Workflow, assert_no_secret};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sha2::Digest as _;

/// Debian package that ships each tool, for the panic message.
fn package_of(tool: &str) -> &'static str {
    match tool {
        "docker-registry" => "docker-registry",
        "skopeo" => "skopeo",
        "umoci" => "umoci",
        "buildah" => "buildah",
        "busybox" => "busybox-static",
        "htpasswd" => "apache2-utils",
        "jq" => "jq",
        "zstd" => "zstd",
        "dockerd" | "docker" | "containerd" | "runc" => "docker.io",
        "curl" => "curl",
        "openssl" => "openssl",
        "python3" => "python3",
        "node" => "nodejs",
        "npm" => "npm",
        "mvn" => "maven",
        "ruby" | "gem" => "ruby",
        "qemu-aarch64" => "qemu-user",
        _ => "?",
    }
}

/// The absolute path of `name`, searched in PATH and then in the sbin directories (dockerd lives in /usr/sbin,
/// which is not on a normal user's PATH). Panics, naming the install script, when it is missing.
pub fn tool(name: &str) -> PathBuf {
    // The machine image also carries a newer Docker CLI in /usr/local/bin; the one packaged with the daemon
    // (docker.io, API 1.41) is the one that matches it.
    if name == "docker" && Path::new("/usr/bin/docker").is_file() {
        return PathBuf::from("/usr/bin/docker");
    }
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{name} not found: run scripts/install-test-deps.sh (it installs Debian's {})", package_of(name))
    })
}

/// Runs a command to completion and panics with its stdout and stderr unless it succeeded. Returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command to completion with no stdin, capturing its output; panics only if it cannot be started.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(std::process::Stdio::null());
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Polls `check` every few milliseconds until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `signal` (a name such as `TERM`) to `pid` with kill(1); the std library only has SIGKILL.
pub(crate) fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Where tests/support lives, for helper scripts.
pub fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("support")
}

/// Starts `tests/support/<script>` with python3 (arguments and environment set by `configure`, stderr to
/// `stderr_file`) and waits for the port it prints as its first line. If none comes, the child is killed and its
/// stderr is the error.
pub fn start_support_script(
    script: &str,
    configure: impl FnOnce(&mut Command),
    stderr_file: &Path,
) -> Result<(std::process::Child, u16), String> {
    use std::io::BufRead as _;
    let path = support_dir().join(script);
    assert!(path.is_file(), "{} is missing", path.display());
    let mut cmd = Command::new(tool("python3"));
    cmd.arg(&path);
    configure(&mut cmd);
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(stderr_file).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(Duration::from_secs(30)).ok().and_then(|l| l.trim().parse::<u16>().ok()) {
        Some(port) => Ok((child, port)),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(std::fs::read_to_string(stderr_file).unwrap_or_default())
        }
    }
}

/// Waits for a spawned child whose stdout and stderr are piped, reading both as it runs; past `timeout` it is
/// killed and the test panics with what it printed. Returns its status, stdout and stderr.
pub fn wait_with_timeout(
    mut child: std::process::Child,
    what: &str,
    timeout: Duration,
) -> (std::process::ExitStatus, String, String) {
    use std::io::Read as _;
    let reader = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout piped")));
    let err = reader(Box::new(child.stderr.take().expect("stderr piped")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("waiting for {what}: {e}")) {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let (stdout, stderr) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
            panic!("{what} ran longer than {timeout:?} and was killed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, out.join().unwrap_or_default(), err.join().unwrap_or_default())
}

//! A Docker Engine (Debian's docker.io 20.10) per test: its own unix socket, data and exec roots in a temporary
//! directory, vfs storage, no iptables and no bridge, so several can run side by side and none touches the
//! machine's network. It treats 127.0.0.0/8 registries as insecure (plain HTTP) by default. Dropping it stops
//! the daemon (SIGTERM, then SIGKILL), its containerd, and unmounts what it left mounted.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{run, signal, tool, wait_for};

pub struct Dockerd {
    child: Child,
    socket: PathBuf,
    /// `127.0.0.1:PORT` when the daemon also listens on TCP with TLS ([`Dockerd::start_tls`]).
    tcp: Option<String>,
    log: PathBuf,
    started_in: Duration,
    dir: tempfile::TempDir,
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // A containerd that outlived a killed dockerd, and mounts (dockerd bind-mounts its data root) under the
        // temporary directory, would keep it from being removed.
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("exec/containerd/containerd.pid")) {
            if let Ok(pid) = pid.trim().parse::<u32>() {
                if Path::new(&format!("/proc/{pid}")).exists() {
                    signal(pid, "KILL");
                }
            }
        }
        let root = self.dir.path().to_string_lossy().into_owned();
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .filter(|m| m.starts_with(&root))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount").args(["-l", &m]).stderr(Stdio::null()).status();
        }
    }
}

/// Sends `GET /_ping` over the unix socket; true on `200`.
fn ping(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.1 200")
}

impl Dockerd {
    /// Starts dockerd and waits until its API answers `/_ping`.
    pub fn start() -> Dockerd {
        Self::start_with(&[], None)
    }

    /// Starts dockerd listening also on `tcp://127.0.0.1:PORT` with TLS that verifies clients (`--tlsverify`),
    /// as a remote build host is set up: the server certificate and the CA from `pki`.
    pub fn start_tls(pki: &super::tls::TestPki) -> Dockerd {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let tcp = format!("127.0.0.1:{port}");
        let args = [
            "-H".to_string(),
            format!("tcp://{tcp}"),
            "--tlsverify".into(),
            format!("--tlscacert={}", pki.ca_cert.display()),
            format!("--tlscert={}", pki.server_cert.display()),
            format!("--tlskey={}", pki.server_key.display()),
        ];
        Self::start_with(&args, Some(tcp))
    }

    /// `127.0.0.1:PORT` of the TLS listener ([`Dockerd::start_tls`]).
    pub fn tcp(&self) -> &str {
        self.tcp.as_deref().expect("started with start_tls")
    }

    fn start_with(extra: &[String], tcp: Option<String>) -> Dockerd {
        let begin = Instant::now();
        let bin = tool("dockerd");
        tool("docker"); // fail now, not at the first docker() call
        // Unix socket paths are limited to 108 bytes: keep the directory short.
        let dir = tempfile::Builder::new().prefix("octopush-dockerd-").tempdir_in("/tmp").expect("tempdir");
        let d = dir.path();
        let (socket, log) = (d.join("docker.sock"), d.join("dockerd.log"));
        // An empty daemon.json of its own: the machine's /etc/docker/daemon.json must not apply.
        std::fs::write(d.join("daemon.json"), "{}\n").expect("write daemon.json");
        let mut child = Command::new(&bin)
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .args(["--storage-driver", "vfs", "--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(["--ip-masq=false", "--ip-forward=false"])
            .args(extra)
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("dockerd log"))
            .stderr(std::fs::File::create(d.join("dockerd.err")).expect("dockerd stderr"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        wait_for("dockerd to answer /_ping", Duration::from_secs(60), || {
            if let Ok(Some(status)) = child.try_wait() {
                let out = std::fs::read_to_string(d.join("dockerd.err")).unwrap_or_default();
                panic!("dockerd exited ({status}) during start-up:\n{out}");
            }
            ping(&socket).then_some(())
        });
        Dockerd { child, socket, tcp, log, started_in: begin.elapsed(), dir }
    }

    /// `unix:///tmp/octopush-dockerd-XXXX/docker.sock`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        let err = std::fs::read_to_string(self.dir.path().join("dockerd.err")).unwrap_or_default();
        std::fs::read_to_string(&self.log).unwrap_or_default() + &err
    }

    /// A `docker` CLI command (Debian's /usr/bin/docker) aimed at this daemon, with a config dir of its own (no
    /// credential helpers or contexts of the machine's).
    pub fn command(&self) -> Command {
        let config = self.dir.path().join("cli-config");
        let _ = std::fs::create_dir_all(&config);
        let mut cmd = Command::new(tool("docker"));
        cmd.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", config)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH");
        cmd
    }

    /// Runs `docker ARGS` and returns its output, whatever its exit status.
    pub fn docker(&self, args: &[&str]) -> Output {
        run(self.command().args(args))
    }

    /// Runs `docker ARGS`, panicking with its output unless it succeeds; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        if !out.status.success() {
            panic!(
                "docker {} failed ({}):\n{}{}\n--- dockerd log (tail)\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail(&self.log(), 30)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Loads the busybox root filesystem into the daemon as `reference` with `docker import` (no registry
    /// needed); `PATH` and `CMD ["/bin/sh"]` set.
    pub fn import_busybox(&self, reference: &str) {
        let work = tempfile::tempdir().expect("tempdir");
        let (rootfs, tar) = (work.path().join("rootfs"), work.path().join("rootfs.tar"));
        super::image::busybox_rootfs(&rootfs);
        super::run_ok(Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg("."));
        let path_env = format!("ENV PATH={}", super::image::BASE_PATH);
        let tar_arg = tar.to_string_lossy().into_owned();
        self.docker_ok(&["import", "-c", &path_env, "-c", "CMD [\"/bin/sh\"]", &tar_arg, reference]);
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

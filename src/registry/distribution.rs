//! Test harness: a real CNCF distribution registry (Debian's `docker-registry`) on 127.0.0.1:0 in a temporary
//! directory, optionally with htpasswd auth, with its access log captured so tests can count requests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

pub(crate) struct Distribution {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    access: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

impl Distribution {
    /// An open registry.
    pub fn start() -> Distribution {
        Distribution::launch(None)
    }

    /// A registry that wants Basic credentials checked against an htpasswd (bcrypt) entry for `user`.
    pub fn start_htpasswd(user: &str, password: &str) -> Distribution {
        Distribution::launch(Some((user, password)))
    }

    fn launch(auth: Option<(&str, &str)>) -> Distribution {
        let Some(bin) = find_binary("docker-registry") else {
            panic!(
                "docker-registry is not installed: run scripts/install-test-deps.sh (it installs Debian's \
                 docker-registry, apache2-utils, skopeo and umoci) and run the tests again"
            );
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    \
             rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n  secret: test-secret\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = auth {
            let Some(htpasswd) = find_binary("htpasswd") else {
                panic!("htpasswd is not installed: run scripts/install-test-deps.sh (package apache2-utils)");
            };
            let out = Command::new(htpasswd).args(["-Bbn", user, password]).output().expect("run htpasswd");
            assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("write htpasswd");
            config.push_str(&format!("auth:\n  htpasswd:\n    realm: test\n    path: {}\n", file.display()));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write config");
        let mut child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start docker-registry");
        let access = Arc::new(Mutex::new(Vec::new()));
        let (stdout, stderr) = (child.stdout.take().expect("stdout"), child.stderr.take().expect("stderr"));
        let sink = access.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut v) = sink.lock() {
                    v.push(line);
                }
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on ") {
                    let rest = &line[i + "listening on ".len()..];
                    let addr: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let host = match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(h) => h,
            Err(_) => {
                let _ = child.kill();
                panic!("docker-registry did not say `listening on` within 15 s");
            }
        };
        Distribution { child, host, access, _dir: dir }
    }

    /// Access-log request lines (`METHOD /path HTTP/1.1" STATUS`) so far, after letting the log catch up.
    pub fn access_log(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(300));
        self.access.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Access-log lines for `method` whose path contains `needle`.
    pub fn requests(&self, method: &str, needle: &str) -> Vec<String> {
        let prefix = format!("\"{method} ");
        self.access_log().into_iter().filter(|l| l.contains(&prefix) && l.contains(needle)).collect()
    }
}

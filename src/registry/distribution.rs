//! Test harness: a real CNCF distribution registry (Debian's `docker-registry`) on 127.0.0.1:0 in a temporary
//! directory, open, with htpasswd, or with token auth as ghcr.io does it (a small issuer minting RS256 JWTs with
//! `openssl`), its access log captured so tests can count requests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::testing::{FakeRegistry, Reply};

enum Auth<'a> {
    None,
    Htpasswd(&'a str, &'a str),
    Token { realm: &'a str, cert: &'a std::path::Path },
}

fn openssl(args: &[&str], paths: &[(&str, &std::path::Path)]) {
    let mut cmd = Command::new(find_binary("openssl").expect("openssl is not installed: apt-get install openssl"));
    cmd.args(args);
    for (flag, path) in paths {
        cmd.arg(flag).arg(path);
    }
    let out = cmd.output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// An RS256 signature (PKCS#1 v1.5, SHA-256) of `data` with the PEM key at `key`.
fn sign(key: &std::path::Path, data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl dgst");
    child.stdin.take().expect("stdin").write_all(data).expect("write to openssl");
    let out = child.wait_with_output().expect("openssl dgst");
    assert!(out.status.success(), "openssl dgst failed");
    out.stdout
}

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
        Distribution::launch(Auth::None, None)
    }

    /// An open registry on HTTPS (which it serves over HTTP/2) with a certificate for `registry.test` and
    /// 127.0.0.1 from a private CA; returns the CA's PEM file too.
    pub fn start_tls() -> (Distribution, tempfile::TempDir, PathBuf) {
        let pki = tempfile::tempdir().expect("tempdir");
        let p = |f: &str| pki.path().join(f);
        openssl(
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test-ca", "-days", "1"],
            &[("-keyout", &p("ca.key")), ("-out", &p("ca.pem"))],
        );
        openssl(
            &["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=registry.test"],
            &[("-keyout", &p("server.key")), ("-out", &p("server.csr"))],
        );
        std::fs::write(
            p("ext.cnf"),
            "subjectAltName=DNS:registry.test,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write ext.cnf");
        openssl(
            &["x509", "-req", "-days", "1", "-set_serial", "2"],
            &[
                ("-in", &p("server.csr")),
                ("-CA", &p("ca.pem")),
                ("-CAkey", &p("ca.key")),
                ("-extfile", &p("ext.cnf")),
                ("-out", &p("server.pem")),
            ],
        );
        let reg = Distribution::launch(Auth::None, Some((&p("server.pem"), &p("server.key"))));
        let ca = p("ca.pem");
        (reg, pki, ca)
    }

    /// A registry that wants Basic credentials checked against an htpasswd (bcrypt) entry for `user`.
    pub fn start_htpasswd(user: &str, password: &str) -> Distribution {
        Distribution::launch(Auth::Htpasswd(user, password), None)
    }

    /// A registry that wants Bearer tokens from the returned issuer: `user`/`password` get what they ask for,
    /// anonymous callers `pull` only, like public packages on ghcr.io; wrong credentials get 401.
    pub async fn start_token_auth(user: &str, password: &str) -> (Distribution, FakeRegistry) {
        let keys = tempfile::tempdir().expect("tempdir");
        let (key, cert) = (keys.path().join("key.pem"), keys.path().join("cert.pem"));
        openssl(
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test-issuer", "-days", "1"],
            &[("-keyout", &key), ("-out", &cert)],
        );
        let der = keys.path().join("cert.der");
        openssl(&["x509", "-outform", "DER"], &[("-in", &cert), ("-out", &der)]);
        let x5c = STANDARD.encode(std::fs::read(&der).expect("read cert"));
        let expected = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
        let user = user.to_string();
        let issuer = FakeRegistry::start(move |req| {
            let _keep = &keys;
            let Ok(url) = url::Url::parse(&format!("http://issuer{}", req.target)) else { return Reply::status(400) };
            let authorized = match req.header("authorization") {
                None => false,
                Some(h) if h == expected => true,
                Some(_) => return Reply::status(401),
            };
            let access: Vec<serde_json::Value> = url
                .query_pairs()
                .filter(|(k, _)| k == "scope")
                .filter_map(|(_, scope)| {
                    let mut parts = scope.splitn(3, ':');
                    let (kind, name, actions) = (parts.next()?.to_string(), parts.next()?.to_string(), parts.next()?);
                    let actions: Vec<&str> = actions.split(',').filter(|a| authorized || *a == "pull").collect();
                    Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
                })
                .collect();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
            let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
            let claims = serde_json::json!({
                "iss": "test-issuer", "sub": if authorized { user.as_str() } else { "" }, "aud": "test-registry",
                "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{}", rand::random::<u64>()),
                "access": access,
            });
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let signature = sign(&key, input.as_bytes());
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
            let body = serde_json::json!({"token": token, "expires_in": 300}).to_string().into_bytes();
            Reply::Respond { status: 200, headers: vec![("Content-Type".into(), "application/json".into())], body }
        })
        .await;
        let realm = format!("http://{}/token", issuer.host());
        (Distribution::launch(Auth::Token { realm: &realm, cert: &cert }, None), issuer)
    }

    fn launch(auth: Auth, tls: Option<(&std::path::Path, &std::path::Path)>) -> Distribution {
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
        if let Some((cert, key)) = tls {
            config.push_str(&format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display()));
        }
        if let Auth::Token { realm, cert } = auth {
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: test-registry\n    issuer: test-issuer\n    \
                 rootcertbundle: {}\n",
                cert.display()
            ));
        }
        if let Auth::Htpasswd(user, password) = auth {
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
                    // `listening on 127.0.0.1:PORT` (with `, tls` after it when serving HTTPS)
                    let addr: String =
                        rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
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

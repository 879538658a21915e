//! ADD of http(s) URLs against a real HTTP server (Python's `http.server` on 127.0.0.1): Docker's name, mode,
//! owner and mtime for the download, no unpacking, `--checksum` and BuildKit's errors.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};

use super::*;

/// `python3 -m http.server` serving `dir` on a free port of 127.0.0.1; killed on drop.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn start(dir: &Path) -> HttpServer {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 (run scripts/install-test-deps.sh)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line.split_whitespace().nth(5).and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{line}"));
        HttpServer { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn add_url_as_docker_does() {
    let served = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(served.path().join("dl")).unwrap();
    let tgz = gz_layer(&[("inside.txt", Some("x"))]);
    std::fs::write(served.path().join("dl/tool.tar.gz"), &tgz).unwrap();
    std::fs::write(served.path().join("data.txt"), "data\n").unwrap();
    set_mtime(&served.path().join("data.txt"), 1_500_000_000);
    let server = HttpServer::start(served.path());

    let fx = fixture();
    let (tool, data) = (server.url("dl/tool.tar.gz"), server.url("data.txt"));
    let good = Digest::of(b"data\n").to_string();
    let df = format!(
        "FROM scratch\nADD {tool} /dl/\nADD --checksum={good} {data} /data\nADD --chmod=755 --chown=7:8 {data} /bin/data\n"
    );
    let mut opts = fx.opts(&df);
    opts.source_date_epoch = None;
    let img = build_image(&opts, &FakeBases::default()).await;
    let l0 = entries(&img.layers()[0]);
    assert_eq!(paths(&l0), ["dl/", "dl/tool.tar.gz"], "named after the URL's last segment, and not unpacked");
    let t = entry(&l0, "dl/tool.tar.gz");
    assert_eq!((t.kind, t.mode, t.uid, t.gid, t.data.as_slice()), ('f', 0o600, 0, 0, tgz.as_slice()));
    let d = &entries(&img.layers()[1])[0];
    assert_eq!(
        (d.path.as_str(), d.mode, d.mtime, d.data.as_slice()),
        ("data", 0o600, 1_500_000_000, b"data\n".as_slice())
    );
    let b = entry(&entries(&img.layers()[2]), "bin/data").clone();
    assert_eq!((b.mode, b.uid, b.gid), (0o755, 7, 8));
    assert_eq!(history(&img)[1].0, format!("ADD {data} /data # buildkit"));

    let mut opts = fx.opts(&format!("FROM scratch\nADD {data} /data\n"));
    opts.source_date_epoch = Some(EPOCH);
    let img = build_image(&opts, &FakeBases::default()).await;
    assert_eq!(entries(&img.layers()[0])[0].mtime, 1_500_000_000, "Last-Modified, earlier than SOURCE_DATE_EPOCH");
    opts.source_date_epoch = Some(1_400_000_000);
    let img = build_image(&opts, &FakeBases::default()).await;
    assert_eq!(entries(&img.layers()[0])[0].mtime, 1_400_000_000, "clamped to SOURCE_DATE_EPOCH");

    let bad = Digest::of(b"other").to_string();
    let err = build_err(&fx.opts(&format!("FROM scratch\nADD --checksum={bad} {data} /data\n"))).await.to_string();
    assert!(err.contains("Dockerfile:2:") && err.contains(&bad) && err.contains(&good), "{err}");
    let err = build_err(&fx.opts(&format!("FROM scratch\nADD {} /x\n", server.url("missing")))).await.to_string();
    assert!(err.contains("Dockerfile:2:") && err.contains("404"), "{err}");
}

#[tokio::test]
async fn checksum_and_url_errors_as_buildkit() {
    let fx = fixture();
    fx.file("a.txt", "a", 0o644);
    let sum = format!("sha256:{}", "0".repeat(64));
    for (df, needle) in [
        (
            format!("FROM scratch\nADD --checksum={sum} a.txt /a\n"),
            "checksum can't be specified for non-HTTP(S) sources",
        ),
        (format!("FROM scratch\nCOPY --checksum={sum} a.txt /a\n"), "unknown flag: --checksum"),
        (
            format!("FROM scratch\nADD --checksum={sum} http://127.0.0.1:1/a a.txt /d/\n"),
            "checksum can't be specified for multiple sources",
        ),
        ("FROM scratch\nADD --checksum=md5:00 http://127.0.0.1:1/a /a\n".into(), "64 hex digits"),
        ("FROM scratch\nCOPY http://127.0.0.1:1/a /a\n".into(), "use ADD"),
    ] {
        let err = build_err(&fx.opts(&df)).await.to_string();
        assert!(err.contains("Dockerfile:2:") && err.contains(needle), "{df:?}: {err}");
    }
}

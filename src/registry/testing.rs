//! Test helpers: a tiny in-process "bad registry" (HTTP/1.1 on 127.0.0.1, scripted per request) for the faults a
//! real registry will not produce (500s, 429s, resets mid-upload, wrong digests, missing `Location`), and small
//! builders for gzip tar layers and images.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{ClientOptions, RegistryClient, RetryPolicy};
use crate::image::{Blob, BlobSource, Descriptor, Digest, History, Image, Layer, Platform, media_type};

/// A request as the fake saw it. Header names are lowercase.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What the fake does with a request, decided from its head.
pub(crate) enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Read this many body bytes, then reset the connection (RST).
    ResetAfter(usize),
    /// Read the request, wait, then do the rest.
    After(std::time::Duration, Box<Reply>),
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply::Respond { status, headers: Vec::new(), body: Vec::new() }
    }
    pub fn with(status: u16, headers: &[(&str, &str)]) -> Reply {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Reply::Respond { status, headers, body: Vec::new() }
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

pub(crate) struct FakeRegistry {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeRegistry {
    /// Serves on 127.0.0.1:0; `handler` sees each request's head (body empty) and says what to do.
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, log) = (handler.clone(), log.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, handler, log).await;
                });
            }
        });
        FakeRegistry { addr, seen, task }
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Every request fully read so far (a reset one is recorded with the bytes read before the reset).
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn serve(mut stream: TcpStream, handler: Arc<Handler>, log: Arc<Mutex<Vec<Seen>>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        // Head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut tmp = [0u8; 8192];
            let n = stream.read(&mut tmp).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&tmp[..n]);
            // A TLS ClientHello (the client probing for HTTPS): close, as a plain HTTP server's error does.
            if buf.first() == Some(&0x16) {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_string();
        let target = first.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut req = Seen { method, target, headers, body: Vec::new() };
        let len: usize = req.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut reply = handler(&req);
        let want = match reply {
            Reply::ResetAfter(n) => n.min(len),
            _ => len,
        };
        while buf.len() < want {
            let mut tmp = [0u8; 65536];
            let n = stream.read(&mut tmp).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&tmp[..n]);
        }
        let take = want.min(buf.len());
        req.body = buf.drain(..take).collect();
        if let Ok(mut l) = log.lock() {
            l.push(req.clone());
        }
        while let Reply::After(d, next) = reply {
            tokio::time::sleep(d).await;
            reply = *next;
        }
        match reply {
            Reply::ResetAfter(_) => {
                stream.set_zero_linger()?;
                return Ok(()); // dropping the socket with zero linger sends RST
            }
            Reply::After(..) => {}
            Reply::Respond { status, headers, body } => {
                let mut out = format!("HTTP/1.1 {status} Fake\r\n");
                let mut has_len = false;
                for (k, v) in &headers {
                    has_len |= k.eq_ignore_ascii_case("content-length");
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                if !has_len {
                    out.push_str(&format!("Content-Length: {}\r\n", body.len()));
                }
                out.push_str("\r\n");
                stream.write_all(out.as_bytes()).await?;
                if req.method != "HEAD" {
                    stream.write_all(&body).await?;
                }
                stream.flush().await?;
            }
        }
    }
}

/// A client whose retries wait milliseconds, not seconds.
pub(crate) fn fast_client(options: ClientOptions) -> RegistryClient {
    super::install_crypto();
    let retry = RetryPolicy {
        attempts: 4,
        base_delay: std::time::Duration::from_millis(10),
        max_delay: std::time::Duration::from_millis(50),
        max_retry_after: std::time::Duration::from_secs(5),
    };
    RegistryClient::new(ClientOptions { retry, ..options }).expect("client")
}

/// Writes a gzip tar layer holding `files` into `dir` and returns it as a File-sourced layer.
pub(crate) fn gzip_layer(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> Layer {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        tar.append_data(&mut h, path, *data).expect("tar append");
    }
    let tar = tar.into_inner().expect("tar finish");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&tar).expect("gzip");
    let gz = gz.finish().expect("gzip finish");
    let path = dir.join(format!("{name}.tar.gz"));
    std::fs::write(&path, &gz).expect("write layer");
    Layer {
        blob: Blob {
            descriptor: Descriptor::new(media_type::OCI_LAYER_GZIP, Digest::of(&gz), gz.len() as u64),
            source: BlobSource::File(path),
        },
        diff_id: Digest::of(&tar),
    }
}

/// A blob of `size` pseudo-random bytes in a file (content that does not compress, so sizes are exact).
pub(crate) fn random_blob(dir: &Path, name: &str, size: usize) -> Layer {
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ size as u64 ^ name.len() as u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let path = dir.join(name);
    std::fs::write(&path, &data).expect("write blob");
    Layer {
        blob: Blob {
            descriptor: Descriptor::new(media_type::OCI_LAYER_GZIP, Digest::of(&data), size as u64),
            source: BlobSource::File(path),
        },
        diff_id: Digest::of(name.as_bytes()),
    }
}

/// An image for `platform` made of `layers` on scratch.
pub(crate) fn image(platform: &str, layers: Vec<Layer>) -> Image {
    let p = Platform::parse(platform).expect("platform");
    layers.into_iter().fold(Image::scratch(&p), |img, l| {
        img.with_layer(l, History { created_by: Some("test".into()), ..Default::default() })
    })
}

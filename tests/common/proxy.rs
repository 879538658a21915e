//! A fault-injecting HTTP proxy: real TCP on 127.0.0.1 in front of a real registry, for the faults a healthy
//! registry never produces on demand (issue 13). Each request is classified by [`Kind`] and numbered within its
//! kind; the first [`Rule`] that matches decides its [`Fault`]: reset the connection, delay it, cut the request
//! body on its way to the registry (which then sees other bytes than the client sent) or the response on its way
//! back, answer a status of its own (429, 503, a registry error envelope), answer `200` with a web page, or never
//! answer. Everything else is forwarded unchanged, one request per connection (`Connection: close` both ways,
//! which every HTTP/1.1 client handles). Every request is logged with the fault it got.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a request does, from its method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `GET /v2/` (the version check, and the client's TLS probe answered in plain HTTP).
    Version,
    BlobHead,
    BlobGet,
    /// `POST /v2/REPO/blobs/uploads/` (a new session or a mount).
    UploadStart,
    /// `PATCH` of a chunk.
    UploadChunk,
    /// The `PUT ...?digest=` that completes an upload (with the body for a monolithic upload).
    UploadFinish,
    ManifestHead,
    ManifestGet,
    ManifestPut,
    Other,
}

impl Kind {
    pub fn of(method: &str, path: &str) -> Kind {
        let path = path.split('?').next().unwrap_or(path);
        let uploads = path.contains("/blobs/uploads");
        match (method, path) {
            ("GET", "/v2/" | "/v2") => Kind::Version,
            ("POST", _) if uploads => Kind::UploadStart,
            ("PATCH", _) if uploads => Kind::UploadChunk,
            ("PUT", _) if uploads => Kind::UploadFinish,
            ("HEAD", _) if path.contains("/blobs/") => Kind::BlobHead,
            ("GET", _) if path.contains("/blobs/") => Kind::BlobGet,
            ("HEAD", _) if path.contains("/manifests/") => Kind::ManifestHead,
            ("GET", _) if path.contains("/manifests/") => Kind::ManifestGet,
            ("PUT", _) if path.contains("/manifests/") => Kind::ManifestPut,
            _ => Kind::Other,
        }
    }
}

/// What the proxy does to a request a rule matched.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Read the request, then reset the connection (RST) without answering.
    Reset,
    /// Wait, then forward.
    Delay(Duration),
    /// Forward only the first `n` bytes of the request body, with `Content-Length: n`: the registry sees a body
    /// cut short on the way (and answers 400 DIGEST_INVALID for a blob).
    CutRequestBody(usize),
    /// Forward, but pass only the first `n` bytes of the response back, then close.
    CutResponse(usize),
    /// Answer instead of the registry: a status, headers and a body.
    Answer { status: u16, headers: Vec<(String, String)>, body: String },
    /// Answer `200 OK` with an HTML page, as a web server or captive portal in the registry's place would.
    Garbage,
    /// Never answer: keep the connection open until the client gives up.
    Hang,
}

impl Fault {
    /// A registry error envelope, `{"errors":[{"code","message"}]}`, with `status`.
    pub fn registry_error(status: u16, code: &str, message: &str) -> Fault {
        Fault::Answer {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string(),
        }
    }

    /// `status` with `Retry-After: secs` (429, 503).
    pub fn retry_after(status: u16, secs: u64) -> Fault {
        Fault::Answer { status, headers: vec![("Retry-After".into(), secs.to_string())], body: String::new() }
    }
}

/// Which requests get a fault: of `kind` (any when `None`), the `nth` of that kind (1-based; every one when
/// `None`).
#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: Option<Kind>,
    pub nth: Option<usize>,
    pub fault: Fault,
}

impl Rule {
    /// The `nth` request of `kind`.
    pub fn nth(kind: Kind, nth: usize, fault: Fault) -> Rule {
        Rule { kind: Some(kind), nth: Some(nth), fault }
    }
    /// Every request of `kind`.
    pub fn every(kind: Kind, fault: Fault) -> Rule {
        Rule { kind: Some(kind), nth: None, fault }
    }
    /// Every request.
    pub fn all(fault: Fault) -> Rule {
        Rule { kind: None, nth: None, fault }
    }
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub kind: Kind,
    /// 1-based, among the requests of its kind.
    pub nth: usize,
    pub method: String,
    pub target: String,
    pub body_len: usize,
    pub fault: Option<Fault>,
}

struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

/// A running proxy; dropping it stops it (its runtime and every connection).
pub struct FaultProxy {
    host: String,
    state: Arc<Mutex<State>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl FaultProxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream` (`host:port`, plain HTTP).
    pub fn start(upstream: &str, rules: Vec<Rule>) -> FaultProxy {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("proxy runtime");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind 127.0.0.1:0");
        let host = listener.local_addr().expect("local addr").to_string();
        let state = Arc::new(Mutex::new(State { rules, seen: Vec::new() }));
        let (st, upstream) = (state.clone(), upstream.to_string());
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (st, upstream) = (st.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, st).await;
                });
            }
        });
        FaultProxy { host, state, runtime: Some(runtime) }
    }

    /// `127.0.0.1:PORT`, to use as the registry's host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Every request so far, in order of arrival.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().map(|s| s.seen.clone()).unwrap_or_default()
    }

    /// The requests that got a fault.
    pub fn faulted(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.fault.is_some()).collect()
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.seen().iter().filter(|s| s.kind == kind).count()
    }
}

/// A request read off the client connection: its head lines and its whole body (de-chunked).
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn serve(mut client: TcpStream, upstream: &str, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let Some(req) = read_request(&mut client).await? else { return Ok(()) };
    let kind = Kind::of(&req.method, &req.target);
    let fault = {
        let mut st = state.lock().map_err(|_| std::io::Error::other("poisoned"))?;
        let nth = st.seen.iter().filter(|s| s.kind == kind).count() + 1;
        let fault = st
            .rules
            .iter()
            .find(|r| r.kind.is_none_or(|k| k == kind) && r.nth.is_none_or(|n| n == nth))
            .map(|r| r.fault.clone());
        st.seen.push(Seen {
            kind,
            nth,
            method: req.method.clone(),
            target: req.target.clone(),
            body_len: req.body.len(),
            fault: fault.clone(),
        });
        fault
    };
    match fault {
        None => forward(&mut client, upstream, &req, None, None).await,
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            forward(&mut client, upstream, &req, None, None).await
        }
        Some(Fault::CutRequestBody(n)) => forward(&mut client, upstream, &req, Some(n), None).await,
        Some(Fault::CutResponse(n)) => forward(&mut client, upstream, &req, None, Some(n)).await,
        Some(Fault::Reset) => {
            client.set_zero_linger()?;
            Ok(()) // dropped with zero linger: RST
        }
        Some(Fault::Hang) => {
            let mut sink = [0u8; 1024];
            while client.read(&mut sink).await? > 0 {}
            Ok(())
        }
        Some(Fault::Garbage) => {
            let page = "<!DOCTYPE html><html><head><title>Welcome</title></head><body>It works!</body></html>";
            let headers = vec![("Content-Type".to_string(), "text/html; charset=utf-8".to_string())];
            answer(&mut client, &req.method, 200, &headers, page).await
        }
        Some(Fault::Answer { status, headers, body }) => {
            answer(&mut client, &req.method, status, &headers, &body).await
        }
    }
}

async fn answer(
    client: &mut TcpStream,
    method: &str,
    status: u16,
    headers: &[(String, String)],
    body: &str,
) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {status} Injected\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    if method != "HEAD" {
        out.push_str(body);
    }
    client.write_all(out.as_bytes()).await?;
    client.shutdown().await
}

/// Sends the request to the registry (its body cut to `cut_request` bytes if asked) and copies the response back
/// (only its first `cut_response` bytes if asked) until the registry closes.
async fn forward(
    client: &mut TcpStream,
    upstream: &str,
    req: &Request,
    cut_request: Option<usize>,
    cut_response: Option<usize>,
) -> std::io::Result<()> {
    let body = match cut_request {
        Some(n) => &req.body[..n.min(req.body.len())],
        None => &req.body[..],
    };
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        if !matches!(k.as_str(), "content-length" | "transfer-encoding" | "connection") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    let has_body = !body.is_empty() || req.headers.iter().any(|(k, _)| k == "content-length");
    if has_body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(head.as_bytes()).await?;
    up.write_all(body).await?;
    let mut sent = 0usize;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = up.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let take = match cut_response {
            Some(limit) => n.min(limit.saturating_sub(sent)),
            None => n,
        };
        client.write_all(&buf[..take]).await?;
        sent += take;
        if cut_response.is_some_and(|limit| sent >= limit) {
            break;
        }
    }
    client.shutdown().await
}

/// Reads one request: head, then a `Content-Length` or chunked body. `None` when the client closed first.
async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut tmp = [0u8; 8192];
        let n = client.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
        // A TLS ClientHello (octopush probing for HTTPS): close, as a plain HTTP server does at once.
        if buf.first() == Some(&0x16) {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf.split_off(head_end);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(client, rest).await?
    } else {
        let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while rest.len() < len {
            let mut tmp = vec![0u8; 64 << 10];
            let n = client.read(&mut tmp).await?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&tmp[..n]);
        }
        rest.truncate(len);
        rest
    };
    Ok(Some(Request { method, target, headers, body }))
}

async fn read_chunked(client: &mut TcpStream, mut buf: Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        while !buf.windows(2).any(|w| w == b"\r\n") {
            fill(client, &mut buf).await?;
        }
        let line_end = buf.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
        let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .map_err(|_| std::io::Error::other(format!("bad chunk size {size_text:?}")))?;
        buf.drain(..line_end + 2);
        while buf.len() < size + 2 {
            fill(client, &mut buf).await?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
        if size == 0 {
            return Ok(body);
        }
    }
}

async fn fill(client: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut tmp = vec![0u8; 64 << 10];
    let n = client.read(&mut tmp).await?;
    if n == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "client closed mid-body"));
    }
    buf.extend_from_slice(&tmp[..n]);
    Ok(())
}

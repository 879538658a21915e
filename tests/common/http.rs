//! Independent HTTP checks: requests made with the `curl` CLI (HTTP/1.1 or HTTP/2, TLS with a given CA), so a
//! test never verifies octopush with octopush's own client; plus a tiny std::net GET used to wait for plain-HTTP
//! servers.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use super::{run, tool};

/// The User-Agent of every request the harness itself makes; the registry's counting helpers leave them out.
pub const HARNESS_USER_AGENT: &str = "octopush-test-harness";

/// A response as curl received it. Header names are lower-cased.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.text()))
    }
}

/// Sends one request with curl. `extra` carries curl options such as `["-u", "user:pass"]` or
/// `["--cacert", PATH]`. Panics if curl itself fails (connection refused, TLS error...): use
/// [`curl_result`] to see such failures.
pub fn curl(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>, extra: &[&str]) -> HttpResponse {
    curl_result(method, url, headers, body, extra).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`curl`], but a transport failure is an `Err` with curl's exit code and message.
pub fn curl_result(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    extra: &[&str],
) -> Result<HttpResponse, String> {
    let mut cmd = Command::new(tool("curl"));
    cmd.args(["-sS", "-g", "-i", "--max-time", "120", "-A", HARNESS_USER_AGENT]);
    if method == "HEAD" {
        cmd.arg("-I");
    } else {
        cmd.args(["-X", method]);
    }
    for (k, v) in headers {
        cmd.arg("-H").arg(format!("{k}: {v}"));
    }
    let body_file = body.map(|b| {
        let mut f = tempfile::NamedTempFile::new().expect("temp file for request body");
        f.write_all(b).expect("write request body");
        f
    });
    if let Some(f) = &body_file {
        cmd.arg("--data-binary").arg(format!("@{}", f.path().display()));
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            // curl would say application/x-www-form-urlencoded, which the registry refuses for blobs.
            cmd.args(["-H", "Content-Type: application/octet-stream"]);
        }
    }
    cmd.args(extra).arg(url);
    let out = run(&mut cmd);
    if !out.status.success() {
        return Err(format!(
            "curl {method} {url} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_response(&out.stdout).ok_or_else(|| format!("cannot parse curl's output for {method} {url}"))
}

/// Splits `curl -i` output into status, headers and body, skipping interim `1xx` header blocks.
fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let mut rest = raw;
    loop {
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 4..];
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        if (100..200).contains(&status) {
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return Some(HttpResponse { status, headers, body: rest.to_vec() });
    }
}

/// A plain-HTTP GET with std::net (no TLS, HTTP/1.0, no keep-alive): the status code, or `None` when nothing
/// answers. Fast enough to poll a server that is starting.
pub fn plain_get_status(host: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: {HARNESS_USER_AGENT}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let line = response.split(|b| *b == b'\n').next()?;
    String::from_utf8_lossy(line).split_whitespace().nth(1)?.parse().ok()
}

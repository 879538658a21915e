//! One `POST /build` on the engine: the context streams up as the request body while the engine's messages
//! stream down, with BuildKit (`version=2`, through our session) or the classic builder (`version=1`).
//!
//! The answer is a sequence of JSON messages: `stream` text (classic), `aux` BuildKit status (base64
//! protobuf, id `moby.buildkit.trace`), `aux` `{"ID": "sha256:..."}` for the image built, and `errorDetail`
//! when the build fails. We decode them ourselves because the BuildKit half needs our own session (see
//! `session.rs`), and the classic half is the same loop.

use std::collections::BTreeMap;

use base64::Engine as _;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use serde::Deserialize;

use super::client::Engine;
use super::context::{self, ContextSpec};
use super::failure;
use super::progress::{BuildkitLog, ClassicLog, FailedStep};
use crate::builder::{BuildError, Plan};
use crate::image::Platform;
use crate::progress::Progress;
use crate::registry::Credentials;

/// Which of the engine's builders runs the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// BuildKit, calling back through the session with this id.
    BuildKit {
        session: String,
    },
    Classic,
}

/// The build's parameters, as the engine API takes them.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<Platform>,
    pub pull: bool,
    pub no_cache: bool,
    pub network: Option<String>,
    pub cache_from: Vec<String>,
    /// Registry credentials for the classic builder's pulls (`X-Registry-Config`); BuildKit asks the session.
    pub credentials: BTreeMap<String, Credentials>,
}

/// The largest message the engine may send in one piece (a BuildKit status with many vertices is well under).
const MAX_MESSAGE: usize = 64 << 20;

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    aux: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
}

/// How the engine's answer ended.
enum Outcome {
    Built(String),
    Failed(String),
}

/// Runs the build; returns the ID (`sha256:...`) of the image the engine made.
pub async fn run(
    engine: &Engine,
    mode: &Mode,
    params: &Params,
    ctx: ContextSpec,
    plan: &Plan,
    progress: &dyn Progress,
) -> Result<String, BuildError> {
    let query = query(&ctx, params, mode);
    let context_dir = ctx.dir.clone();
    let (body, writer) = context::stream(ctx);
    let body = StreamBody::new(body.map(|chunk| chunk.map(Frame::data)));
    let mut req = http::Request::post(format!("{}?{query}", engine.path("/build")))
        .header(http::header::CONTENT_TYPE, "application/x-tar");
    if mode == &Mode::Classic && !params.credentials.is_empty() {
        req = req.header("X-Registry-Config", registry_config(&params.credentials));
    }
    let req = req.body(body).map_err(|e| engine_error(engine, e.to_string()))?;
    let response =
        engine.dialer.send(req).await.map_err(|e| engine_error(engine, format!("sending the build: {e}")))?;
    let status = response.status();
    let mut incoming = response.into_body();
    if !status.is_success() {
        let bytes = incoming.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        return Err(engine_error(engine, format!("the build was refused ({status}): {}", error_message(&bytes))));
    }
    let mut buildkit = BuildkitLog::default();
    let mut classic = ClassicLog::default();
    let mut image_id = None;
    let mut failure = None;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| engine_error(engine, format!("reading the build's progress: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        buf.extend_from_slice(&data);
        let consumed = {
            let mut messages = serde_json::Deserializer::from_slice(&buf).into_iter::<Message>();
            loop {
                match messages.next() {
                    Some(Ok(m)) => match handle(m, &mut buildkit, &mut classic, progress) {
                        Some(Outcome::Built(id)) => image_id = Some(id),
                        Some(Outcome::Failed(message)) => failure = Some(message),
                        None => {}
                    },
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => {
                        return Err(engine_error(engine, format!("the engine sent a message that is not JSON: {e}")));
                    }
                    None => break,
                }
            }
            messages.byte_offset()
        };
        buf.drain(..consumed);
        if buf.len() > MAX_MESSAGE {
            return Err(engine_error(engine, "the engine sent a message over 64 MiB".into()));
        }
    }
    // A context that could not be read explains a failed build better than what the engine made of it.
    match writer.await {
        Ok(Ok(skipped)) if !skipped.is_empty() => {
            progress
                .warning(&format!("not sent to the engine (not a file, directory or link): {}", skipped.join(", ")));
        }
        Ok(Err(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(BuildError::io("sending the build context", context_dir, e));
        }
        _ => {}
    }
    if let Some(message) = failure {
        let failed = match mode {
            Mode::BuildKit { .. } => buildkit.failed(),
            Mode::Classic => classic.failed(progress),
        };
        return Err(step_error(plan, failed, message));
    }
    image_id.ok_or_else(|| engine_error(engine, "the build ended without naming the image it made".into()))
}

/// Takes one message: prints progress, and returns the image ID or the failure when it says so.
fn handle(
    m: Message,
    buildkit: &mut BuildkitLog,
    classic: &mut ClassicLog,
    progress: &dyn Progress,
) -> Option<Outcome> {
    if m.error.is_some() || m.error_detail.is_some() {
        let message = m.error_detail.and_then(|d| d.message).or(m.error).unwrap_or_default();
        return Some(Outcome::Failed(message));
    }
    if let Some(text) = &m.stream {
        classic.update(text, progress);
        // Engines before API 1.30 name the image only in this line.
        if let Some(id) = text.trim().strip_prefix("Successfully built ") {
            return Some(Outcome::Built(id.trim().to_string()));
        }
    }
    match (m.id.as_deref(), m.aux) {
        (Some("moby.buildkit.trace"), Some(serde_json::Value::String(b64))) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()).ok()?;
            let status = <bollard_buildkit_proto::moby::buildkit::v1::StatusResponse as prost::Message>::decode(
                bytes.as_slice(),
            )
            .ok()?;
            buildkit.update(status, progress);
            None
        }
        (_, Some(serde_json::Value::Object(aux))) => {
            aux.get("ID").and_then(|id| id.as_str()).map(|id| Outcome::Built(id.to_string()))
        }
        _ => None,
    }
}

/// The error for a failed build: at the Dockerfile line of the step that failed, when it can be told.
fn step_error(plan: &Plan, failed: Option<FailedStep>, message: String) -> BuildError {
    let message = message.trim().to_string();
    let located = failed.as_ref().and_then(|f| failure::locate(plan, f).map(|site| (site, f.tail.clone())));
    match located {
        Some((site, tail)) => {
            BuildError::Step { file: plan.label.clone(), line: site.line, instruction: site.instruction, message, tail }
        }
        None => BuildError::EngineBuild { message, tail: failed.map(|f| f.tail).unwrap_or_default() },
    }
}

fn engine_error(engine: &Engine, message: String) -> BuildError {
    BuildError::Engine { endpoint: engine.endpoint(), message }
}

/// The engine's `{"message": ...}` error body, or the body itself.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct E {
        message: String,
    }
    match serde_json::from_slice::<E>(body) {
        Ok(e) => e.message,
        Err(_) => String::from_utf8_lossy(body).trim().chars().take(500).collect(),
    }
}

/// The `/build` query string.
fn query(ctx: &ContextSpec, p: &Params, mode: &Mode) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("dockerfile", &ctx.dockerfile_name);
    for t in &p.tags {
        q.append_pair("t", t);
    }
    if !p.build_args.is_empty() {
        q.append_pair("buildargs", &json(&p.build_args));
    }
    if !p.labels.is_empty() {
        q.append_pair("labels", &json(&p.labels));
    }
    if !p.cache_from.is_empty() {
        q.append_pair("cachefrom", &json(&p.cache_from));
    }
    if let Some(t) = &p.target {
        q.append_pair("target", t);
    }
    if let Some(platform) = &p.platform {
        q.append_pair("platform", &platform.to_string());
    }
    if p.pull {
        q.append_pair("pull", "1");
    }
    if p.no_cache {
        q.append_pair("nocache", "1");
    }
    if let Some(n) = &p.network {
        q.append_pair("networkmode", n);
    }
    q.append_pair("rm", "1");
    q.append_pair("forcerm", "1");
    match mode {
        Mode::BuildKit { session } => {
            q.append_pair("version", "2");
            q.append_pair("session", session);
        }
        Mode::Classic => {
            q.append_pair("version", "1");
        }
    }
    q.finish()
}

/// JSON for the query values that are JSON (maps and lists of strings, which always serialise).
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// `X-Registry-Config`: base64url of `{"HOST": {"username", "password", "serveraddress"}}`, as the docker CLI
/// sends it for the classic builder's pulls.
fn registry_config(credentials: &BTreeMap<String, Credentials>) -> http::HeaderValue {
    let map: BTreeMap<&str, serde_json::Value> = credentials
        .iter()
        .map(|(host, c)| {
            let entry = if c.username == "<token>" {
                serde_json::json!({ "identitytoken": c.password.expose(), "serveraddress": host })
            } else {
                serde_json::json!({ "username": c.username, "password": c.password.expose(), "serveraddress": host })
            };
            (host.as_str(), entry)
        })
        .collect();
    let encoded = base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&map).unwrap_or_default());
    crate::registry::sensitive_header(&encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Collect;
    use crate::secret::Secret;

    fn messages(json: &str) -> (Vec<Option<String>>, Vec<String>) {
        let out = Collect::default();
        let (mut b, mut c) = (BuildkitLog::default(), ClassicLog::default());
        let results = serde_json::Deserializer::from_str(json)
            .into_iter::<Message>()
            .map(|m| match handle(m.unwrap(), &mut b, &mut c, &out) {
                Some(Outcome::Built(id)) => Some(format!("built {id}")),
                Some(Outcome::Failed(m)) => Some(format!("failed {m}")),
                None => None,
            })
            .collect();
        (results, out.lines())
    }

    #[test]
    fn classic_messages_print_and_name_the_image() {
        let (r, lines) = messages(
            r#"{"stream":"Step 1/2 : FROM busybox\n"}
               {"stream":" ---\u003e abc\n"}{"aux":{"ID":"sha256:0123"}}
               {"stream":"Successfully built 0123\n"}"#,
        );
        assert_eq!(r, vec![None, None, Some("built sha256:0123".into()), Some("built 0123".into())]);
        assert_eq!(lines[0], "info: Step 1/2 : FROM busybox");
    }

    #[test]
    fn buildkit_traces_decode_and_errors_end_the_build() {
        use bollard_buildkit_proto::moby::buildkit::v1::{StatusResponse, Vertex};
        let status = StatusResponse {
            vertexes: vec![Vertex {
                digest: "d".into(),
                name: "[1/2] FROM x".into(),
                started: Some(Default::default()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let b64 = base64::engine::general_purpose::STANDARD.encode(prost::Message::encode_to_vec(&status));
        let (r, lines) = messages(&format!(
            r#"{{"id":"moby.buildkit.trace","aux":"{b64}"}}
               {{"id":"moby.image.id","aux":{{"ID":"sha256:feed"}}}}
               {{"errorDetail":{{"message":"executor failed running [/bin/sh -c false]: exit code: 1"}},"error":"x"}}"#
        ));
        assert_eq!(
            r,
            vec![
                None,
                Some("built sha256:feed".into()),
                Some("failed executor failed running [/bin/sh -c false]: exit code: 1".into())
            ]
        );
        assert_eq!(lines, vec!["info: #1 [1/2] FROM x"]);
    }

    #[test]
    fn the_query_says_what_docker_build_would() {
        let ctx = ContextSpec {
            dir: ".".into(),
            matcher: Default::default(),
            ignore_file: None,
            dockerfile_name: "sub/Dockerfile".into(),
            outside_dockerfile: None,
            files: true,
        };
        let p = Params {
            tags: vec!["a:1".into(), "a:2".into()],
            build_args: BTreeMap::from([("V".into(), "1 2".into())]),
            target: Some("final".into()),
            platform: Some(Platform::new("linux", "arm64", None)),
            pull: true,
            network: Some("none".into()),
            cache_from: vec!["r/a:cache".into()],
            ..Params::default()
        };
        let q = query(&ctx, &p, &Mode::BuildKit { session: "s1".into() });
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        let get = |k: &str| pairs.iter().filter(|(key, _)| key == k).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
        assert_eq!(get("dockerfile"), ["sub/Dockerfile"]);
        assert_eq!(get("t"), ["a:1", "a:2"]);
        assert_eq!(get("buildargs"), [r#"{"V":"1 2"}"#]);
        assert_eq!(get("cachefrom"), [r#"["r/a:cache"]"#]);
        assert_eq!(get("platform"), ["linux/arm64"]);
        assert_eq!((get("pull"), get("networkmode"), get("target")), (vec!["1"], vec!["none"], vec!["final"]));
        assert_eq!((get("version"), get("session")), (vec!["2"], vec!["s1"]));
        assert!(get("nocache").is_empty() && get("labels").is_empty());
    }

    #[test]
    fn registry_config_is_base64url_json_and_marked_sensitive() {
        let creds = BTreeMap::from([("127.0.0.1:5000".to_string(), Credentials::new("u", Secret::new("p+/?")))]);
        let h = registry_config(&creds);
        assert!(h.is_sensitive());
        let json = base64::engine::general_purpose::URL_SAFE.decode(h.as_bytes()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["127.0.0.1:5000"]["password"], "p+/?");
        assert_eq!(v["127.0.0.1:5000"]["serveraddress"], "127.0.0.1:5000");
    }
}

//! The repository's own data for the OCI labels (name, description, web URL, license, default branch): from
//! `GET /repos/{owner}/{repo}` through octocrab (the only I/O in `meta`), or what the environment gives.

use std::time::Duration;

use serde_json::Value;

use super::{GitContext, MetaError};
use crate::secret::Secret;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepoData {
    pub name: String,
    pub description: Option<String>,
    pub html_url: String,
    /// The license's SPDX id as GitHub reports it (`NOASSERTION` for a license it does not recognise).
    pub license_spdx: Option<String>,
    pub default_branch: Option<String>,
}

impl RepoData {
    /// Without the API: the name and `GITHUB_SERVER_URL/GITHUB_REPOSITORY`, and the payload's default branch.
    pub fn fallback(ctx: &GitContext) -> RepoData {
        let repository = ctx.repository.trim_matches('/');
        RepoData {
            name: repository.rsplit('/').next().unwrap_or_default().to_string(),
            html_url: if repository.is_empty() {
                String::new()
            } else {
                format!("{}/{}", ctx.server_url.trim_end_matches('/'), repository)
            },
            default_branch: ctx
                .payload
                .pointer("/repository/default_branch")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..RepoData::default()
        }
    }

    /// From the REST API's repository object (missing or null fields are empty).
    pub fn from_api_json(v: &Value) -> RepoData {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        RepoData {
            name: s("/name").unwrap_or_default(),
            description: s("/description"),
            html_url: s("/html_url").unwrap_or_default(),
            license_spdx: s("/license/spdx_id").filter(|l| !l.is_empty()),
            default_branch: s("/default_branch"),
        }
    }
}

/// `GET /repos/{owner}/{repo}` with `api_url` as the base (GitHub Enterprise Server works), with the token if
/// there is one.
pub async fn fetch_repo(api_url: &str, token: Option<&Secret>, full_name: &str) -> Result<RepoData, MetaError> {
    let err = |message: String| MetaError::Api { repository: full_name.to_string(), message };
    let (owner, name) = full_name
        .split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| err("not an `owner/repo` name".into()))?;
    let mut builder = octocrab::Octocrab::builder()
        .base_uri(api_url)
        .map_err(|e| err(format!("the API URL `{api_url}` is not valid: {e}")))?
        .set_connect_timeout(Some(Duration::from_secs(5)))
        .set_read_timeout(Some(Duration::from_secs(10)));
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        builder = builder.personal_token(t.expose().to_string());
    }
    let client = builder.build().map_err(|e| err(chain(&e)))?;
    let route = format!("/repos/{owner}/{name}");
    let value: Value = client.get(route, None::<&()>).await.map_err(|e| err(octocrab_message(&e)))?;
    Ok(RepoData::from_api_json(&value))
}

fn octocrab_message(e: &octocrab::Error) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            format!("{} (HTTP {}): give the workflow `permissions: contents: read`", source.message, source.status_code)
        }
        other => chain(other),
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let more = c.to_string();
        if !s.contains(&more) {
            s = format!("{s}: {more}");
        }
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn from_the_api_object() {
        let r = RepoData::from_api_json(&json!({
            "name": "Hello-World", "description": null, "html_url": "https://github.com/octocat/Hello-World",
            "license": {"spdx_id": "MIT"}, "default_branch": "main"
        }));
        assert_eq!(r.name, "Hello-World");
        assert_eq!(r.description, None);
        assert_eq!(r.license_spdx.as_deref(), Some("MIT"));
        assert_eq!(r.default_branch.as_deref(), Some("main"));
        assert_eq!(RepoData::from_api_json(&json!({"license": null})), RepoData::default());
    }

    #[test]
    fn fallback_from_the_environment() {
        let vars: BTreeMap<String, String> =
            [("GITHUB_REPOSITORY", "Octo-Org/App"), ("GITHUB_SERVER_URL", "https://ghe.example.com/")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let ctx = GitContext::from_vars(&vars, Some(json!({"repository": {"default_branch": "trunk"}})));
        let r = RepoData::fallback(&ctx);
        assert_eq!(r.name, "App");
        assert_eq!(r.html_url, "https://ghe.example.com/Octo-Org/App");
        assert_eq!(r.default_branch.as_deref(), Some("trunk"));
        assert_eq!(RepoData::fallback(&GitContext::default()).html_url, "");
    }

    #[tokio::test]
    async fn fetch_refuses_a_bad_name_without_io() {
        for bad in ["noslash", "/x", "a/b/c", "a/"] {
            let e = fetch_repo("http://127.0.0.1:9", None, bad).await;
            assert!(matches!(e, Err(MetaError::Api { .. })), "{bad}");
        }
    }

    #[tokio::test]
    async fn fetch_reads_the_repository_from_a_local_server() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else { return };
        let Ok(addr) = listener.local_addr() else { return };
        let server = tokio::spawn(async move {
            let Ok((mut sock, _)) = listener.accept().await else { return String::new() };
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let body = r#"{"name":"App","description":"d","html_url":"https://github.com/o/App","license":{"spdx_id":"MIT"},"default_branch":"main"}"#;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            String::from_utf8_lossy(&buf[..n]).to_string()
        });
        let token = Secret::new("t0k3n");
        let r = fetch_repo(&format!("http://{addr}"), Some(&token), "o/App").await;
        let request = server.await.unwrap_or_default();
        assert!(request.starts_with("GET /repos/o/App "), "{request}");
        assert!(request.to_ascii_lowercase().contains("authorization: bearer t0k3n"), "{request}");
        let r = r.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.description.as_deref(), Some("d"));
        assert_eq!(r.default_branch.as_deref(), Some("main"));
    }
}

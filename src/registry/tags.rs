//! Listing a repository's tags (`GET /v2/NAME/tags/list`, following `Link` pages) and deleting a manifest by
//! digest (`DELETE /v2/NAME/manifests/DIGEST`): what a merge needs to find the images a workflow run pushed by
//! digest and to remove its hand-off tags afterwards.

use reqwest::Method;
use reqwest::header::{HeaderMap, LINK};

use super::transport::{Body, Target, read_limited};
use super::{Action, RegistryClient, RegistryError};
use crate::image::{Digest, ImageName};

/// A tag list page is small JSON; anything larger is not one.
const MAX_PAGE: usize = 8 << 20;
/// Pages followed at most (10,000 tags at the page size asked for).
const MAX_PAGES: usize = 100;

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    Yes,
    /// The registry does not delete through its API (distribution without `storage.delete.enabled`, ghcr.io):
    /// its answer, to say so.
    Unsupported(String),
}

impl RegistryClient {
    /// Every tag of `name`, in the registry's order; empty for a repository that does not exist yet.
    pub async fn list_tags(&self, name: &ImageName) -> Result<Vec<String>, RegistryError> {
        let t = Target::new(name, Action::Pull);
        let mut url = Some(self.url(name, "tags/list?n=100")?);
        let mut tags = Vec::new();
        let mut pages = 0;
        while let Some(page_url) = url.take().filter(|_| pages < MAX_PAGES) {
            pages += 1;
            let what = format!("listing the tags of {name}");
            let (page, next) = self.retrying(&what, || self.tags_page(&t, &page_url)).await?;
            tags.extend(page);
            url = next;
        }
        Ok(tags)
    }

    /// One page of tags and the next page's URL.
    async fn tags_page(&self, t: &Target, url: &url::Url) -> Result<(Vec<String>, Option<url::Url>), RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let timeout = Some(self.inner.options.timeout);
        let resp = self.send(t, Method::GET, url.clone(), HeaderMap::new(), Body::Empty, timeout).await?;
        if resp.status().as_u16() == 404 {
            return Ok((Vec::new(), None));
        }
        if !resp.status().is_success() {
            return Err(self.error_for(t, "its tag list", &Method::GET, url, resp).await);
        }
        let next = resp
            .headers()
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link)
            .and_then(|link| url.join(&link).ok());
        let registry = &t.name.registry;
        let body = read_limited(resp, MAX_PAGE, registry, "a tag list", true).await?;
        let page: Page = serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
            registry: registry.clone(),
            message: format!("the tag list of {} is not the distribution API's JSON: {e}", t.name),
        })?;
        Ok((page.tags.unwrap_or_default(), next))
    }

    /// Deletes the manifest `digest` of `name` (and with it every tag that points at it, nothing else).
    pub async fn delete_manifest(&self, name: &ImageName, digest: &Digest) -> Result<Deleted, RegistryError> {
        let t = Target::new(name, Action::Delete);
        let url = self.url(name, &format!("manifests/{digest}"))?;
        let what = format!("deleting manifest {digest} of {name}");
        self.retrying(&what, || async {
            let timeout = Some(self.inner.options.timeout);
            let resp = self.send(&t, Method::DELETE, url.clone(), HeaderMap::new(), Body::Empty, timeout).await?;
            match resp.status().as_u16() {
                200..=299 | 404 => Ok(Deleted::Yes),
                400 | 405 | 501 => {
                    let status = resp.status();
                    let body = read_limited(resp, 64 << 10, &name.registry, "an error", true).await.unwrap_or_default();
                    let said = super::parse_envelope(&body).into_iter().next().map(|e| e.message).unwrap_or_default();
                    Ok(Deleted::Unsupported(if said.is_empty() {
                        status.to_string()
                    } else {
                        format!("{status}: {said}")
                    }))
                }
                _ => Err(self.error_for(&t, &format!("manifest {digest}"), &Method::DELETE, &url, resp).await),
            }
        })
        .await
    }
}

/// The target of `rel="next"` in a `Link` header (`</v2/a/tags/list?last=x&n=100>; rel="next"`).
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::super::ClientOptions;
    use super::super::testing::{FakeRegistry, Reply, fast_client};
    use super::*;

    #[tokio::test]
    async fn tags_are_listed_across_link_pages() {
        let fake = FakeRegistry::start(|seen| {
            let (tags, link) = if seen.target.contains("last=b") {
                (r#"["c"]"#, None)
            } else {
                (r#"["a","b"]"#, Some(r#"</v2/x/y/tags/list?n=2&last=b>; rel="next""#))
            };
            let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
            headers.extend(link.map(|l| ("Link".to_string(), l.to_string())));
            Reply::Respond { status: 200, headers, body: format!(r#"{{"name":"x/y","tags":{tags}}}"#).into_bytes() }
        })
        .await;
        let client = fast_client(ClientOptions::default());
        let name = ImageName::new(&fake.host(), "x/y").unwrap();
        assert_eq!(client.list_tags(&name).await.unwrap(), vec!["a", "b", "c"]);
        assert_eq!(fake.seen().len(), 2);
    }

    #[tokio::test]
    async fn a_registry_that_cannot_delete_says_so_instead_of_failing() {
        let fake = FakeRegistry::start(|_| Reply::Respond {
            status: 405,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}"#.to_vec(),
        })
        .await;
        let client = fast_client(ClientOptions::default());
        let name = ImageName::new(&fake.host(), "x/y").unwrap();
        let got = client.delete_manifest(&name, &Digest::of(b"m")).await.unwrap();
        assert_eq!(got, Deleted::Unsupported("405 Method Not Allowed: The operation is unsupported.".into()));
        assert_eq!(fake.seen()[0].method, "DELETE");
    }

    #[test]
    fn link_headers_give_the_next_page() {
        assert_eq!(
            next_link(r#"</v2/a/b/tags/list?last=v9&n=100>; rel="next""#).as_deref(),
            Some("/v2/a/b/tags/list?last=v9&n=100")
        );
        assert_eq!(next_link(r#"<https://x/prev>; rel="prev", </next>; rel=next"#).as_deref(), Some("/next"));
        assert_eq!(next_link(r#"</prev>; rel="prev""#), None);
    }
}

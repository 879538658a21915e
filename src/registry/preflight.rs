//! Checking, before anything is built, that the credentials may push to a repository: one upload session opened
//! and cancelled (`POST /v2/NAME/blobs/uploads/`, then `DELETE` of its location), which asks the registry, and a
//! token service, for exactly what a push needs. A refusal then costs seconds, not the build.

use reqwest::Method;
use reqwest::header::HeaderMap;

use super::transport::{Body, Target};
use super::upload::resolve_location;
use super::{Action, RegistryClient, RegistryError};
use crate::image::ImageName;

impl RegistryClient {
    /// Whether these credentials may push to `name`: `Ok` when the registry opened an upload session (cancelled
    /// at once), else the error a push would have met, worded with the fix.
    pub async fn check_push(&self, name: &ImageName) -> Result<(), RegistryError> {
        let t = Target::new(name, Action::Push);
        let what = format!("checking that {name} accepts pushes");
        self.retrying(&what, || async {
            let url = self.url(name, "blobs/uploads/")?;
            let timeout = Some(self.inner.options.timeout);
            let resp = self.send(&t, Method::POST, url.clone(), HeaderMap::new(), Body::Empty, timeout).await?;
            if !resp.status().is_success() {
                return Err(self.error_for(&t, "an upload session", &Method::POST, &url, resp).await);
            }
            if let Some(location) = resolve_location(&url, resp.headers()) {
                self.cancel_upload(&t, location).await;
            }
            Ok(())
        })
        .await
    }
}

//! The `docker` target: the image loaded into the Docker Engine ([`crate::builder::engine::load`]).

use super::InstallError;
use crate::builder::engine::{Endpoint, Engine};
use crate::image::Image;

/// Loads `image` (its blobs local files or bytes) into the engine at `endpoint`, named `repo_tags`; returns the
/// image ID.
pub(super) async fn load(
    endpoint: &Endpoint,
    image: &Image,
    repo_tags: &[String],
    reference: &str,
) -> Result<String, InstallError> {
    let fail = |message: String| InstallError::Engine {
        reference: reference.to_string(),
        endpoint: endpoint.to_string(),
        message,
    };
    let engine = Engine::connect(endpoint.clone()).await.map_err(|e| fail(e.to_string()))?;
    crate::builder::engine::load(&engine, image, repo_tags, &Default::default()).await.map_err(fail)
}

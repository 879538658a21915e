//! The `docker` target: the image streamed into the Docker Engine's `POST /images/load` as a docker archive,
//! written as the engine reads it (a pipe between the tar writer and the request body, so no archive is ever
//! held in memory or on disk), then read back by its config digest, which is the image ID the engine must
//! report.

use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

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
    let (mut writer, reader) = tokio::io::duplex(256 << 10);
    let (tar_image, tags) = (image.clone(), repo_tags.to_vec());
    let producer = tokio::spawn(async move {
        let path = std::path::Path::new("docker load stream");
        let written = crate::docker_archive::write_tar(&mut writer, path, &tar_image, &tags, None).await;
        let _ = writer.shutdown().await;
        written
    });
    let options = bollard::query_parameters::ImportImageOptionsBuilder::new().quiet(true).build();
    let body = tokio_util::io::ReaderStream::new(reader);
    let mut answers = engine.docker.import_image_stream(options, body, None);
    let mut refused = None;
    while let Some(answer) = answers.next().await {
        if let Err(e) = answer {
            refused = Some(e.to_string());
            break;
        }
    }
    drop(answers);
    let produced = producer.await.map_err(|e| fail(format!("the archive writer stopped: {e}")))?;
    if let Some(message) = refused {
        return Err(fail(message));
    }
    produced.map_err(|e| fail(e.to_string()))?;
    let id = image.config_blob().descriptor.digest;
    let inspected = engine
        .docker
        .inspect_image(id.as_str())
        .await
        .map_err(|e| fail(format!("the engine answered the load but does not have {id}: {e}")))?;
    match inspected.id {
        Some(found) if found == id.as_str() => Ok(found),
        other => Err(fail(format!("the engine reports the image as {other:?}, not {id}"))),
    }
}

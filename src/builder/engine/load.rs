//! Loading an image into the engine: a docker archive streamed into `POST /images/load` as it is written (a pipe
//! between the tar writer and the request body, so no archive is ever held in memory or on disk), then read back
//! by its config digest, which is the image ID the engine must report.
//!
//! Layers the engine holds already (`held`) are listed in the archive's `manifest.json` but not sent: the engine
//! takes a layer it has by its chain ID without reading the file (Engine 20.10's `docker load` does; measured).

use std::collections::BTreeSet;

use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

use super::client::Engine;
use crate::image::{Digest, Image};

/// Loads `image` (its blobs local files or bytes, but for the `held` layers) into `engine`, named `repo_tags`;
/// returns the image ID. The error is the engine's answer, or what stopped the archive.
pub async fn load(
    engine: &Engine,
    image: &Image,
    repo_tags: &[String],
    held: &BTreeSet<Digest>,
) -> Result<String, String> {
    let (mut writer, reader) = tokio::io::duplex(256 << 10);
    let (tar_image, tags, held) = (image.clone(), repo_tags.to_vec(), held.clone());
    let producer = tokio::spawn(async move {
        let path = std::path::Path::new("docker load stream");
        let written = crate::docker_archive::write_tar(&mut writer, path, &tar_image, &tags, None, &held).await;
        let _ = writer.shutdown().await;
        written
    });
    let options = bollard::query_parameters::ImportImageOptionsBuilder::new().quiet(true).build();
    let body = tokio_util::io::ReaderStream::new(reader);
    let mut answers = engine.docker.import_image_stream(options, body, None);
    let mut refused = None;
    while let Some(answer) = answers.next().await {
        match answer {
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
            // The engine reports a failed load inside a 200 answer.
            Ok(info) => {
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    refused = Some(e);
                    break;
                }
            }
        }
    }
    drop(answers);
    let produced = producer.await.map_err(|e| format!("the archive writer stopped: {e}"))?;
    if let Some(message) = refused {
        return Err(message);
    }
    produced.map_err(|e| e.to_string())?;
    let id = image.config_blob().descriptor.digest;
    let inspected = engine
        .docker
        .inspect_image(id.as_str())
        .await
        .map_err(|e| format!("the engine answered the load but does not have {id}: {e}"))?;
    match inspected.id {
        Some(found) if found == id.as_str() => Ok(found),
        other => Err(format!("the engine reports the image as {other:?}, not {id}")),
    }
}

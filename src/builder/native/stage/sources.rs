//! Where `COPY --from=` reads: an earlier stage, completed with its registry base's files when the sources are
//! not all among what the stage's own instructions wrote, or an image reference. Either way the needed image is
//! downloaded into the work directory and unpacked once per build.

use super::*;
use crate::builder::native::image_fs::unpack_image;
use crate::image::Layer;

impl<R: BaseResolver> Evaluator<'_, R> {
    /// The source `--from=<from>` names for `sources`.
    pub(super) async fn copy_source(
        &self,
        from: &str,
        sources: &[String],
        platform: &Platform,
    ) -> Result<Source, String> {
        let Some((tree, description, base)) = self.copy_source_stage(from)? else {
            return self.copy_source_image(from, platform).await;
        };
        if tree.complete || base.is_empty() || sources.iter().all(|s| tree.holds_file(s)) {
            return Ok(Source::Stage { tree, name: from.to_string(), description });
        }
        // What the stage's base holds, under what the stage wrote (its own layers never delete anything).
        let below = self.unpacked(&base, &format!("--from={from}: the base of {description}")).await?;
        let mut merged = (*below).clone();
        merged.overlay(&tree);
        Ok(Source::Stage { tree: Arc::new(merged), name: from.to_string(), description })
    }

    /// `--from=<image>`: the image for the stage's platform, unpacked, copied from as from a stage.
    async fn copy_source_image(&self, from: &str, platform: &Platform) -> Result<Source, String> {
        let r = ImageRef::parse(from)
            .map_err(|e| format!("--from={from}: no stage has that name, and it is not an image reference: {e}"))?;
        let description = format!("the image {r}");
        let key = format!("{r} {platform}");
        if let Some(tree) = self.env.base_files.image(&key).await {
            return Ok(Source::Stage { tree, name: from.to_string(), description });
        }
        let image = self
            .bases
            .resolve(&r, platform)
            .await
            .map_err(|e| format!("--from={from}: no stage has that name, and the image cannot be used: {e}"))?;
        let tree = self.unpacked(image.layers(), &format!("--from={r}")).await?;
        self.env.base_files.remember_image(key, tree.clone()).await;
        Ok(Source::Stage { tree, name: from.to_string(), description })
    }

    /// `layers` downloaded and unpacked into a complete tree, once per build.
    async fn unpacked(&self, layers: &[Layer], what: &str) -> Result<Arc<FsTree>, String> {
        let key: Vec<&str> = layers.iter().map(|l| l.blob.descriptor.digest.as_str()).collect();
        let key = key.join(" ");
        if let Some(tree) = self.env.base_files.image(&key).await {
            return Ok(tree);
        }
        self.env.progress.info(&format!("{what}: downloading and unpacking {} layers", layers.len()));
        let work_dir = self.env.opts.work_dir.clone();
        let mut files = Vec::new();
        for layer in layers {
            let file = self.env.base_files.layer_file(self.bases, layer, &work_dir).await;
            files.push(file.map_err(|e| format!("{what}: {e}"))?);
        }
        let tree = tokio::task::spawn_blocking(move || unpack_image(&files, &work_dir))
            .await
            .map_err(|e| format!("{what}: the layer reader stopped: {e}"))?
            .map_err(|e| format!("{what}: unpacking: {e}"))?;
        let tree = Arc::new(tree);
        self.env.base_files.remember_image(key, tree.clone()).await;
        Ok(tree)
    }

    /// `--from=`: an earlier stage by name or index, as its own files, description and registry base layers;
    /// `None` when no stage has that name (an image, then).
    #[allow(clippy::type_complexity)]
    fn copy_source_stage(&self, from: &str) -> Result<Option<(Arc<FsTree>, String, Vec<Layer>)>, String> {
        if self.lexer.process_word(from, &NoVars).ok().as_deref() != Some(from) {
            return Err(format!(
                "--from={from}: variable expansion is not supported for --from; define a stage with FROM using an ARG from the global scope and copy from it"
            ));
        }
        let Some(idx) = self.stage_for_from(from) else { return Ok(None) };
        match self.done.get(idx).and_then(Option::as_ref) {
            Some(d) if idx < self.current => Ok(Some((d.fs.clone(), d.description.clone(), base_layers(&d.image)))),
            _ => Err(format!("--from={from}: cannot copy from a stage that is not defined before the current one")),
        }
    }
}

//! A build split between the two builders (`builder: auto`): the engine builds the Dockerfile up to the target
//! stage's last `RUN`, and the native builder lays the instructions after it (the `COPY . .` of the application,
//! `ENV`, `USER`, `CMD`, ...) on the engine's image, as it lays a Dockerfile without `RUN` on a registry base.
//!
//! That is the shape of most single-stage Dockerfiles (dependencies installed by `RUN`, then the application's
//! own files copied). The engine then never receives, copies, commits or exports the application's files: when
//! the lines it builds read nothing from the context, only the Dockerfile is sent. Those layers are written
//! natively: reproducible, compressed once and kept in the layer cache by content.
//!
//! The split is taken only where the native builder does exactly what BuildKit does: a single platform, and
//! after the last `RUN` only `COPY` from the context and metadata instructions (no `ADD`, no `COPY --from`). The
//! native layers are loaded into the engine ahead, as plain tars, and then the result under the build's tags
//! (its config alone: the engine holds every layer by then), so a later step can `docker run` it and the
//! `imageid` output is the engine's image ID, as for a build made wholly by the engine. `builder: engine`
//! builds everything on the engine.
//!
//! What differs from a build made wholly by BuildKit is what differs between the native builder and BuildKit on
//! a registry base: files dated `source_date_epoch` rather than the context's times, and no empty layer for a
//! `WORKDIR` that exists already.

use std::collections::BTreeSet;

use super::engine::{self, Engine};
use super::native;
use super::{BaseResolver, BuildError, BuildOptions, Compression, LayerSink, Plan};
use crate::dockerfile::{CopyArgs, Dockerfile, InstructionKind};
use crate::image::{Artifact, Digest, Image};
use crate::progress::{Progress, Quiet};

/// Where a build splits: the target stage's instructions from `from` on are the native builder's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The first instruction (index in the target stage) the native builder lays.
    pub from: usize,
    /// The engine builds the Dockerfile's lines 1 to this (the end of the last `RUN`).
    pub engine_lines: usize,
    /// The line of the first instruction laid natively.
    pub native_line: usize,
    /// Whether the engine's lines read the build context (`COPY`/`ADD` from it, `RUN --mount=type=bind` without
    /// `from`); when not, the engine gets the Dockerfile alone.
    pub context: bool,
}

impl Split {
    /// The split of `df`'s `target` for a build of `platforms` platforms, `needed` being the stages it needs;
    /// `None` when the whole build is the engine's.
    pub(crate) fn find(df: &Dockerfile, target: usize, needed: &[bool], platforms: usize) -> Option<Split> {
        if platforms > 1 {
            return None;
        }
        let stage = &df.stages[target];
        let last_run = stage.instructions.iter().rposition(|i| matches!(i.kind, InstructionKind::Run(_)))?;
        let tail = &stage.instructions[last_run + 1..];
        let native = |kind: &InstructionKind| match kind {
            InstructionKind::Copy(c) => c.from.is_none(),
            InstructionKind::Run(_) | InstructionKind::Add(_) => false,
            _ => true,
        };
        if !tail.iter().any(|i| matches!(i.kind, InstructionKind::Copy(_))) || !tail.iter().all(|i| native(&i.kind)) {
            return None;
        }
        let engine_part = df.stages.iter().enumerate().filter(|(i, _)| needed[*i]).flat_map(|(i, s)| {
            let n = if i == target { last_run + 1 } else { s.instructions.len() };
            s.instructions[..n].iter()
        });
        let context = engine_part.clone().any(|i| reads_context(&i.kind));
        Some(Split {
            from: last_run + 1,
            engine_lines: stage.instructions[last_run].end_line,
            native_line: tail[0].line,
            context,
        })
    }
}

/// Whether an instruction reads the build context: `COPY`/`ADD` without `--from` (heredocs alone excepted), or a
/// `RUN --mount` of type bind (the default) without `from=`. Mounts written with variables count as reading it.
fn reads_context(kind: &InstructionKind) -> bool {
    match kind {
        InstructionKind::Copy(c) | InstructionKind::Add(c) => {
            let CopyArgs { from, sources, .. } = c;
            from.is_none() && !sources.is_empty()
        }
        InstructionKind::Run(r) => {
            r.flags.iter().filter_map(|f| f.trim_start_matches('-').strip_prefix("mount=")).any(|m| {
                let opts: Vec<(&str, &str)> = m.split(',').map(|kv| kv.split_once('=').unwrap_or((kv, ""))).collect();
                let get = |k: &str| opts.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| *v);
                match get("type").unwrap_or("bind") {
                    "cache" | "tmpfs" | "secret" | "ssh" => false,
                    "bind" => get("from").is_none_or(str::is_empty),
                    _ => true,
                }
            })
        }
        _ => false,
    }
}

/// Builds `plan`'s target split at `split`: the engine's part, then the native part on its image, then the result
/// loaded into the engine under `opts.engine.tags`. Every new layer goes to `sink` as it is written.
pub(crate) async fn build_with_sink<R: BaseResolver>(
    opts: &BuildOptions,
    plan: &Plan,
    split: &Split,
    bases: &R,
    progress: &dyn Progress,
    sink: Option<LayerSink>,
) -> Result<Artifact, BuildError> {
    let text = std::fs::read_to_string(&opts.dockerfile)
        .map_err(|e| BuildError::io("reading the Dockerfile", &opts.dockerfile, e))?;
    let head: String = text.split_inclusive('\n').take(split.engine_lines).collect();
    tokio::fs::create_dir_all(&opts.work_dir)
        .await
        .map_err(|e| BuildError::io("creating the work directory", &opts.work_dir, e))?;
    let dockerfile = opts.work_dir.join("Dockerfile.engine");
    std::fs::write(&dockerfile, head).map_err(|e| BuildError::io("writing the engine's Dockerfile", &dockerfile, e))?;
    progress.info(&format!(
        "split build: the engine builds {file} lines 1-{} (to its last RUN){}; the native builder lays lines {}- on \
         the engine's image",
        split.engine_lines,
        if split.context { "" } else { " and gets the Dockerfile alone, as those lines read nothing from the context" },
        split.native_line,
        file = plan.label,
    ));
    let tail = native::Tail::new(opts, plan, split.from, progress)?;
    // With gzip, the same tail as plain tars for the engine: laid at once, it is loaded without waiting for gzip,
    // and the engine has nothing to decompress (outside the layer cache: nothing is pushed from it). zstd is
    // fast enough both ways that laying the tail twice costs more than it saves (bench/RESULTS.md).
    let plain_opts = (opts.compression == Compression::Gzip).then(|| BuildOptions {
        compression: Compression::Uncompressed,
        cache_dir: None,
        ..opts.clone()
    });
    let plain_tail = plain_opts.as_ref().map(|o| native::Tail::new(o, plan, split.from, progress)).transpose()?;
    // One connection for the build ahead, the final load and the cleanup after a failure, made when first needed.
    let engine = tokio::sync::OnceCell::new();
    let connected = || engine.get_or_try_init(|| async { Engine::connect(opts.engine.endpoint.clone()).await });
    let (built_tx, mut built_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ahead_tx, ahead_rx) = tokio::sync::oneshot::channel::<()>();
    // The engine's part, then the tail on the exported image. Its layers are found in the build's memo where the
    // build ahead wrote the same.
    let ahead_sink = sink.clone();
    let engine_then_tail = async {
        let built = {
            // The sender lives as long as the engine's part: a build that fails before it has an image ends
            // `ahead` too.
            let part = engine::Part { dockerfile, context: split.context, built: Some(built_tx) };
            engine::build_part(opts, plan, &part, bases, progress, sink.clone()).await?
        };
        let Artifact::Image(built) = built else {
            return Err(BuildError::Options("the engine built several platforms for a split build".into()));
        };
        // What the final load needs of the engine's image: its ID (to remove it once superseded) and its layers.
        let built_id = built.config_blob().descriptor.digest.to_string();
        let engine_layers: BTreeSet<Digest> = layer_digests(&built).collect();
        let _ = ahead_rx.await;
        let image = tail.build(built, bases, progress, sink).await?;
        Ok((built_id, engine_layers, image))
    };
    // While the engine's image is exported, the tail is built ahead on the settings the engine reports: in the
    // build's compression, its layers going to the push as they are written (the build on the exported image
    // finds them in the memo and the push sends each blob once), and loaded into the engine (as plain tars laid
    // beside it, or once it is built), so the engine's copy is ready early too. Quietly: the build on the exported
    // image says what it does. Gives the image loaded ahead and its diff_ids.
    let ahead = async {
        let id = built_rx.recv().await?;
        let engine = connected().await.ok()?;
        let settings = engine.image_settings(&id).await.ok()?;
        let below = settings.layers().len();
        let engine_held: Vec<Digest> = layer_digests(&settings).collect();
        // The engine holds the layers below the tail; a tail layer whose blob is the same as one of them (a plain
        // tar's digest is its diff_id) is sent all the same, as the engine lacks it at its place in the chain.
        let load_ahead = |image: Image| async move {
            let native: BTreeSet<Digest> =
                image.layers().get(below..)?.iter().map(|l| l.blob.descriptor.digest.clone()).collect();
            let held: BTreeSet<Digest> = engine_held.into_iter().filter(|d| !native.contains(d)).collect();
            let id = engine::load(engine, &image, &[], &held).await.ok()?;
            Some((id, image.layers().iter().map(|l| l.diff_id.clone()).collect::<Vec<Digest>>()))
        };
        let for_push = async {
            let built = tail.build(settings.clone(), &super::ScratchOnly, &Quiet, ahead_sink).await.ok();
            let _ = ahead_tx.send(());
            built
        };
        match &plain_tail {
            Some(plain_tail) => {
                let for_engine = async {
                    load_ahead(plain_tail.build(settings.clone(), &super::ScratchOnly, &Quiet, None).await.ok()?).await
                };
                tokio::join!(for_push, for_engine).1
            }
            None => load_ahead(for_push.await?).await,
        }
    };
    let (done, loaded_ahead) = tokio::join!(engine_then_tail, ahead);
    let (built_id, mut held, image) = match done {
        Ok(done) => done,
        Err(e) => {
            if let (Some((id, _)), Ok(engine)) = (&loaded_ahead, connected().await) {
                engine.remove_image(id).await;
            }
            return Err(e);
        }
    };
    // The layers loaded ahead are the engine's too, as deep as the build on the exported image laid the same
    // tars in the same order (the engine knows a layer by its chain: it and every layer below it).
    if let Some((_, ahead)) = &loaded_ahead {
        let same = image.layers().iter().zip(ahead).take_while(|(l, d)| &l.diff_id == *d).count();
        held.extend(layer_digests(&image).take(same));
    }
    let tags = &opts.engine.tags;
    let named = if tags.is_empty() { String::new() } else { format!(" as {}", tags.join(", ")) };
    let mut superseded = vec![built_id];
    superseded.extend(loaded_ahead.map(|(id, _)| id));
    let loaded = match connected().await {
        Ok(engine) => load(engine, opts, &image, &held, &superseded).await,
        Err(e) => Err(e.to_string()),
    };
    match loaded {
        Ok(id) => progress.info(&format!("loaded {id} into the engine{named}")),
        // The copy in the engine is for later steps; the image itself is built and goes on to its targets.
        Err(e) => progress.warning(&format!(
            "the engine did not take the built image ({e}), so it does not hold it{named}; a later step can pull \
             it from where it is pushed, or use `builder: engine` to build it all on the engine"
        )),
    }
    Ok(Artifact::Image(image))
}

fn layer_digests(image: &Image) -> impl Iterator<Item = Digest> + '_ {
    image.layers().iter().map(|l| l.blob.descriptor.digest.clone())
}

/// Loads the split build's `image` into the engine, which holds the `held` layers already: the archive carries
/// only the others and the config. Engine 20.10 takes it so (measured here); an engine that wants every layer in
/// the archive refuses it, and the step says so and goes on. Then the `superseded` images (the engine's build of
/// the lines up to RUN, the tail loaded ahead), whose layers the loaded image holds, are removed, so no untagged
/// image is left behind.
async fn load(
    engine: &Engine,
    opts: &BuildOptions,
    image: &Image,
    held: &BTreeSet<Digest>,
    superseded: &[String],
) -> Result<String, String> {
    let id = engine::load(engine, image, &opts.engine.tags, held).await?;
    for old in superseded.iter().filter(|old| **old != id) {
        engine.remove_image(old).await;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile;

    fn split(text: &str, platforms: usize) -> Option<Split> {
        let df = dockerfile::parse(text, "Dockerfile").unwrap();
        let target = df.stages.len() - 1;
        let needed = super::super::plan::needed_stages(&df, target, &Default::default());
        Split::find(&df, target, &needed, platforms)
    }

    #[test]
    fn the_copy_after_the_last_run_is_native_and_the_engine_gets_no_context() {
        let s = split(
            "FROM node:22\nWORKDIR /app\nRUN <<EOF\nnpm ci\nEOF\nENV NODE_ENV=production\nCOPY . .\nUSER node\n\
             CMD [\"node\", \"server.js\"]\n",
            1,
        );
        assert_eq!(s, Some(Split { from: 2, engine_lines: 5, native_line: 6, context: false }));
    }

    #[test]
    fn the_engine_gets_the_context_when_its_lines_read_it() {
        for (line, reads) in [
            ("COPY package.json ./", true),
            ("ADD https://example.com/x /x", true),
            ("COPY --from=node:22 /usr/local/bin/node /n", false),
            ("COPY <<EOF /etc/x\nhi\nEOF", false),
            ("RUN --mount=type=cache,target=/root/.npm npm ci", false),
            ("RUN --mount=type=secret,id=npm npm ci", false),
            ("RUN --mount=target=/src make", true),
            ("RUN --mount=type=bind,source=go.sum,target=go.sum go mod download", true),
            ("RUN --mount=type=bind,from=deps,target=/d ls", false),
        ] {
            let text = format!("FROM deps\nFROM node:22\n{line}\nRUN make\nCOPY . .\n");
            let s = split(&text, 1).unwrap_or_else(|| panic!("{line}: no split"));
            assert_eq!(s.context, reads, "{line}");
        }
    }

    #[test]
    fn no_split_where_the_native_builder_would_not_do_what_buildkit_does() {
        for text in [
            // No RUN in the target: the RUN is in a stage the target copies from.
            "FROM golang AS build\nRUN go build\nFROM scratch\nCOPY --from=build /app /app\n",
            // Nothing to copy after the last RUN: nothing to gain.
            "FROM alpine\nCOPY . /src\nRUN make\nCMD [\"/app\"]\n",
            // ADD (archives, URLs, git) and COPY --from after the last RUN stay the engine's.
            "FROM alpine\nRUN apk add x\nADD app.tar.gz /app\n",
            "FROM alpine AS a\nRUN make\nFROM alpine\nRUN apk add x\nCOPY --from=a /a /a\n",
            "FROM alpine\nRUN apk add x\nCOPY --from=busybox /bin/busybox /bin/\nCOPY . .\n",
        ] {
            assert_eq!(split(text, 1), None, "{text}");
        }
        // Several platforms: the engine builds each whole.
        assert_eq!(split("FROM alpine\nRUN apk add x\nCOPY . .\n", 2), None);
        assert!(split("FROM alpine\nRUN apk add x\nCOPY . .\n", 1).is_some());
    }

    #[test]
    fn the_engine_part_of_a_later_stage_counts_every_needed_stage() {
        // The target is FROM a stage that copies from the context: the engine needs it.
        let s = split("FROM alpine AS deps\nCOPY lock /lock\nRUN install\nFROM deps\nRUN more\nCOPY . /app\n", 1);
        assert_eq!(s, Some(Split { from: 1, engine_lines: 5, native_line: 6, context: true }));
    }
}

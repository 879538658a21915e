//! Evaluates stages in order, as BuildKit's dispatcher does: only the stages the target needs, each from its base
//! (scratch, a registry image through the resolver, or an earlier stage), ARG and ENV state for expansion, base
//! ONBUILD triggers first, then the stage's instructions. COPY, ADD and WORKDIR write layers; the rest edit the
//! config (`config.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

mod args;
mod layers;
mod sources;

pub(crate) use args::global_args;
pub use args::platform_of;

use crate::builder::native::base_files::BaseFiles;
use crate::builder::native::cache::{Cached, Hit, LayerStore};
use crate::builder::native::config;
use crate::builder::native::context::Context;
use crate::builder::native::copy::{CopyJob, Policy, Source, mkdir_entries};
use crate::builder::native::fs::FsTree;
use crate::builder::plan;
use crate::builder::{BaseResolver, BuildError, BuildOptions};
use crate::dockerfile::shell::{ExpansionBudget, Lexer, NoVars};
use crate::dockerfile::{self, Arg, CopyArgs, Dockerfile, Instruction, InstructionKind};
use crate::image::{BlobSource, History, Image, ImageConfig, ImageRef, Layer, Platform};
use crate::progress::Progress;

/// What every stage of one build shares.
pub(crate) struct Env<'a> {
    pub opts: &'a BuildOptions,
    pub df: &'a Dockerfile,
    pub file: &'a str,
    pub ctx: Arc<Context>,
    pub progress: &'a dyn Progress,
    pub created: &'a str,
    pub now: i64,
    pub layers: Arc<LayerStore>,
    /// Gets each layer of the stages the final image is built from, when committed.
    pub layer_sink: Option<&'a crate::builder::LayerSink>,
    /// Files and layers read from images (`--chown=NAME`, `COPY --from`), once per build.
    pub base_files: &'a BaseFiles,
}

/// A stage being evaluated.
pub(crate) struct State {
    pub image: Image,
    pub fs: FsTree,
    /// Variables for expansion: the base's Env, then ARG and ENV values as they are set.
    pub vars: BTreeMap<String, String>,
    /// ONBUILD expressions this stage declares (triggers for a stage built FROM it).
    pub onbuild: Vec<String>,
    /// Whether this stage set CMD (an ENTRYPOINT after that keeps it).
    pub cmd_set: bool,
    /// "stage `build` (FROM golang:1.22)", for messages.
    pub description: String,
    pub base_workdir: Option<String>,
    /// The layers to read the base's files from (`--chown=NAME`) when they are not just its registry layers: a
    /// stage resumed on the engine's image reads that image's layers.
    pub below: Option<Vec<Layer>>,
}

impl State {
    pub(crate) fn edit(&mut self, f: impl FnOnce(&mut ImageConfig)) {
        self.map_image(|image| image.with_config(f));
    }

    /// Replaces the image with what `f` makes of it (the image methods take it by value).
    fn map_image(&mut self, f: impl FnOnce(Image) -> Image) {
        let image = std::mem::replace(&mut self.image, Image::from_parts(ImageConfig::default(), Vec::new()));
        self.image = f(image);
    }
}

struct Done {
    image: Image,
    fs: Arc<FsTree>,
    vars: BTreeMap<String, String>,
    onbuild: Vec<String>,
    description: String,
    base_workdir: Option<String>,
}

/// A stage the engine built up to its last `RUN` (`builder::split`): the native builder goes on from instruction
/// `from` on the engine's image instead of building the stage from its base.
pub(crate) struct Resume {
    pub stage: usize,
    pub from: usize,
    pub image: Image,
}

pub(crate) struct Evaluator<'a, R> {
    env: Env<'a>,
    bases: &'a R,
    global: BTreeMap<String, String>,
    used: BTreeSet<String>,
    done: Vec<Option<Done>>,
    lexer: Lexer,
    /// What this build's expansions may add to their inputs in all (issue 13: a fixed memory ceiling).
    budget: ExpansionBudget,
    platform: Platform,
    /// The stage being evaluated.
    current: usize,
    /// The stages whose layers are the final image's: the target and the stages it is FROM, transitively.
    in_image: Vec<bool>,
    resume: Option<Resume>,
}

/// The layers of `image` that are its registry base's (the stage's own are files in the work directory).
fn base_layers(image: &Image) -> Vec<Layer> {
    image.layers().iter().filter(|l| matches!(l.blob.source, BlobSource::Registry(_))).cloned().collect()
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

impl<'a, R: BaseResolver> Evaluator<'a, R> {
    pub(crate) fn new(env: Env<'a>, bases: &'a R, platform: Platform) -> Self {
        let lexer = Lexer::new(env.df.escape);
        let done = env.df.stages.iter().map(|_| None).collect();
        Evaluator {
            env,
            bases,
            global: BTreeMap::new(),
            used: BTreeSet::new(),
            done,
            lexer,
            budget: ExpansionBudget::default(),
            platform,
            current: 0,
            in_image: Vec::new(),
            resume: None,
        }
    }

    /// Goes on from `resume` rather than building its stage (and the stages before it) from the start.
    pub(crate) fn resuming(mut self, resume: Resume) -> Self {
        self.resume = Some(resume);
        self
    }

    /// Builds the target stage; returns its image and the ARG names that consumed build-args.
    pub(crate) async fn run(mut self, target: usize) -> Result<(Image, BTreeSet<String>), BuildError> {
        self.global =
            global_args(self.env.df, self.env.opts, &self.platform, &self.env.opts.host_platform, &mut self.used)
                .map_err(|(line, m)| self.err(line, "ARG", m))?;
        // Which builder runs a Dockerfile with RUN was chosen before (`builder::choose`); a RUN that still gets
        // here (one only this platform's ARGs make needed) is refused in `dispatch`.
        let needed = plan::needed_stages(self.env.df, target, &self.global);
        self.in_image = plan::image_chain(self.env.df, target, &self.global);
        let resumed = self.resume.as_ref().map(|r| r.stage);
        for (i, need) in needed.iter().enumerate().take(target + 1) {
            // A resumed stage needs no other: the engine built what came before, and the rest copies no stage.
            if *need && resumed.is_none_or(|r| r == i) {
                let done = self.stage(i).await?;
                self.done[i] = Some(done);
            }
        }
        let done =
            self.done[target].take().ok_or_else(|| BuildError::Options("the target stage was not built".into()))?;
        let labels = self.env.opts.labels.clone();
        let created = self.env.created.to_string();
        let image = done.image.with_config(|c| {
            c.created = Some(created);
            if !labels.is_empty() {
                c.container_mut().labels.get_or_insert_with(BTreeMap::new).extend(labels);
            }
        });
        Ok((image, self.used))
    }

    fn err(&self, line: usize, instruction: &str, message: String) -> BuildError {
        BuildError::Instruction { file: self.env.file.to_string(), line, instruction: instruction.to_string(), message }
    }

    fn expand(&self, word: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
        self.lexer.process_word_within(word, vars, &self.budget).map_err(|e| e.to_string())
    }

    /// The stage `--from=<from>` names: by name, else by index (not checked against the number of stages).
    fn stage_for_from(&self, from: &str) -> Option<usize> {
        plan::stage_for_from(self.env.df, from)
    }

    async fn stage(&mut self, i: usize) -> Result<Done, BuildError> {
        let df = self.env.df;
        let s = &df.stages[i];
        self.current = i;
        let label = s.name.clone().unwrap_or_else(|| format!("stage-{i}"));
        let base = self.expand(&s.base, &self.global).map_err(|m| self.err(s.line, "FROM", format!("FROM {m}")))?;
        let platform = match &s.platform {
            None => self.platform.clone(),
            Some(p) => {
                let e = self
                    .expand(p, &self.global)
                    .map_err(|m| self.err(s.line, "FROM", format!("FROM --platform: {m}")))?;
                Platform::parse(&e).ok_or_else(|| {
                    self.err(
                        s.line,
                        "FROM",
                        format!("FROM --platform={e}: write a platform as os/arch[/variant], for example linux/arm64"),
                    )
                })?
            }
        };
        let lower = base.to_ascii_lowercase();
        let parent = plan::stage_named(df, i, &lower);
        let resume = self.resume.take().filter(|r| r.stage == i);
        let skip = resume.as_ref().map_or(0, |r| r.from);
        let (mut st, triggers) = if let Some(r) = resume {
            (self.resumed(s, &label, r)?, Vec::new())
        } else if lower == "scratch" {
            // As BuildKit's empty image: WORKDIR / (PATH is added by `fresh`).
            let image = Image::scratch(&platform).with_config(|c| c.container_mut().working_dir = Some("/".into()));
            (self.fresh(image, FsTree::new(true), format!("stage `{label}` (FROM scratch)")), Vec::new())
        } else if let Some(j) = parent {
            let d = self.done[j].as_ref().ok_or_else(|| BuildError::Options(format!("stage {j} was not built")))?;
            let st = State {
                image: d.image.clone(),
                fs: (*d.fs).clone(),
                vars: d.vars.clone(),
                onbuild: Vec::new(),
                cmd_set: false,
                description: d.description.clone(),
                base_workdir: d.base_workdir.clone(),
                below: None,
            };
            (st, d.onbuild.clone())
        } else {
            let r = ImageRef::parse(&base).map_err(|e| self.err(s.line, "FROM", format!("FROM {e}")))?;
            self.env.progress.info(&format!("[{label}] FROM {r} ({platform})"));
            let image = self.bases.resolve(&r, &platform).await?;
            let triggers = image.config().config.as_ref().and_then(|c| c.on_build.clone()).unwrap_or_default();
            (self.fresh(image, FsTree::new(false), format!("stage `{label}` (FROM {base})")), triggers)
        };
        if skip == 0 {
            st.edit(|c| {
                if let Some(cc) = c.config.as_mut() {
                    cc.on_build = None;
                }
            });
        }
        for text in &triggers {
            let ins = dockerfile::parse_instruction(
                text,
                &format!("{}: ONBUILD trigger from {base}", self.env.file),
                s.line,
            )?;
            self.env.progress.info(&format!("[{label}] ONBUILD {text}"));
            self.dispatch(&mut st, &ins).await.map_err(|e| match e {
                BuildError::Run { file, line } => BuildError::Instruction {
                    file,
                    line,
                    instruction: "FROM".into(),
                    message: format!(
                        "FROM {base}: the base runs the ONBUILD trigger `{text}`, and RUN needs a container runtime; \
                         the native builder does not run commands: set `builder: engine` to build this Dockerfile through the Docker Engine"
                    ),
                },
                other => other,
            })?;
        }
        for (n, ins) in s.instructions.iter().enumerate().skip(skip) {
            self.env.progress.info(&format!("[{label} {}/{}] {}", n + 1, s.instructions.len(), ins.original));
            self.dispatch(&mut st, ins).await?;
        }
        Ok(Done {
            image: st.image,
            fs: Arc::new(st.fs),
            vars: st.vars,
            onbuild: st.onbuild,
            description: st.description,
            base_workdir: st.base_workdir,
        })
    }

    /// A stage state over a base image: PATH ensured (as BuildKit does), variables from its Env.
    fn fresh(&self, image: Image, fs: FsTree, description: String) -> State {
        let base_workdir = image.config().config.as_ref().and_then(|c| c.working_dir.clone()).filter(|w| !w.is_empty());
        let mut st = State {
            image,
            fs,
            vars: BTreeMap::new(),
            onbuild: Vec::new(),
            cmd_set: false,
            description,
            base_workdir,
            below: None,
        };
        if st.image.config().env("PATH").is_none() && st.image.config().os != "windows" {
            st.edit(|c| c.set_env("PATH", DEFAULT_PATH));
        }
        let env = st.image.config().config.as_ref().and_then(|c| c.env.clone()).unwrap_or_default();
        for e in env {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            st.vars.insert(k.to_string(), v.to_string());
        }
        st
    }

    /// The state of stage `s` where the engine's build of it stopped: the engine's image (its config holds what
    /// ENV, WORKDIR, USER and the other instructions before `from` set; its layers are where `--chown=NAME` reads
    /// `/etc/passwd`), the ARG values those instructions declared (an ENV of the same name wins, as in BuildKit),
    /// its own ONBUILD expressions, and whether it set CMD.
    fn resumed(&mut self, s: &dockerfile::Stage, label: &str, r: Resume) -> Result<State, BuildError> {
        let on_build = r.image.config().config.as_ref().and_then(|c| c.on_build.clone()).unwrap_or_default();
        let below = r.image.layers().to_vec();
        let last = s.instructions[..r.from].last().map_or(s.line, |i| i.end_line);
        let description = format!("stage `{label}` (the engine's build of it, to line {last})");
        let mut st = self.fresh(r.image, FsTree::new(false), description);
        st.onbuild = on_build;
        st.below = Some(below);
        let env: BTreeSet<String> = st.vars.keys().cloned().collect();
        for ins in &s.instructions[..r.from] {
            match &ins.kind {
                InstructionKind::Cmd(_) => st.cmd_set = true,
                InstructionKind::Arg(args) => {
                    for a in args.iter().filter(|a| !env.contains(&a.name)) {
                        let value = self.arg_value(a, &st.vars).map_err(|m| self.err(ins.line, "ARG", m))?;
                        if let Some(v) = value {
                            st.vars.insert(a.name.clone(), v);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(st)
    }

    fn history(&self, created_by: String) -> History {
        History {
            created: Some(self.env.created.to_string()),
            created_by: Some(created_by),
            comment: Some(HISTORY_COMMENT.into()),
            ..History::default()
        }
    }

    /// Puts `layer` on top of the stage's image, with its history entry.
    fn commit_layer(&self, st: &mut State, layer: crate::image::Layer, created_by: String) {
        let h = self.history(created_by);
        self.env.progress.debug(&format!(
            "layer {} ({} bytes compressed, diff_id {})",
            layer.blob.descriptor.digest, layer.blob.descriptor.size, layer.diff_id
        ));
        if let Some(sink) = self.env.layer_sink.filter(|_| self.in_image.get(self.current) == Some(&true)) {
            // A closed sink (the publisher stopped on an error) is not the build's concern.
            let _ = sink.send(layer.blob.clone().into());
        }
        st.map_image(|image| image.with_layer(layer, h));
    }

    /// Commits a layer from the [`LayerStore`], saying when it was not written.
    fn commit_cached(&self, st: &mut State, cached: Cached, created_by: String) {
        if let Some(w) = &cached.warning {
            self.env.progress.warning(w);
        }
        let from = match cached.hit {
            None => None,
            Some(Hit::Cache) => Some("from the cache"),
            Some(Hit::Build) => Some("already written by this build"),
        };
        if let Some(from) = from {
            self.env.progress.info(&format!(
                "{}: unchanged, layer {} {from}",
                created_by.trim_end_matches(" # buildkit"),
                cached.layer.blob.descriptor.digest
            ));
        }
        self.commit_layer(st, cached.layer, created_by);
    }

    fn commit_empty(&self, st: &mut State, created_by: String) {
        let h = self.history(created_by);
        st.map_image(|image| image.with_empty_history(h));
    }

    async fn dispatch(&mut self, st: &mut State, ins: &Instruction) -> Result<(), BuildError> {
        let line = ins.line;
        let kw = ins.kind.name();
        match &ins.kind {
            InstructionKind::Run(_) => Err(BuildError::Run { file: self.env.file.to_string(), line }),
            InstructionKind::Arg(args) => self.arg(st, args).map_err(|m| self.err(line, kw, m)),
            InstructionKind::Env(kvs) => {
                let mut pairs = Vec::new();
                for kv in kvs {
                    let k = self.expand(&kv.key, &st.vars).map_err(|m| self.err(line, kw, format!("ENV {m}")))?;
                    let v = self.expand(&kv.value, &st.vars).map_err(|m| self.err(line, kw, format!("ENV {m}")))?;
                    pairs.push((k, v));
                }
                for (k, v) in &pairs {
                    st.vars.insert(k.clone(), v.clone());
                    st.edit(|c| c.set_env(k, v));
                }
                let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.commit_empty(st, format!("ENV {}", text.join(" ")));
                Ok(())
            }
            InstructionKind::Copy(c) => self.copy(st, c, false, line).await,
            InstructionKind::Add(c) => self.copy(st, c, true, line).await,
            InstructionKind::Workdir(p) => self.workdir(st, p, line).await,
            other => {
                let history = config::apply(st, other, &self.lexer, &self.budget)
                    .map_err(|m| self.err(line, kw, format!("{kw} {m}")))?;
                if let Some(h) = history {
                    self.commit_empty(st, h);
                }
                Ok(())
            }
        }
    }

    fn arg(&mut self, st: &mut State, args: &[Arg]) -> Result<(), String> {
        let mut parts = Vec::new();
        for a in args {
            match self.arg_value(a, &st.vars)? {
                Some(v) => {
                    parts.push(format!("{}={v}", a.name));
                    st.vars.insert(a.name.clone(), v);
                }
                None => parts.push(a.name.clone()),
            }
        }
        self.commit_empty(st, format!("ARG {}", parts.join(" ")));
        Ok(())
    }

    /// The value `ARG a` gives: the build argument, else its default expanded in `vars`, else the global ARG's
    /// value (none: declared without a value). Marks the build argument used.
    fn arg_value(&mut self, a: &Arg, vars: &BTreeMap<String, String>) -> Result<Option<String>, String> {
        self.used.insert(a.name.clone());
        Ok(match (self.env.opts.build_args.get(&a.name), &a.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(d)) => Some(self.expand(d, vars).map_err(|m| format!("ARG {m}"))?),
            (None, None) => self.global.get(&a.name).cloned(),
        })
    }
}

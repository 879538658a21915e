//! What a build needs, read once from the Dockerfile before any work starts: the target stage, the stages it
//! depends on (through FROM and `COPY --from`, as BuildKit skips the others, RUN and all), the first `RUN` among
//! them, and the instructions only BuildKit runs. [`choose`] turns that into the builder to use and the reason,
//! which the publish step logs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::error::one_line;
use super::native::stage::global_args;
use super::split::Split;
use super::{BuildError, BuildOptions};
use crate::dockerfile::shell::Lexer;
use crate::dockerfile::{self, CopyArgs, Dockerfile, InstructionKind};

/// The `builder` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuilderKind {
    /// Native when the needed stages have no `RUN`, else the engine.
    #[default]
    Auto,
    Native,
    Engine,
}

impl BuilderKind {
    pub const NAMES: [&'static str; 3] = ["auto", "native", "engine"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(name: &str) -> Option<BuilderKind> {
        match name {
            "auto" => Some(BuilderKind::Auto),
            "native" => Some(BuilderKind::Native),
            "engine" => Some(BuilderKind::Engine),
            _ => None,
        }
    }
}

/// A `RUN` the target needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSite {
    pub line: usize,
    /// The instruction as written (continuations joined).
    pub text: String,
}

/// An instruction the classic builder cannot run (`RUN --mount`, heredocs, `COPY --link`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildkitOnly {
    pub line: usize,
    pub feature: &'static str,
}

/// The Dockerfile and what the target needs of it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub dockerfile: Dockerfile,
    /// How errors name the Dockerfile: relative to the context when inside it.
    pub label: String,
    pub target: usize,
    /// `needed[i]`: stage `i` is built for the target.
    pub needed: Vec<bool>,
    /// The first `RUN` of the needed stages, in file order.
    pub first_run: Option<RunSite>,
    /// Every needed instruction only BuildKit runs, in file order.
    pub buildkit_only: Vec<BuildkitOnly>,
    /// Where `auto` splits the build between the engine and the native builder, if it does ([`Split`]).
    pub split: Option<Split>,
}

impl Plan {
    /// Reads and parses the Dockerfile `opts` names and works out what its target needs. Stage names in FROM
    /// lines are expanded with the build-args and the host's platform ARGs.
    pub fn read(opts: &BuildOptions) -> Result<Plan, BuildError> {
        let text = std::fs::read_to_string(&opts.dockerfile)
            .map_err(|e| BuildError::io("reading the Dockerfile", &opts.dockerfile, e))?;
        let label = display_name(&opts.context, &opts.dockerfile);
        let df = dockerfile::parse(&text, &label)?;
        let target = target_index(&df, opts.target.as_deref())?;
        let host = &opts.host_platform;
        let global = global_args(&df, opts, host, host, &mut BTreeSet::new()).unwrap_or_default();
        let needed = needed_stages(&df, target, &global);
        let lexer = Lexer::new(df.escape);
        for (i, stage) in df.stages.iter().enumerate().filter(|(i, _)| needed[*i]) {
            let base = lexer.process_word(&stage.base, &global).unwrap_or_default().to_ascii_lowercase();
            if stage.name.as_deref() == Some(base.as_str()) && stage_named(&df, i, &base).is_none() {
                return Err(BuildError::Instruction {
                    file: label.clone(),
                    line: stage.line,
                    instruction: "FROM".into(),
                    message: format!(
                        "FROM {base} AS {base}: a stage cannot be built FROM itself; name an earlier stage, or the \
                         image in full (`FROM docker.io/library/{base} AS {base}`) if an image is meant"
                    ),
                });
            }
        }
        let needed_instructions =
            || df.stages.iter().zip(&needed).filter(|(_, n)| **n).flat_map(|(s, _)| s.instructions.iter());
        let first_run = needed_instructions()
            .find(|i| matches!(i.kind, InstructionKind::Run(_)))
            .map(|i| RunSite { line: i.line, text: i.original.clone() });
        let mut buildkit_only = Vec::new();
        for (stage, _) in df.stages.iter().zip(&needed).filter(|(_, n)| **n) {
            if stage.platform.as_deref().is_some_and(|p| p.contains("BUILDPLATFORM") || p.contains("TARGET")) {
                buildkit_only.push(BuildkitOnly { line: stage.line, feature: "FROM --platform=$BUILDPLATFORM" });
            }
        }
        for ins in needed_instructions() {
            if let Some(feature) = buildkit_feature(&ins.kind) {
                buildkit_only.push(BuildkitOnly { line: ins.line, feature });
            }
        }
        buildkit_only.sort_by_key(|f| f.line);
        let split = first_run.as_ref().and_then(|_| Split::find(&df, target, &needed, opts.platforms.len()));
        Ok(Plan { dockerfile: df, label, target, needed, first_run, buildkit_only, split })
    }
}

/// The first BuildKit-only feature an instruction uses, if any.
fn buildkit_feature(kind: &InstructionKind) -> Option<&'static str> {
    match kind {
        InstructionKind::Run(r) => {
            let flag = |name: &str| r.flags.iter().any(|f| f.trim_start_matches('-').starts_with(name));
            if flag("mount") {
                Some("RUN --mount")
            } else if !r.heredocs.is_empty() {
                Some("a heredoc in RUN")
            } else if flag("network") || flag("security") || flag("device") {
                Some("RUN --network/--security/--device")
            } else {
                None
            }
        }
        InstructionKind::Copy(c) | InstructionKind::Add(c) => copy_feature(c),
        _ => None,
    }
}

fn copy_feature(c: &CopyArgs) -> Option<&'static str> {
    if !c.heredocs.is_empty() {
        Some("a heredoc in COPY/ADD")
    } else if c.link {
        Some("COPY --link")
    } else if c.chmod.is_some() {
        Some("COPY --chmod")
    } else if c.parents {
        Some("COPY --parents")
    } else if !c.exclude.is_empty() {
        Some("COPY --exclude")
    } else if c.checksum.is_some() {
        Some("ADD --checksum")
    } else {
        None
    }
}

/// The builder a publish uses, and why, in words for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderChoice {
    /// `Native` or `Engine`, never `Auto`.
    pub kind: BuilderKind,
    pub reason: String,
    /// For `Engine` under `auto`: the engine builds up to the target's last RUN and the native builder the rest.
    pub split: Option<Split>,
}

impl BuilderChoice {
    /// The builder as the log names it: `native`, `engine`, or `engine, then native`.
    pub fn name(&self) -> &'static str {
        match (self.kind, &self.split) {
            (BuilderKind::Engine, Some(_)) => "engine, then native",
            (kind, _) => kind.name(),
        }
    }
}

/// Picks the builder for `plan` as `wanted` asks. `native` with a needed `RUN` is the native builder's refusal:
/// an error naming the line and the way out.
pub fn choose(plan: &Plan, wanted: BuilderKind) -> Result<BuilderChoice, BuildError> {
    let at = |r: &RunSite| format!("{}:{}", plan.label, r.line);
    match (wanted, &plan.first_run) {
        (BuilderKind::Native, Some(run)) => Err(BuildError::Run { file: plan.label.clone(), line: run.line }),
        (BuilderKind::Native, None) => Ok(BuilderChoice {
            kind: BuilderKind::Native,
            reason: "`builder: native` was asked for".into(),
            split: None,
        }),
        (BuilderKind::Engine, _) => Ok(BuilderChoice {
            kind: BuilderKind::Engine,
            reason: "`builder: engine` was asked for".into(),
            split: None,
        }),
        (BuilderKind::Auto, Some(run)) => {
            let mut reason = format!(
                "the target needs `{}` ({}), and RUN needs a container runtime",
                one_line(&run.text, 60),
                at(run)
            );
            if let Some(split) = &plan.split {
                reason.push_str(&format!(
                    "; after its last RUN the target has only COPY and settings, laid natively from line {} on the \
                     engine's image (`builder: engine` builds it all on the engine)",
                    split.native_line
                ));
            }
            Ok(BuilderChoice { kind: BuilderKind::Engine, reason, split: plan.split.clone() })
        }
        (BuilderKind::Auto, None) => Ok(BuilderChoice {
            kind: BuilderKind::Native,
            reason: "no stage the target needs has RUN: built natively, without a daemon".into(),
            split: None,
        }),
    }
}

/// How errors name the Dockerfile: relative to the context when inside it.
pub(crate) fn display_name(context: &Path, dockerfile: &Path) -> String {
    dockerfile.strip_prefix(context).unwrap_or(dockerfile).display().to_string()
}

/// The index of the stage `target` names (the last stage when `None`).
pub(crate) fn target_index(df: &Dockerfile, target: Option<&str>) -> Result<usize, BuildError> {
    let Some(t) = target else { return Ok(df.stages.len() - 1) };
    let wanted = t.to_ascii_lowercase();
    df.stages.iter().position(|s| s.name.as_deref() == Some(wanted.as_str())).ok_or_else(|| {
        let names: Vec<&str> = df.stages.iter().filter_map(|s| s.name.as_deref()).collect();
        BuildError::Options(if names.is_empty() {
            format!("input `target`: stage `{t}` not found: no stage has a name (name one with FROM ... AS {t})")
        } else {
            format!("input `target`: stage `{t}` not found; the Dockerfile's stages are: {}", names.join(", "))
        })
    })
}

/// The latest stage before `before` named `name` (lowercase, as stage names are): the stage a FROM `name`
/// builds on.
pub(crate) fn stage_named(df: &Dockerfile, before: usize, name: &str) -> Option<usize> {
    df.stages[..before].iter().rposition(|s| s.name.as_deref() == Some(name))
}

/// The earlier stage that stage `i` is built FROM, if any (its base expanded in the global scope).
pub(crate) fn parent_stage(df: &Dockerfile, i: usize, global: &BTreeMap<String, String>) -> Option<usize> {
    let lexer = Lexer::new(df.escape);
    let base = lexer.process_word(&df.stages[i].base, global).unwrap_or_default().to_ascii_lowercase();
    stage_named(df, i, &base)
}

/// The stage `--from=<from>` names: by name, else by index (not checked against the number of stages).
pub(crate) fn stage_for_from(df: &Dockerfile, from: &str) -> Option<usize> {
    let lower = from.to_ascii_lowercase();
    df.stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str())).or_else(|| from.parse().ok())
}

/// Stages the target depends on, through FROM and `COPY --from`.
pub(crate) fn needed_stages(df: &Dockerfile, target: usize, global: &BTreeMap<String, String>) -> Vec<bool> {
    let stages = &df.stages;
    let mut needed = vec![false; stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut needed[i], true) {
            continue;
        }
        todo.extend(parent_stage(df, i, global));
        for ins in &stages[i].instructions {
            if let InstructionKind::Copy(CopyArgs { from: Some(from), .. }) = &ins.kind {
                todo.extend(stage_for_from(df, from).filter(|&n| n < stages.len()));
            }
        }
    }
    needed
}

/// The registry image the target is built on, through its FROM stages, expanded with `global`; `None` for
/// scratch (or a base that does not expand).
pub(crate) fn root_base(df: &Dockerfile, target: usize, global: &BTreeMap<String, String>) -> Option<String> {
    let lexer = Lexer::new(df.escape);
    let mut i = target;
    loop {
        let base = lexer.process_word(&df.stages[i].base, global).ok()?;
        let lower = base.to_ascii_lowercase();
        if lower == "scratch" {
            return None;
        }
        match stage_named(df, i, &lower) {
            Some(parent) => i = parent,
            None => return Some(base),
        }
    }
}

/// The target and the stages it is built FROM, transitively (not `COPY --from` sources): the stages whose
/// layers are the image's.
pub(crate) fn image_chain(df: &Dockerfile, target: usize, global: &BTreeMap<String, String>) -> Vec<bool> {
    let mut chain = vec![false; df.stages.len()];
    let mut next = Some(target);
    while let Some(i) = next.filter(|&i| !std::mem::replace(&mut chain[i], true)) {
        next = parent_stage(df, i, global);
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Platform;

    /// Options for the Dockerfile in `dir`, with the build-arg `FLAVOUR=slim`.
    fn opts(dir: &std::path::Path, target: Option<&str>) -> BuildOptions {
        BuildOptions {
            context: dir.to_path_buf(),
            dockerfile: dir.join("Dockerfile"),
            target: target.map(str::to_string),
            build_args: BTreeMap::from([("FLAVOUR".to_string(), "slim".to_string())]),
            platforms: Vec::new(),
            host_platform: Platform::new("linux", "amd64", None),
            labels: BTreeMap::new(),
            source_date_epoch: None,
            work_dir: dir.join("work"),
            cache_dir: None,
            compression: Default::default(),
            engine: Default::default(),
        }
    }

    fn plan(dockerfile: &str, target: Option<&str>) -> Plan {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        Plan::read(&opts(dir.path(), target)).unwrap()
    }

    const MULTI: &str = "ARG FLAVOUR=full\n\
        FROM scratch AS tools\nRUN make tools\n\
        FROM scratch AS build-slim\nCOPY a /a\n\
        FROM scratch AS build-full\nRUN make\n\
        FROM scratch AS test\nCOPY --from=tools /t /t\n\
        FROM build-${FLAVOUR}\nCOPY b /b\n";

    #[test]
    fn auto_picks_native_when_no_needed_stage_runs_anything() {
        // The final stage is FROM build-slim (the build-arg wins over the default): tools, build-full and test
        // are not needed, so their RUNs do not count.
        let p = plan(MULTI, None);
        assert_eq!(p.needed, vec![false, true, false, false, true]);
        assert_eq!(p.first_run, None);
        let c = choose(&p, BuilderKind::Auto).unwrap();
        assert_eq!(c.kind, BuilderKind::Native);
        assert!(c.reason.contains("no stage the target needs has RUN"), "{}", c.reason);
        assert_eq!(choose(&p, BuilderKind::Engine).unwrap().kind, BuilderKind::Engine);
    }

    #[test]
    fn auto_picks_the_engine_for_a_needed_run_and_says_which() {
        let p = plan(MULTI, Some("test"));
        assert_eq!(p.needed, vec![true, false, false, true, false], "COPY --from=tools needs tools");
        assert_eq!(p.first_run, Some(RunSite { line: 3, text: "RUN make tools".into() }));
        let c = choose(&p, BuilderKind::Auto).unwrap();
        assert_eq!(c.kind, BuilderKind::Engine);
        assert!(c.reason.contains("`RUN make tools` (Dockerfile:3)"), "{}", c.reason);
        let e = choose(&p, BuilderKind::Native).unwrap_err();
        assert!(matches!(e, BuildError::Run { line: 3, .. }), "{e:?}");
        assert!(e.to_string().contains("builder"), "the refusal names the input that lifts it: {e}");
    }

    #[test]
    fn buildkit_only_features_are_listed_with_their_lines() {
        let p = plan(
            "FROM --platform=$BUILDPLATFORM scratch AS b\nRUN --mount=type=cache,target=/c make\n\
             FROM scratch\nCOPY --link --from=b /x /x\nRUN <<EOF\necho hi\nEOF\nCOPY --chmod=755 a /a\nRUN plain\n",
            None,
        );
        let found: Vec<(usize, &str)> = p.buildkit_only.iter().map(|f| (f.line, f.feature)).collect();
        assert_eq!(
            found,
            vec![
                (1, "FROM --platform=$BUILDPLATFORM"),
                (2, "RUN --mount"),
                (4, "COPY --link"),
                (5, "a heredoc in RUN"),
                (8, "COPY --chmod")
            ]
        );
    }

    #[test]
    fn a_stage_from_itself_is_refused_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch AS a\nFROM b AS b\nCOPY x /x\n").unwrap();
        let opts = opts(dir.path(), None);
        let e = Plan::read(&opts).unwrap_err();
        assert_eq!(e.line(), Some(2));
        assert!(e.to_string().contains("cannot be built FROM itself"), "{e}");
        // An image named like a later stage is fine: `FROM b AS c` then `FROM c`.
        std::fs::write(dir.path().join("Dockerfile"), "FROM b AS c\nFROM c\n").unwrap();
        assert!(Plan::read(&opts).is_ok());
    }

    #[test]
    fn an_unknown_target_names_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let df = dockerfile::parse("FROM scratch AS a\n", "Dockerfile").unwrap();
        let e = target_index(&df, Some("nope")).unwrap_err().to_string();
        assert!(e.contains("input `target`") && e.contains("stages are: a"), "{e}");
        drop(dir);
    }
}

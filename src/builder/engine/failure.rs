//! Which Dockerfile line a failed engine step is, so the error annotation lands on it.
//!
//! BuildKit names a step `[<platform> <stage> <i>/<n>] <instruction>`: the stage's name (or `stage-N`; none in a
//! single-stage file), the step's index among the stage's steps that make a vertex (FROM, then each RUN, COPY,
//! ADD and WORKDIR), and the instruction with its variables expanded. The classic builder says
//! `Step <i>/<n> : <instruction>`, counting every instruction of the file in order: the ARGs before the first
//! FROM, then each stage's FROM and instructions.
//! The instruction text picks the line when it matches one instruction of the stage; the index decides
//! otherwise (an expanded `$VAR` makes the texts differ).

use super::progress::FailedStep;
use crate::builder::Plan;
use crate::dockerfile::InstructionKind;

/// A line of the Dockerfile and the instruction on it, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub line: usize,
    pub instruction: String,
}

/// Where `failed` is in `plan`'s Dockerfile, when it can be told.
pub fn locate(plan: &Plan, failed: &FailedStep) -> Option<Site> {
    match failed.step {
        Some(step) => locate_classic(plan, step, &failed.name),
        None => locate_buildkit(plan, &failed.name),
    }
}

fn normalize(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.split_first() {
        Some((first, rest)) => {
            let mut out = first.to_ascii_uppercase();
            for w in rest {
                out.push(' ');
                out.push_str(w);
            }
            out
        }
        None => String::new(),
    }
}

fn makes_vertex(kind: &InstructionKind) -> bool {
    matches!(
        kind,
        InstructionKind::Run(_) | InstructionKind::Copy(_) | InstructionKind::Add(_) | InstructionKind::Workdir(_)
    )
}

fn locate_buildkit(plan: &Plan, name: &str) -> Option<Site> {
    let df = &plan.dockerfile;
    let rest = name.strip_prefix('[')?;
    let (prefix, text) = rest.split_once("] ")?;
    let mut tokens: Vec<&str> = prefix.split_whitespace().collect();
    let index: usize = tokens.pop()?.split('/').next()?.trim().parse().ok()?;
    // What is left: an optional platform (it has a `/`), then the stage's name.
    let stage_token = tokens.into_iter().rfind(|t| !t.contains('/'));
    let stage = match stage_token {
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            df.stages
                .iter()
                .position(|s| s.name.as_deref() == Some(lower.as_str()))
                .or_else(|| lower.strip_prefix("stage-").and_then(|n| n.parse().ok()))?
        }
        // Only single-stage builds leave the stage out.
        None => plan.target,
    };
    let s = df.stages.get(stage)?;
    if index == 1 {
        return Some(Site { line: s.line, instruction: format!("FROM {}", s.base) });
    }
    let steps: Vec<_> = s.instructions.iter().filter(|i| makes_vertex(&i.kind)).collect();
    let wanted = normalize(text.strip_prefix("ONBUILD ").unwrap_or(text));
    let same_text: Vec<_> = steps.iter().filter(|i| normalize(&i.original) == wanted).collect();
    let ins = match same_text.as_slice() {
        [one] => **one,
        _ => *steps.get(index - 2)?,
    };
    Some(Site { line: ins.line, instruction: ins.original.clone() })
}

fn locate_classic(plan: &Plan, step: usize, text: &str) -> Option<Site> {
    // The ARGs before the first FROM are the first steps.
    let globals = &plan.dockerfile.global_args;
    if let Some(arg) = step.checked_sub(1).and_then(|i| globals.get(i)) {
        return Some(Site { line: arg.line, instruction: "ARG".into() });
    }
    let mut n = globals.len();
    for s in &plan.dockerfile.stages {
        n += 1;
        if n == step {
            return Some(Site { line: s.line, instruction: format!("FROM {}", s.base) });
        }
        for ins in &s.instructions {
            n += 1;
            if n == step {
                return Some(Site { line: ins.line, instruction: ins.original.clone() });
            }
        }
    }
    // A step number past the end (ONBUILD triggers count too): fall back to the text.
    let wanted = normalize(text);
    plan.dockerfile
        .stages
        .iter()
        .flat_map(|s| s.instructions.iter())
        .find(|i| normalize(&i.original) == wanted)
        .map(|i| Site { line: i.line, instruction: i.original.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile;

    fn plan(text: &str) -> Plan {
        let df = dockerfile::parse(text, "Dockerfile").unwrap();
        let target = df.stages.len() - 1;
        let needed = vec![true; df.stages.len()];
        let (label, first_run, buildkit_only, split) = ("Dockerfile".into(), None, Vec::new(), None);
        Plan { dockerfile: df, label, target, needed, first_run, buildkit_only, split }
    }

    fn buildkit(p: &Plan, name: &str) -> Option<usize> {
        locate(p, &FailedStep { name: name.into(), step: None, tail: Vec::new() }).map(|s| s.line)
    }

    const FILE: &str = "ARG V=1\n\
        FROM busybox AS build\n\
        ENV X=1\n\
        WORKDIR /src\n\
        RUN echo $X\n\
        RUN echo $X\n\
        FROM busybox\n\
        COPY --from=build /src /src\n\
        RUN   false\n";

    #[test]
    fn buildkit_steps_are_found_by_stage_text_and_index() {
        let p = plan(FILE);
        assert_eq!(buildkit(&p, "[stage-1 3/3] RUN false"), Some(9), "text, whitespace aside");
        assert_eq!(buildkit(&p, "[build 3/4] RUN echo 1"), Some(5), "expanded text: the index decides");
        assert_eq!(buildkit(&p, "[build 4/4] RUN echo 1"), Some(6));
        assert_eq!(buildkit(&p, "[linux/amd64 build 1/4] FROM docker.io/library/busybox"), Some(2));
        assert_eq!(buildkit(&p, "[internal] load metadata for busybox"), None);
        assert_eq!(buildkit(&p, "[nosuchstage 2/2] RUN x"), None);
        let single = plan("FROM busybox\nCOPY a /a\nRUN make\n");
        assert_eq!(buildkit(&single, "[3/3] RUN make"), Some(3));
    }

    #[test]
    fn classic_steps_count_every_instruction() {
        let p = plan(FILE);
        let at = |step, name: &str| locate(&p, &FailedStep { name: name.into(), step: Some(step), tail: Vec::new() });
        assert_eq!(at(9, "RUN false"), Some(Site { line: 9, instruction: "RUN   false".into() }));
        assert_eq!(at(2, "FROM busybox AS build").map(|s| s.line), Some(2));
        assert_eq!(at(1, "ARG V=1").map(|s| s.line), Some(1), "global ARGs come first");
        assert_eq!(at(99, "RUN false").map(|s| s.line), Some(9), "falls back to the text");
    }
}

//! Why a build failed, each message saying where (file and line) and what to do about it.

use std::path::PathBuf;

use crate::dockerfile::ParseError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),

    /// An instruction that cannot be carried out: `Dockerfile:7: COPY app.txt: not found in the build context`.
    #[error("{file}:{line}: {message}")]
    Instruction { file: String, line: usize, instruction: String, message: String },

    /// A RUN in a stage the target needs, with `builder: native`.
    #[error(
        "{file}:{line}: RUN needs a container runtime, and `builder: native` builds without one: set `builder: auto` \
         (the default) or `builder: engine` to build this Dockerfile through the Docker Engine, or run the command in \
         an earlier workflow step and COPY its output"
    )]
    Run { file: String, line: usize },

    /// A base image could not be resolved; `source` is the resolver's own error (registry, auth, platform).
    #[error("resolving the base image {base}: {source}")]
    Base {
        base: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// An ADD URL could not be fetched.
    #[error("fetching {url}: {message}")]
    Fetch { url: String, message: String },

    /// Reading the Dockerfile, the context or the ignore file, or writing a layer.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Options that do not fit the Dockerfile (an unknown target, a bad platform).
    #[error("{0}")]
    Options(String),

    /// A step the engine ran failed (a RUN that exited non-zero, a COPY of a missing file): the line, the
    /// engine's message and the last lines of the step's output.
    #[error("{file}:{line}: `{}` failed: {message}{}", shorten(instruction), tail_text(tail))]
    Step { file: String, line: usize, instruction: String, message: String, tail: Vec<String> },

    /// The engine's build failed somewhere no Dockerfile line explains (resolving a base, the frontend).
    #[error("the Docker Engine's build failed: {message}{}", tail_text(tail))]
    EngineBuild { message: String, tail: Vec<String> },

    /// The engine could not be talked to as expected (it answered, but not with a build).
    #[error("the Docker Engine at {endpoint}: {message}")]
    Engine { endpoint: String, message: String },

    /// The Dockerfile needs a container runtime and no engine answered.
    #[error(
        "{file}:{line}: `{}` needs a container runtime, and no Docker Engine answered at {endpoint} ({cause}): run the \
         step on a runner with Docker (GitHub's Ubuntu runners have it), point DOCKER_HOST at an engine, or build a \
         Dockerfile without RUN (octopush builds those without a daemon)",
        shorten(instruction)
    )]
    NoEngine { file: String, line: usize, instruction: String, endpoint: String, cause: String },
}

/// An instruction as an error quotes it: one line, at most 80 characters.
fn shorten(text: &str) -> String {
    one_line(text, 80)
}

/// `text` on one line (runs of whitespace made one space), cut to `max` characters with `...`.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nlast lines of its output:");
    for line in tail {
        out.push_str("\n  ");
        out.push_str(line);
    }
    out
}

impl BuildError {
    /// Wraps a resolver's error with the base it was resolving.
    pub fn base(base: impl std::fmt::Display, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        BuildError::Base { base: base.to_string(), source: source.into() }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BuildError::Io { action, path: path.into(), source }
    }

    /// The line the error is about, when it is about one.
    pub fn line(&self) -> Option<usize> {
        match self {
            BuildError::Parse(p) => Some(p.line),
            BuildError::Instruction { line, .. }
            | BuildError::Run { line, .. }
            | BuildError::Step { line, .. }
            | BuildError::NoEngine { line, .. } => Some(*line),
            _ => None,
        }
    }
}

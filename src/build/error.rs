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

    /// A RUN in a stage the target needs.
    #[error(
        "{file}:{line}: RUN needs a container runtime and the native builder does not run commands: run the command in an earlier \
         workflow step and COPY its output, or build this Dockerfile with `docker build` (octopush's Docker Engine \
         builder is not available yet)."
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
            BuildError::Instruction { line, .. } | BuildError::Run { line, .. } => Some(*line),
            _ => None,
        }
    }
}

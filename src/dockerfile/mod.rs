//! A Dockerfile parser written to BuildKit's grammar (both Rust crates fail on real files: heredocs, HEALTHCHECK).
//!
//! [`parse`] reads text into a typed [`Dockerfile`]: parser directives, global ARGs and stages, every instruction
//! with its line. Arguments stay as written; [`shell::Lexer`] expands them at build time the way BuildKit does,
//! for the instructions in [`EXPANDS`].

mod ast;
mod instructions;
mod lines;
mod pattern;
pub mod shell;
mod words;

#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod shell_tests;

pub use ast::{
    Arg, ArgInstruction, CommandLine, CopyArgs, Directive, Dockerfile, Healthcheck, Heredoc, Instruction,
    InstructionKind, KeyValue, Onbuild, Run, Stage,
};
pub use instructions::parse_duration;

/// Instructions whose arguments BuildKit expands with ARG and ENV values (ONBUILD triggers are expanded when
/// they run in a later build, not where they are written; RUN, CMD and ENTRYPOINT are left to the shell).
pub const EXPANDS: [&str; 11] =
    ["ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"];

/// A syntax error, with the file, line and instruction it is about: `Dockerfile:7: COPY requires ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    /// The instruction keyword (upper case) when the error is about one.
    pub instruction: Option<String>,
    pub message: String,
}

/// Parses Dockerfile text. `file` names it in errors (usually the path as the user wrote it).
pub fn parse(text: &str, file: &str) -> Result<Dockerfile, ParseError> {
    let err = |line: usize, instruction: Option<String>, message: String| ParseError {
        file: file.to_string(),
        line,
        instruction,
        message,
    };
    let scanned = lines::scan(text, instructions::heredoc_capable).map_err(|(line, m)| err(line, None, m))?;
    let mut df = Dockerfile {
        directives: scanned.directives,
        escape: scanned.escape,
        global_args: Vec::new(),
        stages: Vec::new(),
    };
    for logical in scanned.lines {
        let keyword = keyword(&logical.text);
        let parsed = instructions::parse_line(&logical.text, &logical.heredocs, scanned.escape)
            .map_err(|m| err(logical.start, Some(keyword.clone()), m))?;
        match parsed {
            instructions::Parsed::From { base, name, platform } => {
                df.stages.push(Stage { name, base, platform, line: logical.start, instructions: Vec::new() })
            }
            instructions::Parsed::Instruction(kind) => match df.stages.last_mut() {
                Some(stage) => stage.instructions.push(Instruction {
                    line: logical.start,
                    end_line: logical.end,
                    original: logical.text,
                    kind,
                }),
                None => match kind {
                    InstructionKind::Arg(args) => df.global_args.push(ArgInstruction { line: logical.start, args }),
                    other => {
                        return Err(err(
                            logical.start,
                            Some(keyword),
                            format!(
                                "{} must come after a FROM instruction (only ARG may come before the first FROM)",
                                other.name()
                            ),
                        ));
                    }
                },
            },
        }
    }
    if df.stages.is_empty() {
        let line = df.global_args.last().map_or(1, |a| a.line);
        return Err(err(
            line,
            None,
            "the Dockerfile has no FROM instruction: start a stage with FROM IMAGE (or FROM scratch)".into(),
        ));
    }
    Ok(df)
}

/// Parses one instruction on its own, as an ONBUILD trigger read from a base image's config is parsed.
pub fn parse_instruction(text: &str, file: &str, line: usize) -> Result<Instruction, ParseError> {
    let err = |instruction: Option<String>, message: String| ParseError {
        file: file.to_string(),
        line,
        instruction,
        message,
    };
    let scanned = lines::scan(text, instructions::heredoc_capable).map_err(|(_, m)| err(None, m))?;
    let [logical] = scanned.lines.as_slice() else {
        return Err(err(None, "an ONBUILD trigger must be a single instruction".into()));
    };
    let keyword = keyword(&logical.text);
    match instructions::parse_line(&logical.text, &logical.heredocs, scanned.escape) {
        Ok(instructions::Parsed::Instruction(kind)) => {
            Ok(Instruction { line, end_line: line, original: logical.text.clone(), kind })
        }
        Ok(instructions::Parsed::From { .. }) => {
            Err(err(Some(keyword), "FROM isn't allowed as an ONBUILD trigger".into()))
        }
        Err(m) => Err(err(Some(keyword), m)),
    }
}

fn keyword(line: &str) -> String {
    line.split(words::is_separator).find(|w| !w.is_empty()).unwrap_or_default().to_ascii_uppercase()
}

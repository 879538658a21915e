//! The typed syntax tree of a Dockerfile. Arguments are kept as written (quotes and `$VARS` included) wherever
//! BuildKit expands them at build time, because their values depend on ARG and ENV state the parser cannot know.

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// Parser directives (`# syntax=`, `# escape=`, `# check=`), in order.
    pub directives: Vec<Directive>,
    /// The escape token in effect (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// `ARG` instructions before the first `FROM`: usable in `FROM` lines and, when redeclared, in stages.
    pub global_args: Vec<ArgInstruction>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lowercased name.
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// A build stage: one `FROM` and what follows it up to the next `FROM`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// The `AS name`, lowercased as BuildKit does.
    pub name: Option<String>,
    /// The base as written (`scratch`, an image reference, a previous stage's name; may contain `$ARGS`).
    pub base: String,
    /// `--platform=` as written.
    pub platform: Option<String>,
    /// Line of the `FROM`.
    pub line: usize,
    pub instructions: Vec<Instruction>,
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// First line (1-based) of the instruction in the file.
    pub line: usize,
    /// Last line, including continuation and heredoc lines.
    pub end_line: usize,
    /// The logical line as read (continuations joined, heredoc bodies excluded).
    pub original: String,
    pub kind: InstructionKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InstructionKind {
    Arg(Vec<Arg>),
    Env(Vec<KeyValue>),
    Label(Vec<KeyValue>),
    Copy(CopyArgs),
    Add(CopyArgs),
    Run(Run),
    Workdir(String),
    User(String),
    /// Ports as written, not yet expanded.
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// Always the exec (JSON) form: BuildKit rejects the shell form.
    Shell(Vec<String>),
    Entrypoint(CommandLine),
    Cmd(CommandLine),
    Onbuild(Onbuild),
    Maintainer(String),
}

impl InstructionKind {
    /// The instruction's keyword in upper case.
    pub fn name(&self) -> &'static str {
        match self {
            InstructionKind::Arg(_) => "ARG",
            InstructionKind::Env(_) => "ENV",
            InstructionKind::Label(_) => "LABEL",
            InstructionKind::Copy(_) => "COPY",
            InstructionKind::Add(_) => "ADD",
            InstructionKind::Run(_) => "RUN",
            InstructionKind::Workdir(_) => "WORKDIR",
            InstructionKind::User(_) => "USER",
            InstructionKind::Expose(_) => "EXPOSE",
            InstructionKind::Volume(_) => "VOLUME",
            InstructionKind::StopSignal(_) => "STOPSIGNAL",
            InstructionKind::Healthcheck(_) => "HEALTHCHECK",
            InstructionKind::Shell(_) => "SHELL",
            InstructionKind::Entrypoint(_) => "ENTRYPOINT",
            InstructionKind::Cmd(_) => "CMD",
            InstructionKind::Onbuild(_) => "ONBUILD",
            InstructionKind::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// An `ARG` line (before the first `FROM`).
#[derive(Debug, Clone, PartialEq)]
pub struct ArgInstruction {
    pub line: usize,
    pub args: Vec<Arg>,
}

/// `ARG name[=default]`; the default is kept as written (quotes and variables unexpanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub name: String,
    pub default: Option<String>,
}

/// `key=value` of ENV and LABEL, both as written. `legacy` is the old `ENV key value` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    pub legacy: bool,
}

/// COPY and ADD. Fields only ADD accepts (`checksum`, `keep_git_dir`, `unpack`) stay empty for COPY, and `from`
/// and `parents` for ADD: the parser rejects those flags where BuildKit does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CopyArgs {
    /// Source paths, globs or URLs as written.
    pub sources: Vec<String>,
    /// Inline files (`COPY <<EOF /dst`), in order.
    pub heredocs: Vec<Heredoc>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    pub checksum: Option<String>,
    pub keep_git_dir: Option<bool>,
    pub unpack: Option<bool>,
    /// Written in the JSON form (`COPY ["a", "b"]`).
    pub json: bool,
}

/// A here-document: `<<EOF` (expand), `<<-EOF` (strip leading tabs), `<<'EOF'` / `<<"EOF"` (no expansion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    /// The body, every line with its newline; for `<<-` leading tabs are already stripped in COPY/ADD sources.
    pub content: String,
    /// Whether variables in the body are expanded (the delimiter was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped.
    pub chomp: bool,
    /// `3<<EOF`: a file descriptor number (RUN only).
    pub fd: Option<u32>,
}

/// The exec (`["a", "b"]`) or shell (`a b`) form of CMD, ENTRYPOINT, RUN and HEALTHCHECK CMD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub command: CommandLine,
    pub heredocs: Vec<Heredoc>,
    /// `--mount=`, `--network=`, `--security=`, `--device=` as written.
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    Cmd {
        command: CommandLine,
        /// Durations in nanoseconds as Docker stores them; 0 means "inherit the default".
        interval: i64,
        timeout: i64,
        start_period: i64,
        start_interval: i64,
        retries: i64,
    },
}

/// `ONBUILD <instruction>`: recorded in the image config as `expression` for images built FROM this one.
#[derive(Debug, Clone, PartialEq)]
pub struct Onbuild {
    /// The trigger as it goes into the config (the text after `ONBUILD`, heredoc bodies appended).
    pub expression: String,
    /// The trigger parsed, so an invalid trigger fails at parse time as it does in BuildKit.
    pub trigger: Box<InstructionKind>,
}

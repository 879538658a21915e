//! Runs the octopush binary the way the GitHub Actions runner runs an action step: a cleared environment with
//! `INPUT_*` variables, the `GITHUB_*`/`RUNNER_*` defaults of a push to `master` of `Octo-Org/App`, file-command
//! files (`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`, `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_STATE`) and an event
//! payload in a temporary directory, and an isolated `HOME`. `GITHUB_API_URL` points at a closed port on
//! 127.0.0.1, so no test ever reaches the internet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::json;

/// The commit every workflow run is on, unless a test says otherwise.
pub const SHA: &str = "2f2d842a9e7f3c1b5d6e8f90a1b2c3d4e5f60718";
/// `GITHUB_API_URL`: port 1 on loopback, where nothing listens (connections are refused at once).
pub const CLOSED_API_URL: &str = "http://127.0.0.1:1";

/// A runner-like step about to run. Builder methods take and return `self`.
pub struct Workflow {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
    args: Vec<String>,
    program: PathBuf,
    timeout: Duration,
}

/// What a run left behind.
#[derive(Debug)]
pub struct RunResult {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// `GITHUB_OUTPUT`, parsed (`name=value` and `name<<DELIM` ... `DELIM`); a later line wins.
    pub outputs: BTreeMap<String, String>,
    /// `GITHUB_STEP_SUMMARY` as written.
    pub summary: String,
    /// `GITHUB_ENV`, parsed like the outputs.
    pub exported_env: BTreeMap<String, String>,
    /// `GITHUB_STATE`, parsed like the outputs.
    pub state: BTreeMap<String, String>,
}

impl RunResult {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics with stdout and stderr unless the run exited 0.
    pub fn assert_success(&self) -> &RunResult {
        assert!(self.success(), "octopush failed ({}):\n{}", self.status, self.dump());
        self
    }

    /// Panics with stdout and stderr unless the run failed.
    pub fn assert_failure(&self) -> &RunResult {
        assert!(!self.success(), "octopush succeeded but should have failed:\n{}", self.dump());
        self
    }

    /// A clean failure, as a user must see one: exit 1, exactly one `::error::` annotation holding `needle`, no
    /// panic or backtrace. Returns the annotation's line.
    pub fn assert_clean_failure(&self, needle: &str) -> String {
        self.assert_failure();
        assert_eq!(self.status.code(), Some(1), "{}", self.dump());
        let errors: Vec<&str> = self.stdout.lines().filter(|l| l.starts_with("::error")).collect();
        assert_eq!(errors.len(), 1, "exactly one ::error:: annotation:\n{}", self.dump());
        assert!(errors[0].contains(needle), "`{needle}` not in {}", errors[0]);
        for text in [&self.stdout, &self.stderr] {
            assert!(!text.contains("panicked") && !text.contains("stack backtrace"), "{}", self.dump());
        }
        errors[0].to_string()
    }

    /// The output `name`; panics listing the outputs there are.
    pub fn output(&self, name: &str) -> &str {
        self.outputs.get(name).map(String::as_str).unwrap_or_else(|| {
            panic!("no output {name:?}; outputs: {:?}\n{}", self.outputs.keys().collect::<Vec<_>>(), self.dump())
        })
    }

    /// stdout and stderr together, for assertion messages.
    pub fn dump(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }

    /// stdout lines that are workflow commands `::NAME...::` (e.g. `error`, `add-mask`), as (name, line).
    pub fn commands(&self) -> Vec<(String, String)> {
        self.stdout
            .lines()
            .filter_map(|l| {
                let rest = l.trim_start().strip_prefix("::")?;
                let end = rest.find([' ', ':'])?;
                Some((rest[..end].to_string(), l.to_string()))
            })
            .collect()
    }
}

impl Default for Workflow {
    fn default() -> Self {
        Workflow::new()
    }
}

impl Workflow {
    /// A fresh step: temporary workspace, runner temp, home, file-command files, a push event payload.
    pub fn new() -> Workflow {
        let dir = tempfile::Builder::new().prefix("octopush-workflow-").tempdir().expect("tempdir");
        let d = dir.path();
        for sub in ["workspace", "runner-temp", "home", "tool-cache", "tmp", "files"] {
            std::fs::create_dir_all(d.join(sub)).expect("create workflow dir");
        }
        let p = |rel: &str| d.join(rel).to_string_lossy().into_owned();
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_string(), v);
        };
        set("CI", "true".into());
        set("GITHUB_ACTIONS", "true".into());
        set("GITHUB_REPOSITORY", "Octo-Org/App".into());
        set("GITHUB_REPOSITORY_OWNER", "Octo-Org".into());
        set("GITHUB_REPOSITORY_ID", "123456789".into());
        set("GITHUB_REPOSITORY_OWNER_ID", "987654321".into());
        set("GITHUB_SHA", SHA.into());
        set("GITHUB_REF", "refs/heads/master".into());
        set("GITHUB_REF_NAME", "master".into());
        set("GITHUB_REF_TYPE", "branch".into());
        set("GITHUB_REF_PROTECTED", "false".into());
        set("GITHUB_HEAD_REF", String::new());
        set("GITHUB_BASE_REF", String::new());
        set("GITHUB_EVENT_NAME", "push".into());
        set("GITHUB_EVENT_PATH", p("files/event.json"));
        set("GITHUB_ACTOR", "octocat".into());
        set("GITHUB_ACTOR_ID", "583231".into());
        set("GITHUB_TRIGGERING_ACTOR", "octocat".into());
        set("GITHUB_SERVER_URL", "https://github.com".into());
        set("GITHUB_API_URL", CLOSED_API_URL.into());
        set("GITHUB_GRAPHQL_URL", format!("{CLOSED_API_URL}/graphql"));
        set("GITHUB_WORKFLOW", "ci".into());
        set("GITHUB_WORKFLOW_REF", "Octo-Org/App/.github/workflows/ci.yml@refs/heads/master".into());
        set("GITHUB_JOB", "publish".into());
        set("GITHUB_ACTION", "__octo-org_octopush".into());
        set("GITHUB_RUN_ID", "1658821493".into());
        set("GITHUB_RUN_NUMBER", "42".into());
        set("GITHUB_RUN_ATTEMPT", "1".into());
        set("GITHUB_RETENTION_DAYS", "90".into());
        set("GITHUB_WORKSPACE", p("workspace"));
        set("GITHUB_OUTPUT", p("files/output"));
        set("GITHUB_STEP_SUMMARY", p("files/step_summary"));
        set("GITHUB_ENV", p("files/env"));
        set("GITHUB_PATH", p("files/path"));
        set("GITHUB_STATE", p("files/state"));
        set("RUNNER_OS", "Linux".into());
        set("RUNNER_ARCH", "X64".into());
        set("RUNNER_NAME", "octopush-test-runner".into());
        set("RUNNER_ENVIRONMENT", "github-hosted".into());
        set("RUNNER_TEMP", p("runner-temp"));
        set("RUNNER_TOOL_CACHE", p("tool-cache"));
        set("HOME", p("home"));
        set("TMPDIR", p("tmp"));
        set("RUST_BACKTRACE", "1".into());
        set("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()));
        let wf = Workflow {
            dir,
            env,
            args: Vec::new(),
            program: PathBuf::from(env!("CARGO_BIN_EXE_octopush")),
            timeout: Duration::from_secs(300),
        };
        wf.write_event(&default_push_event())
    }

    /// Sets input `name` as the runner does: `INPUT_` + the name upper-cased with spaces turned into `_`
    /// (hyphens kept).
    pub fn input(mut self, name: &str, value: &str) -> Workflow {
        self.env.insert(format!("INPUT_{}", name.replace(' ', "_").to_uppercase()), value.to_string());
        self
    }

    /// Sets (or overrides a default) environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Workflow {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// Removes a variable, default or not.
    pub fn env_remove(mut self, key: &str) -> Workflow {
        self.env.remove(key);
        self
    }

    /// Adds command-line arguments (to run octopush as a CLI rather than an action).
    pub fn args(mut self, args: &[&str]) -> Workflow {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Sets `GITHUB_EVENT_NAME` and the event payload file.
    pub fn event(mut self, name: &str, payload: &serde_json::Value) -> Workflow {
        self.env.insert("GITHUB_EVENT_NAME".into(), name.to_string());
        self.write_event(payload)
    }

    /// Runs `program` instead of the octopush binary (e.g. `/bin/sh` with `args`), same environment and files.
    pub fn program(mut self, program: impl Into<PathBuf>) -> Workflow {
        self.program = program.into();
        self
    }

    /// Kills the run (and fails the test) after `timeout`; 300 s by default.
    pub fn timeout(mut self, timeout: Duration) -> Workflow {
        self.timeout = timeout;
        self
    }

    /// Writes `contents` to `rel` inside the workspace (parents created), e.g. a Dockerfile.
    pub fn file(self, rel: &str, contents: impl AsRef<[u8]>) -> Workflow {
        let path = self.workspace().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create workspace subdir");
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self
    }

    fn write_event(self, payload: &serde_json::Value) -> Workflow {
        let path = self.dir.path().join("files/event.json");
        std::fs::write(path, serde_json::to_vec_pretty(payload).expect("event JSON")).expect("write event");
        self
    }

    /// `GITHUB_WORKSPACE`.
    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    /// `RUNNER_TEMP`.
    pub fn runner_temp(&self) -> PathBuf {
        self.dir.path().join("runner-temp")
    }

    /// `HOME` (e.g. to put a `.docker/config.json` there).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The environment the run will get (PATH included).
    pub fn environment(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// Runs the binary: cleared environment plus the variables above, no stdin, in the workspace. The file-command
    /// files are emptied first, so each run sees only its own.
    pub fn run(&self) -> RunResult {
        self.run_with(&self.program, &self.args)
    }

    /// Runs `program ARGS` instead, in the same environment, workspace and file-command files.
    pub fn run_with(&self, program: &Path, args: &[String]) -> RunResult {
        let files = self.dir.path().join("files");
        for f in ["output", "step_summary", "env", "path", "state"] {
            std::fs::write(files.join(f), "").expect("reset file-command file");
        }
        let child = Command::new(program)
            .args(args)
            .env_clear()
            .envs(&self.env)
            .current_dir(self.workspace())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let (status, stdout, stderr) = super::wait_with_timeout(child, "octopush", self.timeout);
        let read = |f: &str| std::fs::read_to_string(files.join(f)).unwrap_or_default();
        RunResult {
            status,
            stdout,
            stderr,
            outputs: parse_file_command(&read("output")),
            summary: read("step_summary"),
            exported_env: parse_file_command(&read("env")),
            state: parse_file_command(&read("state")),
        }
    }
}

/// Parses a `GITHUB_OUTPUT`-style file: `name=value` lines and `name<<DELIM` ... `DELIM` blocks (whichever of
/// `=` and `<<` comes first decides, as in the runner). Panics on an unterminated block: the runner would fail.
pub fn parse_file_command(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let (eq, heredoc) = (line.find('='), line.find("<<"));
        match (eq, heredoc) {
            (_, Some(h)) if eq.is_none_or(|e| h < e) => {
                let (name, delim) = (&line[..h], &line[h + 2..]);
                let mut value = Vec::new();
                loop {
                    match lines.next() {
                        Some(l) if l == delim => break,
                        Some(l) => value.push(l),
                        None => panic!("file command {name:?}: no closing delimiter {delim:?} in:\n{text}"),
                    }
                }
                map.insert(name.to_string(), value.join("\n"));
            }
            (Some(e), _) => {
                map.insert(line[..e].to_string(), line[e + 1..].to_string());
            }
            _ => panic!("file command line is neither name=value nor name<<DELIM: {line:?}"),
        }
    }
    map
}

/// The payload of a push of [`SHA`] to `master` of Octo-Org/App (default branch `master`).
pub fn default_push_event() -> serde_json::Value {
    json!({
        "ref": "refs/heads/master",
        "before": "0000000000000000000000000000000000000000",
        "after": SHA,
        "created": false,
        "deleted": false,
        "forced": false,
        "base_ref": null,
        "compare": "https://github.com/Octo-Org/App/compare/000000000000...2f2d842a9e7f",
        "commits": [],
        "head_commit": {
            "id": SHA,
            "tree_id": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
            "message": "Update README",
            "timestamp": "2020-01-10T10:00:00+00:00",
            "author": {"name": "Octo Cat", "email": "octocat@users.noreply.github.com", "username": "octocat"},
            "committer": {"name": "Octo Cat", "email": "octocat@users.noreply.github.com", "username": "octocat"}
        },
        "repository": {
            "id": 123456789,
            "name": "App",
            "full_name": "Octo-Org/App",
            "private": false,
            "html_url": "https://github.com/Octo-Org/App",
            "description": "An app",
            "default_branch": "master",
            "master_branch": "master",
            "license": {"spdx_id": "MIT"},
            "owner": {"login": "Octo-Org", "name": "Octo-Org", "type": "Organization"}
        },
        "pusher": {"name": "octocat", "email": "octocat@users.noreply.github.com"},
        "sender": {"login": "octocat", "type": "User"}
    })
}

/// Panics if `secret` shows anywhere in what the run left behind (stdout, stderr, outputs, step summary,
/// exported env, state), except on a `::add-mask::` line of stdout, which is how a step masks it.
pub fn assert_no_secret(result: &RunResult, secret: &str) {
    assert!(!secret.is_empty(), "assert_no_secret: an empty secret proves nothing");
    let redact = |s: &str| s.replace(secret, "<SECRET>");
    for (stream, text) in [("stdout", &result.stdout), ("stderr", &result.stderr)] {
        for (i, line) in text.lines().enumerate() {
            let masking = stream == "stdout" && line.trim_start().starts_with("::add-mask::");
            if line.contains(secret) && !masking {
                panic!("the secret leaked on {stream} line {}: {}", i + 1, redact(line));
            }
        }
    }
    for (what, map) in [("output", &result.outputs), ("GITHUB_ENV", &result.exported_env), ("state", &result.state)] {
        for (k, v) in map {
            if k.contains(secret) || v.contains(secret) {
                panic!("the secret leaked in {what} {}: {}", redact(k), redact(v));
            }
        }
    }
    if result.summary.contains(secret) {
        panic!("the secret leaked in the step summary:\n{}", redact(&result.summary));
    }
}

impl Workflow {
    /// The directory of the file-command files (`output`, `step_summary`, `env`, `path`, `state`, `event.json`).
    pub fn files_dir(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    /// Runs another program (e.g. a shell script) with exactly the environment octopush would get.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear().envs(&self.env).current_dir(self.workspace()).stdin(Stdio::null());
        cmd
    }
}

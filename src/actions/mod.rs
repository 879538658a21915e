//! The GitHub Actions runtime: the one place that reads the process environment. It takes a snapshot of the
//! variables once, looks inputs up as the runner and `act` name them, reads the event payload, and writes outputs,
//! the summary and workflow commands. Nothing in the library reaches around it.

pub mod commands;
pub mod files;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use commands::Log;

/// A snapshot of the environment (or a test's map).
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    #[cfg(test)]
    pub fn from_map(vars: BTreeMap<String, String>) -> Self {
        Env { vars }
    }

    /// The snapshot with `name` set to `value` (what the edge learns elsewhere, such as the local git checkout).
    pub fn with_var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.insert(name.to_string(), value.into());
        self
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// A variable that is set and not blank.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.var(name).filter(|v| !v.trim().is_empty())
    }

    /// True inside a workflow step (the runner and `act` both set it).
    pub fn in_actions(&self) -> bool {
        self.var("GITHUB_ACTIONS") == Some("true")
    }

    pub fn runner_debug(&self) -> bool {
        self.var("RUNNER_DEBUG") == Some("1") || self.var("ACTIONS_STEP_DEBUG") == Some("true")
    }

    /// An action input, looked up as the runner names it (`INPUT_` + upper case, spaces to `_`, hyphens kept) and
    /// as `act` does (which also turns dots and other characters into `_`). Unset and empty are the same to the
    /// runner (it passes declared inputs with empty defaults as empty strings), so both give `None`.
    pub fn input(&self, name: &str) -> Option<&str> {
        let runner = format!("INPUT_{}", name.replace(' ', "_").to_uppercase());
        let act = format!(
            "INPUT_{}",
            name.to_uppercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
                .collect::<String>()
        );
        [runner, act].iter().find_map(|k| self.var(k)).filter(|v| !v.is_empty())
    }

    /// The runner's `GITHUB_*` variables, as the metadata code takes them.
    pub fn github_vars(&self) -> BTreeMap<String, String> {
        self.vars
            .iter()
            .filter(|(k, _)| k.starts_with("GITHUB_") || k.starts_with("RUNNER_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The event payload at `GITHUB_EVENT_PATH`, if there is one and it is JSON.
    pub fn event_payload(&self) -> Result<Option<serde_json::Value>, String> {
        let Some(path) = self.non_empty("GITHUB_EVENT_PATH") else { return Ok(None) };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("the event payload at GITHUB_EVENT_PATH ({path}) is not valid JSON: {e}")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("could not read the event payload at GITHUB_EVENT_PATH ({path}): {e}")),
        }
    }

    pub fn output_file(&self) -> Option<PathBuf> {
        self.non_empty("GITHUB_OUTPUT").map(PathBuf::from)
    }

    pub fn summary_file(&self) -> Option<PathBuf> {
        self.non_empty("GITHUB_STEP_SUMMARY").map(PathBuf::from)
    }

    /// `GITHUB_ENV`: where variables for later steps go.
    pub fn env_file(&self) -> Option<PathBuf> {
        self.non_empty("GITHUB_ENV").map(PathBuf::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn inputs_are_found_as_the_runner_and_act_name_them() {
        let e = env(&[
            ("INPUT_TAG_WITH_SHA", "true"),
            ("INPUT_BUILD-ARGS", "A=1"),
            ("INPUT_MY_DOTTED_NAME", "x"),
            ("INPUT_EMPTY", ""),
        ]);
        assert_eq!(e.input("tag_with_sha"), Some("true"));
        assert_eq!(e.input("build-args"), Some("A=1"));
        assert_eq!(e.input("my.dotted name"), Some("x"), "act turns dots into _");
        assert_eq!(e.input("empty"), None, "empty equals unset");
        assert_eq!(e.input("missing"), None);
    }

    #[test]
    fn event_payload_errors_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("event.json");
        std::fs::write(&p, "{not json").unwrap();
        let e = env(&[("GITHUB_EVENT_PATH", p.to_str().unwrap())]);
        assert!(e.event_payload().unwrap_err().contains("GITHUB_EVENT_PATH"));
        std::fs::write(&p, r#"{"ref":"refs/heads/main"}"#).unwrap();
        assert_eq!(e.event_payload().unwrap().unwrap()["ref"], "refs/heads/main");
        assert!(env(&[]).event_payload().unwrap().is_none());
    }
}

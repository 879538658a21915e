//! How library code reports what it does without knowing where it is shown: the binary's edge implements
//! [`Progress`] with workflow commands (in Actions) or plain lines (CLI); tests collect events.

use std::sync::Mutex;

/// A sink for progress lines. Implementations must be cheap and thread-safe.
pub trait Progress: Send + Sync {
    fn info(&self, message: &str);
    fn debug(&self, message: &str);
    fn warning(&self, message: &str);
}

/// Discards everything.
pub struct Quiet;

impl Progress for Quiet {
    fn info(&self, _: &str) {}
    fn debug(&self, _: &str) {}
    fn warning(&self, _: &str) {}
}

/// Keeps every line, for tests.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<String>>);

impl Progress for Collect {
    fn info(&self, m: &str) {
        self.push("info", m)
    }
    fn debug(&self, m: &str) {
        self.push("debug", m)
    }
    fn warning(&self, m: &str) {
        self.push("warning", m)
    }
}

impl Collect {
    fn push(&self, level: &str, m: &str) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("{level}: {m}"));
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

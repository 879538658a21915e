//! Workflow commands (`::add-mask::`, `::error::`, `::group::`, ...) with the runner's escaping, and the
//! [`Progress`] implementation the library reports through.
//!
//! Every line we print passes through [`Log::line`], which replaces each registered secret with `***` before it
//! reaches stdout: the runner masks `::add-mask::` values in its own log, but stdout is also read by `act`, by
//! local users and by our tests, so we never rely on the runner alone.

use std::io::Write;
use std::sync::{Arc, Mutex};

use octopush::progress::Progress;

/// Escapes a command's message as the runner's `@actions/core` does.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a command property (`title=...`), which also may not contain `:` or `,`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Where lines go and how: workflow commands under Actions, plain text on a terminal.
#[derive(Clone)]
pub struct Log {
    inner: Arc<LogInner>,
}

struct LogInner {
    actions: bool,
    debug: bool,
    secrets: Mutex<Vec<String>>,
    out: Mutex<Box<dyn Write + Send>>,
}

impl Log {
    pub fn new(actions: bool, debug: bool) -> Self {
        Self::with_writer(actions, debug, Box::new(std::io::stdout()))
    }

    pub fn with_writer(actions: bool, debug: bool, out: Box<dyn Write + Send>) -> Self {
        Log { inner: Arc::new(LogInner { actions, debug, secrets: Mutex::new(Vec::new()), out: Mutex::new(out) }) }
    }

    /// Registers a secret: masked by the runner from now on, and redacted from everything we print.
    /// Each line of a multi-line secret is masked on its own, as the runner needs.
    pub fn add_secret(&self, secret: &str) {
        for part in secret.lines().map(str::trim).filter(|p| p.len() >= 3) {
            let new = match self.inner.secrets.lock() {
                Ok(mut s) if !s.iter().any(|x| x == part) => {
                    s.push(part.to_string());
                    // Longest first, so a secret containing another is replaced whole.
                    s.sort_by_key(|x| std::cmp::Reverse(x.len()));
                    true
                }
                Ok(_) => false,
                Err(_) => true,
            };
            // Once per value: the mask command itself is the one place the value may appear.
            if new && self.inner.actions {
                self.write_raw(&format!("::add-mask::{}", escape_data(part)));
            }
        }
    }

    /// `text` with every registered secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        if let Ok(secrets) = self.inner.secrets.lock() {
            for s in secrets.iter() {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }

    fn write_raw(&self, line: &str) {
        if let Ok(mut out) = self.inner.out.lock() {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }

    /// Prints a plain line (redacted).
    pub fn line(&self, text: &str) {
        let text = self.redact(text);
        for l in text.lines() {
            // A line that starts with `::` would be read as a command by the runner: break it.
            if self.inner.actions && l.starts_with("::") {
                self.write_raw(&format!(" {l}"));
            } else {
                self.write_raw(l);
            }
        }
    }

    fn command(&self, name: &str, props: &[(&str, &str)], message: &str) {
        let message = self.redact(message);
        if self.inner.actions {
            let props: Vec<String> =
                props.iter().map(|(k, v)| format!("{k}={}", escape_property(&self.redact(v)))).collect();
            let sep = if props.is_empty() { String::new() } else { format!(" {}", props.join(",")) };
            self.write_raw(&format!("::{name}{sep}::{}", escape_data(&message)));
        } else {
            let label = match name {
                "error" => "error: ",
                "warning" => "warning: ",
                "notice" => "note: ",
                _ => "",
            };
            for (i, l) in message.lines().enumerate() {
                self.write_raw(&if i == 0 { format!("{label}{l}") } else { format!("  {l}") });
            }
        }
    }

    pub fn error(&self, title: &str, message: &str) {
        self.command("error", &[("title", title)], message);
    }

    /// An error GitHub shows on `line` of `file` (relative to the repository root).
    pub fn error_at(&self, title: &str, message: &str, file: &str, line: usize) {
        self.command("error", &[("title", title), ("file", file), ("line", &line.to_string())], message);
    }

    pub fn warning(&self, message: &str) {
        self.command("warning", &[], message);
    }

    pub fn notice(&self, message: &str) {
        self.command("notice", &[], message);
    }

    /// Debug lines show under Actions when `RUNNER_DEBUG=1` (the runner filters `::debug::`), and on a terminal
    /// with `--debug`.
    pub fn debug(&self, message: &str) {
        if self.inner.actions {
            let message = self.redact(message);
            for l in message.lines() {
                self.write_raw(&format!("::debug::{}", escape_data(l)));
            }
        } else if self.inner.debug {
            self.line(&format!("debug: {message}"));
        }
    }

    pub fn group(&self, title: &str) {
        if self.inner.actions {
            self.write_raw(&format!("::group::{}", escape_data(&self.redact(title))));
        } else {
            self.line(&format!("== {title}"));
        }
    }

    pub fn end_group(&self) {
        if self.inner.actions {
            self.write_raw("::endgroup::");
        }
    }
}

impl Progress for Log {
    fn info(&self, message: &str) {
        self.line(message)
    }
    fn debug(&self, message: &str) {
        Log::debug(self, message)
    }
    fn warning(&self, message: &str) {
        Log::warning(self, message)
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A writer the tests can read back.
    #[derive(Clone, Default)]
    pub struct Buf(pub Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().map(|v| v.clone()).unwrap_or_default()).into_owned()
        }
    }

    #[test]
    fn escaping_matches_actions_core() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(escape_property("a:b,c\n"), "a%3Ab%2Cc%0A");
    }

    #[test]
    fn secrets_are_masked_once_and_redacted_everywhere() {
        let buf = Buf::default();
        let log = Log::with_writer(true, false, Box::new(buf.clone()));
        log.add_secret("s3cr3t-token");
        log.add_secret("s3cr3t-token"); // found again (a docker config's password, then its lookup): one mask
        log.line("using s3cr3t-token here");
        log.error("Push failed", "denied for s3cr3t-token");
        log.debug("header: Bearer s3cr3t-token");
        log.group("token s3cr3t-token");
        let out = buf.text();
        let leaking: Vec<&str> = out.lines().filter(|l| l.contains("s3cr3t-token")).collect();
        assert_eq!(leaking, vec!["::add-mask::s3cr3t-token"]);
        assert!(out.contains("using *** here"));
        assert!(out.contains("::error title=Push failed::denied for ***"));
    }

    #[test]
    fn plain_mode_prints_readable_lines_and_hides_debug() {
        let buf = Buf::default();
        let log = Log::with_writer(false, false, Box::new(buf.clone()));
        log.add_secret("abcdef");
        log.error("t", "first\nsecond abcdef");
        log.debug("hidden");
        assert_eq!(buf.text(), "error: first\n  second ***\n");
    }

    #[test]
    fn errors_on_a_line_carry_file_and_line_for_github() {
        let buf = Buf::default();
        let log = Log::with_writer(true, false, Box::new(buf.clone()));
        log.error_at("Build failed", "RUN failed:\nlast lines", "app/Dockerfile", 7);
        assert_eq!(buf.text(), "::error title=Build failed,file=app/Dockerfile,line=7::RUN failed:%0Alast lines\n");
    }

    #[test]
    fn lines_that_look_like_commands_are_defused() {
        let buf = Buf::default();
        let log = Log::with_writer(true, false, Box::new(buf.clone()));
        log.line("::set-output name=x::y");
        assert_eq!(buf.text(), " ::set-output name=x::y\n");
    }
}

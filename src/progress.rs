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

/// Decimal units, one decimal: `12.3 MB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_uses_decimal_units_with_one_decimal() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(12_345_678), "12.3 MB");
        assert_eq!(human_bytes(3_000_000_000), "3.0 GB");
    }
}

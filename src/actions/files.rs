//! File commands: step outputs appended to `GITHUB_OUTPUT`, variables for later steps to `GITHUB_ENV` and the
//! job summary appended to `GITHUB_STEP_SUMMARY`, in the runner's `name<<DELIMITER` format with a fresh random delimiter each time. Both
//! files are checked before anything is pushed ([`check_writable`]), so a step never fails on them after its
//! image and tags are in a registry.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngCore;

#[derive(Debug, thiserror::Error)]
pub enum FileCommandError {
    #[error("could not write to {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{variable} names {path}, which cannot be written ({source}), so the step's results could not be recorded: \
         nothing was built or pushed. The runner sets {variable} to a file it can write: check that no earlier step \
         changed it (or the file's folder and permissions)"
    )]
    Unwritable { variable: &'static str, path: PathBuf, source: std::io::Error },
}

/// Opens `path` for appending (creating it, as the runner would have) without writing, to find out before any
/// push whether the file named by `variable` can be written.
pub fn check_writable(variable: &'static str, path: &Path) -> Result<(), FileCommandError> {
    OpenOptions::new().create(true).append(true).open(path).map(drop).map_err(|source| FileCommandError::Unwritable {
        variable,
        path: path.to_path_buf(),
        source,
    })
}

fn append(path: &Path, text: &str) -> Result<(), FileCommandError> {
    let io = |source| FileCommandError::Io { path: path.to_path_buf(), source };
    let mut f = OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

/// One output in the heredoc form. The delimiter is random and checked against the value, so a value cannot end
/// the block early and inject other outputs.
pub fn format_output(name: &str, value: &str) -> String {
    loop {
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let delimiter = format!("ghadelimiter_{}", hex::encode(raw));
        if !value.contains(&delimiter) && !name.contains(&delimiter) {
            return format!("{name}<<{delimiter}\n{value}\n{delimiter}\n");
        }
    }
}

pub fn write_output(file: &Path, name: &str, value: &str) -> Result<(), FileCommandError> {
    append(file, &format_output(name, value))
}

pub fn append_summary(file: &Path, markdown: &str) -> Result<(), FileCommandError> {
    append(file, markdown)
}

/// Exports a variable to later steps through `GITHUB_ENV` (same heredoc form as outputs).
pub fn export_variable(file: &Path, name: &str, value: &str) -> Result<(), FileCommandError> {
    append(file, &format_output(name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_use_fresh_delimiters_and_keep_multiline_values() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("out");
        write_output(&f, "tags", "a:1\na:2").unwrap();
        write_output(&f, "digest", "sha256:x").unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7);
        let d1 = lines[0].strip_prefix("tags<<").unwrap();
        assert_eq!(&lines[1..4], &["a:1", "a:2", d1]);
        let d2 = lines[4].strip_prefix("digest<<").unwrap();
        assert_ne!(d1, d2);
        assert!(d1.starts_with("ghadelimiter_") && d1.len() > 40);
    }

    #[test]
    fn check_writable_names_the_variable_and_leaves_files_empty() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("output");
        check_writable("GITHUB_OUTPUT", &fresh).unwrap();
        assert_eq!(std::fs::read(&fresh).unwrap(), b"", "created, nothing written");
        for bad in [dir.path().to_path_buf(), fresh.join("under-a-file")] {
            let e = check_writable("GITHUB_STEP_SUMMARY", &bad).unwrap_err().to_string();
            assert!(e.starts_with("GITHUB_STEP_SUMMARY names ") && e.contains("nothing was built or pushed"), "{e}");
        }
    }
}

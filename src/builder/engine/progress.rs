//! The engine's build log, shown as it comes and remembered just enough to explain a failure.
//! - BuildKit sends `StatusResponse` messages (vertices started, completed, cached or failed, with their output
//!   in chunks); they are printed as `docker build --progress=plain` prints them: `#N name`, `#N output line`,
//!   `#N DONE 1.2s` / `#N CACHED` / `#N ERROR: ...`.
//! - The classic builder sends plain `stream` text: `Step 3/7 : RUN make`, the command's output, `---> id`.
//!
//! Each keeps the last [`TAIL_LINES`] lines of the step that failed, for the error annotation.

use std::collections::{HashMap, VecDeque};

use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;

use crate::progress::Progress;

/// Lines of a failed step's output the error shows.
pub const TAIL_LINES: usize = 20;
/// A line longer than this is cut when kept for the tail (it is printed whole).
const TAIL_LINE_CHARS: usize = 400;

/// What failed: the step as the engine named it, its output's last lines and the engine's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStep {
    /// BuildKit's vertex name (`[build 3/4] RUN make`) or the classic builder's step (`Step 3/7 : RUN make`).
    pub name: String,
    /// The classic builder's step number; BuildKit's is in the name.
    pub step: Option<usize>,
    pub tail: Vec<String>,
}

#[derive(Default)]
struct Vertex {
    n: usize,
    name: String,
    announced: bool,
    done: bool,
    /// Output not yet ended by a newline.
    partial: Vec<u8>,
    tail: VecDeque<String>,
}

fn keep(tail: &mut VecDeque<String>, line: &str) {
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(match line.char_indices().nth(TAIL_LINE_CHARS) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    });
}

/// BuildKit's progress, printed plain.
#[derive(Default)]
pub struct BuildkitLog {
    vertices: HashMap<String, Vertex>,
    next: usize,
    failed: Option<String>,
}

impl BuildkitLog {
    pub fn update(&mut self, status: StatusResponse, out: &dyn Progress) {
        for v in status.vertexes {
            let next = &mut self.next;
            let state = self.vertices.entry(v.digest.clone()).or_insert_with(|| {
                *next += 1;
                Vertex { n: *next, ..Vertex::default() }
            });
            if !v.name.is_empty() {
                state.name = v.name.clone();
            }
            if !state.announced && (v.started.is_some() || v.cached || v.completed.is_some()) {
                state.announced = true;
                out.info(&format!("#{} {}", state.n, state.name));
            }
            if v.completed.is_some() && !state.done {
                state.done = true;
                flush_partial(state, out);
                if !v.error.is_empty() {
                    out.info(&format!("#{} ERROR: {}", state.n, v.error));
                    self.failed = Some(v.digest.clone());
                } else if v.cached {
                    out.info(&format!("#{} CACHED", state.n));
                } else {
                    let secs = match (&v.started, &v.completed) {
                        (Some(s), Some(c)) => (c.seconds - s.seconds) as f64 + f64::from(c.nanos - s.nanos) / 1e9,
                        _ => 0.0,
                    };
                    out.info(&format!("#{} DONE {secs:.1}s", state.n));
                }
            }
        }
        for s in status.statuses {
            // Pull and export progress: only its completion is worth a line in a CI log.
            if s.completed.is_some() {
                if let Some(v) = self.vertices.get(&s.vertex) {
                    let size = if s.total > 0 {
                        format!(" {}", crate::progress::human_bytes(s.total as u64))
                    } else {
                        String::new()
                    };
                    out.debug(&format!("#{} {}{size} done", v.n, s.id));
                }
            }
        }
        for log in status.logs {
            let Some(state) = self.vertices.get_mut(&log.vertex) else { continue };
            state.partial.extend_from_slice(&log.msg);
            while let Some(end) = state.partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = state.partial.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..line.len() - 1]).trim_end_matches('\r').to_string();
                out.info(&format!("#{} {text}", state.n));
                keep(&mut state.tail, &text);
            }
        }
    }

    /// The last vertex that failed, with its output's tail.
    pub fn failed(&self) -> Option<FailedStep> {
        let v = self.vertices.get(self.failed.as_ref()?)?;
        Some(FailedStep { name: v.name.clone(), step: None, tail: v.tail.iter().cloned().collect() })
    }
}

fn flush_partial(state: &mut Vertex, out: &dyn Progress) {
    if !state.partial.is_empty() {
        let text = String::from_utf8_lossy(&state.partial).trim_end().to_string();
        state.partial.clear();
        out.info(&format!("#{} {text}", state.n));
        keep(&mut state.tail, &text);
    }
}

/// The classic builder's output, printed as it comes.
#[derive(Default)]
pub struct ClassicLog {
    partial: String,
    step: Option<(usize, String)>,
    tail: VecDeque<String>,
}

impl ClassicLog {
    pub fn update(&mut self, text: &str, out: &dyn Progress) {
        self.partial.push_str(text);
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            self.line(line.trim_end_matches(['\n', '\r']), out);
        }
    }

    fn line(&mut self, line: &str, out: &dyn Progress) {
        out.info(line);
        if let Some(rest) = line.strip_prefix("Step ") {
            let number = rest.split('/').next().and_then(|n| n.trim().parse().ok());
            if let Some(n) = number {
                let name = rest.split_once(" : ").map(|(_, i)| i.to_string()).unwrap_or_default();
                self.step = Some((n, name));
                self.tail.clear();
                return;
            }
        }
        // The builder's own bookkeeping lines are not the command's output.
        let trimmed = line.trim_start();
        if !(trimmed.starts_with("---> ") || trimmed.starts_with("Removing intermediate container")) {
            keep(&mut self.tail, line);
        }
    }

    /// The step that was running when the build failed.
    pub fn failed(&mut self, out: &dyn Progress) -> Option<FailedStep> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(&rest, out);
        }
        let (n, name) = self.step.clone()?;
        Some(FailedStep { name, step: Some(n), tail: self.tail.iter().cloned().collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_buildkit_proto::google::protobuf::Timestamp;
    use bollard_buildkit_proto::moby::buildkit::v1::{Vertex as V, VertexLog};

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    #[test]
    fn buildkit_progress_prints_plain_and_keeps_the_failed_steps_tail() {
        let out = crate::progress::Collect::default();
        let mut log = BuildkitLog::default();
        let v = |digest: &str, name: &str| V { digest: digest.into(), name: name.into(), ..V::default() };
        log.update(
            StatusResponse {
                vertexes: vec![
                    V { started: at(1), ..v("a", "[1/2] FROM base") },
                    V { cached: true, ..v("b", "[2/2] COPY . .") },
                ],
                ..Default::default()
            },
            &out,
        );
        log.update(
            StatusResponse {
                vertexes: vec![
                    V { started: at(1), completed: at(3), ..v("a", "") },
                    V { completed: at(1), cached: true, ..v("b", "") },
                    V { started: at(4), ..v("c", "[3/3] RUN make") },
                ],
                logs: vec![
                    VertexLog { vertex: "c".into(), msg: b"compiling\nlin".to_vec(), ..Default::default() },
                    VertexLog { vertex: "c".into(), msg: b"k error\r\nexit".to_vec(), ..Default::default() },
                ],
                ..Default::default()
            },
            &out,
        );
        assert_eq!(log.failed(), None);
        log.update(
            StatusResponse {
                vertexes: vec![V { started: at(4), completed: at(5), error: "exit code: 2".into(), ..v("c", "") }],
                ..Default::default()
            },
            &out,
        );
        assert_eq!(
            out.lines(),
            vec![
                "info: #1 [1/2] FROM base",
                "info: #2 [2/2] COPY . .",
                "info: #1 DONE 2.0s",
                "info: #2 CACHED",
                "info: #3 [3/3] RUN make",
                "info: #3 compiling",
                "info: #3 link error",
                "info: #3 exit",
                "info: #3 ERROR: exit code: 2",
            ]
        );
        let failed = log.failed().unwrap();
        assert_eq!(failed.name, "[3/3] RUN make");
        assert_eq!(failed.tail, vec!["compiling", "link error", "exit"]);
    }

    #[test]
    fn the_tail_is_bounded() {
        let out = crate::progress::Quiet;
        let mut log = ClassicLog::default();
        log.update("Step 2/2 : RUN spam\n ---> Running in 1234\n", &out);
        for i in 0..100 {
            log.update(&format!("line {i}\n"), &out);
        }
        log.update("unterminated", &out);
        let failed = log.failed(&out).unwrap();
        assert_eq!((failed.step, failed.name.as_str()), (Some(2), "RUN spam"));
        assert_eq!(failed.tail.len(), TAIL_LINES);
        assert_eq!(failed.tail.last().map(String::as_str), Some("unterminated"));
        assert_eq!(failed.tail[0], "line 81");
    }
}

//! From text to logical lines, as BuildKit's `parser.Parse` reads a file: parser directives at the top, comments,
//! line continuations (comment and blank lines inside a continuation are skipped), and heredoc bodies collected
//! after the line that opens them.

use super::ast::{Directive, Heredoc};
use super::shell::{Lexer, NoVars};

/// One instruction's text with its line span and heredoc bodies.
#[derive(Debug, Clone)]
pub(crate) struct Logical {
    pub text: String,
    pub start: usize,
    pub end: usize,
    pub heredocs: Vec<Heredoc>,
}

pub(crate) struct Scanned {
    pub directives: Vec<Directive>,
    pub escape: char,
    pub lines: Vec<Logical>,
}

/// A scan failure: the 1-based line and what is wrong.
pub(crate) type ScanError = (usize, String);

const DIRECTIVES: [&str; 3] = ["syntax", "escape", "check"];

struct DirectiveParser {
    done: bool,
    found: Vec<Directive>,
}

impl DirectiveParser {
    /// Looks at a line for `# name=value`; the first line that is not a directive ends the directive block.
    fn line(&mut self, line: &str, number: usize) -> Result<Option<&Directive>, String> {
        if self.done {
            return Ok(None);
        }
        let Some(body) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(None);
        };
        let body = body.trim_start();
        let parsed = body.split_once('=').and_then(|(k, v)| {
            let k = k.trim_end();
            let v = v.trim();
            let mut chars = k.chars();
            let valid =
                chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric());
            (valid && !v.is_empty()).then(|| (k.to_ascii_lowercase(), v.to_string()))
        });
        let Some((name, value)) = parsed.filter(|(k, _)| DIRECTIVES.contains(&k.as_str())) else {
            self.done = true;
            return Ok(None);
        };
        if self.found.iter().any(|d| d.name == name) {
            return Err(format!("only one {name} parser directive can be used"));
        }
        self.found.push(Directive { name, value, line: number });
        Ok(self.found.last())
    }
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

/// Removes a trailing escape token (and the blanks after it) that continues the line, unless the token is itself
/// escaped. Returns the line and whether it ends the instruction.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line.to_string(), true);
    };
    match before.chars().last() {
        None => (String::new(), false),
        Some(c) if c == escape => (line.to_string(), true),
        Some(_) => (before.to_string(), false),
    }
}

/// Scans a whole file. `heredoc_capable` says whether a logical line's instruction may open heredocs.
pub(crate) fn scan(src: &str, heredoc_capable: impl Fn(&str, char) -> bool) -> Result<Scanned, ScanError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let physical: Vec<&str> = src.split_inclusive('\n').collect();
    let mut directives = DirectiveParser { done: false, found: Vec::new() };
    let mut escape = '\\';
    let mut lines = Vec::new();
    let mut i = 0;
    while i < physical.len() {
        let number = i + 1;
        let raw = trim_newline(physical[i]).trim_start();
        i += 1;
        if let Some(d) = directives.line(raw, number).map_err(|e| (number, e))? {
            if d.name == "escape" {
                escape = match d.value.as_str() {
                    "`" => '`',
                    "\\" => '\\',
                    other => return Err((number, format!("invalid escape token '{other}' does not match ` or \\"))),
                };
            }
        }
        let first = if is_comment(raw) { "" } else { raw };
        let (mut text, mut ended) = trim_continuation(first, escape);
        if ended && text.is_empty() {
            continue;
        }
        while !ended && i < physical.len() {
            let next = trim_newline(physical[i]);
            i += 1;
            if is_comment(next) || next.trim_start().is_empty() {
                continue;
            }
            let (part, end) = trim_continuation(next, escape);
            text.push_str(&part);
            ended = end;
        }
        let mut logical = Logical { text, start: number, end: i, heredocs: Vec::new() };
        if heredoc_capable(&logical.text, escape) && logical.text.contains("<<") {
            for mut heredoc in heredocs_in_line(&logical.text).map_err(|e| (number, e))? {
                let mut content = String::new();
                let mut terminated = false;
                while i < physical.len() {
                    let body_line = physical[i];
                    i += 1;
                    let mut candidate = trim_newline(body_line);
                    if heredoc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == heredoc.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(body_line);
                }
                if !terminated {
                    return Err((number, format!("unterminated heredoc: no line `{}` ends it", heredoc.name)));
                }
                heredoc.content = content;
                logical.heredocs.push(heredoc);
            }
            logical.end = i;
        }
        lines.push(logical);
    }
    if lines.is_empty() {
        // An empty file has one (empty) line: errors never name line 0 (found by fuzzing, issue 13).
        return Err((physical.len().max(1), "file with no instructions".into()));
    }
    Ok(Scanned { directives: directives.found, escape, lines })
}

/// The heredocs a line opens, in order (their bodies still empty).
fn heredocs_in_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let lexer = Lexer { raw_quotes: true, raw_escapes: true, skip_unset: true, ..Lexer::new('\\') };
    let words = lexer.process_words(line, &NoVars).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc(&w)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

/// Parses one word as a heredoc opener (`<<EOF`, `<<-EOF`, `<<'EOF'`, `3<<EOF`, `<< EOF`); `Ok(None)` when it is
/// not one, an error for an unbalanced quote in the delimiter.
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(['\t', '\n', '\u{c}', '\r', ' ']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let lexer = Lexer { skip_unset: true, ..Lexer::new('\\') };
    let cooked = lexer.process_words(rest, &NoVars).map_err(|e| e.to_string())?;
    if cooked.len() != 1 {
        return Ok(None);
    }
    let raw = Lexer { raw_quotes: true, ..lexer }.process_words(rest, &NoVars).map_err(|e| e.to_string())?;
    if raw.len() != cooked.len() {
        return Err(format!("internal lexing of heredoc produced inconsistent results: {rest}"));
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let name = cooked.into_iter().next().unwrap_or_default();
    let expand = quotes(&name) == quotes(&raw[0]);
    let fd = if digits == 0 { None } else { Some(word[..digits].parse().unwrap_or(0)) };
    Ok(Some(Heredoc { name, content: String::new(), expand, chomp, fd }))
}

/// Strips leading tabs from every line (the `<<-` form).
pub(crate) fn chomp_tabs(content: &str) -> String {
    content.split_inclusive('\n').map(|l| l.trim_start_matches('\t')).collect()
}

//! Variable expansion and word splitting as BuildKit's shell lexer (`frontend/dockerfile/shell/lex.go`) does it:
//! `$V`, `${V}`, `${V:-d}`, `${V-d}`, `${V:+a}`, `${V+a}`, `${V:?m}`, `${V#p}`, `${V%p}`, `${V/p/r}`, quotes and
//! the escape token. It never runs anything: it is a string transformation over a set of variables.
//!
//! What expansion may produce is bounded (issue 13): one expansion may add at most [`MAX_GROWTH`] bytes to its
//! input, and the expansions sharing an [`ExpansionBudget`] (one build) at most its size together, so a
//! Dockerfile that doubles a variable line after line (`ARG A=$A$A`) fails with an error naming the line instead
//! of exhausting memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::pattern::{pattern_regex, trim_prefix, trim_suffix};

/// Variables visible to an expansion.
pub trait Vars {
    fn get_var(&self, name: &str) -> Option<&str>;
}

impl Vars for BTreeMap<String, String> {
    fn get_var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Vars for HashMap<String, String> {
    fn get_var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// No variables at all.
pub struct NoVars;

impl Vars for NoVars {
    fn get_var(&self, _: &str) -> Option<&str> {
        None
    }
}

/// The most one expansion may add to the length of its input: far more than any real value needs (Linux refuses
/// an environment string over 128 KiB), far less than what a self-doubling variable reaches.
pub const MAX_GROWTH: usize = 1 << 20;

/// What all the expansions of one build may add to their inputs together, by default.
pub const MAX_TOTAL_GROWTH: usize = 32 << 20;

/// A ceiling shared by many expansions (those of one build): each charges what it added to its input.
#[derive(Debug)]
pub struct ExpansionBudget {
    left: AtomicUsize,
}

impl Default for ExpansionBudget {
    fn default() -> Self {
        ExpansionBudget::new(MAX_TOTAL_GROWTH)
    }
}

impl ExpansionBudget {
    pub fn new(bytes: usize) -> Self {
        ExpansionBudget { left: AtomicUsize::new(bytes) }
    }

    fn charge(&self, n: usize) -> Result<(), String> {
        self.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(n)).map(|_| ()).map_err(
            |_| {
                "the Dockerfile's variables expand to more than the build's limit in all \
                 (variables built from themselves, such as `ARG A=$A$A` repeated, grow without bound): \
                 no Dockerfile needs values that long"
                    .to_string()
            },
        )
    }
}

fn too_long() -> String {
    format!(
        "the expansion grows by more than {} MiB (a variable built from itself, such as `ARG A=$A$A` repeated, \
         doubles at each line): no Dockerfile needs values that long",
        MAX_GROWTH >> 20
    )
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {message}")]
pub struct ExpandError {
    pub word: String,
    pub message: String,
}

/// The lexer's options; the defaults are what instructions get.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub escape: char,
    /// Keep quote characters in the output (used to detect quoted heredoc names).
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave `$V` of unset variables as written instead of expanding them to nothing.
    pub skip_unset: bool,
    /// Treat quotes as ordinary characters (heredoc bodies).
    pub skip_quotes: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Lexer { escape, raw_quotes: false, raw_escapes: false, skip_unset: false, skip_quotes: false }
    }

    /// Expands `word` into one string, keeping the spaces between words.
    pub fn process_word(&self, word: &str, vars: &dyn Vars) -> Result<String, ExpandError> {
        self.run(word, vars).map(|(s, _)| s)
    }

    /// Expands `word` and splits the result into words (after expansion, honouring quotes).
    pub fn process_words(&self, word: &str, vars: &dyn Vars) -> Result<Vec<String>, ExpandError> {
        self.run(word, vars).map(|(_, w)| w)
    }

    /// [`Lexer::process_word`], charging what the expansion adds to `budget`.
    pub fn process_word_within(
        &self,
        word: &str,
        vars: &dyn Vars,
        budget: &ExpansionBudget,
    ) -> Result<String, ExpandError> {
        self.run_within(word, vars, budget).map(|(s, _)| s)
    }

    /// [`Lexer::process_words`], charging what the expansion adds to `budget`.
    pub fn process_words_within(
        &self,
        word: &str,
        vars: &dyn Vars,
        budget: &ExpansionBudget,
    ) -> Result<Vec<String>, ExpandError> {
        self.run_within(word, vars, budget).map(|(_, w)| w)
    }

    fn run_within(
        &self,
        word: &str,
        vars: &dyn Vars,
        budget: &ExpansionBudget,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let (s, w) = self.run(word, vars)?;
        budget
            .charge(s.len().saturating_sub(word.len()))
            .map_err(|message| ExpandError { word: word.to_string(), message })?;
        Ok((s, w))
    }

    fn run(&self, word: &str, vars: &dyn Vars) -> Result<(String, Vec<String>), ExpandError> {
        let mut s = Scan {
            lex: *self,
            chars: word.chars().collect(),
            pos: 0,
            vars,
            raw_escapes: self.raw_escapes,
            limit: word.len().saturating_add(MAX_GROWTH),
        };
        s.stop_on(None, self.raw_escapes).map_err(|message| ExpandError { word: word.to_string(), message })
    }
}

struct Scan<'a> {
    lex: Lexer,
    chars: Vec<char>,
    pos: usize,
    vars: &'a dyn Vars,
    raw_escapes: bool,
    /// The longest any string built from this input may get.
    limit: usize,
}

#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

type Res<T> = Result<T, String>;

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Fails once `s` is longer than the expansion may get.
    fn bounded(&self, s: &str) -> Res<()> {
        if s.len() > self.limit { Err(too_long()) } else { Ok(()) }
    }

    fn stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Res<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Res<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            let special = match ch {
                '$' => Some(self.dollar()?),
                '<' => Some(self.possible_heredoc()),
                '\'' if !self.lex.skip_quotes => Some(self.single_quote()?),
                '"' if !self.lex.skip_quotes => Some(self.double_quote()?),
                _ => None,
            };
            if let Some(tmp) = special {
                result.push_str(&tmp);
                self.bounded(&result)?;
                if ch == '$' {
                    words.add_string(&tmp);
                } else {
                    words.add_raw_string(&tmp);
                }
                continue;
            }
            self.pos += 1;
            let mut ch = ch;
            if ch == self.lex.escape {
                if self.raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                match self.next() {
                    Some(c) => ch = c,
                    None => break,
                }
                words.add_raw_char(ch);
            } else {
                words.add_char(ch);
            }
            result.push(ch);
        }
        if let Some(stop) = stop {
            return Err(format!("unexpected end of statement while looking for matching {stop}"));
        }
        // The characters after the last expansion count too: what the whole word grew by is what is bounded.
        self.bounded(&result)?;
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Res<String> {
        let mut out = String::new();
        let q = self.next();
        if self.lex.raw_quotes {
            out.extend(q);
        }
        loop {
            match self.next() {
                None => return Err("unexpected end of statement while looking for matching single-quote".into()),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Res<String> {
        let mut out = String::new();
        let q = self.next();
        if self.lex.raw_quotes {
            out.extend(q);
        }
        loop {
            match self.peek() {
                None => return Err("unexpected end of statement while looking for matching double-quote".into()),
                Some('"') => {
                    self.pos += 1;
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    out.push_str(&self.dollar()?);
                    self.bounded(&out)?;
                }
                Some(mut ch) => {
                    self.pos += 1;
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                self.pos += 1;
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn possible_heredoc(&mut self) -> String {
        self.pos += 1;
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.pos += 1;
        let mut out = String::from("<<");
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            out.push(c);
            self.pos += 1;
        }
        out
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.vars.get_var(name).map(str::to_string)
    }

    fn dollar(&mut self) -> Res<String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.name();
        let mut ch = self.next();
        let mut modifier: String = ch.into_iter().collect();
        match ch {
            Some('}') => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let null_is_unset = ch == Some(':');
                if null_is_unset {
                    ch = self.next();
                    modifier.extend(ch);
                }
                let raw = matches!(ch, Some('#' | '%'));
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({modifier}) in substitution"));
                }
                let word = self.stop_on_or_missing('}', raw)?;
                let value = self.lookup(&name);
                if self.lex.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{modifier}{word}}}"));
                }
                let unset = value.is_none() || (null_is_unset && value.as_deref() == Some(""));
                match ch {
                    Some('-') => Ok(if unset { word } else { value.unwrap_or_default() }),
                    Some('+') => Ok(if unset { String::new() } else { word }),
                    Some('?') => {
                        let problem = match &value {
                            None => "is not allowed to be unset",
                            Some(v) if null_is_unset && v.is_empty() => "is not allowed to be empty",
                            Some(v) => return Ok(v.clone()),
                        };
                        Err(format!("{name}: {}", if word.is_empty() { problem } else { &word }))
                    }
                    Some(c @ ('#' | '%')) => {
                        let value = value.unwrap_or_default();
                        let (greedy, pattern) = match word.strip_prefix(c) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        if c == '%' {
                            trim_suffix(&pattern, &value, greedy)
                        } else {
                            trim_prefix(&pattern, &value, greedy)
                        }
                    }
                    _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
                }
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let pattern = match self.stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => return Err("syntax error: missing '/' in ${}".into()),
                    Err(e) => return Err(e),
                };
                let replacement = self.stop_on_or_missing('}', true)?;
                let value = self.lookup(&name);
                if self.lex.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let value = value.unwrap_or_default();
                let re = pattern_regex(&pattern, true, false)?;
                // By hand rather than `Regex::replace_all`, to stop as soon as the result is too long.
                let mut out = String::new();
                let mut last = 0;
                for caps in re.captures_iter(&value).take(if all { usize::MAX } else { 1 }) {
                    let Some(m) = caps.get(0) else { continue };
                    out.push_str(&value[last..m.start()]);
                    caps.expand(&replacement, &mut out);
                    self.bounded(&out)?;
                    last = m.end();
                }
                out.push_str(&value[last..]);
                self.bounded(&out)?;
                Ok(out)
            }
            _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
        }
    }

    fn stop_on_or_missing(&mut self, stop: char, raw: bool) -> Res<String> {
        match self.stop_on(Some(stop), raw) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err("syntax error: missing '}'".into()),
            Err(e) => Err(e),
        }
    }

    /// A variable name: letters, digits and `_`; or a run of digits (positional); or one special parameter.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.pos += 1;
        }
        name
    }
}

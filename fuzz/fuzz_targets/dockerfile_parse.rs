//! The Dockerfile parser and BuildKit's word expansion, on any text.
//!
//! Properties: a parse error names the file and a line inside it; a parsed file's stages and instructions come
//! in order with lines inside the file; every ONBUILD trigger, read back from the text that goes into the image
//! config (as a later build reads it), parses to the same instruction; and expanding the words of every
//! instruction BuildKit expands, with the ARG and ENV values the file sets, stays within the growth limits.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use octopush_fuzz::dockerfile::shell::{ExpansionBudget, Lexer, MAX_GROWTH};
use octopush_fuzz::dockerfile::{self, Dockerfile, Heredoc, InstructionKind, ParseError};

const FILE: &str = "fuzz/Dockerfile";

/// What all the expansions of one input may add together: small, so that self-doubling inputs stay fast.
const BUDGET: usize = 4 * MAX_GROWTH;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = text.split('\n').count();
    match dockerfile::parse(text, FILE) {
        Err(e) => check_error(&e, 1, lines),
        Ok(df) => {
            check_order(&df, lines);
            check_onbuild(&df);
            expand(&df);
        }
    }
    // Each line alone, as an ONBUILD trigger from a base image's config is parsed: errors carry the given line.
    for line in text.lines().take(8) {
        match dockerfile::parse_instruction(line, FILE, 42) {
            Err(e) => check_error(&e, 42, 42),
            Ok(i) => assert_eq!((i.line, i.end_line), (42, 42)),
        }
    }
});

fn check_error(e: &ParseError, first: usize, last: usize) {
    assert_eq!(e.file, FILE);
    assert!((first..=last).contains(&e.line), "error line {} outside {first}..={last}: {e}", e.line);
    assert!(e.to_string().starts_with(&format!("{FILE}:{}: ", e.line)), "{e}");
    assert!(!e.message.is_empty());
}

fn check_order(df: &Dockerfile, lines: usize) {
    assert!(!df.stages.is_empty());
    let mut last = 0;
    for a in &df.global_args {
        assert!(a.line > last && a.line <= lines, "global ARG at line {} after {last}", a.line);
        last = a.line;
    }
    for stage in &df.stages {
        assert!(stage.line > last && stage.line <= lines, "FROM at line {} after {last}", stage.line);
        last = stage.line;
        for i in &stage.instructions {
            assert!(i.line > last, "{} at line {} after {last}", i.kind.name(), i.line);
            assert!(i.end_line >= i.line && i.end_line <= lines, "{} spans {}..={}", i.kind.name(), i.line, i.end_line);
            last = i.end_line;
            let keyword = i.original.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
            assert_eq!(keyword, i.kind.name(), "instruction read from {:?}", i.original);
        }
    }
}

/// An ONBUILD trigger goes into the config as text; the build FROM that image parses it again on its own.
fn check_onbuild(df: &Dockerfile) {
    if df.escape != '\\' {
        return; // the trigger text is read back with the default escape token, as BuildKit does
    }
    for i in df.stages.iter().flat_map(|s| &s.instructions) {
        if let InstructionKind::Onbuild(ob) = &i.kind {
            match dockerfile::parse_instruction(&ob.expression, FILE, i.line) {
                Ok(again) => assert_eq!(&again.kind, ob.trigger.as_ref(), "trigger {:?}", ob.expression),
                Err(e) => panic!("ONBUILD trigger {:?} does not parse again: {e}", ob.expression),
            }
        }
    }
}

/// Expands what BuildKit expands, stage by stage, as the native builder does: global ARGs for FROM, then each
/// stage's ARG and ENV values for its instructions. Errors are fine (bad substitutions, unset `${V:?}`); panics
/// and unbounded growth are not.
fn expand(df: &Dockerfile) {
    let mut x = Expander { lexer: Lexer::new(df.escape), budget: ExpansionBudget::new(BUDGET), added: 0 };
    let mut global = BTreeMap::new();
    for a in df.global_args.iter().flat_map(|a| &a.args) {
        if let Some(v) = a.default.as_deref().and_then(|d| x.word(d, &global)) {
            global.insert(a.name.clone(), v);
        }
    }
    for stage in &df.stages {
        x.word(&stage.base, &global);
        x.words(stage.platform.iter(), &global);
        let mut vars = BTreeMap::new();
        for i in &stage.instructions {
            match &i.kind {
                InstructionKind::Arg(args) => {
                    for a in args {
                        let value = match &a.default {
                            Some(d) => x.word(d, &vars),
                            None => global.get(&a.name).cloned(),
                        };
                        vars.insert(a.name.clone(), value.unwrap_or_default());
                    }
                }
                InstructionKind::Env(kvs) => {
                    for kv in kvs {
                        let value = x.word(&kv.value, &vars).unwrap_or_default();
                        let key = x.word(&kv.key, &vars).unwrap_or_default();
                        vars.insert(key, value);
                    }
                }
                InstructionKind::Label(kvs) => x.words(kvs.iter().flat_map(|kv| [&kv.key, &kv.value]), &vars),
                InstructionKind::Copy(c) | InstructionKind::Add(c) => {
                    x.words(c.sources.iter().chain([&c.dest]).chain(&c.exclude), &vars);
                    x.words([&c.from, &c.chown, &c.chmod, &c.checksum].into_iter().flatten(), &vars);
                    x.heredocs(&c.heredocs, &vars);
                }
                InstructionKind::Run(r) => x.heredocs(&r.heredocs, &vars),
                InstructionKind::Expose(ports) => {
                    for p in ports {
                        if let Ok(words) = x.lexer.process_words_within(p, &vars, &x.budget) {
                            assert!(words.iter().all(|w| !w.is_empty()), "an empty word from {p:?}: {words:?}");
                        }
                    }
                }
                InstructionKind::Volume(v) => x.words(v.iter(), &vars),
                InstructionKind::Workdir(w) | InstructionKind::User(w) | InstructionKind::StopSignal(w) => {
                    x.word(w, &vars);
                }
                _ => {}
            }
        }
    }
}

struct Expander {
    lexer: Lexer,
    budget: ExpansionBudget,
    /// What the expansions so far added to their inputs.
    added: usize,
}

impl Expander {
    fn word(&mut self, w: &str, vars: &BTreeMap<String, String>) -> Option<String> {
        self.word_with(self.lexer, w, vars)
    }

    fn words<'a>(&mut self, ws: impl IntoIterator<Item = &'a String>, vars: &BTreeMap<String, String>) {
        for w in ws {
            self.word(w, vars);
        }
    }

    /// Bodies of unquoted heredocs are expanded with quotes as plain characters.
    fn heredocs(&mut self, docs: &[Heredoc], vars: &BTreeMap<String, String>) {
        let lexer = Lexer { skip_quotes: true, ..Lexer::new('\\') };
        for h in docs.iter().filter(|h| h.expand) {
            self.word_with(lexer, &h.content, vars);
        }
    }

    fn word_with(&mut self, lexer: Lexer, w: &str, vars: &BTreeMap<String, String>) -> Option<String> {
        let out = lexer.process_word_within(w, vars, &self.budget);
        let Ok(out) = out else {
            return None;
        };
        assert!(out.len() <= w.len() + MAX_GROWTH, "{} bytes from {} bytes", out.len(), w.len());
        assert_eq!(lexer.process_word(w, vars).as_ref(), Ok(&out), "the budget changed the result");
        self.added += out.len().saturating_sub(w.len());
        assert!(self.added <= BUDGET, "expansions added {} bytes, over the budget of {BUDGET}", self.added);
        Some(out)
    }
}

//! Splitting one logical line into its parts the way BuildKit's `parser/split_command.go` and `line_parsers.go`
//! do: the keyword, the leading `--flags`, and the arguments as whitespace-separated words, quote-aware words
//! (ENV, LABEL, ARG) or a JSON array (the exec form).

/// `[\t\v\f\r ]`: what BuildKit's `reWhitespace` splits on.
pub(crate) fn is_separator(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits a logical line into keyword, flags and the remaining argument text.
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let line = line.trim();
    let Some(idx) = line.find(is_separator) else {
        return (line.to_string(), Vec::new(), String::new());
    };
    let cmd = &line[..idx];
    let rest = line[idx..].trim_start_matches(is_separator);
    let (args, flags) = extract_flags(rest, escape);
    (cmd.to_string(), flags, args.trim().to_string())
}

/// Leading words that start with `--` are flags (quotes and escapes processed); `--` alone ends them.
fn extract_flags(line: &str, escape: char) -> (String, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut flags = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && chars[i].1.is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            return (String::new(), flags);
        }
        if !(chars[i].1 == '-' && chars.get(i + 1).map(|c| c.1) == Some('-')) {
            return (line[chars[i].0..].to_string(), flags);
        }
        let mut word = String::new();
        let mut blank_ok = false;
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i].1;
            match quote {
                None if c.is_whitespace() => break,
                None if c == '\'' || c == '"' => {
                    quote = Some(c);
                    blank_ok = true;
                }
                Some(q) if c == q => quote = None,
                _ if c == escape => {
                    if i + 1 < chars.len() {
                        i += 1;
                        word.push(chars[i].1);
                    } else if quote.is_some() {
                        quote = None;
                    }
                }
                _ => word.push(c),
            }
            i += 1;
        }
        if word == "--" {
            let rest = chars.get(i).map(|c| &line[c.0..]).unwrap_or("");
            return (rest.to_string(), flags);
        }
        if blank_ok || !word.is_empty() {
            flags.push(word);
        }
    }
}

/// Whitespace-separated words (`FROM`, `EXPOSE`, the shell form of COPY/ADD/VOLUME).
pub(crate) fn split_whitespace(rest: &str) -> Vec<String> {
    rest.split(is_separator).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

/// The exec form: `Ok(Some)` for a JSON array of strings, `Ok(None)` when the text is not a JSON array (it is
/// then the shell form), an error for an array holding anything but strings.
pub(crate) fn parse_json(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    match serde_json::from_str::<serde_json::Value>(rest) {
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err("when using JSON array syntax, arrays must be comprised of strings only".to_string()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Ok(None),
    }
}

/// Quote-aware words for ENV, LABEL and ARG: quotes and escapes are kept in the words (the expansion at build
/// time removes them), but whitespace inside quotes does not split.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !in_word {
            if c.is_whitespace() {
                i += 1;
                continue;
            }
            in_word = true;
        }
        match quote {
            None => {
                if c.is_whitespace() {
                    in_word = false;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    i += 1;
                    continue;
                }
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    if i + 1 == chars.len() {
                        i += 1;
                        continue;
                    }
                    word.push(c);
                    i += 1;
                }
                word.push(chars[i]);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    if i + 1 == chars.len() {
                        quote = None;
                        i += 1;
                        continue;
                    }
                    word.push(c);
                    i += 1;
                }
                word.push(chars[i]);
            }
        }
        i += 1;
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// A flag definition for [`Flags::parse`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    Bool,
    String,
    Strings,
}

/// Parsed `--name=value` flags of one instruction, checked against the flags it accepts (BuildKit's `BFlags`).
#[derive(Default)]
pub(crate) struct Flags {
    values: Vec<(String, Vec<String>)>,
}

impl Flags {
    pub(crate) fn parse(raw: &[String], allowed: &[(&str, FlagKind)]) -> Result<Flags, String> {
        let mut out = Flags::default();
        for a in raw {
            if a == "--" {
                break;
            }
            let Some(body) = a.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {a}"));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(_, kind)) = allowed.iter().find(|(n, _)| *n == name) else {
                let known: Vec<String> = allowed.iter().map(|(n, _)| format!("--{n}")).collect();
                let hint = if known.is_empty() {
                    "it takes no flags".to_string()
                } else {
                    format!("it accepts {}", known.join(", "))
                };
                return Err(format!("unknown flag: --{name} ({hint})"));
            };
            let seen = out.values.iter().position(|(n, _)| n == name);
            if seen.is_some() && kind != FlagKind::Strings {
                return Err(format!("duplicate flag specified: --{name}"));
            }
            let v = match (kind, value) {
                (FlagKind::Bool, Some("")) => return Err(format!("missing a value on flag: --{name}")),
                (FlagKind::Bool, None) => "true".to_string(),
                (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" => "true".into(),
                    "false" => "false".into(),
                    _ => return Err(format!("expecting boolean value for flag --{name}, not: {v}")),
                },
                (_, None) => return Err(format!("missing a value on flag: --{name}")),
                (_, Some(v)) => v.to_string(),
            };
            match seen {
                Some(i) => out.values[i].1.push(v),
                None => out.values.push((name.to_string(), vec![v])),
            }
        }
        Ok(out)
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.last().cloned())
    }

    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }

    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }

    /// Flags in the order given, as `--name=value`, for instructions that keep them verbatim (RUN).
    pub(crate) fn raw(&self) -> Vec<String> {
        self.values.iter().flat_map(|(n, vs)| vs.iter().map(move |v| format!("--{n}={v}"))).collect()
    }
}

//! The `${V#pattern}`, `${V%pattern}` and `${V/pattern/replacement}` wildcard patterns of the shell lexer,
//! converted to regexes as BuildKit converts them (`*`, `?` and `\` escapes; no bracket expressions).

/// A shell wildcard pattern (`*`, `?`, `\` escapes; no brackets) as a regex, as BuildKit converts it.
pub(crate) fn pattern_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<regex::Regex, String> {
    let mut out = String::from(if anchored { "^" } else { "" });
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            '\\' => {
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(n @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(n);
                    }
                    other => {
                        let shown: String = other.into_iter().collect();
                        return Err(format!("invalid pattern ({pattern}) in substitution: invalid escape '\\{shown}'"));
                    }
                }
            }
            '[' | ']' | '{' | '}' | '.' | '+' | '(' | ')' | '|' | '^' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    regex::Regex::new(&out).map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))
}

pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let re = pattern_regex(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// Shortest/longest suffix removal: reverse both sides (keeping escapes attached) and trim a prefix.
pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let p: Vec<char> = pattern.chars().collect();
    let mut tokens: Vec<String> = Vec::new();
    let mut i = 0;
    while i < p.len() {
        if p[i] == '\\' && i + 1 < p.len() {
            tokens.push(format!("\\{}", p[i + 1]));
            i += 2;
        } else {
            tokens.push(p[i].to_string());
            i += 1;
        }
    }
    let reversed_pattern: String = tokens.into_iter().rev().collect();
    let reversed_value: String = value.chars().rev().collect();
    Ok(trim_prefix(&reversed_pattern, &reversed_value, greedy)?.chars().rev().collect())
}

//! `{{...}}` expressions: the subset of Handlebars that metadata-action's patterns and values use (simple
//! mustaches, helper calls with string/number/path parameters and `key=value` hashes, `{{{...}}}`, comments,
//! `~` whitespace control, `\{{` escapes), rendered with Handlebars' HTML escaping so outputs match.

/// A parameter of a helper call.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Str(String),
    Num(String),
    Bool(bool),
    /// A path (`foo`, `a.b`): Handlebars looks it up in the context, which here holds only helpers, so it is
    /// undefined.
    Path(String),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub params: Vec<Param>,
    pub hash: Vec<(String, Param)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Mustache { call: Call, escape: bool },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

/// What a name resolves to when rendering.
pub enum Resolved {
    Value(String),
    /// Not known in this context: renders empty, as Handlebars does (the caller is told, to warn).
    Unknown,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let mut nodes: Vec<Node> = Vec::new();
        let mut text = String::new();
        let mut rest = src;
        let mut strip_next = false;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("\\{{") {
                text.push_str("{{");
                rest = after;
                continue;
            }
            if !rest.starts_with("{{") {
                let c = rest.chars().next().unwrap_or_default();
                text.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            let triple = rest.starts_with("{{{");
            let close = if triple { "}}}" } else { "}}" };
            let mut inner = &rest[if triple { 3 } else { 2 }..];
            let strip_before = inner.starts_with('~');
            if strip_before {
                inner = &inner[1..];
            }
            let (body, strip_after, after) = if let Some(c) = inner.strip_prefix("!--") {
                let (end, len, strip) =
                    comment_end(c, "--").ok_or_else(|| format!("an unclosed comment in `{src}`"))?;
                (None, strip, &c[end + len..])
            } else if let Some(c) = inner.strip_prefix('!') {
                let (end, len, strip) = comment_end(c, "").ok_or_else(|| format!("an unclosed comment in `{src}`"))?;
                (None, strip, &c[end + len..])
            } else {
                let end = inner.find(close).ok_or_else(|| format!("`{{{{` without `}}}}` in `{src}`"))?;
                let body = &inner[..end];
                let strip = body.ends_with('~');
                (Some(body.strip_suffix('~').unwrap_or(body)), strip, &inner[end + close.len()..])
            };
            if strip_next {
                text = text.trim_start().to_string();
            }
            if strip_before {
                text = text.trim_end().to_string();
            }
            if !text.is_empty() {
                nodes.push(Node::Text(std::mem::take(&mut text)));
            }
            strip_next = strip_after;
            rest = after;
            let Some(body) = body else { continue };
            let trimmed = body.trim();
            let escape = !triple;
            let (escape, expr) = match trimmed.strip_prefix('&') {
                Some(e) => (false, e.trim_start()),
                None => (escape, trimmed),
            };
            if let Some(c) = expr.chars().next().filter(|c| matches!(c, '#' | '/' | '^' | '>' | '*')) {
                return Err(format!("`{{{{{c}...}}}}` (blocks and partials) is not supported in `{src}`"));
            }
            nodes.push(Node::Mustache { call: parse_call(expr).map_err(|e| format!("{e} in `{src}`"))?, escape });
        }
        if strip_next {
            text = text.trim_start().to_string();
        }
        if !text.is_empty() {
            nodes.push(Node::Text(text));
        }
        Ok(Template { nodes })
    }

    /// metadata-action's `isRawStatement`: the whole pattern is the one mustache `{{raw}}`.
    pub fn is_raw_statement(src: &str) -> bool {
        matches!(Template::parse(src), Ok(t) if matches!(t.nodes.as_slice(), [Node::Mustache { call, .. }] if call.name == "raw"))
    }

    /// Renders with `resolve` answering each call; names it does not know render empty and are collected in
    /// `unknown`.
    pub fn render(
        &self,
        resolve: &mut dyn FnMut(&Call) -> Result<Resolved, String>,
        unknown: &mut Vec<String>,
    ) -> Result<String, String> {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Mustache { call, escape } => match resolve(call)? {
                    Resolved::Value(v) if *escape => out.push_str(&escape_html(&v)),
                    Resolved::Value(v) => out.push_str(&v),
                    Resolved::Unknown if !call.params.is_empty() || !call.hash.is_empty() => {
                        return Err(format!("unknown helper `{}`", call.name));
                    }
                    Resolved::Unknown => unknown.push(call.name.clone()),
                },
            }
        }
        Ok(out)
    }
}

/// Where a comment ends: the first `marker` followed by `}}` or `~}}`, as (index, length, strips after).
fn comment_end(s: &str, marker: &str) -> Option<(usize, usize, bool)> {
    s.char_indices().find_map(|(i, _)| {
        let after = s[i..].strip_prefix(marker)?;
        if after.starts_with("}}") {
            Some((i, marker.len() + 2, false))
        } else if after.starts_with("~}}") {
            Some((i, marker.len() + 3, true))
        } else {
            None
        }
    })
}

/// Handlebars' `escapeExpression`.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '`' => out.push_str("&#x60;"),
            '=' => out.push_str("&#x3D;"),
            c => out.push(c),
        }
    }
    out
}

/// Characters Handlebars does not allow in an identifier.
fn is_id_char(c: char) -> bool {
    !c.is_whitespace() && !"!\"#%&'()*+,./;<=>@[\\]^`{|}~".contains(c)
}

fn parse_call(expr: &str) -> Result<Call, String> {
    let mut tokens = Tokens { rest: expr.trim() };
    let name = match tokens.next()? {
        Some(Tok::Param(Param::Path(p))) => p,
        Some(Tok::Param(p)) => return Err(format!("`{p:?}` is not a name")),
        Some(Tok::Hash(..)) | None => return Err("an empty `{{}}`".to_string()),
    };
    let mut call = Call { name, params: Vec::new(), hash: Vec::new() };
    while let Some(t) = tokens.next()? {
        match t {
            Tok::Param(p) if call.hash.is_empty() => call.params.push(p),
            Tok::Param(_) => return Err("a parameter after `key=value`".to_string()),
            Tok::Hash(k, v) => call.hash.push((k, v)),
        }
    }
    Ok(call)
}

enum Tok {
    Param(Param),
    Hash(String, Param),
}

struct Tokens<'a> {
    rest: &'a str,
}

impl Tokens<'_> {
    fn next(&mut self) -> Result<Option<Tok>, String> {
        self.rest = self.rest.trim_start();
        if self.rest.is_empty() {
            return Ok(None);
        }
        // `key=value`
        let id_len: usize = self.rest.chars().take_while(|c| is_id_char(*c)).map(char::len_utf8).sum();
        if id_len > 0 && self.rest[id_len..].starts_with('=') {
            let key = self.rest[..id_len].to_string();
            self.rest = &self.rest[id_len + 1..];
            return match self.value()? {
                Some(v) => Ok(Some(Tok::Hash(key, v))),
                None => Err(format!("`{key}=` without a value")),
            };
        }
        Ok(self.value()?.map(Tok::Param))
    }

    fn value(&mut self) -> Result<Option<Param>, String> {
        self.rest = self.rest.trim_start();
        let Some(first) = self.rest.chars().next() else { return Ok(None) };
        if first == '\'' || first == '"' {
            let mut s = String::new();
            let mut chars = self.rest[1..].char_indices();
            while let Some((i, c)) = chars.next() {
                if c == '\\' {
                    if let Some((_, n)) = chars.clone().next().filter(|(_, n)| *n == first) {
                        s.push(n);
                        chars.next();
                        continue;
                    }
                }
                if c == first {
                    self.rest = &self.rest[1 + i + 1..];
                    return Ok(Some(Param::Str(s)));
                }
                s.push(c);
            }
            return Err("an unclosed string".to_string());
        }
        if first == '(' || first == '[' {
            return Err(format!("`{first}` (sub-expressions and literal segments) is not supported"));
        }
        let len: usize =
            self.rest.chars().take_while(|c| is_id_char(*c) || *c == '.' || *c == '/').map(char::len_utf8).sum();
        if len == 0 {
            return Err(format!("unexpected `{first}`"));
        }
        let word = &self.rest[..len];
        self.rest = &self.rest[len..];
        let is_num = {
            let digits = word.strip_prefix('-').unwrap_or(word);
            let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
            !int.is_empty()
                && int.chars().all(|c| c.is_ascii_digit())
                && !frac.is_empty()
                && frac.chars().all(|c| c.is_ascii_digit())
        };
        Ok(Some(match word {
            "true" => Param::Bool(true),
            "false" => Param::Bool(false),
            "null" | "undefined" => Param::Null,
            _ if is_num => Param::Num(word.to_string()),
            _ => Param::Path(word.to_string()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str) -> Result<(String, Vec<String>), String> {
        let t = Template::parse(src)?;
        let mut unknown = Vec::new();
        let out = t.render(
            &mut |c: &Call| {
                Ok(match c.name.as_str() {
                    "branch" => Resolved::Value("main".into()),
                    "odd" => Resolved::Value("a&b='c'".into()),
                    "echo" => Resolved::Value(format!("{:?}|{:?}", c.params, c.hash)),
                    _ => Resolved::Unknown,
                })
            },
            &mut unknown,
        )?;
        Ok((out, unknown))
    }

    fn ok(src: &str) -> String {
        render(src).map(|r| r.0).unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn text_and_simple_mustaches() {
        assert_eq!(ok("plain"), "plain");
        assert_eq!(ok("x-{{branch}}-{{ branch }}"), "x-main-main");
        assert_eq!(ok(""), "");
    }

    #[test]
    fn escapes_like_handlebars() {
        assert_eq!(ok("{{odd}}"), "a&amp;b&#x3D;&#x27;c&#x27;");
        assert_eq!(ok("{{{odd}}}"), "a&b='c'");
        assert_eq!(ok("{{& odd}}"), "a&b='c'");
        assert_eq!(ok("\\{{branch}}"), "{{branch}}");
    }

    #[test]
    fn comments_and_whitespace_control() {
        assert_eq!(ok("a{{! note }}b"), "ab");
        assert_eq!(ok("a{{!-- }} --}}b"), "ab");
        assert_eq!(ok("a  {{~branch~}}  b"), "amainb");
    }

    #[test]
    fn helper_parameters() {
        assert_eq!(ok("{{{echo 'YYYY' tz='Asia/Tokyo'}}}"), r#"[Str("YYYY")]|[("tz", Str("Asia/Tokyo"))]"#);
        assert_eq!(ok("{{{echo YYYY-MM-DD-HHmmSS}}}"), r#"[Path("YYYY-MM-DD-HHmmSS")]|[]"#);
        assert_eq!(ok(r#"{{{echo "a\"b" 12 true}}}"#), r#"[Str("a\"b"), Num("12"), Bool(true)]|[]"#);
    }

    #[test]
    fn unknown_names_render_empty_and_are_reported() {
        assert_eq!(render("a{{nope}}b"), Ok(("ab".into(), vec!["nope".into()])));
        assert!(render("{{nope 'x'}}").is_err());
    }

    #[test]
    fn syntax_errors() {
        for bad in ["{{branch", "{{#if x}}y{{/if}}", "{{> partial}}", "{{echo 'open}}", "{{}}", "{{echo (sub)}}"] {
            assert!(render(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn raw_statement() {
        for (p, want) in [
            ("{{ raw }}.{{ version }}", false),
            ("{{ version }},{{raw }.", false),
            ("{{ raw }}", true),
            ("{{ raw}}", true),
            ("{{raw}}", true),
            ("v{{raw}}", false),
        ] {
            assert_eq!(Template::is_raw_statement(p), want, "{p}");
        }
    }
}

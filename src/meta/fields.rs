//! One CSV record per line, as metadata-action reads `tags`, `flavor` and `images` lines with csv-parse:
//! `"..."` quotes a field, `""` is a quote inside it, and each field is `key=value` or a bare value.

/// Splits one line into CSV fields.
pub fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        // Blanks before an opening quote are allowed (csv-parse would refuse them; nobody means anything else).
        let mut field = String::new();
        let mut lead = String::new();
        while let Some(c) = chars.peek().copied().filter(|c| *c == ' ' || *c == '\t') {
            lead.push(c);
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed (add the closing `\"`)".into()),
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => out.push(field),
                Some(c) => {
                    return Err(format!(
                        "`{c}` after a closing quote: quote the whole field (`\"key=value\"`), and double quotes inside it"
                    ));
                }
            }
        } else {
            field.push_str(&lead);
            loop {
                match chars.next() {
                    None => {
                        out.push(field);
                        return Ok(out);
                    }
                    Some(',') => {
                        out.push(field);
                        break;
                    }
                    Some('"') => {
                        return Err(
                            "a quote inside an unquoted field: quote the whole field (`\"key=value\"`) and double the quotes inside it"
                                .into(),
                        );
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

/// A field as `(key, value)`: the key (lower case) is what comes before the first `=`; a field without one is a
/// bare value (`None` key). Both are trimmed.
pub fn key_value(field: &str) -> (Option<String>, String) {
    match field.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => (Some(k.trim().to_ascii_lowercase()), v.trim().to_string()),
        _ => (None, field.trim().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields() {
        assert_eq!(fields("a,b ,c"), Ok(vec!["a".into(), "b ".into(), "c".into()]));
        assert_eq!(fields(r#"type=match,"pattern=\d,\d""#), Ok(vec!["type=match".into(), r"pattern=\d,\d".into()]));
        assert_eq!(fields(r#""say ""hi""",x"#), Ok(vec![r#"say "hi""#.into(), "x".into()]));
        assert_eq!(fields(r#"a, "b" "#), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(fields("a,"), Ok(vec!["a".into(), "".into()]));
        assert!(fields(r#"a,"open"#).is_err());
        assert!(fields(r#"value=say "hi""#).is_err());
        assert!(fields(r#""a"b"#).is_err());
    }

    #[test]
    fn key_values() {
        assert_eq!(key_value(" Type = semver "), (Some("type".into()), "semver".into()));
        assert_eq!(key_value("value=a=b"), (Some("value".into()), "a=b".into()));
        assert_eq!(key_value("bare"), (None, "bare".into()));
        assert_eq!(key_value("=x"), (None, "=x".into()));
    }
}

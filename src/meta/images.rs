//! The `images` input: lines of names (or `name=...,enable=...` attributes), lower-cased and checked against
//! the distribution grammar, since registries refuse anything else.

use super::MetaError;
use super::fields::{fields, key_value};
use crate::image::{ImageName, InvalidName};

/// The enabled image names, lower-cased and checked against the distribution grammar.
pub fn images(input: &[String]) -> Result<Vec<String>, MetaError> {
    Ok(enabled(input)?.into_iter().map(|(name, _)| name).collect())
}

/// The enabled images as registry + repository, as the pushes need them.
pub fn image_names(input: &[String]) -> Result<Vec<ImageName>, MetaError> {
    Ok(enabled(input)?.into_iter().map(|(_, parsed)| parsed).collect())
}

/// Each enabled image once: the name as written (lower-cased) and parsed.
fn enabled(input: &[String]) -> Result<Vec<(String, ImageName)>, MetaError> {
    let mut out: Vec<(String, ImageName)> = Vec::new();
    for (n, line) in super::lines(input) {
        let err = |m: String| super::line_error("images", n, line, m);
        for (name, enable) in image_line(line).map_err(err)? {
            let name = name.to_ascii_lowercase();
            let parsed = check_image(&name).map_err(err)?;
            if enable && !out.iter().any(|(seen, _)| *seen == name) {
                out.push((name, parsed));
            }
        }
    }
    Ok(out)
}

fn check_image(name: &str) -> Result<ImageName, String> {
    if name.is_empty() || name.ends_with('/') || name.contains('@') {
        return Err(format!("`{name}` is not an image name (`REGISTRY/OWNER/IMAGE`, no tag or digest)"));
    }
    ImageName::parse(name).map_err(|e| {
        let hint = match &e {
            InvalidName::Repository(repository) if repository.contains(':') => " (tags come from `tags`, not `images`)",
            _ => "",
        };
        format!("{e}{hint}")
    })
}

/// One `images` line: the name and whether it is enabled (`name=ghcr.io/o/app,enable=false`). A line of bare
/// names is a comma-separated list of images.
pub fn image_line(line: &str) -> Result<Vec<(String, bool)>, String> {
    let fs = fields(line)?;
    if fs.iter().all(|f| key_value(f).0.is_none()) {
        return Ok(fs.iter().map(|f| f.trim().to_string()).filter(|n| !n.is_empty()).map(|n| (n, true)).collect());
    }
    let mut name = String::new();
    let mut enable = true;
    for f in fs {
        match key_value(&f) {
            (None, v) if !v.is_empty() => name = v,
            (None, _) => {}
            (Some(k), v) if k == "name" => name = v,
            (Some(k), v) if k == "enable" => {
                enable = match v.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("`enable={v}` is not true or false")),
                }
            }
            (Some(k), _) => return Err(format!("unknown image attribute `{k}` (name=, enable=)")),
        }
    }
    if name.is_empty() {
        return Err("no image name (`name=ghcr.io/OWNER/IMAGE`)".into());
    }
    Ok(vec![(name, enable)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_lines() {
        assert_eq!(image_line("user/app"), Ok(vec![("user/app".into(), true)]));
        assert_eq!(image_line("a/b, c/d"), Ok(vec![("a/b".into(), true), ("c/d".into(), true)]));
        assert_eq!(image_line("ghcr.io/u/app,enable=false"), Ok(vec![("ghcr.io/u/app".into(), false)]));
        assert_eq!(image_line("name=ghcr.io/u/app,enable=true"), Ok(vec![("ghcr.io/u/app".into(), true)]));
        assert!(image_line("name=x,enable=no").is_err());
        assert!(image_line("name=x,push=true").is_err());
        assert!(image_line("enable=false").is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_image("ghcr.io/octo-org/app").is_ok());
        assert!(check_image("localhost:5000/x").is_ok());
        assert!(check_image("octo/app").is_ok());
        for bad in ["ghcr.io/o/app:v1", "o/app@sha256:abc", "ghcr.io/", "bad host!/x", "a//b"] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
    }
}

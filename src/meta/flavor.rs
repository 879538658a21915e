//! The `flavor` input: `latest=auto|true|false`, and a `prefix`/`suffix` for every rule that sets none (and for
//! `latest` with `onlatest=true`).

use super::fields::{fields, key_value};

/// The `flavor` input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flavor {
    /// `None`: `auto`.
    pub latest: Option<bool>,
    pub prefix: String,
    pub prefix_latest: bool,
    pub suffix: String,
    pub suffix_latest: bool,
}

impl Flavor {
    /// Folds one flavor line in. `onlatest=` applies to the `prefix` or `suffix` before it on the same line.
    pub fn apply_line(&mut self, line: &str) -> Result<(), String> {
        let mut onlatest_for = "";
        for f in fields(line)? {
            let (Some(k), v) = key_value(&f) else {
                return Err(format!("`{}` is not `key=value` (latest=, prefix=, suffix=, onlatest=)", f.trim()));
            };
            match k.as_str() {
                "latest" => {
                    self.latest = match v.as_str() {
                        "auto" => None,
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => return Err(format!("`latest={v}` is not auto, true or false")),
                    }
                }
                "prefix" => {
                    self.prefix = v;
                    onlatest_for = "prefix";
                }
                "suffix" => {
                    self.suffix = v;
                    onlatest_for = "suffix";
                }
                "onlatest" => {
                    let on = match v.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("`onlatest={v}` is not true or false")),
                    };
                    match onlatest_for {
                        "prefix" => self.prefix_latest = on,
                        "suffix" => self.suffix_latest = on,
                        _ => {}
                    }
                }
                _ => return Err(format!("unknown flavor `{k}` (latest=, prefix=, suffix=, onlatest=)")),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_lines() {
        let mut f = Flavor::default();
        f.apply_line("latest=false").unwrap_or_else(|e| panic!("{e}"));
        f.apply_line("prefix=foo-,onlatest=true").unwrap_or_else(|e| panic!("{e}"));
        f.apply_line("suffix=-dev").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            f,
            Flavor {
                latest: Some(false),
                prefix: "foo-".into(),
                prefix_latest: true,
                suffix: "-dev".into(),
                suffix_latest: false
            }
        );
        for bad in ["latest=yes", "prefix", "colour=red", "suffix=x,onlatest=maybe"] {
            assert!(Flavor::default().apply_line(bad).is_err(), "{bad}");
        }
    }
}

//! `prune` and `restore`'s inputs, parsed and checked without I/O: the package (by default the image's name, so
//! nobody has to guess its URL encoding), its owner, the rules and, for a restore, the version ids.

use octopush::image::ImageName;
use octopush::meta::GitContext;
use octopush::packages::{PackageType, Policy, TagPattern, parse_age, parse_package_type};

use crate::cli::RawInputs;
use crate::config::{CommandKind, ConfigError, bad};

/// What a prune or restore works on, validated.
#[derive(Debug)]
pub struct PackagesConfig {
    pub owner: String,
    pub package: String,
    pub package_type: PackageType,
    /// A container package's image (`ghcr.io/OWNER/PACKAGE`), read from the registry as publishing would.
    pub image: Option<ImageName>,
    pub policy: Policy,
    pub dry_run: bool,
    /// `restore`: the ids, in the order given (a prune's `deleted` output lists them in deletion order).
    pub versions: Vec<u64>,
}

impl PackagesConfig {
    pub fn parse(
        raw: &RawInputs,
        command: CommandKind,
        git: &GitContext,
        targets: &[ImageName],
        has_token: bool,
    ) -> Result<PackagesConfig, ConfigError> {
        if !has_token {
            return Err(bad(
                "github_token",
                "prune and restore call GitHub's API and need a token: pass `github_token: ${{ secrets.GITHUB_TOKEN }}` \
                 (the default in a workflow) and give the job `permissions: packages: write`",
            ));
        }
        let target = targets.first().ok_or_else(|| bad("repository", "no image names the package: set `package`"))?;
        let (default_owner, default_package) = match target.repository.split_once('/') {
            Some((owner, rest)) => (Some(owner), Some(rest)),
            None => (None, None),
        };
        let owner = match raw.get("owner").map(str::trim).or(default_owner) {
            Some(o) if is_login(o) => o.to_string(),
            Some(o) => {
                return Err(bad(
                    "owner",
                    format!("`{o}` is not a GitHub user or organisation name (letters, digits, `-`)"),
                ));
            }
            None => {
                return Err(bad(
                    "owner",
                    format!("`{}` has no owner part: set `owner` to the user or organisation", target.repository),
                ));
            }
        };
        let package = match raw.get("package").map(str::trim).or(default_package) {
            Some(p) if is_package_name(p) => p.to_string(),
            Some(p) => return Err(bad("package", format!("`{p}` is not a package name"))),
            None => return Err(bad("package", "no package name: set `package` (the image name after the owner)")),
        };
        let package_type = match raw.get("package_type") {
            None => PackageType::Container,
            Some(t) => parse_package_type(t).ok_or_else(|| {
                bad(
                    "package_type",
                    format!("`{}` is not a package type: use container, npm, maven, nuget or rubygems", t.trim()),
                )
            })?,
        };
        let image = (package_type == PackageType::Container)
            .then(|| ImageName::new(&target.registry, &format!("{owner}/{package}").to_ascii_lowercase()))
            .transpose()
            .map_err(|e| bad("package", e.to_string()))?;

        let patterns = |input: &'static str| -> Result<Vec<TagPattern>, ConfigError> {
            raw.list(input).iter().map(|p| TagPattern::parse(p).map_err(|m| bad(input, m))).collect()
        };
        let keep_last = raw
            .get("keep_last")
            .map(|n| {
                n.trim().parse::<usize>().map_err(|_| bad("keep_last", format!("`{}` is not a whole number", n.trim())))
            })
            .transpose()?;
        let untagged_older_than = raw
            .get("untagged_older_than")
            .map(|a| parse_age(a).map_err(|m| bad("untagged_older_than", m)))
            .transpose()?;
        let policy = Policy {
            keep_last,
            keep_tags: patterns("keep_tags")?,
            delete_tags: patterns("delete_tags")?,
            untagged_older_than,
        };
        let dry_run = raw
            .bool("dry_run")
            .map_err(|m| bad("dry_run", m))?
            .unwrap_or_else(|| git.event_name.starts_with("pull_request"));
        let versions = match command {
            CommandKind::Restore => {
                parse_versions(raw.get("versions").unwrap_or_default()).map_err(|m| bad("versions", m))?
            }
            _ => Vec::new(),
        };
        if command == CommandKind::Prune && !policy.has_rule() {
            return Err(bad(
                "untagged_older_than",
                "prune deletes nothing without a rule: set `untagged_older_than` (for example `7d`), `keep_last` or \
                 `delete_tags`",
            ));
        }
        Ok(PackagesConfig { owner, package, package_type, image, policy, dry_run, versions })
    }
}

pub(crate) fn is_login(s: &str) -> bool {
    !s.is_empty() && s.len() <= 39 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn is_package_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('/')
        && !s.ends_with('/')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
}

/// Version ids: numbers separated by commas or white space, or a JSON array of numbers or of objects with an
/// `id` (a prune's `deleted` output).
pub fn parse_versions(text: &str) -> Result<Vec<u64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("restore needs the ids of the versions to restore: pass a prune's `deleted` output, or ids".into());
    }
    if text.starts_with('[') {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("it looks like JSON but is not valid: {e}"))?;
        let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
        return items
            .iter()
            .map(|item| item.as_u64().or_else(|| item.get("id").and_then(serde_json::Value::as_u64)))
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| {
                "a JSON list must hold version ids or objects with an `id`, as a prune's `deleted` output does".into()
            });
    }
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().map_err(|_| format!("`{s}` is not a version id (a number)")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&'static str, &str)], command: CommandKind, event: &str) -> Result<PackagesConfig, ConfigError> {
        let git = GitContext { event_name: event.into(), ..GitContext::default() };
        let raw = RawInputs::from_pairs(pairs);
        let targets = [ImageName::new("ghcr.io", "octo-org/app/sub").unwrap()];
        PackagesConfig::parse(&raw, command, &git, &targets, true)
    }

    #[test]
    fn the_package_and_owner_come_from_the_image() {
        let c = parse(&[("untagged_older_than", "7d")], CommandKind::Prune, "push").unwrap();
        assert_eq!((c.owner.as_str(), c.package.as_str()), ("octo-org", "app/sub"));
        assert_eq!(c.image.unwrap().to_string(), "ghcr.io/octo-org/app/sub");
        assert!(!c.dry_run);
        let c = parse(&[("owner", "octocat"), ("package", "Tool"), ("keep_last", "3")], CommandKind::Prune, "push")
            .unwrap();
        assert_eq!(c.image.unwrap().to_string(), "ghcr.io/octocat/tool", "registries want lower case");
        assert_eq!(c.policy.keep_last, Some(3));
        let c = parse(&[("package_type", "npm"), ("delete_tags", "1.0.*")], CommandKind::Prune, "push").unwrap();
        assert_eq!((c.package_type, c.image), (PackageType::Npm, None));
    }

    #[test]
    fn dry_run_defaults_to_true_on_pull_requests_only() {
        let rule = ("untagged_older_than", "1d");
        assert!(parse(&[rule], CommandKind::Prune, "pull_request").unwrap().dry_run);
        assert!(parse(&[rule], CommandKind::Prune, "pull_request_target").unwrap().dry_run);
        assert!(!parse(&[rule, ("dry_run", "false")], CommandKind::Prune, "pull_request").unwrap().dry_run);
        assert!(parse(&[rule, ("dry_run", "true")], CommandKind::Prune, "push").unwrap().dry_run);
    }

    #[test]
    fn errors_name_the_input() {
        let cases: &[(&[(&'static str, &str)], &str)] = &[
            (&[], "input `untagged_older_than`: prune deletes nothing without a rule"),
            (&[("untagged_older_than", "a week")], "input `untagged_older_than`: `a week` is not an age"),
            (&[("keep_last", "-1")], "input `keep_last`: `-1` is not a whole number"),
            (&[("keep_tags", "v[0-9]")], "input `keep_tags`: `v[0-9]` has `[`"),
            (&[("keep_last", "1"), ("owner", "octo org")], "input `owner`: `octo org` is not a GitHub user"),
            (&[("keep_last", "1"), ("package_type", "docker")], "input `package_type`: `docker` is not a package type"),
            (&[("keep_last", "1"), ("dry_run", "maybe")], "input `dry_run`"),
        ];
        for (pairs, want) in cases {
            let e = parse(pairs, CommandKind::Prune, "push").unwrap_err().to_string();
            assert!(e.starts_with(want), "{pairs:?}: {e}");
        }
        let git = GitContext::default();
        let targets = [ImageName::new("ghcr.io", "octo-org/app").unwrap()];
        let e = PackagesConfig::parse(&RawInputs::from_pairs(&[]), CommandKind::Restore, &git, &targets, false)
            .unwrap_err();
        assert!(e.to_string().contains("`github_token`") && e.to_string().contains("packages: write"), "{e}");
    }

    #[test]
    fn restore_takes_ids_or_a_prunes_deleted_output() {
        assert_eq!(parse_versions("12, 13\n14").unwrap(), vec![12, 13, 14]);
        assert_eq!(parse_versions(r#"[{"id": 7, "name": "sha256:x"}, {"id": 8}]"#).unwrap(), vec![7, 8]);
        assert_eq!(parse_versions("[3, 4]").unwrap(), vec![3, 4]);
        assert!(parse_versions("").unwrap_err().contains("`deleted` output"));
        assert!(parse_versions("12, x").unwrap_err().contains("`x` is not a version id"));
        assert!(parse_versions(r#"[{"name": 1}]"#).unwrap_err().contains("`id`"));
        let c = parse(&[("versions", "5,6")], CommandKind::Restore, "push").unwrap();
        assert_eq!(c.versions, vec![5, 6]);
    }
}

//! ARG values: BuildKit's automatic platform ARGs, the global scope (ARGs before the first FROM) and which
//! build-args were consumed.

use std::collections::{BTreeMap, BTreeSet};

use crate::builder::BuildOptions;
use crate::dockerfile::Dockerfile;
use crate::dockerfile::shell::{ExpansionBudget, Lexer};
use crate::image::Platform;

/// A machine's platform in OCI terms from Rust's names for its OS and architecture (`std::env::consts::OS`
/// and `ARCH`, which the caller reads): `x86_64` is `amd64`, `aarch64` is `arm64/v8`, `arm` is `arm/v7`...
pub fn platform_of(os: &str, arch: &str) -> Platform {
    let (arch, variant) = match arch {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "x86" => ("386", None),
        "arm" => ("arm", Some("v7")),
        "powerpc64" => ("ppc64le", None),
        "loongarch64" => ("loong64", None),
        "mips64" => ("mips64le", None),
        other => (other, None),
    };
    Platform::new(os, arch, variant)
}

/// BuildKit's automatic platform ARGs, with `arm64/v8` normalised to `arm64` as containerd does.
fn platform_args(prefix: &str, p: &Platform, out: &mut BTreeMap<String, String>) {
    let variant = p.variant.clone().filter(|v| !(p.architecture == "arm64" && v == "v8")).unwrap_or_default();
    let full = if variant.is_empty() {
        format!("{}/{}", p.os, p.architecture)
    } else {
        format!("{}/{}/{variant}", p.os, p.architecture)
    };
    out.insert(format!("{prefix}PLATFORM"), full);
    out.insert(format!("{prefix}OS"), p.os.clone());
    out.insert(format!("{prefix}ARCH"), p.architecture.clone());
    out.insert(format!("{prefix}VARIANT"), variant);
}

/// The global scope: the automatic platform ARGs, then the ARGs before the first FROM (a build-arg wins over a
/// default). Errors carry the line.
pub(crate) fn global_args(
    df: &Dockerfile,
    opts: &BuildOptions,
    target: &Platform,
    build: &Platform,
    used: &mut BTreeSet<String>,
) -> Result<BTreeMap<String, String>, (usize, String)> {
    let mut g = BTreeMap::new();
    platform_args("TARGET", target, &mut g);
    platform_args("BUILD", build, &mut g);
    let lexer = Lexer::new(df.escape);
    let budget = ExpansionBudget::default();
    for ai in &df.global_args {
        for a in &ai.args {
            used.insert(a.name.clone());
            let value = match (opts.build_args.get(&a.name), &a.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => {
                    Some(lexer.process_word_within(d, &g, &budget).map_err(|e| (ai.line, format!("ARG {e}")))?)
                }
                (None, None) => None,
            };
            if let Some(v) = value {
                g.insert(a.name.clone(), v);
            }
        }
    }
    Ok(g)
}

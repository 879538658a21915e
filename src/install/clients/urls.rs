//! Where GitHub Packages serves each ecosystem, from the server a workflow runs against (`GITHUB_SERVER_URL`):
//! github.com's `*.pkg.github.com` and ghcr.io, GitHub Enterprise Cloud with data residency (`*.ghe.com`), and
//! GitHub Enterprise Server in its two forms, with subdomain isolation (`npm.HOSTNAME`) and without
//! (`HOSTNAME/_registry/npm/`). Each base can be replaced (the `npm_registry`, ... inputs), which is also how
//! tests point clients at local servers.

use url::Url;

/// The base URL of each ecosystem's registry (ending in `/`) and the container registry's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageUrls {
    pub npm: String,
    pub maven: String,
    pub nuget: String,
    pub rubygems: String,
    /// `ghcr.io`, or `containers.HOSTNAME` on GitHub Enterprise.
    pub containers: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a URL of a GitHub server (such as https://github.com or https://github.example.com)")]
pub struct BadServerUrl(pub String);

impl PackageUrls {
    /// GitHub Packages' URLs for the server at `server_url`; `subdomain_isolation` picks GitHub Enterprise
    /// Server's form (it has no effect on github.com and ghe.com, which always use subdomains).
    pub fn for_server(server_url: &str, subdomain_isolation: bool) -> Result<PackageUrls, BadServerUrl> {
        let bad = || BadServerUrl(server_url.to_string());
        let url = Url::parse(server_url.trim()).map_err(|_| bad())?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(bad)?.to_ascii_lowercase();
        if !matches!(url.scheme(), "https" | "http") {
            return Err(bad());
        }
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let scheme = url.scheme();
        if host == "github.com" || host == "www.github.com" {
            let pkg = |eco: &str| format!("https://{eco}.pkg.github.com/");
            return Ok(PackageUrls {
                npm: pkg("npm"),
                maven: pkg("maven"),
                nuget: pkg("nuget"),
                rubygems: pkg("rubygems"),
                containers: "ghcr.io".into(),
            });
        }
        let subdomains = subdomain_isolation || host.ends_with(".ghe.com");
        let form = |eco: &str| match subdomains {
            true => format!("{scheme}://{eco}.{authority}/"),
            false => format!("{scheme}://{authority}/_registry/{eco}/"),
        };
        Ok(PackageUrls {
            npm: form("npm"),
            maven: form("maven"),
            nuget: form("nuget"),
            rubygems: form("rubygems"),
            // The container registry of GitHub Enterprise needs subdomain isolation.
            containers: format!("containers.{authority}"),
        })
    }
}

/// A base URL as given in an input, checked and ending in `/`.
pub fn base_url(value: &str) -> Result<String, String> {
    let v = value.trim();
    let url = Url::parse(v).map_err(|e| format!("`{v}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{v}` is not an http(s) URL"));
    }
    // Never echo a URL with credentials in it: the password would be in the log.
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a registry URL must not carry credentials: the token is added from `password`".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{v}` must be a plain base URL, without query or fragment"));
    }
    let s = url.to_string();
    Ok(if s.ends_with('/') { s } else { format!("{s}/") })
}

/// A host (and port) as given in an input, for the container registry.
pub fn host(value: &str) -> Result<String, String> {
    crate::image::registry_host(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_com_uses_pkg_github_com_and_ghcr() {
        let u = PackageUrls::for_server("https://github.com", true).unwrap();
        assert_eq!(u.npm, "https://npm.pkg.github.com/");
        assert_eq!(u.maven, "https://maven.pkg.github.com/");
        assert_eq!(u.nuget, "https://nuget.pkg.github.com/");
        assert_eq!(u.rubygems, "https://rubygems.pkg.github.com/");
        assert_eq!(u.containers, "ghcr.io");
        assert_eq!(PackageUrls::for_server("https://github.com/", false).unwrap(), u, "no GHES forms on github.com");
    }

    #[test]
    fn enterprise_server_has_a_subdomain_and_a_path_form() {
        let u = PackageUrls::for_server("https://GHE.example.com", true).unwrap();
        assert_eq!(u.npm, "https://npm.ghe.example.com/");
        assert_eq!(u.maven, "https://maven.ghe.example.com/");
        assert_eq!(u.containers, "containers.ghe.example.com");
        let u = PackageUrls::for_server("https://ghe.example.com:8443/", false).unwrap();
        assert_eq!(u.npm, "https://ghe.example.com:8443/_registry/npm/");
        assert_eq!(u.nuget, "https://ghe.example.com:8443/_registry/nuget/");
        assert_eq!(u.rubygems, "https://ghe.example.com:8443/_registry/rubygems/");
        let u = PackageUrls::for_server("https://octo.ghe.com", false).unwrap();
        assert_eq!(u.npm, "https://npm.octo.ghe.com/", "ghe.com always uses subdomains");
        assert!(PackageUrls::for_server("github.com", true).is_err());
        assert!(PackageUrls::for_server("ftp://github.com", true).is_err());
    }

    #[test]
    fn base_urls_end_in_a_slash_and_carry_no_credentials() {
        assert_eq!(base_url("http://127.0.0.1:4873").unwrap(), "http://127.0.0.1:4873/");
        assert_eq!(base_url(" https://r.example/maven/ ").unwrap(), "https://r.example/maven/");
        let e = base_url("https://user:pw@r.example/").unwrap_err();
        assert!(e.contains("must not carry credentials") && !e.contains("pw"), "{e}");
        assert!(base_url("r.example").is_err());
        assert_eq!(host("GHCR.io").unwrap(), "ghcr.io");
    }
}

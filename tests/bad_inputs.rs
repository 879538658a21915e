//! Issue "reliability", finding 6: every bad input gets one clear error, as an `::error::` annotation with exit
//! code 1: what was wrong, which input, how to fix it. One table, each row a mistake users make, with the input
//! (or variable, or Dockerfile line) its error must name and the words of the fix.

mod common;

use common::{Mode, Registry, Workflow};

/// A mistake: the step's inputs and files, and what its one error must say.
struct Row {
    what: &'static str,
    inputs: Vec<(&'static str, String)>,
    env: Vec<(&'static str, String)>,
    files: Vec<(&'static str, &'static str)>,
    /// The input (`` `registry` ``), variable or `file=...,line=N` the error names.
    names: &'static str,
    /// Words of the fix.
    fix: &'static str,
}

fn row(what: &'static str, names: &'static str, fix: &'static str) -> Row {
    Row {
        what,
        inputs: Vec::new(),
        env: Vec::new(),
        files: vec![("Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n"), ("a.txt", "a")],
        names,
        fix,
    }
}

impl Row {
    fn input(mut self, k: &'static str, v: impl Into<String>) -> Row {
        self.inputs.push((k, v.into()));
        self
    }
    fn env(mut self, k: &'static str, v: impl Into<String>) -> Row {
        self.env.push((k, v.into()));
        self
    }
    fn file(mut self, k: &'static str, v: &'static str) -> Row {
        self.files.retain(|(name, _)| *name != k);
        self.files.push((k, v));
        self
    }
}

#[test]
fn every_bad_input_names_itself_and_the_fix() {
    let registry = Registry::start(Mode::htpasswd("octocat", "s3cret-Pa55"));
    // Where rows that are not about the registry push: one that needs no credentials (else the missing token for
    // ghcr.io, the default registry, would be the first error).
    let open = Registry::start(Mode::Anonymous);
    let host = registry.host().to_string();
    let rows = vec![
        row("a port out of range", "`registry`", "host[:port]")
            .input("registry", "127.0.0.1:99999")
            .input("repository", "o/a"),
        row("a space in the repository", "`repository`", "").input("repository", "octo org/app"),
        row("docker.pkg.github.com with two path parts", "`repository`", "OWNER/REPO/IMAGE")
            .input("registry", "docker.pkg.github.com")
            .input("repository", "octo/app"),
        row("an unknown command", "`command`", "`publish`").input("command", "deploy"),
        row("a build-arg that is not NAME=value", "`build_args`", "NAME=value")
            .input("repository", "o/a")
            .input("build_args", "NOVALUE"),
        row("a build-arg name no ARG could take", "`build_args`", "")
            .input("repository", "o/a")
            .input("build_args", "1BAD=x"),
        row("a platform without an architecture", "`platforms`", "os/arch")
            .input("repository", "o/a")
            .input("platforms", "linux"),
        row("an output kind that does not exist", "`output`", "oci:DIR")
            .input("repository", "o/a")
            .input("output", "tar:x"),
        row("a compression that does not exist", "`compression`", "gzip or zstd")
            .input("repository", "o/a")
            .input("compression", "xz"),
        row("no transfers at all", "`jobs`", "1 to 64").input("repository", "o/a").input("jobs", "0"),
        row("a builder that does not exist", "`builder`", "auto, native, engine")
            .input("repository", "o/a")
            .input("builder", "podman"),
        row("a push that is neither", "`push`", "`auto`, `true` or `false`")
            .input("repository", "o/a")
            .input("push", "maybe"),
        row("a secret line without =", "`secrets`", "`ID=value`").input("repository", "o/a").input("secrets", "token"),
        row("a secret file that is not there", "`secret_files`", "does not exist")
            .input("repository", "o/a")
            .input("secret_files", "a=/nonexistent/secret"),
        row("a network name with spaces", "`network`", "`none`").input("repository", "o/a").input("network", "my net"),
        row("a CA file that is not there", "`ca_file`", "does not exist")
            .input("repository", "o/a")
            .input("ca_file", "/nonexistent/ca.pem"),
        row("a context that is not there", "`path`", "set `path`").input("repository", "o/a").input("path", "nowhere"),
        row("a Dockerfile that is not there", "`dockerfile`", "set `dockerfile`")
            .input("repository", "o/a")
            .input("dockerfile", "Nope.Dockerfile"),
        row("a tag rule that does not parse", "`tags`", "")
            .input("repository", "o/a")
            .input("tags", "type=semver,pattern={{version")
            .env("GITHUB_REF", "refs/tags/v1.2.3"),
        row("a label with an empty key", "`labels`", "").input("repository", "o/a").input("labels", "=x"),
        row("an annotation of an unknown level", "`annotations`", "unknown annotation type")
            .input("repository", "o/a")
            .input("annotations", "foo:k=v"),
        row("a registry_auth line without a password", "`registry_auth`", "HOST=USERNAME:PASSWORD")
            .input("repository", "o/a")
            .input("registry_auth", "quay.io=robot"),
        row("an insecure registry that is not a host", "`insecure_registries`", "host[:port]")
            .input("repository", "o/a")
            .input("insecure_registries", "http://x y"),
        row("a SOURCE_DATE_EPOCH that is not a number", "SOURCE_DATE_EPOCH", "seconds since 1970")
            .input("repository", "o/a")
            .env("SOURCE_DATE_EPOCH", "yesterday"),
        row("an engine address over ssh", "DOCKER_HOST", "ssh -L")
            .input("repository", "o/a")
            .env("DOCKER_HOST", "ssh://me@host"),
        row("a target stage that does not exist", "`target`", "stages are")
            .input("repository", "o/a")
            .input("target", "nope")
            .file("Dockerfile", "FROM scratch AS build\nCOPY a.txt /a.txt\n"),
        row("COPY --from a stage that does not exist", "line=2", "no stage")
            .input("registry", &host)
            .input("repository", "o/a")
            .input("username", "octocat")
            .input("password", "s3cret-Pa55")
            .file("Dockerfile", "FROM scratch\nCOPY --from=nostage /x /x\n"),
        row("a stage built FROM itself", "line=1", "itself")
            .input("registry", &host)
            .input("repository", "o/a")
            .input("username", "octocat")
            .input("password", "s3cret-Pa55")
            .file("Dockerfile", "FROM b AS b\nCOPY a.txt /a.txt\n"),
        row("a COPY source that is not in the context", "line=2", "not found in the build context")
            .input("registry", &host)
            .input("repository", "o/a")
            .input("username", "octocat")
            .input("password", "s3cret-Pa55")
            .file("Dockerfile", "FROM scratch\nCOPY missing.txt /m\n"),
        row("a Dockerfile that does not parse", "line=2", "")
            .input("repository", "o/a")
            .file("Dockerfile", "FROM scratch\nCOPY\n"),
        row("a wrong password", "`password`", "check")
            .input("registry", &host)
            .input("repository", "o/a")
            .input("username", "octocat")
            .input("password", "wrong-Pa55"),
        row("an images host that has no credentials", "`registry_auth`", "registry_auth")
            .input("images", format!("{host}/o/a")),
        row("a registry nobody listens on", "`registry`", "reachable")
            .input("registry", "127.0.0.1:1")
            .input("repository", "o/a"),
    ];
    let mut failures = Vec::new();
    for r in &rows {
        let mut wf = Workflow::new();
        if !r.inputs.iter().any(|(k, _)| *k == "registry" || *k == "images") {
            wf = wf.input("registry", open.host());
        }
        for (k, v) in &r.inputs {
            wf = wf.input(k, v);
        }
        for (k, v) in &r.env {
            wf = wf.env(k, v);
        }
        for (k, v) in &r.files {
            wf = wf.file(k, v);
        }
        let result = wf.run();
        let errors: Vec<&str> = result.stdout.lines().filter(|l| l.starts_with("::error")).collect();
        let ok = result.status.code() == Some(1)
            && errors.len() == 1
            && errors[0].contains(r.names)
            && errors[0].contains(r.fix)
            && !result.stdout.contains("panicked");
        if !ok {
            failures.push(format!(
                "{} (must name {} and say {:?}):\n  {}",
                r.what,
                r.names,
                r.fix,
                errors.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} rows do not hold:\n{}", failures.len(), rows.len(), failures.join("\n"));
}

/// A named pipe in the context is not dropped in silence (finding 6): the COPY that would take it fails at its
/// line, naming the file and the ways out.
#[test]
fn a_fifo_in_the_context_is_named_not_dropped() {
    let registry = Registry::start(Mode::Anonymous);
    let wf = Workflow::new()
        .input("registry", registry.host())
        .input("repository", "o/a")
        .file("Dockerfile", "FROM scratch\nCOPY . /src\n")
        .file("app/a.txt", "a");
    let fifo = wf.workspace().join("app/pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let error = wf.run().assert_clean_failure("line=2");
    assert!(error.contains("app/pipe is a named pipe (FIFO)") && error.contains(".dockerignore"), "{error}");
}

//! Config, history, stages, ARGs, platforms, registry bases and the errors that name the fix.

use super::*;

#[tokio::test]
async fn metadata_instructions_edit_the_config() {
    let fx = fixture();
    let df = r#"FROM scratch
ARG VERSION=1.0
ENV APP_HOME=/app V=$VERSION
WORKDIR $APP_HOME
WORKDIR sub
LABEL org.version=$VERSION a=b
USER 1000:1000
EXPOSE 8080 53/udp 9000-9001
VOLUME /data /logs
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=3 CMD curl -f http://localhost/ || exit 1
SHELL ["/bin/bash", "-c"]
CMD echo hi
ENTRYPOINT ["/app/server"]
ONBUILD COPY . /src
MAINTAINER Jo <jo@example.com>
"#;
    let mut opts = fx.opts(df);
    opts.labels.insert("a".into(), "from-options".into());
    let img = scratch_build(&opts).await;
    let c = container(&img);
    let env = c.env.clone().unwrap_or_default();
    assert!(env.contains(&"APP_HOME=/app".to_string()) && env.contains(&"V=1.0".to_string()), "{env:?}");
    assert!(!env.iter().any(|e| e.starts_with("VERSION=")), "ARG values stay out of the image");
    assert_eq!(c.working_dir.as_deref(), Some("/app/sub"));
    let labels = c.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("org.version").map(String::as_str), Some("1.0"));
    assert_eq!(labels.get("a").map(String::as_str), Some("from-options"), "option labels win");
    assert_eq!(c.user.as_deref(), Some("1000:1000"));
    let ports: Vec<&String> = c.exposed_ports.as_ref().map(|m| m.keys().collect()).unwrap_or_default();
    assert_eq!(ports, ["53/udp", "8080/tcp", "9000/tcp", "9001/tcp"]);
    let vols: Vec<&String> = c.volumes.as_ref().map(|m| m.keys().collect()).unwrap_or_default();
    assert_eq!(vols, ["/data", "/logs"]);
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    let hc = c.healthcheck.clone().expect("healthcheck");
    assert_eq!(hc.test, Some(vec!["CMD-SHELL".to_string(), "curl -f http://localhost/ || exit 1".into()]));
    assert_eq!((hc.interval, hc.timeout, hc.retries), (Some(30_000_000_000), None, Some(3)));
    assert_eq!(c.shell, Some(vec!["/bin/bash".to_string(), "-c".into()]));
    assert_eq!(
        c.cmd,
        Some(vec!["/bin/bash".to_string(), "-c".into(), "echo hi".into()]),
        "shell form wrapped in SHELL"
    );
    assert_eq!(c.entrypoint, Some(vec!["/app/server".to_string()]));
    assert_eq!(c.on_build, Some(vec!["COPY . /src".to_string()]));
    assert_eq!(img.config().author.as_deref(), Some("Jo <jo@example.com>"));

    let h = history(&img);
    let expected: &[(&str, bool)] = &[
        ("ARG VERSION=1.0", true),
        ("ENV APP_HOME=/app V=1.0", true),
        ("WORKDIR /app", false),
        ("WORKDIR /app/sub", false),
        ("LABEL org.version=1.0 a=b", true),
        ("USER 1000:1000", true),
        ("EXPOSE [53/udp 8080/tcp 9000/tcp 9001/tcp]", true),
        ("VOLUME [/data /logs]", true),
        ("STOPSIGNAL SIGINT", true),
        (
            "HEALTHCHECK {Test:[CMD-SHELL curl -f http://localhost/ || exit 1] Interval:30s Timeout:0s StartPeriod:0s StartInterval:0s Retries:3}",
            true,
        ),
        ("SHELL [/bin/bash -c]", true),
        (r#"CMD ["/bin/bash" "-c" "echo hi"]"#, true),
        (r#"ENTRYPOINT ["/app/server"]"#, true),
        ("MAINTAINER Jo <jo@example.com>", true),
    ];
    let got: Vec<(&str, bool)> = h.iter().map(|(s, e)| (s.as_str(), *e)).collect();
    assert_eq!(got, expected);
    assert_eq!(img.layers().len(), 2, "one layer per WORKDIR that creates a directory");
    assert_eq!(paths(&entries(&img.layers()[1])), ["app/", "app/sub/"]);
}

#[tokio::test]
async fn entrypoint_clears_an_inherited_cmd_but_keeps_this_stages() {
    let fx = fixture();
    let base = ContainerConfig { cmd: Some(vec!["sh".into()]), ..ContainerConfig::default() };
    let bases = FakeBases::with("registry.example/base:1", base);
    let img = build_image(&fx.opts("FROM registry.example/base:1\nENTRYPOINT [\"/x\"]\n"), &bases).await;
    assert_eq!(container(&img).cmd, None);
    let img = build_image(&fx.opts("FROM registry.example/base:1\nCMD [\"a\"]\nENTRYPOINT /x\n"), &bases).await;
    assert_eq!(container(&img).cmd, Some(vec!["a".to_string()]));
    assert_eq!(container(&img).entrypoint, Some(vec!["/bin/sh".to_string(), "-c".into(), "/x".into()]));
}

#[tokio::test]
async fn stages_copy_from_and_target() {
    let fx = fixture();
    fx.file("app/main", "m", 0o755).file("app/doc.txt", "d", 0o644);
    let df = "FROM scratch AS build\nCOPY app/ /out/\nFROM scratch AS unused\nRUN make\nFROM scratch\nCOPY --from=build /out/main /bin/main\nCOPY --from=0 /out /all\nCOPY --from=build /out/*.txt /docs/\n";
    let img = scratch_build(&fx.opts(df)).await;
    assert_eq!(img.layers().len(), 3, "the unused stage (with its RUN) is skipped");
    assert_eq!(paths(&entries(&img.layers()[0])), ["bin/", "bin/main"]);
    assert_eq!(entry(&entries(&img.layers()[0]), "bin/main").mode, 0o755);
    assert_eq!(paths(&entries(&img.layers()[1])), ["all/", "all/doc.txt", "all/main"]);
    assert_eq!(paths(&entries(&img.layers()[2])), ["docs/", "docs/doc.txt"]);
    assert_eq!(history(&img)[0].0, "COPY /out/main /bin/main # buildkit");

    let mut opts = fx.opts(df);
    opts.target = Some("BUILD".into());
    let img = scratch_build(&opts).await;
    assert_eq!(paths(&entries(&img.layers()[0])), ["out/", "out/doc.txt", "out/main"]);

    opts.target = Some("nope".into());
    let err = build_err(&opts).await.to_string();
    assert!(err.contains("stage `nope` not found") && err.contains("build, unused"), "{err}");
    opts.target = Some("unused".into());
    let err = build_err(&opts).await;
    assert_eq!(err.line(), Some(4));
    assert_eq!(
        err.to_string(),
        "Dockerfile:4: RUN needs a container runtime, and `builder: native` builds without one: set `builder: auto` \
         (the default) or `builder: engine` to build this Dockerfile through the Docker Engine, or run the command in \
         an earlier workflow step and COPY its output"
    );
    let err =
        build_err(&fx.opts("FROM scratch AS first\nCOPY --from=second /x /x\nFROM scratch AS second\nFROM first\n"))
            .await
            .to_string();
    assert!(err.contains("not defined before the current one"), "{err}");
    let err = build_err(&fx.opts("FROM scratch\nCOPY --from=alpine:3 /x /x\n")).await.to_string();
    assert!(
        err.contains("Dockerfile:2: COPY --from=alpine:3: no stage has that name, and the image cannot be used")
            && err.contains("alpine:3 not found"),
        "{err}"
    );
    let err = build_err(&fx.opts("FROM scratch AS a\nFROM scratch\nCOPY --from=a /missing /x\n")).await.to_string();
    assert!(err.contains("Dockerfile:3: COPY --from=a /missing: not found in stage `a` (FROM scratch)"), "{err}");
}

#[tokio::test]
async fn registry_base_layers_stay_and_system_directories_are_not_written() {
    let fx = fixture();
    fx.file("app", "bin", 0o755).file("a.txt", "a", 0o644);
    let base = ContainerConfig {
        env: Some(vec!["PATH=/usr/bin:/bin".into(), "HOME=/home/app".into()]),
        working_dir: Some("/home/app".into()),
        on_build: Some(vec!["COPY a.txt /onbuild/".into()]),
        ..ContainerConfig::default()
    };
    let bases = FakeBases::with("registry.example/base:1", base);
    let df = "FROM registry.example/base:1 AS build\nCOPY app /usr/local/bin/\nCOPY app /home/app\nCOPY a.txt $HOME/data/\nFROM build\nCOPY --from=build /usr/local/bin/app /copied\n";
    let img = build_image(&fx.opts(df), &bases).await;
    assert_eq!(img.layers()[0], base_layer(), "the base layer is a registry reference, never downloaded");
    assert!(matches!(img.layers()[0].blob.source, BlobSource::Registry(_)));
    assert_eq!(
        paths(&entries(&img.layers()[1])),
        ["onbuild/", "onbuild/a.txt"],
        "the base's ONBUILD trigger ran first"
    );
    assert_eq!(container(&img).on_build, None, "triggers are consumed");
    assert_eq!(
        paths(&entries(&img.layers()[2])),
        ["usr/local/bin/app"],
        "no entries over the base's system directories"
    );
    assert_eq!(paths(&entries(&img.layers()[3])), ["home/app/app"], "the base WORKDIR is a directory");
    assert_eq!(paths(&entries(&img.layers()[4])), ["home/app/data/", "home/app/data/a.txt"]);
    assert_eq!(paths(&entries(&img.layers()[5])), ["copied"], "COPY --from sees what this Dockerfile put in the stage");
    assert_eq!(img.config().env("PATH"), Some("/usr/bin:/bin"), "the base PATH is kept");
    let manifest: crate::image::Manifest = serde_json::from_slice(&img.manifest().bytes).unwrap();
    assert_eq!(manifest.layers[0].media_type, media_type::OCI_LAYER_GZIP);

    let err = build_err(&fx.opts("FROM scratch\nCOPY --chown=app a.txt /a\n")).await.to_string();
    assert!(err.contains("FROM scratch"), "{err}");
    for (df, needle) in [
        ("FROM registry.example/base:1\nCOPY --chown=node a.txt /a\n", "nor its base image have /etc/passwd"),
        (
            "FROM registry.example/base:1 AS b\nFROM scratch\nCOPY --from=b /etc/os-release /x\n",
            "/etc/os-release: not found in stage `b` (FROM registry.example/base:1)",
        ),
    ] {
        let err = match build(&fx.opts(df), &bases, &Quiet).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{df:?} should fail"),
        };
        assert!(err.contains(needle), "{df:?}: {err}");
    }
    let err = build_err(&fx.opts("FROM registry.example/missing:1\n")).await;
    assert!(matches!(err, BuildError::Base { ref base, .. } if base == "registry.example/missing:1"), "{err}");
}

#[tokio::test]
async fn args_global_and_per_stage() {
    let fx = fixture();
    fx.file("a.txt", "a", 0o644);
    let df = "ARG BASE=scratch\nARG DIR=/default\nFROM $BASE\nARG DIR\nARG OTHER=x-${DIR}\nARG TARGETARCH\nLABEL dir=$DIR other=$OTHER arch=$TARGETARCH nope=${BASE:-unset}\nCOPY a.txt $DIR/\n";
    let mut opts = fx.opts(df);
    opts.build_args.insert("DIR".into(), "/from-args".into());
    opts.build_args.insert("UNUSED".into(), "1".into());
    let (result, lines) = build_collect(&opts).await;
    let Ok(Artifact::Image(img)) = result else { panic!("build failed: {result:?}") };
    let labels = container(&img).labels.clone().unwrap_or_default();
    assert_eq!(labels.get("dir").map(String::as_str), Some("/from-args"));
    assert_eq!(labels.get("other").map(String::as_str), Some("x-/from-args"));
    assert_eq!(labels.get("arch").map(String::as_str), Some("amd64"));
    assert_eq!(labels.get("nope").map(String::as_str), Some("unset"), "global ARGs need redeclaring in a stage");
    assert_eq!(paths(&entries(&img.layers()[0])), ["from-args/", "from-args/a.txt"]);
    assert!(lines.iter().any(|l| l.starts_with("warning:") && l.contains("UNUSED")), "{lines:?}");
}

#[tokio::test]
async fn several_platforms_make_an_index_with_shared_layers() {
    let fx = fixture();
    fx.file("a.txt", "a", 0o644);
    let mut opts = fx.opts(
        "FROM scratch\nARG TARGETPLATFORM\nARG TARGETVARIANT\nCOPY a.txt /\nLABEL p=$TARGETPLATFORM v=$TARGETVARIANT\n",
    );
    opts.platforms = vec![Platform::new("linux", "amd64", None), Platform::new("linux", "arm", Some("v7"))];
    let Artifact::Index(index) = build(&opts, &ScratchOnly, &Quiet).await.unwrap() else { panic!("expected an index") };
    assert_eq!(index.images.len(), 2);
    let (amd, arm) = (&index.images[0], &index.images[1]);
    assert_eq!(
        amd.layers()[0].blob.descriptor.digest,
        arm.layers()[0].blob.descriptor.digest,
        "same layer, uploaded once"
    );
    assert_eq!(container(arm).labels.as_ref().unwrap().get("p").map(String::as_str), Some("linux/arm/v7"));
    assert_eq!(container(arm).labels.as_ref().unwrap().get("v").map(String::as_str), Some("v7"));
    assert_eq!(arm.config().variant.as_deref(), Some("v7"));
    let parsed: crate::image::Index = serde_json::from_slice(&index.manifest().bytes).unwrap();
    assert_eq!(parsed.manifests[1].platform.as_ref().map(|p| p.to_string()).as_deref(), Some("linux/arm/v7"));

    opts.platforms = vec![Platform::new("linux", "arm64", Some("v8")), Platform::new("linux", "arm64", Some("v8"))];
    assert!(build(&opts, &ScratchOnly, &Quiet).await.unwrap_err().to_string().contains("listed twice"));
}

#[tokio::test]
async fn default_platform_follows_the_base() {
    let fx = fixture();
    let bases = FakeBases::with("registry.example/base:1", ContainerConfig::default());
    let img = build_image(&fx.opts("FROM registry.example/base:1 AS b\nFROM b\nLABEL x=y\n"), &bases).await;
    assert_eq!(img.platform().to_string(), "linux/amd64", "a multi-platform base defaults to linux/amd64");
    let img = build_image(&fx.opts("FROM --platform=linux/arm64 registry.example/base:1\n"), &bases).await;
    assert_eq!(img.platform().to_string(), "linux/arm64");
}

#[tokio::test]
async fn default_platform_is_the_hosts_when_the_base_has_it() {
    let fx = fixture();
    let mut bases = FakeBases::with("registry.example/base:1", ContainerConfig::default());
    let df = "FROM registry.example/base:1\nARG BUILDPLATFORM\nLABEL build=$BUILDPLATFORM\n";
    let mut opts = fx.opts(df);
    opts.host_platform = crate::builder::native::platform_of("linux", "aarch64");
    let img = build_image(&opts, &bases).await;
    assert_eq!(img.platform().to_string(), "linux/arm64/v8", "an arm64 runner builds the base's arm64 image");
    assert_eq!(container(&img).labels.clone().unwrap_or_default()["build"], "linux/arm64");
    opts.host_platform = crate::builder::native::platform_of("linux", "riscv64");
    assert_eq!(build_image(&opts, &bases).await.platform().to_string(), "linux/amd64", "else linux/amd64");
    let scratch = fx.opts("FROM scratch\n");
    let mut scratch =
        BuildOptions { host_platform: crate::builder::native::platform_of("linux", "aarch64"), ..scratch };
    assert_eq!(scratch_build(&scratch).await.platform().to_string(), "linux/arm64/v8", "scratch: the host's");
    scratch.host_platform = crate::builder::native::platform_of("linux", "x86_64");
    assert_eq!(scratch_build(&scratch).await.platform().to_string(), "linux/amd64");

    bases.platforms = vec![Platform::new("linux", "arm64", Some("v8")), Platform::new("linux", "s390x", None)];
    let opts = fx.opts(df); // the Dockerfile again (the scratch one replaced it); host linux/amd64
    let err = match build(&opts, &bases, &Quiet).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("neither the host's platform nor linux/amd64 is there"),
    };
    assert!(
        err.contains("linux/arm64/v8, linux/s390x") && err.contains("`platforms` input") && err.contains("linux/amd64"),
        "{err}"
    );
}

#[tokio::test]
async fn errors_carry_file_and_line() {
    let fx = fixture();
    for (df, line, needle) in [
        ("FROM scratch\n\nCOPY onlyone\n", 3, "COPY requires at least two arguments"),
        ("FROM scratch\nSTOPSIGNAL NOPE\n", 2, "STOPSIGNAL invalid signal: NOPE"),
        ("FROM scratch\nEXPOSE 80/xyz\n", 2, "EXPOSE invalid port"),
        ("FROM scratch\nENV A=\"${B:?must be set}\"\n", 2, "B: must be set"),
        ("FROM --platform=bogus scratch\n", 1, "os/arch"),
        ("FROM Not A Ref\n", 1, "FROM requires either one or three arguments"),
        ("FROM UPPER/case\n", 1, "not valid"),
    ] {
        let err = build_err(&fx.opts(df)).await;
        assert_eq!(err.line(), Some(line), "{df:?}: {err}");
        assert!(err.to_string().starts_with(&format!("Dockerfile:{line}:")), "{err}");
        assert!(err.to_string().contains(needle), "{df:?}: {err}");
    }
}

#[tokio::test]
async fn a_base_onbuild_run_is_refused_at_the_from_line() {
    let fx = fixture();
    let base = ContainerConfig { on_build: Some(vec!["RUN npm install".into()]), ..ContainerConfig::default() };
    let bases = FakeBases::with("registry.example/node:onbuild", base);
    let err = match build(&fx.opts("# base with triggers\nFROM registry.example/node:onbuild\n"), &bases, &Quiet).await
    {
        Err(e) => e,
        Ok(_) => panic!("should fail"),
    };
    assert_eq!(err.line(), Some(2));
    assert!(err.to_string().contains("ONBUILD trigger `RUN npm install`"), "{err}");
}

#[test]
fn the_build_future_is_send() {
    fn is_send<T: Send>(_: &T) {}
    let fx = fixture();
    let opts = fx.opts("FROM scratch\n");
    let fut = build(&opts, &ScratchOnly, &Quiet);
    is_send(&fut);
}

/// Issue 13, finding 2: forty `ARG A=$A$A` lines aborted the process with "memory allocation failed"; now the line
/// where the value passes the limit is named, in a stage as in the global scope.
#[tokio::test]
async fn a_self_doubling_arg_fails_at_its_line() {
    let fx = fixture();
    let doubling = "ARG A=$A$A\n".repeat(40);
    for (df, first) in [
        (format!("FROM scratch\nARG A=0123456789abcdef\n{doubling}"), 3),
        (format!("ARG A=0123456789abcdef\n{doubling}FROM scratch\n"), 2),
        (format!("FROM scratch\nENV A=0123456789abcdef\n{}", "ENV A=$A$A\n".repeat(40)), 3),
    ] {
        let err = build_err(&fx.opts(&df)).await;
        // 16 bytes doubled 16 times is 1 MiB; the 17th doubling is over.
        let line = first + 16;
        assert_eq!(err.line(), Some(line), "{err}");
        let m = err.to_string();
        assert!(m.starts_with(&format!("Dockerfile:{line}:")) && m.contains("1 MiB"), "{m}");
    }
}

/// Many lines each under the per-expansion limit still share one ceiling for the build.
#[tokio::test]
async fn many_big_expansions_hit_the_build_ceiling() {
    let fx = fixture();
    let mut df = String::from("FROM scratch\nARG A=0123456789abcdef\n");
    df.push_str(&"ARG A=$A$A\n".repeat(15)); // 512 KiB
    df.push_str(&"LABEL x=$A\n".repeat(100)); // 50 MiB if nothing stopped it
    let err = build_err(&fx.opts(&df)).await;
    let m = err.to_string();
    assert!(m.contains("limit in all") && m.contains("LABEL"), "{m}");
    let line = err.line().unwrap();
    assert!((18..=17 + 100).contains(&line), "{m}");
}

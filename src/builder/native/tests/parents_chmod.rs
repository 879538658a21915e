//! `COPY --parents` (BuildKit's testCopyParents and testCopyRelativeParents cases) and symbolic `--chmod`.

use super::*;

fn dir(fx: &Fixture, rel: &str, mode: u32) {
    std::fs::create_dir_all(fx.ctx.join(rel)).unwrap();
    std::fs::set_permissions(fx.ctx.join(rel), std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn parents_keep_the_source_path() {
    let fx = fixture();
    fx.file("foo1/foo2/bar", "testing", 0o600).file("foo1/foo2/baz", "testing2", 0o600);
    dir(&fx, "foo1/foo2", 0o700);
    dir(&fx, "foo1", 0o700);
    let df = "FROM scratch\nCOPY --parents foo1/foo2/bar /\nWORKDIR /test\nCOPY --parents foo1/foo2/ba* .\n";
    let img = scratch_build(&fx.opts(df)).await;
    let l0 = entries(&img.layers()[0]);
    assert_eq!(paths(&l0), ["foo1/", "foo1/foo2/", "foo1/foo2/bar"]);
    assert_eq!(entry(&l0, "foo1/").mode, 0o700, "parents as the source's directories");
    assert_eq!(entry(&l0, "foo1/foo2/bar").data, b"testing");
    let l2 = entries(&img.layers()[2]);
    assert_eq!(paths(&l2), ["test/", "test/foo1/", "test/foo1/foo2/", "test/foo1/foo2/bar", "test/foo1/foo2/baz"]);
}

#[tokio::test]
async fn parents_with_a_pivot_from_a_stage() {
    let fx = fixture();
    for f in ["a/b/c/d/foo", "a/b/c/d/e/bay", "a/b2/c/d/e/bar", "a/b/c2/d/e/baz", "a/b/c2/d/e2/baz"] {
        fx.file(&format!("t/{f}"), f, 0o644);
    }
    let df = "FROM scratch AS base\nCOPY t /test/\n\
              FROM scratch AS middle\nCOPY --from=base --parents /test/a/b/./c/d /out/\n\
              FROM scratch AS end\nCOPY --from=base --parents /test/a/b/c/d/. /out/\n\
              FROM scratch AS double\nCOPY --from=base --parents /test/a/./b/./c /out/\n\
              FROM scratch AS wildcard\nCOPY --from=base --parents /test/a/./*/c /out/\n\
              FROM scratch AS context\nCOPY --parents t/a/./b2/c/d/e/bar /out/\n\
              FROM scratch AS doublewildcard\nCOPY --from=base --parents /test/a/b*/./c/**/e /out/\n\
              FROM scratch AS doubleinputs\nCOPY --from=base --parents /test/a/b/c*/./d/**/baz /test/a/b*/./c/**/bar /out/\n\
              FROM scratch AS contextdouble\nCOPY --parents t/a/b/./c2/**/baz /out/\n";
    let paths_of = |img: &Image| paths(&entries(&img.layers()[0])).iter().map(|p| p.to_string()).collect::<Vec<_>>();
    let mut opts = fx.opts(df);
    let target = |opts: &mut BuildOptions, t: &str| opts.target = Some(t.into());
    target(&mut opts, "middle");
    let p = paths_of(&scratch_build(&opts).await);
    assert_eq!(p, ["out/", "out/c/", "out/c/d/", "out/c/d/e/", "out/c/d/e/bay", "out/c/d/foo"], "below the pivot");
    target(&mut opts, "end");
    let p = paths_of(&scratch_build(&opts).await);
    assert!(p.contains(&"out/test/a/b/c/d/e/bay".to_string()) && p.contains(&"out/test/".to_string()), "{p:?}");
    target(&mut opts, "double");
    let p = paths_of(&scratch_build(&opts).await);
    assert!(
        p.contains(&"out/b/c/d/foo".to_string()) && !p.iter().any(|x| x.starts_with("out/a")),
        "the first pivot: {p:?}"
    );
    target(&mut opts, "wildcard");
    let p = paths_of(&scratch_build(&opts).await);
    assert!(p.contains(&"out/b/c/d/foo".to_string()) && p.contains(&"out/b2/c/d/e/bar".to_string()), "{p:?}");
    target(&mut opts, "context");
    let p = paths_of(&scratch_build(&opts).await);
    assert_eq!(p, ["out/", "out/b2/", "out/b2/c/", "out/b2/c/d/", "out/b2/c/d/e/", "out/b2/c/d/e/bar"]);
    // BuildKit's `**` cases (testCopyRelativeParents): any number of directories.
    target(&mut opts, "doublewildcard");
    let p = paths_of(&scratch_build(&opts).await);
    assert!(p.contains(&"out/c/d/e/bay".to_string()) && p.contains(&"out/c/d/e/bar".to_string()), "{p:?}");
    target(&mut opts, "doubleinputs");
    let p = paths_of(&scratch_build(&opts).await);
    for want in ["out/d/e/baz", "out/d/e2/baz", "out/c/d/e/bar"] {
        assert!(p.contains(&want.to_string()), "{want} in {p:?}");
    }
    assert!(!p.contains(&"out/d/e/bay".to_string()), "{p:?}");
    target(&mut opts, "contextdouble");
    let p = paths_of(&scratch_build(&opts).await);
    assert_eq!(
        p,
        ["out/", "out/c2/", "out/c2/d/", "out/c2/d/e/", "out/c2/d/e/baz", "out/c2/d/e2/", "out/c2/d/e2/baz"],
        "from the context"
    );
}

#[tokio::test]
async fn symbolic_chmod_per_entry() {
    let fx = fixture();
    fx.file("app/run.sh", "#!/bin/sh\n", 0o700).file("app/README", "r", 0o600);
    dir(&fx, "app", 0o700);
    let df = "FROM scratch\nCOPY --chmod=go+rX app /app\nCOPY --chmod=u=rw,go=u-w app/README /r\n";
    let img = scratch_build(&fx.opts(df)).await;
    let l0 = entries(&img.layers()[0]);
    let modes: Vec<(&str, u32)> = l0.iter().map(|e| (e.path.as_str(), e.mode)).collect();
    assert_eq!(
        modes,
        [("app/", 0o755), ("app/README", 0o644), ("app/run.sh", 0o755)],
        "X: directories and executables"
    );
    assert_eq!(entries(&img.layers()[1])[0].mode, 0o644);
    assert_eq!(history(&img)[0].0, "COPY --chmod=go+rX app /app # buildkit");
}

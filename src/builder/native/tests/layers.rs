//! What COPY, ADD and WORKDIR put into layers: paths, parents, modes, owners, links, contents, determinism.

use std::os::unix::fs::symlink;

use super::*;

#[tokio::test]
async fn copy_dir_contents_files_and_parents_from_scratch() {
    let fx = fixture();
    fx.file("app/main", "#!/bin/sh\necho hi\n", 0o755)
        .file("app/lib/x.txt", "x", 0o600)
        .file("README", "read me", 0o644);
    symlink("main", fx.ctx.join("app/link")).unwrap();
    std::fs::hard_link(fx.ctx.join("app/main"), fx.ctx.join("app/hard")).unwrap();
    std::fs::set_permissions(fx.ctx.join("app"), std::fs::Permissions::from_mode(0o750)).unwrap();
    let img =
        scratch_build(&fx.opts("FROM scratch\nCOPY app /srv/app\nCOPY README /docs/\nCOPY README /renamed\n")).await;
    assert_eq!(img.layers().len(), 3);

    let l1 = entries(&img.layers()[0]);
    assert_eq!(
        paths(&l1),
        ["srv/", "srv/app/", "srv/app/hard", "srv/app/lib/", "srv/app/lib/x.txt", "srv/app/link", "srv/app/main"]
    );
    let srv = entry(&l1, "srv/");
    assert_eq!((srv.kind, srv.mode, srv.uid, srv.gid, srv.mtime), ('d', 0o755, 0, 0, EPOCH as u64), "created parent");
    assert_eq!(entry(&l1, "srv/app/").mode, 0o750, "the copied directory keeps the source directory's mode");
    let hard = entry(&l1, "srv/app/hard");
    assert_eq!((hard.kind, hard.mode, hard.data.as_slice()), ('f', 0o755, b"#!/bin/sh\necho hi\n".as_slice()));
    let main = entry(&l1, "srv/app/main");
    assert_eq!(
        (main.kind, main.link.as_deref()),
        ('h', Some("srv/app/hard")),
        "same inode: a hard link to the first path"
    );
    let link = entry(&l1, "srv/app/link");
    assert_eq!((link.kind, link.link.as_deref(), link.mode), ('l', Some("main"), 0o777));
    let x = entry(&l1, "srv/app/lib/x.txt");
    assert_eq!((x.mode, x.data.as_slice(), x.mtime), (0o600, b"x".as_slice(), EPOCH as u64));

    let l2 = entries(&img.layers()[1]);
    assert_eq!(paths(&l2), ["docs/", "docs/README"], "a destination ending with / is a directory");
    let l3 = entries(&img.layers()[2]);
    assert_eq!(paths(&l3), ["renamed"], "without a slash the file is named after the destination");
    assert_eq!(l3[0].data, b"read me");

    assert_eq!(
        history(&img),
        [
            ("COPY app /srv/app # buildkit".to_string(), false),
            ("COPY README /docs/ # buildkit".into(), false),
            ("COPY README /renamed # buildkit".into(), false),
        ]
    );
    let cfg = img.config();
    assert_eq!(cfg.created.as_deref(), Some("2020-01-10T00:30:00Z"));
    assert_eq!(cfg.history[0].created.as_deref(), Some("2020-01-10T00:30:00Z"));
    assert_eq!(cfg.history[0].comment.as_deref(), Some("buildkit.dockerfile.v0"));
    assert_eq!(cfg.rootfs.diff_ids, img.layers().iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>());
    assert_eq!(cfg.env("PATH"), Some("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    assert_eq!((cfg.os.as_str(), cfg.architecture.as_str()), ("linux", "amd64"));
    assert_eq!(container(&img).working_dir.as_deref(), Some("/"), "scratch starts in / as BuildKit's empty image");
}

#[tokio::test]
async fn copy_into_existing_directory_and_relative_to_workdir() {
    let fx = fixture();
    fx.file("a.txt", "a", 0o644).file("b.txt", "b", 0o644);
    let img =
        scratch_build(&fx.opts("FROM scratch\nWORKDIR /app\nCOPY a.txt .\nCOPY b.txt /app\nCOPY a.txt sub/c.txt\n"))
            .await;
    let wd = entries(&img.layers()[0]);
    assert_eq!(paths(&wd), ["app/"]);
    assert_eq!(history(&img)[0], ("WORKDIR /app".to_string(), false));
    assert_eq!(paths(&entries(&img.layers()[1])), ["app/", "app/a.txt"], "`.` is the WORKDIR");
    assert_eq!(paths(&entries(&img.layers()[2])), ["app/", "app/b.txt"], "an existing directory receives the file");
    assert_eq!(paths(&entries(&img.layers()[3])), ["app/", "app/sub/", "app/sub/c.txt"]);
}

#[tokio::test]
async fn chown_chmod_and_heredocs() {
    let fx = fixture();
    fx.file("a.txt", "a", 0o644).file("b.txt", "b", 0o644);
    let df = "FROM scratch\nENV NAME=world\nCOPY --chown=1000:1001 --chmod=640 a.txt /x/\nCOPY --chown=7 b.txt /y\nCOPY <<EOF /etc/motd\nhello $NAME\nEOF\nCOPY <<-'RAW' <<TWO /raw/\n\tkeep $NAME\nRAW\n2\nTWO\n";
    let img = scratch_build(&fx.opts(df)).await;
    let l = entries(&img.layers()[0]);
    let x = entry(&l, "x/");
    assert_eq!((x.uid, x.gid, x.mode), (1000, 1001, 0o755), "created directories belong to --chown");
    let a = entry(&l, "x/a.txt");
    assert_eq!((a.uid, a.gid, a.mode), (1000, 1001, 0o640));
    let b = entry(&entries(&img.layers()[1]), "y").clone();
    assert_eq!((b.uid, b.gid), (7, 7), "a uid without a group uses the uid as gid");
    let motd = entries(&img.layers()[2]);
    assert_eq!(paths(&motd), ["etc/", "etc/motd"]);
    assert_eq!((motd[1].data.as_slice(), motd[1].mode), (b"hello world\n".as_slice(), 0o644));
    let raw = entries(&img.layers()[3]);
    assert_eq!(entry(&raw, "raw/RAW").data, b"keep $NAME\n", "quoted delimiter: no expansion; <<- strips tabs");
    assert_eq!(entry(&raw, "raw/TWO").data, b"2\n");
    assert_eq!(history(&img)[1].0, "COPY --chown=1000:1001 --chmod=640 a.txt /x/ # buildkit");
    assert_eq!(history(&img)[3].0, "COPY <<EOF /etc/motd # buildkit");
}

#[tokio::test]
async fn chown_names_from_our_own_passwd() {
    let fx = fixture();
    fx.file("passwd", "root:x:0:0::/root:/bin/sh\napp:x:1234:99::/home/app:/bin/sh\n", 0o644)
        .file("group", "root:x:0:\nstaff:x:50:app\n", 0o644)
        .file("a.txt", "a", 0o644);
    let df = "FROM scratch AS base\nCOPY passwd /etc/passwd\nCOPY group /etc/group\nFROM base\nCOPY --chown=app:staff a.txt /a\nCOPY --chown=app a.txt /b\nUSER app\nWORKDIR /home/app\n";
    let img = scratch_build(&fx.opts(df)).await;
    let n = img.layers().len();
    let a = entries(&img.layers()[n - 3]);
    assert_eq!((a[0].uid, a[0].gid), (1234, 50));
    // A user named without a group gets its primary group from /etc/passwd, as BuildKit's `readUser` does (and
    // Engine 20.10's BuildKit, tests/engine.rs); a user by number gets the same number.
    let b = entries(&img.layers()[n - 2]);
    assert_eq!((b[0].uid, b[0].gid), (1234, 99));
    let wd = entries(&img.layers()[n - 1]);
    assert_eq!(paths(&wd), ["home/", "home/app/"]);
    assert!(wd.iter().all(|e| (e.uid, e.gid) == (1234, 99)), "WORKDIR creates directories as USER: {wd:?}");
    let err = build_err(&fx.opts("FROM scratch\nCOPY --chown=nobody a.txt /a\n")).await.to_string();
    assert!(err.contains("Dockerfile:2:") && err.contains("--chown=nobody") && err.contains("numeric ids"), "{err}");
}

#[tokio::test]
async fn dockerignore_excludes_and_exceptions() {
    let fx = fixture();
    fx.file("a.log", "", 0o644)
        .file("keep.log", "", 0o644)
        .file("src/main.rs", "", 0o644)
        .file("secret/key", "", 0o600)
        .file("secret/public/cert", "", 0o644)
        .file(".dockerignore", "*.log\n!keep.log\nsecret\n!secret/public\nDockerfile\n", 0o644);
    let img = scratch_build(&fx.opts("FROM scratch\nCOPY . /ctx/\n")).await;
    let l = entries(&img.layers()[0]);
    assert_eq!(
        paths(&l),
        [
            "ctx/",
            "ctx/.dockerignore",
            "ctx/keep.log",
            "ctx/secret/",
            "ctx/secret/public/",
            "ctx/secret/public/cert",
            "ctx/src/",
            "ctx/src/main.rs"
        ],
        "excluded files are gone; an excluded directory holding an exception is kept as its parent"
    );
    let err = build_err(&fx.opts("FROM scratch\nCOPY secret/key /k\n")).await.to_string();
    assert!(err.contains("Dockerfile:2: COPY secret/key: excluded by .dockerignore"), "{err}");
    let err = build_err(&fx.opts("FROM scratch\nCOPY missing /k\n")).await.to_string();
    assert!(err.contains("COPY missing: not found in the build context"), "{err}");

    // <Dockerfile>.dockerignore beside the Dockerfile wins over the context's .dockerignore
    fx.file("Dockerfile.dockerignore", "keep.log\n", 0o644);
    let img = scratch_build(&fx.opts("FROM scratch\nCOPY *.log /logs/\n")).await;
    assert_eq!(paths(&entries(&img.layers()[0])), ["logs/", "logs/a.log"]);
}

#[tokio::test]
async fn globs_multiple_sources_and_context_escapes() {
    let fx = fixture();
    fx.file("a.txt", "a", 0o644).file("b.txt", "b", 0o644).file("c.md", "c", 0o644);
    let img = scratch_build(
        &fx.opts("FROM scratch\nCOPY *.txt c.md /t/\nCOPY nomatch*.zz /z/\nCOPY [\"a.txt\", \"/json dir/\"]\n"),
    )
    .await;
    assert_eq!(paths(&entries(&img.layers()[0])), ["t/", "t/a.txt", "t/b.txt", "t/c.md"]);
    assert!(entries(&img.layers()[1]).is_empty(), "a wildcard matching nothing copies nothing");
    assert_eq!(paths(&entries(&img.layers()[2])), ["json dir/", "json dir/a.txt"]);
    for (df, needle) in [
        ("FROM scratch\nCOPY a.txt b.txt /t\n", "must be a directory and end with a /: write `/t/`"),
        ("FROM scratch\nCOPY *.txt /t\n", "must be a directory and end with a /"),
        ("FROM scratch\nCOPY ../etc/passwd /p\n", "outside the build context"),
        ("FROM scratch\nCOPY --chmod=u+q a.txt /p\n", "octal mode between 0 and 7777 (755, 0644) or a symbolic one"),
        ("FROM scratch\nCOPY https://example.com/x /p\n", "source can't be a URL for COPY"),
    ] {
        let err = build_err(&fx.opts(df)).await.to_string();
        assert!(err.contains("Dockerfile:2:") && err.contains(needle), "{df:?}: {err}");
    }
}

#[tokio::test]
async fn add_unpacks_local_archives_and_names_unreachable_urls() {
    let fx = fixture();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o700);
    h.set_uid(5);
    h.set_size(0);
    builder.append_data(&mut h.clone(), "pkg/", std::io::empty()).unwrap();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(5);
    builder.append_data(&mut h.clone(), "pkg/data.txt", &b"hello"[..]).unwrap();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    builder.append_link(&mut h.clone(), "pkg/alias.txt", "pkg/data.txt").unwrap();
    let gz = builder.into_inner().unwrap().finish().unwrap();
    std::fs::write(fx.ctx.join("pkg.tar.gz"), gz).unwrap();
    fx.file("plain.txt", "not an archive", 0o644);
    let img = scratch_build(
        &fx.opts("FROM scratch\nADD pkg.tar.gz /opt/\nADD plain.txt /p.txt\nADD --unpack=false pkg.tar.gz /keep/\n"),
    )
    .await;
    let l = entries(&img.layers()[0]);
    assert_eq!(paths(&l), ["opt/", "opt/pkg/", "opt/pkg/alias.txt", "opt/pkg/data.txt"]);
    let dir = entry(&l, "opt/pkg/");
    assert_eq!((dir.mode, dir.uid), (0o700, 5), "archive modes and owners are kept");
    assert_eq!(entry(&l, "opt/pkg/alias.txt").data, b"hello", "first path in layer order holds the data");
    assert_eq!(entry(&l, "opt/pkg/data.txt").link.as_deref(), Some("opt/pkg/alias.txt"));
    assert_eq!(entries(&img.layers()[1])[0].data, b"not an archive");
    assert_eq!(paths(&entries(&img.layers()[2])), ["keep/", "keep/pkg.tar.gz"]);
    let err = build_err(&fx.opts("FROM scratch\nADD http://127.0.0.1:1/a.tgz /a\n")).await.to_string();
    assert!(err.contains("Dockerfile:2: ADD fetching http://127.0.0.1:1/a.tgz: "), "{err}");
}

#[tokio::test]
async fn long_and_non_ascii_paths_use_pax() {
    let fx = fixture();
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(110));
    fx.file(&long, "long", 0o644).file("caf\u{e9}.txt", "utf-8", 0o644);
    let img = scratch_build(&fx.opts("FROM scratch\nCOPY . /c/\n")).await;
    let l = entries(&img.layers()[0]);
    assert_eq!(entry(&l, &format!("c/{long}")).data, b"long");
    assert_eq!(entry(&l, "c/caf\u{e9}.txt").data, b"utf-8");
}

#[tokio::test]
async fn same_sources_give_the_same_digests_whatever_the_mtimes() {
    let a = fixture();
    let b = fixture();
    for (fx, t) in [(&a, 1_000_000_000), (&b, 1_600_000_000)] {
        fx.file("app/bin/server", "binary", 0o755).file("app/etc/conf", "k=v", 0o644);
        for p in ["app/bin/server", "app/etc/conf", "app/bin", "app/etc", "app"] {
            set_mtime(&fx.ctx.join(p), t);
        }
    }
    let df = "FROM scratch\nCOPY app /app\nWORKDIR /app\nCMD [\"/app/bin/server\"]\n";
    let one = scratch_build(&a.opts(df)).await;
    let two = scratch_build(&b.opts(df)).await;
    assert_eq!(one.manifest().digest, two.manifest().digest);
    assert_eq!(one.layers()[0].blob.descriptor.digest, two.layers()[0].blob.descriptor.digest);
    assert!(entries(&one.layers()[0]).iter().all(|e| e.mtime == EPOCH as u64));
    // without an epoch the file times show through, so the two contexts differ
    let mut o1 = a.opts(df);
    o1.source_date_epoch = None;
    let mut o2 = b.opts(df);
    o2.source_date_epoch = None;
    let (x, y) = (scratch_build(&o1).await, scratch_build(&o2).await);
    assert_ne!(x.layers()[0].diff_id, y.layers()[0].diff_id);
}

#[tokio::test]
async fn a_work_dir_inside_the_context_is_never_copied() {
    let fx = fixture();
    fx.file("a.txt", "a", 0o644);
    let mut opts = fx.opts("FROM scratch\nCOPY a.txt /first\nCOPY . /c/\n");
    opts.work_dir = fx.ctx.join(".octopush");
    let img = scratch_build(&opts).await;
    let l = entries(&img.layers()[1]);
    assert_eq!(paths(&l), ["c/", "c/Dockerfile", "c/a.txt"], "the first layer's file is not in the second");
}

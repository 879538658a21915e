//! Names in `--chown` and `USER` looked up in a registry base's layers: top down, only as far as needed, once
//! per build, whiteouts respected.

use super::*;
use crate::builder::native::base_files::{Found, scan_layer};

const OLD_PASSWD: &str = "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
const NEW_PASSWD: &str = "root:x:0:0::/root:/bin/sh\napp:x:4242:4242::/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\nstaff:x:50:\n";

fn three_layers() -> Vec<Vec<u8>> {
    vec![
        gz_layer(&[("etc", None), ("etc/passwd", Some(OLD_PASSWD)), ("etc/group", Some(GROUP))]),
        gz_layer(&[("etc", None), ("etc/passwd", Some(NEW_PASSWD))]),
        gz_layer(&[("usr", None), ("usr/share/doc.txt", Some("unrelated"))]),
    ]
}

fn bases(layers: Vec<Vec<u8>>) -> FakeBases {
    FakeBases { layers, ..FakeBases::with("registry.example/base:1", ContainerConfig::default()) }
}

#[tokio::test]
async fn chown_and_user_names_come_from_the_topmost_base_layer_that_has_the_file() {
    let fx = fixture();
    fx.file("a.txt", "a", 0o644);
    let layers = three_layers();
    let bases = bases(layers.clone());
    let df = "FROM registry.example/base:1\nCOPY --chown=app:staff a.txt /srv/a\nCOPY --chown=app a.txt /srv/b\nUSER app\nWORKDIR /home/app/work\n";
    let img = build_image(&fx.opts(df), &bases).await;
    let a = entries(&img.layers()[3]);
    let a = entry(&a, "srv/a");
    assert_eq!(
        (a.uid, a.gid),
        (4242, 50),
        "passwd from the second layer (it replaces the first's), group from the first"
    );
    let b = entries(&img.layers()[4]);
    assert_eq!((entry(&b, "srv/b").uid, entry(&b, "srv/b").gid), (4242, 4242));
    let wd = entries(&img.layers()[5]);
    assert_eq!(
        (entry(&wd, "home/app/work/").uid, entry(&wd, "home/app/work/").gid),
        (4242, 4242),
        "USER app + WORKDIR"
    );
    let [l1, l2, l3] = [0, 1, 2].map(|i| Digest::of(&layers[i]));
    assert_eq!(bases.fetched(), [l3, l2, l1], "top down, each layer downloaded once for the whole build");
}

#[tokio::test]
async fn only_the_layers_above_the_file_are_downloaded() {
    let fx = fixture();
    fx.file("a.txt", "a", 0o644);
    let layers = three_layers();
    let bases = bases(layers.clone());
    let img = build_image(&fx.opts("FROM registry.example/base:1\nCOPY --chown=app a.txt /a\n"), &bases).await;
    let a = entries(&img.layers()[3]);
    assert_eq!((a[0].uid, a[0].gid), (4242, 4242));
    assert_eq!(bases.fetched(), [Digest::of(&layers[2]), Digest::of(&layers[1])], "the bottom layer is not needed");
}

#[tokio::test]
async fn our_own_passwd_wins_without_any_download() {
    let fx = fixture();
    fx.file("a.txt", "a", 0o644).file("passwd", "app:x:7:8::/:/bin/sh\n", 0o644);
    let bases = bases(three_layers());
    let img = build_image(
        &fx.opts("FROM registry.example/base:1\nCOPY passwd /etc/passwd\nCOPY --chown=app a.txt /a\n"),
        &bases,
    )
    .await;
    assert_eq!(entries(&img.layers()[4])[0].uid, 7);
    assert!(bases.fetched().is_empty(), "{:?}", bases.fetched());
}

#[tokio::test]
async fn whiteouts_hide_the_lower_files() {
    let fx = fixture();
    fx.file("a.txt", "a", 0o644);
    let mut layers = three_layers();
    layers[2] = gz_layer(&[("etc", None), ("etc/.wh.group", Some(""))]);
    let err = match build(
        &fx.opts("FROM registry.example/base:1\nCOPY --chown=app:staff a.txt /a\n"),
        &bases(layers),
        &Quiet,
    )
    .await
    {
        Err(e) => e.to_string(),
        Ok(_) => panic!("the group file was deleted in the top layer"),
    };
    assert!(
        err.contains("Dockerfile:2:")
            && err.contains("--chown=app:staff")
            && err.contains("base image have /etc/group"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let opaque = dir.path().join("opaque");
    std::fs::write(&opaque, gz_layer(&[("etc", None), ("etc/.wh..wh..opq", Some("")), ("etc/hosts", Some("h"))]))
        .unwrap();
    assert_eq!(scan_layer(&opaque, "etc/passwd").unwrap(), Found::Gone, "an opaque etc hides lower layers' files");
    assert_eq!(scan_layer(&opaque, "etc/hosts").unwrap(), Found::File(b"h".to_vec()));
    assert_eq!(scan_layer(&opaque, "var/x").unwrap(), Found::NotHere);
    let parent = dir.path().join("parent");
    std::fs::write(&parent, gz_layer(&[(".wh.etc", Some(""))])).unwrap();
    assert_eq!(scan_layer(&parent, "etc/passwd").unwrap(), Found::Gone, "a whiteout of a parent deletes the file");
}

#[tokio::test]
async fn copy_from_an_image_unpacks_its_layers_with_whiteouts() {
    let fx = fixture();
    let layers = vec![
        gz_layer(&[
            ("etc", None),
            ("etc/a", Some("a")),
            ("etc/b", Some("b")),
            ("opt", None),
            ("opt/x", None),
            ("opt/x/1", Some("1")),
        ]),
        gz_layer(&[
            ("etc/.wh.a", Some("")),
            ("opt/.wh..wh..opq", Some("")),
            ("opt/y", Some("y")),
            ("etc/b", Some("b2")),
        ]),
    ];
    let bases = bases(layers.clone());
    let df = "FROM scratch\nCOPY --from=registry.example/base:1 /etc /copied/\nCOPY --from=registry.example/base:1 /opt/ /o/\n";
    let img = build_image(&fx.opts(df), &bases).await;
    let etc = entries(&img.layers()[0]);
    assert_eq!(paths(&etc), ["copied/", "copied/b"], "etc/a was deleted by a whiteout");
    assert_eq!(entry(&etc, "copied/b").data, b"b2", "the upper layer's file");
    assert_eq!(paths(&entries(&img.layers()[1])), ["o/", "o/y"], "the opaque opt hides the lower layer's x");
    assert_eq!(bases.fetched(), [Digest::of(&layers[0]), Digest::of(&layers[1])], "each layer fetched once");

    let err = match build(&fx.opts("FROM scratch\nCOPY --from=registry.example/nope:1 /etc /e\n"), &bases, &Quiet).await
    {
        Err(e) => e.to_string(),
        Ok(_) => panic!("there is no such image"),
    };
    assert!(
        err.contains("Dockerfile:2:")
            && err.contains("--from=registry.example/nope:1: no stage has that name, and the image cannot be used")
            && err.contains("not found"),
        "{err}"
    );
    let err = match build(&fx.opts("FROM scratch\nCOPY --from=registry.example/base:1 /nothing /e\n"), &bases, &Quiet)
        .await
    {
        Err(e) => e.to_string(),
        Ok(_) => panic!("there is no such path"),
    };
    assert!(err.contains("/nothing: not found in the image registry.example/base:1"), "{err}");
}

#[tokio::test]
async fn copy_from_a_stage_sees_its_base_when_needed() {
    let fx = fixture();
    fx.file("a.txt", "own", 0o644);
    let layers = vec![gz_layer(&[("etc", None), ("etc/os-release", Some("ID=test\n")), ("etc/hosts", Some("h"))])];
    let bases = bases(layers.clone());
    let df = "FROM registry.example/base:1 AS b\nCOPY a.txt /etc/own\n\
              FROM scratch\nCOPY --from=b /etc/own /own\n\
              FROM scratch AS all\nCOPY --from=b /etc/own /own\nCOPY --from=b /etc/os-release /x\nCOPY --from=b /etc/ /etc/\n";
    let img = build_image(&fx.opts(df), &bases).await;
    assert_eq!(entries(&img.layers()[0])[0].data, b"own");
    assert_eq!(entries(&img.layers()[1])[0].data, b"ID=test\n", "a file of the stage's base");
    assert_eq!(paths(&entries(&img.layers()[2])), ["etc/", "etc/hosts", "etc/os-release", "etc/own"], "base and own");
    assert_eq!(
        bases.fetched(),
        [Digest::of(&layers[0])],
        "downloaded once, for the first file not written by the stage"
    );

    let fx2 = fixture();
    fx2.file("a.txt", "own", 0o644);
    let bases = self::bases(layers);
    let df = "FROM registry.example/base:1 AS b\nCOPY a.txt /own\nFROM scratch\nCOPY --from=b /own /own\n";
    build_image(&fx2.opts(df), &bases).await;
    assert!(bases.fetched().is_empty(), "a file the stage wrote needs nothing from its base");
}

#[tokio::test]
async fn zstd_archives_and_layers_are_unpacked() {
    let fx = fixture();
    let mut tar = Vec::new();
    let gz = gz_layer(&[("pkg", None), ("pkg/f", Some("zstd!"))]);
    flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut tar).unwrap();
    let zst = zstd::stream::encode_all(tar.as_slice(), 3).unwrap();
    std::fs::write(fx.ctx.join("a.tar.zst"), &zst).unwrap();
    let img = scratch_build(&fx.opts("FROM scratch\nADD a.tar.zst /opt/\n")).await;
    let l = entries(&img.layers()[0]);
    assert_eq!(paths(&l), ["opt/", "opt/pkg/", "opt/pkg/f"]);
    assert_eq!(entry(&l, "opt/pkg/f").data, b"zstd!");

    let bases = bases(vec![zst]);
    let img = build_image(&fx.opts("FROM scratch\nCOPY --from=registry.example/base:1 /pkg/f /f\n"), &bases).await;
    assert_eq!(entries(&img.layers()[0])[0].data, b"zstd!", "a zstd layer of an image");
}

#[tokio::test]
async fn one_download_per_layer_for_every_platform() {
    let fx = fixture();
    fx.file("a.txt", "a", 0o644);
    let layers = three_layers();
    let bases = bases(layers.clone());
    let mut opts = fx.opts("FROM --platform=$BUILDPLATFORM registry.example/base:1\nCOPY --chown=app a.txt /a\n");
    opts.platforms = vec![Platform::new("linux", "amd64", None), Platform::new("linux", "arm64", Some("v8"))];
    let index = match build(&opts, &bases, &Quiet).await {
        Ok(Artifact::Index(i)) => i,
        other => panic!("expected an index: {other:?}"),
    };
    for image in &index.images {
        assert_eq!(entries(&image.layers()[3])[0].uid, 4242);
    }
    assert_eq!(bases.fetched(), [Digest::of(&layers[2]), Digest::of(&layers[1])], "once for both platforms");
}

//! Unpacking onto disk: layers in order, whiteouts, links, and every way a hostile layer tries to write outside.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

use super::*;

enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, u32, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str),
    /// A raw name, written into the header's name field as is (the tar crate refuses `..` in `append_data`).
    RawFile(&'a [u8]),
}

fn tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p, m) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*m);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::File(p, m, data) => {
                h.set_mode(*m);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Symlink(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Hardlink(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
                h.as_old_mut().name[..p.len()].copy_from_slice(p.as_bytes());
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            E::Char(p) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_size(0);
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::RawFile(name) => {
                h.set_mode(0o644);
                h.set_size(1);
                h.as_old_mut().name[..name.len()].copy_from_slice(name);
                h.set_cksum();
                b.append(&h, &b"x"[..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    layers: Vec<PathBuf>,
}

impl Fixture {
    fn new(layers: &[Vec<u8>]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        let layers = layers
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let p = dir.path().join(format!("layer{i}"));
                std::fs::write(&p, bytes).unwrap();
                p
            })
            .collect();
        Fixture { dir, layers }
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    fn unpack(&self, as_root: bool) -> Result<UnpackStats, UnpackError> {
        unpack_into_dir(&self.layers, &self.root(), DirOptions { as_root })
    }
}

#[test]
fn layers_apply_in_order_with_whiteouts_links_and_modes() {
    let lower = tar(&[
        E::Dir("bin", 0o755),
        E::File("bin/tool", 0o755, b"#!/bin/sh\n"),
        E::Dir("etc", 0o755),
        E::File("etc/gone", 0o644, b"lower"),
        E::File("etc/kept", 0o600, b"kept"),
        E::Dir("cache", 0o755),
        E::File("cache/old", 0o644, b"old"),
        E::Symlink("bin/alias", "tool"),
        E::Hardlink("bin/same", "bin/tool"),
        E::Dir("ro", 0o555),
        E::File("ro/file", 0o444, b"read-only"),
    ]);
    let upper = tar(&[
        E::File("etc/.wh.gone", 0o644, b""),
        E::Dir("cache", 0o700),
        E::File("cache/new", 0o644, b"new"),
        E::File("cache/.wh..wh..opq", 0o644, b""),
        E::File("etc/kept", 0o640, b"changed"),
    ]);
    let f = Fixture::new(&[gzip(&lower), upper]);
    let stats = f.unpack(false).unwrap();
    let root = f.root();
    assert_eq!(stats.whiteouts, 2);
    assert!(!root.join("etc/gone").exists(), "the whiteout removed the lower file");
    assert_eq!(std::fs::read(root.join("etc/kept")).unwrap(), b"changed");
    assert_eq!(std::fs::metadata(root.join("etc/kept")).unwrap().mode() & 0o7777, 0o640);
    assert!(!root.join("cache/old").exists(), "the opaque marker emptied what the lower layer put there");
    assert_eq!(std::fs::read(root.join("cache/new")).unwrap(), b"new", "but kept what its own layer wrote");
    assert_eq!(std::fs::metadata(root.join("cache")).unwrap().mode() & 0o7777, 0o700);
    assert_eq!(std::fs::read_link(root.join("bin/alias")).unwrap(), PathBuf::from("tool"));
    let (a, b) = (std::fs::metadata(root.join("bin/tool")).unwrap(), std::fs::metadata(root.join("bin/same")).unwrap());
    assert_eq!(a.ino(), b.ino(), "the hard link is one file");
    assert_eq!(a.mode() & 0o7777, 0o755);
    assert_eq!(a.mtime(), 1_700_000_000);
    assert_eq!(std::fs::metadata(root.join("ro")).unwrap().mode() & 0o7777, 0o555, "read-only dir, filled first");
    assert_eq!(std::fs::read(root.join("ro/file")).unwrap(), b"read-only");
    remove_tree(&root).unwrap();
    assert!(!root.exists());
}

#[test]
fn relative_symlinks_inside_the_root_are_followed_as_the_image_sees_them() {
    let f = Fixture::new(&[
        tar(&[E::Dir("usr", 0o755), E::Dir("usr/lib", 0o755), E::Symlink("lib", "usr/lib")]),
        tar(&[E::File("lib/libx.so", 0o644, b"elf")]),
    ]);
    f.unpack(false).unwrap();
    assert_eq!(std::fs::read(f.root().join("usr/lib/libx.so")).unwrap(), b"elf");
    assert!(std::fs::symlink_metadata(f.root().join("lib")).unwrap().file_type().is_symlink());
}

fn refused(f: &Fixture, as_root: bool) -> String {
    match f.unpack(as_root) {
        Err(e @ UnpackError::Refused { .. }) => e.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn dot_dot_entries_are_refused() {
    let f = Fixture::new(&[tar(&[E::RawFile(b"../../x")])]);
    let e = refused(&f, false);
    assert!(e.contains("layer 1, entry `../../x`") && e.contains("`..`"), "{e}");
    assert!(!f.dir.path().join("x").exists() && !f.dir.path().parent().unwrap().join("x").exists());
}

#[test]
fn absolute_entries_are_refused() {
    let f = Fixture::new(&[tar(&[E::RawFile(b"/tmp/octopush-absolute")])]);
    let e = refused(&f, false);
    assert!(e.contains("`/tmp/octopush-absolute`") && e.contains("absolute"), "{e}");
}

#[test]
fn writing_through_an_absolute_symlink_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    let f = Fixture::new(&[tar(&[E::Symlink("escape", &target)]), tar(&[E::File("escape/pwned", 0o644, b"x")])]);
    let e = refused(&f, false);
    assert!(e.contains("layer 2, entry `escape/pwned`") && e.contains("points outside"), "{e}");
    assert!(!outside.path().join("pwned").exists());
}

#[test]
fn writing_through_a_relative_symlink_that_climbs_out_is_refused() {
    let f = Fixture::new(&[tar(&[
        E::Dir("a", 0o755),
        E::Symlink("a/up", "../../.."),
        E::File("a/up/tmp/octopush-climb", 0o644, b"x"),
    ])]);
    let e = refused(&f, false);
    assert!(e.contains("climbs above the image's root"), "{e}");
}

#[test]
fn hard_links_to_files_outside_are_refused() {
    let f = Fixture::new(&[tar(&[E::Hardlink("passwd", "/etc/passwd")])]);
    let e = refused(&f, false);
    assert!(e.contains("entry `passwd`") && e.contains("hard link to `/etc/passwd`, outside the image"), "{e}");
    assert!(!f.root().join("passwd").exists());
    let f = Fixture::new(&[tar(&[E::Hardlink("passwd", "../../../../etc/passwd")])]);
    assert!(refused(&f, false).contains("leaves the image"));
    let f = Fixture::new(&[tar(&[E::Hardlink("passwd", "etc/passwd")])]);
    assert!(refused(&f, false).contains("not a file of the image"));
}

#[test]
fn a_hard_link_through_an_absolute_symlink_is_refused() {
    let f = Fixture::new(&[tar(&[E::Symlink("etc", "/etc"), E::Hardlink("passwd", "etc/passwd")])]);
    let e = refused(&f, false);
    assert!(e.contains("points outside"), "{e}");
}

#[test]
fn a_whiteout_of_the_parent_or_the_directory_itself_is_refused() {
    for name in ["a/.wh..", "a/.wh.", ".wh.."] {
        let f = Fixture::new(&[
            tar(&[E::Dir("a", 0o755), E::File("a/keep", 0o644, b"x")]),
            tar(&[E::RawFile(name.as_bytes())]),
        ]);
        let e = refused(&f, false);
        assert!(e.contains("names no file"), "{name}: {e}");
        assert!(f.root().join("a/keep").exists() && f.dir.path().join("layer0").exists(), "{name} deleted something");
    }
}

#[test]
fn device_files_need_root() {
    let f = Fixture::new(&[tar(&[E::Dir("dev", 0o755), E::Char("dev/null")])]);
    let e = refused(&f, false);
    assert!(e.contains("entry `dev/null`") && e.contains("character device") && e.contains("root"), "{e}");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, data).unwrap();
    e.finish().unwrap()
}

#[test]
fn a_file_replaces_a_symlink_instead_of_writing_through_it() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let f = Fixture::new(&[
        tar(&[E::Symlink("file", victim.to_str().unwrap())]),
        tar(&[E::File("file", 0o644, b"replaced")]),
    ]);
    f.unpack(false).unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    assert_eq!(std::fs::read(f.root().join("file")).unwrap(), b"replaced");
}

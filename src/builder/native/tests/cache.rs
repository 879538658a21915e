//! The layer cache: a hit for unchanged inputs, a miss for any change to what the layer would hold, no record
//! for racily clean or work-directory files, and pruning by last use.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::builder::Compression;
use crate::builder::native::cache::{Hit, LayerCache, LayerStore};
use crate::builder::native::fs::{Content, Kind, Node};

fn cache_at(dir: &Path, max_bytes: u64) -> LayerCache {
    let mut c = LayerCache::open(dir, max_bytes).expect("open cache");
    c.racy_window = Duration::ZERO;
    c
}

/// One build's view of the persistent cache: a fresh store each time, so only the cache itself can hit.
fn write_cached(cache: &LayerCache, e: &BTreeMap<String, Node>, work: &Path) -> std::io::Result<Written> {
    let c = LayerStore::new(Some(cache.clone())).write(e, work, Compression::Gzip)?;
    assert_ne!(c.hit, Some(Hit::Build), "a fresh store has no memo");
    Ok(Written { layer: c.layer, hit: c.hit == Some(Hit::Cache), warning: c.warning })
}

struct Written {
    layer: Layer,
    hit: bool,
    warning: Option<String>,
}

fn file_node(path: &Path, mode: u32) -> Node {
    let size = std::fs::metadata(path).expect("stat").len();
    Node { kind: Kind::File { content: Content::Disk(path.to_path_buf()), size }, mode, uid: 0, gid: 0, mtime: EPOCH }
}

fn entries(files: &[(&str, Node)]) -> BTreeMap<String, Node> {
    let mut m = BTreeMap::new();
    m.insert("app".to_string(), Node::dir(0o755, 0, 0, EPOCH));
    for (p, n) in files {
        m.insert(format!("app/{p}"), n.clone());
    }
    m
}

struct Setup {
    _dir: tempfile::TempDir,
    src: std::path::PathBuf,
    work: std::path::PathBuf,
    cache: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let (src, work, cache) = (dir.path().join("src"), dir.path().join("work"), dir.path().join("cache"));
    for d in [&src, &work] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    Setup { _dir: dir, src, work, cache }
}

#[test]
fn unchanged_inputs_hit_and_give_the_recorded_layer() {
    let s = setup();
    let f = s.src.join("a.txt");
    std::fs::write(&f, "hello").expect("write");
    let e = entries(&[("a.txt", file_node(&f, 0o644))]);
    let cache = cache_at(&s.cache, 1 << 30);
    let first = write_cached(&cache, &e, &s.work).expect("first");
    assert!(!first.hit && first.warning.is_none());
    let second = write_cached(&cache, &e, &s.work).expect("second");
    assert!(second.hit, "the same entries over unchanged files must come from the cache");
    assert_eq!(second.layer.blob.descriptor, first.layer.blob.descriptor);
    assert_eq!(second.layer.diff_id, first.layer.diff_id);
    let BlobSource::File(p) = &second.layer.blob.source else { panic!("a cached layer is a file") };
    assert!(p.starts_with(&s.cache), "the hit points into the cache: {}", p.display());
    assert_eq!(digest_file(p).expect("hash cached blob").0, first.layer.blob.descriptor.digest);
    // Another process opening the same directory sees the record too.
    let reopened = cache_at(&s.cache, 1 << 30);
    assert!(write_cached(&reopened, &e, &s.work).expect("third").hit);
}

#[test]
fn any_change_to_the_layer_inputs_misses() {
    let s = setup();
    let f = s.src.join("a.txt");
    std::fs::write(&f, "hello").expect("write");
    let cache = cache_at(&s.cache, 1 << 30);
    let base = write_cached(&cache, &entries(&[("a.txt", file_node(&f, 0o644))]), &s.work).expect("base");

    // Same size, mtime put back: ctime still moves, so the rewrite is seen.
    let mtime = std::fs::metadata(&f).expect("stat").modified().expect("mtime");
    std::fs::write(&f, "jello").expect("rewrite");
    std::fs::File::options().write(true).open(&f).expect("open").set_modified(mtime).expect("restore mtime");
    let rewritten = write_cached(&cache, &entries(&[("a.txt", file_node(&f, 0o644))]), &s.work).expect("rw");
    assert!(!rewritten.hit, "a rewritten file with the same size and mtime must miss");
    assert_ne!(rewritten.layer.blob.descriptor.digest, base.layer.blob.descriptor.digest);

    // Metadata of the entry (mode, owner, mtime, path) and the layer format are part of the key.
    let mut changed = Vec::new();
    let n = file_node(&f, 0o644);
    changed.push(entries(&[("a.txt", Node { mode: 0o600, ..n.clone() })]));
    changed.push(entries(&[("a.txt", Node { uid: 1000, ..n.clone() })]));
    changed.push(entries(&[("a.txt", Node { mtime: EPOCH + 1, ..n.clone() })]));
    changed.push(entries(&[("b.txt", n.clone())]));
    let mut link = entries(&[("a.txt", n.clone())]);
    link.insert("app/l".into(), Node { kind: Kind::Symlink("a.txt".into()), ..Node::dir(0o777, 0, 0, EPOCH) });
    changed.push(link);
    for e in &changed {
        assert!(!write_cached(&cache, e, &s.work).expect("write").hit, "{e:?} must miss");
    }
    let key = |format: &str| cache.key(&entries(&[("a.txt", n.clone())]), format, &s.work).expect("key");
    assert_ne!(key("gzip"), key("zstd"));

    // Inline (heredoc) contents are keyed by their bytes.
    let inline = |b: &str| {
        let node = Node {
            kind: Kind::File { content: Content::Inline(Arc::new(b.as_bytes().to_vec())), size: b.len() as u64 },
            ..n.clone()
        };
        write_cached(&cache, &entries(&[("h", node)]), &s.work).expect("inline")
    };
    assert!(!inline("one").hit);
    assert!(inline("one").hit);
    assert!(!inline("two").hit);
}

#[test]
fn racily_clean_and_work_dir_files_are_not_recorded() {
    let s = setup();
    let f = s.src.join("fresh.txt");
    std::fs::write(&f, "just written").expect("write");
    let mut cache = LayerCache::open(&s.cache, 1 << 30).expect("open");
    assert_eq!(cache.racy_window, Duration::from_millis(100), "the default window");
    // A window far wider than the time since the write, so the test does not depend on the machine's speed.
    cache.racy_window = Duration::from_secs(3600);
    let e = entries(&[("fresh.txt", file_node(&f, 0o644))]);
    assert!(cache.key(&e, "gzip", &s.work).is_none(), "a file changed within the window has no key");
    assert!(!write_cached(&cache, &e, &s.work).expect("first").hit);
    assert!(!write_cached(&cache, &e, &s.work).expect("second").hit, "nothing was recorded");

    cache.racy_window = Duration::ZERO;
    let unpacked = s.work.join("unpacked.txt");
    std::fs::write(&unpacked, "from an archive").expect("write");
    let e = entries(&[("u.txt", file_node(&unpacked, 0o644))]);
    assert!(cache.key(&e, "gzip", &s.work).is_none(), "work-directory contents are never keyed");
}

#[test]
fn a_missing_blob_is_a_miss_and_pruning_keeps_the_recently_used() {
    let s = setup();
    let cache = cache_at(&s.cache, 1 << 30);
    let mut layers = Vec::new();
    for (i, text) in ["first layer", "second layer", "third layer"].iter().enumerate() {
        let f = s.src.join(format!("{i}.txt"));
        std::fs::write(&f, text.repeat(200)).expect("write");
        let e = entries(&[("f.txt", file_node(&f, 0o644))]);
        let w = write_cached(&cache, &e, &s.work).expect("write");
        layers.push((e, w.layer));
        std::thread::sleep(Duration::from_millis(20));
    }
    let blob = |l: &Layer| s.cache.join("blobs/sha256").join(l.blob.descriptor.digest.hex());
    // Use the first again: it becomes the most recent.
    assert!(write_cached(&cache, &layers[0].0, &s.work).expect("reuse").hit);

    // Room for two layers: the least recently used one (the second) goes when the cache is next opened.
    let size: u64 = layers.iter().map(|(_, l)| l.blob.descriptor.size).max().expect("sizes");
    let small = cache_at(&s.cache, 2 * size);
    assert!(blob(&layers[0].1).exists() && blob(&layers[2].1).exists());
    assert!(!blob(&layers[1].1).exists(), "the least recently used layer is pruned");
    assert!(write_cached(&small, &layers[0].0, &s.work).expect("kept").hit);
    assert!(!write_cached(&small, &layers[1].0, &s.work).expect("pruned").hit);

    // A record whose blob vanished is a miss, and the layer is written and recorded again.
    std::fs::remove_file(blob(&layers[2].1)).expect("rm blob");
    let again = write_cached(&small, &layers[2].0, &s.work).expect("rewrite");
    assert!(!again.hit);
    assert_eq!(again.layer.blob.descriptor, layers[2].1.blob.descriptor);
    assert!(write_cached(&small, &layers[2].0, &s.work).expect("hit").hit);
}

#[tokio::test]
async fn a_second_build_takes_every_layer_from_the_cache_with_the_same_digest() {
    let fx = fixture();
    fx.file("site/index.html", "<h1>hi</h1>", 0o644).file("site/css/a.css", "body{}", 0o644);
    let dockerfile = "FROM scratch\nWORKDIR /srv\nCOPY site/ /srv/www/\nCOPY <<EOF /srv/note\nhello\nEOF\n";
    let uncached = scratch_build(&fx.opts(dockerfile)).await;
    // Files younger than the racy window are not recorded: let them age past it.
    std::thread::sleep(Duration::from_millis(300));
    let cache_dir = tempfile::tempdir().expect("cache dir");
    let mut opts = fx.opts(dockerfile);
    opts.cache_dir = Some(cache_dir.path().to_path_buf());
    let first = Collect::default();
    let a = build(&opts, &ScratchOnly, &first).await.expect("first build");
    let second = Collect::default();
    let b = build(&opts, &ScratchOnly, &second).await.expect("second build");
    assert_eq!(a.manifest().digest, uncached_digest(&uncached), "the cache does not change what is built");
    assert_eq!(b.manifest().digest, a.manifest().digest);
    let hits = |c: &Collect| c.0.lock().expect("lock").iter().filter(|l| l.contains("from the cache")).count();
    assert_eq!(hits(&first), 0);
    assert_eq!(hits(&second), 3, "WORKDIR, COPY and the heredoc COPY: {:?}", second.0.lock().expect("lock"));
    // Changing one file misses only the layer that holds it.
    fx.file("site/index.html", "<h1>changed</h1>", 0o644);
    std::thread::sleep(Duration::from_millis(300));
    let third = Collect::default();
    let c = build(&opts, &ScratchOnly, &third).await.expect("third build");
    assert_ne!(c.manifest().digest, a.manifest().digest);
    assert_eq!(hits(&third), 2);
}

fn uncached_digest(image: &Image) -> Digest {
    Artifact::Image(image.clone()).manifest().digest
}

#[tokio::test]
async fn a_layer_the_same_for_every_platform_is_written_once_even_without_a_cache() {
    let fx = fixture();
    fx.file("site/a.txt", "a", 0o644).file("site/b.txt", "b", 0o644);
    let mut opts = fx.opts("FROM scratch\nARG TARGETARCH\nCOPY site/ /srv/\nCOPY <<EOF /arch\n$TARGETARCH\nEOF\n");
    opts.platforms = vec![Platform::new("linux", "amd64", None), Platform::new("linux", "arm64", Some("v8"))];
    let progress = Collect::default();
    let Artifact::Index(index) = build(&opts, &ScratchOnly, &progress).await.expect("build") else {
        panic!("expected an index")
    };
    let lines = progress.0.lock().expect("lock").clone();
    let reused: Vec<&String> = lines.iter().filter(|l| l.contains("already written by this build")).collect();
    assert_eq!(reused.len(), 1, "the COPY of site/ is reused for arm64, the per-arch heredoc is not: {lines:?}");
    assert!(reused[0].contains("COPY site/ /srv/"), "{reused:?}");
    let (amd, arm) = (&index.images[0], &index.images[1]);
    assert_eq!(amd.layers()[0].blob, arm.layers()[0].blob, "one file, one descriptor");
    assert_ne!(amd.layers()[1].blob.descriptor.digest, arm.layers()[1].blob.descriptor.digest);
    let written = std::fs::read_dir(&fx.work)
        .expect("work dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tar.gz")))
        .count();
    assert_eq!(written, 3, "site/ once, /arch twice");
}

//! The build context as the engine takes it: a tar stream of the context directory, written as the docker CLI
//! writes it and never held whole in memory.
//! - `.dockerignore` (or `<Dockerfile>.dockerignore`) applies with the native builder's matcher; an excluded
//!   directory is walked into only when an `!` exception could re-include something below it;
//! - the Dockerfile and the ignore file are always sent, even when a pattern excludes them (the CLI's
//!   `TrimBuildFilesFromExcludes`);
//! - a Dockerfile outside the context goes in as `.dockerfile.<random>`, the name the build is then told;
//! - owners are root (uid and gid 0), modes and modification times are the files'; symbolic links stay links;
//!   sockets, FIFOs and devices are left out, with a warning.
//!
//! [`stream`] writes it on a blocking thread into a bounded channel, so the engine's pace sets ours.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::builder::BuildError;
use crate::builder::ignore::{PatternMatcher, load_ignore_patterns};

/// Chunks of tar in flight between the writer thread and the request body.
const CHUNK: usize = 256 << 10;
const CHUNKS_IN_FLIGHT: usize = 8;

/// The context to send, checked before the build starts.
#[derive(Debug, Clone)]
pub struct ContextSpec {
    pub dir: PathBuf,
    pub matcher: PatternMatcher,
    /// The ignore file used, always sent (relative to the context).
    pub ignore_file: Option<String>,
    /// The Dockerfile's name in the tar, as the build's `dockerfile` parameter.
    pub dockerfile_name: String,
    /// Set when the Dockerfile is outside the context: its path, added under `dockerfile_name`.
    pub outside_dockerfile: Option<PathBuf>,
    /// Whether the context's files are sent (else the Dockerfile alone).
    pub files: bool,
}

impl ContextSpec {
    pub fn new(context: &Path, dockerfile: &Path) -> Result<ContextSpec, BuildError> {
        let loaded = load_ignore_patterns(context, dockerfile)
            .map_err(|e| BuildError::io("reading .dockerignore in", context, e))?;
        let (file, patterns) = loaded.unwrap_or_default();
        let matcher =
            PatternMatcher::new(&patterns).map_err(|e| BuildError::Options(format!("{}: {e}", file.display())))?;
        let relative = |p: &Path| p.strip_prefix(context).ok().map(slash).filter(|r| !r.is_empty());
        let ignore_file = relative(&file);
        let (dockerfile_name, outside_dockerfile) = match relative(dockerfile) {
            Some(name) => (name, None),
            None => (format!(".dockerfile.{}", random_hex()), Some(dockerfile.to_path_buf())),
        };
        Ok(ContextSpec {
            dir: context.to_path_buf(),
            matcher,
            ignore_file,
            dockerfile_name,
            outside_dockerfile,
            files: true,
        })
    }

    /// The same context with `dockerfile` (a file outside it) as the Dockerfile, and its files only when
    /// `files` (`builder::split`'s engine part).
    pub fn with_dockerfile(self, dockerfile: &Path, files: bool) -> ContextSpec {
        ContextSpec {
            dockerfile_name: format!(".dockerfile.{}", random_hex()),
            outside_dockerfile: Some(dockerfile.to_path_buf()),
            files,
            ..self
        }
    }

    /// Whether `path` (relative, slash-separated) goes into the tar.
    fn included(&self, path: &str) -> bool {
        !self.matcher.matches(path) || path == self.dockerfile_name || self.ignore_file.as_deref() == Some(path)
    }
}

fn slash(p: &Path) -> String {
    p.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

fn random_hex() -> String {
    use rand::Rng as _;
    format!("{:016x}", rand::rng().random::<u64>())
}

/// Starts writing the context's tar; returns the stream of its chunks and a handle whose result lists what was
/// left out (for warnings) or the error that stopped the writer.
pub fn stream(
    spec: ContextSpec,
) -> (
    impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static,
    tokio::task::JoinHandle<io::Result<Vec<String>>>,
) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    let writer = tokio::task::spawn_blocking(move || {
        let out = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) };
        let result = write_tar(&spec, out);
        if let Err(e) = &result {
            // The body ends with the error, so the engine sees a broken upload rather than a short context.
            let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
        }
        result
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    (body, writer)
}

/// Writes the tar for `spec` to `out`; returns the paths left out because they are not files, links or
/// directories.
pub fn write_tar<W: Write>(spec: &ContextSpec, out: W) -> io::Result<Vec<String>> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    let mut skipped = Vec::new();
    if spec.files {
        walk(spec, &spec.dir, "", &mut tar, &mut skipped)?;
    }
    if let Some(path) = &spec.outside_dockerfile {
        let meta = std::fs::metadata(path)?;
        append(&mut tar, &spec.dockerfile_name, path, &meta)?;
    }
    tar.into_inner()?.flush()?;
    Ok(skipped)
}

fn walk<W: Write>(
    spec: &ContextSpec,
    dir: &Path,
    prefix: &str,
    tar: &mut tar::Builder<W>,
    skipped: &mut Vec<String>,
) -> io::Result<()> {
    let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())))
        .collect::<io::Result<_>>()?;
    entries.sort();
    for (name, path) in entries {
        let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let meta = std::fs::symlink_metadata(&path)?;
        let included = spec.included(&rel);
        if meta.is_dir() {
            if included {
                append(tar, &rel, &path, &meta)?;
                walk(spec, &path, &rel, tar, skipped)?;
            } else if spec.matcher.may_reinclude_under(&rel) {
                walk(spec, &path, &rel, tar, skipped)?;
            }
        } else if included {
            if meta.is_file() || meta.file_type().is_symlink() {
                append(tar, &rel, &path, &meta)?;
            } else {
                skipped.push(rel);
            }
        }
    }
    Ok(())
}

fn append<W: Write>(tar: &mut tar::Builder<W>, name: &str, path: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    h.set_uid(0);
    h.set_gid(0);
    let _ = h.set_username("");
    let _ = h.set_groupname("");
    if meta.is_dir() {
        h.set_size(0);
        tar.append_data(&mut h, format!("{name}/"), io::empty())
    } else if meta.file_type().is_symlink() {
        h.set_size(0);
        tar.append_link(&mut h, name, std::fs::read_link(path)?)
    } else {
        let file = std::fs::File::open(path)?;
        // The size the header promised must be what follows: a file that grew or shrank since the stat is an
        // error rather than a corrupt tar.
        h.set_size(meta.len());
        tar.append_data(&mut h, name, ExactReader { inner: file, left: meta.len(), path })
    }
}

struct ExactReader<'a> {
    inner: std::fs::File,
    left: u64,
    path: &'a Path,
}

impl io::Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while it was being sent", self.path.display()),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Sends what is written as `CHUNK`-sized [`Bytes`] into the channel, blocking while the channel is full.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the engine stopped reading the context"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn entries(spec: &ContextSpec) -> Vec<(String, u32, u64, u64)> {
        let mut out = Vec::new();
        write_tar(spec, &mut out).unwrap();
        let mut a = tar::Archive::new(out.as_slice());
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                )
            })
            .collect()
    }

    fn names(spec: &ContextSpec) -> Vec<String> {
        entries(spec).into_iter().map(|e| e.0).collect()
    }

    #[test]
    fn dockerignore_applies_but_the_build_files_always_go() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["Dockerfile", "app.txt", "secret.env", "node_modules/x/a.js", "docs/keep.md", "docs/drop.md"] {
            std::fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
            std::fs::write(d.join(f), f).unwrap();
        }
        std::fs::write(
            d.join(".dockerignore"),
            "*.env\nnode_modules\ndocs\n!docs/keep.md\nDockerfile\n.dockerignore\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("app.txt", d.join("link")).unwrap();
        std::fs::set_permissions(d.join("app.txt"), std::fs::Permissions::from_mode(0o751)).unwrap();
        let spec = ContextSpec::new(d, &d.join("Dockerfile")).unwrap();
        assert_eq!(spec.dockerfile_name, "Dockerfile");
        assert_eq!(names(&spec), vec![".dockerignore", "Dockerfile", "app.txt", "docs/keep.md", "link"]);
        let app = entries(&spec).into_iter().find(|e| e.0 == "app.txt").unwrap();
        assert_eq!((app.1 & 0o7777, app.2, app.3), (0o751, 0, 0), "mode kept, owned by root");
    }

    #[test]
    fn a_dockerfile_outside_the_context_is_added_under_a_private_name() {
        let ctx = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(ctx.path().join("a"), "a").unwrap();
        std::fs::write(elsewhere.path().join("build.Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(elsewhere.path().join("build.Dockerfile.dockerignore"), "a\n").unwrap();
        let spec = ContextSpec::new(ctx.path(), &elsewhere.path().join("build.Dockerfile")).unwrap();
        assert!(spec.dockerfile_name.starts_with(".dockerfile."), "{}", spec.dockerfile_name);
        assert_eq!(names(&spec), vec![spec.dockerfile_name.clone()], "its own ignore file applies");
    }

    #[tokio::test]
    async fn the_stream_carries_the_same_tar() {
        use futures_util::StreamExt as _;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("big"), vec![7u8; 3 * CHUNK + 5]).unwrap();
        let spec = ContextSpec::new(dir.path(), &dir.path().join("Dockerfile")).unwrap();
        let mut expected = Vec::new();
        write_tar(&spec, &mut expected).unwrap();
        let (body, writer) = stream(spec);
        let chunks: Vec<Bytes> = body.map(|c| c.unwrap()).collect().await;
        assert!(chunks.iter().all(|c| c.len() <= CHUNK));
        assert_eq!(chunks.concat(), expected);
        assert!(writer.await.unwrap().unwrap().is_empty());
    }
}

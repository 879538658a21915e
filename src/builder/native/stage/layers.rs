//! The instructions that write layers: COPY, ADD (through `copy`) and WORKDIR (a `mkdir -p`), each planned and
//! written on a blocking thread so no layer is held in memory and the runtime is not stalled.

use super::*;
use crate::builder::native::chmod::Chmod;
use crate::builder::native::context::image_path;
use crate::builder::native::fetch::{parse_checksum, url_file_name};
use crate::builder::native::fs::{Content, Kind, Node};
use crate::image::Digest;

impl<R: BaseResolver> Evaluator<'_, R> {
    pub(super) async fn workdir(&mut self, st: &mut State, path: &str, line: usize) -> Result<(), BuildError> {
        let p = self.expand(path, &st.vars).map_err(|m| self.err(line, "WORKDIR", format!("WORKDIR {m}")))?;
        let current = st.image.config().config.as_ref().and_then(|c| c.working_dir.clone()).unwrap_or_default();
        let rel = image_path(&current, &p);
        let wd = format!("/{rel}");
        st.edit(|c| c.container_mut().working_dir = Some(wd.clone()));
        if rel.is_empty() {
            self.commit_empty(st, format!("WORKDIR {wd}"));
            return Ok(());
        }
        let user = st.image.config().config.as_ref().and_then(|c| c.user.clone()).unwrap_or_default();
        let owner = if user.is_empty() {
            None
        } else {
            match self.owner(st, &user).await {
                Ok(o) => Some(o),
                Err(m) => {
                    self.env
                        .progress
                        .warning(&format!("{}:{line}: WORKDIR {wd} is created owned by root: {m}", self.env.file));
                    None
                }
            }
        };
        let policy = self.policy(owner, None, st);
        let entries = mkdir_entries(&st.fs, &rel, &policy);
        if entries.is_empty() {
            self.commit_empty(st, format!("WORKDIR {wd}"));
            return Ok(());
        }
        let work_dir = self.env.opts.work_dir.clone();
        let layers = self.env.layers.clone();
        let compression = self.env.opts.compression;
        let (entries, layer) =
            tokio::task::spawn_blocking(move || layers.write(&entries, &work_dir, compression).map(|l| (entries, l)))
                .await
                .map_err(|e| BuildError::Options(format!("the layer writer stopped: {e}")))?
                .map_err(|e| self.err(line, "WORKDIR", format!("WORKDIR {wd}: writing the layer: {e}")))?;
        st.fs.apply(&entries);
        self.commit_cached(st, layer, format!("WORKDIR {wd}"));
        Ok(())
    }

    /// `user[:group]` to ids: names are looked up in this stage's own `/etc/passwd` and `/etc/group`, else in
    /// its base image's layers (downloaded from the top down only until the file is found).
    async fn owner(&self, st: &State, spec: &str) -> Result<(u64, u64), String> {
        let (user, group) = config::split_owner(spec);
        let mut files = config::IdFiles::default();
        if user.parse::<u64>().is_err() {
            files.passwd = self.id_file(st, "etc/passwd").await?;
        }
        if group.is_some_and(|g| !g.is_empty() && g.parse::<u64>().is_err()) {
            files.group = self.id_file(st, "etc/group").await?;
        }
        config::owner(spec, &files, st.fs.complete)
    }

    async fn id_file(&self, st: &State, path: &str) -> Result<Option<Vec<u8>>, String> {
        if let Some(bytes) = st.fs.read(path).map_err(|e| format!("reading /{path}: {e}"))? {
            return Ok(Some(bytes));
        }
        if st.fs.complete {
            return Ok(None);
        }
        let base = st.below.clone().unwrap_or_else(|| base_layers(&st.image));
        self.env.base_files.read(self.bases, &base, path, &self.env.opts.work_dir).await.map_err(|e| e.to_string())
    }

    fn policy(&self, chown: Option<(u64, u64)>, chmod: Option<Chmod>, st: &State) -> Policy {
        Policy {
            chown,
            chmod,
            epoch: self.env.opts.source_date_epoch,
            now: self.env.now,
            base_workdir: st.base_workdir.clone(),
        }
    }

    pub(super) async fn copy(
        &mut self,
        st: &mut State,
        c: &CopyArgs,
        is_add: bool,
        line: usize,
    ) -> Result<(), BuildError> {
        let kw = if is_add { "ADD" } else { "COPY" };
        let fail = |m: String| self.err(line, kw, format!("{kw} {m}"));
        let mut sources = Vec::new();
        let mut urls = Vec::new();
        // Every source as expanded, in order, for the history.
        let mut expanded = Vec::new();
        for s in &c.sources {
            let e = self.expand(s, &st.vars).map_err(&fail)?;
            expanded.push(e.clone());
            if e.starts_with("http://") || e.starts_with("https://") {
                if !is_add {
                    return Err(fail(format!(
                        "{e}: COPY does not fetch URLs (source can't be a URL for COPY); use ADD"
                    )));
                }
                urls.push(e);
            } else if e.starts_with("git@") || e.starts_with("git://") {
                return Err(fail(format!(
                    "{e}: fetching git repositories is not supported by the native builder yet; check it out in a \
                     workflow step and COPY it from the context"
                )));
            } else {
                sources.push(e);
            }
        }
        let dest = self.expand(&c.dest, &st.vars).map_err(&fail)?;
        let checksum = match &c.checksum {
            None => None,
            Some(spec) => {
                let spec = self.expand(spec, &st.vars).map_err(&fail)?;
                // BuildKit's checks, in its order.
                if !is_add {
                    return Err(fail(format!("--checksum={spec}: checksum can't be specified for COPY; use ADD")));
                }
                if c.sources.len() != 1 {
                    return Err(fail(format!("--checksum={spec}: checksum can't be specified for multiple sources")));
                }
                if urls.is_empty() {
                    return Err(fail(format!(
                        "--checksum={spec}: checksum can't be specified for non-HTTP(S) sources; it checks the download \
                         of an http:// or https:// URL"
                    )));
                }
                Some(parse_checksum(&spec).map_err(&fail)?)
            }
        };
        if c.keep_git_dir.is_some() {
            return Err(fail(
                "--keep-git-dir applies to git sources, which the native builder does not fetch yet".into(),
            ));
        }
        // Each with its expanded spec, for the history.
        let chown = match &c.chown {
            None => None,
            Some(spec) => {
                let spec = self.expand(spec, &st.vars).map_err(&fail)?;
                let ids = self.owner(st, &spec).await.map_err(|m| fail(format!("--chown={spec}: {m}")))?;
                Some((spec, ids))
            }
        };
        let chmod = match &c.chmod {
            None => None,
            Some(spec) => {
                let spec = self.expand(spec, &st.vars).map_err(&fail)?;
                let mode = Chmod::parse(&spec).map_err(|m| fail(format!("--chmod={spec}: {m}")))?;
                Some((spec, mode))
            }
        };
        let source = match &c.from {
            None => Source::Context(self.env.ctx.clone()),
            Some(from) => self.copy_source(from, &sources, &st.image.platform()).await.map_err(&fail)?,
        };
        let downloads = self.download(&urls, checksum.as_ref(), &fail).await?;
        let heredoc_lexer = Lexer { skip_quotes: true, ..Lexer::new('\\') };
        let mut heredocs = Vec::new();
        for h in &c.heredocs {
            let body = if h.expand {
                heredoc_lexer
                    .process_word_within(&h.content, &st.vars, &self.budget)
                    .map_err(|e| fail(e.to_string()))?
            } else {
                h.content.clone()
            };
            heredocs.push((h.name.clone(), body.into_bytes()));
        }
        let mut created_by = kw.to_string();
        for (flag, spec) in [("chown", chown.as_ref().map(|c| &c.0)), ("chmod", chmod.as_ref().map(|c| &c.0))] {
            if let Some(spec) = spec {
                created_by.push_str(&format!(" --{flag}={spec}"));
            }
        }
        for s in &expanded {
            created_by.push_str(&format!(" {s}"));
        }
        for h in &c.heredocs {
            created_by.push_str(&format!(" <<{}", h.name));
        }
        created_by.push_str(&format!(" {dest} # buildkit"));
        let workdir = st.image.config().config.as_ref().and_then(|c| c.working_dir.clone()).unwrap_or_default();
        let job = CopyJob {
            keyword: kw,
            source,
            sources,
            heredocs,
            downloads,
            dest,
            workdir,
            excludes: c.exclude.clone(),
            unpack: is_add && c.unpack != Some(false),
            parents: c.parents,
            policy: self.policy(chown.map(|c| c.1), chmod.map(|c| c.1), st),
            work_dir: self.env.opts.work_dir.clone(),
        };
        let tree = std::mem::take(&mut st.fs);
        let layers = self.env.layers.clone();
        let compression = self.env.opts.compression;
        let outcome = tokio::task::spawn_blocking(move || {
            let planned = match job.plan(&tree) {
                Ok(p) => p,
                Err(m) => return (tree, Err(m)),
            };
            let layer = layers
                .write(&planned.entries, &job.work_dir, compression)
                .map_err(|e| format!("writing the layer: {e}"));
            (tree, layer.map(|l| (planned, l)))
        })
        .await
        .map_err(|e| BuildError::Options(format!("the layer writer stopped: {e}")))?;
        let (tree, result) = outcome;
        st.fs = tree;
        let (planned, layer) = result.map_err(fail)?;
        for w in &planned.warnings {
            self.env.progress.warning(&format!("{}:{line}: {kw} {w}", self.env.file));
        }
        st.fs.apply(&planned.entries);
        self.commit_cached(st, layer, created_by);
        Ok(())
    }

    /// ADD's URLs, each fetched into a file of the work directory and checked against `--checksum`: entries as
    /// BuildKit makes them (mode 0600, root, mtime from `Last-Modified`), never unpacked.
    async fn download(
        &self,
        urls: &[String],
        checksum: Option<&Digest>,
        fail: &impl Fn(String) -> BuildError,
    ) -> Result<Vec<(String, Node)>, BuildError> {
        let work_dir = &self.env.opts.work_dir;
        let mut out = Vec::new();
        for url in urls {
            let (_, path) = tempfile::Builder::new()
                .prefix(".url-")
                .tempfile_in(work_dir)
                .and_then(|t| t.keep().map_err(|e| e.error))
                .map_err(|e| BuildError::io("creating a download file in", work_dir, e))?;
            self.env.progress.info(&format!("fetching {url}"));
            let got = self.bases.fetch_url(url, &path).await.map_err(|e| fail(e.to_string()))?;
            if let Some(expected) = checksum.filter(|d| **d != got.digest) {
                return Err(fail(format!(
                    "--checksum={expected}: the download of {url} has the digest {}, not the expected {expected}; \
                     fix the checksum or the URL",
                    got.digest
                )));
            }
            let node = Node {
                kind: Kind::File { content: Content::Disk(path), size: got.size },
                mode: 0o600,
                uid: 0,
                gid: 0,
                mtime: got.last_modified.unwrap_or(self.env.now),
            };
            out.push((url_file_name(url), node));
        }
        Ok(out)
    }
}

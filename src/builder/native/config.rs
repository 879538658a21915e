//! Instructions that only change the image config, as BuildKit's dispatchers do (LABEL, USER, EXPOSE, VOLUME,
//! STOPSIGNAL, HEALTHCHECK, SHELL, ENTRYPOINT, CMD, ONBUILD, MAINTAINER), each returning the history line
//! BuildKit records, and owner lookups for `--chown` and WORKDIR.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::stage::State;
use crate::dockerfile::shell::{ExpansionBudget, Lexer};
use crate::dockerfile::{CommandLine, Healthcheck, InstructionKind};
use crate::image::Healthcheck as ConfigHealthcheck;

/// Applies a metadata instruction; returns the history text, `None` for ONBUILD (which records none).
pub(crate) fn apply(
    st: &mut State,
    kind: &InstructionKind,
    lexer: &Lexer,
    budget: &ExpansionBudget,
) -> Result<Option<String>, String> {
    let expand = |w: &str, st: &State| lexer.process_word_within(w, &st.vars, budget).map_err(|e| e.to_string());
    Ok(Some(match kind {
        InstructionKind::Label(kvs) => {
            let mut pairs = Vec::new();
            for kv in kvs {
                pairs.push((expand(&kv.key, st)?, expand(&kv.value, st)?));
            }
            let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            st.edit(|c| c.container_mut().labels.get_or_insert_with(BTreeMap::new).extend(pairs));
            format!("LABEL {}", text.join(" "))
        }
        InstructionKind::User(u) => {
            let u = expand(u, st)?;
            st.edit(|c| c.container_mut().user = Some(u.clone()));
            format!("USER {u}")
        }
        InstructionKind::Expose(raw) => {
            let mut ports = Vec::new();
            for r in raw {
                for word in lexer.process_words_within(r, &st.vars, budget).map_err(|e| e.to_string())? {
                    ports.extend(parse_port(&word)?);
                }
            }
            let text = ports.join(" ");
            st.edit(|c| {
                let map = c.container_mut().exposed_ports.get_or_insert_with(BTreeMap::new);
                map.extend(ports.into_iter().map(|p| (p, Value::Object(Map::new()))));
            });
            format!("EXPOSE [{text}]")
        }
        InstructionKind::Volume(raw) => {
            let mut vols = Vec::new();
            for r in raw {
                let v = expand(r, st)?;
                if v.is_empty() {
                    return Err("specified can not be an empty string".into());
                }
                vols.push(v);
            }
            let text = vols.join(" ");
            st.edit(|c| {
                let map = c.container_mut().volumes.get_or_insert_with(BTreeMap::new);
                map.extend(vols.into_iter().map(|v| (v, Value::Object(Map::new()))));
            });
            format!("VOLUME [{text}]")
        }
        InstructionKind::StopSignal(s) => {
            let s = expand(s, st)?;
            check_signal(&s)?;
            st.edit(|c| c.container_mut().stop_signal = Some(s.clone()));
            format!("STOPSIGNAL {s}")
        }
        InstructionKind::Healthcheck(h) => {
            let hc = match h {
                Healthcheck::None => ConfigHealthcheck { test: Some(vec!["NONE".into()]), ..Default::default() },
                Healthcheck::Cmd { command, interval, timeout, start_period, start_interval, retries } => {
                    let test = match command {
                        CommandLine::Exec(v) => std::iter::once("CMD".to_string()).chain(v.iter().cloned()).collect(),
                        CommandLine::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                    };
                    let nz = |v: &i64| (*v != 0).then_some(*v);
                    ConfigHealthcheck {
                        test: Some(test),
                        interval: nz(interval),
                        timeout: nz(timeout),
                        start_period: nz(start_period),
                        start_interval: nz(start_interval),
                        retries: nz(retries),
                    }
                }
            };
            let d = |v: Option<i64>| go_duration(v.unwrap_or(0));
            let text = format!(
                "HEALTHCHECK {{Test:[{}] Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
                hc.test.clone().unwrap_or_default().join(" "),
                d(hc.interval),
                d(hc.timeout),
                d(hc.start_period),
                d(hc.start_interval),
                hc.retries.unwrap_or(0)
            );
            st.edit(|c| c.container_mut().healthcheck = Some(hc));
            text
        }
        InstructionKind::Shell(v) => {
            st.edit(|c| c.container_mut().shell = Some(v.clone()));
            format!("SHELL [{}]", v.join(" "))
        }
        InstructionKind::Cmd(cmd) => {
            let args = with_shell(st, cmd);
            st.cmd_set = true;
            let text = format!("CMD {}", quoted(&args));
            st.edit(|c| {
                let cc = c.container_mut();
                cc.cmd = Some(args);
                cc.args_escaped = Some(true);
            });
            text
        }
        InstructionKind::Entrypoint(cmd) => {
            let args = with_shell(st, cmd);
            let keep_cmd = st.cmd_set;
            let text = format!("ENTRYPOINT {}", quoted(&args));
            st.edit(|c| {
                let cc = c.container_mut();
                cc.entrypoint = Some(args);
                if !keep_cmd {
                    cc.cmd = None;
                }
            });
            text
        }
        InstructionKind::Onbuild(o) => {
            st.onbuild.push(o.expression.clone());
            st.edit(|c| c.container_mut().on_build.get_or_insert_with(Vec::new).push(o.expression.clone()));
            return Ok(None);
        }
        InstructionKind::Maintainer(m) => {
            st.edit(|c| c.author = Some(m.clone()));
            format!("MAINTAINER {m}")
        }
        other => return Err(format!("{} is not a config instruction", other.name())),
    }))
}

/// The exec form as is; the shell form wrapped in SHELL (default `/bin/sh -c`, `cmd /S /C` on Windows).
fn with_shell(st: &State, cmd: &CommandLine) -> Vec<String> {
    match cmd {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let mut shell = st.image.config().config.as_ref().and_then(|c| c.shell.clone()).unwrap_or_default();
            if shell.is_empty() {
                shell = if st.image.config().os == "windows" {
                    vec!["cmd".into(), "/S".into(), "/C".into()]
                } else {
                    vec!["/bin/sh".into(), "-c".into()]
                };
            }
            shell.push(s.clone());
            shell
        }
    }
}

/// Go's `%q` of a string slice: `["/bin/sh" "-c" "echo hi"]`.
fn quoted(args: &[String]) -> String {
    let parts: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!("[{}]", parts.join(" "))
}

/// Go's `time.Duration` string for the values HEALTHCHECK takes (`0s`, `500ms`, `1.5s`, `1m30s`, `2h0m0s`).
pub(crate) fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let (sign, ns) = if ns < 0 { ("-", ns.unsigned_abs()) } else { ("", ns as u64) };
    let trim = |whole: u64, frac: u64, digits: usize, unit: &str| {
        let f = format!("{frac:0digits$}");
        let f = f.trim_end_matches('0');
        if f.is_empty() { format!("{whole}{unit}") } else { format!("{whole}.{f}{unit}") }
    };
    if ns < 1_000 {
        return format!("{sign}{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{sign}{}", trim(ns / 1_000, ns % 1_000, 3, "µs"));
    }
    if ns < 1_000_000_000 {
        return format!("{sign}{}", trim(ns / 1_000_000, ns % 1_000_000, 6, "ms"));
    }
    let (h, rest) = (ns / 3_600_000_000_000, ns % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let secs = trim(rest / 1_000_000_000, rest % 1_000_000_000, 9, "s");
    match (h, m) {
        (0, 0) => format!("{sign}{secs}"),
        (0, m) => format!("{sign}{m}m{secs}"),
        (h, m) => format!("{sign}{h}h{m}m{secs}"),
    }
}

/// `[ip:][host:]port[-end][/proto]` to `port/proto` entries, as Docker's nat package reads EXPOSE.
fn parse_port(raw: &str) -> Result<Vec<String>, String> {
    let (spec, proto) = raw.split_once('/').unwrap_or((raw, "tcp"));
    let proto = if proto.is_empty() { "tcp".to_string() } else { proto.to_ascii_lowercase() };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid port {raw:?}: the protocol must be tcp, udp or sctp"));
    }
    let container = spec.rsplit(':').next().unwrap_or(spec);
    let bad = || format!("invalid port {raw:?}: write PORT[/PROTOCOL] or START-END[/PROTOCOL], for example 8080/tcp");
    let num = |s: &str| s.parse::<u16>().map_err(|_| bad());
    let (start, end) = match container.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(container)?, num(container)?),
    };
    if end < start {
        return Err(bad());
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL",
    "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1",
    "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// A signal name (`SIGTERM`, `TERM`, `SIGRTMIN+3`) or number, as Docker's `signal.ParseSignal` accepts.
fn check_signal(s: &str) -> Result<(), String> {
    if let Ok(n) = s.parse::<u32>() {
        return if n == 0 || n > 64 { Err(format!("invalid signal: {s}")) } else { Ok(()) };
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let rt = |base: &str| {
        name.strip_prefix(base)
            .is_some_and(|r| r.is_empty() || r.strip_prefix(['+', '-']).is_some_and(|n| n.parse::<u8>().is_ok()))
    };
    if SIGNALS.contains(&name) || rt("RTMIN") || rt("RTMAX") {
        Ok(())
    } else {
        Err(format!("invalid signal: {s} (use a name such as SIGTERM or a number)"))
    }
}

/// `/etc/passwd` and `/etc/group` as the stage sees them (its own layers first, then its base's), when needed.
#[derive(Debug, Default)]
pub(crate) struct IdFiles {
    pub passwd: Option<Vec<u8>>,
    pub group: Option<Vec<u8>>,
}

/// `user[:group]` split; the group is `None` without a colon.
pub(crate) fn split_owner(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    }
}

/// Resolves `user[:group]` to numeric ids, names through `files`; without a group, a named user's gid is its
/// primary group and a numeric user's the same number. `complete` says the stage has no base image (FROM
/// scratch), for the message.
pub(crate) fn owner(spec: &str, files: &IdFiles, complete: bool) -> Result<(u64, u64), String> {
    let (user, group) = split_owner(spec);
    let missing = |file: &str, name: &str| {
        if complete {
            format!(
                "`{name}` cannot be looked up: this stage has no {file} (it starts FROM scratch); use numeric ids, for example 1000:1000"
            )
        } else {
            format!(
                "`{name}` cannot be looked up: neither this stage's own files nor its base image have {file}; use numeric \
                 ids, for example --chown=1000:1000"
            )
        }
    };
    // A number as it is, else the third field of the name's line in `file`.
    let id = |name: &str, text: &Option<Vec<u8>>, file: &str, what: &str| -> Result<u64, String> {
        if let Ok(n) = name.parse::<u64>() {
            return Ok(n);
        }
        let Some(text) = text else { return Err(missing(file, name)) };
        find_id_line(text, name)
            .and_then(|f| f.get(2)?.parse().ok())
            .ok_or_else(|| format!("the {what} `{name}` is not in {file}"))
    };
    let uid = id(user, &files.passwd, "/etc/passwd", "user")?;
    // Without a group: a user named gets the primary group its /etc/passwd line gives, a user by number the same
    // number (BuildKit's `readUser`).
    let primary = || {
        let line = files.passwd.as_ref().and_then(|text| find_id_line(text, user));
        line.and_then(|f| f.get(3)?.parse().ok())
            .ok_or_else(|| format!("the user `{user}` has no primary group in /etc/passwd"))
    };
    let gid = match group {
        None | Some("") if user.parse::<u64>().is_ok() => uid,
        None | Some("") => primary()?,
        Some(g) => id(g, &files.group, "/etc/group", "group")?,
    };
    Ok((uid, gid))
}

fn find_id_line(text: &[u8], name: &str) -> Option<Vec<String>> {
    String::from_utf8_lossy(text)
        .lines()
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f.first().map(String::as_str) == Some(name))
}

//! One logical line to one typed instruction, with BuildKit's per-instruction rules (`instructions/parse.go`):
//! which flags each accepts, argument counts, the exec and shell forms, and its error messages.

use super::ast::{Arg, CommandLine, CopyArgs, Healthcheck, Heredoc, InstructionKind, KeyValue, Onbuild, Run};
use super::lines::{chomp_tabs, parse_heredoc};
use super::words::{FlagKind, Flags, parse_json, parse_words, split_command, split_whitespace};

/// A parsed line: a stage start or an instruction inside one.
#[derive(Debug)]
pub(crate) enum Parsed {
    From { base: String, name: Option<String>, platform: Option<String> },
    Instruction(InstructionKind),
}

/// Whether the instruction on `line` may open heredocs: COPY, ADD and RUN (also as ONBUILD triggers) in the
/// shell form.
pub(crate) fn heredoc_capable(line: &str, escape: char) -> bool {
    let (cmd, _, mut args) = split_command(line, escape);
    let mut cmd = cmd.to_ascii_lowercase();
    if cmd == "onbuild" {
        let (sub, _, sub_args) = split_command(&args, escape);
        cmd = sub.to_ascii_lowercase();
        args = sub_args;
    }
    matches!(cmd.as_str(), "copy" | "add" | "run") && !matches!(parse_json(&args), Ok(Some(_)))
}

/// Parses one logical line. The error is the message only; the caller adds file and line.
pub(crate) fn parse_line(line: &str, heredocs: &[Heredoc], escape: char) -> Result<Parsed, String> {
    let (cmd, raw_flags, rest) = split_command(line, escape);
    let upper = cmd.to_ascii_uppercase();
    let flags = |allowed: &[(&str, FlagKind)]| Flags::parse(&raw_flags, allowed).map_err(|e| format!("{upper}: {e}"));
    let kind = match upper.as_str() {
        "FROM" => {
            let f = flags(&[("platform", FlagKind::String)])?;
            let args = split_whitespace(&rest);
            let name = match args.len() {
                1 => None,
                3 if args[1].eq_ignore_ascii_case("as") => Some(stage_name(&args[2])?),
                _ => {
                    return Err(
                        "FROM requires either one or three arguments: FROM [--platform=...] IMAGE [AS NAME]".into()
                    );
                }
            };
            return Ok(Parsed::From { base: args[0].clone(), name, platform: f.string("platform") });
        }
        "ARG" => {
            flags(&[])?;
            let words = parse_words(&rest, escape);
            if words.is_empty() {
                return Err("ARG requires at least one argument".into());
            }
            let args = words
                .into_iter()
                .map(|w| match w.split_once('=') {
                    Some(("", _)) => Err("ARG names can not be blank".to_string()),
                    Some((k, v)) => Ok(Arg { name: k.into(), default: Some(v.into()) }),
                    None => Ok(Arg { name: w, default: None }),
                })
                .collect::<Result<_, _>>()?;
            InstructionKind::Arg(args)
        }
        "ENV" => {
            flags(&[])?;
            InstructionKind::Env(key_values(&rest, "ENV", escape)?)
        }
        "LABEL" => {
            flags(&[])?;
            InstructionKind::Label(key_values(&rest, "LABEL", escape)?)
        }
        "COPY" | "ADD" => {
            let is_add = upper == "ADD";
            let f = if is_add {
                flags(&[
                    ("chown", FlagKind::String),
                    ("chmod", FlagKind::String),
                    ("link", FlagKind::Bool),
                    ("keep-git-dir", FlagKind::Bool),
                    ("checksum", FlagKind::String),
                    ("unpack", FlagKind::Bool),
                    ("exclude", FlagKind::Strings),
                ])?
            } else {
                flags(&[
                    ("chown", FlagKind::String),
                    ("from", FlagKind::String),
                    ("chmod", FlagKind::String),
                    ("link", FlagKind::Bool),
                    ("exclude", FlagKind::Strings),
                    ("parents", FlagKind::Bool),
                ])?
            };
            let mut copy = sources_and_dest(&upper, &rest, heredocs)?;
            copy.from = f.string("from");
            copy.chown = f.string("chown");
            copy.chmod = f.string("chmod");
            copy.link = f.bool("link").unwrap_or(false);
            copy.parents = f.bool("parents").unwrap_or(false);
            copy.exclude = f.strings("exclude");
            copy.checksum = f.string("checksum");
            copy.keep_git_dir = f.bool("keep-git-dir");
            copy.unpack = f.bool("unpack");
            if is_add { InstructionKind::Add(copy) } else { InstructionKind::Copy(copy) }
        }
        "RUN" => {
            let f = flags(&[
                ("mount", FlagKind::Strings),
                ("network", FlagKind::String),
                ("security", FlagKind::String),
                ("device", FlagKind::Strings),
            ])?;
            InstructionKind::Run(Run { command: command_line(&rest)?, heredocs: heredocs.to_vec(), flags: f.raw() })
        }
        "CMD" => {
            flags(&[])?;
            InstructionKind::Cmd(command_line(&rest)?)
        }
        "ENTRYPOINT" => {
            flags(&[])?;
            InstructionKind::Entrypoint(command_line(&rest)?)
        }
        "SHELL" => {
            flags(&[])?;
            match parse_json(&rest)? {
                Some(v) if v.is_empty() => return Err("SHELL requires at least one argument".into()),
                Some(v) => InstructionKind::Shell(v),
                None if rest.is_empty() => return Err("SHELL requires at least one argument".into()),
                None => {
                    return Err(
                        r#"SHELL requires the arguments in JSON form, for example SHELL ["/bin/bash", "-c"]"#.into()
                    );
                }
            }
        }
        "WORKDIR" => InstructionKind::Workdir(one_argument(&upper, &rest, flags(&[])?)?),
        "USER" => InstructionKind::User(one_argument(&upper, &rest, flags(&[])?)?),
        "STOPSIGNAL" => InstructionKind::StopSignal(one_argument(&upper, &rest, flags(&[])?)?),
        "MAINTAINER" => InstructionKind::Maintainer(one_argument(&upper, &rest, flags(&[])?)?),
        "EXPOSE" => {
            flags(&[])?;
            let mut ports = split_whitespace(&rest);
            if ports.is_empty() {
                return Err("EXPOSE requires at least one argument".into());
            }
            ports.sort();
            InstructionKind::Expose(ports)
        }
        "VOLUME" => {
            flags(&[])?;
            let list = match parse_json(&rest)? {
                Some(v) => v,
                None => split_whitespace(&rest),
            };
            if list.is_empty() {
                return Err("VOLUME requires at least one argument".into());
            }
            let list: Vec<String> = list.iter().map(|v| v.trim().to_string()).collect();
            if list.iter().any(String::is_empty) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            InstructionKind::Volume(list)
        }
        "HEALTHCHECK" => InstructionKind::Healthcheck(healthcheck(&rest, &raw_flags)?),
        "ONBUILD" => {
            flags(&[])?;
            if rest.is_empty() {
                return Err("ONBUILD requires at least one argument".into());
            }
            let (sub, _, _) = split_command(&rest, escape);
            let sub = sub.to_ascii_uppercase();
            match sub.as_str() {
                "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
                "MAINTAINER" | "FROM" => return Err(format!("{sub} isn't allowed as an ONBUILD trigger")),
                _ => {}
            }
            let Parsed::Instruction(trigger) = parse_line(&rest, heredocs, escape)? else {
                return Err("FROM isn't allowed as an ONBUILD trigger".into());
            };
            let mut expression = strip_onbuild(line).to_string();
            for h in heredocs {
                expression.push('\n');
                expression.push_str(&h.content);
                expression.push_str(&h.name);
            }
            InstructionKind::Onbuild(Onbuild { expression, trigger: Box::new(trigger) })
        }
        "" => return Err("empty instruction".into()),
        _ => return Err(format!("unknown instruction: {cmd}")),
    };
    Ok(Parsed::Instruction(kind))
}

fn stage_name(raw: &str) -> Result<String, String> {
    let name = raw.to_ascii_lowercase();
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(format!(
            "invalid name for build stage: {raw:?}, name can't start with a number or contain symbols"
        ));
    }
    Ok(name)
}

fn strip_onbuild(line: &str) -> &str {
    let t = line.trim_start();
    match t.get(..7) {
        Some(kw) if kw.eq_ignore_ascii_case("onbuild") => t[7..].trim_start(),
        _ => t,
    }
}

fn one_argument(upper: &str, rest: &str, _flags: Flags) -> Result<String, String> {
    if rest.is_empty() {
        return Err(format!("{upper} requires exactly one argument"));
    }
    Ok(rest.to_string())
}

fn command_line(rest: &str) -> Result<CommandLine, String> {
    Ok(match parse_json(rest)? {
        Some(v) => CommandLine::Exec(v),
        None => CommandLine::Shell(rest.to_string()),
    })
}

/// ENV and LABEL: `k=v k2=v2` or the legacy `k v with spaces`.
fn key_values(rest: &str, kw: &str, escape: char) -> Result<Vec<KeyValue>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(format!("{kw} requires at least one argument"));
    };
    if !first.contains('=') {
        let mut parts = rest.splitn(2, super::words::is_separator);
        let key = parts.next().unwrap_or_default();
        let value = parts.next().map(|v| v.trim_start_matches(super::words::is_separator)).unwrap_or_default();
        if value.is_empty() {
            return Err(format!("{kw} must have two arguments: {kw} key=value (or the legacy {kw} key value)"));
        }
        return Ok(vec![KeyValue { key: key.into(), value: value.into(), legacy: true }]);
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            None => Err(format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value")),
            Some(("", _)) => Err(format!("{kw} names can not be blank")),
            Some((k, v)) => Ok(KeyValue { key: k.into(), value: v.into(), legacy: false }),
        })
        .collect()
}

fn sources_and_dest(upper: &str, rest: &str, heredocs: &[Heredoc]) -> Result<CopyArgs, String> {
    let (args, json) = match parse_json(rest)? {
        Some(v) => (v, true),
        None => (split_whitespace(rest), false),
    };
    let Some((dest, sources)) = args.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(format!(
            "{upper} requires at least two arguments, but only {} provided: {upper} SOURCE... DESTINATION",
            if args.is_empty() { "none was" } else { "one was" }
        ));
    };
    if parse_heredoc(dest)?.is_some() {
        return Err(format!("{upper} cannot accept a heredoc as a destination"));
    }
    let mut copy = CopyArgs { dest: dest.clone(), json, ..CopyArgs::default() };
    for src in sources {
        match parse_heredoc(src)? {
            Some(mut h) => {
                let body = heredocs.iter().find(|d| d.name == h.name).map(|d| d.content.as_str()).unwrap_or("");
                h.content = if h.chomp { chomp_tabs(body) } else { body.to_string() };
                copy.heredocs.push(h);
            }
            None => copy.sources.push(src.clone()),
        }
    }
    Ok(copy)
}

fn healthcheck(rest: &str, raw_flags: &[String]) -> Result<Healthcheck, String> {
    let (typ, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim_start()),
        None => (rest, ""),
    };
    if typ.is_empty() {
        return Err(
            "HEALTHCHECK requires at least one argument: HEALTHCHECK NONE or HEALTHCHECK [OPTIONS] CMD command".into(),
        );
    }
    let typ = typ.to_ascii_uppercase();
    if typ == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Healthcheck::None);
    }
    let f = Flags::parse(
        raw_flags,
        &[
            ("interval", FlagKind::String),
            ("timeout", FlagKind::String),
            ("start-period", FlagKind::String),
            ("start-interval", FlagKind::String),
            ("retries", FlagKind::String),
        ],
    )
    .map_err(|e| format!("HEALTHCHECK: {e}"))?;
    if typ != "CMD" {
        return Err(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)"));
    }
    let command = command_line(args)?;
    let empty = match &command {
        CommandLine::Exec(v) => v.is_empty(),
        CommandLine::Shell(s) => s.is_empty(),
    };
    if empty {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let interval = |name: &str| -> Result<i64, String> {
        let Some(v) = f.string(name).filter(|v| !v.is_empty()) else { return Ok(0) };
        let d = parse_duration(&v).map_err(|e| format!("HEALTHCHECK --{name}={v}: {e}"))?;
        if d != 0 && d < 1_000_000 {
            return Err(format!("Interval {name:?} cannot be less than 1ms"));
        }
        Ok(d)
    };
    let retries = match f.string("retries").filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => {
            let n: i32 = v.parse().map_err(|_| format!("HEALTHCHECK --retries={v}: not a number"))?;
            if n < 0 {
                return Err(format!("--retries cannot be negative ({n})"));
            }
            i64::from(n)
        }
    };
    Ok(Healthcheck::Cmd {
        command,
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        start_interval: interval("start-interval")?,
        retries,
    })
}

/// Go's `time.ParseDuration` (`1m30s`, `500ms`, `1.5h`), in nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration {s:?} (use a number with a unit: 30s, 1m30s, 500ms)");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    if total > i64::MAX as f64 {
        return Err(bad());
    }
    let n = total.round() as i64;
    Ok(if neg { -n } else { n })
}

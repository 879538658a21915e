//! Parser tables: what BuildKit's parser test files establish (continuations, escapes, directives, JSON forms,
//! heredocs, flags, HEALTHCHECK, negative cases), restated as our own short inputs and expected parses.

use super::*;

fn cmdline(c: &CommandLine) -> String {
    match c {
        CommandLine::Exec(v) => format!("{v:?}"),
        CommandLine::Shell(s) => s.clone(),
    }
}

fn kind(k: &InstructionKind) -> String {
    let kvs = |v: &[KeyValue]| {
        v.iter()
            .map(|kv| if kv.legacy { format!("{} {}", kv.key, kv.value) } else { format!("{}={}", kv.key, kv.value) })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let body = match k {
        InstructionKind::Arg(a) => a
            .iter()
            .map(|a| match &a.default {
                Some(d) => format!("{}={d}", a.name),
                None => a.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        InstructionKind::Env(v) | InstructionKind::Label(v) => kvs(v),
        InstructionKind::Copy(c) | InstructionKind::Add(c) => {
            let mut parts = Vec::new();
            for (name, v) in [("from", &c.from), ("chown", &c.chown), ("chmod", &c.chmod)] {
                if let Some(v) = v {
                    parts.push(format!("--{name}={v}"));
                }
            }
            if c.link {
                parts.push("--link".into());
            }
            parts.extend(c.exclude.iter().map(|e| format!("--exclude={e}")));
            parts.extend(c.sources.iter().cloned());
            parts.extend(c.heredocs.iter().map(|h| format!("<<{}", h.name)));
            parts.push(c.dest.clone());
            parts.join(" ")
        }
        InstructionKind::Run(r) => cmdline(&r.command),
        InstructionKind::Workdir(s)
        | InstructionKind::User(s)
        | InstructionKind::StopSignal(s)
        | InstructionKind::Maintainer(s) => s.clone(),
        InstructionKind::Expose(v) | InstructionKind::Volume(v) | InstructionKind::Shell(v) => format!("{v:?}"),
        InstructionKind::Healthcheck(Healthcheck::None) => "NONE".into(),
        InstructionKind::Healthcheck(Healthcheck::Cmd { command, interval, timeout, retries, .. }) => {
            format!("interval={interval} timeout={timeout} retries={retries} CMD {}", cmdline(command))
        }
        InstructionKind::Entrypoint(c) | InstructionKind::Cmd(c) => cmdline(c),
        InstructionKind::Onbuild(o) => format!("[{}] {}", o.trigger.name(), o.expression),
    };
    format!("{} {body}", k.name())
}

fn dump(df: &Dockerfile) -> Vec<String> {
    let mut out: Vec<String> = df.global_args.iter().map(|a| kind(&InstructionKind::Arg(a.args.clone()))).collect();
    for s in &df.stages {
        let mut from = format!("FROM {}", s.base);
        if let Some(n) = &s.name {
            from.push_str(&format!(" AS {n}"));
        }
        if let Some(p) = &s.platform {
            from.push_str(&format!(" --platform={p}"));
        }
        out.push(from);
        out.extend(s.instructions.iter().map(|i| kind(&i.kind)));
    }
    out
}

fn parses(src: &str) -> Vec<String> {
    match parse(src, "Dockerfile") {
        Ok(df) => dump(&df),
        Err(e) => panic!("{src:?} failed: {e}"),
    }
}

#[test]
fn table_of_files() {
    let cases: &[(&str, &[&str])] = &[
        // legacy and k=v ENV; quotes and escapes are kept for the expansion at build time
        (
            "FROM ubuntu\nENV name value\nENV name=value name2=value2\nENV name=\"value value1\"\nENV name=value\\ value2\nENV SCUBA 1 DUBA 3\n",
            &[
                "FROM ubuntu",
                "ENV name value",
                "ENV name=value name2=value2",
                r#"ENV name="value value1""#,
                r"ENV name=value\ value2",
                "ENV SCUBA 1 DUBA 3",
            ],
        ),
        // a continuation ending the file and one whose continued lines hold quotes
        (
            "FROM ubuntu\nENV name=value \\\n    name1=value1 \\\n    name2=\"value2a \\\n           value2b\" \\\n",
            &["FROM ubuntu", r#"ENV name=value name1=value1 name2="value2a            value2b""#],
        ),
        ("FROM alpine:3.5\n\nRUN something \\", &["FROM alpine:3.5", "RUN something"]),
        // continuation keeps indentation of continued lines; comments and blank lines inside are skipped
        (
            "FROM ubuntu\nRUN echo hello\\\n  world\\\n  goodnight  \\\n  moon\\\n  light\\\nning\nRUN echo hi \\\n \\\n world \\\n\\\n good\\\n\\\nnight\nRUN echo hello \\\n# this is a comment\n\n# another\n\nthis is some more useful stuff\n",
            &[
                "FROM ubuntu",
                "RUN echo hello  world  goodnight    moon  lightning",
                "RUN echo hi   world  goodnight",
                "RUN echo hello this is some more useful stuff",
            ],
        ),
        // trailing spaces after the escape still continue; an escaped escape does not
        (
            "FROM x\nRUN echo hello  \\  \nworld\nENV C trailing\\\\backslash\\\\\nENV D not appended\nENV G hello \\\n\\\nworld\n",
            &[
                "FROM x",
                "RUN echo hello  world",
                r"ENV C trailing\\backslash\\",
                "ENV D not appended",
                "ENV G hello world",
            ],
        ),
        // blank continuation lines are skipped; JSON escapes are decoded
        (
            "FROM ubuntu\nRUN foo \\\n\nbar \\\n\nbaz\nCMD [ \"\\/usr\\\\\\\"/bin/znc\", \"-f\", \"-r\" ]\n",
            &["FROM ubuntu", "RUN foo bar baz", r#"CMD ["/usr\\\"/bin/znc", "-f", "-r"]"#],
        ),
        // JSON forms of COPY/ADD, tabs as separators
        (
            "FROM\tubuntu:14.04\nCOPY\t.\t/go/src\nADD\t\t[ \"vimrc\", \"/tmp\" ]\nCOPY\t[ \"test file\", \"/tmp\" ]\n",
            &["FROM ubuntu:14.04", "COPY . /go/src", "ADD vimrc /tmp", "COPY test file /tmp"],
        ),
        // global ARGs, ARG without default, quoted default kept as written
        (
            "ARG foo bar=baz\nFROM ubuntu\nARG abc=\"123 456\" def\n",
            &["ARG foo bar=baz", "FROM ubuntu", r#"ARG abc="123 456" def"#],
        ),
        // the exec form: anything that is not a valid JSON array of strings is the shell form
        (
            "FROM x\nCMD []\nCMD [\"\"]\nCMD [\"a\",\"b\"]\nCMD\t[\t\"a\",\t\"b\"\t]\t\nCMD ['echo','single']\nCMD [\"echo\", \"unterminated\"\nCMD \"[\\\"echo\\\"]\"\n",
            &[
                "FROM x",
                "CMD []",
                r#"CMD [""]"#,
                r#"CMD ["a", "b"]"#,
                r#"CMD ["a", "b"]"#,
                "CMD ['echo','single']",
                r#"CMD ["echo", "unterminated""#,
                r#"CMD "[\"echo\"]""#,
            ],
        ),
        // VOLUME: space list and JSON; USER, WORKDIR take the whole rest; EXPOSE is sorted as BuildKit does
        (
            "FROM foo\nVOLUME /var/log /usr/share\nVOLUME [\"/test\", \"/test2\"]\nUSER docker:root\nWORKDIR /my dir\nEXPOSE 9000 5000 6000\n",
            &[
                "FROM foo",
                r#"VOLUME ["/var/log", "/usr/share"]"#,
                r#"VOLUME ["/test", "/test2"]"#,
                "USER docker:root",
                "WORKDIR /my dir",
                r#"EXPOSE ["5000", "6000", "9000"]"#,
            ],
        ),
        // stage names are lowercased; --platform kept as written
        (
            "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\nFROM scratch\n",
            &["FROM golang:1.22 AS build --platform=$BUILDPLATFORM", "FROM scratch"],
        ),
        // keywords are case-insensitive
        ("from alpine\ncopy a b\n", &["FROM alpine", "COPY a b"]),
        // ONBUILD keeps the trigger text for the config
        (
            "FROM busybox\nONBUILD RUN [\"echo\", \"test\"]\nONBUILD copy . /\n",
            &["FROM busybox", r#"ONBUILD [RUN] RUN ["echo", "test"]"#, "ONBUILD [COPY] copy . /"],
        ),
        // MAINTAINER and STOPSIGNAL take the rest verbatim
        (
            "FROM x\nMAINTAINER Jo <jo@example.com>\nSTOPSIGNAL SIGTERM\n",
            &["FROM x", "MAINTAINER Jo <jo@example.com>", "STOPSIGNAL SIGTERM"],
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(parses(src), expected.to_vec(), "input {src:?}");
    }
}

#[test]
fn flags_are_parsed_and_checked() {
    let got = parses(
        "FROM scratch\nCOPY --from=build --chown=1:2 --chmod=755 --link --exclude=*.md --exclude=x a /b/\nCOPY -- --weird /tmp/\n",
    );
    assert_eq!(got[1], "COPY --from=build --chown=1:2 --chmod=755 --link --exclude=*.md --exclude=x a /b/");
    assert_eq!(got[2], "COPY --weird /tmp/", "`--` ends the flags");
    let df = parse("FROM x\nADD --checksum=sha256:abc --keep-git-dir --unpack=false https://e.x/a /a\n", "D").unwrap();
    let InstructionKind::Add(add) = &df.stages[0].instructions[0].kind else { panic!("not ADD") };
    assert_eq!(add.checksum.as_deref(), Some("sha256:abc"));
    assert_eq!(add.keep_git_dir, Some(true));
    assert_eq!(add.unpack, Some(false));
    let df = parse("FROM x\nCOPY --parents a/./b /c/\nCOPY [\"a b\", \"/c\"]\n", "D").unwrap();
    let InstructionKind::Copy(c) = &df.stages[0].instructions[0].kind else { panic!("not COPY") };
    assert!(c.parents && !c.json);
    let InstructionKind::Copy(c) = &df.stages[0].instructions[1].kind else { panic!("not COPY") };
    assert!(c.json);
    assert_eq!(c.sources, vec!["a b"]);
    let df = parse("FROM x\nRUN --mount=type=cache,target=/r --network=none make\n", "D").unwrap();
    let InstructionKind::Run(r) = &df.stages[0].instructions[0].kind else { panic!("not RUN") };
    assert_eq!(r.flags, vec!["--mount=type=cache,target=/r", "--network=none"]);
    assert_eq!(r.command, CommandLine::Shell("make".into()));
}

#[test]
fn healthcheck_forms() {
    let got = parses(
        "FROM debian\nHEALTHCHECK NONE\nHEALTHCHECK --interval=5s --timeout=3s --retries=3 \\\n  CMD /app/check.sh --quiet\nHEALTHCHECK   CMD   a b\nHEALTHCHECK --timeout=1m30s CMD [\"foo\"]\nHEALTHCHECK --start-period=0s --interval=0s CMD [\"foo\"]\n",
    );
    assert_eq!(
        got[1..],
        [
            "HEALTHCHECK NONE",
            "HEALTHCHECK interval=5000000000 timeout=3000000000 retries=3 CMD /app/check.sh --quiet",
            "HEALTHCHECK interval=0 timeout=0 retries=0 CMD a b",
            r#"HEALTHCHECK interval=0 timeout=90000000000 retries=0 CMD ["foo"]"#,
            r#"HEALTHCHECK interval=0 timeout=0 retries=0 CMD ["foo"]"#,
        ]
    );
    let df = parse("FROM x\nHEALTHCHECK --start-interval=500ms --start-period=1.5s CMD true\n", "D").unwrap();
    let InstructionKind::Healthcheck(Healthcheck::Cmd { start_interval, start_period, .. }) =
        &df.stages[0].instructions[0].kind
    else {
        panic!("not a healthcheck")
    };
    assert_eq!((*start_interval, *start_period), (500_000_000, 1_500_000_000));
}

#[test]
fn directives_and_escape_token() {
    // backtick escape: a Windows-style path keeps its backslashes, the backtick continues the line
    let df = parse("# escape = `\n\nFROM image\nLABEL maintainer foo@bar.com\nENV GOPATH `\n\\go", "D").unwrap();
    assert_eq!(df.escape, '`');
    assert_eq!(df.directives, vec![Directive { name: "escape".into(), value: "`".into(), line: 1 }]);
    assert_eq!(dump(&df), ["FROM image", "LABEL maintainer foo@bar.com", r"ENV GOPATH \go"]);
    // directives may be stacked and need no blank line after them
    let df = parse("# syntax = docker/dockerfile:1\n# escape = `\nFROM `\n    image\n", "D").unwrap();
    assert_eq!(df.directives.len(), 2);
    assert_eq!(df.directives[0].value, "docker/dockerfile:1");
    assert_eq!(df.stages[0].base, "image");
    // after any other comment, a directive is only a comment
    let df = parse("# Comment here.\n# escape = `\n\nFROM image\nENV GOPATH \\\n\\go", "D").unwrap();
    assert_eq!(df.escape, '\\');
    assert!(df.directives.is_empty());
    assert_eq!(dump(&df)[1], r"ENV GOPATH \go");
    // unknown directive names end the directive block too
    assert!(parse("# foo=bar\n# escape=`\nFROM x\n", "D").unwrap().directives.is_empty());
    // a byte-order mark is ignored
    assert_eq!(parse("\u{feff}# escape=`\nFROM x\n", "D").unwrap().escape, '`');
}

#[test]
fn heredocs() {
    let src = "FROM alpine\nRUN <<EMPTY\nEMPTY\nRUN 3<<FD\nFD\nRUN \"<<NOHEREDOC\"\nRUN <<-UNINDENT2\n\tbaz\n\tquux\n\tUNINDENT2\nRUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\nCOPY <<FILE1 <<FILE2 /dest\ncontent 1\nFILE1\ncontent 2\nFILE2\nCOPY <<X <<Y /dest\nY\nX\nX\nY\nRUN <<eo'f'\necho foo\neof\nRUN <<eo\\'f\necho foo\neo'f\nRUN <<'one two'\necho bar\none two\nRUN <<COMMENT\n# internal comment\necho hi # trailing\nCOMMENT\nRUN [\"<<EOF\"]\nCOPY <<-EOF /tabs\n\tindented\n\t\tmore\nEOF\n";
    let df = parse(src, "D").unwrap();
    type Doc = (String, String, bool, bool, Option<u32>);
    let docs: Vec<Vec<Doc>> = df.stages[0]
        .instructions
        .iter()
        .map(|i| {
            let hs = match &i.kind {
                InstructionKind::Run(r) => r.heredocs.clone(),
                InstructionKind::Copy(c) => c.heredocs.clone(),
                _ => Vec::new(),
            };
            hs.into_iter().map(|h| (h.name, h.content, h.expand, h.chomp, h.fd)).collect()
        })
        .collect();
    let h = |n: &str, c: &str, expand: bool, chomp: bool, fd: Option<u32>| {
        (n.to_string(), c.to_string(), expand, chomp, fd)
    };
    assert_eq!(
        docs,
        vec![
            vec![h("EMPTY", "", true, false, None)],
            vec![h("FD", "", true, false, Some(3))],
            vec![],
            vec![h("UNINDENT2", "\tbaz\n\tquux\n", true, true, None)],
            vec![h("NOEXPAND", "\tdon't expand $NAME\n", false, true, None)],
            vec![h("FILE1", "content 1\n", true, false, None), h("FILE2", "content 2\n", true, false, None)],
            vec![h("X", "Y\n", true, false, None), h("Y", "X\n", true, false, None)],
            vec![h("eof", "echo foo\n", false, false, None)],
            vec![h("eo'f", "echo foo\n", true, false, None)],
            vec![h("one two", "echo bar\n", false, false, None)],
            vec![h("COMMENT", "# internal comment\necho hi # trailing\n", true, false, None)],
            vec![],
            // COPY sources get `<<-` tab stripping applied to their content
            vec![h("EOF", "indented\nmore\n", true, true, None)],
        ]
    );
    // lines: a heredoc's body counts towards its instruction
    let copy = &df.stages[0].instructions[5];
    assert_eq!((copy.line, copy.end_line), (14, 18));
    assert_eq!(df.stages[0].instructions[6].line, 19);
    // ONBUILD carries its heredoc bodies in the expression
    let df = parse("FROM x\nONBUILD RUN <<EOF\necho hi\nEOF\n", "D").unwrap();
    let InstructionKind::Onbuild(o) = &df.stages[0].instructions[0].kind else { panic!("not ONBUILD") };
    assert_eq!(o.expression, "RUN <<EOF\necho hi\nEOF");
}

#[test]
fn line_numbers_span_continuations() {
    let df = parse("# comment\n\nFROM x\n\nRUN a \\\n  b \\\n\n  c\nUSER me\n", "D").unwrap();
    let i = &df.stages[0].instructions;
    assert_eq!(df.stages[0].line, 3);
    assert_eq!((i[0].line, i[0].end_line), (5, 8));
    assert_eq!(i[1].line, 9);
}

#[test]
fn errors_name_file_line_and_instruction() {
    let cases: &[(&str, usize, &str)] = &[
        ("FROM x\n\n\nRUN a\n\n\nCOPY onlyone\n", 7, "Dockerfile:7: COPY requires at least two arguments"),
        ("", 1, "Dockerfile:1: file with no instructions"),
        ("# Hello\n# only comments\n", 2, "file with no instructions"),
        ("FROM busybox\n\nENV PATH\n", 3, "ENV must have two arguments"),
        ("FROM x\nCMD [ \"echo\", [ \"nested json\" ] ]\n", 2, "arrays must be comprised of strings only"),
        ("FROM x\nFOO bar\n", 2, "unknown instruction: FOO"),
        ("COPY a b\nFROM x\n", 1, "COPY must come after a FROM"),
        ("FROM x AS 1abc\n", 1, "invalid name for build stage"),
        ("FROM a b\n", 1, "FROM requires either one or three arguments"),
        ("# escape=`\n# escape=\\\nFROM x\n", 2, "only one escape parser directive"),
        ("# escape=x\nFROM x\n", 1, "invalid escape token"),
        ("FROM x\nRUN <<EOF\necho\n", 2, "unterminated heredoc"),
        ("FROM x\nCOPY --foo=bar a b\n", 2, "COPY: unknown flag: --foo"),
        ("FROM x\nADD --from=a a b\n", 2, "ADD: unknown flag: --from"),
        ("FROM x\nCOPY --link=maybe a b\n", 2, "expecting boolean value"),
        ("FROM x\nCOPY --chown a b\n", 2, "missing a value on flag: --chown"),
        ("FROM x\nCOPY --chown=1 --chown=2 a b\n", 2, "duplicate flag"),
        ("FROM x\nCOPY a <<EOF\nEOF\n", 2, "cannot accept a heredoc as a destination"),
        ("FROM x\nSHELL /bin/bash -c\n", 2, "JSON form"),
        ("FROM x\nHEALTHCHECK NONE extra\n", 2, "HEALTHCHECK NONE takes no arguments"),
        ("FROM x\nHEALTHCHECK CONNECT TCP 7000\n", 2, "Unknown type \"CONNECT\" in HEALTHCHECK"),
        ("FROM x\nHEALTHCHECK CMD\n", 2, "Missing command after HEALTHCHECK CMD"),
        ("FROM x\nHEALTHCHECK --interval=1us CMD a\n", 2, "cannot be less than 1ms"),
        ("FROM x\nHEALTHCHECK --retries=-1 CMD a\n", 2, "--retries cannot be negative"),
        ("FROM x\nONBUILD ONBUILD RUN a\n", 2, "Chaining ONBUILD"),
        ("FROM x\nONBUILD FROM y\n", 2, "FROM isn't allowed as an ONBUILD trigger"),
        ("FROM x\nENV a=b c\n", 2, "can't find = in \"c\""),
        ("FROM x\nARG =x\n", 2, "ARG names can not be blank"),
        ("FROM x\nUSER\n", 2, "USER requires exactly one argument"),
        ("FROM x\nVOLUME [\"\"]\n", 2, "VOLUME specified can not be an empty string"),
        ("ARG a=1\n", 1, "has no FROM instruction"),
    ];
    for (src, line, needle) in cases {
        let err = parse(src, "Dockerfile").expect_err(src);
        assert_eq!(err.line, *line, "{src:?}: {err}");
        assert!(err.to_string().contains(needle), "{src:?}: {err}");
    }
    let err = parse("FROM x\nCOPY a\n", "app/Dockerfile").unwrap_err();
    assert_eq!(err.instruction.as_deref(), Some("COPY"));
    assert!(err.to_string().starts_with("app/Dockerfile:2: COPY"), "{err}");
}

#[test]
fn parse_words_keeps_quotes_and_escapes() {
    use super::words::parse_words;
    let cases: &[(&str, &[&str])] = &[
        ("foo", &["foo"]),
        ("foo bar", &["foo", "bar"]),
        (r"foo\ bar", &[r"foo\ bar"]),
        ("foo bar 'abc xyz'", &["foo", "bar", "'abc xyz'"]),
        (r#"foo bar "abc xyz""#, &["foo", "bar", r#""abc xyz""#]),
        (r#"föo bàr "âbc xÿz""#, &["föo", "bàr", r#""âbc xÿz""#]),
        (r#"a="" b"#, &[r#"a="""#, "b"]),
    ];
    for (input, want) in cases {
        assert_eq!(parse_words(input, '\\'), want.to_vec(), "{input:?}");
    }
}

#[test]
fn onbuild_trigger_parses_alone() {
    let i = parse_instruction("COPY . /app", "base image ONBUILD", 3).unwrap();
    assert_eq!(i.line, 3);
    assert!(matches!(i.kind, InstructionKind::Copy(_)));
    assert!(parse_instruction("FROM x", "t", 1).is_err());
    assert!(parse_instruction("RUN a\nRUN b", "t", 1).is_err());
}

#[test]
fn go_durations() {
    assert_eq!(parse_duration("0").unwrap(), 0);
    assert_eq!(parse_duration("1h2m3s").unwrap(), 3_723_000_000_000);
    assert_eq!(parse_duration("250ms").unwrap(), 250_000_000);
    assert!(parse_duration("5").is_err());
    assert!(parse_duration("5x").is_err());
    assert!(parse_duration("").is_err());
}

//! Expansion tables: the behaviour BuildKit's shell lexer tests establish, restated as our own cases.

use std::collections::BTreeMap;

use super::shell::{Lexer, NoVars};

fn vars() -> BTreeMap<String, String> {
    [("PWD", "/home"), ("SHELL", "bash"), ("KOREAN", "한국어"), ("NULL", "")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `None` means the input is an error.
const WORD_CASES: &[(&str, Option<&str>)] = &[
    // quotes and escapes
    ("hello", Some("hello")),
    ("he'll'o", Some("hello")),
    ("he'llo", None),
    (r"he\'llo", Some("he'llo")),
    (r"he\\'llo", None),
    (r"abc\tdef", Some("abctdef")),
    (r#""abc\tdef""#, Some(r"abc\tdef")),
    (r#""abc\\tdef""#, Some(r"abc\tdef")),
    (r"'abc\tdef'", Some(r"abc\tdef")),
    (r"hello\", Some("hello")),
    (r"hello\\", Some(r"hello\")),
    (r#""hello"#, None),
    (r#""hello\""#, None),
    (r#""hel'lo""#, Some("hel'lo")),
    (r"'hello", None),
    (r"'hello\'", Some(r"hello\")),
    (r"'hello\\there'", Some(r"hello\\there")),
    (r#""''""#, Some("''")),
    (r#"'"hello"'"#, Some(r#""hello""#)),
    // plain variables
    ("$.", Some("$.")),
    ("he$1x", Some("hex")),
    ("he$.x", Some("he$.x")),
    ("he$pwd.", Some("he.")),
    ("he$PWD", Some("he/home")),
    (r"he\$PWD", Some("he$PWD")),
    (r"he\\$PWD", Some(r"he\/home")),
    (r#""he\$PWD""#, Some("he$PWD")),
    (r#""he\\$PWD""#, Some(r"he\/home")),
    (r"\${}", Some("${}")),
    (r"he\${}xx", Some("he${}xx")),
    ("${}", None),
    ("he${}xx", None),
    ("he${hi}xx", Some("hexx")),
    ("he${PWD}", Some("he/home")),
    ("he${.}", None),
    ("he${PWD", None),
    // defaults and alternatives
    ("he${XXX:-000}xx", Some("he000xx")),
    ("he${PWD:-000}xx", Some("he/homexx")),
    ("he${XXX:-$PWD}xx", Some("he/homexx")),
    ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
    ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
    ("he${XXX:YYY}", None),
    ("he${PWD:=000}xx", None),
    ("he${XXX:+${PWD}}xx", Some("hexx")),
    ("he${PWD:+${XXX}}xx", Some("hexx")),
    ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
    ("he${XXX:+000}xx", Some("hexx")),
    ("he${PWD:+000}xx", Some("he000xx")),
    ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
    (r"he${XXX:-\$PWD:}xx", Some("he$PWD:xx")),
    (r"he${XXX:-\${PWD}z}xx", Some("he${PWDz}xx")),
    // without the colon, only unset counts (NULL is set but empty)
    ("${NULL-x}", Some("")),
    ("${NULL:-x}", Some("x")),
    ("${NULL+x}", Some("x")),
    ("${NULL:+x}", Some("")),
    ("${XXX-x}", Some("x")),
    ("${XXX+x}", Some("")),
    // mandatory
    ("he${XXX?}", None),
    ("he${XXX:?}", None),
    ("he${PWD?}", Some("he/home")),
    ("he${PWD:?}", Some("he/home")),
    ("he${NULL?}", Some("he")),
    ("he${NULL:?}", None),
    // quoting inside and around
    ("'he${XX}'", Some("he${XX}")),
    (r#""he${PWD}""#, Some("he/home")),
    (r#""he'$PWD'""#, Some("he'/home'")),
    (r#""$PWD""#, Some("/home")),
    ("'$PWD'", Some("$PWD")),
    (r"'\$PWD'", Some(r"\$PWD")),
    // braces
    ("${{aaa}", None),
    ("${aaa}}", Some("}")),
    ("${aaa", None),
    ("${aaa:-bbb}}", Some("bbb}")),
    ("${aaa:-bbb", None),
    ("${aaa:-${bbb:-ccc}}", Some("ccc")),
    ("${aaa:-bbb ${foo}", None),
    ("${aaa:-bbb {foo}", Some("bbb {foo")),
    ("${:}", None),
    ("${:-bbb}", None),
    // positional and special parameters are never set
    ("$1", Some("")),
    ("${1:-bbb}", Some("bbb")),
    ("${1:+bbb}", Some("")),
    ("$999aaa", Some("aaa")),
    ("${001:-bbb}aaa", Some("bbbaaa")),
    ("$@@@", Some("@@")),
    ("${@:-bbb}aaa", Some("bbbaaa")),
    ("${#}", Some("")),
    ("${#:-bbb}", Some("bbb")),
    ("$$", Some("")),
    ("${?:+bbb}", Some("")),
    ("$0", Some("")),
    // non-ASCII
    ("안녕$KOREAN", Some("안녕한국어")),
    ("안'녕'하세요", Some("안녕하세요")),
    ("안'녕하세요", None),
    ("안녕${PWD:+${SHELL}}xx", Some("안녕bashxx")),
    // pattern removal and replacement
    ("${SHELL#b}", Some("ash")),
    ("${PWD#/}", Some("home")),
    ("${PWD%me}", Some("/ho")),
    ("${PWD/o/0}", Some("/h0me")),
];

#[test]
fn process_word_table() {
    let vars = vars();
    let lexer = Lexer::new('\\');
    for (input, expected) in WORD_CASES {
        let got = lexer.process_word(input, &vars);
        match expected {
            Some(want) => assert_eq!(got.as_deref(), Ok(*want), "input {input:?}"),
            None => assert!(got.is_err(), "input {input:?} should fail, got {got:?}"),
        }
    }
}

#[test]
fn pattern_removal_shortest_and_longest() {
    let vars: BTreeMap<String, String> = [("V".to_string(), "a.b.c".to_string())].into_iter().collect();
    let l = Lexer::new('\\');
    assert_eq!(l.process_word("${V#*.}", &vars).unwrap(), "b.c");
    assert_eq!(l.process_word("${V##*.}", &vars).unwrap(), "c");
    assert_eq!(l.process_word("${V%.*}", &vars).unwrap(), "a.b");
    assert_eq!(l.process_word("${V%%.*}", &vars).unwrap(), "a");
    assert_eq!(l.process_word("${V//./-}", &vars).unwrap(), "a-b-c");
    assert!(l.process_word("${V:#x}", &vars).is_err(), "`:#` is not a modifier");
}

#[test]
fn mandatory_message_is_expanded() {
    let l = Lexer::new('\\');
    let set: BTreeMap<String, String> = [("ARG", "x")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let err = l.process_word("${VAR:?message here$ARG}", &set).unwrap_err();
    assert!(err.message.contains("message herex"), "{err}");
    let mut empty = set.clone();
    empty.insert("VAR".into(), String::new());
    assert_eq!(l.process_word("${VAR?message}", &empty).unwrap(), "");
    assert!(l.process_word("${VAR:?message}", &empty).is_err());
}

#[test]
fn words_split_after_expansion_unless_quoted() {
    let mut vars = vars();
    vars.insert("space".into(), "abc  def".into());
    vars.insert("leading".into(), "  ab c".into());
    vars.insert("trailing".into(), "ab c   ".into());
    let l = Lexer::new('\\');
    let cases: &[(&str, Option<&[&str]>)] = &[
        ("hello", Some(&["hello"])),
        ("hello${hi}bye", Some(&["hellobye"])),
        ("hello${space}bye", Some(&["helloabc", "defbye"])),
        (r#"hello"${space}"bye"#, Some(&["helloabc  defbye"])),
        (r#"hello "${space}"bye"#, Some(&["hello", "abc  defbye"])),
        ("hello${leading}def", Some(&["hello", "ab", "cdef"])),
        (r#"hello"${leading}" def"#, Some(&["hello  ab c", "def"])),
        ("hello${trailing}d", Some(&["helloab", "c", "d"])),
        (r#"hel"lo${trailing}""#, Some(&["helloab c   "])),
        (r#"hello" there  ""#, Some(&["hello there  "])),
        ("hello there     ", Some(&["hello", "there"])),
        (r"hello\ there", Some(&["hello there"])),
        (r#"hello" there"#, None),
        (r#"hello\" there"#, Some(&["hello\"", "there"])),
        (r#"hello"\\there""#, Some(&[r"hello\there"])),
        (r#"hello"\there""#, Some(&[r"hello\there"])),
        (r"hello'\\there'", Some(&[r"hello\\there"])),
        ("hello'$there'", Some(&["hello$there"])),
        (r#"a "" b"#, Some(&["a", "b"])),
    ];
    for (input, expected) in cases {
        let got = l.process_words(input, &vars);
        match expected {
            Some(want) => assert_eq!(got.unwrap(), want.to_vec(), "input {input:?}"),
            None => assert!(got.is_err(), "input {input:?}"),
        }
    }
}

#[test]
fn backtick_escape_token() {
    let l = Lexer::new('`');
    assert_eq!(l.process_word(r"C:\path`$HOME", &NoVars).unwrap(), r"C:\path$HOME");
    assert_eq!(l.process_word("a` b", &NoVars).unwrap(), "a b");
}

#[test]
fn skip_unset_keeps_references() {
    let l = Lexer { skip_unset: true, ..Lexer::new('\\') };
    assert_eq!(l.process_word("$A ${B} ${C:-d}", &NoVars).unwrap(), "$A ${B} ${C:-d}");
}

/// Issue 13, finding 2: `ARG A=$A$A` forty times reached gigabytes and aborted. One expansion may add at most
/// `MAX_GROWTH` to its input; the error says why.
#[test]
fn a_self_doubling_variable_stops_at_the_growth_limit() {
    use super::shell::MAX_GROWTH;
    let l = Lexer::new('\\');
    let mut vars: BTreeMap<String, String> = [("A".to_string(), "x".repeat(1000))].into();
    let mut failed_at = None;
    for i in 0..40 {
        match l.process_word("$A$A", &vars) {
            Ok(v) => {
                assert!(v.len() <= MAX_GROWTH + 4, "round {i}: {} bytes", v.len());
                vars.insert("A".into(), v);
            }
            Err(e) => {
                assert!(e.to_string().contains("grows by more than 1 MiB"), "{e}");
                assert!(e.to_string().contains("ARG A=$A$A"), "{e}");
                failed_at = Some(i);
                break;
            }
        }
    }
    // 1000 bytes doubled: 512,000 after 9 rounds, 1,024,000 after 10 (under 1 MiB plus the 4-byte input), then over.
    assert_eq!(failed_at, Some(10));
    // Quoted, in a default, in a replacement: every way of growing is bounded.
    let big: BTreeMap<String, String> = [("B".to_string(), "y".repeat(MAX_GROWTH / 2 + 100))].into();
    for word in ["\"$B$B\"", "${X:-$B$B}", "${B//y/yy}", "$B${B}"] {
        match l.process_word(word, &big) {
            Ok(v) => panic!("{word} expanded to {} bytes", v.len()),
            Err(e) => assert!(e.to_string().contains("1 MiB"), "{word}: {e}"),
        }
    }
    // Plain characters after the last expansion count too (found by fuzzing, fuzz/corpus/dockerfile_parse/
    // growth-tail: `$A$\u{feff}RG` with A just under the limit grew 2 bytes past it).
    let edge: BTreeMap<String, String> =
        [("A".to_string(), "x".repeat(MAX_GROWTH + 4)), ("B".to_string(), "x".repeat(MAX_GROWTH + 2))].into();
    assert_eq!(l.process_word("$B", &edge).unwrap().len() - 2, MAX_GROWTH, "growing by the limit exactly is fine");
    for word in ["$B...", "${B}z", "\"$B\"q", "$B\u{feff}"] {
        let v = l.process_word(word, &edge).unwrap();
        assert!(v.len() - word.len() <= MAX_GROWTH, "{word:?}");
    }
    for word in ["$A...", "$A\u{feff}", "$A$\u{feff}RG"] {
        match l.process_word(word, &edge) {
            Ok(v) => panic!("{word:?} expanded to {} bytes, {} more than its input", v.len(), v.len() - word.len()),
            Err(e) => assert!(e.to_string().contains("1 MiB"), "{word}: {e}"),
        }
    }
    // A long value that does not grow is fine (a heredoc body, a big label copied once).
    let long = "z".repeat(3 * MAX_GROWTH);
    assert_eq!(l.process_word(&long, &NoVars).unwrap().len(), long.len());
}

/// The budget shared by one build's expansions bounds their sum, whatever the number of lines.
#[test]
fn a_shared_budget_bounds_the_total() {
    use super::shell::ExpansionBudget;
    let l = Lexer::new('\\');
    let vars: BTreeMap<String, String> = [("A".to_string(), "a".repeat(100_000))].into();
    let budget = ExpansionBudget::new(1_000_000);
    let mut ok = 0;
    let err = loop {
        match l.process_word_within("$A", &vars, &budget) {
            Ok(v) => {
                assert_eq!(v.len(), 100_000);
                ok += 1;
            }
            Err(e) => break e,
        }
        assert!(ok < 100, "the budget never ran out");
    };
    assert_eq!(ok, 10, "ten expansions of 100,000 bytes (less their 2-byte input) fit in 1,000,000");
    assert!(err.to_string().contains("limit"), "{err}");
    assert_eq!(l.process_words_within("$A", &vars, &ExpansionBudget::new(200_000)).unwrap().len(), 1);
}

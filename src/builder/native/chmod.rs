//! `--chmod` values: an octal mode, or a symbolic one as BuildKit (Dockerfile 1.14+) accepts it through its
//! port of BSD's setmode (`tonistiigi/dchapes-mode`): comma-separated clauses `[ugoa]*[+-=][rwxXst|ugo]*`,
//! several operators per clause (`u+x-w`), `X` (execute for directories, or when any execute bit was set
//! before the change; BSD honours it after `+` only, so `a=rX` is `a=r`), `s` and `t` ignored for `o` alone, `g=u` copying the user's bits. A clause without
//! `ugoa` applies to everyone, as with a zero umask (the build does not depend on the machine's umask).

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Chmod {
    Octal(u32),
    Symbolic(Vec<Cmd>),
}

/// One step of a symbolic mode, as setmode's `bitcmd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cmd {
    /// `+`, `-`, `X`, or `u`/`g`/`o` (copy that class's bits).
    op: u8,
    /// For copies: which classes receive, and whether to clear and/or set.
    copy: u8,
    bits: u32,
}

const SET_ID: u32 = 0o6000;
const STICKY: u32 = 0o1000;
const STANDARD: u32 = 0o6777;
const R: u32 = 0o444;
const W: u32 = 0o222;
const X: u32 = 0o111;
const USER: u32 = 0o4700;
const GROUP: u32 = 0o2070;
const OTHER: u32 = 0o007;

const CLEAR: u8 = 1;
const SET: u8 = 2;
const TO_G: u8 = 4;
const TO_O: u8 = 8;
const TO_U: u8 = 16;

impl Chmod {
    /// Parses `spec`; an error says what is accepted.
    pub(crate) fn parse(spec: &str) -> Result<Chmod, String> {
        let bad = || {
            "use an octal mode between 0 and 7777 (755, 0644) or a symbolic one such as u+x, go-w, a+rX or \
             u=rwx,go=rx"
                .to_string()
        };
        if spec.starts_with(|c: char| c.is_ascii_digit()) {
            return match u32::from_str_radix(spec, 8) {
                Ok(m) if m <= 0o7777 => Ok(Chmod::Octal(m)),
                _ => Err(bad()),
            };
        }
        let s = spec.as_bytes();
        let mut i = 0;
        let mut cmds = Vec::new();
        let mut equal_done = false;
        loop {
            let mut who = 0;
            while let Some(&c) = s.get(i) {
                who |= match c {
                    b'a' => STANDARD,
                    b'u' => USER,
                    b'g' => GROUP,
                    b'o' => OTHER,
                    _ => break,
                };
                i += 1;
            }
            loop {
                let op = *s.get(i).ok_or_else(bad)?;
                i += 1;
                match op {
                    b'+' | b'-' => {}
                    b'=' => equal_done = false,
                    _ => return Err(bad()),
                }
                let (mut perm, mut perm_x) = (0u32, 0u32);
                loop {
                    match s.get(i).copied() {
                        Some(b'r') => perm |= R,
                        Some(b'w') => perm |= W,
                        Some(b'x') => perm |= X,
                        Some(b'X') if op == b'+' => perm_x = X,
                        Some(b'X') => {}
                        Some(b's') if who == 0 || who & !OTHER != 0 => perm |= SET_ID,
                        Some(b's') => {}
                        Some(b't') if who == 0 || who & !OTHER != 0 => {
                            who |= STICKY;
                            perm |= STICKY;
                        }
                        Some(b't') => {}
                        Some(c @ (b'u' | b'g' | b'o')) => {
                            if perm != 0 {
                                add(&mut cmds, op, who, perm);
                                perm = 0;
                            }
                            if op == b'=' {
                                equal_done = true;
                            }
                            if perm_x != 0 {
                                add(&mut cmds, b'X', who, perm_x);
                                perm_x = 0;
                            }
                            add_copy(&mut cmds, c, who, op);
                        }
                        _ => {
                            if perm != 0 || (op == b'=' && !equal_done) {
                                if op == b'=' {
                                    equal_done = true;
                                }
                                add(&mut cmds, op, who, perm);
                            }
                            if perm_x != 0 {
                                add(&mut cmds, b'X', who, perm_x);
                            }
                            break;
                        }
                    }
                    i += 1;
                }
                who &= !STICKY;
                match s.get(i) {
                    None => return Ok(Chmod::Symbolic(cmds)),
                    Some(b',') => {
                        i += 1;
                        break;
                    }
                    Some(_) => {}
                }
            }
        }
    }

    /// The mode `mode` (permission bits, `0o7777`) becomes; `is_dir` for `X`.
    pub(crate) fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let cmds = match self {
            Chmod::Octal(m) => return *m,
            Chmod::Symbolic(c) => c,
        };
        let old = mode & 0o7777;
        let mut new = old;
        for c in cmds {
            match c.op {
                b'+' => new |= c.bits,
                b'-' => new &= !c.bits,
                b'X' if old & X != 0 || is_dir => new |= c.bits,
                b'X' => {}
                class => {
                    let value = match class {
                        b'u' => (new & 0o700) >> 6,
                        b'g' => (new & 0o070) >> 3,
                        _ => new & 0o007,
                    };
                    let targets = [(TO_U, 6), (TO_G, 3), (TO_O, 0)];
                    if c.copy & CLEAR != 0 {
                        let clear = if c.copy & SET != 0 { 0o7 } else { value };
                        for (flag, shift) in targets {
                            if c.copy & flag != 0 {
                                new &= !((clear << shift) & c.bits);
                            }
                        }
                    }
                    if c.copy & SET != 0 {
                        for (flag, shift) in targets {
                            if c.copy & flag != 0 {
                                new |= (value << shift) & c.bits;
                            }
                        }
                    }
                }
            }
        }
        new & 0o7777
    }
}

/// setmode's `addcmd` for `+`, `-`, `=` and `X`: `=` clears the classes first.
fn add(cmds: &mut Vec<Cmd>, op: u8, who: u32, perm: u32) {
    let op = if op == b'=' {
        cmds.push(Cmd { op: b'-', copy: 0, bits: if who != 0 { who } else { STANDARD } });
        b'+'
    } else {
        op
    };
    let bits = if who != 0 { who & perm } else { perm };
    cmds.push(Cmd { op, copy: 0, bits });
}

/// setmode's `addcmd` for `u`, `g`, `o` as permissions: copy that class's bits to `who`.
fn add_copy(cmds: &mut Vec<Cmd>, class: u8, who: u32, op: u8) {
    let (mut copy, bits) = if who != 0 {
        let mut c = 0;
        if who & 0o400 != 0 {
            c |= TO_U;
        }
        if who & 0o040 != 0 {
            c |= TO_G;
        }
        if who & 0o004 != 0 {
            c |= TO_O;
        }
        (c, u32::MAX)
    } else {
        (TO_U | TO_G | TO_O, u32::MAX)
    };
    copy |= match op {
        b'+' => SET,
        b'-' => CLEAR,
        _ => SET | CLEAR,
    };
    cmds.push(Cmd { op: class, copy, bits });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(spec: &str, mode: u32, dir: bool) -> u32 {
        Chmod::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}")).apply(mode, dir)
    }

    #[test]
    fn symbolic_modes_as_bsd_setmode() {
        assert_eq!(sym("u+x", 0o644, false), 0o744);
        assert_eq!(sym("go-w", 0o666, false), 0o644);
        assert_eq!(sym("a+rX", 0o600, false), 0o644, "X: no execute bit on a plain file");
        assert_eq!(sym("a+rX", 0o710, false), 0o755, "X: a file already executable by someone");
        assert_eq!(sym("a+rX", 0o700, true), 0o755, "X: a directory");
        assert_eq!(sym("go-rwx,a+X", 0o700, false), 0o711, "X looks at the mode before the change");
        assert_eq!(sym("a=rX", 0o700, true), 0o444, "X is ignored with = (BSD setmode, as BuildKit applies it)");
        assert_eq!(sym("u=rwx,go=rx", 0o600, false), 0o755);
        assert_eq!(sym("u=rwx,go=u-w", 0o600, false), 0o755);
        assert_eq!(sym("go=", 0o777, false), 0o700);
        assert_eq!(sym("+x", 0o644, false), 0o755, "no class: everyone (umask 0)");
        assert_eq!(sym("=rw,+X", 0o744, false), 0o777, "X after = in another clause uses the old mode");
        assert_eq!(sym("u+x-w", 0o644, false), 0o544, "two operators in one clause");
        assert_eq!(sym("g=u", 0o640, false), 0o660);
        assert_eq!(sym("o+s", 0o755, false), 0o755, "set-id is ignored for others alone");
        assert_eq!(sym("u+s,+t", 0o755, false), 0o5755);
        assert_eq!(sym("a-X", 0o755, false), 0o755, "X is only for +");
        assert_eq!(Chmod::parse("0640").unwrap(), Chmod::Octal(0o640));
        for bad in ["", "u", "u+q", "z+x", "8", "17777", "u+x,"] {
            assert!(Chmod::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}

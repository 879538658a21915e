//! moment.js format strings (`YYYYMMDD-HHmmss`, `[Z]` literals, `Do`, ISO weeks...), as metadata-action's
//! `{{date}}` and `{{commit_date}}` use them through moment-timezone, with the English locale.

use chrono::{DateTime, Datelike, Offset, TimeZone, Timelike, Utc};
use chrono_tz::{OffsetName, Tz};

/// The zone named by `tz='...'`: IANA names, matched without regard to case as moment-timezone does.
pub fn zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>()
        .ok()
        .or_else(|| chrono_tz::TZ_VARIANTS.iter().find(|z| z.name().eq_ignore_ascii_case(name)).copied())
}

/// Formats `instant` in `tz` with a moment.js format; `None` gives moment's default format (`...ss[Z]` at offset 0,
/// `...ssZ` elsewhere).
pub fn format(instant: DateTime<Utc>, tz: Tz, fmt: Option<&str>) -> String {
    let t = instant.with_timezone(&tz);
    let offset = t.offset().fix().local_minus_utc();
    let fmt = match fmt {
        Some(f) => f,
        None if offset == 0 => "YYYY-MM-DDTHH:mm:ss[Z]",
        None => "YYYY-MM-DDTHH:mm:ssZ",
    };
    let expanded = expand_long_formats(fmt);
    let mut out = String::new();
    let chars: Vec<char> = expanded.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // `[...]`: literal text up to the last `]` before the next `[`.
        if chars[i] == '[' {
            let run: Vec<char> = chars[i + 1..].iter().take_while(|c| **c != '[').copied().collect();
            if let Some(end) = run.iter().rposition(|c| *c == ']') {
                out.extend(&run[..end]);
                i += end + 2;
                continue;
            }
        }
        let escaped = chars[i] == '\\' && i + 1 < chars.len();
        let start = if escaped { i + 1 } else { i };
        let len = token_len(&chars[start..]);
        let token: String = chars[start..start + len].iter().collect();
        i = start + len;
        match (escaped, render(&token, &t, instant)) {
            (false, Some(v)) => out.push_str(&v),
            _ => out.push_str(&token),
        }
    }
    out
}

/// The locale's long formats (`L`, `LT`, `LLLL`...), expanded before tokenising as moment does.
fn expand_long_formats(fmt: &str) -> String {
    const LONG: [(&str, &str); 10] = [
        ("LTS", "h:mm:ss A"),
        ("LT", "h:mm A"),
        ("LLLL", "dddd, MMMM D, YYYY h:mm A"),
        ("LLL", "MMMM D, YYYY h:mm A"),
        ("LL", "MMMM D, YYYY"),
        ("L", "MM/DD/YYYY"),
        ("llll", "ddd, MMM D, YYYY h:mm A"),
        ("lll", "MMM D, YYYY h:mm A"),
        ("ll", "MMM D, YYYY"),
        ("l", "M/D/YYYY"),
    ];
    let mut out = String::new();
    let mut rest = fmt;
    while let Some(c) = rest.chars().next() {
        if c == '[' {
            let run = rest[1..].split('[').next().unwrap_or("");
            if let Some(end) = run.rfind(']') {
                out.push_str(&rest[..end + 2]);
                rest = &rest[end + 2..];
                continue;
            }
        }
        if c == '\\' && rest.len() > 1 {
            // An escaped long format stays as written (the formatter then prints it literally).
            let n = 1 + LONG
                .iter()
                .find(|(k, _)| rest[1..].starts_with(k))
                .map_or_else(|| rest[1..].chars().next().map_or(0, char::len_utf8), |(k, _)| k.len());
            out.push_str(&rest[..n]);
            rest = &rest[n..];
            continue;
        }
        if let Some((k, v)) = LONG.iter().find(|(k, _)| rest.starts_with(k)) {
            out.push_str(v);
            rest = &rest[k.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The length of the token at the start of `s`, by moment's alternation (first alternative that matches wins).
fn token_len(s: &[char]) -> usize {
    let run = |c: char, max: usize| s.iter().take(max).take_while(|x| **x == c).count();
    let at = |i: usize, c: char| s.get(i) == Some(&c);
    let first = s[0];
    match first {
        'H' | 'h' if at(1, 'm') && at(2, 'm') => {
            if at(3, 's') && at(4, 's') {
                5
            } else {
                3
            }
        }
        'M' if at(1, 'o') => 2,
        'M' => run('M', 4),
        'D' if at(1, 'o') => 2,
        'D' if at(1, 'D') && at(2, 'D') && at(3, 'o') => 4,
        'D' => run('D', 4),
        'd' if at(1, 'o') => 2,
        'd' => run('d', 4),
        'w' | 'W' if at(1, 'o') || at(1, '|') || at(1, first) => 2,
        'Q' if at(1, 'o') => 2,
        'N' => run('N', 5),
        'Y' => match run('Y', 6) {
            6 => 6,
            5 => 5,
            4 => 4,
            2 | 3 => 2,
            _ => 1,
        },
        'y' if run('y', 4) >= 2 => run('y', 4),
        'y' if at(1, 'o') => 2,
        'g' | 'G' if run(first, 5) >= 2 => match run(first, 5) {
            5 => 5,
            4 => 4,
            _ => 2,
        },
        'h' | 'H' | 'k' | 'm' | 's' => run(first, 2),
        'S' => run('S', 9),
        'z' | 'Z' => run(first, 2),
        _ => 1,
    }
}

fn zero(n: i64, width: usize) -> String {
    let digits = n.unsigned_abs().to_string();
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}{digits}", "0".repeat(width.saturating_sub(digits.len())))
}

fn ordinal(n: i64) -> String {
    let suffix = match (n % 100 / 10, n % 10) {
        (1, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

fn render(token: &str, t: &DateTime<Tz>, instant: DateTime<Utc>) -> Option<String> {
    let year = i64::from(t.year());
    let month0 = t.month0() as usize;
    let dow = t.weekday().num_days_from_sunday() as usize;
    let hour = i64::from(t.hour());
    let h12 = if hour % 12 == 0 { 12 } else { hour % 12 };
    let millis = i64::from(t.nanosecond() / 1_000_000 % 1000);
    let offset = t.offset().fix().local_minus_utc();
    let (week, week_year) = locale_week(t);
    let iso = t.iso_week();
    let s = match token {
        "M" => (month0 + 1).to_string(),
        "Mo" => ordinal(month0 as i64 + 1),
        "MM" => zero(month0 as i64 + 1, 2),
        "MMM" => MONTHS[month0][..3].to_string(),
        "MMMM" => MONTHS[month0].to_string(),
        "Q" => (month0 / 3 + 1).to_string(),
        "Qo" => ordinal(month0 as i64 / 3 + 1),
        "D" => t.day().to_string(),
        "Do" => ordinal(i64::from(t.day())),
        "DD" => zero(i64::from(t.day()), 2),
        "DDD" => t.ordinal().to_string(),
        "DDDo" => ordinal(i64::from(t.ordinal())),
        "DDDD" => zero(i64::from(t.ordinal()), 3),
        "d" | "e" => dow.to_string(),
        "do" => ordinal(dow as i64),
        "dd" => DAYS[dow][..2].to_string(),
        "ddd" => DAYS[dow][..3].to_string(),
        "dddd" => DAYS[dow].to_string(),
        "E" => t.weekday().number_from_monday().to_string(),
        "w" => week.to_string(),
        "wo" => ordinal(week),
        "ww" => zero(week, 2),
        "W" => iso.week().to_string(),
        "Wo" => ordinal(i64::from(iso.week())),
        "WW" => zero(i64::from(iso.week()), 2),
        "Y" if year <= 9999 => zero(year, 4),
        "Y" => format!("+{year}"),
        "YY" => zero(year.rem_euclid(100), 2),
        "YYYY" => zero(year, 4),
        "YYYYY" => zero(year, 5),
        "YYYYYY" => format!("{}{}", if year >= 0 { "+" } else { "-" }, zero(year.abs(), 6)),
        "y" => era_year(year).to_string(),
        "yo" => ordinal(era_year(year)),
        "yy" => zero(era_year(year), 2),
        "yyy" => zero(era_year(year), 3),
        "yyyy" => zero(era_year(year), 4),
        "N" | "NN" | "NNN" | "NNNNN" => (if year > 0 { "AD" } else { "BC" }).to_string(),
        "NNNN" => (if year > 0 { "Anno Domini" } else { "Before Christ" }).to_string(),
        "gg" => zero(week_year.rem_euclid(100), 2),
        "gggg" => zero(week_year, 4),
        "ggggg" => zero(week_year, 5),
        "GG" => zero(i64::from(iso.year()).rem_euclid(100), 2),
        "GGGG" => zero(i64::from(iso.year()), 4),
        "GGGGG" => zero(i64::from(iso.year()), 5),
        "H" => hour.to_string(),
        "HH" => zero(hour, 2),
        "h" => h12.to_string(),
        "hh" => zero(h12, 2),
        "k" => (if hour == 0 { 24 } else { hour }).to_string(),
        "kk" => zero(if hour == 0 { 24 } else { hour }, 2),
        "hmm" => format!("{h12}{}", zero(i64::from(t.minute()), 2)),
        "hmmss" => format!("{h12}{}{}", zero(i64::from(t.minute()), 2), zero(i64::from(t.second()), 2)),
        "Hmm" => format!("{hour}{}", zero(i64::from(t.minute()), 2)),
        "Hmmss" => format!("{hour}{}{}", zero(i64::from(t.minute()), 2), zero(i64::from(t.second()), 2)),
        "a" => (if hour < 12 { "am" } else { "pm" }).to_string(),
        "A" => (if hour < 12 { "AM" } else { "PM" }).to_string(),
        "m" => t.minute().to_string(),
        "mm" => zero(i64::from(t.minute()), 2),
        "s" => t.second().to_string(),
        "ss" => zero(i64::from(t.second()), 2),
        "S" => (millis / 100).to_string(),
        "SS" => zero(millis / 10, 2),
        _ if token.starts_with("SSS") && token.chars().all(|c| c == 'S') => {
            format!("{}{}", zero(millis, 3), "0".repeat(token.len() - 3))
        }
        "Z" | "ZZ" => {
            let sign = if offset < 0 { '-' } else { '+' };
            let (h, m) = (offset.abs() / 3600, offset.abs() % 3600 / 60);
            let sep = if token == "Z" { ":" } else { "" };
            format!("{sign}{h:02}{sep}{m:02}")
        }
        "z" | "zz" => t.offset().abbreviation().unwrap_or("").to_string(),
        "X" => instant.timestamp().to_string(),
        "x" => instant.timestamp_millis().to_string(),
        _ => return None,
    };
    Some(s)
}

fn era_year(year: i64) -> i64 {
    if year > 0 { year } else { 1 - year }
}

/// moment's locale week (English: weeks start on Sunday, the week with January 1st is week 1).
fn locale_week(t: &DateTime<Tz>) -> (i64, i64) {
    const DOW: i64 = 0;
    const DOY: i64 = 6;
    fn first_week_offset(year: i64) -> i64 {
        let fwd = 7 + DOW - DOY;
        let weekday = Utc
            .with_ymd_and_hms(year as i32, 1, fwd as u32, 0, 0, 0)
            .single()
            .map_or(0, |d| i64::from(d.weekday().num_days_from_sunday()));
        let fwdlw = (7 + weekday - DOW) % 7;
        -fwdlw + fwd - 1
    }
    fn days_in_year(year: i64) -> i64 {
        if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 { 366 } else { 365 }
    }
    fn weeks_in_year(year: i64) -> i64 {
        (days_in_year(year) - first_week_offset(year) + first_week_offset(year + 1)) / 7
    }
    let year = i64::from(t.year());
    let week = (i64::from(t.ordinal()) - first_week_offset(year) - 1).div_euclid(7) + 1;
    if week < 1 {
        (week + weeks_in_year(year - 1), year - 1)
    } else if week > weeks_in_year(year) {
        (week - weeks_in_year(year), year + 1)
    } else {
        (week, year)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap_or_default()
    }

    fn f(instant: &str, tz: &str, fmt: Option<&str>) -> String {
        format(at(instant), zone(tz).unwrap_or(Tz::UTC), fmt)
    }

    const CLOCK: &str = "2020-01-10T00:30:00.000Z";

    #[test]
    fn metadata_action_formats() {
        assert_eq!(f(CLOCK, "UTC", Some("YYYYMMDD")), "20200110");
        assert_eq!(f(CLOCK, "UTC", Some("YYYYMMDD-HHmmss")), "20200110-003000");
        assert_eq!(f(CLOCK, "Asia/Tokyo", Some("YYYYMMDD-HHmmss")), "20200110-093000");
        assert_eq!(f(CLOCK, "UTC", Some("YYYY-MM-DD")), "2020-01-10");
        assert_eq!(f(CLOCK, "UTC", Some("YYYY-MM-DDTHH:mm:ss.SSS[Z]")), "2020-01-10T00:30:00.000Z");
    }

    #[test]
    fn default_format_depends_on_the_offset() {
        assert_eq!(f(CLOCK, "UTC", None), "2020-01-10T00:30:00Z");
        assert_eq!(f(CLOCK, "Asia/Tokyo", None), "2020-01-10T09:30:00+09:00");
        assert_eq!(f(CLOCK, "Europe/London", None), "2020-01-10T00:30:00Z");
        assert_eq!(f(CLOCK, "America/St_Johns", None), "2020-01-09T21:00:00-03:30");
    }

    #[test]
    fn literals_and_escapes() {
        assert_eq!(f(CLOCK, "UTC", Some("[week] W [of] YYYY")), "week 2 of 2020");
        assert_eq!(f(CLOCK, "UTC", Some("\\YYYY-YYYY")), "YYYY-2020");
        assert_eq!(f(CLOCK, "UTC", Some("[a]b[c]")), "abc");
        assert_eq!(f(CLOCK, "UTC", Some("[a]]YYYY")), "a]2020");
        assert_eq!(f(CLOCK, "UTC", Some("[#")), "[#");
        assert_eq!(f(CLOCK, "UTC", Some("[l")), "[1/10/2020");
        assert_eq!(f(CLOCK, "UTC", Some("T#_/:")), "T#_/:");
    }

    #[test]
    fn every_token_family() {
        let t = "2021-03-07T15:04:05.678Z"; // a Sunday
        assert_eq!(f(t, "UTC", Some("M Mo MM MMM MMMM Q Qo")), "3 3rd 03 Mar March 1 1st");
        assert_eq!(f(t, "UTC", Some("D Do DD DDD DDDo DDDD")), "7 7th 07 66 66th 066");
        assert_eq!(f(t, "UTC", Some("d do dd ddd dddd e E")), "0 0th Su Sun Sunday 0 7");
        assert_eq!(f(t, "UTC", Some("w wo ww W Wo WW gggg GGGG GG")), "11 11th 11 9 9th 09 2021 2021 21");
        assert_eq!(
            f(t, "UTC", Some("Y YY YYYY YYYYY YYYYYY y N NNNN")),
            "2021 21 2021 02021 +002021 2021 AD Anno Domini"
        );
        assert_eq!(f(t, "UTC", Some("H HH h hh k kk a A")), "15 15 3 03 15 15 pm PM");
        assert_eq!(f(t, "UTC", Some("m mm s ss S SS SSS SSSS")), "4 04 5 05 6 67 678 6780");
        assert_eq!(f(t, "UTC", Some("Hmm Hmmss hmm")), "1504 150405 304");
        assert_eq!(f(t, "Asia/Kolkata", Some("Z ZZ z")), "+05:30 +0530 IST");
        assert_eq!(f(t, "UTC", Some("X x")), "1615129445 1615129445678");
        assert_eq!(f(t, "UTC", Some("L LT")), "03/07/2021 3:04 PM");
        assert_eq!(f("2020-01-10T00:00:00Z", "UTC", Some("k Do")), "24 10th");
        assert_eq!(f("2020-01-11T00:00:00Z", "UTC", Some("Do")), "11th");
        assert_eq!(f("2020-01-22T00:00:00Z", "UTC", Some("Do")), "22nd");
    }

    #[test]
    fn weeks_at_year_boundaries() {
        // 2021-01-01 is a Friday: ISO week 53 of 2020, English locale week 1 of 2021.
        assert_eq!(f("2021-01-01T12:00:00Z", "UTC", Some("W GGGG w gggg")), "53 2020 1 2021");
        // 2019-12-29 is a Sunday: English locale week 1 of 2020.
        assert_eq!(f("2019-12-29T12:00:00Z", "UTC", Some("w gggg")), "1 2020");
    }

    #[test]
    fn zones_by_name() {
        assert_eq!(zone("asia/tokyo"), Some(Tz::Asia__Tokyo));
        assert_eq!(zone("UTC"), Some(Tz::UTC));
        assert_eq!(zone("Mars/Olympus"), None);
    }
}

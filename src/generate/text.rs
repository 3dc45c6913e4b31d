//! How values are written the way real sources write them: quoted CSV fields, JSON strings,
//! and the many spellings of phones, amounts and dates that the contracts must clean.

use chrono::{Datelike, NaiveDate};

use super::rng::Rng;

/// Appends a CSV field, quoted when it holds a delimiter, a quote or a line break.
pub fn csv_field(buf: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        buf.push('"');
        buf.push_str(&s.replace('"', "\"\""));
        buf.push('"');
    } else {
        buf.push_str(s);
    }
}

/// A CSV line from fields, with a trailing newline.
pub fn csv_line(fields: &[&str]) -> String {
    let mut s = String::with_capacity(fields.iter().map(|f| f.len() + 1).sum::<usize>() + 2);
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        csv_field(&mut s, f);
    }
    s.push('\n');
    s
}

/// Appends a JSON string literal.
pub fn json_str(buf: &mut String, s: &str) {
    buf.push('"');
    for c in s.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c if (c as u32) < 0x20 => buf.push_str(&format!("\\u{:04x}", c as u32)),
            c => buf.push(c),
        }
    }
    buf.push('"');
}

/// `"key":"value"` (or `"key":null`) with a leading comma unless first.
pub fn json_kv_str(buf: &mut String, key: &str, value: Option<&str>, first: bool) {
    if !first {
        buf.push(',');
    }
    json_str(buf, key);
    buf.push(':');
    match value {
        Some(v) => json_str(buf, v),
        None => buf.push_str("null"),
    }
}

/// `"key":<raw JSON>` with a leading comma unless first.
pub fn json_kv_raw(buf: &mut String, key: &str, raw: &str, first: bool) {
    if !first {
        buf.push(',');
    }
    json_str(buf, key);
    buf.push(':');
    buf.push_str(raw);
}

/// ASCII digits and the signs phones use, as full-width forms (as typed with a Chinese IME).
pub fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 + 0xfee0).unwrap_or(c),
            ' ' => '\u{3000}',
            c => c,
        })
        .collect()
}

/// A mobile number in one of the forms people and systems write it.
pub fn phone_form(rng: &mut Rng, number: u64) -> String {
    let s = number.to_string();
    let (a, b, c) = (&s[..3], &s[3..7], &s[7..]);
    match rng.below(100) {
        0..=44 => s,
        45..=59 => format!("+86 {a} {b} {c}"),
        60..=67 => format!("+86 {s}"),
        68..=81 => format!("{a}-{b}-{c}"),
        82..=89 => fullwidth(&s),
        90..=94 => format!("0086{s}"),
        _ => format!("{a} {b} {c}"),
    }
}

pub fn with_commas(int: u64) -> String {
    let s = int.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Shortest decimal form of `x` with at most `max_decimals` decimals.
pub fn trim_decimal(x: f64, max_decimals: usize) -> String {
    let s = format!("{x:.max_decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A whole-yuan amount (a multiple of 100) in one of the forms of the sources:
/// `1298600`, `1,298,600`, `129.86万`, `1298600 CNY`, `¥1,298,600.00`.
pub fn money_form(rng: &mut Rng, x: f64) -> String {
    let int = x.round() as u64;
    match rng.below(100) {
        0..=29 => int.to_string(),
        30..=54 => with_commas(int),
        55..=74 => format!("{}万", trim_decimal(x / 10_000.0, 4)),
        75..=86 => format!("{int} CNY"),
        _ => format!("¥{}.00", with_commas(int)),
    }
}

/// A date in one of the three forms of the sources: `2024-03-01`, `2024/3/1`, `20240301`.
pub fn date_form(rng: &mut Rng, d: NaiveDate) -> String {
    match rng.below(100) {
        0..=59 => d.format("%Y-%m-%d").to_string(),
        60..=84 => format!("{}/{}/{}", d.year(), d.month(), d.day()),
        _ => d.format("%Y%m%d").to_string(),
    }
}

/// Replaces the check character of an identifier with a wrong one.
pub fn break_check(s: &str) -> String {
    let mut b: Vec<u8> = s.as_bytes().to_vec();
    if let Some(last) = b.last_mut() {
        *last = match *last {
            b'0'..=b'8' => *last + 1,
            b'9' => b'0',
            b'X' => b'1',
            _ => b'0',
        };
    }
    String::from_utf8(b).expect("ASCII")
}

/// Pads or cuts `s` to exactly `width` characters (fixed-width layouts count characters).
pub fn pad_chars(buf: &mut String, s: &str, width: usize, right_align: bool) {
    let n = s.chars().count();
    if n >= width {
        buf.extend(s.chars().take(width));
    } else if right_align {
        buf.extend(std::iter::repeat_n(' ', width - n));
        buf.push_str(s);
    } else {
        buf.push_str(s);
        buf.extend(std::iter::repeat_n(' ', width - n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(
            csv_line(&["a", "1,298,633", "say \"hi\""]),
            "a,\"1,298,633\",\"say \"\"hi\"\"\"\n"
        );
    }

    #[test]
    fn forms_parse_back() {
        let mut rng = Rng::new(3);
        for _ in 0..200 {
            let m = money_form(&mut rng, 1_298_600.0);
            let digits: String = m
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let v: f64 = digits.parse().unwrap();
            let v = if m.contains('万') { v * 10_000.0 } else { v };
            assert!((v - 1_298_600.0).abs() < 0.01, "{m}");
            let p = phone_form(&mut rng, 13_812_345_678);
            let d: String = p
                .chars()
                .map(|c| {
                    if ('\u{ff10}'..='\u{ff19}').contains(&c) {
                        char::from_u32(c as u32 - 0xfee0).unwrap()
                    } else {
                        c
                    }
                })
                .filter(char::is_ascii_digit)
                .collect();
            assert!(d.ends_with("13812345678"), "{p}");
        }
        assert_eq!(trim_decimal(129.86, 4), "129.86");
        assert_eq!(trim_decimal(130.0, 4), "130");
        assert_eq!(with_commas(1_298_633), "1,298,633");
        assert_eq!(with_commas(633), "633");
    }

    #[test]
    fn padding_counts_characters() {
        let mut s = String::new();
        pad_chars(&mut s, "正常", 4, false);
        pad_chars(&mut s, "12.50", 8, true);
        assert_eq!(s, "正常     12.50");
        assert_eq!(s.chars().count(), 12);
    }

    #[test]
    fn broken_checks_differ() {
        assert_ne!(break_check("11010519491231002X"), "11010519491231002X");
        assert!(!crate::ids::is_valid_id_card(&break_check(
            "11010519491231002X"
        )));
    }
}

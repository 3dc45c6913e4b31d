//! Cleaning rules and type parsing: from a raw source string to a typed, validated value, or
//! a reason for rejecting the row. Hot path: ASCII fast paths, allocation only when a rule
//! changes the text.

use std::borrow::Cow;

use chrono::{Datelike, NaiveDate, NaiveDateTime};

use super::contract::{CleanRule, Column, ColumnType, IdCheck, Pii};
use super::pii::Tokenizer;
use crate::ids;

/// A clean, typed value as stored in the clean layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    /// Borrowed from the source text or the contract when no rule changed it.
    Str(Cow<'a, str>),
    /// A PII token (32 ASCII hex characters), built without an allocation.
    Token(super::pii::TokenText),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// Milliseconds since 1970-01-01T00:00:00 (naive, as the source states it).
    Datetime(i64),
}

impl Value<'_> {
    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            // Hex digits by construction (`Tokenizer::token_bytes`): an ASCII check of four
            // words instead of a UTF-8 validation per token (27M tokens per GB of source).
            // SAFETY: ASCII bytes are valid UTF-8.
            Value::Token(t) if t.0.is_ascii() => {
                Some(unsafe { std::str::from_utf8_unchecked(&t.0) })
            }
            _ => None,
        }
    }

    /// A key that orders the values of one column as the values order (dedupe keep-latest),
    /// exactly: as an f64, integers above 2^53 (snowflake ids, nanosecond stamps) tied and the
    /// older version could win. `None` for null and for text, which has no order a contract
    /// may rely on (it refuses a string `keep_latest_by` column).
    pub fn order_key(&self) -> Option<u64> {
        const SIGN: u64 = 1 << 63;
        // 0 is a null's key (the lowest): a value never maps to it (i64::MIN ties with
        // i64::MIN + 1 instead of with null).
        let key = match self {
            Value::Int(v) | Value::Datetime(v) => Some(*v as u64 ^ SIGN),
            Value::Date(v) => Some(i64::from(*v) as u64 ^ SIGN),
            Value::Float(v) => {
                // IEEE 754 total order, with -0.0 and 0.0 one value.
                let bits = (v + 0.0).to_bits();
                Some(if bits & SIGN != 0 { !bits } else { bits | SIGN })
            }
            Value::Bool(b) => Some(u64::from(*b) | SIGN),
            Value::Null | Value::Str(_) | Value::Token(_) => None,
        };
        key.map(|k| k.max(1))
    }

    /// Bytes identifying the value in a key (dedupe, unique).
    pub fn key_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.push(0),
            Value::Str(s) => {
                out.push(1);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Token(t) => {
                out.push(1);
                out.extend_from_slice(&t.0);
            }
            Value::Int(v) | Value::Datetime(v) => {
                out.push(2);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Float(v) => {
                out.push(3);
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            Value::Bool(b) => out.push(4 + *b as u8),
            Value::Date(v) => {
                out.push(6);
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out.push(0xff);
    }
}

/// A column ready for the hot path: lookups prepared once per ingest.
#[derive(Debug, Clone)]
pub struct CompiledColumn {
    pub col: Column,
    null_values: Vec<String>,
    /// Bit `n` set when a null value is `n` bytes long (63 stands for 63 and more): most
    /// values are ruled out by their length alone.
    null_lengths: u64,
    pattern: Option<regex::Regex>,
    formats: Vec<DateFormat>,
}

#[derive(Debug, Clone)]
enum DateFormat {
    /// `%Y-%m-%d`, `%Y/%m/%d`, `%Y.%m.%d` with 1- or 2-digit month and day.
    YmdSep(u8),
    /// `%Y%m%d`.
    YmdCompact,
    Chrono(String),
}

const DEFAULT_DATE_FORMATS: &[&str] = &["%Y-%m-%d"];
const DEFAULT_DATETIME_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d",
];

impl CompiledColumn {
    pub fn new(col: &Column, null_values: &[String]) -> CompiledColumn {
        let defaults = match col.ty {
            ColumnType::Date => DEFAULT_DATE_FORMATS,
            ColumnType::Datetime => DEFAULT_DATETIME_FORMATS,
            _ => &[],
        };
        let fmts: Vec<String> = if col.formats.is_empty() {
            defaults.iter().map(|s| s.to_string()).collect()
        } else {
            col.formats.clone()
        };
        let formats = fmts
            .into_iter()
            .map(|f| match f.as_str() {
                "%Y-%m-%d" if col.ty == ColumnType::Date => DateFormat::YmdSep(b'-'),
                "%Y/%m/%d" if col.ty == ColumnType::Date => DateFormat::YmdSep(b'/'),
                "%Y.%m.%d" if col.ty == ColumnType::Date => DateFormat::YmdSep(b'.'),
                "%Y%m%d" if col.ty == ColumnType::Date => DateFormat::YmdCompact,
                _ => DateFormat::Chrono(f),
            })
            .collect();
        CompiledColumn {
            col: col.clone(),
            null_values: null_values.to_vec(),
            null_lengths: null_values.iter().fold(0, |m, n| m | 1 << n.len().min(63)),
            // Validated when the contract was read.
            pattern: col
                .pattern
                .as_ref()
                .and_then(|p| regex::Regex::new(&format!("^(?:{p})$")).ok()),
            formats,
        }
    }

    /// Cleans and types one raw value. `Err` holds the reason for rejecting the row; for a
    /// personal-data column it names the rule, never the value (reasons reach the rejects
    /// table, which analysts may read without the raw text).
    pub fn clean<'a>(
        &'a self,
        raw: Option<&'a str>,
        tokenizer: Option<&Tokenizer>,
    ) -> Result<Value<'a>, String> {
        let cleaned = self.clean_value(raw, tokenizer);
        match cleaned {
            Err(reason) if self.col.pii.is_some() => Err(withhold_values(&reason)),
            other => other,
        }
    }

    /// `clean`, with the reasons as they are (values included).
    pub(super) fn clean_value<'a>(
        &'a self,
        raw: Option<&'a str>,
        tokenizer: Option<&Tokenizer>,
    ) -> Result<Value<'a>, String> {
        let c = &self.col;
        let Some(raw) = raw else {
            return self.missing();
        };
        if self.is_null(raw) {
            return self.missing();
        }
        if let Some(value) = self.clean_amount(raw)? {
            return Ok(value);
        }
        let mut v: Cow<str> = Cow::Borrowed(raw);
        for rule in &c.clean {
            v = match rule {
                // On a number column the digits are a quantity, not an identifier's: `1.5年`
                // is not 15, nor `3-6个月` 36 (an IMEI's `35-000000-…` keeps its digits).
                CleanRule::Digits
                    if matches!(c.ty, ColumnType::Int | ColumnType::Float)
                        && !v.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    let h = halfwidth(v);
                    Cow::Owned(one_whole_number(&h).ok_or_else(|| {
                        format!(
                            "{:?} is not one whole number (digits, commas between thousands, \
                             and text around them such as units)",
                            shorten(&h)
                        )
                    })?)
                }
                _ => apply_rule(*rule, v)?,
            };
        }
        if !c.map.is_empty() {
            if let Some(m) = c.map.get(v.as_ref()) {
                v = Cow::Borrowed(m.as_str());
            }
        }
        if self.is_null(&v) {
            return self.missing();
        }
        if let Some(check) = c.check {
            // One form per number, so that `…002x`, `…002X` and `…002ｘ` give one token.
            if matches!(check, IdCheck::IdCard | IdCheck::CreditCode)
                && v.bytes().any(|b| b.is_ascii_lowercase() || !b.is_ascii())
            {
                v = Cow::Owned(halfwidth(v).to_ascii_uppercase());
            }
            check_id(check, &v)?;
        }
        if !c.accepted.is_empty() && !c.accepted.iter().any(|a| a == v.as_ref()) {
            return Err(format!(
                "value {:?} is not one of the accepted values [{}]",
                shorten(&v),
                c.accepted.join(", ")
            ));
        }
        if let Some(p) = &self.pattern {
            if !p.is_match(&v) {
                return Err(format!(
                    "value {:?} does not match the pattern {}",
                    shorten(&v),
                    c.pattern.as_deref().unwrap_or_default()
                ));
            }
        }
        let value = match c.ty {
            ColumnType::String => match (c.pii, tokenizer) {
                (Some(Pii::Tokenize), Some(t)) => Value::Token(t.token_bytes(&v)),
                (Some(Pii::Tokenize), None) => return Err("no PII key to tokenize with".into()),
                (Some(Pii::Mask), _) => Value::Str(Cow::Owned(super::pii::mask(&v))),
                (None, _) => Value::Str(v),
            },
            ColumnType::Int => Value::Int(parse_int(&v)?),
            ColumnType::Float => Value::Float(parse_float(&v)?),
            ColumnType::Bool => Value::Bool(parse_bool(&v)?),
            ColumnType::Date => Value::Date(self.parse_date(&v)?),
            ColumnType::Datetime => Value::Datetime(self.parse_datetime(&v)?),
        };
        self.check_range(&value)?;
        Ok(value)
    }

    /// Fast path for a float column whose last rule is `money` or `percent` and that has no
    /// map or text checks: the parsed number is the value (no round trip through text).
    fn clean_amount<'a>(&self, raw: &'a str) -> Result<Option<Value<'a>>, String> {
        let c = &self.col;
        let Some(last @ (CleanRule::Money | CleanRule::Percent)) = c.clean.last() else {
            return Ok(None);
        };
        if c.ty != ColumnType::Float
            || !c.map.is_empty()
            || c.check.is_some()
            || !c.accepted.is_empty()
            || self.pattern.is_some()
        {
            return Ok(None);
        }
        let mut v: Cow<str> = Cow::Borrowed(raw);
        for rule in &c.clean[..c.clean.len() - 1] {
            v = apply_rule(*rule, v)?;
        }
        if self.is_null(&v) {
            return self.missing().map(Some);
        }
        let x = match last {
            CleanRule::Money => parse_money(&v)?,
            _ => parse_percent(&v)?,
        };
        let value = Value::Float(x);
        self.check_range(&value)?;
        Ok(Some(value))
    }

    fn missing<'a>(&self) -> Result<Value<'a>, String> {
        if self.col.required {
            Err("required value is missing".into())
        } else {
            Ok(Value::Null)
        }
    }

    fn is_null(&self, v: &str) -> bool {
        let t = trim_space(v);
        self.null_lengths & 1 << t.len().min(63) != 0 && self.null_values.iter().any(|n| n == t)
    }

    fn check_range(&self, value: &Value) -> Result<(), String> {
        let c = &self.col;
        if c.min.is_none() && c.max.is_none() {
            return Ok(());
        }
        let x = match value {
            Value::Int(v) => *v as f64,
            Value::Float(v) => *v,
            // Dates compare as YYYYMMDD numbers, as the contract writes them.
            Value::Date(d) => {
                let date = days_to_date(*d);
                f64::from(date.year() * 10_000 + date.month() as i32 * 100 + date.day() as i32)
            }
            _ => return Ok(()),
        };
        // NaN compares false with everything: it would pass any range.
        if !x.is_finite() {
            return Err(format!("value {x} is not a finite number"));
        }
        if let Some(lo) = c.min {
            if x < lo {
                return Err(format!("value {x} is below the minimum {lo}"));
            }
        }
        if let Some(hi) = c.max {
            if x > hi {
                return Err(format!("value {x} is above the maximum {hi}"));
            }
        }
        Ok(())
    }

    fn parse_date(&self, v: &str) -> Result<i32, String> {
        let t = trim_space(v);
        for f in &self.formats {
            let parsed = match f {
                DateFormat::YmdSep(sep) => parse_ymd_sep(t, *sep),
                DateFormat::YmdCompact => parse_ymd_compact(t),
                DateFormat::Chrono(fmt) => NaiveDate::parse_from_str(t, fmt).ok(),
            };
            if let Some(d) = parsed {
                return Ok(date_to_days(d));
            }
        }
        Err(format!(
            "{:?} is not a date in any of the formats [{}]",
            shorten(t),
            self.format_list()
        ))
    }

    fn parse_datetime(&self, v: &str) -> Result<i64, String> {
        let t = trim_space(v);
        for f in &self.formats {
            if let DateFormat::Chrono(fmt) = f {
                // The common core-system form, without chrono's format interpreter.
                // Other spellings of the form (`2024-3-1 9:05:00`) go to chrono below; a value
                // of the form's own length that the fast path refused, chrono refuses too
                // (the next format's turn, without a chrono parse per value).
                if fmt == "%Y-%m-%d %H:%M:%S" || fmt == "%Y-%m-%dT%H:%M:%S" {
                    if let Some(ms) = parse_iso_datetime(t) {
                        return Ok(ms);
                    }
                    if t.len() == 19 {
                        continue;
                    }
                }
            }
            let fmt = match f {
                DateFormat::Chrono(fmt) => fmt.as_str(),
                _ => continue,
            };
            if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
                return Ok(dt.and_utc().timestamp_millis());
            }
            // A date-only format for a datetime column means midnight.
            if let Ok(d) = NaiveDate::parse_from_str(t, fmt) {
                return Ok(d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis());
            }
        }
        Err(format!(
            "{:?} is not a date-time in any of the formats [{}]",
            shorten(t),
            self.format_list()
        ))
    }

    fn format_list(&self) -> String {
        self.formats
            .iter()
            .map(|f| match f {
                DateFormat::YmdSep(s) => format!("%Y{0}%m{0}%d", *s as char),
                DateFormat::YmdCompact => "%Y%m%d".into(),
                DateFormat::Chrono(s) => s.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{3000}' || c == '\u{feff}'
}

/// `s` without leading and trailing `is_space` characters. Most values start and end with a
/// visible ASCII character: those are returned without decoding a character.
pub fn trim_space(s: &str) -> &str {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) if f.is_ascii_graphic() && l.is_ascii_graphic() => s,
        _ => s.trim_matches(is_space),
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        let mut t: String = s.chars().take(40).collect();
        t.push('…');
        t
    } else {
        s.to_string()
    }
}

pub fn apply_rule(rule: CleanRule, v: Cow<'_, str>) -> Result<Cow<'_, str>, String> {
    Ok(match rule {
        CleanRule::Trim => match v {
            Cow::Borrowed(b) => Cow::Borrowed(trim_space(b)),
            Cow::Owned(o) => {
                let t = trim_space(&o);
                if t.len() == o.len() {
                    Cow::Owned(o)
                } else {
                    Cow::Owned(t.to_string())
                }
            }
        },
        CleanRule::Halfwidth => halfwidth(v),
        // Most text (digits, Chinese) has no case: no copy then.
        // ASCII text (codes, identifiers) is checked bytewise, without Unicode tables.
        CleanRule::Upper => {
            if v.is_ascii() {
                if v.bytes().any(|b| b.is_ascii_lowercase()) {
                    Cow::Owned(v.to_ascii_uppercase())
                } else {
                    v
                }
            } else if v.chars().any(char::is_lowercase) {
                Cow::Owned(v.to_uppercase())
            } else {
                v
            }
        }
        CleanRule::Lower => {
            if v.is_ascii() {
                if v.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(v.to_ascii_lowercase())
                } else {
                    v
                }
            } else if v.chars().any(char::is_uppercase) {
                Cow::Owned(v.to_lowercase())
            } else {
                v
            }
        }
        CleanRule::Digits => {
            let h = halfwidth(v);
            if h.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                Cow::Owned(h.chars().filter(char::is_ascii_digit).collect())
            }
        }
        CleanRule::Phone => Cow::Owned(normalize_phone(&v)?),
        CleanRule::Money => Cow::Owned(parse_money(&v)?.to_string()),
        CleanRule::Percent => Cow::Owned(parse_percent(&v)?.to_string()),
    })
}

/// Full-width ASCII variants (U+FF01..U+FF5E) and the ideographic space to half-width.
pub fn halfwidth(v: Cow<'_, str>) -> Cow<'_, str> {
    if v.is_ascii()
        || !v
            .chars()
            .any(|c| ('\u{ff01}'..='\u{ff5e}').contains(&c) || c == '\u{3000}')
    {
        return v;
    }
    Cow::Owned(
        v.chars()
            .map(|c| match c {
                '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
                '\u{3000}' => ' ',
                _ => c,
            })
            .collect(),
    )
}

/// Mainland mobile numbers to 11 digits: `+86 138-0013-8000`, `0086 13800138000`,
/// `１３８００１３８０００` all become `13800138000`.
/// The digits of the one number in `t` (`24期` → 24, `1,000 元` → 1000); the text around it
/// goes. `None` when the digits are not one whole, non-negative number: `1.5年` is not 15,
/// `3-6个月` not 36, `-6` not 6, `1,2,3` not 123.
fn one_whole_number(t: &str) -> Option<String> {
    let Some(first) = t.find(|c: char| c.is_ascii_digit()) else {
        return Some(String::new());
    };
    let last = t.rfind(|c: char| c.is_ascii_digit()).expect("a digit");
    let core = &t[first..=last];
    if !core.bytes().all(|b| b.is_ascii_digit() || b == b',') {
        return None;
    }
    if t[..first].trim_end_matches(is_space).ends_with(['-', '.']) {
        return None;
    }
    if core.contains(',') {
        let mut groups = core.split(',');
        let head = groups.next()?;
        if head.is_empty() || head.len() > 3 || !groups.all(|g| g.len() == 3) {
            return None;
        }
    }
    Some(core.replace(',', ""))
}

pub fn normalize_phone(v: &str) -> Result<String, String> {
    let h = halfwidth(Cow::Borrowed(v));
    // Digits and the separators people write; anything else (Excel's `1.38001380E+10`, an
    // extension `ext. 12`) is not read as a number whose digits happen to fit.
    if !h
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')'))
    {
        return Err(format!(
            "{:?} is not a phone number (digits, spaces, +, - and parentheses only)",
            shorten(v)
        ));
    }
    let mut digits: String = h.chars().filter(char::is_ascii_digit).collect();
    // A country code is written after a leading `+`: one other than 86 is another country's
    // number, whatever its digits look like (`+1 (380) 013-8000`).
    if h.contains('+')
        && (!h.trim_start_matches([' ', '(']).starts_with('+')
            || h.matches('+').count() > 1
            || !(digits.starts_with("86") && digits.len() == 13))
    {
        return Err(format!(
            "{:?} is not a mainland mobile number (a country code other than +86, or a + \
             that does not start it)",
            shorten(v)
        ));
    }
    if digits.len() == 15 && digits.starts_with("0086") {
        digits.drain(..4);
    } else if digits.len() == 13 && digits.starts_with("86") {
        digits.drain(..2);
    }
    if digits.len() == 11 && digits.starts_with('1') {
        Ok(digits)
    } else {
        Err(format!(
            "{:?} is not a mainland mobile number (11 digits starting with 1)",
            shorten(v)
        ))
    }
}

/// Amounts in the forms core systems and humans write them: `1298633`, `1,298,633`,
/// `¥1,298,633.00`, `1298633 CNY` (or RMB, yuan, 元, before or after), `129.8万`, `1.2亿`,
/// compound `1亿2000万` and `1万5千`, a leading minus or accounting parentheses.
///
/// Anything else is refused rather than guessed: commas must group thousands, each unit
/// takes one number and units decrease (`1万2` and `1万5千万` are refused), no text between
/// digits. The value is rounded half away from zero to the fen in decimal (`1.005` is 1.01).
pub fn parse_money(v: &str) -> Result<f64, String> {
    let bad = || format!("{:?} is not an amount", shorten(v));
    let h = halfwidth(Cow::Borrowed(v));
    let mut t = trim_space(&h);
    let mut negative = false;
    if let Some(inner) = t.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        negative = true;
        t = trim_space(inner);
    }
    let mut sign = |t: &mut &str| {
        if let Some(rest) = t.strip_prefix(['-', '\u{2212}']) {
            if negative {
                return false;
            }
            negative = true;
            *t = trim_space(rest);
        }
        true
    };
    if !sign(&mut t) {
        return Err(bad());
    }
    let mut currency = false;
    if let Some(rest) = t.strip_prefix(['¥', '￥']).or_else(|| strip_code(t, true)) {
        currency = true;
        t = trim_space(rest);
        if !sign(&mut t) {
            return Err(bad());
        }
    }
    if let Some(rest) = t.strip_suffix('元').or_else(|| strip_code(t, false)) {
        t = trim_space(rest);
    } else if !currency && t.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!("{:?} is not an amount in CNY", shorten(v)));
    }
    let mut fen: i128 = 0;
    let mut last_unit = i128::MAX;
    let mut rest = t;
    while !rest.is_empty() {
        let (mantissa, scale, after) = take_decimal(rest).ok_or_else(bad)?;
        let after = trim_space(after);
        let (unit, after) = match after.chars().next() {
            Some('亿') => (100_000_000, &after['亿'.len_utf8()..]),
            Some('万') => (10_000, &after['万'.len_utf8()..]),
            Some('千') => (1_000, &after['千'.len_utf8()..]),
            _ => (1, after),
        };
        // Units decrease, and a bare number may only stand alone (`1万2` is ambiguous).
        if unit >= last_unit || (unit == 1 && last_unit != i128::MAX) {
            return Err(bad());
        }
        let den = 10i128.pow(scale);
        fen += (mantissa * unit * 100 + den / 2) / den;
        last_unit = unit;
        rest = trim_space(after);
        if unit == 1 && !rest.is_empty() {
            return Err(bad());
        }
    }
    if last_unit == i128::MAX {
        return Err(bad());
    }
    let x = fen as f64 / 100.0;
    Ok(if negative { -x } else { x })
}

/// `CNY`, `RMB` or `yuan` (any case) at the start (`prefix`) or end of `t`, and what remains.
fn strip_code(t: &str, prefix: bool) -> Option<&str> {
    ["CNY", "RMB", "YUAN"].iter().find_map(|code| {
        let n = code.len();
        if prefix {
            let head = t.get(..n)?;
            head.eq_ignore_ascii_case(code).then(|| &t[n..])
        } else {
            let tail = t.get(t.len().checked_sub(n)?..)?;
            tail.eq_ignore_ascii_case(code).then(|| &t[..t.len() - n])
        }
    })
}

/// A decimal number at the start of `t`: digits, optionally grouped in thousands by commas
/// (`1,298,633`), optionally a fraction. Returns its digits as an integer, the number of
/// fraction digits, and what follows. At most 20 digits.
fn take_decimal(t: &str) -> Option<(i128, u32, &str)> {
    let b = t.as_bytes();
    let mut i = 0;
    let mut mantissa: i128 = 0;
    let mut digits = 0;
    let mut group = 0; // digits since the start or the last comma
    let mut grouped = false;
    while i < b.len() {
        match b[i] {
            d @ b'0'..=b'9' => {
                mantissa = mantissa * 10 + i128::from(d - b'0');
                digits += 1;
                group += 1;
            }
            b',' if i + 1 < b.len() && b[i + 1].is_ascii_digit() => {
                if (grouped && group != 3) || (!grouped && !(1..=3).contains(&group)) {
                    return None;
                }
                grouped = true;
                group = 0;
            }
            _ => break,
        }
        i += 1;
    }
    if grouped && group != 3 {
        return None;
    }
    let mut scale = 0;
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while let Some(d @ b'0'..=b'9') = b.get(i).copied() {
            mantissa = mantissa * 10 + i128::from(d - b'0');
            digits += 1;
            scale += 1;
            i += 1;
        }
    }
    if digits == 0 || digits > 20 {
        return None;
    }
    Some((mantissa, scale, &t[i..]))
}

pub fn parse_percent(v: &str) -> Result<f64, String> {
    let h = halfwidth(Cow::Borrowed(v));
    let t = trim_space(&h);
    let (number, scale) = match t.strip_suffix('%') {
        Some(p) => (trim_space(p), 100.0),
        None => (t, 1.0),
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .map(|x| x / scale)
        .ok_or_else(|| format!("{:?} is not a percentage", shorten(v)))
}

fn parse_int(v: &str) -> Result<i64, String> {
    let t = trim_space(v);
    if let Ok(x) = t.parse::<i64>() {
        return Ok(x);
    }
    // "12.0" from spreadsheets and money cleaning is still an integer; "2.9999999999999999"
    // is not, though it parses as the double 3.0.
    let zero_fraction = decimal_is_whole(t);
    match t.parse::<f64>() {
        Ok(f) if zero_fraction && f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(format!("{:?} is not an integer", shorten(t))),
    }
}

/// Whether decimal text (`12.0`, `1.5e1`, `-3`) is a whole number, read exactly from its digits
/// (a double rounds `2.9999999999999999` to 3). Text that is not decimal says true: the caller's
/// parse decides.
fn decimal_is_whole(t: &str) -> bool {
    let (mantissa, exponent) = match t.split_once(['e', 'E']) {
        Some((m, x)) => match x.parse::<i64>() {
            Ok(x) => (m, x),
            Err(_) => return true,
        },
        None => (t, 0),
    };
    let mantissa = mantissa.trim_start_matches(['+', '-']);
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return true;
    }
    // Digits at or after the decimal point, once the exponent has moved it, must be zeros.
    let point = whole.len() as i64 + exponent;
    whole
        .bytes()
        .chain(fraction.bytes())
        .enumerate()
        .all(|(i, d)| (i as i64) < point || d == b'0')
}

fn parse_float(v: &str) -> Result<f64, String> {
    let t = trim_space(v);
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(f),
        _ => Err(format!("{:?} is not a number", shorten(t))),
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match trim_space(v).to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" | "是" => Ok(true),
        "false" | "f" | "0" | "no" | "n" | "否" => Ok(false),
        other => Err(format!("{:?} is not a boolean", shorten(other))),
    }
}

/// A reason with each quoted value (as `{:?}` prints it) replaced by `(value withheld)`.
fn withhold_values(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut chars = reason.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        // Skip to the closing quote, past escaped ones.
        let mut escaped = false;
        for q in chars.by_ref() {
            match (escaped, q) {
                (false, '\\') => escaped = true,
                (false, '"') => break,
                _ => escaped = false,
            }
        }
        out.push_str("(value withheld)");
    }
    out
}

fn check_id(check: IdCheck, v: &str) -> Result<(), String> {
    let (ok, what) = match check {
        IdCheck::IdCard => (
            ids::is_valid_id_card(v),
            "an ID-card number (18 characters, valid birth date and check character)",
        ),
        IdCheck::CreditCode => (
            ids::is_valid_credit_code(v),
            "a unified social credit code (18 characters, valid check character)",
        ),
        IdCheck::Imei => (
            ids::is_valid_imei(v),
            "an IMEI (15 digits, valid Luhn digit)",
        ),
        IdCheck::Iccid => (
            ids::is_valid_iccid(v),
            "an ICCID (19-20 digits starting 89, valid Luhn digit)",
        ),
        IdCheck::Luhn => (
            ids::is_valid_luhn(v),
            "a number with a valid Luhn check digit",
        ),
    };
    if ok {
        Ok(())
    } else {
        // The value itself may be personal data: the reason names its length, not its digits.
        Err(format!(
            "value of {} characters is not {what}",
            v.chars().count()
        ))
    }
}

fn parse_ymd_sep(t: &str, sep: u8) -> Option<NaiveDate> {
    let b = t.as_bytes();
    if b.len() < 8 || b.len() > 10 {
        return None;
    }
    let mut parts = t.split(sep as char);
    let y = parts.next()?;
    let m = parts.next()?;
    let d = parts.next()?;
    if parts.next().is_some()
        || y.len() != 4
        || m.is_empty()
        || m.len() > 2
        || d.is_empty()
        || d.len() > 2
    {
        return None;
    }
    NaiveDate::from_ymd_opt(num(y)? as i32, num(m)?, num(d)?)
}

/// `YYYY-MM-DD HH:MM:SS` (or with `T`) to milliseconds since the epoch.
fn parse_iso_datetime(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let d = NaiveDate::from_ymd_opt(num(&t[..4])? as i32, num(&t[5..7])?, num(&t[8..10])?)?;
    let (h, m, s) = (num(&t[11..13])?, num(&t[14..16])?, num(&t[17..19])?);
    let dt = d.and_hms_opt(h, m, s)?;
    Some(dt.and_utc().timestamp_millis())
}

fn parse_ymd_compact(t: &str) -> Option<NaiveDate> {
    // Eight ASCII digits: a multi-byte character would cut the slices below inside it.
    if t.len() != 8 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::from_ymd_opt(num(&t[..4])? as i32, num(&t[4..6])?, num(&t[6..])?)
}

fn num(s: &str) -> Option<u32> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

pub fn date_to_days(d: NaiveDate) -> i32 {
    use chrono::Datelike;
    d.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE
}

pub fn days_to_date(days: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(days + UNIX_EPOCH_DAYS_FROM_CE).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_order_exactly() {
        // Regression: compared as f64, versions above 2^53 tied (the later row won).
        let ordered = [
            vec![
                Value::Int(i64::MIN + 1),
                Value::Int(-1),
                Value::Int(0),
                Value::Int(1_700_000_000_000_000_000),
                Value::Int(1_700_000_000_000_000_001),
                Value::Int(i64::MAX),
            ],
            vec![
                Value::Float(-1e300),
                Value::Float(-0.5),
                Value::Float(-0.0),
                Value::Float(1e-300),
                Value::Float(2.5),
            ],
            vec![Value::Date(-1), Value::Date(0), Value::Date(20_000)],
            vec![Value::Bool(false), Value::Bool(true)],
        ];
        for values in ordered {
            let keys: Vec<u64> = values.iter().map(|v| v.order_key().unwrap()).collect();
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "{values:?}");
        }
        // Regression: i64::MIN had key 0, a null's, and a later null row won over it.
        assert!(Value::Int(i64::MIN).order_key().unwrap() > 0);
        assert_eq!(
            Value::Float(0.0).order_key(),
            Value::Float(-0.0).order_key()
        );
        assert_eq!(Value::Str("2024-05-01".into()).order_key(), None);
    }

    #[test]
    fn trim_space_matches_the_full_trim() {
        for v in [
            "",
            " ",
            "a",
            "ab",
            " a",
            "a ",
            "\u{3000}x\u{3000}",
            "\u{feff}12",
            "x\t",
            "中文",
            " 中 ",
            "\u{a0}7",
        ] {
            assert_eq!(trim_space(v), v.trim_matches(is_space), "{v:?}");
        }
    }

    fn col(toml_text: &str) -> CompiledColumn {
        let c: Column = toml::from_str(toml_text).unwrap();
        CompiledColumn::new(&c, &["".into(), "NULL".into()])
    }

    /// Regressions: `…x` and `…X` tokenized apart (joins on the token broke), and reasons
    /// of personal-data columns repeated the raw value.
    #[test]
    fn personal_data_one_token_per_number_and_no_value_in_reasons() {
        let t = Tokenizer::new(b"a-test-key-0123456789");
        let card = col(
            "name='id'\ntype='string'\nclean=['trim', 'halfwidth']\ncheck='id_card'\npii='tokenize'",
        );
        let token = |raw: &str| match card.clean(Some(raw), Some(&t)).unwrap() {
            Value::Token(k) => k.0,
            other => panic!("{other:?}"),
        };
        let upper = token("11010519491231002X");
        assert_eq!(token("11010519491231002x"), upper);
        assert_eq!(token("11010519491231002ｘ"), upper);
        // Without a halfwidth rule too (the check saw the full-width character and refused).
        let bare = col("name='id'\ntype='string'\ncheck='id_card'\npii='tokenize'");
        match bare.clean(Some("11010519491231002ｘ"), Some(&t)).unwrap() {
            Value::Token(k) => assert_eq!(k.0, upper),
            other => panic!("{other:?}"),
        }
        let phone = col("name='p'\ntype='string'\nclean=['phone']\npii='tokenize'");
        let reason = phone.clean(Some("010-87654321"), Some(&t)).unwrap_err();
        assert!(!reason.contains("87654321"), "{reason}");
        assert!(reason.contains("(value withheld)"), "{reason}");
        assert_eq!(
            withhold_values(r#"value "a\"b" is not "c", nor d"#),
            "value (value withheld) is not (value withheld), nor d"
        );
    }

    #[test]
    fn money_forms() {
        assert_eq!(parse_money("1,298,633").unwrap(), 1_298_633.0);
        assert_eq!(parse_money("129.8万").unwrap(), 1_298_000.0);
        assert_eq!(parse_money("1298633 CNY").unwrap(), 1_298_633.0);
        assert_eq!(parse_money("¥1,298,633.00").unwrap(), 1_298_633.0);
        assert_eq!(parse_money("1.2亿").unwrap(), 120_000_000.0);
        assert_eq!(parse_money("１２９．８万").unwrap(), 1_298_000.0);
        assert_eq!(parse_money("-5").unwrap(), -5.0);
        assert!(parse_money("12 USD").is_err());
        assert!(parse_money("abc").is_err());
        assert!(parse_money("万").is_err());
        assert_eq!(parse_money("3 yuan").unwrap(), 3.0);
        assert!(parse_money("5 CNYY").is_err());
        assert!(parse_money("5 RMBCNY").is_err());
        // More forms people write.
        assert_eq!(parse_money("1亿2000万").unwrap(), 120_000_000.0);
        assert_eq!(parse_money("1万5千").unwrap(), 15_000.0);
        assert_eq!(parse_money("1.5万元").unwrap(), 15_000.0);
        assert_eq!(parse_money("CNY 1,000").unwrap(), 1_000.0);
        assert_eq!(parse_money("RMB1000.5").unwrap(), 1_000.5);
        assert_eq!(parse_money("(1,234.50)").unwrap(), -1_234.5);
        assert_eq!(parse_money("¥-5").unwrap(), -5.0);
        assert_eq!(parse_money("−5元").unwrap(), -5.0);
        assert_eq!(parse_money("0.5").unwrap(), 0.5);
        // Rounded to the fen in decimal, half away from zero.
        assert_eq!(parse_money("1.005").unwrap(), 1.01);
        assert_eq!(parse_money("2.675").unwrap(), 2.68);
        assert_eq!(parse_money("-1.005").unwrap(), -1.01);
        // Refused rather than guessed.
        for bad in [
            "1万2",
            "1万5千万",
            "12,34",
            "1,2345",
            "1298,633",
            "1,298,",
            "100 200",
            "5CNY10",
            "(5",
            "5)",
            "--5",
            "1.2.3",
            "$5",
            "¥",
            "",
            "NaN",
            "inf",
            "1e5",
            "5 USD",
            "万5",
            "123456789012345678901",
            "1,298,633.00.1",
            "¥5¥",
        ] {
            assert!(parse_money(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn percent_forms() {
        assert_eq!(parse_percent("12.5%").unwrap(), 0.125);
        assert_eq!(parse_percent(" 0.3 ").unwrap(), 0.3);
        assert_eq!(parse_percent("５０％").unwrap(), 0.5);
        for bad in ["NaN", "inf%", "-infinity", "x%", ""] {
            assert!(parse_percent(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn integers_with_a_zero_fraction_only() {
        assert_eq!(parse_int("12").unwrap(), 12);
        assert_eq!(parse_int("12.000").unwrap(), 12);
        assert_eq!(parse_int("1e3").unwrap(), 1000);
        // Regression: both parse as the double 3.0 and were stored as 3.
        assert_eq!(parse_int("1.5e1").unwrap(), 15);
        for bad in [
            "2.9999999999999999",
            "3.00000000000000001",
            "2.99999999999999999e0",
            "1.55e1",
            "3.5",
            "x",
        ] {
            assert!(parse_int(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn digits_take_one_whole_number() {
        // Regressions: digits glued across a point, a sign or a range (`1.5年` was 15).
        for (raw, want) in [
            ("24期", "24"),
            ("36个月", "36"),
            ("1,000 元", "1000"),
            ("6.", "6"),
            ("", ""),
        ] {
            assert_eq!(one_whole_number(raw).as_deref(), Some(want), "{raw}");
        }
        for raw in ["1.5年", "6.0", "3-6个月", "-6", "1,2,3", ".5"] {
            assert_eq!(one_whole_number(raw), None, "{raw}");
        }
    }

    #[test]
    fn iso_datetimes_with_one_digit_fields_go_to_chrono() {
        // Regression: the fast path refused what the same format passes through chrono.
        let c = col("name='t'\ntype='datetime'\nformats=['%Y-%m-%d %H:%M:%S']");
        let f = col("name='t'\ntype='datetime'\nformats=['%F %T']");
        for raw in [
            "2024-03-01 09:05:00",
            "2024-03-01 9:05:00",
            "2024-3-1 10:05:00",
        ] {
            let (a, b) = (c.clean(Some(raw), None), f.clean(Some(raw), None));
            assert!(a.is_ok(), "{raw}: {a:?}");
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{raw}");
        }
        assert!(c.clean(Some("2024-03-01 25:00:00"), None).is_err());
    }

    #[test]
    fn compact_dates_with_a_wide_character_are_no_date() {
        // Regression: `20240１` is 8 bytes; slicing it by byte panicked.
        assert_eq!(parse_ymd_compact("20240１"), None);
        assert_eq!(parse_ymd_compact("２0240301"), None);
        assert!(parse_ymd_compact("20240301").is_some());
    }

    #[test]
    fn phone_forms() {
        for p in [
            "+86 138-0013-8000",
            "0086 13800138000",
            "138 0013 8000",
            "１３８００１３８０００",
            "8613800138000",
        ] {
            assert_eq!(normalize_phone(p).unwrap(), "13800138000", "{p}");
        }
        assert!(normalize_phone("010-12345678").is_err());
        // Regression: Excel's scientific form lost digits and still passed.
        assert!(normalize_phone("1.38001380E+10").is_err());
        assert!(normalize_phone("(+86) 138 0013 8000").is_ok());
        assert!(normalize_phone("2380013800").is_err());
        // Regression: another country's number whose digits look like a mainland one.
        assert!(normalize_phone("+1 (380) 013-8000").is_err());
        assert!(normalize_phone("+1 415 555 0100").is_err());
        assert!(normalize_phone("138 0013 8000 +86").is_err());
        assert_eq!(normalize_phone("+86 138 0013 8000").unwrap(), "13800138000");
    }

    #[test]
    fn halfwidth_and_trim() {
        let c = col("name='a'\ntype='string'\nclean=['halfwidth','trim','upper']");
        assert_eq!(
            c.clean(Some("\u{3000}ａｂｃ１ "), None).unwrap(),
            Value::Str("ABC1".into())
        );
    }

    #[test]
    fn case_rules_ascii_and_not() {
        fn up(s: &str) -> Cow<'_, str> {
            apply_rule(CleanRule::Upper, Cow::Borrowed(s)).unwrap()
        }
        fn low(s: &str) -> Cow<'_, str> {
            apply_rule(CleanRule::Lower, Cow::Borrowed(s)).unwrap()
        }
        assert_eq!(up("91110000ma01abcd2x"), "91110000MA01ABCD2X");
        assert!(matches!(up("AP2024"), Cow::Borrowed(_)));
        assert_eq!(up("张三abc"), "张三ABC");
        assert_eq!(up("ａｂ"), "ＡＢ");
        assert_eq!(low("App"), "app");
        assert!(matches!(low("ebank"), Cow::Borrowed(_)));
        assert_eq!(low("手机APP"), "手机app");
    }

    #[test]
    fn dates_in_three_forms() {
        let c = col("name='d'\ntype='date'\nformats=['%Y-%m-%d','%Y/%m/%d','%Y%m%d']");
        let want = Value::Date(date_to_days(NaiveDate::from_ymd_opt(2024, 3, 1).unwrap()));
        for s in ["2024-03-01", "2024/3/1", "20240301", " 2024-3-01 "] {
            assert_eq!(c.clean(Some(s), None).unwrap(), want, "{s}");
        }
        let err = c.clean(Some("2024-02-30"), None).unwrap_err();
        assert!(err.contains("not a date"), "{err}");
        let dt = col("name='t'\ntype='datetime'\nformats=['%Y-%m-%d %H:%M:%S']");
        let want = NaiveDate::from_ymd_opt(2024, 3, 1)
            .unwrap()
            .and_hms_opt(10, 11, 12)
            .unwrap();
        assert_eq!(
            dt.clean(Some("2024-03-01 10:11:12"), None).unwrap(),
            Value::Datetime(want.and_utc().timestamp_millis())
        );
        assert!(dt.clean(Some("2024-03-01 25:11:12"), None).is_err());
        assert!(dt.clean(Some("2024-02-30 10:11:12"), None).is_err());
    }

    #[test]
    fn required_accepted_range_map_and_checks() {
        let c = col("name='x'\ntype='int'\nrequired=true\nmin=0\nmax=10");
        assert!(c.clean(None, None).unwrap_err().contains("required"));
        assert!(c
            .clean(Some("NULL"), None)
            .unwrap_err()
            .contains("required"));
        assert!(c.clean(Some("11"), None).unwrap_err().contains("maximum"));
        assert_eq!(c.clean(Some("10.0"), None).unwrap(), Value::Int(10));
        let g = col("name='g'\ntype='string'\nmap={'男'='M','女'='F'}\naccepted=['M','F']");
        assert_eq!(g.clean(Some("男"), None).unwrap(), Value::Str("M".into()));
        assert!(g.clean(Some("X"), None).unwrap_err().contains("accepted"));
        let id = col("name='id'\ntype='string'\ncheck='id_card'");
        assert!(id.clean(Some("11010519491231002X"), None).is_ok());
        let e = id.clean(Some("110105194912310021"), None).unwrap_err();
        assert!(
            !e.contains("110105"),
            "reasons must not echo personal data: {e}"
        );
        let b = col("name='b'\ntype='bool'");
        assert_eq!(b.clean(Some("是"), None).unwrap(), Value::Bool(true));
        let p = col("name='p'\ntype='string'\npattern='[A-Z]{2}[0-9]+'");
        assert!(p.clean(Some("AB12"), None).is_ok());
        assert!(p.clean(Some("AB12x"), None).is_err());
    }
}

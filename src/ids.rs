//! Check digits of the identifiers the sources carry: resident ID cards (GB 11643), unified
//! social credit codes (GB 32100), IMEIs and ICCIDs (Luhn). Used by the generator to make
//! valid ones and by ingest to validate them.

/// ISO 7064 MOD 11-2 check character of the first 17 digits of an ID-card number.
pub fn id_card_check_char(first17: &[u8]) -> Option<u8> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHARS: &[u8; 11] = b"10X98765432";
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| (d - b'0') as u32 * w)
        .sum();
    Some(CHARS[(sum % 11) as usize])
}

/// True for an 18-character ID-card number with a valid check character and a plausible
/// birth date (positions 7-14).
pub fn is_valid_id_card(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 18 {
        return false;
    }
    let last = b[17].to_ascii_uppercase();
    if id_card_check_char(&b[..17]) != Some(last) {
        return false;
    }
    // The check above saw 17 digits, so the birth date (YYYYMMDD) needs no format parser.
    let number =
        |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    // A birth date in the future (or before 1900) is a typo or a forgery, however valid its
    // check character.
    chrono::NaiveDate::from_ymd_opt(number(6..10) as i32, number(10..12), number(12..14))
        .is_some_and(|born| {
            // A day ahead of UTC: a birth today in China (UTC+8) is not in the future.
            let today = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
            chrono::Datelike::year(&born) >= 1900 && born <= today
        })
}

const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// GB 32100 check character of the first 17 characters of a unified social credit code.
pub fn credit_code_check_char(first17: &[u8]) -> Option<u8> {
    const WEIGHTS: [u32; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in first17.iter().zip(WEIGHTS) {
        let v = USCC_CHARS.iter().position(|x| x == c)? as u32;
        sum += v * w;
    }
    let check = (31 - sum % 31) % 31;
    Some(USCC_CHARS[check as usize])
}

pub fn is_valid_credit_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 18 && credit_code_check_char(&b[..17]) == Some(b[17].to_ascii_uppercase())
}

/// The Luhn check digit to append to `digits`.
pub fn luhn_check_digit(digits: &[u8]) -> Option<u8> {
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = (d - b'0') as u32;
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    Some(b'0' + ((10 - sum % 10) % 10) as u8)
}

pub fn is_valid_luhn(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && luhn_check_digit(&b[..b.len() - 1]) == Some(b[b.len() - 1])
}

/// 15-digit IMEI with a valid Luhn digit.
pub fn is_valid_imei(s: &str) -> bool {
    s.len() == 15 && is_valid_luhn(s)
}

/// ICCID: 19 or 20 digits starting with 89 (telecom), the last one a Luhn check digit.
pub fn is_valid_iccid(s: &str) -> bool {
    let n = s.len();
    (n == 19 || n == 20) && s.starts_with("89") && is_valid_luhn(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_card_known_values() {
        // GB 11643 worked example.
        assert!(is_valid_id_card("11010519491231002X"));
        assert!(is_valid_id_card("11010519491231002x"));
        assert!(!is_valid_id_card("110105194912310021"));
        assert!(!is_valid_id_card("11010519491331002X")); // month 13 passes no calendar
        assert_eq!(id_card_check_char(b"44052418800101001"), Some(b'4'));
        // A valid check character does not save an impossible birth date.
        let with_check = |first17: &str| {
            let c = id_card_check_char(first17.as_bytes()).unwrap() as char;
            format!("{first17}{c}")
        };
        for (birth, valid) in [
            ("19960229", true),
            ("19490229", false),
            ("19490230", false),
            ("19491301", false),
            ("19490100", false),
            ("20001231", true),
            // Regression: a birth in the year 3000 passed.
            ("30000101", false),
            ("18991231", false),
        ] {
            let id = with_check(&format!("110105{birth}002"));
            assert_eq!(is_valid_id_card(&id), valid, "{id}");
        }
    }

    #[test]
    fn credit_code_known_values() {
        assert!(is_valid_credit_code("91350100M000100Y43"));
        assert!(is_valid_credit_code("91110000802100433B"));
        assert!(!is_valid_credit_code("91110000802100433C"));
        assert!(!is_valid_credit_code("9111000080210043"));
    }

    #[test]
    fn luhn_imei_iccid() {
        assert!(is_valid_imei("490154203237518"));
        assert!(!is_valid_imei("490154203237517"));
        assert_eq!(luhn_check_digit(b"7992739871"), Some(b'3'));
        let iccid19 = "891004234814455936";
        let d = luhn_check_digit(iccid19.as_bytes()).unwrap() as char;
        let full = format!("{iccid19}{d}");
        assert!(is_valid_iccid(&full));
        assert!(!is_valid_iccid(&full.replace("8910", "8911")));
        assert!(!is_valid_iccid("123"));
    }
}

//! A CSV record splitter over a block of bytes, with the csv crate's reading rules (the rules
//! of `csv::ReaderBuilder` with `flexible(true)` and the defaults otherwise): a field is quoted
//! when it starts with `"`, `""` inside quotes is one `"`, text after a closing quote belongs
//! to the field, a `"` inside an unquoted field is text, records end at LF, CRLF or a lone CR,
//! blank lines are skipped, and a quote still open at the end of the block ends the record.
//!
//! Why not the csv crate: its state machine reads a byte at a time and copies every field
//! into its own buffer; it was about 30% of the de-duplication pass and 10% of the whole
//! ingest. This splitter jumps between delimiters with `memchr` and hands out fields that
//! borrow the block, copying only a field that holds `""` or text after a closing quote.

use std::borrow::Cow;

/// Splits the records of one block.
pub struct Records<'a> {
    bytes: &'a [u8],
    pos: usize,
    delimiter: u8,
}

/// Where a record lies in its block: `start` is its first byte (after any blank lines),
/// `end` is just past its line end (or the block's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl<'a> Records<'a> {
    /// `delimiter` is a single ASCII byte other than a quote or a line end (the contract
    /// validation refuses the others). The ingest relies on it: every field lies inside its
    /// record's span and is cut only at ASCII bytes (an owned field too is pieces so cut), so
    /// the fields of valid UTF-8 text are valid UTF-8.
    pub fn new(bytes: &'a [u8], delimiter: u8) -> Self {
        assert!(delimiter.is_ascii() && !matches!(delimiter, b'"' | b'\n' | b'\r'));
        Records {
            bytes,
            pos: 0,
            delimiter,
        }
    }

    /// The next record's fields into `fields` (cleared first), or `None` at the block's end.
    pub fn next_into(&mut self, fields: &mut Vec<Cow<'a, [u8]>>) -> Option<Span> {
        fields.clear();
        let b = self.bytes;
        let d = self.delimiter;
        let mut i = self.pos;
        while i < b.len() && (b[i] == b'\n' || b[i] == b'\r') {
            i += 1;
        }
        if i >= b.len() {
            self.pos = i;
            return None;
        }
        let start = i;
        // Most lines hold no quote: their fields are the pieces between delimiters up to the
        // line end, found with one scan for the line end and one for delimiters. A line with
        // a quote is split so up to the field the first quote is in, and field by field from
        // there (a quoted field may hold delimiters and line ends).
        let eol = memchr::memchr2(b'\n', b'\r', &b[start..]).map_or(b.len(), |k| start + k);
        let quote = memchr::memchr(b'"', &b[start..eol]).map_or(eol, |k| start + k);
        for k in memchr::memchr_iter(d, &b[start..quote]) {
            fields.push(Cow::Borrowed(&b[i..start + k]));
            i = start + k + 1;
        }
        if quote == eol {
            fields.push(Cow::Borrowed(&b[i..eol]));
            self.pos = line_end(b, eol);
            return Some(Span {
                start,
                end: self.pos,
            });
        }
        loop {
            // At the start of a field.
            let (field, next) = if b.get(i) == Some(&b'"') {
                quoted_field(b, i + 1, d)
            } else {
                let stop = memchr::memchr3(d, b'\n', b'\r', &b[i..]).map_or(b.len(), |k| i + k);
                (Cow::Borrowed(&b[i..stop]), stop)
            };
            fields.push(field);
            if b.get(next) == Some(&d) {
                i = next + 1;
            } else {
                self.pos = line_end(b, next);
                break;
            }
        }
        Some(Span {
            start,
            end: self.pos,
        })
    }
}

/// Just past the line end at `at` (a CRLF counts as one), or the block's end.
fn line_end(b: &[u8], at: usize) -> usize {
    match b.get(at) {
        Some(b'\r') if b.get(at + 1) == Some(&b'\n') => at + 2,
        Some(_) => at + 1,
        None => b.len(),
    }
}

/// A quoted field whose text starts at `from` (just past the opening quote): its value, and
/// where it stops (at a delimiter, a line end or the block's end).
fn quoted_field(b: &[u8], from: usize, d: u8) -> (Cow<'_, [u8]>, usize) {
    let mut owned: Option<Vec<u8>> = None;
    let mut i = from;
    loop {
        let Some(k) = memchr::memchr(b'"', &b[i..]) else {
            // Still open at the end of the block: the field ends there.
            return (text(b, from, owned, i, b.len()), b.len());
        };
        let q = i + k;
        if b.get(q + 1) == Some(&b'"') {
            // `""`: one quote in the text.
            let v = owned.get_or_insert_with(|| b[from..i].to_vec());
            v.extend_from_slice(&b[i..=q]);
            i = q + 2;
            continue;
        }
        // The closing quote; text up to the next delimiter or line end belongs to the field
        // (quotes there included).
        let after = q + 1;
        let stop = memchr::memchr3(d, b'\n', b'\r', &b[after..]).map_or(b.len(), |k| after + k);
        if stop == after {
            return (text(b, from, owned, i, q), stop);
        }
        let mut v = owned.unwrap_or_else(|| b[from..i].to_vec());
        v.extend_from_slice(&b[i..q]);
        v.extend_from_slice(&b[after..stop]);
        return (Cow::Owned(v), stop);
    }
}

/// The field's text up to `to`: borrowed from `b[from..to]` when nothing was unescaped,
/// else what `owned` holds followed by `b[i..to]`.
fn text(b: &[u8], from: usize, owned: Option<Vec<u8>>, i: usize, to: usize) -> Cow<'_, [u8]> {
    match owned {
        Some(mut v) => {
            v.extend_from_slice(&b[i..to]);
            Cow::Owned(v)
        }
        None => Cow::Borrowed(&b[from..to]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each record as the csv crate reads it: its fields, its first byte (past blank lines)
    /// and its text without the line end — what the ingest used before this splitter.
    fn csv_crate(bytes: &[u8], delimiter: u8) -> Vec<(Vec<Vec<u8>>, usize, Vec<u8>)> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(bytes);
        let mut rec = csv::ByteRecord::new();
        let mut out = Vec::new();
        loop {
            let before = rdr.position().byte() as usize;
            if !rdr.read_byte_record(&mut rec).unwrap() {
                break;
            }
            let end = (rdr.position().byte() as usize).min(bytes.len());
            let from = (rec.position().unwrap().byte() as usize)
                .max(before)
                .min(end);
            let start = from
                + bytes[from..end]
                    .iter()
                    .take_while(|b| **b == b'\n' || **b == b'\r')
                    .count();
            let mut e = end;
            while e > start && matches!(bytes[e - 1], b'\n' | b'\r') {
                e -= 1;
            }
            out.push((
                rec.iter().map(<[u8]>::to_vec).collect(),
                start,
                bytes[start..e].to_vec(),
            ));
        }
        out
    }

    fn split(bytes: &[u8], delimiter: u8) -> Vec<(Vec<Vec<u8>>, usize, Vec<u8>)> {
        let mut r = Records::new(bytes, delimiter);
        let mut fields = Vec::new();
        let mut out = Vec::new();
        while let Some(span) = r.next_into(&mut fields) {
            let mut e = span.end;
            while e > span.start && matches!(bytes[e - 1], b'\n' | b'\r') {
                e -= 1;
            }
            out.push((
                fields.iter().map(|f| f.to_vec()).collect(),
                span.start,
                bytes[span.start..e].to_vec(),
            ));
        }
        out
    }

    #[test]
    fn splits_as_the_csv_crate_reads() {
        for (text, want) in [
            ("a,b\n", vec![vec!["a", "b"]]),
            ("a,b,\r\n\r\n\nc", vec![vec!["a", "b", ""], vec!["c"]]),
            (
                "\"x,\"\"y\"\"\",z\rq",
                vec![vec!["x,\"y\"", "z"], vec!["q"]],
            ),
            ("\"ab\"c\"d\",e", vec![vec!["abc\"d\"", "e"]]),
            ("a\"b,\"multi\nline\"\n", vec![vec!["a\"b", "multi\nline"]]),
            ("\"open\n,still", vec![vec!["open\n,still"]]),
            (",", vec![vec!["", ""]]),
        ] {
            let got: Vec<Vec<String>> = split(text.as_bytes(), b',')
                .into_iter()
                .map(|(f, _, _)| {
                    f.into_iter()
                        .map(|x| String::from_utf8(x).unwrap())
                        .collect()
                })
                .collect();
            assert_eq!(got, want, "{text:?}");
            assert_eq!(
                split(text.as_bytes(), b','),
                csv_crate(text.as_bytes(), b','),
                "{text:?}"
            );
        }
    }

    #[test]
    fn random_text_splits_as_the_csv_crate_reads_it() {
        // Text dense in quotes (stray ones too), delimiters and every kind of line end.
        let mut next = crate::ingest::test_rng(0x2545_f491_4f6c_dd1du64);
        let alphabet: &[u8] = b"ab5 \";;\"\n\n\r\"x,,;\"\t";
        for case in 0..5000 {
            let delimiter = [b',', b';', b'\t'][case % 3];
            let len = (next() % 300) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            assert_eq!(
                split(&text, delimiter),
                csv_crate(&text, delimiter),
                "case {case}: {:?}",
                String::from_utf8_lossy(&text)
            );
        }
    }
}

//! One reader per format. Line-oriented formats (CSV, NDJSON, fixed-width) are cut into
//! large blocks on record boundaries by one thread and parsed by the cleaning workers;
//! documents (JSON, xlsx, Parquet) are split into rows here.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::contract::{Contract, Encoding, FixedField, Format};
use crate::error::{Error, Result};

/// Block size for line-oriented sources: large enough to amortise hand-offs, small enough
/// to bound memory (blocks in flight × size).
pub const BLOCK_BYTES: usize = 4 << 20;

/// What the workers need to know about the file a batch came from.
#[derive(Debug)]
pub struct FileCtx {
    pub index: usize,
    pub path: PathBuf,
    /// Path as written into rejects (relative to the project when possible).
    pub display: Arc<str>,
    /// For each contract column, the field index in the source (CSV, fixed-width order).
    pub mapping: Vec<Option<usize>>,
    /// CSV: how many fields each record must have.
    pub fields: FieldCount,
}

/// How many fields each CSV record must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldCount {
    /// Not a CSV.
    Any,
    /// As many as the header names.
    AsHeader(usize),
    /// No header: as many as the contract has columns.
    AsColumns(usize),
    /// No header, columns name field numbers: enough to reach the last one named.
    AtLeast(usize),
}

impl FieldCount {
    /// The rule for a CSV file: its header's width, else the contract's columns.
    pub fn for_csv(
        header_fields: Option<usize>,
        contract: &Contract,
        mapping: &[Option<usize>],
    ) -> FieldCount {
        match header_fields {
            Some(n) => FieldCount::AsHeader(n),
            None if contract.columns.iter().all(|c| c.from.is_none()) => {
                FieldCount::AsColumns(contract.columns.len())
            }
            None => FieldCount::AtLeast(mapping.iter().flatten().max().map_or(0, |m| m + 1)),
        }
    }

    /// Whether a record of one field is all a record can be (a blank line is then a record).
    pub fn is_single(self) -> bool {
        matches!(self, FieldCount::AsHeader(1) | FieldCount::AsColumns(1))
    }

    /// Why a record of `found` fields breaks the rule, if it does.
    pub fn problem(self, found: usize) -> Option<String> {
        match self {
            FieldCount::AsHeader(n) if found != n => {
                Some(format!("expected {n} fields as in the header, found {found}"))
            }
            FieldCount::AsColumns(n) if found != n => Some(format!(
                "expected {n} fields as the contract has columns (the file has no header), found {found}"
            )),
            FieldCount::AtLeast(n) if found < n => Some(format!(
                "expected at least {n} fields (the contract reads field {n}), found {found}"
            )),
            _ => None,
        }
    }
}

/// A record split into fields aligned with the contract's columns.
#[derive(Debug, Clone)]
pub struct RawRow {
    pub record: u64,
    pub raw: String,
    pub fields: Vec<Option<String>>,
    /// Set when the record could not be split (malformed): the row is rejected with it.
    pub error: Option<String>,
    /// The column the error is about, when there is one.
    pub error_column: Option<String>,
}

/// A unit of work for the cleaning workers.
pub enum RawBatch {
    Lines {
        file: Arc<FileCtx>,
        first_line: u64,
        bytes: Vec<u8>,
    },
    Rows {
        file: Arc<FileCtx>,
        rows: Vec<RawRow>,
    },
}

/// Expands the contract's path template for a date and matrix values into sorted files.
pub fn resolve_files(
    project_root: &Path,
    contract: &Contract,
    date: chrono::NaiveDate,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<PathBuf>> {
    let mut p = contract
        .source
        .path
        .replace("{date}", &date.format("%Y-%m-%d").to_string())
        .replace("{yyyymmdd}", &date.format("%Y%m%d").to_string());
    for (k, v) in vars {
        p = p.replace(&format!("{{{k}}}"), v);
    }
    if let Some(i) = p.find('{') {
        return Err(Error::config(format!(
            "{}: source.path {:?} has an unknown placeholder at {:?} (known: {{date}}, {{yyyymmdd}}{})",
            contract.file.display(),
            contract.source.path,
            &p[i..],
            vars.keys().map(|k| format!(", {{{k}}}")).collect::<String>()
        )));
    }
    let full = if Path::new(&p).is_absolute() {
        PathBuf::from(&p)
    } else {
        project_root.join(&p)
    };
    let pattern = full.to_string_lossy().to_string();
    let mut files: Vec<PathBuf> = if pattern.contains(['*', '?', '[']) {
        glob::glob(&pattern)
            .map_err(|e| {
                Error::config(format!(
                    "{}: bad glob {pattern:?}: {e}",
                    contract.file.display()
                ))
            })?
            .filter_map(|r| r.ok())
            .filter(|p| p.is_file())
            .collect()
    } else if full.is_file() {
        vec![full.clone()]
    } else {
        Vec::new()
    };
    files.sort();
    if files.is_empty() {
        return Err(Error::input(
            full,
            format!(
                "source file not found (source `{}` for {}, from {})",
                contract.name,
                date,
                contract.file.display()
            ),
        ));
    }
    Ok(files)
}

/// The decoder of a multi-byte Chinese encoding; `None` for UTF-8, which Rust reads itself.
fn chinese_encoding(enc: Encoding) -> Option<&'static encoding_rs::Encoding> {
    match enc {
        Encoding::Utf8 => None,
        Encoding::Gbk => Some(encoding_rs::GBK),
        Encoding::Gb18030 => Some(encoding_rs::GB18030),
    }
}

/// Decodes bytes of a text source; `None` when they are not valid in the encoding.
pub fn decode(bytes: &[u8], enc: Encoding) -> Option<Cow<'_, str>> {
    match chinese_encoding(enc) {
        None => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
        Some(e) => e.decode_without_bom_handling_and_without_replacement(bytes),
    }
}

/// GBK or GB18030 bytes as UTF-8, with each sequence that is not valid in the encoding
/// replaced by the byte 0xFF (not UTF-8 either), where a lossy decoding puts U+FFFD.
pub fn decode_marking_invalid(bytes: &[u8], enc: Encoding) -> Vec<u8> {
    let Some(encoding) = chinese_encoding(enc) else {
        return bytes.to_vec();
    };
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let room = decoder
        .max_utf8_buffer_length_without_replacement(bytes.len())
        .unwrap_or(bytes.len() * 3);
    // A marker takes one byte for one or more bytes in: within `room` plus the input.
    let mut out = vec![0u8; room + bytes.len() + 16];
    let (mut src, mut written) = (bytes, 0);
    loop {
        let (result, read, wrote) =
            decoder.decode_to_utf8_without_replacement(src, &mut out[written..], true);
        src = &src[read..];
        written += wrote;
        match result {
            encoding_rs::DecoderResult::InputEmpty => break,
            encoding_rs::DecoderResult::Malformed(..) => {
                if written == out.len() {
                    out.push(0);
                }
                out[written] = 0xFF;
                written += 1;
            }
            encoding_rs::DecoderResult::OutputFull => out.resize(out.len() * 2, 0),
        }
    }
    out.truncate(written);
    out
}

pub fn encoding_name(enc: Encoding) -> &'static str {
    match enc {
        Encoding::Utf8 => "utf-8",
        Encoding::Gbk => "gbk",
        Encoding::Gb18030 => "gb18030",
    }
}

/// Lossy text for reject records and messages.
pub fn lossy(bytes: &[u8], enc: Encoding) -> String {
    match chinese_encoding(enc) {
        None => String::from_utf8_lossy(bytes).into_owned(),
        Some(e) => e.decode_without_bom_handling(bytes).0.into_owned(),
    }
}

/// The most bytes one record (or line) may take. A record that runs on past it is almost
/// always a quote that is never closed: without the cap, the reader grew its block until
/// the record ended, i.e. to the whole rest of the file (1.4 GB of memory for 189 MB).
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// A piece of a line-oriented file, as the block reader cuts it.
#[derive(Debug, PartialEq, Eq)]
pub enum Block {
    /// Whole records, and the line number of the first line.
    Records { first_line: u64, bytes: Vec<u8> },
    /// A CSV file's last record, which ends inside a quoted field: the line it starts on,
    /// the line of the quote that opened the field, and its text. It is rejected, not read
    /// as one field holding the rest of the file.
    UnclosedQuote {
        first_line: u64,
        quote_line: u64,
        bytes: Vec<u8>,
    },
}

/// Cuts a line-oriented file into blocks that end on a record boundary.
pub struct BlockReader {
    file: File,
    carry: Vec<u8>,
    eof: bool,
    /// CSV (its delimiter): line ends inside quoted fields do not end a record.
    csv_delimiter: Option<u8>,
    /// GBK or GB18030 text, where a delimiter byte above 0x3F may be half a character.
    multibyte: bool,
    /// Bytes read at a time.
    block_bytes: usize,
    /// The most bytes a record may take (`MAX_RECORD_BYTES`; tests make it small).
    max_record_bytes: usize,
    /// The file's last record, when it ends inside a quote: handed out after the records
    /// before it.
    unclosed: Option<Block>,
    pub next_line: u64,
    pub hasher: blake3::Hasher,
    pub bytes_read: u64,
}

impl BlockReader {
    /// Opens `path`, consumes `skip_lines` lines (and the header when `header`), and returns
    /// the reader plus the header line's bytes (BOM stripped).
    pub fn open(
        path: &Path,
        skip_lines: usize,
        header: bool,
        csv_delimiter: Option<u8>,
    ) -> Result<(BlockReader, Option<Vec<u8>>)> {
        Self::open_in_blocks_of(
            path,
            skip_lines,
            header,
            csv_delimiter,
            BLOCK_BYTES,
            MAX_RECORD_BYTES,
        )
    }

    /// `open`, reading `block_bytes` at a time and refusing records longer than
    /// `max_record_bytes` (tests make both small).
    fn open_in_blocks_of(
        path: &Path,
        skip_lines: usize,
        header: bool,
        csv_delimiter: Option<u8>,
        block_bytes: usize,
        max_record_bytes: usize,
    ) -> Result<(BlockReader, Option<Vec<u8>>)> {
        let file = File::open(path).map_err(|e| Error::input(path, format!("cannot open: {e}")))?;
        let mut r = BlockReader {
            file,
            carry: Vec::new(),
            eof: false,
            csv_delimiter,
            multibyte: false,
            block_bytes,
            max_record_bytes,
            unclosed: None,
            next_line: 1,
            hasher: blake3::Hasher::new(),
            bytes_read: 0,
        };
        r.fill(path)?;
        if r.carry.starts_with(b"\xEF\xBB\xBF") {
            r.carry.drain(..3);
        }
        for _ in 0..skip_lines {
            r.take_line(path)?;
        }
        let header_line = if header {
            let h = r.take_line(path)?;
            if h.is_none() {
                return Err(Error::input(path, "the file is empty: no header line"));
            }
            h
        } else {
            None
        };
        Ok((r, header_line))
    }

    /// The text is GBK or GB18030 (see `csv_scan`).
    pub fn set_multibyte(&mut self, multibyte: bool) {
        self.multibyte = multibyte;
    }

    fn fill(&mut self, path: &Path) -> Result<usize> {
        if self.eof {
            return Ok(0);
        }
        let start = self.carry.len();
        // read_to_end fills spare capacity without zeroing it first.
        self.carry.reserve(self.block_bytes);
        let got = (&mut self.file)
            .take(self.block_bytes as u64)
            .read_to_end(&mut self.carry)
            .map_err(|e| Error::input(path, format!("read error: {e}")))?;
        if got == 0 {
            self.eof = true;
        }
        self.hasher.update(&self.carry[start..]);
        self.bytes_read += got as u64;
        Ok(got)
    }

    /// The next line (banner or header), without its line end: LF, CRLF or a lone CR.
    fn take_line(&mut self, path: &Path) -> Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = memchr::memchr2(b'\n', b'\r', &self.carry) {
                // A CR at the end of what was read: an LF may follow in the next read.
                if self.carry[i] == b'\r' && i + 1 == self.carry.len() && self.fill(path)? > 0 {
                    continue;
                }
                let crlf = self.carry[i] == b'\r' && self.carry.get(i + 1) == Some(&b'\n');
                let mut line: Vec<u8> = self.carry.drain(..i + 1 + crlf as usize).collect();
                line.truncate(i);
                self.next_line += 1;
                return Ok(Some(line));
            }
            if self.eof {
                if self.carry.is_empty() {
                    return Ok(None);
                }
                self.next_line += 1;
                return Ok(Some(std::mem::take(&mut self.carry)));
            }
            if self.carry.len() >= self.max_record_bytes {
                return Err(self.oversized_record(path));
            }
            self.fill(path)?;
        }
    }

    /// The next block of whole records, or the file's last record when it ends inside a
    /// quoted field; `None` at the end of the file.
    pub fn next_block(&mut self, path: &Path) -> Result<Option<Block>> {
        loop {
            if self.carry.len() >= self.block_bytes || self.eof {
                break;
            }
            if self.fill(path)? == 0 {
                break;
            }
        }
        if self.carry.is_empty() {
            return Ok(self.unclosed.take());
        }
        let cut = loop {
            if self.eof {
                break self.last_cut();
            }
            if let Some(i) = self.record_boundary() {
                break i + 1;
            }
            // One record larger than a block: read on until it ends, within the cap.
            if self.carry.len() >= self.max_record_bytes {
                return Err(self.oversized_record(path));
            }
            self.fill(path)?;
        };
        let rest = self.carry.split_off(cut);
        let bytes = std::mem::replace(&mut self.carry, rest);
        let first_line = self.next_line;
        self.next_line += count_line_ends(&bytes);
        if bytes.is_empty() {
            return Ok(self.unclosed.take());
        }
        Ok(Some(Block::Records { first_line, bytes }))
    }

    /// At the end of the file: where its last records end. A last CSV record that ends
    /// inside a quoted field is set aside as `unclosed` (the csv crate would read it as a
    /// record whose field holds the rest of the file).
    fn last_cut(&mut self) -> usize {
        let Some(d) = self.csv_delimiter else {
            return self.carry.len();
        };
        if memchr::memchr(b'"', &self.carry).is_none() {
            return self.carry.len();
        }
        let scan = csv_scan(&self.carry, d, self.multibyte);
        let Some(quote) = scan.open_quote else {
            return self.carry.len();
        };
        let start = scan.last_record_end.map_or(0, |i| i + 1);
        let first_line = self.next_line + count_line_ends(&self.carry[..start]);
        self.unclosed = Some(Block::UnclosedQuote {
            first_line,
            quote_line: first_line + count_line_ends(&self.carry[start..quote]),
            bytes: self.carry.split_off(start),
        });
        start
    }

    /// The error for a record (or line) that runs on past `max_record_bytes`.
    fn oversized_record(&self, path: &Path) -> Error {
        let cap = if self.max_record_bytes >= 1 << 20 {
            format!("{} MiB", self.max_record_bytes >> 20)
        } else {
            format!("{} bytes", self.max_record_bytes)
        };
        let open_quote = self
            .csv_delimiter
            .and_then(|d| csv_scan(&self.carry, d, self.multibyte).open_quote);
        let message = match open_quote {
            Some(q) => format!(
                "line {}: a record runs on past {cap} without ending; the quote opened on line {} \
                 is probably never closed",
                self.next_line,
                self.next_line + count_line_ends(&self.carry[..q])
            ),
            None => format!(
                "line {}: a line runs on past {cap} without a line end",
                self.next_line
            ),
        };
        Error::input(path, message)
    }

    /// Index of the last line end that ends a record (the carry starts at a record start).
    fn record_boundary(&self) -> Option<usize> {
        match self.csv_delimiter {
            Some(d) if memchr::memchr(b'"', &self.carry).is_some() => {
                csv_scan(&self.carry, d, self.multibyte).last_record_end
            }
            _ => last_line_end(&self.carry),
        }
    }

    pub fn checksum(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
}

/// Whether the byte at `i` ends a line: an LF, or a CR that no LF follows (classic Mac
/// files). A CR that is the last byte counts: blocks never end between a CR and its LF.
pub fn is_line_end(buf: &[u8], i: usize) -> bool {
    buf[i] == b'\n' || (buf[i] == b'\r' && buf.get(i + 1) != Some(&b'\n'))
}

/// Lines ended in `buf` (LF, CRLF and lone CR each end one).
pub fn count_line_ends(buf: &[u8]) -> u64 {
    memchr::memchr2_iter(b'\n', b'\r', buf)
        .filter(|&i| is_line_end(buf, i))
        .count() as u64
}

/// The lines of a block without their line ends (LF, CRLF or a lone CR); the piece after
/// the last line end comes last, empty when the block ends with one.
pub fn split_lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(buf);
    std::iter::from_fn(move || {
        let b = rest?;
        match memchr::memchr2(b'\n', b'\r', b) {
            Some(i) => {
                let crlf = b[i] == b'\r' && b.get(i + 1) == Some(&b'\n');
                rest = Some(&b[i + 1 + crlf as usize..]);
                Some(&b[..i])
            }
            None => {
                rest = None;
                Some(b)
            }
        }
    })
}

/// The last line end in `buf` that is surely one: a CR at the very end waits for the next
/// read, which may bring its LF.
fn last_line_end(buf: &[u8]) -> Option<usize> {
    let mut end = buf.len();
    while let Some(i) = memchr::memrchr2(b'\n', b'\r', &buf[..end]) {
        if buf[i] == b'\n' || buf.get(i + 1).is_some_and(|b| *b != b'\n') {
            return Some(i);
        }
        end = i;
    }
    None
}

/// What a quote-aware scan of CSV text (starting at a record start) found.
#[derive(Debug, PartialEq, Eq)]
struct CsvScan {
    /// The last line end that ends a record.
    last_record_end: Option<usize>,
    /// When the text ends inside a quoted field: where the quote that opened it is.
    open_quote: Option<usize>,
}

/// Scans CSV text as the `csv` crate reads it: a quote opens a quoted field only at the start
/// of a field (a quote inside an unquoted field, as in `5" pipe`, is text), `""` inside
/// quotes is a quote, and a lone `\r` ends a record too. Counting every quote instead put the
/// cut inside a quoted field after such a stray quote, splitting a record in two.
///
/// In GBK and GB18030 text (`multibyte`) a delimiter byte above 0x3F may be the second byte
/// of a character, and a quote after such a character is text.
fn csv_scan(buf: &[u8], delimiter: u8, multibyte: bool) -> CsvScan {
    let mut in_quotes = false;
    let mut opened_at = 0;
    let mut last = None;
    let mut skip_to = 0;
    for i in memchr::memchr3_iter(b'"', b'\n', b'\r', buf) {
        if i < skip_to {
            continue;
        }
        match buf[i] {
            b'"' if in_quotes => {
                if buf.get(i + 1) == Some(&b'"') {
                    skip_to = i + 2; // an escaped quote
                } else {
                    in_quotes = false;
                }
            }
            b'"' => {
                in_quotes = i == 0
                    || matches!(buf[i - 1], b'\n' | b'\r')
                    || (buf[i - 1] == delimiter
                        && !(multibyte && delimiter > 0x3f && !gbk_char_starts_at(buf, i - 1)));
                opened_at = i;
            }
            _ if in_quotes => {}
            b'\n' => last = Some(i),
            // A lone CR; a CR before LF waits for the LF (and one at the end for the next read).
            _ => {
                if buf.get(i + 1).is_some_and(|b| *b != b'\n') {
                    last = Some(i);
                }
            }
        }
    }
    CsvScan {
        last_record_end: last,
        open_quote: in_quotes.then_some(opened_at),
    }
}

/// Whether a character of GBK or GB18030 text starts at `at`, walking from the start of its
/// line (line ends are ASCII and never part of a character; `buf` starts at a record start).
fn gbk_char_starts_at(buf: &[u8], at: usize) -> bool {
    let mut i = memchr::memrchr2(b'\n', b'\r', &buf[..at]).map_or(0, |k| k + 1);
    while i < at {
        let at = |k: usize| buf.get(i + k).copied().unwrap_or(0);
        i += match buf[i] {
            0x00..=0x80 | 0xff => 1,
            // GB18030's four-byte form: digit, lead byte, digit. A lead byte before a digit
            // that does not complete one is malformed; the decoder (WHATWG) then takes the
            // lead byte alone and reads on from the digit.
            _ if at(1).is_ascii_digit()
                && (0x81..=0xfe).contains(&at(2))
                && at(3).is_ascii_digit() =>
            {
                4
            }
            _ if at(1).is_ascii_digit() => 1,
            // A trail byte is 0x40..=0xFE but 0x7F; else the lead byte stands alone.
            _ if matches!(at(1), 0x40..=0x7e | 0x80..=0xfe) => 2,
            _ => 1,
        };
    }
    i == at
}

/// Maps contract columns to field positions from a header's names. Lists every missing
/// column; `names_from` says where the names are (`line 1: the header`, `the Parquet file`).
pub fn map_header(
    contract: &Contract,
    header: &[String],
    path: &Path,
    names_from: &str,
) -> Result<Vec<Option<usize>>> {
    let norm = |s: &str| s.trim_matches(super::clean::is_space).to_string();
    let names: Vec<String> = header.iter().map(|h| norm(h)).collect();
    let mut mapping = Vec::new();
    let mut missing = Vec::new();
    let mut twice = Vec::new();
    for c in &contract.columns {
        let want = c.source_name();
        let mut exact: Vec<usize> = (0..names.len()).filter(|&i| names[i] == want).collect();
        if exact.is_empty() {
            // Found ignoring case: `AMOUNT` and `Amount` are as ambiguous as two `amount`s.
            exact = (0..names.len())
                .filter(|&i| names[i].eq_ignore_ascii_case(want))
                .collect();
        }
        if exact.len() > 1 {
            twice.push(format!(
                "{want:?} (fields {})",
                exact
                    .iter()
                    .map(|i| (i + 1).to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ));
        }
        let pos = names
            .iter()
            .position(|h| h == want)
            .or_else(|| names.iter().position(|h| h.eq_ignore_ascii_case(want)));
        match pos {
            Some(p) => mapping.push(Some(p)),
            None => {
                missing.push(format!("{want:?} (column `{}`)", c.name));
                mapping.push(None);
            }
        }
    }
    if !twice.is_empty() {
        // Reading the first silently may read the wrong one (an export with two `amount`s).
        return Err(Error::input(
            path,
            format!(
                "{names_from} names a column the contract reads more than once: {}; rename \
                 one upstream, or read by position (header = false, from = N)",
                twice.join(", ")
            ),
        ));
    }
    if !missing.is_empty() {
        // A line none of whose fields is a column of the contract may be data (a source that
        // lost its header): with PII columns declared, its values are not repeated, since
        // errors go to logs, the ledger and reports.
        let maybe_pii = names_from.contains("header")
            && mapping.iter().all(Option::is_none)
            && contract.columns.iter().any(|c| c.pii.is_some());
        let has = if !maybe_pii {
            format!("it has: {}", names.join(", "))
        } else {
            format!(
                "none of its {} fields is a column of the contract (their values are not shown: \
                 the line may be data holding PII; a source without a header needs `header = \
                 false`)",
                names.len()
            )
        };
        return Err(Error::input(
            path,
            format!("{names_from} has no column {}; {has}", missing.join(", ")),
        ));
    }
    Ok(mapping)
}

/// Mapping for header-less CSV: `from` is a 1-based field number, else the column's position.
pub fn map_positions(contract: &Contract) -> Result<Vec<Option<usize>>> {
    let mut problems = Vec::new();
    let mapping = contract
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| match &c.from {
            None => Some(i),
            Some(f) => match f.parse::<usize>() {
                Ok(n) if n > 0 => Some(n - 1),
                _ => {
                    problems.push(format!(
                        "`columns` ({}): with header = false, `from` must be a 1-based field number, not {f:?}",
                        c.name
                    ));
                    None
                }
            },
        })
        .collect();
    if problems.is_empty() {
        Ok(mapping)
    } else {
        Err(Error::Invalid {
            what: format!("contract {}", contract.file.display()),
            problems,
        })
    }
}

/// Parses a header line with the CSV rules (quotes, delimiter) and the file's encoding.
pub fn parse_header(
    line: &[u8],
    delimiter: u8,
    enc: Encoding,
    path: &Path,
    line_no: u64,
) -> Result<Vec<String>> {
    // Decoded before it is split: in GBK a delimiter byte such as `|` may be half a character.
    let text = decode(line, enc).ok_or_else(|| {
        Error::input(
            path,
            format!(
                "line {line_no}: header bytes are not valid {}",
                encoding_name(enc)
            ),
        )
    })?;
    if text.chars().all(super::clean::is_space) {
        // Else the error listed the columns the header lacks, and "it has: " nothing.
        return Err(Error::input(
            path,
            format!(
                "line {line_no}: the header line is blank; when the header comes after blank \
                 or banner lines, set `skip_lines` to the number of lines before it"
            ),
        ));
    }
    let mut fields = Vec::new();
    super::csv_record::Records::new(text.as_bytes(), delimiter).next_into(&mut fields);
    Ok(fields
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect())
}

/// The fixed-width layout of a contract (inline fields or the layout file).
pub fn fixed_layout(project_root: &Path, contract: &Contract) -> Result<Vec<FixedField>> {
    if !contract.source.fields.is_empty() {
        return Ok(contract.source.fields.clone());
    }
    let rel = contract.source.layout.as_deref().unwrap_or_default();
    let path = if Path::new(rel).is_absolute() {
        PathBuf::from(rel)
    } else {
        project_root.join(rel)
    };
    super::contract::read_layout(&path)
}

/// Mapping of contract columns to layout fields by name; every unknown field is listed.
pub fn map_fixed(contract: &Contract, layout: &[FixedField]) -> Result<Vec<Option<usize>>> {
    let mut missing = Vec::new();
    let mapping = contract
        .columns
        .iter()
        .map(|c| {
            let p = layout.iter().position(|f| f.name == c.source_name());
            if p.is_none() {
                missing.push(format!("{:?} (column `{}`)", c.source_name(), c.name));
            }
            p
        })
        .collect();
    if missing.is_empty() {
        Ok(mapping)
    } else {
        Err(Error::Invalid {
            what: format!("contract {}", contract.file.display()),
            problems: vec![format!(
                "the fixed-width layout has no field {}; it has: {}",
                missing.join(", "),
                layout
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        })
    }
}

/// serde_json's message without its " at line L column C" (lines of one record, not of the
/// file: an NDJSON record on line 2 said "line 1").
pub fn json_error_text(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((message, _)) => message.to_string(),
        None => text,
    }
}

/// Renders a JSON value as the source text of a field.
pub fn json_field(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

/// The value at a dotted path (`addr.city`, `items.0.sku`): `Ok(None)` when a key is absent;
/// a null on the way is the field's null. `Err` when a part of the path holds no object (a
/// string at `addr`): the length of the path before that part, and what it holds.
fn json_path<'v>(
    root: &'v serde_json::Value,
    dotted: &str,
) -> std::result::Result<Option<&'v serde_json::Value>, (usize, &'static str)> {
    use serde_json::Value;
    let mut at = root;
    let mut offset = 0;
    for part in dotted.split('.') {
        at = match at {
            Value::Object(m) => match m.get(part) {
                Some(v) => v,
                None => return Ok(None),
            },
            Value::Array(items) => match part.parse::<usize>() {
                Ok(i) => match items.get(i) {
                    Some(v) => v,
                    None => return Ok(None),
                },
                Err(_) => return Err((offset.max(1) - 1, json_kind(at))),
            },
            Value::Null => return Ok(Some(at)),
            _ => return Err((offset.max(1) - 1, json_kind(at))),
        };
        offset += part.len() + 1;
    }
    Ok(Some(at))
}

/// Which columns' source fields the records of a JSON or NDJSON file hold. A field no record
/// holds is a misspelt `from` or a field renamed upstream, not a column of NULLs (a CSV
/// header without the column fails the same way).
#[derive(Debug, Clone, Default)]
pub struct FieldPresence {
    /// Per column: a record could hold its field (an object; for a field of the exploded
    /// elements, an element).
    pub looked: Vec<bool>,
    /// Per column: a record held it (null included).
    pub found: Vec<bool>,
}

impl FieldPresence {
    pub fn new(columns: usize) -> FieldPresence {
        FieldPresence {
            looked: vec![false; columns],
            found: vec![false; columns],
        }
    }

    pub fn merge(&mut self, other: &FieldPresence) {
        for (a, b) in self.looked.iter_mut().zip(&other.looked) {
            *a |= *b;
        }
        for (a, b) in self.found.iter_mut().zip(&other.found) {
            *a |= *b;
        }
    }

    /// The error for a file whose records lack a column's field altogether, if any.
    pub fn missing_error(&self, contract: &Contract, path: &Path) -> Option<Error> {
        let missing: Vec<String> = contract
            .columns
            .iter()
            .enumerate()
            // Only fields the contract counts on: a required column, or one mapped by `from`.
            // An optional field may be absent everywhere (producers that leave out nulls).
            .filter(|(i, c)| self.looked[*i] && !self.found[*i] && (c.required || c.from.is_some()))
            .map(|(_, c)| format!("{:?} (column `{}`)", c.source_name(), c.name))
            .collect();
        (!missing.is_empty()).then(|| {
            Error::input(
                path,
                format!(
                    "no record has the field {}: a misspelt `from`, or a field renamed \
                     upstream (a field that is null in some records is fine)",
                    missing.join(", ")
                ),
            )
        })
    }
}

/// Splits one JSON record into rows (several with `explode`), fields aligned to columns;
/// notes in `presence` which columns' fields the record holds.
pub fn json_rows(
    contract: &Contract,
    record: &serde_json::Value,
    record_no: u64,
    raw: &str,
    out: &mut Vec<RawRow>,
    presence: &mut FieldPresence,
) {
    let reject = |column: Option<String>, reason: String| RawRow {
        record: record_no,
        raw: raw.to_string(),
        fields: Vec::new(),
        error: Some(reason),
        error_column: column,
    };
    if !record.is_object() {
        out.push(reject(
            None,
            format!("expected a JSON object, found {}", json_kind(record)),
        ));
        return;
    }
    // A row's fields, or the column whose value cannot be read, and why. `elem`: the exploded
    // element (its index and value) whose fields the columns under `explode` read.
    let mut lookup = |elem: Option<(usize, &serde_json::Value)>,
                      explode: Option<&str>|
     -> std::result::Result<Vec<Option<String>>, (String, String)> {
        let mut fields = Vec::with_capacity(contract.columns.len());
        // The first problem; the other columns are still looked up (for `presence`).
        let mut problem: Option<(String, String)> = None;
        for (i, c) in contract.columns.iter().enumerate() {
            let name = c.source_name();
            let under = explode.and_then(|p| name.strip_prefix(p)?.strip_prefix('.'));
            let (root, path, root_name) = match (under, elem) {
                (Some(rest), Some((k, e))) => (e, rest, Some((explode.unwrap_or_default(), k))),
                // An empty or missing array: its elements' fields are null, and unknown.
                (Some(_), None) => {
                    fields.push(None);
                    continue;
                }
                (None, _) => (record, name, None),
            };
            presence.looked[i] = true;
            let value = match json_path(root, path) {
                Ok(v) => v,
                Err((before, found)) => {
                    // The record has something there: it is rejected, not missing the field.
                    presence.found[i] = true;
                    let place = match (root_name, before) {
                        (Some((p, k)), 0) => format!("element {k} of `{p}`"),
                        (Some((p, k)), n) => format!("`{}` in element {k} of `{p}`", &path[..n]),
                        (None, n) => format!("`{}`", &path[..n]),
                    };
                    problem.get_or_insert_with(|| {
                        (
                            c.name.clone(),
                            format!(
                                "{}: expected an object at {place} to read `{name}` from, \
                                 found {found}",
                                c.name
                            ),
                        )
                    });
                    None
                }
            };
            presence.found[i] |= value.is_some();
            if c.ty != super::contract::ColumnType::Float
                && value.and_then(inexact_integer).is_some()
            {
                problem.get_or_insert_with(|| {
                    (
                        c.name.clone(),
                        format!(
                            "{}: a JSON number with more digits than JSON numbers keep \
                             exactly (beyond 64 bits); send it as a string",
                            c.name
                        ),
                    )
                });
            }
            fields.push(value.and_then(json_field));
        }
        match problem {
            Some(p) => Err(p),
            None => Ok(fields),
        }
    };
    let row = |result: std::result::Result<Vec<Option<String>>, (String, String)>| match result {
        Ok(fields) => RawRow {
            record: record_no,
            raw: raw.to_string(),
            fields,
            error: None,
            error_column: None,
        },
        Err((column, reason)) => reject(Some(column), reason),
    };
    let Some(path) = contract.source.explode.as_deref() else {
        out.push(row(lookup(None, None)));
        return;
    };
    match json_path(record, path) {
        Ok(Some(serde_json::Value::Array(items))) if !items.is_empty() => {
            for (k, item) in items.iter().enumerate() {
                out.push(row(lookup(Some((k, item)), Some(path))));
            }
        }
        Ok(None | Some(serde_json::Value::Null) | Some(serde_json::Value::Array(_))) => {
            out.push(row(lookup(None, Some(path))))
        }
        Ok(Some(other)) => out.push(reject(
            None,
            format!(
                "field {path:?} should be an array to explode, found {}",
                json_kind(other)
            ),
        )),
        Err((before, found)) => out.push(reject(
            None,
            format!(
                "expected an object at `{}` to explode `{path}` from, found {found}",
                &path[..before]
            ),
        )),
    }
}

/// A whole number the JSON reader could not keep exactly: beyond 64 bits it becomes a float
/// (`62220212345678901234` read as `6.22202123456789e+19`), which is no account or ICCID.
fn inexact_integer(v: &serde_json::Value) -> Option<()> {
    let serde_json::Value::Number(n) = v else {
        return None;
    };
    let f = n.as_f64().filter(|_| n.is_f64())?;
    (f.fract() == 0.0 && f.abs() >= 9_007_199_254_740_992.0).then_some(())
}

pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Reads a JSON document (an array of records, or an object holding one at `records_path`).
/// Each record is kept as its source text (a reject's `raw` is what the file says, not a
/// re-serialisation: `99999999999999999999` stayed that, not `1e+20`) and parsed on its own, so
/// that a record serde_json cannot hold (a number beyond the float range) is one reject rather
/// than the end of the document.
pub fn read_json_document(path: &Path, contract: &Contract) -> Result<(Vec<RawRow>, String, u64)> {
    use serde_json::value::RawValue;
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let checksum = blake3::hash(&bytes).to_hex().to_string();
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let malformed = |e: serde_json::Error| {
        Error::input(
            path,
            format!(
                "malformed JSON at line {} column {}: {e}; expected a JSON array of records",
                e.line(),
                e.column()
            ),
        )
    };
    let doc: &RawValue = serde_json::from_slice(body).map_err(malformed)?;
    let mut records = doc;
    if let Some(p) = contract.source.records_path.as_deref() {
        for part in p.split('.') {
            // A part is a key of an object, or an index into an array (`results.0.items`).
            let field = serde_json::from_str::<HashMap<String, &RawValue>>(records.get())
                .ok()
                .and_then(|m| m.get(part).copied())
                .or_else(|| {
                    let i: usize = part.parse().ok()?;
                    serde_json::from_str::<Vec<&RawValue>>(records.get())
                        .ok()?
                        .get(i)
                        .copied()
                });
            records = field.ok_or_else(|| {
                Error::input(
                    path,
                    format!("no field {p:?} (records_path) in the JSON document"),
                )
            })?;
        }
    }
    let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(records.get()) else {
        let found = serde_json::from_str::<serde_json::Value>(records.get())
            .map(|v| json_kind(&v))
            .unwrap_or("a value serde_json cannot hold");
        return Err(Error::input(
            path,
            format!(
                "expected a JSON array of records{}, found {found}",
                contract
                    .source
                    .records_path
                    .as_deref()
                    .map(|p| format!(" at {p:?}"))
                    .unwrap_or_default(),
            ),
        ));
    };
    let mut rows = Vec::with_capacity(items.len());
    let mut presence = FieldPresence::new(contract.columns.len());
    for (i, item) in items.iter().enumerate() {
        let record_no = i as u64 + 1;
        match serde_json::from_str::<serde_json::Value>(item.get()) {
            Ok(v) => json_rows(
                contract,
                &v,
                record_no,
                item.get(),
                &mut rows,
                &mut presence,
            ),
            Err(e) => rows.push(RawRow {
                record: record_no,
                raw: item.get().to_string(),
                fields: Vec::new(),
                error: Some(format!(
                    "malformed JSON record at column {}: {}",
                    e.column(),
                    json_error_text(&e)
                )),
                error_column: None,
            }),
        }
    }
    if let Some(e) = presence.missing_error(contract, path) {
        return Err(e);
    }
    Ok((rows, checksum, bytes.len() as u64))
}

/// A worksheet's values, and the positions of its cells with a formula but no value.
type SheetValues = (calamine::Range<calamine::Data>, HashSet<(u32, u32)>);

/// A worksheet's values, and the cells holding a formula without a cached value (files
/// written by openpyxl or pandas and never opened in Excel), which calamine reads as empty.
/// For xlsx both come from one pass over the sheet (formulas are noted, not expanded); such
/// cells are in the range, as empty cells. Other workbooks (xls, xlsb, ods) always hold
/// values.
fn sheet_values(
    wb: &mut calamine::Sheets<std::io::BufReader<File>>,
    sheet: &str,
) -> std::result::Result<SheetValues, String> {
    use calamine::{Cell, Data, DataRef, Range, Reader, Sheets, XlsxError};
    let Sheets::Xlsx(xlsx) = wb else {
        return wb
            .worksheet_range(sheet)
            .map(|r| (r, HashSet::new()))
            .map_err(|e| e.to_string());
    };
    let mut reader = match xlsx.worksheet_cells_reader(sheet) {
        Ok(r) => r,
        // A chart sheet: no cells, as calamine's own range.
        Err(XlsxError::NotAWorksheet(_)) => return Ok((Range::default(), HashSet::new())),
        Err(e) => return Err(e.to_string()),
    };
    let mut cells = Vec::new();
    let mut uncached = HashSet::new();
    while let Some(c) = reader
        .next_cell_with_formula_metadata()
        .map_err(|e| e.to_string())?
    {
        match c.value {
            DataRef::Empty if c.formula.is_some() => {
                uncached.insert(c.pos);
                cells.push(Cell::new(c.pos, Data::Empty));
            }
            DataRef::Empty => {}
            v => cells.push(Cell::new(c.pos, v.into())),
        }
    }
    Ok((Range::from_sparse(cells), uncached))
}

/// Reads an xlsx worksheet; record numbers are Excel row numbers (the header is row 1).
/// `skip_lines` and field numbers (`from = "N"` without a header) count from the sheet's row
/// 1 and column A, wherever its first used cell is.
pub fn read_xlsx(path: &Path, contract: &Contract) -> Result<(Vec<RawRow>, String, u64)> {
    use calamine::{open_workbook_auto, Data, Reader};
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let checksum = blake3::hash(&bytes).to_hex().to_string();
    let mut wb = open_workbook_auto(path)
        .map_err(|e| Error::input(path, format!("not a readable Excel workbook: {e}")))?;
    let names = wb.sheet_names().to_vec();
    let sheet = match &contract.source.sheet {
        Some(s) => {
            if !names.contains(s) {
                return Err(Error::input(
                    path,
                    format!(
                        "no worksheet named {s:?}; the workbook has: {}",
                        names.join(", ")
                    ),
                ));
            }
            s.clone()
        }
        None => names
            .first()
            .cloned()
            .ok_or_else(|| Error::input(path, "the workbook has no worksheet"))?,
    };
    let (range, uncached) = sheet_values(&mut wb, &sheet)
        .map_err(|e| Error::input(path, format!("worksheet {sheet:?}: {e}")))?;
    // The range starts at the first used cell: rows and columns before it are empty.
    let (start_row, start_col) = range.start().unwrap_or((0, 0));
    let skip = contract
        .source
        .skip_lines
        .saturating_sub(start_row as usize);
    let mut iter = range.rows().enumerate().skip(skip);
    // Date-times render as dates at midnight, but with their time for a datetime column
    // (`%Y-%m-%d %H:%M:%S` refused exactly the midnight rows); by range column.
    let mut with_time: Vec<bool> = Vec::new();
    let cell = |d: &Data, with_time: bool| -> std::result::Result<Option<String>, String> {
        Ok(match d {
            Data::Empty => None,
            Data::String(s) => Some(s.clone()),
            Data::Int(i) => Some(i.to_string()),
            Data::Float(f) => Some(if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else {
                f.to_string()
            }),
            Data::Bool(b) => Some(b.to_string()),
            Data::DateTime(dt) => Some(excel_date_time(dt, with_time)),
            // ISO cells (`t="d"`) in the form of Excel's serial dates: `2024-03-01` for a day,
            // `2024-03-01 13:45:00` with a time (`…T00:00:00` failed a `date` column).
            Data::DateTimeIso(s) => Some(excel_iso_date_time(s, with_time)),
            Data::DurationIso(s) => Some(s.clone()),
            Data::Error(e) => return Err(e.to_string()),
        })
    };
    let mapping: Vec<Option<usize>> = if contract.source.header {
        let Some((i, header)) = iter.next() else {
            return Err(Error::input(
                path,
                format!("worksheet {sheet:?} is empty: no header row"),
            ));
        };
        let names: Vec<String> = header
            .iter()
            .map(|d| cell(d, false).ok().flatten().unwrap_or_default())
            .collect();
        let row = start_row as u64 + i as u64 + 1;
        map_header(contract, &names, path, &format!("row {row}: the header"))?
    } else {
        // Field N is sheet column N; a column before the range's first is empty throughout.
        map_positions(contract)?
            .into_iter()
            .map(|m| m.and_then(|p| p.checked_sub(start_col as usize)))
            .collect()
    };
    // A datetime column whose formats are all dates (midnight meant) reads the date form.
    let reads_time = |c: &super::contract::Column| {
        c.formats.is_empty()
            || c.formats.iter().any(|f| {
                ["%H", "%T", "%I", "%k", "%l", "%R", "%X", "%r", "%c", "%+"]
                    .iter()
                    .any(|d| f.contains(d))
            })
    };
    for (c, m) in contract.columns.iter().zip(&mapping) {
        if let (Some(j), super::contract::ColumnType::Datetime) = (m, c.ty) {
            if !reads_time(c) {
                continue;
            }
            if *j >= with_time.len() {
                with_time.resize(j + 1, false);
            }
            with_time[*j] = true;
        }
    }
    // The contract columns' cells holding a formula without a cached value, by sheet row.
    let mut uncached_read: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for &(r, col) in &uncached {
        let j = (col - start_col) as usize;
        if let Some(c) = mapping.iter().position(|m| *m == Some(j)) {
            uncached_read.entry(r).or_default().push(c);
        }
    }
    let mut rows = Vec::new();
    for (i, r) in iter {
        let sheet_row = start_row + i as u32;
        let unread = uncached_read.get(&sheet_row);
        if unread.is_none() && r.iter().all(|d| matches!(d, Data::Empty)) {
            continue;
        }
        let record = sheet_row as u64 + 1;
        let mut error = None;
        let mut error_column = None;
        if let Some(cols) = unread {
            let c = cols.iter().min().copied().unwrap_or_default();
            let name = contract.columns[c].name.clone();
            error = Some(format!(
                "{name}: the cell holds a formula without a cached value (the file was not \
                 saved by Excel); open and save the file in Excel, or export values"
            ));
            error_column = Some(name);
        }
        let mut values = Vec::with_capacity(r.len());
        let mut raw_cells = Vec::with_capacity(r.len());
        for (j, d) in r.iter().enumerate() {
            match cell(d, with_time.get(j).copied().unwrap_or(false)) {
                Ok(v) => {
                    raw_cells.push(v.clone().unwrap_or_default());
                    values.push(v);
                }
                Err(excel_error) => {
                    // Only a cell the contract reads rejects its row.
                    if let Some(c) = mapping.iter().position(|m| *m == Some(j)) {
                        if error.is_none() {
                            let name = contract.columns[c].name.clone();
                            error = Some(format!(
                                "{name}: the cell holds the Excel error {excel_error}"
                            ));
                            error_column = Some(name);
                        }
                    }
                    raw_cells.push(excel_error);
                    values.push(None);
                }
            }
        }
        let raw = raw_cells.join(",");
        let fields = mapping
            .iter()
            .map(|m| m.and_then(|j| values.get(j).cloned().flatten()))
            .collect();
        rows.push(RawRow {
            record,
            raw,
            fields,
            error,
            error_column,
        });
    }
    Ok((rows, checksum, bytes.len() as u64))
}

/// An ISO date-time cell as `excel_date_time` renders serial dates.
fn excel_iso_date_time(s: &str, with_time: bool) -> String {
    let t = s.replacen('T', " ", 1);
    let t = t.strip_suffix('Z').unwrap_or(&t);
    let t = t.split_once('.').map_or(t, |(whole, _)| whole);
    match t.strip_suffix(" 00:00:00") {
        Some(day) if !with_time => day.to_string(),
        // A day alone, read into a datetime column: its midnight.
        None if with_time && t.len() == 10 => format!("{t} 00:00:00"),
        _ => t.to_string(),
    }
}

/// An Excel date cell to `YYYY-MM-DD`, or `YYYY-MM-DD HH:MM:SS` when it has a time (to the
/// nearest second); a duration cell to its number of days. calamine knows the workbook's
/// epoch (1900 or 1904) and Excel's phantom 1900-02-29; the time comes from the fraction.
fn excel_date_time(dt: &calamine::ExcelDateTime, with_time: bool) -> String {
    let (y, m, d, h, mi, sec, ms) = dt.to_ymd_hms_milli();
    let at = chrono::NaiveDate::from_ymd_opt(y.into(), m.into(), d.into())
        .and_then(|date| date.and_hms_milli_opt(h.into(), mi.into(), sec.into(), ms.into()));
    let Some(at) = at.filter(|_| !dt.is_duration()) else {
        return dt.as_f64().to_string();
    };
    // To the nearest second, carrying into the next day: calamine already carried a serial
    // a hair before midnight into its day (adding our own rounded fraction on top of its date
    // put such times a day late).
    let at = {
        use chrono::Timelike;
        (at + chrono::Duration::milliseconds(500))
            .with_nanosecond(0)
            .expect("zero nanoseconds")
    };
    if at.time() == chrono::NaiveTime::MIN && !with_time {
        at.format("%Y-%m-%d").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

/// Reads a Parquet source; every column is rendered as text and cleaned like any other.
/// Record numbers are 1-based row numbers in the file.
pub fn read_parquet(path: &Path, contract: &Contract) -> Result<(Vec<RawRow>, String, u64)> {
    use polars::prelude::*;
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let checksum = blake3::hash(&bytes).to_hex().to_string();
    let len = bytes.len() as u64;
    // polars-parquet panics on some corrupt footers (an unwrap on a None): that is bad
    // input (exit 3), not a bug of ours (exit 5).
    let not_readable =
        |why: String| Error::input(path, format!("not a readable Parquet file ({why})"));
    let (df, names) = crate::error::catch_library_panic(|| -> Result<(DataFrame, Vec<String>)> {
        let mut reader = ParquetReader::new(std::io::Cursor::new(bytes));
        let schema = reader.schema().map_err(|e| not_readable(e.to_string()))?;
        let all: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
        let mapping = map_header(contract, &all, path, "the Parquet file")?;
        // Only the contract's columns: another one may be of a type that has no text form
        // (a list, binary that is not UTF-8), and the contract does not read it.
        let mut read: Vec<usize> = mapping.iter().flatten().copied().collect();
        read.sort_unstable();
        read.dedup();
        let df = reader
            .with_projection(Some(read.clone()))
            .finish()
            .map_err(|e| not_readable(e.to_string()))?;
        Ok((df, read.iter().map(|&i| all[i].clone()).collect()))
    })
    .map_err(not_readable)??;
    let mapping = map_header(contract, &names, path, "the Parquet file")?;
    let mut text_cols = Vec::with_capacity(names.len());
    // Records holding bytes that are not UTF-8 in a binary column the contract reads as text:
    // each is rejected, naming the column, rather than failing the whole source.
    let mut not_utf8: BTreeMap<usize, String> = BTreeMap::new();
    for (j, c) in df.columns().iter().enumerate() {
        let series = c.as_materialized_series();
        if matches!(series.dtype(), DataType::Binary | DataType::BinaryOffset) {
            let bin = series.cast(&DataType::Binary).map_err(|e| {
                Error::input(path, format!("column {:?}: cannot read: {e}", c.name()))
            })?;
            let column = contract
                .columns
                .iter()
                .zip(&mapping)
                .find(|(_, m)| **m == Some(j))
                .map(|(col, _)| col.name.clone())
                .unwrap_or_else(|| c.name().to_string());
            let text: StringChunked = bin
                .binary()
                .expect("cast to binary")
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.map(|b| match std::str::from_utf8(b) {
                        Ok(t) => t.to_string(),
                        Err(_) => {
                            not_utf8.entry(i).or_insert_with(|| column.clone());
                            String::from_utf8_lossy(b).into_owned()
                        }
                    })
                })
                .collect();
            text_cols.push(text.with_name(c.name().clone()).into_series());
            continue;
        }
        // Timestamps as `2026-01-02 03:04:05` (a fraction only when there is one), the form
        // of the default formats and of `%Y-%m-%d %H:%M:%S`; a plain cast wrote `.000000`.
        // polars panics on a date or timestamp beyond chrono's range (date32 2147483647).
        let text = crate::error::catch_library_panic(|| match series.dtype() {
            DataType::Datetime(_, _) => series
                .datetime()
                .and_then(|d| d.to_string("%Y-%m-%d %H:%M:%S%.f"))
                .map(|ca| ca.into_series()),
            _ => series.cast(&DataType::String),
        });
        let s = text
            .map_err(|panic| panic.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| {
                Error::input(
                    path,
                    format!("column {:?}: cannot read as text: {e}", c.name()),
                )
            })?;
        text_cols.push(s);
    }
    let cas: Vec<&StringChunked> = text_cols
        .iter()
        .map(|s| s.str().expect("cast to string"))
        .collect();
    let mut rows = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let values: Vec<Option<&str>> = cas.iter().map(|ca| ca.get(i)).collect();
        let raw = serde_json::Value::Object(
            names
                .iter()
                .zip(&values)
                .map(|(n, v)| {
                    (
                        n.clone(),
                        v.map(|s| serde_json::Value::String(s.to_string()))
                            .unwrap_or(serde_json::Value::Null),
                    )
                })
                .collect(),
        )
        .to_string();
        let error_column = not_utf8.get(&i).cloned();
        rows.push(RawRow {
            record: i as u64 + 1,
            raw,
            fields: mapping
                .iter()
                .map(|m| m.and_then(|j| values[j].map(str::to_string)))
                .collect(),
            error: error_column
                .as_ref()
                .map(|c| format!("{c}: holds bytes that are not valid UTF-8")),
            error_column,
        });
    }
    Ok((rows, checksum, len))
}

pub fn is_line_format(f: Format) -> bool {
    matches!(f, Format::Csv | Format::Ndjson | Format::FixedWidth)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block of a file: `(first line, bytes, the quote line of an unclosed record)`.
    fn blocks(r: &mut BlockReader, p: &Path) -> Vec<(u64, Vec<u8>, Option<u64>)> {
        let mut out = Vec::new();
        while let Some(b) = r.next_block(p).unwrap() {
            out.push(match b {
                Block::Records { first_line, bytes } => (first_line, bytes, None),
                Block::UnclosedQuote {
                    first_line,
                    quote_line,
                    bytes,
                } => (first_line, bytes, Some(quote_line)),
            });
        }
        out
    }

    #[test]
    fn blocks_end_on_record_boundaries_even_with_quoted_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        let mut text = String::from("\u{feff}id,note\n");
        for i in 0..200_000 {
            text.push_str(&format!("{i},\"multi\nline {i}\"\n"));
        }
        std::fs::write(&p, &text).unwrap();
        let (mut r, header) = BlockReader::open(&p, 0, true, Some(b',')).unwrap();
        assert_eq!(header.unwrap(), b"id,note");
        let mut total = 0;
        let mut expected_line = 2;
        for (first, block, unclosed) in blocks(&mut r, &p) {
            assert_eq!((first, unclosed), (expected_line, None));
            expected_line += memchr::memchr_iter(b'\n', &block).count() as u64;
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(&block[..]);
            for rec in rdr.byte_records() {
                let rec = rec.unwrap();
                assert_eq!(rec.len(), 2);
                total += 1;
            }
        }
        assert_eq!(total, 200_000);
    }

    /// Records of `bytes` as the csv crate reads them in one piece.
    fn csv_records(bytes: &[u8], delimiter: u8) -> Vec<Vec<Vec<u8>>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(bytes)
            .byte_records()
            .map(|r| r.unwrap().iter().map(<[u8]>::to_vec).collect())
            .collect()
    }

    #[test]
    fn blocks_cut_where_the_csv_crate_ends_records() {
        // Random text dense in quotes (stray ones too), delimiters and line ends of all
        // kinds, cut into small blocks: the blocks hold exactly the records of the whole,
        // and a last record that ends inside a quote comes alone, marked.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        let mut next = crate::ingest::test_rng(0x9e37_79b9_7f4a_7c15u64);
        let alphabet: &[u8] = b"ab5 \";;\"\n\n\r\"x,,;\"";
        let mut unclosed_cases = 0;
        for case in 0..2000 {
            let delimiter = if case % 2 == 0 { b',' } else { b';' };
            let len = (next() % 400) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            std::fs::write(&p, &text).unwrap();
            let block = 1 + (next() % 40) as usize;
            let (mut r, _) =
                BlockReader::open_in_blocks_of(&p, 0, false, Some(delimiter), block, 1 << 20)
                    .unwrap();
            let mut got = Vec::new();
            let mut line = 1;
            let all = blocks(&mut r, &p);
            for (i, (first, bytes, unclosed)) in all.iter().enumerate() {
                assert_eq!(*first, line, "case {case}");
                if let Some(quote_line) = unclosed {
                    assert_eq!(i, all.len() - 1, "case {case}: the unclosed record is last");
                    assert_eq!(csv_records(bytes, delimiter).len(), 1, "case {case}");
                    assert!(*quote_line >= line, "case {case}");
                    unclosed_cases += 1;
                }
                line += count_line_ends(bytes);
                got.extend(csv_records(bytes, delimiter));
            }
            assert_eq!(
                got,
                csv_records(&text, delimiter),
                "case {case}, block {block}: {:?}",
                String::from_utf8_lossy(&text)
            );
        }
        assert!(unclosed_cases > 100, "{unclosed_cases}");
    }

    #[test]
    fn gbk_text_is_split_on_characters_not_bytes() {
        // `墊` is 0x89 0x7C in GBK: its second byte is the `|` delimiter, and a quote after it
        // is text, not the opening of a quoted field running to the next line.
        let mut text = encoding_rs::GBK.encode("1|墊\"x|y\n2|a|b\n").0.into_owned();
        assert_eq!(&text[2..4], b"\x89|");
        assert!(gbk_char_starts_at(&text, 2) && !gbk_char_starts_at(&text, 3));
        assert_eq!(
            csv_scan(&text, b'|', true).last_record_end,
            Some(text.len() - 1)
        );
        assert_eq!(csv_scan(&text, b'|', true).open_quote, None);
        assert!(csv_scan(&text, b'|', false).open_quote.is_some());
        // A lead byte before a digit that starts no four-byte character stands alone, as the
        // decoder reads it: the `|` after `\x81\x30` is a delimiter, and its quote opens.
        assert!(gbk_char_starts_at(b"\x81\x30|\"", 2));
        assert!(gbk_char_starts_at(b"\x81\x30\x81\x30|", 4));
        assert!(!gbk_char_starts_at(b"\x81\x30\x81\x30|", 2));
        // A byte that is not GBK becomes 0xFF where a lossy decoding puts U+FFFD.
        text.extend_from_slice(b"3|\x81\x20|z");
        let marked = decode_marking_invalid(&text, Encoding::Gbk);
        assert_eq!(
            String::from_utf8_lossy(&marked),
            lossy(&text, Encoding::Gbk)
        );
        assert_eq!(marked.iter().filter(|b| **b == 0xFF).count(), 1);
        assert!(marked.ends_with(b"3|\xFF |z"));
    }

    #[test]
    fn gbk_blocks_cut_where_the_decoded_text_ends_records() {
        // Random GBK text dense in characters whose second byte is the `|` delimiter (墊),
        // quotes and line ends, cut into small blocks: each block, decoded and split, holds
        // exactly the records of the whole decoded text.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.csv");
        let mut next = crate::ingest::test_rng(0x0123_4567_89ab_cdefu64);
        let pieces = ["墊", "a", "|", "\"", "\n", "\r\n", "億", "x"];
        let split = |bytes: &[u8]| {
            let text = decode(bytes, Encoding::Gbk).unwrap();
            let mut r = crate::ingest::csv_record::Records::new(text.as_bytes(), b'|');
            let mut fields = Vec::new();
            let mut out = Vec::new();
            while r.next_into(&mut fields).is_some() {
                out.push(fields.iter().map(|f| f.to_vec()).collect::<Vec<_>>());
            }
            out
        };
        for case in 0..500 {
            let len = (next() % 120) as usize;
            let text: String = (0..len)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            let bytes = encoding_rs::GBK.encode(&text).0.into_owned();
            std::fs::write(&p, &bytes).unwrap();
            let block = 1 + (next() % 24) as usize;
            let (mut r, _) =
                BlockReader::open_in_blocks_of(&p, 0, false, Some(b'|'), block, 1 << 20).unwrap();
            r.set_multibyte(true);
            let mut got = Vec::new();
            for (_, b, _) in blocks(&mut r, &p) {
                got.extend(split(&b));
            }
            assert_eq!(got, split(&bytes), "case {case}, block {block}: {text:?}");
        }
    }

    #[test]
    fn lone_cr_line_ends_cut_blocks_too() {
        // Without quotes and without LF, blocks still end on records (not one huge block),
        // and every lone CR counts as a line.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cr.csv");
        let text: String = (0..200).map(|i| format!("{i},x\r")).collect();
        std::fs::write(&p, &text).unwrap();
        let (mut r, _) =
            BlockReader::open_in_blocks_of(&p, 0, false, Some(b','), 64, 1 << 20).unwrap();
        let (mut count, mut got, mut line) = (0, Vec::new(), 1);
        for (first, bytes, _) in blocks(&mut r, &p) {
            assert!(bytes.len() < 200, "a block of {} bytes", bytes.len());
            assert_eq!(first, line);
            line += count_line_ends(&bytes);
            count += 1;
            got.extend(csv_records(&bytes, b','));
        }
        assert!(count > 10);
        assert_eq!(line, 201);
        assert_eq!(got, csv_records(text.as_bytes(), b','));
    }

    #[test]
    fn lone_cr_ends_banner_and_header_lines_and_fixed_width_lines() {
        // Regression: the header was read up to the first LF, i.e. the whole file of a
        // classic-Mac CSV, and a fixed-width file of lone CRs was one record.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mac.csv");
        std::fs::write(&p, "banner\rid,amount\ra,1\rb,2\r\nc,3\r").unwrap();
        for block in [2, 4096] {
            let (mut r, header) =
                BlockReader::open_in_blocks_of(&p, 1, true, Some(b','), block, 1 << 20).unwrap();
            assert_eq!(header.unwrap(), b"id,amount");
            let all = blocks(&mut r, &p);
            assert_eq!(all[0].0, 3, "the first record is on line 3");
            let records: Vec<_> = all
                .iter()
                .flat_map(|(_, b, _)| csv_records(b, b','))
                .collect();
            assert_eq!(records.len(), 3, "block {block}");
        }
        let (mut r, _) = BlockReader::open(&p, 0, false, None).unwrap();
        let lines: Vec<Vec<u8>> = blocks(&mut r, &p)
            .iter()
            .flat_map(|(_, b, _)| split_lines(b).map(<[u8]>::to_vec).collect::<Vec<_>>())
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            lines,
            [&b"banner"[..], b"id,amount", b"a,1", b"b,2", b"c,3"]
        );
        assert_eq!(count_line_ends(b"a\rb\r\nc\n\r"), 4);
    }

    #[test]
    fn an_unclosed_quote_at_the_end_is_set_apart_naming_its_line() {
        // Regression: `1,"runaway` then more lines was read as one clean record holding the
        // rest of the file.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.csv");
        std::fs::write(&p, "a,b\n0,ok\n\n1,\"runaway\nxx,y\r\nzz,y\n").unwrap();
        for block in [3, 4096] {
            let (mut r, _) =
                BlockReader::open_in_blocks_of(&p, 0, true, Some(b','), block, 1 << 20).unwrap();
            let all = blocks(&mut r, &p);
            let (first, bytes, unclosed) = all.last().unwrap();
            assert_eq!((*first, *unclosed), (4, Some(4)), "block {block}: {all:?}");
            assert_eq!(bytes, b"1,\"runaway\nxx,y\r\nzz,y\n");
            let before: Vec<_> = all[..all.len() - 1]
                .iter()
                .flat_map(|(_, b, _)| csv_records(b, b','))
                .collect();
            assert_eq!(before, [vec![b"0".to_vec(), b"ok".to_vec()]]);
        }
        // The quote may open on a later line of its record.
        std::fs::write(&p, "1,x,y\n2,\"ok\nline\",\"b\"\"\nc").unwrap();
        let (mut r, _) = BlockReader::open(&p, 0, false, Some(b',')).unwrap();
        let (first, _, unclosed) = blocks(&mut r, &p).pop().unwrap();
        assert_eq!((first, unclosed), (2, Some(3)));
    }

    #[test]
    fn a_record_beyond_the_cap_fails_naming_the_quote() {
        // Regression: the block grew to the whole file (1.4 GB of memory for 189 MB).
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.csv");
        let mut text = String::from("a,b\n1,x\n2,\"runaway\n");
        for _ in 0..1000 {
            text.push_str("xxxxxxxxxxxxxxxxxxxx,y\n");
        }
        std::fs::write(&p, &text).unwrap();
        let (mut r, _) = BlockReader::open_in_blocks_of(&p, 0, true, Some(b','), 64, 4096).unwrap();
        let err = loop {
            match r.next_block(&p) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("no error"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, Error::Input { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("big.csv")
                && msg.contains("line 3")
                && msg.contains("quote opened on line 3")
                && msg.contains("4096 bytes"),
            "{msg}"
        );
        assert!(r.carry.capacity() < 3 * 4096, "{}", r.carry.capacity());
        // A line format without line ends: the same cap.
        std::fs::write(&p, "x".repeat(10_000)).unwrap();
        let (mut r, _) = BlockReader::open_in_blocks_of(&p, 0, false, None, 64, 4096).unwrap();
        let msg = r.next_block(&p).unwrap_err().to_string();
        assert!(
            msg.contains("line 1: a line runs on past 4096 bytes"),
            "{msg}"
        );
    }

    #[test]
    fn a_stray_quote_does_not_split_a_later_quoted_record() {
        let text = b"1,5\" pipe,1\n2,\"multi\nline\",2\n3,x,3\n";
        let cut = csv_scan(text, b',', false).last_record_end.unwrap();
        assert_eq!(&text[..=cut], text.as_slice());
        // Cut before the end only where a record ends.
        let cut = csv_scan(&text[..20], b',', false).last_record_end.unwrap();
        assert_eq!(cut, 11);
    }

    #[test]
    fn gbk_decoding_and_errors() {
        let (bytes, _, _) = encoding_rs::GBK.encode("张三,男");
        assert_eq!(decode(&bytes, Encoding::Gbk).unwrap(), "张三,男");
        assert!(decode(b"\xff\xff", Encoding::Gbk).is_none());
        assert!(decode(b"\xff", Encoding::Utf8).is_none());
    }

    #[test]
    fn a_date_beyond_chronos_range_is_an_input_error() {
        use polars::prelude::{DataFrame, DataType, NamedFrom, Series};
        // Regression: polars panicked casting date32 2147483647 to text (exit 5).
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.parquet");
        let d = Series::new("d".into(), [i32::MAX])
            .cast(&DataType::Date)
            .unwrap();
        let mut df = DataFrame::new(1, vec![d.into()]).unwrap();
        crate::warehouse::parquet::write_frame(&p, &mut df, &[]).unwrap();
        let t: toml::Table = toml::from_str(
            "name = 'x'\n[source]\npath = 'd.parquet'\nformat = 'parquet'\n\
             [[columns]]\nname = 'd'\ntype = 'date'\n",
        )
        .unwrap();
        let contract = Contract::from_table(&t, Path::new("jobs/x.toml")).unwrap();
        let e = read_parquet(&p, &contract).unwrap_err();
        assert!(matches!(e, Error::Input { .. }), "{e}");
        assert!(e.to_string().contains("cannot read as text"), "{e}");
    }

    /// Regression: a CSV that lost its header line had its first data line (a phone, a name,
    /// an ID card, all PII) repeated in the error, and so in logs, the ledger and reports.
    #[test]
    fn a_header_that_is_a_data_line_is_not_repeated() {
        let t: toml::Table = toml::from_str(
            "name = 'x'\n[source]\npath = 'x.csv'\nformat = 'csv'\n\
             [[columns]]\nname = 'phone'\ntype = 'string'\npii = 'tokenize'\n\
             [[columns]]\nname = 'name'\ntype = 'string'\n",
        )
        .unwrap();
        let contract = Contract::from_table(&t, Path::new("jobs/x.toml")).unwrap();
        let data = ["13812345678".to_string(), "张三丰".to_string()];
        let e = map_header(&contract, &data, Path::new("x.csv"), "line 1: the header")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("13812345678") && !e.contains("张三丰"), "{e}");
        assert!(e.contains("none of its 2 fields"), "{e}");
        // A real header that misses a column still lists its names.
        let header = ["phone".to_string(), "full_name".to_string()];
        let e = map_header(&contract, &header, Path::new("x.csv"), "line 1: the header")
            .unwrap_err()
            .to_string();
        assert!(e.contains("it has: phone, full_name"), "{e}");
        // Regression: a name given twice bound silently to the first field.
        let header = ["phone".to_string(), "name".to_string(), "phone".to_string()];
        let e = map_header(&contract, &header, Path::new("x.csv"), "line 1: the header")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"phone\" (fields 1 and 3)"), "{e}");
        let header = ["PHONE".to_string(), "name".to_string(), "Phone".to_string()];
        let e = map_header(&contract, &header, Path::new("x.csv"), "line 1: the header")
            .unwrap_err()
            .to_string();
        assert!(e.contains("(fields 1 and 3)"), "{e}");
    }

    /// Regression: one value that is not UTF-8 in a binary column failed the whole source.
    #[test]
    fn parquet_bytes_that_are_not_utf8_reject_their_record() {
        use polars::prelude::{DataFrame, NamedFrom, Series};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.parquet");
        let id = Series::new("id".into(), ["A", "B", "C"]);
        let name = Series::new("name".into(), [&b"ok"[..], &b"\xff\xfe"[..], &b"ok2"[..]]);
        let mut df = DataFrame::new(3, vec![id.into(), name.into()]).unwrap();
        crate::warehouse::parquet::write_frame(&p, &mut df, &[]).unwrap();
        let t: toml::Table = toml::from_str(
            "name = 'x'\n[source]\npath = 'b.parquet'\nformat = 'parquet'\n\
             [[columns]]\nname = 'id'\ntype = 'string'\n\
             [[columns]]\nname = 'who'\nfrom = 'name'\ntype = 'string'\n",
        )
        .unwrap();
        let contract = Contract::from_table(&t, Path::new("jobs/x.toml")).unwrap();
        let (rows, _, _) = read_parquet(&p, &contract).unwrap();
        let errors: Vec<_> = rows.iter().map(|r| r.error_column.as_deref()).collect();
        assert_eq!(errors, [None, Some("who"), None]);
        assert_eq!(rows[2].fields[1].as_deref(), Some("ok2"));
    }

    #[test]
    fn a_corrupt_parquet_file_is_an_input_error_whatever_byte_is_flipped() {
        // Regression: some flips made polars-parquet panic (exit 5 instead of 3).
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        let mut df = polars::df!("id" => [1i64, 2, 3], "s" => ["a", "b", "c"]).unwrap();
        crate::warehouse::parquet::write_frame(&p, &mut df, &[]).unwrap();
        let good = std::fs::read(&p).unwrap();
        let contract: Contract = {
            let t: toml::Table = toml::from_str(
                "name = 'x'\n[source]\npath = 'x.parquet'\nformat = 'parquet'\n\
                 [[columns]]\nname = 'id'\ntype = 'int'\n",
            )
            .unwrap();
            Contract::from_table(&t, Path::new("jobs/x.toml")).unwrap()
        };
        let mut errors = 0;
        for at in 0..good.len() {
            let mut bytes = good.clone();
            bytes[at] ^= 0xff;
            std::fs::write(&p, &bytes).unwrap();
            match read_parquet(&p, &contract) {
                Ok(_) => {}
                Err(Error::Input { message, .. }) => {
                    assert!(
                        message.starts_with("not a readable Parquet file (")
                            || message.contains("has no column"),
                        "{message}"
                    );
                    errors += 1;
                }
                Err(e) => panic!("byte {at}: {e}"),
            }
        }
        assert!(errors > good.len() / 2, "{errors}");
    }

    /// Regression: a 20-digit account written as a JSON number was stored as
    /// `6.22202123456789e+19` in a string column, and a valid ICCID was rejected as invalid.
    #[test]
    fn json_integers_beyond_64_bits_are_rejected_not_rounded() {
        let t: toml::Table = toml::from_str(
            "name = 'x'\n[source]\npath = 'x.ndjson'\nformat = 'ndjson'\n\
             [[columns]]\nname = 'acct'\ntype = 'string'\n\
             [[columns]]\nname = 'amount'\ntype = 'float'\n",
        )
        .unwrap();
        let contract = Contract::from_table(&t, Path::new("jobs/x.toml")).unwrap();
        let rows = |text: &str| {
            let mut out = Vec::new();
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            json_rows(
                &contract,
                &v,
                1,
                text,
                &mut out,
                &mut FieldPresence::new(contract.columns.len()),
            );
            out
        };
        let big = rows(r#"{"acct": 62220212345678901234, "amount": 1.5}"#);
        assert!(big[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("acct: a JSON number"));
        assert_eq!(big[0].error_column.as_deref(), Some("acct"));
        let ok = rows(r#"{"acct": 18446744073709551615, "amount": 62220212345678901234}"#);
        assert_eq!(ok[0].error, None);
        assert_eq!(ok[0].fields[0].as_deref(), Some("18446744073709551615"));
    }

    /// Regressions: a JSON document's rejects showed a re-serialised record (`1e+20` for
    /// `99999999999999999999`), and one number beyond the float range failed the document.
    #[test]
    fn json_document_records_keep_their_text_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(
            &p,
            "{\"data\": {\"items\": [\n {\"acct\": 99999999999999999999, \"amount\": 1},\n \
             {\"acct\": \"a\", \"amount\": 1e400},\n {\"acct\": \"\\u5f20\", \"amount\": 2}]}}",
        )
        .unwrap();
        let t: toml::Table = toml::from_str(
            "name = 'x'\n[source]\npath = 'x.json'\nformat = 'json'\nrecords_path = 'data.items'\n\
             [[columns]]\nname = 'acct'\ntype = 'string'\n\
             [[columns]]\nname = 'amount'\ntype = 'float'\n",
        )
        .unwrap();
        let contract = Contract::from_table(&t, Path::new("jobs/x.toml")).unwrap();
        let (rows, _, _) = read_json_document(&p, &contract).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0].raw,
            r#"{"acct": 99999999999999999999, "amount": 1}"#
        );
        assert!(rows[0].error.is_some());
        assert_eq!(rows[1].raw, r#"{"acct": "a", "amount": 1e400}"#);
        assert!(
            rows[1]
                .error
                .as_deref()
                .unwrap()
                .starts_with("malformed JSON record"),
            "{:?}",
            rows[1].error
        );
        assert_eq!(rows[2].error, None);
        assert_eq!(rows[2].fields[0].as_deref(), Some("张"));
        assert_eq!(rows[2].raw, r#"{"acct": "\u5f20", "amount": 2}"#);
        // A records_path may go through an array by index.
        std::fs::write(
            &p,
            r#"{"results": [{"items": [{"acct": "a", "amount": 1}]}]}"#,
        )
        .unwrap();
        let t: toml::Table = toml::from_str(
            "name = 'x'\n[source]\npath = 'x.json'\nformat = 'json'\nrecords_path = 'results.0.items'\n\
             [[columns]]\nname = 'acct'\ntype = 'string'\n",
        )
        .unwrap();
        let contract = Contract::from_table(&t, Path::new("jobs/x.toml")).unwrap();
        let (rows, _, _) = read_json_document(&p, &contract).unwrap();
        assert_eq!(rows.len(), 1);
    }

    fn contract_of(text: &str) -> Contract {
        let t: toml::Table = toml::from_str(text).unwrap();
        Contract::from_table(&t, Path::new("jobs/x.toml")).unwrap()
    }

    #[test]
    fn xlsx_rows_and_fields_count_from_row_1_and_column_a() {
        // Regression: `skip_lines` counted from the first used row (row 1 empty: the first
        // data row was dropped, not even counted as read), and `from = "N"` from the first
        // used column (column A empty: every field shifted by one).
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.xlsx");
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        ws.write_string(1, 1, "Limits report 2026-11-20").unwrap();
        for (r, (id, amount)) in [("A", 1.0), ("B", 2.0), ("C", 3.0)].iter().enumerate() {
            ws.write_string(r as u32 + 2, 1, *id).unwrap();
            ws.write_number(r as u32 + 2, 2, *amount).unwrap();
        }
        wb.save(&p).unwrap();
        let contract = contract_of(
            "name = 'x'\n[source]\npath = 'x.xlsx'\nformat = 'xlsx'\nheader = false\n\
             skip_lines = 2\n[[columns]]\nname = 'id'\nfrom = '2'\ntype = 'string'\n\
             [[columns]]\nname = 'amount'\nfrom = 3\ntype = 'float'\n\
             [[columns]]\nname = 'spacer'\nfrom = '1'\ntype = 'string'\n",
        );
        let (rows, _, _) = read_xlsx(&p, &contract).unwrap();
        let got: Vec<(u64, Vec<Option<String>>)> =
            rows.into_iter().map(|r| (r.record, r.fields)).collect();
        let row = |id: &str, n: &str| vec![Some(id.to_string()), Some(n.to_string()), None];
        assert_eq!(
            got,
            [(3, row("A", "1")), (4, row("B", "2")), (5, row("C", "3"))]
        );
    }

    #[test]
    fn xlsx_midnight_keeps_its_time_in_a_datetime_column() {
        // Regression: a date-time at exactly midnight was rendered `2024-03-01`, which
        // `%Y-%m-%d %H:%M:%S` refused: exactly the midnight rows were rejected.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.xlsx");
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        let fmt = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
        ws.write_string(0, 0, "at").unwrap();
        ws.write_string(0, 1, "day").unwrap();
        for (r, at) in ["2024-03-01 00:00:00", "2024-03-01 10:30:00"]
            .iter()
            .enumerate()
        {
            let dt = rust_xlsxwriter::ExcelDateTime::parse_from_str(at).unwrap();
            ws.write_datetime_with_format(r as u32 + 1, 0, &dt, &fmt)
                .unwrap();
            ws.write_datetime_with_format(r as u32 + 1, 1, &dt, &fmt)
                .unwrap();
        }
        wb.save(&p).unwrap();
        let contract = contract_of(
            "name = 'x'\n[source]\npath = 't.xlsx'\nformat = 'xlsx'\n\
             [[columns]]\nname = 'at'\ntype = 'datetime'\nformats = ['%Y-%m-%d %H:%M:%S']\n\
             [[columns]]\nname = 'day'\ntype = 'datetime'\nformats = ['%Y-%m-%d']\n",
        );
        let (rows, _, _) = read_xlsx(&p, &contract).unwrap();
        let at: Vec<_> = rows.iter().map(|r| r.fields[0].as_deref()).collect();
        assert_eq!(
            at,
            [Some("2024-03-01 00:00:00"), Some("2024-03-01 10:30:00")]
        );
        // A datetime column read with date formats only reads the date form, as before.
        assert_eq!(rows[0].fields[1].as_deref(), Some("2024-03-01"));
    }

    /// A zip archive of `files`, stored (not compressed): for an xlsx no library writes.
    fn stored_zip(files: &[(&str, &str)]) -> Vec<u8> {
        fn crc32(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in bytes {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ 0xEDB8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let (mut out, mut central) = (Vec::new(), Vec::new());
        for (name, data) in files {
            let (name, data) = (name.as_bytes(), data.as_bytes());
            let offset = out.len() as u32;
            // version, flags, method (stored), time, date (1980-01-01), crc, sizes, lengths.
            let common = |v: &mut Vec<u8>| {
                v.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
                v.extend_from_slice(&crc32(data).to_le_bytes());
                v.extend_from_slice(&(data.len() as u32).to_le_bytes());
                v.extend_from_slice(&(data.len() as u32).to_le_bytes());
                v.extend_from_slice(&(name.len() as u16).to_le_bytes());
                v.extend_from_slice(&[0, 0]);
            };
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            common(&mut out);
            out.extend_from_slice(name);
            out.extend_from_slice(data);
            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&[20, 0]);
            common(&mut central);
            // comment length, disk, internal and external attributes.
            central.extend_from_slice(&[0; 10]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name);
        }
        let at = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&at.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    #[test]
    fn xlsx_formulas_without_a_cached_value_reject_their_row() {
        // Regression: openpyxl and pandas write formulas without their value, which read as
        // empty: a silent NULL (and a row of them was dropped as blank).
        let sheet = r#"<?xml version="1.0" encoding="UTF-8"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
<row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c><c r="B1" t="inlineStr"><is><t>amount</t></is></c><c r="C1" t="inlineStr"><is><t>note</t></is></c></row>
<row r="2"><c r="A2" t="inlineStr"><is><t>a</t></is></c><c r="B2"><f>1+1</f><v>2</v></c></row>
<row r="3"><c r="A3" t="inlineStr"><is><t>b</t></is></c><c r="B3"><f>B2*2</f></c></row>
<row r="4"><c r="A4" t="inlineStr"><is><t>c</t></is></c><c r="B4"><v>5</v></c><c r="C4"><f>B4</f></c></row>
<row r="5"><c r="B5"><f>B4+1</f></c></row>
</sheetData></worksheet>"#;
        let xlsx = stored_zip(&[
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0" encoding="UTF-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
            ),
            (
                "_rels/.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
            ),
            (
                "xl/workbook.xml",
                r#"<?xml version="1.0" encoding="UTF-8"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
            ),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
            ),
            ("xl/worksheets/sheet1.xml", sheet),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.xlsx");
        std::fs::write(&p, xlsx).unwrap();
        let contract = contract_of(
            "name = 'x'\n[source]\npath = 'f.xlsx'\nformat = 'xlsx'\n\
             [[columns]]\nname = 'id'\ntype = 'string'\n\
             [[columns]]\nname = 'amount'\ntype = 'float'\n",
        );
        let (rows, _, _) = read_xlsx(&p, &contract).unwrap();
        let got: Vec<(u64, Option<&str>, Option<&str>)> = rows
            .iter()
            .map(|r| {
                (
                    r.record,
                    r.error_column.as_deref(),
                    r.fields.get(1).cloned().flatten().as_deref().map(|_| "v"),
                )
            })
            .collect();
        // Row 2 has its cached value; rows 3 and 5 are rejected naming the column; row 4's
        // uncached formula is in a column the contract does not read.
        assert_eq!(
            got,
            [
                (2, None, Some("v")),
                (3, Some("amount"), None),
                (4, None, Some("v")),
                (5, Some("amount"), None),
            ],
            "{rows:?}"
        );
        assert!(rows[1]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("formula without a cached value")
                && e.contains("open and save the file in Excel, or export values")));
    }

    #[test]
    fn json_structure_mismatches_reject_the_record() {
        // Regression: an exploded array of scalars gave rows of NULLs, and `addr.city` where
        // `addr` is a string gave NULL.
        let contract = contract_of(
            "name = 'x'\n[source]\npath = 'x.ndjson'\nformat = 'ndjson'\nexplode = 'items'\n\
             [[columns]]\nname = 'id'\ntype = 'int'\n\
             [[columns]]\nname = 'city'\nfrom = 'addr.city'\ntype = 'string'\n\
             [[columns]]\nname = 'sku'\nfrom = 'items.sku'\ntype = 'string'\n",
        );
        let rows = |text: &str| {
            let mut out = Vec::new();
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut presence = FieldPresence::new(3);
            json_rows(&contract, &v, 1, text, &mut out, &mut presence);
            (out, presence)
        };
        let (ok, presence) = rows(r#"{"id":1,"addr":{"city":"SH"},"items":[{"sku":"a"}]}"#);
        assert_eq!(ok[0].error, None);
        assert_eq!(ok[0].fields[1].as_deref(), Some("SH"));
        assert_eq!(presence.found, [true, true, true]);
        let (bad, _) = rows(r#"{"id":2,"addr":"Shanghai","items":[{"sku":"b"}]}"#);
        assert_eq!(bad[0].error_column.as_deref(), Some("city"));
        let e = bad[0].error.as_deref().unwrap();
        assert!(
            e.contains("expected an object at `addr`") && e.contains("found a string"),
            "{e}"
        );
        assert!(!e.contains("Shanghai"), "{e}");
        let (bad, _) = rows(r#"{"id":3,"addr":null,"items":["b",{"sku":"c"}]}"#);
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].error_column.as_deref(), Some("sku"));
        let e = bad[0].error.as_deref().unwrap();
        assert!(
            e.contains("element 0 of `items`") && e.contains("found a string"),
            "{e}"
        );
        // A null parent is the field's null; the second element is fine.
        assert_eq!(bad[1].error, None);
        assert_eq!(bad[1].fields, [Some("3".into()), None, Some("c".into())]);
        // An empty array: a row whose element fields are null, and not looked for.
        let (empty, presence) = rows(r#"{"id":4,"items":[]}"#);
        assert_eq!(empty[0].error, None);
        assert_eq!(presence.looked, [true, true, false]);
        assert_eq!(presence.found, [true, false, false]);
    }

    #[test]
    fn a_json_field_in_no_record_fails_the_file() {
        // Regression: a misspelt `from` (or a field renamed upstream) became a column of
        // NULLs silently, where CSV fails for a header without the column.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(
            &p,
            r#"[{"id": 1, "amt": 5, "note": null}, {"id": 2, "amt": 6}]"#,
        )
        .unwrap();
        let contract = contract_of(
            "name = 'x'\n[source]\npath = 'x.json'\nformat = 'json'\n\
             [[columns]]\nname = 'id'\ntype = 'int'\n\
             [[columns]]\nname = 'amount'\ntype = 'float'\nrequired = true\n\
             [[columns]]\nname = 'note'\ntype = 'string'\n\
             [[columns]]\nname = 'memo'\ntype = 'string'\n",
        );
        let e = read_json_document(&p, &contract).unwrap_err();
        assert!(matches!(e, Error::Input { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("x.json") && msg.contains("\"amount\""),
            "{msg}"
        );
        // `note` is null in one record and absent in the other: present. `memo`, optional
        // and without `from`, may be absent everywhere (producers that leave out nulls).
        assert!(!msg.contains("note") && !msg.contains("memo"), "{msg}");
        let mapped = contract_of(
            "name = 'x'\n[source]\npath = 'x.json'\nformat = 'json'\n\
             [[columns]]\nname = 'id'\ntype = 'int'\n\
             [[columns]]\nname = 'amount'\nfrom = 'amount_cny'\ntype = 'float'\n",
        );
        let e = read_json_document(&p, &mapped).unwrap_err();
        assert!(e.to_string().contains("\"amount_cny\""), "{e}");
        // An empty array holds no records to miss a field.
        std::fs::write(&p, "[]").unwrap();
        assert!(read_json_document(&p, &contract).unwrap().0.is_empty());
    }

    #[test]
    fn excel_iso_cells_read_like_serial_dates() {
        assert_eq!(
            excel_iso_date_time("2024-03-01T00:00:00", false),
            "2024-03-01"
        );
        assert_eq!(
            excel_iso_date_time("2024-03-01T13:45:00.000", false),
            "2024-03-01 13:45:00"
        );
        assert_eq!(excel_iso_date_time("2024-03-01", false), "2024-03-01");
        // For a datetime column, midnight keeps its time.
        assert_eq!(
            excel_iso_date_time("2024-03-01T00:00:00", true),
            "2024-03-01 00:00:00"
        );
        assert_eq!(
            excel_iso_date_time("2024-03-01", true),
            "2024-03-01 00:00:00"
        );
    }

    #[test]
    fn excel_serials() {
        use calamine::{ExcelDateTime, ExcelDateTimeType::DateTime};
        let at = |serial: f64, is_1904: bool| {
            excel_date_time(&ExcelDateTime::new(serial, DateTime, is_1904), false)
        };
        assert_eq!(at(45352.0, false), "2024-03-01");
        assert_eq!(
            excel_date_time(&ExcelDateTime::new(45352.0, DateTime, false), true),
            "2024-03-01 00:00:00"
        );
        assert_eq!(at(45352.5, false), "2024-03-01 12:00:00");
        // Regressions: before Excel's phantom 1900-02-29 dates were a day early, and 1904
        // workbooks four years off.
        assert_eq!(at(1.0, false), "1900-01-01");
        assert_eq!(at(59.0, false), "1900-02-28");
        assert_eq!(at(61.0, false), "1900-03-01");
        assert_eq!(at(43890.0, true), "2024-03-01");
        // Regression: a hair before midnight (float noise) went a day late.
        assert_eq!(at(45000.99999999999, false), "2023-03-16");
        assert_eq!(at(45000.999996, false), "2023-03-16");
        assert_eq!(at(45000.999994, false), "2023-03-15 23:59:59");
        assert_eq!(at(45000.25, false), "2023-03-15 06:00:00");
    }
}

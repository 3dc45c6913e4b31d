//! The ingest pipeline: a reader thread cuts the source into batches, worker threads parse
//! and clean them, and this thread writes them in order into a staged clean partition and a
//! staged rejects partition, and commits both.
//!
//! Memory stays bounded: a few dozen blocks in flight and one row group being assembled. With
//! de-duplication a key pass runs first; its key index (`dedupe.rs`) stays within
//! `[ingest] dedupe_memory_mb` and spills to disk beyond, and only the superseded rows
//! (24 bytes each) are kept for the cleaning pass.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::bounded;
use polars::prelude::*;

use super::clean::{CompiledColumn, Value};
use super::contract::{ColumnType, Contract, Encoding, FixedField, Format, WidthUnit};
use super::csv_record::{Records, Span};
use super::dedupe::{KeyIndex, LoserCursor, Losers, RowKey};
use super::pii::Tokenizer;
use super::readers::{self, Block, FieldCount, FieldPresence, FileCtx, RawBatch, RawRow};
use super::{IngestReport, IngestRequest};
use crate::error::{Context, Error, Result};
use crate::warehouse::parquet::{PartWriter, ROW_GROUP_ROWS};
use crate::warehouse::{Layer, PartitionKey, SourceStamp, Success, Warehouse};

/// Rows per part file: a few files of a few row groups each rather than one huge file.
const PART_ROWS: u64 = 1_000_000;

/// A rejected row: where it came from, what it said, and why it was refused.
#[derive(Debug, Clone)]
pub struct Reject {
    pub file: Arc<str>,
    pub record: u64,
    pub column: Option<String>,
    pub reason: String,
    pub raw: String,
}

enum Builder {
    Str(StringChunkedBuilder),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Date(Vec<Option<i32>>),
    Datetime(Vec<Option<i64>>),
}

impl Builder {
    fn new(ty: ColumnType, rows: usize) -> Builder {
        match ty {
            // Strings go straight into Arrow views: no String per value.
            ColumnType::String => Builder::Str(StringChunkedBuilder::new(PlSmallStr::EMPTY, rows)),
            ColumnType::Int => Builder::Int(Vec::with_capacity(rows)),
            ColumnType::Float => Builder::Float(Vec::with_capacity(rows)),
            ColumnType::Bool => Builder::Bool(Vec::with_capacity(rows)),
            ColumnType::Date => Builder::Date(Vec::with_capacity(rows)),
            ColumnType::Datetime => Builder::Datetime(Vec::with_capacity(rows)),
        }
    }

    fn push(&mut self, v: Value) {
        match (self, v) {
            (Builder::Str(b), v @ (Value::Str(_) | Value::Token(_))) => {
                b.append_value(v.as_str().unwrap_or_default())
            }
            (Builder::Int(b), Value::Int(x)) => b.push(Some(x)),
            (Builder::Float(b), Value::Float(x)) => b.push(Some(x)),
            (Builder::Bool(b), Value::Bool(x)) => b.push(Some(x)),
            (Builder::Date(b), Value::Date(x)) => b.push(Some(x)),
            (Builder::Datetime(b), Value::Datetime(x)) => b.push(Some(x)),
            (b, _) => b.push_null(),
        }
    }

    fn push_null(&mut self) {
        match self {
            Builder::Str(b) => b.append_null(),
            Builder::Int(b) => b.push(None),
            Builder::Float(b) => b.push(None),
            Builder::Bool(b) => b.push(None),
            Builder::Date(b) => b.push(None),
            Builder::Datetime(b) => b.push(None),
        }
    }

    fn take_series(&mut self, name: &str) -> Series {
        let name: PlSmallStr = name.into();
        match self {
            Builder::Str(b) => {
                let done = std::mem::replace(b, StringChunkedBuilder::new(PlSmallStr::EMPTY, 0));
                done.finish().with_name(name).into_series()
            }
            Builder::Int(b) => Series::new(name, std::mem::take(b)),
            Builder::Float(b) => Series::new(name, std::mem::take(b)),
            Builder::Bool(b) => Series::new(name, std::mem::take(b)),
            Builder::Date(b) => Series::new(name, std::mem::take(b))
                .cast(&DataType::Date)
                .expect("i32 to date"),
            Builder::Datetime(b) => Series::new(name, std::mem::take(b))
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
                .expect("i64 to datetime"),
        }
    }
}

/// The result of cleaning one batch.
struct CleanBatch {
    builders: Vec<Builder>,
    /// The good rows as a frame, assembled by the worker (in parallel) from `builders`.
    frame: Option<DataFrame>,
    rows: usize,
    rows_read: u64,
    rejects: Vec<Reject>,
    /// Key pass only: per row whose key and order clean, its key hash, order and location.
    keys: Vec<RowKey>,
    file: Arc<FileCtx>,
    /// Bytes of source text in the batch (line formats).
    bytes: usize,
    /// Position of the batch in the source (the reader's sequence number): with the row's
    /// ordinal in the batch it names a row identically in both passes.
    seq: u64,
    /// Cleaning pass: the batch's superseded rows, walked in row order.
    losers: LoserCursor,
    /// A row's values between cleaning and the builders (kept for its allocation).
    values: Vec<Value<'static>>,
    /// NDJSON: which columns' fields the batch's records hold (checked per file).
    presence: Option<FieldPresence>,
}

/// An emptied vector's allocation for values of another lifetime (same layout): per-row
/// buffers are reused instead of allocated once per row.
fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().map(|_| unreachable!("emptied")).collect()
}

/// Which pass the workers run over the source.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// De-duplication pre-pass: only the key and order columns are cleaned.
    Keys,
    /// Full cleaning.
    Rows,
}

/// A contract's de-duplication rule, resolved once against its columns.
#[derive(Clone)]
struct DedupeSpec {
    /// Column indexes of the key, and of the order column (`keep_latest_by`).
    key_cols: Vec<usize>,
    order_col: Option<usize>,
    /// `dedupe` keeps the latest row; `unique_key` the first.
    keep_latest: bool,
    /// For the rejects: the first key column, and the reason's `(k1, k2)` and ` (latest by X)`.
    reject_column: String,
    key_list: String,
    order_note: String,
}

impl DedupeSpec {
    fn new(c: &Contract) -> Option<DedupeSpec> {
        let (keys, order) = c.dedupe_key()?;
        let position = |name: &str| {
            c.columns
                .iter()
                .position(|x| x.name == name)
                .expect("validated with the contract")
        };
        Some(DedupeSpec {
            key_cols: keys.iter().map(|k| position(k)).collect(),
            order_col: order.map(position),
            keep_latest: c.rules.dedupe.is_some(),
            reject_column: keys[0].clone(),
            key_list: keys.join(", "),
            order_note: order
                .map(|o| format!(" (latest by {o})"))
                .unwrap_or_else(|| " (the first)".into()),
        })
    }
}

/// What the workers share. Each worker runs on its own clone, so that the columns' regexes
/// have a cache per thread (one shared regex made the two workers contend for its cache pool).
#[derive(Clone)]
struct Shared<'a> {
    contract: &'a Contract,
    columns: Vec<CompiledColumn>,
    tokenizer: Option<Tokenizer>,
    delimiter: u8,
    layout: Vec<FixedField>,
    dedupe: Option<DedupeSpec>,
    /// De-duplication runs a pre-pass over the key columns first.
    pass: Pass,
    losers: Option<Arc<Losers>>,
    /// Source paths as written into rejects, by file index.
    file_names: Vec<Arc<str>>,
}

/// Seeded SipHash of key bytes; two seeds give 96 bits against collisions.
fn key_hash(bytes: &[u8], seed: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write_u64(seed);
    h.write(bytes);
    h.finish()
}

impl Shared<'_> {
    /// An empty batch for about `rows` rows (builders sized once: growing them row by row
    /// copied every column's values about log2(rows) times).
    fn new_batch(&self, file: Arc<FileCtx>, seq: u64, rows: usize) -> CleanBatch {
        let rows = if self.pass == Pass::Keys { 0 } else { rows };
        CleanBatch {
            builders: self
                .columns
                .iter()
                .map(|c| Builder::new(c.col.ty, rows))
                .collect(),
            frame: None,
            rows: 0,
            rows_read: 0,
            rejects: Vec::new(),
            keys: Vec::new(),
            file,
            bytes: 0,
            seq,
            losers: self
                .losers
                .as_ref()
                .map(|l| l.batch(seq))
                .unwrap_or_default(),
            values: Vec::with_capacity(self.columns.len()),
            presence: None,
        }
    }

    /// Cleans one record's fields; pushes a row or a reject.
    fn record(
        &self,
        out: &mut CleanBatch,
        line: u64,
        fields: &[Option<&str>],
        raw: &dyn Fn() -> String,
    ) {
        out.rows_read += 1;
        let id = (out.seq << 32) | (out.rows_read - 1);
        if self.pass == Pass::Keys {
            self.record_key(out, line, id, fields);
            return;
        }
        if let (Some((file, at)), Some(d)) = (
            self.losers
                .as_ref()
                .and_then(|l| l.next(&mut out.losers, id)),
            &self.dedupe,
        ) {
            let by = self
                .file_names
                .get(file as usize)
                .cloned()
                .unwrap_or_else(|| Arc::from("?"));
            out.rejects.push(Reject {
                file: out.file.display.clone(),
                record: line,
                column: Some(d.reject_column.clone()),
                reason: format!(
                    "duplicate key ({}); {by} record {at} takes precedence{}",
                    d.key_list, d.order_note
                ),
                raw: raw(),
            });
            return;
        }
        let mut values: Vec<Value> = recycle(std::mem::take(&mut out.values));
        let mut failures: Vec<(usize, String)> = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            match c.clean(fields.get(i).copied().flatten(), self.tokenizer.as_ref()) {
                Ok(v) => values.push(v),
                Err(reason) => {
                    failures.push((i, reason));
                    values.push(Value::Null);
                }
            }
        }
        if !failures.is_empty() {
            let first = failures[0].0;
            let reason = failures
                .iter()
                .map(|(i, r)| format!("{}: {r}", self.columns[*i].col.name))
                .collect::<Vec<_>>()
                .join("; ");
            out.rejects.push(Reject {
                file: out.file.display.clone(),
                record: line,
                column: Some(self.columns[first].col.name.clone()),
                reason,
                raw: raw(),
            });
            out.values = recycle(values);
            return;
        }
        for (b, v) in out.builders.iter_mut().zip(values.drain(..)) {
            b.push(v);
        }
        out.values = recycle(values);
        out.rows += 1;
    }

    /// Pre-pass: the row's key and order, when they clean; a row whose key or order does not
    /// clean takes no part in de-duplication (the full pass rejects it for that reason).
    fn record_key(&self, out: &mut CleanBatch, line: u64, id: u64, fields: &[Option<&str>]) {
        let Some(d) = &self.dedupe else {
            return;
        };
        // The reasons are not kept here: `clean_value` skips withholding their values.
        let clean = |i: usize| {
            self.columns[i].clean_value(fields.get(i).copied().flatten(), self.tokenizer.as_ref())
        };
        let mut bytes = Vec::with_capacity(64);
        for &k in &d.key_cols {
            match clean(k) {
                // A key with a NULL equals no other (as in SQL's UNIQUE): the row is kept.
                Ok(Value::Null) | Err(_) => return,
                Ok(v) => v.key_bytes(&mut bytes),
            }
        }
        // A null order value orders below every other.
        let order = match d.order_col {
            Some(o) => match clean(o) {
                Ok(v) => v.order_key().unwrap_or(0),
                Err(_) => return,
            },
            None => 0,
        };
        out.keys.push(RowKey {
            hash: key_hash(&bytes, 0x5eed_0001),
            check: key_hash(&bytes, 0x5eed_0002) as u32,
            order,
            line,
            id,
        });
    }

    fn reject_whole(&self, out: &mut CleanBatch, line: u64, reason: String, raw: String) {
        self.reject_record(out, line, None, reason, raw);
    }

    /// Rejects a record the reader could not turn into fields, naming the column when the
    /// problem is one column's.
    fn reject_record(
        &self,
        out: &mut CleanBatch,
        line: u64,
        column: Option<String>,
        reason: String,
        raw: String,
    ) {
        out.rows_read += 1;
        out.rejects.push(Reject {
            file: out.file.display.clone(),
            record: line,
            column,
            reason,
            raw,
        });
    }

    fn process(&self, seq: u64, batch: RawBatch) -> CleanBatch {
        let mut out = self.parse(seq, batch);
        if self.pass == Pass::Keys {
            return out;
        }
        let cols: Vec<Column> = out
            .builders
            .iter_mut()
            .zip(&self.columns)
            .map(|(b, c)| b.take_series(&c.col.name).into())
            .collect();
        out.frame =
            Some(DataFrame::new(out.rows, cols).expect("columns of one batch share a height"));
        out
    }

    fn parse(&self, seq: u64, batch: RawBatch) -> CleanBatch {
        match batch {
            RawBatch::Rows { file, rows } => {
                let mut out = self.new_batch(file, seq, rows.len());
                for r in rows {
                    self.process_row(&mut out, r);
                }
                out
            }
            RawBatch::Lines {
                file,
                first_line,
                bytes,
            } => {
                // Rows of about 100 bytes or more: an estimate on the generous side.
                let mut out = self.new_batch(file, seq, bytes.len() / 100 + 16);
                out.bytes = bytes.len();
                match self.contract.source.format {
                    Format::Csv => self.process_csv(&mut out, first_line, &bytes),
                    Format::Ndjson => self.process_ndjson(&mut out, first_line, &bytes),
                    Format::FixedWidth => self.process_fixed(&mut out, first_line, &bytes),
                    _ => unreachable!("documents come as rows"),
                }
                out
            }
        }
    }

    fn process_row(&self, out: &mut CleanBatch, r: RawRow) {
        if let Some(e) = r.error {
            self.reject_record(out, r.record, r.error_column, e, r.raw);
            return;
        }
        let fields: Vec<Option<&str>> = r.fields.iter().map(|f| f.as_deref()).collect();
        let raw = r.raw;
        self.record(out, r.record, &fields, &|| raw.clone());
    }

    fn process_csv(&self, out: &mut CleanBatch, first_line: u64, bytes: &[u8]) {
        let enc = self.contract.source.encoding;
        if enc == Encoding::Utf8 {
            return self.split_csv(out, first_line, bytes, enc, invalid_utf8_at(bytes));
        }
        // GBK and GB18030 text is decoded before it is split: a delimiter byte above 0x3F
        // (`|`, `\`, `@`) may be the second byte of a character (`墊` is 0x89 0x7C in GBK),
        // and splitting the bytes cut such characters in two. Bytes that are not valid in the
        // encoding become a byte that is not UTF-8 either, so that their record is rejected
        // naming its field, as for a UTF-8 source.
        match readers::decode(bytes, enc) {
            // Decoded text is UTF-8 throughout: nothing to look for.
            Some(text) => self.split_csv(out, first_line, text.as_bytes(), enc, Vec::new()),
            None => {
                let marked = readers::decode_marking_invalid(bytes, enc);
                let bad = invalid_utf8_at(&marked);
                self.split_csv(out, first_line, &marked, enc, bad)
            }
        }
    }

    /// Splits and cleans CSV text: UTF-8, but for the sequences that were not valid in the
    /// source's encoding `enc` (named in the reasons), which start at `not_utf8`.
    fn split_csv(
        &self,
        out: &mut CleanBatch,
        first_line: u64,
        bytes: &[u8],
        enc: Encoding,
        not_utf8: Vec<usize>,
    ) {
        let mut records = Records::new(bytes, self.delimiter);
        let mut rec: Vec<Cow<[u8]>> = Vec::new();
        let mapping = out.file.mapping.clone();
        // One validation of the whole block (by the caller) instead of one per field: only
        // the records holding bytes that are not UTF-8 are decoded field by field (to name
        // the bad field). A block without them is the common case.
        let mut next_bad = 0;
        let mut decoded_buf: Vec<Cow<'static, str>> = Vec::new();
        let mut fields_buf: Vec<Option<&'static str>> = Vec::new();
        // The key pass decodes only the fields it cleans.
        let wanted: Option<Vec<bool>> = match (self.pass, &self.dedupe) {
            (Pass::Keys, Some(d)) => {
                let mut w = Vec::new();
                for &k in d.key_cols.iter().chain(d.order_col.iter()) {
                    if let Some(Some(j)) = mapping.get(k) {
                        if *j >= w.len() {
                            w.resize(*j + 1, false);
                        }
                        w[*j] = true;
                    }
                }
                Some(w)
            }
            _ => None,
        };
        let mut lines = LineCounter::new(bytes, first_line);
        while let Some(Span { start: at, end }) = records.next_into(&mut rec) {
            let line = lines.line_at(at);
            let raw_bytes = trim_eol(&bytes[at..end]);
            while not_utf8.get(next_bad).is_some_and(|&p| p < at) {
                next_bad += 1;
            }
            let record_is_utf8 = not_utf8.get(next_bad).is_none_or(|&p| p >= end);
            // A line of blanks between records is a blank line (as in NDJSON), not a record.
            if rec.len() == 1
                && !out.file.fields.is_single()
                && raw_bytes.iter().all(u8::is_ascii_whitespace)
            {
                continue;
            }
            if let Some(reason) = out.file.fields.problem(rec.len()) {
                self.reject_whole(out, line, reason, readers::lossy(raw_bytes, Encoding::Utf8));
                continue;
            }
            let mut decoded: Vec<Cow<str>> = recycle(std::mem::take(&mut decoded_buf));
            let mut bad = None;
            for (j, f) in rec.iter().enumerate() {
                let f: &[u8] = f;
                if wanted
                    .as_ref()
                    .is_some_and(|w| !w.get(j).copied().unwrap_or(false))
                {
                    decoded.push(Cow::Borrowed(""));
                    continue;
                }
                if record_is_utf8 {
                    // SAFETY: the record's bytes are valid UTF-8 (no invalid sequence starts
                    // in them, and none crosses the ASCII line end before them) and the CSV
                    // parser splits them only at ASCII delimiters and quotes, so every field
                    // is valid UTF-8 too.
                    decoded.push(Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(f) }));
                    continue;
                }
                match readers::decode(f, Encoding::Utf8) {
                    Some(s) => decoded.push(s),
                    None => {
                        bad.get_or_insert(j);
                        decoded.push(Cow::Borrowed(""));
                    }
                }
            }
            if let Some(j) = bad {
                // The column the field is read into, when the contract reads it.
                let column = mapping
                    .iter()
                    .position(|m| *m == Some(j))
                    .map(|i| self.columns[i].col.name.clone());
                self.reject_record(
                    out,
                    line,
                    column,
                    format!(
                        "field {} holds bytes that are not valid {}",
                        j + 1,
                        readers::encoding_name(enc)
                    ),
                    readers::lossy(raw_bytes, Encoding::Utf8),
                );
                continue;
            }
            let mut fields: Vec<Option<&str>> = recycle(std::mem::take(&mut fields_buf));
            fields.extend(
                mapping
                    .iter()
                    .map(|m| m.and_then(|j| decoded.get(j).map(|c| c.as_ref()))),
            );
            self.record(out, line, &fields, &|| {
                readers::lossy(raw_bytes, Encoding::Utf8)
            });
            fields_buf = recycle(fields);
            decoded_buf = recycle(decoded);
        }
    }

    fn process_ndjson(&self, out: &mut CleanBatch, first_line: u64, bytes: &[u8]) {
        let enc = self.contract.source.encoding;
        let mut rows = Vec::new();
        let mut presence = FieldPresence::new(self.columns.len());
        for (i, line_bytes) in readers::split_lines(bytes).enumerate() {
            // `split_lines` dropped the line end. A byte order mark starts a line of files
            // joined with `cat` (the reader drops the file's first one only).
            let lb = match enc {
                Encoding::Utf8 => line_bytes
                    .strip_prefix(b"\xEF\xBB\xBF")
                    .unwrap_or(line_bytes),
                _ => line_bytes,
            };
            if lb.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line = first_line + i as u64;
            let Some(text) = readers::decode(lb, enc) else {
                self.reject_whole(
                    out,
                    line,
                    format!("bytes that are not valid {}", readers::encoding_name(enc)),
                    readers::lossy(lb, enc),
                );
                continue;
            };
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => {
                    rows.clear();
                    readers::json_rows(self.contract, &v, line, &text, &mut rows, &mut presence);
                    for r in rows.drain(..) {
                        self.process_row(out, r);
                    }
                }
                Err(e) => self.reject_whole(
                    out,
                    line,
                    format!(
                        "malformed JSON at column {}: {}",
                        e.column(),
                        readers::json_error_text(&e)
                    ),
                    text.into_owned(),
                ),
            }
        }
        out.presence = Some(presence);
    }

    fn process_fixed(&self, out: &mut CleanBatch, first_line: u64, bytes: &[u8]) {
        let enc = self.contract.source.encoding;
        let mapping = out.file.mapping.clone();
        let in_bytes = self.contract.source.width_unit == WidthUnit::Bytes;
        for (i, line_bytes) in readers::split_lines(bytes).enumerate() {
            // `split_lines` dropped the line end.
            let lb = line_bytes;
            if lb.is_empty() {
                continue;
            }
            let line = first_line + i as u64;
            if in_bytes {
                self.fixed_bytes_record(out, line, lb, &mapping);
                continue;
            }
            let Some(text) = readers::decode(lb, enc) else {
                self.reject_whole(
                    out,
                    line,
                    format!("bytes that are not valid {}", readers::encoding_name(enc)),
                    readers::lossy(lb, enc),
                );
                continue;
            };
            // A line of blanks (padding at the end of an export, ASCII or ideographic
            // spaces) is no record, as in CSV.
            if text.chars().all(super::clean::is_space) {
                continue;
            }
            // Exports often strip trailing blanks: a short line reads as if padded, and the
            // fields it lacks are empty (then `required` and type checks decide).
            let chars: Vec<(usize, char)> = text.char_indices().collect();
            // Saturating: the contract bounds start and width, but a panic here would print
            // the line (personal data) to stderr.
            let slice = |f: &FixedField| -> &str {
                let first = f.start.saturating_sub(1);
                let Some(&(a, _)) = chars.get(first) else {
                    return "";
                };
                let b = chars
                    .get(first.saturating_add(f.width))
                    .map(|c| c.0)
                    .unwrap_or(text.len());
                text[a..b].trim_matches(super::clean::is_space)
            };
            let fields: Vec<Option<&str>> = mapping
                .iter()
                .map(|m| m.map(|j| slice(&self.layout[j])))
                .collect();
            self.record(out, line, &fields, &|| text.to_string());
        }
    }

    /// A fixed-width line whose layout counts bytes: each field's bytes are decoded on their
    /// own, so a field that cuts a character in two is named in the reject.
    fn fixed_bytes_record(
        &self,
        out: &mut CleanBatch,
        line: u64,
        lb: &[u8],
        mapping: &[Option<usize>],
    ) {
        let enc = self.contract.source.encoding;
        // The line's text is built only for a reject (a blank check of the decoded line
        // borrows it when it is ASCII, the common case).
        let raw = || readers::lossy(lb, enc);
        if readers::decode(lb, enc).is_some_and(|t| t.chars().all(super::clean::is_space)) {
            return;
        }
        let mut decoded: Vec<Option<Cow<str>>> = Vec::with_capacity(mapping.len());
        for (i, m) in mapping.iter().enumerate() {
            let Some(j) = *m else {
                decoded.push(None);
                continue;
            };
            let f = &self.layout[j];
            let a = f.start.saturating_sub(1).min(lb.len());
            let b = a.saturating_add(f.width).min(lb.len());
            match readers::decode(&lb[a..b], enc) {
                Some(v) => decoded.push(Some(v)),
                None => {
                    let reason = format!(
                        "field {} (bytes {}-{}) is not valid {}: a character cut by the \
                         layout, or bytes that are not text",
                        f.name,
                        f.start,
                        f.start.saturating_add(f.width).saturating_sub(1),
                        readers::encoding_name(enc)
                    );
                    let column = self.columns[i].col.name.clone();
                    self.reject_record(out, line, Some(column), reason, raw());
                    return;
                }
            }
        }
        let fields: Vec<Option<&str>> = decoded
            .iter()
            .map(|d| d.as_deref().map(|s| s.trim_matches(super::clean::is_space)))
            .collect();
        self.record(out, line, &fields, &raw);
    }
}

/// Offsets in `block` where a sequence that is not UTF-8 starts, in order (empty when the
/// whole block is UTF-8). An invalid sequence never spans an ASCII byte.
fn invalid_utf8_at(block: &[u8]) -> Vec<usize> {
    let mut bad = Vec::new();
    let mut at = 0;
    while at < block.len() {
        match simdutf8::compat::from_utf8(&block[at..]) {
            Ok(_) => break,
            Err(e) => {
                let p = at + e.valid_up_to();
                bad.push(p);
                at = p + e.error_len().unwrap_or(block.len() - p).max(1);
            }
        }
    }
    bad
}

/// Line numbers of offsets in a block, asked in increasing order. Lines end at an LF, a CRLF
/// or a lone CR, as the block reader counts them (the csv crate counts LFs only, so a file
/// of classic-Mac line ends was all "line 2").
struct LineCounter<'a> {
    bytes: &'a [u8],
    at: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8], first_line: u64) -> Self {
        LineCounter {
            bytes,
            at: 0,
            line: first_line,
        }
    }

    fn line_at(&mut self, offset: usize) -> u64 {
        if offset > self.at {
            let base = self.at;
            self.line += memchr::memchr2_iter(b'\n', b'\r', &self.bytes[base..offset])
                .filter(|&i| readers::is_line_end(self.bytes, base + i))
                .count() as u64;
            self.at = offset;
        }
        self.line
    }
}

fn trim_eol(b: &[u8]) -> &[u8] {
    let mut e = b.len();
    while e > 0 && (b[e - 1] == b'\n' || b[e - 1] == b'\r') {
        e -= 1;
    }
    &b[..e]
}

/// Consumes cleaned batches in order: data parts and rejects.
struct Sink {
    dir: PathBuf,
    schema: Schema,
    acc: Vec<DataFrame>,
    acc_rows: usize,
    writer: Option<PartWriter>,
    /// Part files started, and rows in the one being written.
    parts: usize,
    part_rows: u64,
    rows_written: u64,
    rows_read: u64,
    rejects: RejectWriter,
}

impl Sink {
    fn take(&mut self, mut b: CleanBatch) -> Result<()> {
        self.rows_read += b.rows_read;
        for r in b.rejects.drain(..) {
            self.rejects.push(r)?;
        }
        if let Some(f) = b.frame.take() {
            if f.height() > 0 {
                self.acc.push(f);
            }
        }
        self.acc_rows += b.rows;
        if self.acc_rows >= ROW_GROUP_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.acc_rows == 0 {
            return Ok(());
        }
        let mut frames = std::mem::take(&mut self.acc).into_iter();
        let mut df = frames.next().expect("rows pending");
        for f in frames {
            df.vstack_mut_owned(f)
                .ctx(|| "assembling a row group".into())?;
        }
        // One row group per flush, not one per worker batch.
        df.rechunk_mut_par();
        if self.writer.is_none() {
            let name = format!("part-{:05}.parquet", self.parts);
            self.writer = Some(PartWriter::create(
                &self.dir.join(&name),
                &self.schema,
                &[],
            )?);
            self.parts += 1;
            self.part_rows = 0;
        }
        let w = self.writer.as_mut().expect("writer");
        w.write(&df)?;
        self.rows_written += self.acc_rows as u64;
        self.part_rows += self.acc_rows as u64;
        self.acc_rows = 0;
        if self.part_rows >= PART_ROWS {
            self.writer.take().expect("writer").finish()?;
        }
        Ok(())
    }

    fn finish_parts(&mut self) -> Result<()> {
        self.flush()?;
        if let Some(w) = self.writer.take() {
            w.finish()?;
        }
        if self.parts == 0 {
            // An empty source still yields a readable, typed, empty table.
            let mut df = DataFrame::empty_with_schema(&self.schema);
            crate::warehouse::parquet::write_frame(
                &self.dir.join("part-00000.parquet"),
                &mut df,
                &[],
            )?;
            self.parts = 1;
        }
        Ok(())
    }
}

/// Rejects are streamed into Parquet in chunks so that a bad file cannot exhaust memory.
struct RejectWriter {
    dir: PathBuf,
    pending: Vec<Reject>,
    writer: Option<PartWriter>,
    count: u64,
}

impl RejectWriter {
    fn schema() -> Schema {
        Schema::from_iter([
            Field::new("source_file".into(), DataType::String),
            Field::new("record".into(), DataType::Int64),
            Field::new("column".into(), DataType::String),
            Field::new("reason".into(), DataType::String),
            Field::new("raw".into(), DataType::String),
        ])
    }

    fn push(&mut self, r: Reject) -> Result<()> {
        self.pending.push(r);
        self.count += 1;
        if self.pending.len() >= 65_536 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let p = std::mem::take(&mut self.pending);
        let n = p.len();
        let cols: Vec<Column> = vec![
            Series::new(
                "source_file".into(),
                p.iter().map(|r| r.file.as_ref()).collect::<Vec<_>>(),
            )
            .into(),
            Series::new(
                "record".into(),
                p.iter().map(|r| r.record as i64).collect::<Vec<_>>(),
            )
            .into(),
            Series::new(
                "column".into(),
                p.iter().map(|r| r.column.as_deref()).collect::<Vec<_>>(),
            )
            .into(),
            Series::new(
                "reason".into(),
                p.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>(),
            )
            .into(),
            Series::new(
                "raw".into(),
                p.iter().map(|r| r.raw.as_str()).collect::<Vec<_>>(),
            )
            .into(),
        ];
        let df = DataFrame::new(n, cols).ctx(|| "assembling rejects".into())?;
        if self.writer.is_none() {
            self.writer = Some(PartWriter::create(
                &self.dir.join("part-00000.parquet"),
                &Self::schema(),
                &[],
            )?);
        }
        self.writer.as_mut().expect("writer").write(&df)
    }

    fn finish(mut self) -> Result<()> {
        self.flush()?;
        match self.writer.take() {
            Some(w) => w.finish().map(|_| ()),
            None => {
                let mut df = DataFrame::empty_with_schema(&Self::schema());
                crate::warehouse::parquet::write_frame(
                    &self.dir.join("part-00000.parquet"),
                    &mut df,
                    &[],
                )
                .map(|_| ())
            }
        }
    }
}

fn clean_schema(contract: &Contract) -> Schema {
    Schema::from_iter(contract.columns.iter().map(|c| {
        let dt = match c.ty {
            ColumnType::String => DataType::String,
            ColumnType::Int => DataType::Int64,
            ColumnType::Float => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Date => DataType::Date,
            ColumnType::Datetime => DataType::Datetime(TimeUnit::Milliseconds, None),
        };
        Field::new(c.name.as_str().into(), dt)
    }))
}

/// The stamps of the source files (those that can be read), named as in `_SUCCESS`.
pub fn source_stamps(root: &Path, files: &[PathBuf]) -> Vec<SourceStamp> {
    files
        .iter()
        .filter_map(|f| SourceStamp::of(display_path(root, f).to_string(), f))
        .collect()
}

fn display_path(root: &Path, p: &Path) -> Arc<str> {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .to_string()
        .into()
}

/// Ingests one source for one date: see the module docs.
pub fn ingest(req: &IngestRequest) -> Result<IngestReport> {
    let started = Instant::now();
    let c = req.contract;
    let root = &req.project.root;
    let files = readers::resolve_files(root, c, req.date, req.vars)?;
    // Taken before reading: a file replaced while it is read is then seen as changed later.
    let stamps = source_stamps(root, &files);
    let tokenizer = if c.needs_pii_key() {
        Some(Tokenizer::new(&req.project.pii_key()?))
    } else {
        None
    };
    let layout = if c.source.format == Format::FixedWidth {
        readers::fixed_layout(root, c)?
    } else {
        Vec::new()
    };
    let mut shared = Shared {
        contract: c,
        columns: c
            .columns
            .iter()
            .map(|col| CompiledColumn::new(col, &c.source.null_values))
            .collect(),
        tokenizer,
        delimiter: c
            .source
            .delimiter
            .as_bytes()
            .first()
            .copied()
            .unwrap_or(b','),
        layout,
        dedupe: DedupeSpec::new(c),
        pass: Pass::Rows,
        losers: None,
        file_names: files.iter().map(|f| display_path(root, f)).collect(),
    };

    let wh = Warehouse::new(&req.project.warehouse_root);
    let key = PartitionKey::instance(req.date, req.vars);
    let staged = wh.stage(Layer::Clean, &c.table, &key, req.run_id)?;
    let staged_rejects = wh.stage(Layer::Rejects, &c.table, &key, req.run_id)?;
    let threads = req.threads.max(1);
    let mut sink = Sink {
        dir: staged.dir().to_path_buf(),
        schema: clean_schema(c),
        acc: Vec::new(),
        acc_rows: 0,
        writer: None,
        parts: 0,
        part_rows: 0,
        rows_written: 0,
        rows_read: 0,
        rejects: RejectWriter {
            dir: staged_rejects.dir().to_path_buf(),
            pending: Vec::new(),
            writer: None,
            count: 0,
        },
    };

    // De-duplication: a pre-pass over the key columns decides which rows lose, so that the
    // cleaning pass writes only survivors (no rewrite of written parts).
    let mut pre_checksum = None;
    if let Some(keep_latest) = shared.dedupe.as_ref().map(|d| d.keep_latest) {
        shared.pass = Pass::Keys;
        let total: u64 = stamps.iter().map(|s| s.bytes).sum();
        let budget = req.project.config.ingest.dedupe_memory_mb << 20;
        let mut index = KeyIndex::new(keep_latest, total, budget, staged.dir().join("_keys"));
        let stats = run_pass(req, &files, &shared, threads, |b| {
            index.take(&b.keys, b.file.index as u32, b.bytes)
        })?;
        pre_checksum = Some(stats.checksum);
        crate::log::debug(
            "the de-duplication pass finished",
            &[
                ("table", c.table.as_str().into()),
                ("seconds", started.elapsed().as_secs_f64().into()),
            ],
        );
        if index.spilled > 0 {
            crate::log::debug(
                "the de-duplication key index spilled to disk",
                &[
                    ("table", c.table.as_str().into()),
                    ("keys", index.spilled.into()),
                ],
            );
        }
        shared.losers = Some(Arc::new(index.finish()?));
        shared.pass = Pass::Rows;
    }

    let source = run_pass(req, &files, &shared, threads, |b| sink.take(b))?;
    if pre_checksum.is_some_and(|c| c != source.checksum) {
        return Err(Error::input(
            &files[0],
            "the source changed while it was being read (its checksum differs between the \
             de-duplication pass and the cleaning pass); ingest it again once it is complete",
        ));
    }
    sink.finish_parts()?;

    let rows_rejected = sink.rejects.count;
    let rows_read = sink.rows_read;
    let rows_written = sink.rows_written;
    debug_assert_eq!(rows_read, rows_written + rows_rejected);
    let reject_dir = staged_rejects.target().to_path_buf();
    sink.rejects.finish()?;
    let source_files: Vec<String> = shared.file_names.iter().map(|f| f.to_string()).collect();
    let extra = serde_json::json!({ "contract_blake3": c.checksum() });
    let success = |rows: u64, columns: Vec<String>| Success {
        rows,
        columns,
        rows_read: Some(rows_read),
        rows_rejected: Some(rows_rejected),
        source_checksum: Some(source.checksum.clone()),
        source_files: source_files.clone(),
        source_stamps: stamps.clone(),
        extra: extra.clone(),
        job: req.job.to_string(),
        run_id: req.run_id.to_string(),
        ..Default::default()
    };
    staged_rejects.commit(success(
        rows_rejected,
        ["source_file", "record", "column", "reason", "raw"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    ))?;
    let rate = if rows_read == 0 {
        0.0
    } else {
        rows_rejected as f64 / rows_read as f64
    };
    if rate > c.rules.max_reject_rate {
        return Err(Error::RejectThreshold {
            table: c.table.clone(),
            read: rows_read,
            rejected: rows_rejected,
            threshold: c.rules.max_reject_rate,
            rejects: reject_dir,
        });
    }
    let partition = staged.commit(success(
        rows_written,
        c.columns.iter().map(|x| x.name.clone()).collect(),
    ))?;
    let bytes_out = crate::warehouse::read_success(&partition)
        .map(|s| s.bytes)
        .unwrap_or(0);
    Ok(IngestReport {
        table: c.table.clone(),
        rows_read,
        rows_written,
        rows_rejected,
        bytes_in: source.bytes,
        bytes_out,
        source_files: files,
        partition,
        rejects: reject_dir,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Runs the reader, the cleaning workers and `consume` (on this thread, in source order)
/// over the source once.
fn run_pass(
    req: &IngestRequest,
    files: &[PathBuf],
    shared: &Shared,
    threads: usize,
    mut consume: impl FnMut(CleanBatch) -> Result<()>,
) -> Result<SourceStats> {
    let abort = AtomicBool::new(false);
    let cancelled =
        || abort.load(Ordering::Relaxed) || req.cancel.is_some_and(|f| f.load(Ordering::Relaxed));
    let (produced, consumed) = std::thread::scope(|s| {
        let (raw_tx, raw_rx) = bounded::<(u64, RawBatch)>(threads + 1);
        // Room for the batches the workers clean while this thread encodes a row group
        // (about 8 per worker): with `threads + 1` they stalled, and the 2-core bench ran at
        // 1.7 cores instead of 2 (17.5 -> 14.6 s for 1.1 GB).
        let (out_tx, out_rx) = bounded::<(u64, CleanBatch)>(threads * 8);
        for _ in 0..threads {
            let raw_rx = raw_rx.clone();
            let out_tx = out_tx.clone();
            let worker = shared.clone();
            s.spawn(move || {
                for (seq, b) in raw_rx {
                    if out_tx.send((seq, worker.process(seq, b))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(raw_rx);
        drop(out_tx);
        let producer = s.spawn(|| produce(req, files, shared, raw_tx, &cancelled));
        let mut pending: BTreeMap<u64, CleanBatch> = BTreeMap::new();
        let mut next = 0u64;
        let mut result = Ok(());
        // NDJSON: per file, which columns' fields its records hold.
        let mut presence: BTreeMap<usize, (PathBuf, FieldPresence)> = BTreeMap::new();
        for (seq, b) in out_rx {
            if result.is_err() {
                continue; // drain so that the workers and the reader can stop
            }
            pending.insert(seq, b);
            while let Some(b) = pending.remove(&next) {
                next += 1;
                if let Some(p) = &b.presence {
                    presence
                        .entry(b.file.index)
                        .or_insert_with(|| {
                            (b.file.path.clone(), FieldPresence::new(p.looked.len()))
                        })
                        .1
                        .merge(p);
                }
                if let Err(e) = consume(b) {
                    abort.store(true, Ordering::Relaxed);
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok() {
            if let Some(e) = presence
                .values()
                .find_map(|(path, p)| p.missing_error(req.contract, path))
            {
                result = Err(e);
            }
        }
        (producer.join().expect("reader thread"), result)
    });
    let source = produced?;
    consumed?;
    if req.cancel.is_some_and(|f| f.load(Ordering::Relaxed)) {
        return Err(Error::Interrupted);
    }
    Ok(source)
}

struct SourceStats {
    checksum: String,
    bytes: u64,
}

/// The reader: opens each file, maps its header, and sends batches to the workers.
fn produce(
    req: &IngestRequest,
    files: &[PathBuf],
    shared: &Shared,
    tx: crossbeam_channel::Sender<(u64, RawBatch)>,
    cancelled: &dyn Fn() -> bool,
) -> Result<SourceStats> {
    let c = req.contract;
    let mut seq = 0u64;
    let mut sums = Vec::new();
    let mut bytes = 0u64;
    // Upstream systems write empty shards (a branch without activity): among several files, a
    // 0-byte CSV is no rows rather than a file without its header. Alone, or when every file
    // is empty, it still fails (a missing export looks the same).
    let is_empty = |p: &PathBuf| std::fs::metadata(p).is_ok_and(|m| m.len() == 0);
    let skip_empty_csv = c.source.format == Format::Csv
        && c.source.header
        && files.len() > 1
        && !files.iter().all(is_empty);
    for (index, path) in files.iter().enumerate() {
        let display = shared.file_names[index].clone();
        if skip_empty_csv && is_empty(path) {
            sums.push(blake3::hash(b"").to_hex().to_string());
            crate::log::info(
                "an empty file among the source's files: no rows",
                &[("file", display.as_ref().into())],
            );
            continue;
        }
        match c.source.format {
            Format::Csv | Format::Ndjson | Format::FixedWidth => {
                let is_csv = c.source.format == Format::Csv;
                let (mut reader, header) = readers::BlockReader::open(
                    path,
                    c.source.skip_lines,
                    is_csv && c.source.header,
                    is_csv.then_some(shared.delimiter),
                )?;
                reader.set_multibyte(c.source.encoding != Encoding::Utf8);
                let (mapping, header_fields) = match c.source.format {
                    Format::Csv => match header {
                        Some(h) => {
                            let line = c.source.skip_lines as u64 + 1;
                            let names = readers::parse_header(
                                &h,
                                shared.delimiter,
                                c.source.encoding,
                                path,
                                line,
                            )?;
                            (
                                readers::map_header(
                                    c,
                                    &names,
                                    path,
                                    &format!("line {line}: the header"),
                                )?,
                                Some(names.len()),
                            )
                        }
                        None => (readers::map_positions(c)?, None),
                    },
                    Format::FixedWidth => (readers::map_fixed(c, &shared.layout)?, None),
                    _ => (Vec::new(), None),
                };
                let fields = if is_csv {
                    FieldCount::for_csv(header_fields, c, &mapping)
                } else {
                    FieldCount::Any
                };
                let ctx = Arc::new(FileCtx {
                    index,
                    path: path.clone(),
                    display,
                    mapping,
                    fields,
                });
                while let Some(block) = reader.next_block(path)? {
                    if cancelled() {
                        return Err(Error::Interrupted);
                    }
                    let batch = match block {
                        Block::Records { first_line, bytes } => RawBatch::Lines {
                            file: ctx.clone(),
                            first_line,
                            bytes,
                        },
                        Block::UnclosedQuote {
                            first_line,
                            quote_line,
                            bytes,
                        } => RawBatch::Rows {
                            file: ctx.clone(),
                            rows: vec![RawRow {
                                record: first_line,
                                raw: readers::lossy(trim_eol(&bytes), c.source.encoding),
                                fields: Vec::new(),
                                error: Some(format!(
                                    "a quote opened on line {quote_line} is never closed: the \
                                     record runs on to the end of the file"
                                )),
                                error_column: None,
                            }],
                        },
                    };
                    if tx.send((seq, batch)).is_err() {
                        return Err(Error::Interrupted);
                    }
                    seq += 1;
                }
                sums.push(reader.checksum());
                bytes += reader.bytes_read;
            }
            Format::Json | Format::Xlsx | Format::Parquet => {
                let (rows, sum, len) = match c.source.format {
                    Format::Json => readers::read_json_document(path, c)?,
                    Format::Xlsx => readers::read_xlsx(path, c)?,
                    _ => readers::read_parquet(path, c)?,
                };
                sums.push(sum);
                bytes += len;
                let ctx = Arc::new(FileCtx {
                    index,
                    path: path.clone(),
                    display,
                    mapping: Vec::new(),
                    fields: FieldCount::Any,
                });
                let mut rows = rows.into_iter().peekable();
                while rows.peek().is_some() {
                    if cancelled() {
                        return Err(Error::Interrupted);
                    }
                    let chunk: Vec<RawRow> = rows.by_ref().take(16_384).collect();
                    if tx
                        .send((
                            seq,
                            RawBatch::Rows {
                                file: ctx.clone(),
                                rows: chunk,
                            },
                        ))
                        .is_err()
                    {
                        return Err(Error::Interrupted);
                    }
                    seq += 1;
                }
            }
        }
    }
    let checksum = if sums.len() == 1 {
        sums.pop().unwrap_or_default()
    } else {
        let mut h = blake3::Hasher::new();
        for s in &sums {
            h.update(s.as_bytes());
        }
        h.finalize().to_hex().to_string()
    };
    Ok(SourceStats { checksum, bytes })
}

#[cfg(test)]
mod tests {
    use super::invalid_utf8_at;

    #[test]
    fn invalid_utf8_positions() {
        assert!(invalid_utf8_at("a,中文\nb,c\n".as_bytes()).is_empty());
        // A lone continuation byte, a truncated 3-byte sequence before a line end, and a
        // truncated sequence at the very end.
        let block = b"ok\n\x80x\n\xe4\xb8\nfine\n\xe4";
        assert_eq!(invalid_utf8_at(block), [3, 6, 14]);
        assert_eq!(invalid_utf8_at(b"\xff\xfe"), [0, 1]);
    }
}

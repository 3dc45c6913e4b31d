//! Source contracts: what a source file looks like and how its rows become clean, typed rows.
//!
//! A contract is the `ingest` job spec in `jobs/` (TOML). Parsing collects every problem
//! (unknown keys, bad values, references to columns that do not exist) and reports them all
//! at once, each with the file and the key, so that one edit fixes a contract.
//!
//! ```toml
//! kind = "ingest"
//! name = "applications"            # job `ingest.applications`, table `clean.applications`
//! [source]
//! path = "data-samples/applications.csv"
//! format = "csv"                   # csv | ndjson | json | fixed_width | xlsx | parquet
//! encoding = "utf-8"               # utf-8 | gbk
//! [rules]
//! max_reject_rate = 0.05
//! dedupe = { key = ["application_id"], keep_latest_by = "updated_at" }
//! [[columns]]
//! name = "amount"
//! from = "loan_amount"
//! type = "float"
//! clean = ["trim", "halfwidth", "money"]
//! min = 0
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The file formats a source may arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Ndjson,
    /// A JSON array of objects (or an object holding one under `records_path`).
    Json,
    FixedWidth,
    Xlsx,
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    #[default]
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    Gbk,
    #[serde(alias = "gb18030")]
    Gb18030,
}

/// What a fixed-width layout counts: characters (the default), or bytes of the source's
/// encoding, as mainframe and tax-bureau extracts in GBK are specified (a Chinese character
/// takes two of their columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WidthUnit {
    #[default]
    Characters,
    Bytes,
}

impl WidthUnit {
    fn is_characters(&self) -> bool {
        *self == WidthUnit::Characters
    }
}

/// The type a clean column is stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    String,
    Int,
    Float,
    Bool,
    Date,
    Datetime,
}

/// Cleaning steps, applied in the order written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanRule {
    /// Strip leading and trailing white space (ASCII and the ideographic space).
    Trim,
    /// Full-width forms (ＡＢＣ１２３，) to their half-width equivalents.
    Halfwidth,
    Upper,
    Lower,
    /// Keep only the digits.
    Digits,
    /// Mainland mobile numbers: drop +86/0086, separators and spaces; 11 digits starting with 1.
    Phone,
    /// Amounts such as `1,298,633`, `129.8万`, `1.2亿`, `¥1298633`, `1298633 CNY`.
    Money,
    /// Percentages such as `12.5%` to 0.125.
    Percent,
}

/// Check digits and formats of identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdCheck {
    /// 18-digit resident ID card (GB 11643), ISO 7064 MOD 11-2 check character.
    IdCard,
    /// 18-character unified social credit code (GB 32100), MOD 31 check character.
    CreditCode,
    /// 15-digit IMEI with a Luhn check digit.
    Imei,
    /// 19 or 20 digit ICCID starting 89, Luhn check digit over the first 19 digits.
    Iccid,
    /// Any digit string with a Luhn check digit.
    Luhn,
}

/// What happens to personal data before it reaches the clean layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pii {
    /// Keyed hash (BLAKE3 keyed with the project's PII key): stable, joinable, irreversible.
    Tokenize,
    /// Keep a few characters for humans (phone 138****5678, name 张*), star the rest.
    Mask,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    /// Column name (CSV/XLSX header, dotted JSON path, fixed-width field) in the source;
    /// defaults to `name`.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub clean: Vec<CleanRule>,
    /// Value mapping applied after cleaning (e.g. `{ "M" = "male", "男" = "male" }`).
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    #[serde(default)]
    pub check: Option<IdCheck>,
    /// chrono formats tried in order for `date`/`datetime` columns.
    #[serde(default)]
    pub formats: Vec<String>,
    #[serde(default)]
    pub accepted: Vec<String>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// A regular expression the (cleaned) value must match in full.
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub pii: Option<Pii>,
    /// Free text for the catalog and docs.
    #[serde(default)]
    pub description: Option<String>,
}

impl Column {
    pub fn source_name(&self) -> &str {
        self.from.as_deref().unwrap_or(&self.name)
    }
}

/// A fixed-width field: `start` is 1-based; both count characters, or bytes (`width_unit`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedField {
    pub name: String,
    pub start: usize,
    pub width: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Path relative to the project, or absolute. `{date}` (YYYY-MM-DD), `{yyyymmdd}` and matrix
    /// keys such as `{branch}` are substituted; glob characters select several files.
    pub path: String,
    pub format: Format,
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    #[serde(default = "default_true")]
    pub header: bool,
    /// Lines to skip before the header (banners in core-system exports).
    #[serde(default)]
    pub skip_lines: usize,
    /// Worksheet name for xlsx (first sheet when absent).
    #[serde(default)]
    pub sheet: Option<String>,
    /// Fixed-width layout file: one `name,start,width` line per field (`#` comments), in
    /// characters or bytes (`width_unit`).
    #[serde(default)]
    pub layout: Option<String>,
    /// Fixed-width layout inline, instead of `layout`.
    #[serde(default)]
    pub fields: Vec<FixedField>,
    /// Fixed-width: whether `start` and `width` count characters or bytes. (Not serialised
    /// when it is the default, so that the checksums of existing contracts stay the same.)
    #[serde(default, skip_serializing_if = "WidthUnit::is_characters")]
    pub width_unit: WidthUnit,
    /// Values read as null (after trimming), before any cleaning.
    #[serde(default = "default_null_values")]
    pub null_values: Vec<String>,
    /// JSON: a dotted path to the array of records inside the document.
    #[serde(default)]
    pub records_path: Option<String>,
    /// JSON/NDJSON: a field holding an array; each element becomes a row, its fields under
    /// `<explode>.<field>`, the parent's fields repeated.
    #[serde(default)]
    pub explode: Option<String>,
}

fn default_delimiter() -> String {
    ",".into()
}
fn default_true() -> bool {
    true
}
fn default_null_values() -> Vec<String> {
    ["", "NULL", "null", "NA", "N/A", "n/a", "None", "-"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dedupe {
    pub key: Vec<String>,
    /// Among rows with the same key keep the one with the greatest value here (the last read
    /// on ties; not a string column); without it, the last one read.
    #[serde(default)]
    pub keep_latest_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Share of rows that may be rejected before the job fails (exit 3). 0.05 by default.
    #[serde(default = "default_max_reject_rate")]
    pub max_reject_rate: f64,
    /// Columns that must be unique after de-duplication; later duplicates are rejected.
    #[serde(default)]
    pub unique_key: Vec<String>,
    #[serde(default)]
    pub dedupe: Option<Dedupe>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            max_reject_rate: default_max_reject_rate(),
            unique_key: Vec::new(),
            dedupe: None,
        }
    }
}

fn default_max_reject_rate() -> f64 {
    0.05
}

/// A parsed, validated source contract.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contract {
    /// Job name without the kind (`applications` for job `ingest.applications`).
    pub name: String,
    /// Clean table written (defaults to `name`).
    pub table: String,
    pub source: Source,
    pub rules: Rules,
    pub columns: Vec<Column>,
    /// Where the contract was read from, for messages.
    #[serde(skip)]
    pub file: PathBuf,
}

/// Keys of an `ingest` job file that belong to the contract; the scheduler owns the others
/// (`kind`, `after`, `tags`, `pool`, `matrix`, `timeout`, `retries`, ...).
pub const CONTRACT_KEYS: &[&str] = &["name", "table", "source", "rules", "columns", "description"];

impl Contract {
    /// A checksum of what the contract says (source, rules, columns; not where it was read
    /// from), recorded in the clean partition's `_SUCCESS`: a night run after the contract was
    /// edited ingests the source again.
    pub fn checksum(&self) -> String {
        let text = serde_json::to_vec(self).expect("a contract serialises");
        blake3::hash(&text).to_hex().to_string()
    }

    /// Reads and validates a contract file.
    pub fn from_file(path: &Path) -> Result<Contract> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(format!("{}: cannot read contract: {e}", path.display())))?;
        let value: toml::Table = toml::from_str(&text).map_err(|e| Error::Invalid {
            what: path.display().to_string(),
            problems: vec![e.to_string().trim().replace('\n', " ")],
        })?;
        Contract::from_table(&value, path)
    }

    /// Builds a contract from an already parsed job table; every problem is collected.
    pub fn from_table(table: &toml::Table, file: &Path) -> Result<Contract> {
        let mut problems = Vec::new();
        let name = match table.get("name").and_then(|v| v.as_str()) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => {
                problems.push("`name`: missing (a string naming the source)".to_string());
                String::new()
            }
        };
        let table_name = table
            .get("table")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| name.clone());
        if !table_name.is_empty() && !is_identifier(&table_name) {
            problems.push(format!(
                "`table`: {table_name:?} is not a valid table name (letters, digits, _; not starting with a digit)"
            ));
        }

        // A required key serde would refuse is reported and stood in for, so that the rest
        // of its section is still read and checked; the checks that need it are skipped.
        let mut guessed = Guessed::default();
        let source: Option<Source> = match table.get("source") {
            None => {
                problems.push("`source`: missing section ([source] with path and format)".into());
                None
            }
            Some(toml::Value::Table(t)) => {
                let mut t = t.clone();
                guessed.format =
                    !required_key::<Format>(&mut t, "format", "csv", "source", &mut problems);
                guessed.path = !required_key::<String>(&mut t, "path", "", "source", &mut problems);
                deserialize_section(&toml::Value::Table(t), "source", &mut problems)
            }
            Some(v) => deserialize_section(v, "source", &mut problems),
        };
        let rules: Rules = match table.get("rules") {
            None => Rules::default(),
            Some(v) => deserialize_section(v, "rules", &mut problems).unwrap_or_default(),
        };
        // Sources read by position (no header): `from` may be the field's number.
        let positional = table
            .get("source")
            .is_some_and(|s| s.get("header").and_then(|h| h.as_bool()) == Some(false));
        let mut columns = Vec::new();
        // Columns left out for a problem still count as declared for the other checks.
        let mut unreadable = Vec::new();
        match table.get("columns") {
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let label = item
                        .get("name")
                        .and_then(|n| n.as_str())
                        .map(|n| format!("columns[{i}] ({n})"))
                        .unwrap_or_else(|| format!("columns[{i}]"));
                    let mut item = item.clone();
                    let (mut name_guessed, mut type_guessed) = (false, false);
                    if let toml::Value::Table(t) = &mut item {
                        position_from(t, &label, positional, &mut problems);
                        name_guessed =
                            !required_key::<String>(t, "name", "_", &label, &mut problems);
                        type_guessed =
                            !required_key::<ColumnType>(t, "type", "string", &label, &mut problems);
                    }
                    match deserialize_section::<Column>(&item, &label, &mut problems) {
                        Some(c) => {
                            if name_guessed {
                                guessed.column_names.insert(columns.len());
                            }
                            if type_guessed {
                                guessed.column_types.insert(columns.len());
                            }
                            columns.push(c)
                        }
                        None => unreadable.extend(
                            item.get("name")
                                .and_then(|n| n.as_str())
                                .map(str::to_string),
                        ),
                    }
                }
            }
            Some(_) => problems.push("`columns`: must be an array of tables ([[columns]])".into()),
            None => problems.push("`columns`: missing (one [[columns]] per clean column)".into()),
        }

        let contract = Contract {
            name,
            table: table_name,
            source: source.clone().unwrap_or_else(|| Source {
                path: String::new(),
                format: Format::Csv,
                encoding: Encoding::Utf8,
                delimiter: default_delimiter(),
                header: true,
                skip_lines: 0,
                sheet: None,
                layout: None,
                fields: Vec::new(),
                width_unit: WidthUnit::Characters,
                null_values: default_null_values(),
                records_path: None,
                explode: None,
            }),
            rules,
            columns,
            file: file.to_path_buf(),
        };
        // The job's matrix keys are partition columns too (the scheduler owns `matrix`, but
        // passes it along for this check).
        let matrix_keys: Vec<String> = table
            .get("matrix")
            .and_then(|m| m.as_table())
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        contract.check_semantics(
            source.is_some(),
            &guessed,
            &unreadable,
            &matrix_keys,
            &mut problems,
        );
        if problems.is_empty() {
            Ok(contract)
        } else {
            Err(Error::Invalid {
                what: format!("contract {}", file.display()),
                problems,
            })
        }
    }

    /// The checks beyond types. `source_read`: the source section could be read (else its
    /// checks are skipped); `guessed`: required keys stood in for, whose checks are skipped;
    /// `unreadable`: columns left out for a problem already reported; `matrix_keys`: the
    /// job's matrix keys (partition columns).
    fn check_semantics(
        &self,
        source_read: bool,
        guessed: &Guessed,
        unreadable: &[String],
        matrix_keys: &[String],
        problems: &mut Vec<String>,
    ) {
        if source_read {
            self.check_source(guessed, problems);
        }
        self.check_columns_and_rules(guessed, unreadable, matrix_keys, problems);
    }

    fn check_source(&self, guessed: &Guessed, problems: &mut Vec<String>) {
        let s = &self.source;
        if s.path.trim().is_empty() && !guessed.path {
            problems.push("`source.path`: empty".into());
        }
        if s.delimiter.len() != 1 || matches!(s.delimiter.as_str(), "\"" | "\n" | "\r") {
            problems.push(format!(
                "`source.delimiter`: {:?} must be a single ASCII character other than a quote \
                 or a line end",
                s.delimiter
            ));
        }
        if !guessed.format {
            self.check_format_options(problems);
        }
        for (i, f) in s.fields.iter().enumerate() {
            if let Some(p) = fixed_field_problem(f.start, f.width) {
                problems.push(format!("`source.fields[{i}]` ({}): {p}", f.name));
            }
        }
    }

    /// The source keys that apply to some formats only.
    fn check_format_options(&self, problems: &mut Vec<String>) {
        let s = &self.source;
        let fixed = s.format == Format::FixedWidth;
        if fixed && s.layout.is_none() && s.fields.is_empty() {
            problems.push(
                "`source.layout`: a fixed_width source needs a layout file or inline `fields`"
                    .into(),
            );
        }
        if !fixed && s.width_unit == WidthUnit::Bytes {
            problems.push("`source.width_unit`: only for format = \"fixed_width\"".into());
        }
        if !fixed && (s.layout.is_some() || !s.fields.is_empty()) {
            problems
                .push("`source.layout`/`source.fields`: only for format = \"fixed_width\"".into());
        }
        // Options of another format would be ignored silently: a contract saying `sheet`
        // for a CSV source was probably meant for another file.
        if s.sheet.is_some() && s.format != Format::Xlsx {
            problems.push("`source.sheet`: only for format = \"xlsx\"".into());
        }
        if s.records_path.is_some() && s.format != Format::Json {
            problems.push("`source.records_path`: only for format = \"json\"".into());
        }
        if s.explode.is_some() && !matches!(s.format, Format::Json | Format::Ndjson) {
            problems.push("`source.explode`: only for format = \"json\" or \"ndjson\"".into());
        }
        if s.encoding != Encoding::Utf8
            && !matches!(s.format, Format::Csv | Format::FixedWidth | Format::Ndjson)
        {
            problems.push(format!(
                "`source.encoding`: {:?} is only supported for csv, ndjson and fixed_width (xlsx, json and parquet are always Unicode)",
                s.encoding
            ));
        }
    }

    fn check_columns_and_rules(
        &self,
        guessed: &Guessed,
        unreadable: &[String],
        matrix_keys: &[String],
        problems: &mut Vec<String>,
    ) {
        if !(0.0..=1.0).contains(&self.rules.max_reject_rate) {
            problems.push(format!(
                "`rules.max_reject_rate`: {} must be between 0 and 1",
                self.rules.max_reject_rate
            ));
        }
        let mut seen = HashSet::new();
        for (i, c) in self.columns.iter().enumerate() {
            let at = format!("`columns` ({})", c.name);
            if !guessed.column_names.contains(&i) {
                if !is_identifier(&c.name) {
                    problems.push(format!("{at}: name is not a valid identifier"));
                }
                if !seen.insert(c.name.as_str()) {
                    problems.push(format!("{at}: declared twice"));
                }
                // The partition keys are columns of every query of the table: a source
                // column of the same name was hidden by the partition's value (DuckDB and
                // Spark read the path's value, `panorama query` the file's).
                if c.name.eq_ignore_ascii_case("dt") {
                    problems.push(format!(
                        "{at}: `dt` is the partition column (the night's date) of every \
                         table; name the source's column otherwise (e.g. `business_date`, \
                         with from = {:?})",
                        c.source_name()
                    ));
                } else if let Some(k) = matrix_keys.iter().find(|k| c.name.eq_ignore_ascii_case(k))
                {
                    problems.push(format!(
                        "{at}: `{k}` is a matrix key of this job, a partition column of the \
                         table; name the source's column otherwise (e.g. `source_{k}`, with \
                         from = {:?})",
                        c.source_name()
                    ));
                }
            }
            // Without its type, a column's checks that depend on the type are skipped.
            let typed = !guessed.column_types.contains(&i);
            if typed
                && !c.formats.is_empty()
                && !matches!(c.ty, ColumnType::Date | ColumnType::Datetime)
            {
                problems.push(format!(
                    "{at}: `formats` only applies to date and datetime columns"
                ));
            }
            if typed
                && (c.min.is_some() || c.max.is_some())
                && !matches!(c.ty, ColumnType::Int | ColumnType::Float | ColumnType::Date)
            {
                problems.push(format!(
                    "{at}: `min`/`max` apply to int, float and date columns"
                ));
            }
            if let (Some(lo), Some(hi)) = (c.min, c.max) {
                if lo > hi {
                    problems.push(format!("{at}: min {lo} is greater than max {hi}"));
                }
            }
            if typed && c.pii.is_some() && c.ty != ColumnType::String {
                problems.push(format!(
                    "{at}: `pii` needs type = \"string\" (tokens and masks are text)"
                ));
            }
            if let Some(p) = &c.pattern {
                if let Some(e) = crate::error::regex_problem(p) {
                    problems.push(format!("{at}: `pattern` {p:?} is not a valid regex: {e}"));
                }
            }
            for f in &c.formats {
                if !f.contains('%') {
                    problems.push(format!(
                        "{at}: date format {f:?} has no % directive (e.g. \"%Y-%m-%d\")"
                    ));
                } else if chrono::format::StrftimeItems::new(f)
                    .any(|i| matches!(i, chrono::format::Item::Error))
                {
                    // Else every row would be rejected at night for a typo here.
                    problems.push(format!(
                        "{at}: date format {f:?} has a directive chrono does not know \
                         (see https://docs.rs/chrono/latest/chrono/format/strftime)"
                    ));
                } else if let Some(d) = zone_directive(f) {
                    // The offset was parsed and dropped: 10:00+0800 and 10:00-05:00 were
                    // both stored as 10:00, 13 hours apart.
                    problems.push(format!(
                        "{at}: date format {f:?} reads a time zone ({d}), but date and \
                         datetime columns hold wall-clock time without a zone, so the offset \
                         would be dropped; convert the times to one zone upstream, or read \
                         the column as type = \"string\""
                    ));
                }
            }
        }
        let names: HashSet<&str> = self
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .chain(unreadable.iter().map(String::as_str))
            .collect();
        for k in &self.rules.unique_key {
            if !names.contains(k.as_str()) {
                problems.push(format!(
                    "`rules.unique_key`: {k:?} is not a declared column"
                ));
            }
        }
        self.refuse_masked_key("`rules.unique_key`", &self.rules.unique_key, problems);
        if let Some(d) = &self.rules.dedupe {
            if d.key.is_empty() {
                problems.push("`rules.dedupe.key`: empty".into());
            }
            for k in d.key.iter().chain(d.keep_latest_by.iter()) {
                if !names.contains(k.as_str()) {
                    problems.push(format!("`rules.dedupe`: {k:?} is not a declared column"));
                }
            }
            self.refuse_masked_key("`rules.dedupe.key`", &d.key, problems);
            let order = d.keep_latest_by.as_ref().and_then(|o| {
                self.columns
                    .iter()
                    .enumerate()
                    .find(|(i, c)| &c.name == o && !guessed.column_types.contains(i))
            });
            if let Some((_, c)) = order.filter(|(_, c)| c.ty == ColumnType::String) {
                problems.push(format!(
                    "`rules.dedupe.keep_latest_by`: {:?} is a string column, and text has no \
                     order to tell the latest version by; declare the column with the type of \
                     its values (int, float, date or datetime, with `formats` for dates)",
                    c.name
                ));
            }
        }
    }

    /// A masked column cannot be (part of) a key: masks are not distinct (张三 and 张四 are
    /// both 张*), so different people were rejected as duplicates; and comparing the values
    /// before masking would leave the clean table with rows its consumers cannot tell apart.
    fn refuse_masked_key(&self, at: &str, key: &[String], problems: &mut Vec<String>) {
        for k in key {
            if self
                .columns
                .iter()
                .any(|c| &c.name == k && c.pii == Some(Pii::Mask))
            {
                problems.push(format!(
                    "{at}: {k:?} is masked (pii = \"mask\"), and masks are not distinct \
                     (张三 and 张四 are both 张*): a key column with personal data needs \
                     pii = \"tokenize\" (tokens are distinct and joinable)"
                ));
            }
        }
    }

    /// The key that identifies a row for de-duplication or uniqueness, if any.
    pub fn dedupe_key(&self) -> Option<(&[String], Option<&str>)> {
        if let Some(d) = &self.rules.dedupe {
            Some((&d.key, d.keep_latest_by.as_deref()))
        } else if !self.rules.unique_key.is_empty() {
            Some((&self.rules.unique_key, None))
        } else {
            None
        }
    }

    pub fn needs_pii_key(&self) -> bool {
        self.columns.iter().any(|c| c.pii == Some(Pii::Tokenize))
    }
}

/// Required keys a contract got wrong, stood in for so that the rest could be checked.
#[derive(Default)]
struct Guessed {
    format: bool,
    path: bool,
    /// Indexes into the contract's columns.
    column_names: HashSet<usize>,
    column_types: HashSet<usize>,
}

/// A column's `from = N` (an integer) is the N-th field of a source read by position
/// (`header = false`), as `from = "N"`; with a header, a number names no column.
fn position_from(
    column: &mut toml::Table,
    label: &str,
    positional: bool,
    problems: &mut Vec<String>,
) {
    let Some(toml::Value::Integer(n)) = column.get("from") else {
        return;
    };
    let n = *n;
    if !positional {
        problems.push(format!(
            "`{label}`: from = {n} is a field number, which applies only to a source read by \
             position (header = false); with a header, `from` is the header's name for the \
             column (from = \"...\")"
        ));
        column.remove("from");
    } else if n < 1 {
        problems.push(format!("`{label}`: from = {n}: fields are numbered from 1"));
        column.remove("from");
    } else {
        column.insert("from".into(), toml::Value::String(n.to_string()));
    }
}

/// Whether the required `key` of `section` holds a valid `T`; if not, the problem is reported
/// and `stand_in` put in its place, so that the section's other keys are still read.
fn required_key<T: serde::de::DeserializeOwned>(
    section: &mut toml::Table,
    key: &str,
    stand_in: &str,
    label: &str,
    problems: &mut Vec<String>,
) -> bool {
    let problem = match section.get(key) {
        None => format!("missing field `{key}`"),
        Some(v) => match T::deserialize(v.clone()) {
            Ok(_) => return true,
            Err(e) => format!("{} in `{key}`", e.to_string().trim().replace('\n', " ")),
        },
    };
    problems.push(format!("`{label}`: {problem}"));
    section.insert(key.to_string(), toml::Value::String(stand_in.to_string()));
    false
}

fn deserialize_section<T: serde::de::DeserializeOwned>(
    value: &toml::Value,
    label: &str,
    problems: &mut Vec<String>,
) -> Option<T> {
    let describe = |e: &str| format!("`{label}`: {}", e.trim().replace('\n', " "));
    let read = |v: &toml::Value| T::deserialize(v.clone()).map_err(|e| e.to_string());
    let mut value = value.clone();
    let mut error = match read(&value) {
        Ok(v) => return Some(v),
        Err(e) => e,
    };
    problems.push(describe(&error));
    // Serde stops at a section's first problem. To list the others in the same round (and
    // to run the checks that need the section), the smallest piece the problem is about is
    // dropped and the rest read again: an element of a list, a key of an inline table, or a
    // key — the first whose removal changes the error.
    for _ in 0..64 {
        // A removal that only trades the error for "missing field" is not the culprit (keys
        // are tried in order, and a required one may come before it).
        let next = without_culprit(&value, &|v| match read(v) {
            Ok(_) => true,
            Err(e) => e != error && !e.contains("missing field"),
        })?;
        match read(&next) {
            Ok(v) => return Some(v),
            Err(e) => {
                problems.push(describe(&e));
                error = e;
            }
        }
        value = next;
    }
    None
}

/// `table` without the first piece whose removal `changes` the outcome: an element of a list
/// or a key of an inline table before a whole key.
fn without_culprit(
    table: &toml::Value,
    changes: &dyn Fn(&toml::Value) -> bool,
) -> Option<toml::Value> {
    let t = table.as_table()?;
    for (key, v) in t {
        let with = |inner: toml::Value| {
            let mut t = t.clone();
            t.insert(key.clone(), inner);
            toml::Value::Table(t)
        };
        match v {
            toml::Value::Array(items) if items.len() > 1 => {
                for i in 0..items.len() {
                    let mut fewer = items.clone();
                    fewer.remove(i);
                    let candidate = with(toml::Value::Array(fewer));
                    if changes(&candidate) {
                        return Some(candidate);
                    }
                }
            }
            toml::Value::Table(inner) => {
                for k in inner.keys() {
                    let mut fewer = inner.clone();
                    fewer.remove(k);
                    let candidate = with(toml::Value::Table(fewer));
                    if changes(&candidate) {
                        return Some(candidate);
                    }
                }
            }
            _ => {}
        }
        let mut t = t.clone();
        t.remove(key);
        let candidate = toml::Value::Table(t);
        if changes(&candidate) {
            return Some(candidate);
        }
    }
    None
}

/// The first directive of a chrono format that reads a time zone or an offset, if any.
fn zone_directive(format: &str) -> Option<&'static str> {
    use chrono::format::{Item, StrftimeItems};
    const ZONED: &[&str] = &["%z", "%:z", "%::z", "%:::z", "%#z", "%Z", "%+"];
    let zoned: Vec<(Item<'static>, &'static str)> = ZONED
        .iter()
        .flat_map(|d| StrftimeItems::new(d).map(move |i| (i, *d)))
        .filter(|(i, _)| matches!(i, Item::Fixed(_)))
        .collect();
    StrftimeItems::new(format).find_map(|item| {
        zoned
            .iter()
            .find(|(z, _)| *z == item)
            .map(|(_, directive)| *directive)
    })
}

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The widest fixed-width field, and the last column a field may start at: far beyond any
/// real layout, and small enough that `start + width` cannot overflow (it panicked).
pub const MAX_FIXED_WIDTH: usize = 100_000;
pub const MAX_FIXED_START: usize = 1_000_000;

/// What is wrong with a fixed-width field's `start` and `width`, if anything.
fn fixed_field_problem(start: usize, width: usize) -> Option<String> {
    if !(1..=MAX_FIXED_START).contains(&start) {
        Some(format!(
            "start {start} must be between 1 and {MAX_FIXED_START} (1-based)"
        ))
    } else if !(1..=MAX_FIXED_WIDTH).contains(&width) {
        Some(format!(
            "width {width} must be between 1 and {MAX_FIXED_WIDTH}"
        ))
    } else {
        None
    }
}

/// Reads a fixed-width layout file: `name,start,width` per line, `#` comments.
pub fn read_layout(path: &Path) -> Result<Vec<FixedField>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("{}: cannot read layout: {e}", path.display())))?;
    let mut fields = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed = match parts.as_slice() {
            [name, start, width] => match (start.parse::<usize>(), width.parse::<usize>()) {
                (Ok(s), Ok(w)) => match fixed_field_problem(s, w) {
                    None => Ok(FixedField {
                        name: name.to_string(),
                        start: s,
                        width: w,
                    }),
                    Some(p) => Err(format!("{name}: {p}")),
                },
                _ => Err(format!(
                    "expected `name,start,width` with whole numbers, got {line:?}"
                )),
            },
            _ => Err(format!("expected `name,start,width`, got {line:?}")),
        };
        match parsed {
            Ok(f) => fields.push(f),
            Err(p) => problems.push(format!("line {}: {p}", i + 1)),
        }
    }
    if problems.is_empty() {
        Ok(fields)
    } else {
        Err(Error::Invalid {
            what: format!("layout {}", path.display()),
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Contract> {
        let t: toml::Table = toml::from_str(text).unwrap();
        Contract::from_table(&t, Path::new("jobs/x.toml"))
    }

    #[test]
    fn lists_every_problem_at_once() {
        let err = parse(
            r#"
            name = "x"
            [source]
            path = "a.csv"
            format = "csv"
            delimiter = ";;"
            sheet = "Sheet1"
            explode = "items"
            [rules]
            unique_key = ["nope"]
            [[columns]]
            name = "a"
            type = "strin"
            [[columns]]
            name = "b"
            type = "int"
            colour = "red"
            [[columns]]
            name = "c"
            type = "string"
            formats = ["%Y"]
            "#,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("columns[0] (a)") && msg.contains("strin"),
            "{msg}"
        );
        assert!(
            msg.contains("columns[1] (b)") && msg.contains("colour"),
            "{msg}"
        );
        assert!(msg.contains("delimiter"), "{msg}");
        // Options of another format (ignored silently before).
        assert!(
            msg.contains("`source.sheet`: only for format = \"xlsx\""),
            "{msg}"
        );
        assert!(msg.contains("`source.explode`: only for"), "{msg}");
        assert!(msg.contains("unique_key") && msg.contains("nope"), "{msg}");
        assert!(msg.contains("(c)") && msg.contains("formats"), "{msg}");
        // Regression: an unknown directive passed and rejected every row at run time.
        let err = parse(
            r#"
            name = "d"
            [source]
            path = "d.csv"
            format = "csv"
            [[columns]]
            name = "day"
            type = "date"
            formats = ["%Y-%Q-%d"]
            "#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("directive chrono does not know"),
            "{err}"
        );
        assert!(msg.contains("jobs/x.toml"), "{msg}");
    }

    #[test]
    fn problems_behind_a_type_error_are_listed_in_the_same_round() {
        // Regression: an unknown encoding, format, column type or clean rule, or a bad key in
        // an inline table, hid every other problem of its section (the delimiter, the rate,
        // min > max, a bad regex, the dedupe columns) until it was fixed.
        let err = parse(
            r#"
            name = "x"
            [source]
            path = "a.csv"
            format = "cvs"
            encoding = "latin9"
            delimiter = ";;"
            [rules]
            max_reject_rate = 2
            unique_key = ["a"]
            dedupe = { key = ["ghost"], keep_latest_by = "c", extra = 1 }
            [[columns]]
            name = "a"
            type = "integer"
            min = 5
            max = 1
            pattern = "([a-z"
            [[columns]]
            name = "b"
            type = "int"
            clean = ["trim", "sparkle", "glitter"]
            [[columns]]
            name = "c"
            type = "string"
            colour = "red"
            [[columns]]
            type = "string"
            "#,
        )
        .unwrap_err();
        let msg = err.to_string();
        for want in [
            "cvs",
            "latin9",
            "delimiter",
            "max_reject_rate",
            "integer",
            "sparkle",
            "glitter",
            "extra",
            "min 5 is greater than max 1",
            "not a valid regex",
            "colour",
            "\"ghost\" is not a declared column",
            "\"c\" is a string column",
            "`columns[3]`: missing field `name`",
        ] {
            assert!(msg.contains(want), "{want}: {msg}");
        }
        // A bad key that sorts after the required ones (`header` after `format` and `path`,
        // `pii` after `name`) hid the section's other problems.
        let err = parse(
            r#"
            name = "y"
            [source]
            path = "a.csv"
            format = "csv"
            header = "yes"
            delimiter = ";;"
            [[columns]]
            name = "a"
            type = "int"
            pii = "hash"
            min = 5
            max = 1
            "#,
        )
        .unwrap_err();
        let msg2 = err.to_string();
        for want in ["header", "delimiter", "hash", "min 5 is greater than max 1"] {
            assert!(msg2.contains(want), "{want}: {msg2}");
        }
        // Column a's type is unknown, but it is declared: no follow-on error about it, and
        // no check that depends on its type.
        assert!(!msg.contains("\"a\" is not a declared column"), "{msg}");
        assert!(!msg.contains("`min`/`max` apply to"), "{msg}");
        assert!(!msg.contains("(_)"), "{msg}");
    }

    #[test]
    fn keep_latest_by_a_string_column_is_refused() {
        // Regression: text was never ordered, so the older version could win while the reject
        // said "latest by".
        let err = parse(
            r#"
            name = "d"
            [source]
            path = "d.csv"
            format = "csv"
            [rules]
            dedupe = { key = ["id"], keep_latest_by = "ver" }
            [[columns]]
            name = "id"
            type = "string"
            [[columns]]
            name = "ver"
            type = "string"
            "#,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Invalid { .. }), "{msg}");
        assert!(
            msg.contains("keep_latest_by") && msg.contains("\"ver\" is a string column"),
            "{msg}"
        );
    }

    #[test]
    fn a_masked_key_column_is_refused() {
        // Regression: 张三 and 张四 both mask to 张*, so different people were rejected as
        // duplicates of each other.
        for rules in [
            r#"dedupe = { key = ["name", "branch"], keep_latest_by = "v" }"#,
            r#"unique_key = ["name"]"#,
        ] {
            let err = parse(&format!(
                r#"
                name = "m"
                [source]
                path = "m.csv"
                format = "csv"
                [rules]
                {rules}
                [[columns]]
                name = "name"
                type = "string"
                pii = "mask"
                [[columns]]
                name = "branch"
                type = "string"
                [[columns]]
                name = "v"
                type = "int"
                "#
            ))
            .unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::Invalid { .. }), "{msg}");
            assert!(
                msg.contains("\"name\" is masked") && msg.contains("pii = \"tokenize\""),
                "{msg}"
            );
            assert!(!msg.contains("\"branch\" is masked"), "{msg}");
        }
        // A tokenized key is fine.
        parse(
            r#"
            name = "t"
            [source]
            path = "t.csv"
            format = "csv"
            [rules]
            unique_key = ["name"]
            [[columns]]
            name = "name"
            type = "string"
            pii = "tokenize"
            "#,
        )
        .unwrap();
    }

    #[test]
    fn columns_named_like_a_partition_key_are_refused() {
        // Regression: the partition's value hid the source's column in every query.
        let err = parse(
            r#"
            name = "e"
            [matrix]
            branch = ["0101", "0102"]
            [source]
            path = "{branch}/e.csv"
            format = "csv"
            [[columns]]
            name = "dt"
            type = "date"
            [[columns]]
            name = "branch"
            type = "string"
            [[columns]]
            name = "id"
            type = "int"
            "#,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("(dt): `dt` is the partition column"), "{msg}");
        assert!(msg.contains("(branch): `branch` is a matrix key"), "{msg}");
        assert!(!msg.contains("(id)"), "{msg}");
        // Without a matrix, `branch` is an ordinary column.
        parse(
            r#"
            name = "f"
            [source]
            path = "f.csv"
            format = "csv"
            [[columns]]
            name = "branch"
            type = "string"
            "#,
        )
        .unwrap();
    }

    #[test]
    fn date_formats_with_a_zone_are_refused() {
        // Regression: the offset was parsed and dropped (10:00+0800 and 10:00-05:00 were both
        // stored as 10:00).
        for f in [
            "%Y-%m-%d %H:%M:%S%z",
            "%Y-%m-%dT%H:%M:%S%:z",
            "%Y-%m-%d %H:%M:%S %#z",
            "%+",
        ] {
            let err = parse(&format!(
                r#"
                name = "t"
                [source]
                path = "t.csv"
                format = "csv"
                [[columns]]
                name = "at"
                type = "datetime"
                formats = ["%Y-%m-%d %H:%M:%S", {f:?}]
                "#
            ))
            .unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("reads a time zone") && msg.contains("type = \"string\""),
                "{f}: {msg}"
            );
        }
        // A literal `z` or `Z` is no directive.
        parse(
            r#"
            name = "t"
            [source]
            path = "t.csv"
            format = "csv"
            [[columns]]
            name = "at"
            type = "datetime"
            formats = ["%Y-%m-%dT%H:%M:%SZ"]
            "#,
        )
        .unwrap();
    }

    #[test]
    fn fixed_width_ranges_are_bounded() {
        // Regression: a width near usize::MAX passed and overflowed `start + width` (a panic
        // that printed the line, personal data, to stderr).
        let err = parse(
            r#"
            name = "f"
            [source]
            path = "f.txt"
            format = "fixed_width"
            fields = [
                { name = "b", start = 0, width = 2 },
                { name = "c", start = 3, width = 100001 },
                { name = "d", start = 9223372036854775807, width = 1 },
            ]
            [[columns]]
            name = "b"
            type = "string"
            "#,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("(b): start 0 must be between 1"), "{msg}");
        assert!(
            msg.contains("(c): width 100001 must be between 1 and 100000"),
            "{msg}"
        );
        assert!(msg.contains("(d): start 9223372036854775807"), "{msg}");
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("f.layout");
        std::fs::write(&layout, "phone,1,11\namt,3,18446744073709551615\nx,1\n").unwrap();
        let msg = read_layout(&layout).unwrap_err().to_string();
        assert!(
            msg.contains("line 2: amt: width 18446744073709551615 must be between"),
            "{msg}"
        );
        assert!(msg.contains("line 3: expected `name,start,width`"), "{msg}");
    }

    #[test]
    fn a_numeric_from_is_a_field_number_without_a_header() {
        // Regression: the hint "read by position (header = false, from = N)" led to
        // `from = 2`, which serde refused ("invalid type: integer, expected a string").
        let c = parse(
            r#"
            name = "p"
            [source]
            path = "p.csv"
            format = "csv"
            header = false
            [[columns]]
            name = "amount"
            from = 2
            type = "float"
            "#,
        )
        .unwrap();
        assert_eq!(c.columns[0].from.as_deref(), Some("2"));
        // With a header, a number names no column.
        let msg = parse(
            r#"
            name = "p"
            [source]
            path = "p.csv"
            format = "csv"
            [[columns]]
            name = "amount"
            from = 2
            type = "float"
            [[columns]]
            name = "b"
            from = 0
            type = "float"
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("`columns[0] (amount)`: from = 2 is a field number"),
            "{msg}"
        );
    }

    #[test]
    fn good_contract_parses() {
        let c = parse(
            r#"
            name = "apps"
            [source]
            path = "a.csv"
            format = "csv"
            encoding = "gbk"
            [rules]
            dedupe = { key = ["id"], keep_latest_by = "ts" }
            [[columns]]
            name = "id"
            type = "string"
            required = true
            [[columns]]
            name = "ts"
            type = "datetime"
            formats = ["%Y-%m-%d %H:%M:%S"]
            "#,
        )
        .unwrap();
        assert_eq!(c.table, "apps");
        assert_eq!(c.source.encoding, Encoding::Gbk);
        assert_eq!(c.dedupe_key().unwrap().1, Some("ts"));
    }
}

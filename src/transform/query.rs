//! The read-only query engine over the warehouse: names resolved against the catalog, each
//! reference bound to a scan of the partitions its `dt` conditions select, the statement run
//! by polars SQL, and the result printed or written as a table, CSV, JSON or Parquet.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

use chrono::NaiveDate;
use polars::prelude::*;
use polars::sql::SQLContext;

use super::parse::{self, Analysis, Binding, DtSel, Params, Pos, SqlError};
use super::scan;
use crate::error::{Context, Error, Result};
use crate::warehouse::{Layer, Warehouse};

/// The tables a name may resolve to.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tables: BTreeSet<(Layer, String)>,
}

impl Catalog {
    /// Every table folder of the warehouse (hidden and `_` folders skipped).
    pub fn from_warehouse(wh: &Warehouse) -> Catalog {
        let mut c = Catalog::default();
        for layer in Layer::ALL {
            let Ok(rd) = std::fs::read_dir(wh.root.join(layer.as_str())) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if !name.starts_with('.') && !name.starts_with('_') && e.path().is_dir() {
                    c.tables.insert((layer, name));
                }
            }
        }
        c
    }

    pub fn add(&mut self, layer: Layer, table: &str) {
        self.tables.insert((layer, table.to_string()));
    }

    pub fn contains(&self, layer: Layer, table: &str) -> bool {
        self.tables.contains(&(layer, table.to_string()))
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// `layer.table` names, sorted by layer then table.
    pub fn names(&self) -> Vec<String> {
        self.tables
            .iter()
            .map(|(l, t)| format!("{l}.{t}"))
            .collect()
    }

    /// `layer.table`, or a bare `table` found in exactly one layer other than `rejects`
    /// (every ingest table has a `rejects` twin, so those are always written in full).
    pub fn resolve(&self, parts: &[String]) -> std::result::Result<(Layer, String), String> {
        match parts {
            [layer, table] => {
                let Some(l) = Layer::parse(layer) else {
                    return Err(format!(
                        "unknown table {layer}.{table}: {layer:?} is not a layer ({}){}",
                        Layer::ALL.map(|l| l.as_str()).join(", "),
                        self.hint(table)
                    ));
                };
                if self.contains(l, table) {
                    Ok((l, table.clone()))
                } else {
                    Err(format!("unknown table {layer}.{table}{}", self.hint(table)))
                }
            }
            [table] => {
                let hits: Vec<&(Layer, String)> = self
                    .tables
                    .iter()
                    .filter(|(l, t)| t == table && *l != Layer::Rejects)
                    .collect();
                match hits.as_slice() {
                    [(l, t)] => Ok((*l, t.clone())),
                    [] if self.contains(Layer::Rejects, table) => Err(format!(
                        "unknown table {table}: only rejects.{table} exists; write it in full"
                    )),
                    // `"clean.applications"` in quotes is one name with a dot in it.
                    [] if table.split_once('.').is_some_and(|(l, t)| {
                        Layer::parse(l).is_some_and(|l| self.contains(l, t))
                    }) =>
                    {
                        Err(format!(
                            "unknown table \"{table}\": quoted, it is one name with a dot in it; \
                             write {table} without quotes (or quote each part)"
                        ))
                    }
                    [] => Err(format!("unknown table {table}{}", self.hint(table))),
                    many => Err(format!(
                        "ambiguous table name {table}: {}; write it with its layer",
                        many.iter()
                            .map(|(l, t)| format!("{l}.{t}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            }
            _ => Err(format!(
                "{}: write tables as layer.table (e.g. clean.applications) or a bare table name",
                parts.join(".")
            )),
        }
    }

    /// "; did you mean …? known tables: …" for an unknown name.
    fn hint(&self, table: &str) -> String {
        let names = self.names();
        if names.is_empty() {
            return "; the warehouse has no tables yet".into();
        }
        let mut close: Vec<(usize, String)> = self
            .tables
            .iter()
            .map(|(l, t)| (edit_distance(t, table), format!("{l}.{t}")))
            .filter(|(d, _)| *d <= 2.max(table.len() / 3))
            .collect();
        close.sort();
        let mut s = String::new();
        match close.first() {
            Some((_, best)) => s.push_str(&format!("; did you mean {best}?")),
            None => s.push(';'),
        }
        const MAX: usize = 40;
        let shown: Vec<&str> = names.iter().take(MAX).map(String::as_str).collect();
        s.push_str(&format!(
            " known tables: {}{}",
            shown.join(", "),
            if names.len() > MAX {
                format!(" … ({} in all)", names.len())
            } else {
                String::new()
            }
        ));
        s
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// How a query is compiled.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// `{{ ds }}` and friends.
    pub params: Params,
    /// Partitions after this date are invisible (a model's run date); `None` for ad hoc queries.
    pub as_of: Option<NaiveDate>,
    /// Read every partition of references without a `dt` condition.
    pub all_partitions: bool,
    /// Allow `read_parquet(...)`-style table functions (ad hoc queries only).
    pub allow_table_functions: bool,
    /// Hive keys of a job family instance (`branch=0101`): every reference reads only the
    /// partitions that agree with them (see `scan::narrow`).
    pub partition: Vec<(String, String)>,
}

/// One table reference of a compiled query and the partitions it reads.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Input {
    pub table: String,
    pub written: String,
    pub selection: String,
    pub partitions: Vec<String>,
}

/// A query ready to run.
pub struct Compiled {
    /// The SQL after placeholders were replaced (what positions in errors refer to).
    pub text: String,
    /// The statement handed to polars.
    pub polars_sql: String,
    pub inputs: Vec<Input>,
    pub explain: bool,
    pub show_tables: bool,
    /// Run without projection pushdown (see `parse::has_cross_join`).
    no_projection_pushdown: bool,
    ctx: SQLContext,
}

fn sql_error(e: SqlError, text: &str) -> Error {
    Error::Config(e.render(text))
}

/// polars warns on stderr about its own deprecations (e.g. when polars SQL casts a
/// `DATE '2026-11-26'` literal); route them to the debug log instead of the user's terminal.
fn quiet_polars_warnings() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        fn route(msg: &str, w: polars::error::PolarsWarning) {
            let text = msg.replace('\n', " ");
            match w {
                polars::error::PolarsWarning::Deprecation => {
                    crate::log::debug(&format!("polars: {text}"), &[])
                }
                other => crate::log::warn(&format!("polars {other:?}: {text}"), &[]),
            }
        }
        polars::error::set_warning_function(route);
    });
}

/// Parses, validates and binds a query; nothing is read but `_SUCCESS` markers and footers.
pub fn compile(
    wh: &Warehouse,
    catalog: &Catalog,
    sql: &str,
    opts: &QueryOptions,
) -> Result<Compiled> {
    quiet_polars_warnings();
    let text = parse::render(sql, &opts.params).map_err(|e| sql_error(e, sql))?;
    let analysis = parse::analyze(&text).map_err(|e| sql_error(e, &text))?;
    if !opts.allow_table_functions {
        if let Some((f, p)) = analysis.table_functions.first() {
            return Err(sql_error(
                SqlError::at(
                    format!(
                        "table function {f}(…) is not allowed here: read warehouse tables by \
                         name (`panorama query --allow-files` reads files in an ad hoc query)"
                    ),
                    Some(*p),
                ),
                &text,
            ));
        }
    }
    bind(wh, catalog, text, analysis, opts)
}

fn describe(sel: &DtSel, all: bool) -> String {
    match sel {
        DtSel::Latest if all => "all partitions (--all-partitions)".into(),
        DtSel::Latest => "latest partition".into(),
        DtSel::All => "all partitions (dt condition not evaluable from the text)".into(),
        DtSel::Where(_) => "partitions matching the dt condition".into(),
    }
}

fn bind(
    wh: &Warehouse,
    catalog: &Catalog,
    text: String,
    analysis: Analysis,
    opts: &QueryOptions,
) -> Result<Compiled> {
    let ctx = SQLContext::new();
    let mut bindings: HashMap<Pos, Binding> = HashMap::new();
    let mut inputs = Vec::new();
    for (i, occ) in analysis.tables.iter().enumerate() {
        let (layer, table) = catalog
            .resolve(&occ.parts)
            .map_err(|m| sql_error(SqlError::at(m, Some(occ.pos)), &text))?;
        let all = scan::narrow(scan::partitions(wh, layer, &table), &opts.partition);
        let chosen = scan::select(&all, &occ.dt, opts.as_of, opts.all_partitions);
        let qualified = format!("{layer}.{table}");
        let lf = if chosen.is_empty() {
            let why = if all.is_empty() {
                format!("{qualified} has no committed partition yet")
            } else if let Some(d) = opts.as_of.filter(|d| all.iter().all(|p| p.dt > *d)) {
                format!(
                    "{qualified} has no partition on or before {d} (first: {})",
                    all[0].dt
                )
            } else {
                format!(
                    "no partition of {qualified} matches the dt condition (partitions: {} to {})",
                    all[0].dt,
                    all[all.len() - 1].dt
                )
            };
            if all.is_empty() || !matches!(occ.dt, DtSel::Where(_)) {
                return Err(sql_error(SqlError::at(why, Some(occ.pos)), &text));
            }
            // An empty selection of an existing table is an empty result, not an error: scan
            // the latest partition with a false filter to keep the schema.
            let latest = scan::select(&all, &DtSel::Latest, None, false);
            scan::scan(&wh.table_dir(layer, &table), &latest)?.filter(lit(false))
        } else {
            scan::scan(&wh.table_dir(layer, &table), &chosen)?
        };
        let registered = format!("__panorama_{i}");
        ctx.register(&registered, lf);
        bindings.insert(
            occ.pos,
            Binding {
                registered,
                layer: layer.as_str().to_string(),
                table: table.clone(),
            },
        );
        inputs.push(Input {
            table: qualified,
            written: occ.written(),
            selection: describe(&occ.dt, opts.all_partitions),
            partitions: chosen
                .iter()
                .map(|p| {
                    let mut s = p.dt.to_string();
                    for (k, v) in &p.extra {
                        s.push_str(&format!("/{k}={v}"));
                    }
                    s
                })
                .collect(),
        });
    }
    let mut clock = parse::Clock::system();
    if let Some(ds) = opts
        .params
        .values
        .get("ds")
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    {
        clock.today = ds;
    }
    let polars_sql =
        parse::rewrite(&analysis, &bindings, &clock).map_err(|e| sql_error(e, &text))?;
    Ok(Compiled {
        text,
        polars_sql,
        inputs,
        explain: analysis.explain,
        show_tables: analysis.show_tables,
        no_projection_pushdown: parse::has_cross_join(
            &analysis.statement,
            &analysis.tables.iter().map(|t| t.pos).collect(),
        ),
        ctx,
    })
}

/// Whether a polars error is the query's fault (exit 2) rather than the data's or the
/// machine's (exit 1).
fn user_error(e: &PolarsError) -> bool {
    matches!(
        e,
        PolarsError::ColumnNotFound(_)
            | PolarsError::SchemaFieldNotFound(_)
            | PolarsError::SQLInterface(_)
            | PolarsError::SQLSyntax(_)
            | PolarsError::InvalidOperation(_)
            | PolarsError::SchemaMismatch(_)
            | PolarsError::Duplicate(_)
            | PolarsError::StructFieldNotFound(_)
    )
}

/// Compute errors that only the query's text can cause: comparing text with a number, a
/// regex that does not parse, a format string with an unknown directive.
fn query_compute_error(e: &PolarsError) -> bool {
    matches!(e, PolarsError::ComputeError(m) if ["cannot compare", "regex error", "cannot format",
        "could not find an appropriate format"]
        .iter()
        .any(|p| m.starts_with(p)))
}

/// A strict CAST the column's values do not allow: the query asked for it.
fn failed_cast(e: &PolarsError) -> bool {
    matches!(e, PolarsError::InvalidOperation(m) if m.starts_with("conversion from"))
}

/// Maps a polars error of a query: the query's fault becomes a usage error (exit 2).
pub fn query_error(e: PolarsError, what: &str) -> Error {
    query_error_named(e, what, &[])
}

fn query_error_named(e: PolarsError, what: &str, tables: &[String]) -> Error {
    // polars wraps an error in one context per plan node it passed through.
    let mut inner = &e;
    while let PolarsError::Context { error, .. } | PolarsError::ExprContext { error, .. } = inner {
        inner = error.as_ref();
    }
    if failed_cast(inner) {
        Error::Config(format!(
            "{what}: {} (TRY_CAST gives NULL for the values that do not convert)",
            clean_polars_message(&e.to_string(), tables)
        ))
    } else if user_error(inner) || query_compute_error(inner) {
        // The regex crate draws its error over several lines: its last line says what is wrong.
        let message = match inner {
            PolarsError::ComputeError(m) if m.starts_with("regex error") => format!(
                "invalid regular expression: {}",
                m.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
                    .trim_start_matches("error: ")
            ),
            _ => clean_polars_message(&e.to_string(), tables),
        };
        Error::Config(format!("{what}: {message}"))
    } else {
        Error::Polars {
            context: what.to_string(),
            source: e,
        }
    }
}

/// polars messages may carry the registered names of tables, its plan, or a dump of the
/// parser's syntax tree: show the table names users wrote, and keep the message short.
fn clean_polars_message(s: &str, tables: &[String]) -> String {
    let mut out = s.to_string();
    for (i, t) in tables.iter().enumerate().rev() {
        out = out.replace(&format!("__panorama_{i}"), t);
    }
    out = out.replace("__panorama_", "table#");
    if let Some(i) = out.find("Resolved plan until failure") {
        out.truncate(i);
    }
    if out.contains("unsupported join constraint expression")
        || out.contains("unsupported SQL join constraint")
    {
        return "a JOIN's ON condition may only AND equalities and plain comparisons of the \
                joined tables' columns (no functions, CASE or IS TRUE there); for an INNER JOIN, \
                move the other conditions to WHERE, where they mean the same"
            .to_string();
    }
    if out.starts_with("array element") {
        return "an IN (…) list may hold literal values only (no expressions such as `1 + 1` or \
                casts): write the values out, or use OR"
            .to_string();
    }
    if out.contains("Span(Location(") {
        let flat: String = out.split_whitespace().collect::<Vec<_>>().join(" ");
        let cut: String = flat.chars().take(140).collect();
        out = format!("{cut}… (not supported by polars SQL; see docs/sql.md for what is)");
    }
    out.trim().to_string()
}

impl Compiled {
    fn table_names(&self) -> Vec<String> {
        self.inputs.iter().map(|i| i.table.clone()).collect()
    }

    /// The query as a lazy frame.
    pub fn lazy(&mut self) -> Result<LazyFrame> {
        let sql = self.polars_sql.clone();
        let names = self.table_names();
        let lf = self
            .ctx
            .execute(&sql)
            .map_err(|e| query_error_named(e, "query", &names))?;
        Ok(if self.no_projection_pushdown {
            lf.with_projection_pushdown(false)
        } else {
            lf
        })
    }

    /// Runs the query to a frame.
    pub fn collect(&mut self) -> Result<DataFrame> {
        let lf = self.lazy()?;
        let names = self.table_names();
        collect(lf).map_err(|e| query_error_named(e, "query", &names))
    }

    /// Runs the query into a Parquet file (zstd, 256k-row groups, like every warehouse file) on
    /// the streaming engine, so memory stays bounded by the query's state, not its output.
    /// Columns named in `drop` are left out. Returns the rows written and the columns.
    pub fn sink_parquet(
        &mut self,
        path: &Path,
        drop: &[&str],
        metadata: &[(String, String)],
    ) -> Result<(u64, Vec<String>)> {
        let names = self.table_names();
        let mut lf = self.lazy()?;
        let schema = lf
            .collect_schema()
            .map_err(|e| query_error_named(e, "query", &names))?;
        let columns: Vec<String> = schema
            .iter_names()
            .map(|n| n.to_string())
            .filter(|n| !drop.contains(&n.as_str()))
            .collect();
        if columns.is_empty() {
            return Err(Error::Config("the query returns no column".into()));
        }
        if columns.len() != schema.len() {
            lf = lf.select(columns.iter().map(|c| col(c.as_str())).collect::<Vec<_>>());
        }
        let options = ParquetWriteOptions {
            compression: ParquetCompression::Zstd(
                polars_parquet::write::ZstdLevel::try_new(1).ok(),
            ),
            row_group_size: Some(crate::warehouse::parquet::ROW_GROUP_ROWS),
            key_value_metadata: if metadata.is_empty() {
                None
            } else {
                Some(KeyValueMetadata::from_static(metadata.to_vec()))
            },
            ..Default::default()
        };
        let target = SinkTarget::Path(PlRefPath::new(path.to_string_lossy().as_ref()));
        let in_memory = lf.clone();
        let streamed = on_streaming_engine(|| {
            lf.sink(
                SinkDestination::File { target },
                FileWriteFormat::Parquet(Arc::new(options)),
                UnifiedSinkArgs::default(),
            )
            .and_then(|lf| lf.collect_with_engine(Engine::Streaming))
        });
        match streamed {
            Some(r) => {
                r.map_err(|e| query_error_named(e, "query", &names))?;
            }
            None => {
                let mut df = in_memory
                    .collect_with_engine(Engine::InMemory)
                    .map(|r| r.unwrap_single())
                    .map_err(|e| query_error_named(e, "query", &names))?;
                crate::warehouse::parquet::write_frame(path, &mut df, metadata)?;
            }
        }
        let file = std::fs::File::open(path).ctx(|| format!("opening {}", path.display()))?;
        let rows = ParquetReader::new(file)
            .num_rows()
            .ctx(|| format!("reading the footer of {}", path.display()))?;
        Ok((rows as u64, columns))
    }

    /// The optimised plan, preceded by the partitions each reference reads.
    pub fn explain(&mut self) -> Result<String> {
        let lf = self.lazy()?;
        let mut s = String::new();
        for i in &self.inputs {
            s.push_str(&format!(
                "-- {} ({}): {} partition(s){}\n",
                i.table,
                i.selection,
                i.partitions.len(),
                if i.partitions.is_empty() {
                    String::new()
                } else {
                    format!(" {}", abbreviate(&i.partitions))
                }
            ));
        }
        s.push_str(&lf.explain(true).map_err(|e| query_error(e, "query"))?);
        Ok(s.replace("__panorama_", "table#"))
    }
}

fn abbreviate(v: &[String]) -> String {
    if v.len() <= 6 {
        v.join(", ")
    } else {
        format!("{}, {}, … {}", v[0], v[1], v[v.len() - 1])
    }
}

/// Collects with the engine chosen by `PANORAMA_ENGINE`: `streaming` (the default: polars'
/// new streaming engine, faster than the in-memory one on every benchmark query on 2 cores
/// and bounded in memory) or `in-memory`.
pub fn collect(lf: LazyFrame) -> PolarsResult<DataFrame> {
    let engine = match std::env::var("PANORAMA_ENGINE").as_deref() {
        Ok("in-memory") | Ok("in_memory") => Engine::InMemory,
        _ => Engine::Streaming,
    };
    // A plain query has one sink, so the result is a single frame.
    if engine == Engine::Streaming {
        if let Some(r) = on_streaming_engine(|| lf.clone().collect_with_engine(Engine::Streaming)) {
            return r.map(|r| r.unwrap_single());
        }
    }
    lf.collect_with_engine(Engine::InMemory)
        .map(|r| r.unwrap_single())
}

/// Runs `f`, which runs a plan on polars' streaming engine; `None` when the engine panicked
/// on the plan, which the caller then runs in memory. polars 0.55's streaming engine panics
/// on some plans the in-memory one runs (a cross join filtered by an inequality: "entered
/// unreachable code").
fn on_streaming_engine<T>(f: impl FnOnce() -> PolarsResult<T>) -> Option<PolarsResult<T>> {
    match crate::error::catch_library_panic(f) {
        Ok(r) => Some(r),
        Err(why) => {
            crate::log::debug(
                "the streaming engine failed on this plan; running it in memory",
                &[("panic", why.into())],
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output

/// Output formats of `panorama query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    /// A JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    Parquet,
}

impl OutputFormat {
    /// From a file's extension (`--out result.csv`).
    pub fn from_path(p: &Path) -> Option<OutputFormat> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(OutputFormat::Csv),
            "json" => Some(OutputFormat::Json),
            "ndjson" | "jsonl" => Some(OutputFormat::Ndjson),
            "parquet" => Some(OutputFormat::Parquet),
            "txt" => Some(OutputFormat::Table),
            _ => None,
        }
    }
}

/// Writes `df` in `format` to `w` (Parquet needs a file, see [`write_file`]).
pub fn write_to(
    df: &mut DataFrame,
    format: OutputFormat,
    max_rows: usize,
    w: &mut dyn Write,
) -> Result<()> {
    let what = || "writing the result".to_string();
    check_writable(df, format)?;
    match format {
        OutputFormat::Table => w.write_all(format_table(df, max_rows).as_bytes()).ctx(what),
        OutputFormat::Csv => CsvWriter::new(w).include_header(true).finish(df).ctx(what),
        OutputFormat::Json => {
            if df.height() == 0 {
                return w.write_all(b"[]\n").ctx(what);
            }
            JsonWriter::new(&mut *w)
                .with_json_format(JsonFormat::Json)
                .finish(df)
                .ctx(what)?;
            w.write_all(b"\n").ctx(what)
        }
        OutputFormat::Ndjson => JsonWriter::new(w)
            .with_json_format(JsonFormat::JsonLines)
            .finish(df)
            .ctx(what),
        OutputFormat::Parquet => Err(Error::config(
            "--format parquet writes a file: add --out FILE.parquet",
        )),
    }
}

/// Refuses, before a byte is written, a column the format cannot hold (else a CSV header
/// reached standard output and then the command failed).
fn check_writable(df: &DataFrame, format: OutputFormat) -> Result<()> {
    for c in df.columns() {
        let dt = c.dtype();
        let hint = match (format, dt) {
            (OutputFormat::Csv, DataType::List(_) | DataType::Struct(_)) => {
                "CSV has no nested values: use --format json, or ARRAY_TO_STRING(col, ',')"
            }
            (OutputFormat::Csv, DataType::Duration(_)) => {
                "a duration (such as DATE - DATE) has no CSV form: use \
                 DATE_DIFF('day', start, end) for whole days, or --format json"
            }
            (_, DataType::Binary) if format != OutputFormat::Parquet => {
                "binary values have no text form: use --format parquet with --out"
            }
            _ => continue,
        };
        return Err(Error::Config(format!(
            "column `{}` is of type {dt}; {hint}",
            c.name()
        )));
    }
    Ok(())
}

/// Writes `df` to `path` atomically (a temporary sibling, then a rename).
pub fn write_file(df: &mut DataFrame, format: OutputFormat, path: &Path) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("out")
    ));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
    }
    let res = (|| {
        if format == OutputFormat::Parquet {
            crate::warehouse::parquet::write_frame(&tmp, df, &[])?;
        } else {
            let f = std::fs::File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
            let mut w = std::io::BufWriter::new(f);
            write_to(df, format, usize::MAX, &mut w)?;
            w.flush().ctx(|| format!("writing {}", tmp.display()))?;
        }
        std::fs::rename(&tmp, path)
            .ctx(|| format!("renaming {} to {}", tmp.display(), path.display()))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

pub(crate) fn cell(av: &AnyValue) -> String {
    match av {
        AnyValue::Null => "null".into(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Float64(f) => fmt_float(*f),
        AnyValue::Float32(f) => fmt_float(*f as f64),
        other => {
            let s = other.to_string();
            s.trim_matches('"').to_string()
        }
    }
}

fn fmt_float(f: f64) -> String {
    if f.is_finite() && f == f.trunc() && f.abs() < 1e15 {
        format!("{f:.1}")
    } else if f.is_finite() && (f.abs() >= 1e-4 || f == 0.0) && f.abs() < 1e15 {
        let s = format!("{f:.6}");
        let s = s.trim_end_matches('0');
        if s.ends_with('.') {
            format!("{s}0")
        } else {
            s.to_string()
        }
    } else {
        format!("{f:e}")
    }
}

fn numeric(dt: &DataType) -> bool {
    dt.is_primitive_numeric() || matches!(dt, DataType::Decimal(..))
}

/// Terminal columns a character takes: 2 for East Asian wide and full-width forms (Chinese
/// names and addresses), 1 otherwise.
fn char_width(c: char) -> usize {
    let u = c as u32;
    let wide = matches!(u,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD);
    if wide {
        2
    } else {
        1
    }
}

fn text_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// The longest prefix of `s` that fits `max` columns, with `…` when cut.
fn fit(s: &str, max: usize) -> String {
    if text_width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        if w + char_width(c) > max - 1 {
            break;
        }
        w += char_width(c);
        out.push(c);
    }
    out.push('…');
    out
}

/// An aligned text table: header, rule, up to `max_rows` rows (then a note), row count.
pub fn format_table(df: &DataFrame, max_rows: usize) -> String {
    const MAX_WIDTH: usize = 48;
    let cols = df.columns();
    let shown = df.height().min(max_rows);
    let mut cells: Vec<Vec<String>> = Vec::with_capacity(cols.len());
    let mut widths = Vec::with_capacity(cols.len());
    for c in cols {
        let mut v = Vec::with_capacity(shown);
        let mut w = text_width(c.name());
        for i in 0..shown {
            let s = cell(&c.get(i).unwrap_or(AnyValue::Null)).replace(['\n', '\r', '\t'], " ");
            let s = fit(&s, MAX_WIDTH);
            w = w.max(text_width(&s));
            v.push(s);
        }
        widths.push(w);
        cells.push(v);
    }
    let pad = |s: &str, w: usize, right: bool| {
        let n = w.saturating_sub(text_width(s));
        if right {
            format!("{}{s}", " ".repeat(n))
        } else {
            format!("{s}{}", " ".repeat(n))
        }
    };
    let mut out = String::new();
    let head: Vec<String> = cols
        .iter()
        .zip(&widths)
        .map(|(c, w)| pad(c.name(), *w, numeric(c.dtype())))
        .collect();
    out.push_str(head.join("  ").trim_end());
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&rule.join("  "));
    out.push('\n');
    let right: Vec<bool> = cols.iter().map(|c| numeric(c.dtype())).collect();
    for i in 0..shown {
        let row: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(&right)
            .map(|((col, w), r)| pad(&col[i], *w, *r))
            .collect();
        out.push_str(row.join("  ").trim_end());
        out.push('\n');
    }
    if shown < df.height() {
        out.push_str(&format!(
            "… {} more row(s) not shown (--max-rows N, or --format csv)\n",
            df.height() - shown
        ));
    }
    out.push_str(&format!(
        "({} row{})\n",
        df.height(),
        if df.height() == 1 { "" } else { "s" }
    ));
    out
}

/// `SHOW TABLES`: the catalog as a frame.
pub fn tables_frame(wh: &Warehouse) -> Result<DataFrame> {
    let t = crate::warehouse::catalog::list_tables(wh);
    df!(
        "table" => t.iter().map(|t| t.qualified()).collect::<Vec<_>>(),
        "partitions" => t.iter().map(|t| t.partitions as u64).collect::<Vec<_>>(),
        "latest" => t.iter().map(|t| t.latest.clone()).collect::<Vec<_>>(),
        "rows_latest" => t.iter().map(|t| t.rows_latest).collect::<Vec<_>>(),
        "columns" => t.iter().map(|t| t.schema.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")).collect::<Vec<_>>(),
    )
    .ctx(|| "listing the tables".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::{PartitionKey, Success};

    fn commit(wh: &Warehouse, layer: Layer, table: &str, dt: &str, mut df: DataFrame) {
        let s = wh
            .stage(layer, table, &PartitionKey::date(dt), "r")
            .unwrap();
        crate::warehouse::parquet::write_frame(&s.dir().join("part-00000.parquet"), &mut df, &[])
            .unwrap();
        s.commit(Success {
            rows: df.height() as u64,
            ..Default::default()
        })
        .unwrap();
    }

    fn warehouse() -> (tempfile::TempDir, Warehouse) {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::new(dir.path());
        commit(
            &wh,
            Layer::Clean,
            "tx",
            "2026-11-01",
            df!("k" => ["a", "b"], "amount" => [1.0, 2.0]).unwrap(),
        );
        commit(
            &wh,
            Layer::Clean,
            "tx",
            "2026-11-02",
            df!("k" => ["a", "c", "c"], "amount" => [3.0, 4.0, 5.0]).unwrap(),
        );
        commit(
            &wh,
            Layer::Rejects,
            "tx",
            "2026-11-02",
            df!("reason" => ["bad"]).unwrap(),
        );
        commit(
            &wh,
            Layer::Feature,
            "kf",
            "2026-11-02",
            df!("k" => ["a", "c"], "n" => [1i64, 2]).unwrap(),
        );
        (dir, wh)
    }

    fn run(wh: &Warehouse, sql: &str) -> Result<DataFrame> {
        let cat = Catalog::from_warehouse(wh);
        compile(wh, &cat, sql, &QueryOptions::default())?.collect()
    }

    #[test]
    fn latest_by_default_and_dt_ranges() {
        let (_d, wh) = warehouse();
        let df = run(&wh, "SELECT count(*) AS n, sum(amount) AS s FROM tx").unwrap();
        assert_eq!(
            df.column("n").unwrap().get(0).unwrap().extract::<u64>(),
            Some(3)
        );
        let df = run(&wh, "SELECT dt, count(*) AS n FROM clean.tx WHERE dt >= '2026-11-01' GROUP BY dt ORDER BY dt").unwrap();
        assert_eq!(df.height(), 2);
        let df = run(&wh, "SELECT * FROM clean.tx WHERE dt = '2026-11-01'").unwrap();
        assert_eq!(df.height(), 2);
        // No partition matches: an empty result with the table's columns.
        let df = run(&wh, "SELECT * FROM clean.tx WHERE dt = '2020-01-01'").unwrap();
        assert_eq!(df.height(), 0);
        assert_eq!(df.width(), 3);
    }

    #[test]
    fn joins_qualified_columns_and_extensions() {
        let (_d, wh) = warehouse();
        let df = run(
            &wh,
            "SELECT tx.k, sum(tx.amount) AS s, max(kf.n) AS n, DATE_TRUNC('month', max(tx.dt)) AS m
             FROM clean.tx JOIN kf ON kf.k = tx.k GROUP BY tx.k ORDER BY tx.k",
        )
        .unwrap();
        assert_eq!(df.height(), 2, "{df}");
        let m = df.column("m").unwrap().get(0).unwrap().to_string();
        assert_eq!(m, "2026-11-01");
        let df = run(
            &wh,
            "SELECT clean.tx.k FROM clean.tx WHERE clean.tx.amount > 3",
        )
        .unwrap();
        assert_eq!(df.height(), 2);
    }

    #[test]
    fn unknown_and_ambiguous_names_point_at_the_reference() {
        let (_d, wh) = warehouse();
        let e = run(&wh, "SELECT *\nFROM clean.txx")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown table clean.txx; did you mean clean.tx?"),
            "{e}"
        );
        assert!(
            e.contains("known tables: clean.tx, rejects.tx, feature.kf"),
            "{e}"
        );
        assert!(e.contains("(line 2, column 6)"), "{e}");
        let e = run(&wh, "SELECT * FROM nope.tx").unwrap_err().to_string();
        assert!(e.contains("\"nope\" is not a layer"), "{e}");
        let e = run(&wh, "SELECT * FROM clean.tx WHERE nocol > 1").unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
        assert!(e.to_string().contains("nocol"), "{e}");
    }

    #[test]
    fn table_output_aligns_and_counts() {
        let df = df!("name" => ["a", "bbbb"], "x" => [1.5, 22.0]).unwrap();
        let t = format_table(&df, 10);
        assert_eq!(
            t,
            "name     x\n----  ----\na      1.5\nbbbb  22.0\n(2 rows)\n"
        );
        assert_eq!(fmt_float(354400.00000000006), "354400.0");
        let cjk = df!("城市" => ["成都市", "x"], "n" => [1i64, 2]).unwrap();
        assert_eq!(
            format_table(&cjk, 10),
            "城市    n\n------  -\n成都市  1\nx       2\n(2 rows)\n"
        );
        let t = format_table(&df, 1);
        assert!(t.contains("1 more row(s) not shown"), "{t}");
    }
}

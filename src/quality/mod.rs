//! Data-quality checks: declared beside the table they check (an ingest contract's
//! `[[checks]]`, a model's config, or a `check` job file), evaluated on one partition, recorded
//! in `quality.check_results` (`warehouse/quality/check_results/dt=D/table=<layer.table>/`) and
//! summarised in an HTML report (`reports/quality-D.html`).
//!
//! ```toml
//! [[checks]]
//! type = "not_null"            # not_null | unique | accepted_values | range | regex |
//!                              # relationships | freshness | row_count | row_count_drift |
//!                              # schema_drift | expression
//! columns = ["application_id"] # or column = "…"
//! severity = "error"           # error (default: fails the job) | warn
//! tolerance = 0.0              # row checks: share of rows allowed to fail
//! where = "status <> 'pending'"   # row checks: only rows matching this SQL condition
//! ```

pub mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

use crate::config::Project;
use crate::error::{Context, Error, Result};
use crate::transform::parse::DtSel;
use crate::transform::query::{self, Catalog};
use crate::transform::scan;
use crate::warehouse::{Layer, PartitionKey, Success, Warehouse};

/// The quality layer's results table.
pub const RESULTS_TABLE: &str = "check_results";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warn,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// What a check tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    NotNull {
        column: String,
    },
    Unique {
        columns: Vec<String>,
    },
    AcceptedValues {
        column: String,
        values: Vec<toml::Value>,
    },
    Range {
        column: String,
        min: Option<toml::Value>,
        max: Option<toml::Value>,
    },
    Regex {
        column: String,
        pattern: String,
    },
    Relationships {
        column: String,
        to: String,
        field: String,
    },
    Freshness {
        column: Option<String>,
        max_age_days: f64,
    },
    RowCount {
        min: Option<u64>,
        max: Option<u64>,
    },
    RowCountDrift {
        max_change_pct: f64,
        compare: usize,
    },
    SchemaDrift {
        allow_added: bool,
    },
    Expression {
        expression: String,
    },
}

impl Spec {
    pub fn type_name(&self) -> &'static str {
        match self {
            Spec::NotNull { .. } => "not_null",
            Spec::Unique { .. } => "unique",
            Spec::AcceptedValues { .. } => "accepted_values",
            Spec::Range { .. } => "range",
            Spec::Regex { .. } => "regex",
            Spec::Relationships { .. } => "relationships",
            Spec::Freshness { .. } => "freshness",
            Spec::RowCount { .. } => "row_count",
            Spec::RowCountDrift { .. } => "row_count_drift",
            Spec::SchemaDrift { .. } => "schema_drift",
            Spec::Expression { .. } => "expression",
        }
    }

    fn columns(&self) -> Vec<String> {
        match self {
            Spec::NotNull { column }
            | Spec::AcceptedValues { column, .. }
            | Spec::Range { column, .. }
            | Spec::Regex { column, .. }
            | Spec::Relationships { column, .. } => vec![column.clone()],
            Spec::Unique { columns } => columns.clone(),
            Spec::Freshness { column, .. } => column.iter().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the check counts failing rows (and so takes `tolerance` and `where`).
    fn row_level(&self) -> bool {
        matches!(
            self,
            Spec::NotNull { .. }
                | Spec::Unique { .. }
                | Spec::AcceptedValues { .. }
                | Spec::Range { .. }
                | Spec::Regex { .. }
                | Spec::Relationships { .. }
                | Spec::Expression { .. }
        )
    }
}

/// One declared check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub spec: Spec,
    pub severity: Severity,
    /// Share of rows that may fail (row checks).
    pub tolerance: f64,
    /// SQL condition selecting the rows checked (row checks and row_count).
    pub filter: Option<String>,
    /// Where it was declared, for messages.
    pub origin: String,
}

const COMMON: &[&str] = &["type", "name", "severity", "description"];

fn type_keys(t: &str) -> Option<&'static [&'static str]> {
    Some(match t {
        "not_null" => &["column", "columns", "tolerance", "where"],
        "unique" => &["column", "columns", "tolerance", "where"],
        "accepted_values" => &["column", "values", "tolerance", "where"],
        "range" => &["column", "min", "max", "tolerance", "where"],
        "regex" => &["column", "pattern", "tolerance", "where"],
        "relationships" => &["column", "to", "field", "tolerance", "where"],
        "freshness" => &["column", "max_age"],
        "row_count" => &["min", "max", "where"],
        "row_count_drift" => &["max_change_pct", "compare"],
        "schema_drift" => &["allow_added"],
        "expression" => &["expression", "tolerance", "where"],
        _ => return None,
    })
}

const TYPES: &str =
    "not_null, unique, accepted_values, range, regex, relationships, freshness, row_count, \
                     row_count_drift, schema_drift, expression";

/// An age in days as people write it: whole days as days, else hours.
fn fmt_age(days: f64) -> String {
    if (days - days.round()).abs() < 1e-9 {
        format!("{} day(s)", days.round())
    } else {
        format!("{:.1} hour(s)", days * 24.0)
    }
}

/// `"2d"`, `"36h"`, `"1w"` or a number of days, in days.
pub fn parse_age(v: &toml::Value) -> std::result::Result<f64, String> {
    let days = match v {
        toml::Value::Integer(i) => *i as f64,
        toml::Value::Float(f) => *f,
        toml::Value::String(s) => {
            let s = s.trim();
            let (num, unit) =
                s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
            let n: f64 = num
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not an age like \"2d\", \"36h\" or \"1w\""))?;
            n * match unit.trim() {
                "" | "d" | "day" | "days" => 1.0,
                "h" | "hour" | "hours" => 1.0 / 24.0,
                "w" | "week" | "weeks" => 7.0,
                u => return Err(format!("{s:?}: unknown unit {u:?} (h, d, w)")),
            }
        }
        _ => return Err("must be an age like \"2d\", \"36h\" or a number of days".into()),
    };
    if !days.is_finite() || days < 0.0 {
        return Err("must be a non-negative age".into());
    }
    Ok(days)
}

/// Parses check declarations; every problem is reported, prefixed with `origin` and the
/// check's position. A `not_null` over several columns becomes one check per column.
pub fn parse_checks(
    values: &[toml::Value],
    origin: &str,
) -> std::result::Result<Vec<Check>, Vec<String>> {
    let (checks, problems) = parse_checks_partly(values, origin);
    if problems.is_empty() {
        Ok(checks)
    } else {
        Err(problems)
    }
}

/// `parse_checks`, with the checks that parsed beside the problems of the others (so that a
/// caller checking their columns reports those problems in the same round).
pub fn parse_checks_partly(values: &[toml::Value], origin: &str) -> (Vec<Check>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let at = format!("{origin}: checks[{i}]");
        let Some(t) = v.as_table() else {
            problems.push(format!("{at}: must be a table ([[checks]])"));
            continue;
        };
        let ty = match t
            .get("type")
            .or_else(|| t.get("check"))
            .and_then(|x| x.as_str())
        {
            Some(s) => s.to_string(),
            None => {
                problems.push(format!("{at}: `type` is missing (one of: {TYPES})"));
                continue;
            }
        };
        let Some(keys) = type_keys(&ty) else {
            problems.push(format!("{at}: unknown type {ty:?} (one of: {TYPES})"));
            continue;
        };
        let at = format!("{at} ({ty})");
        let mut p = Vec::new();
        for k in t.keys() {
            if !COMMON.contains(&k.as_str()) && !keys.contains(&k.as_str()) && k != "check" {
                p.push(format!(
                    "{at}: unknown key `{k}` (keys: {})",
                    [COMMON, keys].concat().join(", ")
                ));
            }
        }
        let str_of = |k: &str, p: &mut Vec<String>| -> Option<String> {
            match t.get(k) {
                None => None,
                Some(toml::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Some(_) => {
                    p.push(format!("{at}: `{k}` must be a non-empty string"));
                    None
                }
            }
        };
        let num_of = |k: &str, p: &mut Vec<String>| -> Option<f64> {
            match t.get(k) {
                None => None,
                Some(toml::Value::Integer(i)) => Some(*i as f64),
                Some(toml::Value::Float(f)) => Some(*f),
                Some(_) => {
                    p.push(format!("{at}: `{k}` must be a number"));
                    None
                }
            }
        };
        let mut columns: Vec<String> = Vec::new();
        if let Some(c) = str_of("column", &mut p) {
            columns.push(c);
        }
        match t.get("columns") {
            None => {}
            Some(toml::Value::Array(a)) => {
                for c in a {
                    match c.as_str() {
                        Some(s) if !s.trim().is_empty() => columns.push(s.trim().to_string()),
                        _ => p.push(format!("{at}: `columns` must hold non-empty strings")),
                    }
                }
            }
            Some(_) => p.push(format!("{at}: `columns` must be an array of strings")),
        }
        let severity = match t.get("severity").map(|s| s.as_str()) {
            None => Severity::Error,
            Some(Some("error")) => Severity::Error,
            Some(Some("warn")) | Some(Some("warning")) => Severity::Warn,
            Some(_) => {
                p.push(format!("{at}: `severity` must be \"warn\" or \"error\""));
                Severity::Error
            }
        };
        let tolerance = num_of("tolerance", &mut p).unwrap_or(0.0);
        if !(0.0..=1.0).contains(&tolerance) {
            p.push(format!("{at}: `tolerance` is a share of rows, from 0 to 1"));
        }
        let filter = str_of("where", &mut p);
        if let Some(f) = &filter {
            if let Err(e) = polars_expr(f) {
                p.push(format!("{at}: `where` {f:?} is not a SQL condition: {e}"));
            }
        }
        let need_one = |p: &mut Vec<String>| -> String {
            match columns.as_slice() {
                [c] => c.clone(),
                [] => {
                    p.push(format!("{at}: `column` is missing"));
                    String::new()
                }
                _ => {
                    p.push(format!("{at}: takes one `column`"));
                    columns[0].clone()
                }
            }
        };
        let mut specs = Vec::new();
        match ty.as_str() {
            "not_null" => {
                if columns.is_empty() {
                    p.push(format!("{at}: `column` or `columns` is missing"));
                }
                specs.extend(columns.iter().map(|c| Spec::NotNull { column: c.clone() }));
            }
            "unique" => {
                if columns.is_empty() {
                    p.push(format!("{at}: `column` or `columns` is missing"));
                }
                specs.push(Spec::Unique {
                    columns: columns.clone(),
                });
            }
            "accepted_values" => {
                let column = need_one(&mut p);
                let values = match t.get("values") {
                    Some(toml::Value::Array(a)) if !a.is_empty() => {
                        if a.iter().any(|x| {
                            !matches!(
                                x,
                                toml::Value::String(_)
                                    | toml::Value::Integer(_)
                                    | toml::Value::Float(_)
                                    | toml::Value::Boolean(_)
                            )
                        }) {
                            p.push(format!(
                                "{at}: `values` must hold strings, numbers or booleans"
                            ));
                        }
                        a.clone()
                    }
                    _ => {
                        p.push(format!("{at}: `values` must be a non-empty array"));
                        Vec::new()
                    }
                };
                specs.push(Spec::AcceptedValues { column, values });
            }
            "range" => {
                let column = need_one(&mut p);
                let (min, max) = (t.get("min").cloned(), t.get("max").cloned());
                for (k, b) in [("min", &min), ("max", &max)] {
                    match b {
                        None
                        | Some(toml::Value::Integer(_))
                        | Some(toml::Value::Float(_))
                        | Some(toml::Value::Datetime(_)) => {}
                        Some(toml::Value::String(s))
                            if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => {}
                        Some(_) => p.push(format!(
                            "{at}: `{k}` must be a number or a date (\"YYYY-MM-DD\")"
                        )),
                    }
                }
                if min.is_none() && max.is_none() {
                    p.push(format!("{at}: give `min`, `max` or both"));
                }
                specs.push(Spec::Range { column, min, max });
            }
            "regex" => {
                let column = need_one(&mut p);
                let pattern = str_of("pattern", &mut p).unwrap_or_default();
                if pattern.is_empty() {
                    p.push(format!("{at}: `pattern` is missing"));
                } else if let Some(e) = crate::error::regex_problem(&pattern) {
                    p.push(format!(
                        "{at}: `pattern` is not a valid regular expression: {e}"
                    ));
                }
                specs.push(Spec::Regex { column, pattern });
            }
            "relationships" => {
                let column = need_one(&mut p);
                let to = str_of("to", &mut p).unwrap_or_else(|| {
                    p.push(format!(
                        "{at}: `to` (the referenced table, e.g. clean.enterprises) is missing"
                    ));
                    String::new()
                });
                let field = str_of("field", &mut p).unwrap_or_else(|| column.clone());
                specs.push(Spec::Relationships { column, to, field });
            }
            "freshness" => {
                let max_age_days = match t.get("max_age") {
                    Some(v) => parse_age(v).unwrap_or_else(|e| {
                        p.push(format!("{at}: `max_age` {e}"));
                        1.0
                    }),
                    None => {
                        p.push(format!("{at}: `max_age` is missing (e.g. \"2d\")"));
                        1.0
                    }
                };
                if columns.len() > 1 {
                    p.push(format!("{at}: takes at most one `column`"));
                }
                specs.push(Spec::Freshness {
                    column: columns.first().cloned(),
                    max_age_days,
                });
            }
            "row_count" => {
                let int = |k: &str, p: &mut Vec<String>| match t.get(k) {
                    None => None,
                    Some(toml::Value::Integer(i)) if *i >= 0 => Some(*i as u64),
                    Some(_) => {
                        p.push(format!("{at}: `{k}` must be a non-negative integer"));
                        None
                    }
                };
                let (min, max) = (int("min", &mut p), int("max", &mut p));
                if min.is_none() && max.is_none() {
                    p.push(format!("{at}: give `min`, `max` or both"));
                }
                specs.push(Spec::RowCount { min, max });
            }
            "row_count_drift" => {
                let max_change_pct = num_of("max_change_pct", &mut p).unwrap_or_else(|| {
                    p.push(format!(
                        "{at}: `max_change_pct` is missing (e.g. 30 for ±30%)"
                    ));
                    0.0
                });
                let compare = match t.get("compare") {
                    None => 7,
                    Some(toml::Value::Integer(i)) if (1..=366).contains(i) => *i as usize,
                    Some(_) => {
                        p.push(format!(
                            "{at}: `compare` is a number of previous partitions, 1 to 366"
                        ));
                        7
                    }
                };
                specs.push(Spec::RowCountDrift {
                    max_change_pct,
                    compare,
                });
            }
            "schema_drift" => {
                let allow_added = match t.get("allow_added") {
                    None => false,
                    Some(toml::Value::Boolean(b)) => *b,
                    Some(_) => {
                        p.push(format!("{at}: `allow_added` must be true or false"));
                        false
                    }
                };
                specs.push(Spec::SchemaDrift { allow_added });
            }
            "expression" => {
                let expression = str_of("expression", &mut p).unwrap_or_default();
                if expression.is_empty() {
                    p.push(format!(
                        "{at}: `expression` (a SQL condition every row must meet) is missing"
                    ));
                } else if let Err(e) = polars_expr(&expression) {
                    p.push(format!(
                        "{at}: `expression` {expression:?} is not a SQL condition: {e}"
                    ));
                }
                specs.push(Spec::Expression { expression });
            }
            _ => unreachable!(),
        }
        if filter.is_some()
            && !specs
                .iter()
                .all(|s| s.row_level() || matches!(s, Spec::RowCount { .. }))
        {
            p.push(format!(
                "{at}: `where` applies to row checks and row_count only"
            ));
        }
        if !p.is_empty() {
            problems.extend(p);
            continue;
        }
        let explicit = t.get("name").and_then(|n| n.as_str()).map(str::to_string);
        let n = specs.len();
        for spec in specs {
            let name = match &explicit {
                Some(e) if n == 1 => e.clone(),
                Some(e) => format!("{e}({})", spec.columns().join(",")),
                None => default_name(&spec),
            };
            out.push(Check {
                name,
                spec,
                severity,
                tolerance,
                filter: filter.clone(),
                origin: origin.to_string(),
            });
        }
    }
    (out, problems)
}

/// A model's checks, each with the file it was declared in (its SQL file's config comment,
/// its sidecar, or its job file).
pub fn parse_model_checks(
    config: &crate::transform::ModelConfig,
) -> std::result::Result<Vec<Check>, Vec<String>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut start = 0;
    let origin_of = |i: usize| config.check_origins.get(i).map_or("", String::as_str);
    while start < config.checks.len() {
        let origin = origin_of(start);
        let end = (start..config.checks.len())
            .find(|&i| origin_of(i) != origin)
            .unwrap_or(config.checks.len());
        match parse_checks(&config.checks[start..end], origin) {
            Ok(c) => out.extend(c),
            Err(p) => problems.extend(p),
        }
        start = end;
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn default_name(spec: &Spec) -> String {
    let cols = spec.columns();
    match spec {
        Spec::Relationships { to, field, .. } => {
            format!("relationships({} -> {to}.{field})", cols.join(","))
        }
        _ if cols.is_empty() => spec.type_name().to_string(),
        _ => format!("{}({})", spec.type_name(), cols.join(",")),
    }
}

// ---------------------------------------------------------------------------------------------
// Declarations across the project

/// Every check declared in the project, by table (`layer.table`): ingest contracts'
/// `[[checks]]` (clean tables), models' configs (feature tables), and `check` job files.
/// Declarations that do not parse are reported, all at once.
pub fn declarations(
    project: &Project,
) -> std::result::Result<BTreeMap<String, Vec<Check>>, Vec<String>> {
    let idx = crate::transform::index(project);
    let mut out: BTreeMap<String, Vec<Check>> = BTreeMap::new();
    let mut problems = Vec::new();
    for f in &idx.files {
        let tables: Vec<String> = match f.kind.as_str() {
            "ingest" => vec![format!(
                "clean.{}",
                crate::transform::ProjectIndex::ingest_table(f)
            )],
            "check" => check_job_tables(&f.table, &f.name),
            _ => continue,
        };
        let Some(v) = f.table.get("checks") else {
            continue;
        };
        let Some(items) = v.as_array() else {
            problems.push(format!(
                "{}: `checks` must be an array of tables ([[checks]])",
                f.rel
            ));
            continue;
        };
        match parse_checks(items, &f.rel) {
            Ok(cs) => {
                for t in tables {
                    out.entry(t).or_default().extend(cs.iter().cloned());
                }
            }
            Err(p) => problems.extend(p),
        }
    }
    let wh = Warehouse::new(&project.warehouse_root);
    let catalog = idx.catalog(&wh);
    for path in crate::transform::discover(&project.root) {
        match crate::transform::load(project, &path, &catalog, None) {
            Ok(m) if !m.config.checks.is_empty() => match parse_model_checks(&m.config) {
                Ok(cs) => out.entry(m.table()).or_default().extend(cs),
                Err(p) => problems.extend(p),
            },
            Ok(_) => {}
            // A broken model is reported by its sql job; here only its checks matter.
            Err(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The tables a `check` job file checks: `table`, `[matrix] table`, or its name when that
/// is `layer.table`.
pub fn check_job_tables(t: &toml::Table, name: &str) -> Vec<String> {
    if let Some(s) = t.get("table").and_then(|v| v.as_str()) {
        return vec![s.to_string()];
    }
    if let Some(vals) = t
        .get("matrix")
        .and_then(|m| m.get("table"))
        .and_then(|v| v.as_array())
    {
        return vals
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
    }
    if name.contains('.') {
        return vec![name.to_string()];
    }
    Vec::new()
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub check: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub columns: String,
    pub severity: Severity,
    /// pass | warn | fail | error (could not be evaluated).
    pub status: String,
    pub rows: u64,
    pub failing_rows: u64,
    pub observed: String,
    pub expected: String,
    pub message: String,
    /// A few failing values.
    pub sample: String,
    pub origin: String,
    pub seconds: f64,
}

impl CheckResult {
    pub fn failed(&self) -> bool {
        self.status != "pass"
    }

    /// Whether this result fails the job (an `error` check that did not pass).
    pub fn blocking(&self) -> bool {
        self.severity == Severity::Error && self.failed()
    }
}

/// All checks of one table for one date.
#[derive(Debug, Clone, Serialize)]
pub struct TableOutcome {
    pub table: String,
    /// The Hive keys checked besides `dt` (a family instance, e.g. `branch=0101`); empty when
    /// the whole partition of the date is checked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partition: Vec<(String, String)>,
    /// The partition checked (the run date's, else the latest before it).
    pub checked_dt: Option<String>,
    pub rows: u64,
    pub results: Vec<CheckResult>,
}

impl TableOutcome {
    pub fn blocking(&self) -> usize {
        self.results.iter().filter(|r| r.blocking()).count()
    }
    pub fn warnings(&self) -> usize {
        self.warning_lines().len()
    }
    /// One line per blocking failure (a failed `error` check, or a check that could not run).
    pub fn failure_lines(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|r| r.blocking())
            .map(|r| {
                if r.status == "error" {
                    format!("{} could not run: {}", r.check, r.message)
                } else {
                    format!("{}: {}", r.check, r.observed)
                }
            })
            .collect()
    }
    /// One line per failed `warn` check, for the run summary's warnings.
    pub fn warning_lines(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|r| r.failed() && !r.blocking())
            .map(|r| {
                // A `warn` check that could not run has its reason in the message.
                if r.status == "error" {
                    format!("check {} (warn) could not run: {}", r.check, r.message)
                } else {
                    format!("check {} (warn): {}", r.check, r.observed)
                }
            })
            .collect()
    }
}

struct Ctx<'a> {
    wh: &'a Warehouse,
    catalog: &'a Catalog,
    layer: Layer,
    table: String,
    date: NaiveDate,
    chosen: Vec<scan::Partition>,
    all: Vec<scan::Partition>,
    partition: Vec<(String, String)>,
    lf: Option<LazyFrame>,
    schema: Option<SchemaRef>,
}

fn status_for(sev: Severity, ok: bool) -> &'static str {
    match (ok, sev) {
        (true, _) => "pass",
        (false, Severity::Warn) => "warn",
        (false, Severity::Error) => "fail",
    }
}

fn pl<T>(r: PolarsResult<T>) -> std::result::Result<T, String> {
    r.map_err(|e| {
        let s = e.to_string();
        s.split("\n\nResolved plan")
            .next()
            .unwrap_or(&s)
            .trim()
            .to_string()
    })
}

/// Evaluates `checks` on `layer.table` for `date`.
pub fn evaluate(
    wh: &Warehouse,
    catalog: &Catalog,
    layer: Layer,
    table: &str,
    date: NaiveDate,
    checks: &[Check],
) -> TableOutcome {
    evaluate_in(wh, catalog, layer, table, date, checks, &[])
}

/// As `evaluate`, on the partitions that agree with `partition` (a job family instance's
/// Hive keys, e.g. `branch=0101`): its rows, and its own history for the drift checks.
pub fn evaluate_in(
    wh: &Warehouse,
    catalog: &Catalog,
    layer: Layer,
    table: &str,
    date: NaiveDate,
    checks: &[Check],
    partition: &[(String, String)],
) -> TableOutcome {
    let all = scan::narrow(scan::partitions(wh, layer, table), partition);
    let exact: Vec<scan::Partition> = all.iter().filter(|p| p.dt == date).cloned().collect();
    let chosen = if exact.is_empty() {
        scan::select(&all, &DtSel::Latest, Some(date), false)
    } else {
        exact
    };
    let checked_dt = chosen.first().map(|p| p.dt.to_string());
    let (lf, schema) = if chosen.is_empty() {
        (None, None)
    } else {
        match scan::scan(&wh.table_dir(layer, table), &chosen) {
            Ok(mut lf) => {
                let schema = lf.collect_schema().ok();
                (Some(lf), schema)
            }
            Err(_) => (None, None),
        }
    };
    let mut ctx = Ctx {
        wh,
        catalog,
        layer,
        table: table.to_string(),
        date,
        chosen,
        all,
        partition: partition.to_vec(),
        lf,
        schema,
    };
    let rows: u64 = ctx
        .chosen
        .iter()
        .filter_map(|p| crate::warehouse::read_success(&p.dir).map(|s| s.rows))
        .sum();
    let mut results = Vec::with_capacity(checks.len());
    for c in checks {
        let started = Instant::now();
        let mut r = CheckResult {
            check: c.name.clone(),
            ty: c.spec.type_name().to_string(),
            columns: c.spec.columns().join(","),
            severity: c.severity,
            status: String::new(),
            rows: 0,
            failing_rows: 0,
            observed: String::new(),
            expected: String::new(),
            message: String::new(),
            sample: String::new(),
            origin: c.origin.clone(),
            seconds: 0.0,
        };
        match run_check(&mut ctx, c, &mut r) {
            Ok(ok) => r.status = status_for(c.severity, ok).to_string(),
            Err(msg) => {
                r.status = "error".into();
                r.message = msg;
            }
        }
        r.seconds = started.elapsed().as_secs_f64();
        results.push(r);
    }
    TableOutcome {
        table: format!("{layer}.{table}"),
        partition: partition.to_vec(),
        checked_dt,
        rows,
        results,
    }
}

fn need_columns(ctx: &Ctx<'_>, cols: &[String]) -> std::result::Result<(), String> {
    let Some(schema) = &ctx.schema else {
        return Ok(());
    };
    let missing: Vec<&String> = cols
        .iter()
        .filter(|c| schema.get(c.as_str()).is_none())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "no column {} in {}.{} (columns: {})",
            missing
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            ctx.layer,
            ctx.table,
            schema
                .iter_names()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

fn data(ctx: &Ctx<'_>) -> std::result::Result<LazyFrame, String> {
    ctx.lf.clone().ok_or_else(|| {
        if ctx.all.is_empty() {
            format!("{}.{} has no committed partition", ctx.layer, ctx.table)
        } else {
            format!(
                "{}.{} has no partition on or before {} (first: {})",
                ctx.layer, ctx.table, ctx.date, ctx.all[0].dt
            )
        }
    })
}

/// A check's SQL condition as a polars expression, in the dialect of queries (validation:
/// no run date or table schema yet).
fn polars_expr(text: &str) -> PolarsResult<Expr> {
    polars_expr_on(text, None)
}

/// A check's condition for a run: the run date's placeholders, and date texts beside the
/// table's date columns typed as a query types them.
fn polars_expr_on(text: &str, ctx: Option<&Ctx<'_>>) -> PolarsResult<Expr> {
    let temporal: Vec<(String, bool)> = ctx
        .and_then(|c| c.schema.as_ref())
        .map(|s| {
            s.iter()
                .filter_map(|(n, t)| match t {
                    DataType::Date => Some((n.to_string(), false)),
                    DataType::Datetime(..) => Some((n.to_string(), true)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let text =
        crate::transform::parse::expression_for_polars_on(text, ctx.map(|c| c.date), &temporal)
            .map_err(|e| polars::prelude::polars_err!(ComputeError: "{}", e.message))?;
    polars::sql::sql_expr(&text)
}

fn filtered(ctx: &Ctx<'_>, c: &Check) -> std::result::Result<LazyFrame, String> {
    let lf = data(ctx)?;
    Ok(match &c.filter {
        Some(f) => lf.filter(pl(polars_expr_on(f, Some(ctx)))?),
        None => lf,
    })
}

fn scalar_u64(df: &DataFrame, name: &str) -> u64 {
    df.column(name)
        .ok()
        .and_then(|c| c.get(0).ok())
        .and_then(|v| v.extract::<u64>())
        .unwrap_or(0)
}

/// A literal of the column's type from a TOML bound.
fn bound_lit(v: &toml::Value, dtype: &DataType) -> std::result::Result<Expr, String> {
    match (v, dtype) {
        (toml::Value::Integer(i), _) if dtype.is_primitive_numeric() => Ok(lit(*i as f64)),
        (toml::Value::Float(f), _) if dtype.is_primitive_numeric() => Ok(lit(*f)),
        (toml::Value::String(s), DataType::Date | DataType::Datetime(..)) => {
            let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| format!("{s:?} is not a date"))?;
            Ok(lit(d))
        }
        (toml::Value::Datetime(d), DataType::Date | DataType::Datetime(..)) => {
            let s = d.to_string();
            let d = NaiveDate::parse_from_str(&s[..10.min(s.len())], "%Y-%m-%d")
                .map_err(|_| format!("{s:?} is not a date"))?;
            Ok(lit(d))
        }
        (v, t) => Err(format!("bound {v} does not suit a column of type {t}")),
    }
}

fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Up to five distinct failing values of `cols`.
fn sample(lf: LazyFrame, fail: Expr, cols: &[String]) -> String {
    let exprs: Vec<Expr> = cols.iter().map(|c| col(c.as_str())).collect();
    let Ok(df) = query::collect(
        lf.filter(fail)
            .select(exprs)
            .unique_stable(None, UniqueKeepStrategy::First)
            .limit(5),
    ) else {
        return String::new();
    };
    let mut out = Vec::new();
    for i in 0..df.height() {
        let vals: Vec<String> = df
            .columns()
            .iter()
            .map(|c| match c.get(i) {
                Ok(AnyValue::Null) => "null".to_string(),
                Ok(v) => crate::transform::query::cell(&v),
                Err(_) => "?".into(),
            })
            .collect();
        out.push(if vals.len() == 1 {
            vals[0].clone()
        } else {
            format!("({})", vals.join(", "))
        });
    }
    out.join("; ")
}

/// Evaluates one check; `Ok(passed)`, or `Err` when it cannot be evaluated.
fn run_check(
    ctx: &mut Ctx<'_>,
    c: &Check,
    r: &mut CheckResult,
) -> std::result::Result<bool, String> {
    need_columns(ctx, &c.spec.columns())?;
    let row_check = |ctx: &Ctx<'_>,
                     fail: Expr,
                     r: &mut CheckResult,
                     expected: String,
                     cols: &[String]|
     -> std::result::Result<bool, String> {
        let lf = filtered(ctx, c)?;
        let df = pl(query::collect(
            lf.clone().select([
                len().cast(DataType::UInt64).alias("rows"),
                fail.clone()
                    .fill_null(lit(false))
                    .cast(DataType::UInt64)
                    .sum()
                    .alias("failing"),
            ]),
        ))?;
        r.rows = scalar_u64(&df, "rows");
        r.failing_rows = scalar_u64(&df, "failing");
        r.expected = expected;
        finish_row_check(c, r);
        if r.failing_rows > 0 {
            r.sample = sample(lf, fail.fill_null(lit(false)), cols);
        }
        Ok(r.failing_rows as f64 <= c.tolerance * r.rows as f64)
    };
    match &c.spec {
        Spec::NotNull { column } => row_check(
            ctx,
            col(column.as_str()).is_null(),
            r,
            "no nulls".into(),
            &[],
        ),
        Spec::AcceptedValues { column, values } => {
            let all_str = values.iter().all(|v| v.is_str());
            let (target, series) = if all_str {
                (
                    col(column.as_str()).cast(DataType::String),
                    Series::new("v".into(), values.iter().map(show).collect::<Vec<_>>()),
                )
            } else if values.iter().all(|v| v.is_integer()) {
                (
                    col(column.as_str()).cast(DataType::Int64),
                    Series::new(
                        "v".into(),
                        values
                            .iter()
                            .filter_map(|v| v.as_integer())
                            .collect::<Vec<_>>(),
                    ),
                )
            } else if values.iter().all(|v| v.is_bool()) {
                (
                    col(column.as_str()).cast(DataType::Boolean),
                    Series::new(
                        "v".into(),
                        values
                            .iter()
                            .filter_map(|v| v.as_bool())
                            .collect::<Vec<_>>(),
                    ),
                )
            } else {
                (
                    col(column.as_str()).cast(DataType::Float64),
                    Series::new(
                        "v".into(),
                        values
                            .iter()
                            .filter_map(|v| {
                                v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
                            })
                            .collect::<Vec<_>>(),
                    ),
                )
            };
            let fail = col(column.as_str())
                .is_not_null()
                .and(target.is_in(lit(series).implode(false), false).not());
            let expected = format!(
                "one of {}",
                values.iter().map(show).collect::<Vec<_>>().join(", ")
            );
            row_check(ctx, fail, r, expected, std::slice::from_ref(column))
        }
        Spec::Range { column, min, max } => {
            // Without a partition there is no schema to type the bounds by: say so, as the
            // other checks do (it read "bound does not suit a column of type f64").
            let _ = data(ctx)?;
            let dtype = ctx
                .schema
                .as_ref()
                .and_then(|s| s.get(column.as_str()).cloned())
                .unwrap_or(DataType::Float64);
            let x = if dtype.is_primitive_numeric() {
                col(column.as_str()).cast(DataType::Float64)
            } else if dtype == DataType::Date || matches!(dtype, DataType::Datetime(..)) {
                col(column.as_str()).cast(DataType::Date)
            } else {
                return Err(format!(
                    "range needs a numeric or date column; {column} is {dtype}"
                ));
            };
            let mut fail = lit(false);
            let mut expected = Vec::new();
            if let Some(m) = min {
                fail = fail.or(x.clone().lt(bound_lit(m, &dtype)?));
                expected.push(format!(">= {}", show(m)));
            }
            if let Some(m) = max {
                fail = fail.or(x.clone().gt(bound_lit(m, &dtype)?));
                expected.push(format!("<= {}", show(m)));
            }
            row_check(
                ctx,
                fail,
                r,
                expected.join(" and "),
                std::slice::from_ref(column),
            )
        }
        Spec::Regex { column, pattern } => {
            let anchored = format!("^(?:{pattern})$");
            let fail = col(column.as_str()).is_not_null().and(
                col(column.as_str())
                    .cast(DataType::String)
                    .str()
                    .contains(lit(anchored), true)
                    .not(),
            );
            row_check(
                ctx,
                fail,
                r,
                format!("matches /{pattern}/"),
                std::slice::from_ref(column),
            )
        }
        Spec::Expression { expression } => {
            let e = pl(polars_expr_on(expression, Some(ctx)))?;
            // Like a SQL CHECK constraint, a NULL outcome passes.
            row_check(ctx, e.not(), r, expression.clone(), &[])
        }
        Spec::Unique { columns } => {
            let lf = filtered(ctx, c)?;
            let keys: Vec<Expr> = columns.iter().map(|k| col(k.as_str())).collect();
            let mut non_null = lit(true);
            for k in columns {
                non_null = non_null.and(col(k.as_str()).is_not_null());
            }
            let dups = lf
                .clone()
                .filter(non_null)
                .group_by(keys)
                .agg([len().alias("__n")])
                .filter(col("__n").gt(lit(1)));
            let df = pl(query::collect(dups.clone().select([
                len().cast(DataType::UInt64).alias("keys"),
                col("__n").cast(DataType::UInt64).sum().alias("failing"),
            ])))?;
            let total = pl(query::collect(
                lf.select([len().cast(DataType::UInt64).alias("rows")]),
            ))?;
            r.rows = scalar_u64(&total, "rows");
            r.failing_rows = scalar_u64(&df, "failing");
            let dup_keys = scalar_u64(&df, "keys");
            r.expected = "no duplicate keys".into();
            finish_row_check(c, r);
            if dup_keys > 0 {
                r.observed = format!("{dup_keys} duplicated key(s) over {} rows", r.failing_rows);
                if let Ok(s) = pl(query::collect(
                    dups.sort(
                        ["__n"],
                        SortMultipleOptions::default().with_order_descending(true),
                    )
                    .limit(5),
                )) {
                    let mut v = Vec::new();
                    for i in 0..s.height() {
                        let parts: Vec<String> = columns
                            .iter()
                            .map(|k| {
                                s.column(k)
                                    .ok()
                                    .and_then(|c| c.get(i).ok())
                                    .map(|v| crate::transform::query::cell(&v))
                                    .unwrap_or_default()
                            })
                            .collect();
                        let n = s
                            .column("__n")
                            .ok()
                            .and_then(|c| c.get(i).ok())
                            .map(|v| v.to_string())
                            .unwrap_or_default();
                        v.push(format!("{} ×{n}", parts.join("|")));
                    }
                    r.sample = v.join("; ");
                }
            }
            Ok(r.failing_rows as f64 <= c.tolerance * r.rows as f64)
        }
        Spec::Relationships { column, to, field } => {
            let parts: Vec<String> = to.split('.').map(str::to_string).collect();
            let (tl, tt) = ctx
                .catalog
                .resolve(&parts)
                .map_err(|m| format!("`to`: {m}"))?;
            // A family instance looks up its own partition of the target (when it is split
            // by the same keys).
            let tparts = scan::narrow(scan::partitions(ctx.wh, tl, &tt), &ctx.partition);
            let tchosen = scan::select(&tparts, &DtSel::Latest, Some(ctx.date), false);
            if tchosen.is_empty() {
                return Err(format!(
                    "{tl}.{tt} has no partition on or before {}",
                    ctx.date
                ));
            }
            let mut target =
                scan::scan(&ctx.wh.table_dir(tl, &tt), &tchosen).map_err(|e| e.to_string())?;
            let tschema = pl(target.collect_schema())?;
            let Some(tdtype) = tschema.get(field.as_str()).cloned() else {
                return Err(format!(
                    "no column {field:?} in {tl}.{tt} (columns: {})",
                    tschema
                        .iter_names()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            let lf = filtered(ctx, c)?;
            let left = lf
                .clone()
                .filter(col(column.as_str()).is_not_null())
                .select([col(column.as_str()).cast(tdtype.clone()).alias("__k")]);
            let right = target
                .select([col(field.as_str()).alias("__k")])
                .unique(None, UniqueKeepStrategy::Any);
            let orphans = left.join(
                right,
                [col("__k")],
                [col("__k")],
                JoinArgs::new(JoinType::Anti),
            );
            let df = pl(query::collect(
                orphans
                    .clone()
                    .select([len().cast(DataType::UInt64).alias("failing")]),
            ))?;
            let total = pl(query::collect(
                lf.select([len().cast(DataType::UInt64).alias("rows")]),
            ))?;
            r.rows = scalar_u64(&total, "rows");
            r.failing_rows = scalar_u64(&df, "failing");
            r.expected = format!("every {column} in {tl}.{tt}.{field} ({})", tchosen[0].dt);
            finish_row_check(c, r);
            if r.failing_rows > 0 {
                r.sample = sample(orphans, lit(true), &["__k".to_string()]);
            }
            Ok(r.failing_rows as f64 <= c.tolerance * r.rows as f64)
        }
        Spec::Freshness {
            column,
            max_age_days,
        } => {
            // Measured from the end of the run date: a timestamp to the second (so that hour
            // limits mean hours), a date or a partition in whole days.
            let end_of_run_date = (ctx.date + chrono::Days::new(1))
                .and_hms_opt(0, 0, 0)
                .expect("midnight");
            let (newest, age_days) = match column {
                None => {
                    let dt = ctx
                        .chosen
                        .first()
                        .map(|p| p.dt)
                        .ok_or_else(|| data(ctx).err().unwrap_or_default())?;
                    (dt.to_string(), (ctx.date - dt).num_days() as f64)
                }
                Some(cname) => {
                    let lf = data(ctx)?;
                    let df = pl(query::collect(
                        lf.select([col(cname.as_str()).max().alias("m")]),
                    ))?;
                    let m = df.column("m").ok().and_then(|c| c.get(0).ok());
                    let micros = |v: i64, unit: &TimeUnit| match unit {
                        TimeUnit::Milliseconds => v.saturating_mul(1000),
                        TimeUnit::Microseconds => v,
                        TimeUnit::Nanoseconds => v / 1000,
                    };
                    let timestamp = match &m {
                        Some(AnyValue::Datetime(v, unit, _)) => Some(micros(*v, unit)),
                        Some(AnyValue::DatetimeOwned(v, unit, _)) => Some(micros(*v, unit)),
                        _ => None,
                    };
                    match (timestamp, m) {
                        (Some(us), _) => {
                            let ts = chrono::DateTime::from_timestamp_micros(us)
                                .ok_or_else(|| "bad timestamp".to_string())?
                                .naive_utc();
                            let secs = (end_of_run_date - ts).num_seconds() as f64;
                            (ts.to_string(), secs / 86_400.0)
                        }
                        (None, Some(AnyValue::Date(days))) => {
                            let d = NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                                .ok_or_else(|| "bad date".to_string())?;
                            (d.to_string(), (ctx.date - d).num_days() as f64)
                        }
                        (None, Some(AnyValue::Null) | None) => {
                            return Err(format!("{cname} has no value to measure freshness by"))
                        }
                        (None, Some(other)) => {
                            return Err(format!(
                                "{cname} is of type {}: freshness needs a date or a timestamp",
                                other.dtype()
                            ))
                        }
                    }
                }
            };
            r.observed = format!(
                "newest {} {newest}, {} before the end of {}",
                column
                    .as_deref()
                    .map(|c| format!("{c} ="))
                    .unwrap_or_else(|| "partition dt =".into()),
                fmt_age(age_days),
                ctx.date
            );
            r.expected = format!("at most {} old", fmt_age(*max_age_days));
            Ok(age_days <= *max_age_days + 1e-9)
        }
        Spec::RowCount { min, max } => {
            let n = if c.filter.is_some() {
                let df = pl(query::collect(
                    filtered(ctx, c)?.select([len().cast(DataType::UInt64).alias("rows")]),
                ))?;
                scalar_u64(&df, "rows")
            } else {
                let _ = data(ctx)?;
                ctx.chosen
                    .iter()
                    .filter_map(|p| crate::warehouse::read_success(&p.dir).map(|s| s.rows))
                    .sum()
            };
            r.rows = n;
            r.observed = format!("{n} rows");
            r.expected = match (min, max) {
                (Some(a), Some(b)) => format!("{a} to {b} rows"),
                (Some(a), None) => format!(">= {a} rows"),
                (None, Some(b)) => format!("<= {b} rows"),
                _ => String::new(),
            };
            Ok(min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m))
        }
        Spec::RowCountDrift {
            max_change_pct,
            compare,
        } => {
            let _ = data(ctx)?;
            let cur_dt = ctx.chosen[0].dt;
            let rows_of = |dt: NaiveDate| -> u64 {
                ctx.all
                    .iter()
                    .filter(|p| p.dt == dt)
                    .filter_map(|p| crate::warehouse::read_success(&p.dir).map(|s| s.rows))
                    .sum()
            };
            let cur = rows_of(cur_dt);
            let mut prev_dts: Vec<NaiveDate> = ctx
                .all
                .iter()
                .map(|p| p.dt)
                .filter(|d| *d < cur_dt)
                .collect();
            prev_dts.dedup();
            let prev_dts: Vec<NaiveDate> = prev_dts.into_iter().rev().take(*compare).collect();
            r.rows = cur;
            r.expected = format!(
                "within ±{}% of the mean of the previous {compare} partition(s)",
                fmt_num(*max_change_pct)
            );
            if prev_dts.is_empty() {
                r.observed = format!("{cur} rows; no earlier partition to compare with");
                return Ok(true);
            }
            let mean =
                prev_dts.iter().map(|d| rows_of(*d) as f64).sum::<f64>() / prev_dts.len() as f64;
            let change = if mean == 0.0 {
                if cur == 0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                (cur as f64 - mean) / mean * 100.0
            };
            r.observed = format!(
                "{cur} rows vs a mean of {mean:.0} over {} partition(s) ({change:+.1}%)",
                prev_dts.len()
            );
            Ok(change.abs() <= *max_change_pct)
        }
        Spec::SchemaDrift { allow_added } => {
            let _ = data(ctx)?;
            let cur_dt = ctx.chosen[0].dt;
            let Some(prev) = ctx.all.iter().rev().find(|p| p.dt < cur_dt) else {
                r.observed = "no earlier partition to compare with".into();
                return Ok(true);
            };
            let schema_of =
                |dir: &std::path::Path| -> std::result::Result<Vec<(String, String)>, String> {
                    let files = scan::part_files(dir);
                    let f = files
                        .first()
                        .ok_or_else(|| format!("{}: no data file", dir.display()))?;
                    crate::warehouse::parquet::read_schema(f).map_err(|e| e.to_string())
                };
            let now = schema_of(&ctx.chosen[0].dir)?;
            let before = schema_of(&prev.dir)?;
            let mut changes = Vec::new();
            let mut blocking = false;
            for (n, t) in &now {
                match before.iter().find(|(m, _)| m == n) {
                    None => {
                        changes.push(format!("+{n} {t}"));
                        blocking |= !allow_added;
                    }
                    Some((_, u)) if u != t => {
                        changes.push(format!("{n}: {u} -> {t}"));
                        blocking = true;
                    }
                    _ => {}
                }
            }
            for (n, t) in &before {
                if !now.iter().any(|(m, _)| m == n) {
                    changes.push(format!("-{n} {t}"));
                    blocking = true;
                }
            }
            r.expected = format!(
                "the columns and types of dt={}{}",
                prev.dt,
                if *allow_added {
                    " (added columns allowed)"
                } else {
                    ""
                }
            );
            r.observed = if changes.is_empty() {
                format!("{} columns, unchanged", now.len())
            } else {
                changes.join("; ")
            };
            Ok(!blocking)
        }
    }
}

fn fmt_num(f: f64) -> String {
    if f == f.trunc() {
        format!("{f:.0}")
    } else {
        format!("{f}")
    }
}

fn finish_row_check(c: &Check, r: &mut CheckResult) {
    let pct = if r.rows == 0 {
        0.0
    } else {
        100.0 * r.failing_rows as f64 / r.rows as f64
    };
    r.observed = format!("{} of {} rows fail ({pct:.2}%)", r.failing_rows, r.rows);
    if c.tolerance > 0.0 {
        r.expected = format!("{} (tolerance {:.2}%)", r.expected, c.tolerance * 100.0);
    }
    if let Some(f) = &c.filter {
        r.expected = format!("{} where {f}", r.expected);
    }
}

// ---------------------------------------------------------------------------------------------
// Results table

/// The results of a table's checks as rows of `quality.check_results`.
pub fn results_frame(
    o: &TableOutcome,
    run_date: NaiveDate,
    job: &str,
    run_id: &str,
) -> Result<DataFrame> {
    let n = o.results.len();
    let rs = &o.results;
    let checked_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let checked_dt: Vec<Option<NaiveDate>> = vec![
        o.checked_dt.as_deref().and_then(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()
        });
        n
    ];
    let df = df!(
        "table_name" => vec![o.table.clone(); n],
        "checked_dt" => checked_dt,
        "run_date" => vec![run_date; n],
        "check" => rs.iter().map(|r| r.check.clone()).collect::<Vec<_>>(),
        "type" => rs.iter().map(|r| r.ty.clone()).collect::<Vec<_>>(),
        "columns" => rs.iter().map(|r| r.columns.clone()).collect::<Vec<_>>(),
        "severity" => rs.iter().map(|r| r.severity.as_str()).collect::<Vec<_>>(),
        "status" => rs.iter().map(|r| r.status.clone()).collect::<Vec<_>>(),
        "rows" => rs.iter().map(|r| r.rows).collect::<Vec<_>>(),
        "failing_rows" => rs.iter().map(|r| r.failing_rows).collect::<Vec<_>>(),
        "observed" => rs.iter().map(|r| r.observed.clone()).collect::<Vec<_>>(),
        "expected" => rs.iter().map(|r| r.expected.clone()).collect::<Vec<_>>(),
        "message" => rs.iter().map(|r| r.message.clone()).collect::<Vec<_>>(),
        "sample" => rs.iter().map(|r| r.sample.clone()).collect::<Vec<_>>(),
        "origin" => rs.iter().map(|r| r.origin.clone()).collect::<Vec<_>>(),
        "seconds" => rs.iter().map(|r| r.seconds).collect::<Vec<_>>(),
        "job" => vec![job.to_string(); n],
        "run_id" => vec![run_id.to_string(); n],
        "checked_at" => vec![checked_at; n],
    )
    .ctx(|| "building the check results".to_string())?;
    Ok(df)
}

/// The partition key of a table's results: `dt=<run date>/table=<layer.table>`.
pub fn results_key(run_date: NaiveDate, table: &str) -> PartitionKey {
    PartitionKey::date(&run_date.format("%Y-%m-%d").to_string()).with("table", table)
}

/// The results key of a family instance's checks: `results_key` then its Hive keys
/// (`dt=<run date>/table=<layer.table>/branch=0101`).
pub fn results_key_in(
    run_date: NaiveDate,
    table: &str,
    partition: &[(String, String)],
) -> PartitionKey {
    let mut key = results_key(run_date, table);
    for (k, v) in partition {
        key = key.with(k, v);
    }
    key
}

/// Commits a table's results into `quality.check_results` (replacing an earlier run's).
pub fn write_results(
    wh: &Warehouse,
    o: &TableOutcome,
    run_date: NaiveDate,
    job: &str,
    run_id: &str,
) -> Result<PathBuf> {
    let mut df = results_frame(o, run_date, job, run_id)?;
    let key = results_key_in(run_date, &o.table, &o.partition);
    let staged = wh.stage(Layer::Quality, RESULTS_TABLE, &key, run_id)?;
    crate::warehouse::parquet::write_frame(&staged.dir().join("part-00000.parquet"), &mut df, &[])?;
    let columns = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    staged.commit(Success {
        rows: df.height() as u64,
        columns,
        job: job.to_string(),
        run_id: run_id.to_string(),
        extra: serde_json::json!({
            "table": o.table,
            "checked_dt": o.checked_dt,
            "checks": o.results.len(),
            "blocking": o.blocking(),
            "warnings": o.warnings(),
        }),
        ..Default::default()
    })
}

/// Resolves a table name for checking (`layer.table` or a bare name).
pub fn resolve_table(
    catalog: &Catalog,
    name: &str,
) -> std::result::Result<(Layer, String), String> {
    let parts: Vec<String> = name.split('.').map(str::to_string).collect();
    catalog.resolve(&parts)
}

/// Runs the declared checks of a table (or of the partitions of a family instance, see
/// `evaluate_in`), records the results and regenerates the day's report. Returns the outcome;
/// the caller decides what a blocking failure means.
///
/// The report is rewritten for whole tables only: a family of thousands of instances would
/// rewrite it thousands of times (each rendering every result of the date). Their results are
/// in `quality.check_results`, and `panorama check --date D` rewrites the report.
pub fn run_table(
    project: &Project,
    table: &str,
    checks: &[Check],
    date: NaiveDate,
    job: &str,
    run_id: &str,
    partition: &[(String, String)],
) -> Result<TableOutcome> {
    let wh = Warehouse::new(&project.warehouse_root);
    let catalog = crate::transform::index(project).catalog(&wh);
    let (layer, t) = resolve_table(&catalog, table).map_err(Error::Config)?;
    let outcome = evaluate_in(&wh, &catalog, layer, &t, date, checks, partition);
    write_results(&wh, &outcome, date, job, run_id)?;
    if partition.is_empty() {
        report::write(project, date, &[])?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests;

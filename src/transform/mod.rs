//! SQL models: one file in `sql/` is one model that materialises `feature.<name>` for a run
//! date, committed atomically like an ingest partition (`warehouse/feature/<name>/dt=D/`).
//!
//! ```sql
//! -- txn_features: per-enterprise transaction aggregates.
//! /* config
//! description = "Inflow, outflow, volatility and counterparties over 30/90/180 days"
//! [[checks]]
//! type = "unique"
//! columns = ["credit_code"]
//! */
//! SELECT credit_code, sum(amount) FILTER ... FROM clean.transactions
//! WHERE ts >= DATE '{{ ds }}' - INTERVAL '30 days' GROUP BY credit_code
//! ```
//!
//! * Tables are referenced as `layer.table`, or by a bare name found in one layer (rejects
//!   excepted); the references are the model's inputs, and so its dependencies.
//! * `{{ ds }}` / `{{ run_date }}` (YYYY-MM-DD), `{{ ds_nodash }}`, `{{ run_id }}` and matrix
//!   values are replaced before parsing.
//! * A reference without a `dt` condition reads the input's latest partition on or before the
//!   run date; with one (`WHERE t.dt >= DATE '{{ ds }}' - INTERVAL '7 days'`), the partitions it
//!   selects, never later than the run date.
//! * The config sits in a leading `/* config … */` comment (TOML) or in the sidecar
//!   `sql/<name>.toml`; the job file `jobs/**/<name>.toml` (`kind = "sql"`) holds the
//!   scheduler's keys (tags, pool, timeout, retries) and may hold the model's too.

pub mod parse;
pub mod query;
pub mod scan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::config::Project;
use crate::error::{Error, Result};
use crate::warehouse::{Layer, PartitionKey, Success, Warehouse};
use query::{Catalog, QueryOptions};

pub const SQL_DIR: &str = "sql";
/// Keys of a model's config (header, sidecar, or its job file).
pub const MODEL_KEYS: &[&str] = &["description", "checks", "model"];

/// The checksum of a model's text recorded in its partitions' `_SUCCESS` (`sql_blake3`): a
/// night run after the file was edited builds the partition again.
pub fn sql_checksum(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

/// A model's configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    #[serde(default)]
    pub description: Option<String>,
    /// Check declarations (see `crate::quality`), run by the `check` job of `feature.<name>`.
    #[serde(default)]
    pub checks: Vec<toml::Value>,
    /// Where each check was declared (the model's file, its sidecar, its job file), for the
    /// checks' `origin` in results and messages.
    #[serde(skip)]
    pub check_origins: Vec<String>,
}

/// A model file, parsed and its references resolved.
#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub path: PathBuf,
    /// Path relative to the project, for messages.
    pub rel: String,
    /// The whole file, placeholders intact.
    pub text: String,
    pub config: ModelConfig,
    /// Input tables, in order of first reference.
    pub reads: Vec<(Layer, String)>,
}

impl Model {
    pub fn table(&self) -> String {
        format!("feature.{}", self.name)
    }
}

/// The leading `/* config … */` block of a model: (TOML text, line of its first TOML line).
pub fn header_config(text: &str) -> Option<(String, usize)> {
    let mut rest = text;
    let mut line = 1;
    loop {
        let trimmed = rest.trim_start();
        line += rest[..rest.len() - trimmed.len()].matches('\n').count();
        rest = trimmed;
        if rest.starts_with("--") {
            let end = rest.find('\n').map(|i| i + 1).unwrap_or(rest.len());
            line += rest[..end].matches('\n').count();
            rest = &rest[end..];
            continue;
        }
        if let Some(body) = rest.strip_prefix("/*") {
            let end = body.find("*/")?;
            let inner = &body[..end];
            let first = inner.trim_start_matches([' ', '\t']);
            if let Some(toml) = first.strip_prefix("config") {
                if toml.starts_with(['\n', '\r', ' ', '\t']) || toml.is_empty() {
                    return Some((toml.to_string(), line));
                }
            }
            line += body[..end + 2].matches('\n').count();
            rest = &body[end + 2..];
            continue;
        }
        return None;
    }
}

/// `sql/*.sql` model files of the project, sorted.
pub fn discover(project_root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(project_root.join(SQL_DIR))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn rel_of(project: &Project, p: &Path) -> String {
    p.strip_prefix(&project.root)
        .unwrap_or(p)
        .to_string_lossy()
        .to_string()
}

/// Reads a model: its config (header, sidecar `sql/<name>.toml`, and `extra` keys from the job
/// file), and its references resolved against `catalog`. Every problem is reported.
pub fn load(
    project: &Project,
    path: &Path,
    catalog: &Catalog,
    extra: Option<&toml::Table>,
) -> Result<Model, Vec<String>> {
    let rel = rel_of(project, path);
    let at = |m: String| format!("{rel}: {m}");
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    if !is_ident(&name) {
        return Err(vec![at(format!(
            "model name {name:?} must be an identifier (letters, digits, _): it names the table feature.{name}"
        ))]);
    }
    let text = std::fs::read_to_string(path).map_err(|e| vec![at(format!("cannot read: {e}"))])?;
    let mut problems = Vec::new();
    let mut config = ModelConfig::default();
    // (what, where its checks come from, keys)
    let mut sources: Vec<(String, String, toml::Table)> = Vec::new();
    if let Some((toml_text, line)) = header_config(&text) {
        match toml::from_str::<toml::Table>(&toml_text) {
            Ok(t) => sources.push((format!("the config comment (line {line})"), rel.clone(), t)),
            Err(e) => problems.push(at(format!(
                "the config comment (from line {line}) is not valid TOML: {}",
                e.to_string().trim().replace('\n', " ")
            ))),
        }
    }
    let sidecar = path.with_extension("toml");
    if sidecar.exists() {
        match std::fs::read_to_string(&sidecar)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                toml::from_str::<toml::Table>(&t)
                    .map_err(|e| e.to_string().trim().replace('\n', " "))
            }) {
            Ok(t) => sources.push((rel_of(project, &sidecar), rel_of(project, &sidecar), t)),
            Err(e) => problems.push(format!("{}: {e}", rel_of(project, &sidecar))),
        }
    }
    if let Some(t) = extra {
        let own: toml::Table = t
            .iter()
            .filter(|(k, _)| *k == "checks" || *k == "description")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        sources.push(("the job file".into(), format!("the job file of {rel}"), own));
    }
    for (what, origin, t) in sources {
        for k in t.keys() {
            if !["description", "checks"].contains(&k.as_str()) {
                let hint = if ["tags", "pool", "timeout", "retries", "after"].contains(&k.as_str())
                {
                    format!(" (the scheduler reads `{k}` from the model's job file in jobs/, kind = \"sql\")")
                } else {
                    String::new()
                };
                problems.push(at(format!(
                    "{what}: unknown key `{k}` (keys: description, checks){hint}"
                )));
            }
        }
        if let Some(d) = t.get("description") {
            match d.as_str() {
                Some(s) if config.description.is_none() => config.description = Some(s.to_string()),
                Some(_) => {}
                None => problems.push(at(format!("{what}: `description` must be a string"))),
            }
        }
        match t.get("checks") {
            None => {}
            Some(toml::Value::Array(items)) => {
                config.checks.extend(items.iter().cloned());
                config
                    .check_origins
                    .extend(std::iter::repeat_n(origin.clone(), items.len()));
            }
            Some(_) => problems.push(at(format!(
                "{what}: `checks` must be an array of tables ([[checks]])"
            ))),
        }
    }

    let mut reads: Vec<(Layer, String)> = Vec::new();
    match parse::references(&text) {
        Err(e) => problems.push(at(e.render(&parse::render_for_analysis(&text)))),
        Ok(refs) => {
            if refs.is_empty() {
                problems.push(at("the model reads no table".into()));
            }
            for r in refs {
                match catalog.resolve(&r.parts) {
                    Ok((l, t)) => {
                        if l == Layer::Feature && t == name {
                            problems.push(at(format!(
                                "line {}: the model reads its own table feature.{name}",
                                r.pos.line
                            )));
                        } else if !reads.contains(&(l, t.clone())) {
                            reads.push((l, t));
                        }
                    }
                    Err(m) => problems.push(at(format!(
                        "line {}, column {}: {m}",
                        r.pos.line, r.pos.column
                    ))),
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(Model {
            name,
            path: path.to_path_buf(),
            rel,
            text,
            config,
            reads,
        })
    } else {
        Err(problems)
    }
}

/// Letters, digits and `_`, not starting with a digit.
pub fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

// ---------------------------------------------------------------------------------------------
// The project's declared tables and job files

/// One job file of the project, as read for the SQL and check kinds.
#[derive(Debug, Clone)]
pub struct JobFileInfo {
    pub rel: String,
    pub path: PathBuf,
    pub kind: String,
    /// `name`, else the file stem.
    pub name: String,
    pub table: toml::Table,
}

/// What the SQL and check kinds need to know of the whole project: the tables jobs and
/// models will write (so that a model may name a table that does not exist yet), and the job
/// files of the kinds that declare checks.
#[derive(Debug, Default)]
pub struct ProjectIndex {
    pub declared: Catalog,
    pub files: Vec<JobFileInfo>,
}

impl ProjectIndex {
    /// Declared tables plus those already in the warehouse.
    pub fn catalog(&self, wh: &Warehouse) -> Catalog {
        let mut c = Catalog::from_warehouse(wh);
        for name in self.declared.names() {
            if let Some((l, t)) = name.split_once('.') {
                if let Some(l) = Layer::parse(l) {
                    c.add(l, t);
                }
            }
        }
        c
    }

    /// `sql/*.sql` files no `sql` job builds (they are not part of any night).
    pub fn unbuilt_models(&self, project: &Project) -> Vec<String> {
        let built: std::collections::BTreeSet<PathBuf> = self
            .files
            .iter()
            .filter(|f| f.kind == "sql")
            .map(|f| match f.table.get("model").and_then(|m| m.as_str()) {
                Some(m) => project.path(m),
                None => project.root.join(SQL_DIR).join(format!("{}.sql", f.name)),
            })
            .collect();
        discover(&project.root)
            .into_iter()
            .filter(|p| !built.contains(p))
            .map(|p| rel_of(project, &p))
            .collect()
    }

    /// The clean table an ingest job file writes.
    pub fn ingest_table(f: &JobFileInfo) -> String {
        f.table
            .get("table")
            .and_then(|v| v.as_str())
            .unwrap_or(&f.name)
            .to_string()
    }
}

/// Every `.toml` file under `dir`, recursively.
pub fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let p = e.path();
        if p.is_dir() {
            toml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

/// Builds the index (no caching); unreadable files are skipped, the engine reports them.
pub fn build_index(project: &Project) -> ProjectIndex {
    let mut paths = Vec::new();
    toml_files(&project.root.join("jobs"), &mut paths);
    paths.sort();
    let mut idx = ProjectIndex::default();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // Most job files of a large project are of other kinds: skip them without parsing.
        if !(text.contains("ingest") || text.contains("sql") || text.contains("check")) {
            continue;
        }
        let Ok(table) = toml::from_str::<toml::Table>(&text) else {
            continue;
        };
        let Some(kind) = table
            .get("kind")
            .and_then(|v| v.as_str())
            .map(str::to_string)
        else {
            continue;
        };
        if !["ingest", "sql", "check"].contains(&kind.as_str()) {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let name = table
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or(&stem)
            .to_string();
        let info = JobFileInfo {
            rel: rel_of(project, &path),
            path: path.clone(),
            kind: kind.clone(),
            name,
            table,
        };
        match kind.as_str() {
            "ingest" => {
                let t = ProjectIndex::ingest_table(&info);
                idx.declared.add(Layer::Clean, &t);
                idx.declared.add(Layer::Rejects, &t);
            }
            "sql" => {
                let model = info
                    .table
                    .get("model")
                    .and_then(|v| v.as_str())
                    .map(|m| {
                        Path::new(m)
                            .file_stem()
                            .map(|s| s.to_string_lossy().to_string())
                            .unwrap_or_default()
                    })
                    .unwrap_or_else(|| info.name.clone());
                idx.declared.add(Layer::Feature, &model);
            }
            _ => {}
        }
        idx.files.push(info);
    }
    for m in discover(&project.root) {
        idx.declared
            .add(Layer::Feature, &m.file_stem().unwrap().to_string_lossy());
    }
    idx
}

/// The index of a project, built once per process (job kinds prepare files in parallel).
pub fn index(project: &Project) -> Arc<ProjectIndex> {
    static CACHE: OnceLock<Mutex<BTreeMap<PathBuf, Arc<ProjectIndex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
    let mut guard = cache.lock().unwrap_or_else(|p| p.into_inner());
    guard
        .entry(project.root.clone())
        .or_insert_with(|| Arc::new(build_index(project)))
        .clone()
}

// ---------------------------------------------------------------------------------------------
// Materialisation

/// One build of a model for a date.
pub struct BuildRequest<'a> {
    pub project: &'a Project,
    pub model: &'a Model,
    pub date: NaiveDate,
    pub run_id: &'a str,
    /// Job name recorded in `_SUCCESS`.
    pub job: &'a str,
    /// Matrix values, available as `{{ key }}`.
    pub vars: &'a BTreeMap<String, String>,
    pub cancel: Option<&'a AtomicBool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub table: String,
    pub rows: u64,
    pub columns: usize,
    pub bytes: u64,
    pub rows_in: u64,
    pub inputs: Vec<query::Input>,
    pub partition: PathBuf,
    pub seconds: f64,
}

/// Runs the model's query for `date` and commits `feature.<name>/dt=<date>` atomically.
pub fn build(req: &BuildRequest<'_>) -> Result<BuildReport> {
    let started = Instant::now();
    let m = req.model;
    let wh = Warehouse::new(&req.project.warehouse_root);
    let idx = index(req.project);
    let catalog = idx.catalog(&wh);
    let mut params = parse::Params::for_date(req.date).with("run_id", req.run_id);
    for (k, v) in req.vars {
        params = params.with(k, v);
    }
    let opts = QueryOptions {
        params,
        as_of: Some(req.date),
        all_partitions: false,
        allow_table_functions: false,
        partition: req
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let mut compiled = query::compile(&wh, &catalog, &m.text, &opts).map_err(|e| match e {
        Error::Config(msg) => Error::Config(format!("{}: {msg}", m.rel)),
        other => other,
    })?;
    let rows_in = compiled
        .inputs
        .iter()
        .map(|i| {
            let Some((l, t)) = i.table.split_once('.') else {
                return 0;
            };
            let Some(layer) = Layer::parse(l) else {
                return 0;
            };
            i.partitions
                .iter()
                .filter_map(|p| {
                    let mut key = PartitionKey::date(p.split('/').next().unwrap_or(p));
                    for kv in p.split('/').skip(1) {
                        if let Some((k, v)) = kv.split_once('=') {
                            key = key.with(k, v);
                        }
                    }
                    wh.read_success(layer, t, &key).map(|s| s.rows)
                })
                .sum::<u64>()
        })
        .sum();
    if req.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Err(Error::Interrupted);
    }
    let key = PartitionKey::instance(req.date, req.vars);
    let staged = wh.stage(Layer::Feature, &m.name, &key, req.run_id)?;
    let file = staged.dir().join("part-00000.parquet");
    // Streamed into the staged file (bounded memory); the partition gives `dt` (and a family's
    // matrix keys), so such a column carried over from an input is dropped.
    let mut drop: Vec<&str> = vec!["dt"];
    drop.extend(req.vars.keys().map(String::as_str));
    let (rows, columns) = compiled
        .sink_parquet(
            &file,
            &drop,
            &[("panorama.model".to_string(), m.rel.clone())],
        )
        .map_err(|e| match e {
            Error::Config(msg) => Error::Config(format!("{}: {msg}", m.rel)),
            other => other,
        })?;
    if req.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Err(Error::Interrupted);
    }
    let success = Success {
        rows,
        columns: columns.clone(),
        job: req.job.to_string(),
        run_id: req.run_id.to_string(),
        extra: serde_json::json!({
            "model": m.rel,
            "sql_blake3": sql_checksum(&m.text),
            "inputs": compiled.inputs,
            "rows_in": rows_in,
        }),
        ..Default::default()
    };
    let partition = staged.commit(success)?;
    let bytes = crate::warehouse::read_success(&partition)
        .map(|s| s.bytes)
        .unwrap_or(0);
    Ok(BuildReport {
        table: m.table(),
        rows,
        columns: columns.len(),
        bytes,
        rows_in,
        inputs: compiled.inputs,
        partition,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_config_after_line_comments() {
        let text = "-- a model\n-- more\n/* config\ndescription = \"x\"\n[[checks]]\ntype = \"unique\"\n*/\nSELECT 1";
        let (toml, line) = header_config(text).unwrap();
        assert_eq!(line, 3);
        let t: toml::Table = toml::from_str(&toml).unwrap();
        assert_eq!(t["description"].as_str(), Some("x"));
        assert!(header_config("SELECT 1 /* config\n*/").is_none());
        assert!(header_config("/* just a comment */ SELECT 1").is_none());
        assert!(
            header_config("/* configuration notes */\n/* config\na = 1\n*/ SELECT 1").is_some()
        );
    }
}

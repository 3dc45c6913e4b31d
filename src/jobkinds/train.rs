//! `kind = "train"`: trains one model on a feature table for the run date, registers it under
//! `warehouse/models/<model>/<version>/` and writes its HTML report to
//! `reports/models/<model>.html` (and into the version folder).
//!
//! ```toml
//! # jobs/models/pre_credit_scorecard.toml
//! kind = "train"
//! tags = ["nightly", "models"]
//! input = "feature.application_features"   # the table read, partition dt = run date
//! target = "default_label"                  # 0/1 (or any two values); rows without one are left out
//! entity_id = "application_id"              # never a feature
//! features = "all"                          # or a list of columns
//! exclude = ["credit_code", "apply_date"]   # with "all": every column but these
//! categorical = ["industry", "province"]    # treated as categories even if numeric
//! missing = "keep"                          # keep | drop_rows | zero
//! filter = "status = 'approved'"            # optional SQL condition on the rows
//! split = { type = "stratified", test_size = 0.3 }   # or { type = "out_of_time", column = "apply_date", cutoff = "2026-01-01" }
//! seed = 42
//! algo = "scorecard"                        # scorecard, logistic, tree, gbdt, knn, linear, ...
//! [params]                                  # the algorithm's hyperparameters, checked before fit
//! pdo = 20
//! ```
//! Reads `feature.<input>`; writes `models.<model>` (a registry entry, not a table).

use std::sync::Arc;

use polars::prelude::*;

use crate::config::Project;
use crate::error::{Error, Result};
use crate::model::pipeline::{self, Algo, MissingPolicy, Split, Task, TrainSpec};
use crate::model::registry;
use crate::schedule::{
    Committed, Io, JobCtx, JobError, JobFile, JobKind, JobOutcome, JobRef, PreparedJob, TableRef,
    Vars,
};
use crate::warehouse::{Layer, PartitionKey, Warehouse};

pub struct TrainKind;

const KEYS: &[&str] = &[
    "model",
    "input",
    "target",
    "entity_id",
    "features",
    "exclude",
    "categorical",
    "missing",
    "filter",
    "split",
    "seed",
    "algo",
    "params",
    "report",
];

struct TrainJob {
    model: String,
    input: String,
    entity_id: Option<String>,
    filter: Option<String>,
    spec: TrainSpec,
    report: bool,
}

fn string_list(v: &toml::Value, key: &str, problems: &mut Vec<String>) -> Vec<String> {
    match v.as_array() {
        Some(a) if a.iter().all(|x| x.is_str()) => {
            a.iter().map(|x| x.as_str().unwrap().to_string()).collect()
        }
        _ => {
            problems.push(format!("`{key}`: must be a list of column names"));
            Vec::new()
        }
    }
}

/// Parses and checks the kind's keys; all problems at once, each naming its key.
fn parse(file: &JobFile<'_>) -> std::result::Result<TrainJob, Vec<String>> {
    let t = file.table;
    let mut problems = super::unknown_keys(file, KEYS);
    let get_str = |k: &str, problems: &mut Vec<String>| -> Option<String> {
        match t.get(k) {
            None => None,
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(_) => {
                problems.push(format!("`{k}`: must be a string"));
                None
            }
        }
    };
    let model = get_str("model", &mut problems).unwrap_or_else(|| file.name.to_string());
    if model.is_empty()
        || !model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        problems.push(format!(
            "`model`: {model:?} must use letters, digits, _ and -"
        ));
    }
    let algo = match get_str("algo", &mut problems) {
        None => {
            problems.push(format!(
                "`algo`: required; allowed values: {}",
                Algo::names()
            ));
            None
        }
        Some(a) => match Algo::parse(&a) {
            Some(a) => Some(a),
            None => {
                problems.push(format!(
                    "`algo`: {a:?} is not an algorithm; allowed values: {}",
                    Algo::names()
                ));
                None
            }
        },
    };
    let input = match get_str("input", &mut problems) {
        None => {
            problems.push(
                "`input`: required, a feature table such as feature.application_features".into(),
            );
            String::new()
        }
        Some(s) => {
            let table = match s.split_once('.') {
                Some(("feature", t)) => t.to_string(),
                Some((l, _)) => {
                    problems.push(format!(
                        "`input`: {s:?} is in layer {l:?}; models train on the feature layer"
                    ));
                    String::new()
                }
                None => s.clone(),
            };
            if !table.is_empty()
                && crate::schedule::TableRef::parse(&format!("feature.{table}")).is_err()
            {
                problems.push(format!("`input`: {s:?} is not a table name"));
            }
            table
        }
    };
    let target = get_str("target", &mut problems);
    if let Some(a) = algo {
        if a.task() != Task::Unsupervised && target.is_none() {
            problems.push(format!("`target`: required for algorithm {}", a.name()));
        }
    }
    let entity_id = get_str("entity_id", &mut problems);
    let features = match t.get("features") {
        None => None,
        Some(toml::Value::String(s)) if s == "all" => None,
        Some(v @ toml::Value::Array(_)) => Some(string_list(v, "features", &mut problems)),
        Some(_) => {
            problems.push("`features`: \"all\" or a list of column names".into());
            None
        }
    };
    let mut exclude = t
        .get("exclude")
        .map(|v| string_list(v, "exclude", &mut problems))
        .unwrap_or_default();
    if let Some(e) = &entity_id {
        exclude.push(e.clone());
    }
    let categorical = t
        .get("categorical")
        .map(|v| string_list(v, "categorical", &mut problems))
        .unwrap_or_default();
    let missing = match get_str("missing", &mut problems) {
        None => MissingPolicy::Keep,
        Some(m) => MissingPolicy::parse(&m).unwrap_or_else(|| {
            problems.push(format!(
                "`missing`: {m:?}; allowed values: {}",
                MissingPolicy::NAMES
            ));
            MissingPolicy::Keep
        }),
    };
    let filter = get_str("filter", &mut problems);
    let seed = match t.get("seed") {
        None => 42,
        Some(toml::Value::Integer(i)) if *i >= 0 => *i as u64,
        Some(_) => {
            problems.push("`seed`: must be a non-negative integer".into());
            42
        }
    };
    let split = match t.get("split") {
        None => Split::Stratified { test_size: 0.3 },
        Some(toml::Value::Table(s)) => {
            let unknown: Vec<&String> = s
                .keys()
                .filter(|k| {
                    ![
                        "type",
                        "test_size",
                        "column",
                        "cutoff",
                        "oot_column",
                        "oot_days",
                    ]
                    .contains(&k.as_str())
                })
                .collect();
            if !unknown.is_empty() {
                problems.push(format!(
                    "`split`: unknown key(s) {unknown:?}; allowed: type, test_size, column, cutoff, oot_column, oot_days"
                ));
            }
            match s
                .get("type")
                .and_then(|v| v.as_str())
                .unwrap_or("stratified")
            {
                "stratified" => {
                    let ts = match s.get("test_size") {
                        None => 0.3,
                        Some(v) => v
                            .as_float()
                            .or_else(|| v.as_integer().map(|i| i as f64))
                            .unwrap_or(-1.0),
                    };
                    if !(ts > 0.0 && ts < 1.0) {
                        problems.push(format!("`split.test_size`: {ts} must be a share in (0, 1)"));
                    }
                    Split::Stratified { test_size: ts }
                }
                "out_of_time" => {
                    let column = s.get("column").and_then(|v| v.as_str()).map(str::to_string);
                    let cutoff = s.get("cutoff").map(|v| match v {
                        toml::Value::String(x) => x.clone(),
                        other => other.to_string(),
                    });
                    if column.is_none() || cutoff.is_none() {
                        problems.push("`split`: out_of_time needs `column` and `cutoff` (rows before the cutoff train)".into());
                    }
                    Split::OutOfTime {
                        column: column.unwrap_or_default(),
                        cutoff: cutoff.unwrap_or_default(),
                    }
                }
                "hash" => {
                    let ts = s
                        .get("test_size")
                        .map(|v| {
                            v.as_float()
                                .or_else(|| v.as_integer().map(|i| i as f64))
                                .unwrap_or(-1.0)
                        })
                        .unwrap_or(0.3);
                    if !(ts > 0.0 && ts < 1.0) {
                        problems.push(format!("`split.test_size`: {ts} must be a share in (0, 1)"));
                    }
                    let column = s.get("column").and_then(|v| v.as_str()).map(str::to_string);
                    if column.is_none() {
                        problems.push(
                            "`split`: hash needs `column`, the id whose hash picks the hold-out"
                                .into(),
                        );
                    }
                    let oot_column = s
                        .get("oot_column")
                        .and_then(|v| v.as_str())
                        .map(str::to_string);
                    let oot_days = match s.get("oot_days") {
                        None => None,
                        Some(toml::Value::Integer(d)) if *d > 0 => Some(*d as u32),
                        Some(_) => {
                            problems.push("`split.oot_days`: a positive number of days".into());
                            None
                        }
                    };
                    if oot_column.is_some() != s.contains_key("oot_days") {
                        problems
                            .push("`split`: give both oot_column and oot_days, or neither".into());
                    }
                    Split::Hash {
                        column: column.unwrap_or_default(),
                        test_size: ts,
                        oot_column,
                        oot_days,
                    }
                }
                other => {
                    problems.push(format!(
                        "`split.type`: {other:?}; allowed values: stratified, out_of_time, hash"
                    ));
                    Split::Stratified { test_size: 0.3 }
                }
            }
        }
        Some(_) => {
            problems
                .push("`split`: a table such as { type = \"stratified\", test_size = 0.3 }".into());
            Split::Stratified { test_size: 0.3 }
        }
    };
    let params = match t.get("params") {
        None => serde_json::json!({}),
        Some(v @ toml::Value::Table(_)) => serde_json::to_value(v).unwrap_or_default(),
        Some(_) => {
            problems.push("`params`: must be a table of hyperparameters".into());
            serde_json::json!({})
        }
    };
    if let Some(a) = algo {
        if let Err(e) = pipeline::check_params(a, &params) {
            problems.push(format!("`params`: {e}"));
        }
    }
    let report = match t.get("report") {
        None => true,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => {
            problems.push("`report`: must be true or false".into());
            true
        }
    };
    if !file.matrix_keys.is_empty() {
        problems
            .push("`matrix`: a train job trains one model; write one job file per model".into());
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(TrainJob {
        model,
        input,
        entity_id,
        filter,
        report,
        spec: TrainSpec {
            algo: algo.unwrap(),
            params,
            target,
            features,
            exclude,
            categorical,
            split,
            seed,
            missing,
        },
    })
}

impl JobKind for TrainKind {
    fn kind(&self) -> &str {
        "train"
    }

    fn prepare(
        &self,
        file: &JobFile<'_>,
        _project: &Project,
    ) -> std::result::Result<Arc<dyn PreparedJob>, Vec<String>> {
        Ok(Arc::new(parse(file)?))
    }
}

impl TrainJob {
    fn train(&self, ctx: &JobCtx<'_>) -> Result<JobOutcome> {
        let wh = Warehouse::new(&ctx.project.warehouse_root);
        let dt = ctx.date.to_string();
        let dir = wh.partition_dir(Layer::Feature, &self.input, &PartitionKey::date(&dt));
        if crate::warehouse::read_success(&dir).is_none() {
            return Err(Error::input(
                &dir,
                format!("feature.{} has no committed partition for {dt}", self.input),
            ));
        }
        let mut df = crate::warehouse::parquet::read_partition(&dir)?;
        let rows_in = df.height() as u64;
        if let Some(id) = &self.entity_id {
            if df.column(id).is_err() {
                return Err(Error::config(format!(
                    "`entity_id`: feature.{} has no column {id:?}",
                    self.input
                )));
            }
        }
        if let Some(f) = &self.filter {
            let mut sql = polars::sql::SQLContext::new();
            sql.register("t", df.lazy());
            df = sql
                .execute(&format!("SELECT * FROM t WHERE {f}"))
                .and_then(|lf| lf.collect())
                .map_err(|e| Error::config(format!("`filter` {f:?}: {e}")))?;
        }
        // A model's table comes out of a parallel engine in no set order: rows are put in
        // entity order, so that the same data and seed give the same split, model and
        // fingerprint (a random split drew other rows every rebuild: r2 0.41-0.49).
        // An id may repeat (several applications of an enterprise): the other sortable
        // columns break the ties, so that the order depends on the rows alone.
        if let Some(id) = &self.entity_id {
            use polars::prelude::DataType as T;
            let mut by: Vec<String> = vec![id.clone()];
            by.extend(
                df.columns()
                    .iter()
                    .filter(|c| c.name().as_str() != id)
                    .filter(|c| {
                        let t = c.dtype();
                        t.is_primitive_numeric()
                            || matches!(t, T::String | T::Boolean | T::Date | T::Datetime(..))
                    })
                    .map(|c| c.name().to_string()),
            );
            df = df
                .sort(by, polars::prelude::SortMultipleOptions::default())
                .map_err(|e| {
                    Error::config(format!("`entity_id` {id:?}: cannot sort by it: {e}"))
                })?;
        }
        if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let out = pipeline::train(&df, &self.spec)?;
        if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let spec_json = serde_json::json!({
            "model": self.model, "input": format!("feature.{}", self.input), "entity_id": self.entity_id,
            "filter": self.filter, "train": self.spec,
        });
        let (vdir, meta) = registry::register(
            &ctx.project.warehouse_root,
            &self.model,
            &spec_json,
            &out,
            self.spec.seed,
            Some(&dt),
            Some(ctx.run_id),
        )?;
        if self.report {
            let html = crate::report::model_report(
                &format!(
                    "{} {} ({})",
                    self.model,
                    meta.version,
                    self.spec.algo.name()
                ),
                &format!(
                    "feature.{} dt={dt} · run {} · panorama {}",
                    self.input, ctx.run_id, meta.code_version
                ),
                &out,
                &self.spec.params,
            );
            let path = crate::report::write_report(
                &ctx.project.root.join("reports").join("models"),
                &self.model,
                &html,
            )?;
            let _ = std::fs::copy(&path, vdir.join("report.html"));
        }
        let headline = registry::headline(&out.eval);
        let metric = ["auc", "r2", "inertia", "clusters"]
            .iter()
            .find_map(|k| {
                headline
                    .get(*k)
                    .and_then(|v| v.as_f64())
                    .map(|v| format!("{k} {v:.4}"))
            })
            .unwrap_or_default();
        Ok(JobOutcome {
            rows_in,
            rows_out: (out.rows_train + out.rows_test) as u64,
            bytes: 0,
            message: format!(
                "{} {} ({}) on {} rows: {metric}",
                self.model,
                meta.version,
                self.spec.algo.name(),
                out.rows_train + out.rows_test
            ),
            warnings: Vec::new(),
        })
    }
}

impl PreparedJob for TrainJob {
    fn io(&self, _vars: &Vars) -> Io {
        Io {
            reads: vec![TableRef::new(
                Layer::Feature.as_str(),
                &self.input,
                &Vars::new(),
            )],
            writes: vec![TableRef::new("models", &self.model, &Vars::new())],
        }
    }

    fn run(
        &self,
        _job: &JobRef<'_>,
        ctx: &JobCtx<'_>,
    ) -> std::result::Result<JobOutcome, JobError> {
        self.train(ctx).map_err(|e| super::sql::job_error(&e))
    }

    fn committed(
        &self,
        _job: &JobRef<'_>,
        project: &Project,
        date: chrono::NaiveDate,
    ) -> Option<Committed> {
        let dt = date.to_string();
        let m = registry::list(&project.warehouse_root)
            .into_iter()
            .rfind(|m| m.name == self.model && m.dt.as_deref() == Some(dt.as_str()))?;
        Some(Committed {
            run_id: m.run_id.clone().unwrap_or_default(),
            outcome: JobOutcome {
                rows_in: 0,
                rows_out: m.rows_train + m.rows_test,
                bytes: 0,
                message: format!(
                    "{} {} registered before the run was killed",
                    m.name, m.version
                ),
                warnings: Vec::new(),
            },
        })
    }
}

//! `kind = "sql"`: one SQL model (`sql/<name>.sql`, see `crate::transform`) materialised into
//! `feature.<name>` for the run date.
//!
//! ```toml
//! # jobs/sql/txn_features.toml — the model's sidecar for the scheduler
//! kind = "sql"
//! tags = ["nightly", "features"]
//! pool = "cpu"                     # optional, a pool of [run] pools
//! # model = "sql/txn_features.sql" # default: sql/<name>.sql
//! ```
//! A family (`[matrix] branch = ...`) builds one partition per instance,
//! `feature.<name>/dt=D/branch=0101/`: every table the SQL names is read only in the partitions
//! that agree with the instance's values (a table not split by `branch` is read whole), and the
//! values are `{{ branch }}` placeholders in the SQL.
//!
//! Reads: every table the SQL names. When a table has a `check` job, the model also reads that
//! job's results partition (`quality.check_results[table=<layer.table>]`), so it runs after the
//! checks of its inputs and is skipped when one of them fails. Writes `feature.<name>`, and,
//! when its config declares `checks` that no `check` job runs, their results (a failing
//! `error` check fails the job, so the models reading it are skipped).

use std::sync::Arc;

use crate::config::Project;
use crate::error::Error;
use crate::schedule::{
    Committed, Io, JobCtx, JobError, JobFile, JobKind, JobOutcome, JobRef, PreparedJob, TableRef,
    Vars,
};
use crate::transform::{self, Model};
use crate::warehouse::{Layer, Warehouse};

pub struct SqlKind;

const KEYS: &[&str] = &["model", "description", "checks"];

struct SqlJob {
    model: Model,
    /// Inputs (`layer.table`) that have a check job.
    gated: Vec<String>,
    /// The model's own checks (its config's `checks`), run right after the commit when no
    /// `check` job checks `feature.<name>` (that job runs them then, with its own).
    checks: Vec<crate::quality::Check>,
}

/// Tables checked by a `check` job of the project.
pub(crate) fn checked_tables(project: &Project) -> Vec<String> {
    let idx = transform::index(project);
    let mut out: Vec<String> = idx
        .files
        .iter()
        .filter(|f| f.kind == "check")
        .flat_map(|f| crate::quality::check_job_tables(&f.table, &f.name))
        .collect();
    out.sort();
    out.dedup();
    out
}

impl JobKind for SqlKind {
    fn kind(&self) -> &str {
        "sql"
    }

    fn prepare(
        &self,
        file: &JobFile<'_>,
        project: &Project,
    ) -> Result<Arc<dyn PreparedJob>, Vec<String>> {
        let mut problems = super::unknown_keys(file, KEYS);
        let path = match file.table.get("model") {
            None => project
                .root
                .join(transform::SQL_DIR)
                .join(format!("{}.sql", file.name)),
            Some(toml::Value::String(p)) => project.path(p),
            Some(_) => {
                problems.push("`model`: must be a path (e.g. sql/txn_features.sql)".into());
                return Err(problems);
            }
        };
        if !path.exists() {
            problems.push(format!(
                "`model`: missing file {} (a sql job runs sql/<name>.sql unless `model` names another file)",
                path.display()
            ));
            return Err(problems);
        }
        let wh = Warehouse::new(&project.warehouse_root);
        let catalog = transform::index(project).catalog(&wh);
        let model = match transform::load(project, &path, &catalog, Some(file.table)) {
            Ok(m) => m,
            Err(p) => {
                problems.extend(p);
                return Err(problems);
            }
        };
        let mut checks = Vec::new();
        if !model.config.checks.is_empty() {
            match crate::quality::parse_model_checks(&model.config) {
                Ok(c) => checks = c,
                Err(p) => problems.extend(p),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let checked = checked_tables(project);
        if checked.contains(&format!("{}.{}", Layer::Feature.as_str(), model.name)) {
            checks.clear();
        }
        let gated = model
            .reads
            .iter()
            .map(|(l, t)| format!("{l}.{t}"))
            .filter(|t| checked.contains(t))
            .collect();
        Ok(Arc::new(SqlJob {
            model,
            gated,
            checks,
        }))
    }
}

impl SqlJob {
    fn table(&self) -> String {
        format!("{}.{}", Layer::Feature.as_str(), self.model.name)
    }
}

impl PreparedJob for SqlJob {
    fn io(&self, vars: &Vars) -> Io {
        let mut reads: Vec<TableRef> = self
            .model
            .reads
            .iter()
            .map(|(l, t)| TableRef::new(l.as_str(), t, vars))
            .collect();
        for t in &self.gated {
            reads.push(super::check_results_ref(t, vars));
        }
        let mut writes = vec![TableRef::new(
            Layer::Feature.as_str(),
            &self.model.name,
            vars,
        )];
        if !self.checks.is_empty() {
            writes.push(super::check_results_ref(&self.table(), vars));
        }
        Io { reads, writes }
    }

    /// Placeholders are checked when the night is planned: a misspelled `{{ dss }}` is a
    /// configuration error before anything runs, not a failed job at night.
    fn check(&self, vars: &Vars, _project: &Project) -> Vec<String> {
        let date = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date");
        let mut params = transform::parse::Params::for_date(date).with("run_id", "planned");
        for (k, v) in vars {
            params = params.with(k, v);
        }
        match transform::parse::render(&self.model.text, &params) {
            Ok(_) => Vec::new(),
            Err(e) => vec![match e.pos {
                Some(p) => format!("{}:{}:{}: {}", self.model.rel, p.line, p.column, e.message),
                None => format!("{}: {}", self.model.rel, e.message),
            }],
        }
    }

    fn run(&self, job: &JobRef<'_>, ctx: &JobCtx<'_>) -> Result<JobOutcome, JobError> {
        let req = transform::BuildRequest {
            project: ctx.project,
            model: &self.model,
            date: ctx.date,
            run_id: ctx.run_id,
            job: job.name,
            vars: job.vars,
            cancel: Some(ctx.cancel),
        };
        match transform::build(&req) {
            Ok(r) => {
                let mut message =
                    format!("{} rows × {} columns into {}", r.rows, r.columns, r.table);
                let warnings =
                    super::run_own_checks(ctx, job, &self.table(), &self.checks, &mut message)?;
                Ok(JobOutcome {
                    rows_in: r.rows_in,
                    rows_out: r.rows,
                    bytes: r.bytes,
                    message,
                    warnings,
                })
            }
            Err(e) => Err(job_error(&e)),
        }
    }

    /// The model's SQL was edited since it built the partition (a corrected feature).
    fn inputs_changed(
        &self,
        job: &JobRef<'_>,
        project: &Project,
        date: chrono::NaiveDate,
        last_run: &str,
    ) -> Option<String> {
        let s = super::instance_success(project, Layer::Feature, &self.model.name, job, date)?;
        if let Some(why) = super::written_again(&s, last_run) {
            return Some(why);
        }
        let built_from = s.extra.get("sql_blake3")?.as_str()?;
        (s.job == job.name && built_from != transform::sql_checksum(&self.model.text)).then(|| {
            format!(
                "its SQL ({}) changed since run {}",
                self.model.rel, s.run_id
            )
        })
    }

    fn committed(
        &self,
        job: &JobRef<'_>,
        project: &Project,
        date: chrono::NaiveDate,
    ) -> Option<Committed> {
        let wh = Warehouse::new(&project.warehouse_root);
        let s = super::instance_success(project, Layer::Feature, &self.model.name, job, date)?;
        if s.job != job.name {
            return None;
        }
        if !self.checks.is_empty()
            && !super::own_checks_passed(&wh, date, &self.table(), job.vars, job.name, &s.run_id)
        {
            return None;
        }
        Some(Committed {
            run_id: s.run_id,
            outcome: JobOutcome {
                rows_in: s.extra.get("rows_in").and_then(|v| v.as_u64()).unwrap_or(0),
                rows_out: s.rows,
                bytes: s.bytes,
                message: "committed before the run was killed".into(),
                warnings: Vec::new(),
            },
        })
    }
}

pub(crate) fn job_error(e: &Error) -> JobError {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        source = s.source();
    }
    JobError {
        message: msg,
        transient: matches!(e, Error::Io { .. }),
        code: e.exit_code(),
    }
}

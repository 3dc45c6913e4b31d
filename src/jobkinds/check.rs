//! `kind = "check"`: the data-quality checks of one table (see `crate::quality`), run after
//! the job that writes it.
//!
//! ```toml
//! # jobs/checks/applications.toml
//! kind = "check"
//! table = "clean.applications"     # or a family: [matrix] table = ["clean.a", "clean.b"]
//! [[checks]]                       # more checks, besides those declared in the table's
//! type = "row_count_drift"         # contract ([[checks]]) or model config
//! max_change_pct = 50
//! ```
//! Reads the table (and the tables its `relationships` checks point to); writes its results
//! partition `quality.check_results[table=<layer.table>]`. A failing `error` check fails the
//! job, so the models that read the table (which read that results partition too) are skipped;
//! `warn` checks only report.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::config::Project;
use crate::quality::{self, Check, Spec};
use crate::schedule::executor::{ExecReport, Status};
use crate::schedule::Dag;
use crate::schedule::{
    Committed, Io, JobCtx, JobError, JobFile, JobKind, JobOutcome, JobRef, PreparedJob, TableRef,
    Vars,
};
use crate::transform::{self, query::Catalog};
use crate::warehouse::{Layer, Warehouse};

pub struct CheckKind;

const KEYS: &[&str] = &["table", "checks", "description"];

type Declared = Arc<std::result::Result<BTreeMap<String, Vec<Check>>, Vec<String>>>;

/// Every check declared in the project, parsed once per process.
fn declared(project: &Project) -> Declared {
    static CACHE: OnceLock<Mutex<BTreeMap<std::path::PathBuf, Declared>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
    let mut g = cache.lock().unwrap_or_else(|p| p.into_inner());
    g.entry(project.root.clone())
        .or_insert_with(|| Arc::new(quality::declarations(project)))
        .clone()
}

struct CheckJob {
    /// `table`, or None for a family over `[matrix] table`.
    fixed: Option<String>,
    catalog: Catalog,
    declared: Declared,
}

impl CheckJob {
    fn table_of(&self, vars: &Vars) -> Option<String> {
        self.fixed.clone().or_else(|| vars.get("table").cloned())
    }

    /// `layer.table` resolved, or the name as written when it does not resolve.
    fn qualified(&self, name: &str) -> std::result::Result<(Layer, String), String> {
        quality::resolve_table(&self.catalog, name)
    }

    /// A family instance's matrix values besides `table` (e.g. `branch`): its checks look at
    /// those partitions of the table only, and its results go to
    /// `quality.check_results[table=<layer.table>,branch=<value>]`.
    fn partition_of(vars: &Vars) -> Vec<(String, String)> {
        vars.iter()
            .filter(|(k, _)| k.as_str() != "table")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn checks_for(&self, qualified: &str) -> Vec<Check> {
        match &*self.declared {
            Ok(m) => m.get(qualified).cloned().unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }
}

impl JobKind for CheckKind {
    fn kind(&self) -> &str {
        "check"
    }

    fn prepare(
        &self,
        file: &JobFile<'_>,
        project: &Project,
    ) -> Result<Arc<dyn PreparedJob>, Vec<String>> {
        let mut problems = super::unknown_keys(file, KEYS);
        let fixed = match file.table.get("table") {
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(_) => {
                problems.push("`table`: must be a table name such as clean.applications".into());
                None
            }
            None if file.matrix_keys.iter().any(|k| k == "table") => None,
            None if file.name.contains('.') => Some(file.name.to_string()),
            None => {
                problems.push(
                    "`table`: missing — the table to check (e.g. clean.applications), or a family with [matrix] table = [...]"
                        .into(),
                );
                None
            }
        };
        if let Some(items) = file.table.get("checks") {
            match items.as_array() {
                Some(a) => {
                    if let Err(p) = quality::parse_checks(a, file.rel) {
                        problems.extend(
                            p.into_iter().map(|m| {
                                m.trim_start_matches(&format!("{}: ", file.rel)).to_string()
                            }),
                        );
                    }
                }
                None => problems.push("`checks`: must be an array of tables ([[checks]])".into()),
            }
        }
        // Problems in other files' declarations (a contract's, a model's) are reported by
        // those files' own jobs; repeating them here listed one mistake once per check job.
        let declared = declared(project);
        if !problems.is_empty() {
            return Err(problems);
        }
        let wh = Warehouse::new(&project.warehouse_root);
        Ok(Arc::new(CheckJob {
            fixed,
            catalog: transform::index(project).catalog(&wh),
            declared,
        }))
    }
}

impl PreparedJob for CheckJob {
    fn io(&self, vars: &Vars) -> Io {
        let Some(name) = self.table_of(vars) else {
            return Io::default();
        };
        let Ok((layer, table)) = self.qualified(&name) else {
            return Io::default();
        };
        let qualified = format!("{layer}.{table}");
        let partition = Self::partition_of(vars);
        let own: Vars = partition.iter().cloned().collect();
        let mut reads = vec![TableRef::new(layer.as_str(), &table, &own)];
        for c in self.checks_for(&qualified) {
            if let Spec::Relationships { to, .. } = &c.spec {
                if let Ok((l, t)) = self.qualified(to) {
                    let r = TableRef::new(l.as_str(), &t, &own);
                    if !reads.contains(&r) {
                        reads.push(r);
                    }
                }
            }
        }
        let mut results = vec![("table".to_string(), qualified)];
        results.extend(partition);
        Io {
            reads,
            writes: vec![TableRef {
                layer: Layer::Quality.as_str().to_string(),
                table: quality::RESULTS_TABLE.to_string(),
                partition: results,
            }],
        }
    }

    fn check(&self, vars: &Vars, _project: &Project) -> Vec<String> {
        let Some(name) = self.table_of(vars) else {
            return vec!["`table`: missing".into()];
        };
        let (layer, table) = match self.qualified(&name) {
            Ok(x) => x,
            Err(m) => return vec![format!("`table`: {m}")],
        };
        let qualified = format!("{layer}.{table}");
        let checks = self.checks_for(&qualified);
        let mut problems = Vec::new();
        // When some declaration is broken, its own job says so; "none declared" would mislead.
        if checks.is_empty() && self.declared.is_ok() {
            problems.push(format!(
                "no checks declared for {qualified} (declare [[checks]] here, in its ingest contract or in its model's config)"
            ));
        }
        for c in &checks {
            if let Spec::Relationships { to, .. } = &c.spec {
                if let Err(m) = self.qualified(to) {
                    problems.push(format!("{}: check {:?}: `to`: {m}", c.origin, c.name));
                }
            }
        }
        problems
    }

    fn run(&self, job: &JobRef<'_>, ctx: &JobCtx<'_>) -> Result<JobOutcome, JobError> {
        let name = self
            .table_of(job.vars)
            .ok_or_else(|| JobError::permanent("no table to check"))?;
        let (layer, table) = self.qualified(&name).map_err(JobError::permanent)?;
        let qualified = format!("{layer}.{table}");
        let checks = self.checks_for(&qualified);
        let outcome = quality::run_table(
            ctx.project,
            &qualified,
            &checks,
            ctx.date,
            job.name,
            ctx.run_id,
            &Self::partition_of(job.vars),
        )
        .map_err(|e| super::sql::job_error(&e))?;
        let failed: Vec<String> = outcome.failure_lines();
        let passed = outcome.results.iter().filter(|r| !r.failed()).count();
        let summary = format!(
            "{} checks on {qualified} (dt={}): {passed} passed, {} warning(s), {} failed",
            outcome.results.len(),
            outcome.checked_dt.as_deref().unwrap_or("-"),
            outcome.warnings(),
            failed.len()
        );
        if failed.is_empty() {
            Ok(JobOutcome {
                rows_in: outcome.rows,
                rows_out: outcome.results.len() as u64,
                bytes: 0,
                message: summary,
                warnings: outcome.warning_lines(),
            })
        } else {
            Err(JobError::permanent(format!(
                "{summary}: {}",
                failed.join("; ")
            )))
        }
    }

    fn committed(
        &self,
        job: &JobRef<'_>,
        project: &Project,
        date: chrono::NaiveDate,
    ) -> Option<Committed> {
        let name = self.table_of(job.vars)?;
        let (layer, table) = self.qualified(&name).ok()?;
        let wh = Warehouse::new(&project.warehouse_root);
        let key = quality::results_key_in(
            date,
            &format!("{layer}.{table}"),
            &Self::partition_of(job.vars),
        );
        let s = wh.read_success(Layer::Quality, quality::RESULTS_TABLE, &key)?;
        // A night whose checks failed is not done: the resume runs them again.
        if s.job != job.name
            || s.extra
                .get("blocking")
                .and_then(|v| v.as_u64())
                .unwrap_or(1)
                != 0
        {
            return None;
        }
        Some(Committed {
            run_id: s.run_id,
            outcome: JobOutcome {
                rows_in: 0,
                rows_out: s.rows,
                bytes: s.bytes,
                message: "committed before the run was killed".into(),
                warnings: Vec::new(),
            },
        })
    }
}

/// After a night (`NightOptions::after_night`): rewrites its data-quality report with the check
/// jobs that gave no verdict (skipped, cancelled, not started), so that it does not read as
/// all clear.
pub fn report_not_run(project: &Project, dag: &Dag, date: chrono::NaiveDate, exec: &ExecReport) {
    // A skipped check names the failed jobs before it (the report said only "a job"): the
    // descendants of each failed job, marked once (a few failures, many skipped checks).
    let below_failed: Vec<(String, Vec<bool>)> = exec
        .final_status
        .iter()
        .filter(|(_, st)| matches!(st, Status::Failed | Status::Timeout | Status::Cancelled))
        .map(|(&f, _)| {
            let mut down = vec![false; dag.len()];
            dag.closure(&[f], false, &mut down);
            (dag.job(f).name.clone(), down)
        })
        .collect();
    let failed_before = |j: u32| {
        let mut failed: Vec<String> = below_failed
            .iter()
            .filter(|(name, down)| down[j as usize] && *name != dag.job(j).name)
            .map(|(name, _)| name.clone())
            .collect();
        failed.sort();
        if failed.is_empty() {
            "skipped: a job before it failed".to_string()
        } else {
            format!("skipped: {} failed (see the run report)", failed.join(", "))
        }
    };
    let status_of = |j: u32| match exec.final_status.get(&j) {
        Some(Status::Skipped) => Some(failed_before(j)),
        Some(Status::Cancelled) => Some("cancelled".to_string()),
        Some(_) => None,
        None => Some("not started (the night was interrupted)".to_string()),
    };
    let mut not_run: Vec<quality::report::NotRun> = exec
        .final_status
        .keys()
        .chain(exec.not_started.iter())
        .copied()
        .filter(|&j| dag.job(j).family.kind == CheckKind.kind())
        .filter_map(|j| {
            status_of(j).map(|status| quality::report::NotRun {
                job: dag.job(j).name.clone(),
                tables: dag.job(j).reads.iter().map(|r| r.to_string()).collect(),
                status,
            })
        })
        .collect();
    if not_run.is_empty() {
        return;
    }
    not_run.sort_by(|a, b| a.job.cmp(&b.job));
    not_run.dedup_by(|a, b| a.job == b.job);
    if let Err(e) = quality::report::write(project, date, &not_run) {
        crate::log::warn(
            "could not write the data-quality report",
            &[("error", e.to_string().into())],
        );
    }
}

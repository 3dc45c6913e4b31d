//! A night (or a backfill of nights): ledger bookkeeping around the executor, recovery after a
//! killed run, the run report, and the one-line JSON summary.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

use super::dag::Dag;
use super::executor::{execute, Attempt, Event, ExecConfig, ExecReport, Status};
use super::kind::JobRef;
use super::ledger::{self, AttemptRow, Ledger, RunRow};
use super::plan::{changed_inputs, plan_night, PlanOptions, Shard};
use super::progress::Progress;
use crate::config::Project;
use crate::error::{ExitCode, Result};

pub struct NightOptions {
    pub dates: Vec<chrono::NaiveDate>,
    pub plan: PlanOptions,
    pub shard: Option<Shard>,
    pub threads: usize,
    /// The command line, recorded in the ledger.
    pub command: String,
    pub timeout_grace: Duration,
    /// Write `reports/run-<date>-<run_id>.html`.
    pub report: bool,
    /// Called after each night with what ran (kinds' own reports, such as the data-quality
    /// report's list of checks that did not run); the engine knows no kind by name.
    pub after_night: Option<AfterNight>,
}

/// See `NightOptions::after_night`.
pub type AfterNight = fn(&Project, &Dag, chrono::NaiveDate, &ExecReport);

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub selected: usize,
    pub to_run: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    pub already_done: usize,
    pub recovered: usize,
    pub cancelled: usize,
    pub not_started: usize,
    pub retries: usize,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.selected += o.selected;
        self.to_run += o.to_run;
        self.succeeded += o.succeeded;
        self.failed += o.failed;
        self.skipped += o.skipped;
        self.already_done += o.already_done;
        self.recovered += o.recovered;
        self.cancelled += o.cancelled;
        self.not_started += o.not_started;
        self.retries += o.retries;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub date: String,
    pub job: String,
    pub status: String,
    pub error: String,
    pub exit_code: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct NightResult {
    pub date: String,
    pub run_id: String,
    pub status: String,
    pub counts: Counts,
    pub seconds: f64,
    pub failures: Vec<Failure>,
    /// `job: warning` lines of jobs that succeeded.
    pub warnings: Vec<String>,
    pub report: Option<String>,
}

/// Runs the selected jobs for each date in turn. The caller holds the run lock.
pub fn run_nights(
    project: Arc<Project>,
    dag: &Dag,
    selected: &[bool],
    opts: &NightOptions,
    stop: &AtomicU8,
    progress: &mut Progress,
) -> Result<Vec<NightResult>> {
    let mut ledger = Ledger::open(&project.warehouse_root)?;
    let crashed = ledger.mark_crashed()?;
    if !crashed.is_empty() {
        crate::log::warn(
            "earlier runs were killed; their committed jobs will be recorded, not redone",
            &[("runs", crashed.join(", ").into())],
        );
    }
    let mut results = Vec::new();
    for &date in &opts.dates {
        if stop.load(Ordering::SeqCst) >= 1 {
            break;
        }
        results.push(run_night(
            &project,
            dag,
            selected,
            opts,
            date,
            &mut ledger,
            stop,
            progress,
        )?);
    }
    Ok(results)
}

#[allow(clippy::too_many_arguments)]
fn run_night(
    project: &Arc<Project>,
    dag: &Dag,
    selected: &[bool],
    opts: &NightOptions,
    date: chrono::NaiveDate,
    ledger: &mut Ledger,
    stop: &AtomicU8,
    progress: &mut Progress,
) -> Result<NightResult> {
    let t0 = Instant::now();
    let ds = date.to_string();
    let run_id = new_run_id(ledger)?;

    // Jobs committed by a killed run but not recorded: record them, do not run them again.
    let recovered = recover(project, dag, &ds, date, ledger)?;

    let prev = ledger.statuses(&ds)?;
    let changed = changed_inputs(project, dag, selected, date, &prev, opts.plan);
    let plan = plan_night(dag, selected, date, &prev, &changed, opts.plan);
    let to_run = plan.to_run();
    let recovered_selected = recovered
        .iter()
        .filter(|(j, _)| selected[*j as usize])
        .count();
    let mut counts = Counts {
        selected: plan.items.len(),
        to_run: to_run.len(),
        // Recovered jobs are planned as done; count them once, as recovered.
        already_done: plan.skipped().saturating_sub(recovered_selected),
        recovered: recovered_selected,
        ..Default::default()
    };
    let me = std::process::id();
    let mut row = RunRow {
        run_id: run_id.clone(),
        date: ds.clone(),
        started_at: ledger::now_iso(),
        status: "running".into(),
        command: opts.command.clone(),
        shard: opts.shard.map(|s| s.to_string()),
        host: ledger::hostname(),
        pid: me as i64,
        pid_start: ledger::process_start(me).unwrap_or_default(),
        selected: counts.selected as i64,
        to_run: counts.to_run as i64,
        already_done: counts.already_done as i64,
        ..Default::default()
    };
    ledger.start_run(&row)?;
    progress.start_night(&ds, &run_id, to_run.len(), counts.already_done);

    let threads = opts.threads.max(1);
    let cfg = ExecConfig {
        project: project.clone(),
        date,
        run_id: run_id.clone(),
        threads,
        job_threads: (threads / threads.min(to_run.len()).max(1)).max(1),
        pools: project.config.run.pools.clone(),
        stop,
        timeout_grace: opts.timeout_grace,
    };
    let writer = ledger.writer()?;
    let exec = {
        let mut on_event = |ev: Event<'_>| {
            progress.event(dag, &ev);
            if let Event::Finished(a) = ev {
                writer.send(attempt_row(dag, a, &run_id, &ds));
            }
        };
        execute(dag, &to_run, &cfg, &mut on_event)
    };
    let write_result = writer.finish();
    progress.finish_night();

    let mut failures = Vec::new();
    for (&j, &st) in &exec.final_status {
        match st {
            Status::Succeeded => counts.succeeded += 1,
            Status::Recovered => counts.recovered += 1,
            Status::Failed | Status::Timeout => counts.failed += 1,
            Status::Skipped => counts.skipped += 1,
            Status::Cancelled => counts.cancelled += 1,
        }
        if matches!(st, Status::Failed | Status::Timeout | Status::Cancelled) {
            let a = exec
                .attempts
                .iter()
                .rev()
                .find(|a| a.job == j && a.final_state);
            failures.push(Failure {
                date: ds.clone(),
                job: dag.job(j).name.clone(),
                status: st.as_str().into(),
                error: a.and_then(|a| a.error.clone()).unwrap_or_default(),
                exit_code: a.map(|a| a.code as i32).unwrap_or(1),
            });
        }
    }
    failures.sort_by(|a, b| a.job.cmp(&b.job));
    if let Some(hook) = opts.after_night {
        hook(project, dag, date, &exec);
    }
    let mut warnings: Vec<String> = exec
        .attempts
        .iter()
        .filter(|a| a.final_state && a.status.is_ok())
        .flat_map(|a| {
            let job = &dag.job(a.job).name;
            a.outcome
                .warnings
                .iter()
                .map(move |w| format!("{job}: {w}"))
        })
        .collect();
    warnings.sort();
    counts.not_started = exec.not_started.len();
    counts.retries = exec.retries;
    let status = if exec.interrupted {
        "interrupted"
    } else if counts.failed + counts.cancelled > 0 {
        "failed"
    } else {
        "succeeded"
    };
    let seconds = t0.elapsed().as_secs_f64();
    let mut result = NightResult {
        date: ds.clone(),
        run_id: run_id.clone(),
        status: status.into(),
        counts,
        seconds,
        failures,
        warnings,
        report: None,
    };
    if opts.report {
        match super::report::write(project, dag, &result, &exec, &recovered) {
            Ok(p) => {
                result.report = Some(
                    p.strip_prefix(&project.root)
                        .unwrap_or(&p)
                        .display()
                        .to_string(),
                )
            }
            Err(e) => crate::log::warn(
                "could not write the run report",
                &[("error", e.to_string().into())],
            ),
        }
    }
    row.ended_at = Some(ledger::now_iso());
    row.status = status.into();
    row.succeeded = result.counts.succeeded as i64;
    row.failed = result.counts.failed as i64;
    row.skipped = result.counts.skipped as i64;
    row.recovered = result.counts.recovered as i64;
    row.cancelled = result.counts.cancelled as i64;
    row.not_started = result.counts.not_started as i64;
    row.retries = result.counts.retries as i64;
    row.seconds = Some(seconds);
    row.report = result.report.clone();
    ledger.finish_run(&row)?;
    write_result?;
    crate::log::info(
        "night finished",
        &[
            ("date", ds.as_str().into()),
            ("run_id", run_id.as_str().into()),
            ("status", status.into()),
            ("succeeded", result.counts.succeeded.into()),
            ("failed", result.counts.failed.into()),
            ("skipped", result.counts.skipped.into()),
            ("seconds", ((seconds * 1000.0).round() / 1000.0).into()),
        ],
    );
    Ok(result)
}

fn attempt_row(dag: &Dag, a: &Attempt, run_id: &str, date: &str) -> AttemptRow {
    let secs = (a.end - a.start).max(0.0);
    AttemptRow {
        run_id: run_id.to_string(),
        date: date.to_string(),
        job: dag.job(a.job).name.clone(),
        attempt: a.attempt,
        // A failed attempt followed by a retry is `retried`; the job's last word is final.
        status: if a.final_state {
            a.status.as_str()
        } else {
            "retried"
        }
        .to_string(),
        started_at: a.started_unix,
        ended_at: a.started_unix + secs,
        seconds: secs,
        rows_in: a.outcome.rows_in,
        rows_out: a.outcome.rows_out,
        bytes: a.outcome.bytes,
        message: a.outcome.message.clone(),
        error: a.error.clone(),
        final_state: a.final_state,
    }
}

/// After a killed run of this date: asks each kind whether a job's output was committed by
/// that run; such jobs are recorded as succeeded (status `recovered`, under the killed run's
/// id) so that the resumed night does not do them twice.
fn recover(
    project: &Project,
    dag: &Dag,
    ds: &str,
    date: chrono::NaiveDate,
    ledger: &mut Ledger,
) -> Result<Vec<(u32, String)>> {
    let crashed = ledger.crashed_runs(ds)?;
    if crashed.is_empty() {
        return Ok(Vec::new());
    }
    let prev = ledger.statuses(ds)?;
    let found: Vec<(u32, super::kind::Committed)> = (0..dag.len() as u32)
        .into_par_iter()
        .filter(|&j| {
            prev.get(&dag.job(j).name)
                .is_none_or(|p| p.status != "succeeded")
        })
        .filter_map(|j| {
            let job = dag.job(j);
            let c = job.family.prepared.committed(
                &JobRef {
                    name: &job.name,
                    vars: &job.vars,
                },
                project,
                date,
            )?;
            crashed.contains(&c.run_id).then_some((j, c))
        })
        .collect();
    let now = ledger::unix_now();
    let rows: Vec<AttemptRow> = found
        .iter()
        .map(|(j, c)| AttemptRow {
            run_id: c.run_id.clone(),
            date: ds.to_string(),
            job: dag.job(*j).name.clone(),
            attempt: 0,
            status: "recovered".into(),
            started_at: now,
            ended_at: now,
            seconds: 0.0,
            rows_in: c.outcome.rows_in,
            rows_out: c.outcome.rows_out,
            bytes: c.outcome.bytes,
            message: c.outcome.message.clone(),
            error: None,
            final_state: true,
        })
        .collect();
    ledger.write_attempts(&rows)?;
    ledger.mark_resumed(ds)?;
    if !rows.is_empty() {
        crate::log::info(
            "recovered jobs committed by a killed run",
            &[("date", ds.into()), ("jobs", rows.len().into())],
        );
    }
    Ok(found.into_iter().map(|(j, c)| (j, c.run_id)).collect())
}

/// `20261127T020304-3fa9`: sortable, readable, unique in the ledger.
fn new_run_id(ledger: &Ledger) -> Result<String> {
    let mut salt = (ledger::unix_now().fract() * 1e9) as u64 ^ std::process::id() as u64;
    loop {
        let id = format!(
            "{}-{:04x}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S"),
            salt & 0xffff
        );
        if !ledger::run_exists(ledger, &id)? {
            return Ok(id);
        }
        salt = salt
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            >> 7;
    }
}

/// The last stdout line of `panorama run`: one JSON object, read by Airflow as an XCom.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub status: String,
    pub exit_code: i32,
    pub dates: Vec<String>,
    pub run_ids: Vec<String>,
    pub counts: Counts,
    pub duration_s: f64,
    pub failures: Vec<Failure>,
    pub failures_truncated: usize,
    /// Warnings of jobs that succeeded (drift alerts, warn-level checks), at most 50.
    pub warnings: Vec<String>,
    pub warnings_truncated: usize,
    pub reports: Vec<String>,
    /// Score partitions committed for the nights (`warehouse/score/<table>/dt=D`).
    pub score_tables: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub dry_run: bool,
}

const MAX_FAILURES_IN_SUMMARY: usize = 50;

impl Summary {
    pub fn from_nights(
        nights: &[NightResult],
        interrupted: bool,
        seconds: f64,
        shard: Option<Shard>,
    ) -> Summary {
        let mut counts = Counts::default();
        let mut failures = Vec::new();
        for n in nights {
            counts.add(&n.counts);
            failures.extend(n.failures.iter().cloned());
        }
        let mut warnings: Vec<String> = nights
            .iter()
            .flat_map(|n| n.warnings.iter().map(|w| format!("{} {w}", n.date)))
            .collect();
        let warnings_truncated = warnings.len().saturating_sub(MAX_FAILURES_IN_SUMMARY);
        warnings.truncate(MAX_FAILURES_IN_SUMMARY);
        let truncated = failures.len().saturating_sub(MAX_FAILURES_IN_SUMMARY);
        failures.truncate(MAX_FAILURES_IN_SUMMARY);
        let interrupted = interrupted || nights.iter().any(|n| n.status == "interrupted");
        let (status, code) = if interrupted {
            ("interrupted", ExitCode::JobsFailed)
        } else if counts.failed + counts.cancelled > 0 {
            ("failed", ExitCode::JobsFailed)
        } else {
            ("succeeded", ExitCode::Ok)
        };
        Summary {
            status: status.into(),
            exit_code: code as i32,
            dates: nights.iter().map(|n| n.date.clone()).collect(),
            run_ids: nights.iter().map(|n| n.run_id.clone()).collect(),
            counts,
            duration_s: (seconds * 1000.0).round() / 1000.0,
            failures,
            failures_truncated: truncated,
            warnings,
            warnings_truncated,
            reports: nights.iter().filter_map(|n| n.report.clone()).collect(),
            score_tables: Vec::new(),
            shard: shard.map(|s| s.to_string()),
            dry_run: false,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        if self.exit_code == 0 {
            ExitCode::Ok
        } else {
            ExitCode::JobsFailed
        }
    }
}

/// Where the run lock of a (possibly sharded) run lives: the warehouse root, or a folder per
/// shard so that the shards of one stage can run at once on one warehouse.
pub fn lock_root(project: &Project, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) if s.count > 1 => project
            .warehouse_root
            .join("_shards")
            .join(format!("{}-of-{}", s.index, s.count)),
        _ => project.warehouse_root.clone(),
    }
}

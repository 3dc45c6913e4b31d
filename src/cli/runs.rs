//! `panorama runs`: the run history from the ledger; `--run ID` for one run's attempts,
//! `--job NAME` for one job's history across nights.

use crate::cli::{parse_date, Ctx, ListFormat};
use crate::error::{Error, ExitCode, Result};
use crate::schedule::ledger::Ledger;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only runs of this night.
    #[arg(long, value_parser = parse_date)]
    pub date: Option<chrono::NaiveDate>,
    /// The attempts of one run (failed first, then the slowest).
    #[arg(long)]
    pub run: Option<String>,
    /// The attempts of one job (name or `*` wildcard) across runs.
    #[arg(long)]
    pub job: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    use std::io::Write;
    let project = ctx.project()?;
    let Some(ledger) = Ledger::open_existing(&project.warehouse_root)? else {
        if args.format == ListFormat::Json {
            println!("[]");
        } else {
            println!(
                "no runs yet (no ledger at {})",
                project
                    .warehouse_root
                    .join(crate::schedule::ledger::LEDGER_FILE)
                    .display()
            );
        }
        return Ok(ExitCode::Ok);
    };
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    if args.run.is_some() || args.job.is_some() {
        if let Some(r) = &args.run {
            if ledger.run(r)?.is_none() {
                return Err(Error::config(format!(
                    "no run {r:?} in the ledger (see `panorama runs`)"
                )));
            }
        }
        let mut rows =
            ledger.attempts(args.run.as_deref(), args.job.as_deref(), usize::MAX >> 1)?;
        if args.run.is_some() {
            // Problems first, then the slowest.
            rows.sort_by(|a, b| {
                let bad = |s: &str| !matches!(s, "succeeded" | "recovered");
                bad(&b.status)
                    .cmp(&bad(&a.status))
                    .then(b.seconds.total_cmp(&a.seconds))
            });
        } else {
            rows.reverse();
        }
        rows.truncate(args.limit);
        if args.format == ListFormat::Json {
            drop(out);
            return json(&rows).map(|_| ExitCode::Ok);
        }
        let w = rows
            .iter()
            .map(|r| r.job.len())
            .max()
            .unwrap_or(3)
            .clamp(3, 60);
        let _ = writeln!(
            out,
            "{:<w$}  {:<10} {:<20} {:>3} {:<10} {:>9} {:>10}  error / message",
            "job", "date", "run", "try", "status", "seconds", "rows out"
        );
        for r in &rows {
            let _ = writeln!(
                out,
                "{:<w$}  {:<10} {:<20} {:>3} {:<10} {:>9.3} {:>10}  {}",
                r.job,
                r.date,
                r.run_id,
                r.attempt,
                r.status,
                r.seconds,
                r.rows_out,
                crate::schedule::plan::first_line(r.error.as_deref().unwrap_or(&r.message), 100)
            );
        }
        return Ok(ExitCode::Ok);
    }
    let date = args.date.map(|d| d.to_string());
    let runs = ledger.runs(date.as_deref(), args.limit)?;
    if args.format == ListFormat::Json {
        drop(out);
        return json(&runs).map(|_| ExitCode::Ok);
    }
    let _ = writeln!(
        out,
        "{:<20} {:<10} {:<16} {:<20} {:>6} {:>6} {:>6} {:>6} {:>6} {:>9}  report",
        "run", "date", "status", "started", "ran", "ok", "failed", "skip", "done", "seconds"
    );
    for r in &runs {
        let _ = writeln!(
            out,
            "{:<20} {:<10} {:<16} {:<20} {:>6} {:>6} {:>6} {:>6} {:>6} {:>9}  {}",
            r.run_id,
            r.date,
            r.status,
            r.started_at.get(..19).unwrap_or(&r.started_at),
            r.to_run,
            r.succeeded + r.recovered,
            r.failed + r.cancelled,
            r.skipped,
            r.already_done,
            r.seconds
                .map(|s| format!("{s:.2}"))
                .unwrap_or_else(|| "-".into()),
            r.report.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::Ok)
}

fn json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!(
        "{}",
        serde_json::to_string(v).map_err(|e| Error::Other(e.to_string()))?
    );
    Ok(())
}

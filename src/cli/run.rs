//! `panorama run`: the nightly batch (or a backfill) through the schedule engine. The last
//! stdout line is a one-line JSON summary; the exit code is 1 when any job failed.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::cli::plan::{load_selection, plans, print_plans, NightArgs};
use crate::cli::{Ctx, ListFormat};
use crate::error::{Error, ExitCode, Result};
use crate::schedule::night::{lock_root, run_nights, Counts, NightOptions, Summary};
use crate::schedule::progress::Progress;
use crate::warehouse::lock::WarehouseLock;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub night: NightArgs,
    /// Jobs at once (at least 1; default: PANORAMA_THREADS, else panorama.toml
    /// [run] threads, else the cores).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub threads: Option<usize>,
    /// Print the plan and the summary; run nothing, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not write the HTML run report.
    #[arg(long)]
    pub no_report: bool,
    /// Seconds a timed-out job may take to stop before it is abandoned.
    #[arg(long, default_value_t = 30.0)]
    pub timeout_grace: f64,
}

/// 0 run, 1 stop launching (first SIGINT/SIGTERM), 2 cancel running jobs (second).
static STOP: AtomicU8 = AtomicU8::new(0);

fn install_signal_handler() {
    let _ = ctrlc::set_handler(|| {
        let level = STOP.fetch_add(1, Ordering::SeqCst) + 1;
        if level == 1 {
            crate::log::warn(
                "stopping: no new jobs start; running jobs finish (signal again to cancel them)",
                &[],
            );
        } else if level == 2 {
            crate::log::warn(
                "cancelling running jobs; nothing half-written is committed",
                &[],
            );
        }
    });
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let t0 = Instant::now();
    let project = ctx.project()?;
    let dates = args.night.dates()?;
    let threads = project.threads(args.threads)?;
    if !(0.0..=86400.0).contains(&args.timeout_grace) {
        return Err(Error::config("--timeout-grace: seconds from 0 to 86400"));
    }
    let (dag, chosen) = load_selection(&project, &args.night)?;

    if args.dry_run {
        let plans = plans(&project, &dag, &chosen, &args.night)?;
        print_plans(&dag, &plans, ListFormat::Table)?;
        let mut counts = Counts::default();
        for p in &plans {
            counts.selected += p.items.len();
            counts.to_run += p.items.len() - p.skipped();
            counts.already_done += p.skipped();
        }
        let mut s = Summary::from_nights(&[], false, t0.elapsed().as_secs_f64(), args.night.shard);
        s.dates = dates.iter().map(|d| d.to_string()).collect();
        s.counts = counts;
        s.dry_run = true;
        print_summary(&s);
        return Ok(ExitCode::Ok);
    }

    let holder = format!(
        "panorama run {}{}",
        match (args.night.date, args.night.from, args.night.to) {
            (Some(d), _, _) => format!("--date {d}"),
            (_, Some(a), Some(b)) => format!("--from {a} --to {b}"),
            _ => String::new(),
        },
        args.night
            .shard
            .map(|s| format!(" --shard {s}"))
            .unwrap_or_default()
    );
    // A full run holds the warehouse lock exclusive; a shard holds it shared plus its own.
    let shard_dir = lock_root(&project, args.night.shard);
    let _locks = WarehouseLock::acquire_run(
        &project.warehouse_root,
        (shard_dir != project.warehouse_root).then_some(shard_dir.as_path()),
        &holder,
    )?;
    install_signal_handler();

    let opts = NightOptions {
        dates,
        plan: args.night.options(),
        shard: args.night.shard,
        threads,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        timeout_grace: Duration::from_secs_f64(args.timeout_grace),
        report: !args.no_report,
        after_night: Some(crate::jobkinds::check::report_not_run),
    };
    let mut progress = Progress::new(Progress::terminal());
    let project = std::sync::Arc::new(project);
    let nights = run_nights(project.clone(), &dag, &chosen, &opts, &STOP, &mut progress)?;
    let interrupted = STOP.load(Ordering::SeqCst) > 0;
    let mut summary = Summary::from_nights(
        &nights,
        interrupted,
        t0.elapsed().as_secs_f64(),
        args.night.shard,
    );
    let nights_run: Vec<(String, String)> = summary
        .dates
        .iter()
        .cloned()
        .zip(summary.run_ids.iter().cloned())
        .collect();
    summary.score_tables = score_partitions(&project, &nights_run);
    if !summary.score_tables.is_empty() || !summary.reports.is_empty() {
        crate::log::info(
            &format!(
                "score tables: {}; reports: {} (model reports in reports/models/, score reports in reports/score/)",
                if summary.score_tables.is_empty() {
                    "none".to_string()
                } else {
                    summary.score_tables.join(", ")
                },
                summary.reports.join(", ")
            ),
            &[],
        );
    }
    print_summary(&summary);
    Ok(summary.exit_code())
}

/// Score partitions this run committed for its nights (`(date, run_id)`), relative to the
/// project. A partition an earlier run left (tonight's score job skipped, or not selected) is
/// not tonight's scores, so its `_SUCCESS` must name tonight's run.
fn score_partitions(project: &crate::config::Project, nights: &[(String, String)]) -> Vec<String> {
    let dir = project.warehouse_root.join("score");
    let mut tables: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    tables.sort();
    let mut out = Vec::new();
    for t in tables {
        for (d, run_id) in nights {
            let p = t.join(format!("dt={d}"));
            if crate::warehouse::read_success(&p).is_some_and(|s| &s.run_id == run_id) {
                out.push(
                    p.strip_prefix(&project.root)
                        .unwrap_or(&p)
                        .display()
                        .to_string(),
                );
            }
        }
    }
    out
}

fn print_summary(s: &Summary) {
    use std::io::Write;
    let line = serde_json::to_string(s).unwrap_or_else(|_| "{}".into());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

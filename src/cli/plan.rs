//! `panorama plan`: what a night would run and why, in order, without running anything.

use std::sync::Arc;

use serde::Serialize;

use crate::cli::{parse_date, Ctx, ListFormat};
use crate::config::Project;
use crate::error::{Error, ExitCode, Result};
use crate::schedule::ledger::Ledger;
use crate::schedule::plan::{changed_inputs, plan_night, Action, NightPlan, PlanOptions, Shard};
use crate::schedule::{self, select, Dag};

/// Flags shared by `plan` and `run`: which nights and which jobs.
#[derive(Debug, Clone, clap::Args)]
pub struct NightArgs {
    /// The night (dt) to process, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date, conflicts_with_all = ["from", "to"])]
    pub date: Option<chrono::NaiveDate>,
    /// Backfill: first night (with --to), inclusive.
    #[arg(long, value_parser = parse_date, requires = "to")]
    pub from: Option<chrono::NaiveDate>,
    /// Backfill: last night, inclusive.
    #[arg(long, value_parser = parse_date, requires = "from")]
    pub to: Option<chrono::NaiveDate>,
    /// Jobs to run (dbt-style: names, globs, tag:x, kind:x, pool:x, path:dir, table:l.t, +job, job+;
    /// commas or spaces for a union). Default: all.
    #[arg(short, long, num_args = 1.., action = clap::ArgAction::Append)]
    pub select: Vec<String>,
    /// Jobs to leave out (same grammar).
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    pub exclude: Vec<String>,
    /// Run jobs that already succeeded for the date.
    #[arg(long)]
    pub force: bool,
    /// Only jobs that failed (or were skipped or cancelled) the last time for the date.
    #[arg(long)]
    pub retry_failed: bool,
    /// A deterministic slice i/n of the selection for multi-machine runs; jobs linked by a
    /// dependency stay in one shard.
    #[arg(long)]
    pub shard: Option<Shard>,
}

impl NightArgs {
    pub fn dates(&self) -> Result<Vec<chrono::NaiveDate>> {
        match (self.date, self.from, self.to) {
            (Some(d), None, None) => Ok(vec![d]),
            (None, Some(a), Some(b)) if a <= b => {
                let n = (b - a).num_days();
                if n > 3660 {
                    return Err(Error::config(format!(
                        "--from {a} --to {b}: more than ten years of nights"
                    )));
                }
                Ok((0..=n).map(|i| a + chrono::Duration::days(i)).collect())
            }
            (None, Some(a), Some(b)) => Err(Error::config(format!("--from {a} is after --to {b}"))),
            _ => Err(Error::config(
                "give the night with --date YYYY-MM-DD, or a backfill with --from D1 --to D2",
            )),
        }
    }

    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            force: self.force,
            retry_failed: self.retry_failed,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub night: NightArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

/// Loads and validates the jobs, applies selection and shard.
pub fn load_selection(project: &Project, night: &NightArgs) -> Result<(Arc<Dag>, Vec<bool>)> {
    let dag = schedule::load(project, &crate::jobkinds::registry())?;
    for w in &dag.warnings {
        crate::log::warn(w, &[]);
    }
    for m in crate::transform::index(project).unbuilt_models(project) {
        let stem = std::path::Path::new(&m)
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        crate::log::warn(
            &format!(
                "{m} is not built: no sql job runs it (add jobs/sql/{stem}.toml with kind = \"sql\")"
            ),
            &[],
        );
    }
    let mut chosen =
        select::select(&dag, &night.select, &night.exclude).map_err(|problems| Error::Invalid {
            what: "the selection".into(),
            problems,
        })?;
    if let Some(s) = night.shard {
        schedule::plan::shard(&dag, &mut chosen, s);
    }
    Ok((Arc::new(dag), chosen))
}

/// The plans of the nights, read from the ledger without writing to it.
pub fn plans(
    project: &Project,
    dag: &Dag,
    chosen: &[bool],
    night: &NightArgs,
) -> Result<Vec<NightPlan>> {
    let ledger = Ledger::open_existing(&project.warehouse_root)?;
    let mut out = Vec::new();
    for date in night.dates()? {
        let prev = match &ledger {
            Some(l) => l.statuses(&date.to_string())?,
            None => Default::default(),
        };
        let changed = changed_inputs(project, dag, chosen, date, &prev, night.options());
        out.push(plan_night(
            dag,
            chosen,
            date,
            &prev,
            &changed,
            night.options(),
        ));
    }
    Ok(out)
}

#[derive(Serialize)]
struct JsonItem<'a> {
    order: usize,
    job: &'a str,
    kind: &'a str,
    action: Action,
    reason: &'a str,
    pool: Option<&'a str>,
    after: Vec<crate::cli::jobs::Dep<'a>>,
}

#[derive(Serialize)]
struct JsonNight<'a> {
    date: String,
    selected: usize,
    to_run: usize,
    skipped: usize,
    jobs: Vec<JsonItem<'a>>,
}

pub fn print_plans(dag: &Dag, plans: &[NightPlan], format: ListFormat) -> Result<()> {
    use std::io::Write;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    match format {
        ListFormat::Json => {
            let nights: Vec<JsonNight> = plans
                .iter()
                .map(|p| {
                    let mut order = 0;
                    JsonNight {
                        date: p.date.to_string(),
                        selected: p.items.len(),
                        to_run: p.items.len() - p.skipped(),
                        skipped: p.skipped(),
                        jobs: p
                            .items
                            .iter()
                            .map(|it| {
                                let j = dag.job(it.job);
                                if it.action == Action::Run {
                                    order += 1;
                                }
                                JsonItem {
                                    order: if it.action == Action::Run { order } else { 0 },
                                    job: &j.name,
                                    kind: &j.family.kind,
                                    action: it.action,
                                    reason: &it.reason,
                                    pool: j.family.pool.as_deref(),
                                    after: crate::cli::jobs::deps(dag, it.job),
                                }
                            })
                            .collect(),
                    }
                })
                .collect();
            let text = serde_json::to_string(&serde_json::json!({ "nights": nights }))
                .map_err(|e| Error::Other(e.to_string()))?;
            let _ = writeln!(out, "{text}");
        }
        ListFormat::Table => {
            for p in plans {
                let _ = writeln!(
                    out,
                    "plan for {}: {} selected, {} to run, {} already done",
                    p.date,
                    p.items.len(),
                    p.items.len() - p.skipped(),
                    p.skipped()
                );
                let width = p
                    .items
                    .iter()
                    .map(|i| dag.job(i.job).name.len())
                    .max()
                    .unwrap_or(4)
                    .clamp(4, 60);
                let _ = writeln!(out, "{:>6}  {:<width$}  {:<6} why", "#", "job", "action");
                let mut order = 0;
                for it in &p.items {
                    let j = dag.job(it.job);
                    let num = if it.action == Action::Run {
                        order += 1;
                        order.to_string()
                    } else {
                        "-".into()
                    };
                    let ps = &dag.parents[it.job as usize];
                    let mut why = it.reason.clone();
                    if !ps.is_empty() {
                        let shown: Vec<String> = ps
                            .iter()
                            .take(3)
                            .map(|d| match &d.why {
                                schedule::Why::After => dag.job(d.job).name.clone(),
                                schedule::Why::Reads(t) => format!("{} ({t})", dag.job(d.job).name),
                            })
                            .collect();
                        why.push_str(&format!(
                            "; after {}{}",
                            shown.join(", "),
                            if ps.len() > 3 {
                                format!(" +{} more", ps.len() - 3)
                            } else {
                                String::new()
                            }
                        ));
                    }
                    let action = match it.action {
                        Action::Run => "run",
                        Action::Skip => "skip",
                    };
                    let _ = writeln!(out, "{num:>6}  {:<width$}  {action:<6} {why}", j.name);
                }
            }
        }
    }
    Ok(())
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let project = ctx.project()?;
    args.night.dates()?;
    let (dag, chosen) = load_selection(&project, &args.night)?;
    let plans = plans(&project, &dag, &chosen, &args.night)?;
    print_plans(&dag, &plans, args.format)?;
    Ok(ExitCode::Ok)
}

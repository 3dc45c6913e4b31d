//! `panorama check`: run the declared data-quality checks by hand, record their results in
//! `quality.check_results` and write the HTML report; exit 1 when an `error` check fails.

use std::collections::BTreeMap;

use crate::cli::{parse_date, Ctx, ListFormat};
use crate::error::{Error, ExitCode, Result};
use crate::quality::{self, Check};
use crate::transform;
use crate::warehouse::lock::WarehouseLock;
use crate::warehouse::Warehouse;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tables to check (`clean.applications` or a bare name); default: every table with checks.
    pub tables: Vec<String>,
    /// The date whose partition is checked (else the latest before it); default: each table's
    /// latest partition. Results are recorded under this date.
    #[arg(long, value_parser = parse_date)]
    pub date: Option<chrono::NaiveDate>,
    /// Do not record the results nor write the report.
    #[arg(long)]
    pub no_write: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let project = ctx.project()?;
    let declared = quality::declarations(&project).map_err(|problems| Error::Invalid {
        what: "the project's check declarations".into(),
        problems,
    })?;
    let wh = Warehouse::new(&project.warehouse_root);
    let catalog = transform::index(&project).catalog(&wh);
    let mut selected: BTreeMap<String, Vec<Check>> = BTreeMap::new();
    if args.tables.is_empty() {
        selected = declared.clone();
        if selected.is_empty() {
            return Err(Error::config(
                "no checks are declared: add [[checks]] to an ingest contract, a model's config or a check job",
            ));
        }
    } else {
        let mut problems = Vec::new();
        for t in &args.tables {
            match quality::resolve_table(&catalog, t) {
                Ok((l, name)) => {
                    let q = format!("{l}.{name}");
                    match declared.get(&q) {
                        Some(cs) => {
                            selected.insert(q, cs.clone());
                        }
                        None => problems.push(format!(
                            "{q}: no checks declared (tables with checks: {})",
                            declared.keys().cloned().collect::<Vec<_>>().join(", ")
                        )),
                    }
                }
                Err(m) => problems.push(m),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Invalid {
                what: "panorama check".into(),
                problems,
            });
        }
    }
    // Writing results replaces partitions of quality.check_results and the report, as the
    // check jobs of a running night do: take the lock `panorama run` holds.
    let _lock = if args.no_write {
        None
    } else {
        Some(WarehouseLock::acquire(
            &project.warehouse_root,
            "panorama check",
        )?)
    };
    let run_id = format!("check-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S"));
    let mut outcomes = Vec::new();
    let mut dates = Vec::new();
    for (table, checks) in &selected {
        let (layer, name) = quality::resolve_table(&catalog, table).map_err(|m| {
            let mut origins: Vec<&str> = checks.iter().map(|c| c.origin.as_str()).collect();
            origins.dedup();
            Error::Config(format!("{}: {m}", origins.join(", ")))
        })?;
        let date = match args.date {
            Some(d) => d,
            None => match transform::scan::partitions(&wh, layer, &name).last() {
                Some(p) => p.dt,
                None => chrono::Local::now().date_naive(),
            },
        };
        let o = quality::evaluate(&wh, &catalog, layer, &name, date, checks);
        if !args.no_write {
            quality::write_results(&wh, &o, date, "check (by hand)", &run_id)?;
            if !dates.contains(&date) {
                dates.push(date);
            }
        }
        outcomes.push(o);
    }
    for d in &dates {
        let path = quality::report::write(&project, *d, &[])?;
        crate::log::info(
            "wrote the data-quality report",
            &[("path", path.display().to_string().into())],
        );
    }
    let blocking: usize = outcomes.iter().map(|o| o.blocking()).sum();
    match args.format {
        ListFormat::Json => println!(
            "{}",
            serde_json::to_string(&outcomes).map_err(|e| Error::Other(e.to_string()))?
        ),
        ListFormat::Table => {
            println!(
                "{:<34} {:<6} {:<44} {:>10}  observed",
                "table", "status", "check", "failing"
            );
            for o in &outcomes {
                for r in &o.results {
                    let detail = if r.status == "error" {
                        &r.message
                    } else {
                        &r.observed
                    };
                    println!(
                        "{:<34} {:<6} {:<44} {:>10}  {}",
                        o.table,
                        r.status,
                        truncate(&r.check, 44),
                        r.failing_rows,
                        detail
                    );
                }
            }
            let total: usize = outcomes.iter().map(|o| o.results.len()).sum();
            let warns: usize = outcomes.iter().map(|o| o.warnings()).sum();
            println!(
                "{total} checks on {} table(s): {} passed, {warns} warning(s), {blocking} failed",
                outcomes.len(),
                total - warns - blocking
            );
        }
    }
    Ok(if blocking > 0 {
        ExitCode::JobsFailed
    } else {
        ExitCode::Ok
    })
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

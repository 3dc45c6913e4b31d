//! `panorama score`: run a project's score jobs by hand for a date (the same code as the
//! nightly `score` kind), or score a prepared Parquet file into a file with `--input/--out`.
//!
//! One JSON line per table on stdout (rows, arms, declines, alerts, where it was written).

use std::path::PathBuf;

use crate::cli::{parse_date, Ctx};
use crate::error::{Context, Error, ExitCode, Result};
use crate::jobkinds::score::{parse, Overrides, ScoreJob};
use crate::schedule::{spec, COMMON_KEYS};
use crate::warehouse::lock::WarehouseLock;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Score tables to write (job names of kind `score`); default: every one.
    pub tables: Vec<String>,
    /// The night: reads feature partitions of this date and writes dt=DATE.
    #[arg(long, value_parser = parse_date)]
    pub date: chrono::NaiveDate,
    /// Score this Parquet or CSV file (or partition folder) instead of the feature partition
    /// (into the warehouse for --date, or into --out).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Write the scores to this Parquet file instead of the warehouse (one table only; no
    /// monitoring tables, no CSV copy).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn score_jobs(ctx: &Ctx) -> Result<Vec<(String, PathBuf)>> {
    let project = ctx.project()?;
    let registry = crate::jobkinds::registry();
    let jobs = spec::load_jobs(&project, &registry).map_err(|problems| Error::Invalid {
        what: format!(
            "the jobs of {}",
            project.root.join(spec::JOBS_DIR).display()
        ),
        problems,
    })?;
    Ok(jobs
        .iter()
        .filter(|j| j.family.kind == "score")
        .map(|j| (j.family.name.clone(), j.family.file.clone()))
        .collect())
}

fn load(name: &str, file: &PathBuf) -> Result<ScoreJob> {
    let text = std::fs::read_to_string(file).ctx(|| format!("reading {}", file.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| Error::input(file, format!("not TOML: {e}")))?;
    let own: toml::Table = table
        .into_iter()
        .filter(|(k, _)| !COMMON_KEYS.contains(&k.as_str()))
        .collect();
    parse(name, own).map_err(|problems| Error::Invalid {
        what: file.display().to_string(),
        problems,
    })
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let project = ctx.project()?;
    let all = score_jobs(ctx)?;
    if all.is_empty() {
        return Err(Error::config(
            "no job of kind \"score\" in jobs/ (see docs/score-tables.md)",
        ));
    }
    let picked: Vec<&(String, PathBuf)> = if args.tables.is_empty() {
        all.iter().collect()
    } else {
        let mut out = Vec::new();
        for t in &args.tables {
            match all.iter().find(|(n, _)| n == t) {
                Some(j) => out.push(j),
                None => {
                    return Err(Error::config(format!(
                        "no score job {t:?}; score jobs: {}",
                        all.iter()
                            .map(|j| j.0.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
        }
        out
    };
    if args.out.is_some() && picked.len() != 1 {
        return Err(Error::config("--out writes one table: name it"));
    }
    // Writing into the warehouse excludes a running night.
    let _lock = if args.out.is_none() {
        Some(WarehouseLock::acquire(
            &project.warehouse_root,
            "panorama score",
        )?)
    } else {
        None
    };
    let run_id = format!("score-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S"));
    let overrides = Overrides {
        input: args.input.clone(),
        out: args.out.clone(),
    };
    for (name, file) in picked {
        let job = load(name, file)?;
        let r = job.score(&project, args.date, &run_id, &overrides)?;
        for a in &r.alerts {
            crate::log::warn(a, &[]);
        }
        crate::log::info(
            &format!("scored {} rows into {}", r.stats.rows, r.path),
            &[
                (
                    "seconds",
                    serde_json::json!((r.seconds * 1000.0).round() / 1000.0),
                ),
                ("arms", serde_json::json!(r.stats.arms)),
            ],
        );
        println!(
            "{}",
            serde_json::to_string(&r).map_err(|e| Error::Other(e.to_string()))?
        );
    }
    Ok(ExitCode::Ok)
}

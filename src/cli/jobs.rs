//! `panorama jobs`: the project's jobs after expansion and validation.

use serde::Serialize;

use crate::cli::{Ctx, ListFormat};
use crate::error::{ExitCode, Result};
use crate::schedule::{self, select, TableRef};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Jobs to list (dbt-style selectors: names, globs, tag:x, kind:x, +job, job+).
    #[arg(short, long, num_args = 1.., action = clap::ArgAction::Append)]
    pub select: Vec<String>,
    /// Jobs to leave out (same grammar).
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    pub exclude: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

#[derive(Serialize)]
struct JobInfo<'a> {
    name: &'a str,
    kind: &'a str,
    family: &'a str,
    vars: &'a schedule::Vars,
    file: &'a str,
    tags: &'a [String],
    pool: Option<&'a str>,
    timeout_s: Option<f64>,
    retries: u32,
    after: Vec<Dep<'a>>,
    reads: &'a [TableRef],
    writes: &'a [TableRef],
}

#[derive(Serialize)]
pub(crate) struct Dep<'a> {
    pub job: &'a str,
    pub why: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let project = ctx.project()?;
    let dag = schedule::load(&project, &crate::jobkinds::registry())?;
    for w in &dag.warnings {
        crate::log::warn(w, &[]);
    }
    let chosen = select::select(&dag, &args.select, &args.exclude).map_err(|problems| {
        crate::error::Error::Invalid {
            what: "the selection".into(),
            problems,
        }
    })?;
    let idx: Vec<u32> = (0..dag.len() as u32)
        .filter(|&i| chosen[i as usize])
        .collect();
    match args.format {
        ListFormat::Json => {
            let list: Vec<JobInfo> = idx
                .iter()
                .map(|&i| {
                    let j = dag.job(i);
                    JobInfo {
                        name: &j.name,
                        kind: &j.family.kind,
                        family: &j.family.id,
                        vars: &j.vars,
                        file: &j.family.rel,
                        tags: &j.family.tags,
                        pool: j.family.pool.as_deref(),
                        timeout_s: j.family.timeout.map(|t| t.as_secs_f64()),
                        retries: j.family.retries,
                        after: deps(&dag, i),
                        reads: &j.reads,
                        writes: &j.writes,
                    }
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string(&list)
                    .map_err(|e| crate::error::Error::Other(e.to_string()))?
            );
        }
        ListFormat::Table => {
            use std::io::Write;
            let out = std::io::stdout();
            let mut out = std::io::BufWriter::new(out.lock());
            let width = idx
                .iter()
                .map(|&i| dag.job(i).name.len())
                .max()
                .unwrap_or(4)
                .clamp(4, 60);
            let tags = |i: u32| {
                let t = &dag.job(i).family.tags;
                if t.is_empty() {
                    "-".to_string()
                } else {
                    t.join(",")
                }
            };
            let tw = idx
                .iter()
                .map(|&i| tags(i).len())
                .max()
                .unwrap_or(4)
                .clamp(4, 40);
            let _ = writeln!(
                out,
                "{:<width$}  {:<8} {:<8} {:>4}  {:<tw$}  file",
                "job", "kind", "pool", "deps", "tags"
            );
            for &i in &idx {
                let j = dag.job(i);
                let _ = writeln!(
                    out,
                    "{:<width$}  {:<8} {:<8} {:>4}  {:<tw$}  {}",
                    j.name,
                    j.family.kind,
                    j.family.pool.as_deref().unwrap_or("-"),
                    dag.parents[i as usize].len(),
                    tags(i),
                    j.family.rel
                );
            }
            let kinds = idx.iter().fold(
                std::collections::BTreeMap::<&str, usize>::new(),
                |mut m, &i| {
                    *m.entry(dag.job(i).family.kind.as_str()).or_default() += 1;
                    m
                },
            );
            let _ = writeln!(
                out,
                "{} job(s): {}",
                idx.len(),
                kinds
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(ExitCode::Ok)
}

pub(crate) fn deps(dag: &schedule::Dag, i: u32) -> Vec<Dep<'_>> {
    dag.parents[i as usize]
        .iter()
        .map(|d| Dep {
            job: &dag.job(d.job).name,
            why: d.why.to_string(),
        })
        .collect()
}

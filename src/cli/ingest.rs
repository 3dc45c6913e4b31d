//! `panorama ingest`: one source, several, or `--all`, for a date — outside the scheduler,
//! for data engineers working on a contract.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::{parse_date, Ctx, ListFormat};
use crate::error::{Error, ExitCode, Result};
use crate::ingest::{ingest, Contract, IngestRequest};
use crate::schedule::spec;
use crate::warehouse::lock::WarehouseLock;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Source names (the contracts' `name`); see `--all`.
    pub sources: Vec<String>,
    /// Every ingest contract of the project.
    #[arg(long)]
    pub all: bool,
    /// The night (dt) to ingest, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date)]
    pub date: chrono::NaiveDate,
    /// Worker threads (at least 1; default: PANORAMA_THREADS, else panorama.toml
    /// [run] threads, else the cores).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub threads: Option<usize>,
    /// One instance of a family: each of its matrix keys with one of its matrix values, for
    /// the source path and the partition, e.g. `--var branch=0101`.
    #[arg(long = "var", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Summary format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

fn parse_var(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

/// An ingest job file: its contract, and the file as read (its matrix and checks).
pub struct Discovered {
    pub contract: Contract,
    pub table: toml::Table,
}

/// Ingest contracts of a project: every `jobs/**/*.toml` whose `kind` is `ingest`.
pub fn discover_contracts(project_root: &Path) -> Result<Vec<Discovered>> {
    let mut files = Vec::new();
    collect_toml(&project_root.join("jobs"), &mut files);
    files.sort();
    let mut contracts = Vec::new();
    let mut problems = Vec::new();
    let ingest_keys = crate::jobkinds::ingest::keys();
    for f in files {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| Error::config(format!("{}: {e}", f.display())))?;
        let mut table: toml::Table = match toml::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!(
                    "{}: {}",
                    f.display(),
                    e.to_string().trim().replace('\n', " ")
                ));
                continue;
            }
        };
        if table.get("kind").and_then(|k| k.as_str()) != Some("ingest") {
            continue;
        }
        // As for `panorama jobs` and `run`: the name defaults to the file's stem.
        if !table.contains_key("name") {
            if let Some(stem) = f.file_stem() {
                table.insert(
                    "name".into(),
                    toml::Value::String(stem.to_string_lossy().into_owned()),
                );
            }
        }
        // As `panorama jobs` refuses them: a misspelt key is not silently ignored by hand.
        for k in table.keys() {
            let known = ingest_keys.contains(&k.as_str())
                || crate::schedule::COMMON_KEYS.contains(&k.as_str());
            if !known {
                problems.push(format!(
                    "contract {}: `{k}`: unknown key for kind \"ingest\"",
                    f.display()
                ));
            }
        }
        // Checks are checked as `panorama jobs` checks them, though only `panorama run` runs
        // them, and in the same round as the contract's problems.
        let rel = f
            .strip_prefix(project_root)
            .unwrap_or(&f)
            .display()
            .to_string();
        let checks = crate::jobkinds::ingest::contract_checks(&table, &rel);
        if let Err(p) = &checks {
            problems.extend(p.iter().map(|x| format!("contract {}: {x}", f.display())));
        }
        match Contract::from_table(&table, &f) {
            Ok(contract) if checks.is_ok() => contracts.push(Discovered { contract, table }),
            Ok(_) => {}
            Err(Error::Invalid { what, problems: p }) => {
                problems.extend(p.into_iter().map(|x| format!("{what}: {x}")))
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(contracts)
    } else {
        Err(Error::Invalid {
            what: "the project's ingest contracts".into(),
            problems,
        })
    }
}

/// `--var` must name one instance of each selected contract's job family: its matrix keys,
/// each with one of its matrix values. Those values passed the job-file validation of
/// `panorama jobs` (no `/`, no white space, ...), so a partition path built from them stays
/// inside its table; an unknown key nested a partition inside the live one, and a `../`
/// value swapped a folder outside the warehouse into place and deleted it.
fn check_vars(
    project: &crate::config::Project,
    contracts: &[&Discovered],
    vars: &BTreeMap<String, String>,
) -> Result<()> {
    let mut problems = Vec::new();
    for d in contracts {
        let c = &d.contract;
        let matrix = match spec::declared_matrix(project, &d.table) {
            Ok(m) => m,
            Err(p) => {
                let rel = c.file.strip_prefix(&project.root).unwrap_or(&c.file);
                problems.extend(p.into_iter().map(|p| format!("{}: {p}", rel.display())));
                continue;
            }
        };
        let is_instance = vars.len() == matrix.len()
            && vars
                .iter()
                .all(|(k, v)| matrix.get(k).is_some_and(|vs| vs.contains(v)));
        if is_instance {
            continue;
        }
        let keys: Vec<&str> = matrix.keys().map(String::as_str).collect();
        let job = format!("ingest.{}", c.name);
        if vars.is_empty() {
            // Else the source path's first matrix placeholder was an "unknown placeholder".
            problems.push(format!(
                "{job} is a family (matrix: {}): ingest one instance with --var, e.g. --var {}",
                keys.join(", "),
                matrix
                    .iter()
                    .map(|(k, vs)| format!("{k}={}", vs[0]))
                    .collect::<Vec<_>>()
                    .join(" --var ")
            ));
            continue;
        }
        if keys.is_empty() {
            problems.push(format!(
                "{job} has no [matrix], so --var {} names nothing in it",
                vars.keys().cloned().collect::<Vec<_>>().join(", --var ")
            ));
            continue;
        }
        let unknown: Vec<&str> = vars
            .keys()
            .map(String::as_str)
            .filter(|k| !matrix.contains_key(*k))
            .collect();
        let missing: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| !vars.contains_key(*k))
            .collect();
        problems.push(if !unknown.is_empty() || !missing.is_empty() {
            format!(
                "{job}: --var must name exactly its matrix keys ({}){}{}",
                keys.join(", "),
                if unknown.is_empty() {
                    String::new()
                } else {
                    format!("; unknown: {}", unknown.join(", "))
                },
                if missing.is_empty() {
                    String::new()
                } else {
                    format!("; missing: {}", missing.join(", "))
                },
            )
        } else {
            format!(
                "{job} has no instance [{}]: each --var takes one of the family's matrix \
                 values ({})",
                vars.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
                matrix
                    .iter()
                    .map(|(k, vs)| format!("{k}: {}", vs.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid {
            what: "the --var values".into(),
            problems,
        })
    }
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_toml(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let project = ctx.project()?;
    let all = discover_contracts(&project.root)?;
    let selected: Vec<&Discovered> = if args.all {
        all.iter().collect()
    } else {
        if args.sources.is_empty() {
            return Err(Error::config(
                "name a source to ingest, or pass --all (see `panorama jobs --select kind:ingest`)",
            ));
        }
        let mut out = Vec::new();
        let mut unknown = Vec::new();
        for s in &args.sources {
            match all
                .iter()
                .find(|d| d.contract.name == *s || d.contract.table == *s)
            {
                Some(c) => out.push(c),
                None => unknown.push(s.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(Error::config(format!(
                "unknown source(s): {}; the project has: {}",
                unknown.join(", "),
                all.iter()
                    .map(|d| d.contract.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        out
    };
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in args.vars {
        if let Some(before) = vars.insert(k.clone(), v.clone()) {
            if before != v {
                return Err(Error::config(format!(
                    "--var {k} is given twice ({before}, {v}): one instance at a time"
                )));
            }
        }
    }
    check_vars(&project, &selected, &vars)?;
    // The lock `panorama run` holds: an ingest replaces partitions and removes the staging
    // folders of their earlier writers, which may be a running night's (or another ingest's).
    let holder = format!(
        "panorama ingest {} --date {}",
        if args.all {
            "--all".to_string()
        } else {
            args.sources.join(" ")
        },
        args.date
    );
    let _lock = WarehouseLock::acquire(&project.warehouse_root, &holder)?;
    let threads = project.threads(args.threads)?;
    let run_id = format!("manual-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f"));
    let mut reports = Vec::new();
    let mut failures: Vec<(String, Error)> = Vec::new();
    // SIGINT/SIGTERM: the source being ingested stops without committing (its previous
    // partition stays), the ones after it do not start, and the exit says so.
    static CANCEL: AtomicBool = AtomicBool::new(false);
    let _ = ctrlc::set_handler(|| CANCEL.store(true, Ordering::SeqCst));
    for d in selected {
        if CANCEL.load(Ordering::SeqCst) {
            failures.push((d.contract.name.clone(), Error::Interrupted));
            continue;
        }
        let c = &d.contract;
        let job = format!("ingest.{}", c.name);
        let req = IngestRequest {
            project: &project,
            contract: c,
            date: args.date,
            run_id: &run_id,
            job: &job,
            vars: &vars,
            cancel: Some(&CANCEL),
            threads,
        };
        match ingest(&req) {
            Ok(r) => {
                crate::log::info(
                    &format!("ingested {}", c.name),
                    &[
                        ("table", format!("clean.{}", r.table).into()),
                        ("rows_read", r.rows_read.into()),
                        ("rows_written", r.rows_written.into()),
                        ("rows_rejected", r.rows_rejected.into()),
                        (
                            "mb_per_s",
                            ((r.bytes_in as f64 / 1e6 / r.seconds.max(1e-9) * 10.0).round() / 10.0)
                                .into(),
                        ),
                        ("seconds", ((r.seconds * 1000.0).round() / 1000.0).into()),
                    ],
                );
                // `[[checks]]` belong to the job (the contract file read as a job file).
                if d.table.contains_key("checks") {
                    crate::log::info(
                        &format!(
                            "clean.{0} declares checks, which `panorama ingest` does not run: \
                             `panorama check clean.{0} --date {1}` runs them (`panorama run` \
                             runs them inside the ingest job)",
                            r.table, args.date
                        ),
                        &[],
                    );
                }
                reports.push(r);
            }
            Err(e) => {
                crate::cli::print_error(&e);
                failures.push((c.name.clone(), e));
            }
        }
    }
    match args.format {
        ListFormat::Json => {
            let summary = serde_json::json!({
                "date": args.date.to_string(),
                "ingested": reports,
                "failed": failures.iter().map(|(n, e)| serde_json::json!({"source": n, "error": e.to_string(), "exit_code": e.exit_code() as i32})).collect::<Vec<_>>(),
            });
            println!("{summary}");
        }
        // Nothing ingested: the errors said it all (an empty table only added noise).
        ListFormat::Table if reports.is_empty() => {}
        ListFormat::Table => {
            println!(
                "{:<22} {:>10} {:>10} {:>9} {:>9}  partition",
                "table", "read", "written", "rejected", "seconds"
            );
            for r in &reports {
                println!(
                    "{:<22} {:>10} {:>10} {:>9} {:>9.2}  {}",
                    format!("clean.{}", r.table),
                    r.rows_read,
                    r.rows_written,
                    r.rows_rejected,
                    r.seconds,
                    r.partition
                        .strip_prefix(&project.root)
                        .unwrap_or(&r.partition)
                        .display()
                );
            }
        }
    }
    if failures.is_empty() {
        return Ok(ExitCode::Ok);
    }
    // The most specific code wins: bad data (3) over bad config (2) over other failures (1).
    let codes: Vec<ExitCode> = failures.iter().map(|(_, e)| e.exit_code()).collect();
    Ok(if codes.contains(&ExitCode::DataRejected) {
        ExitCode::DataRejected
    } else if codes.contains(&ExitCode::Usage) {
        ExitCode::Usage
    } else {
        ExitCode::JobsFailed
    })
}

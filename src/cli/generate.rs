//! `panorama generate`: write a complete, runnable demo project with realistic, messy sources.
//!
//! One line per file on stderr (path, rows, bytes); the JSON summary on stdout.

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::cli::{human_bytes, parse_date, Ctx};
use crate::error::{Error, ExitCode, Result};
use crate::generate::{generate_with, GenerateOptions, SourceKind};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder to write the project into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of enterprises; sizes grow linearly with it (1,000,000 gives several GB).
    #[arg(long, default_value_t = 1000)]
    pub enterprises: usize,
    /// Random seed: the same flags give the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The (last) night, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date, default_value = "2026-11-26")]
    pub date: NaiveDate,
    /// Consecutive nights ending at --date, one folder of sources each.
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    /// Folder of the sources inside --out (the repository root uses data-samples).
    #[arg(long, default_value = "data")]
    pub data_dir: String,
    /// Only these sources, comma-separated (e.g. applications): enterprises, enterprise_kyc,
    /// persons, applications, transactions, repayments, tax_filings, telecom, contacts,
    /// court_records.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Write into a folder that is not empty (an existing panorama.toml and key are kept).
    #[arg(long)]
    pub force: bool,
    /// `[project] name` of the generated panorama.toml.
    #[arg(long)]
    pub name: Option<String>,
    /// Scale mode: split the project per branch (sources under <night>/<branch>/, job
    /// families over the branches) so that one night is at least this many jobs.
    #[arg(long)]
    pub scale_jobs: Option<usize>,
    /// Enterprises per branch in scale mode.
    #[arg(long, default_value_t = 20)]
    pub branch_enterprises: usize,
}

pub fn run(_ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let mut only = Vec::new();
    let mut unknown = Vec::new();
    let names: Vec<&str> = SourceKind::ALL.iter().map(|k| k.name()).collect();
    for s in args.only.iter().filter(|s| !s.trim().is_empty()) {
        match SourceKind::parse(s) {
            Some(k) => only.push(k),
            None => unknown.push(format!(
                "--only: unknown source {s:?} (sources: {})",
                names.join(", ")
            )),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::Invalid {
            what: "panorama generate flags".into(),
            problems: unknown,
        });
    }
    let opts = GenerateOptions {
        out: args.out,
        enterprises: args.enterprises,
        seed: args.seed,
        date: args.date,
        days: args.days,
        data_dir: args.data_dir,
        only,
        force: args.force,
        project_name: args.name,
        scale_jobs: args.scale_jobs,
        branch_enterprises: args.branch_enterprises,
    };
    let summary = generate_with(&opts, &mut |f| {
        let mut fields = vec![("path", serde_json::Value::from(f.path.clone()))];
        if let Some(rows) = f.rows {
            fields.push(("rows", rows.into()));
        }
        fields.push(("bytes", f.bytes.into()));
        crate::log::info("wrote", &fields);
    })?;
    let branches = if summary.branches > 0 {
        format!(" in {} branches", summary.branches)
    } else {
        String::new()
    };
    crate::log::info(
        &format!(
            "generated {} enterprises{branches}, {} night(s), {} rows, {} in {:.1} s",
            summary.enterprises,
            summary.nights.len(),
            summary.rows,
            human_bytes(summary.bytes),
            summary.elapsed_ms as f64 / 1000.0
        ),
        &[],
    );
    println!(
        "{}",
        serde_json::to_string(&summary).map_err(|e| Error::Other(format!("summary: {e}")))?
    );
    Ok(ExitCode::Ok)
}

//! One module per subcommand; each is glue between parsed flags and the library.

pub mod check;
pub mod export;
pub mod generate;
pub mod ingest;
pub mod jobs;
pub mod models;
pub mod plan;
pub mod query;
pub mod run;
pub mod runs;
pub mod score;
pub mod tables;
pub mod train;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Project;
use crate::error::{Error, ExitCode, Result};
use crate::log::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "panorama",
    version,
    about = "Nightly batch for an SME lender: ingest, clean, features, credit models, scores"
)]
pub struct Cli {
    /// Project folder (holding panorama.toml); default: the current folder.
    #[arg(short = 'C', long = "project", global = true, env = "PANORAMA_PROJECT")]
    pub project: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// More log lines.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a complete, runnable demo project with realistic, messy sources.
    Generate(generate::Args),
    /// Ingest one source (or all) for a date into the clean layer.
    Ingest(ingest::Args),
    /// The warehouse catalog: tables, partitions, rows, bytes, schema.
    Tables(tables::Args),
    /// The project's jobs after matrix expansion and validation.
    Jobs(jobs::Args),
    /// What a night would run and why, in order; runs nothing.
    Plan(plan::Args),
    /// Run the nightly batch (or a backfill) as a DAG of jobs.
    Run(run::Args),
    /// Run history from the ledger: runs, a run's attempts, a job's history.
    Runs(runs::Args),
    /// Export the schedule for another orchestrator (Airflow).
    Export(export::Args),
    /// Read-only SQL over the warehouse tables (latest partition unless `dt` is constrained).
    Query(query::Args),
    /// Run the declared data-quality checks by hand; results into quality.check_results.
    Check(check::Args),
    /// Train a model ad hoc on a CSV or Parquet file (no project needed); prints metrics and
    /// writes an HTML report.
    Train(train::Args),
    /// The model registry, champions and decisions: list, show, champions, promote, rollback.
    Models(models::Args),
    /// Score a date's population into the score tables by hand (the nightly `score` jobs), or
    /// a Parquet file into a file.
    Score(score::Args),
}

impl Cli {
    pub fn project_dir(&self) -> PathBuf {
        self.project.clone().unwrap_or_else(|| PathBuf::from("."))
    }
}

/// Context every subcommand gets.
pub struct Ctx {
    pub project_dir: PathBuf,
}

impl Ctx {
    pub fn project(&self) -> Result<Project> {
        Project::open(&self.project_dir)
    }
}

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    crate::log::init(cli.log_format, cli.verbose, cli.quiet);
    let ctx = Ctx {
        project_dir: cli.project_dir(),
    };
    match cli.command {
        Command::Generate(a) => generate::run(&ctx, a),
        Command::Ingest(a) => ingest::run(&ctx, a),
        Command::Tables(a) => tables::run(&ctx, a),
        Command::Jobs(a) => jobs::run(&ctx, a),
        Command::Plan(a) => plan::run(&ctx, a),
        Command::Run(a) => run::run(&ctx, a),
        Command::Runs(a) => runs::run(&ctx, a),
        Command::Export(a) => export::run(&ctx, a),
        Command::Query(a) => query::run(&ctx, a),
        Command::Check(a) => check::run(&ctx, a),
        Command::Train(a) => train::run(&ctx, a),
        Command::Models(a) => models::run(&ctx, a),
        Command::Score(a) => score::run(&ctx, a),
    }
}

/// Prints the error and its whole chain on stderr.
pub fn print_error(err: &Error) {
    let mut msg = format!("error: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(&format!("\n  caused by: {text}"));
        }
        source = s.source();
    }
    match crate::log::format() {
        LogFormat::Json => crate::log::event(
            crate::log::Level::Error,
            &msg,
            &[("exit_code", (err.exit_code() as i32).into())],
        ),
        LogFormat::Human => eprintln!("{msg}"),
    }
}

/// Output formats shared by listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

/// Parses `YYYY-MM-DD`, the only date form flags take.
pub fn parse_date(s: &str) -> std::result::Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date in the form YYYY-MM-DD"))
}

/// Human byte counts for tables.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

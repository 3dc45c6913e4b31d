//! `panorama query "SQL"`: read-only SQL over every warehouse table.
//!
//! A table reads its latest partition unless the query constrains `dt` (then the partitions
//! that match) or `--all-partitions` is given; see docs/sql.md.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use crate::cli::{parse_date, Ctx};
use crate::error::{Context, Error, ExitCode, Result};
use crate::transform::parse::Params;
use crate::transform::query::{self, OutputFormat, QueryOptions};
use crate::warehouse::Warehouse;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The SQL statement (or use --file). May start with a `--` comment.
    #[arg(allow_hyphen_values = true)]
    pub sql: Option<String>,
    /// Read the SQL from a file (`-` for standard input), e.g. a model in sql/.
    #[arg(short, long, conflicts_with = "sql")]
    pub file: Option<PathBuf>,
    /// Output format (default: from --out's extension, else table).
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    /// Write the result to this file instead of standard output.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// The run date: the value of {{ ds }}, and partitions after it are invisible (as in a model
    /// run for that date). Default: {{ ds }} is today and every partition is visible.
    #[arg(long, value_parser = parse_date)]
    pub date: Option<chrono::NaiveDate>,
    /// Read every partition of tables whose `dt` the query does not constrain.
    #[arg(long)]
    pub all_partitions: bool,
    /// Rows printed by --format table.
    #[arg(long, default_value_t = 100)]
    pub max_rows: usize,
    /// Print the partitions each table reads and the optimised plan instead of running.
    #[arg(long)]
    pub explain: bool,
    /// Allow table functions that read files (`read_csv('…')`, `read_parquet('…')`). Off by
    /// default: a query reads warehouse tables, not raw sources (raw PII) or the PII key.
    #[arg(long)]
    pub allow_files: bool,
}

fn read_sql(args: &Args) -> Result<String> {
    match (&args.sql, &args.file) {
        (Some(s), _) => Ok(s.clone()),
        (None, Some(p)) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .ctx(|| "reading the query from standard input".to_string())?;
            Ok(s)
        }
        (None, Some(p)) => {
            std::fs::read_to_string(p).map_err(|e| Error::config(format!("{}: {e}", p.display())))
        }
        (None, None) => Err(Error::config(
            "give the query: panorama query \"SELECT …\" (or --file FILE, - for standard input)",
        )),
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let project = ctx.project()?;
    let sql = read_sql(&args)?;
    let format = match (args.format, &args.out) {
        (Some(f), _) => f,
        (None, None) => OutputFormat::Table,
        (None, Some(out)) => OutputFormat::from_path(out).ok_or_else(|| {
            Error::config(format!(
                "--out {}: give --format, or a file ending in .csv, .json, .ndjson, .parquet \
                 or .txt (a text table)",
                out.display()
            ))
        })?,
    };
    if format == OutputFormat::Parquet && args.out.is_none() {
        return Err(Error::config(
            "--format parquet writes a file: add --out FILE.parquet",
        ));
    }
    let started = Instant::now();
    let wh = Warehouse::new(&project.warehouse_root);
    let catalog = query::Catalog::from_warehouse(&wh);
    let date = args
        .date
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let opts = QueryOptions {
        // A model file previewed with -f may name the run.
        params: Params::for_date(date).with("run_id", "adhoc"),
        as_of: args.date,
        all_partitions: args.all_partitions,
        allow_table_functions: args.allow_files,
        partition: Vec::new(),
    };
    let mut compiled = query::compile(&wh, &catalog, &sql, &opts)?;
    if args.explain || compiled.explain {
        let plan = compiled.explain()?;
        println!("{plan}");
        return Ok(ExitCode::Ok);
    }
    let mut df = if compiled.show_tables {
        query::tables_frame(&wh)?
    } else {
        compiled.collect()?
    };
    let secs = started.elapsed().as_secs_f64();
    match &args.out {
        Some(path) => {
            query::write_file(&mut df, format, path)?;
            crate::log::info(
                "wrote the result",
                &[
                    ("path", path.display().to_string().into()),
                    ("rows", (df.height() as u64).into()),
                    ("seconds", ((secs * 1000.0).round() / 1000.0).into()),
                ],
            );
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            query::write_to(&mut df, format, args.max_rows, &mut w)?;
            w.flush().ctx(|| "writing the result".to_string())?;
            crate::log::debug(
                "query done",
                &[
                    ("rows", (df.height() as u64).into()),
                    ("seconds", ((secs * 1000.0).round() / 1000.0).into()),
                ],
            );
        }
    }
    Ok(ExitCode::Ok)
}

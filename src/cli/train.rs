//! `panorama train`: ad hoc training on any CSV or Parquet file, no project needed.
//!
//! Types are inferred, id-like columns dropped, the target checked to be binary; the data is
//! split (stratified, seeded), the model fitted and evaluated, metrics printed and an HTML
//! report written. With `--format json` stdout is one JSON object (test `auc`, `ks`, `gini`,
//! `train_auc`, ...). `--register NAME` also stores the model in the project's registry.

use std::path::PathBuf;

use crate::cli::Ctx;
use crate::error::{Error, ExitCode, Result};
use crate::model::pipeline::{self, Algo, Evaluation, Split, TrainSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The data: a .csv (any of , ; tab | separators) or .parquet file.
    #[arg(long)]
    pub data: PathBuf,
    /// The target column (binary: 0/1, yes/no, true/false, good/bad or any two values).
    #[arg(long)]
    pub target: String,
    /// Algorithm: scorecard, logistic, tree, gbdt, knn for a binary target; linear,
    /// tree_regressor, gbdt_regressor for a continuous one; kmeans, dbscan (clusters) and pca,
    /// ica (components), which leave the target out and do not use it.
    #[arg(long, default_value = "scorecard")]
    pub algo: String,
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutFormat,
    /// Seed of the split and of randomised algorithms.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of rows held out for testing.
    #[arg(long, default_value_t = 0.3)]
    pub test_size: f64,
    /// Out-of-time split instead of a random one: rows whose value in this column sorts
    /// before `--oot-cutoff` train, the others test (dates as YYYY-MM-DD sort correctly).
    #[arg(long, requires = "oot_cutoff")]
    pub oot_column: Option<String>,
    /// With --oot-column: the first value of the test period (rows from it on test).
    #[arg(long, requires = "oot_column")]
    pub oot_cutoff: Option<String>,
    /// Hyperparameters as a JSON object, e.g. '{"num_leaves": 63}'.
    #[arg(long)]
    pub params: Option<String>,
    /// Columns to leave out (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Columns to treat as categorical even if numeric (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Where the HTML report goes.
    #[arg(long, default_value = "reports")]
    pub report_dir: PathBuf,
    /// Write no report.
    #[arg(long)]
    pub no_report: bool,
    /// Also register the model under this name in the project's warehouse.
    #[arg(long)]
    pub register: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let algo = Algo::parse(&args.algo).ok_or_else(|| {
        Error::config(format!(
            "--algo {:?}: allowed values are {}",
            args.algo,
            Algo::names()
        ))
    })?;
    if !(args.test_size > 0.0 && args.test_size < 1.0) {
        return Err(Error::config(format!(
            "--test-size {}: must be in (0, 1)",
            args.test_size
        )));
    }
    let params: serde_json::Value = match &args.params {
        Some(p) => serde_json::from_str(p)
            .map_err(|e| Error::config(format!("--params is not a JSON object: {e}")))?,
        None => serde_json::json!({}),
    };
    let started = std::time::Instant::now();
    let df = crate::model::prep::read_table(&args.data)?;
    let load_seconds = started.elapsed().as_secs_f64();
    let spec = TrainSpec {
        algo,
        params: params.clone(),
        target: Some(args.target.clone()),
        features: None,
        exclude: args.exclude.clone(),
        categorical: args.categorical.clone(),
        split: match (&args.oot_column, &args.oot_cutoff) {
            (Some(column), Some(cutoff)) => Split::OutOfTime {
                column: column.clone(),
                cutoff: cutoff.clone(),
            },
            _ => Split::Stratified {
                test_size: args.test_size,
            },
        },
        seed: args.seed,
        missing: Default::default(),
    };
    let out = pipeline::train(&df, &spec)?;
    let stem = format!(
        "{}-{}",
        args.data
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("data"),
        algo.name()
    );
    let report = if args.no_report {
        None
    } else {
        let html = crate::report::model_report(
            &format!("{} on {}", algo.name(), args.data.display()),
            &format!(
                "panorama {} · seed {} · test size {}",
                crate::model::registry::code_version(),
                args.seed,
                args.test_size
            ),
            &out,
            &params,
        );
        Some(crate::report::write_report(&args.report_dir, &stem, &html)?)
    };
    let registered = match &args.register {
        Some(name) => {
            let project = ctx.project()?;
            let spec_json = serde_json::to_value(&spec).unwrap_or_default();
            let (dir, meta) = crate::model::registry::register(
                &project.warehouse_root,
                name,
                &spec_json,
                &out,
                args.seed,
                None,
                None,
            )?;
            if let Some(r) = &report {
                let _ = std::fs::copy(r, dir.join("report.html"));
            }
            Some(format!("{}/{}", meta.name, meta.version))
        }
        None => None,
    };
    let mut summary = serde_json::json!({
        "data": args.data.display().to_string(),
        "algo": algo.name(),
        "target": args.target,
        "rows": df.height(),
        "rows_train": out.rows_train,
        "rows_test": out.rows_test,
        "features": out.trained.input_names.len(),
        "dropped_columns": out.dropped_columns,
        "seed": args.seed,
        "load_seconds": load_seconds,
        "fit_seconds": out.fit_seconds,
        "report": report.as_ref().map(|p| p.display().to_string()),
        "registered": registered,
    });
    let obj = summary.as_object_mut().unwrap();
    if let Some(tm) = &out.trained.target_map {
        obj.insert("event".into(), serde_json::json!(tm.event));
        // docs/models.md promises the count, not only in the HTML report.
        obj.insert(
            "rows_without_target".into(),
            serde_json::json!(tm.rows_dropped_missing),
        );
        obj.insert(
            "event_rate_test".into(),
            serde_json::json!(match &out.eval {
                Evaluation::Binary(b) => b.test.events as f64 / b.test.rows.max(1) as f64,
                _ => 0.0,
            }),
        );
    }
    for (k, v) in crate::model::registry::headline(&out.eval)
        .as_object()
        .cloned()
        .unwrap_or_default()
    {
        obj.insert(k, v);
    }
    if let Evaluation::Binary(b) = &out.eval {
        obj.insert("train_ks".into(), serde_json::json!(b.train.ks));
        obj.insert("brier".into(), serde_json::json!(b.test.brier));
    }
    obj.insert(
        "top_features".into(),
        serde_json::json!(out
            .importance
            .iter()
            .take(10)
            .map(|(n, v)| serde_json::json!({"feature": n, "importance": v}))
            .collect::<Vec<_>>()),
    );
    match args.format {
        OutFormat::Json => println!("{summary}"),
        OutFormat::Text => print_text(&summary, &out),
    }
    Ok(ExitCode::Ok)
}

fn print_text(s: &serde_json::Value, out: &pipeline::TrainOutcome) {
    let g = |k: &str| s.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
    println!(
        "{} on {}: {} rows ({} train, {} test), {} features",
        s["algo"].as_str().unwrap_or(""),
        s["data"].as_str().unwrap_or(""),
        s["rows"],
        s["rows_train"],
        s["rows_test"],
        s["features"]
    );
    for d in &out.dropped_columns {
        println!("  dropped {}: {}", d.column, d.reason);
    }
    match &out.eval {
        Evaluation::Binary(b) => {
            println!(
                "  event {:?}, test event rate {:.4}",
                s["event"].as_str().unwrap_or(""),
                g("event_rate_test")
            );
            let missing = s["rows_without_target"].as_u64().unwrap_or(0);
            if missing > 0 {
                println!("  {missing} rows without a target left out");
            }
            println!("             train     test");
            println!("  AUC      {:>7.4}  {:>7.4}", b.train.auc, b.test.auc);
            println!("  KS       {:>7.4}  {:>7.4}", b.train.ks, b.test.ks);
            println!("  Gini     {:>7.4}  {:>7.4}", b.train.gini, b.test.gini);
            println!(
                "  log loss {:>7.4}  {:>7.4}",
                b.train.log_loss, b.test.log_loss
            );
            println!("  Brier    {:>7.4}  {:>7.4}", b.train.brier, b.test.brier);
            println!("  score PSI test vs train: {:.4}", b.score_psi);
        }
        Evaluation::Regression { train, test, .. } => {
            println!("             train     test");
            println!("  RMSE     {:>9.4}  {:>9.4}", train.rmse, test.rmse);
            println!("  MAE      {:>9.4}  {:>9.4}", train.mae, test.mae);
            println!("  R2       {:>9.4}  {:>9.4}", train.r2, test.r2);
        }
        Evaluation::Unsupervised { summary } => println!("  {summary}"),
    }
    if !out.importance.is_empty() {
        println!("  top features:");
        for (n, v) in out.importance.iter().take(8) {
            println!("    {n:<30} {v:.3}");
        }
    }
    println!("  fit {:.2} s", g("fit_seconds"));
    if let Some(r) = s["report"].as_str() {
        println!("  report: {r}");
    }
    if let Some(r) = s["registered"].as_str() {
        println!("  registered: {r}");
    }
}

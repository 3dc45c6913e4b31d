//! `panorama models list|show`: the model registry under `warehouse/models/`.

use crate::cli::{Ctx, ListFormat};
use crate::error::{ExitCode, Result};
use crate::model::registry;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Every registered model version with its headline metrics.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// One model version (latest unless --version): metadata, metrics, features, files.
    Show {
        name: String,
        #[arg(long)]
        version: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
}

fn headline_text(h: &serde_json::Value) -> String {
    let keys = ["auc", "ks", "gini", "rmse", "r2", "inertia", "clusters"];
    keys.iter()
        .filter_map(|k| {
            h.get(*k).map(|v| match v.as_f64() {
                Some(f) => format!("{k}={f:.4}"),
                None => format!("{k}={v}"),
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let project = ctx.project()?;
    let root = &project.warehouse_root;
    match args.command {
        Sub::List { format } => {
            let all = registry::list(root);
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string(&all).unwrap_or_default()),
                ListFormat::Table => {
                    if all.is_empty() {
                        eprintln!("no models yet in {}", registry::models_root(root).display());
                    }
                    println!(
                        "{:<24} {:<7} {:<15} {:<20} {:>9} {:<10}  metrics",
                        "model", "version", "algo", "created", "rows", "dt"
                    );
                    for m in &all {
                        println!(
                            "{:<24} {:<7} {:<15} {:<20} {:>9} {:<10}  {}",
                            m.name,
                            m.version,
                            m.algo,
                            m.created_at,
                            m.rows_train + m.rows_test,
                            m.dt.as_deref().unwrap_or("-"),
                            headline_text(&m.headline)
                        );
                    }
                }
            }
        }
        Sub::Show {
            name,
            version,
            format,
        } => {
            let dir = registry::version_dir(root, &name, version.as_deref())?;
            let read = |f: &str| -> serde_json::Value {
                std::fs::read_to_string(dir.join(f))
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(serde_json::Value::Null)
            };
            let meta = read("meta.json");
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(String::from))
                .collect();
            files.sort();
            match format {
                ListFormat::Json => println!(
                    "{}",
                    serde_json::json!({"dir": dir.display().to_string(), "meta": meta, "metrics": read("metrics.json"), "features": read("features.json"), "files": files})
                ),
                ListFormat::Table => {
                    println!(
                        "{} {} ({})",
                        meta["name"].as_str().unwrap_or(""),
                        meta["version"].as_str().unwrap_or(""),
                        dir.display()
                    );
                    for k in [
                        "algo",
                        "created_at",
                        "code_version",
                        "seed",
                        "data_fingerprint",
                        "rows_train",
                        "rows_test",
                        "target",
                        "dt",
                        "run_id",
                    ] {
                        println!("  {k:<17} {}", meta[k]);
                    }
                    println!("  {:<17} {}", "metrics", headline_text(&meta["headline"]));
                    let feats = read("features.json");
                    if let Some(imp) = feats["importance"].as_array() {
                        println!("  top features:");
                        for i in imp.iter().take(10) {
                            println!(
                                "    {:<30} {:.3}",
                                i[0].as_str().unwrap_or(""),
                                i[1].as_f64().unwrap_or(0.0)
                            );
                        }
                    }
                    println!("  files: {}", files.join(", "));
                }
            }
        }
    }
    Ok(ExitCode::Ok)
}

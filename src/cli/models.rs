//! `panorama models list|show|champions|promote|rollback`: the model registry under
//! `warehouse/models/` and the champion/challenger state of each family.

use crate::cli::{Ctx, ListFormat};
use crate::error::{ExitCode, Result};
use crate::model::champion::{self, ModelRef};
use crate::model::registry;
use crate::warehouse::lock::WarehouseLock;

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
        /// The model's registry name (as `models list` shows it).
        name: String,
        /// The version to show, e.g. v0003 (default: the latest).
        #[arg(long)]
        version: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Champion and challenger of each family, with the history of decisions.
    Champions {
        /// One family (default: all).
        family: Option<String>,
        /// Decisions shown per family.
        #[arg(long, default_value_t = 10)]
        last: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Make a model version the champion of a family (recorded as a manual decision).
    Promote {
        /// The family, as its `decide` job declares it.
        family: String,
        /// The model to promote: one of the family's `models`.
        model: String,
        /// Default: the model's latest version.
        #[arg(long)]
        version: Option<String>,
        /// Why; recorded with the decision.
        #[arg(long)]
        reason: String,
    },
    /// Put the previous champion of a family back (recorded as a manual decision).
    Rollback {
        /// The family whose previous champion comes back.
        family: String,
        /// Why; recorded with the decision.
        #[arg(long)]
        reason: String,
    },
}

fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn print_family(s: &champion::FamilyState, last: usize) {
    println!(
        "{}: champion {}{}",
        s.family,
        s.champion
            .as_ref()
            .map(|c| format!("{} (since {})", c.model, c.since))
            .unwrap_or_else(|| "none".into()),
        s.challenger
            .as_ref()
            .map(|c| format!(", challenger {c}"))
            .unwrap_or_default()
    );
    for d in s.decisions.iter().rev().take(last) {
        let ev = d
            .evidence
            .iter()
            .map(|e| {
                format!(
                    "{} auc {} ks {}{}",
                    e.model,
                    e.holdout
                        .auc
                        .map(|v| format!("{v:.4}"))
                        .unwrap_or("-".into()),
                    e.holdout
                        .ks
                        .map(|v| format!("{v:.4}"))
                        .unwrap_or("-".into()),
                    if e.role == champion::Role::Challenger {
                        format!(" streak {}", e.streak)
                    } else {
                        String::new()
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        println!(
            "  {} {:<14} {:<12} -> {}  {}{}",
            d.dt,
            d.action.as_str(),
            d.by,
            d.champion_after,
            d.reason,
            if ev.is_empty() {
                String::new()
            } else {
                format!(" [{ev}]")
            }
        );
    }
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
        Sub::Champions {
            family,
            last,
            format,
        } => {
            let all: Vec<champion::FamilyState> = match family {
                Some(f) => vec![champion::load(root, &f)?],
                None => champion::list(root),
            };
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string(&all).unwrap_or_default()),
                ListFormat::Table => {
                    if all.is_empty() {
                        eprintln!("no family has a champion yet (a `decide` job records one)");
                    }
                    for s in &all {
                        print_family(s, last);
                    }
                }
            }
        }
        Sub::Promote {
            family,
            model,
            version,
            reason,
        } => {
            // Only one of the family's models (its `decide` job's `models`): another model
            // (a regression, another product's) would be served as the family's PDs.
            // A family no decide job declares would get a state file that no night updates
            // and no score job reads: refuse it.
            let declared = declared_families(&project);
            let Some((_, file, members)) = declared.iter().find(|(f, ..)| *f == family) else {
                return Err(crate::error::Error::config(format!(
                    "no decide job declares the family {family:?}; declared families: {}",
                    if declared.is_empty() {
                        "none (add a `kind = \"decide\"` job under jobs/)".to_string()
                    } else {
                        declared
                            .iter()
                            .map(|(f, ..)| f.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )));
            };
            if !members.contains(&model) {
                return Err(crate::error::Error::config(format!(
                    "{model} is not a model of the family {family} ({file} lists {}): add \
                     it to its `models` first",
                    members.join(", ")
                )));
            }
            let reason = required_reason(reason)?;
            let _lock = WarehouseLock::acquire(root, "panorama models promote")?;
            let dir = registry::version_dir(root, &model, version.as_deref())?;
            let meta = registry::read_meta(&dir)?;
            let mut state = champion::load(root, &family)?;
            let today = chrono::Local::now().date_naive().to_string();
            let d = champion::promote(
                &mut state,
                ModelRef {
                    model: meta.name,
                    version: meta.version,
                },
                &user(),
                &reason,
                &today,
            )?;
            champion::save(root, &state)?;
            println!("{}", serde_json::to_string(&d).unwrap_or_default());
        }
        Sub::Rollback { family, reason } => {
            let reason = required_reason(reason)?;
            let _lock = WarehouseLock::acquire(root, "panorama models rollback")?;
            let mut state = champion::load(root, &family)?;
            if state.champion.is_none() && state.decisions.is_empty() {
                return Err(crate::error::Error::config(format!(
                    "no family {family:?}; families: {}",
                    champion::list(root)
                        .iter()
                        .map(|s| s.family.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let today = chrono::Local::now().date_naive().to_string();
            let d = champion::rollback(&mut state, &user(), &reason, &today)?;
            champion::save(root, &state)?;
            println!("{}", serde_json::to_string(&d).unwrap_or_default());
        }
    }
    Ok(ExitCode::Ok)
}

/// A manual decision's `--reason`, which the history must be able to explain.
fn required_reason(reason: String) -> Result<String> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(crate::error::Error::config(
            "--reason is empty: say why (it is recorded with the decision)",
        ));
    }
    Ok(r.to_string())
}

/// Every family a `decide` job declares (`family`, else the job's name), with the job file
/// and the family's models, sorted by family.
fn declared_families(project: &crate::config::Project) -> Vec<(String, String, Vec<String>)> {
    let mut paths = Vec::new();
    crate::transform::toml_files(&project.root.join("jobs"), &mut paths);
    paths.sort();
    let mut out: Vec<(String, String, Vec<String>)> = paths
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            // Most job files of a large project are of other kinds: skip them without parsing.
            if !text.contains("decide") {
                return None;
            }
            let t: toml::Table = toml::from_str(&text).ok()?;
            let stem = p.file_stem()?.to_string_lossy().to_string();
            let (name, members) = crate::jobkinds::decide::declared_family(&t, &stem)?;
            let rel = p
                .strip_prefix(&project.root)
                .unwrap_or(&p)
                .display()
                .to_string();
            Some((name, rel, members))
        })
        .collect();
    // The first file declaring a family wins, as before.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

//! `panorama tables`: the warehouse catalog.

use crate::cli::{human_bytes, Ctx, ListFormat};
use crate::error::{ExitCode, Result};
use crate::warehouse::{catalog, Layer, Warehouse};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this layer (clean, rejects, feature, score, quality, monitor).
    #[arg(long)]
    pub layer: Option<String>,
    /// Print each table's columns and types.
    #[arg(long)]
    pub schema: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let project = ctx.project()?;
    let layer = match &args.layer {
        None => None,
        Some(l) => Some(Layer::parse(l).ok_or_else(|| {
            crate::Error::config(format!(
                "unknown layer {l:?}; layers: {}",
                Layer::ALL.map(|l| l.as_str()).join(", ")
            ))
        })?),
    };
    let tables: Vec<_> = catalog::list_tables(&Warehouse::new(&project.warehouse_root))
        .into_iter()
        .filter(|t| layer.is_none_or(|l| t.layer == l))
        .collect();
    match args.format {
        ListFormat::Json => {
            let v: Vec<serde_json::Value> = tables
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "table": t.qualified(), "layer": t.layer, "name": t.table,
                        "partitions": t.partitions, "latest": t.latest, "rows": t.rows,
                        "rows_latest": t.rows_latest, "bytes": t.bytes,
                        "schema": t.schema.iter().map(|(n, ty)| serde_json::json!({"name": n, "type": ty})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(v));
        }
        ListFormat::Table => {
            if tables.is_empty() {
                eprintln!("no tables yet in {}", project.warehouse_root.display());
            }
            println!(
                "{:<32} {:>5} {:>12} {:>12} {:>10}  {:<10} columns",
                "table", "parts", "rows", "rows(latest)", "bytes", "latest"
            );
            for t in &tables {
                println!(
                    "{:<32} {:>5} {:>12} {:>12} {:>10}  {:<10} {}",
                    t.qualified(),
                    t.partitions,
                    t.rows,
                    t.rows_latest,
                    human_bytes(t.bytes),
                    t.latest.as_deref().unwrap_or("-"),
                    t.schema.len()
                );
                if args.schema {
                    for (n, ty) in &t.schema {
                        println!("    {n:<30} {ty}");
                    }
                }
            }
        }
    }
    Ok(ExitCode::Ok)
}

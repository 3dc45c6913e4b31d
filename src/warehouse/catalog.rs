//! The catalog: every table of every layer with its committed partitions, rows, bytes and
//! schema, read from `_SUCCESS` markers and Parquet footers (no data pages are read).

use std::path::PathBuf;

use serde::Serialize;

use super::{committed_partitions, read_success, Layer, Warehouse};

#[derive(Debug, Clone, Serialize)]
pub struct TableInfo {
    pub layer: Layer,
    pub table: String,
    pub partitions: usize,
    pub latest: Option<String>,
    pub rows: u64,
    pub rows_latest: u64,
    pub bytes: u64,
    pub schema: Vec<(String, String)>,
    #[serde(skip)]
    pub dir: PathBuf,
}

impl TableInfo {
    /// `layer.table`, the name SQL and the CLI use.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.layer, self.table)
    }
}

/// Lists the tables of the warehouse, by layer then name.
pub fn list_tables(wh: &Warehouse) -> Vec<TableInfo> {
    let mut out = Vec::new();
    for layer in Layer::ALL {
        let dir = wh.root.join(layer.as_str());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with('.') && !n.starts_with('_'))
            .collect();
        names.sort();
        for table in names {
            let tdir = wh.table_dir(layer, &table);
            let parts = committed_partitions(&tdir);
            if parts.is_empty() {
                continue;
            }
            let mut rows = 0;
            let mut bytes = 0;
            let latest_dt = parts.iter().filter_map(|p| dt_of(&tdir, p)).max();
            let mut rows_latest = 0;
            let mut schema = Vec::new();
            for p in &parts {
                if let Some(s) = read_success(p) {
                    rows += s.rows;
                    bytes += s.bytes;
                    if dt_of(&tdir, p) == latest_dt {
                        rows_latest += s.rows;
                        if schema.is_empty() {
                            if let Some(f) = s.files.iter().find(|f| f.ends_with(".parquet")) {
                                schema =
                                    super::parquet::read_schema(&p.join(f)).unwrap_or_default();
                            }
                        }
                    }
                }
            }
            out.push(TableInfo {
                layer,
                table,
                partitions: parts.len(),
                latest: latest_dt,
                rows,
                rows_latest,
                bytes,
                schema,
                dir: tdir,
            });
        }
    }
    out
}

/// The `dt` value of a partition path below a table folder.
pub fn dt_of(table_dir: &std::path::Path, partition: &std::path::Path) -> Option<String> {
    partition
        .strip_prefix(table_dir)
        .ok()?
        .components()
        .next()?
        .as_os_str()
        .to_str()?
        .strip_prefix("dt=")
        .map(str::to_string)
}

//! Reading warehouse tables lazily: committed partitions, partition selection by `dt`, and one
//! polars scan over the chosen part files with the Hive keys (`dt`, `branch`, ...) as columns.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

use super::parse::DtSel;
use crate::error::{Context, Error, Result};
use crate::warehouse::{committed_partitions, read_success, Layer, Warehouse};

/// One committed partition of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub dt: NaiveDate,
    pub dir: PathBuf,
    /// Hive keys after `dt`, in path order.
    pub extra: Vec<(String, String)>,
}

/// Committed partitions of `layer.table`, by date then path. Folders whose `dt` is not a date
/// are skipped.
pub fn partitions(wh: &Warehouse, layer: Layer, table: &str) -> Vec<Partition> {
    let tdir = wh.table_dir(layer, table);
    let mut out: Vec<Partition> = committed_partitions(&tdir)
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&tdir).ok()?;
            let mut dt = None;
            let mut extra = Vec::new();
            for c in rel.components() {
                let s = c.as_os_str().to_str()?;
                let (k, v) = s.split_once('=')?;
                if k == "dt" {
                    dt = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok();
                } else {
                    extra.push((k.to_string(), v.to_string()));
                }
            }
            Some(Partition {
                dt: dt?,
                dir: p.clone(),
                extra,
            })
        })
        .collect();
    out.sort_by(|a, b| a.dt.cmp(&b.dt).then_with(|| a.dir.cmp(&b.dir)));
    out
}

/// The partitions of one instance of a job family: those whose Hive keys agree with
/// `keys` (a partition without one of the keys is kept — the table is not split by it).
pub fn narrow(parts: Vec<Partition>, keys: &[(String, String)]) -> Vec<Partition> {
    if keys.is_empty() {
        return parts;
    }
    parts
        .into_iter()
        .filter(|p| {
            keys.iter().all(|(k, v)| {
                p.extra
                    .iter()
                    .find(|(pk, _)| pk == k)
                    .is_none_or(|(_, pv)| pv == v)
            })
        })
        .collect()
}

/// The partitions a reference reads. `as_of` (a model's run date) hides later partitions;
/// `all` (the `--all-partitions` flag) turns "latest" into "every partition".
pub fn select(
    parts: &[Partition],
    sel: &DtSel,
    as_of: Option<NaiveDate>,
    all: bool,
) -> Vec<Partition> {
    let visible = parts.iter().filter(|p| as_of.is_none_or(|d| p.dt <= d));
    match sel {
        DtSel::Latest if !all => {
            let latest = parts
                .iter()
                .filter(|p| as_of.is_none_or(|d| p.dt <= d))
                .map(|p| p.dt)
                .max();
            visible.filter(|p| Some(p.dt) == latest).cloned().collect()
        }
        DtSel::Latest | DtSel::All => visible.cloned().collect(),
        DtSel::Where(pred) => visible.filter(|p| pred.eval(p.dt)).cloned().collect(),
    }
}

/// The Parquet files of a partition: those its `_SUCCESS` lists, else those in the folder.
pub fn part_files(dir: &Path) -> Vec<PathBuf> {
    if let Some(s) = read_success(dir) {
        let files: Vec<PathBuf> = s
            .files
            .iter()
            .filter(|f| f.ends_with(".parquet"))
            .map(|f| dir.join(f))
            .collect();
        if !files.is_empty() {
            return files;
        }
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// A lazy scan of the partitions, with `dt` (a Date) and the other Hive keys (strings) as
/// columns after the data columns. Partitions whose files disagree on the schema (columns
/// added or dropped over time) are scanned separately and stacked by column name.
pub fn scan(table_dir: &Path, parts: &[Partition]) -> Result<LazyFrame> {
    let base = table_dir.to_string_lossy().to_string();
    // (data schema, files, Hive keys after `dt`) of partitions that can be scanned together.
    type Group = (Vec<(String, String)>, Vec<PathBuf>, Vec<String>);
    let mut groups: Vec<Group> = Vec::new();
    for p in parts {
        let files = part_files(&p.dir);
        let Some(first) = files.first() else {
            continue;
        };
        let schema = crate::warehouse::parquet::read_schema(first)?;
        let keys: Vec<String> = p.extra.iter().map(|(k, _)| k.clone()).collect();
        match groups
            .iter_mut()
            .find(|(s, _, k)| *s == schema && *k == keys)
        {
            Some(g) => g.1.extend(files),
            None => groups.push((schema, files, keys)),
        }
    }
    if groups.is_empty() {
        return Err(Error::Other(format!(
            "{}: no data files in the selected partitions",
            table_dir.display()
        )));
    }
    let mut frames = Vec::with_capacity(groups.len());
    for (data_schema, files, keys) in &groups {
        let mut hive = Schema::default();
        hive.insert("dt".into(), DataType::Date);
        for k in keys {
            hive.insert(k.as_str().into(), DataType::String);
        }
        // A data column named like a partition key wins; the key is then not added.
        let has_dt = data_schema.iter().any(|(n, _)| n == "dt");
        let args = ScanArgsParquet {
            hive_options: HiveOptions {
                enabled: Some(!has_dt),
                hive_start_idx: base.len() + 1,
                // With hive columns off, a hive schema is an error in polars.
                schema: (!has_dt).then(|| Arc::new(hive)),
                try_parse_dates: true,
            },
            glob: false,
            ..Default::default()
        };
        let paths: Vec<PlRefPath> = files
            .iter()
            .map(|f| PlRefPath::new(f.to_string_lossy().as_ref()))
            .collect();
        let mut lf = LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)
            .ctx(|| format!("scanning {}", table_dir.display()))?;
        // Unsigned counts (tables written before counts were BIGINT) read as BIGINT: SQL
        // arithmetic on u32 wraps (`a - b` of 2 and 11 was 4294967287).
        let unsigned: Vec<Expr> = data_schema
            .iter()
            .filter(|(_, t)| matches!(t.as_str(), "UInt8" | "UInt16" | "UInt32"))
            .map(|(n, _)| col(n.as_str()).cast(DataType::Int64))
            .collect();
        if !unsigned.is_empty() {
            lf = lf.with_columns(unsigned);
        }
        frames.push(lf);
    }
    if frames.len() == 1 {
        return Ok(frames.pop().unwrap());
    }
    concat_lf_diagonal(
        frames,
        UnionArgs {
            to_supertypes: true,
            ..Default::default()
        },
    )
    .ctx(|| format!("stacking the partitions of {}", table_dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::parse::{CmpOp, DtPred};
    use crate::warehouse::{PartitionKey, Success};

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn commit(wh: &Warehouse, dt: &str, mut df: DataFrame) {
        let s = wh
            .stage(Layer::Clean, "t", &PartitionKey::date(dt), "r")
            .unwrap();
        crate::warehouse::parquet::write_frame(&s.dir().join("part-00000.parquet"), &mut df, &[])
            .unwrap();
        s.commit(Success {
            rows: df.height() as u64,
            ..Default::default()
        })
        .unwrap();
    }

    #[test]
    fn latest_selection_and_schema_drift() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::new(dir.path());
        commit(&wh, "2026-11-01", df!("a" => [1i64, 2]).unwrap());
        commit(&wh, "2026-11-02", df!("a" => [3i64], "b" => ["x"]).unwrap());
        commit(
            &wh,
            "2026-11-03",
            df!("a" => [4i64, 5, 6], "b" => ["y", "z", "w"]).unwrap(),
        );
        let parts = partitions(&wh, Layer::Clean, "t");
        assert_eq!(parts.len(), 3);
        let latest = select(&parts, &DtSel::Latest, None, false);
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[0].dt, d("2026-11-03"));
        let as_of = select(&parts, &DtSel::Latest, Some(d("2026-11-02")), false);
        assert_eq!(as_of[0].dt, d("2026-11-02"));
        let range = select(
            &parts,
            &DtSel::Where(DtPred::Cmp(CmpOp::Le, d("2026-11-02"))),
            None,
            false,
        );
        assert_eq!(range.len(), 2);

        let df = scan(&wh.table_dir(Layer::Clean, "t"), &parts)
            .unwrap()
            .sort(["a"], Default::default())
            .collect()
            .unwrap();
        assert_eq!(df.height(), 6);
        assert_eq!(df.column("dt").unwrap().dtype(), &DataType::Date);
        assert_eq!(df.column("b").unwrap().null_count(), 2);
        let one = scan(&wh.table_dir(Layer::Clean, "t"), &latest)
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(one.get_column_names(), ["a", "b", "dt"]);
    }

    /// Regression: a table with its own `dt` column could not be scanned ("a hive schema was
    /// given but hive_partitioning was disabled"); its column wins over the partition key.
    #[test]
    fn a_data_column_named_dt_wins() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::new(dir.path());
        commit(
            &wh,
            "2026-11-03",
            df!("dt" => ["own"], "a" => [1i64]).unwrap(),
        );
        let parts = partitions(&wh, Layer::Clean, "t");
        let df = scan(&wh.table_dir(Layer::Clean, "t"), &parts)
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(df.column("dt").unwrap().str().unwrap().get(0), Some("own"));
    }
}

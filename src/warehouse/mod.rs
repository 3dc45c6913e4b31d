//! The warehouse: layout, atomic partition commits, the catalog and the run lock.
//!
//! ```text
//! warehouse/<layer>/<table>/dt=YYYY-MM-DD[/key=value...]/part-00000.parquet + _SUCCESS
//! ```
//! A partition is written into a hidden staging sibling and swapped into place in one
//! `renameat2(RENAME_EXCHANGE)` (or `rename` when new), so readers see the old partition or
//! the new one, never half of either. This layer knows nothing of sources, jobs or models.

pub mod catalog;
pub mod lock;
pub mod parquet;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

pub const SUCCESS_FILE: &str = "_SUCCESS";
const STAGING_PREFIX: &str = ".staging-";

/// The warehouse layers; each is a folder of tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Clean,
    Rejects,
    Feature,
    Score,
    Quality,
    Monitor,
}

impl Layer {
    pub const ALL: [Layer; 6] = [
        Layer::Clean,
        Layer::Rejects,
        Layer::Feature,
        Layer::Score,
        Layer::Quality,
        Layer::Monitor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Clean => "clean",
            Layer::Rejects => "rejects",
            Layer::Feature => "feature",
            Layer::Score => "score",
            Layer::Quality => "quality",
            Layer::Monitor => "monitor",
        }
    }

    pub fn parse(s: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `dt=YYYY-MM-DD` plus optional further Hive keys (`branch=0101`), in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartitionKey {
    pub dt: String,
    pub extra: Vec<(String, String)>,
}

impl PartitionKey {
    pub fn date(dt: &str) -> PartitionKey {
        PartitionKey {
            dt: dt.to_string(),
            extra: Vec::new(),
        }
    }

    /// The partition of a date and a job instance's matrix values (keys after `dt`, in order).
    pub fn instance<'a>(
        date: chrono::NaiveDate,
        vars: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> PartitionKey {
        PartitionKey {
            dt: date.format("%Y-%m-%d").to_string(),
            extra: vars
                .into_iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    pub fn with(mut self, key: &str, value: &str) -> PartitionKey {
        self.extra.push((key.to_string(), value.to_string()));
        self
    }

    /// Relative path: `dt=2024-06-30/branch=0101`.
    pub fn rel_path(&self) -> PathBuf {
        let mut p = PathBuf::from(format!("dt={}", self.dt));
        for (k, v) in &self.extra {
            p.push(format!("{k}={v}"));
        }
        p
    }
}

impl std::fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.rel_path().display())
    }
}

/// The `_SUCCESS` marker: what was committed, by whom, from what.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Success {
    pub rows: u64,
    pub columns: Vec<String>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub bytes: u64,
    /// Rows read from the source (ingest only): rows_read = rows + rows_rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_read: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_rejected: Option<u64>,
    /// BLAKE3 of the source files' bytes, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_checksum: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_files: Vec<String>,
    /// Size and modification time of each source file when it was read: a later night run
    /// compares them with the files on disk to tell that a source was corrected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_stamps: Vec<SourceStamp>,
    #[serde(default)]
    pub job: String,
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub committed_at: String,
    /// Anything else a writer wants to record (schema version, model, ...).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub extra: serde_json::Value,
}

/// A source file as it was read: its path (relative to the project), size and modification
/// time (nanoseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStamp {
    pub path: String,
    pub bytes: u64,
    pub modified_ns: i64,
}

impl SourceStamp {
    /// The stamp of `file` now, named by `path`; None when it cannot be read.
    pub fn of(path: String, file: &Path) -> Option<SourceStamp> {
        let m = std::fs::metadata(file).ok()?;
        let modified = m.modified().ok()?;
        let ns = match modified.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i64,
            Err(e) => -(e.duration().as_nanos() as i64),
        };
        Some(SourceStamp {
            path,
            bytes: m.len(),
            modified_ns: ns,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Warehouse {
    pub root: PathBuf,
}

impl Warehouse {
    pub fn new(root: impl Into<PathBuf>) -> Warehouse {
        Warehouse { root: root.into() }
    }

    pub fn table_dir(&self, layer: Layer, table: &str) -> PathBuf {
        self.root.join(layer.as_str()).join(table)
    }

    pub fn partition_dir(&self, layer: Layer, table: &str, key: &PartitionKey) -> PathBuf {
        self.table_dir(layer, table).join(key.rel_path())
    }

    /// Starts writing a partition into a staging folder; nothing is visible until `commit`.
    /// Leftover staging folders of the same partition (from a killed writer) are removed.
    pub fn stage(
        &self,
        layer: Layer,
        table: &str,
        key: &PartitionKey,
        run_id: &str,
    ) -> Result<Staged> {
        self.stage_at(self.partition_dir(layer, table, key), run_id)
    }

    /// `stage` for a partition folder outside the layers (e.g. `export/score/<table>/dt=D`).
    pub fn stage_at(&self, target: PathBuf, run_id: &str) -> Result<Staged> {
        let parent = target
            .parent()
            .expect("partition has a parent")
            .to_path_buf();
        fs::create_dir_all(&parent).ctx(|| format!("creating {}", parent.display()))?;
        let leaf = target.file_name().unwrap().to_string_lossy().to_string();
        let prefix = format!("{STAGING_PREFIX}{leaf}-");
        if let Ok(entries) = fs::read_dir(&parent) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let staging = parent.join(format!("{prefix}{run_id}-{}", std::process::id()));
        fs::create_dir_all(&staging).ctx(|| format!("creating {}", staging.display()))?;
        Ok(Staged {
            staging,
            target,
            committed: false,
        })
    }

    pub fn read_success(&self, layer: Layer, table: &str, key: &PartitionKey) -> Option<Success> {
        read_success(&self.partition_dir(layer, table, key))
    }

    /// Removes a partition: first moved aside as a staging folder (one rename, so readers see
    /// it whole or not at all), then deleted. Gone already is fine.
    pub fn remove_partition(
        &self,
        layer: Layer,
        table: &str,
        key: &PartitionKey,
        run_id: &str,
    ) -> Result<()> {
        let target = self.partition_dir(layer, table, key);
        let leaf = target.file_name().unwrap().to_string_lossy().to_string();
        let aside = target.with_file_name(format!(
            "{STAGING_PREFIX}{leaf}-{run_id}-{}-removed",
            std::process::id()
        ));
        match fs::rename(&target, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(e).ctx(|| format!("removing {}", target.display()));
            }
        }
        fs::remove_dir_all(&aside).ctx(|| format!("removing {}", aside.display()))
    }
}

pub fn read_success(partition: &Path) -> Option<Success> {
    let text = fs::read_to_string(partition.join(SUCCESS_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// A partition being written. Dropped without `commit`, it removes its staging folder.
#[derive(Debug)]
pub struct Staged {
    staging: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staged {
    pub fn dir(&self) -> &Path {
        &self.staging
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes `df` as the partition's one Parquet file and commits it; `success` gets the rows
    /// and columns filled in. For small frames written whole (monitoring, score tables).
    pub fn commit_frame(
        self,
        df: &mut polars::prelude::DataFrame,
        metadata: &[(String, String)],
        mut success: Success,
    ) -> Result<PathBuf> {
        parquet::write_frame(&self.staging.join("part-0.parquet"), df, metadata)?;
        success.rows = df.height() as u64;
        success.columns = df
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        self.commit(success)
    }

    /// Writes `_SUCCESS` (filling files and bytes) and swaps the partition into place.
    pub fn commit(mut self, mut success: Success) -> Result<PathBuf> {
        let mut files = Vec::new();
        let mut bytes = 0;
        for e in
            fs::read_dir(&self.staging).ctx(|| format!("listing {}", self.staging.display()))?
        {
            let e = e.ctx(|| format!("listing {}", self.staging.display()))?;
            let name = e.file_name().to_string_lossy().to_string();
            if name == SUCCESS_FILE {
                continue;
            }
            let f = fs::File::open(e.path()).ctx(|| format!("opening {}", e.path().display()))?;
            f.sync_all()
                .ctx(|| format!("syncing {}", e.path().display()))?;
            bytes += f.metadata().map(|m| m.len()).unwrap_or(0);
            files.push(name);
        }
        files.sort();
        success.files = files;
        success.bytes = bytes;
        if success.committed_at.is_empty() {
            success.committed_at =
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        }
        let marker = self.staging.join(SUCCESS_FILE);
        let json = serde_json::to_vec_pretty(&success).map_err(|e| Error::Other(e.to_string()))?;
        write_synced(&marker, &json)?;
        swap_into_place(&self.staging, &self.target)?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = fs::File::create(path).ctx(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .ctx(|| format!("writing {}", path.display()))?;
    f.sync_all().ctx(|| format!("syncing {}", path.display()))
}

/// Moves `staging` to `target`. When `target` exists the two are exchanged atomically and the
/// old contents (now at `staging`) deleted; readers never see a missing or half partition.
fn swap_into_place(staging: &Path, target: &Path) -> Result<()> {
    if target.exists() {
        if exchange(staging, target).is_ok() {
            let _ = fs::remove_dir_all(staging);
        } else {
            // Fallback for file systems without RENAME_EXCHANGE: a short window without the
            // partition, never a half one.
            let old = staging.with_extension("old");
            fs::rename(target, &old).ctx(|| format!("moving aside {}", target.display()))?;
            fs::rename(staging, target).ctx(|| format!("committing {}", target.display()))?;
            let _ = fs::remove_dir_all(&old);
        }
    } else {
        fs::rename(staging, target).ctx(|| format!("committing {}", target.display()))?;
    }
    if let Some(parent) = target.parent() {
        if let Ok(d) = fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both paths are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other("RENAME_EXCHANGE not available"))
}

/// Committed partitions of a table (folders holding `_SUCCESS`), sorted by path.
pub fn committed_partitions(table_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect_partitions(table_dir, &mut out);
    out.sort();
    out
}

fn collect_partitions(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || !name.contains('=') || !e.path().is_dir() {
            continue;
        }
        if e.path().join(SUCCESS_FILE).exists() {
            out.push(e.path());
        } else {
            collect_partitions(&e.path(), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_partition_takes_it_whole_and_a_missing_one_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::new(dir.path());
        let key = PartitionKey::date("2024-06-30");
        let s = wh.stage(Layer::Quality, "r", &key, "r1").unwrap();
        fs::write(s.dir().join("part-0.parquet"), b"x").unwrap();
        let target = s.commit(Success::default()).unwrap();
        wh.remove_partition(Layer::Quality, "r", &key, "r2")
            .unwrap();
        assert!(!target.exists());
        let left: Vec<_> = fs::read_dir(target.parent().unwrap()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        wh.remove_partition(Layer::Quality, "r", &key, "r3")
            .unwrap();
    }

    #[test]
    fn commit_replaces_and_abort_leaves_old() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::new(dir.path());
        let key = PartitionKey::date("2024-06-30").with("branch", "0101");
        let s = wh.stage(Layer::Clean, "t", &key, "r1").unwrap();
        fs::write(s.dir().join("part-0.parquet"), b"one").unwrap();
        let target = s
            .commit(Success {
                rows: 1,
                ..Default::default()
            })
            .unwrap();
        assert!(target.ends_with("clean/t/dt=2024-06-30/branch=0101"));
        assert_eq!(wh.read_success(Layer::Clean, "t", &key).unwrap().bytes, 3);

        // An aborted rewrite (dropped staging) leaves the old partition whole.
        {
            let s = wh.stage(Layer::Clean, "t", &key, "r2").unwrap();
            fs::write(s.dir().join("part-0.parquet"), b"half").unwrap();
        }
        assert_eq!(fs::read(target.join("part-0.parquet")).unwrap(), b"one");

        let s = wh.stage(Layer::Clean, "t", &key, "r3").unwrap();
        fs::write(s.dir().join("part-0.parquet"), b"two!").unwrap();
        s.commit(Success {
            rows: 2,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(fs::read(target.join("part-0.parquet")).unwrap(), b"two!");
        assert_eq!(wh.read_success(Layer::Clean, "t", &key).unwrap().rows, 2);
        // No staging leftovers beside the partition.
        let left: Vec<_> = fs::read_dir(target.parent().unwrap())
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(
            committed_partitions(&wh.table_dir(Layer::Clean, "t")).len(),
            1
        );
    }
}

//! Parquet files as the warehouse writes them: zstd, row groups sized for scans, optional
//! key/value metadata (schema versions for score tables).

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::error::{Context, Result};

/// Rows per row group: large enough for fast scans, small enough for bounded writer memory.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;

fn writer(file: File, metadata: &[(String, String)]) -> ParquetWriter<File> {
    let mut w = ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(
            polars_parquet::write::ZstdLevel::try_new(1).ok(),
        ))
        .with_row_group_size(Some(ROW_GROUP_ROWS));
    if !metadata.is_empty() {
        w = w.with_key_value_metadata(Some(KeyValueMetadata::from_static(metadata.to_vec())));
    }
    w
}

/// Writes a whole frame to `path`; returns the file size.
pub fn write_frame(path: &Path, df: &mut DataFrame, metadata: &[(String, String)]) -> Result<u64> {
    let file = File::create(path).ctx(|| format!("creating {}", path.display()))?;
    writer(file, metadata)
        .finish(df)
        .ctx(|| format!("writing {}", path.display()))
}

/// A Parquet file written batch by batch, so that memory stays bounded on large inputs.
pub struct PartWriter {
    inner: polars::io::parquet::write::BatchedWriter<File>,
    path: std::path::PathBuf,
    pub rows: u64,
}

impl PartWriter {
    pub fn create(
        path: &Path,
        schema: &Schema,
        metadata: &[(String, String)],
    ) -> Result<PartWriter> {
        let file = File::create(path).ctx(|| format!("creating {}", path.display()))?;
        let inner = writer(file, metadata)
            .batched(schema)
            .ctx(|| format!("writing {}", path.display()))?;
        Ok(PartWriter {
            inner,
            path: path.to_path_buf(),
            rows: 0,
        })
    }

    pub fn write(&mut self, df: &DataFrame) -> Result<()> {
        self.rows += df.height() as u64;
        self.inner
            .write_batch(df)
            .ctx(|| format!("writing {}", self.path.display()))
    }

    pub fn finish(self) -> Result<u64> {
        self.inner
            .finish()
            .ctx(|| format!("finishing {}", self.path.display()))
    }
}

pub fn read_frame(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).ctx(|| format!("opening {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .ctx(|| format!("reading {}", path.display()))
}

/// Column names and types of a Parquet file, from its footer only.
pub fn read_schema(path: &Path) -> Result<Vec<(String, String)>> {
    let file = File::open(path).ctx(|| format!("opening {}", path.display()))?;
    let mut reader = ParquetReader::new(file);
    let schema = reader
        .schema()
        .ctx(|| format!("reading the footer of {}", path.display()))?;
    Ok(schema
        .iter_values()
        .map(|f| (f.name.to_string(), format!("{:?}", f.dtype)))
        .collect())
}

/// Key/value metadata written into a Parquet footer.
pub fn read_metadata(path: &Path) -> Result<Vec<(String, String)>> {
    let file = File::open(path).ctx(|| format!("opening {}", path.display()))?;
    let mut reader = ParquetReader::new(file);
    let md = reader
        .get_metadata()
        .ctx(|| format!("reading the footer of {}", path.display()))?;
    Ok(md
        .key_value_metadata
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|kv| (kv.key, kv.value.unwrap_or_default()))
        .collect())
}

/// All part files of a committed partition, stacked in file-name order.
pub fn read_partition(dir: &Path) -> Result<DataFrame> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .ctx(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    let mut out: Option<DataFrame> = None;
    for f in files {
        let df = read_frame(&f)?;
        out = Some(match out {
            None => df,
            Some(mut o) => {
                o.vstack_mut(&df)
                    .ctx(|| format!("stacking {}", f.display()))?;
                o
            }
        });
    }
    out.ok_or_else(|| crate::error::Error::input(dir, "no parquet file in the partition"))
}

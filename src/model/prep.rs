//! From a polars frame to model inputs, for data nobody has described: read CSV (separator
//! sniffed, types inferred over the whole file, common missing-value markers) or Parquet,
//! find and check a binary target, drop id-like, constant and almost-empty columns, type the
//! rest as numeric or categorical, and fit per-algorithm preprocessing on the training rows
//! only (winsorising, imputation with missing flags, scaling, target encoding of categories).

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::binning::FeatureKind;
use super::Matrix;
use crate::error::{Context, Error, Result};

/// Reads a CSV or Parquet file (by extension; anything else is tried as CSV).
pub fn read_table(path: &Path) -> Result<DataFrame> {
    if !path.exists() {
        return Err(Error::input(path, "no such file"));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "parquet" || ext == "pq" {
        return crate::warehouse::parquet::read_frame(path);
    }
    let sep = sniff_separator(path)?;
    let nulls: Vec<PlSmallStr> = [
        "", "NA", "N/A", "na", "n/a", "NaN", "nan", "null", "NULL", "None", "?", "#N/A",
    ]
    .iter()
    .map(|s| PlSmallStr::from(*s))
    .collect();
    let opts = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .map_parse_options(move |p| {
            p.with_separator(sep)
                .with_null_values(Some(NullValues::AllColumns(nulls.clone())))
                .with_encoding(CsvEncoding::LossyUtf8)
                .with_truncate_ragged_lines(true)
        });
    let mut df = opts
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .ctx(|| format!("reading {}", path.display()))?;
    // A UTF-8 byte-order mark ends up in the first column's name.
    if let Some(first) = df.get_column_names().first().map(|s| s.to_string()) {
        if let Some(clean) = first.strip_prefix('\u{feff}') {
            let clean = clean.to_string();
            df.rename(&first, clean.into())
                .ctx(|| "renaming the first column".to_string())?;
        }
    }
    Ok(df)
}

/// The most frequent of `,` `;` `\t` `|` on the header line.
fn sniff_separator(path: &Path) -> Result<u8> {
    use std::io::{BufRead, BufReader};
    let f = std::fs::File::open(path).ctx(|| format!("opening {}", path.display()))?;
    let mut line = Vec::new();
    BufReader::new(f)
        .read_until(b'\n', &mut line)
        .ctx(|| format!("reading {}", path.display()))?;
    let count = |c: u8| line.iter().filter(|&&b| b == c).count();
    Ok([b',', b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|&c| (count(c), c == b','))
        .unwrap_or(b','))
}

/// `name` as given when the frame has it, else the one column whose name matches it ignoring
/// case and surrounding spaces (`--target seriousdlqin2yrs` finds `SeriousDlqin2yrs`).
pub fn resolve_column(df: &DataFrame, name: &str) -> String {
    if df.column(name).is_ok() {
        return name.to_string();
    }
    let want = name.trim().to_lowercase();
    let hits: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .filter(|c| c.trim().to_lowercase() == want)
        .collect();
    match hits.as_slice() {
        [one] => one.clone(),
        _ => name.to_string(),
    }
}

/// How the two values of a target were mapped to 1 (event) and 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetMap {
    pub event: String,
    pub non_event: String,
    pub rows_dropped_missing: u64,
}

const EVENT_WORDS: &[&str] = &[
    "1",
    "yes",
    "y",
    "true",
    "t",
    "bad",
    "default",
    "defaulted",
    "positive",
    "pos",
    "fraud",
    "churn",
    "risk",
];
const NON_EVENT_WORDS: &[&str] = &[
    "0", "no", "n", "false", "f", "good", "negative", "neg", "paid", "normal",
];

/// Maps a target column to 0/1 (NaN where the target is missing). Errors name the column and
/// what was found.
pub fn binary_target(df: &DataFrame, name: &str) -> Result<(Vec<f64>, TargetMap)> {
    let name = resolve_column(df, name);
    let name = name.as_str();
    let col = df.column(name).map_err(|_| {
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        Error::config(format!(
            "target column {name:?} not found; columns are: {}",
            names.join(", ")
        ))
    })?;
    let s = col.as_materialized_series();
    let text: Vec<Option<String>> =
        if s.dtype().is_primitive_numeric() || s.dtype() == &DataType::Boolean {
            let f = s
                .cast(&DataType::Float64)
                .ctx(|| format!("target {name}"))?;
            f.f64()
                .unwrap()
                .iter()
                .map(|v| {
                    v.filter(|v| !v.is_nan()).map(|v| {
                        if v.fract() == 0.0 {
                            format!("{}", v as i64)
                        } else {
                            v.to_string()
                        }
                    })
                })
                .collect()
        } else {
            let st = s.cast(&DataType::String).ctx(|| format!("target {name}"))?;
            st.str()
                .unwrap()
                .iter()
                .map(|v| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()))
                .collect()
        };
    let mut counts: Vec<(String, u64)> = Vec::new();
    for v in text.iter().flatten() {
        match counts.iter_mut().find(|(k, _)| k == v) {
            Some((_, c)) => *c += 1,
            None => {
                if counts.len() > 20 {
                    break;
                }
                counts.push((v.clone(), 1))
            }
        }
    }
    if counts.len() != 2 {
        let shown: Vec<String> = counts
            .iter()
            .take(10)
            .map(|(k, c)| format!("{k:?} ({c})"))
            .collect();
        return Err(Error::config(format!(
            "target {name:?} must be binary (two distinct values), found {}{}: {}",
            if counts.len() > 20 {
                "more than 20"
            } else {
                ""
            },
            if counts.len() > 20 {
                String::new()
            } else {
                counts.len().to_string()
            },
            if shown.is_empty() {
                "no values".into()
            } else {
                shown.join(", ")
            }
        )));
    }
    let lower = |s: &str| s.to_ascii_lowercase();
    let (a, b) = (counts[0].0.clone(), counts[1].0.clone());
    let numeric = a.parse::<f64>().is_ok() && b.parse::<f64>().is_ok();
    let is_event = |s: &str| EVENT_WORDS.contains(&lower(s).as_str());
    let is_non_event = |s: &str| NON_EVENT_WORDS.contains(&lower(s).as_str());
    let event = if numeric {
        // 0/1: 1 is the event; other codes (1 = good, 2 = bad): the larger one.
        if a.parse::<f64>().unwrap() > b.parse::<f64>().unwrap() {
            a.clone()
        } else {
            b.clone()
        }
    } else if (is_event(&a) && !is_event(&b)) || (is_non_event(&b) && !is_non_event(&a)) {
        a.clone()
    } else if (is_event(&b) && !is_event(&a)) || (is_non_event(&a) && !is_non_event(&b)) {
        b.clone()
    } else if counts[0].1 <= counts[1].1 {
        // Two arbitrary labels: the rarer one is the event.
        a.clone()
    } else {
        b.clone()
    };
    let non_event = if event == a { b } else { a };
    let y: Vec<f64> = text
        .iter()
        .map(|v| match v {
            None => f64::NAN,
            Some(v) if *v == event => 1.0,
            Some(_) => 0.0,
        })
        .collect();
    let dropped = y.iter().filter(|v| v.is_nan()).count() as u64;
    Ok((
        y,
        TargetMap {
            event,
            non_event,
            rows_dropped_missing: dropped,
        },
    ))
}

/// A column left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedColumn {
    pub column: String,
    pub reason: String,
}

/// Features as a matrix: numeric values (NaN missing) and category codes.
#[derive(Debug, Clone)]
pub struct Features {
    pub x: Matrix,
    pub names: Vec<String>,
    pub kinds: Vec<FeatureKind>,
    pub dropped: Vec<DroppedColumn>,
}

fn id_like_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let n = n.trim();
    n == "id"
        || n == "index"
        || n == "key"
        || n == "uuid"
        || n == "guid"
        || n.is_empty()
        || n.starts_with("unnamed")
        || n.ends_with("_id")
        || n.ends_with(" id")
        || n.ends_with("-id")
        || n.starts_with("id_")
        || (n.ends_with("id")
            && !n.ends_with("paid")
            && !n.ends_with("aid")
            && !n.ends_with("void")
            && n.len() <= 12)
        || n.ends_with("_no")
        || n.ends_with("number") && !n.contains("num_of") && n.contains("account")
        || n.starts_with("sk_id")
        || n == "row"
        || n.starts_with("rownum")
        || n == "customer"
        || n == "cust_no"
}

/// Numeric view of a column: None when it is text that does not read as numbers.
fn numeric_values(s: &Series) -> Option<Vec<f64>> {
    match s.dtype() {
        DataType::Boolean => Some(
            s.bool()
                .unwrap()
                .iter()
                .map(|v| v.map_or(f64::NAN, |b| if b { 1.0 } else { 0.0 }))
                .collect(),
        ),
        d if d.is_primitive_numeric() => {
            let f = s.cast(&DataType::Float64).ok()?;
            Some(
                f.f64()
                    .unwrap()
                    .iter()
                    .map(|v| v.filter(|v| v.is_finite()).unwrap_or(f64::NAN))
                    .collect(),
            )
        }
        DataType::Date | DataType::Datetime(_, _) | DataType::Duration(_) | DataType::Time => {
            let f = s.to_physical_repr().cast(&DataType::Float64).ok()?;
            Some(
                f.f64()
                    .unwrap()
                    .iter()
                    .map(|v| v.unwrap_or(f64::NAN))
                    .collect(),
            )
        }
        DataType::String => {
            // Numbers written with thousands separators, currency or percent signs.
            let st = s.str().unwrap();
            let mut out = Vec::with_capacity(st.len());
            let (mut ok, mut seen) = (0usize, 0usize);
            for v in st.iter() {
                match v {
                    None => out.push(f64::NAN),
                    Some(t) => {
                        seen += 1;
                        let c: String = t
                            .trim()
                            .chars()
                            .filter(|c| !matches!(c, ',' | '$' | '%' | '€' | '£' | '¥' | ' ' | '_'))
                            .collect();
                        match c.parse::<f64>() {
                            Ok(v) if v.is_finite() => {
                                ok += 1;
                                out.push(v)
                            }
                            _ => out.push(f64::NAN),
                        }
                    }
                }
            }
            (seen > 0 && ok as f64 >= 0.98 * seen as f64).then_some(out)
        }
        _ => None,
    }
}

/// Types the columns of `df` except `exclude`, dropping id-like, constant and empty ones.
/// `categorical` forces columns to be categorical; `numeric` forces numeric.
pub fn features_from_frame(
    df: &DataFrame,
    exclude: &[&str],
    only: Option<&[String]>,
    force_categorical: &[String],
) -> Result<Features> {
    let n = df.height();
    let mut cols: Vec<Vec<f64>> = Vec::new();
    let mut names = Vec::new();
    let mut kinds = Vec::new();
    let mut dropped = Vec::new();
    for c in df.columns() {
        let name = c.name().to_string();
        if exclude.contains(&name.as_str()) {
            continue;
        }
        if let Some(only) = only {
            if !only.contains(&name) {
                continue;
            }
        }
        let s = c.as_materialized_series();
        let nulls = s.null_count();
        let mut drop = |reason: String| {
            dropped.push(DroppedColumn {
                column: name.clone(),
                reason,
            })
        };
        if n > 0 && nulls as f64 >= 0.99 * n as f64 {
            drop(format!("{:.1}% missing", 100.0 * nulls as f64 / n as f64));
            continue;
        }
        let non_null = n - nulls;
        // Distinct non-null values (hashing is the slow part on big frames: only when needed).
        let distinct = || s.n_unique().unwrap_or(0) - usize::from(nulls > 0);
        let forced_cat = force_categorical.contains(&name);
        let numeric = if forced_cat { None } else { numeric_values(s) };
        let explicit = only.is_some();
        match numeric {
            Some(v) => {
                let (lo, hi) = v
                    .iter()
                    .filter(|x| !x.is_nan())
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |a, &x| {
                        (a.0.min(x), a.1.max(x))
                    });
                if !(lo < hi) {
                    drop("constant".into());
                    continue;
                }
                let integral = v.iter().all(|x| x.is_nan() || x.fract() == 0.0);
                let distinct = if integral && !explicit { distinct() } else { 0 };
                let all_unique = distinct == non_null && non_null > 50;
                let monotonic = v
                    .windows(2)
                    .all(|w| w[0].is_nan() || w[1].is_nan() || w[1] > w[0]);
                if !explicit
                    && integral
                    && ((all_unique && (monotonic || id_like_name(&name)))
                        || (id_like_name(&name)
                            && distinct as f64 >= 0.5 * non_null as f64
                            && non_null > 50))
                {
                    drop("id-like (unique integers)".into());
                    continue;
                }
                cols.push(v);
                names.push(name.clone());
                kinds.push(FeatureKind::Numeric);
            }
            None => {
                let distinct = distinct();
                if distinct <= 1 {
                    drop("constant".into());
                    continue;
                }
                let st = match s.cast(&DataType::String) {
                    Ok(st) => st,
                    Err(_) => {
                        drop(format!("unsupported type {}", s.dtype()));
                        continue;
                    }
                };
                if !explicit
                    && !forced_cat
                    && non_null > 50
                    && distinct as f64 >= 0.9 * non_null as f64
                {
                    drop(format!(
                        "id-like ({distinct} distinct values in {non_null} rows)"
                    ));
                    continue;
                }
                if !explicit
                    && !forced_cat
                    && id_like_name(&name)
                    && distinct as f64 >= 0.5 * non_null as f64
                {
                    drop("id-like name and mostly distinct values".into());
                    continue;
                }
                // Levels by descending frequency (ties by name) so codes are reproducible.
                let mut freq: HashMap<&str, u64> = HashMap::new();
                let ca = st.str().unwrap();
                for v in ca.iter().flatten() {
                    *freq.entry(v).or_default() += 1;
                }
                let mut levels: Vec<(&str, u64)> = freq.into_iter().collect();
                levels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                let code: HashMap<&str, usize> = levels
                    .iter()
                    .enumerate()
                    .map(|(i, (s, _))| (*s, i))
                    .collect();
                cols.push(
                    ca.iter()
                        .map(|v| v.map_or(f64::NAN, |v| code[v] as f64))
                        .collect(),
                );
                names.push(name.clone());
                kinds.push(FeatureKind::Categorical {
                    levels: levels.iter().map(|(s, _)| s.to_string()).collect(),
                });
            }
        }
    }
    if cols.is_empty() {
        return Err(Error::config(format!(
            "no usable feature columns{}",
            if dropped.is_empty() {
                String::new()
            } else {
                format!(
                    " (dropped: {})",
                    dropped
                        .iter()
                        .map(|d| format!("{}: {}", d.column, d.reason))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        )));
    }
    Ok(Features {
        x: Matrix::from_columns(&cols),
        names,
        kinds,
        dropped,
    })
}

/// Re-encodes a frame's columns with the levels learnt at training time (unseen categories get
/// a code past the known levels; missing columns are an error).
pub fn encode_like(df: &DataFrame, names: &[String], kinds: &[FeatureKind]) -> Result<Matrix> {
    use rayon::prelude::*;
    // Columns in parallel (each a cast and one pass), then one blocked transpose.
    let cols: Vec<Vec<f64>> = names
        .par_iter()
        .zip(kinds.par_iter())
        .map(|(name, kind)| -> Result<Vec<f64>> {
            let c = df.column(name).map_err(|_| {
                Error::config(format!("input has no column {name:?} that the model needs"))
            })?;
            let s = c.as_materialized_series();
            match kind {
                FeatureKind::Numeric => numeric_values(s)
                    .ok_or_else(|| Error::config(format!("column {name:?} is not numeric"))),
                FeatureKind::Categorical { levels } => {
                    let code: HashMap<&str, usize> = levels
                        .iter()
                        .enumerate()
                        .map(|(i, s)| (s.as_str(), i))
                        .collect();
                    let st = s.cast(&DataType::String).ctx(|| format!("column {name}"))?;
                    Ok(st
                        .str()
                        .unwrap()
                        .iter()
                        .map(|v| {
                            v.map_or(f64::NAN, |v| {
                                code.get(v).copied().unwrap_or(levels.len()) as f64
                            })
                        })
                        .collect())
                }
            }
        })
        .collect::<Result<_>>()?;
    Ok(Matrix::from_columns(&cols))
}

/// How inputs are prepared for an algorithm family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrepMode {
    /// Winsorise, impute the median with a missing flag, target-encode categories, standardise:
    /// for logistic and linear regression, kNN and clustering.
    Scaled,
    /// Keep values (NaN stays missing); categories become their rank by event rate: for trees.
    Trees,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnPrep {
    Numeric {
        lo: f64,
        hi: f64,
        #[serde(with = "crate::model::nan_as_null")]
        median: f64,
        flag_missing: bool,
    },
    /// Value of each level code (past the end: unseen or rare categories get `other`).
    Categorical {
        values: Vec<f64>,
        other: f64,
        /// NaN (JSON null) for trees: missing values stay missing.
        #[serde(deserialize_with = "super::binning::nan_if_null")]
        missing: f64,
    },
}

/// Per-column preparation fitted on training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    pub mode: PrepMode,
    pub columns: Vec<ColumnPrep>,
    /// Names of the output columns.
    pub output_names: Vec<String>,
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

/// Linearly interpolated quantile (numpy's default) by selection, O(n); reorders `v`.
fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let (_, a, right) = v.select_nth_unstable_by(lo, |x, y| x.total_cmp(y));
    let a = *a;
    let b = if pos > lo as f64 {
        right.iter().copied().fold(f64::INFINITY, f64::min)
    } else {
        a
    };
    a + (b - a) * (pos - lo as f64)
}

/// Lower and upper clip bounds, median, and whether values are missing.
type NumericStats = (f64, f64, f64, bool);

/// The quantiles of [`NumericStats`]: clip bounds, then the median.
const STAT_QUANTILES: [f64; 3] = [0.005, 0.995, 0.5];

/// Clip bounds, median and "has missing" of a numeric column.
fn numeric_stats(col: &[f64], mode: PrepMode) -> NumericStats {
    let mut v: Vec<f64> = col.iter().copied().filter(|v| !v.is_nan()).collect();
    let flag = v.len() < col.len();
    if mode == PrepMode::Trees {
        return (0.0, 0.0, 0.0, flag);
    }
    let lo = quantile(&mut v, STAT_QUANTILES[0]);
    let hi = quantile(&mut v, STAT_QUANTILES[1]);
    let median = quantile(&mut v, STAT_QUANTILES[2]);
    (lo, hi, median, flag)
}

/// From this many rows, numeric statistics come from one pass over the row-major matrix
/// ([`numeric_stats_pass`]) instead of a copy of every column.
const STATS_PASS_ROWS: usize = 50_000;

/// Rows of the strided sample that places the quantile brackets of [`numeric_stats_pass`].
const STATS_SAMPLE_ROWS: usize = 20_000;

/// [`numeric_stats`] of the columns `numeric` of a row-major matrix, exactly, in one parallel
/// pass over the rows and without copying the columns out: an evenly strided sample of
/// `sample_rows` rows places, for each quantile, a bracket `[lo, hi]` of values that holds it
/// with overwhelming probability; the pass counts each column's missing values, the values
/// below each bracket and those equal to either end, and keeps those strictly inside it (a
/// few percent of the rows, however many ties the column has), among which the quantile is
/// selected. The rare column whose bracket missed falls back to the copy.
///
/// Equal values are told apart only by the sign of zero, which `quantile`'s interpolation
/// between its two order statistics never shows (it adds a non-zero or a `+0` term).
fn numeric_stats_pass(x: &Matrix, numeric: &[usize], sample_rows: usize) -> Vec<NumericStats> {
    use rayon::prelude::*;
    const Q: usize = STAT_QUANTILES.len();
    let (n, p) = (x.rows, x.cols);
    if numeric.is_empty() || n == 0 {
        return numeric.iter().map(|_| (0.0, 0.0, 0.0, false)).collect();
    }
    let stride = (n / sample_rows.max(1)).max(1);
    let sample = x.select_rows(&(0..n).step_by(stride).collect::<Vec<_>>());
    // Inclusive brackets of values per column and quantile. Compared as floats (free of
    // branches, NaN on no side): -0 and +0 are on the same side of any bound, so the values
    // below a bracket still precede, in `total_cmp` order, those inside it.
    let brackets: Vec<[(f64, f64); Q]> = numeric
        .par_iter()
        .map(|&j| {
            let mut s: Vec<f64> = (0..sample.rows)
                .map(|i| sample.get(i, j))
                .filter(|v| !v.is_nan())
                .collect();
            s.sort_unstable_by(|a, b| a.total_cmp(b));
            let m = s.len();
            STAT_QUANTILES.map(|q| {
                if m == 0 {
                    return (f64::NEG_INFINITY, f64::INFINITY);
                }
                // The sample rank of the quantile has a standard deviation of about
                // sqrt(m q (1 - q)): a margin of 6 of them (and a few ranks) around it.
                let pos = q * (m - 1) as f64;
                let d = 6.0 * (m as f64 * q * (1.0 - q)).sqrt() + 4.0;
                let lo = (pos - d).floor();
                let hi = (pos + d).ceil() + 1.0;
                (
                    if lo < 0.0 {
                        f64::NEG_INFINITY
                    } else {
                        s[lo as usize]
                    },
                    if hi >= m as f64 {
                        f64::INFINITY
                    } else {
                        s[hi as usize]
                    },
                )
            })
        })
        .collect();
    struct Part {
        missing: Vec<usize>,
        /// Per column and bracket: values below `lo`, equal to `lo`, equal to `hi`.
        counts: Vec<[[usize; 3]; Q]>,
        /// Per column and bracket: the values strictly between `lo` and `hi`.
        inside: Vec<[Vec<f64>; Q]>,
    }
    let k = numeric.len();
    let empty = || Part {
        missing: vec![0; k],
        counts: vec![[[0; 3]; Q]; k],
        inside: (0..k)
            .map(|_| std::array::from_fn(|_| Vec::new()))
            .collect(),
    };
    let parts: Vec<Part> = x
        .data
        .par_chunks(p.max(1) * 8192)
        .map(|chunk| {
            let mut part = empty();
            // Column by column over a few rows at a time (in cache), without branches on
            // the values (a value is below the median's bracket at random): counts that
            // vectorise, and the values inside a bracket kept by a branch-free compaction.
            const SUB: usize = 256;
            let (mut vals, mut kept) = ([0.0f64; SUB], [0.0f64; SUB]);
            for rows in chunk.chunks(p * SUB) {
                let len = rows.len() / p;
                for (c, &j) in numeric.iter().enumerate() {
                    for (v, row) in vals.iter_mut().zip(rows.chunks_exact(p)) {
                        *v = row[j];
                    }
                    let vals = &vals[..len];
                    part.missing[c] += vals.iter().filter(|v| v.is_nan()).count();
                    for (q, &(lo, hi)) in brackets[c].iter().enumerate() {
                        let [mut below, mut at_lo, mut at_hi] = [0usize; 3];
                        for &v in vals {
                            below += usize::from(v < lo);
                            at_lo += usize::from(v == lo);
                            at_hi += usize::from(v == hi);
                        }
                        let counts = &mut part.counts[c][q];
                        counts[0] += below;
                        counts[1] += at_lo;
                        counts[2] += at_hi;
                        let mut n = 0;
                        for &v in vals {
                            kept[n] = v;
                            n += usize::from((v > lo) & (v < hi));
                        }
                        part.inside[c][q].extend_from_slice(&kept[..n]);
                    }
                }
            }
            part
        })
        .collect();
    let mut all = empty();
    for part in parts {
        for c in 0..k {
            all.missing[c] += part.missing[c];
            for q in 0..Q {
                for e in 0..3 {
                    all.counts[c][q][e] += part.counts[c][q][e];
                }
                all.inside[c][q].extend_from_slice(&part.inside[c][q]);
            }
        }
    }
    numeric
        .par_iter()
        .zip(all.inside.par_iter_mut())
        .enumerate()
        .map(|(c, (&j, inside))| {
            let present = n - all.missing[c];
            let flag = all.missing[c] > 0;
            if present == 0 {
                return (0.0, 0.0, 0.0, flag);
            }
            let mut out = [0.0; Q];
            for q in 0..Q {
                // `quantile` over the column's present values: the order statistics `rank`
                // and (when interpolating) `rank + 1`, from the bracket, which holds, in
                // order, `at_lo` values equal to `lo`, those strictly inside and `at_hi`
                // equal to `hi` (none apart when `lo == hi`).
                let (lo, hi) = brackets[c][q];
                let [below, at_lo, at_hi] = all.counts[c][q];
                let at_hi = if lo == hi { 0 } else { at_hi };
                let strict = &mut inside[q];
                let pos = STAT_QUANTILES[q] * (present - 1) as f64;
                let rank = pos.floor() as usize;
                let interpolate = pos > rank as f64;
                let last = rank + usize::from(interpolate);
                if rank < below || last >= below + at_lo + strict.len() + at_hi {
                    return numeric_stats(&x.column(j), PrepMode::Scaled);
                }
                let r = rank - below;
                let (a, b) = if r < at_lo {
                    // `rank + 1` is `lo` again, the smallest strictly inside, or `hi`.
                    let next = if r + 1 < at_lo {
                        lo
                    } else if !strict.is_empty() {
                        strict.iter().copied().fold(f64::INFINITY, f64::min)
                    } else {
                        hi
                    };
                    (lo, next)
                } else if r < at_lo + strict.len() {
                    let (_, a, right) =
                        strict.select_nth_unstable_by(r - at_lo, |x, y| x.total_cmp(y));
                    let next = if right.is_empty() {
                        hi
                    } else {
                        right.iter().copied().fold(f64::INFINITY, f64::min)
                    };
                    (*a, next)
                } else {
                    (hi, hi)
                };
                let b = if interpolate { b } else { a };
                out[q] = a + (b - a) * (pos - rank as f64);
            }
            (out[0], out[1], out[2], flag)
        })
        .collect()
}

/// [`numeric_stats`] of every numeric column of `x` (None for the others).
fn all_numeric_stats(
    x: &Matrix,
    kinds: &[FeatureKind],
    mode: PrepMode,
) -> Vec<Option<NumericStats>> {
    use rayon::prelude::*;
    let numeric: Vec<usize> = (0..x.cols)
        .filter(|&j| matches!(kinds[j], FeatureKind::Numeric))
        .collect();
    let stats: Vec<NumericStats> = if mode == PrepMode::Trees {
        // Only whether each column has missing values.
        let missing = x
            .data
            .par_chunks(x.cols.max(1) * 8192)
            .map(|chunk| {
                let mut m = vec![false; numeric.len()];
                for row in chunk.chunks_exact(x.cols) {
                    for (c, &j) in numeric.iter().enumerate() {
                        m[c] |= row[j].is_nan();
                    }
                }
                m
            })
            .reduce(
                || vec![false; numeric.len()],
                |a, b| a.iter().zip(&b).map(|(a, b)| *a || *b).collect(),
            );
        missing.into_iter().map(|m| (0.0, 0.0, 0.0, m)).collect()
    } else if x.rows >= STATS_PASS_ROWS {
        numeric_stats_pass(x, &numeric, STATS_SAMPLE_ROWS)
    } else {
        numeric
            .par_iter()
            .map(|&j| numeric_stats(&x.column(j), mode))
            .collect()
    };
    let mut out = vec![None; x.cols];
    for (&j, s) in numeric.iter().zip(stats) {
        out[j] = Some(s);
    }
    out
}

/// Rows per chunk of the preparation passes; the sums behind the scaling are taken per chunk
/// and reduced in order, so the result does not depend on the number of threads.
const PREP_ROWS: usize = 4096;

impl Preprocessor {
    /// Fits on training rows. `y` (0/1 or continuous) drives the category encodings; with
    /// `None` categories are coded by frequency rank.
    pub fn fit(
        x: &Matrix,
        y: Option<&[f64]>,
        names: &[String],
        kinds: &[FeatureKind],
        mode: PrepMode,
    ) -> Preprocessor {
        let n = x.rows as f64;
        let ybar = y.map_or(0.0, |y| y.iter().sum::<f64>() / n);
        let mut columns = Vec::new();
        let mut output_names = Vec::new();
        let stats = all_numeric_stats(x, kinds, mode);
        for (j, kind) in kinds.iter().enumerate() {
            match kind {
                FeatureKind::Numeric => {
                    let (lo, hi, median, flag) = stats[j].unwrap();
                    columns.push(ColumnPrep::Numeric {
                        lo,
                        hi,
                        median,
                        flag_missing: flag && mode == PrepMode::Scaled,
                    });
                    output_names.push(names[j].clone());
                    if flag && mode == PrepMode::Scaled {
                        output_names.push(format!("{}_missing", names[j]));
                    }
                }
                FeatureKind::Categorical { levels } => {
                    let col = x.column(j);
                    // Smoothed mean target per level (m-estimate, m = 20); levels seen fewer
                    // than 10 times share `other`.
                    let k = levels.len();
                    let (mut sum, mut cnt) = (vec![0.0; k + 1], vec![0.0; k + 1]);
                    let (mut msum, mut mcnt) = (0.0, 0.0);
                    for (i, v) in col.iter().enumerate() {
                        let t = y.map_or(0.0, |y| y[i]);
                        if v.is_nan() {
                            msum += t;
                            mcnt += 1.0;
                        } else {
                            let c = (*v as usize).min(k);
                            sum[c] += t;
                            cnt[c] += 1.0;
                        }
                    }
                    let m = 20.0;
                    let enc = |s: f64, c: f64| (s + m * ybar) / (c + m);
                    let (mut osum, mut ocnt) = (sum[k], cnt[k]);
                    for c in 0..k {
                        if cnt[c] < 10.0 {
                            osum += sum[c];
                            ocnt += cnt[c];
                        }
                    }
                    let other = if y.is_some() {
                        enc(osum, ocnt)
                    } else {
                        k as f64
                    };
                    let mut values: Vec<f64> = (0..k)
                        .map(|c| match y {
                            Some(_) if cnt[c] >= 10.0 => enc(sum[c], cnt[c]),
                            Some(_) => other,
                            None => c as f64,
                        })
                        .collect();
                    let mut missing = if y.is_some() {
                        enc(msum, mcnt)
                    } else {
                        f64::NAN
                    };
                    let mut other = other;
                    if mode == PrepMode::Trees && y.is_some() {
                        // Ranks of the encoded values: trees need only the order.
                        let mut all: Vec<f64> = values.clone();
                        all.push(other);
                        all.sort_by(|a, b| a.total_cmp(b));
                        all.dedup();
                        let rank = |v: f64| all.partition_point(|&a| a < v) as f64;
                        values = values.iter().map(|&v| rank(v)).collect();
                        other = rank(other);
                        missing = f64::NAN;
                    } else if mode == PrepMode::Scaled && missing.is_nan() {
                        missing = ybar;
                    }
                    columns.push(ColumnPrep::Categorical {
                        values,
                        other,
                        missing,
                    });
                    output_names.push(names[j].clone());
                }
            }
        }
        let mut p = Preprocessor {
            mode,
            columns,
            output_names,
            mean: Vec::new(),
            scale: Vec::new(),
        };
        if mode != PrepMode::Scaled {
            return p;
        }
        use rayon::prelude::*;
        let cols = p.output_names.len();
        // The scaling statistics in one pass that prepares the values without keeping them
        // (`transform` writes them, standardised, in one more): sums per chunk of rows,
        // reduced in order, each row's values added in column order, as a pass over the
        // prepared matrix would.
        let parts: Vec<(Vec<f64>, Vec<f64>)> = (0..x.rows.div_ceil(PREP_ROWS))
            .into_par_iter()
            .map(|c| {
                let mut mean = vec![0.0; cols];
                let mut sq = vec![0.0; cols];
                let mut row = vec![0.0; cols];
                for i in c * PREP_ROWS..((c + 1) * PREP_ROWS).min(x.rows) {
                    let mut k = 0;
                    p.prepare_row(x.row(i), |v| {
                        row[k] = v;
                        k += 1;
                    });
                    for ((m, s), v) in mean.iter_mut().zip(sq.iter_mut()).zip(&row) {
                        *m += v;
                        *s += v * v;
                    }
                }
                (mean, sq)
            })
            .collect();
        let mut mean = vec![0.0; cols];
        let mut sq = vec![0.0; cols];
        for (pm, ps) in parts {
            mean.iter_mut().zip(&pm).for_each(|(a, b)| *a += b);
            sq.iter_mut().zip(&ps).for_each(|(a, b)| *a += b);
        }
        p.mean = mean.iter().map(|m| m / n).collect();
        p.scale = sq
            .iter()
            .zip(&p.mean)
            .map(|(s, m)| {
                let sd = (s / n - m * m).max(0.0).sqrt();
                if sd > 1e-12 {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        p
    }

    /// The prepared values, before standardisation, of one raw row, in output column order.
    #[inline(always)]
    fn prepare_row(&self, row: &[f64], mut put: impl FnMut(f64)) {
        for (j, c) in self.columns.iter().enumerate() {
            let v = row[j];
            match c {
                ColumnPrep::Numeric {
                    lo,
                    hi,
                    median,
                    flag_missing,
                } => match self.mode {
                    PrepMode::Scaled => {
                        put(if v.is_nan() {
                            *median
                        } else {
                            v.clamp(*lo, *hi)
                        });
                        if *flag_missing {
                            put(if v.is_nan() { 1.0 } else { 0.0 });
                        }
                    }
                    PrepMode::Trees => put(v),
                },
                ColumnPrep::Categorical {
                    values,
                    other,
                    missing,
                } => put(if v.is_nan() {
                    *missing
                } else {
                    values.get(v as usize).copied().unwrap_or(*other)
                }),
            }
        }
    }

    /// The model inputs of raw feature rows: one parallel pass, each value prepared and, in
    /// scaled mode, standardised as it is written.
    pub fn transform(&self, x: &Matrix) -> Matrix {
        self.transform_into(x, Vec::new())
    }

    /// [`Preprocessor::transform`] into the allocation of `buf` (its values are dropped) when it
    /// is large enough: memory already touched costs no page fault (on a fresh buffer of a few
    /// hundred MB, those take longer than the transform itself).
    pub fn transform_into(&self, x: &Matrix, buf: Vec<f64>) -> Matrix {
        let cols = self.output_names.len();
        if cols == 0 {
            return Matrix::zeros(x.rows, 0);
        }
        let scaled = self.mode == PrepMode::Scaled;
        if scaled {
            assert!(
                self.mean.len() == cols && self.scale.len() == cols,
                "scaling width"
            );
        }
        let write = |row: &mut Vec<f64>, first: usize, out: &mut [MaybeUninit<f64>]| {
            for (r, orow) in out.chunks_exact_mut(cols).enumerate() {
                let mut k = 0;
                self.prepare_row(x.row(first + r), |v| {
                    row[k] = v;
                    k += 1;
                });
                assert_eq!(k, cols, "prepared row width");
                if scaled {
                    let scaling = self.mean.iter().zip(&self.scale);
                    for ((o, v), (m, s)) in orow.iter_mut().zip(row.iter()).zip(scaling) {
                        o.write((v - m) / s);
                    }
                } else {
                    orow.write_copy_of_slice(row);
                }
            }
        };
        // SAFETY: `out` holds whole rows of `cols` values, and `write` writes the `cols`
        // values of each (the assertions stop it otherwise: a row of `cols` prepared values,
        // and as many scaling terms).
        unsafe { Matrix::build(x.rows, cols, PREP_ROWS, buf, || vec![0.0; cols], write) }.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_map_to_events() {
        let df = df!(
            "a" => ["yes", "no", "no", "yes"],
            "b" => [1i64, 2, 2, 1],
            "c" => ["good", "bad", "good", "good"],
            "d" => ["x", "y", "z", "x"],
            "e" => ["A", "B", "B", "B"]
        )
        .unwrap();
        let (y, m) = binary_target(&df, "a").unwrap();
        assert_eq!(y, vec![1.0, 0.0, 0.0, 1.0]);
        assert_eq!(m.event, "yes");
        assert_eq!(binary_target(&df, "b").unwrap().0, vec![0.0, 1.0, 1.0, 0.0]);
        assert_eq!(binary_target(&df, "c").unwrap().1.event, "bad");
        assert_eq!(binary_target(&df, "e").unwrap().1.event, "A");
        let e = binary_target(&df, "d").unwrap_err().to_string();
        assert!(e.contains("binary") && e.contains("\"z\""), "{e}");
        assert!(binary_target(&df, "nope")
            .unwrap_err()
            .to_string()
            .contains("columns are"));
    }

    #[test]
    fn id_columns_and_constants_are_dropped() {
        let n = 100;
        let df = df!(
            "ID" => (0..n as i64).collect::<Vec<_>>(),
            "name" => (0..n).map(|i| format!("person {i}")).collect::<Vec<_>>(),
            "const" => vec![1.0; n],
            "amount" => (0..n).map(|i| ((i * 37) % 11) as f64).collect::<Vec<_>>(),
            "money" => (0..n).map(|i| format!("${},000", i % 7)).collect::<Vec<_>>(),
            "grade" => (0..n).map(|i| ["A", "B", "C"][i % 3]).collect::<Vec<_>>()
        )
        .unwrap();
        let f = features_from_frame(&df, &[], None, &[]).unwrap();
        assert_eq!(f.names, vec!["amount", "money", "grade"]);
        assert_eq!(f.x.get(3, 1), 3000.0);
        let dropped: Vec<&str> = f.dropped.iter().map(|d| d.column.as_str()).collect();
        assert_eq!(dropped, vec!["ID", "name", "const"]);
    }

    #[test]
    fn stats_pass_equals_column_copies() {
        use crate::model::rng::Rng;
        let mut rng = Rng::new(11);
        let n = 30_000;
        let cols: Vec<Vec<f64>> = vec![
            (0..n).map(|_| rng.normal()).collect(),
            // Missing values, ties and a heavy tail.
            (0..n)
                .map(|i| match i % 7 {
                    0 => f64::NAN,
                    1 | 2 => 3.0,
                    _ => rng.normal().exp() * 1e3,
                })
                .collect(),
            // Two values; zeros of both signs.
            (0..n).map(|i| [0.0, -0.0, 1.0][i % 3]).collect(),
            // Two levels half and half (the median between them), a few levels of different
            // weights, and a heavy level with a continuous tail.
            (0..n).map(|i| (i % 2) as f64).collect(),
            (0..n)
                .map(|i| [0.0, 0.0, 0.0, 1.0, 1.0, 2.0][i % 6])
                .collect(),
            (0..n)
                .map(|i| {
                    if i % 5 < 3 {
                        7.0
                    } else {
                        7.0 + rng.normal().abs()
                    }
                })
                .collect(),
            // The strided sample of 1,000 rows (every 30th) sees only the large values: its
            // brackets miss, and the column falls back to the copy.
            (0..n)
                .map(|i| {
                    if i % 30 == 0 {
                        1e6 + i as f64
                    } else {
                        i as f64
                    }
                })
                .collect(),
            vec![f64::NAN; n],
            vec![5.0; n],
            (0..n)
                .map(|i| if i < 10 { i as f64 } else { f64::NAN })
                .collect(),
        ];
        let x = Matrix::from_columns(&cols);
        let numeric: Vec<usize> = (0..cols.len()).collect();
        // Wide brackets from a large sample, narrow ones from a tiny sample (some miss and
        // fall back to the copy): always the same statistics.
        for sample in [20_000, 1_000, 10] {
            let pass = numeric_stats_pass(&x, &numeric, sample);
            for (j, c) in cols.iter().enumerate() {
                let (a, b) = (pass[j], numeric_stats(c, PrepMode::Scaled));
                assert_eq!(
                    (a.0.to_bits(), a.1.to_bits(), a.2.to_bits(), a.3),
                    (b.0.to_bits(), b.1.to_bits(), b.2.to_bits(), b.3),
                    "column {j}, sample {sample}"
                );
            }
        }
    }

    #[test]
    fn scaling_and_transform_match_a_prepared_matrix() {
        // The scaling statistics (summed while preparing, never materialised) and the fused
        // transform match, bit for bit, the prepared matrix summed in chunks of rows and then
        // standardised value by value.
        use crate::model::rng::Rng;
        let mut rng = Rng::new(5);
        let n = 60_000;
        let a: Vec<f64> = (0..n)
            .map(|i| if i % 11 == 0 { f64::NAN } else { rng.normal() })
            .collect();
        let b: Vec<f64> = (0..n).map(|_| rng.normal() * 100.0 + 7.0).collect();
        let c: Vec<f64> = (0..n)
            .map(|i| {
                if i % 13 == 0 {
                    f64::NAN
                } else {
                    (i % 4) as f64
                }
            })
            .collect();
        let y: Vec<f64> = (0..n).map(|i| (i % 9 == 0) as u8 as f64).collect();
        let x = Matrix::from_columns(&[a, b, c]);
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let kinds = vec![
            FeatureKind::Numeric,
            FeatureKind::Numeric,
            FeatureKind::Categorical {
                levels: (0..4).map(|l| l.to_string()).collect(),
            },
        ];
        for mode in [PrepMode::Scaled, PrepMode::Trees] {
            let p = Preprocessor::fit(&x, Some(&y), &names, &kinds, mode);
            let cols = p.output_names.len();
            let mut prepared = Vec::new();
            for i in 0..n {
                p.prepare_row(x.row(i), |v| prepared.push(v));
            }
            assert_eq!(prepared.len(), n * cols);
            let mut expected = prepared.clone();
            if mode == PrepMode::Scaled {
                assert_eq!(cols, 4, "a, its missing flag, b, c");
                let (mut mean, mut sq) = (vec![0.0; cols], vec![0.0; cols]);
                for chunk in prepared.chunks(cols * PREP_ROWS) {
                    let (mut m, mut s) = (vec![0.0; cols], vec![0.0; cols]);
                    for row in chunk.chunks(cols) {
                        for (j, v) in row.iter().enumerate() {
                            m[j] += v;
                            s[j] += v * v;
                        }
                    }
                    (0..cols).for_each(|j| (mean[j], sq[j]) = (mean[j] + m[j], sq[j] + s[j]));
                }
                let mean: Vec<f64> = mean.iter().map(|m| m / n as f64).collect();
                let sd: Vec<f64> = (0..cols)
                    .map(|j| (sq[j] / n as f64 - mean[j] * mean[j]).max(0.0).sqrt())
                    .collect();
                assert_eq!(p.mean, mean);
                assert_eq!(p.scale, sd);
                for row in expected.chunks_mut(cols) {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = (*v - mean[j]) / sd[j];
                    }
                }
            }
            let t = p.transform(&x);
            assert_eq!((t.rows, t.cols), (n, cols));
            assert!(t
                .data
                .iter()
                .zip(&expected)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn scaled_prep_winsorises_imputes_and_flags() {
        let mut col: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        col[5] = 1e12;
        col[7] = f64::NAN;
        let x = Matrix::from_columns(&[col]);
        let p = Preprocessor::fit(
            &x,
            None,
            &["v".into()],
            &[FeatureKind::Numeric],
            PrepMode::Scaled,
        );
        assert_eq!(p.output_names, vec!["v", "v_missing"]);
        let t = p.transform(&x);
        // The outlier is clipped to the 99.5th percentile: within a few sd, not 1e12.
        assert!(t.data.iter().all(|v| v.is_finite() && v.abs() < 40.0));
        assert!(t.get(5, 0) < 2.0);
    }
}

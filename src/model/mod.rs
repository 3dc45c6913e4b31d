//! Credit models: algorithms behind one trait, metrics, scorecards, registry.
//!
//! Everything here works on plain row-major `f64` buffers ([`Matrix`]) where `NaN` means
//! missing; turning a polars frame into such a buffer is [`prep`]'s job. Each algorithm has a
//! `*Params` builder checked by `validate()` before fit, and fit returns a separate fitted type
//! that serialises with serde. Results are deterministic for a given seed.
//!
//! This module knows nothing of the CLI or the scheduler.

// Numeric kernels index several parallel buffers at once; `!(x > 0.0)` deliberately rejects NaN.
#![allow(clippy::needless_range_loop, clippy::neg_cmp_op_on_partial_ord)]

pub mod binning;
pub mod champion;
pub mod cluster;
pub mod decomp;
pub mod gbdt;
pub mod knn;
pub mod linalg;
pub mod linear;
pub mod logistic;
pub mod metrics;
pub mod pipeline;
pub mod prep;
pub mod registry;
pub mod rng;
pub mod scorecard;
pub mod tree;

use serde::{Deserialize, Serialize};

/// A dense row-major matrix; `NaN` marks a missing value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Matrix {
        assert_eq!(rows * cols, data.len(), "matrix shape");
        Matrix { rows, cols, data }
    }

    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix::new(rows, cols, vec![0.0; rows * cols])
    }

    /// From rows of equal length.
    pub fn from_rows(rows: &[Vec<f64>]) -> Matrix {
        let cols = rows.first().map_or(0, |r| r.len());
        let mut data = Vec::with_capacity(rows.len() * cols);
        for r in rows {
            assert_eq!(r.len(), cols, "ragged rows");
            data.extend_from_slice(r);
        }
        Matrix::new(rows.len(), cols, data)
    }

    /// From columns of equal length.
    pub fn from_columns(cols: &[Vec<f64>]) -> Matrix {
        use rayon::prelude::*;
        let n = cols.first().map_or(0, |c| c.len());
        let p = cols.len();
        for c in cols {
            assert_eq!(c.len(), n, "ragged columns");
        }
        let mut data = vec![0.0; n * p];
        if p > 0 {
            // Blocks of rows in parallel; within a block, column by column (cache-friendly
            // reads, writes within a few pages).
            const BLOCK: usize = 1024;
            data.par_chunks_mut(BLOCK * p)
                .enumerate()
                .for_each(|(b, out)| {
                    let start = b * BLOCK;
                    let rows = out.len() / p;
                    for (j, c) in cols.iter().enumerate() {
                        for (k, v) in c[start..start + rows].iter().enumerate() {
                            out[k * p + j] = *v;
                        }
                    }
                });
        }
        Matrix::new(n, p, data)
    }

    #[inline]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    #[inline]
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    pub fn column(&self, j: usize) -> Vec<f64> {
        (0..self.rows).map(|i| self.get(i, j)).collect()
    }

    /// Every column, in one parallel pass over the data (cheaper than `column` per column on
    /// big row-major buffers, where each call strides through all of memory).
    pub fn columns(&self) -> Vec<Vec<f64>> {
        use rayon::prelude::*;
        let (n, p) = (self.rows, self.cols);
        if n == 0 || p == 0 {
            return vec![Vec::new(); p];
        }
        let mut out: Vec<Vec<f64>> = (0..p).map(|_| Vec::with_capacity(n)).collect();
        // Blocks of rows in parallel: block b writes the b-th piece of every column (never
        // zero-filled first: see `build`).
        const BLOCK: usize = 4096;
        {
            let mut pieces: Vec<Vec<&mut [std::mem::MaybeUninit<f64>]>> = (0..n.div_ceil(BLOCK))
                .map(|_| Vec::with_capacity(p))
                .collect();
            for col in out.iter_mut() {
                for (b, piece) in col.spare_capacity_mut()[..n].chunks_mut(BLOCK).enumerate() {
                    pieces[b].push(piece);
                }
            }
            pieces
                .into_par_iter()
                .zip(self.data.par_chunks(BLOCK * p))
                .for_each(|(mut cols, rows)| {
                    for (r, row) in rows.chunks_exact(p).enumerate() {
                        for (c, v) in cols.iter_mut().zip(row) {
                            c[r].write(*v);
                        }
                    }
                });
        }
        for col in out.iter_mut() {
            // SAFETY: the pieces cover `0..n` of every column (`n` rows in blocks of `BLOCK`,
            // the same blocks as the rows read), and each row wrote its element of each piece.
            unsafe { col.set_len(n) };
        }
        out
    }

    /// The matrix whose blocks of `block` rows (`cols > 0`) `write(state, first_row, out)`
    /// initialises, in parallel, with a `state` from `init` per rayon job; the results of
    /// `write` in block order. It takes the allocation of `data` (whose values are dropped)
    /// when that is large enough. The matrix is never zero-filled first, and each fresh page of
    /// it is first touched by the thread that fills it: for a few hundred MB, a zero fill (by
    /// one thread, page faults included) costs more than the work.
    ///
    /// # Safety
    ///
    /// `write` must initialise every element of `out`.
    unsafe fn build<S, R, I, F>(
        rows: usize,
        cols: usize,
        block: usize,
        mut data: Vec<f64>,
        init: I,
        write: F,
    ) -> (Matrix, Vec<R>)
    where
        R: Send,
        I: Fn() -> S + Sync + Send,
        F: Fn(&mut S, usize, &mut [std::mem::MaybeUninit<f64>]) -> R + Sync + Send,
    {
        use rayon::prelude::*;
        let len = rows * cols;
        data.clear();
        if data.capacity() < len {
            data = Vec::with_capacity(len);
        }
        let results = data.spare_capacity_mut()[..len]
            .par_chunks_mut(block * cols)
            .enumerate()
            .map_init(init, |state, (b, out)| write(state, b * block, out))
            .collect();
        // SAFETY: the chunks cover `0..len` and `write` initialised each (the caller's promise).
        unsafe { data.set_len(len) };
        (Matrix::new(rows, cols, data), results)
    }

    /// The rows at `idx`, in that order (copied in parallel).
    pub fn select_rows(&self, idx: &[usize]) -> Matrix {
        let p = self.cols;
        if p == 0 {
            return Matrix::new(idx.len(), 0, Vec::new());
        }
        let write = |_: &mut (), first: usize, out: &mut [std::mem::MaybeUninit<f64>]| {
            for (o, &i) in out.chunks_exact_mut(p).zip(&idx[first..]) {
                o.write_copy_of_slice(self.row(i));
            }
        };
        // SAFETY: `out` holds whole rows (`p > 0` values each) for the rows of `idx` from
        // `first`, and `idx` has one for each: every row of `out` is copied into.
        unsafe { Matrix::build(idx.len(), p, 4096, Vec::new(), || (), write) }.0
    }

    pub fn has_missing(&self) -> bool {
        self.data.iter().any(|v| v.is_nan())
    }
}

/// Why a fit or a prediction could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A hyperparameter out of range: names the parameter, the value and what is allowed.
    #[error("parameter `{name}` = {value}: {allowed}")]
    InvalidParam {
        name: &'static str,
        value: String,
        allowed: String,
    },
    /// Inputs that do not fit together or cannot be learnt from.
    #[error("{0}")]
    Data(String),
    /// The data has missing values and the algorithm cannot take them.
    #[error("{algo} cannot take missing values (column {column}); impute them first")]
    Missing { algo: &'static str, column: usize },
}

pub type ModelResult<T> = std::result::Result<T, ModelError>;

impl From<ModelError> for crate::Error {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::InvalidParam { .. } => crate::Error::Config(e.to_string()),
            _ => crate::Error::Other(e.to_string()),
        }
    }
}

pub(crate) fn invalid(
    name: &'static str,
    value: impl std::fmt::Display,
    allowed: &str,
) -> ModelError {
    ModelError::InvalidParam {
        name,
        value: value.to_string(),
        allowed: allowed.to_string(),
    }
}

/// Checks the shapes shared by every supervised fit.
pub(crate) fn check_xy(x: &Matrix, y: &[f64], weights: Option<&[f64]>) -> ModelResult<()> {
    if x.rows == 0 || x.cols == 0 {
        return Err(ModelError::Data(format!(
            "no data to fit: {} rows x {} columns",
            x.rows, x.cols
        )));
    }
    if y.len() != x.rows {
        return Err(ModelError::Data(format!(
            "{} rows of features but {} targets",
            x.rows,
            y.len()
        )));
    }
    if let Some(w) = weights {
        if w.len() != x.rows {
            return Err(ModelError::Data(format!(
                "{} rows but {} weights",
                x.rows,
                w.len()
            )));
        }
    }
    if y.iter().any(|v| !v.is_finite()) {
        return Err(ModelError::Data(
            "the target has missing or infinite values".into(),
        ));
    }
    Ok(())
}

pub(crate) fn check_binary(y: &[f64]) -> ModelResult<()> {
    let pos = y.iter().filter(|&&v| v == 1.0).count();
    let neg = y.iter().filter(|&&v| v == 0.0).count();
    if pos + neg != y.len() {
        return Err(ModelError::Data("a binary target must be 0 or 1".into()));
    }
    if pos == 0 || neg == 0 {
        return Err(ModelError::Data(format!(
            "the target has one class only ({pos} positives, {neg} negatives)"
        )));
    }
    Ok(())
}

pub(crate) fn check_no_missing(algo: &'static str, x: &Matrix) -> ModelResult<()> {
    use rayon::prelude::*;
    // Large blocks in parallel (a per-element parallel search costs far more than the test).
    const BLOCK: usize = 1 << 16;
    let bad = |v: &f64| !v.is_finite();
    let first = x
        .data
        .par_chunks(BLOCK)
        .position_first(|c| c.iter().any(bad))
        .map(|b| b * BLOCK + x.data[b * BLOCK..].iter().position(bad).unwrap_or(0));
    if let Some(pos) = first {
        return Err(ModelError::Missing {
            algo,
            column: pos % x.cols,
        });
    }
    Ok(())
}

/// A fitted supervised model: one trait for every algorithm.
pub trait Predictor {
    /// Probability of the positive class for classifiers, the prediction for regressors.
    fn predict(&self, x: &Matrix) -> Vec<f64>;
    /// Number of input columns the model expects.
    fn n_features(&self) -> usize;
    /// Importance of each input column (non-negative; larger matters more), if the model has one.
    fn importance(&self) -> Option<Vec<f64>> {
        None
    }
}

/// A fitted transform (PCA, ICA): maps rows to new columns.
pub trait Transform {
    fn transform(&self, x: &Matrix) -> Matrix;
}

/// Every fitted model the registry can hold, serialised with its kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "algo", rename_all = "snake_case")]
pub enum FittedModel {
    Logistic(logistic::LogisticModel),
    Linear(linear::LinearModel),
    Tree(tree::TreeModel),
    Gbdt(gbdt::GbdtModel),
    Knn(knn::KnnModel),
    Scorecard(scorecard::Scorecard),
    Kmeans(cluster::KMeansModel),
    Dbscan(cluster::DbscanModel),
    Pca(decomp::PcaModel),
    Ica(decomp::IcaModel),
}

impl FittedModel {
    pub fn algo(&self) -> &'static str {
        match self {
            FittedModel::Logistic(_) => "logistic",
            FittedModel::Linear(_) => "linear",
            FittedModel::Tree(_) => "tree",
            FittedModel::Gbdt(_) => "gbdt",
            FittedModel::Knn(_) => "knn",
            FittedModel::Scorecard(_) => "scorecard",
            FittedModel::Kmeans(_) => "kmeans",
            FittedModel::Dbscan(_) => "dbscan",
            FittedModel::Pca(_) => "pca",
            FittedModel::Ica(_) => "ica",
        }
    }
}

/// JSON has no NaN: a missing value stored in a model (e.g. the code of missing categories
/// for trees) is written as null and read back as NaN, so that a saved model reloads.
pub mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_none()
        } else {
            s.serialize_f64(*v)
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

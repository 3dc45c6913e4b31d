//! One training run, shared by `panorama train` and the `train` job kind: a frame, a target,
//! a split, an algorithm with its hyperparameters; out come the fitted pipeline (preparation +
//! model, serialisable) and its evaluation on the train and test rows.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::binning::FeatureKind;
use super::cluster::{DbscanParams, KMeansParams};
use super::decomp::{IcaParams, PcaParams};
use super::gbdt::{GbdtParams, Objective};
use super::knn::KnnParams;
use super::linear::LinearParams;
use super::logistic::LogisticParams;
use super::metrics::{self, BinaryMetrics, RegressionMetrics};
use super::prep::{self, DroppedColumn, PrepMode, Preprocessor, TargetMap};
use super::scorecard::ScorecardParams;
use super::tree::{TreeParams, TreeTask};
use super::{FittedModel, Matrix, Predictor, Transform};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algo {
    Scorecard,
    Logistic,
    Tree,
    Gbdt,
    Knn,
    /// Linear (ridge) regression on a continuous target.
    Linear,
    TreeRegressor,
    GbdtRegressor,
    Kmeans,
    Dbscan,
    Pca,
    Ica,
}

impl Algo {
    pub const ALL: [Algo; 12] = [
        Algo::Scorecard,
        Algo::Logistic,
        Algo::Tree,
        Algo::Gbdt,
        Algo::Knn,
        Algo::Linear,
        Algo::TreeRegressor,
        Algo::GbdtRegressor,
        Algo::Kmeans,
        Algo::Dbscan,
        Algo::Pca,
        Algo::Ica,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algo::Scorecard => "scorecard",
            Algo::Logistic => "logistic",
            Algo::Tree => "tree",
            Algo::Gbdt => "gbdt",
            Algo::Knn => "knn",
            Algo::Linear => "linear",
            Algo::TreeRegressor => "tree_regressor",
            Algo::GbdtRegressor => "gbdt_regressor",
            Algo::Kmeans => "kmeans",
            Algo::Dbscan => "dbscan",
            Algo::Pca => "pca",
            Algo::Ica => "ica",
        }
    }

    pub fn parse(s: &str) -> Option<Algo> {
        Algo::ALL.into_iter().find(|a| a.name() == s)
    }

    pub fn names() -> String {
        Algo::ALL.map(|a| a.name()).join(", ")
    }

    pub fn task(self) -> Task {
        match self {
            Algo::Scorecard | Algo::Logistic | Algo::Tree | Algo::Gbdt | Algo::Knn => Task::Binary,
            Algo::Linear | Algo::TreeRegressor | Algo::GbdtRegressor => Task::Regression,
            _ => Task::Unsupervised,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Binary,
    Regression,
    Unsupervised,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Split {
    /// Random, stratified by the target for classifiers.
    Stratified { test_size: f64 },
    /// Rows whose `column` sorts before `cutoff` train, the rest test.
    OutOfTime { column: String, cutoff: String },
    /// A hold-out fixed by a hash of `column` (an id): the same entity is on the same side
    /// every night and for every model, so a champion trained last week never saw tonight's
    /// hold-out. With `oot_column`, labelled rows in the last `oot_days` days (before the
    /// latest labelled date) form the out-of-time sample: neither trained on nor in the test.
    Hash {
        column: String,
        test_size: f64,
        #[serde(default)]
        oot_column: Option<String>,
        #[serde(default)]
        oot_days: Option<u32>,
    },
}

/// The salt of the hold-out hash: changing it would move every entity between train and test.
const HOLDOUT_SALT: &str = "panorama-holdout-v1";

/// Rows of a hash split: train, hold-out (test) and out-of-time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HoldoutRows {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
    pub oot: Vec<usize>,
}

/// Days since 1970 of a date-like column (Date, Datetime or ISO text).
fn date_days(df: &DataFrame, column: &str) -> Result<Vec<Option<i32>>> {
    let c = df
        .column(column)
        .map_err(|_| Error::config(format!("out-of-time column {column:?} not found")))?;
    let s = c.as_materialized_series();
    let err = |e: PolarsError| {
        Error::config(format!(
            "out-of-time column {column:?} ({}) is not a date: {e}",
            s.dtype()
        ))
    };
    let d = match s.dtype() {
        DataType::String => s
            .str()
            .map_err(err)?
            .as_date(None, false)
            .map_err(err)?
            .into_series(),
        _ => s.cast(&DataType::Date).map_err(err)?,
    };
    let d = d.cast(&DataType::Int32).map_err(err)?;
    Ok(d.i32().map_err(err)?.iter().collect())
}

/// Splits `rows` (those with a target) by a hash of `column` and, optionally, an out-of-time
/// window on `oot_column`. Shared by training and by the champion/challenger evaluation so
/// that both see the same hold-out.
pub fn holdout_rows(
    df: &DataFrame,
    rows: &[usize],
    column: &str,
    test_size: f64,
    oot: Option<(&str, u32)>,
) -> Result<HoldoutRows> {
    if !(test_size > 0.0 && test_size < 1.0) {
        return Err(Error::config(format!(
            "test_size = {test_size}: must be in (0, 1)"
        )));
    }
    let ids = df
        .column(column)
        .map_err(|_| Error::config(format!("hash split: no column {column:?}")))?
        .as_materialized_series()
        .cast(&DataType::String)
        .map_err(|e| Error::config(format!("hash split on {column:?}: {e}")))?;
    let ids = ids.str().expect("cast to string").clone();
    let (days, cutoff) = match oot {
        Some((c, n)) => {
            let d = date_days(df, c)?;
            let last = rows.iter().filter_map(|&i| d[i]).max();
            let cut = last.map(|l| l - n as i32);
            (d, cut)
        }
        None => (Vec::new(), None),
    };
    let mut out = HoldoutRows::default();
    for &i in rows {
        if let Some(cut) = cutoff {
            match days[i] {
                Some(d) if d > cut => {
                    out.oot.push(i);
                    continue;
                }
                None => continue,
                _ => {}
            }
        }
        match ids.get(i) {
            Some(v) if super::rng::hash_unit(HOLDOUT_SALT, v) < test_size => out.test.push(i),
            Some(_) => out.train.push(i),
            None => {}
        }
    }
    Ok(out)
}

/// What to do with missing feature values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// Let the algorithm handle them: own bin (scorecard), learnt direction (trees), median
    /// plus a missing flag (linear models, kNN, clustering).
    #[default]
    Keep,
    /// Leave out rows with any missing feature.
    DropRows,
    /// Replace them by 0.
    Zero,
}

impl MissingPolicy {
    pub const NAMES: &'static str = "keep, drop_rows, zero";

    pub fn parse(s: &str) -> Option<MissingPolicy> {
        Some(match s {
            "keep" => MissingPolicy::Keep,
            "drop_rows" => MissingPolicy::DropRows,
            "zero" => MissingPolicy::Zero,
            _ => return None,
        })
    }
}

/// Everything a training run needs besides the data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSpec {
    pub algo: Algo,
    /// Hyperparameters as a JSON object, checked against the algorithm's parameters.
    pub params: serde_json::Value,
    pub target: Option<String>,
    /// Use only these columns (None: all but the target, `exclude` and id-like columns).
    pub features: Option<Vec<String>>,
    pub exclude: Vec<String>,
    pub categorical: Vec<String>,
    pub split: Split,
    pub seed: u64,
    #[serde(default)]
    pub missing: MissingPolicy,
}

/// A fitted pipeline: how to turn a frame into the model's inputs, and the model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainedModel {
    pub algo: Algo,
    pub target: Option<String>,
    pub target_map: Option<TargetMap>,
    pub input_names: Vec<String>,
    pub input_kinds: Vec<FeatureKind>,
    pub prep: Option<Preprocessor>,
    pub model: FittedModel,
}

impl TrainedModel {
    /// Model inputs from raw feature values (in `input_names` order).
    pub fn prepare(&self, x: &Matrix) -> Matrix {
        match &self.prep {
            Some(p) => p.transform(x),
            None => x.clone(),
        }
    }

    /// Predictions for raw feature values: probabilities for classifiers, values for
    /// regressors, cluster labels for clusterers (first output column for transforms).
    pub fn predict(&self, x: &Matrix) -> Vec<f64> {
        let z = self.prepare(x);
        match &self.model {
            FittedModel::Logistic(m) => m.predict(&z),
            FittedModel::Linear(m) => m.predict(&z),
            FittedModel::Tree(m) => m.predict(&z),
            FittedModel::Gbdt(m) => m.predict(&z),
            FittedModel::Knn(m) => m.predict(&z),
            FittedModel::Scorecard(m) => m.predict(&z),
            FittedModel::Kmeans(m) => m.predict(&z).into_iter().map(|v| v as f64).collect(),
            FittedModel::Dbscan(m) => m.predict(&z).into_iter().map(|v| v as f64).collect(),
            FittedModel::Pca(m) => m.transform(&z).column(0),
            FittedModel::Ica(m) => m.transform(&z).column(0),
        }
    }

    pub fn predict_frame(&self, df: &DataFrame) -> Result<Vec<f64>> {
        let x = prep::encode_like(df, &self.input_names, &self.input_kinds)?;
        Ok(self.predict(&x))
    }

    /// Names of the model's input columns after preparation.
    pub fn model_input_names(&self) -> Vec<String> {
        match &self.prep {
            Some(p) => p.output_names.clone(),
            None => self.input_names.clone(),
        }
    }
}

/// Evaluation of a binary classifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BinaryEval {
    pub train: BinaryMetrics,
    pub test: BinaryMetrics,
    /// PSI of the predicted probability, test against train.
    pub score_psi: f64,
    /// PSI of each raw input, test against train.
    pub feature_psi: Vec<(String, f64)>,
    /// Test-set labels and predictions, for the report's curves.
    #[serde(skip)]
    pub test_y: Vec<f64>,
    #[serde(skip)]
    pub test_p: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Evaluation {
    Binary(Box<BinaryEval>),
    Regression {
        train: RegressionMetrics,
        test: RegressionMetrics,
        #[serde(skip)]
        test_y: Vec<f64>,
        #[serde(skip)]
        test_p: Vec<f64>,
    },
    Unsupervised {
        summary: serde_json::Value,
    },
}

/// The result of a training run.
pub struct TrainOutcome {
    pub trained: TrainedModel,
    pub eval: Evaluation,
    /// (model input name, importance), largest first.
    pub importance: Vec<(String, f64)>,
    pub dropped_columns: Vec<DroppedColumn>,
    pub rows_train: usize,
    pub rows_test: usize,
    /// blake3 of the training matrix and target.
    pub fingerprint: String,
    pub fit_seconds: f64,
    /// Distributions of the prediction and of each raw input on the training rows, kept with
    /// the model for monitoring (PSI against the nightly population). None for clusterers.
    pub baseline: Option<Baseline>,
}

/// What the training population looked like, frozen with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub rows: usize,
    /// The prediction: probability of the event for classifiers, the value for regressors.
    pub prediction: metrics::Distribution,
    /// Raw inputs, in `input_names` order.
    pub features: Vec<(String, metrics::Distribution)>,
}

impl Baseline {
    /// From the raw input columns of the `rows` training rows.
    fn of(columns: &[Vec<f64>], rows: usize, names: &[String], prediction: &[f64]) -> Baseline {
        use rayon::prelude::*;
        let features = columns
            .par_iter()
            .zip(names.par_iter())
            .map(|(c, n)| (n.clone(), metrics::Distribution::of(c, 10)))
            .collect();
        Baseline {
            rows,
            prediction: metrics::Distribution::of(prediction, 10),
            features,
        }
    }
}

fn params<T: serde::de::DeserializeOwned + Default>(
    v: &serde_json::Value,
    algo: Algo,
) -> Result<T> {
    if v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(T::default());
    }
    serde_json::from_value(v.clone())
        .map_err(|e| Error::config(format!("bad parameters for algorithm {}: {e}", algo.name())))
}

fn has_key(v: &serde_json::Value, k: &str) -> bool {
    v.as_object().is_some_and(|o| o.contains_key(k))
}

/// Checks the hyperparameters of a spec without data (for job-file validation).
pub fn check_params(algo: Algo, v: &serde_json::Value) -> Result<()> {
    let r: std::result::Result<(), super::ModelError> = match algo {
        Algo::Scorecard => params::<ScorecardParams>(v, algo)?.validate(),
        Algo::Logistic => params::<LogisticParams>(v, algo)?.validate(),
        Algo::Tree | Algo::TreeRegressor => params::<TreeParams>(v, algo)?.validate(),
        Algo::Gbdt | Algo::GbdtRegressor => params::<GbdtParams>(v, algo)?.validate(),
        Algo::Knn => params::<KnnParams>(v, algo)?.validate(),
        Algo::Linear => params::<LinearParams>(v, algo)?.validate(),
        Algo::Kmeans => params::<KMeansParams>(v, algo)?.validate(),
        Algo::Dbscan => params::<DbscanParams>(v, algo)?.validate(),
        Algo::Pca => params::<PcaParams>(v, algo).map(|_| Ok(()))?,
        Algo::Ica => params::<IcaParams>(v, algo).map(|_| Ok(()))?,
    };
    r.map_err(|e| Error::config(format!("algorithm {}: {e}", algo.name())))
}

fn fingerprint(x: &Matrix, y: &[f64]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(&(x.rows as u64).to_le_bytes());
    h.update(&(x.cols as u64).to_le_bytes());
    // The little-endian bytes of every value, fed in large pieces (the hash of a byte stream
    // does not depend on how it is cut).
    let mut buf = Vec::with_capacity(8 * 8192);
    for part in x.data.chunks(8192).chain(y.chunks(8192)) {
        buf.clear();
        for v in part {
            buf.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        h.update(&buf);
    }
    h.finalize().to_hex()[..16].to_string()
}

fn split_rows(
    df: &DataFrame,
    y: &[f64],
    rows: &[usize],
    spec: &TrainSpec,
    stratify: bool,
) -> Result<(Vec<usize>, Vec<usize>)> {
    match &spec.split {
        Split::Stratified { test_size } => {
            if !(*test_size > 0.0 && *test_size < 1.0) {
                return Err(Error::config(format!(
                    "test_size = {test_size}: must be in (0, 1)"
                )));
            }
            let ys: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
            let (a, b) = if stratify {
                super::rng::stratified_split(&ys, *test_size, spec.seed)
            } else {
                super::rng::random_split(ys.len(), *test_size, spec.seed)
            };
            Ok((
                a.into_iter().map(|k| rows[k]).collect(),
                b.into_iter().map(|k| rows[k]).collect(),
            ))
        }
        Split::OutOfTime { column, cutoff } => {
            let c = df
                .column(column)
                .map_err(|_| Error::config(format!("out-of-time split: no column {column:?}")))?;
            let s = c.as_materialized_series();
            let err =
                |e: PolarsError| Error::config(format!("out-of-time split on {column:?}: {e}"));
            // Numbers compare as numbers when the cutoff is one; anything else as text
            // (ISO dates sort correctly).
            let before: Vec<Option<bool>> = match cutoff.parse::<f64>() {
                Ok(cut) if s.dtype().is_primitive_numeric() => {
                    let f = s.cast(&DataType::Float64).map_err(err)?;
                    f.f64()
                        .unwrap()
                        .iter()
                        .map(|v| v.map(|v| v < cut))
                        .collect()
                }
                _ => {
                    let st = s.cast(&DataType::String).map_err(err)?;
                    st.str()
                        .unwrap()
                        .iter()
                        .map(|v| v.map(|v| v < cutoff.as_str()))
                        .collect()
                }
            };
            let (mut tr, mut te) = (Vec::new(), Vec::new());
            for &i in rows {
                match before[i] {
                    Some(true) => tr.push(i),
                    Some(false) => te.push(i),
                    None => {}
                }
            }
            if tr.is_empty() || te.is_empty() {
                return Err(Error::config(format!(
                    "out-of-time split on {column:?} at {cutoff:?} leaves {} train and {} test rows",
                    tr.len(),
                    te.len()
                )));
            }
            Ok((tr, te))
        }
        Split::Hash {
            column,
            test_size,
            oot_column,
            oot_days,
        } => {
            let oot = match (oot_column, oot_days) {
                (Some(c), Some(n)) => Some((c.as_str(), *n)),
                (None, None) => None,
                _ => {
                    return Err(Error::config(
                        "hash split: give both oot_column and oot_days, or neither",
                    ))
                }
            };
            let h = holdout_rows(df, rows, column, *test_size, oot)?;
            if h.train.is_empty() || h.test.is_empty() {
                return Err(Error::config(format!(
                    "hash split on {column:?} leaves {} train and {} test rows",
                    h.train.len(),
                    h.test.len()
                )));
            }
            Ok((h.train, h.test))
        }
    }
}

/// Trains and evaluates one model on a frame.
pub fn train(df: &DataFrame, spec: &TrainSpec) -> Result<TrainOutcome> {
    let task = spec.algo.task();
    check_params(spec.algo, &spec.params)?;
    let target = spec.target.as_deref().map(|t| prep::resolve_column(df, t));
    let (y, target_map) = match (&target, task) {
        (Some(t), Task::Binary) => {
            let (y, m) = prep::binary_target(df, t)?;
            (y, Some(m))
        }
        (Some(t), Task::Regression) => {
            let c = df
                .column(t)
                .map_err(|_| Error::config(format!("target column {t:?} not found")))?;
            let s = c
                .as_materialized_series()
                .cast(&DataType::Float64)
                .map_err(|_| Error::config(format!("regression target {t:?} is not numeric")))?;
            (
                s.f64()
                    .unwrap()
                    .iter()
                    .map(|v| v.unwrap_or(f64::NAN))
                    .collect(),
                None,
            )
        }
        (None, Task::Unsupervised) => (vec![0.0; df.height()], None),
        (Some(_), Task::Unsupervised) => (vec![0.0; df.height()], None),
        (None, _) => {
            return Err(Error::config(format!(
                "algorithm {} needs a target",
                spec.algo.name()
            )));
        }
    };
    let mut exclude: Vec<&str> = spec.exclude.iter().map(String::as_str).collect();
    if let Some(t) = &target {
        exclude.push(t);
    }
    match &spec.split {
        Split::OutOfTime { column, .. } => exclude.push(column),
        Split::Hash {
            column, oot_column, ..
        } => {
            exclude.push(column);
            if let Some(c) = oot_column {
                exclude.push(c);
            }
        }
        Split::Stratified { .. } => {}
    }
    let mut clock = std::time::Instant::now();
    let step = |what: &str, clock: &mut std::time::Instant| {
        crate::log::debug(
            what,
            &[("seconds", serde_json::json!(clock.elapsed().as_secs_f64()))],
        );
        *clock = std::time::Instant::now();
    };
    let mut feats =
        prep::features_from_frame(df, &exclude, spec.features.as_deref(), &spec.categorical)?;
    let complete = |i: usize| feats.x.row(i).iter().all(|v| !v.is_nan());
    let rows: Vec<usize> = (0..df.height())
        .filter(|&i| y[i].is_finite() && (spec.missing != MissingPolicy::DropRows || complete(i)))
        .collect();
    if spec.missing == MissingPolicy::Zero {
        feats
            .x
            .data
            .iter_mut()
            .filter(|v| v.is_nan())
            .for_each(|v| *v = 0.0);
    }
    if rows.len() < 20 {
        return Err(Error::config(format!(
            "only {} rows with a target: too few to train",
            rows.len()
        )));
    }
    let (tr, te) = if task == Task::Unsupervised {
        (rows.clone(), Vec::new())
    } else {
        split_rows(df, &y, &rows, spec, task == Task::Binary)?
    };
    if task == Task::Binary {
        for (what, idx) in [("train", &tr), ("test", &te)] {
            let pos = idx.iter().filter(|&&i| y[i] == 1.0).count();
            if pos == 0 || pos == idx.len() {
                return Err(Error::config(format!(
                    "the {what} split has one class only ({pos} events in {} rows); use more data or a larger test size",
                    idx.len()
                )));
            }
        }
    }
    step("typed the columns", &mut clock);
    // The whole feature matrix is not needed past the split; its allocation (pages already
    // touched) holds the model inputs next, or is freed before a scorecard's fit.
    let all_rows = std::mem::take(&mut feats.x);
    let xtr = all_rows.select_rows(&tr);
    let xte = all_rows.select_rows(&te);
    let Matrix { data: spare, .. } = all_rows;
    let ytr: Vec<f64> = tr.iter().map(|&i| y[i]).collect();
    let yte: Vec<f64> = te.iter().map(|&i| y[i]).collect();
    let started = std::time::Instant::now();
    let names = &feats.names;
    let kinds = &feats.kinds;
    let seeded = |v: &serde_json::Value| -> serde_json::Value {
        let mut v = if v.is_null() {
            serde_json::json!({})
        } else {
            v.clone()
        };
        if !has_key(&v, "seed") {
            if let Some(o) = v.as_object_mut() {
                o.insert("seed".into(), serde_json::json!(spec.seed));
            }
        }
        v
    };
    let sup = task != Task::Unsupervised;
    let (prep, model) = match spec.algo {
        Algo::Scorecard => {
            drop(spare);
            let p: ScorecardParams = params(&spec.params, spec.algo)?;
            (
                None,
                FittedModel::Scorecard(p.fit(&xtr, &ytr, names, kinds)?),
            )
        }
        algo => {
            let mode = match algo {
                Algo::Tree | Algo::Gbdt | Algo::TreeRegressor | Algo::GbdtRegressor => {
                    PrepMode::Trees
                }
                _ => PrepMode::Scaled,
            };
            let pp = Preprocessor::fit(&xtr, sup.then_some(ytr.as_slice()), names, kinds, mode);
            let z = pp.transform_into(&xtr, spare);
            step("prepared the inputs", &mut clock);
            let m = match algo {
                Algo::Logistic => FittedModel::Logistic(
                    params::<LogisticParams>(&spec.params, algo)?.fit(&z, &ytr, None)?,
                ),
                Algo::Linear => FittedModel::Linear(
                    params::<LinearParams>(&spec.params, algo)?.fit(&z, &ytr, None)?,
                ),
                Algo::Tree | Algo::TreeRegressor => {
                    let mut p: TreeParams = params(&spec.params, algo)?;
                    if !has_key(&spec.params, "task") {
                        p.task = if algo == Algo::Tree {
                            TreeTask::Classification
                        } else {
                            TreeTask::Regression
                        };
                    }
                    FittedModel::Tree(p.fit(&z, &ytr, None)?)
                }
                Algo::Gbdt | Algo::GbdtRegressor => {
                    let mut p: GbdtParams = params(&seeded(&spec.params), algo)?;
                    if !has_key(&spec.params, "objective") {
                        p.objective = if algo == Algo::Gbdt {
                            Objective::Binary
                        } else {
                            Objective::Regression
                        };
                    }
                    FittedModel::Gbdt(p.fit(&z, &ytr, None)?)
                }
                Algo::Knn => FittedModel::Knn(
                    params::<KnnParams>(&seeded(&spec.params), algo)?.fit(&z, &ytr)?,
                ),
                Algo::Kmeans => FittedModel::Kmeans(
                    params::<KMeansParams>(&seeded(&spec.params), algo)?.fit(&z)?,
                ),
                Algo::Dbscan => {
                    FittedModel::Dbscan(params::<DbscanParams>(&spec.params, algo)?.fit(&z)?)
                }
                Algo::Pca => FittedModel::Pca(params::<PcaParams>(&spec.params, algo)?.fit(&z)?),
                Algo::Ica => {
                    FittedModel::Ica(params::<IcaParams>(&seeded(&spec.params), algo)?.fit(&z)?)
                }
                Algo::Scorecard => unreachable!(),
            };
            (Some(pp), m)
        }
    };
    let fit_seconds = started.elapsed().as_secs_f64();
    let trained = TrainedModel {
        algo: spec.algo,
        target: spec.target.clone(),
        target_map,
        input_names: names.clone(),
        input_kinds: kinds.clone(),
        prep,
        model,
    };
    let out_names = trained.model_input_names();
    let importance_raw = match &trained.model {
        FittedModel::Logistic(m) => m.importance(),
        FittedModel::Linear(m) => m.importance(),
        FittedModel::Tree(m) => m.importance(),
        FittedModel::Gbdt(m) => m.importance(),
        FittedModel::Scorecard(m) => m.importance(),
        _ => None,
    };
    let mut importance: Vec<(String, f64)> = importance_raw
        .map(|v| out_names.iter().cloned().zip(v).collect())
        .unwrap_or_default();
    let total: f64 = importance.iter().map(|x| x.1).sum();
    if total > 0.0 {
        importance.iter_mut().for_each(|x| x.1 /= total);
    }
    importance.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    step("fitted", &mut clock);
    let mut baseline = None;
    let eval = match task {
        Task::Binary => {
            // kNN costs a pass over its reference set per row: its training metrics are taken
            // on a seeded sample of at most 20,000 training rows.
            let sampled = match &trained.model {
                FittedModel::Knn(_) if xtr.rows > 20_000 => {
                    let mut idx = super::rng::Rng::new(spec.seed ^ 0x5eed).sample(xtr.rows, 20_000);
                    idx.sort_unstable();
                    Some((
                        xtr.select_rows(&idx),
                        idx.iter().map(|&i| ytr[i]).collect::<Vec<_>>(),
                    ))
                }
                _ => None,
            };
            let (xtr_eval, ytr_eval): (&Matrix, &[f64]) = match &sampled {
                Some((x, y)) => (x, y),
                None => (&xtr, &ytr),
            };
            let ptr = match &trained.model {
                FittedModel::Gbdt(m) if m.train_raw.len() == xtr_eval.rows => {
                    m.train_predictions().unwrap_or_default()
                }
                _ => trained.predict(xtr_eval),
            };
            let pte = trained.predict(&xte);
            step("predicted", &mut clock);
            // The training distributions serve both the baseline and the feature PSI (the same
            // bins `metrics::feature_psi` would compute again).
            let b = Baseline::of(&xtr.columns(), xtr.rows, names, &ptr);
            let fpsi: Vec<f64> = {
                use rayon::prelude::*;
                b.features
                    .par_iter()
                    .zip(xte.columns().par_iter())
                    .map(|((_, d), a)| d.psi(a))
                    .collect()
            };
            baseline = Some(b);
            step("feature PSI", &mut clock);
            Evaluation::Binary(Box::new(BinaryEval {
                train: BinaryMetrics::compute(ytr_eval, &ptr),
                test: BinaryMetrics::compute(&yte, &pte),
                score_psi: metrics::psi(&ptr, &pte, 10),
                feature_psi: names.iter().cloned().zip(fpsi).collect(),
                test_y: yte.clone(),
                test_p: pte,
            }))
        }
        Task::Regression => {
            let ptr = match &trained.model {
                FittedModel::Gbdt(m) if m.train_raw.len() == xtr.rows => {
                    m.train_predictions().unwrap_or_default()
                }
                _ => trained.predict(&xtr),
            };
            let pte = trained.predict(&xte);
            baseline = Some(Baseline::of(&xtr.columns(), xtr.rows, names, &ptr));
            Evaluation::Regression {
                train: RegressionMetrics::compute(&ytr, &ptr),
                test: RegressionMetrics::compute(&yte, &pte),
                test_y: yte.clone(),
                test_p: pte,
            }
        }
        Task::Unsupervised => Evaluation::Unsupervised {
            summary: match &trained.model {
                FittedModel::Kmeans(m) => {
                    serde_json::json!({"k": m.centers.rows, "inertia": m.inertia, "sizes": m.sizes, "iterations": m.iterations})
                }
                FittedModel::Dbscan(m) => {
                    serde_json::json!({"clusters": m.n_clusters, "noise": m.noise, "rows": tr.len()})
                }
                FittedModel::Pca(m) => {
                    serde_json::json!({"explained_variance_ratio": m.explained_variance_ratio})
                }
                FittedModel::Ica(m) => {
                    serde_json::json!({"components": m.unmixing.len(), "iterations": m.iterations})
                }
                _ => serde_json::json!({}),
            },
        },
    };
    step("evaluated", &mut clock);
    Ok(TrainOutcome {
        fingerprint: fingerprint(&xtr, &ytr),
        trained,
        eval,
        importance,
        dropped_columns: feats.dropped,
        rows_train: tr.len(),
        rows_test: te.len(),
        fit_seconds,
        baseline,
    })
}

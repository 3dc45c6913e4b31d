//! Histogram gradient-boosted trees (LightGBM's recipe): features bucketed into at most 255
//! quantile bins (bin 0 holds missing values), trees grown leaf-wise to `num_leaves`, each
//! split found by scanning gradient histograms, the larger child's histogram obtained by
//! subtracting the smaller child's from its parent's, and missing values sent to whichever side
//! gains more. The defaults are LightGBM's (100 rounds, learning rate 0.1, 31 leaves, at least
//! 20 rows per leaf).
//!
//! The tree grower is shared with [`super::tree`] (a CART tree is one regression tree on the
//! raw target with depth-wise limits).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{check_binary, check_xy, invalid, Matrix, ModelResult, Predictor};

// ---------------------------------------------------------------------------------------------
// Binning

/// Upper bounds of the value bins of each feature: value `x` falls in bin
/// `1 + #(bounds < x)`; missing values in bin 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinMapper {
    pub bounds: Vec<Vec<f64>>,
}

impl BinMapper {
    /// Quantile bounds from (a sample of up to 200,000 rows of) `x`.
    pub fn fit(x: &Matrix, max_bin: usize) -> BinMapper {
        let sample: Vec<usize> = if x.rows > 200_000 {
            let step = x.rows as f64 / 200_000.0;
            (0..200_000).map(|k| (k as f64 * step) as usize).collect()
        } else {
            (0..x.rows).collect()
        };
        let bounds = (0..x.cols)
            .into_par_iter()
            .map(|j| {
                let mut v: Vec<f64> = sample
                    .iter()
                    .map(|&i| x.get(i, j))
                    .filter(|v| !v.is_nan())
                    .collect();
                v.sort_by(|a, b| a.total_cmp(b));
                feature_bounds(&v, max_bin)
            })
            .collect();
        BinMapper { bounds }
    }

    #[inline]
    pub fn bin(&self, j: usize, x: f64) -> u8 {
        if x.is_nan() {
            0
        } else {
            1 + self.bounds[j].partition_point(|&b| b < x) as u8
        }
    }

    /// Number of bins of feature `j`, missing bin included.
    pub fn n_bins(&self, j: usize) -> usize {
        self.bounds[j].len() + 2
    }

    /// Row-major `u8` codes of `x`.
    pub fn transform(&self, x: &Matrix) -> Vec<u8> {
        let p = x.cols;
        let mut out = vec![0u8; x.rows * p];
        out.par_chunks_mut(p * 4096)
            .enumerate()
            .for_each(|(c, chunk)| {
                let base = c * 4096;
                for (r, row_out) in chunk.chunks_mut(p).enumerate() {
                    let row = x.row(base + r);
                    for j in 0..p {
                        row_out[j] = self.bin(j, row[j]);
                    }
                }
            });
        out
    }
}

/// At most `max_bin` value bins over sorted values: midpoints between distinct values when
/// there are few, quantiles otherwise.
fn feature_bounds(sorted: &[f64], max_bin: usize) -> Vec<f64> {
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for &v in sorted {
        match distinct.last_mut() {
            Some((d, c)) if *d == v => *c += 1,
            _ => distinct.push((v, 1)),
        }
    }
    if distinct.len() <= max_bin {
        return distinct
            .windows(2)
            .map(|w| {
                let m = w[0].0 + (w[1].0 - w[0].0) / 2.0;
                if m > w[0].0 {
                    m
                } else {
                    w[0].0
                }
            })
            .collect();
    }
    // Greedy equal-frequency cut over distinct values (a heavy value keeps a bin to itself).
    let n = sorted.len();
    let mut bounds = Vec::new();
    let mut acc = 0usize;
    let mut remaining_bins = max_bin;
    let mut remaining = n;
    for (k, &(v, c)) in distinct.iter().enumerate() {
        acc += c;
        let target = remaining as f64 / remaining_bins as f64;
        if acc as f64 >= target && k + 1 < distinct.len() && remaining_bins > 1 {
            let next = distinct[k + 1].0;
            let m = v + (next - v) / 2.0;
            bounds.push(if m > v { m } else { v });
            remaining -= acc;
            remaining_bins -= 1;
            acc = 0;
        }
    }
    bounds
}

// ---------------------------------------------------------------------------------------------
// Tree growing on binned data

#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    g: f64,
    h: f64,
    c: f64,
}

/// Limits of one tree.
#[derive(Debug, Clone)]
pub(crate) struct GrowParams {
    pub max_leaves: usize,
    pub max_depth: usize,
    pub min_leaf: usize,
    pub min_hessian: f64,
    pub lambda: f64,
    pub min_gain: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Feature index; unused for a leaf.
    pub feature: u32,
    /// Go left when `x <= threshold` (+inf, written as JSON null, when only missing go right).
    #[serde(deserialize_with = "super::binning::inf_if_null")]
    pub threshold: f64,
    pub missing_left: bool,
    /// Children (0 for a leaf: the root is never a child).
    pub left: u32,
    pub right: u32,
    pub value: f64,
    #[serde(skip)]
    pub bin: u8,
}

impl Node {
    fn leaf(value: f64) -> Node {
        Node {
            feature: 0,
            threshold: 0.0,
            missing_left: false,
            left: 0,
            right: 0,
            value,
            bin: 0,
        }
    }
    #[inline]
    pub fn is_leaf(&self) -> bool {
        self.left == 0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    #[inline]
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        let mut k = 0usize;
        loop {
            let n = &self.nodes[k];
            if n.is_leaf() {
                return n.value;
            }
            let v = row[n.feature as usize];
            let left = if v.is_nan() {
                n.missing_left
            } else {
                v <= n.threshold
            };
            k = if left { n.left } else { n.right } as usize;
        }
    }

    pub fn n_leaves(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_leaf()).count()
    }
}

#[derive(Debug, Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    bin: u8,
    missing_left: bool,
}

struct Leaf {
    lo: usize,
    hi: usize,
    depth: usize,
    node: usize,
    hist: Vec<Cell>,
    best: Option<Split>,
}

/// Binned training data shared by all trees.
pub(crate) struct Binned<'a> {
    pub codes: &'a [u8],
    pub p: usize,
    pub mapper: &'a BinMapper,
}

const HIST_CHUNK: usize = 32_768;

fn build_hist(data: &Binned, rows: &[u32], g: &[f64], h: &[f64]) -> Vec<Cell> {
    let p = data.p;
    let one = |rows: &[u32]| {
        let mut hist = vec![Cell::default(); p * 256];
        for &r in rows {
            let r = r as usize;
            let (gr, hr) = (g[r], h[r]);
            let codes = &data.codes[r * p..(r + 1) * p];
            for (j, &b) in codes.iter().enumerate() {
                let c = &mut hist[j * 256 + b as usize];
                c.g += gr;
                c.h += hr;
                c.c += 1.0;
            }
        }
        hist
    };
    if rows.len() <= HIST_CHUNK {
        return one(rows);
    }
    let parts: Vec<Vec<Cell>> = rows.par_chunks(HIST_CHUNK).map(one).collect();
    let mut it = parts.into_iter();
    let mut acc = it.next().unwrap();
    for part in it {
        for (a, b) in acc.iter_mut().zip(&part) {
            a.g += b.g;
            a.h += b.h;
            a.c += b.c;
        }
    }
    acc
}

#[inline]
fn score(g: f64, h: f64, lambda: f64) -> f64 {
    g * g / (h + lambda)
}

fn best_split(data: &Binned, hist: &[Cell], total: Cell, gp: &GrowParams) -> Option<Split> {
    let parent = score(total.g, total.h, gp.lambda);
    let ok = |c: &Cell| c.c >= gp.min_leaf as f64 && c.h >= gp.min_hessian;
    let mut best: Option<Split> = None;
    for j in 0..data.p {
        let nb = data.mapper.n_bins(j);
        let fh = &hist[j * 256..j * 256 + nb];
        let miss = fh[0];
        let mut acc = Cell::default();
        for (t, cell) in fh.iter().enumerate().skip(1) {
            acc.g += cell.g;
            acc.h += cell.h;
            acc.c += cell.c;
            let last = t == nb - 1;
            // Missing to the right.
            let right = Cell {
                g: total.g - acc.g,
                h: total.h - acc.h,
                c: total.c - acc.c,
            };
            if !(last && miss.c == 0.0) && ok(&acc) && ok(&right) {
                let gain =
                    score(acc.g, acc.h, gp.lambda) + score(right.g, right.h, gp.lambda) - parent;
                if gain > gp.min_gain && best.is_none_or(|b| gain > b.gain) {
                    best = Some(Split {
                        gain,
                        feature: j,
                        bin: t as u8,
                        missing_left: false,
                    });
                }
            }
            // Missing to the left.
            if miss.c > 0.0 && !last {
                let left = Cell {
                    g: acc.g + miss.g,
                    h: acc.h + miss.h,
                    c: acc.c + miss.c,
                };
                let right = Cell {
                    g: total.g - left.g,
                    h: total.h - left.h,
                    c: total.c - left.c,
                };
                if ok(&left) && ok(&right) {
                    let gain = score(left.g, left.h, gp.lambda)
                        + score(right.g, right.h, gp.lambda)
                        - parent;
                    if gain > gp.min_gain && best.is_none_or(|b| gain > b.gain) {
                        best = Some(Split {
                            gain,
                            feature: j,
                            bin: t as u8,
                            missing_left: true,
                        });
                    }
                }
            }
        }
    }
    best
}

fn leaf_value(c: Cell, lambda: f64) -> f64 {
    if c.h + lambda <= 0.0 {
        0.0
    } else {
        -c.g / (c.h + lambda)
    }
}

/// Grows one tree on `rows` (reordered in place: each leaf ends up owning a contiguous range).
/// Returns the tree (leaf values unscaled) and, per leaf node, its row range.
pub(crate) fn grow(
    data: &Binned,
    rows: &mut [u32],
    g: &[f64],
    h: &[f64],
    gp: &GrowParams,
    gain_by_feature: &mut [f64],
) -> (Tree, Vec<(usize, usize, usize)>) {
    let hist = build_hist(data, rows, g, h);
    let mut total = Cell::default();
    // Totals from the first feature's histogram (every row is in exactly one bin of it).
    for c in &hist[..data.mapper.n_bins(0).max(1)] {
        total.g += c.g;
        total.h += c.h;
        total.c += c.c;
    }
    let mut nodes = vec![Node::leaf(leaf_value(total, gp.lambda))];
    let best = if gp.max_depth > 0 {
        best_split(data, &hist, total, gp)
    } else {
        None
    };
    let mut leaves = vec![Leaf {
        lo: 0,
        hi: rows.len(),
        depth: 0,
        node: 0,
        hist,
        best,
    }];
    let mut scratch: Vec<u32> = Vec::with_capacity(rows.len());
    while leaves.len() < gp.max_leaves {
        let Some((li, _)) = leaves
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.best.map(|b| (i, b.gain)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        else {
            break;
        };
        let leaf = leaves.swap_remove(li);
        let split = leaf.best.unwrap();
        gain_by_feature[split.feature] += split.gain;
        // Partition the leaf's rows: left first, stable.
        let p = data.p;
        let f = split.feature;
        scratch.clear();
        let mut w = leaf.lo;
        for k in leaf.lo..leaf.hi {
            let r = rows[k];
            let b = data.codes[r as usize * p + f];
            let left = if b == 0 {
                split.missing_left
            } else {
                b <= split.bin
            };
            if left {
                rows[w] = r;
                w += 1;
            } else {
                scratch.push(r);
            }
        }
        rows[w..leaf.hi].copy_from_slice(&scratch);
        let mid = w;
        let (ln, rn) = (nodes.len(), nodes.len() + 1);
        let bounds = &data.mapper.bounds[f];
        let threshold = if (split.bin as usize) <= bounds.len() {
            bounds[split.bin as usize - 1]
        } else {
            f64::INFINITY
        };
        {
            let node = &mut nodes[leaf.node];
            node.feature = f as u32;
            node.threshold = threshold;
            node.missing_left = split.missing_left;
            node.bin = split.bin;
            node.left = ln as u32;
            node.right = rn as u32;
        }
        let left_small = mid - leaf.lo <= leaf.hi - mid;
        let (small_rng, _) = if left_small {
            ((leaf.lo, mid), (mid, leaf.hi))
        } else {
            ((mid, leaf.hi), (leaf.lo, mid))
        };
        let small_hist = build_hist(data, &rows[small_rng.0..small_rng.1], g, h);
        let mut big_hist = leaf.hist;
        for (a, b) in big_hist.iter_mut().zip(&small_hist) {
            a.g -= b.g;
            a.h -= b.h;
            a.c -= b.c;
        }
        let (lhist, rhist) = if left_small {
            (small_hist, big_hist)
        } else {
            (big_hist, small_hist)
        };
        let sum = |hist: &[Cell]| {
            let mut t = Cell::default();
            for c in &hist[..data.mapper.n_bins(0)] {
                t.g += c.g;
                t.h += c.h;
                t.c += c.c;
            }
            t
        };
        let (lt, rt) = (sum(&lhist), sum(&rhist));
        nodes.push(Node::leaf(leaf_value(lt, gp.lambda)));
        nodes.push(Node::leaf(leaf_value(rt, gp.lambda)));
        let depth = leaf.depth + 1;
        let can = depth < gp.max_depth;
        let lbest = if can {
            best_split(data, &lhist, lt, gp)
        } else {
            None
        };
        let rbest = if can {
            best_split(data, &rhist, rt, gp)
        } else {
            None
        };
        leaves.push(Leaf {
            lo: leaf.lo,
            hi: mid,
            depth,
            node: ln,
            hist: lhist,
            best: lbest,
        });
        leaves.push(Leaf {
            lo: mid,
            hi: leaf.hi,
            depth,
            node: rn,
            hist: rhist,
            best: rbest,
        });
    }
    let ranges = leaves.iter().map(|l| (l.node, l.lo, l.hi)).collect();
    (Tree { nodes }, ranges)
}

// ---------------------------------------------------------------------------------------------
// Boosting

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Log loss on a 0/1 target; predictions are probabilities.
    Binary,
    /// Squared error; predictions are values.
    Regression,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbdtParams {
    pub objective: Objective,
    pub n_estimators: usize,
    pub learning_rate: f64,
    pub num_leaves: usize,
    /// 0 = unlimited.
    pub max_depth: usize,
    pub min_data_in_leaf: usize,
    pub min_sum_hessian_in_leaf: f64,
    pub lambda_l2: f64,
    pub max_bin: usize,
    /// Share of rows drawn (without replacement) for each tree; 1 = all.
    pub subsample: f64,
    pub seed: u64,
}

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams {
            objective: Objective::Binary,
            n_estimators: 100,
            learning_rate: 0.1,
            num_leaves: 31,
            max_depth: 0,
            min_data_in_leaf: 20,
            min_sum_hessian_in_leaf: 1e-3,
            lambda_l2: 0.0,
            max_bin: 255,
            subsample: 1.0,
            seed: 0,
        }
    }
}

impl GbdtParams {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn objective(mut self, o: Objective) -> Self {
        self.objective = o;
        self
    }
    pub fn n_estimators(mut self, n: usize) -> Self {
        self.n_estimators = n;
        self
    }
    pub fn learning_rate(mut self, v: f64) -> Self {
        self.learning_rate = v;
        self
    }
    pub fn num_leaves(mut self, n: usize) -> Self {
        self.num_leaves = n;
        self
    }
    pub fn min_data_in_leaf(mut self, n: usize) -> Self {
        self.min_data_in_leaf = n;
        self
    }
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }

    pub fn validate(&self) -> ModelResult<()> {
        if self.n_estimators == 0 {
            return Err(invalid(
                "n_estimators",
                self.n_estimators,
                "an integer >= 1",
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(invalid(
                "learning_rate",
                self.learning_rate,
                "a number in (0, 1]",
            ));
        }
        if self.num_leaves < 2 {
            return Err(invalid("num_leaves", self.num_leaves, "an integer >= 2"));
        }
        if self.min_data_in_leaf == 0 {
            return Err(invalid(
                "min_data_in_leaf",
                self.min_data_in_leaf,
                "an integer >= 1",
            ));
        }
        if !(self.lambda_l2 >= 0.0) {
            return Err(invalid("lambda_l2", self.lambda_l2, "a number >= 0"));
        }
        if !(2..=255).contains(&self.max_bin) {
            return Err(invalid("max_bin", self.max_bin, "an integer in 2..=255"));
        }
        if !(self.subsample > 0.0 && self.subsample <= 1.0) {
            return Err(invalid("subsample", self.subsample, "a number in (0, 1]"));
        }
        Ok(())
    }

    pub fn fit(&self, x: &Matrix, y: &[f64], weights: Option<&[f64]>) -> ModelResult<GbdtModel> {
        self.validate()?;
        check_xy(x, y, weights)?;
        if self.objective == Objective::Binary {
            check_binary(y)?;
        }
        let n = x.rows;
        let mapper = BinMapper::fit(x, self.max_bin);
        let codes = mapper.transform(x);
        let data = Binned {
            codes: &codes,
            p: x.cols,
            mapper: &mapper,
        };
        let w: Vec<f64> = weights.map_or_else(|| vec![1.0; n], |w| w.to_vec());
        let sw: f64 = w.iter().sum();
        let mean = y.iter().zip(&w).map(|(y, w)| y * w).sum::<f64>() / sw;
        let base = match self.objective {
            Objective::Binary => {
                let m = mean.clamp(1e-12, 1.0 - 1e-12);
                (m / (1.0 - m)).ln()
            }
            Objective::Regression => mean,
        };
        let gp = GrowParams {
            max_leaves: self.num_leaves,
            max_depth: if self.max_depth == 0 {
                usize::MAX
            } else {
                self.max_depth
            },
            min_leaf: self.min_data_in_leaf,
            min_hessian: self.min_sum_hessian_in_leaf,
            lambda: self.lambda_l2,
            min_gain: 1e-12,
        };
        let mut f = vec![base; n];
        let mut g = vec![0.0; n];
        let mut h = vec![0.0; n];
        let mut trees = Vec::with_capacity(self.n_estimators);
        let mut gains = vec![0.0; x.cols];
        let mut rng = super::rng::Rng::new(self.seed);
        let mut rows: Vec<u32> = (0..n as u32).collect();
        for _ in 0..self.n_estimators {
            match self.objective {
                Objective::Binary => {
                    g.par_iter_mut()
                        .zip(h.par_iter_mut())
                        .enumerate()
                        .for_each(|(i, (gi, hi))| {
                            let p = super::logistic::sigmoid(f[i]);
                            *gi = w[i] * (p - y[i]);
                            *hi = (w[i] * p * (1.0 - p)).max(1e-16);
                        })
                }
                Objective::Regression => g
                    .par_iter_mut()
                    .zip(h.par_iter_mut())
                    .enumerate()
                    .for_each(|(i, (gi, hi))| {
                        *gi = w[i] * (f[i] - y[i]);
                        *hi = w[i];
                    }),
            }
            if self.subsample < 1.0 {
                let k = ((n as f64) * self.subsample).round().max(1.0) as usize;
                let mut s: Vec<u32> = rng.sample(n, k).into_iter().map(|i| i as u32).collect();
                s.sort_unstable();
                rows = s;
            } else {
                rows.iter_mut().enumerate().for_each(|(i, r)| *r = i as u32);
            }
            let (mut tree, ranges) = grow(&data, &mut rows, &g, &h, &gp, &mut gains);
            for node in tree.nodes.iter_mut() {
                node.value *= self.learning_rate;
            }
            if self.subsample < 1.0 {
                let upd: Vec<f64> = (0..n)
                    .into_par_iter()
                    .map(|i| tree.predict_row(x.row(i)))
                    .collect();
                f.iter_mut().zip(&upd).for_each(|(a, b)| *a += b);
            } else {
                for (node, lo, hi) in ranges {
                    let v = tree.nodes[node].value;
                    for &r in &rows[lo..hi] {
                        f[r as usize] += v;
                    }
                }
            }
            let stump = tree.nodes.len() == 1;
            trees.push(tree);
            if stump {
                break;
            }
        }
        Ok(GbdtModel {
            objective: self.objective,
            base_score: base,
            trees,
            gain: gains,
            n_features: x.cols,
            train_raw: f,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbdtModel {
    pub objective: Objective,
    pub base_score: f64,
    pub trees: Vec<Tree>,
    /// Total split gain by feature.
    pub gain: Vec<f64>,
    pub n_features: usize,
    /// Raw scores of the training rows, kept from the fit so that evaluation need not predict
    /// them again (not serialised).
    #[serde(skip)]
    pub train_raw: Vec<f64>,
}

impl GbdtModel {
    /// Training-row predictions from the fit (probabilities or values), if still held.
    pub fn train_predictions(&self) -> Option<Vec<f64>> {
        if self.train_raw.is_empty() {
            return None;
        }
        Some(match self.objective {
            Objective::Binary => self
                .train_raw
                .iter()
                .map(|&z| super::logistic::sigmoid(z))
                .collect(),
            Objective::Regression => self.train_raw.clone(),
        })
    }

    /// Raw scores (log-odds for the binary objective).
    pub fn raw(&self, x: &Matrix) -> Vec<f64> {
        (0..x.rows)
            .into_par_iter()
            .map(|i| {
                let row = x.row(i);
                self.base_score + self.trees.iter().map(|t| t.predict_row(row)).sum::<f64>()
            })
            .collect()
    }
}

impl Predictor for GbdtModel {
    fn predict(&self, x: &Matrix) -> Vec<f64> {
        let raw = self.raw(x);
        match self.objective {
            Objective::Binary => raw.into_iter().map(super::logistic::sigmoid).collect(),
            Objective::Regression => raw,
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn importance(&self) -> Option<Vec<f64>> {
        Some(self.gain.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rng::Rng;

    pub(crate) fn nonlinear(n: usize, seed: u64) -> (Matrix, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a = rng.normal();
            let b = rng.normal();
            let c = if rng.uniform() < 0.1 {
                f64::NAN
            } else {
                rng.normal()
            };
            let z = 1.5 * (a * b).signum() + if c.is_nan() { 1.0 } else { -0.5 * c };
            y.push(if rng.uniform() < 1.0 / (1.0 + (-z).exp()) {
                1.0
            } else {
                0.0
            });
            rows.push(vec![a, b, c]);
        }
        (Matrix::from_rows(&rows), y)
    }

    #[test]
    fn bins_are_quantiles_and_missing_is_zero() {
        let x = Matrix::from_columns(&[(0..1000).map(|i| i as f64).collect()]);
        let m = BinMapper::fit(&x, 10);
        assert!(m.bounds[0].len() <= 10);
        assert_eq!(m.bin(0, f64::NAN), 0);
        assert_eq!(m.bin(0, -5.0), 1);
        let few = Matrix::from_columns(&[vec![1.0, 2.0, 2.0, 3.0]]);
        let m = BinMapper::fit(&few, 255);
        assert_eq!(m.bounds[0], vec![1.5, 2.5]);
    }

    #[test]
    fn learns_interactions_and_missing_and_is_deterministic() {
        let (x, y) = nonlinear(3000, 3);
        let (xt, yt) = nonlinear(2000, 4);
        let params = GbdtParams::new().n_estimators(50);
        let m = params.fit(&x, &y, None).unwrap();
        let a = crate::model::metrics::auc(&yt, &m.predict(&xt));
        assert!(a > 0.75, "auc {a}");
        let m2 = params.fit(&x, &y, None).unwrap();
        let kept = m.train_predictions().unwrap();
        let again = m.predict(&x);
        assert!(kept.iter().zip(&again).all(|(a, b)| (a - b).abs() < 1e-12));
        assert!(m.predict(&xt) == m2.predict(&xt), "not reproducible");
        assert!(m.trees.iter().all(|t| t.n_leaves() <= 31));
        let json = serde_json::to_string(&m).unwrap();
        let back: GbdtModel = serde_json::from_str(&json).unwrap();
        // serde_json parses floats to within one ulp (no `float_roundtrip` feature).
        let (pb, pm) = (back.predict(&xt), m.predict(&xt));
        assert!(pb.iter().zip(&pm).all(|(a, b)| (a - b).abs() < 1e-9));
    }

    #[test]
    fn regression_objective_fits() {
        let (x, _) = nonlinear(2000, 5);
        let y: Vec<f64> = (0..x.rows)
            .map(|i| 3.0 * x.get(i, 0) + x.get(i, 1).abs())
            .collect();
        let m = GbdtParams::new()
            .objective(Objective::Regression)
            .fit(&x, &y, None)
            .unwrap();
        let r2 = crate::model::metrics::r2(&y, &m.predict(&x));
        assert!(r2 > 0.9, "{r2}");
    }

    #[test]
    fn bad_params_are_named() {
        let e = GbdtParams::new().learning_rate(0.0).validate().unwrap_err();
        assert!(e.to_string().contains("learning_rate"));
    }
}

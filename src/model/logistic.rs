//! L2-regularised logistic regression fitted by Newton's method (IRLS) with a backtracking
//! line search.
//!
//! The objective is scikit-learn's: `0.5 * |w|^2 + C * sum_i s_i * logloss_i`, the intercept
//! unpenalised, so with the same `C` the two fit the same model. Newton's method is
//! affine-invariant (no scaling needed) and converges in a handful of passes; each pass computes
//! the objective, the exact gradient and the Hessian `X' W X` (on a strided subsample of at most
//! 100,000 rows, which changes the path but not the optimum) in one parallel sweep, reduced in a
//! fixed order so that the result does not depend on the number of threads. From 400,000 rows
//! the full-data passes start at the optimum of a 100,000-row strided subsample.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{check_binary, check_xy, invalid, Matrix, ModelError, ModelResult, Predictor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogisticParams {
    /// Inverse regularisation strength (scikit-learn's `C`).
    pub c: f64,
    pub fit_intercept: bool,
    pub max_iter: usize,
    /// Stop when the largest Newton step is below this.
    pub tol: f64,
    /// Weigh classes inversely to their frequency.
    pub balanced: bool,
}

impl Default for LogisticParams {
    fn default() -> Self {
        LogisticParams {
            c: 1.0,
            fit_intercept: true,
            max_iter: 100,
            tol: 1e-8,
            balanced: false,
        }
    }
}

impl LogisticParams {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn c(mut self, c: f64) -> Self {
        self.c = c;
        self
    }
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    pub fn balanced(mut self, b: bool) -> Self {
        self.balanced = b;
        self
    }

    pub fn validate(&self) -> ModelResult<()> {
        if !(self.c > 0.0 && self.c.is_finite()) {
            return Err(invalid(
                "c",
                self.c,
                "a positive number (inverse L2 strength)",
            ));
        }
        if self.max_iter == 0 {
            return Err(invalid("max_iter", self.max_iter, "an integer >= 1"));
        }
        if !(self.tol > 0.0) {
            return Err(invalid("tol", self.tol, "a positive number"));
        }
        Ok(())
    }

    pub fn fit(
        &self,
        x: &Matrix,
        y: &[f64],
        weights: Option<&[f64]>,
    ) -> ModelResult<LogisticModel> {
        self.validate()?;
        check_xy(x, y, weights)?;
        check_binary(y)?;
        let n = x.rows;
        let p = x.cols;
        let m = p + usize::from(self.fit_intercept);
        let mut s: Vec<f64> = weights.map_or_else(|| vec![1.0; n], |w| w.to_vec());
        if self.balanced {
            let pos: f64 = y
                .iter()
                .zip(&s)
                .filter(|(y, _)| **y == 1.0)
                .map(|(_, w)| w)
                .sum();
            let tot: f64 = s.iter().sum();
            let (wp, wn) = (tot / (2.0 * pos), tot / (2.0 * (tot - pos)));
            for (si, yi) in s.iter_mut().zip(y) {
                *si *= if *yi == 1.0 { wp } else { wn };
            }
        }
        let inv_c = 1.0 / self.c;
        let mut w = vec![0.0; m];
        if self.fit_intercept {
            let pos: f64 = y.iter().zip(&s).map(|(y, s)| y * s).sum();
            let tot: f64 = s.iter().sum();
            let rate = (pos / tot).clamp(1e-6, 1.0 - 1e-6);
            w[p] = (rate / (1.0 - rate)).ln();
        }
        // Large data: start from the optimum on an evenly strided subsample (its penalty scaled
        // to the same strength per row), a few hundredths away from the full optimum, so that
        // the full-data Newton passes only polish (quadratic convergence: two or three passes).
        let mut warm_iterations = 0;
        if n >= 4 * WARM_ROWS {
            let stride = n / WARM_ROWS;
            let idx: Vec<usize> = (0..n).step_by(stride).collect();
            let xs = x.select_rows(&idx);
            let ys: Vec<f64> = idx.iter().map(|&i| y[i]).collect();
            let ss: Vec<f64> = idx.iter().map(|&i| s[i]).collect();
            let scale = n as f64 / idx.len() as f64;
            let start = evaluate(&xs, &ys, &ss, &w, p, m, inv_c / scale);
            let (ws, it, _) = newton(
                &xs,
                &ys,
                &ss,
                (w, start),
                p,
                inv_c / scale,
                self.max_iter,
                self.tol.max(1e-4),
            );
            w = ws;
            warm_iterations = it;
        }
        // The first pass over all the rows also checks them for missing values (after the
        // subsample's fit, which costs little next to it) and measures the inputs' spread (for
        // importances).
        let (start, std) = evaluate_checked(x, y, &s, &w, p, m, inv_c)?;
        let (w, iterations, converged) =
            newton(x, y, &s, (w, start), p, inv_c, self.max_iter, self.tol);
        crate::log::debug(
            "logistic regression fitted",
            &[
                ("iterations", iterations.into()),
                ("subsample_iterations", warm_iterations.into()),
                ("converged", converged.into()),
            ],
        );
        let (coef, intercept) = if self.fit_intercept {
            (w[..p].to_vec(), w[p])
        } else {
            (w, 0.0)
        };
        Ok(LogisticModel {
            coef,
            intercept,
            iterations,
            converged,
            feature_std: std,
        })
    }
}

/// Newton's method with a backtracking line search from `w` (evaluated: `cur`); returns the
/// coefficients, the number of iterations and whether the step fell below `tol`.
#[allow(clippy::too_many_arguments)]
fn newton(
    x: &Matrix,
    y: &[f64],
    s: &[f64],
    (mut w, mut cur): (Vec<f64>, Eval),
    p: usize,
    inv_c: f64,
    max_iter: usize,
    tol: f64,
) -> (Vec<f64>, usize, bool) {
    let m = w.len();
    let mut iterations = 0;
    for _ in 0..max_iter {
        iterations += 1;
        let step = super::linalg::solve_spd_regularised(&cur.hess, &cur.grad, m);
        // Backtracking line search on the objective; the pass that evaluates a candidate also
        // gives its gradient and Hessian, used when it is accepted.
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            let cand: Vec<f64> = w.iter().zip(&step).map(|(w, s)| w - t * s).collect();
            let e = evaluate(x, y, s, &cand, p, m, inv_c);
            if e.obj <= cur.obj + 1e-12 * cur.obj.abs() {
                w = cand;
                cur = e;
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        let max_step = step.iter().map(|v| (v * t).abs()).fold(0.0, f64::max);
        if !accepted || max_step < tol {
            return (w, iterations, true);
        }
    }
    (w, iterations, false)
}

/// The standard deviation of each column, after checking in the same pass that every value
/// is finite (the error names the column of the first one that is not).
fn checked_column_std(x: &Matrix) -> ModelResult<Vec<f64>> {
    let p = x.cols;
    if p == 0 || x.rows == 0 {
        return Ok(vec![0.0; p]);
    }
    let parts: Vec<ColumnSums> = x
        .data
        .par_chunks(p * CHUNK)
        .map(|chunk| {
            let mut mean = vec![0.0; p];
            let mut sq = vec![0.0; p];
            let mut bad = false;
            for row in chunk.chunks(p) {
                for (j, v) in row.iter().enumerate() {
                    mean[j] += v;
                    sq[j] += v * v;
                    bad |= !v.is_finite();
                }
            }
            (mean, sq, bad)
        })
        .collect();
    column_std_of(x, parts)
}

/// The standard deviations from the column sums of each chunk of `CHUNK` rows (reduced in
/// order), or the error naming the column of the first value of `x` that is not finite.
fn column_std_of(x: &Matrix, parts: Vec<ColumnSums>) -> ModelResult<Vec<f64>> {
    let (n, p) = (x.rows as f64, x.cols);
    if let Some(c) = parts.iter().position(|part| part.2) {
        let pos = x.data[c * p * CHUNK..]
            .iter()
            .position(|v| !v.is_finite())
            .unwrap_or(0);
        return Err(ModelError::Missing {
            algo: "logistic regression",
            column: pos % p,
        });
    }
    let mut mean = vec![0.0; p];
    let mut sq = vec![0.0; p];
    for (pm, ps, _) in parts {
        mean.iter_mut().zip(&pm).for_each(|(a, b)| *a += b);
        sq.iter_mut().zip(&ps).for_each(|(a, b)| *a += b);
    }
    Ok(mean
        .iter()
        .zip(&sq)
        .map(|(m, s)| ((s / n) - (m / n).powi(2)).max(0.0).sqrt())
        .collect())
}

#[inline]
fn linear(row: &[f64], w: &[f64], p: usize) -> f64 {
    let mut z = if w.len() > p { w[p] } else { 0.0 };
    for (a, b) in row.iter().zip(&w[..p]) {
        z += a * b;
    }
    z
}

/// log(1 + exp(z)) without overflow (what [`softplus_sigmoid`] computes with the sigmoid).
#[cfg(test)]
fn softplus(z: f64) -> f64 {
    if z > 35.0 {
        z
    } else if z < -35.0 {
        z.exp()
    } else {
        z.exp().ln_1p()
    }
}

pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

const CHUNK: usize = 16_384;

/// Rows beyond which the Hessian is estimated on an evenly strided subsample (scaled up): the
/// gradient stays exact, so the fixed point is the exact optimum, and each Newton pass costs
/// O(n p + HESSIAN_ROWS p^2) instead of O(n p^2).
const HESSIAN_ROWS: usize = 100_000;

/// Rows of the subsample that gives large fits their starting point (from 4x as many rows).
const WARM_ROWS: usize = 100_000;

/// Objective, gradient and Hessian at one point.
struct Eval {
    obj: f64,
    grad: Vec<f64>,
    hess: Vec<f64>,
}

/// `softplus(z)` and `sigmoid(z)` together, bit for bit the two functions, with a single `exp`
/// unless `0 <= z <= 35` (the rarer side for credit events).
#[inline(always)]
fn softplus_sigmoid(z: f64) -> (f64, f64) {
    // exp(z) below zero, exp(-z) from zero: what `sigmoid` takes on each side.
    let e = (-z.abs()).exp();
    let pr = if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    let sp = if z > 35.0 {
        z
    } else if z < -35.0 {
        e
    } else if z < 0.0 {
        e.ln_1p()
    } else {
        z.exp().ln_1p()
    };
    (sp, pr)
}

/// Rows handled together by [`evaluate`]: their linear predictors are independent chains of
/// additions (each in the order of [`linear`]) that the processor overlaps, and the gradient and
/// Hessian sums stay in registers across them (adding the rows one after the other, as a
/// row-by-row loop would).
const BLOCK: usize = 8;

/// Adds `BLOCK` rows' terms `d_t x_t x_t'` to the upper triangle of `h` (m x m), in row order.
#[inline(always)]
fn hessian_block(h: &mut [f64], xr: &[[f64; 64]; BLOCK], d: &[f64; BLOCK], m: usize) {
    for j in 0..m {
        let a: [f64; BLOCK] = std::array::from_fn(|t| d[t] * xr[t][j]);
        let hrow = &mut h[j * m + j..(j + 1) * m];
        let xs: [&[f64]; BLOCK] = std::array::from_fn(|t| &xr[t][j..m]);
        for (k, hk) in hrow.iter_mut().enumerate() {
            let mut acc = *hk;
            for t in 0..BLOCK {
                acc += a[t] * xs[t][k];
            }
            *hk = acc;
        }
    }
}

/// Adds one row's term `d x x'` to the upper triangle of `h` (m x m).
#[inline(always)]
fn hessian_row(h: &mut [f64], xr: &[f64], d: f64, m: usize) {
    for j in 0..m {
        let dj = d * xr[j];
        let hrow = &mut h[j * m + j..(j + 1) * m];
        for (hk, xk) in hrow.iter_mut().zip(&xr[j..m]) {
            *hk += dj * xk;
        }
    }
}

/// One pass over the data: objective `sum_i s_i loss_i + |w|^2 / (2C)`, its gradient, and its
/// Hessian (on an evenly strided subsample beyond `HESSIAN_ROWS` rows, scaled up). Chunks are
/// reduced in a fixed order, so the result does not depend on the number of threads; within a
/// chunk every sum adds the rows in order.
fn evaluate(x: &Matrix, y: &[f64], s: &[f64], w: &[f64], p: usize, m: usize, inv_c: f64) -> Eval {
    if m > 64 {
        return evaluate_rows(x, y, s, w, p, m, inv_c);
    }
    let stride = (x.rows / HESSIAN_ROWS).max(1);
    let parts: Vec<Terms> = (0..x.rows.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| chunk_terms_dispatch::<false>(x, y, s, w, p, m, stride, c).0)
        .collect();
    finish(parts, x.rows, stride, w, p, m, inv_c)
}

/// [`evaluate`], and the standard deviation of each column after checking that every value is
/// finite (the error names the column of the first one that is not), in the same pass: the
/// column sums are those of [`checked_column_std`], chunk by chunk and row by row.
fn evaluate_checked(
    x: &Matrix,
    y: &[f64],
    s: &[f64],
    w: &[f64],
    p: usize,
    m: usize,
    inv_c: f64,
) -> ModelResult<(Eval, Vec<f64>)> {
    if m > 64 {
        let std = checked_column_std(x)?;
        return Ok((evaluate_rows(x, y, s, w, p, m, inv_c), std));
    }
    let stride = (x.rows / HESSIAN_ROWS).max(1);
    let (parts, sums): (Vec<Terms>, Vec<Option<ColumnSums>>) = (0..x.rows.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| chunk_terms_dispatch::<true>(x, y, s, w, p, m, stride, c))
        .unzip();
    let sums: Vec<ColumnSums> = sums.into_iter().map(|c| c.expect("summed")).collect();
    let std = column_std_of(x, sums)?;
    Ok((finish(parts, x.rows, stride, w, p, m, inv_c), std))
}

/// Objective, gradient and (upper triangle of the subsample) Hessian terms of some rows.
type Terms = (f64, Vec<f64>, Vec<f64>);

/// Per column, the sum of the values and of their squares over some rows, and whether one of
/// them is not finite.
type ColumnSums = (Vec<f64>, Vec<f64>, bool);

/// The chunk `c` of [`evaluate`] (and of [`checked_column_std`]'s sums when `SUMS`), with
/// AVX2 when the processor has it.
#[inline]
#[allow(clippy::too_many_arguments)]
fn chunk_terms_dispatch<const SUMS: bool>(
    x: &Matrix,
    y: &[f64],
    s: &[f64],
    w: &[f64],
    p: usize,
    m: usize,
    stride: usize,
    c: usize,
) -> (Terms, Option<ColumnSums>) {
    let rows = c * CHUNK..((c + 1) * CHUNK).min(x.rows);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2 (checked just above).
        return unsafe { chunk_terms_avx2::<SUMS>(x, y, s, w, p, m, stride, rows) };
    }
    chunk_terms::<SUMS>(x, y, s, w, p, m, stride, rows)
}

/// [`chunk_terms`] compiled for AVX2: wider vectors for the same operations in the same order
/// (no fused multiply-add), so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn chunk_terms_avx2<const SUMS: bool>(
    x: &Matrix,
    y: &[f64],
    s: &[f64],
    w: &[f64],
    p: usize,
    m: usize,
    stride: usize,
    rows: std::ops::Range<usize>,
) -> (Terms, Option<ColumnSums>) {
    chunk_terms::<SUMS>(x, y, s, w, p, m, stride, rows)
}

/// The terms of [`evaluate`] for the rows `rows` (m <= 64), each sum adding the rows in order;
/// with `SUMS`, also the column sums of [`checked_column_std`] over those rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn chunk_terms<const SUMS: bool>(
    x: &Matrix,
    y: &[f64],
    s: &[f64],
    w: &[f64],
    p: usize,
    m: usize,
    stride: usize,
    rows: std::ops::Range<usize>,
) -> (Terms, Option<ColumnSums>) {
    let (lo, hi) = (rows.start, rows.end);
    let (mut sum, mut sq, mut bad) = if SUMS {
        (vec![0.0; p], vec![0.0; p], false)
    } else {
        (Vec::new(), Vec::new(), false)
    };
    let w0 = if m > p { w[p] } else { 0.0 };
    let wp = &w[..p];
    let mut obj = 0.0;
    let mut g = vec![0.0; m];
    let mut h = vec![0.0; m * m];
    // Subsample rows waiting for the Hessian (with a trailing 1 for the intercept).
    let mut xr = [[1.0; 64]; BLOCK];
    let mut d = [0.0; BLOCK];
    let mut waiting = 0;
    let mut i = lo;
    while i < hi {
        let k = (hi - i).min(BLOCK);
        let rows: [&[f64]; BLOCK] = std::array::from_fn(|t| &x.row(i + t.min(k - 1))[..p]);
        let mut z = [w0; BLOCK];
        if k == BLOCK {
            for (j, wj) in wp.iter().enumerate() {
                for t in 0..BLOCK {
                    z[t] += rows[t][j] * wj;
                }
            }
        } else {
            for t in 0..k {
                z[t] = linear(rows[t], w, p);
            }
        }
        let mut r = [0.0; BLOCK];
        for t in 0..k {
            let row_no = i + t;
            let (zi, yi, si) = (z[t], y[row_no], s[row_no]);
            // logloss = softplus(z) - y z
            let (sp, pr) = softplus_sigmoid(zi);
            obj += si * (sp - yi * zi);
            r[t] = si * (pr - yi);
            if row_no % stride == 0 {
                xr[waiting][..p].copy_from_slice(rows[t]);
                d[waiting] = si * pr * (1.0 - pr);
                waiting += 1;
                if waiting == BLOCK {
                    hessian_block(&mut h, &xr, &d, m);
                    waiting = 0;
                }
            }
        }
        if k == BLOCK {
            for (j, gj) in g[..p].iter_mut().enumerate() {
                let mut acc = *gj;
                for t in 0..BLOCK {
                    acc += r[t] * rows[t][j];
                }
                *gj = acc;
            }
            if m > p {
                for rt in r {
                    g[p] += rt;
                }
            }
            if SUMS {
                for j in 0..p {
                    let (mut a, mut b) = (sum[j], sq[j]);
                    for t in 0..BLOCK {
                        let v = rows[t][j];
                        a += v;
                        b += v * v;
                        bad |= !v.is_finite();
                    }
                    (sum[j], sq[j]) = (a, b);
                }
            }
        } else {
            for t in 0..k {
                for (gj, xj) in g[..p].iter_mut().zip(rows[t]) {
                    *gj += r[t] * xj;
                }
                if m > p {
                    g[p] += r[t];
                }
                if SUMS {
                    for (j, v) in rows[t].iter().enumerate() {
                        sum[j] += v;
                        sq[j] += v * v;
                        bad |= !v.is_finite();
                    }
                }
            }
        }
        i += k;
    }
    for t in 0..waiting {
        hessian_row(&mut h, &xr[t][..m], d[t], m);
    }
    ((obj, g, h), SUMS.then_some((sum, sq, bad)))
}

/// [`evaluate`] one row at a time, for more than 64 coefficients.
fn evaluate_rows(
    x: &Matrix,
    y: &[f64],
    s: &[f64],
    w: &[f64],
    p: usize,
    m: usize,
    inv_c: f64,
) -> Eval {
    let stride = (x.rows / HESSIAN_ROWS).max(1);
    let parts: Vec<(f64, Vec<f64>, Vec<f64>)> = (0..x.rows.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(x.rows));
            let mut obj = 0.0;
            let mut g = vec![0.0; m];
            let mut h = vec![0.0; m * m];
            let mut xr = vec![1.0; m];
            for i in lo..hi {
                let row = x.row(i);
                let z = linear(row, w, p);
                let (sp, pr) = softplus_sigmoid(z);
                obj += s[i] * (sp - y[i] * z);
                let r = s[i] * (pr - y[i]);
                for (gj, xj) in g[..p].iter_mut().zip(row) {
                    *gj += r * xj;
                }
                if m > p {
                    g[p] += r;
                }
                if i % stride == 0 {
                    xr[..p].copy_from_slice(row);
                    hessian_row(&mut h, &xr, s[i] * pr * (1.0 - pr), m);
                }
            }
            (obj, g, h)
        })
        .collect();
    finish(parts, x.rows, stride, w, p, m, inv_c)
}

/// Reduces the chunks of [`evaluate`] in order, scales the subsample Hessian up, mirrors it and
/// adds the penalty.
fn finish(
    parts: Vec<Terms>,
    rows: usize,
    stride: usize,
    w: &[f64],
    p: usize,
    m: usize,
    inv_c: f64,
) -> Eval {
    let mut obj = 0.0;
    let mut g = vec![0.0; m];
    let mut h = vec![0.0; m * m];
    for (po, pg, ph) in parts {
        obj += po;
        g.iter_mut().zip(&pg).for_each(|(a, b)| *a += b);
        h.iter_mut().zip(&ph).for_each(|(a, b)| *a += b);
    }
    let scale = rows as f64 / rows.div_ceil(stride) as f64;
    for j in 0..m {
        for k in j..m {
            h[j * m + k] *= scale;
        }
        for k in 0..j {
            h[j * m + k] = h[k * m + j];
        }
    }
    for j in 0..p {
        obj += 0.5 * inv_c * w[j] * w[j];
        g[j] += inv_c * w[j];
        h[j * m + j] += inv_c;
    }
    Eval {
        obj,
        grad: g,
        hess: h,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub coef: Vec<f64>,
    pub intercept: f64,
    pub iterations: usize,
    pub converged: bool,
    /// Standard deviation of each input on the training data (for importances).
    pub feature_std: Vec<f64>,
}

impl LogisticModel {
    /// The linear predictor (log-odds) of each row.
    pub fn decision(&self, x: &Matrix) -> Vec<f64> {
        (0..x.rows)
            .into_par_iter()
            .map(|i| {
                self.intercept
                    + x.row(i)
                        .iter()
                        .zip(&self.coef)
                        .map(|(a, b)| a * b)
                        .sum::<f64>()
            })
            .collect()
    }
}

impl Predictor for LogisticModel {
    fn predict(&self, x: &Matrix) -> Vec<f64> {
        self.decision(x).into_iter().map(sigmoid).collect()
    }
    fn n_features(&self) -> usize {
        self.coef.len()
    }
    fn importance(&self) -> Option<Vec<f64>> {
        Some(
            self.coef
                .iter()
                .zip(&self.feature_std)
                .map(|(c, s)| (c * s).abs())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rng::Rng;

    #[test]
    fn recovers_coefficients_and_is_optimal() {
        let mut rng = Rng::new(1);
        let n = 4000;
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a = rng.normal();
            let b = rng.normal();
            let z = -0.5 + 1.5 * a - 1.0 * b;
            y.push(if rng.uniform() < sigmoid(z) { 1.0 } else { 0.0 });
            rows.push(vec![a, b]);
        }
        let x = Matrix::from_rows(&rows);
        let m = LogisticParams::new().c(1e6).fit(&x, &y, None).unwrap();
        assert!(m.converged);
        assert!((m.coef[0] - 1.5).abs() < 0.15, "{:?}", m.coef);
        assert!((m.coef[1] + 1.0).abs() < 0.15, "{:?}", m.coef);
        assert!((m.intercept + 0.5).abs() < 0.15);
        // Gradient at the optimum is ~0.
        let w = [m.coef[0], m.coef[1], m.intercept];
        let g = evaluate(&x, &y, &vec![1.0; n], &w, 2, 3, 1e-6).grad;
        assert!(g.iter().all(|v| v.abs() < 1e-6), "{g:?}");
    }

    #[test]
    fn softplus_sigmoid_is_bit_identical() {
        let mut rng = Rng::new(7);
        let mut zs: Vec<f64> = (0..20_000).map(|_| 30.0 * rng.normal()).collect();
        zs.extend([
            0.0, -0.0, 35.0, -35.0, 35.5, -35.5, 1e-300, -1e-300, 700.0, -700.0,
        ]);
        for z in zs {
            let (sp, pr) = softplus_sigmoid(z);
            assert_eq!(sp.to_bits(), softplus(z).to_bits(), "softplus({z})");
            assert_eq!(pr.to_bits(), sigmoid(z).to_bits(), "sigmoid({z})");
        }
    }

    #[test]
    fn blocked_pass_equals_row_by_row() {
        // Rows not a multiple of the block, a Hessian subsample (stride 2), with and without
        // an intercept: the blocked pass adds in the same order as the row-by-row one.
        let mut rng = Rng::new(3);
        let (n, p) = (2 * HESSIAN_ROWS + 7, 5);
        let data: Vec<f64> = (0..n * p).map(|_| rng.normal()).collect();
        let x = Matrix::new(n, p, data);
        let y: Vec<f64> = (0..n).map(|i| (i % 3 == 0) as u8 as f64).collect();
        let s: Vec<f64> = (0..n).map(|i| 1.0 + (i % 5) as f64 / 10.0).collect();
        for m in [p, p + 1] {
            let w: Vec<f64> = (0..m).map(|j| 0.3 * j as f64 - 0.5).collect();
            let a = evaluate(&x, &y, &s, &w, p, m, 0.7);
            let b = evaluate_rows(&x, &y, &s, &w, p, m, 0.7);
            assert_eq!(a.obj.to_bits(), b.obj.to_bits());
            assert_eq!(a.grad, b.grad);
            assert_eq!(a.hess, b.hess);
        }
    }

    #[test]
    fn checked_pass_equals_separate_passes() {
        let mut rng = Rng::new(9);
        let (n, p) = (3 * CHUNK + 5, 6);
        let data: Vec<f64> = (0..n * p).map(|_| rng.normal() * 3.0 + 1.0).collect();
        let mut x = Matrix::new(n, p, data);
        let y: Vec<f64> = (0..n).map(|i| (i % 4 == 0) as u8 as f64).collect();
        let s = vec![1.0; n];
        let w: Vec<f64> = (0..=p).map(|j| 0.1 * j as f64).collect();
        let (e, std) = evaluate_checked(&x, &y, &s, &w, p, p + 1, 0.5).unwrap();
        let f = evaluate(&x, &y, &s, &w, p, p + 1, 0.5);
        assert_eq!(e.obj.to_bits(), f.obj.to_bits());
        assert_eq!((e.grad, e.hess), (f.grad, f.hess));
        assert_eq!(std, checked_column_std(&x).unwrap());
        // A value that is not finite: the same error as a separate check.
        x.data[(2 * CHUNK + 7) * p + 4] = f64::INFINITY;
        let err = match evaluate_checked(&x, &y, &s, &w, p, p + 1, 0.5) {
            Err(e) => e,
            Ok(_) => panic!("an infinite value passed the check"),
        };
        assert_eq!(err, checked_column_std(&x).unwrap_err());
        assert!(
            matches!(err, ModelError::Missing { column: 4, .. }),
            "{err}"
        );
        x.data[5 * p + 1] = f64::NAN;
        let err = LogisticParams::new().fit(&x, &y, None).unwrap_err();
        assert!(
            matches!(err, ModelError::Missing { column: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn bad_params_are_named() {
        let e = LogisticParams::new().c(-1.0).validate().unwrap_err();
        assert!(e.to_string().contains("`c`"), "{e}");
    }

    #[test]
    fn separable_data_stays_finite() {
        let x = Matrix::from_rows(&[vec![0.0], vec![1.0], vec![2.0], vec![3.0]]);
        let y = [0.0, 0.0, 1.0, 1.0];
        let m = LogisticParams::new().fit(&x, &y, None).unwrap();
        assert!(m.coef[0].is_finite() && m.coef[0] > 0.0);
    }
}

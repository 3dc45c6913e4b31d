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

use super::{check_binary, check_no_missing, check_xy, invalid, Matrix, ModelResult, Predictor};

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
        check_no_missing("logistic regression", x)?;
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
            let (ws, it, _) = newton(
                &xs,
                &ys,
                &ss,
                w.clone(),
                p,
                inv_c / scale,
                self.max_iter,
                self.tol.max(1e-4),
            );
            w = ws;
            warm_iterations = it;
        }
        let (w, iterations, converged) = newton(x, y, &s, w, p, inv_c, self.max_iter, self.tol);
        crate::log::debug(
            "logistic regression fitted",
            &[
                ("iterations", iterations.into()),
                ("subsample_iterations", warm_iterations.into()),
                ("converged", converged.into()),
            ],
        );
        let std = column_std(x);
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

/// Newton's method with a backtracking line search from `w`; returns the coefficients, the
/// number of iterations and whether the step fell below `tol`.
#[allow(clippy::too_many_arguments)]
fn newton(
    x: &Matrix,
    y: &[f64],
    s: &[f64],
    mut w: Vec<f64>,
    p: usize,
    inv_c: f64,
    max_iter: usize,
    tol: f64,
) -> (Vec<f64>, usize, bool) {
    let m = w.len();
    let mut iterations = 0;
    let mut cur = evaluate(x, y, s, &w, p, m, inv_c);
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

fn column_std(x: &Matrix) -> Vec<f64> {
    let p = x.cols;
    if p == 0 || x.rows == 0 {
        return vec![0.0; p];
    }
    let n = x.rows as f64;
    let parts: Vec<(Vec<f64>, Vec<f64>)> = x
        .data
        .par_chunks(p * CHUNK)
        .map(|chunk| {
            let mut mean = vec![0.0; p];
            let mut sq = vec![0.0; p];
            for row in chunk.chunks(p) {
                for (j, v) in row.iter().enumerate() {
                    mean[j] += v;
                    sq[j] += v * v;
                }
            }
            (mean, sq)
        })
        .collect();
    let mut mean = vec![0.0; p];
    let mut sq = vec![0.0; p];
    for (pm, ps) in parts {
        mean.iter_mut().zip(&pm).for_each(|(a, b)| *a += b);
        sq.iter_mut().zip(&ps).for_each(|(a, b)| *a += b);
    }
    mean.iter()
        .zip(&sq)
        .map(|(m, s)| ((s / n) - (m / n).powi(2)).max(0.0).sqrt())
        .collect()
}

#[inline]
fn linear(row: &[f64], w: &[f64], p: usize) -> f64 {
    let mut z = if w.len() > p { w[p] } else { 0.0 };
    for (a, b) in row.iter().zip(&w[..p]) {
        z += a * b;
    }
    z
}

/// log(1 + exp(z)) without overflow.
#[inline]
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

/// One pass over the data: objective `sum_i s_i loss_i + |w|^2 / (2C)`, its gradient, and its
/// Hessian (on an evenly strided subsample beyond `HESSIAN_ROWS` rows, scaled up). Chunks are
/// reduced in a fixed order, so the result does not depend on the number of threads.
fn evaluate(x: &Matrix, y: &[f64], s: &[f64], w: &[f64], p: usize, m: usize, inv_c: f64) -> Eval {
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
                // logloss = softplus(z) - y z
                obj += s[i] * (softplus(z) - y[i] * z);
                let pr = sigmoid(z);
                let r = s[i] * (pr - y[i]);
                for (gj, xj) in g[..p].iter_mut().zip(row) {
                    *gj += r * xj;
                }
                if m > p {
                    g[p] += r;
                }
                if i % stride != 0 {
                    continue;
                }
                xr[..p].copy_from_slice(row);
                let d = s[i] * pr * (1.0 - pr);
                for j in 0..m {
                    let dj = d * xr[j];
                    let hrow = &mut h[j * m + j..(j + 1) * m];
                    for (hk, xk) in hrow.iter_mut().zip(&xr[j..]) {
                        *hk += dj * xk;
                    }
                }
            }
            (obj, g, h)
        })
        .collect();
    let mut obj = 0.0;
    let mut g = vec![0.0; m];
    let mut h = vec![0.0; m * m];
    for (po, pg, ph) in parts {
        obj += po;
        g.iter_mut().zip(&pg).for_each(|(a, b)| *a += b);
        h.iter_mut().zip(&ph).for_each(|(a, b)| *a += b);
    }
    let scale = x.rows as f64 / x.rows.div_ceil(stride) as f64;
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

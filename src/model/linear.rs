//! Linear regression with an optional ridge penalty, in closed form on the normal equations
//! (centred, so the intercept is not penalised). Used for the credit-limit model.

use serde::{Deserialize, Serialize};

use super::{check_no_missing, check_xy, invalid, Matrix, ModelResult, Predictor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinearParams {
    /// Ridge penalty (scikit-learn's `alpha`); 0 is ordinary least squares.
    pub alpha: f64,
}

impl Default for LinearParams {
    fn default() -> Self {
        LinearParams { alpha: 0.0 }
    }
}

impl LinearParams {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = a;
        self
    }
    pub fn validate(&self) -> ModelResult<()> {
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return Err(invalid(
                "alpha",
                self.alpha,
                "a number >= 0 (ridge penalty)",
            ));
        }
        Ok(())
    }

    pub fn fit(&self, x: &Matrix, y: &[f64], weights: Option<&[f64]>) -> ModelResult<LinearModel> {
        self.validate()?;
        check_xy(x, y, weights)?;
        check_no_missing("linear regression", x)?;
        let (n, p) = (x.rows, x.cols);
        let w = |i: usize| weights.map_or(1.0, |w| w[i]);
        let sw: f64 = (0..n).map(w).sum();
        let mut xm = vec![0.0; p];
        let mut ym = 0.0;
        for i in 0..n {
            for (j, v) in x.row(i).iter().enumerate() {
                xm[j] += w(i) * v;
            }
            ym += w(i) * y[i];
        }
        xm.iter_mut().for_each(|v| *v /= sw);
        ym /= sw;
        let mut a = vec![0.0; p * p];
        let mut b = vec![0.0; p];
        let mut xc = vec![0.0; p];
        for i in 0..n {
            for (j, v) in x.row(i).iter().enumerate() {
                xc[j] = v - xm[j];
            }
            let wi = w(i);
            let yc = y[i] - ym;
            for j in 0..p {
                b[j] += wi * xc[j] * yc;
                for k in j..p {
                    a[j * p + k] += wi * xc[j] * xc[k];
                }
            }
        }
        for j in 0..p {
            for k in 0..j {
                a[j * p + k] = a[k * p + j];
            }
            a[j * p + j] += self.alpha;
        }
        let coef = super::linalg::solve_spd_regularised(&a, &b, p);
        let intercept = ym - coef.iter().zip(&xm).map(|(c, m)| c * m).sum::<f64>();
        let std = (0..p)
            .map(|j| (a[j * p + j] - self.alpha).max(0.0).sqrt() / sw.sqrt())
            .collect();
        Ok(LinearModel {
            coef,
            intercept,
            feature_std: std,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub coef: Vec<f64>,
    pub intercept: f64,
    pub feature_std: Vec<f64>,
}

impl Predictor for LinearModel {
    fn predict(&self, x: &Matrix) -> Vec<f64> {
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

    #[test]
    fn exact_fit_and_ridge_shrinks() {
        let x = Matrix::from_rows(&[
            vec![1.0, 0.0],
            vec![2.0, 1.0],
            vec![3.0, 5.0],
            vec![4.0, 2.0],
        ]);
        let y: Vec<f64> = (0..4)
            .map(|i| 1.0 + 2.0 * x.get(i, 0) - 3.0 * x.get(i, 1))
            .collect();
        let m = LinearParams::new().fit(&x, &y, None).unwrap();
        assert!((m.coef[0] - 2.0).abs() < 1e-9 && (m.coef[1] + 3.0).abs() < 1e-9);
        assert!((m.intercept - 1.0).abs() < 1e-9);
        let r = LinearParams::new().alpha(10.0).fit(&x, &y, None).unwrap();
        assert!(r.coef[1].abs() < 3.0);
        assert!(LinearParams::new().alpha(-1.0).validate().is_err());
    }
}

//! Feature transforms: PCA (eigen-decomposition of the covariance, equivalently the SVD of the
//! centred data) and FastICA (symmetric, log-cosh contrast) on top of PCA whitening.

use serde::{Deserialize, Serialize};

use super::linalg::symmetric_eigen;
use super::rng::Rng;
use super::{check_no_missing, invalid, Matrix, ModelError, ModelResult, Transform};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PcaParams {
    pub n_components: usize,
    /// Divide each column by its standard deviation first (PCA on the correlation matrix).
    pub scale: bool,
}

impl Default for PcaParams {
    fn default() -> Self {
        PcaParams {
            n_components: 2,
            scale: true,
        }
    }
}

fn moments(x: &Matrix) -> (Vec<f64>, Vec<f64>) {
    let n = x.rows as f64;
    let mut mean = vec![0.0; x.cols];
    for i in 0..x.rows {
        for (m, v) in mean.iter_mut().zip(x.row(i)) {
            *m += v / n;
        }
    }
    let mut var = vec![0.0; x.cols];
    for i in 0..x.rows {
        for ((s, v), m) in var.iter_mut().zip(x.row(i)).zip(&mean) {
            *s += (v - m) * (v - m) / n;
        }
    }
    (mean, var.into_iter().map(f64::sqrt).collect())
}

fn covariance(x: &Matrix, mean: &[f64], scale: &[f64]) -> Vec<f64> {
    let p = x.cols;
    let mut c = vec![0.0; p * p];
    let mut z = vec![0.0; p];
    for i in 0..x.rows {
        for j in 0..p {
            z[j] = (x.get(i, j) - mean[j]) / scale[j];
        }
        for j in 0..p {
            for k in j..p {
                c[j * p + k] += z[j] * z[k];
            }
        }
    }
    let n = (x.rows as f64 - 1.0).max(1.0);
    for j in 0..p {
        for k in j..p {
            c[j * p + k] /= n;
            c[k * p + j] = c[j * p + k];
        }
    }
    c
}

impl PcaParams {
    pub fn new(n: usize) -> Self {
        PcaParams {
            n_components: n,
            ..Self::default()
        }
    }
    pub fn validate(&self, cols: usize) -> ModelResult<()> {
        if self.n_components == 0 || self.n_components > cols {
            return Err(invalid(
                "n_components",
                self.n_components,
                &format!("an integer in 1..={cols} (the number of input columns)"),
            ));
        }
        Ok(())
    }

    pub fn fit(&self, x: &Matrix) -> ModelResult<PcaModel> {
        self.validate(x.cols)?;
        check_no_missing("PCA", x)?;
        if x.rows < 2 {
            return Err(ModelError::Data("PCA needs at least 2 rows".into()));
        }
        let (mean, sd) = moments(x);
        let scale: Vec<f64> = if self.scale {
            sd.iter().map(|s| if *s > 0.0 { *s } else { 1.0 }).collect()
        } else {
            vec![1.0; x.cols]
        };
        let cov = covariance(x, &mean, &scale);
        let (vals, vecs) = symmetric_eigen(&cov, x.cols);
        let total: f64 = vals.iter().map(|v| v.max(0.0)).sum::<f64>().max(1e-300);
        let k = self.n_components;
        Ok(PcaModel {
            mean,
            scale,
            components: vecs[..k].to_vec(),
            explained_variance: vals[..k].to_vec(),
            explained_variance_ratio: vals[..k].iter().map(|v| v.max(0.0) / total).collect(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PcaModel {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    /// One row per component (unit vectors).
    pub components: Vec<Vec<f64>>,
    pub explained_variance: Vec<f64>,
    pub explained_variance_ratio: Vec<f64>,
}

impl Transform for PcaModel {
    fn transform(&self, x: &Matrix) -> Matrix {
        let k = self.components.len();
        let mut out = Vec::with_capacity(x.rows * k);
        for i in 0..x.rows {
            let row = x.row(i);
            for c in &self.components {
                out.push(
                    row.iter()
                        .zip(c)
                        .enumerate()
                        .map(|(j, (v, w))| (v - self.mean[j]) / self.scale[j] * w)
                        .sum(),
                );
            }
        }
        Matrix::new(x.rows, k, out)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IcaParams {
    pub n_components: usize,
    pub max_iter: usize,
    pub tol: f64,
    pub seed: u64,
}

impl Default for IcaParams {
    fn default() -> Self {
        IcaParams {
            n_components: 2,
            max_iter: 200,
            tol: 1e-5,
            seed: 0,
        }
    }
}

/// `W <- (W W')^{-1/2} W` for a k x k row-major `w`.
fn sym_decorrelate(w: &[f64], k: usize) -> Vec<f64> {
    let mut wwt = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            wwt[i * k + j] = (0..k).map(|l| w[i * k + l] * w[j * k + l]).sum();
        }
    }
    let (vals, vecs) = symmetric_eigen(&wwt, k);
    // (W W')^{-1/2} = V diag(1/sqrt(l)) V'
    let mut inv = vec![0.0; k * k];
    for (l, v) in vals.iter().zip(&vecs) {
        let s = 1.0 / l.max(1e-300).sqrt();
        for i in 0..k {
            for j in 0..k {
                inv[i * k + j] += s * v[i] * v[j];
            }
        }
    }
    let mut out = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            out[i * k + j] = (0..k).map(|l| inv[i * k + l] * w[l * k + j]).sum();
        }
    }
    out
}

impl IcaParams {
    pub fn new(n: usize) -> Self {
        IcaParams {
            n_components: n,
            ..Self::default()
        }
    }
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }

    pub fn fit(&self, x: &Matrix) -> ModelResult<IcaModel> {
        if self.max_iter == 0 {
            return Err(invalid("max_iter", self.max_iter, "an integer >= 1"));
        }
        let pca = PcaParams {
            n_components: self.n_components,
            scale: false,
        }
        .fit(x)?;
        let k = self.n_components;
        // Whitened data: PCA scores divided by sqrt(eigenvalue).
        let mut z = pca.transform(x);
        let whiten: Vec<f64> = pca
            .explained_variance
            .iter()
            .map(|v| 1.0 / v.max(1e-12).sqrt())
            .collect();
        for i in 0..z.rows {
            for j in 0..k {
                z.data[i * k + j] *= whiten[j];
            }
        }
        let mut rng = Rng::new(self.seed);
        let mut w: Vec<f64> = (0..k * k).map(|_| rng.normal()).collect();
        w = sym_decorrelate(&w, k);
        let n = z.rows as f64;
        let mut iterations = 0;
        for _ in 0..self.max_iter {
            iterations += 1;
            let mut new = vec![0.0; k * k];
            let mut gp_mean = vec![0.0; k];
            for i in 0..z.rows {
                let row = z.row(i);
                for c in 0..k {
                    let u: f64 = (0..k).map(|l| w[c * k + l] * row[l]).sum();
                    let t = u.tanh();
                    gp_mean[c] += (1.0 - t * t) / n;
                    for l in 0..k {
                        new[c * k + l] += t * row[l] / n;
                    }
                }
            }
            for c in 0..k {
                for l in 0..k {
                    new[c * k + l] -= gp_mean[c] * w[c * k + l];
                }
            }
            let new = sym_decorrelate(&new, k);
            let lim = (0..k)
                .map(|c| {
                    let d: f64 = (0..k).map(|l| new[c * k + l] * w[c * k + l]).sum();
                    (d.abs() - 1.0).abs()
                })
                .fold(0.0, f64::max);
            w = new;
            if lim < self.tol {
                break;
            }
        }
        // Unmixing on the original (centred) inputs: W * diag(whiten) * components.
        let p = x.cols;
        let mut unmixing = vec![vec![0.0; p]; k];
        for c in 0..k {
            for j in 0..p {
                unmixing[c][j] = (0..k)
                    .map(|l| w[c * k + l] * whiten[l] * pca.components[l][j])
                    .sum();
            }
        }
        Ok(IcaModel {
            mean: pca.mean,
            unmixing,
            iterations,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IcaModel {
    pub mean: Vec<f64>,
    /// One row per independent component, applied to centred inputs.
    pub unmixing: Vec<Vec<f64>>,
    pub iterations: usize,
}

impl Transform for IcaModel {
    fn transform(&self, x: &Matrix) -> Matrix {
        let k = self.unmixing.len();
        let mut out = Vec::with_capacity(x.rows * k);
        for i in 0..x.rows {
            let row = x.row(i);
            for u in &self.unmixing {
                out.push(
                    row.iter()
                        .zip(u)
                        .zip(&self.mean)
                        .map(|((v, w), m)| (v - m) * w)
                        .sum(),
                );
            }
        }
        Matrix::new(x.rows, k, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_main_axis() {
        let mut rng = Rng::new(2);
        let rows: Vec<Vec<f64>> = (0..500)
            .map(|_| {
                let t = rng.normal() * 3.0;
                vec![t, t + 0.1 * rng.normal()]
            })
            .collect();
        let m = PcaParams {
            n_components: 1,
            scale: false,
        }
        .fit(&Matrix::from_rows(&rows))
        .unwrap();
        let c = &m.components[0];
        assert!((c[0].abs() - c[1].abs()).abs() < 0.05);
        assert!(m.explained_variance_ratio[0] > 0.99);
        assert!(PcaParams::new(3).fit(&Matrix::from_rows(&rows)).is_err());
    }

    #[test]
    fn ica_unmixes_two_sources() {
        let mut rng = Rng::new(5);
        let n = 2000;
        let s1: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.1).sin()).collect();
        let s2: Vec<f64> = (0..n).map(|_| rng.uniform() * 2.0 - 1.0).collect();
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|i| vec![s1[i] + 0.5 * s2[i], 0.4 * s1[i] + s2[i]])
            .collect();
        let x = Matrix::from_rows(&rows);
        let m = IcaParams::new(2).seed(1).fit(&x).unwrap();
        let out = m.transform(&x);
        let corr = |a: &[f64], b: &[f64]| {
            let ma = a.iter().sum::<f64>() / a.len() as f64;
            let mb = b.iter().sum::<f64>() / b.len() as f64;
            let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
            let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
            let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
            cov / (va * vb).sqrt()
        };
        let c0 = out.column(0);
        let c1 = out.column(1);
        let best = corr(&c0, &s1).abs().max(corr(&c1, &s1).abs());
        assert!(best > 0.95, "{best}");
    }
}

//! Clustering: k-means (k-means++ seeding, Lloyd iterations, best of `n_init` runs) for
//! segments, and DBSCAN for anomaly flags (label -1 = noise). Inputs scaled, no missing values.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::rng::Rng;
use super::{check_no_missing, invalid, Matrix, ModelError, ModelResult};

#[inline]
fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KMeansParams {
    pub k: usize,
    pub max_iter: usize,
    pub n_init: usize,
    pub tol: f64,
    pub seed: u64,
}

impl Default for KMeansParams {
    fn default() -> Self {
        KMeansParams {
            k: 5,
            max_iter: 300,
            n_init: 3,
            tol: 1e-6,
            seed: 0,
        }
    }
}

impl KMeansParams {
    pub fn new(k: usize) -> Self {
        KMeansParams {
            k,
            ..Self::default()
        }
    }
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    pub fn validate(&self) -> ModelResult<()> {
        if self.k == 0 {
            return Err(invalid("k", self.k, "an integer >= 1"));
        }
        if self.max_iter == 0 {
            return Err(invalid("max_iter", self.max_iter, "an integer >= 1"));
        }
        if self.n_init == 0 {
            return Err(invalid("n_init", self.n_init, "an integer >= 1"));
        }
        Ok(())
    }

    pub fn fit(&self, x: &Matrix) -> ModelResult<KMeansModel> {
        self.validate()?;
        check_no_missing("k-means", x)?;
        if x.rows < self.k {
            return Err(ModelError::Data(format!(
                "k-means with k = {} needs at least {} rows, got {}",
                self.k, self.k, x.rows
            )));
        }
        let mut rng = Rng::new(self.seed);
        let mut best: Option<KMeansModel> = None;
        for _ in 0..self.n_init {
            let m = self.run_once(x, &mut rng);
            if best.as_ref().is_none_or(|b| m.inertia < b.inertia) {
                best = Some(m);
            }
        }
        Ok(best.unwrap())
    }

    fn run_once(&self, x: &Matrix, rng: &mut Rng) -> KMeansModel {
        let (n, p, k) = (x.rows, x.cols, self.k);
        // k-means++ seeding.
        let mut centers: Vec<f64> = x.row(rng.below(n)).to_vec();
        let mut d: Vec<f64> = (0..n).map(|i| dist2(x.row(i), &centers[..p])).collect();
        for _ in 1..k {
            let total: f64 = d.iter().sum();
            let mut t = rng.uniform() * total;
            let mut pick = n - 1;
            for (i, di) in d.iter().enumerate() {
                t -= di;
                if t <= 0.0 {
                    pick = i;
                    break;
                }
            }
            let c = x.row(pick).to_vec();
            for i in 0..n {
                d[i] = d[i].min(dist2(x.row(i), &c));
            }
            centers.extend_from_slice(&c);
        }
        let mut labels = vec![0usize; n];
        let mut iterations = 0;
        for _ in 0..self.max_iter {
            iterations += 1;
            labels = assign(x, &centers, k);
            let mut sums = vec![0.0; k * p];
            let mut counts = vec![0usize; k];
            for i in 0..n {
                let l = labels[i];
                counts[l] += 1;
                for (s, v) in sums[l * p..(l + 1) * p].iter_mut().zip(x.row(i)) {
                    *s += v;
                }
            }
            let mut shift = 0.0f64;
            for c in 0..k {
                if counts[c] == 0 {
                    continue; // keep an empty cluster's centre where it was
                }
                for j in 0..p {
                    let v = sums[c * p + j] / counts[c] as f64;
                    shift = shift.max((v - centers[c * p + j]).abs());
                    centers[c * p + j] = v;
                }
            }
            if shift < self.tol {
                break;
            }
        }
        labels = assign(x, &centers, k);
        let inertia = (0..n)
            .map(|i| dist2(x.row(i), &centers[labels[i] * p..(labels[i] + 1) * p]))
            .sum();
        let mut sizes = vec![0u64; k];
        labels.iter().for_each(|&l| sizes[l] += 1);
        KMeansModel {
            centers: Matrix::new(k, p, centers),
            inertia,
            iterations,
            sizes,
        }
    }
}

fn assign(x: &Matrix, centers: &[f64], k: usize) -> Vec<usize> {
    let p = x.cols;
    (0..x.rows)
        .into_par_iter()
        .map(|i| {
            let row = x.row(i);
            (0..k)
                .map(|c| (c, dist2(row, &centers[c * p..(c + 1) * p])))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(0, |(c, _)| c)
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansModel {
    pub centers: Matrix,
    /// Sum of squared distances to the nearest centre on the training data.
    pub inertia: f64,
    pub iterations: usize,
    pub sizes: Vec<u64>,
}

impl KMeansModel {
    pub fn predict(&self, x: &Matrix) -> Vec<usize> {
        assign(x, &self.centers.data, self.centers.rows)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbscanParams {
    pub eps: f64,
    pub min_samples: usize,
    /// Refuse larger inputs (brute-force neighbours are quadratic).
    pub max_rows: usize,
}

impl Default for DbscanParams {
    fn default() -> Self {
        DbscanParams {
            eps: 0.5,
            min_samples: 5,
            max_rows: 50_000,
        }
    }
}

impl DbscanParams {
    pub fn new(eps: f64, min_samples: usize) -> Self {
        DbscanParams {
            eps,
            min_samples,
            ..Self::default()
        }
    }
    pub fn validate(&self) -> ModelResult<()> {
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(invalid("eps", self.eps, "a positive number"));
        }
        if self.min_samples == 0 {
            return Err(invalid("min_samples", self.min_samples, "an integer >= 1"));
        }
        Ok(())
    }

    pub fn fit(&self, x: &Matrix) -> ModelResult<DbscanModel> {
        self.validate()?;
        check_no_missing("DBSCAN", x)?;
        if x.rows > self.max_rows {
            return Err(ModelError::Data(format!(
                "DBSCAN on {} rows exceeds max_rows = {} (sample the input first)",
                x.rows, self.max_rows
            )));
        }
        let n = x.rows;
        let e2 = self.eps * self.eps;
        let neighbours: Vec<Vec<u32>> = (0..n)
            .into_par_iter()
            .map(|i| {
                (0..n)
                    .filter(|&j| dist2(x.row(i), x.row(j)) <= e2)
                    .map(|j| j as u32)
                    .collect()
            })
            .collect();
        let core: Vec<bool> = neighbours
            .iter()
            .map(|v| v.len() >= self.min_samples)
            .collect();
        let mut labels = vec![-1i64; n];
        let mut cluster = 0i64;
        for i in 0..n {
            if labels[i] != -1 || !core[i] {
                continue;
            }
            labels[i] = cluster;
            let mut stack = vec![i];
            while let Some(q) = stack.pop() {
                if !core[q] {
                    continue;
                }
                for &j in &neighbours[q] {
                    let j = j as usize;
                    if labels[j] == -1 {
                        labels[j] = cluster;
                        stack.push(j);
                    }
                }
            }
            cluster += 1;
        }
        let core_idx: Vec<usize> = (0..n).filter(|&i| core[i]).collect();
        Ok(DbscanModel {
            eps: self.eps,
            n_clusters: cluster as usize,
            noise: labels.iter().filter(|&&l| l == -1).count() as u64,
            core_points: x.select_rows(&core_idx),
            core_labels: core_idx.iter().map(|&i| labels[i]).collect(),
            labels,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbscanModel {
    pub eps: f64,
    pub n_clusters: usize,
    pub noise: u64,
    /// Labels of the training rows (-1 = noise).
    #[serde(skip)]
    pub labels: Vec<i64>,
    pub core_points: Matrix,
    pub core_labels: Vec<i64>,
}

impl DbscanModel {
    /// New rows join the cluster of the nearest core point within `eps`, else noise (-1).
    pub fn predict(&self, x: &Matrix) -> Vec<i64> {
        let e2 = self.eps * self.eps;
        (0..x.rows)
            .into_par_iter()
            .map(|i| {
                (0..self.core_points.rows)
                    .map(|c| (c, dist2(x.row(i), self.core_points.row(c))))
                    .filter(|(_, d)| *d <= e2)
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map_or(-1, |(c, _)| self.core_labels[c])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> Matrix {
        let mut rng = Rng::new(9);
        let mut rows = Vec::new();
        for c in [0.0, 10.0, 20.0] {
            for _ in 0..50 {
                rows.push(vec![c + 0.3 * rng.normal(), c + 0.3 * rng.normal()]);
            }
        }
        rows.push(vec![100.0, -100.0]);
        Matrix::from_rows(&rows)
    }

    #[test]
    fn kmeans_finds_blobs_reproducibly() {
        let x = blobs();
        let m = KMeansParams::new(4).seed(1).fit(&x).unwrap();
        let l = m.predict(&x);
        assert!(l[..50].iter().all(|&v| v == l[0]));
        assert!(l[50..100].iter().all(|&v| v == l[50]) && l[50] != l[0]);
        assert_eq!(m, KMeansParams::new(4).seed(1).fit(&x).unwrap());
    }

    #[test]
    fn dbscan_flags_the_outlier() {
        let x = blobs();
        let m = DbscanParams::new(1.0, 5).fit(&x).unwrap();
        assert_eq!(m.n_clusters, 3);
        assert_eq!(m.labels[150], -1);
        assert_eq!(m.noise, 1);
        assert_eq!(
            m.predict(&Matrix::from_rows(&[vec![0.1, 0.0], vec![50.0, 50.0]]))[1],
            -1
        );
    }
}

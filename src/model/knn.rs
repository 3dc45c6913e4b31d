//! k-nearest neighbours (Euclidean, brute force in parallel). Inputs should be scaled and free
//! of missing values (the ad hoc pipeline standardises and imputes). To bound memory and time
//! the reference set is a seeded random sample of at most `max_reference_rows` rows (20,000).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{check_no_missing, check_xy, invalid, Matrix, ModelResult, Predictor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KnnWeights {
    Uniform,
    Distance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KnnParams {
    pub k: usize,
    pub weights: KnnWeights,
    pub max_reference_rows: usize,
    pub seed: u64,
}

impl Default for KnnParams {
    fn default() -> Self {
        KnnParams {
            k: 25,
            weights: KnnWeights::Uniform,
            max_reference_rows: 20_000,
            seed: 0,
        }
    }
}

impl KnnParams {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    pub fn validate(&self) -> ModelResult<()> {
        if self.k == 0 {
            return Err(invalid("k", self.k, "an integer >= 1"));
        }
        if self.max_reference_rows < self.k {
            return Err(invalid(
                "max_reference_rows",
                self.max_reference_rows,
                "an integer >= k",
            ));
        }
        Ok(())
    }

    pub fn fit(&self, x: &Matrix, y: &[f64]) -> ModelResult<KnnModel> {
        self.validate()?;
        check_xy(x, y, None)?;
        check_no_missing("k-nearest neighbours", x)?;
        let idx: Vec<usize> = if x.rows > self.max_reference_rows {
            let mut s = super::rng::Rng::new(self.seed).sample(x.rows, self.max_reference_rows);
            s.sort_unstable();
            s
        } else {
            (0..x.rows).collect()
        };
        Ok(KnnModel {
            k: self.k.min(idx.len()),
            weights: self.weights,
            reference: x.select_rows(&idx),
            target: idx.iter().map(|&i| y[i]).collect(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnnModel {
    pub k: usize,
    pub weights: KnnWeights,
    pub reference: Matrix,
    pub target: Vec<f64>,
}

impl Predictor for KnnModel {
    fn predict(&self, x: &Matrix) -> Vec<f64> {
        let refm = &self.reference;
        (0..x.rows)
            .into_par_iter()
            .map_init(
                || Vec::with_capacity(refm.rows),
                |d: &mut Vec<(f64, u32)>, i| {
                    let q = x.row(i);
                    d.clear();
                    for r in 0..refm.rows {
                        let row = refm.row(r);
                        let mut s = 0.0;
                        for (a, b) in q.iter().zip(row) {
                            let t = if a.is_nan() { 0.0 } else { a - b };
                            s += t * t;
                        }
                        d.push((s, r as u32));
                    }
                    let k = self.k;
                    d.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    let (mut num, mut den) = (0.0, 0.0);
                    for &(dist, r) in &d[..k] {
                        let w = match self.weights {
                            KnnWeights::Uniform => 1.0,
                            KnnWeights::Distance => 1.0 / (dist.sqrt() + 1e-9),
                        };
                        num += w * self.target[r as usize];
                        den += w;
                    }
                    num / den
                },
            )
            .collect()
    }
    fn n_features(&self) -> usize {
        self.reference.cols
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_vote() {
        let x = Matrix::from_rows(&[
            vec![0.0],
            vec![0.1],
            vec![0.2],
            vec![5.0],
            vec![5.1],
            vec![5.2],
        ]);
        let y = [0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let m = KnnParams::new().k(3).fit(&x, &y).unwrap();
        let p = m.predict(&Matrix::from_rows(&[vec![0.05], vec![5.05]]));
        assert!((p[0] - 1.0 / 3.0).abs() < 1e-12 && p[1] == 1.0);
        assert!(KnnParams::new().k(0).validate().is_err());
    }
}

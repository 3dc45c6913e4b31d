//! Reason codes: the raw inputs that pushed an applicant's probability of default up the most.
//!
//! - scorecard: the features that cost the most points against their best bin;
//! - logistic regression: coefficient × standardised input (missing flags count for their
//!   input);
//! - GBDT: path attribution (Saabas): each split's change of node value goes to its feature;
//! - anything else: the change of the prediction when the input is set to its training median.

use crate::model::pipeline::{Baseline, TrainedModel};
use crate::model::prep::{ColumnPrep, PrepMode};
use crate::model::{FittedModel, Matrix};
use rayon::prelude::*;

/// For each model input after preparation, the raw input it comes from.
fn output_sources(model: &TrainedModel) -> Vec<usize> {
    match &model.prep {
        None => (0..model.input_names.len()).collect(),
        Some(p) => {
            let mut out = Vec::with_capacity(p.output_names.len());
            for (j, c) in p.columns.iter().enumerate() {
                out.push(j);
                if let ColumnPrep::Numeric {
                    flag_missing: true, ..
                } = c
                {
                    if p.mode == PrepMode::Scaled {
                        out.push(j);
                    }
                }
            }
            out
        }
    }
}

/// The `top` raw inputs with the largest positive contribution to risk, per row of `x` (raw
/// inputs in `model.input_names` order), with the probability of default of each row.
pub fn explain(
    model: &TrainedModel,
    x: &Matrix,
    baseline: Option<&Baseline>,
    top: usize,
) -> (Vec<f64>, Vec<Vec<u32>>) {
    let n_in = model.input_names.len();
    let pick = |contrib: &[f64]| -> Vec<u32> {
        let mut idx: Vec<u32> = (0..contrib.len() as u32)
            .filter(|&j| contrib[j as usize] > 1e-12)
            .collect();
        idx.sort_by(|&a, &b| {
            contrib[b as usize]
                .total_cmp(&contrib[a as usize])
                .then(a.cmp(&b))
        });
        idx.truncate(top);
        idx
    };
    match &model.model {
        FittedModel::Scorecard(sc) => {
            // Points lost against each feature's best bin; one bin lookup per feature gives
            // both the reasons and the log-odds.
            let best: Vec<f64> = sc
                .features
                .iter()
                .map(|f| f.points.iter().cloned().fold(f64::NEG_INFINITY, f64::max))
                .collect();
            let rows: Vec<(f64, Vec<u32>)> = (0..x.rows)
                .into_par_iter()
                .map(|i| {
                    let row = x.row(i);
                    let mut c = vec![0.0; n_in];
                    let mut logit = sc.intercept;
                    for (f, b) in sc.features.iter().zip(&best) {
                        let k = f.binning.bin_of(row[f.binning.column]);
                        logit += f.coef * f.binning.bins[k].woe;
                        c[f.binning.column] += b - f.points[k];
                    }
                    (1.0 / (1.0 + (-logit).exp()), pick(&c))
                })
                .collect();
            rows.into_iter().unzip()
        }
        FittedModel::Logistic(m) => {
            let z = model.prepare(x);
            let src = output_sources(model);
            let rows: Vec<(f64, Vec<u32>)> = (0..z.rows)
                .into_par_iter()
                .map(|i| {
                    let row = z.row(i);
                    let mut c = vec![0.0; n_in];
                    let mut logit = m.intercept;
                    for (k, (&v, &b)) in row.iter().zip(&m.coef).enumerate() {
                        logit += v * b;
                        c[src[k]] += v * b;
                    }
                    (1.0 / (1.0 + (-logit).exp()), pick(&c))
                })
                .collect();
            rows.into_iter().unzip()
        }
        FittedModel::Gbdt(g) => {
            let z = model.prepare(x);
            let src = output_sources(model);
            let rows: Vec<(f64, Vec<u32>)> = (0..z.rows)
                .into_par_iter()
                .map(|i| {
                    let row = z.row(i);
                    let mut c = vec![0.0; n_in];
                    let mut raw = g.base_score;
                    for t in &g.trees {
                        let mut k = 0usize;
                        raw += t.nodes[0].value;
                        loop {
                            let n = &t.nodes[k];
                            if n.is_leaf() {
                                break;
                            }
                            let v = row[n.feature as usize];
                            let left = if v.is_nan() {
                                n.missing_left
                            } else {
                                v <= n.threshold
                            };
                            let next = if left { n.left } else { n.right } as usize;
                            let d = t.nodes[next].value - n.value;
                            raw += d;
                            c[src[n.feature as usize]] += d;
                            k = next;
                        }
                    }
                    (1.0 / (1.0 + (-raw).exp()), pick(&c))
                })
                .collect();
            rows.into_iter().unzip()
        }
        _ => {
            let pd = model.predict(x);
            let Some(b) = baseline else {
                return (pd, vec![Vec::new(); x.rows]);
            };
            let mut contrib = vec![0.0; x.rows * n_in];
            for j in 0..n_in {
                let median = b.features.get(j).map(|f| f.1.median).unwrap_or(f64::NAN);
                let mut xj = x.clone();
                for i in 0..x.rows {
                    xj.data[i * x.cols + j] = median;
                }
                let pj = model.predict(&xj);
                for i in 0..x.rows {
                    contrib[i * n_in + j] = pd[i] - pj[i];
                }
            }
            let reasons = (0..x.rows)
                .map(|i| pick(&contrib[i * n_in..(i + 1) * n_in]))
                .collect();
            (pd, reasons)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pipeline::{train, Algo, MissingPolicy, Split, TrainSpec};
    use polars::prelude::*;

    fn frame() -> DataFrame {
        // Risk grows with `debt`, falls with `income`; `noise` is noise.
        let mut rng = crate::model::rng::Rng::new(3);
        let n = 3000;
        let (mut debt, mut income, mut noise, mut y) = (vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            let d = rng.normal();
            let inc = rng.normal();
            let z = 1.5 * d - 1.0 * inc - 1.0;
            debt.push(d);
            income.push(inc);
            noise.push(rng.normal());
            y.push((rng.uniform() < 1.0 / (1.0 + (-z).exp())) as i32);
        }
        df!("debt" => debt, "income" => income, "noise" => noise, "y" => y).unwrap()
    }

    #[test]
    fn reasons_name_the_inputs_that_raise_risk() {
        let df = frame();
        for algo in [Algo::Logistic, Algo::Gbdt, Algo::Scorecard, Algo::Tree] {
            let spec = TrainSpec {
                algo,
                params: serde_json::json!({}),
                target: Some("y".into()),
                features: None,
                exclude: vec![],
                categorical: vec![],
                split: Split::Stratified { test_size: 0.3 },
                seed: 1,
                missing: MissingPolicy::Keep,
            };
            let out = train(&df, &spec).unwrap();
            let m = &out.trained;
            let x = crate::model::prep::encode_like(&df, &m.input_names, &m.input_kinds).unwrap();
            let (pd, reasons) = explain(m, &x, out.baseline.as_ref(), 3);
            // The explained probabilities are the model's own.
            let p = m.predict(&x);
            for (a, b) in pd.iter().zip(&p) {
                assert!((a - b).abs() < 1e-9, "{algo:?}: {a} vs {b}");
            }
            // A high-debt, low-income row: debt and income are its reasons, noise is not first.
            let debt = m.input_names.iter().position(|n| n == "debt").unwrap() as u32;
            let income = m.input_names.iter().position(|n| n == "income").unwrap() as u32;
            let risky: Vec<usize> = (0..x.rows)
                .filter(|&i| x.row(i)[debt as usize] > 1.5 && x.row(i)[income as usize] < -1.5)
                .collect();
            assert!(!risky.is_empty());
            for i in risky {
                let r = &reasons[i];
                assert!(
                    r.first() == Some(&debt) || r.first() == Some(&income),
                    "{algo:?}: {r:?}"
                );
                assert!(r.len() <= 3);
            }
        }
    }
}

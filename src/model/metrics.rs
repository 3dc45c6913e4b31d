//! Evaluation: AUC, KS, Gini, log loss, Brier, confusion matrix and precision/recall/F1 at
//! cut-offs, lift/gains by decile, PSI (overall and per feature), RMSE/MAE/R².
//!
//! Conventions: `y` is 0/1 with 1 the event (default, "bad"); `p` is the predicted probability
//! of the event (any score that grows with risk works for the rank metrics).

use serde::{Deserialize, Serialize};

/// Area under the ROC curve (Mann-Whitney, ties counted half). 0.5 when a class is absent.
pub fn auc(y: &[f64], p: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let (mut rank_sum, mut n_pos) = (0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && p[idx[j + 1]] == p[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if y[k] == 1.0 {
                rank_sum += avg_rank;
                n_pos += 1.0;
            }
        }
        i = j + 1;
    }
    let n_neg = y.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return 0.5;
    }
    (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

pub fn gini(y: &[f64], p: &[f64]) -> f64 {
    2.0 * auc(y, p) - 1.0
}

/// Points of the ROC curve, from (0,0) to (1,1), one per distinct score: (fpr, tpr, threshold).
pub fn roc_curve(y: &[f64], p: &[f64]) -> Vec<(f64, f64, f64)> {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let n_pos = y.iter().filter(|&&v| v == 1.0).count() as f64;
    let n_neg = y.len() as f64 - n_pos;
    let mut out = vec![(0.0, 0.0, f64::INFINITY)];
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let t = p[idx[i]];
        while i < idx.len() && p[idx[i]] == t {
            if y[idx[i]] == 1.0 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        out.push((fp / n_neg.max(1.0), tp / n_pos.max(1.0), t));
    }
    out
}

/// Kolmogorov-Smirnov statistic: the largest gap between the cumulative score distributions
/// of events and non-events (= max |TPR - FPR|).
pub fn ks(y: &[f64], p: &[f64]) -> f64 {
    roc_curve(y, p)
        .iter()
        .map(|(f, t, _)| (t - f).abs())
        .fold(0.0, f64::max)
}

/// Mean binary cross-entropy, probabilities clipped to [1e-15, 1 - 1e-15].
pub fn log_loss(y: &[f64], p: &[f64]) -> f64 {
    let n = y.len().max(1) as f64;
    y.iter()
        .zip(p)
        .map(|(&y, &p)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / n
}

pub fn brier(y: &[f64], p: &[f64]) -> f64 {
    y.iter().zip(p).map(|(y, p)| (y - p).powi(2)).sum::<f64>() / y.len().max(1) as f64
}

/// Confusion matrix at a cut-off: predicted event when `p >= cutoff`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub cutoff: f64,
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub r#fn: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub accuracy: f64,
}

pub fn confusion(y: &[f64], p: &[f64], cutoff: f64) -> Confusion {
    let (mut tp, mut fp, mut tn, mut fne) = (0u64, 0u64, 0u64, 0u64);
    for (&y, &p) in y.iter().zip(p) {
        match (p >= cutoff, y == 1.0) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fne += 1,
        }
    }
    let div = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = div(tp, tp + fp);
    let recall = div(tp, tp + fne);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Confusion {
        cutoff,
        tp,
        fp,
        tn,
        r#fn: fne,
        precision,
        recall,
        f1,
        accuracy: div(tp + tn, tp + fp + tn + fne),
    }
}

/// One group of rows ranked by risk, riskiest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decile {
    pub decile: usize,
    pub rows: u64,
    pub events: u64,
    pub event_rate: f64,
    pub min_score: f64,
    pub max_score: f64,
    /// Share of all events caught in this and the riskier groups.
    pub cum_gain: f64,
    /// Event rate of this group over the overall event rate.
    pub lift: f64,
    /// Event rate of this and riskier groups over the overall event rate.
    pub cum_lift: f64,
}

/// Lift and gains in `groups` equal-sized groups by descending `p`.
pub fn lift_table(y: &[f64], p: &[f64], groups: usize) -> Vec<Decile> {
    let n = y.len();
    if n == 0 || groups == 0 {
        return Vec::new();
    }
    let mut idx: Vec<usize> = (0..n).collect();
    // Ties broken by index so that the table is reproducible.
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    let total_events: f64 = y.iter().sum();
    let base = total_events / n as f64;
    let mut out = Vec::new();
    let (mut cum_rows, mut cum_events) = (0u64, 0u64);
    for g in 0..groups {
        let lo = g * n / groups;
        let hi = (g + 1) * n / groups;
        if hi <= lo {
            continue;
        }
        let rows = (hi - lo) as u64;
        let events = idx[lo..hi].iter().filter(|&&i| y[i] == 1.0).count() as u64;
        cum_rows += rows;
        cum_events += events;
        let rate = events as f64 / rows as f64;
        out.push(Decile {
            decile: g + 1,
            rows,
            events,
            event_rate: rate,
            min_score: p[idx[hi - 1]],
            max_score: p[idx[lo]],
            cum_gain: if total_events > 0.0 {
                cum_events as f64 / total_events
            } else {
                0.0
            },
            lift: if base > 0.0 { rate / base } else { 0.0 },
            cum_lift: if base > 0.0 {
                (cum_events as f64 / cum_rows as f64) / base
            } else {
                0.0
            },
        });
    }
    out
}

/// A distribution frozen on a reference sample (the training rows): quantile bin edges, the
/// share of each bin (the last bin holds missing values) and the median, so that later
/// samples can be compared with it (PSI) without the reference data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub edges: Vec<f64>,
    pub shares: Vec<f64>,
    #[serde(with = "crate::model::nan_as_null")]
    pub median: f64,
}

impl Distribution {
    /// `bins` quantile bins of `values` (edges from at most 100,000 evenly strided values).
    pub fn of(values: &[f64], bins: usize) -> Distribution {
        let stride = (values.len() / 100_000).max(1);
        let mut sorted: Vec<f64> = values
            .iter()
            .step_by(stride)
            .copied()
            .filter(|v| !v.is_nan())
            .collect();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let mut edges: Vec<f64> = (1..bins)
            .filter_map(|k| sorted.get(k * sorted.len() / bins).copied())
            .collect();
        edges.dedup();
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        let mut d = Distribution {
            edges,
            shares: Vec::new(),
            median,
        };
        d.shares = d.shares_of(values);
        d
    }

    /// Shares of `values` in this distribution's bins (missing last).
    pub fn shares_of(&self, values: &[f64]) -> Vec<f64> {
        let mut c = vec![0.0; self.edges.len() + 2];
        for &x in values {
            let b = if x.is_nan() {
                self.edges.len() + 1
            } else {
                self.edges.partition_point(|&e| e <= x)
            };
            c[b] += 1.0;
        }
        let n = values.len().max(1) as f64;
        c.iter().map(|x| x / n).collect()
    }

    /// PSI of `actual` against this distribution; shares are floored at 1e-4.
    pub fn psi(&self, actual: &[f64]) -> f64 {
        let a = self.shares_of(actual);
        self.shares
            .iter()
            .zip(&a)
            .map(|(e, a)| {
                let (e, a) = (e.max(1e-4), a.max(1e-4));
                (a - e) * (a / e).ln()
            })
            .sum()
    }
}

/// Population stability index of `actual` against `expected`, on `bins` quantile bins of
/// `expected` (missing values form a bin of their own). Shares are floored at 1e-4.
pub fn psi(expected: &[f64], actual: &[f64], bins: usize) -> f64 {
    Distribution::of(expected, bins).psi(actual)
}

/// PSI of every column of two row-major buffers with `cols` columns.
pub fn feature_psi(expected: &super::Matrix, actual: &super::Matrix, bins: usize) -> Vec<f64> {
    use rayon::prelude::*;
    let (e, a) = (expected.columns(), actual.columns());
    e.par_iter()
        .zip(a.par_iter())
        .map(|(e, a)| psi(e, a, bins))
        .collect()
}

pub fn rmse(y: &[f64], p: &[f64]) -> f64 {
    (y.iter().zip(p).map(|(y, p)| (y - p).powi(2)).sum::<f64>() / y.len().max(1) as f64).sqrt()
}

pub fn mae(y: &[f64], p: &[f64]) -> f64 {
    y.iter().zip(p).map(|(y, p)| (y - p).abs()).sum::<f64>() / y.len().max(1) as f64
}

pub fn r2(y: &[f64], p: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len().max(1) as f64;
    let ss_tot: f64 = y.iter().map(|y| (y - mean).powi(2)).sum();
    let ss_res: f64 = y.iter().zip(p).map(|(y, p)| (y - p).powi(2)).sum();
    if ss_tot == 0.0 {
        0.0
    } else {
        1.0 - ss_res / ss_tot
    }
}

/// Everything reported for a binary classifier on one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    pub rows: u64,
    pub events: u64,
    pub auc: f64,
    pub ks: f64,
    pub gini: f64,
    pub log_loss: f64,
    pub brier: f64,
    pub confusion: Vec<Confusion>,
    pub deciles: Vec<Decile>,
}

impl BinaryMetrics {
    /// Cut-offs: 0.5 and the event rate of the sample (the natural cut-off when imbalanced).
    pub fn compute(y: &[f64], p: &[f64]) -> BinaryMetrics {
        let events = y.iter().filter(|&&v| v == 1.0).count() as u64;
        let rate = events as f64 / y.len().max(1) as f64;
        let mut cutoffs = vec![0.5];
        if (rate - 0.5).abs() > 1e-9 && rate > 0.0 {
            cutoffs.push((rate * 1e4).round() / 1e4);
        }
        BinaryMetrics {
            rows: y.len() as u64,
            events,
            auc: auc(y, p),
            ks: ks(y, p),
            gini: gini(y, p),
            log_loss: log_loss(y, p),
            brier: brier(y, p),
            confusion: cutoffs.into_iter().map(|c| confusion(y, p, c)).collect(),
            deciles: lift_table(y, p, 10),
        }
    }
}

/// Regression metrics on one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    pub rows: u64,
    pub rmse: f64,
    pub mae: f64,
    pub r2: f64,
}

impl RegressionMetrics {
    pub fn compute(y: &[f64], p: &[f64]) -> RegressionMetrics {
        RegressionMetrics {
            rows: y.len() as u64,
            rmse: rmse(y, p),
            mae: mae(y, p),
            r2: r2(y, p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn auc_ks_gini_by_hand() {
        // Pairs (pos, neg): positives 0.8, 0.4; negatives 0.6, 0.2, 0.4.
        // 0.8 beats all 3; 0.4 beats 0.2, ties 0.4 (1/2), loses to 0.6 -> 1.5. AUC = 4.5/6.
        let y = [1.0, 1.0, 0.0, 0.0, 0.0];
        let p = [0.8, 0.4, 0.6, 0.2, 0.4];
        close(auc(&y, &p), 0.75);
        close(gini(&y, &p), 0.5);
        // Thresholds desc: 0.8 -> tpr .5 fpr 0; 0.6 -> .5, 1/3; 0.4 -> 1, 2/3; 0.2 -> 1, 1.
        close(ks(&y, &p), 0.5);
        assert_eq!(auc(&[1.0, 1.0], &[0.1, 0.2]), 0.5);
    }

    #[test]
    fn losses_by_hand() {
        let y = [1.0, 0.0];
        let p = [0.8, 0.4];
        close(log_loss(&y, &p), -(0.8f64.ln() + 0.6f64.ln()) / 2.0);
        close(brier(&y, &p), (0.04 + 0.16) / 2.0);
    }

    #[test]
    fn confusion_by_hand() {
        let y = [1.0, 1.0, 0.0, 0.0, 0.0];
        let p = [0.8, 0.4, 0.6, 0.2, 0.5];
        let c = confusion(&y, &p, 0.5);
        assert_eq!((c.tp, c.fp, c.tn, c.r#fn), (1, 2, 1, 1));
        close(c.precision, 1.0 / 3.0);
        close(c.recall, 0.5);
        close(c.f1, 2.0 * (1.0 / 3.0) * 0.5 / (1.0 / 3.0 + 0.5));
        close(c.accuracy, 0.4);
    }

    #[test]
    fn lift_by_hand() {
        // 10 rows, 2 events at the top two scores: decile 1 and 2 hold one each.
        let y = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let p: Vec<f64> = (0..10).map(|i| 1.0 - i as f64 / 10.0).collect();
        let t = lift_table(&y, &p, 5);
        assert_eq!(t.len(), 5);
        assert_eq!(t[0].events, 2);
        close(t[0].lift, 5.0);
        close(t[0].cum_gain, 1.0);
        close(t[1].cum_lift, 2.5);
        close(t[4].cum_lift, 1.0);
    }

    #[test]
    fn psi_by_hand() {
        // Two bins at the median of expected; actual 25%/75% against 50%/50%.
        let expected = [1.0, 2.0, 3.0, 4.0];
        let actual = [1.0, 3.0, 4.0, 4.0];
        let v = 0.25f64;
        let want =
            (v - 0.5) * (v / 0.5).ln() + (0.75 - 0.5) * (0.75f64 / 0.5).ln() + (1e-4 - 1e-4) * 0.0;
        close(psi(&expected, &actual, 2), want);
        close(psi(&expected, &expected, 10), 0.0);
    }

    #[test]
    fn regression_by_hand() {
        let y = [1.0, 2.0, 3.0];
        let p = [1.0, 2.0, 5.0];
        close(rmse(&y, &p), (4.0f64 / 3.0).sqrt());
        close(mae(&y, &p), 2.0 / 3.0);
        close(r2(&y, &p), 1.0 - 4.0 / 2.0);
    }
}

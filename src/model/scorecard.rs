//! Scorecards: binning (see [`super::binning`]), WoE transform, IV and correlation filters,
//! logistic regression on WoE, points scaled by PDO, a scorecard table exported as CSV, JSON
//! and SQL `CASE WHEN`, and reason codes.
//!
//! Scaling: `score = offset - factor * logit(p_event)` with `factor = pdo / ln 2` and
//! `offset = base_score - factor * ln(base_odds)`; `base_odds` are non-event:event odds at
//! `base_score`. Each feature's bin gets `-factor * coef * woe` points; the intercept's
//! `offset - factor * intercept` are the base points. Higher scores are safer.

use serde::{Deserialize, Serialize};

use super::binning::{bin_all, Bin, BinRule, BinningParams, FeatureBinning, FeatureKind};
use super::logistic::{sigmoid, LogisticParams};
use super::{check_binary, check_xy, invalid, Matrix, ModelError, ModelResult, Predictor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScorecardParams {
    pub binning: BinningParams,
    /// Drop features whose IV is below this.
    pub min_iv: f64,
    /// Of two features whose WoE correlate above this (absolute), drop the one with less IV.
    pub max_corr: f64,
    /// Keep at most this many features by IV (0 = no limit).
    pub max_features: usize,
    /// Inverse L2 strength of the logistic regression on WoE.
    pub c: f64,
    pub pdo: f64,
    pub base_score: f64,
    pub base_odds: f64,
}

impl Default for ScorecardParams {
    fn default() -> Self {
        ScorecardParams {
            binning: BinningParams::default(),
            min_iv: 0.01,
            max_corr: 0.8,
            max_features: 0,
            c: 1.0,
            pdo: 20.0,
            base_score: 600.0,
            base_odds: 50.0,
        }
    }
}

impl ScorecardParams {
    pub fn validate(&self) -> ModelResult<()> {
        self.binning.validate()?;
        if !(self.min_iv >= 0.0) {
            return Err(invalid("min_iv", self.min_iv, "a number >= 0"));
        }
        if !(self.max_corr > 0.0 && self.max_corr <= 1.0) {
            return Err(invalid("max_corr", self.max_corr, "a number in (0, 1]"));
        }
        if !(self.c > 0.0) {
            return Err(invalid("c", self.c, "a positive number"));
        }
        if !(self.pdo > 0.0) {
            return Err(invalid("pdo", self.pdo, "a positive number of points"));
        }
        if !(self.base_odds > 0.0) {
            return Err(invalid(
                "base_odds",
                self.base_odds,
                "a positive number (non-events per event)",
            ));
        }
        if !self.base_score.is_finite() {
            return Err(invalid("base_score", self.base_score, "a finite number"));
        }
        Ok(())
    }

    /// Fits on `x` (columns described by `names` and `kinds`) and a 0/1 target.
    pub fn fit(
        &self,
        x: &Matrix,
        y: &[f64],
        names: &[String],
        kinds: &[FeatureKind],
    ) -> ModelResult<Scorecard> {
        self.validate()?;
        check_xy(x, y, None)?;
        check_binary(y)?;
        if names.len() != x.cols || kinds.len() != x.cols {
            return Err(ModelError::Data("one name and one kind per column".into()));
        }
        let binnings = bin_all(x, y, names, kinds, &self.binning)?;
        let mut dropped: Vec<Dropped> = Vec::new();
        let mut order: Vec<usize> = (0..binnings.len()).collect();
        order.sort_by(|&a, &b| binnings[b].iv.total_cmp(&binnings[a].iv).then(a.cmp(&b)));
        let woe_col = |j: usize| -> Vec<f64> {
            (0..x.rows)
                .map(|i| binnings[j].woe_of(x.get(i, j)))
                .collect()
        };
        let mut kept: Vec<usize> = Vec::new();
        let mut kept_woe: Vec<Vec<f64>> = Vec::new();
        for &j in &order {
            let b = &binnings[j];
            if b.iv < self.min_iv {
                dropped.push(Dropped::new(
                    &b.name,
                    format!("IV {:.4} < min_iv {}", b.iv, self.min_iv),
                ));
                continue;
            }
            if self.max_features > 0 && kept.len() >= self.max_features {
                dropped.push(Dropped::new(
                    &b.name,
                    format!("beyond max_features {}", self.max_features),
                ));
                continue;
            }
            let w = woe_col(j);
            if let Some((k, r)) = kept_woe
                .iter()
                .enumerate()
                .map(|(k, o)| (k, corr(&w, o)))
                .find(|(_, r)| r.abs() > self.max_corr)
            {
                dropped.push(Dropped::new(
                    &b.name,
                    format!(
                        "WoE correlation {r:.3} with {} above max_corr {}",
                        binnings[kept[k]].name, self.max_corr
                    ),
                ));
                continue;
            }
            kept.push(j);
            kept_woe.push(w);
        }
        if kept.is_empty() {
            // Nothing passes: keep the strongest feature rather than fail (weak data still
            // deserves a model, and the report shows its IV).
            let Some(&j) = order.first() else {
                return Err(ModelError::Data("no feature to bin".into()));
            };
            dropped.retain(|d| d.feature != binnings[j].name);
            kept.push(j);
            kept_woe.push(woe_col(j));
        }
        // Logistic regression on WoE; a feature with a non-negative coefficient (more risk with
        // a safer WoE) is dropped and the model refitted.
        let lr = LogisticParams::new().c(self.c);
        let model = loop {
            let xw = Matrix::from_columns(&kept_woe);
            let m = lr.fit(&xw, y, None)?;
            let bad: Vec<usize> = (0..kept.len()).filter(|&k| m.coef[k] >= 0.0).collect();
            if bad.is_empty() || kept.len() == 1 {
                break m;
            }
            let worst = *bad
                .iter()
                .max_by(|&&a, &&b| m.coef[a].total_cmp(&m.coef[b]))
                .unwrap();
            dropped.push(Dropped::new(
                &binnings[kept[worst]].name,
                format!(
                    "coefficient {:.4} has the wrong sign (collinearity)",
                    m.coef[worst]
                ),
            ));
            kept.remove(worst);
            kept_woe.remove(worst);
        };
        let factor = self.pdo / std::f64::consts::LN_2;
        let offset = self.base_score - factor * self.base_odds.ln();
        let features: Vec<ScorecardFeature> = kept
            .iter()
            .zip(&model.coef)
            .map(|(&j, &coef)| {
                let b = binnings[j].clone();
                let points = b.bins.iter().map(|bin| -factor * coef * bin.woe).collect();
                ScorecardFeature {
                    binning: b,
                    coef,
                    points,
                }
            })
            .collect();
        Ok(Scorecard {
            params: self.clone(),
            n_inputs: x.cols,
            intercept: model.intercept,
            base_points: offset - factor * model.intercept,
            factor,
            offset,
            features,
            dropped,
            binnings,
        })
    }
}

fn corr(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut c, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        c += (x - ma) * (y - mb);
        va += (x - ma).powi(2);
        vb += (y - mb).powi(2);
    }
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        c / (va * vb).sqrt()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    pub feature: String,
    pub reason: String,
}

impl Dropped {
    fn new(f: &str, reason: String) -> Dropped {
        Dropped {
            feature: f.to_string(),
            reason,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorecardFeature {
    pub binning: FeatureBinning,
    pub coef: f64,
    /// Points per bin, in the order of `binning.bins`.
    pub points: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    pub params: ScorecardParams,
    pub n_inputs: usize,
    pub intercept: f64,
    pub base_points: f64,
    pub factor: f64,
    pub offset: f64,
    pub features: Vec<ScorecardFeature>,
    pub dropped: Vec<Dropped>,
    /// Binning of every input feature (kept or not), for the report.
    pub binnings: Vec<FeatureBinning>,
}

/// One line of the scorecard table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorecardRow {
    pub feature: String,
    pub bin: String,
    pub count: u64,
    pub event_rate: f64,
    pub woe: f64,
    pub iv: f64,
    pub points: f64,
}

/// A reason an applicant lost points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub feature: String,
    pub bin: String,
    pub points: f64,
    /// Points below the best bin of the feature.
    pub lost: f64,
}

impl Scorecard {
    fn logit_row(&self, row: &[f64]) -> f64 {
        self.intercept
            + self
                .features
                .iter()
                .map(|f| f.coef * f.binning.woe_of(row[f.binning.column]))
                .sum::<f64>()
    }

    /// Scores (points) of each row.
    pub fn score(&self, x: &Matrix) -> Vec<f64> {
        (0..x.rows)
            .map(|i| self.offset - self.factor * self.logit_row(x.row(i)))
            .collect()
    }

    /// The `top` features that cost the row the most points against their best bin.
    pub fn reasons(&self, row: &[f64], top: usize) -> Vec<Reason> {
        let mut r: Vec<Reason> = self
            .features
            .iter()
            .map(|f| {
                let k = f.binning.bin_of(row[f.binning.column]);
                let best = f.points.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                Reason {
                    feature: f.binning.name.clone(),
                    bin: f.binning.bins[k].label.clone(),
                    points: f.points[k],
                    lost: best - f.points[k],
                }
            })
            .filter(|r| r.lost > 1e-9)
            .collect();
        r.sort_by(|a, b| b.lost.total_cmp(&a.lost).then(a.feature.cmp(&b.feature)));
        r.truncate(top);
        r
    }

    pub fn table(&self) -> Vec<ScorecardRow> {
        let mut rows = vec![ScorecardRow {
            feature: "(base)".into(),
            bin: String::new(),
            count: 0,
            event_rate: 0.0,
            woe: 0.0,
            iv: 0.0,
            points: self.base_points,
        }];
        for f in &self.features {
            for (b, p) in f.binning.bins.iter().zip(&f.points) {
                rows.push(ScorecardRow {
                    feature: f.binning.name.clone(),
                    bin: b.label.clone(),
                    count: b.count,
                    event_rate: b.event_rate,
                    woe: b.woe,
                    iv: b.iv,
                    points: *p,
                });
            }
        }
        rows
    }

    pub fn to_csv(&self) -> String {
        let mut out = String::from("feature,bin,count,event_rate,woe,iv,points\n");
        for r in self.table() {
            out.push_str(&format!(
                "{},{},{},{:.6},{:.6},{:.6},{:.4}\n",
                csv_field(&r.feature),
                csv_field(&r.bin),
                r.count,
                r.event_rate,
                r.woe,
                r.iv,
                r.points
            ));
        }
        out
    }

    /// A SQL expression giving the score of a row of a table with the input columns.
    pub fn to_sql(&self, alias: &str) -> String {
        let mut out = format!("-- scorecard: score = base + sum of feature points (PDO {}, base score {} at odds {}:1)\n", self.params.pdo, self.params.base_score, self.params.base_odds);
        out.push_str(&format!("  {:.4}\n", self.base_points));
        for f in &self.features {
            let col = sql_ident(&f.binning.name);
            let mut case = String::from("  + CASE");
            // What `bin_of` gives a value no rule matches (an unseen category, or a NULL when
            // training had none): the "other" bin, else the most populous one.
            let fallback = f
                .binning
                .bins
                .iter()
                .position(|b| {
                    matches!(
                        b.rule,
                        BinRule::Categories { other: true, .. } | BinRule::Other
                    )
                })
                .or_else(|| {
                    f.binning
                        .bins
                        .iter()
                        .enumerate()
                        .max_by_key(|(_, b)| b.count)
                        .map(|(k, _)| k)
                });
            let other = fallback
                .and_then(|k| f.points.get(k))
                .copied()
                .unwrap_or(0.0);
            // SQL's CASE takes the first matching branch; `bin_of` checks NULL and special
            // values before the ranges (a special -1 lies inside a range bin), so they come first.
            let mut bins: Vec<(&Bin, &f64)> = f.binning.bins.iter().zip(&f.points).collect();
            bins.sort_by_key(|(b, _)| {
                !matches!(b.rule, BinRule::Missing | BinRule::Special { .. })
            });
            for (b, p) in bins {
                let cond = match &b.rule {
                    BinRule::Missing => format!("{col} IS NULL"),
                    BinRule::Special { value } => format!("{col} = {value}"),
                    BinRule::Range { lo, hi } => match (lo.is_finite(), hi.is_finite()) {
                        (false, false) => format!("{col} IS NOT NULL"),
                        (false, true) => format!("{col} <= {hi}"),
                        (true, false) => format!("{col} > {lo}"),
                        (true, true) => format!("{col} > {lo} AND {col} <= {hi}"),
                    },
                    BinRule::Categories { names, .. } => {
                        // Rare and unseen categories of an "other" bin: the ELSE branch.
                        if names.is_empty() {
                            continue;
                        }
                        format!(
                            "{col} IN ({})",
                            names
                                .iter()
                                .map(|n| format!("'{}'", n.replace('\'', "''")))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                    BinRule::Other => continue,
                };
                case.push_str(&format!("\n      WHEN {cond} THEN {p:.4}"));
            }
            case.push_str(&format!("\n      ELSE {other:.4} END\n"));
            out.push_str(&case);
        }
        out.push_str(&format!("  AS {}\n", sql_ident(alias)));
        out
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn sql_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl Predictor for Scorecard {
    /// Probability of the event.
    fn predict(&self, x: &Matrix) -> Vec<f64> {
        (0..x.rows)
            .map(|i| sigmoid(self.logit_row(x.row(i))))
            .collect()
    }
    fn n_features(&self) -> usize {
        self.n_inputs
    }
    fn importance(&self) -> Option<Vec<f64>> {
        let mut imp = vec![0.0; self.n_inputs];
        for f in &self.features {
            imp[f.binning.column] = f.binning.iv;
        }
        Some(imp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny worked example: one categorical feature with two categories.
    ///   A: 40 non-events, 10 events;  B: 10 non-events, 40 events.
    #[test]
    fn points_on_a_worked_example() {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for (code, goods, bads) in [(0.0, 40, 10), (1.0, 10, 40)] {
            for _ in 0..goods {
                x.push(code);
                y.push(0.0);
            }
            for _ in 0..bads {
                x.push(code);
                y.push(1.0);
            }
        }
        let params = ScorecardParams {
            c: 1e9,
            binning: BinningParams {
                cat_min_share: 0.0,
                ..Default::default()
            },
            ..Default::default()
        };
        let kinds = [FeatureKind::Categorical {
            levels: vec!["A".into(), "B".into()],
        }];
        let sc = params
            .fit(&Matrix::new(100, 1, x.clone()), &y, &["cat".into()], &kinds)
            .unwrap();
        let f = &sc.features[0];
        // WoE by hand (0.5 added to counts): A = ln((40.5/50)/(10.5/50)).
        let woe_a = (40.5f64 / 10.5).ln();
        let a = f.binning.bin_of(0.0);
        let b = f.binning.bin_of(1.0);
        assert!((f.binning.bins[a].woe - woe_a).abs() < 1e-9);
        assert!((f.binning.bins[b].woe + woe_a).abs() < 1e-9);
        let iv = 2.0 * ((40.5 - 10.5) / 50.0) * woe_a;
        assert!((f.binning.iv - iv).abs() < 1e-9, "{} {iv}", f.binning.iv);
        // Unregularised logistic on a two-valued WoE reproduces the observed odds:
        // logit(A) = ln(10/40), logit(B) = ln(40/10) -> coef * woe_a = -ln 4, intercept 0.
        assert!((f.coef * woe_a + 4f64.ln()).abs() < 1e-5, "{}", f.coef);
        assert!(sc.intercept.abs() < 1e-5);
        // Points: factor = 20/ln2, offset = 600 - factor ln 50.
        let factor = 20.0 / std::f64::consts::LN_2;
        assert!((sc.base_points - (600.0 - factor * 50f64.ln())).abs() < 1e-3);
        assert!((f.points[a] - factor * 4f64.ln()).abs() < 1e-3);
        assert!((f.points[b] + factor * 4f64.ln()).abs() < 1e-3);
        // Score of an A: offset + factor ln 4 (odds 4:1 good) = 600 - 20 log2(50/4).
        let s = sc.score(&Matrix::new(1, 1, vec![0.0]))[0];
        assert!(
            (s - (600.0 - 20.0 * (50.0f64 / 4.0).log2())).abs() < 1e-3,
            "{s}"
        );
        // A B applicant loses points on `cat`; an A loses none.
        assert_eq!(sc.reasons(&[1.0], 3)[0].feature, "cat");
        assert!(sc.reasons(&[0.0], 3).is_empty());
        assert!(sc.to_sql("score").contains("WHEN \"cat\" IN ('A') THEN"));
        assert!(sc.to_csv().starts_with("feature,bin,count"));
        let json = serde_json::to_string(&sc).unwrap();
        let back: Scorecard = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.score(&Matrix::new(1, 1, vec![1.0])),
            sc.score(&Matrix::new(1, 1, vec![1.0]))
        );
    }

    /// The SQL export gives every row the scorecard's own points, special values and
    /// missing values included (a special -1 lies inside a range bin; SQL's CASE takes the
    /// first branch that matches).
    #[test]
    fn sql_export_scores_special_and_missing_values_like_the_model() {
        use polars::prelude::*;
        let mut rng = crate::model::rng::Rng::new(11);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..6000 {
            let u = rng.normal();
            // Rows with -1 (a special value, far riskier than their neighbours) and missing.
            let (v, p) = match i % 10 {
                0 => (-1.0, 0.6),
                1 => (f64::NAN, 0.3),
                _ => (u, sigmoid(-1.5 - 1.2 * u)),
            };
            x.push(v);
            y.push(if rng.uniform() < p { 1.0 } else { 0.0 });
        }
        let params = ScorecardParams {
            binning: BinningParams {
                special_values: vec![-1.0],
                ..Default::default()
            },
            ..Default::default()
        };
        let sc = params
            .fit(
                &Matrix::new(x.len(), 1, x.clone()),
                &y,
                &["g".into()],
                &[FeatureKind::Numeric],
            )
            .unwrap();
        let bins = &sc.features[0].binning.bins;
        assert!(bins
            .iter()
            .any(|b| matches!(b.rule, BinRule::Special { value } if value == -1.0)));
        // -1 also lies inside a range bin: the case the branch order decides.
        assert!(bins
            .iter()
            .any(|b| matches!(b.rule, BinRule::Range { lo, hi } if lo < -1.0 && -1.0 <= hi)));
        let probe = [-1.0, f64::NAN, -3.0, -0.5, 0.0, 0.7, 2.5];
        let want = sc.score(&Matrix::new(probe.len(), 1, probe.to_vec()));
        let col: Vec<Option<f64>> = probe.iter().map(|v| (!v.is_nan()).then_some(*v)).collect();
        let df = DataFrame::new(probe.len(), vec![Column::new("g".into(), col)]).unwrap();
        let expr: String = sc
            .to_sql("score")
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut ctx = polars::sql::SQLContext::new();
        ctx.register("t", df.lazy());
        let out = ctx
            .execute(&format!("SELECT {expr} FROM t"))
            .and_then(|lf| lf.collect())
            .unwrap();
        let got: Vec<f64> = out
            .column("score")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        for ((v, w), g) in probe.iter().zip(&want).zip(&got) {
            // The SQL rounds points to 4 decimals.
            assert!((w - g).abs() < 1e-3, "x = {v}: model {w}, SQL {g}");
        }
    }

    #[test]
    fn filters_drop_weak_and_duplicate_features() {
        let mut rng = crate::model::rng::Rng::new(3);
        let n = 5000;
        let mut cols = vec![Vec::new(), Vec::new(), Vec::new()];
        let mut y = Vec::new();
        for _ in 0..n {
            let a = rng.normal();
            let z = -1.0 + 1.2 * a;
            y.push(if rng.uniform() < sigmoid(z) { 1.0 } else { 0.0 });
            cols[0].push(a);
            cols[1].push(a * 2.0 + 1.0); // same ranking: WoE identical
            cols[2].push(rng.normal()); // noise
        }
        let names: Vec<String> = ["a", "a2", "noise"].iter().map(|s| s.to_string()).collect();
        let kinds = vec![FeatureKind::Numeric; 3];
        let sc = ScorecardParams::default()
            .fit(&Matrix::from_columns(&cols), &y, &names, &kinds)
            .unwrap();
        assert_eq!(sc.features.len(), 1);
        assert!(sc
            .dropped
            .iter()
            .any(|d| d.feature == "noise" && d.reason.contains("IV")));
        assert!(sc.dropped.iter().any(|d| d.reason.contains("correlation")));
        let bad = ScorecardParams {
            pdo: 0.0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(bad.to_string().contains("`pdo`"));
    }
}

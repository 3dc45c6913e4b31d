//! HTML reports with inline SVG charts (drawn with plotters, see [`charts`]). A model report
//! shows the headline metrics (train and test), ROC, KS curve, score distribution by class,
//! lift and gains by decile, feature importance, WoE per bin for scorecards, and the tables
//! behind them.

pub mod charts;
pub mod score;

pub use score::score_report;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::error::{Context, Result};
use crate::model::binning::FeatureBinning;
use crate::model::metrics::{self, BinaryMetrics};
use crate::model::pipeline::{Evaluation, TrainOutcome};
use crate::model::FittedModel;
use charts::{bar_chart, esc, hbar_chart, line_chart, Series};

const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:24px auto;color:#222}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}\
th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:10px}\
.muted{color:#777;font-size:12px}";

fn f4(v: f64) -> String {
    format!("{v:.4}")
}

fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

/// ROC curve of the test split.
pub fn roc_svg(y: &[f64], p: &[f64]) -> String {
    let roc = metrics::roc_curve(y, p);
    let a = metrics::auc(y, p);
    line_chart(
        &format!("ROC (test AUC {a:.3})"),
        "false positive rate",
        "true positive rate",
        &[
            Series {
                name: "model",
                points: roc.iter().map(|r| (r.0, r.1)).collect(),
                dashed: false,
            },
            Series {
                name: "random",
                points: vec![(0.0, 0.0), (1.0, 1.0)],
                dashed: true,
            },
        ],
        Some((0.0, 1.0)),
        Some((0.0, 1.0)),
    )
}

/// Cumulative shares of events and non-events by population share, riskiest first.
pub fn ks_svg(y: &[f64], p: &[f64]) -> String {
    let roc = metrics::roc_curve(y, p);
    let n = y.len() as f64;
    let pos = y.iter().sum::<f64>();
    let mut ev = Vec::new();
    let mut ne = Vec::new();
    let mut gap = Vec::new();
    for &(fpr, tpr, _) in &roc {
        let share = (tpr * pos + fpr * (n - pos)) / n.max(1.0);
        ev.push((share, tpr));
        ne.push((share, fpr));
        gap.push((share, tpr - fpr));
    }
    let ks = metrics::ks(y, p);
    line_chart(
        &format!("KS curve (KS {ks:.3})"),
        "share of population (riskiest first)",
        "cumulative share",
        &[
            Series {
                name: "events",
                points: ev,
                dashed: false,
            },
            Series {
                name: "non-events",
                points: ne,
                dashed: false,
            },
            Series {
                name: "difference",
                points: gap,
                dashed: true,
            },
        ],
        Some((0.0, 1.0)),
        Some((0.0, 1.0)),
    )
}

/// Histograms (as shares) of the score for each class.
pub fn distribution_svg(y: &[f64], s: &[f64], what: &str) -> String {
    let (lo, hi) = s
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, &v| {
            (a.0.min(v), a.1.max(v))
        });
    let bins = 20;
    let width = ((hi - lo) / bins as f64).max(1e-12);
    let mut h = [vec![0.0; bins], vec![0.0; bins]];
    for (&yy, &v) in y.iter().zip(s) {
        if v.is_finite() {
            let b = (((v - lo) / width) as usize).min(bins - 1);
            h[usize::from(yy == 1.0)][b] += 1.0;
        }
    }
    let series: Vec<Series> = ["non-events", "events"]
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let tot: f64 = h[c].iter().sum::<f64>().max(1.0);
            Series {
                name,
                points: (0..bins)
                    .map(|b| (lo + width * (b as f64 + 0.5), h[c][b] / tot))
                    .collect(),
                dashed: false,
            }
        })
        .collect();
    line_chart(
        &format!("{what} distribution by class"),
        what,
        "share of class",
        &series,
        None,
        None,
    )
}

pub fn lift_svg(m: &BinaryMetrics) -> String {
    let labels: Vec<String> = m.deciles.iter().map(|d| d.decile.to_string()).collect();
    bar_chart(
        "Lift and cumulative gains by decile",
        "decile (riskiest first)",
        "lift / gain",
        &labels,
        &[
            ("lift", m.deciles.iter().map(|d| d.lift).collect()),
            (
                "cumulative gain",
                m.deciles.iter().map(|d| d.cum_gain).collect(),
            ),
        ],
    )
}

pub fn woe_svg(b: &FeatureBinning) -> String {
    let labels: Vec<String> = b.bins.iter().map(|x| x.label.clone()).collect();
    bar_chart(
        &format!("WoE per bin: {} (IV {:.3})", b.name, b.iv),
        "bin",
        "WoE",
        &labels,
        &[("WoE", b.bins.iter().map(|x| x.woe).collect())],
    )
}

/// Renders the report of one trained model as a standalone HTML page.
pub fn model_report(
    title: &str,
    subtitle: &str,
    out: &TrainOutcome,
    params: &serde_json::Value,
) -> String {
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1><p class=\"muted\">{}</p>",
        esc(title),
        esc(title),
        esc(subtitle)
    );
    let _ = write!(
        h,
        "<p>Algorithm <b>{}</b>; {} training rows, {} test rows; training-data fingerprint <code>{}</code>; fit in {:.2} s.</p>",
        out.trained.algo.name(),
        out.rows_train,
        out.rows_test,
        out.fingerprint,
        out.fit_seconds
    );
    if let Some(tm) = &out.trained.target_map {
        let _ = write!(
            h,
            "<p>Target <b>{}</b>: event = {:?}, non-event = {:?}{}.</p>",
            esc(out.trained.target.as_deref().unwrap_or("")),
            tm.event,
            tm.non_event,
            if tm.rows_dropped_missing > 0 {
                format!(
                    "; {} rows without a target left out",
                    tm.rows_dropped_missing
                )
            } else {
                String::new()
            }
        );
    }
    let mut charts: Vec<String> = Vec::new();
    match &out.eval {
        Evaluation::Binary(b) => {
            h.push_str("<h2>Metrics</h2>");
            let row = |name: &str, f: &dyn Fn(&BinaryMetrics) -> String| {
                vec![name.to_string(), f(&b.train), f(&b.test)]
            };
            h.push_str(&table(
                &["metric", "train", "test"],
                &[
                    row("rows", &|m| m.rows.to_string()),
                    row("events", &|m| m.events.to_string()),
                    row("AUC", &|m| f4(m.auc)),
                    row("KS", &|m| f4(m.ks)),
                    row("Gini", &|m| f4(m.gini)),
                    row("log loss", &|m| f4(m.log_loss)),
                    row("Brier", &|m| f4(m.brier)),
                ],
            ));
            let _ = write!(
                h,
                "<p>PSI of the predicted probability, test against train: {:.4}.</p>",
                b.score_psi
            );
            charts.push(roc_svg(&b.test_y, &b.test_p));
            charts.push(ks_svg(&b.test_y, &b.test_p));
            if let FittedModel::Scorecard(sc) = &out.trained.model {
                // Scores: recompute from probabilities (monotone) for the distribution chart.
                let scores: Vec<f64> = b
                    .test_p
                    .iter()
                    .map(|p| {
                        let p = p.clamp(1e-12, 1.0 - 1e-12);
                        sc.offset - sc.factor * (p / (1.0 - p)).ln()
                    })
                    .collect();
                charts.push(distribution_svg(&b.test_y, &scores, "score"));
            } else {
                charts.push(distribution_svg(&b.test_y, &b.test_p, "probability"));
            }
            charts.push(lift_svg(&b.test));
            if !out.importance.is_empty() {
                let top: Vec<(String, f64)> = out.importance.iter().take(20).cloned().collect();
                charts.push(hbar_chart("Feature importance (share)", "share", &top));
            }
            h.push_str("<h2>Charts (test split)</h2><div class=\"charts\">");
            for c in &charts {
                h.push_str(c);
            }
            h.push_str("</div>");
            h.push_str("<h2>Confusion matrices (test)</h2>");
            h.push_str(&table(
                &[
                    "cut-off",
                    "TP",
                    "FP",
                    "TN",
                    "FN",
                    "precision",
                    "recall",
                    "F1",
                    "accuracy",
                ],
                &b.test
                    .confusion
                    .iter()
                    .map(|c| {
                        vec![
                            f4(c.cutoff),
                            c.tp.to_string(),
                            c.fp.to_string(),
                            c.tn.to_string(),
                            c.r#fn.to_string(),
                            f4(c.precision),
                            f4(c.recall),
                            f4(c.f1),
                            f4(c.accuracy),
                        ]
                    })
                    .collect::<Vec<_>>(),
            ));
            h.push_str("<h2>Lift and gains by decile (test)</h2>");
            h.push_str(&table(
                &[
                    "decile",
                    "rows",
                    "events",
                    "event rate",
                    "min p",
                    "max p",
                    "lift",
                    "cum. lift",
                    "cum. gain",
                ],
                &b.test
                    .deciles
                    .iter()
                    .map(|d| {
                        vec![
                            d.decile.to_string(),
                            d.rows.to_string(),
                            d.events.to_string(),
                            f4(d.event_rate),
                            f4(d.min_score),
                            f4(d.max_score),
                            f4(d.lift),
                            f4(d.cum_lift),
                            f4(d.cum_gain),
                        ]
                    })
                    .collect::<Vec<_>>(),
            ));
            let mut psi: Vec<&(String, f64)> = b.feature_psi.iter().collect();
            psi.sort_by(|a, b| b.1.total_cmp(&a.1));
            h.push_str("<h2>Feature PSI, test against train (largest first)</h2>");
            h.push_str(&table(
                &["feature", "PSI"],
                &psi.iter()
                    .take(30)
                    .map(|(n, v)| vec![n.clone(), f4(*v)])
                    .collect::<Vec<_>>(),
            ));
        }
        Evaluation::Regression {
            train,
            test,
            test_y,
            test_p,
        } => {
            h.push_str("<h2>Metrics</h2>");
            h.push_str(&table(
                &["metric", "train", "test"],
                &[
                    vec!["rows".into(), train.rows.to_string(), test.rows.to_string()],
                    vec!["RMSE".into(), f4(train.rmse), f4(test.rmse)],
                    vec!["MAE".into(), f4(train.mae), f4(test.mae)],
                    vec!["R²".into(), f4(train.r2), f4(test.r2)],
                ],
            ));
            let pts: Vec<(f64, f64)> = test_y.iter().zip(test_p).map(|(a, b)| (*a, *b)).collect();
            let (lo, hi) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
                (a.0.min(p.0), a.1.max(p.0))
            });
            let mut sorted = pts.clone();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
            charts.push(line_chart(
                "Predicted against actual (test, sorted by actual)",
                "actual",
                "predicted",
                &[
                    Series {
                        name: "predicted",
                        points: sorted,
                        dashed: false,
                    },
                    Series {
                        name: "ideal",
                        points: vec![(lo, lo), (hi, hi)],
                        dashed: true,
                    },
                ],
                None,
                None,
            ));
            if !out.importance.is_empty() {
                charts.push(hbar_chart(
                    "Feature importance (share)",
                    "share",
                    &out.importance.iter().take(20).cloned().collect::<Vec<_>>(),
                ));
            }
            h.push_str("<div class=\"charts\">");
            charts.iter().for_each(|c| h.push_str(c));
            h.push_str("</div>");
        }
        Evaluation::Unsupervised { summary } => {
            let _ = write!(
                h,
                "<h2>Summary</h2><pre>{}</pre>",
                esc(&serde_json::to_string_pretty(summary).unwrap_or_default())
            );
            match &out.trained.model {
                FittedModel::Kmeans(m) => {
                    let labels: Vec<String> =
                        (0..m.sizes.len()).map(|k| format!("cluster {k}")).collect();
                    h.push_str(&bar_chart(
                        "Cluster sizes",
                        "cluster",
                        "rows",
                        &labels,
                        &[("rows", m.sizes.iter().map(|&s| s as f64).collect())],
                    ));
                }
                FittedModel::Pca(m) => {
                    let labels: Vec<String> = (1..=m.explained_variance_ratio.len())
                        .map(|k| format!("PC{k}"))
                        .collect();
                    h.push_str(&bar_chart(
                        "Explained variance ratio",
                        "component",
                        "share",
                        &labels,
                        &[("share", m.explained_variance_ratio.clone())],
                    ));
                }
                _ => {}
            }
        }
    }
    if let FittedModel::Scorecard(sc) = &out.trained.model {
        let _ = write!(
            h,
            "<h2>Scorecard</h2><p>PDO {}, base score {} at odds {}:1; factor {:.4}, offset {:.4}; base points {:.2}.</p>",
            sc.params.pdo, sc.params.base_score, sc.params.base_odds, sc.factor, sc.offset, sc.base_points
        );
        h.push_str(&table(
            &[
                "feature",
                "bin",
                "count",
                "event rate",
                "WoE",
                "IV",
                "points",
            ],
            &sc.table()
                .iter()
                .map(|r| {
                    vec![
                        r.feature.clone(),
                        r.bin.clone(),
                        r.count.to_string(),
                        f4(r.event_rate),
                        f4(r.woe),
                        f4(r.iv),
                        format!("{:.2}", r.points),
                    ]
                })
                .collect::<Vec<_>>(),
        ));
        h.push_str("<h2>WoE per bin</h2><div class=\"charts\">");
        for f in sc.features.iter().take(12) {
            h.push_str(&woe_svg(&f.binning));
        }
        h.push_str("</div><h2>Information value of every input</h2>");
        let mut ivs: Vec<&FeatureBinning> = sc.binnings.iter().collect();
        ivs.sort_by(|a, b| b.iv.total_cmp(&a.iv));
        h.push_str(&table(
            &["feature", "IV", "bins", "trend"],
            &ivs.iter()
                .map(|b| {
                    vec![
                        b.name.clone(),
                        f4(b.iv),
                        b.bins.len().to_string(),
                        b.trend.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
        ));
        if !sc.dropped.is_empty() {
            h.push_str("<h2>Features dropped by the filters</h2>");
            h.push_str(&table(
                &["feature", "reason"],
                &sc.dropped
                    .iter()
                    .map(|d| vec![d.feature.clone(), d.reason.clone()])
                    .collect::<Vec<_>>(),
            ));
        }
    }
    if !out.dropped_columns.is_empty() {
        h.push_str("<h2>Columns left out</h2>");
        h.push_str(&table(
            &["column", "reason"],
            &out.dropped_columns
                .iter()
                .map(|d| vec![d.column.clone(), d.reason.clone()])
                .collect::<Vec<_>>(),
        ));
    }
    let _ = write!(
        h,
        "<h2>Parameters</h2><pre>{}</pre></body></html>",
        esc(&serde_json::to_string_pretty(params).unwrap_or_default())
    );
    h
}

/// Writes `html` to `dir/<stem>.html` atomically; returns the path.
pub fn write_report(dir: &Path, stem: &str, html: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{stem}.html"));
    let tmp = dir.join(format!(".{stem}.html.tmp"));
    std::fs::write(&tmp, html).ctx(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).ctx(|| format!("renaming {}", tmp.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::charts::tests::{hex, polylines, texts};
    use super::charts::PALETTE;
    use super::*;

    /// 200 rows whose event probability rises with the score.
    fn sample() -> (Vec<f64>, Vec<f64>) {
        let p: Vec<f64> = (0..200).map(|i| (f64::from(i) + 0.5) / 200.0).collect();
        let y = p
            .iter()
            .enumerate()
            .map(|(i, &p)| f64::from(u8::from((i * 7919) % 100 < (p * 100.0) as usize)))
            .collect();
        (y, p)
    }

    fn has_texts(svg: &str, want: &[&str]) {
        let t = texts(svg);
        for w in want {
            assert!(t.iter().any(|x| x == w), "no text {w:?} in {t:?}");
        }
    }

    /// Point counts of the lines drawn in series colour `k` (legend samples have 2 points).
    fn line_points(svg: &str, k: usize) -> Vec<usize> {
        polylines(svg)
            .into_iter()
            .filter(|l| l.0 == hex(PALETTE[k]))
            .map(|l| l.1)
            .collect()
    }

    #[test]
    fn roc_and_ks_charts_carry_their_curves_titles_axes_and_legends() {
        let (y, p) = sample();
        let roc = roc_svg(&y, &p);
        let title = format!("ROC (test AUC {:.3})", metrics::auc(&y, &p));
        has_texts(
            &roc,
            &[
                &title,
                "false positive rate",
                "true positive rate",
                "model",
                "random",
            ],
        );
        let points = metrics::roc_curve(&y, &p).len();
        assert_eq!(line_points(&roc, 0), vec![points, 2]);
        let ks = ks_svg(&y, &p);
        has_texts(
            &ks,
            &[
                &format!("KS curve (KS {:.3})", metrics::ks(&y, &p)),
                "share of population (riskiest first)",
                "cumulative share",
                "events",
                "non-events",
                "difference",
            ],
        );
        assert_eq!(line_points(&ks, 0), vec![points, 2]);
        assert_eq!(line_points(&ks, 1), vec![points, 2]);
    }

    #[test]
    fn distribution_lift_and_woe_charts() {
        let (y, p) = sample();
        let d = distribution_svg(&y, &p, "probability");
        has_texts(
            &d,
            &[
                "probability distribution by class",
                "probability",
                "share of class",
                "non-events",
                "events",
            ],
        );
        assert_eq!(line_points(&d, 0), vec![20, 2]);
        assert_eq!(line_points(&d, 1), vec![20, 2]);
        let m = BinaryMetrics::compute(&y, &p);
        let l = lift_svg(&m);
        has_texts(
            &l,
            &[
                "Lift and cumulative gains by decile",
                "decile (riskiest first)",
                "lift / gain",
                "lift",
                "cumulative gain",
                "1",
                "10",
            ],
        );
        let bars = |k: usize| l.matches(&format!(r#"fill="{}""#, hex(PALETTE[k]))).count();
        assert_eq!(
            (bars(0), bars(1)),
            (m.deciles.len() + 1, m.deciles.len() + 1)
        );
        let bin = |label: &str, woe: f64| crate::model::binning::Bin {
            label: label.into(),
            rule: crate::model::binning::BinRule::Missing,
            count: 10,
            events: 1,
            event_rate: 0.1,
            woe,
            iv: 0.01,
        };
        let b = FeatureBinning {
            name: "income <net>".into(),
            column: 0,
            kind: crate::model::binning::FeatureKind::Numeric,
            trend: "descending".into(),
            bins: vec![
                bin("(-inf, 1000]", 0.4),
                bin("(1000, inf]", -0.3),
                bin("missing", 0.0),
            ],
            iv: 0.123,
        };
        let w = woe_svg(&b);
        has_texts(
            &w,
            &[
                "WoE per bin: income &lt;net&gt; (IV 0.123)",
                "bin",
                "WoE",
                "(-inf, 1000]",
                "(1000, inf]",
                "missing",
            ],
        );
    }
}

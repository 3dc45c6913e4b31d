//! The score-table report: arms and their realised shares, grades, declines and binding
//! limit caps, drift (PSI) against the training baselines, grade migration, and the family's
//! champion/challenger history.

use std::fmt::Write;

use polars::prelude::*;

use super::charts::{esc, hbar_chart};
use super::{table, STYLE};
use crate::model::champion::FamilyState;
use crate::score::ScoreReport;

fn cells(df: &DataFrame, cols: &[&str], limit: usize) -> Vec<Vec<String>> {
    let mut rows = vec![Vec::new(); df.height().min(limit)];
    for c in cols {
        if let Ok(col) = df.column(c) {
            for (i, r) in rows.iter_mut().enumerate() {
                let v = col.get(i).map(|v| v.to_string()).unwrap_or_default();
                r.push(v.trim_matches('"').to_string());
            }
        }
    }
    rows
}

pub fn score_report(
    r: &ScoreReport,
    psi: &DataFrame,
    migration: &DataFrame,
    family: &FamilyState,
) -> String {
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>score.{t} {dt}</title><style>{STYLE}</style></head><body><h1>score.{t} — {dt}</h1><p class=\"muted\">{rows} rows in {secs:.2} s · champion {ch} · challenger {cl} · limit model {lm} · {path}</p>",
        t = esc(&r.table),
        dt = esc(&r.dt),
        rows = r.stats.rows,
        secs = r.seconds,
        ch = esc(&r.champion),
        cl = esc(r.challenger.as_deref().unwrap_or("none")),
        lm = esc(r.limit_model.as_deref().unwrap_or("none")),
        path = esc(&r.path),
    );
    if !r.alerts.is_empty() {
        h.push_str("<h2>Alerts</h2><ul>");
        for a in &r.alerts {
            let _ = write!(h, "<li>{}</li>", esc(a));
        }
        h.push_str("</ul>");
    }
    let n = r.stats.rows.max(1) as f64;
    h.push_str("<h2>A/B arms</h2>");
    h.push_str(&table(
        &["arm", "rows", "share", "mean PD"],
        &r.stats
            .arms
            .iter()
            .map(|(a, c)| {
                vec![
                    a.clone(),
                    c.to_string(),
                    format!("{:.2}%", 100.0 * *c as f64 / n),
                    format!("{:.4}", r.stats.mean_pd.get(a).copied().unwrap_or(0.0)),
                ]
            })
            .collect::<Vec<_>>(),
    ));
    h.push_str("<h2>Grades</h2>");
    let mut grades: Vec<String> = r
        .stats
        .grades
        .values()
        .flat_map(|g| g.keys().cloned())
        .collect();
    grades.sort();
    grades.dedup();
    let arms: Vec<&String> = r.stats.grades.keys().collect();
    let mut head = vec!["grade"];
    head.extend(arms.iter().map(|a| a.as_str()));
    h.push_str(&table(
        &head,
        &grades
            .iter()
            .map(|g| {
                std::iter::once(g.clone())
                    .chain(
                        arms.iter()
                            .map(|a| r.stats.grades[*a].get(g).copied().unwrap_or(0).to_string()),
                    )
                    .collect()
            })
            .collect::<Vec<_>>(),
    ));
    let all: Vec<(String, f64)> = grades
        .iter()
        .map(|g| {
            (
                g.clone(),
                r.stats
                    .grades
                    .values()
                    .map(|m| m.get(g).copied().unwrap_or(0) as f64)
                    .sum(),
            )
        })
        .collect();
    h.push_str(&hbar_chart("rows by grade", "rows", &all));
    h.push_str("<h2>Limits and declines</h2><p>What set each approved limit (the binding cap), and why rows were declined.</p>");
    let mut rows: Vec<Vec<String>> = r
        .stats
        .binding_caps
        .iter()
        .map(|(c, k)| vec![format!("limit set by {c}"), k.to_string()])
        .collect();
    rows.extend(
        r.stats
            .declines
            .iter()
            .map(|(c, k)| vec![format!("declined: {c}"), k.to_string()]),
    );
    rows.extend(
        r.stats
            .caps_missing
            .iter()
            .map(|(c, k)| vec![format!("cap {c} not applicable (no data)"), k.to_string()]),
    );
    rows.extend(
        r.stats
            .fraud_flags
            .iter()
            .map(|(c, k)| vec![format!("fraud flag {c}"), k.to_string()]),
    );
    h.push_str(&table(&["outcome", "rows"], &rows));
    h.push_str("<h2>Stability against the training population (PSI)</h2>");
    let sorted = psi
        .sort(
            ["psi"],
            SortMultipleOptions::default().with_order_descending(true),
        )
        .unwrap_or_else(|_| psi.clone());
    h.push_str(&table(
        &["arm", "model", "version", "variable", "psi", "status"],
        &cells(
            &sorted,
            &[
                "arm",
                "model_name",
                "model_version",
                "variable",
                "psi",
                "status",
            ],
            40,
        ),
    ));
    h.push_str("<h2>Grade migration since the previous night</h2>");
    if migration.height() == 0 {
        h.push_str("<p>No previous night with entities in common.</p>");
    } else {
        h.push_str(&table(
            &["before", "now", "entities", "share"],
            &cells(
                migration,
                &["grade_before", "grade_now", "entities", "share"],
                200,
            ),
        ));
    }
    let _ = write!(
        h,
        "<h2>Champion/challenger history of {}</h2>",
        esc(&family.family)
    );
    h.push_str(&table(
        &["dt", "action", "by", "champion", "challenger", "reason"],
        &family
            .decisions
            .iter()
            .rev()
            .take(30)
            .map(|d| {
                vec![
                    d.dt.clone(),
                    d.action.as_str().to_string(),
                    d.by.clone(),
                    d.champion_after.to_string(),
                    d.challenger
                        .as_ref()
                        .map(|c| c.to_string())
                        .unwrap_or_default(),
                    d.reason.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    ));
    h.push_str("</body></html>");
    h
}

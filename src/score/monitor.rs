//! Nightly monitoring of a score table: PSI of each model's predictions and inputs against its
//! training baseline, and grade migration against the previous night.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::GradeBand;
use crate::error::{Error, Result};

/// Bounds that raise warnings in the run summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorBounds {
    /// PSI at which a shift is reported as `warn`.
    pub psi_warn: f64,
    /// PSI at which it is an `alert` (a warning line in the run summary).
    pub psi_alert: f64,
    /// Share of entities moving two grades or more since the previous night that is an alert.
    pub migration_alert: f64,
}

impl Default for MonitorBounds {
    fn default() -> Self {
        MonitorBounds {
            psi_warn: 0.1,
            psi_alert: 0.25,
            migration_alert: 0.10,
        }
    }
}

pub fn status(b: &MonitorBounds, psi: f64) -> &'static str {
    if psi >= b.psi_alert {
        "alert"
    } else if psi >= b.psi_warn {
        "warn"
    } else {
        "ok"
    }
}

/// The name under which the prediction's PSI is recorded.
pub const PREDICTION: &str = "__prediction__";

/// One row per (arm, variable) of the drift measured while scoring (see
/// [`super::ArmDrift`]), with its status; returns the frame and the alert lines.
pub fn psi_table(
    table: &str,
    drift: &[super::ArmDrift],
    bounds: &MonitorBounds,
) -> Result<(DataFrame, Vec<String>)> {
    let (mut c_arm, mut c_model, mut c_version, mut c_var, mut c_psi, mut c_status, mut c_rows) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut alerts = Vec::new();
    for d in drift {
        for (var, psi) in &d.psi {
            let st = status(bounds, *psi);
            if st == "alert" {
                alerts.push(format!(
                    "PSI of {} for {} ({}) is {psi:.3} (alert at {})",
                    if var == PREDICTION {
                        "the prediction".to_string()
                    } else {
                        format!("input {var}")
                    },
                    d.model,
                    d.arm,
                    bounds.psi_alert
                ));
            }
            c_arm.push(d.arm.clone());
            c_model.push(d.model.model.clone());
            c_version.push(d.model.version.clone());
            c_var.push(var.clone());
            c_psi.push(*psi);
            c_status.push(st);
            c_rows.push(d.rows);
        }
    }
    let n = c_arm.len();
    let df = DataFrame::new(
        n,
        vec![
            Column::new("score_table".into(), vec![table; n]),
            Column::new("arm".into(), c_arm),
            Column::new("model_name".into(), c_model),
            Column::new("model_version".into(), c_version),
            Column::new("variable".into(), c_var),
            Column::new("psi".into(), c_psi),
            Column::new("status".into(), c_status),
            Column::new("rows".into(), c_rows),
        ],
    )
    .map_err(|e| Error::Other(e.to_string()))?;
    Ok((df, alerts))
}

/// Worst grade (highest PD) of each entity.
fn grade_by_entity(df: &DataFrame) -> Result<HashMap<&str, (f64, &str)>> {
    let err = |e: PolarsError| Error::Other(format!("grade migration: {e}"));
    let ent = df.column("entity_id").map_err(err)?.str().map_err(err)?;
    let pd = df.column("pd").map_err(err)?.f64().map_err(err)?;
    let grade = df.column("grade").map_err(err)?.str().map_err(err)?;
    let mut out: HashMap<&str, (f64, &str)> = HashMap::with_capacity(df.height());
    for ((e, p), g) in ent.iter().zip(pd.iter()).zip(grade.iter()) {
        let (Some(e), Some(p), Some(g)) = (e, p, g) else {
            continue;
        };
        let slot = out.entry(e).or_insert((f64::NEG_INFINITY, ""));
        if p > slot.0 {
            *slot = (p, g);
        }
    }
    Ok(out)
}

/// Grade migration of entities scored on both nights: one row per (grade before, grade now)
/// with counts and shares; plus the alert line when too many moved two grades or more.
pub fn grade_migration(
    table: &str,
    today: &DataFrame,
    yesterday: Option<(&str, &DataFrame)>,
    grades: &[GradeBand],
    bounds: &MonitorBounds,
) -> Result<(DataFrame, Vec<String>)> {
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut alerts = Vec::new();
    let mut prev_dt = String::new();
    if let Some((dt, y)) = yesterday {
        prev_dt = dt.to_string();
        let now = grade_by_entity(today)?;
        let before = grade_by_entity(y)?;
        let rank = |g: &str| grades.iter().position(|b| b.grade == g);
        let (mut both, mut far) = (0u64, 0u64);
        for (e, (_, g)) in &now {
            if let Some((_, b)) = before.get(e) {
                both += 1;
                if let (Some(a), Some(c)) = (rank(b), rank(g)) {
                    if a.abs_diff(c) >= 2 {
                        far += 1;
                    }
                }
                *counts.entry((b.to_string(), g.to_string())).or_default() += 1;
            }
        }
        if both > 0 && far as f64 / both as f64 > bounds.migration_alert {
            alerts.push(format!(
                "{far} of {both} entities of score.{table} moved two grades or more since {dt} ({:.1}%, alert above {:.1}%)",
                100.0 * far as f64 / both as f64,
                100.0 * bounds.migration_alert
            ));
        }
    }
    let total: u64 = counts.values().sum();
    let n = counts.len();
    let (mut from, mut to, mut cnt, mut share) = (vec![], vec![], vec![], vec![]);
    for ((a, b), c) in counts {
        from.push(a);
        to.push(b);
        cnt.push(c);
        share.push(c as f64 / total.max(1) as f64);
    }
    let df = DataFrame::new(
        n,
        vec![
            Column::new("score_table".into(), vec![table; n]),
            Column::new("previous_dt".into(), vec![prev_dt.as_str(); n]),
            Column::new("grade_before".into(), from),
            Column::new("grade_now".into(), to),
            Column::new("entities".into(), cnt),
            Column::new("share".into(), share),
        ],
    )
    .map_err(|e| Error::Other(e.to_string()))?;
    Ok((df, alerts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_alerts_when_the_population_shifts() {
        use crate::model::champion::ModelRef;
        use crate::model::metrics::Distribution;
        let train: Vec<f64> = (0..5000).map(|i| (i % 100) as f64).collect();
        let base = Distribution::of(&train, 10);
        let shifted: Vec<f64> = train.iter().map(|v| v + 60.0).collect();
        let drift = |vals: &[f64]| super::super::ArmDrift {
            arm: "champion".into(),
            model: ModelRef {
                model: "m".into(),
                version: "v0001".into(),
            },
            rows: vals.len() as u64,
            psi: vec![
                (PREDICTION.to_string(), base.psi(vals)),
                ("x".to_string(), base.psi(vals)),
            ],
        };
        let bounds = MonitorBounds::default();
        let (df, alerts) = psi_table("t", &[drift(&train)], &bounds).unwrap();
        assert_eq!(df.height(), 2);
        assert!(alerts.is_empty());
        let (df, alerts) = psi_table("t", &[drift(&shifted)], &bounds).unwrap();
        let st: Vec<Option<&str>> = df.column("status").unwrap().str().unwrap().iter().collect();
        assert_eq!(st, vec![Some("alert"), Some("alert")]);
        assert_eq!(alerts.len(), 2);
        assert!(alerts[0].contains("PSI of the prediction"));
    }

    #[test]
    fn migration_counts_and_alert() {
        let g = super::super::default_grades();
        let mk = |ents: &[&str], pds: &[f64]| {
            let grades: Vec<&str> = pds.iter().map(|&p| super::super::grade_of(&g, p)).collect();
            df!("entity_id" => ents, "pd" => pds, "grade" => grades).unwrap()
        };
        let y = mk(&["a", "b", "c", "c"], &[0.005, 0.03, 0.2, 0.01]);
        let t = mk(&["a", "b", "c", "d"], &[0.005, 0.2, 0.2, 0.5]);
        let (df, alerts) = grade_migration(
            "t",
            &t,
            Some(("2026-11-25", &y)),
            &g,
            &MonitorBounds::default(),
        )
        .unwrap();
        // a: A->A, b: C->F (three grades: an alert), c: worst row F->F; d is new.
        assert_eq!(df.height(), 3);
        let total: u64 = df.column("entities").unwrap().u64().unwrap().sum().unwrap();
        assert_eq!(total, 3);
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].contains("1 of 3"));
    }
}

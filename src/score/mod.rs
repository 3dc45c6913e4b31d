//! Batch scoring: the day's population through the family's champion and challenger (A/B by a
//! hash of the entity), probability of default, score, grade, reason codes, fraud flags and the
//! credit limit after policy caps, into a score table of a fixed, versioned schema.
//!
//! The schema is [`SCHEMA`] (version [`SCHEMA_VERSION`]), documented in docs/score-tables.md
//! and saved in docs/score-schema-v1.json: tests fail when either drifts from the code.

pub mod monitor;
pub mod reasons;

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::champion::ModelRef;
use crate::model::pipeline::{Baseline, TrainedModel};
use crate::model::rng::hash_unit;

pub const SCHEMA_VERSION: i32 = 1;

/// Column name, Parquet/polars type, nullable, meaning. Append-only within a major version.
pub const SCHEMA: &[(&str, &str, bool, &str)] = &[
    (
        "record_id",
        "str",
        false,
        "the scored row's id (e.g. application_id)",
    ),
    (
        "entity_id",
        "str",
        false,
        "the A/B unit (e.g. the enterprise), tokenized with the project's PII key",
    ),
    ("arm", "str", false, "champion or challenger"),
    (
        "model_name",
        "str",
        false,
        "registry name of the model that scored the row",
    ),
    (
        "model_version",
        "str",
        false,
        "registry version of that model",
    ),
    ("pd", "f64", false, "probability of default, in (0, 1)"),
    (
        "score",
        "i32",
        false,
        "points: offset + factor * ln((1 - pd) / pd), factor = pdo / ln 2",
    ),
    ("grade", "str", false, "risk grade from the PD bands"),
    ("decision", "str", false, "approve or decline"),
    (
        "decline_reason",
        "str",
        true,
        "why a declined row was declined; null when approved",
    ),
    (
        "credit_limit",
        "f64",
        false,
        "granted limit after caps and rounding; 0 when declined",
    ),
    (
        "limit_model",
        "f64",
        true,
        "the limit model's prediction before caps; null without a limit model",
    ),
    (
        "limit_cap",
        "str",
        false,
        "what set the limit: model, grade, a cap's name, declined or none",
    ),
    ("reason_1", "str", true, "input that raised the risk most"),
    ("reason_2", "str", true, "second reason"),
    ("reason_3", "str", true, "third reason"),
    (
        "fraud_flags",
        "str",
        false,
        "fraud rules the row met, ';'-separated; empty when none",
    ),
    ("run_id", "str", false, "the run that wrote the row"),
    ("schema_version", "i32", false, "this schema's version"),
];

/// The schema as JSON (what docs/score-schema-v1.json holds and the Parquet metadata carries).
pub fn schema_json() -> serde_json::Value {
    serde_json::json!({
        "version": SCHEMA_VERSION,
        "columns": SCHEMA.iter().map(|(n, t, nullable, doc)| serde_json::json!({
            "name": n, "type": t, "nullable": nullable, "doc": doc,
        })).collect::<Vec<_>>(),
    })
}

/// PD to points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scale {
    pub pdo: f64,
    pub base_score: f64,
    /// Good:bad odds at `base_score`.
    pub base_odds: f64,
}

impl Default for Scale {
    fn default() -> Self {
        Scale {
            pdo: 20.0,
            base_score: 600.0,
            base_odds: 50.0,
        }
    }
}

impl Scale {
    pub fn points(&self, pd: f64) -> i32 {
        let p = pd.clamp(1e-9, 1.0 - 1e-9);
        let factor = self.pdo / std::f64::consts::LN_2;
        let offset = self.base_score - factor * self.base_odds.ln();
        (offset + factor * ((1.0 - p) / p).ln()).round() as i32
    }
}

/// A grade: rows with PD up to `max_pd` (and above the previous band's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradeBand {
    pub grade: String,
    pub max_pd: f64,
}

pub fn default_grades() -> Vec<GradeBand> {
    [
        ("A", 0.01),
        ("B", 0.02),
        ("C", 0.04),
        ("D", 0.08),
        ("E", 0.15),
        ("F", 0.30),
        ("G", 1.0),
    ]
    .iter()
    .map(|(g, p)| GradeBand {
        grade: g.to_string(),
        max_pd: *p,
    })
    .collect()
}

pub fn grade_of(grades: &[GradeBand], pd: f64) -> &str {
    grades
        .iter()
        .find(|g| pd <= g.max_pd)
        .or(grades.last())
        .map(|g| g.grade.as_str())
        .unwrap_or("")
}

/// A/B split: rows of entities whose hash under `salt` falls below `challenger_share` go to
/// the challenger. The salt is part of the assignment: change it and every entity is drawn
/// again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbConfig {
    pub challenger_share: f64,
    pub salt: String,
}

pub fn arm_is_challenger(ab: &AbConfig, entity: &str) -> bool {
    hash_unit(&ab.salt, entity) < ab.challenger_share
}

/// A ceiling on the limit: a SQL expression over the input row (null: the cap does not apply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    pub name: String,
    pub ceiling: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// The credit-limit policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitPolicy {
    /// The limit (regression) model in the registry; its latest version is used.
    pub model: Option<String>,
    /// Decline above this PD.
    pub max_pd: Option<f64>,
    /// Decline when the capped limit is below this.
    #[serde(default)]
    pub min_limit: f64,
    /// Round the limit down to a multiple of this (0: no rounding).
    #[serde(default)]
    pub round_to: f64,
    /// Highest limit per grade; a grade capped at 0 is declined.
    #[serde(default)]
    pub grade_caps: BTreeMap<String, f64>,
    #[serde(default)]
    pub caps: Vec<Cap>,
}

/// A fraud rule: a SQL condition over the input row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FraudRule {
    pub flag: String,
    pub when: String,
    /// Decline rows that meet it (else only flag them).
    #[serde(default)]
    pub decline: bool,
}

/// A model that scores rows, with what is needed to explain and monitor it.
pub struct ArmModel {
    pub model_ref: ModelRef,
    pub model: TrainedModel,
    pub baseline: Option<Baseline>,
}

/// Everything a scoring pass needs besides the rows.
pub struct ScorePlan<'a> {
    pub id_column: &'a str,
    pub entity_column: &'a str,
    pub champion: &'a ArmModel,
    pub challenger: Option<&'a ArmModel>,
    pub ab: &'a AbConfig,
    pub scale: &'a Scale,
    pub grades: &'a [GradeBand],
    pub limit: Option<&'a LimitPolicy>,
    pub limit_model: Option<&'a TrainedModel>,
    pub fraud: &'a [FraudRule],
    pub tokenize: &'a (dyn Fn(&str) -> String + Sync),
    pub run_id: &'a str,
}

/// What a scoring pass wrote, for the summary, `_SUCCESS` and the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScoreStats {
    pub rows: u64,
    pub arms: BTreeMap<String, u64>,
    pub grades: BTreeMap<String, BTreeMap<String, u64>>,
    pub declines: BTreeMap<String, u64>,
    /// Rows whose limit each cap set (the binding cap), and rows a cap could not judge (null).
    pub binding_caps: BTreeMap<String, u64>,
    pub caps_missing: BTreeMap<String, u64>,
    pub fraud_flags: BTreeMap<String, u64>,
    pub mean_pd: BTreeMap<String, f64>,
}

fn sql_error(what: &str, e: PolarsError) -> Error {
    Error::config(format!("{what}: {e}"))
}

/// Adds `__cap_i` and `__fraud_i` columns and applies the population filter, in one SQL pass.
pub fn prepare_population(
    df: DataFrame,
    population: Option<&str>,
    limit: Option<&LimitPolicy>,
    fraud: &[FraudRule],
) -> Result<DataFrame> {
    let mut extra = Vec::new();
    if let Some(l) = limit {
        for (i, c) in l.caps.iter().enumerate() {
            extra.push(format!("CAST(({}) AS DOUBLE) AS \"__cap_{i}\"", c.ceiling));
        }
    }
    for (i, f) in fraud.iter().enumerate() {
        extra.push(format!("COALESCE(({}), FALSE) AS \"__fraud_{i}\"", f.when));
    }
    if extra.is_empty() && population.is_none() {
        return Ok(df);
    }
    let sql = format!(
        "SELECT *{}{} FROM population{}",
        if extra.is_empty() { "" } else { ", " },
        extra.join(", "),
        population
            .map(|p| format!(" WHERE {p}"))
            .unwrap_or_default()
    );
    let mut ctx = polars::sql::SQLContext::new();
    ctx.register("population", df.lazy());
    ctx.execute(&sql)
        .and_then(|lf| lf.collect())
        .map_err(|e| sql_error("`population`, `limit.caps` or `fraud` rules", e))
}

fn string_column(df: &DataFrame, name: &str, what: &str) -> Result<StringChunked> {
    let c = df.column(name).map_err(|_| {
        Error::config(format!(
            "`{what}`: the input has no column {name:?} (columns: {})",
            df.get_column_names()
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let s = c
        .as_materialized_series()
        .cast(&DataType::String)
        .map_err(|e| sql_error(what, e))?;
    Ok(s.str().expect("string").clone())
}

fn f64_column(df: &DataFrame, name: &str) -> Option<Vec<Option<f64>>> {
    let s = df
        .column(name)
        .ok()?
        .as_materialized_series()
        .cast(&DataType::Float64)
        .ok()?;
    Some(s.f64().ok()?.iter().collect())
}

fn bool_column(df: &DataFrame, name: &str) -> Vec<bool> {
    df.column(name)
        .ok()
        .and_then(|c| c.as_materialized_series().cast(&DataType::Boolean).ok())
        .map(|s| {
            s.bool()
                .map(|b| b.iter().map(|v| v.unwrap_or(false)).collect())
                .unwrap_or_default()
        })
        .unwrap_or_else(|| vec![false; df.height()])
}

/// The per-row outcome of the limit policy.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitOutcome {
    pub limit: f64,
    pub cap: String,
    pub decline: Option<String>,
}

/// Applies the policy to one row. `caps` holds each cap's ceiling for the row (None: no data).
pub fn apply_limit(
    policy: Option<&LimitPolicy>,
    pd: f64,
    grade: &str,
    model_limit: Option<f64>,
    caps: &[Option<f64>],
    fraud_decline: Option<&str>,
) -> LimitOutcome {
    let decline = |why: String| LimitOutcome {
        limit: 0.0,
        cap: "declined".into(),
        decline: Some(why),
    };
    if let Some(f) = fraud_decline {
        return decline(format!("fraud:{f}"));
    }
    let Some(p) = policy else {
        return LimitOutcome {
            limit: 0.0,
            cap: "none".into(),
            decline: None,
        };
    };
    if let Some(max) = p.max_pd {
        if pd > max {
            return decline("pd_above_max".into());
        }
    }
    if p.grade_caps.get(grade).is_some_and(|&c| c <= 0.0) {
        return decline(format!("grade_{grade}_not_eligible"));
    }
    let (mut limit, mut cap) = match model_limit {
        Some(v) if v.is_finite() => (v.max(0.0), "model".to_string()),
        _ => (f64::INFINITY, "none".to_string()),
    };
    if let Some(&g) = p.grade_caps.get(grade) {
        if g < limit {
            limit = g;
            cap = "grade".into();
        }
    }
    for (c, v) in p.caps.iter().zip(caps) {
        if let Some(v) = v {
            let v = v.max(0.0);
            if v < limit {
                limit = v;
                cap = c.name.clone();
            }
        }
    }
    if !limit.is_finite() {
        limit = 0.0;
    }
    if p.round_to > 0.0 {
        limit = (limit / p.round_to).floor() * p.round_to;
    }
    if limit < p.min_limit || (limit <= 0.0 && model_limit.is_some()) {
        return decline("limit_below_minimum".into());
    }
    LimitOutcome {
        limit,
        cap,
        decline: None,
    }
}

/// What a scoring pass did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScoreReport {
    pub table: String,
    pub dt: String,
    pub path: String,
    pub csv: Option<String>,
    pub champion: String,
    pub challenger: Option<String>,
    pub limit_model: Option<String>,
    pub stats: ScoreStats,
    pub alerts: Vec<String>,
    pub seconds: f64,
}

/// A scored population: the score-table frame, its statistics, and the drift of each arm's
/// model (PSI of its prediction and of each raw input against its training baseline, on the
/// rows it scored).
pub struct Scored {
    pub frame: DataFrame,
    pub stats: ScoreStats,
    pub drift: Vec<ArmDrift>,
}

pub struct ArmDrift {
    pub arm: String,
    pub model: ModelRef,
    pub rows: u64,
    /// (variable, PSI); the prediction is [`monitor::PREDICTION`].
    pub psi: Vec<(String, f64)>,
}

/// PSI of the prediction and of every column of `x` against `baseline`, on at most 200,000
/// evenly strided rows (plenty for ten bins, and bounded time on any population).
fn drift(baseline: &Baseline, x: &crate::model::Matrix, pd: &[f64]) -> Vec<(String, f64)> {
    use rayon::prelude::*;
    let stride = (x.rows / 200_000).max(1);
    let pd: Vec<f64> = pd.iter().step_by(stride).copied().collect();
    let mut out = vec![(
        monitor::PREDICTION.to_string(),
        baseline.prediction.psi(&pd),
    )];
    let cols = x.cols;
    out.par_extend(
        baseline
            .features
            .par_iter()
            .enumerate()
            .filter(|(j, _)| *j < cols)
            .map(|(j, (name, d))| {
                let column: Vec<f64> = (0..x.rows)
                    .step_by(stride)
                    .map(|i| x.data[i * cols + j])
                    .collect();
                (name.clone(), d.psi(&column))
            }),
    );
    out
}

/// Scores a prepared population (see [`prepare_population`]) into the score-table frame.
/// Each arm's model encodes and scores only its own rows: 1M applicants cost one pass of
/// each input, whichever model scores them.
pub fn score(df: &DataFrame, plan: &ScorePlan<'_>) -> Result<Scored> {
    use rayon::prelude::*;
    let n = df.height();
    let mut clock = std::time::Instant::now();
    let mut step = |what: &str| {
        crate::log::debug(
            what,
            &[("seconds", serde_json::json!(clock.elapsed().as_secs_f64()))],
        );
        clock = std::time::Instant::now();
    };
    let ids = string_column(df, plan.id_column, "id")?;
    let entities = string_column(df, plan.entity_column, "entity")?;
    let challenger_rows: Vec<bool> = match plan.challenger {
        Some(_) => entities
            .par_iter()
            .map(|e| arm_is_challenger(plan.ab, e.unwrap_or("")))
            .collect(),
        None => vec![false; n],
    };
    let tokens: Vec<String> = entities
        .par_iter()
        .map(|e| (plan.tokenize)(e.unwrap_or("")))
        .collect();
    step("arms and tokens");
    let mut pd = vec![f64::NAN; n];
    let mut reason_idx: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut drifts = Vec::new();
    let arms: Vec<(&str, &ArmModel)> = std::iter::once(("champion", plan.champion))
        .chain(plan.challenger.map(|c| ("challenger", c)))
        .collect();
    // Inputs encoded once per distinct model signature (champion and challenger usually
    // share one), then each arm's rows selected.
    let mut encoded: Vec<(&ArmModel, crate::model::Matrix)> = Vec::new();
    for (_, m) in &arms {
        if encoded.iter().any(|(e, _)| {
            e.model.input_names == m.model.input_names && e.model.input_kinds == m.model.input_kinds
        }) {
            continue;
        }
        let x = crate::model::prep::encode_like(df, &m.model.input_names, &m.model.input_kinds)
            .map_err(|e| Error::config(format!("{} cannot score this input: {e}", m.model_ref)))?;
        encoded.push((m, x));
    }
    step("encoded the inputs");
    for (arm, m) in &arms {
        let mine: Vec<usize> = (0..n)
            .filter(|&i| challenger_rows[i] == (*arm == "challenger"))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let full = &encoded
            .iter()
            .find(|(e, _)| {
                e.model.input_names == m.model.input_names
                    && e.model.input_kinds == m.model.input_kinds
            })
            .expect("encoded above")
            .1;
        // An arm that scores every row uses the encoded inputs as they are.
        let selected;
        let x: &crate::model::Matrix = if mine.len() == n {
            full
        } else {
            selected = full.select_rows(&mine);
            &selected
        };
        let (p, r) = reasons::explain(&m.model, x, m.baseline.as_ref(), 3);
        step("scored and explained");
        if let Some(b) = &m.baseline {
            drifts.push(ArmDrift {
                arm: arm.to_string(),
                model: m.model_ref.clone(),
                rows: mine.len() as u64,
                psi: drift(b, x, &p),
            });
        }
        step("drift");
        for (k, (&i, r)) in mine.iter().zip(r).enumerate() {
            pd[i] = p[k];
            reason_idx[i] = r;
        }
    }
    let limit_raw: Option<Vec<f64>> =
        match plan.limit_model {
            Some(lm) => Some(lm.predict_frame(df).map_err(|e| {
                Error::config(format!("the limit model cannot score this input: {e}"))
            })?),
            None => None,
        };
    step("limit model");
    let cap_values: Vec<Vec<Option<f64>>> = plan
        .limit
        .map(|l| {
            (0..l.caps.len())
                .map(|i| f64_column(df, &format!("__cap_{i}")).unwrap_or_else(|| vec![None; n]))
                .collect()
        })
        .unwrap_or_default();
    let fraud_hits: Vec<Vec<bool>> = (0..plan.fraud.len())
        .map(|i| bool_column(df, &format!("__fraud_{i}")))
        .collect();

    let mut stats = ScoreStats {
        rows: n as u64,
        ..ScoreStats::default()
    };
    let mut c_arm: Vec<&str> = Vec::with_capacity(n);
    let mut c_name: Vec<&str> = Vec::with_capacity(n);
    let mut c_version: Vec<&str> = Vec::with_capacity(n);
    let mut c_score = Vec::with_capacity(n);
    let mut c_grade: Vec<&str> = Vec::with_capacity(n);
    let mut c_decision: Vec<&str> = Vec::with_capacity(n);
    let mut c_decline: Vec<Option<String>> = Vec::with_capacity(n);
    let mut c_limit = Vec::with_capacity(n);
    let mut c_cap: Vec<String> = Vec::with_capacity(n);
    let mut c_reason: [Vec<Option<&str>>; 3] = Default::default();
    let mut c_fraud: Vec<String> = Vec::with_capacity(n);
    let mut pd_sum: BTreeMap<String, f64> = BTreeMap::new();
    let mut caps = Vec::with_capacity(cap_values.len());
    for i in 0..n {
        let (arm, m) = if challenger_rows[i] {
            (
                "challenger",
                plan.challenger.expect("challenger rows need one"),
            )
        } else {
            ("champion", plan.champion)
        };
        let p = pd[i];
        let grade = grade_of(plan.grades, p);
        let mut flags = String::new();
        let mut fraud_decline = None;
        for (f, h) in plan.fraud.iter().zip(&fraud_hits) {
            if h[i] {
                if !flags.is_empty() {
                    flags.push(';');
                }
                flags.push_str(&f.flag);
                *stats.fraud_flags.entry(f.flag.clone()).or_default() += 1;
                if f.decline && fraud_decline.is_none() {
                    fraud_decline = Some(f.flag.as_str());
                }
            }
        }
        caps.clear();
        caps.extend(cap_values.iter().map(|c| c[i]));
        let lo = apply_limit(
            plan.limit,
            p,
            grade,
            limit_raw.as_ref().map(|l| l[i]),
            &caps,
            fraud_decline,
        );
        *stats.arms.entry(arm.into()).or_default() += 1;
        *stats
            .grades
            .entry(arm.into())
            .or_default()
            .entry(grade.to_string())
            .or_default() += 1;
        *pd_sum.entry(arm.into()).or_default() += p;
        if let Some(l) = plan.limit {
            for (c, v) in l.caps.iter().zip(&caps) {
                if v.is_none() {
                    *stats.caps_missing.entry(c.name.clone()).or_default() += 1;
                }
            }
        }
        match &lo.decline {
            Some(d) => *stats.declines.entry(d.clone()).or_default() += 1,
            None => *stats.binding_caps.entry(lo.cap.clone()).or_default() += 1,
        }
        c_arm.push(arm);
        c_name.push(&m.model_ref.model);
        c_version.push(&m.model_ref.version);
        c_score.push(plan.scale.points(p));
        c_grade.push(grade);
        c_decision.push(if lo.decline.is_some() {
            "decline"
        } else {
            "approve"
        });
        c_decline.push(lo.decline);
        c_limit.push(lo.limit);
        c_cap.push(lo.cap);
        for (k, col) in c_reason.iter_mut().enumerate() {
            col.push(
                reason_idx[i]
                    .get(k)
                    .map(|&j| m.model.input_names[j as usize].as_str()),
            );
        }
        c_fraud.push(flags);
    }
    for (arm, s) in pd_sum {
        let cnt = stats.arms.get(&arm).copied().unwrap_or(1).max(1) as f64;
        stats.mean_pd.insert(arm, s / cnt);
    }
    step("limits and decisions");
    let [r1, r2, r3] = c_reason;
    let cols: Vec<Column> = vec![
        Column::new("record_id".into(), ids.into_series()),
        Column::new("entity_id".into(), tokens),
        Column::new("arm".into(), c_arm),
        Column::new("model_name".into(), c_name),
        Column::new("model_version".into(), c_version),
        Column::new("pd".into(), pd),
        Column::new("score".into(), c_score),
        Column::new("grade".into(), c_grade),
        Column::new("decision".into(), c_decision),
        Column::new("decline_reason".into(), c_decline),
        Column::new("credit_limit".into(), c_limit),
        Column::new(
            "limit_model".into(),
            limit_raw
                .map(|v| v.into_iter().map(Some).collect::<Vec<_>>())
                .unwrap_or_else(|| vec![None::<f64>; n]),
        ),
        Column::new("limit_cap".into(), c_cap),
        Column::new("reason_1".into(), r1),
        Column::new("reason_2".into(), r2),
        Column::new("reason_3".into(), r3),
        Column::new("fraud_flags".into(), c_fraud),
        Column::new("run_id".into(), vec![plan.run_id; n]),
        Column::new("schema_version".into(), vec![SCHEMA_VERSION; n]),
    ];
    let frame = DataFrame::new(n, cols).map_err(|e| Error::Other(e.to_string()))?;
    check_schema(&frame)?;
    step("built the frame");
    Ok(Scored {
        frame,
        stats,
        drift: drifts,
    })
}

fn dtype_name(d: &DataType) -> &'static str {
    match d {
        DataType::String => "str",
        DataType::Float64 => "f64",
        DataType::Int32 => "i32",
        _ => "other",
    }
}

/// The frame has exactly [`SCHEMA`]'s columns and types, in order.
pub fn check_schema(df: &DataFrame) -> Result<()> {
    let got: Vec<(String, &str)> = df
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), dtype_name(c.dtype())))
        .collect();
    let want: Vec<(String, &str)> = SCHEMA.iter().map(|c| (c.0.to_string(), c.1)).collect();
    if got != want {
        return Err(Error::Other(format!(
            "score frame does not match schema v{SCHEMA_VERSION}: {got:?} vs {want:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_follow_pdo() {
        let s = Scale::default();
        // At base odds 50:1 the score is the base score; doubling the odds adds pdo.
        let pd = 1.0 / 51.0;
        assert_eq!(s.points(pd), 600);
        let pd2 = 1.0 / 101.0;
        assert_eq!(s.points(pd2), 620);
        assert!(s.points(0.5) < s.points(0.1));
    }

    #[test]
    fn grades_by_pd_band() {
        let g = default_grades();
        assert_eq!(grade_of(&g, 0.005), "A");
        assert_eq!(grade_of(&g, 0.01), "A");
        assert_eq!(grade_of(&g, 0.0100001), "B");
        assert_eq!(grade_of(&g, 0.99), "G");
    }

    #[test]
    fn arms_are_stable_and_shares_hold() {
        let ab = AbConfig {
            challenger_share: 0.25,
            salt: "pre_credit".into(),
        };
        let ents: Vec<String> = (0..40_000).map(|i| format!("91{i:016}")).collect();
        let night1: Vec<bool> = ents.iter().map(|e| arm_is_challenger(&ab, e)).collect();
        let night2: Vec<bool> = ents.iter().map(|e| arm_is_challenger(&ab, e)).collect();
        assert_eq!(night1, night2);
        let share = night1.iter().filter(|&&b| b).count() as f64 / ents.len() as f64;
        assert!((share - 0.25).abs() < 0.01, "{share}");
        // Growing the share only moves entities into the challenger arm.
        let wider = AbConfig {
            challenger_share: 0.5,
            ..ab.clone()
        };
        assert!(ents
            .iter()
            .zip(&night1)
            .all(|(e, &b)| !b || arm_is_challenger(&wider, e)));
    }

    fn policy() -> LimitPolicy {
        LimitPolicy {
            model: Some("limit".into()),
            max_pd: Some(0.3),
            min_limit: 10_000.0,
            round_to: 1000.0,
            grade_caps: [("A".to_string(), 500_000.0), ("G".to_string(), 0.0)]
                .into_iter()
                .collect(),
            caps: vec![
                Cap {
                    name: "revenue".into(),
                    ceiling: "0.3 * sales_12m".into(),
                    description: None,
                },
                Cap {
                    name: "tax".into(),
                    ceiling: "10 * tax_paid_12m".into(),
                    description: None,
                },
            ],
        }
    }

    #[test]
    fn limit_caps_bind_in_turn() {
        let p = policy();
        let l = |pd, g, m, caps: &[Option<f64>]| apply_limit(Some(&p), pd, g, Some(m), caps, None);
        // The model's own figure when below every cap, rounded down.
        let o = l(0.01, "A", 123_456.0, &[Some(1e6), Some(1e6)]);
        assert_eq!((o.limit, o.cap.as_str()), (123_000.0, "model"));
        // The grade cap.
        let o = l(0.01, "A", 900_000.0, &[Some(1e6), Some(1e6)]);
        assert_eq!((o.limit, o.cap.as_str()), (500_000.0, "grade"));
        // The smallest ceiling wins; a missing ceiling does not apply.
        let o = l(0.01, "B", 900_000.0, &[Some(200_000.0), Some(150_000.0)]);
        assert_eq!((o.limit, o.cap.as_str()), (150_000.0, "tax"));
        let o = l(0.01, "B", 900_000.0, &[None, Some(180_500.0)]);
        assert_eq!((o.limit, o.cap.as_str()), (180_000.0, "tax"));
        // Declines: PD above the maximum, an ineligible grade, below the minimum, fraud.
        assert_eq!(
            l(0.31, "F", 1e5, &[None, None]).decline.as_deref(),
            Some("pd_above_max")
        );
        assert_eq!(
            l(0.2, "G", 1e5, &[None, None]).decline.as_deref(),
            Some("grade_G_not_eligible")
        );
        let o = l(0.01, "B", 9_999.0, &[None, None]);
        assert_eq!(
            (o.limit, o.decline.as_deref()),
            (0.0, Some("limit_below_minimum"))
        );
        let o = apply_limit(Some(&p), 0.01, "A", Some(1e5), &[], Some("shared_device"));
        assert_eq!(o.decline.as_deref(), Some("fraud:shared_device"));
        assert_eq!(o.limit, 0.0);
    }

    #[test]
    fn saved_schema_matches_the_code() {
        // docs/score-schema-v1.json is the contract other systems were given: a change to
        // SCHEMA must come with a new version and a new saved file, never silently.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/score-schema-v1.json");
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(saved, schema_json());
    }
}

//! `kind = "decide"`: the nightly champion/challenger decision of a model family.
//!
//! ```toml
//! # jobs/decide/pre_credit.toml
//! kind = "decide"
//! family = "pre_credit"                               # default: the file name
//! models = ["pre_credit_scorecard", "pre_credit_gbdt"] # the first is champion on the first night
//! [policy]                                            # defaults shown
//! min_auc_gain = 0.005
//! max_ks_drop = 0.0
//! max_oot_auc_drop = 0.0
//! max_score_psi = 0.25
//! nights = 2
//! min_events = 20
//! ```
//! The models must be trained with the same `split = { type = "hash", ... }` on the same
//! input and target: the champion (a version trained on an earlier night) and tonight's
//! challengers are then measured on the same hold-out rows, which none of them trained on,
//! and on the same out-of-time rows. Reads `models.<each model>`; writes the family state
//! (`warehouse/models/_champions/<family>.json`) and `monitor.champion_challenger`.

use std::sync::Arc;

use polars::prelude::*;
use serde::Deserialize;

use crate::config::Project;
use crate::error::{Error, Result};
use crate::model::champion::{self, Evidence, ModelRef, Policy, Role, SampleMetrics};
use crate::model::metrics::Distribution;
use crate::model::pipeline::{self, Split, TrainSpec};
use crate::model::registry;
use crate::schedule::{
    Committed, Io, JobCtx, JobError, JobFile, JobKind, JobOutcome, JobRef, PreparedJob, TableRef,
    Vars,
};
use crate::warehouse::{Layer, PartitionKey, Success, Warehouse};

pub struct DecideKind;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideConfig {
    family: Option<String>,
    models: Vec<String>,
    #[serde(default)]
    policy: Policy,
}

struct DecideJob {
    family: String,
    models: Vec<String>,
    policy: Policy,
}

pub const HISTORY_TABLE: &str = "champion_challenger";

/// A decide job's family: its `family`, else the job's name.
fn family_name(family: Option<&str>, job_name: &str) -> String {
    family.unwrap_or(job_name).to_string()
}

/// The family a job file declares and its models, when it is a decide job; `stem` is the
/// file's name, the job's name unless it says `name`.
pub fn declared_family(table: &toml::Table, stem: &str) -> Option<(String, Vec<String>)> {
    if table.get("kind").and_then(|v| v.as_str()) != Some("decide") {
        return None;
    }
    let str_of = |k: &str| table.get(k).and_then(|v| v.as_str());
    let family = family_name(str_of("family"), str_of("name").unwrap_or(stem));
    let models = table
        .get("models")?
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    Some((family, models))
}

impl JobKind for DecideKind {
    fn kind(&self) -> &str {
        "decide"
    }

    fn prepare(
        &self,
        file: &JobFile<'_>,
        _project: &Project,
    ) -> std::result::Result<Arc<dyn PreparedJob>, Vec<String>> {
        let (cfg, mut problems) = super::own_config_lenient::<DecideConfig>(
            file.own_keys().map(|(k, v)| (k.clone(), v.clone())),
        );
        let Some(cfg) = cfg else {
            return Err(problems);
        };
        let family = family_name(cfg.family.as_deref(), file.name);
        if !registry::is_name(&family) {
            problems.push(format!(
                "`family`: {family:?} must use letters, digits, _ and -"
            ));
        }
        if cfg.models.is_empty() {
            problems.push("`models`: list the family's models, the initial champion first".into());
        }
        if let Err(e) = cfg.policy.validate() {
            problems.push(e);
        }
        if !file.matrix_keys.is_empty() {
            problems.push("`matrix`: one decide job per family".into());
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Arc::new(DecideJob {
            family,
            models: cfg.models,
            policy: cfg.policy,
        }))
    }
}

/// What the train job recorded about a model version (spec.json).
struct VersionSpec {
    input: String,
    filter: Option<String>,
    train: TrainSpec,
}

fn read_spec(dir: &std::path::Path) -> Result<VersionSpec> {
    let p = dir.join("spec.json");
    let text = std::fs::read_to_string(&p).map_err(|e| Error::input(&p, e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::input(&p, e.to_string()))?;
    let train: TrainSpec = serde_json::from_value(v["train"].clone())
        .map_err(|e| Error::input(&p, format!("no training spec: {e}")))?;
    Ok(VersionSpec {
        input: v["input"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("feature.")
            .to_string(),
        filter: v["filter"].as_str().map(str::to_string),
        train,
    })
}

/// How a split reads in a message: `hash of application_id, 30% hold-out, out-of-time: the
/// last 90 days of apply_date`.
fn describe_split(split: &Split) -> String {
    // 0.3 * 100 is 30.000000000000004.
    let pct = |share: f64| (share * 1000.0).round() / 10.0;
    match split {
        Split::Stratified { test_size } => {
            format!("random stratified, {}% test", pct(*test_size))
        }
        Split::OutOfTime { column, cutoff } => format!("out-of-time on {column} at {cutoff}"),
        Split::Hash {
            column,
            test_size,
            oot_column,
            oot_days,
        } => {
            let mut d = format!("hash of {column}, {}% hold-out", pct(*test_size));
            match (oot_column, oot_days) {
                (Some(c), Some(n)) => {
                    d.push_str(&format!(", out-of-time: the last {n} days of {c}"))
                }
                (Some(c), None) => d.push_str(&format!(", out-of-time column {c}")),
                _ => d.push_str(", no out-of-time sample"),
            }
            d
        }
    }
}

/// What differs between two versions' training specs, each as `what: this vs that`.
fn spec_differences(s: &VersionSpec, reference: &VersionSpec) -> Vec<String> {
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    let mut out = Vec::new();
    if s.input != reference.input {
        out.push(format!(
            "input: feature.{} vs feature.{}",
            s.input, reference.input
        ));
    }
    if s.train.target != reference.train.target {
        out.push(format!(
            "target: {} vs {}",
            or_none(&s.train.target),
            or_none(&reference.train.target)
        ));
    }
    if s.filter != reference.filter {
        out.push(format!(
            "filter: {} vs {}",
            or_none(&s.filter),
            or_none(&reference.filter)
        ));
    }
    if s.train.split != reference.train.split {
        out.push(format!(
            "split: {} vs {}",
            describe_split(&s.train.split),
            describe_split(&reference.train.split)
        ));
    }
    out
}

fn metrics_on(y: &[f64], p: &[f64], rows: &[usize]) -> SampleMetrics {
    let yy: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
    let pp: Vec<f64> = rows.iter().map(|&i| p[i]).collect();
    SampleMetrics::compute(&yy, &pp)
}

impl DecideJob {
    fn decide(&self, ctx: &JobCtx<'_>) -> Result<JobOutcome> {
        let root = &ctx.project.warehouse_root;
        let dt = ctx.date.to_string();
        let mut state = champion::load(root, &self.family)?;
        // Tonight's candidates: the latest version of each model trained for this night or
        // before (tonight's train jobs run before this job; a re-run of an earlier night must
        // not judge versions trained on later nights).
        let registered = registry::list(root);
        let mut candidates: Vec<(ModelRef, std::path::PathBuf)> = Vec::new();
        for m in &self.models {
            let of_night = registered
                .iter()
                .rfind(|v| &v.name == m && v.dt.as_ref().is_none_or(|d| *d <= dt));
            let version = of_night.map(|v| v.version.as_str());
            let dir = registry::version_dir(root, m, version)?;
            let meta = registry::read_meta(&dir)?;
            candidates.push((
                ModelRef {
                    model: meta.name,
                    version: meta.version,
                },
                dir,
            ));
        }
        // A re-run of a night decides from the state before that night's decision.
        let champion_ref = state.champion_for(&dt);
        let recorded = state.policy_decision_of(&dt).cloned();
        let champion_dir = match &champion_ref {
            Some(c) => Some(registry::version_dir(root, &c.model, Some(&c.version))?),
            None => None,
        };
        // The shared hold-out comes from the models' split, which must agree.
        let reference = read_spec(&candidates[0].1)?;
        let (column, test_size, oot) = match &reference.train.split {
            Split::Hash {
                column,
                test_size,
                oot_column,
                oot_days,
            } => (
                column.clone(),
                *test_size,
                oot_column.clone().zip(*oot_days),
            ),
            other => {
                return Err(Error::config(format!(
                    "{}: split {}; champion/challenger needs `split = {{ type = \"hash\", column = ... }}` so that every model is measured on rows none of them trained on",
                    candidates[0].0,
                    describe_split(other)
                )))
            }
        };
        let mut all_dirs: Vec<(ModelRef, std::path::PathBuf)> = candidates.clone();
        if let (Some(r), Some(d)) = (&champion_ref, &champion_dir) {
            all_dirs.push((r.clone(), d.clone()));
        }
        for (r, d) in &all_dirs {
            let s = read_spec(d)?;
            let differences = spec_differences(&s, &reference);
            if !differences.is_empty() {
                return Err(Error::config(format!(
                    "{r} and {} differ in {}: the family's models must share input, target, filter and hold-out (retrain them with the same settings)",
                    candidates[0].0,
                    differences.join("; ")
                )));
            }
        }
        let target = reference
            .train
            .target
            .clone()
            .ok_or_else(|| Error::config("the family's models have no target"))?;
        let wh = Warehouse::new(root);
        let part = wh.partition_dir(Layer::Feature, &reference.input, &PartitionKey::date(&dt));
        if crate::warehouse::read_success(&part).is_none() {
            return Err(Error::input(
                &part,
                format!(
                    "feature.{} has no committed partition for {dt}",
                    reference.input
                ),
            ));
        }
        let mut df = crate::warehouse::parquet::read_partition(&part)?;
        if let Some(f) = &reference.filter {
            let mut sql = polars::sql::SQLContext::new();
            sql.register("t", df.lazy());
            df = sql
                .execute(&format!("SELECT * FROM t WHERE {f}"))
                .and_then(|lf| lf.collect())
                .map_err(|e| Error::config(format!("`filter` {f:?}: {e}")))?;
        }
        let target_col = crate::model::prep::resolve_column(&df, &target);
        let (y, _) = crate::model::prep::binary_target(&df, &target_col)?;
        let rows: Vec<usize> = (0..df.height()).filter(|&i| y[i].is_finite()).collect();
        let h = pipeline::holdout_rows(
            &df,
            &rows,
            &column,
            test_size,
            oot.as_ref().map(|(c, d)| (c.as_str(), *d)),
        )?;
        let evidence = |r: &ModelRef, dir: &std::path::Path, role: Role| -> Result<Evidence> {
            let model = registry::load(dir)?;
            let p = model.predict_frame(&df)?;
            let holdout = metrics_on(&y, &p, &h.test);
            let oot_m = (!h.oot.is_empty()).then(|| metrics_on(&y, &p, &h.oot));
            let psi = (!h.oot.is_empty() && !h.test.is_empty()).then(|| {
                let dev: Vec<f64> = h.test.iter().map(|&i| p[i]).collect();
                let recent: Vec<f64> = h.oot.iter().map(|&i| p[i]).collect();
                Distribution::of(&dev, 10).psi(&recent)
            });
            Ok(Evidence {
                model: r.clone(),
                role,
                holdout,
                oot: oot_m,
                score_psi: psi,
                checks: Vec::new(),
                passes: false,
                streak: 0,
            })
        };
        let champ_ev = match (&champion_ref, &champion_dir) {
            (Some(r), Some(d)) => Some(evidence(r, d, Role::Champion)?),
            _ => None,
        };
        let mut chal_ev = Vec::new();
        for (r, d) in &candidates {
            if Some(r) == champion_ref.as_ref() {
                continue;
            }
            chal_ev.push(evidence(r, d, Role::Challenger)?);
        }
        if champ_ev.is_none() && chal_ev.is_empty() {
            return Err(Error::config("no model to decide on"));
        }
        let decision =
            champion::decide(&mut state, &self.policy, champ_ev, chal_ev, &dt, ctx.run_id);
        // The history table first, then the state: a crash in between leaves a re-runnable
        // night (the state is what scoring reads).
        let mut hist = history_frame(&self.family, &decision)?;
        wh.stage(
            Layer::Monitor,
            HISTORY_TABLE,
            &PartitionKey::date(&dt).with("family", &self.family),
            ctx.run_id,
        )?
        .commit_frame(
            &mut hist,
            &[],
            Success {
                job: format!("decide.{}", self.family),
                run_id: ctx.run_id.to_string(),
                extra: serde_json::json!({"action": decision.action.as_str(), "champion": decision.champion_after.to_string()}),
                ..Success::default()
            },
        )?;
        champion::save(root, &state)?;
        let mut warnings = Vec::new();
        if let Some(r) = recorded.filter(|r| {
            state.decisions.last() != Some(&decision)
                && (r.action, &r.champion_after) != (decision.action, &decision.champion_after)
        }) {
            warnings.push(format!(
                "{}: {dt} decided again as {} ({}) instead of {} ({}); later nights were decided against the old outcome, so the champion stays {} until they are re-run",
                self.family,
                decision.action.as_str(),
                decision.champion_after,
                r.action.as_str(),
                r.champion_after,
                state.champion.as_ref().map(|c| c.model.to_string()).unwrap_or_default()
            ));
        }
        if decision.action == champion::Action::Promote {
            warnings.push(format!(
                "{}: {} promoted to champion (was {})",
                self.family,
                decision.champion_after,
                decision
                    .champion_before
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default()
            ));
        }
        Ok(JobOutcome {
            rows_in: df.height() as u64,
            rows_out: decision.evidence.len() as u64,
            bytes: 0,
            message: format!(
                "{}: {} — champion {}{}; {}",
                self.family,
                decision.action.as_str(),
                decision.champion_after,
                decision
                    .challenger
                    .as_ref()
                    .map(|c| format!(", challenger {c}"))
                    .unwrap_or_default(),
                decision.reason
            ),
            warnings,
        })
    }
}

/// One row per model evaluated in a decision.
pub fn history_frame(family: &str, d: &champion::Decision) -> Result<DataFrame> {
    let n = d.evidence.len();
    let e = &d.evidence;
    let f =
        |g: &dyn Fn(&Evidence) -> Option<f64>| -> Vec<Option<f64>> { e.iter().map(g).collect() };
    let cols = vec![
        Column::new("family".into(), vec![family; n]),
        Column::new("run_id".into(), vec![d.run_id.as_str(); n]),
        Column::new(
            "role".into(),
            e.iter()
                .map(|x| match x.role {
                    Role::Champion => "champion",
                    Role::Challenger => "challenger",
                })
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "model_name".into(),
            e.iter().map(|x| x.model.model.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "model_version".into(),
            e.iter()
                .map(|x| x.model.version.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "holdout_rows".into(),
            e.iter().map(|x| x.holdout.rows).collect::<Vec<_>>(),
        ),
        Column::new(
            "holdout_events".into(),
            e.iter().map(|x| x.holdout.events).collect::<Vec<_>>(),
        ),
        Column::new("auc_holdout".into(), f(&|x| x.holdout.auc)),
        Column::new("ks_holdout".into(), f(&|x| x.holdout.ks)),
        Column::new("gini_holdout".into(), f(&|x| x.holdout.gini)),
        Column::new(
            "oot_rows".into(),
            e.iter()
                .map(|x| x.oot.as_ref().map(|o| o.rows))
                .collect::<Vec<_>>(),
        ),
        Column::new("auc_oot".into(), f(&|x| x.oot.as_ref().and_then(|o| o.auc))),
        Column::new("ks_oot".into(), f(&|x| x.oot.as_ref().and_then(|o| o.ks))),
        Column::new("score_psi".into(), f(&|x| x.score_psi)),
        Column::new(
            "passes".into(),
            e.iter()
                .map(|x| (x.role == Role::Challenger).then_some(x.passes))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "streak".into(),
            e.iter().map(|x| x.streak).collect::<Vec<_>>(),
        ),
        Column::new(
            "failed_rules".into(),
            e.iter()
                .map(|x| {
                    x.checks
                        .iter()
                        .filter(|r| !r.pass)
                        .map(|r| r.rule.as_str())
                        .collect::<Vec<_>>()
                        .join(";")
                })
                .collect::<Vec<_>>(),
        ),
        Column::new("action".into(), vec![d.action.as_str(); n]),
        Column::new(
            "champion_after".into(),
            vec![d.champion_after.to_string(); n],
        ),
        Column::new("reason".into(), vec![d.reason.as_str(); n]),
    ];
    DataFrame::new(n, cols).map_err(|e| Error::Other(e.to_string()))
}

impl PreparedJob for DecideJob {
    fn io(&self, _vars: &Vars) -> Io {
        let mut reads: Vec<TableRef> = self
            .models
            .iter()
            .map(|m| TableRef::new("models", m, &Vars::new()))
            .collect();
        reads.dedup();
        Io {
            reads,
            writes: vec![TableRef::new("champions", &self.family, &Vars::new())],
        }
    }

    fn run(
        &self,
        _job: &JobRef<'_>,
        ctx: &JobCtx<'_>,
    ) -> std::result::Result<JobOutcome, JobError> {
        self.decide(ctx).map_err(|e| super::sql::job_error(&e))
    }

    fn committed(
        &self,
        _job: &JobRef<'_>,
        project: &Project,
        date: chrono::NaiveDate,
    ) -> Option<Committed> {
        let state = champion::load(&project.warehouse_root, &self.family).ok()?;
        let d = state.policy_decision_of(&date.to_string())?;
        Some(Committed {
            run_id: d.run_id.clone(),
            outcome: JobOutcome {
                message: format!(
                    "{}: {} recorded before the run was killed",
                    self.family,
                    d.action.as_str()
                ),
                ..JobOutcome::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the "same hold-out" error printed Rust debug output
    /// (`Some("default_label")`, `Hash { column: ... }`).
    #[test]
    fn spec_differences_read_as_text() {
        let spec = |test_size: f64, filter: Option<&str>| VersionSpec {
            input: "apps".into(),
            filter: filter.map(str::to_string),
            train: serde_json::from_value(serde_json::json!({
                "algo": "gbdt",
                "params": {},
                "target": "default_label",
                "features": null,
                "exclude": [],
                "categorical": [],
                "seed": 42,
                "split": {"type": "hash", "column": "application_id", "test_size": test_size,
                          "oot_column": "apply_date", "oot_days": 90},
            }))
            .unwrap(),
        };
        let d = spec_differences(&spec(0.25, Some("x > 1")), &spec(0.3, None));
        assert_eq!(
            d,
            vec![
                "filter: x > 1 vs none".to_string(),
                "split: hash of application_id, 25% hold-out, out-of-time: the last 90 days of apply_date vs hash of application_id, 30% hold-out, out-of-time: the last 90 days of apply_date".to_string(),
            ]
        );
        assert!(spec_differences(&spec(0.3, None), &spec(0.3, None)).is_empty());
    }
}

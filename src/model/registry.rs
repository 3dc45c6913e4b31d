//! The model registry: each trained model under `warehouse/models/<name>/<version>/`, written
//! to a temporary sibling and renamed into place so that a version appears whole or not at all.
//!
//! A version folder holds `model.json` (the fitted pipeline), `spec.json`, `features.json`,
//! `metrics.json`, `meta.json` (fingerprint of the training data, code version, seed, rows,
//! time) and, for scorecards, `binning.json`, `scorecard.csv`, `scorecard.json` and
//! `scorecard.sql`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::pipeline::{Evaluation, TrainOutcome, TrainedModel};
use super::FittedModel;
use crate::error::{Context, Error, Result};

/// The code version recorded with each model.
pub fn code_version() -> String {
    match option_env!("PANORAMA_GIT_DESCRIBE") {
        Some(g) => format!("{} ({g})", env!("CARGO_PKG_VERSION")),
        None => env!("CARGO_PKG_VERSION").to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub name: String,
    pub version: String,
    pub algo: String,
    pub created_at: String,
    pub code_version: String,
    pub seed: u64,
    pub data_fingerprint: String,
    pub rows_train: u64,
    pub rows_test: u64,
    pub target: Option<String>,
    pub features: Vec<String>,
    /// Headline metrics: auc/ks/gini (test) for classifiers, rmse/r2 for regressors.
    pub headline: serde_json::Value,
    /// Data date (`dt`) for models trained by the nightly.
    #[serde(default)]
    pub dt: Option<String>,
    #[serde(default)]
    pub run_id: Option<String>,
}

pub fn models_root(warehouse_root: &Path) -> PathBuf {
    warehouse_root.join("models")
}

/// A name usable for a model, family or table folder: letters, digits, `_` and `-`.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Next version of `name`: v0001, v0002, ...
fn next_version(dir: &Path) -> String {
    let max = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix('v'))
                .and_then(|n| n.parse::<u32>().ok())
        })
        .max()
        .unwrap_or(0);
    format!("v{:04}", max + 1)
}

pub fn headline(eval: &Evaluation) -> serde_json::Value {
    match eval {
        Evaluation::Binary(b) => serde_json::json!({
            "auc": b.test.auc, "ks": b.test.ks, "gini": b.test.gini, "train_auc": b.train.auc,
            "log_loss": b.test.log_loss, "score_psi": b.score_psi,
        }),
        Evaluation::Regression { train, test, .. } => serde_json::json!({
            "rmse": test.rmse, "mae": test.mae, "r2": test.r2, "train_r2": train.r2,
        }),
        Evaluation::Unsupervised { summary } => summary.clone(),
    }
}

/// Writes a new version of model `name`; returns its folder.
pub fn register(
    warehouse_root: &Path,
    name: &str,
    spec: &serde_json::Value,
    out: &TrainOutcome,
    seed: u64,
    dt: Option<&str>,
    run_id: Option<&str>,
) -> Result<(PathBuf, ModelMeta)> {
    if !is_name(name) {
        return Err(Error::config(format!(
            "model name {name:?}: use letters, digits, _ and -"
        )));
    }
    let dir = models_root(warehouse_root).join(name);
    std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    let version = next_version(&dir);
    let tmp = dir.join(format!(".tmp-{version}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
    let meta = ModelMeta {
        name: name.to_string(),
        version: version.clone(),
        algo: out.trained.algo.name().to_string(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        code_version: code_version(),
        seed,
        data_fingerprint: out.fingerprint.clone(),
        rows_train: out.rows_train as u64,
        rows_test: out.rows_test as u64,
        target: out.trained.target.clone(),
        features: out.trained.input_names.clone(),
        headline: headline(&out.eval),
        dt: dt.map(str::to_string),
        run_id: run_id.map(str::to_string),
    };
    let write = |file: &str, text: String| -> Result<()> {
        let p = tmp.join(file);
        std::fs::write(&p, text).ctx(|| format!("writing {}", p.display()))
    };
    let json = |v: &dyn erased::Ser| -> Result<String> { v.to_json() };
    write("model.json", json(&out.trained)?)?;
    write(
        "spec.json",
        serde_json::to_string_pretty(spec).unwrap_or_default(),
    )?;
    write(
        "features.json",
        serde_json::to_string_pretty(&serde_json::json!({
            "inputs": out.trained.input_names.iter().zip(&out.trained.input_kinds)
                .map(|(n, k)| serde_json::json!({"name": n, "kind": k})).collect::<Vec<_>>(),
            "model_inputs": out.trained.model_input_names(),
            "importance": out.importance,
            "dropped": out.dropped_columns,
        }))
        .unwrap_or_default(),
    )?;
    write(
        "metrics.json",
        serde_json::to_string_pretty(&out.eval).unwrap_or_default(),
    )?;
    write(
        "meta.json",
        serde_json::to_string_pretty(&meta).unwrap_or_default(),
    )?;
    if let Some(b) = &out.baseline {
        write("baseline.json", json(b)?)?;
    }
    if let FittedModel::Scorecard(sc) = &out.trained.model {
        write(
            "binning.json",
            serde_json::to_string_pretty(&sc.binnings).unwrap_or_default(),
        )?;
        write("scorecard.csv", sc.to_csv())?;
        write(
            "scorecard.json",
            serde_json::to_string_pretty(&sc.table()).unwrap_or_default(),
        )?;
        write("scorecard.sql", sc.to_sql("score"))?;
    }
    let target = dir.join(&version);
    std::fs::rename(&tmp, &target)
        .ctx(|| format!("renaming {} to {}", tmp.display(), target.display()))?;
    Ok((target, meta))
}

mod erased {
    pub trait Ser {
        fn to_json(&self) -> crate::error::Result<String>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_json(&self) -> crate::error::Result<String> {
            serde_json::to_string(self)
                .map_err(|e| crate::error::Error::Other(format!("serialising: {e}")))
        }
    }
}

/// Every registered version, by name then version.
pub fn list(warehouse_root: &Path) -> Vec<ModelMeta> {
    let root = models_root(warehouse_root);
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| !f.starts_with('_') && !f.starts_with('.'))
        })
        .collect();
    names.sort();
    for n in names {
        let mut versions: Vec<PathBuf> = std::fs::read_dir(&n)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| f.starts_with('v'))
            })
            .collect();
        versions.sort();
        for v in versions {
            if let Some(m) = std::fs::read_to_string(v.join("meta.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<ModelMeta>(&t).ok())
            {
                out.push(m);
            }
        }
    }
    out
}

/// The folder of `name` at `version` (latest when None).
pub fn version_dir(warehouse_root: &Path, name: &str, version: Option<&str>) -> Result<PathBuf> {
    let all: Vec<ModelMeta> = list(warehouse_root)
        .into_iter()
        .filter(|m| m.name == name)
        .collect();
    let pick = match version {
        Some(v) => all.iter().find(|m| m.version == v),
        None => all.last(),
    };
    match pick {
        Some(m) => Ok(models_root(warehouse_root).join(&m.name).join(&m.version)),
        None => {
            let names: std::collections::BTreeSet<String> =
                list(warehouse_root).into_iter().map(|m| m.name).collect();
            Err(Error::config(format!(
                "no model {name:?}{} in the registry; models: {}",
                version.map(|v| format!(" version {v}")).unwrap_or_default(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.into_iter().collect::<Vec<_>>().join(", ")
                }
            )))
        }
    }
}

/// The training-population baseline of a version (absent for clusterers and old versions).
pub fn load_baseline(dir: &Path) -> Option<super::pipeline::Baseline> {
    let text = std::fs::read_to_string(dir.join("baseline.json")).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn read_meta(dir: &Path) -> Result<ModelMeta> {
    let p = dir.join("meta.json");
    let text = std::fs::read_to_string(&p).ctx(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| Error::Other(format!("{}: {e}", p.display())))
}

pub fn load(dir: &Path) -> Result<TrainedModel> {
    let p = dir.join("model.json");
    let text = std::fs::read_to_string(&p).ctx(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| Error::Other(format!("{}: {e}", p.display())))
}

//! `kind = "score"`: scores the day's population into `warehouse/score/<table>/dt=D/`.
//!
//! ```toml
//! # jobs/score/pre_credit.toml
//! kind = "score"
//! table = "pre_credit"                      # default: the file name
//! input = "feature.application_features"    # partition dt = run date
//! family = "pre_credit"                     # champion and challenger from its decide job
//! id = "application_id"                     # -> record_id
//! entity = "credit_code"                    # the A/B unit -> entity_id (tokenized)
//! population = "status <> 'withdrawn'"      # optional SQL condition on the input rows
//! csv = true                                # also warehouse/export/score/<table>/dt=D/<table>.csv
//! [ab]
//! challenger_share = 0.2
//! salt = "pre_credit-2026"
//! [scale]                                   # pdo, base_score, base_odds
//! [[grades]]                                # PD bands, lowest first (default A..G)
//! grade = "A"
//! max_pd = 0.01
//! [limit]
//! model = "credit_limit"
//! max_pd = 0.3
//! min_limit = 10000
//! round_to = 1000
//! grade_caps = { A = 3000000, G = 0 }
//! [[limit.caps]]
//! name = "revenue"
//! ceiling = "0.3 * sales_12m"
//! [[fraud]]
//! flag = "shared_device"
//! when = "imei_applicants >= 3"
//! decline = true
//! [monitor]                                 # psi_warn, psi_alert, migration_alert
//! ```
//! Reads `feature.<input>`, `champions.<family>` and `models.<limit model>`; writes
//! `score.<table>`, `monitor.score_psi[table]` and `monitor.grade_migration[table]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::config::Project;
use crate::error::{Error, Result};
use crate::model::champion::{self, ModelRef};
use crate::model::registry;
use crate::schedule::{
    Committed, Io, JobCtx, JobError, JobFile, JobKind, JobOutcome, JobRef, PreparedJob, TableRef,
    Vars,
};
use crate::score::monitor::{self, MonitorBounds};
use crate::score::{
    self, AbConfig, ArmModel, FraudRule, GradeBand, LimitPolicy, Scale, ScorePlan, ScoreReport,
};
use crate::warehouse::{Layer, PartitionKey, Success, Warehouse};

pub struct ScoreKind;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    pub table: Option<String>,
    pub input: String,
    pub family: String,
    pub id: String,
    pub entity: String,
    #[serde(default)]
    pub population: Option<String>,
    #[serde(default)]
    pub csv: bool,
    #[serde(default)]
    pub ab: Option<AbConfig>,
    #[serde(default)]
    pub scale: Scale,
    #[serde(default = "score::default_grades")]
    pub grades: Vec<GradeBand>,
    #[serde(default)]
    pub limit: Option<LimitPolicy>,
    #[serde(default)]
    pub fraud: Vec<FraudRule>,
    #[serde(default)]
    pub monitor: MonitorBounds,
}

/// A checked score job.
#[derive(Debug, Clone)]
pub struct ScoreJob {
    pub table: String,
    pub input: String,
    pub cfg: ScoreConfig,
    pub ab: AbConfig,
}

/// Parses and checks a score job's own keys; every problem at once.
pub fn parse(name: &str, own: toml::Table) -> std::result::Result<ScoreJob, Vec<String>> {
    let (cfg, mut problems) = super::own_config_lenient::<ScoreConfig>(own.into_iter());
    let Some(cfg) = cfg else {
        return Err(problems);
    };
    let table = cfg.table.clone().unwrap_or_else(|| name.to_string());
    if !registry::is_name(&table) {
        problems.push(format!(
            "`table`: {table:?} must use letters, digits, _ and -"
        ));
    }
    let input = match cfg.input.split_once('.') {
        Some(("feature", t)) => t.to_string(),
        Some((l, _)) => {
            problems.push(format!(
                "`input`: {:?} is in layer {l:?}; scoring reads the feature layer",
                cfg.input
            ));
            String::new()
        }
        None => cfg.input.clone(),
    };
    let ab = cfg.ab.clone().unwrap_or(AbConfig {
        challenger_share: 0.0,
        salt: cfg.family.clone(),
    });
    if !(0.0..=1.0).contains(&ab.challenger_share) {
        problems.push(format!(
            "`ab.challenger_share` = {}: a share in [0, 1]",
            ab.challenger_share
        ));
    }
    if cfg.grades.is_empty()
        || cfg.grades.windows(2).any(|w| w[0].max_pd >= w[1].max_pd)
        || cfg.grades.last().is_some_and(|g| g.max_pd < 1.0)
    {
        problems.push(
            "`grades`: bands with increasing max_pd, the last at 1.0 (e.g. [[grades]] grade = \"A\" max_pd = 0.01 ...)"
                .into(),
        );
    }
    if let Some(l) = &cfg.limit {
        for g in l.grade_caps.keys() {
            if !cfg.grades.iter().any(|b| &b.grade == g) {
                problems.push(format!(
                    "`limit.grade_caps`: {g:?} is not a grade (grades: {})",
                    cfg.grades
                        .iter()
                        .map(|b| b.grade.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        if let Some(p) = l.max_pd {
            if !(0.0..=1.0).contains(&p) {
                problems.push(format!("`limit.max_pd` = {p}: a probability"));
            }
        }
    }
    if cfg.scale.pdo <= 0.0 || cfg.scale.base_odds <= 0.0 {
        problems.push("`scale`: pdo and base_odds must be positive".into());
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ScoreJob {
        table,
        input,
        cfg,
        ab,
    })
}

impl JobKind for ScoreKind {
    fn kind(&self) -> &str {
        "score"
    }

    fn prepare(
        &self,
        file: &JobFile<'_>,
        _project: &Project,
    ) -> std::result::Result<Arc<dyn PreparedJob>, Vec<String>> {
        if !file.matrix_keys.is_empty() {
            return Err(vec!["`matrix`: one score job per table".into()]);
        }
        let own: toml::Table = file
            .own_keys()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Arc::new(parse(file.name, own)?))
    }
}

/// Where a scoring pass reads and writes; the defaults are the warehouse's.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Score this Parquet file or folder instead of the feature partition.
    pub input: Option<PathBuf>,
    /// Write the scores to this Parquet file instead of the warehouse (no monitoring tables).
    pub out: Option<PathBuf>,
}

fn load_arm(root: &Path, r: &ModelRef) -> Result<ArmModel> {
    let dir = registry::version_dir(root, &r.model, Some(&r.version))?;
    let model = registry::load(&dir)?;
    // An arm's output is a PD: a regression or a clustering would be served as one (a
    // promoted limit model gave PDs of 700,000).
    if model.algo.task() != crate::model::pipeline::Task::Binary {
        return Err(Error::config(format!(
            "{r} is a {} model, not a classifier: it gives no probability of default, so it \
             cannot be a champion or challenger",
            model.algo.name()
        )));
    }
    Ok(ArmModel {
        model_ref: r.clone(),
        model,
        baseline: registry::load_baseline(&dir),
    })
}

/// A partition folder, a Parquet file, or a CSV file (types inferred, as `panorama train`).
fn read_input(path: &Path) -> Result<polars::prelude::DataFrame> {
    if path.is_dir() {
        crate::warehouse::parquet::read_partition(path)
    } else {
        crate::model::prep::read_table(path)
    }
}

impl ScoreJob {
    pub fn score(
        &self,
        project: &Project,
        date: chrono::NaiveDate,
        run_id: &str,
        overrides: &Overrides,
    ) -> Result<ScoreReport> {
        let t0 = std::time::Instant::now();
        let root = &project.warehouse_root;
        let wh = Warehouse::new(root);
        let dt = date.to_string();
        let state = champion::load(root, &self.cfg.family)?;
        let Some(champ) = state.champion.as_ref().map(|c| c.model.clone()) else {
            return Err(Error::config(format!(
                "family {:?} has no champion yet: run its decide job (or `panorama models promote {} <model>`) first",
                self.cfg.family, self.cfg.family
            )));
        };
        let champion_arm = load_arm(root, &champ)?;
        let challenger_arm = match (&state.challenger, self.ab.challenger_share > 0.0) {
            (Some(c), true) => Some(load_arm(root, c)?),
            _ => None,
        };
        let (limit_model, limit_ref) = match self.cfg.limit.as_ref().and_then(|l| l.model.clone()) {
            Some(m) => {
                let dir = registry::version_dir(root, &m, None)?;
                let meta = registry::read_meta(&dir)?;
                (
                    Some(registry::load(&dir)?),
                    Some(format!("{} {}", meta.name, meta.version)),
                )
            }
            None => (None, None),
        };
        let input_path = match &overrides.input {
            Some(p) => p.clone(),
            None => {
                let part = wh.partition_dir(Layer::Feature, &self.input, &PartitionKey::date(&dt));
                if crate::warehouse::read_success(&part).is_none() {
                    return Err(Error::input(
                        &part,
                        format!("feature.{} has no committed partition for {dt}", self.input),
                    ));
                }
                part
            }
        };
        let df = read_input(&input_path)?;
        crate::log::debug(
            "read the population",
            &[("seconds", serde_json::json!(t0.elapsed().as_secs_f64()))],
        );
        let df = score::prepare_population(
            df,
            self.cfg.population.as_deref(),
            self.cfg.limit.as_ref(),
            &self.cfg.fraud,
        )?;
        let key = project.pii_key()?;
        let tokenizer = crate::ingest::pii::Tokenizer::new(&key);
        let tokenize = move |v: &str| tokenizer.token(v);
        let plan = ScorePlan {
            id_column: &self.cfg.id,
            entity_column: &self.cfg.entity,
            champion: &champion_arm,
            challenger: challenger_arm.as_ref(),
            ab: &self.ab,
            scale: &self.cfg.scale,
            grades: &self.cfg.grades,
            limit: self.cfg.limit.as_ref(),
            limit_model: limit_model.as_ref(),
            fraud: &self.cfg.fraud,
            tokenize: &tokenize,
            run_id,
        };
        crate::log::debug(
            "population, caps and fraud rules",
            &[("seconds", serde_json::json!(t0.elapsed().as_secs_f64()))],
        );
        let mut scored = score::score(&df, &plan)?;
        drop(df);
        let metadata = vec![
            (
                "panorama.score.schema_version".to_string(),
                score::SCHEMA_VERSION.to_string(),
            ),
            (
                "panorama.score.schema".to_string(),
                score::schema_json().to_string(),
            ),
            (
                "panorama.score.models".to_string(),
                serde_json::json!({"champion": champ.to_string(),
                    "challenger": challenger_arm.as_ref().map(|c| c.model_ref.to_string()),
                    "limit_model": limit_ref})
                .to_string(),
            ),
        ];
        let mut report = ScoreReport {
            table: self.table.clone(),
            dt: dt.clone(),
            path: String::new(),
            csv: None,
            champion: champ.to_string(),
            challenger: challenger_arm.as_ref().map(|c| c.model_ref.to_string()),
            limit_model: limit_ref.clone(),
            stats: scored.stats.clone(),
            alerts: Vec::new(),
            seconds: 0.0,
        };
        if let Some(out) = &overrides.out {
            // An ad hoc file: written whole (temporary sibling, then rename).
            let tmp = out.with_extension("parquet.tmp");
            crate::warehouse::parquet::write_frame(&tmp, &mut scored.frame, &metadata)?;
            std::fs::rename(&tmp, out)
                .map_err(|e| Error::input(out, format!("renaming the scores into place: {e}")))?;
            report.path = out.display().to_string();
            report.seconds = t0.elapsed().as_secs_f64();
            return Ok(report);
        }
        let extra = serde_json::json!({
            "schema_version": score::SCHEMA_VERSION,
            "champion": champ.to_string(),
            "challenger": report.challenger,
            "limit_model": limit_ref,
            "family": self.cfg.family,
            "stats": scored.stats,
        });
        let job = format!("score.{}", self.table);
        let columns: Vec<String> = score::SCHEMA.iter().map(|c| c.0.to_string()).collect();
        let key_dt = PartitionKey::date(&dt);
        // Monitoring and the CSV copy first, the score partition last: its `_SUCCESS` is what
        // says the job is done, so a crash in between re-runs the whole job.
        // Monitoring: PSI against each model's training baseline, grade migration.
        let (mut psi_df, mut alerts) =
            monitor::psi_table(&self.table, &scored.drift, &self.cfg.monitor)?;
        let previous =
            crate::warehouse::committed_partitions(&wh.table_dir(Layer::Score, &self.table))
                .into_iter()
                .filter_map(|p| {
                    let d = p.file_name()?.to_str()?.strip_prefix("dt=")?.to_string();
                    (d < dt).then_some((d, p))
                })
                .max_by(|a, b| a.0.cmp(&b.0));
        let prev_df = match &previous {
            Some((_, p)) => Some(crate::warehouse::parquet::read_partition(p)?),
            None => None,
        };
        let (mut mig_df, mig_alerts) = monitor::grade_migration(
            &self.table,
            &scored.frame,
            previous
                .as_ref()
                .map(|(d, _)| d.as_str())
                .zip(prev_df.as_ref()),
            &self.cfg.grades,
            &self.cfg.monitor,
        )?;
        alerts.extend(mig_alerts);
        for (table, df) in [("score_psi", &mut psi_df), ("grade_migration", &mut mig_df)] {
            wh.stage(
                Layer::Monitor,
                table,
                &PartitionKey::date(&dt).with("table", &self.table),
                run_id,
            )?
            .commit_frame(
                df,
                &[],
                Success {
                    job: job.clone(),
                    run_id: run_id.to_string(),
                    ..Success::default()
                },
            )?;
        }
        if self.cfg.csv {
            let target = root
                .join("export")
                .join("score")
                .join(&self.table)
                .join(key_dt.rel_path());
            let staged = wh.stage_at(target, run_id)?;
            let file = staged.dir().join(format!("{}.csv", self.table));
            let mut f = std::fs::File::create(&file)
                .map_err(|e| Error::input(&file, format!("creating: {e}")))?;
            use polars::prelude::SerWriter;
            polars::prelude::CsvWriter::new(&mut f)
                .include_header(true)
                .finish(&mut scored.frame)
                .map_err(|e| Error::input(&file, format!("writing CSV: {e}")))?;
            let p = staged.commit(Success {
                rows: scored.frame.height() as u64,
                columns: columns.clone(),
                job: job.clone(),
                run_id: run_id.to_string(),
                extra: extra.clone(),
                ..Success::default()
            })?;
            report.csv = Some(p.join(format!("{}.csv", self.table)).display().to_string());
        }
        let path = wh
            .stage(Layer::Score, &self.table, &key_dt, run_id)?
            .commit_frame(
                &mut scored.frame,
                &metadata,
                Success {
                    job: job.clone(),
                    run_id: run_id.to_string(),
                    extra: extra.clone(),
                    ..Success::default()
                },
            )?;
        report.path = path.display().to_string();
        report.alerts = alerts;
        report.seconds = t0.elapsed().as_secs_f64();
        let html = crate::report::score_report(&report, &psi_df, &mig_df, &state);
        if let Ok(p) = crate::report::write_report(
            &project.root.join("reports").join("score"),
            &self.table,
            &html,
        ) {
            crate::log::debug(
                "wrote the score report",
                &[("path", p.display().to_string().into())],
            );
        }
        Ok(report)
    }
}

impl PreparedJob for ScoreJob {
    fn io(&self, _vars: &Vars) -> Io {
        let mut reads = vec![
            TableRef::new(Layer::Feature.as_str(), &self.input, &Vars::new()),
            TableRef::new("champions", &self.cfg.family, &Vars::new()),
        ];
        if let Some(m) = self.cfg.limit.as_ref().and_then(|l| l.model.as_ref()) {
            reads.push(TableRef::new("models", m, &Vars::new()));
        }
        Io {
            reads,
            writes: vec![TableRef::new(
                Layer::Score.as_str(),
                &self.table,
                &Vars::new(),
            )],
        }
    }

    fn run(
        &self,
        _job: &JobRef<'_>,
        ctx: &JobCtx<'_>,
    ) -> std::result::Result<JobOutcome, JobError> {
        let r = self
            .score(ctx.project, ctx.date, ctx.run_id, &Overrides::default())
            .map_err(|e| super::sql::job_error(&e))?;
        let arms = r
            .stats
            .arms
            .iter()
            .map(|(a, n)| {
                format!(
                    "{a} {n} ({:.1}%)",
                    100.0 * *n as f64 / r.stats.rows.max(1) as f64
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let declined: u64 = r.stats.declines.values().sum();
        Ok(JobOutcome {
            rows_in: r.stats.rows,
            rows_out: r.stats.rows,
            bytes: 0,
            message: format!(
                "{} rows into score.{} ({arms}); {declined} declined; champion {}{}",
                r.stats.rows,
                r.table,
                r.champion,
                r.challenger
                    .as_ref()
                    .map(|c| format!(", challenger {c}"))
                    .unwrap_or_default()
            ),
            warnings: r.alerts,
        })
    }

    fn committed(
        &self,
        job: &JobRef<'_>,
        project: &Project,
        date: chrono::NaiveDate,
    ) -> Option<Committed> {
        let wh = Warehouse::new(&project.warehouse_root);
        let s = wh.read_success(
            Layer::Score,
            &self.table,
            &PartitionKey::date(&date.to_string()),
        )?;
        if s.job != job.name {
            return None;
        }
        Some(Committed {
            run_id: s.run_id,
            outcome: JobOutcome {
                rows_in: s.rows,
                rows_out: s.rows,
                message: "committed before the run was killed".into(),
                ..JobOutcome::default()
            },
        })
    }
}

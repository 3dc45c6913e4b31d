//! Adapters that plug concrete job kinds into the schedule engine. Each later issue adds its
//! kind here (`sql`, `check`, `train`, `score`, `report`) with one `register` line.

pub mod check;
pub mod decide;
pub mod ingest;
pub mod noop;
pub mod score;
pub mod sql;
pub mod train;

use crate::schedule::Registry;

/// Every job kind the binary knows.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(noop::NoopKind);
    r.register(ingest::IngestKind);
    r.register(sql::SqlKind);
    r.register(check::CheckKind);
    r.register(train::TrainKind);
    r.register(decide::DecideKind);
    r.register(score::ScoreKind);
    r
}

/// "unknown key" problems for the keys of a job file that neither the engine nor the kind knows.
pub(crate) fn unknown_keys(file: &crate::schedule::JobFile<'_>, own: &[&str]) -> Vec<String> {
    file.own_keys()
        .filter(|(k, _)| !own.contains(&k.as_str()))
        .map(|(k, _)| {
            format!(
                "`{k}`: unknown key for kind {:?} (its keys: {}; common: {})",
                file.table
                    .get("kind")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?"),
                own.join(", "),
                crate::schedule::COMMON_KEYS.join(", ")
            )
        })
        .collect()
}

/// The kind's own keys of a job file, deserialised into its config type; an unknown key or a
/// wrong type is one problem naming the key.
pub(crate) fn own_config<T: serde::de::DeserializeOwned>(
    own: impl Iterator<Item = (String, toml::Value)>,
) -> Result<T, Vec<String>> {
    let table: toml::Table = own.collect();
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| vec![e.message().to_string()])
}

/// Runs the checks a job declares for the table it just wrote (a contract's or a model's
/// `checks`, when no `check` job checks that table): appends their summary to `message`;
/// a failing `error` check fails the job; returns the warnings.
pub(crate) fn run_own_checks(
    ctx: &crate::schedule::JobCtx<'_>,
    job: &crate::schedule::JobRef<'_>,
    table: &str,
    checks: &[crate::quality::Check],
    message: &mut String,
) -> Result<Vec<String>, crate::schedule::JobError> {
    let partition = vars_partition(job.vars);
    if checks.is_empty() {
        // Checks this job ran before and no longer declares: their results would stay in the
        // quality table and report as if they were current.
        let wh = crate::warehouse::Warehouse::new(&ctx.project.warehouse_root);
        let key = own_checks_key(ctx.date, table, job.vars);
        let results = crate::quality::RESULTS_TABLE;
        if wh
            .read_success(crate::warehouse::Layer::Quality, results, &key)
            .is_some_and(|s| s.job == job.name)
        {
            wh.remove_partition(crate::warehouse::Layer::Quality, results, &key, ctx.run_id)
                .map_err(|e| sql::job_error(&e))?;
            if partition.is_empty() {
                crate::quality::report::write(ctx.project, ctx.date, &[])
                    .map_err(|e| sql::job_error(&e))?;
            }
        }
        return Ok(Vec::new());
    }
    let o = crate::quality::run_table(
        ctx.project,
        table,
        checks,
        ctx.date,
        job.name,
        ctx.run_id,
        &partition,
    )
    .map_err(|e| sql::job_error(&e))?;
    let failed: Vec<String> = o.failure_lines();
    message.push_str(&format!(
        "; {} checks: {} passed, {} warning(s), {} failed",
        o.results.len(),
        o.results.iter().filter(|r| !r.failed()).count(),
        o.warnings(),
        failed.len()
    ));
    if !failed.is_empty() {
        return Err(crate::schedule::JobError::permanent(format!(
            "{message}: {}",
            failed.join("; ")
        )));
    }
    Ok(o.warning_lines())
}

/// The `_SUCCESS` of a job instance's partition of `layer.table` for `date`.
pub(crate) fn instance_success(
    project: &crate::config::Project,
    layer: crate::warehouse::Layer,
    table: &str,
    job: &crate::schedule::JobRef<'_>,
    date: chrono::NaiveDate,
) -> Option<crate::warehouse::Success> {
    crate::warehouse::Warehouse::new(&project.warehouse_root).read_success(
        layer,
        table,
        &crate::warehouse::PartitionKey::instance(date, job.vars),
    )
}

/// Why a partition no longer holds what the ledger's run `last_run` committed: another run
/// (`panorama ingest` by hand) wrote it again since, so what was built from it is stale.
pub(crate) fn written_again(s: &crate::warehouse::Success, last_run: &str) -> Option<String> {
    (s.run_id != last_run).then(|| {
        format!(
            "its partition was written again (run {}) after run {last_run}",
            s.run_id
        )
    })
}

/// Where the results of the checks a job runs itself on `table` go, for a job instance.
pub(crate) fn own_checks_key(
    date: chrono::NaiveDate,
    table: &str,
    vars: &crate::schedule::Vars,
) -> crate::warehouse::PartitionKey {
    crate::quality::results_key_in(date, table, &vars_partition(vars))
}

/// Whether the checks a job runs itself passed in the run that committed `run_id` (a job whose
/// table is committed is not done until then: a run killed in between runs it again).
pub(crate) fn own_checks_passed(
    wh: &crate::warehouse::Warehouse,
    date: chrono::NaiveDate,
    table: &str,
    vars: &crate::schedule::Vars,
    job: &str,
    run_id: &str,
) -> bool {
    let key = own_checks_key(date, table, vars);
    let Some(r) = wh.read_success(
        crate::warehouse::Layer::Quality,
        crate::quality::RESULTS_TABLE,
        &key,
    ) else {
        return false;
    };
    let blocking = r
        .extra
        .get("blocking")
        .and_then(|v| v.as_u64())
        .unwrap_or(1);
    r.job == job && r.run_id == run_id && blocking == 0
}

/// A job instance's matrix values as partition keys.
fn vars_partition(vars: &crate::schedule::Vars) -> Vec<(String, String)> {
    vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The check results partition of `table` for a job instance: written by a job that runs its
/// own checks, read by the models whose input it is.
pub(crate) fn check_results_ref(
    table: &str,
    vars: &crate::schedule::Vars,
) -> crate::schedule::TableRef {
    let mut partition = vec![("table".to_string(), table.to_string())];
    partition.extend(vars_partition(vars));
    crate::schedule::TableRef {
        layer: crate::warehouse::Layer::Quality.as_str().to_string(),
        table: crate::quality::RESULTS_TABLE.to_string(),
        partition,
    }
}

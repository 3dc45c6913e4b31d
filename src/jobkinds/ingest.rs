//! `kind = "ingest"`: one source contract (see `crate::ingest::contract`) run through
//! `crate::ingest::ingest`. The contract keys of the file go to the contract; `[matrix]` values
//! reach the ingest as `vars` (`{branch}` in the source path, `branch=0101` partition key).
//!
//! Writes `clean.<table>` and `rejects.<table>` (with the matrix values as partition keys);
//! reads no table (its input is a source file), so ingest jobs start the night.
//!
//! `[[checks]]` in the contract are data-quality checks of `clean.<table>` (see
//! `crate::quality`). When a `check` job of the project checks that table, that job runs them
//! with its own. Otherwise the ingest job runs them itself right after its commit, on the
//! partition it wrote, and records them in `quality.check_results[table=clean.<table>]` (plus
//! the matrix values): a failing `error` check fails the job (its descendants are skipped),
//! a `warn` check is only reported.

use std::sync::Arc;

use crate::config::Project;
use crate::error::Error;
use crate::ingest::contract::{Contract, CONTRACT_KEYS};
use crate::ingest::IngestRequest;
use crate::quality::{self, Check};
use crate::schedule::{
    substitute_with, Committed, Io, JobCtx, JobError, JobFile, JobKind, JobOutcome, JobRef,
    PreparedJob, TableRef, Vars,
};
use crate::warehouse::{Layer, SourceStamp, Warehouse};

pub struct IngestKind;

struct Ingest {
    contract: Contract,
    /// `contract.checksum()`, once per family rather than per instance and night.
    contract_checksum: String,
    /// The contract's `[[checks]]`, when this job runs them (no `check` job checks the table).
    checks: Vec<Check>,
}

/// The ingest kind's keys: the contract's and `checks`.
pub(crate) fn keys() -> Vec<&'static str> {
    let mut k = CONTRACT_KEYS.to_vec();
    k.push("checks");
    k
}

/// The `[[checks]]` of a contract's job file (`rel`, for messages), whose `column`s must be
/// columns of the contract (or `dt`, or its matrix keys): a misspelt column failed only at
/// night. Read from the file as written, so that these problems come in the same round as
/// the contract's own, whatever they are.
pub fn contract_checks(file: &toml::Table, rel: &str) -> Result<Vec<Check>, Vec<String>> {
    let Some(items) = file.get("checks") else {
        return Ok(Vec::new());
    };
    let Some(items) = items.as_array() else {
        return Err(vec![
            "`checks`: must be an array of tables ([[checks]])".into()
        ]);
    };
    let (checks, mut problems) = quality::parse_checks_partly(items, rel);
    for p in &mut problems {
        *p = p.trim_start_matches(&format!("{rel}: ")).to_string();
    }
    let name_of = |v: &toml::Value| v.get("name").and_then(|n| n.as_str()).map(str::to_string);
    let mut known: Vec<String> = file
        .get("columns")
        .and_then(|c| c.as_array())
        .map(|cols| cols.iter().filter_map(name_of).collect())
        .unwrap_or_default();
    let declared = known.join(", ");
    known.push("dt".into());
    if let Some(m) = file.get("matrix").and_then(|m| m.as_table()) {
        known.extend(m.keys().cloned());
    }
    let table = ["table", "name"]
        .iter()
        .find_map(|k| file.get(*k).and_then(|v| v.as_str()))
        .unwrap_or("this table");
    for (i, item) in items.iter().enumerate() {
        let named: Vec<&str> = match (item.get("column"), item.get("columns")) {
            (Some(toml::Value::String(c)), _) => vec![c.as_str()],
            (_, Some(toml::Value::Array(cs))) => cs.iter().filter_map(|c| c.as_str()).collect(),
            _ => Vec::new(),
        };
        let ty = item
            .get("type")
            .or_else(|| item.get("check"))
            .and_then(|t| t.as_str())
            .unwrap_or("?");
        for col in named {
            let problem = format!(
                "checks[{i}] ({ty}): `{col}` is not a column of clean.{table} (its columns: \
                 {declared}; also dt and the matrix keys)"
            );
            if !known.iter().any(|k| k == col) && !problems.contains(&problem) {
                problems.push(problem);
            }
        }
    }
    if problems.is_empty() {
        Ok(checks)
    } else {
        Err(problems)
    }
}

impl JobKind for IngestKind {
    fn kind(&self) -> &str {
        "ingest"
    }

    fn prepare(
        &self,
        file: &JobFile<'_>,
        project: &Project,
    ) -> Result<Arc<dyn PreparedJob>, Vec<String>> {
        let mut problems = super::unknown_keys(file, &keys());
        let mut checks = contract_checks(file.table, file.rel).unwrap_or_else(|p| {
            problems.extend(p);
            Vec::new()
        });
        let mut table = toml::Table::new();
        for (k, v) in file.table {
            // `matrix` too: its keys are partition columns, which no column may be named.
            if CONTRACT_KEYS.contains(&k.as_str()) || k == "matrix" {
                table.insert(k.clone(), v.clone());
            }
        }
        // The contract's name is the job's name (the file stem when `name` is absent).
        table
            .entry("name")
            .or_insert_with(|| toml::Value::String(file.name.to_string()));
        match Contract::from_table(&table, file.path) {
            Ok(contract) => {
                if problems.is_empty() {
                    let clean = format!("{}.{}", Layer::Clean.as_str(), contract.table);
                    if !checks.is_empty() && super::sql::checked_tables(project).contains(&clean) {
                        // The table's check job runs them (with its own).
                        checks.clear();
                    }
                    return Ok(Arc::new(Ingest {
                        contract_checksum: contract.checksum(),
                        contract,
                        checks,
                    }));
                }
            }
            Err(Error::Invalid { problems: p, .. }) => problems.extend(p),
            Err(e) => problems.push(e.to_string()),
        }
        Err(problems)
    }
}

const PLACEHOLDERS: &[&str] = &["date", "yyyymmdd"];

impl Ingest {
    fn clean_table(&self) -> String {
        format!("{}.{}", Layer::Clean.as_str(), self.contract.table)
    }
}

/// What differs between the source files as they were read and as they are now: a file
/// added, removed, or of another size or modification time (the first difference).
fn source_change(then: &[SourceStamp], now: &[SourceStamp]) -> Option<String> {
    for t in then {
        match now.iter().find(|n| n.path == t.path) {
            None => return Some(format!("{} is no longer there", t.path)),
            Some(n) if n.bytes != t.bytes => {
                return Some(format!(
                    "{} is now {} bytes (was {})",
                    t.path, n.bytes, t.bytes
                ))
            }
            Some(n) if n.modified_ns != t.modified_ns => {
                return Some(format!("{} was modified", t.path))
            }
            Some(_) => {}
        }
    }
    now.iter()
        .find(|n| !then.iter().any(|t| t.path == n.path))
        .map(|n| format!("{} is new", n.path))
}

impl PreparedJob for Ingest {
    fn io(&self, vars: &Vars) -> Io {
        let t = &self.contract.table;
        let mut writes = vec![
            TableRef::new(Layer::Clean.as_str(), t, vars),
            TableRef::new(Layer::Rejects.as_str(), t, vars),
        ];
        if !self.checks.is_empty() {
            writes.push(super::check_results_ref(&self.clean_table(), vars));
        }
        Io {
            reads: Vec::new(),
            writes,
        }
    }

    fn check(&self, vars: &Vars, project: &Project) -> Vec<String> {
        let mut problems = Vec::new();
        let src = &self.contract.source;
        match substitute_with(&src.path, vars, PLACEHOLDERS) {
            Err(e) => problems.push(format!("`source.path`: {e}")),
            Ok(p) => {
                // A fixed path (no date, no glob) must exist now; dated ones are checked when run.
                let fixed = !p.contains('{') && !p.contains(['*', '?', '[']);
                if fixed && !project.path(&p).exists() {
                    problems.push(format!(
                        "`source.path`: missing file {}",
                        project.path(&p).display()
                    ));
                }
            }
        }
        if let Some(layout) = &src.layout {
            let p = project.path(layout);
            if !p.exists() {
                problems.push(format!("`source.layout`: missing file {}", p.display()));
            }
        }
        problems
    }

    fn run(&self, job: &JobRef<'_>, ctx: &JobCtx<'_>) -> Result<JobOutcome, JobError> {
        let req = IngestRequest {
            project: ctx.project,
            contract: &self.contract,
            date: ctx.date,
            run_id: ctx.run_id,
            job: job.name,
            vars: job.vars,
            cancel: Some(ctx.cancel),
            threads: ctx.threads,
        };
        match crate::ingest::ingest(&req) {
            Ok(r) => {
                let mut message = format!(
                    "{} rows read, {} written, {} rejected",
                    r.rows_read, r.rows_written, r.rows_rejected
                );
                let warnings = super::run_own_checks(
                    ctx,
                    job,
                    &self.clean_table(),
                    &self.checks,
                    &mut message,
                )?;
                Ok(JobOutcome {
                    rows_in: r.rows_read,
                    rows_out: r.rows_written,
                    bytes: r.bytes_in,
                    message,
                    warnings,
                })
            }
            Err(e) => Err(JobError {
                message: error_chain(&e),
                // File system hiccups may pass; bad data, bad config and bad input do not.
                transient: matches!(e, Error::Io { .. }),
                code: e.exit_code(),
            }),
        }
    }

    fn inputs_changed(
        &self,
        job: &JobRef<'_>,
        project: &Project,
        date: chrono::NaiveDate,
        last_run: &str,
    ) -> Option<String> {
        let s = super::instance_success(project, Layer::Clean, &self.contract.table, job, date)?;
        if let Some(why) = super::written_again(&s, last_run) {
            return Some(why);
        }
        if s.job != job.name {
            return None;
        }
        let read_with = s.extra.get("contract_blake3").and_then(|v| v.as_str());
        if read_with.is_some_and(|c| c != self.contract_checksum) {
            return Some(format!(
                "its contract ({}) changed since run {}",
                self.contract
                    .file
                    .strip_prefix(&project.root)
                    .unwrap_or(&self.contract.file)
                    .display(),
                s.run_id
            ));
        }
        if s.source_stamps.is_empty() {
            return None;
        }
        // A source that is gone (archived after the night) is no reason to run again: the
        // partition is all that is left of it.
        let files =
            crate::ingest::readers::resolve_files(&project.root, &self.contract, date, job.vars)
                .ok()?;
        let now = crate::ingest::pipeline::source_stamps(&project.root, &files);
        source_change(&s.source_stamps, &now)
            .map(|what| format!("its source changed since run {}: {what}", s.run_id))
    }

    fn committed(
        &self,
        job: &JobRef<'_>,
        project: &Project,
        date: chrono::NaiveDate,
    ) -> Option<Committed> {
        let wh = Warehouse::new(&project.warehouse_root);
        let s = super::instance_success(project, Layer::Clean, &self.contract.table, job, date)?;
        if s.job != job.name {
            return None;
        }
        // Committed, but not done until its checks ran and passed in the same run.
        if !self.checks.is_empty()
            && !super::own_checks_passed(
                &wh,
                date,
                &self.clean_table(),
                job.vars,
                job.name,
                &s.run_id,
            )
        {
            return None;
        }
        Some(Committed {
            run_id: s.run_id,
            outcome: JobOutcome {
                rows_in: s.rows_read.unwrap_or(s.rows),
                rows_out: s.rows,
                bytes: s.bytes,
                message: "committed before the run was killed".into(),
                warnings: Vec::new(),
            },
        })
    }
}

fn error_chain(e: &Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::{PartitionKey, Success};

    #[test]
    fn committed_reads_the_partitions_success_marker() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("panorama.toml"), "").unwrap();
        let project = Project::open(dir.path()).unwrap();
        let table: toml::Table = toml::from_str(
            "kind = \"ingest\"\n[source]\npath = \"d/{branch}-{date}.csv\"\nformat = \"csv\"\n[[columns]]\nname = \"id\"\ntype = \"string\"\n",
        )
        .unwrap();
        let keys = vec!["branch".to_string()];
        let file = JobFile {
            path: &dir.path().join("jobs/apps.toml"),
            rel: "jobs/apps.toml",
            name: "apps",
            table: &table,
            matrix_keys: &keys,
        };
        let prepared = IngestKind.prepare(&file, &project).unwrap();
        let vars: Vars = [("branch".to_string(), "0101".to_string())].into();
        let job = JobRef {
            name: "ingest.apps[branch=0101]",
            vars: &vars,
        };
        let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert!(prepared.committed(&job, &project, date).is_none());
        let wh = Warehouse::new(&project.warehouse_root);
        let key = PartitionKey::date("2026-11-26").with("branch", "0101");
        let staged = wh.stage(Layer::Clean, "apps", &key, "r1").unwrap();
        staged
            .commit(Success {
                rows: 5,
                rows_read: Some(6),
                job: job.name.to_string(),
                run_id: "r1".into(),
                ..Default::default()
            })
            .unwrap();
        let c = prepared.committed(&job, &project, date).unwrap();
        assert_eq!(
            (c.run_id.as_str(), c.outcome.rows_out, c.outcome.rows_in),
            ("r1", 5, 6)
        );
        // Another job's partition is not this job's commit.
        let other = JobRef {
            name: "ingest.other[branch=0101]",
            vars: &vars,
        };
        assert!(prepared.committed(&other, &project, date).is_none());
        let io = prepared.io(&vars);
        assert_eq!(io.writes[0].to_string(), "clean.apps[branch=0101]");
    }

    #[test]
    fn checks_of_a_contract_name_its_columns() {
        // Regression: a check on a column the contract does not declare passed `panorama jobs`
        // and failed at night; `panorama ingest` did not validate the checks at all.
        let file: toml::Table = toml::from_str(
            r#"
            kind = "ingest"
            name = "t"
            [matrix]
            branch = ["01"]
            [source]
            path = "x.csv"
            format = "csv"
            [[columns]]
            name = "a"
            type = "string"
            [[checks]]
            type = "unique"
            columns = ["a", "zzz"]
            [[checks]]
            type = "not_null"
            columns = ["dt", "branch"]
            [[checks]]
            type = "regex"
            column = "a"
            pattern = "(("
            "#,
        )
        .unwrap();
        let problems = contract_checks(&file, "jobs/t.toml").unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems
            .iter()
            .any(|p| p.contains("not a valid regular expression")));
        assert!(
            problems.iter().any(|p| p.starts_with(
                "checks[0] (unique): `zzz` is not a column of clean.t (its columns: a;"
            )),
            "{problems:?}"
        );
        // Listed with the contract's own problems (a problem in the body hid them).
        let mut bad = file.clone();
        bad.insert(
            "rules".into(),
            toml::from_str("max_reject_rate = 5").unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("panorama.toml"), "").unwrap();
        let project = Project::open(dir.path()).unwrap();
        let keys = vec!["branch".to_string()];
        let job_file = JobFile {
            path: &dir.path().join("jobs/t.toml"),
            rel: "jobs/t.toml",
            name: "t",
            table: &bad,
            matrix_keys: &keys,
        };
        let Err(problems) = IngestKind.prepare(&job_file, &project) else {
            panic!("a bad contract was accepted");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("max_reject_rate")));
    }
}

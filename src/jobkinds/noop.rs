//! `kind = "noop"`: a job that does nothing, configurably slowly or badly — for tests,
//! benchmarks of the engine, and placeholders in a DAG.
//!
//! ```toml
//! kind = "noop"
//! sleep_ms = 20          # work for this long (cancellable)
//! fail = false           # fail for good
//! fail_times = 0         # fail transiently on the first N attempts of a run, then succeed
//! reads = ["clean.tx[branch={branch}]"]    # declared inputs (dependencies are inferred)
//! writes = ["feature.tx[branch={branch}]"] # declared outputs
//! commit = false         # write a marker under <warehouse>/_noop/ as its atomic "commit"
//! ```
//! With `commit = true` each success appends the run id to
//! `<warehouse>/_noop/dt=<date>/<job>` by writing a new file and renaming it over the old one:
//! the marker holds one line per committed run, so a test can prove that no job was committed
//! twice across a killed run and its resume.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Project;
use crate::schedule::{
    substitute, Committed, Io, JobCtx, JobError, JobFile, JobKind, JobOutcome, JobRef, PreparedJob,
    TableRef, Vars,
};

pub struct NoopKind;

const KEYS: &[&str] = &[
    "sleep_ms",
    "fail",
    "fail_times",
    "reads",
    "writes",
    "commit",
];

struct Noop {
    sleep: Duration,
    fail: bool,
    fail_times: u32,
    reads: Vec<String>,
    writes: Vec<String>,
    commit: bool,
}

impl JobKind for NoopKind {
    fn kind(&self) -> &str {
        "noop"
    }

    fn prepare(
        &self,
        file: &JobFile<'_>,
        _project: &Project,
    ) -> Result<Arc<dyn PreparedJob>, Vec<String>> {
        let mut problems = super::unknown_keys(file, KEYS);
        let t = file.table;
        let int = |k: &str, problems: &mut Vec<String>| -> u64 {
            match t.get(k) {
                None => 0,
                Some(toml::Value::Integer(i)) if *i >= 0 => *i as u64,
                Some(_) => {
                    problems.push(format!("`{k}`: must be a non-negative integer"));
                    0
                }
            }
        };
        let boolean = |k: &str, problems: &mut Vec<String>| -> bool {
            match t.get(k) {
                None => false,
                Some(toml::Value::Boolean(b)) => *b,
                Some(_) => {
                    problems.push(format!("`{k}`: must be true or false"));
                    false
                }
            }
        };
        let list = |k: &str, problems: &mut Vec<String>| -> Vec<String> {
            match t.get(k) {
                None => Vec::new(),
                Some(toml::Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| match v.as_str() {
                        Some(s) => Some(s.to_string()),
                        None => {
                            problems
                                .push(format!("`{k}`: items must be strings like \"clean.tx\""));
                            None
                        }
                    })
                    .collect(),
                Some(_) => {
                    problems.push(format!(
                        "`{k}`: must be an array of tables like [\"clean.tx\"]"
                    ));
                    Vec::new()
                }
            }
        };
        let sleep = Duration::from_millis(int("sleep_ms", &mut problems));
        let fail_times = int("fail_times", &mut problems).min(u32::MAX as u64) as u32;
        let fail = boolean("fail", &mut problems);
        let commit = boolean("commit", &mut problems);
        let reads = list("reads", &mut problems);
        let writes = list("writes", &mut problems);
        // Check the table templates once, with every matrix key set.
        let probe: Vars = file
            .matrix_keys
            .iter()
            .map(|k| (k.clone(), "x".to_string()))
            .collect();
        for (k, items) in [("reads", &reads), ("writes", &writes)] {
            for it in items {
                match substitute(it, &probe).and_then(|s| TableRef::parse(&s)) {
                    Ok(_) => {}
                    Err(e) => problems.push(format!("`{k}`: {e}")),
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Arc::new(Noop {
            sleep,
            fail,
            fail_times,
            reads,
            writes,
            commit,
        }))
    }
}

fn refs(items: &[String], vars: &Vars) -> Vec<TableRef> {
    items
        .iter()
        .filter_map(|t| {
            substitute(t, vars)
                .ok()
                .and_then(|s| TableRef::parse(&s).ok())
        })
        .collect()
}

fn marker(project: &Project, date: chrono::NaiveDate, job: &str) -> PathBuf {
    project
        .warehouse_root
        .join("_noop")
        .join(format!("dt={date}"))
        .join(job)
}

impl PreparedJob for Noop {
    fn io(&self, vars: &Vars) -> Io {
        Io {
            reads: refs(&self.reads, vars),
            writes: refs(&self.writes, vars),
        }
    }

    fn run(&self, job: &JobRef<'_>, ctx: &JobCtx<'_>) -> Result<JobOutcome, JobError> {
        let until = Instant::now() + self.sleep;
        while Instant::now() < until {
            if ctx.cancel.load(Ordering::Relaxed) {
                return Err(JobError::permanent("cancelled"));
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(10)));
        }
        if self.fail {
            return Err(JobError::permanent("failed on purpose (fail = true)"));
        }
        if ctx.attempt <= self.fail_times {
            return Err(JobError::transient(format!(
                "transient failure on purpose ({} of fail_times = {})",
                ctx.attempt, self.fail_times
            )));
        }
        if self.commit {
            let path = marker(ctx.project, ctx.date, job.name);
            let dir = path.parent().expect("marker has a parent");
            let fail = |e: std::io::Error| JobError::transient(format!("{}: {e}", path.display()));
            std::fs::create_dir_all(dir).map_err(fail)?;
            let mut text = std::fs::read_to_string(&path).unwrap_or_default();
            text.push_str(ctx.run_id);
            text.push('\n');
            let tmp = dir.join(format!(".{}.tmp", job.name));
            std::fs::write(&tmp, text).map_err(fail)?;
            std::fs::rename(&tmp, &path).map_err(fail)?;
        }
        Ok(JobOutcome {
            message: if self.sleep.is_zero() {
                String::new()
            } else {
                format!("slept {} ms", self.sleep.as_millis())
            },
            ..Default::default()
        })
    }

    fn committed(
        &self,
        job: &JobRef<'_>,
        project: &Project,
        date: chrono::NaiveDate,
    ) -> Option<Committed> {
        if !self.commit {
            return None;
        }
        let text = std::fs::read_to_string(marker(project, date, job.name)).ok()?;
        let last = text.lines().last()?.trim().to_string();
        Some(Committed {
            run_id: last,
            outcome: JobOutcome {
                message: "committed before the run was killed".into(),
                ..Default::default()
            },
        })
    }
}

//! The nightly schedule engine: job specs, expansion, DAG, selection, executor, ledger.
//!
//! ```text
//! jobs/**/*.toml ──spec──> jobs (families expanded) ──dag──> validated graph
//!     ──select/shard──> selection ──plan (ledger)──> what runs and why
//!     ──executor──> attempts ──ledger (SQLite)──> runs, attempts, job status
//!                                └─report──> reports/run-<date>-<run_id>.html
//! ```
//! Job kinds plug in through [`JobKind`] (see `crate::jobkinds`); the engine knows none of
//! them by name. `docs/scheduling.md` is the user's guide.

pub mod airflow;
pub mod dag;
pub mod executor;
mod kind;
pub mod ledger;
pub mod night;
pub mod plan;
pub mod progress;
pub mod report;
pub mod select;
pub mod spec;

pub use dag::{Dag, Dep, Why};
pub use kind::{
    Committed, Io, JobCtx, JobError, JobFile, JobKind, JobOutcome, JobRef, PreparedJob, Registry,
    TableRef, Vars, COMMON_KEYS,
};
pub use spec::{substitute, substitute_with, Job};

use crate::config::Project;
use crate::error::{Error, Result};

/// Loads, expands and validates every job of the project; every problem is listed in one
/// `Error::Invalid` (exit 2).
pub fn load(project: &Project, registry: &Registry) -> Result<Dag> {
    let what = format!(
        "the jobs of {}",
        project.root.join(spec::JOBS_DIR).display()
    );
    let t0 = std::time::Instant::now();
    let (jobs, mut problems) = spec::load_jobs_partial(project, registry);
    let t1 = std::time::Instant::now();
    let broken_files = !problems.is_empty();
    let built = Dag::build(jobs);
    crate::log::debug(
        "jobs loaded",
        &[
            ("jobs", built.as_ref().map(|d| d.len()).unwrap_or(0).into()),
            ("parse_expand_s", (t1 - t0).as_secs_f64().into()),
            ("graph_s", t1.elapsed().as_secs_f64().into()),
        ],
    );
    match built {
        Ok(dag) if !broken_files => return Ok(dag),
        Ok(_) => {}
        Err(graph) => {
            // With broken files, a dependency on one of their jobs looks unknown: say so
            // once instead of listing each.
            let (unknown, rest): (Vec<String>, Vec<String>) = graph
                .into_iter()
                .partition(|p| broken_files && p.contains("which matches no job"));
            problems.extend(rest);
            if !unknown.is_empty() {
                problems.push(
                    "(dependencies on jobs of the files above are checked once they parse)".into(),
                );
            }
        }
    }
    Err(Error::Invalid { what, problems })
}

#[cfg(test)]
mod tests;

//! `panorama export airflow`: a DAG file with coarse tasks, one per stage × shard, each calling
//! `panorama run --date {{ ds }} --select <stage> --shard i/K`. Airflow sees a few dozen tasks,
//! not 20,000; Panorama schedules the jobs inside each task.
//!
//! Stages are groups of job kinds in dependency order: the kind graph (kind A → kind B when a
//! job of B depends on a job of A) with mutually dependent kinds merged. Within a stage, the
//! shards are the deterministic slices of `plan::shard`, so the K tasks of a stage run in
//! parallel without waiting on each other, and every task of a stage waits for all tasks of the
//! stage before.

use std::collections::{BTreeMap, BTreeSet};

use super::dag::Dag;

#[derive(Debug, Clone)]
pub struct Stage {
    /// Task id prefix, e.g. `ingest` or `sql_check`.
    pub name: String,
    pub kinds: Vec<String>,
    pub jobs: usize,
}

impl Stage {
    /// The selector that picks the stage's jobs.
    pub fn selector(&self) -> String {
        self.kinds
            .iter()
            .map(|k| format!("kind:{k}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Stages of the whole project, in order.
pub fn stages(dag: &Dag) -> Vec<Stage> {
    let mut kinds: BTreeMap<&str, (usize, usize)> = BTreeMap::new(); // kind -> (jobs, first topo position)
    let mut pos = vec![0usize; dag.len()];
    for (p, &j) in dag.order.iter().enumerate() {
        pos[j as usize] = p;
    }
    for (i, j) in dag.jobs.iter().enumerate() {
        let e = kinds
            .entry(j.family.kind.as_str())
            .or_insert((0, usize::MAX));
        e.0 += 1;
        e.1 = e.1.min(pos[i]);
    }
    let names: Vec<&str> = kinds.keys().copied().collect();
    let k = names.len();
    let ix = |s: &str| names.iter().position(|n| *n == s).expect("known kind");
    // reach[a][b]: some job of kind b depends (transitively) on a job of kind a.
    let mut reach = vec![vec![false; k]; k];
    for (i, ps) in dag.parents.iter().enumerate() {
        let b = ix(&dag.jobs[i].family.kind);
        for d in ps {
            let a = ix(&dag.jobs[d.job as usize].family.kind);
            if a != b {
                reach[a][b] = true;
            }
        }
    }
    for m in 0..k {
        let via = reach[m].clone();
        for row in reach.iter_mut() {
            if row[m] {
                for (b, &r) in via.iter().enumerate() {
                    if r {
                        row[b] = true;
                    }
                }
            }
        }
    }
    // Merge kinds that reach each other.
    let mut group = (0..k).collect::<Vec<usize>>();
    for a in 0..k {
        for b in 0..a {
            if reach[a][b] && reach[b][a] {
                let g = group[b];
                group[a] = g;
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (a, g) in group.iter().enumerate() {
        groups.entry(*g).or_default().push(a);
    }
    // Order groups: a group before every group it reaches; ties by first topological position.
    let mut left: BTreeSet<usize> = groups.keys().copied().collect();
    let mut out = Vec::new();
    while !left.is_empty() {
        let ready: Vec<usize> = left
            .iter()
            .copied()
            .filter(|&g| {
                !left.iter().any(|&h| {
                    h != g
                        && groups[&h]
                            .iter()
                            .any(|&a| groups[&g].iter().any(|&b| reach[a][b]))
                })
            })
            .collect();
        let next = ready
            .into_iter()
            .min_by_key(|g| {
                groups[g]
                    .iter()
                    .map(|&a| kinds[names[a]].1)
                    .min()
                    .unwrap_or(0)
            })
            .unwrap_or_else(|| *left.iter().next().expect("non-empty"));
        left.remove(&next);
        let mut ks: Vec<usize> = groups[&next].clone();
        ks.sort_by_key(|&a| kinds[names[a]].1);
        out.push(Stage {
            name: ks.iter().map(|&a| names[a]).collect::<Vec<_>>().join("_"),
            kinds: ks.iter().map(|&a| names[a].to_string()).collect(),
            jobs: ks.iter().map(|&a| kinds[names[a]].0).sum(),
        });
    }
    out
}

pub struct AirflowOptions {
    pub dag_id: String,
    pub schedule: String,
    pub shards: usize,
    /// Folder holding panorama.toml on the Airflow workers.
    pub project_dir: String,
    /// The panorama binary on the Airflow workers.
    pub bin: String,
    /// Airflow retries per task (a retry runs only the jobs that did not succeed).
    pub retries: u32,
}

/// A Python string literal (JSON's string syntax is valid Python).
fn py(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// Single-quotes a word for bash.
fn sh(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r#"'\''"#))
    }
}

pub fn render(dag: &Dag, opts: &AirflowOptions) -> String {
    let st = stages(dag);
    let k = opts.shards.max(1);
    let mut stage_lines = String::new();
    for s in &st {
        stage_lines.push_str(&format!(
            "    ({}, {}),  # {} jobs\n",
            py(&s.name),
            py(&s.selector()),
            s.jobs
        ));
    }
    let task_count = st.len() * k;
    format!(
        r#""""Panorama's nightly batch as an Airflow DAG.

Generated by `panorama export airflow --shards {k}`; re-export after adding job kinds (new
job files of known kinds need no re-export: each task selects by kind at run time).

{stages_n} stage(s) x {k} shard(s) = {task_count} tasks for {jobs} jobs. Each task runs
`panorama run --date <ds> --select <stage> --shard i/{k}`: Panorama schedules the jobs inside
the task, skips those that already succeeded for the date (so an Airflow retry redoes only
what failed), and prints a one-line JSON summary as its last stdout line (the task's XCom).
Exit codes: 0 ok, 1 some jobs failed, 2 configuration error, 4 another run holds the lock,
5 internal error (a bug in panorama).
"""
from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

PANORAMA = {bin}
PROJECT = {project}
SHARDS = {k}
# (task id prefix, selector) in dependency order.
STAGES = [
{stage_lines}]

with DAG(
    dag_id={dag_id},
    schedule={schedule},
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={{
        "owner": "panorama",
        "retries": {retries},
        "retry_delay": timedelta(minutes=5),
    }},
    tags=["panorama"],
    doc_md=__doc__,
) as dag:
    previous = []
    for stage, selector in STAGES:
        current = []
        for i in range(1, SHARDS + 1):
            task = BashOperator(
                task_id=f"{{stage}}_shard_{{i}}_of_{{SHARDS}}",
                bash_command=(
                    f"cd {{PROJECT}} && {{PANORAMA}} run --date {{{{{{{{ ds }}}}}}}} "
                    f"--select '{{selector}}' --shard {{i}}/{{SHARDS}} --log-format json"
                ),
                do_xcom_push=True,
            )
            for upstream in previous:
                upstream >> task
            current.append(task)
        previous = current
"#,
        stages_n = st.len(),
        jobs = dag.len(),
        bin = py(&sh(&opts.bin)),
        project = py(&sh(&opts.project_dir)),
        dag_id = py(&opts.dag_id),
        schedule = py(&opts.schedule),
        retries = opts.retries,
    )
}

//! What a night would run and why: the selected jobs in dependency order, each with its action
//! (run or skip) and the reason from the ledger; and the deterministic shards of a selection.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use super::dag::Dag;
use super::kind::JobRef;
use super::ledger::PrevStatus;
use crate::config::Project;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Run,
    /// Succeeded already for this date (re-run with `--force`).
    Skip,
}

#[derive(Debug, Clone)]
pub struct PlanItem {
    pub job: u32,
    pub action: Action,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Run jobs that already succeeded for the date.
    pub force: bool,
    /// Only jobs whose last state for the date is failed, timeout, cancelled or skipped.
    pub retry_failed: bool,
}

/// The plan of one night: the selected jobs in a topological order.
#[derive(Debug, Clone)]
pub struct NightPlan {
    pub date: chrono::NaiveDate,
    pub items: Vec<PlanItem>,
}

impl NightPlan {
    pub fn to_run(&self) -> Vec<u32> {
        self.items
            .iter()
            .filter(|i| i.action == Action::Run)
            .map(|i| i.job)
            .collect()
    }

    pub fn skipped(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.action == Action::Skip)
            .count()
    }
}

/// States after which `--retry-failed` runs a job again.
pub const RETRYABLE: &[&str] = &["failed", "timeout", "cancelled", "skipped"];

/// The selected jobs that succeeded for `date` but whose inputs outside the warehouse changed
/// since (a corrected source), with why; asked of each job's kind. Empty with `--force` (every
/// job runs anyway) and `--retry-failed` (only failed jobs run).
pub fn changed_inputs(
    project: &Project,
    dag: &Dag,
    selected: &[bool],
    date: chrono::NaiveDate,
    prev: &HashMap<String, PrevStatus>,
    opts: PlanOptions,
) -> HashMap<u32, String> {
    if opts.force || opts.retry_failed {
        return HashMap::new();
    }
    dag.order
        .par_iter()
        .filter(|&&j| selected[j as usize])
        .filter_map(|&j| {
            let job = dag.job(j);
            let last = prev.get(&job.name).filter(|p| p.status == "succeeded")?;
            let r = JobRef {
                name: &job.name,
                vars: &job.vars,
            };
            job.family
                .prepared
                .inputs_changed(&r, project, date, &last.run_id)
                .map(|why| (j, why))
        })
        .collect()
}

/// The plan of one night from the ledger's statuses: a job runs unless it succeeded for the
/// date (or `--force`); a job that succeeded runs again when its inputs changed (`changed`)
/// or a parent succeeded after it did (re-run on its own), and so do the succeeded jobs after
/// it, which were built from the old inputs.
pub fn plan_night(
    dag: &Dag,
    selected: &[bool],
    date: chrono::NaiveDate,
    prev: &HashMap<String, PrevStatus>,
    changed: &HashMap<u32, String>,
    opts: PlanOptions,
) -> NightPlan {
    let mut items = Vec::new();
    // For each job that runs again on changed inputs: the job whose inputs changed (itself,
    // or the first such job before it).
    let mut changed_at: Vec<Option<u32>> = vec![None; dag.jobs.len()];
    for &j in &dag.order {
        if !selected[j as usize] {
            continue;
        }
        let job = dag.job(j);
        let p = prev.get(&job.name);
        let upstream_change = || {
            dag.parents[j as usize]
                .iter()
                .find_map(|d| changed_at[d.job as usize])
        };
        // A parent that succeeded after this job did (a `--select`ed re-run of a corrected
        // source, in a later run): this job was built from its older output.
        let newer_parent = |mine: &PrevStatus| {
            dag.parents[j as usize].iter().find_map(|d| {
                prev.get(&dag.job(d.job).name)
                    .filter(|pp| pp.status == "succeeded" && pp.updated_at > mine.updated_at)
                    .map(|pp| (d.job, pp.run_id.clone()))
            })
        };
        let (action, reason) = match p {
            Some(p) if p.status == "succeeded" && !opts.force && changed.contains_key(&j) => {
                changed_at[j as usize] = Some(j);
                (Action::Run, changed[&j].clone())
            }
            Some(p) if p.status == "succeeded" && !opts.force && !opts.retry_failed => {
                match upstream_change() {
                    Some(origin) => {
                        changed_at[j as usize] = Some(origin);
                        (
                            Action::Run,
                            format!(
                                "succeeded in run {}; runs again after {}{}",
                                p.run_id,
                                dag.job(origin).name,
                                if changed.contains_key(&origin) {
                                    ", whose inputs changed"
                                } else {
                                    ""
                                }
                            ),
                        )
                    }
                    None => match newer_parent(p) {
                        Some((parent, run)) => {
                            changed_at[j as usize] = Some(parent);
                            (
                                Action::Run,
                                format!(
                                    "succeeded in run {}, but {} ran again later (run {run})",
                                    p.run_id,
                                    dag.job(parent).name
                                ),
                            )
                        }
                        None => (Action::Skip, format!("succeeded in run {}", p.run_id)),
                    },
                }
            }
            Some(p) if p.status == "succeeded" && !opts.force => {
                (Action::Skip, format!("succeeded in run {}", p.run_id))
            }
            Some(p) if p.status == "succeeded" => (
                Action::Run,
                format!("forced (succeeded in run {})", p.run_id),
            ),
            Some(p) if opts.retry_failed && !RETRYABLE.contains(&p.status.as_str()) => (
                Action::Skip,
                format!("{} in run {}; --retry-failed", p.status, p.run_id),
            ),
            Some(p) => {
                let msg = if p.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", first_line(&p.message, 120))
                };
                (
                    Action::Run,
                    format!("{} in run {}{msg}", p.status, p.run_id),
                )
            }
            None if opts.retry_failed => (Action::Skip, "never ran; --retry-failed".to_string()),
            None => (Action::Run, format!("never ran for {date}")),
        };
        items.push(PlanItem {
            job: j,
            action,
            reason,
        });
    }
    NightPlan { date, items }
}

pub fn first_line(s: &str, max: usize) -> String {
    let l = s.lines().next().unwrap_or("");
    if l.chars().count() > max {
        let cut: String = l.chars().take(max).collect();
        format!("{cut}…")
    } else {
        l.to_string()
    }
}

/// `i/n` with 1 <= i <= n.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("{s:?} is not a shard like 1/4 (index from 1 to count)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Keeps the selected jobs of one shard. Jobs linked by a dependency inside the selection stay
/// in one shard (connected components), so that each shard runs on its own; components are
/// dealt to the least loaded shard, largest first, ties by their first job: the same project
/// and selection always give the same shards, every selected job is in exactly one.
pub fn shard(dag: &Dag, selected: &mut [bool], shard: Shard) {
    if shard.count <= 1 {
        return;
    }
    let assignment = shard_of(dag, selected, shard.count);
    for (i, s) in selected.iter_mut().enumerate() {
        if *s {
            *s = assignment[i] == shard.index - 1;
        }
    }
}

/// Shard (0-based) of every selected job; `usize::MAX` for the others.
pub fn shard_of(dag: &Dag, selected: &[bool], count: usize) -> Vec<usize> {
    let n = dag.len();
    let mut parent: Vec<u32> = (0..n as u32).collect();
    fn find(p: &mut [u32], mut x: u32) -> u32 {
        while p[x as usize] != x {
            p[x as usize] = p[p[x as usize] as usize];
            x = p[x as usize];
        }
        x
    }
    for (i, ps) in dag.parents.iter().enumerate() {
        if !selected[i] {
            continue;
        }
        for d in ps {
            if selected[d.job as usize] {
                let (a, b) = (find(&mut parent, i as u32), find(&mut parent, d.job));
                if a != b {
                    // Smaller index as root: the component is named by its first job.
                    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                    parent[hi as usize] = lo;
                }
            }
        }
    }
    let mut size: HashMap<u32, usize> = HashMap::new();
    let mut roots = vec![u32::MAX; n];
    for i in 0..n {
        if selected[i] {
            let r = find(&mut parent, i as u32);
            roots[i] = r;
            *size.entry(r).or_default() += 1;
        }
    }
    let mut comps: Vec<(usize, u32)> = size.into_iter().map(|(r, s)| (s, r)).collect();
    comps.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut load = vec![0usize; count];
    let mut comp_shard: HashMap<u32, usize> = HashMap::with_capacity(comps.len());
    for (s, r) in comps {
        let (best, _) = load
            .iter()
            .enumerate()
            .min_by_key(|(i, l)| (**l, *i))
            .expect("count >= 1");
        load[best] += s;
        comp_shard.insert(r, best);
    }
    roots
        .iter()
        .map(|r| {
            if *r == u32::MAX {
                usize::MAX
            } else {
                comp_shard[r]
            }
        })
        .collect()
}

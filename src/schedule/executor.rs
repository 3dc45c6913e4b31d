//! The executor: runs a set of jobs of a [`Dag`] in dependency order on a bounded pool of
//! worker threads.
//!
//! - At most `threads` jobs at once; a job with a `pool` also needs a free slot of that pool
//!   (`[run] pools` in panorama.toml, e.g. `train = 1`).
//! - Among ready jobs, those with the longest chain of dependants start first.
//! - Per-job timeout: the job's cancel flag is set; a job that does not stop within a grace
//!   period is abandoned (its thread replaced) and fails without retry.
//! - Transient failures (and timeouts) are retried up to `retries` times with exponential
//!   backoff and jitter; a job that fails for good skips only its descendants.
//! - Stop levels (from SIGINT/SIGTERM): 1 = launch nothing more, let running jobs finish;
//!   2 = also cancel the running jobs (they commit nothing).
//!
//! One scheduler loop (the calling thread) owns all state; workers only run jobs and send the
//! result back on a channel, so the overhead per job is two channel messages.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::Serialize;

use super::dag::Dag;
use super::kind::{JobCtx, JobError, JobOutcome, JobRef, Vars};
use super::ledger::unix_now;
use super::spec::Family;
use crate::config::Project;
use crate::error::ExitCode;

/// Final (or intermediate, for retried attempts) state of a job attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Succeeded,
    Failed,
    Timeout,
    Cancelled,
    /// Not run because an upstream job failed.
    Skipped,
    /// Committed by a run that was killed; recorded without running again.
    Recovered,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Timeout => "timeout",
            Status::Cancelled => "cancelled",
            Status::Skipped => "skipped",
            Status::Recovered => "recovered",
        }
    }

    pub fn is_ok(self) -> bool {
        matches!(self, Status::Succeeded | Status::Recovered)
    }
}

/// One attempt, as the executor saw it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub job: u32,
    /// 1-based; 0 for skipped and recovered jobs.
    pub attempt: u32,
    pub status: Status,
    /// Seconds since the executor started.
    pub start: f64,
    pub end: f64,
    pub started_unix: f64,
    pub outcome: JobOutcome,
    pub error: Option<String>,
    pub code: ExitCode,
    /// The job's last word in this run (no retry follows).
    pub final_state: bool,
}

pub enum Event<'a> {
    Started { job: u32, attempt: u32 },
    Finished(&'a Attempt),
}

pub struct ExecConfig<'a> {
    pub project: Arc<Project>,
    pub date: chrono::NaiveDate,
    pub run_id: String,
    pub threads: usize,
    /// Threads each job may use itself.
    pub job_threads: usize,
    pub pools: BTreeMap<String, usize>,
    /// 0 run, 1 drain (launch nothing more), 2 cancel running jobs.
    pub stop: &'a AtomicU8,
    /// How long a timed-out job may take to stop before it is abandoned.
    pub timeout_grace: Duration,
}

#[derive(Debug, Default)]
pub struct ExecReport {
    pub attempts: Vec<Attempt>,
    /// Final status of each job that was to run (None: not started).
    pub final_status: HashMap<u32, Status>,
    pub not_started: Vec<u32>,
    pub interrupted: bool,
    pub retries: usize,
    pub seconds: f64,
    pub started_unix: f64,
}

struct Task {
    job: u32,
    attempt: u32,
    token: u64,
    family: Arc<Family>,
    name: String,
    vars: Vars,
    cancel: Arc<AtomicBool>,
}

struct Done {
    job: u32,
    token: u64,
    started: Instant,
    ended: Instant,
    started_unix: f64,
    result: Result<JobOutcome, JobError>,
}

struct Shared {
    project: Arc<Project>,
    date: chrono::NaiveDate,
    run_id: String,
    job_threads: usize,
}

struct Running {
    attempt: u32,
    token: u64,
    deadline: Option<Instant>,
    timed_out_at: Option<Instant>,
    cancel: Arc<AtomicBool>,
}

/// Runs `to_run` (indices into `dag`); parents outside `to_run` count as done.
pub fn execute(
    dag: &Dag,
    to_run: &[u32],
    cfg: &ExecConfig<'_>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> ExecReport {
    let t0 = Instant::now();
    let mut s = Sched::new(dag, to_run, cfg, t0);
    if to_run.is_empty() {
        return s.finish(on_event);
    }
    let (task_tx, task_rx) = crossbeam_channel::unbounded::<Task>();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
    let shared = Arc::new(Shared {
        project: cfg.project.clone(),
        date: cfg.date,
        run_id: cfg.run_id.clone(),
        job_threads: cfg.job_threads.max(1),
    });
    let workers = cfg.threads.max(1).min(to_run.len());
    for _ in 0..workers {
        spawn_worker(task_rx.clone(), done_tx.clone(), shared.clone());
    }
    s.run_loop(&task_tx, &task_rx, &done_tx, &done_rx, &shared, on_event);
    drop(task_tx);
    s.finish(on_event)
}

fn spawn_worker(rx: Receiver<Task>, tx: Sender<Done>, shared: Arc<Shared>) {
    let _ = std::thread::Builder::new()
        .name("job".into())
        .spawn(move || {
            while let Ok(t) = rx.recv() {
                let started = Instant::now();
                let started_unix = unix_now();
                let ctx = JobCtx {
                    project: &shared.project,
                    date: shared.date,
                    run_id: &shared.run_id,
                    attempt: t.attempt,
                    cancel: &t.cancel,
                    threads: shared.job_threads,
                };
                let job = JobRef {
                    name: &t.name,
                    vars: &t.vars,
                };
                let result = catch_unwind(AssertUnwindSafe(|| t.family.prepared.run(&job, &ctx)))
                    .unwrap_or_else(|p| {
                        let msg = crate::error::panic_message(p.as_ref(), "unknown panic");
                        Err(JobError::permanent(format!("the job panicked: {msg}")))
                    });
                let done = Done {
                    job: t.job,
                    token: t.token,
                    started,
                    ended: Instant::now(),
                    started_unix,
                    result,
                };
                if tx.send(done).is_err() {
                    break;
                }
            }
        });
}

struct Sched<'a> {
    dag: &'a Dag,
    cfg: &'a ExecConfig<'a>,
    t0: Instant,
    t0_unix: f64,
    to_run: Vec<u32>,
    in_run: Vec<bool>,
    pending: Vec<u32>,
    height: Vec<u32>,
    ready: BinaryHeap<(u32, Reverse<u32>)>,
    pool_wait: HashMap<&'a str, VecDeque<u32>>,
    pool_used: HashMap<&'a str, usize>,
    delayed: BinaryHeap<Reverse<(Instant, u32)>>,
    running: HashMap<u32, Running>,
    attempts_of: Vec<u32>,
    report: ExecReport,
    next_token: u64,
    rng: u64,
    cancelled_all: bool,
}

impl<'a> Sched<'a> {
    fn new(dag: &'a Dag, to_run: &[u32], cfg: &'a ExecConfig<'a>, t0: Instant) -> Sched<'a> {
        let n = dag.len();
        let mut in_run = vec![false; n];
        for &j in to_run {
            in_run[j as usize] = true;
        }
        let mut pending = vec![0u32; n];
        for &j in to_run {
            pending[j as usize] = dag.parents[j as usize]
                .iter()
                .filter(|d| in_run[d.job as usize])
                .count() as u32;
        }
        // Longest chain of dependants within the run: a cheap critical-path priority.
        let mut height = vec![0u32; n];
        for &j in dag.order.iter().rev() {
            if in_run[j as usize] {
                height[j as usize] = 1 + dag.children[j as usize]
                    .iter()
                    .filter(|&&c| in_run[c as usize])
                    .map(|&c| height[c as usize])
                    .max()
                    .unwrap_or(0);
            }
        }
        let ready = to_run
            .iter()
            .filter(|&&j| pending[j as usize] == 0)
            .map(|&j| (height[j as usize], Reverse(j)))
            .collect();
        let seed = (unix_now() * 1e6) as u64 ^ (std::process::id() as u64) << 32;
        Sched {
            dag,
            cfg,
            t0,
            t0_unix: unix_now(),
            to_run: to_run.to_vec(),
            in_run,
            pending,
            height,
            ready,
            pool_wait: HashMap::new(),
            pool_used: HashMap::new(),
            delayed: BinaryHeap::new(),
            running: HashMap::new(),
            attempts_of: vec![0; n],
            report: ExecReport::default(),
            next_token: 0,
            rng: seed | 1,
            cancelled_all: false,
        }
    }

    fn secs(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.t0).as_secs_f64()
    }

    fn run_loop(
        &mut self,
        task_tx: &Sender<Task>,
        task_rx: &Receiver<Task>,
        done_tx: &Sender<Done>,
        done_rx: &Receiver<Done>,
        shared: &Arc<Shared>,
        on_event: &mut dyn FnMut(Event<'_>),
    ) {
        let threads = self.cfg.threads.max(1);
        loop {
            let stop = self.cfg.stop.load(Ordering::SeqCst);
            if stop >= 1 {
                self.report.interrupted = true;
            }
            if stop >= 2 && !self.cancelled_all {
                for r in self.running.values() {
                    r.cancel.store(true, Ordering::SeqCst);
                }
                self.cancelled_all = true;
            }
            let now = Instant::now();
            while let Some(Reverse((t, j))) = self.delayed.peek().copied() {
                if t > now {
                    break;
                }
                self.delayed.pop();
                self.ready.push((self.height[j as usize], Reverse(j)));
            }
            if stop == 0 {
                while self.running.len() < threads {
                    let Some((_, Reverse(j))) = self.ready.pop() else {
                        break;
                    };
                    if let Some(p) = self.dag.job(j).family.pool.as_deref() {
                        let cap = self.cfg.pools.get(p).copied().unwrap_or(usize::MAX).max(1);
                        let used = self.pool_used.entry(p).or_insert(0);
                        if *used >= cap {
                            self.pool_wait.entry(p).or_default().push_back(j);
                            continue;
                        }
                        *used += 1;
                    }
                    self.launch(j, task_tx, on_event);
                }
            }
            if self.running.is_empty()
                && (stop >= 1 || (self.ready.is_empty() && self.delayed.is_empty()))
            {
                break;
            }
            let mut wake = now + Duration::from_millis(100);
            if let Some(Reverse((t, _))) = self.delayed.peek() {
                wake = wake.min(*t);
            }
            for r in self.running.values() {
                match (r.timed_out_at, r.deadline) {
                    (Some(t), _) => wake = wake.min(t + self.cfg.timeout_grace),
                    (None, Some(d)) => wake = wake.min(d),
                    _ => {}
                }
            }
            match done_rx.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(d) => {
                    self.handle(d, on_event);
                    while let Ok(d) = done_rx.try_recv() {
                        self.handle(d, on_event);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.check_deadlines(task_rx, done_tx, shared, on_event);
        }
    }

    fn launch(&mut self, j: u32, task_tx: &Sender<Task>, on_event: &mut dyn FnMut(Event<'_>)) {
        let job = self.dag.job(j);
        self.attempts_of[j as usize] += 1;
        let attempt = self.attempts_of[j as usize];
        self.next_token += 1;
        let cancel = Arc::new(AtomicBool::new(false));
        let now = Instant::now();
        self.running.insert(
            j,
            Running {
                attempt,
                token: self.next_token,
                deadline: job.family.timeout.map(|t| now + t),
                timed_out_at: None,
                cancel: cancel.clone(),
            },
        );
        on_event(Event::Started { job: j, attempt });
        let _ = task_tx.send(Task {
            job: j,
            attempt,
            token: self.next_token,
            family: job.family.clone(),
            name: job.name.clone(),
            vars: job.vars.clone(),
            cancel,
        });
    }

    fn free_slot(&mut self, j: u32) {
        if let Some(p) = self.dag.job(j).family.pool.as_deref() {
            if let Some(u) = self.pool_used.get_mut(p) {
                *u = u.saturating_sub(1);
            }
            if let Some(next) = self.pool_wait.get_mut(p).and_then(|q| q.pop_front()) {
                self.ready.push((self.height[next as usize], Reverse(next)));
            }
        }
    }

    fn record(&mut self, a: Attempt, on_event: &mut dyn FnMut(Event<'_>)) {
        if a.final_state {
            self.report.final_status.insert(a.job, a.status);
        }
        on_event(Event::Finished(&a));
        self.report.attempts.push(a);
    }

    fn handle(&mut self, d: Done, on_event: &mut dyn FnMut(Event<'_>)) {
        let j = d.job;
        match self.running.get(&j) {
            Some(r) if r.token == d.token => {}
            _ => return, // an abandoned attempt that finally returned
        }
        let r = self.running.remove(&j).expect("checked above");
        self.free_slot(j);
        let job = self.dag.job(j);
        let (start, end) = (self.secs(d.started), self.secs(d.ended));
        let mut a = Attempt {
            job: j,
            attempt: r.attempt,
            status: Status::Succeeded,
            start,
            end,
            started_unix: d.started_unix,
            outcome: JobOutcome::default(),
            error: None,
            code: ExitCode::Ok,
            final_state: true,
        };
        let err = match d.result {
            Ok(outcome) => {
                a.outcome = outcome;
                None
            }
            Err(e) if r.timed_out_at.is_some() => {
                a.status = Status::Timeout;
                let t = job.family.timeout.unwrap_or_default();
                Some(JobError::transient(format!(
                    "timed out after {} ({})",
                    human_duration(t),
                    e.message
                )))
            }
            Err(e) if r.cancel.load(Ordering::SeqCst) => {
                a.status = Status::Cancelled;
                a.error = Some(format!("cancelled by a signal ({})", e.message));
                a.code = ExitCode::JobsFailed;
                None
            }
            Err(e) => {
                a.status = Status::Failed;
                Some(e)
            }
        };
        match err {
            None if a.status == Status::Succeeded => {
                self.record(a, on_event);
                for &c in &self.dag.children[j as usize] {
                    if self.in_run[c as usize] {
                        let p = &mut self.pending[c as usize];
                        *p -= 1;
                        if *p == 0 {
                            self.ready.push((self.height[c as usize], Reverse(c)));
                        }
                    }
                }
            }
            None => self.record(a, on_event), // cancelled: descendants stay not started
            Some(e) => {
                a.code = e.code;
                let stop = self.cfg.stop.load(Ordering::SeqCst);
                if e.transient && r.attempt <= job.family.retries && stop == 0 {
                    let delay = self.backoff(job.family.retry_delay, r.attempt);
                    a.final_state = false;
                    a.error = Some(format!(
                        "{} (attempt {} of {}; retrying in {})",
                        e.message,
                        r.attempt,
                        job.family.retries + 1,
                        human_duration(delay)
                    ));
                    self.report.retries += 1;
                    self.record(a, on_event);
                    self.delayed.push(Reverse((Instant::now() + delay, j)));
                } else {
                    a.error = Some(e.message);
                    self.record(a, on_event);
                    self.skip_descendants(j, on_event);
                }
            }
        }
    }

    /// `base * 2^(attempt-1)`, at most 10 minutes, times a jitter in [0.5, 1.5).
    fn backoff(&mut self, base: Duration, attempt: u32) -> Duration {
        let exp = base.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(20) as i32);
        let capped = exp.min(600.0);
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let jitter = 0.5 + (z >> 11) as f64 / (1u64 << 53) as f64;
        Duration::from_secs_f64(capped * jitter)
    }

    fn skip_descendants(&mut self, failed: u32, on_event: &mut dyn FnMut(Event<'_>)) {
        let name = self.dag.job(failed).name.clone();
        let now = self.secs(Instant::now());
        let mut stack: Vec<u32> = self.dag.children[failed as usize].clone();
        while let Some(c) = stack.pop() {
            if !self.in_run[c as usize] || self.report.final_status.contains_key(&c) {
                continue;
            }
            let a = Attempt {
                job: c,
                attempt: 0,
                status: Status::Skipped,
                start: now,
                end: now,
                started_unix: unix_now(),
                outcome: JobOutcome {
                    message: format!("upstream {name} failed"),
                    ..Default::default()
                },
                error: None,
                code: ExitCode::JobsFailed,
                final_state: true,
            };
            self.record(a, on_event);
            stack.extend(self.dag.children[c as usize].iter().copied());
        }
    }

    fn check_deadlines(
        &mut self,
        task_rx: &Receiver<Task>,
        done_tx: &Sender<Done>,
        shared: &Arc<Shared>,
        on_event: &mut dyn FnMut(Event<'_>),
    ) {
        let now = Instant::now();
        let mut abandon = Vec::new();
        for (&j, r) in self.running.iter_mut() {
            match (r.timed_out_at, r.deadline) {
                (None, Some(d)) if now >= d => {
                    r.cancel.store(true, Ordering::SeqCst);
                    r.timed_out_at = Some(now);
                }
                (Some(t), _) if now >= t + self.cfg.timeout_grace => abandon.push(j),
                _ => {}
            }
        }
        for j in abandon {
            let r = self.running.remove(&j).expect("listed above");
            self.free_slot(j);
            // The stuck thread keeps its slot of the worker pool: replace it.
            spawn_worker(task_rx.clone(), done_tx.clone(), shared.clone());
            let job = self.dag.job(j);
            let t = job.family.timeout.unwrap_or_default();
            let end = self.secs(now);
            let a = Attempt {
                job: j,
                attempt: r.attempt,
                status: Status::Timeout,
                start: end - t.as_secs_f64() - self.cfg.timeout_grace.as_secs_f64(),
                end,
                started_unix: unix_now() - t.as_secs_f64() - self.cfg.timeout_grace.as_secs_f64(),
                outcome: JobOutcome::default(),
                error: Some(format!(
                    "timed out after {} and did not stop within {}; abandoned without retry",
                    human_duration(t),
                    human_duration(self.cfg.timeout_grace)
                )),
                code: ExitCode::JobsFailed,
                final_state: true,
            };
            self.record(a, on_event);
            self.skip_descendants(j, on_event);
        }
    }

    fn finish(mut self, _on_event: &mut dyn FnMut(Event<'_>)) -> ExecReport {
        let final_status = &self.report.final_status;
        self.report.not_started = self
            .to_run
            .iter()
            .copied()
            .filter(|j| !final_status.contains_key(j))
            .collect();
        self.report.seconds = self.t0.elapsed().as_secs_f64();
        self.report.started_unix = self.t0_unix;
        self.report
    }
}

pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{}ms", (s * 1000.0).round() as u64)
    } else if s < 90.0 {
        format!("{:.1}s", s)
    } else if s < 5400.0 {
        format!("{:.1}m", s / 60.0)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

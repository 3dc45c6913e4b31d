//! The run ledger: an embedded SQLite database at `<warehouse>/_ledger.sqlite` (WAL mode).
//!
//! - `runs`: one row per night run (date, command, status, counts, timings, report).
//! - `attempts`: one row per job attempt (status, start/end, rows in/out, bytes, error text),
//!   plus one row per job skipped because an upstream job failed.
//! - `job_status`: the latest final status of each job for each date; a re-run skips the jobs
//!   that succeeded.
//!
//! Attempts are written by a background thread in batched transactions, so the cost per job is
//! a channel send. A job whose output was committed but whose row was not yet written when the
//! process was killed is recognised by its kind ([`super::kind::PreparedJob::committed`]) and
//! recorded as `recovered`, not redone.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::error::{Error, Result};

pub const LEDGER_FILE: &str = "_ledger.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    run_id       TEXT PRIMARY KEY,
    date         TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    ended_at     TEXT,
    status       TEXT NOT NULL,
    command      TEXT NOT NULL,
    shard        TEXT,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    pid_start    TEXT NOT NULL,
    selected     INTEGER NOT NULL DEFAULT 0,
    to_run       INTEGER NOT NULL DEFAULT 0,
    succeeded    INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    skipped      INTEGER NOT NULL DEFAULT 0,
    already_done INTEGER NOT NULL DEFAULT 0,
    recovered    INTEGER NOT NULL DEFAULT 0,
    cancelled    INTEGER NOT NULL DEFAULT 0,
    not_started  INTEGER NOT NULL DEFAULT 0,
    retries      INTEGER NOT NULL DEFAULT 0,
    seconds      REAL,
    report       TEXT
);
CREATE INDEX IF NOT EXISTS runs_date ON runs(date);
CREATE TABLE IF NOT EXISTS attempts (
    run_id     TEXT NOT NULL,
    date       TEXT NOT NULL,
    job        TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    status     TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at   REAL NOT NULL,
    seconds    REAL NOT NULL,
    rows_in    INTEGER NOT NULL DEFAULT 0,
    rows_out   INTEGER NOT NULL DEFAULT 0,
    bytes      INTEGER NOT NULL DEFAULT 0,
    message    TEXT NOT NULL DEFAULT '',
    error      TEXT
);
CREATE INDEX IF NOT EXISTS attempts_run ON attempts(run_id);
CREATE INDEX IF NOT EXISTS attempts_job ON attempts(job, date);
CREATE TABLE IF NOT EXISTS job_status (
    date       TEXT NOT NULL,
    job        TEXT NOT NULL,
    status     TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    message    TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL,
    PRIMARY KEY (date, job)
) WITHOUT ROWID;
";

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::Other(format!("run ledger {}: {e}", path.display()))
}

/// One run (one date) as recorded.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunRow {
    pub run_id: String,
    pub date: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub status: String,
    pub command: String,
    pub shard: Option<String>,
    pub host: String,
    pub pid: i64,
    #[serde(skip)]
    pub pid_start: String,
    pub selected: i64,
    pub to_run: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
    pub already_done: i64,
    pub recovered: i64,
    pub cancelled: i64,
    pub not_started: i64,
    pub retries: i64,
    pub seconds: Option<f64>,
    pub report: Option<String>,
}

/// One attempt of one job (or a skip).
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    pub run_id: String,
    pub date: String,
    pub job: String,
    pub attempt: u32,
    /// succeeded | failed | timeout | cancelled | skipped | recovered | retried
    pub status: String,
    /// Unix seconds.
    pub started_at: f64,
    pub ended_at: f64,
    pub seconds: f64,
    pub rows_in: u64,
    pub rows_out: u64,
    pub bytes: u64,
    pub message: String,
    pub error: Option<String>,
    /// Whether this is the job's final state in the run (updates `job_status`).
    #[serde(skip)]
    pub final_state: bool,
}

/// The latest final status of a job for a date.
#[derive(Debug, Clone)]
pub struct PrevStatus {
    pub status: String,
    pub run_id: String,
    pub message: String,
    /// When the job reached this state (Unix seconds).
    pub updated_at: f64,
}

pub struct Ledger {
    conn: Connection,
    pub path: PathBuf,
}

impl Ledger {
    /// Opens (creating if needed) the ledger of a warehouse.
    pub fn open(warehouse_root: &Path) -> Result<Ledger> {
        std::fs::create_dir_all(warehouse_root).map_err(|e| Error::Io {
            context: format!("creating {}", warehouse_root.display()),
            source: e,
        })?;
        let path = warehouse_root.join(LEDGER_FILE);
        let conn = connect(&path)?;
        conn.execute_batch(SCHEMA).map_err(db_err(&path))?;
        Ok(Ledger { conn, path })
    }

    /// Opens the ledger if it exists (for read-only commands).
    pub fn open_existing(warehouse_root: &Path) -> Result<Option<Ledger>> {
        if warehouse_root.join(LEDGER_FILE).exists() {
            Ledger::open(warehouse_root).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Latest final status of every job recorded for `date`.
    pub fn statuses(&self, date: &str) -> Result<HashMap<String, PrevStatus>> {
        let e = db_err(&self.path);
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT job, status, run_id, message, updated_at FROM job_status WHERE date = ?1",
            )
            .map_err(&e)?;
        let rows = st
            .query_map([date], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    PrevStatus {
                        status: r.get(1)?,
                        run_id: r.get(2)?,
                        message: r.get(3)?,
                        updated_at: r.get(4)?,
                    },
                ))
            })
            .map_err(&e)?;
        let mut out = HashMap::new();
        for r in rows {
            let (k, v) = r.map_err(&e)?;
            out.insert(k, v);
        }
        Ok(out)
    }

    /// Marks runs of this host whose process is gone as `crashed`; returns their ids.
    pub fn mark_crashed(&self) -> Result<Vec<String>> {
        let e = db_err(&self.path);
        let host = hostname();
        let mut st = self
            .conn
            .prepare(
                "SELECT run_id, pid, pid_start FROM runs WHERE status = 'running' AND host = ?1",
            )
            .map_err(&e)?;
        let candidates: Vec<(String, i64, String)> = st
            .query_map([&host], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(&e)?
            .collect::<std::result::Result<_, _>>()
            .map_err(&e)?;
        let mut crashed = Vec::new();
        for (run_id, pid, start) in candidates {
            if process_start(pid as u32).as_deref() != Some(start.as_str()) {
                // The counts are written when a run ends: a crashed run's come from the
                // attempts it recorded (its list said "ok 0" though jobs had committed).
                self.conn
                    .execute(
                        "UPDATE runs SET status = 'crashed', ended_at = COALESCE(ended_at, ?2),
                            succeeded = (SELECT COUNT(DISTINCT job) FROM attempts
                                         WHERE run_id = ?1 AND status = 'succeeded'),
                            failed = (SELECT COUNT(DISTINCT a.job) FROM attempts a
                                      WHERE a.run_id = ?1 AND a.status IN ('failed', 'timeout')
                                        AND NOT EXISTS (SELECT 1 FROM attempts b
                                            WHERE b.run_id = a.run_id AND b.job = a.job
                                              AND b.status = 'succeeded'))
                         WHERE run_id = ?1",
                        params![run_id, now_iso()],
                    )
                    .map_err(&e)?;
                crashed.push(run_id);
            }
        }
        Ok(crashed)
    }

    /// Ids of crashed runs for `date`.
    pub fn crashed_runs(&self, date: &str) -> Result<HashSet<String>> {
        let e = db_err(&self.path);
        let mut st = self
            .conn
            .prepare("SELECT run_id FROM runs WHERE date = ?1 AND status = 'crashed'")
            .map_err(&e)?;
        let out = st
            .query_map([date], |r| r.get::<_, String>(0))
            .map_err(&e)?
            .collect::<std::result::Result<_, _>>()
            .map_err(&e)?;
        Ok(out)
    }

    /// Crashed runs of `date` whose committed jobs were recorded by a later run.
    pub fn mark_resumed(&self, date: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET status = 'crashed, resumed' WHERE date = ?1 AND status = 'crashed'",
                [date],
            )
            .map_err(db_err(&self.path))?;
        Ok(())
    }

    pub fn start_run(&self, run: &RunRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO runs (run_id, date, started_at, status, command, shard, host, pid, pid_start, selected, to_run, already_done)
                 VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    run.run_id,
                    run.date,
                    run.started_at,
                    run.command,
                    run.shard,
                    run.host,
                    run.pid,
                    run.pid_start,
                    run.selected,
                    run.to_run,
                    run.already_done
                ],
            )
            .map_err(db_err(&self.path))?;
        Ok(())
    }

    pub fn finish_run(&self, run: &RunRow) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET ended_at = ?2, status = ?3, succeeded = ?4, failed = ?5, skipped = ?6,
                 recovered = ?7, cancelled = ?8, not_started = ?9, retries = ?10, seconds = ?11, report = ?12
                 WHERE run_id = ?1",
                params![
                    run.run_id,
                    run.ended_at,
                    run.status,
                    run.succeeded,
                    run.failed,
                    run.skipped,
                    run.recovered,
                    run.cancelled,
                    run.not_started,
                    run.retries,
                    run.seconds,
                    run.report
                ],
            )
            .map_err(db_err(&self.path))?;
        Ok(())
    }

    pub fn set_report(&self, run_id: &str, report: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET report = ?2 WHERE run_id = ?1",
                params![run_id, report],
            )
            .map_err(db_err(&self.path))?;
        Ok(())
    }

    /// Runs, newest first.
    pub fn runs(&self, date: Option<&str>, limit: usize) -> Result<Vec<RunRow>> {
        let e = db_err(&self.path);
        let mut st = self
            .conn
            .prepare(
                "SELECT run_id, date, started_at, ended_at, status, command, shard, host, pid, selected, to_run,
                        succeeded, failed, skipped, already_done, recovered, cancelled, not_started, retries, seconds, report
                 FROM runs WHERE (?1 IS NULL OR date = ?1) ORDER BY started_at DESC, run_id DESC LIMIT ?2",
            )
            .map_err(&e)?;
        let rows = st
            .query_map(params![date, limit as i64], |r| {
                Ok(RunRow {
                    run_id: r.get(0)?,
                    date: r.get(1)?,
                    started_at: r.get(2)?,
                    ended_at: r.get(3)?,
                    status: r.get(4)?,
                    command: r.get(5)?,
                    shard: r.get(6)?,
                    host: r.get(7)?,
                    pid: r.get(8)?,
                    pid_start: String::new(),
                    selected: r.get(9)?,
                    to_run: r.get(10)?,
                    succeeded: r.get(11)?,
                    failed: r.get(12)?,
                    skipped: r.get(13)?,
                    already_done: r.get(14)?,
                    recovered: r.get(15)?,
                    cancelled: r.get(16)?,
                    not_started: r.get(17)?,
                    retries: r.get(18)?,
                    seconds: r.get(19)?,
                    report: r.get(20)?,
                })
            })
            .map_err(&e)?;
        rows.collect::<std::result::Result<_, _>>().map_err(&e)
    }

    pub fn run(&self, run_id: &str) -> Result<Option<RunRow>> {
        Ok(self
            .runs(None, usize::MAX >> 1)?
            .into_iter()
            .find(|r| r.run_id == run_id))
    }

    /// Attempts of a run and/or of a job (name or `*` wildcard), in start order.
    pub fn attempts(
        &self,
        run_id: Option<&str>,
        job: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AttemptRow>> {
        let e = db_err(&self.path);
        let like = job.map(|j| j.replace('*', "%").replace('?', "_"));
        let mut st = self
            .conn
            .prepare(
                "SELECT run_id, date, job, attempt, status, started_at, ended_at, seconds, rows_in, rows_out, bytes, message, error
                 FROM attempts WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR job LIKE ?2 ESCAPE '\\')
                 ORDER BY started_at, job LIMIT ?3",
            )
            .map_err(&e)?;
        let rows = st
            .query_map(params![run_id, like, limit as i64], |r| {
                Ok(AttemptRow {
                    run_id: r.get(0)?,
                    date: r.get(1)?,
                    job: r.get(2)?,
                    attempt: r.get(3)?,
                    status: r.get(4)?,
                    started_at: r.get(5)?,
                    ended_at: r.get(6)?,
                    seconds: r.get(7)?,
                    rows_in: r.get::<_, i64>(8)? as u64,
                    rows_out: r.get::<_, i64>(9)? as u64,
                    bytes: r.get::<_, i64>(10)? as u64,
                    message: r.get(11)?,
                    error: r.get(12)?,
                    final_state: false,
                })
            })
            .map_err(&e)?;
        rows.collect::<std::result::Result<_, _>>().map_err(&e)
    }

    /// Writes attempts synchronously (used for recovered jobs before the run starts).
    pub fn write_attempts(&mut self, rows: &[AttemptRow]) -> Result<()> {
        write_batch(&mut self.conn, rows).map_err(db_err(&self.path))
    }

    /// A writer on its own connection and thread; attempts are batched into transactions.
    pub fn writer(&self) -> Result<LedgerWriter> {
        let mut conn = connect(&self.path)?;
        let (tx, rx) = crossbeam_channel::unbounded::<AttemptRow>();
        let path = self.path.clone();
        let handle = std::thread::Builder::new()
            .name("ledger".into())
            .spawn(move || -> std::result::Result<(), String> {
                let mut first_err: Option<String> = None;
                while let Ok(row) = rx.recv() {
                    let mut batch = vec![row];
                    while batch.len() < 10_000 {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = write_batch(&mut conn, &batch) {
                        first_err
                            .get_or_insert_with(|| format!("run ledger {}: {e}", path.display()));
                    }
                }
                match first_err {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            })
            .map_err(|e| Error::Other(format!("starting the ledger writer: {e}")))?;
        Ok(LedgerWriter {
            tx: Some(tx),
            handle: Some(handle),
        })
    }
}

/// Sends attempts to the ledger thread; `finish` waits until all are written.
pub struct LedgerWriter {
    tx: Option<crossbeam_channel::Sender<AttemptRow>>,
    handle: Option<std::thread::JoinHandle<std::result::Result<(), String>>>,
}

impl LedgerWriter {
    pub fn send(&self, row: AttemptRow) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(row);
        }
    }

    pub fn finish(mut self) -> Result<()> {
        self.tx.take();
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(Ok(()))) | None => Ok(()),
            Some(Ok(Err(e))) => Err(Error::Other(e)),
            Some(Err(_)) => Err(Error::Other("the ledger writer panicked".into())),
        }
    }
}

impl Drop for LedgerWriter {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn connect(path: &Path) -> Result<Connection> {
    let e = db_err(path);
    let conn = Connection::open(path).map_err(&e)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(&e)?;
    // WAL: readers (`panorama runs`) never block the run; NORMAL: a committed transaction
    // survives a killed process (only a power loss may drop the last ones).
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(&e)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(&e)?;
    Ok(conn)
}

fn write_batch(conn: &mut Connection, rows: &[AttemptRow]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO attempts (run_id, date, job, attempt, status, started_at, ended_at, seconds, rows_in, rows_out, bytes, message, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        let mut up = tx.prepare_cached(
            "INSERT INTO job_status (date, job, status, run_id, attempt, message, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(date, job) DO UPDATE SET status = excluded.status, run_id = excluded.run_id,
               attempt = excluded.attempt, message = excluded.message, updated_at = excluded.updated_at",
        )?;
        for r in rows {
            ins.execute(params![
                r.run_id,
                r.date,
                r.job,
                r.attempt,
                r.status,
                r.started_at,
                r.ended_at,
                r.seconds,
                r.rows_in as i64,
                r.rows_out as i64,
                r.bytes as i64,
                r.message,
                r.error
            ])?;
            if r.final_state {
                let status = if r.status == "recovered" {
                    "succeeded"
                } else {
                    r.status.as_str()
                };
                let msg = r.error.as_deref().unwrap_or(&r.message);
                up.execute(params![
                    r.date, r.job, status, r.run_id, r.attempt, msg, r.ended_at
                ])?;
            }
        }
    }
    tx.commit()
}

pub fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// The start time of a process (field 22 of /proc/PID/stat), to tell a live run from a dead
/// one whose pid was reused.
pub fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// Unix seconds, for attempt timings.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Whether a run id exists already.
pub fn run_exists(ledger: &Ledger, run_id: &str) -> Result<bool> {
    ledger
        .conn
        .query_row("SELECT 1 FROM runs WHERE run_id = ?1", [run_id], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
        .map_err(db_err(&ledger.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(job: &str, status: &str, final_state: bool) -> AttemptRow {
        AttemptRow {
            run_id: "r1".into(),
            date: "2026-11-26".into(),
            job: job.into(),
            attempt: 1,
            status: status.into(),
            started_at: unix_now(),
            ended_at: unix_now(),
            seconds: 0.0,
            rows_in: 1,
            rows_out: 1,
            bytes: 0,
            message: String::new(),
            error: None,
            final_state,
        }
    }

    #[test]
    fn writer_batches_and_statuses_follow_the_last_final_state() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let w = ledger.writer().unwrap();
        w.send(attempt("a", "retried", false));
        w.send(attempt("a", "succeeded", true));
        w.send(attempt("b", "failed", true));
        w.send(attempt("c", "recovered", true));
        w.finish().unwrap();
        let st = ledger.statuses("2026-11-26").unwrap();
        assert_eq!(st["a"].status, "succeeded");
        assert_eq!(st["b"].status, "failed");
        assert_eq!(st["c"].status, "succeeded");
        assert_eq!(ledger.attempts(Some("r1"), None, 100).unwrap().len(), 4);
        assert_eq!(ledger.attempts(None, Some("a*"), 100).unwrap().len(), 2);
        assert!(ledger.statuses("2026-11-27").unwrap().is_empty());
    }

    #[test]
    fn a_running_run_of_a_dead_process_is_marked_crashed() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let me = std::process::id();
        let mut live = RunRow {
            run_id: "live".into(),
            date: "2026-11-26".into(),
            started_at: now_iso(),
            status: "running".into(),
            command: "run".into(),
            host: hostname(),
            pid: me as i64,
            pid_start: process_start(me).unwrap(),
            ..Default::default()
        };
        ledger.start_run(&live).unwrap();
        live.run_id = "dead".into();
        live.pid_start = "0".into();
        ledger.start_run(&live).unwrap();
        // What the dead run did before it died counts (its list said "ok 0").
        let w = ledger.writer().unwrap();
        for (job, status) in [
            ("a", "retried"),
            ("a", "succeeded"),
            ("b", "succeeded"),
            ("c", "failed"),
        ] {
            let mut row = attempt(job, status, status != "retried");
            row.run_id = "dead".into();
            w.send(row);
        }
        w.finish().unwrap();
        assert_eq!(ledger.mark_crashed().unwrap(), vec!["dead".to_string()]);
        let dead = ledger.run("dead").unwrap().unwrap();
        assert_eq!((dead.succeeded, dead.failed), (2, 1));
        assert!(ledger.crashed_runs("2026-11-26").unwrap().contains("dead"));
        assert!(run_exists(&ledger, "live").unwrap());
    }
}

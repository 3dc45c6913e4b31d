//! The extension point of the engine: a job kind turns the kind-specific keys of a job file
//! into a [`PreparedJob`] that says which tables each instance reads and writes and knows how
//! to run one instance. Kinds register themselves in a [`Registry`]; the engine never matches
//! on a kind's name.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Serialize;

use crate::config::Project;
use crate::error::ExitCode;

/// Matrix values of one instance of a family (`branch = "0101"`), sorted by key.
pub type Vars = BTreeMap<String, String>;

/// A table (and optionally some of its partition keys besides `dt`) that a job reads or writes,
/// written `layer.table` or `layer.table[key=value,...]`.
///
/// Two references overlap when they name the same table and agree on every partition key they
/// both name: `clean.tx` overlaps `clean.tx[branch=0101]`; `clean.tx[branch=0101]` does not
/// overlap `clean.tx[branch=0102]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableRef {
    pub layer: String,
    pub table: String,
    /// Partition keys besides `dt` (a run is for one date), sorted by key.
    pub partition: Vec<(String, String)>,
}

impl TableRef {
    pub fn new(layer: &str, table: &str, partition: &Vars) -> TableRef {
        TableRef {
            layer: layer.to_string(),
            table: table.to_string(),
            partition: partition
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Parses `layer.table` or `layer.table[key=value,...]`.
    pub fn parse(s: &str) -> Result<TableRef, String> {
        let s = s.trim();
        let (head, part) = match s.find('[') {
            Some(i) => {
                let Some(inner) = s[i + 1..].strip_suffix(']') else {
                    return Err(format!("{s:?}: `[` without a closing `]` at the end"));
                };
                (&s[..i], Some(inner))
            }
            None => (s, None),
        };
        let Some((layer, table)) = head.split_once('.') else {
            return Err(format!(
                "{s:?} is not `layer.table` (e.g. clean.transactions)"
            ));
        };
        if !is_ident(layer) || !is_ident(table) {
            return Err(format!(
                "{s:?}: layer and table must be identifiers (letters, digits, _)"
            ));
        }
        let mut partition = Vec::new();
        if let Some(inner) = part {
            for kv in inner.split(',').filter(|x| !x.trim().is_empty()) {
                let Some((k, v)) = kv.split_once('=') else {
                    return Err(format!("{s:?}: partition {kv:?} is not key=value"));
                };
                let (k, v) = (k.trim(), v.trim());
                if !is_ident(k) || v.is_empty() {
                    return Err(format!("{s:?}: partition {kv:?} is not key=value"));
                }
                partition.push((k.to_string(), v.to_string()));
            }
        }
        partition.sort();
        partition.dedup_by(|a, b| a.0 == b.0);
        Ok(TableRef {
            layer: layer.to_string(),
            table: table.to_string(),
            partition,
        })
    }

    /// `clean.transactions`, without partition keys.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.layer, self.table)
    }

    /// Whether the two may touch the same data (see the type's doc).
    pub fn overlaps(&self, other: &TableRef) -> bool {
        self.layer == other.layer
            && self.table == other.table
            && partitions_overlap(&self.partition, &other.partition)
    }
}

/// Two sorted key lists agree on every key they share.
pub(crate) fn partitions_overlap(a: &[(String, String)], b: &[(String, String)]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                if a[i].1 != b[j].1 {
                    return false;
                }
                i += 1;
                j += 1;
            }
        }
    }
    true
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.layer, self.table)?;
        if !self.partition.is_empty() {
            f.write_str("[")?;
            for (i, (k, v)) in self.partition.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}={v}")?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

impl Serialize for TableRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What one instance reads and writes; the engine infers dependencies from these.
#[derive(Debug, Clone, Default)]
pub struct Io {
    pub reads: Vec<TableRef>,
    pub writes: Vec<TableRef>,
}

/// One job file as the engine has parsed it, handed to the kind to prepare.
pub struct JobFile<'a> {
    /// Absolute path of the file.
    pub path: &'a Path,
    /// Path relative to the project, for messages.
    pub rel: &'a str,
    /// Job name without the kind (`applications` for `ingest.applications`).
    pub name: &'a str,
    /// The whole file; the kind reads its own keys (those not in [`COMMON_KEYS`]).
    pub table: &'a toml::Table,
    /// Matrix keys of the family (empty for a single job); their values reach the kind per
    /// instance as [`Vars`].
    pub matrix_keys: &'a [String],
}

/// Keys every job file may have, read by the engine; all others belong to the kind.
pub const COMMON_KEYS: &[&str] = &[
    "kind",
    "name",
    "after",
    "tags",
    "pool",
    "timeout",
    "retries",
    "retry_delay",
    "matrix",
    "description",
];

impl JobFile<'_> {
    /// The keys of the file that belong to the kind.
    pub fn own_keys(&self) -> impl Iterator<Item = (&String, &toml::Value)> {
        self.table
            .iter()
            .filter(|(k, _)| !COMMON_KEYS.contains(&k.as_str()))
    }
}

/// Everything a running job may use.
pub struct JobCtx<'a> {
    pub project: &'a Project,
    /// The night being processed (`dt`).
    pub date: chrono::NaiveDate,
    pub run_id: &'a str,
    /// 1 for the first attempt of this run, 2 for the first retry, ...
    pub attempt: u32,
    /// Set on timeout or on a second SIGINT/SIGTERM: stop early and commit nothing.
    pub cancel: &'a AtomicBool,
    /// Worker threads the job may use itself.
    pub threads: usize,
}

/// The instance being run.
pub struct JobRef<'a> {
    /// Full name, e.g. `ingest.transactions[branch=0101]`.
    pub name: &'a str,
    pub vars: &'a Vars,
}

/// What a finished job reports; goes to the ledger and the run report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobOutcome {
    pub rows_in: u64,
    pub rows_out: u64,
    pub bytes: u64,
    pub message: String,
    /// Things a human should look at although the job succeeded (a drift alert, a check
    /// at severity warn); they reach the run summary and the run report.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A failed attempt. Transient failures (I/O hiccups, timeouts) are retried with backoff;
/// others fail the job at once.
#[derive(Debug, Clone)]
pub struct JobError {
    pub message: String,
    pub transient: bool,
    /// The exit code this failure alone would have had (3 for rejected data, ...).
    pub code: ExitCode,
}

impl JobError {
    pub fn permanent(message: impl Into<String>) -> JobError {
        JobError {
            message: message.into(),
            transient: false,
            code: ExitCode::JobsFailed,
        }
    }

    pub fn transient(message: impl Into<String>) -> JobError {
        JobError {
            message: message.into(),
            transient: true,
            code: ExitCode::JobsFailed,
        }
    }
}

/// Proof that a job's output for a date is in place, and which run committed it. After a run
/// was killed, the engine asks the kind before running a job again, so that a job that had
/// committed is recorded, not redone.
#[derive(Debug, Clone)]
pub struct Committed {
    pub run_id: String,
    pub outcome: JobOutcome,
}

/// A job file prepared by its kind: shared by all instances of a family.
pub trait PreparedJob: Send + Sync {
    /// Tables one instance reads and writes.
    fn io(&self, vars: &Vars) -> Io;

    /// Problems that do not depend on the date (a missing layout or source file, ...).
    fn check(&self, _vars: &Vars, _project: &Project) -> Vec<String> {
        Vec::new()
    }

    /// Runs one instance. Must honour `ctx.cancel` and commit atomically or not at all.
    fn run(&self, job: &JobRef<'_>, ctx: &JobCtx<'_>) -> Result<JobOutcome, JobError>;

    /// Why an instance that succeeded for `date` in run `last_run` must run again although
    /// nobody forced it: its inputs outside the warehouse changed since (a corrected source
    /// file, an edited model), or its output was written again outside the scheduler (a
    /// `panorama ingest` by hand), so that what was built from it is stale. None when
    /// neither, or the kind cannot tell.
    fn inputs_changed(
        &self,
        _job: &JobRef<'_>,
        _project: &Project,
        _date: chrono::NaiveDate,
        _last_run: &str,
    ) -> Option<String> {
        None
    }

    /// The run that committed this instance's output for `date`, if the kind can tell.
    fn committed(
        &self,
        _job: &JobRef<'_>,
        _project: &Project,
        _date: chrono::NaiveDate,
    ) -> Option<Committed> {
        None
    }
}

/// A kind of job (`noop`, `ingest`, `sql`, `check`, `train`, `decide`, `score`; see
/// `crate::jobkinds`).
pub trait JobKind: Send + Sync {
    /// The value of `kind` in job files.
    fn kind(&self) -> &str;

    /// Validates the kind's keys of one job file (all problems at once) and prepares it.
    fn prepare(
        &self,
        file: &JobFile<'_>,
        project: &Project,
    ) -> Result<Arc<dyn PreparedJob>, Vec<String>>;
}

/// The kinds a project can use, by name.
#[derive(Default, Clone)]
pub struct Registry {
    kinds: BTreeMap<String, Arc<dyn JobKind>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a kind; a later registration of the same name replaces the earlier one.
    pub fn register(&mut self, kind: impl JobKind + 'static) -> &mut Registry {
        self.kinds.insert(kind.kind().to_string(), Arc::new(kind));
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn JobKind>> {
        self.kinds.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.kinds.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_refs_parse_print_and_overlap() {
        let a = TableRef::parse("clean.tx[region=n, branch=0101]").unwrap();
        assert_eq!(a.to_string(), "clean.tx[branch=0101,region=n]");
        let whole = TableRef::parse("clean.tx").unwrap();
        let other = TableRef::parse("clean.tx[branch=0102]").unwrap();
        let by_region = TableRef::parse("clean.tx[region=n]").unwrap();
        assert!(whole.overlaps(&a) && a.overlaps(&whole));
        assert!(!a.overlaps(&other));
        assert!(by_region.overlaps(&other));
        assert!(!whole.overlaps(&TableRef::parse("feature.tx").unwrap()));
        for bad in [
            "tx",
            "clean.tx[branch]",
            "clean.tx[b=1",
            "clean.1x",
            "clean.tx[=1]",
        ] {
            assert!(TableRef::parse(bad).is_err(), "{bad}");
        }
    }
}

//! Ingest: read a source in its format and encoding, clean and type every value, tokenize
//! personal data, split good rows from rejects, and commit both partitions atomically.
//!
//! Every row read is accounted for: `rows_read = rows_written + rows_rejected`, recorded in
//! the clean partition's `_SUCCESS`. Each reject keeps its source file, line or record
//! number, raw text, column and reason.

pub mod clean;
pub mod contract;
mod csv_record;
mod dedupe;
pub mod pii;
pub mod pipeline;
pub mod readers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::config::Project;
pub use contract::Contract;

/// One ingest of one source for one date (and matrix values, for families).
pub struct IngestRequest<'a> {
    pub project: &'a Project,
    pub contract: &'a Contract,
    /// The night being processed (`dt`).
    pub date: chrono::NaiveDate,
    pub run_id: &'a str,
    /// Job name, recorded in `_SUCCESS` (`ingest.applications[branch=0101]`).
    pub job: &'a str,
    /// Matrix values of a job family: substituted into the source path and added as Hive
    /// partition keys after `dt` (in this order).
    pub vars: &'a BTreeMap<String, String>,
    /// Set by the scheduler on SIGINT/SIGTERM: stop early, commit nothing.
    pub cancel: Option<&'a AtomicBool>,
    /// Worker threads for parsing and cleaning.
    pub threads: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub table: String,
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub source_files: Vec<PathBuf>,
    pub partition: PathBuf,
    pub rejects: PathBuf,
    pub seconds: f64,
}

pub use pipeline::ingest;

/// A seeded xorshift generator for the randomized tests of the readers.
#[cfg(test)]
pub(crate) fn test_rng(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

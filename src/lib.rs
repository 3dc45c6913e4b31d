//! Panorama: the nightly batch of an SME lender as one library and one thin binary.
//!
//! Layers, lowest first: `warehouse` (layout, atomic commits, catalog) < `ingest`
//! (readers, cleaning, PII) < `schedule` (jobs, DAG, executor, ledger) < `jobkinds` < `cli`
//! (glue); docs/architecture.md has the full table.
//! Lower layers never import upper ones.

pub mod cli;
pub mod config;
pub mod error;
pub mod generate;
pub mod ids;
pub mod ingest;
pub mod jobkinds;
pub mod log;
pub mod model;
pub mod quality;
pub mod report;
pub mod schedule;
pub mod score;
pub mod transform;
pub mod warehouse;

pub use error::{Error, ExitCode, Result};

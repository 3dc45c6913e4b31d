//! Typed errors with the values that matter, and the process exit codes they map to.
//!
//! Exit codes are a stable interface (README): 0 ok; 1 ran, but some jobs failed;
//! 2 usage or configuration error; 3 input data rejected beyond its threshold;
//! 4 another run holds the lock.

use std::path::PathBuf;

/// Process exit codes; documented in the README and relied upon by cron and Airflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Ok = 0,
    JobsFailed = 1,
    Usage = 2,
    DataRejected = 3,
    Locked = 4,
    /// A bug: the process hit an internal error (a panic), reported in one line.
    Internal = 5,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags, bad config, bad contract or job spec: the user must fix a file or a flag.
    #[error("{0}")]
    Config(String),

    /// A contract or job file with one or more problems, all listed.
    #[error("{} problem(s) in {}:\n{}", problems.len(), what, problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { what: String, problems: Vec<String> },

    /// A source file that cannot be read at all (missing, undecodable header, corrupt).
    #[error("{}: {message}", path.display())]
    Input { path: PathBuf, message: String },

    /// The share of rejected rows is above the contract's threshold.
    #[error(
        "{table}: {rejected} of {read} rows rejected ({:.2}%), above the threshold of {:.2}%; \
         rejects are in {}", 100.0 * (*rejected as f64) / (*read).max(1) as f64, 100.0 * threshold, rejects.display()
    )]
    RejectThreshold {
        table: String,
        read: u64,
        rejected: u64,
        threshold: f64,
        rejects: PathBuf,
    },

    /// Some jobs of a run failed (the others went on).
    #[error("{failed} job(s) failed")]
    JobsFailed { failed: usize },

    /// Another process holds the warehouse lock.
    #[error("another run holds the lock on {}: {holder}", path.display())]
    Locked { path: PathBuf, holder: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}: {source}")]
    Polars {
        context: String,
        #[source]
        source: polars::error::PolarsError,
    },

    #[error("interrupted")]
    Interrupted,

    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) | Error::Invalid { .. } => ExitCode::Usage,
            Error::Input { .. } | Error::RejectThreshold { .. } => ExitCode::DataRejected,
            Error::JobsFailed { .. } => ExitCode::JobsFailed,
            Error::Locked { .. } => ExitCode::Locked,
            Error::Io { .. } | Error::Polars { .. } | Error::Interrupted | Error::Other(_) => {
                ExitCode::JobsFailed
            }
        }
    }

    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }

    pub fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Input {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Adds a human context to io and polars errors at the edge where the path is known.
pub trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, polars::error::PolarsError> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Polars {
            context: context(),
            source,
        })
    }
}

/// Panics that library code catches on purpose (a bug in a dependency with a way around it):
/// while one is being caught, the binary's panic hook stays silent.
static EXPECTED_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether a panic now is one that `catch_expected` will catch.
pub fn panic_expected() -> bool {
    EXPECTED_PANICS.load(std::sync::atomic::Ordering::SeqCst) > 0
}

/// Runs `f`, turning a panic into `Err(message)` without the panic hook's report.
pub fn catch_expected<R>(f: impl FnOnce() -> R) -> std::result::Result<R, String> {
    use std::sync::atomic::Ordering;
    EXPECTED_PANICS.fetch_add(1, Ordering::SeqCst);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    EXPECTED_PANICS.fetch_sub(1, Ordering::SeqCst);
    r.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    })
}

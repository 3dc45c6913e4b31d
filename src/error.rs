//! Typed errors with the values that matter, and the process exit codes they map to.
//!
//! Exit codes are a stable interface (README): 0 ok; 1 ran, but some jobs failed;
//! 2 usage or configuration error; 3 input data rejected beyond its threshold;
//! 4 another run holds the lock.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

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

    #[error("interrupted by a signal: nothing of this job was committed")]
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

    /// Whether this is a write to a pipe whose reader went away (`panorama query ... | head`).
    pub fn is_broken_pipe(&self) -> bool {
        let broken = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
        match self {
            Error::Io { source, .. } => broken(source),
            Error::Polars {
                source: polars::error::PolarsError::IO { error, .. },
                ..
            } => broken(error),
            // Some writers flatten the io error into text.
            Error::Polars { source, .. } => source.to_string().contains("Broken pipe"),
            Error::Other(m) => m.contains("Broken pipe"),
            _ => false,
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

thread_local! {
    /// Set while `catch_library_panic` runs on this thread.
    static CATCHING_PANIC: Cell<bool> = const { Cell::new(false) };
}

/// `catch_library_panic` calls running in the process: a library may panic on one of its
/// worker threads (polars decodes Parquet pages on its pool), and the panic reaches the
/// caller through the pool.
static CATCHING_PANICS: AtomicUsize = AtomicUsize::new(0);

/// Why `pattern` is not a valid regular expression, in one line (the regex crate draws a
/// caret under the pattern over several lines, which broke lists of problems); `None` when
/// it compiles.
pub fn regex_problem(pattern: &str) -> Option<String> {
    let text = regex::Regex::new(pattern).err()?.to_string();
    let last = text.lines().rev().find(|l| !l.trim().is_empty());
    Some(last.map_or(text.clone(), |l| {
        l.trim_start_matches("error: ").to_string()
    }))
}

/// The message a panic carries (`panic!("…")` gives a `&str` or a `String`), else `default`.
pub fn panic_message(payload: &(dyn std::any::Any + Send), default: &str) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| default.to_string())
}

/// Runs `f` and turns a panic inside it into its message: for a library that panics on bad
/// input instead of returning an error (polars-parquet on a corrupt footer), or on a plan it
/// has another way to run (polars' streaming engine, see `transform::query::collect`). Meanwhile the
/// binary's panic hook stays quiet on this thread, since the panic is not a bug of ours.
pub fn catch_library_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let outer = CATCHING_PANIC.replace(true);
    CATCHING_PANICS.fetch_add(1, Ordering::SeqCst);
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING_PANICS.fetch_sub(1, Ordering::SeqCst);
    CATCHING_PANIC.set(outer);
    out.map_err(|payload| {
        let message = panic_message(payload.as_ref(), "the reader panicked");
        // Assertion messages span lines: one line for the error chain.
        message.split_whitespace().collect::<Vec<_>>().join(" ")
    })
}

/// Whether a panic on this thread will be caught by `catch_library_panic` (the panic hook
/// then prints nothing): it runs on this thread, or this is a thread of polars' pool while it
/// runs somewhere. (A panic of another polars query at that very moment is then silent too;
/// its job still fails with it.)
pub fn panic_is_caught() -> bool {
    CATCHING_PANIC.get() || (CATCHING_PANICS.load(Ordering::SeqCst) > 0 && on_polars_pool_thread())
}

/// Whether this thread is one of polars' pool or of its streaming engine's executor (named
/// as polars names them).
fn on_polars_pool_thread() -> bool {
    let pool = std::env::var("POLARS_THREAD_NAME").unwrap_or_else(|_| "polars".into());
    let name = std::thread::current().name().map(str::to_string);
    [pool.as_str(), "async-executor"].iter().any(|prefix| {
        name.as_deref()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|i| i.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_panic_becomes_its_message() {
        assert_eq!(catch_library_panic(|| 7), Ok(7));
        let caught = catch_library_panic(|| {
            assert!(panic_is_caught());
            let footer: Vec<u8> = Vec::new();
            footer.first().copied().expect("footer length")
        });
        assert_eq!(caught, Err("footer length".to_string()));
        assert!(!panic_is_caught());
    }
}

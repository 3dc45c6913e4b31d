//! Logs go to stderr: human lines, or JSON lines with `--log-format json`. Never stdout, which
//! carries results and the run's one-line JSON summary.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

static FORMAT: AtomicU8 = AtomicU8::new(0);
static MIN_LEVEL: AtomicU8 = AtomicU8::new(1);

pub fn init(format: LogFormat, verbose: bool, quiet: bool) {
    FORMAT.store(matches!(format, LogFormat::Json) as u8, Ordering::Relaxed);
    let min = if verbose {
        0
    } else if quiet {
        2
    } else {
        1
    };
    MIN_LEVEL.store(min, Ordering::Relaxed);
}

pub fn format() -> LogFormat {
    if FORMAT.load(Ordering::Relaxed) == 1 {
        LogFormat::Json
    } else {
        LogFormat::Human
    }
}

/// Writes one event with structured fields.
pub fn event(level: Level, message: &str, fields: &[(&str, serde_json::Value)]) {
    if (level as u8) < MIN_LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let line = match format() {
        LogFormat::Json => {
            let mut obj = serde_json::Map::new();
            obj.insert(
                "ts".into(),
                chrono::Utc::now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    .into(),
            );
            obj.insert("level".into(), level.as_str().into());
            obj.insert("msg".into(), message.into());
            for (k, v) in fields {
                obj.insert((*k).to_string(), v.clone());
            }
            serde_json::Value::Object(obj).to_string()
        }
        LogFormat::Human => {
            let mut s = format!("[{}] {message}", level.as_str());
            for (k, v) in fields {
                match v {
                    serde_json::Value::String(t) => s.push_str(&format!(" {k}={t}")),
                    other => s.push_str(&format!(" {k}={other}")),
                }
            }
            s
        }
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

pub fn info(message: &str, fields: &[(&str, serde_json::Value)]) {
    event(Level::Info, message, fields)
}

pub fn warn(message: &str, fields: &[(&str, serde_json::Value)]) {
    event(Level::Warn, message, fields)
}

pub fn debug(message: &str, fields: &[(&str, serde_json::Value)]) {
    event(Level::Debug, message, fields)
}

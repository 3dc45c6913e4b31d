//! An exclusive lock on a warehouse, held for the length of a run (flock on `_lock`).
//! The file names its holder so that a second run can say who is in the way.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};

pub const LOCK_FILE: &str = "_lock";

/// Held while alive; the kernel releases it when the process dies, even by `kill -9`.
#[derive(Debug)]
pub struct WarehouseLock {
    _file: File,
    pub path: PathBuf,
}

impl WarehouseLock {
    /// Takes the lock or fails at once with `Error::Locked` naming the holder.
    pub fn acquire(warehouse_root: &Path, holder: &str) -> Result<WarehouseLock> {
        std::fs::create_dir_all(warehouse_root)
            .ctx(|| format!("creating {}", warehouse_root.display()))?;
        let path = warehouse_root.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on a valid open descriptor.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let mut who = String::new();
            let _ = file.read_to_string(&mut who);
            return Err(Error::Locked {
                path,
                holder: if who.trim().is_empty() {
                    "unknown holder".into()
                } else {
                    who.trim().to_string()
                },
            });
        }
        file.set_len(0)
            .ctx(|| format!("truncating {}", path.display()))?;
        file.rewind()
            .ctx(|| format!("writing {}", path.display()))?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        writeln!(
            file,
            "pid {} on {} since {}: {holder}",
            std::process::id(),
            host.trim(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
        .ctx(|| format!("writing {}", path.display()))?;
        file.flush().ctx(|| format!("writing {}", path.display()))?;
        Ok(WarehouseLock { _file: file, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_first_named() {
        let dir = tempfile::tempdir().unwrap();
        let first = WarehouseLock::acquire(dir.path(), "run --date 2024-06-30").unwrap();
        let err = WarehouseLock::acquire(dir.path(), "another").unwrap_err();
        assert!(matches!(err, Error::Locked { .. }));
        assert!(err.to_string().contains("run --date 2024-06-30"), "{err}");
        drop(first);
        WarehouseLock::acquire(dir.path(), "third").unwrap();
    }
}

//! The lock on a warehouse, held for the length of a run (flock on `_lock`).
//! The file names its holder so that a second run can say who is in the way.
//!
//! A full run holds `_lock` exclusive. A sharded run (`--shard i/n`) holds `_lock` *shared*
//! and its shard's `_shards/i-of-n/_lock` exclusive: the shards of a stage run together, a
//! shard cannot run twice at once, and full and sharded runs exclude each other.

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

fn open(dir: &Path) -> Result<(File, PathBuf)> {
    std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .ctx(|| format!("opening {}", path.display()))?;
    Ok((file, path))
}

fn try_flock(file: &File, op: libc::c_int) -> bool {
    // SAFETY: flock on a valid open descriptor.
    unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) == 0 }
}

fn contents(file: &mut File) -> String {
    let mut who = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut who);
    who.trim().to_string()
}

/// Who holds `_shards/*/_lock` now (the sharded runs that hold `_lock` shared).
fn shard_holders(warehouse_root: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(warehouse_root.join("_shards")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    dirs.sort();
    dirs.into_iter()
        .filter_map(|d| {
            let mut f = File::open(d.join(LOCK_FILE)).ok()?;
            // Free when a shared probe succeeds (released when `f` is closed).
            if try_flock(&f, libc::LOCK_SH) {
                return None;
            }
            Some(contents(&mut f))
        })
        .filter(|w| !w.is_empty())
        .collect()
}

impl WarehouseLock {
    /// Takes the lock exclusive or fails at once with `Error::Locked` naming the holder (a
    /// full run, or the sharded runs that hold it shared).
    pub fn acquire(warehouse_root: &Path, holder: &str) -> Result<WarehouseLock> {
        let (mut file, path) = open(warehouse_root)?;
        if !try_flock(&file, libc::LOCK_EX) {
            let shards = shard_holders(warehouse_root);
            let who = if shards.is_empty() {
                contents(&mut file)
            } else {
                format!("sharded run(s): {}", shards.join("; "))
            };
            return Err(Error::Locked {
                path,
                holder: if who.is_empty() {
                    "unknown holder".into()
                } else {
                    who
                },
            });
        }
        Self::write_holder(file, path, holder)
    }

    /// Takes the lock shared (with other shared holders; not with an exclusive one), or fails
    /// at once naming the exclusive holder. Shared holders do not write the file.
    pub fn acquire_shared(warehouse_root: &Path) -> Result<WarehouseLock> {
        let (mut file, path) = open(warehouse_root)?;
        if !try_flock(&file, libc::LOCK_SH) {
            let who = contents(&mut file);
            return Err(Error::Locked {
                path,
                holder: if who.is_empty() {
                    "unknown holder".into()
                } else {
                    who
                },
            });
        }
        Ok(WarehouseLock { _file: file, path })
    }

    /// The locks of a run: `_lock` exclusive for a full run; `_lock` shared and
    /// `_shards/i-of-n/_lock` exclusive (`shard_dir`) for a sharded one.
    pub fn acquire_run(
        warehouse_root: &Path,
        shard_dir: Option<&Path>,
        holder: &str,
    ) -> Result<Vec<WarehouseLock>> {
        match shard_dir {
            None => Ok(vec![Self::acquire(warehouse_root, holder)?]),
            Some(dir) => {
                let main = Self::acquire_shared(warehouse_root)?;
                let shard = Self::acquire(dir, holder)?;
                Ok(vec![main, shard])
            }
        }
    }

    fn write_holder(mut file: File, path: PathBuf, holder: &str) -> Result<WarehouseLock> {
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

    #[test]
    fn shards_share_the_main_lock_and_exclude_a_full_run() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let s1 = root.join("_shards/1-of-2");
        let s2 = root.join("_shards/2-of-2");
        let a = WarehouseLock::acquire_run(root, Some(s1.as_path()), "run --shard 1/2").unwrap();
        let b = WarehouseLock::acquire_run(root, Some(s2.as_path()), "run --shard 2/2").unwrap();
        // The same shard twice: refused.
        let err = WarehouseLock::acquire_run(root, Some(s1.as_path()), "again").unwrap_err();
        assert!(err.to_string().contains("run --shard 1/2"), "{err}");
        // A full run: refused, naming the shards.
        let err = WarehouseLock::acquire_run(root, None, "full").unwrap_err();
        assert!(matches!(err, Error::Locked { .. }));
        assert!(err.to_string().contains("run --shard 2/2"), "{err}");
        drop(a);
        drop(b);
        let full = WarehouseLock::acquire_run(root, None, "run --date D").unwrap();
        let err = WarehouseLock::acquire_run(root, Some(s1.as_path()), "shard").unwrap_err();
        assert!(err.to_string().contains("run --date D"), "{err}");
        drop(full);
        WarehouseLock::acquire_run(root, Some(s1.as_path()), "shard").unwrap();
    }
}

//! Project configuration: `panorama.toml` < environment < flags.
//!
//! ```toml
//! [project]
//! name = "demo"
//! [warehouse]
//! root = "warehouse"            # PANORAMA_WAREHOUSE overrides
//! [pii]
//! key_file = "keys/pii.key"     # PANORAMA_PII_KEY (the key itself) overrides
//! [run]
//! threads = 2                   # PANORAMA_THREADS or --threads override
//! [ingest]
//! dedupe_memory_mb = 512        # the de-duplication key index spills to disk beyond this
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

pub const CONFIG_FILE: &str = "panorama.toml";
pub const PII_KEY_ENV: &str = "PANORAMA_PII_KEY";
/// A shorter key can be guessed, and with it every token reversed by trying the values.
const MIN_PII_KEY_BYTES: usize = 16;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSection {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseSection {
    #[serde(default = "default_root")]
    pub root: String,
}

impl Default for WarehouseSection {
    fn default() -> Self {
        WarehouseSection {
            root: default_root(),
        }
    }
}

fn default_root() -> String {
    "warehouse".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiSection {
    /// A file holding the tokenization key; must lie outside the warehouse.
    #[serde(default)]
    pub key_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    #[serde(default)]
    pub threads: Option<usize>,
    /// Slots per named pool, e.g. `{ train = 1, io = 4 }`.
    #[serde(default)]
    pub pools: std::collections::BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    /// Memory for the de-duplication key index, in MB; beyond it the index spills its
    /// winners to disk in hash partitions, so a source of any size de-duplicates in bounded
    /// memory.
    #[serde(default = "default_dedupe_memory_mb")]
    pub dedupe_memory_mb: usize,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            dedupe_memory_mb: default_dedupe_memory_mb(),
        }
    }
}

fn default_dedupe_memory_mb() -> usize {
    512
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub project: ProjectSection,
    #[serde(default)]
    pub warehouse: WarehouseSection,
    #[serde(default)]
    pub pii: PiiSection,
    #[serde(default)]
    pub run: RunSection,
    #[serde(default)]
    pub ingest: IngestSection,
}

/// A project folder and its resolved configuration.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub config: ConfigFile,
    pub warehouse_root: PathBuf,
}

impl Project {
    /// Opens the project in `dir`: reads `panorama.toml` (required) and applies the environment.
    pub fn open(dir: &Path) -> Result<Project> {
        let file = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&file).map_err(|e| {
            Error::config(format!(
                "{}: cannot read the project config ({e}); run from a project folder or pass -C DIR",
                file.display()
            ))
        })?;
        let config: ConfigFile = toml::from_str(&text).map_err(|e| Error::Invalid {
            what: file.display().to_string(),
            problems: vec![e.to_string().trim().replace('\n', " ")],
        })?;
        if config.run.threads == Some(0) {
            return Err(Error::Invalid {
                what: file.display().to_string(),
                problems: vec![
                    "`run.threads` = 0: at least 1 thread (leave it unset for one per core)".into(),
                ],
            });
        }
        let root = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let wh = std::env::var("PANORAMA_WAREHOUSE")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| config.warehouse.root.clone());
        let warehouse_root = resolve(&root, &wh);
        Ok(Project {
            root,
            config,
            warehouse_root,
        })
    }

    /// A path from a config or job file, relative to the project root unless absolute.
    pub fn path(&self, p: &str) -> PathBuf {
        resolve(&self.root, p)
    }

    /// Worker threads: `--threads`, else `PANORAMA_THREADS`, else `[run] threads`, else the
    /// cores. A bad value is refused rather than replaced: a typo would silently change how
    /// hard the nightly loads the machine.
    pub fn threads(&self, flag: Option<usize>) -> Result<usize> {
        if let Some(n) = flag {
            return positive_threads(n, "--threads");
        }
        if let Ok(v) = std::env::var("PANORAMA_THREADS") {
            if !v.trim().is_empty() {
                return match v.trim().parse::<usize>() {
                    Ok(n) => positive_threads(n, "PANORAMA_THREADS"),
                    Err(_) => Err(Error::config(format!(
                        "PANORAMA_THREADS = {v:?}: a whole number of threads, at least 1"
                    ))),
                };
            }
        }
        if let Some(n) = self.config.run.threads {
            return positive_threads(n, "[run] threads");
        }
        Ok(std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2))
    }

    /// The PII tokenization key: `PANORAMA_PII_KEY`, else `[pii] key_file`.
    /// A key file inside the warehouse is refused: the warehouse is what analysts read.
    pub fn pii_key(&self) -> Result<Vec<u8>> {
        if let Ok(k) = std::env::var(PII_KEY_ENV) {
            let k = k.trim();
            if !k.is_empty() {
                if k.len() < MIN_PII_KEY_BYTES {
                    return Err(Error::config(format!(
                        "{PII_KEY_ENV} is too short ({} bytes; at least {MIN_PII_KEY_BYTES})",
                        k.len()
                    )));
                }
                return Ok(k.as_bytes().to_vec());
            }
        }
        let Some(kf) = &self.config.pii.key_file else {
            return Err(Error::config(format!(
                "a contract tokenizes personal data but no PII key is set: export {PII_KEY_ENV} \
                 or set [pii] key_file in {}",
                self.root.join(CONFIG_FILE).display()
            )));
        };
        let path = self.path(kf);
        let canon = path.canonicalize().unwrap_or_else(|_| path.clone());
        let wh = self
            .warehouse_root
            .canonicalize()
            .unwrap_or_else(|_| self.warehouse_root.clone());
        if canon.starts_with(&wh) {
            return Err(Error::config(format!(
                "PII key file {} lies inside the warehouse {}; keep it outside",
                path.display(),
                wh.display()
            )));
        }
        let key = std::fs::read(&path).map_err(|e| {
            Error::config(format!(
                "cannot read the PII key file {} ({e}); set [pii] key_file or {PII_KEY_ENV}",
                path.display()
            ))
        })?;
        let trimmed: Vec<u8> = key.trim_ascii().to_vec();
        if trimmed.len() < MIN_PII_KEY_BYTES {
            return Err(Error::config(format!(
                "PII key in {} is too short ({} bytes; at least {MIN_PII_KEY_BYTES})",
                path.display(),
                trimmed.len()
            )));
        }
        Ok(trimmed)
    }
}

fn positive_threads(n: usize, what: &str) -> Result<usize> {
    if n == 0 {
        return Err(Error::config(format!(
            "{what} = 0: at least 1 thread (leave it unset for one per core)"
        )));
    }
    Ok(n)
}

fn resolve(root: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

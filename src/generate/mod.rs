//! `panorama generate`: a deterministic SME-lending domain as a complete, runnable project.
//!
//! It writes `panorama.toml`, a PII key outside the warehouse, one source contract per source
//! under `jobs/ingest/`, the repository's SQL models and sql/check/train jobs
//! (`project_files.rs`; with every source only), and for each night the sources in their natural formats (registry
//! CSV and KYC workbook, GBK persons, BOM applications, NDJSON transactions, Parquet
//! repayments, fixed-width tax filings, telecom JSON, contacts CSV, court JSON array).
//!
//! A latent credit risk per enterprise drives the observable features and the default label;
//! fraud rings share devices, SIMs, an IP range and contacts. About 1% of rows carry planted
//! mess. The same flags give the same bytes: every value comes from a stream keyed by what it
//! describes (see `rng.rs`), never from the order of generation or the number of threads.
//! `docs/data.md` describes every source, its mess, the risk model and the label rule.

mod contracts;
mod model;
pub mod project_files;
mod rng;
pub mod scale;
mod sources;
mod text;
mod vocab;
mod world;

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use crate::error::{Context, Error, Result};

pub use model::{APP_WINDOW_DAYS, LABEL_MATURITY_MONTHS, TXN_WINDOW_DAYS};
pub use sources::TAX_LAYOUT;

/// The sources the generator can write; the name is the ingest job (and clean table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Enterprises,
    EnterpriseKyc,
    Persons,
    Applications,
    Transactions,
    Repayments,
    TaxFilings,
    Telecom,
    Contacts,
    CourtRecords,
}

impl SourceKind {
    pub const ALL: [SourceKind; 10] = [
        SourceKind::Enterprises,
        SourceKind::EnterpriseKyc,
        SourceKind::Persons,
        SourceKind::Applications,
        SourceKind::Transactions,
        SourceKind::Repayments,
        SourceKind::TaxFilings,
        SourceKind::Telecom,
        SourceKind::Contacts,
        SourceKind::CourtRecords,
    ];

    /// The ingest job and clean table name.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Enterprises => "enterprises",
            SourceKind::EnterpriseKyc => "enterprise_kyc",
            SourceKind::Persons => "persons",
            SourceKind::Applications => "applications",
            SourceKind::Transactions => "transactions",
            SourceKind::Repayments => "repayments",
            SourceKind::TaxFilings => "tax_filings",
            SourceKind::Telecom => "telecom",
            SourceKind::Contacts => "contacts",
            SourceKind::CourtRecords => "court_records",
        }
    }

    /// The file a night's folder holds for this source.
    pub fn file(self) -> &'static str {
        match self {
            SourceKind::Enterprises => "enterprises.csv",
            SourceKind::EnterpriseKyc => "enterprises.xlsx",
            SourceKind::Persons => "persons.csv",
            SourceKind::Applications => "applications.csv",
            SourceKind::Transactions => "transactions.ndjson",
            SourceKind::Repayments => "repayments.parquet",
            SourceKind::TaxFilings => "tax_filings.txt",
            SourceKind::Telecom => "telecom.json",
            SourceKind::Contacts => "contacts.csv",
            SourceKind::CourtRecords => "court_records.json",
        }
    }

    /// By job name or file name (`applications`, `court_records.json`, `enterprises.xlsx`).
    pub fn parse(s: &str) -> Option<SourceKind> {
        let s = s.trim();
        SourceKind::ALL
            .into_iter()
            .find(|k| k.name() == s || k.file() == s)
    }

    fn write(self, w: &world::World, night: NaiveDate, path: &Path) -> Result<sources::FileStat> {
        match self {
            SourceKind::Enterprises => sources::enterprises_csv(w, night, path),
            SourceKind::EnterpriseKyc => sources::enterprises_xlsx(w, night, path),
            SourceKind::Persons => sources::persons_csv(w, night, path),
            SourceKind::Applications => sources::applications_csv(w, night, path),
            SourceKind::Transactions => sources::transactions_ndjson(w, night, path),
            SourceKind::Repayments => sources::repayments_parquet(w, night, path),
            SourceKind::TaxFilings => sources::tax_filings_txt(w, night, path),
            SourceKind::Telecom => sources::telecom_json(w, night, path),
            SourceKind::Contacts => sources::contacts_csv(w, night, path),
            SourceKind::CourtRecords => sources::court_records_json(w, night, path),
        }
    }
}

/// Upper bound on `--enterprises`: identifiers are serials in fixed-width fields.
pub const MAX_ENTERPRISES: usize = 10_000_000;

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub out: PathBuf,
    pub enterprises: usize,
    pub seed: u64,
    /// The (last) night.
    pub date: NaiveDate,
    /// Consecutive nights ending at `date`, one folder each.
    pub days: u32,
    /// Folder of the sources inside `out` (`data`; the repository root uses `data-samples`).
    pub data_dir: String,
    /// Sources to write; empty means all.
    pub only: Vec<SourceKind>,
    /// Write into a folder that is not empty.
    pub force: bool,
    /// `[project] name`; default `panorama-demo`.
    pub project_name: Option<String>,
    /// Scale mode: split the project per branch so that a night is at least this many jobs
    /// (see `scale.rs`); `enterprises` is then ignored for `branch_enterprises`.
    pub scale_jobs: Option<usize>,
    /// Enterprises of each branch in scale mode.
    pub branch_enterprises: usize,
}

/// Upper bound on `--scale-jobs`.
pub const MAX_SCALE_JOBS: usize = 2_000_000;

impl GenerateOptions {
    pub fn new(out: impl Into<PathBuf>) -> GenerateOptions {
        GenerateOptions {
            out: out.into(),
            enterprises: 1000,
            seed: 42,
            date: NaiveDate::from_ymd_opt(2026, 11, 26).expect("valid date"),
            days: 1,
            data_dir: "data".into(),
            only: Vec::new(),
            force: false,
            project_name: None,
            scale_jobs: None,
            branch_enterprises: 20,
        }
    }

    /// The branches of scale mode (none otherwise).
    pub fn branches(&self) -> Vec<String> {
        match self.scale_jobs {
            None => Vec::new(),
            Some(n) => {
                let per = scale::jobs_per_branch(&self.data_dir);
                scale::branch_codes(n.div_ceil(per).max(1))
            }
        }
    }

    pub fn sources(&self) -> Vec<SourceKind> {
        if self.only.is_empty() {
            SourceKind::ALL.to_vec()
        } else {
            let mut v = self.only.clone();
            v.sort();
            v.dedup();
            v
        }
    }

    pub fn nights(&self) -> Vec<NaiveDate> {
        (0..self.days as i64)
            .rev()
            .map(|k| self.date - Duration::days(k))
            .collect()
    }

    /// The command that reproduces this output (written beside the data; `--out` is left
    /// as `DIR` so that the bytes do not depend on where the project was written).
    pub fn command(&self) -> String {
        let mut c = format!(
            "panorama generate --out DIR --enterprises {} --seed {} --date {} --days {} --data-dir {}",
            self.enterprises,
            self.seed,
            self.date.format("%Y-%m-%d"),
            self.days,
            self.data_dir
        );
        if !self.only.is_empty() {
            let names: Vec<&str> = self.sources().iter().map(|k| k.name()).collect();
            c.push_str(&format!(" --only {}", names.join(",")));
        }
        if let Some(n) = self.scale_jobs {
            c.push_str(&format!(
                " --scale-jobs {n} --branch-enterprises {}",
                self.branch_enterprises
            ));
        }
        c
    }

    fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.enterprises == 0 || self.enterprises > MAX_ENTERPRISES {
            problems.push(format!(
                "--enterprises {} must be between 1 and {MAX_ENTERPRISES}",
                self.enterprises
            ));
        }
        if let Some(n) = self.scale_jobs {
            if n == 0 || n > MAX_SCALE_JOBS {
                problems.push(format!(
                    "--scale-jobs {n} must be between 1 and {MAX_SCALE_JOBS}"
                ));
            }
            if !self.only.is_empty() {
                problems.push("--scale-jobs writes every source; drop --only".into());
            }
            if self.branch_enterprises == 0 || self.branch_enterprises > 100_000 {
                problems.push(format!(
                    "--branch-enterprises {} must be between 1 and 100000",
                    self.branch_enterprises
                ));
            }
        }
        if self.days == 0 || self.days > 366 {
            problems.push(format!("--days {} must be between 1 and 366", self.days));
        }
        let dd = Path::new(&self.data_dir);
        if self.data_dir.trim().is_empty()
            || dd.is_absolute()
            || dd
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            problems.push(format!(
                "--data-dir {:?} must be a relative folder name inside --out (e.g. data)",
                self.data_dir
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                what: "panorama generate flags".into(),
                problems,
            })
        }
    }
}

/// One file written.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratedFile {
    /// Relative to `out`, with `/` separators.
    pub path: String,
    pub source: Option<&'static str>,
    pub night: Option<String>,
    /// Data rows (lines, records or worksheet rows, planted duplicates and bad rows included).
    pub rows: Option<u64>,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GenerateSummary {
    pub out: String,
    pub enterprises: usize,
    /// Branches of scale mode (0 otherwise).
    #[serde(skip_serializing_if = "is_zero")]
    pub branches: usize,
    pub seed: u64,
    pub nights: Vec<String>,
    pub sources: Vec<&'static str>,
    pub files: Vec<GeneratedFile>,
    pub rows: u64,
    pub bytes: u64,
    pub elapsed_ms: u64,
}

/// Writes the project; see the module docs.
pub fn generate(opts: &GenerateOptions) -> Result<GenerateSummary> {
    generate_with(opts, &mut |_| {})
}

/// As `generate`, calling `on_file` as each file is finished (for progress lines).
pub fn generate_with(
    opts: &GenerateOptions,
    on_file: &mut dyn FnMut(&GeneratedFile),
) -> Result<GenerateSummary> {
    opts.validate()?;
    let started = Instant::now();
    let out = &opts.out;
    if out.exists() {
        if !out.is_dir() {
            return Err(Error::config(format!(
                "--out {} exists and is not a folder",
                out.display()
            )));
        }
        let non_empty = std::fs::read_dir(out)
            .ctx(|| format!("listing {}", out.display()))?
            .next()
            .is_some();
        if non_empty && !opts.force {
            return Err(Error::config(format!(
                "--out {} is not empty; pass --force to write into it (existing panorama.toml and keys are kept)",
                out.display()
            )));
        }
    }
    let kinds = opts.sources();
    let nights = opts.nights();
    let mut files: Vec<GeneratedFile> = Vec::new();
    let mut record = |f: GeneratedFile, files: &mut Vec<GeneratedFile>| {
        on_file(&f);
        files.push(f);
    };

    for dir in ["jobs/ingest", "sql", "reports", "keys"] {
        mkdir(&out.join(dir))?;
    }
    for f in project_files(opts, &kinds)? {
        record(f, &mut files);
    }

    if kinds.contains(&SourceKind::TaxFilings) {
        let rel = format!("{}/static/tax_filings.layout", opts.data_dir);
        let bytes = write_text(out, &rel, &sources::tax_layout_text())?;
        record(
            GeneratedFile {
                path: rel,
                source: Some(SourceKind::TaxFilings.name()),
                night: None,
                rows: Some(sources::TAX_LAYOUT.len() as u64),
                bytes,
            },
            &mut files,
        );
    }
    let branches = opts.branches();
    if branches.is_empty() {
        let world = world::World::build(opts.seed, opts.enterprises, nights.clone());
        for f in write_nights(opts, &world, &kinds, &nights, None)? {
            record(f, &mut files);
        }
    } else {
        let rel = format!("{}/branches.csv", opts.data_dir);
        let mut csv = String::from("branch\n");
        for b in &branches {
            csv.push_str(b);
            csv.push('\n');
        }
        let bytes = write_text(out, &rel, &csv)?;
        record(
            GeneratedFile {
                path: rel,
                source: None,
                night: None,
                rows: Some(branches.len() as u64),
                bytes,
            },
            &mut files,
        );
        // One small world per branch, several branches at once; files are reported in
        // branch order whatever the threads did.
        use rayon::prelude::*;
        for chunk in branches.chunks(64) {
            let done: Vec<Result<Vec<GeneratedFile>>> = chunk
                .par_iter()
                .map(|b| {
                    let i: usize = b.parse().expect("numeric branch codes");
                    let world = world::World::build(
                        scale::branch_seed(opts.seed, i),
                        opts.branch_enterprises,
                        nights.clone(),
                    );
                    write_nights(opts, &world, &kinds, &nights, Some(b))
                })
                .collect();
            for r in done {
                for f in r? {
                    record(f, &mut files);
                }
            }
        }
    }
    let readme = format!("{}/README.md", opts.data_dir);
    let bytes = write_text(out, &readme, &data_readme(opts, &kinds))?;
    record(
        GeneratedFile {
            path: readme,
            source: None,
            night: None,
            rows: None,
            bytes,
        },
        &mut files,
    );

    Ok(GenerateSummary {
        out: out.display().to_string(),
        enterprises: if branches.is_empty() {
            opts.enterprises
        } else {
            opts.branch_enterprises * branches.len()
        },
        branches: branches.len(),
        seed: opts.seed,
        nights: nights
            .iter()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect(),
        sources: kinds.iter().map(|k| k.name()).collect(),
        rows: files
            .iter()
            .filter(|f| f.night.is_some())
            .filter_map(|f| f.rows)
            .sum(),
        bytes: files.iter().map(|f| f.bytes).sum(),
        files,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The sources of every night for one world: `<data>/<night>/[<branch>/]<file>`.
fn write_nights(
    opts: &GenerateOptions,
    world: &world::World,
    kinds: &[SourceKind],
    nights: &[NaiveDate],
    branch: Option<&str>,
) -> Result<Vec<GeneratedFile>> {
    let mut files = Vec::new();
    for night in nights {
        let d = night.format("%Y-%m-%d").to_string();
        let rel_dir = match branch {
            None => format!("{}/{d}", opts.data_dir),
            Some(b) => format!("{}/{d}/{b}", opts.data_dir),
        };
        let dir = opts.out.join(&rel_dir);
        mkdir(&dir)?;
        for k in kinds {
            let stat = k.write(world, *night, &dir.join(k.file()))?;
            files.push(GeneratedFile {
                path: format!("{rel_dir}/{}", k.file()),
                source: Some(k.name()),
                night: Some(d.clone()),
                rows: Some(stat.rows),
                bytes: stat.bytes,
            });
        }
    }
    Ok(files)
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).ctx(|| format!("creating {}", p.display()))
}

fn write_text(out: &Path, rel: &str, text: &str) -> Result<u64> {
    let path = out.join(rel);
    if let Some(parent) = path.parent() {
        mkdir(parent)?;
    }
    std::fs::write(&path, text).ctx(|| format!("writing {}", path.display()))?;
    Ok(text.len() as u64)
}

/// The PII key: 32 bytes from the seed, as 64 hex characters.
fn pii_key(seed: u64) -> String {
    let mut r = rng::Rng::keyed(seed, rng::Stream::Key, 0, 0);
    let mut s = String::with_capacity(65);
    for _ in 0..4 {
        s.push_str(&format!("{:016x}", r.next_u64()));
    }
    s.push('\n');
    s
}

fn project_files(opts: &GenerateOptions, kinds: &[SourceKind]) -> Result<Vec<GeneratedFile>> {
    let out = &opts.out;
    let mut files = Vec::new();
    let plain = |path: &str, bytes: u64| GeneratedFile {
        path: path.to_string(),
        source: None,
        night: None,
        rows: None,
        bytes,
    };
    // An existing config or key is kept: replacing the key would change every token.
    if !out.join(crate::config::CONFIG_FILE).exists() {
        let name = opts
            .project_name
            .clone()
            .unwrap_or_else(|| "panorama-demo".into());
        let toml = format!(
            "# Generated by: {}\n# The sources are described in docs/data.md of the panorama repository.\n\n\
             [project]\nname = {}\n\n[warehouse]\nroot = \"warehouse\"\n\n\
             [pii]\n# The tokenization key stays outside the warehouse; PANORAMA_PII_KEY overrides it.\n\
             key_file = \"keys/pii.key\"\n",
            opts.command(),
            toml::Value::String(name)
        );
        let bytes = write_text(out, crate::config::CONFIG_FILE, &toml)?;
        files.push(plain(crate::config::CONFIG_FILE, bytes));
    }
    if !out.join("keys/pii.key").exists() {
        let bytes = write_text(out, "keys/pii.key", &pii_key(opts.seed))?;
        files.push(plain("keys/pii.key", bytes));
    }
    let gi = out.join(".gitignore");
    let mut text = std::fs::read_to_string(&gi).unwrap_or_default();
    let before = text.clone();
    for line in ["warehouse/", "reports/"] {
        if !text.lines().any(|l| l.trim() == line) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(line);
            text.push('\n');
        }
    }
    if text != before || !gi.exists() {
        let bytes = write_text(out, ".gitignore", &text)?;
        files.push(plain(".gitignore", bytes));
    }
    let scaled = opts.scale_jobs.is_some();
    for k in kinds {
        let rel = format!("jobs/ingest/{}.toml", k.name());
        let text = if scaled {
            scale::branch_contract(*k, &opts.data_dir)
        } else {
            contracts::contract_toml(*k, &opts.data_dir)
        };
        let bytes = write_text(out, &rel, &text)?;
        files.push(GeneratedFile {
            path: rel,
            source: Some(k.name()),
            night: None,
            rows: None,
            bytes,
        });
    }
    // The SQL models and the jobs that check, build and train on the sources: they read every
    // source, so they come only with the full set (`--only` writes sources and contracts).
    if scaled {
        for (rel, text) in scale::branch_project_files(&opts.data_dir) {
            let bytes = write_text(out, rel, &text)?;
            files.push(plain(rel, bytes));
        }
    } else if opts.only.is_empty() {
        for (rel, text) in project_files::PROJECT_FILES {
            let bytes = write_text(out, rel, text)?;
            files.push(plain(rel, bytes));
        }
    }
    Ok(files)
}

fn data_readme(opts: &GenerateOptions, kinds: &[SourceKind]) -> String {
    let mut s = format!(
        "# Generated sources\n\nWritten by `panorama generate` (deterministic: the same command gives the same bytes):\n\n\
         ```\n{}\n```\n\nOne folder per night (`YYYY-MM-DD/`), each a complete extract; `static/` holds reference \
         files that do not change per night. Every source, its planted mess, the latent risk, the label rule and the \
         fraud rings are described in `docs/data.md` of the panorama repository.\n\n| source | file | contract |\n|---|---|---|\n",
        opts.command()
    );
    if opts.scale_jobs.is_some() {
        s = s.replace(
            "One folder per night (`YYYY-MM-DD/`)",
            "Scale mode: one folder per night (`YYYY-MM-DD/`) and in it one folder per branch of \
             `branches.csv` (a small world of its own; no reject threshold, the files are a few rows each)",
        );
    }
    for k in kinds {
        s.push_str(&format!(
            "| {} | `{}` | `jobs/ingest/{}.toml` |\n",
            k.name(),
            k.file(),
            k.name()
        ));
    }
    s
}

#[cfg(test)]
mod tests;

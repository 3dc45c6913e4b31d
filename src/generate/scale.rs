//! Scale mode (`panorama generate --scale-jobs N`): the demo project split per branch, so that
//! one night is at least N real jobs, each small enough for one machine to run them all.
//!
//! Every branch is a small world of its own (`--branch-enterprises` enterprises, a seed of its
//! own) whose sources go to `<data>/<night>/<branch>/`; `<data>/branches.csv` lists the branches.
//! The job files are the demo project's as *families* over `[matrix] branch` (read from that
//! CSV): per branch, one ingest job per source (`clean.<table>/dt=D/branch=B/`), the checks of
//! every clean table and feature table, and every SQL feature model
//! (`feature.<model>/dt=D/branch=B/`, reading its branch's partitions only). The training jobs
//! are left out: a model per branch of a few dozen enterprises means nothing.
//!
//! Identifiers are unique within a branch, not across branches (each branch's world numbers
//! its enterprises from zero); every job of the project reads its own branch only.

use super::project_files::PROJECT_FILES;
use super::{contracts, SourceKind};

/// The folders of `PROJECT_FILES` whose jobs run per branch (besides the ingest contracts).
pub const BRANCH_JOB_DIRS: &[&str] = &["jobs/sql/", "jobs/checks/"];

/// The matrix line every branch family carries.
fn matrix_line(data_dir: &str) -> String {
    format!("branch = {{ csv = \"{data_dir}/branches.csv\", column = \"branch\" }}\n")
}

/// Adds `branch` to a job file's `[matrix]` (creating the table when there is none).
pub fn with_branch_matrix(text: &str, data_dir: &str) -> String {
    let line = matrix_line(data_dir);
    if let Some(i) = text.find("\n[matrix]\n") {
        let at = i + "\n[matrix]\n".len();
        format!("{}{line}{}", &text[..at], &text[at..])
    } else {
        let mut s = text.to_string();
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str("\n# One job per branch (scale mode).\n[matrix]\n");
        s.push_str(&line);
        s
    }
}

/// The reject threshold of a branch's sources: none. A branch's file is a few rows to a few
/// dozen (court records: often one or two), so a single planted bad row or duplicate is a
/// large share of it; every reject is still kept with its reason and counted.
pub const BRANCH_MAX_REJECT_RATE: &str = "1.0";

/// A source's contract as a family over the branches: its files under `<night>/<branch>/`.
pub fn branch_contract(kind: SourceKind, data_dir: &str) -> String {
    let text = contracts::contract_toml(kind, data_dir).replace(
        &format!("\"{data_dir}/{{date}}/"),
        &format!("\"{data_dir}/{{date}}/{{branch}}/"),
    );
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("max_reject_rate = ") {
                format!(
                    "max_reject_rate = {BRANCH_MAX_REJECT_RATE}   # scale mode: a few rows per branch file\n"
                )
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    with_branch_matrix(&text, data_dir)
}

/// The hand-written project files of a scale project: the SQL models unchanged, the sql and
/// check jobs as branch families; `(path, text)`.
pub fn branch_project_files(data_dir: &str) -> Vec<(&'static str, String)> {
    PROJECT_FILES
        .iter()
        .filter_map(|(rel, text)| {
            if rel.starts_with("sql/") {
                Some((*rel, text.to_string()))
            } else if BRANCH_JOB_DIRS.iter().any(|d| rel.starts_with(d)) {
                Some((*rel, with_branch_matrix(text, data_dir)))
            } else {
                None
            }
        })
        .collect()
}

/// Jobs per branch: one ingest per source, and per branch-family job file the product of its
/// other matrix lists (e.g. the feature checks over `table = [...]`).
pub fn jobs_per_branch(data_dir: &str) -> usize {
    let mut n = SourceKind::ALL.len();
    for (rel, text) in branch_project_files(data_dir) {
        if !rel.starts_with("jobs/") {
            continue;
        }
        let t: toml::Table = toml::from_str(&text).expect("embedded job files parse");
        let per: usize = t
            .get("matrix")
            .and_then(|m| m.as_table())
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.as_str() != "branch")
                    .map(|(_, v)| v.as_array().map_or(1, |a| a.len()))
                    .product()
            })
            .unwrap_or(1);
        n += per;
    }
    n
}

/// Branch codes: zero-padded serials (`0001`, `0002`, ...), at least four digits.
pub fn branch_codes(branches: usize) -> Vec<String> {
    let width = branches.to_string().len().max(4);
    (1..=branches).map(|b| format!("{b:0width$}")).collect()
}

/// The seed of a branch's world.
pub fn branch_seed(seed: u64, branch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (branch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_is_added_once_and_parses() {
        for (rel, text) in branch_project_files("data") {
            if rel.ends_with(".toml") {
                let t: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
                assert!(t["matrix"].get("branch").is_some(), "{rel}");
            }
        }
        for k in SourceKind::ALL {
            let text = branch_contract(k, "data");
            let t: toml::Table = toml::from_str(&text).unwrap();
            let path = t["source"]["path"].as_str().unwrap();
            assert!(path.starts_with("data/{date}/{branch}/"), "{path}");
            assert!(t["matrix"].get("branch").is_some());
            assert_eq!(t["rules"]["max_reject_rate"].as_float(), Some(1.0));
        }
        assert!(jobs_per_branch("data") > SourceKind::ALL.len());
        assert_eq!(branch_codes(3), vec!["0001", "0002", "0003"]);
        assert_eq!(branch_codes(12345)[0], "00001");
    }
}

//! The hand-written files of a project — the SQL feature models (`sql/`) and the job files of
//! every kind but `ingest` (`jobs/sql`, `jobs/checks`, `jobs/models`, ...) — embedded from the
//! repository root so that a generated project builds features, checks them and trains models
//! exactly like the repository's demo project. The generator writes the ingest contracts itself
//! (`contracts.rs`).
//!
//! To add a file (e.g. a new `jobs/<kind>/` folder): add one line to `PROJECT_FILES`. The test
//! `project_files_match_the_repository` fails when a file of the repository's `sql/` or `jobs/`
//! (except `jobs/ingest`) is missing here or differs.

/// `(path relative to the project, contents)`, sorted by path.
pub const PROJECT_FILES: &[(&str, &str)] = &[
    (
        "jobs/checks/applications.toml",
        include_str!("../../jobs/checks/applications.toml"),
    ),
    (
        "jobs/checks/court_records.toml",
        include_str!("../../jobs/checks/court_records.toml"),
    ),
    (
        "jobs/checks/enterprises.toml",
        include_str!("../../jobs/checks/enterprises.toml"),
    ),
    (
        "jobs/checks/features.toml",
        include_str!("../../jobs/checks/features.toml"),
    ),
    (
        "jobs/checks/persons.toml",
        include_str!("../../jobs/checks/persons.toml"),
    ),
    (
        "jobs/checks/repayments.toml",
        include_str!("../../jobs/checks/repayments.toml"),
    ),
    (
        "jobs/checks/tax_filings.toml",
        include_str!("../../jobs/checks/tax_filings.toml"),
    ),
    (
        "jobs/checks/telecom.toml",
        include_str!("../../jobs/checks/telecom.toml"),
    ),
    (
        "jobs/checks/transactions.toml",
        include_str!("../../jobs/checks/transactions.toml"),
    ),
    (
        "jobs/decide/pre_credit.toml",
        include_str!("../../jobs/decide/pre_credit.toml"),
    ),
    (
        "jobs/models/anomaly_dbscan.toml",
        include_str!("../../jobs/models/anomaly_dbscan.toml"),
    ),
    (
        "jobs/models/credit_limit.toml",
        include_str!("../../jobs/models/credit_limit.toml"),
    ),
    (
        "jobs/models/features_ica.toml",
        include_str!("../../jobs/models/features_ica.toml"),
    ),
    (
        "jobs/models/features_pca.toml",
        include_str!("../../jobs/models/features_pca.toml"),
    ),
    (
        "jobs/models/pre_credit_gbdt.toml",
        include_str!("../../jobs/models/pre_credit_gbdt.toml"),
    ),
    (
        "jobs/models/pre_credit_scorecard.toml",
        include_str!("../../jobs/models/pre_credit_scorecard.toml"),
    ),
    (
        "jobs/models/segments_kmeans.toml",
        include_str!("../../jobs/models/segments_kmeans.toml"),
    ),
    (
        "jobs/score/pre_credit.toml",
        include_str!("../../jobs/score/pre_credit.toml"),
    ),
    (
        "jobs/sql/application_features.toml",
        include_str!("../../jobs/sql/application_features.toml"),
    ),
    (
        "jobs/sql/court_features.toml",
        include_str!("../../jobs/sql/court_features.toml"),
    ),
    (
        "jobs/sql/device_features.toml",
        include_str!("../../jobs/sql/device_features.toml"),
    ),
    (
        "jobs/sql/repayment_features.toml",
        include_str!("../../jobs/sql/repayment_features.toml"),
    ),
    (
        "jobs/sql/tax_features.toml",
        include_str!("../../jobs/sql/tax_features.toml"),
    ),
    (
        "jobs/sql/telecom_features.toml",
        include_str!("../../jobs/sql/telecom_features.toml"),
    ),
    (
        "jobs/sql/txn_features.toml",
        include_str!("../../jobs/sql/txn_features.toml"),
    ),
    (
        "sql/application_features.sql",
        include_str!("../../sql/application_features.sql"),
    ),
    (
        "sql/court_features.sql",
        include_str!("../../sql/court_features.sql"),
    ),
    (
        "sql/device_features.sql",
        include_str!("../../sql/device_features.sql"),
    ),
    (
        "sql/repayment_features.sql",
        include_str!("../../sql/repayment_features.sql"),
    ),
    (
        "sql/tax_features.sql",
        include_str!("../../sql/tax_features.sql"),
    ),
    (
        "sql/telecom_features.sql",
        include_str!("../../sql/telecom_features.sql"),
    ),
    (
        "sql/txn_features.sql",
        include_str!("../../sql/txn_features.sql"),
    ),
];

/// The folders of the repository whose files are all in `PROJECT_FILES` (besides `jobs/`,
/// whose `ingest/` sub-folder the generator writes).
pub const EMBEDDED_DIRS: &[&str] = &["sql", "jobs"];

/// The sub-folder of `jobs/` that the generator writes itself.
pub const GENERATED_DIR: &str = "jobs/ingest";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn walk(root: &Path, rel: &str, out: &mut BTreeMap<String, String>) {
        let dir = root.join(rel);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in rd {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let child = format!("{rel}/{name}");
            if child == GENERATED_DIR {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                walk(root, &child, out);
            } else {
                out.insert(
                    child.clone(),
                    std::fs::read_to_string(root.join(&child)).unwrap(),
                );
            }
        }
    }

    #[test]
    fn project_files_match_the_repository() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut repo = BTreeMap::new();
        for d in EMBEDDED_DIRS {
            walk(root, d, &mut repo);
        }
        let table: BTreeMap<String, String> = PROJECT_FILES
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        assert_eq!(table.len(), PROJECT_FILES.len(), "a path is listed twice");
        let missing: Vec<&String> = repo.keys().filter(|p| !table.contains_key(*p)).collect();
        let extra: Vec<&String> = table.keys().filter(|p| !repo.contains_key(*p)).collect();
        let differ: Vec<&String> = repo
            .iter()
            .filter(|(p, t)| table.get(*p).is_some_and(|e| e != *t))
            .map(|(p, _)| p)
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty() && differ.is_empty(),
            "src/generate/project_files.rs is out of date with the repository: \
             missing {missing:?}, no longer in the repository {extra:?}, different {differ:?}"
        );
        let mut sorted: Vec<&str> = PROJECT_FILES.iter().map(|(p, _)| *p).collect();
        sorted.sort();
        assert_eq!(
            sorted,
            PROJECT_FILES.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            "keep PROJECT_FILES sorted by path"
        );
    }
}

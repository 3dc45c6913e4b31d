//! Adapters that plug concrete job kinds into the schedule engine. Each later issue adds its
//! kind here (`sql`, `check`, `train`, `score`, `report`) with one `register` line.

pub mod check;
pub mod decide;
pub mod ingest;
pub mod noop;
pub mod score;
pub mod sql;
pub mod train;

use crate::schedule::Registry;

/// Every job kind the binary knows.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(noop::NoopKind);
    r.register(ingest::IngestKind);
    r.register(sql::SqlKind);
    r.register(check::CheckKind);
    r.register(train::TrainKind);
    r.register(decide::DecideKind);
    r.register(score::ScoreKind);
    r
}

/// "unknown key" problems for the keys of a job file that neither the engine nor the kind knows.
pub(crate) fn unknown_keys(file: &crate::schedule::JobFile<'_>, own: &[&str]) -> Vec<String> {
    file.own_keys()
        .filter(|(k, _)| !own.contains(&k.as_str()))
        .map(|(k, _)| {
            format!(
                "`{k}`: unknown key for kind {:?} (its keys: {}; common: {})",
                file.table
                    .get("kind")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?"),
                own.join(", "),
                crate::schedule::COMMON_KEYS.join(", ")
            )
        })
        .collect()
}

/// The kind's own keys of a job file, deserialised into its config type; an unknown key or a
/// wrong type is one problem naming the key.
pub(crate) fn own_config<T: serde::de::DeserializeOwned>(
    own: impl Iterator<Item = (String, toml::Value)>,
) -> Result<T, Vec<String>> {
    let table: toml::Table = own.collect();
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| vec![e.message().to_string()])
}

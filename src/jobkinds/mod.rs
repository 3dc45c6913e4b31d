//! Adapters that plug concrete job kinds into the schedule engine: `noop`, `ingest`, `sql`,
//! `check`, `train`, `decide` and `score`, each with one `register` line below.

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

/// The kind's own keys of a job file, deserialised into its config type. Every unknown key and
/// every value of a wrong type is one problem naming its key (`monitor.colour`); each is left
/// out (its default applies) and the rest read on, so that the config still comes back when
/// the rest is valid and the kind can check its values too. None when a required key is
/// missing or bad.
pub(crate) fn own_config_lenient<T: serde::de::DeserializeOwned>(
    own: impl Iterator<Item = (String, toml::Value)>,
) -> (Option<T>, Vec<String>) {
    let mut table: toml::Table = own.collect();
    let mut problems = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    // Each round reports and removes one bad key; a file has few keys.
    for _ in 0..64 {
        // Through the TOML text, so that the error's span leads back to the key.
        let text = match toml::to_string(&table) {
            Ok(t) => t,
            Err(e) => {
                problems.push(e.to_string());
                return (None, problems);
            }
        };
        let e = match toml::from_str::<T>(&text) {
            Ok(t) => return (Some(t), problems),
            Err(e) => e,
        };
        let message = humane_serde_message(e.message());
        // An empty span is the document itself (a missing top-level key).
        let path = e.span().and_then(|s| {
            if s.is_empty() {
                Some(String::new())
            } else {
                key_path_at(&text, s.start)
            }
        });
        if let Some(f) = e.message().strip_prefix("missing field `") {
            let f = f.trim_end_matches('`');
            let parent = path.unwrap_or_default();
            let full = if parent.is_empty() {
                f.to_string()
            } else {
                format!("{parent}.{f}")
            };
            // A required key left out above has its problem reported already.
            if !removed.contains(&full) {
                problems.push(format!("`{full}`: required"));
            }
            // Without it its table cannot be read: leave the table out too (its default
            // applies) and go on; at the top level nothing can be read.
            if !parent.is_empty() && remove_path(&mut table, &parent) {
                removed.push(parent);
                continue;
            }
            return (None, problems);
        }
        match path {
            Some(p) if !p.is_empty() && remove_path(&mut table, &p) => {
                problems.push(format!("`{p}`: {message}"));
                removed.push(p);
            }
            _ => {
                problems.push(message);
                return (None, problems);
            }
        }
    }
    (None, problems)
}

/// serde's wording for the people who write job files.
fn humane_serde_message(m: &str) -> String {
    let m = m.trim();
    if let Some(rest) = m.strip_prefix("unknown field `") {
        let expected = rest.split_once(", ").map(|(_, e)| e).unwrap_or("");
        return format!(
            "unknown key{}",
            if expected.is_empty() {
                String::new()
            } else {
                format!(" ({expected})")
            }
        );
    }
    m.replace("expected u64", "expected a whole number >= 0")
        .replace("expected u32", "expected a whole number >= 0")
        .replace("expected usize", "expected a whole number >= 0")
        .replace("expected f64", "expected a number")
}

/// The dotted key path (`limit.caps[1].name`) of the key or value at byte `at` of a TOML
/// document as `toml::to_string` writes it: `[a.b]` and `[[a.b]]` headers, one `key = value`
/// per line.
fn key_path_at(text: &str, at: usize) -> Option<String> {
    let mut header = String::new();
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let end = offset + line.len();
        let l = line.trim();
        let in_line = at < end;
        if let Some(h) = l.strip_prefix("[[").and_then(|h| h.strip_suffix("]]")) {
            let h = unquote_path(h);
            let n = counts.entry(h.clone()).and_modify(|n| *n += 1).or_insert(0);
            header = format!("{h}[{n}]");
        } else if let Some(h) = l.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            header = unquote_path(h);
            // A sub-table of an array of tables belongs to its last element.
            for (a, n) in &counts {
                if let Some(rest) = header.strip_prefix(&format!("{a}.")) {
                    header = format!("{a}[{n}].{rest}");
                }
            }
        } else if in_line {
            let key = l.split_once('=').map(|(k, _)| unquote_path(k.trim()))?;
            return Some(if header.is_empty() {
                key
            } else {
                format!("{header}.{key}")
            });
        }
        if in_line {
            return Some(header);
        }
        offset = end;
    }
    Some(header)
}

fn unquote_path(s: &str) -> String {
    s.split('.')
        .map(|p| p.trim().trim_matches('"').to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// Removes the key at a dotted path (with `[i]` for arrays of tables); whether it was there.
fn remove_path(table: &mut toml::Table, path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut t = table;
    for p in parts {
        let (name, index) = match p.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (p, None),
        };
        let next = match (t.get_mut(name), index) {
            (Some(toml::Value::Table(x)), None) => x,
            (Some(toml::Value::Array(a)), Some(i)) => match a.get_mut(i) {
                Some(toml::Value::Table(x)) => x,
                _ => return false,
            },
            _ => return false,
        };
        t = next;
    }
    // A bad element of an array of tables (`fraud[1]`): the whole array goes.
    let name = last.split_once('[').map_or(last, |(n, _)| n);
    t.remove(name).is_some()
}

/// Runs the checks a job declares for the table it just wrote (a contract's or a model's
/// `checks`, when no `check` job checks that table): appends their summary to `message`;
/// a failing `error` check fails the job; returns the warnings.
pub(crate) fn run_own_checks(
    ctx: &crate::schedule::JobCtx<'_>,
    job: &crate::schedule::JobRef<'_>,
    table: &str,
    checks: &[crate::quality::Check],
    message: &mut String,
) -> Result<Vec<String>, crate::schedule::JobError> {
    let partition = vars_partition(job.vars);
    if checks.is_empty() {
        // Checks this job ran before and no longer declares: their results would stay in the
        // quality table and report as if they were current.
        let wh = crate::warehouse::Warehouse::new(&ctx.project.warehouse_root);
        let key = own_checks_key(ctx.date, table, job.vars);
        let results = crate::quality::RESULTS_TABLE;
        if wh
            .read_success(crate::warehouse::Layer::Quality, results, &key)
            .is_some_and(|s| s.job == job.name)
        {
            wh.remove_partition(crate::warehouse::Layer::Quality, results, &key, ctx.run_id)
                .map_err(|e| sql::job_error(&e))?;
            if partition.is_empty() {
                crate::quality::report::write(ctx.project, ctx.date, &[])
                    .map_err(|e| sql::job_error(&e))?;
            }
        }
        return Ok(Vec::new());
    }
    let o = crate::quality::run_table(
        ctx.project,
        table,
        checks,
        ctx.date,
        job.name,
        ctx.run_id,
        &partition,
    )
    .map_err(|e| sql::job_error(&e))?;
    let failed: Vec<String> = o.failure_lines();
    message.push_str(&format!(
        "; {} checks: {} passed, {} warning(s), {} failed",
        o.results.len(),
        o.results.iter().filter(|r| !r.failed()).count(),
        o.warnings(),
        failed.len()
    ));
    if !failed.is_empty() {
        return Err(crate::schedule::JobError::permanent(format!(
            "{message}: {}",
            failed.join("; ")
        )));
    }
    Ok(o.warning_lines())
}

/// The `_SUCCESS` of a job instance's partition of `layer.table` for `date`.
pub(crate) fn instance_success(
    project: &crate::config::Project,
    layer: crate::warehouse::Layer,
    table: &str,
    job: &crate::schedule::JobRef<'_>,
    date: chrono::NaiveDate,
) -> Option<crate::warehouse::Success> {
    crate::warehouse::Warehouse::new(&project.warehouse_root).read_success(
        layer,
        table,
        &crate::warehouse::PartitionKey::instance(date, job.vars),
    )
}

/// Why a partition no longer holds what the ledger's run `last_run` committed: another run
/// (`panorama ingest` by hand) wrote it again since, so what was built from it is stale.
pub(crate) fn written_again(s: &crate::warehouse::Success, last_run: &str) -> Option<String> {
    (s.run_id != last_run).then(|| {
        format!(
            "its partition was written again (run {}) after run {last_run}",
            s.run_id
        )
    })
}

/// Where the results of the checks a job runs itself on `table` go, for a job instance.
pub(crate) fn own_checks_key(
    date: chrono::NaiveDate,
    table: &str,
    vars: &crate::schedule::Vars,
) -> crate::warehouse::PartitionKey {
    crate::quality::results_key_in(date, table, &vars_partition(vars))
}

/// Whether the checks a job runs itself passed in the run that committed `run_id` (a job whose
/// table is committed is not done until then: a run killed in between runs it again).
pub(crate) fn own_checks_passed(
    wh: &crate::warehouse::Warehouse,
    date: chrono::NaiveDate,
    table: &str,
    vars: &crate::schedule::Vars,
    job: &str,
    run_id: &str,
) -> bool {
    let key = own_checks_key(date, table, vars);
    let Some(r) = wh.read_success(
        crate::warehouse::Layer::Quality,
        crate::quality::RESULTS_TABLE,
        &key,
    ) else {
        return false;
    };
    let blocking = r
        .extra
        .get("blocking")
        .and_then(|v| v.as_u64())
        .unwrap_or(1);
    r.job == job && r.run_id == run_id && blocking == 0
}

/// A job instance's matrix values as partition keys.
fn vars_partition(vars: &crate::schedule::Vars) -> Vec<(String, String)> {
    vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The check results partition of `table` for a job instance: written by a job that runs its
/// own checks, read by the models whose input it is.
pub(crate) fn check_results_ref(
    table: &str,
    vars: &crate::schedule::Vars,
) -> crate::schedule::TableRef {
    let mut partition = vec![("table".to_string(), table.to_string())];
    partition.extend(vars_partition(vars));
    crate::schedule::TableRef {
        layer: crate::warehouse::Layer::Quality.as_str().to_string(),
        table: crate::quality::RESULTS_TABLE.to_string(),
        partition,
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cap {
        name: String,
        ceiling: f64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limit {
        #[serde(default)]
        min: u64,
        #[serde(default)]
        caps: Vec<Cap>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        input: String,
        #[serde(default)]
        limit: Option<Limit>,
    }

    fn problems(text: &str) -> (bool, Vec<String>) {
        let t: toml::Table = toml::from_str(text).unwrap();
        let (cfg, p) = super::own_config_lenient::<Cfg>(t.into_iter());
        (cfg.is_some(), p)
    }

    #[test]
    fn every_bad_key_is_named_with_its_table() {
        let (ok, p) = problems(
            "input = \"x\"\ncolour = 1\n[limit]\nmin = -3\nshade = 2\n[[limit.caps]]\nname = \"a\"\nceiling = 1.0\n[[limit.caps]]\nname = \"b\"\nceiling = \"high\"\n",
        );
        assert!(ok, "{p:?}");
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(
            p.iter().any(|m| m.starts_with("`colour`: unknown key")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("`limit.shade`: unknown key")),
            "{p:?}"
        );
        assert!(
            p.contains(
                &"`limit.min`: invalid value: integer `-3`, expected a whole number >= 0"
                    .to_string()
            ),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("`limit.caps[1].ceiling`: invalid type")),
            "{p:?}"
        );
        // A required key missing: no config, one problem naming it.
        let (ok, p) = problems("[limit]\nmin = 1\n");
        assert!(!ok);
        assert_eq!(p, vec!["`input`: required".to_string()]);
        assert_eq!(problems("input = \"x\"\n"), (true, Vec::new()));
    }
}

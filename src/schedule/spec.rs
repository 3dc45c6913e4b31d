//! Job files: discovery under `jobs/`, the common keys, matrix expansion into named instances.
//!
//! ```toml
//! kind = "ingest"                       # required; a registered kind
//! name = "transactions"                 # default: the file name without .toml
//! after = ["ingest.customers", "ingest.branch_*"]   # names, family names or globs
//! tags = ["nightly", "core"]
//! pool = "io"                           # a pool of [run] pools in panorama.toml
//! timeout = "30m"                       # "500ms", "45s", "30m", "2h" or seconds
//! retries = 2                           # transient failures only
//! retry_delay = "5s"                    # first backoff; doubles, with jitter
//! [matrix]                              # a family: one job per combination
//! branch = ["0101", "0102"]
//! product = { csv = "data-samples/products.csv", column = "code" }
//! ```
//! Instances are named `<kind>.<name>[branch=0101,product=x]` (keys sorted); `{branch}` in
//! `after` is replaced by the instance's value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rayon::prelude::*;

use super::kind::{is_ident, JobFile, PreparedJob, Registry, TableRef, Vars, COMMON_KEYS};
use crate::config::Project;

pub const JOBS_DIR: &str = "jobs";

/// What all instances of one job file share.
pub struct Family {
    pub kind: String,
    /// Name without the kind.
    pub name: String,
    /// `<kind>.<name>`.
    pub id: String,
    pub file: PathBuf,
    /// File path relative to the project root.
    pub rel: String,
    pub tags: Vec<String>,
    pub pool: Option<String>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub retry_delay: Duration,
    pub description: Option<String>,
    pub matrix_keys: Vec<String>,
    pub prepared: Arc<dyn PreparedJob>,
}

impl std::fmt::Debug for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("id", &self.id)
            .field("rel", &self.rel)
            .finish_non_exhaustive()
    }
}

/// One job: a single job file, or one instance of a family.
#[derive(Debug)]
pub struct Job {
    pub name: String,
    pub family: Arc<Family>,
    pub vars: Vars,
    /// `after` patterns with the instance's matrix values substituted.
    pub after: Vec<String>,
    pub reads: Vec<TableRef>,
    pub writes: Vec<TableRef>,
}

const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Reads every job file of the project and expands the families; all problems at once.
pub fn load_jobs(project: &Project, registry: &Registry) -> Result<Vec<Job>, Vec<String>> {
    let (jobs, problems) = load_jobs_partial(project, registry);
    if problems.is_empty() {
        Ok(jobs)
    } else {
        Err(problems)
    }
}

/// The jobs of the files without problems, and the problems of the others.
pub fn load_jobs_partial(project: &Project, registry: &Registry) -> (Vec<Job>, Vec<String>) {
    let files = discover(&project.root.join(JOBS_DIR));
    let results: Vec<Result<Vec<Job>, Vec<String>>> = files
        .par_iter()
        .map(|f| load_file(f, project, registry))
        .collect();
    let mut jobs = Vec::new();
    let mut problems = Vec::new();
    for r in results {
        match r {
            Ok(j) => jobs.extend(j),
            Err(p) => problems.extend(p),
        }
    }
    (jobs, problems)
}

/// `*.toml` files under `dir`, recursively, sorted; hidden files and folders are ignored.
pub fn discover(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect(dir, &mut out);
    out.sort();
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let p = e.path();
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false) || p.is_dir();
        if is_dir {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

fn load_file(path: &Path, project: &Project, registry: &Registry) -> Result<Vec<Job>, Vec<String>> {
    let rel = path
        .strip_prefix(&project.root)
        .unwrap_or(path)
        .to_string_lossy()
        .to_string();
    let at = |m: String| format!("{rel}: {m}");
    let text = std::fs::read_to_string(path).map_err(|e| vec![at(format!("cannot read: {e}"))])?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| vec![at(e.to_string().trim().replace('\n', " "))])?;
    let mut problems = Vec::new();

    let kind = match table.get("kind") {
        Some(toml::Value::String(k)) => Some(k.clone()),
        Some(_) => {
            problems.push("`kind`: must be a string".to_string());
            None
        }
        None => {
            problems.push(format!(
                "`kind`: missing (one of: {})",
                registry.names().join(", ")
            ));
            None
        }
    };
    let kind_impl = kind.as_deref().and_then(|k| {
        let found = registry.get(k);
        if found.is_none() {
            problems.push(format!(
                "`kind`: unknown kind {k:?} (known: {})",
                registry.names().join(", ")
            ));
        }
        found
    });
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let name = match table.get("name") {
        Some(toml::Value::String(n)) => n.clone(),
        Some(_) => {
            problems.push("`name`: must be a string".into());
            stem.clone()
        }
        None => stem.clone(),
    };
    if !is_job_name(&name) {
        problems.push(format!(
            "`name`: {name:?} may only hold letters, digits, `_`, `-` and `.`"
        ));
    }
    let after = string_list(&table, "after", &mut problems);
    let tags = string_list(&table, "tags", &mut problems);
    let pool =
        match table.get("pool") {
            None => None,
            Some(toml::Value::String(p)) => {
                if !project.config.run.pools.contains_key(p) {
                    let known: Vec<&str> = project
                        .config
                        .run
                        .pools
                        .keys()
                        .map(String::as_str)
                        .collect();
                    problems.push(format!(
                    "`pool`: {p:?} is not declared in [run] pools of panorama.toml (declared: {})",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ));
                }
                Some(p.clone())
            }
            Some(_) => {
                problems.push("`pool`: must be a string".into());
                None
            }
        };
    let timeout = match table.get("timeout") {
        None => None,
        Some(v) => match duration_value(v) {
            Ok(d) if d.is_zero() => {
                problems.push("`timeout`: must be greater than 0".into());
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                problems.push(format!("`timeout`: {e}"));
                None
            }
        },
    };
    let retry_delay = match table.get("retry_delay") {
        None => DEFAULT_RETRY_DELAY,
        Some(v) => duration_value(v).unwrap_or_else(|e| {
            problems.push(format!("`retry_delay`: {e}"));
            DEFAULT_RETRY_DELAY
        }),
    };
    let retries = match table.get("retries") {
        None => 0,
        Some(toml::Value::Integer(n)) if (0..=100).contains(n) => *n as u32,
        Some(_) => {
            problems.push("`retries`: must be an integer from 0 to 100".into());
            0
        }
    };
    let description = table
        .get("description")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let matrix = file_matrix(&table, project, &mut problems);
    let matrix_keys: Vec<String> = matrix.keys().cloned().collect();

    let prepared = match (kind_impl, kind.as_deref()) {
        (Some(k), Some(_)) => {
            let file = JobFile {
                path,
                rel: &rel,
                name: &name,
                table: &table,
                matrix_keys: &matrix_keys,
            };
            match k.prepare(&file, project) {
                Ok(p) => Some(p),
                Err(p) => {
                    problems.extend(p);
                    None
                }
            }
        }
        _ => None,
    };
    let (Some(prepared), Some(kind)) = (prepared, kind) else {
        return Err(problems.into_iter().map(at).collect());
    };
    if !problems.is_empty() {
        return Err(problems.into_iter().map(at).collect());
    }

    let id = format!("{kind}.{name}");
    let family = Arc::new(Family {
        kind,
        name,
        id: id.clone(),
        file: path.to_path_buf(),
        rel: rel.clone(),
        tags,
        pool,
        timeout,
        retries,
        retry_delay,
        description,
        matrix_keys,
        prepared,
    });

    let combos = cartesian(&matrix);
    let mut jobs = Vec::with_capacity(combos.len());
    for vars in combos {
        let job_name = instance_name(&id, &vars);
        let mut subst_after = Vec::with_capacity(after.len());
        for a in &after {
            match substitute(a, &vars) {
                Ok(s) => subst_after.push(s),
                Err(e) => problems.push(format!("`after`: {e}")),
            }
        }
        for p in family.prepared.check(&vars, project) {
            if vars.is_empty() {
                problems.push(p);
            } else {
                problems.push(format!("{job_name}: {p}"));
            }
        }
        let io = family.prepared.io(&vars);
        jobs.push(Job {
            name: job_name,
            family: family.clone(),
            vars,
            after: subst_after,
            reads: io.reads,
            writes: io.writes,
        });
    }
    if problems.is_empty() {
        Ok(jobs)
    } else {
        problems.sort();
        problems.dedup();
        Err(problems.into_iter().map(at).collect())
    }
}

/// `kind.name` or `kind.name[k=v,...]`.
pub fn instance_name(id: &str, vars: &Vars) -> String {
    if vars.is_empty() {
        return id.to_string();
    }
    let mut s = String::with_capacity(id.len() + 16 * vars.len());
    s.push_str(id);
    s.push('[');
    for (i, (k, v)) in vars.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s.push(']');
    s
}

fn is_job_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn string_list(table: &toml::Table, key: &str, problems: &mut Vec<String>) -> Vec<String> {
    match table.get(key) {
        None => Vec::new(),
        Some(toml::Value::String(s)) => vec![s.clone()],
        Some(toml::Value::Array(items)) => {
            let mut out = Vec::new();
            for it in items {
                match it.as_str() {
                    Some(s) if !s.trim().is_empty() => out.push(s.trim().to_string()),
                    _ => problems.push(format!("`{key}`: every item must be a non-empty string")),
                }
            }
            out
        }
        Some(_) => {
            problems.push(format!("`{key}`: must be an array of strings"));
            Vec::new()
        }
    }
}

/// The matrix a job file declares (values of each key, in order), validated as `panorama
/// jobs` validates it, without the kind's checks of each instance (a missing source file of
/// another instance does not stop `panorama ingest --var` of this one). Empty without one.
pub fn declared_matrix(
    project: &Project,
    table: &toml::Table,
) -> Result<BTreeMap<String, Vec<String>>, Vec<String>> {
    let mut problems = Vec::new();
    let matrix = file_matrix(table, project, &mut problems);
    if problems.is_empty() {
        Ok(matrix)
    } else {
        Err(problems)
    }
}

/// A job file's `[matrix]`: values of each key (none without one).
fn file_matrix(
    table: &toml::Table,
    project: &Project,
    problems: &mut Vec<String>,
) -> BTreeMap<String, Vec<String>> {
    match table.get("matrix") {
        None => BTreeMap::new(),
        Some(toml::Value::Table(m)) => matrix_values(m, project, problems),
        Some(_) => {
            problems.push("`matrix`: must be a table ([matrix])".into());
            BTreeMap::new()
        }
    }
}

/// Values of each matrix key, in their order, duplicates dropped.
fn matrix_values(
    m: &toml::Table,
    project: &Project,
    problems: &mut Vec<String>,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (key, v) in m {
        let at = format!("`matrix.{key}`");
        if !is_ident(key) {
            problems.push(format!(
                "{at}: the key must be an identifier (letters, digits, _)"
            ));
            continue;
        }
        let raw: Vec<String> = match v {
            toml::Value::Array(items) => items
                .iter()
                .filter_map(|it| match it {
                    toml::Value::String(s) => Some(s.clone()),
                    toml::Value::Integer(i) => Some(i.to_string()),
                    _ => {
                        problems.push(format!("{at}: values must be strings or integers"));
                        None
                    }
                })
                .collect(),
            toml::Value::Table(t) => {
                let csv = t.get("csv").and_then(|x| x.as_str());
                let column = t.get("column").and_then(|x| x.as_str());
                let unknown: Vec<&String> =
                    t.keys().filter(|k| *k != "csv" && *k != "column").collect();
                if !unknown.is_empty() {
                    problems.push(format!("{at}: unknown key(s) {unknown:?} (csv, column)"));
                }
                match (csv, column) {
                    (Some(csv), Some(column)) => match csv_column(&project.path(csv), column) {
                        Ok(vals) => vals,
                        Err(e) => {
                            problems.push(format!("{at}: {e}"));
                            continue;
                        }
                    },
                    _ => {
                        problems.push(format!(
                            "{at}: a table needs `csv` (a file) and `column` (its header name)"
                        ));
                        continue;
                    }
                }
            }
            _ => {
                problems.push(format!(
                    "{at}: a list of values or {{ csv = \"file.csv\", column = \"name\" }}"
                ));
                continue;
            }
        };
        let mut seen = std::collections::HashSet::new();
        let mut vals = Vec::new();
        for r in raw {
            let r = r.trim().to_string();
            if r.is_empty()
                || r.contains([',', '[', ']', '=', '/', '\\', '{', '}', ':', '+', '*', '?'])
                || r.contains(char::is_whitespace)
            {
                problems.push(format!(
                    "{at}: value {r:?} must be non-empty, without spaces or any of , [ ] = / \\ {{ }} : + * ?"
                ));
                continue;
            }
            if seen.insert(r.clone()) {
                vals.push(r);
            }
        }
        if vals.is_empty() {
            problems.push(format!("{at}: no values"));
            continue;
        }
        out.insert(key.clone(), vals);
    }
    out
}

fn csv_column(path: &Path, column: &str) -> Result<Vec<String>, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| format!("missing file {}: {e}", path.display()))?;
    let headers = rdr
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .clone();
    let Some(i) = headers
        .iter()
        .position(|h| h.trim().trim_start_matches('\u{feff}') == column)
    else {
        return Err(format!(
            "{} has no column {column:?} (columns: {})",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(", ")
        ));
    };
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(v) = rec.get(i) {
            if !v.trim().is_empty() {
                out.push(v.trim().to_string());
            }
        }
    }
    Ok(out)
}

/// Every combination of the matrix values, keys in sorted order, the last key varying fastest.
fn cartesian(m: &BTreeMap<String, Vec<String>>) -> Vec<Vars> {
    let mut out = vec![Vars::new()];
    for (k, vals) in m {
        let mut next = Vec::with_capacity(out.len() * vals.len());
        for base in &out {
            for v in vals {
                let mut c = base.clone();
                c.insert(k.clone(), v.clone());
                next.push(c);
            }
        }
        out = next;
    }
    out
}

/// Replaces `{key}` by the instance's values; an unknown key is an error. `{{`/`}}` escape.
pub fn substitute(s: &str, vars: &Vars) -> Result<String, String> {
    substitute_with(s, vars, &[])
}

/// Like [`substitute`] but leaves the placeholders named in `keep` (e.g. `date`) as they are.
pub fn substitute_with(s: &str, vars: &Vars, keep: &[&str]) -> Result<String, String> {
    if !s.contains('{') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else {
            return Err(format!("{s:?}: `{{` without `}}`"));
        };
        let key = &after[..j];
        if let Some(v) = vars.get(key) {
            out.push_str(v);
        } else if keep.contains(&key) {
            out.push('{');
            out.push_str(key);
            out.push('}');
        } else {
            let known: Vec<&str> = vars
                .keys()
                .map(String::as_str)
                .chain(keep.iter().copied())
                .collect();
            return Err(format!(
                "{s:?}: unknown placeholder {{{key}}} (known: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `"500ms"`, `"45s"`, `"30m"`, `"2h"`, `"1h30m"`, `"1d"`, or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return secs_duration(secs, s);
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = t.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let v: f64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a duration like \"30m\", \"45s\" or 90"))?;
        num.clear();
        total += v * match unit.as_str() {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hrs" => 3600.0,
            "d" => 86400.0,
            _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h, d)")),
        };
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(format!(
            "{s:?} is not a duration like \"30m\", \"45s\" or 90"
        ));
    }
    secs_duration(total, s)
}

fn secs_duration(secs: f64, s: &str) -> Result<Duration, String> {
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("{s:?} is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn duration_value(v: &toml::Value) -> Result<Duration, String> {
    match v {
        toml::Value::String(s) => parse_duration(s),
        toml::Value::Integer(i) => secs_duration(*i as f64, &i.to_string()),
        toml::Value::Float(f) => secs_duration(*f, &f.to_string()),
        _ => Err("must be a duration string (\"30m\") or a number of seconds".into()),
    }
}

/// Whether `s` holds a wildcard (`*` or `?`). `[` is literal: it is part of instance names.
pub fn is_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Matches `*` (any run of characters) and `?` (one character); everything else is literal.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (usize::MAX, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            // `?` matches one byte; names are ASCII.
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = pi;
            mark = ti;
            pi += 1;
        } else if star != usize::MAX {
            pi = star + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// The literal prefix of a wildcard pattern (before the first `*` or `?`).
pub fn literal_prefix(pattern: &str) -> &str {
    match pattern.find(['*', '?']) {
        Some(i) => &pattern[..i],
        None => pattern,
    }
}

/// Keys a job file may hold besides the kind's own (for "unknown key" messages).
pub fn common_keys() -> &'static [&'static str] {
    COMMON_KEYS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        for bad in ["", "10x", "m", "-3", "5 5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcards_treat_brackets_as_literal() {
        assert!(wildcard_match("ingest.*", "ingest.tx[branch=0101]"));
        assert!(wildcard_match(
            "ingest.tx[branch=01*]",
            "ingest.tx[branch=0101]"
        ));
        assert!(!wildcard_match(
            "ingest.tx[branch=02*]",
            "ingest.tx[branch=0101]"
        ));
        assert!(wildcard_match("*.tx?branch*", "sql.tx[branch=1]"));
        assert!(wildcard_match("a*b*c", "aXbYbc"));
        assert!(!wildcard_match("a*b", "ab_"));
        assert_eq!(literal_prefix("ingest.t*x"), "ingest.t");
    }

    #[test]
    fn substitution_and_names() {
        let vars: Vars = [("branch".to_string(), "0101".to_string())].into();
        assert_eq!(
            substitute("sql.f[branch={branch}]", &vars).unwrap(),
            "sql.f[branch=0101]"
        );
        assert!(substitute("x{regoin}", &vars)
            .unwrap_err()
            .contains("regoin"));
        assert_eq!(
            substitute_with("d/{date}/{branch}.csv", &vars, &["date"]).unwrap(),
            "d/{date}/0101.csv"
        );
        let two: Vars = [("b".into(), "1".into()), ("a".into(), "x".into())].into();
        assert_eq!(instance_name("noop.j", &two), "noop.j[a=x,b=1]");
        assert_eq!(instance_name("noop.j", &Vars::new()), "noop.j");
    }

    #[test]
    fn cartesian_product_in_key_order() {
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), vec!["1".to_string(), "2".to_string()]);
        m.insert(
            "a".to_string(),
            vec!["x".to_string(), "y".to_string(), "z".to_string()],
        );
        let c = cartesian(&m);
        assert_eq!(c.len(), 6);
        assert_eq!(instance_name("k.n", &c[0]), "k.n[a=x,b=1]");
        assert_eq!(instance_name("k.n", &c[1]), "k.n[a=x,b=2]");
        assert_eq!(instance_name("k.n", &c[5]), "k.n[a=z,b=2]");
    }
}

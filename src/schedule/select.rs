//! Selection in the dbt style.
//!
//! A selection is a union of terms separated by commas or spaces (commas inside `[...]` belong
//! to instance names). A term is an atom with optional graph operators:
//!
//! | term                     | selects                                                  |
//! |--------------------------|----------------------------------------------------------|
//! | `ingest.applications`    | that job (or every instance, for a family name)          |
//! | `ingest.tx[branch=0101]` | one instance                                             |
//! | `ingest.*`, `*[branch=01*]` | names matching the wildcard (`*`, `?`; `[` is literal) |
//! | `tag:nightly`            | jobs with that tag (wildcards allowed)                   |
//! | `kind:ingest`            | jobs of that kind                                        |
//! | `pool:train`             | jobs in that pool                                        |
//! | `path:jobs/ingest`       | jobs from files under that folder, or matching the glob  |
//! | `table:clean.tx`         | jobs writing that table (partition)                      |
//! | `+term`                  | the term and all its ancestors                           |
//! | `term+`                  | the term and all its descendants                         |
//!
//! `--exclude` takes the same grammar and removes what it selects. A term that matches no job
//! is an error, so that a typo does not silently run nothing.

use super::dag::Dag;
use super::kind::TableRef;
use super::spec::{is_wildcard, wildcard_match};

/// Splits a selection on commas and white space outside `[...]`.
pub fn terms(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for c in expr.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth <= 0 => flush(&mut cur, &mut out),
            c if c.is_whitespace() && depth <= 0 => flush(&mut cur, &mut out),
            c => cur.push(c),
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn flush(cur: &mut String, out: &mut Vec<String>) {
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    cur.clear();
}

/// Jobs selected by `select` (all when empty) minus those selected by `exclude`.
pub fn select(dag: &Dag, select: &[String], exclude: &[String]) -> Result<Vec<bool>, Vec<String>> {
    let mut problems = Vec::new();
    let sel_terms: Vec<String> = select.iter().flat_map(|s| terms(s)).collect();
    let mut chosen = if sel_terms.is_empty() {
        vec![true; dag.len()]
    } else {
        let mut m = vec![false; dag.len()];
        for t in &sel_terms {
            if let Err(p) = apply_term(dag, t, &mut m) {
                problems.push(p);
            }
        }
        m
    };
    let ex_terms: Vec<String> = exclude.iter().flat_map(|s| terms(s)).collect();
    if !ex_terms.is_empty() {
        let mut ex = vec![false; dag.len()];
        for t in &ex_terms {
            if let Err(p) = apply_term(dag, t, &mut ex) {
                problems.push(format!("--exclude: {p}"));
            }
        }
        for (c, e) in chosen.iter_mut().zip(ex) {
            *c &= !e;
        }
    }
    if problems.is_empty() {
        Ok(chosen)
    } else {
        Err(problems)
    }
}

fn apply_term(dag: &Dag, term: &str, mark: &mut [bool]) -> Result<(), String> {
    let mut atom = term;
    let up = atom.starts_with('+');
    if up {
        atom = &atom[1..];
    }
    let down = atom.ends_with('+');
    if down {
        atom = &atom[..atom.len() - 1];
    }
    if atom.is_empty() {
        return Err(format!("{term:?}: empty selector"));
    }
    let seeds = match_atom(dag, atom)?;
    if seeds.is_empty() {
        return Err(format!("selector {term:?} matches no job"));
    }
    for &s in &seeds {
        mark[s as usize] = true;
    }
    if up {
        dag.closure(&seeds, true, mark);
    }
    if down {
        dag.closure(&seeds, false, mark);
    }
    Ok(())
}

fn match_atom(dag: &Dag, atom: &str) -> Result<Vec<u32>, String> {
    let by = |f: &dyn Fn(&super::spec::Job) -> bool| -> Vec<u32> {
        dag.jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| f(j))
            .map(|(i, _)| i as u32)
            .collect()
    };
    let text = |pat: &str, s: &str| {
        if is_wildcard(pat) {
            wildcard_match(pat, s)
        } else {
            pat == s
        }
    };
    if let Some((method, value)) = atom.split_once(':') {
        return match method {
            "tag" => Ok(by(&|j| j.family.tags.iter().any(|t| text(value, t)))),
            "kind" => Ok(by(&|j| text(value, &j.family.kind))),
            "pool" => Ok(by(&|j| {
                j.family.pool.as_deref().is_some_and(|p| text(value, p))
            })),
            "path" => {
                let v = value.trim_end_matches('/');
                Ok(by(&|j| {
                    let rel = j.family.rel.as_str();
                    text(v, rel)
                        || rel.starts_with(&format!("{v}/"))
                        || wildcard_match(&format!("{v}/*"), rel)
                }))
            }
            "table" => {
                let t = TableRef::parse(value).map_err(|e| format!("table:{value}: {e}"))?;
                Ok(by(&|j| j.writes.iter().any(|w| w.overlaps(&t))))
            }
            "name" => Ok(dag.resolve(value)),
            _ => Err(format!(
                "{atom:?}: unknown selector method {method:?} (tag, kind, pool, path, table, name)"
            )),
        };
    }
    Ok(dag.resolve(atom))
}

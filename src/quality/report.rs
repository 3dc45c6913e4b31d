//! The data-quality report of a night: `reports/quality-<date>.html`, one self-contained page
//! (no scripts, no external assets) rebuilt from `quality.check_results` after every check job.

use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::config::Project;
use crate::error::{Context, Result};
use crate::transform::scan;
use crate::warehouse::{Layer, Warehouse};

/// The results of every table checked for `date`, from the warehouse.
pub fn results_for(wh: &Warehouse, date: NaiveDate) -> Result<Option<DataFrame>> {
    let parts: Vec<scan::Partition> = scan::partitions(wh, Layer::Quality, super::RESULTS_TABLE)
        .into_iter()
        .filter(|p| p.dt == date)
        .collect();
    if parts.is_empty() {
        return Ok(None);
    }
    let lf = scan::scan(&wh.table_dir(Layer::Quality, super::RESULTS_TABLE), &parts)?;
    let df = crate::transform::query::collect(lf.sort(["table_name"], Default::default()))
        .ctx(|| "reading quality.check_results".to_string())?;
    Ok(Some(df))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn str_at(df: &DataFrame, c: &str, i: usize) -> String {
    match df.column(c).ok().and_then(|c| c.get(i).ok()) {
        Some(AnyValue::Null) | None => String::new(),
        Some(v) => crate::transform::query::cell(&v),
    }
}

/// Rows per partition of a table (from `_SUCCESS`), oldest first, at most the last 30.
fn row_history(wh: &Warehouse, table: &str) -> Vec<(NaiveDate, u64)> {
    let Some((l, t)) = table.split_once('.') else {
        return Vec::new();
    };
    let Some(layer) = Layer::parse(l) else {
        return Vec::new();
    };
    let mut out: Vec<(NaiveDate, u64)> = Vec::new();
    for p in scan::partitions(wh, layer, t) {
        let rows = crate::warehouse::read_success(&p.dir)
            .map(|s| s.rows)
            .unwrap_or(0);
        match out.last_mut() {
            Some((d, r)) if *d == p.dt => *r += rows,
            _ => out.push((p.dt, rows)),
        }
    }
    let skip = out.len().saturating_sub(30);
    out.split_off(skip)
}

/// A small bar chart of rows per partition.
fn sparkline(h: &[(NaiveDate, u64)]) -> String {
    if h.len() < 2 {
        return String::new();
    }
    let (w, ht) = (240.0, 40.0);
    let max = h.iter().map(|(_, r)| *r).max().unwrap_or(1).max(1) as f64;
    let bw = w / h.len() as f64;
    let mut s = format!(
        r#"<svg class="spark" width="{w}" height="{ht}" viewBox="0 0 {w} {ht}" role="img" aria-label="rows per partition">"#
    );
    for (i, (d, r)) in h.iter().enumerate() {
        let bh = (*r as f64 / max * (ht - 2.0)).max(1.0);
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#5b8def"><title>{d}: {r} rows</title></rect>"##,
            i as f64 * bw + 1.0,
            ht - bh,
            (bw - 2.0).max(1.0),
            bh
        );
    }
    s.push_str("</svg>");
    s
}

/// A check job of the night that wrote no results: skipped because a job it depends on
/// failed, cancelled, or never started (an interrupted night).
#[derive(Debug, Clone)]
pub struct NotRun {
    pub job: String,
    /// What it would have checked (the tables it reads).
    pub tables: Vec<String>,
    pub status: String,
}

/// The section of checks that did not run: without it, a night whose table failed to build
/// would show a report with nothing failing.
fn not_run_section(not_run: &[NotRun]) -> String {
    if not_run.is_empty() {
        return String::new();
    }
    let mut html = String::from(
        r#"<h2 id="not-run">Checks that did not run</h2><p class="muted">Their table was not built or a job before them failed: their verdict for this night is unknown.</p><table><tr><th>status</th><th>check job</th><th>table(s)</th></tr>"#,
    );
    for n in not_run {
        let _ = write!(
            html,
            r#"<tr><td class="warn">{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&n.status),
            esc(&n.job),
            esc(&n.tables.join(", "))
        );
    }
    html.push_str("</table>");
    html
}

/// Renders the report for `date` from the results in the warehouse, and the check jobs of
/// the night that did not run.
pub fn render(wh: &Warehouse, date: NaiveDate, not_run: &[NotRun]) -> Result<String> {
    let df = results_for(wh, date)?;
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Data quality {date}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}} h1{{font-size:1.5rem}} h2{{font-size:1.15rem;margin-top:2rem}}
table{{border-collapse:collapse;width:100%;font-size:.85rem}} th,td{{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}}
th{{background:#f4f4f4}} .pass{{color:#1a7f37}} .warn{{color:#9a6700;font-weight:600}} .fail,.error{{color:#cf222e;font-weight:700}}
.badge{{display:inline-block;padding:.1rem .5rem;border-radius:.8rem;margin-right:.4rem;background:#eee}}
td.num{{text-align:right;font-variant-numeric:tabular-nums}} .muted{{color:#666}} .spark{{vertical-align:middle}}
</style></head><body><h1>Data quality — {date}</h1>"#
    );
    let missing = if not_run.is_empty() {
        String::new()
    } else {
        format!(
            r##"<span class="badge warn"><a href="#not-run">{} check job(s) did not run</a></span>"##,
            not_run.len()
        )
    };
    let Some(df) = df else {
        let _ = writeln!(
            html,
            "<p>{missing}No check ran for this date.</p>{}</body></html>",
            not_run_section(not_run)
        );
        return Ok(html);
    };
    let n = df.height();
    let count = |s: &str| (0..n).filter(|&i| str_at(&df, "status", i) == s).count();
    let (pass, warn, fail, error) = (count("pass"), count("warn"), count("fail"), count("error"));
    let _ = write!(
        html,
        r#"<p><span class="badge pass">{pass} passed</span><span class="badge warn">{warn} warnings</span><span class="badge fail">{fail} failed</span><span class="badge error">{error} not evaluated</span>{missing} <span class="muted">{n} checks on {} table(s)</span></p>"#,
        {
            let mut t: Vec<String> = (0..n).map(|i| str_at(&df, "table_name", i)).collect();
            t.dedup();
            t.len()
        }
    );
    let mut i = 0;
    while i < n {
        let table = str_at(&df, "table_name", i);
        let mut j = i;
        while j < n && str_at(&df, "table_name", j) == table {
            j += 1;
        }
        let hist = row_history(wh, &table);
        let _ = write!(
            html,
            r#"<h2 id="{t}">{t}</h2><p class="muted">partition checked: dt={} · rows per partition {}</p>"#,
            esc(&str_at(&df, "checked_dt", i)),
            sparkline(&hist),
            t = esc(&table)
        );
        html.push_str("<table><tr><th>status</th><th>check</th><th>severity</th><th>observed</th><th>expected</th><th>failing rows</th><th>sample / message</th></tr>");
        // Failures first, then warnings, then passes.
        let mut idx: Vec<usize> = (i..j).collect();
        idx.sort_by_key(|&k| match str_at(&df, "status", k).as_str() {
            "fail" | "error" => 0,
            "warn" => 1,
            _ => 2,
        });
        for k in idx {
            let status = str_at(&df, "status", k);
            let detail = [str_at(&df, "message", k), str_at(&df, "sample", k)]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" — ");
            let _ = write!(
                html,
                r#"<tr><td class="{s}">{s}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td>{}</td></tr>"#,
                esc(&str_at(&df, "check", k)),
                esc(&str_at(&df, "severity", k)),
                esc(&str_at(&df, "observed", k)),
                esc(&str_at(&df, "expected", k)),
                esc(&str_at(&df, "failing_rows", k)),
                esc(&detail),
                s = esc(&status),
            );
        }
        html.push_str("</table>");
        i = j;
    }
    html.push_str(&not_run_section(not_run));
    let _ = write!(
        html,
        r#"<p class="muted">From quality.check_results (dt={date}); query it with <code>panorama query "SELECT * FROM quality.check_results WHERE dt = '{date}'"</code>.</p></body></html>"#
    );
    html.push('\n');
    Ok(html)
}

/// Writes `reports/quality-<date>.html` (atomically, serialised between concurrent check jobs
/// by a lock file so that the last writer includes every committed result). `not_run` is known
/// only at the end of a night, which rewrites the report with it.
pub fn write(project: &Project, date: NaiveDate, not_run: &[NotRun]) -> Result<PathBuf> {
    let dir = project.root.join("reports");
    std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    let lock_path = dir.join(".quality.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .ctx(|| format!("opening {}", lock_path.display()))?;
    lock_file(&lock);
    let wh = Warehouse::new(&project.warehouse_root);
    let html = render(&wh, date, not_run)?;
    let path = dir.join(format!("quality-{date}.html"));
    let tmp = dir.join(format!(".quality-{date}.html.tmp-{}", std::process::id()));
    std::fs::write(&tmp, html).ctx(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).ctx(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(unix)]
fn lock_file(f: &std::fs::File) {
    use std::os::unix::io::AsRawFd;
    // SAFETY: the descriptor is valid while `f` lives; the lock is released when it is closed.
    unsafe {
        libc::flock(f.as_raw_fd(), libc::LOCK_EX);
    }
}

#[cfg(not(unix))]
fn lock_file(_f: &std::fs::File) {}

//! The run report: one self-contained HTML file per night in `<project>/reports/`, with a
//! timeline (one lane per worker slot, one bar per attempt), the slowest and the failed jobs,
//! and totals per kind. No JavaScript, no external assets: it opens from a mail attachment.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::dag::Dag;
use super::executor::{Attempt, ExecReport, Status};
use super::night::NightResult;
use crate::config::Project;
use crate::error::{Context, Result};

/// Bars drawn at most; the shortest attempts beyond are summarised.
const MAX_BARS: usize = 4000;

pub fn write(
    project: &Project,
    dag: &Dag,
    night: &NightResult,
    exec: &ExecReport,
    recovered: &[(u32, String)],
) -> Result<PathBuf> {
    let dir = project.root.join("reports");
    std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("run-{}-{}.html", night.date, night.run_id));
    let html = render(dag, night, exec, recovered);
    let tmp = dir.join(format!(".run-{}-{}.html.tmp", night.date, night.run_id));
    std::fs::write(&tmp, html).ctx(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).ctx(|| format!("writing {}", path.display()))?;
    Ok(path)
}

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn color(a: &Attempt) -> &'static str {
    match (a.status, a.final_state) {
        (Status::Succeeded | Status::Recovered, _) => "#3a9d5d",
        (_, false) => "#e8a33d",
        (Status::Cancelled, _) => "#9a9a9a",
        _ => "#d64545",
    }
}

pub fn render(
    dag: &Dag,
    night: &NightResult,
    exec: &ExecReport,
    recovered: &[(u32, String)],
) -> String {
    let c = &night.counts;
    let mut h = String::with_capacity(64 * 1024);
    let title = format!("Panorama run {} — {}", night.date, night.run_id);
    let _ = write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}}
h1{{font-size:20px}} h2{{font-size:16px;margin-top:28px}}
table{{border-collapse:collapse;margin:8px 0}} td,th{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}
td.n{{text-align:right;font-variant-numeric:tabular-nums}} .st-succeeded{{color:#2a7d45}} .st-failed,.st-timeout{{color:#c03030}} .st-interrupted{{color:#b07000}}
.cards span{{display:inline-block;margin:0 14px 8px 0;padding:6px 10px;background:#f3f3f3;border-radius:4px}}
pre{{white-space:pre-wrap;margin:0;font-size:12px}} .legend i{{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}}
</style></head><body>
<h1>{t}</h1>
<p>Status <b class="st-{st}">{st}</b> · {secs:.1} s wall time · {threads} lanes</p>
<div class="cards"><span>selected <b>{sel}</b></span><span>ran <b>{ran}</b></span><span>succeeded <b>{ok}</b></span><span>failed <b>{fail}</b></span><span>skipped (upstream failed) <b>{skip}</b></span><span>already done <b>{done}</b></span><span>recovered <b>{rec}</b></span><span>cancelled <b>{canc}</b></span><span>not started <b>{ns}</b></span><span>retries <b>{retr}</b></span></div>
"#,
        t = esc(&title),
        st = esc(&night.status),
        secs = night.seconds,
        threads = lanes_needed(exec),
        sel = c.selected,
        ran = c.to_run,
        ok = c.succeeded,
        fail = c.failed,
        skip = c.skipped,
        done = c.already_done,
        rec = c.recovered,
        canc = c.cancelled,
        ns = c.not_started,
        retr = c.retries,
    );

    // Timeline.
    h.push_str("<h2>Timeline</h2>\n");
    h.push_str(&timeline(dag, exec));

    // Warnings of jobs that succeeded.
    if !night.warnings.is_empty() {
        let _ = writeln!(h, "<h2>Warnings ({})</h2>\n<ul>", night.warnings.len());
        for w in night.warnings.iter().take(500) {
            let _ = writeln!(h, "<li>{}</li>", esc(w));
        }
        h.push_str("</ul>\n");
    }

    // Failed jobs.
    let failed: Vec<&Attempt> = exec
        .attempts
        .iter()
        .filter(|a| {
            a.final_state
                && matches!(
                    a.status,
                    Status::Failed | Status::Timeout | Status::Cancelled
                )
        })
        .collect();
    let _ = writeln!(h, "<h2>Failed jobs ({})</h2>", failed.len());
    if failed.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        h.push_str("<table><tr><th>job</th><th>status</th><th>attempts</th><th>seconds</th><th>error</th></tr>\n");
        for a in failed.iter().take(500) {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{:.2}</td><td><pre>{}</pre></td></tr>",
                esc(&dag.job(a.job).name),
                a.status.as_str(),
                a.attempt,
                a.end - a.start,
                esc(a.error.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table>\n");
        if failed.len() > 500 {
            let _ = writeln!(
                h,
                "<p>… and {} more (see `panorama runs --run {}`).</p>",
                failed.len() - 500,
                esc(&night.run_id)
            );
        }
    }
    let skipped: Vec<&Attempt> = exec
        .attempts
        .iter()
        .filter(|a| a.status == Status::Skipped)
        .collect();
    if !skipped.is_empty() {
        let _ = write!(h, "<h2>Skipped because an upstream job failed ({})</h2>\n<table><tr><th>job</th><th>reason</th></tr>\n", skipped.len());
        for a in skipped.iter().take(200) {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&dag.job(a.job).name),
                esc(&a.outcome.message)
            );
        }
        h.push_str("</table>\n");
        if skipped.len() > 200 {
            let _ = writeln!(h, "<p>… and {} more.</p>", skipped.len() - 200);
        }
    }

    // Slowest.
    let mut ran: Vec<&Attempt> = exec
        .attempts
        .iter()
        .filter(|a| a.status != Status::Skipped)
        .collect();
    ran.sort_by(|a, b| (b.end - b.start).total_cmp(&(a.end - a.start)));
    h.push_str("<h2>Slowest attempts</h2>\n<table><tr><th>job</th><th>kind</th><th>status</th><th>seconds</th><th>rows in</th><th>rows out</th><th>MB</th><th>message</th></tr>\n");
    for a in ran.iter().take(25) {
        let j = dag.job(a.job);
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{:.2}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{:.1}</td><td>{}</td></tr>",
            esc(&j.name),
            esc(&j.family.kind),
            if a.final_state { a.status.as_str() } else { "failed, retried" },
            a.end - a.start,
            a.outcome.rows_in,
            a.outcome.rows_out,
            a.outcome.bytes as f64 / 1e6,
            esc(&a.outcome.message)
        );
    }
    h.push_str("</table>\n");

    // Per kind.
    let mut per: BTreeMap<&str, (usize, f64, u64, usize)> = BTreeMap::new();
    for a in &exec.attempts {
        let e = per.entry(dag.job(a.job).family.kind.as_str()).or_default();
        if a.final_state {
            e.0 += 1;
        }
        e.1 += a.end - a.start;
        e.2 += a.outcome.rows_out;
        if a.final_state && !a.status.is_ok() {
            e.3 += 1;
        }
    }
    h.push_str("<h2>By kind</h2>\n<table><tr><th>kind</th><th>jobs</th><th>job-seconds</th><th>rows out</th><th>not ok</th></tr>\n");
    for (k, (n, s, r, bad)) in per {
        let _ = writeln!(h, "<tr><td>{}</td><td class=n>{n}</td><td class=n>{s:.1}</td><td class=n>{r}</td><td class=n>{bad}</td></tr>", esc(k));
    }
    h.push_str("</table>\n");
    if !recovered.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Recovered ({})</h2><p>Committed by a run that was killed before recording them; recorded, not redone: {}{}</p>",
            recovered.len(),
            recovered.iter().take(50).map(|(j, r)| format!("{} (run {})", esc(&dag.job(*j).name), esc(r))).collect::<Vec<_>>().join(", "),
            if recovered.len() > 50 { " …" } else { "" }
        );
    }
    let _ = writeln!(
        h,
        "<p style=\"color:#777;margin-top:32px\">History: <code>panorama runs --run {}</code>. Generated {}.</p></body></html>",
        esc(&night.run_id),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    h
}

/// Greedy lane assignment: each attempt takes the lowest lane free at its start.
fn lanes(exec: &ExecReport) -> Vec<(usize, usize)> {
    let mut idx: Vec<usize> = (0..exec.attempts.len())
        .filter(|&i| exec.attempts[i].status != Status::Skipped)
        .collect();
    idx.sort_by(|&a, &b| exec.attempts[a].start.total_cmp(&exec.attempts[b].start));
    let mut lane_end: Vec<f64> = Vec::new();
    let mut out = Vec::with_capacity(idx.len());
    for i in idx {
        let a = &exec.attempts[i];
        let lane = match lane_end.iter().position(|&e| e <= a.start + 1e-9) {
            Some(l) => l,
            None => {
                lane_end.push(0.0);
                lane_end.len() - 1
            }
        };
        lane_end[lane] = a.end;
        out.push((i, lane));
    }
    out
}

fn lanes_needed(exec: &ExecReport) -> usize {
    lanes(exec).iter().map(|(_, l)| l + 1).max().unwrap_or(0)
}

fn timeline(dag: &Dag, exec: &ExecReport) -> String {
    let placed = lanes(exec);
    if placed.is_empty() {
        return "<p>No job ran.</p>\n".into();
    }
    let nlanes = placed.iter().map(|(_, l)| l + 1).max().unwrap_or(1);
    let total = exec
        .attempts
        .iter()
        .map(|a| a.end)
        .fold(exec.seconds, f64::max)
        .max(1e-3);
    let (w, left, lane_h) = (1100.0, 60.0, if nlanes > 40 { 6.0 } else { 16.0 });
    let height = 30.0 + lane_h * nlanes as f64;
    let x = |t: f64| left + (w - left - 10.0) * t / total;
    // Keep failures and the longest attempts when there are too many to draw.
    let mut draw: Vec<&(usize, usize)> = placed.iter().collect();
    let hidden = draw.len().saturating_sub(MAX_BARS);
    if hidden > 0 {
        draw.sort_by(|a, b| {
            let (ea, eb) = (&exec.attempts[a.0], &exec.attempts[b.0]);
            let fa = !ea.status.is_ok();
            let fb = !eb.status.is_ok();
            fb.cmp(&fa)
                .then((eb.end - eb.start).total_cmp(&(ea.end - ea.start)))
        });
        draw.truncate(MAX_BARS);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" viewBox="0 0 {w} {height}" font-size="11" font-family="sans-serif">"##
    );
    // Time axis: about eight ticks on round values.
    let step = nice_step(total / 8.0);
    let mut t = 0.0;
    while t <= total + 1e-9 {
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="14" x2="{x:.1}" y2="{height}" stroke="#eee"/><text x="{x:.1}" y="11" text-anchor="middle" fill="#666">{}</text>"##,
            tick_label(t),
            x = x(t)
        );
        t += step;
    }
    if nlanes <= 40 {
        for l in 0..nlanes {
            let _ = writeln!(
                s,
                r##"<text x="4" y="{:.1}" fill="#666">lane {}</text>"##,
                20.0 + lane_h * l as f64 + lane_h * 0.75,
                l + 1
            );
        }
    }
    for &&(i, lane) in &draw {
        let a = &exec.attempts[i];
        let x0 = x(a.start);
        let bw = (x(a.end) - x0).max(0.8);
        let y = 20.0 + lane_h * lane as f64;
        let _ = writeln!(
            s,
            r##"<rect x="{x0:.1}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="{}"><title>{} — {} attempt {}, {:.2}s{}</title></rect>"##,
            lane_h - 2.0,
            color(a),
            esc(&dag.job(a.job).name),
            a.status.as_str(),
            a.attempt,
            a.end - a.start,
            a.error
                .as_deref()
                .map(|e| format!(": {}", esc(&super::plan::first_line(e, 200))))
                .unwrap_or_default()
        );
    }
    s.push_str("</svg>\n");
    let _ = writeln!(
        s,
        r##"<p class="legend"><i style="background:#3a9d5d"></i>succeeded<i style="background:#e8a33d"></i>failed, retried<i style="background:#d64545"></i>failed<i style="background:#9a9a9a"></i>cancelled{}</p>"##,
        if hidden > 0 {
            format!(" · the {hidden} shortest successful attempts are not drawn")
        } else {
            String::new()
        }
    );
    s
}

fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-3);
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= raw {
            return m * mag;
        }
    }
    10.0 * mag
}

fn tick_label(t: f64) -> String {
    if t >= 120.0 {
        format!("{:.0}m", t / 60.0)
    } else if t >= 10.0 || t == 0.0 {
        format!("{t:.0}s")
    } else if t >= 1.0 {
        format!("{t:.1}s")
    } else {
        format!("{:.0}ms", t * 1000.0)
    }
}

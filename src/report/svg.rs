//! Hand-written SVG charts (line and bar), small enough to embed in a report without a
//! plotting dependency.

use std::fmt::Write;

pub const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#7f7f7f",
];

const W: f64 = 460.0;
const H: f64 = 320.0;
const L: f64 = 60.0;
const R: f64 = 16.0;
const T: f64 = 34.0;
const B: f64 = 48.0;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).abs().max(1e-12);
    let raw = span / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= n as f64)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).ceil() * step;
    let mut v = Vec::new();
    let mut t = start;
    while t <= hi + step * 1e-9 {
        let r: f64 = format!("{t:.10}").parse().unwrap_or(t);
        v.push(if r.abs() < step * 1e-9 { 0.0 } else { r });
        t += step;
    }
    v
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 1e4 || (v != 0.0 && v.abs() < 1e-3) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        L + (x - self.x0) / (self.x1 - self.x0).max(1e-300) * (W - L - R)
    }
    fn py(&self, y: f64) -> f64 {
        H - B - (y - self.y0) / (self.y1 - self.y0).max(1e-300) * (H - T - B)
    }
}

fn axes(out: &mut String, f: &Frame, title: &str, xl: &str, yl: &str, xticks: bool) {
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="#fff"/><text x="{}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"##,
        W / 2.0,
        esc(title)
    );
    for t in nice_ticks(f.y0, f.y1, 5) {
        let y = f.py(t);
        let _ = write!(
            out,
            r##"<line x1="{L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - R,
            L - 5.0,
            y + 4.0,
            fmt_tick(t)
        );
    }
    if xticks {
        for t in nice_ticks(f.x0, f.x1, 6) {
            let x = f.px(t);
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{T}" y2="{}" stroke="#f0f0f0"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                H - B,
                H - B + 15.0,
                fmt_tick(t)
            );
        }
    }
    let _ = write!(
        out,
        r##"<line x1="{L}" x2="{}" y1="{}" y2="{}" stroke="#333"/><line x1="{L}" x2="{L}" y1="{T}" y2="{}" stroke="#333"/><text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(14,{}) rotate(-90)" text-anchor="middle">{}</text>"##,
        W - R,
        H - B,
        H - B,
        H - B,
        (L + W - R) / 2.0,
        H - 10.0,
        esc(xl),
        (T + H - B) / 2.0,
        esc(yl)
    );
}

fn legend(out: &mut String, names: &[(&str, &str)]) {
    for (k, (name, color)) in names.iter().enumerate() {
        let y = T + 8.0 + 15.0 * k as f64;
        let x = L + 10.0;
        let _ = write!(
            out,
            r##"<rect x="{x}" y="{}" width="12" height="4" fill="{color}"/><text x="{}" y="{}">{}</text>"##,
            y - 4.0,
            x + 16.0,
            y + 1.0,
            esc(name)
        );
    }
}

/// A series of a line chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// Lines on shared axes; ranges from the data unless given.
pub fn line_chart(
    title: &str,
    xl: &str,
    yl: &str,
    series: &[Series],
    xr: Option<(f64, f64)>,
    yr: Option<(f64, f64)>,
) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in all {
        if x.is_finite() && y.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if let Some((a, b)) = xr {
        (x0, x1) = (a, b);
    }
    if let Some((a, b)) = yr {
        (y0, y1) = (a, b);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let f = Frame { x0, x1, y0, y1 };
    let mut out = String::new();
    axes(&mut out, &f, title, xl, yl, true);
    let mut names = Vec::new();
    for (k, s) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        // Thin very long series to at most 400 points.
        let step = (s.points.len() / 400).max(1);
        let mut d = String::new();
        for (i, &(x, y)) in s.points.iter().enumerate() {
            if i % step != 0 && i + 1 != s.points.len() {
                continue;
            }
            if !(x.is_finite() && y.is_finite()) {
                continue;
            }
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if d.is_empty() { "M" } else { " L" },
                f.px(x),
                f.py(y)
            );
        }
        let _ = write!(
            out,
            r##"<path d="{d}" fill="none" stroke="{color}" stroke-width="2"{}/>"##,
            if s.dashed {
                r#" stroke-dasharray="5,4""#
            } else {
                ""
            }
        );
        names.push((s.name, color));
    }
    legend(&mut out, &names);
    out.push_str("</svg>");
    out
}

/// Vertical bars, one group per label, one bar per series.
pub fn bar_chart(
    title: &str,
    xl: &str,
    yl: &str,
    labels: &[String],
    series: &[(&str, Vec<f64>)],
) -> String {
    let vals = series
        .iter()
        .flat_map(|s| s.1.iter())
        .copied()
        .filter(|v| v.is_finite());
    let (mut y0, mut y1) = (0.0f64, 0.0f64);
    for v in vals {
        y0 = y0.min(v);
        y1 = y1.max(v);
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let pad = 0.05 * (y1 - y0);
    let f = Frame {
        x0: 0.0,
        x1: labels.len().max(1) as f64,
        y0: if y0 < 0.0 { y0 - pad } else { 0.0 },
        y1: y1 + pad,
    };
    let mut out = String::new();
    axes(&mut out, &f, title, xl, yl, false);
    let ns = series.len().max(1) as f64;
    let slot = (W - L - R) / labels.len().max(1) as f64;
    let bw = slot * 0.8 / ns;
    for (k, (_, v)) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        for (i, &val) in v.iter().enumerate() {
            if !val.is_finite() {
                continue;
            }
            let x = L + slot * i as f64 + slot * 0.1 + bw * k as f64;
            let (ya, yb) = (f.py(val.max(0.0)), f.py(val.min(0.0)));
            let _ = write!(
                out,
                r##"<rect x="{x:.1}" y="{ya:.1}" width="{bw:.1}" height="{:.1}" fill="{color}"><title>{}: {val:.4}</title></rect>"##,
                (yb - ya).max(0.5),
                esc(&labels[i])
            );
        }
    }
    let every = (labels.len() / 12).max(1);
    for (i, l) in labels.iter().enumerate() {
        if i % every != 0 {
            continue;
        }
        let x = L + slot * (i as f64 + 0.5);
        let short: String = l.chars().take(14).collect();
        let _ = write!(
            out,
            r##"<text x="{x:.1}" y="{}" text-anchor="end" transform="rotate(-30 {x:.1} {})" font-size="9">{}</text>"##,
            H - B + 12.0,
            H - B + 12.0,
            esc(&short)
        );
    }
    if series.len() > 1 {
        let names: Vec<(&str, &str)> = series
            .iter()
            .enumerate()
            .map(|(k, s)| (s.0, PALETTE[k % PALETTE.len()]))
            .collect();
        legend(&mut out, &names);
    }
    out.push_str("</svg>");
    out
}

/// Horizontal bars (feature importance), largest on top.
pub fn hbar_chart(title: &str, items: &[(String, f64)]) -> String {
    let h = 40.0 + 18.0 * items.len().max(1) as f64;
    let max = items.iter().map(|i| i.1).fold(0.0, f64::max).max(1e-300);
    let left = 170.0;
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="{W}" height="{h}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="#fff"/><text x="{}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"##,
        W / 2.0,
        esc(title)
    );
    for (k, (name, v)) in items.iter().enumerate() {
        let y = 32.0 + 18.0 * k as f64;
        let w = (W - left - 60.0) * v / max;
        let short: String = name.chars().take(26).collect();
        let _ = write!(
            out,
            r##"<text x="{}" y="{:.1}" text-anchor="end">{}</text><rect x="{left}" y="{y:.1}" width="{w:.1}" height="13" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"##,
            left - 6.0,
            y + 10.0,
            esc(&short),
            PALETTE[0],
            left + w + 4.0,
            y + 10.0,
            fmt_tick(*v)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg() {
        let s = line_chart(
            "ROC",
            "x",
            "y",
            &[Series {
                name: "a<b",
                points: vec![(0.0, 0.0), (1.0, 1.0)],
                dashed: false,
            }],
            None,
            None,
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>") && s.contains("a&lt;b"));
        let b = bar_chart(
            "Lift",
            "d",
            "l",
            &["1".into(), "2".into()],
            &[("lift", vec![2.0, -0.5])],
        );
        assert_eq!(b.matches("<rect x=").count(), 2);
        assert!(hbar_chart("imp", &[("f".into(), 1.0)]).contains("</svg>"));
        assert_eq!(nice_ticks(0.0, 1.0, 5), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
    }
}

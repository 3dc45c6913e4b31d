//! Report charts, drawn with the `plotters` crate on its SVG backend and returned as inline
//! `<svg>` elements, so a report stays one self-contained HTML file (no scripts, no files).
//!
//! plotters is built without its font features (no font-kit, no system fonts, no bitmap
//! backend): the SVG backend writes `<text>` elements, escaped, and leaves the glyphs to the
//! browser, so text widths used for layout are estimates.

use std::error::Error;
use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Series colours (matplotlib's "tab10" start).
pub(crate) const PALETTE: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x7f, 0x7f, 0x7f),
];
const GRID: RGBColor = RGBColor(0xe5, 0xe5, 0xe5);
const AXIS: RGBColor = RGBColor(0x33, 0x33, 0x33);

const W: u32 = 460;
const H: u32 = 320;
const FONT: &str = "sans-serif";
/// plotters' SVG backend writes `font-size` as size / 1.24: 17 → ~13.7 px, 14 → ~11.3 px.
const TITLE_SIZE: f64 = 17.0;
const TEXT_SIZE: f64 = 14.0;
/// At most this many points of a line are drawn (longer series are thinned evenly).
const MAX_POINTS: usize = 400;

type DrawResult = Result<(), Box<dyn Error>>;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Tick label: at most three decimals, no trailing zeros; scientific for the very large or small.
fn fmt_tick(v: f64) -> String {
    if v.abs() >= 1e7 || (v != 0.0 && v.abs() < 1e-3) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0" } else { s }.to_string()
    }
}

fn text_style(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&AXIS)
}

fn title_style() -> TextStyle<'static> {
    (FONT, TITLE_SIZE)
        .into_font()
        .style(FontStyle::Bold)
        .color(&BLACK)
}

/// First `n` characters of `s`, with an ellipsis when cut.
fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// Width in pixels plotters reckons for `s` in the text font (what its legend box is sized by).
fn plotters_width(s: &str) -> u32 {
    (FONT, TEXT_SIZE)
        .into_font()
        .box_size(s)
        .map(|b| b.0)
        .unwrap_or(8 * s.len() as u32)
}

/// Rough rendered width of `s` in the text font: plotters counts bytes, which overstates
/// non-ASCII text (a CJK province name three times); here wide scripts count a full em and
/// the rest 0.6 em.
fn text_width(s: &str) -> u32 {
    let em = TEXT_SIZE / 1.24;
    let w: f64 = s
        .chars()
        .map(|c| if u32::from(c) >= 0x2E80 { em } else { 0.6 * em })
        .sum();
    w.ceil() as u32
}

/// Draws on a white `w`×`h` SVG canvas; a drawing error becomes a chart that says so.
fn render(
    w: u32,
    h: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> DrawResult,
) -> String {
    let mut buf = String::new();
    let res = {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        let res = root
            .fill(&WHITE)
            .map_err(Box::<dyn Error>::from)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Box::<dyn Error>::from));
        res.map_err(|e| e.to_string())
    };
    match res {
        Ok(()) => buf,
        Err(e) => format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}"><text x="10" y="20" font-family="{FONT}" font-size="12">chart not drawn: {}</text></svg>"##,
            esc(&e)
        ),
    }
}

/// Which corner of the plot holds the legend: the first of upper right, upper left, lower
/// right, lower left whose box (`size`, as shares of the plot) covers the fewest of the
/// `occupied` points (plot shares, y up).
fn legend_corner(occupied: &[(f64, f64)], size: (f64, f64)) -> SeriesLabelPosition {
    let (bw, bh) = (size.0.min(1.0), size.1.min(1.0));
    let corners = [
        (SeriesLabelPosition::UpperRight, 1.0 - bw, 1.0 - bh),
        (SeriesLabelPosition::UpperLeft, 0.0, 1.0 - bh),
        (SeriesLabelPosition::LowerRight, 1.0 - bw, 0.0),
        (SeriesLabelPosition::LowerLeft, 0.0, 0.0),
    ];
    let mut best = (SeriesLabelPosition::UpperRight, usize::MAX);
    for (pos, x0, y0) in corners {
        let hits = occupied
            .iter()
            .filter(|&&(x, y)| x >= x0 && x <= x0 + bw && y >= y0 && y <= y0 + bh)
            .count();
        if hits < best.1 {
            best = (pos, hits);
        }
    }
    best.0
}

/// Draws the legend of the labelled series in the emptiest corner of the plot.
fn draw_legend<'a, 'b: 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    names: &[&str],
    occupied: &[(f64, f64)],
) -> DrawResult {
    const MARGIN: u32 = 6;
    const SAMPLE: u32 = 26;
    let (pw, ph) = chart.plotting_area().dim_in_pixel();
    let widest = names.iter().map(|n| plotters_width(n)).max().unwrap_or(0);
    let bw = widest + SAMPLE + 2 * MARGIN + 5;
    let bh = (TEXT_SIZE * 1.25 * names.len() as f64) as u32 + 2 * MARGIN + 5;
    let pos = legend_corner(
        occupied,
        (
            f64::from(bw) / f64::from(pw.max(1)),
            f64::from(bh) / f64::from(ph.max(1)),
        ),
    );
    chart
        .configure_series_labels()
        .position(pos)
        .margin(MARGIN)
        .legend_area_size(SAMPLE)
        .label_font(text_style(TEXT_SIZE))
        .background_style(WHITE.mix(0.85))
        .border_style(GRID.stroke_width(1))
        .draw()?;
    Ok(())
}

/// A category axis: `n` slots of width 1 on `0..n`, one tick at the centre of each.
struct Slots(usize);

impl Ranged for Slots {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let share = v / self.0.max(1) as f64;
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        (0..self.0).map(|i| i as f64 + 0.5).collect()
    }

    fn range(&self) -> Range<f64> {
        0.0..self.0.max(1) as f64
    }
}

/// A series of a line chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// The finite points of a series, evenly thinned to at most [`MAX_POINTS`] (last one kept).
fn thinned(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let step = points.len().div_ceil(MAX_POINTS).max(1);
    points
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || i + 1 == points.len())
        .map(|(_, p)| *p)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// Lines on shared axes, ranges from the data unless given; a legend when there are several.
pub fn line_chart(
    title: &str,
    xl: &str,
    yl: &str,
    series: &[Series],
    xr: Option<(f64, f64)>,
    yr: Option<(f64, f64)>,
) -> String {
    let lines: Vec<Vec<(f64, f64)>> = series.iter().map(|s| thinned(&s.points)).collect();
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in lines.iter().flatten() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if let Some((a, b)) = xr {
        (x0, x1) = (a, b);
    }
    if let Some((a, b)) = yr {
        (y0, y1) = (a, b);
    } else {
        let pad = 0.04 * (y1 - y0);
        (y0, y1) = (y0 - pad, y1 + pad);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    render(W, H, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, title_style())
            .margin(8)
            .margin_right(18)
            .x_label_area_size(44)
            .y_label_area_size(58)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(xl)
            .y_desc(yl)
            .x_labels(7)
            .y_labels(6)
            .x_label_formatter(&|v| fmt_tick(*v))
            .y_label_formatter(&|v| fmt_tick(*v))
            .label_style(text_style(TEXT_SIZE))
            .axis_desc_style(text_style(TEXT_SIZE))
            .axis_style(AXIS)
            .bold_line_style(GRID)
            .max_light_lines(0)
            .draw()?;
        let mut occupied = Vec::new();
        for (k, (s, pts)) in series.iter().zip(&lines).enumerate() {
            let style = PALETTE[k % PALETTE.len()].stroke_width(2);
            let anno = if s.dashed {
                chart.draw_series(DashedLineSeries::new(pts.iter().copied(), 6, 4, style))?
            } else {
                chart.draw_series(LineSeries::new(pts.iter().copied(), style))?
            };
            let dashed = s.dashed;
            anno.label(s.name).legend(move |(x, y)| {
                let sample = vec![(x, y), (x + 20, y)];
                if dashed {
                    DashedPathElement::new(sample, 5, 3, style).into_dyn()
                } else {
                    PathElement::new(sample, style).into_dyn()
                }
            });
            // Where the line runs, as plot shares, for placing the legend.
            for w in pts.windows(2) {
                for t in 0..8 {
                    let f = f64::from(t) / 8.0;
                    let (x, y) = (
                        w[0].0 + f * (w[1].0 - w[0].0),
                        w[0].1 + f * (w[1].1 - w[0].1),
                    );
                    occupied.push(((x - x0) / (x1 - x0), (y - y0) / (y1 - y0)));
                }
            }
            occupied.extend(
                pts.iter()
                    .map(|&(x, y)| ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0))),
            );
        }
        if series.len() > 1 {
            let names: Vec<&str> = series.iter().map(|s| s.name).collect();
            draw_legend(&mut chart, &names, &occupied)?;
        }
        Ok(())
    })
}

/// Vertical bars, one group per label, one bar per series; a legend when there are several.
/// Labels that do not fit under their group are written vertically.
pub fn bar_chart(
    title: &str,
    xl: &str,
    yl: &str,
    labels: &[String],
    series: &[(&str, Vec<f64>)],
) -> String {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for &v in series.iter().flat_map(|s| s.1.iter()) {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    let pad = 0.05 * (hi - lo);
    let (y0, y1) = (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad);
    let n = labels.len().max(1);
    let shown: Vec<String> = labels.iter().map(|l| shorten(l, 16)).collect();
    // Every label if they fit side by side (at most 24 are written), else vertical text.
    let every = labels.len().div_ceil(24).max(1);
    let slot = f64::from(W - 58 - 8 - 18) / n as f64 * every as f64;
    let widest = shown.iter().map(|l| text_width(l)).max().unwrap_or(0);
    let vertical = f64::from(widest) + 6.0 > slot;
    let label_area = if vertical { widest + 36 } else { 44 };
    let h = H - 44 + label_area;
    let ns = series.len().max(1) as f64;
    render(W, h, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, title_style())
            .margin(8)
            .margin_right(18)
            .x_label_area_size(label_area)
            .y_label_area_size(58)
            .build_cartesian_2d(Slots(labels.len()), y0..y1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(xl)
            .y_desc(yl)
            .y_labels(6)
            // Category names are drawn below, so that long ones can stand vertically; the
            // mesh draws only the ticks.
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&|v| fmt_tick(*v))
            .label_style(text_style(TEXT_SIZE))
            .x_label_style(text_style(TEXT_SIZE).color(&TRANSPARENT))
            .axis_desc_style(text_style(TEXT_SIZE))
            .axis_style(AXIS)
            .bold_line_style(GRID)
            .max_light_lines(0)
            .draw()?;
        let mut occupied = Vec::new();
        let bw = 0.8 / ns;
        for (k, (name, vals)) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let bars: Vec<(f64, f64, f64)> = vals
                .iter()
                .enumerate()
                .filter(|(i, v)| *i < labels.len() && v.is_finite())
                .map(|(i, &v)| (i as f64 + 0.1 + bw * k as f64, v.min(0.0), v.max(0.0)))
                .collect();
            chart
                .draw_series(
                    bars.iter()
                        .map(|&(x, a, b)| Rectangle::new([(x, a), (x + bw, b)], color.filled())),
                )?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
            for &(x, a, b) in &bars {
                for i in 0..=4 {
                    for j in 0..=8 {
                        let px = x + bw * f64::from(i) / 4.0;
                        let py = a + (b - a) * f64::from(j) / 8.0;
                        occupied.push((px / n as f64, (py - y0) / (y1 - y0)));
                    }
                }
            }
        }
        if y0 < 0.0 {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 0.0), (n as f64, 0.0)],
                AXIS.stroke_width(1),
            )))?;
        }
        let (vertical_style, flat_style) = (
            text_style(TEXT_SIZE)
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Right, VPos::Center)),
            text_style(TEXT_SIZE).pos(Pos::new(HPos::Center, VPos::Top)),
        );
        for (i, l) in shown.iter().enumerate().step_by(every) {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, y0));
            if vertical {
                root.draw(&Text::new(l.as_str(), (x, y + 8), vertical_style.clone()))?;
            } else {
                root.draw(&Text::new(l.as_str(), (x, y + 8), flat_style.clone()))?;
            }
        }
        if series.len() > 1 {
            let names: Vec<&str> = series.iter().map(|s| s.0).collect();
            draw_legend(&mut chart, &names, &occupied)?;
        }
        Ok(())
    })
}

/// Horizontal bars, first item on top, each with its value; `xl` names the value axis.
pub fn hbar_chart(title: &str, xl: &str, items: &[(String, f64)]) -> String {
    let n = items.len().max(1);
    let h = 100 + 20 * n as u32;
    let max = items
        .iter()
        .map(|i| i.1)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let names: Vec<String> = items.iter().map(|i| shorten(&i.0, 26)).collect();
    let left = names.iter().map(|s| text_width(s)).max().unwrap_or(0) + 16;
    // Item k sits at height n - k - 0.5, so the first one is on top.
    let row = |y: f64| n.checked_sub(y.floor() as usize + 1);
    render(W, h, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, title_style())
            .margin(8)
            .margin_right(18)
            .x_label_area_size(44)
            .y_label_area_size(left.clamp(40, 200))
            .build_cartesian_2d(0.0..max * 1.18, Slots(items.len()))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(xl)
            .x_labels(6)
            .x_label_formatter(&|v| fmt_tick(*v))
            .y_label_formatter(&|v| {
                row(*v)
                    .and_then(|k| names.get(k))
                    .cloned()
                    .unwrap_or_default()
            })
            .label_style(text_style(TEXT_SIZE))
            .axis_desc_style(text_style(TEXT_SIZE))
            .axis_style(AXIS)
            .bold_line_style(GRID)
            .max_light_lines(0)
            .draw()?;
        let bars: Vec<(f64, f64)> = items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.1.is_finite())
            .map(|(k, i)| ((n - k) as f64 - 0.5, i.1.max(0.0)))
            .collect();
        chart.draw_series(bars.iter().map(|&(c, v)| {
            Rectangle::new([(0.0, c - 0.35), (v, c + 0.35)], PALETTE[0].filled())
        }))?;
        let value_style = text_style(TEXT_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series(bars.iter().map(|&(c, v)| {
            EmptyElement::at((v, c)) + Text::new(fmt_tick(v), (4, 0), value_style.clone())
        }))?;
        Ok(())
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// (stroke colour, number of points) of every `<polyline>` in `svg`.
    pub(crate) fn polylines(svg: &str) -> Vec<(String, usize)> {
        svg.split("<polyline")
            .skip(1)
            .map(|p| {
                let tag = &p[..p.find("/>").unwrap()];
                let attr = |name: &str| {
                    let i = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
                    tag[i..i + tag[i..].find('"').unwrap()].to_string()
                };
                (attr("stroke"), attr("points").split_whitespace().count())
            })
            .collect()
    }

    /// The text content of every `<text>` element.
    pub(crate) fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .map(|t| {
                let body = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
                body.trim().to_string()
            })
            .collect()
    }

    pub(crate) fn hex(c: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
    }

    #[test]
    fn line_chart_draws_axes_ticks_one_line_per_series_and_a_legend() {
        let s = line_chart(
            "ROC (test AUC 0.812)",
            "false positive rate",
            "true positive rate",
            &[
                Series {
                    name: "model",
                    points: vec![(0.0, 0.0), (0.1, 0.5), (0.4, 0.8), (1.0, 1.0)],
                    dashed: false,
                },
                Series {
                    name: "other",
                    points: vec![(0.0, 0.0), (0.5, 0.6), (f64::NAN, 1.0), (1.0, 1.0)],
                    dashed: false,
                },
                Series {
                    name: "random",
                    points: vec![(0.0, 0.0), (1.0, 1.0)],
                    dashed: true,
                },
            ],
            Some((0.0, 1.0)),
            Some((0.0, 1.0)),
        );
        assert!(
            s.starts_with("<svg") && s.trim_end().ends_with("</svg>"),
            "{s}"
        );
        let t = texts(&s);
        for want in [
            "ROC (test AUC 0.812)",
            "false positive rate",
            "true positive rate",
            "model",
            "other",
            "random",
            "0",
            "0.4",
            "1",
        ] {
            assert!(t.iter().any(|x| x == want), "no text {want:?} in {t:?}");
        }
        // The y description stands vertically.
        assert!(s.contains("rotate(270"), "{s}");
        let lines = polylines(&s);
        // One line per solid series with all its finite points, plus its legend sample.
        let blue: Vec<usize> = lines
            .iter()
            .filter(|l| l.0 == hex(PALETTE[0]))
            .map(|l| l.1)
            .collect();
        assert_eq!(blue, vec![4, 2], "{lines:?}");
        let red: Vec<usize> = lines
            .iter()
            .filter(|l| l.0 == hex(PALETTE[1]))
            .map(|l| l.1)
            .collect();
        assert_eq!(red, vec![3, 2], "{lines:?}");
        // The dashed one is drawn as many dashes.
        assert!(lines.iter().filter(|l| l.0 == hex(PALETTE[2])).count() > 10);
    }

    #[test]
    fn a_single_line_has_no_legend_and_long_series_are_thinned() {
        let pts: Vec<(f64, f64)> = (0..5000).map(|i| (i as f64, (i as f64).sqrt())).collect();
        let s = line_chart(
            "t",
            "x",
            "y",
            &[Series {
                name: "only",
                points: pts,
                dashed: false,
            }],
            None,
            None,
        );
        let lines: Vec<_> = polylines(&s)
            .into_iter()
            .filter(|l| l.0 != hex(AXIS))
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].1 <= MAX_POINTS + 1 && lines[0].1 > MAX_POINTS / 2);
        assert!(!texts(&s).contains(&"only".to_string()));
        // Ticks of a data range in the thousands.
        assert!(texts(&s).iter().any(|t| t == "1000" || t == "2000"), "{s}");
    }

    #[test]
    fn hostile_labels_are_escaped() {
        let evil = r#"<script>alert("x")</script> & co"#;
        let s = line_chart(
            evil,
            evil,
            evil,
            &[
                Series {
                    name: evil,
                    points: vec![(0.0, 0.0), (1.0, 1.0)],
                    dashed: false,
                },
                Series {
                    name: "b",
                    points: vec![(0.0, 1.0), (1.0, 0.0)],
                    dashed: false,
                },
            ],
            None,
            None,
        );
        let b = bar_chart(evil, evil, evil, &[evil.to_string()], &[(evil, vec![1.0])]);
        let hb = hbar_chart(evil, evil, &[(evil.to_string(), 1.0)]);
        for svg in [&s, &b, &hb] {
            assert!(!svg.contains("<script"), "{svg}");
            assert!(svg.contains("&lt;script&gt;alert(&quot;x&quot;)"), "{svg}");
        }
        assert_eq!(esc(r#"<a href="x">&"#), "&lt;a href=&quot;x&quot;&gt;&amp;");
    }

    #[test]
    fn bar_chart_draws_one_bar_per_finite_value_and_category_labels() {
        let labels: Vec<String> = (1..=4).map(|d| d.to_string()).collect();
        let b = bar_chart(
            "Lift",
            "decile",
            "lift / gain",
            &labels,
            &[
                ("lift", vec![2.5, 1.2, f64::NAN, -0.5]),
                ("cumulative gain", vec![0.3, 0.6, 0.9, 1.0]),
            ],
        );
        let bars = |c: RGBColor| b.matches(&format!(r#"fill="{}""#, hex(c))).count();
        // The bars, plus one sample each in the legend.
        assert_eq!(bars(PALETTE[0]), 3 + 1, "{b}");
        assert_eq!(bars(PALETTE[1]), 4 + 1, "{b}");
        let t = texts(&b);
        for want in [
            "Lift",
            "decile",
            "lift / gain",
            "lift",
            "cumulative gain",
            "1",
            "4",
            "2",
        ] {
            assert!(t.iter().any(|x| x == want), "no text {want:?} in {t:?}");
        }
        // The mesh writes no (empty) labels of its own under the bars.
        assert!(t.iter().all(|x| !x.is_empty()), "{t:?}");
        // Short labels stay horizontal: the only rotated text is the y description.
        assert_eq!(b.matches("rotate(").count(), 1, "{b}");
    }

    #[test]
    fn long_category_labels_stand_vertically_and_a_single_series_has_no_legend() {
        let labels: Vec<String> = (0..8).map(|i| format!("[{i}.5, {}.25)", i + 1)).collect();
        let b = bar_chart(
            "WoE per bin: x (IV 0.2)",
            "bin",
            "WoE",
            &labels,
            &[("WoE", vec![0.5, -0.2, 0.1, 0.3, -0.6, 0.0, 0.2, 0.4])],
        );
        assert_eq!(b.matches("rotate(270").count(), 1 + labels.len(), "{b}");
        let t = texts(&b);
        assert!(labels.iter().all(|l| t.contains(l)), "{t:?}");
        assert!(!t.contains(&"WoE".to_string()) || t.iter().filter(|x| *x == "WoE").count() == 1);
    }

    #[test]
    fn hbar_chart_puts_the_first_item_on_top_with_its_value() {
        let items = vec![("income".to_string(), 0.5), ("age".to_string(), 0.25)];
        let s = hbar_chart("Feature importance (share)", "share", &items);
        let t = texts(&s);
        for want in [
            "Feature importance (share)",
            "share",
            "income",
            "age",
            "0.5",
            "0.25",
        ] {
            assert!(t.iter().any(|x| x == want), "no text {want:?} in {t:?}");
        }
        let y_of = |label: &str| {
            let i = s.find(&format!(">\n{label}\n</text>")).unwrap();
            let tag = &s[s[..i].rfind("<text").unwrap()..i];
            let y = tag.find(" y=\"").unwrap() + 4;
            tag[y..y + tag[y..].find('"').unwrap()]
                .parse::<i32>()
                .unwrap()
        };
        assert!(y_of("income") < y_of("age"));
        assert_eq!(
            s.matches(&format!(r#"fill="{}""#, hex(PALETTE[0]))).count(),
            2
        );
    }

    #[test]
    fn empty_inputs_still_make_a_chart() {
        for s in [
            line_chart("empty", "x", "y", &[], None, None),
            bar_chart("empty", "x", "y", &[], &[]),
            hbar_chart("empty", "x", &[]),
        ] {
            assert!(s.starts_with("<svg") && s.contains("empty") && !s.contains("not drawn"));
        }
    }

    #[test]
    fn the_legend_goes_where_the_data_is_not() {
        // A steep ROC curve along the top, and the diagonal.
        let roc: Vec<(f64, f64)> = (0..=40)
            .map(|i| f64::from(i) / 40.0)
            .flat_map(|x| [(x, 1.0 - (1.0 - x).powi(4)), (x, x)])
            .collect();
        assert_eq!(
            legend_corner(&roc, (0.45, 0.3)),
            SeriesLabelPosition::LowerRight
        );
        // Bars high on the left.
        let bars: Vec<(f64, f64)> = (0..10)
            .flat_map(|i| {
                (0..=10).map(move |j| {
                    (
                        f64::from(i) / 10.0,
                        f64::from(j) * f64::from(10 - i) / 100.0,
                    )
                })
            })
            .collect();
        assert_eq!(
            legend_corner(&bars, (0.3, 0.2)),
            SeriesLabelPosition::UpperRight
        );
        assert_eq!(
            legend_corner(&[], (0.3, 0.2)),
            SeriesLabelPosition::UpperRight
        );
        assert_eq!(fmt_tick(0.25), "0.25");
        assert!(text_width("江苏省") > text_width("abc") && text_width("江苏省") < 40);
        assert_eq!(fmt_tick(-0.0), "0");
        assert_eq!(fmt_tick(250000.0), "250000");
        assert_eq!(fmt_tick(2.5e7), "2.5e7");
        assert_eq!(fmt_tick(0.0004), "4.0e-4");
    }
}

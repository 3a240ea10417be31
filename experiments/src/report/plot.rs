//! Figures as SVG with plotters' SVG backend: text is written as SVG `<text>`, so no system fonts are
//! needed and figures look the same on every machine.
//!
//! One style for every experiment:
//! * colours from Okabe & Ito's palette, which stays distinguishable with the common colour-vision
//!   deficiencies (a ninth series and later reuse the colours with triangle markers);
//! * the legend in its own panel right of the data, so it never hides a curve;
//! * axis ranges from the data: 5 % padding, never below zero when no value is negative, a sensible span
//!   around a single value;
//! * a logarithmic y axis, with 1–2–5 ticks, when the positive values span more than 1.5 decades (FID,
//!   losses, times to fit);
//! * tick labels that print integers as integers and never "-0".
//!
//! Units belong in the axis labels the callers pass ("PSNR (dB)", "ε (L∞, 0–255 scale)").

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One named curve of `(x, y)` points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Okabe & Ito (2008), "Color universal design": eight colours told apart with protanopia, deuteranopia
/// and tritanopia; yellow last, as it is faint on white.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

const FONT: &str = "sans-serif";
const GRID: RGBColor = RGBColor(232, 232, 232);

fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("plot: {e}")
}

/// A line chart with markers on every point, written atomically to `path` (SVG).
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let mark = Mark::Lines {
        markers_up_to: usize::MAX,
    };
    draw_xy(path, title, x_label, y_label, series, (760, 460), mark)
}

/// A line chart for many or long curves (training curves): markers only on series of at most 12 points.
/// Written atomically to `path` (SVG).
pub fn curve_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let mark = Mark::Lines { markers_up_to: 12 };
    draw_xy(path, title, x_label, y_label, series, (800, 480), mark)
}

/// A scatter chart (markers only, one colour per series), written atomically to `path` (SVG).
pub fn scatter_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    draw_xy(
        path,
        title,
        x_label,
        y_label,
        series,
        (800, 480),
        Mark::Points,
    )
}

/// One named group of bars (one value per category) for [`bar_chart`].
pub struct BarGroup {
    pub name: String,
    pub values: Vec<f64>,
}

/// A grouped bar chart (one cluster per category, one coloured bar per group, legend beside it), written
/// atomically to `path` (SVG). Used for mean relative living times as in the Geometry Score paper.
pub fn bar_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    categories: &[String],
    groups: &[BarGroup],
) -> Result<()> {
    let size = (760u32, 460u32);
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let body = root.titled(title, (FONT, 18)).map_err(plot_err)?;
        let (plot_area, legend_area) = body.split_horizontally(plot_width(size.0, &names));
        let y_max = groups
            .iter()
            .flat_map(|g| g.values.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-12)
            * 1.1;
        let n_cat = categories.len().max(1);
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5f64..(n_cat as f64 - 0.5), 0f64..y_max)
            .map_err(plot_err)?;
        let labels: Vec<String> = categories.to_vec();
        let category = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let value = |v: &f64| tick_label(*v);
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_labels(n_cat)
            .x_label_formatter(&category)
            .y_label_formatter(&value)
            .disable_x_mesh()
            .light_line_style(GRID)
            .max_light_lines(1)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(plot_err)?;
        let k = groups.len().max(1) as f64;
        let width = 0.8 / k;
        for (gi, g) in groups.iter().enumerate() {
            let color = PALETTE[gi % PALETTE.len()];
            let left = -0.4 + gi as f64 * width;
            chart
                .draw_series(
                    g.values
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(ci, &v)| {
                            let x0 = ci as f64 + left;
                            Rectangle::new([(x0, 0.0), (x0 + width, v)], color.mix(0.85).filled())
                        }),
                )
                .map_err(plot_err)?;
        }
        draw_legend(&legend_area, &names, Swatch::Box)?;
        root.present().map_err(plot_err)?;
    }
    nn_core::checkpoint::write_atomic(path, svg.as_bytes())?;
    Ok(())
}

/// How the series of an x–y chart are drawn.
#[derive(Clone, Copy)]
enum Mark {
    /// Lines, with point markers on series of at most this many points.
    Lines { markers_up_to: usize },
    /// Markers only.
    Points,
}

/// The legend's swatch for one entry.
#[derive(Clone, Copy)]
enum Swatch {
    Line,
    Dot,
    Box,
}

/// The points of `s` with both coordinates finite.
fn finite_points(s: &Series) -> impl Iterator<Item = (f64, f64)> + '_ {
    s.points
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
}

/// The smallest and largest finite value, or `None`.
fn finite_min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// A linear axis range for `values`: 5 % padding on both sides; one distinct value gets ±25 % of itself
/// (±1 at zero); the range never goes below zero when no value does.
fn linear_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let Some((lo, hi)) = finite_min_max(values) else {
        return (0.0, 1.0);
    };
    let (mut a, b) = if hi - lo <= 1e-12 * hi.abs().max(1.0) {
        let pad = if lo == 0.0 { 1.0 } else { 0.25 * lo.abs() };
        (lo - pad, hi + pad)
    } else {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    };
    if lo >= 0.0 && a < 0.0 {
        a = 0.0;
    }
    (a, b)
}

/// Whether the y axis should be logarithmic: every finite value positive, and the largest more than
/// 10^1.5 ≈ 32 times the smallest.
fn wants_log_axis(values: impl Iterator<Item = f64>) -> bool {
    let mut any = false;
    let mut lo = f64::INFINITY;
    let mut hi = 0.0f64;
    for v in values.filter(|v| v.is_finite()) {
        if v <= 0.0 {
            return false;
        }
        any = true;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    any && hi / lo > 10f64.powf(1.5)
}

/// The range, in log10 units, of a logarithmic axis over the positive values `lo..=hi`: 5 % of the span
/// (at least 0.05 decades) on both sides.
fn log_range(lo: f64, hi: f64) -> (f64, f64) {
    let (a, b) = (lo.log10(), hi.log10());
    let pad = (0.05 * (b - a)).max(0.05);
    (a - pad, b + pad)
}

/// Tick values 1–2–5 (or finer, or whole decades) times powers of ten within `10^a ..= 10^b`.
fn log_ticks(a: f64, b: f64) -> Vec<f64> {
    let decades = b - a;
    let mults: &[f64] = if decades <= 1.2 {
        &[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0]
    } else if decades <= 3.5 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let step = if decades > 10.0 { 2 } else { 1 };
    let mut out = Vec::new();
    let mut k = a.floor() as i32;
    while (k as f64) <= b.ceil() {
        for &m in mults {
            let l = (m * 10f64.powi(k)).log10();
            if l >= a - 1e-9 && l <= b + 1e-9 {
                out.push(m * 10f64.powi(k));
            }
        }
        k += step;
    }
    out
}

/// A tick label: integers as integers, otherwise four significant digits without trailing zeros, and
/// scientific notation for very large or small magnitudes; never "-0".
fn tick_label(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let a = v.abs();
    if a < 1e-12 {
        return "0".into();
    }
    if a < 1e7 && (v - v.round()).abs() <= 1e-9 * a.max(1.0) {
        return format!("{}", v.round() as i64);
    }
    if !(1e-3..1e7).contains(&a) {
        return format!("{v:.1e}");
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

/// Width of the plot panel: the canvas less the legend panel, which is as wide as the longest name needs
/// (none without names).
fn plot_width(canvas_width: u32, names: &[&str]) -> i32 {
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    if longest == 0 {
        return canvas_width as i32;
    }
    let legend = (44 + 7 * longest as u32).clamp(110, 320);
    (canvas_width - legend.min(canvas_width / 2)) as i32
}

/// The legend: one swatch and name per entry, top to bottom, in the panel `area`.
fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    names: &[&str],
    swatch: Swatch,
) -> Result<()> {
    let text = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, name) in names.iter().enumerate() {
        let y = 36 + 20 * i as i32;
        let color = PALETTE[i % PALETTE.len()];
        match swatch {
            Swatch::Line => area.draw(&PathElement::new(
                vec![(6, y), (30, y)],
                color.stroke_width(2),
            )),
            Swatch::Dot => area.draw(&Circle::new((18, y), 5, color.filled())),
            Swatch::Box => area.draw(&Rectangle::new([(8, y - 6), (28, y + 6)], color.filled())),
        }
        .map_err(plot_err)?;
        if i >= PALETTE.len() && !matches!(swatch, Swatch::Box) {
            area.draw(&TriangleMarker::new((18, y), 5, color.filled()))
                .map_err(plot_err)?;
        }
        area.draw(&Text::new(name.to_string(), (36, y), text.clone()))
            .map_err(plot_err)?;
    }
    Ok(())
}

type XyChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Grid lines and labels of a logarithmic y axis whose chart coordinates are log10 values `a..b`.
fn draw_log_ticks(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    chart: &mut XyChart<'_, '_>,
    (x0, x1): (f64, f64),
    (a, b): (f64, f64),
) -> Result<()> {
    let text = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for t in log_ticks(a, b) {
        let l = t.log10();
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x0, l), (x1, l)],
                GRID.stroke_width(1),
            )))
            .map_err(plot_err)?;
        let (px, py) = chart.backend_coord(&(x0, l));
        root.draw(&PathElement::new(
            vec![(px - 5, py), (px, py)],
            BLACK.stroke_width(1),
        ))
        .map_err(plot_err)?;
        root.draw(&Text::new(tick_label(t), (px - 8, py), text.clone()))
            .map_err(plot_err)?;
    }
    Ok(())
}

/// The frame every x–y chart shares: the title across the top, the legend panel on the right, axes
/// spanning the finite points of all series (log y when the values span decades), each series drawn by
/// `mark` in its palette colour, and the SVG written atomically to `path`.
fn draw_xy(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    size: (u32, u32),
    mark: Mark,
) -> Result<()> {
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    let all = || series.iter().flat_map(finite_points);
    let log = wants_log_axis(all().map(|p| p.1));
    let (x0, x1) = linear_range(all().map(|p| p.0));
    let (y0, y1) = if log {
        let (lo, hi) = finite_min_max(all().map(|p| p.1)).unwrap_or((1.0, 10.0));
        log_range(lo, hi)
    } else {
        linear_range(all().map(|p| p.1))
    };
    let to_y = |y: f64| if log { y.log10() } else { y };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let body = root.titled(title, (FONT, 18)).map_err(plot_err)?;
        let (plot_area, legend_area) = body.split_horizontally(plot_width(size.0, &names));
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(plot_err)?;
        let fmt = |v: &f64| tick_label(*v);
        {
            let mut mesh = chart.configure_mesh();
            mesh.x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&fmt)
                .y_label_formatter(&fmt)
                .light_line_style(GRID)
                .max_light_lines(1)
                .label_style((FONT, 13))
                .axis_desc_style((FONT, 14));
            if log {
                mesh.y_labels(0).disable_y_mesh();
            }
            mesh.draw().map_err(plot_err)?;
        }
        if log {
            draw_log_ticks(&root, &mut chart, (x0, x1), (y0, y1))?;
        }
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points: Vec<(f64, f64)> = finite_points(s).map(|(x, y)| (x, to_y(y))).collect();
            match mark {
                Mark::Lines { markers_up_to } => {
                    chart
                        .draw_series(LineSeries::new(
                            points.iter().copied(),
                            color.stroke_width(2),
                        ))
                        .map_err(plot_err)?;
                    if i >= PALETTE.len() {
                        // A reused colour: triangles on (at most ~12 of) its points tell it apart.
                        let every = (points.len() / 12).max(1);
                        chart
                            .draw_series(
                                points
                                    .iter()
                                    .step_by(every)
                                    .map(|&p| TriangleMarker::new(p, 5, color.filled())),
                            )
                            .map_err(plot_err)?;
                    } else if points.len() <= markers_up_to {
                        chart
                            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                            .map_err(plot_err)?;
                    }
                }
                Mark::Points => {
                    chart
                        .draw_series(points.iter().map(|&p| Circle::new(p, 5, color.filled())))
                        .map_err(plot_err)?;
                }
            }
        }
        let swatch = match mark {
            Mark::Lines { .. } => Swatch::Line,
            Mark::Points => Swatch::Dot,
        };
        draw_legend(&legend_area, &names, swatch)?;
        root.present().map_err(plot_err)?;
    }
    nn_core::checkpoint::write_atomic(path, svg.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svg_of(series: &[Series], title: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.svg");
        line_chart(&path, title, "iteration", "FID", series).unwrap();
        std::fs::read_to_string(&path).unwrap()
    }

    #[test]
    fn writes_an_svg_with_labels() {
        let s = Series {
            name: "lenet".into(),
            points: vec![(1.0, 0.9), (2.0, 0.95), (3.0, 0.97)],
        };
        let text = svg_of(&[s], "Test accuracy");
        assert!(text.starts_with("<svg"));
        assert!(text.contains("Test accuracy") && text.contains("lenet"));
    }

    #[test]
    fn ranges_stay_non_negative_and_pad_a_single_value() {
        // One ε of 0.2: no negative budget on the axis.
        let (a, b) = linear_range([0.2].into_iter());
        assert!(
            (a - 0.15).abs() < 1e-12 && (b - 0.25).abs() < 1e-12,
            "{a} {b}"
        );
        assert_eq!(linear_range([0.0, 0.0].into_iter()), (0.0, 1.0));
        let (a, b) = linear_range([0.0, 10.0].into_iter());
        assert_eq!((a, b), (0.0, 10.5));
        let (a, _) = linear_range([-1.0, 1.0].into_iter());
        assert!(a < -1.0);
        assert_eq!(linear_range([f64::NAN].into_iter()), (0.0, 1.0));
    }

    #[test]
    fn log_axis_only_for_positive_values_spanning_decades() {
        assert!(wants_log_axis([7.0, 13.0, 60.0, 480.0].into_iter()));
        assert!(!wants_log_axis([0.9, 0.95, 0.99].into_iter()));
        assert!(!wants_log_axis([0.0, 10.0, 1000.0].into_iter()));
        assert!(!wants_log_axis([f64::NAN].into_iter()));
        let (a, b) = log_range(7.0, 480.0);
        assert_eq!(log_ticks(a, b), vec![10.0, 20.0, 50.0, 100.0, 200.0, 500.0]);
    }

    #[test]
    fn tick_labels_print_integers_as_integers() {
        assert_eq!(tick_label(200.0), "200");
        assert_eq!(tick_label(-0.0), "0");
        assert_eq!(tick_label(-1e-17), "0");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(0.1 + 0.2), "0.3");
        assert_eq!(tick_label(12.3456), "12.35");
        assert_eq!(tick_label(1500.0), "1500");
        assert_eq!(tick_label(2.5e-5), "2.5e-5");
    }

    #[test]
    fn wide_fid_curves_get_a_log_axis_and_the_legend_its_own_panel() {
        let series = vec![
            Series {
                name: "WGAN-GP".into(),
                points: vec![(0.0, 480.0), (1000.0, 40.0), (2000.0, 7.0)],
            },
            Series {
                name: "GAN".into(),
                points: vec![(0.0, 470.0), (1000.0, 60.0), (2000.0, 13.0)],
            },
        ];
        let text = svg_of(&series, "FID per iteration");
        // (x, content) of every SVG text element.
        let texts: Vec<(f64, String)> = text
            .split("<text ")
            .skip(1)
            .map(|t| {
                let x = t.split("x=\"").nth(1).unwrap();
                let x: f64 = x[..x.find('"').unwrap()].parse().unwrap();
                let body = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
                (x, body.trim().to_string())
            })
            .collect();
        let has = |s: &str| texts.iter().any(|(_, t)| t == s);
        // 1–2–5 ticks of the log axis, and no integer printed as a float.
        for tick in ["10", "20", "50", "100", "200"] {
            assert!(has(tick), "missing tick {tick}: {texts:?}");
        }
        assert!(
            !texts.iter().any(|(_, t)| t.ends_with(".0")),
            "a tick printed as a float: {texts:?}"
        );
        // The legend's names sit right of the plot panel.
        let plot_right = plot_width(760, &["WGAN-GP", "GAN"]) as f64;
        for name in ["WGAN-GP", "GAN"] {
            let (x, _) = texts.iter().find(|(_, t)| t == name).unwrap();
            assert!(
                *x >= plot_right,
                "legend entry {name} at x = {x}, plot ends at {plot_right}"
            );
        }
    }
}

//! Figures as SVG with plotters' SVG backend: text is written as SVG `<text>`, so no system fonts are
//! needed and figures look the same on every machine.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// One named curve of `(x, y)` points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

/// A line chart with markers, written atomically to `path` (SVG).
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let style = CurveStyle {
        size: (720, 460),
        caption_size: 20,
        legend: SeriesLabelPosition::LowerRight,
        markers_up_to: usize::MAX,
    };
    draw_curves(path, title, x_label, y_label, series, style)
}

/// Ten distinguishable colours (matplotlib's tab10) for [`curve_chart`].
const TAB10: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A line chart for many curves (up to ten colours, legend top right), written atomically to `path`
/// (SVG). Series of at most 12 points also get markers; longer ones (training curves) are plain lines.
pub fn curve_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    curve_chart_at(
        path,
        title,
        x_label,
        y_label,
        series,
        SeriesLabelPosition::UpperRight,
    )
}

/// [`curve_chart`] with the legend at `legend`.
pub fn curve_chart_at(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    legend: SeriesLabelPosition,
) -> Result<()> {
    let style = CurveStyle {
        size: (760, 480),
        caption_size: 18,
        legend,
        markers_up_to: 12,
    };
    draw_curves(path, title, x_label, y_label, series, style)
}

/// A scatter chart (markers only, one colour per series), written atomically to `path` (SVG).
pub fn scatter_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let frame = Frame {
        size: (760, 480),
        caption_size: 16,
        legend: SeriesLabelPosition::UpperLeft,
    };
    draw_xy(
        path,
        title,
        x_label,
        y_label,
        series,
        frame,
        |chart, i, s| {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(finite_points(s).map(|p| Circle::new(p, 5, color.filled())))
                .map_err(|e| anyhow!("plot: {e}"))?
                .label(s.name.clone())
                .legend(move |(x, y)| Circle::new((x + 9, y), 5, color.filled()));
            Ok(())
        },
    )
}

/// One named group of bars (one value per category) for [`bar_chart`].
pub struct BarGroup {
    pub name: String,
    pub values: Vec<f64>,
}

/// A grouped bar chart (one cluster per category, one coloured bar per group, legend top right), written
/// atomically to `path` (SVG). Used for mean relative living times as in the Geometry Score paper.
pub fn bar_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    categories: &[String],
    groups: &[BarGroup],
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
        let y_max = groups
            .iter()
            .flat_map(|g| g.values.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-12)
            * 1.1;
        let n_cat = categories.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..(n_cat as f64 - 0.5), 0f64..y_max)
            .map_err(|e| anyhow!("plot: {e}"))?;
        let labels: Vec<String> = categories.to_vec();
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_labels(n_cat)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| anyhow!("plot: {e}"))?;
        let k = groups.len().max(1) as f64;
        let width = 0.8 / k;
        for (gi, g) in groups.iter().enumerate() {
            let color = TAB10[gi % TAB10.len()];
            let left = -0.4 + gi as f64 * width;
            chart
                .draw_series(
                    g.values
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(ci, &v)| {
                            let x0 = ci as f64 + left;
                            Rectangle::new([(x0, 0.0), (x0 + width, v)], color.mix(0.8).filled())
                        }),
                )
                .map_err(|e| anyhow!("plot: {e}"))?
                .label(g.name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| anyhow!("plot: {e}"))?;
        root.present().map_err(|e| anyhow!("plot: {e}"))?;
    }
    nn_core::checkpoint::write_atomic(path, svg.as_bytes())?;
    Ok(())
}

/// How [`draw_curves`] lays a chart out.
struct CurveStyle {
    size: (u32, u32),
    caption_size: u32,
    legend: SeriesLabelPosition,
    /// Draw point markers only for series with at most this many points.
    markers_up_to: usize,
}

/// The one line-chart drawer behind [`line_chart`] and [`curve_chart_at`]: non-finite points are
/// skipped, colours cycle through tab10, the SVG is written atomically.
fn draw_curves(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    style: CurveStyle,
) -> Result<()> {
    let frame = Frame {
        size: style.size,
        caption_size: style.caption_size,
        legend: style.legend,
    };
    draw_xy(
        path,
        title,
        x_label,
        y_label,
        series,
        frame,
        |chart, i, s| {
            let color = TAB10[i % TAB10.len()];
            chart
                .draw_series(LineSeries::new(finite_points(s), color.stroke_width(2)))
                .map_err(|e| anyhow!("plot: {e}"))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            if s.points.len() <= style.markers_up_to {
                chart
                    .draw_series(finite_points(s).map(|p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| anyhow!("plot: {e}"))?;
            }
            Ok(())
        },
    )
}

/// The points of `s` with both coordinates finite.
fn finite_points(s: &Series) -> impl Iterator<Item = (f64, f64)> + '_ {
    s.points
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
}

/// Canvas size, caption size and legend position of an x–y chart.
struct Frame {
    size: (u32, u32),
    caption_size: u32,
    legend: SeriesLabelPosition,
}

type XyChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The frame every x–y chart shares: axes spanning the finite points of all series (5 % padding), a light
/// mesh, `draw(chart, index, series)` for each series, a legend, and the SVG written atomically to `path`.
fn draw_xy(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    frame: Frame,
    mut draw: impl FnMut(&mut XyChart<'_, '_>, usize, &Series) -> Result<()>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, frame.size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
        let (x0, x1) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
        let (y0, y1) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", frame.caption_size))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| anyhow!("plot: {e}"))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| anyhow!("plot: {e}"))?;
        for (i, s) in series.iter().enumerate() {
            draw(&mut chart, i, s)?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .position(frame.legend)
            .draw()
            .map_err(|e| anyhow!("plot: {e}"))?;
        root.present().map_err(|e| anyhow!("plot: {e}"))?;
    }
    nn_core::checkpoint::write_atomic(path, svg.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.svg");
        let s = Series {
            name: "lenet".into(),
            points: vec![(1.0, 0.9), (2.0, 0.95), (3.0, 0.97)],
        };
        line_chart(&path, "Test accuracy", "epoch", "accuracy", &[s]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("<svg"));
        assert!(text.contains("Test accuracy") && text.contains("lenet"));
    }
}

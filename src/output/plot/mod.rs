//! PNG plots drawn with `plotters` (bitmap backend, text in the embedded DejaVu Sans, so no
//! system font is ever looked up): panels of line curves with labelled axes, ticks and legends,
//! and the 2-D sample scatter.
//!
//! Non-finite points (and, on a log axis, non-positive ones) are skipped: a curve joins the
//! points either side, so a metric logged every Nth row with empty fields between still draws
//! as one line. A panel without a single point to draw says "no data yet" instead of failing.

use std::ops::Range;
use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow, ensure};
use image::{DynamicImage, RgbImage};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use super::grid::write_png;

mod numbers;
use numbers::{ema_window, envelope, span, thin};
pub use numbers::{fmt_num, fmt_tick, smooth};

/// DejaVu Sans (Bitstream Vera licence, see assets/fonts/DejaVuSans-LICENSE.txt).
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Registers the embedded font under `FAMILY` once per process; plotters' ab_glyph backend
/// renders only registered fonts.
fn register_embedded_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a fixed, valid TrueType file: failure is a build bug.
        let ok = register_font(FAMILY, FontStyle::Normal, FONT).is_ok();
        assert!(ok, "embedded DejaVuSans.ttf did not parse");
    });
}

/// Series colours (matplotlib's tab10 order), cycled.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
const INK: RGBColor = RGBColor(40, 40, 40);
const MUTED: RGBColor = RGBColor(120, 120, 120);

/// One named curve: `(name, points as (x, y))`.
pub type Series<'a> = (&'a str, &'a [(f64, f64)]);

/// One chart of a figure: its curves share the axes.
#[derive(Clone, Copy, Debug)]
pub struct Panel<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: &'a [Series<'a>],
    /// Logarithmic y axis; points with y ≤ 0 are then skipped.
    pub log_y: bool,
    /// Draw each curve faint with an exponential moving average over it (for noisy
    /// per-step logs); off for exact curves such as densities.
    pub smooth: bool,
}

impl<'a> Panel<'a> {
    /// A panel over training steps: x labelled "step", linear y, smoothed curves.
    pub fn new(title: &'a str, y_label: &'a str, series: &'a [Series<'a>]) -> Self {
        Panel {
            title,
            x_label: "step",
            y_label,
            series,
            log_y: false,
            smooth: true,
        }
    }
}

/// A figure of training curves: panels two per row (a lone last panel spans the row), each
/// 640×380 px.
pub fn write_training_plot(path: &Path, panels: &[Panel]) -> Result<()> {
    write_panels_png(path, panels, 2, (640, 380))
}

/// Draws `panels` in rows of `columns`, each `panel_size` px, into one PNG; when the last row is
/// short, its panels share the full width.
pub fn write_panels_png(
    path: &Path,
    panels: &[Panel],
    columns: usize,
    panel_size: (u32, u32),
) -> Result<()> {
    ensure!(!panels.is_empty(), "plot: no panels to draw");
    ensure!(columns >= 1, "plot: columns must be at least 1");
    let (pw, ph) = panel_size;
    ensure!(
        (200..=4096).contains(&pw) && (150..=4096).contains(&ph),
        "plot: a panel must be 200×150 to 4096×4096 px, got {pw}×{ph}"
    );
    let columns = columns.min(panels.len());
    let rows = panels.len().div_ceil(columns);
    let (w, h) = (pw * columns as u32, ph * rows as u32);
    render_png(path, (w, h), |root| {
        let (w, ph) = (w * SUPERSAMPLE, ph * SUPERSAMPLE);
        for (r, row) in panels.chunks(columns).enumerate() {
            let top = r as i32 * ph as i32;
            let band = root.clone().shrink((0, top), (w, ph));
            let cell_w = w / row.len() as u32;
            for (c, panel) in row.iter().enumerate() {
                let cell = band
                    .clone()
                    .shrink((c as i32 * cell_w as i32, 0), (cell_w, ph));
                draw_panel(&cell, panel)?;
            }
        }
        Ok(())
    })
}

/// Scatter of `points` (`n × 2` row-major `[x, y, ...]`) over the square `[-extent, extent]²`,
/// as a `size_px × size_px` PNG with labelled axes: samples as semi-transparent blue dots and
/// `means` as red crosses on top, with a legend. Non-finite or out-of-view points are skipped.
pub fn write_scatter_png(
    path: &Path,
    title: &str,
    points: &[f32],
    means: &[[f32; 2]],
    extent: f32,
    size_px: u32,
) -> Result<()> {
    let n = points.len();
    ensure!(
        n.is_multiple_of(2),
        "scatter: points must be n×2, got {n} values"
    );
    let e = f64::from(extent);
    ensure!(
        e.is_finite() && e > 0.0,
        "scatter: extent must be positive, got {e}"
    );
    ensure!(
        (200..=8192).contains(&size_px),
        "scatter: size must be 200..=8192 px, got {size_px}"
    );
    let font = Fonts::for_height(size_px * SUPERSAMPLE);
    render_png(path, (size_px, size_px), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FAMILY, font.title).into_font().color(&INK))
            .margin(font.margin)
            .x_label_area_size(font.x_area)
            .y_label_area_size(font.y_area)
            .build_cartesian_2d(-e..e, -e..e)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("x₁")
            .y_desc("x₂")
            .label_style((FAMILY, font.tick).into_font().color(&INK))
            .axis_desc_style((FAMILY, font.axis).into_font().color(&INK))
            .x_label_formatter(&|v| fmt_tick(*v, e))
            .y_label_formatter(&|v| fmt_tick(*v, e))
            .bold_line_style(RGBColor(220, 220, 220).stroke_width(font.px(1.0)))
            .light_line_style(RGBColor(246, 246, 246).stroke_width(font.px(1.0)))
            .axis_style(MUTED.stroke_width(font.px(1.0)))
            .set_all_tick_mark_size(font.px(4.0))
            .max_light_lines(1)
            .draw()
            .map_err(plot_err)?;
        let r = font.px(1.6) as i32;
        let dot = PALETTE[0].mix(0.35).filled();
        let dx = font.px(8.0) as i32; // legend marker offset
        let shown = points
            .chunks_exact(2)
            .map(|p| (f64::from(p[0]), f64::from(p[1])))
            .filter(|(x, y)| x.abs() <= e && y.abs() <= e);
        chart
            .draw_series(shown.map(|p| Circle::new(p, r, dot)))
            .map_err(plot_err)?
            .label(format!("G(z), {} samples", n / 2))
            .legend(move |(x, y)| Circle::new((x + dx, y), r + r / 2, PALETTE[0].filled()));
        let arm = font.px(6.5) as i32;
        let pen = PALETTE[3].stroke_width(font.px(1.5));
        let in_view = means
            .iter()
            .map(|m| (f64::from(m[0]), f64::from(m[1])))
            .filter(|(x, y)| x.abs() <= e && y.abs() <= e);
        chart
            .draw_series(in_view.map(|p| Cross::new(p, arm, pen)))
            .map_err(plot_err)?
            .label("true means")
            .legend(move |(x, y)| Cross::new((x + dx, y), arm * 2 / 3, pen));
        legend(&mut chart, &font, SeriesLabelPosition::UpperRight)
    })
}

/// Plots are drawn at this multiple of their size and scaled down, which anti-aliases lines
/// and markers (plotters' bitmap backend fills thick lines as unsmoothed polygons).
const SUPERSAMPLE: u32 = 2;

/// Font sizes, margins and pen widths in px of the drawing canvas, scaled with its height.
#[derive(Clone, Copy)]
struct Fonts {
    /// Canvas px per px of a 380-px-high panel.
    scale: f64,
    title: u32,
    axis: u32,
    tick: u32,
    legend: u32,
    margin: u32,
    x_area: u32,
    y_area: u32,
}

impl Fonts {
    fn for_height(h: u32) -> Self {
        let s = (f64::from(h) / 380.0).clamp(0.6, 3.0 * SUPERSAMPLE as f64);
        let px = |v: f64| (v * s).round() as u32;
        Fonts {
            scale: s,
            title: px(18.0),
            axis: px(14.0),
            tick: px(12.0),
            legend: px(13.0),
            margin: px(10.0),
            x_area: px(40.0),
            y_area: px(62.0),
        }
    }

    /// `v` px of a 380-px-high panel in canvas px, at least 1.
    fn px(&self, v: f64) -> u32 {
        (v * self.scale).round().max(1.0) as u32
    }
}

/// Draws with `draw` on a white RGB canvas `SUPERSAMPLE` times `size`, then writes it scaled
/// down to `size` as PNG.
fn render_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<()>,
) -> Result<()> {
    register_embedded_font();
    let (w, h) = (size.0 * SUPERSAMPLE, size.1 * SUPERSAMPLE);
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    let big = RgbImage::from_raw(w, h, buf).expect("buffer is w·h·3 bytes");
    let img = image::imageops::resize(&big, size.0, size.1, image::imageops::FilterType::Triangle);
    write_png(path, &DynamicImage::ImageRgb8(img))
}

fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("plot: {e}")
}

/// One panel: axes over the finite data, each series as a faint raw line under its smoothed
/// line (or as a plain line when `smooth` is off or there are too few points), and a legend.
fn draw_panel(area: &DrawingArea<BitMapBackend, Shift>, p: &Panel) -> Result<()> {
    let keep = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!p.log_y || y > 0.0);
    let kept: Vec<Vec<(f64, f64)>> = p
        .series
        .iter()
        .map(|(_, s)| s.iter().copied().filter(keep).collect())
        .collect();
    let all = || kept.iter().flatten();
    let (x_range, y_range) = (
        span(all().map(|q| q.0), false),
        span(all().map(|q| q.1), p.log_y),
    );
    let corner = quiet_corner(all().copied(), &x_range, &y_range, p.log_y);
    if p.log_y {
        draw_chart(area, p, &kept, corner, x_range, y_range.log_scale())
    } else {
        draw_chart(area, p, &kept, corner, x_range, y_range)
    }
}

/// The corner of the plot where the fewest points fall (upper right on a tie), for the legend:
/// each candidate box is 40% of the width and 30% of the height.
fn quiet_corner(
    pts: impl Iterator<Item = (f64, f64)>,
    x: &Range<f64>,
    y: &Range<f64>,
    log_y: bool,
) -> SeriesLabelPosition {
    let ty = |v: f64| if log_y { v.log10() } else { v };
    let (y0, y1) = (ty(y.start), ty(y.end));
    let mut hits = [0usize; 4]; // upper right, upper left, lower right, lower left
    for (px, py) in pts {
        let fx = (px - x.start) / (x.end - x.start);
        let fy = (ty(py) - y0) / (y1 - y0);
        let (right, left, top, bottom) = (fx > 0.6, fx < 0.4, fy > 0.7, fy < 0.3);
        for (i, inside) in [right && top, left && top, right && bottom, left && bottom]
            .into_iter()
            .enumerate()
        {
            hits[i] += usize::from(inside);
        }
    }
    let best = (0..4).min_by_key(|&i| hits[i]).expect("four corners");
    [
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::LowerLeft,
    ][best]
        .clone()
}

fn draw_chart<Y>(
    area: &DrawingArea<BitMapBackend, Shift>,
    p: &Panel,
    kept: &[Vec<(f64, f64)>],
    corner: SeriesLabelPosition,
    x_range: Range<f64>,
    y_range: Y,
) -> Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let font = Fonts::for_height(area.dim_in_pixel().1);
    let x_span = (x_range.start, x_range.end);
    let x_max = x_span.0.abs().max(x_span.1.abs());
    let y_max = kept
        .iter()
        .flatten()
        .fold(0.0, |m: f64, q| m.max(q.1.abs()));
    let mut chart = ChartBuilder::on(area)
        .caption(p.title, (FAMILY, font.title).into_font().color(&INK))
        .margin(font.margin)
        .x_label_area_size(font.x_area)
        .y_label_area_size(font.y_area)
        .build_cartesian_2d(x_range, y_range)
        .map_err(plot_err)?;
    let longest = kept.iter().map(Vec::len).max().unwrap_or(0);
    let smoothing = if p.smooth { ema_window(longest) } else { None };
    let plot_w = chart.plotting_area().dim_in_pixel().0;
    // More raw points than every other pixel column: faint lines would pile up into a solid
    // block hiding the smoothed line, so the range of the raw values is shaded instead.
    let dense = longest > plot_w as usize / 2;
    let x_desc = match (smoothing, dense) {
        (Some(w), false) => format!(
            "{}   (lines: smoothed over ~{w} points; faint: raw)",
            p.x_label
        ),
        (Some(w), true) => format!(
            "{}   (lines: smoothed over ~{w} points; shaded: range of raw values)",
            p.x_label
        ),
        (None, _) => p.x_label.to_string(),
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(p.y_label)
        .x_labels(7)
        .y_labels(6)
        .label_style((FAMILY, font.tick).into_font().color(&INK))
        .axis_desc_style((FAMILY, font.axis).into_font().color(&INK))
        .x_label_formatter(&|v| fmt_tick(*v, x_max))
        .y_label_formatter(&|v| fmt_tick(*v, y_max))
        .bold_line_style(RGBColor(225, 225, 225).stroke_width(font.px(1.0)))
        .light_line_style(RGBColor(245, 245, 245).stroke_width(font.px(1.0)))
        .axis_style(MUTED.stroke_width(font.px(1.0)))
        .set_all_tick_mark_size(font.px(4.0))
        .max_light_lines(4)
        .draw()
        .map_err(plot_err)?;

    let swatch = font.px(20.0) as i32;
    for (i, ((name, _), pts)) in p.series.iter().zip(kept).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let solid = color.stroke_width(font.px(2.0));
        // A lone point draws as a dot so it stays visible.
        if let [q] = pts[..] {
            chart
                .draw_series([Circle::new(q, font.px(3.0), color.filled())])
                .map_err(plot_err)?;
        }
        let line = match smoothing {
            Some(w) if dense => {
                let band = envelope(pts, x_span, plot_w as usize / 2);
                let shade = color.mix(0.22).filled();
                chart
                    .draw_series([Polygon::new(band, shade)])
                    .map_err(plot_err)?;
                thin(smooth(pts, w), plot_w as usize / 4)
            }
            Some(w) => {
                let faint = color.mix(0.3).stroke_width(font.px(1.0));
                chart.draw_series(polyline(pts, faint)).map_err(plot_err)?;
                thin(smooth(pts, w), plot_w as usize / 4)
            }
            None => pts.clone(),
        };
        chart
            .draw_series(polyline(&line, solid))
            .map_err(plot_err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + swatch, y)], solid));
    }
    if longest == 0 {
        let (w, h) = chart.plotting_area().dim_in_pixel();
        let style = (FAMILY, font.axis)
            .into_font()
            .color(&MUTED)
            .pos(Pos::new(HPos::Center, VPos::Center));
        chart
            .plotting_area()
            .strip_coord_spec()
            .draw_text("no data yet", &style, (w as i32 / 2, h as i32 / 2))
            .map_err(plot_err)?;
    }
    if !p.series.is_empty() {
        legend(&mut chart, &font, corner)?;
    }
    Ok(())
}

fn legend<'a, X, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
    font: &Fonts,
    corner: SeriesLabelPosition,
) -> Result<()>
where
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
{
    chart
        .configure_series_labels()
        .position(corner)
        .margin(font.px(10.0))
        .legend_area_size(font.px(28.0))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(190, 190, 190).stroke_width(font.px(1.0)))
        .label_font((FAMILY, font.legend).into_font().color(&INK))
        .draw()
        .map_err(plot_err)
}

/// A line through `pts` as one element per segment. plotters joins the segments of a wide
/// path with unlimited mitres, which shoot far out of the plot where a noisy curve turns back
/// on itself; separate segments have no joins.
fn polyline(
    pts: &[(f64, f64)],
    style: ShapeStyle,
) -> impl Iterator<Item = PathElement<(f64, f64)>> + '_ {
    pts.windows(2)
        .map(move |w| PathElement::new(vec![w[0], w[1]], style))
}

/// Whether pixel `p` has colour `c` give or take anti-aliasing (each channel within 24).
#[cfg(test)]
pub(crate) fn near(p: [u8; 3], c: RGBColor) -> bool {
    let d = |a: u8, b: u8| a.abs_diff(b) <= 24;
    d(p[0], c.0) && d(p[1], c.1) && d(p[2], c.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("duel-io-plot-{}/{name}", std::process::id()))
    }

    /// Distinct colours in the sub-rectangle `(x, y, w, h)`.
    fn colours_in(img: &RgbImage, (x, y, w, h): (u32, u32, u32, u32)) -> usize {
        let mut seen = std::collections::HashSet::new();
        for yy in y..y + h {
            for xx in x..x + w {
                seen.insert(img.get_pixel(xx, yy).0);
            }
        }
        seen.len()
    }

    fn count(img: &RgbImage, c: RGBColor) -> usize {
        img.pixels().filter(|p| near(p.0, c)).count()
    }

    #[test]
    fn panels_draw_curves_titles_and_legends() {
        let path = tmp("panels.png");
        let curve = |f: &dyn Fn(f64) -> f64| -> Vec<(f64, f64)> {
            (0..300).map(|i| (i as f64 * 10.0, f(i as f64))).collect()
        };
        let d = curve(&|x| 1.3 / (1.0 + x * 0.01) + (x * 0.7).sin() * 0.1);
        let mut g = curve(&|x| 0.7 + (x * 0.05).sin() * 0.2);
        g[50].1 = f64::NAN;
        g[51].0 = f64::INFINITY;
        let real = curve(&|x| 0.6 + (x * 0.3).cos() * 0.05);
        let fid = curve(&|x| 300.0 * (-x * 0.02).exp() + 5.0);
        let losses = [("D loss", &d[..]), ("G loss", &g[..])];
        let outs = [("D(x)", &real[..])];
        let metric = [("FID", &fid[..])];
        let panels = [
            Panel::new("losses", "loss", &losses),
            Panel::new("D's outputs", "probability", &outs),
            Panel {
                log_y: true,
                ..Panel::new("FID", "FID", &metric)
            },
        ];
        write_training_plot(&path, &panels).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        // Two panels in the first row, the third spanning the second.
        assert_eq!(img.dimensions(), (1280, 760));
        for cell in [(0, 0, 640, 380), (640, 0, 640, 380), (0, 380, 1280, 380)] {
            // Plot area (the cell less its margins) holds grid, curves and legend: many
            // colours, the first series' among them.
            let inner = (cell.0 + 80, cell.1 + 40, cell.2 - 100, cell.3 - 90);
            assert!(colours_in(&img, inner) > 8, "cell {cell:?} looks blank");
            let (x, y, w, h) = inner;
            let c = PALETTE[0];
            let curve_px = (y..y + h)
                .flat_map(|yy| (x..x + w).map(move |xx| (xx, yy)))
                .filter(|&(xx, yy)| near(img.get_pixel(xx, yy).0, c))
                .count();
            assert!(curve_px > 100, "cell {cell:?}: {curve_px} curve pixels");
            // The title strip at the top centre is not uniform: text was rendered.
            let title = (cell.0 + cell.2 / 2 - 40, cell.1 + 8, 80, 18);
            assert!(colours_in(&img, title) > 2, "no title text in {cell:?}");
        }
        // Every series' solid colour is drawn (the smoothed lines and legend swatches).
        for c in &PALETTE[..2] {
            assert!(count(&img, *c) > 100, "colour {c:?}");
        }
    }

    #[test]
    fn panels_handle_degenerate_inputs() {
        let nan = [(0.0, f64::NAN), (1.0, f64::NAN)];
        let flat = [(3.0, 2.0), (3.0, 2.0)];
        let one = [(1.0, 1e-7)];
        let negative = [(0.0, -1.0), (1.0, 0.0), (2.0, 5.0)];
        let cases: [(&[Series], bool); 6] = [
            (&[], false),
            (&[("empty", &[])], false),
            (&[("nan", &nan)], false),
            (&[("flat", &flat)], false),
            (&[("one", &one)], true),
            (&[("non-positive on a log axis", &negative)], true),
        ];
        for (i, (series, log_y)) in cases.into_iter().enumerate() {
            let path = tmp(&format!("degenerate{i}.png"));
            let p = Panel {
                log_y,
                ..Panel::new("t", "y", series)
            };
            write_panels_png(&path, &[p], 1, (320, 200)).unwrap();
            let img = image::open(&path).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (320, 200));
            assert!(colours_in(&img, (0, 0, 320, 200)) > 4, "case {i}");
        }
        assert!(write_panels_png(&tmp("x.png"), &[], 1, (320, 200)).is_err());
        let p = Panel::new("t", "y", &[]);
        assert!(write_panels_png(&tmp("x.png"), &[p], 1, (10, 10)).is_err());
    }

    #[test]
    fn dense_noisy_curves_stay_readable_and_inside_their_panel() {
        // A long noisy log (an LCG's values), several points per pixel column.
        let mut state = 12345u64;
        let noisy: Vec<(f64, f64)> = (0..10_000)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (i as f64, (state >> 11) as f64 / (1u64 << 53) as f64)
            })
            .collect();
        let series = [("noisy", &noisy[..])];
        let panels = [
            Panel::new("smoothed", "y", &series),
            Panel {
                smooth: false,
                ..Panel::new("raw", "y", &series)
            },
            Panel::new("below", "y", &[]),
        ];
        let path = tmp("dense.png");
        write_panels_png(&path, &panels, 1, (640, 380)).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        let img = &img;
        let pixels = |ys: Range<u32>| -> Vec<[u8; 3]> {
            ys.flat_map(|y| (0..640).map(move |x| img.get_pixel(x, y).0))
                .collect()
        };
        // The smoothed line shows in full colour over the faint band of the raw values.
        let solid = pixels(40..330).into_iter().filter(|p| near(*p, PALETTE[0]));
        assert!(solid.count() > 300, "smoothed line hidden");
        // Joins of a wide line turning back on itself are not drawn as mitres shooting out of
        // the plot (plotters' wide paths do that): nothing blue in the empty panel below.
        let blue_below = pixels(760..1140)
            .into_iter()
            .filter(|[r, _, b]| i32::from(*b) - i32::from(*r) > 30)
            .count();
        assert_eq!(blue_below, 0, "a curve leaks into the panel below");
    }

    #[test]
    fn a_metric_logged_every_tenth_row_draws_as_one_line() {
        // FID-like: finite every 10th row, NaN (an empty CSV field) between.
        let sparse: Vec<(f64, f64)> = (0..300)
            .map(|i| {
                let y = if i % 10 == 0 {
                    100.0 / (1.0 + i as f64)
                } else {
                    f64::NAN
                };
                (i as f64, y)
            })
            .collect();
        let series = [("FID", &sparse[..])];
        let path = tmp("sparse.png");
        write_panels_png(&path, &[Panel::new("FID", "FID", &series)], 1, (640, 380)).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        // Joined, not dotted: along the flat tail (lower part of the plot, clear of the
        // legend) nearly every pixel column holds the line.
        let columns = (120..600)
            .filter(|&x| (150..345).any(|y| near(img.get_pixel(x, y).0, PALETTE[0])))
            .count();
        assert!(columns > 450, "line covers {columns} of 480 columns");
    }

    #[test]
    fn scatter_marks_samples_and_means() {
        let path = tmp("scatter.png");
        let mut pts: Vec<f32> = [0.5f32, 0.5].repeat(50);
        pts.extend([f32::NAN, 0.0, 99.0, 99.0]); // skipped, no panic
        let means = [[1.0, 0.0], [-1.0, 0.0]];
        write_scatter_png(&path, "samples", &pts, &means, 1.5, 400).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (400, 400));
        let blue = img
            .pixels()
            .filter(|p| p.0[2] > 150 && p.0[0] < 120 && p.0[2] > p.0[0] + 60)
            .count();
        let red = count(&img, PALETTE[3]);
        assert!(blue > 20, "sample dots drawn: {blue} px");
        assert!(red > 20, "mean crosses drawn: {red} px");
        assert!(colours_in(&img, (150, 2, 100, 20)) > 2, "title text");
        let e = write_scatter_png(&path, "t", &[1.0], &[], 1.0, 300).unwrap_err();
        assert!(e.to_string().contains("n×2"), "{e}");
    }

    #[test]
    fn smoothing_keeps_levels_removes_noise_and_does_not_lag() {
        let flat: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, 2.0)).collect();
        assert!(
            smooth(&flat, 10)
                .iter()
                .all(|&(_, y)| (y - 2.0).abs() < 1e-12)
        );
        let zigzag: Vec<(f64, f64)> = (0..200)
            .map(|i| (i as f64, if i % 2 == 0 { 1.0 } else { -1.0 }))
            .collect();
        let s = smooth(&zigzag, 20);
        assert_eq!(s.len(), zigzag.len());
        assert!(s[20..180].iter().all(|&(_, y)| y.abs() < 0.1));
        // A falling line stays on itself away from the ends (a one-way EMA would sit ~window
        // points behind, i.e. above it).
        let ramp: Vec<(f64, f64)> = (0..300).map(|i| (i as f64, -(i as f64))).collect();
        let s = smooth(&ramp, 20);
        assert!(
            s[60..240].iter().all(|&(x, y)| (y + x).abs() < 0.5),
            "{:?}",
            s[150]
        );
        assert_eq!(thin(ramp.clone(), 10).len(), 10);
        assert_eq!(thin(ramp.clone(), 10)[9], ramp[299]);
    }

    #[test]
    fn number_labels() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(1.5), "1.5");
        assert_eq!(fmt_num(-0.00123), "-0.00123");
        assert_eq!(fmt_num(12345.0), "12345");
        // One style per axis: every label of a 0..10,000 step axis in thousands.
        let ticks: Vec<String> = [0.0, 2000.0, 8000.0, 10_000.0, 12_500.0]
            .iter()
            .map(|&v| fmt_tick(v, 12_500.0))
            .collect();
        assert_eq!(ticks, ["0", "2k", "8k", "10k", "12.5k"]);
        assert_eq!(fmt_tick(2e7, 3e7), "20M");
        assert_eq!(fmt_tick(0.25, 1.0), "0.25");
        assert_eq!(fmt_num(1.5e-4), "1.5e-4");
        assert_eq!(fmt_num(1e-4), "1e-4");
    }
}

//! Dependency-free PNG plots: 2-D sample scatter and loss curves.
//!
//! Drawing is done pixel by pixel on an RGB canvas; text uses an embedded 5×7
//! bitmap font (upper-case; lower-case input is drawn in upper case).

use std::path::Path;

use anyhow::{Result, ensure};
use image::{DynamicImage, Rgb, RgbImage};

use super::grid::write_png;

type Color = [u8; 3];
const WHITE: Color = [255, 255, 255];
const GRID: Color = [228, 228, 228];
const AXIS: Color = [160, 160, 160];
const INK: Color = [40, 40, 40];
const DOT: Color = [31, 119, 180];
const MEAN: Color = [214, 39, 40];
/// Series colours (matplotlib's tab10 order), cycled.
const PALETTE: [Color; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
];

/// Scatter of `points` (`n × 2` row-major `[x, y, ...]`) over the square
/// `[-extent, extent]²`, as a `size_px × size_px` PNG: white background, light
/// grid with darker axes, samples as semi-transparent blue dots, and `means` as
/// red circled crosses on top. Non-finite or out-of-view points are skipped.
pub fn write_scatter_png(
    path: &Path,
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
        (16..=8192).contains(&size_px),
        "scatter: size must be 16..=8192 px, got {size_px}"
    );
    let mut cv = Canvas::new(size_px, size_px);
    let last = i64::from(size_px) - 1;
    // Pixel of a coordinate along x (for y use `last - to_px(y)`).
    let to_px = |v: f64| ((v + e) / (2.0 * e) * last as f64).round() as i64;

    let step = nice_step(e / 3.0);
    for k in (-e / step).ceil() as i64..=(e / step).floor() as i64 {
        let (p, color) = (to_px(k as f64 * step), if k == 0 { AXIS } else { GRID });
        cv.rect(p, 0, 1, last + 1, color, 1.0);
        cv.rect(0, last - p, last + 1, 1, color, 1.0);
    }
    let r = i64::from(size_px / 300).max(1);
    for p in points.chunks_exact(2) {
        let [x, y] = [p[0], p[1]].map(f64::from);
        if x.abs() <= e && y.abs() <= e {
            cv.disc(to_px(x), last - to_px(y), r, DOT, 0.35);
        }
    }
    let (arm, pen) = (
        i64::from(size_px / 70).max(3),
        i64::from(size_px / 400).max(1),
    );
    for m in means
        .iter()
        .filter(|m| m[0].abs() <= 2.0 * extent && m[1].abs() <= 2.0 * extent)
    {
        let (x, y) = (to_px(f64::from(m[0])), last - to_px(f64::from(m[1])));
        cv.line((x - arm, y), (x + arm, y), MEAN, pen);
        cv.line((x, y - arm), (x, y + arm), MEAN, pen);
        cv.circle(x, y, arm, MEAN);
    }
    write_png(path, &DynamicImage::ImageRgb8(cv.img))
}

/// Line plot (e.g. loss curves) as a `size.0 × size.1` PNG: title on top, framed
/// axes spanning the finite data with min/max tick labels, one colour per series
/// and a legend of series names. Non-finite points are skipped (the line breaks
/// there); empty series appear only in the legend; with no data at all the
/// frame is drawn with "NO DATA".
pub fn write_line_plot_png(
    path: &Path,
    title: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    size: (u32, u32),
) -> Result<()> {
    let (w, h) = size;
    ensure!(
        (160..=8192).contains(&w) && (100..=8192).contains(&h),
        "line plot: size must be 160×100 to 8192×8192 px, got {w}×{h}"
    );
    let ts = i64::from(w.min(h) / 350).clamp(1, 4); // text scale
    let (cw, ch, pad) = (6 * ts, 7 * ts, 4 * ts + 4);
    let text_w = |s: &str| s.chars().count() as i64 * cw;
    let finite = || {
        let all = series.iter().flat_map(|(_, s)| s.iter());
        all.filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let bounds = |pick: fn(&(f64, f64)) -> f64| {
        let lo = finite().map(pick).fold(f64::INFINITY, f64::min);
        widen(lo, finite().map(pick).fold(f64::NEG_INFINITY, f64::max))
    };
    let ((xlo, xhi), (ylo, yhi)) = (bounds(|p| p.0), bounds(|p| p.1));
    let [xlo_s, xhi_s, ylo_s, yhi_s] = [xlo, xhi, ylo, yhi].map(fmt_num);

    let (w, h) = (i64::from(w), i64::from(h));
    let (x0, x1) = (2 * pad + text_w(&ylo_s).max(text_w(&yhi_s)), w - 2 * pad);
    let (y0, y1) = (2 * pad + ch, h - 2 * pad - ch);
    ensure!(
        x1 - x0 >= 40 && y1 - y0 >= 40,
        "line plot: {w}×{h} px leaves no room for the plot area"
    );

    let mut cv = Canvas::new(w as u32, h as u32);
    for q in 1..4 {
        cv.rect(x0 + (x1 - x0) * q / 4, y0, 1, y1 - y0, GRID, 1.0);
        cv.rect(x0, y0 + (y1 - y0) * q / 4, x1 - x0, 1, GRID, 1.0);
    }
    cv.frame(x0, y0, x1 - x0 + 1, y1 - y0 + 1, AXIS);
    cv.text((w - text_w(title)) / 2, pad, title, INK, ts);
    cv.text(x0 - pad - text_w(&yhi_s), y0, &yhi_s, INK, ts);
    cv.text(x0 - pad - text_w(&ylo_s), y1 - ch, &ylo_s, INK, ts);
    cv.text(x0, y1 + pad, &xlo_s, INK, ts);
    cv.text(x1 - text_w(&xhi_s), y1 + pad, &xhi_s, INK, ts);

    // Data area inset by 2 px so extreme values stay clear of the frame.
    let to_px = |&(x, y): &(f64, f64)| {
        let px = (x0 + 2) as f64 + (x - xlo) / (xhi - xlo) * (x1 - x0 - 4) as f64;
        let py = (y1 - 2) as f64 - (y - ylo) / (yhi - ylo) * (y1 - y0 - 4) as f64;
        (px.is_finite() && py.is_finite()).then(|| (px.round() as i64, py.round() as i64))
    };
    for (i, (_, pts)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mapped: Vec<Option<(i64, i64)>> = pts.iter().map(to_px).collect();
        for (j, p) in mapped.iter().enumerate() {
            let Some(p) = *p else { continue };
            match mapped.get(j + 1).copied().flatten() {
                Some(q) => cv.line(p, q, color, ts),
                None if j == 0 || mapped[j - 1].is_none() => cv.disc(p.0, p.1, ts, color, 1.0),
                None => {}
            }
        }
    }
    if finite().next().is_none() {
        let msg = "NO DATA";
        cv.text(
            (x0 + x1 - text_w(msg)) / 2,
            (y0 + y1 - ch) / 2,
            msg,
            AXIS,
            ts,
        );
    }

    if !series.is_empty() {
        let (swatch, row) = (4 * cw, ch + 2 * ts + 2);
        let name_w = series.iter().map(|(n, _)| text_w(n)).max().unwrap_or(0);
        let (bw, bh) = (
            swatch + name_w + 5 * pad / 2,
            row * series.len() as i64 + pad,
        );
        let (bx, by) = (x1 - bw - pad / 2, y0 + pad / 2);
        cv.rect(bx, by, bw, bh, WHITE, 1.0);
        cv.frame(bx, by, bw, bh, AXIS);
        for (i, (name, _)) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let ty = by + pad / 2 + row * i as i64;
            let lx = bx + pad / 2;
            cv.line((lx, ty + ch / 2), (lx + swatch, ty + ch / 2), color, ts + 1);
            cv.text(bx + pad + swatch, ty, name, INK, ts);
        }
    }
    write_png(path, &DynamicImage::ImageRgb8(cv.img))
}

/// Widens an empty or degenerate range so mapping never divides by zero.
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        (0.0, 1.0)
    } else if hi > lo {
        (lo, hi)
    } else {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - d, hi + d)
    }
}

/// Largest of {1, 2, 5}·10^k not above `target` (with a little float slack).
fn nice_step(target: f64) -> f64 {
    let base = 10f64.powf(target.log10().floor());
    let steps = [5.0, 2.0, 1.0].map(|m| m * base);
    steps
        .into_iter()
        .find(|&s| s <= target * (1.0 + 1e-9))
        .unwrap_or(base)
}

/// Compact tick label: plain with ≤4 significant digits, or `1.50e-4` style.
fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.2e}");
    }
    let decimals = (3 - a.log10().floor() as i64).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    let trimmed = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    trimmed.to_string()
}

/// RGB canvas with bounds-checked, alpha-blended pixel writes (i64 coordinates,
/// anything off-canvas is silently clipped).
struct Canvas {
    img: RgbImage,
}

impl Canvas {
    fn new(w: u32, h: u32) -> Self {
        let img = RgbImage::from_pixel(w, h, Rgb(WHITE));
        Self { img }
    }

    fn blend(&mut self, x: i64, y: i64, c: Color, alpha: f32) {
        let (Ok(x), Ok(y)) = (u32::try_from(x), u32::try_from(y)) else {
            return;
        };
        if let Some(p) = self.img.get_pixel_mut_checked(x, y) {
            for (dst, &src) in p.0.iter_mut().zip(&c) {
                *dst = (f32::from(*dst) * (1.0 - alpha) + f32::from(src) * alpha).round() as u8;
            }
        }
    }

    /// Filled axis-aligned rectangle.
    fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Color, alpha: f32) {
        for yy in y.max(0)..(y + h).min(i64::from(self.img.height())) {
            for xx in x.max(0)..(x + w).min(i64::from(self.img.width())) {
                self.blend(xx, yy, c, alpha);
            }
        }
    }

    /// 1-px rectangle outline.
    fn frame(&mut self, x: i64, y: i64, w: i64, h: i64, c: Color) {
        self.rect(x, y, w, 1, c, 1.0);
        self.rect(x, y + h - 1, w, 1, c, 1.0);
        self.rect(x, y, 1, h, c, 1.0);
        self.rect(x + w - 1, y, 1, h, c, 1.0);
    }

    /// Straight line with a square `pen`-pixel brush (DDA stepping).
    fn line(&mut self, a: (i64, i64), b: (i64, i64), c: Color, pen: i64) {
        let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).clamp(1, 100_000);
        let off = (pen - 1) / 2;
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let x = a.0 + ((b.0 - a.0) as f64 * t).round() as i64 - off;
            let y = a.1 + ((b.1 - a.1) as f64 * t).round() as i64 - off;
            self.rect(x, y, pen, pen, c, 1.0);
        }
    }

    fn disc(&mut self, cx: i64, cy: i64, r: i64, c: Color, alpha: f32) {
        for dy in -r..=r {
            for dx in (-r..=r).filter(|dx| dx * dx + dy * dy <= r * r) {
                self.blend(cx + dx, cy + dy, c, alpha);
            }
        }
    }

    fn circle(&mut self, cx: i64, cy: i64, r: i64, c: Color) {
        let n = (r * 8).max(16);
        for i in 0..n {
            let (s, co) = (std::f64::consts::TAU * i as f64 / n as f64).sin_cos();
            let (dx, dy) = (
                (r as f64 * co).round() as i64,
                (r as f64 * s).round() as i64,
            );
            self.blend(cx + dx, cy + dy, c, 1.0);
        }
    }

    /// Draws `s` with its top-left corner at (x, y), each font pixel `scale`².
    fn text(&mut self, x: i64, y: i64, s: &str, c: Color, scale: i64) {
        for (i, ch) in s.chars().enumerate() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for col in (0..5).filter(|col| bits & (0x10 >> col) != 0) {
                    let px = x + (i as i64 * 6 + col) * scale;
                    self.rect(px, y + row as i64 * scale, scale, scale, c, 1.0);
                }
            }
        }
    }
}

/// 5×7 glyph rows, bit 4 = leftmost column. Lower case maps to upper case;
/// unknown characters draw as '?'.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        ' ' => [0; 7],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04], // '?'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("duel-io-plot-{}/{name}", std::process::id()))
    }

    fn non_white(img: &RgbImage) -> usize {
        img.pixels().filter(|p| p.0 != WHITE).count()
    }

    #[test]
    fn scatter_marks_samples_and_means() {
        let path = tmp("scatter.png");
        let mut pts: Vec<f32> = [0.5f32, 0.5].repeat(50);
        pts.extend([f32::NAN, 0.0, 99.0, 99.0]); // skipped, no panic
        let means = [[1.0, 0.0], [-1.0, 0.0]];
        write_scatter_png(&path, &pts, &means, 1.5, 300).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (300, 300));
        let px = |v: f32| ((v + 1.5) / 3.0 * 299.0).round() as u32;
        let at = |x: f32, y: f32| img.get_pixel(px(x), 299 - px(y)).0;
        let [r, g, b] = at(0.5, 0.5);
        assert!(b > 150 && r < 80 && g < 150, "dot colour {r},{g},{b}");
        for [x, y] in means {
            let [r, g, b] = at(x, y);
            assert!(r > 200 && g < 60 && b < 60, "mean colour {r},{g},{b}");
        }
        assert_eq!(at(-0.7, 1.3), WHITE); // empty background
        let e = write_scatter_png(&path, &[1.0], &[], 1.0, 100).unwrap_err();
        assert!(e.to_string().contains("n×2"), "{e}");
    }

    #[test]
    fn line_plot_draws_series_and_legend() {
        let path = tmp("loss.png");
        let curve = |f: fn(f64) -> f64| (0..200).map(|i| (i as f64, f(i as f64))).collect();
        let d: Vec<(f64, f64)> = curve(|x| 1.0 / (1.0 + x * 0.05));
        let mut g: Vec<(f64, f64)> = curve(|x| 0.7 + (x * 0.1).sin() * 0.2);
        g[50].1 = f64::NAN;
        g[51].0 = f64::INFINITY;
        let series = [("d_loss", d), ("g_loss", g), ("empty", vec![])];
        write_line_plot_png(&path, "Losses (step)", &series, (640, 400)).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (640, 400));
        assert!(non_white(&img) > 2000);
        for c in &PALETTE[..3] {
            let n = img.pixels().filter(|p| p.0 == *c).count();
            assert!(n > 10, "colour {c:?} drawn {n} times");
        }
    }

    #[test]
    fn line_plot_degenerate_inputs() {
        type Series = Vec<(&'static str, Vec<(f64, f64)>)>;
        let cases: [Series; 5] = [
            vec![],
            vec![("empty", vec![])],
            vec![("nan", vec![(0.0, f64::NAN), (1.0, f64::NAN)])],
            vec![("flat", vec![(3.0, 2.0), (3.0, 2.0)])],
            vec![("one", vec![(1.0, 1e-7)])],
        ];
        for (i, series) in cases.iter().enumerate() {
            let path = tmp(&format!("degenerate{i}.png"));
            write_line_plot_png(&path, "t", series, (200, 120)).unwrap();
            let img = image::open(&path).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (200, 120));
            assert!(non_white(&img) > 100, "case {i}");
        }
        assert!(write_line_plot_png(&tmp("x.png"), "t", &[], (10, 10)).is_err());
    }

    #[test]
    fn number_labels() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(1.5), "1.5");
        assert_eq!(fmt_num(-0.00123), "-0.00123");
        assert_eq!(fmt_num(12345.0), "12345");
        assert_eq!(fmt_num(1.5e-4), "1.50e-4");
        assert_eq!(fmt_num(2.0e6), "2.00e6");
        assert_eq!(nice_step(0.5), 0.5);
        assert_eq!(nice_step(2.0), 2.0);
        assert_eq!(nice_step(3.3), 2.0);
    }
}

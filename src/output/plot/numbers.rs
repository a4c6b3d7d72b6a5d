//! The numbers behind a plot: smoothing, thinning and the min/max envelope of long series,
//! axis ranges, and tick and legend number formats.

use std::ops::Range;

/// The outline of the band between the lowest and highest y of `seg` in each of `columns`
/// equal slices of the x range `x_span`: upper edge left to right, then lower edge back.
pub(super) fn envelope(seg: &[(f64, f64)], x_span: (f64, f64), columns: usize) -> Vec<(f64, f64)> {
    let width = (x_span.1 - x_span.0) / columns.max(1) as f64;
    let column = |x: f64| ((x - x_span.0) / width).floor() as i64;
    // (column, sum of x, count, min y, max y), in x order.
    let mut bins: Vec<(i64, f64, f64, f64, f64)> = Vec::new();
    for &(x, y) in seg {
        match bins.last_mut() {
            Some(b) if b.0 == column(x) => {
                (b.1, b.2) = (b.1 + x, b.2 + 1.0);
                (b.3, b.4) = (b.3.min(y), b.4.max(y));
            }
            _ => bins.push((column(x), x, 1.0, y, y)),
        }
    }
    let upper = bins.iter().map(|b| (b.1 / b.2, b.4));
    let lower = bins.iter().rev().map(|b| (b.1 / b.2, b.3));
    upper.chain(lower).collect()
}

/// The smoothing window (in points) for a panel whose longest curve has `n` points: about 1/15
/// of it, or `None` when that is under 3 points and smoothing would only blur.
pub(super) fn ema_window(n: usize) -> Option<usize> {
    let w = n / 15;
    (w >= 3).then_some(w)
}

/// Zero-phase smoothing: a debiased exponential moving average over ~`window` points run
/// forwards, then backwards over the result, so the curve does not lag behind the data (a
/// one-way EMA, TensorBoard's, trails a falling loss by about a window). Debiasing keeps the
/// ends from being pulled towards 0. EMA weight w = 1 − 2/(window + 1).
pub fn smooth(pts: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let w = 1.0 - 2.0 / (window as f64 + 1.0);
    let ema = |ys: &mut dyn Iterator<Item = f64>| -> Vec<f64> {
        let (mut acc, mut weight) = (0.0, 0.0);
        ys.map(|y| {
            acc = acc * w + (1.0 - w) * y;
            weight = weight * w + (1.0 - w);
            acc / weight
        })
        .collect()
    };
    let forward = ema(&mut pts.iter().map(|p| p.1));
    let mut both = ema(&mut forward.into_iter().rev());
    both.reverse();
    pts.iter().zip(both).map(|(p, y)| (p.0, y)).collect()
}

/// At most `n` points of `pts`, evenly spaced by index, the last always kept: a smoothed curve
/// drawn through more points than pixels rasterises as jagged steps.
pub(super) fn thin(pts: Vec<(f64, f64)>, n: usize) -> Vec<(f64, f64)> {
    if pts.len() <= n || n < 2 {
        return pts;
    }
    let last = pts.len() - 1;
    (0..n).map(|i| pts[i * last / (n - 1)]).collect()
}

/// The axis range of `values` with 4% padding (out to whole decades on a log axis); a
/// degenerate or empty range is widened so mapping never divides by zero.
pub(super) fn span(values: impl Iterator<Item = f64>, log: bool) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !(lo.is_finite() && hi.is_finite()) {
        return if log { 0.1..10.0 } else { 0.0..1.0 };
    }
    if log {
        // Out to whole decades, so the axis always has labelled powers of ten.
        let (l, h) = (lo.log10().floor(), hi.log10().ceil());
        return 10f64.powf(l)..10f64.powf(if h > l { h } else { l + 1.0 });
    }
    if hi > lo {
        let pad = (hi - lo) * 0.04;
        (lo - pad)..(hi + pad)
    } else {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - d)..(hi + d)
    }
}

/// Compact number: ≤4 significant digits, tiny or huge values as `1.5e-4`.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let decimals = (3 - a.log10().floor() as i64).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A tick label on an axis reaching `max_abs`: in thousands ("12.5k") or millions ("2M") when
/// the axis reaches 10,000 or 10 million, so all labels of one axis share a style.
pub fn fmt_tick(v: f64, max_abs: f64) -> String {
    let (unit, suffix) = match max_abs {
        m if m >= 1e7 => (1e6, "M"),
        m if m >= 1e4 => (1e3, "k"),
        _ => return fmt_num(v),
    };
    if v.abs() < 1e-12 {
        return "0".into();
    }
    format!("{}{suffix}", fmt_num(v / unit))
}

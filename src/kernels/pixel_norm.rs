//! Pixelwise feature normalisation (`shaders/pixel_norm.wgsl`; Karras et al. 2018, ProGAN's G):
//! the feature vector at each position, over the channels, scaled to unit mean square.
//!
//! x is [rows, channels, plane]; r = 1/sqrt(mean_c x² + 1e-8) per (row, position).
//! Forward:  y_c = x_c·r        Backward: dx_c = r·(dy_c − y_c·mean_k(dy_k·y_k))

use super::case::uniform;
use super::{
    Binding, Bindings, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u,
};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::{PAR_MIN, par_chunk};
use rayon::prelude::*;

pub const EPS: f32 = 1e-8;

crate::params! {
    pub struct PixelNormParams {
        pub rows: u32,
        pub channels: u32,
        /// Positions per channel (H·W; 1 for a flat vector).
        pub plane: u32,
        pub x_off: u32,
        pub dy_off: u32,
        pub y_off: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "pixel_norm",
    source: include_str!("../../shaders/pixel_norm.wgsl"),
    preludes: &[],
};

fn dims(p: &[u8]) -> (usize, usize, usize) {
    let p: PixelNormParams = cast(p);
    (p.rows as usize, p.channels as usize, p.plane as usize)
}

/// Runs `f(row, out row)` over the rows of `out` (each `row_len` long), split over the pool.
fn for_rows(out: &mut [f32], row_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    match par_chunk(out.len(), PAR_MIN) {
        Some(_) => out
            .par_chunks_mut(row_len)
            .enumerate()
            .for_each(|(r, o)| f(r, o)),
        None => out
            .chunks_mut(row_len)
            .enumerate()
            .for_each(|(r, o)| f(r, o)),
    }
}

/// 1/sqrt(mean over channels of x² + ε) at every position of one row ([c, plane]), summed
/// channel by channel so the row is read in order.
fn inv_rms_row(x: &[f32], c: usize, plane: usize) -> Vec<f32> {
    let mut s = vec![0.0f32; plane];
    for ch in x.chunks_exact(plane).take(c) {
        for (acc, &v) in s.iter_mut().zip(ch) {
            *acc += v * v;
        }
    }
    for v in &mut s {
        *v = 1.0 / (*v / c as f32 + EPS).sqrt();
    }
    s
}

pub fn pixel_norm_forward_cpu(y: &mut [f32], x: &[f32], rows: usize, c: usize, plane: usize) {
    let len = c * plane;
    for_rows(&mut y[..rows * len], len, |r, o| {
        let xr = &x[r * len..][..len];
        let inv = inv_rms_row(xr, c, plane);
        for (oc, xc) in o.chunks_exact_mut(plane).zip(xr.chunks_exact(plane)) {
            for ((v, &xv), &i) in oc.iter_mut().zip(xc).zip(&inv) {
                *v = xv * i;
            }
        }
    });
}

pub fn pixel_norm_backward_cpu(
    dx: &mut [f32],
    x: &[f32],
    dy: &[f32],
    rows: usize,
    c: usize,
    plane: usize,
) {
    let len = c * plane;
    for_rows(&mut dx[..rows * len], len, |r, o| {
        let (xr, dyr) = (&x[r * len..][..len], &dy[r * len..][..len]);
        let inv = inv_rms_row(xr, c, plane);
        // mean over channels of dy·y at each position.
        let mut m = vec![0.0f32; plane];
        for (xc, dc) in xr.chunks_exact(plane).zip(dyr.chunks_exact(plane)) {
            for (((acc, &xv), &d), &i) in m.iter_mut().zip(xc).zip(dc).zip(&inv) {
                *acc += d * xv * i;
            }
        }
        for v in &mut m {
            *v /= c as f32;
        }
        for ((oc, xc), dc) in o
            .chunks_exact_mut(plane)
            .zip(xr.chunks_exact(plane))
            .zip(dyr.chunks_exact(plane))
        {
            for i in 0..plane {
                oc[i] = inv[i] * (dc[i] - xc[i] * inv[i] * m[i]);
            }
        }
    });
}

/// The reference's r at (row, position) in f64.
fn inv_rms_ref(x: &[f32], base: usize, c: usize, plane: usize) -> f64 {
    let s: f64 = (0..c).map(|k| (x[base + k * plane] as f64).powi(2)).sum();
    1.0 / (s / c as f64 + EPS as f64).sqrt()
}

pub static PIXEL_NORM_FORWARD: KernelDef = KernelDef {
    name: "pixel_norm_forward",
    shader: &SHADER,
    params: &<PixelNormParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("x"),
        Binding::unused("dy"),
        Binding::write("y"),
    ],
    workgroups: |p| {
        let (r, _, plane) = dims(p);
        elementwise_groups(u(r * plane))
    },
    cpu: |p, b: &mut Bindings| {
        let (r, c, plane) = dims(p);
        pixel_norm_forward_cpu(b.w(2), b.r(0), r, c, plane)
    },
    reference: |p, b| {
        let (rows, c, plane) = dims(p);
        let (x, y) = (b.r(0), b.w(2));
        for r in 0..rows {
            for pos in 0..plane {
                let base = r * c * plane + pos;
                let inv = inv_rms_ref(x, base, c, plane);
                for k in 0..c {
                    y[base + k * plane] = (x[base + k * plane] as f64 * inv) as f32;
                }
            }
        }
    },
    cases: || cases(false),
    bench: || bench(false),
    work: |p| {
        let (r, c, plane) = dims(p);
        Work::elementwise(u(r * c * plane), 2)
    },
};

pub static PIXEL_NORM_BACKWARD: KernelDef = KernelDef {
    name: "pixel_norm_backward",
    shader: &SHADER,
    params: &<PixelNormParams as super::Params>::LAYOUT,
    bindings: &[Binding::read("x"), Binding::read("dy"), Binding::write("y")],
    workgroups: |p| {
        let (r, _, plane) = dims(p);
        elementwise_groups(u(r * plane))
    },
    cpu: |p, b| {
        let (r, c, plane) = dims(p);
        pixel_norm_backward_cpu(b.w(2), b.r(0), b.r(1), r, c, plane)
    },
    reference: |p, b| {
        let (rows, c, plane) = dims(p);
        let (x, dy, dx) = (b.r(0), b.r(1), b.w(2));
        for r in 0..rows {
            for pos in 0..plane {
                let base = r * c * plane + pos;
                let inv = inv_rms_ref(x, base, c, plane);
                let y = |k: usize| x[base + k * plane] as f64 * inv;
                let m: f64 = (0..c)
                    .map(|k| dy[base + k * plane] as f64 * y(k))
                    .sum::<f64>()
                    / c as f64;
                for k in 0..c {
                    dx[base + k * plane] = (inv * (dy[base + k * plane] as f64 - y(k) * m)) as f32;
                }
            }
        }
    },
    cases: || cases(true),
    bench: || bench(true),
    work: |p| {
        let (r, c, plane) = dims(p);
        Work::elementwise(u(r * c * plane), 3)
    },
};

fn case(rows: usize, c: usize, plane: usize, backward: bool, seed: u64) -> Case {
    let p = PixelNormParams {
        rows: u(rows),
        channels: u(c),
        plane: u(plane),
        ..Default::default()
    };
    let n = rows * c * plane;
    let case = Case::new(format!("rows={rows} c={c} plane={plane}"), p)
        .tol(1e-5, 1e-4)
        .f32(uniform(seed, n, -2.0, 2.0));
    if backward {
        case.f32(uniform(seed + 1, n, -1.0, 1.0)).zeros(n)
    } else {
        case.unused().zeros(n)
    }
}

/// One channel, flat vectors (G's noise), odd planes, many rows.
fn cases(backward: bool) -> Vec<Case> {
    [
        (1, 1, 1),
        (3, 100, 1),
        (2, 5, 7),
        (5, 17, 9),
        (33, 3, 16),
        (4, 64, 64),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (r, c, plane))| case(r, c, plane, backward, 17 * i as u64 + 3))
    .collect()
}

/// A ProGAN G's 16×16 and 64×64 features at batch 64.
fn bench(backward: bool) -> Vec<Case> {
    vec![
        case(64, 128, 16 * 16, backward, 1),
        case(64, 32, 64 * 64, backward, 2),
    ]
}

fn params(rows: usize, c: usize, plane: usize) -> PixelNormParams {
    PixelNormParams {
        rows: u(rows),
        channels: u(c),
        plane: u(plane),
        ..Default::default()
    }
}

/// y = x / sqrt(mean over channels of x² + 1e-8) at every (row, position) of [rows, c, plane].
pub fn pixel_norm_forward(
    be: &mut dyn Backend,
    y: Tensor,
    x: Tensor,
    rows: usize,
    c: usize,
    plane: usize,
) {
    launch(be, &PIXEL_NORM_FORWARD, params(rows, c, plane), &[x, x, y]);
}

/// dx from x (the forward's input) and dy.
pub fn pixel_norm_backward(
    be: &mut dyn Backend,
    dx: Tensor,
    x: Tensor,
    dy: Tensor,
    rows: usize,
    c: usize,
    plane: usize,
) {
    launch(
        be,
        &PIXEL_NORM_BACKWARD,
        params(rows, c, plane),
        &[x, dy, dx],
    );
}

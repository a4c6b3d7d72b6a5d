//! Row softmax and its backward (`shaders/softmax.wgsl`) over `rows` rows of `n` values, n of
//! any length (a row longer than the 256-wide workgroup is walked in strides). The self-attention
//! layer's softmax over positions.
//!
//! Forward:  y[r, j] = exp(x[r, j] − max_r x) / Σ_j' exp(x[r, j'] − max_r x)
//! Backward: rowdot[r] = Σ_j y[r, j]·g[r, j];  g[r, j] ← s·y[r, j]·(g[r, j] − rowdot[r])
//!           in place: g holds ∂L/∂y on entry and ∂L/∂x on exit; s is `scale[0]` when asked
//!           (the attention layer's γ), else 1.

use super::case::uniform;
use super::{Binding, Bindings, Case, KernelDef, Shader, Work, cast, launch, u};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::PAR_MIN;
use rayon::prelude::*;

crate::params! {
    pub struct SoftmaxParams {
        pub rows: u32,
        pub n: u32,
        /// bit 0: the backward multiplies its result by scale[0].
        pub flags: u32,
        pub src_off: u32,
        pub scale_off: u32,
        pub rowdot_off: u32,
        pub dst_off: u32,
    }
}

pub const FLAG_SCALE: u32 = 1;

pub static SHADER: Shader = Shader {
    name: "softmax",
    source: include_str!("../../shaders/softmax.wgsl"),
    preludes: &[],
};

fn dims(p: &[u8]) -> (usize, usize, u32) {
    let p: SoftmaxParams = cast(p);
    (p.rows as usize, p.n as usize, p.flags)
}

/// One workgroup per row, up to the dispatch limit (the shader strides over the rest).
fn groups(p: &[u8]) -> [u32; 3] {
    let (rows, _, _) = dims(p);
    [u(rows).clamp(1, 65_535), 1, 1]
}

pub static SOFTMAX_ROWS_FORWARD: KernelDef = KernelDef {
    name: "softmax_rows_forward",
    shader: &SHADER,
    params: &<SoftmaxParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("src"),
        Binding::unused("scale"),
        Binding::unused("rowdot"),
        Binding::write("dst"),
    ],
    workgroups: groups,
    cpu: |p, b| {
        let (rows, n, _) = dims(p);
        softmax_rows_forward_cpu(b.w(3), b.r(0), rows, n)
    },
    reference: |p, b| {
        let (rows, n, _) = dims(p);
        let (x, y) = (b.r(0), b.w(3));
        for r in 0..rows {
            let row = &x[r * n..(r + 1) * n];
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v)) as f64;
            let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            for j in 0..n {
                y[r * n + j] = ((row[j] as f64 - m).exp() / s) as f32;
            }
        }
    },
    cases: || cases(false),
    bench: || bench(false),
    work: |p| {
        let (rows, n, _) = dims(p);
        Work {
            flops: 5.0 * (rows * n) as f64,
            bytes: 4.0 * (3 * rows * n) as f64,
        }
    },
};

pub static SOFTMAX_ROWS_BACKWARD: KernelDef = KernelDef {
    name: "softmax_rows_backward",
    shader: &SHADER,
    params: &<SoftmaxParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("src"),
        Binding::read("scale"),
        Binding::write("rowdot"),
        Binding::write("dst"),
    ],
    workgroups: groups,
    cpu: |p, b| {
        let (rows, n, flags) = dims(p);
        let s = scale_of(flags, b);
        softmax_rows_backward_cpu(b.w(3), b.w(2), b.r(0), s, rows, n)
    },
    reference: |p, b| {
        let (rows, n, flags) = dims(p);
        let s = scale_of(flags, b) as f64;
        let (y, dot, g) = (b.r(0), b.w(2), b.w(3));
        for r in 0..rows {
            let d: f64 = (0..n)
                .map(|j| y[r * n + j] as f64 * g[r * n + j] as f64)
                .sum();
            dot[r] = d as f32;
            for j in 0..n {
                let i = r * n + j;
                g[i] = (s * y[i] as f64 * (g[i] as f64 - d)) as f32;
            }
        }
    },
    cases: || cases(true),
    bench: || bench(true),
    work: |p| {
        let (rows, n, _) = dims(p);
        Work {
            flops: 4.0 * (rows * n) as f64,
            bytes: 4.0 * (3 * rows * n) as f64,
        }
    },
};

fn scale_of(flags: u32, b: &Bindings) -> f32 {
    if flags & FLAG_SCALE != 0 {
        b.r(1)[0]
    } else {
        1.0
    }
}

fn case(rows: usize, n: usize, backward: bool, flags: u32, spread: f32, seed: u64) -> Case {
    let p = SoftmaxParams {
        rows: u(rows),
        n: u(n),
        flags,
        ..Default::default()
    };
    let label = format!("rows={rows} n={n} flags={flags} spread={spread}");
    let x = uniform(seed, rows * n, -spread, spread);
    if backward {
        // A real softmax output, so the products have the sizes they have in use.
        let mut y = vec![0.0; rows * n];
        softmax_rows_forward_cpu(&mut y, &x, rows, n);
        Case::new(label, p)
            .f32(y)
            .f32(vec![-0.75])
            .zeros(rows)
            .f32(uniform(seed + 1, rows * n, -1.0, 1.0))
            .tol(1e-6, 1e-4)
    } else {
        Case::new(label, p)
            .f32(x)
            .unused()
            .unused()
            .zeros(rows * n)
            .tol(1e-7, 1e-5)
    }
}

/// Single values, rows shorter and longer than a workgroup (257, 1000), large logits (the
/// maximum must be subtracted: exp(80) overflows f32), and more rows than one dispatch holds.
fn cases(backward: bool) -> Vec<Case> {
    let mut out: Vec<Case> = [
        (1, 1, 1.0),
        (3, 5, 1.0),
        (7, 255, 4.0),
        (5, 257, 4.0),
        (2, 1000, 100.0),
        (33, 64, 10.0),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (rows, n, spread))| {
        let flags = if backward { (i % 2) as u32 } else { 0 };
        case(rows, n, backward, flags, spread, 17 * i as u64 + 3)
    })
    .collect();
    out.push(case(65_537, 2, backward, 0, 2.0, 99));
    out
}

/// The attention maps of a 16×16 attention layer (256 positions) at batch 64 (G) and 128 (D).
fn bench(backward: bool) -> Vec<Case> {
    vec![
        case(64 * 256, 256, backward, backward as u32, 4.0, 1),
        case(128 * 256, 256, backward, backward as u32, 4.0, 2),
    ]
}

// ---- launchers -----------------------------------------------------------------------------

/// y [rows, n] = softmax of each row of x [rows, n].
pub fn softmax_rows_forward(be: &mut dyn Backend, y: Tensor, x: Tensor, rows: usize, n: usize) {
    let p = SoftmaxParams {
        rows: u(rows),
        n: u(n),
        ..Default::default()
    };
    launch(be, &SOFTMAX_ROWS_FORWARD, p, &[x, x, x, y]);
}

/// In place on g [rows, n]: ∂L/∂y → s·∂L/∂x for y = softmax(x) [rows, n], s = scale[0] when
/// given; rowdot [rows] = ⟨y, ∂L/∂y⟩ of each row.
pub fn softmax_rows_backward(
    be: &mut dyn Backend,
    g: Tensor,
    rowdot: Tensor,
    y: Tensor,
    scale: Option<Tensor>,
    rows: usize,
    n: usize,
) {
    let p = SoftmaxParams {
        rows: u(rows),
        n: u(n),
        flags: if scale.is_some() { FLAG_SCALE } else { 0 },
        ..Default::default()
    };
    launch(
        be,
        &SOFTMAX_ROWS_BACKWARD,
        p,
        &[y, scale.unwrap_or(y), rowdot, g],
    );
}

// ---- the fast twins ------------------------------------------------------------------------

/// eˣ for x ≤ 0 without a library call, so the loop vectorises (Cephes' expf): n = x·log₂e
/// rounded to nearest (the 1.5·2²³ trick), r = x − n·ln 2 in two parts (|r| ≤ ½ ln 2), eʳ by
/// its degree-7 Taylor polynomial, 2ⁿ put into the exponent bits. Within 4·10⁻⁷ of eˣ
/// (tested); below −87 (eˣ < 2⁻¹²⁵) it returns 0.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.max(-87.0);
    let n = (xc * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0_f32;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x < -87.0 { 0.0 } else { p * scale }
}

/// Rows per parallel task: about PAR_MIN values.
fn rows_per_task(n: usize) -> usize {
    (PAR_MIN / n.max(1)).max(1)
}

pub fn softmax_rows_forward_cpu(y: &mut [f32], x: &[f32], rows: usize, n: usize) {
    if rows == 0 || n == 0 {
        return;
    }
    let per = rows_per_task(n);
    y[..rows * n]
        .par_chunks_mut(per * n)
        .zip(x[..rows * n].par_chunks(per * n))
        .for_each(|(ys, xs)| {
            for (yr, xr) in ys.chunks_exact_mut(n).zip(xs.chunks_exact(n)) {
                let m = xr.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
                for (o, &v) in yr.iter_mut().zip(xr) {
                    *o = exp_nonpositive(v - m);
                }
                let inv = 1.0 / yr.iter().sum::<f32>();
                yr.iter_mut().for_each(|o| *o *= inv);
            }
        });
}

pub fn softmax_rows_backward_cpu(
    g: &mut [f32],
    rowdot: &mut [f32],
    y: &[f32],
    s: f32,
    rows: usize,
    n: usize,
) {
    if rows == 0 || n == 0 {
        return;
    }
    let per = rows_per_task(n);
    g[..rows * n]
        .par_chunks_mut(per * n)
        .zip(rowdot[..rows].par_chunks_mut(per))
        .zip(y[..rows * n].par_chunks(per * n))
        .for_each(|((gs, ds), ys)| {
            for ((gr, d), yr) in gs.chunks_exact_mut(n).zip(ds).zip(ys.chunks_exact(n)) {
                let dot: f32 = gr.iter().zip(yr).map(|(a, b)| a * b).sum();
                *d = dot;
                for (gv, &yv) in gr.iter_mut().zip(yr) {
                    *gv = s * yv * (*gv - dot);
                }
            }
        });
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_nonpositive_is_within_4e7_of_exp() {
        for i in 0..=200_000 {
            let x = (-90.0 * i as f64 / 200_000.0) as f32;
            let want = (x as f64).exp();
            let got = super::exp_nonpositive(x) as f64;
            if x < -87.0 {
                assert_eq!(got, 0.0);
            } else {
                assert!(
                    (got - want).abs() <= 4e-7 * want,
                    "exp({x}) = {got}, want {want}"
                );
            }
        }
    }
}

//! Spectral normalization's kernels (`shaders/spectral_norm.wgsl`) for a weight W viewed as a
//! matrix [rows, cols] = [out, in·…]: vector normalization and dot products for the power
//! iteration and σ = uᵀWv, the scaled weight W_SN = W/σ, and the gradient through σ,
//! ∂L/∂W = (G − ⟨G, W_SN⟩·u vᵀ)/σ (PyTorch's `spectral_norm`). The mat-vec products run through
//! the matmul kernel; `layers::spectral_norm` puts the pieces together.

use super::case::uniform;
use super::{
    Binding, Bindings, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u,
};
use crate::backend::{Backend, Tensor, WriteMode};
use crate::cpu::par::{PAR_MIN, for_chunks, par_chunk};
use rayon::prelude::*;

crate::params! {
    pub struct SnParams {
        pub n: u32,
        pub rows: u32,
        pub cols: u32,
        /// sn_grad's storage: [outer, rows, inner], cols = outer·inner (see the shader).
        pub inner: u32,
        pub accumulate: u32,
        pub a_off: u32,
        pub b_off: u32,
        pub c_off: u32,
        pub scalars_off: u32,
        pub out_off: u32,
    }
}

/// PyTorch's `F.normalize` floor on the norm.
pub const NORM_EPS: f32 = 1e-12;

pub static SHADER: Shader = Shader {
    name: "spectral_norm",
    source: include_str!("../../shaders/spectral_norm.wgsl"),
    preludes: &[],
};

fn params(n: usize) -> SnParams {
    SnParams {
        n: u(n),
        ..Default::default()
    }
}

// ---- sn_normalize ----------------------------------------------------------------------------

fn normalize_ref(p: &[u8], b: &mut Bindings) {
    let p: SnParams = cast(p);
    let (x, out) = (b.r(0), b.w(4));
    let n = p.n as usize;
    let norm = x[..n]
        .iter()
        .map(|&v| (v as f64).powi(2))
        .sum::<f64>()
        .sqrt() as f32;
    let inv = 1.0 / norm.max(NORM_EPS);
    for i in 0..n {
        out[i] = x[i] * inv;
    }
}

pub static SN_NORMALIZE: KernelDef = KernelDef {
    name: "sn_normalize",
    shader: &SHADER,
    params: &<SnParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("a"),
        Binding::unused("b"),
        Binding::unused("c"),
        Binding::unused("scalars"),
        Binding::write("out"),
    ],
    workgroups: |_| [1, 1, 1],
    // Vectors of a layer's width: the loop is the twin.
    cpu: normalize_ref,
    reference: normalize_ref,
    cases: || {
        let mut out: Vec<Case> = [1, 3, 65, 784, 3000]
            .into_iter()
            .map(|n| {
                Case::new(format!("n={n}"), params(n))
                    .f32(uniform(n as u64, n, -1.0, 1.0))
                    .unused()
                    .unused()
                    .unused()
                    .zeros(n)
                    .tol(1e-6, 1e-5)
            })
            .collect();
        // A zero vector stays zero (the norm is floored, never divided by 0).
        out.push(
            Case::new("zeros", params(5))
                .f32(vec![0.0; 5])
                .unused()
                .unused()
                .unused()
                .f32(vec![1.0; 5]),
        );
        out
    },
    bench: || {
        vec![
            Case::new("n=1024", params(1024))
                .f32(uniform(1, 1024, -1.0, 1.0))
                .unused()
                .unused()
                .unused()
                .zeros(1024),
        ]
    },
    work: |p| Work::elementwise(cast::<SnParams>(p).n, 2),
};

// ---- sn_dot ----------------------------------------------------------------------------------

fn dot_ref(p: &[u8], b: &mut Bindings) {
    let p: SnParams = cast(p);
    let (x, y, out) = (b.r(0), b.r(1), b.w(4));
    let n = p.n as usize;
    out[0] = (0..n).map(|i| x[i] as f64 * y[i] as f64).sum::<f64>() as f32;
}

fn dot_case(n: usize, seed: u64) -> Case {
    Case::new(format!("n={n}"), params(n))
        .f32(uniform(seed, n, -1.0, 1.0))
        .f32(uniform(seed + 1, n, -1.0, 1.0))
        .unused()
        .unused()
        .zeros(1)
        .tol(2e-6 * (n as f32).sqrt(), 1e-5)
}

pub static SN_DOT: KernelDef = KernelDef {
    name: "sn_dot",
    shader: &SHADER,
    params: &<SnParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("a"),
        Binding::read("b"),
        Binding::unused("c"),
        Binding::unused("scalars"),
        Binding::write("out"),
    ],
    workgroups: |_| [1, 1, 1],
    cpu: |p, b| {
        let p: SnParams = cast(p);
        let (x, y, out) = (b.r(0), b.r(1), b.w(4));
        let n = p.n as usize;
        out[0] = dot_cpu(&x[..n], &y[..n]);
    },
    reference: dot_ref,
    cases: || {
        [1, 3, 65, 1200, 70_001]
            .into_iter()
            .enumerate()
            .map(|(i, n)| dot_case(n, i as u64))
            .collect()
    },
    bench: || vec![dot_case(1024 * 1024, 1)],
    work: |p| {
        let n = cast::<SnParams>(p).n as f64;
        Work {
            flops: 2.0 * n,
            bytes: 8.0 * n,
        }
    },
};

/// Σ a[i]·b[i] in f32 over the pool: chunks summed in order, so the result does not depend on
/// scheduling.
fn dot_cpu(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let part = |s: usize, e: usize| {
        a[s..e]
            .iter()
            .zip(&b[s..e])
            .map(|(x, y)| x * y)
            .sum::<f32>()
    };
    match par_chunk(n, PAR_MIN) {
        Some(c) => {
            let parts: Vec<f32> = (0..n.div_ceil(c))
                .into_par_iter()
                .map(|i| part(i * c, ((i + 1) * c).min(n)))
                .collect();
            parts.iter().sum()
        }
        None => part(0, n),
    }
}

// ---- sn_scale --------------------------------------------------------------------------------

fn scale_case(n: usize, seed: u64) -> Case {
    Case::new(format!("n={n}"), params(n))
        .f32(uniform(seed, n, -1.0, 1.0))
        .unused()
        .unused()
        .f32(vec![uniform(seed + 1, 1, 0.5, 3.0)[0], 0.0])
        .zeros(n)
        .tol(1e-7, 1e-6)
}

pub static SN_SCALE: KernelDef = KernelDef {
    name: "sn_scale",
    shader: &SHADER,
    params: &<SnParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("a"),
        Binding::unused("b"),
        Binding::unused("c"),
        Binding::read("scalars"),
        Binding::write("out"),
    ],
    workgroups: |p| elementwise_groups(cast::<SnParams>(p).n),
    cpu: |p, b| {
        let p: SnParams = cast(p);
        let (w, sigma, out) = (b.r(0), b.r(3)[0], b.w(4));
        for_chunks(&mut out[..p.n as usize], PAR_MIN, |s, o| {
            for (j, v) in o.iter_mut().enumerate() {
                *v = w[s + j] / sigma;
            }
        });
    },
    reference: |p, b| {
        let p: SnParams = cast(p);
        let (w, sigma, out) = (b.r(0), b.r(3)[0], b.w(4));
        for i in 0..p.n as usize {
            out[i] = w[i] / sigma;
        }
    },
    cases: || {
        [1, 63, 1200, 70_001]
            .into_iter()
            .map(|n| scale_case(n, n as u64))
            .collect()
    },
    bench: || vec![scale_case(1024 * 1024, 1)],
    work: |p| Work::elementwise(cast::<SnParams>(p).n, 2),
};

// ---- sn_grad ---------------------------------------------------------------------------------

/// (row, column) of word i of a [rows, cols] matrix stored [outer, rows, inner].
fn matrix_index(p: &SnParams, i: usize) -> (usize, usize) {
    let (rows, inner) = (p.rows as usize, p.inner as usize);
    let (a, rest) = (i / (rows * inner), i % (rows * inner));
    (rest / inner, a * inner + rest % inner)
}

/// A [rows, cols] matrix stored [cols / inner, rows, inner].
fn grad_case(rows: usize, cols: usize, inner: usize, accumulate: bool, seed: u64) -> Case {
    let n = rows * cols;
    let p = SnParams {
        n: u(n),
        rows: u(rows),
        cols: u(cols),
        inner: u(inner),
        accumulate: accumulate as u32,
        ..Default::default()
    };
    Case::new(format!("{rows}x{cols} inner={inner} acc={accumulate}"), p)
        .f32(uniform(seed, n, -1.0, 1.0))
        .f32(uniform(seed + 1, rows, -1.0, 1.0))
        .f32(uniform(seed + 2, cols, -1.0, 1.0))
        .f32(vec![1.7, -0.6])
        .f32(uniform(seed + 3, n, -1.0, 1.0))
        .tol(1e-6, 1e-5)
}

pub static SN_GRAD: KernelDef = KernelDef {
    name: "sn_grad",
    shader: &SHADER,
    params: &<SnParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("a"),
        Binding::read("b"),
        Binding::read("c"),
        Binding::read("scalars"),
        Binding::write("out"),
    ],
    workgroups: |p| {
        let p: SnParams = cast(p);
        let block = p.rows * p.inner;
        [
            block.div_ceil(256).clamp(1, 65_535),
            (p.cols / p.inner).clamp(1, 65_535),
            1,
        ]
    },
    cpu: |p, b| {
        let p: SnParams = cast(p);
        let (g, uu, vv, s, out) = (b.r(0), b.r(1), b.r(2), b.r(3), b.w(4));
        let (sigma, inner) = (s[0], s[1]);
        let acc = p.accumulate != 0;
        for_chunks(&mut out[..p.n as usize], PAR_MIN, |start, o| {
            for (j, v) in o.iter_mut().enumerate() {
                let i = start + j;
                let (r, c) = matrix_index(&p, i);
                let x = (g[i] - inner * uu[r] * vv[c]) / sigma;
                *v = if acc { *v + x } else { x };
            }
        });
    },
    #[allow(clippy::needless_range_loop)]
    reference: |p, b| {
        let p: SnParams = cast(p);
        let (g, uu, vv, s, out) = (b.r(0), b.r(1), b.r(2), b.r(3), b.w(4));
        let (rows, inner) = (p.rows as usize, p.inner as usize);
        for r in 0..rows {
            for c in 0..p.cols as usize {
                let i = ((c / inner) * rows + r) * inner + c % inner;
                let x = (g[i] - s[1] * uu[r] * vv[c]) / s[0];
                out[i] = if p.accumulate != 0 { out[i] + x } else { x };
            }
        }
    },
    cases: || {
        let mut out = Vec::new();
        // Row-major (inner = cols), transposed (inner = 1), and a ConvTranspose2d's
        // [in, out, k, k] (inner = k·k, cols = in·k·k) with ragged channel counts.
        for (i, (r, c)) in [(1, 1), (3, 65), (65, 3), (100, 127), (16, 4800)]
            .into_iter()
            .enumerate()
        {
            for inner in [c, 1] {
                out.push(grad_case(
                    r,
                    c,
                    inner,
                    i % 2 == 1,
                    10 * i as u64 + inner as u64,
                ));
            }
        }
        for (i, (out_c, in_c, kk)) in [(3, 5, 9), (1, 2, 16), (7, 3, 25), (64, 33, 16)]
            .into_iter()
            .enumerate()
        {
            out.push(grad_case(out_c, in_c * kk, kk, i % 2 == 0, 100 + i as u64));
        }
        out
    },
    bench: || vec![grad_case(1024, 1024, 1, false, 1)],
    work: |p| Work::elementwise(cast::<SnParams>(p).n, 2),
};

// ---- launchers -------------------------------------------------------------------------------

/// out[..n] = x / max(‖x‖, 1e-12).
pub fn sn_normalize(be: &mut dyn Backend, out: Tensor, x: Tensor, n: usize) {
    launch(be, &SN_NORMALIZE, params(n), &[x, x, x, x, out]);
}

/// out[0] = Σ_{i<n} a[i]·b[i].
pub fn sn_dot(be: &mut dyn Backend, out: Tensor, a: Tensor, b: Tensor, n: usize) {
    launch(be, &SN_DOT, params(n), &[a, b, a, a, out]);
}

/// out[..n] = w / σ with σ = scalars[0].
pub fn sn_scale(be: &mut dyn Backend, out: Tensor, w: Tensor, scalars: Tensor, n: usize) {
    launch(be, &SN_SCALE, params(n), &[w, w, w, scalars, out]);
}

/// A [rows, cols] weight as spectral norm views it, stored [cols / inner, rows, inner]
/// (inner = cols: row-major; 1: transposed).
#[derive(Clone, Copy, Debug)]
pub struct SnMatrix {
    pub rows: usize,
    pub cols: usize,
    pub inner: usize,
}

/// What the forward's power iteration leaves: u [rows], v [cols] and scalars [σ, ⟨G, W_SN⟩].
#[derive(Clone, Copy, Debug)]
pub struct SingularPair {
    pub u: Tensor,
    pub v: Tensor,
    pub scalars: Tensor,
}

/// dw (+)= (g − scalars[1]·u vᵀ) / scalars[0].
pub fn sn_grad(
    be: &mut dyn Backend,
    (dw, store): (Tensor, WriteMode),
    g: Tensor,
    pair: SingularPair,
    matrix: SnMatrix,
) {
    let SnMatrix { rows, cols, inner } = matrix;
    debug_assert!(inner > 0 && cols.is_multiple_of(inner));
    let p = SnParams {
        n: u(rows * cols),
        rows: u(rows),
        cols: u(cols),
        inner: u(inner),
        accumulate: store.code(),
        ..Default::default()
    };
    launch(be, &SN_GRAD, p, &[g, pair.u, pair.v, pair.scalars, dw]);
}

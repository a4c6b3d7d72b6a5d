//! Gaussian Parzen windows (`shaders/parzen.wgsl`), the estimator of the paper's Table 1. The
//! squared distances expand as ‖x‖² + ‖μ‖² − 2·x·μ, so the dot products come from the matmul and
//! these two kernels supply the rest: row norms, and a row-wise log-sum-exp.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u};
use crate::backend::{Backend, Tensor};

crate::params! {
    pub struct ParzenParams {
        pub rows: u32,
        pub n: u32,
        pub a_off: u32,
        pub x_sq_off: u32,
        pub mu_sq_off: u32,
        pub out_off: u32,
        /// 1 / (2σ²)
        pub inv_two_var: f32,
        /// log n + (dim/2)·log(2πσ²)
        pub log_norm: f32,
    }
}

pub static SHADER: Shader = Shader {
    name: "parzen",
    source: include_str!("../../shaders/parzen.wgsl"),
    preludes: &[],
};

fn row_sum_squares_ref(p: &[u8], b: &mut super::Bindings) {
    let p: ParzenParams = cast(p);
    let (x, out) = (b.r(0), b.w(3));
    let cols = p.n as usize;
    for (r, o) in out[..p.rows as usize].iter_mut().enumerate() {
        *o = x[r * cols..(r + 1) * cols].iter().map(|v| v * v).sum();
    }
}

fn parzen_ref(p: &[u8], b: &mut super::Bindings) {
    let p: ParzenParams = cast(p);
    let (dot, x_sq, mu_sq, out) = (b.r(0), b.r(1), b.r(2), b.w(3));
    let n = p.n as usize;
    for r in 0..p.rows as usize {
        let row = &dot[r * n..(r + 1) * n];
        let v = |j: usize| -(x_sq[r] + mu_sq[j] - 2.0 * row[j]).max(0.0) * p.inv_two_var;
        let m = (0..n).map(v).fold(f32::NEG_INFINITY, f32::max);
        let s: f32 = (0..n).map(|j| (v(j) - m).exp()).sum();
        out[r] = m + s.ln() - p.log_norm;
    }
}

pub static ROW_SUM_SQUARES: KernelDef = KernelDef {
    name: "row_sum_squares",
    shader: &SHADER,
    params: &<ParzenParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("a"),
        Binding::unused("x_sq"),
        Binding::unused("mu_sq"),
        Binding::write("out"),
    ],
    workgroups: |p| elementwise_groups(cast::<ParzenParams>(p).rows),
    // Used once per evaluation; the loop is the twin.
    cpu: row_sum_squares_ref,
    reference: row_sum_squares_ref,
    cases: || {
        [(1, 1), (3, 784), (65, 2), (1000, 63)]
            .into_iter()
            .map(|(r, c)| sq_case(r, c, r as u64))
            .collect()
    },
    bench: || vec![sq_case(10_000, 784, 1)],
    work: |p| {
        let p: ParzenParams = cast(p);
        Work::elementwise(p.rows * p.n, 1)
    },
};

pub static PARZEN_LOG_DENSITY: KernelDef = KernelDef {
    name: "parzen_log_density",
    shader: &SHADER,
    params: &<ParzenParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("a"),
        Binding::read("x_sq"),
        Binding::read("mu_sq"),
        Binding::write("out"),
    ],
    workgroups: |p| {
        // One workgroup per row, rows beyond 65,535 spilling into y.
        let rows = cast::<ParzenParams>(p).rows;
        [rows.clamp(1, 65_535), rows.div_ceil(65_535).max(1), 1]
    },
    cpu: parzen_ref,
    reference: parzen_ref,
    cases: || {
        [(1, 1), (3, 700), (65, 257), (300, 1000)]
            .into_iter()
            .map(|(r, n)| parzen_case(r, n, r as u64))
            .collect()
    },
    bench: || vec![parzen_case(500, 10_000, 1)],
    work: |p| {
        let p: ParzenParams = cast(p);
        Work::elementwise(p.rows * p.n, 2)
    },
};

fn sq_case(rows: usize, cols: usize, seed: u64) -> Case {
    let p = ParzenParams {
        rows: u(rows),
        n: u(cols),
        ..Default::default()
    };
    Case::new(format!("rows={rows} cols={cols}"), p)
        .f32(uniform(seed, rows * cols, -1.0, 1.0))
        .unused()
        .unused()
        .zeros(rows)
        .tol(1e-5, 1e-5)
}

fn parzen_case(rows: usize, n: usize, seed: u64) -> Case {
    let dim = 784;
    let (inv_two_var, log_norm) = parzen_constants(n, dim, 0.2);
    let p = ParzenParams {
        rows: u(rows),
        n: u(n),
        inv_two_var,
        log_norm,
        ..Default::default()
    };
    Case::new(format!("rows={rows} n={n}"), p)
        .f32(uniform(seed, rows * n, 0.0, 20.0))
        .f32(uniform(seed + 1, rows, 20.0, 40.0))
        .f32(uniform(seed + 2, n, 20.0, 40.0))
        .zeros(rows)
        .tol(1e-3, 1e-5)
}

/// (1/(2σ²), log n + (dim/2)·log(2πσ²)), computed in f64 once on the host for both backends.
pub fn parzen_constants(n: usize, dim: usize, sigma: f32) -> (f32, f32) {
    let var = (sigma as f64).powi(2);
    let log_norm = (n as f64).ln() + 0.5 * dim as f64 * (std::f64::consts::TAU * var).ln();
    ((0.5 / var) as f32, log_norm as f32)
}

/// out[r] = Σ_c x[r, c]² for x [rows, cols].
pub fn row_sum_squares(be: &mut dyn Backend, out: Tensor, x: Tensor, rows: usize, cols: usize) {
    let p = ParzenParams {
        rows: u(rows),
        n: u(cols),
        ..Default::default()
    };
    launch(be, &ROW_SUM_SQUARES, p, &[x, x, x, out]);
}

/// A Parzen window's Gaussians: `n` centres μ_j in `dim` dimensions, each a N(μ_j, σ²·I_dim).
#[derive(Clone, Copy, Debug)]
pub struct GaussianMixture {
    pub n: usize,
    pub dim: usize,
    pub sigma: f32,
}

/// out[r] = log (1/n) Σ_j N(x_r; μ_j, σ²·I_dim) for r < rows: the window's log density, from
/// dot[r, j] = x_r·μ_j ([rows, n], from `matmul`), x_sq[r] = ‖x_r‖² and mu_sq[j] = ‖μ_j‖²
/// (from `row_sum_squares`).
pub fn parzen_log_density(
    be: &mut dyn Backend,
    out: Tensor,
    dot: Tensor,
    x_sq: Tensor,
    mu_sq: Tensor,
    rows: usize,
    window: GaussianMixture,
) {
    let GaussianMixture { n, dim, sigma } = window;
    if rows == 0 {
        return;
    }
    let (inv_two_var, log_norm) = parzen_constants(n, dim, sigma);
    let p = ParzenParams {
        rows: u(rows),
        n: u(n),
        inv_two_var,
        log_norm,
        ..Default::default()
    };
    launch(be, &PARZEN_LOG_DENSITY, p, &[dot, x_sq, mu_sq, out]);
}

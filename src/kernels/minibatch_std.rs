//! The minibatch standard-deviation feature (`shaders/minibatch_std.wgsl`; Karras et al. 2018,
//! ProGAN's D): each group of `group` consecutive rows gets one more channel holding the mean,
//! over every (channel, position), of the group's standard deviation there — so D can see how
//! varied a batch is, which penalises a generator that collapses.
//!
//! x [rows, C, plane] → y [rows, C + 1, plane]; P = C·plane; per group and position p:
//! μ_p = mean x, d = x − μ_p, σ_p = sqrt(mean d² + 1e-8), s = (1/P) Σ_p σ_p.
//! Forward:  y = [x | s]
//! Backward: dx = dy[:C] + S·d/(P·G·σ_p), S = Σ over the group of dy's extra channel
//! Tangent (a gradient penalty's second-order pass, v the tangent, S from the last backward's
//! δ): y = [v | ṡ], ṡ = (1/(P·G)) Σ_p Σ_g d·v/σ_p, and u = ∂(S·ṡ)/∂x at fixed v and S,
//! u = S/(P·G)·((v − v̄_p)/σ_p − a_p·d/(G·σ_p³)) with a_p = Σ_g d·v — the term the layer's
//! curvature adds to ∂P/∂θ of every layer below it (see `layers::progressive`).
//!
//! Rows are grouped consecutively (ProGAN's TensorFlow code strides them), so a D-step's
//! [real; fake] batch never mixes real and generated rows in a group when the batch is a
//! multiple of the group.

use super::case::uniform;
use super::{Binding, Bindings, Case, KernelDef, Shader, Work, cast, launch, u};
use crate::backend::{Backend, Tensor};
use rayon::prelude::*;

pub const EPS: f32 = 1e-8;

crate::params! {
    pub struct MinibatchStdParams {
        pub rows: u32,
        /// Rows per group (divides rows).
        pub group: u32,
        pub channels: u32,
        pub plane: u32,
        pub x_off: u32,
        pub v_off: u32,
        pub dy_off: u32,
        pub y_off: u32,
        pub u_off: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "minibatch_std",
    source: include_str!("../../shaders/minibatch_std.wgsl"),
    preludes: &[],
};

#[derive(Clone, Copy)]
struct Dims {
    rows: usize,
    group: usize,
    /// C·plane.
    len: usize,
    plane: usize,
}

fn dims(p: &[u8]) -> Dims {
    let p: MinibatchStdParams = cast(p);
    Dims {
        rows: p.rows as usize,
        group: p.group as usize,
        len: (p.channels * p.plane) as usize,
        plane: p.plane as usize,
    }
}

fn groups(p: &[u8]) -> [u32; 3] {
    let d = dims(p);
    [u(d.rows / d.group.max(1)).max(1), 1, 1]
}

/// (μ, σ) of the group whose rows are `x` ([group, len]) at `pos`.
fn stats(x: &[f32], d: Dims, pos: usize) -> (f32, f32) {
    let mut m = 0.0f32;
    for g in 0..d.group {
        m += x[g * d.len + pos];
    }
    m /= d.group as f32;
    let mut s = 0.0f32;
    for g in 0..d.group {
        let e = x[g * d.len + pos] - m;
        s += e * e;
    }
    (m, (s / d.group as f32 + EPS).sqrt())
}

/// S of one group: the sum of its rows' extra channel in `dy` ([group, len + plane]).
fn extra_sum(dy: &[f32], d: Dims) -> f32 {
    let mut s = 0.0f32;
    for g in 0..d.group {
        s += dy[g * (d.len + d.plane) + d.len..][..d.plane]
            .iter()
            .sum::<f32>();
    }
    s
}

fn forward_cpu(p: &[u8], b: &mut Bindings) {
    let d = dims(p);
    let (x, y) = (b.r(0), b.w(3));
    let out = d.group * (d.len + d.plane);
    y[..d.rows * (d.len + d.plane)]
        .par_chunks_mut(out)
        .enumerate()
        .for_each(|(k, yg)| {
            let xg = &x[k * d.group * d.len..][..d.group * d.len];
            let s = (0..d.len).map(|pos| stats(xg, d, pos).1).sum::<f32>() / d.len as f32;
            for g in 0..d.group {
                let row = &mut yg[g * (d.len + d.plane)..][..d.len + d.plane];
                row[..d.len].copy_from_slice(&xg[g * d.len..][..d.len]);
                row[d.len..].fill(s);
            }
        });
}

fn backward_cpu(p: &[u8], b: &mut Bindings) {
    let d = dims(p);
    let (x, dy, dx) = (b.r(0), b.r(2), b.w(3));
    dx[..d.rows * d.len]
        .par_chunks_mut(d.group * d.len)
        .enumerate()
        .for_each(|(k, dxg)| {
            let xg = &x[k * d.group * d.len..][..d.group * d.len];
            let dyg = &dy[k * d.group * (d.len + d.plane)..][..d.group * (d.len + d.plane)];
            let coef = extra_sum(dyg, d) / (d.len as f32 * d.group as f32);
            for pos in 0..d.len {
                let (m, sig) = stats(xg, d, pos);
                for g in 0..d.group {
                    let e = xg[g * d.len + pos] - m;
                    dxg[g * d.len + pos] = dyg[g * (d.len + d.plane) + pos] + coef * e / sig;
                }
            }
        });
}

fn tangent_cpu(p: &[u8], b: &mut Bindings) {
    let d = dims(p);
    let (x, v, dy, y, uu) = (b.r(0), b.r(1), b.r(2), b.w(3), b.w(4));
    let out = d.group * (d.len + d.plane);
    y[..d.rows * (d.len + d.plane)]
        .par_chunks_mut(out)
        .zip(uu[..d.rows * d.len].par_chunks_mut(d.group * d.len))
        .enumerate()
        .for_each(|(k, (yg, ug))| {
            let xg = &x[k * d.group * d.len..][..d.group * d.len];
            let vg = &v[k * d.group * d.len..][..d.group * d.len];
            let dyg = &dy[k * d.group * (d.len + d.plane)..][..out];
            let pg = d.len as f32 * d.group as f32;
            let coef = extra_sum(dyg, d) / pg;
            let mut acc = 0.0f32;
            for pos in 0..d.len {
                let (m, sig) = stats(xg, d, pos);
                let mut a = 0.0f32;
                let mut vbar = 0.0f32;
                for g in 0..d.group {
                    let vv = vg[g * d.len + pos];
                    a += (xg[g * d.len + pos] - m) * vv;
                    vbar += vv;
                }
                acc += a / sig;
                vbar /= d.group as f32;
                let s3 = sig * sig * sig;
                for g in 0..d.group {
                    let vv = vg[g * d.len + pos];
                    let e = xg[g * d.len + pos] - m;
                    yg[g * (d.len + d.plane) + pos] = vv;
                    ug[g * d.len + pos] =
                        coef * ((vv - vbar) / sig - a * e / (d.group as f32 * s3));
                }
            }
            let s_dot = acc / pg;
            for g in 0..d.group {
                yg[g * (d.len + d.plane) + d.len..][..d.plane].fill(s_dot);
            }
        });
}

/// The reference's per-group (μ_p, σ_p) in f64.
fn stats_ref(x: &[f32], d: Dims, n0: usize, pos: usize) -> (f64, f64) {
    let at = |g: usize| x[(n0 + g) * d.len + pos] as f64;
    let m = (0..d.group).map(at).sum::<f64>() / d.group as f64;
    let var = (0..d.group).map(|g| (at(g) - m).powi(2)).sum::<f64>() / d.group as f64;
    (m, (var + EPS as f64).sqrt())
}

fn forward_ref(p: &[u8], b: &mut Bindings) {
    let d = dims(p);
    let (x, y) = (b.r(0), b.w(3));
    for n0 in (0..d.rows).step_by(d.group) {
        let s = (0..d.len)
            .map(|pos| stats_ref(x, d, n0, pos).1)
            .sum::<f64>()
            / d.len as f64;
        for r in n0..n0 + d.group {
            for pos in 0..d.len {
                y[r * (d.len + d.plane) + pos] = x[r * d.len + pos];
            }
            for i in 0..d.plane {
                y[r * (d.len + d.plane) + d.len + i] = s as f32;
            }
        }
    }
}

fn extra_sum_ref(dy: &[f32], d: Dims, n0: usize) -> f64 {
    (n0..n0 + d.group)
        .flat_map(|r| (0..d.plane).map(move |i| (r, i)))
        .map(|(r, i)| dy[r * (d.len + d.plane) + d.len + i] as f64)
        .sum()
}

fn backward_ref(p: &[u8], b: &mut Bindings) {
    let d = dims(p);
    let (x, dy, dx) = (b.r(0), b.r(2), b.w(3));
    let pg = (d.len * d.group) as f64;
    for n0 in (0..d.rows).step_by(d.group) {
        let s_total = extra_sum_ref(dy, d, n0);
        for pos in 0..d.len {
            let (m, sig) = stats_ref(x, d, n0, pos);
            for r in n0..n0 + d.group {
                let e = x[r * d.len + pos] as f64 - m;
                dx[r * d.len + pos] =
                    (dy[r * (d.len + d.plane) + pos] as f64 + s_total * e / (pg * sig)) as f32;
            }
        }
    }
}

fn tangent_ref(p: &[u8], b: &mut Bindings) {
    let d = dims(p);
    let (x, v, dy, y, uu) = (b.r(0), b.r(1), b.r(2), b.w(3), b.w(4));
    let pg = (d.len * d.group) as f64;
    for n0 in (0..d.rows).step_by(d.group) {
        let s_total = extra_sum_ref(dy, d, n0);
        let mut s_dot = 0.0f64;
        for pos in 0..d.len {
            let (m, sig) = stats_ref(x, d, n0, pos);
            let e = |r: usize| x[r * d.len + pos] as f64 - m;
            let vv = |r: usize| v[r * d.len + pos] as f64;
            let a: f64 = (n0..n0 + d.group).map(|r| e(r) * vv(r)).sum();
            let vbar = (n0..n0 + d.group).map(vv).sum::<f64>() / d.group as f64;
            s_dot += a / sig;
            for r in n0..n0 + d.group {
                y[r * (d.len + d.plane) + pos] = v[r * d.len + pos];
                uu[r * d.len + pos] = (s_total / pg
                    * ((vv(r) - vbar) / sig - a * e(r) / (d.group as f64 * sig.powi(3))))
                    as f32;
            }
        }
        for r in n0..n0 + d.group {
            for i in 0..d.plane {
                y[r * (d.len + d.plane) + d.len + i] = (s_dot / pg) as f32;
            }
        }
    }
}

const FORWARD_BINDINGS: &[Binding] = &[
    Binding::read("x"),
    Binding::unused("v"),
    Binding::unused("dy"),
    Binding::write("y"),
    Binding::unused("u"),
];

pub static MINIBATCH_STD_FORWARD: KernelDef = KernelDef {
    name: "minibatch_std_forward",
    shader: &SHADER,
    params: &<MinibatchStdParams as super::Params>::LAYOUT,
    bindings: FORWARD_BINDINGS,
    workgroups: groups,
    cpu: forward_cpu,
    reference: forward_ref,
    cases: || cases(Kind::Forward),
    bench: || bench(Kind::Forward),
    work: |p| work(p, 4.0),
};

pub static MINIBATCH_STD_BACKWARD: KernelDef = KernelDef {
    name: "minibatch_std_backward",
    shader: &SHADER,
    params: &<MinibatchStdParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("x"),
        Binding::unused("v"),
        Binding::read("dy"),
        Binding::write("y"),
        Binding::unused("u"),
    ],
    workgroups: groups,
    cpu: backward_cpu,
    reference: backward_ref,
    cases: || cases(Kind::Backward),
    bench: || bench(Kind::Backward),
    work: |p| work(p, 7.0),
};

pub static MINIBATCH_STD_TANGENT: KernelDef = KernelDef {
    name: "minibatch_std_tangent",
    shader: &SHADER,
    params: &<MinibatchStdParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("x"),
        Binding::read("v"),
        Binding::read("dy"),
        Binding::write("y"),
        Binding::write("u"),
    ],
    workgroups: groups,
    cpu: tangent_cpu,
    reference: tangent_ref,
    cases: || cases(Kind::Tangent),
    bench: || bench(Kind::Tangent),
    work: |p| work(p, 16.0),
};

fn work(p: &[u8], flops_per_value: f64) -> Work {
    let d = dims(p);
    let n = (d.rows * d.len) as f64;
    Work {
        flops: flops_per_value * n,
        bytes: 4.0 * 3.0 * n,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Forward,
    Backward,
    Tangent,
}

fn case(rows: usize, group: usize, c: usize, plane: usize, kind: Kind, seed: u64) -> Case {
    let p = MinibatchStdParams {
        rows: u(rows),
        group: u(group),
        channels: u(c),
        plane: u(plane),
        ..Default::default()
    };
    let (n, n_out) = (rows * c * plane, rows * (c + 1) * plane);
    let case = Case::new(format!("rows={rows} group={group} c={c} plane={plane}"), p)
        .tol(1e-5, 1e-3)
        .f32(uniform(seed, n, -1.0, 1.0));
    match kind {
        Kind::Forward => case.unused().unused().zeros(n_out).unused(),
        Kind::Backward => case
            .unused()
            .f32(uniform(seed + 1, n_out, -1.0, 1.0))
            .zeros(n)
            .unused(),
        Kind::Tangent => case
            .f32(uniform(seed + 2, n, -1.0, 1.0))
            .f32(uniform(seed + 1, n_out, -1.0, 1.0))
            .zeros(n_out)
            .zeros(n),
    }
}

/// Groups of 1 to 5 rows, one group and many, a position count below, at and above a
/// workgroup's 256 lanes, ProGAN's 4×4 features.
fn cases(kind: Kind) -> Vec<Case> {
    [
        (1, 1, 1, 1),
        (4, 2, 3, 1),
        (6, 3, 5, 7),
        (10, 5, 7, 9),
        (8, 4, 16, 16),
        (12, 4, 33, 9),
        (64, 4, 64, 16),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (r, g, c, plane))| case(r, g, c, plane, kind, 19 * i as u64 + 5))
    .collect()
}

/// ProGAN's D at 4×4 with 128 channels: [real; fake] rows at batch 64.
fn bench(kind: Kind) -> Vec<Case> {
    vec![case(128, 4, 128, 16, kind, 1)]
}

/// A batch of `rows` [channels, plane] maps cut into groups of `group` consecutive rows, each
/// group's standard deviation appended as one more channel.
#[derive(Clone, Copy, Debug)]
pub struct StdGroups {
    pub rows: usize,
    pub group: usize,
    pub channels: usize,
    pub plane: usize,
}

fn params(g: StdGroups) -> MinibatchStdParams {
    let StdGroups {
        rows,
        group,
        channels: c,
        plane,
    } = g;
    assert!(
        group > 0 && rows.is_multiple_of(group),
        "minibatch std: {rows} rows are not whole groups of {group}"
    );
    MinibatchStdParams {
        rows: u(rows),
        group: u(group),
        channels: u(c),
        plane: u(plane),
        ..Default::default()
    }
}

/// y [rows, c + 1, plane] = x [rows, c, plane] with each group's s appended.
pub fn minibatch_std_forward(be: &mut dyn Backend, y: Tensor, x: Tensor, groups: StdGroups) {
    launch(be, &MINIBATCH_STD_FORWARD, params(groups), &[x, x, x, y, x]);
}

/// dx [rows, c, plane] from x and dy [rows, c + 1, plane].
pub fn minibatch_std_backward(
    be: &mut dyn Backend,
    dx: Tensor,
    x: Tensor,
    dy: Tensor,
    groups: StdGroups,
) {
    launch(
        be,
        &MINIBATCH_STD_BACKWARD,
        params(groups),
        &[x, x, dy, dx, x],
    );
}

/// The tangent pass: v_out [rows, c + 1, plane] and the second-order term u [rows, c, plane]
/// from x, the tangent v and the last backward's δ = dy.
pub fn minibatch_std_tangent(
    be: &mut dyn Backend,
    v_out: Tensor,
    u_term: Tensor,
    x: Tensor,
    v: Tensor,
    dy: Tensor,
    groups: StdGroups,
) {
    launch(
        be,
        &MINIBATCH_STD_TANGENT,
        params(groups),
        &[x, v, dy, v_out, u_term],
    );
}

//! Batch normalisation over NCHW batches (`shaders/batch_norm.wgsl`, `batch_norm_backward.wgsl`):
//! x is [rows, channels, spatial] (spatial = H·W; a flat layer of n features is n channels of
//! spatial 1), and each channel is normalised over its n = rows·spatial values.
//!
//! Training:  stats = [mean C | invstd C], invstd = 1/sqrt(biased var + eps)   (statistics)
//!            running = [mean C | var C | batches] ← (1 − m)·running + m·(mean, unbiased var)
//!            y = (x − mean)·invstd·weight + bias                              (forward)
//! Evaluation: the same with the running mean and var                          (forward_eval)
//! Backward:  dparams = [Σ dy·x̂ | Σ dy] (dweight, dbias)                       (backward_reduce)
//!            dx = weight·invstd·(dy − (Σdy + x̂·Σ dy·x̂)/n)                      (backward_input)
//! The reductions are fixed-order trees on the GPU and per-channel sums in f64 on the CPU:
//! deterministic on both, with no float atomics.

use super::case::uniform;
use super::{
    Binding, Bindings, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u,
};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::{PAR_MIN, par_chunk};
use crate::cpu::simd::wide;
use rayon::prelude::*;

/// PyTorch's defaults for nn.BatchNorm.
pub const EPS: f32 = 1e-5;
pub const MOMENTUM: f32 = 0.1;

crate::params! {
    /// One struct for all five kernels (both shader files declare it whole).
    pub struct BatchNormParams {
        pub rows: u32,
        pub channels: u32,
        pub spatial: u32,
        /// Invocations per channel in the GPU reductions (a power of two, 1..=256).
        pub lanes: u32,
        pub eps: f32,
        pub momentum: f32,
        pub update: u32,
        pub restart: u32,
        pub x_off: u32,
        pub weight_off: u32,
        pub bias_off: u32,
        pub stats_off: u32,
        pub out_off: u32,
        pub running_off: u32,
        pub dy_off: u32,
        pub dparams_off: u32,
    }
}

/// A batch's layout: `rows` samples of `channels` planes of `spatial` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnDims {
    pub rows: usize,
    pub channels: usize,
    pub spatial: usize,
}

impl BnDims {
    /// Values each channel's statistics are over.
    pub fn n(self) -> usize {
        self.rows * self.spatial
    }

    pub fn len(self) -> usize {
        self.rows * self.channels * self.spatial
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// How `batch_norm_statistics` moves the running statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunningUpdate {
    /// running ← (1 − momentum)·running + momentum·batch.
    pub momentum: f32,
    /// Count this batch as the first (batches ← 1) instead of one more.
    pub restart: bool,
}

/// GPU lanes per channel: about eight values each, a power of two up to a whole workgroup.
pub fn lanes(n: usize) -> u32 {
    n.div_ceil(8).next_power_of_two().clamp(1, 256) as u32
}

impl BatchNormParams {
    pub fn new(d: BnDims) -> Self {
        BatchNormParams {
            rows: u(d.rows),
            channels: u(d.channels),
            spatial: u(d.spatial),
            lanes: lanes(d.n()),
            eps: EPS,
            ..Default::default()
        }
    }

    pub fn dims(&self) -> BnDims {
        BnDims {
            rows: self.rows as usize,
            channels: self.channels as usize,
            spatial: self.spatial as usize,
        }
    }
}

pub static SHADER: Shader = Shader {
    name: "batch_norm",
    source: include_str!("../../shaders/batch_norm.wgsl"),
    preludes: &[],
};

pub static SHADER_BACKWARD: Shader = Shader {
    name: "batch_norm_backward",
    source: include_str!("../../shaders/batch_norm_backward.wgsl"),
    preludes: &[],
};

const LAYOUT: &super::ParamsLayout = &<BatchNormParams as super::Params>::LAYOUT;

/// Workgroups of the reductions: 256 / lanes channels each.
fn reduce_groups(p: &[u8]) -> [u32; 3] {
    let p: BatchNormParams = cast(p);
    [p.channels.div_ceil(256 / p.lanes), 1, 1]
}

fn elementwise(p: &[u8]) -> [u32; 3] {
    elementwise_groups(u(cast::<BatchNormParams>(p).dims().len()))
}

const FORWARD_BINDINGS: &[Binding] = &[
    Binding::read("x"),
    Binding::write("out"),
    Binding::unused("running"),
    Binding::read("stats"),
    Binding::read("weight"),
    Binding::read("bias"),
];

pub static BATCH_NORM_STATISTICS: KernelDef = KernelDef {
    name: "batch_norm_statistics",
    shader: &SHADER,
    params: LAYOUT,
    bindings: &[
        Binding::read("x"),
        Binding::write("out"),
        Binding::write("running"),
    ],
    workgroups: reduce_groups,
    cpu: |p, b| statistics_cpu(&cast(p), b.r(0), b.w(1), b.w(2)),
    reference: |p, b| statistics_ref(&cast(p), b.r(0), b.w(1), b.w(2)),
    cases: || cases(Kind::Statistics),
    bench: || bench(Kind::Statistics),
    work: |p| work(p, 4.0, 2),
};

pub static BATCH_NORM_FORWARD: KernelDef = KernelDef {
    name: "batch_norm_forward",
    shader: &SHADER,
    params: LAYOUT,
    bindings: FORWARD_BINDINGS,
    workgroups: elementwise,
    cpu: |p, b| forward_cpu(&cast(p), b, false),
    reference: |p, b| forward_ref(&cast(p), b, false),
    cases: || cases(Kind::Forward),
    bench: || bench(Kind::Forward),
    work: |p| work(p, 4.0, 2),
};

pub static BATCH_NORM_FORWARD_EVAL: KernelDef = KernelDef {
    name: "batch_norm_forward_eval",
    shader: &SHADER,
    params: LAYOUT,
    bindings: FORWARD_BINDINGS,
    workgroups: elementwise,
    cpu: |p, b| forward_cpu(&cast(p), b, true),
    reference: |p, b| forward_ref(&cast(p), b, true),
    cases: || cases(Kind::ForwardEval),
    bench: || bench(Kind::ForwardEval),
    work: |p| work(p, 4.0, 2),
};

pub static BATCH_NORM_BACKWARD_REDUCE: KernelDef = KernelDef {
    name: "batch_norm_backward_reduce",
    shader: &SHADER_BACKWARD,
    params: LAYOUT,
    bindings: &[
        Binding::read("x"),
        Binding::read("dy"),
        Binding::read("stats"),
        Binding::write("out"),
    ],
    workgroups: reduce_groups,
    cpu: |p, b| backward_reduce_cpu(&cast(p), b.r(0), b.r(1), b.r(2), b.w(3)),
    reference: |p, b| backward_reduce_ref(&cast(p), b.r(0), b.r(1), b.r(2), b.w(3)),
    cases: || cases(Kind::BackwardReduce),
    bench: || bench(Kind::BackwardReduce),
    work: |p| work(p, 5.0, 2),
};

pub static BATCH_NORM_BACKWARD_INPUT: KernelDef = KernelDef {
    name: "batch_norm_backward_input",
    shader: &SHADER_BACKWARD,
    params: LAYOUT,
    bindings: &[
        Binding::read("x"),
        Binding::read("dy"),
        Binding::read("stats"),
        Binding::write("out"),
        Binding::read("weight"),
        Binding::read("dparams"),
    ],
    workgroups: elementwise,
    cpu: |p, b| backward_input_cpu(&cast(p), b),
    reference: |p, b| backward_input_ref(&cast(p), b),
    cases: || cases(Kind::BackwardInput),
    bench: || bench(Kind::BackwardInput),
    work: |p| work(p, 8.0, 3),
};

/// `flops` per value; `words` 4-byte words moved per value.
fn work(p: &[u8], flops: f64, words: u32) -> Work {
    let n = cast::<BatchNormParams>(p).dims().len();
    Work {
        flops: flops * n as f64,
        bytes: 4.0 * (n as f64) * words as f64,
    }
}

// ---- cases ------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Statistics,
    Forward,
    ForwardEval,
    BackwardReduce,
    BackwardInput,
}

fn case(kind: Kind, d: BnDims, variant: usize, seed: u64) -> Case {
    let c = d.channels;
    let mut p = BatchNormParams::new(d);
    let x: Vec<f32> = uniform(seed, d.len(), -2.0, 3.0);
    let mean_invstd = || {
        let mut s = uniform(seed + 1, c, -0.5, 1.0);
        s.extend(uniform(seed + 2, c, 0.5, 2.0));
        s
    };
    let label = format!("rows={} channels={c} spatial={}", d.rows, d.spatial);
    let sum_tol = 1e-5 * (d.n() as f32).sqrt();
    match kind {
        Kind::Statistics => {
            // No update; a moving update; a restart.
            p.update = !variant.is_multiple_of(3) as u32;
            p.restart = (variant % 3 == 2) as u32;
            p.momentum = if p.restart != 0 { 1.0 } else { MOMENTUM };
            let mut running = uniform(seed + 3, c, -1.0, 1.0);
            running.extend(uniform(seed + 4, c, 0.5, 2.0));
            running.push(7.0);
            Case::new(
                format!("{label} update={} restart={}", p.update, p.restart),
                p,
            )
            .f32(x)
            .zeros(2 * c)
            .f32(running)
            .tol(1e-5, 2e-5)
        }
        Kind::Forward | Kind::ForwardEval => Case::new(label, p)
            .f32(x)
            .zeros(d.len())
            .unused()
            .f32(mean_invstd())
            .f32(uniform(seed + 5, c, 0.5, 1.5))
            .f32(uniform(seed + 6, c, -1.0, 1.0))
            .tol(1e-5, 1e-5),
        Kind::BackwardReduce => Case::new(label, p)
            .f32(x)
            .f32(uniform(seed + 7, d.len(), -1.0, 1.0))
            .f32(mean_invstd())
            .zeros(2 * c)
            .tol(sum_tol, 1e-4),
        Kind::BackwardInput => {
            let dparams = uniform(seed + 8, 2 * c, -(d.n() as f32), d.n() as f32);
            Case::new(label, p)
                .f32(x)
                .f32(uniform(seed + 7, d.len(), -1.0, 1.0))
                .f32(mean_invstd())
                .zeros(d.len())
                .f32(uniform(seed + 5, c, 0.5, 1.5))
                .f32(dparams)
                .tol(1e-5, 1e-5)
        }
    }
}

/// Ragged shapes: one value per channel, odd channel counts and sizes, every lane count from 1
/// to 256, workgroups holding many channels with the last one part-filled, flat layers.
const SHAPES: [(usize, usize, usize); 10] = [
    (1, 1, 1),
    (1, 3, 35),
    (2, 5, 9),
    (3, 1, 1),
    (7, 64, 1),
    (64, 13, 1),
    (5, 3, 143),
    (33, 300, 1),
    (4, 2, 1000),
    (2, 17, 49),
];

fn cases(kind: Kind) -> Vec<Case> {
    SHAPES
        .iter()
        .enumerate()
        .map(|(i, &(rows, channels, spatial))| {
            let d = BnDims {
                rows,
                channels,
                spatial,
            };
            case(kind, d, i, 31 * i as u64 + 3)
        })
        .collect()
}

/// The batch norms of the PyTorch peer's DCGAN generators at batch 64: `dcgan`'s flat one over
/// 128·7·7 features and its 64 channels of 14×14, `dcgan32`'s 64 channels of 16×16.
fn bench(kind: Kind) -> Vec<Case> {
    [(64, 6272, 1), (64, 64, 196), (64, 64, 256)]
        .into_iter()
        .map(|(rows, channels, spatial)| {
            let d = BnDims {
                rows,
                channels,
                spatial,
            };
            case(kind, d, 1, 7)
        })
        .collect()
}

// ---- launchers --------------------------------------------------------------------------------

/// saved = [mean C | invstd C] of x's channels; with `update`, running = [mean C | var C |
/// batches] moves toward the batch's mean and unbiased variance.
pub fn batch_norm_statistics(
    be: &mut dyn Backend,
    saved: Tensor,
    running: Tensor,
    x: Tensor,
    d: BnDims,
    update: Option<RunningUpdate>,
) {
    let mut p = BatchNormParams::new(d);
    if let Some(up) = update {
        p.update = 1;
        p.momentum = up.momentum;
        p.restart = up.restart as u32;
    }
    launch(be, &BATCH_NORM_STATISTICS, p, &[x, saved, running]);
}

/// The statistics a batch norm's forward normalises with.
#[derive(Clone, Copy, Debug)]
pub enum BnStatistics {
    /// The batch's own [mean C | invstd C] (training).
    Batch(Tensor),
    /// The running [mean C | var C], invstd = 1/sqrt(var + eps) (evaluation).
    Running(Tensor),
}

/// y = (x − mean)·invstd·weight + bias.
pub fn batch_norm_forward(
    be: &mut dyn Backend,
    y: Tensor,
    x: Tensor,
    stats: BnStatistics,
    (weight, bias): (Tensor, Tensor),
    d: BnDims,
) {
    let (kernel, stats) = match stats {
        BnStatistics::Batch(t) => (&BATCH_NORM_FORWARD, t),
        BnStatistics::Running(t) => (&BATCH_NORM_FORWARD_EVAL, t),
    };
    let p = BatchNormParams::new(d);
    launch(be, kernel, p, &[x, y, x, stats, weight, bias]);
}

/// dparams = [Σ dy·x̂ C | Σ dy C]: the gradients of weight and bias.
pub fn batch_norm_backward_reduce(
    be: &mut dyn Backend,
    dparams: Tensor,
    x: Tensor,
    dy: Tensor,
    saved: Tensor,
    d: BnDims,
) {
    let p = BatchNormParams::new(d);
    launch(be, &BATCH_NORM_BACKWARD_REDUCE, p, &[x, dy, saved, dparams]);
}

/// What the input gradient reads besides x, dy and the weight: the batch's statistics
/// [mean C | invstd C] and `batch_norm_backward_reduce`'s sums [Σ dy·x̂ C | Σ dy C].
#[derive(Clone, Copy, Debug)]
pub struct BnSums {
    pub saved: Tensor,
    pub sums: Tensor,
}

/// dx = weight·invstd·(dy − (Σdy + x̂·Σ dy·x̂)/n).
pub fn batch_norm_backward_input(
    be: &mut dyn Backend,
    dx: Tensor,
    x: Tensor,
    dy: Tensor,
    weight: Tensor,
    sums: BnSums,
    d: BnDims,
) {
    let BnSums {
        saved,
        sums: dparams,
    } = sums;
    let p = BatchNormParams::new(d);
    launch(
        be,
        &BATCH_NORM_BACKWARD_INPUT,
        p,
        &[x, dy, saved, dx, weight, dparams],
    );
}

// ---- the reference: plain loops in f64 --------------------------------------------------------

/// Index of value j of channel c (j < rows·spatial).
fn at(d: BnDims, c: usize, j: usize) -> usize {
    let (r, s) = (j / d.spatial, j % d.spatial);
    (r * d.channels + c) * d.spatial + s
}

fn statistics_ref(p: &BatchNormParams, x: &[f32], saved: &mut [f32], running: &mut [f32]) {
    let d = p.dims();
    let (c_n, n) = (d.channels, d.n());
    for c in 0..c_n {
        let mean = (0..n).map(|j| x[at(d, c, j)] as f64).sum::<f64>() / n as f64;
        let var = (0..n)
            .map(|j| (x[at(d, c, j)] as f64 - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        saved[c] = mean as f32;
        saved[c_n + c] = (1.0 / (var + p.eps as f64).sqrt()) as f32;
        if p.update != 0 {
            let unbiased = if n > 1 {
                var * n as f64 / (n - 1) as f64
            } else {
                var
            };
            let m = p.momentum as f64;
            running[c] = ((1.0 - m) * running[c] as f64 + m * mean) as f32;
            running[c_n + c] = ((1.0 - m) * running[c_n + c] as f64 + m * unbiased) as f32;
        }
    }
    if p.update != 0 {
        let b = &mut running[2 * c_n];
        *b = if p.restart != 0 { 1.0 } else { *b + 1.0 };
    }
}

fn forward_ref(p: &BatchNormParams, b: &mut Bindings, eval: bool) {
    let d = p.dims();
    let (x, y, stats, w, bias) = (b.r(0), b.w(1), b.r(3), b.r(4), b.r(5));
    for i in 0..d.len() {
        let c = (i / d.spatial) % d.channels;
        let mean = stats[c] as f64;
        let invstd = if eval {
            1.0 / (stats[d.channels + c] as f64 + p.eps as f64).sqrt()
        } else {
            stats[d.channels + c] as f64
        };
        y[i] = ((x[i] as f64 - mean) * invstd * w[c] as f64 + bias[c] as f64) as f32;
    }
}

fn backward_reduce_ref(p: &BatchNormParams, x: &[f32], dy: &[f32], stats: &[f32], out: &mut [f32]) {
    let d = p.dims();
    for c in 0..d.channels {
        let (mean, invstd) = (stats[c] as f64, stats[d.channels + c] as f64);
        let (mut dw, mut db) = (0.0f64, 0.0f64);
        for j in 0..d.n() {
            let i = at(d, c, j);
            dw += dy[i] as f64 * (x[i] as f64 - mean) * invstd;
            db += dy[i] as f64;
        }
        out[c] = dw as f32;
        out[d.channels + c] = db as f32;
    }
}

fn backward_input_ref(p: &BatchNormParams, b: &mut Bindings) {
    let d = p.dims();
    let (x, dy, stats, dx, w, dparams) = (b.r(0), b.r(1), b.r(2), b.w(3), b.r(4), b.r(5));
    let n = d.n() as f64;
    for i in 0..d.len() {
        let c = (i / d.spatial) % d.channels;
        let (mean, invstd) = (stats[c] as f64, stats[d.channels + c] as f64);
        let xhat = (x[i] as f64 - mean) * invstd;
        let (dw, db) = (dparams[c] as f64, dparams[d.channels + c] as f64);
        dx[i] = (w[c] as f64 * invstd * (dy[i] as f64 - (db + xhat * dw) / n)) as f32;
    }
}

// ---- the CPU twins ----------------------------------------------------------------------------
// Reductions: blocks of channels split over the pool, each summing its channels over the rows
// in order (f32 within a plane, in eight lanes; f64 across planes). Elementwise passes: rows
// split over the pool. Flat layers (spatial 1) go a row of channels at a time, so the inner
// loops run over contiguous channels and vectorise.

/// Σ f(a[i], b[i]) in eight f32 lanes (vectorisable, unlike one running sum).
#[inline]
pub(crate) fn sum8(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += f(x[k], y[k]);
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (&x, &y) in ra.iter().zip(rb) {
        s += f(x, y);
    }
    s
}

/// Every channel's K sums: `block(c0, sums)` fills channels c0..c0 + sums.len().
fn by_channel_blocks<const K: usize>(
    d: BnDims,
    block: impl Fn(usize, &mut [[f64; K]]) + Sync,
) -> Vec<[f64; K]> {
    let mut out = vec![[0.0f64; K]; d.channels];
    let run = |c0: usize, o: &mut [[f64; K]]| {
        wide(
            #[inline(always)]
            || block(c0, o),
        )
    };
    match par_chunk(d.len(), PAR_MIN) {
        Some(_) if d.channels > 1 => {
            let per = d.channels.div_ceil(rayon::current_num_threads());
            out.par_chunks_mut(per)
                .enumerate()
                .for_each(|(i, o)| run(i * per, o));
        }
        _ => run(0, &mut out),
    }
    out
}

/// Per channel Σ f(a, b) over its values of the [rows, channels, spatial] batches a and b.
fn channel_sums(
    d: BnDims,
    a: &[f32],
    b: &[f32],
    f: impl Fn(usize, f32, f32) -> f32 + Sync,
) -> Vec<f64> {
    let (cs, s) = (d.channels * d.spatial, d.spatial);
    let sums = by_channel_blocks::<1>(d, |c0, acc| {
        for r in 0..d.rows {
            let (ra, rb) = (&a[r * cs..(r + 1) * cs], &b[r * cs..(r + 1) * cs]);
            if s == 1 {
                let lanes = ra[c0..].iter().zip(&rb[c0..]);
                for (k, (acc, (&x, &y))) in acc.iter_mut().zip(lanes).enumerate() {
                    acc[0] += f(c0 + k, x, y) as f64;
                }
            } else {
                for (k, acc) in acc.iter_mut().enumerate() {
                    let c = c0 + k;
                    let plane = c * s..(c + 1) * s;
                    acc[0] += sum8(&ra[plane.clone()], &rb[plane], |x, y| f(c, x, y)) as f64;
                }
            }
        }
    });
    sums.into_iter().map(|v| v[0]).collect()
}

/// Runs `f(row, out_row)` over the rows of `out` ([rows, channels·spatial]), split over the pool.
fn for_rows(out: &mut [f32], d: BnDims, f: impl Fn(usize, &mut [f32]) + Sync) {
    let cs = d.channels * d.spatial;
    let run = |r0: usize, o: &mut [f32]| {
        wide(
            #[inline(always)]
            || {
                for (k, row) in o.chunks_exact_mut(cs).enumerate() {
                    f(r0 + k, row);
                }
            },
        )
    };
    let out = &mut out[..d.len()];
    match par_chunk(d.len(), PAR_MIN) {
        Some(chunk) if d.rows > 1 => {
            let rows = chunk.div_ceil(cs);
            out.par_chunks_mut(rows * cs)
                .enumerate()
                .for_each(|(i, o)| run(i * rows, o));
        }
        _ => run(0, out),
    }
}

/// y = (x − mean)·scale + shift per channel, over `out`'s rows.
fn affine_rows(out: &mut [f32], x: &[f32], d: BnDims, mean: &[f32], scale: &[f32], shift: &[f32]) {
    let (cs, s) = (d.channels * d.spatial, d.spatial);
    for_rows(out, d, |r, o| {
        let xr = &x[r * cs..(r + 1) * cs];
        if s == 1 {
            let coef = mean.iter().zip(scale.iter().zip(shift));
            for ((o, &v), (&m, (&a, &b))) in o.iter_mut().zip(xr).zip(coef) {
                *o = (v - m) * a + b;
            }
        } else {
            for (c, (o, xs)) in o.chunks_exact_mut(s).zip(xr.chunks_exact(s)).enumerate() {
                let (m, a, b) = (mean[c], scale[c], shift[c]);
                for (o, &v) in o.iter_mut().zip(xs) {
                    *o = (v - m) * a + b;
                }
            }
        }
    });
}

pub fn statistics_cpu(p: &BatchNormParams, x: &[f32], saved: &mut [f32], running: &mut [f32]) {
    let d = p.dims();
    let (c_n, n) = (d.channels, d.n() as f64);
    let sums = channel_sums(d, x, x, |_, v, _| v);
    let mean: Vec<f32> = sums.iter().map(|v| (v / n) as f32).collect();
    // Centred on the f32 mean, as the GPU: no cancellation.
    let sq = channel_sums(d, x, x, |c, v, _| (v - mean[c]) * (v - mean[c]));
    for c in 0..c_n {
        let var = sq[c] / n;
        saved[c] = mean[c];
        saved[c_n + c] = (1.0 / (var + p.eps as f64).sqrt()) as f32;
        if p.update != 0 {
            let unbiased = if n > 1.0 { var * n / (n - 1.0) } else { var };
            let m = p.momentum as f64;
            running[c] = ((1.0 - m) * running[c] as f64 + m * sums[c] / n) as f32;
            running[c_n + c] = ((1.0 - m) * running[c_n + c] as f64 + m * unbiased) as f32;
        }
    }
    if p.update != 0 {
        let b = &mut running[2 * c_n];
        *b = if p.restart != 0 { 1.0 } else { *b + 1.0 };
    }
}

fn forward_cpu(p: &BatchNormParams, b: &mut Bindings, eval: bool) {
    let d = p.dims();
    let (x, y, stats, w, bias) = (b.r(0), b.w(1), b.r(3), b.r(4), b.r(5));
    let c_n = d.channels;
    let scale: Vec<f32> = (0..c_n)
        .map(|c| {
            let invstd = if eval {
                1.0 / (stats[c_n + c] + p.eps).sqrt()
            } else {
                stats[c_n + c]
            };
            invstd * w[c]
        })
        .collect();
    affine_rows(y, x, d, &stats[..c_n], &scale, &bias[..c_n]);
}

pub fn backward_reduce_cpu(
    p: &BatchNormParams,
    x: &[f32],
    dy: &[f32],
    stats: &[f32],
    out: &mut [f32],
) {
    let d = p.dims();
    let c_n = d.channels;
    let dw = channel_sums(d, x, dy, |c, v, g| g * (v - stats[c]));
    let db = channel_sums(d, dy, dy, |_, g, _| g);
    for c in 0..c_n {
        out[c] = (dw[c] * stats[c_n + c] as f64) as f32;
        out[c_n + c] = db[c] as f32;
    }
}

fn backward_input_cpu(p: &BatchNormParams, b: &mut Bindings) {
    let d = p.dims();
    let (x, dy, stats, dx, w, dparams) = (b.r(0), b.r(1), b.r(2), b.w(3), b.r(4), b.r(5));
    let (c_n, inv_n) = (d.channels, 1.0 / d.n() as f32);
    // dx = scale·(dy − db/n − (x − mean)·invstd·dw/n): per channel scale, invstd·dw/n, db/n.
    let coef: Vec<[f32; 4]> = (0..c_n)
        .map(|c| {
            let invstd = stats[c_n + c];
            let k = invstd * dparams[c] * inv_n;
            [stats[c], w[c] * invstd, k, dparams[c_n + c] * inv_n]
        })
        .collect();
    let cs = c_n * d.spatial;
    for_rows(dx, d, |r, o| {
        let (xr, gr) = (&x[r * cs..(r + 1) * cs], &dy[r * cs..(r + 1) * cs]);
        let s = d.spatial;
        if s == 1 {
            for (((o, &v), &g), &[m, scale, k, db]) in o.iter_mut().zip(xr).zip(gr).zip(&coef) {
                *o = scale * (g - db - (v - m) * k);
            }
            return;
        }
        for (c, ((o, xs), gs)) in o
            .chunks_exact_mut(s)
            .zip(xr.chunks_exact(s))
            .zip(gr.chunks_exact(s))
            .enumerate()
        {
            let [m, scale, k, db] = coef[c];
            for ((o, &v), &g) in o.iter_mut().zip(xs).zip(gs) {
                *o = scale * (g - db - (v - m) * k);
            }
        }
    });
}

//! Gradient penalties on the critic's input gradient (`shaders/penalty.wgsl`): WGAN-GP's
//! interpolates x̂ = εx + (1 − ε)G(z) with one ε per sample, and for WGAN-GP (Gulrajani et al.
//! 2017) or R1 (Mescheder et al. 2018) the per-sample norm of g = ∇ₓD, the penalty's derivative
//! v = ∂P/∂g that seeds the tangent pass (`Network::tangent`), and the batch means of the
//! penalty and of ‖g‖. See ../shared/GAN-MATH.md for the whole second-order pass.

use super::case::uniform;
use super::{
    Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, key_words, launch, u,
};
use crate::backend::{Backend, Tensor, WriteMode};
use crate::cpu::par::PAR_MIN;
use crate::rng::{self, RngKey};
use rayon::prelude::*;

/// Which penalty `penalty_seed` computes from ‖g‖ per sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PenaltyKind {
    /// λ·(‖g‖ − 1)², on interpolates (WGAN-GP, two-sided).
    GradientPenalty,
    /// (γ/2)·‖g‖², on real samples (R1).
    R1,
}

impl PenaltyKind {
    pub fn code(self) -> u32 {
        match self {
            PenaltyKind::GradientPenalty => 0,
            PenaltyKind::R1 => 1,
        }
    }

    pub fn from_code(c: u32) -> Self {
        if c == 0 {
            PenaltyKind::GradientPenalty
        } else {
            PenaltyKind::R1
        }
    }

    /// (term, coefficient) of one sample with ‖g‖ = `norm`: the penalty term and c in
    /// ∂term/∂g = c·g. At g = 0 the two-sided penalty's gradient is taken as 0.
    pub fn term_and_coef(self, weight: f32, norm: f32) -> (f32, f32) {
        match self {
            PenaltyKind::GradientPenalty => {
                let coef = if norm > 0.0 {
                    2.0 * weight * (norm - 1.0) / norm
                } else {
                    0.0
                };
                (weight * (norm - 1.0) * (norm - 1.0), coef)
            }
            PenaltyKind::R1 => (0.5 * weight * norm * norm, weight),
        }
    }
}

crate::params! {
    pub struct PenaltyParams {
        pub rows: u32,
        pub cols: u32,
        pub kind: u32,
        /// λ or γ.
        pub weight: f32,
        pub x_off: u32,
        pub y_off: u32,
        pub out_off: u32,
        pub rows_out_off: u32,
        pub seed_lo: u32,
        pub seed_hi: u32,
        pub stream: u32,
        pub ctr_lo: u32,
        pub ctr_hi: u32,
        pub accumulate: u32,
    }
}

impl PenaltyParams {
    fn key(&self) -> RngKey {
        RngKey::new(
            self.seed_lo as u64 | (self.seed_hi as u64) << 32,
            self.stream,
            self.ctr_lo as u64 | (self.ctr_hi as u64) << 32,
        )
    }

    fn with_key(mut self, key: RngKey) -> Self {
        [
            self.seed_lo,
            self.seed_hi,
            self.stream,
            self.ctr_lo,
            self.ctr_hi,
        ] = key_words(key);
        self
    }
}

pub static SHADER: Shader = Shader {
    name: "penalty",
    source: include_str!("../../shaders/penalty.wgsl"),
    preludes: &[&super::PHILOX],
};

/// ε of row r: U(0, 1) from Philox element r of the key (the same bits on every backend).
fn epsilon(key: RngKey, r: usize) -> f32 {
    rng::uniform(key, r as u64, 0.0, 1.0)
}

pub static PENALTY_INTERPOLATE: KernelDef = KernelDef {
    name: "penalty_interpolate",
    shader: &SHADER,
    params: &<PenaltyParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("x"),
        Binding::read("y"),
        Binding::write("out"),
    ],
    workgroups: |p| {
        let p: PenaltyParams = cast(p);
        elementwise_groups(p.rows * p.cols)
    },
    cpu: |p, b| {
        let p: PenaltyParams = cast(p);
        let (x, y, out) = (b.r(0), b.r(1), b.w(2));
        let (rows, cols, key) = (p.rows as usize, p.cols as usize, p.key());
        if cols == 0 {
            return;
        }
        // Row by row, so each row's ε is drawn once.
        let row = |(r, o): (usize, &mut [f32])| {
            let eps = epsilon(key, r);
            let (x, y) = (&x[r * cols..(r + 1) * cols], &y[r * cols..(r + 1) * cols]);
            for ((o, x), y) in o.iter_mut().zip(x).zip(y) {
                *o = eps * x + (1.0 - eps) * y;
            }
        };
        let out = &mut out[..rows * cols];
        if rows * cols >= PAR_MIN {
            out.par_chunks_mut(cols).enumerate().for_each(row);
        } else {
            out.chunks_mut(cols).enumerate().for_each(row);
        }
    },
    reference: |p, b| {
        let p: PenaltyParams = cast(p);
        let (x, y, out) = (b.r(0), b.r(1), b.w(2));
        let cols = p.cols as usize;
        for r in 0..p.rows as usize {
            let eps = epsilon(p.key(), r);
            for c in 0..cols {
                let i = r * cols + c;
                out[i] = eps * x[i] + (1.0 - eps) * y[i];
            }
        }
    },
    cases: || {
        [(1, 1), (3, 65), (64, 784), (129, 2), (7, 1200)]
            .into_iter()
            .enumerate()
            .map(|(i, (r, c))| interpolate_case(r, c, i as u64))
            .collect()
    },
    bench: || vec![interpolate_case(64, 784, 1)],
    work: |p| {
        let p: PenaltyParams = cast(p);
        Work::elementwise(p.rows * p.cols, 3)
    },
};

fn interpolate_case(rows: usize, cols: usize, seed: u64) -> Case {
    let p = PenaltyParams {
        rows: u(rows),
        cols: u(cols),
        ..Default::default()
    }
    .with_key(RngKey::new(seed, rng::stream::TEST, 1000 * seed + 3));
    Case::new(format!("rows={rows} cols={cols}"), p)
        .f32(uniform(seed, rows * cols, -1.0, 1.0))
        .f32(uniform(seed + 1, rows * cols, -1.0, 1.0))
        .zeros(rows * cols)
        .tol(1e-6, 1e-6)
}

pub static PENALTY_SEED: KernelDef = KernelDef {
    name: "penalty_seed",
    shader: &SHADER,
    params: &<PenaltyParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("x"),
        Binding::unused("y"),
        Binding::write("out"),
        Binding::write("rows_out"),
    ],
    workgroups: |p| [cast::<PenaltyParams>(p).rows.clamp(1, 65_535), 1, 1],
    cpu: |p, b| {
        let p: PenaltyParams = cast(p);
        let (g, v, rows_out) = (b.r(0), b.w(2), b.w(3));
        let (rows, cols) = (p.rows as usize, p.cols as usize);
        let kind = PenaltyKind::from_code(p.kind);
        let body = |(r, (v, out)): (usize, (&mut [f32], &mut [f32]))| {
            let g = &g[r * cols..(r + 1) * cols];
            let norm = g.iter().map(|x| x * x).sum::<f32>().sqrt();
            let (term, coef) = kind.term_and_coef(p.weight, norm);
            let coef = coef / rows as f32;
            for (v, g) in v.iter_mut().zip(g) {
                *v = coef * g;
            }
            out.copy_from_slice(&[term, norm]);
        };
        let (v, rows_out) = (&mut v[..rows * cols], &mut rows_out[..2 * rows]);
        if rows * cols >= PAR_MIN && cols > 0 {
            v.par_chunks_mut(cols)
                .zip(rows_out.par_chunks_mut(2))
                .enumerate()
                .for_each(body);
        } else if cols > 0 {
            v.chunks_mut(cols)
                .zip(rows_out.chunks_mut(2))
                .enumerate()
                .for_each(body);
        }
    },
    reference: |p, b| {
        let p: PenaltyParams = cast(p);
        let (g, v, rows_out) = (b.r(0), b.w(2), b.w(3));
        let (rows, cols) = (p.rows as usize, p.cols as usize);
        for r in 0..rows {
            let sq: f64 = (0..cols).map(|c| (g[r * cols + c] as f64).powi(2)).sum();
            let norm = sq.sqrt() as f32;
            let (term, coef) = PenaltyKind::from_code(p.kind).term_and_coef(p.weight, norm);
            for c in 0..cols {
                v[r * cols + c] = coef / rows as f32 * g[r * cols + c];
            }
            rows_out[2 * r] = term;
            rows_out[2 * r + 1] = norm;
        }
    },
    cases: || {
        let mut out = Vec::new();
        for (i, (r, c)) in [(1, 1), (3, 65), (64, 784), (129, 2), (5, 1200), (300, 3)]
            .into_iter()
            .enumerate()
        {
            for kind in [PenaltyKind::GradientPenalty, PenaltyKind::R1] {
                out.push(seed_case(r, c, kind, 10 * i as u64 + kind.code() as u64));
            }
        }
        out
    },
    bench: || vec![seed_case(64, 784, PenaltyKind::GradientPenalty, 1)],
    work: |p| {
        let p: PenaltyParams = cast(p);
        Work::elementwise(p.rows * p.cols, 2)
    },
};

fn seed_case(rows: usize, cols: usize, kind: PenaltyKind, seed: u64) -> Case {
    let p = PenaltyParams {
        rows: u(rows),
        cols: u(cols),
        kind: kind.code(),
        weight: 10.0,
        ..Default::default()
    };
    // Rows whose norms fall below and above 1 (and one row of zeros, where the two-sided
    // penalty's gradient is defined as 0).
    let scale = 2.0 / (cols as f32).sqrt();
    let mut g = uniform(seed, rows * cols, -scale, scale);
    if rows > 2 {
        g[cols..2 * cols].fill(0.0);
    }
    Case::new(format!("rows={rows} cols={cols} {kind:?}"), p)
        .f32(g)
        .unused()
        .zeros(rows * cols)
        .zeros(2 * rows)
        .tol(2e-6, 2e-5)
}

pub static PENALTY_REDUCE: KernelDef = KernelDef {
    name: "penalty_reduce",
    shader: &SHADER,
    params: &<PenaltyParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("x"),
        Binding::unused("y"),
        Binding::write("out"),
    ],
    workgroups: |_| [1, 1, 1],
    // A few hundred rows: the loop is the twin.
    cpu: reduce_ref,
    reference: reduce_ref,
    cases: || {
        [(1, 0), (3, 1), (256, 0), (1000, 1)]
            .into_iter()
            .map(|(r, acc)| reduce_case(r, acc, r as u64))
            .collect()
    },
    bench: || vec![reduce_case(512, 1, 1)],
    work: |p| Work::elementwise(2 * cast::<PenaltyParams>(p).rows, 1),
};

fn reduce_ref(p: &[u8], b: &mut super::Bindings) {
    let p: PenaltyParams = cast(p);
    let (x, out) = (b.r(0), b.w(2));
    let rows = p.rows as usize;
    let (mut a, mut n) = (0.0f32, 0.0f32);
    for r in 0..rows {
        a += x[2 * r];
        n += x[2 * r + 1];
    }
    let inv = 1.0 / rows.max(1) as f32;
    let v = [a * inv, n * inv];
    for (o, v) in out[..2].iter_mut().zip(v) {
        *o = if p.accumulate != 0 { *o + v } else { v };
    }
}

fn reduce_case(rows: usize, accumulate: u32, seed: u64) -> Case {
    let p = PenaltyParams {
        rows: u(rows),
        accumulate,
        ..Default::default()
    };
    Case::new(format!("rows={rows} acc={accumulate}"), p)
        .f32(uniform(seed, 2 * rows, 0.0, 3.0))
        .unused()
        .f32(uniform(seed + 1, 2, 0.0, 1.0))
        .tol(1e-5, 1e-5)
}

/// x̂[r, :] = ε_r·real[r, :] + (1 − ε_r)·fake[r, :] for `rows` rows of `cols`, ε_r ~ U(0, 1) drawn
/// from `key` (element r).
pub fn penalty_interpolate(
    be: &mut dyn Backend,
    out: Tensor,
    real: Tensor,
    fake: Tensor,
    rows: usize,
    cols: usize,
    key: RngKey,
) {
    let p = PenaltyParams {
        rows: u(rows),
        cols: u(cols),
        ..Default::default()
    }
    .with_key(key);
    launch(be, &PENALTY_INTERPOLATE, p, &[real, fake, out]);
}

/// A gradient penalty and its weight (λ for WGAN-GP, γ for R1).
#[derive(Clone, Copy, Debug)]
pub struct PenaltyTerm {
    pub kind: PenaltyKind,
    pub weight: f32,
}

/// From g = ∇ₓD ([rows, cols]): v = ∂P/∂g into `v`, and (term, ‖g_r‖) per row into `per_row`
/// ([rows, 2]), for P = mean over rows of the penalty `term`.
pub fn penalty_seed(
    be: &mut dyn Backend,
    term: PenaltyTerm,
    v: Tensor,
    per_row: Tensor,
    g: Tensor,
    rows: usize,
    cols: usize,
) {
    let p = PenaltyParams {
        rows: u(rows),
        cols: u(cols),
        kind: term.kind.code(),
        weight: term.weight,
        ..Default::default()
    };
    launch(be, &PENALTY_SEED, p, &[g, g, v, per_row]);
}

/// stats[0..2] (+)= (mean penalty, mean ‖g‖) from `per_row` ([rows, 2], `penalty_seed`'s).
pub fn penalty_reduce(
    be: &mut dyn Backend,
    (stats, write): (Tensor, WriteMode),
    per_row: Tensor,
    rows: usize,
) {
    let p = PenaltyParams {
        rows: u(rows),
        accumulate: write.code(),
        ..Default::default()
    };
    launch(be, &PENALTY_REDUCE, p, &[per_row, per_row, stats]);
}

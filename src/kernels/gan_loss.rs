//! GAN losses from D's logits, their gradients, and the batch means reduced on the device
//! (`shaders/gan_loss.wgsl`). D(x) = σ(logit); losses in the stable softplus form.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, launch, u};
use crate::backend::{Backend, Tensor};
use crate::kernels::activation::{softplus, stable_sigmoid};

/// Which GAN loss `gan_loss` computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GanLossKind {
    /// −[log D(x) + log(1 − D(G(z)))] over n_real real then n_fake fake logits.
    Discriminator,
    /// log(1 − D(G(z))): the paper's minimax G loss, which saturates when D wins.
    GeneratorMinimax,
    /// −log D(G(z)): the non-saturating G loss the paper recommends in practice.
    GeneratorNonSaturating,
}

impl GanLossKind {
    pub fn code(self) -> u32 {
        match self {
            GanLossKind::Discriminator => 0,
            GanLossKind::GeneratorMinimax => 1,
            GanLossKind::GeneratorNonSaturating => 2,
        }
    }

    pub fn from_code(code: u32) -> Self {
        match code {
            0 => GanLossKind::Discriminator,
            1 => GanLossKind::GeneratorMinimax,
            _ => GanLossKind::GeneratorNonSaturating,
        }
    }
}

crate::params! {
    pub struct GanLossParams {
        pub n_real: u32,
        pub n_fake: u32,
        pub kind: u32,
        pub logits_off: u32,
        pub grad_off: u32,
        pub stats_off: u32,
        pub accumulate: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "gan_loss",
    source: include_str!("../../shaders/gan_loss.wgsl"),
    preludes: &[],
};

pub static GAN_LOSS: KernelDef = KernelDef {
    name: "gan_loss",
    shader: &SHADER,
    params: &<GanLossParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("logits"),
        Binding::write("grad"),
        Binding::write("stats"),
    ],
    workgroups: |_| [1, 1, 1],
    // One pass over a few hundred logits: the reference is fast enough to be the twin.
    cpu: |p, b| gan_loss_ref(&cast(p), b.w(1), b.r(0), b.w(2)),
    reference: |p, b| gan_loss_ref(&cast(p), b.w(1), b.r(0), b.w(2)),
    cases: || {
        let mut out = Vec::new();
        for (i, (r, f)) in [(0, 1), (1, 1), (3, 63), (64, 64), (0, 1000), (700, 300)]
            .into_iter()
            .enumerate()
        {
            for kind in 0..3 {
                out.push(case(
                    r,
                    f,
                    kind,
                    (i % 2) as u32,
                    11 * i as u64 + kind as u64,
                ));
            }
        }
        out
    },
    bench: || vec![case(64, 64, 0, 1, 1)],
    work: |p| {
        let p: GanLossParams = cast(p);
        Work::elementwise(p.n_real + p.n_fake, 2)
    },
};

fn case(n_real: usize, n_fake: usize, kind: u32, accumulate: u32, seed: u64) -> Case {
    let kind = if n_real > 0 { 0 } else { kind.max(1) };
    let p = GanLossParams {
        n_real: u(n_real),
        n_fake: u(n_fake),
        kind,
        accumulate,
        ..Default::default()
    };
    let n = n_real + n_fake;
    Case::new(
        format!("real={n_real} fake={n_fake} kind={kind} acc={accumulate}"),
        p,
    )
    .f32(uniform(seed, n, -30.0, 30.0))
    .zeros(n)
    .f32(uniform(seed + 1, 3, 0.0, 1.0))
    .tol(2e-5, 2e-5)
}

/// Loss gradient w.r.t. the logits into `grad`, and (loss, mean D(x), mean D(G(z))) into the
/// 3-word `stats` view (added to it when `accumulate`).
#[allow(clippy::too_many_arguments)]
pub fn gan_loss(
    be: &mut dyn Backend,
    kind: GanLossKind,
    grad: Tensor,
    logits: Tensor,
    n_real: usize,
    n_fake: usize,
    stats: Tensor,
    accumulate: bool,
) {
    let p = GanLossParams {
        n_real: u(n_real),
        n_fake: u(n_fake),
        kind: kind.code(),
        accumulate: accumulate as u32,
        ..Default::default()
    };
    launch(be, &GAN_LOSS, p, &[logits, grad, stats]);
}

/// grad = dL/dlogits; stats[0..3] (+)= (L, mean D(x), mean D(G(z))).
pub fn gan_loss_ref(p: &GanLossParams, grad: &mut [f32], logits: &[f32], stats: &mut [f32]) {
    let (n_real, n_fake) = (p.n_real as usize, p.n_fake as usize);
    let kind = GanLossKind::from_code(p.kind);
    let inv_real = 1.0 / n_real.max(1) as f32;
    let inv_fake = 1.0 / n_fake.max(1) as f32;
    let (mut loss, mut d_real, mut d_fake) = (0.0f32, 0.0f32, 0.0f32);
    for i in 0..n_real + n_fake {
        let l = logits[i];
        let s = stable_sigmoid(l);
        grad[i] = if i < n_real {
            loss += softplus(-l) * inv_real;
            d_real += s;
            (s - 1.0) * inv_real
        } else {
            d_fake += s;
            match kind {
                GanLossKind::Discriminator => {
                    loss += softplus(l) * inv_fake;
                    s * inv_fake
                }
                GanLossKind::GeneratorMinimax => {
                    loss -= softplus(l) * inv_fake;
                    -s * inv_fake
                }
                GanLossKind::GeneratorNonSaturating => {
                    loss += softplus(-l) * inv_fake;
                    (s - 1.0) * inv_fake
                }
            }
        };
    }
    let mean_real = if n_real == 0 { 0.0 } else { d_real * inv_real };
    let out = [loss, mean_real, d_fake * inv_fake];
    for (s, o) in stats[..3].iter_mut().zip(out) {
        *s = if p.accumulate != 0 { *s + o } else { o };
    }
}

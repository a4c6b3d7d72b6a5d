//! GAN losses from D's raw output, their gradients, and the batch means reduced on the device
//! (`shaders/gan_loss.wgsl`): the original losses (D(x) = σ(logit), in the stable softplus
//! form), the Wasserstein critic's, the hinge loss and least squares.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, launch, u};
use crate::backend::{Backend, Tensor};
use crate::kernels::activation::{softplus, stable_sigmoid};

/// Which GAN loss `gan_loss` computes: a discriminator (critic) loss over real then fake
/// outputs, or a generator loss over fake outputs. One network's formula, the kernel's code:
/// the loss pair a run names is `objective::Loss` (with `objective::GeneratorLoss` for G's
/// form), from which `Objective::d_kind` and `Objective::g_kind` pick these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GanLossKind {
    /// −[log D(x) + log(1 − D(G(z)))] over n_real real then n_fake fake logits.
    Discriminator,
    /// log(1 − D(G(z))): the paper's minimax G loss, which saturates when D wins.
    GeneratorMinimax,
    /// −log D(G(z)): the non-saturating G loss the paper recommends in practice.
    GeneratorNonSaturating,
    /// E[D(G(z))] − E[D(x)]: the WGAN critic's loss (it maximises E[D(x)] − E[D(G(z))]).
    CriticWasserstein,
    /// −E[D(G(z))]: the generator's loss under the Wasserstein and hinge critics.
    GeneratorWasserstein,
    /// E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; SN-GAN, SAGAN).
    DiscriminatorHinge,
    /// ½E[(D(x) − 1)²] + ½E[D(G(z))²]: LSGAN (Mao et al. 2017) with a = 0, b = 1.
    DiscriminatorLeastSquares,
    /// ½E[(D(G(z)) − 1)²]: LSGAN's generator with c = 1.
    GeneratorLeastSquares,
}

impl GanLossKind {
    pub const ALL: [GanLossKind; 8] = [
        GanLossKind::Discriminator,
        GanLossKind::GeneratorMinimax,
        GanLossKind::GeneratorNonSaturating,
        GanLossKind::CriticWasserstein,
        GanLossKind::GeneratorWasserstein,
        GanLossKind::DiscriminatorHinge,
        GanLossKind::DiscriminatorLeastSquares,
        GanLossKind::GeneratorLeastSquares,
    ];

    pub fn code(self) -> u32 {
        Self::ALL
            .iter()
            .position(|&k| k == self)
            .expect("every kind is in ALL") as u32
    }

    pub fn from_code(code: u32) -> Self {
        Self::ALL[(code as usize).min(Self::ALL.len() - 1)]
    }

    /// A discriminator's loss, over real and fake outputs (else a generator's, over fakes).
    pub fn is_discriminator(self) -> bool {
        matches!(
            self,
            GanLossKind::Discriminator
                | GanLossKind::CriticWasserstein
                | GanLossKind::DiscriminatorHinge
                | GanLossKind::DiscriminatorLeastSquares
        )
    }

    /// D's output is a logit whose sigmoid is a probability (the original losses); the batch
    /// means of `gan_loss` are then means of σ(l), else of the raw output.
    pub fn reads_probabilities(self) -> bool {
        self.code() <= 2
    }

    /// (loss term, dloss/dl) of one output before the batch mean: the specification.
    pub fn term(self, real: bool, l: f32) -> (f32, f32) {
        match self {
            GanLossKind::Discriminator
            | GanLossKind::GeneratorMinimax
            | GanLossKind::GeneratorNonSaturating => {
                let s = stable_sigmoid(l);
                if real || self == GanLossKind::GeneratorNonSaturating {
                    (softplus(-l), s - 1.0)
                } else if self == GanLossKind::Discriminator {
                    (softplus(l), s)
                } else {
                    (-softplus(l), -s)
                }
            }
            GanLossKind::CriticWasserstein if real => (-l, -1.0),
            GanLossKind::CriticWasserstein => (l, 1.0),
            GanLossKind::GeneratorWasserstein => (-l, -1.0),
            // max(0, ·) passes no gradient at the hinge itself, as PyTorch's relu.
            GanLossKind::DiscriminatorHinge if real => {
                ((1.0 - l).max(0.0), if l < 1.0 { -1.0 } else { 0.0 })
            }
            GanLossKind::DiscriminatorHinge => {
                ((1.0 + l).max(0.0), if l > -1.0 { 1.0 } else { 0.0 })
            }
            GanLossKind::DiscriminatorLeastSquares | GanLossKind::GeneratorLeastSquares => {
                let target = if real || self == GanLossKind::GeneratorLeastSquares {
                    1.0
                } else {
                    0.0
                };
                let e = l - target;
                (0.5 * e * e, e)
            }
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
        /// ε of the drift term ε·E[D(x)²] a discriminator kind adds (0: none).
        pub drift: f32,
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
            for kind in GanLossKind::ALL {
                // Discriminator losses need real outputs, generator losses take none.
                if kind.is_discriminator() != (r > 0) {
                    continue;
                }
                let seed = 11 * i as u64 + kind.code() as u64;
                out.push(case(r, f, kind, (i % 2) as u32, 0.0, seed));
                // ProGAN's drift term on a discriminator's real outputs.
                if kind.is_discriminator() && i % 2 == 1 {
                    out.push(case(r, f, kind, 0, 1e-3, seed + 100));
                }
            }
        }
        out
    },
    bench: || vec![case(64, 64, GanLossKind::Discriminator, 1, 0.0, 1)],
    work: |p| {
        let p: GanLossParams = cast(p);
        Work::elementwise(p.n_real + p.n_fake, 2)
    },
};

fn case(
    n_real: usize,
    n_fake: usize,
    kind: GanLossKind,
    accumulate: u32,
    drift: f32,
    seed: u64,
) -> Case {
    let p = GanLossParams {
        n_real: u(n_real),
        n_fake: u(n_fake),
        kind: kind.code(),
        accumulate,
        drift,
        ..Default::default()
    };
    let n = n_real + n_fake;
    // Outputs on both sides of every kink (hinge at ±1) and far into the sigmoid's tails.
    Case::new(
        format!("real={n_real} fake={n_fake} {kind:?} acc={accumulate} drift={drift}"),
        p,
    )
    .f32(uniform(seed, n, -30.0, 30.0))
    .zeros(n)
    .f32(uniform(seed + 1, 3, 0.0, 1.0))
    .tol(2e-5, 2e-5)
}

/// What a loss pass reads and writes: D's outputs (`logits`) on `real` real rows followed by
/// `fake` generated ones, the loss's gradient w.r.t. them (`grad`), and the 3-word `stats` view
/// that takes (loss, mean D(x), mean D(G(z))).
#[derive(Clone, Copy, Debug)]
pub struct LossArgs {
    pub logits: Tensor,
    pub grad: Tensor,
    pub real: usize,
    pub fake: usize,
    pub stats: Tensor,
}

impl LossArgs {
    /// A generator step's loss: `m` generated rows and no real ones.
    pub fn generated(logits: Tensor, grad: Tensor, m: usize, stats: Tensor) -> Self {
        LossArgs {
            logits,
            grad,
            real: 0,
            fake: m,
            stats,
        }
    }
}

/// How a loss pass records its figures in `stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// Added to what is there (a run sums its D- and G-steps' figures between log lines).
    Add,
    /// In place of what is there.
    Replace,
}

impl Record {
    /// `Add` when `add`, else `Replace`.
    pub fn add_if(add: bool) -> Self {
        if add { Record::Add } else { Record::Replace }
    }
}

/// The loss's gradient w.r.t. the logits, and its figures recorded in `stats`.
pub fn gan_loss(be: &mut dyn Backend, kind: GanLossKind, a: LossArgs, record: Record) {
    gan_loss_with_drift(be, kind, a, record, 0.0);
}

/// `gan_loss` plus the drift term ε·E[D(x)²] on a discriminator's real outputs.
pub fn gan_loss_with_drift(
    be: &mut dyn Backend,
    kind: GanLossKind,
    a: LossArgs,
    record: Record,
    drift: f32,
) {
    let p = GanLossParams {
        n_real: u(a.real),
        n_fake: u(a.fake),
        kind: kind.code(),
        accumulate: (record == Record::Add) as u32,
        drift: if kind.is_discriminator() { drift } else { 0.0 },
        ..Default::default()
    };
    launch(be, &GAN_LOSS, p, &[a.logits, a.grad, a.stats]);
}

/// grad = dL/dlogits; stats[0..3] (+)= (L, mean D(x), mean D(G(z))), D a probability for the
/// original losses and the raw output for the others.
pub fn gan_loss_ref(p: &GanLossParams, grad: &mut [f32], logits: &[f32], stats: &mut [f32]) {
    let (n_real, n_fake) = (p.n_real as usize, p.n_fake as usize);
    let kind = GanLossKind::from_code(p.kind);
    let inv_real = 1.0 / n_real.max(1) as f32;
    let inv_fake = 1.0 / n_fake.max(1) as f32;
    let (mut loss, mut d_real, mut d_fake) = (0.0f32, 0.0f32, 0.0f32);
    for i in 0..n_real + n_fake {
        let (l, real) = (logits[i], i < n_real);
        let scale = if real { inv_real } else { inv_fake };
        let (mut term, mut g) = kind.term(real, l);
        if real {
            term += p.drift * l * l;
            g += p.drift * 2.0 * l;
        }
        loss += term * scale;
        grad[i] = g * scale;
        let d = if kind.reads_probabilities() {
            stable_sigmoid(l)
        } else {
            l
        };
        if real {
            d_real += d;
        } else {
            d_fake += d;
        }
    }
    let mean_real = if n_real == 0 { 0.0 } else { d_real * inv_real };
    let out = [loss, mean_real, d_fake * inv_fake];
    for (s, o) in stats[..3].iter_mut().zip(out) {
        *s = if p.accumulate != 0 { *s + o } else { o };
    }
}

//! A gradient penalty's step inside a D-update (see ../shared/GAN-MATH.md): D runs forward on
//! the penalised points (WGAN-GP's interpolates, or R1's real samples), backward from ones to
//! g = ∇ₓD per sample, the penalty's derivative v = ∂P/∂g seeds the tangent pass, and the
//! tangent pass adds the exact ∂P/∂θ to D's parameter gradients.

use crate::backend::{Backend, Tensor, WriteMode};
use crate::kernels::penalty::{
    PenaltyKind, PenaltyTerm, penalty_interpolate, penalty_reduce, penalty_seed,
};
use crate::model::Backprop;
use crate::model::Network;
use crate::rng::RngKey;
use anyhow::Result;

pub struct Penalty {
    pub kind: PenaltyKind,
    /// λ or γ.
    pub weight: f32,
    /// x̂, [rows, D's input] (WGAN-GP).
    x_hat: Tensor,
    /// ∂D/∂D = 1 per row, the backward's seed.
    ones: Tensor,
    /// v = ∂P/∂g, [rows, D's input].
    v: Tensor,
    /// (penalty term, ‖g‖) per row.
    per_row: Tensor,
    /// The tangent pass's two buffers of D's widest layer.
    scratch: [Tensor; 2],
}

/// The batch a penalty is taken on: `rows` rows of real and of generated samples (D's input rows).
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    pub real: Tensor,
    pub fake: Tensor,
    pub rows: usize,
}

impl Penalty {
    /// Buffers for penalties on up to `rows` rows of D's input.
    pub fn new(
        be: &mut dyn Backend,
        d: &Network,
        kind: PenaltyKind,
        weight: f32,
        rows: usize,
    ) -> Result<Self> {
        let d_in = d.input_len();
        let widest = d.widths.iter().copied().max().unwrap_or(1).max(d_in);
        let ones = be.alloc(rows, "penalty seed (ones)")?;
        be.write(ones, &vec![1.0; rows]);
        Ok(Penalty {
            kind,
            weight,
            x_hat: match kind {
                PenaltyKind::GradientPenalty => be.alloc(rows * d_in, "interpolates x̂")?,
                PenaltyKind::R1 => ones,
            },
            ones,
            v: be.alloc(rows * d_in, "penalty ∂P/∂g")?,
            per_row: be.alloc(2 * rows, "penalty per sample")?,
            scratch: [
                be.alloc(rows * widest, "tangent pass a")?,
                be.alloc(rows * widest, "tangent pass b")?,
            ],
        })
    }

    /// Adds ∂P/∂θ_D to D's parameter gradients (after the loss's backward wrote them) for the
    /// rows of `on` ([rows, D's input]); `key` draws WGAN-GP's ε. Adds (mean penalty, mean ‖g‖)
    /// to `stats`.
    pub fn add_gradient(
        &self,
        be: &mut dyn Backend,
        d: &mut Network,
        on: Pair,
        key: RngKey,
        stats: Tensor,
    ) {
        let Pair { real, fake, rows } = on;
        let d_in = d.input_len();
        let x = match self.kind {
            PenaltyKind::GradientPenalty => {
                let x_hat = self.x_hat.slice(0, rows * d_in);
                penalty_interpolate(be, x_hat, real, fake, rows, d_in, key);
                x_hat
            }
            PenaltyKind::R1 => real,
        };
        d.forward(be, x, rows, true, None);
        let g = d
            .backward(be, self.ones.slice(0, rows), Backprop::Input)
            .expect("input gradient requested");
        let v = self.v.slice(0, rows * d_in);
        let per_row = self.per_row.slice(0, 2 * rows);
        let term = PenaltyTerm {
            kind: self.kind,
            weight: self.weight,
        };
        penalty_seed(be, term, v, per_row, g, rows, d_in);
        penalty_reduce(be, (stats, WriteMode::Accumulate), per_row, rows);
        d.tangent(be, v, self.scratch)
            .expect("the critic's tangent pass was checked when the GAN was built");
    }
}

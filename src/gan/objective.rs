//! What D and G optimise beyond the original GAN: the loss (Wasserstein, hinge, least squares),
//! a gradient penalty (WGAN-GP or R1) and weight clipping, and what each makes meaningful to log.
//! Spectral normalization is part of the networks (`Layer::SpectralNorm`).

use super::{GeneratorLoss, Stats};
use crate::backend::GanLossKind;
use crate::kernels::penalty::PenaltyKind;
use anyhow::{Result, bail};

/// The pair of losses D and G are trained with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Loss {
    /// Goodfellow et al.: D a classifier (D(x) = σ(logit)); G minimax or non-saturating.
    #[default]
    Original,
    /// WGAN (Arjovsky et al. 2017): a critic maximising E[D(x)] − E[D(G(z))], G minimising
    /// −E[D(G(z))]. Needs a Lipschitz constraint: weight clipping, a gradient penalty or
    /// spectral norm.
    Wasserstein,
    /// Hinge (Lim & Ye; SN-GAN, SAGAN): D E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))],
    /// G −E[D(G(z))].
    Hinge,
    /// LSGAN (Mao et al. 2017) with a = 0, b = c = 1: D ½E[(D(x) − 1)²] + ½E[D(G(z))²],
    /// G ½E[(D(G(z)) − 1)²].
    LeastSquares,
}

/// The loss, a penalty and weight clipping.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Objective {
    pub loss: Loss,
    /// WGAN-GP's λ: λ·E[(‖∇D(x̂)‖ − 1)²] on x̂ = εx + (1 − ε)G(z), ε ~ U(0, 1) per sample (0: off).
    pub gp: f32,
    /// R1's γ: (γ/2)·E[‖∇D(x)‖²] on real samples (0: off).
    pub r1: f32,
    /// Weight clipping: D's parameters clamped to [−c, c] after every update (0: off).
    pub clip: f32,
    /// ProGAN's drift term ε·E[D(x)²] added to D's loss (Karras et al. use ε = 0.001 with
    /// WGAN-GP), which keeps a critic's outputs from drifting far from 0 (0: off).
    pub drift: f32,
}

/// One logged quantity: its metrics.csv column, its label on the progress line and plot.
#[derive(Clone, Debug, PartialEq)]
pub struct LogField {
    pub column: &'static str,
    pub label: &'static str,
    pub value: f64,
}

impl Objective {
    pub fn d_kind(&self) -> GanLossKind {
        match self.loss {
            Loss::Original => GanLossKind::Discriminator,
            Loss::Wasserstein => GanLossKind::CriticWasserstein,
            Loss::Hinge => GanLossKind::DiscriminatorHinge,
            Loss::LeastSquares => GanLossKind::DiscriminatorLeastSquares,
        }
    }

    pub fn g_kind(&self, g_loss: GeneratorLoss) -> GanLossKind {
        match self.loss {
            Loss::Original => g_loss.kind(),
            Loss::Wasserstein | Loss::Hinge => GanLossKind::GeneratorWasserstein,
            Loss::LeastSquares => GanLossKind::GeneratorLeastSquares,
        }
    }

    /// The penalty and its weight, when one is on.
    pub fn penalty(&self) -> Option<(PenaltyKind, f32)> {
        if self.gp > 0.0 {
            Some((PenaltyKind::GradientPenalty, self.gp))
        } else if self.r1 > 0.0 {
            Some((PenaltyKind::R1, self.r1))
        } else {
            None
        }
    }

    pub fn validate(&self, g_loss: GeneratorLoss) -> Result<()> {
        for (name, v, example) in [
            ("--gp", self.gp, "10"),
            ("--r1", self.r1, "10"),
            ("--clip", self.clip, "0.01"),
            ("--drift", self.drift, "0.001"),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                bail!("{name} must be 0 (off) or positive, such as {example}; not {v}");
            }
        }
        if self.gp > 0.0 && self.r1 > 0.0 {
            bail!("--gp and --r1 are both set; use one gradient penalty (WGAN-GP or R1)");
        }
        if self.loss != Loss::Original && g_loss == GeneratorLoss::Minimax {
            bail!(
                "--g-loss minimax belongs to the original loss; with --loss {} the generator's \
                 loss follows from the critic's (leave --g-loss unset)",
                self.loss_name()
            );
        }
        Ok(())
    }

    pub fn loss_name(&self) -> &'static str {
        match self.loss {
            Loss::Original => "original",
            Loss::Wasserstein => "wasserstein",
            Loss::Hinge => "hinge",
            Loss::LeastSquares => "least-squares",
        }
    }

    /// What a log step reports: D's and G's losses and D's mean outputs (probabilities for the
    /// original loss, raw scores otherwise), then what this objective adds — the critic's
    /// estimate of the Wasserstein-1 distance, E[D(x)] − E[D(G(z))], and the penalty with the
    /// mean ‖∇ₓD‖ it is taken on. The first four columns are the same for every objective.
    pub fn log_fields(&self, s: &Stats) -> Vec<LogField> {
        let field = |column, label, value: f32| LogField {
            column,
            label,
            value: value as f64,
        };
        let d_label = match self.loss {
            Loss::Wasserstein => "critic loss",
            _ => "D loss",
        };
        let mut out = vec![
            field("d_loss", d_label, s.d_loss),
            field("g_loss", "G loss", s.g_loss),
            field("d_real", "D(x)", s.d_real),
            field("d_fake", "D(G(z))", s.d_fake),
        ];
        if self.loss == Loss::Wasserstein {
            out.push(field("wasserstein", "W estimate", s.d_real - s.d_fake));
        }
        match self.penalty() {
            Some((PenaltyKind::GradientPenalty, _)) => {
                out.push(field("penalty", "GP", s.penalty));
                out.push(field("grad_norm", "‖∇D(x̂)‖", s.grad_norm));
            }
            Some((PenaltyKind::R1, _)) => {
                out.push(field("penalty", "R1", s.penalty));
                out.push(field("grad_norm", "‖∇D(x)‖", s.grad_norm));
            }
            None => {}
        }
        out
    }
}

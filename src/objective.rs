//! What D and G optimise: the loss pair (original, Wasserstein, hinge, least squares), G's form
//! of it, a gradient penalty (WGAN-GP or R1) and weight clipping. Spectral normalization is part
//! of the networks (`Layer::SpectralNorm`). A leaf: the configuration names these types and the
//! training step (`gan`) runs them; what each makes meaningful to log is `gan::log_fields`.

use crate::backend::GanLossKind;
use crate::kernels::penalty::PenaltyKind;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// The pair of losses D and G are trained with (`--loss`; each variant's doc is its `--help`
/// line, its kebab-case name the option's value and the `config.toml` spelling).
///
/// Original: Goodfellow et al., D a classifier (D(x) = σ(logit)). Wasserstein: WGAN (Arjovsky
/// et al. 2017), which needs a Lipschitz constraint (weight clipping, a gradient penalty or
/// spectral norm). Hinge: Lim & Ye, as SN-GAN and SAGAN train. LeastSquares: LSGAN (Mao et al.
/// 2017) with a = 0, b = c = 1. The kernel's `GanLossKind` is not a third copy of this: it names
/// one network's loss formula (D's or G's, and G's minimax or non-saturating form), which
/// `Objective::d_kind` and `Objective::g_kind` pick from this and `GeneratorLoss`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// Goodfellow et al.'s: D a classifier, G non-saturating or minimax (--g-loss)
    #[default]
    Original,
    /// WGAN's critic: D maximises E[D(x)] − E[D(G(z))]; needs --clip, --gp or --sn
    Wasserstein,
    /// D: E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))], G: −E[D(G(z))]
    Hinge,
    /// LSGAN: D ½E[(D(x) − 1)²] + ½E[D(G(z))²], G ½E[(D(G(z)) − 1)²]
    LeastSquares,
}

/// The generator's objective (`--g-loss`): NonSaturating is −log D(G(z)), strong gradients
/// early in training (the paper's practical choice); Minimax is log(1 − D(G(z))), the minimax
/// objective as written, which saturates when D wins. (No per-value help: the variants carry
/// no doc comments, as the option's `--help` lists the two names alone.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorLoss {
    NonSaturating,
    Minimax,
}

impl GeneratorLoss {
    pub fn kind(self) -> GanLossKind {
        match self {
            GeneratorLoss::NonSaturating => GanLossKind::GeneratorNonSaturating,
            GeneratorLoss::Minimax => GanLossKind::GeneratorMinimax,
        }
    }
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
}

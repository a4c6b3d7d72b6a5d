//! What a GAN is trained with: the two networks' specs, the losses, the optimizers and the
//! schedule of Algorithm 1, checked before anything is allocated.

use super::{Objective, Schedule};
use crate::backend::{Backend, GanLossKind, Tensor};
use crate::kernels::rng::{rng_normal, rng_uniform};
use crate::model::{BuiltNet, NetSpec, Optimizer};
use crate::rng::RngKey;
use anyhow::{Result, bail};

/// The generator's objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratorLoss {
    /// −log D(G(z)): strong gradients early in training (the paper's practical choice).
    NonSaturating,
    /// log(1 − D(G(z))): the minimax objective as written, which saturates when D wins.
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

/// The prior p_z the generator's input is drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// U(−1, 1) in every dimension.
    Uniform,
    /// N(0, 1) in every dimension.
    Normal,
    /// U(−√3, √3) in every dimension: unit variance, what the paper's code (the `adversarial`
    /// repository's `Generator`) draws for `noise: uniform`.
    UniformUnitVariance,
}

impl Noise {
    /// Fills `z` with `n` draws from the counter-based stream `key`.
    pub fn draw(self, be: &mut dyn Backend, z: Tensor, n: usize, key: RngKey) {
        match self {
            Noise::Uniform => rng_uniform(be, z, n, -1.0, 1.0, key),
            Noise::Normal => rng_normal(be, z, n, key),
            Noise::UniformUnitVariance => {
                let b = 3f32.sqrt();
                rng_uniform(be, z, n, -b, b, key)
            }
        }
    }
}

/// How an iteration updates the two networks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Updates {
    /// Algorithm 1: k D-updates, then a G-update on fresh noise through the updated D.
    #[default]
    Alternating,
    /// The paper's code (`AdversaryCost2` under one SGD): one real and one fake batch through D
    /// once; D's gradient and G's gradient (through the same D outputs and dropout masks) are
    /// both taken at the current weights, then both networks are updated.
    Simultaneous,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GanConfig {
    pub g: NetSpec,
    pub d: NetSpec,
    pub batch: usize,
    /// Discriminator updates per generator update.
    pub k: usize,
    pub g_loss: GeneratorLoss,
    pub noise: Noise,
    pub opt_g: Optimizer,
    pub opt_d: Optimizer,
    /// Learning-rate decay and momentum ramp of both optimizers.
    pub schedule: Schedule,
    pub updates: Updates,
    pub seed: u64,
    /// Decay of the moving average of G's weights that samples are drawn from (0 = sample the
    /// raw weights).
    pub ema: f32,
    /// PacGAN packing: D judges `pack` samples at once, concatenated (its input is pack × the
    /// sample size), which penalises a generator whose samples lack variety. 1 = a plain GAN.
    pub pack: usize,
    /// The loss (original, Wasserstein, hinge, least squares), gradient penalty and clipping.
    pub objective: Objective,
}

impl GanConfig {
    /// The class count of a conditional GAN (G and D both conditioned on it), or None.
    pub fn classes(&self) -> Option<usize> {
        self.g.classes()
    }

    pub fn validate(&self) -> Result<()> {
        self.build().map(|_| ())
    }

    /// Builds both networks, once, and checks that they and the options fit together:
    /// (generator, discriminator).
    pub fn build(&self) -> Result<(BuiltNet, BuiltNet)> {
        let g = self.g.build("generator")?;
        let d = self.d.build("discriminator")?;
        if self.g.classes() != self.d.classes() {
            bail!(
                "a conditional GAN conditions both networks on the same classes: the generator \
                 has {:?}, the discriminator {:?}",
                self.g.classes(),
                self.d.classes()
            );
        }
        if self.classes().is_some() && self.pack != 1 {
            bail!(
                "conditional training judges each sample with its own class, so it cannot pack \
                 samples: pass --pack 1 (not {})",
                self.pack
            );
        }
        if self.pack == 0 || !self.batch.is_multiple_of(self.pack) {
            bail!(
                "--batch {} must be a multiple of --pack {} (D judges packs of samples)",
                self.batch,
                self.pack
            );
        }
        if g.output() * self.pack != self.d.input.len() {
            bail!(
                "the generator makes {} values per sample but the discriminator reads {} per \
                 pack of {}",
                g.output(),
                self.d.input,
                self.pack
            );
        }
        if d.output() != 1 {
            bail!(
                "the discriminator must output one logit, not {}",
                d.output()
            );
        }
        if self.batch == 0 {
            bail!("--batch must be at least 1");
        }
        if !(0.0..1.0).contains(&self.ema) {
            bail!("--ema must be in [0, 1), not {}", self.ema);
        }
        // Batch norm normalises over the batch: one sample per batch normalises to the bias.
        for (name, spec, rows) in [
            ("generator", &self.g, self.batch),
            ("discriminator", &self.d, self.batch / self.pack.max(1)),
        ] {
            if rows < 2 && spec.layers.contains(&crate::model::Layer::BatchNorm) {
                bail!(
                    "the {name} uses batch norm, which needs batches of at least 2 samples \
                     (packs, with --pack); use a larger --batch"
                );
            }
        }
        if self.k == 0 {
            bail!("--k (discriminator steps per generator step) must be at least 1");
        }
        self.objective.validate(self.g_loss)?;
        if self.objective.penalty().is_some() {
            d.check_tangent().map_err(|e| {
                anyhow::anyhow!(
                    "a gradient penalty (--gp, --r1) takes D's gradient w.r.t. each sample's input \
                     exactly, through every layer of the critic, and this critic does not allow \
                     it: {e}. Remove that layer from the critic (the penalty papers use no batch \
                     norm there: it couples the samples), or drop the penalty"
                )
            })?;
        }
        self.schedule.validate()?;
        if self.updates == Updates::Simultaneous && self.k != 1 {
            bail!(
                "--updates simultaneous makes one D-update and one G-update from each batch; \
                 --k must be 1, not {}",
                self.k
            );
        }
        for (name, opt) in [("generator", self.opt_g), ("discriminator", self.opt_d)] {
            if !(opt.lr() > 0.0 && opt.lr().is_finite()) {
                bail!(
                    "the {name}'s learning rate must be positive, not {}",
                    opt.lr()
                );
            }
        }
        Ok((g, d))
    }
}

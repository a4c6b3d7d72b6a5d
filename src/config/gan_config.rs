//! What a GAN is trained with: the two networks' specs, the losses, the optimizers and the
//! schedule of Algorithm 1, checked before anything is allocated. The configuration resolves
//! it (`TrainConfig::gan`); the training step (`gan`) runs it.

use crate::model::{BuiltNet, NetSpec, Optimizer};
use crate::noise::Noise;
use crate::objective::{GeneratorLoss, Objective};
use crate::schedule::{Schedule, Updates};
use anyhow::{Result, bail};

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

//! `TrainConfig::validate`: the options no run can use, refused in one line naming the option
//! and a value that works.

use super::*;

impl TrainConfig {
    /// Rejects options no run can use, naming the option and a value that works.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("--batch", self.batch as u64),
            ("--k", self.k as u64),
            ("--steps", self.steps),
            ("--noise-dim", self.noise_dim as u64),
            ("--log-every", self.log_every),
            ("--sample-every", self.sample_every),
            ("--checkpoint-every", self.checkpoint_every),
            ("--image-size", self.image_size as u64),
            ("--pack", self.pack as u64),
        ];
        for (name, v) in positive {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        for (name, v) in [("--lr-g", self.lr_g), ("--lr-d", self.lr_d)] {
            if !(v > 0.0 && v.is_finite()) {
                bail!("{name} must be a positive learning rate such as 2e-4, not {v}");
            }
        }
        for (name, v) in [
            ("--beta1", self.beta1),
            ("--beta2", self.beta2),
            ("--momentum", self.momentum),
            ("--ema", self.ema),
        ] {
            if !(0.0..1.0).contains(&v) {
                bail!("{name} must be in [0, 1), not {v}");
            }
        }
        if self.channels != 1 && self.channels != 3 {
            bail!(
                "--channels must be 1 (gray) or 3 (RGB), not {}",
                self.channels
            );
        }
        if self.image_size > MAX_IMAGE_SIZE {
            bail!(
                "--image-size {} is too large; use at most {MAX_IMAGE_SIZE}",
                self.image_size
            );
        }
        if self.conditional && self.pack != 1 {
            bail!(
                "--conditional judges each sample with its own class, so it cannot pack samples: \
                 pass --pack 1 (not {})",
                self.pack
            );
        }
        if !self.conditional && (self.classes != 0 || !self.class_names.is_empty()) {
            bail!(
                "classes and class-names describe a conditional run; add conditional = true or \
                 remove them"
            );
        }
        if !self.class_names.is_empty() && self.class_names.len() != self.classes {
            bail!(
                "class-names lists {} names for {} classes; list one name per class",
                self.class_names.len(),
                self.classes
            );
        }
        if self.loss == Loss::Wasserstein
            && self.clip == 0.0
            && self.gp == 0.0
            && self.sn == SnName::None
        {
            bail!(
                "--loss wasserstein needs a Lipschitz constraint on the critic, or it grows without \
                 bound: add --clip 0.01, --gp 10 or --sn d (or use --preset wgan or wgan-gp)"
            );
        }
        match self.model {
            Some(m) if !self.preset.is_objective() => bail!(
                "--model {} picks the network of an objective preset (wgan, wgan-gp, sngan, \
                 lsgan, ttur); --preset {} has its own: drop --model",
                m.name(),
                self.preset.name()
            ),
            Some(m) if !m.is_model() => bail!(
                "--model {} is not a network an objective preset can train; choose one of {}",
                m.name(),
                super::resolve::preset_names(Preset::is_model)
            ),
            _ => {}
        }
        if self.batch > 1 << 16 {
            bail!("--batch {} is too large; use at most 65536", self.batch);
        }
        self.schedule().validate()?;
        let sgd = self.opt_g == OptName::Sgd || self.opt_d == OptName::Sgd;
        if self.momentum_final.is_some() && !sgd {
            bail!(
                "--momentum-final ramps SGD's momentum, but neither --opt-g nor --opt-d is sgd;                  drop it or pass --opt-d sgd / --opt-g sgd"
            );
        }
        if self.updates == Updates::Simultaneous && self.k != 1 {
            bail!(
                "--updates simultaneous makes one D-update and one G-update from each batch; \
                 --k must be 1, not {}",
                self.k
            );
        }
        if !self.augment.is_none() && crate::data::Mixture2d::parse(&self.dataset).is_some() {
            bail!(
                "--augment transforms images, and {} holds 2-D points: drop --augment",
                self.dataset
            );
        }
        if self.limit == Some(0) {
            bail!("--limit must be at least 1 (or left out to train on the whole dataset)");
        }
        // The objective against the networks (a penalty needs a critic it can pass through),
        // before any file is written: the layer structure does not depend on the data.
        if self.phase_images == Some(0) {
            bail!("--phase-images must be at least 1");
        }
        if self.preset == Preset::Progan {
            if self.image_size != 32 && self.image_size != 64 {
                bail!(
                    "--preset progan grows to 32×32 or 64×64 images, not {0}×{0}; pass \
                     --image-size 32 or 64",
                    self.image_size
                );
            }
            if !self.batch.is_multiple_of(4) || self.pack != 1 {
                bail!(
                    "--preset progan's minibatch standard deviation groups 4 samples: --batch \
                     must be a multiple of 4 (not {}) and --pack 1",
                    self.batch
                );
            }
        }
        // (A conditional run's class count comes with its data; any count probes the layers.)
        let mut cfg = self.clone();
        if cfg.conditional && cfg.classes == 0 {
            cfg.classes = 2;
        }
        let probe = match self.architecture().image_side() {
            _ if self.preset == Preset::Progan => {
                let s = self.image_size;
                cfg.gan(s * s * self.channels, Some((self.channels, s, s)))?
            }
            Some(side) => cfg.gan(side * side, Some((1, side, side)))?,
            // (An MLP's image size comes with its data: augmentation is checked there.)
            None => {
                cfg.augment = Policy::NONE;
                cfg.gan(2, None)?
            }
        };
        probe.validate()
    }
}

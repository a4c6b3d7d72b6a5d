//! The generator and discriminator a configuration builds: the MLP presets, the convolutional
//! ones (`crate::presets`), ProGAN's growing pair, and what conditioning, spectral norm and the
//! penalties change in them.

use super::presets::Networks;
use super::*;

impl TrainConfig {
    /// The two networks for samples of `dim` values (images of `image` = (C, H, W)). Images end
    /// in the preset's squashing activation (matching `data_range`); 2D points end linear. With
    /// `--augment`, D starts with the augmentation of every image it is shown.
    pub fn networks(
        &self,
        dim: usize,
        image: Option<(usize, usize, usize)>,
    ) -> Result<(NetSpec, NetSpec)> {
        let (g, mut d) = self.unaugmented_networks(dim, image)?;
        if !self.augment.is_none() {
            let Some((c, h, w)) = image else {
                bail!("--augment transforms images; this dataset holds 2-D points: drop --augment");
            };
            let image = crate::layers::Shape::image(c, h, w);
            d.layers.insert(
                0,
                Layer::Augment {
                    image,
                    policy: self.augment,
                },
            );
        }
        Ok((g, d))
    }

    fn unaugmented_networks(
        &self,
        dim: usize,
        image: Option<(usize, usize, usize)>,
    ) -> Result<(NetSpec, NetSpec)> {
        let arch = self.architecture();
        if arch.def().networks == Networks::Progressive {
            return self.progan_networks(image);
        }
        if let Some(side) = arch.image_side() {
            let name = match self.model {
                Some(m) if self.preset.is_objective() => format!("--model {}", m.name()),
                _ => format!("--preset {}", arch.name()),
            };
            let Some((c, h, w)) = image else {
                bail!(
                    "{name} is a convolutional model for images; this dataset holds 2-D \
                     points (use --preset small)"
                );
            };
            if (h, w) != (side, side) {
                let fits = super::presets::PRESETS
                    .iter()
                    .find(|p| p.networks == Networks::Dcgan && h == w && p.side == Some(h))
                    .map(|p| p.preset.name());
                bail!(
                    "{name} makes {side}×{side} images but the data are {h}×{w}; {}",
                    match fits {
                        Some(p) => format!("use --preset {p}"),
                        None => format!("pass --image-size {side} to resize an image folder"),
                    }
                );
            }
            let width = self.width.unwrap_or(64);
            let z = self.noise_dim;
            let (g, d) = match arch.def().networks {
                Networks::Resnet32 { attention } => {
                    crate::models::resnet32::resnet32(c, z, width, self.pack, attention)?
                }
                Networks::SaganDcgan => {
                    crate::models::dcgan::sagan32_dcgan(c, z, width, self.pack)?
                }
                Networks::Dcgan => crate::models::dcgan::dcgan(side, c, z, width, self.pack)?,
                other => unreachable!("{other:?} makes no fixed side"),
            };
            let (g, d) = self.conditioned(g, d)?;
            return Ok(self.with_objective_layers(g, d));
        }
        let images = image.is_some();
        let z = self.noise_dim;
        const LRELU: Layer = Layer::Act(Activation::LeakyRelu(0.2));
        const RELU: Layer = Layer::Act(Activation::Relu);
        let networks = arch.def().networks;
        let out_act = match (images, networks) {
            (false, _) => None,
            (true, Networks::Paper) => Some(Layer::Act(Activation::Sigmoid)),
            (true, _) => Some(Layer::Act(Activation::Tanh)),
        };
        // Two hidden layers of `width` in each network; D optionally drops out after each.
        let two_hidden = |width: usize, drop: Option<Layer>| {
            let g = vec![
                Layer::Linear(width),
                RELU,
                Layer::Linear(width),
                RELU,
                Layer::Linear(dim),
            ];
            let mut d = Vec::new();
            for _ in 0..2 {
                d.extend([Layer::Linear(width), LRELU]);
                d.extend(drop.clone());
            }
            d.push(Layer::Linear(1));
            (g, d)
        };
        let (mut g, d) = match networks {
            Networks::Mlp { width, dropout } => two_hidden(width, dropout.map(Layer::Dropout)),
            Networks::Paper => (
                vec![
                    Layer::Linear(1200),
                    RELU,
                    Layer::Linear(1200),
                    RELU,
                    Layer::Linear(dim),
                ],
                vec![
                    Layer::Dropout(0.8),
                    Layer::Linear(240 * 5),
                    Layer::Maxout(5),
                    Layer::Dropout(0.5),
                    Layer::Linear(240 * 5),
                    Layer::Maxout(5),
                    Layer::Dropout(0.5),
                    Layer::Linear(1),
                ],
            ),
            other => unreachable!("{other:?}: convolutional networks return above"),
        };
        g.extend(out_act);
        let (g, d) = self.conditioned(NetSpec::flat(z, g), NetSpec::flat(dim * self.pack, d))?;
        Ok(self.with_objective_layers(g, d))
    }

    /// A conditional run's networks (`--conditional`): a generator with batch norm (the DCGAN
    /// presets) has it made class-conditional — in a residual generator the blocks' batch
    /// norms only, the one before the output layer staying plain as in SNGAN's and StudioGAN's
    /// code; any other takes a learned class embedding of K values concatenated to its noise.
    /// D's final Linear becomes a projection head (Miyato & Koyama 2018). Unconditional runs
    /// are returned as they are.
    fn conditioned(&self, mut g: NetSpec, mut d: NetSpec) -> Result<(NetSpec, NetSpec)> {
        if !self.conditional {
            return Ok((g, d));
        }
        let k = self.classes;
        if k == 0 {
            bail!(
                "a conditional run needs its class count, which comes from its data's labels; \
                 none was recorded"
            );
        }
        let residual = |l: &Layer| matches!(l, Layer::Residual { .. });
        if g.layers.iter().any(residual) {
            for l in g.layers.iter_mut().filter(|l| residual(l)) {
                *l = conditional_batch_norm(l, k);
            }
        } else if g.layers.contains(&Layer::BatchNorm) {
            for l in &mut g.layers {
                if *l == Layer::BatchNorm {
                    *l = Layer::ConditionalBatchNorm { classes: k };
                }
            }
        } else {
            g.layers
                .insert(0, Layer::ClassEmbedding { classes: k, dim: k });
        }
        match d.layers.last_mut() {
            Some(l @ Layer::Linear(1)) => *l = Layer::Projection { classes: k },
            _ => bail!("this preset's discriminator does not end in a Linear(1) to project onto"),
        }
        Ok((g, d))
    }

    /// `--preset progan`'s shape and schedule for images of `channels`.
    pub(super) fn pro_spec(&self, channels: usize) -> crate::layers::progressive::ProSpec {
        crate::layers::progressive::ProSpec {
            side: self.image_size,
            channels,
            width: self.width.unwrap_or(PROGAN_WIDTH),
            phase_images: self.phase_images.unwrap_or(PHASE_IMAGES),
            group: 4,
        }
    }

    /// The progressive pair for `--preset progan` (see `layers::progressive`).
    fn progan_networks(&self, image: Option<(usize, usize, usize)>) -> Result<(NetSpec, NetSpec)> {
        let side = self.image_size;
        let Some((c, h, w)) = image else {
            bail!(
                "--preset progan is a convolutional model for images; this dataset holds 2-D \
                 points (use --preset small)"
            );
        };
        if (h, w) != (side, side) {
            bail!(
                "--preset progan grows to {side}×{side} images but the data are {h}×{w}; use an \
                 image folder with --image-size 32 or 64"
            );
        }
        let spec = self.pro_spec(c);
        spec.validate()?;
        if self.sn != SnName::None {
            bail!(
                "--preset progan scales its weights by equalized learning rate, which spectral \
                 norm would undo; drop --sn"
            );
        }
        Ok((
            NetSpec::flat(self.noise_dim, vec![Layer::ProGenerator(spec)]),
            NetSpec {
                input: crate::layers::Shape::image(c, side, side),
                layers: vec![Layer::ProDiscriminator(spec)],
            },
        ))
    }

    /// Spectral norm in front of D's (and with `--sn both`, G's) weight layers. A critic
    /// that is spectrally normalised or gradient-penalised drops batch norm, as SN-GAN and
    /// WGAN-GP do: batch norm couples the samples of a batch, so a per-sample gradient norm
    /// is not defined through it and spectral norm already bounds the Lipschitz constant.
    fn with_objective_layers(&self, mut g: NetSpec, mut d: NetSpec) -> (NetSpec, NetSpec) {
        if self.sn != SnName::None || self.gp > 0.0 || self.r1 > 0.0 {
            d.layers.retain(|l| !matches!(l, Layer::BatchNorm));
        }
        if self.sn != SnName::None {
            d.layers = with_spectral_norm(&d.layers);
        }
        if self.sn == SnName::Both {
            g.layers = with_spectral_norm(&g.layers);
        }
        (g, d)
    }
}

/// `l` with every batch norm in it (residual paths included) conditional on `classes` classes.
fn conditional_batch_norm(l: &Layer, classes: usize) -> Layer {
    match l {
        Layer::BatchNorm => Layer::ConditionalBatchNorm { classes },
        Layer::Residual { main, skip } => Layer::Residual {
            main: main
                .iter()
                .map(|l| conditional_batch_norm(l, classes))
                .collect(),
            skip: skip
                .iter()
                .map(|l| conditional_batch_norm(l, classes))
                .collect(),
        },
        other => other.clone(),
    }
}

/// `layers` with the weight of every Linear, Conv2d, ConvTranspose2d (over its dimension 1, as
/// PyTorch), projection head and self-attention spectrally normalised.
pub fn with_spectral_norm(layers: &[Layer]) -> Vec<Layer> {
    let mut out = Vec::with_capacity(layers.len() * 2);
    for l in layers {
        if matches!(
            l,
            Layer::Linear(_)
                | Layer::Conv2d { .. }
                | Layer::ConvTranspose2d { .. }
                | Layer::Projection { .. }
                | Layer::SelfAttention
        ) {
            out.push(Layer::SpectralNorm);
        }
        out.push(match l {
            Layer::Residual { main, skip } => Layer::Residual {
                main: with_spectral_norm(main),
                skip: with_spectral_norm(skip),
            },
            _ => l.clone(),
        });
    }
    out
}

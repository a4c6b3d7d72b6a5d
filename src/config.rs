//! Every training option in one serializable struct. A run's configuration is resolved as
//! preset defaults ← `--config FILE` ← command-line options, and saved as `config.toml` in the
//! run directory so the run can be repeated.

use crate::backend::Activation;
use crate::data::Background;
use crate::gan::{GanConfig, GeneratorLoss, MomentumRamp, Noise, Schedule, Updates};
use crate::init::{OutputBias, WeightInit};
use crate::model::{Layer, NetSpec, Optimizer};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// G 100→1024→1024→out (ReLU, tanh), D →1024→1024→1 (LeakyReLU 0.2), Adam 2e-4, β1 0.5.
    Mlp,
    /// `mlp` with dropout (keep 0.7) after each of D's hidden layers, which keeps D from
    /// memorising a small dataset and G from collapsing onto a few digits.
    MlpDropout,
    /// The paper's MNIST model: G 100→1200→1200→out (ReLU, sigmoid); D maxout 240×5 → 240×5 → 1
    /// with dropout (keep 0.8 on the input, 0.5 on hidden layers); SGD with momentum.
    Paper,
    /// A small MLP for the 2D point sets.
    Small,
    /// DCGAN for 28×28 images (1 or 3 channels): G Linear → (2w,7,7) → ConvT 2w→w→C with batch
    /// norm and ReLU, tanh; D Conv C→w→2w with LeakyReLU(0.2) → Linear; N(0, 0.02) weights.
    Dcgan,
    /// DCGAN for 32×32 images: G (4w,4,4) → ConvT 4w→2w→w→C; D Conv C→w→2w→4w.
    Dcgan32,
    /// DCGAN for 64×64 images: G (8w,4,4) → ConvT 8w→4w→2w→w→C; D Conv C→w→…→8w.
    Dcgan64,
}

impl Preset {
    /// The side of the images a convolutional preset makes.
    pub fn image_side(self) -> Option<usize> {
        match self {
            Preset::Dcgan => Some(28),
            Preset::Dcgan32 => Some(32),
            Preset::Dcgan64 => Some(64),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum GLossName {
    NonSaturating,
    Minimax,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OptName {
    Adam,
    Sgd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseName {
    /// U(−1, 1) per dimension.
    Uniform,
    /// N(0, 1) per dimension.
    Normal,
    /// U(−√3, √3) per dimension (unit variance): the paper code's `uniform`.
    UniformSqrt3,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum UpdatesName {
    /// Algorithm 1: k D-updates, then a G-update on fresh noise through the updated D.
    #[default]
    Alternating,
    /// The paper's code: D's and G's gradients from the same batch and D outputs, both taken
    /// before either network is updated.
    Simultaneous,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BackendName {
    /// A hardware GPU when there is one, else the CPU path.
    Auto,
    /// Any wgpu adapter, software ones (lavapipe) included.
    Gpu,
    Cpu,
}

/// The resolved options of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TrainConfig {
    pub preset: Preset,
    /// `mnist` (embedded), `ring8`, `grid25`, or a path to IDX files or an image folder.
    pub dataset: String,
    /// Channels an image folder is converted to (1 gray, 3 RGB).
    pub channels: usize,
    /// Side an image folder is resized and centre-cropped to.
    pub image_size: usize,
    /// What an image folder's transparent pixels are composited onto. (Absent in configs written
    /// before it existed: those dropped alpha; white is the default now.)
    #[serde(default)]
    pub background: Background,
    /// Train class-conditionally: labels become required (IDX label file, class subfolders).
    /// Not on the command line until the conditional model exists; only written when set.
    #[serde(default, skip_serializing_if = "is_false")]
    pub conditional: bool,
    /// Training iterations (each k D-steps and one G-step).
    pub steps: u64,
    pub batch: usize,
    /// D-steps per G-step.
    pub k: usize,
    /// Alternating (Algorithm 1) or simultaneous (the paper's code) updates. (Absent in configs
    /// written before it existed: those alternated.)
    #[serde(default)]
    pub updates: UpdatesName,
    pub g_loss: GLossName,
    pub opt_g: OptName,
    pub opt_d: OptName,
    pub lr_g: f32,
    pub lr_d: f32,
    /// Adam's β1 (both networks).
    pub beta1: f32,
    /// Adam's β2 (both networks).
    pub beta2: f32,
    /// SGD's momentum (both networks).
    pub momentum: f32,
    pub noise: NoiseName,
    pub noise_dim: usize,
    /// How G's and D's parameters start (absent in configs written before it existed: those
    /// used each layer's default).
    #[serde(default)]
    pub init_g: WeightInit,
    #[serde(default)]
    pub init_d: WeightInit,
    /// G's output bias: as `init-g` draws it, or from the training data's pixel marginals.
    #[serde(default)]
    pub g_output_bias: OutputBias,
    /// The learning rate is divided by this after every update (1 = constant) ...
    #[serde(default = "one_f64")]
    pub lr_decay: f64,
    /// ... and never falls below this.
    #[serde(default)]
    pub lr_min: f32,
    /// SGD's momentum rises linearly from `momentum` at epoch `momentum-start` to this at epoch
    /// `momentum-saturate`; unset keeps it constant. Only written when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum_final: Option<f32>,
    #[serde(default = "one_u64")]
    pub momentum_start: u64,
    #[serde(default = "one_u64")]
    pub momentum_saturate: u64,
    /// Train on the first N images of the dataset only. Only written when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Decay of the moving average of G's weights that samples come from; 0 samples the raw
    /// weights. (Absent in configs written before it existed: those sampled the raw weights.)
    #[serde(default)]
    pub ema: f32,
    /// PacGAN packing: D judges this many samples at once (1 = a plain GAN).
    #[serde(default = "one")]
    pub pack: usize,
    pub seed: u64,
    pub log_every: u64,
    pub sample_every: u64,
    pub checkpoint_every: u64,
    pub backend: BackendName,
    /// Adapter index, backend or name substring (see `duel devices`); empty = the best one.
    pub adapter: String,
    /// The convolutional presets' width: G's last hidden and D's first channel count (64 when
    /// unset). Only written when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
}

fn one() -> usize {
    1
}

fn one_u64() -> u64 {
    1
}

fn one_f64() -> f64 {
    1.0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The largest `--image-size`: beyond it a folder's images take gigabytes each to decode and
/// resize, and no model duel builds could train on them.
pub const MAX_IMAGE_SIZE: usize = 1024;

impl TrainConfig {
    /// The defaults of `preset`, tuned so the plain command gives good results.
    pub fn preset(preset: Preset, dataset: &str) -> Self {
        let base = TrainConfig {
            preset,
            dataset: dataset.to_string(),
            channels: 1,
            image_size: 28,
            background: Background::White,
            conditional: false,
            steps: 6000,
            batch: 64,
            k: 1,
            updates: UpdatesName::Alternating,
            g_loss: GLossName::NonSaturating,
            opt_g: OptName::Adam,
            opt_d: OptName::Adam,
            lr_g: 2e-4,
            lr_d: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            momentum: 0.5,
            noise: NoiseName::Normal,
            noise_dim: 100,
            init_g: WeightInit::Default,
            init_d: WeightInit::Default,
            g_output_bias: OutputBias::Init,
            lr_decay: 1.0,
            lr_min: 0.0,
            momentum_final: None,
            momentum_start: 1,
            momentum_saturate: 1,
            limit: None,
            ema: 0.999,
            pack: 1,
            seed: 1,
            log_every: 100,
            sample_every: 1000,
            checkpoint_every: 1000,
            width: None,
            backend: BackendName::Auto,
            adapter: String::new(),
        };
        match preset {
            Preset::Mlp | Preset::MlpDropout => base,
            // The released configuration of the paper's MNIST experiment (goodfeli/adversarial,
            // mnist.yaml, for pylearn2); README "The paper's MNIST experiment" lists each setting.
            Preset::Paper => TrainConfig {
                batch: 100,
                updates: UpdatesName::Simultaneous,
                opt_g: OptName::Sgd,
                opt_d: OptName::Sgd,
                lr_g: 0.1,
                // 0.1 on the original's D objective ½(BCE_real + BCE_fake), which is half of
                // duel's D loss (BCE_real + BCE_fake): the same step.
                lr_d: 0.05,
                momentum: 0.5,
                noise: NoiseName::UniformSqrt3,
                init_g: WeightInit::Uniform(0.05),
                init_d: WeightInit::Uniform(0.005),
                g_output_bias: OutputBias::Marginals,
                lr_decay: 1.000004,
                lr_min: 1e-6,
                momentum_final: Some(0.7),
                momentum_start: 1,
                momentum_saturate: 250,
                ema: 0.0,
                ..base
            },
            // Tuned on ring8 and grid25: packing pairs (PacGAN2) finds all 25 grid modes where a
            // plain GAN finds about 18, and the weight average sharpens samples onto the modes.
            Preset::Small => TrainConfig {
                steps: 10_000,
                batch: 512,
                lr_g: 1e-3,
                lr_d: 1e-3,
                noise_dim: 8,
                pack: 2,
                log_every: 500,
                sample_every: 1000,
                checkpoint_every: 1000,
                ..base
            },
            // DCGAN's rules: Adam 2e-4, β1 0.5, weights N(0, 0.02), batch 64.
            Preset::Dcgan | Preset::Dcgan32 | Preset::Dcgan64 => TrainConfig {
                image_size: preset.image_side().expect("a convolutional preset"),
                init_g: WeightInit::Normal(0.02),
                init_d: WeightInit::Normal(0.02),
                ..base
            },
        }
    }

    /// The preset a dataset gets when none is named.
    pub fn default_preset(dataset: &str) -> Preset {
        if crate::data::Mixture2d::parse(dataset).is_some() {
            Preset::Small
        } else {
            Preset::Mlp
        }
    }

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
        if self.conditional {
            bail!(
                "conditional = true: class-conditional training is not supported yet; remove \
                 the key from the config"
            );
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
        if self.updates == UpdatesName::Simultaneous && self.k != 1 {
            bail!(
                "--updates simultaneous makes one D-update and one G-update from each batch; \
                 --k must be 1, not {}",
                self.k
            );
        }
        if self.limit == Some(0) {
            bail!("--limit must be at least 1 (or left out to train on the whole dataset)");
        }
        Ok(())
    }

    /// The learning-rate decay and momentum ramp of both optimizers.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            lr_decay: self.lr_decay,
            lr_min: self.lr_min,
            momentum: self.momentum_final.map(|final_momentum| MomentumRamp {
                final_momentum,
                start: self.momentum_start,
                saturate: self.momentum_saturate,
            }),
        }
    }

    fn optimizer(&self, which: OptName, lr: f32) -> Optimizer {
        match which {
            OptName::Adam => Optimizer::adam(lr, self.beta1, self.beta2),
            OptName::Sgd => Optimizer::Sgd {
                lr,
                momentum: self.momentum,
            },
        }
    }

    /// The two networks for samples of `dim` values (images of `image` = (C, H, W)). Images end
    /// in the preset's squashing activation (matching `data_range`); 2D points end linear.
    pub fn networks(
        &self,
        dim: usize,
        image: Option<(usize, usize, usize)>,
    ) -> Result<(NetSpec, NetSpec)> {
        if let Some(side) = self.preset.image_side() {
            let name = toml::Value::try_from(self.preset).expect("a preset serializes");
            let Some((c, h, w)) = image else {
                bail!(
                    "--preset {name} is a convolutional model for images; this dataset holds 2-D \
                     points (use --preset small)"
                );
            };
            if (h, w) != (side, side) {
                let fits = [Preset::Dcgan, Preset::Dcgan32, Preset::Dcgan64]
                    .into_iter()
                    .find(|p| p.image_side() == Some(h).filter(|_| h == w))
                    .map(|p| toml::Value::try_from(p).expect("a preset serializes"));
                bail!(
                    "--preset {name} makes {side}×{side} images but the data are {h}×{w}; {}",
                    match fits {
                        Some(p) => format!("use --preset {p}"),
                        None => format!("pass --image-size {side} to resize an image folder"),
                    }
                );
            }
            let width = self.width.unwrap_or(64);
            return crate::presets::dcgan(side, c, self.noise_dim, width, self.pack);
        }
        let images = image.is_some();
        let z = self.noise_dim;
        let lrelu = Layer::Act(Activation::LeakyRelu(0.2));
        let relu = Layer::Act(Activation::Relu);
        let out_act = match (images, self.preset) {
            (false, _) => None,
            (true, Preset::Paper) => Some(Layer::Act(Activation::Sigmoid)),
            (true, _) => Some(Layer::Act(Activation::Tanh)),
        };
        // Two hidden layers of `width` in each network; D optionally drops out after each.
        let two_hidden = |width: usize, drop: Option<Layer>| {
            let g = vec![
                Layer::Linear(width),
                relu,
                Layer::Linear(width),
                relu,
                Layer::Linear(dim),
            ];
            let mut d = Vec::new();
            for _ in 0..2 {
                d.extend([Layer::Linear(width), lrelu]);
                d.extend(drop);
            }
            d.push(Layer::Linear(1));
            (g, d)
        };
        let (mut g, d) = match self.preset {
            Preset::Mlp => two_hidden(1024, None),
            Preset::MlpDropout => two_hidden(1024, Some(Layer::Dropout(0.7))),
            Preset::Small => two_hidden(128, None),
            Preset::Dcgan | Preset::Dcgan32 | Preset::Dcgan64 => {
                unreachable!("convolutional presets return above")
            }
            Preset::Paper => (
                vec![
                    Layer::Linear(1200),
                    relu,
                    Layer::Linear(1200),
                    relu,
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
        };
        g.extend(out_act);
        Ok((NetSpec::flat(z, g), NetSpec::flat(dim * self.pack, d)))
    }

    /// The value range G's image outputs (and the real images fed to D) live in.
    pub fn data_range(&self) -> (f32, f32) {
        match self.preset {
            Preset::Paper => (0.0, 1.0),
            _ => (-1.0, 1.0),
        }
    }

    pub fn gan(&self, dim: usize, image: Option<(usize, usize, usize)>) -> Result<GanConfig> {
        let (g, d) = self.networks(dim, image)?;
        Ok(GanConfig {
            g,
            d,
            batch: self.batch,
            k: self.k,
            g_loss: match self.g_loss {
                GLossName::NonSaturating => GeneratorLoss::NonSaturating,
                GLossName::Minimax => GeneratorLoss::Minimax,
            },
            noise: match self.noise {
                NoiseName::Uniform => Noise::Uniform,
                NoiseName::Normal => Noise::Normal,
                NoiseName::UniformSqrt3 => Noise::UniformUnitVariance,
            },
            opt_g: self.optimizer(self.opt_g, self.lr_g),
            opt_d: self.optimizer(self.opt_d, self.lr_d),
            schedule: self.schedule(),
            updates: match self.updates {
                UpdatesName::Alternating => Updates::Alternating,
                UpdatesName::Simultaneous => Updates::Simultaneous,
            },
            seed: self.seed,
            ema: self.ema,
            pack: self.pack,
        })
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a config always serializes")
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).with_context(|| format!("{origin}: not a duel training config"))
    }

    /// Resolves defaults ← `file` ← `cli`, where both are partial tables of the same keys.
    pub fn resolve(file: Option<(&str, &str)>, cli: toml::Table) -> Result<Self> {
        let mut layered = toml::Table::new();
        if let Some((text, origin)) = file {
            let table: toml::Table =
                toml::from_str(text).with_context(|| format!("{origin}: not valid TOML"))?;
            layered.extend(table);
        }
        layered.extend(cli);
        let dataset = match layered.get("dataset") {
            Some(toml::Value::String(s)) => s.clone(),
            Some(other) => bail!("dataset must be a string, not {other}"),
            None => "mnist".to_string(),
        };
        let preset = match layered.get("preset") {
            Some(v) => Preset::deserialize(v.clone()).map_err(|_| {
                anyhow::anyhow!(
                    "unknown preset {v}; choose one of mlp, mlp-dropout, paper, small, dcgan, \
                     dcgan32, dcgan64"
                )
            })?,
            None => Self::default_preset(&dataset),
        };
        let mut table = toml::Table::try_from(Self::preset(preset, &dataset))
            .expect("a config always serializes");
        table.extend(layered);
        let origin = file.map_or("the command line", |(_, o)| o);
        let cfg: TrainConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("{origin}: {}", e.message()))?;
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_overrides_file_overrides_preset() {
        let file = "preset = \"paper\"\nbatch = 32\nlr-d = 0.05\n";
        let mut cli = toml::Table::new();
        cli.insert("batch".into(), toml::Value::Integer(16));
        let cfg = TrainConfig::resolve(Some((file, "run.toml")), cli).unwrap();
        assert_eq!(cfg.preset, Preset::Paper);
        assert_eq!(cfg.batch, 16);
        assert_eq!(cfg.lr_d, 0.05);
        assert_eq!(
            cfg.opt_g,
            OptName::Sgd,
            "the paper preset's default survives"
        );
        let again = TrainConfig::from_toml(&cfg.to_toml(), "saved").unwrap();
        assert_eq!(again, cfg);
    }

    #[test]
    fn bad_options_are_named() {
        let err = |file: &str| {
            TrainConfig::resolve(Some((file, "f.toml")), toml::Table::new())
                .unwrap_err()
                .to_string()
        };
        assert!(err("preset = \"huge\"").contains("unknown preset"));
        assert!(err("batch = 0").contains("--batch must be at least 1"));
        assert!(err("lr-g = -1.0").contains("--lr-g"));
        assert!(err("bogus = 1").contains("bogus"));
        assert!(err("batch = \"x\"").contains("f.toml"));
        assert!(
            err("image-size = 100000")
                .contains("--image-size 100000 is too large; use at most 1024")
        );
        assert!(err("conditional = true").contains("not supported yet"));
        assert!(err("background = \"grey\"").contains("f.toml"));
    }

    #[test]
    fn configs_written_before_background_and_conditional_still_load() {
        let mut cfg = TrainConfig::preset(Preset::Mlp, "mnist");
        let mut table = toml::Table::try_from(&cfg).unwrap();
        assert!(
            !table.contains_key("conditional"),
            "unset, it is not written"
        );
        table.remove("background");
        let old = TrainConfig::from_toml(&toml::to_string(&table).unwrap(), "old").unwrap();
        assert_eq!(old.background, Background::White);
        assert!(!old.conditional);
        cfg.background = Background::Black;
        cfg.conditional = true;
        let again = TrainConfig::from_toml(&cfg.to_toml(), "saved").unwrap();
        assert_eq!(again, cfg);
    }

    #[test]
    fn two_d_sets_default_to_the_small_preset() {
        let mut cli = toml::Table::new();
        cli.insert("dataset".into(), toml::Value::String("ring8".into()));
        let cfg = TrainConfig::resolve(None, cli).unwrap();
        assert_eq!(cfg.preset, Preset::Small);
        let gan = cfg.gan(2, None).unwrap();
        assert_eq!(gan.g.output(), 2);
        gan.validate().unwrap();
    }
}

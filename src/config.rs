//! Every training option in one serializable struct. A run's configuration is resolved as
//! preset defaults ← `--config FILE` ← command-line options, and saved as `config.toml` in the
//! run directory so the run can be repeated.

use crate::backend::Activation;
use crate::data::Background;
use crate::gan::{
    GanConfig, GeneratorLoss, Loss, MomentumRamp, Noise, Objective, Schedule, Updates,
};
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
    /// WGAN (Arjovsky et al. 2017): Wasserstein loss, D's weights clipped to ±0.01, RMSProp 5e-5,
    /// 5 critic updates per G-update. The mlp model (small on the 2D sets).
    Wgan,
    /// WGAN-GP (Gulrajani et al. 2017): Wasserstein loss with gradient penalty λ = 10, Adam 1e-4
    /// (β1 0, β2 0.9), 5 critic updates per G-update.
    WganGp,
    /// SN-GAN (Miyato et al. 2018): hinge loss, spectral norm on every layer of D, Adam 2e-4
    /// (β1 0, β2 0.9), 5 D-updates per G-update.
    Sngan,
    /// LSGAN (Mao et al. 2017): least-squares loss (a = 0, b = c = 1), Adam 2e-4 (β1 0.5).
    Lsgan,
    /// The two time-scale update rule (Heusel et al. 2017) as SAGAN and BigGAN use it: D learns
    /// 4× faster than G (Adam 4e-4 vs 1e-4, β1 0, β2 0.9), one D-update per G-update.
    Ttur,
    /// DCGAN for 28×28 images (1 or 3 channels): G Linear → (2w,7,7) → ConvT 2w→w→C with batch
    /// norm and ReLU, tanh; D Conv C→w→2w with LeakyReLU(0.2) → Linear; N(0, 0.02) weights.
    Dcgan,
    /// DCGAN for 32×32 images: G (4w,4,4) → ConvT 4w→2w→w→C; D Conv C→w→2w→4w.
    Dcgan32,
    /// DCGAN for 64×64 images: G (8w,4,4) → ConvT 8w→4w→2w→w→C; D Conv C→w→…→8w.
    Dcgan64,
    /// Progressive growing (Karras et al. 2018) to --image-size 32 or 64: G and D grow from 4×4,
    /// fading each doubling in; pixel norm, minibatch std, equalized learning rate, WGAN-GP.
    Progan,
    /// SAGAN (Zhang et al. 2019) for 32×32 images: DCGAN-like G (upsample + 3×3 conv) and D with
    /// self-attention at 16×16, spectral norm in G and D, hinge loss, TTUR (Adam G 1e-4, D 4e-4,
    /// β1 0, β2 0.9), z of 128.
    Sagan32,
}

impl Preset {
    /// The side of the images a convolutional preset makes.
    pub fn image_side(self) -> Option<usize> {
        match self {
            Preset::Dcgan => Some(28),
            Preset::Dcgan32 => Some(32),
            Preset::Dcgan64 => Some(64),
            Preset::Sagan32 => Some(32),
            _ => None,
        }
    }

    /// A preset that sets the objective and optimizers and builds the mlp model on images and
    /// the small one on the 2D sets.
    pub fn is_objective(self) -> bool {
        matches!(
            self,
            Preset::Wgan | Preset::WganGp | Preset::Sngan | Preset::Lsgan | Preset::Ttur
        )
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LossName {
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SnName {
    /// No spectral normalization
    #[default]
    None,
    /// Every weight layer of D (SN-GAN)
    D,
    /// Every weight layer of G and D (SAGAN, BigGAN)
    Both,
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
    /// RMSProp (α 0.99, ε 1e-8, no momentum), the WGAN paper's optimizer
    Rmsprop,
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
    /// Train class-conditionally (`--conditional`): labels become required (IDX label file,
    /// class subfolders); G takes a class embedding, D is a projection discriminator. Only
    /// written when set.
    #[serde(default, skip_serializing_if = "is_false")]
    pub conditional: bool,
    /// A conditional run's class count, found in its data (0 until the data are loaded).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub classes: usize,
    /// A conditional run's class names when they are not just 0..K−1 (an image folder's class
    /// subfolders, sorted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_names: Vec<String>,
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
    /// The losses of D and G. (Configs written before it existed used the original.)
    #[serde(default)]
    pub loss: LossName,
    /// WGAN-GP's penalty weight λ; 0 = none.
    #[serde(default)]
    pub gp: f32,
    /// R1's penalty weight γ; 0 = none.
    #[serde(default)]
    pub r1: f32,
    /// Weight clipping of D to [−clip, clip] after every update; 0 = none.
    #[serde(default)]
    pub clip: f32,
    /// Spectral normalization of the weights of D, or of G and D.
    #[serde(default)]
    pub sn: SnName,
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
    /// Every N steps, FID (1×28×28 runs) or Stacked MNIST's modes and KL measured with the
    /// feature network into metrics.csv; 0 = never. Only written when set.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub eval_every: u64,
    /// Samples of G each of those measurements takes [default: 2,000 for FID, 10,000 for
    /// modes]. Only written when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_samples: Option<usize>,
    /// Progressive growing: images per fade-in and per stabilisation phase (40,000 when unset).
    /// Only written when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_images: Option<u64>,
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `--preset progan`'s images per phase when `--phase-images` is not given.
pub const PHASE_IMAGES: u64 = 40_000;
/// `--preset progan`'s width (features up to 16×16) when `--width` is not given.
pub const PROGAN_WIDTH: usize = 128;

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
            loss: LossName::Original,
            gp: 0.0,
            r1: 0.0,
            clip: 0.0,
            sn: SnName::None,
            seed: 1,
            log_every: 100,
            sample_every: 1000,
            checkpoint_every: 1000,
            width: None,
            eval_every: 0,
            eval_samples: None,
            classes: 0,
            class_names: Vec::new(),
            phase_images: None,
            backend: BackendName::Auto,
            adapter: String::new(),
        };
        // The objective presets train the small model on the 2D sets, with its schedule.
        let points = crate::data::Mixture2d::parse(dataset).is_some();
        let model = if points && preset.is_objective() {
            Self::preset(Preset::Small, dataset)
        } else {
            base.clone()
        };
        let model = TrainConfig { preset, ..model };
        let cfg = match preset {
            Preset::Mlp | Preset::MlpDropout => base,
            // Arjovsky et al., Algorithm 1: α = 5e-5, c = 0.01, n_critic = 5, RMSProp.
            Preset::Wgan => TrainConfig {
                loss: LossName::Wasserstein,
                clip: 0.01,
                k: 5,
                opt_g: OptName::Rmsprop,
                opt_d: OptName::Rmsprop,
                lr_g: 5e-5,
                lr_d: 5e-5,
                ..model
            },
            // Gulrajani et al., Algorithm 1: λ = 10, n_critic = 5, Adam α = 1e-4, β = (0, 0.9).
            Preset::WganGp => TrainConfig {
                loss: LossName::Wasserstein,
                gp: 10.0,
                k: 5,
                lr_g: 1e-4,
                lr_d: 1e-4,
                beta1: 0.0,
                beta2: 0.9,
                ..model
            },
            // Miyato et al.'s hinge-loss setting: α = 2e-4, β = (0, 0.9), n_dis = 5.
            Preset::Sngan => TrainConfig {
                loss: LossName::Hinge,
                sn: SnName::D,
                k: 5,
                lr_g: 2e-4,
                lr_d: 2e-4,
                beta1: 0.0,
                beta2: 0.9,
                ..model
            },
            // Mao et al.: Adam α = 2e-4, β1 = 0.5 (the model's own rates on the 2D sets).
            Preset::Lsgan => TrainConfig {
                loss: LossName::LeastSquares,
                ..model
            },
            // Heusel et al.'s two time scales as in SAGAN: D 4e-4, G 1e-4, β = (0, 0.9).
            Preset::Ttur => TrainConfig {
                lr_g: 1e-4,
                lr_d: 4e-4,
                beta1: 0.0,
                beta2: 0.9,
                ..model
            },
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
            // Karras et al.: WGAN-GP (λ 10, one critic step per G step), Adam 1e-3 with
            // β = (0, 0.99), equalized learning rate, G's moving average; RGB at 64×64.
            Preset::Progan => TrainConfig {
                channels: 3,
                image_size: 64,
                loss: LossName::Wasserstein,
                gp: 10.0,
                k: 1,
                lr_g: 1e-3,
                lr_d: 1e-3,
                beta1: 0.0,
                beta2: 0.99,
                noise_dim: 128,
                ..base
            },
            // SAGAN's settings: hinge loss, spectral norm in G and D, TTUR with β = (0, 0.9).
            Preset::Sagan32 => TrainConfig {
                image_size: 32,
                loss: LossName::Hinge,
                sn: SnName::Both,
                lr_g: 1e-4,
                lr_d: 4e-4,
                beta1: 0.0,
                beta2: 0.9,
                noise_dim: 128,
                ..base
            },
        };
        if !(points && preset.is_objective()) {
            return cfg;
        }
        // The papers' rates are for 10⁵ iterations (Gulrajani et al.'s toy runs: 100k at 1e-4,
        // β = (0.5, 0.9)); the small model trains 10k, so on the 2D sets the objective presets
        // train faster. Measured on ring8 and grid25 (README): WGAN-GP at the paper's 1e-4 and
        // β1 0 left G a diffuse square after 10k steps on grid25 (23/25 modes), at 1e-3 and β1
        // 0.5 it found all 25; SN-GAN at 2e-4 found 23/25 there, at 1e-3 and β1 0.5 it lost a
        // mode of ring8, at 5e-4 (β1 0 kept) it found every mode of both.
        match preset {
            Preset::Wgan => TrainConfig {
                lr_g: 5e-4,
                lr_d: 5e-4,
                ..cfg
            },
            Preset::Ttur => TrainConfig {
                lr_g: 2.5e-4,
                lr_d: 1e-3,
                ..cfg
            },
            Preset::Sngan => TrainConfig {
                lr_g: 5e-4,
                lr_d: 5e-4,
                ..cfg
            },
            _ => TrainConfig {
                lr_g: 1e-3,
                lr_d: 1e-3,
                beta1: 0.5,
                ..cfg
            },
        }
    }

    /// The preset a dataset gets when none is named.
    /// The preset a run gets when it names none: the small MLP on the 2D sets, and on images
    /// the DCGAN that fits their side (`--image-size`, 28 for the digits and IDX files) — it
    /// draws every digit class in even proportions where the MLP leans on 1s (README, Results
    /// on MNIST) — or the MLP for a side no DCGAN preset makes.
    pub fn default_preset(dataset: &str, image_size: Option<i64>) -> Preset {
        if crate::data::Mixture2d::parse(dataset).is_some() {
            return Preset::Small;
        }
        match image_size {
            None | Some(28) => Preset::Dcgan,
            Some(32) => Preset::Dcgan32,
            Some(64) => Preset::Dcgan64,
            Some(_) => Preset::Mlp,
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
        if self.loss == LossName::Wasserstein
            && self.clip == 0.0
            && self.gp == 0.0
            && self.sn == SnName::None
        {
            bail!(
                "--loss wasserstein needs a Lipschitz constraint on the critic, or it grows without \
                 bound: add --clip 0.01, --gp 10 or --sn d (or use --preset wgan or wgan-gp)"
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
        let probe = match self.preset.image_side() {
            _ if self.preset == Preset::Progan => {
                let s = self.image_size;
                cfg.gan(s * s * self.channels, Some((self.channels, s, s)))?
            }
            Some(side) => cfg.gan(side * side, Some((1, side, side)))?,
            None => cfg.gan(2, None)?,
        };
        probe.validate()
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
            OptName::Rmsprop => Optimizer::rmsprop(lr),
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
        if self.preset == Preset::Progan {
            return self.progan_networks(image);
        }
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
            let (g, d) = match self.preset {
                Preset::Sagan32 => crate::presets::sagan32(c, self.noise_dim, width, self.pack)?,
                _ => crate::presets::dcgan(side, c, self.noise_dim, width, self.pack)?,
            };
            let (g, d) = self.conditioned(g, d)?;
            return Ok(self.with_objective_layers(g, d));
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
        let points_model = if images { 1024 } else { 128 };
        let (mut g, d) = match self.preset {
            p if p.is_objective() => two_hidden(points_model, None),
            Preset::Mlp => two_hidden(1024, None),
            Preset::MlpDropout => two_hidden(1024, Some(Layer::Dropout(0.7))),
            Preset::Small => two_hidden(128, None),
            Preset::Dcgan | Preset::Dcgan32 | Preset::Dcgan64 | Preset::Progan => {
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
            _ => unreachable!("every preset has a model"),
        };
        g.extend(out_act);
        let (g, d) = self.conditioned(NetSpec::flat(z, g), NetSpec::flat(dim * self.pack, d))?;
        Ok(self.with_objective_layers(g, d))
    }

    /// A conditional run's networks (`--conditional`): a generator with batch norm (the DCGAN
    /// presets) has it made class-conditional; any other takes a learned class embedding of K
    /// values concatenated to its noise. D's final Linear becomes a projection head (Miyato &
    /// Koyama 2018). Unconditional runs are returned as they are.
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
        if g.layers.contains(&Layer::BatchNorm) {
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
        let spec = crate::layers::progressive::ProSpec {
            side,
            channels: c,
            width: self.width.unwrap_or(PROGAN_WIDTH),
            phase_images: self.phase_images.unwrap_or(PHASE_IMAGES),
            group: 4,
        };
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
            objective: Objective {
                loss: match self.loss {
                    LossName::Original => Loss::Original,
                    LossName::Wasserstein => Loss::Wasserstein,
                    LossName::Hinge => Loss::Hinge,
                    LossName::LeastSquares => Loss::LeastSquares,
                },
                gp: self.gp,
                r1: self.r1,
                clip: self.clip,
            },
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
                     dcgan32, dcgan64, sagan32, progan, wgan, wgan-gp, sngan, lsgan, ttur"
                )
            })?,
            None => Self::default_preset(
                &dataset,
                layered.get("image-size").and_then(toml::Value::as_integer),
            ),
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

/// `layers` with every Linear's and Conv2d's weight spectrally normalised (a transposed
/// convolution's is not: PyTorch normalises it over its dimension 1, a layout the helper does not
/// view yet).
pub fn with_spectral_norm(layers: &[Layer]) -> Vec<Layer> {
    let mut out = Vec::with_capacity(layers.len() * 2);
    for &l in layers {
        if matches!(
            l,
            Layer::Linear(_)
                | Layer::Conv2d { .. }
                | Layer::Projection { .. }
                | Layer::SelfAttention
        ) {
            out.push(Layer::SpectralNorm);
        }
        out.push(l);
    }
    out
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
        assert!(
            err("conditional = true\npack = 2")
                .contains("--conditional judges each sample with its own class")
        );
        assert!(err("classes = 3").contains("add conditional = true"));
        assert!(
            err("conditional = true\nclasses = 2\nclass-names = [\"a\"]")
                .contains("class-names lists 1 names for 2 classes")
        );
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
        cfg.classes = 2;
        cfg.class_names = vec!["ant".into(), "zebra".into()];
        let again = TrainConfig::from_toml(&cfg.to_toml(), "saved").unwrap();
        assert_eq!(again, cfg);
        // A conditional run's networks: the MLP G concatenates a class embedding, D projects.
        let gan = cfg.gan(784, Some((1, 28, 28))).unwrap();
        assert_eq!(
            gan.g.layers[0],
            Layer::ClassEmbedding { classes: 2, dim: 2 }
        );
        assert_eq!(gan.d.layers.last(), Some(&Layer::Projection { classes: 2 }));
        // The DCGAN G's batch norms become conditional.
        cfg.preset = Preset::Dcgan;
        let gan = cfg.gan(784, Some((1, 28, 28))).unwrap();
        assert!(!gan.g.layers.contains(&Layer::BatchNorm));
        assert_eq!(
            gan.g
                .layers
                .iter()
                .filter(|l| **l == Layer::ConditionalBatchNorm { classes: 2 })
                .count(),
            2
        );
        assert_eq!(gan.classes(), Some(2));
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

    #[test]
    fn configs_written_before_the_objectives_load_with_the_original_loss() {
        // A saved config of the version before issue 11: none of loss, gp, r1, clip, sn.
        let mut cfg = TrainConfig::preset(Preset::Mlp, "mnist");
        let mut table = toml::Table::try_from(&cfg).unwrap();
        for k in ["loss", "gp", "r1", "clip", "sn"] {
            assert!(table.remove(k).is_some(), "{k} is not saved");
        }
        let old = TrainConfig::from_toml(&toml::to_string(&table).unwrap(), "old").unwrap();
        cfg.loss = LossName::Original;
        assert_eq!(old, cfg);
        assert_eq!(
            old.gan(784, Some((1, 28, 28))).unwrap().objective,
            Objective::default()
        );
    }

    #[test]
    fn objective_presets_pick_the_model_by_dataset_and_set_their_papers_options() {
        let resolve = |preset: &str, dataset: &str| {
            let mut cli = toml::Table::new();
            cli.insert("preset".into(), toml::Value::String(preset.into()));
            cli.insert("dataset".into(), toml::Value::String(dataset.into()));
            TrainConfig::resolve(None, cli).unwrap()
        };
        let gp = resolve("wgan-gp", "mnist");
        assert_eq!(
            (gp.beta1, gp.beta2, gp.lr_d),
            (0.0, 0.9, 1e-4),
            "the paper's"
        );
        let gp = resolve("wgan-gp", "ring8");
        assert_eq!((gp.loss, gp.gp, gp.k), (LossName::Wasserstein, 10.0, 5));
        assert_eq!(
            (gp.beta1, gp.beta2, gp.lr_d),
            (0.5, 0.9, 1e-3),
            "the 2D sets' rate"
        );
        let gan = gp.gan(2, None).unwrap();
        assert_eq!(
            gan.d.layers[0],
            Layer::Linear(128),
            "the small model on 2D sets"
        );
        assert_eq!(gan.objective.penalty().unwrap().1, 10.0);
        let sn = resolve("sngan", "mnist")
            .gan(784, Some((1, 28, 28)))
            .unwrap();
        assert_eq!(sn.d.layers[0], Layer::SpectralNorm);
        assert_eq!(sn.d.layers[1], Layer::Linear(1024));
        assert!(!sn.g.layers.contains(&Layer::SpectralNorm));
        assert!(
            sn.d.describe().contains("spectral norm"),
            "{}",
            sn.d.describe()
        );
        let wgan = resolve("wgan", "mnist");
        assert_eq!((wgan.clip, wgan.opt_d), (0.01, OptName::Rmsprop));
        let ttur = resolve("ttur", "mnist");
        assert_eq!(ttur.lr_d, 4.0 * ttur.lr_g);
        assert_eq!(resolve("lsgan", "grid25").loss, LossName::LeastSquares);
    }

    #[test]
    fn a_penalty_through_a_layer_without_a_tangent_pass_is_refused() {
        let mut cli = toml::Table::new();
        cli.insert("preset".into(), toml::Value::String("paper".into()));
        cli.insert("gp".into(), toml::Value::Float(10.0));
        let err = TrainConfig::resolve(None, cli).unwrap_err().to_string();
        assert!(
            err.contains("Maxout") && err.contains("gradient penalty"),
            "{err}"
        );
        // A smooth activation in the critic has a second-derivative term duel does not compute.
        let mut cfg = TrainConfig::preset(Preset::WganGp, "ring8")
            .gan(2, None)
            .unwrap();
        cfg.d.layers[1] = Layer::Act(Activation::Tanh);
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("Tanh") && err.contains("second"), "{err}");
    }
}

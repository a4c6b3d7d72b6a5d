//! Every training option in one serializable struct. A run's configuration is resolved as
//! preset defaults ← `--config FILE` ← command-line options, and saved as `config.toml` in the
//! run directory so the run can be repeated.

use crate::backend::Activation;
use crate::data::Background;
use crate::data::cifar::Split;
use crate::layers::augment::Policy;
use crate::model::{Layer, NetSpec, Optimizer};
use crate::noise::Noise;
use crate::objective::{GeneratorLoss, Loss, Objective};
use crate::schedule::{MomentumRamp, Schedule, Updates};
use crate::weight_init::{OutputBias, WeightInit};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

mod gan_config;
mod networks;
mod resolve;
pub use gan_config::GanConfig;
mod validate;
pub use resolve::passed_options;
pub mod presets;
pub use networks::with_spectral_norm;

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
    /// 5 critic updates per G-update. Trains the --model network (the data's default model).
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
    /// The default on the embedded digits: dcgan's networks trained as a class-conditional GAN
    /// (G's batch norms conditional on the class, a projection D) for 10,000 steps; every class
    /// in equal shares, 98–99% read confidently by duel's classifier (docs/default-study.md).
    Digits,
    /// Progressive growing (Karras et al. 2018) to --image-size 32 or 64: G and D grow from 4×4,
    /// fading each doubling in; pixel norm, minibatch std, equalized learning rate, WGAN-GP.
    Progan,
    /// SAGAN (Zhang et al. 2019) for 32×32 images: SNGAN's ResNet G and D with self-attention
    /// after G's 2nd block and D's 1st (16×16), spectral norm in G and D, hinge loss, TTUR (Adam
    /// G 1e-4, D 4e-4, β1 0, β2 0.9), one D-update per G-update, z of 128 (docs/resnet.md).
    Sagan32,
    /// SN-GAN's CIFAR-10 ResNet (Miyato et al. 2018): G three up-blocks of 4w, D an optimized
    /// block and three of 2w, global sum pooling; spectral norm in D, hinge loss, Adam 2e-4
    /// (β1 0, β2 0.9), 5 D-updates per G-update, z of 128 (docs/resnet.md).
    SnganResnet32,
    /// What sagan32 was before it was re-founded on residual blocks: a DCGAN-like G (upsample +
    /// 3×3 conv) and D with self-attention at 16×16, sagan32's objective and optimizers.
    /// Checkpoints of that sagan32 load as this preset.
    Sagan32Dcgan,
}

/// `--model`'s parser: only the presets that are models (`Preset::is_model`) are offered.
fn model_parser() -> impl clap::builder::TypedValueParser<Value = Preset> {
    use clap::ValueEnum;
    use clap::builder::TypedValueParser;
    let models = Preset::value_variants()
        .iter()
        .filter(|p| p.is_model())
        .filter_map(|p| p.to_possible_value());
    clap::builder::PossibleValuesParser::new(models)
        .map(|s| Preset::from_str(&s, false).expect("a listed model is a preset"))
}

impl Preset {
    /// The side of the images a convolutional preset makes.
    pub fn image_side(self) -> Option<usize> {
        self.def().side
    }

    /// A preset that sets the objective and optimizers and trains the network `--model` names
    /// (by default the dataset's default model: the DCGAN that fits an image's side, small on
    /// the 2D sets).
    pub fn is_objective(self) -> bool {
        self.def().kind == presets::Kind::Objective
    }

    /// A network `--model` can name under an objective preset (one whose own objective the
    /// objective preset replaces wholesale: not the paper's recipe, SAGAN's or ProGAN's).
    pub fn is_model(self) -> bool {
        self.def().kind == presets::Kind::Model
    }

    /// Its name as `--preset` and `--model` spell it.
    pub fn name(self) -> String {
        toml::Value::try_from(self)
            .expect("a preset serializes")
            .as_str()
            .expect("a preset serializes to a string")
            .to_string()
    }
}

/// Which networks `--sn` normalises. Not a domain enum: the networks carry spectral norm as
/// `Layer::SpectralNorm` markers, which `with_spectral_norm` inserts from this choice.
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

/// The optimizer `--opt-g` and `--opt-d` name. Kept beside `model::Optimizer`, which carries
/// its hyper-parameters (learning rate, betas, momentum) from other options: this is only the
/// choice, resolved into an `Optimizer` by `TrainConfig::gan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OptName {
    Adam,
    Sgd,
    /// RMSProp (α 0.99, ε 1e-8, no momentum), the WGAN paper's optimizer
    Rmsprop,
}

/// Where a command runs (`--backend`). The backends themselves are types (`GpuBackend`,
/// `CpuBackend`), not an enum; `train::open_backend` turns this choice into one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BackendName {
    /// Training: the faster of the GPU adapter and the CPU path, timed on the run's own model and
    /// batch (and remembered; a software rasterizer only when named by --adapter). Other
    /// commands: a hardware GPU when there is one, else the CPU.
    Auto,
    /// Any wgpu adapter, software ones (lavapipe) included.
    Gpu,
    Cpu,
}

/// The resolved options of a training run, declared once: each field is a `duel train` option
/// (its doc is the help text, its heading the group it is listed under) and a `config.toml` key
/// (the long option's name). Unset options take the `--config` file's value, else the preset's
/// default (`resolve`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TrainConfig {
    // `mnist` (embedded), `ring8`, `grid25`, or a path to IDX files or an image folder.
    /// mnist (embedded), stacked-mnist (three embedded digits as R, G, B), ring8, grid25, IDX
    /// images (file or folder, .gz ok), cifar10:DIR (CIFAR-10's binary files) or a folder of
    /// PNG/JPEG images [default: mnist]
    #[arg(
        long,
        value_name = "NAME|PATH",
        required = false,
        help_heading = "Data"
    )]
    pub dataset: String,
    // Train class-conditionally (`--conditional`): labels become required (IDX label file,
    // class subfolders); G takes a class embedding, D is a projection discriminator. Only
    // written when set.
    /// Train a class-conditional GAN on the data's labels (the embedded digits', an IDX label
    /// file beside the images, or an image folder's class subfolders): G takes a class
    /// embedding, D is a projection discriminator; `duel sample --class C` then draws class C
    #[arg(long, help_heading = "Data")]
    #[serde(default, skip_serializing_if = "is_false")]
    pub conditional: bool,
    // CIFAR-10's split (`--split`); only written when it is the test split.
    /// CIFAR-10's split to train on: train (data_batch_1..5.bin) or test (test_batch.bin)
    /// [default: train]
    #[arg(long, value_enum, required = false, help_heading = "Data")]
    #[serde(default, skip_serializing_if = "is_zero")]
    pub split: Split,
    // Skip an image folder's files that cannot be decoded (counted in a warning) instead of
    // stopping at the first. Only written when set.
    /// Skip an image folder's files that cannot be decoded (truncated or corrupt), counting
    /// them in a warning, instead of stopping at the first
    #[arg(long, help_heading = "Data")]
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_bad_images: bool,
    // Channels an image folder is converted to (1 gray, 3 RGB).
    /// Channels an image folder is converted to: 1 (gray) or 3 (RGB) [default: 1; CIFAR-10 3]
    #[arg(long, required = false, help_heading = "Data")]
    pub channels: usize,
    // Side an image folder is resized and centre-cropped to.
    /// Side an image folder is resized and centre-cropped to, at most 1024 [default: 28;
    /// dcgan32 32, dcgan64 64]
    #[arg(long, required = false, help_heading = "Data")]
    pub image_size: usize,
    // What an image folder's transparent pixels are composited onto. (Absent in configs written
    // before it existed: those dropped alpha; white is the default now.)
    /// What an image folder's transparent pixels are composited onto [default: white]
    #[arg(long, value_enum, required = false, help_heading = "Data")]
    #[serde(default)]
    pub background: Background,
    // Train on the first N images of the dataset only. Only written when set.
    /// Train on the first N images of the dataset only (the paper: 50000 of MNIST's 60,000)
    /// [default: all]
    #[arg(long, value_name = "N", help_heading = "Data")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Model and defaults [default: digits on the embedded digits, dcgan for other 28×28 images (dcgan32, dcgan64 at --image-size 32, 64; mlp at other sides), small for ring8/grid25]
    #[arg(long, value_enum, required = false, help_heading = "Model")]
    pub preset: Preset,
    // The network an objective preset trains (`--model`); set by `resolve` for those presets,
    // and only written then. Configs written before it existed trained the mlp model on images
    // and small on the 2D sets, which is what `architecture` falls back to.
    /// The network an objective preset (wgan, wgan-gp, sngan, lsgan, ttur) trains [default: the
    /// dataset's default model]
    #[arg(long, value_parser = model_parser(), help_heading = "Model")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Preset>,
    /// Noise prior p_z per dimension: U(−1, 1), N(0, 1), or U(−√3, √3) (unit variance, the paper
    /// code's uniform) [default: normal]
    #[arg(long, value_enum, required = false, help_heading = "Model")]
    pub noise: Noise,
    /// Noise dimension [default: 100; small 8]
    #[arg(long, required = false, help_heading = "Model")]
    pub noise_dim: usize,
    // How G's and D's parameters start (absent in configs written before it existed: those
    // used each layer's default).
    /// G's initialisation: default (PyTorch's), uniform:R (weights in [−R, R], biases 0) or
    /// normal:S (weights N(0, S²), biases 0) [default: default; paper uniform:0.05]
    #[arg(long, value_name = "INIT", required = false, help_heading = "Model")]
    #[serde(default)]
    pub init_g: WeightInit,
    /// D's initialisation, as --init-g [default: default; paper uniform:0.005]
    #[arg(long, value_name = "INIT", required = false, help_heading = "Model")]
    #[serde(default)]
    pub init_d: WeightInit,
    // G's output bias: as `init-g` draws it, or from the training data's pixel marginals.
    /// G's output bias: init (as --init-g draws it) or marginals (the logit of each pixel's
    /// mean over the training images, as pylearn2's init_sigmoid_bias_from_marginals)
    /// [default: init; paper marginals]
    #[arg(long, value_enum, required = false, help_heading = "Model")]
    #[serde(default)]
    pub g_output_bias: OutputBias,
    // The convolutional presets' width: G's last hidden and D's first channel count (64 when
    // unset). Only written when set.
    /// The convolutional presets' width: the channels of G's last hidden layer and of D's first,
    /// doubling towards the middle [default: 64]
    #[arg(long, value_name = "W", help_heading = "Model")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    // Progressive growing: images per fade-in and per stabilisation phase (40,000 when unset).
    // Only written when set.
    /// Progressive growing (--preset progan): images per fade-in and per stabilisation phase
    /// [default: 40000]
    #[arg(long, value_name = "N", help_heading = "Model")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_images: Option<u64>,
    // D-steps per G-step.
    /// D-updates per G-update (the WGAN papers' n_critic) [default: 1; wgan, wgan-gp, sngan,
    /// sngan-resnet32 5]
    #[arg(
        long,
        visible_alias = "n-critic",
        required = false,
        help_heading = "Objective"
    )]
    pub k: usize,
    // The losses of D and G. (Configs written before it existed used the original.)
    /// The losses of D and G [default: original; wgan, wgan-gp: wasserstein; sngan: hinge;
    /// lsgan: least-squares]
    #[arg(long, value_enum, required = false, help_heading = "Objective")]
    #[serde(default)]
    pub loss: Loss,
    // Alternating (Algorithm 1) or simultaneous (the paper's code) updates. (Absent in configs
    // written before it existed: those alternated.)
    /// alternating (Algorithm 1: k D-updates, then a G-update on fresh noise) or simultaneous
    /// (the paper's code: both gradients from one batch before either update; needs --k 1)
    /// [default: alternating; paper simultaneous]
    #[arg(long, value_enum, required = false, help_heading = "Objective")]
    #[serde(default)]
    pub updates: Updates,
    /// Generator loss of --loss original: −log D(G(z)) or the paper's minimax log(1 − D(G(z)))
    /// [default: non-saturating]
    #[arg(long, value_enum, required = false, help_heading = "Objective")]
    pub g_loss: GeneratorLoss,
    // WGAN-GP's penalty weight λ; 0 = none.
    /// WGAN-GP's gradient penalty weight λ on interpolates of real and generated samples; 0 = off
    /// [default: 0; wgan-gp 10]
    #[arg(long, value_name = "λ", required = false, help_heading = "Objective")]
    #[serde(default)]
    pub gp: f32,
    // R1's penalty weight γ; 0 = none.
    /// R1's gradient penalty weight γ on real samples; 0 = off [default: 0]
    #[arg(long, value_name = "γ", required = false, help_heading = "Objective")]
    #[serde(default)]
    pub r1: f32,
    // Weight clipping of D to [−clip, clip] after every update; 0 = none.
    /// Clip D's weights to [−c, c] after every update; 0 = off [default: 0; wgan 0.01]
    #[arg(long, value_name = "c", required = false, help_heading = "Objective")]
    #[serde(default)]
    pub clip: f32,
    // ProGAN's drift term ε·E[D(x)²] in D's loss; 0 = none. Only written when set.
    /// ProGAN's drift term: add ε·E[D(x)²] to D's loss, keeping a critic's outputs near 0
    /// [default: 0; progan 0.001]
    #[arg(long, value_name = "ε", required = false, help_heading = "Objective")]
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drift: f32,
    // DiffAugment of D's inputs while training (`--augment`). Always written, since a preset's
    // default may differ (configs written before it existed trained without: none).
    /// DiffAugment (Zhao et al. 2020) of everything D sees while training, real and generated
    /// alike: none, or a list of color, translation, cutout. Keeps D from memorising a small
    /// image set [default: none; dcgan32, dcgan64, sagan32-dcgan, and sngan-resnet32 and sagan32 on
    /// an image folder: color,translation,cutout]
    #[arg(
        long,
        value_name = "LIST",
        required = false,
        help_heading = "Objective"
    )]
    #[serde(default)]
    pub augment: Policy,
    // Spectral normalization of the weights of D, or of G and D.
    /// Spectral normalization of every weight layer of D, or of G and D [default: none; sngan,
    /// sngan-resnet32 d; sagan32, sagan32-dcgan both]
    #[arg(long, value_enum, required = false, help_heading = "Objective")]
    #[serde(default)]
    pub sn: SnName,
    // PacGAN packing: D judges this many samples at once (1 = a plain GAN).
    /// PacGAN packing: D judges this many samples at once, which counters mode collapse; --batch
    /// must be a multiple [default: 1; small 2]
    #[arg(long, required = false, help_heading = "Objective")]
    #[serde(default = "one")]
    pub pack: usize,
    /// Generator optimizer [default: adam; paper sgd; wgan rmsprop]
    #[arg(long, value_enum, required = false, help_heading = "Optimiser")]
    pub opt_g: OptName,
    /// Discriminator optimizer [default: adam; paper sgd; wgan rmsprop]
    #[arg(long, value_enum, required = false, help_heading = "Optimiser")]
    pub opt_d: OptName,
    /// Generator learning rate (TTUR: may differ from D's) [default: 2e-4; paper 0.1; small 1e-3]
    #[arg(long, required = false, help_heading = "Optimiser")]
    pub lr_g: f32,
    /// Discriminator learning rate [default: 2e-4; paper 0.05 (the original's 0.1 on half this D loss); small 1e-3]
    #[arg(long, required = false, help_heading = "Optimiser")]
    pub lr_d: f32,
    // Adam's β1 (both networks).
    /// Adam β1 [default: 0.5]
    #[arg(long, required = false, help_heading = "Optimiser")]
    pub beta1: f32,
    // Adam's β2 (both networks).
    /// Adam β2 [default: 0.999]
    #[arg(long, required = false, help_heading = "Optimiser")]
    pub beta2: f32,
    // SGD's momentum (both networks).
    /// SGD momentum [default: 0.5]
    #[arg(long, required = false, help_heading = "Optimiser")]
    pub momentum: f32,
    // The learning rate is divided by this after every update (1 = constant) ...
    /// Divide the learning rates by this after every update (pylearn2's ExponentialDecay)
    /// [default: 1, constant; paper 1.000004]
    #[arg(
        long,
        value_name = "FACTOR",
        required = false,
        help_heading = "Optimiser"
    )]
    #[serde(default = "one_f64")]
    pub lr_decay: f64,
    // ... and never falls below this.
    /// The learning rates' floor under --lr-decay [default: 0; paper 1e-6]
    #[arg(long, required = false, help_heading = "Optimiser")]
    #[serde(default)]
    pub lr_min: f32,
    // SGD's momentum rises linearly from `momentum` at epoch `momentum-start` to this at epoch
    // `momentum-saturate`; unset keeps it constant. Only written when set.
    /// Ramp SGD's momentum linearly from --momentum to this between epochs --momentum-start
    /// and --momentum-saturate (pylearn2's MomentumAdjustor) [default: none; paper 0.7]
    #[arg(long, help_heading = "Optimiser")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum_final: Option<f32>,
    /// Epoch (1 = the first) the momentum ramp starts [default: 1]
    #[arg(
        long,
        value_name = "EPOCH",
        required = false,
        help_heading = "Optimiser"
    )]
    #[serde(default = "one_u64")]
    pub momentum_start: u64,
    /// Epoch the momentum ramp reaches --momentum-final [default: 1; paper 250]
    #[arg(
        long,
        value_name = "EPOCH",
        required = false,
        help_heading = "Optimiser"
    )]
    #[serde(default = "one_u64")]
    pub momentum_saturate: u64,
    // Decay of the moving average of G's weights that samples come from; 0 samples the raw
    // weights. (Absent in configs written before it existed: those sampled the raw weights.)
    /// Decay of the moving average of G's weights that samples are drawn from; 0 samples the raw
    /// weights [default: 0.999; paper 0]
    #[arg(long, required = false, help_heading = "Optimiser")]
    #[serde(default)]
    pub ema: f32,
    // Training iterations (each k D-steps and one G-step).
    /// Training iterations, each k D-updates and one G-update [default: 6000; small 10000; progan
    /// to the end of its growth: (2·doublings + 1) phases of --phase-images]
    #[arg(long, required = false, help_heading = "Schedule")]
    pub steps: u64,
    /// Minibatch size [default: 64; paper 100; small 512; progan 16]
    #[arg(long, required = false, help_heading = "Schedule")]
    pub batch: usize,
    /// Random seed for weights, noise, batches and dropout [default: 1]
    #[arg(long, required = false, help_heading = "Schedule")]
    pub seed: u64,
    // Every N steps, FID (1×28×28 runs) or Stacked MNIST's modes and KL measured with the
    // feature network into metrics.csv; 0 = never. Only written when set.
    /// Every N iterations, measure FID (1×28×28 runs) or Stacked MNIST's modes and KL with the
    /// feature network into metrics.csv and the plots [default: never]
    #[arg(long, value_name = "N", required = false, help_heading = "Output")]
    #[serde(default, skip_serializing_if = "is_zero")]
    pub eval_every: u64,
    // Samples of G each of those measurements takes [default: 2,000 for FID, 10,000 for
    // modes]. Only written when set.
    /// Samples of G each --eval-every measurement takes [default: 2000 for FID, 10000 for modes]
    #[arg(long, value_name = "N", help_heading = "Output")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_samples: Option<usize>,
    /// Print and record losses every N iterations [default: 100; small 500]
    #[arg(long, value_name = "N", required = false, help_heading = "Output")]
    pub log_every: u64,
    /// Write a sample grid every N iterations [default: 1000; small 500]
    #[arg(long, value_name = "N", required = false, help_heading = "Output")]
    pub sample_every: u64,
    /// Write a checkpoint every N iterations [default: 1000]
    #[arg(long, value_name = "N", required = false, help_heading = "Output")]
    pub checkpoint_every: u64,
    /// auto: a hardware GPU if there is one, else the CPU path; gpu: any adapter, lavapipe
    /// included; cpu [default: auto]
    #[arg(long, value_enum, required = false, help_heading = "Device")]
    pub backend: BackendName,
    // Adapter index, backend or name substring (see `duel devices`); empty = the best one.
    /// Adapter by index, backend (vulkan, metal, dx12, gl) or name substring; also DUEL_ADAPTER
    /// [default: the best one]
    #[arg(long, required = false, help_heading = "Device")]
    pub adapter: String,
    /// A conditional run's class count, found in its data (0 until the data are loaded).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[arg(skip)]
    pub classes: usize,
    /// A conditional run's class names when they are not just 0..K−1 (an image folder's class
    /// subfolders, sorted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[arg(skip)]
    pub class_names: Vec<String>,
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

    /// The preset whose network this run trains: `--model` under an objective preset (for a
    /// config written before `--model` existed, the mlp on images and small on the 2D sets),
    /// else the preset itself.
    pub fn architecture(&self) -> Preset {
        if !self.preset.is_objective() {
            return self.preset;
        }
        self.model.unwrap_or_else(|| {
            if crate::data::Mixture2d::parse(&self.dataset).is_some() {
                Preset::Small
            } else {
                Preset::Mlp
            }
        })
    }

    /// The value range G's image outputs (and the real images fed to D) live in.
    pub fn data_range(&self) -> (f32, f32) {
        match self.architecture().def().networks {
            presets::Networks::Paper => (0.0, 1.0),
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
            g_loss: self.g_loss,
            noise: self.noise,
            opt_g: self.optimizer(self.opt_g, self.lr_g),
            opt_d: self.optimizer(self.opt_d, self.lr_d),
            schedule: self.schedule(),
            updates: self.updates,
            seed: self.seed,
            ema: self.ema,
            pack: self.pack,
            objective: Objective {
                loss: self.loss,
                gp: self.gp,
                r1: self.r1,
                clip: self.clip,
                drift: self.drift,
            },
        })
    }
}

#[cfg(test)]
mod tests;

//! Each preset's defaults, and the preset a run gets when it names none.

use super::*;
use crate::data::cifar;
use crate::layers::augment::Policy;

impl TrainConfig {
    /// The defaults of `preset`, tuned so the plain command gives good results.
    pub fn preset(preset: Preset, dataset: &str) -> Self {
        let base = TrainConfig {
            preset,
            model: None,
            dataset: dataset.to_string(),
            // CIFAR-10 is in colour; an image folder is converted to gray unless asked.
            channels: if cifar::folder_of(dataset).is_some() {
                3
            } else {
                1
            },
            split: Split::Train,
            image_size: 28,
            background: Background::White,
            conditional: false,
            skip_bad_images: false,
            steps: 6000,
            batch: 64,
            k: 1,
            updates: Updates::Alternating,
            g_loss: GeneratorLoss::NonSaturating,
            opt_g: OptName::Adam,
            opt_d: OptName::Adam,
            lr_g: 2e-4,
            lr_d: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            momentum: 0.5,
            noise: Noise::Normal,
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
            loss: Loss::Original,
            gp: 0.0,
            r1: 0.0,
            clip: 0.0,
            drift: 0.0,
            augment: Policy::NONE,
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
        if preset.is_objective() {
            return Self::objective_preset(preset, Self::default_preset(dataset, None), dataset);
        }
        (preset.def().defaults)(base, dataset)
    }

    /// The defaults of an objective preset (`Preset::is_objective`) training `model`'s network:
    /// the model preset's defaults with the objective paper's loss, constraint and optimizers.
    pub fn objective_preset(preset: Preset, model: Preset, dataset: &str) -> Self {
        let model = TrainConfig {
            preset,
            model: Some(model),
            ..Self::preset(model, dataset)
        };
        (preset.def().defaults)(model, dataset)
    }

    /// Iterations until a progressive run has grown to its side and stabilised there once: a
    /// 4×4 phase, then a fade-in and a stabilisation phase per doubling, each of
    /// `--phase-images` images. `--preset progan`'s `--steps` when none is given, whatever the
    /// batch, side and phase length, so the plain command always ends at the full resolution.
    pub fn growth_steps(&self) -> u64 {
        let images = self.pro_spec(self.channels).growth_images();
        images.div_ceil(self.batch.max(1) as u64)
    }

    /// The preset a run gets when it names none: `digits` on the embedded digits (the study in
    /// docs/default-study.md), else `default_preset`.
    pub fn default_run_preset(dataset: &str, image_size: Option<i64>) -> Preset {
        match (dataset, image_size) {
            ("mnist", None | Some(28)) => Preset::Digits,
            _ => Self::default_preset(dataset, image_size),
        }
    }

    /// The model of a dataset: the small MLP on the 2D sets, and on images
    /// the DCGAN that fits their side (`--image-size`, 28 for the digits and IDX files) — it
    /// draws every digit class in even proportions where the MLP leans on 1s (docs/results.md,
    /// Results on MNIST) — or the MLP for a side no DCGAN preset makes.
    pub fn default_preset(dataset: &str, image_size: Option<i64>) -> Preset {
        if crate::data::Mixture2d::parse(dataset).is_some() {
            return Preset::Small;
        }
        match image_size {
            None if cifar::folder_of(dataset).is_some() => Preset::Dcgan32,
            None | Some(28) => Preset::Dcgan,
            Some(32) => Preset::Dcgan32,
            Some(64) => Preset::Dcgan64,
            Some(_) => Preset::Mlp,
        }
    }
}

/// What a preset is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A network with its defaults, which an objective preset can also train (`--model`).
    Model,
    /// A paper's objective and optimizers, training the `--model` network.
    Objective,
    /// A whole recipe: its own networks, objective and optimizers.
    Recipe,
}

/// The networks a preset builds (`TrainConfig::networks`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Networks {
    /// Two hidden layers of `width` in G and D, D dropping out after each with `dropout`'s keep
    /// probability.
    Mlp { width: usize, dropout: Option<f32> },
    /// The paper's MNIST pair: G 1200-1200 sigmoid, D maxout with dropout.
    Paper,
    /// DCGAN at the preset's side (`models::dcgan`).
    Dcgan,
    /// The first SAGAN on DCGAN's body (`models::dcgan::sagan32_dcgan`).
    SaganDcgan,
    /// SNGAN's ResNet, with self-attention (SAGAN) or without (`models::resnet32`).
    Resnet32 { attention: bool },
    /// ProGAN's growing pair (`layers::progressive`).
    Progressive,
    /// The `--model` network (an objective preset's).
    OfModel,
}

/// One preset: its kind, the side its networks make, its networks and its defaults. `Preset`
/// gives its name and one-line doc (the `--preset` help); `PRESETS` is consulted by name.
pub struct PresetDef {
    pub preset: Preset,
    pub kind: Kind,
    /// The side of the images its convolutional networks make (None: any, or 2D points).
    pub side: Option<usize>,
    pub networks: Networks,
    /// Its defaults: from the shared base on `dataset` (an objective preset's: from its
    /// model's defaults).
    pub defaults: fn(TrainConfig, &str) -> TrainConfig,
}

/// Every preset, once.
pub const PRESETS: &[PresetDef] = &[
    PresetDef {
        preset: Preset::Mlp,
        kind: Kind::Model,
        side: None,
        networks: Networks::Mlp {
            width: 1024,
            dropout: None,
        },
        defaults: |base, _| base,
    },
    PresetDef {
        preset: Preset::MlpDropout,
        kind: Kind::Model,
        side: None,
        networks: Networks::Mlp {
            width: 1024,
            dropout: Some(0.7),
        },
        defaults: |base, _| base,
    },
    PresetDef {
        preset: Preset::Paper,
        kind: Kind::Recipe,
        side: None,
        networks: Networks::Paper,
        defaults: paper,
    },
    PresetDef {
        preset: Preset::Small,
        kind: Kind::Model,
        side: None,
        networks: Networks::Mlp {
            width: 128,
            dropout: None,
        },
        defaults: small,
    },
    PresetDef {
        preset: Preset::Wgan,
        kind: Kind::Objective,
        side: None,
        networks: Networks::OfModel,
        defaults: wgan,
    },
    PresetDef {
        preset: Preset::WganGp,
        kind: Kind::Objective,
        side: None,
        networks: Networks::OfModel,
        defaults: wgan_gp,
    },
    PresetDef {
        preset: Preset::Sngan,
        kind: Kind::Objective,
        side: None,
        networks: Networks::OfModel,
        defaults: sngan,
    },
    PresetDef {
        preset: Preset::Lsgan,
        kind: Kind::Objective,
        side: None,
        networks: Networks::OfModel,
        defaults: lsgan,
    },
    PresetDef {
        preset: Preset::Ttur,
        kind: Kind::Objective,
        side: None,
        networks: Networks::OfModel,
        defaults: ttur,
    },
    PresetDef {
        preset: Preset::Dcgan,
        kind: Kind::Model,
        side: Some(28),
        networks: Networks::Dcgan,
        defaults: |base, _| dcgan(base, 28, Policy::NONE),
    },
    PresetDef {
        preset: Preset::Dcgan32,
        kind: Kind::Model,
        side: Some(32),
        networks: Networks::Dcgan,
        defaults: |base, _| dcgan(base, 32, Policy::ALL),
    },
    PresetDef {
        preset: Preset::Dcgan64,
        kind: Kind::Model,
        side: Some(64),
        networks: Networks::Dcgan,
        defaults: |base, _| dcgan(base, 64, Policy::ALL),
    },
    PresetDef {
        preset: Preset::Digits,
        kind: Kind::Recipe,
        side: Some(28),
        networks: Networks::Dcgan,
        defaults: digits,
    },
    PresetDef {
        preset: Preset::Progan,
        kind: Kind::Recipe,
        side: None,
        networks: Networks::Progressive,
        defaults: progan,
    },
    PresetDef {
        preset: Preset::Sagan32,
        kind: Kind::Recipe,
        side: Some(32),
        networks: Networks::Resnet32 { attention: true },
        defaults: sagan32,
    },
    PresetDef {
        preset: Preset::SnganResnet32,
        kind: Kind::Recipe,
        side: Some(32),
        networks: Networks::Resnet32 { attention: false },
        defaults: sngan_resnet32,
    },
    PresetDef {
        preset: Preset::Sagan32Dcgan,
        kind: Kind::Recipe,
        side: Some(32),
        networks: Networks::SaganDcgan,
        defaults: sagan32_dcgan,
    },
];

impl Preset {
    /// Its definition in `PRESETS`.
    pub fn def(self) -> &'static PresetDef {
        PRESETS
            .iter()
            .find(|d| d.preset == self)
            .expect("every preset is in PRESETS (tested)")
    }
}

// The released configuration of the paper's MNIST experiment (goodfeli/adversarial, mnist.yaml,
// for pylearn2); docs/paper.md lists each setting.
fn paper(base: TrainConfig, _: &str) -> TrainConfig {
    TrainConfig {
        batch: 100,
        updates: Updates::Simultaneous,
        opt_g: OptName::Sgd,
        opt_d: OptName::Sgd,
        lr_g: 0.1,
        // 0.1 on the original's D objective ½(BCE_real + BCE_fake), which is half of duel's D
        // loss (BCE_real + BCE_fake): the same step.
        lr_d: 0.05,
        momentum: 0.5,
        // The Generator's default: the stored mnist.yaml sets no `noise` (two other versions of
        // it ask for U(−√3, √3): `--noise uniform-sqrt3`).
        noise: Noise::Normal,
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
    }
}

// Tuned on ring8 and grid25: packing pairs (PacGAN2) finds all 25 grid modes where a plain GAN
// finds about 18, and the weight average sharpens samples onto the modes.
fn small(base: TrainConfig, _: &str) -> TrainConfig {
    TrainConfig {
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
    }
}

// DCGAN's rules: Adam 2e-4, β1 0.5, weights N(0, 0.02), batch 64. The image-folder presets add
// DiffAugment: a user's folder is small, and on the 3,786 emoji D memorises it without
// (docs/results.md, "Colour images").
fn dcgan(base: TrainConfig, side: usize, augment: Policy) -> TrainConfig {
    TrainConfig {
        image_size: side,
        augment,
        init_g: WeightInit::Normal(0.02),
        init_d: WeightInit::Normal(0.02),
        ..base
    }
}

// The default run's recipe, chosen by the study in docs/default-study.md: dcgan's networks and
// optimizers, class-conditional, 10,000 steps (past them the FID no longer falls; within the
// first command's 10-minute budget on a 2-core CPU).
fn digits(base: TrainConfig, _: &str) -> TrainConfig {
    TrainConfig {
        conditional: true,
        steps: 10_000,
        ..dcgan(base, 28, Policy::NONE)
    }
}

// Karras et al.: WGAN-GP (λ 10, one critic step per G step) with the drift term 0.001·E[D(x)²],
// Adam 1e-3 with β = (0, 0.99), minibatch 16 (their code's `minibatch_default`, overridden only
// from 256×256 up), equalized learning rate, G's moving average; RGB at 64×64.
fn progan(base: TrainConfig, _: &str) -> TrainConfig {
    TrainConfig {
        channels: 3,
        image_size: 64,
        batch: 16,
        loss: Loss::Wasserstein,
        gp: 10.0,
        drift: 0.001,
        k: 1,
        lr_g: 1e-3,
        lr_d: 1e-3,
        beta1: 0.0,
        beta2: 0.99,
        noise_dim: 128,
        ..base
    }
}

// What the ResNet presets share: 32×32, z of 128, Adam 2e-4 with β = (0, 0.9) (each
// preset sets its loss, constraint, rates and critic updates). DiffAugment on an image
// folder (a user's folder is small: on the 3,786 emoji D memorises it without, docs/results.md
// "Colour images"), none on CIFAR-10, as the papers trained.
fn resnet(base: TrainConfig, dataset: &str) -> TrainConfig {
    TrainConfig {
        image_size: 32,
        augment: if cifar::folder_of(dataset).is_some() {
            Policy::NONE
        } else {
            Policy::ALL
        },
        lr_g: 2e-4,
        lr_d: 2e-4,
        beta1: 0.0,
        beta2: 0.9,
        noise_dim: 128,
        ..base
    }
}

// SAGAN's settings (Zhang et al. 2019, §5): hinge loss, spectral norm in G and D, TTUR with
// β = (0, 0.9), one D-update per G-update; z of 128 as StudioGAN's CIFAR-10 configuration.
// docs/resnet.md lists each setting and its source.
fn sagan32(base: TrainConfig, dataset: &str) -> TrainConfig {
    TrainConfig {
        loss: Loss::Hinge,
        sn: SnName::Both,
        lr_g: 1e-4,
        lr_d: 4e-4,
        ..resnet(base, dataset)
    }
}

// SN-GAN's CIFAR-10 ResNet setting (Miyato et al. 2018, §4 and Appendix B; the chainer
// configs/sn_cifar10_unconditional.yml): hinge loss, spectral norm in D, Adam 2e-4,
// β = (0, 0.9), n_dis 5. docs/resnet.md lists each setting and its source.
fn sngan_resnet32(base: TrainConfig, dataset: &str) -> TrainConfig {
    TrainConfig {
        loss: Loss::Hinge,
        sn: SnName::D,
        k: 5,
        ..resnet(base, dataset)
    }
}

// The first sagan32's settings. DiffAugment as the other image-folder presets: on the emoji, D's
// hinge margin grows without it (docs/sagan.md). Not for progan: there it collapsed G.
fn sagan32_dcgan(base: TrainConfig, _: &str) -> TrainConfig {
    TrainConfig {
        image_size: 32,
        augment: Policy::ALL,
        loss: Loss::Hinge,
        sn: SnName::Both,
        lr_g: 1e-4,
        lr_d: 4e-4,
        beta1: 0.0,
        beta2: 0.9,
        noise_dim: 128,
        ..base
    }
}

// The objective presets, on their model's defaults. The papers' rates are for 10⁵ iterations
// (Gulrajani et al.'s toy runs: 100k at 1e-4, β = (0.5, 0.9)); the small model trains 10k, so on
// the 2D sets the objective presets train faster. Measured on ring8/grid25 (docs/presets.md):
// WGAN-GP at the paper's 1e-4 and β1 0 left G a diffuse square after 10k steps on grid25 (23/25
// modes), at 1e-3 and β1 0.5 it found all 25; SN-GAN at 2e-4 found 23/25 there, at 1e-3 and β1
// 0.5 it lost a mode of ring8, at 5e-4 (β1 0 kept) it found every mode of both.
fn on_points(cfg: TrainConfig, dataset: &str, lr_g: f32, lr_d: f32, beta1: f32) -> TrainConfig {
    if crate::data::Mixture2d::parse(dataset).is_none() {
        return cfg;
    }
    TrainConfig {
        lr_g,
        lr_d,
        beta1,
        ..cfg
    }
}

// Arjovsky et al., Algorithm 1: α = 5e-5, c = 0.01, n_critic = 5, RMSProp.
fn wgan(model: TrainConfig, dataset: &str) -> TrainConfig {
    let cfg = TrainConfig {
        loss: Loss::Wasserstein,
        clip: 0.01,
        k: 5,
        opt_g: OptName::Rmsprop,
        opt_d: OptName::Rmsprop,
        lr_g: 5e-5,
        lr_d: 5e-5,
        ..model
    };
    let beta1 = cfg.beta1;
    on_points(cfg, dataset, 5e-4, 5e-4, beta1)
}

// Gulrajani et al., Algorithm 1: λ = 10, n_critic = 5, Adam α = 1e-4, β = (0, 0.9).
fn wgan_gp(model: TrainConfig, dataset: &str) -> TrainConfig {
    let cfg = TrainConfig {
        loss: Loss::Wasserstein,
        gp: 10.0,
        k: 5,
        lr_g: 1e-4,
        lr_d: 1e-4,
        beta1: 0.0,
        beta2: 0.9,
        ..model
    };
    on_points(cfg, dataset, 1e-3, 1e-3, 0.5)
}

// Miyato et al.'s hinge-loss setting: α = 2e-4, β = (0, 0.9), n_dis = 5.
fn sngan(model: TrainConfig, dataset: &str) -> TrainConfig {
    let cfg = TrainConfig {
        loss: Loss::Hinge,
        sn: SnName::D,
        k: 5,
        lr_g: 2e-4,
        lr_d: 2e-4,
        beta1: 0.0,
        beta2: 0.9,
        ..model
    };
    let beta1 = cfg.beta1;
    on_points(cfg, dataset, 5e-4, 5e-4, beta1)
}

// Mao et al.: Adam α = 2e-4, β1 = 0.5 (the model's own rates on the 2D sets).
fn lsgan(model: TrainConfig, dataset: &str) -> TrainConfig {
    let cfg = TrainConfig {
        loss: Loss::LeastSquares,
        ..model
    };
    on_points(cfg, dataset, 1e-3, 1e-3, 0.5)
}

// Heusel et al.'s two time scales as in SAGAN: D 4e-4, G 1e-4, β = (0, 0.9).
fn ttur(model: TrainConfig, dataset: &str) -> TrainConfig {
    let cfg = TrainConfig {
        lr_g: 1e-4,
        lr_d: 4e-4,
        beta1: 0.0,
        beta2: 0.9,
        ..model
    };
    let beta1 = cfg.beta1;
    on_points(cfg, dataset, 2.5e-4, 1e-3, beta1)
}

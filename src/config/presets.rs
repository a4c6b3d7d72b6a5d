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
        // What the ResNet presets share: 32×32, z of 128, Adam 2e-4 with β = (0, 0.9) (each
        // preset sets its loss, constraint, rates and critic updates). DiffAugment on an image
        // folder (a user's folder is small: on the 3,786 emoji D memorises it without, docs/results.md
        // "Colour images"), none on CIFAR-10, as the papers trained.
        let resnet = TrainConfig {
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
            ..base.clone()
        };
        match preset {
            Preset::Mlp | Preset::MlpDropout => base,
            // The released configuration of the paper's MNIST experiment (goodfeli/adversarial,
            // mnist.yaml, for pylearn2); docs/paper.md lists each setting.
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
                // The Generator's default: the stored mnist.yaml sets no `noise` (two other
                // versions of it ask for U(−√3, √3): `--noise uniform-sqrt3`).
                noise: NoiseName::Normal,
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
            // DCGAN's rules: Adam 2e-4, β1 0.5, weights N(0, 0.02), batch 64. The image-folder
            // presets add DiffAugment: a user's folder is small, and on the 3,786 emoji D
            // memorises it without (docs/results.md, "Colour images").
            Preset::Dcgan | Preset::Dcgan32 | Preset::Dcgan64 => TrainConfig {
                image_size: preset.image_side().expect("a convolutional preset"),
                augment: match preset {
                    Preset::Dcgan => Policy::NONE,
                    _ => Policy::ALL,
                },
                init_g: WeightInit::Normal(0.02),
                init_d: WeightInit::Normal(0.02),
                ..base
            },
            // Karras et al.: WGAN-GP (λ 10, one critic step per G step) with the drift term
            // 0.001·E[D(x)²], Adam 1e-3 with β = (0, 0.99), minibatch 16 (their code's
            // `minibatch_default`, overridden only from 256×256 up), equalized learning rate, G's
            // moving average; RGB at 64×64.
            Preset::Progan => TrainConfig {
                channels: 3,
                image_size: 64,
                batch: 16,
                loss: LossName::Wasserstein,
                gp: 10.0,
                drift: 0.001,
                k: 1,
                lr_g: 1e-3,
                lr_d: 1e-3,
                beta1: 0.0,
                beta2: 0.99,
                noise_dim: 128,
                ..base
            },
            // SAGAN's settings (Zhang et al. 2019, §5): hinge loss, spectral norm in G and D,
            // TTUR with β = (0, 0.9), one D-update per G-update; z of 128 as StudioGAN's
            // CIFAR-10 configuration. docs/resnet.md lists each setting and its source.
            Preset::Sagan32 => TrainConfig {
                loss: LossName::Hinge,
                sn: SnName::Both,
                lr_g: 1e-4,
                lr_d: 4e-4,
                ..resnet
            },
            // SN-GAN's CIFAR-10 ResNet setting (Miyato et al. 2018, §4 and Appendix B; the
            // chainer configs/sn_cifar10_unconditional.yml): hinge loss, spectral norm in D, Adam
            // 2e-4, β = (0, 0.9), n_dis 5. docs/resnet.md lists each setting and its source.
            Preset::SnganResnet32 => TrainConfig {
                loss: LossName::Hinge,
                sn: SnName::D,
                k: 5,
                ..resnet
            },
            // The first sagan32's settings. DiffAugment as the other image-folder presets: on
            // the emoji, D's hinge margin grows without it (docs/sagan.md). Not for
            // progan: there it collapsed G.
            Preset::Sagan32Dcgan => TrainConfig {
                image_size: 32,
                augment: Policy::ALL,
                loss: LossName::Hinge,
                sn: SnName::Both,
                lr_g: 1e-4,
                lr_d: 4e-4,
                beta1: 0.0,
                beta2: 0.9,
                noise_dim: 128,
                ..base
            },
            Preset::Wgan | Preset::WganGp | Preset::Sngan | Preset::Lsgan | Preset::Ttur => {
                unreachable!("objective presets return above")
            }
        }
    }

    /// The defaults of an objective preset (`Preset::is_objective`) training `model`'s network:
    /// the model preset's defaults with the objective paper's loss, constraint and optimizers.
    pub fn objective_preset(preset: Preset, model: Preset, dataset: &str) -> Self {
        let points = crate::data::Mixture2d::parse(dataset).is_some();
        let model = TrainConfig {
            preset,
            model: Some(model),
            ..Self::preset(model, dataset)
        };
        let cfg = match preset {
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
            _ => panic!("{preset:?} is not an objective preset"),
        };
        if !points {
            return cfg;
        }
        // The papers' rates are for 10⁵ iterations (Gulrajani et al.'s toy runs: 100k at 1e-4,
        // β = (0.5, 0.9)); the small model trains 10k, so on the 2D sets the objective presets
        // train faster. Measured on ring8/grid25 (docs/presets.md): WGAN-GP at the paper's 1e-4 and
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

    /// Iterations until a progressive run has grown to its side and stabilised there once: a
    /// 4×4 phase, then a fade-in and a stabilisation phase per doubling, each of
    /// `--phase-images` images. `--preset progan`'s `--steps` when none is given, whatever the
    /// batch, side and phase length, so the plain command always ends at the full resolution.
    pub fn growth_steps(&self) -> u64 {
        let images = self.pro_spec(self.channels).growth_images();
        images.div_ceil(self.batch.max(1) as u64)
    }

    /// The preset a run gets when it names none: the small MLP on the 2D sets, and on images
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

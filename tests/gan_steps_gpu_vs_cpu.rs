//! Whole training iterations (k D-steps and a G-step) of a small MLP GAN on the GPU and the CPU:
//! the same data, noise, masks and initial weights must give the same weights after them.

mod common;

use common::{assert_close, cpu, gpu};
use duel::backend::{Activation, Backend};
use duel::gan::{
    DeviceData, Gan, GanConfig, GeneratorLoss, Loss, Noise, Objective, Schedule, Updates,
};
use duel::model::{Layer, NetSpec, Optimizer, Shape};

fn config(opt: Optimizer, g_loss: GeneratorLoss, noise: Noise) -> GanConfig {
    GanConfig {
        g: NetSpec {
            input: Shape::flat(10),
            layers: vec![
                Layer::Linear(33),
                Layer::Act(Activation::Relu),
                Layer::Linear(65),
                Layer::Act(Activation::Tanh),
            ],
        },
        d: NetSpec {
            input: Shape::flat(65),
            layers: vec![
                Layer::Dropout(0.8),
                Layer::Linear(30),
                Layer::Maxout(3),
                Layer::Dropout(0.5),
                Layer::Linear(17),
                Layer::Act(Activation::LeakyRelu(0.2)),
                Layer::Linear(1),
            ],
        },
        batch: 13,
        k: 2,
        g_loss,
        noise,
        opt_g: opt,
        opt_d: opt,
        schedule: Schedule::CONSTANT,
        updates: Updates::Alternating,
        seed: 42,
        ema: 0.99,
        pack: 1,
        objective: Default::default(),
    }
}

fn run(be: &mut dyn Backend, cfg: &GanConfig, iterations: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let rows = 101;
    let dim = cfg.g.build("net").unwrap().output();
    let bytes: Vec<u8> = (0..rows * dim).map(|i| (i * 37 % 256) as u8).collect();
    let rows = be.upload_rows_u8(&bytes, rows, dim, "data").unwrap();
    let data = DeviceData::Bytes {
        rows,
        scale: 2.0 / 255.0,
        offset: -1.0,
    };
    let mut gan = Gan::new(be, cfg, data, None).unwrap();
    if let Some(k) = cfg.classes() {
        let labels: Vec<u32> = (0..101).map(|i| (i * 7 % k) as u32).collect();
        gan.set_data_labels(be, &labels).unwrap();
    }
    let mut losses = Vec::new();
    for _ in 0..iterations {
        gan.train_iteration(be);
        let s = gan.take_stats(be).unwrap();
        losses.extend([
            s.d_loss,
            s.g_loss,
            s.d_real,
            s.d_fake,
            s.penalty,
            s.grad_norm,
        ]);
    }
    // Parameters, then persistent state (spectral norm's u and v, batch-norm statistics).
    let mut g = be.read(gan.g.params).unwrap();
    g.extend(be.read(gan.g.state.slice(0, gan.g.n_state)).unwrap());
    g.extend(be.read(gan.g_ema.unwrap()).unwrap());
    let mut d = be.read(gan.d.params).unwrap();
    d.extend(be.read(gan.d.state.slice(0, gan.d.n_state)).unwrap());
    (g, d, losses)
}

fn compare(cfg: GanConfig, atol: f32) {
    let iterations = 3;
    let (g_gpu, d_gpu, l_gpu) = run(&mut gpu(), &cfg, iterations);
    let (g_cpu, d_cpu, l_cpu) = run(&mut cpu(), &cfg, iterations);
    let init = cfg.g.build("net").unwrap().init_params(cfg.seed, 0);
    let moved = g_cpu.iter().zip(&init).filter(|(a, b)| a != b).count();
    assert!(
        moved > init.len() / 2,
        "training left G's weights unchanged: {moved} of {} moved",
        init.len()
    );
    let (raw, avg) = g_cpu.split_at(init.len());
    assert_ne!(
        raw,
        &avg[cfg.g.build("net").unwrap().state_count()..],
        "the moving average is a copy of the weights"
    );
    if cfg.objective.penalty().is_some() {
        let penalties: Vec<f32> = l_cpu.chunks(6).map(|s| s[4]).collect();
        assert!(
            penalties.iter().all(|&p| p > 0.0),
            "the penalty was not reported: {penalties:?}"
        );
    }
    assert_close("losses", &l_gpu, &l_cpu, 1e-4, 1e-3);
    assert_close("generator weights", &g_gpu, &g_cpu, atol, 1e-3);
    assert_close("discriminator weights", &d_gpu, &d_cpu, atol, 1e-3);
}

#[test]
fn adam_non_saturating_normal_noise() {
    compare(
        config(
            Optimizer::adam(1e-3, 0.5, 0.999),
            GeneratorLoss::NonSaturating,
            Noise::Normal,
        ),
        1e-5,
    );
}

#[test]
fn sgd_momentum_minimax_uniform_noise() {
    compare(
        config(
            Optimizer::Sgd {
                lr: 0.05,
                momentum: 0.5,
            },
            GeneratorLoss::Minimax,
            Noise::Uniform,
        ),
        1e-5,
    );
}

#[test]
fn simultaneous_updates_with_decay_and_a_momentum_ramp() {
    // The paper code's recipe: both gradients from one pass, the learning rate decaying per
    // update and the momentum ramping per epoch (101 rows at batch 13: an epoch is ~8 updates).
    let mut cfg = config(
        Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.5,
        },
        GeneratorLoss::NonSaturating,
        Noise::UniformUnitVariance,
    );
    cfg.k = 1;
    cfg.updates = Updates::Simultaneous;
    cfg.schedule = Schedule {
        lr_decay: 1.2,
        lr_min: 0.075,
        momentum: Some(duel::gan::MomentumRamp {
            final_momentum: 0.9,
            start: 1,
            saturate: 1,
        }),
    };
    compare(cfg, 1e-5);
}

#[test]
fn packed_discriminator() {
    // PacGAN: D reads 3 samples at once; the batch of 12 is 4 packs of real and 4 of fake.
    let mut cfg = config(
        Optimizer::adam(1e-3, 0.5, 0.999),
        GeneratorLoss::NonSaturating,
        Noise::Normal,
    );
    cfg.pack = 3;
    cfg.batch = 12;
    cfg.d.input = Shape::flat(65 * 3);
    compare(cfg, 1e-5);
}

/// A small DCGAN-shaped pair: G's noise is a 4×2×2 image grown by transposed convolutions to
/// 1×8×8 (ReLU fused below, tanh on top); D strides down with convolutions and LeakyReLU.
fn conv(out: usize, k: usize, stride: usize, pad: usize) -> Layer {
    Layer::Conv2d {
        out,
        k,
        stride,
        pad,
    }
}

fn conv_t(out: usize, k: usize, stride: usize, pad: usize) -> Layer {
    Layer::ConvTranspose2d {
        out,
        k,
        stride,
        pad,
    }
}

fn conv_config() -> GanConfig {
    let mut cfg = config(
        Optimizer::adam(1e-3, 0.5, 0.999),
        GeneratorLoss::NonSaturating,
        Noise::Normal,
    );
    cfg.g = NetSpec {
        input: Shape::image(4, 2, 2),
        layers: vec![
            conv_t(6, 4, 2, 1),
            Layer::Act(Activation::Relu),
            conv_t(1, 4, 2, 1),
            Layer::Act(Activation::Tanh),
        ],
    };
    cfg.d = NetSpec {
        input: Shape::image(1, 8, 8),
        layers: vec![
            conv(5, 4, 2, 1),
            Layer::Act(Activation::LeakyRelu(0.2)),
            conv(7, 3, 2, 1),
            Layer::Act(Activation::LeakyRelu(0.2)),
            Layer::Linear(1),
        ],
    };
    cfg
}

#[test]
fn conv_gan_iterations() {
    compare(conv_config(), 1e-5);
}

#[test]
fn an_iteration_is_one_submit_and_reads_nothing() {
    let mut be = gpu();
    let mlp = config(
        Optimizer::adam(1e-3, 0.5, 0.999),
        GeneratorLoss::NonSaturating,
        Noise::Normal,
    );
    // The gradient penalty and spectral norm stay on the device too.
    let gp_sn = objective_config(
        Objective {
            loss: Loss::Wasserstein,
            gp: 10.0,
            ..Default::default()
        },
        Optimizer::adam(1e-3, 0.0, 0.9),
        true,
    );
    // A conditional GAN's labels are gathered and its classes drawn on the device.
    for cfg in [mlp, conv_config(), gp_sn, conditional_conv_config()] {
        let dim = cfg.g.build("net").unwrap().output();
        let bytes = vec![7u8; 40 * dim];
        let rows = be.upload_rows_u8(&bytes, 40, dim, "data").unwrap();
        let data = DeviceData::Bytes {
            rows,
            scale: 1.0 / 255.0,
            offset: 0.0,
        };
        let mut gan = Gan::new(&mut be, &cfg, data, None).unwrap();
        if let Some(k) = cfg.classes() {
            let labels: Vec<u32> = (0..40).map(|i| (i % k) as u32).collect();
            gan.set_data_labels(&mut be, &labels).unwrap();
        }
        gan.train_iteration(&mut be);
        let before = be.counters();
        gan.train_iteration(&mut be);
        let after = be.counters();
        assert_eq!(
            after.submits - before.submits,
            1,
            "one submit per iteration"
        );
        assert_eq!(
            after.bytes_read, before.bytes_read,
            "an iteration reads nothing back"
        );
        assert_eq!(
            after.bytes_written, before.bytes_written,
            "an iteration uploads nothing"
        );
        assert!(after.dispatches > before.dispatches);
    }
}

// ---- the objectives of issue 11 -------------------------------------------------------------

/// `config`'s GAN with a critic the gradient penalty's tangent pass runs through (no maxout), and
/// `objective`. A critic's gradient w.r.t. a bias is a difference of near-equal means over real
/// and fake rows, so it starts near 0; Adam (and RMSProp) divide it by its own magnitude and
/// turn rounding noise into whole steps. The critic tests use SGD where that matters.
fn objective_config(objective: Objective, opt: Optimizer, sn: bool) -> GanConfig {
    let mut cfg = config(opt, GeneratorLoss::NonSaturating, Noise::Normal);
    let d = vec![
        Layer::Dropout(0.8),
        Layer::Linear(30),
        Layer::Act(Activation::LeakyRelu(0.2)),
        Layer::Linear(17),
        Layer::Act(Activation::Relu),
        Layer::Linear(1),
    ];
    cfg.d.layers = if sn {
        duel::config::with_spectral_norm(&d)
    } else {
        d
    };
    cfg.objective = objective;
    cfg
}

#[test]
fn wgan_clipped_critic_with_rmsprop() {
    let objective = Objective {
        loss: Loss::Wasserstein,
        clip: 0.05,
        ..Default::default()
    };
    let cfg = objective_config(objective, Optimizer::rmsprop(1e-3), false);
    compare(cfg, 1e-5);
}

#[test]
fn wgan_gp() {
    let objective = Objective {
        loss: Loss::Wasserstein,
        gp: 10.0,
        ..Default::default()
    };
    compare(
        objective_config(
            objective,
            Optimizer::Sgd {
                lr: 0.01,
                momentum: 0.5,
            },
            false,
        ),
        1e-5,
    );
}

#[test]
fn r1_on_the_original_loss() {
    let objective = Objective {
        r1: 5.0,
        ..Default::default()
    };
    compare(
        objective_config(objective, Optimizer::adam(1e-3, 0.5, 0.999), false),
        1e-5,
    );
}

#[test]
fn sngan_hinge_with_spectral_norm_in_g_and_d() {
    let objective = Objective {
        loss: Loss::Hinge,
        ..Default::default()
    };
    let mut cfg = objective_config(
        objective,
        Optimizer::Sgd {
            lr: 0.01,
            momentum: 0.5,
        },
        true,
    );
    cfg.g.layers = duel::config::with_spectral_norm(&cfg.g.layers);
    compare(cfg, 1e-5);
}

#[test]
fn wgan_gp_with_spectral_norm_and_packing() {
    // Every piece at once: the penalty's tangent through spectrally normalised layers, one ε per
    // pack of 3 samples.
    let objective = Objective {
        loss: Loss::Wasserstein,
        gp: 10.0,
        ..Default::default()
    };
    let mut cfg = objective_config(
        objective,
        Optimizer::Sgd {
            lr: 0.01,
            momentum: 0.5,
        },
        true,
    );
    cfg.pack = 3;
    cfg.batch = 12;
    cfg.d.input = Shape::flat(65 * 3);
    compare(cfg, 1e-5);
}

#[test]
fn lsgan() {
    let objective = Objective {
        loss: Loss::LeastSquares,
        ..Default::default()
    };
    compare(
        objective_config(objective, Optimizer::adam(1e-3, 0.5, 0.999), false),
        1e-5,
    );
}

#[test]
fn conv_critic_with_gradient_penalty_and_spectral_norm() {
    // The conv layers' tangent pass and spectral norm of a [out, in·k·k] kernel, one iteration
    // of WGAN-GP with both on.
    let mut cfg = conv_config();
    cfg.d.layers = duel::config::with_spectral_norm(&cfg.d.layers);
    cfg.objective = Objective {
        loss: Loss::Wasserstein,
        gp: 10.0,
        ..Default::default()
    };
    cfg.opt_d = Optimizer::Sgd {
        lr: 0.01,
        momentum: 0.5,
    };
    cfg.opt_g = cfg.opt_d;
    compare(cfg, 1e-5);
}

#[test]
fn conv_gan_with_spectral_norm_in_g_and_d() {
    // SAGAN's and BigGAN's `--sn both` on a DCGAN: G's transposed convolutions normalised over
    // dimension 1 of their [in, out, k, k] kernels, D's convolutions over dimension 0.
    let mut cfg = conv_config();
    cfg.g.layers = duel::config::with_spectral_norm(&cfg.g.layers);
    cfg.d.layers = duel::config::with_spectral_norm(&cfg.d.layers);
    assert!(
        cfg.g
            .build("net")
            .unwrap()
            .describe()
            .contains("ConvTranspose2d (spectral norm)"),
        "{}",
        cfg.g.build("net").unwrap().describe()
    );
    cfg.objective.loss = Loss::Hinge;
    // SGD: while every score is inside the hinge's margins, D's output bias has a true gradient
    // of mean(−1) + mean(+1) = 0, whose rounding noise Adam would turn into whole steps.
    let sgd = Optimizer::Sgd {
        lr: 1e-2,
        momentum: 0.5,
    };
    (cfg.opt_g, cfg.opt_d) = (sgd, sgd);
    compare(cfg, 1e-5);
}

/// `conv_config` with DiffAugment's every transformation in front of D.
fn augmented_conv_config() -> GanConfig {
    let mut cfg = conv_config();
    let image = cfg.d.input;
    let policy = duel::layers::augment::Policy::ALL;
    cfg.d.layers.insert(0, Layer::Augment { image, policy });
    cfg
}

#[test]
fn conv_gan_with_diffaugment() {
    // Real and fake images augmented with their own draws in D's updates, the fakes again in
    // G's, and G's gradient back through the augmentation.
    compare(augmented_conv_config(), 1e-5);
}

#[test]
fn diffaugment_with_r1_through_the_augmentation() {
    // R1's tangent pass runs through the augmentation's linear part.
    let mut cfg = augmented_conv_config();
    cfg.objective = Objective {
        r1: 1.0,
        ..Default::default()
    };
    let sgd = Optimizer::Sgd {
        lr: 0.01,
        momentum: 0.5,
    };
    (cfg.opt_g, cfg.opt_d) = (sgd, sgd);
    compare(cfg, 1e-5);
}

// ---- class-conditional GANs (issue 14) ------------------------------------------------------

/// `conv_config` made conditional on 3 classes: class-conditional batch norm in G, a projection
/// head on D. With SGD: the bias of the convolution before a batch norm has a true gradient of 0
/// (the normalisation removes it), so its computed gradient is rounding noise, which Adam would
/// turn into whole steps that differ between backends.
fn conditional_conv_config() -> GanConfig {
    let mut cfg = conv_config();
    let sgd = Optimizer::Sgd {
        lr: 1e-2,
        momentum: 0.5,
    };
    (cfg.opt_g, cfg.opt_d) = (sgd, sgd);
    cfg.g
        .layers
        .insert(1, Layer::ConditionalBatchNorm { classes: 3 });
    *cfg.d.layers.last_mut().unwrap() = Layer::Projection { classes: 3 };
    cfg
}

#[test]
fn conditional_mlp_gan_with_class_embedding_and_projection() {
    let mut cfg = config(
        Optimizer::adam(1e-3, 0.5, 0.999),
        GeneratorLoss::NonSaturating,
        Noise::Normal,
    );
    cfg.g
        .layers
        .insert(0, Layer::ClassEmbedding { classes: 4, dim: 5 });
    *cfg.d.layers.last_mut().unwrap() = Layer::Projection { classes: 4 };
    assert_eq!(cfg.classes(), Some(4));
    compare(cfg, 1e-5);
}

#[test]
fn conditional_conv_gan_hinge_with_spectral_norm() {
    let mut cfg = conditional_conv_config();
    cfg.objective.loss = Loss::Hinge;
    cfg.d.layers = duel::config::with_spectral_norm(&cfg.d.layers);
    assert!(
        cfg.d
            .build("net")
            .unwrap()
            .describe()
            .contains("Projection(28 → 1, 3 classes, spectral norm)")
    );
    compare(cfg, 1e-5);
}

#[test]
fn conditional_wgan_gp_through_the_projection_head() {
    let mut cfg = objective_config(
        Objective {
            loss: Loss::Wasserstein,
            gp: 10.0,
            ..Default::default()
        },
        Optimizer::Sgd {
            lr: 1e-2,
            momentum: 0.5,
        },
        false,
    );
    cfg.g
        .layers
        .insert(0, Layer::ClassEmbedding { classes: 3, dim: 2 });
    *cfg.d.layers.last_mut().unwrap() = Layer::Projection { classes: 3 };
    compare(cfg, 1e-5);
}

/// A residual GAN on 1×4×4 images: G an SNGAN up-block (BN → ReLU → upsample → 3×3 conv → BN →
/// ReLU → 3×3 conv, with an upsample + 1×1 conv skip) then BN, ReLU, 3×3 conv, tanh; D an
/// "optimized" down-block (3×3 conv → ReLU → 3×3 conv → pool, skip pool → 1×1 conv), an
/// identity-skip block, ReLU and a Linear, spectrally normalised.
fn residual_config() -> GanConfig {
    let conv = |out, k| Layer::Conv2d {
        out,
        k,
        stride: 1,
        pad: k / 2,
    };
    let relu = || Layer::Act(Activation::Relu);
    let mut cfg = conv_config();
    cfg.g = NetSpec {
        input: Shape::image(4, 2, 2),
        layers: vec![
            Layer::Residual {
                main: vec![
                    Layer::BatchNorm,
                    relu(),
                    Layer::Upsample2x,
                    conv(5, 3),
                    Layer::BatchNorm,
                    relu(),
                    conv(5, 3),
                ],
                skip: vec![Layer::Upsample2x, conv(5, 1)],
            },
            Layer::BatchNorm,
            relu(),
            conv(1, 3),
            Layer::Act(Activation::Tanh),
        ],
    };
    cfg.d = NetSpec {
        input: Shape::image(1, 4, 4),
        layers: duel::config::with_spectral_norm(&[
            Layer::Residual {
                main: vec![conv(4, 3), relu(), conv(4, 3), Layer::AvgPool2x],
                skip: vec![Layer::AvgPool2x, conv(4, 1)],
            },
            Layer::Residual {
                main: vec![relu(), conv(4, 3), relu(), conv(4, 3)],
                skip: vec![],
            },
            relu(),
            Layer::Reshape(Shape::flat(16)),
            Layer::Linear(1),
        ]),
    };
    let sgd = Optimizer::Sgd {
        lr: 1e-2,
        momentum: 0.5,
    };
    (cfg.opt_g, cfg.opt_d) = (sgd, sgd);
    cfg
}

#[test]
fn residual_gan_hinge_with_batch_norm_and_spectral_norm() {
    let mut cfg = residual_config();
    assert_eq!(
        cfg.d
            .build("net")
            .unwrap()
            .describe()
            .matches("Conv2d (spectral norm)")
            .count(),
        5,
        "{}",
        cfg.d.build("net").unwrap().describe()
    );
    cfg.objective.loss = Loss::Hinge;
    compare(cfg, 1e-5);
}

#[test]
fn residual_critic_with_gradient_penalty() {
    // The tangent pass through both residual blocks (and spectral norm) on the device.
    let mut cfg = residual_config();
    cfg.objective = Objective {
        loss: Loss::Wasserstein,
        gp: 10.0,
        ..Default::default()
    };
    compare(cfg, 1e-5);
}

/// A ResNet preset (`duel::resnet32`) as `duel train --preset NAME --width 2` builds it — its
/// networks (G 8 channels, D 4), loss, spectral norm, critic updates and DiffAugment — on
/// 3×32×32 images at batch 4, but with SGD for its Adam: Adam turns the rounding noise of
/// gradients that are 0 in exact arithmetic (the biases of convolutions followed by batch norm)
/// into steps of ±lr, which would differ between backends by more than any real error. (At an
/// SGD rate of 1e-2 sngan-resnet32's five critic steps drive every fake row's features below
/// its last ReLU, so G gets no gradient at all; 1e-3 keeps both networks training.)
fn resnet_preset_config(preset: duel::config::Preset, classes: usize) -> GanConfig {
    let mut tc = duel::config::TrainConfig::preset(preset, "emoji");
    (tc.width, tc.batch, tc.channels) = (Some(2), 4, 3);
    (tc.conditional, tc.classes) = (classes > 0, classes);
    tc.validate().unwrap();
    let mut cfg = tc.gan(3 * 32 * 32, Some((3, 32, 32))).unwrap();
    let sgd = Optimizer::Sgd {
        lr: 1e-3,
        momentum: 0.5,
    };
    (cfg.opt_g, cfg.opt_d) = (sgd, sgd);
    cfg
}

#[test]
fn sngan_resnet32_iterations() {
    use duel::config::Preset::SnganResnet32;
    let cfg = resnet_preset_config(SnganResnet32, 0);
    let d = cfg.d.build("net").unwrap().describe();
    assert!(d.contains("SumPool(4×8×8 → 4)"), "{d}");
    assert_eq!(cfg.k, 5);
    compare(cfg, 1e-5);
    // Conditional: batch norm in G's blocks conditional, a projection head in D.
    let cfg = resnet_preset_config(SnganResnet32, 3);
    let (g, d) = (
        cfg.g.build("net").unwrap().describe(),
        cfg.d.build("net").unwrap().describe(),
    );
    assert_eq!(g.matches("ConditionalBatchNorm").count(), 6, "{g}");
    assert!(
        d.contains("Projection(4 → 1, 3 classes, spectral norm)"),
        "{d}"
    );
    compare(cfg, 1e-5);
}

#[test]
fn sagan32_iterations() {
    let cfg = resnet_preset_config(duel::config::Preset::Sagan32, 0);
    let (g, d) = (
        cfg.g.build("net").unwrap().describe(),
        cfg.d.build("net").unwrap().describe(),
    );
    assert!(g.contains("SelfAttention (spectral norm)(8×16×16"), "{g}");
    assert!(d.contains("SelfAttention (spectral norm)(4×16×16"), "{d}");
    assert_eq!(cfg.k, 1);
    compare(cfg, 1e-5);
}

/// The CPU path's own loops run at the CPU's widest vector level (`duel::cpu::simd`); every
/// level must train to the same bits: a conv GAN with Winograd F(4×4) layers (16 channels, 7×7
/// outputs), im2col layers, batch norm and Adam, two iterations at each level the CPU has.
#[test]
fn the_cpu_path_trains_to_the_same_bits_at_every_vector_level() {
    use duel::cpu::simd::{Level, detected, with_level};
    let mut cfg = conv_config();
    cfg.g = NetSpec {
        input: Shape::image(16, 7, 7),
        layers: vec![
            conv_t(16, 4, 2, 1),
            Layer::BatchNorm,
            Layer::Act(Activation::Relu),
            conv_t(1, 4, 2, 1),
            Layer::Act(Activation::Tanh),
        ],
    };
    cfg.d = NetSpec {
        input: Shape::image(1, 28, 28),
        layers: vec![
            conv(16, 4, 2, 1),
            Layer::Act(Activation::LeakyRelu(0.2)),
            conv(16, 4, 2, 1),
            Layer::Act(Activation::LeakyRelu(0.2)),
            Layer::Linear(1),
        ],
    };
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
    let at = |l: Level| {
        let (g, d, losses) = with_level(l, || run(&mut cpu(), &cfg, 2)).unwrap();
        (bits(g), bits(d), bits(losses))
    };
    let base = at(Level::Baseline);
    let levels = [Level::Avx2, Level::Avx512];
    for l in levels.into_iter().filter(|&l| l <= detected()) {
        let got = at(l);
        assert!(got.0 == base.0, "generator weights differ at {l:?}");
        assert!(got.1 == base.1, "discriminator weights differ at {l:?}");
        assert!(got.2 == base.2, "losses differ at {l:?}");
    }
}

//! Whole training iterations of a small progressive GAN (WGAN-GP, the critic's tangent pass with
//! minibatch std's second-order term) on the GPU and the CPU across 4×4, the 8×8 fade-in and
//! 8×8: the same data, noise and initial weights must give the same weights; and a GPU
//! iteration stays one submit that reads nothing back.

mod common;

use common::{assert_close, cpu, gpu};
use duel::backend::Backend;
use duel::gan::{
    DeviceData, Gan, GanConfig, GeneratorLoss, Loss, Noise, Objective, Schedule, Updates,
};
use duel::layers::progressive::ProSpec;
use duel::model::{Layer, NetSpec, Optimizer, Shape};

fn config() -> GanConfig {
    let spec = ProSpec {
        side: 8,
        channels: 3,
        width: 6,
        phase_images: 16,
        group: 4,
    };
    GanConfig {
        g: NetSpec::flat(12, vec![Layer::ProGenerator(spec)]),
        d: NetSpec {
            input: Shape::image(3, 8, 8),
            layers: vec![Layer::ProDiscriminator(spec)],
        },
        batch: 8,
        k: 1,
        g_loss: GeneratorLoss::NonSaturating,
        noise: Noise::Normal,
        // SGD: Adam divides near-zero critic gradients by their own size and turns rounding
        // differences into whole steps (see gan_steps_gpu_vs_cpu.rs).
        opt_g: Optimizer::Sgd {
            lr: 0.01,
            momentum: 0.5,
        },
        opt_d: Optimizer::Sgd {
            lr: 0.01,
            momentum: 0.5,
        },
        schedule: Schedule::CONSTANT,
        updates: Updates::Alternating,
        seed: 42,
        ema: 0.99,
        pack: 1,
        objective: Objective {
            loss: Loss::Wasserstein,
            gp: 10.0,
            drift: 0.001,
            ..Default::default()
        },
    }
}

fn data(be: &mut dyn Backend, cfg: &GanConfig) -> DeviceData {
    let (n, dim) = (40, cfg.g.build("net").unwrap().output());
    let bytes: Vec<u8> = (0..n * dim).map(|i| (i * 37 % 256) as u8).collect();
    DeviceData::Bytes {
        rows: be.upload_rows_u8(&bytes, n, dim, "data").unwrap(),
        scale: 2.0 / 255.0,
        offset: -1.0,
    }
}

/// Five iterations: images 0 and 8 at 4×4, 16 and 24 fading 8×8 in (α 0, 0.5), 32 at 8×8.
/// G's weights and moving average, D's weights, the losses, and the phase of each iteration.
type Run = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<(usize, f32)>);

fn run(be: &mut dyn Backend, cfg: &GanConfig) -> Run {
    let d = data(be, cfg);
    let mut gan = Gan::new(be, cfg, d, None).unwrap();
    let (mut losses, mut phases) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        phases.push(gan.growth().unwrap());
        gan.train_iteration(be);
        let s = gan.take_stats(be).unwrap();
        losses.extend([s.d_loss, s.g_loss, s.penalty, s.grad_norm]);
    }
    let mut g = be.read(gan.g.params).unwrap();
    g.extend(be.read(gan.g_ema.unwrap()).unwrap());
    (g, be.read(gan.d.params).unwrap(), losses, phases)
}

#[test]
fn progressive_iterations_agree_across_backends() {
    let cfg = config();
    let (g_gpu, d_gpu, l_gpu, phases) = run(&mut gpu(), &cfg);
    let (g_cpu, d_cpu, l_cpu, _) = run(&mut cpu(), &cfg);
    assert_eq!(phases, [(0, 1.0), (0, 1.0), (1, 0.0), (1, 0.5), (1, 1.0)]);
    let init = cfg
        .g
        .build("net")
        .unwrap()
        .init_params(cfg.seed, duel::init::G_STREAM);
    let moved = g_cpu.iter().zip(&init).filter(|(a, b)| a != b).count();
    assert!(moved > init.len() / 2, "training left most of G unchanged");
    assert!(
        l_cpu.chunks(4).all(|s| s[2] > 0.0),
        "the penalty was not reported: {l_cpu:?}"
    );
    assert_close("losses", &l_gpu, &l_cpu, 1e-4, 1e-3);
    assert_close("generator weights", &g_gpu, &g_cpu, 1e-4, 1e-3);
    assert_close("discriminator weights", &d_gpu, &d_cpu, 1e-4, 1e-3);
}

#[test]
fn a_fading_iteration_is_one_submit_and_reads_nothing() {
    let mut be = gpu();
    let cfg = config();
    let d = data(&mut be, &cfg);
    let mut gan = Gan::new(&mut be, &cfg, d, None).unwrap();
    for _ in 0..3 {
        gan.train_iteration(&mut be);
    }
    assert_eq!(gan.growth(), Some((1, 0.5)));
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
}

#[test]
fn each_phase_restarts_the_optimizers_on_the_device() {
    // ProGAN resets Adam at every phase: at the first iteration of a phase, Adam's first moment
    // after the update is (1 − β1)·g exactly (no memory of the old phase) and its bias correction
    // restarts at t = 1; mid-phase the moment keeps its history. The iteration that resets
    // still uploads nothing.
    restarts_at_each_phase(&mut gpu());
    restarts_at_each_phase(&mut cpu());
}

fn restarts_at_each_phase(be: &mut dyn Backend) {
    let mut cfg = config();
    let beta1 = 0.5;
    cfg.opt_d = Optimizer::adam(1e-3, beta1, 0.99);
    cfg.opt_g = cfg.opt_d;
    let d = data(be, &cfg);
    let mut gan = Gan::new(be, &cfg, d, None).unwrap();
    let first_moment_is_fresh = |be: &mut dyn Backend, net: &duel::model::Network| {
        let (m, g) = (be.read(net.opt_m).unwrap(), be.read(net.grads).unwrap());
        let n = net.n_params;
        let fresh = m[..n]
            .iter()
            .zip(&g[..n])
            .all(|(m, g)| (m - (1.0 - beta1) * g).abs() <= 1e-6 * (1.0 + g.abs()));
        let moving = g[..n].iter().filter(|g| g.abs() > 1e-6).count() > n / 4;
        assert!(moving, "too few gradients to tell");
        fresh
    };
    // Iterations 0, 1 at 4×4; 2 starts the 8×8 fade-in; 3 fades on.
    for it in 0..4 {
        let before = be.counters();
        gan.train_iteration(be);
        let after = be.counters();
        assert_eq!(
            after.bytes_written, before.bytes_written,
            "iteration {it} uploaded"
        );
        let fresh = it == 0 || it == 2;
        assert_eq!(
            first_moment_is_fresh(be, &gan.d),
            fresh,
            "D at iteration {it}"
        );
        assert_eq!(
            first_moment_is_fresh(be, &gan.g),
            fresh,
            "G at iteration {it}"
        );
    }
    assert_eq!((gan.d.steps, gan.d.opt_origin), (4, 2));
}

//! Whole training iterations (k D-steps and a G-step) of a small MLP GAN on the GPU and the CPU:
//! the same data, noise, masks and initial weights must give the same weights after them.

mod common;

use common::{assert_close, cpu, gpu};
use duel::backend::{Activation, Backend};
use duel::gan::{DeviceData, Gan, GanConfig, GeneratorLoss, Noise};
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
        seed: 42,
        ema: 0.99,
        pack: 1,
        objective: Default::default(),
    }
}

fn run(be: &mut dyn Backend, cfg: &GanConfig, iterations: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let rows = 101;
    let bytes: Vec<u8> = (0..rows * 65).map(|i| (i * 37 % 256) as u8).collect();
    let rows = be.upload_rows_u8(&bytes, rows, 65, "data").unwrap();
    let data = DeviceData::Bytes {
        rows,
        scale: 2.0 / 255.0,
        offset: -1.0,
    };
    let mut gan = Gan::new(be, cfg, data, None).unwrap();
    let mut losses = Vec::new();
    for _ in 0..iterations {
        gan.train_iteration(be);
        let s = gan.take_stats(be).unwrap();
        losses.extend([s.d_loss, s.g_loss, s.d_real, s.d_fake]);
    }
    let mut g = be.read(gan.g.params).unwrap();
    g.extend(be.read(gan.g_ema.unwrap()).unwrap());
    (g, be.read(gan.d.params).unwrap(), losses)
}

fn compare(cfg: GanConfig, atol: f32) {
    let iterations = 3;
    let (g_gpu, d_gpu, l_gpu) = run(&mut gpu(), &cfg, iterations);
    let (g_cpu, d_cpu, l_cpu) = run(&mut cpu(), &cfg, iterations);
    let init = cfg.g.init_params(cfg.seed, 0);
    let moved = g_cpu.iter().zip(&init).filter(|(a, b)| a != b).count();
    assert!(
        moved > init.len() / 2,
        "training left G's weights unchanged"
    );
    let (raw, avg) = g_cpu.split_at(init.len());
    assert_ne!(raw, avg, "the moving average is a copy of the weights");
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

#[test]
fn an_iteration_is_one_submit_and_reads_nothing() {
    let mut be = gpu();
    let cfg = config(
        Optimizer::adam(1e-3, 0.5, 0.999),
        GeneratorLoss::NonSaturating,
        Noise::Normal,
    );
    let bytes = vec![7u8; 40 * 65];
    let rows = be.upload_rows_u8(&bytes, 40, 65, "data").unwrap();
    let data = DeviceData::Bytes {
        rows,
        scale: 1.0 / 255.0,
        offset: 0.0,
    };
    let mut gan = Gan::new(&mut be, &cfg, data, None).unwrap();
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

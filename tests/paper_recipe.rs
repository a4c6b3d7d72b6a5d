//! The paper code's training recipe on the CPU backend: simultaneous updates take G's and D's
//! gradients at the same weights, and the learning-rate decay and momentum ramp are what the
//! schedule's formulas give at every update — in an unbroken run and across a resume, which ends
//! with bit-identical weights.

mod common;

use common::{assert_close, cpu};
use duel::backend::{Activation, Backend, GanLossKind};
use duel::gan::{
    DeviceData, Gan, GanConfig, GeneratorLoss, MomentumRamp, Noise, Schedule, Updates,
};
use duel::kernels::gan_loss::{LossArgs, Record, gan_loss};
use duel::model::{Backprop, Layer, NetSpec, Network, Optimizer, Shape};
use duel::rng::{RngKey, stream};

/// Training images in the small model's set; an epoch is ROWS / BATCH = 4 D-updates.
const ROWS: usize = 40;
const BATCH: usize = 10;

fn config(updates: Updates, schedule: Schedule, dropout: bool) -> GanConfig {
    let mut d = Vec::new();
    if dropout {
        d.push(Layer::Dropout(0.8));
    }
    d.extend([Layer::Linear(30), Layer::Maxout(3)]);
    if dropout {
        d.push(Layer::Dropout(0.5));
    }
    d.push(Layer::Linear(1));
    GanConfig {
        g: NetSpec {
            input: Shape::flat(10),
            layers: vec![
                Layer::Linear(33),
                Layer::Act(Activation::Relu),
                Layer::Linear(65),
                Layer::Act(Activation::Sigmoid),
            ],
        },
        d: NetSpec {
            input: Shape::flat(65),
            layers: d,
        },
        batch: BATCH,
        k: 1,
        g_loss: GeneratorLoss::NonSaturating,
        noise: Noise::UniformUnitVariance,
        opt_g: Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.5,
        },
        // Large, so that a G-gradient taken through the updated D would be visibly different.
        opt_d: Optimizer::Sgd {
            lr: 0.5,
            momentum: 0.5,
        },
        schedule,
        updates,
        seed: 9,
        ema: 0.0,
        pack: 1,
        objective: Default::default(),
    }
}

fn gan(be: &mut dyn Backend, cfg: &GanConfig) -> Gan {
    let bytes: Vec<u8> = (0..ROWS * 65).map(|i| (i * 53 % 256) as u8).collect();
    let rows = be.upload_rows_u8(&bytes, ROWS, 65, "data").unwrap();
    let data = DeviceData::Bytes {
        rows,
        scale: 1.0 / 255.0,
        offset: 0.0,
    };
    Gan::new(be, cfg, data, None).unwrap()
}

fn read(be: &mut dyn Backend, net: &Network, t: duel::Tensor) -> Vec<f32> {
    be.read(net.unpadded(t)).unwrap()
}

/// G's gradient of −log D(G(z)) with D's weights `d_params`, for the noise at `noise_counter`.
fn g_gradient(cfg: &GanConfig, g_params: &[f32], d_params: &[f32], noise_counter: u64) -> Vec<f32> {
    let mut be = cpu();
    let (m, zdim) = (cfg.batch, cfg.g.input.len());
    let mut g = Network::new(&mut be, &cfg.g, m, g_params, 0, "g").unwrap();
    let mut d = Network::new(&mut be, &cfg.d, m, d_params, 0, "d").unwrap();
    let z = be.alloc(m * zdim, "z").unwrap();
    let key = RngKey::new(cfg.seed, stream::NOISE, noise_counter);
    cfg.noise.draw(&mut be, z, m * zdim, key);
    let fake = g.forward(&mut be, z, m, true, None);
    let logits = d.forward(&mut be, fake, m, true, None);
    let (dl, stats) = (be.alloc(m, "dl").unwrap(), be.alloc(3, "stats").unwrap());
    let kind = GanLossKind::GeneratorNonSaturating;
    gan_loss(
        &mut be,
        kind,
        LossArgs::generated(logits, dl, m, stats),
        Record::Replace,
    );
    let dx = d.backward(&mut be, dl, Backprop::Input).unwrap();
    g.backward(&mut be, dx, Backprop::Weights);
    read(&mut be, &g, g.grads)
}

#[test]
fn simultaneous_updates_take_both_gradients_at_the_same_weights() {
    // Without dropout, so the reference below needs no masks.
    let cfg = config(Updates::Simultaneous, Schedule::CONSTANT, false);
    let mut be = cpu();
    let mut sim = gan(&mut be, &cfg);
    let (g0, d0) = (
        read(&mut be, &sim.g, sim.g.params),
        read(&mut be, &sim.d, sim.d.params),
    );
    let noise = sim.rng.noise;
    sim.train_iteration(&mut be);
    let got = read(&mut be, &sim.g, sim.g.grads);
    let d1 = read(&mut be, &sim.d, sim.d.params);

    assert_close(
        "G's gradient",
        &got,
        &g_gradient(&cfg, &g0, &d0, noise),
        1e-7,
        1e-4,
    );
    // Through the updated D the gradient is not the same, so the check above can tell.
    let through_updated = g_gradient(&cfg, &g0, &d1, noise);
    let differ = got
        .iter()
        .zip(&through_updated)
        .filter(|(a, b)| (*a - *b).abs() > 1e-7 + 1e-3 * b.abs())
        .count();
    assert!(
        differ > got.len() / 4,
        "D's update barely moved G's gradient"
    );

    // D's update is exactly a plain D-step's from the same state.
    let alt_cfg = GanConfig {
        updates: Updates::Alternating,
        ..cfg.clone()
    };
    let mut be2 = cpu();
    let mut alt = gan(&mut be2, &alt_cfg);
    alt.discriminator_step(&mut be2);
    assert_eq!(d1, read(&mut be2, &alt.d, alt.d.params));
}

#[test]
fn the_generator_loss_is_taken_on_the_discriminators_own_outputs() {
    // One fake sample per batch: D's mean output on it, from the D-loss pass with its dropout
    // masks, must be exactly the sample G's loss −log D(G(z)) was computed on.
    let mut cfg = config(Updates::Simultaneous, Schedule::CONSTANT, true);
    cfg.batch = 1;
    let mut be = cpu();
    let mut sim = gan(&mut be, &cfg);
    for _ in 0..5 {
        sim.train_iteration(&mut be);
        let s = sim.take_stats(&mut be).unwrap();
        let want = -(s.d_fake as f64).ln();
        assert!(
            (s.g_loss as f64 - want).abs() < 1e-5 * want.max(1.0),
            "G loss {} on D(G(z)) = {} (−log = {want})",
            s.g_loss,
            s.d_fake
        );
    }
}

/// The paper's schedule, compressed so it plays out in a few dozen updates: the learning rate
/// divided by 1.1 per update down to 0.03 (reached at update 13 for G's 0.1 and 30 for D's
/// 0.5), and the momentum 0.5 → 0.7 between epochs 2 and 7 (an epoch is 4 updates).
fn fast_schedule() -> Schedule {
    Schedule {
        lr_decay: 1.1,
        lr_min: 0.03,
        momentum: Some(MomentumRamp {
            final_momentum: 0.7,
            start: 2,
            saturate: 7,
        }),
    }
}

/// What the schedule's formulas give for update t (0-based) of a network whose initial learning
/// rate is lr0, in epoch ⌊t·batch / rows⌋ + 1, written out independently of the library.
fn expected(lr0: f32, t: u64) -> (f64, f64) {
    let lr = (lr0 as f64 / 1.1f64.powi(t as i32)).max(0.03f32 as f64);
    let epoch = (t as usize * BATCH / ROWS + 1) as f64;
    let alpha = ((epoch - 2.0) / (7.0 - 2.0)).clamp(0.0, 1.0);
    (lr, 0.5 + alpha * (0.7 - 0.5))
}

fn sgd(opt: Optimizer) -> (f32, f32) {
    match opt {
        Optimizer::Sgd { lr, momentum } => (lr, momentum),
        other => panic!("expected SGD, got {other:?}"),
    }
}

/// Runs `iterations` from the state of `gan`, checking before every iteration that the next
/// updates use the scheduled learning rate and momentum, and after it that the velocity and
/// weights moved by exactly v ← μ·v − lr·g, p ← p + v with those values.
fn run_checked(be: &mut dyn Backend, gan: &mut Gan, iterations: u64, log: &mut Vec<[f32; 4]>) {
    for _ in 0..iterations {
        let t = gan.iteration;
        let (opt_d, opt_g) = gan.optimizers_now();
        let ((lr_d, mu_d), (lr_g, mu_g)) = (sgd(opt_d), sgd(opt_g));
        for (what, got, want) in [
            ("D's lr", lr_d, expected(0.5, t).0),
            ("D's momentum", mu_d, expected(0.5, t).1),
            ("G's lr", lr_g, expected(0.1, t).0),
            ("G's momentum", mu_g, expected(0.1, t).1),
        ] {
            assert!(
                (got as f64 - want).abs() <= 1e-6 * want,
                "update {t}: {what} {got}, the schedule gives {want}"
            );
        }
        log.push([lr_d, mu_d, lr_g, mu_g]);
        let before: Vec<_> = [&gan.d, &gan.g]
            .iter()
            .map(|n| (read(be, n, n.params), read(be, n, n.opt_m)))
            .collect();
        gan.train_iteration(be);
        for ((net, (p0, v0)), (lr, mu)) in [&gan.d, &gan.g]
            .iter()
            .zip(before)
            .zip([(lr_d, mu_d), (lr_g, mu_g)])
        {
            let (p1, v1, g) = (
                read(be, net, net.params),
                read(be, net, net.opt_m),
                read(be, net, net.grads),
            );
            for i in 0..g.len() {
                let v = mu * v0[i] - lr * g[i];
                assert_eq!(v1[i], v, "update {t}: velocity {i}");
                assert_eq!(p1[i], p0[i] + v, "update {t}: weight {i}");
            }
        }
    }
}

#[test]
fn schedules_follow_their_formulas_through_a_resume() {
    let cfg = config(Updates::Simultaneous, fast_schedule(), true);
    let total = 36; // 9 epochs: the ramp completes and the learning rates reach their floors

    let mut be = cpu();
    let mut whole = gan(&mut be, &cfg);
    let mut log_whole = Vec::new();
    run_checked(&mut be, &mut whole, total, &mut log_whole);
    let (lr_d, mu_d, lr_g, mu_g) = {
        let l = log_whole.last().unwrap();
        (l[0], l[1], l[2], l[3])
    };
    assert_eq!(
        (lr_d, lr_g),
        (0.03, 0.03),
        "both learning rates at the floor by the end"
    );
    assert_eq!(
        (mu_d, mu_g),
        (0.7, 0.7),
        "the momentum ramp complete by the end"
    );
    assert!(
        log_whole[13][1] > 0.5 && log_whole[13][1] < 0.7,
        "mid-ramp at update 13"
    );

    // Stop mid-ramp and mid-decay (update 13, epoch 4), restore into a fresh model, go on.
    let mut be2 = cpu();
    let mut first = gan(&mut be2, &cfg);
    let mut log_resumed = Vec::new();
    run_checked(&mut be2, &mut first, 13, &mut log_resumed);
    let state = first.state(&mut be2).unwrap();
    let mut be3 = cpu();
    let mut second = gan(&mut be3, &cfg);
    second.restore(&mut be3, &state).unwrap();
    run_checked(&mut be3, &mut second, total - 13, &mut log_resumed);

    assert_eq!(
        log_resumed, log_whole,
        "the resumed run's learning rates and momenta"
    );
    assert_eq!(
        second.state(&mut be3).unwrap(),
        whole.state(&mut be).unwrap(),
        "the resumed run's weights, optimizer state and counters"
    );
}

//! Batch norm, upsampling and reshapes inside networks and GANs: running statistics against a
//! host computation on both backends, evaluation mode, standing statistics, views writing into
//! a caller's buffer, the tangent pass refusing batch norm, and a GAN with batch norm in both
//! networks that resumes exactly, samples without disturbing training, and agrees between
//! backends.

mod common;

use common::{assert_close, cpu, data, gpu};
use duel::backend::{Activation, Backend};
use duel::gan::{
    DeviceData, Gan, GanConfig, GanState, GeneratorLoss, Noise, STANDING_SAMPLES, Schedule, Updates,
};
use duel::model::{Layer, NetSpec, Network, Optimizer, Shape};
use duel::rng::{self, RngKey};

const EPS: f64 = 1e-5;

/// Per channel (mean, biased variance) of x [rows, c, s], in f64.
fn moments(x: &[f32], rows: usize, c: usize, s: usize) -> Vec<(f64, f64)> {
    (0..c)
        .map(|ch| {
            let vals: Vec<f64> = (0..rows)
                .flat_map(|r| (0..s).map(move |k| (r * c + ch) * s + k))
                .map(|i| x[i] as f64)
                .collect();
            let n = vals.len() as f64;
            let mean = vals.iter().sum::<f64>() / n;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            (mean, var)
        })
        .collect()
}

/// y = (x − mean)/sqrt(var + eps)·γ + β per channel.
fn normalise(x: &[f32], c: usize, s: usize, stats: &[(f64, f64)], p: &[f32]) -> Vec<f32> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = (i / s) % c;
            let (mean, var) = stats[ch];
            ((v as f64 - mean) / (var + EPS).sqrt() * p[ch] as f64 + p[c + ch] as f64) as f32
        })
        .collect()
}

/// Training forwards update the running statistics as PyTorch does (momentum 0.1, unbiased
/// variance, a batch count); evaluation normalises with them; standing statistics average
/// batches with equal weights.
fn running_statistics_on(be: &mut dyn Backend) {
    let (rows, c, s) = (5, 3, 6);
    let spec = NetSpec {
        input: Shape::image(c, 2, 3),
        layers: vec![Layer::BatchNorm],
    };
    // γ and β away from 1 and 0.
    let params = vec![0.5, 1.5, -2.0, 0.25, -1.0, 3.0];
    let mut net = Network::new(be, &spec, rows, &params, 1, "bn").unwrap();
    let x = be.alloc(rows * c * s, "x").unwrap();
    let batches: Vec<Vec<f32>> = (0..3)
        .map(|k| {
            let mut v = data(100 + k, rows * c * s, -2.0, 2.0);
            // Channels with different means and spreads.
            for (i, e) in v.iter_mut().enumerate() {
                let ch = (i / s) % c;
                *e = *e * (ch as f32 + 0.5) + ch as f32 - 1.0;
            }
            v
        })
        .collect();
    let unbiased = |var: f64| var * (rows * s) as f64 / (rows * s - 1) as f64;
    let (mut rm, mut rv) = (vec![0.0f64; c], vec![1.0f64; c]);
    let mut last = Vec::new();
    for b in &batches {
        be.write(x, b);
        let y = net.forward(be, x, rows, true, None);
        let m = moments(b, rows, c, s);
        for ch in 0..c {
            rm[ch] = 0.9 * rm[ch] + 0.1 * m[ch].0;
            rv[ch] = 0.9 * rv[ch] + 0.1 * unbiased(m[ch].1);
        }
        last = be.read(y).unwrap();
        assert_close(
            "training output (batch statistics)",
            &last,
            &normalise(b, c, s, &m, &params),
            1e-5,
            1e-5,
        );
    }
    assert!(last.iter().any(|v| v.abs() > 0.1));
    let host_state = |rm: &[f64], rv: &[f64], count: f32| {
        let mut v: Vec<f32> = rm.iter().chain(rv).map(|&x| x as f32).collect();
        v.push(count);
        v
    };
    let state = be.read(net.state.slice(0, net.n_state)).unwrap();
    assert_close(
        "running statistics",
        &state,
        &host_state(&rm, &rv, 3.0),
        1e-6,
        1e-5,
    );

    // Evaluation: the running statistics, which stay as they are.
    let fresh = data(200, rows * c * s, -1.0, 3.0);
    be.write(x, &fresh);
    let y = net.forward(be, x, rows, false, None);
    let running: Vec<(f64, f64)> = rm.iter().zip(&rv).map(|(&m, &v)| (m, v)).collect();
    assert_close(
        "evaluation output (running statistics)",
        &be.read(y).unwrap(),
        &normalise(&fresh, c, s, &running, &params),
        1e-5,
        1e-5,
    );
    let after = be.read(net.state.slice(0, net.n_state)).unwrap();
    assert_eq!(after, state, "an evaluation forward changed the statistics");

    // Standing statistics: the plain average of the batches' means and unbiased variances,
    // counted from 1; then the moving average resumes from them.
    net.set_standing_statistics(true);
    let (mut sm, mut sv) = (vec![0.0f64; c], vec![0.0f64; c]);
    for b in &batches {
        be.write(x, b);
        net.forward(be, x, rows, true, None);
        for (ch, (mean, var)) in moments(b, rows, c, s).into_iter().enumerate() {
            sm[ch] += mean / batches.len() as f64;
            sv[ch] += unbiased(var) / batches.len() as f64;
        }
    }
    net.set_standing_statistics(false);
    let state = be.read(net.state.slice(0, net.n_state)).unwrap();
    assert_close(
        "standing statistics",
        &state,
        &host_state(&sm, &sv, 3.0),
        1e-6,
        1e-5,
    );
    be.write(x, &batches[0]);
    net.forward(be, x, rows, true, None);
    let m = moments(&batches[0], rows, c, s);
    for ch in 0..c {
        sm[ch] = 0.9 * sm[ch] + 0.1 * m[ch].0;
        sv[ch] = 0.9 * sv[ch] + 0.1 * unbiased(m[ch].1);
    }
    let state = be.read(net.state.slice(0, net.n_state)).unwrap();
    assert_close(
        "moving average after standing statistics",
        &state,
        &host_state(&sm, &sv, 4.0),
        1e-6,
        1e-5,
    );
}

#[test]
fn running_statistics_match_pytorch_on_cpu() {
    running_statistics_on(&mut cpu());
}

#[test]
fn running_statistics_match_pytorch_on_gpu() {
    running_statistics_on(&mut gpu());
}

#[test]
fn a_trailing_view_writes_into_the_callers_buffer() {
    // A generator ending in an unflatten, writing straight into D's input buffer.
    let spec = NetSpec::flat(
        4,
        vec![
            Layer::Linear(12),
            Layer::Act(Activation::Tanh),
            Layer::Reshape(Shape::image(3, 2, 2)),
        ],
    );
    let mut be = cpu();
    let params = spec.build("net").unwrap().init_params(2, 0);
    let mut net = Network::new(&mut be, &spec, 3, &params, 1, "g").unwrap();
    let x = be.upload(&data(3, 12, -1.0, 1.0), "x").unwrap();
    let own = net.forward(&mut be, x, 3, true, None);
    let own = be.read(own).unwrap();
    let out = be.alloc(36, "out").unwrap();
    let got = net.forward(&mut be, x, 3, true, Some(out));
    assert_eq!(got, out);
    assert_eq!(be.read(out).unwrap(), own);
    assert!(own.iter().any(|v| v.abs() > 0.01));
}

#[test]
fn a_gradient_penalty_cannot_go_through_batch_norm() {
    let spec = NetSpec::flat(
        3,
        vec![Layer::Linear(4), Layer::BatchNorm, Layer::Linear(1)],
    );
    let mut be = cpu();
    let mut net = Network::new(
        &mut be,
        &spec,
        4,
        &spec.build("net").unwrap().init_params(1, 0),
        1,
        "critic",
    )
    .unwrap();
    let x = be.upload(&data(4, 12, -1.0, 1.0), "x").unwrap();
    net.forward(&mut be, x, 4, true, None);
    let dout = be.upload(&[1.0; 4], "dout").unwrap();
    let v = net
        .backward(&mut be, dout, duel::model::Backprop::Both)
        .unwrap();
    let scratch = [be.alloc(16, "a").unwrap(), be.alloc(16, "b").unwrap()];
    let err = net.tangent(&mut be, v, scratch).unwrap_err().to_string();
    assert!(
        err.contains("BatchNorm1d(4)") && err.contains("gradient penalty must not use batch norm"),
        "{err}"
    );
}

// ---- a GAN with batch norm in both networks ---------------------------------------------------

const Z: usize = 6;
const DIM: usize = 10;
const HIDDEN: usize = 16;

fn config_with(opt: Optimizer) -> GanConfig {
    GanConfig {
        g: NetSpec::flat(
            Z,
            vec![
                Layer::Linear(HIDDEN),
                Layer::BatchNorm,
                Layer::Act(Activation::Relu),
                Layer::Linear(DIM),
                Layer::Act(Activation::Tanh),
            ],
        ),
        d: NetSpec::flat(
            DIM,
            vec![
                Layer::Linear(12),
                Layer::BatchNorm,
                Layer::Act(Activation::LeakyRelu(0.2)),
                Layer::Linear(1),
            ],
        ),
        batch: 8,
        k: 1,
        g_loss: GeneratorLoss::NonSaturating,
        noise: Noise::Uniform,
        opt_g: opt,
        opt_d: opt,
        seed: 7,
        ema: 0.9,
        pack: 1,
        objective: Default::default(),
        schedule: Schedule::CONSTANT,
        updates: Updates::Alternating,
    }
}

fn config() -> GanConfig {
    config_with(Optimizer::adam(1e-3, 0.5, 0.999))
}

fn gan(be: &mut dyn Backend) -> Gan {
    gan_with(be, &config())
}

fn gan_with(be: &mut dyn Backend, cfg: &GanConfig) -> Gan {
    let rows = 50;
    let bytes: Vec<u8> = (0..rows * DIM).map(|i| (i * 53 % 256) as u8).collect();
    let rows = be.upload_rows_u8(&bytes, rows, DIM, "data").unwrap();
    let data = DeviceData::Bytes {
        rows,
        scale: 2.0 / 255.0,
        offset: -1.0,
    };
    Gan::new(be, cfg, data, None).unwrap()
}

fn train(be: &mut dyn Backend, gan: &mut Gan, iterations: usize, sample_between: bool) {
    for _ in 0..iterations {
        gan.train_iteration(be);
        if sample_between {
            gan.generate(be, 5, gan.sample_key()).unwrap();
        }
    }
}

/// The batch-count word of a network's state (G and D here have one batch norm each, C wide).
fn batches(state: &[f32], c: usize) -> f32 {
    state[2 * c]
}

#[test]
fn a_gan_with_batch_norm_resumes_exactly() {
    let mut be = cpu();
    let mut whole = gan(&mut be);
    train(&mut be, &mut whole, 6, false);
    let want = whole.state(&mut be).unwrap();
    // Every training forward counted: G runs in the D-step and the G-step, and so does D.
    assert_eq!(batches(&want.g.state, HIDDEN), 12.0);
    assert_eq!(batches(&want.d.state, 12), 12.0);

    let mut first = gan(&mut be);
    train(&mut be, &mut first, 3, false);
    let saved: GanState = first.state(&mut be).unwrap();
    let mut resumed = gan(&mut be);
    resumed.restore(&mut be, &saved).unwrap();
    train(&mut be, &mut resumed, 3, false);
    let got = resumed.state(&mut be).unwrap();
    assert!(
        got == want,
        "the resumed run's state differs from the uninterrupted one's"
    );
}

#[test]
fn sampling_leaves_training_untouched() {
    let mut be = cpu();
    let mut plain = gan(&mut be);
    train(&mut be, &mut plain, 4, false);
    let mut sampled = gan(&mut be);
    train(&mut be, &mut sampled, 4, true);
    assert!(
        plain.state(&mut be).unwrap() == sampled.state(&mut be).unwrap(),
        "drawing samples between iterations changed the training"
    );
    let key = plain.sample_key();
    let a = plain.generate(&mut be, 7, key).unwrap();
    let b = plain.generate(&mut be, 7, key).unwrap();
    assert_eq!(a, b, "the same noise gave different samples");
    // Evaluation mode: a sample does not depend on the others drawn with it.
    let three = plain.generate(&mut be, 3, key).unwrap();
    assert_eq!(three[..], a[..3 * DIM]);
}

#[test]
fn the_average_samples_with_its_own_statistics() {
    let mut be = cpu();
    let mut g = gan(&mut be);
    train(&mut be, &mut g, 5, false);
    let s = g.state(&mut be).unwrap();
    let (avg, stats) = (s.g_ema.unwrap(), s.g_ema_state.unwrap());
    // On the host: the averaged weights' first layer over the standing noise, batch by batch,
    // and the plain average of each batch's mean and unbiased variance.
    let m = config().batch;
    let n_batches = STANDING_SAMPLES.div_ceil(m);
    let (w, b) = avg.split_at(Z * HIDDEN); // w stored [in, out]
    let (mut mean, mut var) = (vec![0.0f64; HIDDEN], vec![0.0f64; HIDDEN]);
    for k in 0..n_batches {
        let key = RngKey::new(7, rng::stream::STANDING, (k * m * Z) as u64);
        let z: Vec<f32> = (0..m * Z)
            .map(|i| rng::uniform(key, i as u64, -1.0, 1.0))
            .collect();
        let h: Vec<f32> = (0..m)
            .flat_map(|r| {
                let z = &z[r * Z..(r + 1) * Z];
                (0..HIDDEN)
                    .map(move |o| (0..Z).map(|i| z[i] * w[i * HIDDEN + o]).sum::<f32>() + b[o])
            })
            .collect();
        for (o, (mu, v)) in moments(&h, m, HIDDEN, 1).into_iter().enumerate() {
            mean[o] += mu / n_batches as f64;
            var[o] += v * m as f64 / (m - 1) as f64 / n_batches as f64;
        }
    }
    let want: Vec<f32> = mean.iter().chain(&var).map(|&v| v as f32).collect();
    assert_close(
        "standing statistics of the average",
        &stats[..2 * HIDDEN],
        &want,
        1e-5,
        1e-4,
    );
    assert_eq!(batches(&stats, HIDDEN), n_batches as f32);
    // The raw weights' running statistics are another thing: they describe other weights.
    assert_ne!(stats[..2 * HIDDEN], s.g.state[..2 * HIDDEN]);

    // The saved state reproduces the run's samples as `duel sample` rebuilds G: the averaged
    // weights and these statistics, in evaluation mode, on the same noise.
    let key = g.sample_key();
    let want = g.generate(&mut be, m, key).unwrap();
    let mut net = Network::new(&mut be, &config().g, m, &avg, 1, "sampler").unwrap();
    be.write(net.state.slice(0, net.n_state), &stats);
    let z: Vec<f32> = (0..m * Z)
        .map(|i| rng::uniform(key, i as u64, -1.0, 1.0))
        .collect();
    let zt = be.upload(&z, "z").unwrap();
    let y = net.forward(&mut be, zt, m, false, None);
    assert_eq!(be.read(y).unwrap(), want);
}

#[test]
fn a_gan_with_batch_norm_agrees_between_gpu_and_cpu() {
    // SGD: Adam would turn the float noise in the zero gradient of the bias before a batch
    // norm (which the normalisation cancels) into steps of ±lr that differ between backends.
    let cfg = config_with(Optimizer::Sgd {
        lr: 0.05,
        momentum: 0.5,
    });
    let run = |be: &mut dyn Backend| {
        let mut g = gan_with(be, &cfg);
        train(be, &mut g, 3, false);
        g.state(be).unwrap()
    };
    let (c, g) = (run(&mut cpu()), run(&mut gpu()));
    assert_close("G weights", &g.g.params, &c.g.params, 1e-5, 1e-3);
    assert_close("D weights", &g.d.params, &c.d.params, 1e-5, 1e-3);
    assert_close("G statistics", &g.g.state, &c.g.state, 1e-5, 1e-3);
    assert_close("D statistics", &g.d.state, &c.d.state, 1e-5, 1e-3);
    let (ge, ce) = (g.g_ema_state.unwrap(), c.g_ema_state.unwrap());
    assert_close("the average's standing statistics", &ge, &ce, 1e-5, 1e-3);
}

//! Training the feature network: Adam on softmax cross-entropy over the embedded training digits
//! (7,000; the last 1,000 of the 8,000 are held out and never seen), each digit shifted by up to
//! ±2 pixels at random every epoch, the learning rate cosine-annealed to zero.
//!
//! Everything random (initialisation, batch order, shifts, dropout) comes from the counter-based
//! RNG keyed by the seed, so a run is a pure function of its options. On the CPU path it runs in
//! a pool of `THREADS` threads whatever the machine's core count: the convolutions' weight
//! gradients are summed over one batch slice per thread, so the thread count fixes the rounding,
//! and with it fixed the weights come out bit for bit the same on any CPU of the same SIMD
//! family (the `gemm` crate picks AVX-512, AVX2 or scalar kernels at run time).

use super::weights::Weights;
use super::{CLASSES, PIXELS, SIDE, argmax_rows, head_spec, trunk_spec, unit_rows};
use crate::backend::{Backend, WriteMode};
use crate::data::dataset::embedded_mnist;
use crate::kernels::cross_entropy::cross_entropy;
use crate::model::Backprop;
use crate::model::{Network, Optimizer};
use crate::rng::{self, RngKey};
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::time::Instant;

/// Threads of the CPU path's pool while training (the rounding depends on it).
pub const THREADS: usize = 2;

#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch: usize,
    /// Adam's initial learning rate, cosine-annealed to 0 over the run.
    pub lr: f32,
    pub seed: u64,
    /// Each digit moves by a whole number of pixels in [−shift, shift] on each axis, each epoch.
    pub shift: usize,
    /// Train on the first N training digits only (the short determinism test).
    pub limit: Option<usize>,
}

impl Default for TrainOptions {
    /// The shipped network's options.
    fn default() -> Self {
        Self {
            epochs: 20,
            batch: 64,
            lr: 2e-3,
            seed: 1,
            shift: 2,
            limit: None,
        }
    }
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    pub loss: f64,
    /// On the (shifted) training digits, in training mode.
    pub train_accuracy: f64,
    pub heldout_accuracy: f64,
    pub seconds: f64,
}

/// Keys of the run's random streams: each epoch's batch order, shifts and the initialisation.
fn key(seed: u64, what: u64, epoch: usize) -> RngKey {
    RngKey::new(
        seed,
        rng::stream::FEATURES,
        (what << 48) | ((epoch as u64) << 32),
    )
}

/// A permutation of 0..n (Fisher–Yates) from `key`.
fn permutation(n: usize, key: RngKey) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng::index(key, i as u64, (i + 1) as u32) as usize;
        p.swap(i, j);
    }
    p
}

/// `src` (SIDE × SIDE) moved by (dx, dy) pixels into `dst`, zeros where nothing moves in.
pub fn shift_digit(src: &[f32], dst: &mut [f32], dx: isize, dy: isize) {
    let s = SIDE as isize;
    for y in 0..s {
        for x in 0..s {
            let (sx, sy) = (x - dx, y - dy);
            dst[(y * s + x) as usize] = if (0..s).contains(&sx) && (0..s).contains(&sy) {
                src[(sy * s + sx) as usize]
            } else {
                0.0
            };
        }
    }
}

/// Accuracy of the networks (evaluation mode) on `digits` with `labels`.
fn evaluate(
    be: &mut dyn Backend,
    nets: (&mut Network, &mut Network),
    x: crate::backend::Tensor,
    digits: &[f32],
    labels: &[u32],
) -> Result<f64> {
    let (trunk, head) = nets;
    let n = labels.len();
    let mut predicted = Vec::with_capacity(n);
    for start in (0..n).step_by(trunk.max_batch) {
        let rows = (n - start).min(trunk.max_batch);
        let xs = x.slice(0, rows * PIXELS);
        be.write(xs, &digits[start * PIXELS..(start + rows) * PIXELS]);
        let h = trunk.forward(be, xs, rows, false, None);
        let y = head.forward(be, h, rows, false, None);
        predicted.extend(argmax_rows(&be.read(y)?, CLASSES));
    }
    Ok(super::accuracy(&predicted, labels))
}

/// Trains the feature network on `be`, calling `on_epoch` after each epoch.
pub fn train(
    be: &mut dyn Backend,
    opts: &TrainOptions,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<Weights> {
    if opts.epochs == 0 || opts.batch == 0 {
        bail!("--epochs and --batch must be at least 1");
    }
    if opts.shift >= SIDE / 2 {
        bail!(
            "--shift {} would move digits out of the image; use 0 to 13",
            opts.shift
        );
    }
    let (train_set, heldout) = embedded_mnist()?;
    let n = opts.limit.unwrap_or(train_set.n).min(train_set.n);
    if n < opts.batch {
        bail!(
            "{n} training digits are fewer than one batch of {}",
            opts.batch
        );
    }
    let digits = unit_rows(&train_set);
    let labels = train_set
        .labels
        .clone()
        .expect("the embedded digits have labels");
    let held_digits = unit_rows(&heldout);
    let held_labels = heldout
        .labels
        .clone()
        .expect("the embedded digits have labels");

    let (ts, hs) = (
        trunk_spec().build("feature trunk")?,
        head_spec().build("feature head")?,
    );
    let (t_init, h_init) = (
        ts.init_params(opts.seed, 0),
        hs.init_params(opts.seed, 1 << 48),
    );
    let mut trunk = Network::from_built(be, ts, opts.batch, &t_init, opts.seed)?;
    let mut head = Network::from_built(be, hs, opts.batch, &h_init, opts.seed ^ 0x5eed)?;
    let x = be.alloc(opts.batch * PIXELS, "digits")?;
    let y = be.alloc(opts.batch, "labels")?;
    let grad = be.alloc(opts.batch * CLASSES, "logit gradient")?;
    let stats = be.alloc(2, "loss and hits")?;

    let batches = n.div_ceil(opts.batch);
    let total = (opts.epochs * batches) as f64;
    let mut host_x = vec![0.0f32; opts.batch * PIXELS];
    let mut host_y = vec![0u32; opts.batch];
    let mut step = 0usize;
    for epoch in 0..opts.epochs {
        let started = Instant::now();
        let order = permutation(n, key(opts.seed, 1, epoch));
        let shifts = key(opts.seed, 2, epoch);
        let span = 2 * opts.shift as u32 + 1;
        be.write(stats, &[0.0, 0.0]);
        for (b, chunk) in order.chunks(opts.batch).enumerate() {
            let rows = chunk.len();
            for (r, &i) in chunk.iter().enumerate() {
                let at = (b * opts.batch + r) as u64;
                let dx = rng::index(shifts, 2 * at, span) as isize - opts.shift as isize;
                let dy = rng::index(shifts, 2 * at + 1, span) as isize - opts.shift as isize;
                let src = &digits[i * PIXELS..(i + 1) * PIXELS];
                shift_digit(src, &mut host_x[r * PIXELS..(r + 1) * PIXELS], dx, dy);
                host_y[r] = labels[i];
            }
            let (xs, ys) = (x.slice(0, rows * PIXELS), y.slice(0, rows));
            be.write(xs, &host_x[..rows * PIXELS]);
            be.write_u32(ys, &host_y[..rows]);
            let h = trunk.forward(be, xs, rows, true, None);
            let logits = head.forward(be, h, rows, true, None);
            let g = grad.slice(0, rows * CLASSES);
            let summed = (stats, WriteMode::Accumulate);
            cross_entropy(be, g, logits, ys, summed, rows, CLASSES);
            let dh = head
                .backward(be, g, Backprop::Both)
                .expect("asked for the input gradient");
            trunk.backward(be, dh, Backprop::Weights);
            let lr =
                opts.lr as f64 * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total).cos());
            let opt = Optimizer::Adam {
                lr: lr as f32,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            };
            trunk.update(be, &opt);
            head.update(be, &opt);
            step += 1;
        }
        let s = be.read(stats)?;
        if !s[0].is_finite() {
            bail!(
                "epoch {}: the loss became NaN or infinite; lower --lr (now {})",
                epoch + 1,
                opts.lr
            );
        }
        let heldout_accuracy =
            evaluate(be, (&mut trunk, &mut head), x, &held_digits, &held_labels)?;
        on_epoch(&EpochReport {
            epoch: epoch + 1,
            loss: s[0] as f64 / batches as f64,
            train_accuracy: s[1] as f64 / n as f64,
            heldout_accuracy,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let heldout_accuracy = evaluate(be, (&mut trunk, &mut head), x, &held_digits, &held_labels)?;
    let info = BTreeMap::from([
        ("epochs".into(), opts.epochs.to_string()),
        ("batch".into(), opts.batch.to_string()),
        ("lr".into(), opts.lr.to_string()),
        ("seed".into(), opts.seed.to_string()),
        ("shift".into(), opts.shift.to_string()),
        ("training_digits".into(), n.to_string()),
        ("heldout_accuracy".into(), format!("{heldout_accuracy:.4}")),
    ]);
    Ok(Weights {
        trunk: be.read(trunk.unpadded(trunk.params))?,
        head: be.read(head.unpadded(head.params))?,
        info,
    })
}

/// `train` on the CPU path in a pool of `THREADS` threads: the reproducible way.
pub fn train_cpu(
    opts: &TrainOptions,
    on_epoch: &mut (dyn FnMut(&EpochReport) + Send),
) -> Result<Weights> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build()?;
    pool.install(|| train(&mut crate::CpuBackend::new(), opts, on_epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_move_pixels_and_fill_zeros() {
        let src: Vec<f32> = (0..PIXELS).map(|i| i as f32).collect();
        let mut dst = vec![-1.0; PIXELS];
        shift_digit(&src, &mut dst, 2, -1);
        // dst(x, y) = src(x − 2, y + 1).
        assert_eq!(dst[5 * SIDE + 7], src[6 * SIDE + 5]);
        assert_eq!(dst[5 * SIDE + 1], 0.0);
        assert_eq!(dst[27 * SIDE + 10], 0.0);
        shift_digit(&src, &mut dst, 0, 0);
        assert_eq!(dst, src);
    }

    #[test]
    fn permutations_are_permutations() {
        let p = permutation(1000, key(3, 1, 0));
        let mut sorted = p.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(p, permutation(1000, key(3, 1, 1)));
    }
}

//! The paper's theory, executable (Goodfellow et al. 2014, §4), on the project's own kernels:
//!
//! - Proposition 1: for a fixed G the optimal discriminator is D*(x) = p_data / (p_data + p_g).
//! - Theorem 1: at that D, V(D*, G) = −log 4 + 2·JSD(p_data ‖ p_g).
//! - At the global optimum p_g = p_data, D* = 1/2 everywhere.
//! - §3: early in training D rejects G's samples with high confidence and log(1 − D(G(z)))
//!   saturates, while −log D(G(z)) still gives G strong gradients.
//!
//! Each check trains a discriminator (an MLP, Adam) on one backend against a generator whose
//! density is known in closed form: an affine G, x = σ·z + μ with z ~ N(0, 1), so
//! p_g = N(μ, σ²). Real samples come from a 1D Gaussian mixture p_data drawn on the host and
//! gathered into minibatches on the device, as in training. D is then compared with the closed
//! forms computed in f64 on the host.

use crate::backend::{Activation, Backend, GanLossKind, Tensor};
use crate::kernels::activation::activation_forward;
use crate::kernels::gan_loss::{LossArgs, Record, gan_loss};
use crate::kernels::gather::gather_rows_f32;
use crate::kernels::rng::rng_index;
use crate::kernels::rng::rng_normal;
use crate::model::Backprop;
use crate::model::{Layer, NetSpec, Network, Optimizer};
use crate::rng::{self, RngKey, stream};
use anyhow::{Result, bail};
use std::f64::consts::{LN_2, TAU};

/// A 1D mixture of Gaussians with (weight, mean, std) components; weights sum to 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Density1d {
    pub parts: Vec<(f64, f64, f64)>,
}

impl Density1d {
    pub fn gaussian(mean: f64, std: f64) -> Self {
        Self {
            parts: vec![(1.0, mean, std)],
        }
    }

    /// A mixture of `parts` (weight, mean, std), weights normalized.
    pub fn mixture(parts: &[(f64, f64, f64)]) -> Self {
        let total: f64 = parts.iter().map(|p| p.0).sum();
        Self {
            parts: parts.iter().map(|&(w, m, s)| (w / total, m, s)).collect(),
        }
    }

    pub fn pdf(&self, x: f64) -> f64 {
        self.parts
            .iter()
            .map(|&(w, m, s)| w * (-0.5 * ((x - m) / s).powi(2)).exp() / (s * TAU.sqrt()))
            .sum()
    }

    /// `n` samples, reproducible from `seed` (Philox: a uniform picks the component, Box–Muller
    /// gives the offset).
    pub fn sample(&self, n: usize, seed: u64) -> Vec<f32> {
        let pick = RngKey::new(seed, stream::TEST, 0);
        let noise = RngKey::new(seed, stream::TEST, 1 << 40);
        (0..n as u64)
            .map(|i| {
                let u = rng::uniform(pick, i, 0.0, 1.0) as f64;
                let mut acc = 0.0;
                let mut part = self.parts[self.parts.len() - 1];
                for &p in &self.parts {
                    acc += p.0;
                    if u < acc {
                        part = p;
                        break;
                    }
                }
                (part.1 + part.2 * rng::normal(noise, i) as f64) as f32
            })
            .collect()
    }

    /// An interval holding all but a negligible part of the mass (10 std past every component).
    pub fn span(&self) -> (f64, f64) {
        let lo = self
            .parts
            .iter()
            .map(|p| p.1 - 10.0 * p.2)
            .fold(f64::MAX, f64::min);
        let hi = self
            .parts
            .iter()
            .map(|p| p.1 + 10.0 * p.2)
            .fold(f64::MIN, f64::max);
        (lo, hi)
    }
}

impl std::fmt::Display for Density1d {
    /// "0.5·N(−1.5, 0.5²) + 0.5·N(1.5, 0.5²)"
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, &(w, m, s)) in self.parts.iter().enumerate() {
            let sep = if i > 0 { " + " } else { "" };
            let weight = if self.parts.len() > 1 {
                format!("{w}·")
            } else {
                String::new()
            };
            write!(f, "{sep}{weight}N({m}, {s}²)")?;
        }
        Ok(())
    }
}

/// Proposition 1: D*(x) = p_data(x) / (p_data(x) + p_g(x)) (1/2 where both vanish).
pub fn optimal_discriminator(p_data: f64, p_g: f64) -> f64 {
    if p_data + p_g > 0.0 {
        p_data / (p_data + p_g)
    } else {
        0.5
    }
}

/// ∫ f over [lo, hi] by composite Simpson's rule on `intervals` (even) intervals.
pub fn integrate(f: impl Fn(f64) -> f64, lo: f64, hi: f64, intervals: usize) -> f64 {
    let n = intervals + intervals % 2;
    let h = (hi - lo) / n as f64;
    let mut s = f(lo) + f(hi);
    for i in 1..n {
        s += f(lo + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}

fn both_spans(p: &Density1d, q: &Density1d) -> (f64, f64) {
    let (a, b) = (p.span(), q.span());
    (a.0.min(b.0), a.1.max(b.1))
}

/// p·log(p/r), 0 where p is 0.
fn plogp(p: f64, r: f64) -> f64 {
    if p > 0.0 { p * (p / r).ln() } else { 0.0 }
}

/// JSD(p ‖ q) = ½KL(p ‖ m) + ½KL(q ‖ m), m = (p + q)/2, in nats, by numerical integration.
pub fn jensen_shannon(p: &Density1d, q: &Density1d) -> f64 {
    let (lo, hi) = both_spans(p, q);
    let f = |x: f64| {
        let (a, b) = (p.pdf(x), q.pdf(x));
        let m = 0.5 * (a + b);
        0.5 * (plogp(a, m) + plogp(b, m))
    };
    integrate(f, lo, hi, 40_000)
}

/// V(D*, G) = ∫ p_data log D* + p_g log(1 − D*), integrated directly (Theorem 1 says this is
/// −log 4 + 2·JSD; the tests check that the two agree).
pub fn value_at_optimal_discriminator(p_data: &Density1d, p_g: &Density1d) -> f64 {
    let (lo, hi) = both_spans(p_data, p_g);
    let f = |x: f64| {
        let (a, b) = (p_data.pdf(x), p_g.pdf(x));
        let d = optimal_discriminator(a, b);
        let real = if a > 0.0 { a * d.ln() } else { 0.0 };
        let fake = if b > 0.0 { b * (1.0 - d).ln() } else { 0.0 };
        real + fake
    };
    integrate(f, lo, hi, 40_000)
}

/// How the checks train D.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TheoryOptions {
    /// Discriminator updates per check.
    pub steps: usize,
    /// Real samples per update (and as many samples of G).
    pub batch: usize,
    /// Adam's learning rate (β1 0.9, β2 0.999), cosine-annealed to 2% of it.
    pub lr: f32,
    pub seed: u64,
}

impl Default for TheoryOptions {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch: 128,
            lr: 1e-2,
            seed: 1,
        }
    }
}

/// Largest batch the evaluation passes run through D at once.
const EVAL_ROWS: usize = 4096;
/// Hidden width of the discriminator.
const HIDDEN: usize = 64;

/// D: 1 → 64 → tanh → 64 → tanh → 1 logit. Smooth, so it can represent the smooth logit of D*,
/// log p_data − log p_g, closely.
/// A report's line for a network: its modules, or why it does not build.
pub fn describe(spec: NetSpec) -> String {
    match spec.build("network") {
        Ok(net) => net.describe(),
        Err(e) => format!("(invalid: {e})"),
    }
}

pub fn discriminator_spec() -> NetSpec {
    const TANH: Layer = Layer::Act(Activation::Tanh);
    NetSpec {
        input: crate::model::Shape::flat(1),
        layers: vec![
            Layer::Linear(HIDDEN),
            TANH,
            Layer::Linear(HIDDEN),
            TANH,
            Layer::Linear(1),
        ],
    }
}

/// A discriminator and a fixed affine generator on one backend.
struct Rig {
    d: Network,
    g: Network,
    p_g: (f64, f64),
    pool: Tensor,
    pool_rows: usize,
    /// D's input: [real; fake] minibatches, or evaluation batches.
    x: Tensor,
    z: Tensor,
    idx: Tensor,
    dlogits: Tensor,
    stats: Tensor,
    probs: Tensor,
    batch: usize,
    /// Samples of G per update (the loss averages each side, so D* does not depend on it).
    fake_batch: usize,
    seed: u64,
    batches_drawn: u64,
    noise_drawn: u64,
}

impl Rig {
    /// p_data is `p_data`, sampled into a pool of 2^16 points; p_g = N(mean, std²). Each update
    /// sees `opts.batch` real samples and `fake_batch` samples of G.
    fn new(
        be: &mut dyn Backend,
        p_data: &Density1d,
        p_g: (f64, f64),
        opts: &TheoryOptions,
        fake_batch: usize,
    ) -> Result<Self> {
        if opts.batch == 0 || 2 * opts.batch > EVAL_ROWS {
            bail!(
                "--batch must be between 1 and {}, not {}",
                EVAL_ROWS / 2,
                opts.batch
            );
        }
        if opts.steps == 0 {
            bail!("--steps must be at least 1");
        }
        let spec = discriminator_spec().build("discriminator")?;
        let d_init = spec.init_params(opts.seed, 1 << 40);
        let d = Network::from_built(be, spec, EVAL_ROWS, &d_init, opts.seed)?;
        let g_spec = NetSpec {
            input: crate::model::Shape::flat(1),
            layers: vec![Layer::Linear(1)],
        };
        // W = [σ], b = [μ]: G(z) = σ·z + μ.
        let g_params = [p_g.1 as f32, p_g.0 as f32];
        let g = Network::new(be, &g_spec, EVAL_ROWS, &g_params, opts.seed, "generator")?;
        let pool_rows = 1 << 16;
        let pool = be.alloc(pool_rows, "p_data samples")?;
        be.write(pool, &p_data.sample(pool_rows, opts.seed));
        Ok(Self {
            d,
            g,
            p_g,
            pool,
            pool_rows,
            x: be.alloc(EVAL_ROWS, "discriminator input")?,
            z: be.alloc(EVAL_ROWS, "noise")?,
            idx: be.alloc(opts.batch, "batch indices")?,
            dlogits: be.alloc(EVAL_ROWS, "logit gradients")?,
            stats: be.alloc(3, "loss statistics")?,
            probs: be.alloc(EVAL_ROWS, "D(x)")?,
            batch: opts.batch,
            fake_batch: fake_batch.clamp(1, opts.batch),
            seed: opts.seed,
            batches_drawn: 0,
            noise_drawn: 0,
        })
    }

    /// G(z) for n fresh z of `stream` into `out`.
    fn fake(&mut self, be: &mut dyn Backend, out: Tensor, n: usize, stream: u32) {
        let key = RngKey::new(self.seed, stream, self.noise_drawn);
        self.noise_drawn += n as u64;
        rng_normal(be, self.z, n, key);
        self.g.forward(be, self.z, n, false, Some(out));
    }

    /// One discriminator update on a real minibatch from the pool and a fake one from G: the
    /// same kernels as a D-step of `gan::Gan`.
    fn train_step(&mut self, be: &mut dyn Backend, lr: f32) {
        let (m, f) = (self.batch, self.fake_batch);
        let key = RngKey::new(self.seed, stream::BATCH, self.batches_drawn);
        self.batches_drawn += m as u64;
        rng_index(be, self.idx, m, self.pool_rows as u32, key);
        gather_rows_f32(be, self.x, self.pool, self.idx, m, 1);
        self.fake(be, self.x.slice(m, f), f, stream::NOISE);
        let logits = self.d.forward(be, self.x, m + f, true, None);
        let dl = self.dlogits.slice(0, m + f);
        gan_loss(
            be,
            GanLossKind::Discriminator,
            LossArgs {
                logits,
                grad: dl,
                real: m,
                fake: f,
                stats: self.stats,
            },
            Record::Replace,
        );
        self.d.backward(be, dl, Backprop::Weights);
        self.d.update(be, &Optimizer::adam(lr, 0.9, 0.999));
    }

    /// `steps` updates with the rate annealed by `cosine_rate`, so D settles.
    fn train(&mut self, be: &mut dyn Backend, steps: usize, lr: f32) {
        for t in 0..steps {
            let rate = cosine_rate(lr, t, steps);
            self.train_step(be, rate);
            if t % 32 == 31 {
                be.flush();
            }
        }
        be.flush();
    }

    /// D(x) at each of `xs`.
    fn discriminate(&mut self, be: &mut dyn Backend, xs: &[f64]) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(xs.len());
        for chunk in xs.chunks(EVAL_ROWS) {
            let n = chunk.len();
            let v: Vec<f32> = chunk.iter().map(|&x| x as f32).collect();
            be.write(self.x.slice(0, n), &v);
            let logits = self.d.forward(be, self.x, n, false, None);
            let p = self.probs.slice(0, n);
            activation_forward(be, Activation::Sigmoid, p, logits, n);
            out.extend(be.read(p)?.into_iter().map(f64::from));
        }
        Ok(out)
    }

    /// V(D, G) = E_p_data[log D(x)] + E_p_g[log(1 − D(x))] by Monte Carlo on `chunks` batches
    /// of 2,048 fresh real and 2,048 fresh fake samples, through the loss kernel (whose D loss
    /// is −V). Also returns V(D*, G) on the same samples.
    fn value(
        &mut self,
        be: &mut dyn Backend,
        p_data: &Density1d,
        chunks: usize,
    ) -> Result<(f64, f64)> {
        let c = EVAL_ROWS / 2;
        let p_g = Density1d::gaussian(self.p_g.0, self.p_g.1);
        let mut with_optimum = 0.0;
        for i in 0..chunks {
            let real = p_data.sample(c, self.seed ^ (0xe7a1 + i as u64));
            be.write(self.x.slice(0, c), &real);
            self.fake(be, self.x.slice(c, c), c, stream::SAMPLE);
            let logits = self.d.forward(be, self.x, 2 * c, false, None);
            let dl = self.dlogits.slice(0, 2 * c);
            gan_loss(
                be,
                GanLossKind::Discriminator,
                LossArgs {
                    logits,
                    grad: dl,
                    real: c,
                    fake: c,
                    stats: self.stats,
                },
                Record::add_if(i > 0),
            );
            let fake = be.read(self.x.slice(c, c))?;
            let d_star = |x: f32| optimal_discriminator(p_data.pdf(x as f64), p_g.pdf(x as f64));
            let real_term: f64 = real.iter().map(|&x| d_star(x).ln()).sum::<f64>();
            let fake_term: f64 = fake.iter().map(|&x| (1.0 - d_star(x)).ln()).sum::<f64>();
            with_optimum += (real_term + fake_term) / c as f64;
        }
        let neg_v = be.read(self.stats)?[0] as f64;
        Ok((-neg_v / chunks as f64, with_optimum / chunks as f64))
    }
}

/// Cosine annealing from `lr` at step 0 to 2% of it at the last step.
fn cosine_rate(lr: f32, t: usize, steps: usize) -> f32 {
    let phase = std::f32::consts::PI * t as f32 / steps.max(1) as f32;
    lr * (0.02 + 0.98 * 0.5 * (1.0 + phase.cos()))
}

/// `n` evenly spaced points over [lo, hi].
fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .collect()
}

/// Points where the average density (p_data + p_g)/2 is at least this are compared pointwise;
/// elsewhere neither distribution puts samples and D is unconstrained.
pub const SUPPORT_DENSITY: f64 = 0.02;
/// Fresh samples of each distribution used to estimate V(D, G).
pub const VALUE_SAMPLES: usize = 8 * EVAL_ROWS / 2;

/// Tolerances of the verdicts (and the tests): a wrong kernel, formula or sign breaks them.
pub mod tolerance {
    /// max |D − D*| over the support.
    pub const OPTIMAL_D_MAX: f64 = 0.08;
    /// E_{x∼(p_data+p_g)/2} |D − D*|.
    pub const OPTIMAL_D_MEAN: f64 = 0.025;
    /// |V(D, G) − (−log 4 + 2·JSD)| in nats.
    pub const VALUE: f64 = 0.02;
    /// max |D − 1/2| over the support when p_g = p_data.
    pub const EQUILIBRIUM_MAX: f64 = 0.05;
    /// E |D − 1/2| when p_g = p_data.
    pub const EQUILIBRIUM_MEAN: f64 = 0.02;
    /// Mean D(G(z)) below which D counts as confidently rejecting G.
    pub const CONFIDENT_D: f64 = 0.01;
    /// Least ‖∇G non-saturating‖ / ‖∇G saturating‖ once D is confident.
    pub const SATURATION_RATIO: f64 = 50.0;
    /// Relative error allowed in the per-sample identity ∂sat/∂x = ∂ns/∂x · D/(1 − D).
    pub const IDENTITY: f64 = 1e-3;
}

/// Proposition 1 and Theorem 1 against a trained discriminator.
#[derive(Clone, Debug)]
pub struct OptimalD {
    pub p_data: Density1d,
    pub p_g: Density1d,
    pub grid: Vec<f64>,
    /// The trained D(x) and the closed form D*(x) on the grid.
    pub d: Vec<f64>,
    pub d_star: Vec<f64>,
    /// max |D − D*| where (p_data + p_g)/2 ≥ SUPPORT_DENSITY.
    pub max_abs_error: f64,
    /// E_{x∼(p_data+p_g)/2} |D − D*|.
    pub mean_abs_error: f64,
    pub jsd: f64,
    /// −log 4 + 2·JSD(p_data ‖ p_g), integrated numerically.
    pub value_closed_form: f64,
    /// V(D, G) of the trained D by Monte Carlo (VALUE_SAMPLES of each distribution).
    pub value_trained: f64,
    /// V(D*, G) by Monte Carlo on the same samples.
    pub value_optimal_mc: f64,
}

impl OptimalD {
    pub fn optimal_d_passed(&self) -> bool {
        self.max_abs_error <= tolerance::OPTIMAL_D_MAX
            && self.mean_abs_error <= tolerance::OPTIMAL_D_MEAN
    }

    pub fn value_passed(&self) -> bool {
        (self.value_trained - self.value_closed_form).abs() <= tolerance::VALUE
    }
}

/// Errors of `d` against `target` on `xs`: (max over the support, mean under m = (p + q)/2).
fn errors(xs: &[f64], d: &[f64], target: &[f64], m: impl Fn(f64) -> f64) -> (f64, f64) {
    let (mut max, mut num, mut den) = (0.0f64, 0.0, 0.0);
    for ((&x, &a), &b) in xs.iter().zip(d).zip(target) {
        let w = m(x);
        if w >= SUPPORT_DENSITY {
            max = max.max((a - b).abs());
        }
        num += w * (a - b).abs();
        den += w;
    }
    (max, num / den)
}

/// The densities of the optimal-D check: a two-bump p_data against a broad p_g = N(0, 2²), so
/// D* has an interesting shape, p_g's samples teach D the tails, and JSD (0.143 nats) is large
/// enough for a wrong Theorem 1 to show.
pub fn optimal_d_densities() -> (Density1d, (f64, f64)) {
    let p_data = Density1d::mixture(&[(0.5, -1.5, 0.5), (0.5, 1.5, 0.5)]);
    (p_data, (0.0, 2.0))
}

/// Trains D against G on `optimal_d_densities` and compares it with D* on a grid of 401
/// points over [−4, 4], then estimates V(D, G).
pub fn optimal_discriminator_check(be: &mut dyn Backend, opts: &TheoryOptions) -> Result<OptimalD> {
    let (p_data, g) = optimal_d_densities();
    let p_g = Density1d::gaussian(g.0, g.1);
    let mut rig = Rig::new(be, &p_data, g, opts, opts.batch)?;
    rig.train(be, opts.steps, opts.lr);
    let xs = grid(-4.0, 4.0, 401);
    let d = rig.discriminate(be, &xs)?;
    let d_star: Vec<f64> = xs
        .iter()
        .map(|&x| optimal_discriminator(p_data.pdf(x), p_g.pdf(x)))
        .collect();
    let (max_abs_error, mean_abs_error) =
        errors(&xs, &d, &d_star, |x| 0.5 * (p_data.pdf(x) + p_g.pdf(x)));
    let jsd = jensen_shannon(&p_data, &p_g);
    let (value_trained, value_optimal_mc) =
        rig.value(be, &p_data, VALUE_SAMPLES / (EVAL_ROWS / 2))?;
    Ok(OptimalD {
        p_data,
        p_g,
        grid: xs,
        d,
        d_star,
        max_abs_error,
        mean_abs_error,
        jsd,
        value_closed_form: -4f64.ln() + 2.0 * jsd,
        value_trained,
        value_optimal_mc,
    })
}

/// D trained with p_g = p_data.
#[derive(Clone, Debug)]
pub struct Equilibrium {
    pub grid: Vec<f64>,
    pub d: Vec<f64>,
    /// max |D − 1/2| over the support and E |D − 1/2| under p_data.
    pub max_deviation: f64,
    pub mean_deviation: f64,
    /// V(D, G), which should be −log 4.
    pub value: f64,
}

impl Equilibrium {
    pub fn passed(&self) -> bool {
        self.max_deviation <= tolerance::EQUILIBRIUM_MAX
            && self.mean_deviation <= tolerance::EQUILIBRIUM_MEAN
    }
}

/// p_data = p_g = N(0.5, 1): trains D from its random start and checks that it ends at 1/2.
/// Each update sees half as many samples of G as real ones, so a loss kernel that summed where
/// it should average would pull D to 1/3 or 2/3.
pub fn equilibrium_check(be: &mut dyn Backend, opts: &TheoryOptions) -> Result<Equilibrium> {
    let g = (0.5, 1.0);
    let p = Density1d::gaussian(g.0, g.1);
    let mut rig = Rig::new(be, &p, g, opts, opts.batch / 2)?;
    rig.train(be, opts.steps, opts.lr);
    let xs = grid(-4.0, 4.0, 401);
    let d = rig.discriminate(be, &xs)?;
    let half = vec![0.5; xs.len()];
    let (max_deviation, mean_deviation) = errors(&xs, &d, &half, |x| p.pdf(x));
    let (value, _) = rig.value(be, &p, 2)?;
    Ok(Equilibrium {
        grid: xs,
        d,
        max_deviation,
        mean_deviation,
        value,
    })
}

/// The gradient that reaches G under both losses at one point of D's training.
#[derive(Clone, Copy, Debug)]
pub struct GradientRow {
    pub d_steps: usize,
    /// Mean D(G(z)) over the batch.
    pub d_fake: f64,
    /// ‖∂L/∂θ_G‖ for L = log(1 − D(G(z))) (saturating) and L = −log D(G(z)).
    pub saturating: f64,
    pub non_saturating: f64,
    /// max_i |∂sat/∂x_i − ∂ns/∂x_i · D_i/(1 − D_i)| / max_i |∂sat/∂x_i|: the per-sample
    /// identity between the two losses' gradients at G's output.
    pub identity_error: f64,
}

impl GradientRow {
    pub fn ratio(&self) -> f64 {
        self.non_saturating / self.saturating
    }
}

#[derive(Clone, Debug)]
pub struct Saturation {
    pub rows: Vec<GradientRow>,
}

impl Saturation {
    pub fn first(&self) -> &GradientRow {
        &self.rows[0]
    }

    pub fn last(&self) -> &GradientRow {
        self.rows.last().expect("at least one row")
    }

    pub fn passed(&self) -> bool {
        let (a, z) = (self.first(), self.last());
        z.d_fake <= tolerance::CONFIDENT_D
            && z.ratio() >= tolerance::SATURATION_RATIO
            && (0.25..=4.0).contains(&a.ratio())
            && self
                .rows
                .iter()
                .all(|r| r.identity_error <= tolerance::IDENTITY)
    }
}

impl Rig {
    /// ‖∂L/∂θ_G‖, ∂L/∂G(z) and D's logits for the G loss `kind` on a batch from noise `key`.
    fn generator_gradient(
        &mut self,
        be: &mut dyn Backend,
        kind: GanLossKind,
        key: RngKey,
    ) -> Result<(f64, Vec<f32>, Vec<f32>)> {
        let m = self.batch;
        let fake = self.x.slice(0, m);
        rng_normal(be, self.z, m, key);
        self.g.forward(be, self.z, m, false, Some(fake));
        let logits = self.d.forward(be, fake, m, false, None);
        let dl = self.dlogits.slice(0, m);
        gan_loss(
            be,
            kind,
            LossArgs::generated(logits, dl, m, self.stats),
            Record::Replace,
        );
        let dx = self
            .d
            .backward(be, dl, Backprop::Input)
            .expect("input gradient requested");
        self.g.backward(be, dx, Backprop::Weights);
        let grads = be.read(self.g.grads)?;
        let norm = grads
            .iter()
            .map(|&v| (v as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        Ok((norm, be.read(dx)?, be.read(logits)?))
    }

    fn gradient_row(&mut self, be: &mut dyn Backend, d_steps: usize) -> Result<GradientRow> {
        let key = RngKey::new(self.seed, stream::SAMPLE, 1 << 40);
        let (sat, dx_sat, logits) =
            self.generator_gradient(be, GanLossKind::GeneratorMinimax, key)?;
        let (ns, dx_ns, _) =
            self.generator_gradient(be, GanLossKind::GeneratorNonSaturating, key)?;
        let scale = dx_sat.iter().fold(0.0f64, |a, &v| a.max((v as f64).abs()));
        let mut worst = 0.0f64;
        let mut d_fake = 0.0;
        for ((&a, &b), &l) in dx_sat.iter().zip(&dx_ns).zip(&logits) {
            let d = crate::kernels::activation::stable_sigmoid(l) as f64;
            d_fake += d;
            // D/(1 − D) = e^l, exactly and without cancellation.
            worst = worst.max((a as f64 - b as f64 * (l as f64).exp()).abs());
        }
        Ok(GradientRow {
            d_steps,
            d_fake: d_fake / logits.len() as f64,
            saturating: sat,
            non_saturating: ns,
            identity_error: worst / scale.max(f64::MIN_POSITIVE),
        })
    }
}

/// D updates after which the saturation check measures G's gradients (capped by `steps`).
pub const SATURATION_STEPS: [usize; 6] = [2, 5, 10, 20, 50, 200];

/// p_data = N(2, 0.5²) against G = N(−2, 0.5²): the gradient reaching G's parameters under both
/// losses, measured as D trains from undecided to confidently rejecting G.
pub fn saturation_check(be: &mut dyn Backend, opts: &TheoryOptions) -> Result<Saturation> {
    let p_data = Density1d::gaussian(2.0, 0.5);
    let mut rig = Rig::new(be, &p_data, (-2.0, 0.5), opts, opts.batch)?;
    let mut rows = vec![rig.gradient_row(be, 0)?];
    let mut done = 0;
    for target in SATURATION_STEPS {
        let target = target.min(opts.steps);
        if target > done {
            for t in done..target {
                rig.train_step(be, opts.lr);
                if t % 32 == 31 {
                    be.flush();
                }
            }
            done = target;
            rows.push(rig.gradient_row(be, done)?);
        }
    }
    Ok(Saturation { rows })
}

/// log 2, the JSD of two distributions with disjoint supports (its largest value).
pub const MAX_JSD: f64 = LN_2;

pub mod critic;
pub mod penalty_fd;
mod report;
pub mod spectral;
pub mod wasserstein;

/// The Wasserstein, spectral-norm checks' training: twice the steps and batch of the paper's
/// checks (a critic's estimate needs a settled critic).
pub fn critic_options(opts: &TheoryOptions) -> wasserstein::CriticOptions {
    wasserstein::CriticOptions {
        steps: 2 * opts.steps,
        batch: 2 * opts.batch,
        seed: opts.seed,
    }
}
pub use report::{Check, Verdict, run, write_equilibrium_plot, write_optimal_d_plot};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms_agree_with_theorem_1() {
        let (p, g) = optimal_d_densities();
        let q = Density1d::gaussian(g.0, g.1);
        let jsd = jensen_shannon(&p, &q);
        assert!(jsd > 0.1 && jsd < MAX_JSD, "{jsd}");
        let direct = value_at_optimal_discriminator(&p, &q);
        assert!((direct - (-4f64.ln() + 2.0 * jsd)).abs() < 1e-9, "{direct}");
        // Identical distributions: JSD 0, V = −log 4; disjoint ones: JSD log 2, V = 0.
        assert!(jensen_shannon(&q, &q).abs() < 1e-12);
        assert!((value_at_optimal_discriminator(&q, &q) + 4f64.ln()).abs() < 1e-9);
        let far = Density1d::gaussian(100.0, 1.0);
        assert!((jensen_shannon(&q, &far) - MAX_JSD).abs() < 1e-9);
    }

    #[test]
    fn densities_integrate_to_one_and_sample_their_moments() {
        let (p, _) = optimal_d_densities();
        let (lo, hi) = p.span();
        assert!((integrate(|x| p.pdf(x), lo, hi, 10_000) - 1.0).abs() < 1e-9);
        let s = p.sample(100_000, 3);
        let mean = s.iter().map(|&x| x as f64).sum::<f64>() / s.len() as f64;
        let var = s.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / s.len() as f64;
        // Mixture of ±1.5 with std 0.5: mean 0, variance 1.5² + 0.5² = 2.5.
        assert!(mean.abs() < 0.02, "{mean}");
        assert!((var - 2.5).abs() < 0.03, "{var}");
    }

    #[test]
    fn optimal_discriminator_formula() {
        assert_eq!(optimal_discriminator(3.0, 1.0), 0.75);
        assert_eq!(optimal_discriminator(0.0, 0.0), 0.5);
        assert_eq!(optimal_discriminator(2.0, 2.0), 0.5);
    }
}

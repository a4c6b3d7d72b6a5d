//! A critic (or discriminator) trained between two fixed 1-D distributions on the project's
//! kernels, the rig of the Wasserstein checks: samples of both come from pools drawn on the host
//! and gathered on the device, as a training run gathers its data; each update is the D-step of
//! `gan::Gan` (loss kernel, backward, the gradient penalty's second-order pass, optimizer,
//! clipping, spectral norm's power iteration).

use super::Density1d;
use crate::backend::{Activation, Backend, GanLossKind, Tensor};
use crate::gan::penalty::Penalty;
use crate::kernels::gan_loss::{LossArgs, Record, gan_loss};
use crate::kernels::gather::gather_rows_f32;
use crate::kernels::penalty::PenaltyKind;
use crate::kernels::rng::rng_index;
use crate::model::Backprop;
use crate::model::{Layer, NetSpec, Network, Optimizer, Shape};
use crate::rng::{RngKey, stream};
use anyhow::Result;

/// How a critic is kept Lipschitz.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Constraint {
    /// The original GAN's discriminator: none.
    None,
    /// WGAN: every weight clipped to [−c, c] after each update.
    Clip(f32),
    /// WGAN-GP: λ·E[(‖∇D(x̂)‖ − 1)²] on interpolates.
    GradientPenalty(f32),
    /// Spectral normalization of every layer.
    SpectralNorm,
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Constraint::None => write!(f, "no constraint"),
            Constraint::Clip(c) => write!(f, "weight clipping to ±{c} (WGAN)"),
            Constraint::GradientPenalty(l) => write!(f, "gradient penalty λ = {l} (WGAN-GP)"),
            Constraint::SpectralNorm => write!(f, "spectral norm (SN)"),
        }
    }
}

/// Hidden width of the 1-D critics.
pub const CRITIC_WIDTH: usize = 64;

/// 1 → 64 LeakyReLU(0.2) → 64 LeakyReLU(0.2) → 1: piecewise linear, so the gradient penalty's
/// second-order pass is exact.
pub fn critic_spec(input: usize, sn: bool) -> NetSpec {
    const LRELU: Layer = Layer::Act(Activation::LeakyRelu(0.2));
    let layers = vec![
        Layer::Linear(CRITIC_WIDTH),
        LRELU,
        Layer::Linear(CRITIC_WIDTH),
        LRELU,
        Layer::Linear(1),
    ];
    NetSpec {
        input: Shape::flat(input),
        layers: if sn {
            crate::config::with_spectral_norm(&layers)
        } else {
            layers
        },
    }
}

/// Rows a critic is evaluated on at once.
pub const EVAL_ROWS: usize = 4096;
/// Samples in each pool.
pub const POOL_ROWS: usize = 1 << 16;

pub struct CriticRig {
    pub d: Network,
    /// Values per sample.
    pub dim: usize,
    pub constraint: Constraint,
    real_pool: Tensor,
    fake_pool: Tensor,
    /// [real; fake] minibatches, or evaluation batches.
    x: Tensor,
    idx: Tensor,
    dl: Tensor,
    ones: Tensor,
    stats: Tensor,
    penalty: Option<Penalty>,
    batch: usize,
    seed: u64,
    drawn: u64,
}

impl CriticRig {
    /// A critic with `constraint` between `p_data` and `p_g` (pools of 2^16 samples each),
    /// trained on `batch` samples of each per update.
    pub fn new(
        be: &mut dyn Backend,
        p_data: &Density1d,
        p_g: &Density1d,
        constraint: Constraint,
        batch: usize,
        seed: u64,
    ) -> Result<Self> {
        let real = p_data.sample(POOL_ROWS, seed);
        let fake = p_g.sample(POOL_ROWS, seed ^ 0x9e37);
        Self::with_pools(be, 1, &real, &fake, constraint, batch, seed)
    }

    /// A critic of `dim`-valued samples between two pools of `POOL_ROWS` samples each.
    pub fn with_pools(
        be: &mut dyn Backend,
        dim: usize,
        real: &[f32],
        fake: &[f32],
        constraint: Constraint,
        batch: usize,
        seed: u64,
    ) -> Result<Self> {
        anyhow::ensure!(
            real.len() == POOL_ROWS * dim && fake.len() == POOL_ROWS * dim,
            "critic pools hold {POOL_ROWS} samples of {dim} values"
        );
        let spec = critic_spec(dim, constraint == Constraint::SpectralNorm);
        let critic = spec.build("critic")?;
        let init = critic.init_params(seed, 1 << 40);
        let mut d = Network::from_built(be, critic, EVAL_ROWS, &init, seed)?;
        if let Constraint::Clip(c) = constraint {
            d.clip = Some(c);
            // Start inside the box, as the WGAN code clips after its first update.
            let clipped: Vec<f32> = init.iter().map(|v| v.clamp(-c, c)).collect();
            be.write(d.unpadded(d.params), &clipped);
        }
        let penalty = match constraint {
            Constraint::GradientPenalty(l) => Some(Penalty::new(
                be,
                &d,
                PenaltyKind::GradientPenalty,
                l,
                batch,
            )?),
            _ => None,
        };
        let real_pool = be.upload(real, "p_data samples")?;
        let fake_pool = be.upload(fake, "p_g samples")?;
        let ones = be.upload(&vec![1.0; EVAL_ROWS], "ones")?;
        Ok(CriticRig {
            d,
            dim,
            constraint,
            real_pool,
            fake_pool,
            x: be.alloc(EVAL_ROWS * dim, "critic input")?,
            idx: be.alloc(batch, "batch indices")?,
            dl: be.alloc(EVAL_ROWS, "output gradients")?,
            ones,
            stats: be.alloc(5, "statistics")?,
            penalty,
            batch,
            seed,
            drawn: 0,
        })
    }

    fn gather(&mut self, be: &mut dyn Backend, pool: Tensor, out: Tensor) {
        let key = RngKey::new(self.seed, stream::BATCH, self.drawn);
        self.drawn += self.batch as u64;
        rng_index(be, self.idx, self.batch, POOL_ROWS as u32, key);
        gather_rows_f32(be, out, pool, self.idx, self.batch, self.dim);
    }

    /// One update of `loss` (a discriminator loss) on a real and a fake minibatch.
    pub fn train_step(&mut self, be: &mut dyn Backend, loss: GanLossKind, opt: &Optimizer) {
        let (m, dim) = (self.batch, self.dim);
        let (real, fake) = (self.x.slice(0, m * dim), self.x.slice(m * dim, m * dim));
        self.gather(be, self.real_pool, real);
        self.gather(be, self.fake_pool, fake);
        let out = self.d.forward(be, self.x, 2 * m, true, None);
        let dl = self.dl.slice(0, 2 * m);
        gan_loss(
            be,
            loss,
            LossArgs {
                logits: out,
                grad: dl,
                real: m,
                fake: m,
                stats: self.stats.slice(0, 3),
            },
            Record::Replace,
        );
        self.d.backward(be, dl, Backprop::Weights);
        if let Some(p) = &self.penalty {
            let key = RngKey::new(self.seed, stream::PENALTY, self.drawn);
            let on = crate::gan::penalty::Pair {
                real,
                fake,
                rows: m,
            };
            p.add_gradient(be, &mut self.d, on, key, self.stats.slice(3, 2));
        }
        self.d.update(be, opt);
    }

    /// `steps` updates with `opt(t)`'s optimizer at step t.
    pub fn train(
        &mut self,
        be: &mut dyn Backend,
        loss: GanLossKind,
        steps: usize,
        opt: impl Fn(usize) -> Optimizer,
    ) {
        for t in 0..steps {
            self.train_step(be, loss, &opt(t));
            if t % 32 == 31 {
                be.flush();
            }
        }
        be.flush();
    }

    /// D's raw output at each 1-D point of `xs`, and dD/dx there.
    pub fn values_and_slopes(
        &mut self,
        be: &mut dyn Backend,
        xs: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let v: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        self.values_and_gradients(be, &v)
    }

    /// D's raw output at each sample of `xs` ([n, dim]) and ∇ₓD there ([n, dim]).
    pub fn values_and_gradients(
        &mut self,
        be: &mut dyn Backend,
        xs: &[f32],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let (mut vals, mut grads) = (Vec::new(), Vec::new());
        for chunk in xs.chunks(EVAL_ROWS * self.dim) {
            let n = chunk.len() / self.dim;
            be.write(self.x.slice(0, chunk.len()), chunk);
            let out = self.d.forward(be, self.x, n, false, None);
            vals.extend(be.read(out)?.into_iter().map(f64::from));
            let g = self
                .d
                .backward(be, self.ones.slice(0, n), Backprop::Input)
                .expect("input gradient requested");
            grads.extend(be.read(g)?.into_iter().map(f64::from));
        }
        Ok((vals, grads))
    }

    /// E_p_data[D] − E_p_g[D] by Monte Carlo on `n` fresh samples of each.
    pub fn mean_difference(
        &mut self,
        be: &mut dyn Backend,
        p_data: &Density1d,
        p_g: &Density1d,
        n: usize,
    ) -> Result<f64> {
        let mean = |rig: &mut Self, be: &mut dyn Backend, xs: Vec<f32>| -> Result<f64> {
            let xs: Vec<f64> = xs.into_iter().map(f64::from).collect();
            let (v, _) = rig.values_and_slopes(be, &xs)?;
            Ok(v.iter().sum::<f64>() / v.len() as f64)
        };
        let real = mean(self, be, p_data.sample(n, self.seed ^ 0x51))?;
        let fake = mean(self, be, p_g.sample(n, self.seed ^ 0x52))?;
        Ok(real - fake)
    }
}

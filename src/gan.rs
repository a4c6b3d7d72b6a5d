//! The training step of Goodfellow et al. 2014, Algorithm 1, written once for both backends:
//! each iteration makes k discriminator updates, each on a real minibatch and a fresh noise
//! minibatch, then one generator update on fresh noise. On the GPU an iteration is one command
//! encoder and one submit; nothing is read back until `take_stats`.

use crate::backend::{Backend, DeviceRows, GanLossKind, Tensor};
use crate::model::{NetSpec, Network, Optimizer};
use crate::rng::{RngKey, stream};
use anyhow::{Result, bail};

/// The generator's objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratorLoss {
    /// −log D(G(z)): strong gradients early in training (the paper's practical choice).
    NonSaturating,
    /// log(1 − D(G(z))): the minimax objective as written, which saturates when D wins.
    Minimax,
}

impl GeneratorLoss {
    pub fn kind(self) -> GanLossKind {
        match self {
            GeneratorLoss::NonSaturating => GanLossKind::GeneratorNonSaturating,
            GeneratorLoss::Minimax => GanLossKind::GeneratorMinimax,
        }
    }
}

/// The prior p_z the generator's input is drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// U(−1, 1) in every dimension.
    Uniform,
    /// N(0, 1) in every dimension.
    Normal,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GanConfig {
    pub g: NetSpec,
    pub d: NetSpec,
    pub batch: usize,
    /// Discriminator updates per generator update.
    pub k: usize,
    pub g_loss: GeneratorLoss,
    pub noise: Noise,
    pub opt_g: Optimizer,
    pub opt_d: Optimizer,
    pub seed: u64,
}

impl GanConfig {
    pub fn validate(&self) -> Result<()> {
        self.g.validate("generator")?;
        self.d.validate("discriminator")?;
        if self.g.output() != self.d.input {
            bail!(
                "the generator makes {} values per sample but the discriminator reads {}",
                self.g.output(),
                self.d.input
            );
        }
        if self.d.output() != 1 {
            bail!(
                "the discriminator must output one logit, not {}",
                self.d.output()
            );
        }
        if self.batch == 0 {
            bail!("--batch must be at least 1");
        }
        if self.k == 0 {
            bail!("--k (discriminator steps per generator step) must be at least 1");
        }
        for (name, opt) in [("generator", self.opt_g), ("discriminator", self.opt_d)] {
            if !(opt.lr() > 0.0 && opt.lr().is_finite()) {
                bail!(
                    "the {name}'s learning rate must be positive, not {}",
                    opt.lr()
                );
            }
        }
        Ok(())
    }
}

/// Real data resident on the backend, and how a gathered row becomes D's input.
pub enum DeviceData {
    /// 8-bit pixels mapped by value·scale + offset (to [−1, 1] for a tanh G, [0, 1] for sigmoid).
    Bytes {
        rows: DeviceRows,
        scale: f32,
        offset: f32,
    },
    /// f32 rows (the 2D point sets).
    Floats {
        t: Tensor,
        rows: usize,
        row_len: usize,
    },
}

impl DeviceData {
    pub fn rows(&self) -> usize {
        match self {
            DeviceData::Bytes { rows, .. } => rows.rows,
            DeviceData::Floats { rows, .. } => *rows,
        }
    }

    pub fn row_len(&self) -> usize {
        match self {
            DeviceData::Bytes { rows, .. } => rows.row_len,
            DeviceData::Floats { row_len, .. } => *row_len,
        }
    }
}

/// Losses and D's outputs averaged since the last `take_stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub d_loss: f32,
    pub g_loss: f32,
    /// Mean D(x) on real samples.
    pub d_real: f32,
    /// Mean D(G(z)) seen by the discriminator's updates.
    pub d_fake: f32,
    pub d_steps: u64,
    pub g_steps: u64,
}

/// Counters of the random streams, so a run can be resumed exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RngState {
    pub noise: u64,
    pub batch: u64,
}

pub struct Gan {
    pub cfg: GanConfig,
    pub g: Network,
    pub d: Network,
    data: DeviceData,
    /// D's input for a D-step: [real batch; fake batch], each [batch, dim].
    x_d: Tensor,
    z: Tensor,
    idx: Tensor,
    dlogits: Tensor,
    /// (D loss, mean D(x), mean D(G(z))) of D-steps, then (G loss, 0, mean D(G(z))) of G-steps.
    stats: Tensor,
    pub rng: RngState,
    pub iteration: u64,
    d_steps: u64,
    g_steps: u64,
}

impl Gan {
    /// Builds both networks from their initial parameters (`init_params` of each spec unless
    /// given) and the device-resident data.
    pub fn new(
        be: &mut dyn Backend,
        cfg: &GanConfig,
        data: DeviceData,
        params: Option<(&[f32], &[f32])>,
    ) -> Result<Self> {
        cfg.validate()?;
        if data.row_len() != cfg.d.input {
            bail!(
                "the data has {} values per sample but the discriminator reads {}",
                data.row_len(),
                cfg.d.input
            );
        }
        if data.rows() < cfg.batch {
            bail!(
                "the dataset has {} samples, fewer than one batch of {}; use --batch {} or less",
                data.rows(),
                cfg.batch,
                data.rows()
            );
        }
        let (g_init, d_init);
        let (gp, dp) = match params {
            Some(p) => p,
            None => {
                g_init = cfg.g.init_params(cfg.seed, 0);
                d_init = cfg.d.init_params(cfg.seed, 1 << 40);
                (&g_init[..], &d_init[..])
            }
        };
        let m = cfg.batch;
        let dim = cfg.d.input;
        let g = Network::new(be, &cfg.g, m, gp, cfg.seed ^ 0x6e6e, "generator")?;
        let d = Network::new(be, &cfg.d, 2 * m, dp, cfg.seed ^ 0xd15c, "discriminator")?;
        let x_d = be.alloc(2 * m * dim, "discriminator input")?;
        let z = be.alloc(m * cfg.g.input, "noise")?;
        let idx = be.alloc(m, "batch indices")?;
        let dlogits = be.alloc(2 * m, "logit gradients")?;
        let stats = be.alloc(6, "loss statistics")?;
        Ok(Self {
            cfg: cfg.clone(),
            g,
            d,
            data,
            x_d,
            z,
            idx,
            dlogits,
            stats,
            rng: RngState::default(),
            iteration: 0,
            d_steps: 0,
            g_steps: 0,
        })
    }

    fn draw_noise(&mut self, be: &mut dyn Backend, z: Tensor, n: usize, key: RngKey) {
        match self.cfg.noise {
            Noise::Uniform => be.rng_uniform(z, n, -1.0, 1.0, key),
            Noise::Normal => be.rng_normal(z, n, key),
        }
    }

    fn fresh_noise(&mut self, be: &mut dyn Backend) {
        let n = self.cfg.batch * self.cfg.g.input;
        let key = RngKey::new(self.cfg.seed, stream::NOISE, self.rng.noise);
        self.rng.noise += n as u64;
        self.draw_noise(be, self.z, n, key);
    }

    fn real_batch(&mut self, be: &mut dyn Backend, out: Tensor) {
        let m = self.cfg.batch;
        let key = RngKey::new(self.cfg.seed, stream::BATCH, self.rng.batch);
        self.rng.batch += m as u64;
        be.rng_index(self.idx, m, self.data.rows() as u32, key);
        match &self.data {
            DeviceData::Bytes {
                rows,
                scale,
                offset,
            } => be.gather_rows_u8(out, rows, self.idx, m, *scale, *offset),
            DeviceData::Floats { t, row_len, .. } => {
                be.gather_rows_f32(out, *t, self.idx, m, *row_len)
            }
        }
    }

    /// One discriminator update: ascend log D(x) + log(1 − D(G(z))) on a real and a fake batch,
    /// run through D together as one batch of 2m rows.
    pub fn discriminator_step(&mut self, be: &mut dyn Backend) {
        let (m, dim) = (self.cfg.batch, self.cfg.d.input);
        let real = self.x_d.slice(0, m * dim);
        let fake = self.x_d.slice(m * dim, m * dim);
        self.real_batch(be, real);
        self.fresh_noise(be);
        self.g.forward(be, self.z, m, true, Some(fake));
        let logits = self.d.forward(be, self.x_d, 2 * m, true, None);
        let dl = self.dlogits.slice(0, 2 * m);
        let stats = self.stats.slice(0, 3);
        be.gan_loss(GanLossKind::Discriminator, dl, logits, m, m, stats, true);
        self.d.backward(be, dl, false, true);
        self.d.update(be, &self.cfg.opt_d);
        self.d_steps += 1;
    }

    /// One generator update on fresh noise: gradients flow through D (whose own parameter
    /// gradients are not computed) into G.
    pub fn generator_step(&mut self, be: &mut dyn Backend) {
        let (m, dim) = (self.cfg.batch, self.cfg.d.input);
        let fake = self.x_d.slice(m * dim, m * dim);
        self.fresh_noise(be);
        self.g.forward(be, self.z, m, true, Some(fake));
        let logits = self.d.forward(be, fake, m, true, None);
        let dl = self.dlogits.slice(0, m);
        let stats = self.stats.slice(3, 3);
        be.gan_loss(self.cfg.g_loss.kind(), dl, logits, 0, m, stats, true);
        let dx = self
            .d
            .backward(be, dl, true, false)
            .expect("input gradient requested");
        self.g.backward(be, dx, false, true);
        self.g.update(be, &self.cfg.opt_g);
        self.g_steps += 1;
    }

    /// One iteration of Algorithm 1: k D-steps then one G-step, submitted as one unit of work.
    pub fn train_iteration(&mut self, be: &mut dyn Backend) {
        for _ in 0..self.cfg.k {
            self.discriminator_step(be);
        }
        self.generator_step(be);
        be.flush();
        self.iteration += 1;
    }

    /// Reads the statistics accumulated since the last call (one small readback) and resets them.
    pub fn take_stats(&mut self, be: &mut dyn Backend) -> Result<Stats> {
        let s = be.read(self.stats)?;
        let (dn, gn) = (self.d_steps.max(1) as f32, self.g_steps.max(1) as f32);
        let out = Stats {
            d_loss: s[0] / dn,
            d_real: s[1] / dn,
            d_fake: s[2] / dn,
            g_loss: s[3] / gn,
            d_steps: self.d_steps,
            g_steps: self.g_steps,
        };
        be.write(self.stats, &[0.0; 6]);
        self.d_steps = 0;
        self.g_steps = 0;
        Ok(out)
    }

    /// `n` samples of G from the noise stream `key` (in batches), row-major [n, dim].
    pub fn generate(&mut self, be: &mut dyn Backend, n: usize, key: RngKey) -> Result<Vec<f32>> {
        let (m, zdim, dim) = (self.cfg.batch, self.cfg.g.input, self.cfg.d.input);
        let mut out = Vec::with_capacity(n * dim);
        let mut done = 0;
        while done < n {
            let rows = (n - done).min(m);
            let k = RngKey::new(key.seed, key.stream, key.counter + (done * zdim) as u64);
            let z = self.z.slice(0, rows * zdim);
            self.draw_noise(be, z, rows * zdim, k);
            let y = self.g.forward(be, z, rows, false, None);
            out.extend(be.read(y)?);
            done += rows;
        }
        Ok(out)
    }

    /// The fixed noise batch of the progress grids: the same z at every sample step.
    pub fn sample_key(&self) -> RngKey {
        RngKey::new(self.cfg.seed, stream::SAMPLE, 0)
    }
}

/// A network's complete training state as host arrays.
#[derive(Clone, Debug, PartialEq)]
pub struct NetState {
    pub params: Vec<f32>,
    pub opt_m: Vec<f32>,
    pub opt_v: Vec<f32>,
    pub steps: u64,
    pub dropout_counter: u64,
}

/// Everything that determines how training continues: with the config, a run restored from
/// this continues exactly as if it had never stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct GanState {
    pub iteration: u64,
    pub rng: RngState,
    pub g: NetState,
    pub d: NetState,
}

fn net_state(be: &mut dyn Backend, n: &Network) -> Result<NetState> {
    Ok(NetState {
        params: be.read(n.params)?,
        opt_m: be.read(n.opt_m)?,
        opt_v: be.read(n.opt_v)?,
        steps: n.steps,
        dropout_counter: n.dropout_counter,
    })
}

fn restore_net(be: &mut dyn Backend, n: &mut Network, s: &NetState, name: &str) -> Result<()> {
    let want = n.spec.param_count();
    for (what, v) in [("parameters", &s.params), ("m", &s.opt_m), ("v", &s.opt_v)] {
        if v.len() != want {
            bail!(
                "the checkpoint's {name} {what} hold {} values but this model has {want}",
                v.len()
            );
        }
    }
    be.write(n.params, &s.params);
    be.write(n.opt_m, &s.opt_m);
    be.write(n.opt_v, &s.opt_v);
    n.steps = s.steps;
    n.dropout_counter = s.dropout_counter;
    Ok(())
}

impl Gan {
    /// Reads the whole training state back to the host.
    pub fn state(&mut self, be: &mut dyn Backend) -> Result<GanState> {
        Ok(GanState {
            iteration: self.iteration,
            rng: self.rng,
            g: net_state(be, &self.g)?,
            d: net_state(be, &self.d)?,
        })
    }

    /// Puts a saved state back, so training continues exactly where it stopped.
    pub fn restore(&mut self, be: &mut dyn Backend, s: &GanState) -> Result<()> {
        restore_net(be, &mut self.g, &s.g, "generator")?;
        restore_net(be, &mut self.d, &s.d, "discriminator")?;
        self.iteration = s.iteration;
        self.rng = s.rng;
        Ok(())
    }
}

//! The training step of Goodfellow et al. 2014, Algorithm 1, written once for both backends:
//! each iteration makes k discriminator updates, each on a real minibatch and a fresh noise
//! minibatch, then one generator update on fresh noise. On the GPU an iteration is one command
//! encoder and one submit; nothing is read back until `take_stats`.

mod log_fields;
pub mod penalty;
mod simultaneous;
mod state;

pub use crate::config::GanConfig;
pub use crate::noise::Noise;
pub use crate::objective::{GeneratorLoss, Loss, Objective};
pub use crate::schedule::{MomentumRamp, Schedule, Updates, epoch};
pub use log_fields::LogField;
pub use state::{GanState, NetState};

use crate::backend::{Backend, DeviceRows, Tensor};
use crate::kernels::ema::ema_update;
use crate::kernels::gan_loss::{LossArgs, Record, gan_loss, gan_loss_with_drift};
use crate::kernels::gather::{gather_labels, gather_rows_f32, gather_rows_u8};
use crate::kernels::optimizer::pad4;
use crate::kernels::rng::rng_index;
use crate::layers::Layer;
use crate::layers::progressive::ProSpec;
use crate::model::Backprop;
use crate::model::{BuiltNet, Network, Optimizer};
use crate::rng::{RngKey, stream};
use anyhow::{Result, bail};

/// Words of the statistics buffer (see `Gan::stats`).
const STATS: usize = 8;

/// Samples the moving average's standing batch-norm statistics are measured on.
pub const STANDING_SAMPLES: usize = 1024;

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
    /// Mean gradient penalty of the D-updates, and the mean ‖∇ₓD‖ it was taken on.
    pub penalty: f32,
    pub grad_norm: f32,
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
    /// [0, 2m): dL/dlogit of a D-step or G-step. [2m, 4m): the simultaneous step's G-loss
    /// gradient over [real; fake] logits, whose real half is never written and stays 0.
    dlogits: Tensor,
    /// (D loss, mean D(x), mean D(G(z))) of D-steps, then (G loss, 0, mean D(G(z))) of G-steps,
    /// then (penalty, mean ‖∇ₓD‖) of D-steps.
    stats: Tensor,
    /// The gradient penalty's buffers, when the objective has one.
    penalty: Option<penalty::Penalty>,
    /// The moving average of G's parameters, when `cfg.ema > 0`.
    pub g_ema: Option<Tensor>,
    /// The batch-norm statistics of the moving average ("standing statistics", see
    /// `standing_statistics`), when G has batch norm and `cfg.ema > 0`; and the G-step count
    /// they were computed at.
    g_ema_state: Option<Tensor>,
    standing_at: Option<u64>,
    pub rng: RngState,
    pub iteration: u64,
    d_steps: u64,
    g_steps: u64,
    /// A conditional GAN's classes: the count, each row's class of D's [real; fake] batch (u32
    /// [2m]: real labels gathered with the images, fake ones drawn; G reads the fake half), and
    /// the dataset's labels on the device (`set_data_labels`).
    classes: Option<usize>,
    y: Option<Tensor>,
    data_labels: Option<Tensor>,
    /// Progressive growing's schedule, and three [batch, channels, r, r] buffers per level for
    /// fading the real images.
    growing: Option<ProSpec>,
    fade_bufs: Vec<[Tensor; 3]>,
}

/// The progressive pair's spec, when G is one.
pub fn progressive_spec(cfg: &GanConfig) -> Option<ProSpec> {
    cfg.g.layers.iter().find_map(|l| match l {
        Layer::ProGenerator(s) => Some(*s),
        _ => None,
    })
}

/// The largest buffer a batch of `m` needs, in words: D holds 2m rows ([real; fake]) of each
/// of its widths (input included), G m rows of its own.
fn words_per_batch_row(cfg: &GanConfig, (g, d): (&BuiltNet, &BuiltNet)) -> (usize, String) {
    let mut worst = (g.input.len(), "the noise batch".to_string());
    for (w, name) in g.widths().into_iter().map(|w| (w, "a generator layer")) {
        worst = worst.max((w, name.into()));
    }
    let d_in = std::iter::once(d.input.len()).chain(d.widths());
    for w in d_in {
        // D's rows are packs: 2m / pack of them.
        let per_sample = (2 * w).div_ceil(cfg.pack.max(1));
        worst = worst.max((
            per_sample,
            "a discriminator layer ([real; fake] rows)".into(),
        ));
    }
    worst
}

/// Fails, naming the limit and the largest batch that fits, when a batch of `cfg.batch` would
/// need a buffer larger than the backend can bind (`nets`: its generator and discriminator).
pub fn check_batch_fits(
    cfg: &GanConfig,
    nets: (&BuiltNet, &BuiltNet),
    max_words: usize,
) -> Result<()> {
    let (per_row, what) = words_per_batch_row(cfg, nets);
    let largest = max_words / per_row.max(1);
    if cfg.batch > largest {
        bail!(
            "--batch {} needs a buffer of {} bytes for {what}, over this adapter's \
             max_storage_buffer_binding_size of {} bytes; the largest batch that fits is {largest}",
            cfg.batch,
            4 * cfg.batch * per_row,
            4 * max_words
        );
    }
    Ok(())
}

impl Gan {
    /// Builds both networks (`GanConfig::build`) and allocates them (`from_built`).
    pub fn new(
        be: &mut dyn Backend,
        cfg: &GanConfig,
        data: DeviceData,
        params: Option<(&[f32], &[f32])>,
    ) -> Result<Self> {
        Self::from_built(be, cfg, cfg.build()?, data, params)
    }

    /// Allocates the networks `cfg.build()` made (generator, discriminator) from their initial
    /// parameters (`init_params` of each unless given) and the device-resident data.
    pub fn from_built(
        be: &mut dyn Backend,
        cfg: &GanConfig,
        (g_net, d_net): (BuiltNet, BuiltNet),
        data: DeviceData,
        params: Option<(&[f32], &[f32])>,
    ) -> Result<Self> {
        if data.row_len() != g_net.output() {
            bail!(
                "the data has {} values per sample but the generator makes {}",
                data.row_len(),
                g_net.output()
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
                g_init = g_net.init_params(cfg.seed, crate::init::G_STREAM);
                d_init = d_net.init_params(cfg.seed, crate::init::D_STREAM);
                (&g_init[..], &d_init[..])
            }
        };
        check_batch_fits(cfg, (&g_net, &d_net), be.max_binding_words())?;
        let m = cfg.batch;
        let dim = g_net.output();
        let g = Network::from_built(be, g_net, m, gp, cfg.seed ^ 0x6e6e)?;
        let d_rows = 2 * m / cfg.pack;
        let mut d = Network::from_built(be, d_net, d_rows, dp, cfg.seed ^ 0xd15c)?;
        d.clip = (cfg.objective.clip > 0.0).then_some(cfg.objective.clip);
        let penalty = match cfg.objective.penalty() {
            Some((kind, weight)) => {
                Some(penalty::Penalty::new(be, &d, kind, weight, m / cfg.pack)?)
            }
            None => None,
        };
        let x_d = be.alloc(2 * m * dim, "discriminator input")?;
        let z = be.alloc(m * cfg.g.input.len(), "noise")?;
        let idx = be.alloc(m, "batch indices")?;
        let dlogits = be.alloc(4 * m, "logit gradients")?;
        let stats = be.alloc(STATS, "loss statistics")?;
        let g_ema = if cfg.ema > 0.0 {
            let t = be.alloc(pad4(gp.len()), "generator moving average")?;
            be.write(t.slice(0, gp.len()), gp);
            Some(t)
        } else {
            None
        };
        let g_ema_state = match g_ema.is_some() && g.has_batch_statistics() {
            true => Some(be.alloc(g.n_state, "generator moving average's statistics")?),
            false => None,
        };
        let (mut g, mut d) = (g, d);
        let classes = cfg.classes();
        let y = match classes {
            Some(_) => {
                let y = be.alloc(2 * m, "classes of the batch")?;
                be.write_u32(y, &vec![0; 2 * m]);
                g.labels = Some(y.slice(m, m));
                d.labels = Some(y);
                Some(y)
            }
            None => None,
        };
        let growing = progressive_spec(cfg);
        let mut fade_bufs = Vec::new();
        if let Some(p) = growing {
            for l in 0..=p.top() {
                let r = ProSpec::res(l);
                let n = m * p.channels * r * r;
                let mut a = |i: usize| be.alloc(n, &format!("real images at level {l} ({i})"));
                fade_bufs.push([a(0)?, a(1)?, a(2)?]);
            }
        }
        let mut gan = Self {
            cfg: cfg.clone(),
            g,
            d,
            data,
            x_d,
            z,
            idx,
            dlogits,
            stats,
            penalty,
            g_ema,
            g_ema_state,
            standing_at: None,
            rng: RngState::default(),
            iteration: 0,
            d_steps: 0,
            g_steps: 0,
            classes,
            y,
            data_labels: None,
            growing,
            fade_bufs,
        };
        gan.apply_growth();
        Ok(gan)
    }

    /// Progressive growing's (level, α) at this iteration: the images trained on so far,
    /// iterations × batch, through the schedule. None for a network that does not grow.
    pub fn growth(&self) -> Option<(usize, f32)> {
        let p = self.growing?;
        Some(p.growth(self.iteration * self.cfg.batch as u64))
    }

    /// The side G's samples are made at now: the current resolution while growing.
    pub fn current_side(&self) -> Option<usize> {
        self.growth().map(|(l, _)| ProSpec::res(l))
    }

    /// Sets both networks to this iteration's level and α, and their optimizers' origin to the
    /// start of this phase (see `reset_optimizers_at_phase_start`).
    pub(crate) fn apply_growth(&mut self) {
        if let Some((level, alpha)) = self.growth() {
            self.g.set_growth(level, alpha);
            self.d.set_growth(level, alpha);
        }
        if let Some(p) = self.growing {
            let start = p.phase_start(self.iteration, self.cfg.batch as u64);
            // One G-update and k D-updates per iteration (one each when simultaneous).
            self.g.opt_origin = start;
            self.d.opt_origin = start * self.cfg.k as u64;
        }
    }

    /// Progressive growing restarts both optimizers at the first iteration of each phase, as
    /// ProGAN's code does (`reset_opt_for_new_lod`): moments gathered for the old networks do
    /// not carry into a fade-in or a stabilisation. The origin is a function of the iteration,
    /// so a resumed run restarts them where an unbroken one does.
    fn reset_optimizers_at_phase_start(&mut self, be: &mut dyn Backend) {
        let Some(p) = self.growing else { return };
        if self.iteration > 0
            && p.phase_start(self.iteration, self.cfg.batch as u64) == self.iteration
        {
            self.g.reset_optimizer(be);
            self.d.reset_optimizer(be);
        }
    }

    /// While a level fades in, the real images are faded as G's output is, from the images at
    /// the new resolution r to the old r/2 upsampled (ProGAN's `process_reals`): x_r =
    /// pool(x) at r, x ← upsample(α·x_r + (1 − α)·upsample(pool(x_r))) at the target side. At
    /// a stable level D's own average pooling brings the batch to r exactly.
    fn fade_reals(&mut self, be: &mut dyn Backend, x: Tensor) {
        use crate::kernels::avgpool::avgpool2x_forward;
        use crate::kernels::fade::{axpby, fade_forward};
        use crate::kernels::upsample::upsample2x_forward;
        let (Some(p), Some((lv, a))) = (self.growing, self.growth()) else {
            return;
        };
        if lv == 0 || a >= 1.0 {
            return;
        }
        let (top, m) = (p.top(), self.cfg.batch);
        let planes = m * p.channels;
        let len = |l: usize| {
            let r = ProSpec::res(l);
            m * p.channels * r * r
        };
        let buf = |l: usize, i: usize| self.fade_bufs[l][i].slice(0, len(l));
        let mut cur = x;
        for l in (lv..top).rev() {
            let r = ProSpec::res(l);
            avgpool2x_forward(be, buf(l, 0), cur, planes, r, r);
            cur = buf(l, 0);
        }
        let half = ProSpec::res(lv - 1);
        avgpool2x_forward(be, buf(lv - 1, 0), cur, planes, half, half);
        upsample2x_forward(be, buf(lv, 1), buf(lv - 1, 0), planes, half, half);
        fade_forward(be, buf(lv, 2), cur, buf(lv, 1), len(lv), a, 1.0 - a);
        if lv == top {
            axpby(be, x, buf(lv, 2), len(lv), 0.0, 1.0);
            return;
        }
        for l in lv + 1..=top {
            let r = ProSpec::res(l - 1);
            let dst = if l == top { x } else { buf(l, 2) };
            upsample2x_forward(be, dst, buf(l - 1, 2), planes, r, r);
        }
    }

    /// The class count of a conditional GAN.
    pub fn classes(&self) -> Option<usize> {
        self.classes
    }

    /// Uploads the dataset's labels (one per row, in 0..classes) for a conditional GAN's real
    /// batches.
    pub fn set_data_labels(&mut self, be: &mut dyn Backend, labels: &[u32]) -> Result<()> {
        let Some(k) = self.classes else {
            bail!("labels given to a GAN that is not conditional");
        };
        if labels.len() != self.data.rows() {
            bail!(
                "{} labels for {} training samples; pass one label per sample",
                labels.len(),
                self.data.rows()
            );
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| **l as usize >= k) {
            bail!("label {l} of sample {i} is out of range for {k} classes");
        }
        let t = be.alloc(labels.len(), "dataset labels")?;
        be.write_u32(t, labels);
        self.data_labels = Some(t);
        Ok(())
    }

    fn draw_noise(&mut self, be: &mut dyn Backend, z: Tensor, n: usize, key: RngKey) {
        self.cfg.noise.draw(be, z, n, key)
    }

    /// Fresh noise for G, and for a conditional G fresh classes (uniform over the classes, from
    /// the class stream at the noise counter, so resuming restores them with the noise).
    fn fresh_noise(&mut self, be: &mut dyn Backend) {
        let n = self.cfg.batch * self.cfg.g.input.len();
        if let (Some(k), Some(y)) = (self.classes, self.y) {
            let m = self.cfg.batch;
            let key = RngKey::new(self.cfg.seed, stream::CLASS, self.rng.noise);
            rng_index(be, y.slice(m, m), m, k as u32, key);
        }
        let key = RngKey::new(self.cfg.seed, stream::NOISE, self.rng.noise);
        self.rng.noise += n as u64;
        self.draw_noise(be, self.z, n, key);
    }

    fn real_batch(&mut self, be: &mut dyn Backend, out: Tensor) {
        let m = self.cfg.batch;
        let key = RngKey::new(self.cfg.seed, stream::BATCH, self.rng.batch);
        self.rng.batch += m as u64;
        rng_index(be, self.idx, m, self.data.rows() as u32, key);
        match &self.data {
            DeviceData::Bytes {
                rows,
                scale,
                offset,
            } => gather_rows_u8(be, out, rows, self.idx, m, *scale, *offset),
            DeviceData::Floats { t, row_len, .. } => {
                gather_rows_f32(be, out, *t, self.idx, m, *row_len)
            }
        }
        if let Some(y) = self.y {
            let labels = self
                .data_labels
                .expect("a conditional GAN trains with the dataset's labels (set_data_labels)");
            gather_labels(be, y.slice(0, m), labels, self.idx, m);
        }
        self.fade_reals(be, out);
    }

    /// One discriminator update: descend D's loss (for the original loss, ascend
    /// log D(x) + log(1 − D(G(z)))) on a real and a fake batch, run through D together as one
    /// batch of 2m rows (2m / pack packs; a pack of consecutive rows is one row of D's input, so
    /// packing is only a change of view), plus the gradient penalty when there is one (one ε
    /// and one gradient norm per row of D's input, so per pack).
    pub fn discriminator_step(&mut self, be: &mut dyn Backend) {
        let (m, dim) = (self.cfg.batch, self.g.output_len());
        let packs = m / self.cfg.pack;
        let real = self.x_d.slice(0, m * dim);
        let fake = self.x_d.slice(m * dim, m * dim);
        self.real_batch(be, real);
        self.fresh_noise(be);
        self.g.forward(be, self.z, m, true, Some(fake));
        let logits = self.d.forward(be, self.x_d, 2 * packs, true, None);
        let dl = self.dlogits.slice(0, 2 * packs);
        let stats = self.stats.slice(0, 3);
        gan_loss_with_drift(
            be,
            self.cfg.objective.d_kind(),
            LossArgs {
                logits,
                grad: dl,
                real: packs,
                fake: packs,
                stats,
            },
            Record::Add,
            self.cfg.objective.drift,
        );
        self.d.backward(be, dl, Backprop::Weights);
        self.add_penalty_gradient(be, real, fake, packs);
        let opt = self.next_d_optimizer();
        self.d.update(be, &opt);
        self.d_steps += 1;
    }

    /// Adds the gradient penalty's ∂P/∂θ to D's parameter gradients, when the objective has
    /// one, for `packs` rows of `real` and `fake` (D's input rows).
    fn add_penalty_gradient(
        &mut self,
        be: &mut dyn Backend,
        real: Tensor,
        fake: Tensor,
        packs: usize,
    ) {
        if let Some(p) = &self.penalty {
            // ε's counter: the noise counter, unique to this D-step and restored on resume.
            let key = RngKey::new(self.cfg.seed, stream::PENALTY, self.rng.noise);
            let stats = self.stats.slice(6, 2);
            let on = penalty::Pair {
                real,
                fake,
                rows: packs,
            };
            p.add_gradient(be, &mut self.d, on, key, stats);
        }
    }

    /// One generator update on fresh noise: gradients flow through D (whose own parameter
    /// gradients are not computed) into G.
    pub fn generator_step(&mut self, be: &mut dyn Backend) {
        let (m, dim) = (self.cfg.batch, self.g.output_len());
        let packs = m / self.cfg.pack;
        let fake = self.x_d.slice(m * dim, m * dim);
        self.fresh_noise(be);
        self.g.forward(be, self.z, m, true, Some(fake));
        // D judges the fake rows alone: their classes are the second half of y.
        let d_labels = self.d.labels;
        self.d.labels = self.y.map(|y| y.slice(m, m));
        let logits = self.d.forward(be, fake, packs, true, None);
        let dl = self.dlogits.slice(0, packs);
        let stats = self.stats.slice(3, 3);
        gan_loss(
            be,
            self.cfg.objective.g_kind(self.cfg.g_loss),
            LossArgs::generated(logits, dl, packs, stats),
            Record::Add,
        );
        let dx = self
            .d
            .backward(be, dl, Backprop::Input)
            .expect("input gradient requested");
        self.d.labels = d_labels;
        self.g.backward(be, dx, Backprop::Weights);
        let opt = self.next_g_optimizer();
        self.g.update(be, &opt);
        self.update_ema(be);
        self.g_steps += 1;
    }

    /// Folds G's new weights into their moving average, when the run keeps one.
    fn update_ema(&mut self, be: &mut dyn Backend) {
        if let Some(avg) = self.g_ema {
            // Warm-up: average over the steps taken so far until there are enough of them.
            let t = self.g.steps as f32;
            let decay = self.cfg.ema.min((1.0 + t) / (10.0 + t));
            ema_update(be, avg, self.g.params, self.g.n_params, decay);
        }
    }

    /// One iteration, submitted as one unit of work: Algorithm 1's k D-steps then one G-step, or
    /// one simultaneous update of both (`Updates::Simultaneous`).
    pub fn train_iteration(&mut self, be: &mut dyn Backend) {
        self.apply_growth();
        self.reset_optimizers_at_phase_start(be);
        if self.cfg.updates == Updates::Simultaneous {
            self.simultaneous_step(be);
        } else {
            for _ in 0..self.cfg.k {
                self.discriminator_step(be);
            }
            self.generator_step(be);
        }
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
            penalty: s[6] / dn,
            grad_norm: s[7] / dn,
            d_steps: self.d_steps,
            g_steps: self.g_steps,
        };
        be.write(self.stats, &[0.0; STATS]);
        self.d_steps = 0;
        self.g_steps = 0;
        Ok(out)
    }

    /// `n` samples of G (its moving average when there is one) from the noise stream `key`,
    /// row-major [n, dim]. G runs in evaluation mode: batch norm uses the moving average's
    /// standing statistics, or the running statistics when samples come from the raw weights.
    pub fn generate(&mut self, be: &mut dyn Backend, n: usize, key: RngKey) -> Result<Vec<f32>> {
        self.generate_classes(be, n, key, None)
    }

    /// `generate` with the class of each sample for a conditional G (`None`: sample i is of
    /// class i mod K, every class equally often).
    pub fn generate_classes(
        &mut self,
        be: &mut dyn Backend,
        n: usize,
        key: RngKey,
        classes: Option<&[u32]>,
    ) -> Result<Vec<f32>> {
        let raw = (self.g.params, self.g.state);
        if let Some(avg) = self.g_ema {
            self.g.params = avg;
        }
        if let Some(stats) = self.standing_statistics(be) {
            self.g.state = stats;
        }
        let out = self.generate_with_current_weights(be, n, key, classes);
        (self.g.params, self.g.state) = raw;
        out
    }

    /// Writes the classes of `rows` samples from sample `first` on into G's label rows: `given`,
    /// or every class in turn.
    fn write_classes(
        &self,
        be: &mut dyn Backend,
        first: usize,
        rows: usize,
        given: Option<&[u32]>,
    ) {
        if let (Some(k), Some(y)) = (self.classes, self.y) {
            let m = self.cfg.batch;
            let labels: Vec<u32> = match given {
                Some(c) => c[first..first + rows].to_vec(),
                None => (first..first + rows).map(|i| (i % k) as u32).collect(),
            };
            be.write_u32(y.slice(m, rows), &labels);
        }
    }

    /// The batch-norm statistics of the moving average of G's weights, recomputed when G has
    /// been updated since they were last: running statistics gathered with the raw weights do
    /// not describe the averaged ones, so the average's own are measured ("standing
    /// statistics", as BigGAN samples): G with the averaged weights runs in training mode over
    /// `STANDING_SAMPLES` fixed noise samples in batches of the training batch, and each batch
    /// norm averages those batches' statistics with equal weights. Nothing of the training
    /// state changes (G's raw state, its dropout counter, the noise streams).
    pub fn standing_statistics(&mut self, be: &mut dyn Backend) -> Option<Tensor> {
        let (stats, avg) = (self.g_ema_state?, self.g_ema?);
        if self.standing_at == Some(self.g.steps) {
            return Some(stats);
        }
        let saved = (self.g.params, self.g.state, self.g.rng);
        // Other state (spectral norm's u and v) follows the raw weights'; every batch-norm
        // statistic is overwritten by the first batch.
        ema_update(be, stats, self.g.state, self.g.n_state, 0.0);
        (self.g.params, self.g.state) = (avg, stats);
        self.g.set_standing_statistics(true);
        let (m, zdim) = (self.cfg.batch, self.cfg.g.input.len());
        for b in 0..STANDING_SAMPLES.div_ceil(m) {
            let key = RngKey::new(self.cfg.seed, stream::STANDING, (b * m * zdim) as u64);
            self.draw_noise(be, self.z, m * zdim, key);
            self.write_classes(be, b * m, m, None);
            self.g.forward(be, self.z, m, true, None);
        }
        self.g.set_standing_statistics(false);
        (self.g.params, self.g.state, self.g.rng) = saved;
        self.standing_at = Some(self.g.steps);
        Some(stats)
    }

    fn generate_with_current_weights(
        &mut self,
        be: &mut dyn Backend,
        n: usize,
        key: RngKey,
        classes: Option<&[u32]>,
    ) -> Result<Vec<f32>> {
        if let Some(c) = classes {
            assert_eq!(c.len(), n, "one class per sample");
        }
        let (m, zdim, dim) = (self.cfg.batch, self.cfg.g.input.len(), self.g.output_len());
        let mut out = Vec::with_capacity(n * dim);
        let mut done = 0;
        while done < n {
            let rows = (n - done).min(m);
            let k = RngKey::new(key.seed, key.stream, key.counter + (done * zdim) as u64);
            let z = self.z.slice(0, rows * zdim);
            self.draw_noise(be, z, rows * zdim, k);
            self.write_classes(be, done, rows, classes);
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

impl Gan {
    /// The optimizers (learning rate and momentum after the schedule) that the next D-update and
    /// the next G-update use.
    pub fn optimizers_now(&self) -> (Optimizer, Optimizer) {
        (self.next_d_optimizer(), self.next_g_optimizer())
    }

    pub(crate) fn next_d_optimizer(&self) -> Optimizer {
        let t = self.d.steps;
        let seen = t * self.cfg.batch as u64;
        let e = crate::schedule::epoch(seen, self.data.rows() as u64);
        self.cfg.schedule.apply(self.cfg.opt_d, t, e)
    }

    pub(crate) fn next_g_optimizer(&self) -> Optimizer {
        let t = self.g.steps;
        let seen = t * (self.cfg.k * self.cfg.batch) as u64;
        let e = crate::schedule::epoch(seen, self.data.rows() as u64);
        self.cfg.schedule.apply(self.cfg.opt_g, t, e)
    }
}

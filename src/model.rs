//! A network on a backend: its built modules over one flat parameter buffer (each tensor a slice
//! of it, llm.c style) with gradients and optimizer state mirroring it, and forward and backward
//! passes that walk the modules in order and in reverse.

use crate::backend::{AdamStep, Backend, Tensor};
use crate::kernels::clip::clip_weights;
use crate::kernels::optimizer::{adam, pad4, rmsprop, sgd_momentum};
use crate::layers::{Built, Bwd, Fwd, Init, NetRng, ParamSpec, StateSpec, Tangent};
pub use crate::layers::{Layer, NetSpec, Shape};
use crate::rng::{self, RngKey};
use anyhow::{Result, bail};

/// How a network's parameters are updated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// The paper's SGD with momentum.
    Sgd { lr: f32, momentum: f32 },
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
    /// PyTorch's RMSprop (no momentum, not centred): the WGAN paper's optimizer for a clipped
    /// critic. The mean square lives where Adam keeps its first moment.
    RmsProp { lr: f32, alpha: f32, eps: f32 },
}

impl Optimizer {
    pub fn adam(lr: f32, beta1: f32, beta2: f32) -> Self {
        Optimizer::Adam {
            lr,
            beta1,
            beta2,
            eps: 1e-8,
        }
    }

    /// RMSProp with PyTorch's defaults (α 0.99, ε 1e-8).
    pub fn rmsprop(lr: f32) -> Self {
        Optimizer::RmsProp {
            lr,
            alpha: 0.99,
            eps: 1e-8,
        }
    }

    pub fn lr(&self) -> f32 {
        match *self {
            Optimizer::Sgd { lr, .. }
            | Optimizer::Adam { lr, .. }
            | Optimizer::RmsProp { lr, .. } => lr,
        }
    }
}

/// A tensor of a network as a checkpoint names it: `key` is its name in a PyTorch
/// `nn.Sequential` of the unfused layers ("2.weight"), `offset..offset + len` its slice of the
/// flat buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub key: String,
    /// PyTorch's shape.
    pub shape: Vec<usize>,
    /// Stored as the transpose of `shape`.
    pub transposed: bool,
    /// A count, stored as int64 in checkpoints (see `StateSpec::integer`).
    pub integer: bool,
    pub offset: usize,
    pub len: usize,
}

impl NetSpec {
    /// The trainable tensors, in flat-buffer order.
    pub fn param_tensors(&self) -> Vec<NamedTensor> {
        let built = self.build("network").unwrap_or_default();
        let mut off = 0;
        let mut out = Vec::new();
        for b in &built {
            for p in b.module.params() {
                out.push(NamedTensor {
                    key: format!("{}.{}", b.index, p.name),
                    shape: p.shape.clone(),
                    transposed: p.transposed,
                    integer: false,
                    offset: off,
                    len: p.len(),
                });
                off += p.len();
            }
        }
        out
    }

    /// The persistent non-trainable tensors, in flat-buffer order.
    pub fn state_tensors(&self) -> Vec<NamedTensor> {
        let built = self.build("network").unwrap_or_default();
        let mut off = 0;
        let mut out = Vec::new();
        for b in &built {
            for s in b.module.state() {
                let len = s.shape.iter().product();
                out.push(NamedTensor {
                    key: format!("{}.{}", b.index, s.name),
                    shape: s.shape.clone(),
                    transposed: false,
                    integer: s.integer,
                    offset: off,
                    len,
                });
                off += len;
            }
        }
        out
    }

    pub fn state_count(&self) -> usize {
        self.state_tensors().iter().map(|t| t.len).sum()
    }

    /// Initial parameters, drawn from the counter-based RNG so every backend starts from the
    /// same numbers: module j's tensors from stream (seed, INIT, stream_offset + j·2³²), each
    /// value by its position in the module's slice.
    pub fn init_params(&self, seed: u64, stream_offset: u64) -> Vec<f32> {
        self.init_params_with(seed, stream_offset, |p| p.init)
    }

    /// `init_params` with each tensor's initialisation chosen by `init` (given the tensor's
    /// spec, whose `init` is the layer's own default), from the same random streams.
    pub fn init_params_with(
        &self,
        seed: u64,
        stream_offset: u64,
        init: impl Fn(&ParamSpec) -> Init,
    ) -> Vec<f32> {
        let built = self.build("network").unwrap_or_default();
        let mut p = Vec::with_capacity(self.param_count());
        let with_params = built.iter().filter(|b| !b.module.params().is_empty());
        for (j, b) in with_params.enumerate() {
            let key = RngKey::new(seed, rng::stream::INIT, stream_offset + ((j as u64) << 32));
            let mut at = 0u64;
            for spec in b.module.params() {
                let how = init(&spec);
                p.extend((0..spec.len() as u64).map(|i| draw(how, key, at + i)));
                at += spec.len() as u64;
            }
        }
        p
    }

    /// Initial persistent state.
    pub fn init_state(&self) -> Vec<f32> {
        let built = self.build("network").unwrap_or_default();
        built
            .iter()
            .flat_map(|b| b.module.state())
            .flat_map(|s: StateSpec| {
                let n: usize = s.shape.iter().product();
                std::iter::repeat_n(s.init, n)
            })
            .collect()
    }

    /// Forward FLOPs of the whole network for `rows` samples.
    pub fn flops(&self, rows: usize) -> f64 {
        self.build("network")
            .map(|b| b.iter().map(|m| m.module.flops(rows)).sum())
            .unwrap_or(0.0)
    }
}

fn draw(init: Init, key: RngKey, i: u64) -> f32 {
    match init {
        Init::Uniform(b) => rng::uniform(key, i, -b, b),
        Init::Normal(s) => s * rng::normal(key, i),
        Init::Const(v) => v,
    }
}

/// Where one module's tensors sit in the flat buffers.
struct Slots {
    params: Vec<(usize, usize)>,
    state: Vec<(usize, usize)>,
}

/// A network's buffers on one backend.
pub struct Network {
    pub spec: NetSpec,
    pub modules: Vec<Built>,
    pub max_batch: usize,
    /// Trainable values (the buffers below hold `pad4` of it).
    pub n_params: usize,
    pub params: Tensor,
    pub grads: Tensor,
    /// Adam's first moment, or SGD's velocity.
    pub opt_m: Tensor,
    /// Adam's second moment.
    pub opt_v: Tensor,
    /// Persistent non-trainable state (at least one word).
    pub state: Tensor,
    pub n_state: usize,
    /// Optimizer steps taken.
    pub steps: u64,
    /// `steps` when the optimizer's state was last reset (progressive growing resets it at each
    /// phase, as ProGAN does): Adam's t is `steps − opt_origin`. Derived from the iteration, not
    /// checkpointed.
    pub opt_origin: u64,
    /// This network's dropout stream.
    pub rng: NetRng,
    /// Every parameter is clamped to [−c, c] after each update (WGAN's weight clipping).
    pub clip: Option<f32>,
    /// Each row's class (u32) for the next forward, backward and tangent pass of a conditional
    /// network; the caller points it at the batch's labels.
    pub labels: Option<Tensor>,
    slots: Vec<Slots>,
    /// Each module's output and input-gradient buffers (None for views).
    outs: Vec<Option<Tensor>>,
    d_ins: Vec<Option<Tensor>>,
    /// The last forward: its input, each module's output view, and the batch.
    input: Option<Tensor>,
    ys: Vec<Tensor>,
    /// Each module's input gradient in the last backward (the tangent pass reads them).
    batch: usize,
}

impl Network {
    /// Allocates everything for batches of up to `max_batch` rows and uploads `params`.
    pub fn new(
        be: &mut dyn Backend,
        spec: &NetSpec,
        max_batch: usize,
        params: &[f32],
        seed: u64,
        name: &str,
    ) -> Result<Self> {
        let mut modules = spec.build(name)?;
        let n = spec.param_count();
        if params.len() != n {
            bail!(
                "{name}: {} parameters given, the model has {n}",
                params.len()
            );
        }
        let alloc_padded = |be: &mut dyn Backend, what: &str| {
            be.alloc(pad4(n), &format!("{name} {what}"))
                .map(|t| t.slice(0, pad4(n)))
        };
        let p = alloc_padded(be, "parameters")?;
        be.write(p.slice(0, n), params);
        let grads = alloc_padded(be, "gradients")?;
        let opt_m = alloc_padded(be, "optimizer m")?;
        let opt_v = alloc_padded(be, "optimizer v")?;
        let n_state = spec.state_count();
        let state = be.alloc(n_state.max(1), &format!("{name} state"))?;
        if n_state > 0 {
            be.write(state.slice(0, n_state), &spec.init_state());
        }
        let (mut slots, mut outs, mut d_ins) = (Vec::new(), Vec::new(), Vec::new());
        let (mut p_off, mut s_off) = (0, 0);
        for (i, b) in modules.iter_mut().enumerate() {
            let m = &mut b.module;
            let label = format!("{name} layer {}", b.index);
            m.alloc(be, max_batch, &label)?;
            let take = |len: usize, off: &mut usize| {
                let s = (*off, len);
                *off += len;
                s
            };
            slots.push(Slots {
                params: m
                    .params()
                    .iter()
                    .map(|t| take(t.len(), &mut p_off))
                    .collect(),
                state: m
                    .state()
                    .iter()
                    .map(|t| take(t.shape.iter().product(), &mut s_off))
                    .collect(),
            });
            if m.is_view() {
                outs.push(None);
                d_ins.push(None);
            } else {
                let out = max_batch * m.output().len();
                outs.push(Some(be.alloc(out, &format!("{label} output"))?));
                // The first module's input gradient is only wanted by callers that ask for it.
                let d_in = max_batch * m.input().len();
                d_ins.push(Some(
                    be.alloc(d_in, &format!("{label} input gradient ({i})"))?,
                ));
            }
        }
        let mut net = Self {
            spec: spec.clone(),
            modules,
            max_batch,
            n_params: n,
            params: p,
            grads,
            opt_m,
            opt_v,
            state,
            n_state,
            steps: 0,
            opt_origin: 0,
            rng: NetRng { seed, counter: 0 },
            clip: None,
            labels: None,
            slots,
            outs,
            d_ins,
            input: None,
            ys: Vec::new(),
            batch: 0,
        };
        net.params_changed(be, true);
        Ok(net)
    }

    /// Tells every module its parameters changed (`first`: they were just set).
    fn params_changed(&mut self, be: &mut dyn Backend, first: bool) {
        for i in 0..self.modules.len() {
            let (params, state) = (self.views(self.params, i), self.state_views(i));
            self.modules[i]
                .module
                .params_changed(be, &params, &state, first);
        }
    }

    /// Ok when a gradient penalty's tangent pass runs exactly through every module; the error
    /// names the first module that has none.
    pub fn check_tangent(spec: &NetSpec, name: &str) -> Result<()> {
        for b in spec.build(name)? {
            b.module.check_tangent().map_err(|e| {
                anyhow::anyhow!("{name} layer {} ({}): {e}", b.index, b.module.describe())
            })?;
        }
        Ok(())
    }

    /// Views of module `i`'s parameter tensors in the flat buffer `base` (params or grads).
    fn views(&self, base: Tensor, i: usize) -> Vec<Tensor> {
        self.slots[i]
            .params
            .iter()
            .map(|&(o, l)| base.slice(o, l))
            .collect()
    }

    fn state_views(&self, i: usize) -> Vec<Tensor> {
        self.slots[i]
            .state
            .iter()
            .map(|&(o, l)| self.state.slice(o, l))
            .collect()
    }

    pub fn input_len(&self) -> usize {
        self.spec.input.len()
    }

    pub fn output_len(&self) -> usize {
        self.modules
            .last()
            .map_or(self.input_len(), |b| b.module.output().len())
    }

    /// Runs the network on `x` ([rows, input]). With `out`, the last module writes there (for
    /// example straight into D's input buffer). Returns the output view [rows, output].
    pub fn forward(
        &mut self,
        be: &mut dyn Backend,
        x: Tensor,
        rows: usize,
        train: bool,
        out: Option<Tensor>,
    ) -> Tensor {
        assert!(
            rows <= self.max_batch,
            "batch {rows} exceeds the network's {}",
            self.max_batch
        );
        // The last module that writes a buffer (views after it pass its output through).
        let writer = self.modules.iter().rposition(|b| !b.module.is_view());
        let mut cur = x.slice(0, rows * self.input_len());
        self.input = Some(cur);
        self.batch = rows;
        self.ys.clear();
        for i in 0..self.modules.len() {
            let len = rows * self.modules[i].module.output().len();
            let y = match (&self.outs[i], out) {
                (None, _) => cur,
                (Some(_), Some(o)) if Some(i) == writer => o.slice(0, len),
                (Some(buf), _) => buf.slice(0, len),
            };
            let (params, state) = (self.views(self.params, i), self.state_views(i));
            let f = Fwd {
                x: cur,
                y,
                rows,
                params: &params,
                state: &state,
                train,
                labels: self.labels.map(|l| l.slice(0, rows)),
            };
            self.modules[i].module.forward(be, &f, &mut self.rng);
            self.ys.push(y);
            cur = y;
        }
        cur
    }

    /// Backpropagates `dout` ([rows, output]) through the last forward. Parameter gradients are
    /// overwritten when `param_grads`; the gradient w.r.t. the input is returned when
    /// `input_grad` (it is skipped otherwise, saving the first layer's largest product).
    pub fn backward(
        &mut self,
        be: &mut dyn Backend,
        dout: Tensor,
        input_grad: bool,
        param_grads: bool,
    ) -> Option<Tensor> {
        let rows = self.batch;
        let input = self.input.expect("backward needs a forward first");
        let mut d = dout;
        for i in (0..self.modules.len()).rev() {
            let need_dx = i > 0 || input_grad;
            let m = &self.modules[i].module;
            let dx = match self.d_ins[i] {
                None => d,
                Some(buf) => buf.slice(0, rows * m.input().len()),
            };
            let (params, state) = (self.views(self.params, i), self.state_views(i));
            let grads = self.views(self.grads, i);
            let b = Bwd {
                x: if i == 0 { input } else { self.ys[i - 1] },
                y: self.ys[i],
                dy: d,
                dx: need_dx.then_some(dx),
                rows,
                params: &params,
                grads: param_grads.then_some(&grads[..]),
                state: &state,
                labels: self.labels.map(|l| l.slice(0, rows)),
            };
            self.modules[i].module.backward(be, &b);
            if !need_dx {
                return None;
            }
            d = dx;
        }
        Some(d)
    }

    /// The tangent pass of a gradient penalty, after a `backward` to the input: sweeps `v`
    /// ([rows, input], the penalty's derivative w.r.t. the input gradient) forward through every
    /// module, adding each module's penalty term to the parameter gradients. `scratch` holds two
    /// buffers of the widest layer.
    pub fn tangent(&mut self, be: &mut dyn Backend, v: Tensor, scratch: [Tensor; 2]) -> Result<()> {
        let rows = self.batch;
        let input = self.input.expect("the tangent pass needs a forward first");
        let mut cur = v;
        // Views pass v through; the others alternate between the two scratch buffers.
        let mut written = 0;
        for i in 0..self.modules.len() {
            if self.modules[i].module.is_view() {
                continue;
            }
            let len = rows * self.modules[i].module.output().len();
            let v_out = scratch[written % 2].slice(0, len);
            written += 1;
            let (params, grads) = (self.views(self.params, i), self.views(self.grads, i));
            let t = Tangent {
                x: if i == 0 { input } else { self.ys[i - 1] },
                y: self.ys[i],
                v_in: cur,
                v_out,
                rows,
                params: &params,
                grads: &grads,
                state: &self.state_views(i),
                labels: self.labels.map(|l| l.slice(0, rows)),
            };
            self.modules[i].module.tangent(be, &t)?;
            cur = v_out;
        }
        Ok(())
    }

    /// Progressive growing: every module that grows runs at `level` (0 = 4×4) with the fade-in's
    /// `alpha` (1 = not fading) from now on.
    pub fn set_growth(&mut self, level: usize, alpha: f32) {
        for b in &mut self.modules {
            b.module.set_growth(level, alpha);
        }
    }

    /// Whether any module normalises with batch statistics (and keeps running ones).
    pub fn has_batch_statistics(&self) -> bool {
        self.modules.iter().any(|b| b.module.batch_statistics())
    }

    /// Turns standing statistics on or off in every batch-norm module: while on, training
    /// forwards average their batch statistics with equal weights from the first one on.
    pub fn set_standing_statistics(&mut self, on: bool) {
        for b in &mut self.modules {
            b.module.set_standing_statistics(on);
        }
    }

    /// One optimizer step on the gradients of the last backward, then the weight clipping of
    /// `clip` and the modules' updates of state that follows the weights (spectral norm).
    /// Clears the optimizer's state (Adam's moments, SGD's velocity) and restarts Adam's bias
    /// correction from the next update.
    /// On the device, so an iteration that does it still uploads nothing.
    pub fn reset_optimizer(&mut self, be: &mut dyn Backend) {
        let n = pad4(self.n_params);
        for state in [self.opt_m, self.opt_v] {
            // Weights 0 and 0: the kernel reads neither term and writes zeros.
            crate::kernels::fade::axpby(be, state, self.params, n, 0.0, 0.0);
        }
        self.opt_origin = self.steps;
    }

    pub fn update(&mut self, be: &mut dyn Backend, opt: &Optimizer) {
        self.steps += 1;
        let n = pad4(self.n_params);
        match *opt {
            Optimizer::Sgd { lr, momentum } => {
                sgd_momentum(be, self.params, self.grads, self.opt_m, n, lr, momentum)
            }
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                let step = AdamStep {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    t: self.steps - self.opt_origin,
                };
                adam(
                    be,
                    self.params,
                    self.grads,
                    self.opt_m,
                    self.opt_v,
                    n,
                    &step,
                )
            }
            Optimizer::RmsProp { lr, alpha, eps } => {
                rmsprop(be, self.params, self.grads, self.opt_m, n, lr, alpha, eps)
            }
        }
        if let Some(c) = self.clip {
            clip_weights(be, self.params, n, c);
        }
        self.params_changed(be, false);
    }

    /// The unpadded view of a padded flat buffer.
    pub fn unpadded(&self, t: Tensor) -> Tensor {
        t.slice(0, self.n_params)
    }
}

//! A network on a backend: its built modules over one flat parameter buffer (each tensor a slice
//! of it, llm.c style) with gradients and optimizer state mirroring it; the forward, backward and
//! tangent passes are the one sequence walk (`layers::sequence::Seq`) every module tree uses.

use crate::backend::{AdamStep, Backend, Tensor};
use crate::kernels::clip::clip_weights;
use crate::kernels::optimizer::{RmsPropStep, adam, pad4, rmsprop, sgd_momentum};
use crate::layers::NetRng;
use crate::layers::sequence::{Outer, Seq};
pub use crate::layers::{BuiltNet, Layer, NamedTensor, NetSpec, Shape};
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

/// What a network's backward pass writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backprop {
    /// The parameter gradients only (the network's own update).
    Weights,
    /// The gradient w.r.t. the input only (G's update through D, a penalty's input gradient);
    /// the parameter gradients are left as they are.
    Input,
    /// Both.
    Both,
}

impl Backprop {
    fn input(self) -> bool {
        self != Backprop::Weights
    }

    fn weights(self) -> bool {
        self != Backprop::Input
    }
}

/// A network's buffers on one backend.
pub struct Network {
    pub input: Shape,
    /// Every module's output length (from the build).
    pub widths: Vec<usize>,
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
    /// The modules, walked as any sequence is (the same walk as a residual path's or a
    /// progressive block's).
    seq: Seq,
    /// Each parameter and state tensor's (offset, length) in the flat buffers, in module order:
    /// views are taken of `params`, `grads` and `state` as they are at each pass (sampling
    /// points `params` and `state` at the weight average's for a while).
    param_slots: Vec<(usize, usize)>,
    state_slots: Vec<(usize, usize)>,
}

/// The tensors one pass of a network reads (see `Network::pass`).
struct Pass {
    rows: usize,
    params: Vec<Tensor>,
    state: Vec<Tensor>,
    labels: Option<Tensor>,
}

impl Pass {
    fn outer(&self, train: bool) -> Outer<'_> {
        Outer {
            rows: self.rows,
            train,
            params: &self.params,
            state: &self.state,
            labels: self.labels,
        }
    }
}

/// Views of `base` at `slots`.
fn views(base: Tensor, slots: &[(usize, usize)]) -> Vec<Tensor> {
    slots.iter().map(|&(o, l)| base.slice(o, l)).collect()
}

/// Consecutive (offset, length) slots of `lens`.
fn slots(lens: impl Iterator<Item = usize>) -> Vec<(usize, usize)> {
    let mut off = 0;
    lens.map(|len| {
        off += len;
        (off - len, len)
    })
    .collect()
}

impl Network {
    /// Builds `spec` and allocates it (see `from_built`).
    pub fn new(
        be: &mut dyn Backend,
        spec: &NetSpec,
        max_batch: usize,
        params: &[f32],
        seed: u64,
        name: &str,
    ) -> Result<Self> {
        Self::from_built(be, spec.build(name)?, max_batch, params, seed)
    }

    /// Allocates everything for batches of up to `max_batch` rows and uploads `params`.
    pub fn from_built(
        be: &mut dyn Backend,
        built: BuiltNet,
        max_batch: usize,
        params: &[f32],
        seed: u64,
    ) -> Result<Self> {
        let (n, n_state, init_state) =
            (built.param_count(), built.state_count(), built.init_state());
        let (input, widths, name) = (built.input, built.widths(), built.name.clone());
        let name = name.as_str();
        let mut seq = Seq::from_built(String::new(), built.modules);
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
        let state = be.alloc(n_state.max(1), &format!("{name} state"))?;
        if n_state > 0 {
            be.write(state.slice(0, n_state), &init_state);
        }
        seq.alloc(be, max_batch, false, name)?;
        let param_slots = slots(seq.params().iter().map(|t| t.len()));
        let state_slots = slots(seq.state().iter().map(|t| t.shape.iter().product()));
        let mut net = Self {
            input,
            widths,
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
            seq,
            param_slots,
            state_slots,
        };
        net.params_changed(be, true);
        Ok(net)
    }

    /// Tells every module its parameters changed (`first`: they were just set).
    fn params_changed(&mut self, be: &mut dyn Backend, first: bool) {
        let pass = self.pass(0);
        self.seq
            .params_changed(be, &pass.params, &pass.state, first);
    }

    /// What a pass over `rows` rows reads: views of the parameters and state as the buffers are
    /// now, and the rows' classes.
    fn pass(&self, rows: usize) -> Pass {
        Pass {
            rows,
            params: views(self.params, &self.param_slots),
            state: views(self.state, &self.state_slots),
            labels: self.labels.map(|l| l.slice(0, rows)),
        }
    }

    pub fn input_len(&self) -> usize {
        self.input.len()
    }

    pub fn output_len(&self) -> usize {
        self.seq.output_or(self.input).len()
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
        let x = x.slice(0, rows * self.input_len());
        let pass = self.pass(rows);
        self.seq
            .forward(be, pass.outer(train), x, &mut self.rng, out)
    }

    /// Backpropagates `dout` ([rows, output]) through the last forward, writing what `what`
    /// asks for. Returns the gradient w.r.t. the input when asked (it is skipped otherwise,
    /// saving the first layer's largest product).
    pub fn backward(
        &mut self,
        be: &mut dyn Backend,
        dout: Tensor,
        what: Backprop,
    ) -> Option<Tensor> {
        let rows = self.seq.rows();
        let pass = self.pass(rows);
        let o = pass.outer(true);
        let g = views(self.grads, &self.param_slots);
        let grads = what.weights().then_some(&g[..]);
        self.seq.backward(be, o, dout, what.input(), grads)
    }

    /// The tangent pass of a gradient penalty, after a `backward` to the input: sweeps `v`
    /// ([rows, input], the penalty's derivative w.r.t. the input gradient) forward through every
    /// module, adding each module's penalty term to the parameter gradients. `scratch` holds two
    /// buffers of the widest layer.
    pub fn tangent(&mut self, be: &mut dyn Backend, v: Tensor, scratch: [Tensor; 2]) -> Result<()> {
        let rows = self.seq.rows();
        self.seq.set_tangent_buffers(scratch);
        let pass = self.pass(rows);
        let o = pass.outer(true);
        let g = views(self.grads, &self.param_slots);
        self.seq.tangent(be, o, v, &g, None)?;
        Ok(())
    }

    /// Progressive growing: every module that grows runs at `level` (0 = 4×4) with the fade-in's
    /// `alpha` (1 = not fading) from now on.
    pub fn set_growth(&mut self, level: usize, alpha: f32) {
        self.seq.set_growth(level, alpha);
    }

    /// Whether any module normalises with batch statistics (and keeps running ones).
    pub fn has_batch_statistics(&self) -> bool {
        self.seq.batch_statistics()
    }

    /// Turns standing statistics on or off in every batch-norm module: while on, training
    /// forwards average their batch statistics with equal weights from the first one on.
    pub fn set_standing_statistics(&mut self, on: bool) {
        self.seq.set_standing_statistics(on);
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
                let step = RmsPropStep { lr, alpha, eps };
                rmsprop(be, self.params, self.grads, self.opt_m, n, &step)
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

//! Multilayer networks written once for both backends: a list of layers, one flat parameter
//! buffer (each tensor a slice of it, llm.c style) with gradients and optimizer state mirroring
//! it, and forward/backward passes that are sequences of named kernel calls.

use crate::backend::{Activation, AdamStep, Backend, Tensor};
use crate::rng::{self, RngKey};
use anyhow::{Result, bail};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layer {
    /// A fully connected layer with this many outputs: y = x·W + b, W is [in, out].
    Linear(usize),
    Act(Activation),
    /// Max over consecutive groups of this many inputs (follows a Linear of units × pieces).
    Maxout(usize),
    /// Inverted dropout keeping each input with this probability while training.
    Dropout(f32),
}

/// A network's shape: input width and layers in order.
#[derive(Clone, Debug, PartialEq)]
pub struct NetSpec {
    pub input: usize,
    pub layers: Vec<Layer>,
}

impl NetSpec {
    /// Output width of each layer.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = self.input;
        self.layers
            .iter()
            .map(|l| {
                w = match *l {
                    Layer::Linear(out) => out,
                    Layer::Maxout(p) => w / p,
                    _ => w,
                };
                w
            })
            .collect()
    }

    pub fn output(&self) -> usize {
        self.widths().last().copied().unwrap_or(self.input)
    }

    /// (W offset, b offset, fan-in, fan-out) of each Linear in the flat parameter buffer.
    fn linear_slots(&self) -> Vec<(usize, usize, usize, usize)> {
        let mut slots = Vec::new();
        let (mut w, mut off) = (self.input, 0);
        for l in &self.layers {
            match *l {
                Layer::Linear(out) => {
                    slots.push((off, off + w * out, w, out));
                    off += w * out + out;
                    w = out;
                }
                Layer::Maxout(p) => w /= p,
                _ => {}
            }
        }
        slots
    }

    pub fn param_count(&self) -> usize {
        self.linear_slots()
            .last()
            .map_or(0, |&(_, b, _, out)| b + out)
    }

    pub fn validate(&self, name: &str) -> Result<()> {
        if self.input == 0 {
            bail!("{name}: input width must be positive");
        }
        let mut w = self.input;
        for (i, l) in self.layers.iter().enumerate() {
            match *l {
                Layer::Linear(0) => bail!("{name}: layer {i} has zero outputs"),
                Layer::Linear(out) => w = out,
                Layer::Maxout(p) if p == 0 || !w.is_multiple_of(p) => {
                    bail!("{name}: maxout with {p} pieces after a layer of width {w}")
                }
                Layer::Maxout(p) => w /= p,
                Layer::Dropout(q) if !(q > 0.0 && q <= 1.0) => {
                    bail!("{name}: dropout keep probability {q} is not in (0, 1]")
                }
                _ => {}
            }
        }
        if !self.layers.iter().any(|l| matches!(l, Layer::Linear(_))) {
            bail!("{name}: a network needs at least one linear layer");
        }
        Ok(())
    }

    /// "784 → 1024 → LeakyReLU(0.2) → …"
    pub fn describe(&self) -> String {
        let mut s = self.input.to_string();
        for l in &self.layers {
            s += &match l {
                Layer::Linear(o) => format!(" → {o}"),
                Layer::Act(Activation::LeakyRelu(a)) => format!(" LeakyReLU({a})"),
                Layer::Act(a) => format!(" {a:?}"),
                Layer::Maxout(p) => format!(" maxout×{p}"),
                Layer::Dropout(q) => format!(" dropout(keep {q})"),
            };
        }
        s
    }

    /// PyTorch's default Linear init: W and b uniform in ±1/sqrt(fan_in), drawn from the
    /// counter-based RNG so every backend starts from the same numbers.
    pub fn init_params(&self, seed: u64, stream_offset: u64) -> Vec<f32> {
        let mut p = vec![0.0f32; self.param_count()];
        for (li, &(w_off, _, fan_in, out)) in self.linear_slots().iter().enumerate() {
            let bound = 1.0 / (fan_in as f32).sqrt();
            let key = RngKey::new(seed, rng::stream::INIT, stream_offset + ((li as u64) << 32));
            let n = fan_in * out + out;
            for (i, v) in p[w_off..w_off + n].iter_mut().enumerate() {
                *v = rng::uniform(key, i as u64, -bound, bound);
            }
        }
        p
    }
}

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

    pub fn lr(&self) -> f32 {
        match *self {
            Optimizer::Sgd { lr, .. } | Optimizer::Adam { lr, .. } => lr,
        }
    }
}

struct LayerBuffers {
    /// Output activations, [max_batch, out width].
    out: Tensor,
    /// Gradient w.r.t. this layer's input, [max_batch, in width].
    d_in: Tensor,
    /// Maxout's winning pieces.
    idx: Option<Tensor>,
    /// Dropout's key in the last forward, redrawn by backward.
    key: RngKey,
}

/// A network's buffers on one backend.
pub struct Network {
    pub spec: NetSpec,
    pub max_batch: usize,
    pub params: Tensor,
    pub grads: Tensor,
    /// Adam's first moment, or SGD's velocity.
    pub opt_m: Tensor,
    /// Adam's second moment.
    pub opt_v: Tensor,
    /// Optimizer steps taken (Adam's t).
    pub steps: u64,
    /// Seed and next counter of this network's dropout masks.
    pub seed: u64,
    pub dropout_counter: u64,
    layers: Vec<LayerBuffers>,
    /// `spec.widths()` and `spec.linear_slots()`, fixed for the network's life.
    widths: Vec<usize>,
    slots: Vec<(usize, usize, usize, usize)>,
    /// Views used by the last forward: its input and each layer's output.
    input: Option<Tensor>,
    outs: Vec<Tensor>,
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
        spec.validate(name)?;
        let n = spec.param_count();
        if params.len() != n {
            bail!(
                "{name}: {} parameters given, the model has {n}",
                params.len()
            );
        }
        let p = be.alloc(n, &format!("{name} parameters"))?;
        be.write(p, params);
        let grads = be.alloc(n, &format!("{name} gradients"))?;
        let opt_m = be.alloc(n, &format!("{name} optimizer m"))?;
        let opt_v = be.alloc(n, &format!("{name} optimizer v"))?;
        let mut layers = Vec::new();
        let mut w_in = spec.input;
        for (i, (l, w_out)) in spec.layers.iter().zip(spec.widths()).enumerate() {
            let label = format!("{name} layer {i}");
            layers.push(LayerBuffers {
                out: be.alloc(max_batch * w_out, &format!("{label} output"))?,
                d_in: be.alloc(max_batch * w_in, &format!("{label} input gradient"))?,
                idx: match l {
                    Layer::Maxout(_) => {
                        Some(be.alloc(max_batch * w_out, &format!("{label} argmax"))?)
                    }
                    _ => None,
                },
                key: RngKey::new(seed, rng::stream::DROPOUT, 0),
            });
            w_in = w_out;
        }
        Ok(Self {
            spec: spec.clone(),
            max_batch,
            params: p,
            grads,
            opt_m,
            opt_v,
            steps: 0,
            seed,
            dropout_counter: 0,
            layers,
            widths: spec.widths(),
            slots: spec.linear_slots(),
            input: None,
            outs: Vec::new(),
            batch: 0,
        })
    }

    /// Runs the network on `x` ([m, input]). With `out`, the last layer writes there (for
    /// example straight into D's input buffer). Returns the output view [m, output].
    pub fn forward(
        &mut self,
        be: &mut dyn Backend,
        x: Tensor,
        m: usize,
        train: bool,
        out: Option<Tensor>,
    ) -> Tensor {
        assert!(
            m <= self.max_batch,
            "batch {m} exceeds the network's {}",
            self.max_batch
        );
        let (widths, slots) = (&self.widths, &self.slots);
        let last = self.spec.layers.len() - 1;
        let (mut cur, mut linear) = (x.slice(0, m * self.spec.input), 0);
        self.input = Some(cur);
        self.outs.clear();
        self.batch = m;
        let out_view = |layers: &[LayerBuffers], i: usize| match (i == last, out) {
            (true, Some(o)) => o.slice(0, m * widths[i]),
            _ => layers[i].out.slice(0, m * widths[i]),
        };
        // A Linear followed by an activation runs as one fused kernel writing the activation's
        // output; the Linear's own output buffer is then left unwritten (backward never reads
        // it: the activation's backward uses its output, the Linear's uses its input).
        let mut fused_act = false;
        for (i, layer) in self.spec.layers.iter().enumerate() {
            let w_out = widths[i];
            let y = out_view(&self.layers, i);
            match *layer {
                Layer::Linear(_) => {
                    let (w_off, b_off, fan_in, n) = slots[linear];
                    let w = self.params.slice(w_off, fan_in * n);
                    let b = self.params.slice(b_off, n);
                    match self.spec.layers.get(i + 1) {
                        Some(&Layer::Act(act)) => {
                            let y_act = out_view(&self.layers, i + 1);
                            be.matmul_forward_act(y_act, cur, w, Some(b), act, m, fan_in, n);
                            fused_act = true;
                        }
                        _ => be.matmul_forward(y, cur, w, Some(b), m, fan_in, n),
                    }
                    linear += 1;
                }
                Layer::Act(_) if fused_act => fused_act = false,
                Layer::Act(act) => be.activation_forward(act, y, cur, m * w_out),
                Layer::Maxout(p) => {
                    let idx = self.layers[i].idx.expect("maxout has an index buffer");
                    be.maxout_forward(y, idx.slice(0, m * w_out), cur, m, w_out, p);
                }
                Layer::Dropout(q) => {
                    if train && q < 1.0 {
                        let key =
                            RngKey::new(self.seed, rng::stream::DROPOUT, self.dropout_counter);
                        self.dropout_counter += (m * w_out) as u64;
                        self.layers[i].key = key;
                        be.dropout_forward(y, cur, m * w_out, q, key);
                    } else {
                        be.dropout_forward(y, cur, m * w_out, 1.0, self.layers[i].key);
                    }
                }
            }
            self.outs.push(y);
            cur = y;
        }
        cur
    }

    /// Backpropagates `dout` ([m, output]) through the last forward. Parameter gradients are
    /// overwritten when `param_grads`; the gradient w.r.t. the input is returned when
    /// `input_grad` (it is skipped otherwise, saving the first layer's largest product).
    pub fn backward(
        &mut self,
        be: &mut dyn Backend,
        dout: Tensor,
        input_grad: bool,
        param_grads: bool,
    ) -> Option<Tensor> {
        let m = self.batch;
        let (widths, slots) = (&self.widths, &self.slots);
        let input = self.input.expect("backward needs a forward first");
        let mut linear = slots.len();
        let mut d = dout;
        // Set when a Linear's backward-input already applied the gradient of the activation
        // below it (one fused kernel), so that activation's own backward is skipped.
        let mut act_done = false;
        for i in (0..self.spec.layers.len()).rev() {
            if std::mem::take(&mut act_done) {
                if !(i > 0 || input_grad) {
                    return None;
                }
                continue;
            }
            let w_out = widths[i];
            let w_in = if i == 0 {
                self.spec.input
            } else {
                widths[i - 1]
            };
            let x = if i == 0 { input } else { self.outs[i - 1] };
            let need_dx = i > 0 || input_grad;
            let dx = self.layers[i].d_in.slice(0, m * w_in);
            match self.spec.layers[i] {
                Layer::Linear(_) => {
                    linear -= 1;
                    let (w_off, b_off, fan_in, n) = slots[linear];
                    let w = self.params.slice(w_off, fan_in * n);
                    if param_grads {
                        let dw = self.grads.slice(w_off, fan_in * n);
                        be.matmul_backward_weights(dw, x, d, m, fan_in, n, false);
                        be.bias_backward(self.grads.slice(b_off, n), d, m, n, false);
                    }
                    if need_dx {
                        match i.checked_sub(1).map(|j| self.spec.layers[j]) {
                            Some(Layer::Act(act)) => {
                                let y = self.outs[i - 1];
                                be.matmul_backward_input_act(dx, d, w, act, y, m, fan_in, n);
                                act_done = true;
                            }
                            _ => be.matmul_backward_input(dx, d, w, m, fan_in, n),
                        }
                    }
                }
                Layer::Act(act) => be.activation_backward(act, dx, d, self.outs[i], m * w_out),
                Layer::Maxout(p) => {
                    let idx = self.layers[i].idx.expect("maxout has an index buffer");
                    be.maxout_backward(dx, d, idx.slice(0, m * w_out), m, w_out, p);
                }
                Layer::Dropout(q) => be.dropout_backward(dx, d, m * w_out, q, self.layers[i].key),
            }
            if !need_dx {
                return None;
            }
            d = dx;
        }
        Some(d)
    }

    /// One optimizer step on the gradients of the last backward.
    pub fn update(&mut self, be: &mut dyn Backend, opt: &Optimizer) {
        self.steps += 1;
        let n = self.spec.param_count();
        match *opt {
            Optimizer::Sgd { lr, momentum } => {
                be.sgd_momentum(self.params, self.grads, self.opt_m, n, lr, momentum)
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
                    t: self.steps,
                };
                be.adam(self.params, self.grads, self.opt_m, self.opt_v, n, &step)
            }
        }
    }
}

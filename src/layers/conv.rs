//! A 2-D convolution over NCHW images (PyTorch's nn.Conv2d with bias), y = act(conv(x, W) + b),
//! its activation fused into the product's store. W is [out, in, k, k] as PyTorch stores it.
//!
//! Forward:  y = act(conv(x, W) + b)                   conv2d_forward, bias and act as it stores
//! Backward: δ = dy ⊙ act'(y)     (skipped when the module above already applied it)
//!           dW = Σ δ ⊗ x (conv2d_backward_weights),  db = Σ_{n,pixels} δ,
//!           dx = convᵀ(δ, W) (⊙ f'(x) of the activation below, fused)
//! Tangent:  v_out = conv(v_in, W) ⊙ act'(y),  dW += Σ δ ⊗ v_in

use super::{Bwd, Fwd, Init, Module, NetRng, ParamSpec, Shape, Tangent};
use crate::backend::{Activation, Backend, Tensor};
use crate::kernels::activation::activation_backward;
use crate::kernels::conv::{
    ConvGeom, Store, bias_backward_nchw, conv2d_backward_input, conv2d_backward_weights,
    conv2d_forward, weight_grad_splits,
};
use anyhow::{Result, bail};

/// The geometry both convolution layers share, and what their backward keeps.
pub(super) struct ConvCore {
    /// The convolution this layer computes or is the adjoint of (n set per call).
    pub geom: ConvGeom,
    pub act: Activation,
    /// The gradient arriving in backward is already w.r.t. the pre-activation.
    pub grad_pre_act: bool,
    /// The activation that produced this layer's input, applied in the input-gradient product.
    pub below: Option<Activation>,
    /// δ when backward computes it itself ([max_rows, output]).
    pub delta: Option<Tensor>,
    /// The view of δ the last backward used (the tangent pass reads it).
    pub last_delta: Option<Tensor>,
    /// Slices of the split weight gradient (see `conv2d_backward_weights`).
    pub partials: Option<Tensor>,
}

impl ConvCore {
    pub fn new(geom: ConvGeom, act: Activation) -> Self {
        ConvCore {
            geom,
            act,
            grad_pre_act: false,
            below: None,
            delta: None,
            last_delta: None,
            partials: None,
        }
    }

    pub fn rows(&self, rows: usize) -> ConvGeom {
        ConvGeom {
            n: rows,
            ..self.geom
        }
    }

    /// A weight of PyTorch shape `weight_shape` and a bias of `channels`, with PyTorch's
    /// default initialisation (kaiming-uniform with a = √5): both uniform in ±1/√fan_in,
    /// fan_in = weight.size(1)·kh·kw (for ConvTranspose2d, whose weight is [in, out, k, k],
    /// that is out·k·k — PyTorch's `_calculate_fan_in_and_fan_out` reads dimension 1).
    pub fn params(&self, weight_shape: Vec<usize>, channels: usize) -> Vec<ParamSpec> {
        let fan_in: usize = weight_shape[1..].iter().product();
        let bound = 1.0 / (fan_in as f32).sqrt();
        vec![
            ParamSpec {
                name: "weight",
                shape: weight_shape,
                transposed: false,
                init: Init::Uniform(bound),
            },
            ParamSpec {
                name: "bias",
                shape: vec![channels],
                transposed: false,
                init: Init::Uniform(bound),
            },
        ]
    }

    /// Scratch for batches of up to `max_rows`: δ (`out_len` per sample) and the weight
    /// gradient's partial slices.
    pub fn alloc(
        &mut self,
        be: &mut dyn Backend,
        max_rows: usize,
        out_len: usize,
        label: &str,
    ) -> Result<()> {
        if self.act != Activation::Identity && !self.grad_pre_act {
            self.delta = Some(be.alloc(max_rows * out_len, &format!("{label} δ"))?);
        }
        let g = self.rows(max_rows);
        let splits = weight_grad_splits(&g);
        if splits > 1 {
            let len = splits * g.weight_len();
            self.partials = Some(be.alloc(len, &format!("{label} weight-gradient slices"))?);
        }
        Ok(())
    }

    /// δ = dy ⊙ act'(y), or dy itself when the module above applied act' already.
    pub fn delta(&mut self, be: &mut dyn Backend, b: &Bwd, n: usize) -> Tensor {
        let delta = match self.delta {
            Some(buf) => {
                let d = buf.slice(0, n);
                activation_backward(be, self.act, d, b.dy, b.y, n);
                d
            }
            None => b.dy,
        };
        self.last_delta = Some(delta);
        delta
    }

    /// The store step of the input-gradient product: ⊙ f'(x) of the activation below.
    pub fn below_store(&self, x: Tensor) -> Store {
        match self.below {
            Some(act) if act != Activation::Identity => Store::ActGrad { act, y: x },
            _ => Store::PLAIN,
        }
    }

    /// The tangent pass needs an exact linearisation.
    pub fn check_tangent(&self, what: &str) -> Result<Tensor> {
        if !self.act.is_piecewise_linear() {
            bail!(
                "{what}: the gradient penalty's exact tangent pass supports piecewise-linear \
                 activations (ReLU, LeakyReLU) in the critic"
            );
        }
        Ok(self
            .last_delta
            .expect("the tangent pass follows a backward to the input"))
    }

    pub fn describe(&self, name: &str, input: Shape, output: Shape) -> String {
        let g = &self.geom;
        let mut s = format!(
            "{name}({input} → {output}, k{}, s{}, p{})",
            g.kh, g.stride, g.pad
        );
        if self.act != Activation::Identity {
            s += &format!(" + {}", self.act.describe());
        }
        s
    }
}

/// Checks a convolution's hyperparameters against its input.
pub(super) fn check_hyper(input: Shape, out: usize, k: usize, stride: usize) -> Result<()> {
    if out == 0 {
        bail!("a convolution needs at least one output channel");
    }
    if k == 0 || stride == 0 {
        bail!("kernel size and stride must be at least 1 (got k={k}, stride={stride})");
    }
    if input.is_empty() {
        bail!("the input {input} is empty");
    }
    Ok(())
}

pub struct Conv2d {
    input: Shape,
    core: ConvCore,
}

impl Conv2d {
    pub fn new(
        input: Shape,
        out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        act: Activation,
    ) -> Result<Self> {
        check_hyper(input, out, k, stride)?;
        let geom = ConvGeom {
            n: 0,
            ci: input.c,
            h: input.h,
            w: input.w,
            co: out,
            kh: k,
            kw: k,
            stride,
            pad,
        };
        if !geom.is_valid() {
            bail!(
                "Conv2d kernel {k}×{k} is larger than its input {}×{} padded by {pad}; use a \
                 smaller kernel or more padding",
                input.h,
                input.w
            );
        }
        Ok(Conv2d {
            input,
            core: ConvCore::new(geom, act),
        })
    }
}

impl Module for Conv2d {
    fn describe(&self) -> String {
        self.core.describe("Conv2d", self.input, self.output())
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        let g = &self.core.geom;
        Shape::image(g.co, g.oh(), g.ow())
    }

    fn params(&self) -> Vec<ParamSpec> {
        let g = &self.core.geom;
        self.core.params(vec![g.co, g.ci, g.kh, g.kw], g.co)
    }

    fn flops(&self, rows: usize) -> f64 {
        2.0 * self.core.rows(rows).macs()
    }

    fn alloc(&mut self, be: &mut dyn Backend, max_rows: usize, label: &str) -> Result<()> {
        let out = self.output().len();
        self.core.alloc(be, max_rows, out, label)
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        let g = self.core.rows(f.rows);
        let store = Store::Act {
            bias: Some(f.params[1]),
            act: self.core.act,
        };
        conv2d_forward(be, &g, f.y, f.x, f.params[0], store);
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        let g = self.core.rows(b.rows);
        let delta = self.core.delta(be, b, b.rows * g.out_len());
        if let Some(grads) = b.grads {
            let partials = self.core.partials;
            conv2d_backward_weights(be, &g, grads[0], b.x, delta, false, partials);
            bias_backward_nchw(be, grads[1], delta, g.n, g.co, g.ohw(), false);
        }
        if let Some(dx) = b.dx {
            conv2d_backward_input(be, &g, dx, delta, b.params[0], self.core.below_store(b.x));
        }
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        let delta = self.core.check_tangent(&self.describe())?;
        let g = self.core.rows(t.rows);
        // v_out = conv(v_in, W) ⊙ act'(y): the forward without bias, masked like δ.
        let store = Store::ActGrad {
            act: self.core.act,
            y: t.y,
        };
        conv2d_forward(be, &g, t.v_out, t.v_in, t.params[0], store);
        let partials = self.core.partials;
        conv2d_backward_weights(be, &g, t.grads[0], t.v_in, delta, true, partials);
        Ok(())
    }

    fn fused_activation(&self) -> Option<Activation> {
        Some(self.core.act)
    }

    fn set_grad_pre_activation(&mut self) {
        self.core.grad_pre_act = true;
    }

    fn fuse_activation_below(&mut self, act: Activation) -> bool {
        self.core.below = Some(act);
        true
    }
}

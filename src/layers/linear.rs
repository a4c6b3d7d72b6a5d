//! A fully connected layer, y = act(x·W + b), with its activation fused into the product's store
//! (`act` is Identity when none follows). W is stored [in, out] so the forward product reads it
//! row-major; its PyTorch shape is [out, in] (nn.Linear), which is how checkpoints hold it.
//!
//! Forward:  y = act(x·W + b)                         one matmul, activation in its epilogue
//! Backward: δ = dy ⊙ act'(y)    (skipped when the module above already applied it)
//!           dW = xᵀ·δ,  db = Σ_rows δ,  dx = δ·Wᵀ (⊙ f'(x) of the activation below, fused)
//! Tangent:  v_out = (v_in·W) ⊙ act'(y),  dW += v_inᵀ·δ

use super::{Bwd, Fwd, Init, Module, NetRng, ParamSpec, Shape, Tangent};
use crate::backend::{Activation, Backend, Tensor};
use crate::kernels::activation::activation_backward;
use crate::kernels::bias::bias_backward;
use crate::kernels::matmul::{matmul_backward_input, matmul_backward_weights, matmul_forward};
use anyhow::{Result, bail};

pub struct Linear {
    input: usize,
    out: usize,
    act: Activation,
    /// The gradient arriving in backward is already w.r.t. the pre-activation.
    grad_pre_act: bool,
    /// The activation that produced this layer's input, applied in the input-gradient product.
    below: Option<Activation>,
    /// δ, the pre-activation gradient, when backward computes it itself ([max_rows, out]).
    delta: Option<Tensor>,
    /// The view of δ the last backward used (the tangent pass reads it).
    last_delta: Option<Tensor>,
}

impl Linear {
    pub fn new(input: Shape, out: usize, act: Activation) -> Result<Self> {
        if out == 0 {
            bail!("a linear layer needs at least one output");
        }
        Ok(Linear {
            input: input.len(),
            out,
            act,
            grad_pre_act: false,
            below: None,
            delta: None,
            last_delta: None,
        })
    }
}

impl Module for Linear {
    fn describe(&self) -> String {
        let mut s = format!("Linear({} → {})", self.input, self.out);
        if self.act != Activation::Identity {
            s += &format!(" + {}", self.act.describe());
        }
        s
    }

    fn input(&self) -> Shape {
        Shape::flat(self.input)
    }

    fn output(&self) -> Shape {
        Shape::flat(self.out)
    }

    /// PyTorch's default initialisation: W and b uniform in ±1/sqrt(fan_in).
    fn params(&self) -> Vec<ParamSpec> {
        let bound = 1.0 / (self.input as f32).sqrt();
        vec![
            ParamSpec {
                name: "weight",
                shape: vec![self.out, self.input],
                transposed: true,
                init: Init::Uniform(bound),
            },
            ParamSpec {
                name: "bias",
                shape: vec![self.out],
                transposed: false,
                init: Init::Uniform(bound),
            },
        ]
    }

    fn flops(&self, rows: usize) -> f64 {
        2.0 * (rows * self.input * self.out) as f64
    }

    fn alloc(&mut self, be: &mut dyn Backend, max_rows: usize, label: &str) -> Result<()> {
        if self.act != Activation::Identity && !self.grad_pre_act {
            self.delta = Some(be.alloc(max_rows * self.out, &format!("{label} δ"))?);
        }
        Ok(())
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        let (w, b) = (f.params[0], f.params[1]);
        matmul_forward(
            be,
            f.y,
            f.x,
            w,
            Some(b),
            self.act,
            f.rows,
            self.input,
            self.out,
        );
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        let (m, k, n) = (b.rows, self.input, self.out);
        let delta = match self.delta {
            Some(buf) => {
                let d = buf.slice(0, m * n);
                activation_backward(be, self.act, d, b.dy, b.y, m * n);
                d
            }
            None => b.dy,
        };
        self.last_delta = Some(delta);
        if let Some(g) = b.grads {
            matmul_backward_weights(be, g[0], b.x, delta, m, k, n, false);
            bias_backward(be, g[1], delta, m, n, false);
        }
        if let Some(dx) = b.dx {
            let below = self.below.map(|a| (a, b.x));
            matmul_backward_input(be, dx, delta, b.params[0], below, m, k, n);
        }
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        if !self.act.is_piecewise_linear() {
            bail!(
                "{}: the gradient penalty's exact tangent pass supports piecewise-linear \
                 activations (ReLU, LeakyReLU) in the critic",
                self.describe()
            );
        }
        let (m, k, n) = (t.rows, self.input, self.out);
        let delta = self
            .last_delta
            .expect("the tangent pass follows a backward to the input");
        // v_out = (v_in·W) ⊙ act'(y): the forward product without bias, masked like δ.
        let (a, w) = (
            crate::backend::MatView::new(t.v_in, k, 1),
            crate::backend::MatView::new(t.params[0], n, 1),
        );
        crate::kernels::matmul::matmul_act_grad(be, t.v_out, a, w, self.act, t.y, m, n, k);
        matmul_backward_weights(be, t.grads[0], t.v_in, delta, m, k, n, true);
        Ok(())
    }

    fn fused_activation(&self) -> Option<Activation> {
        Some(self.act)
    }

    fn set_grad_pre_activation(&mut self) {
        self.grad_pre_act = true;
    }

    fn fuse_activation_below(&mut self, act: Activation) -> bool {
        self.below = Some(act);
        true
    }
}

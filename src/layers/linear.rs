//! A fully connected layer, y = act(x·W + b), with its activation fused into the product's store
//! (`act` is Identity when none follows). W is stored [in, out] so the forward product reads it
//! row-major; its PyTorch shape is [out, in] (nn.Linear), which is how checkpoints hold it.
//!
//! Forward:  y = act(x·W + b)                         one matmul, activation in its epilogue
//! Backward: δ = dy ⊙ act'(y)    (skipped when the module above already applied it)
//!           dW = xᵀ·δ,  db = Σ_rows δ,  dx = δ·Wᵀ (⊙ f'(x) of the activation below, fused)
//! Tangent:  v_out = (v_in·W) ⊙ act'(y),  dW += v_inᵀ·δ
//!
//! With spectral norm (`with_spectral_norm`) every product uses W_SN = W/σ(W) and each weight
//! gradient goes through `SpectralNorm::backward`; the trainable tensor is then named
//! `weight_orig` and the state holds `weight_u`, `weight_v`, as PyTorch's `spectral_norm`.

use super::spectral_norm::SpectralNorm;
use super::{Bwd, Fwd, Init, Module, NetRng, ParamSpec, Shape, StateSpec, Tangent};
use crate::backend::{Activation, Backend, Tensor, WriteMode};
use crate::kernels::activation::activation_backward;
use crate::kernels::bias::bias_backward;
use crate::kernels::matmul::{
    Dense, matmul_backward_input, matmul_backward_weights, matmul_forward,
};
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
    /// Spectral normalization of W ([out, in], stored transposed).
    sn: Option<SpectralNorm>,
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
            sn: None,
        })
    }

    /// The same layer computing with W/σ(W) (Miyato et al. 2018).
    pub fn with_spectral_norm(mut self) -> Self {
        self.sn = Some(SpectralNorm::transposed(self.out, self.input));
        self
    }

    /// The weight the products use: W_SN of the last forward, or W.
    fn weight(&self, params: &[Tensor]) -> Tensor {
        self.sn.as_ref().map_or(params[0], |sn| sn.weight())
    }

    /// The product's shape for a batch of `rows`.
    fn dense(&self, rows: usize) -> Dense {
        Dense {
            rows,
            inputs: self.input,
            outputs: self.out,
        }
    }

    /// Writes or adds the weight gradient xᵀ·δ of a batch of `rows`, through σ when normalised.
    fn weight_grad(
        &self,
        be: &mut dyn Backend,
        (dw, store): (Tensor, WriteMode),
        x: Tensor,
        delta: Tensor,
        rows: usize,
        state: &[Tensor],
    ) {
        let dense = self.dense(rows);
        match &self.sn {
            None => matmul_backward_weights(be, dw, x, delta, dense, store),
            Some(sn) => {
                let scratch = sn.grad_scratch();
                matmul_backward_weights(be, scratch, x, delta, dense, WriteMode::Overwrite);
                sn.backward(be, dw, state, store);
            }
        }
    }
}

impl Module for Linear {
    fn describe(&self) -> String {
        let sn = if self.sn.is_some() {
            ", spectral norm"
        } else {
            ""
        };
        let mut s = format!("Linear({} → {}{sn})", self.input, self.out);
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
                name: if self.sn.is_some() {
                    "weight_orig"
                } else {
                    "weight"
                },
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

    fn state(&self) -> Vec<StateSpec> {
        self.sn.as_ref().map_or_else(Vec::new, |sn| sn.state())
    }

    fn flops(&self, rows: usize) -> f64 {
        2.0 * (rows * self.input * self.out) as f64
    }

    fn alloc(&mut self, be: &mut dyn Backend, max_rows: usize, label: &str) -> Result<()> {
        if self.act != Activation::Identity && !self.grad_pre_act {
            self.delta = Some(be.alloc(max_rows * self.out, &format!("{label} δ"))?);
        }
        if let Some(sn) = &mut self.sn {
            sn.alloc(be, label)?;
        }
        Ok(())
    }

    fn params_changed(
        &mut self,
        be: &mut dyn Backend,
        params: &[Tensor],
        state: &[Tensor],
        first: bool,
    ) {
        if let Some(sn) = &self.sn {
            sn.params_changed(be, params[0], state, first);
        }
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        let b = f.params[1];
        let w = match &self.sn {
            Some(sn) => sn.forward(be, f.params[0], f.state),
            None => f.params[0],
        };
        matmul_forward(be, f.y, f.x, w, Some(b), self.act, self.dense(f.rows));
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        let (m, n) = (b.rows, self.out);
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
            self.weight_grad(be, (g[0], WriteMode::Overwrite), b.x, delta, m, b.state);
            bias_backward(be, (g[1], WriteMode::Overwrite), delta, m, n);
        }
        if let Some(dx) = b.dx {
            let below = self.below.map(|a| (a, b.x));
            matmul_backward_input(be, dx, delta, self.weight(b.params), below, self.dense(m));
        }
    }

    fn check_tangent(&self) -> Result<()> {
        if !self.act.is_piecewise_linear() {
            bail!(
                "{}: the gradient penalty's exact tangent pass supports piecewise-linear \
                 activations (ReLU, LeakyReLU) in the critic; a smooth one needs its second \
                 derivative's term, which duel does not compute",
                self.describe()
            );
        }
        Ok(())
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        self.check_tangent()?;
        let (m, k, n) = (t.rows, self.input, self.out);
        let delta = self
            .last_delta
            .expect("the tangent pass follows a backward to the input");
        // v_out = (v_in·W) ⊙ act'(y): the forward product without bias, masked like δ.
        let (a, w) = (
            crate::backend::MatView::new(t.v_in, k, 1),
            crate::backend::MatView::new(self.weight(t.params), n, 1),
        );
        let shape = self.dense(m).forward();
        crate::kernels::matmul::matmul_act_grad(be, t.v_out, a, w, shape, self.act, t.y);
        self.weight_grad(
            be,
            (t.grads[0], WriteMode::Accumulate),
            t.v_in,
            delta,
            m,
            t.state,
        );
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
    fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        params: &[&[f32]],
        state: &[&[f32]],
    ) -> Result<String> {
        let w = match &self.sn {
            Some(sn) => sn.fold(params[0], state),
            None => params[0].to_vec(),
        };
        // Stored [in, out], so y = x·W + b is a plain Gemm.
        let w = g.weight("linear_weight", &[self.input, self.out], &w);
        let b = g.weight("linear_bias", &[self.out], params[1]);
        let y = g.node("Gemm", &[x, &w, &b], vec![]);
        Ok(g.activation(&y, self.act))
    }
}

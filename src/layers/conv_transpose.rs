//! A 2-D transposed convolution over NCHW images (PyTorch's nn.ConvTranspose2d with bias,
//! output_padding 0), the adjoint of a Conv2d: y = act(convᵀ(x, W) + b). W is [in, out, k, k]
//! as PyTorch stores it, which is the [co, ci, k, k] of the convolution it is the adjoint of
//! (that convolution maps this layer's output shape to its input shape), so the kernels run
//! in that convolution's geometry with their roles swapped.
//!
//! Forward:  y = act(convᵀ(x, W) + b)          conv2d_backward_input, bias and act as it stores
//! Backward: δ = dy ⊙ act'(y)     (skipped when the module above already applied it)
//!           dW = Σ x ⊗ δ (conv2d_backward_weights with δ as its input, x as its output
//!           gradient),  db = Σ_{n,pixels} δ,  dx = conv(δ, W) (⊙ f'(x) of the activation below)
//! Tangent:  v_out = convᵀ(v_in, W) ⊙ act'(y),  dW += Σ v_in ⊗ δ
//!
//! With spectral norm the products use W/σ(W), W viewed over dimension 1 as [out, in·k·k]
//! (PyTorch's `spectral_norm` on a ConvTranspose2d), and dW goes through σ.

use super::conv::{ConvCore, check_hyper};
use super::spectral_norm::SpectralNorm;
use super::{Bwd, Fwd, Module, NetRng, ParamSpec, Shape, StateSpec, Tangent};
use crate::backend::{Activation, Backend, Tensor, WriteMode};
use crate::kernels::conv::{
    ConvGeom, Store, bias_backward_nchw, conv2d_backward_input, conv2d_forward,
};
use anyhow::{Result, bail};

pub struct ConvTranspose2d {
    input: Shape,
    /// The adjoint convolution: ci = this layer's output channels, co = its input channels,
    /// h×w = its output size.
    core: ConvCore,
}

impl ConvTranspose2d {
    pub fn new(
        input: Shape,
        out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        act: Activation,
    ) -> Result<Self> {
        check_hyper(input, out, k, stride)?;
        // H_out = (H − 1)·stride − 2·pad + k.
        let size = |n: usize| {
            ((n - 1) * stride + k)
                .checked_sub(2 * pad)
                .filter(|&s| s > 0)
        };
        let (Some(h), Some(w)) = (size(input.h), size(input.w)) else {
            bail!(
                "ConvTranspose2d(k={k}, stride={stride}, pad={pad}) on a {}×{} input has no \
                 output: (size − 1)·stride + k must exceed 2·pad",
                input.h,
                input.w
            );
        };
        let geom = ConvGeom {
            n: 0,
            ci: out,
            h,
            w,
            co: input.c,
            kh: k,
            kw: k,
            stride,
            pad,
        };
        debug_assert_eq!((geom.oh(), geom.ow()), (input.h, input.w));
        Ok(ConvTranspose2d {
            input,
            core: ConvCore::new(geom, act),
        })
    }

    /// The same layer computing with W/σ(W): W [in, out, k, k] viewed as [out, in·k·k].
    pub fn with_spectral_norm(mut self) -> Self {
        let g = &self.core.geom;
        let kk = g.kh * g.kw;
        self.core.sn = Some(SpectralNorm::new(g.ci, g.co * kk, kk));
        self
    }
}

impl Module for ConvTranspose2d {
    fn describe(&self) -> String {
        self.core
            .describe("ConvTranspose2d", self.input, self.output())
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        let g = &self.core.geom;
        Shape::image(g.ci, g.h, g.w)
    }

    /// Weight [in, out, k, k]; bias per output channel.
    fn params(&self) -> Vec<ParamSpec> {
        let g = &self.core.geom;
        self.core.params(vec![g.co, g.ci, g.kh, g.kw], g.ci)
    }

    fn state(&self) -> Vec<StateSpec> {
        self.core.state()
    }

    fn params_changed(
        &mut self,
        be: &mut dyn Backend,
        params: &[Tensor],
        state: &[Tensor],
        first: bool,
    ) {
        self.core.params_changed(be, params, state, first);
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
        let w = self.core.forward_weight(be, f.params, f.state);
        conv2d_backward_input(be, &g, f.y, f.x, w, store);
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        let g = self.core.rows(b.rows);
        let delta = self.core.delta(be, b, b.rows * g.in_len());
        if let Some(grads) = b.grads {
            let dw = (grads[0], WriteMode::Overwrite);
            self.core.weight_grad(be, &g, dw, delta, b.x, b.state);
            let db = (grads[1], WriteMode::Overwrite);
            bias_backward_nchw(be, db, delta, g.n, g.ci, g.h * g.w);
        }
        if let Some(dx) = b.dx {
            let w = self.core.weight(b.params);
            conv2d_forward(be, &g, dx, delta, w, self.core.below_store(b.x));
        }
    }

    fn check_tangent(&self) -> Result<()> {
        self.core.tangent_supported(&self.describe())
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        let delta = self.core.check_tangent(&self.describe())?;
        let g = self.core.rows(t.rows);
        let store = Store::ActGrad {
            act: self.core.act,
            y: t.y,
        };
        conv2d_backward_input(be, &g, t.v_out, t.v_in, self.core.weight(t.params), store);
        let dw = (t.grads[0], WriteMode::Accumulate);
        self.core.weight_grad(be, &g, dw, delta, t.v_in, t.state);
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
    fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        params: &[&[f32]],
        state: &[&[f32]],
    ) -> Result<String> {
        let dims = self.params()[0].shape.clone();
        self.core.onnx(g, "ConvTranspose", x, dims, params, state)
    }
}

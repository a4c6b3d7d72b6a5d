//! Equalized learning rate (Karras et al. 2018): a Linear's or Conv2d's weight is stored as
//! drawn from N(0, 1) and scaled at run time by He's constant c = gain/sqrt(fan_in), so Adam's
//! step, which is invariant to a weight's scale, moves every layer at the same relative rate.
//! The bias starts at 0.
//!
//! The wrapped layer computes with W_eff = c·W (written to a scratch buffer by `axpby` before
//! each forward), so its backward gives dL/dW_eff, and dL/dW = c·dL/dW_eff is one in-place scale.
//! The tangent pass adds c·(δ ⊗ v) through a scratch gradient. Spectral norm is not combined
//! with it.

use super::{Bwd, Fwd, Init, Module, NetRng, ParamSpec, Shape, StateSpec, Tangent};
use crate::backend::{Activation, Backend, Tensor};
use crate::kernels::fade::axpby;
use anyhow::{Result, bail};

pub struct EqualizedLr {
    inner: Box<dyn Module>,
    /// c = gain/sqrt(fan_in).
    scale: f32,
    weight_len: usize,
    w_eff: Option<Tensor>,
    grad_scratch: Option<Tensor>,
}

impl EqualizedLr {
    pub fn new(inner: Box<dyn Module>, gain: f32) -> Result<Self> {
        let p = inner.params();
        if p.is_empty() || !inner.state().is_empty() {
            bail!(
                "equalized learning rate scales a plain Linear's or Conv2d's weight, not {}",
                inner.describe()
            );
        }
        let fan_in: usize = p[0].shape[1..].iter().product();
        Ok(EqualizedLr {
            scale: gain / (fan_in as f32).sqrt(),
            weight_len: p[0].len(),
            inner,
            w_eff: None,
            grad_scratch: None,
        })
    }

    pub fn scale(&self) -> f32 {
        self.scale
    }

    fn eff_params(&self, params: &[Tensor]) -> Vec<Tensor> {
        let mut p = params.to_vec();
        p[0] = self.w_eff.expect("allocated").slice(0, self.weight_len);
        p
    }
}

impl Module for EqualizedLr {
    fn describe(&self) -> String {
        format!(
            "{} (equalized lr ×{:.4})",
            self.inner.describe(),
            self.scale
        )
    }

    fn input(&self) -> Shape {
        self.inner.input()
    }

    fn output(&self) -> Shape {
        self.inner.output()
    }

    fn params(&self) -> Vec<ParamSpec> {
        let mut p = self.inner.params();
        p[0].init = Init::Normal(1.0);
        for q in &mut p[1..] {
            q.init = Init::Const(0.0);
        }
        p
    }

    fn state(&self) -> Vec<StateSpec> {
        Vec::new()
    }

    fn flops(&self, rows: usize) -> f64 {
        self.inner.flops(rows)
    }

    fn alloc(&mut self, be: &mut dyn Backend, max_rows: usize, label: &str) -> Result<()> {
        self.w_eff = Some(be.alloc(self.weight_len, &format!("{label} scaled weight"))?);
        self.grad_scratch =
            Some(be.alloc(self.weight_len, &format!("{label} tangent weight gradient"))?);
        self.inner.alloc(be, max_rows, label)
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, rng: &mut NetRng) {
        let w = self.w_eff.expect("allocated").slice(0, self.weight_len);
        axpby(be, w, f.params[0], self.weight_len, 0.0, self.scale);
        let params = self.eff_params(f.params);
        let inner = Fwd {
            x: f.x,
            y: f.y,
            rows: f.rows,
            params: &params,
            state: f.state,
            train: f.train,
            labels: f.labels,
        };
        self.inner.forward(be, &inner, rng);
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        let params = self.eff_params(b.params);
        let inner = Bwd {
            x: b.x,
            y: b.y,
            dy: b.dy,
            dx: b.dx,
            rows: b.rows,
            params: &params,
            grads: b.grads,
            state: b.state,
            labels: b.labels,
        };
        self.inner.backward(be, &inner);
        if let Some(grads) = b.grads {
            // dL/dW = c·dL/dW_eff (the parameter view is bound but not read).
            axpby(be, grads[0], b.params[0], self.weight_len, self.scale, 0.0);
        }
    }

    fn check_tangent(&self) -> Result<()> {
        self.inner.check_tangent()
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        let params = self.eff_params(t.params);
        let scratch = self
            .grad_scratch
            .expect("allocated")
            .slice(0, self.weight_len);
        axpby(be, scratch, t.params[0], self.weight_len, 0.0, 0.0);
        let mut grads = t.grads.to_vec();
        grads[0] = scratch;
        let inner = Tangent {
            x: t.x,
            y: t.y,
            v_in: t.v_in,
            v_out: t.v_out,
            rows: t.rows,
            params: &params,
            grads: &grads,
            state: t.state,
            labels: t.labels,
        };
        self.inner.tangent(be, &inner)?;
        axpby(be, t.grads[0], scratch, self.weight_len, 1.0, self.scale);
        Ok(())
    }

    fn fused_activation(&self) -> Option<Activation> {
        self.inner.fused_activation()
    }

    fn set_grad_pre_activation(&mut self) {
        self.inner.set_grad_pre_activation()
    }

    fn fuse_activation_below(&mut self, act: Activation) -> bool {
        self.inner.fuse_activation_below(act)
    }
    fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        params: &[&[f32]],
        state: &[&[f32]],
    ) -> Result<String> {
        let w: Vec<f32> = params[0].iter().map(|v| v * self.scale).collect();
        let mut eff = params.to_vec();
        eff[0] = &w;
        self.inner.onnx(g, x, &eff, state)
    }
}

//! An activation on its own (one not fused into the linear layer before it).
//!
//! Forward:  y = f(x)          Backward: dx = f'·dy (f' from y)
//! Tangent:  v_out = f'·v_in   (exact for piecewise-linear f)

use super::{Bwd, Fwd, Module, NetRng, Shape, Tangent};
use crate::backend::{Activation, Backend};
use crate::kernels::activation::{activation_backward, activation_forward};
use anyhow::{Result, bail};

pub struct Act {
    shape: Shape,
    act: Activation,
}

impl Act {
    pub fn new(shape: Shape, act: Activation) -> Self {
        Act { shape, act }
    }
}

impl Module for Act {
    fn describe(&self) -> String {
        self.act.describe()
    }

    fn input(&self) -> Shape {
        self.shape
    }

    fn output(&self) -> Shape {
        self.shape
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        activation_forward(be, self.act, f.y, f.x, f.rows * self.shape.len());
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        if let Some(dx) = b.dx {
            activation_backward(be, self.act, dx, b.dy, b.y, b.rows * self.shape.len());
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
        let n = t.rows * self.shape.len();
        activation_backward(be, self.act, t.v_out, t.v_in, t.y, n);
        Ok(())
    }
    fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        _params: &[&[f32]],
        _state: &[&[f32]],
    ) -> Result<String> {
        Ok(g.activation(x, self.act))
    }
}

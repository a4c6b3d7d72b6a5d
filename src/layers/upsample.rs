//! Nearest-neighbour 2× upsampling (PyTorch's nn.Upsample(scale_factor=2, mode="nearest")):
//! (C, H, W) → (C, 2H, 2W), every value repeated over a 2×2 block.
//!
//! Forward:  y[c, 2i + a, 2j + b] = x[c, i, j]     Backward: dx[c, i, j] = Σ_{a,b} dy[c, 2i + a, 2j + b]
//! Tangent:  v_out = upsample(v_in) (the layer is linear)

use super::{Bwd, Fwd, Module, NetRng, Shape, Tangent};
use crate::backend::Backend;
use crate::kernels::upsample::{upsample2x_backward, upsample2x_forward};
use anyhow::Result;

pub struct Upsample2x {
    input: Shape,
}

impl Upsample2x {
    pub fn new(input: Shape) -> Self {
        Upsample2x { input }
    }
}

impl Module for Upsample2x {
    fn describe(&self) -> String {
        "Upsample(×2, nearest)".into()
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        Shape::image(self.input.c, 2 * self.input.h, 2 * self.input.w)
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        let s = self.input;
        upsample2x_forward(be, f.y, f.x, f.rows * s.c, s.h, s.w);
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        if let Some(dx) = b.dx {
            let s = self.input;
            upsample2x_backward(be, dx, b.dy, b.rows * s.c, s.h, s.w);
        }
    }

    fn check_tangent(&self) -> Result<()> {
        Ok(())
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        let s = self.input;
        upsample2x_forward(be, t.v_out, t.v_in, t.rows * s.c, s.h, s.w);
        Ok(())
    }
    fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        _params: &[&[f32]],
        _state: &[&[f32]],
    ) -> Result<String> {
        Ok(g.upsample2x(x))
    }
}

//! 2× average pooling (PyTorch's nn.AvgPool2d(2)): (C, H, W) → (C, H/2, W/2), each 2×2 block
//! replaced by its mean. Progressive growing's downsampling in D.
//!
//! Forward:  y[c, i, j] = ¼ Σ_{a,b} x[c, 2i + a, 2j + b]     Backward: dx[c, 2i + a, 2j + b] = ¼ dy[c, i, j]
//! Tangent:  v_out = pool(v_in) (the layer is linear)

use super::{Bwd, Fwd, Module, NetRng, Shape, Tangent};
use crate::backend::Backend;
use crate::kernels::avgpool::{avgpool2x_backward, avgpool2x_forward};
use anyhow::{Result, bail};

pub struct AvgPool2x {
    input: Shape,
}

impl AvgPool2x {
    pub fn new(input: Shape) -> Result<Self> {
        if !input.h.is_multiple_of(2) || !input.w.is_multiple_of(2) {
            bail!("2× average pooling needs an even height and width, not {input}");
        }
        Ok(AvgPool2x { input })
    }
}

impl Module for AvgPool2x {
    fn describe(&self) -> String {
        "AvgPool(2×2)".into()
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        Shape::image(self.input.c, self.input.h / 2, self.input.w / 2)
    }

    fn flops(&self, rows: usize) -> f64 {
        (rows * self.input.len()) as f64
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        let o = self.output();
        avgpool2x_forward(be, f.y, f.x, f.rows * o.c, o.h, o.w);
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        if let Some(dx) = b.dx {
            let o = self.output();
            avgpool2x_backward(be, dx, b.dy, b.rows * o.c, o.h, o.w);
        }
    }

    fn check_tangent(&self) -> Result<()> {
        Ok(())
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        let o = self.output();
        avgpool2x_forward(be, t.v_out, t.v_in, t.rows * o.c, o.h, o.w);
        Ok(())
    }
}

//! Global sum pooling: (C, H, W) → C, each channel replaced by the sum over its positions.
//! SNGAN's and SAGAN's ResNet critics pool this way before their last linear layer
//! (`torch.sum(h, dim=(2, 3))`; chainer's `F.sum(h, axis=(2, 3))`).
//!
//! Forward:  y[c] = Σ_{i,j} x[c, i, j]     Backward: dx[c, i, j] = dy[c]
//! Tangent:  v_out = pool(v_in) (the layer is linear)

use super::{Bwd, Fwd, Module, NetRng, Shape, Tangent};
use crate::backend::Backend;
use crate::kernels::sum_pool::{sum_pool_backward, sum_pool_forward};
use anyhow::{Result, bail};

pub struct SumPool {
    input: Shape,
}

impl SumPool {
    pub fn new(input: Shape) -> Result<Self> {
        if input.is_flat() {
            bail!(
                "global sum pooling sums a (C, H, W) input over its positions, not a flat {input}"
            );
        }
        Ok(SumPool { input })
    }

    fn size(&self) -> usize {
        self.input.h * self.input.w
    }
}

impl Module for SumPool {
    fn describe(&self) -> String {
        format!("SumPool({} → {})", self.input, self.input.c)
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        Shape::flat(self.input.c)
    }

    fn flops(&self, rows: usize) -> f64 {
        (rows * self.input.len()) as f64
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        sum_pool_forward(be, f.y, f.x, f.rows * self.input.c, self.size());
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        if let Some(dx) = b.dx {
            sum_pool_backward(be, dx, b.dy, b.rows * self.input.c, self.size());
        }
    }

    fn check_tangent(&self) -> Result<()> {
        Ok(())
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        sum_pool_forward(be, t.v_out, t.v_in, t.rows * self.input.c, self.size());
        Ok(())
    }
}

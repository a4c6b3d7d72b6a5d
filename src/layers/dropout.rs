//! Inverted dropout: keep each value with probability `keep` while training and scale it by
//! 1/keep; the identity at evaluation. The mask is redrawn from the forward's key in backward.
//!
//! Forward:  y = x·mask/keep        Backward: dx = dy·mask/keep      Tangent: the same mask

use super::{Bwd, Fwd, Module, NetRng, Shape, Tangent};
use crate::backend::Backend;
use crate::kernels::dropout::{dropout_backward, dropout_forward};
use crate::rng::RngKey;
use anyhow::{Result, bail};

pub struct Dropout {
    shape: Shape,
    keep: f32,
    /// The last forward's key and keep probability (1 at evaluation).
    last: (RngKey, f32),
}

impl Dropout {
    pub fn new(shape: Shape, keep: f32) -> Result<Self> {
        if !(keep > 0.0 && keep <= 1.0) {
            bail!("dropout keep probability {keep} is not in (0, 1]");
        }
        Ok(Dropout {
            shape,
            keep,
            last: (RngKey::new(0, 0, 0), 1.0),
        })
    }
}

impl Module for Dropout {
    fn describe(&self) -> String {
        format!("Dropout(keep {})", self.keep)
    }

    fn input(&self) -> Shape {
        self.shape
    }

    fn output(&self) -> Shape {
        self.shape
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, rng: &mut NetRng) {
        let n = f.rows * self.shape.len();
        self.last = if f.train && self.keep < 1.0 {
            (rng.take(n), self.keep)
        } else {
            (self.last.0, 1.0)
        };
        dropout_forward(be, f.y, f.x, n, self.last.1, self.last.0);
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        if let Some(dx) = b.dx {
            let n = b.rows * self.shape.len();
            dropout_backward(be, dx, b.dy, n, self.last.1, self.last.0);
        }
    }

    fn check_tangent(&self) -> Result<()> {
        Ok(())
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        let n = t.rows * self.shape.len();
        dropout_forward(be, t.v_out, t.v_in, n, self.last.1, self.last.0);
        Ok(())
    }
}

//! Maxout (Goodfellow et al. 2013): each unit is the max over `pieces` consecutive inputs. The
//! winners of the last forward are kept, so backward (and the tangent pass) route through them.
//!
//! Forward:  y[u] = max_j x[u·pieces + j]        Backward: dx = dy at the winner, 0 elsewhere

use super::{Bwd, Fwd, Module, NetRng, Shape};
use crate::backend::{Backend, Tensor};
use crate::kernels::maxout::{maxout_backward, maxout_forward};
use anyhow::{Result, bail};

pub struct Maxout {
    input: usize,
    pieces: usize,
    /// The winning piece of every unit in the last forward, [max_rows, units].
    idx: Option<Tensor>,
}

impl Maxout {
    pub fn new(input: Shape, pieces: usize) -> Result<Self> {
        let w = input.len();
        if pieces == 0 || !w.is_multiple_of(pieces) {
            bail!("maxout with {pieces} pieces after a layer of width {w}");
        }
        Ok(Maxout {
            input: w,
            pieces,
            idx: None,
        })
    }

    fn units(&self) -> usize {
        self.input / self.pieces
    }
}

impl Module for Maxout {
    fn describe(&self) -> String {
        format!("Maxout({} units × {})", self.units(), self.pieces)
    }

    fn input(&self) -> Shape {
        Shape::flat(self.input)
    }

    fn output(&self) -> Shape {
        Shape::flat(self.units())
    }

    fn flops(&self, rows: usize) -> f64 {
        (rows * self.input) as f64
    }

    fn alloc(&mut self, be: &mut dyn Backend, max_rows: usize, label: &str) -> Result<()> {
        self.idx = Some(be.alloc(max_rows * self.units(), &format!("{label} argmax"))?);
        Ok(())
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        let (rows, units) = (f.rows, self.units());
        let idx = self.idx.expect("allocated").slice(0, rows * units);
        maxout_forward(be, f.y, idx, f.x, rows, units, self.pieces);
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        if let Some(dx) = b.dx {
            let (rows, units) = (b.rows, self.units());
            let idx = self.idx.expect("allocated").slice(0, rows * units);
            maxout_backward(be, dx, b.dy, idx, rows, units, self.pieces);
        }
    }
}

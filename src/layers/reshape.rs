//! A free reshape: the same values per sample seen as another shape — flat ↔ (C, H, W), as
//! PyTorch's nn.Unflatten(1, (C, H, W)) and nn.Flatten(). No kernel runs and no buffer is
//! allocated: the output is the input's view (`is_view`), and so are the gradients.

use super::{Bwd, Fwd, Module, NetRng, Shape, Tangent};
use crate::backend::Backend;
use anyhow::{Result, bail};

pub struct Reshape {
    input: Shape,
    output: Shape,
}

impl Reshape {
    pub fn new(input: Shape, output: Shape) -> Result<Self> {
        if input.len() != output.len() {
            bail!(
                "reshape of {input} ({} values) to {output} ({} values): the sizes must match",
                input.len(),
                output.len()
            );
        }
        Ok(Reshape { input, output })
    }
}

impl Module for Reshape {
    fn describe(&self) -> String {
        match (self.input.is_flat(), self.output.is_flat()) {
            (_, true) => "Flatten".into(),
            (true, false) => format!("Unflatten({})", self.output),
            (false, false) => format!("Reshape({})", self.output),
        }
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        self.output
    }

    fn is_view(&self) -> bool {
        true
    }

    fn forward(&mut self, _be: &mut dyn Backend, _f: &Fwd, _rng: &mut NetRng) {}

    fn backward(&mut self, _be: &mut dyn Backend, _b: &Bwd) {}

    fn check_tangent(&self) -> Result<()> {
        Ok(())
    }

    fn tangent(&mut self, _be: &mut dyn Backend, _t: &Tangent) -> Result<()> {
        Ok(())
    }
    fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        _params: &[&[f32]],
        _state: &[&[f32]],
    ) -> Result<String> {
        Ok(g.reshape(x, self.output))
    }
}

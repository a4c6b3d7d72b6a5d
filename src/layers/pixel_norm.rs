//! Pixelwise feature normalisation (Karras et al. 2018, ProGAN's generator): at every position,
//! the feature vector over the channels is scaled to unit mean square, y = x / sqrt(mean_c x² +
//! 1e-8). A flat input (G's noise) is one position of n channels. No parameters.
//!
//! It belongs in G, which a gradient penalty never differentiates twice, so it has no tangent
//! pass (it is smooth: an exact one would need its second derivative's term).

use super::{Bwd, Fwd, Module, NetRng, Shape};
use crate::backend::Backend;
use crate::kernels::pixel_norm::{pixel_norm_backward, pixel_norm_forward};

pub struct PixelNorm {
    input: Shape,
}

impl PixelNorm {
    pub fn new(input: Shape) -> Self {
        PixelNorm { input }
    }
}

impl Module for PixelNorm {
    fn describe(&self) -> String {
        "PixelNorm".into()
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        self.input
    }

    fn flops(&self, rows: usize) -> f64 {
        3.0 * (rows * self.input.len()) as f64
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        let s = self.input;
        pixel_norm_forward(be, f.y, f.x, f.rows, s.c, s.h * s.w);
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        if let Some(dx) = b.dx {
            let s = self.input;
            pixel_norm_backward(be, dx, b.x, b.dy, b.rows, s.c, s.h * s.w);
        }
    }
    fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        _params: &[&[f32]],
        _state: &[&[f32]],
    ) -> anyhow::Result<String> {
        // y = x / sqrt(mean over channels of x² + eps), channels being axis 1 either way.
        use crate::onnx::Attr;
        let sq = g.node("Mul", &[x, x], vec![]);
        let axes = ("axes", Attr::Ints(vec![1]));
        let mean = g.node("ReduceMean", &[&sq], vec![axes, ("keepdims", Attr::Int(1))]);
        let eps = g.weight("eps", &[1], &[crate::kernels::pixel_norm::EPS]);
        let ms = g.node("Add", &[&mean, &eps], vec![]);
        let rms = g.node("Sqrt", &[&ms], vec![]);
        Ok(g.node("Div", &[x, &rms], vec![]))
    }
}

//! A class embedding concatenated to the noise: the first layer of a conditional MLP generator
//! (PyTorch: `torch.cat([z, nn.Embedding(classes, dim)(y)], 1)`, the embedding's weight stored
//! as this module's `weight` [classes, dim], initialised N(0, 1) as nn.Embedding is).
//!
//! Forward:  y = [x | E[label]]                  (x [rows, n], y [rows, n + dim])
//! Backward: dE[k] = Σ_{rows of class k} dy[r, n..]   (the noise takes no gradient)

use super::{Bwd, Fwd, Init, Module, NetRng, ParamSpec, Shape};
use crate::backend::{Backend, Tensor, WriteMode};
use crate::kernels::embedding::{EmbeddingBatch, embedding_backward, embedding_forward};
use anyhow::{Result, bail};

pub struct ClassEmbedding {
    input: usize,
    classes: usize,
    dim: usize,
}

impl ClassEmbedding {
    pub fn new(input: Shape, classes: usize, dim: usize) -> Result<Self> {
        if classes == 0 || dim == 0 {
            bail!("a class embedding needs at least one class and one dimension");
        }
        if !input.is_flat() {
            bail!("a class embedding concatenates to flat noise, not a {input} input");
        }
        Ok(ClassEmbedding {
            input: input.len(),
            classes,
            dim,
        })
    }

    fn batch(&self, labels: Tensor, rows: usize) -> EmbeddingBatch {
        let (x_len, width, classes) = (self.input, self.dim, self.classes);
        EmbeddingBatch {
            labels,
            rows,
            x_len,
            width,
            classes,
        }
    }
}

impl Module for ClassEmbedding {
    fn describe(&self) -> String {
        format!(
            "ClassEmbedding({} classes → {}, concatenated)",
            self.classes, self.dim
        )
    }

    fn input(&self) -> Shape {
        Shape::flat(self.input)
    }

    fn output(&self) -> Shape {
        Shape::flat(self.input + self.dim)
    }

    fn params(&self) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: "weight",
            shape: vec![self.classes, self.dim],
            transposed: false,
            init: Init::Normal(1.0),
        }]
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        let labels = f
            .labels
            .expect("a class embedding needs the batch's labels");
        embedding_forward(be, f.y, f.x, f.params[0], self.batch(labels, f.rows));
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        assert!(
            b.dx.is_none(),
            "the class embedding is a generator's first layer: its noise input takes no gradient"
        );
        let labels = b
            .labels
            .expect("a class embedding needs the batch's labels");
        if let Some(g) = b.grads {
            let dtable = (g[0], WriteMode::Overwrite);
            embedding_backward(be, dtable, b.dy, self.batch(labels, b.rows));
        }
    }
    fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        params: &[&[f32]],
        _state: &[&[f32]],
    ) -> Result<String> {
        let e = g.per_class("class_embedding", params[0], self.dim, false)?;
        Ok(g.node(
            "Concat",
            &[x, &e],
            vec![("axis", crate::onnx::Attr::Int(1))],
        ))
    }
}

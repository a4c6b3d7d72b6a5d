//! A residual block: a main path and a skip path run on the same input and summed (the blocks
//! of SNGAN's, SAGAN's and BigGAN's ResNets). An empty skip path is the identity.
//!
//! Forward:  y = main(x) + skip(x)
//! Backward: dx = main'ᵀ·dy + skip'ᵀ·dy, each path writing its own parameter gradients
//! Tangent:  v_out = main'·v + skip'·v, each path adding its own penalty terms
//!
//! Its tensors are named after PyTorch's module tree: a block at index 3 whose main path's
//! module 1 has a weight names it "3.main.1.weight", its skip path's "3.skip.0.weight", as a
//! PyTorch module with `main` and `skip` children that are `nn.Sequential`s.

use super::sequence::{Seq, number};
use super::{Bwd, Fwd, Layer, Module, NetRng, ParamSpec, Shape, StateSpec, Tangent};
use crate::backend::{Backend, Tensor};
use crate::kernels::fade::axpby;
use anyhow::{Result, bail};

pub struct Residual {
    input: Shape,
    main: Seq,
    /// None: the identity.
    skip: Option<Seq>,
    /// The skip path's output and the main path's input gradient, [max_rows, …].
    skip_out: Option<Tensor>,
    tangent_skip: Option<Tensor>,
}

impl Residual {
    pub fn new(input: Shape, main: &[Layer], skip: &[Layer]) -> Result<Self> {
        if main.is_empty() {
            bail!("a residual block needs at least one layer on its main path");
        }
        let mut main = Seq::new("main".into(), input, main.to_vec())?;
        let mut skip = if skip.is_empty() {
            None
        } else {
            Some(Seq::new("skip".into(), input, skip.to_vec())?)
        };
        let (m, s) = (
            main.output_or(input),
            skip.as_ref().map_or(input, |s| s.output_or(input)),
        );
        if m != s {
            bail!(
                "a residual block's paths must give the same shape, but the main path gives {m} \
                 and the skip path {s}{}",
                if skip.is_none() {
                    " (an empty skip path is the identity)"
                } else {
                    ""
                }
            );
        }
        match &mut skip {
            Some(s) => number(&mut [&mut main, s]),
            None => number(&mut [&mut main]),
        };
        Ok(Residual {
            input,
            main,
            skip,
            skip_out: None,
            tangent_skip: None,
        })
    }

    fn seqs(&self) -> impl Iterator<Item = &Seq> {
        std::iter::once(&self.main).chain(&self.skip)
    }

    fn seqs_mut(&mut self) -> impl Iterator<Item = &mut Seq> {
        std::iter::once(&mut self.main).chain(&mut self.skip)
    }
}

impl Module for Residual {
    fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        params: &[&[f32]],
        state: &[&[f32]],
    ) -> Result<String> {
        let main = self.main.onnx(g, x, params, state)?;
        let skip = match &self.skip {
            Some(skip) => skip.onnx(g, x, params, state)?,
            None => x.to_string(),
        };
        Ok(g.node("Add", &[&main, &skip], vec![]))
    }

    fn describe(&self) -> String {
        let skip = self
            .skip
            .as_ref()
            .map_or("identity".into(), |s| s.describe());
        format!("Residual(main: {}; skip: {skip})", self.main.describe())
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        self.main.output_or(self.input)
    }

    fn params(&self) -> Vec<ParamSpec> {
        self.seqs().flat_map(|s| s.params()).collect()
    }

    fn state(&self) -> Vec<StateSpec> {
        self.seqs().flat_map(|s| s.state()).collect()
    }

    fn flops(&self, rows: usize) -> f64 {
        // Plus the sum.
        let sum = (rows * self.output().len()) as f64;
        self.seqs().map(|s| s.flops(rows)).sum::<f64>() + sum
    }

    fn alloc(&mut self, be: &mut dyn Backend, max_rows: usize, label: &str) -> Result<()> {
        // The tangent pass's buffers only where one can run (a critic's block).
        let tangent = self.check_tangent().is_ok();
        for s in self.seqs_mut() {
            s.alloc(be, max_rows, tangent, label)?;
        }
        let n = max_rows * self.output().len();
        self.skip_out = Some(be.alloc(n, &format!("{label} skip output"))?);
        if tangent {
            self.tangent_skip = Some(be.alloc(n, &format!("{label} skip tangent"))?);
        }
        Ok(())
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, rng: &mut NetRng) {
        let n = f.y.len();
        let main = self.main.forward(be, f.outer(), f.x, rng, Some(f.y));
        // A main path ending in views only (no module writes a buffer) passes x through.
        if main != f.y {
            axpby(be, f.y, main, n, 0.0, 1.0);
        }
        let skip = match &mut self.skip {
            Some(s) => {
                let dst = self.skip_out.expect("allocated").slice(0, n);
                s.forward(be, f.outer(), f.x, rng, Some(dst))
            }
            None => f.x,
        };
        axpby(be, f.y, skip, n, 1.0, 1.0);
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        let need = b.dx.is_some();
        let dm = self.main.backward(be, b.outer(), b.dy, need, b.grads);
        let ds = match &mut self.skip {
            Some(s) => s.backward(be, b.outer(), b.dy, need, b.grads),
            None => Some(b.dy),
        };
        if let (Some(dx), Some(dm), Some(ds)) = (b.dx, dm, ds) {
            axpby(be, dx, dm, dx.len(), 0.0, 1.0);
            axpby(be, dx, ds, dx.len(), 1.0, 1.0);
        }
    }

    fn check_tangent(&self) -> Result<()> {
        for s in self.seqs() {
            s.check_tangent()?;
        }
        Ok(())
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        let n = t.v_out.len();
        let vm = self
            .main
            .tangent(be, t.outer(), t.v_in, t.grads, Some(t.v_out))?;
        if vm != t.v_out {
            axpby(be, t.v_out, vm, n, 0.0, 1.0);
        }
        let vs = match &mut self.skip {
            Some(s) => {
                let dst = self.tangent_skip.expect("allocated").slice(0, n);
                s.tangent(be, t.outer(), t.v_in, t.grads, Some(dst))?
            }
            None => t.v_in,
        };
        axpby(be, t.v_out, vs, n, 1.0, 1.0);
        Ok(())
    }

    fn params_changed(
        &mut self,
        be: &mut dyn Backend,
        params: &[Tensor],
        state: &[Tensor],
        first: bool,
    ) {
        for s in self.seqs_mut() {
            s.params_changed(be, params, state, first);
        }
    }

    fn batch_statistics(&self) -> bool {
        self.seqs().any(|s| s.batch_statistics())
    }

    fn set_standing_statistics(&mut self, on: bool) {
        for s in self.seqs_mut() {
            s.set_standing_statistics(on);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Activation;
    use crate::layers::NetSpec;

    fn conv(out: usize, k: usize) -> Layer {
        Layer::Conv2d {
            out,
            k,
            stride: 1,
            pad: k / 2,
        }
    }

    #[test]
    fn tensors_are_named_after_a_pytorch_module_tree() {
        let spec = NetSpec {
            input: Shape::image(2, 4, 4),
            layers: vec![
                conv(3, 3),
                Layer::Act(Activation::Relu),
                Layer::BatchNorm,
                Layer::Residual {
                    main: vec![
                        Layer::BatchNorm,
                        Layer::Act(Activation::Relu),
                        Layer::SpectralNorm,
                        conv(3, 3),
                    ],
                    skip: vec![Layer::SpectralNorm, conv(3, 1)],
                },
                Layer::Reshape(Shape::flat(48)),
                Layer::Linear(1),
            ],
        };
        let keys = |t: &[crate::model::NamedTensor]| -> Vec<String> {
            t.iter().map(|t| t.key.clone()).collect()
        };
        let params = [
            "0.weight",
            "0.bias",
            "2.weight",
            "2.bias",
            "3.main.0.weight",
            "3.main.0.bias",
            "3.main.2.weight_orig",
            "3.main.2.bias",
            "3.skip.0.weight_orig",
            "3.skip.0.bias",
            "5.weight",
            "5.bias",
        ];
        let built = spec.build("net").unwrap();
        assert_eq!(keys(built.param_tensors()), params);
        let state = [
            "2.running_mean",
            "2.running_var",
            "2.num_batches_tracked",
            "3.main.0.running_mean",
            "3.main.0.running_var",
            "3.main.0.num_batches_tracked",
            "3.main.2.weight_u",
            "3.main.2.weight_v",
            "3.skip.0.weight_u",
            "3.skip.0.weight_v",
        ];
        assert_eq!(keys(built.state_tensors()), state);
    }

    #[test]
    fn paths_of_different_shapes_are_refused_in_one_line() {
        let spec = NetSpec {
            input: Shape::image(2, 4, 4),
            layers: vec![
                Layer::Residual {
                    main: vec![conv(3, 3)],
                    skip: vec![],
                },
                Layer::Linear(1),
            ],
        };
        let e = spec.validate("D").unwrap_err().to_string();
        assert!(
            e.contains("layer 0") && e.contains("main path gives 3×4×4 and the skip path 2×4×4"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        let empty = NetSpec {
            input: Shape::image(2, 4, 4),
            layers: vec![Layer::Residual {
                main: vec![],
                skip: vec![conv(2, 1)],
            }],
        };
        let e = empty.validate("G").unwrap_err().to_string();
        assert!(e.contains("at least one layer on its main path"), "{e}");
    }
}

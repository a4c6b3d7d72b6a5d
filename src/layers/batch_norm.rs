//! Batch normalisation (Ioffe & Szegedy 2015; PyTorch's nn.BatchNorm1d/2d with eps 1e-5 and
//! momentum 0.1): each channel is normalised over the batch — over the rows and every spatial
//! position for (C, H, W) inputs, over the rows for a flat layer of n features ((n, 1, 1)) — and
//! then scaled and shifted by the trainable weight (γ, init 1) and bias (β, init 0).
//!
//! Forward (training):   mean, invstd of the batch (biased variance); y = x̂·γ + β with
//!                       x̂ = (x − mean)·invstd; the running mean and (unbiased) variance move
//!                       toward the batch's by momentum 0.1, and num_batches_tracked counts up
//! Forward (evaluation): the same with the running statistics
//! Backward:             dγ = Σ dy·x̂,  dβ = Σ dy,  dx = γ·invstd·(dy − (dβ + x̂·dγ)/n)
//! Tangent:              none — the batch statistics couple the samples, so the exact
//!                       second-order pass a gradient penalty needs does not exist here
//!
//! Standing statistics (`set_standing_statistics`): while on, each training forward folds its
//! batch into an equal-weight average over the batches since it was turned on (PyTorch's
//! momentum=None after reset_running_stats), so the running statistics can be recomputed for
//! a given set of weights — the weight average that samples are drawn from.

use super::{Bwd, Fwd, Init, Module, NetRng, ParamSpec, Shape, StateSpec, Tangent};
use crate::backend::{Backend, Tensor};
use crate::kernels::batch_norm::{
    BnDims, BnStatistics, BnSums, MOMENTUM, RunningUpdate, batch_norm_backward_input,
    batch_norm_backward_reduce, batch_norm_forward, batch_norm_statistics,
};
use anyhow::{Result, bail};

pub struct BatchNorm {
    shape: Shape,
    /// [mean C | invstd C] of the last training forward's batch.
    saved: Option<Tensor>,
    /// [Σ dy·x̂ C | Σ dy C] when the caller wants no parameter gradients (the input gradient
    /// needs them anyway).
    sums: Option<Tensor>,
    /// Whether the last forward used batch statistics (backward needs them).
    last_train: bool,
    /// Batches averaged so far while standing statistics are on.
    standing: Option<u32>,
}

impl BatchNorm {
    pub fn new(shape: Shape) -> Self {
        BatchNorm {
            shape,
            saved: None,
            sums: None,
            last_train: false,
            standing: None,
        }
    }

    fn dims(&self, rows: usize) -> BnDims {
        BnDims {
            rows,
            channels: self.shape.c,
            spatial: self.shape.h * self.shape.w,
        }
    }
}

/// One view over tensors that sit back to back in one buffer (a module's tensors do).
pub(crate) fn span(views: &[Tensor]) -> Tensor {
    let first = views[0];
    let mut end = first.offset;
    for v in views {
        assert!(
            v.buf == first.buf && v.offset == end,
            "tensors are not contiguous"
        );
        end += v.len;
    }
    Tensor {
        len: end - first.offset,
        ..first
    }
}

impl Module for BatchNorm {
    fn describe(&self) -> String {
        let d = if self.shape.is_flat() { 1 } else { 2 };
        format!("BatchNorm{d}d({})", self.shape.c)
    }

    fn input(&self) -> Shape {
        self.shape
    }

    fn output(&self) -> Shape {
        self.shape
    }

    fn params(&self) -> Vec<ParamSpec> {
        let c = self.shape.c;
        vec![
            ParamSpec {
                name: "weight",
                shape: vec![c],
                transposed: false,
                init: Init::Const(1.0),
            },
            ParamSpec {
                name: "bias",
                shape: vec![c],
                transposed: false,
                init: Init::Const(0.0),
            },
        ]
    }

    /// PyTorch's buffers, in its order; num_batches_tracked is a 0-d int64 there.
    fn state(&self) -> Vec<StateSpec> {
        let c = self.shape.c;
        vec![
            StateSpec {
                name: "running_mean",
                shape: vec![c],
                init: 0.0,
                integer: false,
            },
            StateSpec {
                name: "running_var",
                shape: vec![c],
                init: 1.0,
                integer: false,
            },
            StateSpec {
                name: "num_batches_tracked",
                shape: vec![],
                init: 0.0,
                integer: true,
            },
        ]
    }

    /// Statistics (two reads) and the normalisation (a read and a write): about 8 per value.
    fn flops(&self, rows: usize) -> f64 {
        8.0 * (rows * self.shape.len()) as f64
    }

    fn alloc(&mut self, be: &mut dyn Backend, _max_rows: usize, label: &str) -> Result<()> {
        let c = self.shape.c;
        self.saved = Some(be.alloc(2 * c, &format!("{label} batch statistics"))?);
        self.sums = Some(be.alloc(2 * c, &format!("{label} gradient sums"))?);
        Ok(())
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        let d = self.dims(f.rows);
        let (weight, bias) = (f.params[0], f.params[1]);
        let running = span(f.state);
        self.last_train = f.train;
        if !f.train {
            let stats = running.slice(0, 2 * d.channels);
            batch_norm_forward(
                be,
                f.y,
                f.x,
                BnStatistics::Running(stats),
                (weight, bias),
                d,
            );
            return;
        }
        assert!(
            d.n() > 1,
            "batch norm in training needs more than one value per channel (a batch of {} \
             rows of {})",
            f.rows,
            self.shape
        );
        let update = match &mut self.standing {
            Some(t) => {
                *t += 1;
                RunningUpdate {
                    momentum: 1.0 / *t as f32,
                    restart: *t == 1,
                }
            }
            None => RunningUpdate {
                momentum: MOMENTUM,
                restart: false,
            },
        };
        let saved = self.saved.expect("alloc before forward");
        batch_norm_statistics(be, saved, running, f.x, d, Some(update));
        batch_norm_forward(be, f.y, f.x, BnStatistics::Batch(saved), (weight, bias), d);
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        assert!(
            self.last_train,
            "backward through batch norm follows a training-mode forward"
        );
        let d = self.dims(b.rows);
        let saved = self.saved.expect("alloc before backward");
        let dparams = match b.grads {
            Some(g) => span(g),
            None if b.dx.is_some() => self.sums.expect("alloc before backward"),
            None => return,
        };
        batch_norm_backward_reduce(be, dparams, b.x, b.dy, saved, d);
        if let Some(dx) = b.dx {
            let sums = BnSums {
                saved,
                sums: dparams,
            };
            batch_norm_backward_input(be, dx, b.x, b.dy, b.params[0], sums, d);
        }
    }

    fn tangent(&mut self, _be: &mut dyn Backend, _t: &Tangent) -> Result<()> {
        self.check_tangent()
    }

    fn check_tangent(&self) -> Result<()> {
        bail!(
            "{}: batch normalisation couples the samples of a batch, so a gradient penalty has \
             no exact tangent pass through it; a critic trained with a gradient penalty must \
             not use batch norm (remove it from the discriminator)",
            self.describe()
        )
    }

    fn batch_statistics(&self) -> bool {
        true
    }

    fn set_standing_statistics(&mut self, on: bool) {
        self.standing = on.then_some(0);
    }
    fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        params: &[&[f32]],
        state: &[&[f32]],
    ) -> Result<String> {
        use crate::onnx::Attr;
        let c = self.shape.c;
        let [gamma, beta, mean, var] =
            [params[0], params[1], state[0], state[1]].map(|t| g.weight("batch_norm", &[c], t));
        let eps = ("epsilon", Attr::Float(crate::kernels::batch_norm::EPS));
        Ok(g.node(
            "BatchNormalization",
            &[x, &gamma, &beta, &mean, &var],
            vec![eps],
        ))
    }
}

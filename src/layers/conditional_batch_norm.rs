//! Class-conditional batch normalisation (de Vries et al. 2017; Miyato & Koyama 2018's
//! generator): batch norm without its own affine step, then each sample scaled and shifted by
//! its class's γ and β. The trainable `weight` and `bias` are [classes, C] (γ init 1, β 0: at
//! the start every class is plain batch norm); the running statistics are batch norm's, under
//! PyTorch's names.
//!
//! Forward:  x̂ = batch norm of x with γ 1, β 0 (batch or running statistics, as BatchNorm);
//!           y = γ[k_r]·x̂ + β[k_r]
//! Backward: dγ[k] = Σ_{rows of class k} dy·x̂,  dβ[k] = Σ … dy;  dx̂ = γ[k_r]·dy;
//!           dx = batch norm's input gradient of dx̂ with γ 1
//! Tangent:  none (batch statistics couple the samples), as BatchNorm.

use super::batch_norm::span;
use super::{Bwd, Fwd, Init, Module, NetRng, ParamSpec, Shape, StateSpec};
use crate::backend::{Backend, Tensor};
use crate::kernels::batch_norm::{
    BnDims, BnStatistics, BnSums, MOMENTUM, RunningUpdate, batch_norm_backward_input,
    batch_norm_backward_reduce, batch_norm_forward, batch_norm_statistics,
};
use crate::kernels::class_affine::{
    ClassBatch, class_affine_backward_input, class_affine_backward_params, class_affine_forward,
};
use anyhow::{Result, bail};

#[derive(Clone, Copy)]
struct Buffers {
    /// [mean C | invstd C] of the last training batch.
    saved: Tensor,
    /// [Σ dx̂·x̂ C | Σ dx̂ C] for the input gradient.
    sums: Tensor,
    /// γ = 1 and β = 0 for the normalisation (2C: ones then zeros).
    unit: Tensor,
    /// x̂ of the last forward, and dx̂ ([max_rows, C·H·W] each).
    xhat: Tensor,
    dxhat: Tensor,
}

pub struct ConditionalBatchNorm {
    shape: Shape,
    classes: usize,
    bufs: Option<Buffers>,
    last_train: bool,
    standing: Option<u32>,
}

impl ConditionalBatchNorm {
    pub fn new(shape: Shape, classes: usize) -> Result<Self> {
        if classes == 0 {
            bail!("conditional batch norm needs at least one class");
        }
        Ok(ConditionalBatchNorm {
            shape,
            classes,
            bufs: None,
            last_train: false,
            standing: None,
        })
    }

    fn batch(&self, labels: Tensor, d: BnDims) -> ClassBatch {
        let (channels, spatial) = (d.channels, d.spatial);
        ClassBatch {
            labels,
            rows: d.rows,
            channels,
            spatial,
            classes: self.classes,
        }
    }

    fn dims(&self, rows: usize) -> BnDims {
        BnDims {
            rows,
            channels: self.shape.c,
            spatial: self.shape.h * self.shape.w,
        }
    }

    fn bufs(&self) -> Buffers {
        self.bufs.expect("alloc before use")
    }
}

impl Module for ConditionalBatchNorm {
    fn describe(&self) -> String {
        let d = if self.shape.is_flat() { 1 } else { 2 };
        format!(
            "ConditionalBatchNorm{d}d({}, {} classes)",
            self.shape.c, self.classes
        )
    }

    fn input(&self) -> Shape {
        self.shape
    }

    fn output(&self) -> Shape {
        self.shape
    }

    fn params(&self) -> Vec<ParamSpec> {
        let shape = vec![self.classes, self.shape.c];
        vec![
            ParamSpec {
                name: "weight",
                shape: shape.clone(),
                transposed: false,
                init: Init::Const(1.0),
            },
            ParamSpec {
                name: "bias",
                shape,
                transposed: false,
                init: Init::Const(0.0),
            },
        ]
    }

    fn state(&self) -> Vec<StateSpec> {
        super::batch_norm::BatchNorm::new(self.shape).state()
    }

    fn flops(&self, rows: usize) -> f64 {
        10.0 * (rows * self.shape.len()) as f64
    }

    fn alloc(&mut self, be: &mut dyn Backend, max_rows: usize, label: &str) -> Result<()> {
        let c = self.shape.c;
        let unit = be.alloc(2 * c, &format!("{label} unit affine"))?;
        let mut ones = vec![1.0; c];
        ones.extend(vec![0.0; c]);
        be.write(unit, &ones);
        let n = max_rows * self.shape.len();
        self.bufs = Some(Buffers {
            saved: be.alloc(2 * c, &format!("{label} batch statistics"))?,
            sums: be.alloc(2 * c, &format!("{label} gradient sums"))?,
            unit,
            xhat: be.alloc(n, &format!("{label} x̂"))?,
            dxhat: be.alloc(n, &format!("{label} dx̂"))?,
        });
        Ok(())
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        let labels = f
            .labels
            .expect("conditional batch norm needs the batch's labels");
        let d = self.dims(f.rows);
        let b = self.bufs();
        let (ones, zeros) = (
            b.unit.slice(0, d.channels),
            b.unit.slice(d.channels, d.channels),
        );
        let xhat = b.xhat.slice(0, d.len());
        let running = span(f.state);
        self.last_train = f.train;
        if f.train {
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
            batch_norm_statistics(be, b.saved, running, f.x, d, Some(update));
            batch_norm_forward(
                be,
                xhat,
                f.x,
                BnStatistics::Batch(b.saved),
                (ones, zeros),
                d,
            );
        } else {
            let stats = running.slice(0, 2 * d.channels);
            batch_norm_forward(
                be,
                xhat,
                f.x,
                BnStatistics::Running(stats),
                (ones, zeros),
                d,
            );
        }
        let table = span(f.params);
        class_affine_forward(be, f.y, xhat, table, self.batch(labels, d));
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        assert!(
            self.last_train,
            "backward through batch norm follows a training-mode forward"
        );
        let labels = b
            .labels
            .expect("conditional batch norm needs the batch's labels");
        let d = self.dims(b.rows);
        let bufs = self.bufs();
        let c = d.channels;
        let batch = self.batch(labels, d);
        let xhat = bufs.xhat.slice(0, d.len());
        if let Some(g) = b.grads {
            class_affine_backward_params(be, span(g), xhat, b.dy, batch);
        }
        if let Some(dx) = b.dx {
            let dxhat = bufs.dxhat.slice(0, d.len());
            let table = span(b.params);
            class_affine_backward_input(be, dxhat, b.dy, table, batch);
            batch_norm_backward_reduce(be, bufs.sums, b.x, dxhat, bufs.saved, d);
            let ones = bufs.unit.slice(0, c);
            let sums = BnSums {
                saved: bufs.saved,
                sums: bufs.sums,
            };
            batch_norm_backward_input(be, dx, b.x, dxhat, ones, sums, d);
        }
    }

    fn check_tangent(&self) -> Result<()> {
        bail!(
            "{}: batch normalisation couples the samples of a batch, so a gradient penalty has \
             no exact tangent pass through it",
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
        // x̂ = (x − mean)/sqrt(var + eps) with the running statistics, then γ[label]·x̂ + β[label].
        let eps = crate::kernels::batch_norm::EPS as f64;
        let invstd: Vec<f32> = state[1]
            .iter()
            .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
            .collect();
        let shift: Vec<f32> = state[0].iter().zip(&invstd).map(|(m, s)| -m * s).collect();
        let dims = crate::onnx::channel_dims(self.shape);
        let (s, t) = (
            g.weight("invstd", &dims, &invstd),
            g.weight("shift", &dims, &shift),
        );
        let xhat = g.node("Mul", &[x, &s], vec![]);
        let xhat = g.node("Add", &[&xhat, &t], vec![]);
        let (c, image) = (self.shape.c, !self.shape.is_flat());
        let gamma = g.per_class("class_gamma", params[0], c, image)?;
        let beta = g.per_class("class_beta", params[1], c, image)?;
        let y = g.node("Mul", &[&xhat, &gamma], vec![]);
        Ok(g.node("Add", &[&y, &beta], vec![]))
    }
}

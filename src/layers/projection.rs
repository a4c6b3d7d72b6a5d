//! The projection discriminator's head (Miyato & Koyama 2018): D(x, y) = ψ(φ) + ⟨E[y], φ⟩ with
//! φ D's last features, ψ a Linear(F → 1) and E a class embedding [classes, F]. PyTorch names:
//! `linear.weight`, `linear.bias`, `embed.weight` (with spectral norm, both weights are
//! normalised — the embedding as a [classes, F] matrix, as SNGAN's projection discriminator
//! does — and stored as `weight_orig`, `weight_u`, `weight_v` under each).
//!
//! Forward:  y = φ·w + b  (the Linear)  + ⟨E[k_r], φ[r]⟩
//! Backward: dφ = dy·wᵀ + dy·E[k_r];  dw, db as the Linear;  dE[k] = Σ_{rows of class k} dy·φ
//! Tangent:  v_out = v_in·w + ⟨E[k_r], v_in⟩;  dw += v_inᵀ·dy,  dE[k] += Σ dy·v_in

use super::linear::Linear;
use super::spectral_norm::SpectralNorm;
use super::{Bwd, Fwd, Init, Module, NetRng, ParamSpec, Shape, StateSpec, Tangent};
use crate::backend::{Activation, Backend, Tensor, WriteMode};
use crate::kernels::projection::{
    ProjectionBatch, projection_backward_embedding, projection_backward_input, projection_forward,
};
use anyhow::{Result, bail};

pub struct Projection {
    features: usize,
    classes: usize,
    linear: Linear,
    /// Spectral norm of the embedding, with the Linear's.
    sn: Option<SpectralNorm>,
    /// dy of the last backward (the tangent pass's δ).
    last_dy: Option<Tensor>,
}

/// PyTorch's name of a tensor of the submodule `sub` ("linear", "embed").
fn under(sub: &str, name: &'static str) -> &'static str {
    match (sub, name) {
        ("linear", "weight") => "linear.weight",
        ("linear", "weight_orig") => "linear.weight_orig",
        ("linear", "bias") => "linear.bias",
        ("linear", "weight_u") => "linear.weight_u",
        ("linear", "weight_v") => "linear.weight_v",
        ("embed", "weight_u") => "embed.weight_u",
        ("embed", "weight_v") => "embed.weight_v",
        _ => unreachable!("no tensor {sub}.{name}"),
    }
}

impl Projection {
    pub fn new(input: Shape, classes: usize) -> Result<Self> {
        if classes == 0 {
            bail!("a projection head needs at least one class");
        }
        Ok(Projection {
            features: input.len(),
            classes,
            linear: Linear::new(input, 1, Activation::Identity)?,
            sn: None,
            last_dy: None,
        })
    }

    pub fn with_spectral_norm(mut self) -> Self {
        self.linear = self.linear.with_spectral_norm();
        self.sn = Some(SpectralNorm::row_major(self.classes, self.features));
        self
    }

    /// The Linear's state tensors (spectral norm's u and v) before the embedding's.
    fn split_state<'a>(&self, state: &'a [Tensor]) -> (&'a [Tensor], &'a [Tensor]) {
        state.split_at(if self.sn.is_some() { 2 } else { 0 })
    }

    fn table(&self, params: &[Tensor]) -> Tensor {
        self.sn.as_ref().map_or(params[2], |sn| sn.weight())
    }

    fn batch(&self, labels: Tensor, rows: usize) -> ProjectionBatch {
        ProjectionBatch {
            labels,
            rows,
            features: self.features,
            classes: self.classes,
        }
    }

    /// Writes or adds the embedding's gradient Σ dy·φ per class, through σ when normalised
    /// (`emb`: spectral norm's u and v).
    fn embedding_grad(
        &self,
        be: &mut dyn Backend,
        (dtable, write): (Tensor, WriteMode),
        phi: Tensor,
        dy: Tensor,
        batch: ProjectionBatch,
        emb: &[Tensor],
    ) {
        match &self.sn {
            None => projection_backward_embedding(be, (dtable, write), phi, dy, batch),
            Some(sn) => {
                let scratch = (sn.grad_scratch(), WriteMode::Overwrite);
                projection_backward_embedding(be, scratch, phi, dy, batch);
                sn.backward(be, dtable, emb, write);
            }
        }
    }
}

impl Module for Projection {
    fn describe(&self) -> String {
        let sn = if self.sn.is_some() {
            ", spectral norm"
        } else {
            ""
        };
        format!(
            "Projection({} → 1, {} classes{sn})",
            self.features, self.classes
        )
    }

    fn input(&self) -> Shape {
        Shape::flat(self.features)
    }

    fn output(&self) -> Shape {
        Shape::flat(1)
    }

    fn params(&self) -> Vec<ParamSpec> {
        let mut p: Vec<ParamSpec> = self
            .linear
            .params()
            .into_iter()
            .map(|s| ParamSpec {
                name: under("linear", s.name),
                ..s
            })
            .collect();
        // Xavier-uniform, as SNGAN's projection discriminators initialise it.
        let bound = (6.0 / (self.classes + self.features) as f32).sqrt();
        p.push(ParamSpec {
            name: if self.sn.is_some() {
                "embed.weight_orig"
            } else {
                "embed.weight"
            },
            shape: vec![self.classes, self.features],
            transposed: false,
            init: Init::Uniform(bound),
        });
        p
    }

    fn state(&self) -> Vec<StateSpec> {
        let rename = |sub: &'static str, v: Vec<StateSpec>| {
            v.into_iter().map(move |s| StateSpec {
                name: under(sub, s.name),
                ..s
            })
        };
        let mut s: Vec<StateSpec> = rename("linear", self.linear.state()).collect();
        if let Some(sn) = &self.sn {
            s.extend(rename("embed", sn.state()));
        }
        s
    }

    fn flops(&self, rows: usize) -> f64 {
        4.0 * (rows * self.features) as f64
    }

    fn alloc(&mut self, be: &mut dyn Backend, max_rows: usize, label: &str) -> Result<()> {
        self.linear.alloc(be, max_rows, label)?;
        if let Some(sn) = &mut self.sn {
            sn.alloc(be, &format!("{label} embedding"))?;
        }
        Ok(())
    }

    fn params_changed(
        &mut self,
        be: &mut dyn Backend,
        params: &[Tensor],
        state: &[Tensor],
        first: bool,
    ) {
        let (lin, emb) = self.split_state(state);
        self.linear.params_changed(be, &params[..2], lin, first);
        if let Some(sn) = &self.sn {
            sn.params_changed(be, params[2], emb, first);
        }
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, rng: &mut NetRng) {
        let labels = f
            .labels
            .expect("a projection discriminator needs the batch's labels");
        let (lin, emb) = self.split_state(f.state);
        let inner = Fwd {
            params: &f.params[..2],
            state: lin,
            ..*f
        };
        self.linear.forward(be, &inner, rng);
        let table = match &self.sn {
            Some(sn) => sn.forward(be, f.params[2], emb),
            None => f.params[2],
        };
        projection_forward(be, f.y, f.x, table, self.batch(labels, f.rows));
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        let labels = b
            .labels
            .expect("a projection discriminator needs the batch's labels");
        let (lin, emb) = self.split_state(b.state);
        let inner = Bwd {
            params: &b.params[..2],
            grads: b.grads.map(|g| &g[..2]),
            state: lin,
            ..*b
        };
        self.linear.backward(be, &inner);
        self.last_dy = Some(b.dy);
        let batch = self.batch(labels, b.rows);
        if let Some(dx) = b.dx {
            projection_backward_input(be, dx, b.dy, self.table(b.params), batch);
        }
        if let Some(g) = b.grads {
            self.embedding_grad(be, (g[2], WriteMode::Overwrite), b.x, b.dy, batch, emb);
        }
    }

    fn check_tangent(&self) -> Result<()> {
        Ok(())
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        let labels = t
            .labels
            .expect("a projection discriminator needs the batch's labels");
        let (lin, emb) = self.split_state(t.state);
        let inner = Tangent {
            params: &t.params[..2],
            grads: &t.grads[..2],
            state: lin,
            ..*t
        };
        self.linear.tangent(be, &inner)?;
        let dy = self.last_dy.expect("the tangent pass follows a backward");
        let batch = self.batch(labels, t.rows);
        projection_forward(be, t.v_out, t.v_in, self.table(t.params), batch);
        let dtable = (t.grads[2], WriteMode::Accumulate);
        self.embedding_grad(be, dtable, t.v_in, dy, batch, emb);
        Ok(())
    }
}

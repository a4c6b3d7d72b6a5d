//! The gradient penalty's gradient w.r.t. the critic's weights — the second-order pass of
//! ../shared/GAN-MATH.md — against central finite differences of the penalty itself, on the
//! backend's kernels: P(θ) = mean_rows λ(‖∇ₓD(x_r)‖ − 1)² (WGAN-GP) or (γ/2)‖∇ₓD(x_r)‖² (R1),
//! each ∇ₓD from an ordinary backward of a perturbed critic. For a piecewise-linear critic the
//! difference is exact unless a step crosses a kink (an activation changing sign); those
//! parameters are detected (their one-sided differences disagree) and skipped, and counted.

use crate::backend::{Activation, Backend};
use crate::kernels::penalty::{PenaltyKind, PenaltyTerm, penalty_seed};
use crate::model::{Backprop, Layer, NetSpec, Network, Shape};
use crate::rng::{self, RngKey, stream};
use anyhow::Result;

pub mod tolerance {
    /// max |analytic − numeric| over the parameters, relative to the largest |numeric|.
    pub const GRADIENT: f64 = 2e-2;
    /// Most parameters whose step may cross a kink (and be skipped).
    pub const SKIPPED: f64 = 0.05;
}

#[derive(Clone, Debug)]
pub struct PenaltyGradient {
    pub kind: PenaltyKind,
    pub spectral_norm: bool,
    pub params: usize,
    pub skipped: usize,
    /// max |analytic − numeric| / max |numeric|.
    pub max_error: f64,
    /// The same for GAN-MATH's identity ∇θ(g·v) = d/dε ∇θ ΣD(x + εv).
    pub identity_error: f64,
    pub penalty: f64,
}

impl PenaltyGradient {
    pub fn passed(&self) -> bool {
        self.max_error <= tolerance::GRADIENT
            && self.identity_error <= tolerance::GRADIENT
            && (self.skipped as f64) <= tolerance::SKIPPED * self.params as f64
    }

    pub fn verdict(&self) -> super::Verdict {
        let (name, formula) = match self.kind {
            PenaltyKind::GradientPenalty => ("WGAN-GP", "λ·E[(‖∇ₓD‖ − 1)²], λ = 10"),
            PenaltyKind::R1 => ("R1", "(γ/2)·E[‖∇ₓD‖²], γ = 10"),
        };
        let sn = if self.spectral_norm {
            ", spectrally normalised critic"
        } else {
            ""
        };
        super::Verdict {
            title: format!(
                "{name} penalty's gradient w.r.t. D's weights (second-order pass){sn}: \
                 {formula}"
            ),
            lines: vec![
                format!(
                    "P = {:.4} on 16 samples of 8 values; ∂P/∂θ from the tangent pass against \
                     central differences of P over all {} weights and biases: max error {:.1e} \
                     of the largest (tolerance {}); {} skipped where a step crossed a kink \
                     (at most {}%)",
                    self.penalty,
                    self.params,
                    self.max_error,
                    tolerance::GRADIENT,
                    self.skipped,
                    100.0 * tolerance::SKIPPED
                ),
                format!(
                    "∇θ(g·v) = d/dε ∇θ ΣD(x + εv) at ε = 0: max error {:.1e} of the largest",
                    self.identity_error
                ),
            ],
            passed: self.passed(),
        }
    }
}

/// 8 → 24 LeakyReLU(0.2) → dropout(0.8) → 16 ReLU → 8 → 1 (a linear layer between
/// activations and an unfused chain exercise every path of the tangent pass).
fn critic(sn: bool) -> NetSpec {
    let layers = vec![
        Layer::Linear(24),
        Layer::Act(Activation::LeakyRelu(0.2)),
        Layer::Dropout(0.8),
        Layer::Linear(16),
        Layer::Act(Activation::Relu),
        Layer::Linear(8),
        Layer::Linear(1),
    ];
    NetSpec {
        input: Shape::flat(8),
        layers: if sn {
            crate::config::with_spectral_norm(&layers)
        } else {
            layers
        },
    }
}

struct Rig {
    net: Network,
    x: crate::backend::Tensor,
    ones: crate::backend::Tensor,
    rows: usize,
}

impl Rig {
    /// ∇ₓD per row and the gradient of Σ_rows D w.r.t. θ, with D's parameters `p` and the same
    /// dropout masks every time.
    fn grads(&mut self, be: &mut dyn Backend, p: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        be.write(self.net.unpadded(self.net.params), p);
        self.net.rng.counter = 0;
        self.net.forward(be, self.x, self.rows, true, None);
        let g = self
            .net
            .backward(be, self.ones, Backprop::Both)
            .expect("input gradient requested");
        Ok((be.read(g)?, be.read(self.net.unpadded(self.net.grads))?))
    }
}

fn penalty_value(kind: PenaltyKind, weight: f64, g: &[f32], cols: usize) -> f64 {
    let rows = g.len() / cols;
    g.chunks(cols)
        .map(|r| {
            let n = r.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            match kind {
                PenaltyKind::GradientPenalty => weight * (n - 1.0).powi(2),
                PenaltyKind::R1 => 0.5 * weight * n * n,
            }
        })
        .sum::<f64>()
        / rows as f64
}

fn one(be: &mut dyn Backend, kind: PenaltyKind, sn: bool, seed: u64) -> Result<PenaltyGradient> {
    let (rows, cols, weight) = (16, 8, 10.0f32);
    let spec = critic(sn).build("critic")?;
    spec.check_tangent()?;
    // Weights scaled up from PyTorch's initialisation so ‖∇ₓD‖ is near 1 and P is not flat.
    let params: Vec<f32> = spec.init_params(seed, 0).iter().map(|v| 2.0 * v).collect();
    let key = RngKey::new(seed, stream::TEST, 7);
    let x: Vec<f32> = (0..rows * cols)
        .map(|i| rng::normal(key, i as u64))
        .collect();
    let net = Network::from_built(be, spec, rows, &params, seed)?;
    let xt = be.upload(&x, "x")?;
    let ones = be.upload(&vec![1.0; rows], "ones")?;
    let v = be.alloc(rows * cols, "v")?;
    let per_row = be.alloc(2 * rows, "per row")?;
    let scratch = [be.alloc(24 * rows, "a")?, be.alloc(24 * rows, "b")?];
    let mut rig = Rig {
        net,
        x: xt,
        ones,
        rows,
    };
    // The analytic gradient: backward to g, the penalty kernel's v = ∂P/∂g, the tangent pass.
    let (g, _) = rig.grads(be, &params)?;
    let gt = be.upload(&g, "g")?;
    penalty_seed(be, PenaltyTerm { kind, weight }, v, per_row, gt, rows, cols);
    be.write(rig.net.grads, &vec![0.0; rig.net.grads.len()]);
    rig.net.tangent(be, v, scratch)?;
    let analytic = be.read(rig.net.unpadded(rig.net.grads))?;
    let vs = be.read(v)?;
    // Central differences of P, skipping steps that cross a kink.
    let h = 2e-3f32;
    let p_at = |rig: &mut Rig, be: &mut dyn Backend, p: &[f32]| -> Result<f64> {
        Ok(penalty_value(
            kind,
            weight as f64,
            &rig.grads(be, p)?.0,
            cols,
        ))
    };
    let p0 = p_at(&mut rig, be, &params)?;
    let mut numeric = Vec::new();
    let mut skipped = 0;
    for i in 0..params.len() {
        let mut q = params.clone();
        q[i] += h;
        let up = p_at(&mut rig, be, &q)?;
        q[i] -= 2.0 * h;
        let down = p_at(&mut rig, be, &q)?;
        let (fwd, bwd) = ((up - p0) / h as f64, (p0 - down) / h as f64);
        let central = (up - down) / (2.0 * h as f64);
        // Without a kink the one-sided differences agree to O(h·P''); a crossing shifts one of
        // them by a jump of order 1/h.
        if (fwd - bwd).abs() > 0.05 * (1.0 + central.abs()) {
            skipped += 1;
            numeric.push(None);
        } else {
            numeric.push(Some(central));
        }
    }
    let scale = numeric
        .iter()
        .flatten()
        .fold(f64::MIN_POSITIVE, |a, v| a.max(v.abs()));
    let max_error = numeric
        .iter()
        .zip(&analytic)
        .filter_map(|(n, &a)| n.map(|n| (n - a as f64).abs()))
        .fold(0.0, f64::max)
        / scale;
    // GAN-MATH's identity with the same v: two parameter-gradient passes at x ± εv.
    let eps = 1e-3f32;
    let shifted = |rig: &mut Rig, be: &mut dyn Backend, e: f32| -> Result<Vec<f32>> {
        let xs: Vec<f32> = x.iter().zip(&vs).map(|(a, b)| a + e * b).collect();
        be.write(rig.x, &xs);
        Ok(rig.grads(be, &params)?.1)
    };
    let up = shifted(&mut rig, be, eps)?;
    let down = shifted(&mut rig, be, -eps)?;
    let diff: Vec<f64> = up
        .iter()
        .zip(&down)
        .map(|(a, b)| (*a as f64 - *b as f64) / (2.0 * eps as f64))
        .collect();
    let id_scale = diff.iter().fold(f64::MIN_POSITIVE, |a, v| a.max(v.abs()));
    let identity_error = diff
        .iter()
        .zip(&analytic)
        .map(|(n, &a)| (n - a as f64).abs())
        .fold(0.0, f64::max)
        / id_scale;
    Ok(PenaltyGradient {
        kind,
        spectral_norm: sn,
        params: params.len(),
        skipped,
        max_error,
        identity_error,
        penalty: p0,
    })
}

/// WGAN-GP's and R1's gradients, and WGAN-GP's through a spectrally normalised critic.
pub fn penalty_gradient_check(be: &mut dyn Backend, seed: u64) -> Result<Vec<PenaltyGradient>> {
    let mut out = Vec::new();
    for (kind, sn) in [
        (PenaltyKind::GradientPenalty, false),
        (PenaltyKind::R1, false),
        (PenaltyKind::GradientPenalty, true),
    ] {
        out.push(one(be, kind, sn, seed)?);
    }
    Ok(out)
}

//! Spectral normalization (Miyato et al. 2018) checked on the project's kernels: σ from the power
//! iteration against the largest singular value from an SVD (nalgebra, f64); σ tracked with one
//! iteration per update through a critic's training; and the trained critic's empirical
//! Lipschitz constant, which spectral norm bounds by 1 (LeakyReLU is 1-Lipschitz).

use super::critic::{Constraint, CriticRig, POOL_ROWS};
use super::wasserstein::CriticOptions;
use crate::backend::{Backend, GanLossKind};
use crate::layers::spectral_norm::{SpectralNorm, WARM_UP_ITERATIONS};
use crate::model::Optimizer;
use crate::rng::{self, RngKey, stream};
use anyhow::Result;

/// Tolerances of the verdicts.
pub mod tolerance {
    /// |σ − σ_max| / σ_max for a random matrix after `CONVERGED` iterations.
    pub const SIGMA_CONVERGED: f64 = 1e-4;
    /// The same for each layer of a trained critic (one iteration per update).
    pub const SIGMA_TRACKED: f64 = 0.01;
    /// Largest empirical Lipschitz constant of a spectrally normalised critic.
    pub const LIPSCHITZ: f64 = 1.05;
}

/// Power iterations after which a random matrix's σ is compared (the top two singular values
/// of a random square matrix are close, so the iteration converges slowly).
pub const CONVERGED: usize = 500;

/// σ of one matrix: the kernels' estimate and the SVD's largest singular value.
#[derive(Clone, Debug)]
pub struct SigmaRow {
    pub what: String,
    pub estimate: f64,
    pub svd: f64,
    /// The estimate after the warm-up alone, when it differs.
    pub warm_up: Option<f64>,
}

impl SigmaRow {
    pub fn error(&self) -> f64 {
        (self.estimate - self.svd).abs() / self.svd
    }
}

#[derive(Clone, Debug)]
pub struct SpectralCheck {
    /// Random matrices after the warm-up iterations.
    pub random: Vec<SigmaRow>,
    /// Each layer of a critic after training with one power iteration per update.
    pub trained: Vec<SigmaRow>,
    /// max ‖∇ₓD‖ over real, generated, interpolated and random points.
    pub max_grad_norm: f64,
    /// max |D(x) − D(y)| / ‖x − y‖ over random pairs.
    pub max_pair_ratio: f64,
    /// ∏ over layers of the largest singular value of W/σ (an upper bound of Lip(D)).
    pub product_bound: f64,
    pub dim: usize,
    pub steps: usize,
}

fn largest_singular_value(rows: usize, cols: usize, row_major: &[f32]) -> f64 {
    let m = nalgebra::DMatrix::<f64>::from_row_iterator(
        rows,
        cols,
        row_major.iter().map(|&v| v as f64),
    );
    m.singular_values().iter().fold(0.0f64, |a, &v| a.max(v))
}

/// How a random matrix of the check is stored.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// [cols, rows], as a Linear keeps its weight.
    Transposed,
    /// A ConvTranspose2d's [in, out, k, k] with rows = out, cols = in·k·k: the view over
    /// dimension 1 PyTorch's `spectral_norm` takes.
    ConvTranspose { kk: usize },
}

/// σ of a random `rows`×`cols` matrix stored as `layout` by the spectral-norm kernels after the
/// warm-up iterations, against the SVD.
fn random_sigma(
    be: &mut dyn Backend,
    rows: usize,
    cols: usize,
    layout: Layout,
    seed: u64,
) -> Result<SigmaRow> {
    let key = RngKey::new(seed, stream::TEST, 0);
    let w: Vec<f32> = (0..rows * cols)
        .map(|i| rng::normal(key, i as u64))
        .collect();
    // Stored [cols / inner, rows, inner]: element (r, c) of the matrix is
    // w[((c / inner)·rows + r)·inner + c % inner].
    let (inner, what) = match layout {
        Layout::Transposed => (1, format!("random {rows}×{cols}, N(0, 1) entries")),
        Layout::ConvTranspose { kk } => {
            let k = (kk as f64).sqrt().round() as usize;
            (
                kk,
                format!("ConvT [{}, {rows}, {k}, {k}] as {rows}×{cols}", cols / kk),
            )
        }
    };
    let row_major: Vec<f32> = (0..rows * cols)
        .map(|i| {
            let (r, c) = (i / cols, i % cols);
            w[((c / inner) * rows + r) * inner + c % inner]
        })
        .collect();
    let mut sn = SpectralNorm::new(rows, cols, inner);
    sn.alloc(be, "random matrix")?;
    let wt = be.upload(&w, "W")?;
    let state: Vec<_> = sn
        .state()
        .iter()
        .map(|s| be.upload(&vec![s.init; s.shape[0]], s.name))
        .collect::<Result<_>>()?;
    let sigma = |be: &mut dyn Backend, iterations| -> Result<f64> {
        sn.power_iteration(be, wt, &state, iterations);
        sn.forward(be, wt, &state);
        Ok(be.read(sn.scalars())?[0] as f64)
    };
    let warm = sigma(be, WARM_UP_ITERATIONS)?;
    let estimate = sigma(be, CONVERGED - WARM_UP_ITERATIONS)?;
    Ok(SigmaRow {
        what,
        estimate,
        svd: largest_singular_value(rows, cols, &row_major),
        warm_up: Some(warm),
    })
}

/// Input values of the Lipschitz critic, and its two distributions' means (±1 in every value).
const DIM: usize = 16;

pub fn spectral_norm_check(be: &mut dyn Backend, opts: &CriticOptions) -> Result<SpectralCheck> {
    let mut random = Vec::new();
    let transposed = [(64, 33), (1, 40), (128, 128), (300, 7)].map(|rc| (rc, Layout::Transposed));
    // DCGAN G's ConvTranspose2d(in 24 → out 12, k 4) and a ragged 3×3 one (in 5 → out 7).
    let conv_t = [
        ((12, 24 * 16), Layout::ConvTranspose { kk: 16 }),
        ((7, 5 * 9), Layout::ConvTranspose { kk: 9 }),
    ];
    for (i, ((r, c), layout)) in transposed.into_iter().chain(conv_t).enumerate() {
        random.push(random_sigma(be, r, c, layout, opts.seed + i as u64)?);
    }
    // A spectrally normalised critic trained with the hinge loss between N(+1, I) and N(−1, I)
    // in 16 dimensions, as SN-GAN's D is.
    let key = RngKey::new(opts.seed, stream::TEST, 1 << 40);
    let pool = |sign: f32, off: u64| -> Vec<f32> {
        (0..POOL_ROWS * DIM)
            .map(|i| sign + rng::normal(key, off + i as u64))
            .collect()
    };
    let (real, fake) = (pool(1.0, 0), pool(-1.0, 1 << 32));
    let mut rig = CriticRig::with_pools(
        be,
        DIM,
        &real,
        &fake,
        Constraint::SpectralNorm,
        opts.batch,
        opts.seed,
    )?;
    let steps = opts.steps;
    rig.train(be, GanLossKind::DiscriminatorHinge, steps, |_| {
        Optimizer::adam(2e-3, 0.5, 0.9)
    });
    // Each layer's σ estimate uᵀWv (the state after the last update's iteration) against the SVD
    // of its weight, and of W/σ for the Lipschitz bound.
    let params = be.read(rig.d.unpadded(rig.d.params))?;
    let state = be.read(rig.d.state.slice(0, rig.d.n_state))?;
    // The critic's layout: its tensors' names and offsets in the flat buffers just read.
    let layout = super::critic::critic_spec(DIM, true).build("critic")?;
    let weights: Vec<_> = layout
        .param_tensors()
        .iter()
        .filter(|t| t.key.ends_with("weight_orig"))
        .collect();
    let us: Vec<_> = layout
        .state_tensors()
        .iter()
        .filter(|t| t.key.ends_with("weight_u"))
        .collect();
    let vs: Vec<_> = layout
        .state_tensors()
        .iter()
        .filter(|t| t.key.ends_with("weight_v"))
        .collect();
    let mut trained = Vec::new();
    let mut product_bound = 1.0;
    for ((w, u), v) in weights.iter().zip(&us).zip(&vs) {
        let (rows, cols) = (w.shape[0], w.shape[1]);
        let flat = &params[w.offset..w.offset + w.len];
        let row_major: Vec<f32> = (0..rows * cols)
            .map(|i| flat[(i % cols) * rows + i / cols])
            .collect();
        let (u, v) = (
            &state[u.offset..u.offset + u.len],
            &state[v.offset..v.offset + v.len],
        );
        // σ = uᵀWv, as the layer's forward computes it.
        let mut sigma = 0.0f64;
        for r in 0..rows {
            let wv: f64 = (0..cols)
                .map(|c| row_major[r * cols + c] as f64 * v[c] as f64)
                .sum();
            sigma += u[r] as f64 * wv;
        }
        let svd = largest_singular_value(rows, cols, &row_major);
        product_bound *= svd / sigma;
        trained.push(SigmaRow {
            what: format!(
                "critic layer {} ({rows}×{cols})",
                w.key.split('.').next().unwrap_or("")
            ),
            estimate: sigma,
            svd,
            warm_up: None,
        });
    }
    // Empirical Lipschitz constant: gradient norms at real, generated, interpolated and
    // uniformly random points, and difference quotients over random pairs.
    let n = 4096;
    let key = RngKey::new(opts.seed, stream::TEST, 1 << 41);
    let mut points: Vec<f32> = real[..n * DIM].to_vec();
    points.extend_from_slice(&fake[..n * DIM]);
    points.extend((0..n * DIM).map(|i| {
        let e = rng::uniform(key, (i / DIM) as u64, 0.0, 1.0);
        e * real[i] + (1.0 - e) * fake[i]
    }));
    points.extend((0..n * DIM).map(|i| rng::uniform(key, (1 << 30) + i as u64, -4.0, 4.0)));
    let (values, grads) = rig.values_and_gradients(be, &points)?;
    let max_grad_norm = grads
        .chunks(DIM)
        .map(|g| g.iter().map(|v| v * v).sum::<f64>().sqrt())
        .fold(0.0f64, f64::max);
    let rows = values.len();
    let mut max_pair_ratio = 0.0f64;
    for k in 0..8 * n {
        let i = rng::index(key, (1 << 31) + 2 * k as u64, rows as u32) as usize;
        let j = rng::index(key, (1 << 31) + 2 * k as u64 + 1, rows as u32) as usize;
        let dist = (0..DIM)
            .map(|c| (points[i * DIM + c] as f64 - points[j * DIM + c] as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        if dist > 1e-3 {
            max_pair_ratio = max_pair_ratio.max((values[i] - values[j]).abs() / dist);
        }
    }
    Ok(SpectralCheck {
        random,
        trained,
        max_grad_norm,
        max_pair_ratio,
        product_bound,
        dim: DIM,
        steps,
    })
}

impl SpectralCheck {
    pub fn sigma_passed(&self) -> bool {
        self.random
            .iter()
            .all(|r| r.error() <= tolerance::SIGMA_CONVERGED)
            && self
                .trained
                .iter()
                .all(|r| r.error() <= tolerance::SIGMA_TRACKED)
    }

    pub fn lipschitz_passed(&self) -> bool {
        self.max_grad_norm <= tolerance::LIPSCHITZ && self.max_pair_ratio <= tolerance::LIPSCHITZ
    }

    pub fn verdicts(&self) -> Vec<super::Verdict> {
        let mut lines = vec![format!(
            "σ = uᵀWv after the power iteration on duel's kernels, against the largest singular \
             value of an SVD (f64): random matrices after {CONVERGED} iterations (tolerance {}; \
             the {WARM_UP_ITERATIONS} of a layer's warm-up in brackets), and a trained critic's \
             layers after one iteration per update (tolerance {})",
            tolerance::SIGMA_CONVERGED,
            tolerance::SIGMA_TRACKED
        )];
        for r in self.random.iter().chain(&self.trained) {
            let warm = r.warm_up.map_or(String::new(), |w| {
                format!("  [{w:.5}, error {:.1e}]", (w - r.svd).abs() / r.svd)
            });
            lines.push(format!(
                "{:<32} σ {:>10.5}  SVD {:>10.5}  relative error {:.1e}{warm}",
                r.what,
                r.estimate,
                r.svd,
                r.error()
            ));
        }
        let sigma = super::Verdict {
            title: "spectral norm (Miyato et al.): the power iteration's σ is W's largest \
                    singular value"
                .into(),
            lines,
            passed: self.sigma_passed(),
        };
        let lipschitz = super::Verdict {
            title: "spectral norm: a spectrally normalised critic is at most 1-Lipschitz".into(),
            lines: vec![
                format!(
                    "critic {} trained {} steps with the hinge loss between N(+1, I) and \
                     N(−1, I) in {} dimensions",
                    super::describe(super::critic::critic_spec(self.dim, true)),
                    self.steps,
                    self.dim
                ),
                format!(
                    "max ‖∇ₓD‖ at 16384 real, generated, interpolated and random points: {:.4}; \
                     max |D(x) − D(y)|/‖x − y‖ over 32768 pairs: {:.4} (tolerance ≤ {})",
                    self.max_grad_norm,
                    self.max_pair_ratio,
                    tolerance::LIPSCHITZ
                ),
                format!(
                    "∏ of each W/σ's largest singular value (the bound itself): {:.4}",
                    self.product_bound
                ),
            ],
            passed: self.lipschitz_passed(),
        };
        vec![sigma, lipschitz]
    }
}

//! The Parzen-window log-likelihood of Goodfellow et al. 2014, Table 1 (after Breuleux et al.
//! 2011), computed as the paper's code does (goodfeli/adversarial, `parzen_ll.py`): fit a
//! Gaussian Parzen window to samples of G, choose its width σ among 10 values log-spaced over
//! [0.1, 1] by the mean log-likelihood of a validation set, and report the test set's mean
//! log-likelihood with its standard error (std / sqrt(n), population std as NumPy's). Pixels are
//! in [0, 1].
//!
//! log p(x) = logsumexp_i(−‖x − μ_i‖² / (2σ²)) − log N − (d/2)·log(2πσ²) over the N centres μ_i.
//! The distances are ‖x‖² + ‖μ‖² − 2·x·μ: the dot products are one `matmul` per chunk of test
//! points, the norms `row_sum_squares`, and `parzen_log_density` the row-wise logsumexp, so it
//! runs on either backend.

use crate::backend::{Backend, MatView, Tensor, WriteMode};
use crate::kernels::matmul::{MatmulShape, matmul};
use crate::kernels::parzen::row_sum_squares;
use crate::kernels::parzen::{GaussianMixture, parzen_log_density};
use anyhow::{Result, bail};

/// The paper's σ grid: `count` values log-spaced over [10^lo, 10^hi] (NumPy's logspace).
pub fn sigma_grid(lo: f64, hi: f64, count: usize) -> Vec<f32> {
    match count {
        0 => Vec::new(),
        1 => vec![10f64.powf(lo) as f32],
        _ => (0..count)
            .map(|i| 10f64.powf(lo + (hi - lo) * i as f64 / (count - 1) as f64) as f32)
            .collect(),
    }
}

/// The 10 widths of the paper's search: logspace(−1, 0, 10).
pub fn paper_sigmas() -> Vec<f32> {
    sigma_grid(-1.0, 0.0, 10)
}

/// Largest dot-product block, in words, computed at once (keeps buffers far below any binding
/// limit while still giving the GPU thousands of workgroups).
const MAX_BLOCK_WORDS: usize = 8 << 20;

/// Parzen-window centres resident on a backend, with their squared norms.
pub struct ParzenWindow {
    mu: Tensor,
    mu_sq: Tensor,
    pub n: usize,
    pub dim: usize,
    /// Largest block of dot products computed at once, in words; points are processed in
    /// chunks of `block_words / n` rows.
    pub block_words: usize,
}

impl ParzenWindow {
    /// Uploads `centres` ([n, dim] row-major) and computes their squared norms on the backend.
    pub fn new(be: &mut dyn Backend, centres: &[f32], dim: usize) -> Result<Self> {
        if dim == 0 || centres.is_empty() || !centres.len().is_multiple_of(dim) {
            bail!(
                "Parzen window: {} values are not a whole number of samples of {dim}",
                centres.len()
            );
        }
        let n = centres.len() / dim;
        let mu = be.alloc(centres.len(), "parzen centres")?;
        be.write(mu, centres);
        let mu_sq = be.alloc(n, "parzen centre norms")?;
        row_sum_squares(be, mu_sq, mu, n, dim);
        Ok(Self {
            mu,
            mu_sq,
            n,
            dim,
            block_words: MAX_BLOCK_WORDS,
        })
    }

    /// log p(x) of every row of `points` ([rows, dim]) under each width: `out[s][r]`.
    pub fn log_density(
        &self,
        be: &mut dyn Backend,
        points: &[f32],
        sigmas: &[f32],
    ) -> Result<Vec<Vec<f32>>> {
        let (n, dim) = (self.n, self.dim);
        if !points.len().is_multiple_of(dim) {
            bail!(
                "Parzen window: {} values are not a whole number of points of {dim}",
                points.len()
            );
        }
        if let Some(s) = sigmas.iter().find(|s| !(**s > 0.0 && s.is_finite())) {
            bail!("Parzen window: σ must be positive, not {s}");
        }
        let rows = points.len() / dim;
        let limit = self.block_words.min(be.max_binding_words());
        let chunk = (limit / n).clamp(1, rows.max(1));
        let x = be.alloc(chunk * dim, "parzen points")?;
        let x_sq = be.alloc(chunk, "parzen point norms")?;
        let dot = be.alloc(chunk * n, "parzen dot products")?;
        let out = be.alloc(chunk * sigmas.len().max(1), "parzen log densities")?;
        let mut result = vec![Vec::with_capacity(rows); sigmas.len()];
        for block in points.chunks(chunk * dim) {
            let m = block.len() / dim;
            let xv = x.slice(0, m * dim);
            be.write(xv, block);
            row_sum_squares(be, x_sq, xv, m, dim);
            // dot[r, j] = x_r·μ_j: A = X [m, dim], B = Mᵀ [dim, n] read through strides.
            let a = MatView::new(xv, dim, 1);
            let b = MatView::new(self.mu, 1, dim);
            matmul(
                be,
                dot.slice(0, m * n),
                a,
                b,
                MatmulShape { m, n, k: dim },
                WriteMode::Overwrite,
            );
            for (s, &sigma) in sigmas.iter().enumerate() {
                let o = out.slice(s * chunk, m);
                let window = GaussianMixture { n, dim, sigma };
                parzen_log_density(be, o, dot, x_sq, self.mu_sq, m, window);
            }
            let got = be.read(out)?;
            for (s, r) in result.iter_mut().enumerate() {
                r.extend_from_slice(&got[s * chunk..s * chunk + m]);
            }
        }
        if result.iter().flatten().any(|v| v.is_nan()) {
            bail!("Parzen window: a log density is NaN; are the samples or points non-finite?");
        }
        Ok(result)
    }
}

/// Mean and standard error (population std / sqrt(n), as the paper's code) in f64.
pub fn mean_and_standard_error(v: &[f32]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt() / n.sqrt())
}

/// The outcome of the paper's procedure.
#[derive(Clone, Debug)]
pub struct ParzenReport {
    /// (σ, mean validation log-likelihood) for every width tried.
    pub search: Vec<(f32, f64)>,
    /// The width with the best validation log-likelihood.
    pub sigma: f32,
    /// Mean test log-likelihood (nats) and its standard error.
    pub test_mean: f64,
    pub test_se: f64,
    pub centres: usize,
    pub valid: usize,
    pub test: usize,
}

/// Fits a Parzen window to `centres`, picks σ from `sigmas` on `valid` and scores `test`
/// (all [rows, dim], values in [0, 1] for images).
pub fn parzen_evaluate(
    be: &mut dyn Backend,
    centres: &[f32],
    valid: &[f32],
    test: &[f32],
    dim: usize,
    sigmas: &[f32],
) -> Result<ParzenReport> {
    if sigmas.is_empty() {
        bail!("Parzen window: no σ to choose from");
    }
    if valid.is_empty() || test.is_empty() {
        bail!("Parzen window: the validation and test sets must not be empty");
    }
    let window = ParzenWindow::new(be, centres, dim)?;
    let search: Vec<(f32, f64)> = window
        .log_density(be, valid, sigmas)?
        .iter()
        .zip(sigmas)
        .map(|(ll, &s)| (s, mean_and_standard_error(ll).0))
        .collect();
    // The first best, as NumPy's argmax.
    let mut best = 0;
    for (i, &(_, v)) in search.iter().enumerate() {
        if v > search[best].1 {
            best = i;
        }
    }
    let sigma = search[best].0;
    let test_ll = window.log_density(be, test, &[sigma])?.remove(0);
    let (test_mean, test_se) = mean_and_standard_error(&test_ll);
    Ok(ParzenReport {
        search,
        sigma,
        test_mean,
        test_se,
        centres: window.n,
        valid: valid.len() / dim,
        test: test.len() / dim,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma_grid_matches_numpy_logspace() {
        let s = paper_sigmas();
        assert_eq!(s.len(), 10);
        assert!((s[0] - 0.1).abs() < 1e-7 && (s[9] - 1.0).abs() < 1e-7);
        // numpy.logspace(-1, 0, 10)[1] = 0.12915496650148839
        assert!((s[1] - 0.129_154_97).abs() < 1e-7, "{}", s[1]);
        for w in s.windows(2) {
            assert!((w[1] / w[0] - 10f32.powf(1.0 / 9.0)).abs() < 1e-5);
        }
    }

    #[test]
    fn standard_error_is_population_std_over_sqrt_n() {
        let (m, se) = mean_and_standard_error(&[1.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((se - 1.0 / 2f64.sqrt()).abs() < 1e-12);
    }
}

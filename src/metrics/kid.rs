//! Kernel distance (KID, Bińkowski et al. 2018): the unbiased estimate of MMD² between the two
//! feature distributions under the cubic polynomial kernel k(x, y) = (xᵀy/d + 1)³, averaged over
//! random subsets as torch-fidelity's `kid_features_to_metric` does (100 subsets of 1,000
//! samples drawn without replacement from each set, mean and population std of the 100
//! estimates). Subsets here are drawn from Philox streams, so a seed gives the same subsets on
//! every machine and thread count, but not torch-fidelity's subsets.
//!
//! Unlike FID, the estimate is unbiased: its expectation is 0 when both sets come from one
//! distribution (single subsets can then be negative).

use super::dots::{ColMajor, dots};
use super::{Features, check_pair};
use crate::rng::{self, RngKey};
use anyhow::{Result, bail};
use rayon::prelude::*;

/// Philox stream of the subset draws; the counter's high 32 bits number the subset.
const SUBSET_STREAM: u32 = 0x4B49_4400;
/// Query rows per block of kernel values: a 256 × n f32 block per task.
const BLOCK_ROWS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KidOptions {
    /// Number of random subsets averaged (torch-fidelity: 100).
    pub subsets: usize,
    /// Samples per subset from each set, capped at the smaller set's size (torch-fidelity:
    /// 1,000).
    pub subset_size: usize,
    /// Seed of the subset draws.
    pub seed: u64,
}

impl Default for KidOptions {
    fn default() -> Self {
        Self {
            subsets: 100,
            subset_size: 1000,
            seed: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Kid {
    /// Mean of the subsets' MMD² estimates.
    pub mean: f64,
    /// Population standard deviation of the subsets' estimates (NumPy's `std`).
    pub std: f64,
    pub subsets: usize,
    /// Samples per subset actually used: min(options.subset_size, n₁, n₂).
    pub subset_size: usize,
}

/// The cubic polynomial kernel of KID on a dot product of `d`-wide features.
pub fn poly_kernel(dot: f64, d: usize) -> f64 {
    let t = dot / d as f64 + 1.0;
    t * t * t
}

/// Σ_j k(·, r_j) over one row of dot products, in eight f64 lanes so the loop vectorises.
fn kernel_row_sum(dots: &[f32], d: usize) -> f64 {
    let inv_d = 1.0 / d as f64;
    let mut lanes = [0.0f64; 8];
    let mut chunks = dots.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            let t = v as f64 * inv_d + 1.0;
            *lane += t * t * t;
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| poly_kernel(v as f64, d))
        .sum();
    lanes.iter().sum::<f64>() + tail
}

/// Σ k(x_i, r_j) over all pairs of rows of `x` (row-major `[m, d]`) and `r`. Blocks of query
/// rows run on the rayon pool; the block sums are added in order, so the result does not
/// depend on the thread count.
fn kernel_sum(x: &[f32], r: &ColMajor) -> f64 {
    let (d, nr) = (r.d, r.n);
    let block_sums: Vec<f64> = x
        .par_chunks(BLOCK_ROWS * d)
        .map(|block| {
            let mut k = vec![0.0f32; block.len() / d * nr];
            dots(block, r, 0, &mut k, gemm::Parallelism::None);
            k.chunks_exact(nr).map(|row| kernel_row_sum(row, d)).sum()
        })
        .collect();
    block_sums.iter().sum()
}

/// Σ_{i≠j} k(x_i, x_j) over the rows of `x` (`xc` its column-major copy): twice the sum over
/// i < j, so each block of rows needs the dot products with its own and later rows only, half
/// the products of the full square.
fn kernel_sum_off_diagonal(x: &[f32], xc: &ColMajor) -> f64 {
    let (d, n) = (xc.d, xc.n);
    let block_sums: Vec<f64> = x
        .par_chunks(BLOCK_ROWS * d)
        .enumerate()
        .map(|(b, block)| {
            let first = b * BLOCK_ROWS;
            let mut k = vec![0.0f32; block.len() / d * (n - first)];
            dots(block, xc, first, &mut k, gemm::Parallelism::None);
            // Row i of the block is x_{first+i}; its entries past column i are the j > i.
            k.chunks_exact(n - first)
                .enumerate()
                .map(|(i, row)| kernel_row_sum(&row[i + 1..], d))
                .sum::<f64>()
        })
        .collect();
    2.0 * block_sums.iter().sum::<f64>()
}

/// Unbiased MMD² of row-major sets `x` (`[m, d]`) and `y` (`[n, d]`), m, n ≥ 2:
/// Σ_{i≠j} k(x_i, x_j)/(m(m−1)) + Σ_{i≠j} k(y_i, y_j)/(n(n−1)) − 2 Σ k(x_i, y_j)/(mn).
fn mmd2_rows(x: &[f32], y: &[f32], d: usize) -> f64 {
    let (m, n) = ((x.len() / d) as f64, (y.len() / d) as f64);
    let (xc, yc) = (ColMajor::from_rows(x, d), ColMajor::from_rows(y, d));
    kernel_sum_off_diagonal(x, &xc) / (m * (m - 1.0))
        + kernel_sum_off_diagonal(y, &yc) / (n * (n - 1.0))
        - 2.0 * kernel_sum(x, &yc) / (m * n)
}

/// Unbiased MMD² between the full sets `x` and `y` (at least 2 samples each, same width) under
/// the cubic polynomial kernel: one KID subset, of any sizes.
pub fn mmd2_unbiased(x: Features, y: Features) -> Result<f64> {
    check_pair("MMD²", x, y, 2)?;
    Ok(mmd2_rows(x.data(), y.data(), x.d()))
}

/// `size` distinct rows of `f` chosen uniformly (a partial Fisher–Yates shuffle of the row
/// indices driven by Philox counters `key.counter + i`), copied row-major.
fn random_subset(f: Features, size: usize, key: RngKey) -> Vec<f32> {
    let n = f.n();
    let mut order: Vec<usize> = (0..n).collect();
    let mut rows = Vec::with_capacity(size * f.d());
    for i in 0..size {
        let j = i + rng::index(key, i as u64, (n - i) as u32) as usize;
        order.swap(i, j);
        rows.extend_from_slice(f.row(order[i]));
    }
    rows
}

/// KID between feature sets `x` and `y` (e.g. real and generated): mean and std of the unbiased
/// MMD² over `options.subsets` random subsets of min(subset_size, n₁, n₂) samples from each.
pub fn kid(x: Features, y: Features, options: &KidOptions) -> Result<Kid> {
    check_pair("KID", x, y, 2)?;
    if options.subsets == 0 {
        bail!("KID needs at least 1 subset, got 0: pass a positive subset count");
    }
    if options.subset_size < 2 {
        bail!(
            "KID subsets need at least 2 samples, got {}: pass a larger subset size",
            options.subset_size
        );
    }
    if x.n().max(y.n()) > u32::MAX as usize {
        bail!("KID draws subsets from at most 2^32 samples: pass fewer samples");
    }
    let size = options.subset_size.min(x.n()).min(y.n());
    let estimates: Vec<f64> = (0..options.subsets)
        .into_par_iter()
        .map(|s| {
            let key = |set: u32| RngKey::new(options.seed, SUBSET_STREAM + set, (s as u64) << 32);
            let xs = random_subset(x, size, key(0));
            let ys = random_subset(y, size, key(1));
            mmd2_rows(&xs, &ys, x.d())
        })
        .collect();
    let count = estimates.len() as f64;
    let mean = estimates.iter().sum::<f64>() / count;
    let var = estimates.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / count;
    Ok(Kid {
        mean,
        std: var.sqrt(),
        subsets: options.subsets,
        subset_size: size,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{gaussian_samples, random_spd};
    use super::*;
    use nalgebra::{DMatrix, DVector};

    /// The O(n²) estimate written out pair by pair.
    fn mmd2_naive(x: &[f32], y: &[f32], d: usize) -> f64 {
        let k = |a: &[f32], b: &[f32]| {
            let dot: f64 = a.iter().zip(b).map(|(&u, &v)| u as f64 * v as f64).sum();
            (dot / d as f64 + 1.0).powi(3)
        };
        let rows = |s: &[f32]| s.chunks_exact(d).map(|r| r.to_vec()).collect::<Vec<_>>();
        let (xr, yr) = (rows(x), rows(y));
        let (m, n) = (xr.len() as f64, yr.len() as f64);
        let (mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0);
        for (i, a) in xr.iter().enumerate() {
            for (j, b) in xr.iter().enumerate() {
                if i != j {
                    xx += k(a, b);
                }
            }
            for b in &yr {
                xy += k(a, b);
            }
        }
        for (i, a) in yr.iter().enumerate() {
            for (j, b) in yr.iter().enumerate() {
                if i != j {
                    yy += k(a, b);
                }
            }
        }
        xx / (m * (m - 1.0)) + yy / (n * (n - 1.0)) - 2.0 * xy / (m * n)
    }

    /// E k(x, y) for independent x ~ N(a, A), y ~ N(b, B) in d dimensions, from the moments of
    /// s = xᵀy: k = 1 + 3 s/d + 3 s²/d² + s³/d³ with
    ///   E s  = aᵀb,
    ///   E s² = tr((A + aaᵀ)(B + bbᵀ)),
    ///   E s³ = (aᵀb)³ + 3 aᵀb (bᵀAb + aᵀBa + tr AB) + 6 bᵀABa
    /// (condition on x: s ~ N(xᵀb, xᵀBx), so E[s³|x] = (xᵀb)³ + 3 xᵀb · xᵀBx; then take the
    /// Gaussian moments of x).
    fn expected_kernel(a: &[f64], sa: &[f64], b: &[f64], sb: &[f64]) -> f64 {
        let d = a.len();
        let (a, b) = (DVector::from_column_slice(a), DVector::from_column_slice(b));
        let (sa, sb) = (
            DMatrix::from_row_slice(d, d, sa),
            DMatrix::from_row_slice(d, d, sb),
        );
        let ab = a.dot(&b);
        let m2 = ((&sa + &a * a.transpose()) * (&sb + &b * b.transpose())).trace();
        let m3 = ab.powi(3)
            + 3.0 * ab * ((b.transpose() * &sa * &b)[0] + (a.transpose() * &sb * &a)[0])
            + 3.0 * ab * (&sa * &sb).trace()
            + 6.0 * (b.transpose() * &sa * &sb * &a)[0];
        let d = d as f64;
        1.0 + 3.0 * ab / d + 3.0 * m2 / (d * d) + m3 / (d * d * d)
    }

    fn mmd2_closed_form(a: &[f64], sa: &[f64], b: &[f64], sb: &[f64]) -> f64 {
        expected_kernel(a, sa, a, sa) + expected_kernel(b, sb, b, sb)
            - 2.0 * expected_kernel(a, sa, b, sb)
    }

    #[test]
    fn blocked_estimate_matches_pairwise_sum() {
        // Sizes that leave ragged blocks (300 = 256 + 44) and unequal sets.
        let d = 3;
        let x = gaussian_samples(300, &[0.1, 0.0, -0.2], &random_spd(d, 1, 0.2), 1);
        let y = gaussian_samples(41, &[0.5, 0.3, 0.0], &random_spd(d, 2, 0.2), 2);
        let fx = Features::new(&x, d).unwrap();
        let fy = Features::new(&y, d).unwrap();
        let got = mmd2_unbiased(fx, fy).unwrap();
        let want = mmd2_naive(&x, &y, d);
        assert!(
            (got - want).abs() < 1e-6 * want.abs().max(1e-3),
            "{got} vs {want}"
        );
    }

    #[test]
    fn subsets_of_full_size_reproduce_the_full_estimate() {
        // A subset as large as the set is a permutation of it, and MMD² ignores order: every
        // subset gives the full-set estimate, so the std is roundoff.
        let d = 4;
        let x = gaussian_samples(40, &[0.0; 4], &random_spd(d, 3, 0.2), 3);
        let y = gaussian_samples(40, &[0.4; 4], &random_spd(d, 4, 0.2), 4);
        let (fx, fy) = (Features::new(&x, d).unwrap(), Features::new(&y, d).unwrap());
        let options = KidOptions {
            subsets: 7,
            subset_size: 1000,
            seed: 5,
        };
        let k = kid(fx, fy, &options).unwrap();
        assert_eq!(k.subset_size, 40);
        let want = mmd2_naive(&x, &y, d);
        assert!(
            (k.mean - want).abs() < 1e-6 * want.abs(),
            "{} vs {want}",
            k.mean
        );
        assert!(k.std < 1e-6 * want.abs(), "std {}", k.std);
    }

    #[test]
    fn subsets_are_seeded() {
        let d = 2;
        let x = gaussian_samples(300, &[0.0; 2], &random_spd(d, 5, 0.2), 6);
        let y = gaussian_samples(250, &[0.3; 2], &random_spd(d, 6, 0.2), 7);
        let (fx, fy) = (Features::new(&x, d).unwrap(), Features::new(&y, d).unwrap());
        let options = |seed| KidOptions {
            subsets: 10,
            subset_size: 100,
            seed,
        };
        let a = kid(fx, fy, &options(1)).unwrap();
        assert_eq!(a, kid(fx, fy, &options(1)).unwrap());
        assert_ne!(a.mean, kid(fx, fy, &options(2)).unwrap().mean);
        assert!(a.std > 0.0, "distinct subsets must give distinct estimates");
    }

    #[test]
    fn identical_distributions_give_zero_within_std() {
        let d = 8;
        let sigma = random_spd(d, 7, 0.1);
        let mu = vec![0.5; d];
        let x = gaussian_samples(3000, &mu, &sigma, 8);
        let y = gaussian_samples(3000, &mu, &sigma, 9);
        let (fx, fy) = (Features::new(&x, d).unwrap(), Features::new(&y, d).unwrap());
        let k = kid(fx, fy, &KidOptions::default()).unwrap();
        assert_eq!((k.subsets, k.subset_size), (100, 1000));
        assert!(k.std > 0.0);
        assert!(k.mean.abs() < k.std, "KID {} ± {}", k.mean, k.std);
    }

    #[test]
    fn kid_grows_with_mean_shift_as_the_closed_form() {
        let (d, n) = (4, 12_000);
        let sa = random_spd(d, 8, 0.3);
        let sb = random_spd(d, 9, 0.3);
        let a = vec![0.2, -0.1, 0.0, 0.3];
        let x = gaussian_samples(n, &a, &sa, 10);
        let fx = Features::new(&x, d).unwrap();
        let mut last = f64::NEG_INFINITY;
        for (i, shift) in [0.25, 0.5, 1.0, 2.0].into_iter().enumerate() {
            let b: Vec<f64> = a.iter().map(|v| v + shift).collect();
            let y = gaussian_samples(n, &b, &sb, 20 + i as u64);
            let fy = Features::new(&y, d).unwrap();
            let options = KidOptions {
                subsets: 20,
                ..KidOptions::default()
            };
            let k = kid(fx, fy, &options).unwrap();
            let want = mmd2_closed_form(&a, &sa, &b, &sb);
            assert!(k.mean > last, "shift {shift}: KID {} after {last}", k.mean);
            last = k.mean;
            assert!(
                (k.mean - want).abs() < 2.0 * k.std,
                "{} ± {} vs {want}",
                k.mean,
                k.std
            );
            // The full-set estimate is the most precise: away from 0 the estimator's std falls
            // as 1/√n, so it is about k.std·√(1000/n); allow 4 of those.
            let full = mmd2_unbiased(fx, fy).unwrap();
            let std_full = k.std * (k.subset_size as f64 / n as f64).sqrt();
            assert!(
                (full - want).abs() < 4.0 * std_full,
                "shift {shift}: {full} vs {want}"
            );
        }
    }

    #[test]
    fn bad_options_are_errors() {
        let x = [0.0f32; 8];
        let f = Features::new(&x, 2).unwrap();
        let zero = KidOptions {
            subsets: 0,
            ..KidOptions::default()
        };
        assert!(kid(f, f, &zero).unwrap_err().to_string().contains("subset"));
        let tiny = KidOptions {
            subset_size: 1,
            ..KidOptions::default()
        };
        assert!(kid(f, f, &tiny).is_err());
    }
}

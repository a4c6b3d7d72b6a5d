//! Improved precision and recall (Kynkäänniemi et al. 2019), as NVlabs' reference code
//! (`precision_recall.py`) computes them: each sample of a set spans a ball whose radius is the
//! distance to its k-th nearest neighbour in the same set (k = 3 by default, the sample itself
//! not counted); a set's manifold is the union of its balls.
//!
//! - precision: the fraction of generated samples inside the real manifold (fidelity);
//! - recall: the fraction of real samples inside the generated manifold (coverage).
//!
//! Distances are ‖a‖² + ‖b‖² − 2a·b, with the dot products from gemm in blocks of rows. The
//! features are first centred on the real mean (distances do not change) so the norms, and the
//! f32 cancellation in that formula, stay as small as the spread of the data allows. All radii
//! and comparisons are on squared distances.

use super::dots::{ColMajor, dots, row_norms_sq};
use super::{Features, check_pair, fid::mean};
use anyhow::{Result, bail};
use rayon::prelude::*;

/// Neighbourhood size of the paper and its code.
pub const DEFAULT_K: usize = 3;
/// Query rows per block: a 128 × n f32 block of distances per task.
const BLOCK_ROWS: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrecisionRecall {
    /// Fraction of generated samples within the k-NN radius of some real sample.
    pub precision: f64,
    /// Fraction of real samples within the k-NN radius of some generated sample.
    pub recall: f64,
}

/// A feature set centred on a given mean, with what distance queries need.
struct Centred {
    rows: Vec<f32>,
    cols: ColMajor,
    norms_sq: Vec<f32>,
}

impl Centred {
    fn new(f: Features, centre: &[f64]) -> Self {
        let d = f.d();
        let rows: Vec<f32> = f
            .data()
            .chunks_exact(d)
            .flat_map(|r| r.iter().zip(centre).map(|(&v, c)| (v as f64 - c) as f32))
            .collect();
        let cols = ColMajor::from_rows(&rows, d);
        let norms_sq = row_norms_sq(&rows, d);
        Self {
            rows,
            cols,
            norms_sq,
        }
    }

    fn d(&self) -> usize {
        self.cols.d
    }
}

/// Squared distances from a block of query rows (starting at row `first`) to every reference
/// row: `out` is row-major `[block rows, reference rows]`, clamped at 0 against roundoff.
fn squared_distances(q: &Centred, first: usize, block: &[f32], r: &Centred, out: &mut [f32]) {
    dots(block, &r.cols, 0, out, gemm::Parallelism::None);
    let nr = r.cols.n;
    for (i, row) in out.chunks_exact_mut(nr).enumerate() {
        let qn = q.norms_sq[first + i];
        for (v, &rn) in row.iter_mut().zip(&r.norms_sq) {
            *v = (qn + rn - 2.0 * *v).max(0.0);
        }
    }
}

/// The (k+1)-th smallest value of `row` (0-based index k of its sorted order), in one pass
/// that keeps the k+1 smallest values sorted: after the first few hundred values a new one
/// rarely beats the largest kept, so this costs one well-predicted comparison per value, far
/// less than `select_nth_unstable`'s partitioning.
fn kth_smallest(row: &[f32], k: usize) -> f32 {
    let mut best = vec![f32::INFINITY; k + 1];
    for &v in row {
        if v < best[k] {
            let at = best.partition_point(|&b| b <= v);
            best.copy_within(at..k, at + 1);
            best[at] = v;
        }
    }
    best[k]
}

/// Squared k-NN radius of every row of `s` among the rows of `s`: the (k+1)-th smallest squared
/// distance including the row itself (at 0), so its k-th nearest other row.
fn radii_sq(s: &Centred, k: usize) -> Vec<f32> {
    let d = s.d();
    let n = s.cols.n;
    s.rows
        .par_chunks(BLOCK_ROWS * d)
        .enumerate()
        .flat_map_iter(|(b, block)| {
            let mut dist = vec![0.0f32; block.len() / d * n];
            squared_distances(s, b * BLOCK_ROWS, block, s, &mut dist);
            dist.chunks_exact(n)
                .map(|row| kth_smallest(row, k))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn check_k(what: &str, a: Features, b: Features, k: usize) -> Result<()> {
    if k == 0 {
        bail!("{what} needs k ≥ 1 nearest neighbours, got 0: pass k = {DEFAULT_K}");
    }
    check_pair(what, a, b, k + 1)
}

/// k-NN radii (not squared) of the rows of `f` among themselves: the distance from each row to
/// its k-th nearest other row. Needs more than k rows.
pub fn knn_radii(f: Features, k: usize) -> Result<Vec<f32>> {
    check_k("k-NN radii", f, f, k)?;
    let s = Centred::new(f, &mean(f));
    Ok(radii_sq(&s, k).into_iter().map(f32::sqrt).collect())
}

/// Precision and recall of generated features `fake` against real features `real` with k-NN
/// radii (k ≥ 1; both sets need more than k samples and one width).
pub fn precision_recall(real: Features, fake: Features, k: usize) -> Result<PrecisionRecall> {
    check_k("precision/recall", real, fake, k)?;
    let centre = mean(real);
    let real = Centred::new(real, &centre);
    let fake = Centred::new(fake, &centre);
    let real_radii = radii_sq(&real, k);
    let fake_radii = radii_sq(&fake, k);
    let (d, n_real) = (real.d(), real.cols.n);
    // One pass over fake × real distances serves both: a fake row is precise if it lies in
    // some real ball; a real row is recalled if it lies in some fake ball.
    let (precise, recalled) = fake
        .rows
        .par_chunks(BLOCK_ROWS * d)
        .enumerate()
        .map(|(b, block)| {
            let first = b * BLOCK_ROWS;
            let mut dist = vec![0.0f32; block.len() / d * n_real];
            squared_distances(&fake, first, block, &real, &mut dist);
            let mut recalled = vec![false; n_real];
            let mut precise = 0usize;
            for (i, row) in dist.chunks_exact(n_real).enumerate() {
                let fake_radius = fake_radii[first + i];
                let mut inside = false;
                for ((&dd, &real_radius), hit) in row.iter().zip(&real_radii).zip(&mut recalled) {
                    inside |= dd <= real_radius;
                    *hit |= dd <= fake_radius;
                }
                precise += inside as usize;
            }
            (precise, recalled)
        })
        .reduce(
            || (0, vec![false; n_real]),
            |(pa, mut ra), (pb, rb)| {
                ra.iter_mut().zip(rb).for_each(|(a, b)| *a |= b);
                (pa + pb, ra)
            },
        );
    let recalled = recalled.iter().filter(|&&r| r).count();
    Ok(PrecisionRecall {
        precision: precise as f64 / fake.cols.n as f64,
        recall: recalled as f64 / n_real as f64,
    })
}

/// A real set's manifold (the union of its k-NN balls), built once and queried sample by
/// sample: which samples lie inside it (each sample's share of improved precision).
pub struct Manifold {
    centre: Vec<f64>,
    real: Centred,
    radii_sq: Vec<f32>,
}

impl Manifold {
    /// The manifold of `real` with k-NN radii (k ≥ 1; more than k rows).
    pub fn new(real: Features, k: usize) -> Result<Self> {
        check_k("a k-NN manifold", real, real, k)?;
        let centre = mean(real);
        let real = Centred::new(real, &centre);
        let radii_sq = radii_sq(&real, k);
        Ok(Self {
            centre,
            real,
            radii_sq,
        })
    }

    /// Whether each row of `q` lies within the k-NN radius of some real row.
    pub fn contains(&self, q: Features) -> Result<Vec<bool>> {
        if q.d() != self.real.d() {
            bail!(
                "manifold membership: samples have {} features, the real set {}",
                q.d(),
                self.real.d()
            );
        }
        let (d, n_real) = (q.d(), self.real.cols.n);
        let q = Centred::new(q, &self.centre);
        Ok(q.rows
            .par_chunks(BLOCK_ROWS * d)
            .enumerate()
            .flat_map_iter(|(b, block)| {
                let mut dist = vec![0.0f32; block.len() / d * n_real];
                squared_distances(&q, b * BLOCK_ROWS, block, &self.real, &mut dist);
                dist.chunks_exact(n_real)
                    .map(|row| row.iter().zip(&self.radii_sq).any(|(dd, r)| dd <= r))
                    .collect::<Vec<_>>()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{gaussian_samples, random_spd};
    use super::*;

    fn one_d(values: &[f32]) -> Features<'_> {
        Features::new(values, 1).unwrap()
    }

    #[test]
    fn hand_checked_one_dimensional_example() {
        // Real 0 1 2 3 10 11, k = 1: every radius is 1.
        // Fake 0.5 2.9 5 5.5, k = 1: radii 2.4, 2.1, 0.5, 0.5.
        // Precision: 0.5 (by 0) and 2.9 (by 3) are inside; 5 and 5.5 are 2+ from 3 and 4.5+
        // from 10: 2/4.
        // Recall: 0, 1 (by 0.5's 2.4), 2, 3 (by 2.9's 2.1) are inside; 10 and 11 are 4.5+ from
        // 5.5, whose radius is 0.5: 4/6.
        let real = [0.0, 1.0, 2.0, 3.0, 10.0, 11.0];
        let fake = [0.5, 2.9, 5.0, 5.5];
        let pr = precision_recall(one_d(&real), one_d(&fake), 1).unwrap();
        assert_eq!(pr.precision, 0.5);
        // Sample by sample: 0.5 and 2.9 lie inside, 5 and 5.5 do not.
        let m = Manifold::new(one_d(&real), 1).unwrap();
        assert_eq!(
            m.contains(one_d(&fake)).unwrap(),
            [true, true, false, false]
        );
        assert_eq!(pr.recall, 4.0 / 6.0);
        let radii = knn_radii(one_d(&fake), 1).unwrap();
        for (got, want) in radii.iter().zip([2.4, 2.1, 0.5, 0.5]) {
            assert!((got - want).abs() < 1e-5, "{radii:?}");
        }
        // k = 2 widens the balls. Real radii 2, 1, 1, 2, 7, 8: now 10 reaches 5 and 5.5, so
        // precision is 4/4. Fake radii 4.5, 2.4, 2.1, 2.6: 10 is still 4.5 from 5.5 and 5 from
        // 5, so recall stays 4/6.
        let pr = precision_recall(one_d(&real), one_d(&fake), 2).unwrap();
        assert_eq!(pr.precision, 1.0);
        assert_eq!(pr.recall, 4.0 / 6.0);
    }

    #[test]
    fn identical_sets_score_one_and_far_sets_zero() {
        let d = 16;
        let sigma = random_spd(d, 1, 0.1);
        let x = gaussian_samples(600, &vec![0.0; d], &sigma, 1);
        let fx = Features::new(&x, d).unwrap();
        let pr = precision_recall(fx, fx, DEFAULT_K).unwrap();
        assert_eq!((pr.precision, pr.recall), (1.0, 1.0));
        let y = gaussian_samples(500, &vec![50.0; d], &sigma, 2);
        let fy = Features::new(&y, d).unwrap();
        let pr = precision_recall(fx, fy, DEFAULT_K).unwrap();
        assert_eq!((pr.precision, pr.recall), (0.0, 0.0));
    }

    #[test]
    fn a_narrow_generator_is_precise_but_misses_recall() {
        // Fake samples from the middle of the real distribution (a quarter of its spread) all
        // land in real balls, but their small balls cover only the real core.
        let d = 4;
        let eye: Vec<f64> = (0..d * d)
            .map(|i| if i % (d + 1) == 0 { 1.0 } else { 0.0 })
            .collect();
        let narrow: Vec<f64> = eye.iter().map(|v| v / 16.0).collect();
        let real = gaussian_samples(2000, &vec![0.0; d], &eye, 3);
        let fake = gaussian_samples(2000, &vec![0.0; d], &narrow, 4);
        let (fr, ff) = (
            Features::new(&real, d).unwrap(),
            Features::new(&fake, d).unwrap(),
        );
        let pr = precision_recall(fr, ff, DEFAULT_K).unwrap();
        assert!(pr.precision > 0.95, "{pr:?}");
        assert!(pr.recall < 0.5, "{pr:?}");
        // Swapping the roles swaps the scores' meaning.
        let swapped = precision_recall(ff, fr, DEFAULT_K).unwrap();
        assert!(
            swapped.recall > 0.95 && swapped.precision < 0.5,
            "{swapped:?}"
        );
    }

    #[test]
    fn kth_smallest_counts_ties() {
        let row = [3.0, 1.0, 2.0, 1.0, 5.0, 0.5];
        let mut sorted = row;
        sorted.sort_by(f32::total_cmp);
        for (k, want) in sorted.iter().enumerate() {
            assert_eq!(kth_smallest(&row, k), *want, "k = {k}");
        }
    }

    #[test]
    fn blocked_radii_match_brute_force() {
        // 300 rows: two full blocks and a ragged one.
        let d = 5;
        let x = gaussian_samples(300, &vec![1.0; d], &random_spd(d, 2, 0.1), 5);
        let radii = knn_radii(Features::new(&x, d).unwrap(), 3).unwrap();
        for (i, a) in x.chunks_exact(d).enumerate() {
            let mut dist: Vec<f64> = x
                .chunks_exact(d)
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, b)| {
                    let s: f64 = a
                        .iter()
                        .zip(b)
                        .map(|(&u, &v)| (u - v) as f64)
                        .map(|t| t * t)
                        .sum();
                    s.sqrt()
                })
                .collect();
            dist.sort_by(f64::total_cmp);
            let want = dist[2];
            assert!(
                (radii[i] as f64 - want).abs() < 1e-4 * want.max(1.0),
                "row {i}"
            );
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = [0.0f32, 1.0, 2.0];
        assert!(precision_recall(one_d(&x), one_d(&x), 0).is_err());
        let err = precision_recall(one_d(&x), one_d(&x), 3).unwrap_err();
        assert!(err.to_string().contains("at least 4"), "{err}");
    }
}

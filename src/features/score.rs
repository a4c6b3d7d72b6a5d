//! Scoring a run with the feature network: FID, KID and precision/recall of a 1×28×28 run
//! (`duel eval fid|kid|pr`), Stacked MNIST's mode counts (`duel eval modes` on a stacked-mnist
//! run), and the same measurements taken during training (`--eval-every`).
//!
//! The reference set is the embedded set's 1,000 held-out digits, which no run trains on. Each
//! score comes with a real-vs-real baseline: as many of the run's training digits (the 7,000
//! embedded ones) as samples of G, scored against the same held-out digits, so the two numbers
//! share the reference set and the sample count (FID and precision/recall depend on both).

use super::classes::{LEGIBLE_P, LegibilityJudge};
use super::{CLASSES, FEATURE_DIM, FeatureNet, PIXELS, SIDE, Weights, unit_rows};
use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::data::dataset::{STACKED_MNIST, embedded_mnist};
use crate::data::stacked;
use crate::metrics::{self, Features, FidStats, KidOptions};
use crate::rng::{RngKey, stream};
use anyhow::{Result, bail};
use std::fmt::Write as _;

/// Samples of G `duel eval fid|kid|pr` scores by default: as many as there are training digits,
/// so the baseline uses all of them.
pub const DEFAULT_SAMPLES: usize = 7000;
/// Samples of a Stacked MNIST run classified by `duel eval modes` (VEEGAN's and PacGAN's
/// protocol).
pub const STACKED_SAMPLES: usize = 26_000;
/// Modes of Stacked MNIST.
pub const STACKED_MODES: usize = 1000;

/// The table of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018) on Stacked MNIST,
/// 26,000 samples: (method, modes captured of 1,000, KL(mode histogram ‖ uniform)).
pub const STACKED_TABLE: [(&str, f64, f64); 5] = [
    ("DCGAN", 99.0, 3.40),
    ("ALI", 16.0, 5.40),
    ("Unrolled GAN", 48.7, 4.32),
    ("VEEGAN", 150.0, 2.95),
    ("PacDCGAN2", 1000.0, 0.06),
];

/// A feature-space metric of `duel eval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Fid,
    Kid,
    PrecisionRecall,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Fid => "FID",
            Metric::Kid => "KID",
            Metric::PrecisionRecall => "precision/recall",
        }
    }
}

/// Samples in G's output range mapped to pixels in [0, 1].
pub fn to_unit(samples: &mut [f32], (lo, hi): (f32, f32)) {
    for v in samples {
        *v = ((*v - lo) / (hi - lo)).clamp(0.0, 1.0);
    }
}

/// Errors unless the run makes 1×28×28 images, naming what it makes and what to use instead.
pub fn require_digits(ck: &Checkpoint, metric: &str) -> Result<()> {
    match ck.image_shape {
        Some((1, SIDE, SIDE)) => Ok(()),
        Some((c, h, w)) => {
            let instead = if ck.config.dataset == STACKED_MNIST {
                "; for a stacked-mnist run use duel eval modes"
            } else {
                ""
            };
            bail!(
                "this run ({}) makes {c}×{h}×{w} images; {metric} uses duel's MNIST feature \
                 network, which reads 1×28×28 digits (runs on mnist or MNIST-format files){instead}",
                ck.config.dataset
            )
        }
        None => bail!(
            "this run trained on {} (2D points); {metric} is for 1×28×28 image runs. Use duel \
             eval modes for the 2D sets",
            ck.config.dataset
        ),
    }
}

/// `count` samples of the run's generator (its weight average when it kept one, as `duel
/// sample` draws them) as pixels in [0, 1].
pub fn sample_unit(
    be: &mut dyn Backend,
    ck: &Checkpoint,
    count: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    let mut x = crate::sample::generate(ck, be, &crate::sample::NoiseSource::Seed { count, seed })?;
    to_unit(&mut x, ck.config.data_range());
    Ok(x)
}

/// Mean and covariance of the feature network's features of `count` samples of G (noise
/// `seed`): the statistics `duel eval fid --save-stats` writes.
pub fn generator_stats(
    be: &mut dyn Backend,
    ck: &Checkpoint,
    count: usize,
    seed: u64,
) -> Result<FidStats> {
    require_digits(ck, "FID")?;
    let mut net = FeatureNet::shipped(be)?;
    let x = sample_unit(be, ck, count, seed)?;
    let f = net.features(be, &x)?;
    FidStats::from_features(Features::new(&f, FEATURE_DIM)?)
}

/// What `duel eval fid|kid|pr` measured: the generator's numbers and the real-vs-real
/// baseline's (FID: [fid]; KID: [mean, std]; precision/recall: [precision, recall]).
#[derive(Clone, Debug)]
pub struct ScoreEval {
    pub generator: Vec<f64>,
    pub baseline: Vec<f64>,
    pub text: String,
    /// The generator's feature statistics, for FID (what `--save-stats` writes).
    pub generator_stats: Option<FidStats>,
}

fn compute(metric: Metric, reference: Features, x: Features, seed: u64) -> Result<Vec<f64>> {
    Ok(match metric {
        Metric::Fid => vec![metrics::fid(x, reference)?],
        Metric::Kid => {
            let opts = KidOptions {
                seed,
                ..KidOptions::default()
            };
            let k = metrics::kid(x, reference, &opts)?;
            vec![k.mean, k.std]
        }
        Metric::PrecisionRecall => {
            let pr = metrics::precision_recall(reference, x, metrics::DEFAULT_K)?;
            vec![pr.precision, pr.recall]
        }
    })
}

fn show(metric: Metric, v: &[f64]) -> String {
    match metric {
        Metric::Fid => format!("digit-classifier FID {:.3}", v[0]),
        Metric::Kid => format!("digit-classifier KID {:.4} ± {:.4}", v[0], v[1]),
        Metric::PrecisionRecall => format!("precision {:.4}  recall {:.4}", v[0], v[1]),
    }
}

/// FID, KID or precision/recall of the run in `ck` from `samples` samples of G (noise `seed`)
/// against the embedded set's held-out digits, with the real-vs-real baseline.
pub fn score(
    be: &mut dyn Backend,
    ck: &Checkpoint,
    metric: Metric,
    samples: usize,
    seed: u64,
) -> Result<ScoreEval> {
    require_digits(ck, metric.name())?;
    if samples < 2 * metrics::DEFAULT_K {
        bail!(
            "--samples {samples} is too few for {}; pass at least {}",
            metric.name(),
            2 * metrics::DEFAULT_K
        );
    }
    // G's samples, their features and as many real images' features are held at once.
    crate::budget::check(
        &format!("--samples {samples}"),
        crate::budget::rows_bytes(samples, 2 * PIXELS + 2 * FEATURE_DIM),
        "pass fewer --samples (10000 is the usual count)",
    )?;
    let weights = Weights::shipped()?;
    let mut net = FeatureNet::new(be, &weights, super::EVAL_BATCH)?;
    let (train, heldout) = embedded_mnist()?;
    let x = sample_unit(be, ck, samples, seed)?;
    let fake = net.features(be, &x)?;
    let held = net.features(be, &unit_rows(&heldout))?;
    let take = samples.min(train.n);
    let real = net.features(be, &unit_rows(&train)[..take * PIXELS])?;
    let reference = Features::new(&held, FEATURE_DIM)?;
    let generator = compute(metric, reference, Features::new(&fake, FEATURE_DIM)?, seed)?;
    let baseline = compute(metric, reference, Features::new(&real, FEATURE_DIM)?, seed)?;

    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} on duel's MNIST feature network ({FEATURE_DIM} features of its penultimate layer; \
         not comparable with Inception-based numbers from papers)",
        metric.name()
    );
    let _ = writeln!(
        text,
        "run: {} at iteration {}; {samples} samples of G (noise seed {seed}), pixels in [0, 1], \
         against the embedded set's {} held-out digits",
        ck.config.dataset, ck.state.iteration, heldout.n
    );
    let _ = writeln!(text, "generator:             {}", show(metric, &generator));
    let _ = write!(
        text,
        "real-vs-real baseline: {}   ({take} embedded training digits against the same {} \
         held-out digits)",
        show(metric, &baseline),
        heldout.n
    );
    let generator_stats = match metric {
        Metric::Fid => Some(FidStats::from_features(Features::new(&fake, FEATURE_DIM)?)?),
        _ => None,
    };
    Ok(ScoreEval {
        generator,
        baseline,
        text,
        generator_stats,
    })
}

/// Modes of a set of Stacked MNIST images.
#[derive(Clone, Debug, PartialEq)]
pub struct StackedModes {
    /// Modes (digit triples) with at least one sample, of 1,000.
    pub modes: usize,
    /// KL(histogram of modes ‖ uniform over 1,000) in nats.
    pub kl: f64,
    /// Samples per mode, 100·R + 10·G + B.
    pub counts: Vec<usize>,
}

impl StackedModes {
    /// From each image's mode.
    pub fn from_modes(modes: &[u32]) -> Self {
        let mut counts = vec![0usize; STACKED_MODES];
        for &m in modes {
            counts[m as usize] += 1;
        }
        let n = modes.len().max(1) as f64;
        let kl = counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / n;
                p * (p * STACKED_MODES as f64).ln()
            })
            .sum();
        Self {
            modes: counts.iter().filter(|&&c| c > 0).count(),
            kl,
            counts,
        }
    }
}

/// Classifies each channel of 3×28×28 images in [0, 1] (row-major [n, 3·784]) and counts their
/// modes.
pub fn stacked_modes(
    be: &mut dyn Backend,
    net: &mut FeatureNet,
    images: &[f32],
) -> Result<StackedModes> {
    // Channels are contiguous 784-value planes: the images are 3n digits in a row.
    let digits = net.classify(be, images)?;
    if !digits.len().is_multiple_of(3) {
        bail!(
            "Stacked MNIST images have 3 channels; got {} planes",
            digits.len()
        );
    }
    let modes: Vec<u32> = digits
        .chunks_exact(3)
        .map(|d| stacked::mode_of([d[0], d[1], d[2]]))
        .collect();
    debug_assert!(digits.iter().all(|&d| (d as usize) < CLASSES));
    Ok(StackedModes::from_modes(&modes))
}

/// `n` real Stacked MNIST images composed from the embedded set's held-out digits, in [0, 1]:
/// what a generator that captured the data exactly would score, classifier errors included.
pub fn real_stacked(n: usize, seed: u64) -> Result<Vec<f32>> {
    let (_, heldout) = embedded_mnist()?;
    Ok(unit_rows(&stacked::stack(&heldout, n, seed)?))
}

/// What `duel eval modes` measured on a Stacked MNIST run.
#[derive(Clone, Debug)]
pub struct StackedEval {
    pub generator: StackedModes,
    pub real: StackedModes,
    pub text: String,
}

/// `duel eval modes` on a stacked-mnist run: `samples` samples of G (26,000 in the papers),
/// each channel classified by the feature network.
pub fn stacked_eval(
    be: &mut dyn Backend,
    ck: &Checkpoint,
    samples: usize,
    seed: u64,
) -> Result<StackedEval> {
    if ck.image_shape != Some((3, SIDE, SIDE)) {
        bail!(
            "this run ({}) is not a Stacked MNIST run of 3×28×28 images; train one with \
             --dataset {STACKED_MNIST}",
            ck.config.dataset
        );
    }
    if samples == 0 {
        bail!("--samples must be at least 1");
    }
    let mut net = FeatureNet::shipped(be)?;
    let x = sample_unit(be, ck, samples, seed)?;
    let generator = stacked_modes(be, &mut net, &x)?;
    let real = stacked_modes(be, &mut net, &real_stacked(samples, seed)?)?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Stacked MNIST mode coverage (the protocol of VEEGAN and PacGAN): {} at iteration {}, \
         {samples} samples",
        ck.config.dataset, ck.state.iteration
    );
    let _ = writeln!(
        text,
        "each channel classified by duel's feature network; mode = 100·R + 10·G + B, 1,000 in all"
    );
    let _ = writeln!(
        text,
        "                     {:>10}  {:>17}",
        "modes", "KL(modes‖uniform)"
    );
    let row = |name: &str, modes: String, kl: f64| format!("{name:<20} {modes:>10}  {kl:>17.3}");
    for (name, m) in [("generator", &generator), ("real data", &real)] {
        let _ = writeln!(text, "{}", row(name, format!("{}/1000", m.modes), m.kl));
    }
    let _ = writeln!(
        text,
        "(real data: {samples} Stacked MNIST images of the held-out digits, classified the same way)"
    );
    let _ = writeln!(text, "VEEGAN and PacGAN's table (26,000 samples):");
    for (name, modes, kl) in STACKED_TABLE {
        let _ = writeln!(text, "{}", row(name, format!("{modes}"), kl));
    }
    let top: Vec<String> = {
        let mut by: Vec<(usize, usize)> = generator.counts.iter().copied().enumerate().collect();
        by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        by.iter()
            .take(5)
            .filter(|(_, c)| *c > 0)
            .map(|(m, c)| format!("{m:03} ({c})"))
            .collect()
    };
    let _ = write!(text, "generator's most frequent modes: {}", top.join(", "));
    Ok(StackedEval {
        generator,
        real,
        text,
    })
}

/// What training measures every `--eval-every` steps.
pub struct TrainingEval {
    net: FeatureNet,
    kind: EvalKind,
    /// For a digit run: what legibility is measured against.
    judge: Option<LegibilityJudge>,
    pub samples: usize,
}

enum EvalKind {
    /// FID against the held-out digits' statistics.
    Fid(FidStats),
    /// Stacked MNIST's modes and KL.
    Modes,
}

impl TrainingEval {
    /// The evaluator for a run on images of `shape` from `dataset`, or an error saying which
    /// runs `--eval-every` supports. Also returns a line describing what is measured, with the
    /// real data's own score at the same sample count.
    pub fn new(
        be: &mut dyn Backend,
        dataset: &str,
        shape: Option<(usize, usize, usize)>,
        samples: usize,
    ) -> Result<(Self, String)> {
        let mut net = FeatureNet::shipped(be)?;
        let (train, heldout) = embedded_mnist()?;
        match shape {
            Some((1, SIDE, SIDE)) => {
                if samples < 2 {
                    bail!("--eval-samples must be at least 2 for FID");
                }
                let judge = LegibilityJudge::new(be, &mut net)?;
                let (held, top) = net.features_and_top(be, &unit_rows(&heldout))?;
                let stats = FidStats::from_features(Features::new(&held, FEATURE_DIM)?)?;
                let p: Vec<f64> = top.iter().map(|t| t.1).collect();
                let legible = judge.judge(&held, &p)?;
                let take = samples.min(train.n);
                let real = net.features(be, &unit_rows(&train)[..take * PIXELS])?;
                let real = FidStats::from_features(Features::new(&real, FEATURE_DIM)?)?;
                let baseline = metrics::frechet_distance(&real, &stats)?;
                let line = format!(
                    "digit-classifier FID and legibility every --eval-every steps: {samples} samples of G against \
                     the {} held-out digits (real-vs-real: {take} training digits score FID \
                     {baseline:.3}; {:.1}% of held-out digits legible)",
                    heldout.n,
                    100.0 * legible.legible
                );
                let kind = EvalKind::Fid(stats);
                let judge = Some(judge);
                Ok((
                    Self {
                        net,
                        kind,
                        judge,
                        samples,
                    },
                    line,
                ))
            }
            Some((3, SIDE, SIDE)) if dataset == STACKED_MNIST => {
                if samples == 0 {
                    bail!("--eval-samples must be at least 1");
                }
                let real = stacked_modes(be, &mut net, &real_stacked(samples, 1)?)?;
                let line = format!(
                    "modes every --eval-every steps: {samples} samples of G, each channel \
                     classified (real Stacked MNIST at that count: {}/1000 modes, KL {:.3})",
                    real.modes, real.kl
                );
                Ok((
                    Self {
                        net,
                        kind: EvalKind::Modes,
                        judge: None,
                        samples,
                    },
                    line,
                ))
            }
            _ => bail!(
                "--eval-every measures FID on 1×28×28 runs and modes on {STACKED_MNIST} runs, with \
                 duel's MNIST feature network; {dataset} is neither. Leave --eval-every out"
            ),
        }
    }

    /// The metrics.csv columns it fills.
    pub fn columns(&self) -> &'static [&'static str] {
        match self.kind {
            EvalKind::Fid(_) => &["fid", "legible", "confidence"],
            EvalKind::Modes => &["modes", "kl_uniform"],
        }
    }

    /// "digit-classifier FID 23.456 | legible 81.2%" or "modes 123/1000 | KL(modes‖uniform) 3.210" for a progress line.
    pub fn summary(&self, v: &[f64]) -> String {
        match self.kind {
            EvalKind::Fid(_) => format!(
                "digit-classifier FID {:.3} | legible {:.1}% (p ≥ {LEGIBLE_P}, on the digit manifold) | mean \
                 top-class p {:.3} ({} samples)",
                v[0],
                100.0 * v[1],
                v[2],
                self.samples
            ),
            EvalKind::Modes => format!(
                "modes {}/1000 | KL(modes‖uniform) {:.3} ({} samples)",
                v[0], v[1], self.samples
            ),
        }
    }

    /// The columns' values for `samples` samples of G as pixels in [0, 1].
    pub fn evaluate(&mut self, be: &mut dyn Backend, samples: &[f32]) -> Result<Vec<f64>> {
        match &self.kind {
            EvalKind::Fid(reference) => {
                let (f, top) = self.net.features_and_top(be, samples)?;
                let stats = FidStats::from_features(Features::new(&f, FEATURE_DIM)?)?;
                let p: Vec<f64> = top.iter().map(|t| t.1).collect();
                let judge = self.judge.as_ref().expect("a FID evaluation has a judge");
                let l = judge.judge(&f, &p)?;
                Ok(vec![
                    metrics::frechet_distance(&stats, reference)?,
                    l.legible,
                    l.mean_confidence,
                ])
            }
            EvalKind::Modes => {
                let m = stacked_modes(be, &mut self.net, samples)?;
                Ok(vec![m.modes as f64, m.kl])
            }
        }
    }

    /// The noise of the evaluation samples: the same at every evaluation, apart from the grids'.
    pub fn key(seed: u64) -> RngKey {
        RngKey::new(seed, stream::SAMPLE, 1 << 40)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_histogram_and_kl() {
        // Every mode once: all captured, KL 0.
        let all: Vec<u32> = (0..1000).collect();
        let m = StackedModes::from_modes(&all);
        assert_eq!(m.modes, 1000);
        assert!(m.kl.abs() < 1e-12);
        // One mode: KL = log 1000.
        let one = StackedModes::from_modes(&[472; 50]);
        assert_eq!((one.modes, one.counts[472]), (1, 50));
        assert!((one.kl - 1000f64.ln()).abs() < 1e-12);
        // Two modes evenly: log 500.
        let two = StackedModes::from_modes(&[1, 2, 1, 2]);
        assert!((two.kl - 500f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn unit_mapping_clamps() {
        let mut v = [-1.0, 0.0, 1.0, 1.5, -3.0];
        to_unit(&mut v, (-1.0, 1.0));
        assert_eq!(v, [0.0, 0.5, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn real_stacked_mnist_has_its_modes() {
        // The held-out digits' own triples, classified: about every mode at 10,000 samples
        // and a KL near the sampling floor (about (K − 1)/2N = 0.05), far below any GAN's.
        let mut be = crate::CpuBackend::new();
        let mut net = FeatureNet::shipped(&mut be).unwrap();
        let m = stacked_modes(&mut be, &mut net, &real_stacked(10_000, 1).unwrap()).unwrap();
        assert!(m.modes >= 990, "{} modes", m.modes);
        assert!(m.kl < 0.1, "KL {}", m.kl);
    }
}

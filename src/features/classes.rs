//! `duel eval classes`: which digits a run draws. The feature network labels samples of G, and
//! the histogram is printed beside the held-out digits' own, with the classes drawn, the largest
//! share and KL(histogram ‖ uniform) — the number that shows a generator leaning on 1s, which
//! the Parzen window and a glance at a grid both miss.

use super::score::{require_digits, sample_unit};
use super::{CLASSES, FEATURE_DIM, FeatureNet, Weights, unit_rows};
use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::data::dataset::embedded_mnist;
use crate::metrics::{DEFAULT_K, Features, Manifold};
use anyhow::{Result, bail};
use std::fmt::Write as _;

/// Samples `duel eval classes` labels by default.
pub const DEFAULT_SAMPLES: usize = 10_000;
/// A class counts as drawn when it holds at least this share of the samples.
pub const DRAWN_SHARE: f64 = 0.01;

/// A sample counts as confident when the classifier gives its top class at least this
/// probability.
pub const LEGIBLE_P: f64 = 0.9;

/// How legible a set of digits is. A classifier is sure of many inputs that are no digit at all
/// (the shipped one gives uniform noise p > 0.9), so a sample is *legible* only when the classifier
/// is confident of it **and** its features lie on the real digits' manifold: within the k-NN ball
/// (k = 3) of one of the 7,000 embedded training digits, as improved precision (Kynkäänniemi et al.
/// 2019) decides membership.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Legibility {
    /// Mean top-class probability, in [0.1, 1].
    pub mean_confidence: f64,
    /// Share of digits whose top-class probability is at least `LEGIBLE_P`.
    pub confident: f64,
    /// Share of digits whose features lie on the training digits' manifold.
    pub on_manifold: f64,
    /// Share of digits both confident and on the manifold.
    pub legible: f64,
}

impl Legibility {
    /// From each digit's top-class probability and manifold membership.
    pub fn of(top: &[f64], inside: &[bool]) -> Self {
        let n = top.len().max(1) as f64;
        let share = |k: usize| k as f64 / n;
        let sure = |p: f64| p >= LEGIBLE_P;
        Legibility {
            mean_confidence: top.iter().sum::<f64>() / n,
            confident: share(top.iter().filter(|&&p| sure(p)).count()),
            on_manifold: share(inside.iter().filter(|&&i| i).count()),
            legible: share(
                top.iter()
                    .zip(inside)
                    .filter(|&(&p, &i)| sure(p) && i)
                    .count(),
            ),
        }
    }
}

/// What legibility is measured against: the manifold of the embedded training digits' features.
pub struct LegibilityJudge {
    manifold: Manifold,
}

impl LegibilityJudge {
    pub fn new(be: &mut dyn Backend, net: &mut FeatureNet) -> Result<Self> {
        let (train, _) = embedded_mnist()?;
        let f = net.features(be, &unit_rows(&train))?;
        Ok(Self {
            manifold: Manifold::new(Features::new(&f, FEATURE_DIM)?, DEFAULT_K)?,
        })
    }

    /// Legibility of digits from their features ([n, FEATURE_DIM]) and top-class probabilities.
    pub fn judge(&self, features: &[f32], top: &[f64]) -> Result<Legibility> {
        let inside = self
            .manifold
            .contains(Features::new(features, FEATURE_DIM)?)?;
        Ok(Legibility::of(top, &inside))
    }

    /// The classes and legibility of `digits` ([n, 784] in [0, 1]).
    pub fn classify(
        &self,
        be: &mut dyn Backend,
        net: &mut FeatureNet,
        digits: &[f32],
    ) -> Result<(Vec<u32>, Legibility)> {
        let (f, top) = net.features_and_top(be, digits)?;
        let (classes, p): (Vec<u32>, Vec<f64>) = top.into_iter().unzip();
        Ok((classes, self.judge(&f, &p)?))
    }

    /// Text for a report: G's legibility beside the held-out digits'.
    pub fn describe(g: &Legibility, real: &Legibility) -> String {
        format!(
            "legible (top-class p ≥ {LEGIBLE_P} and on the training digits' feature manifold): \
             {:.1}% of samples (held out: {:.1}%)\n  confident (p ≥ {LEGIBLE_P}): {:.1}% \
             (held out: {:.1}%); on the manifold: {:.1}% (held out: {:.1}%)\nmean top-class \
             probability: {:.3} (held out: {:.3})",
            100.0 * g.legible,
            100.0 * real.legible,
            100.0 * g.confident,
            100.0 * real.confident,
            100.0 * g.on_manifold,
            100.0 * real.on_manifold,
            g.mean_confidence,
            real.mean_confidence
        )
    }
}

/// A histogram of digit classes.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassHistogram {
    pub counts: [usize; CLASSES],
}

impl ClassHistogram {
    pub fn of(labels: &[u32]) -> Self {
        let mut counts = [0; CLASSES];
        for &l in labels {
            counts[l as usize] += 1;
        }
        ClassHistogram { counts }
    }

    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    pub fn shares(&self) -> [f64; CLASSES] {
        let n = self.total().max(1) as f64;
        self.counts.map(|c| c as f64 / n)
    }

    /// Classes holding at least `DRAWN_SHARE` of the samples.
    pub fn drawn(&self) -> usize {
        self.shares().iter().filter(|&&s| s >= DRAWN_SHARE).count()
    }

    /// KL(histogram ‖ uniform over the 10 classes), in nats: 0 for perfect balance, ln 10 ≈ 2.30
    /// for a single class.
    pub fn kl_uniform(&self) -> f64 {
        self.shares()
            .iter()
            .filter(|&&p| p > 0.0)
            .map(|&p| p * (p * CLASSES as f64).ln())
            .sum()
    }

    /// The largest share and its class.
    pub fn largest(&self) -> (usize, f64) {
        let s = self.shares();
        let c = (0..CLASSES).fold(0, |b, c| if s[c] > s[b] { c } else { b });
        (c, s[c])
    }
}

/// What `duel eval classes` measured.
pub struct ClassEval {
    /// For a conditional run of 10 classes: the share of the samples asked for each class that
    /// the classifier labels as that class.
    pub hit_rates: Option<[f64; CLASSES]>,
    pub generator: ClassHistogram,
    pub heldout: ClassHistogram,
    pub generator_legibility: Legibility,
    pub heldout_legibility: Legibility,
    pub text: String,
}

/// Labels `samples` samples of the run's generator (noise `seed`) and the held-out digits.
pub fn class_balance(
    be: &mut dyn Backend,
    ck: &Checkpoint,
    samples: usize,
    seed: u64,
) -> Result<ClassEval> {
    require_digits(ck, "eval classes")?;
    if samples == 0 {
        bail!("--samples must be at least 1");
    }
    let weights = Weights::shipped()?;
    let mut net = FeatureNet::new(be, &weights, super::EVAL_BATCH)?;
    let (_, heldout) = embedded_mnist()?;
    let x = sample_unit(be, ck, samples, seed)?;
    let judge = LegibilityJudge::new(be, &mut net)?;
    let (predicted, generator_legibility) = judge.classify(be, &mut net, &x)?;
    let generator = ClassHistogram::of(&predicted);
    // A conditional G's sample i is of class i mod K (`sample::classes_for`).
    let hit_rates = (ck.config.conditional && ck.config.classes == CLASSES).then(|| {
        let (mut hits, mut asked) = ([0usize; CLASSES], [0usize; CLASSES]);
        for (i, &p) in predicted.iter().enumerate() {
            let c = i % CLASSES;
            asked[c] += 1;
            hits[c] += (p as usize == c) as usize;
        }
        std::array::from_fn(|c| hits[c] as f64 / asked[c].max(1) as f64)
    });
    let (held_classes, heldout_legibility) = judge.classify(be, &mut net, &unit_rows(&heldout))?;
    let heldout = ClassHistogram::of(&held_classes);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "classes of {samples} samples of G (noise seed {seed}; {} at iteration {}), labelled by \
         duel's MNIST classifier (98.2% on held-out digits)",
        ck.config.dataset, ck.state.iteration
    );
    let _ = writeln!(text, "class      G   held-out digits");
    let (g, h) = (generator.shares(), heldout.shares());
    for c in 0..CLASSES {
        let _ = writeln!(
            text,
            "  {c}    {:5.1}%   {:5.1}%",
            100.0 * g[c],
            100.0 * h[c]
        );
    }
    let (gc, gs) = generator.largest();
    let (hc, hs) = heldout.largest();
    let _ = writeln!(
        text,
        "classes drawn (≥ {:.0}% of samples): {} of 10 (held out: {})",
        100.0 * DRAWN_SHARE,
        generator.drawn(),
        heldout.drawn()
    );
    let _ = writeln!(
        text,
        "largest share: {gc} at {:.1}% (held out: {hc} at {:.1}%)",
        100.0 * gs,
        100.0 * hs
    );
    let _ = write!(
        text,
        "KL(classes ‖ uniform): {:.4} nats (held out: {:.4}; one class only: {:.4})",
        generator.kl_uniform(),
        heldout.kl_uniform(),
        (CLASSES as f64).ln()
    );
    let _ = write!(
        text,
        "\n{}",
        LegibilityJudge::describe(&generator_legibility, &heldout_legibility)
    );
    if let Some(h) = &hit_rates {
        let _ = write!(
            text,
            "\nconditional: samples asked for each class and labelled as it:"
        );
        for (c, r) in h.iter().enumerate() {
            let _ = write!(text, " {c}: {:.1}%", 100.0 * r);
        }
        let _ = write!(
            text,
            "\nlowest: {:.1}%",
            100.0 * h.iter().cloned().fold(1.0, f64::min)
        );
    }
    Ok(ClassEval {
        hit_rates,
        generator,
        heldout,
        generator_legibility,
        heldout_legibility,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legibility_needs_confidence_and_the_manifold() {
        let l = Legibility::of(&[0.95, 0.5, 0.9, 0.99], &[true, true, true, false]);
        assert!((l.mean_confidence - 0.835).abs() < 1e-12);
        // 0.9 itself counts as confident; the 0.99 off the manifold is not legible.
        assert_eq!((l.confident, l.on_manifold, l.legible), (0.75, 0.75, 0.5));
        assert_eq!(Legibility::of(&[0.2; 7], &[true; 7]).legible, 0.0);
    }

    /// Real held-out digits are legible; noise is not, although the classifier is sure of it.
    #[test]
    fn real_digits_are_legible_and_garbage_is_not() {
        use rand::{Rng, SeedableRng};
        let mut be = crate::CpuBackend::new();
        let mut net = FeatureNet::shipped(&mut be).unwrap();
        let judge = LegibilityJudge::new(&mut be, &mut net).unwrap();
        let (_, heldout) = embedded_mnist().unwrap();
        let (_, real) = judge
            .classify(&mut be, &mut net, &unit_rows(&heldout))
            .unwrap();
        assert!(
            real.legible > 0.85 && real.mean_confidence > 0.95,
            "{real:?}"
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let n = 500 * super::super::PIXELS;
        let noise: Vec<f32> = (0..n).map(|_| rng.random()).collect();
        let dots: Vec<f32> = (0..n)
            .map(|_| if rng.random::<f32>() < 0.15 { 1.0 } else { 0.0 })
            .collect();
        let blank = vec![0.0; n];
        for (what, x) in [
            ("uniform noise", noise),
            ("sparse dots", dots),
            ("blank", blank),
        ] {
            let (_, g) = judge.classify(&mut be, &mut net, &x).unwrap();
            assert!(g.legible < 0.02, "{what}: {g:?}, real {real:?}");
        }
    }

    #[test]
    fn histogram_measures() {
        let balanced = ClassHistogram::of(&(0..1000).map(|i| i % 10).collect::<Vec<u32>>());
        assert_eq!(balanced.counts, [100; 10]);
        assert!(balanced.kl_uniform().abs() < 1e-12);
        assert_eq!(balanced.drawn(), 10);
        let ones = ClassHistogram::of(&[1; 50]);
        assert!((ones.kl_uniform() - 10f64.ln()).abs() < 1e-12);
        assert_eq!(ones.largest(), (1, 1.0));
        assert_eq!(ones.drawn(), 1);
        // Half 1s, the rest spread evenly over the other nine classes: 1 is largest, at 50%.
        let mut l = vec![1u32; 900];
        l.extend((0..900).map(|i| [0, 2, 3, 4, 5, 6, 7, 8, 9][i % 9]));
        let h = ClassHistogram::of(&l);
        assert_eq!(h.largest(), (1, 0.5));
        let expect = 0.5 * (5f64).ln() + 9.0 * (0.5 / 9.0) * (0.5f64 / 9.0 * 10.0).ln();
        assert!((h.kl_uniform() - expect).abs() < 1e-12);
        // A class under 1% does not count as drawn.
        let mut l = vec![3u32; 995];
        l.extend([4; 5]);
        assert_eq!(ClassHistogram::of(&l).drawn(), 1);
    }
}

//! `duel eval classes`: which digits a run draws. The feature network labels samples of G, and
//! the histogram is printed beside the held-out digits' own, with the classes drawn, the largest
//! share and KL(histogram ‖ uniform) — the number that shows a generator leaning on 1s, which
//! the Parzen window and a glance at a grid both miss.

use super::score::{require_digits, sample_unit};
use super::{CLASSES, FeatureNet, Weights, unit_rows};
use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::dataset::embedded_mnist;
use anyhow::{Result, bail};
use std::fmt::Write as _;

/// Samples `duel eval classes` labels by default.
pub const DEFAULT_SAMPLES: usize = 10_000;
/// A class counts as drawn when it holds at least this share of the samples.
pub const DRAWN_SHARE: f64 = 0.01;

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
    let predicted = net.classify(be, &x)?;
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
    let heldout = ClassHistogram::of(&net.classify(be, &unit_rows(&heldout))?);

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
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

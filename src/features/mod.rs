//! duel's feature network: a small convolutional MNIST classifier trained by duel's own layers
//! and kernels (softmax cross-entropy, `kernels::cross_entropy`) on the embedded training digits,
//! shipped with the binary (`assets/features/mnist-classifier.safetensors`) and reproducible by
//! `duel features train`. Its penultimate layer is the feature space of FID, KID and
//! precision/recall (`crate::metrics`), and its class predictions count Stacked MNIST's modes.
//!
//! The network is split in two so the features are a network's output: the trunk maps a 28×28
//! digit with pixels in [0, 1] to `FEATURE_DIM` ReLU features, the head maps those to 10 logits.
//! Training backpropagates through both (head, then trunk with the head's input gradient).

pub mod classes;
pub mod cli;
pub mod score;
pub mod train;
pub mod weights;

use crate::backend::{Activation, Backend, Tensor};
use crate::model::{Layer, NetSpec, Network, Shape};
use anyhow::{Result, bail};
pub use weights::Weights;

/// Side of the digits the network reads (1 channel, pixels in [0, 1]).
pub const SIDE: usize = 28;
/// Values per digit.
pub const PIXELS: usize = SIDE * SIDE;
/// Width of the penultimate layer: the features the metrics compare.
pub const FEATURE_DIM: usize = 128;
/// Digit classes.
pub const CLASSES: usize = 10;

/// The shipped weights (`duel features train --out` reproduces them on the CPU path).
pub const SHIPPED: &[u8] = include_bytes!("../../assets/features/mnist-classifier.safetensors");

/// The trunk: 1×28×28 → 32×14×14 → 64×7×7 → 128×4×4 (4×4 and 3×3 convolutions, stride 2, ReLU)
/// → Linear(2048 → 128) + ReLU, the features.
pub fn trunk_spec() -> NetSpec {
    let conv = |out, k| Layer::Conv2d {
        out,
        k,
        stride: 2,
        pad: 1,
    };
    NetSpec {
        input: Shape::image(1, SIDE, SIDE),
        layers: vec![
            Layer::Conv2d {
                out: 32,
                k: 3,
                stride: 1,
                pad: 1,
            },
            Layer::Act(Activation::Relu),
            conv(32, 4),
            Layer::Act(Activation::Relu),
            conv(64, 4),
            Layer::Act(Activation::Relu),
            conv(128, 3),
            Layer::Act(Activation::Relu),
            Layer::Reshape(Shape::flat(128 * 4 * 4)),
            Layer::Linear(FEATURE_DIM),
            Layer::Act(Activation::Relu),
        ],
    }
}

/// The head: dropout while training, then Linear(128 → 10), the logits.
pub fn head_spec() -> NetSpec {
    NetSpec::flat(
        FEATURE_DIM,
        vec![Layer::Dropout(0.9), Layer::Linear(CLASSES)],
    )
}

/// The feature network on a backend, for batches of up to `max_batch` digits.
pub struct FeatureNet {
    trunk: Network,
    head: Network,
    x: Tensor,
    max_batch: usize,
}

/// Digits evaluated per forward by default: large enough to keep a GPU busy, small enough
/// (~9 MB of activations per 256 digits) for any adapter.
pub const EVAL_BATCH: usize = 500;

impl FeatureNet {
    pub fn new(be: &mut dyn Backend, w: &Weights, max_batch: usize) -> Result<Self> {
        let trunk = Network::new(be, &trunk_spec(), max_batch, &w.trunk, 1, "feature trunk")?;
        let head = Network::new(be, &head_spec(), max_batch, &w.head, 1, "feature head")?;
        let x = be.alloc(max_batch * PIXELS, "feature network input")?;
        Ok(Self {
            trunk,
            head,
            x,
            max_batch,
        })
    }

    /// The shipped network.
    pub fn shipped(be: &mut dyn Backend) -> Result<Self> {
        Self::new(be, &Weights::shipped()?, EVAL_BATCH)
    }

    fn check(&self, digits: &[f32]) -> Result<usize> {
        if !digits.len().is_multiple_of(PIXELS) {
            bail!(
                "the feature network reads 28×28 digits; {} values are not a whole number of them",
                digits.len()
            );
        }
        Ok(digits.len() / PIXELS)
    }

    /// Runs every chunk of `digits` ([n, 784] in [0, 1]) through the trunk (and the head with
    /// `logits`), collecting the trunk's features and the head's logits as asked.
    fn run(
        &mut self,
        be: &mut dyn Backend,
        digits: &[f32],
        features: bool,
        logits: bool,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let n = self.check(digits)?;
        let (mut f, mut l) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(self.max_batch) {
            let rows = (n - start).min(self.max_batch);
            let x = self.x.slice(0, rows * PIXELS);
            be.write(x, &digits[start * PIXELS..(start + rows) * PIXELS]);
            let h = self.trunk.forward(be, x, rows, false, None);
            if features {
                f.extend(be.read(h)?);
            }
            if logits {
                let y = self.head.forward(be, h, rows, false, None);
                l.extend(be.read(y)?);
            }
        }
        Ok((f, l))
    }

    /// The penultimate layer's activations, [n, FEATURE_DIM].
    pub fn features(&mut self, be: &mut dyn Backend, digits: &[f32]) -> Result<Vec<f32>> {
        Ok(self.run(be, digits, true, false)?.0)
    }

    /// The predicted class of each digit.
    pub fn classify(&mut self, be: &mut dyn Backend, digits: &[f32]) -> Result<Vec<u32>> {
        Ok(argmax_rows(&self.run(be, digits, false, true)?.1, CLASSES))
    }

    /// Features and predicted classes in one pass.
    pub fn features_and_classes(
        &mut self,
        be: &mut dyn Backend,
        digits: &[f32],
    ) -> Result<(Vec<f32>, Vec<u32>)> {
        let (f, l) = self.run(be, digits, true, true)?;
        Ok((f, argmax_rows(&l, CLASSES)))
    }

    /// Features, and each digit's predicted class with the classifier's probability for it, in
    /// one pass.
    pub fn features_and_top(
        &mut self,
        be: &mut dyn Backend,
        digits: &[f32],
    ) -> Result<(Vec<f32>, Vec<Top>)> {
        let (f, l) = self.run(be, digits, true, true)?;
        Ok((f, top_probabilities(&l, CLASSES)))
    }
}

/// A digit's predicted class and the classifier's probability for it.
pub type Top = (u32, f64);

/// Each row's largest value's index (the first on ties, as `argmax_rows`) and its softmax
/// probability, computed in f64 from the row's logits.
pub fn top_probabilities(logits: &[f32], width: usize) -> Vec<Top> {
    let classes = argmax_rows(logits, width);
    logits
        .chunks_exact(width)
        .zip(classes)
        .map(|(r, c)| {
            let top = r[c as usize] as f64;
            // exp(l - top) ≤ 1 for every logit: no overflow, and the top class contributes 1.
            let sum: f64 = r.iter().map(|&l| (l as f64 - top).exp()).sum();
            (c, 1.0 / sum)
        })
        .collect()
}

/// The index of each row's largest value (the first on ties).
pub fn argmax_rows(v: &[f32], width: usize) -> Vec<u32> {
    v.chunks_exact(width)
        .map(|r| {
            let mut best = 0;
            for (j, &x) in r.iter().enumerate() {
                if x > r[best] {
                    best = j;
                }
            }
            best as u32
        })
        .collect()
}

/// The share of `predicted` equal to `labels`.
pub fn accuracy(predicted: &[u32], labels: &[u32]) -> f64 {
    let hits = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    hits as f64 / labels.len().max(1) as f64
}

/// The embedded digits as f32 rows in [0, 1].
pub fn unit_rows(set: &crate::data::ImageSet) -> Vec<f32> {
    set.pixels.iter().map(|&b| b as f32 / 255.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_size() {
        let (trunk, head) = (
            trunk_spec().build("trunk").unwrap(),
            head_spec().build("head").unwrap(),
        );
        assert_eq!(trunk.output(), FEATURE_DIM);
        assert_eq!(head.output(), CLASSES);
        // At most a few MB as f32.
        let params = trunk.param_count() + head.param_count();
        assert!(params * 4 < 2 << 20, "{params} parameters");
    }

    #[test]
    fn top_probabilities_are_the_softmax_of_the_largest_logit() {
        let t = top_probabilities(&[0.0, 2.0, 2.0, 1000.0, -1000.0, 0.0], 3);
        assert_eq!((t[0].0, t[1].0), (1, 0));
        // Two tied logits at 2 and one at 0: each tied class holds e²/(2e² + 1).
        let e2 = 2f64.exp();
        assert!((t[0].1 - e2 / (2.0 * e2 + 1.0)).abs() < 1e-12, "{t:?}");
        // Huge logits stay finite: the top class holds all the mass.
        assert!((t[1].1 - 1.0).abs() < 1e-12, "{t:?}");
        // Equal logits: 1/width.
        let u = top_probabilities(&[3.0; 10], 10);
        assert!((u[0].1 - 0.1).abs() < 1e-12);
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax_rows(&[0.0, 2.0, 2.0, 5.0, 1.0, -1.0], 3), [1, 0]);
        assert_eq!(accuracy(&[1, 2, 3, 4], &[1, 2, 0, 4]), 0.75);
    }
}

//! Stacked MNIST (Metz et al. 2017; VEEGAN; PacGAN): three digits drawn at random as the R, G and
//! B channels of one 28x28 image, so the set has 10³ = 1,000 modes, one per digit triple.

use anyhow::{Result, ensure};

use super::ImageSet;
use crate::rng::{self, RngKey};

/// Images generated: the 128,000 of the PacGAN/VEEGAN protocol. At 3·28·28 = 2,352 bytes each
/// that is 301 MB, held once on the host and once on the device (8-bit, in at most three
/// buffers of the 128 MiB storage binding every WebGPU adapter offers), and composed in a
/// fraction of a second; ~128 images per mode.
pub const SAMPLES: usize = 128_000;

/// The mode (class) of an image whose R, G, B digits are `[r, g, b]`: 100·r + 10·g + b.
pub fn mode_of(digits: [u32; 3]) -> u32 {
    100 * digits[0] + 10 * digits[1] + digits[2]
}

/// The R, G, B digits of `mode`, the inverse of [`mode_of`].
pub fn digits_of(mode: u32) -> [u32; 3] {
    [mode / 100, mode / 10 % 10, mode % 10]
}

/// `n` images of 3 × h × w whose channel c is digit `idx[i][c]` of `digits`, drawn uniformly
/// with replacement by Philox keyed by `seed` (image i uses counter i, so the set is a pure
/// function of the seed). `digits` must be 1-channel with labels 0..9; each image's label is
/// [`mode_of`] its three digit labels, class names "000".."999".
pub fn stack(digits: &ImageSet, n: usize, seed: u64) -> Result<ImageSet> {
    ensure!(
        digits.channels == 1 && digits.n > 0,
        "stacked MNIST needs 1-channel digits"
    );
    let Some(digit_labels) = &digits.labels else {
        anyhow::bail!("stacked MNIST needs labelled digits");
    };
    ensure!(
        digits.classes.len() == 10,
        "stacked MNIST needs 10 digit classes, found {}",
        digits.classes.len()
    );
    let plane = digits.image_len();
    let count = u32::try_from(digits.n)?;
    let key = RngKey::new(seed, rng::stream::STACKED_MNIST, 0);
    let mut pixels = Vec::with_capacity(n * 3 * plane);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let w = rng::words(key, i as u64);
        // Lemire's multiply-shift: a uniform index below `count` from each of three words.
        let pick = |word: u32| ((word as u64 * count as u64) >> 32) as usize;
        let idx = [pick(w[0]), pick(w[1]), pick(w[2])];
        for &d in &idx {
            pixels.extend_from_slice(digits.image(d));
        }
        labels.push(mode_of(idx.map(|d| digit_labels[d])));
    }
    let classes = (0..1000).map(|m| format!("{m:03}")).collect();
    ImageSet::unlabelled(n, 3, digits.height, digits.width, pixels).with_labels(labels, classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::embedded_mnist;

    #[test]
    fn deterministic_for_a_seed_and_different_across_seeds() {
        let (digits, _) = embedded_mnist().unwrap();
        let a = stack(&digits, 500, 3).unwrap();
        let b = stack(&digits, 500, 3).unwrap();
        let c = stack(&digits, 500, 4).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.pixels, c.pixels);
        assert_ne!(a.labels, c.labels);
        assert_eq!((a.n, a.channels, a.height, a.width), (500, 3, 28, 28));
        assert_eq!(a.classes.len(), 1000);
        assert_eq!(a.classes[7], "007");
    }

    #[test]
    fn each_channel_is_a_training_digit_with_the_recorded_label() {
        let (digits, _) = embedded_mnist().unwrap();
        let set = stack(&digits, 200, 1).unwrap();
        let labels = set.labels.as_ref().unwrap();
        let digit_labels = digits.labels.as_ref().unwrap();
        for (i, &label) in labels.iter().enumerate() {
            let want = digits_of(label);
            for (c, chunk) in set.image(i).chunks(784).enumerate() {
                // The digit this channel copied: some training image with identical pixels.
                let found = (0..digits.n).find(|&d| digits.image(d) == chunk);
                let d = found.unwrap_or_else(|| panic!("image {i} channel {c} is no digit"));
                assert_eq!(digit_labels[d], want[c], "image {i} channel {c}");
            }
        }
    }

    #[test]
    fn all_thousand_modes_appear_in_about_even_numbers() {
        let (digits, _) = embedded_mnist().unwrap();
        let set = stack(&digits, 30_000, 1).unwrap();
        let counts = set.class_counts();
        // 30 expected per mode; Poisson-ish spread, and the digit classes are not exactly even.
        assert!(counts.iter().all(|&c| c > 0), "every mode present");
        let max = *counts.iter().max().unwrap();
        assert!(max < 90, "no mode dominates: max {max}");
        assert_eq!(mode_of(digits_of(472)), 472);
    }
}

//! Training data: 8-bit image sets (IDX files, image folders) and 2-D Gaussian mixtures.

pub mod folder;
pub mod idx;
pub mod mixture;

pub use folder::load_image_folder;
pub use idx::{load_idx_images, parse_idx_images};
pub use mixture::Mixture2d;

use anyhow::ensure;

/// Images as 8-bit pixels, CHW order per image, row-major, images contiguous.
///
/// `pixels.len() == n * channels * height * width`; image `i` occupies
/// `pixels[i * image_len()..(i + 1) * image_len()]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    pub n: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<u8>,
}

impl ImageSet {
    /// Bytes per image: `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Pixels of image `i` (CHW); panics if `i >= n`.
    pub fn image(&self, i: usize) -> &[u8] {
        assert!(i < self.n, "image index {i} out of range (n = {})", self.n);
        let len = self.image_len();
        &self.pixels[i * len..(i + 1) * len]
    }

    /// Splits off a fixed held-out subset: returns `(train, heldout)` where `heldout`
    /// is the LAST `k` images, so the split is deterministic for a given source
    /// order. Errors if `k >= n` (training would be left empty).
    pub fn split_tail(self, k: usize) -> anyhow::Result<(ImageSet, ImageSet)> {
        ensure!(
            k < self.n,
            "cannot hold out {k} of {} images: at least one must remain for training; \
             pass a held-out count below {}",
            self.n,
            self.n
        );
        let ImageSet {
            n,
            channels,
            height,
            width,
            mut pixels,
        } = self;
        let train_n = n - k;
        let tail = pixels.split_off(train_n * channels * height * width);
        let train = ImageSet {
            n: train_n,
            channels,
            height,
            width,
            pixels,
        };
        let heldout = ImageSet {
            n: k,
            channels,
            height,
            width,
            pixels: tail,
        };
        Ok((train, heldout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> ImageSet {
        ImageSet {
            n,
            channels: 1,
            height: 2,
            width: 3,
            pixels: (0..n * 6).map(|v| v as u8).collect(),
        }
    }

    #[test]
    fn split_tail_takes_last_images() {
        let (train, held) = set(5).split_tail(2).unwrap();
        assert_eq!((train.n, held.n), (3, 2));
        assert_eq!(train.pixels, (0..18).collect::<Vec<u8>>());
        assert_eq!(held.pixels, (18..30).collect::<Vec<u8>>());
        assert_eq!(held.image(1), &[24, 25, 26, 27, 28, 29]);
        assert_eq!(held.image_len(), 6);
    }

    #[test]
    fn split_tail_zero_and_too_many() {
        let (train, held) = set(3).split_tail(0).unwrap();
        assert_eq!((train.n, held.n, held.pixels.len()), (3, 0, 0));
        let err = set(3).split_tail(3).unwrap_err().to_string();
        assert!(err.contains("cannot hold out 3 of 3"), "{err}");
    }
}

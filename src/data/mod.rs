//! Training data: 8-bit image sets (IDX files, image folders, Stacked MNIST) with their class
//! labels where the source has them, and 2-D Gaussian mixtures.

pub mod cifar;
pub mod dataset;
pub mod folder;
pub mod idx;
pub mod labels;
pub mod mixture;
pub mod stacked;

pub use folder::{Background, FolderOptions, load_image_folder};
pub use idx::{load_idx_images, parse_idx_images};
pub use labels::{load_idx_labels, parse_idx_labels};
pub use mixture::Mixture2d;

use anyhow::{Result, bail, ensure};

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
    /// Class of each image, `labels[i] < classes.len()`, when the source has labels (an IDX label
    /// file, class subfolders, the embedded digits, Stacked MNIST's three digits); `None` otherwise.
    pub labels: Option<Vec<u32>>,
    /// Class names indexed by label ("0".."9" for digits, subfolder names); empty when unlabelled.
    pub classes: Vec<String>,
}

impl ImageSet {
    /// A set without labels.
    pub fn unlabelled(
        n: usize,
        channels: usize,
        height: usize,
        width: usize,
        pixels: Vec<u8>,
    ) -> Self {
        Self {
            n,
            channels,
            height,
            width,
            pixels,
            labels: None,
            classes: Vec::new(),
        }
    }

    /// Attaches `labels` (one per image, each below `classes.len()`).
    pub fn with_labels(mut self, labels: Vec<u32>, classes: Vec<String>) -> Result<Self> {
        ensure!(
            labels.len() == self.n,
            "{} labels for {} images",
            labels.len(),
            self.n
        );
        if let Some((i, l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| **l as usize >= classes.len())
        {
            bail!(
                "label {l} of image {i} is out of range: there are {} classes",
                classes.len()
            );
        }
        self.labels = Some(labels);
        self.classes = classes;
        Ok(self)
    }

    /// Images per class (empty when unlabelled).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in self.labels.iter().flatten() {
            counts[l as usize] += 1;
        }
        counts
    }

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
    pub fn split_tail(self, k: usize) -> Result<(ImageSet, ImageSet)> {
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
            mut labels,
            classes,
        } = self;
        let train_n = n - k;
        let tail = pixels.split_off(train_n * channels * height * width);
        let tail_labels = labels.as_mut().map(|l| l.split_off(train_n));
        let train = ImageSet {
            n: train_n,
            channels,
            height,
            width,
            pixels,
            labels,
            classes: classes.clone(),
        };
        let heldout = ImageSet {
            n: k,
            channels,
            height,
            width,
            pixels: tail,
            labels: tail_labels,
            classes,
        };
        Ok((train, heldout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> ImageSet {
        ImageSet::unlabelled(n, 1, 2, 3, (0..n * 6).map(|v| v as u8).collect())
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

    #[test]
    fn labels_follow_their_images_through_the_split() {
        let classes = vec!["a".to_string(), "b".into(), "c".into()];
        let labelled = set(5).with_labels(vec![0, 2, 1, 1, 2], classes.clone());
        let (train, held) = labelled.unwrap().split_tail(2).unwrap();
        assert_eq!(train.labels, Some(vec![0, 2, 1]));
        assert_eq!(held.labels, Some(vec![1, 2]));
        assert_eq!(
            (train.classes.clone(), held.classes),
            (classes.clone(), classes)
        );
        assert_eq!(train.class_counts(), vec![1, 1, 1]);
        let (train, held) = set(3).split_tail(1).unwrap();
        assert_eq!((train.labels, held.labels), (None, None));
    }

    #[test]
    fn labels_must_match_the_images_and_the_classes() {
        let two = vec!["a".to_string(), "b".into()];
        let e = set(3).with_labels(vec![0, 1], two.clone()).unwrap_err();
        assert!(e.to_string().contains("2 labels for 3 images"), "{e}");
        let e = set(3).with_labels(vec![0, 2, 1], two).unwrap_err();
        assert!(
            e.to_string()
                .contains("label 2 of image 1 is out of range: there are 2 classes"),
            "{e}"
        );
    }
}

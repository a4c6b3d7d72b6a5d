//! MNIST-style IDX label files (magic 0x00000801: unsigned bytes, 1 dimension), and finding the
//! one that belongs to an IDX images file.
//!
//! Layout: 4-byte big-endian magic, the count n as a big-endian u32, then n label bytes; gzip
//! is detected by its magic bytes, as for images. Classes are numbered 0..K−1 with K the largest
//! label + 1 (MNIST and Fashion-MNIST: 10; EMNIST letters, numbered from 1, leave class 0 empty).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use super::ImageSet;
use super::idx::{be_u32, gunzip, load_idx_images, resolve};

/// IDX magic for unsigned-byte data with 1 dimension (n).
const MAGIC_U8_1D: u32 = 0x0000_0801;
/// Magic + one u32 dimension.
const HEADER_LEN: usize = 8;

/// Label files looked for beside the images file of a directory of standard names.
pub const STANDARD_NAMES: [&str; 4] = [
    "train-labels-idx1-ubyte",
    "train-labels-idx1-ubyte.gz",
    "train-labels.idx1-ubyte",
    "train-labels.idx1-ubyte.gz",
];

/// Parses IDX label bytes (gzip or raw) for `n_images` images; `name` labels errors. Returns
/// the labels and the class names "0".."K−1".
///
/// Errors: not a labels file, a count that differs from the images', a truncated or overlong
/// file, and labels out of range — a largest label that leaves more than half of the classes
/// 0..K−1 without an image, which a real label file never does and a corrupt one does.
pub fn parse_idx_labels(
    bytes: &[u8],
    name: &str,
    n_images: usize,
) -> Result<(Vec<u32>, Vec<String>)> {
    const HINT: &str = "pass the MNIST-format train-labels-idx1-ubyte[.gz] of these images";
    let raw = gunzip(bytes, name)?;
    ensure!(
        raw.len() >= 4,
        "{name}: not an IDX labels file (only {} bytes); {HINT}",
        raw.len()
    );
    let magic = be_u32(&raw, 0);
    if magic != MAGIC_U8_1D {
        let extra = if magic == 0x0000_0803 {
            " — this looks like an IDX images file"
        } else {
            ""
        };
        bail!(
            "{name}: not an IDX labels file (magic {magic:#010x}, expected {MAGIC_U8_1D:#010x}){extra}; {HINT}"
        );
    }
    ensure!(
        raw.len() >= HEADER_LEN,
        "{name}: truncated IDX header (expected {HEADER_LEN} bytes, file holds {}); re-download the file",
        raw.len()
    );
    let n = be_u32(&raw, 4) as usize;
    ensure!(
        n == n_images,
        "{name}: holds labels for {n} images but the images file holds {n_images}; {HINT}"
    );
    let actual = raw.len() - HEADER_LEN;
    ensure!(
        actual >= n,
        "{name}: truncated: header says {n} labels but the file holds {actual} bytes; \
         re-download or fully decompress the file"
    );
    ensure!(
        actual == n,
        "{name}: {} trailing bytes after {n} labels; the file is corrupt or not an IDX labels file",
        actual - n
    );
    let labels: Vec<u32> = raw[HEADER_LEN..].iter().map(|&b| b as u32).collect();
    let Some((at, &max)) = labels
        .iter()
        .enumerate()
        .max_by_key(|&(i, l)| (*l, usize::MAX - i))
    else {
        bail!("{name}: holds no labels");
    };
    let k = max as usize + 1;
    let mut used = vec![false; k];
    labels.iter().for_each(|&l| used[l as usize] = true);
    let used = used.iter().filter(|u| **u).count();
    ensure!(
        2 * used >= k,
        "{name}: label {max} of image {at} is out of range: it implies {k} classes (0..{max}) \
         but only {used} of them have images; the file is corrupt or not these images' labels"
    );
    Ok((labels, (0..k).map(|c| c.to_string()).collect()))
}

/// Reads and parses the IDX label file at `path` for `n_images` images.
pub fn load_idx_labels(path: &Path, n_images: usize) -> Result<(Vec<u32>, Vec<String>)> {
    let bytes = fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
    parse_idx_labels(&bytes, &path.display().to_string(), n_images)
}

/// Where the labels of the IDX images file `images` would be: beside it, its name with
/// "images" → "labels" and "idx3" → "idx1" (`t10k-images-idx3-ubyte.gz` →
/// `t10k-labels-idx1-ubyte.gz`), with or without ".gz"; then the standard names.
pub fn label_candidates(images: &Path) -> Vec<PathBuf> {
    let dir = images.parent().unwrap_or(Path::new(""));
    let mut out = Vec::new();
    if let Some(name) = images.file_name().and_then(|n| n.to_str()) {
        let stem = name.strip_suffix(".gz").unwrap_or(name);
        let swapped = stem.replace("images", "labels").replace("idx3", "idx1");
        if swapped != stem {
            out.push(dir.join(&swapped));
            out.push(dir.join(format!("{swapped}.gz")));
        }
    }
    for name in STANDARD_NAMES {
        let p = dir.join(name);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Loads IDX images (a file, or a directory holding a standard name) with the label file
/// beside them. With `require_labels`, a missing or bad label file is an error naming it;
/// without, the images come back unlabelled instead.
pub fn load_idx_set(path: &Path, require_labels: bool) -> Result<ImageSet> {
    let file = resolve(path)?;
    let set = load_idx_images(&file)?;
    let candidates = label_candidates(&file);
    let Some(found) = candidates.iter().find(|p| p.is_file()) else {
        if require_labels {
            bail!(
                "{}: no label file beside it (looked for {}); put the MNIST-format labels \
                 next to the images",
                file.display(),
                candidates
                    .iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        return Ok(set);
    };
    match load_idx_labels(found, set.n) {
        Ok((labels, classes)) => set.with_labels(labels, classes),
        Err(e) if require_labels => Err(e),
        Err(_) => Ok(set),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("duel-labels-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn label_bytes(magic: u32, count: u32, labels: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        v.extend(count.to_be_bytes());
        v.extend(labels);
        v
    }

    /// `n` images of 2x2, pixel value = image index.
    fn image_bytes(n: u32) -> Vec<u8> {
        let mut v = 0x0803u32.to_be_bytes().to_vec();
        [n, 2, 2].iter().for_each(|d| v.extend(d.to_be_bytes()));
        v.extend((0..n).flat_map(|i| [i as u8; 4]));
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn labels_load_beside_standard_and_custom_names() {
        let labels = [3u8, 0, 1, 2, 1];
        let dir = tmp("standard");
        fs::write(dir.join("train-images-idx3-ubyte.gz"), gz(&image_bytes(5))).unwrap();
        fs::write(
            dir.join("train-labels-idx1-ubyte.gz"),
            gz(&label_bytes(0x801, 5, &labels)),
        )
        .unwrap();
        let set = load_idx_set(&dir, true).unwrap();
        assert_eq!(set.labels, Some(vec![3, 0, 1, 2, 1]));
        assert_eq!(set.classes, ["0", "1", "2", "3"]);
        assert_eq!(set.image(0), [0; 4]);

        // t10k-images-idx3-ubyte (raw) pairs with t10k-labels-idx1-ubyte.gz.
        let dir = tmp("custom");
        let images = dir.join("t10k-images-idx3-ubyte");
        fs::write(&images, image_bytes(5)).unwrap();
        fs::write(
            dir.join("t10k-labels-idx1-ubyte.gz"),
            gz(&label_bytes(0x801, 5, &labels)),
        )
        .unwrap();
        assert_eq!(
            load_idx_set(&images, true).unwrap().labels,
            Some(vec![3, 0, 1, 2, 1])
        );
    }

    /// Writes 5 images and `labels` beside them; returns the loader's error text, with and
    /// without labels required.
    fn broken(name: &str, labels: Vec<u8>) -> (String, ImageSet) {
        let dir = tmp(name);
        fs::write(dir.join("train-images-idx3-ubyte"), image_bytes(5)).unwrap();
        fs::write(dir.join("train-labels-idx1-ubyte"), labels).unwrap();
        let err = format!("{:#}", load_idx_set(&dir, true).unwrap_err());
        assert!(
            err.contains("train-labels-idx1-ubyte"),
            "names the file: {err}"
        );
        assert!(!err.contains('\n'), "one line: {err}");
        let plain = load_idx_set(&dir, false).expect("plain runs ignore bad labels");
        (err, plain)
    }

    #[test]
    fn short_corrupt_and_out_of_range_label_files_are_refused_when_required() {
        let (e, plain) = broken("short", label_bytes(0x801, 5, &[1, 2, 3]));
        assert!(
            e.contains("truncated: header says 5 labels but the file holds 3 bytes"),
            "{e}"
        );
        assert_eq!((plain.n, plain.labels), (5, None));
        let (e, _) = broken("count", label_bytes(0x801, 4, &[1, 2, 3, 0]));
        assert!(
            e.contains("holds labels for 4 images but the images file holds 5"),
            "{e}"
        );
        let (e, _) = broken("long", label_bytes(0x801, 5, &[1, 2, 3, 0, 1, 9]));
        assert!(e.contains("1 trailing bytes after 5 labels"), "{e}");
        let (e, _) = broken("magic", image_bytes(5));
        assert!(e.contains("looks like an IDX images file"), "{e}");
        let (e, _) = broken("gzip", vec![0x1f, 0x8b, 0, 1, 2]);
        assert!(e.contains("corrupt gzip"), "{e}");
        let (e, _) = broken("range", label_bytes(0x801, 5, &[1, 2, 255, 0, 1]));
        assert!(
            e.contains("label 255 of image 2 is out of range")
                && e.contains("only 4 of them have images"),
            "{e}"
        );
    }

    #[test]
    fn a_gap_of_one_class_is_accepted() {
        // EMNIST letters number their 26 classes from 1, leaving class 0 empty.
        let (labels, classes) =
            parse_idx_labels(&label_bytes(0x801, 4, &[1, 2, 3, 1]), "x", 4).unwrap();
        assert_eq!((labels, classes.len()), (vec![1, 2, 3, 1], 4));
    }

    #[test]
    fn missing_labels_are_an_error_only_when_required() {
        let dir = tmp("missing");
        let images = dir.join("digits-images-idx3-ubyte");
        fs::write(&images, image_bytes(3)).unwrap();
        let set = load_idx_set(&images, false).unwrap();
        assert_eq!((set.n, set.labels, set.classes.len()), (3, None, 0));
        let e = format!("{:#}", load_idx_set(&images, true).unwrap_err());
        assert!(
            e.contains("digits-images-idx3-ubyte: no label file beside it")
                && e.contains("digits-labels-idx1-ubyte.gz")
                && e.contains("train-labels-idx1-ubyte"),
            "{e}"
        );
    }

    #[test]
    fn candidates_swap_images_for_labels() {
        let c = label_candidates(Path::new("/d/t10k-images.idx3-ubyte.gz"));
        assert_eq!(c[0], Path::new("/d/t10k-labels.idx1-ubyte"));
        assert_eq!(c[1], Path::new("/d/t10k-labels.idx1-ubyte.gz"));
        assert!(c.contains(&PathBuf::from("/d/train-labels-idx1-ubyte.gz")));
    }
}

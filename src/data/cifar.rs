//! CIFAR-10's "binary version" (`cifar-10-binary.tar.gz`, unpacked): `data_batch_1.bin` …
//! `data_batch_5.bin` (the training split) and `test_batch.bin` (the test split), each a run of
//! 3,073-byte records — one label byte (0–9), then 1,024 red, 1,024 green and 1,024 blue bytes of
//! a 32×32 image in row-major order, which is already duel's CHW layout. `batches.meta.txt`, when
//! present, names the classes one per line.
//!
//! `--dataset cifar10:DIR` reads them, as does `--dataset DIR` for a folder holding
//! `data_batch_1.bin` or `test_batch.bin`; `--split train|test` picks the files.

use super::ImageSet;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `--dataset` prefix naming a CIFAR-10 folder.
pub const PREFIX: &str = "cifar10:";
/// Side of a CIFAR-10 image.
pub const SIDE: usize = 32;
/// Bytes of one image: 3 × 32 × 32.
pub const IMAGE_BYTES: usize = 3 * SIDE * SIDE;
/// Bytes of one record: the label, then the image.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
/// CIFAR-10's classes in label order (batches.meta.txt of the binary version).
pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
/// The training split's files, in order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test split's file.
pub const TEST_FILE: &str = "test_batch.bin";

/// Which of a dataset's splits to train on (`--split`); only CIFAR-10 has a test split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    #[default]
    Train,
    Test,
}

impl Split {
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Split::Train => &TRAIN_FILES,
            Split::Test => std::slice::from_ref(&TEST_FILE),
        }
    }
}

/// The folder a `--dataset` value names as CIFAR-10: `cifar10:DIR`, or a folder holding the
/// binary version's files.
pub fn folder_of(dataset: &str) -> Option<PathBuf> {
    if let Some(dir) = dataset.strip_prefix(PREFIX) {
        return Some(PathBuf::from(dir));
    }
    let dir = Path::new(dataset);
    let holds = |f: &str| dir.join(f).is_file();
    (dir.is_dir() && (holds(TRAIN_FILES[0]) || holds(TEST_FILE))).then(|| dir.to_path_buf())
}

/// Loads `split` of the CIFAR-10 binary files in `dir`, with labels, as 3-channel 32×32 images
/// (or gray, ITU-R 601 luma as the `image` crate converts, for `channels` 1).
pub fn load(dir: &Path, split: Split, channels: usize) -> Result<ImageSet> {
    if !dir.is_dir() {
        bail!(
            "{}: no such folder; pass --dataset cifar10:DIR with DIR the unpacked \
             cifar-10-binary.tar.gz (cifar-10-batches-bin, holding data_batch_1.bin … and \
             test_batch.bin)",
            dir.display()
        );
    }
    let missing: Vec<&str> = split
        .files()
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: CIFAR-10's {} split needs {} but {} missing; unpack the whole \
             cifar-10-binary.tar.gz there",
            dir.display(),
            match split {
                Split::Train => "train",
                Split::Test => "test",
            },
            split.files().join(", "),
            if missing.len() == 1 {
                format!("{} is", missing[0])
            } else {
                format!("{} are", missing.join(", "))
            }
        );
    }
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for f in split.files() {
        let path = dir.join(f);
        let bytes =
            std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        parse_records(
            &bytes,
            &path.display().to_string(),
            &mut pixels,
            &mut labels,
        )?;
    }
    let n = labels.len();
    let pixels = match channels {
        3 => pixels,
        1 => to_gray(&pixels),
        c => bail!("--channels must be 1 (gray) or 3 (RGB), not {c}"),
    };
    ImageSet::unlabelled(n, channels, SIDE, SIDE, pixels).with_labels(labels, class_names(dir)?)
}

/// Appends the records of one batch file to `pixels` and `labels`; `name` labels errors.
pub fn parse_records(
    bytes: &[u8],
    name: &str,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<u32>,
) -> Result<()> {
    if bytes.is_empty() {
        bail!("{name}: empty file; a CIFAR-10 batch holds records of {RECORD_BYTES} bytes");
    }
    let whole = bytes.len() / RECORD_BYTES;
    let rest = bytes.len() % RECORD_BYTES;
    if rest != 0 {
        bail!(
            "{name}: truncated in record {} ({rest} of its {RECORD_BYTES} bytes; {whole} whole \
             records before it); download and unpack cifar-10-binary.tar.gz again",
            whole + 1
        );
    }
    for (i, r) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        if r[0] as usize >= CLASSES.len() {
            bail!(
                "{name}: record {} has label {}, but CIFAR-10's labels are 0–9; is this \
                 CIFAR-100 or another format?",
                i + 1,
                r[0]
            );
        }
        labels.push(r[0] as u32);
        pixels.extend_from_slice(&r[1..]);
    }
    Ok(())
}

/// Class names from `batches.meta.txt` when it holds ten, else CIFAR-10's own.
fn class_names(dir: &Path) -> Result<Vec<String>> {
    let meta = dir.join("batches.meta.txt");
    let Ok(text) = std::fs::read_to_string(&meta) else {
        return Ok(CLASSES.iter().map(|c| c.to_string()).collect());
    };
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() != CLASSES.len() {
        bail!(
            "{}: names {} classes, CIFAR-10 has 10; fix or remove the file",
            meta.display(),
            names.len()
        );
    }
    Ok(names)
}

/// Planar RGB images to one gray plane each: (299 R + 587 G + 114 B) / 1000, rounded.
fn to_gray(rgb: &[u8]) -> Vec<u8> {
    let plane = SIDE * SIDE;
    rgb.chunks_exact(IMAGE_BYTES)
        .flat_map(|img| {
            (0..plane).map(move |p| {
                let [r, g, b] = [0, 1, 2].map(|c| img[c * plane + p] as u32);
                ((299 * r + 587 * g + 114 * b + 500) / 1000) as u8
            })
        })
        .collect()
}

/// Writes `labels.len()` records of the binary format: record i has label `labels[i]` and pixel
/// bytes given by `pixel(i, byte)`. For tests and tools that make small CIFAR-10 folders.
pub fn write_records(path: &Path, labels: &[u8], pixel: impl Fn(usize, usize) -> u8) -> Result<()> {
    let mut bytes = Vec::with_capacity(labels.len() * RECORD_BYTES);
    for (i, &l) in labels.iter().enumerate() {
        bytes.push(l);
        bytes.extend((0..IMAGE_BYTES).map(|b| pixel(i, b)));
    }
    std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("duel-cifar-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A folder of the five training batches (3, 1, 2, 1, 1 records) and a test batch of 2.
    fn folder(name: &str) -> PathBuf {
        let d = tmp(name);
        for (f, n) in TRAIN_FILES.iter().zip([3usize, 1, 2, 1, 1]) {
            let labels: Vec<u8> = (0..n).map(|i| ((i * 3 + f.len()) % 10) as u8).collect();
            write_records(&d.join(f), &labels, |i, b| (i * 7 + b) as u8).unwrap();
        }
        write_records(&d.join(TEST_FILE), &[9, 0], |_, b| (b / 1024 * 100) as u8).unwrap();
        d
    }

    #[test]
    fn reads_both_splits_with_labels_in_chw_order() {
        let d = folder("splits");
        let train = load(&d, Split::Train, 3).unwrap();
        assert_eq!(
            (train.n, train.channels, train.height, train.width),
            (8, 3, 32, 32)
        );
        assert_eq!(train.classes[3], "cat");
        // The first file's records come first; record i's byte b is (i·7 + b) mod 256.
        assert_eq!(train.image(1)[..3], [7, 8, 9]);
        assert_eq!(train.labels.as_ref().unwrap()[..3], [6, 9, 2]);
        let test = load(&d, Split::Test, 3).unwrap();
        assert_eq!(test.n, 2);
        assert_eq!(test.labels.as_deref(), Some(&[9, 0][..]));
        // Planes: red bytes 0, green 100, blue 200.
        let img = test.image(0);
        assert_eq!((img[0], img[1024], img[2048]), (0, 100, 200));
        // Gray: (587·100 + 114·200) / 1000 = 81.5, rounded to 82.
        let gray = load(&d, Split::Test, 1).unwrap();
        assert_eq!((gray.channels, gray.image(1)[500]), (1, 82));
        assert_eq!(folder_of(s(&d)), Some(d.clone()));
        assert_eq!(folder_of(&format!("cifar10:{}", s(&d))), Some(d.clone()));
        assert_eq!(folder_of(s(&d.join("nothing"))), None);
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    #[test]
    fn bad_files_name_the_file_and_record() {
        let d = folder("bad");
        // Truncated: the second record of data_batch_3.bin cut short.
        let f = d.join(TRAIN_FILES[2]);
        let bytes = std::fs::read(&f).unwrap();
        std::fs::write(&f, &bytes[..RECORD_BYTES + 100]).unwrap();
        let e = load(&d, Split::Train, 3).unwrap_err().to_string();
        assert!(
            e.contains("data_batch_3.bin: truncated in record 2 (100 of its 3073 bytes"),
            "{e}"
        );
        // A label out of range.
        write_records(&f, &[4, 12], |_, _| 0).unwrap();
        let e = load(&d, Split::Train, 3).unwrap_err().to_string();
        assert!(e.contains("data_batch_3.bin: record 2 has label 12"), "{e}");
        // A missing file.
        std::fs::remove_file(d.join(TRAIN_FILES[4])).unwrap();
        let e = load(&d, Split::Train, 3).unwrap_err().to_string();
        assert!(e.contains("data_batch_5.bin is missing"), "{e}");
        // Empty, a wrong meta file, a missing folder.
        std::fs::write(d.join(TEST_FILE), b"").unwrap();
        let e = load(&d, Split::Test, 3).unwrap_err().to_string();
        assert!(e.contains("test_batch.bin: empty file"), "{e}");
        let e = load(&d.join("nope"), Split::Test, 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such folder"), "{e}");
        let d = folder("meta");
        std::fs::write(d.join("batches.meta.txt"), "a\nb\n").unwrap();
        let e = load(&d, Split::Test, 3).unwrap_err().to_string();
        assert!(e.contains("names 2 classes"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

//! Resolving `--dataset` to data in memory, and uploading it to a backend.

use crate::backend::Backend;
use crate::config::TrainConfig;
use crate::data::{
    FolderOptions, ImageSet, Mixture2d, cifar, idx, labels, load_image_folder, parse_idx_images,
    parse_idx_labels, stacked,
};
use crate::gan::DeviceData;
use crate::output;
use anyhow::{Result, bail};
use std::path::Path;

/// The embedded MNIST subset (see assets/mnist-8k/README.md for provenance and licence).
pub const EMBEDDED_MNIST: &[u8] =
    include_bytes!("../../assets/mnist-8k/train-images-idx3-ubyte.gz");
/// The digit (0..9) of each embedded image, in the same order.
pub const EMBEDDED_MNIST_LABELS: &[u8] =
    include_bytes!("../../assets/mnist-8k/train-labels-idx1-ubyte.gz");
/// `--dataset` name of Stacked MNIST, composed from the embedded training digits.
pub const STACKED_MNIST: &str = "stacked-mnist";
/// Real images written to `samples/real.png` at the start of a run.
pub const REAL_GRID: usize = 64;
/// Digits of the embedded set held out of training, for evaluation.
pub const HELD_OUT: usize = 1000;
/// Points drawn from a 2D mixture to train on.
pub const MIXTURE_POINTS: usize = 100_000;

pub enum HostData {
    Images {
        train: ImageSet,
        /// Held-out images (the embedded set's last 1,000; empty for other sources).
        heldout: Option<ImageSet>,
    },
    Points {
        mixture: Mixture2d,
        points: Vec<f32>,
    },
}

impl HostData {
    /// Values per sample.
    pub fn dim(&self) -> usize {
        match self {
            HostData::Images { train, .. } => train.image_len(),
            HostData::Points { .. } => 2,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            HostData::Images { train, .. } => train.n,
            HostData::Points { points, .. } => points.len() / 2,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_images(&self) -> bool {
        matches!(self, HostData::Images { .. })
    }

    /// (channels, height, width) of image data.
    pub fn image_shape(&self) -> Option<(usize, usize, usize)> {
        match self {
            HostData::Images { train, .. } => Some((train.channels, train.height, train.width)),
            HostData::Points { .. } => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            HostData::Images { train, heldout } => format!(
                "{} images of {}x{}x{}{}{}",
                train.n,
                train.channels,
                train.height,
                train.width,
                heldout
                    .as_ref()
                    .map_or(String::new(), |h| format!(" ({} more held out)", h.n)),
                match train.labels {
                    Some(_) => format!(", {} classes", train.classes.len()),
                    None => String::new(),
                }
            ),
            HostData::Points { mixture, points } => {
                format!("{} points of {}", points.len() / 2, mixture.name())
            }
        }
    }

    /// The training images' labels and class names, when the source has them.
    pub fn labels(&self) -> Option<(&[u32], &[String])> {
        match self {
            HostData::Images { train, .. } => {
                Some((train.labels.as_deref()?, train.classes.as_slice()))
            }
            HostData::Points { .. } => None,
        }
    }

    /// Uploads once, in compact form: pixels stay 8-bit and are mapped to `range` by the gather.
    pub fn upload(&self, be: &mut dyn Backend, range: (f32, f32)) -> Result<DeviceData> {
        match self {
            HostData::Images { train, .. } => {
                let (scale, offset) = byte_map(range);
                Ok(DeviceData::Bytes {
                    rows: be.upload_rows_u8(
                        &train.pixels,
                        train.n,
                        train.image_len(),
                        "dataset",
                    )?,
                    scale,
                    offset,
                })
            }
            HostData::Points { points, .. } => {
                let t = be.alloc(points.len(), "dataset")?;
                be.write(t, points);
                Ok(DeviceData::Floats {
                    t,
                    rows: points.len() / 2,
                    row_len: 2,
                })
            }
        }
    }

    /// Writes `samples/real.png`-style evidence of the data pipeline to `path`: for images, a
    /// grid of [`REAL_GRID`] training images spread evenly through the set, each byte mapped to
    /// `range` exactly as the gather maps it for D and the grid mapping it back to pixels; for
    /// 2D sets, a scatter plot of 2,500 training points over the modes.
    pub fn write_real_grid(&self, path: &Path, range: (f32, f32)) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match self {
            HostData::Images { train, .. } => {
                let n = train.n.min(REAL_GRID);
                let (scale, offset) = byte_map(range);
                let x: Vec<f32> = (0..n)
                    .flat_map(|i| train.image(i * train.n / n))
                    .map(|&b| b as f32 * scale + offset)
                    .collect();
                let (c, h, w) = (train.channels, train.height, train.width);
                let zoom = (256 / h.max(w)).clamp(1, 4) as u32;
                output::write_png_grid(path, output::Images::new(&x, n, (c, h, w)), range, zoom)
            }
            HostData::Points { mixture, points } => {
                let n = points.len().min(2 * 2500);
                let (means, ext) = (mixture.means(), mixture.extent());
                let title = format!("real data: {}", mixture.name());
                output::write_scatter_png(path, &title, &points[..n / 2 * 2], &means, ext, 512)
            }
        }
    }
}

/// (scale, offset) taking a byte 0..255 to `range`, as the gather applies it: b·scale + offset.
fn byte_map(range: (f32, f32)) -> (f32, f32) {
    ((range.1 - range.0) / 255.0, range.0)
}

/// The embedded digits with their labels: (training set, held-out set).
pub fn embedded_mnist() -> Result<(ImageSet, ImageSet)> {
    let set = parse_idx_images(EMBEDDED_MNIST, "embedded MNIST")?;
    let (labels, classes) =
        parse_idx_labels(EMBEDDED_MNIST_LABELS, "embedded MNIST labels", set.n)?;
    set.with_labels(labels, classes)?.split_tail(HELD_OUT)
}

/// Loads what `cfg.dataset` names: a built-in set, IDX files, or a folder of images. Labels come
/// with the images where the source has them; `cfg.conditional` makes them required, so a
/// missing or bad label file (or a folder without class subfolders) is an error.
pub fn load(cfg: &TrainConfig) -> Result<HostData> {
    let data = load_all(cfg)?;
    match cfg.limit {
        None => Ok(data),
        Some(n) => limit(data, n, &cfg.dataset),
    }
}

/// The first `n` training images of `data` (`--limit`); the held-out set is unchanged.
fn limit(data: HostData, n: usize, name: &str) -> Result<HostData> {
    match data {
        HostData::Images { train, heldout } => {
            if n > train.n {
                bail!(
                    "--limit {n} exceeds the {} training images of {name}; pass --limit {} or \
                     less, or leave it out",
                    train.n,
                    train.n
                );
            }
            let train = if n < train.n {
                let drop = train.n - n;
                train.split_tail(drop)?.0
            } else {
                train
            };
            Ok(HostData::Images { train, heldout })
        }
        HostData::Points { .. } => {
            bail!("--limit takes the first N images of an image dataset; {name} is a 2D point set")
        }
    }
}

fn load_all(cfg: &TrainConfig) -> Result<HostData> {
    let name = cfg.dataset.as_str();
    let cifar = cifar::folder_of(name);
    if cfg.split != cifar::Split::Train && cifar.is_none() {
        bail!(
            "--split test picks CIFAR-10's test_batch.bin; {name} has no test split: leave \
             --split out"
        );
    }
    if name == "mnist" {
        let (train, heldout) = embedded_mnist()?;
        return Ok(HostData::Images {
            train,
            heldout: Some(heldout),
        });
    }
    if name == STACKED_MNIST {
        let (digits, _) = embedded_mnist()?;
        return Ok(HostData::Images {
            train: stacked::stack(&digits, stacked::SAMPLES, cfg.seed)?,
            heldout: None,
        });
    }
    if let Some(mixture) = Mixture2d::parse(name) {
        return Ok(HostData::Points {
            mixture,
            points: mixture.sample(MIXTURE_POINTS, cfg.seed),
        });
    }
    if let Some(dir) = cifar {
        return Ok(HostData::Images {
            train: cifar::load(&dir, cfg.split, cfg.channels)?,
            heldout: None,
        });
    }
    let path = Path::new(name);
    if !path.exists() {
        bail!(
            "dataset {name:?} is neither a built-in set (mnist, {STACKED_MNIST}, ring8, grid25) \
             nor an existing path; pass MNIST-format IDX files, a folder holding them, \
             cifar10:DIR for CIFAR-10's binary files, or a folder of PNG/JPEG images"
        );
    }
    let has_idx = path.is_file() || idx::STANDARD_NAMES.iter().any(|n| path.join(n).is_file());
    let train = if has_idx {
        labels::load_idx_set(path, cfg.conditional)?
    } else {
        let opts = FolderOptions {
            channels: cfg.channels,
            size: cfg.image_size,
            background: cfg.background,
            require_labels: cfg.conditional,
            skip_bad: cfg.skip_bad_images,
        };
        load_image_folder(path, &opts)?
    };
    Ok(HostData::Images {
        train,
        heldout: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;
    use image::{GenericImageView, Luma};
    use std::path::PathBuf;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("duel-dataset-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn cfg(dataset: &Path, conditional: bool) -> TrainConfig {
        let mut cfg = TrainConfig::preset(Preset::Mlp, dataset.to_str().unwrap());
        cfg.conditional = conditional;
        cfg.image_size = 4;
        cfg
    }

    #[test]
    fn embedded_digits_have_ten_classes_in_roughly_even_numbers() {
        let (train, held) = embedded_mnist().unwrap();
        assert_eq!(
            train.classes,
            (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
        );
        assert_eq!(train.labels.as_ref().map(Vec::len), Some(7000));
        assert_eq!(held.labels.as_ref().map(Vec::len), Some(1000));
        for (d, &c) in train.class_counts().iter().enumerate() {
            assert!((500..900).contains(&c), "digit {d}: {c} of 7000");
        }
    }

    #[test]
    fn conditional_runs_require_labels_and_plain_runs_do_without() {
        // Class subfolders: labelled either way.
        let classes = tmp("classes");
        for (sub, v) in [("zebra", 1u8), ("ant", 2)] {
            std::fs::create_dir_all(classes.join(sub)).unwrap();
            image::GrayImage::from_pixel(4, 4, Luma([v]))
                .save(classes.join(sub).join("x.png"))
                .unwrap();
        }
        let data = load(&cfg(&classes, true)).unwrap();
        let (labels, names) = data.labels().unwrap();
        assert_eq!(
            (labels, names),
            (&[0, 1][..], &["ant".to_string(), "zebra".into()][..])
        );

        // IDX images without a label file: refused only when labels are required.
        let idx_dir = tmp("idx");
        let mut bytes = 0x0803u32.to_be_bytes().to_vec();
        [2u32, 4, 4]
            .iter()
            .for_each(|d| bytes.extend(d.to_be_bytes()));
        bytes.extend([7u8; 32]);
        std::fs::write(idx_dir.join("train-images-idx3-ubyte"), bytes).unwrap();
        assert!(load(&cfg(&idx_dir, false)).unwrap().labels().is_none());
        let e = format!("{:#}", load(&cfg(&idx_dir, true)).err().unwrap());
        assert!(e.contains("no label file beside it"), "{e}");
        let mut labels = 0x0801u32.to_be_bytes().to_vec();
        labels.extend(2u32.to_be_bytes());
        labels.extend([1u8, 0]);
        std::fs::write(idx_dir.join("train-labels-idx1-ubyte"), labels).unwrap();
        let data = load(&cfg(&idx_dir, true)).unwrap();
        assert_eq!(data.labels().unwrap().0, &[1, 0]);
    }

    #[test]
    fn limit_keeps_the_first_images_and_their_labels() {
        let mut cfg = TrainConfig::preset(Preset::Paper, "mnist");
        let (all, _) = embedded_mnist().unwrap();
        cfg.limit = Some(123);
        let data = load(&cfg).unwrap();
        let HostData::Images { train, heldout } = &data else {
            panic!("images")
        };
        assert_eq!(train.n, 123);
        assert_eq!(train.pixels, all.pixels[..123 * 784]);
        assert_eq!(
            train.labels.as_deref(),
            Some(&all.labels.as_ref().unwrap()[..123])
        );
        assert_eq!(
            heldout.as_ref().map(|h| h.n),
            Some(HELD_OUT),
            "held-out set unchanged"
        );
        cfg.limit = Some(7000);
        assert_eq!(load(&cfg).unwrap().len(), 7000);
        cfg.limit = Some(7001);
        let e = load(&cfg).err().unwrap().to_string();
        assert!(
            e.contains("--limit 7001 exceeds the 7000 training images"),
            "{e}"
        );
    }

    #[test]
    fn the_real_grid_shows_exactly_the_bytes_d_is_fed() {
        // 256 one-pixel images holding every byte value once; the grid must give each back.
        let train = ImageSet::unlabelled(256, 1, 1, 1, (0..=255).collect());
        let data = HostData::Images {
            train,
            heldout: None,
        };
        for range in [(-1.0, 1.0), (0.0, 1.0)] {
            let path = tmp("grid").join("samples/real.png");
            data.write_real_grid(&path, range).unwrap();
            let img = image::open(&path).unwrap();
            // 64 images spread evenly: i·256/64 = 4i, in an 8x8 grid of 4x-zoomed pixels.
            for i in 0..64u32 {
                let (x, y) = (2 + (i % 8) * 6, 2 + (i / 8) * 6);
                assert_eq!(
                    img.get_pixel(x, y).0[0],
                    (4 * i) as u8,
                    "{range:?} image {i}"
                );
            }
        }
    }
}

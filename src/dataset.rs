//! Resolving `--dataset` to data in memory, and uploading it to a backend.

use crate::backend::Backend;
use crate::config::TrainConfig;
use crate::data::{ImageSet, Mixture2d, idx, load_image_folder, parse_idx_images};
use crate::gan::DeviceData;
use anyhow::{Result, bail};
use std::path::Path;

/// The embedded MNIST subset (see assets/mnist-8k/README.md for provenance and licence).
pub const EMBEDDED_MNIST: &[u8] = include_bytes!("../assets/mnist-8k/train-images-idx3-ubyte.gz");
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
                "{} images of {}x{}x{}{}",
                train.n,
                train.channels,
                train.height,
                train.width,
                heldout
                    .as_ref()
                    .map_or(String::new(), |h| format!(" ({} more held out)", h.n))
            ),
            HostData::Points { mixture, points } => {
                format!("{} points of {}", points.len() / 2, mixture.name())
            }
        }
    }

    /// Uploads once, in compact form: pixels stay 8-bit and are mapped to `range` by the gather.
    pub fn upload(&self, be: &mut dyn Backend, range: (f32, f32)) -> Result<DeviceData> {
        match self {
            HostData::Images { train, .. } => Ok(DeviceData::Bytes {
                rows: be.upload_rows_u8(&train.pixels, train.n, train.image_len(), "dataset")?,
                scale: (range.1 - range.0) / 255.0,
                offset: range.0,
            }),
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
}

/// The embedded digits: (training set, held-out set).
pub fn embedded_mnist() -> Result<(ImageSet, ImageSet)> {
    parse_idx_images(EMBEDDED_MNIST, "embedded MNIST")?.split_tail(HELD_OUT)
}

/// Loads what `cfg.dataset` names: a built-in set, IDX files, or a folder of images.
pub fn load(cfg: &TrainConfig) -> Result<HostData> {
    let name = cfg.dataset.as_str();
    if name == "mnist" {
        let (train, heldout) = embedded_mnist()?;
        return Ok(HostData::Images {
            train,
            heldout: Some(heldout),
        });
    }
    if let Some(mixture) = Mixture2d::parse(name) {
        return Ok(HostData::Points {
            mixture,
            points: mixture.sample(MIXTURE_POINTS, cfg.seed),
        });
    }
    let path = Path::new(name);
    if !path.exists() {
        bail!(
            "dataset {name:?} is neither a built-in set (mnist, ring8, grid25) nor an existing \
             path; pass MNIST-format IDX files, a folder holding them, or a folder of PNG/JPEG \
             images"
        );
    }
    let has_idx = path.is_file() || idx::STANDARD_NAMES.iter().any(|n| path.join(n).is_file());
    let train = if has_idx {
        idx::load_idx_images(path)?
    } else {
        load_image_folder(path, cfg.channels, cfg.image_size)?
    };
    Ok(HostData::Images {
        train,
        heldout: None,
    })
}

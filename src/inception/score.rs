//! `duel eval fid|kid --features inception`: FID and KID on Inception-v3 pool3 features (the
//! numbers papers publish), for a run's samples against its training images or for two folders
//! of images. The Fréchet distance and KID are `crate::metrics`'.

use super::{DEFAULT_BATCH, FEATURES, Inception, InceptionWeights, weights::PTH_NAME};
use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::data::dataset::{self, HostData};
use crate::data::{Background, FolderOptions, ImageSet, load_image_folder};
use crate::features::score::{Metric, sample_unit};
use crate::metrics::{self, Features, KidOptions};
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The environment variable naming the weights file when `--inception` is not given.
pub const ENV: &str = "DUEL_INCEPTION";
/// Samples of G scored by default (FID's bias falls with the count; papers use 10,000–50,000).
pub const DEFAULT_SAMPLES: usize = 10_000;
/// What every number printed here is.
pub const NAME: &str = "Inception-v3 pool3 (pytorch-fid's FID Inception, 2,048 features)";

/// The weights file: `given`, else `$DUEL_INCEPTION`, else an error saying how to get one.
pub fn weights_path(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    match std::env::var_os(ENV) {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => bail!(
            "Inception features need pytorch-fid's weights ({PTH_NAME}, converted to \
             safetensors): pass --inception FILE or set {ENV}; docs/metrics.md says where to \
             get the file"
        ),
    }
}

/// Options of an Inception score.
#[derive(Clone, Debug)]
pub struct InceptionOptions {
    pub weights: PathBuf,
    /// Images per forward.
    pub batch: usize,
    /// Seed of G's noise and of KID's subsets.
    pub seed: u64,
}

impl InceptionOptions {
    pub fn new(weights: PathBuf, seed: u64) -> Self {
        Self {
            weights,
            batch: DEFAULT_BATCH,
            seed,
        }
    }
}

/// The metric on two feature sets: FID [fid], KID [mean, std].
fn compute(metric: Metric, a: &[f32], b: &[f32], seed: u64) -> Result<Vec<f64>> {
    let (a, b) = (Features::new(a, FEATURES)?, Features::new(b, FEATURES)?);
    Ok(match metric {
        Metric::Fid => vec![metrics::fid(a, b)?],
        Metric::Kid => {
            let k = metrics::kid(
                a,
                b,
                &KidOptions {
                    seed,
                    ..KidOptions::default()
                },
            )?;
            vec![k.mean, k.std]
        }
        Metric::PrecisionRecall => bail!(
            "precision/recall runs on duel's MNIST feature network only; drop --features inception"
        ),
    })
}

/// "Inception FID 12.345" / "Inception KID 0.0123 ± 0.0004".
pub fn show(metric: Metric, v: &[f64]) -> String {
    match metric {
        Metric::Kid => format!("Inception KID {:.4} ± {:.4}", v[0], v[1]),
        _ => format!("Inception FID {:.3}", v[0]),
    }
}

/// What was measured: the numbers and the report.
#[derive(Clone, Debug)]
pub struct InceptionScore {
    pub value: Vec<f64>,
    /// Images in the first and the second set.
    pub counts: (usize, usize),
    pub text: String,
}

/// Images converted to [0, 1] at a time: a 50,000-image set as f32 at once would take
/// gigabytes.
const CHUNK: usize = 512;

/// The features of the first `count` images of `set`.
fn set_features(
    net: &mut Inception,
    be: &mut dyn Backend,
    set: &ImageSet,
    count: usize,
) -> Result<Vec<f32>> {
    let len = set.image_len();
    let shape = (set.channels, set.height, set.width);
    let mut out = Vec::with_capacity(count * FEATURES);
    for start in (0..count).step_by(CHUNK) {
        let end = (start + CHUNK).min(count);
        let unit: Vec<f32> = set.pixels[start * len..end * len]
            .iter()
            .map(|&b| b as f32 / 255.0)
            .collect();
        out.extend(net.features(be, &unit, shape)?);
    }
    Ok(out)
}

fn network(be: &mut dyn Backend, opts: &InceptionOptions) -> Result<Inception> {
    let w = InceptionWeights::load(&opts.weights)?;
    Inception::new(be, &w, opts.batch)
}

/// The run's `samples` samples of G against as many of its training images (all when fewer).
pub fn score_run(
    be: &mut dyn Backend,
    ck: &Checkpoint,
    metric: Metric,
    samples: usize,
    opts: &InceptionOptions,
) -> Result<InceptionScore> {
    let Some((c, h, w)) = ck.image_shape else {
        bail!(
            "this run trained on {} (2D points); Inception FID/KID is for image runs. Use duel \
             eval modes for the 2D sets",
            ck.config.dataset
        );
    };
    if c != 1 && c != 3 {
        bail!("this run makes {c}-channel images; Inception reads gray or RGB images");
    }
    if samples < 2 {
        bail!(
            "--samples {samples} is too few for {}; pass at least 2",
            metric.name()
        );
    }
    // Fail on the weights before generating anything.
    let mut net = network(be, opts)?;
    let data = dataset::load(&ck.config).context("loading the run's training images")?;
    let HostData::Images { train, .. } = data else {
        bail!("the run did not train on images");
    };
    if train.image_len() != c * h * w {
        bail!(
            "the run's training images are {}×{}×{} but G makes {c}×{h}×{w}",
            train.channels,
            train.height,
            train.width
        );
    }
    let take = samples.min(train.n);
    let real = set_features(&mut net, be, &train, take)?;
    let fake = sample_unit(be, ck, samples, opts.seed)?;
    let fake = net.features(be, &fake, (c, h, w))?;
    let value = compute(metric, &fake, &real, opts.seed)?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} on {NAME}; comparable with pytorch-fid's numbers",
        metric.name()
    );
    let _ = writeln!(
        text,
        "run: {} at iteration {}; {samples} samples of G (noise seed {}, {c}×{h}×{w}, resized \
         to 299×299) against {take} of its {} training images",
        ck.config.dataset, ck.state.iteration, opts.seed, train.n
    );
    let _ = write!(
        text,
        "{}   ({samples} generated vs {take} real images)",
        show(metric, &value)
    );
    Ok(InceptionScore {
        value,
        counts: (samples, take),
        text,
    })
}

/// A folder's images as pytorch-fid reads them: RGB (gray repeated), at the first image's size.
fn load_folder(dir: &Path) -> Result<ImageSet> {
    let first = first_image(dir)?;
    let (w, h) = image::image_dimensions(&first)
        .with_context(|| format!("{}: cannot read the image's size", first.display()))?;
    let opts = FolderOptions {
        channels: 3,
        size: w.min(h) as usize,
        background: Background::White,
        require_labels: false,
        skip_bad: false,
    };
    load_image_folder(dir, &opts)
}

/// The first image file of `dir` in load order (sorted paths, recursively).
fn first_image(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        bail!(
            "{}: no such directory; pass a folder of .png/.jpg images",
            dir.display()
        );
    }
    let mut stack = vec![dir.to_path_buf()];
    let mut found: Option<PathBuf> = None;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("{}: cannot list", d.display()))? {
            let p = e?.path();
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            let image = p.extension().is_some_and(|x| {
                crate::data::folder::EXTENSIONS
                    .contains(&x.to_string_lossy().to_lowercase().as_str())
            });
            if hidden {
                continue;
            } else if p.is_dir() {
                stack.push(p);
            } else if image && found.as_ref().is_none_or(|f| p < *f) {
                found = Some(p);
            }
        }
    }
    found.with_context(|| format!("{}: no .png/.jpg/.jpeg images found", dir.display()))
}

/// Two folders of images against each other (e.g. generated samples against real images).
pub fn score_folders(
    be: &mut dyn Backend,
    first: &Path,
    second: &Path,
    metric: Metric,
    opts: &InceptionOptions,
) -> Result<InceptionScore> {
    let mut net = network(be, opts)?;
    let mut feats = Vec::new();
    let mut desc = Vec::new();
    for dir in [first, second] {
        let set = load_folder(dir)?;
        feats.push(set_features(&mut net, be, &set, set.n)?);
        desc.push((
            set.n,
            format!(
                "{} ({} images, {}×{}×{})",
                dir.display(),
                set.n,
                3,
                set.height,
                set.width
            ),
        ));
    }
    let value = compute(metric, &feats[0], &feats[1], opts.seed)?;
    let (n1, n2) = (desc[0].0, desc[1].0);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} on {NAME}; comparable with pytorch-fid's numbers",
        metric.name()
    );
    let _ = writeln!(text, "first:  {}\nsecond: {}", desc[0].1, desc[1].1);
    let _ = write!(text, "{}   ({n1} vs {n2} images)", show(metric, &value));
    Ok(InceptionScore {
        value,
        counts: (n1, n2),
        text,
    })
}

/// What one side of an Inception FID is: G's samples of a run, or a folder of images.
#[derive(Clone, Copy, Debug)]
pub enum Side<'a> {
    Run { ck: &'a Checkpoint, samples: usize },
    Folder(&'a Path),
}

/// The Inception statistics (mu, sigma) of one side, and a line saying what they are: what
/// `duel eval fid --features inception --save-stats` writes and `--reference` compares against.
pub fn side_stats(
    be: &mut dyn Backend,
    side: Side,
    opts: &InceptionOptions,
) -> Result<(metrics::FidStats, String)> {
    let mut net = network(be, opts)?;
    let (features, what) = match side {
        Side::Run { ck, samples } => {
            let Some((c, h, w)) = ck.image_shape else {
                bail!(
                    "this run trained on {} (2D points); Inception statistics are for image runs",
                    ck.config.dataset
                );
            };
            if c != 1 && c != 3 {
                bail!("this run makes {c}-channel images; Inception reads gray or RGB images");
            }
            if samples < 2 {
                bail!("--samples {samples} is too few for statistics; pass at least 2");
            }
            let fake = sample_unit(be, ck, samples, opts.seed)?;
            let what = format!(
                "{samples} samples of G ({} at iteration {}, noise seed {}, {c}×{h}×{w})",
                ck.config.dataset, ck.state.iteration, opts.seed
            );
            (net.features(be, &fake, (c, h, w))?, what)
        }
        Side::Folder(dir) => {
            let set = load_folder(dir)?;
            if set.n < 2 {
                bail!(
                    "{}: {} image; statistics need at least 2",
                    dir.display(),
                    set.n
                );
            }
            let what = format!(
                "{} ({} images, 3×{}×{})",
                dir.display(),
                set.n,
                set.height,
                set.width
            );
            (set_features(&mut net, be, &set, set.n)?, what)
        }
    };
    let stats = metrics::FidStats::from_features(Features::new(&features, FEATURES)?)?;
    Ok((stats, what))
}

//! `duel eval`: scoring a finished run. `parzen` is the Parzen-window log-likelihood of the
//! paper's Table 1 for image runs; `modes` the mode-coverage metrics of VEEGAN and PacGAN for
//! the 2D sets.

use crate::backend::Backend;
use crate::checkpoint::{self, Checkpoint};
use crate::data::dataset::{self, HostData};
use crate::data::{ImageSet, Mixture2d, load_idx_images};
use crate::metrics::modes::{ModeStats, mode_stats};
use crate::metrics::parzen::{ParzenReport, paper_sigmas, parzen_evaluate};
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The run's checkpoint, with an error that says what to pass instead.
pub fn load_run(run: &Path) -> Result<Checkpoint> {
    let path = if run.is_file() {
        run.to_path_buf()
    } else {
        run.join(checkpoint::FILE_NAME)
    };
    if !path.is_file() {
        bail!(
            "{}: no {} here; pass --run the directory of a training run (duel train --out DIR)",
            run.display(),
            checkpoint::FILE_NAME
        );
    }
    Checkpoint::load(&path)
}

/// Images as f32 rows in [0, 1].
fn unit_pixels(set: &ImageSet) -> Vec<f32> {
    set.pixels.iter().map(|&b| b as f32 / 255.0).collect()
}

/// Rows `start .. start + count` (clamped to the set) of an image set, in [0, 1].
fn rows(set: &ImageSet, start: usize, count: usize) -> Vec<f32> {
    let len = set.image_len();
    let (a, b) = (start.min(set.n), (start + count).min(set.n));
    set.pixels[a * len..b * len]
        .iter()
        .map(|&v| v as f32 / 255.0)
        .collect()
}

/// Where `duel eval parzen` takes its validation and test digits from.
#[derive(Clone, Debug, Default)]
pub struct ParzenData {
    /// MNIST-format IDX test images; without it, the second half of the embedded set's 1,000
    /// held-out digits.
    pub test: Option<PathBuf>,
    /// IDX images to choose σ on; without it, the embedded held-out digits (their first half
    /// when the test set is the second half, all 1,000 otherwise).
    pub valid: Option<PathBuf>,
    /// Images of `valid` skipped, then how many are used (the paper: the first 1,000 of MNIST's
    /// training digits 50,000–59,999, i.e. skip 50,000, count 1,000).
    pub valid_skip: usize,
    pub valid_count: usize,
}

/// (validation rows, test rows, description) for images of `dim` values.
fn parzen_sets(data: &ParzenData, dim: usize) -> Result<(Vec<f32>, Vec<f32>, String)> {
    let (_, heldout) = dataset::embedded_mnist()?;
    let check = |set: &ImageSet, what: &str| -> Result<()> {
        if set.image_len() != dim {
            bail!(
                "{what} has images of {} values but the run's generator makes {dim}; pass \
                 --data (and --valid) with images of the run's size",
                set.image_len()
            );
        }
        Ok(())
    };
    let half = heldout.n / 2;
    let (test, test_what) = match &data.test {
        None => {
            check(&heldout, "the embedded MNIST set")?;
            (
                rows(&heldout, half, heldout.n - half),
                format!(
                    "the second {} of the embedded set's {} held-out digits",
                    heldout.n - half,
                    heldout.n
                ),
            )
        }
        Some(p) => {
            let set = load_idx_images(p)?;
            check(&set, &p.display().to_string())?;
            (
                unit_pixels(&set),
                format!("{} images of {}", set.n, p.display()),
            )
        }
    };
    let (valid, valid_what) = match (&data.valid, &data.test) {
        (Some(p), _) => {
            let set = load_idx_images(p)?;
            check(&set, &p.display().to_string())?;
            if data.valid_skip >= set.n {
                bail!(
                    "--valid-skip {} skips all {} images of {}",
                    data.valid_skip,
                    set.n,
                    p.display()
                );
            }
            let v = rows(&set, data.valid_skip, data.valid_count);
            let n = v.len() / dim;
            (
                v,
                format!(
                    "{n} images of {} from image {}",
                    p.display(),
                    data.valid_skip
                ),
            )
        }
        (None, None) => (
            rows(&heldout, 0, half),
            format!("the first {half} held-out digits"),
        ),
        (None, Some(_)) => {
            check(&heldout, "the embedded MNIST set")?;
            (
                unit_pixels(&heldout),
                format!("the embedded set's {} held-out digits", heldout.n),
            )
        }
    };
    if valid.is_empty() {
        bail!("the validation set is empty; raise --valid-count");
    }
    Ok((
        valid,
        test,
        format!("σ chosen on {valid_what}; tested on {test_what}"),
    ))
}

/// What `duel eval parzen` measured.
#[derive(Clone, Debug)]
pub struct ParzenEval {
    pub generator: ParzenReport,
    /// The same procedure with real training digits as the centres, when they could be loaded.
    pub baseline: Option<ParzenReport>,
    pub text: String,
}

/// Options of `duel eval parzen` besides the data.
#[derive(Clone, Debug)]
pub struct ParzenOptions {
    pub samples: usize,
    pub seed: u64,
    pub baseline: bool,
}

fn report_lines(out: &mut String, r: &ParzenReport) {
    let best = r.sigma;
    for &(s, ll) in &r.search {
        let mark = if s == best { "  ← chosen" } else { "" };
        let _ = writeln!(
            out,
            "  σ = {s:.4}   mean validation log-likelihood {ll:>10.2}{mark}"
        );
    }
}

/// The paper's Parzen-window estimate for the run in `ck` on backend `be`.
pub fn parzen(
    be: &mut dyn Backend,
    ck: &Checkpoint,
    data: &ParzenData,
    opts: &ParzenOptions,
) -> Result<ParzenEval> {
    let Some((c, h, w)) = ck.image_shape else {
        bail!(
            "this run trained on {} (2D points); the Parzen estimate is for image runs. Use \
             duel eval modes for the 2D sets",
            ck.config.dataset
        );
    };
    if opts.samples == 0 {
        bail!("--samples must be at least 1");
    }
    let dim = ck.dim;
    let (valid, test, sets) = parzen_sets(data, dim)?;
    let (lo, hi) = ck.config.data_range();
    let samples: Vec<f32> = crate::sample::generate(
        ck,
        be,
        &crate::sample::NoiseSource::Seed {
            count: opts.samples,
            seed: opts.seed,
        },
    )?
    .into_iter()
    .map(|v| ((v - lo) / (hi - lo)).clamp(0.0, 1.0))
    .collect();
    let sigmas = paper_sigmas();
    let generator = parzen_evaluate(be, &samples, &valid, &test, dim, &sigmas)?;

    let mut text = String::new();
    let _ = writeln!(
        text,
        "Parzen-window log-likelihood (Goodfellow et al. 2014, Table 1; the procedure of its \
         parzen_ll.py)"
    );
    let _ = writeln!(
        text,
        "run: {} at iteration {}, {} samples of G ({c}×{h}×{w}), pixels in [0, 1]",
        ck.config.dataset, ck.state.iteration, opts.samples
    );
    let _ = writeln!(text, "{sets}");
    report_lines(&mut text, &generator);
    let _ = writeln!(
        text,
        "test log-likelihood: {:.1} ± {:.1} nats (mean ± standard error over {} digits, σ = {:.4})",
        generator.test_mean, generator.test_se, generator.test, generator.sigma
    );

    let mut baseline = None;
    if opts.baseline {
        match real_centres(ck, opts.samples) {
            Ok((centres, what)) => {
                let r = parzen_evaluate(be, &centres, &valid, &test, dim, &sigmas)?;
                let _ = writeln!(
                    text,
                    "real-data baseline ({what} as the centres, same procedure): {:.1} ± {:.1} \
                     (σ = {:.4})",
                    r.test_mean, r.test_se, r.sigma
                );
                baseline = Some(r);
            }
            Err(e) => {
                let _ = writeln!(text, "real-data baseline skipped: {e:#}");
            }
        }
    }
    let _ = write!(
        text,
        "paper, MNIST (10,000 test digits): GAN 225 ± 2, DBN 138 ± 2, Stacked CAE 121 ± 1.6, \
         Deep GSN 214 ± 1.1"
    );
    Ok(ParzenEval {
        generator,
        baseline,
        text,
    })
}

/// Up to `n` of the run's own training images in [0, 1].
fn real_centres(ck: &Checkpoint, n: usize) -> Result<(Vec<f32>, String)> {
    let data = dataset::load(&ck.config).context("loading the run's training images")?;
    let HostData::Images { train, .. } = data else {
        bail!("the run did not train on images");
    };
    if train.image_len() != ck.dim {
        bail!("the training images no longer match the run's size");
    }
    let take = n.min(train.n);
    Ok((rows(&train, 0, take), format!("{take} training digits")))
}

/// What `duel eval modes` measured: the generator's samples and, for reference, as many real
/// samples of the mixture.
#[derive(Clone, Debug)]
pub struct ModesEval {
    pub mixture: Mixture2d,
    pub generator: ModeStats,
    pub real: ModeStats,
    pub text: String,
}

/// Mode coverage of the run in `ck` from `samples` samples of G (2,500 in the papers).
pub fn modes(
    be: &mut dyn Backend,
    ck: &Checkpoint,
    samples: usize,
    seed: u64,
) -> Result<ModesEval> {
    let Some(mixture) = Mixture2d::parse(&ck.config.dataset) else {
        bail!(
            "this run trained on {}; mode coverage is defined for the 2D sets ring8 and grid25 \
             and for stacked-mnist. Use duel eval fid or duel eval parzen for image runs",
            ck.config.dataset
        );
    };
    if samples == 0 {
        bail!("--samples must be at least 1");
    }
    let points = crate::sample::generate(
        ck,
        be,
        &crate::sample::NoiseSource::Seed {
            count: samples,
            seed,
        },
    )?;
    let generator = mode_stats(&points, mixture);
    let real = mode_stats(&mixture.sample(samples, seed), mixture);
    let k = generator.total_modes;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "mode coverage (VEEGAN/PacGAN definitions): {} at iteration {}, {samples} samples",
        mixture.name(),
        ck.state.iteration
    );
    let _ = writeln!(
        text,
        "a sample is high-quality within 3 std ({}) of its nearest mode; a mode is captured \
         when it is the nearest mode of a high-quality sample",
        3.0 * mixture.std()
    );
    let _ = writeln!(
        text,
        "            {:>8}  {:>12}  {:>17}",
        "modes", "high-quality", "KL(modes‖uniform)"
    );
    for (name, s) in [("generator", &generator), ("real data", &real)] {
        let _ = writeln!(
            text,
            "{name:<10}  {:>8}  {:>11.1}%  {:>17.3}",
            format!("{}/{k}", s.modes_captured),
            100.0 * s.high_quality_fraction,
            s.kl_from_uniform
        );
    }
    let counts: Vec<String> = generator.counts.iter().map(|c| c.to_string()).collect();
    let _ = writeln!(
        text,
        "high-quality samples per mode (generator): {}",
        counts.join(" ")
    );
    let _ = write!(
        text,
        "PacGAN (2,500 samples): vanilla GAN {}, best methods {}",
        match mixture {
            Mixture2d::Ring8 => "6.3/8 modes, 98.2% high-quality",
            Mixture2d::Grid25 => "17.3/25 modes, 94.8% high-quality",
        },
        match mixture {
            Mixture2d::Ring8 => "7.9/8",
            Mixture2d::Grid25 => "24.8/25",
        }
    );
    Ok(ModesEval {
        mixture,
        generator,
        real,
        text,
    })
}

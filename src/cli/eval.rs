//! `duel eval`: score a trained run (Parzen window, mode counts, FID/KID/precision-recall and
//! class balance on duel's feature network).

use anyhow::Result;
use clap::{Args, Subcommand};
use duel::backend::Backend;
use duel::checkpoint::Checkpoint;
use duel::config::BackendName;
use duel::train::open_backend;
use std::path::PathBuf;

#[derive(Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    metric: EvalMetric,
}

#[derive(Subcommand)]
pub enum EvalMetric {
    /// Parzen-window log-likelihood of an image run (the paper's Table 1: MNIST GAN 225 ± 2)
    Parzen(ParzenArgs),
    /// Mode coverage of a ring8 or grid25 run (VEEGAN/PacGAN: modes captured, high-quality
    /// samples, KL from uniform), or of a stacked-mnist run (modes of 1,000 and KL, each channel
    /// classified by duel's feature network)
    Modes(ModesArgs),
    /// FID of a 1×28×28 run on duel's MNIST feature network, beside the real-vs-real baseline
    /// (not comparable with papers); with --features inception, pytorch-fid's Inception FID of
    /// any image run or of two folders of images; against a statistics file with --reference,
    /// writing statistics with --save-stats
    Fid(FidArgs),
    /// KID (unbiased MMD², cubic kernel, 100 subsets) on duel's MNIST feature network, beside
    /// the real-vs-real baseline; with --features inception, on Inception-v3 features
    Kid(FeatureScoreArgs),
    /// Precision and recall (k-NN manifolds, k = 3) on duel's MNIST feature network, beside the
    /// real-vs-real baseline
    Pr(ScoreArgs),
    /// Which digits a 1×28×28 run draws: the class histogram of G's samples by duel's MNIST
    /// classifier beside the held-out digits', the classes drawn and KL from uniform
    Classes(ClassesArgs),
}

/// What every `duel eval` command takes: the run, G's noise seed and the backend.
#[derive(Args)]
pub struct RunArgs {
    /// Run directory (uses its checkpoint.safetensors), or a checkpoint file
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Seed of G's noise (and of KID's subsets)
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// auto (a hardware GPU, else the CPU), gpu or cpu
    #[arg(long, value_enum, default_value_t = BackendName::Auto)]
    backend: BackendName,
    /// Adapter by index, backend or name substring
    #[arg(long, default_value = "")]
    adapter: String,
}

impl RunArgs {
    fn load(&self) -> Result<Checkpoint> {
        duel::metrics::eval::load_run(&self.run)
    }

    fn backend(&self) -> Result<(Box<dyn Backend>, String)> {
        open_backend(self.backend, &self.adapter)
    }
}

#[derive(Args)]
pub struct ClassesArgs {
    #[command(flatten)]
    on: RunArgs,
    /// Samples of G to label
    #[arg(long, default_value_t = duel::features::classes::DEFAULT_SAMPLES)]
    samples: usize,
}

#[derive(Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    on: RunArgs,
    /// Samples of G to score (the baseline takes as many training digits, at most 7,000)
    #[arg(long, value_name = "N", default_value_t = duel::features::score::DEFAULT_SAMPLES)]
    samples: usize,
}

/// The features FID and KID compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FeatureSpace {
    /// duel's MNIST classifier (1×28×28 runs; offline, not comparable with papers)
    Digits,
    /// pytorch-fid's Inception-v3 pool3 features (any image run or folder; comparable with
    /// published FIDs); needs --inception FILE or DUEL_INCEPTION
    Inception,
}

#[derive(Args)]
pub struct FeatureScoreArgs {
    /// Run directory (uses its checkpoint.safetensors), or a checkpoint file
    #[arg(long, value_name = "DIR", required_unless_present = "images")]
    run: Option<PathBuf>,
    /// Two folders of images scored against each other instead of a run (Inception only); one
    /// folder with fid's --reference or --save-stats
    #[arg(long, num_args = 1..=2, value_names = ["FIRST", "SECOND"], conflicts_with = "run")]
    images: Vec<PathBuf>,
    /// Feature network: digits, or inception for numbers comparable with papers
    #[arg(long, value_enum, default_value_t = FeatureSpace::Digits)]
    features: FeatureSpace,
    /// pytorch-fid's Inception weights converted to safetensors (docs/metrics.md) [default:
    /// $DUEL_INCEPTION]
    #[arg(long, value_name = "FILE")]
    inception: Option<PathBuf>,
    /// Samples of G to score [default: 7000 on digits (the baseline takes as many training
    /// digits), 10000 on inception (as many training images, or all of them)]
    #[arg(long, value_name = "N")]
    samples: Option<usize>,
    /// Images per Inception forward
    #[arg(long, value_name = "N", default_value_t = duel::inception::DEFAULT_BATCH)]
    batch: usize,
    /// Seed of G's noise (and of KID's subsets)
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// auto (a hardware GPU, else the CPU), gpu or cpu
    #[arg(long, value_enum, default_value_t = BackendName::Auto)]
    backend: BackendName,
    /// Adapter by index, backend or name substring
    #[arg(long, default_value = "")]
    adapter: String,
}

#[derive(Args)]
pub struct FidArgs {
    #[command(flatten)]
    score: FeatureScoreArgs,
    /// Score against these statistics instead of the real images: an .npz holding mu [d] and
    /// sigma [d, d], as pytorch-fid and `np.savez(f, mu=mu, sigma=sigma)` write them (see
    /// docs/metrics.md); with --features inception, of 2,048 pool3 features
    #[arg(long, value_name = "FILE.npz")]
    reference: Option<PathBuf>,
    /// Write the statistics (mu, sigma; float64) of G's samples' features (or of the one
    /// --images folder) to this .npz, in pytorch-fid's format
    #[arg(long, value_name = "FILE.npz")]
    save_stats: Option<PathBuf>,
}

#[derive(Args)]
pub struct ParzenArgs {
    #[command(flatten)]
    on: RunArgs,
    /// MNIST-format IDX test images (.gz ok) [default: the second 500 of the embedded set's 1,000
    /// held-out digits]
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
    /// IDX images to choose σ on [default: the embedded held-out digits not used for testing]
    #[arg(long, value_name = "PATH")]
    valid: Option<PathBuf>,
    /// Images of --valid to skip (the paper: 50000, the start of MNIST's validation digits)
    #[arg(long, value_name = "N", default_value_t = 0, requires = "valid")]
    valid_skip: usize,
    /// Images of --valid to use after the skipped ones (the paper: 1000)
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "valid")]
    valid_count: usize,
    /// Samples of G the window is fitted to (the paper: 10,000)
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    samples: usize,
    /// Skip the real-data baseline (the run's training digits as the centres)
    #[arg(long)]
    no_baseline: bool,
}

#[derive(Args)]
pub struct ModesArgs {
    #[command(flatten)]
    on: RunArgs,
    /// Samples of G to score [default: 2500 on the 2D sets, 26000 on stacked-mnist: the
    /// papers' counts]
    #[arg(long, value_name = "N")]
    samples: Option<usize>,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    match args.metric {
        EvalMetric::Parzen(a) => {
            let ck = a.on.load()?;
            let data = duel::metrics::eval::ParzenData {
                test: a.data,
                valid: a.valid,
                valid_skip: a.valid_skip,
                valid_count: a.valid_count,
            };
            let opts = duel::metrics::eval::ParzenOptions {
                samples: a.samples,
                seed: a.on.seed,
                baseline: !a.no_baseline,
            };
            let (mut be, why) = a.on.backend()?;
            let start = std::time::Instant::now();
            let r = duel::metrics::eval::parzen(be.as_mut(), &ck, &data, &opts)?;
            println!("{}", r.text);
            println!(
                "backend: {why}; {}",
                duel::train::fmt_duration(start.elapsed().as_secs_f64())
            );
        }
        EvalMetric::Modes(a) => {
            let ck = a.on.load()?;
            let (mut be, _) = a.on.backend()?;
            if ck.config.dataset == duel::data::dataset::STACKED_MNIST {
                let samples = a.samples.unwrap_or(duel::features::score::STACKED_SAMPLES);
                let r = duel::features::score::stacked_eval(be.as_mut(), &ck, samples, a.on.seed)?;
                println!("{}", r.text);
            } else {
                let samples = a.samples.unwrap_or(duel::metrics::modes::EVAL_SAMPLES);
                let r = duel::metrics::eval::modes(be.as_mut(), &ck, samples, a.on.seed)?;
                println!("{}", r.text);
            }
        }
        EvalMetric::Fid(a) => fid(a)?,
        EvalMetric::Kid(a) => feature_score(a, duel::features::score::Metric::Kid)?,
        EvalMetric::Pr(a) => score(a, duel::features::score::Metric::PrecisionRecall)?,
        EvalMetric::Classes(a) => {
            let ck = a.on.load()?;
            duel::features::score::require_digits(&ck, "eval classes")?;
            let (mut be, why) = a.on.backend()?;
            let r = duel::features::classes::class_balance(be.as_mut(), &ck, a.samples, a.on.seed)?;
            println!("{}\nbackend: {why}", r.text);
        }
    }
    Ok(())
}

pub fn score(a: ScoreArgs, metric: duel::features::score::Metric) -> Result<()> {
    let ck = a.on.load()?;
    // Refuse a run of the wrong kind before opening a backend.
    duel::features::score::require_digits(&ck, metric.name())?;
    let (mut be, why) = a.on.backend()?;
    let start = std::time::Instant::now();
    let r = duel::features::score::score(be.as_mut(), &ck, metric, a.samples, a.on.seed)?;
    println!("{}", r.text);
    println!(
        "backend: {why}; {}",
        duel::train::fmt_duration(start.elapsed().as_secs_f64())
    );
    Ok(())
}

/// `duel eval fid|kid`: on the digit classifier (a run's baseline report) or on Inception (a run
/// or two folders).
pub fn feature_score(a: FeatureScoreArgs, metric: duel::features::score::Metric) -> Result<()> {
    if a.features == FeatureSpace::Digits {
        let Some(run) = a.run else {
            anyhow::bail!(
                "--images scores folders on Inception features only; add --features inception"
            );
        };
        let digits = ScoreArgs {
            on: RunArgs {
                run,
                seed: a.seed,
                backend: a.backend,
                adapter: a.adapter,
            },
            samples: a.samples.unwrap_or(duel::features::score::DEFAULT_SAMPLES),
        };
        return score(digits, metric);
    }
    use duel::inception::score::{InceptionOptions, score_folders, score_run, weights_path};
    let mut opts = InceptionOptions::new(weights_path(a.inception.as_deref())?, a.seed);
    opts.batch = a.batch;
    // The run and the folders are checked before a backend opens.
    let ck = a
        .run
        .as_deref()
        .map(duel::metrics::eval::load_run)
        .transpose()?;
    let (mut be, why) = open_backend(a.backend, &a.adapter)?;
    let start = std::time::Instant::now();
    let r = match (&ck, a.images.as_slice()) {
        (Some(ck), _) => {
            let samples = a.samples.unwrap_or(duel::inception::score::DEFAULT_SAMPLES);
            score_run(be.as_mut(), ck, metric, samples, &opts)?
        }
        (None, [first, second]) => score_folders(be.as_mut(), first, second, metric, &opts)?,
        _ => anyhow::bail!(
            "pass --run DIR or --images FIRST SECOND (one folder is scored only against \
             fid's --reference FILE.npz)"
        ),
    };
    println!("{}", r.text);
    println!(
        "backend: {why}; {}",
        duel::train::fmt_duration(start.elapsed().as_secs_f64())
    );
    Ok(())
}

/// `duel eval fid`: as `feature_score`, or against a statistics file (`--reference`), writing
/// the first side's statistics with `--save-stats`. Files are checked before anything runs; a
/// statistics file already there is never replaced (as pytorch-fid).
fn fid(a: FidArgs) -> Result<()> {
    use duel::metrics::stats_file::{read_stats, write_stats};
    if a.reference.is_none() && a.save_stats.is_none() {
        return feature_score(a.score, duel::features::score::Metric::Fid);
    }
    if let Some(out) = &a.save_stats {
        if out.extension().and_then(|e| e.to_str()) != Some("npz") {
            anyhow::bail!(
                "--save-stats {}: name the file .npz (NumPy's format for mu and sigma)",
                out.display()
            );
        }
        if out.exists() {
            anyhow::bail!(
                "--save-stats {}: the file exists; remove it or name another",
                out.display()
            );
        }
    }
    let s = &a.score;
    let (features, space, label) = match s.features {
        FeatureSpace::Digits => (
            duel::features::FEATURE_DIM,
            "duel's MNIST feature network; not comparable with Inception-based numbers from papers",
            "digit-classifier FID",
        ),
        FeatureSpace::Inception => (
            duel::inception::FEATURES,
            "Inception-v3 pool3 (pytorch-fid's); comparable with pytorch-fid's numbers",
            "Inception FID",
        ),
    };
    let reference = match &a.reference {
        Some(p) => Some(read_stats(p, Some(features))?),
        None => None,
    };
    let ck = s
        .run
        .as_deref()
        .map(duel::metrics::eval::load_run)
        .transpose()?;
    let folder = match (&ck, s.images.as_slice()) {
        (Some(_), []) => None,
        (None, [dir]) if s.features == FeatureSpace::Inception => Some(dir.as_path()),
        (None, [_]) => anyhow::bail!(
            "--images scores folders on Inception features only; add --features inception"
        ),
        _ => anyhow::bail!(
            "--reference and --save-stats take one side: pass --run DIR or --images DIR"
        ),
    };
    let start = std::time::Instant::now();
    let (mut be, why) = open_backend(s.backend, &s.adapter)?;
    let (stats, what) = match (s.features, &ck, folder) {
        (FeatureSpace::Digits, Some(ck), _) => {
            use duel::features::score;
            score::require_digits(ck, "FID")?;
            let n = s.samples.unwrap_or(score::DEFAULT_SAMPLES);
            let what = format!(
                "{n} samples of G ({} at iteration {}, noise seed {})",
                ck.config.dataset, ck.state.iteration, s.seed
            );
            if a.reference.is_some() {
                (score::generator_stats(be.as_mut(), ck, n, s.seed)?, what)
            } else {
                // The usual report against the held-out digits, and G's statistics from the
                // same features.
                let r = score::score(be.as_mut(), ck, score::Metric::Fid, n, s.seed)?;
                println!("{}", r.text);
                let stats = r
                    .generator_stats
                    .expect("FID keeps the generator's statistics");
                (stats, what)
            }
        }
        (FeatureSpace::Inception, _, _) => {
            use duel::inception::score::{InceptionOptions, Side, side_stats, weights_path};
            let mut opts = InceptionOptions::new(weights_path(s.inception.as_deref())?, s.seed);
            opts.batch = s.batch;
            let side = match (&ck, folder) {
                (Some(ck), _) => Side::Run {
                    ck,
                    samples: s.samples.unwrap_or(duel::inception::score::DEFAULT_SAMPLES),
                },
                (None, Some(dir)) => Side::Folder(dir),
                (None, None) => unreachable!("one side was checked above"),
            };
            side_stats(be.as_mut(), side, &opts)?
        }
        (FeatureSpace::Digits, None, _) => unreachable!("folders were refused above"),
    };
    if let (Some(r), Some(path)) = (&reference, &a.reference) {
        let fid = duel::metrics::frechet_distance(&stats, r)?;
        println!("FID on {space}");
        println!(
            "first:     {what}\nreference: the statistics in {}",
            path.display()
        );
        println!(
            "{label} {fid:.3}   ({} images vs the reference's statistics)",
            stats.n
        );
    }
    if let Some(out) = &a.save_stats {
        write_stats(out, &stats)?;
        println!(
            "wrote the statistics of {what} ({features} features) to {}",
            out.display()
        );
    }
    println!(
        "backend: {why}; {}",
        duel::train::fmt_duration(start.elapsed().as_secs_f64())
    );
    Ok(())
}

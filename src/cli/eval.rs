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
    /// any image run or of two folders of images
    Fid(FeatureScoreArgs),
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
        duel::eval::load_run(&self.run)
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
    /// Two folders of images scored against each other instead of a run (Inception only)
    #[arg(long, num_args = 2, value_names = ["FIRST", "SECOND"], conflicts_with = "run")]
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
            let data = duel::eval::ParzenData {
                test: a.data,
                valid: a.valid,
                valid_skip: a.valid_skip,
                valid_count: a.valid_count,
            };
            let opts = duel::eval::ParzenOptions {
                samples: a.samples,
                seed: a.on.seed,
                baseline: !a.no_baseline,
            };
            let (mut be, why) = a.on.backend()?;
            let start = std::time::Instant::now();
            let r = duel::eval::parzen(be.as_mut(), &ck, &data, &opts)?;
            println!("{}", r.text);
            println!(
                "backend: {why}; {}",
                duel::train::fmt_duration(start.elapsed().as_secs_f64())
            );
        }
        EvalMetric::Modes(a) => {
            let ck = a.on.load()?;
            let (mut be, _) = a.on.backend()?;
            if ck.config.dataset == duel::dataset::STACKED_MNIST {
                let samples = a.samples.unwrap_or(duel::features::score::STACKED_SAMPLES);
                let r = duel::features::score::stacked_eval(be.as_mut(), &ck, samples, a.on.seed)?;
                println!("{}", r.text);
            } else {
                let samples = a.samples.unwrap_or(duel::modes::EVAL_SAMPLES);
                let r = duel::eval::modes(be.as_mut(), &ck, samples, a.on.seed)?;
                println!("{}", r.text);
            }
        }
        EvalMetric::Fid(a) => feature_score(a, duel::features::score::Metric::Fid)?,
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
    let ck = a.run.as_deref().map(duel::eval::load_run).transpose()?;
    let (mut be, why) = open_backend(a.backend, &a.adapter)?;
    let start = std::time::Instant::now();
    let r = match (&ck, a.images.as_slice()) {
        (Some(ck), _) => {
            let samples = a.samples.unwrap_or(duel::inception::score::DEFAULT_SAMPLES);
            score_run(be.as_mut(), ck, metric, samples, &opts)?
        }
        (None, [first, second]) => score_folders(be.as_mut(), first, second, metric, &opts)?,
        _ => anyhow::bail!("pass --run DIR or --images FIRST SECOND"),
    };
    println!("{}", r.text);
    println!(
        "backend: {why}; {}",
        duel::train::fmt_duration(start.elapsed().as_secs_f64())
    );
    Ok(())
}

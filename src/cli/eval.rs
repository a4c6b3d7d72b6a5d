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
    /// (not comparable with Inception-based FID); or against a statistics file (--reference),
    /// writing the samples' statistics with --save-stats
    Fid(FidArgs),
    /// KID (unbiased MMD², cubic kernel, 100 subsets) on duel's MNIST feature network, beside
    /// the real-vs-real baseline
    Kid(ScoreArgs),
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

#[derive(Args)]
pub struct FidArgs {
    #[command(flatten)]
    score: ScoreArgs,
    /// Score against these statistics instead of the held-out digits: an .npz holding mu [d] and
    /// sigma [d, d], as pytorch-fid and `np.savez(f, mu=mu, sigma=sigma)` write them (see
    /// docs/metrics.md)
    #[arg(long, value_name = "FILE.npz")]
    reference: Option<PathBuf>,
    /// Also write the statistics (mu, sigma; float64) of G's samples' features to this .npz,
    /// in pytorch-fid's format
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
        EvalMetric::Fid(a) => fid(a)?,
        EvalMetric::Kid(a) => score(a, duel::features::score::Metric::Kid)?,
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

/// `duel eval fid`: against the held-out digits, or against a statistics file; with
/// `--save-stats`, G's statistics written beside. Files are checked before anything runs.
fn fid(a: FidArgs) -> Result<()> {
    use duel::features::{FEATURE_DIM, score};
    use duel::metrics::stats_file::{read_stats, write_stats};
    if a.reference.is_none() && a.save_stats.is_none() {
        return self::score(a.score, score::Metric::Fid);
    }
    if let Some(out) = &a.save_stats {
        if out.extension().and_then(|e| e.to_str()) != Some("npz") {
            anyhow::bail!(
                "--save-stats {}: name the file .npz (NumPy's format for mu and sigma)",
                out.display()
            );
        }
        // As pytorch-fid's --save-stats: statistics already saved are never replaced.
        if out.exists() {
            anyhow::bail!(
                "--save-stats {}: the file exists; remove it or name another",
                out.display()
            );
        }
    }
    let reference = match &a.reference {
        Some(p) => Some(read_stats(p, Some(FEATURE_DIM))?),
        None => None,
    };
    let on = &a.score.on;
    let ck = on.load()?;
    score::require_digits(&ck, "FID")?;
    let (mut be, why) = on.backend()?;
    let start = std::time::Instant::now();
    let stats = score::generator_stats(be.as_mut(), &ck, a.score.samples, on.seed)?;
    match (&reference, &a.reference) {
        (Some(r), Some(path)) => {
            let fid = duel::metrics::frechet_distance(&stats, r)?;
            println!(
                "FID on duel's MNIST feature network ({FEATURE_DIM} features; not comparable \
                 with Inception-based numbers from papers)"
            );
            println!(
                "run: {} at iteration {}; {} samples of G (noise seed {}) against the \
                 statistics in {}",
                ck.config.dataset,
                ck.state.iteration,
                a.score.samples,
                on.seed,
                path.display()
            );
            println!("generator: FID {fid:.3}");
        }
        _ => {
            let r = score::score(
                be.as_mut(),
                &ck,
                score::Metric::Fid,
                a.score.samples,
                on.seed,
            )?;
            println!("{}", r.text);
        }
    }
    if let Some(out) = &a.save_stats {
        write_stats(out, &stats)?;
        println!(
            "wrote the statistics of {} samples ({FEATURE_DIM} features) to {}",
            a.score.samples,
            out.display()
        );
    }
    println!(
        "backend: {why}; {}",
        duel::train::fmt_duration(start.elapsed().as_secs_f64())
    );
    Ok(())
}

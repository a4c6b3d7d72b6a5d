//! The `duel` command: a thin layer over the library.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use duel::checkpoint::{self, Checkpoint};
use duel::config::{
    BackendName, GLossName, LossName, NoiseName, OptName, Preset, SnName, TrainConfig, UpdatesName,
};
use duel::data::Background;
use duel::init::{OutputBias, WeightInit};
use duel::sample::NoiseSource;
use duel::train::{RunOptions, default_run_dir, open_backend};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

mod cli;
use cli::eval::{EvalArgs, eval};
use cli::theory::{TheoryArgs, theory};

#[derive(Parser)]
#[command(
    name = "duel",
    version,
    about = "Train GANs on any GPU (Vulkan, Metal, DX12) or the CPU"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a GAN (Goodfellow et al. 2014, Algorithm 1); with no options, on the embedded MNIST digits.
    #[command(allow_negative_numbers = true)]
    Train(Box<TrainArgs>),
    /// Write fresh samples of a trained generator to a PNG grid or a NumPy .npy file.
    #[command(allow_negative_numbers = true)]
    Sample(SampleArgs),
    /// List the GPU adapters wgpu finds, with their key limits.
    Devices,
    /// Check the papers' theory on the project's kernels: the optimal discriminator, the value
    /// at the optimum (−log 4 + 2·JSD), the equilibrium D = 1/2, the saturating G loss; critics'
    /// estimates of W1, WGAN's Figure 2, spectral norm's σ and Lipschitz bound, and the gradient
    /// penalties' gradients.
    #[command(allow_negative_numbers = true)]
    Theory(TheoryArgs),
    /// Score a trained run: the paper's Parzen-window log-likelihood, or mode coverage.
    #[command(allow_negative_numbers = true)]
    Eval(EvalArgs),
    /// Write a run's generator, as `duel sample` runs it, to a standard ONNX model.
    Export(ExportArgs),
    /// Time every kernel on the GPU and the CPU path side by side, or whole training iterations.
    #[command(allow_negative_numbers = true)]
    Bench(duel::bench::BenchArgs),
    /// The feature network FID, KID, precision/recall and Stacked MNIST's mode counts use:
    /// reproduce it, or check its accuracy.
    #[command(allow_negative_numbers = true)]
    Features(duel::features::cli::FeaturesArgs),
}

/// Every training option. Unset options take the value of `--config`, else the preset's default.
#[derive(Args, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
struct TrainArgs {
    /// TOML file of training options (keys as the long options, e.g. lr-d = 2e-4); command-line
    /// options override it
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Run directory [default: runs/<date-time>]
    #[arg(long, value_name = "DIR")]
    #[serde(skip)]
    out: Option<PathBuf>,
    /// Continue the run in DIR from its last checkpoint (--steps may raise its length)
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "config"])]
    #[serde(skip)]
    resume: Option<PathBuf>,
    /// Overwrite a run already in --out
    #[arg(long)]
    #[serde(skip)]
    force: bool,
    /// Print only errors
    #[arg(long)]
    #[serde(skip)]
    quiet: bool,

    /// Model and defaults [default: dcgan for 28×28 images (dcgan32, dcgan64 at --image-size 32, 64; mlp at other sides), small for ring8/grid25]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    preset: Option<Preset>,
    /// The network an objective preset (wgan, wgan-gp, sngan, lsgan, ttur) trains: mlp,
    /// mlp-dropout, small, dcgan, dcgan32 or dcgan64 [default: the dataset's default model]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<Preset>,
    /// mnist (embedded), stacked-mnist (three embedded digits as R, G, B), ring8, grid25, IDX
    /// images (file or folder, .gz ok), cifar10:DIR (CIFAR-10's binary files) or a folder of
    /// PNG/JPEG images [default: mnist]
    #[arg(long, value_name = "NAME|PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset: Option<String>,
    /// Train a class-conditional GAN on the data's labels (the embedded digits', an IDX label
    /// file beside the images, or an image folder's class subfolders): G takes a class
    /// embedding, D is a projection discriminator; `duel sample --class C` then draws class C
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    conditional: bool,
    /// CIFAR-10's split to train on: train (data_batch_1..5.bin) or test (test_batch.bin)
    /// [default: train]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    split: Option<duel::data::cifar::Split>,
    /// Skip an image folder's files that cannot be decoded (truncated or corrupt), counting
    /// them in a warning, instead of stopping at the first
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    skip_bad_images: bool,
    /// Channels an image folder is converted to: 1 (gray) or 3 (RGB) [default: 1; CIFAR-10 3]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    channels: Option<usize>,
    /// Side an image folder is resized and centre-cropped to, at most 1024 [default: 28;
    /// dcgan32 32, dcgan64 64]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    image_size: Option<usize>,
    /// What an image folder's transparent pixels are composited onto [default: white]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    background: Option<Background>,
    /// Training iterations, each k D-updates and one G-update [default: 6000; small 10000; progan
    /// to the end of its growth: (2·doublings + 1) phases of --phase-images]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<u64>,
    /// Minibatch size [default: 64; paper 100; small 512; progan 16]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<usize>,
    /// D-updates per G-update (the WGAN papers' n_critic) [default: 1; wgan, wgan-gp, sngan,
    /// sngan-resnet32 5]
    #[arg(long, visible_alias = "n-critic")]
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<usize>,
    /// The losses of D and G [default: original; wgan, wgan-gp: wasserstein; sngan: hinge;
    /// lsgan: least-squares]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<LossName>,
    /// alternating (Algorithm 1: k D-updates, then a G-update on fresh noise) or simultaneous
    /// (the paper's code: both gradients from one batch before either update; needs --k 1)
    /// [default: alternating; paper simultaneous]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    updates: Option<UpdatesName>,
    /// Generator loss of --loss original: −log D(G(z)) or the paper's minimax log(1 − D(G(z)))
    /// [default: non-saturating]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    g_loss: Option<GLossName>,
    /// WGAN-GP's gradient penalty weight λ on interpolates of real and generated samples; 0 = off
    /// [default: 0; wgan-gp 10]
    #[arg(long, value_name = "λ")]
    #[serde(skip_serializing_if = "Option::is_none")]
    gp: Option<f32>,
    /// R1's gradient penalty weight γ on real samples; 0 = off [default: 0]
    #[arg(long, value_name = "γ")]
    #[serde(skip_serializing_if = "Option::is_none")]
    r1: Option<f32>,
    /// Clip D's weights to [−c, c] after every update; 0 = off [default: 0; wgan 0.01]
    #[arg(long, value_name = "c")]
    #[serde(skip_serializing_if = "Option::is_none")]
    clip: Option<f32>,
    /// ProGAN's drift term: add ε·E[D(x)²] to D's loss, keeping a critic's outputs near 0
    /// [default: 0; progan 0.001]
    #[arg(long, value_name = "ε")]
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<f32>,
    /// DiffAugment (Zhao et al. 2020) of everything D sees while training, real and generated
    /// alike: none, or a list of color, translation, cutout. Keeps D from memorising a small
    /// image set [default: none; dcgan32, dcgan64, sagan32-dcgan, and sngan-resnet32 and sagan32 on
    /// an image folder: color,translation,cutout]
    #[arg(long, value_name = "LIST")]
    #[serde(skip_serializing_if = "Option::is_none")]
    augment: Option<String>,
    /// Spectral normalization of every weight layer of D, or of G and D [default: none; sngan,
    /// sngan-resnet32 d; sagan32, sagan32-dcgan both]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    sn: Option<SnName>,
    /// Generator optimizer [default: adam; paper sgd; wgan rmsprop]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    opt_g: Option<OptName>,
    /// Discriminator optimizer [default: adam; paper sgd; wgan rmsprop]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    opt_d: Option<OptName>,
    /// Generator learning rate (TTUR: may differ from D's) [default: 2e-4; paper 0.1; small 1e-3]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    lr_g: Option<f32>,
    /// Discriminator learning rate [default: 2e-4; paper 0.05 (the original's 0.1 on half this D loss); small 1e-3]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    lr_d: Option<f32>,
    /// Adam β1 [default: 0.5]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    beta1: Option<f32>,
    /// Adam β2 [default: 0.999]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    beta2: Option<f32>,
    /// SGD momentum [default: 0.5]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    momentum: Option<f32>,
    /// Noise prior p_z per dimension: U(−1, 1), N(0, 1), or U(−√3, √3) (unit variance, the paper
    /// code's uniform) [default: normal]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    noise: Option<NoiseName>,
    /// Noise dimension [default: 100; small 8]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    noise_dim: Option<usize>,
    /// G's initialisation: default (PyTorch's), uniform:R (weights in [−R, R], biases 0) or
    /// normal:S (weights N(0, S²), biases 0) [default: default; paper uniform:0.05]
    #[arg(long, value_name = "INIT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    init_g: Option<WeightInit>,
    /// D's initialisation, as --init-g [default: default; paper uniform:0.005]
    #[arg(long, value_name = "INIT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    init_d: Option<WeightInit>,
    /// G's output bias: init (as --init-g draws it) or marginals (the logit of each pixel's
    /// mean over the training images, as pylearn2's init_sigmoid_bias_from_marginals)
    /// [default: init; paper marginals]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    g_output_bias: Option<OutputBias>,
    /// Divide the learning rates by this after every update (pylearn2's ExponentialDecay)
    /// [default: 1, constant; paper 1.000004]
    #[arg(long, value_name = "FACTOR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    lr_decay: Option<f64>,
    /// The learning rates' floor under --lr-decay [default: 0; paper 1e-6]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    lr_min: Option<f32>,
    /// Ramp SGD's momentum linearly from --momentum to this between epochs --momentum-start
    /// and --momentum-saturate (pylearn2's MomentumAdjustor) [default: none; paper 0.7]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    momentum_final: Option<f32>,
    /// Epoch (1 = the first) the momentum ramp starts [default: 1]
    #[arg(long, value_name = "EPOCH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    momentum_start: Option<u64>,
    /// Epoch the momentum ramp reaches --momentum-final [default: 1; paper 250]
    #[arg(long, value_name = "EPOCH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    momentum_saturate: Option<u64>,
    /// Train on the first N images of the dataset only (the paper: 50000 of MNIST's 60,000)
    /// [default: all]
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
    /// Decay of the moving average of G's weights that samples are drawn from; 0 samples the raw
    /// weights [default: 0.999; paper 0]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    ema: Option<f32>,
    /// PacGAN packing: D judges this many samples at once, which counters mode collapse; --batch
    /// must be a multiple [default: 1; small 2]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pack: Option<usize>,
    /// The convolutional presets' width: the channels of G's last hidden layer and of D's first,
    /// doubling towards the middle [default: 64]
    #[arg(long, value_name = "W")]
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<usize>,
    /// Progressive growing (--preset progan): images per fade-in and per stabilisation phase
    /// [default: 40000]
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    phase_images: Option<u64>,
    /// Random seed for weights, noise, batches and dropout [default: 1]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    /// Every N iterations, measure FID (1×28×28 runs) or Stacked MNIST's modes and KL with the
    /// feature network into metrics.csv and the plots [default: never]
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    eval_every: Option<u64>,
    /// Samples of G each --eval-every measurement takes [default: 2000 for FID, 10000 for modes]
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    eval_samples: Option<usize>,
    /// Print and record losses every N iterations [default: 100; small 500]
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_every: Option<u64>,
    /// Write a sample grid every N iterations [default: 1000; small 500]
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_every: Option<u64>,
    /// Write a checkpoint every N iterations [default: 1000]
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoint_every: Option<u64>,
    /// auto: a hardware GPU if there is one, else the CPU path; gpu: any adapter, lavapipe
    /// included; cpu [default: auto]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    backend: Option<BackendName>,
    /// Adapter by index, backend (vulkan, metal, dx12, gl) or name substring; also DUEL_ADAPTER
    /// [default: the best one]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    adapter: Option<String>,
}

#[derive(Args)]
struct SampleArgs {
    /// Run directory to sample (uses its checkpoint.safetensors)
    #[arg(long, value_name = "DIR", required_unless_present = "checkpoint")]
    run: Option<PathBuf>,
    /// Checkpoint file to sample, in place of --run
    #[arg(long, value_name = "FILE", conflicts_with = "run")]
    checkpoint: Option<PathBuf>,
    /// Number of samples (default 64; with --z, the rows of the noise file)
    #[arg(long)]
    count: Option<usize>,
    /// Output file: .png (grid, or scatter plot for 2D sets) or .npy (float32 [N,C,H,W] in [0,1],
    /// or [N,2])
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Seed of the noise
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The noise rows to use instead of drawing them: a float32 .npy array of shape
    /// [N, noise-dim], so a sample can be reproduced elsewhere (see README, "Using a checkpoint
    /// from Python")
    #[arg(long, value_name = "FILE.npy", conflicts_with = "seed")]
    z: Option<PathBuf>,
    /// Spherical interpolations between random noise vectors instead: a .png grid of 8 walks of
    /// N steps each, and an animated GIF of looping walks beside it (same name, .gif)
    #[arg(long, value_name = "N", conflicts_with_all = ["z", "count"])]
    interpolate: Option<usize>,
    /// A conditional run's class to draw: its number (0..K−1) or, for an image folder's
    /// classes, its name [default: every class, one row each in a .png; in turn in a .npy,
    /// whose labels are written beside it as <name>_labels.npy]
    #[arg(long, value_name = "C")]
    class: Option<String>,
    /// auto, gpu or cpu
    #[arg(long, value_enum, default_value_t = BackendName::Auto)]
    backend: BackendName,
    /// Adapter by index, backend or name substring
    #[arg(long, default_value = "")]
    adapter: String,
}

#[derive(Args)]
struct ExportArgs {
    /// Run directory to export (uses its checkpoint.safetensors)
    #[arg(long, value_name = "DIR", required_unless_present = "checkpoint")]
    run: Option<PathBuf>,
    /// Checkpoint file to export, in place of --run
    #[arg(long, value_name = "FILE", conflicts_with = "run")]
    checkpoint: Option<PathBuf>,
    /// The ONNX file to write (opset 17; inputs `noise` [N, noise-dim] and, for a conditional
    /// run, `class` int64 [N]; output `images` [N, C, H, W] in [0, 1]; see docs/export.md)
    #[arg(long, value_name = "FILE")]
    onnx: PathBuf,
}

fn export(args: ExportArgs) -> Result<()> {
    let path = match (&args.checkpoint, &args.run) {
        (Some(f), _) => f.clone(),
        (None, Some(dir)) => dir.join(checkpoint::FILE_NAME),
        (None, None) => bail!("pass --run DIR or --checkpoint FILE"),
    };
    if args.onnx.extension().and_then(|e| e.to_str()) != Some("onnx") {
        bail!(
            "{}: name the output .onnx (it is an ONNX model)",
            args.onnx.display()
        );
    }
    let ck = Checkpoint::load(&path)?;
    duel::onnx::export_generator(&ck, &args.onnx)?;
    println!(
        "wrote the generator at iteration {} to {}",
        ck.state.iteration,
        args.onnx.display()
    );
    Ok(())
}

fn train(args: TrainArgs) -> Result<()> {
    let cli = duel::config::options_table(&args)?;
    let (cfg, opts) = if let Some(dir) = &args.resume {
        if let Some(k) = duel::run_dir::IDENTITY_KEYS
            .iter()
            .find(|k| cli.contains_key(**k))
        {
            bail!(
                "--{k} cannot change when resuming; the run keeps its own (see {}/config.toml)",
                dir.display()
            );
        }
        let ck = Checkpoint::load(&dir.join(checkpoint::FILE_NAME))?;
        let mut table = toml::Table::try_from(&ck.config).expect("config serializes");
        if cli.contains_key("backend") && !cli.contains_key("adapter") {
            // The run's adapter went with its backend; a new --backend picks afresh.
            table.remove("adapter");
        }
        table.extend(cli);
        let cfg = TrainConfig::resolve(None, table)?;
        let opts = RunOptions {
            out: dir.clone(),
            force: false,
            resume: true,
            quiet: args.quiet,
        };
        (cfg, opts)
    } else {
        let text = match &args.config {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("{}: cannot read the config file", p.display()))?,
            ),
            None => None,
        };
        let origin = args
            .config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let cfg = TrainConfig::resolve(text.as_deref().map(|t| (t, origin.as_str())), cli)?;
        let out = args.out.clone().unwrap_or_else(default_run_dir);
        (
            cfg,
            RunOptions {
                out,
                force: args.force,
                resume: false,
                quiet: args.quiet,
            },
        )
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("duel: second interrupt, exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("duel: interrupted; saving a checkpoint (Ctrl-C again to quit at once)");
    })
    .context("installing the Ctrl-C handler")?;
    let summary = duel::train::train(&cfg, &opts, stop)?;
    if summary.stopped_early {
        bail!("interrupted at iteration {}", summary.iterations);
    }
    Ok(())
}

fn sample(args: SampleArgs) -> Result<()> {
    let path = match (&args.checkpoint, &args.run) {
        (Some(f), _) => f.clone(),
        (None, Some(dir)) => dir.join(checkpoint::FILE_NAME),
        (None, None) => bail!("pass --run DIR or --checkpoint FILE"),
    };
    if args.count == Some(0) {
        bail!("--count must be at least 1");
    }
    let ck = Checkpoint::load(&path)?;
    if let Some(steps) = args.interpolate {
        if args.out.extension().and_then(|e| e.to_str()) != Some("png") {
            bail!(
                "{}: --interpolate writes a .png grid (and a .gif beside it); name the output .png",
                args.out.display()
            );
        }
        let class = duel::sample::classes_for(&ck, args.class.as_deref(), 1)?
            .filter(|_| args.class.is_some())
            .map(|c| c[0]);
        let (mut be, _) = open_backend(args.backend, &args.adapter)?;
        let gif = duel::interpolate::write_interpolations(
            &ck,
            be.as_mut(),
            steps,
            args.seed,
            class,
            &args.out,
        )?;
        println!(
            "wrote {} walks of {steps} steps to {} and an animation to {}",
            duel::interpolate::ROWS,
            args.out.display(),
            gif.display()
        );
        return Ok(());
    }
    let noise = match &args.z {
        None => NoiseSource::Seed {
            count: args.count.unwrap_or(64),
            seed: args.seed,
        },
        Some(f) => {
            let (shape, z) = duel::output::read_npy_f32(f)?;
            let zdim = ck.config.noise_dim;
            if shape.len() != 2 || shape[1] != zdim {
                bail!(
                    "{}: noise of shape {shape:?}; this generator takes [N, {zdim}]",
                    f.display()
                );
            }
            if let Some(i) = z.iter().position(|v| !v.is_finite()) {
                bail!(
                    "{}: row {}, column {} is {}; the noise must be finite numbers",
                    f.display(),
                    i / zdim,
                    i % zdim,
                    z[i]
                );
            }
            if args.count.is_some_and(|c| c != shape[0]) {
                bail!(
                    "--count {} disagrees with the {} rows of {}; drop --count",
                    args.count.unwrap_or(0),
                    shape[0],
                    f.display()
                );
            }
            NoiseSource::Rows(z)
        }
    };
    let count = match &noise {
        NoiseSource::Seed { count, .. } => *count,
        NoiseSource::Rows(z) => z.len() / ck.config.noise_dim.max(1),
    };
    let png = args.out.extension().and_then(|e| e.to_str()) == Some("png");
    let (mut be, _) = open_backend(args.backend, &args.adapter)?;
    // A conditional run's .png without --class: one row per class, the same noise down each
    // column.
    if png && ck.config.conditional && args.class.is_none() && args.z.is_none() {
        let k = ck.config.classes.min(duel::train::CLASS_ROWS);
        let cols = args.count.map_or(8, |c| c.div_ceil(k)).clamp(1, 64);
        let classes: Vec<u32> = (0..k * cols).map(|i| (i / cols) as u32).collect();
        let mut z = Vec::new();
        let zdim = ck.config.noise_dim;
        let col_noise = duel::sample::seed_noise(&ck, cols, args.seed)?;
        for _ in 0..k {
            z.extend_from_slice(&col_noise[..cols * zdim]);
        }
        let noise = NoiseSource::Rows(z);
        let x = duel::sample::generate_classes(&ck, be.as_mut(), &noise, Some(&classes))?;
        duel::sample::write_class_grid(&ck, &x, k * cols, cols, &args.out)?;
        println!(
            "wrote {k} rows (one per class) of {cols} samples to {}",
            args.out.display()
        );
        return Ok(());
    }
    let classes = duel::sample::classes_for(&ck, args.class.as_deref(), count)?;
    let count = duel::sample::write_drawn(&ck, be.as_mut(), &noise, classes.as_deref(), &args.out)?;
    match (&classes, png) {
        (Some(_), false) => println!(
            "wrote {count} samples to {} and their classes to {}",
            args.out.display(),
            duel::sample::labels_path(&args.out).display()
        ),
        _ => println!("wrote {count} samples to {}", args.out.display()),
    }
    Ok(())
}

fn devices() -> Result<()> {
    let adapters = duel::gpu::list_adapters();
    if adapters.is_empty() {
        bail!(
            "no GPU adapter found. On Linux without a GPU install Mesa's lavapipe \
             (apt-get install mesa-vulkan-drivers libvulkan1); duel train also runs on the CPU"
        );
    }
    for a in adapters {
        println!("{a}");
    }
    Ok(())
}

fn main() -> ExitCode {
    // Mesa's Vulkan and GL drivers complain on every start when this is unset (headless Linux).
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: at the top of main, before any thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train(*a),
        Command::Sample(a) => sample(a),
        Command::Devices => devices(),
        Command::Theory(a) => theory(a),
        Command::Eval(a) => eval(a),
        Command::Export(a) => export(a),
        Command::Bench(a) => duel::bench::run(&a),
        Command::Features(a) => duel::features::cli::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! The `duel` command: a thin layer over the library.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use duel::checkpoint::{self, Checkpoint};
use duel::config::{BackendName, TrainConfig};
use duel::sample::NoiseSource;
use duel::train::{RunOptions, default_run_dir, open_backend};
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

/// `duel train`: where the run goes (these options) and the run's options, which are
/// `TrainConfig`'s fields, declared there once. Unset options take the value of `--config`, else
/// the preset's default.
struct TrainArgs {
    run: TrainRunArgs,
    /// The whole command line, read by `duel::config::passed_options` for the options it set.
    matches: clap::ArgMatches,
}

impl clap::FromArgMatches for TrainArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self {
            run: TrainRunArgs::from_arg_matches(m)?,
            matches: m.clone(),
        })
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for TrainArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        TrainConfig::augment_args(TrainRunArgs::augment_args(cmd))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// Where a training run goes, and how it talks.
#[derive(Args)]
struct TrainRunArgs {
    /// TOML file of training options (keys as the long options, e.g. lr-d = 2e-4); command-line
    /// options override it
    #[arg(long, help_heading = "Run", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run directory [default: runs/<date-time>]
    #[arg(long, help_heading = "Run", value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in DIR from its last checkpoint (--steps may raise its length)
    #[arg(long, help_heading = "Run", value_name = "DIR", conflicts_with_all = ["out", "config"])]
    resume: Option<PathBuf>,
    /// Overwrite a run already in --out
    #[arg(long, help_heading = "Run")]
    force: bool,
    /// Print only errors
    #[arg(long, help_heading = "Run")]
    quiet: bool,
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
    /// [N, noise-dim], so a sample can be reproduced elsewhere (see docs/outputs.md, "Using a
    /// checkpoint from Python")
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
    let cli = duel::config::passed_options(&args.matches)?;
    let args = args.run;
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
    use duel::cpu::simd;
    println!(
        "cpu: {} threads, vector unit {:?} (of {:?} detected; DUEL_CPU_SIMD)",
        rayon::current_num_threads(),
        simd::level(),
        simd::detected()
    );
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

/// A command-line error as one line: clap's message, its possible values and tip, without the
/// usage block (`duel CMD --help` prints that).
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .fold(String::new(), |line, part| match line.as_str() {
            "" => part.to_string(),
            _ if line.ends_with(':') => format!("{line} {part}"),
            _ => format!("{line}; {part}"),
        })
}

fn main() -> ExitCode {
    // Mesa's Vulkan and GL drivers complain on every start when this is unset (headless Linux).
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: at the top of main, before any thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print as clap writes them.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("error: {}", one_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
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

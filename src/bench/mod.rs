//! `duel bench kernels` and `duel bench train`: what every kernel and a whole training iteration
//! cost on the GPU and on the CPU path, side by side, as a table or as JSON lines.
//!
//! Timing rules: warm-up first; each figure is the median of repeated runs with the spread
//! (min–max) next to it. GPU kernel times come from timestamp queries when the adapter has
//! them, else from wall-clock over many dispatches with one wait at the end.

pub mod kernels;
pub mod train;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

pub use kernels::{KernelRow, bench_kernels};
pub use train::{ProfileRow, TrainRow, bench_train};

/// Which backends a benchmark runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Which {
    Cpu,
    Gpu,
    Both,
}

impl Which {
    pub fn cpu(self) -> bool {
        matches!(self, Which::Cpu | Which::Both)
    }
    pub fn gpu(self) -> bool {
        matches!(self, Which::Gpu | Which::Both)
    }
}

/// Options shared by both benchmarks.
#[derive(Args, Clone, Debug)]
pub struct CommonOpts {
    /// Backends to measure.
    #[arg(long, value_enum, default_value = "both")]
    pub backend: Which,
    /// GPU adapter: index, backend name or part of its name (default: DUEL_ADAPTER, else best).
    #[arg(long)]
    pub adapter: Option<String>,
    /// One JSON object per row instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Timed repeats per figure (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
}

#[derive(Args, Clone, Debug)]
pub struct KernelOpts {
    #[command(flatten)]
    pub common: CommonOpts,
    /// Only rows whose kernel or shape contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Minimum time of one timed repeat, in milliseconds.
    #[arg(long, default_value_t = 50.0)]
    pub min_ms: f64,
    /// Wall-clock GPU timing even when timestamp queries exist.
    #[arg(long)]
    pub wall: bool,
    /// Time every GPU variant of the matmul, the convolutions and the batched matmul the adapter
    /// can run, not only the one picked at start-up.
    #[arg(long)]
    pub all_variants: bool,
}

#[derive(Args, Clone, Debug)]
pub struct TrainOpts {
    #[command(flatten)]
    pub common: CommonOpts,
    /// Models to train: mlp, paper, dcgan, dcgan32 (the peers' specs), sngan-resnet32, sagan32
    /// (as `duel train` trains them on CIFAR-10: their losses, spectral norm and critic updates).
    #[arg(long, value_delimiter = ',', default_value = "mlp,paper")]
    pub preset: Vec<String>,
    /// Channel width of the convolutional presets (64, the papers' and the peers', when unset).
    #[arg(long)]
    pub width: Option<usize>,
    /// Batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "64,256")]
    pub batch: Vec<usize>,
    /// Warm-up iterations before timing.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Minimum seconds per timed window (each window is a whole number of iterations).
    #[arg(long, default_value_t = 2.0)]
    pub window_secs: f64,
    /// Per-kernel GPU time of one iteration from timestamp queries, slowest first.
    #[arg(long)]
    pub profile: bool,
}

#[derive(Subcommand, Clone, Debug)]
pub enum BenchCommand {
    /// Every kernel of the compute core, GPU and CPU side by side.
    Kernels(KernelOpts),
    /// Iterations per second of the benchmark presets on each backend.
    Train(TrainOpts),
}

/// `duel bench …`: mount with `#[command(subcommand)] bench: BenchCommand` or flatten `BenchArgs`.
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Parser, Debug)]
#[command(
    name = "duel bench",
    about = "Benchmarks of duel's kernels and training"
)]
struct BenchCli {
    #[command(flatten)]
    args: BenchArgs,
}

/// Parses `args` (program name first, then `kernels …` or `train …`) and runs the benchmark.
pub fn run_cli(args: &[String]) -> Result<()> {
    let cli = BenchCli::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        anyhow::anyhow!("invalid benchmark arguments")
    })?;
    run(&cli.args)
}

/// Runs a parsed `duel bench` command, printing its table or JSON lines to stdout.
pub fn run(args: &BenchArgs) -> Result<()> {
    match &args.command {
        BenchCommand::Kernels(o) => {
            let rows = bench_kernels(o, &mut |row| {
                if o.common.json {
                    print_json(row);
                }
            })?;
            if !o.common.json {
                kernels::print_table(&rows);
            }
        }
        BenchCommand::Train(o) => {
            let (rows, profile) = bench_train(o, &mut |row| {
                if o.common.json {
                    print_json(row);
                }
            })?;
            if o.common.json {
                for p in &profile {
                    print_json(p);
                }
            } else {
                train::print_table(&rows);
                train::print_profile(&profile);
            }
        }
    }
    Ok(())
}

pub fn print_json<T: Serialize>(row: &T) {
    println!(
        "{}",
        serde_json::to_string(row).expect("rows serialize to JSON")
    );
}

/// Median and spread of repeated measurements.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn of(samples: &[f64]) -> Stat {
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        if s.is_empty() {
            return Stat::default();
        }
        let mid = s.len() / 2;
        let median = if s.len() % 2 == 1 {
            s[mid]
        } else {
            0.5 * (s[mid - 1] + s[mid])
        };
        Stat {
            median,
            min: s[0],
            max: s[s.len() - 1],
        }
    }

    /// Half the min–max range as a percentage of the median.
    pub fn spread_pct(&self) -> f64 {
        if self.median > 0.0 {
            50.0 * (self.max - self.min) / self.median
        } else {
            0.0
        }
    }
}

/// The 1-minute load average, recorded next to every measurement on a shared machine.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU seconds (user + system, all threads) this process has used, from /proc/self/stat: on a
/// shared machine a steadier measure of the work done than wall-clock time.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

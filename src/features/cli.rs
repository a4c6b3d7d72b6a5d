//! `duel features train` (reproduce the shipped feature network, or train another) and `duel
//! features check` (a network's held-out accuracy).

use super::train::{TrainOptions, train, train_cpu};
use super::{FeatureNet, Weights, accuracy, unit_rows};
use crate::config::BackendName;
use crate::data::dataset::embedded_mnist;
use crate::train::{fmt_duration, open_backend};
use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct FeaturesArgs {
    #[command(subcommand)]
    pub command: FeaturesCommand,
}

#[derive(Subcommand)]
pub enum FeaturesCommand {
    /// Train the feature network on the embedded training digits; with the default options on
    /// the CPU path this reproduces the shipped one bit for bit
    Train(TrainArgs),
    /// Held-out accuracy of the shipped feature network (or of --weights) on the embedded set's
    /// 1,000 held-out digits
    Check(CheckArgs),
}

#[derive(Args)]
pub struct TrainArgs {
    /// Where to write the weights (.safetensors)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Passes over the 7,000 training digits
    #[arg(long, default_value_t = TrainOptions::default().epochs)]
    pub epochs: usize,
    #[arg(long, default_value_t = TrainOptions::default().batch)]
    pub batch: usize,
    /// Adam's initial learning rate, cosine-annealed to 0
    #[arg(long, default_value_t = TrainOptions::default().lr)]
    pub lr: f32,
    #[arg(long, default_value_t = TrainOptions::default().seed)]
    pub seed: u64,
    /// Largest random shift of a digit, in pixels, on each axis
    #[arg(long, default_value_t = TrainOptions::default().shift)]
    pub shift: usize,
    /// Train on the first N training digits only
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// cpu (reproducible: a pool of 2 threads), gpu or auto
    #[arg(long, value_enum, default_value_t = BackendName::Cpu)]
    pub backend: BackendName,
    /// Print only errors
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct CheckArgs {
    /// A feature network written by duel features train [default: the shipped one]
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// auto, gpu or cpu
    #[arg(long, value_enum, default_value_t = BackendName::Auto)]
    pub backend: BackendName,
}

pub fn run(args: FeaturesArgs) -> Result<()> {
    match args.command {
        FeaturesCommand::Train(a) => train_command(a),
        FeaturesCommand::Check(a) => check_command(a),
    }
}

fn train_command(a: TrainArgs) -> Result<()> {
    let opts = TrainOptions {
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        shift: a.shift,
        limit: a.limit,
    };
    let quiet = a.quiet;
    let mut report = move |r: &super::train::EpochReport| {
        if !quiet {
            println!(
                "epoch {:>3}/{} | loss {:.4} | train accuracy {:.2}% | held-out {:.2}% | {:.1} s",
                r.epoch,
                opts.epochs,
                r.loss,
                100.0 * r.train_accuracy,
                100.0 * r.heldout_accuracy,
                r.seconds
            );
        }
    };
    let start = Instant::now();
    let w = if a.backend == BackendName::Cpu {
        if !quiet {
            println!(
                "training the feature network on the CPU path ({} threads)",
                super::train::THREADS
            );
        }
        train_cpu(&opts, &mut report)?
    } else {
        let (mut be, why) = open_backend(a.backend, "")?;
        if !quiet {
            println!("training the feature network; backend: {why}");
        }
        train(be.as_mut(), &opts, &mut report)?
    };
    w.save(&a.out)?;
    if !quiet {
        println!(
            "wrote {} (held-out accuracy {}) in {}",
            a.out.display(),
            w.info["heldout_accuracy"],
            fmt_duration(start.elapsed().as_secs_f64())
        );
    }
    Ok(())
}

fn check_command(a: CheckArgs) -> Result<()> {
    let w = match &a.weights {
        Some(p) => Weights::load(p)?,
        None => Weights::shipped()?,
    };
    let (mut be, why) = open_backend(a.backend, "")?;
    let mut net = FeatureNet::new(be.as_mut(), &w, super::EVAL_BATCH)?;
    let (_, heldout) = embedded_mnist()?;
    let labels = heldout
        .labels
        .clone()
        .expect("the embedded digits have labels");
    let predicted = net.classify(be.as_mut(), &unit_rows(&heldout))?;
    let which = match &a.weights {
        Some(p) => p.display().to_string(),
        None => "the shipped feature network".into(),
    };
    println!(
        "{which}: held-out accuracy {:.2}% ({} of {} digits); backend: {why}",
        100.0 * accuracy(&predicted, &labels),
        predicted
            .iter()
            .zip(&labels)
            .filter(|(p, l)| p == l)
            .count(),
        labels.len()
    );
    Ok(())
}

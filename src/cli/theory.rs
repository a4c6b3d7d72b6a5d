//! `duel theory`: numerical checks of the paper's claims.

use anyhow::{Result, bail};
use clap::Args;
use duel::config::BackendName;
use duel::train::open_backend;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TheoryCheck {
    /// Every check
    All,
    /// D against D* = p_data/(p_data + p_g), and V(D, G) against −log 4 + 2·JSD
    OptimalD,
    /// p_g = p_data gives D = 1/2
    Equilibrium,
    /// Gradients reaching G under log(1 − D(G(z))) and −log D(G(z))
    Saturation,
    /// Critics with weight clipping, gradient penalty and spectral norm estimate W1
    Wasserstein,
    /// WGAN's Figure 2: far from p_data the saturated D's gradient vanishes, the critic's does not
    WganFigure2,
    /// Spectral norm's σ against an SVD, and an SN critic's Lipschitz constant ≤ 1
    SpectralNorm,
    /// WGAN-GP's and R1's gradients w.r.t. D's weights against finite differences
    PenaltyGradient,
    /// The checks of Goodfellow et al. 2014 only
    Gan,
    /// The checks of the WGAN, WGAN-GP, SN and R1 papers only
    Fixes,
}

#[derive(Args)]
pub struct TheoryArgs {
    /// Which check to run
    #[arg(long, value_enum, default_value_t = TheoryCheck::All)]
    check: TheoryCheck,
    /// Discriminator updates per check
    #[arg(long, default_value_t = duel::theory::TheoryOptions::default().steps)]
    steps: usize,
    /// Real samples per update (and as many of G; half as many in the equilibrium check); the
    /// critics of the Wasserstein, Figure 2 and spectral-norm checks take twice the steps and batch
    #[arg(long, default_value_t = duel::theory::TheoryOptions::default().batch)]
    batch: usize,
    /// Adam learning rate of D, cosine-annealed
    #[arg(long, default_value_t = duel::theory::TheoryOptions::default().lr)]
    lr: f32,
    /// Seed of the weights and samples
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for the plots (optimal_d.png, equilibrium.png)
    #[arg(long, value_name = "DIR", default_value = "runs/theory")]
    out: PathBuf,
    /// gpu (any adapter, lavapipe included), cpu, or auto (a hardware GPU, else the CPU)
    #[arg(long, value_enum, default_value_t = BackendName::Gpu)]
    backend: BackendName,
    /// Adapter by index, backend or name substring
    #[arg(long, default_value = "")]
    adapter: String,
}

pub fn theory(args: TheoryArgs) -> Result<()> {
    use duel::theory::{Check, TheoryOptions};
    const GAN: [Check; 3] = [Check::OptimalD, Check::Equilibrium, Check::Saturation];
    const FIXES: [Check; 4] = [
        Check::Wasserstein,
        Check::WganFigure2,
        Check::SpectralNorm,
        Check::PenaltyGradient,
    ];
    let opts = TheoryOptions {
        steps: args.steps,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
    };
    let checks = match args.check {
        TheoryCheck::All => [&GAN[..], &FIXES[..]].concat(),
        TheoryCheck::Gan => GAN.to_vec(),
        TheoryCheck::Fixes => FIXES.to_vec(),
        TheoryCheck::Wasserstein => vec![Check::Wasserstein],
        TheoryCheck::WganFigure2 => vec![Check::WganFigure2],
        TheoryCheck::SpectralNorm => vec![Check::SpectralNorm],
        TheoryCheck::PenaltyGradient => vec![Check::PenaltyGradient],
        TheoryCheck::OptimalD => vec![Check::OptimalD],
        TheoryCheck::Equilibrium => vec![Check::Equilibrium],
        TheoryCheck::Saturation => vec![Check::Saturation],
    };
    let (mut be, why) = open_backend(args.backend, &args.adapter)?;
    println!(
        "duel theory: the claims of Goodfellow et al. 2014 and of the papers that fixed its \
         failures, checked on the project's kernels"
    );
    println!("backend: {why}");
    println!(
        "D of the GAN checks: {}, Adam {} (cosine-annealed), {} updates of {} real and {} \
         generated samples; the critics of the others train twice as long on twice the batch\n",
        duel::theory::describe(duel::theory::discriminator_spec()),
        opts.lr,
        opts.steps,
        opts.batch,
        opts.batch
    );
    let start = std::time::Instant::now();
    let verdicts = duel::theory::run(be.as_mut(), &opts, &checks, Some(&args.out), &mut |v| {
        println!("{v}\n")
    })?;
    let passed = verdicts.iter().filter(|v| v.passed).count();
    println!(
        "{passed} of {} checks passed in {}",
        verdicts.len(),
        duel::train::fmt_duration(start.elapsed().as_secs_f64())
    );
    if passed < verdicts.len() {
        bail!(
            "{} of {} checks failed (see FAIL above)",
            verdicts.len() - passed,
            verdicts.len()
        );
    }
    Ok(())
}

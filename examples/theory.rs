//! The paper's theory checks (`duel theory` without the CLI): on the GPU by default, or on the
//! CPU with `cargo run --release --example theory -- cpu`. Plots go to `runs/theory`.

use duel::Backend;
use duel::theory::{self, Check, TheoryOptions};

fn main() -> anyhow::Result<()> {
    let mut be: Box<dyn Backend> = match std::env::args().nth(1).as_deref() {
        Some("cpu") => Box::new(duel::CpuBackend::new()),
        _ => Box::new(duel::GpuBackend::new(None)?),
    };
    println!("backend: {}", be.name());
    let checks = [Check::OptimalD, Check::Equilibrium, Check::Saturation];
    let out = std::path::Path::new("runs/theory");
    let verdicts = theory::run(
        be.as_mut(),
        &TheoryOptions::default(),
        &checks,
        Some(out),
        &mut |v| println!("{v}\n"),
    )?;
    let passed = verdicts.iter().filter(|v| v.passed).count();
    println!("{passed} of {} checks passed", verdicts.len());
    if passed < verdicts.len() {
        std::process::exit(1);
    }
    Ok(())
}

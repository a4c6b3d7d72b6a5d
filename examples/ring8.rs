//! Train a small GAN on the 8-Gaussian ring and save a scatter plot of its samples.
//!
//!     cargo run --release --example ring8 [-- gpu]
//!
//! Uses the library directly: data, backend, networks, Algorithm 1, samples.

use duel::backend::Backend;
use duel::data::Mixture2d;
use duel::gan::{DeviceData, Gan, GanConfig, GeneratorLoss, Noise, Schedule, Updates};
use duel::model::{Layer, NetSpec, Optimizer};
use duel::{CpuBackend, GpuBackend, output};

fn main() -> anyhow::Result<()> {
    let mut be: Box<dyn Backend> = match std::env::args().nth(1).as_deref() {
        Some("gpu") => Box::new(GpuBackend::new(None)?),
        _ => Box::new(CpuBackend::new()),
    };
    let be = be.as_mut();

    // 100k points of the ring, resident on the backend; batches are gathered there.
    let ring = Mixture2d::Ring8;
    let points = ring.sample(100_000, 1);
    let t = be.alloc(points.len(), "ring8")?;
    be.write(t, &points);
    let data = DeviceData::Floats {
        t,
        rows: 100_000,
        row_len: 2,
    };

    let mlp = |input, out, act: Layer| {
        NetSpec::flat(
            input,
            vec![
                Layer::Linear(128),
                act.clone(),
                Layer::Linear(128),
                act,
                Layer::Linear(out),
            ],
        )
    };
    let relu = Layer::Act(duel::backend::Activation::Relu);
    let lrelu = Layer::Act(duel::backend::Activation::LeakyRelu(0.2));
    let cfg = GanConfig {
        g: mlp(8, 2, relu),
        d: mlp(2, 1, lrelu),
        batch: 256,
        k: 1,
        g_loss: GeneratorLoss::NonSaturating,
        noise: Noise::Normal,
        opt_g: Optimizer::adam(1e-3, 0.5, 0.999),
        opt_d: Optimizer::adam(1e-3, 0.5, 0.999),
        schedule: Schedule::CONSTANT,
        updates: Updates::Alternating,
        seed: 1,
        ema: 0.999,
        pack: 1,
        objective: Default::default(),
    };
    let mut gan = Gan::new(be, &cfg, data, None)?;
    for it in 1..=3000 {
        gan.train_iteration(be);
        if it % 500 == 0 {
            let s = gan.take_stats(be)?;
            println!("{it}: D loss {:.3}  G loss {:.3}", s.d_loss, s.g_loss);
        }
    }
    let samples = gan.generate(be, 2500, gan.sample_key())?;
    output::write_scatter_png(
        "ring8.png".as_ref(),
        "ring8: G's samples after 3000 iterations",
        &samples,
        &ring.means(),
        ring.extent(),
        512,
    )?;
    println!("wrote ring8.png");
    Ok(())
}

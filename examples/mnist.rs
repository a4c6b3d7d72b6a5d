//! Train the `mlp` preset on the embedded MNIST digits and save a grid of samples.
//!
//!     cargo run --release --example mnist [-- STEPS]
//!
//! The same run as `duel train`, through the library: config, data, backend, training loop.

use duel::config::{Preset, TrainConfig};
use duel::data::dataset;
use duel::gan::Gan;
use duel::output;
use duel::train::open_backend;

fn main() -> anyhow::Result<()> {
    let steps: u64 = std::env::args().nth(1).map_or(Ok(3000), |s| s.parse())?;
    let cfg = TrainConfig {
        steps,
        ..TrainConfig::preset(Preset::Mlp, "mnist")
    };

    let data = dataset::load(&cfg)?; // 7,000 training digits; 1,000 held out
    let (mut be, why) = open_backend(cfg.backend, &cfg.adapter)?;
    let be = be.as_mut();
    println!("backend: {why}");

    let device_data = data.upload(be, cfg.data_range())?; // stays 8-bit on the device
    let mut gan = Gan::new(
        be,
        &cfg.gan(data.dim(), data.image_shape())?,
        device_data,
        None,
    )?;
    for it in 1..=steps {
        gan.train_iteration(be); // k D-steps + one G-step, one submit on a GPU
        if it % 250 == 0 {
            let s = gan.take_stats(be)?; // the only readback
            println!(
                "{it}: D loss {:.3}  G loss {:.3}  D(x) {:.2}  D(G(z)) {:.2}",
                s.d_loss, s.g_loss, s.d_real, s.d_fake
            );
        }
    }
    let x = gan.generate(be, 64, gan.sample_key())?;
    let digits = output::Images::new(&x, 64, (1, 28, 28));
    output::write_png_grid("mnist.png".as_ref(), digits, cfg.data_range(), 3)?;
    println!("wrote mnist.png");
    Ok(())
}

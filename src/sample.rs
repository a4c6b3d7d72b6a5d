//! Drawing fresh samples from a saved generator, as a PNG grid (or scatter plot for 2D sets) or
//! a NumPy `.npy` array chosen by the output file's extension.

use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::data::Mixture2d;
use crate::model::Network;
use crate::output;
use crate::rng::{RngKey, stream};
use anyhow::{Result, bail};
use std::path::Path;

/// Where a batch of samples' noise comes from.
pub enum NoiseSource {
    /// `count` rows from `seed`'s sample stream: the same seed gives the same samples.
    Seed { count: usize, seed: u64 },
    /// These noise rows, [N, noise-dim] row-major (`duel sample --z FILE.npy`), so a sample can
    /// be reproduced elsewhere.
    Rows(Vec<f32>),
}

/// Samples of the checkpoint's generator, row-major [count, dim], in G's output range. The
/// moving average of G's weights is used when the run kept one: it is what the run sampled.
pub fn generate(ck: &Checkpoint, be: &mut dyn Backend, noise: &NoiseSource) -> Result<Vec<f32>> {
    let gan = ck.config.gan(ck.dim, ck.image_shape)?;
    let zdim = gan.g.input.len();
    let count = match noise {
        NoiseSource::Seed { count, .. } => *count,
        NoiseSource::Rows(z) => {
            if z.is_empty() || !z.len().is_multiple_of(zdim) {
                bail!(
                    "the noise holds {} values, not a whole number of rows of this generator's noise dimension {zdim}; pass an array of shape [N, {zdim}]",
                    z.len()
                );
            }
            z.len() / zdim
        }
    };
    let chunk = count.clamp(1, 1024);
    // The moving average of G's weights when the run kept one: it is what the run sampled,
    // with the state that goes with it (its standing batch-norm statistics).
    let s = &ck.state;
    let weights = s.g_ema.as_ref().unwrap_or(&s.g.params);
    let state = s.g_ema_state.as_ref().unwrap_or(&s.g.state);
    let mut g = Network::new(be, &gan.g, chunk, weights, 1, "generator")?;
    if g.n_state > 0 {
        be.write(g.state.slice(0, g.n_state), state);
    }
    let z = be.alloc(chunk * zdim, "noise")?;
    let mut out = Vec::with_capacity(count * ck.dim);
    let mut done = 0;
    while done < count {
        let rows = (count - done).min(chunk);
        let n = rows * zdim;
        let zt = z.slice(0, n);
        match noise {
            NoiseSource::Rows(v) => be.write(zt, &v[done * zdim..done * zdim + n]),
            NoiseSource::Seed { seed, .. } => {
                let key = RngKey::new(*seed, stream::SAMPLE, (done * zdim) as u64);
                gan.noise.draw(be, zt, n, key);
            }
        }
        let y = g.forward(be, z, rows, false, None);
        out.extend(be.read(y)?);
        done += rows;
    }
    Ok(out)
}

/// Writes samples to `path`: `.png` is a grid of images (or a scatter plot over the true means
/// for the 2D sets); `.npy` is float32 [N, C, H, W] with values in [0, 1], or [N, 2] for points.
pub fn write_samples(ck: &Checkpoint, samples: &[f32], count: usize, path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let (lo, hi) = ck.config.data_range();
    match (ext.as_deref(), ck.image_shape) {
        (Some("npy"), Some((c, h, w))) => {
            let unit: Vec<f32> = samples
                .iter()
                .map(|v| ((v - lo) / (hi - lo)).clamp(0.0, 1.0))
                .collect();
            output::write_npy(path, &unit, &[count, c, h, w])
        }
        (Some("npy"), None) => output::write_npy(path, samples, &[count, 2]),
        (Some("png"), Some((c, h, w))) => {
            let scale = (256 / h.max(w)).clamp(1, 4) as u32;
            output::write_png_grid(path, samples, count, c, h, w, (lo, hi), scale)
        }
        (Some("png"), None) => {
            let mixture = Mixture2d::parse(&ck.config.dataset);
            let means = mixture.map(|m| m.means()).unwrap_or_default();
            let extent = mixture.map_or_else(
                || samples.iter().fold(1.0f32, |a, v| a.max(v.abs())) * 1.1,
                |m| m.extent(),
            );
            let title = format!(
                "{}: G's samples at step {}",
                ck.config.dataset, ck.state.iteration
            );
            output::write_scatter_png(path, &title, samples, &means, extent, 512)
        }
        _ => bail!(
            "{}: unknown output type; name the file .png (a grid or scatter plot) or .npy \
             (a NumPy array)",
            path.display()
        ),
    }
}

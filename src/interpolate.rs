//! Exploring a trained generator's latent space: spherical interpolations between noise vectors
//! (Shoemake's slerp, which keeps Gaussian noise at the norm the generator was trained on), as a
//! grid with one walk per row, and as an animated GIF of looping walks.

use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::gan::Noise;
use crate::output::{self, Images};
use crate::rng::{self, RngKey, stream};
use crate::sample::{NoiseSource, generate_classes};
use anyhow::{Context, Result, bail};
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame};
use std::path::Path;

/// Rows of the interpolation grid, and walkers in each GIF frame.
pub const ROWS: usize = 8;
const WALKERS: usize = 16;
/// Keyframes each GIF walker loops through, and frames between two of them.
const KEYS: usize = 4;
const FRAMES_BETWEEN: usize = 12;

/// The point a fraction `t` of the way from `a` to `b` along the great circle (linear for
/// uniform noise, whose prior is a cube rather than a shell).
pub fn slerp(a: &[f32], b: &[f32], t: f32, noise: Noise) -> Vec<f32> {
    let lerp = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x + t * (y - x)).collect();
    if noise != Noise::Normal {
        return lerp(a, b);
    }
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let cos = (dot / (norm(a) * norm(b)).max(1e-12)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    if omega.sin().abs() < 1e-6 {
        return lerp(a, b);
    }
    let (t, s) = (t as f64, omega.sin());
    let (wa, wb) = (((1.0 - t) * omega).sin() / s, (t * omega).sin() / s);
    a.iter()
        .zip(b)
        .map(|(x, y)| (wa * *x as f64 + wb * *y as f64) as f32)
        .collect()
}

/// `count` noise vectors of `dim` values from `seed`'s sample stream (the prior of the run).
fn anchors(count: usize, dim: usize, noise: Noise, seed: u64) -> Vec<Vec<f32>> {
    let key = RngKey::new(seed, stream::SAMPLE, 1 << 40);
    (0..count)
        .map(|j| {
            (0..dim)
                .map(|i| {
                    let at = (j * dim + i) as u64;
                    match noise {
                        Noise::Normal => rng::normal(key, at),
                        Noise::Uniform => rng::uniform(key, at, -1.0, 1.0),
                        Noise::UniformUnitVariance => {
                            let b = 3f32.sqrt();
                            rng::uniform(key, at, -b, b)
                        }
                    }
                })
                .collect()
        })
        .collect()
}

/// Writes the interpolation grid to `png` (ROWS walks of `steps` images, each between two random
/// noise vectors) and an animated GIF beside it (`<stem>.gif`: WALKERS generators walking
/// looped paths through KEYS noise vectors). Returns the GIF's path.
///
/// For a conditional G every walk keeps one class: `class`, or row r's (walker w's) class
/// r mod K; and without `class`, `<stem>_classes.png` walks across the classes at fixed noise:
/// ROWS noise vectors, each drawn as every class in turn along its row.
pub fn write_interpolations(
    ck: &Checkpoint,
    be: &mut dyn Backend,
    steps: usize,
    seed: u64,
    class: Option<u32>,
    png: &Path,
) -> Result<std::path::PathBuf> {
    let Some((c, h, w)) = ck.image_shape else {
        bail!("--interpolate draws image grids; this run's data are 2-D points, not images");
    };
    if !(2..=64).contains(&steps) {
        bail!("--interpolate takes 2 to 64 steps per row, not {steps}");
    }
    let noise = ck.config.gan(ck.dim, ck.image_shape)?.noise;
    let dim = ck.config.noise_dim;
    let (lo, hi) = ck.config.data_range();
    let scale = (256 / h.max(w)).clamp(1, 4) as u32;

    let ends = anchors(2 * ROWS, dim, noise, seed);
    let mut z = Vec::with_capacity(ROWS * steps * dim);
    for r in 0..ROWS {
        for s in 0..steps {
            let t = s as f32 / (steps - 1) as f32;
            z.extend(slerp(&ends[2 * r], &ends[2 * r + 1], t, noise));
        }
    }
    let k = ck.config.conditional.then_some(ck.config.classes);
    // Each sample's class: `class`, or its row's (its walker's) in turn.
    let class_of = |row: usize| class.unwrap_or_else(|| (row % k.unwrap_or(1)) as u32);
    let classes: Vec<u32> = (0..ROWS * steps).map(|i| class_of(i / steps)).collect();
    let given = k.map(|_| &classes[..]);
    let x = generate_classes(ck, be, &NoiseSource::Rows(z), given)?;
    // ROWS rows of `cols` images each.
    let write_rows = |x: &[f32], cols: usize, path: &Path| -> Result<()> {
        let images = Images::new(x, ROWS * cols, (c, h, w));
        output::write_png(
            path,
            &output::grid_image_cols(images, cols, (lo, hi), scale)?,
        )
    };
    write_rows(&x, steps, png)?;
    if let (Some(k), None) = (k, class) {
        let shown = k.min(64);
        let fixed = anchors(ROWS, dim, noise, seed ^ 0xc1a5);
        let z: Vec<f32> = (0..ROWS * shown)
            .flat_map(|i| fixed[i / shown].iter().copied())
            .collect();
        let classes: Vec<u32> = (0..ROWS * shown).map(|i| (i % shown) as u32).collect();
        let x = generate_classes(ck, be, &NoiseSource::Rows(z), Some(&classes))?;
        write_rows(&x, shown, &classes_path(png))?;
    }

    let keys = anchors(WALKERS * KEYS, dim, noise, seed ^ 0x9a11);
    let mut z = Vec::new();
    for k in 0..KEYS {
        for f in 0..FRAMES_BETWEEN {
            let t = f as f32 / FRAMES_BETWEEN as f32;
            for wk in 0..WALKERS {
                let a = &keys[wk * KEYS + k];
                let b = &keys[wk * KEYS + (k + 1) % KEYS];
                z.extend(slerp(a, b, t, noise));
            }
        }
    }
    let classes: Vec<u32> = (0..z.len() / dim).map(|i| class_of(i % WALKERS)).collect();
    let given = k.map(|_| &classes[..]);
    let x = generate_classes(ck, be, &NoiseSource::Rows(z), given)?;
    let gif = png.with_extension("gif");
    let file = std::fs::File::create(&gif)
        .with_context(|| format!("{}: cannot create the GIF", gif.display()))?;
    let mut enc = GifEncoder::new_with_speed(std::io::BufWriter::new(file), 10);
    enc.set_repeat(Repeat::Infinite)?;
    let per_frame = WALKERS * c * h * w;
    // Half the grid's zoom keeps the animation small (GIF frames are not compressed across time).
    let gif_scale = (scale / 2).max(1);
    for frame in x.chunks_exact(per_frame) {
        let img = output::grid_image(Images::new(frame, WALKERS, (c, h, w)), (lo, hi), gif_scale)?
            .to_rgba8();
        enc.encode_frame(Frame::from_parts(
            img,
            0,
            0,
            Delay::from_numer_denom_ms(70, 1),
        ))
        .with_context(|| format!("{}: GIF encoding failed", gif.display()))?;
    }
    Ok(gif)
}

/// The class walk of a conditional run's interpolations: `walk.png` → `walk_classes.png`.
pub fn classes_path(png: &Path) -> std::path::PathBuf {
    let stem = png.file_stem().and_then(|s| s.to_str()).unwrap_or("walk");
    png.with_file_name(format!("{stem}_classes.png"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slerp_keeps_the_norm_of_equal_length_vectors_and_hits_the_ends() {
        let a = vec![3.0, 0.0, 4.0];
        let b = vec![0.0, 5.0, 0.0];
        for t in [0.0, 0.3, 0.5, 1.0] {
            let v = slerp(&a, &b, t, Noise::Normal);
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((n - 5.0).abs() < 1e-4, "t={t}: norm {n}");
        }
        assert_eq!(slerp(&a, &b, 0.0, Noise::Normal), a);
        let end = slerp(&a, &b, 1.0, Noise::Normal);
        assert!(end.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5));
        // Uniform noise interpolates linearly.
        assert_eq!(slerp(&a, &b, 0.5, Noise::Uniform), vec![1.5, 2.5, 2.0]);
    }
}

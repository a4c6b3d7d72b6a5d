//! Drawing fresh samples from a saved generator, as a PNG grid (or scatter plot for 2D sets) or
//! a NumPy `.npy` array chosen by the output file's extension.

use crate::backend::Backend;
use crate::budget;
use crate::checkpoint::Checkpoint;
use crate::data::Mixture2d;
use crate::model::Network;
use crate::output::{self, Images};
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
    generate_classes(ck, be, noise, None)
}

/// The class of each of `count` samples of a conditional run: `class` for all of them, or
/// every class in turn (sample i of class i mod K). Errors name the fix when `class` is given
/// to a run that is not conditional or is out of range; a class may be given by its index or,
/// for an image folder's classes, its name.
pub fn classes_for(ck: &Checkpoint, class: Option<&str>, count: usize) -> Result<Option<Vec<u32>>> {
    let cfg = &ck.config;
    let Some(class) = class else {
        return Ok(cfg
            .conditional
            .then(|| (0..count).map(|i| (i % cfg.classes) as u32).collect()));
    };
    if !cfg.conditional {
        bail!(
            "--class {class}: this run is not conditional (it was trained without \
             --conditional); drop --class, or train with --conditional"
        );
    }
    let k = cfg.classes;
    let index = match class.parse::<usize>() {
        Ok(c) => c,
        Err(_) => match cfg.class_names.iter().position(|n| n == class) {
            Some(c) => c,
            None if cfg.class_names.is_empty() => {
                bail!("--class {class:?}: pass a class number from 0 to {}", k - 1)
            }
            None => bail!(
                "--class {class:?}: no such class; this run's classes are {} (or their numbers \
                 0 to {})",
                cfg.class_names.join(", "),
                k - 1
            ),
        },
    };
    if index >= k {
        bail!(
            "--class {index} is out of range: this run has {k} classes; pass 0 to {}",
            k - 1
        );
    }
    Ok(Some(vec![index as u32; count]))
}

/// `generate` with each sample's class for a conditional G (`None`: every class in turn).
/// The samples are held in memory: a count they would not fit in is refused before any is drawn.
pub fn generate_classes(
    ck: &Checkpoint,
    be: &mut dyn Backend,
    noise: &NoiseSource,
    classes: Option<&[u32]>,
) -> Result<Vec<f32>> {
    let count = noise_rows(ck, noise)?;
    budget::check(
        &format!("holding {count} samples of {} values", ck.dim),
        budget::rows_bytes(count, ck.dim),
        "draw fewer samples, or write them with duel sample to a .npy file, which is written \
         in chunks",
    )?;
    let mut out = Vec::with_capacity(count * ck.dim);
    for_each_chunk(ck, be, noise, classes, |y| {
        out.extend_from_slice(y);
        Ok(())
    })?;
    Ok(out)
}

/// The number of samples `noise` makes.
fn noise_rows(ck: &Checkpoint, noise: &NoiseSource) -> Result<usize> {
    Ok(match noise {
        NoiseSource::Seed { count, .. } => *count,
        NoiseSource::Rows(z) => z.len() / ck.config.noise_dim.max(1),
    })
}

/// Draws the samples `noise` asks for a chunk of rows at a time, handing each chunk (row-major,
/// in G's output range) to `take`: memory stays at one chunk whatever the count.
pub fn for_each_chunk(
    ck: &Checkpoint,
    be: &mut dyn Backend,
    noise: &NoiseSource,
    classes: Option<&[u32]>,
    mut take: impl FnMut(&[f32]) -> Result<()>,
) -> Result<()> {
    let gan = ck.config.gan(ck.dim, ck.image_shape)?;
    if classes.is_some() && gan.classes().is_none() {
        bail!("classes given for a generator that is not conditional");
    }
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
    // A progressive generator samples at the level and fade its run had reached.
    if let Some((level, alpha)) = ck.growth()? {
        g.set_growth(level, alpha);
    }
    if g.n_state > 0 {
        be.write(g.state.slice(0, g.n_state), state);
    }
    let z = be.alloc(chunk * zdim, "noise")?;
    let cycled;
    let classes = match (gan.classes(), classes) {
        (None, _) => None,
        (Some(_), Some(c)) => Some(c),
        (Some(k), None) => {
            cycled = (0..count).map(|i| (i % k) as u32).collect::<Vec<_>>();
            Some(&cycled[..])
        }
    };
    if let Some(c) = classes {
        if c.len() != count {
            bail!(
                "{} classes for {count} samples; pass one per sample",
                c.len()
            );
        }
        g.labels = Some(be.alloc(chunk, "classes")?);
    }
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
        if let (Some(c), Some(l)) = (classes, g.labels) {
            be.write_u32(l.slice(0, rows), &c[done..done + rows]);
        }
        let y = g.forward(be, z, rows, false, None);
        take(&be.read(y)?)?;
        done += rows;
    }
    Ok(())
}

/// Draws the samples `noise` asks for into `path` (as `write_labelled_samples` writes them) and
/// returns their count. A `.npy` is written a chunk at a time, so any count whose file fits on
/// disk works; a `.png` holds them all and is refused when they would not fit in memory.
pub fn write_drawn(
    ck: &Checkpoint,
    be: &mut dyn Backend,
    noise: &NoiseSource,
    classes: Option<&[u32]>,
    path: &Path,
) -> Result<usize> {
    let count = noise_rows(ck, noise)?;
    let npy = path.extension().and_then(|e| e.to_str()) == Some("npy");
    if !npy {
        if let Some((_, h, w)) = ck.image_shape {
            let scale = (256 / h.max(w)).clamp(1, 4);
            let pixels = (count as u64).saturating_mul((ck.dim * scale * scale) as u64);
            budget::check(
                &format!("a PNG grid of {count} samples"),
                budget::rows_bytes(count, ck.dim).saturating_add(pixels),
                "draw fewer with --count, or write a .npy file, which is written in chunks",
            )?;
        }
        let samples = generate_classes(ck, be, noise, classes)?;
        write_labelled_samples(ck, &samples, count, classes, path)?;
        return Ok(count);
    }
    let (lo, hi) = ck.config.data_range();
    let shape = match ck.image_shape {
        Some((c, h, w)) => vec![count, c, h, w],
        None => vec![count, ck.dim],
    };
    let images = ck.image_shape.is_some();
    output::write_npy_streamed(path, &shape, |push| {
        for_each_chunk(ck, be, noise, classes, |y| {
            if !images {
                return push(y);
            }
            let unit: Vec<f32> = y
                .iter()
                .map(|v| ((v - lo) / (hi - lo)).clamp(0.0, 1.0))
                .collect();
            push(&unit)
        })
    })?;
    if let Some(c) = classes {
        let labels: Vec<i64> = c.iter().map(|&l| l as i64).collect();
        output::npy::write_npy_i64(&labels_path(path), &labels)?;
    }
    Ok(count)
}

/// Writes samples to `path`: `.png` is a grid of images (or a scatter plot over the true means
/// for the 2D sets); `.npy` is float32 [N, C, H, W] with values in [0, 1], or [N, 2] for points.
/// `count` noise rows from `seed`'s sample stream, as `NoiseSource::Seed` draws them.
pub fn seed_noise(ck: &Checkpoint, count: usize, seed: u64) -> Result<Vec<f32>> {
    let noise = ck.config.gan(ck.dim, ck.image_shape)?.noise;
    let zdim = ck.config.noise_dim;
    let mut be = crate::cpu::CpuBackend::new();
    let z = be.alloc(count * zdim, "noise")?;
    noise.draw(
        &mut be,
        z,
        count * zdim,
        RngKey::new(seed, stream::SAMPLE, 0),
    );
    be.read(z)
}

/// A grid of `count` images, `cols` to a row (a conditional run's row per class).
pub fn write_class_grid(
    ck: &Checkpoint,
    samples: &[f32],
    count: usize,
    cols: usize,
    path: &Path,
) -> Result<()> {
    let Some((c, h, w)) = ck.image_shape else {
        bail!("a class grid is drawn for images; this run's data are 2-D points");
    };
    let scale = (256 / h.max(w)).clamp(1, 4) as u32;
    let grid = output::grid_image_cols(
        Images::new(samples, count, (c, h, w)),
        cols,
        ck.config.data_range(),
        scale,
    )?;
    output::write_png(path, &grid)
}

/// Where `write_samples` puts the labels of a conditional run's `.npy` samples:
/// `samples.npy` → `samples_labels.npy`.
pub fn labels_path(path: &Path) -> std::path::PathBuf {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("samples");
    path.with_file_name(format!("{stem}_labels.npy"))
}

/// `write_samples`, and for a conditional run's `.npy` output each sample's class beside it
/// (`labels_path`, int64 [N]).
pub fn write_labelled_samples(
    ck: &Checkpoint,
    samples: &[f32],
    count: usize,
    classes: Option<&[u32]>,
    path: &Path,
) -> Result<()> {
    write_samples(ck, samples, count, path)?;
    let npy = path.extension().and_then(|e| e.to_str()) == Some("npy");
    if let (Some(c), true) = (classes, npy) {
        let labels: Vec<i64> = c.iter().map(|&l| l as i64).collect();
        output::npy::write_npy_i64(&labels_path(path), &labels)?;
    }
    Ok(())
}

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
            output::write_png_grid(
                path,
                Images::new(samples, count, (c, h, w)),
                (lo, hi),
                scale,
            )
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

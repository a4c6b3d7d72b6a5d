//! `--backend auto` by measurement: a few iterations of the run's own model and batch are timed on
//! the GPU adapter and on the CPU path, and the run trains on the faster. The rates are remembered
//! per adapter, model and batch in `backend-autotune/`, in the directory that holds the matmul
//! choice (`gpu::autotune::cache_dir`), so a later run of the same model starts at once.
//!
//! The timed iterations train throwaway networks built from the run's initial weights; the run's
//! own networks start afresh, so a run with `auto` trains exactly as a forced run of the backend it
//! chose (tests/cli_backend_auto.rs checks this bit for bit).

use crate::CpuBackend;
use crate::backend::Backend;
use crate::data::dataset::HostData;
use crate::gan::{Gan, GanConfig};
use crate::gpu::GpuBackend;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// Wall-clock time each backend is timed for after its first iteration (which compiles kernels and
/// touches memory, so it is not counted unless it is all there is).
pub const BUDGET_S: f64 = 0.5;
/// Most timed iterations per backend.
pub const MAX_ITERATIONS: usize = 10;

/// Measured training speeds, iterations per second.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub cpu: f64,
    pub gpu: f64,
}

impl Rates {
    pub fn gpu_is_faster(&self) -> bool {
        self.gpu > self.cpu
    }
}

/// What the measurement needs to build the run's networks on a backend.
pub struct Model<'a> {
    pub gan: &'a GanConfig,
    pub data: &'a HostData,
    pub range: (f32, f32),
    pub init: (&'a [f32], &'a [f32]),
    /// Class labels of a conditional run.
    pub labels: Option<&'a [u32]>,
}

/// Iterations per second of `model` on `be`: one warm-up iteration, then iterations until
/// `BUDGET_S` has passed or `MAX_ITERATIONS` ran. A warm-up that alone outlasts the budget is the
/// figure (an underestimate by the kernels' compilation, on a backend that slow anyway).
pub fn time_iterations(be: &mut dyn Backend, model: &Model) -> Result<f64> {
    let device_data = model.data.upload(be, model.range)?;
    let mut gan = Gan::new(be, model.gan, device_data, Some(model.init))?;
    if let Some(labels) = model.labels {
        gan.set_data_labels(be, labels)?;
    }
    let start = Instant::now();
    gan.train_iteration(be);
    gan.take_stats(be)?;
    let first = start.elapsed().as_secs_f64();
    if first >= BUDGET_S {
        return Ok(1.0 / first);
    }
    let start = Instant::now();
    let mut n = 0;
    while n < MAX_ITERATIONS && (n == 0 || start.elapsed().as_secs_f64() < BUDGET_S) {
        gan.train_iteration(be);
        gan.take_stats(be)?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// The cache key: the adapter and driver, the CPU threads, the model (its configuration without the
/// seed, which does not change the speed), the batch and duel's version.
pub fn cache_key(gpu: &GpuBackend, gan: &GanConfig) -> String {
    use std::hash::{Hash, Hasher};
    let mut model = gan.clone();
    model.seed = 0;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{model:?}").hash(&mut h);
    let i = gpu.info();
    format!(
        "{} | {:?} | {} {} | cpu threads {} | batch {} | model {:x} | duel {}",
        i.name,
        i.backend,
        i.driver,
        i.driver_info,
        rayon::current_num_threads(),
        gan.batch,
        h.finish(),
        env!("CARGO_PKG_VERSION")
    )
}

/// The folder of remembered rates, one file per key.
pub fn cache_folder() -> Option<PathBuf> {
    crate::gpu::autotune::cache_dir().map(|d| d.join("backend-autotune"))
}

/// What a cache file holds: the key in full (the file is named by its hash) and the rates.
#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    #[serde(flatten)]
    rates: Rates,
}

fn entry_file(key: &str) -> Option<PathBuf> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    Some(cache_folder()?.join(format!("{:016x}.json", h.finish())))
}

/// The rates remembered for `key`, if any.
pub fn remembered(key: &str) -> Option<Rates> {
    let text = std::fs::read_to_string(entry_file(key)?).ok()?;
    let e: Entry = serde_json::from_str(&text).ok()?;
    (e.key == key).then_some(e.rates)
}

/// Remembers `rates` for `key` unless another process remembered some first: the first
/// measurement wins (a hard link never replaces a file), so runs of one model started together all
/// take the same backend. Returns the other process's rates when it was first. Best effort:
/// without a cache folder nothing is remembered.
pub fn remember(key: &str, rates: Rates) -> Option<Rates> {
    let f = entry_file(key)?;
    let entry = Entry {
        key: key.to_string(),
        rates,
    };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(f.parent().expect("a file in a folder"))?;
        let tmp = f.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_string_pretty(&entry)?)?;
        let linked = std::fs::hard_link(&tmp, &f);
        std::fs::remove_file(&tmp)?;
        linked
    };
    match write() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => remembered(key),
        _ => None,
    }
}

/// `r` to three significant figures (11.2, 0.243, 0.00412).
fn three_figures(r: f64) -> String {
    let decimals = (2 - r.abs().max(1e-9).log10().floor() as i32).clamp(0, 9) as usize;
    format!("{r:.decimals$}")
}

/// Chooses between `gpu` and the CPU path for `model` by speed, measured or remembered. Returns
/// the backend to train on and the line that says what was chosen and why.
pub fn choose(mut gpu: Box<GpuBackend>, model: &Model) -> Result<(Box<dyn Backend>, String)> {
    let adapter = gpu.name();
    let key = cache_key(&gpu, model.gan);
    let where_ = cache_folder().map_or("nowhere: no cache directory".into(), |f| {
        f.display().to_string()
    });
    let (rates, how) = match remembered(&key) {
        Some(r) => (r, format!("remembered from {where_}")),
        None => {
            let gpu_rate = match time_iterations(gpu.as_mut(), model) {
                Ok(r) => r,
                // The adapter cannot run this model (a batch over its binding limit): the CPU.
                Err(e) => {
                    return Ok((
                        Box::new(CpuBackend::new()),
                        format!("cpu, auto: gpu ({adapter}) cannot run this model ({e:#})"),
                    ));
                }
            };
            let cpu_rate = time_iterations(&mut CpuBackend::new(), model)?;
            let measured = Rates {
                cpu: cpu_rate,
                gpu: gpu_rate,
            };
            match remember(&key, measured) {
                None => (measured, format!("measured; cached in {where_}")),
                Some(first) => (
                    first,
                    format!(
                        "measured, but another run of this model was first: its rates, from {where_}"
                    ),
                ),
            }
        }
    };
    let chosen = if rates.gpu_is_faster() { "gpu" } else { "cpu" };
    let why = format!(
        "{chosen}, auto: cpu {} it/s, gpu ({adapter}) {} it/s -> {chosen} ({how})",
        three_figures(rates.cpu),
        three_figures(rates.gpu)
    );
    let be: Box<dyn Backend> = if rates.gpu_is_faster() {
        gpu
    } else {
        Box::new(CpuBackend::new())
    };
    Ok((be, why))
}

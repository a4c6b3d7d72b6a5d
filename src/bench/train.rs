//! `duel bench train`: iterations per second of the benchmark presets (one iteration = one D
//! update on a real and a fake batch, then one G update on fresh noise), with the work each
//! iteration submits, and with `--profile` the GPU time of every kernel of one iteration.

use super::{Stat, TrainOpts, load_average, process_cpu_seconds};
use crate::backend::{Activation, Backend, Counters};
use crate::cpu::CpuBackend;
use crate::gan::{DeviceData, Gan, GanConfig, GeneratorLoss, Noise, Schedule, Updates};
use crate::gpu::{GpuBackend, context::selector_from_env};
use crate::model::{BuiltNet, Layer, NetSpec, Optimizer, Shape};
use anyhow::{Result, bail};
use serde::Serialize;
use std::time::Instant;

/// The ResNet presets, benchmarked as `duel train --preset NAME` trains them.
fn resnet_preset(name: &str) -> Option<crate::config::Preset> {
    use crate::config::Preset;
    match name {
        "sngan-resnet32" => Some(Preset::SnganResnet32),
        "sagan32" => Some(Preset::Sagan32),
        _ => None,
    }
}

/// A ResNet preset's training configuration on CIFAR-10 (3×32×32, no DiffAugment: the papers'
/// setting) at `batch` and `width` (None: the preset's 64), without the weight average (as the
/// peers' spec).
fn resnet_config(
    preset: crate::config::Preset,
    batch: usize,
    width: Option<usize>,
) -> Result<GanConfig> {
    let mut tc = crate::config::TrainConfig::preset(preset, "cifar10:benchmark");
    (tc.batch, tc.width) = (batch, width);
    tc.validate()?;
    let mut cfg = tc.gan(3 * 32 * 32, Some((3, 32, 32)))?;
    cfg.ema = 0.0;
    Ok(cfg)
}

/// The benchmark presets, as in the peer benchmarks (shared/peers/pytorch), and the ResNet
/// presets: (G, D). `width` (None: 64) sets the convolutional presets' channel width.
pub fn preset(name: &str, width: Option<usize>) -> Result<(NetSpec, NetSpec)> {
    use Activation::*;
    use Layer::*;
    if let Some(p) = resnet_preset(name) {
        let cfg = resnet_config(p, 64, width)?;
        return Ok((cfg.g, cfg.d));
    }
    let w = width.unwrap_or(64);
    Ok(match name {
        "mlp" => (
            NetSpec {
                input: Shape::flat(100),
                layers: vec![
                    Linear(1024),
                    Act(Relu),
                    Linear(1024),
                    Act(Relu),
                    Linear(784),
                    Act(Tanh),
                ],
            },
            NetSpec {
                input: Shape::flat(784),
                layers: vec![
                    Linear(1024),
                    Act(LeakyRelu(0.2)),
                    Linear(1024),
                    Act(LeakyRelu(0.2)),
                    Linear(1),
                ],
            },
        ),
        "paper" => (
            NetSpec {
                input: Shape::flat(100),
                layers: vec![
                    Linear(1200),
                    Act(Relu),
                    Linear(1200),
                    Act(Relu),
                    Linear(784),
                    Act(Sigmoid),
                ],
            },
            NetSpec {
                input: Shape::flat(784),
                layers: vec![Linear(1200), Maxout(5), Linear(1200), Maxout(5), Linear(1)],
            },
        ),
        // The peers' DCGAN models: PyTorch's default init and biases, batch norm in training
        // mode, no weight average.
        "dcgan" => crate::models::dcgan::dcgan(28, 1, 100, w, 1)?,
        "dcgan32" => crate::models::dcgan::dcgan(32, 3, 100, w, 1)?,
        other => bail!(
            "unknown benchmark preset {other:?}; use mlp, paper, dcgan, dcgan32, sngan-resnet32 \
             or sagan32"
        ),
    })
}

/// Forward FLOPs per sample of the whole network and of its first module with parameters.
fn flops_per_row(built: &BuiltNet) -> (f64, f64) {
    let total = built.flops(1);
    let first = built
        .modules
        .iter()
        .find(|b| !b.module.params().is_empty())
        .map_or(0.0, |b| b.module.flops(1));
    (total, first)
}

/// FLOPs one iteration must do, counted as the peer benchmarks count them, from the modules'
/// forward FLOPs (a backward product costs what its forward does): D update = G forward, D
/// forward and backward (dW everywhere, dX past the first layer) on 2·batch rows; G update =
/// G forward, D forward, D dX everywhere, G backward (dW, dX past the first layer). An
/// iteration is `k` D updates and one G update.
pub fn min_flops_per_iteration(cfg: &GanConfig) -> Result<f64> {
    let (g, d) = cfg.build()?;
    let (batch, k) = (cfg.batch, cfg.k);
    let ((gm, g_first), (dm, d_first)) = (flops_per_row(&g), flops_per_row(&d));
    let (g_dx, d_dx) = (gm - g_first, dm - d_first);
    let d_step = gm + 2.0 * dm + 2.0 * (dm + d_dx);
    let g_step = gm + dm + dm + (gm + g_dx);
    Ok(batch as f64 * (k as f64 * d_step + g_step))
}

/// The peers' training spec for the peer presets (Adam 2e-4, β1 0.5, one D update per G
/// update, the non-saturating loss); the ResNet presets' own (hinge, spectral norm, their rates
/// and critic updates).
pub fn config(name: &str, batch: usize, width: Option<usize>) -> Result<GanConfig> {
    if let Some(p) = resnet_preset(name) {
        return resnet_config(p, batch, width);
    }
    let (g, d) = preset(name, width)?;
    let adam = Optimizer::adam(2e-4, 0.5, 0.999);
    Ok(GanConfig {
        g,
        d,
        batch,
        k: 1,
        g_loss: GeneratorLoss::NonSaturating,
        noise: Noise::Normal,
        opt_g: adam,
        opt_d: adam,
        schedule: Schedule::CONSTANT,
        updates: Updates::Alternating,
        seed: 1,
        // The peers' spec: no weight average, no packing.
        ema: 0.0,
        pack: 1,
        objective: Default::default(),
    })
}

/// One measured (preset, batch, backend).
#[derive(Clone, Debug, Serialize)]
pub struct TrainRow {
    pub bench: &'static str,
    pub preset: String,
    pub batch: usize,
    pub backend: &'static str,
    pub device: String,
    /// The GPU matmul kernel each class of product uses and where the choice came from ("" on
    /// the CPU).
    pub matmul: String,
    /// The GPU convolution kernel of each class and where the choice came from ("" on the CPU).
    pub conv: String,
    /// The GPU batched-matmul kernel of each class and where the choice came from ("" on the
    /// CPU).
    pub bmm: String,
    pub it_per_s: Stat,
    pub ms_per_iter: f64,
    pub iters_per_window: usize,
    pub min_gflop_per_iter: f64,
    pub effective_gflops: f64,
    pub dispatches_per_iter: f64,
    pub submits_per_iter: f64,
    pub bytes_read_per_iter: f64,
    /// Process CPU time (all threads, 10 ms ticks) per iteration over the timed windows.
    pub cpu_ms_per_iter: Option<f64>,
    pub load_avg: Option<f64>,
}

/// One kernel dispatch of a profiled iteration.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileRow {
    pub bench: &'static str,
    pub preset: String,
    pub batch: usize,
    pub device: String,
    /// "gpu" (timestamp queries) or "cpu" (wall time of the twin).
    pub backend: &'static str,
    pub order: usize,
    pub kernel: &'static str,
    pub dims: String,
    /// Workgroups launched (x, y, z) and in all; zeros on the CPU.
    pub workgroups: [u32; 3],
    pub workgroups_total: u64,
    pub flops: f64,
    pub bytes: f64,
    pub us: f64,
    pub share_pct: f64,
}

/// A backend the benchmark can also wait on.
pub enum AnyBackend {
    Cpu(CpuBackend),
    Gpu(Box<GpuBackend>),
}

impl AnyBackend {
    pub fn be(&mut self) -> &mut dyn Backend {
        match self {
            AnyBackend::Cpu(b) => b,
            AnyBackend::Gpu(b) => b.as_mut(),
        }
    }

    /// Blocks until everything recorded has run.
    pub fn sync(&mut self) -> Result<()> {
        match self {
            AnyBackend::Cpu(_) => Ok(()),
            AnyBackend::Gpu(b) => b.wait(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            AnyBackend::Cpu(_) => "cpu",
            AnyBackend::Gpu(_) => "gpu",
        }
    }

    pub fn matmul(&self) -> String {
        match self {
            AnyBackend::Cpu(_) => String::new(),
            AnyBackend::Gpu(b) => b.matmul_plan().describe(),
        }
    }

    pub fn conv(&self) -> String {
        match self {
            AnyBackend::Cpu(_) => String::new(),
            AnyBackend::Gpu(b) => b.conv_plan().describe(),
        }
    }

    pub fn bmm(&self) -> String {
        match self {
            AnyBackend::Cpu(_) => String::new(),
            AnyBackend::Gpu(b) => b.bmm_plan().describe(),
        }
    }

    pub fn open(gpu: bool, adapter: Option<&str>) -> Result<AnyBackend> {
        Ok(if gpu {
            let sel = selector_from_env(adapter);
            AnyBackend::Gpu(Box::new(GpuBackend::new(sel.as_deref())?))
        } else {
            AnyBackend::Cpu(CpuBackend::new())
        })
    }
}

/// 60000 rows of `dim` fixed pseudo-random bytes (mapped to [−1, 1]), like the peers' real data.
fn dataset(be: &mut dyn Backend, dim: usize) -> Result<DeviceData> {
    let rows = 60_000;
    let mut x = 0x9E37_79B9u32;
    let bytes: Vec<u8> = (0..rows * dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    Ok(DeviceData::Bytes {
        rows: be.upload_rows_u8(&bytes, rows, dim, "benchmark data")?,
        scale: 2.0 / 255.0,
        offset: -1.0,
    })
}

fn per_iter(before: Counters, after: Counters, iters: usize) -> (f64, f64, f64) {
    let n = iters.max(1) as f64;
    (
        (after.dispatches - before.dispatches) as f64 / n,
        (after.submits - before.submits) as f64 / n,
        (after.bytes_read - before.bytes_read) as f64 / n,
    )
}

/// Runs every (preset, batch, backend) of `opts`; `emit` sees each row as it is measured.
pub fn bench_train(
    opts: &TrainOpts,
    emit: &mut dyn FnMut(&TrainRow),
) -> Result<(Vec<TrainRow>, Vec<ProfileRow>)> {
    let mut rows = Vec::new();
    let mut profile = Vec::new();
    let mut kinds = Vec::new();
    if opts.common.backend.gpu() {
        kinds.push(true);
    }
    if opts.common.backend.cpu() {
        kinds.push(false);
    }
    for gpu in kinds {
        let mut any = AnyBackend::open(gpu, opts.common.adapter.as_deref())?;
        for name in &opts.preset {
            let dim = preset(name, opts.width)?.0.build("generator")?.output();
            let data = dataset(any.be(), dim)?;
            for &batch in &opts.batch {
                let cfg = config(name, batch, opts.width)?;
                let data = match &data {
                    DeviceData::Bytes {
                        rows,
                        scale,
                        offset,
                    } => DeviceData::Bytes {
                        rows: rows.clone(),
                        scale: *scale,
                        offset: *offset,
                    },
                    DeviceData::Floats { .. } => unreachable!("the benchmark data is bytes"),
                };
                let row = train_one(&mut any, &cfg, name, data, opts)?;
                emit(&row);
                rows.push(row);
                if opts.profile {
                    profile.extend(profile_one(&mut any, &cfg, name)?);
                }
            }
        }
    }
    Ok((rows, profile))
}

fn train_one(
    any: &mut AnyBackend,
    cfg: &GanConfig,
    name: &str,
    data: DeviceData,
    opts: &TrainOpts,
) -> Result<TrainRow> {
    let mut gan = Gan::new(any.be(), cfg, data, None)?;
    let t = Instant::now();
    for _ in 0..opts.warmup.max(1) {
        gan.train_iteration(any.be());
    }
    any.sync()?;
    let per = t.elapsed().as_secs_f64() / opts.warmup.max(1) as f64;
    let iters = ((opts.window_secs / per).ceil() as usize).max(2);
    let mut rates = Vec::new();
    let before = any.be().counters();
    let cpu_before = process_cpu_seconds();
    for _ in 0..opts.common.repeats.max(1) {
        let t = Instant::now();
        for _ in 0..iters {
            gan.train_iteration(any.be());
        }
        any.sync()?;
        rates.push(iters as f64 / t.elapsed().as_secs_f64());
    }
    let after = any.be().counters();
    let total_iters = (iters * opts.common.repeats.max(1)) as f64;
    let cpu_ms_per_iter = match (cpu_before, process_cpu_seconds()) {
        (Some(a), Some(b)) => Some((b - a) * 1e3 / total_iters),
        _ => None,
    };
    // Reading the losses back is what a training loop does at a log step; it stays outside.
    gan.take_stats(any.be())?;
    let (dispatches, submits, bytes_read) =
        per_iter(before, after, iters * opts.common.repeats.max(1));
    let it = Stat::of(&rates);
    let flops = min_flops_per_iteration(cfg)?;
    Ok(TrainRow {
        bench: "train",
        preset: name.into(),
        batch: cfg.batch,
        backend: any.kind(),
        device: any.be().name(),
        matmul: any.matmul(),
        conv: any.conv(),
        bmm: any.bmm(),
        it_per_s: it,
        ms_per_iter: 1e3 / it.median,
        iters_per_window: iters,
        min_gflop_per_iter: flops / 1e9,
        effective_gflops: flops * it.median / 1e9,
        dispatches_per_iter: dispatches,
        submits_per_iter: submits,
        bytes_read_per_iter: bytes_read,
        cpu_ms_per_iter,
        load_avg: load_average(),
    })
}

/// One profiled iteration (after one untimed): per dispatch, GPU time from timestamp queries,
/// or on the CPU the wall time of each kernel call.
fn profile_one(any: &mut AnyBackend, cfg: &GanConfig, name: &str) -> Result<Vec<ProfileRow>> {
    let data = dataset(any.be(), cfg.g.build("generator")?.output())?;
    let mut gan = Gan::new(any.be(), cfg, data, None)?;
    gan.train_iteration(any.be());
    any.sync()?;
    let timed = match any {
        AnyBackend::Gpu(g) => {
            g.set_profiling(true)?;
            gan.train_iteration(g.as_mut());
            let timed = g.take_profile();
            g.set_profiling(false)?;
            timed
        }
        AnyBackend::Cpu(c) => {
            c.set_profiling(true);
            gan.train_iteration(c);
            let timed = c.take_profile();
            c.set_profiling(false);
            timed
        }
    };
    let total: f64 = timed.iter().map(|p| p.ns).sum();
    let (backend, device) = (any.kind(), any.be().name());
    Ok(timed
        .into_iter()
        .enumerate()
        .map(|(i, p)| ProfileRow {
            bench: "train_profile",
            preset: name.into(),
            batch: cfg.batch,
            device: device.clone(),
            backend,
            order: i,
            kernel: p.kernel,
            workgroups: p.groups,
            workgroups_total: p.workgroups(),
            flops: p.flops,
            bytes: p.bytes,
            us: p.ns / 1e3,
            share_pct: 100.0 * p.ns / total.max(1.0),
            dims: p.shape,
        })
        .collect())
}

pub fn print_table(rows: &[TrainRow]) {
    if rows.is_empty() {
        return;
    }
    println!(
        "{:<7} {:>5} {:<4} {:>9} {:>9} {:>9} {:>8} {:>11} {:>8} {:>10} {:>9} {:>5}",
        "preset",
        "batch",
        "be",
        "it/s",
        "±%",
        "ms/it",
        "GFLOP/s",
        "disp/it",
        "subm/it",
        "B read/it",
        "cpu ms/it",
        "load"
    );
    for r in rows {
        println!(
            "{:<7} {:>5} {:<4} {:>9.2} {:>9.1} {:>9.1} {:>8.1} {:>11.1} {:>8.2} {:>10.0} {:>9} {:>5}",
            r.preset,
            r.batch,
            r.backend,
            r.it_per_s.median,
            r.it_per_s.spread_pct(),
            r.ms_per_iter,
            r.effective_gflops,
            r.dispatches_per_iter,
            r.submits_per_iter,
            r.bytes_read_per_iter,
            r.cpu_ms_per_iter.map_or("?".into(), |c| format!("{c:.0}")),
            r.load_avg.map_or("?".into(), |l| format!("{l:.2}")),
        );
    }
    let mut devices: Vec<&str> = rows.iter().map(|r| r.device.as_str()).collect();
    devices.dedup();
    println!("devices: {}", devices.join("; "));
    if let Some(r) = rows.iter().find(|r| !r.matmul.is_empty()) {
        println!("GPU matmul kernels: {}", r.matmul);
        println!("GPU convolution kernels: {}", r.conv);
        println!("GPU batched-matmul kernels: {}", r.bmm);
    }
}

/// GFLOP/s of a dispatch that computes (a matmul or convolution), else GB/s.
fn rate(flops: f64, bytes: f64, us: f64) -> String {
    let s = us.max(1e-3) * 1e-6;
    if flops >= bytes {
        format!("{:.2} GFLOP/s", flops / s / 1e9)
    } else {
        format!("{:.2} GB/s", bytes / s / 1e9)
    }
}

pub fn print_profile(rows: &[ProfileRow]) {
    let mut groups: Vec<(&str, usize, &str)> = rows
        .iter()
        .map(|r| (r.preset.as_str(), r.batch, r.backend))
        .collect();
    groups.dedup();
    for (preset, batch, backend) in groups {
        let mut g: Vec<&ProfileRow> = rows
            .iter()
            .filter(|r| r.preset == preset && r.batch == batch && r.backend == backend)
            .collect();
        let total: f64 = g.iter().map(|r| r.us).sum();
        let how = if backend == "gpu" {
            "GPU time (timestamp queries)"
        } else {
            "CPU wall time of the kernel calls"
        };
        println!(
            "\nprofile: {preset} batch {batch} on {}, one iteration, {} dispatches, {:.2} ms {how}",
            g[0].device,
            g.len(),
            total / 1e3
        );
        let mut by_kernel: Vec<(&str, f64, usize, f64, f64)> = Vec::new();
        for r in &g {
            match by_kernel.iter_mut().find(|k| k.0 == r.kernel) {
                Some(k) => {
                    k.1 += r.us;
                    k.2 += 1;
                    k.3 += r.flops;
                    k.4 += r.bytes;
                }
                None => by_kernel.push((r.kernel, r.us, 1, r.flops, r.bytes)),
            }
        }
        by_kernel.sort_by(|a, b| b.1.total_cmp(&a.1));
        println!(
            "{:<32} {:>5} {:>10} {:>6} {:>9} {:>9} {:>16}",
            "kernel", "calls", "µs", "share", "GFLOP", "MB", "rate"
        );
        for (k, us, n, flops, bytes) in by_kernel {
            println!(
                "{k:<32} {n:>5} {us:>10.0} {:>5.1}% {:>9.3} {:>9.1} {:>16}",
                100.0 * us / total.max(1e-9),
                flops / 1e9,
                bytes / 1e6,
                rate(flops, bytes, us)
            );
        }
        g.sort_by(|a, b| b.us.total_cmp(&a.us));
        println!(
            "\nslowest dispatches (workgroups: x×y×z = total; a GPU with C compute units runs about \
             total / C rounds of them)"
        );
        println!(
            "{:>5} {:<32} {:<38} {:>20} {:>9} {:>8} {:>10} {:>6} {:>16}",
            "order", "kernel", "shape", "workgroups", "GFLOP", "MB", "µs", "share", "rate"
        );
        for r in g.iter().take(20) {
            let [x, y, z] = r.workgroups;
            let wg = if backend == "gpu" {
                format!("{x}×{y}×{z} = {}", r.workgroups_total)
            } else {
                "-".into()
            };
            println!(
                "{:>5} {:<32} {:<38} {:>20} {:>9.3} {:>8.1} {:>10.0} {:>5.1}% {:>16}",
                r.order,
                r.kernel,
                r.dims,
                wg,
                r.flops / 1e9,
                r.bytes / 1e6,
                r.us,
                r.share_pct,
                rate(r.flops, r.bytes, r.us)
            );
        }
    }
}

//! `duel bench kernels`: every kernel of the table (`crate::kernels::ALL`) at its benchmark
//! shapes (the sizes training uses), timed on the GPU and on the CPU path, with GFLOP/s
//! (matmuls) or GB/s (everything else) and the GPU/CPU speedup.

use super::train::AnyBackend;
use super::{KernelOpts, Stat, load_average};
use crate::backend::Backend;
use crate::gpu::autotune::Plan;
use crate::gpu::bmm_register::BmmClass;
use crate::gpu::conv_register;
use crate::gpu::{BmmChoice, ConvChoice, GpuBackend, MatmulChoice, Variant};
use crate::kernels::batched_matmul::BATCHED_MATMUL;
use crate::kernels::matmul::MATMUL;
use crate::kernels::{ALL, Case, KernelDef, launch_bytes};
use anyhow::Result;
use serde::Serialize;
use std::time::Instant;

/// One kernel at one size on both backends.
#[derive(Clone, Debug, Serialize)]
pub struct KernelRow {
    pub bench: &'static str,
    pub kernel: String,
    pub shape: String,
    /// The GPU variant timed: the matmul's, a convolution's or the batched matmul's ("" for
    /// kernels with one).
    pub variant: String,
    pub flops: f64,
    pub bytes: f64,
    /// Per call, in microseconds.
    pub gpu_us: Option<Stat>,
    pub cpu_us: Option<Stat>,
    /// "timestamps" or "wall".
    pub gpu_timing: String,
    /// GFLOP/s for matmuls, GB/s for the rest, from the median.
    pub gpu_rate: Option<f64>,
    pub cpu_rate: Option<f64>,
    pub rate_unit: &'static str,
    /// CPU time / GPU time.
    pub gpu_speedup: Option<f64>,
    pub load_avg: Option<f64>,
}

type Run = Box<dyn FnMut(&mut dyn Backend)>;

/// Uploads a benchmark case and returns a closure launching it.
fn setup(def: &'static KernelDef, case: &Case, be: &mut dyn Backend) -> Result<Run> {
    let views = case.upload(def, be)?;
    let params = case.params.clone();
    Ok(Box::new(move |be: &mut dyn Backend| {
        launch_bytes(be, def, &params, &views)
    }))
}

/// Microseconds per call: the median of `repeats` timed runs of enough calls to last `min_ms`.
fn time_case(
    any: &mut AnyBackend,
    run: &mut Run,
    repeats: usize,
    min_ms: f64,
    timestamps: bool,
) -> Result<Stat> {
    // Warm-up (pipeline compilation, first-touch of buffers), then a size estimate.
    run(any.be());
    any.sync()?;
    let t = Instant::now();
    run(any.be());
    any.sync()?;
    let once = t.elapsed().as_secs_f64() * 1e3;
    let calls = ((min_ms / once.max(1e-3)).ceil() as usize).clamp(1, 1000);
    let mut samples = Vec::new();
    for _ in 0..repeats.max(1) {
        if let (true, AnyBackend::Gpu(g)) = (timestamps, &mut *any) {
            g.set_profiling(true)?;
            for _ in 0..calls {
                run(g.as_mut());
            }
            let timed = g.take_profile();
            g.set_profiling(false)?;
            let ns: f64 = timed.iter().map(|p| p.ns).sum();
            samples.push(ns / 1e3 / timed.len().max(1) as f64);
        } else {
            let t = Instant::now();
            for _ in 0..calls {
                run(any.be());
            }
            any.sync()?;
            samples.push(t.elapsed().as_secs_f64() * 1e6 / calls as f64);
        }
    }
    Ok(Stat::of(&samples))
}

/// Runs every kernel case on the backends of `opts`; `emit` sees each row as it is finished.
pub fn bench_kernels(
    opts: &KernelOpts,
    emit: &mut dyn FnMut(&KernelRow),
) -> Result<Vec<KernelRow>> {
    let mut cases: Vec<(&'static KernelDef, Case)> = Vec::new();
    for def in ALL {
        for case in (def.bench)() {
            cases.push((def, case));
        }
    }
    if let Some(f) = &opts.filter {
        cases.retain(|(d, c)| d.name.contains(f.as_str()) || c.label.contains(f.as_str()));
    }
    let mut gpu = if opts.common.backend.gpu() {
        Some(AnyBackend::open(true, opts.common.adapter.as_deref())?)
    } else {
        None
    };
    let mut cpu = opts
        .common
        .backend
        .cpu()
        .then(|| AnyBackend::Cpu(crate::CpuBackend::new()));
    let timestamps = match &gpu {
        Some(AnyBackend::Gpu(g)) => g.ctx.timestamps && !opts.wall,
        _ => false,
    };
    let mut rows = Vec::new();
    for (def, case) in &cases {
        let is_matmul = *def == &MATMUL;
        let work = (def.work)(&case.params);
        let cpu_us = match &mut cpu {
            Some(c) => {
                let mut run = setup(def, case, c.be())?;
                Some(time_case(
                    c,
                    &mut run,
                    opts.common.repeats,
                    opts.min_ms,
                    false,
                )?)
            }
            None => None,
        };
        let variants: Vec<Option<Forced>> = match &gpu {
            Some(AnyBackend::Gpu(g)) => row_variants(g, def, case, opts.all_variants),
            _ => vec![None],
        };
        for variant in variants {
            let mut gpu_us = None;
            if let Some(AnyBackend::Gpu(g)) = &mut gpu {
                let keep = (
                    g.matmul_plan().clone(),
                    g.conv_plan().clone(),
                    g.bmm_plan().clone(),
                );
                match variant {
                    Some(Forced::Matmul(v)) => g.set_matmul_choice(v)?,
                    Some(Forced::Conv(v)) => g.set_conv_choice(v)?,
                    Some(Forced::Bmm(v)) => g.set_bmm_choice(v),
                    None => {}
                }
                let any = gpu.as_mut().expect("gpu is open");
                let mut run = setup(def, case, any.be())?;
                gpu_us = Some(time_case(
                    any,
                    &mut run,
                    opts.common.repeats,
                    opts.min_ms,
                    timestamps,
                )?);
                if let Some(AnyBackend::Gpu(g)) = &mut gpu {
                    g.set_matmul_plan(keep.0);
                    g.set_conv_plan(keep.1);
                    g.set_bmm_plan(keep.2);
                }
            }
            // Products (the matmul and the convolutions' implicit GEMMs) in GFLOP/s.
            let products =
                is_matmul || def.name.starts_with("conv2d") || def.name == "batched_matmul";
            let (amount, unit) = if products {
                (work.flops, "GFLOP/s")
            } else {
                (work.bytes, "GB/s")
            };
            let rate = |s: &Option<Stat>| s.map(|s| amount / (s.median * 1e-6) / 1e9);
            let row = KernelRow {
                bench: "kernel",
                kernel: def.name.into(),
                shape: case.label.clone(),
                variant: variant.map_or(String::new(), |v| v.name().into()),
                flops: work.flops,
                bytes: work.bytes,
                gpu_us,
                cpu_us,
                gpu_timing: if gpu_us.is_none() {
                    String::new()
                } else if timestamps {
                    "timestamps".into()
                } else {
                    "wall".into()
                },
                gpu_rate: rate(&gpu_us),
                cpu_rate: rate(&cpu_us),
                rate_unit: unit,
                gpu_speedup: match (gpu_us, cpu_us) {
                    (Some(g), Some(c)) => Some(c.median / g.median),
                    _ => None,
                },
                load_avg: load_average(),
            };
            emit(&row);
            rows.push(row);
        }
    }
    Ok(rows)
}

/// With `all`, every variant of a plan's kernel; else the one `plan` runs for `class`.
fn planned<V: Variant>(
    g: &GpuBackend,
    plan: &Plan<V>,
    class: &str,
    all: bool,
    wrap: fn(V) -> Forced,
) -> Vec<Option<Forced>> {
    let variants = if all {
        V::ALL.iter().copied().filter(|&v| g.can_run(v)).collect()
    } else {
        vec![plan.choice(class)]
    };
    variants.into_iter().map(|v| Some(wrap(v))).collect()
}

/// A GPU variant a row times, forced while it runs.
#[derive(Clone, Copy, Debug)]
enum Forced {
    Matmul(MatmulChoice),
    Conv(ConvChoice),
    Bmm(BmmChoice),
}

impl Forced {
    fn name(self) -> &'static str {
        match self {
            Forced::Matmul(v) => v.name(),
            Forced::Conv(v) => v.name(),
            Forced::Bmm(v) => v.name(),
        }
    }
}

/// The variants a row of `def` times: with `all`, every one the adapter can run; else the one
/// the backend picked for this case's class. None for kernels with one variant.
fn row_variants(g: &GpuBackend, def: &KernelDef, case: &Case, all: bool) -> Vec<Option<Forced>> {
    if def == &MATMUL {
        if !all {
            return vec![Some(Forced::Matmul(g.matmul_choice()))];
        }
        let mut v = vec![Forced::Matmul(MatmulChoice::Tiled)];
        if g.ctx.subgroups {
            v.insert(0, Forced::Matmul(MatmulChoice::Subgroup));
        }
        return v.into_iter().map(Some).collect();
    }
    if let Some(class) = conv_register::class_of(def.name, &case.params) {
        return planned(g, g.conv_plan(), class.name(), all, Forced::Conv);
    }
    if def == &BATCHED_MATMUL {
        let class = BmmClass::of(&case.params);
        return planned(g, g.bmm_plan(), class.name(), all, Forced::Bmm);
    }
    vec![None]
}

pub fn print_table(rows: &[KernelRow]) {
    println!(
        "{:<34} {:<34} {:<8} {:>10} {:>6} {:>10} {:>6} {:>9} {:>9} {:>8} {:>7}",
        "kernel",
        "shape",
        "gpu var",
        "gpu µs",
        "±%",
        "cpu µs",
        "±%",
        "gpu rate",
        "cpu rate",
        "unit",
        "gpu/cpu"
    );
    let f = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
    for r in rows {
        println!(
            "{:<34} {:<34} {:<8} {:>10} {:>6} {:>10} {:>6} {:>9} {:>9} {:>8} {:>7}",
            r.kernel,
            r.shape,
            if r.variant.is_empty() {
                "-"
            } else {
                &r.variant
            },
            f(r.gpu_us.map(|s| s.median), 1),
            f(r.gpu_us.map(|s| s.spread_pct()), 0),
            f(r.cpu_us.map(|s| s.median), 1),
            f(r.cpu_us.map(|s| s.spread_pct()), 0),
            f(r.gpu_rate, 2),
            f(r.cpu_rate, 2),
            r.rate_unit,
            f(r.gpu_speedup, 2),
        );
    }
    if let Some(r) = rows.iter().find(|r| !r.gpu_timing.is_empty()) {
        println!(
            "GPU times from {}; load average {:?}",
            r.gpu_timing,
            load_average()
        );
    }
}

//! `duel bench kernels`: every kernel of the compute core at the sizes training uses, timed on
//! the GPU and on the CPU path, with GFLOP/s (matmuls) or GB/s (everything else) and the
//! GPU/CPU speedup.

use super::train::{AnyBackend, linear_shapes, preset};
use super::{KernelOpts, Stat, load_average};
use crate::backend::{Activation, AdamStep, Backend, GanLossKind, Tensor};
use crate::gpu::{GpuBackend, MatmulChoice};
use crate::rng::{self, RngKey, stream};
use anyhow::Result;
use serde::Serialize;
use std::time::Instant;

/// One kernel at one size on both backends.
#[derive(Clone, Debug, Serialize)]
pub struct KernelRow {
    pub bench: &'static str,
    pub kernel: String,
    pub shape: String,
    /// The GPU matmul kernel timed ("" for other kernels).
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
type Setup = Box<dyn Fn(&mut dyn Backend) -> Result<Run>>;

struct Case {
    kernel: String,
    shape: String,
    flops: f64,
    bytes: f64,
    matmul: bool,
    setup: Setup,
}

fn filled(be: &mut dyn Backend, n: usize, seed: u64, lo: f32, hi: f32) -> Result<Tensor> {
    let t = be.alloc(n, "benchmark input")?;
    let key = RngKey::new(seed, stream::TEST, 0);
    let v: Vec<f32> = (0..n)
        .map(|i| rng::uniform(key, i as u64, lo, hi))
        .collect();
    be.write(t, &v);
    Ok(t)
}

fn matmul_cases(batch: usize) -> Result<Vec<Case>> {
    let mut shapes: Vec<(String, usize, usize, usize)> = Vec::new();
    for name in ["mlp", "paper"] {
        let (g, d) = preset(name)?;
        for (net, spec, m) in [("G", &g, batch), ("D", &d, 2 * batch)] {
            for (k, n) in linear_shapes(spec) {
                let label = format!("{name} {net}");
                if let Some(s) = shapes.iter_mut().find(|s| (s.1, s.2, s.3) == (m, k, n)) {
                    s.0 += &format!(", {label}");
                } else {
                    shapes.push((label, m, k, n));
                }
            }
        }
    }
    shapes.push(("1024³".into(), 1024, 1024, 1024));
    let mut cases = Vec::new();
    for (label, m, k, n) in shapes {
        let flops = 2.0 * (m * k * n) as f64;
        let shape = format!("{m}x{k}x{n} ({label})");
        cases.push(Case {
            kernel: "matmul_forward".into(),
            shape: shape.clone(),
            flops,
            bytes: 0.0,
            matmul: true,
            setup: Box::new(move |be| {
                let x = filled(be, m * k, 1, -1.0, 1.0)?;
                let w = filled(be, k * n, 2, -1.0, 1.0)?;
                let b = filled(be, n, 3, -1.0, 1.0)?;
                let y = be.alloc(m * n, "y")?;
                Ok(Box::new(move |be: &mut dyn Backend| {
                    be.matmul_forward(y, x, w, Some(b), m, k, n)
                }))
            }),
        });
        cases.push(Case {
            kernel: "matmul_backward_input".into(),
            shape: shape.clone(),
            flops,
            bytes: 0.0,
            matmul: true,
            setup: Box::new(move |be| {
                let dy = filled(be, m * n, 1, -1.0, 1.0)?;
                let w = filled(be, k * n, 2, -1.0, 1.0)?;
                let dx = be.alloc(m * k, "dx")?;
                Ok(Box::new(move |be: &mut dyn Backend| {
                    be.matmul_backward_input(dx, dy, w, m, k, n)
                }))
            }),
        });
        cases.push(Case {
            kernel: "matmul_backward_weights".into(),
            shape,
            flops,
            bytes: 0.0,
            matmul: true,
            setup: Box::new(move |be| {
                let x = filled(be, m * k, 1, -1.0, 1.0)?;
                let dy = filled(be, m * n, 2, -1.0, 1.0)?;
                let dw = be.alloc(k * n, "dw")?;
                Ok(Box::new(move |be: &mut dyn Backend| {
                    be.matmul_backward_weights(dw, x, dy, m, k, n, false)
                }))
            }),
        });
    }
    // The fused Linear + activation of the hidden layers.
    let (m, k, n) = (batch, 1024, 1024);
    cases.push(Case {
        kernel: "matmul_forward_act".into(),
        shape: format!("{m}x{k}x{n} ReLU (mlp G)"),
        flops: 2.0 * (m * k * n) as f64,
        bytes: 0.0,
        matmul: true,
        setup: Box::new(move |be| {
            let x = filled(be, m * k, 1, -1.0, 1.0)?;
            let w = filled(be, k * n, 2, -1.0, 1.0)?;
            let b = filled(be, n, 3, -1.0, 1.0)?;
            let y = be.alloc(m * n, "y")?;
            Ok(Box::new(move |be: &mut dyn Backend| {
                be.matmul_forward_act(y, x, w, Some(b), Activation::Relu, m, k, n)
            }))
        }),
    });
    Ok(cases)
}

fn elementwise(kernel: &str, shape: String, bytes: usize, setup: Setup) -> Case {
    Case {
        kernel: kernel.into(),
        shape,
        flops: 0.0,
        bytes: bytes as f64,
        matmul: false,
        setup,
    }
}

fn other_cases(batch: usize) -> Vec<Case> {
    let rows = 2 * batch;
    let n = rows * 1024;
    let mut cases = vec![elementwise(
        "bias_backward",
        format!("{rows}x1024"),
        4 * (n + 1024),
        Box::new(move |be| {
            let dy = filled(be, n, 1, -1.0, 1.0)?;
            let db = be.alloc(1024, "db")?;
            Ok(Box::new(move |be: &mut dyn Backend| {
                be.bias_backward(db, dy, rows, 1024, false)
            }))
        }),
    )];
    let acts = [
        ("identity", Activation::Identity),
        ("relu", Activation::Relu),
        ("leaky_relu", Activation::LeakyRelu(0.2)),
        ("tanh", Activation::Tanh),
        ("sigmoid", Activation::Sigmoid),
    ];
    for (name, act) in acts {
        cases.push(elementwise(
            &format!("activation_forward {name}"),
            format!("{n}"),
            8 * n,
            Box::new(move |be| {
                let x = filled(be, n, 1, -3.0, 3.0)?;
                let y = be.alloc(n, "y")?;
                Ok(Box::new(move |be: &mut dyn Backend| {
                    be.activation_forward(act, y, x, n)
                }))
            }),
        ));
        cases.push(elementwise(
            &format!("activation_backward {name}"),
            format!("{n}"),
            12 * n,
            Box::new(move |be| {
                let dy = filled(be, n, 1, -1.0, 1.0)?;
                let y = filled(be, n, 2, -1.0, 1.0)?;
                let dx = be.alloc(n, "dx")?;
                Ok(Box::new(move |be: &mut dyn Backend| {
                    be.activation_backward(act, dx, dy, y, n)
                }))
            }),
        ));
    }
    let (units, pieces) = (240, 5);
    let ru = rows * units;
    cases.push(elementwise(
        "maxout_forward",
        format!("{rows}x{units}x{pieces}"),
        4 * (ru * pieces + 2 * ru),
        Box::new(move |be| {
            let x = filled(be, ru * pieces, 1, -1.0, 1.0)?;
            let y = be.alloc(ru, "y")?;
            let idx = be.alloc(ru, "idx")?;
            Ok(Box::new(move |be: &mut dyn Backend| {
                be.maxout_forward(y, idx, x, rows, units, pieces)
            }))
        }),
    ));
    cases.push(elementwise(
        "maxout_backward",
        format!("{rows}x{units}x{pieces}"),
        4 * (2 * ru + ru * pieces),
        Box::new(move |be| {
            let x = filled(be, ru * pieces, 1, -1.0, 1.0)?;
            let y = be.alloc(ru, "y")?;
            let idx = be.alloc(ru, "idx")?;
            be.maxout_forward(y, idx, x, rows, units, pieces);
            let dy = filled(be, ru, 2, -1.0, 1.0)?;
            let dx = be.alloc(ru * pieces, "dx")?;
            Ok(Box::new(move |be: &mut dyn Backend| {
                be.maxout_backward(dx, dy, idx, rows, units, pieces)
            }))
        }),
    ));
    cases.push(elementwise(
        "dropout_forward",
        format!("{n} keep 0.8"),
        8 * n,
        Box::new(move |be| {
            let x = filled(be, n, 1, -1.0, 1.0)?;
            let y = be.alloc(n, "y")?;
            let mut ctr = 0;
            Ok(Box::new(move |be: &mut dyn Backend| {
                ctr += n as u64;
                be.dropout_forward(y, x, n, 0.8, RngKey::new(1, stream::DROPOUT, ctr))
            }))
        }),
    ));
    cases.push(elementwise(
        "gan_loss discriminator",
        format!("{batch}+{batch}"),
        8 * rows,
        Box::new(move |be| {
            let l = filled(be, rows, 1, -5.0, 5.0)?;
            let g = be.alloc(rows, "grad")?;
            let s = be.alloc(3, "stats")?;
            Ok(Box::new(move |be: &mut dyn Backend| {
                be.gan_loss(GanLossKind::Discriminator, g, l, batch, batch, s, false)
            }))
        }),
    ));
    // The mlp discriminator's parameter count.
    let p = 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 + 1;
    cases.push(elementwise(
        "adam",
        format!("{p}"),
        28 * p,
        Box::new(move |be| {
            let (w, g) = (filled(be, p, 1, -1.0, 1.0)?, filled(be, p, 2, -1.0, 1.0)?);
            let (m, v) = (be.alloc(p, "m")?, be.alloc(p, "v")?);
            let mut t = 0;
            Ok(Box::new(move |be: &mut dyn Backend| {
                t += 1;
                let step = AdamStep {
                    lr: 2e-4,
                    beta1: 0.5,
                    beta2: 0.999,
                    eps: 1e-8,
                    t,
                };
                be.adam(w, g, m, v, p, &step)
            }))
        }),
    ));
    cases.push(elementwise(
        "sgd_momentum",
        format!("{p}"),
        20 * p,
        Box::new(move |be| {
            let (w, g) = (filled(be, p, 1, -1.0, 1.0)?, filled(be, p, 2, -1.0, 1.0)?);
            let v = be.alloc(p, "velocity")?;
            Ok(Box::new(move |be: &mut dyn Backend| {
                be.sgd_momentum(w, g, v, p, 1e-3, 0.5)
            }))
        }),
    ));
    let z = batch * 100;
    cases.push(elementwise(
        "rng_normal",
        format!("{z}"),
        4 * z,
        Box::new(move |be| {
            let out = be.alloc(z, "z")?;
            Ok(Box::new(move |be: &mut dyn Backend| {
                be.rng_normal(out, z, RngKey::new(1, stream::NOISE, 0))
            }))
        }),
    ));
    cases.push(elementwise(
        "rng_uniform",
        format!("{z}"),
        4 * z,
        Box::new(move |be| {
            let out = be.alloc(z, "z")?;
            Ok(Box::new(move |be: &mut dyn Backend| {
                be.rng_uniform(out, z, -1.0, 1.0, RngKey::new(1, stream::NOISE, 0))
            }))
        }),
    ));
    cases.push(elementwise(
        "rng_index",
        format!("{batch} of 60000"),
        4 * batch,
        Box::new(move |be| {
            let out = be.alloc(batch, "idx")?;
            Ok(Box::new(move |be: &mut dyn Backend| {
                be.rng_index(out, batch, 60_000, RngKey::new(1, stream::BATCH, 0))
            }))
        }),
    ));
    cases.push(elementwise(
        "gather_rows_u8",
        format!("{batch}x784 of 60000"),
        5 * batch * 784,
        Box::new(move |be| {
            let bytes: Vec<u8> = (0..60_000 * 784).map(|i| (i * 7 % 251) as u8).collect();
            let src = be.upload_rows_u8(&bytes, 60_000, 784, "rows")?;
            let idx = be.alloc(batch, "idx")?;
            be.rng_index(idx, batch, 60_000, RngKey::new(1, stream::BATCH, 0));
            let out = be.alloc(batch * 784, "out")?;
            Ok(Box::new(move |be: &mut dyn Backend| {
                be.gather_rows_u8(out, &src, idx, batch, 2.0 / 255.0, -1.0)
            }))
        }),
    ));
    cases.push(elementwise(
        "gather_rows_f32",
        format!("{batch}x2 of 10000"),
        16 * batch,
        Box::new(move |be| {
            let src = filled(be, 20_000, 1, -1.0, 1.0)?;
            let idx = be.alloc(batch, "idx")?;
            be.rng_index(idx, batch, 10_000, RngKey::new(1, stream::BATCH, 0));
            let out = be.alloc(batch * 2, "out")?;
            Ok(Box::new(move |be: &mut dyn Backend| {
                be.gather_rows_f32(out, src, idx, batch, 2)
            }))
        }),
    ));
    cases
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
    let batch = opts.batch;
    let mut cases = matmul_cases(batch)?;
    cases.extend(other_cases(batch));
    if let Some(f) = &opts.filter {
        cases.retain(|c| c.kernel.contains(f.as_str()) || c.shape.contains(f.as_str()));
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
    let (timestamps, variants) = match &gpu {
        Some(AnyBackend::Gpu(g)) => (g.ctx.timestamps && !opts.wall, gpu_variants(g)),
        _ => (false, vec![MatmulChoice::Tiled]),
    };
    let mut rows = Vec::new();
    for case in &cases {
        let cpu_us = match &mut cpu {
            Some(c) => {
                let mut run = (case.setup)(c.be())?;
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
        let variants: Vec<Option<MatmulChoice>> = match (&gpu, case.matmul) {
            (None, _) => vec![None],
            (Some(_), true) if opts.all_variants => variants.iter().copied().map(Some).collect(),
            (Some(AnyBackend::Gpu(g)), true) => vec![Some(g.matmul_choice())],
            _ => vec![None],
        };
        for variant in variants {
            let mut gpu_us = None;
            if let Some(AnyBackend::Gpu(g)) = &mut gpu {
                let keep = g.matmul_choice();
                if let Some(v) = variant {
                    g.set_matmul_choice(v)?;
                }
                let any = gpu.as_mut().expect("gpu is open");
                let mut run = (case.setup)(any.be())?;
                gpu_us = Some(time_case(
                    any,
                    &mut run,
                    opts.common.repeats,
                    opts.min_ms,
                    timestamps,
                )?);
                if let Some(AnyBackend::Gpu(g)) = &mut gpu {
                    g.set_matmul_choice(keep)?;
                }
            }
            let (work, unit) = if case.matmul {
                (case.flops, "GFLOP/s")
            } else {
                (case.bytes, "GB/s")
            };
            let rate = |s: &Option<Stat>| s.map(|s| work / (s.median * 1e-6) / 1e9);
            let row = KernelRow {
                bench: "kernel",
                kernel: case.kernel.clone(),
                shape: case.shape.clone(),
                variant: variant.map_or(String::new(), |v| v.name().into()),
                flops: case.flops,
                bytes: case.bytes,
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

fn gpu_variants(g: &GpuBackend) -> Vec<MatmulChoice> {
    if g.ctx.subgroups {
        vec![MatmulChoice::Subgroup, MatmulChoice::Tiled]
    } else {
        vec![MatmulChoice::Tiled]
    }
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

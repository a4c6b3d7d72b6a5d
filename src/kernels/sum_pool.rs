//! Global sum pooling of NCHW planes (`shaders/sum_pool.wgsl`): every plane becomes the sum of
//! its values, SNGAN's critic's `sum(h, axis=(2, 3))` before its last linear layer. Backward
//! hands each plane's gradient to every value of the plane (a gather, no atomics).
//!
//! Forward:  y[q] = Σ_i x[q, i]      Backward: dx[q, i] = dy[q]

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::{PAR_MIN, for_chunks};

crate::params! {
    pub struct SumPoolParams {
        /// rows · channels.
        pub planes: u32,
        /// Values per plane: height · width.
        pub size: u32,
        pub src_off: u32,
        pub dst_off: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "sum_pool",
    source: include_str!("../../shaders/sum_pool.wgsl"),
    preludes: &[],
};

const BINDINGS: &[Binding] = &[Binding::read("src"), Binding::write("dst")];

/// (planes, size) of a parameter block.
fn dims(p: &[u8]) -> (usize, usize) {
    let p: SumPoolParams = cast(p);
    (p.planes as usize, p.size as usize)
}

pub static SUM_POOL_FORWARD: KernelDef = KernelDef {
    name: "sum_pool_forward",
    shader: &SHADER,
    params: &<SumPoolParams as super::Params>::LAYOUT,
    bindings: BINDINGS,
    workgroups: |p| elementwise_groups(u(dims(p).0)),
    cpu: |p, b| {
        let (q, n) = dims(p);
        sum_pool_forward_cpu(b.w(1), b.r(0), q, n)
    },
    reference: |p, b| {
        let (q, n) = dims(p);
        let (x, y) = (b.r(0), b.w(1));
        for plane in 0..q {
            y[plane] = (0..n).map(|i| x[plane * n + i] as f64).sum::<f64>() as f32;
        }
    },
    cases: || cases(false),
    bench: || bench(false),
    work: |p| {
        let (q, n) = dims(p);
        Work {
            flops: (q * n) as f64,
            bytes: 4.0 * (q * n + q) as f64,
        }
    },
};

pub static SUM_POOL_BACKWARD: KernelDef = KernelDef {
    name: "sum_pool_backward",
    shader: &SHADER,
    params: &<SumPoolParams as super::Params>::LAYOUT,
    bindings: BINDINGS,
    workgroups: |p| {
        let (q, n) = dims(p);
        elementwise_groups(u(q * n))
    },
    cpu: |p, b| {
        let (q, n) = dims(p);
        sum_pool_backward_cpu(b.w(1), b.r(0), q, n)
    },
    reference: |p, b| {
        let (q, n) = dims(p);
        let (dy, dx) = (b.r(0), b.w(1));
        for plane in 0..q {
            for i in 0..n {
                dx[plane * n + i] = dy[plane];
            }
        }
    },
    cases: || cases(true),
    bench: || bench(true),
    work: |p| {
        let (q, n) = dims(p);
        Work {
            flops: 0.0,
            bytes: 4.0 * (q * n + q) as f64,
        }
    },
};

fn case(planes: usize, size: usize, backward: bool, seed: u64) -> Case {
    let p = SumPoolParams {
        planes: u(planes),
        size: u(size),
        ..Default::default()
    };
    let c = Case::new(format!("planes={planes} size={size}"), p).tol(1e-5, 1e-5);
    let (small, big) = (planes, planes * size);
    if backward {
        c.f32(uniform(seed, small, -1.0, 1.0)).zeros(big)
    } else {
        c.f32(uniform(seed, big, -1.0, 1.0)).zeros(small)
    }
}

/// Single values, one plane and many, odd plane sizes (a 13×9 map), more planes than one
/// workgroup covers.
fn cases(backward: bool) -> Vec<Case> {
    [
        (1, 1),
        (3, 5),
        (1, 21),
        (6, 25),
        (6, 117),
        (300, 16),
        (5 * 17, 64),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (q, n))| case(q, n, backward, 17 * i as u64 + 3))
    .collect()
}

/// SNGAN's CIFAR-10 critic at batch 64: 128 channels of 8×8 for [real; fake] rows.
fn bench(backward: bool) -> Vec<Case> {
    vec![case(128 * 128, 64, backward, 1)]
}

/// y [planes] = the sums of x's [planes, size] planes.
pub fn sum_pool_forward(be: &mut dyn Backend, y: Tensor, x: Tensor, planes: usize, size: usize) {
    let p = SumPoolParams {
        planes: u(planes),
        size: u(size),
        ..Default::default()
    };
    launch(be, &SUM_POOL_FORWARD, p, &[x, y]);
}

/// dx [planes, size] = dy [planes] repeated over each plane.
pub fn sum_pool_backward(be: &mut dyn Backend, dx: Tensor, dy: Tensor, planes: usize, size: usize) {
    let p = SumPoolParams {
        planes: u(planes),
        size: u(size),
        ..Default::default()
    };
    launch(be, &SUM_POOL_BACKWARD, p, &[dy, dx]);
}

pub fn sum_pool_forward_cpu(y: &mut [f32], x: &[f32], planes: usize, size: usize) {
    for_chunks(&mut y[..planes], (PAR_MIN / size.max(1)).max(1), |q0, o| {
        for (k, v) in o.iter_mut().enumerate() {
            let plane = &x[(q0 + k) * size..][..size];
            let mut s = 0.0f32;
            for &a in plane {
                s += a;
            }
            *v = s;
        }
    });
}

pub fn sum_pool_backward_cpu(dx: &mut [f32], dy: &[f32], planes: usize, size: usize) {
    for_chunks(&mut dx[..planes * size], PAR_MIN, |i0, o| {
        for (k, v) in o.iter_mut().enumerate() {
            *v = dy[(i0 + k) / size];
        }
    });
}

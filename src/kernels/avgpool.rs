//! 2× average pooling of NCHW planes (`shaders/avgpool.wgsl`): every 2×2 block becomes its mean.
//! Backward spreads each gradient value over its block, a quarter to each (a gather, no
//! atomics). Progressive growing's downsampling: D's old path during a fade-in and the real
//! images at the current resolution.
//!
//! Forward:  y[q, i, j] = ¼ Σ_{a,b} x[q, 2i + a, 2j + b]     Backward: dx[q, 2i + a, 2j + b] = ¼ dy[q, i, j]

use super::upsample::{BINDINGS, RAGGED, Resample2xParams, dims, resample2x};
use super::{Case, KernelDef, Shader, Work, elementwise_groups, u};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::for_planes;

pub static SHADER: Shader = Shader {
    name: "avgpool",
    source: include_str!("../../shaders/avgpool.wgsl"),
    preludes: &[],
};

pub static AVGPOOL2X_FORWARD: KernelDef = KernelDef {
    name: "avgpool2x_forward",
    shader: &SHADER,
    params: &<Resample2xParams as super::Params>::LAYOUT,
    bindings: BINDINGS,
    workgroups: |p| {
        let (q, h, w) = dims(p);
        elementwise_groups(u(q * h * w))
    },
    cpu: |p, b| {
        let (q, h, w) = dims(p);
        avgpool2x_forward_cpu(b.w(1), b.r(0), q, h, w)
    },
    reference: |p, b| {
        let (q, h, w) = dims(p);
        let (x, y) = (b.r(0), b.w(1));
        for plane in 0..q {
            for i in 0..h {
                for j in 0..w {
                    let mut s = 0.0f64;
                    for a in 0..2 {
                        for c in 0..2 {
                            s += x[(plane * 2 * h + 2 * i + a) * 2 * w + 2 * j + c] as f64;
                        }
                    }
                    y[(plane * h + i) * w + j] = (s / 4.0) as f32;
                }
            }
        }
    },
    cases: || cases(false),
    bench: || bench(false),
    work: |p| {
        let (q, h, w) = dims(p);
        Work {
            flops: 4.0 * (q * h * w) as f64,
            bytes: 4.0 * (5 * q * h * w) as f64,
        }
    },
};

pub static AVGPOOL2X_BACKWARD: KernelDef = KernelDef {
    name: "avgpool2x_backward",
    shader: &SHADER,
    params: &<Resample2xParams as super::Params>::LAYOUT,
    bindings: BINDINGS,
    workgroups: |p| {
        let (q, h, w) = dims(p);
        elementwise_groups(u(4 * q * h * w))
    },
    cpu: |p, b| {
        let (q, h, w) = dims(p);
        avgpool2x_backward_cpu(b.w(1), b.r(0), q, h, w)
    },
    reference: |p, b| {
        let (q, h, w) = dims(p);
        let (dy, dx) = (b.r(0), b.w(1));
        for plane in 0..q {
            for i in 0..2 * h {
                for j in 0..2 * w {
                    dx[(plane * 2 * h + i) * 2 * w + j] =
                        0.25 * dy[(plane * h + i / 2) * w + j / 2];
                }
            }
        }
    },
    cases: || cases(true),
    bench: || bench(true),
    work: |p| {
        let (q, h, w) = dims(p);
        Work {
            flops: 4.0 * (q * h * w) as f64,
            bytes: 4.0 * (5 * q * h * w) as f64,
        }
    },
};

fn case(planes: usize, h: usize, w: usize, backward: bool, seed: u64) -> Case {
    super::upsample::plane_case(planes, h, w, backward, seed)
}

fn cases(backward: bool) -> Vec<Case> {
    RAGGED
        .into_iter()
        .enumerate()
        .map(|(i, (q, h, w))| case(q, h, w, backward, 13 * i as u64 + 2))
        .collect()
}

/// Real 64×64 RGB images pooled to 32×32 at batch 64, and a 64×64 D's 32-channel features at
/// [real; fake] rows.
fn bench(backward: bool) -> Vec<Case> {
    vec![
        case(64 * 3, 32, 32, backward, 1),
        case(128 * 32, 32, 32, backward, 2),
    ]
}

/// y [planes, h, w] = the means of x's [planes, 2h, 2w] 2×2 blocks.
pub fn avgpool2x_forward(
    be: &mut dyn Backend,
    y: Tensor,
    x: Tensor,
    planes: usize,
    h: usize,
    w: usize,
) {
    resample2x(be, &AVGPOOL2X_FORWARD, x, y, planes, h, w);
}

/// dx [planes, 2h, 2w] = ¼ dy [planes, h, w] spread over each 2×2 block.
pub fn avgpool2x_backward(
    be: &mut dyn Backend,
    dx: Tensor,
    dy: Tensor,
    planes: usize,
    h: usize,
    w: usize,
) {
    resample2x(be, &AVGPOOL2X_BACKWARD, dy, dx, planes, h, w);
}

pub fn avgpool2x_forward_cpu(y: &mut [f32], x: &[f32], planes: usize, h: usize, w: usize) {
    for_planes(&mut y[..planes * h * w], h * w, |q0, o| {
        for (k, plane) in o.chunks_exact_mut(h * w).enumerate() {
            let src = &x[(q0 + k) * 4 * h * w..][..4 * h * w];
            for (i, row) in plane.chunks_exact_mut(w).enumerate() {
                let (top, bottom) = src[4 * i * w..(4 * i + 4) * w].split_at(2 * w);
                for (j, v) in row.iter_mut().enumerate() {
                    *v = 0.25
                        * ((top[2 * j] + top[2 * j + 1]) + (bottom[2 * j] + bottom[2 * j + 1]));
                }
            }
        }
    });
}

pub fn avgpool2x_backward_cpu(dx: &mut [f32], dy: &[f32], planes: usize, h: usize, w: usize) {
    for_planes(&mut dx[..4 * planes * h * w], 4 * h * w, |q0, o| {
        for (k, plane) in o.chunks_exact_mut(4 * h * w).enumerate() {
            let src = &dy[(q0 + k) * h * w..][..h * w];
            for (i, rows) in plane.chunks_exact_mut(4 * w).enumerate() {
                let (top, bottom) = rows.split_at_mut(2 * w);
                for (j, &v) in src[i * w..(i + 1) * w].iter().enumerate() {
                    top[2 * j] = 0.25 * v;
                    top[2 * j + 1] = 0.25 * v;
                }
                bottom.copy_from_slice(top);
            }
        }
    });
}

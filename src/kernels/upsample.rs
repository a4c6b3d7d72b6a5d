//! Nearest-neighbour 2× upsampling of NCHW planes (`shaders/upsample.wgsl`): every value becomes
//! a 2×2 block. Backward sums each block back into its value (a gather: one output per input
//! value, no atomics).
//!
//! Forward:  y[q, 2i + a, 2j + b] = x[q, i, j]      Backward: dx[q, i, j] = Σ_{a,b} dy[q, 2i + a, 2j + b]

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::for_planes;

crate::params! {
    /// Upsampling's and 2× average pooling's parameters (`kernels::avgpool`).
    pub struct Resample2xParams {
        /// rows · channels.
        pub planes: u32,
        /// The smaller grid's height and width: upsampling's input, pooling's output (the
        /// other side is twice each).
        pub height: u32,
        pub width: u32,
        pub src_off: u32,
        pub dst_off: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "upsample",
    source: include_str!("../../shaders/upsample.wgsl"),
    preludes: &[],
};

/// (planes, height, width) of a resampling kernel's parameters (the smaller grid's sides).
pub(super) fn dims(p: &[u8]) -> (usize, usize, usize) {
    let p: Resample2xParams = cast(p);
    (p.planes as usize, p.height as usize, p.width as usize)
}

pub(super) const BINDINGS: &[Binding] = &[Binding::read("src"), Binding::write("dst")];

pub static UPSAMPLE2X_FORWARD: KernelDef = KernelDef {
    name: "upsample2x_forward",
    shader: &SHADER,
    params: &<Resample2xParams as super::Params>::LAYOUT,
    bindings: BINDINGS,
    workgroups: |p| {
        let (q, h, w) = dims(p);
        elementwise_groups(u(4 * q * h * w))
    },
    cpu: |p, b| {
        let (q, h, w) = dims(p);
        upsample2x_forward_cpu(b.w(1), b.r(0), q, h, w)
    },
    reference: |p, b| {
        let (q, h, w) = dims(p);
        let (x, y) = (b.r(0), b.w(1));
        for plane in 0..q {
            for i in 0..2 * h {
                for j in 0..2 * w {
                    y[(plane * 2 * h + i) * 2 * w + j] = x[(plane * h + i / 2) * w + j / 2];
                }
            }
        }
    },
    cases: || cases(false),
    bench: || bench(false),
    // One read (cached across the block) and one write per output value.
    work: |p| {
        let (q, h, w) = dims(p);
        Work {
            flops: 0.0,
            bytes: 4.0 * (5 * q * h * w) as f64,
        }
    },
};

pub static UPSAMPLE2X_BACKWARD: KernelDef = KernelDef {
    name: "upsample2x_backward",
    shader: &SHADER,
    params: &<Resample2xParams as super::Params>::LAYOUT,
    bindings: BINDINGS,
    workgroups: |p| {
        let (q, h, w) = dims(p);
        elementwise_groups(u(q * h * w))
    },
    cpu: |p, b| {
        let (q, h, w) = dims(p);
        upsample2x_backward_cpu(b.w(1), b.r(0), q, h, w)
    },
    reference: |p, b| {
        let (q, h, w) = dims(p);
        let (dy, dx) = (b.r(0), b.w(1));
        for plane in 0..q {
            for i in 0..h {
                for j in 0..w {
                    let mut s = 0.0f64;
                    for a in 0..2 {
                        for c in 0..2 {
                            s += dy[(plane * 2 * h + 2 * i + a) * 2 * w + 2 * j + c] as f64;
                        }
                    }
                    dx[(plane * h + i) * w + j] = s as f32;
                }
            }
        }
    },
    cases: || cases(true),
    bench: || bench(true),
    work: |p| {
        let (q, h, w) = dims(p);
        Work {
            flops: 3.0 * (q * h * w) as f64,
            bytes: 4.0 * (5 * q * h * w) as f64,
        }
    },
};

/// A case over `planes` planes of the small `h`×`w` grid and the large 2h×2w one, reading the
/// small one when `small_in` (upsampling's forward, pooling's backward), else the large one.
pub(super) fn plane_case(planes: usize, h: usize, w: usize, small_in: bool, seed: u64) -> Case {
    let p = Resample2xParams {
        planes: u(planes),
        height: u(h),
        width: u(w),
        ..Default::default()
    };
    let (small, big) = (planes * h * w, 4 * planes * h * w);
    let c = Case::new(format!("planes={planes} {h}×{w}"), p).tol(1e-6, 1e-6);
    if small_in {
        c.f32(uniform(seed, small, -1.0, 1.0)).zeros(big)
    } else {
        c.f32(uniform(seed, big, -1.0, 1.0)).zeros(small)
    }
}

fn case(planes: usize, h: usize, w: usize, backward: bool, seed: u64) -> Case {
    plane_case(planes, h, w, !backward, seed)
}

/// The (planes, height, width) both resampling kernels are checked on: single values, odd and
/// non-square planes, one plane and many.
pub(super) const RAGGED: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (3, 1, 5),
    (1, 7, 3),
    (6, 5, 5),
    (2 * 3, 13, 9),
    (5 * 17, 4, 4),
];

fn cases(backward: bool) -> Vec<Case> {
    RAGGED
        .into_iter()
        .enumerate()
        .map(|(i, (q, h, w))| case(q, h, w, backward, 11 * i as u64 + 1))
        .collect()
}

/// DCGAN generators' upsampling steps at batch 64: 128 channels 7×7 → 14×14, 64 channels
/// 16×16 → 32×32.
fn bench(backward: bool) -> Vec<Case> {
    vec![
        case(64 * 128, 7, 7, backward, 1),
        case(64 * 64, 16, 16, backward, 2),
    ]
}

/// y [planes, 2h, 2w] = x [planes, h, w] repeated over 2×2 blocks.
pub fn upsample2x_forward(
    be: &mut dyn Backend,
    y: Tensor,
    x: Tensor,
    planes: usize,
    h: usize,
    w: usize,
) {
    resample2x(be, &UPSAMPLE2X_FORWARD, x, y, planes, h, w);
}

/// dx [planes, h, w] = the sums of dy's [planes, 2h, 2w] 2×2 blocks.
pub fn upsample2x_backward(
    be: &mut dyn Backend,
    dx: Tensor,
    dy: Tensor,
    planes: usize,
    h: usize,
    w: usize,
) {
    resample2x(be, &UPSAMPLE2X_BACKWARD, dy, dx, planes, h, w);
}

/// Runs one of the 2× resampling kernels (here and in `kernels::avgpool`) from `src` into `dst`
/// over `planes` planes whose smaller grid is `h`×`w`.
pub(super) fn resample2x(
    be: &mut dyn Backend,
    kernel: &'static KernelDef,
    src: Tensor,
    dst: Tensor,
    planes: usize,
    h: usize,
    w: usize,
) {
    let p = Resample2xParams {
        planes: u(planes),
        height: u(h),
        width: u(w),
        ..Default::default()
    };
    launch(be, kernel, p, &[src, dst]);
}

pub fn upsample2x_forward_cpu(y: &mut [f32], x: &[f32], planes: usize, h: usize, w: usize) {
    for_planes(&mut y[..4 * planes * h * w], 4 * h * w, |q0, o| {
        for (k, plane) in o.chunks_exact_mut(4 * h * w).enumerate() {
            let src = &x[(q0 + k) * h * w..][..h * w];
            for (i, rows) in plane.chunks_exact_mut(4 * w).enumerate() {
                let (top, bottom) = rows.split_at_mut(2 * w);
                for (j, &v) in src[i * w..(i + 1) * w].iter().enumerate() {
                    top[2 * j] = v;
                    top[2 * j + 1] = v;
                }
                bottom.copy_from_slice(top);
            }
        }
    });
}

pub fn upsample2x_backward_cpu(dx: &mut [f32], dy: &[f32], planes: usize, h: usize, w: usize) {
    for_planes(&mut dx[..planes * h * w], h * w, |q0, o| {
        for (k, plane) in o.chunks_exact_mut(h * w).enumerate() {
            let src = &dy[(q0 + k) * 4 * h * w..][..4 * h * w];
            for (i, row) in plane.chunks_exact_mut(w).enumerate() {
                let (top, bottom) = src[4 * i * w..(4 * i + 4) * w].split_at(2 * w);
                for (j, v) in row.iter_mut().enumerate() {
                    *v = (top[2 * j] + top[2 * j + 1]) + (bottom[2 * j] + bottom[2 * j + 1]);
                }
            }
        }
    });
}

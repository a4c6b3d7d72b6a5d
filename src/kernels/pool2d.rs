//! Max and average pooling of NHWC maps for inference (`shaders/pool2d_nhwc.wgsl`): k_h×k_w
//! windows, one stride and one zero padding on both axes, floor mode. Max pooling never picks
//! the padding; average pooling divides by the values inside the map only (PyTorch's
//! `avg_pool2d(..., count_include_pad=False)`, which pytorch-fid's Inception blocks use), and
//! with the window the whole map it is `adaptive_avg_pool2d(x, 1)`.
//!
//! y[img, oy, ox, c] = max / mean of x[img, y, x, c] over y ∈ [oy·s − p, oy·s − p + k_h) and
//! x ∈ [ox·s − p, ox·s − p + k_w), clipped to the map.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::for_planes;

crate::params! {
    pub struct Pool2dParams {
        pub n: u32,
        pub height: u32,
        pub width: u32,
        pub channels: u32,
        pub kh: u32,
        pub kw: u32,
        pub stride: u32,
        pub pad: u32,
        pub oh: u32,
        pub ow: u32,
        pub src_off: u32,
        pub dst_off: u32,
    }
}

impl Pool2dParams {
    /// Pooling `n` maps of height×width×channels with a k_h×k_w window.
    pub fn new(
        (n, height, width, channels): (usize, usize, usize, usize),
        (kh, kw): (usize, usize),
        stride: usize,
        pad: usize,
    ) -> Self {
        Pool2dParams {
            n: u(n),
            height: u(height),
            width: u(width),
            channels: u(channels),
            kh: u(kh),
            kw: u(kw),
            stride: u(stride),
            pad: u(pad),
            oh: u((height + 2 * pad - kh) / stride + 1),
            ow: u((width + 2 * pad - kw) / stride + 1),
            ..Default::default()
        }
    }

    /// Values of the output, n·oh·ow·channels.
    pub fn out_len(&self) -> usize {
        (self.n * self.oh * self.ow * self.channels) as usize
    }

    pub fn in_len(&self) -> usize {
        (self.n * self.height * self.width * self.channels) as usize
    }
}

pub static SHADER: Shader = Shader {
    name: "pool2d_nhwc",
    source: include_str!("../../shaders/pool2d_nhwc.wgsl"),
    preludes: &[],
};

const BINDINGS: &[Binding] = &[Binding::read("src"), Binding::write("dst")];

fn groups(p: &[u8]) -> [u32; 3] {
    let p: Pool2dParams = cast(p);
    elementwise_groups(u(p.out_len()))
}

fn work(p: &[u8]) -> Work {
    let p: Pool2dParams = cast(p);
    let n = p.out_len() as f64;
    let taps = (p.kh * p.kw) as f64;
    Work {
        flops: n * taps,
        bytes: 4.0 * (p.in_len() as f64 + n),
    }
}

pub static MAX_POOL2D_NHWC: KernelDef = KernelDef {
    name: "max_pool2d_nhwc",
    shader: &SHADER,
    params: &<Pool2dParams as super::Params>::LAYOUT,
    bindings: BINDINGS,
    workgroups: groups,
    cpu: |p, b| pool2d_nhwc_cpu(&cast(p), b.w(1), b.r(0), Pool::Max),
    reference: |p, b| pool2d_nhwc_reference(&cast(p), b.w(1), b.r(0), Pool::Max),
    cases: || cases(),
    bench: || bench(),
    work,
};

pub static AVG_POOL2D_NHWC: KernelDef = KernelDef {
    name: "avg_pool2d_nhwc",
    shader: &SHADER,
    params: &<Pool2dParams as super::Params>::LAYOUT,
    bindings: BINDINGS,
    workgroups: groups,
    cpu: |p, b| pool2d_nhwc_cpu(&cast(p), b.w(1), b.r(0), Pool::Mean),
    reference: |p, b| pool2d_nhwc_reference(&cast(p), b.w(1), b.r(0), Pool::Mean),
    cases: || cases(),
    bench: || bench(),
    work,
};

/// Which pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Max,
    /// The mean over the window's values inside the map (padding not counted).
    Mean,
}

/// y [n, oh, ow, channels] = the pooled x [n, height, width, channels] (`p` gives the shapes).
pub fn pool2d_nhwc(be: &mut dyn Backend, pool: Pool, y: Tensor, x: Tensor, p: Pool2dParams) {
    let def = match pool {
        Pool::Max => &MAX_POOL2D_NHWC,
        Pool::Mean => &AVG_POOL2D_NHWC,
    };
    launch(be, def, p, &[x, y]);
}

/// The window of output pixel (oy, ox) clipped to the map: rows y0..y1, columns x0..x1.
fn window(p: &Pool2dParams, oy: usize, ox: usize) -> (usize, usize, usize, usize) {
    let [h, w, kh, kw, s, pad] =
        [p.height, p.width, p.kh, p.kw, p.stride, p.pad].map(|v| v as usize);
    let (ys, xs) = (oy * s, ox * s);
    (
        ys.saturating_sub(pad),
        (ys + kh).saturating_sub(pad).min(h),
        xs.saturating_sub(pad),
        (xs + kw).saturating_sub(pad).min(w),
    )
}

pub fn pool2d_nhwc_reference(p: &Pool2dParams, y: &mut [f32], x: &[f32], pool: Pool) {
    let [n, h, w, c, oh, ow] = [p.n, p.height, p.width, p.channels, p.oh, p.ow].map(|v| v as usize);
    for img in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                let (y0, y1, x0, x1) = window(p, oy, ox);
                for ch in 0..c {
                    let vals = (y0..y1)
                        .flat_map(|yy| (x0..x1).map(move |xx| ((img * h + yy) * w + xx) * c + ch))
                        .map(|i| x[i]);
                    y[((img * oh + oy) * ow + ox) * c + ch] = match pool {
                        Pool::Max => vals.fold(f32::NEG_INFINITY, f32::max),
                        Pool::Mean => {
                            let count = ((y1 - y0) * (x1 - x0)) as f64;
                            (vals.map(|v| v as f64).sum::<f64>() / count) as f32
                        }
                    };
                }
            }
        }
    }
}

/// Output pixels split over the pool; each window accumulates whole channel rows.
pub fn pool2d_nhwc_cpu(p: &Pool2dParams, y: &mut [f32], x: &[f32], pool: Pool) {
    let [h, w, c, oh, ow] = [p.height, p.width, p.channels, p.oh, p.ow].map(|v| v as usize);
    for_planes(&mut y[..p.out_len()], c, |first, out| {
        for (i, dst) in out.chunks_exact_mut(c).enumerate() {
            let pix = first + i;
            let (ox, oy, img) = (pix % ow, (pix / ow) % oh, pix / (ow * oh));
            let (y0, y1, x0, x1) = window(p, oy, ox);
            dst.fill(match pool {
                Pool::Max => f32::NEG_INFINITY,
                Pool::Mean => 0.0,
            });
            for yy in y0..y1 {
                for xx in x0..x1 {
                    let src = &x[((img * h + yy) * w + xx) * c..][..c];
                    match pool {
                        Pool::Max => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = d.max(v)),
                        Pool::Mean => dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v),
                    }
                }
            }
            if pool == Pool::Mean {
                let count = ((y1 - y0) * (x1 - x0)) as f32;
                dst.iter_mut().for_each(|d| *d /= count);
            }
        }
    });
}

fn case(
    shape: (usize, usize, usize, usize),
    k: (usize, usize),
    s: usize,
    pad: usize,
    seed: u64,
) -> Case {
    let p = Pool2dParams::new(shape, k, s, pad);
    let x = uniform(seed, p.in_len(), -2.0, 1.0);
    let label = format!("{shape:?} k{k:?} s{s} p{pad}");
    let out = p.out_len();
    Case::new(label, p).f32(x).zeros(out).tol(1e-5, 1e-5)
}

/// Inception's three poolings (3×3 stride 2; 3×3 stride 1 padded by 1; the whole map) on ragged
/// maps, a rectangular window and all-negative corners (padding must not win a max).
fn cases() -> Vec<Case> {
    vec![
        case((2, 9, 7, 3), (3, 3), 2, 0, 1),
        case((3, 5, 6, 5), (3, 3), 1, 1, 2),
        case((2, 8, 8, 7), (8, 8), 1, 0, 3),
        case((1, 7, 11, 2), (2, 3), 2, 1, 4),
        case((2, 1, 1, 9), (3, 3), 1, 1, 5),
        case((1, 6, 5, 4), (6, 5), 1, 0, 6),
    ]
}

/// Inception's first max pooling (147×147×64, 3×3 stride 2) and a 35×35 average pooling at
/// batch 8.
fn bench() -> Vec<Case> {
    vec![
        case((1, 147, 147, 64), (3, 3), 2, 0, 1),
        case((8, 35, 35, 288), (3, 3), 1, 1, 2),
    ]
}

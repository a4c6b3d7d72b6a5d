//! Inception's input pipeline (`shaders/resize_bilinear.wgsl`): NCHW images with pixels in
//! [0, 1], gray or RGB, resized bilinearly as `F.interpolate(x, size, mode='bilinear',
//! align_corners=False)` does, mapped to [−1, 1] and written NHWC with three channels (a gray
//! image repeated, as pytorch-fid's `convert('RGB')` makes it).
//!
//! Along each axis: s = max((d + ½)·in/out − ½, 0), i0 = ⌊s⌋, i1 = min(i0 + 1, in − 1),
//! λ = s − i0; y = 2·((1 − λy)·((1 − λx)·x00 + λx·x01) + λy·((1 − λx)·x10 + λx·x11)) − 1.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::for_planes;

crate::params! {
    pub struct ResizeParams {
        pub n: u32,
        /// 1 (repeated to three) or 3.
        pub src_channels: u32,
        pub height: u32,
        pub width: u32,
        pub oh: u32,
        pub ow: u32,
        pub src_off: u32,
        pub dst_off: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "resize_bilinear",
    source: include_str!("../../shaders/resize_bilinear.wgsl"),
    preludes: &[],
};

pub static RESIZE_BILINEAR_NHWC: KernelDef = KernelDef {
    name: "resize_bilinear_nhwc",
    shader: &SHADER,
    params: &<ResizeParams as super::Params>::LAYOUT,
    bindings: &[Binding::read("src"), Binding::write("dst")],
    workgroups: |p| {
        let p: ResizeParams = cast(p);
        elementwise_groups(p.n * p.oh * p.ow * 3)
    },
    cpu: |p, b| resize_bilinear_nhwc_cpu(&cast(p), b.w(1), b.r(0)),
    reference: |p, b| resize_bilinear_nhwc_reference(&cast(p), b.w(1), b.r(0)),
    cases,
    bench: || {
        vec![
            case(8, 3, 64, 64, 299, 299, 1),
            case(8, 1, 28, 28, 299, 299, 2),
        ]
    },
    work: |p| {
        let p: ResizeParams = cast(p);
        Work::elementwise(p.n * p.oh * p.ow * 3, 5)
    },
};

/// y [n, oh, ow, 3] = 2·bilinear(x [n, src_channels, height, width]) − 1.
pub fn resize_bilinear_nhwc(
    be: &mut dyn Backend,
    y: Tensor,
    x: Tensor,
    n: usize,
    (src_channels, height, width): (usize, usize, usize),
    (oh, ow): (usize, usize),
) {
    let p = ResizeParams {
        n: u(n),
        src_channels: u(src_channels),
        height: u(height),
        width: u(width),
        oh: u(oh),
        ow: u(ow),
        ..Default::default()
    };
    launch(be, &RESIZE_BILINEAR_NHWC, p, &[x, y]);
}

/// (i0, i1, λ) of output coordinate `d` on an axis of `size_in` resized to `size_out`, in f32
/// as PyTorch's CPU kernel computes it.
pub fn taps(d: usize, size_in: usize, size_out: usize) -> (usize, usize, f32) {
    let scale = size_in as f32 / size_out as f32;
    let s = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
    let i0 = s as usize;
    (i0, (i0 + 1).min(size_in - 1), s - i0 as f32)
}

fn pixel(p: &ResizeParams, x: &[f32], image: usize, c: usize, oy: usize, ox: usize) -> f32 {
    let [sc, h, w, oh, ow] = [p.src_channels, p.height, p.width, p.oh, p.ow].map(|v| v as usize);
    let (y0, y1, ly) = taps(oy, h, oh);
    let (x0, x1, lx) = taps(ox, w, ow);
    let plane = &x[(image * sc + c % sc) * h * w..][..h * w];
    let top = (1.0 - lx) * plane[y0 * w + x0] + lx * plane[y0 * w + x1];
    let bottom = (1.0 - lx) * plane[y1 * w + x0] + lx * plane[y1 * w + x1];
    2.0 * ((1.0 - ly) * top + ly * bottom) - 1.0
}

/// Bilinear interpolation written out from the definition: the four neighbours' weights as
/// products, summed in f64.
pub fn resize_bilinear_nhwc_reference(p: &ResizeParams, y: &mut [f32], x: &[f32]) {
    let [n, sc, h, w, oh, ow] =
        [p.n, p.src_channels, p.height, p.width, p.oh, p.ow].map(|v| v as usize);
    for image in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for c in 0..3 {
                    let (y0, y1, ly) = taps(oy, h, oh);
                    let (x0, x1, lx) = taps(ox, w, ow);
                    let (ly, lx) = (ly as f64, lx as f64);
                    let at =
                        |yy: usize, xx: usize| x[((image * sc + c % sc) * h + yy) * w + xx] as f64;
                    let v = (1.0 - ly) * (1.0 - lx) * at(y0, x0)
                        + (1.0 - ly) * lx * at(y0, x1)
                        + ly * (1.0 - lx) * at(y1, x0)
                        + ly * lx * at(y1, x1);
                    y[((image * oh + oy) * ow + ox) * 3 + c] = (2.0 * v - 1.0) as f32;
                }
            }
        }
    }
}

pub fn resize_bilinear_nhwc_cpu(p: &ResizeParams, y: &mut [f32], x: &[f32]) {
    let [n, oh, ow] = [p.n, p.oh, p.ow].map(|v| v as usize);
    for_planes(&mut y[..n * oh * ow * 3], 3, |first, out| {
        for (i, px) in out.chunks_exact_mut(3).enumerate() {
            let pix = first + i;
            let (ox, oy, image) = (pix % ow, (pix / ow) % oh, pix / (ow * oh));
            for (c, v) in px.iter_mut().enumerate() {
                *v = pixel(p, x, image, c, oy, ox);
            }
        }
    });
}

fn case(n: usize, sc: usize, h: usize, w: usize, oh: usize, ow: usize, seed: u64) -> Case {
    let p = ResizeParams {
        n: u(n),
        src_channels: u(sc),
        height: u(h),
        width: u(w),
        oh: u(oh),
        ow: u(ow),
        ..Default::default()
    };
    Case::new(format!("{n}×{sc}×{h}×{w} → {oh}×{ow}"), p)
        .f32(uniform(seed, n * sc * h * w, 0.0, 1.0))
        .zeros(n * oh * ow * 3)
        .tol(1e-5, 1e-5)
}

/// Up and down, gray and RGB, non-square, the same size (an identity), one pixel wide.
fn cases() -> Vec<Case> {
    vec![
        case(2, 1, 5, 7, 13, 11, 1),
        case(1, 3, 9, 6, 4, 5, 2),
        case(2, 3, 6, 6, 6, 6, 3),
        case(1, 1, 1, 4, 3, 9, 4),
        case(3, 3, 7, 3, 29, 17, 5),
    ]
}

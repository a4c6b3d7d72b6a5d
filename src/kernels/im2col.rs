//! im2col for inference-only convolutions of NHWC maps (`shaders/im2col_nhwc.wgsl`): the patch
//! matrix whose product with the `[kh·kw·channels, out]` weights (`kernels::matmul`) is the
//! convolution. Rectangular kernels, strides and zero padding; rows are output pixels, taken a
//! range at a time so the matrix fits a workspace. Inception-v3's convolutions
//! (`crate::inception`) run as this kernel then the matmul with bias and ReLU.
//!
//! cols[r, (ky·kw + kx)·C + c] = x[img, oy·sh − ph + ky, ox·sw − pw + kx, c]  (0 outside),
//! r − row0 = the row's index, (img, oy, ox) = output pixel r of the [n, oh, ow] grid.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::for_planes;

crate::params! {
    pub struct Im2colParams {
        pub height: u32,
        pub width: u32,
        pub channels: u32,
        pub kh: u32,
        pub kw: u32,
        pub sh: u32,
        pub sw: u32,
        pub ph: u32,
        pub pw: u32,
        /// The output grid (floor((height + 2·ph − kh) / sh) + 1, and alike).
        pub oh: u32,
        pub ow: u32,
        /// The first output pixel (over all images) and how many rows to write.
        pub row0: u32,
        pub rows: u32,
        pub src_off: u32,
        pub dst_off: u32,
    }
}

/// A convolution's geometry over an NHWC map: input side, kernel, strides and padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub pad: (usize, usize),
}

impl ConvGeometry {
    pub fn oh(&self) -> usize {
        (self.height + 2 * self.pad.0 - self.kernel.0) / self.stride.0 + 1
    }

    pub fn ow(&self) -> usize {
        (self.width + 2 * self.pad.1 - self.kernel.1) / self.stride.1 + 1
    }

    /// Columns of the patch matrix: kh·kw·channels.
    pub fn patch(&self) -> usize {
        self.kernel.0 * self.kernel.1 * self.channels
    }

    /// True when the input already is the patch matrix (a 1×1 kernel, stride 1, no padding).
    pub fn is_pointwise(&self) -> bool {
        self.kernel == (1, 1) && self.stride == (1, 1) && self.pad == (0, 0)
    }

    pub fn params(&self, row0: usize, rows: usize) -> Im2colParams {
        Im2colParams {
            height: u(self.height),
            width: u(self.width),
            channels: u(self.channels),
            kh: u(self.kernel.0),
            kw: u(self.kernel.1),
            sh: u(self.stride.0),
            sw: u(self.stride.1),
            ph: u(self.pad.0),
            pw: u(self.pad.1),
            oh: u(self.oh()),
            ow: u(self.ow()),
            row0: u(row0),
            rows: u(rows),
            ..Default::default()
        }
    }
}

pub static SHADER: Shader = Shader {
    name: "im2col_nhwc",
    source: include_str!("../../shaders/im2col_nhwc.wgsl"),
    preludes: &[],
};

pub static IM2COL_NHWC: KernelDef = KernelDef {
    name: "im2col_nhwc",
    shader: &SHADER,
    params: &<Im2colParams as super::Params>::LAYOUT,
    bindings: &[Binding::read("src"), Binding::write("dst")],
    workgroups: |p| {
        let p: Im2colParams = cast(p);
        elementwise_groups(p.rows * p.kh * p.kw * p.channels)
    },
    cpu: |p, b| im2col_nhwc_cpu(&cast(p), b.w(1), b.r(0)),
    reference: |p, b| im2col_nhwc_reference(&cast(p), b.w(1), b.r(0)),
    cases,
    bench,
    work: |p| {
        let p: Im2colParams = cast(p);
        Work::elementwise(p.rows * p.kh * p.kw * p.channels, 2)
    },
};

/// cols [rows, kh·kw·channels] = the patch rows `row0 .. row0 + rows` of x (NHWC, `g`).
pub fn im2col_nhwc(
    be: &mut dyn Backend,
    cols: Tensor,
    x: Tensor,
    g: &ConvGeometry,
    row0: usize,
    rows: usize,
) {
    launch(be, &IM2COL_NHWC, g.params(row0, rows), &[x, cols]);
}

/// The source index of patch value (row r, column col), or None in the padding.
fn source(p: &Im2colParams, r: usize, col: usize) -> Option<usize> {
    let [h, w, c, kw, sh, sw, ph, pw, oh, ow] = [
        p.height, p.width, p.channels, p.kw, p.sh, p.sw, p.ph, p.pw, p.oh, p.ow,
    ]
    .map(|v| v as usize);
    let (ci, tap) = (col % c, col / c);
    let (kx, ky) = (tap % kw, tap / kw);
    let (ox, oy, image) = (r % ow, (r / ow) % oh, r / (ow * oh));
    let y = (oy * sh + ky).checked_sub(ph).filter(|&y| y < h)?;
    let x = (ox * sw + kx).checked_sub(pw).filter(|&x| x < w)?;
    Some(((image * h + y) * w + x) * c + ci)
}

pub fn im2col_nhwc_reference(p: &Im2colParams, cols: &mut [f32], x: &[f32]) {
    let k = (p.kh * p.kw * p.channels) as usize;
    for i in 0..p.rows as usize {
        for col in 0..k {
            cols[i * k + col] = source(p, p.row0 as usize + i, col).map_or(0.0, |s| x[s]);
        }
    }
}

/// Row by row over the pool; each tap's `channels` values are one contiguous copy.
pub fn im2col_nhwc_cpu(p: &Im2colParams, cols: &mut [f32], x: &[f32]) {
    let c = p.channels as usize;
    let k = (p.kh * p.kw) as usize * c;
    let rows = p.rows as usize;
    for_planes(&mut cols[..rows * k], k, |first, out| {
        for (i, row) in out.chunks_exact_mut(k).enumerate() {
            let r = p.row0 as usize + first + i;
            for (tap, dst) in row.chunks_exact_mut(c).enumerate() {
                match source(p, r, tap * c) {
                    Some(s) => dst.copy_from_slice(&x[s..s + c]),
                    None => dst.fill(0.0),
                }
            }
        }
    });
}

fn case(g: ConvGeometry, n: usize, row0: usize, rows: Option<usize>, seed: u64) -> Case {
    let rows = rows.unwrap_or(n * g.oh() * g.ow() - row0);
    let x = uniform(seed, n * g.height * g.width * g.channels, -1.0, 1.0);
    Case::new(
        format!(
            "{n}×{}×{}×{} k{:?} s{:?} p{:?} rows {row0}+{rows}",
            g.height, g.width, g.channels, g.kernel, g.stride, g.pad
        ),
        g.params(row0, rows),
    )
    .f32(x)
    .zeros(rows * g.patch())
}

fn geometry(
    (height, width, channels): (usize, usize, usize),
    kernel: (usize, usize),
    stride: (usize, usize),
    pad: (usize, usize),
) -> ConvGeometry {
    ConvGeometry {
        height,
        width,
        channels,
        kernel,
        stride,
        pad,
    }
}

/// Ragged maps under Inception's kernels (3×3 stride 2, 1×7 and 7×1 padded, 5×5 padded, 1×3)
/// and a rectangular stride, whole and as a range of rows that starts inside an image.
fn cases() -> Vec<Case> {
    vec![
        case(geometry((9, 7, 3), (3, 3), (2, 2), (0, 0)), 2, 0, None, 1),
        case(geometry((5, 6, 5), (1, 7), (1, 1), (0, 3)), 3, 0, None, 2),
        case(
            geometry((6, 5, 4), (7, 1), (1, 1), (3, 0)),
            2,
            7,
            Some(23),
            3,
        ),
        case(geometry((7, 7, 2), (5, 5), (1, 1), (2, 2)), 1, 0, None, 4),
        case(
            geometry((8, 9, 3), (1, 3), (1, 1), (0, 1)),
            2,
            11,
            Some(40),
            5,
        ),
        case(geometry((10, 11, 1), (3, 2), (2, 3), (1, 1)), 2, 0, None, 6),
        case(geometry((3, 3, 7), (3, 3), (1, 1), (1, 1)), 3, 0, None, 7),
    ]
}

/// Inception's largest patch matrix (Conv2d_2b_3x3 on 147×147×32, 2,048 rows of it) and a
/// 7×1 convolution of its 17×17 stage at batch 8.
fn bench() -> Vec<Case> {
    vec![
        case(
            geometry((147, 147, 32), (3, 3), (1, 1), (1, 1)),
            1,
            0,
            Some(2048),
            1,
        ),
        case(
            geometry((17, 17, 160), (7, 1), (1, 1), (3, 0)),
            8,
            0,
            None,
            2,
        ),
    ]
}

//! Channel concatenation of NHWC maps (`shaders/concat_channels.wgsl`): a branch's
//! [rows, src_channels] output copied into its columns of the block's [rows, dst_channels]
//! output (rows = images · pixels). Inception's blocks concatenate their branches this way.
//!
//! dst[r, col0 + c] = src[r, c]; the other columns untouched.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::for_planes;

crate::params! {
    pub struct ConcatParams {
        pub rows: u32,
        pub src_channels: u32,
        pub dst_channels: u32,
        pub col0: u32,
        pub src_off: u32,
        pub dst_off: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "concat_channels",
    source: include_str!("../../shaders/concat_channels.wgsl"),
    preludes: &[],
};

pub static CONCAT_CHANNELS: KernelDef = KernelDef {
    name: "concat_channels",
    shader: &SHADER,
    params: &<ConcatParams as super::Params>::LAYOUT,
    bindings: &[Binding::read("src"), Binding::write("dst")],
    workgroups: |p| {
        let p: ConcatParams = cast(p);
        elementwise_groups(p.rows * p.src_channels)
    },
    cpu: |p, b| concat_channels_cpu(&cast(p), b.w(1), b.r(0)),
    reference: |p, b| {
        let p: ConcatParams = cast(p);
        let (src, dst) = (b.r(0), b.w(1));
        let [rows, sc, dc, col0] =
            [p.rows, p.src_channels, p.dst_channels, p.col0].map(|v| v as usize);
        for r in 0..rows {
            for c in 0..sc {
                dst[r * dc + col0 + c] = src[r * sc + c];
            }
        }
    },
    cases,
    bench: || vec![case(8 * 17 * 17, 192, 768, 384, 1)],
    work: |p| {
        let p: ConcatParams = cast(p);
        Work {
            flops: 0.0,
            bytes: 8.0 * (p.rows * p.src_channels) as f64,
        }
    },
};

/// Columns col0.. of dst [rows, dst_channels] = src [rows, src_channels].
pub fn concat_channels(
    be: &mut dyn Backend,
    dst: Tensor,
    src: Tensor,
    rows: usize,
    (src_channels, dst_channels, col0): (usize, usize, usize),
) {
    assert!(
        col0 + src_channels <= dst_channels,
        "concat: columns past the end"
    );
    let p = ConcatParams {
        rows: u(rows),
        src_channels: u(src_channels),
        dst_channels: u(dst_channels),
        col0: u(col0),
        ..Default::default()
    };
    launch(be, &CONCAT_CHANNELS, p, &[src, dst]);
}

pub fn concat_channels_cpu(p: &ConcatParams, dst: &mut [f32], src: &[f32]) {
    let [rows, sc, dc, col0] = [p.rows, p.src_channels, p.dst_channels, p.col0].map(|v| v as usize);
    for_planes(&mut dst[..rows * dc], dc, |first, out| {
        for (i, row) in out.chunks_exact_mut(dc).enumerate() {
            row[col0..col0 + sc].copy_from_slice(&src[(first + i) * sc..][..sc]);
        }
    });
}

fn case(rows: usize, sc: usize, dc: usize, col0: usize, seed: u64) -> Case {
    let p = ConcatParams {
        rows: u(rows),
        src_channels: u(sc),
        dst_channels: u(dc),
        col0: u(col0),
        ..Default::default()
    };
    // The destination starts filled, so untouched columns are checked to stay so.
    Case::new(format!("{rows} rows, {sc} of {dc} at {col0}"), p)
        .f32(uniform(seed, rows * sc, -1.0, 1.0))
        .f32(uniform(seed + 100, rows * dc, 5.0, 6.0))
}

fn cases() -> Vec<Case> {
    vec![
        case(7, 3, 10, 0, 1),
        case(13, 5, 11, 6, 2),
        case(1, 4, 4, 0, 3),
        case(37, 9, 20, 4, 4),
    ]
}

//! Minibatch rows gathered by index from a dataset resident on the device
//! (`shaders/gather.wgsl`). 8-bit rows stay 8-bit in memory, four to a word, and are mapped to
//! value·scale + offset as they are gathered; a dataset larger than one storage binding is split
//! into up to four chunks of `chunk_rows` rows (bound whole, from word 0).

use super::case::uniform;
use super::{
    Binding, Bindings, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u,
};
use crate::backend::{Backend, DeviceRows, MAX_ROW_CHUNKS, Tensor};
use crate::cpu::par::{PAR_MIN, par_chunk};
use rayon::prelude::*;

crate::params! {
    pub struct GatherParams {
        pub rows: u32,
        pub row_len: u32,
        pub chunk_rows: u32,
        pub idx_off: u32,
        pub out_off: u32,
        pub scale: f32,
        pub offset: f32,
    }
}

pub static SHADER: Shader = Shader {
    name: "gather",
    source: include_str!("../../shaders/gather.wgsl"),
    preludes: &[],
};

const BINDINGS: &[Binding] = &[
    Binding::read("idx").u32(),
    Binding::write("out"),
    Binding::read("src0").u32(),
    Binding::read("src1").u32(),
    Binding::read("src2").u32(),
    Binding::read("src3").u32(),
];

fn groups(p: &[u8]) -> [u32; 3] {
    let p: GatherParams = cast(p);
    elementwise_groups(p.rows * p.row_len)
}

fn work(p: &[u8]) -> Work {
    let p: GatherParams = cast(p);
    Work::elementwise(p.rows * p.row_len, 2)
}

/// The byte `j` of row `row` of a chunked u8 dataset.
fn byte(b: &Bindings, chunk_rows: usize, row_len: usize, row: usize, j: usize) -> u8 {
    let chunk: &[u8] = bytemuck::cast_slice(b.r(2 + row / chunk_rows));
    chunk[(row % chunk_rows) * row_len + j]
}

fn gather_u8_ref(p: &[u8], b: &mut Bindings) {
    let p: GatherParams = cast(p);
    let (rows, row_len, chunk_rows) = (p.rows as usize, p.row_len as usize, p.chunk_rows as usize);
    let idx = b.r_u32(0);
    let out = b.w(1);
    for r in 0..rows {
        for j in 0..row_len {
            let v = byte(b, chunk_rows, row_len, idx[r] as usize, j);
            out[r * row_len + j] = v as f32 * p.scale + p.offset;
        }
    }
}

fn gather_u8_twin(p: &[u8], b: &mut Bindings) {
    let p: GatherParams = cast(p);
    let (rows, row_len, chunk_rows) = (p.rows as usize, p.row_len as usize, p.chunk_rows as usize);
    let chunks: Vec<&[u8]> = (0..MAX_ROW_CHUNKS)
        .map(|i| bytemuck::cast_slice(b.r(2 + i)))
        .collect();
    let idx = b.r_u32(0);
    let one_row = |(r, out): (usize, &mut [f32])| {
        let row = idx[r] as usize;
        let start = (row % chunk_rows) * row_len;
        let src = &chunks[row / chunk_rows][start..start + row_len];
        for (o, &v) in out.iter_mut().zip(src) {
            *o = v as f32 * p.scale + p.offset;
        }
    };
    let out = &mut b.w(1)[..rows * row_len];
    match par_chunk(rows * row_len, PAR_MIN) {
        Some(_) => out.par_chunks_mut(row_len).enumerate().for_each(one_row),
        None => out.chunks_mut(row_len).enumerate().for_each(one_row),
    }
}

fn gather_f32_ref(p: &[u8], b: &mut Bindings) {
    let p: GatherParams = cast(p);
    let (rows, row_len) = (p.rows as usize, p.row_len as usize);
    let (idx, src) = (b.r_u32(0), b.r(2));
    let out = b.w(1);
    for r in 0..rows {
        let row = idx[r] as usize;
        out[r * row_len..(r + 1) * row_len]
            .copy_from_slice(&src[row * row_len..(row + 1) * row_len]);
    }
}

pub static GATHER_ROWS_U8: KernelDef = KernelDef {
    name: "gather_rows_u8",
    shader: &SHADER,
    params: &<GatherParams as super::Params>::LAYOUT,
    bindings: BINDINGS,
    workgroups: groups,
    cpu: gather_u8_twin,
    reference: gather_u8_ref,
    cases: || {
        vec![
            u8_case(5, 1, 7, 3, 1),
            u8_case(64, 784, 1000, 300, 2),
            u8_case(3, 3072, 40, 40, 3),
            u8_case(17, 13, 101, 26, 4),
        ]
    },
    bench: || vec![u8_case(128, 784, 7000, 7000, 1)],
    work,
};

pub static GATHER_ROWS_F32: KernelDef = KernelDef {
    name: "gather_rows_f32",
    shader: &SHADER,
    params: &<GatherParams as super::Params>::LAYOUT,
    bindings: BINDINGS,
    workgroups: groups,
    cpu: gather_f32_ref,
    reference: gather_f32_ref,
    cases: || {
        vec![
            f32_case(1, 2, 5, 1),
            f32_case(512, 2, 1000, 2),
            f32_case(33, 7, 50, 3),
        ]
    },
    bench: || vec![f32_case(512, 2, 100_000, 1)],
    work,
};

fn indices(seed: u64, rows: usize, n: usize) -> Vec<u32> {
    uniform(seed, rows, 0.0, n as f32)
        .iter()
        .map(|v| (*v as u32).min(n as u32 - 1))
        .collect()
}

/// A dataset of `n` rows in chunks of `chunk_rows` (at most four).
fn u8_case(rows: usize, row_len: usize, n: usize, chunk_rows: usize, seed: u64) -> Case {
    let p = GatherParams {
        rows: u(rows),
        row_len: u(row_len),
        chunk_rows: u(chunk_rows),
        scale: 2.0 / 255.0,
        offset: -1.0,
        ..Default::default()
    };
    let bytes: Vec<u8> = uniform(seed, n * row_len, 0.0, 256.0)
        .iter()
        .map(|v| *v as u8)
        .collect();
    let mut c = Case::new(
        format!("rows={rows} row_len={row_len} of {n} in chunks of {chunk_rows}"),
        p,
    )
    .u32(indices(seed + 1, rows, n))
    .zeros(rows * row_len)
    .tol(1e-6, 1e-6);
    let chunks: Vec<&[u8]> = bytes.chunks(chunk_rows * row_len).collect();
    assert!(chunks.len() <= MAX_ROW_CHUNKS);
    for i in 0..MAX_ROW_CHUNKS {
        let data = chunks[i.min(chunks.len() - 1)];
        let mut words = vec![0u32; data.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..data.len()].copy_from_slice(data);
        c = c.u32(words);
    }
    c
}

fn f32_case(rows: usize, row_len: usize, n: usize, seed: u64) -> Case {
    let p = GatherParams {
        rows: u(rows),
        row_len: u(row_len),
        chunk_rows: u32::MAX,
        ..Default::default()
    };
    let src: Vec<u32> = bytemuck::cast_vec(uniform(seed, n * row_len, -4.0, 4.0));
    Case::new(format!("rows={rows} row_len={row_len} of {n}"), p)
        .u32(indices(seed + 1, rows, n))
        .zeros(rows * row_len)
        .u32(src.clone())
        .u32(src.clone())
        .u32(src.clone())
        .u32(src)
        .tol(0.0, 0.0)
}

/// out[r, :] = src row idx[r] as bytes · scale + offset, for r < rows.
pub fn gather_rows_u8(
    be: &mut dyn Backend,
    out: Tensor,
    src: &DeviceRows,
    idx: Tensor,
    rows: usize,
    scale: f32,
    offset: f32,
) {
    assert!(
        !src.chunks.is_empty() && src.chunks.len() <= MAX_ROW_CHUNKS,
        "gather_rows_u8: {} chunks",
        src.chunks.len()
    );
    let p = GatherParams {
        rows: u(rows),
        row_len: u(src.row_len),
        chunk_rows: u(src.chunk_rows),
        scale,
        offset,
        ..Default::default()
    };
    let c = |i: usize| src.chunks[i.min(src.chunks.len() - 1)];
    launch(be, &GATHER_ROWS_U8, p, &[idx, out, c(0), c(1), c(2), c(3)]);
}

/// out[r, :] = src[idx[r], :] for f32 rows of `row_len` (src from word 0 of its buffer).
pub fn gather_rows_f32(
    be: &mut dyn Backend,
    out: Tensor,
    src: Tensor,
    idx: Tensor,
    rows: usize,
    row_len: usize,
) {
    let p = GatherParams {
        rows: u(rows),
        row_len: u(row_len),
        chunk_rows: u32::MAX,
        ..Default::default()
    };
    launch(be, &GATHER_ROWS_F32, p, &[idx, out, src, src, src, src]);
}

crate::params! {
    pub struct GatherLabelsParams {
        pub rows: u32,
        pub idx_off: u32,
        pub src_off: u32,
        pub out_off: u32,
    }
}

pub static LABELS_SHADER: Shader = Shader {
    name: "gather_labels",
    source: include_str!("../../shaders/gather_labels.wgsl"),
    preludes: &[],
};

fn gather_labels_ref(p: &[u8], b: &mut Bindings) {
    let p: GatherLabelsParams = cast(p);
    let (idx, src) = (b.r_u32(0), b.r_u32(1));
    let out = b.w_u32(2);
    for r in 0..p.rows as usize {
        out[r] = src[idx[r] as usize];
    }
}

/// The labels of a minibatch by the indices its rows were gathered with.
pub static GATHER_LABELS: KernelDef = KernelDef {
    name: "gather_labels",
    shader: &LABELS_SHADER,
    params: &<GatherLabelsParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("idx").u32(),
        Binding::read("src").u32(),
        Binding::write("out").u32(),
    ],
    workgroups: |p| elementwise_groups(cast::<GatherLabelsParams>(p).rows),
    cpu: gather_labels_ref,
    reference: gather_labels_ref,
    cases: || {
        vec![
            labels_case(1, 1),
            labels_case(64, 7000),
            labels_case(301, 50),
        ]
    },
    bench: || vec![labels_case(128, 7000)],
    work: |p| Work::elementwise(cast::<GatherLabelsParams>(p).rows, 3),
};

fn labels_case(rows: usize, n: usize) -> Case {
    let p = GatherLabelsParams {
        rows: u(rows),
        ..Default::default()
    };
    let src: Vec<u32> = (0..n as u32)
        .map(|i| i.wrapping_mul(2_654_435_761) % 10)
        .collect();
    Case::new(format!("rows={rows} of {n}"), p)
        .u32(indices(rows as u64, rows, n))
        .u32(src)
        .u32(vec![0; rows])
}

/// out[r] = labels[idx[r]] for r < rows (u32 tensors).
pub fn gather_labels(be: &mut dyn Backend, out: Tensor, labels: Tensor, idx: Tensor, rows: usize) {
    let p = GatherLabelsParams {
        rows: u(rows),
        ..Default::default()
    };
    launch(be, &GATHER_LABELS, p, &[idx, labels, out]);
}

//! Class embeddings (`shaders/embedding.wgsl`): a table [classes, width] looked up by each
//! row's label, concatenated after the row's noise, and its gradient gathered per class.
//!
//! Forward:  y[r] = [x[r] (x_len values) | table[labels[r]] (width values)]
//! Backward: dtable[k, j] (+)= Σ_{r: labels[r] = k} dy[r, x_len + j]   (rows in order)

use super::case::uniform;
use super::{
    Binding, Bindings, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u,
};
use crate::backend::{Backend, Tensor, WriteMode};

crate::params! {
    pub struct EmbeddingParams {
        pub rows: u32,
        pub x_len: u32,
        pub width: u32,
        pub classes: u32,
        pub accumulate: u32,
        pub x_off: u32,
        pub table_off: u32,
        pub labels_off: u32,
        pub y_off: u32,
        pub dy_off: u32,
        pub dtable_off: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "embedding",
    source: include_str!("../../shaders/embedding.wgsl"),
    preludes: &[],
};

struct Dims {
    rows: usize,
    x_len: usize,
    width: usize,
    classes: usize,
    accumulate: bool,
}

fn dims(p: &[u8]) -> Dims {
    let p: EmbeddingParams = cast(p);
    Dims {
        rows: p.rows as usize,
        x_len: p.x_len as usize,
        width: p.width as usize,
        classes: p.classes as usize,
        accumulate: p.accumulate != 0,
    }
}

/// The class of a label, clamped to the table as every implementation clamps it.
pub fn class_of(label: u32, classes: usize) -> usize {
    (label as usize).min(classes - 1)
}

fn forward_ref(p: &[u8], b: &mut Bindings) {
    let d = dims(p);
    let (x, table, labels) = (b.r(0), b.r(1), b.r_u32(2));
    let y = b.w(3);
    let row_len = d.x_len + d.width;
    for r in 0..d.rows {
        let k = class_of(labels[r], d.classes);
        for i in 0..row_len {
            y[r * row_len + i] = if i < d.x_len {
                x[r * d.x_len + i]
            } else {
                table[k * d.width + i - d.x_len]
            };
        }
    }
}

fn forward_twin(p: &[u8], b: &mut Bindings) {
    let d = dims(p);
    let (x, table, labels) = (b.r(0), b.r(1), b.r_u32(2));
    let y = b.w(3);
    let row_len = d.x_len + d.width;
    for (r, row) in y[..d.rows * row_len].chunks_exact_mut(row_len).enumerate() {
        let k = class_of(labels[r], d.classes);
        row[..d.x_len].copy_from_slice(&x[r * d.x_len..(r + 1) * d.x_len]);
        row[d.x_len..].copy_from_slice(&table[k * d.width..(k + 1) * d.width]);
    }
}

fn backward_ref(p: &[u8], b: &mut Bindings) {
    let d = dims(p);
    let (labels, dy) = (b.r_u32(2), b.r(4));
    let dtable = b.w(5);
    let row_len = d.x_len + d.width;
    for k in 0..d.classes {
        for j in 0..d.width {
            let mut s = 0.0f32;
            for r in 0..d.rows {
                if class_of(labels[r], d.classes) == k {
                    s += dy[r * row_len + d.x_len + j];
                }
            }
            let i = k * d.width + j;
            dtable[i] = if d.accumulate { s + dtable[i] } else { s };
        }
    }
}

/// The same sums, row by row into each class's table row (rows in order, so bit-identical to
/// the reference's per-entry loops).
fn backward_twin(p: &[u8], b: &mut Bindings) {
    let d = dims(p);
    let (labels, dy) = (b.r_u32(2), b.r(4));
    let dtable = &mut b.w(5)[..d.classes * d.width];
    let row_len = d.x_len + d.width;
    let mut sums = vec![0.0f32; d.classes * d.width];
    for r in 0..d.rows {
        let k = class_of(labels[r], d.classes);
        let src = &dy[r * row_len + d.x_len..(r + 1) * row_len];
        for (s, &g) in sums[k * d.width..(k + 1) * d.width].iter_mut().zip(src) {
            *s += g;
        }
    }
    for (t, s) in dtable.iter_mut().zip(sums) {
        *t = if d.accumulate { s + *t } else { s };
    }
}

const BACKWARD_BINDINGS: &[Binding] = &[
    Binding::unused("x"),
    Binding::unused("table"),
    Binding::read("labels").u32(),
    Binding::unused("y"),
    Binding::read("dy"),
    Binding::write("dtable"),
];

const FORWARD_BINDINGS: &[Binding] = &[
    Binding::read("x"),
    Binding::read("table"),
    Binding::read("labels").u32(),
    Binding::write("y"),
    Binding::unused("dy"),
    Binding::unused("dtable"),
];

pub static EMBEDDING_FORWARD: KernelDef = KernelDef {
    name: "embedding_forward",
    shader: &SHADER,
    params: &<EmbeddingParams as super::Params>::LAYOUT,
    bindings: FORWARD_BINDINGS,
    workgroups: |p| {
        let d = dims(p);
        elementwise_groups(u(d.rows * (d.x_len + d.width)))
    },
    cpu: forward_twin,
    reference: forward_ref,
    cases: || cases(false),
    bench: || bench(false),
    work: |p| {
        let d = dims(p);
        Work::elementwise(u(d.rows * (d.x_len + d.width)), 2)
    },
};

pub static EMBEDDING_BACKWARD: KernelDef = KernelDef {
    name: "embedding_backward",
    shader: &SHADER,
    params: &<EmbeddingParams as super::Params>::LAYOUT,
    bindings: BACKWARD_BINDINGS,
    workgroups: |p| {
        let d = dims(p);
        elementwise_groups(u(d.classes * d.width))
    },
    cpu: backward_twin,
    reference: backward_ref,
    cases: || cases(true),
    bench: || bench(true),
    // Each class reads the labels and its rows' values once.
    work: |p| {
        let d = dims(p);
        Work {
            flops: (d.rows * d.width) as f64,
            bytes: 4.0 * (d.rows * d.width + d.classes * (d.rows + d.width)) as f64,
        }
    },
};

/// Labels in 0..classes, plus one past the end in the last row (clamped to the last class).
fn labels(seed: u64, rows: usize, classes: usize) -> Vec<u32> {
    let mut l: Vec<u32> = uniform(seed, rows, 0.0, classes as f32)
        .iter()
        .map(|v| (*v as u32).min(classes as u32 - 1))
        .collect();
    if rows > 2 {
        l[rows - 1] = classes as u32;
    }
    l
}

fn case(
    rows: usize,
    x_len: usize,
    width: usize,
    classes: usize,
    backward: bool,
    acc: bool,
) -> Case {
    let seed = (rows * 31 + x_len * 7 + width * 3 + classes) as u64;
    let p = EmbeddingParams {
        rows: u(rows),
        x_len: u(x_len),
        width: u(width),
        classes: u(classes),
        accumulate: acc as u32,
        ..Default::default()
    };
    let label = format!(
        "rows={rows} x_len={x_len} width={width} classes={classes}{}",
        if acc { " accumulate" } else { "" }
    );
    let c = Case::new(label, p).tol(1e-5, 1e-5);
    let l = labels(seed, rows, classes);
    if backward {
        c.unused()
            .unused()
            .u32(l)
            .unused()
            .f32(uniform(seed + 1, rows * (x_len + width), -1.0, 1.0))
            .f32(uniform(seed + 2, classes * width, -1.0, 1.0))
    } else {
        c.f32(uniform(seed + 1, rows * x_len, -1.0, 1.0))
            .f32(uniform(seed + 2, classes * width, -1.0, 1.0))
            .u32(l)
            .zeros(rows * (x_len + width))
            .unused()
            .unused()
    }
}

/// One row and one class, no noise (a pure lookup), odd widths, more classes than rows.
fn cases(backward: bool) -> Vec<Case> {
    vec![
        case(1, 0, 1, 1, backward, false),
        case(3, 5, 2, 4, backward, false),
        case(17, 100, 10, 10, backward, false),
        case(5, 3, 7, 11, backward, backward),
        case(64, 0, 33, 3, backward, false),
    ]
}

/// The MLP generator's lookup at batch 64: 100 noise values and a 10-wide digit embedding.
fn bench(backward: bool) -> Vec<Case> {
    vec![case(64, 100, 10, 10, backward, false)]
}

/// A labelled batch through a class embedding: `rows` rows of `x_len` noise values, each
/// labelled (u32 `labels` [rows]) with one of `classes`, whose `width`-wide embedding follows.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddingBatch {
    pub labels: Tensor,
    pub rows: usize,
    pub x_len: usize,
    pub width: usize,
    pub classes: usize,
}

impl EmbeddingBatch {
    fn params(&self, write: WriteMode) -> EmbeddingParams {
        EmbeddingParams {
            rows: u(self.rows),
            x_len: u(self.x_len),
            width: u(self.width),
            classes: u(self.classes),
            accumulate: write.code(),
            ..Default::default()
        }
    }
}

/// y [rows, x_len + width] = [x [rows, x_len] | table[labels[r]] ], table [classes, width].
pub fn embedding_forward(
    be: &mut dyn Backend,
    y: Tensor,
    x: Tensor,
    table: Tensor,
    batch: EmbeddingBatch,
) {
    let (p, labels) = (batch.params(WriteMode::Overwrite), batch.labels);
    // With no noise columns x is never read; any input may stand in for it.
    let x = if batch.x_len == 0 { table } else { x };
    launch(
        be,
        &EMBEDDING_FORWARD,
        p,
        &[x, table, labels, y, table, table],
    );
}

/// dtable [classes, width] (+)= the per-class sums of dy's [rows, x_len + width] last `width`
/// columns.
pub fn embedding_backward(
    be: &mut dyn Backend,
    (dtable, write): (Tensor, WriteMode),
    dy: Tensor,
    batch: EmbeddingBatch,
) {
    let (p, labels) = (batch.params(write), batch.labels);
    launch(
        be,
        &EMBEDDING_BACKWARD,
        p,
        &[dy, dy, labels, dy, dy, dtable],
    );
}

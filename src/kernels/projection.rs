//! The projection discriminator's class term (Miyato & Koyama 2018), `shaders/projection.wgsl`:
//! D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩ with φ D's last features [rows, F] and embed a table
//! [classes, F]; the linear head ψ runs first (the matmul kernels) and these add to its output
//! and its input gradient.
//!
//! Forward:  out[r] += ⟨table[k_r], φ[r]⟩
//! Backward: dφ[r, j] += dy[r]·table[k_r, j];  dtable[k, j] (+)= Σ_{r of class k} dy[r]·φ[r, j]

use super::case::uniform;
use super::embedding::class_of;
use super::{
    Binding, Bindings, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u,
};
use crate::backend::{Backend, Tensor, WriteMode};

crate::params! {
    pub struct ProjectionParams {
        pub rows: u32,
        pub features: u32,
        pub classes: u32,
        pub accumulate: u32,
        pub rowvec_off: u32,
        pub scalar_off: u32,
        pub table_off: u32,
        pub labels_off: u32,
        pub out_off: u32,
        pub dtable_off: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "projection",
    source: include_str!("../../shaders/projection.wgsl"),
    preludes: &[],
};

/// (rows, features, classes, accumulate).
fn dims(p: &[u8]) -> (usize, usize, usize, bool) {
    let p: ProjectionParams = cast(p);
    (
        p.rows as usize,
        p.features as usize,
        p.classes as usize,
        p.accumulate != 0,
    )
}

fn forward(p: &[u8], b: &mut Bindings) {
    let (rows, f, k, _) = dims(p);
    let (phi, table, labels) = (b.r(0), b.r(2), b.r_u32(3));
    let out = b.w(4);
    for r in 0..rows {
        let e = &table[class_of(labels[r], k) * f..][..f];
        let s: f32 = e
            .iter()
            .zip(&phi[r * f..(r + 1) * f])
            .fold(0.0, |s, (a, b)| s + a * b);
        out[r] += s;
    }
}

fn backward_input(p: &[u8], b: &mut Bindings) {
    let (rows, f, k, _) = dims(p);
    let (dy, table, labels) = (b.r(1), b.r(2), b.r_u32(3));
    let out = b.w(4);
    for r in 0..rows {
        let e = &table[class_of(labels[r], k) * f..][..f];
        for (o, &t) in out[r * f..(r + 1) * f].iter_mut().zip(e) {
            *o += dy[r] * t;
        }
    }
}

fn embedding_ref(p: &[u8], b: &mut Bindings) {
    let (rows, f, k, acc) = dims(p);
    let (phi, dy, labels) = (b.r(0), b.r(1), b.r_u32(3));
    let dtable = b.w(5);
    for class in 0..k {
        for j in 0..f {
            let mut s = 0.0f32;
            for r in 0..rows {
                if class_of(labels[r], k) == class {
                    s += dy[r] * phi[r * f + j];
                }
            }
            let i = class * f + j;
            dtable[i] = if acc { s + dtable[i] } else { s };
        }
    }
}

/// Row by row into the row's class (each entry still sums its rows in order).
fn embedding_twin(p: &[u8], b: &mut Bindings) {
    let (rows, f, k, acc) = dims(p);
    let (phi, dy, labels) = (b.r(0), b.r(1), b.r_u32(3));
    let dtable = &mut b.w(5)[..k * f];
    let mut sums = vec![0.0f32; k * f];
    for r in 0..rows {
        let class = class_of(labels[r], k);
        for (s, &x) in sums[class * f..(class + 1) * f]
            .iter_mut()
            .zip(&phi[r * f..(r + 1) * f])
        {
            *s += dy[r] * x;
        }
    }
    for (t, s) in dtable.iter_mut().zip(sums) {
        *t = if acc { s + *t } else { s };
    }
}

pub static PROJECTION_FORWARD: KernelDef = KernelDef {
    name: "projection_forward",
    shader: &SHADER,
    params: &<ProjectionParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("rowvec"),
        Binding::unused("scalar"),
        Binding::read("table"),
        Binding::read("labels").u32(),
        Binding::write("out"),
        Binding::unused("dtable"),
    ],
    workgroups: |p| {
        let (rows, ..) = dims(p);
        [u(rows).div_ceil(64).clamp(1, 65_535), 1, 1]
    },
    cpu: forward,
    reference: forward,
    cases: || cases(Which::Forward),
    bench: || bench(Which::Forward),
    work: |p| {
        let (rows, f, ..) = dims(p);
        Work {
            flops: 2.0 * (rows * f) as f64,
            bytes: 8.0 * (rows * f) as f64,
        }
    },
};

pub static PROJECTION_BACKWARD_INPUT: KernelDef = KernelDef {
    name: "projection_backward_input",
    shader: &SHADER,
    params: &<ProjectionParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::unused("rowvec"),
        Binding::read("scalar"),
        Binding::read("table"),
        Binding::read("labels").u32(),
        Binding::write("out"),
        Binding::unused("dtable"),
    ],
    workgroups: |p| {
        let (rows, f, ..) = dims(p);
        elementwise_groups(u(rows * f))
    },
    cpu: backward_input,
    reference: backward_input,
    cases: || cases(Which::Input),
    bench: || bench(Which::Input),
    work: |p| {
        let (rows, f, ..) = dims(p);
        Work::elementwise(u(rows * f), 3)
    },
};

pub static PROJECTION_BACKWARD_EMBEDDING: KernelDef = KernelDef {
    name: "projection_backward_embedding",
    shader: &SHADER,
    params: &<ProjectionParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("rowvec"),
        Binding::read("scalar"),
        Binding::unused("table"),
        Binding::read("labels").u32(),
        Binding::unused("out"),
        Binding::write("dtable"),
    ],
    workgroups: |p| {
        let (_, f, k, _) = dims(p);
        elementwise_groups(u(k * f))
    },
    cpu: embedding_twin,
    reference: embedding_ref,
    cases: || cases(Which::Embedding),
    bench: || bench(Which::Embedding),
    work: |p| {
        let (rows, f, k, _) = dims(p);
        Work {
            flops: 2.0 * (rows * f) as f64,
            bytes: 4.0 * (rows * f + k * (rows + f)) as f64,
        }
    },
};

#[derive(Clone, Copy)]
enum Which {
    Forward,
    Input,
    Embedding,
}

fn case(rows: usize, f: usize, k: usize, acc: bool, which: Which) -> Case {
    let seed = (rows * 71 + f * 13 + k) as u64;
    let p = ProjectionParams {
        rows: u(rows),
        features: u(f),
        classes: u(k),
        accumulate: acc as u32,
        ..Default::default()
    };
    let mut labels: Vec<u32> = uniform(seed, rows, 0.0, k as f32)
        .iter()
        .map(|v| (*v as u32).min(k as u32 - 1))
        .collect();
    if rows > 2 {
        labels[1] = u32::MAX; // clamped to the last class
    }
    let label = format!(
        "rows={rows} features={f} classes={k}{}",
        if acc { " accumulate" } else { "" }
    );
    let c = Case::new(label, p).tol(1e-4, 1e-4);
    let phi = uniform(seed + 1, rows * f, -1.0, 1.0);
    let dy = uniform(seed + 2, rows, -1.0, 1.0);
    let table = uniform(seed + 3, k * f, -1.0, 1.0);
    match which {
        Which::Forward => c
            .f32(phi)
            .unused()
            .f32(table)
            .u32(labels)
            .f32(uniform(seed + 4, rows, -1.0, 1.0))
            .unused(),
        Which::Input => c
            .unused()
            .f32(dy)
            .f32(table)
            .u32(labels)
            .f32(uniform(seed + 4, rows * f, -1.0, 1.0))
            .unused(),
        Which::Embedding => c
            .f32(phi)
            .f32(dy)
            .unused()
            .u32(labels)
            .unused()
            .f32(uniform(seed + 5, k * f, -1.0, 1.0)),
    }
}

/// One row, one feature and one class; odd sizes; classes without rows; accumulation.
fn cases(which: Which) -> Vec<Case> {
    vec![
        case(1, 1, 1, false, which),
        case(5, 3, 2, false, which),
        case(37, 129, 10, false, which),
        case(4, 17, 9, true, which),
        case(130, 7, 3, true, which),
    ]
}

/// The projection heads at batch 64 ([real; fake] rows): the mlp critic's 1024 features, the
/// dcgan critic's 128·7·7.
fn bench(which: Which) -> Vec<Case> {
    vec![
        case(128, 1024, 10, false, which),
        case(128, 6272, 10, false, which),
    ]
}

/// A projection head's batch: `rows` feature rows φ of `features` values, each labelled (u32
/// `labels` [rows]) with one of `classes`.
#[derive(Clone, Copy, Debug)]
pub struct ProjectionBatch {
    pub labels: Tensor,
    pub rows: usize,
    pub features: usize,
    pub classes: usize,
}

fn params(batch: &ProjectionBatch, write: WriteMode) -> ProjectionParams {
    ProjectionParams {
        rows: u(batch.rows),
        features: u(batch.features),
        classes: u(batch.classes),
        accumulate: write.code(),
        ..Default::default()
    }
}

/// out [rows] += ⟨table[k_r], φ[r]⟩ with φ [rows, features], table [classes, features].
pub fn projection_forward(
    be: &mut dyn Backend,
    out: Tensor,
    phi: Tensor,
    table: Tensor,
    batch: ProjectionBatch,
) {
    let p = params(&batch, WriteMode::Overwrite);
    let labels = batch.labels;
    launch(
        be,
        &PROJECTION_FORWARD,
        p,
        &[phi, phi, table, labels, out, phi],
    );
}

/// dφ [rows, features] += dy[r]·table[k_r].
pub fn projection_backward_input(
    be: &mut dyn Backend,
    dphi: Tensor,
    dy: Tensor,
    table: Tensor,
    batch: ProjectionBatch,
) {
    let p = params(&batch, WriteMode::Overwrite);
    let labels = batch.labels;
    launch(
        be,
        &PROJECTION_BACKWARD_INPUT,
        p,
        &[dy, dy, table, labels, dphi, dy],
    );
}

/// dtable [classes, features] (+)= Σ_{r of class k} dy[r]·φ[r].
pub fn projection_backward_embedding(
    be: &mut dyn Backend,
    (dtable, write): (Tensor, WriteMode),
    phi: Tensor,
    dy: Tensor,
    batch: ProjectionBatch,
) {
    let p = params(&batch, write);
    let labels = batch.labels;
    launch(
        be,
        &PROJECTION_BACKWARD_EMBEDDING,
        p,
        &[phi, dy, phi, labels, phi, dtable],
    );
}

//! Class-conditional batch norm's per-class scale and shift (`shaders/class_affine.wgsl`): after
//! the batch is normalised (the batch-norm kernels with γ 1, β 0), each row is scaled and
//! shifted by its class's own γ and β. table = [γ: classes × C | β: classes × C].
//!
//! Forward:  y[r, c, s] = γ[k_r, c]·x̂[r, c, s] + β[k_r, c]
//! Backward: dx̂ = γ[k_r, c]·dy;  dγ[k, c] = Σ_{r of class k} Σ_s dy·x̂,  dβ[k, c] = Σ … dy

use super::case::uniform;
use super::embedding::class_of;
use super::{
    Binding, Bindings, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u,
};
use crate::backend::{Backend, Tensor};

crate::params! {
    pub struct ClassAffineParams {
        pub rows: u32,
        pub channels: u32,
        pub spatial: u32,
        pub classes: u32,
        pub src_off: u32,
        pub table_off: u32,
        pub labels_off: u32,
        pub out_off: u32,
        pub dy_off: u32,
        pub dtable_off: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "class_affine",
    source: include_str!("../../shaders/class_affine.wgsl"),
    preludes: &[],
};

/// (rows, channels, spatial, classes).
fn dims(p: &[u8]) -> (usize, usize, usize, usize) {
    let p: ClassAffineParams = cast(p);
    (
        p.rows as usize,
        p.channels as usize,
        p.spatial as usize,
        p.classes as usize,
    )
}

const ELEMENTWISE_BINDINGS: &[Binding] = &[
    Binding::read("src"),
    Binding::read("table"),
    Binding::read("labels").u32(),
    Binding::write("out"),
    Binding::unused("dy"),
    Binding::unused("dtable"),
];

const PARAMS_BINDINGS: &[Binding] = &[
    Binding::read("src"),
    Binding::unused("table"),
    Binding::read("labels").u32(),
    Binding::unused("out"),
    Binding::read("dy"),
    Binding::write("dtable"),
];

#[allow(clippy::needless_range_loop)] // rows index the labels and the planes alike
/// out = γ·src (+ β when `shift`): the forward and, without the shift, the input gradient.
fn elementwise(p: &[u8], b: &mut Bindings, shift: bool) {
    let (rows, c, s, k) = dims(p);
    let (src, table, labels) = (b.r(0), b.r(1), b.r_u32(2));
    let out = b.w(3);
    for r in 0..rows {
        let class = class_of(labels[r], k);
        for ch in 0..c {
            let at = class * c + ch;
            let (g, beta) = (table[at], if shift { table[k * c + at] } else { 0.0 });
            let i = (r * c + ch) * s;
            for (o, &x) in out[i..i + s].iter_mut().zip(&src[i..i + s]) {
                *o = if shift { g * x + beta } else { g * x };
            }
        }
    }
}

#[allow(clippy::needless_range_loop)]
fn params_ref(p: &[u8], b: &mut Bindings) {
    let (rows, c, s, k) = dims(p);
    let (xhat, labels, dy) = (b.r(0), b.r_u32(2), b.r(4));
    let dtable = b.w(5);
    for class in 0..k {
        for ch in 0..c {
            let (mut dg, mut db) = (0.0f32, 0.0f32);
            for r in 0..rows {
                if class_of(labels[r], k) != class {
                    continue;
                }
                for j in 0..s {
                    let i = (r * c + ch) * s + j;
                    dg += dy[i] * xhat[i];
                    db += dy[i];
                }
            }
            dtable[class * c + ch] = dg;
            dtable[k * c + class * c + ch] = db;
        }
    }
}

#[allow(clippy::needless_range_loop)]
/// Row by row into the row's class (each (class, channel) still sums its rows in order and its
/// positions in order, as the reference and the GPU do).
fn params_twin(p: &[u8], b: &mut Bindings) {
    let (rows, c, s, k) = dims(p);
    let (xhat, labels, dy) = (b.r(0), b.r_u32(2), b.r(4));
    let dtable = &mut b.w(5)[..2 * k * c];
    dtable.fill(0.0);
    let (dg, db) = dtable.split_at_mut(k * c);
    for r in 0..rows {
        let class = class_of(labels[r], k);
        for ch in 0..c {
            let i = (r * c + ch) * s;
            let (mut g, mut sum) = (dg[class * c + ch], db[class * c + ch]);
            for (&d, &x) in dy[i..i + s].iter().zip(&xhat[i..i + s]) {
                g += d * x;
                sum += d;
            }
            (dg[class * c + ch], db[class * c + ch]) = (g, sum);
        }
    }
}

fn n(p: &[u8]) -> usize {
    let (rows, c, s, _) = dims(p);
    rows * c * s
}

pub static CLASS_AFFINE_FORWARD: KernelDef = KernelDef {
    name: "class_affine_forward",
    shader: &SHADER,
    params: &<ClassAffineParams as super::Params>::LAYOUT,
    bindings: ELEMENTWISE_BINDINGS,
    workgroups: |p| elementwise_groups(u(n(p))),
    cpu: |p, b| elementwise(p, b, true),
    reference: |p, b| elementwise(p, b, true),
    cases: || cases(Which::Forward),
    bench: || bench(Which::Forward),
    work: |p| Work::elementwise(u(n(p)), 2),
};

pub static CLASS_AFFINE_BACKWARD_INPUT: KernelDef = KernelDef {
    name: "class_affine_backward_input",
    shader: &SHADER,
    params: &<ClassAffineParams as super::Params>::LAYOUT,
    bindings: ELEMENTWISE_BINDINGS,
    workgroups: |p| elementwise_groups(u(n(p))),
    cpu: |p, b| elementwise(p, b, false),
    reference: |p, b| elementwise(p, b, false),
    cases: || cases(Which::Input),
    bench: || bench(Which::Input),
    work: |p| Work::elementwise(u(n(p)), 2),
};

pub static CLASS_AFFINE_BACKWARD_PARAMS: KernelDef = KernelDef {
    name: "class_affine_backward_params",
    shader: &SHADER,
    params: &<ClassAffineParams as super::Params>::LAYOUT,
    bindings: PARAMS_BINDINGS,
    workgroups: |p| {
        let (_, c, _, k) = dims(p);
        elementwise_groups(u(k * c))
    },
    cpu: params_twin,
    reference: params_ref,
    cases: || cases(Which::Params),
    bench: || bench(Which::Params),
    work: |p| Work {
        flops: 3.0 * n(p) as f64,
        bytes: 8.0 * n(p) as f64,
    },
};

#[derive(Clone, Copy)]
enum Which {
    Forward,
    Input,
    Params,
}

fn case(rows: usize, c: usize, s: usize, k: usize, which: Which) -> Case {
    let seed = (rows * 131 + c * 17 + s * 5 + k) as u64;
    let p = ClassAffineParams {
        rows: u(rows),
        channels: u(c),
        spatial: u(s),
        classes: u(k),
        ..Default::default()
    };
    let mut labels: Vec<u32> = uniform(seed, rows, 0.0, k as f32)
        .iter()
        .map(|v| (*v as u32).min(k as u32 - 1))
        .collect();
    if rows > 2 {
        labels[0] = k as u32 + 3; // past the table: clamped to the last class
    }
    let len = rows * c * s;
    let c0 = Case::new(format!("rows={rows} C={c} spatial={s} classes={k}"), p)
        .tol(1e-5, 1e-5)
        .f32(uniform(seed + 1, len, -2.0, 2.0));
    match which {
        Which::Forward | Which::Input => c0
            .f32(uniform(seed + 2, 2 * k * c, -1.5, 1.5))
            .u32(labels)
            .zeros(len)
            .unused()
            .unused(),
        Which::Params => c0
            .unused()
            .u32(labels)
            .unused()
            .f32(uniform(seed + 3, len, -1.0, 1.0))
            .f32(uniform(seed + 4, 2 * k * c, -1.0, 1.0))
            .tol(1e-4, 1e-4),
    }
}

/// Flat features (spatial 1), one class, odd planes, classes without rows.
fn cases(which: Which) -> Vec<Case> {
    vec![
        case(1, 1, 1, 1, which),
        case(2, 3, 1, 2, which),
        case(7, 5, 9, 3, which),
        case(16, 4, 49, 10, which),
        case(3, 6, 5, 13, which),
    ]
}

/// The conditional dcgan generator's batch norms at batch 64, 10 classes: 6272 flat features
/// after its Linear, 64 channels at 14×14.
fn bench(which: Which) -> Vec<Case> {
    vec![case(64, 6272, 1, 10, which), case(64, 64, 196, 10, which)]
}

/// A labelled batch of [rows, channels, spatial] values, each row labelled (u32 `labels`
/// [rows]) with one of `classes`.
#[derive(Clone, Copy, Debug)]
pub struct ClassBatch {
    pub labels: Tensor,
    pub rows: usize,
    pub channels: usize,
    pub spatial: usize,
    pub classes: usize,
}

fn params(batch: &ClassBatch) -> ClassAffineParams {
    ClassAffineParams {
        rows: u(batch.rows),
        channels: u(batch.channels),
        spatial: u(batch.spatial),
        classes: u(batch.classes),
        ..Default::default()
    }
}

/// y = γ[k_r]·x̂ + β[k_r] over [rows, channels, spatial]; table = [γ k×C | β k×C].
pub fn class_affine_forward(
    be: &mut dyn Backend,
    y: Tensor,
    xhat: Tensor,
    table: Tensor,
    batch: ClassBatch,
) {
    let (p, labels) = (params(&batch), batch.labels);
    launch(
        be,
        &CLASS_AFFINE_FORWARD,
        p,
        &[xhat, table, labels, y, xhat, xhat],
    );
}

/// dx̂ = γ[k_r]·dy.
pub fn class_affine_backward_input(
    be: &mut dyn Backend,
    dxhat: Tensor,
    dy: Tensor,
    table: Tensor,
    batch: ClassBatch,
) {
    let (p, labels) = (params(&batch), batch.labels);
    launch(
        be,
        &CLASS_AFFINE_BACKWARD_INPUT,
        p,
        &[dy, table, labels, dxhat, dy, dy],
    );
}

/// dtable = [dγ k×C | dβ k×C], overwritten.
pub fn class_affine_backward_params(
    be: &mut dyn Backend,
    dtable: Tensor,
    xhat: Tensor,
    dy: Tensor,
    batch: ClassBatch,
) {
    let (p, labels) = (params(&batch), batch.labels);
    launch(
        be,
        &CLASS_AFFINE_BACKWARD_PARAMS,
        p,
        &[xhat, dy, labels, dy, dy, dtable],
    );
}

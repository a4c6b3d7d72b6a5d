//! Softmax cross-entropy of a classifier's logits against integer labels
//! (`shaders/cross_entropy.wgsl`): the gradient (softmax − one-hot)/rows, and the mean loss and
//! the number of correct predictions reduced on the device. Trains duel's feature network.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, launch, u};
use crate::backend::{Backend, Tensor, WriteMode};

crate::params! {
    pub struct CrossEntropyParams {
        pub rows: u32,
        pub classes: u32,
        pub accumulate: u32,
        pub logits_off: u32,
        pub labels_off: u32,
        pub grad_off: u32,
        pub stats_off: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "cross_entropy",
    source: include_str!("../../shaders/cross_entropy.wgsl"),
    preludes: &[],
};

pub static CROSS_ENTROPY: KernelDef = KernelDef {
    name: "cross_entropy",
    shader: &SHADER,
    params: &<CrossEntropyParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("logits"),
        Binding::read("labels").u32(),
        Binding::write("grad"),
        Binding::write("stats"),
    ],
    workgroups: |_| [1, 1, 1],
    // A pass over a batch of logits: the reference loop is the twin.
    cpu: |p, b| cross_entropy_ref(&cast(p), b.r(0), b.r_u32(1), b.w(2), b.w(3)),
    reference: |p, b| cross_entropy_ref(&cast(p), b.r(0), b.r_u32(1), b.w(2), b.w(3)),
    cases: || {
        [
            (1, 1, 0),
            (1, 10, 1),
            (3, 7, 0),
            (128, 10, 1),
            (300, 3, 0),
            (1000, 10, 1),
        ]
        .into_iter()
        .map(|(r, c, acc)| case(r, c, acc, (r * 31 + c) as u64))
        .collect()
    },
    bench: || vec![case(128, 10, 0, 1)],
    work: |p| {
        let p: CrossEntropyParams = cast(p);
        Work::elementwise(p.rows * p.classes, 2)
    },
};

fn case(rows: usize, classes: usize, accumulate: u32, seed: u64) -> Case {
    let p = CrossEntropyParams {
        rows: u(rows),
        classes: u(classes),
        accumulate,
        ..Default::default()
    };
    let labels = uniform(seed + 1, rows, 0.0, classes as f32)
        .iter()
        .map(|v| (*v as u32).min(classes as u32 - 1))
        .collect();
    Case::new(format!("rows={rows} classes={classes} acc={accumulate}"), p)
        .f32(uniform(seed, rows * classes, -8.0, 8.0))
        .u32(labels)
        .zeros(rows * classes)
        .f32(vec![0.5, 3.0])
        .tol(1e-5, 1e-4)
}

/// grad = (softmax(logits) − onehot(labels)) / rows; stats[0..2] (+)= (mean loss, correct).
pub fn cross_entropy(
    be: &mut dyn Backend,
    grad: Tensor,
    logits: Tensor,
    labels: Tensor,
    (stats, write): (Tensor, WriteMode),
    rows: usize,
    classes: usize,
) {
    let p = CrossEntropyParams {
        rows: u(rows),
        classes: u(classes),
        accumulate: write.code(),
        ..Default::default()
    };
    launch(be, &CROSS_ENTROPY, p, &[logits, labels, grad, stats]);
}

pub fn cross_entropy_ref(
    p: &CrossEntropyParams,
    logits: &[f32],
    labels: &[u32],
    grad: &mut [f32],
    stats: &mut [f32],
) {
    let (rows, classes) = (p.rows as usize, p.classes as usize);
    let inv = 1.0 / rows.max(1) as f32;
    let (mut loss, mut hits) = (0.0f32, 0.0f32);
    for r in 0..rows {
        let l = &logits[r * classes..(r + 1) * classes];
        let y = labels[r] as usize;
        let (mut m, mut arg) = (l[0], 0);
        for (c, &v) in l.iter().enumerate().skip(1) {
            if v > m {
                (m, arg) = (v, c);
            }
        }
        let lse = m + l.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
        loss += (lse - l[y]) * inv;
        hits += (arg == y) as u32 as f32;
        for c in 0..classes {
            let prob = (l[c] - lse).exp();
            grad[r * classes + c] = (prob - (c == y) as u32 as f32) * inv;
        }
    }
    let out = [loss, hits];
    for (s, o) in stats[..2].iter_mut().zip(out) {
        *s = if p.accumulate != 0 { *s + o } else { o };
    }
}

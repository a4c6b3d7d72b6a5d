//! Maxout: y[r,u] = max_j x[r, u·pieces + j], recording the winner (`shaders/maxout.wgsl`).
//! Backward routes dy to the winning piece.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u};
use crate::backend::{Backend, Tensor};

crate::params! {
    pub struct MaxoutParams {
        pub rows: u32,
        pub units: u32,
        pub pieces: u32,
        pub src_off: u32,
        pub dst_off: u32,
        pub idx_off: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "maxout",
    source: include_str!("../../shaders/maxout.wgsl"),
    preludes: &[],
};

fn dims(p: &[u8]) -> (usize, usize, usize) {
    let p: MaxoutParams = cast(p);
    (p.rows as usize, p.units as usize, p.pieces as usize)
}

pub static MAXOUT_FORWARD: KernelDef = KernelDef {
    name: "maxout_forward",
    shader: &SHADER,
    params: &<MaxoutParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("src"),
        Binding::write("dst"),
        Binding::write("idx").u32(),
    ],
    workgroups: |p| {
        let p: MaxoutParams = cast(p);
        elementwise_groups(p.rows * p.units)
    },
    cpu: |p, b| {
        let (rows, units, pieces) = dims(p);
        let (y, idx) = (b.w(1), b.w_u32(2));
        maxout_forward_ref(y, idx, b.r(0), rows * units, pieces)
    },
    reference: |p, b| {
        let (rows, units, pieces) = dims(p);
        let (y, idx) = (b.w(1), b.w_u32(2));
        maxout_forward_ref(y, idx, b.r(0), rows * units, pieces)
    },
    cases: || cases(false),
    bench: || vec![case(128, 240, 5, false, 1)],
    work: |p| {
        let (rows, units, pieces) = dims(p);
        Work::elementwise(u(rows * units), pieces as u32 + 2)
    },
};

pub static MAXOUT_BACKWARD: KernelDef = KernelDef {
    name: "maxout_backward",
    shader: &SHADER,
    params: &<MaxoutParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("src"),
        Binding::write("dst"),
        Binding::write("idx").u32(),
    ],
    workgroups: |p| {
        let p: MaxoutParams = cast(p);
        elementwise_groups(p.rows * p.units)
    },
    cpu: |p, b| {
        let (rows, units, pieces) = dims(p);
        let (dx, idx) = (b.w(1), b.w_u32(2));
        maxout_backward_ref(dx, b.r(0), idx, rows * units, pieces)
    },
    reference: |p, b| {
        let (rows, units, pieces) = dims(p);
        let (dx, idx) = (b.w(1), b.w_u32(2));
        maxout_backward_ref(dx, b.r(0), idx, rows * units, pieces)
    },
    cases: || cases(true),
    bench: || vec![case(128, 240, 5, true, 2)],
    work: |p| {
        let (rows, units, pieces) = dims(p);
        Work::elementwise(u(rows * units), pieces as u32 + 2)
    },
};

fn case(rows: usize, units: usize, pieces: usize, backward: bool, seed: u64) -> Case {
    let p = MaxoutParams {
        rows: u(rows),
        units: u(units),
        pieces: u(pieces),
        ..Default::default()
    };
    let c = Case::new(format!("rows={rows} units={units} pieces={pieces}"), p);
    let n = rows * units;
    if backward {
        let idx = uniform(seed + 1, n, 0.0, pieces as f32)
            .iter()
            .map(|v| (*v as u32).min(pieces as u32 - 1))
            .collect();
        c.f32(uniform(seed, n, -1.0, 1.0))
            .zeros(n * pieces)
            .u32(idx)
    } else {
        // Coarse values make ties, which must go to the first piece.
        let x = uniform(seed, n * pieces, -4.0, 4.0)
            .iter()
            .map(|v| v.round())
            .collect();
        c.f32(x).zeros(n).u32(vec![0; n])
    }
}

fn cases(backward: bool) -> Vec<Case> {
    [
        (1, 1, 1),
        (3, 63, 5),
        (65, 100, 2),
        (127, 240, 5),
        (1, 7, 3),
    ]
    .iter()
    .enumerate()
    .map(|(i, &(r, un, p))| case(r, un, p, backward, 9 * i as u64))
    .collect()
}

/// y[r,u] = max_j x[r, u·pieces + j]; idx[r,u] = the winning j.
pub fn maxout_forward(
    be: &mut dyn Backend,
    y: Tensor,
    idx: Tensor,
    x: Tensor,
    rows: usize,
    units: usize,
    pieces: usize,
) {
    let p = MaxoutParams {
        rows: u(rows),
        units: u(units),
        pieces: u(pieces),
        ..Default::default()
    };
    launch(be, &MAXOUT_FORWARD, p, &[x, y, idx]);
}

/// dx[r, u·pieces + j] = dy[r,u] if j won, else 0.
pub fn maxout_backward(
    be: &mut dyn Backend,
    dx: Tensor,
    dy: Tensor,
    idx: Tensor,
    rows: usize,
    units: usize,
    pieces: usize,
) {
    let p = MaxoutParams {
        rows: u(rows),
        units: u(units),
        pieces: u(pieces),
        ..Default::default()
    };
    launch(be, &MAXOUT_BACKWARD, p, &[dy, dx, idx]);
}

/// The twin is the reference: a gather over small groups, memory-bound either way.
pub fn maxout_forward_ref(y: &mut [f32], idx: &mut [u32], x: &[f32], n: usize, pieces: usize) {
    for i in 0..n {
        let group = &x[i * pieces..(i + 1) * pieces];
        let (mut best, mut arg) = (group[0], 0u32);
        for (j, &v) in group.iter().enumerate().skip(1) {
            if v > best {
                best = v;
                arg = j as u32;
            }
        }
        y[i] = best;
        idx[i] = arg;
    }
}

pub fn maxout_backward_ref(dx: &mut [f32], dy: &[f32], idx: &[u32], n: usize, pieces: usize) {
    for i in 0..n {
        for j in 0..pieces {
            dx[i * pieces + j] = if j as u32 == idx[i] { dy[i] } else { 0.0 };
        }
    }
}

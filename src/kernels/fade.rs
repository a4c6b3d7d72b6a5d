//! Weighted sums of two tensors (`shaders/fade.wgsl`): progressive growing's fade-in blend of a
//! new block's output with the resampled old path, its backward to both, and an in-place
//! y ← wa·y + wb·a that zeroes, scales and accumulates (equalized learning rate's runtime scale,
//! the composite networks' gradient sums).
//!
//! fade_forward:  y = wa·a + wb·b              fade_backward: y = wa·dy, z = wb·dy
//! axpby:         y ← wa·y + wb·a (a term whose weight is 0 is not read)

use super::case::uniform;
use super::{
    Binding, Bindings, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u,
};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::{PAR_MIN, for_chunks};

crate::params! {
    pub struct FadeParams {
        pub n: u32,
        pub wa: f32,
        pub wb: f32,
        pub a_off: u32,
        pub b_off: u32,
        pub y_off: u32,
        pub z_off: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "fade",
    source: include_str!("../../shaders/fade.wgsl"),
    preludes: &[],
};

fn n(p: &[u8]) -> usize {
    cast::<FadeParams>(p).n as usize
}

fn forward_cpu(p: &[u8], b: &mut Bindings) {
    let q: FadeParams = cast(p);
    let (a, bb, y) = (b.r(0), b.r(1), b.w(2));
    for_chunks(&mut y[..n(p)], PAR_MIN, |s, o| {
        for (i, v) in o.iter_mut().enumerate() {
            *v = q.wa * a[s + i] + q.wb * bb[s + i];
        }
    });
}

fn backward_cpu(p: &[u8], b: &mut Bindings) {
    let q: FadeParams = cast(p);
    let (dy, y, z) = (b.r(0), b.w(2), b.w(3));
    let n = n(p);
    for_chunks(&mut y[..n], PAR_MIN, |s, o| {
        for (i, v) in o.iter_mut().enumerate() {
            *v = q.wa * dy[s + i];
        }
    });
    for_chunks(&mut z[..n], PAR_MIN, |s, o| {
        for (i, v) in o.iter_mut().enumerate() {
            *v = q.wb * dy[s + i];
        }
    });
}

fn axpby_one(wa: f32, wb: f32, y: f32, a: f32) -> f32 {
    let mut s = 0.0;
    if wa != 0.0 {
        s = wa * y;
    }
    if wb != 0.0 {
        s += wb * a;
    }
    s
}

fn axpby_cpu(p: &[u8], b: &mut Bindings) {
    let q: FadeParams = cast(p);
    let (a, y) = (b.r(0), b.w(2));
    for_chunks(&mut y[..n(p)], PAR_MIN, |s, o| {
        for (i, v) in o.iter_mut().enumerate() {
            *v = axpby_one(q.wa, q.wb, *v, a[s + i]);
        }
    });
}

pub static FADE_FORWARD: KernelDef = KernelDef {
    name: "fade_forward",
    shader: &SHADER,
    params: &<FadeParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("a"),
        Binding::read("b"),
        Binding::write("y"),
        Binding::unused("z"),
    ],
    workgroups: |p| elementwise_groups(u(n(p))),
    cpu: forward_cpu,
    reference: |p, b| {
        let q: FadeParams = cast(p);
        let (a, bb, y) = (b.r(0), b.r(1), b.w(2));
        for i in 0..n(p) {
            y[i] = (q.wa as f64 * a[i] as f64 + q.wb as f64 * bb[i] as f64) as f32;
        }
    },
    cases: || cases(Kind::Forward),
    bench: || bench(Kind::Forward),
    work: |p| Work::elementwise(u(n(p)), 3),
};

pub static FADE_BACKWARD: KernelDef = KernelDef {
    name: "fade_backward",
    shader: &SHADER,
    params: &<FadeParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("a"),
        Binding::unused("b"),
        Binding::write("y"),
        Binding::write("z"),
    ],
    workgroups: |p| elementwise_groups(u(n(p))),
    cpu: backward_cpu,
    reference: |p, b| {
        let q: FadeParams = cast(p);
        let (dy, y, z) = (b.r(0), b.w(2), b.w(3));
        for i in 0..n(p) {
            y[i] = q.wa * dy[i];
            z[i] = q.wb * dy[i];
        }
    },
    cases: || cases(Kind::Backward),
    bench: || bench(Kind::Backward),
    work: |p| Work::elementwise(u(n(p)), 3),
};

pub static AXPBY: KernelDef = KernelDef {
    name: "axpby",
    shader: &SHADER,
    params: &<FadeParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("a"),
        Binding::unused("b"),
        Binding::write("y"),
        Binding::unused("z"),
    ],
    workgroups: |p| elementwise_groups(u(n(p))),
    cpu: axpby_cpu,
    reference: |p, b| {
        let q: FadeParams = cast(p);
        let (a, y) = (b.r(0), b.w(2));
        for i in 0..n(p) {
            let keep = if q.wa == 0.0 {
                0.0
            } else {
                q.wa as f64 * y[i] as f64
            };
            let add = if q.wb == 0.0 {
                0.0
            } else {
                q.wb as f64 * a[i] as f64
            };
            y[i] = (keep + add) as f32;
        }
    },
    cases: || cases(Kind::Axpby),
    bench: || bench(Kind::Axpby),
    work: |p| Work::elementwise(u(n(p)), 3),
};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Forward,
    Backward,
    Axpby,
}

fn case(n: usize, wa: f32, wb: f32, kind: Kind, seed: u64) -> Case {
    let p = FadeParams {
        n: u(n),
        wa,
        wb,
        ..Default::default()
    };
    let c = Case::new(format!("n={n} wa={wa} wb={wb}"), p).tol(1e-6, 1e-6);
    let x = uniform(seed, n, -1.0, 1.0);
    match kind {
        Kind::Forward => c
            .f32(x)
            .f32(uniform(seed + 1, n, -1.0, 1.0))
            .zeros(n)
            .unused(),
        Kind::Backward => c.f32(x).unused().zeros(n).zeros(n),
        // y starts as NaN where its weight is 0: it must not be read.
        Kind::Axpby => {
            let y0 = match wa {
                0.0 => vec![f32::NAN; n],
                _ => uniform(seed + 2, n, -1.0, 1.0),
            };
            c.f32(x).unused().f32(y0).unused()
        }
    }
}

/// Single values, ragged lengths, α at the ends and inside (0 reads nothing of its input).
fn cases(kind: Kind) -> Vec<Case> {
    let mut v: Vec<Case> = [(1, 0.25), (7, 0.0), (255, 1.0), (257, 0.6), (70_001, 0.37)]
        .into_iter()
        .enumerate()
        .map(|(i, (n, alpha))| case(n, alpha, 1.0 - alpha, kind, 5 * i as u64 + 1))
        .collect();
    if kind == Kind::Axpby {
        v.push(case(1000, 1.0, 0.125, kind, 40));
        v.push(case(333, 0.0, 0.0, kind, 41));
    }
    v
}

/// The fade of G's output and of a 64×64 D's first features at batch 64.
fn bench(kind: Kind) -> Vec<Case> {
    vec![
        case(64 * 3 * 64 * 64, 0.3, 0.7, kind, 1),
        case(128 * 32 * 32 * 32, 0.3, 0.7, kind, 2),
    ]
}

fn params(n: usize, wa: f32, wb: f32) -> FadeParams {
    FadeParams {
        n: u(n),
        wa,
        wb,
        ..Default::default()
    }
}

/// y = wa·a + wb·b over `n` values (the fade: wa = α, wb = 1 − α).
pub fn fade_forward(
    be: &mut dyn Backend,
    y: Tensor,
    a: Tensor,
    b: Tensor,
    n: usize,
    wa: f32,
    wb: f32,
) {
    launch(be, &FADE_FORWARD, params(n, wa, wb), &[a, b, y, a]);
}

/// da = wa·dy, db = wb·dy over `n` values.
pub fn fade_backward(
    be: &mut dyn Backend,
    da: Tensor,
    db: Tensor,
    dy: Tensor,
    n: usize,
    wa: f32,
    wb: f32,
) {
    launch(be, &FADE_BACKWARD, params(n, wa, wb), &[dy, dy, da, db]);
}

/// y ← wa·y + wb·a over `n` values; a term whose weight is 0 is not read (so `axpby(y, any, 0,
/// 0)` zeroes y whatever it held). `a` must lie in another buffer than `y`.
pub fn axpby(be: &mut dyn Backend, y: Tensor, a: Tensor, n: usize, wa: f32, wb: f32) {
    launch(be, &AXPBY, params(n, wa, wb), &[a, a, y, a]);
}

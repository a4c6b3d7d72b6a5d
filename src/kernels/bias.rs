//! db[n] (+)= Σ_rows dy[m, n]: a linear layer's bias gradient (`shaders/bias_backward.wgsl`),
//! column sums in a fixed-order tree (deterministic, no float atomics).

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, launch, u};
use crate::backend::{Backend, Tensor, WriteMode};
use crate::cpu::par::{PAR_MIN, par_chunk};
use rayon::prelude::*;

crate::params! {
    pub struct BiasParams {
        pub m: u32,
        pub n: u32,
        pub dy_off: u32,
        pub db_off: u32,
        pub accumulate: u32,
    }
}

pub static SHADER: Shader = Shader {
    name: "bias_backward",
    source: include_str!("../../shaders/bias_backward.wgsl"),
    preludes: &[],
};

pub static BIAS_BACKWARD: KernelDef = KernelDef {
    name: "bias_backward",
    shader: &SHADER,
    params: &<BiasParams as super::Params>::LAYOUT,
    bindings: &[Binding::read("dy"), Binding::write("db")],
    workgroups: |p| [cast::<BiasParams>(p).n.div_ceil(64), 1, 1],
    cpu: |p, b| {
        let p: BiasParams = cast(p);
        bias_backward_cpu(
            b.w(1),
            b.r(0),
            p.m as usize,
            p.n as usize,
            p.accumulate != 0,
        )
    },
    reference: |p, b| {
        let p: BiasParams = cast(p);
        let (dy, db) = (b.r(0), b.w(1));
        let (m, n) = (p.m as usize, p.n as usize);
        for j in 0..n {
            let s: f64 = (0..m).map(|r| dy[r * n + j] as f64).sum();
            db[j] = if p.accumulate != 0 {
                db[j] + s as f32
            } else {
                s as f32
            };
        }
    },
    cases: || {
        let mut out = Vec::new();
        for (i, (m, n)) in [(1, 1), (3, 63), (65, 100), (127, 1), (1200, 65), (64, 1024)]
            .into_iter()
            .enumerate()
        {
            for acc in [0, 1] {
                out.push(case(m, n, acc, 7 * i as u64 + acc as u64));
            }
        }
        out
    },
    bench: || vec![case(128, 1024, 0, 1), case(64, 784, 0, 2)],
    work: |p| {
        let p: BiasParams = cast(p);
        Work::elementwise(p.m * p.n, 1)
    },
};

fn case(m: usize, n: usize, accumulate: u32, seed: u64) -> Case {
    let p = BiasParams {
        m: u(m),
        n: u(n),
        accumulate,
        ..Default::default()
    };
    Case::new(format!("m={m} n={n} acc={accumulate}"), p)
        .f32(uniform(seed, m * n, -1.0, 1.0))
        .f32(uniform(seed + 1, n, -1.0, 1.0))
        .tol(1e-5 * (m as f32).sqrt(), 1e-5)
}

/// db[n] (+)= Σ_rows dy[m, n].
pub fn bias_backward(
    be: &mut dyn Backend,
    (db, write): (Tensor, WriteMode),
    dy: Tensor,
    m: usize,
    n: usize,
) {
    let p = BiasParams {
        m: u(m),
        n: u(n),
        accumulate: write.code(),
        ..Default::default()
    };
    launch(be, &BIAS_BACKWARD, p, &[dy, db]);
}

/// Column blocks split over the pool; each block walks the rows in order.
pub fn bias_backward_cpu(db: &mut [f32], dy: &[f32], m: usize, n: usize, accumulate: bool) {
    let columns = |c0: usize, db: &mut [f32]| {
        if !accumulate {
            db.fill(0.0);
        }
        let w = db.len();
        for row in dy[..m * n].chunks_exact(n) {
            for (d, g) in db.iter_mut().zip(&row[c0..c0 + w]) {
                *d += g;
            }
        }
    };
    match par_chunk(m * n, PAR_MIN) {
        Some(_) if n >= 64 => {
            let c = n.div_ceil(rayon::current_num_threads());
            db[..n]
                .par_chunks_mut(c)
                .enumerate()
                .for_each(|(i, d)| columns(i * c, d));
        }
        _ => columns(0, &mut db[..n]),
    }
}

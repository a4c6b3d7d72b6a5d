//! Batched matrix products (`shaders/batched_matmul.wgsl`): for t < batch,
//! C[t] = s·(A[t]·B[t]) (+ addend[t]) (+ C[t]), A and B read through (row, column, batch) strides
//! (batch stride 0: one matrix shared by the batch), C and addend row-major [m, n] per item;
//! s = scale[0] when asked. The self-attention layer's products over positions.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, launch, u};
use crate::backend::{Backend, MatView, Tensor};
use rayon::prelude::*;

crate::params! {
    pub struct BmmParams {
        pub m: u32,
        pub n: u32,
        pub k: u32,
        pub batch: u32,
        /// bit 0: accumulate into C; bit 1: scale by scale[0]; bit 2: add addend.
        pub flags: u32,
        pub a_off: u32,
        pub a_rs: u32,
        pub a_cs: u32,
        pub a_bs: u32,
        pub b_off: u32,
        pub b_rs: u32,
        pub b_cs: u32,
        pub b_bs: u32,
        pub scale_off: u32,
        pub addend_off: u32,
        pub c_off: u32,
    }
}

pub const FLAG_ACCUMULATE: u32 = 1;
pub const FLAG_SCALE: u32 = 2;
pub const FLAG_ADDEND: u32 = 4;

/// Most items one launch multiplies (WebGPU's default dispatch limit per dimension).
pub const MAX_BATCH: usize = 65_535;

pub static SHADER: Shader = Shader {
    name: "batched_matmul",
    source: include_str!("../../shaders/batched_matmul.wgsl"),
    preludes: &[],
};

pub static BATCHED_MATMUL: KernelDef = KernelDef {
    name: "batched_matmul",
    shader: &SHADER,
    params: &<BmmParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("a"),
        Binding::read("b"),
        Binding::read("scale"),
        Binding::read("addend"),
        Binding::write("c"),
    ],
    workgroups: |p| {
        let p: BmmParams = cast(p);
        [p.n.div_ceil(64), p.m.div_ceil(64), p.batch]
    },
    cpu: |p, b| batched_matmul_cpu(&cast(p), b.w(4), b.r(0), b.r(1), b.r(2), b.r(3)),
    reference: |p, b| batched_matmul_reference(&cast(p), b.w(4), b.r(0), b.r(1), b.r(2), b.r(3)),
    cases,
    bench,
    work: |p| {
        let p: BmmParams = cast(p);
        let (m, n, k, t) = (p.m as f64, p.n as f64, p.k as f64, p.batch as f64);
        Work {
            flops: 2.0 * t * m * n * k,
            bytes: 4.0 * t * (m * k + k * n + m * n),
        }
    },
};

// ---- launcher ------------------------------------------------------------------------------

/// One operand of a batched product: a matrix view and the stride between items (0: shared).
#[derive(Clone, Copy, Debug)]
pub struct Batched {
    pub view: MatView,
    pub bs: usize,
}

impl Batched {
    pub fn new(t: Tensor, rs: usize, cs: usize, bs: usize) -> Self {
        Batched {
            view: MatView::new(t, rs, cs),
            bs,
        }
    }
}

/// What a batched product adds to s·A·B as it stores.
#[derive(Clone, Copy, Debug, Default)]
pub struct BmmStore {
    /// s = scale[0] (a one-word view).
    pub scale: Option<Tensor>,
    /// + addend[t] ([batch, m, n] like C).
    pub addend: Option<Tensor>,
    /// + C[t].
    pub accumulate: bool,
}

/// The shape of a batched product: `batch` items C[t][m,n] = A[t][m,k]·B[t][k,n].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BmmShape {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

/// C[t] [m,n] = s·A[t]·B[t] (+ addend[t]) (+ C[t]) for t < batch.
pub fn batched_matmul(
    be: &mut dyn Backend,
    c: Tensor,
    a: Batched,
    b: Batched,
    store: BmmStore,
    shape: BmmShape,
) {
    let BmmShape { batch, m, n, k } = shape;
    if batch == 0 || m == 0 || n == 0 {
        return;
    }
    assert!(
        batch <= MAX_BATCH,
        "batched_matmul: {batch} items exceed one dispatch"
    );
    let p = BmmParams {
        m: u(m),
        n: u(n),
        k: u(k),
        batch: u(batch),
        flags: if store.accumulate { FLAG_ACCUMULATE } else { 0 }
            | if store.scale.is_some() { FLAG_SCALE } else { 0 }
            | if store.addend.is_some() {
                FLAG_ADDEND
            } else {
                0
            },
        a_rs: u(a.view.rs),
        a_cs: u(a.view.cs),
        a_bs: u(a.bs),
        b_rs: u(b.view.rs),
        b_cs: u(b.view.cs),
        b_bs: u(b.bs),
        ..Default::default()
    };
    let (at, bt) = (a.view.t, b.view.t);
    let bufs = [
        at,
        bt,
        store.scale.unwrap_or(at),
        store.addend.unwrap_or(at),
        c,
    ];
    launch(be, &BATCHED_MATMUL, p, &bufs);
}

// ---- the specification -------------------------------------------------------------------

fn scale_of(p: &BmmParams, scale: &[f32]) -> f32 {
    if p.flags & FLAG_SCALE != 0 {
        scale[0]
    } else {
        1.0
    }
}

/// The triple loop per item, accumulated in f64.
pub fn batched_matmul_reference(
    p: &BmmParams,
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    scale: &[f32],
    addend: &[f32],
) {
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    let s = scale_of(p, scale) as f64;
    for t in 0..p.batch as usize {
        let (a0, b0) = (t * p.a_bs as usize, t * p.b_bs as usize);
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f64;
                for l in 0..k {
                    acc += a[a0 + i * p.a_rs as usize + l * p.a_cs as usize] as f64
                        * b[b0 + l * p.b_rs as usize + j * p.b_cs as usize] as f64;
                }
                let ci = (t * m + i) * n + j;
                let mut v = s * acc;
                if p.flags & FLAG_ADDEND != 0 {
                    v += addend[ci] as f64;
                }
                if p.flags & FLAG_ACCUMULATE != 0 {
                    v += c[ci] as f64;
                }
                c[ci] = v as f32;
            }
        }
    }
}

// ---- the fast twin -------------------------------------------------------------------------

/// The CPU GEMM per item (items in parallel), then the store step while C is in cache.
pub fn batched_matmul_cpu(
    p: &BmmParams,
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    scale: &[f32],
    addend: &[f32],
) {
    let (m, n, k, batch) = (p.m as usize, p.n as usize, p.k as usize, p.batch as usize);
    if batch == 0 || m == 0 || n == 0 {
        return;
    }
    let s = scale_of(p, scale);
    let plain = p.flags == 0;
    let (a_bs, b_bs) = (p.a_bs as usize, p.b_bs as usize);
    let strides = |rs: u32, cs: u32| (rs as usize, cs as usize);
    c[..batch * m * n]
        .par_chunks_mut(m * n)
        .enumerate()
        .for_each(|(t, ct)| {
            let (at, bt) = (&a[t * a_bs..], &b[t * b_bs..]);
            let mut prod = if plain { Vec::new() } else { vec![0.0; m * n] };
            let out: &mut [f32] = if plain { ct } else { &mut prod };
            crate::cpu::gemm::matmul(
                out,
                at,
                strides(p.a_rs, p.a_cs),
                bt,
                strides(p.b_rs, p.b_cs),
                None,
                m,
                n,
                k,
                false,
            );
            if plain {
                return;
            }
            let add = (p.flags & FLAG_ADDEND != 0).then(|| &addend[t * m * n..(t + 1) * m * n]);
            let acc = p.flags & FLAG_ACCUMULATE != 0;
            for (i, (cv, pv)) in ct.iter_mut().zip(&prod).enumerate() {
                let mut v = s * pv;
                if let Some(add) = add {
                    v += add[i];
                }
                if acc {
                    v += *cv;
                }
                *cv = v;
            }
        });
}

// ---- cases ---------------------------------------------------------------------------------

/// The layouts of the attention layer's products, for a layer of `c` channels (c8 = c/8 for
/// the query and key) at `pos` positions and batch `batch`, each as (label, params, A len,
/// B len). C is [batch, m, n].
fn attention_products(
    batch: usize,
    c: usize,
    c8: usize,
    pos: usize,
) -> Vec<(String, BmmParams, usize, usize)> {
    let np = pos;
    let p = |m: usize, n: usize, k: usize, a: (usize, usize, usize), b: (usize, usize, usize)| {
        BmmParams {
            m: u(m),
            n: u(n),
            k: u(k),
            batch: u(batch),
            a_rs: u(a.0),
            a_cs: u(a.1),
            a_bs: u(a.2),
            b_rs: u(b.0),
            b_cs: u(b.1),
            b_bs: u(b.2),
            ..Default::default()
        }
    };
    let qk = batch * c8 * np;
    let vx = batch * c * np;
    let nn = batch * np * np;
    vec![
        // E = qᵀk: A = q viewed [N, C8], B = k [C8, N].
        (
            "energies qᵀk".into(),
            p(np, np, c8, (1, np, c8 * np), (np, 1, c8 * np)),
            qk,
            qk,
        ),
        // o = v·Aᵀ: A = v [C, N], B = attnᵀ.
        (
            "v·attnᵀ".into(),
            p(c, np, np, (np, 1, c * np), (1, np, np * np)),
            vx,
            nn,
        ),
        // G = dyᵀ·v: A = dy viewed [N, C], B = v [C, N].
        (
            "dyᵀ·v".into(),
            p(np, np, c, (1, np, c * np), (np, 1, c * np)),
            vx,
            vx,
        ),
        // dv = dy·attn.
        (
            "dy·attn".into(),
            p(c, np, np, (np, 1, c * np), (np, 1, np * np)),
            vx,
            nn,
        ),
        // dq = k·dEᵀ.
        (
            "k·dEᵀ".into(),
            p(c8, np, np, (np, 1, c8 * np), (1, np, np * np)),
            qk,
            nn,
        ),
        // dx += Wᵀ·dq: W [C8, C] shared by the batch.
        (
            "Wᵀ·d (shared W)".into(),
            p(c, np, c8, (1, c, 0), (np, 1, c8 * np)),
            c8 * c,
            qk,
        ),
    ]
}

fn case(
    label: String,
    mut p: BmmParams,
    a_len: usize,
    b_len: usize,
    flags: u32,
    seed: u64,
) -> Case {
    p.flags = flags;
    let c_len = p.batch as usize * p.m as usize * p.n as usize;
    let tol = 2e-6 * (p.k.max(1) as f32).sqrt();
    Case::new(
        format!(
            "{label} batch={} m={} n={} k={} flags={flags}",
            p.batch, p.m, p.n, p.k
        ),
        p,
    )
    .f32(uniform(seed, a_len, -1.0, 1.0))
    .f32(uniform(seed + 1, b_len, -1.0, 1.0))
    .f32(vec![-0.625])
    .f32(uniform(seed + 2, c_len, -1.0, 1.0))
    .f32(uniform(seed + 3, c_len, -1.0, 1.0))
    .tol(tol, 1e-4)
}

/// Every attention product on ragged shapes (positions not a multiple of the 64-wide tile,
/// odd channel counts), each store variant, and a plain product with K past several slices.
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let flag_sets = [
        0,
        FLAG_SCALE | FLAG_ADDEND,
        FLAG_ACCUMULATE,
        FLAG_SCALE | FLAG_ACCUMULATE,
    ];
    for (s, &(batch, c, c8, pos)) in [
        (1, 1, 1, 1),
        (3, 9, 2, 7 * 5),
        (2, 16, 2, 65),
        (5, 24, 3, 30),
    ]
    .iter()
    .enumerate()
    {
        for (i, (label, p, al, bl)) in attention_products(batch, c, c8, pos)
            .into_iter()
            .enumerate()
        {
            let flags = flag_sets[(i + s) % flag_sets.len()];
            out.push(case(
                label,
                p,
                al,
                bl,
                flags,
                1000 * s as u64 + 10 * i as u64,
            ));
        }
    }
    out
}

/// The products of a 64-channel attention layer at 16×16 (256 positions), batch 64.
fn bench() -> Vec<Case> {
    attention_products(64, 64, 8, 256)
        .into_iter()
        .enumerate()
        .map(|(i, (label, p, al, bl))| case(label, p, al, bl, 0, i as u64))
        .collect()
}

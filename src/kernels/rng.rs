//! Random numbers on the device (`shaders/rng.wgsl`, `shaders/rng_u32.wgsl`, with the Philox
//! prelude): U(lo, hi), N(0, 1) by an integer Box–Muller (`shaders/normal.wgsl`), uniform integers in [0, range), and raw Philox
//! words. Element i of a call uses counter `key.counter + i`, so every backend draws the same
//! bits (`crate::rng` is the host twin).

use super::{
    Binding, Bindings, Case, KernelDef, Shader, Work, cast, elementwise_groups, key_words, launch,
    u,
};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::{PAR_MIN_RNG, for_chunks};
use crate::rng::{self, RngKey};

crate::params! {
    pub struct RngParams {
        pub n: u32,
        pub out_off: u32,
        pub seed_lo: u32,
        pub seed_hi: u32,
        pub stream: u32,
        pub ctr_lo: u32,
        pub ctr_hi: u32,
        /// rng_index: draw in [0, range).
        pub range: u32,
        /// rng_uniform: bounds.
        pub lo: f32,
        pub hi: f32,
    }
}

impl RngParams {
    fn new(n: usize, key: RngKey) -> Self {
        let [seed_lo, seed_hi, stream, ctr_lo, ctr_hi] = key_words(key);
        RngParams {
            n: u(n),
            seed_lo,
            seed_hi,
            stream,
            ctr_lo,
            ctr_hi,
            ..Default::default()
        }
    }

    fn key(&self) -> RngKey {
        RngKey::new(
            self.seed_lo as u64 | (self.seed_hi as u64) << 32,
            self.stream,
            self.ctr_lo as u64 | (self.ctr_hi as u64) << 32,
        )
    }
}

pub static SHADER_F32: Shader = Shader {
    name: "rng",
    source: include_str!("../../shaders/rng.wgsl"),
    preludes: &[&super::PHILOX, &super::NORMAL],
};

pub static SHADER_U32: Shader = Shader {
    name: "rng_u32",
    source: include_str!("../../shaders/rng_u32.wgsl"),
    preludes: &[&super::PHILOX],
};

fn groups(p: &[u8]) -> [u32; 3] {
    elementwise_groups(cast::<RngParams>(p).n)
}

fn work(p: &[u8]) -> Work {
    Work::elementwise(cast::<RngParams>(p).n, 1)
}

/// Fills out[i] = f(key, i) for i < n on the pool.
fn fill<T: Send + Copy>(out: &mut [T], n: usize, f: impl Fn(u64) -> T + Sync) {
    for_chunks(&mut out[..n], PAR_MIN_RNG, |s, o| {
        for (j, v) in o.iter_mut().enumerate() {
            *v = f((s + j) as u64);
        }
    });
}

fn uniform_twin(p: &[u8], b: &mut Bindings) {
    let p: RngParams = cast(p);
    let key = p.key();
    fill(b.w(0), p.n as usize, |i| rng::uniform(key, i, p.lo, p.hi));
}

fn normal_twin(p: &[u8], b: &mut Bindings) {
    let p: RngParams = cast(p);
    let key = p.key();
    for_chunks(&mut b.w(0)[..p.n as usize], PAR_MIN_RNG, |s, o| {
        rng::fill_normal(key, s as u64, o)
    });
}

/// The plain reference: Box–Muller in f64 from the same two words.
fn normal_reference(p: &[u8], b: &mut Bindings) {
    let p: RngParams = cast(p);
    let key = p.key();
    fill(b.w(0), p.n as usize, |i| {
        let w = rng::words(key, i);
        let u = ((w[0] >> 8) + 1) as f64 / 16_777_216.0;
        let theta = std::f64::consts::TAU * (w[1] >> 8) as f64 / 16_777_216.0;
        ((-2.0 * u.ln()).sqrt() * theta.cos()) as f32
    });
}

fn index_twin(p: &[u8], b: &mut Bindings) {
    let p: RngParams = cast(p);
    let key = p.key();
    fill(b.w_u32(0), p.n as usize, |i| rng::index(key, i, p.range));
}

fn bits_twin(p: &[u8], b: &mut Bindings) {
    let p: RngParams = cast(p);
    let key = p.key();
    fill(b.w_u32(0), p.n as usize, |i| {
        rng::words(key, i / 4)[(i % 4) as usize]
    });
}

fn case(n: usize, seed: u64, range: u32, tol: f32) -> Case {
    let mut p = RngParams::new(n, RngKey::new(seed, rng::stream::NOISE, (1 << 32) - 5));
    (p.range, p.lo, p.hi) = (range, -1.0, 3.0);
    Case::new(format!("n={n} range={range}"), p)
        .zeros(n)
        .tol(tol, tol)
}

fn cases(range: u32, tol: f32) -> Vec<Case> {
    [1, 63, 1200, 70_001]
        .into_iter()
        .map(|n| case(n, n as u64 * 3 + 1, range, tol))
        .collect()
}

// The reference of the uniform and integer generators is its twin: the draws are `crate::rng`'s functions of
// (key, i), which tests/rng.rs checks against published Philox vectors and distributions.
pub static RNG_UNIFORM: KernelDef = KernelDef {
    name: "rng_uniform",
    shader: &SHADER_F32,
    params: &<RngParams as super::Params>::LAYOUT,
    bindings: &[Binding::write("out")],
    workgroups: groups,
    cpu: uniform_twin,
    reference: uniform_twin,
    cases: || cases(0, 0.0),
    bench: || vec![case(64 * 100, 1, 0, 0.0)],
    work,
};

pub static RNG_NORMAL: KernelDef = KernelDef {
    name: "rng_normal",
    shader: &SHADER_F32,
    params: &<RngParams as super::Params>::LAYOUT,
    bindings: &[Binding::write("out")],
    workgroups: groups,
    cpu: normal_twin,
    reference: normal_reference,
    // The twin and the shader compute the same integers (bit-identical, tests/kernels_gpu_vs_cpu.rs);
    // both are within 4e-7 of the exact draw, plus the reference's rounding to f32 (≤ 2.4e-7).
    cases: || cases(0, 7e-7),
    bench: || vec![case(64 * 100, 1, 0, 0.0)],
    work,
};

pub static RNG_INDEX: KernelDef = KernelDef {
    name: "rng_index",
    shader: &SHADER_U32,
    params: &<RngParams as super::Params>::LAYOUT,
    bindings: &[Binding::write("out").u32()],
    workgroups: groups,
    cpu: index_twin,
    reference: index_twin,
    cases: || cases(7000, 0.0),
    bench: || vec![case(64, 1, 7000, 0.0)],
    work,
};

pub static RNG_BITS: KernelDef = KernelDef {
    name: "rng_bits",
    shader: &SHADER_U32,
    params: &<RngParams as super::Params>::LAYOUT,
    bindings: &[Binding::write("out").u32()],
    workgroups: groups,
    cpu: bits_twin,
    reference: bits_twin,
    cases: || cases(0, 0.0),
    bench: || vec![case(64 * 1024, 1, 0, 0.0)],
    work,
};

/// out[i] = U(lo, hi).
pub fn rng_uniform(be: &mut dyn Backend, out: Tensor, n: usize, lo: f32, hi: f32, key: RngKey) {
    let mut p = RngParams::new(n, key);
    (p.lo, p.hi) = (lo, hi);
    launch(be, &RNG_UNIFORM, p, &[out]);
}

/// out[i] = N(0, 1) by Box–Muller.
pub fn rng_normal(be: &mut dyn Backend, out: Tensor, n: usize, key: RngKey) {
    launch(be, &RNG_NORMAL, RngParams::new(n, key), &[out]);
}

/// out[i] = a uniform integer in [0, range) (a u32 view).
pub fn rng_index(be: &mut dyn Backend, out: Tensor, n: usize, range: u32, key: RngKey) {
    let mut p = RngParams::new(n, key);
    p.range = range;
    launch(be, &RNG_INDEX, p, &[out]);
}

/// out[i] = word i % 4 of block i / 4 (a u32 view): the generator's raw output.
pub fn rng_bits(be: &mut dyn Backend, out: Tensor, n: usize, key: RngKey) {
    launch(be, &RNG_BITS, RngParams::new(n, key), &[out]);
}

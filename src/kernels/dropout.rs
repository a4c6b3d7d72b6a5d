//! Inverted dropout (`shaders/dropout.wgsl`): keep each element with probability q and scale it
//! by 1/q. The mask is never stored: element i keeps iff uniform(key, i) < q, and backward
//! redraws it from the same key.

use super::case::uniform;
use super::{
    Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, key_words, launch, u,
};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::{PAR_MIN_RNG, for_chunks};
use crate::rng::{self, RngKey};

crate::params! {
    pub struct DropoutParams {
        pub n: u32,
        pub src_off: u32,
        pub dst_off: u32,
        pub keep: f32,
        pub seed_lo: u32,
        pub seed_hi: u32,
        pub stream: u32,
        pub ctr_lo: u32,
        pub ctr_hi: u32,
    }
}

impl DropoutParams {
    fn new(n: usize, keep: f32, key: RngKey) -> Self {
        let [seed_lo, seed_hi, stream, ctr_lo, ctr_hi] = key_words(key);
        DropoutParams {
            n: u(n),
            keep,
            seed_lo,
            seed_hi,
            stream,
            ctr_lo,
            ctr_hi,
            ..Default::default()
        }
    }

    pub fn key(&self) -> RngKey {
        RngKey::new(
            self.seed_lo as u64 | (self.seed_hi as u64) << 32,
            self.stream,
            self.ctr_lo as u64 | (self.ctr_hi as u64) << 32,
        )
    }
}

pub static SHADER: Shader = Shader {
    name: "dropout",
    source: include_str!("../../shaders/dropout.wgsl"),
    preludes: &[&super::PHILOX],
};

fn twin(p: &[u8], b: &mut super::Bindings) {
    let p: DropoutParams = cast(p);
    dropout_cpu(b.w(1), b.r(0), p.n as usize, p.keep, p.key())
}

fn reference(p: &[u8], b: &mut super::Bindings) {
    let p: DropoutParams = cast(p);
    let (src, dst) = (b.r(0), b.w(1));
    for i in 0..p.n as usize {
        let kept = rng::unit_open_high(rng::words(p.key(), i as u64)[0]) < p.keep;
        dst[i] = if kept { src[i] / p.keep } else { 0.0 };
    }
}

fn case(n: usize, keep: f32, seed: u64) -> Case {
    let key = RngKey::new(seed, rng::stream::DROPOUT, 1 << 33);
    Case::new(
        format!("n={n} keep={keep}"),
        DropoutParams::new(n, keep, key),
    )
    .f32(uniform(seed, n, -2.0, 2.0))
    .zeros(n)
    .tol(0.0, 1e-6)
}

fn cases() -> Vec<Case> {
    vec![
        case(1, 0.5, 1),
        case(63, 0.8, 2),
        case(1200, 0.5, 3),
        case(70_001, 0.7, 4),
        case(65, 1.0, 5),
    ]
}

pub static DROPOUT_FORWARD: KernelDef = KernelDef {
    name: "dropout_forward",
    shader: &SHADER,
    params: &<DropoutParams as super::Params>::LAYOUT,
    bindings: &[Binding::read("src"), Binding::write("dst")],
    workgroups: |p| elementwise_groups(cast::<DropoutParams>(p).n),
    cpu: twin,
    reference,
    cases,
    bench: || vec![case(128 * 1024, 0.5, 1)],
    work: |p| Work::elementwise(cast::<DropoutParams>(p).n, 2),
};

pub static DROPOUT_BACKWARD: KernelDef = KernelDef {
    name: "dropout_backward",
    shader: &SHADER,
    params: &<DropoutParams as super::Params>::LAYOUT,
    bindings: &[Binding::read("src"), Binding::write("dst")],
    workgroups: |p| elementwise_groups(cast::<DropoutParams>(p).n),
    cpu: twin,
    reference,
    cases,
    bench: || vec![case(128 * 1024, 0.5, 2)],
    work: |p| Work::elementwise(cast::<DropoutParams>(p).n, 2),
};

/// y = x·mask/keep, mask[i] = uniform(key, i) < keep.
pub fn dropout_forward(
    be: &mut dyn Backend,
    y: Tensor,
    x: Tensor,
    n: usize,
    keep: f32,
    key: RngKey,
) {
    launch(
        be,
        &DROPOUT_FORWARD,
        DropoutParams::new(n, keep, key),
        &[x, y],
    );
}

/// dx = dy·mask/keep with the forward's mask (same key).
pub fn dropout_backward(
    be: &mut dyn Backend,
    dx: Tensor,
    dy: Tensor,
    n: usize,
    keep: f32,
    key: RngKey,
) {
    launch(
        be,
        &DROPOUT_BACKWARD,
        DropoutParams::new(n, keep, key),
        &[dy, dx],
    );
}

pub fn dropout_cpu(dst: &mut [f32], src: &[f32], n: usize, keep: f32, key: RngKey) {
    for_chunks(&mut dst[..n], PAR_MIN_RNG, |s, dst| {
        for (j, (d, x)) in dst.iter_mut().zip(&src[s..]).enumerate() {
            let kept = rng::unit_open_high(rng::words(key, (s + j) as u64)[0]) < keep;
            *d = if kept { x / keep } else { 0.0 };
        }
    });
}

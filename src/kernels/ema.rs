//! Exponential moving average of parameters (`shaders/ema.wgsl`): avg ← decay·avg +
//! (1 − decay)·param. Samples drawn from the averaged generator (Yazıcı et al. 2019) lose the
//! step-to-step jitter of GAN training.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u};
use crate::backend::{Backend, Tensor};

crate::params! {
    pub struct EmaParams {
        pub n: u32,
        pub avg_off: u32,
        pub param_off: u32,
        pub decay: f32,
    }
}

pub static SHADER: Shader = Shader {
    name: "ema",
    source: include_str!("../../shaders/ema.wgsl"),
    preludes: &[],
};

fn ema_ref(p: &[u8], b: &mut super::Bindings) {
    let p: EmaParams = cast(p);
    let (param, avg) = (b.r(0), b.w(1));
    for i in 0..p.n as usize {
        avg[i] = p.decay * avg[i] + (1.0 - p.decay) * param[i];
    }
}

pub static EMA_UPDATE: KernelDef = KernelDef {
    name: "ema_update",
    shader: &SHADER,
    params: &<EmaParams as super::Params>::LAYOUT,
    bindings: &[Binding::read("param"), Binding::write("avg")],
    workgroups: |p| elementwise_groups(cast::<EmaParams>(p).n),
    // Once per G-step over G's parameters; memory-bound, so the loop is the twin.
    cpu: ema_ref,
    reference: ema_ref,
    cases: || {
        [1, 63, 1200, 70_001]
            .into_iter()
            .map(|n| case(n, 0.999, n as u64))
            .collect()
    },
    bench: || vec![case(1_863_680, 0.999, 1)],
    work: |p| Work::elementwise(cast::<EmaParams>(p).n, 3),
};

fn case(n: usize, decay: f32, seed: u64) -> Case {
    let p = EmaParams {
        n: u(n),
        decay,
        ..Default::default()
    };
    Case::new(format!("n={n}"), p)
        .f32(uniform(seed, n, -1.0, 1.0))
        .f32(uniform(seed + 1, n, -1.0, 1.0))
        .tol(1e-7, 1e-6)
}

/// avg[i] ← decay·avg[i] + (1 − decay)·param[i] for i < n.
pub fn ema_update(be: &mut dyn Backend, avg: Tensor, param: Tensor, n: usize, decay: f32) {
    let p = EmaParams {
        n: u(n),
        decay,
        ..Default::default()
    };
    launch(be, &EMA_UPDATE, p, &[param, avg]);
}

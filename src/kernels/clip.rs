//! Weight clipping (`shaders/clip.wgsl`): every parameter of a network clamped to [−c, c] after
//! each critic update, the WGAN paper's way of keeping the critic K-Lipschitz.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::{PAR_MIN, for_chunks};

crate::params! {
    pub struct ClipParams {
        pub n: u32,
        pub param_off: u32,
        pub c: f32,
    }
}

pub static SHADER: Shader = Shader {
    name: "clip",
    source: include_str!("../../shaders/clip.wgsl"),
    preludes: &[],
};

pub static CLIP_WEIGHTS: KernelDef = KernelDef {
    name: "clip_weights",
    shader: &SHADER,
    params: &<ClipParams as super::Params>::LAYOUT,
    bindings: &[Binding::write("param")],
    workgroups: |p| elementwise_groups(cast::<ClipParams>(p).n),
    cpu: |p, b| {
        let p: ClipParams = cast(p);
        let c = p.c;
        for_chunks(&mut b.w(0)[..p.n as usize], PAR_MIN, |_, x| {
            for v in x {
                *v = v.clamp(-c, c);
            }
        });
    },
    reference: |p, b| {
        let p: ClipParams = cast(p);
        let x = b.w(0);
        for v in &mut x[..p.n as usize] {
            *v = if *v > p.c {
                p.c
            } else if *v < -p.c {
                -p.c
            } else {
                *v
            };
        }
    },
    cases: || {
        [(1, 0.5), (63, 0.01), (1200, 0.3), (70_001, 0.01)]
            .into_iter()
            .map(|(n, c)| case(n, c, n as u64))
            .collect()
    },
    bench: || vec![case(1_863_680, 0.01, 1)],
    work: |p| Work::elementwise(cast::<ClipParams>(p).n, 2),
};

fn case(n: usize, c: f32, seed: u64) -> Case {
    let p = ClipParams {
        n: u(n),
        c,
        ..Default::default()
    };
    // Values inside and outside [−c, c] on both sides.
    Case::new(format!("n={n} c={c}"), p)
        .f32(uniform(seed, n, -3.0 * c, 3.0 * c))
        .tol(0.0, 0.0)
}

/// param[i] ← clamp(param[i], −c, c) for i < n.
pub fn clip_weights(be: &mut dyn Backend, param: Tensor, n: usize, c: f32) {
    let p = ClipParams {
        n: u(n),
        c,
        ..Default::default()
    };
    launch(be, &CLIP_WEIGHTS, p, &[param]);
}

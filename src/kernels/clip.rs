//! Weight clipping (`shaders/clip.wgsl`): every parameter of a network clamped to [−c, c] after
//! each critic update, the WGAN paper's way of keeping the critic K-Lipschitz. Four parameters
//! per invocation over a padded parameter buffer, as the optimizers.

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
    bindings: &[Binding::write("param").vec4()],
    workgroups: |p| elementwise_groups(cast::<ClipParams>(p).n / 4),
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
        [(4, 0.5), (64, 0.01), (1200, 0.3), (70_004, 0.01)]
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

/// param[i] ← clamp(param[i], −c, c) for i < n, a multiple of 4 (a padded parameter buffer).
pub fn clip_weights(be: &mut dyn Backend, param: Tensor, n: usize, c: f32) {
    assert!(
        n.is_multiple_of(4) && param.offset.is_multiple_of(4) && param.len() >= n,
        "clip_weights: parameter buffers must be padded to a multiple of 4 words and 16-byte \
         aligned (see optimizer::pad4)"
    );
    let p = ClipParams {
        n: u(n),
        c,
        ..Default::default()
    };
    launch(be, &CLIP_WEIGHTS, p, &[param]);
}

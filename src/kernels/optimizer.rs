//! Fused optimizer steps over a whole parameter buffer (`shaders/optimizer.wgsl`), four
//! parameters per invocation: SGD with momentum (the paper's), Adam with bias correction, and
//! RMSProp (the WGAN paper's choice for a clipped critic).
//! Parameter buffers are padded to a multiple of 4 words (`pad4`), so every view is aligned.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::{PAR_MIN, par_chunk};
use crate::cpu::simd::wide;
use rayon::prelude::*;

/// `n` rounded up to a multiple of 4: the length of a parameter buffer holding `n` values.
pub fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// One Adam step's hyper-parameters; `t` is the 1-based step used for bias correction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub t: u64,
}

/// One RMSProp step's hyper-parameters: the learning rate, the mean square's decay α and ε.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropStep {
    pub lr: f32,
    pub alpha: f32,
    pub eps: f32,
}

impl AdamStep {
    /// (lr / (1 − β1^t), sqrt(1 − β2^t)), computed in f64 on the host for both backends.
    pub fn corrections(&self) -> (f32, f32) {
        let t = self.t.max(1) as i32;
        let bc1 = 1.0 - (self.beta1 as f64).powi(t);
        let bc2 = 1.0 - (self.beta2 as f64).powi(t);
        ((self.lr as f64 / bc1) as f32, bc2.sqrt() as f32)
    }
}

crate::params! {
    pub struct OptimizerParams {
        pub n: u32,
        pub param_off: u32,
        pub grad_off: u32,
        pub m_off: u32,
        pub v_off: u32,
        pub lr: f32,
        pub beta1: f32,
        pub beta2: f32,
        pub eps: f32,
        pub step_size: f32,
        pub bc2_sqrt: f32,
    }
}

pub static SHADER: Shader = Shader {
    name: "optimizer",
    source: include_str!("../../shaders/optimizer.wgsl"),
    preludes: &[],
};

fn groups(p: &[u8]) -> [u32; 3] {
    elementwise_groups(cast::<OptimizerParams>(p).n / 4)
}

pub static SGD_MOMENTUM: KernelDef = KernelDef {
    name: "sgd_momentum",
    shader: &SHADER,
    params: &<OptimizerParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("grad").vec4(),
        Binding::write("param").vec4(),
        Binding::write("m").vec4(),
    ],
    workgroups: groups,
    cpu: |p, b| {
        let p: OptimizerParams = cast(p);
        sgd_cpu(&p, b.w(1), b.r(0), b.w(2))
    },
    reference: |p, b| {
        let p: OptimizerParams = cast(p);
        let (g, param, vel) = (b.r(0), b.w(1), b.w(2));
        for i in 0..p.n as usize {
            vel[i] = p.beta1 * vel[i] - p.lr * g[i];
            param[i] += vel[i];
        }
    },
    cases: || cases(false),
    bench: || vec![case(1_863_680, false, 1)],
    work: |p| Work::elementwise(cast::<OptimizerParams>(p).n, 5),
};

pub static ADAM: KernelDef = KernelDef {
    name: "adam",
    shader: &SHADER,
    params: &<OptimizerParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("grad").vec4(),
        Binding::write("param").vec4(),
        Binding::write("m").vec4(),
        Binding::write("v").vec4(),
    ],
    workgroups: groups,
    cpu: |p, b| {
        let p: OptimizerParams = cast(p);
        adam_cpu(&p, b.w(1), b.r(0), b.w(2), b.w(3))
    },
    reference: |p, b| {
        let p: OptimizerParams = cast(p);
        let (g, param, m, v) = (b.r(0), b.w(1), b.w(2), b.w(3));
        for i in 0..p.n as usize {
            m[i] = p.beta1 * m[i] + (1.0 - p.beta1) * g[i];
            v[i] = p.beta2 * v[i] + (1.0 - p.beta2) * g[i] * g[i];
            param[i] -= p.step_size * m[i] / (v[i].sqrt() / p.bc2_sqrt + p.eps);
        }
    },
    cases: || cases(true),
    bench: || vec![case(1_863_680, true, 1)],
    work: |p| Work::elementwise(cast::<OptimizerParams>(p).n, 7),
};

pub static RMSPROP: KernelDef = KernelDef {
    name: "rmsprop",
    shader: &SHADER,
    params: &<OptimizerParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("grad").vec4(),
        Binding::write("param").vec4(),
        Binding::write("m").vec4(),
    ],
    workgroups: groups,
    cpu: |p, b| {
        let p: OptimizerParams = cast(p);
        rmsprop_cpu(&p, b.w(1), b.r(0), b.w(2))
    },
    reference: |p, b| {
        let p: OptimizerParams = cast(p);
        let (g, param, sq) = (b.r(0), b.w(1), b.w(2));
        for i in 0..p.n as usize {
            sq[i] = p.beta2 * sq[i] + (1.0 - p.beta2) * g[i] * g[i];
            param[i] -= p.lr * g[i] / (sq[i].sqrt() + p.eps);
        }
    },
    cases: || {
        [4, 64, 1204, 70_004]
            .into_iter()
            .enumerate()
            .map(|(i, n)| rmsprop_case(n, i as u64 * 5))
            .collect()
    },
    bench: || vec![rmsprop_case(1_863_680, 1)],
    work: |p| Work::elementwise(cast::<OptimizerParams>(p).n, 5),
};

fn rmsprop_params(n: usize, lr: f32, alpha: f32, eps: f32) -> OptimizerParams {
    OptimizerParams {
        n: u(n),
        lr,
        beta2: alpha,
        eps,
        ..Default::default()
    }
}

fn rmsprop_case(n: usize, seed: u64) -> Case {
    let n = pad4(n);
    Case::new(format!("n={n}"), rmsprop_params(n, 5e-5, 0.99, 1e-8))
        .f32(uniform(seed, n, -1.0, 1.0))
        .f32(uniform(seed + 1, n, -1.0, 1.0))
        // Some square averages at 0, so the first step's lr·g/(|g|·0.1 + ε) is covered.
        .f32(
            uniform(seed + 2, n, -0.01, 0.01)
                .into_iter()
                .map(|v| v.max(0.0))
                .collect(),
        )
        .tol(1e-7, 1e-5)
}

fn adam_params(n: usize, step: &AdamStep) -> OptimizerParams {
    let (step_size, bc2_sqrt) = step.corrections();
    OptimizerParams {
        n: u(n),
        lr: step.lr,
        beta1: step.beta1,
        beta2: step.beta2,
        eps: step.eps,
        step_size,
        bc2_sqrt,
        ..Default::default()
    }
}

fn case(n: usize, adam: bool, seed: u64) -> Case {
    let n = pad4(n);
    let g = uniform(seed, n, -1.0, 1.0);
    let param = uniform(seed + 1, n, -1.0, 1.0);
    let m = uniform(seed + 2, n, -0.1, 0.1);
    if adam {
        let step = AdamStep {
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
            t: 1 + seed % 7,
        };
        let v = uniform(seed + 3, n, 0.0, 0.01);
        Case::new(format!("n={n} t={}", step.t), adam_params(n, &step))
            .f32(g)
            .f32(param)
            .f32(m)
            .f32(v)
            .tol(1e-6, 1e-5)
    } else {
        let p = OptimizerParams {
            n: u(n),
            lr: 0.1,
            beta1: 0.5,
            ..Default::default()
        };
        Case::new(format!("n={n}"), p)
            .f32(g)
            .f32(param)
            .f32(m)
            .tol(1e-6, 1e-6)
    }
}

fn cases(adam: bool) -> Vec<Case> {
    [4, 64, 1204, 70_004]
        .into_iter()
        .enumerate()
        .map(|(i, n)| case(n, adam, i as u64 * 5))
        .collect()
}

fn check_aligned(name: &str, views: &[Tensor], n: usize) {
    assert!(
        n.is_multiple_of(4) && views.iter().all(|t| t.offset % 4 == 0 && t.len() >= n),
        "{name}: parameter buffers must be padded to a multiple of 4 words and 16-byte aligned \
         (see optimizer::pad4)"
    );
}

/// velocity ← momentum·velocity − lr·grad; param ← param + velocity, over n (a multiple of 4).
pub fn sgd_momentum(
    be: &mut dyn Backend,
    param: Tensor,
    grad: Tensor,
    velocity: Tensor,
    n: usize,
    lr: f32,
    momentum: f32,
) {
    check_aligned("sgd_momentum", &[param, grad, velocity], n);
    let p = OptimizerParams {
        n: u(n),
        lr,
        beta1: momentum,
        ..Default::default()
    };
    launch(be, &SGD_MOMENTUM, p, &[grad, param, velocity]);
}

/// One Adam step with bias correction over n parameters (a multiple of 4).
pub fn adam(
    be: &mut dyn Backend,
    param: Tensor,
    grad: Tensor,
    m: Tensor,
    v: Tensor,
    n: usize,
    step: &AdamStep,
) {
    check_aligned("adam", &[param, grad, m, v], n);
    launch(be, &ADAM, adam_params(n, step), &[grad, param, m, v]);
}

/// RMSProp as PyTorch's `torch.optim.RMSprop` (no momentum, not centred): the mean square
/// sq ← α·sq + (1 − α)·g², then param ← param − lr·g / (sqrt(sq) + ε), over n (a multiple of 4).
pub fn rmsprop(
    be: &mut dyn Backend,
    param: Tensor,
    grad: Tensor,
    square_avg: Tensor,
    n: usize,
    step: &RmsPropStep,
) {
    check_aligned("rmsprop", &[param, grad, square_avg], n);
    let RmsPropStep { lr, alpha, eps } = *step;
    launch(
        be,
        &RMSPROP,
        rmsprop_params(n, lr, alpha, eps),
        &[grad, param, square_avg],
    );
}

type Chunks<'a> = ((&'a mut [f32], &'a mut [f32]), &'a [f32]);

/// The pool splits the buffers into equal chunks when they are large enough.
fn split<'a>(
    n: usize,
    a: &'a mut [f32],
    b: &'a mut [f32],
    g: &'a [f32],
    f: impl Fn(Chunks) + Sync + Send,
) {
    match par_chunk(n, PAR_MIN) {
        Some(c) => a[..n]
            .par_chunks_mut(c)
            .zip(b[..n].par_chunks_mut(c))
            .zip(g[..n].par_chunks(c))
            .for_each(f),
        None => f(((&mut a[..n], &mut b[..n]), &g[..n])),
    }
}

pub fn sgd_cpu(p: &OptimizerParams, param: &mut [f32], g: &[f32], vel: &mut [f32]) {
    split(p.n as usize, param, vel, g, |((param, vel), g)| {
        for ((x, v), g) in param.iter_mut().zip(vel).zip(g) {
            *v = p.beta1 * *v - p.lr * g;
            *x += *v;
        }
    });
}

pub fn rmsprop_cpu(p: &OptimizerParams, param: &mut [f32], g: &[f32], sq: &mut [f32]) {
    split(p.n as usize, param, sq, g, |((param, sq), g)| {
        for ((x, s), g) in param.iter_mut().zip(sq).zip(g) {
            *s = p.beta2 * *s + (1.0 - p.beta2) * g * g;
            *x -= p.lr * g / (s.sqrt() + p.eps);
        }
    });
}

pub fn adam_cpu(p: &OptimizerParams, param: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let (b1, b2, eps, step_size, bc2_sqrt) = (p.beta1, p.beta2, p.eps, p.step_size, p.bc2_sqrt);
    let n = p.n as usize;
    type Chunk<'a> = (((&'a mut [f32], &'a mut [f32]), &'a mut [f32]), &'a [f32]);
    let body = |(((param, m), v), g): Chunk| {
        wide(
            #[inline(always)]
            || {
                for (((x, m), v), &g) in param.iter_mut().zip(m).zip(v).zip(g) {
                    let mi = b1 * *m + (1.0 - b1) * g;
                    let vi = b2 * *v + (1.0 - b2) * g * g;
                    *m = mi;
                    *v = vi;
                    *x -= step_size * mi / (vi.sqrt() / bc2_sqrt + eps);
                }
            },
        )
    };
    match par_chunk(n, PAR_MIN) {
        Some(c) => param[..n]
            .par_chunks_mut(c)
            .zip(m[..n].par_chunks_mut(c))
            .zip(v[..n].par_chunks_mut(c))
            .zip(g[..n].par_chunks(c))
            .for_each(body),
        None => body((((&mut param[..n], &mut m[..n]), &mut v[..n]), &g[..n])),
    }
}

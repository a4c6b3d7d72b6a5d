//! Elementwise activations: `shaders/activation.wgsl` (functions in `activation_fns.wgsl`).
//! y = f(x) forward; backward dx = f'·dy with f' written in terms of y.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, elementwise_groups, launch, u};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::{PAR_MIN, for_chunks};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    LeakyRelu(f32),
    Tanh,
    Sigmoid,
}

impl Activation {
    /// The `kind` code of `shaders/activation_fns.wgsl`.
    pub fn code(self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Relu => 1,
            Activation::LeakyRelu(_) => 2,
            Activation::Tanh => 3,
            Activation::Sigmoid => 4,
        }
    }

    pub fn from_code(code: u32, alpha: f32) -> Self {
        match code {
            1 => Activation::Relu,
            2 => Activation::LeakyRelu(alpha),
            3 => Activation::Tanh,
            4 => Activation::Sigmoid,
            _ => Activation::Identity,
        }
    }

    pub fn alpha(self) -> f32 {
        match self {
            Activation::LeakyRelu(a) => a,
            _ => 0.0,
        }
    }

    /// PyTorch's module name ("ReLU", "LeakyReLU(0.2)").
    pub fn describe(self) -> String {
        match self {
            Activation::Identity => "Identity".into(),
            Activation::Relu => "ReLU".into(),
            Activation::LeakyRelu(a) => format!("LeakyReLU({a})"),
            Activation::Tanh => "Tanh".into(),
            Activation::Sigmoid => "Sigmoid".into(),
        }
    }

    /// Zero second derivative almost everywhere (exact gradient penalties need no extra term).
    pub fn is_piecewise_linear(self) -> bool {
        matches!(
            self,
            Activation::Identity | Activation::Relu | Activation::LeakyRelu(_)
        )
    }
}

crate::params! {
    pub struct ActivationParams {
        pub n: u32,
        pub kind: u32,
        pub alpha: f32,
        pub x_off: u32,
        pub y_off: u32,
        pub out_off: u32,
    }
}

impl ActivationParams {
    fn new(act: Activation, n: usize) -> Self {
        ActivationParams {
            n: u(n),
            kind: act.code(),
            alpha: act.alpha(),
            ..Default::default()
        }
    }

    fn act(&self) -> Activation {
        Activation::from_code(self.kind, self.alpha)
    }
}

pub static SHADER: Shader = Shader {
    name: "activation",
    source: include_str!("../../shaders/activation.wgsl"),
    preludes: &[&super::ACTIVATION_FNS],
};

fn groups(p: &[u8]) -> [u32; 3] {
    elementwise_groups(cast::<ActivationParams>(p).n)
}

pub static ACTIVATION_FORWARD: KernelDef = KernelDef {
    name: "activation_forward",
    shader: &SHADER,
    params: &<ActivationParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("x"),
        Binding::unused("y"),
        Binding::write("out"),
    ],
    workgroups: groups,
    cpu: |p, b| {
        let p: ActivationParams = cast(p);
        activation_forward_cpu(p.act(), b.w(2), b.r(0), p.n as usize)
    },
    reference: |p, b| {
        let p: ActivationParams = cast(p);
        let (x, y) = (b.r(0), b.w(2));
        for i in 0..p.n as usize {
            y[i] = activation(p.act(), x[i]);
        }
    },
    cases: || cases(false),
    bench: || bench(false),
    work: |p| Work::elementwise(cast::<ActivationParams>(p).n, 2),
};

pub static ACTIVATION_BACKWARD: KernelDef = KernelDef {
    name: "activation_backward",
    shader: &SHADER,
    params: &<ActivationParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("x"),
        Binding::read("y"),
        Binding::write("out"),
    ],
    workgroups: groups,
    cpu: |p, b| {
        let p: ActivationParams = cast(p);
        activation_backward_cpu(p.act(), b.w(2), b.r(0), b.r(1), p.n as usize)
    },
    reference: |p, b| {
        let p: ActivationParams = cast(p);
        let (dy, y, dx) = (b.r(0), b.r(1), b.w(2));
        for i in 0..p.n as usize {
            dx[i] = activation_grad(p.act(), dy[i], y[i]);
        }
    },
    cases: || cases(true),
    bench: || bench(true),
    work: |p| Work::elementwise(cast::<ActivationParams>(p).n, 3),
};

const ALL_ACTS: [Activation; 5] = [
    Activation::Identity,
    Activation::Relu,
    Activation::LeakyRelu(0.2),
    Activation::Tanh,
    Activation::Sigmoid,
];

fn case(act: Activation, n: usize, backward: bool, seed: u64) -> Case {
    let x = uniform(seed, n, -20.0, 20.0);
    let c = Case::new(
        format!("{} n={n}", act.describe()),
        ActivationParams::new(act, n),
    )
    .tol(2e-6, 2e-6);
    if backward {
        let y: Vec<f32> = uniform(seed + 1, n, -1.0, 1.0)
            .iter()
            .map(|&v| activation(act, 4.0 * v))
            .collect();
        c.f32(x).f32(y).zeros(n)
    } else {
        c.f32(x).unused().zeros(n)
    }
}

fn cases(backward: bool) -> Vec<Case> {
    let mut out = Vec::new();
    for (i, act) in ALL_ACTS.into_iter().enumerate() {
        for n in [1, 63, 65, 1200, 70_001] {
            out.push(case(act, n, backward, 17 * i as u64 + n as u64));
        }
    }
    out
}

fn bench(backward: bool) -> Vec<Case> {
    [Activation::Relu, Activation::Tanh, Activation::Sigmoid]
        .into_iter()
        .map(|a| case(a, 256 * 1024, backward, 5))
        .collect()
}

/// y[..n] = f(x[..n]).
pub fn activation_forward(be: &mut dyn Backend, act: Activation, y: Tensor, x: Tensor, n: usize) {
    launch(
        be,
        &ACTIVATION_FORWARD,
        ActivationParams::new(act, n),
        &[x, x, y],
    );
}

/// dx[..n] = f'·dy[..n], f' from the forward output y.
pub fn activation_backward(
    be: &mut dyn Backend,
    act: Activation,
    dx: Tensor,
    dy: Tensor,
    y: Tensor,
    n: usize,
) {
    launch(
        be,
        &ACTIVATION_BACKWARD,
        ActivationParams::new(act, n),
        &[dy, y, dx],
    );
}

// ---- the specification -------------------------------------------------------------------

pub fn stable_sigmoid(v: f32) -> f32 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// softplus(v) = log(1 + e^v), without overflow.
pub fn softplus(v: f32) -> f32 {
    v.max(0.0) + (1.0 + (-v.abs()).exp()).ln()
}

/// f(v), as the shaders compute it.
pub fn activation(act: Activation, v: f32) -> f32 {
    match act {
        Activation::Identity => v,
        Activation::Relu => v.max(0.0),
        Activation::LeakyRelu(a) => {
            if v > 0.0 {
                v
            } else {
                a * v
            }
        }
        Activation::Tanh => v.clamp(-15.0, 15.0).tanh(),
        Activation::Sigmoid => stable_sigmoid(v),
    }
}

/// f'(x)·g written in terms of y = f(x).
pub fn activation_grad(act: Activation, g: f32, y: f32) -> f32 {
    match act {
        Activation::Identity => g,
        Activation::Relu => {
            if y > 0.0 {
                g
            } else {
                0.0
            }
        }
        Activation::LeakyRelu(a) => {
            if y > 0.0 {
                g
            } else {
                a * g
            }
        }
        Activation::Tanh => g * (1.0 - y * y),
        Activation::Sigmoid => g * y * (1.0 - y),
    }
}

// ---- the fast twin -------------------------------------------------------------------------

/// tanh as a rational function of x (odd degree-13 numerator over even degree-6 denominator,
/// the approximation Eigen uses), clamped where tanh is ±1 in f32: no library call, so the loop
/// vectorises. Within 5e-7 of f64 tanh (tested). The shaders compute the same function
/// (`stable_tanh` in `shaders/activation_fns.wgsl`), so the backends agree to a few ULP on any
/// adapter, whatever its own `tanh` does.
#[inline(always)]
pub fn fast_tanh(v: f32) -> f32 {
    let x = v.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let mut p = -2.760_768_5e-16_f32;
    p = p * x2 + 2.000_188e-13;
    p = p * x2 + -8.604_672e-11;
    p = p * x2 + 5.122_297e-8;
    p = p * x2 + 1.485_722_4e-5;
    p = p * x2 + 6.372_619_3e-4;
    p = p * x2 + 4.893_524_6e-3;
    let mut q = 1.198_258_4e-6_f32;
    q = q * x2 + 1.185_347e-4;
    q = q * x2 + 2.268_434_6e-3;
    q = q * x2 + 4.893_525e-3;
    x * p / q
}

/// σ(v) = (1 + tanh(v/2)) / 2, vectorisable.
#[inline(always)]
pub fn fast_sigmoid(v: f32) -> f32 {
    0.5 + 0.5 * fast_tanh(0.5 * v)
}

/// y = f(x) with `act` resolved outside the loop, so each activation gets its own branch-free
/// (vectorised) loop.
fn map_act(act: Activation, y: &mut [f32], x: &[f32]) {
    #[inline(always)]
    fn each(y: &mut [f32], x: &[f32], f: impl Fn(f32) -> f32) {
        for (yi, xi) in y.iter_mut().zip(x) {
            *yi = f(*xi);
        }
    }
    match act {
        Activation::Identity => y.copy_from_slice(x),
        Activation::Relu => each(y, x, |v| v.max(0.0)),
        Activation::LeakyRelu(a) => each(y, x, |v| if v > 0.0 { v } else { a * v }),
        Activation::Tanh => each(y, x, fast_tanh),
        Activation::Sigmoid => each(y, x, fast_sigmoid),
    }
}

/// In place: v = f(v).
pub fn activate_in_place(act: Activation, v: &mut [f32]) {
    if act == Activation::Identity {
        return;
    }
    #[inline(always)]
    fn each(v: &mut [f32], f: impl Fn(f32) -> f32) {
        for x in v.iter_mut() {
            *x = f(*x);
        }
    }
    for_chunks(v, PAR_MIN, |_, v| match act {
        Activation::Identity => {}
        Activation::Relu => each(v, |x| x.max(0.0)),
        Activation::LeakyRelu(a) => each(v, |x| if x > 0.0 { x } else { a * x }),
        Activation::Tanh => each(v, fast_tanh),
        Activation::Sigmoid => each(v, fast_sigmoid),
    });
}

/// dx = f'·dy from y, `act` resolved outside the loop.
pub fn map_act_grad(act: Activation, dx: &mut [f32], dy: &[f32], y: &[f32]) {
    #[inline(always)]
    fn each(dx: &mut [f32], dy: &[f32], y: &[f32], f: impl Fn(f32, f32) -> f32) {
        for ((d, g), yi) in dx.iter_mut().zip(dy).zip(y) {
            *d = f(*g, *yi);
        }
    }
    match act {
        Activation::Identity => dx.copy_from_slice(dy),
        Activation::Relu => each(dx, dy, y, |g, y| if y > 0.0 { g } else { 0.0 }),
        Activation::LeakyRelu(a) => each(dx, dy, y, |g, y| if y > 0.0 { g } else { a * g }),
        Activation::Tanh => each(dx, dy, y, |g, y| g * (1.0 - y * y)),
        Activation::Sigmoid => each(dx, dy, y, |g, y| g * y * (1.0 - y)),
    }
}

/// In place: g = f'·g from y.
pub fn act_grad_in_place(act: Activation, g: &mut [f32], y: &[f32]) {
    if act == Activation::Identity {
        return;
    }
    #[inline(always)]
    fn each(g: &mut [f32], y: &[f32], f: impl Fn(f32, f32) -> f32) {
        for (gi, yi) in g.iter_mut().zip(y) {
            *gi = f(*gi, *yi);
        }
    }
    for_chunks(g, PAR_MIN, |s, g| {
        let y = &y[s..s + g.len()];
        match act {
            Activation::Identity => {}
            Activation::Relu => each(g, y, |g, y| if y > 0.0 { g } else { 0.0 }),
            Activation::LeakyRelu(a) => each(g, y, |g, y| if y > 0.0 { g } else { a * g }),
            Activation::Tanh => each(g, y, |g, y| g * (1.0 - y * y)),
            Activation::Sigmoid => each(g, y, |g, y| g * y * (1.0 - y)),
        }
    });
}

pub fn activation_forward_cpu(act: Activation, y: &mut [f32], x: &[f32], n: usize) {
    for_chunks(&mut y[..n], PAR_MIN, |s, y| {
        map_act(act, y, &x[s..s + y.len()])
    });
}

pub fn activation_backward_cpu(act: Activation, dx: &mut [f32], dy: &[f32], y: &[f32], n: usize) {
    for_chunks(&mut dx[..n], PAR_MIN, |s, dx| {
        let e = s + dx.len();
        map_act_grad(act, dx, &dy[s..e], &y[s..e])
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_tanh_and_sigmoid_match_f64_closely() {
        let mut worst = (0.0f64, 0.0f64);
        for i in -40_000..=40_000 {
            let v = i as f32 * 5e-4;
            let t = (v as f64).tanh();
            let s = 1.0 / (1.0 + (-(v as f64)).exp());
            worst.0 = worst.0.max((fast_tanh(v) as f64 - t).abs());
            worst.1 = worst.1.max((fast_sigmoid(v) as f64 - s).abs());
        }
        assert!(worst.0 < 5e-7, "tanh error {}", worst.0);
        assert!(worst.1 < 5e-7, "sigmoid error {}", worst.1);
        assert_eq!(fast_tanh(100.0), fast_tanh(8.0));
        assert!((fast_tanh(100.0) - 1.0).abs() < 1e-6);
        assert!(fast_sigmoid(-100.0).abs() < 1e-6);
    }

    #[test]
    fn in_place_variants_match_the_spec() {
        let x = uniform(3, 50_000, -10.0, 10.0);
        for act in ALL_ACTS {
            let mut v = x.clone();
            activate_in_place(act, &mut v);
            for (a, b) in v.iter().zip(&x) {
                assert!((a - activation(act, *b)).abs() < 1e-6, "{act:?}");
            }
        }
    }
}

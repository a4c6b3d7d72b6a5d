//! C[m,n] = act(A[m,k]·B[k,n] (+ bias[n]) (+ C)), A and B read through (row, column) strides:
//! one kernel for the three products of a linear layer (`shaders/matmul.wgsl`; the GPU backend
//! may run the generated barrier-free variant of `gpu::matmul` instead, picked per adapter).
//! With `act_grad` it computes C = (A·B) ⊙ f'(y) instead: a backward product fused with the
//! gradient of the activation whose output y has C's shape.

use super::case::uniform;
use super::{Binding, Case, KernelDef, Shader, Work, cast, launch, u};
use crate::backend::{Activation, Backend, MatView, Tensor, WriteMode};
use crate::kernels::activation::{
    act_grad_in_place, activate_in_place, activation, activation_grad,
};

crate::params! {
    pub struct MatmulParams {
        pub m: u32,
        pub n: u32,
        pub k: u32,
        /// bit 0: add bias; bit 1: accumulate into C; bit 2: one bias value for every column
        /// (GPU-internal); bit 3: multiply by f'(y), y bound as `bias`.
        pub flags: u32,
        pub a_off: u32,
        pub a_rs: u32,
        pub a_cs: u32,
        pub b_off: u32,
        pub b_rs: u32,
        pub b_cs: u32,
        pub c_off: u32,
        pub bias_off: u32,
        pub act: u32,
        pub alpha: f32,
    }
}

pub const FLAG_BIAS: u32 = 1;
pub const FLAG_ACCUMULATE: u32 = 2;
pub const FLAG_SCALAR_BIAS: u32 = 4;
pub const FLAG_ACT_GRAD: u32 = 8;

impl MatmulParams {
    fn new(a: &MatView, b: &MatView, m: usize, n: usize, k: usize, act: Activation) -> Self {
        MatmulParams {
            m: u(m),
            n: u(n),
            k: u(k),
            a_rs: u(a.rs),
            a_cs: u(a.cs),
            b_rs: u(b.rs),
            b_cs: u(b.cs),
            act: act.code(),
            alpha: act.alpha(),
            ..Default::default()
        }
    }

    pub fn activation(&self) -> Activation {
        Activation::from_code(self.act, self.alpha)
    }
}

pub static EPILOGUE: Shader = Shader {
    name: "matmul_epilogue",
    source: include_str!("../../shaders/matmul_epilogue.wgsl"),
    preludes: &[&super::ACTIVATION_FNS],
};

pub static SHADER: Shader = Shader {
    name: "matmul",
    source: include_str!("../../shaders/matmul.wgsl"),
    preludes: &[&EPILOGUE],
};

pub static MATMUL: KernelDef = KernelDef {
    name: "matmul",
    shader: &SHADER,
    params: &<MatmulParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("a"),
        Binding::read("b"),
        Binding::read("bias"),
        Binding::write("c"),
    ],
    workgroups: |p| {
        let p: MatmulParams = cast(p);
        [p.n.div_ceil(64), p.m.div_ceil(64), 1]
    },
    cpu: |p, b| matmul_cpu(&cast(p), b.w(3), b.r(0), b.r(1), b.r(2)),
    reference: |p, b| matmul_reference(&cast(p), b.w(3), b.r(0), b.r(1), b.r(2)),
    cases,
    bench,
    work: |p| {
        let p: MatmulParams = cast(p);
        let (m, n, k) = (p.m as f64, p.n as f64, p.k as f64);
        Work {
            flops: 2.0 * m * n * k,
            bytes: 4.0 * (m * k + k * n + m * n),
        }
    },
};

// ---- launchers -----------------------------------------------------------------------------

/// The shape of one product C[m,n] = A[m,k]·B[k,n].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

/// A linear layer's product Y[rows, outputs] = X[rows, inputs]·W[inputs, outputs], from which
/// its three products take their shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dense {
    pub rows: usize,
    pub inputs: usize,
    pub outputs: usize,
}

impl Dense {
    /// Y = X·W.
    pub fn forward(self) -> MatmulShape {
        MatmulShape {
            m: self.rows,
            n: self.outputs,
            k: self.inputs,
        }
    }

    /// dX = dY·Wᵀ.
    pub fn backward_input(self) -> MatmulShape {
        MatmulShape {
            m: self.rows,
            n: self.inputs,
            k: self.outputs,
        }
    }

    /// dW = Xᵀ·dY.
    pub fn backward_weights(self) -> MatmulShape {
        MatmulShape {
            m: self.inputs,
            n: self.outputs,
            k: self.rows,
        }
    }
}

/// What the product does as it stores C: add a bias row, apply an activation, add to C.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue {
    pub bias: Option<Tensor>,
    pub act: Activation,
    pub store: WriteMode,
}

impl Epilogue {
    /// C = A·B, nothing added.
    pub fn plain(store: WriteMode) -> Self {
        Epilogue {
            bias: None,
            act: Activation::Identity,
            store,
        }
    }
}

/// C[m,n] = act(A·B (+ bias[n])) (+ C when the epilogue accumulates).
pub fn matmul_act(
    be: &mut dyn Backend,
    c: Tensor,
    a: MatView,
    b: MatView,
    shape: MatmulShape,
    epilogue: Epilogue,
) {
    let MatmulShape { m, n, k } = shape;
    if m == 0 || n == 0 {
        return;
    }
    let mut p = MatmulParams::new(&a, &b, m, n, k, epilogue.act);
    p.flags = if epilogue.bias.is_some() {
        FLAG_BIAS
    } else {
        0
    } | if epilogue.store.accumulates() {
        FLAG_ACCUMULATE
    } else {
        0
    };
    launch(be, &MATMUL, p, &[a.t, b.t, epilogue.bias.unwrap_or(a.t), c]);
}

/// C[m,n] = A·B (+ C when `store` accumulates).
pub fn matmul(
    be: &mut dyn Backend,
    c: Tensor,
    a: MatView,
    b: MatView,
    shape: MatmulShape,
    store: WriteMode,
) {
    matmul_act(be, c, a, b, shape, Epilogue::plain(store));
}

/// C[m,n] = (A·B) ⊙ f'(y), with f' of `act` written in terms of its output y ([m,n] like C).
pub fn matmul_act_grad(
    be: &mut dyn Backend,
    c: Tensor,
    a: MatView,
    b: MatView,
    shape: MatmulShape,
    act: Activation,
    y: Tensor,
) {
    let MatmulShape { m, n, k } = shape;
    if m == 0 || n == 0 {
        return;
    }
    let mut p = MatmulParams::new(&a, &b, m, n, k, act);
    p.flags = FLAG_ACT_GRAD;
    launch(be, &MATMUL, p, &[a.t, b.t, y, c]);
}

/// Y[rows, outputs] = act(X·W + b): a linear layer and its activation in one kernel.
pub fn matmul_forward(
    be: &mut dyn Backend,
    y: Tensor,
    x: Tensor,
    w: Tensor,
    b: Option<Tensor>,
    act: Activation,
    dense: Dense,
) {
    let (a, bm) = (
        MatView::new(x, dense.inputs, 1),
        MatView::new(w, dense.outputs, 1),
    );
    let epilogue = Epilogue {
        bias: b,
        act,
        store: WriteMode::Overwrite,
    };
    matmul_act(be, y, a, bm, dense.forward(), epilogue);
}

/// dX[rows, inputs] = dY·Wᵀ, times f'(x) of the activation that produced X when `below` names
/// it (backward through a Linear and the activation below it in one kernel).
pub fn matmul_backward_input(
    be: &mut dyn Backend,
    dx: Tensor,
    dy: Tensor,
    w: Tensor,
    below: Option<(Activation, Tensor)>,
    dense: Dense,
) {
    let (a, b) = (
        MatView::new(dy, dense.outputs, 1),
        MatView::new(w, 1, dense.outputs),
    );
    let shape = dense.backward_input();
    match below {
        Some((act, x)) if act != Activation::Identity => {
            matmul_act_grad(be, dx, a, b, shape, act, x)
        }
        _ => matmul(be, dx, a, b, shape, WriteMode::Overwrite),
    }
}

/// dW[inputs, outputs] (+)= Xᵀ·dY.
pub fn matmul_backward_weights(
    be: &mut dyn Backend,
    dw: Tensor,
    x: Tensor,
    dy: Tensor,
    dense: Dense,
    store: WriteMode,
) {
    let (a, b) = (
        MatView::new(x, 1, dense.inputs),
        MatView::new(dy, dense.outputs, 1),
    );
    matmul(be, dw, a, b, dense.backward_weights(), store);
}

// ---- the specification -------------------------------------------------------------------

/// The triple loop, accumulated in f64.
pub fn matmul_reference(p: &MatmulParams, c: &mut [f32], a: &[f32], b: &[f32], bias: &[f32]) {
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    let (a_rs, a_cs, b_rs, b_cs) = (
        p.a_rs as usize,
        p.a_cs as usize,
        p.b_rs as usize,
        p.b_cs as usize,
    );
    let act = p.activation();
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            for l in 0..k {
                s += a[i * a_rs + l * a_cs] as f64 * b[l * b_rs + j * b_cs] as f64;
            }
            let ci = i * n + j;
            let mut v = s as f32;
            if p.flags & FLAG_ACT_GRAD != 0 {
                c[ci] = activation_grad(act, v, bias[ci]);
                continue;
            }
            if p.flags & FLAG_BIAS != 0 {
                v += bias[if p.flags & FLAG_SCALAR_BIAS != 0 {
                    0
                } else {
                    j
                }];
            }
            if p.flags & FLAG_ACCUMULATE != 0 {
                v += c[ci];
            }
            c[ci] = activation(act, v);
        }
    }
}

// ---- the fast twin -------------------------------------------------------------------------

/// The GEMM of `cpu::gemm`, then the epilogue over C while it is in cache.
pub fn matmul_cpu(p: &MatmulParams, c: &mut [f32], a: &[f32], b: &[f32], bias: &[f32]) {
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    let strides = |rs: u32, cs: u32| (rs as usize, cs as usize);
    let act = p.activation();
    if p.flags & FLAG_ACT_GRAD != 0 {
        crate::cpu::gemm::matmul(
            c,
            a,
            strides(p.a_rs, p.a_cs),
            b,
            strides(p.b_rs, p.b_cs),
            None,
            m,
            n,
            k,
            false,
        );
        act_grad_in_place(act, &mut c[..m * n], &bias[..m * n]);
        return;
    }
    assert!(
        p.flags & FLAG_SCALAR_BIAS == 0,
        "the scalar-bias flag is internal to the GPU backend"
    );
    let bias = (p.flags & FLAG_BIAS != 0).then_some(bias);
    crate::cpu::gemm::matmul(
        c,
        a,
        strides(p.a_rs, p.a_cs),
        b,
        strides(p.b_rs, p.b_cs),
        bias,
        m,
        n,
        k,
        p.flags & FLAG_ACCUMULATE != 0,
    );
    activate_in_place(act, &mut c[..m * n]);
}

// ---- cases ---------------------------------------------------------------------------------

/// Which product of a linear layer a case exercises (how A and B are strided).
#[derive(Clone, Copy, Debug)]
pub enum Product {
    Forward,
    BackwardInput,
    BackwardWeights,
}

/// A case of `product` for a layer with batch `m`, fan-in `k`, fan-out `n`.
pub fn product_case(
    product: Product,
    (m, k, n): (usize, usize, usize),
    flags: u32,
    act: Activation,
    seed: u64,
) -> Case {
    // (rows, inner, cols) of C = A·B and the strides.
    let (rows, inner, cols, a_len, b_len, a_s, b_s) = match product {
        Product::Forward => (m, k, n, m * k, k * n, (k, 1), (n, 1)),
        Product::BackwardInput => (m, n, k, m * n, k * n, (n, 1), (1, n)),
        Product::BackwardWeights => (k, m, n, m * k, m * n, (1, k), (n, 1)),
    };
    let p = MatmulParams {
        m: u(rows),
        n: u(cols),
        k: u(inner),
        flags,
        a_rs: u(a_s.0),
        a_cs: u(a_s.1),
        b_rs: u(b_s.0),
        b_cs: u(b_s.1),
        act: act.code(),
        alpha: act.alpha(),
        ..Default::default()
    };
    let bias = if flags & FLAG_ACT_GRAD != 0 {
        uniform(seed + 2, rows * cols, -1.0, 1.0)
            .into_iter()
            .map(|v| activation(act, 3.0 * v))
            .collect()
    } else {
        uniform(seed + 2, cols.max(1), -1.0, 1.0)
    };
    let tol = 2e-6 * (inner.max(1) as f32).sqrt();
    Case::new(
        format!(
            "{product:?} m={m} k={k} n={n} flags={flags} {}",
            act.describe()
        ),
        p,
    )
    .f32(uniform(seed, a_len, -1.0, 1.0))
    .f32(uniform(seed + 1, b_len, -1.0, 1.0))
    .f32(bias)
    .f32(uniform(seed + 3, rows * cols, -1.0, 1.0))
    .tol(tol, 1e-4)
}

fn cases() -> Vec<Case> {
    let shapes = [
        (1, 1, 1),
        (3, 63, 65),
        (63, 65, 3),
        (65, 100, 127),
        (127, 1, 100),
        (64, 784, 65),
        (100, 120, 1),
        (3, 1200, 784),
    ];
    let mut out = Vec::new();
    for (i, &s) in shapes.iter().enumerate() {
        let seed = 100 * i as u64;
        let act = [
            Activation::Relu,
            Activation::LeakyRelu(0.2),
            Activation::Tanh,
            Activation::Sigmoid,
        ][i % 4];
        out.push(product_case(Product::Forward, s, FLAG_BIAS, act, seed));
        out.push(product_case(
            Product::Forward,
            s,
            0,
            Activation::Identity,
            seed + 10,
        ));
        out.push(product_case(
            Product::BackwardInput,
            s,
            0,
            Activation::Identity,
            seed + 20,
        ));
        out.push(product_case(
            Product::BackwardInput,
            s,
            FLAG_ACT_GRAD,
            act,
            seed + 30,
        ));
        out.push(product_case(
            Product::BackwardWeights,
            s,
            FLAG_ACCUMULATE,
            Activation::Identity,
            seed + 40,
        ));
        out.push(product_case(
            Product::Forward,
            s,
            FLAG_BIAS | FLAG_ACCUMULATE,
            Activation::Identity,
            seed + 50,
        ));
    }
    out
}

/// The products of the mlp model at batch 64 (D sees 128 rows), and a GEMM the size of the
/// implicit GEMM of dcgan's D conv2 at batch 64 (128 × 6,272 × 1,024), so the convolution rows
/// can be read against a matmul of the same size on the same adapter.
fn bench() -> Vec<Case> {
    let mut out = Vec::new();
    for (m, k, n) in [
        (128, 784, 1024),
        (128, 1024, 1024),
        (64, 100, 1024),
        (6272, 1024, 128),
    ] {
        out.push(product_case(
            Product::Forward,
            (m, k, n),
            FLAG_BIAS,
            Activation::Relu,
            1,
        ));
        out.push(product_case(
            Product::BackwardInput,
            (m, k, n),
            FLAG_ACT_GRAD,
            Activation::LeakyRelu(0.2),
            2,
        ));
        out.push(product_case(
            Product::BackwardWeights,
            (m, k, n),
            0,
            Activation::Identity,
            3,
        ));
    }
    out
}

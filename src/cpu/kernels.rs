//! CPU twins of the WGSL kernels: the readable specification each GPU kernel is tested against,
//! and the CPU backend's implementation. Same names and arguments as the entry points in
//! `shaders/`, on plain slices.

use crate::backend::{Activation, AdamStep, GanLossKind};
use crate::rng::{self, RngKey};

/// C[m,n] = A[m,k]·B[k,n] (+ bias[n]) (+ C if accumulate). A(r,c) = a[r·a_rs + c·a_cs], and so
/// for B; C is row-major with row stride n. The GEMM is `matrixmultiply`'s blocked SIMD kernel.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    c: &mut [f32],
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    bias: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    assert!(c.len() >= m * n, "matmul: C holds {} < {m}×{n}", c.len());
    if m == 0 || n == 0 {
        return;
    }
    if k > 0 {
        let a_need = (m - 1) * a_rs + (k - 1) * a_cs + 1;
        let b_need = (k - 1) * b_rs + (n - 1) * b_cs + 1;
        assert!(a.len() >= a_need, "matmul: A holds {} < {a_need}", a.len());
        assert!(b.len() >= b_need, "matmul: B holds {} < {b_need}", b.len());
    }
    let mut beta = if accumulate { 1.0 } else { 0.0 };
    if let Some(bias) = bias {
        for row in c[..m * n].chunks_exact_mut(n) {
            for (ci, bi) in row.iter_mut().zip(&bias[..n]) {
                *ci = if accumulate { *ci + bi } else { *bi };
            }
        }
        beta = 1.0;
    }
    if k == 0 {
        if beta == 0.0 {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: the asserts above keep every strided access inside the slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_rs as isize,
            a_cs as isize,
            b.as_ptr(),
            b_rs as isize,
            b_cs as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// C = act(A·B (+ bias) (+ C)): `matmul`, then the activation over C while it is in cache.
#[allow(clippy::too_many_arguments)]
pub fn matmul_act(
    c: &mut [f32],
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    bias: Option<&[f32]>,
    act: Activation,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    matmul(c, a, a_strides, b, b_strides, bias, m, n, k, accumulate);
    if act != Activation::Identity {
        for v in &mut c[..m * n] {
            *v = activation(act, *v);
        }
    }
}

/// db[n] (+)= Σ_r dy[r, n] for dy of m rows.
pub fn bias_backward(db: &mut [f32], dy: &[f32], m: usize, n: usize, accumulate: bool) {
    if !accumulate {
        db[..n].fill(0.0);
    }
    for row in dy[..m * n].chunks_exact(n) {
        for (d, g) in db[..n].iter_mut().zip(row) {
            *d += g;
        }
    }
}

pub fn stable_tanh(v: f32) -> f32 {
    v.clamp(-15.0, 15.0).tanh()
}

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
        Activation::Tanh => stable_tanh(v),
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

pub fn activation_forward(act: Activation, y: &mut [f32], x: &[f32], n: usize) {
    for (yi, xi) in y[..n].iter_mut().zip(&x[..n]) {
        *yi = activation(act, *xi);
    }
}

pub fn activation_backward(act: Activation, dx: &mut [f32], dy: &[f32], y: &[f32], n: usize) {
    for ((d, g), yi) in dx[..n].iter_mut().zip(&dy[..n]).zip(&y[..n]) {
        *d = activation_grad(act, *g, *yi);
    }
}

/// y[r,u] = max_j x[r, u·pieces + j]; idx = the first j attaining it.
pub fn maxout_forward(
    y: &mut [f32],
    idx: &mut [u32],
    x: &[f32],
    rows: usize,
    units: usize,
    pieces: usize,
) {
    for i in 0..rows * units {
        let group = &x[i * pieces..(i + 1) * pieces];
        let (mut best, mut arg) = (group[0], 0u32);
        for (j, &v) in group.iter().enumerate().skip(1) {
            if v > best {
                best = v;
                arg = j as u32;
            }
        }
        y[i] = best;
        idx[i] = arg;
    }
}

pub fn maxout_backward(
    dx: &mut [f32],
    dy: &[f32],
    idx: &[u32],
    rows: usize,
    units: usize,
    pieces: usize,
) {
    for i in 0..rows * units {
        for j in 0..pieces {
            dx[i * pieces + j] = if j as u32 == idx[i] { dy[i] } else { 0.0 };
        }
    }
}

fn dropout_apply(dst: &mut [f32], src: &[f32], n: usize, keep: f32, key: RngKey) {
    for i in 0..n {
        let kept = rng::unit_open_high(rng::words(key, i as u64)[0]) < keep;
        dst[i] = if kept { src[i] / keep } else { 0.0 };
    }
}

pub fn dropout_forward(y: &mut [f32], x: &[f32], n: usize, keep: f32, key: RngKey) {
    dropout_apply(y, x, n, keep, key);
}

pub fn dropout_backward(dx: &mut [f32], dy: &[f32], n: usize, keep: f32, key: RngKey) {
    dropout_apply(dx, dy, n, keep, key);
}

/// See `shaders/gan_loss.wgsl`: grad = dL/dlogits; stats[0..3] (+)= (L, mean D(x), mean D(G(z))).
pub fn gan_loss(
    kind: GanLossKind,
    grad: &mut [f32],
    logits: &[f32],
    n_real: usize,
    n_fake: usize,
    stats: &mut [f32],
    accumulate: bool,
) {
    let inv_real = 1.0 / n_real.max(1) as f32;
    let inv_fake = 1.0 / n_fake.max(1) as f32;
    let (mut loss, mut d_real, mut d_fake) = (0.0f32, 0.0f32, 0.0f32);
    for i in 0..n_real + n_fake {
        let l = logits[i];
        let s = stable_sigmoid(l);
        grad[i] = if i < n_real {
            loss += softplus(-l) * inv_real;
            d_real += s;
            (s - 1.0) * inv_real
        } else {
            d_fake += s;
            match kind {
                GanLossKind::Discriminator => {
                    loss += softplus(l) * inv_fake;
                    s * inv_fake
                }
                GanLossKind::GeneratorMinimax => {
                    loss -= softplus(l) * inv_fake;
                    -s * inv_fake
                }
                GanLossKind::GeneratorNonSaturating => {
                    loss += softplus(-l) * inv_fake;
                    (s - 1.0) * inv_fake
                }
            }
        };
    }
    let mean_real = if n_real == 0 { 0.0 } else { d_real * inv_real };
    let out = [loss, mean_real, d_fake * inv_fake];
    for (s, o) in stats[..3].iter_mut().zip(out) {
        *s = if accumulate { *s + o } else { o };
    }
}

pub fn sgd_momentum(
    param: &mut [f32],
    grad: &[f32],
    velocity: &mut [f32],
    n: usize,
    lr: f32,
    momentum: f32,
) {
    for i in 0..n {
        let v = momentum * velocity[i] - lr * grad[i];
        velocity[i] = v;
        param[i] += v;
    }
}

pub fn adam(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    n: usize,
    step: &AdamStep,
) {
    let (step_size, bc2_sqrt) = step.corrections();
    let (b1, b2, eps) = (step.beta1, step.beta2, step.eps);
    for i in 0..n {
        let g = grad[i];
        let mi = b1 * m[i] + (1.0 - b1) * g;
        let vi = b2 * v[i] + (1.0 - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] -= step_size * mi / (vi.sqrt() / bc2_sqrt + eps);
    }
}

pub fn rng_uniform(out: &mut [f32], n: usize, lo: f32, hi: f32, key: RngKey) {
    for (i, o) in out[..n].iter_mut().enumerate() {
        *o = rng::uniform(key, i as u64, lo, hi);
    }
}

pub fn rng_normal(out: &mut [f32], n: usize, key: RngKey) {
    for (i, o) in out[..n].iter_mut().enumerate() {
        *o = rng::normal(key, i as u64);
    }
}

pub fn rng_index(out: &mut [u32], n: usize, range: u32, key: RngKey) {
    for (i, o) in out[..n].iter_mut().enumerate() {
        *o = rng::index(key, i as u64, range);
    }
}

pub fn rng_bits(out: &mut [u32], n: usize, key: RngKey) {
    for (i, o) in out[..n].iter_mut().enumerate() {
        *o = rng::words(key, (i / 4) as u64)[i % 4];
    }
}

/// out[r, :] = bytes of row idx[r] · scale + offset; `chunks` hold `chunk_rows` rows each.
#[allow(clippy::too_many_arguments)]
pub fn gather_rows_u8(
    out: &mut [f32],
    chunks: &[&[u8]],
    chunk_rows: usize,
    row_len: usize,
    idx: &[u32],
    rows: usize,
    scale: f32,
    offset: f32,
) {
    for r in 0..rows {
        let row = idx[r] as usize;
        let chunk = chunks[row / chunk_rows];
        let start = (row % chunk_rows) * row_len;
        for (o, &b) in out[r * row_len..(r + 1) * row_len]
            .iter_mut()
            .zip(&chunk[start..start + row_len])
        {
            *o = b as f32 * scale + offset;
        }
    }
}

pub fn gather_rows_f32(out: &mut [f32], src: &[f32], idx: &[u32], rows: usize, row_len: usize) {
    for r in 0..rows {
        let row = idx[r] as usize;
        out[r * row_len..(r + 1) * row_len]
            .copy_from_slice(&src[row * row_len..(row + 1) * row_len]);
    }
}

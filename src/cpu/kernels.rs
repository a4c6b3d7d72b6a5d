//! CPU twins of the WGSL kernels: the readable specification each GPU kernel is tested against,
//! and the CPU backend's implementation. Same names and arguments as the entry points in
//! `shaders/`, on plain slices.

use crate::backend::{Activation, AdamStep, GanLossKind};
use crate::rng::{self, RngKey};
use rayon::prelude::*;
use std::sync::OnceLock;

/// Elementwise work below this many elements stays on the calling thread: handing a chunk to
/// the rayon pool costs a few microseconds, as much as ~16K cheap elements.
const PAR_MIN: usize = 1 << 14;
/// The same for elements that cost ~30 ns each (Philox draws, Box–Muller).
const PAR_MIN_RNG: usize = 1 << 11;

/// Chunk length splitting `n` elements over the pool, or None to run on this thread.
fn par_chunk(n: usize, min: usize) -> Option<usize> {
    let threads = rayon::current_num_threads();
    (n >= min && threads > 1).then(|| n.div_ceil(threads).max(1))
}

/// Which GEMM the CPU path multiplies with (see `matmul`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gemm {
    /// `matrixmultiply`'s packed SIMD kernel, threaded over M blocks by its own pool.
    MatrixMultiply,
    /// The `gemm` crate (AVX-512 kernels with `x86-v4`), parallel on the rayon pool that also
    /// runs the elementwise kernels.
    Gemm,
    /// `gemm`, except matrixmultiply when B is read transposed (backward-input's Wᵀ). Looked
    /// faster per kernel under load; slower in whole iterations on a quiet machine.
    Auto,
}

/// `DUEL_CPU_GEMM=matrixmultiply|gemm|auto`, default gemm: on the 2-core Zen 4 benchmark box,
/// quiet, mlp trains at 28–31 it/s (batch 64) and 12.2–12.4 (batch 256) with gemm against
/// 25–26 and 11.2–11.8 with auto, and matrixmultiply alone was slower still.
pub fn gemm_choice() -> Gemm {
    static CHOICE: OnceLock<Gemm> = OnceLock::new();
    *CHOICE.get_or_init(|| match std::env::var("DUEL_CPU_GEMM").as_deref() {
        Ok("matrixmultiply") => Gemm::MatrixMultiply,
        Ok("gemm") => Gemm::Gemm,
        Ok("auto") => Gemm::Auto,
        _ => Gemm::Gemm,
    })
}

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
    let choice = match gemm_choice() {
        Gemm::Auto if b_rs == 1 && b_cs != 1 && n > 1 => Gemm::MatrixMultiply,
        Gemm::Auto => Gemm::Gemm,
        c => c,
    };
    unsafe {
        match choice {
            Gemm::MatrixMultiply => matrixmultiply::sgemm(
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
            ),
            Gemm::Gemm | Gemm::Auto if b_cs != 1 && n > 1 && m > 1 && m * n * k >= 1 << 18 => {
                gemm_transposed_b(c, a, (a_rs, a_cs), b, (b_rs, b_cs), m, n, k, beta != 0.0)
            }
            // dst = alpha·dst + beta·lhs·rhs, strides given as (column, row).
            Gemm::Gemm | Gemm::Auto => gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                beta != 0.0,
                a.as_ptr(),
                a_cs as isize,
                a_rs as isize,
                b.as_ptr(),
                b_cs as isize,
                b_rs as isize,
                beta,
                1.0,
                false,
                false,
                false,
                gemm_parallelism(m, n, k),
            ),
        }
    }
}

thread_local! {
    /// Scratch of `gemm_transposed_b`, kept between calls so an iteration allocates nothing.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// C (+)= A·B when B's columns are not contiguous (backward-input's Wᵀ). `gemm` stores C
/// column-major internally and runs 2–3× slower when the matrix it then reads as its left
/// operand (Bᵀ) is not column-major, so compute C column-major into scratch from a
/// column-major copy of A instead (both copies are m-row, small next to B), then transpose
/// into C: 114–145 GFLOP/s instead of 40–64 on the benchmark shapes.
///
/// # Safety
/// As for `matmul`: the strided views of A and B lie inside the slices.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_transposed_b(
    c: &mut [f32],
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    m: usize,
    n: usize,
    k: usize,
    add: bool,
) {
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        let (at, ct) = &mut *scratch;
        at.resize(m * k, 0.0);
        ct.resize(m * n, 0.0);
        // at[j·m + i] = A(i, j): A column-major.
        for (j, col) in at.chunks_exact_mut(m).enumerate() {
            for (i, v) in col.iter_mut().enumerate() {
                *v = a[i * a_rs + j * a_cs];
            }
        }
        // SAFETY: `at` and `ct` hold m×k and m×n; B's view is the caller's.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                ct.as_mut_ptr(),
                m as isize,
                1,
                false,
                at.as_ptr(),
                m as isize,
                1,
                b.as_ptr(),
                b_cs as isize,
                b_rs as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm_parallelism(m, n, k),
            );
        }
        // c[i·n + j] (+)= ct[j·m + i]
        for (i, row) in c[..m * n].chunks_exact_mut(n).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                let x = ct[j * m + i];
                *v = if add { *v + x } else { x };
            }
        }
    });
}

/// Both cores for products worth splitting; one for tiny ones (a split costs microseconds).
fn gemm_parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    let threads = rayon::current_num_threads();
    if threads > 1 && m * n * k >= 1 << 18 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
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
        activate_in_place(act, &mut c[..m * n]);
    }
}

/// C = (A·B) ⊙ f'(y): `matmul`, then the activation gradient from y (C's shape) over C.
#[allow(clippy::too_many_arguments)]
pub fn matmul_act_grad(
    c: &mut [f32],
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    act: Activation,
    y: &[f32],
    m: usize,
    n: usize,
    k: usize,
) {
    matmul(c, a, a_strides, b, b_strides, None, m, n, k, false);
    let c = &mut c[..m * n];
    let y = &y[..m * n];
    let seq = |(c, y): (&mut [f32], &[f32])| {
        for (ci, yi) in c.iter_mut().zip(y) {
            *ci = activation_grad(act, *ci, *yi);
        }
    };
    match par_chunk(m * n, PAR_MIN) {
        Some(ch) => c.par_chunks_mut(ch).zip(y.par_chunks(ch)).for_each(seq),
        None => seq((c, y)),
    }
}

fn activate_in_place(act: Activation, v: &mut [f32]) {
    let seq = |v: &mut [f32]| match act {
        Activation::Identity => {}
        Activation::Relu => v.iter_mut().for_each(|x| *x = x.max(0.0)),
        Activation::LeakyRelu(a) => v
            .iter_mut()
            .for_each(|x| *x = if *x > 0.0 { *x } else { a * *x }),
        _ => v.iter_mut().for_each(|x| *x = activation(act, *x)),
    };
    match par_chunk(v.len(), PAR_MIN) {
        Some(c) => v.par_chunks_mut(c).for_each(seq),
        None => seq(v),
    }
}

/// db[n] (+)= Σ_r dy[r, n] for dy of m rows.
pub fn bias_backward(db: &mut [f32], dy: &[f32], m: usize, n: usize, accumulate: bool) {
    // Columns [c0, c0 + db.len()) of every row; column blocks are independent.
    let columns = |c0: usize, db: &mut [f32]| {
        if !accumulate {
            db.fill(0.0);
        }
        let w = db.len();
        for row in dy[..m * n].chunks_exact(n) {
            for (d, g) in db.iter_mut().zip(&row[c0..c0 + w]) {
                *d += g;
            }
        }
    };
    match par_chunk(m * n, PAR_MIN) {
        Some(_) if n >= 64 => {
            let c = n.div_ceil(rayon::current_num_threads());
            db[..n]
                .par_chunks_mut(c)
                .enumerate()
                .for_each(|(i, d)| columns(i * c, d));
        }
        _ => columns(0, &mut db[..n]),
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

/// y[i] = f(x[i]) with `act` resolved outside the loop, so each activation gets its own
/// branch-free (vectorised) loop instead of a `match` per element.
fn map_act(act: Activation, y: &mut [f32], x: &[f32]) {
    fn each(y: &mut [f32], x: &[f32], f: impl Fn(f32) -> f32) {
        for (yi, xi) in y.iter_mut().zip(x) {
            *yi = f(*xi);
        }
    }
    match act {
        Activation::Identity => y.copy_from_slice(x),
        Activation::Relu => each(y, x, |v| v.max(0.0)),
        Activation::LeakyRelu(a) => each(y, x, |v| if v > 0.0 { v } else { a * v }),
        Activation::Tanh => each(y, x, stable_tanh),
        Activation::Sigmoid => each(y, x, stable_sigmoid),
    }
}

/// dx[i] = f'·dy[i] from y[i], `act` resolved outside the loop (see `map_act`).
fn map_act_grad(act: Activation, dx: &mut [f32], dy: &[f32], y: &[f32]) {
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

pub fn activation_forward(act: Activation, y: &mut [f32], x: &[f32], n: usize) {
    let seq = |(y, x): (&mut [f32], &[f32])| map_act(act, y, x);
    match par_chunk(n, PAR_MIN) {
        Some(c) => y[..n]
            .par_chunks_mut(c)
            .zip(x[..n].par_chunks(c))
            .for_each(seq),
        None => seq((&mut y[..n], &x[..n])),
    }
}

pub fn activation_backward(act: Activation, dx: &mut [f32], dy: &[f32], y: &[f32], n: usize) {
    let seq = |((dx, dy), y): ((&mut [f32], &[f32]), &[f32])| map_act_grad(act, dx, dy, y);
    match par_chunk(n, PAR_MIN) {
        Some(c) => dx[..n]
            .par_chunks_mut(c)
            .zip(dy[..n].par_chunks(c))
            .zip(y[..n].par_chunks(c))
            .for_each(seq),
        None => seq(((&mut dx[..n], &dy[..n]), &y[..n])),
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
    // Elements [i0, i0 + dst.len()).
    let seq = |i0: usize, dst: &mut [f32], src: &[f32]| {
        for (j, (d, s)) in dst.iter_mut().zip(src).enumerate() {
            let kept = rng::unit_open_high(rng::words(key, (i0 + j) as u64)[0]) < keep;
            *d = if kept { s / keep } else { 0.0 };
        }
    };
    match par_chunk(n, PAR_MIN_RNG) {
        Some(c) => dst[..n]
            .par_chunks_mut(c)
            .zip(src[..n].par_chunks(c))
            .enumerate()
            .for_each(|(i, (d, s))| seq(i * c, d, s)),
        None => seq(0, &mut dst[..n], &src[..n]),
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
    let seq = |((p, v), g): ((&mut [f32], &mut [f32]), &[f32])| {
        for ((p, v), g) in p.iter_mut().zip(v).zip(g) {
            *v = momentum * *v - lr * g;
            *p += *v;
        }
    };
    match par_chunk(n, PAR_MIN) {
        Some(c) => param[..n]
            .par_chunks_mut(c)
            .zip(velocity[..n].par_chunks_mut(c))
            .zip(grad[..n].par_chunks(c))
            .for_each(seq),
        None => seq(((&mut param[..n], &mut velocity[..n]), &grad[..n])),
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
    type Chunk<'a> = (((&'a mut [f32], &'a mut [f32]), &'a mut [f32]), &'a [f32]);
    let seq = |(((p, m), v), g): Chunk| {
        for (((p, m), v), &g) in p.iter_mut().zip(m).zip(v).zip(g) {
            let mi = b1 * *m + (1.0 - b1) * g;
            let vi = b2 * *v + (1.0 - b2) * g * g;
            *m = mi;
            *v = vi;
            *p -= step_size * mi / (vi.sqrt() / bc2_sqrt + eps);
        }
    };
    match par_chunk(n, PAR_MIN) {
        Some(c) => param[..n]
            .par_chunks_mut(c)
            .zip(m[..n].par_chunks_mut(c))
            .zip(v[..n].par_chunks_mut(c))
            .zip(grad[..n].par_chunks(c))
            .for_each(seq),
        None => seq((((&mut param[..n], &mut m[..n]), &mut v[..n]), &grad[..n])),
    }
}

pub fn ema_update(avg: &mut [f32], param: &[f32], n: usize, decay: f32) {
    for (a, p) in avg[..n].iter_mut().zip(&param[..n]) {
        *a = decay * *a + (1.0 - decay) * p;
    }
}

pub fn rng_uniform(out: &mut [f32], n: usize, lo: f32, hi: f32, key: RngKey) {
    let seq = |i0: usize, out: &mut [f32]| {
        for (j, o) in out.iter_mut().enumerate() {
            *o = rng::uniform(key, (i0 + j) as u64, lo, hi);
        }
    };
    match par_chunk(n, PAR_MIN_RNG) {
        Some(c) => out[..n]
            .par_chunks_mut(c)
            .enumerate()
            .for_each(|(i, o)| seq(i * c, o)),
        None => seq(0, &mut out[..n]),
    }
}

pub fn rng_normal(out: &mut [f32], n: usize, key: RngKey) {
    let seq = |i0: usize, out: &mut [f32]| {
        for (j, o) in out.iter_mut().enumerate() {
            *o = rng::normal(key, (i0 + j) as u64);
        }
    };
    match par_chunk(n, PAR_MIN_RNG) {
        Some(c) => out[..n]
            .par_chunks_mut(c)
            .enumerate()
            .for_each(|(i, o)| seq(i * c, o)),
        None => seq(0, &mut out[..n]),
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
    let one_row = |(r, out): (usize, &mut [f32])| {
        let row = idx[r] as usize;
        let chunk = chunks[row / chunk_rows];
        let start = (row % chunk_rows) * row_len;
        for (o, &b) in out.iter_mut().zip(&chunk[start..start + row_len]) {
            *o = b as f32 * scale + offset;
        }
    };
    let out = &mut out[..rows * row_len];
    match par_chunk(rows * row_len, PAR_MIN) {
        Some(_) => out.par_chunks_mut(row_len).enumerate().for_each(one_row),
        None => out.chunks_mut(row_len).enumerate().for_each(one_row),
    }
}

pub fn gather_rows_f32(out: &mut [f32], src: &[f32], idx: &[u32], rows: usize, row_len: usize) {
    for r in 0..rows {
        let row = idx[r] as usize;
        out[r * row_len..(r + 1) * row_len]
            .copy_from_slice(&src[row * row_len..(row + 1) * row_len]);
    }
}

/// out[r] = Σ_c x[r, c]² for x [rows, cols].
pub fn row_sum_squares(out: &mut [f32], x: &[f32], rows: usize, cols: usize) {
    for (r, o) in out[..rows].iter_mut().enumerate() {
        *o = x[r * cols..(r + 1) * cols].iter().map(|v| v * v).sum();
    }
}

/// (1/(2σ²), log n + (dim/2)·log(2πσ²)): the constants of `parzen_log_density`, computed in f64
/// once on the host for both backends.
pub fn parzen_constants(n: usize, dim: usize, sigma: f32) -> (f32, f32) {
    let var = (sigma as f64).powi(2);
    let log_norm = (n as f64).ln() + 0.5 * dim as f64 * (std::f64::consts::TAU * var).ln();
    ((0.5 / var) as f32, log_norm as f32)
}

/// out[r] = log (1/n) Σ_j N(x_r; μ_j, σ²·I_dim) for r < rows: a Gaussian Parzen window's log
/// density at x_r, from dot [rows, n] (dot[r, j] = x_r·μ_j), x_sq[r] = ‖x_r‖² and
/// mu_sq[j] = ‖μ_j‖². The squared distance ‖x_r‖² + ‖μ_j‖² − 2·x_r·μ_j is clamped at 0.
#[allow(clippy::too_many_arguments)]
pub fn parzen_log_density(
    out: &mut [f32],
    dot: &[f32],
    x_sq: &[f32],
    mu_sq: &[f32],
    rows: usize,
    n: usize,
    dim: usize,
    sigma: f32,
) {
    let (inv_two_var, log_norm) = parzen_constants(n, dim, sigma);
    for r in 0..rows {
        let row = &dot[r * n..(r + 1) * n];
        let v = |j: usize| -(x_sq[r] + mu_sq[j] - 2.0 * row[j]).max(0.0) * inv_two_var;
        let m = (0..n).map(v).fold(f32::NEG_INFINITY, f32::max);
        let s: f32 = (0..n).map(|j| (v(j) - m).exp()).sum();
        out[r] = m + s.ln() - log_norm;
    }
}

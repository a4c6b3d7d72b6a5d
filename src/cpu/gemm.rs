//! The CPU path's GEMM: C = A·B (+ bias) (+ C) through strided views, dispatched to the `gemm`
//! crate (AVX-512 kernels with `x86-v4`) or `matrixmultiply`. This is the fast twin of the matmul
//! kernel; `kernels::matmul`'s reference is the plain triple loop it is tested against.

use std::sync::OnceLock;

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
// reason: BLAS's sgemm signature over host slices (the CPU twins of matmul and batched_matmul
// call it); `kernels::matmul::MatmulShape` names the shape at the launchers.
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
// reason: the innermost unsafe GEMM path, taking `matmul`'s own arguments as they come.
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

//! Blocks of dot products between feature rows, through the `gemm` crate (AVX-512 kernels).
//!
//! gemm is fastest when its left operand is column-major, so the reference rows are stored
//! transposed once ([`ColMajor`]) and each block of query rows is read in place: a row-major
//! `[nq, d]` block is already the column-major `d × nq` matrix Qᵀ.

/// Reference rows stored column-major: `data[k * n + j]` is feature `k` of row `j`.
pub(crate) struct ColMajor {
    data: Vec<f32>,
    pub n: usize,
    pub d: usize,
}

impl ColMajor {
    /// Transposes row-major `rows` (`[n, d]`).
    pub fn from_rows(rows: &[f32], d: usize) -> Self {
        let n = rows.len() / d;
        let mut data = vec![0.0; n * d];
        for (j, row) in rows.chunks_exact(d).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                data[k * n + j] = v;
            }
        }
        Self { data, n, d }
    }
}

/// `out[i * (r.n − first) + j] = q_i · r_{first + j}`: the dot products of query rows `q`
/// (row-major `[nq, d]`) with reference rows `first..r.n`; `out` is row-major
/// `[nq, r.n − first]`.
pub(crate) fn dots(q: &[f32], r: &ColMajor, first: usize, out: &mut [f32], par: gemm::Parallelism) {
    let d = r.d;
    let nq = q.len() / d;
    assert!(first <= r.n, "reference rows start past the end");
    let nr = r.n - first;
    assert_eq!(q.len(), nq * d, "query rows are ragged");
    assert_eq!(out.len(), nq * nr, "output is not [nq, n_ref - first]");
    if nq == 0 || nr == 0 {
        return;
    }
    // out, read column-major, is the nr × nq matrix R[first..]·Qᵀ.
    // SAFETY: R[first..] is nr × d starting at column-major offset `first` with column stride
    // r.n, so its last element is data[(d − 1)·r.n + r.n − 1]; Qᵀ is d × nq with column stride
    // d; out is nr × nq with column stride nr: every access stays inside the three slices.
    unsafe {
        gemm::gemm(
            nr,
            nq,
            d,
            out.as_mut_ptr(),
            nr as isize,
            1,
            false,
            r.data.as_ptr().add(first),
            r.n as isize,
            1,
            q.as_ptr(),
            d as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// `XᵀX` (`[d, d]`, symmetric) of a row-major `[n, d]` matrix, in f64 on the rayon pool.
pub(crate) fn gram_columns_f64(x: &[f64], d: usize) -> Vec<f64> {
    let n = x.len() / d;
    assert_eq!(x.len(), n * d, "rows are ragged");
    let mut out = vec![0.0; d * d];
    if n == 0 {
        return out;
    }
    let threads = rayon::current_num_threads();
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // Xᵀ (d × n) is the row-major X read column-major (column stride d); X (n × d) has row
    // stride d and column stride 1.
    // SAFETY: both views cover exactly x's n·d values and out's d·d.
    unsafe {
        gemm::gemm(
            d,
            d,
            n,
            out.as_mut_ptr(),
            d as isize,
            1,
            false,
            x.as_ptr(),
            d as isize,
            1,
            x.as_ptr(),
            1,
            d as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
    out
}

/// Squared Euclidean norm of each row of a row-major `[n, d]` matrix.
pub(crate) fn row_norms_sq(x: &[f32], d: usize) -> Vec<f32> {
    x.chunks_exact(d)
        .map(|r| r.iter().map(|&v| v as f64 * v as f64).sum::<f64>() as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_match_naive_on_ragged_shapes() {
        let (nq, nr, d) = (7, 13, 5);
        let q: Vec<f32> = (0..nq * d)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3)
            .collect();
        let r: Vec<f32> = (0..nr * d)
            .map(|i| ((i * 5 % 13) as f32 - 6.0) * 0.2)
            .collect();
        let cols = ColMajor::from_rows(&r, d);
        for first in [0, 4, nr] {
            let m = nr - first;
            let mut out = vec![f32::NAN; nq * m];
            dots(&q, &cols, first, &mut out, gemm::Parallelism::None);
            for i in 0..nq {
                for j in 0..m {
                    let want: f32 = (0..d).map(|k| q[i * d + k] * r[(first + j) * d + k]).sum();
                    let got = out[i * m + j];
                    assert!((got - want).abs() < 1e-5, "({i},{j}): {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn gram_columns_matches_naive() {
        let (n, d) = (9, 4);
        let x: Vec<f64> = (0..n * d)
            .map(|i| ((i * 3 % 7) as f64 - 3.0) * 0.5)
            .collect();
        let g = gram_columns_f64(&x, d);
        for a in 0..d {
            for b in 0..d {
                let want: f64 = (0..n).map(|i| x[i * d + a] * x[i * d + b]).sum();
                assert!((g[a * d + b] - want).abs() < 1e-12, "({a},{b})");
            }
        }
    }
}

//! Spectral normalization (Miyato et al. 2018) of one weight, as PyTorch's `spectral_norm`: the
//! layer computes with W_SN = W / σ(W), W viewed as a matrix [rows, cols] = [out, in·…] (a
//! Linear's [out, in]; a convolution's [out, in·kh·kw]; a transposed convolution's [in, out, k, k]
//! over dimension 1, [out, in·k·k], as PyTorch's `spectral_norm` views it), σ estimated as uᵀWv
//! from persistent vectors u [rows] and v [cols]. The weight may be stored in any layout
//! [outer, rows, inner] with cols = outer·inner: row-major (inner = cols), transposed
//! (inner = 1), or a ConvTranspose2d's (outer = in, inner = k·k).
//!
//! - `power_iteration` (after every optimizer step of the layer, and 15 times when the weights
//!   are first set, as PyTorch's parametrization does): v = normalize(Wᵀu), u = normalize(Wv).
//!   No gradient flows through it.
//! - `forward`: σ = uᵀ(Wv) from the stored u and v, then W_SN = W/σ. σ is a function of the
//!   weights and the module state alone, so a run resumed from a checkpoint (which holds u and v)
//!   computes the same σ, and a PyTorch `spectral_norm` module in eval mode loaded with the same
//!   weight_orig, weight_u and weight_v computes the same W_SN.
//! - `backward`: with G = ∂L/∂W_SN from the layer's ordinary weight-gradient product (into
//!   `grad_scratch`), ∂L/∂W = (G − ⟨G, W_SN⟩·u vᵀ)/σ — the gradient through σ with u and v held
//!   constant. Dropping the second term (σ from a detached W) is a known, silent bug.
//!
//! The layer owning a weight calls these; its checkpoint names follow PyTorch: the trainable
//! weight is `weight_orig`, the state `weight_u` [rows] and `weight_v` [cols].

use super::StateSpec;
use crate::backend::{Backend, MatView, Tensor, WriteMode};
use crate::kernels::batched_matmul::{Batched, BmmShape, BmmStore, batched_matmul};
use crate::kernels::matmul::{MatmulShape, matmul};
use crate::kernels::spectral_norm::{
    SingularPair, SnMatrix, sn_dot, sn_grad, sn_normalize, sn_scale,
};
use anyhow::Result;

/// Power iterations when a weight is first set (PyTorch's `parametrizations.spectral_norm`
/// runs 15 at registration); one per optimizer step after that.
pub const WARM_UP_ITERATIONS: usize = 15;

/// The buffers of one spectrally normalised weight.
#[derive(Debug)]
pub struct SpectralNorm {
    /// The weight as a matrix [rows, cols]: rows = out.
    pub rows: usize,
    pub cols: usize,
    /// Stored as [cols / inner, rows, inner]: inner = cols is row-major [rows, cols], inner = 1
    /// is [cols, rows] (a Linear's weight kept [in, out]).
    pub inner: usize,
    bufs: Option<Buffers>,
}

#[derive(Clone, Copy, Debug)]
struct Buffers {
    /// W_SN, the weight the layer computes with.
    w_sn: Tensor,
    /// G = ∂L/∂W_SN, filled by the layer before `backward`.
    g_sn: Tensor,
    /// Wv or Wᵀu, [max(rows, cols)].
    tmp: Tensor,
    /// [σ, ⟨G, W_SN⟩].
    scalars: Tensor,
}

impl SpectralNorm {
    /// A [rows, cols] matrix stored [cols / inner, rows, inner].
    pub fn new(rows: usize, cols: usize, inner: usize) -> Self {
        assert!(
            inner > 0 && cols.is_multiple_of(inner),
            "spectral norm: inner {inner} does not divide cols {cols}"
        );
        SpectralNorm {
            rows,
            cols,
            inner,
            bufs: None,
        }
    }

    /// A weight stored row-major [rows, cols].
    pub fn row_major(rows: usize, cols: usize) -> Self {
        Self::new(rows, cols, cols)
    }

    /// A [rows, cols] weight stored transposed, [cols, rows].
    pub fn transposed(rows: usize, cols: usize) -> Self {
        Self::new(rows, cols, 1)
    }

    fn outer(&self) -> usize {
        self.cols / self.inner
    }

    /// The persistent vectors, as PyTorch names them. Both start as unit vectors of equal
    /// entries; the warm-up iterations turn u towards the top singular vector.
    pub fn state(&self) -> Vec<StateSpec> {
        vec![
            StateSpec {
                name: "weight_u",
                shape: vec![self.rows],
                init: 1.0 / (self.rows as f32).sqrt(),
                integer: false,
            },
            StateSpec {
                name: "weight_v",
                shape: vec![self.cols],
                init: 1.0 / (self.cols as f32).sqrt(),
                integer: false,
            },
        ]
    }

    pub fn alloc(&mut self, be: &mut dyn Backend, label: &str) -> Result<()> {
        let n = self.rows * self.cols;
        self.bufs = Some(Buffers {
            w_sn: be.alloc(n, &format!("{label} W/σ"))?,
            g_sn: be.alloc(n, &format!("{label} ∂L/∂(W/σ)"))?,
            tmp: be.alloc(
                self.rows.max(self.cols),
                &format!("{label} power iteration"),
            )?,
            scalars: be.alloc(2, &format!("{label} σ"))?,
        });
        Ok(())
    }

    fn bufs(&self) -> Buffers {
        self.bufs
            .expect("spectral norm buffers are allocated with the layer")
    }

    /// tmp[..rows] = W·v: one product when W is row-major or transposed; for the general
    /// layout, Σ_b W[:, :, b]·v[b::inner], one accumulating product per b < inner.
    fn w_times_v(&self, be: &mut dyn Backend, w: Tensor, v: Tensor) -> Tensor {
        let (rows, cols, inner) = (self.rows, self.cols, self.inner);
        let t = self.bufs().tmp.slice(0, rows);
        let col = |x: Tensor, rs| MatView::new(x, rs, 1);
        let wv = MatmulShape {
            m: rows,
            n: 1,
            k: cols,
        };
        if inner == cols {
            let w_rows = MatView::new(w, cols, 1);
            matmul(be, t, w_rows, col(v, 1), wv, WriteMode::Overwrite);
        } else if inner == 1 {
            let w_columns = MatView::new(w, 1, rows);
            matmul(be, t, w_columns, col(v, 1), wv, WriteMode::Overwrite);
        } else {
            let n = rows * cols;
            for b in 0..inner {
                let wb = MatView::new(w.slice(b, n - b), inner, rows * inner);
                let vb = col(v.slice(b, cols - b), inner);
                let store = if b > 0 {
                    WriteMode::Accumulate
                } else {
                    WriteMode::Overwrite
                };
                let shape = MatmulShape {
                    m: rows,
                    n: 1,
                    k: self.outer(),
                };
                matmul(be, t, wb, vb, shape, store);
            }
        }
        t
    }

    /// tmp[..cols] = Wᵀ·u: one product when W is row-major or transposed; for the general
    /// layout one batched product over the outer index, item a = W[a]ᵀ·u ([inner, rows]·[rows]).
    fn w_transposed_times_u(&self, be: &mut dyn Backend, w: Tensor, u: Tensor) -> Tensor {
        let (rows, cols, inner) = (self.rows, self.cols, self.inner);
        let s = self.bufs().tmp.slice(0, cols);
        let u_col = MatView::new(u, 1, 1);
        let wtu = MatmulShape {
            m: cols,
            n: 1,
            k: rows,
        };
        if inner == cols {
            let w_rows_transposed = MatView::new(w, 1, cols);
            matmul(be, s, w_rows_transposed, u_col, wtu, WriteMode::Overwrite);
        } else if inner == 1 {
            let w_columns_transposed = MatView::new(w, rows, 1);
            matmul(
                be,
                s,
                w_columns_transposed,
                u_col,
                wtu,
                WriteMode::Overwrite,
            );
        } else {
            batched_matmul(
                be,
                s,
                Batched::new(w, 1, inner, rows * inner),
                Batched::new(u, 1, 1, 0),
                BmmStore::default(),
                BmmShape {
                    batch: self.outer(),
                    m: inner,
                    n: 1,
                    k: rows,
                },
            );
        }
        s
    }

    /// After an update of W: one power iteration, or `WARM_UP_ITERATIONS` when the weights are
    /// first set.
    pub fn params_changed(&self, be: &mut dyn Backend, w: Tensor, state: &[Tensor], first: bool) {
        let iterations = if first { WARM_UP_ITERATIONS } else { 1 };
        self.power_iteration(be, w, state, iterations);
    }

    /// `iterations` steps of v = normalize(Wᵀu), u = normalize(Wv) on the state [u, v].
    pub fn power_iteration(
        &self,
        be: &mut dyn Backend,
        w: Tensor,
        state: &[Tensor],
        iterations: usize,
    ) {
        let (u, v) = (state[0], state[1]);
        for _ in 0..iterations {
            let s = self.w_transposed_times_u(be, w, u);
            sn_normalize(be, v, s, self.cols);
            let t = self.w_times_v(be, w, v);
            sn_normalize(be, u, t, self.rows);
        }
    }

    /// σ = uᵀ(Wv) from the state, and W_SN = W/σ; returns W_SN.
    pub fn forward(&self, be: &mut dyn Backend, w: Tensor, state: &[Tensor]) -> Tensor {
        let b = self.bufs();
        let t = self.w_times_v(be, w, state[1]);
        sn_dot(be, b.scalars.slice(0, 1), state[0], t, self.rows);
        let n = self.rows * self.cols;
        sn_scale(be, b.w_sn, w, b.scalars, n);
        b.w_sn
    }

    /// W/σ on the host, σ = uᵀWv from the stored u and v (`state`), as `forward` computes it:
    /// the weight an exported layer computes with.
    pub fn fold(&self, w: &[f32], state: &[&[f32]]) -> Vec<f32> {
        let (rows, inner) = (self.rows, self.inner);
        let (u, v) = (state[0], state[1]);
        let mut sigma = 0.0f64;
        for o in 0..self.outer() {
            for (r, &ur) in u.iter().enumerate() {
                for i in 0..inner {
                    let wv = w[(o * rows + r) * inner + i] as f64 * v[o * inner + i] as f64;
                    sigma += ur as f64 * wv;
                }
            }
        }
        let sigma = sigma as f32;
        w.iter().map(|x| x / sigma).collect()
    }

    /// W_SN of the last forward.
    pub fn weight(&self) -> Tensor {
        self.bufs().w_sn
    }

    /// Where the layer writes G = ∂L/∂W_SN before `backward`.
    pub fn grad_scratch(&self) -> Tensor {
        self.bufs().g_sn
    }

    /// [σ, ⟨G, W_SN⟩] of the last forward and backward.
    pub fn scalars(&self) -> Tensor {
        self.bufs().scalars
    }

    /// dw (+)= (G − ⟨G, W_SN⟩·u vᵀ)/σ with G in `grad_scratch`.
    pub fn backward(&self, be: &mut dyn Backend, dw: Tensor, state: &[Tensor], store: WriteMode) {
        let b = self.bufs();
        let n = self.rows * self.cols;
        sn_dot(be, b.scalars.slice(1, 1), b.g_sn, b.w_sn, n);
        let pair = SingularPair {
            u: state[0],
            v: state[1],
            scalars: b.scalars,
        };
        let matrix = SnMatrix {
            rows: self.rows,
            cols: self.cols,
            inner: self.inner,
        };
        sn_grad(be, (dw, store), b.g_sn, pair, matrix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{self, RngKey, stream};

    /// A ConvTranspose2d's [in, out, k, k] weight: the power iteration converges to the top
    /// singular pair of PyTorch's view over dimension 1, [out, in·k·k], with u [out] and
    /// v [in·k·k] in that view's order — the layout `weight_u` and `weight_v` are checkpointed in.
    #[test]
    fn a_transposed_convolution_is_normalised_over_dimension_1_as_pytorch_views_it() {
        let (inp, out, kk) = (6, 4, 9);
        let (rows, cols) = (out, inp * kk);
        let key = RngKey::new(3, stream::TEST, 0);
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| rng::normal(key, i as u64))
            .collect();
        // weight.permute(1, 0, 2, 3).reshape(out, -1)
        let view = nalgebra::DMatrix::<f64>::from_fn(rows, cols, |o, c| {
            w[((c / kk) * out + o) * kk + c % kk] as f64
        });
        let svd = view.clone().svd(true, true);
        let top = (0..rows)
            .max_by(|&a, &b| svd.singular_values[a].total_cmp(&svd.singular_values[b]))
            .unwrap();
        let (u_svd, v_svd) = (
            svd.u.as_ref().unwrap().column(top).clone_owned(),
            svd.v_t.as_ref().unwrap().row(top).transpose(),
        );

        let mut be = crate::CpuBackend::new();
        let mut sn = SpectralNorm::new(rows, cols, kk);
        sn.alloc(&mut be, "conv-t").unwrap();
        let wt = be.upload(&w, "W").unwrap();
        let state: Vec<Tensor> = sn
            .state()
            .iter()
            .map(|s| be.upload(&vec![s.init; s.shape[0]], s.name).unwrap())
            .collect();
        sn.power_iteration(&mut be, wt, &state, 300);
        sn.forward(&mut be, wt, &state);
        let sigma = be.read(sn.scalars()).unwrap()[0] as f64;
        let (u, v) = (be.read(state[0]).unwrap(), be.read(state[1]).unwrap());
        assert!(
            (sigma - svd.singular_values[top]).abs() < 1e-4 * sigma,
            "σ {sigma} vs {}",
            svd.singular_values[top]
        );
        let cos = |a: &[f32], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(&x, &y)| x as f64 * y)
                .sum::<f64>()
                .abs()
        };
        assert!(
            cos(&u, u_svd.as_slice()) > 0.9999,
            "u is not the top left vector"
        );
        assert!(
            cos(&v, v_svd.as_slice()) > 0.9999,
            "v is not in PyTorch's order"
        );
        // W/σ of the forward, elementwise in the stored layout.
        let w_sn = be.read(sn.weight()).unwrap();
        for (a, b) in w_sn.iter().zip(&w) {
            assert!((*a as f64 - *b as f64 / sigma).abs() < 1e-6);
        }
    }
}

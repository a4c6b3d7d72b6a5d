//! Spectral normalization (Miyato et al. 2018) of one weight, as PyTorch's `spectral_norm`: the
//! layer computes with W_SN = W / σ(W), W viewed as a matrix [rows, cols] = [out, in·…] (a
//! Linear's [out, in]; a convolution's [out, in·kh·kw]), σ estimated as uᵀWv from persistent
//! vectors u [rows] and v [cols].
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
use crate::backend::{Backend, MatView, Tensor};
use crate::kernels::matmul::matmul;
use crate::kernels::spectral_norm::{sn_dot, sn_grad, sn_normalize, sn_scale};
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
    /// Stored as [cols, rows] (a Linear's weight kept [in, out]) rather than [rows, cols].
    pub transposed: bool,
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
    pub fn new(rows: usize, cols: usize, transposed: bool) -> Self {
        SpectralNorm {
            rows,
            cols,
            transposed,
            bufs: None,
        }
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

    /// W as a [rows, cols] matrix, and its transpose.
    fn matrix(&self, w: Tensor) -> (MatView, MatView) {
        let (rs, cs) = if self.transposed {
            (1, self.rows)
        } else {
            (self.cols, 1)
        };
        (MatView::new(w, rs, cs), MatView::new(w, cs, rs))
    }

    /// tmp[..rows] = W·v.
    fn w_times_v(&self, be: &mut dyn Backend, w: Tensor, v: Tensor) -> Tensor {
        let t = self.bufs().tmp.slice(0, self.rows);
        let (wm, _) = self.matrix(w);
        let col = MatView::new(v, 1, 1);
        matmul(be, t, wm, col, None, self.rows, 1, self.cols, false);
        t
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
        let (_, wt) = self.matrix(w);
        for _ in 0..iterations {
            let s = self.bufs().tmp.slice(0, self.cols);
            matmul(
                be,
                s,
                wt,
                MatView::new(u, 1, 1),
                None,
                self.cols,
                1,
                self.rows,
                false,
            );
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
    pub fn backward(&self, be: &mut dyn Backend, dw: Tensor, state: &[Tensor], accumulate: bool) {
        let b = self.bufs();
        let n = self.rows * self.cols;
        sn_dot(be, b.scalars.slice(1, 1), b.g_sn, b.w_sn, n);
        sn_grad(
            be,
            dw,
            b.g_sn,
            state[0],
            state[1],
            b.scalars,
            self.rows,
            self.cols,
            self.transposed,
            accumulate,
        );
    }
}

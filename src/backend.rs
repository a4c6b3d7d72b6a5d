//! The interface both backends implement: buffers, and one method per kernel with the same name
//! and arguments as its WGSL entry point and its CPU twin in `cpu::kernels`. Model and training
//! code is written once against this trait.

use crate::rng::RngKey;
use anyhow::Result;

/// A view of `len` 4-byte words starting `offset` words into buffer `buf` of a backend.
/// Kernels take element offsets, so views need no binding alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tensor {
    pub buf: u32,
    pub offset: u32,
    pub len: u32,
}

impl Tensor {
    pub fn len(self) -> usize {
        self.len as usize
    }

    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// Words `start .. start + len` of this view.
    pub fn slice(self, start: usize, len: usize) -> Tensor {
        assert!(
            start + len <= self.len(),
            "slice {start}..{} out of a view of {} words",
            start + len,
            self.len
        );
        Tensor {
            buf: self.buf,
            offset: self.offset + start as u32,
            len: len as u32,
        }
    }
}

/// A matrix read through strides: element (r, c) is word `r·rs + c·cs` of `t`.
#[derive(Clone, Copy, Debug)]
pub struct MatView {
    pub t: Tensor,
    pub rs: usize,
    pub cs: usize,
}

impl MatView {
    pub fn new(t: Tensor, rs: usize, cs: usize) -> Self {
        Self { t, rs, cs }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    LeakyRelu(f32),
    Tanh,
    Sigmoid,
}

impl Activation {
    /// The `kind` code of `shaders/activation.wgsl`.
    pub fn code(self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Relu => 1,
            Activation::LeakyRelu(_) => 2,
            Activation::Tanh => 3,
            Activation::Sigmoid => 4,
        }
    }

    pub fn alpha(self) -> f32 {
        match self {
            Activation::LeakyRelu(a) => a,
            _ => 0.0,
        }
    }
}

/// Which GAN loss `gan_loss` computes (see `shaders/gan_loss.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GanLossKind {
    /// −[log D(x) + log(1 − D(G(z)))] over n_real real then n_fake fake logits.
    Discriminator,
    /// log(1 − D(G(z))): the paper's minimax G loss, which saturates when D wins.
    GeneratorMinimax,
    /// −log D(G(z)): the non-saturating G loss the paper recommends in practice.
    GeneratorNonSaturating,
}

impl GanLossKind {
    pub fn code(self) -> u32 {
        match self {
            GanLossKind::Discriminator => 0,
            GanLossKind::GeneratorMinimax => 1,
            GanLossKind::GeneratorNonSaturating => 2,
        }
    }
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

impl AdamStep {
    /// (lr / (1 − β1^t), sqrt(1 − β2^t)), computed in f64 on the host for both backends.
    pub fn corrections(&self) -> (f32, f32) {
        let t = self.t.max(1) as i32;
        let bc1 = 1.0 - (self.beta1 as f64).powi(t);
        let bc2 = 1.0 - (self.beta2 as f64).powi(t);
        ((self.lr as f64 / bc1) as f32, bc2.sqrt() as f32)
    }
}

/// 8-bit rows resident on a backend, packed four to a word, split into chunks of `chunk_rows`
/// rows so no chunk exceeds the adapter's largest storage binding.
#[derive(Clone, Debug)]
pub struct DeviceRows {
    pub chunks: Vec<Tensor>,
    pub chunk_rows: usize,
    pub rows: usize,
    pub row_len: usize,
}

/// Most chunks a u8 gather reads (bindings src0..src3 of `shaders/gather.wgsl`).
pub const MAX_ROW_CHUNKS: usize = 4;

/// Work done, for benchmarks and for checking that a step reads nothing back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub dispatches: u64,
    pub submits: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

pub trait Backend {
    /// A human-readable name: the adapter, or "cpu".
    fn name(&self) -> String;

    /// A zeroed buffer of `len` words.
    fn alloc(&mut self, len: usize, label: &str) -> Result<Tensor>;
    /// Largest buffer this backend can bind, in words.
    fn max_binding_words(&self) -> usize;
    fn write(&mut self, t: Tensor, data: &[f32]);
    fn write_u32(&mut self, t: Tensor, data: &[u32]);
    /// Runs everything recorded so far and returns the view's contents.
    fn read(&mut self, t: Tensor) -> Result<Vec<f32>>;
    fn read_u32(&mut self, t: Tensor) -> Result<Vec<u32>>;
    /// Runs everything recorded so far (one submit on the GPU); returns without waiting.
    fn flush(&mut self);
    fn counters(&self) -> Counters;

    /// C[m,n] = act(A[m,k]·B[k,n] (+ bias[n]) (+ C if `accumulate`)): the product with the
    /// bias and an activation applied as it is stored, saving a pass over C.
    #[allow(clippy::too_many_arguments)]
    fn matmul_act(
        &mut self,
        c: Tensor,
        a: MatView,
        b: MatView,
        bias: Option<Tensor>,
        act: Activation,
        m: usize,
        n: usize,
        k: usize,
        accumulate: bool,
    );
    /// C[m,n] = (A[m,k]·B[k,n]) ⊙ f'(y): the product times the derivative of `act`, written in
    /// terms of that activation's output `y` ([m,n] like C), applied as C is stored.
    #[allow(clippy::too_many_arguments)]
    fn matmul_act_grad(
        &mut self,
        c: Tensor,
        a: MatView,
        b: MatView,
        act: Activation,
        y: Tensor,
        m: usize,
        n: usize,
        k: usize,
    );
    /// C[m,n] = A[m,k]·B[k,n] (+ bias[n]) (+ C if `accumulate`).
    #[allow(clippy::too_many_arguments)]
    fn matmul(
        &mut self,
        c: Tensor,
        a: MatView,
        b: MatView,
        bias: Option<Tensor>,
        m: usize,
        n: usize,
        k: usize,
        accumulate: bool,
    ) {
        self.matmul_act(c, a, b, bias, Activation::Identity, m, n, k, accumulate);
    }
    /// db[n] (+)= Σ_rows dy[m, n].
    fn bias_backward(&mut self, db: Tensor, dy: Tensor, m: usize, n: usize, accumulate: bool);
    /// y[i] = f(x[i]) for i < n.
    fn activation_forward(&mut self, act: Activation, y: Tensor, x: Tensor, n: usize);
    /// dx[i] = f'(x[i])·dy[i], with f' computed from the forward output y.
    fn activation_backward(&mut self, act: Activation, dx: Tensor, dy: Tensor, y: Tensor, n: usize);
    /// y[r,u] = max_j x[r, u·pieces + j]; idx[r,u] = the winning j (a u32 view).
    fn maxout_forward(
        &mut self,
        y: Tensor,
        idx: Tensor,
        x: Tensor,
        rows: usize,
        units: usize,
        pieces: usize,
    );
    /// dx[r, u·pieces + j] = dy[r,u] if j won, else 0.
    fn maxout_backward(
        &mut self,
        dx: Tensor,
        dy: Tensor,
        idx: Tensor,
        rows: usize,
        units: usize,
        pieces: usize,
    );
    /// y = x·mask/keep, mask[i] = uniform(key, i) < keep.
    fn dropout_forward(&mut self, y: Tensor, x: Tensor, n: usize, keep: f32, key: RngKey);
    /// dx = dy·mask/keep with the forward's mask (same key).
    fn dropout_backward(&mut self, dx: Tensor, dy: Tensor, n: usize, keep: f32, key: RngKey);
    /// Loss gradient w.r.t. the logits into `grad`, and (loss, mean D(x), mean D(G(z))) into
    /// the 3-word `stats` view (added to it when `accumulate`).
    #[allow(clippy::too_many_arguments)]
    fn gan_loss(
        &mut self,
        kind: GanLossKind,
        grad: Tensor,
        logits: Tensor,
        n_real: usize,
        n_fake: usize,
        stats: Tensor,
        accumulate: bool,
    );
    /// velocity ← momentum·velocity − lr·grad; param ← param + velocity.
    fn sgd_momentum(
        &mut self,
        param: Tensor,
        grad: Tensor,
        velocity: Tensor,
        n: usize,
        lr: f32,
        momentum: f32,
    );
    /// One Adam step with bias correction over n parameters.
    fn adam(
        &mut self,
        param: Tensor,
        grad: Tensor,
        m: Tensor,
        v: Tensor,
        n: usize,
        step: &AdamStep,
    );
    /// out[i] = U(lo, hi) from word 0 of element i's block.
    fn rng_uniform(&mut self, out: Tensor, n: usize, lo: f32, hi: f32, key: RngKey);
    /// out[i] = N(0, 1) by Box–Muller.
    fn rng_normal(&mut self, out: Tensor, n: usize, key: RngKey);
    /// out[i] = uniform integer in [0, range) (a u32 view).
    fn rng_index(&mut self, out: Tensor, n: usize, range: u32, key: RngKey);
    /// out[i] = word i % 4 of block i / 4 (a u32 view): the generator's raw output.
    fn rng_bits(&mut self, out: Tensor, n: usize, key: RngKey);
    /// out[r, :] = src row idx[r] as bytes · scale + offset, for r < rows.
    fn gather_rows_u8(
        &mut self,
        out: Tensor,
        src: &DeviceRows,
        idx: Tensor,
        rows: usize,
        scale: f32,
        offset: f32,
    );
    /// out[r, :] = src[idx[r], :] for f32 rows of `row_len`.
    fn gather_rows_f32(
        &mut self,
        out: Tensor,
        src: Tensor,
        idx: Tensor,
        rows: usize,
        row_len: usize,
    );

    /// avg[i] ← decay·avg[i] + (1 − decay)·param[i] for i < n.
    fn ema_update(&mut self, avg: Tensor, param: Tensor, n: usize, decay: f32);

    /// Y[m,n] = X[m,k]·W[k,n] + b[n].
    #[allow(clippy::too_many_arguments)]
    fn matmul_forward(
        &mut self,
        y: Tensor,
        x: Tensor,
        w: Tensor,
        b: Option<Tensor>,
        m: usize,
        k: usize,
        n: usize,
    ) {
        let (a, bm) = (MatView::new(x, k, 1), MatView::new(w, n, 1));
        self.matmul(y, a, bm, b, m, n, k, false);
    }

    /// Y[m,n] = act(X[m,k]·W[k,n] + b[n]): a linear layer and its activation in one kernel.
    #[allow(clippy::too_many_arguments)]
    fn matmul_forward_act(
        &mut self,
        y: Tensor,
        x: Tensor,
        w: Tensor,
        b: Option<Tensor>,
        act: Activation,
        m: usize,
        k: usize,
        n: usize,
    ) {
        let (a, bm) = (MatView::new(x, k, 1), MatView::new(w, n, 1));
        self.matmul_act(y, a, bm, b, act, m, n, k, false);
    }

    /// dX[m,k] = dY[m,n]·W[k,n]ᵀ.
    #[allow(clippy::too_many_arguments)]
    fn matmul_backward_input(
        &mut self,
        dx: Tensor,
        dy: Tensor,
        w: Tensor,
        m: usize,
        k: usize,
        n: usize,
    ) {
        let (a, b) = (MatView::new(dy, n, 1), MatView::new(w, 1, n));
        self.matmul(dx, a, b, None, m, k, n, false);
    }

    /// dX[m,k] = (dY[m,n]·W[k,n]ᵀ) ⊙ f'(y): backward through a Linear and the activation
    /// below it, whose output y ([m,k]) is this Linear's input, in one kernel.
    #[allow(clippy::too_many_arguments)]
    fn matmul_backward_input_act(
        &mut self,
        dx: Tensor,
        dy: Tensor,
        w: Tensor,
        act: Activation,
        y: Tensor,
        m: usize,
        k: usize,
        n: usize,
    ) {
        let (a, b) = (MatView::new(dy, n, 1), MatView::new(w, 1, n));
        self.matmul_act_grad(dx, a, b, act, y, m, k, n);
    }

    /// dW[k,n] (+)= X[m,k]ᵀ·dY[m,n].
    #[allow(clippy::too_many_arguments)]
    fn matmul_backward_weights(
        &mut self,
        dw: Tensor,
        x: Tensor,
        dy: Tensor,
        m: usize,
        k: usize,
        n: usize,
        accumulate: bool,
    ) {
        let (a, b) = (MatView::new(x, 1, k), MatView::new(dy, n, 1));
        self.matmul(dw, a, b, None, k, n, m, accumulate);
    }

    /// Uploads `rows` rows of `row_len` bytes, chunked to fit the largest binding.
    fn upload_rows_u8(
        &mut self,
        data: &[u8],
        rows: usize,
        row_len: usize,
        label: &str,
    ) -> Result<DeviceRows> {
        upload_rows_u8_chunked(
            self,
            data,
            rows,
            row_len,
            self.max_binding_words() * 4,
            label,
        )
    }

    /// out[r] = Σ_c x[r, c]² for r < rows: the squared norms of the rows of x [rows, cols].
    fn row_sum_squares(&mut self, out: Tensor, x: Tensor, rows: usize, cols: usize);
    /// out[r] = log (1/n) Σ_j N(x_r; μ_j, σ²·I_dim) for r < rows: a Gaussian Parzen window's log
    /// density, from dot[r, j] = x_r·μ_j ([rows, n], from `matmul`), x_sq[r] = ‖x_r‖² and
    /// mu_sq[j] = ‖μ_j‖² (from `row_sum_squares`).
    #[allow(clippy::too_many_arguments)]
    fn parzen_log_density(
        &mut self,
        out: Tensor,
        dot: Tensor,
        x_sq: Tensor,
        mu_sq: Tensor,
        rows: usize,
        n: usize,
        dim: usize,
        sigma: f32,
    );
}

/// `upload_rows_u8` with an explicit chunk size in bytes (tests use small ones to cover chunking).
pub fn upload_rows_u8_chunked<B: Backend + ?Sized>(
    be: &mut B,
    data: &[u8],
    rows: usize,
    row_len: usize,
    max_chunk_bytes: usize,
    label: &str,
) -> Result<DeviceRows> {
    anyhow::ensure!(
        data.len() == rows * row_len,
        "{label}: {} bytes given for {rows} rows of {row_len}",
        data.len()
    );
    anyhow::ensure!(rows > 0 && row_len > 0, "{label}: the dataset is empty");
    let chunk_rows = (max_chunk_bytes / row_len).min(rows);
    anyhow::ensure!(
        chunk_rows > 0,
        "{label}: one row of {row_len} bytes exceeds the largest storage binding ({max_chunk_bytes} bytes)"
    );
    let n_chunks = rows.div_ceil(chunk_rows);
    anyhow::ensure!(
        n_chunks <= MAX_ROW_CHUNKS,
        "{label}: {rows} rows of {row_len} bytes need {n_chunks} buffers of at most \
         {max_chunk_bytes} bytes (max_storage_buffer_binding_size); at most {MAX_ROW_CHUNKS} are \
         supported, so use at most {} rows",
        MAX_ROW_CHUNKS * chunk_rows
    );
    let mut chunks = Vec::with_capacity(n_chunks);
    for (i, bytes) in data.chunks(chunk_rows * row_len).enumerate() {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        let t = be.alloc(words.len(), &format!("{label} chunk {i}"))?;
        be.write_u32(t, &words);
        chunks.push(t);
    }
    Ok(DeviceRows {
        chunks,
        chunk_rows,
        rows,
        row_len,
    })
}

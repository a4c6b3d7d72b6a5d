//! The CPU twins of the convolution kernels: im2col and the `gemm` crate's GEMM, threaded over
//! chunks of the batch (each chunk's GEMM on one core, so its packing and the im2col around it
//! run in parallel too), with scratch kept in a pool between calls so steady-state training
//! allocates nothing. `conv.rs` holds the plain references they are tested against.
//!
//! Per chunk of `nb` samples, with P = oh·ow output pixels and K = ci·kh·kw taps, GEMM columns
//! ordered (pixel, sample):
//!   forward       col [K, P·nb] = im2col(x);  prod [co, P·nb] = W [co, K]·col;  y = store(prod)
//!   input grad    dyT [co, P·nb] = dy;  dcol [K, P·nb] = Wᵀ·dyT;  dx = store(col2im(dcol))
//!   weight grad   col = im2col(x);  dyP [P·nb, co] = dy;  dWᵀ [K, co] += col·dyP
//! With the samples innermost, a tap's values for a whole output row of every sample of the
//! chunk are one contiguous run (`Padded`), so im2col and col2im move long runs, not rows of a
//! few pixels; a chunk of one sample (images of 128 pixels or more) needs no reordering at all
//! and its GEMMs read and write the tensors in place. col2im is a scatter-add, but each channel
//! of a chunk belongs to one task and is summed tap by tap in a fixed order, so the result is
//! deterministic without atomics. The weight gradient sums the chunks of each thread's fixed
//! share of the batch, then the shares in order.
//!
//! Stride-2 4×4 layers with 16+ channels go to the Winograd twins in `conv_winograd.rs`
//! instead (F(2×2, 2×2) for even-sized outputs such as dcgan32's, 9/16 of the multiply-adds;
//! F(4×4, 2×2) for the forward and input gradient of dcgan's 7×7 outputs).
//!
//! Measured with `duel bench kernels --backend cpu` on the 2-core Zen 5 box (docs/benchmarks.md):
//! the dcgan and dcgan32 convolutions with 64 or more channels run at 270–330 GFLOP/s, their
//! one- and three-channel first and last layers at 100–240.

use super::activation::{act_grad_in_place, activate_in_place};
use super::conv::{ConvGeom, StoreKind};
use super::conv_winograd as winograd;
use crate::cpu::simd::wide;
use rayon::prelude::*;
use std::sync::Mutex;

// ---- scratch -------------------------------------------------------------------------------

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A scratch buffer of `len` words from the pool, returned to it on drop. Contents are stale.
pub(super) struct Scratch {
    buf: Vec<f32>,
    len: usize,
}

impl Scratch {
    pub(super) fn take(len: usize) -> Self {
        let mut buf = POOL
            .lock()
            .map(|mut p| p.pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        Scratch { buf, len }
    }
}

impl std::ops::Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buf[..self.len]
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf[..self.len]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut p) = POOL.lock() {
            p.push(std::mem::take(&mut self.buf));
        }
    }
}

// ---- GEMM and chunking ---------------------------------------------------------------------

/// C[m,n] (= or +=) A[m,k]·B[k,n], every operand through (row, column) strides; on both cores
/// when `par` (a chunk that has the machine to itself), else on the calling thread.
// reason: BLAS's sgemm signature, called from the inner loops of the convolution twins with
// each operand's strides beside it; a struct per call would only rename the same nine values.
#[allow(clippy::too_many_arguments)]
pub(super) fn sgemm(
    (m, n, k): (usize, usize, usize),
    c: &mut [f32],
    (c_rs, c_cs): (usize, usize),
    accumulate: bool,
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    par: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let extent =
        |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs + 1;
    assert!(
        c.len() >= extent(m, n, c_rs, c_cs),
        "conv GEMM: C too small"
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c[i * c_rs + j * c_cs] = 0.0;
                }
            }
        }
        return;
    }
    assert!(
        a.len() >= extent(m, k, a_rs, a_cs),
        "conv GEMM: A too small"
    );
    assert!(
        b.len() >= extent(k, n, b_rs, b_cs),
        "conv GEMM: B too small"
    );
    let threads = rayon::current_num_threads();
    let parallelism = if par && threads > 1 && m * n * k >= 1 << 18 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts keep every strided access inside the slices. gemm computes
    // dst = alpha·dst + beta·lhs·rhs with strides given as (column, row).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs as isize,
            c_rs as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// GEMM columns (pixels) a chunk aims for: wide enough for the GEMM to run near its peak.
const CHUNK_COLUMNS: usize = 1024;
/// Largest column buffer of a chunk, in words (16 MiB).
const CHUNK_WORDS: usize = 1 << 22;

/// From this many output pixels per sample on, a chunk is one sample: its GEMMs are wide
/// enough alone, and read and write the sample's tensors in place (no reordering copies).
const ONE_SAMPLE_PIXELS: usize = 128;

/// Samples per chunk of a batch of `n` whose column buffer holds `k` rows of `pixels` per
/// sample: about CHUNK_COLUMNS columns, at most CHUNK_WORDS words, and an equal number of
/// chunks for every thread.
fn chunk_samples(n: usize, pixels: usize, k: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let per_thread = n.div_ceil(threads).max(1);
    if pixels >= ONE_SAMPLE_PIXELS {
        return 1;
    }
    let want = CHUNK_COLUMNS
        .div_ceil(pixels.max(1))
        .min(CHUNK_WORDS / (k * pixels).max(1))
        .max(1);
    per_thread.div_ceil(per_thread.div_ceil(want))
}

/// Runs `f(first sample, chunk of out)` over chunks of `nb` samples of `out` (each sample
/// `sample_len` words), in parallel when there is more than one chunk; `f`'s flag says whether
/// it has the machine to itself (one chunk).
pub(super) fn for_sample_chunks(
    out: &mut [f32],
    n: usize,
    sample_len: usize,
    nb: usize,
    f: impl Fn(usize, &mut [f32], bool) + Sync,
) {
    let out = &mut out[..n * sample_len];
    // One call of f, under `wide`: that compiles f's loops wide where LLVM inlines f; a
    // closure too large for that wraps its hot part in `wide` itself (`conv_winograd`).
    let run = |i: usize, chunk: &mut [f32], alone: bool| {
        wide(
            #[inline(always)]
            || f(i * nb, chunk, alone),
        )
    };
    if n <= nb || rayon::current_num_threads() == 1 {
        for (i, chunk) in out.chunks_mut(nb * sample_len).enumerate() {
            run(i, chunk, n <= nb);
        }
    } else {
        out.par_chunks_mut(nb * sample_len)
            .enumerate()
            .for_each(|(i, chunk)| run(i, chunk, false));
    }
}

// ---- im2col and col2im ---------------------------------------------------------------------

/// One channel of a chunk's `ns` samples, zero-padded by `pad` on every side, its columns split
/// by phase (stride S), and the samples interleaved innermost: padded row r holds S runs of
/// `run` positions, run q holding padded columns S·j + q, each position holding the ns
/// samples. Tap (ky, kx) of output pixel (oh, ow) is then padded row oh·S + ky, run kx mod S,
/// position ow + ⌊kx/S⌋; and the taps of a whole output row, for every sample, are one
/// contiguous run of ow·ns words — the column order of the chunk's GEMMs is (pixel, sample),
/// so im2col is one long copy per (tap, output row) and col2im one long add.
struct Padded {
    s: usize,
    pad: usize,
    /// Padded rows.
    rows: usize,
    /// Positions per run: ⌈(w + 2·pad) / S⌉.
    run: usize,
    ns: usize,
}

impl Padded {
    fn new(g: &ConvGeom, ns: usize) -> Self {
        Padded {
            s: g.stride,
            pad: g.pad,
            rows: g.h + 2 * g.pad,
            run: (g.w + 2 * g.pad).div_ceil(g.stride),
            ns,
        }
    }

    /// Words of one padded row, and of the channel.
    fn row(&self) -> usize {
        self.s * self.run * self.ns
    }

    fn len(&self) -> usize {
        self.rows * self.row()
    }

    /// Where tap (ky, kx) of output pixel (0, 0), sample 0, sits.
    fn tap(&self, ky: usize, kx: usize) -> usize {
        ky * self.row() + ((kx % self.s) * self.run + kx / self.s) * self.ns
    }

    /// The positions j of run q holding input columns (S·j + q − pad ∈ [0, w)), and the input
    /// column of the first.
    fn valid(&self, g: &ConvGeom, q: usize) -> (std::ops::Range<usize>, usize) {
        let j0 = self.pad.saturating_sub(q).div_ceil(self.s);
        let j1 = (g.w + self.pad)
            .saturating_sub(q)
            .div_ceil(self.s)
            .min(self.run);
        let j1 = j1.max(j0);
        (j0..j1, (self.s * j0 + q).saturating_sub(self.pad))
    }

    /// dst = channel c of the chunk's samples x ([ns, ci, h, w]), padded, split, interleaved.
    fn split(&self, g: &ConvGeom, x: &[f32], c: usize, dst: &mut [f32]) {
        let (row, ns) = (self.row(), self.ns);
        let plane = g.h * g.w;
        dst.fill(0.0);
        for q in 0..self.s {
            let (js, iw0) = self.valid(g, q);
            let base = self.pad * row + (q * self.run + js.start) * ns;
            for ih in 0..g.h {
                let d = &mut dst[base + ih * row..][..js.len() * ns];
                for s in 0..ns {
                    let src = &x[(s * g.ci + c) * plane + ih * g.w + iw0..];
                    for (v, x) in d[s..]
                        .iter_mut()
                        .step_by(ns)
                        .zip(src.iter().step_by(self.s))
                    {
                        *v = *x;
                    }
                }
            }
        }
    }

    /// Channel c of dx ([ns, ci, h, w]) = the interior of src (padded, split, interleaved).
    fn join(&self, g: &ConvGeom, src: &[f32], c: usize, dx: &mut [f32]) {
        let (row, ns) = (self.row(), self.ns);
        let plane = g.h * g.w;
        for q in 0..self.s {
            let (js, iw0) = self.valid(g, q);
            let n = js.len();
            let base = self.pad * row + (q * self.run + js.start) * ns;
            for ih in 0..g.h {
                let r = &src[base + ih * row..][..n * ns];
                for s in 0..ns {
                    let d = &mut dx[(s * g.ci + c) * plane + ih * g.w + iw0..];
                    for (x, v) in d.iter_mut().step_by(self.s).zip(r[s..].iter().step_by(ns)) {
                        *x = *v;
                    }
                }
            }
        }
    }
}

/// col[(c,ky,kx), pixel·ns + s] = x[s, c, oh·stride − pad + ky, ow·stride − pad + kx] (0 outside)
/// for the `ns` samples of `x`; `stride` is col's row stride. One copy of ow·ns words per
/// (tap, output row).
fn im2col(g: &ConvGeom, x: &[f32], ns: usize, col: &mut [f32], stride: usize) {
    let (oh_n, ow_n) = (g.oh(), g.ow());
    let pd = Padded::new(g, ns);
    let mut padded = Scratch::take(pd.len());
    // Output row oh reads padded row oh·S + ky.
    let (step, run) = (g.stride * pd.row(), ow_n * ns);
    for c in 0..g.ci {
        pd.split(g, x, c, &mut padded);
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let r = (c * g.kh + ky) * g.kw + kx;
                let dst = &mut col[r * stride..][..oh_n * run];
                let src = &padded[pd.tap(ky, kx)..];
                for (oh, d) in dst.chunks_exact_mut(run).enumerate() {
                    d.copy_from_slice(&src[oh * step..][..run]);
                }
            }
        }
    }
}

/// dx[s, c] = Σ_{ky,kx} the rows of dcol (columns pixel·ns + s, row stride `stride`) its
/// pixels receive: channel by channel, every tap adds one run of ow·ns words per output row into
/// a padded, split, interleaved buffer in a fixed order (deterministic, no atomics), whose
/// interior is then copied out; for the `ns` samples of `dx`.
fn col2im(g: &ConvGeom, dcol: &[f32], stride: usize, ns: usize, dx: &mut [f32]) {
    let (oh_n, ow_n) = (g.oh(), g.ow());
    let pd = Padded::new(g, ns);
    let mut acc = Scratch::take(pd.len());
    let (step, run) = (g.stride * pd.row(), ow_n * ns);
    for c in 0..g.ci {
        acc.fill(0.0);
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let r = (c * g.kh + ky) * g.kw + kx;
                let src = &dcol[r * stride..][..oh_n * run];
                let at = pd.tap(ky, kx);
                for (oh, v) in src.chunks_exact(run).enumerate() {
                    let d = &mut acc[at + oh * step..][..run];
                    for (dv, v) in d.iter_mut().zip(v) {
                        *dv += v;
                    }
                }
            }
        }
        pd.join(g, &acc, c, dx);
    }
}

/// The store step over a chunk of whole samples `out` (planes of `plane` words, `channels` per
/// sample) whose first value is output index `o0`: the channel's bias then the activation, or
/// the activation gradient from y. Whole-chunk passes, so the activation loops vectorise.
pub(super) fn store_chunk(
    store: StoreKind,
    out: &mut [f32],
    extra: &[f32],
    o0: usize,
    channels: usize,
    plane: usize,
) {
    match store {
        StoreKind::ActGrad(act) => act_grad_in_place(act, out, &extra[o0..o0 + out.len()]),
        StoreKind::Act { bias, act } => {
            if bias {
                for (i, pl) in out.chunks_exact_mut(plane).enumerate() {
                    let b = extra[i % channels];
                    pl.iter_mut().for_each(|v| *v += b);
                }
            }
            activate_in_place(act, out);
        }
    }
}

// ---- the twins -----------------------------------------------------------------------------

/// y = store(conv(x, w)).
pub fn conv2d_forward_cpu(
    g: &ConvGeom,
    store: StoreKind,
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    extra: &[f32],
) {
    if winograd::applies(g) {
        return winograd::forward(g, store, y, x, w, extra);
    }
    let (k, p, out, inp) = (g.taps(), g.ohw(), g.out_len(), g.in_len());
    let nb = chunk_samples(g.n, p, k);
    for_sample_chunks(y, g.n, out, nb, |n0, ys, par| {
        let ns = ys.len() / out;
        let cols = ns * p;
        let mut col = Scratch::take(k * cols);
        im2col(g, &x[n0 * inp..], ns, &mut col, cols);
        if ns == 1 {
            // One sample: the product is y's [co, P] itself.
            sgemm(
                (g.co, p, k),
                ys,
                (p, 1),
                false,
                w,
                (k, 1),
                &col,
                (p, 1),
                par,
            );
            store_chunk(store, ys, extra, n0 * out, g.co, p);
            return;
        }
        let mut prod = Scratch::take(g.co * cols);
        sgemm(
            (g.co, cols, k),
            &mut prod,
            (cols, 1),
            false,
            w,
            (k, 1),
            &col,
            (cols, 1),
            par,
        );
        // y[s, c, pixel] = prod[c, pixel·ns + s].
        for s in 0..ns {
            for c in 0..g.co {
                let src = prod[c * cols + s..].iter().step_by(ns);
                for (v, x) in ys[(s * g.co + c) * p..][..p].iter_mut().zip(src) {
                    *v = *x;
                }
            }
        }
        store_chunk(store, ys, extra, n0 * out, g.co, p);
    });
}

/// dx = store(convᵀ(dy, w)).
pub fn conv2d_backward_input_cpu(
    g: &ConvGeom,
    store: StoreKind,
    dx: &mut [f32],
    dy: &[f32],
    w: &[f32],
    extra: &[f32],
) {
    if winograd::applies(g) {
        return winograd::backward_input(g, store, dx, dy, w, extra);
    }
    let (k, p, out, inp) = (g.taps(), g.ohw(), g.out_len(), g.in_len());
    let plane = g.h * g.w;
    let nb = chunk_samples(g.n, p, k);
    for_sample_chunks(dx, g.n, inp, nb, |n0, dxs, par| {
        let ns = dxs.len() / inp;
        let cols = ns * p;
        // dyT [co, P·ns]: the chunk's output gradient, columns (pixel, sample) (with one
        // sample, dy's [co, P] itself).
        let mut dyt = Scratch::take(if ns == 1 { 0 } else { g.co * cols });
        if ns > 1 {
            for s in 0..ns {
                for c in 0..g.co {
                    let dst = dyt[c * cols + s..].iter_mut().step_by(ns);
                    for (v, x) in dst.zip(&dy[(n0 + s) * out + c * p..][..p]) {
                        *v = *x;
                    }
                }
            }
        }
        let dyt_view: &[f32] = if ns == 1 {
            &dy[n0 * out..][..out]
        } else {
            &dyt
        };
        let stride = cols;
        let mut dcol = Scratch::take(k * stride);
        sgemm(
            (k, cols, g.co),
            &mut dcol,
            (stride, 1),
            false,
            w,
            (1, k),
            dyt_view,
            (cols, 1),
            par,
        );
        col2im(g, &dcol, stride, ns, dxs);
        store_chunk(store, dxs, extra, n0 * inp, g.ci, plane);
    });
}

/// dWᵀ [K, co] (+)= Σ over samples `range` of im2col(x)·dyP, chunk by chunk in order.
fn weight_grad_range(
    g: &ConvGeom,
    range: std::ops::Range<usize>,
    dwt: &mut [f32],
    x: &[f32],
    dy: &[f32],
    par: bool,
) {
    let (k, p, out, inp) = (g.taps(), g.ohw(), g.out_len(), g.in_len());
    let nb = chunk_samples(range.len(), p, k).max(1);
    let mut first = true;
    let mut n0 = range.start;
    if range.is_empty() {
        dwt.fill(0.0);
    }
    while n0 < range.end {
        let ns = nb.min(range.end - n0);
        let (cols, stride) = (ns * p, ns * p);
        let mut col = Scratch::take(k * stride);
        im2col(g, &x[n0 * inp..], ns, &mut col, stride);
        if ns == 1 {
            // One sample: B is dy's [co, P] read transposed (no reordering copy).
            let b = &dy[n0 * out..][..out];
            sgemm(
                (k, g.co, p),
                dwt,
                (g.co, 1),
                !first,
                &col,
                (p, 1),
                b,
                (1, p),
                par,
            );
            first = false;
            n0 += 1;
            continue;
        }
        // dyP [P·ns, co]: rows (pixel, sample), each sample's [co, P] gradient transposed.
        let mut dyp = Scratch::take(cols * g.co);
        // Row by row of dyP, so the writes are contiguous; a sample's [co, P] block (co·P·4
        // bytes: 25 KB for dcgan's D conv2) stays in L1 while its columns are read.
        for s in 0..ns {
            let src = &dy[(n0 + s) * out..][..out];
            for q in 0..p {
                let row = &mut dyp[(q * ns + s) * g.co..][..g.co];
                for (c, v) in row.iter_mut().enumerate() {
                    *v = src[c * p + q];
                }
            }
        }
        sgemm(
            (k, g.co, cols),
            dwt,
            (g.co, 1),
            !first,
            &col,
            (stride, 1),
            &dyp,
            (g.co, 1),
            par,
        );
        first = false;
        n0 += ns;
    }
}

/// dw (+)= Σ_{n, pixel} dy ⊗ x; with `splits` > 1, slice z of dw gets batch slice z's sum.
pub fn conv2d_backward_weights_cpu(
    g: &ConvGeom,
    accumulate: bool,
    splits: usize,
    dw: &mut [f32],
    x: &[f32],
    dy: &[f32],
) {
    let (len, k, co) = (g.weight_len(), g.taps(), g.co);
    // Each range's sum goes to its own buffer (im2col's as dWᵀ [K, co], Winograd's as dw
    // [co, K]), then into dw in range order.
    let wino = winograd::applies_to_weight_grad(g);
    let threads = rayon::current_num_threads().max(1);
    let (ranges, per) = if splits > 1 {
        (splits, g.n.div_ceil(splits))
    } else {
        let t = threads.min(g.n).max(1);
        (t, g.n.div_ceil(t))
    };
    let range = |z: usize| (z * per).min(g.n)..((z + 1) * per).min(g.n);
    // Ranges that do not share out evenly over the threads (dcgan's G at batch 64 splits in
    // 3 for the GPU: one thread summed two, the other one) are each summed in `sub` pieces,
    // one per thread, added in order below.
    let sub = if ranges > 1 && !ranges.is_multiple_of(threads) {
        threads
    } else {
        1
    };
    let piece = |i: usize| {
        let r = range(i / sub);
        let size = r.len().div_ceil(sub);
        let start = (r.start + (i % sub) * size).min(r.end);
        start..(start + size).min(r.end)
    };
    let sum_piece = |i: usize, part: &mut [f32], par: bool| {
        if wino {
            winograd::weight_grad_range(g, piece(i), part, x, dy, par)
        } else {
            weight_grad_range(g, piece(i), part, x, dy, par)
        }
    };
    let mut parts = Scratch::take(ranges * sub * len);
    if ranges * sub == 1 {
        sum_piece(0, &mut parts, true);
    } else {
        parts
            .par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, part)| sum_piece(i, part, false));
    }
    let put = |dst: &mut [f32], src: &[f32], add: bool| {
        if wino {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = if add { *d + s } else { *s };
            }
        } else {
            transpose_into(dst, src, k, co, add);
        }
    };
    let part = |i: usize| &parts[i * len..][..len];
    if splits > 1 {
        for (z, slice) in dw[..splits * len].chunks_mut(len).enumerate() {
            put(slice, part(z * sub), false);
            for i in 1..sub {
                put(slice, part(z * sub + i), true);
            }
        }
    } else {
        let dw = &mut dw[..len];
        put(dw, part(0), accumulate);
        for i in 1..ranges * sub {
            put(dw, part(i), true);
        }
    }
}

/// dst [co, k] (+)= srcᵀ, src [k, co].
fn transpose_into(dst: &mut [f32], src: &[f32], k: usize, co: usize, add: bool) {
    for (c, row) in dst.chunks_exact_mut(k).enumerate().take(co) {
        for (j, v) in row.iter_mut().enumerate() {
            let s = src[j * co + c];
            *v = if add { *v + s } else { s };
        }
    }
}

/// db[c] (+)= Σ_{n, pixel} dy[n, c, pixel]: each plane summed in eight lanes (f32), the
/// planes in order (one running sum ran at 11 GB/s).
pub fn bias_backward_nchw_cpu(
    db: &mut [f32],
    dy: &[f32],
    n: usize,
    c: usize,
    hw: usize,
    accumulate: bool,
) {
    let sum = |ch: usize| -> f32 {
        (0..n)
            .map(|i| {
                let plane = &dy[(i * c + ch) * hw..][..hw];
                super::batch_norm::sum8(plane, plane, |x, _| x)
            })
            .sum()
    };
    let db = &mut db[..c];
    let each = |ch: usize, d: &mut f32| {
        let s = wide(
            #[inline(always)]
            || sum(ch),
        );
        *d = if accumulate { *d + s } else { s };
    };
    if n * c * hw >= crate::cpu::par::PAR_MIN && c > 1 {
        db.par_iter_mut()
            .enumerate()
            .for_each(|(ch, d)| each(ch, d));
    } else {
        db.iter_mut().enumerate().for_each(|(ch, d)| each(ch, d));
    }
}

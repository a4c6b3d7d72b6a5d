//! The CPU twins of the convolution kernels: im2col and the `gemm` crate's GEMM, threaded over
//! chunks of the batch (each chunk's GEMM on one core, so its packing and the im2col around it
//! run in parallel too), with scratch kept in a pool between calls so steady-state training
//! allocates nothing. `conv.rs` holds the plain references they are tested against.
//!
//! Per chunk of `nb` samples, with P = oh·ow output pixels and K = ci·kh·kw taps:
//!   forward       col [K, nb·P] = im2col(x);  prod [co, nb·P] = W [co, K]·col;  y = store(prod)
//!   input grad    dyT [co, nb·P] = dy;  dcol [K, nb·P] = Wᵀ·dyT;  dx = store(col2im(dcol))
//!   weight grad   col = im2col(x);  dyP [nb·P, co] = dy;  dWᵀ [K, co] += col·dyP
//! col2im is a scatter-add, but each (sample, channel) plane belongs to one task and is summed
//! tap by tap in a fixed order, so the result is deterministic without atomics. The weight
//! gradient sums the chunks of each thread's fixed share of the batch, then the shares in order.

use super::activation::{act_grad_in_place, activate_in_place};
use super::conv::{ConvGeom, StoreKind};
use rayon::prelude::*;
use std::sync::Mutex;

// ---- scratch -------------------------------------------------------------------------------

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A scratch buffer of `len` words from the pool, returned to it on drop. Contents are stale.
struct Scratch {
    buf: Vec<f32>,
    len: usize,
}

impl Scratch {
    fn take(len: usize) -> Self {
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
#[allow(clippy::too_many_arguments)]
fn sgemm(
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

/// Samples per chunk of a batch of `n` whose column buffer holds `k` rows of `pixels` per
/// sample: about CHUNK_COLUMNS columns, at most CHUNK_WORDS words, and an equal number of
/// chunks for every thread.
fn chunk_samples(n: usize, pixels: usize, k: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let per_thread = n.div_ceil(threads).max(1);
    let cols: usize = std::env::var("DUEL_CONV_COLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CHUNK_COLUMNS);
    let want = cols
        .div_ceil(pixels.max(1))
        .min(CHUNK_WORDS / (k * pixels).max(1))
        .max(1);
    per_thread.div_ceil(per_thread.div_ceil(want))
}

/// Runs `f(first sample, chunk of out)` over chunks of `nb` samples of `out` (each sample
/// `sample_len` words), in parallel when there is more than one chunk; `f`'s flag says whether
/// it has the machine to itself (one chunk).
fn for_sample_chunks(
    out: &mut [f32],
    n: usize,
    sample_len: usize,
    nb: usize,
    f: impl Fn(usize, &mut [f32], bool) + Sync,
) {
    let out = &mut out[..n * sample_len];
    if n <= nb || rayon::current_num_threads() == 1 {
        for (i, chunk) in out.chunks_mut(nb * sample_len).enumerate() {
            f(i * nb, chunk, n <= nb);
        }
    } else {
        out.par_chunks_mut(nb * sample_len)
            .enumerate()
            .for_each(|(i, chunk)| f(i * nb, chunk, false));
    }
}

// ---- im2col and col2im ---------------------------------------------------------------------

/// The output columns [lo, hi) whose tap at offset `k` (ky or kx) lands inside an input of
/// `size`: o·stride + k − pad ∈ [0, size).
fn valid_range(out: usize, size: usize, k: usize, g: &ConvGeom) -> (usize, usize) {
    let s = g.stride;
    let lo = g.pad.saturating_sub(k).div_ceil(s).min(out);
    let hi = if size + g.pad > k {
        ((size - 1 + g.pad - k) / s + 1).min(out)
    } else {
        0
    };
    (lo, hi.max(lo))
}

/// A plane with its columns split by phase (stride s): row ih holds s runs of ⌈w/s⌉ values,
/// run r holding the columns s·j + r. A stride-s tap then reads (and col2im writes) contiguous
/// runs instead of every s-th value: tap kx of output column ow is run (kx − pad) mod s,
/// position ow + ⌊(kx − pad)/s⌋.
struct Phased {
    s: usize,
    /// ⌈w/s⌉: values per run.
    run: usize,
}

impl Phased {
    fn new(g: &ConvGeom) -> Self {
        Phased {
            s: g.stride,
            run: g.w.div_ceil(g.stride),
        }
    }

    /// Words of one phased plane.
    fn len(&self, g: &ConvGeom) -> usize {
        g.h * self.s * self.run
    }

    /// Offset within a phased row, and the shift of the output column, of tap `kx`.
    fn tap(&self, kx: usize, pad: usize) -> (usize, isize) {
        let off = kx as isize - pad as isize;
        let s = self.s as isize;
        (off.rem_euclid(s) as usize * self.run, off.div_euclid(s))
    }

    /// dst (phased) = plane.
    fn split(&self, g: &ConvGeom, plane: &[f32], dst: &mut [f32]) {
        for (row, d) in plane
            .chunks_exact(g.w)
            .zip(dst.chunks_exact_mut(self.s * self.run))
        {
            for (r, run) in d.chunks_exact_mut(self.run).enumerate() {
                for (j, v) in run.iter_mut().enumerate() {
                    *v = row.get(j * self.s + r).copied().unwrap_or(0.0);
                }
            }
        }
    }

    /// plane = src (phased).
    fn join(&self, g: &ConvGeom, src: &[f32], plane: &mut [f32]) {
        for (row, d) in plane
            .chunks_exact_mut(g.w)
            .zip(src.chunks_exact(self.s * self.run))
        {
            for (iw, v) in row.iter_mut().enumerate() {
                *v = d[(iw % self.s) * self.run + iw / self.s];
            }
        }
    }
}

/// col[(c,ky,kx), s·P + pixel] = x[s, c, oh·stride − pad + ky, ow·stride − pad + kx] (0 outside)
/// for the `ns` samples of `x`; `cols` is col's row stride.
fn im2col(g: &ConvGeom, x: &[f32], ns: usize, col: &mut [f32], cols: usize) {
    let (oh_n, ow_n, p) = (g.oh(), g.ow(), g.ohw());
    let plane = g.h * g.w;
    let ph = Phased::new(g);
    let mut phased = Scratch::take(if g.stride > 1 { ph.len(g) } else { 0 });
    let row_len = ph.s * ph.run;
    for s in 0..ns {
        for c in 0..g.ci {
            let src_plane = &x[(s * g.ci + c) * plane..][..plane];
            let src: &[f32] = if g.stride > 1 {
                ph.split(g, src_plane, &mut phased);
                &phased
            } else {
                src_plane
            };
            for ky in 0..g.kh {
                let (y0, y1) = valid_range(oh_n, g.h, ky, g);
                for kx in 0..g.kw {
                    let (x0, x1) = valid_range(ow_n, g.w, kx, g);
                    let (run, shift) = ph.tap(kx, g.pad);
                    let row = (c * g.kh + ky) * g.kw + kx;
                    let dst = &mut col[row * cols + s * p..][..p];
                    dst[..y0 * ow_n].fill(0.0);
                    dst[y1 * ow_n..].fill(0.0);
                    for oh in y0..y1 {
                        let ih = oh * g.stride + ky - g.pad;
                        let d = &mut dst[oh * ow_n..][..ow_n];
                        d[..x0].fill(0.0);
                        d[x1..].fill(0.0);
                        if x1 > x0 {
                            let j0 = (x0 as isize + shift) as usize;
                            let r = &src[ih * row_len + run + j0..][..x1 - x0];
                            d[x0..x1].copy_from_slice(r);
                        }
                    }
                }
            }
        }
    }
}

/// dx[s, c] = Σ_{ky,kx} the rows of dcol its pixels receive, plane by plane (each plane summed
/// tap by tap in a fixed order, into phased rows so every tap adds a contiguous run), for the
/// `ns` samples of `dx`.
fn col2im(g: &ConvGeom, dcol: &[f32], cols: usize, ns: usize, dx: &mut [f32]) {
    let (oh_n, ow_n, p) = (g.oh(), g.ow(), g.ohw());
    let plane_len = g.h * g.w;
    let ph = Phased::new(g);
    let mut phased = Scratch::take(if g.stride > 1 { ph.len(g) } else { 0 });
    let row_len = ph.s * ph.run;
    for s in 0..ns {
        for c in 0..g.ci {
            let plane = &mut dx[(s * g.ci + c) * plane_len..][..plane_len];
            let acc: &mut [f32] = if g.stride > 1 { &mut phased } else { plane };
            acc.fill(0.0);
            for ky in 0..g.kh {
                let (y0, y1) = valid_range(oh_n, g.h, ky, g);
                for kx in 0..g.kw {
                    let (x0, x1) = valid_range(ow_n, g.w, kx, g);
                    if x1 == x0 {
                        continue;
                    }
                    let (run, shift) = ph.tap(kx, g.pad);
                    let j0 = (x0 as isize + shift) as usize;
                    let row = (c * g.kh + ky) * g.kw + kx;
                    let src = &dcol[row * cols + s * p..][..p];
                    for oh in y0..y1 {
                        let ih = oh * g.stride + ky - g.pad;
                        let d = &mut acc[ih * row_len + run + j0..][..x1 - x0];
                        for (dv, v) in d.iter_mut().zip(&src[oh * ow_n + x0..oh * ow_n + x1]) {
                            *dv += v;
                        }
                    }
                }
            }
            if g.stride > 1 {
                ph.join(
                    g,
                    &phased,
                    &mut dx[(s * g.ci + c) * plane_len..][..plane_len],
                );
            }
        }
    }
}

/// The store step over a chunk of whole samples `out` (planes of `plane` words, `channels` per
/// sample) whose first value is output index `o0`: the channel's bias then the activation, or
/// the activation gradient from y. Whole-chunk passes, so the activation loops vectorise.
fn store_chunk(
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
    let (k, p, out, inp) = (g.taps(), g.ohw(), g.out_len(), g.in_len());
    let nb = chunk_samples(g.n, p, k);
    for_sample_chunks(y, g.n, out, nb, |n0, ys, par| {
        let ns = ys.len() / out;
        let cols = ns * p;
        let mut col = Scratch::take(k * cols);
        im2col(g, &x[n0 * inp..], ns, &mut col, cols);
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
        for s in 0..ns {
            for c in 0..g.co {
                ys[(s * g.co + c) * p..][..p].copy_from_slice(&prod[c * cols + s * p..][..p]);
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
    let (k, p, out, inp) = (g.taps(), g.ohw(), g.out_len(), g.in_len());
    let plane = g.h * g.w;
    let nb = chunk_samples(g.n, p, k);
    for_sample_chunks(dx, g.n, inp, nb, |n0, dxs, par| {
        let ns = dxs.len() / inp;
        let cols = ns * p;
        // dyT [co, ns·P]: the chunk's output gradient with the channel outermost.
        let mut dyt = Scratch::take(g.co * cols);
        for s in 0..ns {
            for c in 0..g.co {
                dyt[c * cols + s * p..][..p].copy_from_slice(&dy[(n0 + s) * out + c * p..][..p]);
            }
        }
        let mut dcol = Scratch::take(k * cols);
        sgemm(
            (k, cols, g.co),
            &mut dcol,
            (cols, 1),
            false,
            w,
            (1, k),
            &dyt,
            (cols, 1),
            par,
        );
        col2im(g, &dcol, cols, ns, dxs);
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
        let cols = ns * p;
        let mut col = Scratch::take(k * cols);
        im2col(g, &x[n0 * inp..], ns, &mut col, cols);
        // dyP [ns·P, co]: each sample's [co, P] gradient transposed.
        let mut dyp = Scratch::take(cols * g.co);
        for s in 0..ns {
            let src = &dy[(n0 + s) * out..][..out];
            for c in 0..g.co {
                for q in 0..p {
                    dyp[(s * p + q) * g.co + c] = src[c * p + q];
                }
            }
        }
        sgemm(
            (k, g.co, cols),
            dwt,
            (g.co, 1),
            !first,
            &col,
            (cols, 1),
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
    // Each range's dWᵀ goes to its own buffer, then into dw transposed.
    let threads = rayon::current_num_threads().max(1);
    let (ranges, per) = if splits > 1 {
        (splits, g.n.div_ceil(splits))
    } else {
        let t = threads.min(g.n).max(1);
        (t, g.n.div_ceil(t))
    };
    let range = |z: usize| (z * per).min(g.n)..((z + 1) * per).min(g.n);
    let mut parts = Scratch::take(ranges * len);
    if ranges == 1 {
        weight_grad_range(g, range(0), &mut parts, x, dy, true);
    } else {
        parts
            .par_chunks_mut(len)
            .enumerate()
            .for_each(|(z, part)| weight_grad_range(g, range(z), part, x, dy, false));
    }
    if splits > 1 {
        for (z, slice) in dw[..splits * len].chunks_mut(len).enumerate() {
            transpose_into(slice, &parts[z * len..][..len], k, co, false);
        }
    } else {
        let dw = &mut dw[..len];
        transpose_into(dw, &parts[..len], k, co, accumulate);
        for z in 1..ranges {
            transpose_into(dw, &parts[z * len..][..len], k, co, true);
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

/// db[c] (+)= Σ_{n, pixel} dy[n, c, pixel]: each channel's planes summed in order (f32).
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
            .map(|i| dy[(i * c + ch) * hw..][..hw].iter().sum::<f32>())
            .sum()
    };
    let db = &mut db[..c];
    let each = |ch: usize, d: &mut f32| {
        let s = sum(ch);
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

//! Winograd F(2×2, 2×2) twins of the stride-2, 4×4 convolutions (DCGAN's) on the CPU: the
//! same functions as `conv_cpu`'s im2col twins with 9/16 of their multiply-adds.
//!
//! A stride-2 4×4 convolution is four stride-1 2×2 convolutions summed, one per phase (py, px)
//! of the input: tap (2a + py, 2b + px) of output pixel (i, j) reads input pixel
//! (2(i + a) + py − pad, 2(j + b) + px − pad), pixel (i + a, j + b) of the phase's plane.
//! F(2×2, 2×2) (Lavin & Gray 2016) computes a 2×2 tile of a 2×2 convolution from a 3×3 patch d
//! and the filter g with 9 multiplies instead of 16:
//!
//!   Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A,  Bᵀ = [1 −1 0; 0 1 0; 0 −1 1],  G = [1 0; 1 1; 0 1],
//!   Aᵀ = [1 1 0; 0 1 1]
//!
//! Summed over channels, phases and tiles, each of the 9 points ξ of the transform is a GEMM:
//!   forward      M_ξ [co, T] = U_ξ [co, 4·ci] · V_ξ(x) [4·ci, T]        (T: 2×2 output tiles)
//!   input grad   per phase of dx, M_ξ [ci, T] = U_ξ [ci, co] · V_ξ(dy) [co, T]
//!   weight grad  M_ξ [co, 4·ci] = U_ξ(dy) [co, T] · V_ξ(x)ᵀ [T, 4·ci]
//! The input gradient's phases are the transposed convolution's (dx pixel 2i + py − pad sums
//! dy[i − a]·w[2a + py]), a 2×2 convolution of dy with the phase's taps reversed; the weight
//! gradient swaps the roles of filter and output (dy's 2×2 tiles are the filters, the 2×2 taps
//! of the phase are the output). Every transform's entries are 0 and ±1, so the rounding stays
//! that of a direct sum. Ragged outputs (odd sizes) pad the last tile with zeros and drop its
//! extra outputs. Chunks of the batch run in parallel as in `conv_cpu`, each GEMM on one core.
//!
//! Used when the geometry is stride 2, 4×4, and both channel counts are at least
//! `MIN_CHANNELS`, for the products `DUEL_CPU_CONV` names (`applies`; docs/options.md).

use super::conv::{ConvGeom, StoreKind};
use super::conv_cpu::{Scratch, for_sample_chunks, sgemm, store_chunk};
use std::sync::OnceLock;

/// Below this many input or output channels a GEMM of the transform (K = 4·ci or co, M = co
/// or ci) is too thin to beat im2col's one GEMM (dcgan's one- and three-channel layers).
const MIN_CHANNELS: usize = 16;

/// 2×2 output tiles each chunk's GEMMs aim for (their N, or K for the weight gradient).
const CHUNK_TILES: usize = 512;

/// Which product of a convolution asks `applies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Product {
    Forward,
    InputGrad,
    WeightGrad,
}

/// `DUEL_CPU_CONV`: `auto` (the default) takes these twins for the forward and the weight
/// gradient and im2col for the input gradient, whose Winograd form moves more data per
/// multiply-add and measured slower (docs/performance.md); `winograd` takes them for all three,
/// `im2col` for none.
fn setting() -> &'static str {
    static SETTING: OnceLock<String> = OnceLock::new();
    SETTING.get_or_init(|| std::env::var("DUEL_CPU_CONV").unwrap_or_default())
}

/// Whether `product` of the convolution `g` runs through these twins.
pub fn applies(g: &ConvGeom, product: Product) -> bool {
    chosen(setting(), g, product)
}

/// `applies` under the setting `DUEL_CPU_CONV` holds.
fn chosen(setting: &str, g: &ConvGeom, product: Product) -> bool {
    let on = match setting {
        "im2col" => false,
        "winograd" => true,
        _ => product != Product::InputGrad,
    };
    on && g.stride == 2 && g.kh == 4 && g.kw == 4 && g.ci.min(g.co) >= MIN_CHANNELS
}

/// The 2×2 tiles of an `oh`×`ow` output of a stride-1 2×2 convolution.
#[derive(Clone, Copy)]
struct Tiles {
    oh: usize,
    ow: usize,
    th: usize,
    tw: usize,
}

impl Tiles {
    fn new(oh: usize, ow: usize) -> Self {
        Tiles {
            oh,
            ow,
            th: oh.div_ceil(2),
            tw: ow.div_ceil(2),
        }
    }

    fn count(&self) -> usize {
        self.th * self.tw
    }
}

/// Positions of `ns` interleaved samples: (r, c, s) at (r·cols + c)·ns + s, so every
/// transform below works on runs of ns samples (vectors), not on one sample's few pixels.
#[derive(Clone, Copy)]
struct Grid {
    rows: usize,
    cols: usize,
    ns: usize,
}

impl Grid {
    fn len(&self) -> usize {
        self.rows * self.cols * self.ns
    }

    fn at(&self, r: usize, c: usize) -> usize {
        (r * self.cols + c) * self.ns
    }
}

/// dst = the `grid.ns` planes [h, w] of src (sample s's at s·stride), pixel (ih, iw) at
/// position (ih + dr, iw + dc), zero elsewhere; with `split`, column c goes to (c mod 2)·cols/2
/// + ⌊c/2⌋ (even columns, then odd). Pixels past the grid are not needed and dropped.
fn interleave(
    src: &[f32],
    stride: usize,
    (h, w): (usize, usize),
    (dr, dc): (usize, usize),
    grid: Grid,
    split: bool,
    dst: &mut [f32],
) {
    let dst = &mut dst[..grid.len()];
    dst.fill(0.0);
    let half = grid.cols / 2;
    for ih in 0..h.min(grid.rows.saturating_sub(dr)) {
        for iw in 0..w {
            let cc = iw + dc;
            let c = match split {
                true if cc / 2 < half => (cc % 2) * half + cc / 2,
                false if cc < grid.cols => cc,
                _ => continue,
            };
            let run = &mut dst[grid.at(ih + dr, c)..][..grid.ns];
            let src = &src[ih * w + iw..];
            for (s, v) in run.iter_mut().enumerate() {
                *v = src[s * stride];
            }
        }
    }
}

/// Bᵀ d B of a 3×3 patch d (row-major).
#[inline(always)]
fn data_point(d: [f32; 9]) -> [f32; 9] {
    let rows = [
        [d[0] - d[3], d[1] - d[4], d[2] - d[5]],
        [d[3], d[4], d[5]],
        [d[6] - d[3], d[7] - d[4], d[8] - d[5]],
    ];
    let mut v = [0.0; 9];
    for (i, r) in rows.iter().enumerate() {
        v[3 * i] = r[0] - r[1];
        v[3 * i + 1] = r[1];
        v[3 * i + 2] = r[2] - r[1];
    }
    v
}

/// G g Gᵀ of a 2×2 filter g = [g00, g01, g10, g11].
#[inline(always)]
fn filter_point(g: [f32; 4]) -> [f32; 9] {
    let rows = [[g[0], g[1]], [g[0] + g[2], g[1] + g[3]], [g[2], g[3]]];
    let mut u = [0.0; 9];
    for (i, r) in rows.iter().enumerate() {
        u[3 * i] = r[0];
        u[3 * i + 1] = r[0] + r[1];
        u[3 * i + 2] = r[1];
    }
    u
}

/// Aᵀ m A: the 2×2 tile [y00, y01, y10, y11] of a 3×3 product m.
#[inline(always)]
fn output_point(m: [f32; 9]) -> [f32; 4] {
    let r0 = [m[0] + m[3], m[1] + m[4], m[2] + m[5]];
    let r1 = [m[3] + m[6], m[4] + m[7], m[5] + m[8]];
    [r0[0] + r0[1], r0[1] + r0[2], r1[0] + r1[1], r1[1] + r1[2]]
}

/// Samples a transform handles at once: one AVX-512 vector, filled from the runs and worked
/// on as fixed-size arrays so the compiler keeps them in registers.
const LANES: usize = 16;

/// v[ξ·xs + at + s] = f(the N runs d at sample s)_ξ for the runs' ns samples.
#[inline(always)]
fn transform_runs<const N: usize>(
    d: [&[f32]; N],
    v: &mut [f32],
    xs: usize,
    at: usize,
    f: impl Fn([f32; N]) -> [f32; 9],
) {
    let ns = d[0].len();
    let mut s0 = 0;
    while s0 < ns {
        let l = LANES.min(ns - s0);
        let mut inp = [[0.0f32; LANES]; N];
        for (lanes, run) in inp.iter_mut().zip(&d) {
            lanes[..l].copy_from_slice(&run[s0..s0 + l]);
        }
        let mut out = [[0.0f32; LANES]; 9];
        for lane in 0..LANES {
            let r = f(std::array::from_fn(|i| inp[i][lane]));
            for (o, r) in out.iter_mut().zip(r) {
                o[lane] = r;
            }
        }
        for (xi, o) in out.iter().enumerate() {
            v[xi * xs + at + s0..][..l].copy_from_slice(&o[..l]);
        }
        s0 += l;
    }
}

/// For each sample s of the tile whose products are m[ξ·xs + at + s]: put(s, q, value) for
/// its outputs q = 2·row + column that `keep(q)`.
#[inline(always)]
fn output_runs(
    m: &[f32],
    xs: usize,
    at: usize,
    ns: usize,
    keep: [bool; 4],
    mut put: impl FnMut(usize, usize, f32),
) {
    let mut s0 = 0;
    while s0 < ns {
        let l = LANES.min(ns - s0);
        let mut inp = [[0.0f32; LANES]; 9];
        for (xi, lanes) in inp.iter_mut().enumerate() {
            lanes[..l].copy_from_slice(&m[xi * xs + at + s0..][..l]);
        }
        let mut out = [[0.0f32; LANES]; 4];
        for lane in 0..LANES {
            let y = output_point(std::array::from_fn(|xi| inp[xi][lane]));
            for (o, y) in out.iter_mut().zip(y) {
                o[lane] = y;
            }
        }
        for (q, o) in out.iter().enumerate() {
            if keep[q] {
                for (lane, &val) in o[..l].iter().enumerate() {
                    put(s0 + lane, q, val);
                }
            }
        }
        s0 += l;
    }
}

/// Which of a tile's four outputs fall inside the t.oh × t.ow output.
fn kept(t: Tiles, ty: usize, tx: usize) -> [bool; 4] {
    std::array::from_fn(|q| 2 * ty + q / 2 < t.oh && 2 * tx + q % 2 < t.ow)
}

/// The 2×2 taps of phase (py, px) of a 4×4 filter, [w(py, px), w(py, px+2), w(py+2, px),
/// w(py+2, px+2)], reversed when `flip` (the transposed convolution's).
fn phase_taps(w: &[f32], (py, px): (usize, usize), flip: bool) -> [f32; 4] {
    let t = [
        w[py * 4 + px],
        w[py * 4 + px + 2],
        w[(py + 2) * 4 + px],
        w[(py + 2) * 4 + px + 2],
    ];
    if flip { [t[3], t[2], t[1], t[0]] } else { t }
}

const PHASES: [(usize, usize); 4] = [(0, 0), (0, 1), (1, 0), (1, 1)];

/// Samples per chunk of a batch of `n` with `tiles` tiles per sample: about CHUNK_TILES
/// GEMM columns, the same number of chunks for every thread.
fn chunk_samples(n: usize, tiles: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let per_thread = n.div_ceil(threads).max(1);
    let want = CHUNK_TILES.div_ceil(tiles.max(1)).max(1);
    per_thread.div_ceil(per_thread.div_ceil(want))
}

/// V [9][4·ci][T] of the `ns` samples of x from sample n0: row c·4 + phase, columns (tile,
/// sample). Each channel's samples are interleaved once, padded, with even and odd columns
/// apart, so a phase's 3×3 patch is 9 runs of ns samples.
fn input_transform(g: &ConvGeom, t: Tiles, x: &[f32], n0: usize, ns: usize, v: &mut [f32]) {
    let cols = ns * t.count();
    let xs = 4 * g.ci * cols;
    let plane = g.h * g.w;
    let run = 2 * t.tw + 1;
    let grid = Grid {
        rows: 4 * t.th + 2,
        cols: 2 * run,
        ns,
    };
    let mut buf = Scratch::take(grid.len());
    for c in 0..g.ci {
        let src = &x[(n0 * g.ci + c) * plane..];
        interleave(
            src,
            g.ci * plane,
            (g.h, g.w),
            (g.pad, g.pad),
            grid,
            true,
            &mut buf,
        );
        for (ph, &(py, px)) in PHASES.iter().enumerate() {
            let row = (c * 4 + ph) * cols;
            for ty in 0..t.th {
                for tx in 0..t.tw {
                    let d = std::array::from_fn(|i| {
                        let (r, cc) = (2 * (2 * ty + i / 3) + py, px * run + 2 * tx + i % 3);
                        &buf[grid.at(r, cc)..][..ns]
                    });
                    let at = row + (ty * t.tw + tx) * ns;
                    transform_runs(d, v, xs, at, data_point);
                }
            }
        }
    }
}

/// y = store(conv(x, w)).
pub fn forward(g: &ConvGeom, store: StoreKind, y: &mut [f32], x: &[f32], w: &[f32], extra: &[f32]) {
    let t = Tiles::new(g.oh(), g.ow());
    let (k, co, p, out) = (4 * g.ci, g.co, g.ohw(), g.out_len());
    // U [9][co][4·ci].
    let mut u = Scratch::take(9 * co * k);
    for o in 0..co {
        for c in 0..g.ci {
            let wf = &w[(o * g.ci + c) * 16..][..16];
            for (ph, &phase) in PHASES.iter().enumerate() {
                let f = filter_point(phase_taps(wf, phase, false));
                for (xi, v) in f.into_iter().enumerate() {
                    u[(xi * co + o) * k + c * 4 + ph] = v;
                }
            }
        }
    }
    let nb = chunk_samples(g.n, t.count());
    for_sample_chunks(y, g.n, out, nb, |n0, ys, par| {
        let ns = ys.len() / out;
        let cols = ns * t.count();
        let mut v = Scratch::take(9 * k * cols);
        input_transform(g, t, x, n0, ns, &mut v);
        let mut m = Scratch::take(9 * co * cols);
        for xi in 0..9 {
            sgemm(
                (co, cols, k),
                &mut m[xi * co * cols..][..co * cols],
                (cols, 1),
                false,
                &u[xi * co * k..][..co * k],
                (k, 1),
                &v[xi * k * cols..][..k * cols],
                (cols, 1),
                par,
            );
        }
        for o in 0..co {
            for ty in 0..t.th {
                for tx in 0..t.tw {
                    let at = o * cols + (ty * t.tw + tx) * ns;
                    let first = o * p + 2 * ty * t.ow + 2 * tx;
                    output_runs(&m, co * cols, at, ns, kept(t, ty, tx), |s, q, val| {
                        ys[s * out + first + (q / 2) * t.ow + q % 2] = val;
                    });
                }
            }
        }
        store_chunk(store, ys, extra, n0 * out, co, p);
    });
}

/// One phase (py, px) of dx: the pixels (2(i0 + i) + py − pad, 2(j0 + j) + px − pad) for the
/// tiles' outputs (i, j), each the 2×2 convolution of dy from (i0 − 1, j0 − 1) with the phase's
/// reversed taps.
struct DxPhase {
    phase: (usize, usize),
    i0: usize,
    j0: usize,
    t: Tiles,
}

impl DxPhase {
    /// First index i′ of the phase with 2i′ + q − pad ≥ 0, and how many fall inside `len`.
    fn span(len: usize, pad: usize, q: usize) -> (usize, usize) {
        let first = pad.saturating_sub(q).div_ceil(2);
        let end = (len + pad).saturating_sub(q).div_ceil(2);
        (first, end.saturating_sub(first))
    }

    fn all(g: &ConvGeom) -> Vec<DxPhase> {
        PHASES
            .iter()
            .filter_map(|&(py, px)| {
                let (i0, rows) = Self::span(g.h, g.pad, py);
                let (j0, cols) = Self::span(g.w, g.pad, px);
                (rows > 0 && cols > 0).then(|| DxPhase {
                    phase: (py, px),
                    i0,
                    j0,
                    t: Tiles::new(rows, cols),
                })
            })
            .collect()
    }

    /// Where output (0, 0) of the phase sits in a dx plane of width w.
    fn origin(&self, g: &ConvGeom) -> usize {
        let (py, px) = self.phase;
        (2 * self.i0 + py - g.pad) * g.w + 2 * self.j0 + px - g.pad
    }
}

/// dx = store(convᵀ(dy, w)).
pub fn backward_input(
    g: &ConvGeom,
    store: StoreKind,
    dx: &mut [f32],
    dy: &[f32],
    w: &[f32],
    extra: &[f32],
) {
    let (ci, co, inp, plane) = (g.ci, g.co, g.in_len(), g.h * g.w);
    let (oh, ow) = (g.oh(), g.ow());
    let phases = DxPhase::all(g);
    // U [phase][9][co][ci] (each point's A = Uᵀ [ci, co] read column-major, so these writes
    // run along w's own order).
    let mut u = Scratch::take(4 * 9 * ci * co);
    for (pi, ph) in phases.iter().enumerate() {
        for o in 0..co {
            for c in 0..ci {
                let f = filter_point(phase_taps(&w[(o * ci + c) * 16..][..16], ph.phase, true));
                for (xi, v) in f.into_iter().enumerate() {
                    u[((pi * 9 + xi) * co + o) * ci + c] = v;
                }
            }
        }
    }
    let tiles: usize = phases.iter().map(|ph| ph.t.count()).sum();
    // dy padded by one on top and left (dy[r − 1, c − 1] at (r, c)), as far as any phase reads.
    let reach = |f: fn(&DxPhase) -> usize| phases.iter().map(f).max().unwrap_or(0);
    let rows = reach(|ph| ph.i0 + 2 * ph.t.th + 1);
    let cols_q = reach(|ph| ph.j0 + 2 * ph.t.tw + 1);
    let nb = chunk_samples(g.n, tiles.div_ceil(4));
    for_sample_chunks(dx, g.n, inp, nb, |n0, dxs, par| {
        let ns = dxs.len() / inp;
        let grid = Grid {
            rows,
            cols: cols_q,
            ns,
        };
        let mut q = Scratch::take(grid.len());
        // V [phase][9][co][T_phase], one block per phase.
        let mut v = Scratch::take(9 * co * ns * tiles);
        let starts: Vec<usize> = phases
            .iter()
            .scan(0, |at, ph| {
                let s = *at;
                *at += 9 * co * ns * ph.t.count();
                Some(s)
            })
            .collect();
        for o in 0..co {
            let src = &dy[(n0 * co + o) * oh * ow..];
            interleave(src, co * oh * ow, (oh, ow), (1, 1), grid, false, &mut q);
            for (ph, &start) in phases.iter().zip(&starts) {
                let (t, cols) = (ph.t, ns * ph.t.count());
                let vp = &mut v[start..][..9 * co * cols];
                for ty in 0..t.th {
                    for tx in 0..t.tw {
                        let d = std::array::from_fn(|i| {
                            let (r, c) = (ph.i0 + 2 * ty + i / 3, ph.j0 + 2 * tx + i % 3);
                            &q[grid.at(r, c)..][..ns]
                        });
                        let at = o * cols + (ty * t.tw + tx) * ns;
                        transform_runs(d, vp, co * cols, at, data_point);
                    }
                }
            }
        }
        let most = phases.iter().map(|ph| ph.t.count()).max().unwrap_or(0);
        let mut m = Scratch::take(9 * ci * ns * most);
        for (pi, (ph, &start)) in phases.iter().zip(&starts).enumerate() {
            let (t, cols) = (ph.t, ns * ph.t.count());
            for xi in 0..9 {
                sgemm(
                    (ci, cols, co),
                    &mut m[xi * ci * cols..][..ci * cols],
                    (cols, 1),
                    false,
                    &u[(pi * 9 + xi) * ci * co..][..ci * co],
                    (1, ci),
                    &v[start + xi * co * cols..][..co * cols],
                    (cols, 1),
                    par,
                );
            }
            let origin = ph.origin(g);
            for c in 0..ci {
                for ty in 0..t.th {
                    for tx in 0..t.tw {
                        let at = c * cols + (ty * t.tw + tx) * ns;
                        let first = c * plane + origin + 2 * ty * 2 * g.w + 2 * 2 * tx;
                        output_runs(&m, ci * cols, at, ns, kept(t, ty, tx), |s, q, val| {
                            dxs[s * inp + first + (q / 2) * 2 * g.w + (q % 2) * 2] = val;
                        });
                    }
                }
            }
        }
        store_chunk(store, dxs, extra, n0 * inp, ci, plane);
    });
}

/// part [co, ci, 4, 4] = Σ over the samples `range` of dy ⊗ x (the weight gradient).
pub fn weight_grad_range(
    g: &ConvGeom,
    range: std::ops::Range<usize>,
    part: &mut [f32],
    x: &[f32],
    dy: &[f32],
    par: bool,
) {
    let t = Tiles::new(g.oh(), g.ow());
    let (k, co, ci, tps) = (4 * g.ci, g.co, g.ci, t.count());
    let (oh, ow) = (g.oh(), g.ow());
    let part = &mut part[..co * ci * 16];
    if range.is_empty() {
        part.fill(0.0);
        return;
    }
    let mut acc = Scratch::take(9 * co * k);
    let nb = chunk_samples(range.len(), tps).min(range.len()).max(1);
    let mut n0 = range.start;
    let mut first = true;
    while n0 < range.end {
        let ns = nb.min(range.end - n0);
        let cols = ns * tps;
        let mut v = Scratch::take(9 * k * cols);
        input_transform(g, t, x, n0, ns, &mut v);
        // U [9][co][T]: G d Gᵀ of each 2×2 tile d of dy (zero past the edge).
        let grid = Grid {
            rows: 2 * t.th,
            cols: 2 * t.tw,
            ns,
        };
        let mut q = Scratch::take(grid.len());
        let mut ud = Scratch::take(9 * co * cols);
        for o in 0..co {
            let src = &dy[(n0 * co + o) * oh * ow..];
            interleave(src, co * oh * ow, (oh, ow), (0, 0), grid, false, &mut q);
            for ty in 0..t.th {
                for tx in 0..t.tw {
                    let d = std::array::from_fn(|i| {
                        &q[grid.at(2 * ty + i / 2, 2 * tx + i % 2)..][..ns]
                    });
                    let at = o * cols + (ty * t.tw + tx) * ns;
                    transform_runs(d, &mut ud, co * cols, at, filter_point);
                }
            }
        }
        for xi in 0..9 {
            sgemm(
                (co, k, cols),
                &mut acc[xi * co * k..][..co * k],
                (k, 1),
                !first,
                &ud[xi * co * cols..][..co * cols],
                (cols, 1),
                &v[xi * k * cols..][..k * cols],
                (1, cols),
                par,
            );
        }
        first = false;
        n0 += ns;
    }
    for o in 0..co {
        for c in 0..ci {
            for (ph, &(py, px)) in PHASES.iter().enumerate() {
                let at = o * k + c * 4 + ph;
                let y = output_point(std::array::from_fn(|xi| acc[xi * co * k + at]));
                let wf = &mut part[(o * ci + c) * 16..][..16];
                wf[py * 4 + px] = y[0];
                wf[py * 4 + px + 2] = y[1];
                wf[(py + 2) * 4 + px] = y[2];
                wf[(py + 2) * 4 + px + 2] = y[3];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The Winograd twins against the plain references, called directly (not through
    //! `applies`), on ragged shapes: odd output sizes (a ragged last tile), padding 0–2, input
    //! rows no output reads (their gradient is zero), one sample and several chunks per thread.
    use super::*;
    use crate::backend::Activation;
    use crate::kernels::case::uniform;
    use crate::kernels::conv::{
        conv2d_backward_input_ref, conv2d_backward_weights_ref, conv2d_forward_ref,
    };

    fn geom(n: usize, ci: usize, (h, w): (usize, usize), co: usize, pad: usize) -> ConvGeom {
        ConvGeom {
            n,
            ci,
            h,
            w,
            co,
            kh: 4,
            kw: 4,
            stride: 2,
            pad,
        }
    }

    fn shapes() -> Vec<ConvGeom> {
        vec![
            geom(2, 16, (9, 7), 17, 1),
            geom(3, 17, (9, 8), 16, 0),
            geom(1, 16, (6, 5), 18, 2),
            geom(1, 19, (4, 4), 16, 1),
            // 40 samples per thread of 16 tiles each: two chunks of CHUNK_TILES per thread.
            geom(80, 16, (16, 16), 16, 1),
        ]
    }

    /// Largest |got − want| over (1e-5·√terms + 1e-4·|want|), which must stay below 1.
    fn worst(got: &[f32], want: &[f32], terms: usize) -> f32 {
        assert_eq!(got.len(), want.len());
        got.iter()
            .zip(want)
            .map(|(g, w)| (g - w).abs() / (1e-5 * (terms as f32).sqrt() + 1e-4 * w.abs()))
            .fold(0.0, f32::max)
    }

    #[test]
    fn forward_matches_the_reference() {
        for (i, g) in shapes().into_iter().enumerate() {
            let seed = 10 * i as u64;
            let x = uniform(seed, g.n * g.in_len(), -1.0, 1.0);
            let w = uniform(seed + 1, g.weight_len(), -1.0, 1.0);
            let bias = uniform(seed + 2, g.co, -1.0, 1.0);
            let store = StoreKind::Act {
                bias: true,
                act: Activation::LeakyRelu(0.2),
            };
            let mut got = vec![f32::NAN; g.n * g.out_len()];
            let mut want = got.clone();
            forward(&g, store, &mut got, &x, &w, &bias);
            conv2d_forward_ref(&g, store, &mut want, &x, &w, &bias);
            let e = worst(&got, &want, g.taps());
            assert!(e < 1.0, "{}: error {e} of the tolerance", g.describe());
        }
    }

    #[test]
    fn input_gradient_matches_the_reference() {
        for (i, g) in shapes().into_iter().enumerate() {
            let seed = 10 * i as u64;
            let dy = uniform(seed, g.n * g.out_len(), -1.0, 1.0);
            let w = uniform(seed + 1, g.weight_len(), -1.0, 1.0);
            let y = uniform(seed + 2, g.n * g.in_len(), -1.0, 1.0);
            let store = StoreKind::ActGrad(Activation::Tanh);
            let mut got = vec![f32::NAN; g.n * g.in_len()];
            let mut want = got.clone();
            backward_input(&g, store, &mut got, &dy, &w, &y);
            conv2d_backward_input_ref(&g, store, &mut want, &dy, &w, &y);
            let e = worst(&got, &want, g.co * 16);
            assert!(e < 1.0, "{}: error {e} of the tolerance", g.describe());
        }
    }

    #[test]
    fn weight_gradient_matches_the_reference_whole_split_and_accumulated() {
        for (i, g) in shapes().into_iter().enumerate() {
            let seed = 10 * i as u64;
            let x = uniform(seed, g.n * g.in_len(), -1.0, 1.0);
            let dy = uniform(seed + 1, g.n * g.out_len(), -1.0, 1.0);
            for (splits, accumulate) in [(1, false), (1, true), (g.n.min(3), false)] {
                let start = uniform(seed + 2, splits * g.weight_len(), -1.0, 1.0);
                let (mut got, mut want) = (start.clone(), start);
                super::super::conv_cpu::conv2d_backward_weights_cpu(
                    &g, accumulate, splits, &mut got, &x, &dy,
                );
                conv2d_backward_weights_ref(&g, accumulate, splits, &mut want, &x, &dy);
                let e = worst(&got, &want, g.n * g.ohw());
                let what = format!("{} splits={splits} acc={accumulate}", g.describe());
                assert!(e < 1.0, "{what}: error {e} of the tolerance");
            }
            // The range sum itself, so the test cannot pass through the im2col path.
            let mut part = vec![f32::NAN; g.weight_len()];
            weight_grad_range(&g, 0..g.n, &mut part, &x, &dy, true);
            let mut want = vec![0.0; g.weight_len()];
            conv2d_backward_weights_ref(&g, false, 1, &mut want, &x, &dy);
            let e = worst(&part, &want, g.n * g.ohw());
            assert!(e < 1.0, "{}: range sum error {e}", g.describe());
        }
    }

    #[test]
    fn chosen_for_stride_two_four_by_four_with_enough_channels_per_setting() {
        let ok = geom(2, 16, (8, 8), 16, 1);
        let products = [Product::Forward, Product::InputGrad, Product::WeightGrad];
        let picks = |setting: &str| products.map(|p| chosen(setting, &ok, p));
        assert_eq!(picks(""), [true, false, true]);
        assert_eq!(picks("auto"), [true, false, true]);
        assert_eq!(picks("winograd"), [true, true, true]);
        assert_eq!(picks("im2col"), [false, false, false]);
        let mut stride1 = ok;
        stride1.stride = 1;
        for g in [
            geom(2, 3, (8, 8), 64, 1),
            geom(2, 64, (8, 8), 1, 1),
            stride1,
        ] {
            assert_eq!(products.map(|p| chosen("winograd", &g, p)), [false; 3]);
        }
    }
}

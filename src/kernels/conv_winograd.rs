//! Winograd twins of the stride-2, 4×4 convolutions (DCGAN's) on the CPU: the same functions
//! as `conv_cpu`'s im2col twins with fewer multiply-adds, in one of two schemes
//! (`winograd_schemes`): F(2×2, 2×2), 9/16 of them, or F(4×4, 2×2), 25/64.
//!
//! A stride-2 4×4 convolution is four stride-1 2×2 convolutions summed, one per phase (py, px)
//! of the input: tap (2a + py, 2b + px) of output pixel (i, j) reads input pixel
//! (2(i + a) + py − pad, 2(j + b) + px − pad), pixel (i + a, j + b) of the phase's plane.
//! F(m×m, 2×2) (Lavin & Gray 2016) computes an m×m tile of a 2×2 convolution from an
//! (m+1)×(m+1) patch d and the filter g with (m+1)² multiplies instead of 4m²:
//!
//!   Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A
//!
//! Summed over channels, phases and tiles, each of the P = (m+1)² points ξ is a GEMM:
//!   forward      M_ξ [co, T] = U_ξ [co, 4·ci] · V_ξ(x) [4·ci, T]        (T: m×m output tiles)
//!   input grad   δV_ξ [4·ci, T] = U_ξᵀ [4·ci, co] · E_ξ(dy) [co, T]
//!   weight grad  M_ξ [co, 4·ci] = E_ξ(dy) [co, T] · V_ξ(x)ᵀ [T, 4·ci]
//! The input gradient is the forward run backwards (its adjoint): E = A d Aᵀ of dy's m×m
//! tiles, and each δV's patch B δV Bᵀ is added back where the forward read it. The weight
//! gradient reads the phase's 2×2 taps from the sums with Gᵀ M G. Output sizes that are not a
//! multiple of m pad the last tile with zeros and drop its extra outputs.
//!
//! Samples are interleaved innermost (`Grid`), so every transform runs on vectors of samples,
//! not on one sample's few pixels (dcgan32's planes are 8×8 and 4×4). Chunks of the batch run
//! in parallel as in `conv_cpu`, each GEMM on one core, with buffers from its scratch pool;
//! per call, only the small index tables (`Grid::places`, a plane's worth of positions) and
//! the filter transform's per-thread row lists are allocated.
//!
//! Used for stride 2, 4×4, both channel counts at least MIN_CHANNELS (`chosen`): F(2×2) where
//! its tiles waste little (even outputs: dcgan32's layers, all three products), else F(4×4)
//! for the forward and input gradient (dcgan's 7×7 outputs); `DUEL_CPU_CONV` overrides it
//! (docs/options.md). Measured on the 2-core Zen 5 box (docs/benchmarks.md): dcgan32's
//! 64–256-channel layers at 360–480 GFLOP/s of direct-convolution work with F(2×2), against
//! 290–350 with im2col; dcgan's 64 → 128 layer at 358–405 with F(4×4), against 317–346.

use super::conv::{ConvGeom, StoreKind};
use super::conv_cpu::{Scratch, for_sample_chunks, sgemm, store_chunk};
use super::winograd_lanes::{
    Grid, LANES, arr, deinterleave, interleave, load_lanes, map_lanes, store_lanes, transform_runs,
};
use super::winograd_schemes::{F2, F4, Scheme};
use crate::cpu::simd::wide;
use std::sync::OnceLock;

/// Below this many input or output channels a GEMM of the transform (K = 4·ci or co, M = co
/// or ci) is too thin to beat im2col's one GEMM (dcgan's one- and three-channel layers).
const MIN_CHANNELS: usize = 16;

/// Largest share of wasted work F(2×2, 2×2) is taken at: outputs of odd size pad their last
/// 2×2 tile (dcgan's 7×7 outputs compute 8×8, 31% more, and F(2×2) measured no faster than
/// im2col there).
const F2_MAX_WASTE: f64 = 1.15;

/// Largest share of wasted work F(4×4, 2×2) is taken at, for the forward and input gradient
/// of the layers F(2×2) leaves: dcgan's 7×7 outputs (8×8 computed) ran 15–20% faster than
/// im2col. Its weight gradient (25 GEMMs accumulating a 25-point sum per tap) measured 10–20%
/// slower than im2col there, so the weight gradient takes F(2×2) or im2col.
const F4_MAX_WASTE: f64 = 1.35;

/// `DUEL_CPU_CONV`: `auto` (the default) takes these twins where the tiles waste little
/// (`chosen`), `winograd` wherever the geometry allows, `im2col` nowhere.
fn setting() -> &'static str {
    static SETTING: OnceLock<String> = OnceLock::new();
    SETTING.get_or_init(|| {
        let v = std::env::var("DUEL_CPU_CONV").unwrap_or_default();
        if !["", "auto", "winograd", "im2col"].contains(&v.as_str()) {
            eprintln!("warning: DUEL_CPU_CONV={v} is not auto, winograd or im2col; using auto");
        }
        v
    })
}

/// Whether the forward and input gradient of the convolution `g` run through these twins.
pub fn applies(g: &ConvGeom) -> bool {
    chosen(setting(), g, false)
}

/// Whether the weight gradient of `g` runs through these twins.
pub fn applies_to_weight_grad(g: &ConvGeom) -> bool {
    chosen(setting(), g, true)
}

/// The two schemes (`winograd_schemes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    F2,
    F4,
}

/// `f::<S, P, Q>(args)` in the scheme `which`.
macro_rules! in_scheme {
    ($which:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $which {
            Which::F2 => $f::<F2, 9, 4>($($arg),*),
            Which::F4 => $f::<F4, 25, 16>($($arg),*),
        }
    };
}

/// F(2×2) where its tiles waste at most F2_MAX_WASTE (even outputs), else F(4×4).
fn scheme_for(g: &ConvGeom) -> Which {
    match Tiles::new(2, g.oh(), g.ow()).waste() <= F2_MAX_WASTE {
        true => Which::F2,
        false => Which::F4,
    }
}

/// `applies` (or with `weight_grad`, `applies_to_weight_grad`) under `setting`: stride 2,
/// 4×4, both channel counts at least MIN_CHANNELS, and by default tiles of the scheme
/// `scheme_for` picks that waste little (the weight gradient: F(2×2) only).
fn chosen(setting: &str, g: &ConvGeom, weight_grad: bool) -> bool {
    let fits = g.stride == 2 && g.kh == 4 && g.kw == 4 && g.ci.min(g.co) >= MIN_CHANNELS;
    let little_waste = match scheme_for(g) {
        Which::F2 => true,
        Which::F4 => !weight_grad && Tiles::new(4, g.oh(), g.ow()).waste() <= F4_MAX_WASTE,
    };
    match setting {
        "im2col" => false,
        "winograd" => fits,
        _ => fits && little_waste,
    }
}

/// The m×m tiles of an `oh`×`ow` output of a stride-1 2×2 convolution.
#[derive(Clone, Copy)]
struct Tiles {
    /// Outputs along each side of a tile.
    m: usize,
    oh: usize,
    ow: usize,
    th: usize,
    tw: usize,
}

impl Tiles {
    fn new(m: usize, oh: usize, ow: usize) -> Self {
        Tiles {
            m,
            oh,
            ow,
            th: oh.div_ceil(m),
            tw: ow.div_ceil(m),
        }
    }

    /// Computed outputs over wanted ones (≥ 1: the last tile of a side not a multiple of m
    /// is padded).
    fn waste(&self) -> f64 {
        (self.m * self.m * self.count()) as f64 / (self.oh * self.ow).max(1) as f64
    }

    fn count(&self) -> usize {
        self.th * self.tw
    }
}

/// The tile (ty, tx) whose products are m[ξ·xs + at + s], its outputs inside t.oh × t.ow put
/// in `out`, an [oh·ow] plane of ns interleaved samples.
#[inline(always)]
fn output_runs<S: Scheme<P, Q>, const P: usize, const Q: usize>(
    m: &[f32],
    xs: usize,
    at: usize,
    t: Tiles,
    (ty, tx): (usize, usize),
    out: &mut [f32],
) {
    let ns = out.len() / (t.oh * t.ow);
    let load = |xi: usize, s0: usize, l: usize| load_lanes(&m[xi * xs + at + s0..], l);
    map_lanes(ns, load, S::output, |q, s0, l, o| {
        let m = S::TILE;
        let (i, j) = (m * ty + q / m, m * tx + q % m);
        if i < t.oh && j < t.ow {
            store_lanes(&mut out[(i * t.ow + j) * ns + s0..], o, l);
        }
    });
}

/// acc[pos[i] + s] += (B m Bᵀ)_i for the tile whose products are m[ξ·xs + at + s], its ns
/// samples.
#[inline(always)]
fn patch_grad_runs<S: Scheme<P, Q>, const P: usize, const Q: usize>(
    m: &[f32],
    xs: usize,
    at: usize,
    ns: usize,
    pos: [usize; P],
    acc: &mut [f32],
) {
    let load = |xi: usize, s0: usize, l: usize| load_lanes(&m[xi * xs + at + s0..], l);
    map_lanes(ns, load, S::patch_grad, |i, s0, l, o| {
        for (a, v) in acc[pos[i] + s0..][..l].iter_mut().zip(o) {
            *a += v;
        }
    });
}

/// Where the 2×2 taps of phase (py, px) sit in a 4×4 filter: (py, px), (py, px+2), (py+2, px),
/// (py+2, px+2), row-major.
fn phase_places((py, px): (usize, usize)) -> [usize; 4] {
    let at = py * 4 + px;
    [at, at + 2, at + 8, at + 10]
}

const PHASES: [(usize, usize); 4] = [(0, 0), (0, 1), (1, 0), (1, 1)];

/// Samples per chunk of a batch of `n` with `tiles` tiles per sample: about `chunk_tiles`
/// GEMM columns, the same number of chunks for every thread.
fn chunk_samples(n: usize, tiles: usize, chunk_tiles: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let per_thread = n.div_ceil(threads).max(1);
    let want = chunk_tiles.div_ceil(tiles.max(1)).max(1);
    per_thread.div_ceil(per_thread.div_ceil(want))
}

/// Positions of a phase plane a row of tiles `t` reads: m·tw + 1 (patches overlap by one).
fn phase_run(t: Tiles) -> usize {
    t.m * t.tw + 1
}

/// The padded input rows the tiles `t` read (2·(m·th + 1)), their columns split into even and
/// odd runs of `phase_run`, for `ns` samples.
fn phase_grid(t: Tiles, ns: usize) -> Grid {
    Grid {
        rows: 2 * (t.m * t.th + 1),
        cols: 2 * phase_run(t),
        ns,
    }
}

/// Where value i (row-major) of the (m+1)×(m+1) patch of tile `tile` of phase (py, px) sits in
/// `phase_grid`.
/// Always inlined, with `m` a scheme's constant TILE at every call, so i / (m + 1) compiles to
/// a multiply, not a division.
#[inline(always)]
fn patch_at(
    m: usize,
    t: Tiles,
    grid: Grid,
    (py, px): (usize, usize),
    (ty, tx): (usize, usize),
    i: usize,
) -> usize {
    debug_assert_eq!(m, t.m);
    grid.at(
        2 * (m * ty + i / (m + 1)) + py,
        px * phase_run(t) + m * tx + i % (m + 1),
    )
}

/// V [P][4·ci][T] of the `ns` samples of x from sample n0: row c·4 + phase, columns (tile,
/// sample). Each channel's samples are interleaved once, padded, with even and odd columns
/// apart, so a phase's patch is P runs of ns samples.
#[inline(always)]
fn input_transform<S: Scheme<P, Q>, const P: usize, const Q: usize>(
    g: &ConvGeom,
    t: Tiles,
    x: &[f32],
    n0: usize,
    ns: usize,
    v: &mut [f32],
) {
    let cols = ns * t.count();
    let xs = 4 * g.ci * cols;
    let plane = g.h * g.w;
    let grid = phase_grid(t, ns);
    let mut buf = Scratch::take(grid.len());
    let places = grid.places((g.h, g.w), (g.pad, g.pad), true);
    for c in 0..g.ci {
        let src = &x[(n0 * g.ci + c) * plane..];
        interleave(src, g.ci * plane, &places, grid, &mut buf, plane);
        for (ph, &phase) in PHASES.iter().enumerate() {
            let row = (c * 4 + ph) * cols;
            for ty in 0..t.th {
                for tx in 0..t.tw {
                    let runs: [usize; P] = arr(|i| patch_at(S::TILE, t, grid, phase, (ty, tx), i));
                    let at = row + (ty * t.tw + tx) * ns;
                    transform_runs(&buf, &runs, ns, (v, xs, at), S::data);
                }
            }
        }
    }
}

/// U, the filters' transforms G g Gᵀ of each phase's 2×2 taps, point by point: [P][co][4·ci]
/// (the forward's A), or with `transposed` [P][4·ci][co] (the input gradient's, which its GEMM
/// reads 1.6× faster than U column-major; a row stride other than the row's length also slows
/// the `gemm` crate). As large as a small batch's data transform, so built on every core.
fn filters<S: Scheme<P, Q>, const P: usize, const Q: usize>(
    g: &ConvGeom,
    w: &[f32],
    transposed: bool,
) -> Scratch {
    let (k, co, ci) = (4 * g.ci, g.co, g.ci);
    // Tap i of phase kk mod 4 of the filter (o, channel kk / 4).
    let tap =
        |o: usize, kk: usize, i: usize| w[(o * ci + kk / 4) * 16 + phase_places(PHASES[kk % 4])[i]];
    let mut u = Scratch::take(P * co * k);
    let (rows, cols) = if transposed { (k, co) } else { (co, k) };
    // Each thread gets a range of rows r of every point's block.
    let threads = rayon::current_num_threads().max(1);
    let per = rows.div_ceil(threads).max(1);
    let mut parts: Vec<Vec<&mut [f32]>> = (0..rows.div_ceil(per)).map(|_| Vec::new()).collect();
    for block in u.chunks_mut(rows * cols) {
        for (part, range) in parts.iter_mut().zip(block.chunks_mut(per * cols)) {
            part.push(range);
        }
    }
    let fill = |i: usize, mut points: Vec<&mut [f32]>| {
        wide(
            #[inline(always)]
            || {
                for r in i * per..((i + 1) * per).min(rows) {
                    // A row's columns in vectors of LANES (filters side by side).
                    let load = |t: usize, c0: usize, l: usize| {
                        arr::<f32, LANES>(|lane| {
                            let c = c0 + lane.min(l - 1);
                            if transposed {
                                tap(c, r, t)
                            } else {
                                tap(r, c, t)
                            }
                        })
                    };
                    let at = (r - i * per) * cols;
                    map_lanes(cols, load, S::filter, |xi, c0, l, v| {
                        store_lanes(&mut points[xi][at + c0..], v, l)
                    });
                }
            },
        )
    };
    if P * rows * cols >= crate::cpu::par::PAR_MIN {
        use rayon::prelude::*;
        parts
            .into_par_iter()
            .enumerate()
            .for_each(|(i, p)| fill(i, p));
    } else {
        parts.into_iter().enumerate().for_each(|(i, p)| fill(i, p));
    }
    u
}

/// E [P][co][T] of the `ns` samples of dy from sample n0: A d Aᵀ of each m×m output tile d,
/// zero past the edge; columns (tile, sample).
#[inline(always)]
fn output_grad_transform<S: Scheme<P, Q>, const P: usize, const Q: usize>(
    g: &ConvGeom,
    t: Tiles,
    dy: &[f32],
    n0: usize,
    ns: usize,
    e: &mut [f32],
) {
    let (co, oh, ow, m) = (g.co, g.oh(), g.ow(), S::TILE);
    let cols = ns * t.count();
    let grid = Grid {
        rows: t.m * t.th,
        cols: t.m * t.tw,
        ns,
    };
    let mut q = Scratch::take(grid.len());
    let places = grid.places((oh, ow), (0, 0), false);
    for o in 0..co {
        let src = &dy[(n0 * co + o) * oh * ow..];
        interleave(src, co * oh * ow, &places, grid, &mut q, oh * ow);
        for ty in 0..t.th {
            for tx in 0..t.tw {
                let runs: [usize; Q] = arr(|i| grid.at(m * ty + i / m, m * tx + i % m));
                let at = o * cols + (ty * t.tw + tx) * ns;
                transform_runs(&q, &runs, ns, (e, co * cols, at), S::output_grad);
            }
        }
    }
}

/// out_ξ [rows, cols] = a_ξ [rows, inner] · b_ξ [inner, cols] for the `points` points ξ, each
/// operand's blocks row-major and one after the other.
fn point_products(
    points: usize,
    (rows, inner, cols): (usize, usize, usize),
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    par: bool,
) {
    for xi in 0..points {
        sgemm(
            (rows, cols, inner),
            &mut out[xi * rows * cols..][..rows * cols],
            (cols, 1),
            false,
            &a[xi * rows * inner..][..rows * inner],
            (inner, 1),
            &b[xi * inner * cols..][..inner * cols],
            (cols, 1),
            par,
        );
    }
}

/// y = store(conv(x, w)), in the scheme `scheme_for` picks.
pub fn forward(g: &ConvGeom, store: StoreKind, y: &mut [f32], x: &[f32], w: &[f32], extra: &[f32]) {
    in_scheme!(scheme_for(g), forward_with(g, store, y, x, w, extra))
}

fn forward_with<S: Scheme<P, Q>, const P: usize, const Q: usize>(
    g: &ConvGeom,
    store: StoreKind,
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    extra: &[f32],
) {
    let t = Tiles::new(S::TILE, g.oh(), g.ow());
    let (co, p, out) = (g.co, g.ohw(), g.out_len());
    let u = filters::<S, P, Q>(g, w, false);
    let nb = chunk_samples(g.n, t.count(), S::CHUNK_TILES);
    // `for_sample_chunks`'s own `wide` does not reach the chunk's loops: LLVM leaves a closure
    // this large out of line, and without this `wide` the forward and input gradient of dcgan's
    // D conv2 ran 9% slower (single thread, kernel bench).
    for_sample_chunks(y, g.n, out, nb, |n0, ys, par| {
        wide(
            #[inline(always)]
            || forward_chunk::<S, P, Q>(g, t, &u, x, n0, ys, par),
        );
        store_chunk(store, ys, extra, n0 * out, co, p);
    });
}

/// The forward of the samples from n0 whose outputs are `ys`.
#[inline(always)]
fn forward_chunk<S: Scheme<P, Q>, const P: usize, const Q: usize>(
    g: &ConvGeom,
    t: Tiles,
    u: &[f32],
    x: &[f32],
    n0: usize,
    ys: &mut [f32],
    par: bool,
) {
    let (k, co, p, out) = (4 * g.ci, g.co, g.ohw(), g.out_len());
    let ns = ys.len() / out;
    let cols = ns * t.count();
    let mut v = Scratch::take(P * k * cols);
    input_transform::<S, P, Q>(g, t, x, n0, ns, &mut v);
    let mut m = Scratch::take(P * co * cols);
    point_products(P, (co, k, cols), &mut m, u, &v, par);
    // Channel by channel: the tiles' outputs into an interleaved plane, then out to each
    // sample's plane in y (contiguous writes; scattering them across samples straight from
    // the tiles was 9% of a training iteration).
    let mut plane = Scratch::take(p * ns);
    for o in 0..co {
        for ty in 0..t.th {
            for tx in 0..t.tw {
                let at = o * cols + (ty * t.tw + tx) * ns;
                output_runs::<S, P, Q>(&m, co * cols, at, t, (ty, tx), &mut plane);
            }
        }
        for s in 0..ns {
            let dst = &mut ys[s * out + o * p..][..p];
            for (v, src) in dst.iter_mut().zip(plane[s..].iter().step_by(ns)) {
                *v = *src;
            }
        }
    }
}

/// dx = store(convᵀ(dy, w)): the adjoint of `forward`'s map, run backwards. dy's 2×2 tiles
/// are transformed (A d Aᵀ), multiplied by Uᵀ (one GEMM per point, as many multiply-adds as
/// the forward), and each product's 3×3 patch (B m Bᵀ) is added into its channel's
/// interleaved, phase-split grid where the forward read it, patches overlapping by one row
/// and column; the grid's interior is dx.
pub fn backward_input(
    g: &ConvGeom,
    store: StoreKind,
    dx: &mut [f32],
    dy: &[f32],
    w: &[f32],
    extra: &[f32],
) {
    in_scheme!(
        scheme_for(g),
        backward_input_with(g, store, dx, dy, w, extra)
    )
}

fn backward_input_with<S: Scheme<P, Q>, const P: usize, const Q: usize>(
    g: &ConvGeom,
    store: StoreKind,
    dx: &mut [f32],
    dy: &[f32],
    w: &[f32],
    extra: &[f32],
) {
    let t = Tiles::new(S::TILE, g.oh(), g.ow());
    let (inp, plane) = (g.in_len(), g.h * g.w);
    let ut = filters::<S, P, Q>(g, w, true);
    let nb = chunk_samples(g.n, t.count(), S::CHUNK_TILES);
    // As in `forward_with`: this `wide` is what compiles the chunk's loops wide.
    for_sample_chunks(dx, g.n, inp, nb, |n0, dxs, par| {
        wide(
            #[inline(always)]
            || backward_input_chunk::<S, P, Q>(g, t, &ut, dy, n0, dxs, par),
        );
        store_chunk(store, dxs, extra, n0 * inp, g.ci, plane);
    });
}

/// The input gradient of the samples from n0 whose input gradients are `dxs`.
#[inline(always)]
fn backward_input_chunk<S: Scheme<P, Q>, const P: usize, const Q: usize>(
    g: &ConvGeom,
    t: Tiles,
    ut: &[f32],
    dy: &[f32],
    n0: usize,
    dxs: &mut [f32],
    par: bool,
) {
    let (k, co, inp, plane) = (4 * g.ci, g.co, g.in_len(), g.h * g.w);
    let ns = dxs.len() / inp;
    let cols = ns * t.count();
    let mut e = Scratch::take(P * co * cols);
    output_grad_transform::<S, P, Q>(g, t, dy, n0, ns, &mut e);
    let mut dv = Scratch::take(P * k * cols);
    point_products(P, (k, co, cols), &mut dv, ut, &e, par);
    let grid = phase_grid(t, ns);
    let mut acc = Scratch::take(grid.len());
    let places = grid.places((g.h, g.w), (g.pad, g.pad), true);
    for c in 0..g.ci {
        acc.fill(0.0);
        for (ph, &phase) in PHASES.iter().enumerate() {
            for ty in 0..t.th {
                for tx in 0..t.tw {
                    let at = (c * 4 + ph) * cols + (ty * t.tw + tx) * ns;
                    let pos = arr(|i| patch_at(S::TILE, t, grid, phase, (ty, tx), i));
                    patch_grad_runs::<S, P, Q>(&dv, k * cols, at, ns, pos, &mut acc);
                }
            }
        }
        deinterleave(&acc, &places, grid, &mut dxs[c * plane..], inp);
    }
}

/// part [co, ci, 4, 4] = Σ over the samples `range` of dy ⊗ x (the weight gradient), in the
/// scheme `scheme_for` picks.
pub fn weight_grad_range(
    g: &ConvGeom,
    range: std::ops::Range<usize>,
    part: &mut [f32],
    x: &[f32],
    dy: &[f32],
    par: bool,
) {
    in_scheme!(scheme_for(g), weight_grad_with(g, range, part, x, dy, par))
}

fn weight_grad_with<S: Scheme<P, Q>, const P: usize, const Q: usize>(
    g: &ConvGeom,
    range: std::ops::Range<usize>,
    part: &mut [f32],
    x: &[f32],
    dy: &[f32],
    par: bool,
) {
    let t = Tiles::new(S::TILE, g.oh(), g.ow());
    let (k, co, ci, tps) = (4 * g.ci, g.co, g.ci, t.count());
    let part = &mut part[..co * ci * 16];
    if range.is_empty() {
        part.fill(0.0);
        return;
    }
    let mut acc = Scratch::take(P * co * k);
    let nb = chunk_samples(range.len(), tps, S::CHUNK_TILES)
        .min(range.len())
        .max(1);
    let mut n0 = range.start;
    let mut first = true;
    while n0 < range.end {
        let ns = nb.min(range.end - n0);
        let cols = ns * tps;
        let mut v = Scratch::take(P * k * cols);
        let mut ud = Scratch::take(P * co * cols);
        wide(
            #[inline(always)]
            || {
                input_transform::<S, P, Q>(g, t, x, n0, ns, &mut v);
                output_grad_transform::<S, P, Q>(g, t, dy, n0, ns, &mut ud);
            },
        );
        for xi in 0..P {
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
            for (ph, &phase) in PHASES.iter().enumerate() {
                let at = o * k + c * 4 + ph;
                let y = S::taps(arr(|xi| acc[xi * co * k + at]));
                let wf = &mut part[(o * ci + c) * 16..][..16];
                for (i, v) in phase_places(phase).into_iter().zip(y) {
                    wf[i] = v;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "conv_winograd_tests.rs"]
mod tests;

//! The data layout of the CPU Winograd convolutions (`conv_winograd`): samples interleaved
//! innermost in small grids (`Grid`, `interleave`, `deinterleave`), so every transform works
//! on vectors of LANES samples (`map_lanes`, `transform_runs`) rather than on one sample's few
//! pixels, and the fixed-size helpers that keep those vectors in registers.

/// Positions of `ns` interleaved samples: (r, c, s) at (r·cols + c)·ns + s, so every
/// transform below works on runs of ns samples (vectors), not on one sample's few pixels.
#[derive(Clone, Copy)]
pub(super) struct Grid {
    pub rows: usize,
    pub cols: usize,
    pub ns: usize,
}

impl Grid {
    pub fn len(&self) -> usize {
        self.rows * self.cols * self.ns
    }

    pub fn at(&self, r: usize, c: usize) -> usize {
        (r * self.cols + c) * self.ns
    }

    /// The grid column of plane column `cc`: itself, or with `split` (even columns, then odd)
    /// (cc mod 2)·cols/2 + ⌊cc/2⌋; None past the grid.
    pub fn col(&self, cc: usize, split: bool) -> Option<usize> {
        let half = self.cols / 2;
        match split {
            true if cc / 2 < half => Some((cc % 2) * half + cc / 2),
            false if cc < self.cols => Some(cc),
            _ => None,
        }
    }

    /// For each pixel (ih, iw) of an [h, w] plane, where sample 0 of it sits in the grid, at
    /// position (ih + dr, col(iw + dc)); usize::MAX past the grid.
    pub fn places(
        &self,
        (h, w): (usize, usize),
        (dr, dc): (usize, usize),
        split: bool,
    ) -> Vec<usize> {
        let mut at = Vec::with_capacity(h * w);
        for ih in 0..h {
            for iw in 0..w {
                let col = (ih + dr < self.rows).then(|| self.col(iw + dc, split));
                at.push(col.flatten().map_or(usize::MAX, |c| self.at(ih + dr, c)));
            }
        }
        at
    }
}

/// dst = the `grid.ns` planes of src (sample s's at s·stride) put at `places` (`Grid::places`),
/// zero elsewhere. Sample by sample, so the reads run along each plane; the writes stay in the
/// grid, which is small.
#[inline(always)]
pub(super) fn interleave(
    src: &[f32],
    stride: usize,
    places: &[usize],
    grid: Grid,
    dst: &mut [f32],
    ahead: usize,
) {
    let dst = &mut dst[..grid.len()];
    dst.fill(0.0);
    for s in 0..grid.ns {
        if ahead > 0 {
            prefetch(src, s * stride + ahead, places.len());
        }
        let plane = &src[s * stride..][..places.len()];
        for (&at, &v) in places.iter().zip(plane) {
            if at != usize::MAX {
                dst[at + s] = v;
            }
        }
    }
}

/// Asks the cache for src[at..at + len] (as far as src goes): the planes the next call of
/// `interleave` reads are short runs 50 KB apart, too short for the hardware prefetcher, and
/// waiting for them was most of `interleave`'s time.
#[inline(always)]
pub(super) fn prefetch(src: &[f32], at: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let end = (at + len).min(src.len());
        for i in (at.min(end)..end).step_by(16) {
            // SAFETY: i < src.len(); a prefetch neither reads nor faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(src.as_ptr().add(i).cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (src, at, len);
}

/// The adjoint of `interleave`: sample s's plane of dst (at s·stride) = the grid's values at
/// `places`, zero past the grid.
#[inline(always)]
pub(super) fn deinterleave(
    src: &[f32],
    places: &[usize],
    grid: Grid,
    dst: &mut [f32],
    stride: usize,
) {
    // Sample by sample: the writes run along each plane (writing a pixel's run of samples at
    // once scatters across planes 64 KB apart, 64% of the input gradient's own time).
    for s in 0..grid.ns {
        let plane = &mut dst[s * stride..][..places.len()];
        for (&at, v) in places.iter().zip(plane) {
            *v = if at == usize::MAX { 0.0 } else { src[at + s] };
        }
    }
}

/// Samples a transform handles at once: one AVX-512 vector, filled from the runs and worked
/// on as fixed-size arrays so the compiler keeps them in registers.
pub(super) const LANES: usize = 16;

/// [f(0), …, f(N − 1)], always inlined: `std::array::from_fn` runs through a closure that
/// was left out of line in the hot loops here (7% of a training iteration in calls).
#[inline(always)]
pub(super) fn arr<T: Copy + Default, const N: usize>(f: impl Fn(usize) -> T) -> [T; N] {
    let mut a = [T::default(); N];
    for (i, v) in a.iter_mut().enumerate() {
        *v = f(i);
    }
    a
}

/// The first `l` ≤ LANES values of src; a whole vector as one fixed-size copy (a
/// variable-length copy_from_slice is a memmove call, 7% of a convolution).
#[inline(always)]
pub(super) fn load_lanes(src: &[f32], l: usize) -> [f32; LANES] {
    if l == LANES {
        src[..LANES].try_into().expect("LANES values")
    } else {
        let mut v = [0.0; LANES];
        v[..l].copy_from_slice(&src[..l]);
        v
    }
}

/// dst[..l] = v[..l], as `load_lanes`.
#[inline(always)]
pub(super) fn store_lanes(dst: &mut [f32], v: &[f32; LANES], l: usize) {
    if l == LANES {
        let d: &mut [f32; LANES] = (&mut dst[..LANES]).try_into().expect("LANES values");
        *d = *v;
    } else {
        dst[..l].copy_from_slice(&v[..l]);
    }
}

/// The ns samples in vectors of LANES: output j = f(inputs)_j lane by lane, where
/// `load(i, s0, l)` gives input i's l lanes from sample s0 and `store(j, s0, l, lanes)` takes
/// output j's.
#[inline(always)]
pub(super) fn map_lanes<const N: usize, const M: usize>(
    ns: usize,
    load: impl Fn(usize, usize, usize) -> [f32; LANES],
    f: impl Fn([f32; N]) -> [f32; M],
    mut store: impl FnMut(usize, usize, usize, &[f32; LANES]),
) {
    let mut s0 = 0;
    while s0 < ns {
        let l = LANES.min(ns - s0);
        // Filled in place: built by `arr` and returned, F(4×4)'s 25 vectors (1.6 KB) were
        // moved with a memcpy call each time (3% of a dcgan iteration).
        let mut inp = [[0.0f32; LANES]; N];
        for (i, v) in inp.iter_mut().enumerate() {
            *v = load(i, s0, l);
        }
        let mut out = [[0.0f32; LANES]; M];
        for lane in 0..LANES {
            let r = f(arr(|i| inp[i][lane]));
            for (o, r) in out.iter_mut().zip(r) {
                o[lane] = r;
            }
        }
        for (j, o) in out.iter().enumerate() {
            store(j, s0, l, o);
        }
        s0 += l;
    }
}

/// v[ξ·xs + at + s] = f(the N runs src[runs[i]..][..ns] at sample s)_ξ. The runs are given
/// as offsets and by reference: F(4×4)'s 25 slices passed by value were a memcpy per tile.
#[inline(always)]
pub(super) fn transform_runs<const N: usize, const M: usize>(
    src: &[f32],
    runs: &[usize; N],
    ns: usize,
    (v, xs, at): (&mut [f32], usize, usize),
    f: impl Fn([f32; N]) -> [f32; M],
) {
    let load = |i: usize, s0: usize, l: usize| load_lanes(&src[runs[i] + s0..], l);
    map_lanes(ns, load, f, |xi, s0, l, o| {
        store_lanes(&mut v[xi * xs + at + s0..], o, l)
    });
}

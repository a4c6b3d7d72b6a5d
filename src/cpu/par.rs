//! Splitting elementwise CPU work over the rayon pool.

use super::simd::wide;
use rayon::prelude::*;

/// Elementwise work below this many elements stays on the calling thread: handing a chunk to
/// the rayon pool costs a few microseconds, as much as ~16K cheap elements.
pub const PAR_MIN: usize = 1 << 14;
/// The same for elements that cost ~30 ns each (Philox draws, Box–Muller).
pub const PAR_MIN_RNG: usize = 1 << 11;

/// Chunk length splitting `n` elements over the pool, or None to run on this thread.
pub fn par_chunk(n: usize, min: usize) -> Option<usize> {
    let threads = rayon::current_num_threads();
    (n >= min && threads > 1).then(|| n.div_ceil(threads).max(1))
}

/// Runs `f(start, chunk)` over `out` in parallel chunks when it is large enough.
/// Each chunk runs at the CPU's vector level (`simd::wide`).
pub fn for_chunks<T: Send>(out: &mut [T], min: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let run = |start: usize, o: &mut [T]| {
        wide(
            #[inline(always)]
            || f(start, o),
        )
    };
    match par_chunk(out.len(), min) {
        Some(c) => out
            .par_chunks_mut(c)
            .enumerate()
            .for_each(|(i, o)| run(i * c, o)),
        None => run(0, out),
    }
}

/// Runs `f(first plane, planes of out)` over `out`'s planes of `plane_len`, split over the pool.
/// Each split runs at the CPU's vector level (`simd::wide`).
pub fn for_planes(out: &mut [f32], plane_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let run = |first: usize, o: &mut [f32]| {
        wide(
            #[inline(always)]
            || f(first, o),
        )
    };
    match par_chunk(out.len(), PAR_MIN) {
        Some(c) => {
            let planes = c.div_ceil(plane_len);
            out.par_chunks_mut(planes * plane_len)
                .enumerate()
                .for_each(|(i, o)| run(i * planes, o));
        }
        None => run(0, out),
    }
}

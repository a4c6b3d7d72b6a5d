//! Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11).
//!
//! A random word is a pure function of (seed, stream, counter), so the GPU (`shaders/philox.wgsl`)
//! and this CPU twin produce the same bits for the same triple, any element can be drawn in any
//! order, and resuming a run only needs the counters.

pub mod normal;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Where a kernel's random numbers come from: element `i` of a call uses counter `counter + i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RngKey {
    pub seed: u64,
    pub stream: u32,
    pub counter: u64,
}

impl RngKey {
    pub fn new(seed: u64, stream: u32, counter: u64) -> Self {
        Self {
            seed,
            stream,
            counter,
        }
    }
}

fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32 with 10 rounds: counter block `c` under key `k`.
pub fn philox4x32(mut c: [u32; 4], mut k: [u32; 2]) -> [u32; 4] {
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The four random words of element `i` of a call keyed by `key`.
pub fn words(key: RngKey, i: u64) -> [u32; 4] {
    let ctr = key.counter.wrapping_add(i);
    philox4x32(
        [ctr as u32, (ctr >> 32) as u32, key.stream, 0],
        [key.seed as u32, (key.seed >> 32) as u32],
    )
}

/// Uniform in [0, 1) with 24 random bits: exact in f32, so identical on every backend.
pub fn unit_open_high(w: u32) -> f32 {
    (w >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Uniform in (0, 1]: the Box–Muller radius takes its log, which must never see 0.
pub fn unit_open_low(w: u32) -> f32 {
    ((w >> 8) + 1) as f32 * (1.0 / 16_777_216.0)
}

pub fn uniform(key: RngKey, i: u64, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * unit_open_high(words(key, i)[0])
}

/// N(0, 1) by Box–Muller from the first two words of the element's block, in integer arithmetic
/// (see `normal`'s module): the same bits on the CPU and on every conforming GPU.
pub fn normal(key: RngKey, i: u64) -> f32 {
    let w = words(key, i);
    normal::normal_from_words(w[0], w[1])
}

/// out[j] = normal(key, first + j), eight at a time (`normal::normals_from_words`): the same
/// values, 4–5× faster than one by one.
pub fn fill_normal(key: RngKey, first: u64, out: &mut [f32]) {
    const L: usize = 8;
    let done = out.len() / L * L;
    let mut chunks = out.chunks_exact_mut(L);
    for (c, chunk) in chunks.by_ref().enumerate() {
        let w: [[u32; 4]; L] = std::array::from_fn(|l| words(key, first + (c * L + l) as u64));
        chunk.copy_from_slice(&normal::normals_from_words(
            w.map(|w| w[0]),
            w.map(|w| w[1]),
        ));
    }
    for (j, v) in chunks.into_remainder().iter_mut().enumerate() {
        *v = normal(key, first + (done + j) as u64);
    }
}

/// Uniform integer in [0, n): the high word of w·n (Lemire's multiply-shift, no modulo bias worth
/// measuring for n far below 2^32).
pub fn index(key: RngKey, i: u64, n: u32) -> u32 {
    mulhilo(words(key, i)[0], n).0
}

/// Streams keep independent uses of one seed apart.
pub mod stream {
    pub const INIT: u32 = 1;
    pub const NOISE: u32 = 2;
    pub const BATCH: u32 = 3;
    pub const DROPOUT: u32 = 4;
    pub const SAMPLE: u32 = 5;
    /// The noise batches that recompute batch-norm statistics for the averaged generator.
    pub const STANDING: u32 = 6;
    /// WGAN-GP's interpolation weights ε (one per sample).
    pub const PENALTY: u32 = 7;
    /// The classes a conditional G is asked for in training (one per fake sample).
    pub const CLASS: u32 = 8;
    /// The digits composed into each Stacked MNIST image.
    pub const STACKED_MNIST: u32 = 16;
    /// The feature network's training: batch order, shifts of the digits, initialisation.
    pub const FEATURES: u32 = 17;
    pub const TEST: u32 = 99;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_known_answer() {
        // Random123 kat_vectors: philox4x32_10, counter and key all zero / all ones.
        assert_eq!(
            philox4x32([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
    }

    #[test]
    fn fill_normal_draws_each_element_as_normal_does() {
        let key = RngKey::new(9, stream::TEST, 1 << 40);
        for (first, len) in [(0u64, 0usize), (0, 7), (3, 8), (5, 29), (1 << 33, 64)] {
            let mut out = vec![f32::NAN; len];
            fill_normal(key, first, &mut out);
            for (j, v) in out.iter().enumerate() {
                assert_eq!(
                    v.to_bits(),
                    normal(key, first + j as u64).to_bits(),
                    "{first}+{j}"
                );
            }
        }
    }

    #[test]
    fn normal_moments() {
        let key = RngKey::new(7, stream::TEST, 0);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|i| normal(key, i) as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
        assert!(xs.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn extremes_are_finite() {
        assert_eq!(unit_open_low(0), 1.0 / 16_777_216.0);
        assert_eq!(unit_open_low(u32::MAX), 1.0);
        assert!(unit_open_high(u32::MAX) < 1.0);
        assert!((-2.0 * unit_open_low(0).ln()).sqrt().is_finite());
    }
}

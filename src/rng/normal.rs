//! N(0, 1) by Box–Muller in integer arithmetic only, so that the GPU (`shaders/normal.wgsl`) and
//! the CPU produce the same bits on every conforming adapter. WGSL lets `log` err by 2⁻²¹ and
//! `cos` by 2⁻¹¹ (absolute) and a compiler fuse `a·b + c`; integer operations are exact, and the
//! result's f32 bits are assembled by hand, so nothing is left to an adapter's builtins.
//!
//! Fixed-point formats: Qm.n is an unsigned integer holding value · 2ⁿ. From the element's words
//! w0, w1: u = a / 2²⁴ with a = (w0 >> 8) + 1 in [1, 2²⁴]; θ = 2π · k / 2²⁴ with k = w1 >> 8;
//! z = sqrt(−2 ln u) · cos θ = sqrt(2 ln 2) · sqrt(−log2 u) · cos θ.
//! Error against the exact Box–Muller of the same a and k (tests below, and `normal_error_bound`
//! in tests/kernels_gpu_vs_cpu.rs): below 4e-7 absolute for every draw.

/// sqrt(2 ln 2) in Q1.31.
const SQRT_2LN2: u32 = 2_528_468_770;
/// π/2 in Q1.31.
const HALF_PI: u32 = 3_373_259_426;
/// 1 in Q1.31.
const ONE: u32 = 1 << 31;
/// 1/2!, 1/4!, …, 1/10! in Q1.31 (cos), and 1/3!, …, 1/11! (sin): Taylor terms past these are
/// below 1.2e-10 on [0, π/4].
const COS: [u32; 5] = [1_073_741_824, 89_478_485, 2_982_616, 53_261, 592];
const SIN: [u32; 5] = [357_913_941, 17_895_697, 426_088, 5_918, 54];

/// (a · b) >> 31 of two Q1.31 values, truncated (the callers keep the product below 2³²).
fn q31_mul(a: u32, b: u32) -> u32 {
    ((a as u64 * b as u64) >> 31) as u32
}

/// −log2(a / 2²⁴) in Q5.32, for a in [1, 2²⁴]: the exponent, then 32 fraction bits of log2 of the
/// mantissa by repeated squaring (each squaring that reaches 2 is a 1 bit). Branch-free: the bits
/// are random, and a branch on each was mispredicted half the time.
pub fn neg_log2_q32(a: u32) -> u64 {
    neg_log2_lanes([a])[0]
}

/// `neg_log2_q32` of L values at once: the 32 squarings of one value form a dependency chain,
/// so L independent chains keep the multiplier busy (and vectorise).
#[inline(always)]
fn neg_log2_lanes<const L: usize>(a: [u32; L]) -> [u64; L] {
    let e = a.map(|a| 31 - a.leading_zeros());
    let mut m: [u32; L] = std::array::from_fn(|l| a[l] << (31 - e[l])); // Q1.31, in [1, 2)
    let mut frac = [0u32; L];
    for bit in (0..32).rev() {
        for l in 0..L {
            let p = m[l] as u64 * m[l] as u64; // m² in Q2.62
            let top = (p >> 63) as u32;
            frac[l] |= top << bit;
            m[l] = (p >> (31 + top)) as u32; // m²/2 when it reached 2, else m²
        }
    }
    std::array::from_fn(|l| (((24 - e[l]) as u64) << 32) - frac[l] as u64)
}

/// ⌊√v⌋ for v < 2⁶³, exactly: f64's square root is within one of it, then corrected.
fn isqrt(v: u64) -> u32 {
    let mut r = (v as f64).sqrt() as u64;
    while r * r > v {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= v {
        r += 1;
    }
    r as u32
}

/// cos θ for θ = 2π · k / 2²⁴ (k < 2²⁴): |cos θ| in Q1.31 and whether it is negative.
pub fn cos_q31(k: u32) -> (u32, bool) {
    let quadrant = k >> 22;
    let t = k & 0x3F_FFFF; // φ = π/2 · t / 2²², θ = quadrant · π/2 + φ
    // On (π/4, π/2) use the complement: cos φ = sin(π/2 − φ).
    let (t, swap) = if t > 1 << 21 {
        ((1 << 22) - t, true)
    } else {
        (t, false)
    };
    let x = ((((t as u64) << 10) * HALF_PI as u64) >> 32) as u32; // φ in Q1.31, ≤ π/4
    let y = q31_mul(x, x);
    let horner = |c: &[u32; 5]| {
        let mut s = c[4];
        for &ci in c[..4].iter().rev() {
            s = ci - q31_mul(y, s);
        }
        ONE - q31_mul(y, s)
    };
    let cos = horner(&COS);
    let sin = q31_mul(x, horner(&SIN));
    let (cos_phi, sin_phi) = if swap { (sin, cos) } else { (cos, sin) };
    // cos(θ) by quadrant: cos φ, −sin φ, −cos φ, sin φ.
    let magnitude = if quadrant.is_multiple_of(2) {
        cos_phi
    } else {
        sin_phi
    };
    (magnitude, quadrant == 1 || quadrant == 2)
}

/// The f32 nearest to magnitude / 2²⁹ (ties away from zero), with the sign, built bit by bit.
pub fn q29_to_f32(magnitude: u32, negative: bool) -> f32 {
    if magnitude == 0 {
        return 0.0;
    }
    let lead = 31 - magnitude.leading_zeros();
    let (mut mant, mut exp) = if lead > 23 {
        let sh = lead - 23;
        ((magnitude >> sh) + ((magnitude >> (sh - 1)) & 1), lead)
    } else {
        (magnitude << (23 - lead), lead)
    };
    if mant == 1 << 24 {
        mant >>= 1;
        exp += 1;
    }
    f32::from_bits((negative as u32) << 31 | (exp + 127 - 29) << 23 | (mant & 0x7F_FFFF))
}

/// N(0, 1) from two random words.
pub fn normal_from_words(w0: u32, w1: u32) -> f32 {
    normals_from_words([w0], [w1])[0]
}

/// `normal_from_words` of L pairs of words at once (see `neg_log2_lanes`).
#[inline(always)]
pub fn normals_from_words<const L: usize>(w0: [u32; L], w1: [u32; L]) -> [f32; L] {
    let neg_log2 = neg_log2_lanes(w0.map(|w| (w >> 8) + 1));
    std::array::from_fn(|l| {
        // sqrt(−log2 u) · 2²⁹ = sqrt(−log2 u in Q5.32 · 2²⁶): below 2⁶³ and 2³² respectively.
        let root = isqrt(neg_log2[l] << 26);
        let radius = q31_mul(root, SQRT_2LN2); // Q3.29, below 5.8
        let (c, negative) = cos_q31(w1[l] >> 8);
        q29_to_f32(q31_mul(radius, c), negative)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(w0: u32, w1: u32) -> f64 {
        let u = ((w0 >> 8) + 1) as f64 / 16_777_216.0;
        let theta = std::f64::consts::TAU * (w1 >> 8) as f64 / 16_777_216.0;
        (-2.0 * u.ln()).sqrt() * theta.cos()
    }

    #[test]
    fn constants_are_their_values() {
        let q = |v: f64| (v * 2f64.powi(31)).round() as u32;
        assert_eq!(SQRT_2LN2, q((2.0 * 2f64.ln()).sqrt()));
        assert_eq!(HALF_PI, q(std::f64::consts::FRAC_PI_2));
        let fact = |n: u32| (1..=n).map(f64::from).product::<f64>();
        for (i, (&c, &s)) in COS.iter().zip(&SIN).enumerate() {
            let n = 2 * i as u32 + 2;
            assert_eq!(c, q(1.0 / fact(n)), "1/{n}!");
            assert_eq!(s, q(1.0 / fact(n + 1)), "1/{}!", n + 1);
        }
    }

    #[test]
    fn pieces_match_f64() {
        for a in [1u32, 2, 3, 1000, 1 << 23, (1 << 24) - 1, 1 << 24] {
            let want = -(a as f64 / 16_777_216.0).log2();
            let got = neg_log2_q32(a) as f64 / 2f64.powi(32);
            assert!((got - want).abs() < 4e-9, "−log2 of {a}: {got} vs {want}");
        }
        for k in (0..1u32 << 24)
            .step_by(4099)
            .chain([0, 1 << 21, 1 << 22, (1 << 24) - 1])
        {
            let (m, neg) = cos_q31(k);
            let got = m as f64 / 2f64.powi(31) * if neg { -1.0 } else { 1.0 };
            let want = (std::f64::consts::TAU * k as f64 / 16_777_216.0).cos();
            assert!((got - want).abs() < 3e-9, "cos at {k}: {got} vs {want}");
        }
        assert_eq!(q29_to_f32(1 << 29, false), 1.0);
        assert_eq!(q29_to_f32(3 << 28, true), -1.5);
        assert_eq!(q29_to_f32(u32::MAX, false), 8.0); // rounds up into the next binade
        assert_eq!(q29_to_f32(1, false), 2f32.powi(-29));
    }

    #[test]
    fn isqrt_is_the_integer_square_root() {
        let key = crate::rng::RngKey::new(5, crate::rng::stream::TEST, 0);
        let random = (0..100_000u64).map(|i| {
            let w = crate::rng::words(key, i);
            ((w[0] as u64) << 32 | w[1] as u64) >> (w[2] % 64).max(1)
        });
        // Squares and their neighbours, where f64's rounding could land on either side.
        let squares = [1u64, 2, 3, 1 << 20, 3_037_000_499, (1 << 31) - 1, 1 << 31]
            .into_iter()
            .flat_map(|r| [r * r - 1, r * r, r * r + 1]);
        for v in random.chain(squares).chain([0, 1, (1 << 63) - 1]) {
            assert_eq!(isqrt(v) as u64, v.isqrt(), "isqrt({v})");
        }
    }

    #[test]
    fn lanes_give_the_single_values() {
        let key = crate::rng::RngKey::new(3, crate::rng::stream::TEST, 0);
        let w: [[u32; 4]; 8] = std::array::from_fn(|i| crate::rng::words(key, i as u64));
        let (w0, w1) = (w.map(|w| w[0]), w.map(|w| w[1]));
        let many = normals_from_words(w0, w1);
        for l in 0..8 {
            assert_eq!(many[l].to_bits(), normal_from_words(w0[l], w1[l]).to_bits());
        }
        let a = [1u32, 2, 77, 1 << 23, (1 << 24) - 1, 1 << 24, 3, 5];
        assert_eq!(neg_log2_lanes(a), a.map(neg_log2_q32));
    }

    #[test]
    fn draws_are_within_4e_7_of_exact_box_muller() {
        let key = crate::rng::RngKey::new(11, crate::rng::stream::TEST, 0);
        let edges = [0u32, 255, u32::MAX, 1 << 31, (1 << 30) + 77];
        let words = (0..300_000u64)
            .map(|i| {
                let w = crate::rng::words(key, i);
                (w[0], w[1])
            })
            .chain(
                edges
                    .iter()
                    .flat_map(|&a| edges.iter().map(move |&b| (a, b))),
            );
        for (w0, w1) in words {
            let err = (normal_from_words(w0, w1) as f64 - exact(w0, w1)).abs();
            assert!(err < 4e-7, "words {w0:#x} {w1:#x}: error {err}");
        }
    }
}

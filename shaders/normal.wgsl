// N(0, 1) by Box–Muller in integer arithmetic only: the twin of src/rng/normal.rs, bit for bit on
// every conforming adapter (WGSL's log and cos may err by 2^-21 and 2^-11, and a compiler may fuse
// a*b + c; integer operations are exact). Needs philox.wgsl (philox_mulhilo) before it.
// Qm.n: an unsigned integer holding value * 2^n.

const NORMAL_SQRT_2LN2: u32 = 2528468770u;  // sqrt(2 ln 2), Q1.31
const NORMAL_HALF_PI: u32 = 3373259426u;    // π/2, Q1.31
const NORMAL_ONE: u32 = 0x80000000u;        // 1, Q1.31

// (a * b) >> 31 of two Q1.31 values, truncated.
fn q31_mul(a: u32, b: u32) -> u32 {
    let prod = philox_mulhilo(a, b);
    return (prod.x << 1u) | (prod.y >> 31u);
}

// -log2(a / 2^24) in Q5.32 as (high, low) words, for a in [1, 2^24]: the exponent, then 32
// fraction bits of log2 of the mantissa by repeated squaring.
fn normal_neg_log2(a: u32) -> vec2<u32> {
    let e = 31u - countLeadingZeros(a);
    var m = a << (31u - e);
    var frac = 0u;
    for (var bit = 31i; bit >= 0i; bit--) {
        let prod = philox_mulhilo(m, m);
        if prod.x >= 0x80000000u {
            frac |= 1u << u32(bit);
            m = prod.x;
        } else {
            m = (prod.x << 1u) | (prod.y >> 31u);
        }
    }
    // (24 - e) * 2^32 - frac
    return vec2<u32>(24u - e - select(0u, 1u, frac != 0u), 0u - frac);
}

// floor(sqrt(hi * 2^32 + lo)), one result bit at a time.
fn normal_isqrt(hi: u32, lo: u32) -> u32 {
    var r = 0u;
    for (var bit = 31i; bit >= 0i; bit--) {
        let c = r | (1u << u32(bit));
        let prod = philox_mulhilo(c, c);
        if prod.x < hi || (prod.x == hi && prod.y <= lo) {
            r = c;
        }
    }
    return r;
}

// 1 - y*(c0 - y*(c1 - y*(c2 - y*(c3 - y*c4)))) in Q1.31.
fn normal_horner(y: u32, c0: u32, c1: u32, c2: u32, c3: u32, c4: u32) -> u32 {
    var s = c3 - q31_mul(y, c4);
    s = c2 - q31_mul(y, s);
    s = c1 - q31_mul(y, s);
    s = c0 - q31_mul(y, s);
    return NORMAL_ONE - q31_mul(y, s);
}

// cos(2π k / 2^24) for k < 2^24: (|cos| in Q1.31, 1 if negative).
fn normal_cos(k: u32) -> vec2<u32> {
    let quadrant = k >> 22u;
    var t = k & 0x3FFFFFu;
    let swap = t > (1u << 21u);
    if swap {
        t = (1u << 22u) - t;
    }
    let x = philox_mulhilo(t << 10u, NORMAL_HALF_PI).x;  // φ in Q1.31, ≤ π/4
    let y = q31_mul(x, x);
    let c = normal_horner(y, 1073741824u, 89478485u, 2982616u, 53261u, 592u);
    let s = q31_mul(x, normal_horner(y, 357913941u, 17895697u, 426088u, 5918u, 54u));
    let cos_phi = select(c, s, swap);
    let sin_phi = select(s, c, swap);
    let magnitude = select(sin_phi, cos_phi, quadrant % 2u == 0u);
    return vec2<u32>(magnitude, select(0u, 1u, quadrant == 1u || quadrant == 2u));
}

// The f32 nearest magnitude / 2^29 (ties away from zero), with the sign, built from its bits.
fn q29_to_f32(magnitude: u32, negative: u32) -> f32 {
    if magnitude == 0u {
        return 0.0;
    }
    let lead = 31u - countLeadingZeros(magnitude);
    var mant: u32;
    var e = lead;
    if lead > 23u {
        let sh = lead - 23u;
        mant = (magnitude >> sh) + ((magnitude >> (sh - 1u)) & 1u);
    } else {
        mant = magnitude << (23u - lead);
    }
    if mant == (1u << 24u) {
        mant = mant >> 1u;
        e += 1u;
    }
    return bitcast<f32>((negative << 31u) | ((e + 98u) << 23u) | (mant & 0x7FFFFFu));
}

// N(0, 1) from two random words.
fn normal_from_words(w0: u32, w1: u32) -> f32 {
    let nl = normal_neg_log2((w0 >> 8u) + 1u);
    let root = normal_isqrt((nl.x << 26u) | (nl.y >> 6u), nl.y << 26u);
    let radius = q31_mul(root, NORMAL_SQRT_2LN2);
    let c = normal_cos(w1 >> 8u);
    return q29_to_f32(q31_mul(radius, c.x), c.y);
}

// Philox4x32-10, the GPU twin of src/rng.rs. Prepended to every shader that draws random numbers.
// Element i of a call uses counter (ctr_lo, ctr_hi) + i; the stream and seed come from the params.

fn philox_mulhilo(a: u32, b: u32) -> vec2<u32> {
    // 32x32 -> 64-bit product from 16-bit halves (WGSL has no 64-bit integers).
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if round > 0u {
            k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
        }
        let p0 = philox_mulhilo(0xD2511F53u, c.x);
        let p1 = philox_mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// The four words of element i: counter (ctr_lo, ctr_hi) + i, stream, under key (seed_lo, seed_hi).
fn philox_words(seed_lo: u32, seed_hi: u32, stream: u32, ctr_lo: u32, ctr_hi: u32, i: u32) -> vec4<u32> {
    let lo = ctr_lo + i;
    let hi = ctr_hi + select(0u, 1u, lo < ctr_lo);
    return philox4x32(vec4<u32>(lo, hi, stream, 0u), vec2<u32>(seed_lo, seed_hi));
}

// [0, 1) from 24 bits: exact in f32, so identical to the CPU twin.
fn unit_open_high(w: u32) -> f32 {
    return f32(w >> 8u) * (1.0 / 16777216.0);
}

// (0, 1]: safe under log.
fn unit_open_low(w: u32) -> f32 {
    return f32((w >> 8u) + 1u) * (1.0 / 16777216.0);
}

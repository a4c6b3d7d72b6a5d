// Random integers: batch indices in [0, range) and raw Philox words (for the bit-identity test).
// Twin: src/kernels/rng.rs (with src/rng.rs). Philox (philox.wgsl) is prepended.

struct Params {
    n: u32,
    out_off: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    ctr_lo: u32,
    ctr_hi: u32,
    range: u32,  // rng_index: draw in [0, range)
    lo: f32,     // rng_uniform: bounds
    hi: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn rng_index(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        let w = philox_words(p.seed_lo, p.seed_hi, p.stream, p.ctr_lo, p.ctr_hi, i);
        out[p.out_off + i] = philox_mulhilo(w.x, p.range).x;
    }
}

// Word j of element i / 4, so n words cover n / 4 counter blocks.
@compute @workgroup_size(256)
fn rng_bits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        let w = philox_words(p.seed_lo, p.seed_hi, p.stream, p.ctr_lo, p.ctr_hi, i / 4u);
        out[p.out_off + i] = w[i % 4u];
    }
}

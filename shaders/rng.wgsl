// Noise and batch indices: uniform U(lo, hi), normal N(0, 1) and uniform integers in [0, range).
// Twin: src/kernels/rng.rs (with src/rng.rs). Philox (philox.wgsl) and the integer
// Box–Muller (normal.wgsl) are prepended.

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
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn rng_uniform(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        let w = philox_words(p.seed_lo, p.seed_hi, p.stream, p.ctr_lo, p.ctr_hi, i);
        out[p.out_off + i] = p.lo + (p.hi - p.lo) * unit_open_high(w.x);
    }
}

@compute @workgroup_size(256)
fn rng_normal(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        let w = philox_words(p.seed_lo, p.seed_hi, p.stream, p.ctr_lo, p.ctr_hi, i);
        out[p.out_off + i] = normal_from_words(w.x, w.y);
    }
}

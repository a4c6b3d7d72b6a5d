// Inverted dropout: keep each element with probability q and scale kept ones by 1/q, so the
// expected activation is unchanged and evaluation needs no rescaling. The mask is never stored:
// element i keeps iff uniform(seed, stream, counter + i) < q, and backward redraws it.
// Twin: src/kernels/dropout.rs. Philox (philox.wgsl) is prepended.

struct Params {
    n: u32,
    src_off: u32,
    dst_off: u32,
    keep: f32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    ctr_lo: u32,
    ctr_hi: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn dropout_apply(i: u32) {
    let w = philox_words(p.seed_lo, p.seed_hi, p.stream, p.ctr_lo, p.ctr_hi, i);
    let kept = unit_open_high(w.x) < p.keep;
    dst[p.dst_off + i] = select(0.0, src[p.src_off + i] / p.keep, kept);
}

// y = x · mask / q
@compute @workgroup_size(256)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        dropout_apply(i);
    }
}

// dx = dy · mask / q, the same mask redrawn from the same key.
@compute @workgroup_size(256)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        dropout_apply(i);
    }
}

// Global sum pooling of NCHW planes: [planes, size] ↔ [planes] (planes = rows·channels, size =
// height·width), SNGAN's and SAGAN's critic before its last linear layer.
//   sum_pool_forward   dst[q] = Σ_i src[q, i], one invocation per plane (in index order, as the
//                      CPU twin)
//   sum_pool_backward  dst[q, i] = src[q], one invocation per input value (a gather)
// Twin: src/kernels/sum_pool.rs.

struct Params {
    planes: u32,
    size: u32,
    src_off: u32,
    dst_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn sum_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var q = gid.x; q < p.planes; q += nwg.x * 256u) {
        let base = p.src_off + q * p.size;
        var s = 0.0;
        for (var i = 0u; i < p.size; i++) {
            s += src[base + i];
        }
        dst[p.dst_off + q] = s;
    }
}

@compute @workgroup_size(256)
fn sum_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.planes * p.size;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        dst[p.dst_off + i] = src[p.src_off + i / p.size];
    }
}

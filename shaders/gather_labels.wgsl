// The labels of a minibatch, gathered by the same indices as its rows: out[r] = labels[idx[r]].
// Twin: src/kernels/gather.rs.

struct Params {
    rows: u32,
    idx_off: u32,
    src_off: u32,
    out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn gather_labels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var r = gid.x; r < p.rows; r += nwg.x * 256u) {
        out[p.out_off + r] = src[p.src_off + idx[p.idx_off + r]];
    }
}

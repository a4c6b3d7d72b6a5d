// Maxout (Goodfellow et al. 2013): unit u of row r is the max over its `pieces` consecutive
// inputs x[r, u·pieces .. (u+1)·pieces]. Forward records the winning piece (first on ties) so
// backward routes the gradient to it and writes zero to the others.
//   maxout_forward   src = x [rows, units·pieces], dst = y [rows, units], idx written
//   maxout_backward  src = dy [rows, units], dst = dx [rows, units·pieces], idx read
// Twin: src/kernels/maxout.rs.

struct Params {
    rows: u32,
    units: u32,
    pieces: u32,
    src_off: u32,
    dst_off: u32,
    idx_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<u32>;

@compute @workgroup_size(256)
fn maxout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.units;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let base = p.src_off + i * p.pieces;
        var best = src[base];
        var arg = 0u;
        for (var j = 1u; j < p.pieces; j++) {
            let v = src[base + j];
            if v > best {
                best = v;
                arg = j;
            }
        }
        dst[p.dst_off + i] = best;
        idx[p.idx_off + i] = arg;
    }
}

@compute @workgroup_size(256)
fn maxout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.units;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let g = src[p.src_off + i];
        let arg = idx[p.idx_off + i];
        let base = p.dst_off + i * p.pieces;
        for (var j = 0u; j < p.pieces; j++) {
            dst[base + j] = select(0.0, g, j == arg);
        }
    }
}

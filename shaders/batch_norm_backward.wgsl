// Batch normalisation, backward (forward and the layout: batch_norm.wgsl). With the batch's
// stats = [mean C | invstd C] and x̂ = (x − mean)·invstd:
//   batch_norm_backward_reduce  out = [Σ dy·x̂ C | Σ dy C]: dweight and dbias, per channel over
//                               its rows·spatial values (a fixed-order tree, as the statistics)
//   batch_norm_backward_input   out = dx = weight·invstd·(dy − Σdy/n − x̂·Σ(dy·x̂)/n), with the
//                               sums read from dparams (the reduce's output)
// Twin: src/kernels/batch_norm.rs.

struct Params {
    rows: u32,
    channels: u32,
    spatial: u32,
    lanes: u32,
    eps: f32,
    momentum: f32,
    update: u32,
    restart: u32,
    x_off: u32,
    weight_off: u32,
    bias_off: u32,
    stats_off: u32,
    out_off: u32,
    running_off: u32,
    dy_off: u32,
    dparams_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> weight: array<f32>;
@group(0) @binding(6) var<storage, read> dparams: array<f32>;

var<workgroup> partial_a: array<f32, 256>;
var<workgroup> partial_b: array<f32, 256>;

fn at(c: u32, j: u32) -> u32 {
    let r = j / p.spatial;
    return (r * p.channels + c) * p.spatial + (j - r * p.spatial);
}

@compute @workgroup_size(256)
fn batch_norm_backward_reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let group = 256u / p.lanes;
    let lane = t / group;
    let c = wg.x * group + t % group;
    let n = p.rows * p.spatial;
    let valid = c < p.channels;
    var sg = 0.0;
    var sb = 0.0;
    if valid {
        let mean = stats[p.stats_off + c];
        let invstd = stats[p.stats_off + p.channels + c];
        for (var j = lane; j < n; j += p.lanes) {
            let k = at(c, j);
            let g = dy[p.dy_off + k];
            sg += g * (x[p.x_off + k] - mean) * invstd;
            sb += g;
        }
    }
    partial_a[t] = sg;
    partial_b[t] = sb;
    workgroupBarrier();
    for (var stride = p.lanes / 2u; stride > 0u; stride /= 2u) {
        if lane < stride {
            partial_a[t] += partial_a[t + stride * group];
            partial_b[t] += partial_b[t + stride * group];
        }
        workgroupBarrier();
    }
    if lane == 0u && valid {
        out[p.out_off + c] = partial_a[t];
        out[p.out_off + p.channels + c] = partial_b[t];
    }
}

@compute @workgroup_size(256)
fn batch_norm_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let total = p.rows * p.channels * p.spatial;
    let inv_n = 1.0 / f32(p.rows * p.spatial);
    for (var i = gid.x; i < total; i += nwg.x * 256u) {
        let c = (i / p.spatial) % p.channels;
        let invstd = stats[p.stats_off + p.channels + c];
        let xhat = (x[p.x_off + i] - stats[p.stats_off + c]) * invstd;
        let dw = dparams[p.dparams_off + c];
        let db = dparams[p.dparams_off + p.channels + c];
        out[p.out_off + i] = weight[p.weight_off + c] * invstd * (dy[p.dy_off + i] - (db + xhat * dw) * inv_n);
    }
}

// Batch normalisation (Ioffe & Szegedy 2015) over NCHW batches, forward: x is [rows, channels,
// spatial] (spatial = H·W; a flat layer of n features is n channels of spatial 1), and channel
// c's statistics are over its n = rows·spatial values.
//   batch_norm_statistics    out = [mean C | invstd C] of the batch (biased variance, as PyTorch
//                            normalises); with `update`, running = [mean C | var C | batches]
//                            moves toward them by `momentum` (unbiased variance, as PyTorch)
//   batch_norm_forward       y = (x − mean)·invstd·weight + bias with stats = [mean | invstd]
//   batch_norm_forward_eval  the same with stats = running: invstd = 1/sqrt(var + eps)
// The statistics give each channel `lanes` invocations of a 256-wide workgroup (256 / lanes
// channels per workgroup, so a small n leaves no lanes idle) and join the lanes in a fixed-order
// tree: deterministic, no float atomics, 1 KiB of workgroup memory. Backward:
// batch_norm_backward.wgsl. Twin: src/kernels/batch_norm.rs.

struct Params {
    rows: u32,
    channels: u32,
    spatial: u32,
    // Invocations per channel in the reductions (a power of two, 1..256).
    lanes: u32,
    eps: f32,
    momentum: f32,
    // batch_norm_statistics: move the running statistics; restart them (running ← this batch,
    // batches ← 1: the first batch of an average over batches).
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
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> running: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read> weight: array<f32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;

var<workgroup> partial: array<f32, 256>;

// Word of value j (0 ≤ j < rows·spatial) of channel c in the view.
fn at(c: u32, j: u32) -> u32 {
    let r = j / p.spatial;
    return (r * p.channels + c) * p.spatial + (j - r * p.spatial);
}

// Joins each channel's lanes (slot t = lane·group + channel) in a fixed order into lane 0's slot.
fn tree(t: u32, lane: u32, group: u32) {
    for (var stride = p.lanes / 2u; stride > 0u; stride /= 2u) {
        if lane < stride {
            partial[t] += partial[t + stride * group];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn batch_norm_statistics(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let group = 256u / p.lanes;
    let lane = t / group;
    let c = wg.x * group + t % group;
    let n = p.rows * p.spatial;
    let valid = c < p.channels;
    var s = 0.0;
    if valid {
        for (var j = lane; j < n; j += p.lanes) {
            s += x[p.x_off + at(c, j)];
        }
    }
    partial[t] = s;
    workgroupBarrier();
    tree(t, lane, group);
    let mean = partial[t % group] / f32(n);
    workgroupBarrier();
    // A second pass over the centred values: no cancellation, unlike E[x²] − E[x]².
    var q = 0.0;
    if valid {
        for (var j = lane; j < n; j += p.lanes) {
            let d = x[p.x_off + at(c, j)] - mean;
            q += d * d;
        }
    }
    partial[t] = q;
    workgroupBarrier();
    tree(t, lane, group);
    if lane != 0u || !valid {
        return;
    }
    let var_biased = partial[t] / f32(n);
    out[p.out_off + c] = mean;
    out[p.out_off + p.channels + c] = inverseSqrt(var_biased + p.eps);
    if p.update != 0u {
        let unbiased = select(var_biased, var_biased * f32(n) / f32(n - 1u), n > 1u);
        let m = p.momentum;
        let r = p.running_off;
        running[r + c] = (1.0 - m) * running[r + c] + m * mean;
        running[r + p.channels + c] = (1.0 - m) * running[r + p.channels + c] + m * unbiased;
        if c == 0u {
            let b = r + 2u * p.channels;
            running[b] = select(running[b] + 1.0, 1.0, p.restart != 0u);
        }
    }
}

@compute @workgroup_size(256)
fn batch_norm_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.channels * p.spatial;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let c = (i / p.spatial) % p.channels;
        let mean = stats[p.stats_off + c];
        let invstd = stats[p.stats_off + p.channels + c];
        out[p.out_off + i] = (x[p.x_off + i] - mean) * invstd * weight[p.weight_off + c] + bias[p.bias_off + c];
    }
}

@compute @workgroup_size(256)
fn batch_norm_forward_eval(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.channels * p.spatial;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let c = (i / p.spatial) % p.channels;
        let mean = stats[p.stats_off + c];
        let invstd = inverseSqrt(stats[p.stats_off + p.channels + c] + p.eps);
        out[p.out_off + i] = (x[p.x_off + i] - mean) * invstd * weight[p.weight_off + c] + bias[p.bias_off + c];
    }
}

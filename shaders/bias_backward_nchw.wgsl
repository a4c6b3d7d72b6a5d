// db[c] (+)= Σ_{n, pixel} dy[n, c, pixel]: a convolution's bias gradient over NCHW. One
// workgroup per channel; its 256 invocations sum a fixed stride of the channel's n·hw values
// and a fixed-order tree in workgroup memory joins them (deterministic, no float atomics).
// Twin: src/kernels/conv.rs.

struct Params {
    n: u32,
    c: u32,
    hw: u32,
    accumulate: u32,
    dy_off: u32,
    db_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn bias_backward_nchw(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let c = wg.x;
    var s = 0.0;
    for (var t = li; t < p.n * p.hw; t += 256u) {
        s += dy[p.dy_off + ((t / p.hw) * p.c + c) * p.hw + t % p.hw];
    }
    partial[li] = s;
    for (var half = 128u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if li < half {
            partial[li] += partial[li + half];
        }
    }
    if li == 0u {
        var total = partial[0];
        if p.accumulate != 0u {
            total += db[p.db_off + c];
        }
        db[p.db_off + c] = total;
    }
}

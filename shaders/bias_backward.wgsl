// db[N] (+)= Σ_m dY[m, N]: column sums of the output gradient. Each workgroup owns 64 columns;
// its 4 row-lanes sum every 4th row and a fixed-order tree joins them, so the result is
// deterministic (no float atomics). Twin: src/kernels/bias.rs.

struct Params {
    m: u32,
    n: u32,
    dy_off: u32,
    db_off: u32,
    accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;

var<workgroup> partial: array<f32, 256>;  // [4 lanes][64 columns]

@compute @workgroup_size(64, 4)
fn bias_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let col = wg.x * 64u + lid.x;
    var s = 0.0;
    if col < p.n {
        for (var row = lid.y; row < p.m; row += 4u) {
            s += dy[p.dy_off + row * p.n + col];
        }
    }
    partial[lid.y * 64u + lid.x] = s;
    workgroupBarrier();
    if lid.y == 0u && col < p.n {
        var total = (partial[lid.x] + partial[64u + lid.x]) + (partial[128u + lid.x] + partial[192u + lid.x]);
        if p.accumulate != 0u {
            total += db[p.db_off + col];
        }
        db[p.db_off + col] = total;
    }
}

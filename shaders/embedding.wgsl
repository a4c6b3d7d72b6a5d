// Class embeddings: a table [classes, width] looked up by each row's label (labels past the
// last class read the last row, as every implementation of these kernels does).
//   embedding_forward   y[r, i] = x[r, i] for i < x_len, then table[labels[r], i − x_len]:
//                       the noise with its class's embedding concatenated (x_len 0: a lookup)
//   embedding_backward  dtable[k, j] (+)= Σ_{r: labels[r] = k} dy[r, x_len + j]: one invocation
//                       per (k, j) summing its class's rows in row order — a gather per class
//                       over the batch, deterministic, no atomics
// Twin: src/kernels/embedding.rs.

struct Params {
    rows: u32,
    x_len: u32,
    width: u32,
    classes: u32,
    accumulate: u32,
    x_off: u32,
    table_off: u32,
    labels_off: u32,
    y_off: u32,
    dy_off: u32,
    dtable_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dtable: array<f32>;

fn class_of(r: u32) -> u32 {
    return min(labels[p.labels_off + r], p.classes - 1u);
}

@compute @workgroup_size(256)
fn embedding_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row_len = p.x_len + p.width;
    let n = p.rows * row_len;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let r = i / row_len;
        let j = i % row_len;
        if j < p.x_len {
            y[p.y_off + i] = x[p.x_off + r * p.x_len + j];
        } else {
            y[p.y_off + i] = table[p.table_off + class_of(r) * p.width + j - p.x_len];
        }
    }
}

@compute @workgroup_size(256)
fn embedding_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row_len = p.x_len + p.width;
    let n = p.classes * p.width;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let k = i / p.width;
        let j = i % p.width;
        var s = 0.0;
        for (var r = 0u; r < p.rows; r++) {
            if class_of(r) == k {
                s += dy[p.dy_off + r * row_len + p.x_len + j];
            }
        }
        if p.accumulate != 0u {
            s += dtable[p.dtable_off + i];
        }
        dtable[p.dtable_off + i] = s;
    }
}

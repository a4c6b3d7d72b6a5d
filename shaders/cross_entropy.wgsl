// Softmax cross-entropy of a classifier's logits [rows, classes] against integer labels: the
// gradient w.r.t. the logits, (softmax − one-hot) / rows, and the batch's mean loss and count of
// correct argmax predictions reduced in one workgroup with a fixed-order tree (deterministic, no
// float atomics), added to stats[0..2] when `accumulate` is set.
// Twin: src/kernels/cross_entropy.rs.

struct Params {
    rows: u32,
    classes: u32,
    accumulate: u32,
    logits_off: u32,
    labels_off: u32,
    grad_off: u32,
    stats_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;

const WG: u32 = 256u;
var<workgroup> red_loss: array<f32, WG>;
var<workgroup> red_hits: array<f32, WG>;

@compute @workgroup_size(256)
fn cross_entropy(@builtin(local_invocation_index) li: u32) {
    let inv_rows = 1.0 / f32(max(p.rows, 1u));
    var loss = 0.0;
    var hits = 0.0;
    for (var r = li; r < p.rows; r += WG) {
        let base = p.logits_off + r * p.classes;
        let y = labels[p.labels_off + r];
        // Max-shifted log-sum-exp; the argmax is the first maximum.
        var m = logits[base];
        var arg = 0u;
        for (var c = 1u; c < p.classes; c++) {
            let v = logits[base + c];
            if v > m {
                m = v;
                arg = c;
            }
        }
        var s = 0.0;
        for (var c = 0u; c < p.classes; c++) {
            s += exp(logits[base + c] - m);
        }
        let lse = m + log(s);
        loss += (lse - logits[base + y]) * inv_rows;
        hits += select(0.0, 1.0, arg == y);
        let g = p.grad_off + r * p.classes;
        for (var c = 0u; c < p.classes; c++) {
            let prob = exp(logits[base + c] - lse);
            grad[g + c] = (prob - select(0.0, 1.0, c == y)) * inv_rows;
        }
    }
    red_loss[li] = loss;
    red_hits[li] = hits;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if li < half {
            red_loss[li] += red_loss[li + half];
            red_hits[li] += red_hits[li + half];
        }
        workgroupBarrier();
    }
    if li == 0u {
        var out = vec2<f32>(red_loss[0], red_hits[0]);
        if p.accumulate != 0u {
            out += vec2<f32>(stats[p.stats_off], stats[p.stats_off + 1u]);
        }
        stats[p.stats_off] = out.x;
        stats[p.stats_off + 1u] = out.y;
    }
}

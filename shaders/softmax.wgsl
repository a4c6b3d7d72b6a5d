// Row softmax over `rows` rows of `n` values (any n: each workgroup walks its row in strides of
// 256), numerically stable (the row's maximum is subtracted before exp):
//   softmax_rows_forward   dst[r, j] = exp(src[r, j] − max_r) / Σ_j' exp(src[r, j'] − max_r)
//   softmax_rows_backward  rowdot[r] = Σ_j src[r, j]·dst[r, j];
//                          dst[r, j] = s·src[r, j]·(dst[r, j] − rowdot[r])       (in place)
// In the backward src is the forward's output y and dst holds ∂L/∂y on entry and ∂L/∂x on exit
// (each invocation rewrites only the words it read, after the row's dot product is complete);
// s is scale[0] when flags bit 0 is set, else 1 (the attention layer's γ). rowdot is the row's
// ⟨y, ∂L/∂y⟩ before the scale, which the attention layer sums into ∂L/∂γ.
// One workgroup per row (grid-stride over rows past 65,535); the reductions are fixed-order
// trees over the workgroup, so results are deterministic. Twin: src/kernels/softmax.rs.

struct Params {
    rows: u32,
    n: u32,
    flags: u32,     // bit 0: multiply the backward's result by scale[0]
    src_off: u32,
    scale_off: u32,
    rowdot_off: u32,
    dst_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> rowdot: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;

fn tree_sum(li: u32, v: f32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if li < half {
            red[li] += red[li + half];
        }
        workgroupBarrier();
    }
    let s = red[0];
    workgroupBarrier();
    return s;
}

fn tree_max(li: u32, v: f32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if li < half {
            red[li] = max(red[li], red[li + half]);
        }
        workgroupBarrier();
    }
    let s = red[0];
    workgroupBarrier();
    return s;
}

@compute @workgroup_size(256)
fn softmax_rows_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    for (var r = wg.x; r < p.rows; r += nwg.x) {
        let x0 = p.src_off + r * p.n;
        let y0 = p.dst_off + r * p.n;
        var m = -3.4028235e38;
        for (var j = li; j < p.n; j += WG) {
            m = max(m, src[x0 + j]);
        }
        m = tree_max(li, m);
        var s = 0.0;
        for (var j = li; j < p.n; j += WG) {
            s += exp(src[x0 + j] - m);
        }
        let inv = 1.0 / tree_sum(li, s);
        for (var j = li; j < p.n; j += WG) {
            dst[y0 + j] = exp(src[x0 + j] - m) * inv;
        }
    }
}

@compute @workgroup_size(256)
fn softmax_rows_backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    var s = 1.0;
    if (p.flags & 1u) != 0u {
        s = scale[p.scale_off];
    }
    for (var r = wg.x; r < p.rows; r += nwg.x) {
        let y0 = p.src_off + r * p.n;
        let g0 = p.dst_off + r * p.n;
        var d = 0.0;
        for (var j = li; j < p.n; j += WG) {
            d += src[y0 + j] * dst[g0 + j];
        }
        d = tree_sum(li, d);
        if li == 0u {
            rowdot[p.rowdot_off + r] = d;
        }
        for (var j = li; j < p.n; j += WG) {
            dst[g0 + j] = s * src[y0 + j] * (dst[g0 + j] - d);
        }
    }
}

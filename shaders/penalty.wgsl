// Gradient penalties on the critic's input gradient g = ∇ₓD(x), one row per sample (the norm is
// over all of a row's values, never per pixel or channel). Philox (philox.wgsl) is prepended.
//
//   penalty_interpolate  out[r, :] = ε_r·x[r, :] + (1 − ε_r)·y[r, :], one ε_r ~ U(0, 1) per row
//                        (WGAN-GP's x̂ = εx + (1 − ε)G(z)): ε_r is Philox element r of the key.
//   penalty_seed         per row, n = ‖g_r‖ over its `cols` values, then
//                          kind 0, WGAN-GP: term = λ(n − 1)²,  v_r = (2λ/rows)(n − 1)/n · g_r
//                          kind 1, R1:      term = (γ/2)n²,    v_r = (γ/rows) · g_r
//                        (v = ∂P/∂g for P = mean_rows term; v_r = 0 where n = 0 under kind 0),
//                        and rows_out[2r .. 2r+2] = (term, n). x is g, out is v.
//   penalty_reduce       out[0..2] (+)= (mean_rows term, mean_rows n) from x = rows_out, in one
//                        workgroup with a fixed-order tree (deterministic).
// Twin: src/kernels/penalty.rs.

struct Params {
    rows: u32,
    cols: u32,
    kind: u32,
    weight: f32,       // λ or γ
    x_off: u32,
    y_off: u32,
    out_off: u32,
    rows_out_off: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    ctr_lo: u32,
    ctr_hi: u32,
    accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> rows_out: array<f32>;

const WG: u32 = 256u;
var<workgroup> red_a: array<f32, WG>;
var<workgroup> red_b: array<f32, WG>;

@compute @workgroup_size(256)
fn penalty_interpolate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.cols;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let r = i / p.cols;
        let w = philox_words(p.seed_lo, p.seed_hi, p.stream, p.ctr_lo, p.ctr_hi, r);
        let eps = unit_open_high(w.x);
        out[p.out_off + i] = eps * x[p.x_off + i] + (1.0 - eps) * y[p.y_off + i];
    }
}

// One workgroup per row (striding when there are more rows than workgroups).
@compute @workgroup_size(256)
fn penalty_seed(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    for (var r = wg.x; r < p.rows; r += nwg.x) {
        let base = r * p.cols;
        var s = 0.0;
        for (var j = li; j < p.cols; j += WG) {
            let g = x[p.x_off + base + j];
            s += g * g;
        }
        red_a[li] = s;
        workgroupBarrier();
        for (var half = WG / 2u; half > 0u; half /= 2u) {
            if li < half {
                red_a[li] += red_a[li + half];
            }
            workgroupBarrier();
        }
        let norm = sqrt(red_a[0]);
        workgroupBarrier();
        var term: f32;
        var coef: f32;
        if p.kind == 0u {
            term = p.weight * (norm - 1.0) * (norm - 1.0);
            coef = select(0.0, 2.0 * p.weight * (norm - 1.0) / norm, norm > 0.0);
        } else {
            term = 0.5 * p.weight * norm * norm;
            coef = p.weight;
        }
        coef = coef / f32(p.rows);
        for (var j = li; j < p.cols; j += WG) {
            out[p.out_off + base + j] = coef * x[p.x_off + base + j];
        }
        if li == 0u {
            rows_out[p.rows_out_off + 2u * r] = term;
            rows_out[p.rows_out_off + 2u * r + 1u] = norm;
        }
    }
}

@compute @workgroup_size(256)
fn penalty_reduce(@builtin(local_invocation_index) li: u32) {
    var a = 0.0;
    var b = 0.0;
    for (var r = li; r < p.rows; r += WG) {
        a += x[p.x_off + 2u * r];
        b += x[p.x_off + 2u * r + 1u];
    }
    red_a[li] = a;
    red_b[li] = b;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if li < half {
            red_a[li] += red_a[li + half];
            red_b[li] += red_b[li + half];
        }
        workgroupBarrier();
    }
    if li == 0u {
        let inv = 1.0 / f32(max(p.rows, 1u));
        var v = vec2<f32>(red_a[0] * inv, red_b[0] * inv);
        if p.accumulate != 0u {
            v += vec2<f32>(out[p.out_off], out[p.out_off + 1u]);
        }
        out[p.out_off] = v.x;
        out[p.out_off + 1u] = v.y;
    }
}

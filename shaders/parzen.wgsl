// Gaussian Parzen windows (Breuleux et al. 2011; the estimator of Goodfellow et al. 2014,
// Table 1). The squared distance between a test point x_r and a centre μ_j is expanded as
// ‖x_r‖² + ‖μ_j‖² − 2·x_r·μ_j, so the dot products come from the matmul kernel and these two
// entry points supply the rest:
//   row_sum_squares      out[r] = Σ_c x[r, c]²                         (an invocation per row)
//   parzen_log_density   out[r] = log (1/n) Σ_j N(x_r; μ_j, σ²·I_dim)   (a workgroup per row)
//                              = logsumexp_j(−d²_rj / (2σ²)) − log n − (dim/2)·log(2πσ²)
// The host passes 1/(2σ²) and log n + (dim/2)·log(2πσ²), computed in f64 (see
// `kernels::parzen::parzen_constants`), so both backends use identical constants.
// Twins: src/kernels/parzen.rs.

// Both entry points share one parameter block and one layout (row_sum_squares leaves
// bindings 2 and 3 alone). For row_sum_squares `a` is x [rows, n]; for parzen_log_density it is
// dot [rows, n] row-major, dot[r, j] = x_r·μ_j.
struct Params {
    rows: u32,
    n: u32,
    a_off: u32,
    x_sq_off: u32,
    mu_sq_off: u32,
    out_off: u32,
    inv_two_var: f32,   // 1 / (2σ²)
    log_norm: f32,      // log n + (dim/2)·log(2πσ²)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> x_sq: array<f32>;
@group(0) @binding(3) var<storage, read> mu_sq: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn row_sum_squares(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if r >= p.rows {
        return;
    }
    let base = p.a_off + r * p.n;
    var s = 0.0;
    for (var c = 0u; c < p.n; c++) {
        let v = a[base + c];
        s += v * v;
    }
    out[p.out_off + r] = s;
}

const WG: u32 = 256u;
// Below any exponent that occurs; exp(NEG_BIG − finite) is 0, so an empty lane adds nothing.
const NEG_BIG: f32 = -3.0e38;
var<workgroup> lane_max: array<f32, WG>;
var<workgroup> lane_sum: array<f32, WG>;

// (max, Σ exp(v − max)) of two partial logsumexps, joined.
fn join(m1: f32, s1: f32, m2: f32, s2: f32) -> vec2<f32> {
    let m = max(m1, m2);
    return vec2<f32>(m, s1 * exp(m1 - m) + s2 * exp(m2 - m));
}

@compute @workgroup_size(256)
fn parzen_log_density(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let r = wg.x + wg.y * 65535u;
    if r >= p.rows {
        return;
    }
    let xs = x_sq[p.x_sq_off + r];
    let row = p.a_off + r * p.n;
    // Online logsumexp over this lane's columns j = li, li + WG, …
    var m = NEG_BIG;
    var s = 0.0;
    for (var j = li; j < p.n; j += WG) {
        let d2 = max(xs + mu_sq[p.mu_sq_off + j] - 2.0 * a[row + j], 0.0);
        let v = -d2 * p.inv_two_var;
        if v > m {
            s = s * exp(m - v) + 1.0;
            m = v;
        } else {
            s += exp(v - m);
        }
    }
    lane_max[li] = m;
    lane_sum[li] = s;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if li < half {
            let j = join(lane_max[li], lane_sum[li], lane_max[li + half], lane_sum[li + half]);
            lane_max[li] = j.x;
            lane_sum[li] = j.y;
        }
        workgroupBarrier();
    }
    if li == 0u {
        out[p.out_off + r] = lane_max[0] + log(lane_sum[0]) - p.log_norm;
    }
}

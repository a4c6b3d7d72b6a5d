// Spectral normalization (Miyato et al. 2018) of a weight W viewed as a matrix [rows, cols] =
// [out, in·…] (a Linear's [out, in], a convolution's [out, in·kh·kw]). The power iteration's
// mat-vec products W·v and Wᵀ·u run through the matmul kernel; these kernels do the rest:
//
//   sn_normalize  out = a / max(‖a‖, 1e-12)               (v = Wᵀu/‖Wᵀu‖, u = Wv/‖Wv‖)
//   sn_dot        out[0] = Σ a·b                           (σ = uᵀ(Wv); ⟨G, W_SN⟩ of the backward)
//   sn_scale      out = a / scalars[0]                     (W_SN = W/σ)
//   sn_grad       out (+)= (a − scalars[1]·b[o]·c[k]) / scalars[0]
//                 (∂L/∂W = (G − ⟨G, W_SN⟩·u vᵀ)/σ with G = ∂L/∂W_SN, as PyTorch's spectral_norm)
//
// scalars = [σ, ⟨G, W_SN⟩]. In sn_grad element (o, k) of the matrix is word o·cols + k of the
// tensor, or k·rows + o when `transposed` (a Linear weight stored [in, out]). The reductions run
// in one workgroup with a fixed-order tree, so they are deterministic.
// Twin: src/kernels/spectral_norm.rs.

struct Params {
    n: u32,
    rows: u32,
    cols: u32,
    transposed: u32,
    accumulate: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    scalars_off: u32,
    out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read> scalars: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;

// Σ over the workgroup of each invocation's `v`, in a fixed order; every invocation gets it.
fn workgroup_sum(li: u32, v: f32) -> f32 {
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

@compute @workgroup_size(256)
fn sn_normalize(@builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var i = li; i < p.n; i += WG) {
        let x = a[p.a_off + i];
        s += x * x;
    }
    let inv = 1.0 / max(sqrt(workgroup_sum(li, s)), 1e-12);
    for (var i = li; i < p.n; i += WG) {
        out[p.out_off + i] = a[p.a_off + i] * inv;
    }
}

@compute @workgroup_size(256)
fn sn_dot(@builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var i = li; i < p.n; i += WG) {
        s += a[p.a_off + i] * b[p.b_off + i];
    }
    let total = workgroup_sum(li, s);
    if li == 0u {
        out[p.out_off] = total;
    }
}

@compute @workgroup_size(256)
fn sn_scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let sigma = scalars[p.scalars_off];
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        out[p.out_off + i] = a[p.a_off + i] / sigma;
    }
}

// A 2-D grid: x runs along the matrix's contiguous dimension (rows when `transposed`, else
// columns), y along the other, so no invocation divides.
@compute @workgroup_size(256)
fn sn_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let sigma = scalars[p.scalars_off];
    let inner = scalars[p.scalars_off + 1u];
    var fast = p.cols;
    var slow = p.rows;
    if p.transposed != 0u {
        fast = p.rows;
        slow = p.cols;
    }
    let f = gid.x;
    if f >= fast {
        return;
    }
    for (var s = gid.y; s < slow; s += nwg.y) {
        let i = s * fast + f;
        var o = s;
        var k = f;
        if p.transposed != 0u {
            o = f;
            k = s;
        }
        var g = (a[p.a_off + i] - inner * b[p.b_off + o] * c[p.c_off + k]) / sigma;
        if p.accumulate != 0u {
            g += out[p.out_off + i];
        }
        out[p.out_off + i] = g;
    }
}

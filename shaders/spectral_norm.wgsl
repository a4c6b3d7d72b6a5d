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
// scalars = [σ, ⟨G, W_SN⟩]. sn_grad reads the weight as stored [outer, rows, inner] with
// cols = outer·inner: element (o, k) of the matrix, k = a·inner + b, is word
// (a·rows + o)·inner + b. inner = cols is a row-major [rows, cols] weight (a Linear's [out, in],
// a Conv2d's [out, in·k·k]); inner = 1 one stored transposed (a Linear kept [in, out]);
// inner = k·k a ConvTranspose2d's [in, out, k, k], which PyTorch's spectral_norm views over
// dimension 1 as [out, in·k·k]. The reductions run in one workgroup with a fixed-order tree, so
// they are deterministic.
// Twin: src/kernels/spectral_norm.rs.

struct Params {
    n: u32,
    rows: u32,
    cols: u32,
    inner: u32,
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

// A 2-D grid: x runs along one contiguous [rows, inner] block (striding when it is longer than
// the grid), y along the outer index.
@compute @workgroup_size(256)
fn sn_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let sigma = scalars[p.scalars_off];
    let inner_product = scalars[p.scalars_off + 1u];
    let block = p.rows * p.inner;
    let outer = p.cols / p.inner;
    for (var s = gid.y; s < outer; s += nwg.y) {
        for (var j = gid.x; j < block; j += nwg.x * 256u) {
            let o = j / p.inner;
            let k = s * p.inner + (j - o * p.inner);
            let i = s * block + j;
            var g = (a[p.a_off + i] - inner_product * b[p.b_off + o] * c[p.c_off + k]) / sigma;
            if p.accumulate != 0u {
                g += out[p.out_off + i];
            }
            out[p.out_off + i] = g;
        }
    }
}

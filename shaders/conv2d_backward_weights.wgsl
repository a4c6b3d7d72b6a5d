// Conv2d's weight gradient, NCHW (also ConvTranspose2d's, with x and dy swapped):
//   dw[co,ci,ky,kx] (+)= Σ_{n,oh,ow} dy[n,co,oh,ow]·x[n,ci,oh·stride − pad + ky, ow·stride − pad + kx]
// An implicit GEMM (conv_gemm.wgsl): M = co, N = ci·kh·kw, K = samples·oh·ow;
//   A = dy as [co, (sample, pixel)], B((sample, pixel), (ci,ky,kx)) = x gathered.
// The output is small and K long (batch × pixels), so the batch is split over `splits`
// workgroup layers (z) to fill the device: with splits > 1, layer z sums samples
// [z·per, (z+1)·per) (per = ⌈n / splits⌉) into its own slice z of `dw` ([splits, co, ci·kh·kw]),
// and a fixed-order sum of the slices (bias_backward) finishes it: deterministic, no atomics.
// Twin: src/kernels/conv_cpu.rs.

struct Params {
    n: u32,
    ci: u32,
    h: u32,        // x's height and width
    w: u32,
    co: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    accumulate: u32,  // add to dw (splits = 1 only)
    splits: u32,
    x_off: u32,
    dy_off: u32,
    dw_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

fn out_h() -> u32 {
    return (p.h + 2u * p.pad - p.kh) / p.stride + 1u;
}

fn out_w() -> u32 {
    return (p.w + 2u * p.pad - p.kw) / p.stride + 1u;
}

// The first sample of this workgroup's split.
var<private> first_sample: u32;

// Reduction index k = (sample, oh, ow) of this split: (its dy offset for channel 0, its x
// offset for tap (0, 0, 0), its top input row and left input column).
fn k_info(k: u32) -> vec4<i32> {
    let ow = out_w();
    let ohw = out_h() * ow;
    let s = first_sample + k / ohw;
    let pix = k % ohw;
    let ih = i32((pix / ow) * p.stride) - i32(p.pad);
    let iw = i32((pix % ow) * p.stride) - i32(p.pad);
    return vec4<i32>(
        i32(s * p.co * ohw + pix),
        i32(s * p.ci * p.h * p.w) + ih * i32(p.w) + iw,
        ih,
        iw,
    );
}

fn load_a(m: u32, k: u32, ki: vec4<i32>) -> f32 {
    if m >= p.co {
        return 0.0;
    }
    return dy[i32(p.dy_off + m * out_h() * out_w()) + ki.x];
}

// Column j = (c, ky, kx): (its x offset c·h·w + ky·w + kx, ky, kx, j < N).
fn n_info(j: u32) -> vec4<i32> {
    let khw = p.kh * p.kw;
    let c = j / khw;
    let r = j % khw;
    let ky = r / p.kw;
    let kx = r % p.kw;
    return vec4<i32>(i32(c * p.h * p.w + ky * p.w + kx), i32(ky), i32(kx), i32(j < p.ci * khw));
}

fn load_b(ki: vec4<i32>, ni: vec4<i32>) -> f32 {
    let ih = ki.z + ni.y;
    let iw = ki.w + ni.z;
    if ih < 0 || iw < 0 || ih >= i32(p.h) || iw >= i32(p.w) {
        return 0.0;
    }
    return x[i32(p.x_off) + ki.y + ni.x];
}

@compute @workgroup_size(16, 16)
fn conv2d_backward_weights(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let per = (p.n + p.splits - 1u) / p.splits;
    first_sample = wg.z * per;
    let samples = min(p.n, (wg.z + 1u) * per) - min(p.n, wg.z * per);
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    let n_cols = p.ci * p.kh * p.kw;
    var acc = gemm_tile(row0, col0, samples * out_h() * out_w(), li, lid, true, false);
    for (var i = 0u; i < 4u; i++) {
        let co = row0 + lid.y + 16u * i;
        if co >= p.co {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + 16u * j;
            if col < n_cols {
                let o = p.dw_off + (wg.z * p.co + co) * n_cols + col;
                var v = acc[i][j];
                if p.accumulate != 0u && p.splits == 1u {
                    v += dw[o];
                }
                dw[o] = v;
            }
        }
    }
}

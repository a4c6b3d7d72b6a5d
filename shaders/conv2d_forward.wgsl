// Conv2d forward, NCHW: y[n,co,oh,ow] = act(bias[co] + Σ_{ci,ky,kx} w[co,ci,ky,kx]·x[n,ci,ih,iw])
// with ih = oh·stride − pad + ky (and so iw), x read as 0 outside the image. Flags bit 3 makes it
// y = conv(x) ⊙ f'(bias-bound y) instead: ConvTranspose2d's input gradient fused with the
// activation below. An implicit GEMM (conv_gemm.wgsl, prepended):
//   M = co, N = n·oh·ow (column j = sample·oh·ow + pixel), K = ci·kh·kw;
//   A = w as stored ([co, ci·kh·kw] row-major), B = the im2col matrix of x, gathered.
// Twin: src/kernels/conv_cpu.rs.

struct Params {
    n: u32,
    ci: u32,
    h: u32,        // input height and width
    w: u32,
    co: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    flags: u32,    // bit 0: + bias[co]; bit 3: ⊙ f'(y), y bound as `bias`, indexed like the output
    act: u32,
    alpha: f32,
    x_off: u32,
    weight_off: u32,
    bias_off: u32,
    y_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn out_h() -> u32 {
    return (p.h + 2u * p.pad - p.kh) / p.stride + 1u;
}

fn out_w() -> u32 {
    return (p.w + 2u * p.pad - p.kw) / p.stride + 1u;
}

fn load_a(m: u32, k: u32, ki: vec4<i32>) -> f32 {
    if m >= p.co {
        return 0.0;
    }
    return weight[p.weight_off + m * p.ci * p.kh * p.kw + k];
}

// Tap k = (c, ky, kx): (its offset c·h·w + ky·w + kx in a sample, ky, kx).
fn k_info(k: u32) -> vec4<i32> {
    let khw = p.kh * p.kw;
    let c = k / khw;
    let r = k % khw;
    let ky = r / p.kw;
    let kx = r % p.kw;
    return vec4<i32>(i32(c * p.h * p.w + ky * p.w + kx), i32(ky), i32(kx), 0);
}

// Column j = (sample, oh, ow): (the offset of its tap (0, 0, 0), its top input row and left
// input column (negative in the padding), j < N).
fn n_info(j: u32) -> vec4<i32> {
    let ow = out_w();
    let ohw = out_h() * ow;
    let s = j / ohw;
    let pix = j % ohw;
    let ih = i32((pix / ow) * p.stride) - i32(p.pad);
    let iw = i32((pix % ow) * p.stride) - i32(p.pad);
    return vec4<i32>(i32(s * p.ci * p.h * p.w) + ih * i32(p.w) + iw, ih, iw, i32(j < p.n * ohw));
}

fn load_b(ki: vec4<i32>, ni: vec4<i32>) -> f32 {
    let ih = ni.y + ki.y;
    let iw = ni.z + ki.z;
    if ih < 0 || iw < 0 || ih >= i32(p.h) || iw >= i32(p.w) {
        return 0.0;
    }
    return x[i32(p.x_off) + ni.x + ki.x];
}

// What the store step adds or multiplies by for output o of channel c (see conv_epilogue).
fn store_extra(o: u32, c: u32) -> f32 {
    if (p.flags & 8u) != 0u {
        return bias[p.bias_off + o];
    }
    if (p.flags & 1u) != 0u {
        return bias[p.bias_off + c];
    }
    return 0.0;
}

@compute @workgroup_size(16, 16)
fn conv2d_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    if p.co <= NARROW {
        // One pixel per invocation, every channel of it (see gemm_narrow).
        let col = wg.x * 256u + li;
        let v = gemm_narrow(col, p.ci * p.kh * p.kw, li);
        let ohw = out_h() * out_w();
        if col < p.n * ohw {
            let s = col / ohw;
            let pix = col % ohw;
            for (var co = 0u; co < p.co; co++) {
                let o = (s * p.co + co) * ohw + pix;
                y[p.y_off + o] = conv_epilogue(p.flags, p.act, p.alpha, v[co], store_extra(o, co));
            }
        }
        return;
    }
    var acc = gemm_tile(row0, col0, p.ci * p.kh * p.kw, li, lid, true, true);
    let ohw = out_h() * out_w();
    for (var j = 0u; j < 4u; j++) {
        let col = col0 + lid.x + 16u * j;
        if col >= p.n * ohw {
            break;
        }
        let s = col / ohw;
        let pix = col % ohw;
        for (var i = 0u; i < 4u; i++) {
            let co = row0 + lid.y + 16u * i;
            if co < p.co {
                let o = (s * p.co + co) * ohw + pix;
                y[p.y_off + o] = conv_epilogue(p.flags, p.act, p.alpha, acc[i][j], store_extra(o, co));
            }
        }
    }
}

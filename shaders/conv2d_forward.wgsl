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

fn load_a(m: u32, k: u32) -> f32 {
    if m >= p.co {
        return 0.0;
    }
    return weight[p.weight_off + m * p.ci * p.kh * p.kw + k];
}

fn load_b(k: u32, j: u32) -> f32 {
    let ow = out_w();
    let ohw = out_h() * ow;
    if j >= p.n * ohw {
        return 0.0;
    }
    let s = j / ohw;
    let pix = j % ohw;
    let khw = p.kh * p.kw;
    let c = k / khw;
    let r = k % khw;
    let ih = i32((pix / ow) * p.stride + r / p.kw) - i32(p.pad);
    let iw = i32((pix % ow) * p.stride + r % p.kw) - i32(p.pad);
    if ih < 0 || iw < 0 || ih >= i32(p.h) || iw >= i32(p.w) {
        return 0.0;
    }
    return x[p.x_off + ((s * p.ci + c) * p.h + u32(ih)) * p.w + u32(iw)];
}

@compute @workgroup_size(16, 16)
fn conv2d_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
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
                var extra = 0.0;
                if (p.flags & 8u) != 0u {
                    extra = bias[p.bias_off + o];
                } else if (p.flags & 1u) != 0u {
                    extra = bias[p.bias_off + co];
                }
                y[p.y_off + o] = conv_epilogue(p.flags, p.act, p.alpha, acc[i][j], extra);
            }
        }
    }
}

// Conv2d's input gradient, NCHW — the transposed convolution, so also ConvTranspose2d's forward:
//   dx[n,ci,ih,iw] = Σ_{co,ky,kx : ih = oh·stride − pad + ky, iw = …} w[co,ci,ky,kx]·dy[n,co,oh,ow]
// then the store step: flags bit 0 adds bias[ci] and applies p.act (ConvTranspose2d's forward);
// bit 3 multiplies by f'(y) of the activation below, y bound as `bias` (indexed like dx).
//
// A gather, not col2im's scatter-add: each dx element sums its own contributions, so there are
// no atomics and the order is fixed. Only the taps with ky ≡ ih + pad (mod stride) reach a given
// row, so the pixels are split into stride² phases (workgroup z) by (ih + pad) mod stride and
// (iw + pad) mod stride; within a phase every pixel has the same taps, ky = rh + stride·ty,
// and each phase is an implicit GEMM (conv_gemm.wgsl) with no structurally-zero terms:
//   M = ci, N = n·hp·wp (the phase's pixels), K = co·khp·kwp (its taps);
//   A(ci, (co,ty,tx)) = w[co,ci,ky,kx], B((co,ty,tx), (s,i,j)) = dy[s,co,q0h+i−ty,q0w+j−tx].
// Twin: src/kernels/conv_cpu.rs.

struct Params {
    n: u32,
    ci: u32,
    h: u32,        // dx's height and width (the convolution's input)
    w: u32,
    co: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    flags: u32,
    act: u32,
    alpha: f32,
    dy_off: u32,
    weight_off: u32,
    bias_off: u32,
    dx_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

// One phase along one axis: its first pixel (ih0), pixel count, first tap (r), tap count,
// and q0 = (ih0 + pad − r) / stride, the dy row its first pixel reads with tap ty = 0.
struct Phase {
    first: u32,
    count: u32,
    r: u32,
    taps: u32,
    q0: u32,
}

fn phase(r: u32, size: u32, k: u32) -> Phase {
    let s = p.stride;
    let first = (r + s - p.pad % s) % s;
    var ph: Phase;
    ph.first = first;
    ph.count = select(0u, (size - first + s - 1u) / s, first < size);
    ph.r = r;
    ph.taps = select(0u, (k - r + s - 1u) / s, r < k);
    ph.q0 = (first + p.pad - r) / s;
    return ph;
}

var<private> ph_h: Phase;
var<private> ph_w: Phase;

fn out_h() -> u32 {
    return (p.h + 2u * p.pad - p.kh) / p.stride + 1u;
}

fn out_w() -> u32 {
    return (p.w + 2u * p.pad - p.kw) / p.stride + 1u;
}

// Tap k = (co, ty, tx) of this phase, ky = rh + stride·ty (and kx):
// (its dy offset co·oh·ow − ty·ow − tx, ty, tx, its weight offset co·ci·kh·kw + ky·kw + kx).
fn k_info(k: u32) -> vec4<i32> {
    let taps = max(ph_h.taps * ph_w.taps, 1u);
    let co = k / taps;
    let t = k % taps;
    let ty = t / max(ph_w.taps, 1u);
    let tx = t % max(ph_w.taps, 1u);
    let ky = ph_h.r + p.stride * ty;
    let kx = ph_w.r + p.stride * tx;
    let ow = out_w();
    return vec4<i32>(
        i32(co * out_h() * ow) - i32(ty * ow + tx),
        i32(ty),
        i32(tx),
        i32(co * p.ci * p.kh * p.kw + ky * p.kw + kx),
    );
}

fn load_a(m: u32, k: u32, ki: vec4<i32>) -> f32 {
    if m >= p.ci {
        return 0.0;
    }
    return weight[i32(p.weight_off + m * p.kh * p.kw) + ki.w];
}

// Column j = (sample, i, jj) of this phase: (the dy offset of its tap (0, 0, 0), the dy row
// and column it reads with ty = tx = 0, j < N).
fn n_info(j: u32) -> vec4<i32> {
    let pix = ph_h.count * ph_w.count;
    if j >= p.n * pix {
        return vec4<i32>(0);
    }
    let s = j / pix;
    let q = j % pix;
    let oy = i32(ph_h.q0 + q / ph_w.count);
    let ox = i32(ph_w.q0 + q % ph_w.count);
    let ow = i32(out_w());
    return vec4<i32>(i32(s * p.co * out_h()) * ow + oy * ow + ox, oy, ox, 1);
}

fn load_b(ki: vec4<i32>, ni: vec4<i32>) -> f32 {
    let oy = ni.y - ki.y;
    let ox = ni.z - ki.z;
    if oy < 0 || ox < 0 || oy >= i32(out_h()) || ox >= i32(out_w()) {
        return 0.0;
    }
    return dy[i32(p.dy_off) + ni.x + ki.x];
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
fn conv2d_backward_input(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    ph_h = phase(wg.z / p.stride, p.h, p.kh);
    ph_w = phase(wg.z % p.stride, p.w, p.kw);
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    let k_len = p.co * phase(wg.z / p.stride, p.h, p.kh).taps * phase(wg.z % p.stride, p.w, p.kw).taps;
    if p.ci <= NARROW {
        // One pixel per invocation, every channel of it (see gemm_narrow).
        let col = wg.x * 256u + li;
        let v = gemm_narrow(col, k_len, li);
        let pix = ph_h.count * ph_w.count;
        if col < p.n * pix {
            let s = col / pix;
            let q = col % pix;
            let ih = ph_h.first + p.stride * (q / ph_w.count);
            let iw = ph_w.first + p.stride * (q % ph_w.count);
            for (var ci = 0u; ci < p.ci; ci++) {
                let o = ((s * p.ci + ci) * p.h + ih) * p.w + iw;
                dx[p.dx_off + o] = conv_epilogue(p.flags, p.act, p.alpha, v[ci], store_extra(o, ci));
            }
        }
        return;
    }
    var acc = gemm_tile(row0, col0, k_len, li, lid, true, true);
    let pix = ph_h.count * ph_w.count;
    for (var j = 0u; j < 4u; j++) {
        let col = col0 + lid.x + 16u * j;
        if col >= p.n * pix {
            break;
        }
        let s = col / pix;
        let q = col % pix;
        let ih = ph_h.first + p.stride * (q / ph_w.count);
        let iw = ph_w.first + p.stride * (q % ph_w.count);
        for (var i = 0u; i < 4u; i++) {
            let ci = row0 + lid.y + 16u * i;
            if ci < p.ci {
                let o = ((s * p.ci + ci) * p.h + ih) * p.w + iw;
                dx[p.dx_off + o] = conv_epilogue(p.flags, p.act, p.alpha, acc[i][j], store_extra(o, ci));
            }
        }
    }
}

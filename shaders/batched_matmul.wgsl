// For each of `batch` products: C[t] = s·(A[t]·B[t]) (+ addend[t]) (+ C[t] when accumulating),
// A[t] [M,K] and B[t] [K,N] read through (row, column, batch) strides — a batch stride of 0
// shares one matrix across the batch — and C[t] (and addend[t]) row-major [M,N] at t·M·N.
// s is scale[0] with flags bit 1, else 1. The self-attention layer's products over positions:
//   energies   E[t] = q[t]ᵀ·k[t]       [N,N] = [N,C/8]·[C/8,N]
//   output     y[t] = x[t] + γ·v[t]·A[t]ᵀ
//   and their gradients, and dx[t] (+)= Wᵀ·d[t] for the 1×1 convolutions (W shared: stride 0).
// Twin: src/kernels/batched_matmul.rs.
//
// The tiling is matmul.wgsl's: each workgroup owns a 64×64 tile of one C[t] (t = workgroup z);
// each of its 16×16 invocations accumulates a 4×4 block in registers; K is walked in 16-deep
// slices staged through workgroup memory (8 KiB). Loads outside the matrix read 0 and stores
// outside are skipped, so every shape works.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    flags: u32,     // bit 0: accumulate into C; bit 1: scale by scale[0]; bit 2: add addend
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    a_bs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    b_bs: u32,
    scale_off: u32,
    addend_off: u32,
    c_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> addend: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>;  // [TK][TM]
var<workgroup> b_tile: array<f32, 1024>;  // [TK][TN]

@compute @workgroup_size(16, 16)
fn batched_matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = wg.z;
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    let a0 = p.a_off + t * p.a_bs;
    let b0 = p.b_off + t * p.b_bs;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // Walk the tile so neighbouring invocations read neighbouring addresses of whichever
    // dimension is contiguous in memory.
    let a_k_fast = p.a_cs == 1u;
    let b_n_fast = p.b_cs == 1u;

    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var r = 0u; r < 4u; r++) {
            let e = li + r * 256u;
            var mm = e / TK;
            var kk = e % TK;
            if !a_k_fast {
                mm = e % TM;
                kk = e / TM;
            }
            let gm = row0 + mm;
            let gk = k0 + kk;
            var v = 0.0;
            if gm < p.m && gk < p.k {
                v = a[a0 + gm * p.a_rs + gk * p.a_cs];
            }
            a_tile[kk * TM + mm] = v;

            var nn = e % TN;
            var kb = e / TN;
            if !b_n_fast {
                nn = e / TK;
                kb = e % TK;
            }
            let gn = col0 + nn;
            let gkb = k0 + kb;
            var w = 0.0;
            if gn < p.n && gkb < p.k {
                w = b[b0 + gkb * p.b_rs + gn * p.b_cs];
            }
            b_tile[kb * TN + nn] = w;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let ar = kk * TM + lid.y;
            let av = vec4<f32>(a_tile[ar], a_tile[ar + 16u], a_tile[ar + 32u], a_tile[ar + 48u]);
            let br = kk * TN + lid.x;
            let bv = vec4<f32>(b_tile[br], b_tile[br + 16u], b_tile[br + 32u], b_tile[br + 48u]);
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
        }
        workgroupBarrier();
    }

    var s = 1.0;
    if (p.flags & 2u) != 0u {
        s = scale[p.scale_off];
    }
    let c0 = t * p.m * p.n;
    var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y + 16u * i;
        if row >= p.m {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + 16u * j;
            if col < p.n {
                let ci = c0 + row * p.n + col;
                var v = s * accs[i][j];
                if (p.flags & 4u) != 0u { v += addend[p.addend_off + ci]; }
                if (p.flags & 1u) != 0u { v += c[p.c_off + ci]; }
                c[p.c_off + ci] = v;
            }
        }
    }
}

// C[M,N] = act(A[M,K]·B[K,N] (+ bias[N]) (+ C when accumulating)). A and B are read through
// (row, column) strides, so this one kernel serves all three products of a linear layer:
//   forward          Y[M,N]  = X[M,K]·W[K,N] + b      A = X  (K, 1)   B = W  (N, 1)
//   backward_input   dX[M,K] = dY[M,N]·Wᵀ            A = dY (N, 1)   B = Wᵀ (1, N)
//   backward_weights dW[K,N] += Xᵀ[K,M]·dY[M,N]       A = Xᵀ (1, K)   B = dY (N, 1)
// Twin: src/kernels/matmul.rs. The store step `epilogue` (bias, accumulate, activation) is
// matmul_epilogue.wgsl, prepended; src/gpu/matmul.rs generates the barrier-free variant.
//
// Each workgroup owns a TM×TN tile of C; each of its 16×16 invocations accumulates a 4×4 block
// in registers (rows ly + 16i, columns lx + 16j). K is walked in TK-deep slices staged through
// workgroup memory. Loads outside the matrix read 0 and stores outside are skipped, so every
// shape works, including those the tile does not divide.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,     // bit 0: add bias; bit 1: accumulate into C; bit 2: bias is one scalar;
                    // bit 3: C = (A·B) ⊙ f'(y), y bound in place of the bias
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_off: u32,
    bias_off: u32,
    act: u32,       // activation code of shaders/activation.wgsl, applied last
    alpha: f32,     // LeakyReLU slope
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>;  // [TK][TM]
var<workgroup> b_tile: array<f32, 1024>;  // [TK][TN]

@compute @workgroup_size(16, 16)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
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
                v = a[p.a_off + gm * p.a_rs + gk * p.a_cs];
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
                w = b[p.b_off + gkb * p.b_rs + gn * p.b_cs];
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

    var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y + 16u * i;
        if row >= p.m {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + 16u * j;
            if col < p.n {
                let ci = p.c_off + row * p.n + col;
                c[ci] = epilogue(accs[i][j], ci, col);
            }
        }
    }
}

// The tile loop the convolution kernels share: an implicit GEMM. Each kernel is a product
// C[M,N] = A[M,K]·B[K,N] whose operands are never materialised: the including shader defines
// load_a(m, k) and load_b(k, n), which gather an element from the tensors (0 outside the matrix
// or the image), so no column buffer is written and no batch has to be chunked to fit one.
//
// Tiling as matmul.wgsl: each workgroup owns a 64×64 tile of C; each of its 16×16 invocations
// accumulates a 4×4 block in registers (rows ly + 16i, columns lx + 16j). K is walked in 16-deep
// slices staged through 8 KiB of workgroup memory. The staging order follows whichever index is
// contiguous in memory (`a_k_fast`, `b_n_fast`), so neighbouring invocations load neighbouring
// words. Twins: src/kernels/conv_cpu.rs.

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>;  // [TK][TM]
var<workgroup> b_tile: array<f32, 1024>;  // [TK][TN]

// The 4×4 block of C owned by invocation (lid.x, lid.y) of the tile at (row0, col0), for a
// K of `k_len` (uniform across the workgroup: every invocation reaches the barriers).
fn gemm_tile(row0: u32, col0: u32, k_len: u32, li: u32, lid: vec3<u32>, a_k_fast: bool, b_n_fast: bool) -> array<vec4<f32>, 4> {
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < k_len; k0 += TK) {
        for (var r = 0u; r < 4u; r++) {
            let e = li + r * 256u;
            var mm = e / TK;
            var kk = e % TK;
            if !a_k_fast {
                mm = e % TM;
                kk = e / TM;
            }
            var av = 0.0;
            if k0 + kk < k_len {
                av = load_a(row0 + mm, k0 + kk);
            }
            a_tile[kk * TM + mm] = av;
            var nn = e % TN;
            var kb = e / TN;
            if !b_n_fast {
                nn = e / TK;
                kb = e % TK;
            }
            var bv = 0.0;
            if k0 + kb < k_len {
                bv = load_b(k0 + kb, col0 + nn);
            }
            b_tile[kb * TN + nn] = bv;
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
    return array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
}

// The store step of the forward and input-gradient kernels (flags as the matmul's):
// bit 0 adds `extra` (the bias of the output channel), then activation `act` is applied;
// bit 3 returns v ⊙ f'(y) instead, `extra` holding y (the output of the activation below).
fn conv_epilogue(flags: u32, act: u32, alpha: f32, v: f32, extra: f32) -> f32 {
    if (flags & 8u) != 0u {
        return act_grad(act, alpha, v, extra);
    }
    var r = v;
    if (flags & 1u) != 0u {
        r += extra;
    }
    return act_apply(act, alpha, r);
}

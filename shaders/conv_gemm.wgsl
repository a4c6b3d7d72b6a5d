// The tile loops the convolution kernels share: an implicit GEMM. Each kernel is a product
// C[M,N] = A[M,K]·B[K,N] whose operands are never materialised: they are gathered from the
// tensors as the tiles are loaded, so no column buffer is written and no batch has to be
// chunked to fit one. The including shader defines how an index decodes:
//   k_info(k) -> vec4<i32>       what B's (and A's) addresses need of reduction index k
//   n_info(n) -> vec4<i32>       what B's address needs of column n (its .w: 1 if n < N)
//   load_a(m, k, ki) -> f32      A(m, k), 0 past the rows
//   load_b(ki, ni) -> f32        B(k, n), 0 outside the image
// The divisions of a decode are done once per K slice (k_info, into a workgroup table, one
// invocation per entry, the next slice's while the current one loads) and once per column an
// invocation owns (n_info), never per multiply-add.
// Twins: src/kernels/conv_cpu.rs.

// The tiled shape, as matmul.wgsl: each workgroup owns a 64×64 tile of C; each of its 16×16
// invocations accumulates a 4×4 block in registers (rows ly + 16i, columns lx + 16j); K is
// walked in 16-deep slices staged through workgroup memory, in the order that makes
// neighbouring invocations load neighbouring words (`a_k_fast`, `b_n_fast`).
const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>;  // [TK][TM]
var<workgroup> b_tile: array<f32, 1024>;  // [TK][TN]
// k_info of the current and the next K slice (64 entries each for the narrow shape).
var<workgroup> kinfo: array<vec4<i32>, 128>;

// The 4×4 block of C owned by invocation (lid.x, lid.y) of the tile at (row0, col0), for a
// K of `k_len` (uniform across the workgroup: every invocation reaches the barriers).
fn gemm_tile(row0: u32, col0: u32, k_len: u32, li: u32, lid: vec3<u32>, a_k_fast: bool, b_n_fast: bool) -> array<vec4<f32>, 4> {
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // The 4 tile elements this invocation stages per slice: (row or k, column) of each.
    var am: array<u32, 4>;
    var ak: array<u32, 4>;
    var bn: array<u32, 4>;
    var bk: array<u32, 4>;
    var ni: array<vec4<i32>, 4>;
    for (var r = 0u; r < 4u; r++) {
        let e = li + r * 256u;
        am[r] = select(e % TM, e / TK, a_k_fast);
        ak[r] = select(e / TM, e % TK, a_k_fast);
        bn[r] = select(e / TK, e % TN, b_n_fast);
        bk[r] = select(e % TK, e / TN, b_n_fast);
        ni[r] = n_info(col0 + bn[r]);
    }
    if li < TK {
        kinfo[li] = k_info(li);
    }
    workgroupBarrier();
    var cur = 0u;
    for (var k0 = 0u; k0 < k_len; k0 += TK) {
        for (var r = 0u; r < 4u; r++) {
            var av = 0.0;
            if k0 + ak[r] < k_len {
                av = load_a(row0 + am[r], k0 + ak[r], kinfo[cur + ak[r]]);
            }
            a_tile[ak[r] * TM + am[r]] = av;
            var bv = 0.0;
            if k0 + bk[r] < k_len && ni[r].w != 0 {
                bv = load_b(kinfo[cur + bk[r]], ni[r]);
            }
            b_tile[bk[r] * TN + bn[r]] = bv;
        }
        if li < TK {
            kinfo[(cur ^ 64u) + li] = k_info(k0 + TK + li);
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
        cur ^= 64u;
    }
    return array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
}

// The narrow shape: a product with at most 4 rows (an output of 1–4 channels, such as a
// generator's image layer) would waste at least 60 of a tile's 64 rows, so each of the 256
// invocations owns one column (pixel) and accumulates all its rows in one vec4, A's rows of
// each 64-deep K slice staged through workgroup memory; each B value is read by its one user.
const NARROW: u32 = 4u;
const NK: u32 = 64u;

fn gemm_narrow(col: u32, k_len: u32, li: u32) -> vec4<f32> {
    var acc = vec4<f32>(0.0);
    let ni = n_info(col);
    if li < NK {
        kinfo[li] = k_info(li);
    }
    workgroupBarrier();
    var cur = 0u;
    for (var k0 = 0u; k0 < k_len; k0 += NK) {
        // a_tile[kk·4 + m] = A(m, k0 + kk): 256 values, one per invocation.
        let kk = li / NARROW;
        var av = 0.0;
        if k0 + kk < k_len {
            av = load_a(li % NARROW, k0 + kk, kinfo[cur + kk]);
        }
        a_tile[li] = av;
        if li < NK {
            kinfo[(cur ^ 64u) + li] = k_info(k0 + NK + li);
        }
        workgroupBarrier();
        let n = min(NK, k_len - k0);
        if ni.w != 0 {
            for (var j = 0u; j < n; j++) {
                let a = vec4<f32>(a_tile[j * 4u], a_tile[j * 4u + 1u], a_tile[j * 4u + 2u], a_tile[j * 4u + 3u]);
                acc += a * load_b(kinfo[cur + j], ni);
            }
        }
        workgroupBarrier();
        cur ^= 64u;
    }
    return acc;
}

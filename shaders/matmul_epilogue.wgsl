// The store step both matmul kernels share (needs activation_fns.wgsl, and the including
// shader's `p`, `bias` and `c`): + bias, + C, then the fused activation — or, with flags bit 3,
// the product times f' of activation p.act from its output y, bound in place of the bias and
// indexed like C. Twin: src/kernels/matmul.rs (matmul_cpu).
fn epilogue(v: f32, ci: u32, col: u32) -> f32 {
    var r = v;
    if (p.flags & 8u) != 0u {
        return act_grad(p.act, p.alpha, r, bias[p.bias_off + ci - p.c_off]);
    }
    // flags bit 2: one bias value for every column (a product computed transposed).
    if (p.flags & 1u) != 0u { r += bias[p.bias_off + select(col, 0u, (p.flags & 4u) != 0u)]; }
    if (p.flags & 2u) != 0u { r += c[ci]; }
    return act_apply(p.act, p.alpha, r);
}

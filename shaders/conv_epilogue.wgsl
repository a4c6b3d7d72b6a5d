// The store step of the convolutions' forward and input-gradient kernels, tiled
// (conv_gemm.wgsl) and generated (src/gpu/conv_register.rs); flags as the matmul's:
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

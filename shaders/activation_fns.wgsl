// Activations shared by the elementwise kernels and the matmul's store step. Codes:
// 0 identity, 1 ReLU, 2 LeakyReLU(alpha), 3 tanh, 4 sigmoid. Every derivative is written in terms
// of the forward *output* y, so a pre-activation never has to be kept.
// Twin: src/kernels/activation.rs.

// tanh saturates to ±1 in f32 beyond |x| = 9; clamping keeps drivers whose tanh overflows
// through exp() from returning NaN.
fn stable_tanh(v: f32) -> f32 {
    return tanh(clamp(v, -15.0, 15.0));
}

fn stable_sigmoid(v: f32) -> f32 {
    if v >= 0.0 {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

fn act_apply(kind: u32, alpha: f32, v: f32) -> f32 {
    switch kind {
        case 1u: { return max(v, 0.0); }
        case 2u: { return select(alpha * v, v, v > 0.0); }
        case 3u: { return stable_tanh(v); }
        case 4u: { return stable_sigmoid(v); }
        default: { return v; }
    }
}

// f'(x)·g from y = f(x).
fn act_grad(kind: u32, alpha: f32, g: f32, y: f32) -> f32 {
    switch kind {
        case 1u: { return select(0.0, g, y > 0.0); }
        case 2u: { return select(alpha * g, g, y > 0.0); }
        case 3u: { return g * (1.0 - y * y); }
        case 4u: { return g * y * (1.0 - y); }
        default: { return g; }
    }
}

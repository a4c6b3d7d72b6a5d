// Activations shared by the elementwise kernels and the matmul's store step. Codes:
// 0 identity, 1 ReLU, 2 LeakyReLU(alpha), 3 tanh, 4 sigmoid. Every derivative is written in terms
// of the forward *output* y, so a pre-activation never has to be kept.
// Twin: src/kernels/activation.rs.

// tanh as the CPU twin computes it (src/kernels/activation.rs, fast_tanh): a rational function
// (odd degree-13 over even degree-6, Eigen's), clamped where tanh is ±1 in f32. It uses only
// +, * (correctly rounded in WGSL) and one / (2.5 ULP), so its error is a few ULP on every
// conforming adapter, where WGSL's tanh inherits sinh/cosh's absolute error (large relative
// error near 0) and a driver's exp may overflow.
fn stable_tanh(v: f32) -> f32 {
    let x = clamp(v, -7.905311, 7.905311);
    let x2 = x * x;
    var p = -2.7607685e-16;
    p = p * x2 + 2.000188e-13;
    p = p * x2 + -8.604672e-11;
    p = p * x2 + 5.122297e-8;
    p = p * x2 + 1.4857224e-5;
    p = p * x2 + 6.3726193e-4;
    p = p * x2 + 4.8935246e-3;
    var q = 1.1982584e-6;
    q = q * x2 + 1.185347e-4;
    q = q * x2 + 2.2684346e-3;
    q = q * x2 + 4.893525e-3;
    return x * p / q;
}

// σ(v) = (1 + tanh(v/2)) / 2, as the CPU twin (fast_sigmoid).
fn stable_sigmoid(v: f32) -> f32 {
    return 0.5 + 0.5 * stable_tanh(0.5 * v);
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

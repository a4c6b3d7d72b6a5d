// Elementwise activations. Backward takes the forward *output* y (every derivative here is a
// function of y), so the pre-activation never has to be kept.
// Kinds: 0 identity, 1 ReLU, 2 LeakyReLU(alpha), 3 tanh, 4 sigmoid.
// Twin: src/cpu/kernels.rs (activation_forward, activation_backward).

struct Params {
    n: u32,
    kind: u32,
    alpha: f32,
    x_off: u32,   // forward: x; backward: dy
    y_off: u32,   // forward: y (out); backward: y
    out_off: u32, // backward: dx (out)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

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

fn act(kind: u32, v: f32) -> f32 {
    switch kind {
        case 1u: { return max(v, 0.0); }
        case 2u: { return select(p.alpha * v, v, v > 0.0); }
        case 3u: { return stable_tanh(v); }
        case 4u: { return stable_sigmoid(v); }
        default: { return v; }
    }
}

fn act_grad(kind: u32, g: f32, y: f32) -> f32 {
    switch kind {
        case 1u: { return select(0.0, g, y > 0.0); }
        case 2u: { return select(p.alpha * g, g, y > 0.0); }
        case 3u: { return g * (1.0 - y * y); }
        case 4u: { return g * y * (1.0 - y); }
        default: { return g; }
    }
}

// y = f(x); y_in is unused (bound to x).
@compute @workgroup_size(256)
fn activation_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        out[p.y_off + i] = act(p.kind, x[p.x_off + i]);
    }
}

// dx = f'(x)·dy, with f' written in terms of y = f(x); x holds dy here.
@compute @workgroup_size(256)
fn activation_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        out[p.out_off + i] = act_grad(p.kind, x[p.x_off + i], y_in[p.y_off + i]);
    }
}

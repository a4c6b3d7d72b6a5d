// Fused optimizer updates over a whole network's flat parameter buffer, one dispatch each, four
// parameters per invocation (the host pads every parameter buffer to a multiple of 4 words and
// binds whole buffers, so views are 16-byte aligned; offsets are in words).
// Twin: src/kernels/optimizer.rs.

struct Params {
    n: u32,          // parameters, a multiple of 4
    param_off: u32,
    grad_off: u32,
    m_off: u32,
    v_off: u32,
    lr: f32,
    beta1: f32,      // SGD: momentum
    beta2: f32,      // RMSProp: α, the decay of the mean square
    eps: f32,
    step_size: f32,  // Adam: lr / (1 - β1^t)
    bc2_sqrt: f32,   // Adam: sqrt(1 - β2^t)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4<f32>>;   // SGD: the velocity; RMSProp: the mean square
@group(0) @binding(4) var<storage, read_write> v: array<vec4<f32>>;   // Adam only

// The paper's SGD with momentum: v ← μ·v − lr·g;  θ ← θ + v.
@compute @workgroup_size(256)
fn sgd_momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let po = p.param_off / 4u;
    let go = p.grad_off / 4u;
    let mo = p.m_off / 4u;
    for (var i = gid.x; i < p.n / 4u; i += nwg.x * 256u) {
        let vel = p.beta1 * m[mo + i] - p.lr * grad[go + i];
        m[mo + i] = vel;
        param[po + i] += vel;
    }
}

// Adam (Kingma & Ba) with bias correction, in PyTorch's arrangement:
// θ ← θ − lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + ε).
@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let po = p.param_off / 4u;
    let go = p.grad_off / 4u;
    let mo = p.m_off / 4u;
    let vo = p.v_off / 4u;
    for (var i = gid.x; i < p.n / 4u; i += nwg.x * 256u) {
        let g = grad[go + i];
        let mi = p.beta1 * m[mo + i] + (1.0 - p.beta1) * g;
        let vi = p.beta2 * v[vo + i] + (1.0 - p.beta2) * g * g;
        m[mo + i] = mi;
        v[vo + i] = vi;
        param[po + i] -= p.step_size * mi / (sqrt(vi) / p.bc2_sqrt + p.eps);
    }
}

// RMSProp as PyTorch's (no momentum, not centred): sq ← α·sq + (1−α)·g²;  θ ← θ − lr·g / (sqrt(sq) + ε).
@compute @workgroup_size(256)
fn rmsprop(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let po = p.param_off / 4u;
    let go = p.grad_off / 4u;
    let mo = p.m_off / 4u;
    for (var i = gid.x; i < p.n / 4u; i += nwg.x * 256u) {
        let g = grad[go + i];
        let sq = p.beta2 * m[mo + i] + (1.0 - p.beta2) * g * g;
        m[mo + i] = sq;
        param[po + i] -= p.lr * g / (sqrt(sq) + p.eps);
    }
}

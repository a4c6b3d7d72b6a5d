// Fused optimizer updates over a whole network's flat parameter buffer, one dispatch each.
// Twin: src/cpu/kernels.rs (sgd_momentum, adam).

struct Params {
    n: u32,
    param_off: u32,
    grad_off: u32,
    m_off: u32,
    v_off: u32,
    lr: f32,
    beta1: f32,      // SGD: momentum
    beta2: f32,
    eps: f32,
    step_size: f32,  // Adam: lr / (1 - β1^t)
    bc2_sqrt: f32,   // Adam: sqrt(1 - β2^t)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

// The paper's SGD with momentum: v ← μ·v − lr·g;  θ ← θ + v.  (`v` is unused.)
@compute @workgroup_size(256)
fn sgd_momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        let vel = p.beta1 * m[p.m_off + i] - p.lr * grad[p.grad_off + i];
        m[p.m_off + i] = vel;
        param[p.param_off + i] += vel;
    }
}

// Adam (Kingma & Ba) with bias correction, in PyTorch's arrangement:
// θ ← θ − lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + ε).
@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        let g = grad[p.grad_off + i];
        let mi = p.beta1 * m[p.m_off + i] + (1.0 - p.beta1) * g;
        let vi = p.beta2 * v[p.v_off + i] + (1.0 - p.beta2) * g * g;
        m[p.m_off + i] = mi;
        v[p.v_off + i] = vi;
        param[p.param_off + i] -= p.step_size * mi / (sqrt(vi) / p.bc2_sqrt + p.eps);
    }
}

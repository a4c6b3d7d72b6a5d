// Adam over four parameters per invocation: the same update as `adam` in optimizer.wgsl, read
// and written as vec4 (on llvmpipe each per-invocation access is a loop over the SIMD lanes, so
// one vec4 access costs about what one f32 access does). Offsets are in vec4 units; the host
// runs the scalar kernel on the last n % 4 parameters. Twin: src/cpu/kernels.rs::adam.

struct Params {
    n4: u32,
    param_off: u32,
    grad_off: u32,
    m_off: u32,
    v_off: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,  // lr / (1 - β1^t)
    bc2_sqrt: f32,   // sqrt(1 - β2^t)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v: array<vec4<f32>>;

@compute @workgroup_size(256)
fn adam_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n4; i += nwg.x * 256u) {
        let g = grad[p.grad_off + i];
        let mi = p.beta1 * m[p.m_off + i] + (1.0 - p.beta1) * g;
        let vi = p.beta2 * v[p.v_off + i] + (1.0 - p.beta2) * g * g;
        m[p.m_off + i] = mi;
        v[p.v_off + i] = vi;
        param[p.param_off + i] -= p.step_size * mi / (sqrt(vi) / p.bc2_sqrt + p.eps);
    }
}

// Elementwise activations (functions in activation_fns.wgsl, prepended).
//   activation_forward   out = f(x)                 (y unused)
//   activation_backward  out = f'·x, x holding dy    (f' from the forward output y)
// Twin: src/kernels/activation.rs.

struct Params {
    n: u32,
    kind: u32,
    alpha: f32,
    x_off: u32,
    y_off: u32,
    out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn activation_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        out[p.out_off + i] = act_apply(p.kind, p.alpha, x[p.x_off + i]);
    }
}

@compute @workgroup_size(256)
fn activation_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        out[p.out_off + i] = act_grad(p.kind, p.alpha, x[p.x_off + i], y[p.y_off + i]);
    }
}

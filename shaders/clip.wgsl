// Weight clipping (Arjovsky et al. 2017): param ← clamp(param, -c, c) over a network's whole
// flat parameter buffer, after each critic update, so the critic stays K-Lipschitz for some K.
// Twin: src/kernels/clip.rs.

struct Params {
    n: u32,
    param_off: u32,
    c: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;

@compute @workgroup_size(256)
fn clip_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        param[p.param_off + i] = clamp(param[p.param_off + i], -p.c, p.c);
    }
}

// Weight clipping (Arjovsky et al. 2017): param ← clamp(param, -c, c) over a network's whole
// flat parameter buffer, after each critic update, so the critic stays K-Lipschitz for some K.
// Four parameters per invocation: parameter buffers are padded to a multiple of 4 words and
// 16-byte aligned (optimizer::pad4); n and param_off are in words.
// Twin: src/kernels/clip.rs.

struct Params {
    n: u32,
    param_off: u32,
    c: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<vec4<f32>>;

@compute @workgroup_size(256)
fn clip_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let po = p.param_off / 4u;
    for (var i = gid.x; i < p.n / 4u; i += nwg.x * 256u) {
        param[po + i] = clamp(param[po + i], vec4<f32>(-p.c), vec4<f32>(p.c));
    }
}

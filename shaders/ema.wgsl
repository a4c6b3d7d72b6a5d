// Exponential moving average of parameters: avg ← decay·avg + (1 − decay)·param. Sampling from
// the averaged generator (Yazıcı et al. 2019) removes the step-to-step jitter of GAN training.
// Twin: src/kernels/ema.rs.

struct Params {
    n: u32,
    avg_off: u32,
    param_off: u32,
    decay: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> param: array<f32>;
@group(0) @binding(2) var<storage, read_write> avg: array<f32>;

@compute @workgroup_size(256)
fn ema_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        avg[p.avg_off + i] = p.decay * avg[p.avg_off + i] + (1.0 - p.decay) * param[p.param_off + i];
    }
}

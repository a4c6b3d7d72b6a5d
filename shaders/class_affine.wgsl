// Class-conditional batch norm's affine step (de Vries et al. 2017; Miyato & Koyama 2018):
// after normalising with gamma 1 and beta 0, each row is scaled and shifted by its class's own
// gamma and beta. table = [gamma: classes × C | beta: classes × C]; x̂, y are [rows, C, spatial].
//   class_affine_forward          out = gamma[k, c]·src + beta[k, c]        (src = x̂, k = class)
//   class_affine_backward_input   out = gamma[k, c]·src                     (src = dy: dx̂)
//   class_affine_backward_params  dtable = [Σ_{rows of class k} Σ_s dy·x̂ | Σ dy]   (src = x̂):
//                                 one invocation per (k, c) summing its class's rows in
//                                 order — deterministic, no atomics
// Twin: src/kernels/class_affine.rs.

struct Params {
    rows: u32,
    channels: u32,
    spatial: u32,
    classes: u32,
    src_off: u32,
    table_off: u32,
    labels_off: u32,
    out_off: u32,
    dy_off: u32,
    dtable_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dtable: array<f32>;

fn class_of(r: u32) -> u32 {
    return min(labels[p.labels_off + r], p.classes - 1u);
}

@compute @workgroup_size(256)
fn class_affine_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.channels * p.spatial;
    let kc = p.classes * p.channels;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let c = (i / p.spatial) % p.channels;
        let r = i / (p.spatial * p.channels);
        let at = p.table_off + class_of(r) * p.channels + c;
        out[p.out_off + i] = table[at] * src[p.src_off + i] + table[at + kc];
    }
}

@compute @workgroup_size(256)
fn class_affine_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.channels * p.spatial;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let c = (i / p.spatial) % p.channels;
        let r = i / (p.spatial * p.channels);
        out[p.out_off + i] = table[p.table_off + class_of(r) * p.channels + c] * src[p.src_off + i];
    }
}

@compute @workgroup_size(256)
fn class_affine_backward_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let kc = p.classes * p.channels;
    for (var i = gid.x; i < kc; i += nwg.x * 256u) {
        let k = i / p.channels;
        let c = i % p.channels;
        var dgamma = 0.0;
        var dbeta = 0.0;
        for (var r = 0u; r < p.rows; r++) {
            if class_of(r) != k {
                continue;
            }
            let base = (r * p.channels + c) * p.spatial;
            for (var s = 0u; s < p.spatial; s++) {
                let g = dy[p.dy_off + base + s];
                dgamma += g * src[p.src_off + base + s];
                dbeta += g;
            }
        }
        dtable[p.dtable_off + i] = dgamma;
        dtable[p.dtable_off + kc + i] = dbeta;
    }
}

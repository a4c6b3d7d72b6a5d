// The projection discriminator's class term (Miyato & Koyama 2018): D(x, y) = ψ(φ(x)) +
// ⟨embed(y), φ(x)⟩, added to the output of the unconditional linear head ψ that ran before.
// rowvec is φ [rows, features], scalar one value per row, table [classes, features].
//   projection_forward            out[r] += ⟨table[k_r], rowvec[r]⟩ (one invocation per row)
//   projection_backward_input     out[r, j] += scalar[r]·table[k_r, j]     (scalar = dy: dφ)
//   projection_backward_embedding dtable[k, j] (+)= Σ_{r: k_r = k} scalar[r]·rowvec[r, j]: one
//                                 invocation per (k, j) over its class's rows in order —
//                                 deterministic, no atomics
// Twin: src/kernels/projection.rs.

struct Params {
    rows: u32,
    features: u32,
    classes: u32,
    accumulate: u32,
    rowvec_off: u32,
    scalar_off: u32,
    table_off: u32,
    labels_off: u32,
    out_off: u32,
    dtable_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> rowvec: array<f32>;
@group(0) @binding(2) var<storage, read> scalar: array<f32>;
@group(0) @binding(3) var<storage, read> table: array<f32>;
@group(0) @binding(4) var<storage, read> labels: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> dtable: array<f32>;

fn class_of(r: u32) -> u32 {
    return min(labels[p.labels_off + r], p.classes - 1u);
}

@compute @workgroup_size(64)
fn projection_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var r = gid.x; r < p.rows; r += nwg.x * 64u) {
        let e = p.table_off + class_of(r) * p.features;
        let v = p.rowvec_off + r * p.features;
        var s = 0.0;
        for (var j = 0u; j < p.features; j++) {
            s += table[e + j] * rowvec[v + j];
        }
        out[p.out_off + r] += s;
    }
}

@compute @workgroup_size(256)
fn projection_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.features;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let r = i / p.features;
        let j = i % p.features;
        out[p.out_off + i] += scalar[p.scalar_off + r] * table[p.table_off + class_of(r) * p.features + j];
    }
}

@compute @workgroup_size(256)
fn projection_backward_embedding(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.classes * p.features;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let k = i / p.features;
        let j = i % p.features;
        var s = 0.0;
        for (var r = 0u; r < p.rows; r++) {
            if class_of(r) == k {
                s += scalar[p.scalar_off + r] * rowvec[p.rowvec_off + r * p.features + j];
            }
        }
        if p.accumulate != 0u {
            s += dtable[p.dtable_off + i];
        }
        dtable[p.dtable_off + i] = s;
    }
}

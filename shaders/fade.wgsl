// Weighted sums of two tensors: progressive growing's fade-in blend and its helpers.
//   fade_forward   y = wa·a + wb·b            (the fade: wa = α, wb = 1 − α)
//   fade_backward  y = wa·a, z = wb·a          (a = dy: the gradients of both blended inputs)
//   axpby          y ← wa·y + wb·a, in place   (wa = 0 does not read y, wb = 0 does not read a,
//                                              so y may start as anything: zeroing, scaling,
//                                              accumulating)
// One invocation per value, striding. Twin: src/kernels/fade.rs.

struct Params {
    n: u32,
    wa: f32,
    wb: f32,
    a_off: u32,
    b_off: u32,
    y_off: u32,
    z_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> z: array<f32>;

@compute @workgroup_size(256)
fn fade_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        y[p.y_off + i] = p.wa * a[p.a_off + i] + p.wb * b[p.b_off + i];
    }
}

@compute @workgroup_size(256)
fn fade_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        let d = a[p.a_off + i];
        y[p.y_off + i] = p.wa * d;
        z[p.z_off + i] = p.wb * d;
    }
}

@compute @workgroup_size(256)
fn axpby(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.n; i += nwg.x * 256u) {
        var s = 0.0;
        if (p.wa != 0.0) {
            s = p.wa * y[p.y_off + i];
        }
        if (p.wb != 0.0) {
            s += p.wb * a[p.a_off + i];
        }
        y[p.y_off + i] = s;
    }
}

// Pixelwise feature normalisation (Karras et al. 2018, ProGAN's G): each position's feature
// vector over the channels scaled to unit mean square. x is [rows, channels, plane] (plane =
// H·W; a flat vector of n values is n channels of plane 1); r = 1/sqrt(mean_c x² + 1e-8).
//   pixel_norm_forward   y_c = x_c·r
//   pixel_norm_backward  dx_c = r·(dy_c − y_c·mean_k(dy_k·y_k))   (r recomputed from x)
// One invocation per (row, position), looping over the channels. Twin: src/kernels/pixel_norm.rs.

struct Params {
    rows: u32,
    channels: u32,
    plane: u32,
    x_off: u32,
    dy_off: u32,
    y_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const EPS: f32 = 1e-8;

// The first word of (row, position) i and 1/sqrt(mean square + ε) there.
fn base(i: u32) -> u32 {
    return (i / p.plane) * p.channels * p.plane + i % p.plane;
}

fn inv_rms(b: u32) -> f32 {
    var s = 0.0;
    for (var c = 0u; c < p.channels; c++) {
        let v = x[p.x_off + b + c * p.plane];
        s += v * v;
    }
    return 1.0 / sqrt(s / f32(p.channels) + EPS);
}

@compute @workgroup_size(256)
fn pixel_norm_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.plane;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let b = base(i);
        let r = inv_rms(b);
        for (var c = 0u; c < p.channels; c++) {
            y[p.y_off + b + c * p.plane] = x[p.x_off + b + c * p.plane] * r;
        }
    }
}

@compute @workgroup_size(256)
fn pixel_norm_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.plane;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let b = base(i);
        let r = inv_rms(b);
        var dot = 0.0;
        for (var c = 0u; c < p.channels; c++) {
            dot += dy[p.dy_off + b + c * p.plane] * x[p.x_off + b + c * p.plane] * r;
        }
        let m = dot / f32(p.channels);
        for (var c = 0u; c < p.channels; c++) {
            let yc = x[p.x_off + b + c * p.plane] * r;
            y[p.y_off + b + c * p.plane] = r * (dy[p.dy_off + b + c * p.plane] - yc * m);
        }
    }
}

// The minibatch standard-deviation feature (Karras et al. 2018, ProGAN's D): each group of
// `group` consecutive rows gets one more channel holding s, the mean over every (channel,
// position) of the group's standard deviation there. x is [rows, C, plane], y [rows, C + 1,
// plane]; P = C·plane; for group g of rows n0..n0+G at position p: μ_p = mean of x, d = x − μ_p,
// σ_p = sqrt(mean d² + 1e-8), s = (1/P) Σ_p σ_p.
//   minibatch_std_forward   y = [x | s]
//   minibatch_std_backward  dx = dy[:C] + S·d/(P·G·σ_p), S = Σ over the group of dy's extra channel
//   minibatch_std_tangent   the gradient penalty's pass (v the tangent, dy the δ of the last
//                           backward): y = [v | ṡ], ṡ = Σ_p Σ_g d·v/(P·G·σ_p), and the
//                           second-order term u = ∂(S·ṡ)/∂x with v and S held:
//                           u = S/(P·G)·((v − v̄_p)/σ_p − a_p·d/(G·σ_p³)), a_p = Σ_g d·v
// One workgroup per group; the sums over positions are fixed-order trees (deterministic, no
// atomics). Twin: src/kernels/minibatch_std.rs.

struct Params {
    rows: u32,
    group: u32,
    channels: u32,
    plane: u32,
    x_off: u32,
    v_off: u32,
    dy_off: u32,
    y_off: u32,
    u_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> u: array<f32>;

const EPS: f32 = 1e-8;

var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;

// (μ, σ) of the group starting at row n0 at position pos.
fn stats(n0: u32, pos: u32) -> vec2<f32> {
    let len = p.channels * p.plane;
    var m = 0.0;
    for (var g = 0u; g < p.group; g++) {
        m += x[p.x_off + (n0 + g) * len + pos];
    }
    m /= f32(p.group);
    var s = 0.0;
    for (var g = 0u; g < p.group; g++) {
        let d = x[p.x_off + (n0 + g) * len + pos] - m;
        s += d * d;
    }
    return vec2<f32>(m, sqrt(s / f32(p.group) + EPS));
}

fn reduce(lid: u32) {
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red_a[lid] += red_a[lid + s];
            red_b[lid] += red_b[lid + s];
        }
        workgroupBarrier();
    }
}

// S: the sum of dy's extra channel over the group's rows.
fn extra_sum(n0: u32, lid: u32) -> f32 {
    let len = p.channels * p.plane;
    var acc = 0.0;
    for (var g = 0u; g < p.group; g++) {
        for (var i = lid; i < p.plane; i += 256u) {
            acc += dy[p.dy_off + (n0 + g) * (len + p.plane) + len + i];
        }
    }
    return acc;
}

@compute @workgroup_size(256)
fn minibatch_std_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n0 = wid.x * p.group;
    let len = p.channels * p.plane;
    var acc = 0.0;
    for (var pos = lid; pos < len; pos += 256u) {
        acc += stats(n0, pos).y;
    }
    red_a[lid] = acc;
    red_b[lid] = 0.0;
    reduce(lid);
    let s = red_a[0] / f32(len);
    for (var g = 0u; g < p.group; g++) {
        let row = n0 + g;
        for (var pos = lid; pos < len; pos += 256u) {
            y[p.y_off + row * (len + p.plane) + pos] = x[p.x_off + row * len + pos];
        }
        for (var i = lid; i < p.plane; i += 256u) {
            y[p.y_off + row * (len + p.plane) + len + i] = s;
        }
    }
}

@compute @workgroup_size(256)
fn minibatch_std_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n0 = wid.x * p.group;
    let len = p.channels * p.plane;
    red_a[lid] = extra_sum(n0, lid);
    red_b[lid] = 0.0;
    reduce(lid);
    let coef = red_a[0] / (f32(len) * f32(p.group));
    for (var pos = lid; pos < len; pos += 256u) {
        let st = stats(n0, pos);
        for (var g = 0u; g < p.group; g++) {
            let row = n0 + g;
            let d = x[p.x_off + row * len + pos] - st.x;
            y[p.y_off + row * len + pos] = dy[p.dy_off + row * (len + p.plane) + pos] + coef * d / st.y;
        }
    }
}

@compute @workgroup_size(256)
fn minibatch_std_tangent(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n0 = wid.x * p.group;
    let len = p.channels * p.plane;
    var acc = 0.0;
    for (var pos = lid; pos < len; pos += 256u) {
        let st = stats(n0, pos);
        var a = 0.0;
        for (var g = 0u; g < p.group; g++) {
            let row = n0 + g;
            a += (x[p.x_off + row * len + pos] - st.x) * v[p.v_off + row * len + pos];
        }
        acc += a / st.y;
    }
    red_a[lid] = extra_sum(n0, lid);
    red_b[lid] = acc;
    reduce(lid);
    let pg = f32(len) * f32(p.group);
    let s_dot = red_b[0] / pg;
    let coef = red_a[0] / pg;
    for (var pos = lid; pos < len; pos += 256u) {
        let st = stats(n0, pos);
        var a = 0.0;
        var vbar = 0.0;
        for (var g = 0u; g < p.group; g++) {
            let row = n0 + g;
            let vv = v[p.v_off + row * len + pos];
            a += (x[p.x_off + row * len + pos] - st.x) * vv;
            vbar += vv;
        }
        vbar /= f32(p.group);
        let s3 = st.y * st.y * st.y;
        for (var g = 0u; g < p.group; g++) {
            let row = n0 + g;
            let vv = v[p.v_off + row * len + pos];
            let d = x[p.x_off + row * len + pos] - st.x;
            y[p.y_off + row * (len + p.plane) + pos] = vv;
            u[p.u_off + row * len + pos] = coef * ((vv - vbar) / st.y - a * d / (f32(p.group) * s3));
        }
    }
    for (var g = 0u; g < p.group; g++) {
        for (var i = lid; i < p.plane; i += 256u) {
            y[p.y_off + (n0 + g) * (len + p.plane) + len + i] = s_dot;
        }
    }
}

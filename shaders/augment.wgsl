// Differentiable augmentation (Zhao et al. 2020, DiffAugment's `color,translation,cutout`) of
// D's input images, each image with its own random draw. x is [images, C, H, W].
//   colour       brightness b ~ U(−½, ½), saturation s ~ U(0, 2) about the mean over the
//                channels μ, contrast c ~ U(½, 3/2) about the image's mean A: together
//                z = c·s·x + c·(1 − s)·μ + (1 − c)·A + b
//   translation  y(i, j) = z(i + ty, j + tx) inside the image, 0 outside; tx, ty uniform in
//                [−shift, shift]
//   cutout       y = 0 on a cut_y × cut_x rectangle whose top-left corner is drawn uniformly
//                (DiffAugment's offsets: the rectangle may hang over the edge)
// The whole map is affine in x, so backward is its transpose and the tangent pass is the map
// without b (flags bit 1). Draws come from Philox at (counter + 2·image, +1), so backward and
// the tangent redraw the forward's. One workgroup per image; the image sums are fixed-order
// trees (deterministic, no atomics). Twin: src/kernels/augment.rs. Philox is prepended.

struct Params {
    images: u32,
    channels: u32,
    height: u32,
    width: u32,
    src_off: u32,
    dst_off: u32,
    // bit 0: colour; bit 1: the linear part only (no brightness offset).
    flags: u32,
    shift_x: u32,
    shift_y: u32,
    cut_x: u32,
    cut_y: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    ctr_lo: u32,
    ctr_hi: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

var<workgroup> red: array<f32, 256>;

struct Draw {
    b: f32,
    s: f32,
    c: f32,
    tx: i32,
    ty: i32,
    x0: i32,
    y0: i32,
}

fn draw(image: u32) -> Draw {
    let a = philox_words(p.seed_lo, p.seed_hi, p.stream, p.ctr_lo, p.ctr_hi, 2u * image);
    let e = philox_words(p.seed_lo, p.seed_hi, p.stream, p.ctr_lo, p.ctr_hi, 2u * image + 1u);
    let colour = (p.flags & 1u) != 0u;
    let linear = (p.flags & 2u) != 0u;
    var d: Draw;
    d.b = select(0.0, unit_open_high(a.x) - 0.5, colour && !linear);
    d.s = select(1.0, 2.0 * unit_open_high(a.y), colour);
    d.c = select(1.0, unit_open_high(a.z) + 0.5, colour);
    d.tx = i32(a.w % (2u * p.shift_x + 1u)) - i32(p.shift_x);
    d.ty = i32(e.x % (2u * p.shift_y + 1u)) - i32(p.shift_y);
    d.x0 = i32(e.y % (p.width + 1u - p.cut_x % 2u)) - i32(p.cut_x / 2u);
    d.y0 = i32(e.z % (p.height + 1u - p.cut_y % 2u)) - i32(p.cut_y / 2u);
    return d;
}

fn inside(i: i32, j: i32) -> bool {
    return i >= 0 && i < i32(p.height) && j >= 0 && j < i32(p.width);
}

// Whether output position (i, j) lies in the image and shows it: its source (i + ty, j + tx)
// lies inside too and (i, j) is not cut out.
fn shown(d: Draw, i: i32, j: i32) -> bool {
    let inside = inside(i, j) && inside(i + d.ty, j + d.tx);
    let cut = j >= d.x0 && j < d.x0 + i32(p.cut_x) && i >= d.y0 && i < d.y0 + i32(p.cut_y);
    return inside && !cut;
}

// dst at every channel of position `out`: c·s·v + c·(1 − s)·(mean of v over the channels) + k,
// v the channels of src at position `at`.
fn mix(at: u32, out: u32, d: Draw, k: f32) {
    let hw = p.height * p.width;
    var mu = 0.0;
    for (var ch = 0u; ch < p.channels; ch++) {
        mu += src[at + ch * hw];
    }
    mu /= f32(p.channels);
    for (var ch = 0u; ch < p.channels; ch++) {
        dst[out + ch * hw] = d.c * d.s * src[at + ch * hw] + d.c * (1.0 - d.s) * mu + k;
    }
}

fn fill(out: u32, v: f32) {
    for (var ch = 0u; ch < p.channels; ch++) {
        dst[out + ch * p.height * p.width] = v;
    }
}

fn reduce_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(256)
fn augment_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let hw = p.height * p.width;
    let len = p.channels * hw;
    for (var n = wid.x; n < p.images; n += nwg.x) {
        let base = p.src_off + n * len;
        let d = draw(n);
        var mean = 0.0;
        if ((p.flags & 1u) != 0u) {
            var acc = 0.0;
            for (var i = lid; i < len; i += 256u) {
                acc += src[base + i];
            }
            mean = reduce_sum(lid, acc) / f32(len);
        }
        let k = (1.0 - d.c) * mean + d.b;
        for (var q = lid; q < hw; q += 256u) {
            let i = i32(q / p.width);
            let j = i32(q % p.width);
            let out = p.dst_off + n * len + q;
            if (shown(d, i, j)) {
                mix(base + u32(i + d.ty) * p.width + u32(j + d.tx), out, d, k);
            } else {
                fill(out, 0.0);
            }
        }
    }
}

// dx = the transpose: g = dy moved back to its source positions (0 where nothing was shown),
// dx = c·s·g + c·(1 − s)·mean over channels of g + (1 − c)·mean of g over the image.
@compute @workgroup_size(256)
fn augment_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let hw = p.height * p.width;
    let len = p.channels * hw;
    for (var n = wid.x; n < p.images; n += nwg.x) {
        let base = p.src_off + n * len;
        let d = draw(n);
        var mean = 0.0;
        if ((p.flags & 1u) != 0u) {
            var acc = 0.0;
            for (var q = lid; q < hw; q += 256u) {
                if (shown(d, i32(q / p.width), i32(q % p.width))) {
                    for (var ch = 0u; ch < p.channels; ch++) {
                        acc += src[base + q + ch * hw];
                    }
                }
            }
            mean = reduce_sum(lid, acc) / f32(len);
        }
        let k = (1.0 - d.c) * mean;
        for (var q = lid; q < hw; q += 256u) {
            // Source position (a, b) was shown at (a − ty, b − tx).
            let i = i32(q / p.width) - d.ty;
            let j = i32(q % p.width) - d.tx;
            let out = p.dst_off + n * len + q;
            if (shown(d, i, j)) {
                mix(base + u32(i) * p.width + u32(j), out, d, k);
            } else {
                fill(out, k);
            }
        }
    }
}

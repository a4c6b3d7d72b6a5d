// Pooling of NHWC maps x [n, height, width, channels] over k_h×k_w windows with one stride and
// one padding on both axes (floor mode: oh = (height + 2·pad − k_h) / stride + 1, ow alike),
// one invocation per output value of y [n, oh, ow, channels].
//   max_pool2d_nhwc  the window's maximum; padding never wins (PyTorch's max_pool2d)
//   avg_pool2d_nhwc  the mean of the window's values inside the map: padding is not counted
//                    (avg_pool2d(..., count_include_pad=False), pytorch-fid's Inception);
//                    k = the whole map, stride 1, pad 0 is adaptive_avg_pool2d(x, 1)
// Twin: src/kernels/pool2d.rs.

struct Params {
    n: u32,
    height: u32,
    width: u32,
    channels: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    oh: u32,
    ow: u32,
    src_off: u32,
    dst_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// The window of output value i: (first source index of its image, y0, y1, x0, x1, channel),
// clipped to the map.
struct Window {
    base: u32,
    y0: u32,
    y1: u32,
    x0: u32,
    x1: u32,
    c: u32,
}

fn window(i: u32) -> Window {
    let c = i % p.channels;
    let pix = i / p.channels;
    let ox = pix % p.ow;
    let rest = pix / p.ow;
    let oy = rest % p.oh;
    let image = rest / p.oh;
    let ys = i32(oy * p.stride) - i32(p.pad);
    let xs = i32(ox * p.stride) - i32(p.pad);
    var w: Window;
    w.base = p.src_off + image * p.height * p.width * p.channels;
    w.y0 = u32(max(ys, 0));
    w.y1 = u32(min(ys + i32(p.kh), i32(p.height)));
    w.x0 = u32(max(xs, 0));
    w.x1 = u32(min(xs + i32(p.kw), i32(p.width)));
    w.c = c;
    return w;
}

@compute @workgroup_size(256)
fn max_pool2d_nhwc(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.n * p.oh * p.ow * p.channels;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let w = window(i);
        var best = -3.4028235e38;
        for (var y = w.y0; y < w.y1; y++) {
            for (var x = w.x0; x < w.x1; x++) {
                best = max(best, src[w.base + (y * p.width + x) * p.channels + w.c]);
            }
        }
        dst[p.dst_off + i] = best;
    }
}

@compute @workgroup_size(256)
fn avg_pool2d_nhwc(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.n * p.oh * p.ow * p.channels;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let w = window(i);
        var s = 0.0;
        for (var y = w.y0; y < w.y1; y++) {
            for (var x = w.x0; x < w.x1; x++) {
                s += src[w.base + (y * p.width + x) * p.channels + w.c];
            }
        }
        dst[p.dst_off + i] = s / f32((w.y1 - w.y0) * (w.x1 - w.x0));
    }
}

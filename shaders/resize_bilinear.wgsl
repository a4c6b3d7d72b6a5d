// Inception's input: NCHW images x [n, src_channels, height, width] with pixels in [0, 1],
// resized bilinearly to [n, oh, ow] as F.interpolate(x, (oh, ow), mode='bilinear',
// align_corners=False) computes it (source coordinate (d + ½)·in/out − ½, clamped at 0; the
// far neighbour clamped to the edge), then mapped to [−1, 1] (2v − 1), written NHWC
// [n, oh, ow, 3]. Output channel c reads source channel c mod src_channels, so gray images are
// repeated to three channels (PIL's convert('RGB') in pytorch-fid).
//   resize_bilinear_nhwc  one invocation per output value
// Twin: src/kernels/resize.rs.

struct Params {
    n: u32,
    src_channels: u32,
    height: u32,
    width: u32,
    oh: u32,
    ow: u32,
    src_off: u32,
    dst_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// (first index, second index, weight of the second) along an axis of `size_in` resized to
// `size_out`.
fn taps(d: u32, size_in: u32, size_out: u32) -> vec3<f32> {
    let scale = f32(size_in) / f32(size_out);
    let s = max((f32(d) + 0.5) * scale - 0.5, 0.0);
    let i0 = u32(s);
    let i1 = min(i0 + 1u, size_in - 1u);
    return vec3<f32>(f32(i0), f32(i1), s - f32(i0));
}

@compute @workgroup_size(256)
fn resize_bilinear_nhwc(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.n * p.oh * p.ow * 3u;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let c = i % 3u;
        let pix = i / 3u;
        let ox = pix % p.ow;
        let rest = pix / p.ow;
        let oy = rest % p.oh;
        let image = rest / p.oh;
        let ty = taps(oy, p.height, p.oh);
        let tx = taps(ox, p.width, p.ow);
        let plane = p.src_off + (image * p.src_channels + c % p.src_channels) * p.height * p.width;
        let r0 = plane + u32(ty.x) * p.width;
        let r1 = plane + u32(ty.y) * p.width;
        let x0 = u32(tx.x);
        let x1 = u32(tx.y);
        let top = (1.0 - tx.z) * src[r0 + x0] + tx.z * src[r0 + x1];
        let bottom = (1.0 - tx.z) * src[r1 + x0] + tx.z * src[r1 + x1];
        let v = (1.0 - ty.z) * top + ty.z * bottom;
        dst[p.dst_off + i] = 2.0 * v - 1.0;
    }
}

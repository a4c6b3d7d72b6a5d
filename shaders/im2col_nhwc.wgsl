// im2col for an inference-only convolution in NHWC: rows `row0 .. row0 + rows` of the patch
// matrix of x [n, height, width, channels] under a kh×kw kernel with strides (sh, sw) and zero
// padding (ph, pw). Row r is output pixel r = (image, oy, ox) of the [n, oh, ow] grid; column
// (ky·kw + kx)·channels + c holds x[image, oy·sh − ph + ky, ox·sw − pw + kx, c] (0 in the
// padding). The patch matrix times the [kh·kw·channels, out] weights is the convolution.
//   im2col_nhwc  src = x, dst = cols [rows, kh·kw·channels], one invocation per value
// Twin: src/kernels/im2col.rs.

struct Params {
    height: u32,
    width: u32,
    channels: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    oh: u32,
    ow: u32,
    row0: u32,
    rows: u32,
    src_off: u32,
    dst_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn im2col_nhwc(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = p.kh * p.kw * p.channels;
    let n = p.rows * k;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let col = i % k;
        let r = p.row0 + i / k;
        let c = col % p.channels;
        let tap = col / p.channels;
        let kx = tap % p.kw;
        let ky = tap / p.kw;
        let ox = r % p.ow;
        let rest = r / p.ow;
        let oy = rest % p.oh;
        let image = rest / p.oh;
        // Signed: the padding lies at negative coordinates.
        let y = i32(oy * p.sh + ky) - i32(p.ph);
        let x = i32(ox * p.sw + kx) - i32(p.pw);
        var v = 0.0;
        if (y >= 0 && y < i32(p.height) && x >= 0 && x < i32(p.width)) {
            v = src[p.src_off + ((image * p.height + u32(y)) * p.width + u32(x)) * p.channels + c];
        }
        dst[p.dst_off + i] = v;
    }
}

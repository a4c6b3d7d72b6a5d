// 2× average pooling of NCHW planes: [planes, 2·height, 2·width] ↔ [planes, height, width]
// (planes = rows·channels; height and width are the pooled output's).
//   avgpool2x_forward   dst[q, y, x] = ¼ Σ of src's 2×2 block at (2y, 2x), one invocation per
//                       output value
//   avgpool2x_backward  dst[q, y, x] = ¼ src[q, y / 2, x / 2], one invocation per input value
//                       (a gather: no two write the same word)
// Twin: src/kernels/avgpool.rs.

struct Params {
    planes: u32,
    height: u32,
    width: u32,
    src_off: u32,
    dst_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn avgpool2x_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w2 = 2u * p.width;
    let n = p.planes * p.height * p.width;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let x = i % p.width;
        let rest = i / p.width;
        let y = rest % p.height;
        let q = rest / p.height;
        let top = p.src_off + (q * 2u * p.height + 2u * y) * w2 + 2u * x;
        dst[p.dst_off + i] = 0.25 * ((src[top] + src[top + 1u]) + (src[top + w2] + src[top + w2 + 1u]));
    }
}

@compute @workgroup_size(256)
fn avgpool2x_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w2 = 2u * p.width;
    let n = p.planes * 4u * p.height * p.width;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let x = i % w2;
        let rest = i / w2;
        let y = rest % (2u * p.height);
        let q = rest / (2u * p.height);
        dst[p.dst_off + i] = 0.25 * src[p.src_off + (q * p.height + y / 2u) * p.width + x / 2u];
    }
}

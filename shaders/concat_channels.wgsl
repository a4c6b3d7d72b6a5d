// Channel concatenation in NHWC: src [rows, src_channels] is copied into columns
// col0 .. col0 + src_channels of dst [rows, dst_channels] (rows = images · pixels), the other
// columns untouched. An Inception block writes each branch's output this way.
//   concat_channels  one invocation per value of src
// Twin: src/kernels/concat.rs.

struct Params {
    rows: u32,
    src_channels: u32,
    dst_channels: u32,
    col0: u32,
    src_off: u32,
    dst_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn concat_channels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.src_channels;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let c = i % p.src_channels;
        let r = i / p.src_channels;
        dst[p.dst_off + r * p.dst_channels + p.col0 + c] = src[p.src_off + i];
    }
}

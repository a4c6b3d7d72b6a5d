// Row gathers that draw minibatches from a dataset resident on the GPU.
// gather_rows_u8: 8-bit rows stay 8-bit in memory (four to a word) and are converted here:
// out[i, j] = byte(row idx[i], column j) · scale + offset. A dataset larger than one storage
// binding is split into up to four chunks of `chunk_rows` rows each.
// Twin: src/kernels/gather.rs.

struct Params {
    rows: u32,
    row_len: u32,
    chunk_rows: u32,
    idx_off: u32,
    out_off: u32,
    scale: f32,
    offset: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> src0: array<u32>;
@group(0) @binding(4) var<storage, read> src1: array<u32>;
@group(0) @binding(5) var<storage, read> src2: array<u32>;
@group(0) @binding(6) var<storage, read> src3: array<u32>;

fn word(chunk: u32, w: u32) -> u32 {
    switch chunk {
        case 0u: { return src0[w]; }
        case 1u: { return src1[w]; }
        case 2u: { return src2[w]; }
        default: { return src3[w]; }
    }
}

@compute @workgroup_size(256)
fn gather_rows_u8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.row_len;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let r = i / p.row_len;
        let j = i % p.row_len;
        let row = idx[p.idx_off + r];
        let chunk = row / p.chunk_rows;
        let byte_index = (row % p.chunk_rows) * p.row_len + j;
        let b = (word(chunk, byte_index / 4u) >> (8u * (byte_index % 4u))) & 0xffu;
        out[p.out_off + i] = f32(b) * p.scale + p.offset;
    }
}

// f32 rows (the 2D point sets); src0 is read as f32 bits.
@compute @workgroup_size(256)
fn gather_rows_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.row_len;
    for (var i = gid.x; i < n; i += nwg.x * 256u) {
        let r = i / p.row_len;
        let j = i % p.row_len;
        let row = idx[p.idx_off + r];
        out[p.out_off + i] = bitcast<f32>(src0[row * p.row_len + j]);
    }
}

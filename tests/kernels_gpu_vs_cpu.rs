//! What the table-driven tests (tests/kernel_table.rs) cannot see: the random streams bit for bit
//! across backends over long runs and the 2³² counter carry, and gathers from a dataset split
//! into chunks by `upload_rows_u8_chunked`.

mod common;

use common::{assert_close, cpu, data, gpu};
use duel::backend::{Backend, upload_rows_u8_chunked};
use duel::kernels::gather::{gather_rows_f32, gather_rows_u8};
use duel::kernels::rng::{rng_bits, rng_index, rng_normal, rng_uniform};
use duel::rng::{RngKey, stream};

#[test]
fn rng_is_bit_identical_across_backends() {
    // Counters straddle the 2^32 carry; seeds use both halves.
    let key = RngKey::new(0x0123_4567_89AB_CDEF, stream::NOISE, u32::MAX as u64 - 100);
    let n = 100 * 784 + 3;
    let run = |be: &mut dyn Backend| {
        let bits = be.alloc(n, "bits").unwrap();
        let idx = be.alloc(n, "idx").unwrap();
        let uni = be.alloc(n, "uniform").unwrap();
        let uab = be.alloc(n, "uniform a b").unwrap();
        let nor = be.alloc(n, "normal").unwrap();
        rng_bits(be, bits, n, key);
        rng_index(be, idx, n, 60_000, key);
        rng_uniform(be, uni, n, 0.0, 1.0, key);
        rng_uniform(be, uab, n, -1.0, 3.0, key);
        rng_normal(be, nor, n, key);
        (
            be.read_u32(bits).unwrap(),
            be.read_u32(idx).unwrap(),
            be.read(uni).unwrap(),
            be.read(uab).unwrap(),
            be.read(nor).unwrap(),
        )
    };
    let g = run(&mut gpu());
    let c = run(&mut cpu());
    assert_eq!(g.0, c.0, "raw Philox words differ between GPU and CPU");
    assert_eq!(g.1, c.1, "batch indices differ between GPU and CPU");
    assert!(c.1.iter().all(|&i| i < 60_000));
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&g.2), bits(&c.2), "U(0,1) differs between GPU and CPU");
    // a + (b − a)·u may be fused into one FMA by a GPU compiler: equal to within one rounding.
    assert_close("U(-1,3)", &g.3, &c.3, 4.0 * f32::EPSILON, 0.0);
    // The normal sampler uses integer arithmetic only (shaders/normal.wgsl), so its bits agree on
    // every conforming adapter.
    assert_eq!(bits(&g.4), bits(&c.4), "N(0,1) differs between GPU and CPU");
    assert!(c.4.iter().all(|v| v.is_finite()));
}

#[test]
fn gathers_across_chunks() {
    let (rows, row_len) = (1000, 63);
    let bytes: Vec<u8> = (0..rows * row_len).map(|i| (i * 7 % 251) as u8).collect();
    let points = data(5, rows * 2, -4.0, 4.0);
    let key = RngKey::new(3, stream::BATCH, 0);
    let batch = 127;
    let run = |be: &mut dyn Backend| {
        // 4 chunks of 250 rows each: row indices cross every chunk boundary.
        let src = upload_rows_u8_chunked(be, &bytes, rows, row_len, 250 * row_len, "rows").unwrap();
        assert_eq!(src.chunks.len(), 4);
        let idx = be.alloc(batch, "idx").unwrap();
        rng_index(be, idx, batch, rows as u32, key);
        let out = be.alloc(batch * row_len, "out").unwrap();
        gather_rows_u8(be, out, &src, idx, batch, 2.0 / 255.0, -1.0);
        let pts = be.upload(&points, "points").unwrap();
        let out2 = be.alloc(batch * 2, "out2").unwrap();
        gather_rows_f32(be, out2, pts, idx, batch, 2);
        let mut v = be.read(out).unwrap();
        v.extend(be.read(out2).unwrap());
        (v, be.read_u32(idx).unwrap())
    };
    let (g, gi) = run(&mut gpu());
    let (c, ci) = run(&mut cpu());
    assert_eq!(gi, ci);
    assert_close("gather", &g, &c, 1e-6, 1e-6);
    // The CPU twin itself against a direct lookup.
    for (r, &row) in ci.iter().enumerate() {
        let want = bytes[row as usize * row_len + 5] as f32 * (2.0 / 255.0) - 1.0;
        assert!((c[r * row_len + 5] - want).abs() < 1e-6);
    }
}

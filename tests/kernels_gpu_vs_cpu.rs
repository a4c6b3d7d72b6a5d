//! Every kernel on the GPU against its CPU twin, on ragged shapes.

mod common;

use common::{RAGGED, assert_close, cpu, data, gpu};
use duel::backend::{Activation, AdamStep, Backend, GanLossKind, MatView, upload_rows_u8_chunked};
use duel::rng::{RngKey, stream};

fn upload<B: Backend + ?Sized>(be: &mut B, values: &[f32]) -> duel::Tensor {
    let t = be.alloc(values.len(), "test input").unwrap();
    be.write(t, values);
    t
}

/// Runs `f` on both backends and compares the outputs it returns.
fn compare<F>(what: &str, atol: f32, rtol: f32, f: F)
where
    F: Fn(&mut dyn Backend) -> Vec<f32>,
{
    let mut g = gpu();
    let mut c = cpu();
    let got = f(&mut g);
    let want = f(&mut c);
    assert_close(what, &got, &want, atol, rtol);
}

#[test]
fn matmul_three_products_on_ragged_shapes() {
    let shapes = [
        (1, 1, 1),
        (3, 63, 65),
        (63, 65, 3),
        (65, 100, 127),
        (100, 127, 63),
        (127, 1, 100),
        (64, 784, 65),
        (3, 1200, 784),
        (100, 784, 1200),
    ];
    let mut g = gpu();
    let mut c = cpu();
    for (i, &(m, k, n)) in shapes.iter().enumerate() {
        let x = data(10 + i as u64, m * k, -1.0, 1.0);
        let w = data(20 + i as u64, k * n, -1.0, 1.0);
        let b = data(30 + i as u64, n, -1.0, 1.0);
        let dy = data(40 + i as u64, m * n, -1.0, 1.0);
        let prior = data(50 + i as u64, k * n, -1.0, 1.0);
        let run = |be: &mut dyn Backend| {
            let (xt, wt, bt, dyt) = (
                upload(be, &x),
                upload(be, &w),
                upload(be, &b),
                upload(be, &dy),
            );
            let y = be.alloc(m * n, "y").unwrap();
            let dx = be.alloc(m * k, "dx").unwrap();
            let dw = upload(be, &prior);
            be.matmul_forward(y, xt, wt, Some(bt), m, k, n);
            be.matmul_backward_input(dx, dyt, wt, m, k, n);
            be.matmul_backward_weights(dw, xt, dyt, m, k, n, true);
            (
                be.read(y).unwrap(),
                be.read(dx).unwrap(),
                be.read(dw).unwrap(),
            )
        };
        let (gy, gdx, gdw) = run(&mut g);
        let (cy, cdx, cdw) = run(&mut c);
        let tol = 1e-5 * (k.max(m).max(n) as f32).sqrt();
        assert_close(&format!("forward {m}x{k}x{n}"), &gy, &cy, tol, 1e-4);
        assert_close(
            &format!("backward_input {m}x{k}x{n}"),
            &gdx,
            &cdx,
            tol,
            1e-4,
        );
        assert_close(
            &format!("backward_weights {m}x{k}x{n}"),
            &gdw,
            &cdw,
            tol,
            1e-4,
        );
    }
}

#[test]
fn matmul_on_views_with_offsets() {
    // Operands that start mid-buffer, as G's output inside D's input buffer does.
    compare("matmul at offsets", 1e-4, 1e-4, |be| {
        let (m, k, n) = (65, 63, 127);
        let buf = upload(be, &data(1, 7 + m * k + k * n + n, -1.0, 1.0));
        let x = buf.slice(7, m * k);
        let w = buf.slice(7 + m * k, k * n);
        let b = buf.slice(7 + m * k + k * n, n);
        let out = be.alloc(5 + m * n, "y").unwrap();
        be.matmul(
            out.slice(5, m * n),
            MatView::new(x, k, 1),
            MatView::new(w, n, 1),
            Some(b),
            m,
            n,
            k,
            false,
        );
        be.read(out).unwrap()
    });
}

#[test]
fn bias_backward_on_ragged_shapes() {
    for &m in &RAGGED {
        for &n in &[1, 63, 65, 1200] {
            let dy = data(m as u64 * 7 + n as u64, m * n, -1.0, 1.0);
            let prior = data(3, n, -1.0, 1.0);
            compare(&format!("bias_backward {m}x{n}"), 1e-4, 1e-5, |be| {
                let dyt = upload(be, &dy);
                let db = upload(be, &prior);
                let db2 = be.alloc(n, "db2").unwrap();
                be.bias_backward(db, dyt, m, n, true);
                be.bias_backward(db2, dyt, m, n, false);
                let mut out = be.read(db).unwrap();
                out.extend(be.read(db2).unwrap());
                out
            });
        }
    }
}

#[test]
fn activations_forward_and_backward() {
    let acts = [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu(0.2),
        Activation::Tanh,
        Activation::Sigmoid,
    ];
    for act in acts {
        for &n in &[1, 63, 65, 1200, 100 * 784] {
            // Wide inputs reach the saturating tails of tanh and sigmoid.
            let x = data(n as u64, n, -30.0, 30.0);
            let dy = data(n as u64 + 1, n, -1.0, 1.0);
            compare(&format!("{act:?} n={n}"), 1e-6, 1e-5, |be| {
                let (xt, dyt) = (upload(be, &x), upload(be, &dy));
                let y = be.alloc(n, "y").unwrap();
                let dx = be.alloc(n, "dx").unwrap();
                be.activation_forward(act, y, xt, n);
                be.activation_backward(act, dx, dyt, y, n);
                let mut out = be.read(y).unwrap();
                out.extend(be.read(dx).unwrap());
                out
            });
        }
    }
}

#[test]
fn maxout_forward_and_backward() {
    for &(rows, units, pieces) in &[(1, 1, 1), (3, 63, 5), (65, 240, 5), (127, 3, 2)] {
        let x = data(rows as u64, rows * units * pieces, -1.0, 1.0);
        let dy = data(rows as u64 + 9, rows * units, -1.0, 1.0);
        let mut idx_gpu = Vec::new();
        let mut idx_cpu = Vec::new();
        for (be, idx_out) in [
            (&mut gpu() as &mut dyn Backend, &mut idx_gpu),
            (&mut cpu() as &mut dyn Backend, &mut idx_cpu),
        ] {
            let (xt, dyt) = (upload(be, &x), upload(be, &dy));
            let y = be.alloc(rows * units, "y").unwrap();
            let idx = be.alloc(rows * units, "idx").unwrap();
            let dx = be.alloc(rows * units * pieces, "dx").unwrap();
            be.maxout_forward(y, idx, xt, rows, units, pieces);
            be.maxout_backward(dx, dyt, idx, rows, units, pieces);
            idx_out.push(be.read(y).unwrap());
            idx_out.push(bytemuck::cast_slice(&be.read_u32(idx).unwrap()).to_vec());
            idx_out.push(be.read(dx).unwrap());
        }
        let what = format!("maxout {rows}x{units}x{pieces}");
        assert_close(&what, &idx_gpu[0], &idx_cpu[0], 0.0, 0.0);
        assert_eq!(idx_gpu[1], idx_cpu[1], "{what}: winning pieces differ");
        assert_close(&what, &idx_gpu[2], &idx_cpu[2], 0.0, 0.0);
    }
}

#[test]
fn dropout_masks_match_exactly() {
    for &n in &[1, 63, 65, 1200, 256 * 784] {
        for keep in [0.5f32, 0.8] {
            let x = data(n as u64, n, 0.5, 1.5);
            let key = RngKey::new(0xDEAD_BEEF_0000_0001, stream::DROPOUT, (1 << 32) - 5);
            compare(&format!("dropout n={n} keep={keep}"), 1e-6, 1e-6, |be| {
                let xt = upload(be, &x);
                let y = be.alloc(n, "y").unwrap();
                let dx = be.alloc(n, "dx").unwrap();
                be.dropout_forward(y, xt, n, keep, key);
                be.dropout_backward(dx, xt, n, keep, key);
                let mut out = be.read(y).unwrap();
                out.extend(be.read(dx).unwrap());
                out
            });
        }
    }
}

#[test]
fn gan_losses_and_their_gradients() {
    let kinds = [
        GanLossKind::Discriminator,
        GanLossKind::GeneratorMinimax,
        GanLossKind::GeneratorNonSaturating,
    ];
    for kind in kinds {
        for &m in &[1, 3, 63, 65, 127, 1200] {
            let (n_real, n_fake) = match kind {
                GanLossKind::Discriminator => (m, m),
                _ => (0, m),
            };
            // Logits far into both tails exercise the stable softplus form.
            let logits = data(m as u64, n_real + n_fake, -40.0, 40.0);
            compare(&format!("{kind:?} m={m}"), 1e-6, 1e-4, |be| {
                let lt = upload(be, &logits);
                let grad = be.alloc(n_real + n_fake, "grad").unwrap();
                let stats = upload(be, &[0.5, 0.25, 0.125, 9.0]);
                be.gan_loss(kind, grad, lt, n_real, n_fake, stats.slice(0, 3), true);
                let mut out = be.read(grad).unwrap();
                out.extend(be.read(stats).unwrap());
                assert!(out.iter().all(|v| v.is_finite()), "non-finite loss output");
                out
            });
        }
    }
}

#[test]
fn optimizers() {
    for &n in &[1, 65, 1200, 100 * 1200 + 3] {
        let p = data(1, n, -1.0, 1.0);
        let g = data(2, n, -1.0, 1.0);
        let m0 = data(3, n, -0.1, 0.1);
        let v0 = data(4, n, 0.0, 0.1);
        compare(&format!("adam n={n}"), 1e-6, 1e-5, |be| {
            let (pt, gt, mt, vt) = (
                upload(be, &p),
                upload(be, &g),
                upload(be, &m0),
                upload(be, &v0),
            );
            for t in 1..=3 {
                let step = AdamStep {
                    lr: 2e-4,
                    beta1: 0.5,
                    beta2: 0.999,
                    eps: 1e-8,
                    t,
                };
                be.adam(pt, gt, mt, vt, n, &step);
            }
            [
                be.read(pt).unwrap(),
                be.read(mt).unwrap(),
                be.read(vt).unwrap(),
            ]
            .concat()
        });
        compare(&format!("ema_update n={n}"), 1e-6, 1e-5, |be| {
            let (pt, at) = (upload(be, &p), upload(be, &g));
            for decay in [0.5, 0.9, 0.999] {
                be.ema_update(at, pt, n, decay);
            }
            be.read(at).unwrap()
        });
        compare(&format!("sgd_momentum n={n}"), 1e-6, 1e-5, |be| {
            let (pt, gt, vt) = (upload(be, &p), upload(be, &g), upload(be, &m0));
            for _ in 0..3 {
                be.sgd_momentum(pt, gt, vt, n, 0.1, 0.5);
            }
            [be.read(pt).unwrap(), be.read(vt).unwrap()].concat()
        });
    }
}

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
        be.rng_bits(bits, n, key);
        be.rng_index(idx, n, 60_000, key);
        be.rng_uniform(uni, n, 0.0, 1.0, key);
        be.rng_uniform(uab, n, -1.0, 3.0, key);
        be.rng_normal(nor, n, key);
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
    // log, cos and sqrt are not correctly rounded on GPUs, so normals agree to ~1e-6, not bits.
    assert_close("N(0,1)", &g.4, &c.4, 2e-5, 2e-5);
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
        be.rng_index(idx, batch, rows as u32, key);
        let out = be.alloc(batch * row_len, "out").unwrap();
        be.gather_rows_u8(out, &src, idx, batch, 2.0 / 255.0, -1.0);
        let pts = upload(be, &points);
        let out2 = be.alloc(batch * 2, "out2").unwrap();
        be.gather_rows_f32(out2, pts, idx, batch, 2);
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

//! Every GPU matmul kernel (tiled, and the subgroup kernel in each of its four operand layouts)
//! against the CPU twin, with the fused bias + activation and activation-gradient epilogues, on
//! ragged and aligned shapes.

mod common;

use common::{RAGGED, assert_close, cpu, data, gpu};
use duel::backend::{Activation, Backend, MatView, WriteMode};
use duel::gpu::MatmulChoice;
use duel::gpu::matmul::sg_layout;
use duel::kernels::matmul::matmul_backward_input;
use duel::kernels::matmul::matmul_backward_weights;
use duel::kernels::matmul::matmul_forward;
use duel::kernels::matmul::{Dense, MatmulShape, matmul};

fn upload<B: Backend + ?Sized>(be: &mut B, values: &[f32]) -> duel::Tensor {
    let t = be.alloc(values.len(), "test input").unwrap();
    be.write(t, values);
    t
}

const ACTS: [Activation; 5] = [
    Activation::Identity,
    Activation::Relu,
    Activation::LeakyRelu(0.2),
    Activation::Tanh,
    Activation::Sigmoid,
];

/// The four products of one shape: forward with bias and activation, backward-input,
/// backward-weights (accumulating), Xᵀ·Wᵀ (the one layout no layer uses, for coverage), and
/// backward-input fused with the gradient of the activation below.
/// `pad` words in front of every operand move their offsets off (or onto) 16-byte boundaries.
fn products(
    be: &mut dyn Backend,
    (m, k, n): (usize, usize, usize),
    act: Activation,
    pad: usize,
    seed: u64,
) -> Vec<f32> {
    let x = data(seed, m * k, -1.0, 1.0);
    let w = data(seed + 1, k * n, -1.0, 1.0);
    let b = data(seed + 2, n, -1.0, 1.0);
    let dy = data(seed + 3, m * n, -1.0, 1.0);
    let prior = data(seed + 4, k * n, -1.0, 1.0);
    let padded = |v: &[f32]| [vec![9.0; pad], v.to_vec()].concat();
    let xt = upload(be, &padded(&x)).slice(pad, m * k);
    let wt = upload(be, &padded(&w)).slice(pad, k * n);
    let bt = upload(be, &padded(&b)).slice(pad, n);
    let dyt = upload(be, &padded(&dy)).slice(pad, m * n);
    let y = be.alloc(m * n, "y").unwrap();
    let dx = be.alloc(m * k, "dx").unwrap();
    let dw = upload(be, &prior);
    let xtwt = be.alloc(k * k, "xt wt").unwrap();
    // The activation output below the layer, for the fused backward-input.
    let y_below = upload(be, &padded(&data(seed + 5, m * k, -1.0, 1.0))).slice(pad, m * k);
    let dx_act = be.alloc(m * k, "dx act").unwrap();
    let dense = Dense {
        rows: m,
        inputs: k,
        outputs: n,
    };
    matmul_backward_input(be, dx_act, dyt, wt, Some((act, y_below)), dense);
    matmul_forward(be, y, xt, wt, Some(bt), act, dense);
    matmul_backward_input(be, dx, dyt, wt, None, dense);
    matmul_backward_weights(be, dw, xt, dyt, dense, WriteMode::Accumulate);
    if n == m {
        // (Xᵀ)[k,m]·(Wᵀ)[n,k] with n = m: A read with a_rs = 1, B with b_rs = 1.
        matmul(
            be,
            xtwt,
            MatView::new(xt, 1, k),
            MatView::new(wt, 1, n),
            MatmulShape { m: k, n: k, k: m },
            WriteMode::Overwrite,
        );
    }
    [
        be.read(y).unwrap(),
        be.read(dx).unwrap(),
        be.read(dw).unwrap(),
        be.read(xtwt).unwrap(),
        be.read(dx_act).unwrap(),
    ]
    .concat()
}

fn check_choice(choice: MatmulChoice, shapes: &[(usize, usize, usize)], pad: usize) {
    let mut g = gpu();
    if g.set_matmul_choice(choice).is_err() {
        eprintln!("{choice:?} is not available on this adapter; skipped");
        return;
    }
    let mut c = cpu();
    for (i, &shape) in shapes.iter().enumerate() {
        let act = ACTS[i % ACTS.len()];
        let seed = 100 + 10 * i as u64;
        let got = products(&mut g, shape, act, pad, seed);
        let want = products(&mut c, shape, act, pad, seed);
        let (m, k, n) = shape;
        let tol = 1e-5 * (k.max(m).max(n) as f32).sqrt();
        assert_close(
            &format!("{choice:?} {m}x{k}x{n} {act:?} pad {pad}"),
            &got,
            &want,
            tol,
            1e-4,
        );
    }
}

/// Shapes the subgroup kernel takes (every vectorised dimension a multiple of 4), with ragged
/// row counts, including the layer shapes of the benchmark presets.
const ALIGNED: [(usize, usize, usize); 9] = [
    (1, 4, 4),
    (3, 100, 1200),
    (63, 784, 100),
    (65, 1200, 784),
    (127, 64, 1024),
    (100, 784, 1200),
    (128, 1024, 128),
    (64, 240, 1200),
    (4, 8, 4),
];

#[test]
fn aligned_shapes_take_the_subgroup_kernel_in_every_layout() {
    let dummy = duel::Tensor {
        buf: 0,
        offset: 0,
        len: 1,
    };
    for &(m, k, n) in &ALIGNED {
        let v = |rs, cs| MatView::new(dummy, rs, cs);
        let forward = sg_layout(&v(k, 1), &v(n, 1), m, n, k).expect("forward");
        let input = sg_layout(&v(n, 1), &v(1, n), m, k, n).expect("backward input");
        let weights = sg_layout(&v(1, k), &v(n, 1), k, n, m).expect("backward weights");
        assert!(forward.a_k_fast && forward.b_n_fast);
        assert!(input.a_k_fast && !input.b_n_fast);
        assert!(!weights.a_k_fast && weights.b_n_fast);
        if m == n {
            let both = sg_layout(&v(1, k), &v(1, n), k, k, m).expect("xt wt");
            assert!(!both.a_k_fast && !both.b_n_fast);
        }
    }
}

/// D's logit layer: N = 1 (computed transposed by the subgroup kernel), and K = 1 products.
const MATVEC: [(usize, usize, usize); 4] =
    [(128, 1024, 1), (64, 784, 1), (4, 240, 1), (128, 1, 1024)];

#[test]
fn subgroup_matmul_on_aligned_shapes() {
    check_choice(MatmulChoice::Subgroup, &ALIGNED, 0);
    check_choice(MatmulChoice::Subgroup, &MATVEC, 0);
    check_choice(MatmulChoice::Subgroup, &MATVEC, 8);
    // Offsets that are multiples of 4 words keep the subgroup kernel; others fall back.
    check_choice(MatmulChoice::Subgroup, &ALIGNED[..4], 4);
    check_choice(MatmulChoice::Subgroup, &ALIGNED[..4], 3);
}

#[test]
fn both_kernels_on_ragged_shapes() {
    let shapes: Vec<(usize, usize, usize)> = RAGGED
        .iter()
        .enumerate()
        .map(|(i, &m)| (m, RAGGED[(i + 3) % 8], RAGGED[(i + 5) % 8]))
        .chain([(65, 63, 65), (127, 1, 127)])
        .collect();
    for choice in [MatmulChoice::Tiled, MatmulChoice::Subgroup] {
        check_choice(choice, &shapes, 0);
        check_choice(choice, &ALIGNED, 1);
    }
}

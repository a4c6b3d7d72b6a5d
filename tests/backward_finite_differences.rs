//! Every backward pass against central finite differences of its forward, on the CPU path.
#![allow(clippy::needless_range_loop)]

mod common;

use common::{cpu, data};
use duel::backend::{Activation, Backend, GanLossKind};
use duel::cpu::kernels;
use duel::model::{Layer, NetSpec, Network};
use duel::rng::{RngKey, stream};

/// Central difference of `f` at `x` along coordinate `i`.
fn central(f: &mut dyn FnMut(&[f32]) -> f64, x: &[f32], i: usize, h: f32) -> f64 {
    let mut xp = x.to_vec();
    xp[i] += h;
    let up = f(&xp);
    xp[i] -= 2.0 * h;
    let down = f(&xp);
    (up - down) / (2.0 * h as f64)
}

fn check(what: &str, analytic: f64, numeric: f64, atol: f64, rtol: f64) {
    assert!(
        (analytic - numeric).abs() <= atol + rtol * numeric.abs(),
        "{what}: backward gives {analytic}, finite differences {numeric}"
    );
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

#[test]
fn matmul_backward_matches_finite_differences() {
    let (m, k, n) = (5, 7, 3);
    let x = data(1, m * k, -1.0, 1.0);
    let w = data(2, k * n, -1.0, 1.0);
    let b = data(3, n, -1.0, 1.0);
    let r = data(4, m * n, -1.0, 1.0);
    // L = Σ r ⊙ (X·W + b), so dL/dY = r.
    let loss = |x: &[f32], w: &[f32], b: &[f32]| {
        let mut y = vec![0.0; m * n];
        kernels::matmul(&mut y, x, (k, 1), w, (n, 1), Some(b), m, n, k, false);
        dot(&y, &r)
    };
    let mut dx = vec![0.0; m * k];
    let mut dw = vec![0.0; k * n];
    let mut db = vec![0.0; n];
    kernels::matmul(&mut dx, &r, (n, 1), &w, (1, n), None, m, k, n, false);
    kernels::matmul(&mut dw, &x, (1, k), &r, (n, 1), None, k, n, m, false);
    kernels::bias_backward(&mut db, &r, m, n, false);
    for i in 0..m * k {
        let num = central(&mut |v| loss(v, &w, &b), &x, i, 1e-2);
        check(&format!("dX[{i}]"), dx[i] as f64, num, 1e-3, 1e-3);
    }
    for i in 0..k * n {
        let num = central(&mut |v| loss(&x, v, &b), &w, i, 1e-2);
        check(&format!("dW[{i}]"), dw[i] as f64, num, 1e-3, 1e-3);
    }
    for i in 0..n {
        let num = central(&mut |v| loss(&x, &w, v), &b, i, 1e-2);
        check(&format!("db[{i}]"), db[i] as f64, num, 1e-3, 1e-3);
    }
}

#[test]
fn activation_backward_matches_finite_differences() {
    let n = 200;
    // Keep clear of ReLU's kink at 0 so the central difference is defined.
    let x: Vec<f32> = data(5, n, -4.0, 4.0)
        .into_iter()
        .map(|v| if v.abs() < 0.05 { v + 0.1 } else { v })
        .collect();
    let r = data(6, n, -1.0, 1.0);
    for act in [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu(0.2),
        Activation::Tanh,
        Activation::Sigmoid,
    ] {
        let mut y = vec![0.0; n];
        let mut dx = vec![0.0; n];
        kernels::activation_forward(act, &mut y, &x, n);
        kernels::activation_backward(act, &mut dx, &r, &y, n);
        let mut loss = |v: &[f32]| {
            let mut y = vec![0.0; n];
            kernels::activation_forward(act, &mut y, v, n);
            dot(&y, &r)
        };
        for i in 0..n {
            let num = central(&mut loss, &x, i, 1e-3);
            check(&format!("{act:?} dx[{i}]"), dx[i] as f64, num, 2e-3, 1e-2);
        }
    }
}

#[test]
fn maxout_and_dropout_backward_match_finite_differences() {
    let (rows, units, pieces) = (3, 4, 5);
    let x = data(7, rows * units * pieces, -1.0, 1.0);
    let r = data(8, rows * units, -1.0, 1.0);
    let mut y = vec![0.0; rows * units];
    let mut idx = vec![0u32; rows * units];
    let mut dx = vec![0.0; x.len()];
    kernels::maxout_forward(&mut y, &mut idx, &x, rows, units, pieces);
    kernels::maxout_backward(&mut dx, &r, &idx, rows, units, pieces);
    let mut loss = |v: &[f32]| {
        let (mut y, mut i) = (vec![0.0; rows * units], vec![0u32; rows * units]);
        kernels::maxout_forward(&mut y, &mut i, v, rows, units, pieces);
        dot(&y, &r)
    };
    for i in 0..x.len() {
        // A step small enough not to change which piece wins (inputs are distinct).
        let num = central(&mut loss, &x, i, 1e-4);
        check(&format!("maxout dx[{i}]"), dx[i] as f64, num, 5e-3, 1e-2);
    }

    let n = 300;
    let key = RngKey::new(11, stream::DROPOUT, 77);
    let x = data(9, n, -1.0, 1.0);
    let r = data(10, n, -1.0, 1.0);
    let mut dx = vec![0.0; n];
    kernels::dropout_backward(&mut dx, &r, n, 0.8, key);
    let mut loss = |v: &[f32]| {
        let mut y = vec![0.0; n];
        kernels::dropout_forward(&mut y, v, n, 0.8, key);
        dot(&y, &r)
    };
    let mut zeros = 0;
    for i in 0..n {
        let num = central(&mut loss, &x, i, 1e-2);
        check(&format!("dropout dx[{i}]"), dx[i] as f64, num, 1e-3, 1e-3);
        zeros += (dx[i] == 0.0) as usize;
    }
    // About 20% dropped: the mask is neither all-keep nor all-drop.
    assert!(
        (30..=90).contains(&zeros),
        "{zeros} of {n} dropped at keep 0.8"
    );
}

#[test]
fn gan_loss_gradients_match_finite_differences() {
    let m = 6;
    for kind in [
        GanLossKind::Discriminator,
        GanLossKind::GeneratorMinimax,
        GanLossKind::GeneratorNonSaturating,
    ] {
        let (n_real, n_fake) = match kind {
            GanLossKind::Discriminator => (m, m),
            _ => (0, m),
        };
        let l = data(12, n_real + n_fake, -6.0, 6.0);
        let mut grad = vec![0.0; l.len()];
        let mut stats = [0.0f32; 3];
        kernels::gan_loss(kind, &mut grad, &l, n_real, n_fake, &mut stats, false);
        let mut loss = |v: &[f32]| {
            let mut g = vec![0.0; v.len()];
            let mut s = [0.0f32; 3];
            kernels::gan_loss(kind, &mut g, v, n_real, n_fake, &mut s, false);
            s[0] as f64
        };
        for i in 0..l.len() {
            let num = central(&mut loss, &l, i, 1e-2);
            check(
                &format!("{kind:?} dL/dl[{i}]"),
                grad[i] as f64,
                num,
                2e-4,
                1e-2,
            );
        }
        // The loss itself against the textbook form on probabilities.
        let d = |v: f32| 1.0 / (1.0 + (-v as f64).exp());
        let want: f64 = match kind {
            GanLossKind::Discriminator => {
                -(l[..m].iter().map(|&v| d(v).ln()).sum::<f64>()
                    + l[m..].iter().map(|&v| (1.0 - d(v)).ln()).sum::<f64>())
                    / m as f64
            }
            GanLossKind::GeneratorMinimax => {
                l.iter().map(|&v| (1.0 - d(v)).ln()).sum::<f64>() / m as f64
            }
            GanLossKind::GeneratorNonSaturating => {
                -l.iter().map(|&v| d(v).ln()).sum::<f64>() / m as f64
            }
        };
        check(&format!("{kind:?} loss"), stats[0] as f64, want, 1e-5, 1e-5);
    }
}

#[test]
fn network_backward_matches_finite_differences() {
    // Every layer kind in one network, as D and G compose them.
    let spec = NetSpec {
        input: 6,
        layers: vec![
            Layer::Dropout(0.8),
            Layer::Linear(12),
            Layer::Maxout(3),
            Layer::Linear(5),
            Layer::Act(Activation::LeakyRelu(0.2)),
            Layer::Linear(4),
            Layer::Act(Activation::Tanh),
            Layer::Linear(3),
            Layer::Act(Activation::Sigmoid),
        ],
    };
    let m = 4;
    let params = spec.init_params(3, 0);
    let x = data(13, m * spec.input, -1.0, 1.0);
    let r = data(14, m * spec.output(), -1.0, 1.0);
    let mut be = cpu();
    let mut net = Network::new(&mut be, &spec, m, &params, 5, "net").unwrap();
    let xt = be.alloc(x.len(), "x").unwrap();
    let rt = be.alloc(r.len(), "r").unwrap();
    be.write(xt, &x);
    be.write(rt, &r);
    // L = Σ r ⊙ net(x), with the same dropout mask every time.
    let loss = |be: &mut dyn Backend, net: &mut Network, p: &[f32], x: &[f32]| {
        be.write(net.params, p);
        be.write(xt, x);
        net.dropout_counter = 0;
        let y = net.forward(be, xt, m, true, None);
        dot(&be.read(y).unwrap(), &r)
    };
    loss(&mut be, &mut net, &params, &x);
    let dx = net.backward(&mut be, rt, true, true).unwrap();
    let dx = be.read(dx).unwrap();
    let grads = be.read(net.grads).unwrap();
    for i in 0..params.len() {
        let num = central(&mut |p| loss(&mut be, &mut net, p, &x), &params, i, 1e-3);
        check(&format!("dparam[{i}]"), grads[i] as f64, num, 3e-3, 2e-2);
    }
    for i in 0..x.len() {
        let num = central(&mut |v| loss(&mut be, &mut net, &params, v), &x, i, 1e-3);
        check(&format!("dx[{i}]"), dx[i] as f64, num, 3e-3, 2e-2);
    }
    assert!(grads.iter().any(|g| g.abs() > 1e-3), "gradients are all ~0");
}

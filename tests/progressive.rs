//! Progressive growing's layers and networks against central finite differences on the CPU
//! path: pixel norm, the minibatch standard deviation, average pooling and equalized learning
//! rate alone (through small networks), the whole progressive generator and critic at every
//! kind of phase (stable, fading, at the top), and the critic's tangent pass — minibatch std's
//! second-order term included — against the derivative of its parameter gradient.
#![allow(clippy::needless_range_loop)]

mod common;

use common::{cpu, data};
use duel::backend::{Activation, Backend};
use duel::layers::progressive::ProSpec;
use duel::model::{Layer, NetSpec, Network, Shape};

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Compares `analytic` with `numeric` relative to the largest |numeric|; a few entries may miss
/// where a step crosses a LeakyReLU kink (`kinks` of them at most). Returns how many are nonzero.
fn compare(what: &str, analytic: &[f32], numeric: &[f64], tol: f64, kinks: usize) -> usize {
    let scale = numeric.iter().fold(1e-6f64, |a, v| a.max(v.abs()));
    let mut bad = Vec::new();
    for i in 0..numeric.len() {
        let err = (analytic[i] as f64 - numeric[i]).abs();
        if err > tol * scale + tol * numeric[i].abs() {
            bad.push((i, analytic[i], numeric[i]));
        }
    }
    assert!(
        bad.len() <= kinks,
        "{what}: {} of {} entries differ from finite differences (scale {scale}), first: {:?}",
        bad.len(),
        numeric.len(),
        &bad[..bad.len().min(5)]
    );
    analytic
        .iter()
        .filter(|v| v.abs() as f64 > 1e-3 * scale)
        .count()
}

/// L = Σ r ⊙ net(x): the backward's input and parameter gradients against central differences
/// (step h, f64 sums of f32 forwards), at growth (level, α) when given.
fn check_network(
    what: &str,
    spec: &NetSpec,
    rows: usize,
    growth: Option<(usize, f32)>,
    h: f32,
    tol: f64,
    tol_x: f64,
) {
    let params = spec.build("net").unwrap().init_params(3, 0);
    let x = data(13, rows * spec.input.len(), -1.0, 1.0);
    let r = data(14, rows * spec.build("net").unwrap().output(), -1.0, 1.0);
    let mut be = cpu();
    let mut net = Network::new(&mut be, spec, rows, &params, 5, "net").unwrap();
    if let Some((l, a)) = growth {
        net.set_growth(l, a);
    }
    let xt = be.upload(&x, "x").unwrap();
    let rt = be.upload(&r, "r").unwrap();
    let loss = |be: &mut dyn Backend, net: &mut Network, p: &[f32], x: &[f32]| {
        be.write(net.unpadded(net.params), p);
        be.write(xt, x);
        let y = net.forward(be, xt, rows, true, None);
        dot(&be.read(y).unwrap(), &r)
    };
    loss(&mut be, &mut net, &params, &x);
    // Stale values in every gradient: blocks that do not run must be zeroed by the backward.
    be.write(net.grads, &vec![7.0; net.grads.len()]);
    let dx = net
        .backward(&mut be, rt, duel::model::Backprop::Both)
        .unwrap();
    let dx = be.read(dx).unwrap();
    let grads = be.read(net.unpadded(net.grads)).unwrap();
    let mut central = |which: bool, i: usize| {
        let (mut p, mut xs) = (params.clone(), x.clone());
        let v = if which { &mut p[i] } else { &mut xs[i] };
        *v += h;
        let up = loss(&mut be, &mut net, &p, &xs);
        let (mut p, mut xs) = (params.clone(), x.clone());
        let v = if which { &mut p[i] } else { &mut xs[i] };
        *v -= h;
        let down = loss(&mut be, &mut net, &p, &xs);
        (up - down) / (2.0 * h as f64)
    };
    let num_p: Vec<f64> = (0..params.len()).map(|i| central(true, i)).collect();
    let num_x: Vec<f64> = (0..x.len()).map(|i| central(false, i)).collect();
    let kinks = |n: usize| n / 30 + 1;
    let moved = compare(
        &format!("{what}: parameters"),
        &grads,
        &num_p,
        tol,
        kinks(num_p.len()),
    );
    compare(
        &format!("{what}: input"),
        &dx,
        &num_x,
        tol_x,
        kinks(num_x.len()),
    );
    assert!(moved > 0, "{what}: every parameter gradient is 0");
    if let Some(level) = growth.map(|g| g.0) {
        // Parameters of blocks that did not run get exactly 0.
        for (g, n) in grads.iter().zip(&num_p) {
            if *n == 0.0 {
                assert_eq!(*g, 0.0, "{what} at level {level}: an idle block's gradient");
            }
        }
    }
}

const LRELU: Layer = Layer::Act(Activation::LeakyRelu(0.2));

#[test]
fn pixel_norm_backward() {
    let spec = NetSpec::flat(
        5,
        vec![Layer::PixelNorm, Layer::Linear(6), Layer::PixelNorm],
    );
    check_network("pixel norm (flat)", &spec, 3, None, 1e-2, 2e-3, 2e-3);
    let spec = NetSpec {
        input: Shape::image(3, 4, 5),
        layers: vec![
            Layer::Conv2d {
                out: 4,
                k: 3,
                stride: 1,
                pad: 1,
            },
            Layer::PixelNorm,
        ],
    };
    check_network("pixel norm (images)", &spec, 2, None, 1e-3, 2e-3, 2e-3);
}

#[test]
fn minibatch_std_backward() {
    for (rows, group) in [(4, 2), (6, 3), (3, 4)] {
        let spec = NetSpec {
            input: Shape::image(2, 3, 3),
            layers: vec![
                Layer::Conv2d {
                    out: 3,
                    k: 3,
                    stride: 1,
                    pad: 1,
                },
                Layer::MinibatchStd(group),
                Layer::Reshape(Shape::flat(4 * 9)),
                Layer::Linear(2),
            ],
        };
        check_network(
            &format!("minibatch std {rows} rows, group {group}"),
            &spec,
            rows,
            None,
            1e-2,
            2e-3,
            2e-3,
        );
    }
}

#[test]
fn avgpool_and_equalized_lr_backward() {
    let spec = NetSpec {
        input: Shape::image(2, 6, 4),
        layers: vec![
            Layer::EqualizedLr(2f32.sqrt()),
            Layer::Conv2d {
                out: 3,
                k: 3,
                stride: 1,
                pad: 1,
            },
            Layer::AvgPool2x,
            Layer::Reshape(Shape::flat(3 * 3 * 2)),
            Layer::EqualizedLr(1.0),
            Layer::Linear(4),
        ],
    };
    check_network("avgpool, equalized lr", &spec, 3, None, 1e-2, 2e-3, 2e-3);
    // The runtime scale: c = gain/sqrt(fan_in) times the stored weight, bias from 0.
    let built = spec.build("net").unwrap();
    assert!(
        built.modules[0].module.describe().contains("×0.3333"),
        "{}",
        built.modules[0].module.describe()
    );
    let params = built.init_params(1, 0);
    let n_w = 3 * 2 * 9;
    let var = params[..n_w].iter().map(|v| v * v).sum::<f32>() / n_w as f32;
    assert!(
        (0.5..1.6).contains(&var),
        "weights drawn from N(0, 1): var {var}"
    );
    assert!(params[n_w..n_w + 3].iter().all(|&b| b == 0.0));
}

/// Minibatch std over groups of 4: with 2 rows a group's deviation is |x₁ − x₂|/2, whose kink
/// central differences would straddle.
fn pro(side: usize) -> ProSpec {
    ProSpec {
        side,
        channels: 2,
        width: 4,
        phase_images: 1,
        group: 4,
    }
}

#[test]
fn progressive_generator_backward_at_every_phase() {
    // A wider G than D's test: pixel norm's curvature grows as a position's feature vector
    // shrinks, and with a handful of channels too many of them are short for a step of 10⁻³.
    let wide = |side| ProSpec {
        width: 8,
        ..pro(side)
    };
    let spec = NetSpec::flat(16, vec![Layer::ProGenerator(wide(8))]);
    for growth in [(1, 1.0), (1, 0.0), (1, 0.3), (0, 1.0)] {
        check_network(
            &format!("G at {growth:?}"),
            &spec,
            2,
            Some(growth),
            1e-3,
            1e-2,
            3e-2,
        );
    }
    let spec = NetSpec::flat(16, vec![Layer::ProGenerator(wide(16))]);
    check_network(
        "G 16×16 at (1, 0.6)",
        &spec,
        2,
        Some((1, 0.6)),
        1e-3,
        1e-2,
        3e-2,
    );
}

#[test]
fn progressive_critic_backward_at_every_phase() {
    let spec = NetSpec {
        input: Shape::image(2, 8, 8),
        layers: vec![Layer::ProDiscriminator(pro(8))],
    };
    for growth in [(1, 1.0), (1, 0.0), (0, 1.0), (1, 0.3)] {
        check_network(
            &format!("D at {growth:?}"),
            &spec,
            4,
            Some(growth),
            1e-3,
            3e-3,
            3e-3,
        );
    }
    let spec = NetSpec {
        input: Shape::image(2, 16, 16),
        layers: vec![Layer::ProDiscriminator(pro(16))],
    };
    check_network(
        "D 16×16 at (1, 0.6)",
        &spec,
        4,
        Some((1, 0.6)),
        1e-3,
        3e-3,
        3e-3,
    );
}

#[test]
fn progressive_critic_tangent_is_the_derivative_of_its_parameter_gradient() {
    // ../shared/GAN-MATH.md's identity ∇θ(g·v) = d/dε ∇θ Σ D(x + εv) at ε = 0: the tangent pass,
    // minibatch std's curvature included, against a central difference of two ordinary
    // parameter-gradient passes.
    let side = 8;
    let spec = NetSpec {
        input: Shape::image(2, side, side),
        layers: vec![Layer::ProDiscriminator(pro(side))],
    };
    for (growth, rows) in [((0, 1.0), 4), ((1, 0.4), 4), ((1, 1.0), 8)] {
        let params = spec.build("net").unwrap().init_params(7, 0);
        let n_in = spec.input.len();
        let x = data(21, rows * n_in, -1.0, 1.0);
        let v = data(22, rows * n_in, -1.0, 1.0);
        let mut be = cpu();
        let mut net = Network::new(&mut be, &spec, rows, &params, 5, "critic").unwrap();
        net.set_growth(growth.0, growth.1);
        let xt = be.upload(&x, "x").unwrap();
        let vt = be.upload(&v, "v").unwrap();
        let ones = be.upload(&vec![1.0; rows], "ones").unwrap();
        let scratch = [
            be.alloc(rows * n_in, "a").unwrap(),
            be.alloc(rows * n_in, "b").unwrap(),
        ];
        let grads_at = |be: &mut dyn Backend, net: &mut Network, xs: &[f32]| {
            be.write(xt, xs);
            net.forward(be, xt, rows, true, None);
            net.backward(be, ones, duel::model::Backprop::Both);
            be.read(net.unpadded(net.grads)).unwrap()
        };
        grads_at(&mut be, &mut net, &x);
        be.write(net.grads, &vec![0.0; net.grads.len()]);
        net.tangent(&mut be, vt, scratch).unwrap();
        let tangent = be.read(net.unpadded(net.grads)).unwrap();
        let eps = 1e-3f32;
        let shifted = |e: f32| -> Vec<f32> { x.iter().zip(&v).map(|(a, b)| a + e * b).collect() };
        let up = grads_at(&mut be, &mut net, &shifted(eps));
        let down = grads_at(&mut be, &mut net, &shifted(-eps));
        let num: Vec<f64> = (0..params.len())
            .map(|i| (up[i] as f64 - down[i] as f64) / (2.0 * eps as f64))
            .collect();
        let moved = compare(
            &format!("∇θ(g·v) at {growth:?}"),
            &tangent,
            &num,
            1e-2,
            params.len() / 50 + 1,
        );
        assert!(
            moved > params.len() / 4,
            "{growth:?}: the tangent pass left most gradients at 0"
        );
    }
}

#[test]
fn minibatch_std_outside_the_progressive_critic_refuses_a_penalty() {
    let spec = NetSpec {
        input: Shape::image(2, 4, 4),
        layers: vec![
            Layer::MinibatchStd(2),
            Layer::Reshape(Shape::flat(48)),
            Layer::Linear(1),
            LRELU,
        ],
    };
    let err = spec
        .build("critic")
        .and_then(|critic| critic.check_tangent())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("second-order") && err.contains("progan"),
        "{err}"
    );
}

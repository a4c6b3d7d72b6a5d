//! Every backward pass against central finite differences of its forward, on the CPU path:
//! each layer kind alone (through a one-layer network, so the module's own backward is what is
//! checked), every fused combination in a whole network, and the GAN losses.
#![allow(clippy::needless_range_loop)]

mod common;

use common::{cpu, data};
use duel::backend::{Activation, Backend, GanLossKind};
use duel::kernels::gan_loss::{LossArgs, Record, gan_loss, gan_loss_with_drift};
use duel::model::{Layer, NetSpec, Network, Shape};

/// Row r's class: (5r + 2) mod k, uploaded as u32.
fn upload_labels(be: &mut dyn Backend, rows: usize, k: usize) -> duel::backend::Tensor {
    let labels: Vec<u32> = (0..rows).map(|r| ((5 * r + 2) % k) as u32).collect();
    let t = be.alloc(rows, "labels").unwrap();
    be.write_u32(t, &labels);
    t
}

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

/// Checks a network's backward against central differences of L = Σ r ⊙ net(x): the input
/// gradient and every parameter gradient. Dropout draws the same mask every time. Inputs are
/// drawn from `x_range`; `h` is the difference step.
fn check_network(what: &str, spec: &NetSpec, rows: usize, x_range: f32, h: f32, tol: f64) {
    check_network_at(
        what,
        spec,
        &spec.build("net").unwrap().init_params(3, 0),
        rows,
        x_range,
        h,
        tol,
    );
}

/// `check_network` at the parameters `params`.
fn check_network_at(
    what: &str,
    spec: &NetSpec,
    params: &[f32],
    rows: usize,
    x_range: f32,
    h: f32,
    tol: f64,
) {
    let params = params.to_vec();
    let x = data(13, rows * spec.input.len(), -x_range, x_range);
    let r = data(14, rows * spec.build("net").unwrap().output(), -1.0, 1.0);
    let mut be = cpu();
    let mut net = Network::new(&mut be, spec, rows, &params, 5, "net").unwrap();
    // A conditional network's rows get classes (every class, some twice, out of order).
    if let Some(k) = spec.classes() {
        net.labels = Some(upload_labels(&mut be, rows, k));
    }
    // A class embedding concatenates to noise, which takes no gradient.
    let want_dx = !matches!(spec.layers[0], Layer::ClassEmbedding { .. });
    let xt = be.upload(&x, "x").unwrap();
    let rt = be.upload(&r, "r").unwrap();
    let loss = |be: &mut dyn Backend, net: &mut Network, p: &[f32], x: &[f32]| {
        be.write(net.unpadded(net.params), p);
        be.write(xt, x);
        net.rng.counter = 0;
        let y = net.forward(be, xt, rows, true, None);
        dot(&be.read(y).unwrap(), &r)
    };
    loss(&mut be, &mut net, &params, &x);
    let pass = if want_dx {
        duel::model::Backprop::Both
    } else {
        duel::model::Backprop::Weights
    };
    let dx = net.backward(&mut be, rt, pass);
    let dx = match dx {
        Some(dx) => be.read(dx).unwrap(),
        None => vec![1.0; x.len()],
    };
    let grads = be.read(net.unpadded(net.grads)).unwrap();
    for i in 0..params.len() {
        let num = central(&mut |p| loss(&mut be, &mut net, p, &x), &params, i, h);
        check(
            &format!("{what}: dparam[{i}]"),
            grads[i] as f64,
            num,
            tol,
            20.0 * tol,
        );
    }
    for i in (0..x.len()).filter(|_| want_dx) {
        let num = central(&mut |v| loss(&mut be, &mut net, &params, v), &x, i, h);
        check(
            &format!("{what}: dx[{i}]"),
            dx[i] as f64,
            num,
            tol,
            20.0 * tol,
        );
    }
    assert!(
        dx.iter().any(|g| g.abs() > 1e-3),
        "{what}: input gradients are all ~0"
    );
}

const ACTS: [Activation; 5] = [
    Activation::Identity,
    Activation::Relu,
    Activation::LeakyRelu(0.2),
    Activation::Tanh,
    Activation::Sigmoid,
];

#[test]
fn linear_and_its_fused_activations() {
    for act in ACTS {
        let spec = NetSpec::flat(7, vec![Layer::Linear(5), Layer::Act(act)]);
        check_network(&format!("Linear + {act:?}"), &spec, 3, 1.0, 1e-3, 2e-3);
    }
}

#[test]
fn standalone_activations() {
    for act in ACTS {
        // An activation after maxout cannot be fused into a linear layer.
        let spec = NetSpec::flat(6, vec![Layer::Linear(8), Layer::Maxout(2), Layer::Act(act)]);
        check_network(&format!("Maxout → {act:?}"), &spec, 3, 1.0, 1e-3, 2e-3);
    }
}

#[test]
fn maxout_and_dropout() {
    // A step small enough not to change which piece wins.
    let spec = NetSpec::flat(5, vec![Layer::Linear(12), Layer::Maxout(3)]);
    check_network("Linear → Maxout", &spec, 3, 1.0, 1e-4, 5e-3);
    let spec = NetSpec::flat(9, vec![Layer::Dropout(0.6), Layer::Linear(4)]);
    check_network("Dropout → Linear", &spec, 4, 1.0, 1e-3, 2e-3);
}

#[test]
fn whole_network_with_every_fusion() {
    // Every layer kind as D and G compose them: backward-input products fused with the
    // activation below (LeakyReLU, Tanh), an activation gradient taken in the layer itself
    // (Sigmoid at the end), dropout and maxout.
    let spec = NetSpec {
        input: Shape::flat(6),
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
    check_network("network", &spec, 4, 1.0, 1e-3, 3e-3);
}

fn conv(out: usize, k: usize, stride: usize, pad: usize) -> Layer {
    Layer::Conv2d {
        out,
        k,
        stride,
        pad,
    }
}

fn conv_t(out: usize, k: usize, stride: usize, pad: usize) -> Layer {
    Layer::ConvTranspose2d {
        out,
        k,
        stride,
        pad,
    }
}

/// Difference step and tolerance for a layer with activation `act`: a convolution has many
/// outputs, so a kink of a piecewise-linear activation lies within a step of 10⁻³ of one of
/// them too often; a smaller step keeps it away at the price of a looser tolerance.
fn step_for(act: Activation) -> (f32, f64) {
    if act.is_piecewise_linear() && act != Activation::Identity {
        (1e-4, 5e-3)
    } else {
        (1e-3, 2e-3)
    }
}

#[test]
fn conv2d_and_its_fused_activations() {
    // (input, layer): odd sizes, strides 1 and 2, padding 0–2, kernels 1, 3, 4, 5.
    let shapes = [
        (Shape::image(2, 7, 6), conv(3, 3, 2, 1)),
        (Shape::image(1, 9, 7), conv(2, 4, 2, 2)),
        (Shape::image(3, 5, 5), conv(2, 1, 1, 0)),
        (Shape::image(2, 8, 7), conv(3, 5, 1, 2)),
        (Shape::image(3, 6, 5), conv(4, 3, 1, 0)),
    ];
    for (i, act) in ACTS.into_iter().enumerate() {
        let (input, layer) = shapes[i].clone();
        let spec = NetSpec {
            input,
            layers: vec![layer.clone(), Layer::Act(act)],
        };
        let (h, tol) = step_for(act);
        check_network(&format!("{layer:?} + {act:?}"), &spec, 3, 1.0, h, tol);
    }
}

#[test]
fn conv_transpose2d_and_its_fused_activations() {
    let shapes = [
        (Shape::image(3, 4, 3), conv_t(2, 4, 2, 1)),
        (Shape::image(2, 5, 5), conv_t(3, 3, 2, 0)),
        (Shape::image(1, 3, 4), conv_t(2, 5, 1, 2)),
        (Shape::image(3, 3, 3), conv_t(2, 1, 1, 0)),
        (Shape::image(2, 4, 5), conv_t(3, 3, 1, 1)),
    ];
    for (i, act) in ACTS.into_iter().enumerate() {
        let (input, layer) = shapes[i].clone();
        let spec = NetSpec {
            input,
            layers: vec![layer.clone(), Layer::Act(act)],
        };
        let (h, tol) = step_for(act);
        check_network(&format!("{layer:?} + {act:?}"), &spec, 3, 1.0, h, tol);
    }
}

#[test]
fn conv_networks_with_every_fusion() {
    // D-like: each conv's input gradient fused with the LeakyReLU below it, a Linear on the
    // flattened features; G-like: transposed convolutions with ReLU fused below and tanh on top.
    let d = NetSpec {
        input: Shape::image(2, 9, 8),
        layers: vec![
            conv(3, 4, 2, 1),
            Layer::Act(Activation::LeakyRelu(0.2)),
            conv(4, 3, 2, 1),
            Layer::Act(Activation::LeakyRelu(0.2)),
            Layer::Linear(1),
        ],
    };
    check_network("conv critic", &d, 3, 1.0, 1e-4, 5e-3);
    let g = NetSpec {
        input: Shape::image(4, 2, 3),
        layers: vec![
            conv_t(3, 4, 2, 1),
            Layer::Act(Activation::Relu),
            conv_t(2, 4, 2, 1),
            Layer::Act(Activation::Tanh),
        ],
    };
    check_network("transposed-conv generator", &g, 3, 1.0, 1e-4, 5e-3);
    // A batch whose weight gradient is split into slices summed afterwards.
    let wide = NetSpec {
        input: Shape::image(1, 16, 16),
        layers: vec![conv(2, 3, 1, 1), Layer::Act(Activation::Sigmoid)],
    };
    let g = duel::kernels::conv::ConvGeom {
        n: 9,
        ci: 1,
        h: 16,
        w: 16,
        co: 2,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
    };
    assert!(duel::kernels::conv::weight_grad_splits(&g) > 1);
    check_network("conv, batch 9", &wide, 9, 1.0, 1e-3, 2e-3);
}

#[test]
fn spectrally_normalised_conv2d() {
    // W viewed as [out, in·k·k]; the gradient through σ as for Linear.
    let spec = NetSpec {
        input: Shape::image(2, 7, 6),
        layers: duel::config::with_spectral_norm(&[
            conv(3, 3, 2, 1),
            Layer::Act(Activation::LeakyRelu(0.2)),
            Layer::Linear(2),
        ]),
    };
    assert!(
        spec.build("net")
            .unwrap()
            .describe()
            .contains("spectral norm"),
        "{}",
        spec.build("net").unwrap().describe()
    );
    check_network(
        "SN Conv2d + LeakyReLU → SN Linear",
        &spec,
        3,
        1.0,
        1e-4,
        5e-3,
    );
}

#[test]
fn spectrally_normalised_conv_transpose2d() {
    // W [in, out, k, k] viewed over dimension 1 as [out, in·k·k]; the gradient through σ, the
    // input gradient through W/σ. Two layers: a ragged 3×3 (5 → 3 channels) and DCGAN's 4×4/2.
    let spec = NetSpec {
        input: Shape::image(5, 3, 4),
        layers: duel::config::with_spectral_norm(&[
            conv_t(3, 3, 1, 1),
            Layer::Act(Activation::LeakyRelu(0.2)),
            conv_t(2, 4, 2, 1),
            Layer::Act(Activation::Tanh),
        ]),
    };
    let d = spec.build("net").unwrap().describe();
    assert_eq!(
        d.matches("ConvTranspose2d (spectral norm)").count(),
        2,
        "{d}"
    );
    check_network("SN ConvTranspose2d ×2", &spec, 3, 1.0, 1e-4, 5e-3);
}

#[test]
fn conv_tangent_pass_is_the_derivative_of_the_parameter_gradient() {
    // A gradient penalty's tangent pass adds ∇θ(g₀·v) (g₀ = ∂L/∂x) to the parameter gradients;
    // for a piecewise-linear critic that is exactly d/dε ∇θ L(x + εv) (../shared/GAN-MATH.md),
    // checked by central differences of two ordinary backward passes.
    let spec = NetSpec {
        input: Shape::image(2, 5, 6),
        layers: vec![
            conv_t(3, 3, 2, 1),
            Layer::Act(Activation::LeakyRelu(0.2)),
            conv(4, 4, 2, 1),
            Layer::Act(Activation::LeakyRelu(0.2)),
            conv(3, 3, 1, 1),
            Layer::Linear(1),
        ],
    };
    let rows = 3;
    let params = spec.build("net").unwrap().init_params(7, 0);
    let x = data(21, rows * spec.input.len(), -1.0, 1.0);
    let v = data(22, x.len(), -1.0, 1.0);
    let r = data(23, rows, -1.0, 1.0);
    let mut be = cpu();
    let mut net = Network::new(&mut be, &spec, rows, &params, 5, "critic").unwrap();
    let xt = be.upload(&x, "x").unwrap();
    let vt = be.upload(&v, "v").unwrap();
    let rt = be.upload(&r, "r").unwrap();
    let widest = net
        .widths
        .iter()
        .copied()
        .max()
        .unwrap()
        .max(spec.input.len());
    let scratch = [
        be.alloc(rows * widest, "tangent a").unwrap(),
        be.alloc(rows * widest, "tangent b").unwrap(),
    ];
    let grads_at = |be: &mut dyn Backend, net: &mut Network, at: &[f32]| {
        be.write(xt, at);
        net.forward(be, xt, rows, true, None);
        net.backward(be, rt, duel::model::Backprop::Both);
        be.read(net.unpadded(net.grads)).unwrap()
    };
    let g0 = grads_at(&mut be, &mut net, &x);
    net.tangent(&mut be, vt, scratch).unwrap();
    let with_tangent = be.read(net.unpadded(net.grads)).unwrap();
    let eps = 1e-3f32;
    let shifted =
        |sign: f32| -> Vec<f32> { x.iter().zip(&v).map(|(a, b)| a + sign * eps * b).collect() };
    let up = grads_at(&mut be, &mut net, &shifted(1.0));
    let down = grads_at(&mut be, &mut net, &shifted(-1.0));
    let mut checked = 0;
    for i in 0..params.len() {
        let term = (with_tangent[i] - g0[i]) as f64;
        let numeric = (up[i] as f64 - down[i] as f64) / (2.0 * eps as f64);
        check(
            &format!("tangent term of param {i}"),
            term,
            numeric,
            2e-3,
            1e-2,
        );
        checked += (numeric.abs() > 1e-3) as usize;
    }
    assert!(
        checked > params.len() / 2,
        "{checked} of {} terms are not ~0: the check is vacuous",
        params.len()
    );
}

#[test]
fn gan_loss_gradients() {
    let m = 6;
    let h = 1e-2;
    let mut be = cpu();
    for kind in GanLossKind::ALL {
        let (n_real, n_fake) = if kind.is_discriminator() {
            (m, m)
        } else {
            (0, m)
        };
        // Outputs over the range where every loss bends, kept a step away from the hinge's kinks.
        let l: Vec<f32> = data(12, n_real + n_fake, -6.0, 6.0)
            .into_iter()
            .map(|v| {
                if (v.abs() - 1.0).abs() < 3.0 * h {
                    v + 0.1
                } else {
                    v
                }
            })
            .collect();
        let lt = be.upload(&l, "logits").unwrap();
        let grad = be.alloc(l.len(), "grad").unwrap();
        let stats = be.alloc(3, "stats").unwrap();
        let run = |be: &mut dyn Backend, v: &[f32]| {
            be.write(lt, v);
            gan_loss(
                be,
                kind,
                LossArgs {
                    logits: lt,
                    grad,
                    real: n_real,
                    fake: n_fake,
                    stats,
                },
                Record::Replace,
            );
            (be.read(grad).unwrap(), be.read(stats).unwrap())
        };
        let (g, s) = run(&mut be, &l);
        for i in 0..l.len() {
            let num = central(&mut |v| run(&mut be, v).1[0] as f64, &l, i, h);
            check(
                &format!("{kind:?} dL/dl[{i}]"),
                g[i] as f64,
                num,
                2e-4,
                1e-2,
            );
        }
        // The loss itself against its textbook form.
        let d = |v: f32| 1.0 / (1.0 + (-v as f64).exp());
        let mean = |v: &[f32], f: &dyn Fn(f64) -> f64| {
            v.iter().map(|&x| f(x as f64)).sum::<f64>() / v.len() as f64
        };
        let (real, fake) = l.split_at(n_real);
        let relu = |x: f64| x.max(0.0);
        let want: f64 = match kind {
            GanLossKind::Discriminator => {
                -(real.iter().map(|&v| d(v).ln()).sum::<f64>()
                    + fake.iter().map(|&v| (1.0 - d(v)).ln()).sum::<f64>())
                    / m as f64
            }
            GanLossKind::GeneratorMinimax => {
                fake.iter().map(|&v| (1.0 - d(v)).ln()).sum::<f64>() / m as f64
            }
            GanLossKind::GeneratorNonSaturating => {
                -fake.iter().map(|&v| d(v).ln()).sum::<f64>() / m as f64
            }
            GanLossKind::CriticWasserstein => mean(fake, &|x| x) - mean(real, &|x| x),
            GanLossKind::GeneratorWasserstein => -mean(fake, &|x| x),
            GanLossKind::DiscriminatorHinge => {
                mean(real, &|x| relu(1.0 - x)) + mean(fake, &|x| relu(1.0 + x))
            }
            GanLossKind::DiscriminatorLeastSquares => {
                0.5 * mean(real, &|x| (x - 1.0).powi(2)) + 0.5 * mean(fake, &|x| x * x)
            }
            GanLossKind::GeneratorLeastSquares => 0.5 * mean(fake, &|x| (x - 1.0).powi(2)),
        };
        check(&format!("{kind:?} loss"), s[0] as f64, want, 1e-5, 1e-5);
        // D's mean outputs: probabilities for the original losses, raw scores otherwise.
        let shown = |v: f32| {
            if kind.reads_probabilities() {
                d(v)
            } else {
                v as f64
            }
        };
        check(
            &format!("{kind:?} mean D(G(z))"),
            s[2] as f64,
            mean(fake, &|x| shown(x as f32)),
            1e-5,
            1e-5,
        );
    }
}

#[test]
fn drift_term_gradient() {
    // ProGAN's ε·E[D(x)²] on the real outputs, added to each discriminator loss.
    let (m, h, eps) = (5, 1e-2, 0.25f32);
    let mut be = cpu();
    let l = data(13, 2 * m, -4.0, 4.0);
    let lt = be.upload(&l, "logits").unwrap();
    let grad = be.alloc(l.len(), "grad").unwrap();
    let stats = be.alloc(3, "stats").unwrap();
    for kind in [
        GanLossKind::CriticWasserstein,
        GanLossKind::Discriminator,
        GanLossKind::DiscriminatorLeastSquares,
    ] {
        let run = |be: &mut dyn Backend, v: &[f32], drift: f32| {
            be.write(lt, v);
            gan_loss_with_drift(
                be,
                kind,
                LossArgs {
                    logits: lt,
                    grad,
                    real: m,
                    fake: m,
                    stats,
                },
                Record::Replace,
                drift,
            );
            (be.read(grad).unwrap(), be.read(stats).unwrap())
        };
        let (g, s) = run(&mut be, &l, eps);
        let (g0, s0) = run(&mut be, &l, 0.0);
        let drift: f64 = l[..m].iter().map(|&v| (v * v) as f64).sum::<f64>() / m as f64;
        check(
            &format!("{kind:?} loss with drift"),
            s[0] as f64,
            s0[0] as f64 + eps as f64 * drift,
            1e-5,
            1e-5,
        );
        for i in 0..l.len() {
            let num = central(&mut |v| run(&mut be, v, eps).1[0] as f64, &l, i, h);
            check(
                &format!("{kind:?} drift dL/dl[{i}]"),
                g[i] as f64,
                num,
                2e-4,
                1e-2,
            );
            if i < m {
                let term = (g[i] - g0[i]) as f64;
                check(
                    "drift's own term",
                    term,
                    2.0 * eps as f64 * l[i] as f64 / m as f64,
                    1e-6,
                    1e-4,
                );
            } else {
                assert_eq!(g[i], g0[i], "the drift term touched a fake output");
            }
        }
    }
}

// ---- spectral norm -------------------------------------------------------------------------------

#[test]
fn spectrally_normalised_linear_layers() {
    // The gradient through σ = uᵀWv (u, v held, as PyTorch): weight_orig's finite differences
    // move σ too, so a backward without the ⟨G, W_SN⟩·u vᵀ term fails here.
    let sn = |layers: Vec<Layer>| NetSpec::flat(7, duel::config::with_spectral_norm(&layers));
    let spec = sn(vec![
        Layer::Linear(5),
        Layer::Act(Activation::LeakyRelu(0.2)),
    ]);
    check_network("SN Linear + LeakyReLU", &spec, 3, 1.0, 1e-3, 2e-3);
    let spec = sn(vec![
        Layer::Linear(9),
        Layer::Act(Activation::Relu),
        Layer::Linear(4),
        Layer::Act(Activation::Tanh),
        Layer::Linear(2),
    ]);
    check_network("SN network", &spec, 4, 1.0, 1e-3, 3e-3);
}

// ---- the gradient penalty's second-order pass ---------------------------------------------------

/// A critic with every module the tangent pass supports: LeakyReLU and ReLU fused into linear
/// layers, dropout, an unfused activation, (when `sn`) spectral norm on every weight, and (when
/// `input` is 32) every DiffAugment transformation of 2×4×4 images in front.
fn critic(input: usize, sn: bool) -> NetSpec {
    let mut layers = vec![
        Layer::Linear(11),
        Layer::Act(Activation::LeakyRelu(0.2)),
        Layer::Dropout(0.7),
        Layer::Linear(9),
        Layer::Act(Activation::Relu),
        Layer::Linear(6),
        Layer::Linear(7),
        Layer::Act(Activation::LeakyRelu(0.1)),
        Layer::Linear(1),
    ];
    if sn {
        layers = duel::config::with_spectral_norm(&layers);
    }
    if input == AUGMENTED {
        let image = Shape::image(2, 4, 4);
        let policy = duel::layers::augment::Policy::ALL;
        layers.insert(0, Layer::Augment { image, policy });
    }
    NetSpec::flat(input, layers)
}

/// The critic's input size that puts DiffAugment in front of it.
const AUGMENTED: usize = 32;

/// D's input gradient per row, g = ∇ₓD(x), with D's parameters `p` (same dropout masks each
/// time), and the parameter gradient of Σ_rows D(x).
fn input_and_param_grads(
    be: &mut dyn Backend,
    net: &mut Network,
    p: &[f32],
    x: duel::backend::Tensor,
    ones: duel::backend::Tensor,
    rows: usize,
) -> (Vec<f32>, Vec<f32>) {
    be.write(net.unpadded(net.params), p);
    net.rng.counter = 0;
    net.forward(be, x, rows, true, None);
    let g = net.backward(be, ones, duel::model::Backprop::Both).unwrap();
    (
        be.read(g).unwrap(),
        be.read(net.unpadded(net.grads)).unwrap(),
    )
}

#[test]
fn tangent_pass_is_the_directional_derivative_of_the_parameter_gradient() {
    // ../shared/GAN-MATH.md's check: ∇θ(g·v) = d/dε ∇θ Σ D(x + εv) at ε = 0, for any fixed v —
    // a central difference of two ordinary parameter-gradient passes, exact for piecewise-linear
    // D when no kink is crossed.
    // With a projection head too (its class term is linear in the features, like a Linear).
    for (sn, projection, input) in [
        (false, false, 6),
        (true, false, 6),
        (false, true, 6),
        (true, true, 6),
        (false, false, AUGMENTED),
    ] {
        let rows = 5;
        let mut spec = critic(input, sn);
        if projection {
            *spec.layers.last_mut().unwrap() = Layer::Projection { classes: 3 };
        }
        let params = spec.build("net").unwrap().init_params(7, 0);
        // (Seeds at which no unit's pre-activation crosses its kink within ±εv.)
        let x_seed = if input == AUGMENTED { 41 } else { 21 };
        let x = data(x_seed, rows * input, -1.0, 1.0);
        let v = data(22, rows * input, -1.0, 1.0);
        let mut be = cpu();
        let mut net = Network::new(&mut be, &spec, rows, &params, 5, "critic").unwrap();
        if projection {
            net.labels = Some(upload_labels(&mut be, rows, 3));
        }
        let xt = be.upload(&x, "x").unwrap();
        let vt = be.upload(&v, "v").unwrap();
        let ones = be.upload(&vec![1.0; rows], "ones").unwrap();
        let widest = input.max(11) * rows;
        let scratch = [
            be.alloc(widest, "a").unwrap(),
            be.alloc(widest, "b").unwrap(),
        ];
        input_and_param_grads(&mut be, &mut net, &params, xt, ones, rows);
        be.write(net.grads, &vec![0.0; net.grads.len()]);
        net.tangent(&mut be, vt, scratch).unwrap();
        let tangent = be.read(net.unpadded(net.grads)).unwrap();
        let eps = 1e-3f32;
        let shifted = |be: &mut dyn Backend, net: &mut Network, e: f32| {
            let xs: Vec<f32> = x.iter().zip(&v).map(|(a, b)| a + e * b).collect();
            be.write(xt, &xs);
            input_and_param_grads(be, net, &params, xt, ones, rows).1
        };
        let up = shifted(&mut be, &mut net, eps);
        let down = shifted(&mut be, &mut net, -eps);
        let num: Vec<f64> = (0..params.len())
            .map(|i| (up[i] as f64 - down[i] as f64) / (2.0 * eps as f64))
            .collect();
        // Tolerances relative to the largest entry (the entries span orders of magnitude).
        let scale = num.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let mut nonzero = 0;
        for i in 0..params.len() {
            check(
                &format!("sn={sn} projection={projection} input={input}: ∇θ(g·v)[{i}]"),
                tangent[i] as f64,
                num[i],
                // (The f32 differences' noise, ~4e-4 of the scale at most here, decides small
                // entries; with the projection head a few entries are that small.)
                if projection { 5e-4 } else { 1e-4 } * scale,
                1e-2,
            );
            nonzero += (tangent[i].abs() as f64 > 1e-2 * scale) as usize;
        }
        // (Augmented, a quarter of each image is cut out and its inputs' weights get no term.)
        assert!(
            nonzero > params.len() / 3,
            "sn={sn} input={input}: the tangent pass left {} of {} weight gradients at 0",
            params.len() - nonzero,
            params.len()
        );
    }
}

#[test]
fn gradient_penalty_and_r1_gradients_match_finite_differences() {
    // P(θ) = mean_rows λ(‖∇ₓD(x_r)‖ − 1)² (WGAN-GP) or (γ/2)‖∇ₓD(x_r)‖² (R1), the norm over all
    // of a row's values: its gradient from the tangent pass against central differences of P
    // itself, computed from the input gradients of perturbed critics.
    use duel::backend::WriteMode;
    use duel::kernels::penalty::{PenaltyKind, PenaltyTerm, penalty_reduce, penalty_seed};
    for (kind, weight, sn, input) in [
        (PenaltyKind::GradientPenalty, 10.0, false, 6),
        (PenaltyKind::GradientPenalty, 10.0, true, 6),
        (PenaltyKind::R1, 5.0, false, 6),
        (PenaltyKind::R1, 5.0, false, AUGMENTED),
        (PenaltyKind::GradientPenalty, 10.0, true, AUGMENTED),
    ] {
        let rows = 4;
        let spec = critic(input, sn);
        let params = spec.build("net").unwrap().init_params(9, 0);
        let x = data(31, rows * input, -1.0, 1.0);
        let mut be = cpu();
        let mut net = Network::new(&mut be, &spec, rows, &params, 5, "critic").unwrap();
        let xt = be.upload(&x, "x").unwrap();
        let ones = be.upload(&vec![1.0; rows], "ones").unwrap();
        let vt = be.alloc(rows * input, "v").unwrap();
        let per_row = be.alloc(2 * rows, "per row").unwrap();
        let stats = be.alloc(2, "stats").unwrap();
        let scratch = [
            be.alloc(input.max(11) * rows, "a").unwrap(),
            be.alloc(input.max(11) * rows, "b").unwrap(),
        ];
        // P in f64 from the input gradients.
        let penalty = |g: &[f32]| {
            g.chunks(input)
                .map(|r| {
                    let n = r.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
                    match kind {
                        PenaltyKind::GradientPenalty => weight as f64 * (n - 1.0).powi(2),
                        PenaltyKind::R1 => 0.5 * weight as f64 * n * n,
                    }
                })
                .sum::<f64>()
                / rows as f64
        };
        let (g, _) = input_and_param_grads(&mut be, &mut net, &params, xt, ones, rows);
        let g_t = be.upload(&g, "g").unwrap();
        let term = PenaltyTerm { kind, weight };
        penalty_seed(&mut be, term, vt, per_row, g_t, rows, input);
        penalty_reduce(&mut be, (stats, WriteMode::Overwrite), per_row, rows);
        let reported = be.read(stats).unwrap()[0] as f64;
        check(
            &format!("{kind:?} value"),
            reported,
            penalty(&g),
            1e-5,
            1e-5,
        );
        // The tangent pass needs the backward of the same forward: run them again.
        input_and_param_grads(&mut be, &mut net, &params, xt, ones, rows);
        be.write(net.grads, &vec![0.0; net.grads.len()]);
        net.tangent(&mut be, vt, scratch).unwrap();
        let analytic = be.read(net.unpadded(net.grads)).unwrap();
        let h = 1e-3;
        let num: Vec<f64> = (0..params.len())
            .map(|i| {
                central(
                    &mut |p| {
                        penalty(&input_and_param_grads(&mut be, &mut net, p, xt, ones, rows).0)
                    },
                    &params,
                    i,
                    h,
                )
            })
            .collect();
        let scale = num.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let mut moved = 0;
        for i in 0..params.len() {
            check(
                &format!("{kind:?} sn={sn} input={input}: ∂P/∂θ[{i}]"),
                analytic[i] as f64,
                num[i],
                1e-3 * scale,
                1e-2,
            );
            moved += (analytic[i].abs() as f64 > 1e-2 * scale) as usize;
        }
        assert!(moved > params.len() / 3, "{kind:?}: ∂P/∂θ is mostly 0");
    }
}

#[test]
fn cross_entropy_gradient() {
    use duel::backend::WriteMode;
    use duel::kernels::cross_entropy::cross_entropy;
    let (rows, classes) = (5, 4);
    let mut be = cpu();
    let l = data(21, rows * classes, -3.0, 3.0);
    let labels: Vec<u32> = (0..rows as u32).map(|r| (r * 3) % classes as u32).collect();
    let lt = be.upload(&l, "logits").unwrap();
    let yt = be.alloc(rows, "labels").unwrap();
    be.write_u32(yt, &labels);
    let grad = be.alloc(l.len(), "grad").unwrap();
    let stats = be.alloc(2, "stats").unwrap();
    let run = |be: &mut dyn Backend, v: &[f32]| {
        be.write(lt, v);
        cross_entropy(
            be,
            grad,
            lt,
            yt,
            (stats, WriteMode::Overwrite),
            rows,
            classes,
        );
        (be.read(grad).unwrap(), be.read(stats).unwrap())
    };
    let (g, s) = run(&mut be, &l);
    for i in 0..l.len() {
        let num = central(&mut |v| run(&mut be, v).1[0] as f64, &l, i, 1e-2);
        check(&format!("dL/dlogit[{i}]"), g[i] as f64, num, 1e-4, 1e-2);
    }
    // The loss against −log softmax on the host, in f64.
    let want: f64 = (0..rows)
        .map(|r| {
            let row = &l[r * classes..(r + 1) * classes];
            let lse = row.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
            lse - row[labels[r] as usize] as f64
        })
        .sum::<f64>()
        / rows as f64;
    check("cross-entropy loss", s[0] as f64, want, 1e-5, 1e-5);
}

/// The initial parameters moved by up to ±0.3, so constant initialisations (batch norm's γ = 1,
/// β = 0) do not hide a missing factor.
fn perturbed(spec: &NetSpec) -> Vec<f32> {
    let p = spec.build("net").unwrap().init_params(3, 0);
    let noise = data(21, p.len(), -0.3, 0.3);
    p.iter().zip(noise).map(|(a, b)| a + b).collect()
}

#[test]
fn batch_norm_in_training_mode() {
    // A flat layer: statistics over the batch, so every sample's output depends on every
    // other's (the coupling terms of dx).
    let spec = NetSpec::flat(
        5,
        vec![
            Layer::Linear(6),
            Layer::BatchNorm,
            Layer::Act(Activation::Tanh),
            Layer::Linear(3),
        ],
    );
    check_network_at(
        "Linear → BatchNorm1d → Tanh",
        &spec,
        &perturbed(&spec),
        4,
        1.0,
        1e-3,
        3e-3,
    );
    // Images: statistics over the batch and every position; the input gradient of the first
    // layer included.
    let spec = NetSpec {
        input: Shape::image(3, 3, 5),
        layers: vec![
            Layer::BatchNorm,
            Layer::Reshape(Shape::flat(45)),
            Layer::Linear(4),
        ],
    };
    check_network_at(
        "BatchNorm2d → Flatten → Linear",
        &spec,
        &perturbed(&spec),
        3,
        1.0,
        1e-3,
        3e-3,
    );
}

#[test]
fn upsampling_and_reshapes() {
    let spec = NetSpec {
        input: Shape::image(2, 3, 5),
        layers: vec![
            Layer::Upsample2x,
            Layer::Reshape(Shape::flat(2 * 6 * 10)),
            Layer::Linear(3),
        ],
    };
    check_network("Upsample → Flatten → Linear", &spec, 2, 1.0, 1e-3, 2e-3);
    // A generator's stack: unflatten a linear layer's output, upsample, normalise, flatten; and
    // a network ending in a view.
    let spec = NetSpec::flat(
        4,
        vec![
            Layer::Linear(12),
            Layer::Reshape(Shape::image(3, 2, 2)),
            Layer::Upsample2x,
            Layer::BatchNorm,
            Layer::Act(Activation::Tanh),
            Layer::Reshape(Shape::flat(48)),
            Layer::Linear(2),
            Layer::Reshape(Shape::image(2, 1, 1)),
        ],
    );
    check_network_at("G-like stack", &spec, &perturbed(&spec), 3, 1.0, 1e-3, 3e-3);
}

#[test]
fn class_embedding_concatenated_to_noise() {
    // The embedding's rows of the classes present get gradients; the others stay 0.
    let spec = NetSpec::flat(
        4,
        vec![
            Layer::ClassEmbedding { classes: 7, dim: 3 },
            Layer::Linear(5),
            Layer::Act(Activation::Tanh),
        ],
    );
    check_network("ClassEmbedding → Linear + Tanh", &spec, 4, 1.0, 1e-3, 2e-3);
}

#[test]
fn projection_head_with_and_without_spectral_norm() {
    // The projection discriminator's head: a Linear to one output plus ⟨E[y], φ⟩, its input
    // gradient included; with spectral norm on both the Linear and the embedding.
    let layers = vec![
        Layer::Linear(6),
        Layer::Act(Activation::LeakyRelu(0.2)),
        Layer::Projection { classes: 4 },
    ];
    let spec = NetSpec::flat(5, layers.clone());
    check_network("Linear + LeakyReLU → Projection", &spec, 6, 1.0, 1e-3, 2e-3);
    let sn = NetSpec::flat(5, duel::config::with_spectral_norm(&layers));
    let described = sn.build("net").unwrap().describe();
    assert!(
        described.contains("Projection(6 → 1, 4 classes, spectral norm)"),
        "{described}"
    );
    check_network(
        "SN Linear + LeakyReLU → SN Projection",
        &sn,
        6,
        1.0,
        1e-4,
        5e-3,
    );
}

#[test]
fn conditional_batch_norm_in_training_mode() {
    // Per-class γ and β (perturbed away from 1 and 0 so the classes differ) over flat features
    // and over images, the batch statistics coupling every sample's gradient.
    let spec = NetSpec::flat(
        5,
        vec![
            Layer::Linear(6),
            Layer::ConditionalBatchNorm { classes: 3 },
            Layer::Act(Activation::Tanh),
            Layer::Linear(3),
        ],
    );
    check_network_at(
        "Linear → ConditionalBatchNorm1d → Tanh → Linear",
        &spec,
        &perturbed(&spec),
        5,
        1.0,
        1e-3,
        3e-3,
    );
    let spec = NetSpec {
        input: Shape::image(3, 3, 5),
        layers: vec![
            Layer::ConditionalBatchNorm { classes: 2 },
            Layer::Reshape(Shape::flat(45)),
            Layer::Linear(4),
        ],
    };
    check_network_at(
        "ConditionalBatchNorm2d → Flatten → Linear",
        &spec,
        &perturbed(&spec),
        4,
        1.0,
        1e-3,
        3e-3,
    );
}

#[test]
fn self_attention() {
    // γ ≠ 0 (it starts at 0, where the attention path's gradients other than dγ vanish), and
    // every other weight moved off its initialisation. 3×5 = 15 positions, 16 channels (query
    // and key at 2): the input, every convolution's weight and bias, and γ.
    let spec = NetSpec {
        input: Shape::image(16, 3, 5),
        layers: vec![Layer::SelfAttention],
    };
    let mut p = perturbed(&spec);
    let n = p.len();
    p[n - 1] = 0.8;
    check_network_at("SelfAttention", &spec, &p, 2, 1.0, 1e-3, 3e-3);
    // Spectrally normalised, between a convolution with a fused LeakyReLU (whose gradient the
    // attention layer leaves to it) and a Linear; odd channel count (C/8 = 1).
    let spec = NetSpec {
        input: Shape::image(3, 4, 4),
        layers: duel::config::with_spectral_norm(&[
            conv(9, 3, 1, 1),
            Layer::Act(Activation::LeakyRelu(0.2)),
            Layer::SelfAttention,
            Layer::Reshape(Shape::flat(9 * 16)),
            Layer::Linear(2),
        ]),
    };
    assert!(
        spec.build("net")
            .unwrap()
            .describe()
            .contains("SelfAttention (spectral norm)(9×4×4, query/key 1 channels)"),
        "{}",
        spec.build("net").unwrap().describe()
    );
    let mut p = perturbed(&spec);
    // γ is the attention layer's last tensor: after the conv's 9·3·9 + 9 and its own
    // 3·(9 + 1) … (9·9 + 9) values.
    let gamma = 9 * 27 + 9 + 2 * (9 + 1) + 9 * 9 + 9;
    p[gamma] = -0.7;
    check_network_at(
        "SN Conv2d + LeakyReLU → SN SelfAttention → Linear",
        &spec,
        &p,
        2,
        1.0,
        1e-3,
        3e-3,
    );
}

#[test]
fn diffaugment_of_images_and_packs() {
    // Every transformation alone and all together, on odd-sized colour images and on a row
    // holding a pack of two images; the draws repeat because the network's counter is reset.
    use duel::layers::augment::Policy;
    let policies = ["color", "translation", "cutout", "color,translation,cutout"];
    for (name, policy) in policies.map(|p| (p, p.parse::<Policy>().unwrap())) {
        for (pack, image) in [(1, Shape::image(3, 9, 7)), (2, Shape::image(2, 8, 8))] {
            let input = Shape::image(image.c * pack, image.h, image.w);
            let spec = NetSpec {
                input,
                layers: vec![
                    Layer::Augment { image, policy },
                    conv(2, 3, 2, 1),
                    Layer::Act(Activation::Tanh),
                    Layer::Linear(1),
                ],
            };
            check_network(&format!("{name}, pack {pack}"), &spec, 3, 1.0, 1e-3, 2e-3);
        }
    }
}

// ---- residual blocks ----------------------------------------------------------------------------

/// A critic-style residual block on 3×4×4 images: ReLU → 3×3 conv → ReLU → 3×3 conv on the main
/// path (the conv's ReLU fused, the first ReLU's gradient fused into the second conv), a 1×1 conv
/// skip, then a residual block with an identity skip, flattened into a Linear.
fn residual_critic(sn: bool) -> NetSpec {
    let relu = || Layer::Act(Activation::Relu);
    let mut layers = vec![
        Layer::Residual {
            main: vec![relu(), conv(4, 3, 1, 1), relu(), conv(4, 3, 1, 1)],
            skip: vec![conv(4, 1, 1, 0)],
        },
        Layer::Residual {
            main: vec![Layer::Act(Activation::LeakyRelu(0.2)), conv(4, 3, 1, 1)],
            skip: vec![],
        },
        Layer::Act(Activation::Relu),
        Layer::Reshape(Shape::flat(64)),
        Layer::Linear(2),
    ];
    if sn {
        layers = duel::config::with_spectral_norm(&layers);
    }
    NetSpec {
        input: Shape::image(3, 4, 4),
        layers,
    }
}

#[test]
fn residual_blocks_with_and_without_spectral_norm() {
    for sn in [false, true] {
        let spec = residual_critic(sn);
        assert_eq!(
            spec.build("net")
                .unwrap()
                .describe()
                .matches("Conv2d (spectral norm)")
                .count(),
            if sn { 4 } else { 0 },
            "{}",
            spec.build("net").unwrap().describe()
        );
        check_network(&format!("residual, sn={sn}"), &spec, 3, 1.0, 1e-4, 5e-3);
    }
}

#[test]
fn residual_generator_block_with_batch_norm() {
    // SNGAN's up-block: BN → ReLU → upsample → 3×3 conv → BN → ReLU → 3×3 conv, with an
    // upsample + 1×1 conv skip; batch statistics couple the rows on both BN layers. Conditional
    // batch norm in a second, identity-skip block.
    let block = Layer::Residual {
        main: vec![
            Layer::BatchNorm,
            Layer::Act(Activation::Relu),
            Layer::Upsample2x,
            conv(3, 3, 1, 1),
            Layer::BatchNorm,
            Layer::Act(Activation::Relu),
            conv(3, 3, 1, 1),
        ],
        skip: vec![Layer::Upsample2x, conv(3, 1, 1, 0)],
    };
    let conditional = Layer::Residual {
        main: vec![
            Layer::ConditionalBatchNorm { classes: 3 },
            Layer::Act(Activation::Relu),
            conv(3, 3, 1, 1),
        ],
        skip: vec![],
    };
    for (what, layers) in [
        ("residual up-block", vec![block.clone()]),
        ("with conditional BN", vec![block, conditional]),
    ] {
        let spec = NetSpec {
            input: Shape::image(2, 3, 2),
            layers: [layers, vec![Layer::Act(Activation::Tanh)]].concat(),
        };
        check_network_at(what, &spec, &perturbed(&spec), 3, 1.0, 1e-3, 5e-3);
    }
}

/// SNGAN's critic in miniature on 3×8×8 images (`duel::resnet32`'s blocks at 4 channels): the
/// optimized block (3×3 conv → ReLU → 3×3 conv → avgpool, avgpool → 1×1 conv shortcut), a
/// down-block (ReLU → conv → ReLU → conv → avgpool, 1×1 conv → avgpool shortcut), an identity
/// block, ReLU, global sum pooling over 2×2, then `head`.
fn pooled_critic(sn: bool, head: Layer) -> NetSpec {
    use duel::models::resnet32::{d_block, optimized_block};
    let mut layers = vec![
        optimized_block(4),
        d_block(4, true),
        d_block(4, false),
        Layer::Act(Activation::Relu),
        Layer::SumPool,
        head,
    ];
    if sn {
        layers = duel::config::with_spectral_norm(&layers);
    }
    NetSpec {
        input: Shape::image(3, 8, 8),
        layers,
    }
}

#[test]
fn global_sum_pooling() {
    // Alone over a ragged 3×3×5 map, and after a conv with its fused ReLU.
    let pool = NetSpec {
        input: Shape::image(3, 3, 5),
        layers: vec![Layer::SumPool, Layer::Linear(2)],
    };
    let described = pool.build("net").unwrap().describe();
    assert!(described.contains("SumPool(3×3×5 → 3)"), "{described}");
    check_network("SumPool → Linear", &pool, 3, 1.0, 1e-3, 2e-3);
    let conv_pool = NetSpec {
        input: Shape::image(2, 5, 3),
        layers: vec![
            conv(3, 3, 1, 1),
            Layer::Act(Activation::LeakyRelu(0.2)),
            Layer::SumPool,
            Layer::Linear(1),
        ],
    };
    check_network(
        "Conv2d + LeakyReLU → SumPool → Linear",
        &conv_pool,
        2,
        1.0,
        1e-3,
        3e-3,
    );
}

#[test]
fn pooling_critic_blocks_with_and_without_spectral_norm_and_projection() {
    for sn in [false, true] {
        for head in [Layer::Linear(1), Layer::Projection { classes: 3 }] {
            let what = format!("SNGAN critic, sn={sn}, head {head:?}");
            let spec = pooled_critic(sn, head);
            let d = spec.build("net").unwrap().describe();
            assert!(
                d.contains("AvgPool(2×2)") && d.contains("SumPool(4×2×2 → 4)"),
                "{d}"
            );
            check_network(&what, &spec, 3, 1.0, 1e-4, 5e-3);
        }
    }
}

#[test]
fn residual_tangent_pass_is_the_directional_derivative_of_the_parameter_gradient() {
    // As `tangent_pass_is_the_directional_derivative_of_the_parameter_gradient`, through both
    // residual blocks of `residual_critic` and through SNGAN's pooling blocks and sum pooling,
    // with and without spectral norm.
    let critics = [false, true].into_iter().flat_map(|sn| {
        [
            (format!("residual sn={sn}"), residual_critic(sn), 1e-4f32),
            // Pooling sums make the parameter gradients larger, so f32's rounding in their
            // difference is larger: at a step of 2e-4 it exceeds the tolerance, at 1e-3 the
            // step crosses ReLU kinks; 5e-4 sits between (measured).
            (
                format!("pooling sn={sn}"),
                pooled_critic(sn, Layer::Linear(2)),
                5e-4,
            ),
        ]
    });
    for (what, spec, eps) in critics {
        let rows = 3;
        let input = spec.input.len();
        let mut spec = spec;
        *spec.layers.last_mut().unwrap() = Layer::Linear(1);
        let params = spec.build("net").unwrap().init_params(7, 0);
        let x = data(21, rows * input, -1.0, 1.0);
        let v = data(22, rows * input, -1.0, 1.0);
        let mut be = cpu();
        let mut net = Network::new(&mut be, &spec, rows, &params, 5, "critic").unwrap();
        let xt = be.upload(&x, "x").unwrap();
        let vt = be.upload(&v, "v").unwrap();
        let ones = be.upload(&vec![1.0; rows], "ones").unwrap();
        let widest = rows
            * spec
                .build("net")
                .unwrap()
                .widths()
                .into_iter()
                .fold(input, usize::max);
        let scratch = [
            be.alloc(widest, "a").unwrap(),
            be.alloc(widest, "b").unwrap(),
        ];
        input_and_param_grads(&mut be, &mut net, &params, xt, ones, rows);
        be.write(net.grads, &vec![0.0; net.grads.len()]);
        net.tangent(&mut be, vt, scratch).unwrap();
        let tangent = be.read(net.unpadded(net.grads)).unwrap();
        let shifted = |be: &mut dyn Backend, net: &mut Network, e: f32| {
            let xs: Vec<f32> = x.iter().zip(&v).map(|(a, b)| a + e * b).collect();
            be.write(xt, &xs);
            input_and_param_grads(be, net, &params, xt, ones, rows).1
        };
        let up = shifted(&mut be, &mut net, eps);
        let down = shifted(&mut be, &mut net, -eps);
        let num: Vec<f64> = (0..params.len())
            .map(|i| (up[i] as f64 - down[i] as f64) / (2.0 * eps as f64))
            .collect();
        let scale = num.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let mut nonzero = 0;
        for i in 0..params.len() {
            check(
                &format!("{what}: ∇θ(g·v)[{i}]"),
                tangent[i] as f64,
                num[i],
                2e-3 * scale,
                2e-2,
            );
            nonzero += (tangent[i].abs() as f64 > 1e-2 * scale) as usize;
        }
        assert!(
            nonzero > params.len() / 3,
            "{what}: the tangent pass left {} of {} weight gradients at 0",
            params.len() - nonzero,
            params.len()
        );
    }
}

//! The self-attention layer on the GPU against the CPU path (forward, input gradient, every
//! parameter gradient, with and without spectral norm), and the `sagan32-dcgan` preset (the first `sagan32`): it builds, and
//! whole training iterations agree on both backends in one submit each.

mod common;

use common::{assert_close, cpu, data, gpu};
use duel::backend::{Activation, Backend};
use duel::config::{Preset, TrainConfig};
use duel::gan::{DeviceData, Gan};
use duel::model::{Layer, NetSpec, Network, Shape};

/// Output, input gradient and parameter gradients (then the state) of `spec` on `be`.
fn pass(be: &mut dyn Backend, spec: &NetSpec, params: &[f32], rows: usize) -> Vec<Vec<f32>> {
    let mut net = Network::new(be, spec, rows, params, 5, "net").unwrap();
    let x = be
        .upload(&data(3, rows * spec.input.len(), -1.0, 1.0), "x")
        .unwrap();
    let r = be
        .upload(
            &data(4, rows * spec.build("net").unwrap().output(), -1.0, 1.0),
            "r",
        )
        .unwrap();
    let y = net.forward(be, x, rows, true, None);
    let y = be.read(y).unwrap();
    let dx = net.backward(be, r, duel::model::Backprop::Both).unwrap();
    let dx = be.read(dx).unwrap();
    let grads = be.read(net.unpadded(net.grads)).unwrap();
    let state = be.read(net.state.slice(0, net.n_state.max(1))).unwrap();
    vec![y, dx, grads, state]
}

#[test]
fn attention_layer_gpu_matches_cpu() {
    // 20 channels (query/key 2), 9×11 = 99 positions: past one 64-wide tile, not a multiple
    // of it; batch 3. γ ≠ 0 so every path carries gradient.
    for sn in [false, true] {
        let layers = vec![
            Layer::Conv2d {
                out: 20,
                k: 3,
                stride: 1,
                pad: 1,
            },
            Layer::Act(Activation::LeakyRelu(0.2)),
            Layer::SelfAttention,
        ];
        let spec = NetSpec {
            input: Shape::image(2, 9, 11),
            layers: if sn {
                duel::config::with_spectral_norm(&layers)
            } else {
                layers
            },
        };
        let mut params = spec.build("net").unwrap().init_params(7, 0);
        let n = params.len();
        params[n - 1] = 0.9;
        let g = pass(&mut gpu(), &spec, &params, 3);
        let c = pass(&mut cpu(), &spec, &params, 3);
        assert!(g[2][n - 1].abs() > 1e-3, "dγ is ~0: {}", g[2][n - 1]);
        for (i, what) in ["output", "input gradient", "parameter gradients", "state"]
            .iter()
            .enumerate()
        {
            assert_close(&format!("sn={sn} {what}"), &g[i], &c[i], 1e-5, 1e-3);
        }
    }
}

/// The sagan32-dcgan preset (the first sagan32) at a small width and batch.
fn sagan32_config() -> duel::gan::GanConfig {
    let mut cfg = TrainConfig::preset(Preset::Sagan32Dcgan, "emoji");
    cfg.width = Some(8);
    cfg.batch = 3;
    cfg.channels = 3;
    cfg.validate().unwrap();
    cfg.gan(3 * 32 * 32, Some((3, 32, 32))).unwrap()
}

fn sagan_run(be: &mut dyn Backend, iterations: usize) -> (Vec<f32>, Vec<f32>, u64) {
    let cfg = sagan32_config();
    let dim = 3 * 32 * 32;
    let bytes: Vec<u8> = (0..10 * dim).map(|i| (i * 37 % 256) as u8).collect();
    let rows = be.upload_rows_u8(&bytes, 10, dim, "data").unwrap();
    let data = DeviceData::Bytes {
        rows,
        scale: 2.0 / 255.0,
        offset: -1.0,
    };
    let mut gan = Gan::new(be, &cfg, data, None).unwrap();
    let mut submits = 0;
    for _ in 0..iterations {
        let before = be.counters();
        gan.train_iteration(be);
        submits = be.counters().submits - before.submits;
        gan.take_stats(be).unwrap();
    }
    let mut g = be.read(gan.g.params).unwrap();
    g.extend(be.read(gan.g.state.slice(0, gan.g.n_state)).unwrap());
    let mut d = be.read(gan.d.params).unwrap();
    d.extend(be.read(gan.d.state.slice(0, gan.d.n_state)).unwrap());
    (g, d, submits)
}

/// Where the first attention layer's γ sits in a network's parameters.
fn gamma_index(spec: &NetSpec) -> usize {
    let mut at = 0;
    for b in spec.build("net").unwrap().modules {
        for p in b.module.params() {
            if p.name == "gamma" {
                return at;
            }
            at += p.len();
        }
    }
    panic!("no attention layer");
}

/// The parameter ranges of the biases of layers followed by batch norm.
fn biases_before_batch_norm(spec: &NetSpec) -> Vec<std::ops::Range<usize>> {
    let built = spec.build("net").unwrap().modules;
    let mut out = Vec::new();
    let mut at = 0;
    for (i, b) in built.iter().enumerate() {
        let next_bn = built
            .get(i + 1)
            .is_some_and(|n| n.module.describe().starts_with("BatchNorm"));
        for p in b.module.params() {
            if next_bn && p.name == "bias" {
                out.push(at..at + p.len());
            }
            at += p.len();
        }
    }
    out
}

#[test]
fn sagan32_builds_and_iterations_agree_gpu_vs_cpu() {
    let cfg = sagan32_config();
    let (g, d) = (
        cfg.g.build("net").unwrap().describe(),
        cfg.d.build("net").unwrap().describe(),
    );
    assert!(g.contains("SelfAttention (spectral norm)(8×16×16"), "{g}");
    assert!(d.contains("SelfAttention (spectral norm)(8×16×16"), "{d}");
    assert!(matches!(cfg.objective.loss, duel::gan::Loss::Hinge));
    let (g_gpu, d_gpu, submits) = sagan_run(&mut gpu(), 2);
    let (g_cpu, d_cpu, _) = sagan_run(&mut cpu(), 2);
    assert_eq!(submits, 1, "a GPU iteration is one submit");
    // γ starts at 0 and has moved in both networks: the attention layers train.
    for (what, spec, params) in [("G", &cfg.g, &g_cpu), ("D", &cfg.d, &d_cpu)] {
        let gamma = gamma_index(spec);
        assert!(params[gamma] != 0.0, "{what}'s γ is still 0");
    }
    // A bias right before batch norm has a gradient of exactly 0 in exact arithmetic (the
    // normalisation removes it), so its computed gradient is rounding noise, which Adam turns
    // into steps of ±lr: those tensors agree to the steps taken, everything else closely.
    let noise = biases_before_batch_norm(&cfg.g);
    assert!(!noise.is_empty());
    let lr = 1e-4;
    let (mut g_gpu, mut g_cpu) = (g_gpu, g_cpu);
    for r in noise {
        assert_close(
            "G's biases before batch norm",
            &g_gpu[r.clone()],
            &g_cpu[r.clone()],
            5.0 * lr,
            0.0,
        );
        g_gpu[r.clone()].fill(0.0);
        g_cpu[r].fill(0.0);
    }
    assert_close("generator", &g_gpu, &g_cpu, 1e-4, 1e-3);
    // D's output bias: under the hinge loss its gradient is the difference of the fractions
    // of real and fake rows inside the margin, 1 − 1 = 0 at the start: rounding noise again.
    let last = cfg.d.build("net").unwrap().param_count() - 1;
    let (mut d_gpu, mut d_cpu) = (d_gpu, d_cpu);
    assert_close(
        "D's output bias",
        &d_gpu[last..=last],
        &d_cpu[last..=last],
        5.0 * 4e-4,
        0.0,
    );
    (d_gpu[last], d_cpu[last]) = (0.0, 0.0);
    assert_close("discriminator", &d_gpu, &d_cpu, 1e-4, 1e-3);
}

#[test]
fn checkpoint_names_are_pytorchs_and_a_penalty_is_refused() {
    // D of sagan32-dcgan: Conv2d at index 0, its LeakyReLU at 1, attention at 2 (the SpectralNorm
    // markers take no index), as `Self_Attn` in an nn.Sequential of spectral_norm'd layers.
    let cfg = sagan32_config();
    let d = cfg.d.build("net").unwrap();
    let keys: Vec<(String, Vec<usize>)> = d
        .param_tensors()
        .iter()
        .chain(d.state_tensors())
        .map(|t| (t.key.clone(), t.shape.clone()))
        .collect();
    for (key, shape) in [
        ("2.query_conv.weight_orig", vec![1, 8, 1, 1]),
        ("2.query_conv.bias", vec![1]),
        ("2.key_conv.weight_orig", vec![1, 8, 1, 1]),
        ("2.value_conv.weight_orig", vec![8, 8, 1, 1]),
        ("2.value_conv.bias", vec![8]),
        ("2.gamma", vec![1]),
        ("2.query_conv.weight_u", vec![1]),
        ("2.value_conv.weight_v", vec![8]),
    ] {
        assert!(
            keys.contains(&(key.to_string(), shape.clone())),
            "{key} {shape:?} not among {keys:?}"
        );
    }
    let mut tc = TrainConfig::preset(Preset::Sagan32Dcgan, "emoji");
    tc.gp = 10.0;
    let err = tc.validate().unwrap_err().to_string();
    assert!(
        err.contains("SelfAttention") && err.contains("no tangent pass"),
        "{err}"
    );
}

#[test]
fn forward_is_sagans_formula() {
    // Plain loops of Self_Attn's forward, from the layer's parameters in PyTorch order:
    // energy[i, j] = Σ_c q[c, i]·k[c, j], attention = softmax over j (dim −1),
    // out[c, i] = Σ_j v[c, j]·attention[i, j], y = γ·out + x.
    let (ch, h, w, rows) = (16, 3, 4, 2);
    let (n, c8) = (h * w, ch / 8);
    let spec = NetSpec {
        input: Shape::image(ch, h, w),
        layers: vec![Layer::SelfAttention],
    };
    let mut p = spec.build("net").unwrap().init_params(9, 0);
    let last = p.len() - 1;
    p[last] = 0.6;
    let x = data(3, rows * ch * n, -1.0, 1.0);
    let mut be = cpu();
    let mut net = Network::new(&mut be, &spec, rows, &p, 5, "net").unwrap();
    let xt = be.upload(&x, "x").unwrap();
    let y = net.forward(&mut be, xt, rows, true, None);
    let got = be.read(y).unwrap();

    let conv = |wt: &[f32], b: &[f32], out: usize, xs: &[f32]| -> Vec<f64> {
        let mut r = vec![0.0f64; out * n];
        for o in 0..out {
            for i in 0..n {
                r[o * n + i] = b[o] as f64
                    + (0..ch)
                        .map(|c| wt[o * ch + c] as f64 * xs[c * n + i] as f64)
                        .sum::<f64>();
            }
        }
        r
    };
    let (wq, rest) = p.split_at(c8 * ch);
    let (bq, rest) = rest.split_at(c8);
    let (wk, rest) = rest.split_at(c8 * ch);
    let (bk, rest) = rest.split_at(c8);
    let (wv, rest) = rest.split_at(ch * ch);
    let (bv, rest) = rest.split_at(ch);
    let gamma = rest[0] as f64;
    let mut want = Vec::new();
    for s in 0..rows {
        let xs = &x[s * ch * n..(s + 1) * ch * n];
        let (q, k, v) = (
            conv(wq, bq, c8, xs),
            conv(wk, bk, c8, xs),
            conv(wv, bv, ch, xs),
        );
        let mut attn = vec![0.0f64; n * n];
        for i in 0..n {
            let e: Vec<f64> = (0..n)
                .map(|j| (0..c8).map(|c| q[c * n + i] * k[c * n + j]).sum())
                .collect();
            let m = e.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = e.iter().map(|v| (v - m).exp()).sum();
            for j in 0..n {
                attn[i * n + j] = (e[j] - m).exp() / z;
            }
        }
        for c in 0..ch {
            for i in 0..n {
                let out: f64 = (0..n).map(|j| v[c * n + j] * attn[i * n + j]).sum();
                want.push((gamma * out + xs[c * n + i] as f64) as f32);
            }
        }
    }
    assert_close("SelfAttention forward", &got, &want, 1e-5, 1e-5);
    // The attention path matters: without it the output would be x.
    assert!(got.iter().zip(&x).any(|(a, b)| (a - b).abs() > 1e-2));
}

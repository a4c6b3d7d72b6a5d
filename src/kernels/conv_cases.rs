//! Test cases and benchmark shapes of the convolution kernels (`conv.rs`).
//!
//! Cases cover what the issue lists: odd heights and widths, strides 1, 2 (and 3), padding 0–2,
//! kernel sizes 1, 3, 4, 5, channel counts 1, 3 and odd ones past a 64-wide tile, batches of 1
//! and odd sizes; every store step (bias + each activation, the fused activation gradient) and
//! the weight gradient whole, accumulated and split over the batch.

use super::case::uniform;
use super::conv::{
    BiasNchwParams, ConvGeom, ConvInputGradParams, ConvParams, ConvWeightsParams, FLAG_ACT_GRAD,
    FLAG_BIAS, weight_grad_splits,
};
use super::{Case, u};
use crate::backend::Activation;
use crate::kernels::activation::activation;

/// Which kernel a case is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Forward,
    InputGrad,
    WeightGrad,
}

/// A square-kernel convolution of an [n, ci, h, w] input to `co` channels.
const fn geom(
    [n, ci, h, w]: [usize; 4],
    co: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> ConvGeom {
    ConvGeom {
        n,
        ci,
        h,
        w,
        co,
        kh: k,
        kw: k,
        stride,
        pad,
    }
}

/// Ragged geometries: (n, ci, h, w, co, k, stride, pad).
const SHAPES: [ConvGeom; 13] = [
    geom([1, 1, 5, 7], 1, 1, 1, 0),
    geom([3, 3, 9, 7], 5, 3, 1, 1),
    geom([2, 3, 11, 9], 67, 3, 2, 1),
    geom([1, 5, 13, 13], 7, 5, 2, 2),
    geom([3, 1, 15, 14], 6, 4, 2, 1),
    geom([5, 7, 8, 9], 3, 4, 2, 0),
    geom([1, 70, 6, 5], 3, 3, 1, 2),
    geom([2, 3, 7, 7], 4, 5, 1, 0),
    geom([3, 2, 9, 10], 5, 1, 2, 0),
    geom([1, 3, 6, 7], 2, 3, 3, 1),
    geom([3, 9, 3, 5], 13, 1, 1, 1),
    // Stride 2, 4×4, 16+ channels, even outputs (4×4): the CPU twin's Winograd path
    // (conv_winograd.rs, whose own tests add ragged tiles).
    geom([2, 16, 9, 8], 17, 4, 2, 1),
    // Non-square kernel and more than 16 taps per output channel, K across several slices.
    ConvGeom {
        n: 2,
        ci: 5,
        h: 9,
        w: 6,
        co: 11,
        kh: 3,
        kw: 2,
        stride: 2,
        pad: 1,
    },
];

const ACTS: [Activation; 4] = [
    Activation::Relu,
    Activation::LeakyRelu(0.2),
    Activation::Tanh,
    Activation::Sigmoid,
];

fn tol(k: usize) -> (f32, f32) {
    (2e-6 * (k.max(1) as f32).sqrt(), 1e-4)
}

/// A case of the forward (`act_grad`: the fused activation-gradient store) on `g`.
pub fn forward_case(g: &ConvGeom, flags: u32, act: Activation, seed: u64) -> Case {
    let out = g.n * g.out_len();
    let extra = if flags & FLAG_ACT_GRAD != 0 {
        outputs_of(act, out, seed + 2)
    } else {
        uniform(seed + 2, g.co, -1.0, 1.0)
    };
    let (abs, rel) = tol(g.taps());
    Case::new(
        format!("{} flags={flags} {}", g.describe(), act.describe()),
        ConvParams::new(g, flags, act),
    )
    .f32(uniform(seed, g.n * g.in_len(), -1.0, 1.0))
    .f32(uniform(seed + 1, g.weight_len(), -1.0, 1.0))
    .f32(extra)
    .f32(uniform(seed + 3, out, -1.0, 1.0))
    .tol(abs, rel)
}

/// A case of the input gradient on `g`.
pub fn input_grad_case(g: &ConvGeom, flags: u32, act: Activation, seed: u64) -> Case {
    let inp = g.n * g.in_len();
    let extra = if flags & FLAG_ACT_GRAD != 0 {
        outputs_of(act, inp, seed + 2)
    } else {
        uniform(seed + 2, g.ci, -1.0, 1.0)
    };
    let (abs, rel) = tol(g.co * g.kh * g.kw);
    Case::new(
        format!("{} flags={flags} {}", g.describe(), act.describe()),
        ConvInputGradParams::new(g, flags, act),
    )
    .f32(uniform(seed, g.n * g.out_len(), -1.0, 1.0))
    .f32(uniform(seed + 1, g.weight_len(), -1.0, 1.0))
    .f32(extra)
    .f32(uniform(seed + 3, inp, -1.0, 1.0))
    .tol(abs, rel)
}

/// A case of the weight gradient on `g`, split `splits` ways.
pub fn weight_grad_case(g: &ConvGeom, accumulate: bool, splits: usize, seed: u64) -> Case {
    let (abs, rel) = tol(g.n * g.ohw());
    Case::new(
        format!("{} acc={} splits={splits}", g.describe(), accumulate as u32),
        ConvWeightsParams::new(g, accumulate, splits),
    )
    .f32(uniform(seed, g.n * g.in_len(), -1.0, 1.0))
    .f32(uniform(seed + 1, g.n * g.out_len(), -1.0, 1.0))
    .f32(uniform(seed + 2, splits.max(1) * g.weight_len(), -1.0, 1.0))
    .tol(abs, rel)
}

/// `n` outputs of `act` (what an activation-gradient store reads as y).
fn outputs_of(act: Activation, n: usize, seed: u64) -> Vec<f32> {
    uniform(seed, n, -1.0, 1.0)
        .into_iter()
        .map(|v| activation(act, 3.0 * v))
        .collect()
}

pub fn cases(which: Which) -> Vec<Case> {
    let mut out = Vec::new();
    for (i, g) in SHAPES.iter().enumerate() {
        let seed = 1000 + 10 * i as u64;
        let act = ACTS[i % ACTS.len()];
        match which {
            Which::Forward => {
                out.push(forward_case(g, FLAG_BIAS, act, seed));
                out.push(forward_case(g, 0, Activation::Identity, seed + 4));
                out.push(forward_case(g, FLAG_ACT_GRAD, act, seed + 5));
            }
            Which::InputGrad => {
                out.push(input_grad_case(g, 0, Activation::Identity, seed));
                out.push(input_grad_case(g, FLAG_ACT_GRAD, act, seed + 4));
                out.push(input_grad_case(g, FLAG_BIAS, act, seed + 5));
            }
            Which::WeightGrad => {
                out.push(weight_grad_case(g, false, 1, seed));
                out.push(weight_grad_case(g, true, 1, seed + 4));
                if g.n > 1 {
                    out.push(weight_grad_case(g, false, g.n.min(3), seed + 5));
                }
            }
        }
    }
    if which == Which::WeightGrad {
        // More splits than samples: the last slices sum nothing.
        out.push(weight_grad_case(
            &geom([5, 2, 6, 5], 3, 3, 1, 1),
            false,
            4,
            7,
        ));
    }
    out
}

/// The convolutions of the dcgan and dcgan32 models (../shared/peers/pytorch/bench_gan.py) at
/// batch 64: D's convolutions see 128 rows (the real and the fake batch together), G's
/// transposed convolutions 64, given in the geometry of the convolution they are the adjoint of;
/// and the activation each G layer applies (Tanh on the image).
pub const BENCH_LAYERS: [(&str, ConvGeom, Activation); 10] = [
    (
        "dcgan D conv1",
        geom([128, 1, 28, 28], 64, 4, 2, 1),
        Activation::LeakyRelu(0.2),
    ),
    (
        "dcgan D conv2",
        geom([128, 64, 14, 14], 128, 4, 2, 1),
        Activation::LeakyRelu(0.2),
    ),
    (
        "dcgan G convT1",
        geom([64, 64, 14, 14], 128, 4, 2, 1),
        Activation::Identity,
    ),
    (
        "dcgan G convT2",
        geom([64, 1, 28, 28], 64, 4, 2, 1),
        Activation::Tanh,
    ),
    (
        "dcgan32 D conv1",
        geom([128, 3, 32, 32], 64, 4, 2, 1),
        Activation::LeakyRelu(0.2),
    ),
    (
        "dcgan32 D conv2",
        geom([128, 64, 16, 16], 128, 4, 2, 1),
        Activation::LeakyRelu(0.2),
    ),
    (
        "dcgan32 D conv3",
        geom([128, 128, 8, 8], 256, 4, 2, 1),
        Activation::LeakyRelu(0.2),
    ),
    (
        "dcgan32 G convT1",
        geom([64, 128, 8, 8], 256, 4, 2, 1),
        Activation::Identity,
    ),
    (
        "dcgan32 G convT2",
        geom([64, 64, 16, 16], 128, 4, 2, 1),
        Activation::Identity,
    ),
    (
        "dcgan32 G convT3",
        geom([64, 3, 32, 32], 64, 4, 2, 1),
        Activation::Tanh,
    ),
];

pub fn bench_rows(which: Which) -> Vec<Case> {
    let mut out = Vec::new();
    for (i, (name, g, act)) in BENCH_LAYERS.iter().enumerate() {
        let transposed = name.contains("convT");
        let seed = 7 + i as u64;
        let mut c = match which {
            // A conv's forward (+ bias, LeakyReLU), or a transposed conv's input gradient
            // (fused with the gradient of the ReLU below it in G).
            Which::Forward if transposed => forward_case(g, FLAG_ACT_GRAD, Activation::Relu, seed),
            Which::Forward => forward_case(g, FLAG_BIAS, *act, seed),
            // A transposed conv's forward (+ bias, its activation), or a conv's input
            // gradient (fused with the LeakyReLU below).
            Which::InputGrad if transposed => input_grad_case(g, FLAG_BIAS, *act, seed),
            Which::InputGrad => input_grad_case(g, FLAG_ACT_GRAD, Activation::LeakyRelu(0.2), seed),
            Which::WeightGrad => weight_grad_case(g, false, weight_grad_splits(g), seed),
        };
        c.label = format!("{name} {}", c.label);
        out.push(c);
    }
    out
}

/// A case of the NCHW bias gradient.
fn bias_case(n: usize, c: usize, hw: usize, accumulate: bool, seed: u64) -> Case {
    let p = BiasNchwParams {
        n: u(n),
        c: u(c),
        hw: u(hw),
        accumulate: accumulate as u32,
        ..Default::default()
    };
    Case::new(format!("n={n} c={c} hw={hw} acc={}", accumulate as u32), p)
        .f32(uniform(seed, n * c * hw, -1.0, 1.0))
        .f32(uniform(seed + 1, c, -1.0, 1.0))
        .tol(1e-5 * ((n * hw) as f32).sqrt(), 1e-5)
}

pub fn bias_cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (i, (n, c, hw)) in [
        (1, 1, 1),
        (3, 5, 49),
        (1, 3, 1024),
        (5, 67, 63),
        (2, 1, 785),
    ]
    .into_iter()
    .enumerate()
    {
        for acc in [false, true] {
            out.push(bias_case(n, c, hw, acc, 31 * i as u64 + acc as u64));
        }
    }
    out
}

pub fn bench_bias() -> Vec<Case> {
    vec![
        bias_case(128, 64, 14 * 14, false, 1),
        bias_case(64, 128, 8 * 8, false, 2),
    ]
}

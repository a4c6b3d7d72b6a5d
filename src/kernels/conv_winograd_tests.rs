//! The Winograd twins against the plain references, called directly (not through
//! `applies`), on ragged shapes: odd output sizes (a ragged last tile), padding 0–2, input
//! rows no output reads (their gradient is zero), one sample and several chunks per thread.
use super::*;
use crate::backend::Activation;
use crate::kernels::case::uniform;
use crate::kernels::conv::{
    conv2d_backward_input_ref, conv2d_backward_weights_ref, conv2d_forward_ref,
};

fn geom(n: usize, ci: usize, (h, w): (usize, usize), co: usize, pad: usize) -> ConvGeom {
    ConvGeom {
        n,
        ci,
        h,
        w,
        co,
        kh: 4,
        kw: 4,
        stride: 2,
        pad,
    }
}

fn shapes() -> Vec<ConvGeom> {
    vec![
        geom(2, 16, (9, 7), 17, 1),
        geom(3, 17, (9, 8), 16, 0),
        geom(1, 16, (6, 5), 18, 2),
        geom(1, 19, (4, 4), 16, 1),
        // 40 samples per thread of 16 tiles (F2) or 4 (F4) each: two chunks of F2's
        // CHUNK_TILES per thread, three of F4's.
        geom(80, 16, (16, 16), 16, 1),
    ]
}

/// Largest |got − want| over (1e-5·√terms + 1e-4·|want|), which must stay below 1.
fn worst(got: &[f32], want: &[f32], terms: usize) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / (1e-5 * (terms as f32).sqrt() + 1e-4 * w.abs()))
        .fold(0.0, f32::max)
}

const BOTH: [Which; 2] = [Which::F2, Which::F4];

#[test]
fn forward_matches_the_reference_in_both_schemes() {
    for (i, (g, which)) in shapes()
        .into_iter()
        .flat_map(|g| BOTH.map(|w| (g, w)))
        .enumerate()
    {
        let seed = 10 * i as u64;
        let x = uniform(seed, g.n * g.in_len(), -1.0, 1.0);
        let w = uniform(seed + 1, g.weight_len(), -1.0, 1.0);
        let bias = uniform(seed + 2, g.co, -1.0, 1.0);
        let store = StoreKind::Act {
            bias: true,
            act: Activation::LeakyRelu(0.2),
        };
        let mut got = vec![f32::NAN; g.n * g.out_len()];
        let mut want = got.clone();
        in_scheme!(which, forward_with(&g, store, &mut got, &x, &w, &bias));
        conv2d_forward_ref(&g, store, &mut want, &x, &w, &bias);
        let e = worst(&got, &want, g.taps());
        assert!(
            e < 1.0,
            "{} {which:?}: error {e} of the tolerance",
            g.describe()
        );
    }
}

#[test]
fn input_gradient_matches_the_reference_in_both_schemes() {
    for (i, (g, which)) in shapes()
        .into_iter()
        .flat_map(|g| BOTH.map(|w| (g, w)))
        .enumerate()
    {
        let seed = 10 * i as u64;
        let dy = uniform(seed, g.n * g.out_len(), -1.0, 1.0);
        let w = uniform(seed + 1, g.weight_len(), -1.0, 1.0);
        let y = uniform(seed + 2, g.n * g.in_len(), -1.0, 1.0);
        let store = StoreKind::ActGrad(Activation::Tanh);
        let mut got = vec![f32::NAN; g.n * g.in_len()];
        let mut want = got.clone();
        in_scheme!(which, backward_input_with(&g, store, &mut got, &dy, &w, &y));
        conv2d_backward_input_ref(&g, store, &mut want, &dy, &w, &y);
        let e = worst(&got, &want, g.co * 16);
        assert!(
            e < 1.0,
            "{} {which:?}: error {e} of the tolerance",
            g.describe()
        );
    }
}

#[test]
fn weight_gradient_matches_the_reference_whole_split_and_accumulated() {
    for (i, g) in shapes().into_iter().enumerate() {
        let seed = 10 * i as u64;
        let x = uniform(seed, g.n * g.in_len(), -1.0, 1.0);
        let dy = uniform(seed + 1, g.n * g.out_len(), -1.0, 1.0);
        for (splits, accumulate) in [(1, false), (1, true), (g.n.min(3), false)] {
            let start = uniform(seed + 2, splits * g.weight_len(), -1.0, 1.0);
            let (mut got, mut want) = (start.clone(), start);
            super::super::conv_cpu::conv2d_backward_weights_cpu(
                &g, accumulate, splits, &mut got, &x, &dy,
            );
            conv2d_backward_weights_ref(&g, accumulate, splits, &mut want, &x, &dy);
            let e = worst(&got, &want, g.n * g.ohw());
            let what = format!("{} splits={splits} acc={accumulate}", g.describe());
            assert!(e < 1.0, "{what}: error {e} of the tolerance");
        }
        // The range sum itself in both schemes, so the test cannot pass through the im2col
        // path.
        let mut want = vec![0.0; g.weight_len()];
        conv2d_backward_weights_ref(&g, false, 1, &mut want, &x, &dy);
        for which in BOTH {
            let mut part = vec![f32::NAN; g.weight_len()];
            in_scheme!(
                which,
                weight_grad_with(&g, 0..g.n, &mut part, &x, &dy, true)
            );
            let e = worst(&part, &want, g.n * g.ohw());
            assert!(e < 1.0, "{} {which:?}: range sum error {e}", g.describe());
        }
    }
}

/// The three products of every shape and scheme at each vector level this CPU has
/// (`crate::cpu::simd`) are bit for bit those of the baseline build.
#[test]
fn every_simd_level_gives_the_same_bits() {
    use crate::cpu::simd::{Level, detected, with_level};
    let plain = StoreKind::Act {
        bias: false,
        act: Activation::Identity,
    };
    let run = |g: &ConvGeom, which: Which, seed: u64| {
        let x = uniform(seed, g.n * g.in_len(), -1.0, 1.0);
        let w = uniform(seed + 1, g.weight_len(), -1.0, 1.0);
        let dy = uniform(seed + 2, g.n * g.out_len(), -1.0, 1.0);
        let mut y = vec![f32::NAN; g.n * g.out_len()];
        let mut dx = vec![f32::NAN; g.n * g.in_len()];
        let mut dw = vec![f32::NAN; g.weight_len()];
        in_scheme!(which, forward_with(g, plain, &mut y, &x, &w, &[]));
        in_scheme!(which, backward_input_with(g, plain, &mut dx, &dy, &w, &[]));
        in_scheme!(which, weight_grad_with(g, 0..g.n, &mut dw, &x, &dy, true));
        [y, dx, dw].map(|v| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
    };
    let levels = [Level::Avx2, Level::Avx512]
        .into_iter()
        .filter(|&l| l <= detected());
    let levels: Vec<Level> = levels.collect();
    for (i, g) in shapes().into_iter().enumerate() {
        for which in BOTH {
            let seed = 7 * i as u64;
            let base = with_level(Level::Baseline, || run(&g, which, seed)).unwrap();
            for &l in &levels {
                let got = with_level(l, || run(&g, which, seed)).unwrap();
                for (what, (a, b)) in ["forward", "input grad", "weight grad"]
                    .iter()
                    .zip(base.iter().zip(&got))
                {
                    assert!(a == b, "{} {which:?} {what}: {l:?} differs", g.describe());
                }
            }
        }
    }
}

#[test]
fn chosen_for_stride_two_four_by_four_with_enough_channels_per_setting() {
    let even = geom(2, 16, (16, 16), 16, 1);
    // 7×7 outputs: 8×8 computed, 31% wasted.
    let odd = geom(2, 16, (14, 14), 16, 1);
    // 5×5 outputs: 6×6 computed in 2×2 tiles (44% more), 8×8 in 4×4 ones (2.6×).
    let tiny = geom(2, 16, (10, 10), 16, 1);
    let picks = |setting: &str, wg: bool| [even, odd, tiny].map(|g| chosen(setting, &g, wg));
    assert_eq!(picks("", false), [true, true, false]);
    assert_eq!(picks("auto", false), [true, true, false]);
    assert_eq!(picks("winograd", false), [true, true, true]);
    assert_eq!(picks("im2col", false), [false, false, false]);
    // The weight gradient: F(2×2) only, unless forced.
    assert_eq!(picks("auto", true), [true, false, false]);
    assert_eq!(picks("winograd", true), [true, true, true]);
    assert_eq!(picks("im2col", true), [false, false, false]);
    assert_eq!(
        [even, odd, tiny].map(|g| scheme_for(&g)),
        [Which::F2, Which::F4, Which::F4]
    );
    let mut stride1 = even;
    stride1.stride = 1;
    for g in [
        geom(2, 3, (8, 8), 64, 1),
        geom(2, 64, (8, 8), 1, 1),
        stride1,
    ] {
        assert!(!chosen("winograd", &g, false), "{}", g.describe());
    }
}

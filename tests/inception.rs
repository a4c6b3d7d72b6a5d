//! duel's Inception forward against pytorch-fid's on the same weights and images.
//!
//! The weights follow a rule (a hash of each tensor's name and index) that
//! `tests/fixtures/inception/make_fixture.py` reproduces in Python and loads into pytorch-fid's
//! own `InceptionV3` (FIDInceptionA/C/E, its resize and scaling), which computed the fixture's
//! features for four fixed images. No torch is needed here.

mod common;

use duel::Backend;
use duel::inception::{FEATURES, Inception, InceptionWeights};

const M: u64 = 0xFFFF_FFFF;

fn fnv1a(name: &str) -> u64 {
    name.bytes()
        .fold(0x811C_9DC5, |h, b| ((h ^ b as u64) * 0x0100_0193) & M)
}

/// The fixture script's `unit`: value i of tensor `name` in [0, 1).
fn unit(name: &str, i: u64) -> f64 {
    let mut x = (i * 0x9E37_79B1 + fnv1a(name)) & M;
    x ^= x >> 16;
    x = (x * 0x7FEB_352D) & M;
    x ^= x >> 15;
    x = (x * 0x846C_A68B) & M;
    x ^= x >> 16;
    x as f64 / 4_294_967_296.0
}

/// The fixture script's `synthetic`.
fn synthetic(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    (0..n as u64)
        .map(|i| {
            let u = unit(name, i);
            let v = if name.ends_with("conv.weight") {
                let fan_in: usize = shape[1..].iter().product();
                (2.0 * u - 1.0) * (6.0 / fan_in as f64).sqrt()
            } else if name.ends_with("bn.weight") {
                0.75 + 0.5 * u
            } else if name.ends_with("bn.bias") || name.ends_with("bn.running_mean") {
                0.2 * (2.0 * u - 1.0)
            } else if name.ends_with("bn.running_var") {
                0.5 + u
            } else {
                panic!("the network asked for {name}, which it does not use")
            };
            v as f32
        })
        .collect()
}

/// The script's images: v = ((3x² + 7y + xy + 50c + 90i) mod 256) / 255, NCHW.
fn images(n: usize, c: usize, side: usize) -> Vec<f32> {
    let mut v = Vec::new();
    for i in 0..n {
        for ch in 0..c {
            for y in 0..side {
                for x in 0..side {
                    let k = (3 * x * x + 7 * y + x * y + 50 * ch + 90 * i) % 256;
                    v.push(k as f32 / 255.0);
                }
            }
        }
    }
    v
}

fn features(be: &mut dyn Backend, batch: usize) -> Vec<f32> {
    let w = InceptionWeights::from_tensors(|name, shape| Ok(synthetic(name, shape))).unwrap();
    let mut net = Inception::new(be, &w, batch).unwrap();
    let mut f = net.features(be, &images(2, 1, 28), (1, 28, 28)).unwrap();
    f.extend(net.features(be, &images(2, 3, 64), (3, 64, 64)).unwrap());
    f
}

fn check(what: &str, got: &[f32]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inception/features.npy");
    let (shape, want) = duel::output::npy::read_npy_f32(&path).unwrap();
    assert_eq!(shape, [4, FEATURES]);
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(&want)
        .fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    println!(
        "{what}: max |duel − pytorch-fid| = {worst:.3e}, {:.3e} of the largest feature",
        worst / scale
    );
    common::assert_close(what, got, &want, 1e-4 * scale, 1e-4);
}

#[test]
fn cpu_features_equal_pytorch_fids() {
    // Batch 1: every image its own forward, so batching is exercised by the GPU test.
    check("CPU path", &features(&mut common::cpu(), 1));
}

#[test]
fn gpu_features_equal_pytorch_fids() {
    check("GPU path", &features(&mut common::gpu(), 8));
}

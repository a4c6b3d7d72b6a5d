//! duel's Inception forward against pytorch-fid's on the same weights and images.
//!
//! The weights follow a rule (a hash of each tensor's name and index) that
//! `tests/fixtures/inception/make_fixture.py` reproduces in Python and loads into pytorch-fid's
//! own `InceptionV3` (FIDInceptionA/C/E, its resize and scaling), which computed the fixture's
//! features for four fixed images. No torch is needed here.

mod common;

use common::inception::synthetic;
use duel::Backend;
use duel::inception::{FEATURES, Inception, InceptionWeights};

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

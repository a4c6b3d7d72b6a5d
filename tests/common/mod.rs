//! Shared test helpers: the GPU backend (failing loudly without an adapter), seeded data, and a
//! relative+absolute comparison that reports the first mismatch.
#![allow(dead_code)]

pub mod cli;
pub mod inception;

use duel::rng::{self, RngKey};
use duel::{CpuBackend, GpuBackend};

/// The GPU backend on the adapter `DUEL_ADAPTER` names, or the best one. A missing adapter
/// fails the test with the fix; it never skips.
pub fn gpu() -> GpuBackend {
    match GpuBackend::new(duel::gpu::context::selector_from_env(None).as_deref()) {
        Ok(be) => be,
        Err(e) => panic!(
            "GPU tests need a wgpu adapter and found none usable: {e:#}\n\
             On Linux without a GPU install Mesa's lavapipe: \
             apt-get install -y mesa-vulkan-drivers libvulkan1"
        ),
    }
}

pub fn cpu() -> CpuBackend {
    CpuBackend::new()
}

/// `n` values uniform in [lo, hi), reproducible from `seed`.
pub fn data(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let key = RngKey::new(seed, rng::stream::TEST, 0);
    (0..n)
        .map(|i| rng::uniform(key, i as u64, lo, hi))
        .collect()
}

/// Asserts |got − want| ≤ atol + rtol·|want| everywhere, naming the first index that is not.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut bad = 0;
    let mut first = None;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g - w).abs() <= atol + rtol * w.abs() || (g.is_nan() && w.is_nan());
        if !ok {
            bad += 1;
            first.get_or_insert((i, *g, *w));
        }
    }
    if let Some((i, g, w)) = first {
        panic!(
            "{what}: {bad} of {} values differ; first at index {i}: got {g}, want {w} \
             (atol {atol}, rtol {rtol})",
            got.len()
        );
    }
}

/// Ragged sizes the tests mix: tile-sized, off-by-one around tiles, and the paper's widths.
pub const RAGGED: [usize; 8] = [1, 3, 63, 65, 100, 127, 784, 1200];

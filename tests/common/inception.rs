//! The deterministic Inception weights of `tests/fixtures/inception/make_fixture.py`, for the
//! tests that run duel's Inception without pytorch-fid's real file.

use std::path::Path;

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
pub fn synthetic(name: &str, shape: &[usize]) -> Vec<f32> {
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

/// Writes the rule's weights as the safetensors file `duel eval --inception` reads (the
/// BasicConv2d tensors under pytorch-fid's names; about 87 MB).
pub fn write_weights(path: &Path) {
    let mut tensors = Vec::new();
    for spec in duel::inception::arch::all_convs() {
        let w = format!("{}.conv.weight", spec.name);
        tensors.push((w.clone(), spec.weight_shape().to_vec()));
        for part in ["weight", "bias", "running_mean", "running_var"] {
            tensors.push((format!("{}.bn.{part}", spec.name), vec![spec.cout]));
        }
    }
    let data: Vec<Vec<f32>> = tensors.iter().map(|(n, s)| synthetic(n, s)).collect();
    let views = tensors.iter().zip(&data).map(|((n, s), v)| {
        let view = safetensors::tensor::TensorView::new(
            safetensors::Dtype::F32,
            s.clone(),
            bytemuck::cast_slice(v),
        )
        .unwrap();
        (n.clone(), view)
    });
    safetensors::serialize_to_file(views, None, path).unwrap();
}

//! The prior p_z the generator's input is drawn from (`--noise`). A leaf: the configuration
//! names it, the training step draws from it.

use crate::backend::{Backend, Tensor};
use crate::kernels::rng::{rng_normal, rng_uniform};
use crate::rng::RngKey;
use serde::{Deserialize, Serialize};

/// The prior p_z (each variant's doc is its `--help` line). UniformSqrt3 is unit variance, what
/// the paper's code (the `adversarial` repository's `Generator`) draws for `noise: uniform`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Noise {
    /// U(−1, 1) per dimension.
    Uniform,
    /// N(0, 1) per dimension.
    Normal,
    /// U(−√3, √3) per dimension (unit variance): the paper code's `uniform`.
    #[serde(rename = "uniform-sqrt3")]
    #[value(name = "uniform-sqrt3")]
    UniformUnitVariance,
}

impl Noise {
    /// Fills `z` with `n` draws from the counter-based stream `key`.
    pub fn draw(self, be: &mut dyn Backend, z: Tensor, n: usize, key: RngKey) {
        match self {
            Noise::Uniform => rng_uniform(be, z, n, -1.0, 1.0, key),
            Noise::Normal => rng_normal(be, z, n, key),
            Noise::UniformUnitVariance => {
                let b = 3f32.sqrt();
                rng_uniform(be, z, n, -b, b, key)
            }
        }
    }
}

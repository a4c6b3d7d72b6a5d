//! Progressive growing (Karras et al. 2018, "ProGAN"): a generator and a critic that start at
//! 4×4 and double their resolution, each new block faded in over a set number of images.
//!
//! Each network is one module holding every block it will ever have, built from ordinary layers
//! as sequences (`Seq`): at level L (resolution r = 4·2^L) only the blocks up to L run. Its
//! input and output keep the target's shape for the whole run, as in ProGAN's own "linear"
//! implementation: G's image at r is nearest-upsampled to the target side, and D average-pools
//! its target-sized input down to r. So buffers, checkpoints and the training step never change
//! shape as the networks grow.
//!
//! G: z → PixelNorm → block 0 (Linear to (f₀, 4, 4), LeakyReLU, PixelNorm, Conv3×3, LeakyReLU,
//!    PixelNorm) → block l (Upsample, two Conv3×3 + LeakyReLU + PixelNorm) … → toRGB_L (1×1 conv).
//!    While fading in level L: α·toRGB_L(h_L) + (1 − α)·upsample(toRGB_{L−1}(h_{L−1})).
//! D: fromRGB_L (1×1 conv + LeakyReLU) → block L (two Conv3×3 + LeakyReLU, AvgPool) … → block 0
//!    (MinibatchStd, Conv3×3, Conv4×4 valid, LeakyReLU, Linear to 1). While fading in level L:
//!    α·block_L(fromRGB_L(x_L)) + (1 − α)·fromRGB_{L−1}(pool(x_L)).
//! Every weight layer has an equalized learning rate; features are `width` up to 16×16 and
//! halve with each doubling above it.
//!
//! The critic has an exact tangent pass for a gradient penalty: every layer is linear or
//! piecewise linear except the minibatch standard deviation, whose curvature adds a term u at its
//! input (`MinibatchStd::tangent_with_term`); after the tangent sweep, u is back-propagated
//! through the layers below it into a scratch gradient that is added to the weight gradients.

use super::minibatch_std::MinibatchStd;
use super::sequence::{Outer, Seq, number};
use super::{Bwd, Fwd, Layer, Module, NetRng, ParamSpec, Shape, Tangent};
use crate::backend::{Activation, Backend, Tensor};
use crate::kernels::avgpool::{avgpool2x_backward, avgpool2x_forward};
use crate::kernels::fade::{axpby, fade_backward, fade_forward};
use crate::kernels::upsample::{upsample2x_backward, upsample2x_forward};
use anyhow::{Result, bail};

mod discriminator;
mod generator;
pub use discriminator::ProDiscriminator;
pub use generator::ProGenerator;

/// A progressive pair's shape and schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProSpec {
    /// The target side (a power of two, at least 4).
    pub side: usize,
    /// Image channels.
    pub channels: usize,
    /// Features of the blocks up to 16×16; they halve with each doubling above.
    pub width: usize,
    /// Images per fade-in and per stabilisation phase.
    pub phase_images: u64,
    /// Rows per minibatch-standard-deviation group.
    pub group: usize,
}

impl ProSpec {
    pub fn validate(&self) -> Result<()> {
        if self.side < 4 || !self.side.is_power_of_two() {
            bail!(
                "progressive growing doubles from 4×4, so the side must be a power of two of at \
                 least 4, not {}",
                self.side
            );
        }
        if self.channels == 0 || self.width == 0 || self.group == 0 {
            bail!("progressive growing needs channels, width and group of at least 1");
        }
        if self.phase_images == 0 {
            bail!("--phase-images must be at least 1");
        }
        Ok(())
    }

    /// The last level (the target side is 4·2^top).
    pub fn top(&self) -> usize {
        (self.side / 4).trailing_zeros() as usize
    }

    pub fn res(level: usize) -> usize {
        4 << level
    }

    /// Feature channels of level `l`'s blocks.
    pub fn features(&self, l: usize) -> usize {
        (self.width >> l.saturating_sub(2)).max(1)
    }

    /// The phase `images` training images are in: 0 at 4×4, then a fade-in and a stabilisation
    /// phase per doubling; the last level's stabilisation lasts.
    pub fn phase(&self, images: u64) -> u64 {
        (images / self.phase_images).min(self.last_phase())
    }

    /// The last phase: the top level's stabilisation, which lasts.
    fn last_phase(&self) -> u64 {
        2 * self.top() as u64
    }

    /// Images until the top level has faded in and been stabilised once.
    pub fn growth_images(&self) -> u64 {
        (self.last_phase() + 1).saturating_mul(self.phase_images)
    }

    /// The first iteration of batch `batch` in the phase of iteration `iteration` (the
    /// smallest i with i·batch in that phase).
    pub fn phase_start(&self, iteration: u64, batch: u64) -> u64 {
        (self.phase(iteration * batch) * self.phase_images).div_ceil(batch)
    }

    /// (level, α) after `images` training images: 4×4 for one phase, then for each doubling a
    /// fade-in with α rising linearly from 0 to 1 and a stabilisation phase (α = 1), each of
    /// `phase_images`; the last level stays.
    pub fn growth(&self, images: u64) -> (usize, f32) {
        let phase = images / self.phase_images;
        if phase == 0 {
            return (0, 1.0);
        }
        let level = phase.div_ceil(2) as usize;
        if level > self.top() {
            return (self.top(), 1.0);
        }
        if phase % 2 == 1 {
            let into = images % self.phase_images;
            (level, (into as f64 / self.phase_images as f64) as f32)
        } else {
            (level, 1.0)
        }
    }
}

const LRELU: Layer = Layer::Act(Activation::LeakyRelu(0.2));
const SQRT2: f32 = std::f32::consts::SQRT_2;

fn conv(out: usize, k: usize, pad: usize) -> [Layer; 2] {
    [
        Layer::EqualizedLr(SQRT2),
        Layer::Conv2d {
            out,
            k,
            stride: 1,
            pad,
        },
    ]
}

/// A block of a progressive network: a sequence whose layers keep no state (the networks
/// report none).
fn block(name: String, input: Shape, layers: Vec<Layer>) -> Result<Seq> {
    let s = Seq::new(name, input, layers)?;
    if s.tensor_counts().1 > 0 {
        bail!("{}: a progressive network's layers keep no state", s.name);
    }
    Ok(s)
}

fn check_level(spec: &ProSpec, level: usize, alpha: f32) {
    assert!(
        level <= spec.top() && (0.0..=1.0).contains(&alpha),
        "growth level {level} α {alpha} outside 0..={}",
        spec.top()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_fades_each_level_in_then_holds_it() {
        let s = ProSpec {
            side: 16,
            channels: 3,
            width: 8,
            phase_images: 100,
            group: 4,
        };
        assert_eq!(s.top(), 2);
        assert_eq!(s.growth(0), (0, 1.0));
        assert_eq!(s.growth(99), (0, 1.0));
        assert_eq!(s.growth(100), (1, 0.0));
        assert_eq!(s.growth(150), (1, 0.5));
        assert_eq!(s.growth(200), (1, 1.0));
        assert_eq!(s.growth(325), (2, 0.25));
        assert_eq!(s.growth(400), (2, 1.0));
        assert_eq!(s.growth(10_000), (2, 1.0));
        assert_eq!((s.features(0), s.features(2), s.features(3)), (8, 8, 4));
        assert_eq!(s.growth_images(), 500);
        assert_eq!(s.phase(s.growth_images() - 1), 4);
    }
}

//! The convolutional models: DCGAN (Radford et al. 2016) for 28×28, 32×32 and 64×64 images, as
//! the paper's rules and the PyTorch peer (`../shared/peers/pytorch`) lay them out; the first
//! SAGAN-like model (`sagan32_dcgan`). The residual ones (SNGAN's, SAGAN's) are in `crate::resnet32`.
//!
//! G: z → Linear to (8·w, 4, 4) — or (2·w, 7, 7) at 28×28 — → batch norm → ReLU → reshape, then
//! one stride-2 transposed convolution (k4, p1) per doubling of the side, each but the last
//! followed by batch norm and ReLU, the last ending in tanh. D mirrors it: one stride-2
//! convolution (k4, p1) per halving with LeakyReLU(0.2), no batch norm (D sees real and fake
//! batches together, and a critic with a gradient penalty must not normalise across the batch),
//! then a Linear to one logit. `w` is the width (`--width`, 64 by default): the channel count of
//! G's last hidden layer and D's first.

use crate::backend::Activation;
use crate::layers::{Layer, NetSpec, Shape};
use anyhow::{Result, bail};

/// G and D for `side`×`side` images of `channels` channels, D judging `pack` images at once
/// (stacked along the channels, PacGAN's way for convolutional D).
pub fn dcgan(
    side: usize,
    channels: usize,
    noise_dim: usize,
    width: usize,
    pack: usize,
) -> Result<(NetSpec, NetSpec)> {
    // (starting side, doublings)
    let (start, doublings) = match side {
        28 => (7, 2),
        32 => (4, 3),
        64 => (4, 4),
        _ => bail!("the DCGAN models make 28×28, 32×32 or 64×64 images, not {side}×{side}"),
    };
    if width == 0 {
        bail!("--width must be at least 1");
    }
    const RELU: Layer = Layer::Act(Activation::Relu);
    const LRELU: Layer = Layer::Act(Activation::LeakyRelu(0.2));
    let up = |out| Layer::ConvTranspose2d {
        out,
        k: 4,
        stride: 2,
        pad: 1,
    };
    let down = |out| Layer::Conv2d {
        out,
        k: 4,
        stride: 2,
        pad: 1,
    };
    // Channels after each of G's blocks, widest first: w·2^(d−1) … w, then the image.
    let hidden: Vec<usize> = (0..doublings)
        .map(|i| width << (doublings - 1 - i))
        .collect();
    let top = hidden[0];
    let mut g = vec![
        Layer::Linear(top * start * start),
        Layer::BatchNorm,
        RELU,
        Layer::Reshape(Shape::image(top, start, start)),
    ];
    for &c in &hidden[1..] {
        g.extend([up(c), Layer::BatchNorm, RELU]);
    }
    g.extend([up(channels), Layer::Act(Activation::Tanh)]);

    let mut d = Vec::new();
    for &c in hidden.iter().rev() {
        d.extend([down(c), LRELU]);
    }
    d.extend([
        Layer::Reshape(Shape::flat(top * start * start)),
        Layer::Linear(1),
    ]);
    Ok((
        NetSpec::flat(noise_dim, g),
        NetSpec {
            input: Shape::image(channels * pack, side, side),
            layers: d,
        },
    ))
}

/// `--preset sagan32-dcgan`, what `sagan32` was before it followed SAGAN's residual networks
/// (`resnet32`): DCGAN-like G and D with a self-attention layer
/// at 16×16 in each, as the SAGAN PyTorch code places its `Self_Attn` (after the block that
/// reaches 16×16 in G, after D's first block). G doubles its side by nearest-neighbour
/// upsampling and a 3×3 convolution (as BigGAN's blocks do) rather than a transposed
/// convolution, so spectral norm (`--sn both`, the preset's default) covers every layer of G:
/// z → Linear to (4w, 4, 4) → BN → ReLU → [up, conv3 → 2w, BN, ReLU] → [up, conv3 → w, BN,
/// ReLU] → attention → up, conv3 → C, tanh. D: conv4 s2 → w, LReLU(0.1) → attention → conv4 s2
/// → 2w → conv4 s2 → 4w (each LReLU 0.1, as SAGAN's D) → Linear to one score.
pub fn sagan32_dcgan(
    channels: usize,
    noise_dim: usize,
    width: usize,
    pack: usize,
) -> Result<(NetSpec, NetSpec)> {
    if width == 0 {
        bail!("--width must be at least 1");
    }
    const RELU: Layer = Layer::Act(Activation::Relu);
    const LRELU: Layer = Layer::Act(Activation::LeakyRelu(0.1));
    let conv3 = |out| Layer::Conv2d {
        out,
        k: 3,
        stride: 1,
        pad: 1,
    };
    let down = |out| Layer::Conv2d {
        out,
        k: 4,
        stride: 2,
        pad: 1,
    };
    let (w, top) = (width, 4 * width);
    let mut g = vec![
        Layer::Linear(top * 16),
        Layer::BatchNorm,
        RELU,
        Layer::Reshape(Shape::image(top, 4, 4)),
    ];
    for c in [2 * w, w] {
        g.extend([Layer::Upsample2x, conv3(c), Layer::BatchNorm, RELU]);
    }
    g.extend([
        Layer::SelfAttention,
        Layer::Upsample2x,
        conv3(channels),
        Layer::Act(Activation::Tanh),
    ]);
    let d = vec![
        down(w),
        LRELU,
        Layer::SelfAttention,
        down(2 * w),
        LRELU,
        down(top),
        LRELU,
        Layer::Reshape(Shape::flat(top * 16)),
        Layer::Linear(1),
    ];
    Ok((
        NetSpec::flat(noise_dim, g),
        NetSpec {
            input: Shape::image(channels * pack, 32, 32),
            layers: d,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_models_at_width_64() {
        // The PyTorch peer's dcgan: Linear 128·7·7, ConvT 128→64→1; D Conv 1→64→128, Linear 6272.
        let (g, d) = dcgan(28, 1, 100, 64, 1).unwrap();
        let (gb, db) = (g.build("g").unwrap(), d.build("d").unwrap());
        assert_eq!(gb.output_shape(), Shape::image(1, 28, 28));
        assert_eq!(db.output(), 1);
        assert_eq!(g.layers[0], Layer::Linear(128 * 7 * 7));
        assert!(db.describe().contains("6272"), "{}", db.describe());
        // dcgan32: Linear 256·4·4, ConvT 256→128→64→3; D Conv 3→64→128→256, Linear 4096.
        let (g, d) = dcgan(32, 3, 100, 64, 1).unwrap();
        let (gb, db) = (g.build("g").unwrap(), d.build("d").unwrap());
        assert_eq!(gb.output_shape(), Shape::image(3, 32, 32));
        assert_eq!(g.layers[0], Layer::Linear(256 * 16));
        assert!(db.describe().contains("4096"), "{}", db.describe());
        let (g, d) = dcgan(64, 3, 100, 32, 2).unwrap();
        assert_eq!(
            g.build("g").unwrap().output_shape(),
            Shape::image(3, 64, 64)
        );
        assert_eq!(d.input, Shape::image(6, 64, 64));
        d.validate("d").unwrap();
        assert!(dcgan(48, 3, 100, 64, 1).is_err());
    }

    #[test]
    fn sagan32_dcgan_attends_at_16x16_in_both_networks() {
        let (g, d) = sagan32_dcgan(3, 128, 32, 1).unwrap();
        let (g, d) = (g.build("g").unwrap(), d.build("d").unwrap());
        assert_eq!(g.output_shape(), Shape::image(3, 32, 32));
        assert_eq!(d.output(), 1);
        let (g, d) = (g.describe(), d.describe());
        assert!(g.contains("SelfAttention(32×16×16"), "{g}");
        assert!(d.contains("SelfAttention(32×16×16"), "{d}");
        assert!(!g.contains("ConvTranspose2d"), "{g}");
    }
}

//! SNGAN's and SAGAN's ResNets for 32×32 images (Miyato et al. 2018, Appendix B.4, Table 4;
//! the chainer reference `pfnet-research/sngan_projection`, `gen_models/resnet_32.py` and
//! `dis_models/snresnet_32.py`; StudioGAN's `models/resnet.py` with `configs/CIFAR10/SAGAN.yaml`
//! for SAGAN's attention). `docs/resnet.md` lists every setting and its source.
//!
//! G: z → Linear to (g, 4, 4) → three up-blocks of g → BN → ReLU → 3×3 conv to C → tanh.
//!   up-block: BN → ReLU → upsample → 3×3 conv → BN → ReLU → 3×3 conv,
//!             shortcut upsample → 1×1 conv.
//! D: optimized block → down-block → two identity blocks (all d channels) → ReLU → sum over
//!   positions → Linear to one score.
//!   optimized: 3×3 conv → ReLU → 3×3 conv → avgpool, shortcut avgpool → 1×1 conv.
//!   down:      ReLU → 3×3 conv → ReLU → 3×3 conv → avgpool, shortcut 1×1 conv → avgpool.
//!   identity:  ReLU → 3×3 conv → ReLU → 3×3 conv, shortcut the identity.
//!
//! With `width` w (64 by default), g = 4w = 256 and d = 2w = 128, the papers' widths. SAGAN's
//! variant adds self-attention after G's second block and D's first (both at 16×16).

use crate::backend::Activation::{Relu, Tanh};
use crate::layers::{Layer, NetSpec, Shape};
use anyhow::{Result, bail};

fn conv(out: usize, k: usize) -> Layer {
    Layer::Conv2d {
        out,
        k,
        stride: 1,
        pad: k / 2,
    }
}

/// G's up-block to `c` channels at twice the side.
pub fn up_block(c: usize) -> Layer {
    Layer::Residual {
        main: vec![
            Layer::BatchNorm,
            Layer::Act(Relu),
            Layer::Upsample2x,
            conv(c, 3),
            Layer::BatchNorm,
            Layer::Act(Relu),
            conv(c, 3),
        ],
        skip: vec![Layer::Upsample2x, conv(c, 1)],
    }
}

/// D's first block ("optimized": no ReLU before its first convolution, as the image is its
/// input; the shortcut pools before its 1×1 conv).
pub fn optimized_block(c: usize) -> Layer {
    Layer::Residual {
        main: vec![conv(c, 3), Layer::Act(Relu), conv(c, 3), Layer::AvgPool2x],
        skip: vec![Layer::AvgPool2x, conv(c, 1)],
    }
}

/// A critic block of `c` channels: halving the side with a 1×1 conv + pool shortcut when
/// `down`, else keeping it with the identity as its shortcut (its input has `c` channels).
pub fn d_block(c: usize, down: bool) -> Layer {
    let mut main = vec![Layer::Act(Relu), conv(c, 3), Layer::Act(Relu), conv(c, 3)];
    if !down {
        return Layer::Residual { main, skip: vec![] };
    }
    main.push(Layer::AvgPool2x);
    Layer::Residual {
        main,
        skip: vec![conv(c, 1), Layer::AvgPool2x],
    }
}

/// G and D of SNGAN's CIFAR-10 ResNet for images of `channels`, D judging `pack` images at
/// once; with `attention`, SAGAN's: self-attention after G's second block and D's first.
pub fn resnet32(
    channels: usize,
    noise_dim: usize,
    width: usize,
    pack: usize,
    attention: bool,
) -> Result<(NetSpec, NetSpec)> {
    if width == 0 {
        bail!("--width must be at least 1");
    }
    let (gc, dc) = (4 * width, 2 * width);
    let mut g = vec![
        Layer::Linear(gc * 16),
        Layer::Reshape(Shape::image(gc, 4, 4)),
    ];
    for block in 1..=3 {
        g.push(up_block(gc));
        if attention && block == 2 {
            g.push(Layer::SelfAttention);
        }
    }
    g.extend([
        Layer::BatchNorm,
        Layer::Act(Relu),
        conv(channels, 3),
        Layer::Act(Tanh),
    ]);
    let mut d = vec![optimized_block(dc)];
    if attention {
        d.push(Layer::SelfAttention);
    }
    d.extend([
        d_block(dc, true),
        d_block(dc, false),
        d_block(dc, false),
        Layer::Act(Relu),
        Layer::SumPool,
        Layer::Linear(1),
    ]);
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
    fn the_papers_widths_and_shapes_at_width_64() {
        let (g, d) = resnet32(3, 128, 64, 1, false).unwrap();
        let (g, d) = (g.build("g").unwrap(), d.build("d").unwrap());
        assert_eq!(g.output_shape(), Shape::image(3, 32, 32));
        assert_eq!(d.output(), 1);
        let (gd, dd) = (g.describe(), d.describe());
        assert!(gd.starts_with("128 → Linear(128 → 4096)"), "{gd}");
        assert!(dd.contains("SumPool(128×8×8 → 128)"), "{dd}");
        assert!(!gd.contains("SelfAttention") && !dd.contains("SelfAttention"));
        // Parameters counted by hand from the layers' shapes: G's Linear 528,384; each block
        // 2 BN (1,024) + two 3×3 convs (590,080 each) + a 1×1 conv (65,792); the last BN 512
        // and conv 6,915. D: block 1 3,584 + 147,584 + 512; block 2 2·147,584 + 16,512;
        // blocks 3–4 2·147,584 each; the Linear 129.
        assert_eq!(
            g.param_count(),
            528_384 + 3 * (1_024 + 2 * 590_080 + 65_792) + 512 + 6_915
        );
        assert_eq!(
            d.param_count(),
            (3_584 + 147_584 + 512) + (2 * 147_584 + 16_512) + 4 * 147_584 + 129
        );
    }

    #[test]
    fn sagan_attends_at_16x16_after_gs_second_and_ds_first_block() {
        let (g, d) = resnet32(3, 128, 8, 2, true).unwrap();
        assert_eq!(d.input, Shape::image(6, 32, 32));
        assert_eq!(g.layers[4], Layer::SelfAttention);
        assert_eq!(d.layers[1], Layer::SelfAttention);
        let (g, d) = (g.build("g").unwrap(), d.build("d").unwrap());
        let (gd, dd) = (g.describe(), d.describe());
        assert!(gd.contains("SelfAttention(32×16×16"), "{gd}");
        assert!(dd.contains("SelfAttention(16×16×16"), "{dd}");
        assert!(resnet32(3, 128, 0, 1, true).is_err());
    }
}

//! Differentiable augmentation of D's input (Zhao et al. 2020, DiffAugment): while training,
//! every image D sees — real or generated, in D's updates and G's — gets its own random colour
//! change, translation (up to 1/8 of the side, zero fill) and cut-out square (half the side),
//! so D cannot memorise a small dataset; the identity at evaluation. It is the first layer of D
//! and takes no index in PyTorch's numbering (DiffAugment is a function applied before D).
//!
//! Forward:  y = T(x), T affine per image      Backward: dx = Tᵀ dy      Tangent: T without its
//! brightness offset. The draws are redrawn from the forward's key.

use super::{Bwd, Fwd, Module, NetRng, Shape, Tangent};
use crate::backend::Backend;
use crate::kernels::augment::{Augmentation, Map, Ops, augment_backward, augment_forward};
use crate::rng::RngKey;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// Which of DiffAugment's transformations D's inputs get (`--augment color,translation,cutout`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Policy {
    pub color: bool,
    pub translation: bool,
    pub cutout: bool,
}

impl Policy {
    pub const NONE: Policy = Policy {
        color: false,
        translation: false,
        cutout: false,
    };
    /// DiffAugment's policy for small datasets.
    pub const ALL: Policy = Policy {
        color: true,
        translation: true,
        cutout: true,
    };

    pub fn is_none(&self) -> bool {
        *self == Policy::NONE
    }

    /// What it does to (h, w) images: shifts of up to ⌊side/8 + ½⌋ and a cut-out of
    /// ⌊side/2 + ½⌋, DiffAugment's ratios.
    pub fn ops(&self, h: usize, w: usize) -> Ops {
        let frac = |side: usize, r: f64, on: bool| {
            if on {
                (side as f64 * r + 0.5) as usize
            } else {
                0
            }
        };
        Ops {
            colour: self.color,
            shift_x: frac(w, 0.125, self.translation),
            shift_y: frac(h, 0.125, self.translation),
            cut_x: frac(w, 0.5, self.cutout),
            cut_y: frac(h, 0.5, self.cutout),
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = [
            (self.color, "color"),
            (self.translation, "translation"),
            (self.cutout, "cutout"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect();
        match names.is_empty() {
            true => f.write_str("none"),
            false => f.write_str(&names.join(",")),
        }
    }
}

impl std::str::FromStr for Policy {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let mut p = Policy::NONE;
        if s.trim() == "none" {
            return Ok(p);
        }
        for part in s.split(',').map(str::trim) {
            match part {
                "color" | "colour" => p.color = true,
                "translation" => p.translation = true,
                "cutout" => p.cutout = true,
                _ => bail!(
                    "unknown augmentation {part:?}; --augment takes none or a comma-separated list \
                     of color, translation, cutout (e.g. color,translation,cutout)"
                ),
            }
        }
        Ok(p)
    }
}

impl From<Policy> for String {
    fn from(p: Policy) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for Policy {
    type Error = anyhow::Error;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

pub struct Augment {
    /// D's input row: one image, or a pack of them.
    input: Shape,
    image: Shape,
    policy: Policy,
    /// The last forward's key and what it did (nothing at evaluation).
    last: Augmentation,
}

impl Augment {
    pub fn new(input: Shape, image: Shape, policy: Policy) -> Result<Self> {
        if image.is_flat() || image.is_empty() || !input.len().is_multiple_of(image.len()) {
            bail!(
                "augmentation transforms images, but the input {input} is not made of {image} \
                 images"
            );
        }
        Ok(Augment {
            input,
            image,
            policy,
            last: Augmentation {
                ops: Ops::NONE,
                key: RngKey::new(0, 0, 0),
            },
        })
    }

    fn images(&self, rows: usize) -> usize {
        rows * (self.input.len() / self.image.len())
    }

    fn dims(&self) -> (usize, usize, usize) {
        (self.image.c, self.image.h, self.image.w)
    }
}

impl Module for Augment {
    fn describe(&self) -> String {
        format!("DiffAugment({})", self.policy)
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        self.input
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, rng: &mut NetRng) {
        let n = self.images(f.rows);
        self.last = if f.train && !self.policy.is_none() {
            let key = rng.take(2 * n);
            Augmentation {
                ops: self.policy.ops(self.image.h, self.image.w),
                key,
            }
        } else {
            Augmentation {
                ops: Ops::NONE,
                key: self.last.key,
            }
        };
        augment_forward(be, f.y, f.x, n, self.dims(), self.last, Map::Affine);
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        if let Some(dx) = b.dx {
            augment_backward(be, dx, b.dy, self.images(b.rows), self.dims(), self.last);
        }
    }

    fn check_tangent(&self) -> Result<()> {
        Ok(())
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        let n = self.images(t.rows);
        augment_forward(be, t.v_out, t.v_in, n, self.dims(), self.last, Map::Linear);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_print_and_refuse_nonsense() {
        for s in [
            "none",
            "color",
            "translation,cutout",
            "color,translation,cutout",
        ] {
            assert_eq!(s.parse::<Policy>().unwrap().to_string(), s);
        }
        assert_eq!(
            "cutout,colour".parse::<Policy>().unwrap().to_string(),
            "color,cutout"
        );
        let err = "color,flip".parse::<Policy>().unwrap_err().to_string();
        assert!(err.contains("unknown augmentation \"flip\""), "{err}");
    }

    #[test]
    fn training_forwards_transform_with_fresh_draws_and_evaluation_does_not() {
        let image = Shape::image(3, 8, 8);
        let mut be = crate::CpuBackend::new();
        let mut m = Augment::new(image, image, Policy::ALL).unwrap();
        let x: Vec<f32> = (0..2 * image.len())
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let xt = be.upload(&x, "x").unwrap();
        let yt = be.alloc(x.len(), "y").unwrap();
        let mut rng = NetRng {
            seed: 1,
            counter: 0,
        };
        let mut run = |be: &mut crate::CpuBackend, train: bool| {
            let f = Fwd {
                x: xt,
                y: yt,
                rows: 2,
                params: &[],
                state: &[],
                train,
                labels: None,
            };
            m.forward(be, &f, &mut rng);
            be.read(yt).unwrap()
        };
        assert_eq!(run(&mut be, false), x, "evaluation is the identity");
        let a = run(&mut be, true);
        let b = run(&mut be, true);
        assert_ne!(a, x, "training transforms");
        assert_ne!(a, b, "each forward draws afresh");
        // The cut-out square alone zeroes a quarter of each image.
        for img in a.chunks(image.len()) {
            assert!(img.iter().filter(|v| **v == 0.0).count() >= image.len() / 4);
        }
    }

    #[test]
    fn ratios_follow_diffaugment() {
        // int(side·0.125 + 0.5) and int(side·0.5 + 0.5).
        let o = Policy::ALL.ops(32, 28);
        assert_eq!((o.shift_y, o.shift_x, o.cut_y, o.cut_x), (4, 4, 16, 14));
        let o = Policy::ALL.ops(64, 64);
        assert_eq!((o.shift_x, o.cut_x), (8, 32));
        assert_eq!(Policy::NONE.ops(32, 32), Ops::NONE);
    }
}

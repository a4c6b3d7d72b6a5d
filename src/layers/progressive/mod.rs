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
use super::{Built, Bwd, Fwd, Layer, Module, NetRng, NetSpec, ParamSpec, Shape, Tangent};
use crate::backend::{Activation, Backend, Tensor};
use crate::kernels::avgpool::{avgpool2x_backward, avgpool2x_forward};
use crate::kernels::fade::{axpby, fade_backward, fade_forward};
use crate::kernels::upsample::{upsample2x_backward, upsample2x_forward};
use anyhow::{Result, bail};
use std::collections::BTreeSet;
use std::sync::Mutex;

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

/// A `&'static str` for a parameter name built at run time, leaked once per distinct name.
fn intern(s: String) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().expect("the name table is never poisoned");
    if let Some(&n) = names.get(s.as_str()) {
        return n;
    }
    let n: &'static str = Box::leak(s.into_boxed_str());
    names.insert(n);
    n
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

/// A sequence of ordinary layers inside a progressive network: its modules, buffers and the
/// position of its tensors among the network's.
struct Seq {
    name: String,
    modules: Vec<Built>,
    /// Index of its first tensor among the network's, and its tensor count.
    base: usize,
    n_tensors: usize,
    /// Each module's first tensor (relative to `base`) and count.
    slots: Vec<(usize, usize)>,
    outs: Vec<Option<Tensor>>,
    dins: Vec<Option<Tensor>>,
    tan: Option<[Tensor; 2]>,
    x: Option<Tensor>,
    ys: Vec<Tensor>,
    rows: usize,
}

impl Seq {
    fn new(name: String, input: Shape, layers: Vec<Layer>) -> Result<Self> {
        let modules = NetSpec { input, layers }.build(&name)?;
        let mut slots = Vec::new();
        let mut n = 0;
        for b in &modules {
            if !b.module.state().is_empty() {
                bail!("{name}: a progressive network's layers keep no state");
            }
            let c = b.module.params().len();
            slots.push((n, c));
            n += c;
        }
        Ok(Seq {
            name,
            modules,
            base: 0,
            n_tensors: n,
            slots,
            outs: Vec::new(),
            dins: Vec::new(),
            tan: None,
            x: None,
            ys: Vec::new(),
            rows: 0,
        })
    }

    fn params(&self) -> Vec<ParamSpec> {
        let mut out = Vec::new();
        for b in &self.modules {
            for p in b.module.params() {
                out.push(ParamSpec {
                    name: intern(format!("{}.{}.{}", self.name, b.index, p.name)),
                    ..p
                });
            }
        }
        out
    }

    fn flops(&self, rows: usize) -> f64 {
        self.modules.iter().map(|b| b.module.flops(rows)).sum()
    }

    fn alloc(
        &mut self,
        be: &mut dyn Backend,
        max_rows: usize,
        tangent: bool,
        label: &str,
    ) -> Result<()> {
        let mut widest = 1;
        for b in &mut self.modules {
            let l = format!("{label} {} layer {}", self.name, b.index);
            b.module.alloc(be, max_rows, &l)?;
            if b.module.is_view() {
                self.outs.push(None);
                self.dins.push(None);
            } else {
                let (i, o) = (b.module.input().len(), b.module.output().len());
                self.outs
                    .push(Some(be.alloc(max_rows * o, &format!("{l} output"))?));
                self.dins.push(Some(
                    be.alloc(max_rows * i, &format!("{l} input gradient"))?,
                ));
                widest = widest.max(o);
            }
        }
        if tangent {
            self.tan = Some([
                be.alloc(
                    max_rows * widest,
                    &format!("{label} {} tangent a", self.name),
                )?,
                be.alloc(
                    max_rows * widest,
                    &format!("{label} {} tangent b", self.name),
                )?,
            ]);
        }
        Ok(())
    }

    /// The sequence on `x` in an ONNX graph, its tensors among the network's `all`.
    fn onnx(&self, g: &mut crate::onnx::OnnxGraph, x: &str, all: &[&[f32]]) -> Result<String> {
        let input = self.modules[0].module.input();
        let tensors = &all[self.base..self.base + self.n_tensors];
        let (y, _) = crate::onnx::walk(g, &self.modules, input, x, tensors, &[])?;
        Ok(y)
    }

    /// Module `i`'s tensors among the network's `all`.
    fn views(&self, all: &[Tensor], i: usize) -> Vec<Tensor> {
        let (o, c) = self.slots[i];
        all[self.base + o..self.base + o + c].to_vec()
    }

    fn all_views<'a>(&self, all: &'a [Tensor]) -> &'a [Tensor] {
        &all[self.base..self.base + self.n_tensors]
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        be: &mut dyn Backend,
        x: Tensor,
        rows: usize,
        train: bool,
        params: &[Tensor],
        rng: &mut NetRng,
        out: Option<Tensor>,
    ) -> Tensor {
        let writer = self.modules.iter().rposition(|b| !b.module.is_view());
        let mut cur = x;
        self.x = Some(x);
        self.rows = rows;
        self.ys.clear();
        for i in 0..self.modules.len() {
            let len = rows * self.modules[i].module.output().len();
            let y = match (&self.outs[i], out) {
                (None, _) => cur,
                (Some(_), Some(o)) if Some(i) == writer => o.slice(0, len),
                (Some(buf), _) => buf.slice(0, len),
            };
            let p = self.views(params, i);
            let f = Fwd {
                x: cur,
                y,
                rows,
                params: &p,
                state: &[],
                train,
                labels: None,
            };
            self.modules[i].module.forward(be, &f, rng);
            self.ys.push(y);
            cur = y;
        }
        cur
    }

    /// Back-propagates `dy` through the last forward; the input gradient when `need_dx`.
    fn backward(
        &mut self,
        be: &mut dyn Backend,
        dy: Tensor,
        need_dx: bool,
        params: &[Tensor],
        grads: Option<&[Tensor]>,
    ) -> Option<Tensor> {
        let rows = self.rows;
        let input = self.x.expect("backward follows a forward");
        let mut d = dy;
        for i in (0..self.modules.len()).rev() {
            let want_dx = i > 0 || need_dx;
            let dx = match self.dins[i] {
                None => d,
                Some(buf) => buf.slice(0, rows * self.modules[i].module.input().len()),
            };
            let p = self.views(params, i);
            let g = grads.map(|g| self.views(g, i));
            let b = Bwd {
                x: if i == 0 { input } else { self.ys[i - 1] },
                y: self.ys[i],
                dy: d,
                dx: want_dx.then_some(dx),
                rows,
                params: &p,
                grads: g.as_deref(),
                state: &[],
                labels: None,
            };
            self.modules[i].module.backward(be, &b);
            if !want_dx {
                return None;
            }
            d = dx;
        }
        Some(d)
    }

    /// The tangent pass of `v` through the last forward and backward, adding each module's
    /// penalty term to `grads`; the last module writes to `out` when given.
    fn tangent(
        &mut self,
        be: &mut dyn Backend,
        v: Tensor,
        params: &[Tensor],
        grads: &[Tensor],
        out: Option<Tensor>,
    ) -> Result<Tensor> {
        let rows = self.rows;
        let input = self.x.expect("the tangent pass follows a forward");
        let tan = self
            .tan
            .expect("tangent buffers are allocated for the critic");
        let writer = self.modules.iter().rposition(|b| !b.module.is_view());
        let mut cur = v;
        let mut written = 0;
        for i in 0..self.modules.len() {
            if self.modules[i].module.is_view() {
                continue;
            }
            let len = rows * self.modules[i].module.output().len();
            let v_out = match out {
                Some(o) if Some(i) == writer => o.slice(0, len),
                _ => tan[written % 2].slice(0, len),
            };
            written += 1;
            let (p, g) = (self.views(params, i), self.views(grads, i));
            let t = Tangent {
                x: if i == 0 { input } else { self.ys[i - 1] },
                y: self.ys[i],
                v_in: cur,
                v_out,
                rows,
                params: &p,
                grads: &g,
                state: &[],
                labels: None,
            };
            self.modules[i].module.tangent(be, &t)?;
            cur = v_out;
        }
        Ok(cur)
    }

    /// Zeroes this sequence's parameter gradients (a block that did not run has none).
    fn zero_grads(&self, be: &mut dyn Backend, params: &[Tensor], grads: &[Tensor]) {
        for (g, p) in self.all_views(grads).iter().zip(self.all_views(params)) {
            axpby(be, *g, *p, g.len(), 0.0, 0.0);
        }
    }

    /// grads += scratch over this sequence's tensors.
    fn add_grads(&self, be: &mut dyn Backend, grads: &[Tensor], scratch: &[Tensor]) {
        for (g, s) in self.all_views(grads).iter().zip(self.all_views(scratch)) {
            axpby(be, *g, *s, g.len(), 1.0, 1.0);
        }
    }

    fn check_tangent(&self) -> Result<()> {
        for b in &self.modules {
            b.module.check_tangent()?;
        }
        Ok(())
    }

    fn params_changed(&mut self, be: &mut dyn Backend, params: &[Tensor], first: bool) {
        for i in 0..self.modules.len() {
            let p = self.views(params, i);
            self.modules[i].module.params_changed(be, &p, &[], first);
        }
    }
}

/// Sets each sequence's `base` in order and returns the tensor count.
fn number(seqs: &mut [&mut Seq]) -> usize {
    let mut n = 0;
    for s in seqs {
        s.base = n;
        n += s.n_tensors;
    }
    n
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

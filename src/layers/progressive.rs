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

/// ProGAN's generator (see the module's documentation).
pub struct ProGenerator {
    spec: ProSpec,
    input: Shape,
    blocks: Vec<Seq>,
    torgb: Vec<Seq>,
    level: usize,
    alpha: f32,
    /// Per level, [rows, channels, r, r]: the image (upsampling chain), the upsampled old image,
    /// and their gradients; the fade's two gradients.
    img: Vec<Tensor>,
    up: Vec<Tensor>,
    gimg: Vec<Tensor>,
    gnew: Vec<Tensor>,
    gold: Vec<Tensor>,
}

impl ProGenerator {
    pub fn new(input: Shape, spec: ProSpec) -> Result<Self> {
        spec.validate()?;
        if !input.is_flat() {
            bail!("the progressive generator takes a noise vector, not {input}");
        }
        let f0 = spec.features(0);
        let mut blocks = vec![Seq::new(
            "block0".into(),
            input,
            vec![
                Layer::PixelNorm,
                // ProGAN's first dense layer has gain √2/4.
                Layer::EqualizedLr(SQRT2 / 4.0),
                Layer::Linear(f0 * 16),
                LRELU,
                Layer::Reshape(Shape::image(f0, 4, 4)),
                Layer::PixelNorm,
                conv(f0, 3, 1)[0],
                conv(f0, 3, 1)[1],
                LRELU,
                Layer::PixelNorm,
            ],
        )?];
        for l in 1..=spec.top() {
            let (r, c) = (ProSpec::res(l - 1), spec.features(l));
            let mut layers = vec![Layer::Upsample2x];
            for _ in 0..2 {
                layers.extend(conv(c, 3, 1));
                layers.extend([LRELU, Layer::PixelNorm]);
            }
            blocks.push(Seq::new(
                format!("block{l}"),
                Shape::image(spec.features(l - 1), r, r),
                layers,
            )?);
        }
        let mut torgb = Vec::new();
        for l in 0..=spec.top() {
            let r = ProSpec::res(l);
            torgb.push(Seq::new(
                format!("torgb{l}"),
                Shape::image(spec.features(l), r, r),
                vec![
                    Layer::EqualizedLr(1.0),
                    Layer::Conv2d {
                        out: spec.channels,
                        k: 1,
                        stride: 1,
                        pad: 0,
                    },
                ],
            )?);
        }
        let mut g = ProGenerator {
            spec,
            input,
            blocks,
            torgb,
            level: spec.top(),
            alpha: 1.0,
            img: Vec::new(),
            up: Vec::new(),
            gimg: Vec::new(),
            gnew: Vec::new(),
            gold: Vec::new(),
        };
        let mut all: Vec<&mut Seq> = g.blocks.iter_mut().chain(g.torgb.iter_mut()).collect();
        number(&mut all);
        Ok(g)
    }

    fn image_len(&self, l: usize) -> usize {
        let r = ProSpec::res(l);
        self.spec.channels * r * r
    }
}

impl Module for ProGenerator {
    fn describe(&self) -> String {
        let s = &self.spec;
        format!(
            "ProGAN generator (4×4 → {0}×{0}, {1} features, {2} images per phase)",
            s.side, s.width, s.phase_images
        )
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        Shape::image(self.spec.channels, self.spec.side, self.spec.side)
    }

    fn params(&self) -> Vec<ParamSpec> {
        self.blocks
            .iter()
            .chain(&self.torgb)
            .flat_map(|s| s.params())
            .collect()
    }

    fn flops(&self, rows: usize) -> f64 {
        self.blocks.iter().map(|s| s.flops(rows)).sum::<f64>()
            + self.torgb.last().map_or(0.0, |s| s.flops(rows))
    }

    fn alloc(&mut self, be: &mut dyn Backend, max_rows: usize, label: &str) -> Result<()> {
        for s in self.blocks.iter_mut().chain(self.torgb.iter_mut()) {
            s.alloc(be, max_rows, false, label)?;
        }
        for l in 0..=self.spec.top() {
            let n = max_rows * self.image_len(l);
            let mut a = |what: &str| be.alloc(n, &format!("{label} {what} at level {l}"));
            self.img.push(a("image")?);
            self.up.push(a("upsampled old image")?);
            self.gimg.push(a("image gradient")?);
            self.gnew.push(a("fade gradient (new)")?);
            self.gold.push(a("fade gradient (old)")?);
        }
        Ok(())
    }

    fn set_growth(&mut self, level: usize, alpha: f32) {
        check_level(&self.spec, level, alpha);
        (self.level, self.alpha) = (level, alpha);
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, rng: &mut NetRng) {
        let (lv, a, top, rows) = (self.level, self.alpha, self.spec.top(), f.rows);
        let fading = lv > 0 && a < 1.0;
        let planes = rows * self.spec.channels;
        let dst = |s: &Self, l: usize| {
            if l == top {
                f.y
            } else {
                s.img[l].slice(0, rows * s.image_len(l))
            }
        };
        let mut h = self.blocks[0].forward(be, f.x, rows, f.train, f.params, rng, None);
        let mut prev = h;
        for l in 1..=lv {
            prev = h;
            h = self.blocks[l].forward(be, h, rows, f.train, f.params, rng, None);
        }
        let out = dst(self, lv);
        if fading {
            let new = self.torgb[lv].forward(be, h, rows, f.train, f.params, rng, None);
            let old = self.torgb[lv - 1].forward(be, prev, rows, f.train, f.params, rng, None);
            let up = self.up[lv].slice(0, rows * self.image_len(lv));
            let r = ProSpec::res(lv - 1);
            upsample2x_forward(be, up, old, planes, r, r);
            fade_forward(be, out, new, up, out.len(), a, 1.0 - a);
        } else {
            self.torgb[lv].forward(be, h, rows, f.train, f.params, rng, Some(out));
        }
        for l in lv + 1..=top {
            let r = ProSpec::res(l - 1);
            upsample2x_forward(be, dst(self, l), dst(self, l - 1), planes, r, r);
        }
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        let (lv, a, top, rows) = (self.level, self.alpha, self.spec.top(), b.rows);
        let fading = lv > 0 && a < 1.0;
        let planes = rows * self.spec.channels;
        if let Some(g) = b.grads {
            for (l, s) in self.blocks.iter().enumerate() {
                if l > lv {
                    s.zero_grads(be, b.params, g);
                }
            }
            for (l, s) in self.torgb.iter().enumerate() {
                if l != lv && !(fading && l + 1 == lv) {
                    s.zero_grads(be, b.params, g);
                }
            }
        }
        // The image gradient at level lv, summed down the upsampling chain.
        let mut d = b.dy;
        for l in (lv + 1..=top).rev() {
            let t = self.gimg[l - 1].slice(0, rows * self.image_len(l - 1));
            let r = ProSpec::res(l - 1);
            upsample2x_backward(be, t, d, planes, r, r);
            d = t;
        }
        let mut d_prev = None;
        if fading {
            let n = rows * self.image_len(lv);
            let (dn, dold) = (self.gnew[lv].slice(0, n), self.gold[lv].slice(0, n));
            fade_backward(be, dn, dold, d, n, a, 1.0 - a);
            let t = self.gimg[lv - 1].slice(0, rows * self.image_len(lv - 1));
            let r = ProSpec::res(lv - 1);
            upsample2x_backward(be, t, dold, planes, r, r);
            d_prev = self.torgb[lv - 1].backward(be, t, true, b.params, b.grads);
            d = dn;
        }
        let mut dh = self.torgb[lv]
            .backward(be, d, true, b.params, b.grads)
            .expect("input gradient requested");
        for l in (1..=lv).rev() {
            dh = self.blocks[l]
                .backward(be, dh, true, b.params, b.grads)
                .expect("input gradient requested");
            if l == lv
                && let Some(e) = d_prev
            {
                axpby(be, dh, e, dh.len(), 1.0, 1.0);
            }
        }
        let dz = self.blocks[0].backward(be, dh, b.dx.is_some(), b.params, b.grads);
        if let (Some(dx), Some(dz)) = (b.dx, dz) {
            axpby(be, dx, dz, dx.len(), 0.0, 1.0);
        }
    }

    fn params_changed(
        &mut self,
        be: &mut dyn Backend,
        params: &[Tensor],
        _state: &[Tensor],
        first: bool,
    ) {
        for s in self.blocks.iter_mut().chain(self.torgb.iter_mut()) {
            s.params_changed(be, params, first);
        }
    }
}

/// ProGAN's critic (see the module's documentation).
pub struct ProDiscriminator {
    spec: ProSpec,
    input: Shape,
    fromrgb: Vec<Seq>,
    /// blocks[0] is block 0 after its minibatch standard deviation; blocks[l] (l ≥ 1) halve.
    blocks: Vec<Seq>,
    mbstd: MinibatchStd,
    level: usize,
    alpha: f32,
    /// The input pooled to level l (l < top); the fade's output features at level l (l < top,
    /// the output of block l + 1); the minibatch-std layer's input, output and input gradient.
    pooled: Vec<Tensor>,
    feat: Vec<Tensor>,
    mb_in: Option<Tensor>,
    mb_out: Option<Tensor>,
    mb_din: Option<Tensor>,
    /// Gradients: the fade's two at level l, the input's at level l.
    gnew: Vec<Tensor>,
    gold: Vec<Tensor>,
    gx: Vec<Tensor>,
    /// Tangent pass: pooled tangents, the fade's output, minibatch std's output and its
    /// second-order term u, and a scratch copy of every parameter gradient.
    tpool: Vec<Tensor>,
    tfeat: Vec<Tensor>,
    t_mb: Option<Tensor>,
    u: Option<Tensor>,
    grad_scratch: Option<Tensor>,
}

impl ProDiscriminator {
    pub fn new(input: Shape, spec: ProSpec) -> Result<Self> {
        spec.validate()?;
        if input != Shape::image(spec.channels, spec.side, spec.side) {
            bail!(
                "the progressive critic judges {0}×{1}×{1} images, not {input}",
                spec.channels,
                spec.side
            );
        }
        let mut fromrgb = Vec::new();
        for l in 0..=spec.top() {
            let r = ProSpec::res(l);
            let mut layers = conv(spec.features(l), 1, 0).to_vec();
            layers.push(LRELU);
            fromrgb.push(Seq::new(
                format!("fromrgb{l}"),
                Shape::image(spec.channels, r, r),
                layers,
            )?);
        }
        let f0 = spec.features(0);
        let mut head = conv(f0, 3, 1).to_vec();
        head.push(LRELU);
        head.extend(conv(f0, 4, 0));
        head.extend([
            LRELU,
            Layer::Reshape(Shape::flat(f0)),
            Layer::EqualizedLr(1.0),
            Layer::Linear(1),
        ]);
        let mut blocks = vec![Seq::new("block0".into(), Shape::image(f0 + 1, 4, 4), head)?];
        for l in 1..=spec.top() {
            let r = ProSpec::res(l);
            let mut layers = conv(spec.features(l), 3, 1).to_vec();
            layers.push(LRELU);
            layers.extend(conv(spec.features(l - 1), 3, 1));
            layers.extend([LRELU, Layer::AvgPool2x]);
            blocks.push(Seq::new(
                format!("block{l}"),
                Shape::image(spec.features(l), r, r),
                layers,
            )?);
        }
        let mut d = ProDiscriminator {
            spec,
            input,
            fromrgb,
            blocks,
            mbstd: MinibatchStd::new(Shape::image(f0, 4, 4), spec.group)?,
            level: spec.top(),
            alpha: 1.0,
            pooled: Vec::new(),
            feat: Vec::new(),
            mb_in: None,
            mb_out: None,
            mb_din: None,
            gnew: Vec::new(),
            gold: Vec::new(),
            gx: Vec::new(),
            tpool: Vec::new(),
            tfeat: Vec::new(),
            t_mb: None,
            u: None,
            grad_scratch: None,
        };
        let mut all: Vec<&mut Seq> = d.fromrgb.iter_mut().chain(d.blocks.iter_mut()).collect();
        number(&mut all);
        Ok(d)
    }

    fn image_len(&self, l: usize) -> usize {
        let r = ProSpec::res(l);
        self.spec.channels * r * r
    }

    fn feat_len(&self, l: usize) -> usize {
        let r = ProSpec::res(l);
        self.spec.features(l) * r * r
    }

    fn fading(&self) -> bool {
        self.level > 0 && self.alpha < 1.0
    }

    /// Back-propagates `d` (the gradient at the minibatch-std layer's input) through every
    /// block below it to the input (into `dx` when given), writing `grads` when given.
    fn backward_below(
        &mut self,
        be: &mut dyn Backend,
        d: Tensor,
        rows: usize,
        dx: Option<Tensor>,
        params: &[Tensor],
        grads: Option<&[Tensor]>,
    ) {
        let (lv, a, top) = (self.level, self.alpha, self.spec.top());
        let planes = rows * self.spec.channels;
        let mut d = d;
        for l in 1..lv {
            d = self.blocks[l]
                .backward(be, d, true, params, grads)
                .expect("input gradient requested");
        }
        let mut d_old = None;
        if lv > 0 {
            if self.fading() {
                let n = rows * self.feat_len(lv - 1);
                let (dn, dold) = (self.gnew[lv - 1].slice(0, n), self.gold[lv - 1].slice(0, n));
                fade_backward(be, dn, dold, d, n, a, 1.0 - a);
                let r = self.fromrgb[lv - 1].backward(be, dold, dx.is_some(), params, grads);
                if let Some(r) = r {
                    let t = self.gx[lv].slice(0, rows * self.image_len(lv));
                    let res = ProSpec::res(lv - 1);
                    avgpool2x_backward(be, t, r, planes, res, res);
                    d_old = Some(t);
                }
                d = dn;
            }
            d = self.blocks[lv]
                .backward(be, d, true, params, grads)
                .expect("input gradient requested");
        }
        let g = self.fromrgb[lv].backward(be, d, dx.is_some(), params, grads);
        let (Some(target), Some(mut g)) = (dx, g) else {
            return;
        };
        if let Some(o) = d_old {
            axpby(be, g, o, g.len(), 1.0, 1.0);
        }
        if lv == top {
            axpby(be, target, g, target.len(), 0.0, 1.0);
            return;
        }
        for l in lv + 1..=top {
            let t = if l == top {
                target
            } else {
                self.gx[l].slice(0, rows * self.image_len(l))
            };
            let res = ProSpec::res(l - 1);
            avgpool2x_backward(be, t, g, planes, res, res);
            g = t;
        }
    }

    /// Views of the scratch gradient, one per parameter tensor, as `grads` lays them out.
    fn scratch_views(&self, grads: &[Tensor]) -> Vec<Tensor> {
        let s = self.grad_scratch.expect("allocated");
        let mut off = 0;
        grads
            .iter()
            .map(|g| {
                let v = s.slice(off, g.len());
                off += g.len();
                v
            })
            .collect()
    }
}

impl Module for ProDiscriminator {
    fn describe(&self) -> String {
        let s = &self.spec;
        format!(
            "ProGAN critic ({0}×{0} → 4×4, {1} features, minibatch std over {2})",
            s.side, s.width, s.group
        )
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        Shape::flat(1)
    }

    fn params(&self) -> Vec<ParamSpec> {
        self.fromrgb
            .iter()
            .chain(&self.blocks)
            .flat_map(|s| s.params())
            .collect()
    }

    fn flops(&self, rows: usize) -> f64 {
        self.blocks.iter().map(|s| s.flops(rows)).sum::<f64>()
            + self.fromrgb.last().map_or(0.0, |s| s.flops(rows))
    }

    fn alloc(&mut self, be: &mut dyn Backend, max_rows: usize, label: &str) -> Result<()> {
        for s in self.fromrgb.iter_mut().chain(self.blocks.iter_mut()) {
            s.alloc(be, max_rows, true, label)?;
        }
        let top = self.spec.top();
        for l in 0..=top {
            let (img, feat) = (max_rows * self.image_len(l), max_rows * self.feat_len(l));
            let mut a = |n: usize, what: &str| be.alloc(n, &format!("{label} {what} at level {l}"));
            self.pooled.push(a(img, "pooled input")?);
            self.feat.push(a(feat, "faded features")?);
            self.gnew.push(a(feat, "fade gradient (new)")?);
            self.gold.push(a(feat, "fade gradient (old)")?);
            self.gx.push(a(img, "input gradient")?);
            self.tpool.push(a(img, "pooled tangent")?);
            self.tfeat.push(a(feat, "faded tangent")?);
        }
        let f0 = self.spec.features(0);
        let mut a = |n: usize, what: &str| be.alloc(max_rows * n, &format!("{label} {what}"));
        self.mb_out = Some(a((f0 + 1) * 16, "minibatch std output")?);
        self.mb_din = Some(a(f0 * 16, "minibatch std input gradient")?);
        self.t_mb = Some(a((f0 + 1) * 16, "minibatch std tangent")?);
        self.u = Some(a(f0 * 16, "minibatch std second-order term")?);
        let n: usize = self.params().iter().map(|p| p.len()).sum();
        self.grad_scratch = Some(be.alloc(n, &format!("{label} penalty scratch gradient"))?);
        Ok(())
    }

    fn set_growth(&mut self, level: usize, alpha: f32) {
        check_level(&self.spec, level, alpha);
        (self.level, self.alpha) = (level, alpha);
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, rng: &mut NetRng) {
        let (lv, a, top, rows) = (self.level, self.alpha, self.spec.top(), f.rows);
        let planes = rows * self.spec.channels;
        let mut x = f.x;
        for l in (lv..top).rev() {
            let t = self.pooled[l].slice(0, rows * self.image_len(l));
            let r = ProSpec::res(l);
            avgpool2x_forward(be, t, x, planes, r, r);
            x = t;
        }
        let mut h = self.fromrgb[lv].forward(be, x, rows, f.train, f.params, rng, None);
        if lv > 0 {
            h = self.blocks[lv].forward(be, h, rows, f.train, f.params, rng, None);
            if self.fading() {
                let xp = self.pooled[lv - 1].slice(0, rows * self.image_len(lv - 1));
                let r = ProSpec::res(lv - 1);
                avgpool2x_forward(be, xp, x, planes, r, r);
                let old = self.fromrgb[lv - 1].forward(be, xp, rows, f.train, f.params, rng, None);
                let t = self.feat[lv - 1].slice(0, rows * self.feat_len(lv - 1));
                fade_forward(be, t, h, old, t.len(), a, 1.0 - a);
                h = t;
            }
            for l in (1..lv).rev() {
                h = self.blocks[l].forward(be, h, rows, f.train, f.params, rng, None);
            }
        }
        let m = self
            .mb_out
            .expect("allocated")
            .slice(0, rows * self.mbstd.output().len());
        let fm = Fwd {
            x: h,
            y: m,
            rows,
            params: &[],
            state: &[],
            train: f.train,
            labels: None,
        };
        self.mbstd.forward(be, &fm, rng);
        self.mb_in = Some(h);
        self.blocks[0].forward(be, m, rows, f.train, f.params, rng, Some(f.y));
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        let (lv, rows) = (self.level, b.rows);
        let fading = self.fading();
        if let Some(g) = b.grads {
            for (l, s) in self.fromrgb.iter().enumerate() {
                if l != lv && !(fading && l + 1 == lv) {
                    s.zero_grads(be, b.params, g);
                }
            }
            for (l, s) in self.blocks.iter().enumerate() {
                if l > lv {
                    s.zero_grads(be, b.params, g);
                }
            }
        }
        let dm = self.blocks[0]
            .backward(be, b.dy, true, b.params, b.grads)
            .expect("input gradient requested");
        let mb_in = self.mb_in.expect("backward follows a forward");
        let din = self.mb_din.expect("allocated").slice(0, mb_in.len());
        let bm = Bwd {
            x: mb_in,
            y: self.mb_out.expect("allocated").slice(0, dm.len()),
            dy: dm,
            dx: Some(din),
            rows,
            params: &[],
            grads: None,
            state: &[],
            labels: None,
        };
        self.mbstd.backward(be, &bm);
        self.backward_below(be, din, rows, b.dx, b.params, b.grads);
    }

    fn check_tangent(&self) -> Result<()> {
        for s in self.fromrgb.iter().chain(&self.blocks) {
            s.check_tangent()?;
        }
        Ok(())
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        let (lv, a, top, rows) = (self.level, self.alpha, self.spec.top(), t.rows);
        let planes = rows * self.spec.channels;
        let mut v = t.v_in;
        for l in (lv..top).rev() {
            let tt = self.tpool[l].slice(0, rows * self.image_len(l));
            let r = ProSpec::res(l);
            avgpool2x_forward(be, tt, v, planes, r, r);
            v = tt;
        }
        let mut h = self.fromrgb[lv].tangent(be, v, t.params, t.grads, None)?;
        if lv > 0 {
            h = self.blocks[lv].tangent(be, h, t.params, t.grads, None)?;
            if self.fading() {
                let vp = self.tpool[lv - 1].slice(0, rows * self.image_len(lv - 1));
                let r = ProSpec::res(lv - 1);
                avgpool2x_forward(be, vp, v, planes, r, r);
                let old = self.fromrgb[lv - 1].tangent(be, vp, t.params, t.grads, None)?;
                let tf = self.tfeat[lv - 1].slice(0, rows * self.feat_len(lv - 1));
                fade_forward(be, tf, h, old, tf.len(), a, 1.0 - a);
                h = tf;
            }
            for l in (1..lv).rev() {
                h = self.blocks[l].tangent(be, h, t.params, t.grads, None)?;
            }
        }
        let mb_in = self.mb_in.expect("the tangent pass follows a forward");
        let vm = self
            .t_mb
            .expect("allocated")
            .slice(0, rows * self.mbstd.output().len());
        let u = self.u.expect("allocated").slice(0, mb_in.len());
        self.mbstd.tangent_with_term(be, mb_in, h, vm, u, rows);
        self.blocks[0].tangent(be, vm, t.params, t.grads, Some(t.v_out))?;
        // The minibatch std's curvature: u back through every layer below it, into the scratch
        // gradient, added to the weight gradients of the sequences that ran.
        let scratch = self.scratch_views(t.grads);
        self.backward_below(be, u, rows, None, t.params, Some(&scratch));
        let fading = self.fading();
        for (l, s) in self.fromrgb.iter().enumerate() {
            if l == lv || (fading && l + 1 == lv) {
                s.add_grads(be, t.grads, &scratch);
            }
        }
        for s in &self.blocks[1..=lv] {
            s.add_grads(be, t.grads, &scratch);
        }
        Ok(())
    }

    fn params_changed(
        &mut self,
        be: &mut dyn Backend,
        params: &[Tensor],
        _state: &[Tensor],
        first: bool,
    ) {
        for s in self.fromrgb.iter_mut().chain(self.blocks.iter_mut()) {
            s.params_changed(be, params, first);
        }
    }
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
    }
}

//! ProGAN's generator: blocks from 4×4 up, each doubling faded in through its toRGB.

use super::*;

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
        let mut blocks = vec![block(
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
                conv(f0, 3, 1)[0].clone(),
                conv(f0, 3, 1)[1].clone(),
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
            blocks.push(block(
                format!("block{l}"),
                Shape::image(spec.features(l - 1), r, r),
                layers,
            )?);
        }
        let mut torgb = Vec::new();
        for l in 0..=spec.top() {
            let r = ProSpec::res(l);
            torgb.push(block(
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
        let mut h = self.blocks[0].forward(be, f.outer(), f.x, rng, None);
        let mut prev = h;
        for l in 1..=lv {
            prev = h;
            h = self.blocks[l].forward(be, f.outer(), h, rng, None);
        }
        let out = dst(self, lv);
        if fading {
            let new = self.torgb[lv].forward(be, f.outer(), h, rng, None);
            let old = self.torgb[lv - 1].forward(be, f.outer(), prev, rng, None);
            let up = self.up[lv].slice(0, rows * self.image_len(lv));
            let r = ProSpec::res(lv - 1);
            upsample2x_forward(be, up, old, planes, r, r);
            fade_forward(be, out, new, up, out.len(), a, 1.0 - a);
        } else {
            self.torgb[lv].forward(be, f.outer(), h, rng, Some(out));
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
            d_prev = self.torgb[lv - 1].backward(be, b.outer(), t, true, b.grads);
            d = dn;
        }
        let mut dh = self.torgb[lv]
            .backward(be, b.outer(), d, true, b.grads)
            .expect("input gradient requested");
        for l in (1..=lv).rev() {
            dh = self.blocks[l]
                .backward(be, b.outer(), dh, true, b.grads)
                .expect("input gradient requested");
            if l == lv
                && let Some(e) = d_prev
            {
                axpby(be, dh, e, dh.len(), 1.0, 1.0);
            }
        }
        let dz = self.blocks[0].backward(be, b.outer(), dh, b.dx.is_some(), b.grads);
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
            s.params_changed(be, params, &[], first);
        }
    }
    fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        params: &[&[f32]],
        _state: &[&[f32]],
    ) -> Result<String> {
        let (lv, a, top) = (self.level, self.alpha, self.spec.top());
        let mut h = self.blocks[0].onnx(g, x, params, &[])?;
        let mut prev = h.clone();
        for l in 1..=lv {
            prev = h.clone();
            h = self.blocks[l].onnx(g, &h, params, &[])?;
        }
        let mut out = self.torgb[lv].onnx(g, &h, params, &[])?;
        if lv > 0 && a < 1.0 {
            // The fade: α·new + (1 − α)·(the level below's image, upsampled).
            let old = self.torgb[lv - 1].onnx(g, &prev, params, &[])?;
            let up = g.upsample2x(&old);
            let (wa, wb) = (
                g.weight("alpha", &[1], &[a]),
                g.weight("beta", &[1], &[1.0 - a]),
            );
            let new = g.node("Mul", &[&out, &wa], vec![]);
            let old = g.node("Mul", &[&up, &wb], vec![]);
            out = g.node("Add", &[&new, &old], vec![]);
        }
        for _ in lv + 1..=top {
            out = g.upsample2x(&out);
        }
        Ok(out)
    }
}

//! ProGAN's critic: fromRGB and blocks down to 4×4, the minibatch standard deviation, and the
//! exact tangent pass a gradient penalty needs.

use super::*;

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
            fromrgb.push(block(
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
        let mut blocks = vec![block("block0".into(), Shape::image(f0 + 1, 4, 4), head)?];
        for l in 1..=spec.top() {
            let r = ProSpec::res(l);
            let mut layers = conv(spec.features(l), 3, 1).to_vec();
            layers.push(LRELU);
            layers.extend(conv(spec.features(l - 1), 3, 1));
            layers.extend([LRELU, Layer::AvgPool2x]);
            blocks.push(block(
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
        o: Outer,
        grads: Option<&[Tensor]>,
    ) {
        let (lv, a, top) = (self.level, self.alpha, self.spec.top());
        let planes = rows * self.spec.channels;
        let mut d = d;
        for l in 1..lv {
            d = self.blocks[l]
                .backward(be, o, d, true, grads)
                .expect("input gradient requested");
        }
        let mut d_old = None;
        if lv > 0 {
            if self.fading() {
                let n = rows * self.feat_len(lv - 1);
                let (dn, dold) = (self.gnew[lv - 1].slice(0, n), self.gold[lv - 1].slice(0, n));
                fade_backward(be, dn, dold, d, n, a, 1.0 - a);
                let r = self.fromrgb[lv - 1].backward(be, o, dold, dx.is_some(), grads);
                if let Some(r) = r {
                    let t = self.gx[lv].slice(0, rows * self.image_len(lv));
                    let res = ProSpec::res(lv - 1);
                    avgpool2x_backward(be, t, r, planes, res, res);
                    d_old = Some(t);
                }
                d = dn;
            }
            d = self.blocks[lv]
                .backward(be, o, d, true, grads)
                .expect("input gradient requested");
        }
        let g = self.fromrgb[lv].backward(be, o, d, dx.is_some(), grads);
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
        let mut h = self.fromrgb[lv].forward(be, f.outer(), x, rng, None);
        if lv > 0 {
            h = self.blocks[lv].forward(be, f.outer(), h, rng, None);
            if self.fading() {
                let xp = self.pooled[lv - 1].slice(0, rows * self.image_len(lv - 1));
                let r = ProSpec::res(lv - 1);
                avgpool2x_forward(be, xp, x, planes, r, r);
                let old = self.fromrgb[lv - 1].forward(be, f.outer(), xp, rng, None);
                let t = self.feat[lv - 1].slice(0, rows * self.feat_len(lv - 1));
                fade_forward(be, t, h, old, t.len(), a, 1.0 - a);
                h = t;
            }
            for l in (1..lv).rev() {
                h = self.blocks[l].forward(be, f.outer(), h, rng, None);
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
        self.blocks[0].forward(be, f.outer(), m, rng, Some(f.y));
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
            .backward(be, b.outer(), b.dy, true, b.grads)
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
        self.backward_below(be, din, rows, b.dx, b.outer(), b.grads);
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
        let mut h = self.fromrgb[lv].tangent(be, t.outer(), v, t.grads, None)?;
        if lv > 0 {
            h = self.blocks[lv].tangent(be, t.outer(), h, t.grads, None)?;
            if self.fading() {
                let vp = self.tpool[lv - 1].slice(0, rows * self.image_len(lv - 1));
                let r = ProSpec::res(lv - 1);
                avgpool2x_forward(be, vp, v, planes, r, r);
                let old = self.fromrgb[lv - 1].tangent(be, t.outer(), vp, t.grads, None)?;
                let tf = self.tfeat[lv - 1].slice(0, rows * self.feat_len(lv - 1));
                fade_forward(be, tf, h, old, tf.len(), a, 1.0 - a);
                h = tf;
            }
            for l in (1..lv).rev() {
                h = self.blocks[l].tangent(be, t.outer(), h, t.grads, None)?;
            }
        }
        let mb_in = self.mb_in.expect("the tangent pass follows a forward");
        let vm = self
            .t_mb
            .expect("allocated")
            .slice(0, rows * self.mbstd.output().len());
        let u = self.u.expect("allocated").slice(0, mb_in.len());
        self.mbstd.tangent_with_term(be, mb_in, h, vm, u, rows);
        self.blocks[0].tangent(be, t.outer(), vm, t.grads, Some(t.v_out))?;
        // The minibatch std's curvature: u back through every layer below it, into the scratch
        // gradient, added to the weight gradients of the sequences that ran.
        let scratch = self.scratch_views(t.grads);
        self.backward_below(be, u, rows, None, t.outer(), Some(&scratch));
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
            s.params_changed(be, params, &[], first);
        }
    }
}

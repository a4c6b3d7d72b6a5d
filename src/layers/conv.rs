//! A 2-D convolution over NCHW images (PyTorch's nn.Conv2d with bias), y = act(conv(x, W) + b),
//! its activation fused into the product's store. W is [out, in, k, k] as PyTorch stores it.
//!
//! Forward:  y = act(conv(x, W) + b)                   conv2d_forward, bias and act as it stores
//! Backward: δ = dy ⊙ act'(y)     (skipped when the module above already applied it)
//!           dW = Σ δ ⊗ x (conv2d_backward_weights),  db = Σ_{n,pixels} δ,
//!           dx = convᵀ(δ, W) (⊙ f'(x) of the activation below, fused)
//! Tangent:  v_out = conv(v_in, W) ⊙ act'(y),  dW += Σ δ ⊗ v_in

use super::spectral_norm::SpectralNorm;
use super::{Bwd, Fwd, Init, Module, NetRng, ParamSpec, Shape, StateSpec, Tangent};
use crate::backend::{Activation, Backend, Tensor, WriteMode};
use crate::kernels::activation::activation_backward;
use crate::kernels::conv::{
    ConvGeom, Store, bias_backward_nchw, conv2d_backward_input, conv2d_backward_weights,
    conv2d_forward, weight_grad_splits,
};
use anyhow::{Result, bail};

/// The geometry both convolution layers share, and what their backward keeps.
pub(super) struct ConvCore {
    /// The convolution this layer computes or is the adjoint of (n set per call).
    pub geom: ConvGeom,
    pub act: Activation,
    /// The gradient arriving in backward is already w.r.t. the pre-activation.
    pub grad_pre_act: bool,
    /// The activation that produced this layer's input, applied in the input-gradient product.
    pub below: Option<Activation>,
    /// δ when backward computes it itself ([max_rows, output]).
    pub delta: Option<Tensor>,
    /// The view of δ the last backward used (the tangent pass reads it).
    pub last_delta: Option<Tensor>,
    /// Slices of the split weight gradient (see `conv2d_backward_weights`).
    pub partials: Option<Tensor>,
    /// Spectral normalization of the weight viewed as [out, in·k·k] (PyTorch's `spectral_norm`:
    /// a Conv2d's [out, in, k, k] over dimension 0, its own row-major layout; a
    /// ConvTranspose2d's [in, out, k, k] over dimension 1).
    pub sn: Option<SpectralNorm>,
}

impl ConvCore {
    pub fn new(geom: ConvGeom, act: Activation) -> Self {
        ConvCore {
            geom,
            act,
            grad_pre_act: false,
            below: None,
            delta: None,
            last_delta: None,
            partials: None,
            sn: None,
        }
    }

    pub fn rows(&self, rows: usize) -> ConvGeom {
        ConvGeom {
            n: rows,
            ..self.geom
        }
    }

    /// A weight of PyTorch shape `weight_shape` and a bias of `channels`, with PyTorch's
    /// default initialisation (kaiming-uniform with a = √5): both uniform in ±1/√fan_in,
    /// fan_in = weight.size(1)·kh·kw (for ConvTranspose2d, whose weight is [in, out, k, k],
    /// that is out·k·k — PyTorch's `_calculate_fan_in_and_fan_out` reads dimension 1).
    pub fn params(&self, weight_shape: Vec<usize>, channels: usize) -> Vec<ParamSpec> {
        let fan_in: usize = weight_shape[1..].iter().product();
        let bound = 1.0 / (fan_in as f32).sqrt();
        vec![
            ParamSpec {
                name: if self.sn.is_some() {
                    "weight_orig"
                } else {
                    "weight"
                },
                shape: weight_shape,
                transposed: false,
                init: Init::Uniform(bound),
            },
            ParamSpec {
                name: "bias",
                shape: vec![channels],
                transposed: false,
                init: Init::Uniform(bound),
            },
        ]
    }

    /// Scratch for batches of up to `max_rows`: δ (`out_len` per sample) and the weight
    /// gradient's partial slices.
    pub fn alloc(
        &mut self,
        be: &mut dyn Backend,
        max_rows: usize,
        out_len: usize,
        label: &str,
    ) -> Result<()> {
        if let Some(sn) = &mut self.sn {
            sn.alloc(be, label)?;
        }
        if self.act != Activation::Identity && !self.grad_pre_act {
            self.delta = Some(be.alloc(max_rows * out_len, &format!("{label} δ"))?);
        }
        let g = self.rows(max_rows);
        let splits = weight_grad_splits(&g);
        if splits > 1 {
            let len = splits * g.weight_len();
            self.partials = Some(be.alloc(len, &format!("{label} weight-gradient slices"))?);
        }
        Ok(())
    }

    /// δ = dy ⊙ act'(y), or dy itself when the module above applied act' already.
    pub fn delta(&mut self, be: &mut dyn Backend, b: &Bwd, n: usize) -> Tensor {
        let delta = match self.delta {
            Some(buf) => {
                let d = buf.slice(0, n);
                activation_backward(be, self.act, d, b.dy, b.y, n);
                d
            }
            None => b.dy,
        };
        self.last_delta = Some(delta);
        delta
    }

    /// The store step of the input-gradient product: ⊙ f'(x) of the activation below.
    pub fn below_store(&self, x: Tensor) -> Store {
        match self.below {
            Some(act) if act != Activation::Identity => Store::ActGrad { act, y: x },
            _ => Store::PLAIN,
        }
    }

    /// The weight the convolutions use: W/σ of the last forward, or W.
    pub fn weight(&self, params: &[Tensor]) -> Tensor {
        self.sn.as_ref().map_or(params[0], |sn| sn.weight())
    }

    /// The forward's weight: W/σ(W) computed from the state when normalised, else W.
    /// The layer's `op` ("Conv" or "ConvTranspose", same attributes) on `x` in an ONNX graph,
    /// the weight of PyTorch shape `dims` folded by spectral norm when normalised.
    pub fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        op: &str,
        x: &str,
        dims: Vec<usize>,
        params: &[&[f32]],
        state: &[&[f32]],
    ) -> Result<String> {
        use crate::onnx::Attr;
        let w = match &self.sn {
            Some(sn) => sn.fold(params[0], state),
            None => params[0].to_vec(),
        };
        let w = g.weight("conv_weight", &dims, &w);
        let b = g.weight("conv_bias", &[params[1].len()], params[1]);
        let c = &self.geom;
        let (s, p) = (c.stride as i64, c.pad as i64);
        let attrs = vec![
            ("kernel_shape", Attr::Ints(vec![c.kh as i64, c.kw as i64])),
            ("strides", Attr::Ints(vec![s, s])),
            ("pads", Attr::Ints(vec![p, p, p, p])),
        ];
        let y = g.node(op, &[x, &w, &b], attrs);
        Ok(g.activation(&y, self.act))
    }

    pub fn forward_weight(
        &self,
        be: &mut dyn Backend,
        params: &[Tensor],
        state: &[Tensor],
    ) -> Tensor {
        match &self.sn {
            Some(sn) => sn.forward(be, params[0], state),
            None => params[0],
        }
    }

    /// Writes or adds the weight gradient of the convolution `g` with input `x` and output
    /// gradient `dy` (`conv2d_backward_weights`; a transposed convolution passes its δ as x and
    /// its input as dy), through σ when normalised: the product then fills ∂L/∂(W/σ) and
    /// spectral norm's backward turns it into ∂L/∂W.
    pub fn weight_grad(
        &self,
        be: &mut dyn Backend,
        g: &ConvGeom,
        (dw, write): (Tensor, WriteMode),
        x: Tensor,
        dy: Tensor,
        state: &[Tensor],
    ) {
        match &self.sn {
            None => conv2d_backward_weights(be, g, (dw, write), x, dy, self.partials),
            Some(sn) => {
                let scratch = (sn.grad_scratch(), WriteMode::Overwrite);
                conv2d_backward_weights(be, g, scratch, x, dy, self.partials);
                sn.backward(be, dw, state, write);
            }
        }
    }

    /// Spectral norm's u and v, when normalised.
    pub fn state(&self) -> Vec<StateSpec> {
        self.sn.as_ref().map_or_else(Vec::new, |sn| sn.state())
    }

    /// The power iteration after each update (15 when the weights are first set).
    pub fn params_changed(
        &mut self,
        be: &mut dyn Backend,
        params: &[Tensor],
        state: &[Tensor],
        first: bool,
    ) {
        if let Some(sn) = &self.sn {
            sn.params_changed(be, params[0], state, first);
        }
    }

    /// The tangent pass needs an exact linearisation: a piecewise-linear activation.
    pub fn tangent_supported(&self, what: &str) -> Result<()> {
        if !self.act.is_piecewise_linear() {
            bail!(
                "{what}: the gradient penalty's exact tangent pass supports piecewise-linear \
                 activations (ReLU, LeakyReLU) in the critic; a smooth one needs its second \
                 derivative's term, which duel does not compute"
            );
        }
        Ok(())
    }

    /// δ of the last backward, once the tangent pass is known to be exact.
    pub fn check_tangent(&self, what: &str) -> Result<Tensor> {
        self.tangent_supported(what)?;
        Ok(self
            .last_delta
            .expect("the tangent pass follows a backward to the input"))
    }

    pub fn describe(&self, name: &str, input: Shape, output: Shape) -> String {
        let g = &self.geom;
        let sn = if self.sn.is_some() {
            " (spectral norm)"
        } else {
            ""
        };
        let mut s = format!(
            "{name}{sn}({input} → {output}, k{}, s{}, p{})",
            g.kh, g.stride, g.pad
        );
        if self.act != Activation::Identity {
            s += &format!(" + {}", self.act.describe());
        }
        s
    }
}

/// Checks a convolution's hyperparameters against its input.
pub(super) fn check_hyper(input: Shape, out: usize, k: usize, stride: usize) -> Result<()> {
    if out == 0 {
        bail!("a convolution needs at least one output channel");
    }
    if k == 0 || stride == 0 {
        bail!("kernel size and stride must be at least 1 (got k={k}, stride={stride})");
    }
    if input.is_empty() {
        bail!("the input {input} is empty");
    }
    Ok(())
}

pub struct Conv2d {
    input: Shape,
    core: ConvCore,
}

impl Conv2d {
    pub fn new(
        input: Shape,
        out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        act: Activation,
    ) -> Result<Self> {
        check_hyper(input, out, k, stride)?;
        let geom = ConvGeom {
            n: 0,
            ci: input.c,
            h: input.h,
            w: input.w,
            co: out,
            kh: k,
            kw: k,
            stride,
            pad,
        };
        if !geom.is_valid() {
            bail!(
                "Conv2d kernel {k}×{k} is larger than its input {}×{} padded by {pad}; use a \
                 smaller kernel or more padding",
                input.h,
                input.w
            );
        }
        Ok(Conv2d {
            input,
            core: ConvCore::new(geom, act),
        })
    }

    /// The same layer computing with W/σ(W) (Miyato et al. 2018), W viewed as [out, in·k·k].
    pub fn with_spectral_norm(mut self) -> Self {
        let g = &self.core.geom;
        self.core.sn = Some(SpectralNorm::row_major(g.co, g.ci * g.kh * g.kw));
        self
    }

    /// The weight the convolutions use: W/σ of the last forward, or W.
    pub(super) fn weight(&self, params: &[Tensor]) -> Tensor {
        self.core.weight(params)
    }
}

impl Module for Conv2d {
    fn describe(&self) -> String {
        self.core.describe("Conv2d", self.input, self.output())
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        let g = &self.core.geom;
        Shape::image(g.co, g.oh(), g.ow())
    }

    fn params(&self) -> Vec<ParamSpec> {
        let g = &self.core.geom;
        self.core.params(vec![g.co, g.ci, g.kh, g.kw], g.co)
    }

    fn state(&self) -> Vec<StateSpec> {
        self.core.state()
    }

    fn params_changed(
        &mut self,
        be: &mut dyn Backend,
        params: &[Tensor],
        state: &[Tensor],
        first: bool,
    ) {
        self.core.params_changed(be, params, state, first);
    }

    fn flops(&self, rows: usize) -> f64 {
        2.0 * self.core.rows(rows).macs()
    }

    fn alloc(&mut self, be: &mut dyn Backend, max_rows: usize, label: &str) -> Result<()> {
        let out = self.output().len();
        self.core.alloc(be, max_rows, out, label)
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        let g = self.core.rows(f.rows);
        let store = Store::Act {
            bias: Some(f.params[1]),
            act: self.core.act,
        };
        let w = self.core.forward_weight(be, f.params, f.state);
        conv2d_forward(be, &g, f.y, f.x, w, store);
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        let g = self.core.rows(b.rows);
        let delta = self.core.delta(be, b, b.rows * g.out_len());
        if let Some(grads) = b.grads {
            let dw = (grads[0], WriteMode::Overwrite);
            self.core.weight_grad(be, &g, dw, b.x, delta, b.state);
            let db = (grads[1], WriteMode::Overwrite);
            bias_backward_nchw(be, db, delta, g.n, g.co, g.ohw());
        }
        if let Some(dx) = b.dx {
            let w = self.weight(b.params);
            conv2d_backward_input(be, &g, dx, delta, w, self.core.below_store(b.x));
        }
    }

    fn check_tangent(&self) -> Result<()> {
        self.core.tangent_supported(&self.describe())
    }

    fn tangent(&mut self, be: &mut dyn Backend, t: &Tangent) -> Result<()> {
        let delta = self.core.check_tangent(&self.describe())?;
        let g = self.core.rows(t.rows);
        // v_out = conv(v_in, W) ⊙ act'(y): the forward without bias, masked like δ.
        let store = Store::ActGrad {
            act: self.core.act,
            y: t.y,
        };
        conv2d_forward(be, &g, t.v_out, t.v_in, self.weight(t.params), store);
        let dw = (t.grads[0], WriteMode::Accumulate);
        self.core.weight_grad(be, &g, dw, t.v_in, delta, t.state);
        Ok(())
    }

    fn fused_activation(&self) -> Option<Activation> {
        Some(self.core.act)
    }

    fn set_grad_pre_activation(&mut self) {
        self.core.grad_pre_act = true;
    }

    fn fuse_activation_below(&mut self, act: Activation) -> bool {
        self.core.below = Some(act);
        true
    }
    fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        params: &[&[f32]],
        state: &[&[f32]],
    ) -> Result<String> {
        self.core
            .onnx(g, "Conv", x, self.params()[0].shape.clone(), params, state)
    }
}

#[cfg(test)]
mod tests {
    use super::super::conv_transpose::ConvTranspose2d;
    use super::super::{Layer, NetSpec};
    use super::*;

    #[test]
    fn shapes_and_parameters_are_pytorchs() {
        // nn.Conv2d(1, 64, 4, 2, 1) on 28×28: 64×14×14, weight [64, 1, 4, 4], bound 1/√16.
        let c = Conv2d::new(Shape::image(1, 28, 28), 64, 4, 2, 1, Activation::Identity).unwrap();
        assert_eq!(c.output(), Shape::image(64, 14, 14));
        let p = c.params();
        assert_eq!(p[0].shape, vec![64, 1, 4, 4]);
        assert_eq!(p[1].shape, vec![64]);
        assert_eq!(p[0].init, Init::Uniform(0.25));
        assert_eq!(p[1].init, Init::Uniform(0.25));
        // nn.ConvTranspose2d(128, 64, 4, 2, 1) on 7×7: 64×14×14, weight [128, 64, 4, 4], and
        // PyTorch's fan_in reads weight dim 1: 64·4·4.
        let t = ConvTranspose2d::new(Shape::image(128, 7, 7), 64, 4, 2, 1, Activation::Identity)
            .unwrap();
        assert_eq!(t.output(), Shape::image(64, 14, 14));
        let p = t.params();
        assert_eq!(p[0].shape, vec![128, 64, 4, 4]);
        assert_eq!(p[1].shape, vec![64]);
        assert_eq!(p[0].init, Init::Uniform(1.0 / (64.0f32 * 16.0).sqrt()));
        // Odd sizes: (9 + 2·2 − 5)/2 + 1 = 5; (5 − 1)·2 − 2·1 + 3 = 9.
        let c = Conv2d::new(Shape::image(3, 9, 8), 5, 5, 2, 2, Activation::Identity).unwrap();
        assert_eq!(c.output(), Shape::image(5, 5, 4));
        let t =
            ConvTranspose2d::new(Shape::image(3, 5, 4), 2, 3, 2, 1, Activation::Identity).unwrap();
        assert_eq!(t.output(), Shape::image(2, 9, 7));
        // FLOPs as the PyTorch peer counts them: 2 · output numel · in · k · k per sample.
        assert_eq!(c.flops(2), 2.0 * 2.0 * (5 * 5 * 4) as f64 * (3 * 25) as f64);
    }

    #[test]
    fn bad_geometry_is_a_one_line_error() {
        let conv = |out, k, stride, pad| Layer::Conv2d {
            out,
            k,
            stride,
            pad,
        };
        let spec = |input, layers| NetSpec { input, layers };
        let e = spec(Shape::image(1, 3, 3), vec![conv(2, 5, 1, 0)])
            .build("D")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("D: layer 0") && e.contains("larger than its input 3×3"),
            "{e}"
        );
        let e = spec(Shape::image(1, 8, 8), vec![conv(2, 3, 0, 0)])
            .build("D")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("stride must be at least 1"), "{e}");
        let t = Layer::ConvTranspose2d {
            out: 2,
            k: 1,
            stride: 1,
            pad: 1,
        };
        let e = spec(Shape::image(1, 1, 1), vec![t])
            .build("G")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("has no output"), "{e}");
        // A convolution followed by an activation is one module, as a Linear is.
        let built = spec(
            Shape::image(1, 8, 8),
            vec![
                conv(2, 3, 1, 1),
                Layer::Act(Activation::Relu),
                Layer::Linear(1),
            ],
        )
        .build("D")
        .unwrap();
        assert_eq!(built.modules.len(), 2);
        assert_eq!(built.modules[1].index, 2);
        assert!(built.modules[0].module.describe().ends_with("+ ReLU"));
    }
}

//! Layers as modules. A network is described as data (`Layer`, a list of which is a `NetSpec`)
//! and built into modules: one file per layer kind, each implementing `Module` — its output
//! shape, its parameter tensors (names, PyTorch shapes, initialisation), its persistent state,
//! its forward, its backward (which writes parameter gradients), and the tangent pass gradient
//! penalties need. Names in checkpoints, parameter counts, the model description and the
//! benchmark's FLOP counts all come from the modules.
//!
//! Adding a layer kind: its file here (a `Module`), and one variant of `Layer` with its arm in
//! `build`.

pub mod activation;
pub mod attention;
pub mod augment;
pub mod avgpool;
pub mod batch_norm;
pub mod built;
pub mod class_embedding;
pub mod conditional_batch_norm;
pub mod conv;
pub mod conv_transpose;
pub mod dropout;
pub mod equalized_lr;
pub mod linear;
pub mod maxout;
pub mod minibatch_std;
pub mod pixel_norm;
pub mod progressive;
pub mod projection;
pub mod reshape;
pub mod residual;
pub mod sequence;
pub mod spectral_norm;
pub mod sum_pool;
pub mod upsample;

use crate::backend::{Activation, Backend, Tensor};
use crate::rng::RngKey;
use anyhow::{Result, bail};
pub use built::{BuiltNet, NamedTensor};
use serde::{Deserialize, Serialize};

/// One sample's shape: channels × height × width. A flat vector of n values is (n, 1, 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    pub const fn flat(n: usize) -> Shape {
        Shape { c: n, h: 1, w: 1 }
    }

    pub const fn image(c: usize, h: usize, w: usize) -> Shape {
        Shape { c, h, w }
    }

    /// Values per sample.
    pub const fn len(self) -> usize {
        self.c * self.h * self.w
    }

    pub const fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub const fn is_flat(self) -> bool {
        self.h == 1 && self.w == 1
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_flat() {
            write!(f, "{}", self.c)
        } else {
            write!(f, "{}×{}×{}", self.c, self.h, self.w)
        }
    }
}

/// How a parameter tensor starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// U(−bound, bound).
    Uniform(f32),
    /// N(0, std²).
    Normal(f32),
    Const(f32),
}

/// One trainable tensor of a module.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// The PyTorch name ("weight", "bias").
    pub name: &'static str,
    /// Its shape in PyTorch's layout (a Linear weight is [out, in]).
    pub shape: Vec<usize>,
    /// Stored as the transpose of `shape` (a 2-D tensor kept [in, out] so y = x·W).
    pub transposed: bool,
    pub init: Init,
}

impl ParamSpec {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One persistent, non-trainable tensor of a module (batch-norm statistics, spectral norm's
/// vector): checkpointed, never updated by the optimizer.
#[derive(Clone, Debug, PartialEq)]
pub struct StateSpec {
    pub name: &'static str,
    /// PyTorch's shape ([] for a scalar, one value).
    pub shape: Vec<usize>,
    pub init: f32,
    /// A count (batch norm's num_batches_tracked): kept as f32 in the flat state buffer (exact
    /// to 2²⁴) and stored as PyTorch's int64 in checkpoints.
    pub integer: bool,
}

/// What a module's forward reads and writes.
pub struct Fwd<'a> {
    /// Input, [rows, input.len()].
    pub x: Tensor,
    /// Output, [rows, output.len()].
    pub y: Tensor,
    pub rows: usize,
    /// This module's parameter tensors (views of the network's flat buffer, `params()` order).
    pub params: &'a [Tensor],
    pub state: &'a [Tensor],
    pub train: bool,
    /// Each row's class (u32 [rows]), for the conditional layers.
    pub labels: Option<Tensor>,
}

/// What a module's backward reads and writes.
pub struct Bwd<'a> {
    /// The last forward's input and output.
    pub x: Tensor,
    pub y: Tensor,
    /// Gradient w.r.t. the output (w.r.t. the pre-activation when the module above applied
    /// this one's activation gradient; see `Module::set_grad_pre_activation`).
    pub dy: Tensor,
    /// Where the gradient w.r.t. the input goes, when wanted.
    pub dx: Option<Tensor>,
    pub rows: usize,
    pub params: &'a [Tensor],
    /// Parameter gradients to overwrite, when wanted.
    pub grads: Option<&'a [Tensor]>,
    pub state: &'a [Tensor],
    /// Each row's class, as the forward saw it.
    pub labels: Option<Tensor>,
}

/// The tangent pass of a gradient penalty (see ../shared/GAN-MATH.md): after a backward to the
/// input, v flows forward through each module's linear part and activation mask (no bias), and
/// each module adds its weight-gradient term from (v_in, the δ its last backward saw).
pub struct Tangent<'a> {
    pub x: Tensor,
    pub y: Tensor,
    pub v_in: Tensor,
    pub v_out: Tensor,
    pub rows: usize,
    pub params: &'a [Tensor],
    /// Parameter gradients to add the penalty's terms to.
    pub grads: &'a [Tensor],
    pub state: &'a [Tensor],
    /// Each row's class, as the forward saw it.
    pub labels: Option<Tensor>,
}

/// The stream of random numbers a network's modules draw from (dropout masks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetRng {
    pub seed: u64,
    pub counter: u64,
}

impl NetRng {
    /// A key for `n` fresh draws.
    pub fn take(&mut self, n: usize) -> RngKey {
        let key = RngKey::new(self.seed, crate::rng::stream::DROPOUT, self.counter);
        self.counter += n as u64;
        key
    }
}

/// A built layer.
pub trait Module: Send {
    /// "Linear(784 → 1024) + LeakyReLU(0.2)".
    fn describe(&self) -> String;
    fn input(&self) -> Shape;
    fn output(&self) -> Shape;
    /// Trainable tensors, in the order they sit in the network's flat parameter buffer.
    fn params(&self) -> Vec<ParamSpec> {
        Vec::new()
    }
    fn state(&self) -> Vec<StateSpec> {
        Vec::new()
    }
    /// Floating-point operations of one forward over `rows` samples (backward is about twice).
    fn flops(&self, _rows: usize) -> f64 {
        0.0
    }
    /// Scratch buffers for batches of up to `max_rows`.
    fn alloc(&mut self, _be: &mut dyn Backend, _max_rows: usize, _label: &str) -> Result<()> {
        Ok(())
    }
    /// The output is the input, reinterpreted (no kernel runs and no buffer is needed).
    fn is_view(&self) -> bool {
        false
    }
    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, rng: &mut NetRng);
    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd);
    fn tangent(&mut self, _be: &mut dyn Backend, _t: &Tangent) -> Result<()> {
        self.check_tangent()
    }
    /// Ok when `tangent` runs exactly through this module; checked before training, so a
    /// gradient penalty through a module without one is refused up front.
    fn check_tangent(&self) -> Result<()> {
        bail!(
            "{} has no tangent pass, so a gradient penalty cannot be taken through it",
            self.describe()
        )
    }
    /// The parameters changed: after an optimizer step, or (`first`) when they were just set.
    /// State that follows the weights is brought up to date here (spectral norm's power
    /// iteration).
    fn params_changed(
        &mut self,
        _be: &mut dyn Backend,
        _params: &[Tensor],
        _state: &[Tensor],
        _first: bool,
    ) {
    }

    /// Progressive growing: the resolution level (0 = 4×4) a progressive network runs at and the
    /// fade-in's α (1 = not fading). Other modules ignore it.
    fn set_growth(&mut self, _level: usize, _alpha: f32) {}

    // ---- batch statistics (batch norm) -------------------------------------------------------

    /// Whether this module normalises with batch statistics and keeps running ones.
    fn batch_statistics(&self) -> bool {
        false
    }
    /// While on, training forwards average their batch statistics with equal weights since it
    /// was turned on, instead of the moving average (recomputing the running statistics for
    /// fixed weights: "standing statistics").
    fn set_standing_statistics(&mut self, _on: bool) {}

    // ---- fusion, decided by `build` ----------------------------------------------------------

    /// The activation this module applies to its output, when its backward can take the
    /// gradient w.r.t. the pre-activation instead (so the module above may apply it).
    fn fused_activation(&self) -> Option<Activation> {
        None
    }
    /// From now on the gradient this module receives is w.r.t. its pre-activation.
    fn set_grad_pre_activation(&mut self) {}
    /// Asks this module to multiply its input gradient by f' of `act`, the activation that
    /// produced its input; true if it will.
    fn fuse_activation_below(&mut self, _act: Activation) -> bool {
        false
    }

    // ---- export -------------------------------------------------------------------------------

    /// Appends this module's inference forward (as `forward` with train = false) to an ONNX
    /// graph: `x` names the input ([N, n] when `input()` is flat, else [N, C, H, W]),
    /// `params` and `state` hold its tensors' values in `params()` and `state()` order.
    /// Returns the output's name.
    fn onnx(
        &self,
        _g: &mut crate::onnx::OnnxGraph,
        _x: &str,
        _params: &[&[f32]],
        _state: &[&[f32]],
    ) -> Result<String> {
        bail!("{} has no ONNX export", self.describe())
    }
}

/// A layer as data: what presets and configs are made of.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// A fully connected layer with this many outputs: y = x·Wᵀ + b (PyTorch's nn.Linear).
    Linear(usize),
    Act(Activation),
    /// Max over consecutive groups of this many inputs (follows a Linear of units × pieces).
    Maxout(usize),
    /// Inverted dropout keeping each input with this probability while training.
    Dropout(f32),
    /// Spectral normalization of the next layer's weight (PyTorch's `spectral_norm(layer)`;
    /// it is no module of its own and takes no index in the PyTorch `nn.Sequential`).
    SpectralNorm,
    /// Batch normalisation per channel (PyTorch's BatchNorm1d/2d): over the batch and every
    /// position of (C, H, W) inputs, over the batch for flat ones.
    BatchNorm,
    /// Nearest-neighbour upsampling: (C, H, W) → (C, 2H, 2W).
    Upsample2x,
    /// The same values seen as another shape (flat ↔ (C, H, W)); free.
    Reshape(Shape),
    /// A 2-D convolution with `out` channels, a k×k kernel, stride and zero padding, and a
    /// bias (PyTorch's nn.Conv2d); an activation right after it is fused into it.
    Conv2d {
        out: usize,
        k: usize,
        stride: usize,
        pad: usize,
    },
    /// A 2-D transposed convolution (PyTorch's nn.ConvTranspose2d, output_padding 0) with
    /// `out` channels and a bias; an activation right after it is fused into it.
    ConvTranspose2d {
        out: usize,
        k: usize,
        stride: usize,
        pad: usize,
    },
    /// A learned class embedding of `dim` values concatenated after flat noise (a conditional
    /// MLP generator's first layer).
    ClassEmbedding {
        classes: usize,
        dim: usize,
    },
    /// Batch norm whose γ and β are chosen by each sample's class (a conditional generator).
    ConditionalBatchNorm {
        classes: usize,
    },
    /// The projection discriminator's head: a Linear to one output plus ⟨E[y], features⟩.
    Projection {
        classes: usize,
    },
    /// Pixelwise feature normalisation over the channels (ProGAN's G).
    PixelNorm,
    /// The minibatch standard-deviation channel over groups of this many rows (ProGAN's D).
    MinibatchStd(usize),
    /// 2× average pooling: (C, H, W) → (C, H/2, W/2).
    AvgPool2x,
    /// Global sum pooling: (C, H, W) → C, the sum over each channel's positions (SNGAN's
    /// critic).
    SumPool,
    /// Equalized learning rate with this gain for the next Linear or Conv2d: weights drawn
    /// from N(0, 1), scaled at run time by gain/sqrt(fan_in); no index in PyTorch's numbering.
    EqualizedLr(f32),
    /// ProGAN's whole generator, growing from 4×4 (see `progressive`).
    ProGenerator(progressive::ProSpec),
    /// ProGAN's whole critic.
    ProDiscriminator(progressive::ProSpec),
    /// Self-attention over the positions of a (C, H, W) input (SAGAN's `Self_Attn`): query and
    /// key 1×1 convolutions to C/8 channels, value to C, y = γ·v·softmax(qᵀk)ᵀ + x, γ from 0.
    SelfAttention,
    /// A residual block: `main` and `skip` (each a list of layers, built as a network's) run on
    /// the same input and summed; an empty `skip` is the identity. Its tensors are named as a
    /// PyTorch module with `main` and `skip` children ("3.main.1.weight", "3.skip.0.weight").
    Residual {
        main: Vec<Layer>,
        skip: Vec<Layer>,
    },
    /// DiffAugment of D's input while training: every `image` of an input row (one, or a pack)
    /// transformed by `policy`; no index in PyTorch's numbering.
    Augment {
        image: Shape,
        policy: augment::Policy,
    },
}

/// A network's shape: its input and layers in order.
#[derive(Clone, Debug, PartialEq)]
pub struct NetSpec {
    pub input: Shape,
    pub layers: Vec<Layer>,
}

/// A built module and the index of the first `Layer` it came from (its key in a PyTorch
/// `nn.Sequential` of the unfused layers).
pub struct Built {
    pub index: usize,
    pub module: Box<dyn Module>,
}

impl NetSpec {
    pub fn flat(input: usize, layers: Vec<Layer>) -> Self {
        NetSpec {
            input: Shape::flat(input),
            layers,
        }
    }

    /// Builds the network once (see `build_modules`), which must have parameters; the error
    /// names `name` and the layer that does not fit.
    pub fn build(&self, name: &str) -> Result<BuiltNet> {
        let out = self.build_modules(name)?;
        if out.iter().all(|b| b.module.params().is_empty()) {
            bail!("{name}: a network needs at least one layer with parameters");
        }
        Ok(BuiltNet::new(name, self.input, out))
    }

    /// Builds the modules: each layer in turn from the shape before it, a Linear followed by
    /// an activation fused into one module, and each activation's gradient fused into the
    /// input-gradient product of the module above it where that module can take it.
    pub fn build_modules(&self, name: &str) -> Result<Vec<Built>> {
        if self.input.is_empty() {
            bail!("{name}: the input must hold at least one value");
        }
        let mut out: Vec<Built> = Vec::new();
        let mut shape = self.input;
        let mut i = 0;
        // Spectral-norm markers so far (they take no index in PyTorch's nn.Sequential), and
        // whether the layer at i is preceded by one.
        let (mut markers, mut sn) = (0, false);
        // A pending equalized-learning-rate marker's gain.
        let mut eq: Option<f32> = None;
        while i < self.layers.len() {
            let at = |what: String| anyhow::anyhow!("{name}: layer {i} ({what})");
            if sn
                && !matches!(
                    self.layers[i],
                    Layer::Linear(_)
                        | Layer::Conv2d { .. }
                        | Layer::ConvTranspose2d { .. }
                        | Layer::Projection { .. }
                        | Layer::SelfAttention
                )
            {
                bail!(
                    "{name}: layer {}: SpectralNorm must come right before a Linear, Conv2d, \
                     ConvTranspose2d, Projection or SelfAttention layer, whose weights it \
                     normalises",
                    i - 1
                );
            }
            if eq.is_some() && !matches!(self.layers[i], Layer::Linear(_) | Layer::Conv2d { .. }) {
                bail!(
                    "{name}: layer {}: EqualizedLr must come right before a Linear or Conv2d \
                     layer, whose weight it scales",
                    i - 1
                );
            }
            let module: Box<dyn Module> = match self.layers[i].clone() {
                Layer::EqualizedLr(gain) => {
                    if sn {
                        bail!(
                            "{name}: layer {i}: spectral norm and equalized learning rate do not combine"
                        );
                    }
                    (markers, eq) = (markers + 1, Some(gain));
                    i += 1;
                    continue;
                }
                Layer::Augment { image, policy } => {
                    let m = augment::Augment::new(shape, image, policy)
                        .map_err(|e| at(e.to_string()))?;
                    out.push(Built {
                        index: i - markers,
                        module: Box::new(m),
                    });
                    // A function applied before D in PyTorch, not one of its modules.
                    markers += 1;
                    i += 1;
                    continue;
                }
                Layer::PixelNorm => Box::new(pixel_norm::PixelNorm::new(shape)),
                Layer::MinibatchStd(g) => Box::new(
                    minibatch_std::MinibatchStd::new(shape, g).map_err(|e| at(e.to_string()))?,
                ),
                Layer::AvgPool2x => {
                    Box::new(avgpool::AvgPool2x::new(shape).map_err(|e| at(e.to_string()))?)
                }
                Layer::SumPool => {
                    Box::new(sum_pool::SumPool::new(shape).map_err(|e| at(e.to_string()))?)
                }
                Layer::ProGenerator(p) => Box::new(
                    progressive::ProGenerator::new(shape, p).map_err(|e| at(e.to_string()))?,
                ),
                Layer::ProDiscriminator(p) => Box::new(
                    progressive::ProDiscriminator::new(shape, p).map_err(|e| at(e.to_string()))?,
                ),
                Layer::SpectralNorm => {
                    (markers, sn) = (markers + 1, true);
                    i += 1;
                    continue;
                }
                Layer::Linear(n) => {
                    let act = match self.layers.get(i + 1) {
                        Some(Layer::Act(a)) => Some(*a),
                        _ => None,
                    };
                    let mut m = linear::Linear::new(shape, n, act.unwrap_or(Activation::Identity))
                        .map_err(|e| at(e.to_string()))?;
                    if std::mem::take(&mut sn) {
                        m = m.with_spectral_norm();
                    }
                    let m: Box<dyn Module> = match eq.take() {
                        Some(gain) => Box::new(
                            equalized_lr::EqualizedLr::new(Box::new(m), gain)
                                .map_err(|e| at(e.to_string()))?,
                        ),
                        None => Box::new(m),
                    };
                    out.push(Built {
                        index: i - markers,
                        module: m,
                    });
                    i += 1 + act.is_some() as usize;
                    shape = out.last().expect("just pushed").module.output();
                    continue;
                }
                Layer::Act(a) => Box::new(activation::Act::new(shape, a)),
                Layer::Maxout(p) => {
                    Box::new(maxout::Maxout::new(shape, p).map_err(|e| at(e.to_string()))?)
                }
                Layer::Dropout(q) => {
                    Box::new(dropout::Dropout::new(shape, q).map_err(|e| at(e.to_string()))?)
                }
                Layer::BatchNorm => Box::new(batch_norm::BatchNorm::new(shape)),
                Layer::ClassEmbedding { classes, dim } => Box::new(
                    class_embedding::ClassEmbedding::new(shape, classes, dim)
                        .map_err(|e| at(e.to_string()))?,
                ),
                Layer::ConditionalBatchNorm { classes } => Box::new(
                    conditional_batch_norm::ConditionalBatchNorm::new(shape, classes)
                        .map_err(|e| at(e.to_string()))?,
                ),
                Layer::Projection { classes } => {
                    let m = projection::Projection::new(shape, classes)
                        .map_err(|e| at(e.to_string()))?;
                    if std::mem::take(&mut sn) {
                        Box::new(m.with_spectral_norm())
                    } else {
                        Box::new(m)
                    }
                }
                Layer::Upsample2x => Box::new(upsample::Upsample2x::new(shape)),
                Layer::SelfAttention => {
                    let m = attention::SelfAttention::new(shape).map_err(|e| at(e.to_string()))?;
                    if std::mem::take(&mut sn) {
                        Box::new(m.with_spectral_norm())
                    } else {
                        Box::new(m)
                    }
                }
                Layer::Reshape(to) => {
                    Box::new(reshape::Reshape::new(shape, to).map_err(|e| at(e.to_string()))?)
                }
                Layer::Residual { main, skip } => Box::new(
                    residual::Residual::new(shape, &main, &skip)
                        .map_err(|e| at(format!("residual block: {e}")))?,
                ),
                Layer::Conv2d { .. } | Layer::ConvTranspose2d { .. } => {
                    // A convolution followed by an activation becomes one module, as Linear.
                    let act = match self.layers.get(i + 1) {
                        Some(Layer::Act(a)) => Some(*a),
                        _ => None,
                    };
                    let a = act.unwrap_or(Activation::Identity);
                    let m: Box<dyn Module> = match self.layers[i] {
                        Layer::Conv2d {
                            out: c,
                            k,
                            stride,
                            pad,
                        } => {
                            let m = conv::Conv2d::new(shape, c, k, stride, pad, a)
                                .map_err(|e| at(e.to_string()))?;
                            if std::mem::take(&mut sn) {
                                Box::new(m.with_spectral_norm())
                            } else {
                                Box::new(m)
                            }
                        }
                        Layer::ConvTranspose2d {
                            out: c,
                            k,
                            stride,
                            pad,
                        } => {
                            let m =
                                conv_transpose::ConvTranspose2d::new(shape, c, k, stride, pad, a)
                                    .map_err(|e| at(e.to_string()))?;
                            if std::mem::take(&mut sn) {
                                Box::new(m.with_spectral_norm())
                            } else {
                                Box::new(m)
                            }
                        }
                        _ => unreachable!("matched above"),
                    };
                    let m: Box<dyn Module> = match eq.take() {
                        Some(gain) => Box::new(
                            equalized_lr::EqualizedLr::new(m, gain)
                                .map_err(|e| at(e.to_string()))?,
                        ),
                        None => m,
                    };
                    out.push(Built {
                        index: i - markers,
                        module: m,
                    });
                    i += 1 + act.is_some() as usize;
                    shape = out.last().expect("just pushed").module.output();
                    continue;
                }
            };
            shape = module.output();
            out.push(Built {
                index: i - markers,
                module,
            });
            i += 1;
        }
        if sn || eq.is_some() {
            bail!(
                "{name}: the last layer is a marker (SpectralNorm, EqualizedLr) with no weight layer after it"
            );
        }
        for j in 1..out.len() {
            if let Some(act) = out[j - 1].module.fused_activation()
                && act != Activation::Identity
                && out[j].module.fuse_activation_below(act)
            {
                out[j - 1].module.set_grad_pre_activation();
            }
        }
        Ok(out)
    }

    pub fn validate(&self, name: &str) -> Result<()> {
        self.build(name).map(|_| ())
    }

    /// The class count of a conditional network (one with a class embedding, conditional batch
    /// norm or a projection head), or None.
    pub fn classes(&self) -> Option<usize> {
        layers_classes(&self.layers)
    }
}

/// The class count of the first conditional layer in `layers` (residual paths included).
fn layers_classes(layers: &[Layer]) -> Option<usize> {
    layers.iter().find_map(|l| match l {
        Layer::ClassEmbedding { classes, .. }
        | Layer::ConditionalBatchNorm { classes }
        | Layer::Projection { classes } => Some(*classes),
        Layer::Residual { main, skip } => layers_classes(main).or_else(|| layers_classes(skip)),
        _ => None,
    })
}

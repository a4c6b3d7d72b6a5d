//! 2-D convolution over NCHW batches (a batch buffer is [rows, C·H·W]), and its adjoint, the
//! transposed convolution. Three implicit-GEMM kernels and a per-channel bias gradient:
//!
//! - `conv2d_forward`: y = act(conv(x, w) + b), or conv(x, w) ⊙ f'(y) (`shaders/conv2d_forward.wgsl`);
//! - `conv2d_backward_input`: dx = convᵀ(dy, w) (+ b, act), or ⊙ f'(y): a gather split into
//!   stride² phases (`shaders/conv2d_backward_input.wgsl`);
//! - `conv2d_backward_weights`: dw (+)= Σ dy ⊗ x, split over the batch into partial slices
//!   summed in a fixed order (`shaders/conv2d_backward_weights.wgsl`);
//! - `bias_backward_nchw`: db[c] (+)= Σ_{n,pixel} dy (`shaders/bias_backward_nchw.wgsl`).
//!
//! All speak in the geometry of a convolution (`ConvGeom`: x [n, ci, h, w] → y [n, co, oh, ow],
//! weight [co, ci, kh, kw], PyTorch's Conv2d layout). ConvTranspose2d(in, out) is the same
//! geometry with ci = out and co = in (its weight [in, out, kh, kw] is the convolution's
//! [co, ci, kh, kw] as stored): its forward is `conv2d_backward_input`, its input gradient
//! `conv2d_forward`, its weight gradient `conv2d_backward_weights` with x and dy swapped.
//! The fast CPU twins (im2col + the `gemm` crate) are in `conv_cpu.rs`, the cases in
//! `conv_cases.rs`.

use super::conv_cases::{Which, bench_bias, bench_rows, bias_cases, cases};
use super::{Binding, KernelDef, Shader, Work, cast, launch, u};
use crate::backend::{Activation, Backend, Tensor, WriteMode};
use crate::kernels::activation::{activation, activation_grad};

/// A convolution's shape: x [n, ci, h, w] → y [n, co, oh, ow] with a kh×kw kernel, `stride` and
/// zero padding `pad` on every side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeom {
    pub n: usize,
    pub ci: usize,
    pub h: usize,
    pub w: usize,
    pub co: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeom {
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.pad - self.kh) / self.stride + 1
    }

    pub fn ow(&self) -> usize {
        (self.w + 2 * self.pad - self.kw) / self.stride + 1
    }

    /// Output pixels per channel.
    pub fn ohw(&self) -> usize {
        self.oh() * self.ow()
    }

    /// Taps per output channel: ci·kh·kw (the GEMM's K in the forward).
    pub fn taps(&self) -> usize {
        self.ci * self.kh * self.kw
    }

    /// Values of one sample's input, ci·h·w.
    pub fn in_len(&self) -> usize {
        self.ci * self.h * self.w
    }

    /// Values of one sample's output, co·oh·ow.
    pub fn out_len(&self) -> usize {
        self.co * self.ohw()
    }

    pub fn weight_len(&self) -> usize {
        self.co * self.taps()
    }

    /// Multiply-adds of one forward over the batch (each backward product does as many).
    pub fn macs(&self) -> f64 {
        (self.n * self.co * self.ohw()) as f64 * self.taps() as f64
    }

    /// The kernel fits the padded input.
    pub fn is_valid(&self) -> bool {
        self.stride > 0
            && self.kh > 0
            && self.kw > 0
            && self.kh <= self.h + 2 * self.pad
            && self.kw <= self.w + 2 * self.pad
    }

    fn from_words(w: [u32; 9]) -> Self {
        let [n, ci, h, wd, co, kh, kw, stride, pad] = w.map(|v| v as usize);
        ConvGeom {
            n,
            ci,
            h,
            w: wd,
            co,
            kh,
            kw,
            stride,
            pad,
        }
    }

    fn words(&self) -> [u32; 9] {
        [
            self.n,
            self.ci,
            self.h,
            self.w,
            self.co,
            self.kh,
            self.kw,
            self.stride,
            self.pad,
        ]
        .map(u)
    }

    /// "n=128 64→128 14×14 k4 s2 p1".
    pub fn describe(&self) -> String {
        format!(
            "n={} {}→{} {}×{} k{}{} s{} p{}",
            self.n,
            self.ci,
            self.co,
            self.h,
            self.w,
            self.kh,
            if self.kw == self.kh {
                String::new()
            } else {
                format!("×{}", self.kw)
            },
            self.stride,
            self.pad
        )
    }
}

pub const FLAG_BIAS: u32 = 1;
pub const FLAG_ACT_GRAD: u32 = 8;

crate::params! {
    /// `conv2d_forward`'s parameters: the geometry, then the store step.
    pub struct ConvParams {
        pub n: u32,
        pub ci: u32,
        pub h: u32,
        pub w: u32,
        pub co: u32,
        pub kh: u32,
        pub kw: u32,
        pub stride: u32,
        pub pad: u32,
        /// FLAG_BIAS: + bias[co] then act; FLAG_ACT_GRAD: ⊙ f'(y), y bound as `bias`.
        pub flags: u32,
        pub act: u32,
        pub alpha: f32,
        pub x_off: u32,
        pub weight_off: u32,
        pub bias_off: u32,
        pub y_off: u32,
    }
}

crate::params! {
    /// `conv2d_backward_input`'s parameters (h, w are dx's).
    pub struct ConvInputGradParams {
        pub n: u32,
        pub ci: u32,
        pub h: u32,
        pub w: u32,
        pub co: u32,
        pub kh: u32,
        pub kw: u32,
        pub stride: u32,
        pub pad: u32,
        /// FLAG_BIAS: + bias[ci] then act; FLAG_ACT_GRAD: ⊙ f'(y), y bound as `bias`.
        pub flags: u32,
        pub act: u32,
        pub alpha: f32,
        pub dy_off: u32,
        pub weight_off: u32,
        pub bias_off: u32,
        pub dx_off: u32,
    }
}

crate::params! {
    pub struct ConvWeightsParams {
        pub n: u32,
        pub ci: u32,
        pub h: u32,
        pub w: u32,
        pub co: u32,
        pub kh: u32,
        pub kw: u32,
        pub stride: u32,
        pub pad: u32,
        /// Add to dw (with splits = 1).
        pub accumulate: u32,
        /// Batch slices, each summed into its own [co, ci·kh·kw] slice of dw when > 1.
        pub splits: u32,
        pub x_off: u32,
        pub dy_off: u32,
        pub dw_off: u32,
    }
}

crate::params! {
    pub struct BiasNchwParams {
        pub n: u32,
        pub c: u32,
        pub hw: u32,
        pub accumulate: u32,
        pub dy_off: u32,
        pub db_off: u32,
    }
}

/// `geom`, `new` and `store` of the two params structs that carry a fused activation (the
/// forward and the input gradient: the same fields, two WGSL entry points).
macro_rules! conv_act_params {
    ($($t:ident),*) => {$(
        impl $t {
            pub fn geom(&self) -> ConvGeom {
                let p = self;
                ConvGeom::from_words([p.n, p.ci, p.h, p.w, p.co, p.kh, p.kw, p.stride, p.pad])
            }

            pub fn new(g: &ConvGeom, flags: u32, act: Activation) -> Self {
                let [n, ci, h, w, co, kh, kw, stride, pad] = g.words();
                $t {
                    n,
                    ci,
                    h,
                    w,
                    co,
                    kh,
                    kw,
                    stride,
                    pad,
                    flags,
                    act: act.code(),
                    alpha: act.alpha(),
                    ..Default::default()
                }
            }

            pub fn store(&self) -> StoreKind {
                StoreKind::of(self.flags, Activation::from_code(self.act, self.alpha))
            }
        }
    )*};
}
conv_act_params!(ConvParams, ConvInputGradParams);

impl ConvWeightsParams {
    pub fn geom(&self) -> ConvGeom {
        let p = self;
        ConvGeom::from_words([p.n, p.ci, p.h, p.w, p.co, p.kh, p.kw, p.stride, p.pad])
    }

    pub fn new(g: &ConvGeom, accumulate: bool, splits: usize) -> Self {
        let [n, ci, h, w, co, kh, kw, stride, pad] = g.words();
        ConvWeightsParams {
            n,
            ci,
            h,
            w,
            co,
            kh,
            kw,
            stride,
            pad,
            accumulate: accumulate as u32,
            splits: u(splits),
            ..Default::default()
        }
    }
}

/// The store step of the forward and input-gradient kernels, decoded from their flags.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StoreKind {
    /// act(v (+ bias[channel])).
    Act { bias: bool, act: Activation },
    /// v ⊙ f'(y) of `act`, y (shaped like the output) bound in the bias slot.
    ActGrad(Activation),
}

impl StoreKind {
    fn of(flags: u32, act: Activation) -> Self {
        if flags & FLAG_ACT_GRAD != 0 {
            StoreKind::ActGrad(act)
        } else {
            StoreKind::Act {
                bias: flags & FLAG_BIAS != 0,
                act,
            }
        }
    }

    /// The stored value from the product `v`, the channel's bias `b` or the output's y.
    #[inline(always)]
    pub fn apply(self, v: f32, extra: f32) -> f32 {
        match self {
            StoreKind::ActGrad(act) => activation_grad(act, v, extra),
            StoreKind::Act { bias, act } => activation(act, if bias { v + extra } else { v }),
        }
    }
}

/// What a launcher's store step does.
#[derive(Clone, Copy, Debug)]
pub enum Store {
    /// act(v + bias[channel]) (bias optional; Identity for none).
    Act {
        bias: Option<Tensor>,
        act: Activation,
    },
    /// v ⊙ f'(y): the gradient of the activation `act` whose output y has the result's shape.
    ActGrad { act: Activation, y: Tensor },
}

impl Store {
    pub const PLAIN: Store = Store::Act {
        bias: None,
        act: Activation::Identity,
    };

    /// (flags, act, the tensor bound as `bias`).
    fn parts(self, stand_in: Tensor) -> (u32, Activation, Tensor) {
        match self {
            Store::Act { bias, act } => (
                if bias.is_some() { FLAG_BIAS } else { 0 },
                act,
                bias.unwrap_or(stand_in),
            ),
            Store::ActGrad { act, y } => (FLAG_ACT_GRAD, act, y),
        }
    }
}

// ---- shaders and table entries -------------------------------------------------------------

/// The store step (bias, activation or activation gradient) of every forward and input-gradient
/// kernel, tiled or generated; needs `ACTIVATION_FNS` before it.
pub static EPILOGUE: Shader = Shader {
    name: "conv_epilogue",
    source: include_str!("../../shaders/conv_epilogue.wgsl"),
    preludes: &[],
};

pub static GEMM: Shader = Shader {
    name: "conv_gemm",
    source: include_str!("../../shaders/conv_gemm.wgsl"),
    preludes: &[&super::ACTIVATION_FNS, &EPILOGUE],
};

pub static FORWARD_SHADER: Shader = Shader {
    name: "conv2d_forward",
    source: include_str!("../../shaders/conv2d_forward.wgsl"),
    preludes: &[&GEMM],
};

pub static INPUT_GRAD_SHADER: Shader = Shader {
    name: "conv2d_backward_input",
    source: include_str!("../../shaders/conv2d_backward_input.wgsl"),
    preludes: &[&GEMM],
};

pub static WEIGHTS_SHADER: Shader = Shader {
    name: "conv2d_backward_weights",
    source: include_str!("../../shaders/conv2d_backward_weights.wgsl"),
    preludes: &[&GEMM],
};

pub static BIAS_NCHW_SHADER: Shader = Shader {
    name: "bias_backward_nchw",
    source: include_str!("../../shaders/bias_backward_nchw.wgsl"),
    preludes: &[],
};

/// Products with at most this many rows (output channels) run the narrow shape of
/// `shaders/conv_gemm.wgsl`: 256 pixels per workgroup, all rows of each in one invocation.
pub const NARROW: usize = 4;

/// 64-wide tiles of a GEMM dimension.
fn tiles(n: usize) -> u32 {
    u(n.div_ceil(64))
}

fn conv_work(g: &ConvGeom) -> Work {
    Work {
        flops: 2.0 * g.macs(),
        bytes: 4.0 * (g.n * (g.in_len() + g.out_len()) + g.weight_len()) as f64,
    }
}

pub static CONV2D_FORWARD: KernelDef = KernelDef {
    name: "conv2d_forward",
    shader: &FORWARD_SHADER,
    params: &<ConvParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("x"),
        Binding::read("weight"),
        Binding::read("bias"),
        Binding::write("y"),
    ],
    workgroups: |p| {
        let g = cast::<ConvParams>(p).geom();
        if g.co <= NARROW {
            return [u((g.n * g.ohw()).div_ceil(256)), 1, 1];
        }
        [tiles(g.n * g.ohw()), tiles(g.co), 1]
    },
    cpu: |p, b| {
        let p: ConvParams = cast(p);
        super::conv_cpu::conv2d_forward_cpu(&p.geom(), p.store(), b.w(3), b.r(0), b.r(1), b.r(2))
    },
    reference: |p, b| {
        let p: ConvParams = cast(p);
        conv2d_forward_ref(&p.geom(), p.store(), b.w(3), b.r(0), b.r(1), b.r(2))
    },
    cases: || cases(Which::Forward),
    bench: || bench_rows(Which::Forward),
    work: |p| conv_work(&cast::<ConvParams>(p).geom()),
};

pub static CONV2D_BACKWARD_INPUT: KernelDef = KernelDef {
    name: "conv2d_backward_input",
    shader: &INPUT_GRAD_SHADER,
    params: &<ConvInputGradParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("dy"),
        Binding::read("weight"),
        Binding::read("bias"),
        Binding::write("dx"),
    ],
    workgroups: |p| {
        let g = cast::<ConvInputGradParams>(p).geom();
        let s = g.stride;
        let phase_pixels = g.n * g.h.div_ceil(s) * g.w.div_ceil(s);
        if g.ci <= NARROW {
            return [u(phase_pixels.div_ceil(256)), 1, u(s * s)];
        }
        [tiles(phase_pixels), tiles(g.ci), u(s * s)]
    },
    cpu: |p, b| {
        let p: ConvInputGradParams = cast(p);
        super::conv_cpu::conv2d_backward_input_cpu(
            &p.geom(),
            p.store(),
            b.w(3),
            b.r(0),
            b.r(1),
            b.r(2),
        )
    },
    reference: |p, b| {
        let p: ConvInputGradParams = cast(p);
        conv2d_backward_input_ref(&p.geom(), p.store(), b.w(3), b.r(0), b.r(1), b.r(2))
    },
    cases: || cases(Which::InputGrad),
    bench: || bench_rows(Which::InputGrad),
    work: |p| conv_work(&cast::<ConvInputGradParams>(p).geom()),
};

pub static CONV2D_BACKWARD_WEIGHTS: KernelDef = KernelDef {
    name: "conv2d_backward_weights",
    shader: &WEIGHTS_SHADER,
    params: &<ConvWeightsParams as super::Params>::LAYOUT,
    bindings: &[
        Binding::read("x"),
        Binding::read("dy"),
        Binding::write("dw"),
    ],
    workgroups: |p| {
        let p: ConvWeightsParams = cast(p);
        let g = p.geom();
        [tiles(g.taps()), tiles(g.co), p.splits.max(1)]
    },
    cpu: |p, b| {
        let p: ConvWeightsParams = cast(p);
        super::conv_cpu::conv2d_backward_weights_cpu(
            &p.geom(),
            p.accumulate != 0,
            p.splits as usize,
            b.w(2),
            b.r(0),
            b.r(1),
        )
    },
    reference: |p, b| {
        let p: ConvWeightsParams = cast(p);
        conv2d_backward_weights_ref(
            &p.geom(),
            p.accumulate != 0,
            p.splits as usize,
            b.w(2),
            b.r(0),
            b.r(1),
        )
    },
    cases: || cases(Which::WeightGrad),
    bench: || bench_rows(Which::WeightGrad),
    work: |p| conv_work(&cast::<ConvWeightsParams>(p).geom()),
};

pub static BIAS_BACKWARD_NCHW: KernelDef = KernelDef {
    name: "bias_backward_nchw",
    shader: &BIAS_NCHW_SHADER,
    params: &<BiasNchwParams as super::Params>::LAYOUT,
    bindings: &[Binding::read("dy"), Binding::write("db")],
    workgroups: |p| [cast::<BiasNchwParams>(p).c, 1, 1],
    cpu: |p, b| {
        let p: BiasNchwParams = cast(p);
        let (n, c, hw) = (p.n as usize, p.c as usize, p.hw as usize);
        super::conv_cpu::bias_backward_nchw_cpu(b.w(1), b.r(0), n, c, hw, p.accumulate != 0)
    },
    reference: |p, b| {
        let p: BiasNchwParams = cast(p);
        let (n, c, hw) = (p.n as usize, p.c as usize, p.hw as usize);
        let (dy, db) = (b.r(0), b.w(1));
        for ch in 0..c {
            let mut s = 0.0f64;
            for i in 0..n {
                for q in 0..hw {
                    s += dy[(i * c + ch) * hw + q] as f64;
                }
            }
            db[ch] = if p.accumulate != 0 {
                db[ch] + s as f32
            } else {
                s as f32
            };
        }
    },
    cases: bias_cases,
    bench: bench_bias,
    work: |p| {
        let p: BiasNchwParams = cast(p);
        Work::elementwise(p.n * p.c * p.hw, 1)
    },
};

// ---- launchers -----------------------------------------------------------------------------

fn check(g: &ConvGeom, what: &str) {
    assert!(g.is_valid(), "{what}: invalid geometry {g:?}");
}

/// y [n, co, oh, ow] = store(conv(x [n, ci, h, w], w [co, ci, kh, kw])): a Conv2d's forward
/// (Store::Act with its bias and activation) or a ConvTranspose2d's input gradient
/// (Store::ActGrad of the activation below, or PLAIN).
pub fn conv2d_forward(
    be: &mut dyn Backend,
    g: &ConvGeom,
    y: Tensor,
    x: Tensor,
    w: Tensor,
    store: Store,
) {
    check(g, "conv2d_forward");
    if g.n == 0 {
        return;
    }
    let (flags, act, extra) = store.parts(w);
    launch(
        be,
        &CONV2D_FORWARD,
        ConvParams::new(g, flags, act),
        &[x, w, extra, y],
    );
}

/// dx [n, ci, h, w] = store(convᵀ(dy [n, co, oh, ow], w)): a Conv2d's input gradient
/// (Store::ActGrad of the activation below, or PLAIN) or a ConvTranspose2d's forward
/// (Store::Act with its bias and activation).
pub fn conv2d_backward_input(
    be: &mut dyn Backend,
    g: &ConvGeom,
    dx: Tensor,
    dy: Tensor,
    w: Tensor,
    store: Store,
) {
    check(g, "conv2d_backward_input");
    if g.n == 0 {
        return;
    }
    let (flags, act, extra) = store.parts(w);
    launch(
        be,
        &CONV2D_BACKWARD_INPUT,
        ConvInputGradParams::new(g, flags, act),
        &[dy, w, extra, dx],
    );
}

/// Batch slices the weight gradient is split into: enough 64×64 output tiles × slices to keep
/// a GPU's compute units busy (~128 workgroups), each slice summing at least ~1024 products.
pub fn weight_grad_splits(g: &ConvGeom) -> usize {
    let tiles = g.co.div_ceil(64) * g.taps().div_ceil(64);
    let by_work = (g.n * g.ohw() / 1024).max(1);
    128usize.div_ceil(tiles).min(by_work).min(g.n).max(1)
}

/// dw [co, ci, kh, kw] (+)= Σ_{n, pixel} dy ⊗ x: a Conv2d's weight gradient; a
/// ConvTranspose2d's with its dy as `x` and its input as `dy`. `partials` holds
/// `weight_grad_splits(g)` slices of dw's size (or fewer, down to none: fewer slices).
pub fn conv2d_backward_weights(
    be: &mut dyn Backend,
    g: &ConvGeom,
    (dw, write): (Tensor, WriteMode),
    x: Tensor,
    dy: Tensor,
    partials: Option<Tensor>,
) {
    let accumulate = write.accumulates();
    check(g, "conv2d_backward_weights");
    let len = g.weight_len();
    let splits = match partials {
        Some(t) => weight_grad_splits(g).min(t.len() / len).max(1),
        None => 1,
    };
    if splits == 1 {
        let p = ConvWeightsParams::new(g, accumulate, 1);
        return launch(be, &CONV2D_BACKWARD_WEIGHTS, p, &[x, dy, dw]);
    }
    let part = partials.expect("splits > 1").slice(0, splits * len);
    let p = ConvWeightsParams::new(g, false, splits);
    launch(be, &CONV2D_BACKWARD_WEIGHTS, p, &[x, dy, part]);
    // dw (+)= Σ_z part[z]: the rows of [splits, len] summed in a fixed order.
    super::bias::bias_backward(be, (dw, write), part, splits, len);
}

/// db[c] (+)= Σ_{n, pixel} dy[n, c, pixel]: a convolution's bias gradient.
pub fn bias_backward_nchw(
    be: &mut dyn Backend,
    (db, write): (Tensor, WriteMode),
    dy: Tensor,
    n: usize,
    c: usize,
    hw: usize,
) {
    let p = BiasNchwParams {
        n: u(n),
        c: u(c),
        hw: u(hw),
        accumulate: write.code(),
        ..Default::default()
    };
    launch(be, &BIAS_BACKWARD_NCHW, p, &[dy, db]);
}

// ---- the specification ---------------------------------------------------------------------

/// The input row and column tap (ky, kx) of output pixel (oh, ow) reads, if inside the image.
fn source(g: &ConvGeom, oh: usize, ow: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
    let ih = (oh * g.stride + ky).checked_sub(g.pad)?;
    let iw = (ow * g.stride + kx).checked_sub(g.pad)?;
    (ih < g.h && iw < g.w).then_some((ih, iw))
}

/// The definition, accumulated in f64.
pub fn conv2d_forward_ref(
    g: &ConvGeom,
    store: StoreKind,
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    extra: &[f32],
) {
    let (oh_n, ow_n) = (g.oh(), g.ow());
    for n in 0..g.n {
        for co in 0..g.co {
            for oh in 0..oh_n {
                for ow in 0..ow_n {
                    let mut s = 0.0f64;
                    for ci in 0..g.ci {
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                if let Some((ih, iw)) = source(g, oh, ow, ky, kx) {
                                    let wi = ((co * g.ci + ci) * g.kh + ky) * g.kw + kx;
                                    let xi = ((n * g.ci + ci) * g.h + ih) * g.w + iw;
                                    s += w[wi] as f64 * x[xi] as f64;
                                }
                            }
                        }
                    }
                    let o = ((n * g.co + co) * oh_n + oh) * ow_n + ow;
                    y[o] = store.apply(s as f32, store_extra(store, extra, o, co));
                }
            }
        }
    }
}

fn store_extra(store: StoreKind, extra: &[f32], out_index: usize, channel: usize) -> f32 {
    match store {
        StoreKind::ActGrad(_) => extra[out_index],
        StoreKind::Act { bias: true, .. } => extra[channel],
        StoreKind::Act { .. } => 0.0,
    }
}

/// dx by its definition as a sum over the outputs each input pixel reaches, in f64.
pub fn conv2d_backward_input_ref(
    g: &ConvGeom,
    store: StoreKind,
    dx: &mut [f32],
    dy: &[f32],
    w: &[f32],
    extra: &[f32],
) {
    let (oh_n, ow_n) = (g.oh(), g.ow());
    let mut acc = vec![0.0f64; g.n * g.in_len()];
    for n in 0..g.n {
        for co in 0..g.co {
            for oh in 0..oh_n {
                for ow in 0..ow_n {
                    let d = dy[((n * g.co + co) * oh_n + oh) * ow_n + ow] as f64;
                    for ci in 0..g.ci {
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                if let Some((ih, iw)) = source(g, oh, ow, ky, kx) {
                                    let wi = ((co * g.ci + ci) * g.kh + ky) * g.kw + kx;
                                    acc[((n * g.ci + ci) * g.h + ih) * g.w + iw] +=
                                        w[wi] as f64 * d;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let plane = g.h * g.w;
    for (o, v) in acc.iter().enumerate() {
        let ci = (o / plane) % g.ci;
        dx[o] = store.apply(*v as f32, store_extra(store, extra, o, ci));
    }
}

/// dw by its definition, in f64; with `splits` > 1, slice z of dw holds the sum over samples
/// [z·per, (z+1)·per), per = ⌈n / splits⌉.
pub fn conv2d_backward_weights_ref(
    g: &ConvGeom,
    accumulate: bool,
    splits: usize,
    dw: &mut [f32],
    x: &[f32],
    dy: &[f32],
) {
    let (oh_n, ow_n) = (g.oh(), g.ow());
    let splits = splits.max(1);
    let per = g.n.div_ceil(splits);
    let len = g.weight_len();
    for z in 0..splits {
        let samples = (z * per).min(g.n)..((z + 1) * per).min(g.n);
        for co in 0..g.co {
            for ci in 0..g.ci {
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let mut s = 0.0f64;
                        for n in samples.clone() {
                            for oh in 0..oh_n {
                                for ow in 0..ow_n {
                                    if let Some((ih, iw)) = source(g, oh, ow, ky, kx) {
                                        let d = dy[((n * g.co + co) * oh_n + oh) * ow_n + ow];
                                        let xv = x[((n * g.ci + ci) * g.h + ih) * g.w + iw];
                                        s += d as f64 * xv as f64;
                                    }
                                }
                            }
                        }
                        let o = z * len + ((co * g.ci + ci) * g.kh + ky) * g.kw + kx;
                        dw[o] = if accumulate && splits == 1 {
                            dw[o] + s as f32
                        } else {
                            s as f32
                        };
                    }
                }
            }
        }
    }
}

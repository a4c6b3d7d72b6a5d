//! Differentiable augmentation (`shaders/augment.wgsl`; Zhao et al. 2020, DiffAugment's
//! `color,translation,cutout`): every image of D's input gets its own random brightness,
//! saturation and contrast, an integer translation with zero fill, and a cut-out rectangle —
//! the same transformations for real and generated images, differentiable so G learns through
//! them.
//!
//! x is [images, C, H, W]. Per image, with μ the mean over the channels at a position and A the
//! image's mean: z = c·s·x + c·(1 − s)·μ + (1 − c)·A + b, then y(i, j) = z(i + ty, j + tx) where
//! that lies inside and (i, j) is not cut out, else 0.
//! Forward: y as above (the tangent pass: without b)    Backward: the transpose of the map.

use super::case::uniform;
use super::{Binding, Bindings, Case, KernelDef, Shader, Work, cast, key_words, launch, u};
use crate::backend::{Backend, Tensor};
use crate::cpu::par::for_planes;
use crate::rng::{self, RngKey};

crate::params! {
    pub struct AugmentParams {
        pub images: u32,
        pub channels: u32,
        pub height: u32,
        pub width: u32,
        pub src_off: u32,
        pub dst_off: u32,
        /// Bit 0: colour; bit 1: the linear part only (no brightness offset; the tangent pass).
        pub flags: u32,
        /// Translations are uniform in [−shift, shift] pixels (0: none).
        pub shift_x: u32,
        pub shift_y: u32,
        /// The cut-out rectangle's width and height (0: none).
        pub cut_x: u32,
        pub cut_y: u32,
        pub seed_lo: u32,
        pub seed_hi: u32,
        pub stream: u32,
        pub ctr_lo: u32,
        pub ctr_hi: u32,
    }
}

const COLOUR: u32 = 1;
const LINEAR: u32 = 2;

/// Which part of the augmentation's affine map y = A·x + b a launch applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Map {
    /// A·x + b: the forward.
    Affine,
    /// A·x, without the brightness offset b: the tangent pass.
    Linear,
}

/// One batch's augmentation: what it does, and the key its random draws come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Augmentation {
    pub ops: Ops,
    pub key: RngKey,
}

/// What one augmentation does to images of a given size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ops {
    pub colour: bool,
    pub shift_x: usize,
    pub shift_y: usize,
    pub cut_x: usize,
    pub cut_y: usize,
}

impl Ops {
    /// Nothing: the identity (evaluation).
    pub const NONE: Ops = Ops {
        colour: false,
        shift_x: 0,
        shift_y: 0,
        cut_x: 0,
        cut_y: 0,
    };

    fn params(
        self,
        images: usize,
        (c, h, w): (usize, usize, usize),
        map: Map,
        key: RngKey,
    ) -> AugmentParams {
        let linear = map == Map::Linear;
        let [seed_lo, seed_hi, stream, ctr_lo, ctr_hi] = key_words(key);
        AugmentParams {
            images: u(images),
            channels: u(c),
            height: u(h),
            width: u(w),
            flags: if self.colour { COLOUR } else { 0 } | if linear { LINEAR } else { 0 },
            shift_x: u(self.shift_x),
            shift_y: u(self.shift_y),
            cut_x: u(self.cut_x),
            cut_y: u(self.cut_y),
            seed_lo,
            seed_hi,
            stream,
            ctr_lo,
            ctr_hi,
            ..Default::default()
        }
    }
}

pub static SHADER: Shader = Shader {
    name: "augment",
    source: include_str!("../../shaders/augment.wgsl"),
    preludes: &[&super::PHILOX],
};

/// One image's random draw, as the shader makes it.
#[derive(Clone, Copy, Debug)]
struct Draw {
    b: f32,
    s: f32,
    c: f32,
    tx: i64,
    ty: i64,
    x0: i64,
    y0: i64,
}

#[derive(Clone, Copy)]
struct Dims {
    images: usize,
    c: usize,
    h: usize,
    w: usize,
    p: AugmentParams,
}

fn dims(p: &[u8]) -> Dims {
    let p: AugmentParams = cast(p);
    Dims {
        images: p.images as usize,
        c: p.channels as usize,
        h: p.height as usize,
        w: p.width as usize,
        p,
    }
}

impl Dims {
    fn key(&self) -> RngKey {
        let p = &self.p;
        RngKey::new(
            p.seed_lo as u64 | (p.seed_hi as u64) << 32,
            p.stream,
            p.ctr_lo as u64 | (p.ctr_hi as u64) << 32,
        )
    }

    fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    fn colour(&self) -> bool {
        self.p.flags & COLOUR != 0
    }

    fn draw(&self, image: usize) -> Draw {
        let p = &self.p;
        let a = rng::words(self.key(), 2 * image as u64);
        let e = rng::words(self.key(), 2 * image as u64 + 1);
        let colour = self.colour();
        let linear = p.flags & LINEAR != 0;
        let pick = |w: u32, n: u32| (w % n) as i64;
        Draw {
            b: if colour && !linear {
                rng::unit_open_high(a[0]) - 0.5
            } else {
                0.0
            },
            s: if colour {
                2.0 * rng::unit_open_high(a[1])
            } else {
                1.0
            },
            c: if colour {
                rng::unit_open_high(a[2]) + 0.5
            } else {
                1.0
            },
            tx: pick(a[3], 2 * p.shift_x + 1) - p.shift_x as i64,
            ty: pick(e[0], 2 * p.shift_y + 1) - p.shift_y as i64,
            x0: pick(e[1], p.width + 1 - p.cut_x % 2) - (p.cut_x / 2) as i64,
            y0: pick(e[2], p.height + 1 - p.cut_y % 2) - (p.cut_y / 2) as i64,
        }
    }

    fn inside(&self, i: i64, j: i64) -> bool {
        (0..self.h as i64).contains(&i) && (0..self.w as i64).contains(&j)
    }

    /// Whether output position (i, j) lies in the image and shows it (see the shader).
    fn shown(&self, d: &Draw, i: i64, j: i64) -> bool {
        let cut = (d.x0..d.x0 + self.p.cut_x as i64).contains(&j)
            && (d.y0..d.y0 + self.p.cut_y as i64).contains(&i);
        self.inside(i, j) && self.inside(i + d.ty, j + d.tx) && !cut
    }
}

/// The twin: `out` = forward or backward of every image of `src`, one image per task.
fn twin(p: &[u8], b: &mut Bindings, backward: bool) {
    let d = dims(p);
    let (len, hw) = (d.len(), d.h * d.w);
    let src = b.r(0);
    let dst = &mut b.w(1)[..d.images * len];
    for_planes(dst, len, |first, out| {
        for (k, o) in out.chunks_exact_mut(len).enumerate() {
            let n = first + k;
            let x = &src[n * len..][..len];
            let dr = d.draw(n);
            let shown_at = |q: usize| {
                let (i, j) = ((q / d.w) as i64, (q % d.w) as i64);
                d.shown(&dr, i, j)
            };
            let mean = match d.colour() {
                false => 0.0,
                true if backward => {
                    let mut acc = 0.0f32;
                    for q in (0..hw).filter(|&q| shown_at(q)) {
                        acc += (0..d.c).map(|ch| x[q + ch * hw]).sum::<f32>();
                    }
                    acc / len as f32
                }
                true => x.iter().sum::<f32>() / len as f32,
            };
            let k_add = (1.0 - dr.c) * mean + if backward { 0.0 } else { dr.b };
            for q in 0..hw {
                let (qi, qj) = ((q / d.w) as i64, (q % d.w) as i64);
                // Forward reads source (q + t) for output q; backward reads output (q − t) for
                // source q.
                let (i, j, from) = if backward {
                    let (i, j) = (qi - dr.ty, qj - dr.tx);
                    (i, j, (i * d.w as i64 + j) as usize)
                } else {
                    let (si, sj) = (qi + dr.ty, qj + dr.tx);
                    (qi, qj, (si * d.w as i64 + sj) as usize)
                };
                if !d.shown(&dr, i, j) {
                    let fill = if backward { k_add } else { 0.0 };
                    for ch in 0..d.c {
                        o[q + ch * hw] = fill;
                    }
                    continue;
                }
                let mu = (0..d.c).map(|ch| x[from + ch * hw]).sum::<f32>() / d.c as f32;
                for ch in 0..d.c {
                    o[q + ch * hw] =
                        dr.c * dr.s * x[from + ch * hw] + dr.c * (1.0 - dr.s) * mu + k_add;
                }
            }
        }
    });
}

/// DiffAugment's steps in order, in f64: brightness, saturation, contrast, translation, cutout.
fn forward_ref(p: &[u8], b: &mut Bindings) {
    let d = dims(p);
    let (len, hw) = (d.len(), d.h * d.w);
    let (x, y) = (b.r(0), b.w(1));
    for n in 0..d.images {
        let dr = d.draw(n);
        let mut z: Vec<f64> = x[n * len..][..len].iter().map(|&v| v as f64).collect();
        if d.colour() {
            z.iter_mut().for_each(|v| *v += dr.b as f64);
            for q in 0..hw {
                let mu = (0..d.c).map(|ch| z[q + ch * hw]).sum::<f64>() / d.c as f64;
                for ch in 0..d.c {
                    z[q + ch * hw] = (z[q + ch * hw] - mu) * dr.s as f64 + mu;
                }
            }
            let m = z.iter().sum::<f64>() / len as f64;
            z.iter_mut().for_each(|v| *v = (*v - m) * dr.c as f64 + m);
        }
        for ch in 0..d.c {
            for i in 0..d.h as i64 {
                for j in 0..d.w as i64 {
                    let (si, sj) = (i + dr.ty, j + dr.tx);
                    let mut v = if d.inside(si, sj) {
                        z[ch * hw + (si * d.w as i64 + sj) as usize]
                    } else {
                        0.0
                    };
                    let cut = (dr.x0..dr.x0 + d.p.cut_x as i64).contains(&j)
                        && (dr.y0..dr.y0 + d.p.cut_y as i64).contains(&i);
                    if cut {
                        v = 0.0;
                    }
                    y[n * len + ch * hw + (i * d.w as i64 + j) as usize] = v as f32;
                }
            }
        }
    }
}

/// The adjoint of each step of `forward_ref`, in reverse order.
fn backward_ref(p: &[u8], b: &mut Bindings) {
    let d = dims(p);
    let (len, hw) = (d.len(), d.h * d.w);
    let (dy, dx) = (b.r(0), b.w(1));
    for n in 0..d.images {
        let dr = d.draw(n);
        // Cutout, then the translation scattered back to the sources.
        let mut g = vec![0.0f64; len];
        for ch in 0..d.c {
            for i in 0..d.h as i64 {
                for j in 0..d.w as i64 {
                    let cut = (dr.x0..dr.x0 + d.p.cut_x as i64).contains(&j)
                        && (dr.y0..dr.y0 + d.p.cut_y as i64).contains(&i);
                    let (si, sj) = (i + dr.ty, j + dr.tx);
                    if !cut && d.inside(si, sj) {
                        g[ch * hw + (si * d.w as i64 + sj) as usize] +=
                            dy[n * len + ch * hw + (i * d.w as i64 + j) as usize] as f64;
                    }
                }
            }
        }
        if d.colour() {
            // Contrast: y = c·z + (1 − c)·mean(z), symmetric.
            let m = g.iter().sum::<f64>() / len as f64;
            g.iter_mut()
                .for_each(|v| *v = *v * dr.c as f64 + (1.0 - dr.c as f64) * m);
            // Saturation: per position, y_c = s·z_c + (1 − s)·mean_c(z), symmetric.
            for q in 0..hw {
                let mu = (0..d.c).map(|ch| g[q + ch * hw]).sum::<f64>() / d.c as f64;
                for ch in 0..d.c {
                    g[q + ch * hw] = g[q + ch * hw] * dr.s as f64 + (1.0 - dr.s as f64) * mu;
                }
            }
            // Brightness adds a constant: no term.
        }
        for (o, v) in dx[n * len..][..len].iter_mut().zip(g) {
            *o = v as f32;
        }
    }
}

fn groups(p: &[u8]) -> [u32; 3] {
    [cast::<AugmentParams>(p).images.clamp(1, 65_535), 1, 1]
}

fn work(p: &[u8]) -> Work {
    let d = dims(p);
    Work::elementwise(u(d.images * d.len()), 3)
}

fn case(images: usize, (c, h, w): (usize, usize, usize), ops: Ops, map: Map, seed: u64) -> Case {
    let key = RngKey::new(seed, rng::stream::DROPOUT, (1 << 32) - 3);
    let n = images * c * h * w;
    let linear = map == Map::Linear;
    Case::new(
        format!("images={images} {c}×{h}×{w} {ops:?} linear={linear}"),
        ops.params(images, (c, h, w), map, key),
    )
    .f32(uniform(seed, n, -1.0, 1.0))
    .zeros(n)
    .tol(2e-5, 1e-4)
}

/// Every step alone and together, odd sizes and channel counts, shifts and cut-outs wider than
/// half the image, the tangent's linear part, and the identity.
fn cases() -> Vec<Case> {
    let all = |shift: usize, cut: usize| Ops {
        colour: true,
        shift_x: shift,
        shift_y: shift,
        cut_x: cut,
        cut_y: cut,
    };
    let colour = Ops {
        colour: true,
        ..Ops::NONE
    };
    let shift = Ops {
        shift_x: 2,
        shift_y: 1,
        ..Ops::NONE
    };
    let cut = Ops {
        cut_x: 3,
        cut_y: 4,
        ..Ops::NONE
    };
    vec![
        case(1, (1, 1, 1), all(0, 1), Map::Affine, 1),
        case(3, (3, 5, 7), colour, Map::Affine, 2),
        case(5, (1, 7, 6), shift, Map::Affine, 3),
        case(4, (2, 9, 5), cut, Map::Affine, 4),
        case(7, (3, 28, 28), all(4, 14), Map::Affine, 5),
        case(3, (3, 32, 32), all(4, 16), Map::Linear, 6),
        case(6, (5, 11, 13), all(3, 7), Map::Affine, 7),
        case(2, (3, 6, 6), Ops::NONE, Map::Affine, 8),
        case(300, (1, 4, 4), all(1, 2), Map::Affine, 9),
    ]
}

fn bench() -> Vec<Case> {
    // D's input of a dcgan32 D-step: [real; fake] of batch 64.
    vec![case(
        128,
        (3, 32, 32),
        Ops {
            colour: true,
            shift_x: 4,
            shift_y: 4,
            cut_x: 16,
            cut_y: 16,
        },
        Map::Affine,
        1,
    )]
}

pub static AUGMENT_FORWARD: KernelDef = KernelDef {
    name: "augment_forward",
    shader: &SHADER,
    params: &<AugmentParams as super::Params>::LAYOUT,
    bindings: &[Binding::read("src"), Binding::write("dst")],
    workgroups: groups,
    cpu: |p, b| twin(p, b, false),
    reference: forward_ref,
    cases,
    bench,
    work,
};

pub static AUGMENT_BACKWARD: KernelDef = KernelDef {
    name: "augment_backward",
    shader: &SHADER,
    params: &<AugmentParams as super::Params>::LAYOUT,
    bindings: &[Binding::read("src"), Binding::write("dst")],
    workgroups: groups,
    cpu: |p, b| twin(p, b, true),
    reference: backward_ref,
    cases,
    bench,
    work,
};

/// y = the augmentation `aug` of `images` images of (c, h, w) in `x`, each with its own draw
/// from its key (counters key + 2·image and +1), through the whole affine map or its linear part.
pub fn augment_forward(
    be: &mut dyn Backend,
    y: Tensor,
    x: Tensor,
    images: usize,
    chw: (usize, usize, usize),
    aug: Augmentation,
    map: Map,
) {
    let p = aug.ops.params(images, chw, map, aug.key);
    launch(be, &AUGMENT_FORWARD, p, &[x, y]);
}

/// dx = the transpose of the forward with the same draws (same `key`) applied to dy.
pub fn augment_backward(
    be: &mut dyn Backend,
    dx: Tensor,
    dy: Tensor,
    images: usize,
    chw: (usize, usize, usize),
    aug: Augmentation,
) {
    let p = aug.ops.params(images, chw, Map::Affine, aug.key);
    launch(be, &AUGMENT_BACKWARD, p, &[dy, dx]);
}

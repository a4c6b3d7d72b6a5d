//! Inception-v3 pool3 features exactly as pytorch-fid computes them (`pytorch_fid.inception.
//! InceptionV3` with its defaults: the FID Inception's blocks, resize to 299×299, [−1, 1]
//! input, the 2,048 features of the final average pooling), run forward on duel's kernels —
//! the GPU or the CPU path, whichever backend is given — in batches.
//!
//! Activations are NHWC (`[n, h, w, c]`, rows of channels), so a convolution is one patch
//! matrix (`kernels::im2col`, skipped for 1×1 convolutions) times the BatchNorm-folded weights
//! with the shift as bias and ReLU fused (`kernels::matmul`), a block's branches are written
//! side by side (`kernels::concat`), and pooling (`kernels::pool2d`) reads whole channel rows.
//! The input pipeline is `kernels::resize`.
//!
//! Weights: pytorch-fid's file, converted to safetensors (`weights::CONVERT`); duel never
//! downloads it. `tests/inception.rs` checks the forward against pytorch-fid's on weights given
//! by a rule (`tests/fixtures/inception/make_fixture.py`).

pub mod arch;
pub mod score;
pub mod weights;

use crate::backend::{Activation, Backend, Tensor};
use crate::kernels::concat::concat_channels;
use crate::kernels::im2col::{ConvGeometry, im2col_nhwc};
use crate::kernels::matmul::{Dense, matmul_forward};
use crate::kernels::pool2d::{Pool, Pool2dParams, pool2d_nhwc};
use crate::kernels::resize::resize_bilinear_nhwc;
use anyhow::{Result, bail};
use arch::{Block, ConvSpec};
use std::collections::HashMap;
pub use weights::InceptionWeights;

/// Features per image (pool3).
pub const FEATURES: usize = 2048;
/// The side images are resized to.
pub const SIDE: usize = 299;
/// Images per forward by default: about 50 MB of activations each.
pub const DEFAULT_BATCH: usize = 8;
/// Values of the largest activation map per image (Conv2d_2b_3x3's 147×147×64): a batch's
/// map must fit one storage binding.
const LARGEST_MAP: usize = 147 * 147 * 64;
/// Words of the patch-matrix workspace (a convolution's im2col runs in row ranges that fit).
const WORKSPACE_WORDS: usize = 8 << 20;

/// A map of `n` images, NHWC.
#[derive(Clone, Copy, Debug)]
struct Map {
    t: Tensor,
    n: usize,
    h: usize,
    w: usize,
    c: usize,
}

/// Activation buffers handed out in the same order at every forward, so one set serves every
/// batch: request i of a forward gets buffer i, sized for the largest batch.
struct Arena {
    bufs: Vec<Tensor>,
    next: usize,
    max_batch: usize,
}

impl Arena {
    fn take(&mut self, be: &mut dyn Backend, per_image: usize, n: usize) -> Result<Tensor> {
        let len = per_image * self.max_batch;
        if self.next == self.bufs.len() || self.bufs[self.next].len() < len {
            let t = be.alloc(len, "inception activations")?;
            if self.next == self.bufs.len() {
                self.bufs.push(t);
            } else {
                self.bufs[self.next] = t;
            }
        }
        self.next += 1;
        Ok(self.bufs[self.next - 1].slice(0, per_image * n))
    }

    fn map(
        &mut self,
        be: &mut dyn Backend,
        n: usize,
        (h, w, c): (usize, usize, usize),
    ) -> Result<Map> {
        Ok(Map {
            t: self.take(be, h * w * c, n)?,
            n,
            h,
            w,
            c,
        })
    }
}

/// A convolution's folded weights on the backend.
struct DeviceConv {
    spec: ConvSpec,
    w: Tensor,
    shift: Tensor,
}

/// The network on a backend, for batches of up to `max_batch` images.
pub struct Inception {
    convs: HashMap<String, DeviceConv>,
    arena: Arena,
    workspace: Tensor,
    input: Option<Tensor>,
    max_batch: usize,
}

impl Inception {
    pub fn new(be: &mut dyn Backend, weights: &InceptionWeights, max_batch: usize) -> Result<Self> {
        if max_batch == 0 {
            bail!("the Inception batch must be at least 1");
        }
        let max_batch = max_batch.min(be.max_binding_words() / LARGEST_MAP).max(1);
        let mut convs = HashMap::new();
        for f in &weights.convs {
            let w = be.upload(&f.w, &format!("inception {}", f.spec.name))?;
            let shift = be.upload(&f.shift, &format!("inception {} shift", f.spec.name))?;
            convs.insert(
                f.spec.name.clone(),
                DeviceConv {
                    spec: f.spec.clone(),
                    w,
                    shift,
                },
            );
        }
        let words = WORKSPACE_WORDS.min(be.max_binding_words());
        let workspace = be.alloc(words, "inception patch matrix")?;
        Ok(Self {
            convs,
            arena: Arena {
                bufs: Vec::new(),
                next: 0,
                max_batch,
            },
            workspace,
            input: None,
            max_batch,
        })
    }

    /// The pool3 features [n, 2048] of NCHW images [n, c, h, w] (c = 1 or 3) with pixels in
    /// [0, 1], `max_batch` images per forward.
    pub fn features(
        &mut self,
        be: &mut dyn Backend,
        images: &[f32],
        (c, h, w): (usize, usize, usize),
    ) -> Result<Vec<f32>> {
        if c != 1 && c != 3 {
            bail!("Inception reads gray or RGB images; these have {c} channels");
        }
        let len = c * h * w;
        if len == 0 || !images.len().is_multiple_of(len) {
            bail!(
                "{} values are not a whole number of {c}×{h}×{w} images",
                images.len()
            );
        }
        let n = images.len() / len;
        let mut out = Vec::with_capacity(n * FEATURES);
        for start in (0..n).step_by(self.max_batch) {
            let rows = (n - start).min(self.max_batch);
            let batch = &images[start * len..(start + rows) * len];
            let y = self.forward(be, batch, rows, (c, h, w))?;
            out.extend(be.read(y)?);
        }
        Ok(out)
    }

    /// One batch: the features' view [n, 2048].
    fn forward(
        &mut self,
        be: &mut dyn Backend,
        images: &[f32],
        n: usize,
        (c, h, w): (usize, usize, usize),
    ) -> Result<Tensor> {
        self.arena.next = 0;
        let need = self.max_batch * c * h * w;
        let input = match self.input {
            Some(t) if t.len() >= need => t,
            _ => {
                let t = be.alloc(need, "inception input")?;
                self.input = Some(t);
                t
            }
        };
        let src = input.slice(0, images.len());
        be.write(src, images);
        let x = self.arena.map(be, n, (SIDE, SIDE, 3))?;
        resize_bilinear_nhwc(be, x.t, src, n, (c, h, w), (SIDE, SIDE));

        let mut x = self.conv(be, "Conv2d_1a_3x3", x)?;
        x = self.conv(be, "Conv2d_2a_3x3", x)?;
        x = self.conv(be, "Conv2d_2b_3x3", x)?;
        x = self.pool(be, Pool::Max, x, 3, 2, 0)?;
        x = self.conv(be, "Conv2d_3b_1x1", x)?;
        x = self.conv(be, "Conv2d_4a_3x3", x)?;
        x = self.pool(be, Pool::Max, x, 3, 2, 0)?;
        for (name, block) in arch::blocks() {
            x = self.block(be, name, block, x)?;
        }
        // adaptive_avg_pool2d(x, 1): the whole 8×8 map as one window.
        let (kh, kw) = (x.h, x.w);
        let y = self.pool_window(be, Pool::Mean, x, (kh, kw), 1, 0)?;
        debug_assert_eq!(y.c * y.h * y.w, FEATURES);
        Ok(y.t)
    }

    /// One Inception block: its branches side by side, in pytorch-fid's order.
    fn block(&mut self, be: &mut dyn Backend, name: &str, block: Block, x: Map) -> Result<Map> {
        let b = |branch: &str| format!("{name}.{branch}");
        let parts = match block {
            Block::A { .. } => {
                let b1 = self.conv(be, &b("branch1x1"), x)?;
                let b5 = self.chain(be, name, &["branch5x5_1", "branch5x5_2"], x)?;
                let b3 = self.chain(
                    be,
                    name,
                    &["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"],
                    x,
                )?;
                let pooled = self.pool(be, Pool::Mean, x, 3, 1, 1)?;
                let bp = self.conv(be, &b("branch_pool"), pooled)?;
                vec![b1, b5, b3, bp]
            }
            Block::B { .. } => {
                let b3 = self.conv(be, &b("branch3x3"), x)?;
                let bd = self.chain(
                    be,
                    name,
                    &["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"],
                    x,
                )?;
                let bp = self.pool(be, Pool::Max, x, 3, 2, 0)?;
                vec![b3, bd, bp]
            }
            Block::C { .. } => {
                let b1 = self.conv(be, &b("branch1x1"), x)?;
                let b7 = self.chain(be, name, &["branch7x7_1", "branch7x7_2", "branch7x7_3"], x)?;
                let bd = self.chain(
                    be,
                    name,
                    &[
                        "branch7x7dbl_1",
                        "branch7x7dbl_2",
                        "branch7x7dbl_3",
                        "branch7x7dbl_4",
                        "branch7x7dbl_5",
                    ],
                    x,
                )?;
                let pooled = self.pool(be, Pool::Mean, x, 3, 1, 1)?;
                let bp = self.conv(be, &b("branch_pool"), pooled)?;
                vec![b1, b7, bd, bp]
            }
            Block::D { .. } => {
                let b3 = self.chain(be, name, &["branch3x3_1", "branch3x3_2"], x)?;
                let b7 = self.chain(
                    be,
                    name,
                    &[
                        "branch7x7x3_1",
                        "branch7x7x3_2",
                        "branch7x7x3_3",
                        "branch7x7x3_4",
                    ],
                    x,
                )?;
                let bp = self.pool(be, Pool::Max, x, 3, 2, 0)?;
                vec![b3, b7, bp]
            }
            Block::E { max_pool, .. } => {
                let b1 = self.conv(be, &b("branch1x1"), x)?;
                let t = self.conv(be, &b("branch3x3_1"), x)?;
                let b3a = self.conv(be, &b("branch3x3_2a"), t)?;
                let b3b = self.conv(be, &b("branch3x3_2b"), t)?;
                let d = self.chain(be, name, &["branch3x3dbl_1", "branch3x3dbl_2"], x)?;
                let bda = self.conv(be, &b("branch3x3dbl_3a"), d)?;
                let bdb = self.conv(be, &b("branch3x3dbl_3b"), d)?;
                // FIDInceptionE_2 max-pools where FIDInceptionE_1 averages.
                let pool = if max_pool { Pool::Max } else { Pool::Mean };
                let pooled = self.pool(be, pool, x, 3, 1, 1)?;
                let bp = self.conv(be, &b("branch_pool"), pooled)?;
                vec![b1, b3a, b3b, bda, bdb, bp]
            }
        };
        let y = self.concat(be, &parts)?;
        debug_assert_eq!(y.c, block.cout(), "{name}");
        Ok(y)
    }

    /// The convolutions `<block>.<branch>` for each branch of `branches`, one after another.
    fn chain(
        &mut self,
        be: &mut dyn Backend,
        block: &str,
        branches: &[&str],
        x: Map,
    ) -> Result<Map> {
        let mut x = x;
        for branch in branches {
            x = self.conv(be, &format!("{block}.{branch}"), x)?;
        }
        Ok(x)
    }

    /// BasicConv2d `name`: patch matrix (unless 1×1) times the folded weights, + shift, ReLU.
    fn conv(&mut self, be: &mut dyn Backend, name: &str, x: Map) -> Result<Map> {
        let c = &self.convs[name];
        let (spec, w, shift) = (c.spec.clone(), c.w, c.shift);
        assert_eq!(x.c, spec.cin, "{name}: input channels");
        let g = ConvGeometry {
            height: x.h,
            width: x.w,
            channels: x.c,
            kernel: spec.kernel,
            stride: (spec.stride, spec.stride),
            pad: spec.pad,
        };
        let y = self.arena.map(be, x.n, (g.oh(), g.ow(), spec.cout))?;
        let rows = x.n * g.oh() * g.ow();
        let relu = Activation::Relu;
        if g.is_pointwise() {
            let dense = Dense {
                rows,
                inputs: spec.cin,
                outputs: spec.cout,
            };
            matmul_forward(be, y.t, x.t, w, Some(shift), relu, dense);
            return Ok(y);
        }
        let k = g.patch();
        let chunk = (self.workspace.len() / k).max(1);
        for r0 in (0..rows).step_by(chunk) {
            let r = chunk.min(rows - r0);
            let cols = self.workspace.slice(0, r * k);
            im2col_nhwc(be, cols, x.t, &g, r0, r);
            let out = y.t.slice(r0 * spec.cout, r * spec.cout);
            let dense = Dense {
                rows: r,
                inputs: k,
                outputs: spec.cout,
            };
            matmul_forward(be, out, cols, w, Some(shift), relu, dense);
        }
        Ok(y)
    }

    fn pool(
        &mut self,
        be: &mut dyn Backend,
        pool: Pool,
        x: Map,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Result<Map> {
        self.pool_window(be, pool, x, (k, k), stride, pad)
    }

    fn pool_window(
        &mut self,
        be: &mut dyn Backend,
        pool: Pool,
        x: Map,
        k: (usize, usize),
        stride: usize,
        pad: usize,
    ) -> Result<Map> {
        let p = Pool2dParams::new((x.n, x.h, x.w, x.c), k, stride, pad);
        let y = self
            .arena
            .map(be, x.n, (p.oh as usize, p.ow as usize, x.c))?;
        pool2d_nhwc(be, pool, y.t, x.t, p);
        Ok(y)
    }

    /// The maps (same images and grid) side by side along channels.
    fn concat(&mut self, be: &mut dyn Backend, parts: &[Map]) -> Result<Map> {
        let first = parts[0];
        let c: usize = parts.iter().map(|m| m.c).sum();
        let y = self.arena.map(be, first.n, (first.h, first.w, c))?;
        let rows = first.n * first.h * first.w;
        let mut col0 = 0;
        for m in parts {
            assert_eq!(
                (m.h, m.w),
                (first.h, first.w),
                "concatenated maps differ in size"
            );
            concat_channels(be, y.t, m.t, rows, (m.c, c, col0));
            col0 += m.c;
        }
        Ok(y)
    }
}

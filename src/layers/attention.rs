//! Self-attention over an image's positions (SAGAN, Zhang et al. 2019), as the SAGAN PyTorch
//! code's `Self_Attn` lays it out: 1×1 convolutions `query_conv` and `key_conv` to C/8 channels
//! and `value_conv` to C channels (each with a bias), and a learned scalar `gamma` starting at 0,
//! so the layer starts as the identity. Per sample, x [C, N] with N = H·W positions:
//!
//! Forward:  q = Wq·x + bq [C/8, N],  k = Wk·x + bk [C/8, N],  v = Wv·x + bv [C, N]
//!           E = qᵀk [N, N],  A = softmax of each row of E (row i: how position i attends to
//!           every position j),  y = γ·v·Aᵀ + x
//! Backward: G = dyᵀ·v [N, N],  dγ = Σ A ⊙ G  (= Σ dy ⊙ v·Aᵀ),
//!           dE = γ·A ⊙ (G − rowsum(A ⊙ G))  (softmax_rows_backward, its row sums giving dγ),
//!           dv = γ·dy·A,  dq = k·dEᵀ,  dk = q·dE,
//!           the convolutions' weight and bias gradients from (x, dq), (x, dk), (x, dv),
//!           dx = dy + Wqᵀ·dq + Wkᵀ·dk + Wvᵀ·dv
//!
//! The products over positions are `batched_matmul` launches (one per product for the whole
//! batch); the convolutions are `Conv2d` modules held inside, so `Layer::SpectralNorm` before
//! the layer normalises all three weights as PyTorch's `spectral_norm` on each conv would
//! (`query_conv.weight_orig`, `.weight_u`, `.weight_v`). The attention maps take rows·N² words
//! twice (A and a scratch for E and its gradient), which must fit one storage binding.
//!
//! No tangent pass: a gradient penalty through attention needs the second derivative of the
//! softmax and of the products, which duel does not compute, so it is refused up front.

use super::conv::Conv2d;
use super::{Bwd, Fwd, Init, Module, NetRng, ParamSpec, Shape, StateSpec};
use crate::backend::{Activation, Backend, Tensor, WriteMode};
use crate::kernels::batched_matmul::{Batched, BmmShape, BmmStore, batched_matmul};
use crate::kernels::bias::bias_backward;
use crate::kernels::softmax::{softmax_rows_backward, softmax_rows_forward};
use anyhow::{Result, bail};

/// PyTorch's names of the three convolutions' tensors.
const NAMES: [[&str; 5]; 3] = [
    [
        "query_conv.weight",
        "query_conv.bias",
        "query_conv.weight_orig",
        "query_conv.weight_u",
        "query_conv.weight_v",
    ],
    [
        "key_conv.weight",
        "key_conv.bias",
        "key_conv.weight_orig",
        "key_conv.weight_u",
        "key_conv.weight_v",
    ],
    [
        "value_conv.weight",
        "value_conv.bias",
        "value_conv.weight_orig",
        "value_conv.weight_u",
        "value_conv.weight_v",
    ],
];

/// `name` of conv `i` under its PyTorch attribute.
fn prefixed(i: usize, name: &str) -> &'static str {
    let j = ["weight", "bias", "weight_orig", "weight_u", "weight_v"]
        .iter()
        .position(|&n| n == name)
        .expect("a convolution's tensors are these");
    NAMES[i][j]
}

#[derive(Clone, Copy, Debug)]
struct Buffers {
    /// Query and key [rows, C/8, N], value [rows, C, N].
    q: Tensor,
    k: Tensor,
    v: Tensor,
    /// The attention maps A [rows, N, N].
    attn: Tensor,
    /// E in the forward; G, then dE in the backward [rows, N, N].
    scratch: Tensor,
    dq: Tensor,
    dk: Tensor,
    dv: Tensor,
    /// Σ_j A ⊙ G per row of the maps [rows·N].
    rowdot: Tensor,
}

pub struct SelfAttention {
    input: Shape,
    /// Query and key channels: C/8 (at least 1).
    c8: usize,
    /// query_conv, key_conv, value_conv.
    convs: [Conv2d; 3],
    sn: bool,
    bufs: Option<Buffers>,
}

impl SelfAttention {
    pub fn new(input: Shape) -> Result<Self> {
        if input.is_flat() {
            bail!(
                "SelfAttention attends over an image's positions; its input {input} is flat \
                 (put it after a convolution, or reshape to C×H×W first)"
            );
        }
        let c8 = (input.c / 8).max(1);
        let conv = |out| Conv2d::new(input, out, 1, 1, 0, Activation::Identity);
        Ok(SelfAttention {
            input,
            c8,
            convs: [conv(c8)?, conv(c8)?, conv(input.c)?],
            sn: false,
            bufs: None,
        })
    }

    /// The same layer with spectral norm on its three convolutions (SAGAN normalises them).
    pub fn with_spectral_norm(self) -> Self {
        let SelfAttention {
            input,
            c8,
            convs: [q, k, v],
            bufs,
            ..
        } = self;
        SelfAttention {
            input,
            c8,
            convs: [
                q.with_spectral_norm(),
                k.with_spectral_norm(),
                v.with_spectral_norm(),
            ],
            sn: true,
            bufs,
        }
    }

    fn positions(&self) -> usize {
        self.input.h * self.input.w
    }

    /// Conv `i`'s parameter tensors within the layer's.
    fn conv_params(i: usize, params: &[Tensor]) -> &[Tensor] {
        &params[2 * i..2 * i + 2]
    }

    /// Conv `i`'s state (spectral norm's u and v), when normalised.
    fn conv_state<'a>(&self, i: usize, state: &'a [Tensor]) -> &'a [Tensor] {
        if self.sn {
            &state[2 * i..2 * i + 2]
        } else {
            &[]
        }
    }

    fn bufs(&self) -> Buffers {
        self.bufs
            .expect("attention buffers are allocated with the layer")
    }
}

impl Module for SelfAttention {
    fn describe(&self) -> String {
        format!(
            "SelfAttention{}({}, query/key {} channels)",
            if self.sn { " (spectral norm)" } else { "" },
            self.input,
            self.c8
        )
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        self.input
    }

    fn params(&self) -> Vec<ParamSpec> {
        let mut out = Vec::new();
        for (i, conv) in self.convs.iter().enumerate() {
            for mut p in conv.params() {
                p.name = prefixed(i, p.name);
                out.push(p);
            }
        }
        out.push(ParamSpec {
            name: "gamma",
            shape: vec![1],
            transposed: false,
            init: Init::Const(0.0),
        });
        out
    }

    fn state(&self) -> Vec<StateSpec> {
        let mut out = Vec::new();
        for (i, conv) in self.convs.iter().enumerate() {
            for mut s in conv.state() {
                s.name = prefixed(i, s.name);
                out.push(s);
            }
        }
        out
    }

    fn flops(&self, rows: usize) -> f64 {
        let (c, n) = (self.input.c as f64, self.positions() as f64);
        let convs: f64 = self.convs.iter().map(|m| m.flops(rows)).sum();
        // E = qᵀk, v·Aᵀ, and the softmax's ~5 operations per entry.
        convs + rows as f64 * (2.0 * n * n * self.c8 as f64 + 2.0 * n * n * c + 5.0 * n * n)
    }

    fn alloc(&mut self, be: &mut dyn Backend, max_rows: usize, label: &str) -> Result<()> {
        let (c, n, c8) = (self.input.c, self.positions(), self.c8);
        let maps = max_rows * n * n;
        let limit = be.max_binding_words();
        if maps > limit {
            bail!(
                "{label}: SelfAttention at {}×{} with {max_rows} rows needs attention maps of \
                 {} MiB, more than the largest storage binding ({} MiB); use a smaller --batch \
                 or attention at a lower resolution",
                self.input.h,
                self.input.w,
                (maps * 4) >> 20,
                (limit * 4) >> 20
            );
        }
        for (i, conv) in self.convs.iter_mut().enumerate() {
            let name = ["query_conv", "key_conv", "value_conv"][i];
            conv.alloc(be, max_rows, &format!("{label} {name}"))?;
        }
        let mut a = |len: usize, what: &str| be.alloc(len, &format!("{label} {what}"));
        self.bufs = Some(Buffers {
            q: a(max_rows * c8 * n, "query")?,
            k: a(max_rows * c8 * n, "key")?,
            v: a(max_rows * c * n, "value")?,
            attn: a(maps, "attention maps")?,
            scratch: a(maps, "energies and their gradient")?,
            dq: a(max_rows * c8 * n, "∂query")?,
            dk: a(max_rows * c8 * n, "∂key")?,
            dv: a(max_rows * c * n, "∂value")?,
            rowdot: a(max_rows * n, "row sums of A ⊙ G")?,
        });
        Ok(())
    }

    fn params_changed(
        &mut self,
        be: &mut dyn Backend,
        params: &[Tensor],
        state: &[Tensor],
        first: bool,
    ) {
        for i in 0..3 {
            let st = self.conv_state(i, state);
            self.convs[i].params_changed(be, Self::conv_params(i, params), st, first);
        }
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, rng: &mut NetRng) {
        let (rows, c, n, c8) = (f.rows, self.input.c, self.positions(), self.c8);
        let b = self.bufs();
        let outs = [
            b.q.slice(0, rows * c8 * n),
            b.k.slice(0, rows * c8 * n),
            b.v.slice(0, rows * c * n),
        ];
        for (i, y) in outs.into_iter().enumerate() {
            let state = self.conv_state(i, f.state);
            let fwd = Fwd {
                x: f.x,
                y,
                rows,
                params: Self::conv_params(i, f.params),
                state,
                train: f.train,
                labels: None,
            };
            self.convs[i].forward(be, &fwd, rng);
        }
        let maps = rows * n * n;
        let (e, attn) = (b.scratch.slice(0, maps), b.attn.slice(0, maps));
        // E = qᵀk: q read as [N, C/8].
        batched_matmul(
            be,
            e,
            Batched::new(b.q, 1, n, c8 * n),
            Batched::new(b.k, n, 1, c8 * n),
            BmmStore::default(),
            BmmShape {
                batch: rows,
                m: n,
                n,
                k: c8,
            },
        );
        softmax_rows_forward(be, attn, e, rows * n, n);
        // y = γ·v·Aᵀ + x.
        let store = BmmStore {
            scale: Some(f.params[6]),
            addend: Some(f.x),
            accumulate: false,
        };
        batched_matmul(
            be,
            f.y,
            Batched::new(b.v, n, 1, c * n),
            Batched::new(b.attn, 1, n, n * n),
            store,
            BmmShape {
                batch: rows,
                m: c,
                n,
                k: n,
            },
        );
    }

    fn backward(&mut self, be: &mut dyn Backend, bw: &Bwd) {
        let (rows, c, n, c8) = (bw.rows, self.input.c, self.positions(), self.c8);
        let b = self.bufs();
        let gamma = bw.params[6];
        let scaled = BmmStore {
            scale: Some(gamma),
            ..Default::default()
        };
        let maps = rows * n * n;
        let g = b.scratch.slice(0, maps);
        // G = dyᵀ·v (dy read as [N, C]), then in place dE = γ·A ⊙ (G − rowsum(A ⊙ G)).
        batched_matmul(
            be,
            g,
            Batched::new(bw.dy, 1, n, c * n),
            Batched::new(b.v, n, 1, c * n),
            BmmStore::default(),
            BmmShape {
                batch: rows,
                m: n,
                n,
                k: c,
            },
        );
        let rowdot = b.rowdot.slice(0, rows * n);
        softmax_rows_backward(
            be,
            g,
            rowdot,
            b.attn.slice(0, maps),
            Some(gamma),
            rows * n,
            n,
        );
        // dv = γ·dy·A, dq = k·dEᵀ, dk = q·dE.
        let (dq, dk, dv) = (
            b.dq.slice(0, rows * c8 * n),
            b.dk.slice(0, rows * c8 * n),
            b.dv.slice(0, rows * c * n),
        );
        let dy = Batched::new(bw.dy, n, 1, c * n);
        batched_matmul(
            be,
            dv,
            dy,
            Batched::new(b.attn, n, 1, n * n),
            scaled,
            BmmShape {
                batch: rows,
                m: c,
                n,
                k: n,
            },
        );
        let de = |rs, cs| Batched::new(g, rs, cs, n * n);
        let plain = BmmStore::default();
        let (q, k) = (
            Batched::new(b.q, n, 1, c8 * n),
            Batched::new(b.k, n, 1, c8 * n),
        );
        batched_matmul(
            be,
            dq,
            k,
            de(1, n),
            plain,
            BmmShape {
                batch: rows,
                m: c8,
                n,
                k: n,
            },
        );
        batched_matmul(
            be,
            dk,
            q,
            de(n, 1),
            plain,
            BmmShape {
                batch: rows,
                m: c8,
                n,
                k: n,
            },
        );
        let ds = [dq, dk, dv];
        if let Some(grads) = bw.grads {
            // dγ = Σ over every row of the maps of rowsum(A ⊙ G): a fixed-order column sum.
            bias_backward(be, (grads[6], WriteMode::Overwrite), rowdot, rows * n, 1);
            for (i, &d) in ds.iter().enumerate() {
                let conv_bwd = Bwd {
                    x: bw.x,
                    y: d,
                    dy: d,
                    dx: None,
                    rows,
                    params: Self::conv_params(i, bw.params),
                    grads: Some(&grads[2 * i..2 * i + 2]),
                    state: self.conv_state(i, bw.state),
                    labels: None,
                };
                self.convs[i].backward(be, &conv_bwd);
            }
        }
        if let Some(dx) = bw.dx {
            // dx = dy + Σ Wᵀ·d over the three convolutions (W [out, C] read as [C, out], shared
            // by the batch).
            for (i, &d) in ds.iter().enumerate() {
                let out = if i == 2 { c } else { c8 };
                let w = self.convs[i].weight(Self::conv_params(i, bw.params));
                let store = BmmStore {
                    scale: None,
                    addend: (i == 0).then_some(bw.dy),
                    accumulate: i > 0,
                };
                batched_matmul(
                    be,
                    dx,
                    Batched::new(w, 1, c, 0),
                    Batched::new(d, n, 1, out * n),
                    store,
                    BmmShape {
                        batch: rows,
                        m: c,
                        n,
                        k: out,
                    },
                );
            }
        }
    }

    fn check_tangent(&self) -> Result<()> {
        bail!(
            "{} has no tangent pass (a gradient penalty through attention needs the softmax's \
             second derivative, which duel does not compute); use a penalty-free objective \
             such as --loss hinge with --sn, or a model without attention",
            self.describe()
        )
    }
    fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        params: &[&[f32]],
        state: &[&[f32]],
    ) -> Result<String> {
        use crate::onnx::Attr;
        let (c, c8, n) = (self.input.c as i64, self.c8 as i64, self.positions() as i64);
        let mut qkv = Vec::new();
        for i in 0..3 {
            let st = if self.sn {
                &state[2 * i..2 * i + 2]
            } else {
                &[]
            };
            let y = self.convs[i].onnx(g, x, &params[2 * i..2 * i + 2], st)?;
            // [N, channels, H·W]
            let shape = g.ints("shape", &[-1, if i < 2 { c8 } else { c }, n]);
            qkv.push(g.node("Reshape", &[&y, &shape], vec![]));
        }
        let swap = || ("perm", Attr::Ints(vec![0, 2, 1]));
        let qt = g.node("Transpose", &[&qkv[0]], vec![swap()]);
        let e = g.node("MatMul", &[&qt, &qkv[1]], vec![]);
        let a = g.node("Softmax", &[&e], vec![("axis", Attr::Int(-1))]);
        let at = g.node("Transpose", &[&a], vec![swap()]);
        let o = g.node("MatMul", &[&qkv[2], &at], vec![]);
        let o = g.reshape(&o, self.input);
        let gamma = g.weight("gamma", &[1], params[6]);
        let o = g.node("Mul", &[&o, &gamma], vec![]);
        Ok(g.node("Add", &[&o, x], vec![]))
    }
}

//! A sequence of built modules inside one module (PyTorch's `nn.Sequential` as a child): the
//! forward, backward and tangent walk that progressive blocks and residual paths share, over
//! views of the holding module's parameter, state and gradient tensors.
//!
//! A sequence named "main" whose module 3 has a "weight" names it "main.3.weight", so the
//! holder's tensors keep PyTorch's module-tree names ("2.main.3.weight" in a network).

use super::{Built, Bwd, Fwd, Layer, NetRng, NetSpec, ParamSpec, Shape, StateSpec, Tangent};
use crate::backend::{Backend, Tensor};
use crate::kernels::fade::axpby;
use anyhow::Result;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// A `&'static str` for a tensor name built at run time, leaked once per distinct name.
pub(crate) fn intern(s: String) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().expect("the name table is never poisoned");
    if let Some(&n) = names.get(s.as_str()) {
        return n;
    }
    let n: &'static str = Box::leak(s.into_boxed_str());
    names.insert(n);
    n
}

/// What a sequence's modules share with the module holding it: the batch, the holder's
/// tensors (of which each module takes its views) and the rows' classes.
#[derive(Clone, Copy)]
pub struct Outer<'a> {
    pub rows: usize,
    pub train: bool,
    pub params: &'a [Tensor],
    pub state: &'a [Tensor],
    pub labels: Option<Tensor>,
}

impl Fwd<'_> {
    pub fn outer(&self) -> Outer<'_> {
        Outer {
            rows: self.rows,
            train: self.train,
            params: self.params,
            state: self.state,
            labels: self.labels,
        }
    }
}

impl Bwd<'_> {
    pub fn outer(&self) -> Outer<'_> {
        Outer {
            rows: self.rows,
            train: true,
            params: self.params,
            state: self.state,
            labels: self.labels,
        }
    }
}

impl Tangent<'_> {
    pub fn outer(&self) -> Outer<'_> {
        Outer {
            rows: self.rows,
            train: true,
            params: self.params,
            state: self.state,
            labels: self.labels,
        }
    }
}

/// One module's tensors: first index (relative to the sequence's base) and count.
#[derive(Clone, Copy)]
struct Slot {
    params: (usize, usize),
    state: (usize, usize),
}

/// Built modules run in order, with their buffers and the position of their tensors among the
/// holder's.
pub struct Seq {
    pub name: String,
    pub modules: Vec<Built>,
    /// Index of its first parameter and state tensor among the holder's.
    pub param_base: usize,
    pub state_base: usize,
    n_params: usize,
    n_state: usize,
    slots: Vec<Slot>,
    outs: Vec<Option<Tensor>>,
    dins: Vec<Option<Tensor>>,
    tan: Option<[Tensor; 2]>,
    x: Option<Tensor>,
    ys: Vec<Tensor>,
    rows: usize,
}

impl Seq {
    /// The sequence on `x` in an ONNX graph, its tensors among the holder's `params` and
    /// `state`. Returns the output's name.
    pub fn onnx(
        &self,
        g: &mut crate::onnx::OnnxGraph,
        x: &str,
        params: &[&[f32]],
        state: &[&[f32]],
    ) -> Result<String> {
        let input = self.modules[0].module.input();
        let p = &params[self.param_base..self.param_base + self.n_params];
        let s = &state[self.state_base..self.state_base + self.n_state];
        Ok(crate::onnx::walk(g, &self.modules, input, x, p, s)?.0)
    }

    /// Builds `layers` on `input` (as a network's layers, fusions included).
    pub fn new(name: String, input: Shape, layers: Vec<Layer>) -> Result<Self> {
        let modules = NetSpec { input, layers }.build_modules(&name)?;
        Ok(Self::from_built(name, modules))
    }

    /// A sequence of modules already built (a whole network's, named "").
    pub fn from_built(name: String, modules: Vec<Built>) -> Self {
        let (mut slots, mut np, mut ns) = (Vec::new(), 0, 0);
        for b in &modules {
            let (p, s) = (b.module.params().len(), b.module.state().len());
            slots.push(Slot {
                params: (np, p),
                state: (ns, s),
            });
            np += p;
            ns += s;
        }
        Seq {
            name,
            modules,
            param_base: 0,
            state_base: 0,
            n_params: np,
            n_state: ns,
            slots,
            outs: Vec::new(),
            dins: Vec::new(),
            tan: None,
            x: None,
            ys: Vec::new(),
            rows: 0,
        }
    }

    /// Rows of the last forward.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The two buffers of the widest layer the tangent pass alternates between, when the holder
    /// keeps them (a network's penalty owns its scratch).
    pub fn set_tangent_buffers(&mut self, tan: [Tensor; 2]) {
        self.tan = Some(tan);
    }

    /// Progressive growing's level and fade, told to every module.
    pub fn set_growth(&mut self, level: usize, alpha: f32) {
        for b in &mut self.modules {
            b.module.set_growth(level, alpha);
        }
    }

    /// The input shape (the holder's, when the sequence is empty).
    pub fn output_or(&self, input: Shape) -> Shape {
        self.modules.last().map_or(input, |b| b.module.output())
    }

    /// Parameter and state tensor counts.
    pub fn tensor_counts(&self) -> (usize, usize) {
        (self.n_params, self.n_state)
    }

    fn prefixed(&self, index: usize, name: &str) -> &'static str {
        match self.name.as_str() {
            "" => intern(format!("{index}.{name}")),
            seq => intern(format!("{seq}.{index}.{name}")),
        }
    }

    pub fn params(&self) -> Vec<ParamSpec> {
        let mut out = Vec::new();
        for b in &self.modules {
            for p in b.module.params() {
                out.push(ParamSpec {
                    name: self.prefixed(b.index, p.name),
                    ..p
                });
            }
        }
        out
    }

    pub fn state(&self) -> Vec<StateSpec> {
        let mut out = Vec::new();
        for b in &self.modules {
            for s in b.module.state() {
                out.push(StateSpec {
                    name: self.prefixed(b.index, s.name),
                    ..s
                });
            }
        }
        out
    }

    pub fn describe(&self) -> String {
        let parts: Vec<String> = self.modules.iter().map(|b| b.module.describe()).collect();
        parts.join(" → ")
    }

    pub fn flops(&self, rows: usize) -> f64 {
        self.modules.iter().map(|b| b.module.flops(rows)).sum()
    }

    /// Buffers for batches of up to `max_rows`; with `tangent`, the tangent pass's two.
    pub fn alloc(
        &mut self,
        be: &mut dyn Backend,
        max_rows: usize,
        tangent: bool,
        label: &str,
    ) -> Result<()> {
        let mut widest = 1;
        for b in &mut self.modules {
            let l = match self.name.as_str() {
                "" => format!("{label} layer {}", b.index),
                seq => format!("{label} {seq} layer {}", b.index),
            };
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
            let mut a = |ab: &str| {
                let what = format!("{label} {} tangent {ab}", self.name);
                be.alloc(max_rows * widest, &what)
            };
            self.tan = Some([a("a")?, a("b")?]);
        }
        Ok(())
    }

    /// Module `i`'s parameter (or gradient) tensors among the holder's `all`.
    fn views(&self, all: &[Tensor], i: usize) -> Vec<Tensor> {
        let (o, c) = self.slots[i].params;
        all[self.param_base + o..self.param_base + o + c].to_vec()
    }

    fn state_views(&self, all: &[Tensor], i: usize) -> Vec<Tensor> {
        let (o, c) = self.slots[i].state;
        all[self.state_base + o..self.state_base + o + c].to_vec()
    }

    fn all_views<'a>(&self, all: &'a [Tensor]) -> &'a [Tensor] {
        &all[self.param_base..self.param_base + self.n_params]
    }

    /// Runs the sequence on `x`; the last module that writes a buffer writes to `out` when
    /// given. Returns the output view.
    pub fn forward(
        &mut self,
        be: &mut dyn Backend,
        o: Outer,
        x: Tensor,
        rng: &mut NetRng,
        out: Option<Tensor>,
    ) -> Tensor {
        let writer = self.modules.iter().rposition(|b| !b.module.is_view());
        let mut cur = x;
        self.x = Some(x);
        self.rows = o.rows;
        self.ys.clear();
        for i in 0..self.modules.len() {
            let len = o.rows * self.modules[i].module.output().len();
            let y = match (&self.outs[i], out) {
                (None, _) => cur,
                (Some(_), Some(dst)) if Some(i) == writer => dst.slice(0, len),
                (Some(buf), _) => buf.slice(0, len),
            };
            let (p, s) = (self.views(o.params, i), self.state_views(o.state, i));
            let f = Fwd {
                x: cur,
                y,
                rows: o.rows,
                params: &p,
                state: &s,
                train: o.train,
                labels: o.labels,
            };
            self.modules[i].module.forward(be, &f, rng);
            self.ys.push(y);
            cur = y;
        }
        cur
    }

    /// Back-propagates `dy` through the last forward, writing parameter gradients into `grads`
    /// when given; the input gradient when `need_dx`.
    pub fn backward(
        &mut self,
        be: &mut dyn Backend,
        o: Outer,
        dy: Tensor,
        need_dx: bool,
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
            let (p, s) = (self.views(o.params, i), self.state_views(o.state, i));
            let g = grads.map(|g| self.views(g, i));
            let b = Bwd {
                x: if i == 0 { input } else { self.ys[i - 1] },
                y: self.ys[i],
                dy: d,
                dx: want_dx.then_some(dx),
                rows,
                params: &p,
                grads: g.as_deref(),
                state: &s,
                labels: o.labels,
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
    pub fn tangent(
        &mut self,
        be: &mut dyn Backend,
        o: Outer,
        v: Tensor,
        grads: &[Tensor],
        out: Option<Tensor>,
    ) -> Result<Tensor> {
        let rows = self.rows;
        let input = self.x.expect("the tangent pass follows a forward");
        let tan = self
            .tan
            .expect("tangent buffers are allocated for a critic");
        let writer = self.modules.iter().rposition(|b| !b.module.is_view());
        let mut cur = v;
        let mut written = 0;
        for i in 0..self.modules.len() {
            if self.modules[i].module.is_view() {
                continue;
            }
            let len = rows * self.modules[i].module.output().len();
            let v_out = match out {
                Some(dst) if Some(i) == writer => dst.slice(0, len),
                _ => tan[written % 2].slice(0, len),
            };
            written += 1;
            let (p, g) = (self.views(o.params, i), self.views(grads, i));
            let s = self.state_views(o.state, i);
            let t = Tangent {
                x: if i == 0 { input } else { self.ys[i - 1] },
                y: self.ys[i],
                v_in: cur,
                v_out,
                rows,
                params: &p,
                grads: &g,
                state: &s,
                labels: o.labels,
            };
            self.modules[i].module.tangent(be, &t)?;
            cur = v_out;
        }
        Ok(cur)
    }

    /// Zeroes this sequence's parameter gradients (a block that did not run has none).
    pub fn zero_grads(&self, be: &mut dyn Backend, params: &[Tensor], grads: &[Tensor]) {
        for (g, p) in self.all_views(grads).iter().zip(self.all_views(params)) {
            axpby(be, *g, *p, g.len(), 0.0, 0.0);
        }
    }

    /// grads += scratch over this sequence's tensors.
    pub fn add_grads(&self, be: &mut dyn Backend, grads: &[Tensor], scratch: &[Tensor]) {
        for (g, s) in self.all_views(grads).iter().zip(self.all_views(scratch)) {
            axpby(be, *g, *s, g.len(), 1.0, 1.0);
        }
    }

    pub fn check_tangent(&self) -> Result<()> {
        for b in &self.modules {
            b.module.check_tangent()?;
        }
        Ok(())
    }

    pub fn params_changed(
        &mut self,
        be: &mut dyn Backend,
        params: &[Tensor],
        state: &[Tensor],
        first: bool,
    ) {
        for i in 0..self.modules.len() {
            let (p, s) = (self.views(params, i), self.state_views(state, i));
            self.modules[i].module.params_changed(be, &p, &s, first);
        }
    }

    pub fn batch_statistics(&self) -> bool {
        self.modules.iter().any(|b| b.module.batch_statistics())
    }

    pub fn set_standing_statistics(&mut self, on: bool) {
        for b in &mut self.modules {
            b.module.set_standing_statistics(on);
        }
    }
}

/// Sets each sequence's bases in order and returns the parameter tensor count.
pub fn number(seqs: &mut [&mut Seq]) -> usize {
    let (mut n, mut s) = (0, 0);
    for q in seqs {
        (q.param_base, q.state_base) = (n, s);
        n += q.n_params;
        s += q.n_state;
    }
    n
}

//! Choosing the convolution and batched-matmul variants on this adapter: each is forced by its
//! environment variable, else read from the plans remembered for this adapter and driver, else
//! timed here once on a training-sized launch of each class and remembered (`gpu::autotune`).

use super::autotune::{self, Plan, Variant};
use super::bmm_register::{BmmChoice, BmmClass};
use super::conv_register::{ConvChoice, ConvClass, ConvKind};
use super::{BmmPlan, ConvPlan, GpuBackend, VariantTimes};
use crate::backend::{Backend, WriteMode};
use anyhow::{Result, bail};
use std::time::Instant;

/// `V::ENV` if it names a variant this backend can run; else the plan remembered under `key`;
/// else the fastest of the times `time` measures, remembered under `key`.
fn pick<V: Variant>(
    key: &str,
    can_run: impl Fn(V) -> bool,
    time: impl FnOnce() -> Result<VariantTimes<V>>,
) -> Plan<V> {
    match V::from_env() {
        Some(v) if can_run(v) => return Plan::all(v, V::ENV),
        Some(v) => eprintln!(
            "warning: {}={} needs subgroups of 8 or more invocations, which this adapter lacks; \
             choosing by timing instead",
            V::ENV,
            v.name()
        ),
        None => {}
    }
    if let Some(plan) = Plan::remembered(key) {
        return plan;
    }
    match time() {
        Ok(times) => {
            let plan = Plan::fastest(times);
            plan.remember(key);
            plan
        }
        Err(_) => Plan::all(V::ALL[0], "timing failed"),
    }
}

impl GpuBackend {
    /// The convolution kernel each class of convolution runs (see `gpu::conv_register`).
    pub fn conv_plan(&self) -> &ConvPlan {
        &self.conv_plan
    }

    /// Whether this backend can run variant `v` (`Subgroup` needs subgroups of at least 8).
    pub fn can_run<V: Variant>(&self, v: V) -> bool {
        !v.needs_subgroups() || self.ctx.subgroups
    }

    /// Forces one convolution kernel for every class (tests and benchmarks compare them).
    pub fn set_conv_choice(&mut self, choice: ConvChoice) -> Result<()> {
        if !self.can_run(choice) {
            bail!(
                "adapter {} has no subgroups of 8 or more invocations; the {} convolution \
                 kernels cannot run on it",
                self.ctx.info.name,
                choice.name()
            );
        }
        self.conv_plan = ConvPlan::all(choice, "forced");
        Ok(())
    }

    /// Puts back a plan taken from `conv_plan`.
    pub fn set_conv_plan(&mut self, plan: ConvPlan) {
        self.conv_plan = plan;
    }

    pub(super) fn pick_conv(&mut self) -> ConvPlan {
        let key = autotune::conv_cache_key(&self.ctx.info);
        let usable: Vec<ConvChoice> = ConvChoice::ALL
            .into_iter()
            .filter(|&v| self.can_run(v))
            .collect();
        pick(&key, |v| usable.contains(&v), || self.time_conv_classes())
    }

    /// The batched-matmul kernel each class of product runs (see `gpu::bmm_register`).
    pub fn bmm_plan(&self) -> &BmmPlan {
        &self.bmm_plan
    }

    /// Forces one batched-matmul kernel for every class (tests and benchmarks compare them).
    pub fn set_bmm_choice(&mut self, choice: BmmChoice) {
        self.bmm_plan = BmmPlan::all(choice, "forced");
    }

    /// Puts back a plan taken from `bmm_plan`.
    pub fn set_bmm_plan(&mut self, plan: BmmPlan) {
        self.bmm_plan = plan;
    }

    pub(super) fn pick_bmm(&mut self) -> BmmPlan {
        let key = autotune::bmm_cache_key(&self.ctx.info);
        pick(&key, |_| true, || self.time_bmm_classes())
    }

    /// Runs `launch` once to warm up, then three times per variant this backend can run, each
    /// forced; the best time of each. `force` sets the variant.
    fn time_variants<V: Variant>(
        &mut self,
        force: impl Fn(&mut Self, V) -> Result<()>,
        launch: impl Fn(&mut Self),
    ) -> Result<Vec<(V, f64)>> {
        let mut times = Vec::new();
        let usable: Vec<V> = V::ALL
            .iter()
            .copied()
            .filter(|&v| self.can_run(v))
            .collect();
        for v in usable {
            force(self, v)?;
            let mut best = f64::INFINITY;
            for rep in 0..4 {
                let t = Instant::now();
                launch(self);
                self.wait()?;
                if rep > 0 {
                    best = best.min(t.elapsed().as_secs_f64());
                }
            }
            times.push((v, best));
        }
        Ok(times)
    }

    /// Seconds per convolution of each kernel on each class, best of three, on a layer of a
    /// small DCGAN at batch 8 (64 → 64 channels, 16×16 → 8×8, k4 s2 p1; 3 channels for the
    /// narrow classes).
    pub fn time_conv_classes(&mut self) -> Result<VariantTimes<ConvChoice>> {
        use crate::kernels::conv::{self, ConvGeom, Store};
        let keep = self.conv_plan.clone();
        let mut out = Vec::new();
        for class in ConvClass::all() {
            let (ci, co) = match (class.narrow, class.kind) {
                (false, _) => (64, 64),
                (true, ConvKind::InputGrad) => (3, 64),
                (true, _) => (64, 3),
            };
            let g = ConvGeom {
                n: 8,
                ci,
                h: 16,
                w: 16,
                co,
                kh: 4,
                kw: 4,
                stride: 2,
                pad: 1,
            };
            let x = self.alloc(g.n * g.in_len(), "conv probe x")?;
            let y = self.alloc(g.n * g.out_len(), "conv probe y")?;
            let w = self.alloc(g.weight_len(), "conv probe weight")?;
            let splits = conv::weight_grad_splits(&g);
            let part = self.alloc(splits * g.weight_len(), "conv probe partials")?;
            let times = self.time_variants(Self::set_conv_choice, |be| match class.kind {
                ConvKind::Forward => conv::conv2d_forward(be, &g, y, x, w, Store::PLAIN),
                ConvKind::InputGrad => conv::conv2d_backward_input(be, &g, x, y, w, Store::PLAIN),
                ConvKind::WeightGrad => conv::conv2d_backward_weights(
                    be,
                    &g,
                    (w, WriteMode::Overwrite),
                    x,
                    y,
                    Some(part),
                ),
            })?;
            out.push((class.name().to_string(), times));
        }
        self.conv_plan = keep;
        Ok(out)
    }

    /// Seconds per product of each kernel on each class, best of three, on the products of a
    /// 64-channel attention layer at 16×16 (256 positions), batch 8: the energies qᵀk (K = 8)
    /// for short reductions, v·attnᵀ (K = 256) for long ones.
    pub fn time_bmm_classes(&mut self) -> Result<VariantTimes<BmmChoice>> {
        use crate::kernels::batched_matmul::{Batched, BmmShape, BmmStore, batched_matmul};
        let keep = self.bmm_plan.clone();
        let (batch, c, c8, np) = (8, 64, 8, 256);
        let mut out = Vec::new();
        for class in BmmClass::ALL {
            // (m, n, k, A's and B's (row, column, batch) strides, A's and B's lengths)
            let (m, n, k, a_st, b_st, a_len, b_len) = match class {
                BmmClass::ShortK => {
                    let qk = c8 * np;
                    (np, np, c8, (1, np, qk), (np, 1, qk), qk, qk)
                }
                BmmClass::LongK => (
                    c,
                    np,
                    np,
                    (np, 1, c * np),
                    (1, np, np * np),
                    c * np,
                    np * np,
                ),
            };
            let a = self.alloc(batch * a_len, "bmm probe A")?;
            let b = self.alloc(batch * b_len, "bmm probe B")?;
            let cm = self.alloc(batch * m * n, "bmm probe C")?;
            let av = Batched::new(a, a_st.0, a_st.1, a_st.2);
            let bv = Batched::new(b, b_st.0, b_st.1, b_st.2);
            let force = |be: &mut Self, v| {
                be.set_bmm_choice(v);
                Ok(())
            };
            let times = self.time_variants(force, |be| {
                batched_matmul(
                    be,
                    cm,
                    av,
                    bv,
                    BmmStore::default(),
                    BmmShape { batch, m, n, k },
                )
            })?;
            out.push((class.name().to_string(), times));
        }
        self.bmm_plan = keep;
        Ok(out)
    }
}

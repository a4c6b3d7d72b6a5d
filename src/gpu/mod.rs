//! The GPU backend: a launch is recorded as (pipeline, bind group, parameter slot, workgroups)
//! and a `flush` encodes all of them into one compute pass of one command encoder, writes every
//! recorded parameter block with one `write_buffer`, and submits once. Nothing is read back
//! unless `read` is called.
//!
//! - `context`: adapter discovery and the device;
//! - `pipelines`: the pipeline, layout and bind-group caches;
//! - `matmul`, `conv_register`, `bmm_register` and `autotune`: the matmul, convolution and
//!   batched-matmul variants and the per-adapter choice between them (`variants` times them);
//! - `profiler`: per-dispatch times from timestamp queries.

pub mod autotune;
pub mod bmm_register;
pub mod context;
pub mod conv_register;
pub mod matmul;
pub mod pipelines;
pub mod profiler;
mod variants;

use crate::backend::{Backend, Counters, MatView, Tensor, WriteMode};
use crate::kernels::matmul::{FLAG_SCALAR_BIAS, MATMUL, MatmulParams};
use crate::kernels::{KernelDef, MAX_BINDINGS, cast};
use anyhow::{Context, Result, bail};
pub use autotune::{BmmPlan, ConvPlan, MatmulPlan, Variant};
pub use bmm_register::BmmChoice;
pub use context::{AdapterSummary, GpuContext, list_adapters};
pub use conv_register::ConvChoice;
pub use matmul::MatmulChoice;
use pipelines::{PARAMS_BYTES, PipelineKey, Pipelines};
pub use profiler::ProfiledDispatch;
use profiler::{PROFILE_SLOTS, Profiler, Timed};
use std::time::Instant;

/// Seconds per product of each matmul kernel on one class of product.
pub type ClassTimes = (&'static str, Vec<(MatmulChoice, f64)>);

/// Seconds per launch of each variant of a kernel on each class of launch.
pub type VariantTimes<V> = Vec<(String, Vec<(V, f64)>)>;

/// Parameter slots per flush; recording more flushes early.
const PARAM_SLOTS: usize = 4096;

struct Recorded {
    key: PipelineKey,
    bind_group: usize,
    slot: u32,
    groups: [u32; 3],
    /// The first parameter words (sizes), for profile labels.
    dims: [u32; 3],
    /// Shape, FLOPs and bytes, while profiling.
    work: Option<(String, f64, f64)>,
}

pub struct GpuBackend {
    pub ctx: GpuContext,
    buffers: Vec<wgpu::Buffer>,
    pipelines: Pipelines,
    params_buffer: wgpu::Buffer,
    slot_stride: usize,
    params: Vec<u8>,
    recorded: Vec<Recorded>,
    counters: Counters,
    plan: MatmulPlan,
    conv_plan: ConvPlan,
    bmm_plan: BmmPlan,
    sg_tile: matmul::SgTile,
    profiler: Option<Profiler>,
}

impl GpuBackend {
    pub fn new(selector: Option<&str>) -> Result<Self> {
        Ok(Self::from_context(GpuContext::new(selector)?))
    }

    pub fn from_context(ctx: GpuContext) -> Self {
        let slot_stride =
            (ctx.limits.min_uniform_buffer_offset_alignment as usize).max(PARAMS_BYTES as usize);
        let params_buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel parameters"),
            size: (slot_stride * PARAM_SLOTS) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut be = Self {
            ctx,
            buffers: Vec::new(),
            pipelines: Pipelines::default(),
            params_buffer,
            slot_stride,
            params: Vec::with_capacity(slot_stride * PARAM_SLOTS),
            recorded: Vec::new(),
            counters: Counters::default(),
            plan: MatmulPlan::all(MatmulChoice::Tiled, "default"),
            conv_plan: ConvPlan::all(ConvChoice::Tiled, "default"),
            bmm_plan: BmmPlan::all(BmmChoice::Tiled, "default"),
            sg_tile: matmul::SgTile::from_env(),
            profiler: None,
        };
        be.plan = be.pick_matmul();
        be.conv_plan = be.pick_conv();
        be.bmm_plan = be.pick_bmm();
        be
    }

    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.ctx.info
    }

    /// The matmul kernel each class of product runs (see `gpu::autotune`).
    pub fn matmul_plan(&self) -> &MatmulPlan {
        &self.plan
    }

    /// The kernel forward products run (the class that dominates training).
    pub fn matmul_choice(&self) -> MatmulChoice {
        self.plan.choice(autotune::CLASSES[0].1)
    }

    /// Forces one matmul kernel for every product (tests and benchmarks compare them).
    /// `Subgroup` needs an adapter with subgroups of at least 8 invocations.
    pub fn set_matmul_choice(&mut self, choice: MatmulChoice) -> Result<()> {
        if choice == MatmulChoice::Subgroup && !self.ctx.subgroups {
            bail!(
                "adapter {} has no subgroups of 8 or more invocations; the subgroup matmul \
                 cannot run on it",
                self.ctx.info.name
            );
        }
        self.plan = MatmulPlan::all(choice, "forced");
        Ok(())
    }

    /// Puts back a plan taken from `matmul_plan`.
    pub fn set_matmul_plan(&mut self, plan: MatmulPlan) {
        self.plan = plan;
    }

    /// `DUEL_MATMUL` if set; else the plan remembered for this adapter; else time both kernels
    /// on each class of product and remember the faster.
    fn pick_matmul(&mut self) -> MatmulPlan {
        if let Some(c) = std::env::var("DUEL_MATMUL")
            .ok()
            .and_then(|s| MatmulChoice::parse(&s))
            && self.set_matmul_choice(c).is_ok()
        {
            return MatmulPlan::all(c, "DUEL_MATMUL");
        }
        if !self.ctx.subgroups {
            return MatmulPlan::all(MatmulChoice::Tiled, "no subgroups");
        }
        let key = autotune::cache_key(&self.ctx.info, self.sg_tile);
        if let Some(plan) = autotune::remembered(&key) {
            return plan;
        }
        match self.time_matmul_classes() {
            Ok(times) => {
                let mut plan = MatmulPlan::all(MatmulChoice::Tiled, "timed");
                for (class, t) in times {
                    let best = t
                        .into_iter()
                        .min_by(|a, b| a.1.total_cmp(&b.1))
                        .expect("two candidates")
                        .0;
                    plan.by_class.insert(class.to_string(), best);
                }
                autotune::remember(&key, &plan);
                plan
            }
            Err(_) => MatmulPlan::all(MatmulChoice::Tiled, "timing failed"),
        }
    }

    /// Seconds per product of each kernel on each class (a 128×256·256×512 product in that
    /// class's layout), best of three.
    pub fn time_matmul_classes(&mut self) -> Result<Vec<ClassTimes>> {
        let (m, k, n) = (128, 256, 512);
        let a = self.alloc(m * k, "matmul probe A")?;
        let b = self.alloc(k * n, "matmul probe B")?;
        let c = self.alloc(m * n, "matmul probe C")?;
        let keep = self.plan.clone();
        let mut out = Vec::new();
        for (class, l) in autotune::CLASSES {
            let av = if l.a_k_fast {
                MatView::new(a, k, 1)
            } else {
                MatView::new(a, 1, m)
            };
            let bv = if l.b_n_fast {
                MatView::new(b, n, 1)
            } else {
                MatView::new(b, 1, k)
            };
            let mut times = Vec::new();
            for choice in [MatmulChoice::Tiled, MatmulChoice::Subgroup] {
                if self.set_matmul_choice(choice).is_err() {
                    continue;
                }
                let mut best = f64::INFINITY;
                for rep in 0..4 {
                    let t = Instant::now();
                    let shape = crate::kernels::matmul::MatmulShape { m, n, k };
                    crate::kernels::matmul::matmul(self, c, av, bv, shape, WriteMode::Overwrite);
                    self.wait()?;
                    if rep > 0 {
                        best = best.min(t.elapsed().as_secs_f64());
                    }
                }
                times.push((choice, best));
            }
            out.push((class, times));
        }
        self.plan = keep;
        Ok(out)
    }

    /// Times every dispatch with timestamp queries from now on (each in its own compute pass,
    /// which costs a little), until turned off; `take_profile` returns the timings.
    pub fn set_profiling(&mut self, on: bool) -> Result<()> {
        self.flush();
        if !on {
            self.profiler = None;
            return Ok(());
        }
        if !self.ctx.timestamps {
            bail!(
                "adapter {} does not support timestamp queries, so per-kernel GPU times cannot \
                 be measured on it",
                self.ctx.info.name
            );
        }
        self.profiler = Some(Profiler::new(&self.ctx.device, &self.ctx.queue));
        Ok(())
    }

    /// The dispatches timed since profiling was turned on or last taken, in recording order.
    pub fn take_profile(&mut self) -> Vec<ProfiledDispatch> {
        self.flush();
        self.profiler
            .as_mut()
            .map(|p| std::mem::take(&mut p.done))
            .unwrap_or_default()
    }

    /// Records one dispatch of `key` over `bufs` with the parameter block `params`.
    fn record(&mut self, key: PipelineKey, params: &[u8], bufs: &[Tensor], groups: [u32; 3]) {
        let limit = if self.profiler.is_some() {
            PROFILE_SLOTS
        } else {
            PARAM_SLOTS
        };
        if self.recorded.len() == limit {
            self.flush();
        }
        self.pipelines.compile(&self.ctx.device, key, self.sg_tile);
        let mut ids = [u32::MAX; MAX_BINDINGS];
        for (id, t) in ids.iter_mut().zip(bufs) {
            *id = t.buf;
        }
        let buffers: Vec<&wgpu::Buffer> =
            bufs.iter().map(|t| &self.buffers[t.buf as usize]).collect();
        let bind_group =
            self.pipelines
                .bind_group(&self.ctx.device, key, &self.params_buffer, &buffers, ids);
        let slot = self.recorded.len();
        self.params.resize(slot * self.slot_stride, 0);
        assert!(
            params.len() as u64 <= PARAMS_BYTES,
            "{key:?}: params too large"
        );
        self.params.extend_from_slice(params);
        let word = |i: usize| {
            params
                .get(4 * i..4 * i + 4)
                .map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        };
        let work = self
            .profiler
            .is_some()
            .then(|| profiler::describe_launch(key.def(), params));
        self.recorded.push(Recorded {
            key,
            bind_group,
            slot: (slot * self.slot_stride) as u32,
            groups,
            dims: [word(0), word(1), word(2)],
            work,
        });
    }

    /// Records a matmul: checks every view against its buffer (the matmul modules run without
    /// runtime bounds checks), then runs the subgroup kernel where the plan and the operands'
    /// alignment allow, else the tiled one.
    fn launch_matmul(&mut self, params: &[u8], bufs: &[Tensor]) {
        let mut p: MatmulParams = cast(params);
        let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
        if m == 0 || n == 0 {
            return;
        }
        let [at, bt, bias_t, c] = [bufs[0], bufs[1], bufs[2], bufs[3]];
        let mut a = MatView::new(at, p.a_rs as usize, p.a_cs as usize);
        let mut b = MatView::new(bt, p.b_rs as usize, p.b_cs as usize);
        let len = |t: Tensor| self.buffers[t.buf as usize].size() as usize / 4;
        let c_view = MatView::new(c, n, 1);
        for (what, v, rows, cols) in [("A", &a, m, k), ("B", &b, k, n), ("C", &c_view, m, n)] {
            if let Some(end) = matmul::view_extent(v, rows, cols) {
                assert!(
                    end < len(v.t) && end < v.t.offset as usize + v.t.len().max(1),
                    "matmul: {what} reaches word {end}, outside its view or buffer"
                );
            }
        }
        let bias_need = if p.flags & crate::kernels::matmul::FLAG_ACT_GRAD != 0 {
            m * n
        } else if p.flags & crate::kernels::matmul::FLAG_BIAS != 0 {
            n
        } else {
            0
        };
        assert!(
            bias_t.len() >= bias_need && bias_t.offset as usize + bias_need <= len(bias_t),
            "matmul: the bias (or y) view holds {} < {bias_need} words",
            bias_t.len
        );
        let mut layout = matmul::sg_layout(&a, &b, m, n, k)
            .filter(|l| self.plan.choice(*l) == MatmulChoice::Subgroup);
        let transposable = p.flags & crate::kernels::matmul::FLAG_ACT_GRAD == 0;
        if n == 1 && m > 1 && transposable && self.matmul_choice() == MatmulChoice::Subgroup {
            // A matrix–vector product (D's logit layer): computed as Cᵀ[1,m] = Bᵀ·Aᵀ, which
            // has C's memory layout, so the wide dimension runs along the kernel's columns
            // instead of wasting all but one of them.
            let at2 = MatView::new(b.t, 0, b.rs);
            let bt2 = MatView::new(a.t, a.cs, a.rs);
            if let Some(l) = matmul::sg_layout(&at2, &bt2, 1, m, k) {
                (a, b, layout) = (at2, bt2, Some(l));
                (p.m, p.n) = (1, m as u32);
                p.flags |= FLAG_SCALAR_BIAS;
            }
        }
        (p.a_rs, p.a_cs, p.b_rs, p.b_cs) = (a.rs as u32, a.cs as u32, b.rs as u32, b.cs as u32);
        let bufs = [a.t, b.t, bias_t, c];
        p.a_off = a.t.offset;
        p.b_off = b.t.offset;
        let (key, groups) = match layout {
            Some(l) => (
                PipelineKey::MatmulSubgroup(l),
                [
                    p.n.div_ceil(self.sg_tile.tile_n()),
                    p.m.div_ceil(self.sg_tile.rows),
                    1,
                ],
            ),
            None => (PipelineKey::Kernel(&MATMUL), (MATMUL.workgroups)(params)),
        };
        self.record(key, bytemuck::bytes_of(&p), &bufs, groups);
    }

    fn read_bytes(&mut self, t: Tensor) -> Result<Vec<u8>> {
        self.flush();
        let size = 4 * t.len as u64;
        if size == 0 {
            return Ok(Vec::new());
        }
        let staging = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        encoder.copy_buffer_to_buffer(
            &self.buffers[t.buf as usize],
            4 * t.offset as u64,
            &staging,
            0,
            size,
        );
        self.ctx.queue.submit([encoder.finish()]);
        self.counters.submits += 1;
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .context("waiting for the GPU")?;
        rx.recv()
            .context("the GPU dropped a readback")?
            .context("mapping a readback buffer")?;
        let data = staging
            .get_mapped_range(..)
            .map_err(|e| anyhow::anyhow!("reading a readback buffer: {e:?}"))?
            .to_vec();
        staging.unmap();
        self.counters.bytes_read += size;
        Ok(data)
    }

    /// Blocks until all submitted work is done.
    pub fn wait(&mut self) -> Result<()> {
        self.flush();
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .context("waiting for the GPU")?;
        Ok(())
    }

    fn flush_profiled(&mut self) -> Result<()> {
        let timed: Vec<Timed> = self
            .recorded
            .iter()
            .map(|r| Timed {
                label: r.key.entry(),
                dims: r.dims,
                pipeline: &self.pipelines.get(r.key).pipeline,
                bind_group: &self.pipelines.bind_groups[r.bind_group],
                slot: r.slot,
                groups: r.groups,
                work: r.work.as_ref().expect("recorded while profiling"),
            })
            .collect();
        let prof = self.profiler.as_mut().expect("profiling is on");
        prof.run(&self.ctx.device, &self.ctx.queue, &timed)
    }
}

impl Backend for GpuBackend {
    fn name(&self) -> String {
        format!("{} ({:?})", self.ctx.info.name, self.ctx.info.backend)
    }

    fn alloc(&mut self, len: usize, label: &str) -> Result<Tensor> {
        let bytes = 4 * len.max(1) as u64;
        let limit = self.ctx.limits.max_storage_buffer_binding_size;
        if bytes > limit {
            bail!(
                "{label}: a buffer of {bytes} bytes exceeds this adapter's \
                 max_storage_buffer_binding_size of {limit} bytes; use a smaller batch or model"
            );
        }
        let buffer = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.buffers.push(buffer);
        Ok(Tensor {
            buf: (self.buffers.len() - 1) as u32,
            offset: 0,
            len: u32::try_from(len).context("buffer too large")?,
        })
    }

    fn max_binding_words(&self) -> usize {
        (self.ctx.limits.max_storage_buffer_binding_size / 4) as usize
    }

    fn write(&mut self, t: Tensor, data: &[f32]) {
        self.write_u32(t, bytemuck::cast_slice(data));
    }

    fn write_u32(&mut self, t: Tensor, data: &[u32]) {
        assert_eq!(
            data.len(),
            t.len(),
            "write: {} words into a view of {}",
            data.len(),
            t.len
        );
        // Recorded kernels must run before this write lands.
        self.flush();
        self.ctx.queue.write_buffer(
            &self.buffers[t.buf as usize],
            4 * t.offset as u64,
            bytemuck::cast_slice(data),
        );
        self.counters.bytes_written += 4 * data.len() as u64;
    }

    fn read(&mut self, t: Tensor) -> Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes(t)?))
    }

    fn read_u32(&mut self, t: Tensor) -> Result<Vec<u32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes(t)?))
    }

    fn flush(&mut self) {
        if self.recorded.is_empty() {
            return;
        }
        self.ctx
            .queue
            .write_buffer(&self.params_buffer, 0, &self.params);
        if self.profiler.is_some() {
            if let Err(e) = self.flush_profiled() {
                panic!("profiling a flush failed: {e:#}");
            }
        } else {
            let mut encoder =
                self.ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("duel step"),
                    });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("duel kernels"),
                    timestamp_writes: None,
                });
                let mut current: Option<PipelineKey> = None;
                for r in &self.recorded {
                    if current != Some(r.key) {
                        pass.set_pipeline(&self.pipelines.get(r.key).pipeline);
                        current = Some(r.key);
                    }
                    pass.set_bind_group(0, &self.pipelines.bind_groups[r.bind_group], &[r.slot]);
                    pass.dispatch_workgroups(r.groups[0], r.groups[1], r.groups[2]);
                }
            }
            self.ctx.queue.submit([encoder.finish()]);
        }
        self.counters.submits += 1;
        self.counters.dispatches += self.recorded.len() as u64;
        self.recorded.clear();
        self.params.clear();
    }

    fn counters(&self) -> Counters {
        self.counters
    }

    fn launch(&mut self, kernel: &'static KernelDef, params: &[u8], bufs: &[Tensor]) {
        if kernel == &MATMUL {
            return self.launch_matmul(params, bufs);
        }
        if let Some(class) = conv_register::class_of(kernel.name, params) {
            let choice = self.conv_plan.choice(class.name());
            if choice != ConvChoice::Tiled && self.can_run(choice) {
                let groups = conv_register::workgroups(class, params);
                let key = PipelineKey::ConvRegister(class, choice);
                return self.record(key, params, bufs, groups);
            }
        }
        if kernel == &crate::kernels::batched_matmul::BATCHED_MATMUL
            && self
                .bmm_plan
                .choice(bmm_register::BmmClass::of(params).name())
                == BmmChoice::Register
        {
            let groups = bmm_register::workgroups(params);
            return self.record(PipelineKey::BmmRegister, params, bufs, groups);
        }
        let groups = (kernel.workgroups)(params);
        self.record(PipelineKey::Kernel(kernel), params, bufs, groups);
    }
}

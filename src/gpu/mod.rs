//! The GPU backend: kernels are recorded as (pipeline, bind group, parameter slot, workgroups)
//! and a `flush` encodes all of them into one compute pass of one command encoder, writes every
//! recorded parameter block with one `write_buffer`, and submits once. Nothing is read back
//! unless `read` is called.

pub mod context;
pub mod kernels;
pub mod matmul;

use crate::backend::{
    Activation, AdamStep, Backend, Counters, DeviceRows, GanLossKind, MAX_ROW_CHUNKS, MatView,
    Tensor,
};
use crate::rng::RngKey;
use anyhow::{Context, Result, bail};
pub use context::{AdapterSummary, GpuContext, list_adapters};
use kernels::{Access, Kernel};
pub use matmul::MatmulChoice;
use std::collections::HashMap;
use std::time::Instant;

/// Bytes of one kernel's parameter block (every `Params` struct in `shaders/` fits).
const PARAMS_BYTES: u64 = 64;
/// Parameter slots per flush; recording more flushes early.
const PARAM_SLOTS: usize = 4096;
/// Storage bindings a kernel may have (gather has six).
const MAX_BINDINGS: usize = 6;

struct Compiled {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

struct Recorded {
    kernel: Kernel,
    bind_group: usize,
    slot: u32,
    groups: [u32; 3],
    /// The first parameter words (sizes), for profile labels.
    dims: [u32; 3],
}

/// Most dispatches one profiled flush can time (two timestamps each).
const PROFILE_SLOTS: usize = (wgpu::QUERY_SET_MAX_QUERIES / 2) as usize;

/// Timestamp queries around every dispatch while profiling is on.
struct Profiler {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    period_ns: f64,
    done: Vec<ProfiledDispatch>,
}

/// One dispatch's GPU time from timestamp queries.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfiledDispatch {
    /// The WGSL entry point.
    pub kernel: &'static str,
    /// The kernel's leading size parameters, e.g. (m, n, k) of a matmul.
    pub dims: [u32; 3],
    pub ns: f64,
}

/// Buffers bound to one dispatch, in binding order (unused entries are u32::MAX).
type BindKey = (Kernel, [u32; MAX_BINDINGS]);

pub struct GpuBackend {
    pub ctx: GpuContext,
    buffers: Vec<wgpu::Buffer>,
    dummy: Tensor,
    modules: HashMap<&'static str, wgpu::ShaderModule>,
    compiled: HashMap<Kernel, Compiled>,
    bind_group_index: HashMap<BindKey, usize>,
    bind_groups: Vec<wgpu::BindGroup>,
    params_buffer: wgpu::Buffer,
    slot_stride: usize,
    params: Vec<u8>,
    recorded: Vec<Recorded>,
    counters: Counters,
    matmul_choice: MatmulChoice,
    sg_tile: matmul::SgTile,
    profiler: Option<Profiler>,
}

/// A kernel's parameter block: 4-byte fields in the order of its WGSL `Params` struct.
#[derive(Default)]
struct Params(Vec<u32>);

impl Params {
    fn u(mut self, v: usize) -> Self {
        self.0
            .push(u32::try_from(v).expect("kernel parameter exceeds u32"));
        self
    }
    fn f(mut self, v: f32) -> Self {
        self.0.push(v.to_bits());
        self
    }
    fn key(self, key: RngKey) -> Self {
        let s = self
            .u((key.seed & 0xffff_ffff) as usize)
            .u((key.seed >> 32) as usize)
            .u(key.stream as usize);
        s.u((key.counter & 0xffff_ffff) as usize)
            .u((key.counter >> 32) as usize)
    }
}

fn elementwise_groups(n: usize) -> [u32; 3] {
    [(n.div_ceil(256).clamp(1, 65_535)) as u32, 1, 1]
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
            dummy: Tensor {
                buf: 0,
                offset: 0,
                len: 1,
            },
            modules: HashMap::new(),
            compiled: HashMap::new(),
            bind_group_index: HashMap::new(),
            bind_groups: Vec::new(),
            params_buffer,
            slot_stride,
            params: Vec::with_capacity(slot_stride * PARAM_SLOTS),
            recorded: Vec::new(),
            counters: Counters::default(),
            matmul_choice: MatmulChoice::Tiled,
            sg_tile: matmul::SgTile::from_env(),
            profiler: None,
        };
        be.dummy = be.alloc(1, "unused binding").expect("one word always fits");
        be.matmul_choice = be.pick_matmul();
        be
    }

    /// The matmul kernel this backend records (see `gpu::matmul`).
    pub fn matmul_choice(&self) -> MatmulChoice {
        self.matmul_choice
    }

    /// Forces a matmul kernel (tests and benchmarks compare them). `Subgroup` needs an adapter
    /// with subgroups of at least 8 invocations.
    pub fn set_matmul_choice(&mut self, choice: MatmulChoice) -> Result<()> {
        if choice == MatmulChoice::Subgroup && !self.ctx.subgroups {
            bail!(
                "adapter {} has no subgroups of 8 or more invocations; the subgroup matmul \
                 cannot run on it",
                self.ctx.info.name
            );
        }
        self.matmul_choice = choice;
        Ok(())
    }

    /// `DUEL_MATMUL=tiled|subgroup` if set, else the faster of the two on a training-sized
    /// product, timed on this adapter (a few ms of work; pipelines are compiled once anyway).
    fn pick_matmul(&mut self) -> MatmulChoice {
        if let Some(c) = std::env::var("DUEL_MATMUL")
            .ok()
            .and_then(|s| MatmulChoice::parse(&s))
            && self.set_matmul_choice(c).is_ok()
        {
            return c;
        }
        if !self.ctx.subgroups {
            return MatmulChoice::Tiled;
        }
        match self.time_matmul_choices() {
            Ok(times) => {
                times
                    .into_iter()
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .expect("two candidates")
                    .0
            }
            Err(_) => MatmulChoice::Tiled,
        }
    }

    /// Seconds per (64×256)·(256×512) product of each matmul kernel, best of three.
    pub fn time_matmul_choices(&mut self) -> Result<Vec<(MatmulChoice, f64)>> {
        let (m, k, n) = (64, 256, 512);
        let x = self.alloc(m * k, "matmul probe x")?;
        let w = self.alloc(k * n, "matmul probe w")?;
        let y = self.alloc(m * n, "matmul probe y")?;
        let keep = self.matmul_choice;
        let mut out = Vec::new();
        for choice in [MatmulChoice::Tiled, MatmulChoice::Subgroup] {
            if self.set_matmul_choice(choice).is_err() {
                continue;
            }
            self.matmul_forward(y, x, w, None, m, k, n);
            self.wait()?;
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let t = Instant::now();
                self.matmul_forward(y, x, w, None, m, k, n);
                self.wait()?;
                best = best.min(t.elapsed().as_secs_f64());
            }
            out.push((choice, best));
        }
        self.matmul_choice = keep;
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
        let n = 2 * PROFILE_SLOTS as u64;
        let device = &self.ctx.device;
        self.profiler = Some(Profiler {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kernel timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: n as u32,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamp resolve"),
                size: 8 * n,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            readback: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamp readback"),
                size: 8 * n,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            period_ns: self.ctx.queue.get_timestamp_period() as f64,
            done: Vec::new(),
        });
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

    /// Records `recorded` with a timestamp pair around each dispatch, submits, and reads the
    /// times back (profiling only: this waits for the GPU).
    fn flush_profiled(&mut self) -> Result<()> {
        let prof = self.profiler.as_ref().expect("profiling is on");
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("duel profiled step"),
            });
        for (i, r) in self.recorded.iter().enumerate() {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(r.kernel.spec().entry),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &prof.queries,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                }),
            });
            pass.set_pipeline(&self.compiled[&r.kernel].pipeline);
            pass.set_bind_group(0, &self.bind_groups[r.bind_group], &[r.slot]);
            pass.dispatch_workgroups(r.groups[0], r.groups[1], r.groups[2]);
        }
        let n = 2 * self.recorded.len() as u32;
        encoder.resolve_query_set(&prof.queries, 0..n, &prof.resolve, 0);
        encoder.copy_buffer_to_buffer(&prof.resolve, 0, &prof.readback, 0, 8 * n as u64);
        self.ctx.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        prof.readback
            .slice(..8 * n as u64)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .context("waiting for the GPU")?;
        rx.recv()
            .context("the GPU dropped a readback")?
            .context("mapping the timestamps")?;
        let ticks: Vec<u64> = {
            let view = prof
                .readback
                .slice(..8 * n as u64)
                .get_mapped_range()
                .map_err(|e| anyhow::anyhow!("reading timestamps: {e:?}"))?;
            bytemuck::pod_collect_to_vec(&view)
        };
        prof.readback.unmap();
        let period = prof.period_ns;
        let timed: Vec<ProfiledDispatch> = self
            .recorded
            .iter()
            .enumerate()
            .map(|(i, r)| ProfiledDispatch {
                kernel: r.kernel.spec().entry,
                dims: r.dims,
                ns: ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period,
            })
            .collect();
        self.profiler
            .as_mut()
            .expect("profiling is on")
            .done
            .extend(timed);
        Ok(())
    }

    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.ctx.info
    }

    fn compiled(&mut self, kernel: Kernel) -> &Compiled {
        if !self.compiled.contains_key(&kernel) {
            let spec = kernel.spec();
            let device = &self.ctx.device;
            let sg_tile = self.sg_tile;
            let module = self.modules.entry(spec.shader).or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(spec.shader),
                    source: wgpu::ShaderSource::Wgsl(kernels::shader_text(kernel, sg_tile).into()),
                };
                if kernels::trusted(spec.shader) {
                    // SAFETY: see `kernels::trusted`: the host checks each view against its
                    // buffer and the kernel keeps every index inside the view.
                    unsafe {
                        device.create_shader_module_trusted(
                            desc,
                            wgpu::ShaderRuntimeChecks::unchecked(),
                        )
                    }
                } else {
                    device.create_shader_module(desc)
                }
            });
            let mut entries = vec![wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(PARAMS_BYTES),
                },
                count: None,
            }];
            for (i, access) in spec.bindings.iter().enumerate() {
                entries.push(wgpu::BindGroupLayoutEntry {
                    binding: i as u32 + 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: *access == Access::Read,
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                });
            }
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(spec.entry),
                entries: &entries,
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(spec.entry),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(spec.entry),
                layout: Some(&pipeline_layout),
                module,
                entry_point: Some(spec.entry),
                compilation_options: Default::default(),
                cache: None,
            });
            self.compiled.insert(kernel, Compiled { pipeline, layout });
        }
        &self.compiled[&kernel]
    }

    /// Records one dispatch of `kernel` over `bufs` (its storage bindings in order).
    fn record(&mut self, kernel: Kernel, bufs: &[Tensor], params: Params, groups: [u32; 3]) {
        let spec = kernel.spec();
        assert_eq!(
            bufs.len(),
            spec.bindings.len(),
            "{kernel:?}: wrong binding count"
        );
        for (i, (t, a)) in bufs.iter().zip(spec.bindings).enumerate() {
            if *a == Access::ReadWrite {
                for (j, u) in bufs.iter().enumerate() {
                    assert!(
                        j == i || u.buf != t.buf,
                        "{kernel:?}: binding {} is written and also bound as {}: outputs may \
                         not alias other bindings",
                        i + 1,
                        j + 1
                    );
                }
            }
        }
        let limit = if self.profiler.is_some() {
            PROFILE_SLOTS
        } else {
            PARAM_SLOTS
        };
        if self.recorded.len() == limit {
            self.flush();
        }
        let mut key: BindKey = (kernel, [u32::MAX; MAX_BINDINGS]);
        for (k, t) in key.1.iter_mut().zip(bufs) {
            *k = t.buf;
        }
        self.compiled(kernel);
        let bind_group = match self.bind_group_index.get(&key) {
            Some(&i) => i,
            None => {
                self.compiled(kernel);
                let layout = &self.compiled[&kernel].layout;
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &self.params_buffer,
                        offset: 0,
                        size: wgpu::BufferSize::new(PARAMS_BYTES),
                    }),
                }];
                for (i, t) in bufs.iter().enumerate() {
                    entries.push(wgpu::BindGroupEntry {
                        binding: i as u32 + 1,
                        resource: self.buffers[t.buf as usize].as_entire_binding(),
                    });
                }
                let bg = self
                    .ctx
                    .device
                    .create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(spec.entry),
                        layout,
                        entries: &entries,
                    });
                self.bind_groups.push(bg);
                self.bind_group_index
                    .insert(key, self.bind_groups.len() - 1);
                self.bind_groups.len() - 1
            }
        };
        let slot = self.recorded.len();
        self.params.resize(slot * self.slot_stride, 0);
        let bytes: &[u8] = bytemuck::cast_slice(&params.0);
        assert!(
            bytes.len() as u64 <= PARAMS_BYTES,
            "{kernel:?}: params too large"
        );
        self.params.extend_from_slice(bytes);
        let word = |i: usize| params.0.get(i).copied().unwrap_or(0);
        self.recorded.push(Recorded {
            kernel,
            bind_group,
            slot: (slot * self.slot_stride) as u32,
            groups,
            dims: [word(0), word(1), word(2)],
        });
    }

    /// Records C = act(A·B + bias (+ C)), or with `act_grad_y` C = (A·B) ⊙ f'(y).
    #[allow(clippy::too_many_arguments)]
    fn record_matmul(
        &mut self,
        c: Tensor,
        a: MatView,
        b: MatView,
        bias: Option<Tensor>,
        act_grad_y: Option<Tensor>,
        act: Activation,
        m: usize,
        n: usize,
        k: usize,
        accumulate: bool,
    ) {
        if m == 0 || n == 0 {
            return;
        }
        // The matmul modules are compiled without runtime bounds checks: every view must lie
        // inside its buffer (the kernels keep their indices inside the views).
        let len = |t: Tensor| self.buffers[t.buf as usize].size() as usize / 4;
        let a_end = matmul::view_extent(&a, m, k);
        let b_end = matmul::view_extent(&b, k, n);
        let c_end = matmul::view_extent(&MatView::new(c, n, 1), m, n);
        for (what, t, end) in [("A", a.t, a_end), ("B", b.t, b_end), ("C", c, c_end)] {
            if let Some(end) = end {
                assert!(
                    end < len(t) && end < t.offset as usize + t.len().max(1),
                    "matmul: {what} reaches word {end}, outside its view or buffer"
                );
            }
        }
        if let Some(bt) = bias {
            assert!(bt.len() >= n, "matmul: bias holds {} < {n}", bt.len);
            assert!(
                bt.offset as usize + n <= len(bt),
                "matmul: bias outside its buffer"
            );
        }
        if let Some(y) = act_grad_y {
            assert!(y.len() >= m * n, "matmul: y holds {} < {m}×{n}", y.len);
            assert!(
                y.offset as usize + m * n <= len(y),
                "matmul: y outside its buffer"
            );
        }
        let mut flags = bias.is_some() as usize
            | (accumulate as usize) << 1
            | (act_grad_y.is_some() as usize) << 3;
        let bias_t = act_grad_y.or(bias).unwrap_or(a.t);
        let (mut a, mut b, mut m, mut n) = (a, b, m, n);
        let mut layout = match self.matmul_choice {
            MatmulChoice::Subgroup => matmul::sg_layout(&a, &b, m, n, k),
            MatmulChoice::Tiled => None,
        };
        if self.matmul_choice == MatmulChoice::Subgroup && n == 1 && m > 1 {
            // A matrix–vector product (D's logit layer): computed as Cᵀ[1,m] = Bᵀ·Aᵀ, which
            // has C's memory layout, so the wide dimension runs along the kernel's columns
            // instead of wasting all but one of them.
            let at = MatView::new(b.t, 0, b.rs);
            let bt = MatView::new(a.t, a.cs, a.rs);
            if let Some(l) = matmul::sg_layout(&at, &bt, 1, m, k) {
                (a, b, m, n, layout) = (at, bt, 1, m, Some(l));
                flags |= 4;
            }
        }
        let params = Params::default()
            .u(m)
            .u(n)
            .u(k)
            .u(flags)
            .u(a.t.offset as usize)
            .u(a.rs)
            .u(a.cs)
            .u(b.t.offset as usize)
            .u(b.rs)
            .u(b.cs)
            .u(c.offset as usize)
            .u(bias_t.offset as usize)
            .u(act.code() as usize)
            .f(act.alpha());
        let (kernel, groups) = match layout {
            Some(l) => (
                Kernel::MatmulSubgroup(l),
                [
                    n.div_ceil(self.sg_tile.tile_n() as usize) as u32,
                    m.div_ceil(self.sg_tile.rows as usize) as u32,
                    1,
                ],
            ),
            None => (
                Kernel::Matmul,
                [n.div_ceil(64) as u32, m.div_ceil(64) as u32, 1],
            ),
        };
        self.record(kernel, &[a.t, b.t, bias_t, c], params, groups);
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
            self.counters.submits += 1;
            self.counters.dispatches += self.recorded.len() as u64;
            self.recorded.clear();
            self.params.clear();
            return;
        }
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("duel step"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("duel kernels"),
                timestamp_writes: None,
            });
            let mut current: Option<Kernel> = None;
            for r in &self.recorded {
                if current != Some(r.kernel) {
                    pass.set_pipeline(&self.compiled[&r.kernel].pipeline);
                    current = Some(r.kernel);
                }
                pass.set_bind_group(0, &self.bind_groups[r.bind_group], &[r.slot]);
                pass.dispatch_workgroups(r.groups[0], r.groups[1], r.groups[2]);
            }
        }
        self.ctx.queue.submit([encoder.finish()]);
        self.counters.submits += 1;
        self.counters.dispatches += self.recorded.len() as u64;
        self.recorded.clear();
        self.params.clear();
    }

    fn counters(&self) -> Counters {
        self.counters
    }

    fn matmul_act(
        &mut self,
        c: Tensor,
        a: MatView,
        b: MatView,
        bias: Option<Tensor>,
        act: Activation,
        m: usize,
        n: usize,
        k: usize,
        accumulate: bool,
    ) {
        self.record_matmul(c, a, b, bias, None, act, m, n, k, accumulate);
    }

    fn matmul_act_grad(
        &mut self,
        c: Tensor,
        a: MatView,
        b: MatView,
        act: Activation,
        y: Tensor,
        m: usize,
        n: usize,
        k: usize,
    ) {
        self.record_matmul(c, a, b, None, Some(y), act, m, n, k, false);
    }

    fn bias_backward(&mut self, db: Tensor, dy: Tensor, m: usize, n: usize, accumulate: bool) {
        let params = Params::default()
            .u(m)
            .u(n)
            .u(dy.offset as usize)
            .u(db.offset as usize)
            .u(accumulate as usize);
        let groups = [n.div_ceil(64) as u32, 1, 1];
        self.record(Kernel::BiasBackward, &[dy, db], params, groups);
    }

    fn activation_forward(&mut self, act: Activation, y: Tensor, x: Tensor, n: usize) {
        let params = Params::default()
            .u(n)
            .u(act.code() as usize)
            .f(act.alpha())
            .u(x.offset as usize)
            .u(y.offset as usize)
            .u(0);
        self.record(
            Kernel::ActivationForward,
            &[x, x, y],
            params,
            elementwise_groups(n),
        );
    }

    fn activation_backward(
        &mut self,
        act: Activation,
        dx: Tensor,
        dy: Tensor,
        y: Tensor,
        n: usize,
    ) {
        let params = Params::default()
            .u(n)
            .u(act.code() as usize)
            .f(act.alpha())
            .u(dy.offset as usize)
            .u(y.offset as usize)
            .u(dx.offset as usize);
        self.record(
            Kernel::ActivationBackward,
            &[dy, y, dx],
            params,
            elementwise_groups(n),
        );
    }

    fn maxout_forward(
        &mut self,
        y: Tensor,
        idx: Tensor,
        x: Tensor,
        rows: usize,
        units: usize,
        pieces: usize,
    ) {
        let params = Params::default()
            .u(rows)
            .u(units)
            .u(pieces)
            .u(x.offset as usize)
            .u(y.offset as usize)
            .u(idx.offset as usize);
        let groups = elementwise_groups(rows * units);
        self.record(Kernel::MaxoutForward, &[x, y, idx], params, groups);
    }

    fn maxout_backward(
        &mut self,
        dx: Tensor,
        dy: Tensor,
        idx: Tensor,
        rows: usize,
        units: usize,
        pieces: usize,
    ) {
        let params = Params::default()
            .u(rows)
            .u(units)
            .u(pieces)
            .u(dx.offset as usize)
            .u(dy.offset as usize)
            .u(idx.offset as usize);
        let groups = elementwise_groups(rows * units);
        self.record(Kernel::MaxoutBackward, &[dy, dx, idx], params, groups);
    }

    fn dropout_forward(&mut self, y: Tensor, x: Tensor, n: usize, keep: f32, key: RngKey) {
        let params = Params::default()
            .u(n)
            .u(x.offset as usize)
            .u(y.offset as usize)
            .f(keep)
            .key(key);
        self.record(
            Kernel::DropoutForward,
            &[x, y],
            params,
            elementwise_groups(n),
        );
    }

    fn dropout_backward(&mut self, dx: Tensor, dy: Tensor, n: usize, keep: f32, key: RngKey) {
        let params = Params::default()
            .u(n)
            .u(dy.offset as usize)
            .u(dx.offset as usize)
            .f(keep)
            .key(key);
        self.record(
            Kernel::DropoutBackward,
            &[dy, dx],
            params,
            elementwise_groups(n),
        );
    }

    fn gan_loss(
        &mut self,
        kind: GanLossKind,
        grad: Tensor,
        logits: Tensor,
        n_real: usize,
        n_fake: usize,
        stats: Tensor,
        accumulate: bool,
    ) {
        let params = Params::default()
            .u(n_real)
            .u(n_fake)
            .u(kind.code() as usize)
            .u(logits.offset as usize)
            .u(grad.offset as usize)
            .u(stats.offset as usize)
            .u(accumulate as usize);
        self.record(Kernel::GanLoss, &[logits, grad, stats], params, [1, 1, 1]);
    }

    fn sgd_momentum(
        &mut self,
        param: Tensor,
        grad: Tensor,
        velocity: Tensor,
        n: usize,
        lr: f32,
        momentum: f32,
    ) {
        let params = Params::default()
            .u(n)
            .u(param.offset as usize)
            .u(grad.offset as usize)
            .u(velocity.offset as usize)
            .u(0)
            .f(lr)
            .f(momentum);
        let bufs = [grad, param, velocity, self.dummy];
        self.record(Kernel::SgdMomentum, &bufs, params, elementwise_groups(n));
    }

    fn adam(
        &mut self,
        param: Tensor,
        grad: Tensor,
        m: Tensor,
        v: Tensor,
        n: usize,
        step: &AdamStep,
    ) {
        let (step_size, bc2_sqrt) = step.corrections();
        let offs = [param.offset, grad.offset, m.offset, v.offset];
        // The bulk as vec4 when every view starts on a 16-byte boundary, the rest scalar.
        let bulk = if offs.iter().all(|o| o % 4 == 0) {
            n / 4 * 4
        } else {
            0
        };
        let run = |kernel: Kernel, count: usize, unit: u32, skip: usize| {
            let o = |t: Tensor| (t.offset as usize + skip) / unit as usize;
            let params = Params::default()
                .u(count)
                .u(o(param))
                .u(o(grad))
                .u(o(m))
                .u(o(v))
                .f(step.lr)
                .f(step.beta1)
                .f(step.beta2)
                .f(step.eps)
                .f(step_size)
                .f(bc2_sqrt);
            (kernel, params, elementwise_groups(count))
        };
        let mut calls = Vec::with_capacity(2);
        if bulk > 0 {
            calls.push(run(Kernel::AdamVec4, bulk / 4, 4, 0));
        }
        if n > bulk {
            calls.push(run(Kernel::Adam, n - bulk, 1, bulk));
        }
        for (kernel, params, groups) in calls {
            self.record(kernel, &[grad, param, m, v], params, groups);
        }
    }

    fn ema_update(&mut self, avg: Tensor, param: Tensor, n: usize, decay: f32) {
        let params = Params::default()
            .u(n)
            .u(avg.offset as usize)
            .u(param.offset as usize)
            .f(decay);
        self.record(
            Kernel::EmaUpdate,
            &[param, avg],
            params,
            elementwise_groups(n),
        );
    }

    fn rng_uniform(&mut self, out: Tensor, n: usize, lo: f32, hi: f32, key: RngKey) {
        let params = Params::default()
            .u(n)
            .u(out.offset as usize)
            .key(key)
            .u(0)
            .f(lo)
            .f(hi);
        self.record(Kernel::RngUniform, &[out], params, elementwise_groups(n));
    }

    fn rng_normal(&mut self, out: Tensor, n: usize, key: RngKey) {
        let params = Params::default().u(n).u(out.offset as usize).key(key);
        self.record(Kernel::RngNormal, &[out], params, elementwise_groups(n));
    }

    fn rng_index(&mut self, out: Tensor, n: usize, range: u32, key: RngKey) {
        let params = Params::default()
            .u(n)
            .u(out.offset as usize)
            .key(key)
            .u(range as usize);
        self.record(Kernel::RngIndex, &[out], params, elementwise_groups(n));
    }

    fn rng_bits(&mut self, out: Tensor, n: usize, key: RngKey) {
        let params = Params::default().u(n).u(out.offset as usize).key(key);
        self.record(Kernel::RngBits, &[out], params, elementwise_groups(n));
    }

    fn gather_rows_u8(
        &mut self,
        out: Tensor,
        src: &DeviceRows,
        idx: Tensor,
        rows: usize,
        scale: f32,
        offset: f32,
    ) {
        assert!(
            !src.chunks.is_empty() && src.chunks.len() <= MAX_ROW_CHUNKS,
            "gather_rows_u8: {} chunks",
            src.chunks.len()
        );
        let params = Params::default()
            .u(rows)
            .u(src.row_len)
            .u(src.chunk_rows)
            .u(idx.offset as usize)
            .u(out.offset as usize)
            .f(scale)
            .f(offset);
        let c = |i: usize| src.chunks[i.min(src.chunks.len() - 1)];
        let bufs = [idx, out, c(0), c(1), c(2), c(3)];
        let groups = elementwise_groups(rows * src.row_len);
        self.record(Kernel::GatherRowsU8, &bufs, params, groups);
    }

    fn gather_rows_f32(
        &mut self,
        out: Tensor,
        src: Tensor,
        idx: Tensor,
        rows: usize,
        row_len: usize,
    ) {
        assert_eq!(
            src.offset, 0,
            "gather_rows_f32 reads its source from word 0"
        );
        let params = Params::default()
            .u(rows)
            .u(row_len)
            .u(usize::MAX >> 32)
            .u(idx.offset as usize)
            .u(out.offset as usize);
        let bufs = [idx, out, src, src, src, src];
        self.record(
            Kernel::GatherRowsF32,
            &bufs,
            params,
            elementwise_groups(rows * row_len),
        );
    }

    fn row_sum_squares(&mut self, out: Tensor, x: Tensor, rows: usize, cols: usize) {
        let params = Params::default()
            .u(rows)
            .u(cols)
            .u(x.offset as usize)
            .u(0)
            .u(0)
            .u(out.offset as usize);
        let bufs = [x, self.dummy, self.dummy, out];
        self.record(
            Kernel::RowSumSquares,
            &bufs,
            params,
            elementwise_groups(rows),
        );
    }

    fn parzen_log_density(
        &mut self,
        out: Tensor,
        dot: Tensor,
        x_sq: Tensor,
        mu_sq: Tensor,
        rows: usize,
        n: usize,
        dim: usize,
        sigma: f32,
    ) {
        if rows == 0 {
            return;
        }
        let (inv_two_var, log_norm) = crate::cpu::kernels::parzen_constants(n, dim, sigma);
        let params = Params::default()
            .u(rows)
            .u(n)
            .u(dot.offset as usize)
            .u(x_sq.offset as usize)
            .u(mu_sq.offset as usize)
            .u(out.offset as usize)
            .f(inv_two_var)
            .f(log_norm);
        // One workgroup per row, rows beyond 65,535 spilling into y.
        let groups = [rows.min(65_535) as u32, rows.div_ceil(65_535) as u32, 1];
        self.record(
            Kernel::ParzenLogDensity,
            &[dot, x_sq, mu_sq, out],
            params,
            groups,
        );
    }
}

//! Per-dispatch GPU times from timestamp queries (`duel bench train --profile`), and what each
//! dispatch launches and computes (workgroups, FLOPs, bytes), which the CPU backend's profile
//! (`CpuBackend::set_profiling`) shares.

use anyhow::{Context, Result};

/// Most dispatches one profiled flush can time (two timestamps each).
pub const PROFILE_SLOTS: usize = (wgpu::QUERY_SET_MAX_QUERIES / 2) as usize;

/// One dispatch's time (GPU timestamps, or the CPU twin's wall time) and what it launched.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfiledDispatch {
    /// The WGSL entry point (the CPU twin's kernel name on the CPU).
    pub kernel: &'static str,
    /// The kernel's leading size parameters, e.g. (m, n, k) of a matmul.
    pub dims: [u32; 3],
    /// The problem: "m×k×n" of a matmul, a convolution's geometry, else the leading size.
    pub shape: String,
    /// Workgroups launched (x, y, z); zeros on the CPU.
    pub groups: [u32; 3],
    /// Floating-point operations and bytes moved (the kernel table's `work`).
    pub flops: f64,
    pub bytes: f64,
    pub ns: f64,
}

impl ProfiledDispatch {
    pub fn workgroups(&self) -> u64 {
        self.groups.iter().map(|&g| g as u64).product()
    }
}

/// What a profile records of one launch of `def` with `params` before it runs.
pub fn describe_launch(def: &crate::kernels::KernelDef, params: &[u8]) -> (String, f64, f64) {
    use crate::kernels::cast;
    use crate::kernels::conv::{ConvInputGradParams, ConvParams, ConvWeightsParams};
    let work = (def.work)(params);
    let word = |i: usize| u32::from_le_bytes(params[4 * i..4 * i + 4].try_into().expect("4"));
    let shape = match def.name {
        "matmul" => format!("{}×{}×{} (m×k×n)", word(0), word(2), word(1)),
        "conv2d_forward" => cast::<ConvParams>(params).geom().describe(),
        "conv2d_backward_input" => cast::<ConvInputGradParams>(params).geom().describe(),
        "conv2d_backward_weights" => cast::<ConvWeightsParams>(params).geom().describe(),
        _ => format!("{}", word(0)),
    };
    (shape, work.flops, work.bytes)
}

/// Timestamp queries around every dispatch while profiling is on.
pub struct Profiler {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    period_ns: f64,
    pub done: Vec<ProfiledDispatch>,
}

/// What `Profiler::run` needs of a recorded dispatch.
pub struct Timed<'a> {
    pub label: &'static str,
    pub dims: [u32; 3],
    pub pipeline: &'a wgpu::ComputePipeline,
    pub bind_group: &'a wgpu::BindGroup,
    pub slot: u32,
    pub groups: [u32; 3],
    /// Shape label, FLOPs and bytes (`describe_launch`).
    pub work: &'a (String, f64, f64),
}

impl Profiler {
    pub fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Self {
        let n = 2 * PROFILE_SLOTS as u64;
        Profiler {
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
            period_ns: queue.get_timestamp_period() as f64,
            done: Vec::new(),
        }
    }

    /// Encodes each dispatch in a compute pass of its own with a timestamp pair around it,
    /// submits, waits, and appends the times to `done`.
    pub fn run(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        dispatches: &[Timed],
    ) -> Result<()> {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("duel profiled step"),
        });
        for (i, d) in dispatches.iter().enumerate() {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(d.label),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &self.queries,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                }),
            });
            pass.set_pipeline(d.pipeline);
            pass.set_bind_group(0, d.bind_group, &[d.slot]);
            pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
        }
        let n = 2 * dispatches.len() as u32;
        encoder.resolve_query_set(&self.queries, 0..n, &self.resolve, 0);
        encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.readback, 0, 8 * n as u64);
        queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        self.readback
            .slice(..8 * n as u64)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .context("waiting for the GPU")?;
        rx.recv()
            .context("the GPU dropped a readback")?
            .context("mapping the timestamps")?;
        let ticks: Vec<u64> = {
            let view = self
                .readback
                .slice(..8 * n as u64)
                .get_mapped_range()
                .map_err(|e| anyhow::anyhow!("reading timestamps: {e:?}"))?;
            bytemuck::pod_collect_to_vec(&view)
        };
        self.readback.unmap();
        for (i, d) in dispatches.iter().enumerate() {
            self.done.push(ProfiledDispatch {
                kernel: d.label,
                dims: d.dims,
                shape: d.work.0.clone(),
                groups: d.groups,
                flops: d.work.1,
                bytes: d.work.2,
                ns: ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * self.period_ns,
            });
        }
        Ok(())
    }
}

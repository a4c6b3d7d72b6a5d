//! The CPU backend: every kernel runs at once through its fast twin (`KernelDef::cpu`), on views
//! of host buffers. With the threaded GEMM of `gemm` it is also a fast training path of its own.

pub mod gemm;
pub mod par;
pub mod simd;

use crate::backend::{Backend, Counters, Tensor};
use crate::gpu::ProfiledDispatch;
use crate::kernels::{Access, Bindings, KernelDef};
use anyhow::Result;

#[derive(Default)]
pub struct CpuBackend {
    buffers: Vec<Vec<f32>>,
    counters: Counters,
    /// Every kernel call's wall time while profiling is on.
    profile: Option<Vec<ProfiledDispatch>>,
}

impl CpuBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Times every kernel call from now on (wall clock around the twin), until turned off;
    /// `take_profile` returns the timings, in call order.
    pub fn set_profiling(&mut self, on: bool) {
        self.profile = on.then(Vec::new);
    }

    /// The calls timed since profiling was turned on or last taken.
    pub fn take_profile(&mut self) -> Vec<ProfiledDispatch> {
        self.profile
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn view(&self, t: Tensor) -> &[f32] {
        &self.buffers[t.buf as usize][t.offset as usize..(t.offset + t.len) as usize]
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        "cpu".into()
    }

    fn alloc(&mut self, len: usize, label: &str) -> Result<Tensor> {
        let words = u32::try_from(len).map_err(|_| {
            anyhow::anyhow!(
                "{label}: {len} values exceed the {} a buffer can hold",
                u32::MAX
            )
        })?;
        // Refused in one line rather than aborting the process when memory runs out.
        crate::budget::check(
            &format!("{label} ({len} values)"),
            crate::budget::rows_bytes(len, 1),
            "use a smaller batch or model",
        )?;
        self.buffers.push(vec![0.0; len]);
        Ok(Tensor {
            buf: (self.buffers.len() - 1) as u32,
            offset: 0,
            len: words,
        })
    }

    fn buffers_in_host_memory(&self) -> bool {
        true
    }

    fn max_binding_words(&self) -> usize {
        u32::MAX as usize / 4
    }

    fn write(&mut self, t: Tensor, data: &[f32]) {
        assert_eq!(
            data.len(),
            t.len(),
            "write: {} words into a view of {}",
            data.len(),
            t.len
        );
        self.buffers[t.buf as usize][t.offset as usize..(t.offset + t.len) as usize]
            .copy_from_slice(data);
        self.counters.bytes_written += 4 * data.len() as u64;
    }

    fn write_u32(&mut self, t: Tensor, data: &[u32]) {
        self.write(t, bytemuck::cast_slice(data));
    }

    fn read(&mut self, t: Tensor) -> Result<Vec<f32>> {
        self.counters.bytes_read += 4 * t.len as u64;
        Ok(self.view(t).to_vec())
    }

    fn read_u32(&mut self, t: Tensor) -> Result<Vec<u32>> {
        Ok(bytemuck::cast_slice(&self.read(t)?).to_vec())
    }

    fn flush(&mut self) {}

    fn counters(&self) -> Counters {
        self.counters
    }

    fn launch(&mut self, kernel: &'static KernelDef, params: &[u8], bufs: &[Tensor]) {
        // Written buffers are taken out of the table so inputs can be borrowed beside them
        // (`check_bindings` has ruled out an input aliasing an output).
        let mut taken: Vec<(u32, Vec<f32>)> = Vec::new();
        for (t, b) in bufs.iter().zip(kernel.bindings) {
            if b.access == Access::ReadWrite {
                let buf = std::mem::take(&mut self.buffers[t.buf as usize]);
                taken.push((t.buf, buf));
            }
        }
        {
            let mut views = Bindings::default();
            for (i, (t, b)) in bufs.iter().zip(kernel.bindings).enumerate() {
                if b.access == Access::Read {
                    views.set_read(i, self.view(*t));
                }
            }
            let mut outs = taken.iter_mut();
            for (i, (t, b)) in bufs.iter().zip(kernel.bindings).enumerate() {
                if b.access == Access::ReadWrite {
                    let (_, buf) = outs.next().expect("taken in binding order");
                    let (o, n) = (t.offset as usize, t.len as usize);
                    views.set_write(i, &mut buf[o..o + n]);
                }
            }
            let started = self.profile.is_some().then(std::time::Instant::now);
            (kernel.cpu)(params, &mut views);
            if let (Some(t), Some(profile)) = (started, self.profile.as_mut()) {
                let ns = t.elapsed().as_secs_f64() * 1e9;
                let (shape, flops, bytes) = crate::gpu::profiler::describe_launch(kernel, params);
                let word = |i: usize| {
                    params
                        .get(4 * i..4 * i + 4)
                        .map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                };
                profile.push(ProfiledDispatch {
                    kernel: kernel.name,
                    dims: [word(0), word(1), word(2)],
                    shape,
                    groups: [0; 3],
                    flops,
                    bytes,
                    ns,
                });
            }
        }
        for (buf, data) in taken {
            self.buffers[buf as usize] = data;
        }
        self.counters.dispatches += 1;
    }
}

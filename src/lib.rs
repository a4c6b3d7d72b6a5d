//! duel: GANs (Goodfellow et al. 2014) trained by WGSL compute kernels through wgpu, with a CPU
//! twin of every kernel.

pub mod backend;
pub mod cpu;
pub mod gpu;
pub mod rng;

pub use backend::{Backend, Tensor};
pub use cpu::CpuBackend;
pub use gpu::GpuBackend;

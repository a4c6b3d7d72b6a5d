//! duel: GANs (Goodfellow et al. 2014) trained by WGSL compute kernels through wgpu, with a CPU
//! twin of every kernel.

pub mod auto_backend;
pub mod backend;
pub mod bench;
pub mod budget;
pub mod checkpoint;
pub mod config;
pub mod cpu;
pub mod data;
pub mod features;
pub mod gan;
pub mod gpu;
pub mod inception;
pub mod init;
pub mod interpolate;
pub mod kernels;
pub mod layers;
pub mod metrics;
pub mod model;
pub mod models;
pub mod noise;
pub mod objective;
pub mod onnx;
pub mod output;
pub mod rng;
pub mod run_dir;
pub mod sample;
pub mod schedule;
pub mod theory;
pub mod train;
pub mod weight_init;

pub use backend::{Backend, Tensor};
pub use cpu::CpuBackend;
pub use gpu::GpuBackend;

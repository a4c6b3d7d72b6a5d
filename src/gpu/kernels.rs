//! The table of WGSL kernels: shader file, entry point, and the access of each storage binding
//! (binding 0 is always the kernel's parameter block, a uniform with a dynamic offset).

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Matmul,
    BiasBackward,
    ActivationForward,
    ActivationBackward,
    MaxoutForward,
    MaxoutBackward,
    DropoutForward,
    DropoutBackward,
    GanLoss,
    SgdMomentum,
    Adam,
    RngUniform,
    RngNormal,
    RngIndex,
    RngBits,
    GatherRowsU8,
    GatherRowsF32,
    EmaUpdate,
    RowSumSquares,
    ParzenLogDensity,
}

/// Access of a storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

use Access::{Read as R, ReadWrite as W};

pub struct KernelSpec {
    pub shader: &'static str,
    pub entry: &'static str,
    /// Storage bindings 1.. in order.
    pub bindings: &'static [Access],
}

pub const PHILOX: &str = include_str!("../../shaders/philox.wgsl");

/// (file name, source, needs the Philox prelude)
pub fn shader_source(shader: &str) -> (&'static str, bool) {
    match shader {
        "matmul" => (include_str!("../../shaders/matmul.wgsl"), false),
        "bias_backward" => (include_str!("../../shaders/bias_backward.wgsl"), false),
        "activation" => (include_str!("../../shaders/activation.wgsl"), false),
        "maxout" => (include_str!("../../shaders/maxout.wgsl"), false),
        "dropout" => (include_str!("../../shaders/dropout.wgsl"), true),
        "gan_loss" => (include_str!("../../shaders/gan_loss.wgsl"), false),
        "optimizer" => (include_str!("../../shaders/optimizer.wgsl"), false),
        "rng" => (include_str!("../../shaders/rng.wgsl"), true),
        "rng_u32" => (include_str!("../../shaders/rng_u32.wgsl"), true),
        "gather" => (include_str!("../../shaders/gather.wgsl"), false),
        "ema" => (include_str!("../../shaders/ema.wgsl"), false),
        "parzen" => (include_str!("../../shaders/parzen.wgsl"), false),
        other => panic!("no shader named {other}"),
    }
}

impl Kernel {
    pub fn spec(self) -> KernelSpec {
        let (shader, entry, bindings): (&str, &str, &'static [Access]) = match self {
            Kernel::Matmul => ("matmul", "matmul", &[R, R, R, W]),
            Kernel::BiasBackward => ("bias_backward", "bias_backward", &[R, W]),
            Kernel::ActivationForward => ("activation", "activation_forward", &[R, R, W]),
            Kernel::ActivationBackward => ("activation", "activation_backward", &[R, R, W]),
            Kernel::MaxoutForward => ("maxout", "maxout_forward", &[R, W, W]),
            Kernel::MaxoutBackward => ("maxout", "maxout_backward", &[R, W, W]),
            Kernel::DropoutForward => ("dropout", "dropout_forward", &[R, W]),
            Kernel::DropoutBackward => ("dropout", "dropout_backward", &[R, W]),
            Kernel::GanLoss => ("gan_loss", "gan_loss", &[R, W, W]),
            Kernel::SgdMomentum => ("optimizer", "sgd_momentum", &[R, W, W, W]),
            Kernel::Adam => ("optimizer", "adam", &[R, W, W, W]),
            Kernel::RngUniform => ("rng", "rng_uniform", &[W]),
            Kernel::RngNormal => ("rng", "rng_normal", &[W]),
            Kernel::RngIndex => ("rng_u32", "rng_index", &[W]),
            Kernel::RngBits => ("rng_u32", "rng_bits", &[W]),
            Kernel::GatherRowsU8 => ("gather", "gather_rows_u8", &[R, W, R, R, R, R]),
            Kernel::GatherRowsF32 => ("gather", "gather_rows_f32", &[R, W, R, R, R, R]),
            Kernel::EmaUpdate => ("ema", "ema_update", &[R, W]),
            Kernel::RowSumSquares => ("parzen", "row_sum_squares", &[R, R, R, W]),
            Kernel::ParzenLogDensity => ("parzen", "parzen_log_density", &[R, R, R, W]),
        };
        KernelSpec {
            shader,
            entry,
            bindings,
        }
    }
}

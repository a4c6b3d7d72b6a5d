//! The table of WGSL kernels: shader file, entry point, and the access of each storage binding
//! (binding 0 is always the kernel's parameter block, a uniform with a dynamic offset).

use super::matmul::{self, SgLayout, SgTile};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Matmul,
    /// The generated barrier-free matmul of `gpu::matmul`, one pipeline per operand layout.
    MatmulSubgroup(SgLayout),
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
    /// Adam on vec4s, for the bulk of an aligned parameter buffer.
    AdamVec4,
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

/// The store step both matmul kernels share: + bias, + C, then the fused activation (codes of
/// `shaders/activation.wgsl`). Twin: `cpu::kernels::matmul_act`.
pub const EPILOGUE: &str = "
fn epilogue(v: f32, ci: u32, col: u32) -> f32 {
    var r = v;
    // flags bit 2: one bias value for every column (a product computed transposed).
    if (p.flags & 1u) != 0u { r += bias[p.bias_off + select(col, 0u, (p.flags & 4u) != 0u)]; }
    if (p.flags & 2u) != 0u { r += c[ci]; }
    // flags bit 3: multiply by f' of activation p.act from its output y, bound in place of the
    // bias and indexed like C.
    if (p.flags & 8u) != 0u {
        let y = bias[p.bias_off + ci - p.c_off];
        switch p.act {
            case 1u: { r = select(0.0, r, y > 0.0); }
            case 2u: { r = select(p.alpha * r, r, y > 0.0); }
            case 3u: { r = r * (1.0 - y * y); }
            case 4u: { r = r * y * (1.0 - y); }
            default: {}
        }
        return r;
    }
    switch p.act {
        case 1u: { r = max(r, 0.0); }
        case 2u: { r = select(p.alpha * r, r, r > 0.0); }
        case 3u: { r = tanh(clamp(r, -15.0, 15.0)); }
        case 4u: {
            if r >= 0.0 { r = 1.0 / (1.0 + exp(-r)); } else { let e = exp(r); r = e / (1.0 + e); }
        }
        default: {}
    }
    return r;
}
";

/// Modules compiled without wgpu's runtime bounds checks: the host asserts every view lies
/// inside its buffer before recording (`GpuBackend::matmul`) and the kernels clamp or guard
/// every index to the view, so no access can leave a binding.
pub fn trusted(shader: &str) -> bool {
    shader.starts_with("matmul")
}

/// Full WGSL text of a shader: its file (with the Philox prelude where needed) or, for the
/// subgroup matmul, the generated source.
pub fn shader_text(kernel: Kernel, tile: SgTile) -> String {
    if let Kernel::MatmulSubgroup(layout) = kernel {
        return matmul::subgroup_source(layout, tile);
    }
    let (source, philox) = shader_source(kernel.spec().shader);
    if kernel == Kernel::Matmul {
        return format!("{source}\n{EPILOGUE}");
    }
    if philox {
        format!("{PHILOX}\n{source}")
    } else {
        source.to_string()
    }
}

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
        "optimizer_vec4" => (include_str!("../../shaders/optimizer_vec4.wgsl"), false),
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
            Kernel::MatmulSubgroup(l) => {
                let shader = match (l.a_k_fast, l.b_n_fast) {
                    (true, true) => "matmul_sg_kn",
                    (true, false) => "matmul_sg_kk",
                    (false, true) => "matmul_sg_rn",
                    (false, false) => "matmul_sg_rk",
                };
                (shader, "matmul_subgroup", &[R, R, R, W])
            }
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
            Kernel::AdamVec4 => ("optimizer_vec4", "adam_vec4", &[R, W, W, W]),
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

//! The kernel table: every compute kernel as data.
//!
//! A kernel is one `KernelDef`: its WGSL entry point, the `#[repr(C)]` parameter struct that
//! mirrors the shader's `Params` (checked against the WGSL by `tests/kernel_table.rs`), its
//! storage bindings in binding order, and four functions: the fast CPU twin, the plain reference
//! (obviously-correct loops, the specification both the GPU and the twin are tested against),
//! the test cases (ragged shapes) and the benchmark shapes. A backend runs any kernel through
//! one method, `Backend::launch`, so the backend interface does not grow with the kernels.
//!
//! Adding a kernel: its WGSL file in `shaders/`, its Rust file here (params, def, launcher,
//! twin, reference, cases), and one line in `ALL`. `tests/kernel_table.rs` then runs it on the
//! GPU and the CPU against the reference and checks its params against the WGSL, and
//! `duel bench kernels` times it.

pub mod activation;
pub mod augment;
pub mod avgpool;
pub mod batch_norm;
pub mod batched_matmul;
pub mod bias;
pub mod case;
pub mod class_affine;
pub mod clip;
pub mod concat;
pub mod conv;
mod conv_cases;
mod conv_cpu;
mod conv_winograd;
pub mod cross_entropy;
pub mod dropout;
pub mod ema;
pub mod embedding;
pub mod fade;
pub mod gan_loss;
pub mod gather;
pub mod im2col;
pub mod matmul;
pub mod maxout;
pub mod minibatch_std;
pub mod optimizer;
pub mod parzen;
pub mod penalty;
pub mod pixel_norm;
pub mod pool2d;
pub mod projection;
pub mod resize;
pub mod rng;
pub mod softmax;
pub mod spectral_norm;
pub mod sum_pool;
pub mod upsample;
mod winograd_lanes;
mod winograd_schemes;

use crate::backend::{Backend, Tensor};
pub use case::{Case, Tol, Work};

/// Every kernel, in the order `duel bench kernels` prints them.
pub static ALL: &[&KernelDef] = &[
    &matmul::MATMUL,
    &bias::BIAS_BACKWARD,
    &conv::CONV2D_FORWARD,
    &conv::CONV2D_BACKWARD_INPUT,
    &conv::CONV2D_BACKWARD_WEIGHTS,
    &conv::BIAS_BACKWARD_NCHW,
    &activation::ACTIVATION_FORWARD,
    &activation::ACTIVATION_BACKWARD,
    &maxout::MAXOUT_FORWARD,
    &maxout::MAXOUT_BACKWARD,
    &dropout::DROPOUT_FORWARD,
    &dropout::DROPOUT_BACKWARD,
    &gan_loss::GAN_LOSS,
    &optimizer::SGD_MOMENTUM,
    &optimizer::ADAM,
    &optimizer::RMSPROP,
    &clip::CLIP_WEIGHTS,
    &penalty::PENALTY_INTERPOLATE,
    &penalty::PENALTY_SEED,
    &penalty::PENALTY_REDUCE,
    &spectral_norm::SN_NORMALIZE,
    &spectral_norm::SN_DOT,
    &spectral_norm::SN_SCALE,
    &spectral_norm::SN_GRAD,
    &ema::EMA_UPDATE,
    &rng::RNG_UNIFORM,
    &rng::RNG_NORMAL,
    &rng::RNG_INDEX,
    &rng::RNG_BITS,
    &gather::GATHER_ROWS_U8,
    &gather::GATHER_ROWS_F32,
    &gather::GATHER_LABELS,
    &parzen::ROW_SUM_SQUARES,
    &parzen::PARZEN_LOG_DENSITY,
    &cross_entropy::CROSS_ENTROPY,
    &batch_norm::BATCH_NORM_STATISTICS,
    &batch_norm::BATCH_NORM_FORWARD,
    &batch_norm::BATCH_NORM_FORWARD_EVAL,
    &batch_norm::BATCH_NORM_BACKWARD_REDUCE,
    &batch_norm::BATCH_NORM_BACKWARD_INPUT,
    &upsample::UPSAMPLE2X_FORWARD,
    &upsample::UPSAMPLE2X_BACKWARD,
    &embedding::EMBEDDING_FORWARD,
    &embedding::EMBEDDING_BACKWARD,
    &class_affine::CLASS_AFFINE_FORWARD,
    &class_affine::CLASS_AFFINE_BACKWARD_INPUT,
    &class_affine::CLASS_AFFINE_BACKWARD_PARAMS,
    &projection::PROJECTION_FORWARD,
    &projection::PROJECTION_BACKWARD_INPUT,
    &projection::PROJECTION_BACKWARD_EMBEDDING,
    &avgpool::AVGPOOL2X_FORWARD,
    &avgpool::AVGPOOL2X_BACKWARD,
    &sum_pool::SUM_POOL_FORWARD,
    &sum_pool::SUM_POOL_BACKWARD,
    &pixel_norm::PIXEL_NORM_FORWARD,
    &pixel_norm::PIXEL_NORM_BACKWARD,
    &minibatch_std::MINIBATCH_STD_FORWARD,
    &minibatch_std::MINIBATCH_STD_BACKWARD,
    &minibatch_std::MINIBATCH_STD_TANGENT,
    &fade::FADE_FORWARD,
    &fade::FADE_BACKWARD,
    &fade::AXPBY,
    &batched_matmul::BATCHED_MATMUL,
    &softmax::SOFTMAX_ROWS_FORWARD,
    &softmax::SOFTMAX_ROWS_BACKWARD,
    &augment::AUGMENT_FORWARD,
    &augment::AUGMENT_BACKWARD,
    &resize::RESIZE_BILINEAR_NHWC,
    &im2col::IM2COL_NHWC,
    &pool2d::MAX_POOL2D_NHWC,
    &pool2d::AVG_POOL2D_NHWC,
    &concat::CONCAT_CHANNELS,
];

/// The kernel named `name` (its WGSL entry point).
pub fn by_name(name: &str) -> Option<&'static KernelDef> {
    ALL.iter().copied().find(|k| k.name == name)
}

/// How a kernel uses a storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
    /// Declared by the shader for another entry point of the same file; this one never touches
    /// it, so any buffer may be bound there (launchers pass one of the kernel's inputs).
    Unused,
}

/// Element type of a storage binding: f32, u32, or f32 read four at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    F32,
    U32,
    Vec4F32,
}

/// One storage binding (bindings 1.. of the shader, in order; binding 0 is the parameter block).
/// `name` is the WGSL variable; its word offset goes in the params field `<name>_off` when the
/// struct has one (filled by `launch` from the bound view), else the view must start at word 0.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    pub name: &'static str,
    pub access: Access,
    pub elem: Elem,
}

impl Binding {
    pub const fn read(name: &'static str) -> Self {
        Self {
            name,
            access: Access::Read,
            elem: Elem::F32,
        }
    }
    pub const fn write(name: &'static str) -> Self {
        Self {
            name,
            access: Access::ReadWrite,
            elem: Elem::F32,
        }
    }
    pub const fn unused(name: &'static str) -> Self {
        Self {
            name,
            access: Access::Unused,
            elem: Elem::F32,
        }
    }
    pub const fn u32(mut self) -> Self {
        self.elem = Elem::U32;
        self
    }
    pub const fn vec4(mut self) -> Self {
        self.elem = Elem::Vec4F32;
        self
    }
}

/// A WGSL file and the preludes prepended to it.
#[derive(Debug)]
pub struct Shader {
    /// File stem in `shaders/`.
    pub name: &'static str,
    pub source: &'static str,
    /// Other files prepended (shared functions such as Philox or the activations).
    pub preludes: &'static [&'static Shader],
}

impl Shader {
    /// The full WGSL text: preludes, then the file.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for p in self.preludes {
            s.push_str(&p.text());
            s.push('\n');
        }
        s.push_str(self.source);
        s
    }
}

/// Shared WGSL preludes.
pub static PHILOX: Shader = Shader {
    name: "philox",
    source: include_str!("../../shaders/philox.wgsl"),
    preludes: &[],
};
/// The integer Box–Muller sampler; needs PHILOX before it.
pub static NORMAL: Shader = Shader {
    name: "normal",
    source: include_str!("../../shaders/normal.wgsl"),
    preludes: &[],
};
pub static ACTIVATION_FNS: Shader = Shader {
    name: "activation_fns",
    source: include_str!("../../shaders/activation_fns.wgsl"),
    preludes: &[],
};

/// A field of a parameter struct: name and byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub offset: usize,
}

/// The memory layout of a parameter struct, compared with the WGSL `Params` by a test.
#[derive(Debug)]
pub struct ParamsLayout {
    pub name: &'static str,
    pub size: usize,
    pub fields: &'static [Field],
}

impl ParamsLayout {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A kernel's parameter block: a `Pod` struct of 4-byte fields mirroring its WGSL `Params`.
pub trait Params: bytemuck::Pod {
    const LAYOUT: ParamsLayout;
}

/// Declares a parameter struct (all fields u32 or f32) and its `Params` layout.
#[macro_export]
macro_rules! params {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
        impl $crate::kernels::Params for $name {
            const LAYOUT: $crate::kernels::ParamsLayout = $crate::kernels::ParamsLayout {
                name: stringify!($name),
                size: std::mem::size_of::<$name>(),
                fields: &[$($crate::kernels::Field {
                    name: stringify!($f),
                    offset: std::mem::offset_of!($name, $f),
                }),*],
            };
        }
    };
}

/// Bytes of the largest parameter block (the GPU's uniform slot size).
pub const MAX_PARAMS_BYTES: usize = 64;
/// Most storage bindings a kernel has.
pub const MAX_BINDINGS: usize = 6;

pub type CpuFn = fn(&[u8], &mut Bindings);

/// One compute kernel as data.
pub struct KernelDef {
    /// The WGSL entry point; also the name of its CPU twin and of its benchmark row.
    pub name: &'static str,
    pub shader: &'static Shader,
    pub params: &'static ParamsLayout,
    pub bindings: &'static [Binding],
    /// Workgroups to dispatch for a parameter block (the GPU backend's only per-kernel logic).
    pub workgroups: fn(&[u8]) -> [u32; 3],
    /// The fast CPU twin (what the CPU backend runs).
    pub cpu: CpuFn,
    /// Plain loops: the specification.
    pub reference: CpuFn,
    /// GPU vs twin vs reference cases on ragged shapes.
    pub cases: fn() -> Vec<Case>,
    /// Shapes timed by `duel bench kernels`.
    pub bench: fn() -> Vec<Case>,
    /// Floating-point operations and bytes moved by one launch.
    pub work: fn(&[u8]) -> Work,
}

impl std::fmt::Debug for KernelDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KernelDef({})", self.name)
    }
}

impl PartialEq for KernelDef {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for KernelDef {}

impl std::hash::Hash for KernelDef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl KernelDef {
    /// Writes each bound view's word offset into its `<binding>_off` field of `params`.
    pub fn fill_offsets(&self, params: &mut [u8], bufs: &[Tensor]) {
        for (b, t) in self.bindings.iter().zip(bufs) {
            if b.access == Access::Unused {
                continue;
            }
            let mut name = [0u8; 40];
            let n = b.name.len();
            name[..n].copy_from_slice(b.name.as_bytes());
            name[n..n + 4].copy_from_slice(b"_off");
            let field = std::str::from_utf8(&name[..n + 4]).expect("ascii");
            match self.params.field(field) {
                Some(f) => params[f.offset..f.offset + 4].copy_from_slice(&t.offset.to_le_bytes()),
                None => assert!(
                    t.offset == 0,
                    "{}: binding {} has no offset field, so its view must start at word 0",
                    self.name,
                    b.name
                ),
            }
        }
    }

    /// Checks a launch's bindings: their count, and that no written view aliases another.
    pub fn check_bindings(&self, bufs: &[Tensor]) {
        assert_eq!(
            bufs.len(),
            self.bindings.len(),
            "{}: {} buffers bound, the kernel has {} bindings",
            self.name,
            bufs.len(),
            self.bindings.len()
        );
        for (i, (t, b)) in bufs.iter().zip(self.bindings).enumerate() {
            if b.access != Access::ReadWrite {
                continue;
            }
            for (j, (u, c)) in bufs.iter().zip(self.bindings).enumerate() {
                assert!(
                    j == i || c.access == Access::Unused || u.buf != t.buf,
                    "{}: binding {} is written and binding {} is in the same buffer: outputs \
                     may not alias other bindings",
                    self.name,
                    b.name,
                    c.name
                );
            }
        }
    }
}

/// Runs `kernel` on `be` with parameters `p` over `bufs` (its bindings in order); the views'
/// offsets are filled into `p` here.
pub fn launch<P: Params>(be: &mut dyn Backend, kernel: &'static KernelDef, p: P, bufs: &[Tensor]) {
    debug_assert_eq!(P::LAYOUT.name, kernel.params.name, "{}", kernel.name);
    launch_bytes(be, kernel, bytemuck::bytes_of(&p), bufs);
}

/// `launch` with the parameter block as bytes (test harness and benchmarks).
pub fn launch_bytes(be: &mut dyn Backend, kernel: &'static KernelDef, p: &[u8], bufs: &[Tensor]) {
    assert_eq!(p.len(), kernel.params.size, "{}: params size", kernel.name);
    let mut bytes = [0u8; MAX_PARAMS_BYTES];
    bytes[..p.len()].copy_from_slice(p);
    kernel.fill_offsets(&mut bytes[..p.len()], bufs);
    kernel.check_bindings(bufs);
    be.launch(kernel, &bytes[..p.len()], bufs);
}

/// Reads a parameter block back into its struct.
pub fn cast<P: Params>(bytes: &[u8]) -> P {
    bytemuck::pod_read_unaligned(&bytes[..std::mem::size_of::<P>()])
}

/// The views a CPU kernel runs on, one per binding: read-only slices for inputs, mutable ones
/// for outputs (taken once each). Views start at the bound tensor's offset, so CPU code never
/// sees offsets.
#[derive(Default)]
pub struct Bindings<'a> {
    reads: [Option<&'a [f32]>; MAX_BINDINGS],
    writes: [Option<&'a mut [f32]>; MAX_BINDINGS],
}

impl<'a> Bindings<'a> {
    pub fn set_read(&mut self, i: usize, v: &'a [f32]) {
        self.reads[i] = Some(v);
    }

    pub fn set_write(&mut self, i: usize, v: &'a mut [f32]) {
        self.writes[i] = Some(v);
    }

    /// Input binding `i`.
    pub fn r(&self, i: usize) -> &'a [f32] {
        self.reads[i].unwrap_or_else(|| panic!("binding {i} is not an input"))
    }

    pub fn r_u32(&self, i: usize) -> &'a [u32] {
        bytemuck::cast_slice(self.r(i))
    }

    /// Output binding `i` (its current contents included, for kernels that accumulate).
    pub fn w(&mut self, i: usize) -> &'a mut [f32] {
        self.writes[i]
            .take()
            .unwrap_or_else(|| panic!("binding {i} is not an output, or was taken twice"))
    }

    pub fn w_u32(&mut self, i: usize) -> &'a mut [u32] {
        bytemuck::cast_slice_mut(self.w(i))
    }
}

/// Workgroups of 256 invocations striding over `n` elements (the x count capped at 65,535).
pub fn elementwise_groups(n: u32) -> [u32; 3] {
    [n.div_ceil(256).clamp(1, 65_535), 1, 1]
}

/// A size as a u32 kernel parameter.
pub fn u(v: usize) -> u32 {
    u32::try_from(v).expect("kernel parameter exceeds u32")
}

/// Splits an `RngKey` into the five words kernels take.
pub fn key_words(key: crate::rng::RngKey) -> [u32; 5] {
    [
        key.seed as u32,
        (key.seed >> 32) as u32,
        key.stream,
        key.counter as u32,
        (key.counter >> 32) as u32,
    ]
}

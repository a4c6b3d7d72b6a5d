//! A network built once from its `NetSpec`: the modules, and what every query about the network
//! reads from them — each tensor's checkpoint name, shape and offset in the flat buffers, the
//! initial values, the widths and the FLOPs. A spec that does not build is an error where it is
//! built (`NetSpec::build`), never an empty network.

use super::{Built, Init, ParamSpec, Shape, StateSpec};
use crate::rng::{self, RngKey};
use anyhow::Result;

/// A tensor of a network as a checkpoint names it: `key` is its name in a PyTorch
/// `nn.Sequential` of the unfused layers ("2.weight"), `offset..offset + len` its slice of the
/// flat buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub key: String,
    /// PyTorch's shape.
    pub shape: Vec<usize>,
    /// Stored as the transpose of `shape`.
    pub transposed: bool,
    /// A count, stored as int64 in checkpoints (see `StateSpec::integer`).
    pub integer: bool,
    pub offset: usize,
    pub len: usize,
}

/// The modules of a network and the layout of its flat parameter and state buffers.
pub struct BuiltNet {
    /// What errors and buffer labels call it ("generator").
    pub name: String,
    pub input: Shape,
    pub modules: Vec<Built>,
    params: Vec<NamedTensor>,
    state: Vec<NamedTensor>,
}

impl BuiltNet {
    pub(super) fn new(name: &str, input: Shape, modules: Vec<Built>) -> Self {
        let (mut params, mut state) = (Vec::new(), Vec::new());
        let (mut p_off, mut s_off) = (0, 0);
        for b in &modules {
            for p in b.module.params() {
                params.push(NamedTensor {
                    key: format!("{}.{}", b.index, p.name),
                    shape: p.shape.clone(),
                    transposed: p.transposed,
                    integer: false,
                    offset: p_off,
                    len: p.len(),
                });
                p_off += p.len();
            }
            for s in b.module.state() {
                let len = s.shape.iter().product();
                state.push(NamedTensor {
                    key: format!("{}.{}", b.index, s.name),
                    shape: s.shape.clone(),
                    transposed: false,
                    integer: s.integer,
                    offset: s_off,
                    len,
                });
                s_off += len;
            }
        }
        BuiltNet {
            name: name.to_string(),
            input,
            modules,
            params,
            state,
        }
    }

    /// The trainable tensors, in flat-buffer order.
    pub fn param_tensors(&self) -> &[NamedTensor] {
        &self.params
    }

    /// The persistent non-trainable tensors, in flat-buffer order.
    pub fn state_tensors(&self) -> &[NamedTensor] {
        &self.state
    }

    /// Trainable values (unpadded).
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|t| t.len).sum()
    }

    pub fn state_count(&self) -> usize {
        self.state.iter().map(|t| t.len).sum()
    }

    /// Initial parameters, drawn from the counter-based RNG so every backend starts from the
    /// same numbers: module j's tensors from stream (seed, INIT, stream_offset + j·2³²), each
    /// value by its position in the module's slice.
    pub fn init_params(&self, seed: u64, stream_offset: u64) -> Vec<f32> {
        self.init_params_with(seed, stream_offset, |p| p.init)
    }

    /// `init_params` with each tensor's initialisation chosen by `init` (given the tensor's
    /// spec, whose `init` is the layer's own default), from the same random streams.
    pub fn init_params_with(
        &self,
        seed: u64,
        stream_offset: u64,
        init: impl Fn(&ParamSpec) -> Init,
    ) -> Vec<f32> {
        let mut p = Vec::with_capacity(self.param_count());
        let with_params = self
            .modules
            .iter()
            .filter(|b| !b.module.params().is_empty());
        for (j, b) in with_params.enumerate() {
            let key = RngKey::new(seed, rng::stream::INIT, stream_offset + ((j as u64) << 32));
            let mut at = 0u64;
            for spec in b.module.params() {
                let how = init(&spec);
                p.extend((0..spec.len() as u64).map(|i| draw(how, key, at + i)));
                at += spec.len() as u64;
            }
        }
        p
    }

    /// Initial persistent state.
    pub fn init_state(&self) -> Vec<f32> {
        self.modules
            .iter()
            .flat_map(|b| b.module.state())
            .flat_map(|s: StateSpec| {
                let n: usize = s.shape.iter().product();
                std::iter::repeat_n(s.init, n)
            })
            .collect()
    }

    /// Forward FLOPs of the whole network for `rows` samples.
    pub fn flops(&self, rows: usize) -> f64 {
        self.modules.iter().map(|b| b.module.flops(rows)).sum()
    }

    /// The output shape.
    pub fn output_shape(&self) -> Shape {
        self.modules
            .last()
            .map_or(self.input, |b| b.module.output())
    }

    /// Values per output sample.
    pub fn output(&self) -> usize {
        self.output_shape().len()
    }

    /// Every module's output length, for sizing buffers.
    pub fn widths(&self) -> Vec<usize> {
        self.modules
            .iter()
            .map(|b| b.module.output().len())
            .collect()
    }

    /// Ok when a gradient penalty's tangent pass runs exactly through every module; the error
    /// names the first module that has none.
    pub fn check_tangent(&self) -> Result<()> {
        for b in &self.modules {
            b.module.check_tangent().map_err(|e| {
                let (name, i) = (&self.name, b.index);
                anyhow::anyhow!("{name} layer {i} ({}): {e}", b.module.describe())
            })?;
        }
        Ok(())
    }

    /// "784 → Linear(784 → 1024) + LeakyReLU(0.2) → …"
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self.modules.iter().map(|b| b.module.describe()).collect();
        format!("{} → {}", self.input, parts.join(" → "))
    }
}

fn draw(init: Init, key: RngKey, i: u64) -> f32 {
    match init {
        Init::Uniform(b) => rng::uniform(key, i, -b, b),
        Init::Normal(s) => s * rng::normal(key, i),
        Init::Const(v) => v,
    }
}

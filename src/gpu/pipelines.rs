//! Compiled pipelines and bind groups, built once and cached: pipelines by kernel (and matmul
//! variant), bind-group layouts by their bindings' access, bind groups by the buffers they bind.

use super::autotune::Variant;
use super::bmm_register;
use super::conv_register::{self, ConvChoice, ConvClass};
use super::matmul::{self, SgLayout, SgTile};
use crate::kernels::{Access, KernelDef, MAX_BINDINGS};
use std::collections::HashMap;

/// Which pipeline a dispatch runs: a kernel of the table, or a generated matmul variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PipelineKey {
    Kernel(&'static KernelDef),
    MatmulSubgroup(SgLayout),
    /// A generated convolution kernel of a class (`gpu::conv_register`): `Register` or
    /// `Subgroup`.
    ConvRegister(ConvClass, ConvChoice),
    /// The barrier-free batched matmul (`gpu::bmm_register`).
    BmmRegister,
}

impl PipelineKey {
    pub fn entry(self) -> &'static str {
        match self {
            PipelineKey::Kernel(k) => k.name,
            PipelineKey::MatmulSubgroup(_) => "matmul_subgroup",
            PipelineKey::ConvRegister(c, choice) => c.kind.entry(choice),
            PipelineKey::BmmRegister => bmm_register::ENTRY,
        }
    }

    /// The table's kernel this pipeline computes (its bindings, parameters and work).
    pub fn def(self) -> &'static KernelDef {
        match self {
            PipelineKey::Kernel(k) => k,
            PipelineKey::MatmulSubgroup(_) => &crate::kernels::matmul::MATMUL,
            PipelineKey::ConvRegister(c, _) => crate::kernels::by_name(c.kind.tiled_name())
                .expect("the tiled convolution is in the table"),
            PipelineKey::BmmRegister => &crate::kernels::batched_matmul::BATCHED_MATMUL,
        }
    }

    fn bindings(self) -> &'static [crate::kernels::Binding] {
        self.def().bindings
    }
}

/// Access of each binding; unused ones are declared read-only (the kernel never touches them).
type Signature = Vec<Access>;

pub struct Compiled {
    pub pipeline: wgpu::ComputePipeline,
    layout: usize,
}

/// Bytes of one kernel's parameter block in the uniform buffer.
pub const PARAMS_BYTES: u64 = crate::kernels::MAX_PARAMS_BYTES as u64;

#[derive(Default)]
pub struct Pipelines {
    modules: HashMap<String, wgpu::ShaderModule>,
    layouts: Vec<(Signature, wgpu::BindGroupLayout, wgpu::PipelineLayout)>,
    compiled: HashMap<PipelineKey, Compiled>,
    bind_group_index: HashMap<(usize, [u32; MAX_BINDINGS]), usize>,
    pub bind_groups: Vec<wgpu::BindGroup>,
}

fn signature(key: PipelineKey) -> Signature {
    key.bindings()
        .iter()
        .map(|b| match b.access {
            Access::Unused => Access::Read,
            a => a,
        })
        .collect()
}

/// Modules compiled without wgpu's runtime bounds checks: the GPU backend asserts every matmul
/// view lies inside its buffer before recording, and the kernels clamp or guard every index to
/// the view, so no access can leave a binding.
fn trusted(key: PipelineKey) -> bool {
    match key {
        PipelineKey::Kernel(k) => k.shader.name == "matmul",
        PipelineKey::MatmulSubgroup(_) => true,
        PipelineKey::ConvRegister(..) | PipelineKey::BmmRegister => false,
    }
}

impl Pipelines {
    pub fn get(&self, key: PipelineKey) -> &Compiled {
        &self.compiled[&key]
    }

    fn layout(&mut self, device: &wgpu::Device, sig: Signature) -> usize {
        if let Some(i) = self.layouts.iter().position(|(s, ..)| *s == sig) {
            return i;
        }
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
        for (i, access) in sig.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *access != Access::ReadWrite,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("duel kernel bindings"),
            entries: &entries,
        });
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("duel kernel layout"),
            bind_group_layouts: &[Some(&bgl)],
            immediate_size: 0,
        });
        self.layouts.push((sig, bgl, pl));
        self.layouts.len() - 1
    }

    /// Compiles `key`'s pipeline on first use.
    pub fn compile(&mut self, device: &wgpu::Device, key: PipelineKey, tile: SgTile) {
        if self.compiled.contains_key(&key) {
            return;
        }
        let module_name = match key {
            PipelineKey::Kernel(k) => k.shader.name.to_string(),
            PipelineKey::MatmulSubgroup(l) => format!("matmul_subgroup {l:?}"),
            PipelineKey::ConvRegister(c, choice) => format!("{} {}", c.name(), choice.name()),
            PipelineKey::BmmRegister => bmm_register::ENTRY.to_string(),
        };
        let module = self.modules.entry(module_name.clone()).or_insert_with(|| {
            let source = match key {
                PipelineKey::MatmulSubgroup(l) => matmul::subgroup_source(l, tile),
                PipelineKey::ConvRegister(c, choice) => conv_register::register_source(c, choice),
                PipelineKey::BmmRegister => bmm_register::register_source(),
                PipelineKey::Kernel(k) => k.shader.text(),
            };
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some(&module_name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            };
            if trusted(key) {
                // SAFETY: see `trusted`.
                unsafe {
                    device
                        .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
                }
            } else {
                device.create_shader_module(desc)
            }
        });
        let module = module.clone();
        let layout = self.layout(device, signature(key));
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(key.entry()),
            layout: Some(&self.layouts[layout].2),
            module: &module,
            entry_point: Some(key.entry()),
            compilation_options: Default::default(),
            cache: None,
        });
        self.compiled.insert(key, Compiled { pipeline, layout });
    }

    /// The bind group of `key`'s layout over `buffers` (binding 0 is the parameter block).
    pub fn bind_group(
        &mut self,
        device: &wgpu::Device,
        key: PipelineKey,
        params: &wgpu::Buffer,
        buffers: &[&wgpu::Buffer],
        ids: [u32; MAX_BINDINGS],
    ) -> usize {
        let layout = self.compiled[&key].layout;
        if let Some(&i) = self.bind_group_index.get(&(layout, ids)) {
            return i;
        }
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: params,
                offset: 0,
                size: wgpu::BufferSize::new(PARAMS_BYTES),
            }),
        }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.as_entire_binding(),
            });
        }
        let bg = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(key.entry()),
            layout: &self.layouts[layout].1,
            entries: &entries,
        });
        self.bind_groups.push(bg);
        self.bind_group_index
            .insert((layout, ids), self.bind_groups.len() - 1);
        self.bind_groups.len() - 1
    }
}

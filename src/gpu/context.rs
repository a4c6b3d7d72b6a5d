//! Adapter discovery and selection, and the device built once from it.

use anyhow::{Context, Result, bail};

/// What `duel devices` shows of an adapter.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub index: usize,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub timestamps: bool,
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = &self.info;
        let l = &self.limits;
        write!(
            f,
            "[{}] {} ({:?}, {:?}) driver: {} {}\n    max storage binding {} MiB, max buffer {} MiB, \
             storage buffers/stage {}, workgroup storage {} KiB, invocations/workgroup {}, \
             timestamp queries {}",
            self.index,
            i.name,
            i.backend,
            i.device_type,
            i.driver,
            i.driver_info,
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_storage_buffers_per_shader_stage,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            if self.timestamps { "yes" } else { "no" },
        )
    }
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

fn enumerate(instance: &wgpu::Instance, backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(backends))
}

/// Adapters for training: the native APIs (Vulkan, Metal, DX12), and GL only when asked for by
/// the selector or when nothing else exists (probing GL can be slow and noisy on headless Linux).
fn training_adapters(selector: Option<&str>) -> (wgpu::Instance, Vec<wgpu::Adapter>) {
    let wants_gl = selector.is_some_and(|s| s.to_lowercase().contains("gl"));
    let backends = if wants_gl {
        wgpu::Backends::all()
    } else {
        wgpu::Backends::PRIMARY
    };
    let inst = instance(backends);
    let adapters = enumerate(&inst, backends);
    if adapters.is_empty() && !wants_gl {
        let inst = instance(wgpu::Backends::all());
        let adapters = enumerate(&inst, wgpu::Backends::all());
        return (inst, adapters);
    }
    (inst, adapters)
}

fn summarize(index: usize, adapter: &wgpu::Adapter) -> AdapterSummary {
    AdapterSummary {
        index,
        info: adapter.get_info(),
        limits: adapter.limits(),
        timestamps: adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY),
    }
}

/// Every adapter wgpu finds on every backend, in enumeration order.
pub fn list_adapters() -> Vec<AdapterSummary> {
    let backends = wgpu::Backends::all();
    enumerate(&instance(backends), backends)
        .iter()
        .enumerate()
        .map(|(i, a)| summarize(i, a))
        .collect()
}

/// Higher is better: discrete, integrated, virtual, CPU; native APIs before GL.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 1,
        wgpu::DeviceType::Other => 0,
    };
    let api = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 1,
        _ => 0,
    };
    (device, api)
}

/// The selector from `--adapter`, else `DUEL_ADAPTER`, else none (pick the best).
pub fn selector_from_env(cli: Option<&str>) -> Option<String> {
    cli.map(str::to_string)
        .or_else(|| std::env::var("DUEL_ADAPTER").ok())
        .filter(|s| !s.trim().is_empty())
}

/// Picks an adapter by index ("0"), backend ("vulkan", "metal", "dx12", "gl") or a
/// case-insensitive substring of its name ("llvmpipe"); with no selector, the best one.
pub fn pick_adapter(
    adapters: Vec<wgpu::Adapter>,
    selector: Option<&str>,
) -> Result<(usize, wgpu::Adapter)> {
    if adapters.is_empty() {
        bail!(
            "no GPU adapter found on any backend (Vulkan, Metal, DX12, GL). On Linux without a \
             GPU, install Mesa's software Vulkan driver (apt-get install mesa-vulkan-drivers \
             libvulkan1), or train on the CPU with --backend cpu"
        );
    }
    let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
    let chosen = match selector {
        None => (0..infos.len()).max_by_key(|&i| (rank(&infos[i]), std::cmp::Reverse(i))),
        Some(sel) => {
            let s = sel.trim().to_lowercase();
            if let Ok(i) = s.parse::<usize>() {
                (i < infos.len()).then_some(i)
            } else {
                let by_backend = |i: &usize| {
                    format!("{:?}", infos[*i].backend).to_lowercase() == s
                        || (s == "dx12" && infos[*i].backend == wgpu::Backend::Dx12)
                };
                let by_name = |i: &usize| infos[*i].name.to_lowercase().contains(&s);
                let mut matches: Vec<usize> = (0..infos.len()).filter(by_backend).collect();
                if matches.is_empty() {
                    matches = (0..infos.len()).filter(by_name).collect();
                }
                matches
                    .into_iter()
                    .max_by_key(|&i| (rank(&infos[i]), std::cmp::Reverse(i)))
            }
        }
    };
    match chosen {
        Some(i) => Ok((i, adapters.into_iter().nth(i).expect("index in range"))),
        None => {
            let list: Vec<String> = infos
                .iter()
                .enumerate()
                .map(|(i, a)| format!("[{i}] {} ({:?}, {:?})", a.name, a.backend, a.device_type))
                .collect();
            bail!(
                "adapter selector {:?} matches no adapter; pass an index, a backend (vulkan, \
                 metal, dx12, gl) or part of a name. Adapters found: {}",
                selector.unwrap_or_default(),
                list.join("; ")
            )
        }
    }
}

/// Minimum limits duel's kernels need: (name, needed, offered).
fn check_limits(l: &wgpu::Limits) -> Result<()> {
    let needs: [(&str, u64, u64); 6] = [
        (
            "max_storage_buffers_per_shader_stage",
            7,
            l.max_storage_buffers_per_shader_stage as u64,
        ),
        (
            "max_compute_workgroup_storage_size",
            8192,
            l.max_compute_workgroup_storage_size as u64,
        ),
        (
            "max_compute_invocations_per_workgroup",
            256,
            l.max_compute_invocations_per_workgroup as u64,
        ),
        (
            "max_compute_workgroup_size_x",
            256,
            l.max_compute_workgroup_size_x as u64,
        ),
        (
            "max_dynamic_uniform_buffers_per_pipeline_layout",
            1,
            l.max_dynamic_uniform_buffers_per_pipeline_layout as u64,
        ),
        (
            "max_storage_buffer_binding_size",
            1 << 20,
            l.max_storage_buffer_binding_size,
        ),
    ];
    for (name, need, offered) in needs {
        if offered < need {
            bail!(
                "this adapter cannot run duel: limit {name} needs {need}, adapter offers {offered}"
            );
        }
    }
    Ok(())
}

/// `DUEL_MAX_BINDING_MIB`: request at most this storage-binding size, to behave as an adapter
/// with a smaller limit would (tests use WebGPU's default, 128 MiB, which every adapter offers).
fn binding_cap_from_env() -> Result<Option<u64>> {
    let Ok(v) = std::env::var("DUEL_MAX_BINDING_MIB") else {
        return Ok(None);
    };
    match v.trim().parse::<u64>() {
        Ok(mib) if mib >= 1 => Ok(Some(mib << 20)),
        _ => bail!(
            "DUEL_MAX_BINDING_MIB={v:?} is not a whole number of MiB ≥ 1; unset it or pass e.g. 128"
        ),
    }
}

/// The device and queue, built once.
pub struct GpuContext {
    pub adapter_index: usize,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub timestamps: bool,
    /// Subgroup operations with subgroups of at least 8 invocations (the subgroup matmul).
    pub subgroups: bool,
}

impl GpuContext {
    /// Opens the adapter chosen by `selector` (see `pick_adapter`), requesting every limit up to
    /// what it offers (the largest storage binding matters for datasets) and timestamp queries
    /// when it has them.
    pub fn new(selector: Option<&str>) -> Result<Self> {
        let (_instance, adapters) = training_adapters(selector);
        let (adapter_index, adapter) = pick_adapter(adapters, selector)?;
        let info = adapter.get_info();
        let mut offered = adapter.limits();
        check_limits(&offered).with_context(|| format!("adapter {}", info.name))?;
        if let Some(bytes) = binding_cap_from_env()? {
            offered.max_storage_buffer_binding_size =
                offered.max_storage_buffer_binding_size.min(bytes);
        }
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let mut features = wgpu::Features::empty();
        if timestamps {
            features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        let subgroups =
            adapter.features().contains(wgpu::Features::SUBGROUP) && info.subgroup_min_size >= 8;
        if subgroups {
            features |= wgpu::Features::SUBGROUP;
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("duel device"),
            required_features: features,
            required_limits: offered.clone(),
            ..Default::default()
        }))
        .with_context(|| format!("opening a device on adapter {}", info.name))?;
        Ok(Self {
            adapter_index,
            limits: device.limits(),
            info,
            device,
            queue,
            timestamps,
            subgroups,
        })
    }

    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }
}

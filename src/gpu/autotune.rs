//! Which matmul kernel runs each class of product on this adapter, and which convolution kernel
//! each class of convolution. The variants are timed once per adapter, driver and kernel source
//! on a training-sized product of each class, and the choice is remembered in a cache file
//! (`$DUEL_CACHE_DIR`, else `$XDG_CACHE_HOME/duel`, else `~/.cache/duel`), so start-up and tests
//! do not re-time it. `DUEL_MATMUL=tiled|subgroup` overrides the matmul choice for every class,
//! `DUEL_CONV=tiled|register` the convolution choice.

use super::conv_register::{ConvChoice, ConvClass};
use super::matmul::{MatmulChoice, SgLayout, SgTile};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

/// The classes of product a linear layer makes, by how the subgroup kernel reads A and B.
pub const CLASSES: [(&str, SgLayout); 4] = [
    (
        "forward",
        SgLayout {
            a_k_fast: true,
            b_n_fast: true,
        },
    ),
    (
        "backward_input",
        SgLayout {
            a_k_fast: true,
            b_n_fast: false,
        },
    ),
    (
        "backward_weights",
        SgLayout {
            a_k_fast: false,
            b_n_fast: true,
        },
    ),
    (
        "transposed_both",
        SgLayout {
            a_k_fast: false,
            b_n_fast: false,
        },
    ),
];

/// The kernel each class of product runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatmulPlan {
    pub by_class: BTreeMap<String, MatmulChoice>,
    /// Where the plan came from: "DUEL_MATMUL", "timed", "cache" or "no subgroups".
    pub source: String,
}

impl MatmulPlan {
    pub fn all(choice: MatmulChoice, source: &str) -> Self {
        MatmulPlan {
            by_class: CLASSES
                .iter()
                .map(|(n, _)| (n.to_string(), choice))
                .collect(),
            source: source.into(),
        }
    }

    pub fn choice(&self, layout: SgLayout) -> MatmulChoice {
        let name = CLASSES
            .iter()
            .find(|(_, l)| *l == layout)
            .map(|(n, _)| *n)
            .expect("every layout has a class");
        self.by_class
            .get(name)
            .copied()
            .unwrap_or(MatmulChoice::Tiled)
    }

    /// "forward subgroup, backward_input tiled, … (timed)"
    pub fn describe(&self) -> String {
        let parts: Vec<String> = CLASSES
            .iter()
            .map(|(n, l)| format!("{n} {}", self.choice(*l).name()))
            .collect();
        format!("{} ({})", parts.join(", "), self.source)
    }
}

/// The convolution kernel each class of convolution runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvPlan {
    pub by_class: BTreeMap<String, ConvChoice>,
    /// Where the plan came from: "DUEL_CONV", "timed", "cache", "forced" or "default".
    pub source: String,
}

impl ConvPlan {
    pub fn all(choice: ConvChoice, source: &str) -> Self {
        ConvPlan {
            by_class: ConvClass::all().map(|c| (c.name(), choice)).collect(),
            source: source.into(),
        }
    }

    pub fn choice(&self, class: ConvClass) -> ConvChoice {
        self.by_class
            .get(&class.name())
            .copied()
            .unwrap_or(ConvChoice::Tiled)
    }

    /// "conv_forward register, conv_forward_narrow tiled, … (timed)"
    pub fn describe(&self) -> String {
        let parts: Vec<String> = ConvClass::all()
            .map(|c| format!("{} {}", c.name(), self.choice(c).name()))
            .collect();
        format!("{} ({})", parts.join(", "), self.source)
    }
}

/// The convolution plan's cache key: adapter, driver, and a hash of both variants' sources.
pub fn conv_cache_key(info: &wgpu::AdapterInfo) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for k in super::conv_register::ConvKind::ALL {
        let def = crate::kernels::by_name(k.tiled_name()).expect("in the table");
        def.shader.text().hash(&mut h);
    }
    for c in ConvClass::all() {
        super::conv_register::register_source(c).hash(&mut h);
    }
    format!(
        "conv | {} | {:?} | {} {} | {:x}",
        info.name,
        info.backend,
        info.driver,
        info.driver_info,
        h.finish()
    )
}

/// A remembered convolution plan for `key`.
pub fn remembered_conv(key: &str) -> Option<ConvPlan> {
    let map = remembered_map(key)?;
    let by_class: Option<BTreeMap<String, ConvChoice>> = map
        .into_iter()
        .map(|(k, v)| ConvChoice::parse(&v).map(|c| (k, c)))
        .collect();
    Some(ConvPlan {
        by_class: by_class?,
        source: "cache".into(),
    })
}

pub fn remember_conv(key: &str, plan: &ConvPlan) {
    let map = plan
        .by_class
        .iter()
        .map(|(k, v)| (k.clone(), v.name().to_string()))
        .collect();
    remember_map(key, map);
}

/// The cache key: adapter, driver, and a hash of the kernels' source and tile.
pub fn cache_key(info: &wgpu::AdapterInfo, tile: SgTile) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    crate::kernels::matmul::SHADER.text().hash(&mut h);
    for (_, l) in CLASSES {
        super::matmul::subgroup_source(l, tile).hash(&mut h);
    }
    format!(
        "{} | {:?} | {} {} | {:x}",
        info.name,
        info.backend,
        info.driver,
        info.driver_info,
        h.finish()
    )
}

/// Where measured choices are remembered: `$DUEL_CACHE_DIR`, else `$XDG_CACHE_HOME/duel`, else
/// `~/.cache/duel`.
pub fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("DUEL_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("duel")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/duel")))
}

fn cache_file() -> Option<PathBuf> {
    Some(cache_dir()?.join("matmul-autotune.json"))
}

/// Per key, the kernel name chosen for each class.
type Cache = HashMap<String, BTreeMap<String, String>>;

/// Plans found this process (tests build many backends).
static MEMORY: Mutex<Option<Cache>> = Mutex::new(None);

fn read_file() -> Cache {
    cache_file()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

/// A remembered matmul plan for `key`, from this process or the cache file.
pub fn remembered(key: &str) -> Option<MatmulPlan> {
    let map = remembered_map(key)?;
    let by_class: Option<BTreeMap<String, MatmulChoice>> = map
        .into_iter()
        .map(|(k, v)| MatmulChoice::parse(&v).map(|c| (k, c)))
        .collect();
    Some(MatmulPlan {
        by_class: by_class?,
        source: "cache".into(),
    })
}

/// Remembers a matmul plan (see `remember_map`).
pub fn remember(key: &str, plan: &MatmulPlan) {
    let map = plan
        .by_class
        .iter()
        .map(|(k, v)| (k.clone(), v.name().to_string()))
        .collect();
    remember_map(key, map);
}

/// The choices remembered for `key`, from this process or the cache file.
fn remembered_map(key: &str) -> Option<BTreeMap<String, String>> {
    let mut mem = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let cache = mem.get_or_insert_with(read_file);
    if !cache.contains_key(key) {
        // Another process may have timed it since this one read the file.
        *cache = read_file();
    }
    cache.get(key).cloned()
}

/// Remembers `by_class` for `key` in this process and, best effort, in the cache file (written
/// atomically; a read-only home only costs a re-time next run).
fn remember_map(key: &str, by_class: BTreeMap<String, String>) {
    let mut mem = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let cache = mem.get_or_insert_with(read_file);
    let mut on_disk = read_file();
    on_disk.insert(key.to_string(), by_class.clone());
    cache.insert(key.to_string(), by_class);
    if let Some(f) = cache_file() {
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(f.parent().expect("a file in a folder"))?;
            let tmp = f.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, serde_json::to_string_pretty(&on_disk)?)?;
            std::fs::rename(&tmp, &f)
        };
        let _ = write();
    }
}

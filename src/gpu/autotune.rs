//! Which matmul kernel runs each class of product on this adapter, and which convolution kernel
//! each class of convolution. The variants are timed once per adapter, driver and kernel source
//! on a training-sized product of each class, and the choice is remembered in a cache file
//! (`$DUEL_CACHE_DIR`, else `$XDG_CACHE_HOME/duel`, else `~/.cache/duel`), so start-up and tests
//! do not re-time it. `DUEL_MATMUL=tiled|subgroup` overrides the matmul choice for every class,
//! `DUEL_CONV=tiled|register|subgroup` the convolution choice.

use super::bmm_register::BmmChoice;
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

/// A kernel with variants, chosen per class of launch by timing (the convolutions', the batched
/// matmul's).
pub trait Variant: Copy + PartialEq + std::fmt::Debug + 'static {
    /// Every variant; the first is the fallback when a class has no choice.
    const ALL: &'static [Self];
    /// The environment variable that forces one variant for every class.
    const ENV: &'static str;
    /// Its name in plans, the cache file and `ENV`.
    fn name(self) -> &'static str;
    /// The names of the classes of launch, each timed and chosen as one.
    fn classes() -> Vec<String>;
    /// Whether it runs only where the backend enabled subgroups (`GpuContext::subgroups`).
    fn needs_subgroups(self) -> bool {
        false
    }

    fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_lowercase();
        Self::ALL.iter().copied().find(|v| v.name() == s)
    }

    /// The variant `ENV` forces, if it is set to one.
    fn from_env() -> Option<Self> {
        std::env::var(Self::ENV).ok().and_then(|s| Self::parse(&s))
    }
}

/// The variant each class of launch runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan<V> {
    pub by_class: BTreeMap<String, V>,
    /// Where the plan came from: the variant's `ENV`, "timed", "cache", "forced" or "default".
    pub source: String,
}

/// The convolution kernel each class of convolution runs.
pub type ConvPlan = Plan<ConvChoice>;
/// The batched-matmul kernel each class of product runs.
pub type BmmPlan = Plan<BmmChoice>;

impl<V: Variant> Plan<V> {
    pub fn all(choice: V, source: &str) -> Self {
        Plan {
            by_class: V::classes().into_iter().map(|c| (c, choice)).collect(),
            source: source.into(),
        }
    }

    pub fn choice(&self, class: &str) -> V {
        self.by_class.get(class).copied().unwrap_or(V::ALL[0])
    }

    /// "conv_forward register, conv_forward_narrow tiled, … (timed)"
    pub fn describe(&self) -> String {
        let parts: Vec<String> = V::classes()
            .iter()
            .map(|c| format!("{c} {}", self.choice(c).name()))
            .collect();
        format!("{} ({})", parts.join(", "), self.source)
    }

    /// The plan remembered for `key`, from this process or the cache file.
    pub fn remembered(key: &str) -> Option<Self> {
        let by_class: Option<BTreeMap<String, V>> = remembered_map(key)?
            .into_iter()
            .map(|(k, v)| V::parse(&v).map(|c| (k, c)))
            .collect();
        Some(Plan {
            by_class: by_class?,
            source: "cache".into(),
        })
    }

    /// Remembers this plan for `key` (see `remember_map`).
    pub fn remember(&self, key: &str) {
        let map = self
            .by_class
            .iter()
            .map(|(k, v)| (k.clone(), v.name().to_string()))
            .collect();
        remember_map(key, map);
    }

    /// The plan with, for each class, the variant of the shortest time.
    pub fn fastest(times: Vec<(String, Vec<(V, f64)>)>) -> Self {
        let mut plan = Self::all(V::ALL[0], "timed");
        for (class, t) in times {
            if let Some(best) = t.into_iter().min_by(|a, b| a.1.total_cmp(&b.1)) {
                plan.by_class.insert(class, best.0);
            }
        }
        plan
    }
}

/// A cache key: what is timed, adapter, driver, and a hash of the timed kernels' sources.
fn variant_key(what: &str, info: &wgpu::AdapterInfo, sources: &[String]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sources.hash(&mut h);
    format!(
        "{what} | {} | {:?} | {} {} | {:x}",
        info.name,
        info.backend,
        info.driver,
        info.driver_info,
        h.finish()
    )
}

/// The batched-matmul plan's cache key: adapter, driver, and a hash of both variants' sources.
pub fn bmm_cache_key(info: &wgpu::AdapterInfo) -> String {
    let tiled = crate::kernels::batched_matmul::SHADER.text();
    variant_key(
        "bmm",
        info,
        &[tiled, super::bmm_register::register_source()],
    )
}

/// The convolution plan's cache key: adapter, driver, and a hash of every variant's sources.
pub fn conv_cache_key(info: &wgpu::AdapterInfo) -> String {
    let mut sources: Vec<String> = super::conv_register::ConvKind::ALL
        .iter()
        .map(|k| {
            let def = crate::kernels::by_name(k.tiled_name()).expect("in the table");
            def.shader.text()
        })
        .collect();
    for choice in [ConvChoice::Register, ConvChoice::Subgroup] {
        sources.extend(ConvClass::all().map(|c| super::conv_register::register_source(c, choice)));
    }
    variant_key("conv", info, &sources)
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

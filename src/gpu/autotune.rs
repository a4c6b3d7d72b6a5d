//! Which matmul kernel runs each class of product on this adapter. Both kernels are timed once
//! per adapter, driver and kernel source on a training-sized product of each class, and the
//! choice is remembered in a cache file (`$DUEL_CACHE_DIR`, else `$XDG_CACHE_HOME/duel`, else
//! `~/.cache/duel`), so start-up and tests do not re-time it. `DUEL_MATMUL=tiled|subgroup`
//! overrides the choice for every class.

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

type Cache = HashMap<String, BTreeMap<String, MatmulChoice>>;

/// Plans found this process (tests build many backends).
static MEMORY: Mutex<Option<Cache>> = Mutex::new(None);

fn read_file() -> Cache {
    cache_file()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

/// A remembered plan for `key`, from this process or the cache file.
pub fn remembered(key: &str) -> Option<MatmulPlan> {
    let mut mem = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let cache = mem.get_or_insert_with(read_file);
    if !cache.contains_key(key) {
        // Another process may have timed it since this one read the file.
        *cache = read_file();
    }
    cache.get(key).map(|by_class| MatmulPlan {
        by_class: by_class.clone(),
        source: "cache".into(),
    })
}

/// Remembers `plan` for `key` in this process and, best effort, in the cache file (written
/// atomically; a read-only home only costs a re-time next run).
pub fn remember(key: &str, plan: &MatmulPlan) {
    let mut mem = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let cache = mem.get_or_insert_with(read_file);
    let mut on_disk = read_file();
    on_disk.insert(key.to_string(), plan.by_class.clone());
    cache.insert(key.to_string(), plan.by_class.clone());
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

//! A run folder belongs to one run: one process writes it at a time (an advisory lock the OS
//! releases when that process dies, however it dies), and its checkpoint carries a fingerprint
//! of the run's identity — data, model, objective — so a checkpoint from another run is refused
//! before anything in the folder is touched.

use crate::checkpoint::Checkpoint;
use crate::config::{Preset, TrainConfig};
use anyhow::{Context, Result, bail};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The lock file in a run folder; it holds the pid of the process that last trained the run.
pub const LOCK_FILE: &str = "run.lock";

/// The options that make a run what it is: its data, model and objective (and the seed and
/// schedule its bits depend on). A resumed run keeps them; they make up its fingerprint.
pub const IDENTITY_KEYS: &[&str] = &[
    "preset",
    "model",
    "conditional",
    "classes",
    "class-names",
    "dataset",
    "channels",
    "split",
    "image-size",
    "background",
    "batch",
    "k",
    "loss",
    "gp",
    "r1",
    "clip",
    "drift",
    "augment",
    "sn",
    "updates",
    "g-loss",
    "opt-g",
    "opt-d",
    "lr-g",
    "lr-d",
    "beta1",
    "beta2",
    "momentum",
    "noise",
    "noise-dim",
    "seed",
    "ema",
    "pack",
    "width",
    "phase-images",
    "init-g",
    "init-d",
    "g-output-bias",
    "lr-decay",
    "lr-min",
    "momentum-final",
    "momentum-start",
    "momentum-saturate",
    "limit",
    "eval-every",
    "eval-samples",
];

/// Holds a run folder's lock until dropped (or until the process dies: the OS releases it).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes `dir`'s lock without waiting, writing this process's pid into it. A folder another
    /// live process is training is refused at once, naming that process.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("{}: cannot open the run's lock file", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let holder = match pid.trim() {
                    "" => "another process".to_string(),
                    p => format!("process {p}"),
                };
                bail!(
                    "{}: {holder} is training this run; wait for it to finish or stop it, or \
                     pass another --out",
                    dir.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("{}: cannot lock", path.display()));
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(RunLock { _file: file })
    }
}

/// A run's identity as text: the identity options' values, then the sample shape.
fn identity(cfg: &TrainConfig, dim: usize, image_shape: Option<(usize, usize, usize)>) -> String {
    let table = toml::Table::try_from(cfg).expect("a config always serializes");
    let mut text = String::new();
    for key in IDENTITY_KEYS {
        let value = table.get(*key).map_or("-".into(), ToString::to_string);
        text += &format!("{key}={value}\n");
    }
    text + &format!("dim={dim}\nimage-shape={image_shape:?}\n")
}

/// The fingerprint a checkpoint records: CRC-32C of the run's identity, in hex.
pub fn fingerprint(
    cfg: &TrainConfig,
    dim: usize,
    image_shape: Option<(usize, usize, usize)>,
) -> String {
    format!(
        "{:08x}",
        crc32c::crc32c(identity(cfg, dim, image_shape).as_bytes())
    )
}

/// The first identity option on which `a` and `b` differ: (key, a's value, b's value).
fn first_difference(a: &TrainConfig, b: &TrainConfig) -> Option<(String, String, String)> {
    let (ta, tb) = (
        toml::Table::try_from(a).expect("serializes"),
        toml::Table::try_from(b).expect("serializes"),
    );
    IDENTITY_KEYS.iter().find_map(|k| {
        let show = |t: &toml::Table| t.get(*k).map_or("(unset)".into(), ToString::to_string);
        let (x, y) = (show(&ta), show(&tb));
        (x != y).then(|| (k.to_string(), x, y))
    })
}

/// Refuses to resume `dir` from `ck` unless the checkpoint's fingerprint is that of the run
/// the folder's `config.toml` describes, and `steps` continues it. Reads only.
pub fn check_resume(dir: &Path, ck: &Checkpoint, steps: u64) -> Result<()> {
    let path = dir.join("config.toml");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let mut folder = TrainConfig::from_toml(&text, &path.display().to_string())?;
        // A run of the first sagan32, whose checkpoint reads as sagan32-dcgan (checkpoint.rs).
        if (folder.preset, ck.config.preset) == (Preset::Sagan32, Preset::Sagan32Dcgan) {
            folder.preset = Preset::Sagan32Dcgan;
        }
        let (theirs, ours) = (
            fingerprint(&ck.config, ck.dim, ck.image_shape),
            fingerprint(&folder, ck.dim, ck.image_shape),
        );
        if theirs != ours {
            let why = match first_difference(&ck.config, &folder) {
                Some((key, a, b)) => format!("{key} = {a}, but this folder's config.toml has {b}"),
                None => format!("fingerprint {theirs}, the folder's {ours}"),
            };
            bail!(
                "{}: the checkpoint belongs to another run ({why}); resume the folder it came \
                 from, or start a new run with --out",
                dir.display()
            );
        }
    }
    let at = ck.state.iteration;
    if steps <= at {
        bail!(
            "--steps {steps}: the run in {} is already at step {at}; pass --steps above {at} to \
             train further",
            dir.display()
        );
    }
    Ok(())
}

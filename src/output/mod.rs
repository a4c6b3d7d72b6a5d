//! Run artefacts: sample grids (PNG), raw arrays (.npy), plots (PNG) and TensorBoard event files.

pub mod grid;
pub mod metrics_log;
pub mod npy;
pub mod plot;
pub mod tensorboard;

pub use grid::{Images, grid_image, grid_image_cols, write_png, write_png_grid};
pub use npy::{read_npy_f32, write_npy, write_npy_streamed};
pub use plot::{Panel, Series, write_panels_png, write_scatter_png, write_training_plot};

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Writes `path` atomically: `fill` writes to `<path>.tmp`, which is then renamed
/// over `path`, so a reader (or a crash mid-write) never sees a partial file.
/// Missing parent directories are created. Not fsynced: atomic, not durable.
pub(crate) fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create directory", parent.display()))?;
    }
    let tmp = tmp_path(path);
    let result = (|| {
        let file =
            File::create(&tmp).with_context(|| format!("{}: cannot create file", tmp.display()))?;
        let mut w = BufWriter::new(file);
        fill(&mut w)?;
        w.flush()
            .with_context(|| format!("{}: write failed", tmp.display()))?;
        drop(w);
        fs::rename(&tmp, path).with_context(|| {
            format!(
                "{}: cannot rename {} into place",
                path.display(),
                tmp.display()
            )
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `<path>.tmp` (appended to the full file name, e.g. `grid.png.tmp`).
fn tmp_path(path: &Path) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_creates_dirs_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("duel-io-out-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("nested/x.bin");
        write_atomic(&path, |w| Ok(w.write_all(b"abc")?)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"abc");
        assert!(!tmp_path(&path).exists());
        // A failing writer leaves the old file intact and no .tmp behind.
        let err = write_atomic(&path, |_| anyhow::bail!("boom")).unwrap_err();
        assert_eq!(err.to_string(), "boom");
        assert_eq!(fs::read(&path).unwrap(), b"abc");
        assert!(!tmp_path(&path).exists());
    }
}

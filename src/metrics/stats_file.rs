//! FID statistics files as pytorch-fid writes and reads them: a NumPy `.npz` (a zip of `.npy`
//! arrays) holding `mu` (float64 [d]) and `sigma` (float64 [d, d]), so `np.load(f)["mu"]` and
//! pytorch-fid's `calculate_frechet_distance` work on the files duel writes, and duel compares
//! against statistics computed elsewhere (`duel eval fid --reference`).

use super::FidStats;
use crate::output::npy::{npy_bytes_f64, parse_npy_f64};
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::path::Path;

/// Writes `stats` to `path` as `np.savez` does (uncompressed members `mu.npy`, `sigma.npy`),
/// atomically: a reader or a crash sees the old file or the new one.
pub fn write_stats(path: &Path, stats: &FidStats) -> Result<()> {
    let d = stats.d();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data, shape) in [
        ("mu.npy", &stats.mu, vec![d]),
        ("sigma.npy", &stats.sigma, vec![d, d]),
    ] {
        zip.start_file(name, opts)?;
        zip.write_all(&npy_bytes_f64(data, &shape)?)?;
    }
    let bytes = zip.finish()?.into_inner();
    crate::checkpoint::write_atomic(path, &bytes)
        .with_context(|| format!("{}: cannot write the statistics", path.display()))
}

/// Reads `mu` and `sigma` from an `.npz` (as `np.savez` or `np.savez_compressed` write them,
/// float64 or float32), checking their shapes agree and every value is finite; with
/// `features`, that they are statistics of that many features. Errors name the file and the fix.
pub fn read_stats(path: &Path, features: Option<usize>) -> Result<FidStats> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("{}: cannot read the statistics file", path.display()))?;
    let at = |e: anyhow::Error| anyhow::anyhow!("{}: {e:#}", path.display());
    let mut zip = zip::ZipArchive::new(file).map_err(|e| {
        at(anyhow::anyhow!(
            "not an .npz file ({e}); write statistics with np.savez(f, mu=mu, sigma=sigma)"
        ))
    })?;
    let mut array = |key: &str| -> Result<(Vec<usize>, Vec<f64>)> {
        let mut entry = zip.by_name(&format!("{key}.npy")).map_err(|_| {
            anyhow::anyhow!(
                "has no {key:?} array; FID statistics hold mu and sigma \
                 (np.savez(f, mu=mu, sigma=sigma))"
            )
        })?;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        parse_npy_f64(&bytes).with_context(|| format!("its {key:?} array is not readable"))
    };
    let (mu_shape, mu) = array("mu").map_err(at)?;
    let (sigma_shape, sigma) = array("sigma").map_err(at)?;
    let d = mu.len();
    if mu_shape.len() != 1 || d == 0 {
        bail!(
            "{}: mu has shape {mu_shape:?}, not [d]: write the mean of the features",
            path.display()
        );
    }
    if sigma_shape != [d, d] {
        bail!(
            "{}: sigma has shape {sigma_shape:?} but mu has {d} features: sigma must be their \
             [{d}, {d}] covariance",
            path.display()
        );
    }
    if let Some(f) = features
        && f != d
    {
        bail!(
            "{}: statistics of {d} features, but this FID uses {f}: compute the reference \
             with the same feature network",
            path.display()
        );
    }
    if let Some(i) = mu.iter().chain(&sigma).position(|v| !v.is_finite()) {
        let what = if i < d { "mu" } else { "sigma" };
        bail!(
            "{}: {what} holds NaN or infinite values: recompute the statistics",
            path.display()
        );
    }
    Ok(FidStats { mu, sigma, n: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("duel-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn statistics_round_trip_exactly() {
        let stats = FidStats {
            mu: vec![0.5, -1.25, 1e-300],
            sigma: (0..9).map(|i| i as f64 / 7.0).collect(),
            n: 0,
        };
        let path = tmp("round.npz");
        write_stats(&path, &stats).unwrap();
        assert_eq!(read_stats(&path, Some(3)).unwrap(), stats);
        let e = format!("{:#}", read_stats(&path, Some(4)).unwrap_err());
        assert!(
            e.contains("statistics of 3 features, but this FID uses 4"),
            "{e}"
        );
    }

    #[test]
    fn bad_files_are_named_in_one_line() {
        let bad =
            |name: &str, mu: &[f64], mu_shape: &[usize], sigma: Option<(&[f64], &[usize])>| {
                let path = tmp(name);
                let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
                let opts = zip::write::SimpleFileOptions::default();
                zip.start_file("mu.npy", opts).unwrap();
                zip.write_all(&npy_bytes_f64(mu, mu_shape).unwrap())
                    .unwrap();
                if let Some((s, shape)) = sigma {
                    zip.start_file("sigma.npy", opts).unwrap();
                    zip.write_all(&npy_bytes_f64(s, shape).unwrap()).unwrap();
                }
                zip.finish().unwrap();
                let e = format!("{:#}", read_stats(&path, None).unwrap_err());
                assert_eq!(e.lines().count(), 1, "{e}");
                assert!(e.contains(name), "{e}");
                e
            };
        let e = bad("nosigma.npz", &[1.0, 2.0], &[2], None);
        assert!(e.contains("has no \"sigma\" array"), "{e}");
        let e = bad("shape.npz", &[1.0, 2.0], &[2], Some((&[1.0; 6], &[2, 3])));
        assert!(
            e.contains("sigma has shape [2, 3] but mu has 2 features"),
            "{e}"
        );
        let e = bad("mu2d.npz", &[1.0; 4], &[2, 2], Some((&[1.0; 16], &[4, 4])));
        assert!(e.contains("mu has shape [2, 2]"), "{e}");
        let e = bad(
            "nan.npz",
            &[1.0, 2.0],
            &[2],
            Some((&[1.0, f64::NAN, 0.0, 1.0], &[2, 2])),
        );
        assert!(e.contains("sigma holds NaN"), "{e}");
        let path = tmp("notzip.npz");
        std::fs::write(&path, b"plain text").unwrap();
        let e = format!("{:#}", read_stats(&path, None).unwrap_err());
        assert!(
            e.contains("not an .npz file") && e.lines().count() == 1,
            "{e}"
        );
    }
}

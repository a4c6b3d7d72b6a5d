//! FID statistics files (`duel eval fid --save-stats / --reference`): a file duel writes is
//! NumPy's float64 mu and sigma as pytorch-fid reads them, and scoring the same samples
//! against it gives 0; a file NumPy writes (compressed, as pytorch-fid saves them) is read and
//! gives the distance NumPy computes; bad files and outputs are refused in one line, and a
//! statistics file already saved is never replaced.

mod common;

use common::cli::{fails, ok, s, tmp};
use std::path::Path;
use std::process::Command;

fn python(dir: &Path, code: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .current_dir(dir)
        .output()
        .expect("python3 runs (install it, with numpy, to run this test)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "python failed:\n{text}");
    text
}

/// The number after "FID " on the `generator:` line.
fn fid_of(out: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("generator:") || l.starts_with("digit-classifier FID"))
        .unwrap_or_else(|| panic!("no generator line in:\n{out}"));
    let at = line.find("FID ").expect("an FID") + 4;
    line[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn statistics_files_round_trip_through_duel_and_numpy() {
    let dir = tmp("stats");
    let run = dir.join("run");
    ok(&[
        "train",
        "--preset",
        "mlp",
        "--steps",
        "6",
        "--batch",
        "16",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let eval = |extra: &[&str]| {
        let base = [
            "eval",
            "fid",
            "--run",
            s(&run),
            "--samples",
            "300",
            "--backend",
            "cpu",
        ];
        ok(&[&base[..], extra].concat())
    };
    let mine = dir.join("g.npz");
    let out = eval(&["--save-stats", s(&mine)]);
    assert!(out.contains("wrote the statistics of 300 samples"), "{out}");
    // The file is what pytorch-fid reads: float64 mu [128] and sigma [128, 128], symmetric.
    let shapes = python(
        &dir,
        "import numpy as np\n\
         f = np.load('g.npz'); m, s = f['mu'], f['sigma']\n\
         assert m.dtype == np.float64 and s.dtype == np.float64\n\
         assert np.allclose(s, s.T) and np.all(np.diag(s) >= 0)\n\
         print(m.shape, s.shape)",
    );
    assert!(shapes.contains("(128,) (128, 128)"), "{shapes}");
    // The same samples against their own statistics: distance 0.
    let same = fid_of(&eval(&["--reference", s(&mine)]));
    assert!(
        same.abs() < 1e-3,
        "FID against its own statistics is {same}"
    );
    // NumPy's file, compressed as pytorch-fid saves: the mean moved by δ, the covariance kept,
    // so the Fréchet distance is exactly |δ|².
    let expected: f64 = python(
        &dir,
        "import numpy as np\n\
         f = np.load('g.npz'); d = np.linspace(-1, 2, 128)\n\
         np.savez_compressed('numpy.npz', mu=f['mu'] + d, sigma=f['sigma'])\n\
         print(float(d @ d))",
    )
    .trim()
    .parse()
    .unwrap();
    let got = fid_of(&eval(&["--reference", s(&dir.join("numpy.npz"))]));
    assert!(
        (got - expected).abs() < 1e-3 * expected,
        "FID {got}, NumPy's |δ|² {expected}"
    );
    // An existing statistics file is never replaced.
    let before = std::fs::read(&mine).unwrap();
    let err = fails(&[
        "eval",
        "fid",
        "--run",
        s(&run),
        "--backend",
        "cpu",
        "--save-stats",
        s(&mine),
    ]);
    assert!(
        err.contains("the file exists") && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!(std::fs::read(&mine).unwrap(), before);
    // Bad references, each named in one line.
    python(
        &dir,
        "import numpy as np\n\
         np.savez('narrow.npz', mu=np.zeros(3), sigma=np.eye(3))\n\
         np.savez('nomu.npz', sigma=np.eye(3))\n\
         np.savez('inf.npz', mu=np.full(128, np.inf), sigma=np.eye(128))",
    );
    for (file, want) in [
        (
            "narrow.npz",
            "statistics of 3 features, but this FID uses 128",
        ),
        ("nomu.npz", "has no \"mu\" array"),
        ("inf.npz", "mu holds NaN or infinite values"),
        ("absent.npz", "cannot read the statistics file"),
    ] {
        let err = fails(&[
            "eval",
            "fid",
            "--run",
            s(&run),
            "--backend",
            "cpu",
            "--reference",
            s(&dir.join(file)),
        ]);
        assert!(err.contains(want) && err.contains(file), "{file}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    let err = fails(&[
        "eval",
        "fid",
        "--run",
        s(&run),
        "--save-stats",
        s(&dir.join("g.npy")),
    ]);
    assert!(err.contains("name the file .npz"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

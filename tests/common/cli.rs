//! Running the `duel` binary as a user does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn duel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_duel"))
        .args(args)
        .output()
        .expect("the duel binary runs")
}

/// Runs a command that must succeed; returns its stdout and stderr.
pub fn ok(args: &[&str]) -> String {
    let out = duel(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "duel {args:?} failed:\n{text}");
    text
}

/// Runs a command that must fail with an `error:` line and no panic; returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = duel(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "duel {args:?} should have failed");
    assert!(!err.contains("panicked"), "duel {args:?} panicked:\n{err}");
    assert!(err.starts_with("error: "), "no error line: {err}");
    err
}

/// Each of `cases` (arguments, expected text) must fail with one error line containing the
/// text, leaving nothing at `out`.
pub fn refused_in_one_line(cases: &[(&[&str], &str)], out: &Path) {
    for (args, want) in cases {
        let err = fails(args);
        assert!(
            err.contains(want),
            "duel {args:?}: expected {want:?} in: {err}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "more than one line: {err}"
        );
        assert!(!out.exists(), "a refused run left {}", out.display());
    }
}

/// A fresh, empty path under the temp dir, unique to this test process; removed when the
/// test is done with it, unless the test failed (it is then left to look at).
pub fn tmp(name: &str) -> TmpPath {
    let exe = std::env::current_exe().unwrap();
    let suite = exe.file_stem().unwrap().to_string_lossy().to_string();
    let dir = std::env::temp_dir().join(format!("duel-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    TmpPath(dir)
}

/// `tmp`'s path: a `Path` everywhere, and a run folder or file gone at the end of a passing test
/// (runs write up to 100 MB each, and the suites left 40 GB in /tmp over a few dozen runs).
pub struct TmpPath(PathBuf);

impl std::ops::Deref for TmpPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TmpPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TmpPath {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TmpPath {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` (but the lock file, which holds the last trainer's pid) with its bytes.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != duel::run_dir::LOCK_FILE {
                files.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

/// `args` must fail with exit code 1 and one error line containing `want`, leaving every file in
/// `run` as it was; returns the line.
pub fn refused_untouched(args: &[&str], want: &str, run: &Path) -> String {
    let before = snapshot(run);
    let out = duel(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "duel {args:?}: {err}");
    assert!(err.starts_with("error: "), "no error line: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "more than one line: {err}"
    );
    assert!(
        err.contains(want),
        "duel {args:?}: expected {want:?} in: {err}"
    );
    let after = snapshot(run);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "duel {args:?} added or removed files in {}",
        run.display()
    );
    for (path, bytes) in &before {
        assert!(
            after[path] == *bytes,
            "duel {args:?} changed {}",
            path.display()
        );
    }
    err
}

/// A folder of CIFAR-10 binary files under a `tmp` path of its own: five training batches of 8 records
/// (labels cycling 0–9 across them) and a test batch of 6, each image a smooth colour pattern
/// of its own.
pub fn cifar_folder(name: &str) -> TmpPath {
    use duel::data::cifar::{TEST_FILE, TRAIN_FILES, write_records};
    // A folder per call: tests running side by side ask for the same name, and each removes
    // its own when done.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = tmp(&format!("{name}-{call}"));
    std::fs::create_dir_all(&dir).unwrap();
    let pixel = |seed: usize| {
        move |i: usize, b: usize| ((b % 32) * 4 + (b / 1024) * 60 + i * 9 + seed) as u8
    };
    for (f, file) in TRAIN_FILES.iter().enumerate() {
        let labels: Vec<u8> = (0..8).map(|i| ((f * 8 + i) % 10) as u8).collect();
        write_records(&dir.join(file), &labels, pixel(f * 31)).unwrap();
    }
    write_records(&dir.join(TEST_FILE), &[0, 1, 2, 3, 4, 5], pixel(7)).unwrap();
    dir
}

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

/// A fresh, empty path under the temp dir, unique to this test process.
pub fn tmp(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let suite = exe.file_stem().unwrap().to_string_lossy().to_string();
    let dir = std::env::temp_dir().join(format!("duel-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

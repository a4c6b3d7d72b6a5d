//! `duel eval` and `duel theory` as a user runs them: on tiny runs trained by `duel train`,
//! with one readable error line for runs of the wrong kind.

mod common;

use common::cli::{duel, fails, ok, s, tmp};
use std::path::Path;

fn train(dataset: &str, steps: &str, batch: &str, out: &Path) {
    ok(&[
        "train",
        "--dataset",
        dataset,
        "--steps",
        steps,
        "--batch",
        batch,
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        s(out),
    ]);
}

/// The number after `label` in `text`, e.g. "test log-likelihood: 12.3".
fn number_after(text: &str, label: &str) -> f64 {
    let rest = &text[text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
        + label.len()..];
    rest.trim_start()
        .split(|c: char| c.is_whitespace() || c == '/')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in:\n{text}"))
}

#[test]
fn modes_of_a_ring8_run() {
    let run = tmp("ring8");
    train("ring8", "30", "64", &run);
    let out = ok(&["eval", "modes", "--run", s(&run), "--backend", "cpu"]);
    assert!(out.contains("ring8 at iteration 30, 2500 samples"), "{out}");
    let captured = number_after(&out, "generator");
    assert!((0.0..=8.0).contains(&captured), "{out}");
    let real = out.lines().find(|l| l.starts_with("real data")).unwrap();
    assert!(real.contains(" 8/8 "), "{out}");
    assert!(out.contains("PacGAN"), "{out}");
    // The same run again gives the same numbers (the noise is seeded).
    assert_eq!(
        out,
        ok(&["eval", "modes", "--run", s(&run), "--backend", "cpu"])
    );
    let err = fails(&["eval", "parzen", "--run", s(&run), "--backend", "cpu"]);
    assert!(err.contains("eval modes"), "{err}");
}

/// An MNIST-format IDX file of `n` images of 28×28 random pixels.
fn write_idx(path: &Path, n: usize, seed: u32) {
    let mut bytes = vec![0, 0, 8, 3];
    for v in [n as u32, 28, 28] {
        bytes.extend(v.to_be_bytes());
    }
    let mut state = seed;
    for _ in 0..n * 784 {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        bytes.push((state >> 24) as u8);
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn parzen_of_an_mnist_run_with_the_embedded_and_given_digits() {
    let run = tmp("mnist");
    train("mnist", "2", "16", &run);
    let out = ok(&[
        "eval",
        "parzen",
        "--run",
        s(&run),
        "--samples",
        "300",
        "--backend",
        "cpu",
    ]);
    assert_eq!(
        out.matches("mean validation log-likelihood").count(),
        10,
        "{out}"
    );
    assert!(out.contains("← chosen"), "{out}");
    let ll = number_after(&out, "test log-likelihood:");
    assert!(ll.is_finite(), "{out}");
    let real = number_after(&out, "same procedure):");
    assert!(
        real > ll,
        "real digits should score above an untrained G:\n{out}"
    );
    assert!(out.contains("tested on the second 500"), "{out}");

    let (test, valid) = (run.join("test.idx"), run.join("valid.idx"));
    write_idx(&test, 40, 1);
    write_idx(&valid, 60, 2);
    let out = ok(&[
        "eval",
        "parzen",
        "--run",
        s(&run),
        "--samples",
        "100",
        "--data",
        s(&test),
        "--valid",
        s(&valid),
        "--valid-skip",
        "10",
        "--valid-count",
        "30",
        "--no-baseline",
        "--backend",
        "cpu",
    ]);
    assert!(out.contains("over 40 digits"), "{out}");
    assert!(out.contains("30 images of"), "{out}");
    assert!(!out.contains("baseline"), "{out}");
    let err = fails(&["eval", "modes", "--run", s(&run), "--backend", "cpu"]);
    assert!(err.contains("eval parzen"), "{err}");
    let err = fails(&["eval", "parzen", "--run", s(&run.join("nothing"))]);
    assert!(err.contains("no checkpoint.safetensors"), "{err}");
}

#[test]
fn theory_saturation_check_from_the_command_line() {
    let out_dir = tmp("theory");
    let out = ok(&[
        "theory",
        "--check",
        "saturation",
        "--steps",
        "50",
        "--batch",
        "32",
        "--backend",
        "cpu",
        "--out",
        s(&out_dir),
    ]);
    assert!(
        out.contains("PASS") && out.contains("1 of 1 checks passed"),
        "{out}"
    );
    let out = ok(&[
        "theory",
        "--check",
        "optimal-d",
        "--steps",
        "500",
        "--batch",
        "64",
        "--backend",
        "cpu",
        "--out",
        s(&out_dir),
    ]);
    assert!(out_dir.join("optimal_d.png").is_file(), "{out}");
    assert!(out.contains("value at the optimum"), "{out}");
    // Far too few updates: D is nowhere near D*, and the command says so and fails.
    let err = duel(&[
        "theory",
        "--check",
        "optimal-d",
        "--steps",
        "3",
        "--backend",
        "cpu",
        "--out",
        s(&out_dir),
    ]);
    let text = String::from_utf8_lossy(&err.stdout);
    assert!(!err.status.success() && text.contains("FAIL"), "{text}");
    assert!(
        String::from_utf8_lossy(&err.stderr).starts_with("error: "),
        "{:?}",
        err
    );
}

#[test]
fn help_lists_options_and_defaults() {
    let help = ok(&["eval", "parzen", "--help"]);
    for want in [
        "--samples",
        "default: 10000",
        "--data",
        "--valid",
        "--backend",
    ] {
        assert!(help.contains(want), "{want} missing:\n{help}");
    }
    let help = ok(&["eval", "modes", "--help"]);
    assert!(help.contains("default: 2500"), "{help}");
    let help = ok(&["theory", "--help"]);
    for want in [
        "--steps",
        "default: 1000",
        "default: gpu",
        "optimal-d",
        "saturation",
    ] {
        assert!(help.contains(want), "{want} missing:\n{help}");
    }
}

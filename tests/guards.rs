//! Training that survives: divergence, bad data, bad checkpoints, interrupts and kill -9 —
//! each with a clear one-line error or a clean recovery, and nothing already saved lost.

use duel::checkpoint::Checkpoint;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_duel"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the duel binary runs")
}

fn fails(args: &[&str]) -> String {
    fails_with_env(&[], args)
}

fn fails_with_env(env: &[(&str, &str)], args: &[&str]) -> String {
    let out = bin()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the duel binary runs");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "duel {args:?} should have failed");
    assert!(!err.contains("panicked"), "duel {args:?} panicked:\n{err}");
    assert!(
        err.starts_with("error: ") && err.trim_end().lines().count() == 1,
        "not one error line: {err}"
    );
    err
}

fn succeeds(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "duel {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("duel-guards-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An IDX images file of `n` 28×28 images, its header claiming `claimed` images.
fn idx_bytes(n: usize, claimed: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [claimed, 28, 28] {
        b.extend(d.to_be_bytes());
    }
    b.extend((0..n * 784).map(|i| (i % 256) as u8));
    b
}

#[test]
fn divergence_stops_with_the_step_and_keeps_the_last_good_checkpoint() {
    let dir = tmp("nan").join("run");
    let err = fails(&[
        "train",
        "--dataset",
        "ring8",
        "--backend",
        "cpu",
        "--lr-g",
        "1e30",
        "--steps",
        "50",
        "--log-every",
        "1",
        "--checkpoint-every",
        "1",
        "--quiet",
        "--out",
        s(&dir),
    ]);
    assert!(
        err.contains("NaN or infinite") && err.contains("learning rate"),
        "{err}"
    );
    let ck =
        Checkpoint::load(&dir.join("checkpoint.safetensors")).expect("last good checkpoint kept");
    assert!(
        err.contains(&format!("(step {}) is kept", ck.state.iteration)),
        "{err}"
    );
    assert!(ck.state.g.params.iter().all(|v| v.is_finite()));
}

#[test]
fn bad_data_is_named() {
    let dir = tmp("data");
    let o = dir.join("run");
    let truncated = dir.join("truncated-idx3-ubyte");
    std::fs::write(&truncated, &idx_bytes(3, 5)[..]).unwrap();
    let err = fails(&["train", "--dataset", s(&truncated), "--out", s(&o)]);
    assert!(err.contains("truncated-idx3-ubyte"), "{err}");

    let wrong_magic = dir.join("labels-idx1-ubyte");
    std::fs::write(&wrong_magic, [0u8, 0, 8, 1, 0, 0, 0, 1, 7]).unwrap();
    let err = fails(&["train", "--dataset", s(&wrong_magic), "--out", s(&o)]);
    assert!(
        err.contains("labels-idx1-ubyte") && err.contains("magic"),
        "{err}"
    );

    let small = dir.join("small-idx3-ubyte");
    std::fs::write(&small, idx_bytes(10, 10)).unwrap();
    let err = fails(&[
        "train",
        "--dataset",
        s(&small),
        "--batch",
        "64",
        "--out",
        s(&o),
    ]);
    assert!(
        err.contains("fewer than one batch") && err.contains("--batch 10"),
        "{err}"
    );

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = fails(&["train", "--dataset", s(&empty), "--out", s(&o)]);
    assert!(err.contains("empty") || err.contains("no images"), "{err}");

    let junk = dir.join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("digit.png"), b"this is not a PNG").unwrap();
    let err = fails(&["train", "--dataset", s(&junk), "--out", s(&o)]);
    assert!(err.contains("digit.png"), "{err}");
    assert!(!o.join("checkpoint.safetensors").exists());
}

#[test]
fn a_batch_too_large_for_the_adapter_names_the_limit_and_what_fits() {
    // Adapters' limits differ (lavapipe binds 128 MiB, SwiftShader 1 GiB, hardware GPUs more):
    // request WebGPU's default, 128 MiB, which every adapter offers, so the batch is too large on
    // all of them.
    let o = tmp("bigbatch").join("run");
    let err = fails_with_env(
        &[("DUEL_MAX_BINDING_MIB", "128")],
        &[
            "train",
            "--dataset",
            "ring8",
            "--preset",
            "mlp",
            "--backend",
            "gpu",
            "--batch",
            "60000",
            "--steps",
            "1",
            "--out",
            s(&o),
        ],
    );
    assert!(err.contains("max_storage_buffer_binding_size"), "{err}");
    assert!(err.contains(&(128u64 << 20).to_string()), "{err}");
    assert!(err.contains("largest batch that fits is"), "{err}");
    let err = fails_with_env(
        &[("DUEL_MAX_BINDING_MIB", "lots")],
        &["train", "--backend", "gpu"],
    );
    assert!(err.contains("DUEL_MAX_BINDING_MIB"), "{err}");
}

#[test]
fn foreign_truncated_and_mismatched_checkpoints_are_refused_untouched() {
    let dir = tmp("ckpt");
    let good = dir.join("good");
    succeeds(&[
        "train",
        "--dataset",
        "ring8",
        "--steps",
        "3",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        s(&good),
    ]);
    let bytes = std::fs::read(good.join("checkpoint.safetensors")).unwrap();

    let truncated = dir.join("truncated");
    std::fs::create_dir_all(&truncated).unwrap();
    let t = truncated.join("checkpoint.safetensors");
    std::fs::write(&t, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&["train", "--resume", s(&truncated)]);
    assert!(err.contains("checkpoint.safetensors"), "{err}");
    assert_eq!(
        std::fs::read(&t).unwrap().len(),
        bytes.len() / 2,
        "the file was changed"
    );

    // A valid safetensors file from another tool.
    let foreign = dir.join("foreign.safetensors");
    let data = [0u8; 16];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &data).unwrap();
    std::fs::write(
        &foreign,
        safetensors::serialize([("w", view)], None).unwrap(),
    )
    .unwrap();
    let err = fails(&[
        "sample",
        "--checkpoint",
        s(&foreign),
        "--out",
        s(&dir.join("x.png")),
    ]);
    assert!(
        err.contains("foreign.safetensors") && err.contains("metadata"),
        "{err}"
    );

    // A checkpoint whose config names a different model shape than its tensors.
    let (from, to) = (b"noise-dim = 8", b"noise-dim = 5");
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("config in the metadata");
    let mut edited = bytes.clone();
    edited[at..at + to.len()].copy_from_slice(to);
    let mismatched = dir.join("mismatched.safetensors");
    std::fs::write(&mismatched, &edited).unwrap();
    let err = fails(&[
        "sample",
        "--checkpoint",
        s(&mismatched),
        "--out",
        s(&dir.join("y.png")),
    ]);
    assert!(err.contains("generator.0.weight"), "{err}");
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_resume_continues() {
    let dir = tmp("sigint").join("run");
    let child = bin()
        .args([
            "train",
            "--dataset",
            "ring8",
            "--backend",
            "cpu",
            "--steps",
            "1000000",
            "--batch",
            "16",
        ])
        .args(["--checkpoint-every", "1000000", "--out", s(&dir)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&dir.join("config.toml"));
    std::thread::sleep(Duration::from_millis(500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "an interrupted run exits non-zero");
    let ck = Checkpoint::load(&dir.join("checkpoint.safetensors")).expect("checkpoint on Ctrl-C");
    assert!(ck.state.iteration > 0);
    let target = (ck.state.iteration + 5).to_string();
    succeeds(&["train", "--resume", s(&dir), "--steps", &target, "--quiet"]);
    let after = Checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
    assert_eq!(after.state.iteration, ck.state.iteration + 5);
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_loses_at_most_the_steps_since_the_last_checkpoint() {
    let dir = tmp("kill9").join("run");
    let mut child = bin()
        .args([
            "train",
            "--dataset",
            "ring8",
            "--backend",
            "cpu",
            "--steps",
            "1000000",
            "--batch",
            "16",
        ])
        .args([
            "--checkpoint-every",
            "25",
            "--log-every",
            "5",
            "--out",
            s(&dir),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ck_path = dir.join("checkpoint.safetensors");
    wait_for(&ck_path);
    // Let a few more checkpoints be written, so the kill lands mid-run, maybe mid-write.
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let ck = Checkpoint::load(&ck_path).expect("the checkpoint is whole after kill -9");
    assert!(ck.state.iteration >= 25 && ck.state.iteration.is_multiple_of(25));
    // The metrics log may have run ahead of the checkpoint; resume redoes those steps.
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let last_logged: u64 = metrics
        .lines()
        .last()
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(last_logged >= ck.state.iteration);
    assert!(
        last_logged - ck.state.iteration < 25 + 5,
        "lost more than a checkpoint interval"
    );
    let target = (ck.state.iteration + 10).to_string();
    let out = bin()
        .args(["train", "--resume", s(&dir), "--steps", &target])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("resuming at {}", ck.state.iteration)),
        "{text}"
    );
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let steps: Vec<u64> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "metrics rows repeat after resume: {steps:?}"
    );
    assert_eq!(*steps.last().unwrap(), ck.state.iteration + 10);
    let _ = std::io::stdout().flush();
}

#[test]
fn gpu_resume_agrees_with_an_uninterrupted_run() {
    let (a, b) = (tmp("gpu-whole").join("run"), tmp("gpu-halves").join("run"));
    let common = [
        "--dataset",
        "ring8",
        "--batch",
        "32",
        "--backend",
        "gpu",
        "--quiet",
        "--log-every",
        "5",
    ];
    succeeds(&[&["train", "--steps", "16", "--out", s(&a)], &common[..]].concat());
    succeeds(&[&["train", "--steps", "8", "--out", s(&b)], &common[..]].concat());
    succeeds(&["train", "--resume", s(&b), "--steps", "16", "--quiet"]);
    let ca = Checkpoint::load(&a.join("checkpoint.safetensors")).unwrap();
    let cb = Checkpoint::load(&b.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ca.state.iteration, cb.state.iteration);
    assert_eq!(ca.state.rng, cb.state.rng);
    for (x, y) in [
        (&ca.state.g.params, &cb.state.g.params),
        (&ca.state.d.params, &cb.state.d.params),
    ] {
        let worst = x
            .iter()
            .zip(y.iter())
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "GPU resume differs by {worst}");
    }
}

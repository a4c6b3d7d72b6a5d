//! A run folder belongs to one run: a checkpoint from another run, a --steps that does not go
//! forward, or a second trainer are refused in one line with nothing in the folder changed; and
//! kill -9 during training or mid-checkpoint, then resume, ends bit-identical to a run never
//! interrupted.

mod common;

use common::cli::{ok, refused_untouched, s, tmp};
use duel::checkpoint::Checkpoint;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RING8: [&str; 7] = [
    "--batch",
    "16",
    "--log-every",
    "5",
    "--backend",
    "cpu",
    "--quiet",
];

fn train_ring8(out: &Path, steps: &str, extra: &[&str]) {
    let mut args = vec!["train", "--out", s(out), "--steps", steps];
    if !extra.contains(&"--dataset") {
        args.extend(["--dataset", "ring8"]);
    }
    args.extend(RING8);
    args.extend(extra);
    ok(&args);
}

#[test]
fn a_checkpoint_from_another_run_is_refused_with_the_folder_untouched() {
    let (a, b) = (tmp("mine"), tmp("theirs"));
    train_ring8(&a, "5", &[]);
    train_ring8(&b, "5", &["--dataset", "grid25"]);
    std::fs::copy(
        b.join("checkpoint.safetensors"),
        a.join("checkpoint.safetensors"),
    )
    .unwrap();
    let err = refused_untouched(
        &["train", "--resume", s(&a), "--steps", "10"],
        "the checkpoint belongs to another run (dataset = \"grid25\", but this folder's \
         config.toml has \"ring8\")",
        &a,
    );
    assert!(err.contains(s(&a)), "{err}");
    // Another preset on the same data: still another run.
    let c = tmp("other-preset");
    train_ring8(&c, "5", &["--lr-d", "5e-4"]);
    std::fs::copy(
        c.join("checkpoint.safetensors"),
        a.join("checkpoint.safetensors"),
    )
    .unwrap();
    refused_untouched(
        &["train", "--resume", s(&a), "--steps", "10"],
        "lr-d = 0.0005",
        &a,
    );
}

#[test]
fn steps_that_do_not_go_forward_are_refused_with_the_folder_untouched() {
    let run = tmp("steps");
    train_ring8(&run, "5", &[]);
    refused_untouched(
        &["train", "--resume", s(&run), "--steps", "3"],
        "--steps 3: the run in",
        &run,
    );
    // A finished run resumed as it is has nothing left to do.
    refused_untouched(
        &["train", "--resume", s(&run)],
        "already at step 5; pass --steps above 5",
        &run,
    );
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("steps = 5"), "{config}");
}

/// A training run of ring8 that would go on for a long time, its output discarded.
fn long_run(out: &Path, checkpoint_every: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_duel"))
        .args([
            "train",
            "--out",
            s(out),
            "--steps",
            "100000000",
            "--dataset",
            "ring8",
        ])
        .args(RING8)
        .args(["--checkpoint-every", checkpoint_every])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_second_trainer_of_a_run_is_refused_naming_the_first_and_kill_9_frees_it() {
    let run = tmp("locked");
    let mut first = long_run(&run, "10");
    wait_for(&run.join("checkpoint.safetensors"));
    let holder = format!("process {} is training this run", first.id());
    for args in [
        vec!["train", "--resume", s(&run), "--steps", "200000000"],
        vec!["train", "--out", s(&run), "--force", "--dataset", "ring8"],
    ] {
        let out = common::cli::duel(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(&holder), "{err}");
    }
    first.kill().unwrap(); // SIGKILL: the OS drops the lock with the process.
    first.wait().unwrap();
    let at = Checkpoint::load(&run.join("checkpoint.safetensors"))
        .unwrap()
        .state
        .iteration;
    let target = (at + 3).to_string();
    ok(&["train", "--resume", s(&run), "--steps", &target, "--quiet"]);
}

/// Kills a long run with SIGKILL once `landed` says the moment is right (or after `max_wait`),
/// then resumes it to `extra` steps past its checkpoint, and checks the result is bit-identical
/// to a run trained to the same step without a break. Returns whether `landed` was seen.
fn kill_resume_compare(name: &str, checkpoint_every: &str, landed: &dyn Fn(&Path) -> bool) -> bool {
    let run = tmp(name);
    let mut child = long_run(&run, checkpoint_every);
    wait_for(&run.join("checkpoint.safetensors"));
    let start = Instant::now();
    let mut seen = false;
    while start.elapsed() < Duration::from_secs(5) {
        if landed(&run) {
            seen = true;
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    seen &= landed(&run);
    let ck = Checkpoint::load(&run.join("checkpoint.safetensors"))
        .expect("the checkpoint is whole after kill -9");
    let target = (ck.state.iteration + 7).to_string();
    ok(&["train", "--resume", s(&run), "--steps", &target, "--quiet"]);
    let whole = tmp(&format!("{name}-whole"));
    train_ring8(&whole, &target, &["--checkpoint-every", checkpoint_every]);
    let resumed = Checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    let unbroken = Checkpoint::load(&whole.join("checkpoint.safetensors")).unwrap();
    assert_eq!(resumed.state.iteration, unbroken.state.iteration);
    assert!(
        resumed.state == unbroken.state,
        "{name}: the resumed run differs from the unbroken one"
    );
    // The metrics rows go on from the checkpoint without repeats.
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let steps: Vec<u64> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    seen
}

#[test]
fn kill_9_during_training_or_a_checkpoint_write_then_resume_is_bit_identical() {
    // During training: between checkpoints, after a few have been written.
    let training = |run: &Path| {
        Checkpoint::load(&run.join("checkpoint.safetensors"))
            .is_ok_and(|c| c.state.iteration >= 30 && !run.join("checkpoint.tmp").exists())
    };
    assert!(kill_resume_compare("kill-training", "10", &training));
    // During a checkpoint write: a checkpoint every step, killed while its temporary file is
    // there (written, not yet renamed). Tried a few times, since the moment is short.
    let writing = |run: &Path| run.join("checkpoint.tmp").exists();
    let caught = (0..10).any(|i| kill_resume_compare(&format!("kill-write-{i}"), "1", &writing));
    assert!(
        caught,
        "no kill landed during a checkpoint write in 10 tries"
    );
}

//! The `duel` command as a user runs it: training runs, their files, sampling, resuming, and
//! clear errors for bad input.

use duel::checkpoint::Checkpoint;
use duel::output::read_npy_f32;
use duel::output::tensorboard::{Event, ValueData, read_events};
mod common;

use common::cli::{fails, ok, s, tmp};

use std::process::Command;

#[test]
fn ring8_run_writes_everything_and_samples() {
    let run = tmp("ring8");
    ok(&[
        "train",
        "--dataset",
        "ring8",
        "--steps",
        "30",
        "--batch",
        "32",
        "--log-every",
        "10",
        "--sample-every",
        "10",
        "--checkpoint-every",
        "10",
        "--backend",
        "cpu",
        "--out",
        s(&run),
    ]);
    for f in [
        "config.toml",
        "metrics.csv",
        "losses.png",
        "checkpoint.safetensors",
        "samples/latest.png",
        "samples/step_00000030.png",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        4,
        "header and 3 log rows:\n{metrics}"
    );
    // Mode coverage is logged as training goes, so collapse shows as it happens.
    let header = metrics.lines().next().unwrap();
    assert!(
        header.ends_with(",modes,hq_fraction,kl_uniform"),
        "{header}"
    );
    let last: Vec<&str> = metrics.lines().last().unwrap().split(',').collect();
    let modes: usize = last[7].parse().unwrap();
    assert!(modes <= 8);
    // TensorBoard: one events file, each metrics row as scalars, each sample grid as an image.
    let events = tensorboard_events(&run);
    assert_eq!(events.len(), 1, "one events file");
    let events = &events[0];
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    let scalar_steps: Vec<i64> = events
        .iter()
        .filter(|e| e.values.iter().any(|v| v.tag == "losses/d_loss"))
        .map(|e| e.step)
        .collect();
    assert_eq!(scalar_steps, [10, 20, 30]);
    assert!(
        events
            .iter()
            .flat_map(|e| &e.values)
            .any(|v| v.tag == "metrics/modes")
    );
    let grid = std::fs::read(run.join("samples/latest.png")).unwrap();
    let images: Vec<(i64, &Vec<u8>)> = events
        .iter()
        .flat_map(|e| e.values.iter().map(move |v| (e.step, &v.data)))
        .filter_map(|(step, d)| match d {
            ValueData::Image { encoded, .. } => Some((step, encoded)),
            _ => None,
        })
        .collect();
    assert_eq!(images.len(), 3);
    assert_eq!(images[2], (30, &grid), "the last image is the latest grid");
    let npy = run.join("points.npy");
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--count",
        "100",
        "--out",
        s(&npy),
        "--backend",
        "cpu",
    ]);
    let (shape, v) = read_npy_f32(&npy).unwrap();
    assert_eq!(shape, vec![100, 2]);
    assert!(v.iter().all(|x| x.is_finite()));
    // The already-written run is never overwritten without --force.
    let err = fails(&[
        "train",
        "--dataset",
        "ring8",
        "--steps",
        "5",
        "--out",
        s(&run),
    ]);
    assert!(err.contains("already holds a run"), "{err}");
    ok(&[
        "train",
        "--dataset",
        "ring8",
        "--steps",
        "5",
        "--backend",
        "cpu",
        "--force",
        "--quiet",
        "--out",
        s(&run),
    ]);
}

#[test]
fn mnist_on_the_gpu_then_sampled_as_npy_and_png() {
    let run = tmp("mnist-gpu");
    ok(&[
        "train",
        "--steps",
        "4",
        "--batch",
        "16",
        "--log-every",
        "2",
        "--backend",
        "gpu",
        "--out",
        s(&run),
    ]);
    let npy = run.join("digits.npy");
    ok(&[
        "sample",
        "--checkpoint",
        s(&run.join("checkpoint.safetensors")),
        "--count",
        "10",
        "--out",
        s(&npy),
        "--backend",
        "gpu",
    ]);
    let (shape, v) = read_npy_f32(&npy).unwrap();
    assert_eq!(shape, vec![10, 1, 28, 28]);
    assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
    let png = run.join("grid.png");
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--count",
        "9",
        "--out",
        s(&png),
        "--backend",
        "cpu",
    ]);
    let img = image::open(&png).unwrap();
    assert!(img.width() > 3 * 28 && img.height() > 3 * 28);
    // NumPy itself loads the file with the documented shape and range.
    let py = Command::new("python3")
        .args([
            "-c",
            "import sys, numpy as np; a = np.load(sys.argv[1]); \
             assert a.dtype == np.float32 and a.shape == (10, 1, 28, 28), (a.dtype, a.shape); \
             assert 0 <= a.min() and a.max() <= 1; print('numpy ok')",
            s(&npy),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        py.status.success(),
        "NumPy could not load the .npy (install numpy: pip install numpy): {}",
        String::from_utf8_lossy(&py.stderr)
    );

    // Latent walks: a grid of 8 rows × 5 steps, and a looping GIF beside it.
    let walk = run.join("walk.png");
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--interpolate",
        "5",
        "--out",
        s(&walk),
        "--backend",
        "cpu",
    ]);
    let img = image::open(&walk).unwrap();
    // 28-pixel tiles at 4×, 2-pixel gutters.
    assert_eq!((img.width(), img.height()), (5 * 114 + 2, 8 * 114 + 2));
    let gif = std::fs::File::open(run.join("walk.gif")).expect("the GIF is written beside it");
    let frames = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(gif)).unwrap();
    let frames = image::AnimationDecoder::into_frames(frames)
        .collect_frames()
        .unwrap();
    assert_eq!(frames.len(), 48, "4 keyframes × 12 frames between");
    assert!(frames[0].buffer() != frames[6].buffer(), "the walk moves");
    let err = fails(&[
        "sample",
        "--run",
        s(&run),
        "--interpolate",
        "1",
        "--out",
        s(&walk),
    ]);
    assert!(err.contains("2 to 64"), "{err}");
}

#[test]
fn resumed_cpu_run_is_bit_identical_to_an_uninterrupted_one() {
    let (a, b) = (tmp("whole"), tmp("halves"));
    let common = [
        "--dataset",
        "ring8",
        "--batch",
        "16",
        "--log-every",
        "5",
        "--backend",
        "cpu",
        "--quiet",
    ];
    ok(&[&["train", "--steps", "20", "--out", s(&a)], &common[..]].concat());
    ok(&[&["train", "--steps", "10", "--out", s(&b)], &common[..]].concat());
    ok(&["train", "--resume", s(&b), "--steps", "20", "--quiet"]);
    let ca = Checkpoint::load(&a.join("checkpoint.safetensors")).unwrap();
    let cb = Checkpoint::load(&b.join("checkpoint.safetensors")).unwrap();
    assert_eq!(cb.state.iteration, 20);
    assert_eq!(
        ca.state, cb.state,
        "resumed run differs from the uninterrupted one"
    );
    let err = fails(&["train", "--resume", s(&b), "--batch", "8"]);
    assert!(err.contains("--batch cannot change when resuming"), "{err}");
    // The resumed run added a second TensorBoard file holding the steps after the checkpoint.
    let steps = |run: &std::path::Path| -> Vec<Vec<i64>> {
        let files = tensorboard_events(run);
        let scalar_steps = |f: &Vec<Event>| {
            let scalars = f
                .iter()
                .filter(|e| e.values.iter().any(|v| v.tag == "losses/g_loss"));
            scalars.map(|e| e.step).collect()
        };
        files.iter().map(scalar_steps).collect()
    };
    assert_eq!(steps(&a), [vec![5, 10, 15, 20]]);
    assert_eq!(steps(&b), [vec![5, 10], vec![15, 20]]);
}

/// The events of each TensorBoard file in `run` (their CRCs checked), oldest file first.
fn tensorboard_events(run: &std::path::Path) -> Vec<Vec<Event>> {
    let mut files: Vec<Vec<Event>> = std::fs::read_dir(run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("tfevents"))
        .map(|p| read_events(&p).unwrap())
        .collect();
    files.sort_by(|a, b| a[0].wall_time.total_cmp(&b[0].wall_time));
    files
}

#[test]
fn bad_options_and_files_give_one_clear_line() {
    let out = tmp("bad").join("run");
    let o = s(&out);
    let cases: &[(&[&str], &str)] = &[
        (&["train", "--preset", "huge", "--out", o], "huge"),
        (
            &["train", "--batch", "0", "--out", o],
            "--batch must be at least 1",
        ),
        (&["train", "--lr-d=-1", "--out", o], "--lr-d"),
        (
            &["train", "--steps", "0", "--out", o],
            "--steps must be at least 1",
        ),
        (
            &["train", "--dataset", "/no/such/data", "--out", o],
            "neither a built-in set",
        ),
        (
            &[
                "train",
                "--dataset",
                "ring8",
                "--batch",
                "200000",
                "--out",
                o,
            ],
            "--batch",
        ),
        (
            &[
                "train",
                "--backend",
                "gpu",
                "--adapter",
                "no-such-gpu",
                "--steps",
                "1",
                "--out",
                o,
            ],
            "matches no adapter",
        ),
        (
            &["sample", "--run", "/no/such/run", "--out", "x.png"],
            "cannot read the checkpoint",
        ),
    ];
    for (args, want) in cases {
        let err = fails(args);
        assert!(
            err.contains(want),
            "duel {args:?}: expected {want:?} in: {err}"
        );
    }
    // A corrupt checkpoint is named, and left as it was.
    let dir = tmp("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    let ck = dir.join("checkpoint.safetensors");
    std::fs::write(&ck, b"not a checkpoint").unwrap();
    let err = fails(&["sample", "--run", s(&dir), "--out", s(&dir.join("x.png"))]);
    assert!(err.contains("checkpoint.safetensors"), "{err}");
    assert_eq!(std::fs::read(&ck).unwrap(), b"not a checkpoint");
    // A config file with an unknown key names the file and the key.
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, "batch = 16\nlearning-rate = 3\n").unwrap();
    let err = fails(&["train", "--config", s(&cfg), "--out", o]);
    assert!(
        err.contains("run.toml") && err.contains("learning-rate"),
        "{err}"
    );
}

#[test]
fn help_lists_every_option_with_its_default() {
    let help = ok(&["train", "--help"]);
    for opt in [
        "--preset",
        "--dataset",
        "--k",
        "--batch",
        "--g-loss",
        "--opt-g",
        "--lr-d",
        "--noise",
        "--noise-dim",
        "--steps",
        "--seed",
        "--backend",
        "--adapter",
        "--config",
        "--resume",
        "--out",
    ] {
        assert!(help.contains(opt), "train --help lacks {opt}");
    }
    assert!(help.contains("default"));
    let help = ok(&["sample", "--help"]);
    assert!(help.contains("--count") && help.contains("--checkpoint"));
}

/// `duel devices` names the CPU path's vector unit; `DUEL_CPU_SIMD` takes a lower one, and a
/// value it cannot use is one warning line, not a failure.
#[test]
fn devices_names_the_cpus_vector_unit_and_duel_cpu_simd_lowers_it() {
    let run = |simd: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_duel"));
        cmd.arg("devices").env_remove("DUEL_CPU_SIMD");
        if let Some(v) = simd {
            cmd.env("DUEL_CPU_SIMD", v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let cpu = text
            .lines()
            .find(|l| l.starts_with("cpu: "))
            .unwrap()
            .to_string();
        (cpu, String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (cpu, _) = run(None);
    let detected = cpu.split("(of ").nth(1).unwrap().split(' ').next().unwrap();
    assert!(
        cpu.contains(&format!("vector unit {detected} ")),
        "the default is the detected unit: {cpu}"
    );
    let (cpu, err) = run(Some("baseline"));
    assert!(cpu.contains("vector unit Baseline "), "{cpu}");
    assert!(!err.contains("warning"), "{err}");
    let (cpu, err) = run(Some("sse9"));
    assert!(cpu.contains(&format!("vector unit {detected} ")), "{cpu}");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("DUEL_CPU_SIMD"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].starts_with("warning: DUEL_CPU_SIMD=sse9: not auto, baseline"));
}

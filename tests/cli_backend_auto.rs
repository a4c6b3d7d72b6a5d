//! `--backend auto` by measurement: a run prints both measured rates and its choice, trains
//! exactly as a forced run of the backend it chose (the same adapter, so bit for bit), and a later
//! run of the same model uses the remembered rates instead of measuring again. A software
//! rasterizer is measured only when it is named (`DUEL_ADAPTER`, as a user names one).

mod common;

use common::cli::{s, tmp};
use duel::checkpoint::Checkpoint;
use std::path::Path;
use std::process::Command;

/// Trains the default ring8 model for a few iterations with `backend` on `adapter` (`DUEL_ADAPTER`;
/// empty: none named), remembering measurements in `cache`; returns the output.
fn train(out: &Path, cache: &Path, backend: &str, adapter: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_duel"))
        .args([
            "train",
            "--dataset",
            "ring8",
            "--steps",
            "6",
            "--batch",
            "32",
        ])
        .args(["--log-every", "3", "--backend", backend, "--out", s(out)])
        .env("DUEL_CACHE_DIR", cache)
        .env("DUEL_ADAPTER", adapter)
        .output()
        .expect("the duel binary runs");
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "duel train --backend {backend} failed:\n{text}"
    );
    text
}

/// The "backend:" line of an auto run: (cpu rate, gpu rate, chosen backend, how).
fn auto_line(text: &str) -> (f64, f64, String, String) {
    let line = text
        .lines()
        .find(|l| l.starts_with("backend: "))
        .unwrap_or_else(|| panic!("no backend line in:\n{text}"));
    let (head, tail) = line.split_once(" it/s -> ").expect("rates then the choice");
    let cpu = head
        .split("auto: cpu ")
        .nth(1)
        .expect("the cpu rate")
        .split(' ')
        .next()
        .unwrap();
    let gpu = head.rsplit(' ').next().unwrap();
    let chosen = tail.split(' ').next().unwrap();
    let how = tail[tail.find('(').expect("how it was chosen")..].to_string();
    (
        cpu.parse().unwrap(),
        gpu.parse().unwrap(),
        chosen.to_string(),
        how,
    )
}

fn assert_same_training(a: &Path, b: &Path, what: &str) {
    let load = |d: &Path| {
        Checkpoint::load(&d.join("checkpoint.safetensors"))
            .unwrap()
            .state
    };
    let (a, b) = (load(a), load(b));
    assert_eq!(a.iteration, 6);
    assert_eq!(a.iteration, b.iteration, "{what}");
    assert_eq!(a.rng, b.rng, "{what}");
    assert!(a.g.params == b.g.params, "{what}: generator weights differ");
    assert!(
        a.d.params == b.d.params,
        "{what}: discriminator weights differ"
    );
    assert!(a.g_ema == b.g_ema, "{what}: averaged generator differs");
}

#[test]
fn auto_measures_trains_as_the_forced_run_and_remembers() {
    let dir = tmp("auto");
    let cache = dir.join("cache");
    // GPU tests fail loudly without an adapter: auto must have one to measure, named so that a
    // software one is measured too.
    let adapter = common::gpu().ctx.info.name;
    let train = |out: &Path, backend: &str| train(out, &cache, backend, &adapter);

    let text = train(&dir.join("auto"), "auto");
    let (cpu, gpu, chosen, how) = auto_line(&text);
    assert!(cpu > 0.0 && gpu > 0.0, "rates {cpu} {gpu}");
    assert_eq!(chosen, if gpu > cpu { "gpu" } else { "cpu" }, "{text}");
    assert!(how.starts_with("(measured; cached in"), "{how}");
    let files: Vec<_> = std::fs::read_dir(cache.join("backend-autotune"))
        .expect("the measurement is cached")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one entry per model: {files:?}");
    train(&dir.join("forced"), &chosen);
    assert_same_training(&dir.join("auto"), &dir.join("forced"), "auto vs forced run");

    // Swap the remembered rates: the next auto run must take the other backend without measuring.
    let mut entry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let (c, g) = (entry["cpu"].clone(), entry["gpu"].clone());
    (entry["cpu"], entry["gpu"]) = (g, c);
    std::fs::write(&files[0], entry.to_string()).unwrap();
    let text = train(&dir.join("auto2"), "auto");
    let (cpu2, gpu2, chosen2, how2) = auto_line(&text);
    assert!(how2.starts_with("(remembered from"), "{text}");
    assert_eq!((cpu2, gpu2), (gpu, cpu), "{text}");
    assert_ne!(chosen2, chosen, "{text}");
    train(&dir.join("forced2"), &chosen2);
    assert_same_training(
        &dir.join("auto2"),
        &dir.join("forced2"),
        "remembered auto vs forced run",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn auto_times_a_software_adapter_only_when_it_is_named() {
    let dir = tmp("auto-software");
    let cache = dir.join("cache");
    let gpu = common::gpu();
    // No adapter named: the one a user gets.
    let text = train(&dir.join("run"), &cache, "auto", "");
    let line = text
        .lines()
        .find(|l| l.starts_with("backend: "))
        .unwrap_or_else(|| panic!("no backend line in:\n{text}"));
    if gpu.ctx.is_software() {
        assert!(
            line.starts_with("backend: cpu, auto: the only adapter, ")
                && line.contains("software rasterizer")
                && line.contains("not timed"),
            "{line}"
        );
        assert!(
            !cache.join("backend-autotune").exists(),
            "nothing was measured, so nothing is remembered"
        );
    } else {
        let (cpu, gpu, ..) = auto_line(&text);
        assert!(
            cpu > 0.0 && gpu > 0.0,
            "a hardware adapter is measured: {line}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

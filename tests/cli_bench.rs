//! `duel bench` runs and prints its rows: a smoke test of the measuring instrument, not a
//! timed assertion (speed is reported by the benchmarks, never asserted).

mod common;

use common::cli::{fails, ok};

#[test]
fn bench_kernels_prints_gpu_and_cpu_rows_as_json() {
    let out = ok(&[
        "bench",
        "kernels",
        "--filter",
        "adam",
        "--min-ms",
        "1",
        "--repeats",
        "2",
        "--json",
    ]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("each JSON line parses"))
        .collect();
    assert!(!rows.is_empty(), "no JSON rows in:\n{out}");
    let text = out.to_lowercase();
    assert!(text.contains("adam"), "{out}");
}

#[test]
fn bench_train_reports_iterations_per_second() {
    let out = ok(&[
        "bench",
        "train",
        "--preset",
        "mlp",
        "--batch",
        "8",
        "--repeats",
        "1",
        "--warmup",
        "1",
        "--window-secs",
        "0.2",
        "--backend",
        "both",
        "--json",
    ]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("each JSON line parses"))
        .collect();
    assert_eq!(rows.len(), 2, "one row per backend:\n{out}");
    for r in &rows {
        assert_eq!(r["preset"], "mlp", "{r}");
        assert!(r["it_per_s"]["median"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(
            r["bytes_read_per_iter"].as_f64(),
            Some(0.0),
            "an iteration reads nothing: {r}"
        );
    }
    let gpu = rows
        .iter()
        .find(|r| r["backend"] == "gpu")
        .expect("a GPU row");
    assert_eq!(
        gpu["submits_per_iter"].as_f64(),
        Some(1.0),
        "one submit per iteration: {gpu}"
    );
    let err = fails(&["bench", "train", "--preset", "huge"]);
    assert!(err.contains("huge"), "{err}");
}

/// The matmul kernel per class of product is timed once per adapter and remembered: a second
/// run reads it from the cache file, and DUEL_MATMUL overrides both.
#[test]
fn the_matmul_choice_is_timed_once_and_remembered() {
    let cache = common::cli::tmp("autotune-cache");
    let run = |extra: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_duel"));
        cmd.args([
            "bench",
            "train",
            "--preset",
            "mlp",
            "--batch",
            "8",
            "--repeats",
            "1",
            "--warmup",
            "1",
            "--window-secs",
            "0.05",
            "--backend",
            "gpu",
            "--json",
        ])
        .env("DUEL_CACHE_DIR", &cache)
        .env_remove("DUEL_MATMUL");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let row: serde_json::Value = text
            .lines()
            .find(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .expect("a JSON row");
        row["matmul"].as_str().unwrap().to_string()
    };
    let first = run(&[]);
    let second = run(&[]);
    if first.contains("no subgroups") {
        // Only one kernel can run on this adapter: nothing to time or remember.
        assert!(second.contains("no subgroups"), "{second}");
        return;
    }
    assert!(first.contains("(timed)"), "{first}");
    assert!(second.contains("(cache)"), "{second}");
    assert!(cache.join("matmul-autotune.json").is_file());
    let forced = run(&[("DUEL_MATMUL", "tiled")]);
    assert!(
        forced.contains("(DUEL_MATMUL)") && !forced.contains("subgroup"),
        "{forced}"
    );
}

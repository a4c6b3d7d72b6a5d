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

#[test]
fn bench_train_knows_the_resnet_presets_on_both_backends() {
    let out = ok(&[
        "bench",
        "train",
        "--preset",
        "sngan-resnet32,sagan32",
        "--width",
        "2",
        "--batch",
        "4",
        "--repeats",
        "1",
        "--warmup",
        "1",
        "--window-secs",
        "0.05",
        "--backend",
        "both",
        "--json",
    ]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("each JSON line parses"))
        .collect();
    assert_eq!(rows.len(), 4, "two presets on two backends:\n{out}");
    let gflop = |preset: &str, backend: &str| {
        let r = rows
            .iter()
            .find(|r| r["preset"] == preset && r["backend"] == backend)
            .unwrap_or_else(|| panic!("no {preset} {backend} row:\n{out}"));
        assert!(r["it_per_s"]["median"].as_f64().unwrap() > 0.0, "{r}");
        r["min_gflop_per_iter"].as_f64().unwrap()
    };
    // An iteration's FLOPs count its critic updates: sngan-resnet32's five, sagan32's one.
    use duel::bench::train::{config, min_flops_per_iteration};
    for (preset, k) in [("sngan-resnet32", 5), ("sagan32", 1)] {
        let cfg = config(preset, 4, Some(2)).unwrap();
        assert_eq!(cfg.k, k);
        let want = min_flops_per_iteration(&cfg).unwrap() / 1e9;
        assert!(want > 0.0);
        for backend in ["gpu", "cpu"] {
            let got = gflop(preset, backend);
            assert!(
                (got - want).abs() <= 1e-9 * want,
                "{preset} {backend}: {got} vs {want}"
            );
        }
    }
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

/// Runs `duel bench train` on dcgan at batch 4 with a profile, as JSON, with the cache in
/// `cache`; returns the train row and the profile rows.
fn dcgan_profile(
    cache: &std::path::Path,
    backend: &str,
    env: &[(&str, &str)],
) -> (serde_json::Value, Vec<serde_json::Value>) {
    bench_profile(cache, &["--preset", "dcgan", "--batch", "4"], backend, env)
}

/// Runs `duel bench train` with `model` (preset and size options) and a profile, as JSON, with
/// the cache in `cache`; returns the train row and the profile rows.
fn bench_profile(
    cache: &std::path::Path,
    model: &[&str],
    backend: &str,
    env: &[(&str, &str)],
) -> (serde_json::Value, Vec<serde_json::Value>) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_duel"));
    cmd.args(["bench", "train"])
        .args(model)
        .args([
            "--repeats",
            "1",
            "--warmup",
            "1",
            "--window-secs",
            "0.01",
            "--backend",
            backend,
            "--profile",
            "--json",
        ])
        .env("DUEL_CACHE_DIR", cache)
        .env_remove("DUEL_CONV")
        .env_remove("DUEL_CONV_TILE")
        .env_remove("DUEL_CONV_TILE_NARROW")
        .env_remove("DUEL_BMM");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let train = rows
        .iter()
        .find(|r| r["bench"] == "train")
        .expect("a train row")
        .clone();
    let profile = rows
        .into_iter()
        .filter(|r| r["bench"] == "train_profile")
        .collect();
    (train, profile)
}

/// The convolution dispatches of a profile: (kernel, shape).
fn conv_dispatches(profile: &[serde_json::Value]) -> Vec<(String, String)> {
    profile
        .iter()
        .map(|r| {
            (
                r["kernel"].as_str().unwrap().to_string(),
                r["dims"].to_string(),
            )
        })
        .filter(|(k, _)| k.starts_with("conv2d"))
        .collect()
}

/// The convolution kernel per class is timed once per adapter and remembered in the cache file
/// beside the matmul's; a second run reads it, and what the cache says is what runs (checked on
/// the profile's dispatches, with the cache edited to each variant the adapter can run: the
/// subgroup kernels where it has subgroups of 8 or more, as lavapipe has); DUEL_CONV forces
/// each.
#[test]
fn the_conv_choice_is_timed_once_remembered_and_used() {
    let selector = duel::gpu::context::selector_from_env(None);
    let subgroups = duel::gpu::GpuContext::new(selector.as_deref())
        .expect("a GPU adapter (install Mesa's lavapipe: mesa-vulkan-drivers)")
        .subgroups;
    let mut variants = vec!["tiled", "register"];
    if subgroups {
        variants.push("subgroup");
    }
    // The kernel a dispatch of each variant runs ends in `_{suffix}`; tiled ones have neither.
    let ran = |k: &str| {
        ["register", "subgroup"]
            .into_iter()
            .find(|v| k.ends_with(&format!("_{v}")))
            .unwrap_or("tiled")
    };
    let cache = common::cli::tmp("conv-autotune-cache");
    let (first, _) = dcgan_profile(&cache, "gpu", &[]);
    assert!(
        first["conv"].as_str().unwrap().contains("(timed)"),
        "{first}"
    );
    let file = cache.join("matmul-autotune.json");
    let text = std::fs::read_to_string(&file).expect("the cache file is written");
    let mut saved: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).unwrap();
    let conv_key = saved
        .keys()
        .find(|k| k.starts_with("conv |"))
        .expect("a convolution entry beside the matmul's")
        .clone();
    for &variant in &variants {
        // Remember `variant` for every class, as if timing had chosen it.
        let classes = saved[&conv_key].as_object_mut().unwrap();
        assert_eq!(classes.len(), 6, "{classes:?}");
        for v in classes.values_mut() {
            *v = variant.into();
        }
        std::fs::write(&file, serde_json::to_string(&saved).unwrap()).unwrap();
        let (row, profile) = dcgan_profile(&cache, "gpu", &[]);
        let plan = row["conv"].as_str().unwrap();
        assert!(plan.contains("(cache)"), "{plan}");
        for v in &variants {
            assert_eq!(plan.contains(&format!(" {v}")), *v == variant, "{plan}");
        }
        let convs = conv_dispatches(&profile);
        assert!(convs.len() >= 10, "{convs:?}");
        for (k, shape) in &convs {
            assert_eq!(ran(k), variant, "{variant} remembered, {k} ran on {shape}");
        }
        // DUEL_CONV overrides the cache.
        let other = if variant == "tiled" {
            "register"
        } else {
            "tiled"
        };
        let (forced, profile) = dcgan_profile(&cache, "gpu", &[("DUEL_CONV", other)]);
        assert!(forced["conv"].as_str().unwrap().contains("(DUEL_CONV)"));
        for (k, shape) in conv_dispatches(&profile) {
            assert_eq!(ran(&k), other, "{k} {shape}");
        }
    }
}

/// The batched-matmul kernel per class (short or long reductions) is timed once per adapter and
/// remembered beside the matmul's and the convolutions'; what the cache says is what the
/// attention layers of sagan32 run (checked on the profile's dispatches, with the cache edited
/// to each variant); DUEL_BMM forces each.
#[test]
fn the_batched_matmul_choice_is_timed_once_remembered_and_used() {
    let cache = common::cli::tmp("bmm-autotune-cache");
    let sagan = ["--preset", "sagan32", "--width", "8", "--batch", "2"];
    let bmm_dispatches = |profile: &[serde_json::Value]| -> Vec<String> {
        let ks: Vec<String> = profile
            .iter()
            .map(|r| r["kernel"].as_str().unwrap().to_string())
            .filter(|k| k.starts_with("batched_matmul"))
            .collect();
        assert!(ks.len() >= 10, "{ks:?}");
        ks
    };
    let (first, _) = bench_profile(&cache, &sagan, "gpu", &[]);
    assert!(
        first["bmm"].as_str().unwrap().contains("(timed)"),
        "{first}"
    );
    let file = cache.join("matmul-autotune.json");
    let text = std::fs::read_to_string(&file).expect("the cache file is written");
    let mut saved: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).unwrap();
    let key = saved
        .keys()
        .find(|k| k.starts_with("bmm |"))
        .expect("a batched-matmul entry beside the matmul's")
        .clone();
    for (variant, other) in [("tiled", "register"), ("register", "tiled")] {
        let classes = saved[&key].as_object_mut().unwrap();
        assert_eq!(classes.len(), 2, "{classes:?}");
        for v in classes.values_mut() {
            *v = variant.into();
        }
        std::fs::write(&file, serde_json::to_string(&saved).unwrap()).unwrap();
        let (row, profile) = bench_profile(&cache, &sagan, "gpu", &[]);
        let plan = row["bmm"].as_str().unwrap();
        assert!(plan.contains("(cache)") && !plan.contains(other), "{plan}");
        for k in bmm_dispatches(&profile) {
            assert_eq!(
                k.ends_with("_register"),
                variant == "register",
                "{variant}: {k}"
            );
        }
        let (forced, profile) = bench_profile(&cache, &sagan, "gpu", &[("DUEL_BMM", other)]);
        assert!(forced["bmm"].as_str().unwrap().contains("(DUEL_BMM)"));
        for k in bmm_dispatches(&profile) {
            assert_eq!(
                k.ends_with("_register"),
                other == "register",
                "DUEL_BMM={other}: {k}"
            );
        }
    }
}

/// `--profile` shows per dispatch its shape, workgroups, FLOPs and bytes on the GPU, and the
/// CPU path's kernel calls with their FLOPs and bytes.
#[test]
fn the_profile_shows_workgroups_flops_and_bytes_on_both_backends() {
    let cache = common::cli::tmp("profile-cache");
    for backend in ["gpu", "cpu"] {
        let (_, profile) = dcgan_profile(&cache, backend, &[("DUEL_CONV", "register")]);
        assert!(!profile.is_empty(), "{backend}: no profile rows");
        let conv = profile
            .iter()
            .find(|r| {
                r["kernel"].as_str().unwrap().starts_with("conv2d_forward")
                    && r["dims"].as_str().unwrap().contains("n=8 64→128")
            })
            .unwrap_or_else(|| panic!("{backend}: no 64→128 convolution in {profile:?}"));
        // dcgan's D conv2 at batch 4 (D sees 8 rows): 2 · 8 · 128 · 7·7 · 64·4·4 FLOPs.
        assert_eq!(
            conv["flops"].as_f64(),
            Some(2.0 * 8.0 * 128.0 * 49.0 * 1024.0)
        );
        assert!(conv["bytes"].as_f64().unwrap() > 0.0);
        assert!(conv["us"].as_f64().unwrap() > 0.0);
        let total = conv["workgroups_total"].as_u64().unwrap();
        if backend == "gpu" {
            let wg: Vec<u64> = conv["workgroups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert_eq!(total, wg.iter().product::<u64>());
            assert!(total >= 1, "{conv}");
        } else {
            assert_eq!(total, 0, "the CPU launches no workgroups: {conv}");
        }
    }
}

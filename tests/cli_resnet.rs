//! The ResNet presets from the command line on CIFAR-10 files a test writes: `sngan-resnet32`
//! resumes bit-identically and records the papers' settings, both ResNet presets train and
//! sample conditionally (conditional batch norm in G's blocks, a projection head in D), and a
//! checkpoint of the first `sagan32` (today's `sagan32-dcgan` under the old name) still samples
//! and resumes, read as `sagan32-dcgan`.

mod common;

use common::cli::{cifar_folder, ok, s, tmp};
use duel::checkpoint::Checkpoint;
use duel::config::{Preset, TrainConfig};
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::Path;

/// `duel train` on `data` at width 2 and batch 4 on the CPU, plus `extra`.
fn train(data: &str, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--dataset",
        data,
        "--batch",
        "4",
        "--width",
        "2",
        "--backend",
        "cpu",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

fn checkpoint(run: &Path) -> Checkpoint {
    Checkpoint::load(&run.join(duel::checkpoint::FILE_NAME)).unwrap()
}

#[test]
fn sngan_resnet32_records_the_papers_settings_and_resumes_bit_identically() {
    let folder = cifar_folder("data");
    let data = format!("cifar10:{}", s(&folder));
    let (a, b) = (tmp("whole"), tmp("halves"));
    let log = train(&data, &a, &["--preset", "sngan-resnet32", "--steps", "4"]);
    assert!(log.contains("SumPool(4×8×8 → 4)"), "{log}");
    let config = std::fs::read_to_string(a.join("config.toml")).unwrap();
    for setting in [
        "preset = \"sngan-resnet32\"",
        "k = 5",
        "loss = \"hinge\"",
        "sn = \"d\"",
        "lr-g = 0.0002",
        "lr-d = 0.0002",
        "beta1 = 0.0",
        "beta2 = 0.9",
        "noise-dim = 128",
        "augment = \"none\"",
    ] {
        assert!(config.contains(setting), "{setting} not in {config}");
    }
    train(
        &data,
        &b,
        &["--preset", "sngan-resnet32", "--steps", "2", "--quiet"],
    );
    ok(&["train", "--resume", s(&b), "--steps", "4", "--quiet"]);
    let (ca, cb) = (checkpoint(&a), checkpoint(&b));
    assert_eq!(cb.state.iteration, 4);
    assert!(
        ca.state == cb.state,
        "the resumed sngan-resnet32 run differs from the uninterrupted one"
    );
    // Five critic updates per generator update.
    assert_eq!((ca.state.d.steps, ca.state.g.steps), (20, 4));
}

#[test]
fn both_resnet_presets_train_and_sample_conditionally() {
    let folder = cifar_folder("data");
    let data = format!("cifar10:{}", s(&folder));
    for preset in ["sngan-resnet32", "sagan32"] {
        let run = tmp(preset);
        let log = train(
            &data,
            &run,
            &["--preset", preset, "--conditional", "--steps", "1"],
        );
        assert!(log.contains("ConditionalBatchNorm"), "{log}");
        assert!(log.contains("Projection(4 → 1, 10 classes"), "{log}");
        let grid = run.join("trucks.png");
        ok(&[
            "sample",
            "--run",
            s(&run),
            "--class",
            "truck",
            "--count",
            "4",
            "--backend",
            "cpu",
            "--out",
            s(&grid),
        ]);
        assert!(grid.exists(), "{preset}: no sample grid");
    }
}

/// Rewrites a run of `sagan32-dcgan` as the first `sagan32` left it: the same tensors, its
/// config (in config.toml and the checkpoint, with the checkpoint's fingerprint) naming the
/// preset `sagan32`.
fn as_the_first_sagan32(run: &Path) {
    let rename = |text: &str| {
        assert!(text.contains("preset = \"sagan32-dcgan\""), "{text}");
        text.replace("preset = \"sagan32-dcgan\"", "preset = \"sagan32\"")
    };
    let config = run.join("config.toml");
    let text = rename(&std::fs::read_to_string(&config).unwrap());
    std::fs::write(&config, text).unwrap();
    let path = run.join(duel::checkpoint::FILE_NAME);
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta: HashMap<String, String> = header.metadata().clone().unwrap();
    let text = rename(&meta["config"]);
    let cfg = TrainConfig::from_toml(&text, "rewritten").unwrap();
    let fingerprint = duel::run_dir::fingerprint(&cfg, 3 * 32 * 32, Some((3, 32, 32)));
    meta.insert("config".into(), text);
    meta.insert("fingerprint".into(), fingerprint);
    let data = safetensors::serialize(st.tensors(), Some(meta)).unwrap();
    std::fs::write(&path, data).unwrap();
}

#[test]
fn a_checkpoint_of_the_first_sagan32_samples_and_resumes_as_sagan32_dcgan() {
    let folder = cifar_folder("data");
    let data = format!("cifar10:{}", s(&folder));
    let run = tmp("first-sagan32");
    train(
        &data,
        &run,
        &["--preset", "sagan32-dcgan", "--steps", "2", "--quiet"],
    );
    let before = checkpoint(&run);
    as_the_first_sagan32(&run);
    let old = checkpoint(&run);
    assert_eq!(old.config.preset, Preset::Sagan32Dcgan);
    assert!(old.state == before.state, "the tensors read differently");
    let grid = run.join("grid.png");
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--count",
        "4",
        "--backend",
        "cpu",
        "--out",
        s(&grid),
    ]);
    assert!(grid.exists());
    ok(&["train", "--resume", s(&run), "--steps", "3", "--quiet"]);
    let resumed = checkpoint(&run);
    assert_eq!(resumed.state.iteration, 3);
    assert_eq!(resumed.config.preset, Preset::Sagan32Dcgan);
    // The preset's new meaning is not mistaken for the old one: a run of today's sagan32
    // loads as sagan32.
    let new = tmp("new-sagan32");
    train(
        &data,
        &new,
        &["--preset", "sagan32", "--steps", "1", "--quiet"],
    );
    assert_eq!(checkpoint(&new).config.preset, Preset::Sagan32);
}

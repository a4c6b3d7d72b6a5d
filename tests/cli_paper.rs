//! `duel train --preset paper` as a user runs it: the recipe of the paper's released
//! configuration in config.toml, a bit-identical resume in the middle of its schedules, `--limit`,
//! and one-line refusals of options that cannot work.

mod common;

use common::cli::{fails, ok, s, tmp};
use duel::checkpoint::Checkpoint;
use duel::config::{Preset, TrainConfig};

/// The paper preset on 300 of the embedded digits (an epoch is 6 updates at batch 50), with the
/// schedules compressed so a dozen updates cross the momentum ramp and reach the lr floor.
const SMALL_PAPER: [&str; 16] = [
    "--preset",
    "paper",
    "--limit",
    "300",
    "--batch",
    "50",
    "--momentum-saturate",
    "3",
    "--lr-decay",
    "1.1",
    "--lr-min",
    "0.04",
    "--log-every",
    "3",
    "--backend",
    "cpu",
];

#[test]
fn paper_run_resumed_mid_schedule_is_bit_identical() {
    let (a, b) = (tmp("paper-whole"), tmp("paper-halves"));
    ok(&[
        &["train", "--steps", "14", "--quiet", "--out", s(&a)],
        &SMALL_PAPER[..],
    ]
    .concat());
    let log = ok(&[&["train", "--steps", "7", "--out", s(&b)], &SMALL_PAPER[..]].concat());
    assert!(
        log.contains("300 images"),
        "--limit 300 trains on 300: {log}"
    );
    ok(&["train", "--resume", s(&b), "--steps", "14", "--quiet"]);
    let ca = Checkpoint::load(&a.join("checkpoint.safetensors")).unwrap();
    let cb = Checkpoint::load(&b.join("checkpoint.safetensors")).unwrap();
    assert_eq!(cb.state.iteration, 14);
    assert_eq!(
        ca.state, cb.state,
        "the resumed paper run differs from the uninterrupted one"
    );
    for (opt, value) in [
        ("--lr-decay", "1.2"),
        ("--momentum-final", "0.6"),
        ("--init-d", "default"),
        ("--updates", "alternating"),
        ("--limit", "100"),
    ] {
        let err = fails(&["train", "--resume", s(&b), opt, value]);
        assert!(err.contains("cannot change when resuming"), "{opt}: {err}");
    }

    // The run's config.toml holds the recipe, and repeats it.
    let text = std::fs::read_to_string(a.join("config.toml")).unwrap();
    for line in [
        "updates = \"simultaneous\"",
        "init-g = \"uniform:0.05\"",
        "init-d = \"uniform:0.005\"",
        "g-output-bias = \"marginals\"",
        "noise = \"normal\"",
        "lr-decay = 1.1",
        "momentum-final = 0.7",
        "limit = 300",
    ] {
        assert!(text.contains(line), "config.toml lacks {line}:\n{text}");
    }
}

#[test]
fn the_paper_preset_is_the_released_configuration() {
    let cfg = TrainConfig::preset(Preset::Paper, "mnist");
    let toml = cfg.to_toml();
    for line in [
        "batch = 100",
        "k = 1",
        "opt-g = \"sgd\"",
        "opt-d = \"sgd\"",
        "lr-g = 0.1",
        "lr-d = 0.05",
        "momentum = 0.5",
        "momentum-final = 0.7",
        "momentum-start = 1",
        "momentum-saturate = 250",
        "lr-decay = 1.000004",
        "lr-min = 0.000001",
        "g-loss = \"non-saturating\"",
        "ema = 0.0",
    ] {
        assert!(
            toml.contains(line),
            "the paper preset lacks {line}:\n{toml}"
        );
    }
}

#[test]
fn configs_written_before_the_recipe_options_still_load() {
    let cfg = TrainConfig::preset(Preset::Mlp, "mnist");
    let mut table = toml::Table::try_from(&cfg).unwrap();
    for key in [
        "updates",
        "init-g",
        "init-d",
        "g-output-bias",
        "lr-decay",
        "lr-min",
        "momentum-start",
        "momentum-saturate",
    ] {
        assert!(table.remove(key).is_some(), "{key} is written");
    }
    assert!(!table.contains_key("limit") && !table.contains_key("momentum-final"));
    let old = TrainConfig::from_toml(&toml::to_string(&table).unwrap(), "old").unwrap();
    assert_eq!(old, cfg, "an old config means what it meant");
}

#[test]
fn bad_recipe_options_give_one_clear_line() {
    let out = tmp("paper-bad");
    let train = |extra: &[&str]| {
        let args = [&["train", "--out", s(&out), "--steps", "1"], extra].concat();
        fails(&args)
    };
    let cases: [(&[&str], &str); 7] = [
        (
            &["--init-g", "xavier:1"],
            "unknown initialisation \"xavier:1\"",
        ),
        (&["--init-d", "uniform:-2"], "positive finite scale"),
        (
            &["--limit", "9000"],
            "--limit 9000 exceeds the 7000 training images",
        ),
        (&["--dataset", "ring8", "--limit", "10"], "2D point set"),
        (&["--updates", "simultaneous", "--k", "2"], "--k must be 1"),
        (
            &["--momentum-final", "0.7"],
            "neither --opt-g nor --opt-d is sgd",
        ),
        (&["--lr-decay", "0.5"], "--lr-decay must be at least 1"),
    ];
    for (extra, want) in cases {
        let err = train(extra);
        let first = err.lines().next().unwrap_or_default();
        assert!(first.contains(want), "{extra:?}: {err}");
    }
    let err = train(&["--dataset", "ring8", "--g-output-bias", "marginals"]);
    assert!(err.contains("image datasets"), "{err}");
}

#[test]
fn help_lists_the_recipe_options() {
    let help = ok(&["train", "--help"]);
    for opt in [
        "--init-g",
        "--init-d",
        "--g-output-bias",
        "--lr-decay",
        "--lr-min",
        "--momentum-final",
        "--momentum-start",
        "--momentum-saturate",
        "--updates",
        "--limit",
        "uniform-sqrt3",
    ] {
        assert!(help.contains(opt), "train --help lacks {opt}");
    }
}

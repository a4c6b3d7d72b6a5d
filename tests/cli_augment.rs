//! `--augment` (DiffAugment) from the command line: it trains the DCGAN and the MLP on the
//! embedded digits, is recorded in config.toml, resumes bit-identically, leaves D's checkpoint
//! names as PyTorch numbers its modules, and refuses what it cannot do in one line.

mod common;

use common::cli::{ok, refused_in_one_line, s, tmp};
use duel::checkpoint::Checkpoint;
use safetensors::SafeTensors;

const DIGITS: [&str; 10] = [
    "--limit",
    "256",
    "--batch",
    "16",
    "--width",
    "8",
    "--backend",
    "cpu",
    "--augment",
    "color,translation,cutout",
];

#[test]
fn augmented_dcgan_resumes_exactly_and_keeps_pytorch_names() {
    let (a, b) = (tmp("whole"), tmp("halves"));
    let log = ok(&[&["train", "--steps", "6", "--out", s(&a)], &DIGITS[..]].concat());
    let base = [&DIGITS[..], &["--quiet"]].concat();
    assert!(
        log.contains("DiffAugment(color,translation,cutout)"),
        "{log}"
    );
    let config = std::fs::read_to_string(a.join("config.toml")).unwrap();
    assert!(
        config.contains("augment = \"color,translation,cutout\""),
        "{config}"
    );
    ok(&[&["train", "--steps", "3", "--out", s(&b)], &base[..]].concat());
    ok(&["train", "--resume", s(&b), "--steps", "6", "--quiet"]);
    let ca = Checkpoint::load(&a.join("checkpoint.safetensors")).unwrap();
    let cb = Checkpoint::load(&b.join("checkpoint.safetensors")).unwrap();
    assert_eq!(cb.state.iteration, 6);
    assert!(
        ca.state == cb.state,
        "the resumed augmented run differs from the uninterrupted one"
    );
    // The augmentation is a function before D, not one of its modules: D's first convolution
    // is still module 0.
    let bytes = std::fs::read(a.join("checkpoint.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let d0 = st.tensor("discriminator.0.weight").unwrap();
    assert_eq!(d0.shape(), [8, 1, 4, 4]);
}

#[test]
fn augmentation_changes_training_and_works_on_an_mlp() {
    // The same run with and without augmentation must train differently (the option reaches D).
    let (with, without) = (tmp("with"), tmp("without"));
    let mlp = ["--preset", "mlp", "--steps", "4", "--quiet"];
    ok(&[&["train", "--out", s(&with)], &DIGITS[..], &mlp[..]].concat());
    ok(&[&["train", "--out", s(&without)], &DIGITS[..8], &mlp[..]].concat());
    let a = Checkpoint::load(&with.join("checkpoint.safetensors")).unwrap();
    let b = Checkpoint::load(&without.join("checkpoint.safetensors")).unwrap();
    assert!(a.state.d.params != b.state.d.params);
    let config = std::fs::read_to_string(without.join("config.toml")).unwrap();
    assert!(config.contains("augment = \"none\""), "{config}");
}

#[test]
fn nonsense_and_point_sets_are_refused_in_one_line() {
    let out = tmp("refused").join("run");
    let o = s(&out);
    let cases: &[(&[&str], &str)] = &[
        (
            &["train", "--augment", "color,flip", "--out", o],
            "unknown augmentation \"flip\"",
        ),
        (
            &[
                "train",
                "--dataset",
                "ring8",
                "--augment",
                "color",
                "--out",
                o,
            ],
            "--augment transforms images",
        ),
    ];
    refused_in_one_line(cases, &out);
}

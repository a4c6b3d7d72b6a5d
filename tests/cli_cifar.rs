//! CIFAR-10's binary files as a user meets them: `duel train --dataset cifar10:DIR` on a small
//! folder in the format this test writes (the real one is 163 MB; no test downloads anything),
//! unconditional and conditional, the test split, and one-line refusals of bad files.

mod common;

use common::cli::{cifar_folder, ok, refused_in_one_line, s, tmp};
use duel::data::cifar::{TEST_FILE, TRAIN_FILES, write_records};
use std::path::Path;

fn train(data: &str, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--dataset",
        data,
        "--steps",
        "2",
        "--batch",
        "4",
        "--width",
        "8",
        "--backend",
        "cpu",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

#[test]
fn trains_on_cifar10_files_unconditional_conditional_and_test_split() {
    let data = cifar_folder("data");
    let name = format!("cifar10:{}", s(&data));

    // Unconditional: the 40 training images in colour, dcgan32 by default.
    let run = tmp("plain");
    let out = train(&name, &run, &[]);
    assert!(out.contains("40 images of 3x32x32"), "{out}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("preset = \"dcgan32\""), "{config}");
    assert!(config.contains("channels = 3"), "{config}");
    assert!(
        !config.contains("split"),
        "the train split is the default: {config}"
    );
    let real = image::open(run.join("samples/real.png")).unwrap();
    assert!(real.width() > 32, "a grid of the real images");

    // Conditional: the ten CIFAR-10 classes, by name.
    let run = tmp("conditional");
    let out = train(&name, &run, &["--conditional"]);
    assert!(out.contains("10 classes"), "{out}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("classes = 10"), "{config}");
    assert!(config.contains("\"airplane\""), "{config}");
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
        s(&run.join("trucks.png")),
    ]);
    assert!(run.join("trucks.png").is_file());

    // The test split, found from the folder alone, recorded so a resume keeps it.
    let run = tmp("test-split");
    let out = train(s(&data), &run, &["--split", "test"]);
    assert!(out.contains("6 images of 3x32x32"), "{out}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("split = \"test\""), "{config}");
    let out = ok(&[
        "train",
        "--resume",
        s(&run),
        "--steps",
        "3",
        "--backend",
        "cpu",
    ]);
    assert!(out.contains("6 images of 3x32x32"), "{out}");
}

#[test]
fn bad_cifar10_files_are_refused_in_one_line() {
    let out = tmp("refused-run");
    let truncated = cifar_folder("truncated");
    let f = truncated.join(TRAIN_FILES[1]);
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..3073 * 3 + 10]).unwrap();
    let bad_label = cifar_folder("label");
    write_records(&bad_label.join(TEST_FILE), &[3, 99], |_, _| 0).unwrap();
    let missing = cifar_folder("missing");
    std::fs::remove_file(missing.join(TRAIN_FILES[3])).unwrap();
    let (t, l, m) = (
        format!("cifar10:{}", s(&truncated)),
        format!("cifar10:{}", s(&bad_label)),
        format!("cifar10:{}", s(&missing)),
    );
    let nowhere = format!("cifar10:{}", s(&tmp("nowhere")));
    let o = s(&out);
    refused_in_one_line(
        &[
            (
                &["train", "--dataset", &t, "--out", o],
                "data_batch_2.bin: truncated in record 4 (10 of its 3073 bytes",
            ),
            (
                &["train", "--dataset", &l, "--split", "test", "--out", o],
                "test_batch.bin: record 2 has label 99",
            ),
            (
                &["train", "--dataset", &m, "--out", o],
                "data_batch_4.bin is missing",
            ),
            (
                &["train", "--dataset", &nowhere, "--out", o],
                "no such folder",
            ),
            (
                &["train", "--dataset", "mnist", "--split", "test", "--out", o],
                "mnist has no test split",
            ),
        ],
        &out,
    );
}

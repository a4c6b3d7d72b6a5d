//! The feature network from the command line: the shipped one's held-out accuracy, training
//! reproducible bit for bit on the CPU path, and readable errors.

mod common;

use common::cli::{fails, ok, s, tmp};

/// The percentage after "held-out accuracy " in `text`.
fn accuracy(text: &str) -> f64 {
    let at = text
        .find("held-out accuracy ")
        .unwrap_or_else(|| panic!("no accuracy in:\n{text}"));
    text[at + "held-out accuracy ".len()..]
        .split('%')
        .next()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no percentage in:\n{text}"))
}

#[test]
fn the_shipped_network_classifies_98_percent_of_the_held_out_digits() {
    let out = ok(&["features", "check", "--backend", "cpu"]);
    let acc = accuracy(&out);
    assert!(acc >= 98.0, "held-out accuracy {acc}%:\n{out}");
    assert!(out.contains("of 1000 digits"), "{out}");
}

#[test]
fn the_gpu_computes_the_same_features_and_classes() {
    let (_, heldout) = duel::data::dataset::embedded_mnist().unwrap();
    let digits = &duel::features::unit_rows(&heldout)[..100 * duel::features::PIXELS];
    let (mut cpu, mut gpu) = (common::cpu(), common::gpu());
    let mut on_cpu = duel::features::FeatureNet::shipped(&mut cpu).unwrap();
    let mut on_gpu = duel::features::FeatureNet::shipped(&mut gpu).unwrap();
    let (f_cpu, c_cpu) = on_cpu.features_and_classes(&mut cpu, digits).unwrap();
    let (f_gpu, c_gpu) = on_gpu.features_and_classes(&mut gpu, digits).unwrap();
    assert_eq!(f_cpu.len(), 100 * duel::features::FEATURE_DIM);
    common::assert_close("features", &f_gpu, &f_cpu, 1e-3, 1e-3);
    assert_eq!(c_gpu, c_cpu);
    // The features are not degenerate: many differ from zero, and they vary across digits.
    assert!(f_cpu.iter().filter(|&&v| v > 0.0).count() > f_cpu.len() / 10);
    assert_ne!(f_cpu[..128], f_cpu[128..256]);
}

#[test]
fn training_is_reproducible_bit_for_bit_on_the_cpu_path() {
    let dir = tmp("repro");
    std::fs::create_dir_all(&dir).unwrap();
    let train = |name: &str, seed: &str| {
        let out = dir.join(name);
        let args = [
            "features", "train", "--limit", "256", "--epochs", "2", "--seed", seed, "--quiet",
            "--out",
        ];
        let mut args = args.to_vec();
        args.push(s(&out));
        ok(&args);
        std::fs::read(&out).unwrap()
    };
    let a = train("a.safetensors", "1");
    let b = train("b.safetensors", "1");
    assert!(a.len() > 1 << 20, "{} bytes", a.len());
    assert!(
        a == b,
        "two trainings with the same options wrote different bytes"
    );
    let c = train("c.safetensors", "2");
    assert!(a != c, "another seed gave the same weights");
    // What was written loads and is checked by the same command.
    let out = ok(&[
        "features",
        "check",
        "--weights",
        s(&dir.join("a.safetensors")),
        "--backend",
        "cpu",
    ]);
    let acc = accuracy(&out);
    assert!((10.0..=100.0).contains(&acc), "{out}");
}

#[test]
fn bad_input_is_one_line() {
    let dir = tmp("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not a network").unwrap();
    let err = fails(&[
        "features",
        "check",
        "--weights",
        s(&junk),
        "--backend",
        "cpu",
    ]);
    assert!(err.contains("duel features train"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let err = fails(&[
        "features",
        "train",
        "--limit",
        "10",
        "--out",
        s(&dir.join("x.safetensors")),
    ]);
    assert!(err.contains("fewer than one batch"), "{err}");
    let err = fails(&[
        "features",
        "train",
        "--shift",
        "14",
        "--out",
        s(&dir.join("x.safetensors")),
    ]);
    assert!(err.contains("--shift"), "{err}");
}

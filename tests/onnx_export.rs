//! `duel export --onnx`: the exported generator, run by onnxruntime in Python, draws the images
//! `duel sample --z` draws from the same noise (and classes) to about 1e-5, for an
//! unconditional DCGAN, a conditional DCGAN with a weight average and spectral norm in G
//! (ConvTranspose2d's σ folded), an MLP, a conditional MLP
//! (class embedding), sagan32 (residual blocks, attention and spectral norm in G, σ folded),
//! sngan-resnet32 (residual blocks with batch norm), sagan32-dcgan (the first sagan32) and a
//! progressive run stopped mid-fade; and bad requests are refused in one line.

mod common;

use common::cli::{fails, ok, s, tmp};
use std::path::Path;
use std::process::Command;

fn python(dir: &Path, code: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .current_dir(dir)
        .output()
        .expect("python3 runs (install it, with numpy and onnxruntime, to run this test)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "python failed (this test needs numpy and onnxruntime: python3 -m pip install numpy \
         onnxruntime):\n{text}"
    );
    text
}

/// Runs `model.onnx` in onnxruntime on `z.npy` (and `samples_labels.npy` as the classes when
/// the model takes them) and prints the largest difference from `samples.npy`.
const COMPARE: &str = r#"
import numpy as np, onnxruntime as ort
s = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
names = [i.name for i in s.get_inputs()]
feeds = {"noise": np.load("z.npy")}
if "class" in names:
    feeds["class"] = np.load("samples_labels.npy")
(y,) = s.run(None, feeds)
ref = np.load("samples.npy")
assert y.shape == ref.shape, (y.shape, ref.shape)
assert 0.0 <= y.min() and y.max() <= 1.0
print("inputs", ",".join(names), "spread", float(ref.std()), "max_diff", float(np.abs(y - ref).max()))
"#;

/// Trains a tiny run with `args`, exports it, samples it with `--z` on 5 rows of NumPy noise,
/// and checks onnxruntime's images against `duel sample`'s.
fn exported_matches_sample(name: &str, noise_dim: usize, args: &[&str], conditional: bool) {
    let dir = tmp(name);
    let run = dir.join("run");
    let steps_and_out = ["--backend", "cpu", "--quiet", "--out", s(&run)];
    ok(&[
        &["train", "--log-every", "4", "--sample-every", "100"],
        args,
        &steps_and_out,
    ]
    .concat());
    python(
        &dir,
        &format!(
            "import numpy as np; np.save('z.npy', np.random.default_rng(5).standard_normal((5, {noise_dim})).astype(np.float32))"
        ),
    );
    let model = dir.join("model.onnx");
    ok(&["export", "--run", s(&run), "--onnx", s(&model)]);
    let z = dir.join("z.npy");
    let samples = dir.join("samples.npy");
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--z",
        s(&z),
        "--out",
        s(&samples),
        "--backend",
        "cpu",
    ]);
    let out = python(&dir, COMPARE);
    let field = |key: &str| -> String {
        let words: Vec<&str> = out.split_whitespace().collect();
        let at = words.iter().position(|w| *w == key).expect(key);
        words[at + 1].to_string()
    };
    let inputs = field("inputs");
    assert_eq!(
        inputs == "noise,class",
        conditional,
        "{name}: inputs {inputs}"
    );
    let spread: f64 = field("spread").parse().unwrap();
    let diff: f64 = field("max_diff").parse().unwrap();
    assert!(
        spread > 1e-3,
        "{name}: the samples barely vary ({spread}), a weak check"
    );
    assert!(
        diff < 1e-5,
        "{name}: onnxruntime differs from duel sample by {diff}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const DCGAN: [&str; 10] = [
    "--preset",
    "dcgan",
    "--width",
    "8",
    "--steps",
    "12",
    "--batch",
    "8",
    "--noise-dim",
    "16",
];

#[test]
fn an_unconditional_dcgan_exports() {
    exported_matches_sample("dcgan", 16, &DCGAN, false);
}

#[test]
fn a_conditional_dcgan_with_a_weight_average_and_spectral_norm_exports() {
    let args = [
        &DCGAN[..],
        &["--conditional", "--ema", "0.9", "--sn", "both"],
    ]
    .concat();
    exported_matches_sample("cdcgan", 16, &args, true);
}

#[test]
fn mlps_export_with_and_without_a_class_embedding() {
    let mlp = ["--preset", "mlp", "--steps", "8", "--batch", "8"];
    exported_matches_sample("mlp", 100, &mlp, false);
    let conditional = [&mlp[..], &["--conditional"]].concat();
    exported_matches_sample("cmlp", 100, &conditional, true);
}

/// 24 random 32×32 RGB images.
fn folder(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut seed = 7u32;
    for i in 0..24 {
        let img = image::RgbImage::from_fn(32, 32, |_, _| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let b = seed.to_le_bytes();
            image::Rgb([b[3], b[2], b[1]])
        });
        img.save(dir.join(format!("{i:02}.png"))).unwrap();
    }
}

#[test]
fn the_32x32_presets_and_progan_mid_fade_export() {
    let data = tmp("images");
    folder(&data);
    let sagan = [
        "--preset",
        "sagan32",
        "--dataset",
        s(&data),
        "--width",
        "8",
        "--noise-dim",
        "16",
        "--steps",
        "6",
        "--batch",
        "4",
        "--sn",
        "both",
    ];
    exported_matches_sample("sagan32", 16, &sagan, false);
    for preset in ["sngan-resnet32", "sagan32-dcgan"] {
        let mut args = sagan;
        args[1] = preset;
        exported_matches_sample(preset, 16, &args[..12], false);
    }
    // 8 images per iteration, 64 per phase: iteration 12 is halfway through 8×8's fade-in.
    let progan = [
        "--preset",
        "progan",
        "--dataset",
        s(&data),
        "--image-size",
        "32",
        "--width",
        "8",
        "--batch",
        "8",
        "--phase-images",
        "64",
        "--noise-dim",
        "16",
        "--steps",
        "12",
    ];
    exported_matches_sample("progan", 16, &progan, false);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn bad_exports_are_refused_in_one_line() {
    let dir = tmp("refused");
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("g.onnx");
    let err = fails(&["export", "--run", s(&dir.join("none")), "--onnx", s(&model)]);
    assert!(err.contains("cannot read the checkpoint"), "{err}");
    let err = fails(&["export", "--run", s(&dir), "--onnx", s(&dir.join("g.png"))]);
    assert!(err.contains("name the output .onnx"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!model.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

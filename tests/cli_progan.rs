//! `--preset progan` from the command line: a progressive run stopped in the middle of a fade-in
//! and resumed ends bit-identical (CPU path) to an uninterrupted one, its checkpoint records the
//! phase, its sample grids are named by the resolution they were made at, and sizes it cannot
//! grow to are refused with one line.

mod common;

use common::cli::{fails, ok, s, tmp};
use duel::checkpoint::Checkpoint;
use image::{Rgb, RgbImage};
use std::path::Path;

/// 48 small RGB images of coloured discs on varying backgrounds.
fn folder(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..48u32 {
        let img = RgbImage::from_fn(32, 32, |x, y| {
            let (dx, dy) = (x as i32 - 16 + (i % 5) as i32, y as i32 - 16);
            if dx * dx + dy * dy < 40 + (i * 7 % 60) as i32 {
                Rgb([(i * 37 % 256) as u8, 200, (255 - i * 11 % 256) as u8])
            } else {
                Rgb([255, (i * 53 % 256) as u8, 255])
            }
        });
        img.save(dir.join(format!("{i:02}.png"))).unwrap();
    }
}

/// 8 images per iteration, 64 per phase: 4×4 for iterations 0–7, 8×8 fading in 8–15 and stable
/// 16–23, 16×16 fading in 24–31 and stable 32–39, then 32×32.
const RUN: [&str; 18] = [
    "--preset",
    "progan",
    "--image-size",
    "32",
    "--width",
    "8",
    "--batch",
    "8",
    "--phase-images",
    "64",
    "--log-every",
    "4",
    "--sample-every",
    "10",
    "--backend",
    "cpu",
    "--noise-dim",
    "16",
];

#[test]
fn a_progressive_run_resumed_mid_fade_is_bit_identical() {
    let data = tmp("data");
    folder(&data);
    let (a, b) = (tmp("whole"), tmp("halves"));
    let base = [&RUN[..], &["--dataset", s(&data), "--quiet"]].concat();
    ok(&[&["train", "--steps", "44", "--out", s(&a)], &base[..]].concat());
    // Stopped at iteration 28: half way through 16×16's fade-in (α 0.5).
    ok(&[&["train", "--steps", "28", "--out", s(&b)], &base[..]].concat());
    let mid = Checkpoint::load(&b.join("checkpoint.safetensors")).unwrap();
    assert_eq!(mid.state.iteration, 28);
    let bytes = std::fs::read(b.join("checkpoint.safetensors")).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    assert_eq!(meta["progressive.level"], "2");
    assert_eq!(meta["progressive.alpha"], "0.5");
    ok(&["train", "--resume", s(&b), "--steps", "44", "--quiet"]);
    let ca = Checkpoint::load(&a.join("checkpoint.safetensors")).unwrap();
    let cb = Checkpoint::load(&b.join("checkpoint.safetensors")).unwrap();
    assert_eq!(cb.state.iteration, 44);
    assert!(
        ca.state == cb.state,
        "the resumed progressive run differs from the uninterrupted one"
    );
    // Grids named by resolution, every one at the target side.
    let mut names: Vec<String> = std::fs::read_dir(a.join("samples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step_"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "step_00000010-8x8.png",
            "step_00000020-8x8.png",
            "step_00000030-16x16.png",
            "step_00000040-32x32.png",
            "step_00000044-32x32.png",
        ]
    );
    let grid = image::open(a.join("samples/step_00000010-8x8.png")).unwrap();
    let latest = image::open(a.join("samples/latest.png")).unwrap();
    assert_eq!(
        (grid.width(), grid.height()),
        (latest.width(), latest.height())
    );
}

#[test]
fn without_steps_a_progressive_run_ends_grown_and_stabilised() {
    let data = tmp("data-default-steps");
    folder(&data);
    let out = tmp("default-steps");
    ok(&[
        &["train", "--out", s(&out), "--dataset", s(&data), "--quiet"],
        &RUN[..],
    ]
    .concat());
    // 4×4, then a fade-in and a stabilisation for 8, 16 and 32: 7 phases of 64 images at 8 each.
    let ckpt = Checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ckpt.state.iteration, 7 * 64 / 8);
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(config.contains("steps = 56"), "{config}");
    assert!(out.join("samples/step_00000056-32x32.png").exists());
}

#[test]
fn sizes_progan_cannot_grow_to_are_refused() {
    let err = fails(&["train", "--preset", "progan", "--image-size", "48"]);
    assert!(err.contains("32×32 or 64×64"), "{err}");
    let err = fails(&[
        "train",
        "--preset",
        "progan",
        "--image-size",
        "32",
        "--batch",
        "6",
    ]);
    assert!(err.contains("multiple of 4"), "{err}");
    // The embedded digits are 28×28; refused before a run directory is made.
    let out = tmp("progan-28").join("run");
    let err = fails(&[
        "train",
        "--preset",
        "progan",
        "--image-size",
        "32",
        "--channels",
        "1",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("28×28"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!out.exists(), "a refused run left {}", out.display());
}

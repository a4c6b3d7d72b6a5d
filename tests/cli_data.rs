//! The data pipeline as a user meets it: what `samples/real.png` shows, colour folders with
//! transparency, Stacked MNIST, and clear refusals for adapters that do not exist and image sizes
//! no machine can hold.

mod common;

use common::cli::{fails, ok, s, tmp};
use image::{Rgb, Rgba, RgbaImage};
use std::path::Path;

/// Four 8x8 RGBA images, a.png..d.png: the left half opaque in a colour of its own, the right
/// half fully transparent with blue stored under the transparency.
const COLOURS: [[u8; 3]; 4] = [[200, 30, 40], [20, 180, 60], [240, 200, 10], [90, 90, 90]];

fn transparent_folder(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (k, c) in COLOURS.iter().enumerate() {
        RgbaImage::from_fn(8, 8, |x, _| {
            Rgba(if x < 4 {
                [c[0], c[1], c[2], 255]
            } else {
                [0, 0, 255, 0]
            })
        })
        .save(dir.join(format!("{}.png", (b'a' + k as u8) as char)))
        .unwrap();
    }
}

#[test]
fn real_grid_shows_transparent_pixels_on_the_chosen_background() {
    let data = tmp("emoji-like");
    transparent_folder(&data);
    for (background, want) in [(None, [255; 3]), (Some("black"), [0; 3])] {
        let run = tmp(&format!("real-{background:?}"));
        let mut args = vec![
            "train",
            "--dataset",
            s(&data),
            "--channels",
            "3",
            "--image-size",
            "8",
            "--batch",
            "4",
            "--steps",
            "1",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            s(&run),
        ];
        if let Some(b) = background {
            args.extend(["--background", b]);
        }
        ok(&args);
        let grid = image::open(run.join("samples/real.png")).unwrap().to_rgb8();
        // 4 images: a 2x2 grid of 8x8 tiles zoomed 4x, with 2-pixel gutters.
        for (k, c) in COLOURS.iter().enumerate() {
            let (x0, y0) = (2 + (k as u32 % 2) * 34, 2 + (k as u32 / 2) * 34);
            for y in [y0, y0 + 31] {
                assert_eq!(grid.get_pixel(x0 + 1, y), &Rgb(*c), "image {k} opaque half");
                assert_eq!(
                    grid.get_pixel(x0 + 30, y),
                    &Rgb(want),
                    "image {k}: transparent half on {background:?}"
                );
            }
        }
        let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
        let written = background.unwrap_or("white");
        assert!(
            config.contains(&format!("background = \"{written}\"")),
            "{config}"
        );
    }
}

#[test]
fn stacked_mnist_trains_and_shows_its_colour_digits() {
    let run = tmp("stacked");
    let out = ok(&[
        "train",
        "--dataset",
        "stacked-mnist",
        "--steps",
        "1",
        "--batch",
        "8",
        "--backend",
        "cpu",
        "--out",
        s(&run),
    ]);
    assert!(
        out.contains("128000 images of 3x28x28, 1000 classes"),
        "{out}"
    );
    let real = image::open(run.join("samples/real.png")).unwrap();
    assert_eq!(real.color(), image::ColorType::Rgb8);
    // Three different digits per image: some pixels are lit in one channel and dark in another.
    let coloured = real
        .to_rgb8()
        .pixels()
        .filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 128)
        .count();
    assert!(coloured > 1000, "only {coloured} coloured pixels");
    let latest = image::open(run.join("samples/latest.png")).unwrap();
    assert_eq!(latest.color(), image::ColorType::Rgb8);
}

#[test]
fn the_embedded_digits_come_with_their_labels() {
    let run = tmp("labels");
    let out = ok(&[
        "train",
        "--steps",
        "1",
        "--batch",
        "8",
        "--backend",
        "cpu",
        "--out",
        s(&run),
    ]);
    assert!(
        out.contains("7000 images of 1x28x28 (1000 more held out), 10 classes"),
        "{out}"
    );
    assert!(run.join("samples/real.png").is_file());
}

#[test]
fn an_adapter_that_matches_nothing_stops_the_run_whatever_the_backend() {
    let out = tmp("adapter").join("run");
    // The auto backend would take the CPU path on a machine with only a software adapter; a
    // named adapter that does not exist must still be an error, listing what was found.
    let err = fails(&[
        "train",
        "--adapter",
        "no-such-adapter",
        "--steps",
        "1",
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("\"no-such-adapter\"") && err.contains("matches no adapter"),
        "{err}"
    );
    assert!(err.contains("Adapters found: [0]"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!out.exists(), "nothing written for a refused run");
    // The same through DUEL_ADAPTER, which an empty --adapter defers to.
    let env = std::process::Command::new(env!("CARGO_BIN_EXE_duel"))
        .args(["train", "--steps", "1", "--out", s(&out)])
        .env("DUEL_ADAPTER", "no-such-adapter")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&env.stderr);
    assert!(!env.status.success(), "trained despite DUEL_ADAPTER: {err}");
    assert!(
        err.contains("DUEL_ADAPTER \"no-such-adapter\"") && err.contains("matches no adapter"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written for a refused run");

    let err = fails(&[
        "train",
        "--backend",
        "cpu",
        "--adapter",
        "0",
        "--steps",
        "1",
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("--backend cpu uses none; drop --adapter"),
        "{err}"
    );
}

#[test]
fn a_run_trained_on_a_named_adapter_resumes_on_the_cpu() {
    let run = tmp("resume-cpu");
    let common = ["--dataset", "ring8", "--batch", "16", "--quiet"];
    ok(&[
        &[
            "train",
            "--steps",
            "2",
            "--backend",
            "gpu",
            "--adapter",
            "0",
        ][..],
        &common,
        &["--out", s(&run)],
    ]
    .concat());
    ok(&[
        "train",
        "--resume",
        s(&run),
        "--steps",
        "4",
        "--backend",
        "cpu",
        "--quiet",
    ]);
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains("backend = \"cpu\"") && config.contains("adapter = \"\""),
        "{config}"
    );
    // Sampling refuses the same contradiction.
    let png = run.join("x.png");
    let err = fails(&[
        "sample",
        "--run",
        s(&run),
        "--out",
        s(&png),
        "--backend",
        "cpu",
        "--adapter",
        "0",
    ]);
    assert!(err.contains("--backend cpu uses none"), "{err}");
    assert!(!png.exists());
}

#[test]
fn absurd_image_sizes_are_refused_at_once() {
    let data = tmp("big");
    transparent_folder(&data);
    let start = std::time::Instant::now();
    let err = fails(&[
        "train",
        "--dataset",
        s(&data),
        "--image-size",
        "100000",
        "--out",
        s(&data.join("run")),
    ]);
    assert!(
        err.contains("--image-size 100000 is too large; use at most 1024"),
        "{err}"
    );
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}

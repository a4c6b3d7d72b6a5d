//! Class-conditional GANs from the command line (issue 14): a folder with class subfolders the
//! test makes trains conditionally and samples by class; the one-line refusals.

mod common;

use common::cli::{fails, ok, s, tmp};
use image::{GrayImage, Luma};
use std::path::Path;

/// Three classes of 8×8 gray images, five each: `dark/`, `mid/`, `bright/` (a vertical gradient
/// around the class's level, so no two images are alike).
fn class_folder(dir: &Path) {
    for (class, level) in [("dark", 30u8), ("mid", 120), ("bright", 220)] {
        let sub = dir.join(class);
        std::fs::create_dir_all(&sub).unwrap();
        for i in 0..5u8 {
            GrayImage::from_fn(8, 8, |_, y| Luma([level + 3 * i + y as u8]))
                .save(sub.join(format!("{i}.png")))
                .unwrap();
        }
    }
}

fn train(data: &Path, run: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--dataset",
        s(data),
        "--image-size",
        "8",
        "--batch",
        "6",
        "--steps",
        "4",
        "--log-every",
        "2",
        "--sample-every",
        "4",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        s(run),
    ];
    args.extend(extra);
    ok(&args)
}

/// The npy header's dtype and the values of a 1-D int64 array.
fn read_i64_npy(path: &Path) -> (String, Vec<i64>) {
    let bytes = std::fs::read(path).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + header_len]).to_string();
    let values = bytes[10 + header_len..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (header, values)
}

#[test]
fn a_class_folder_trains_conditionally_and_samples_by_class() {
    let data = tmp("classes");
    class_folder(&data);
    let run = tmp("run");
    train(&data, &run, &["--conditional"]);

    // The config records the classes, their names sorted as ImageFolder sorts them.
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("conditional = true"), "{config}");
    assert!(config.contains("classes = 3"), "{config}");
    assert!(
        config.contains(r#"class-names = ["bright", "dark", "mid"]"#),
        "{config}"
    );

    // The checkpoint holds G's class embedding and D's projection embedding under PyTorch-style
    // names.
    let ck = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    let n = u64::from_le_bytes(ck[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&ck[8..8 + n]).unwrap();
    assert_eq!(
        header["generator_ema.0.weight"]["shape"],
        serde_json::json!([3, 3]),
        "G's class embedding [classes, dim]"
    );
    assert_eq!(
        header["discriminator.4.embed.weight"]["shape"],
        serde_json::json!([3, 1024]),
        "D's projection embedding [classes, features]"
    );
    assert_eq!(
        header["discriminator.4.linear.weight"]["shape"],
        serde_json::json!([1, 1024])
    );

    // The training grid: one row per class, 8 columns (8×8 tiles zoomed 4× with 2-pixel gutters).
    let grid = image::open(run.join("samples/latest.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (2 + 8 * 34, 2 + 3 * 34));

    // Samples of one class, by name or number, with their labels beside them.
    for class in ["dark", "1"] {
        let out = run.join(format!("dark-{class}.npy"));
        let said = ok(&[
            "sample",
            "--run",
            s(&run),
            "--class",
            class,
            "--count",
            "5",
            "--out",
            s(&out),
            "--backend",
            "cpu",
        ]);
        let labels = run.join(format!("dark-{class}_labels.npy"));
        assert!(said.contains(s(&labels)), "{said}");
        let (shape, x) = duel::output::read_npy_f32(&out).unwrap();
        assert_eq!(shape, vec![5, 1, 8, 8]);
        assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
        let (header, values) = read_i64_npy(&labels);
        assert!(header.contains("'descr': '<i8'"), "{header}");
        // (npyz writes a 1-tuple as "(5, )", which NumPy reads as (5,).)
        assert!(header.contains("'shape': (5,"), "{header}");
        assert_eq!(values, vec![1; 5], "dark is class 1 of bright, dark, mid");
    }
    // Without --class: every class in turn.
    let out = run.join("all.npy");
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--count",
        "7",
        "--out",
        s(&out),
        "--backend",
        "cpu",
    ]);
    assert_eq!(
        read_i64_npy(&run.join("all_labels.npy")).1,
        vec![0, 1, 2, 0, 1, 2, 0]
    );
    // Same noise, different class: different images.
    let (_, a) = duel::output::read_npy_f32(&run.join("dark-1.npy")).unwrap();
    let other = run.join("bright.npy");
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--class",
        "0",
        "--count",
        "5",
        "--out",
        s(&other),
        "--backend",
        "cpu",
    ]);
    let (_, b) = duel::output::read_npy_f32(&other).unwrap();
    assert_ne!(a, b, "the class changes the samples");

    // A .png without --class: a row per class; --interpolate also walks across the classes.
    let png = run.join("grid.png");
    let said = ok(&[
        "sample",
        "--run",
        s(&run),
        "--out",
        s(&png),
        "--backend",
        "cpu",
    ]);
    assert!(said.contains("3 rows (one per class)"), "{said}");
    let walk = run.join("walk.png");
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--interpolate",
        "4",
        "--out",
        s(&walk),
        "--backend",
        "cpu",
    ]);
    let classes = image::open(run.join("walk_classes.png")).unwrap();
    assert_eq!(
        (classes.width(), classes.height()),
        (2 + 3 * 34, 2 + 8 * 34)
    );
    assert!(run.join("walk.gif").is_file());

    // Refusals: a class out of range or unknown.
    let e = fails(&[
        "sample",
        "--run",
        s(&run),
        "--class",
        "3",
        "--out",
        s(&png),
        "--backend",
        "cpu",
    ]);
    assert!(
        e.contains("--class 3 is out of range: this run has 3 classes; pass 0 to 2"),
        "{e}"
    );
    let e = fails(&[
        "sample",
        "--run",
        s(&run),
        "--class",
        "cat",
        "--out",
        s(&png),
        "--backend",
        "cpu",
    ]);
    assert!(
        e.contains("no such class; this run's classes are bright, dark, mid"),
        "{e}"
    );
}

#[test]
fn conditional_refusals_are_one_line() {
    let data = tmp("refusals");
    class_folder(&data);
    // A plain run: --class is refused when sampling it.
    let plain = tmp("plain");
    train(&data, &plain, &[]);
    let e = fails(&[
        "sample",
        "--run",
        s(&plain),
        "--class",
        "1",
        "--out",
        "x.npy",
        "--backend",
        "cpu",
    ]);
    assert!(e.contains("this run is not conditional"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");

    // A run keeps whether it is conditional.
    let e = fails(&[
        "train",
        "--resume",
        s(&plain),
        "--conditional",
        "--steps",
        "6",
    ]);
    assert!(
        e.contains("--conditional cannot change when resuming"),
        "{e}"
    );

    // Unlabelled data: images straight in the folder, a 2-D set.
    let flat = tmp("flat");
    std::fs::create_dir_all(&flat).unwrap();
    for i in 0..6u8 {
        GrayImage::from_pixel(8, 8, Luma([i * 40]))
            .save(flat.join(format!("{i}.png")))
            .unwrap();
    }
    let e = fails(&[
        "train",
        "--conditional",
        "--dataset",
        s(&flat),
        "--image-size",
        "8",
        "--batch",
        "2",
        "--steps",
        "1",
        "--backend",
        "cpu",
        "--out",
        s(&tmp("flat-run")),
    ]);
    assert!(e.contains("subfolder"), "{e}");
    let e = fails(&[
        "train",
        "--conditional",
        "--dataset",
        "ring8",
        "--steps",
        "1",
        "--backend",
        "cpu",
        "--pack",
        "1",
        "--out",
        s(&tmp("ring-run")),
    ]);
    assert!(e.contains("--conditional needs labelled data"), "{e}");
    // Packing mixes samples of different classes.
    let e = fails(&[
        "train",
        "--conditional",
        "--pack",
        "2",
        "--steps",
        "1",
        "--out",
        s(&tmp("packed")),
    ]);
    assert!(e.contains("pass --pack 1"), "{e}");

    // IDX images with a short label file, and with labels out of range.
    let idx = tmp("idx");
    std::fs::create_dir_all(&idx).unwrap();
    let mut images = 0x0803u32.to_be_bytes().to_vec();
    [4u32, 8, 8]
        .iter()
        .for_each(|d| images.extend(d.to_be_bytes()));
    images.extend((0..4 * 64).map(|i| (i % 251) as u8));
    std::fs::write(idx.join("train-images-idx3-ubyte"), images).unwrap();
    let idx_run = |labels: &[u8], count: u32| {
        let mut l = 0x0801u32.to_be_bytes().to_vec();
        l.extend(count.to_be_bytes());
        l.extend(labels);
        std::fs::write(idx.join("train-labels-idx1-ubyte"), l).unwrap();
        fails(&[
            "train",
            "--conditional",
            "--dataset",
            s(&idx),
            "--batch",
            "2",
            "--steps",
            "1",
            "--backend",
            "cpu",
            "--out",
            s(&tmp("idx-run")),
        ])
    };
    let e = idx_run(&[0, 1, 0], 4);
    assert!(e.contains("truncated"), "{e}");
    let e = idx_run(&[0, 1, 0, 250], 4);
    assert!(e.contains("train-labels-idx1-ubyte"), "{e}");
    std::fs::remove_file(idx.join("train-labels-idx1-ubyte")).unwrap();
    let e = fails(&[
        "train",
        "--conditional",
        "--dataset",
        s(&idx),
        "--batch",
        "2",
        "--steps",
        "1",
        "--backend",
        "cpu",
        "--out",
        s(&tmp("idx-run2")),
    ]);
    assert!(e.contains("no label file beside it"), "{e}");
}

#[test]
fn a_resumed_conditional_run_ends_where_an_unbroken_one_does() {
    // The fake classes come from their own stream at the noise counter, which the checkpoint
    // restores: a run stopped at step 2 and resumed to 4 samples exactly as one run to 4.
    let data = tmp("resume-data");
    class_folder(&data);
    let (whole, split) = (tmp("whole"), tmp("split"));
    // The dcgan32 model (conditional batch norm in G) on the images resized to 32×32.
    let run = |out: &Path, steps: &str| {
        ok(&[
            "train",
            "--conditional",
            "--preset",
            "dcgan32",
            "--width",
            "4",
            "--dataset",
            s(&data),
            "--image-size",
            "32",
            "--batch",
            "6",
            "--steps",
            steps,
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            s(out),
        ])
    };
    run(&whole, "4");
    run(&split, "2");
    ok(&[
        "train",
        "--resume",
        s(&split),
        "--steps",
        "4",
        "--backend",
        "cpu",
        "--quiet",
    ]);
    let draw = |run: &Path| {
        let out = run.join("s.npy");
        ok(&[
            "sample",
            "--run",
            s(run),
            "--class",
            "2",
            "--count",
            "6",
            "--out",
            s(&out),
            "--backend",
            "cpu",
        ]);
        duel::output::read_npy_f32(&out).unwrap().1
    };
    assert_eq!(draw(&whole), draw(&split));
}

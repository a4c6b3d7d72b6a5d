//! Input a new user might give, refused at the door in one line naming the option, key, file or
//! tensor (exit code 1, nothing written), or handled as the user meant: oversized requests
//! against the memory budget, non-finite numbers, negative and out-of-range numbers, config
//! errors, truncated images and NumPy files in any layout.

mod common;

use common::cli::{TmpPath, duel, ok, refused_in_one_line, refused_untouched, s, tmp};
use std::path::Path;
use std::process::Output;

/// A one-step run: an MLP on 64 of the embedded digits (`digits`), or on ring8.
fn tiny_run(name: &str, digits: bool) -> TmpPath {
    let run = tmp(name);
    let data: &[&str] = match digits {
        true => &["--dataset", "mnist", "--preset", "mlp", "--limit", "64"],
        false => &["--dataset", "ring8"],
    };
    let mut args = vec!["train", "--out", s(&run), "--steps", "1", "--batch", "16"];
    args.extend(data);
    args.extend(["--backend", "cpu", "--quiet"]);
    ok(&args);
    run
}

/// `duel args` with `DUEL_MEMORY_LIMIT` set.
fn with_limit(limit: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_duel"))
        .args(args)
        .env(duel::budget::LIMIT_VAR, limit)
        .output()
        .unwrap()
}

fn one_error_line(out: &Output, want: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(want), "expected {want:?} in: {err}");
}

#[test]
fn oversized_requests_are_refused_with_the_estimate_before_allocating() {
    let digits = tiny_run("digits", true);
    let out = tmp("big-out");
    let o = s(&out);
    let png = out.join("grid.png");
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "sample",
                "--run",
                s(&digits),
                "--count",
                "10000000",
                "--out",
                s(&png),
            ],
            "a PNG grid of 10000000 samples needs about",
        ),
        (
            &[
                "eval",
                "fid",
                "--run",
                s(&digits),
                "--samples",
                "100000000",
                "--backend",
                "cpu",
            ],
            "--samples 100000000 needs about",
        ),
        (
            &[
                "train",
                "--eval-every",
                "1",
                "--eval-samples",
                "100000000000",
                "--out",
                o,
            ],
            "--eval-samples 100000000000 needs about",
        ),
        (
            &[
                "train",
                "--width",
                "100000",
                "--steps",
                "1",
                "--backend",
                "cpu",
                "--out",
                o,
            ],
            "use a smaller --width",
        ),
        (
            &[
                "train",
                "--preset",
                "mlp",
                "--noise-dim",
                "100000000",
                "--backend",
                "cpu",
                "--out",
                o,
            ],
            "needs about",
        ),
    ];
    refused_in_one_line(cases, &out);
    // An image folder docs/datasets.md allows, at 1024×1024 RGB, trains an MLP of billions of
    // parameters: refused before any is allocated.
    let folder = tmp("large-images");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..2 {
        image::GrayImage::from_pixel(8, 8, image::Luma([i * 100]))
            .save(folder.join(format!("{i}.png")))
            .unwrap();
    }
    let args = [
        "train",
        "--dataset",
        s(&folder),
        "--image-size",
        "1024",
        "--channels",
        "3",
        "--batch",
        "2",
        "--backend",
        "cpu",
        "--out",
        o,
    ];
    refused_in_one_line(&[(&args, "parameters) and D (")], &out);
}

#[test]
fn a_large_npy_is_streamed_where_a_png_grid_of_the_same_count_is_refused() {
    let ring = tiny_run("ring", false);
    let dir = tmp("stream");
    std::fs::create_dir_all(&dir).unwrap();
    // 2,000,000 points hold 16 MB: over an 8 MiB budget in memory, but written in chunks.
    let (npy, png) = (dir.join("points.npy"), dir.join("points.png"));
    let args = |out: &Path| -> Vec<String> {
        [
            "sample",
            "--run",
            s(&ring),
            "--count",
            "2000000",
            "--backend",
            "cpu",
            "--out",
            s(out),
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |out: &Path| {
        with_limit(
            "8M",
            &args(out).iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let wrote = run(&npy);
    assert!(
        wrote.status.success(),
        "{}",
        String::from_utf8_lossy(&wrote.stderr)
    );
    let (shape, values) = duel::output::read_npy_f32(&npy).unwrap();
    assert_eq!(shape, [2_000_000, 2]);
    assert!(values.iter().all(|v| v.is_finite()));
    // The same rows as an unchunked draw of the first ones.
    let few = dir.join("few.npy");
    ok(&[
        "sample",
        "--run",
        s(&ring),
        "--count",
        "1500",
        "--backend",
        "cpu",
        "--out",
        s(&few),
    ]);
    assert_eq!(duel::output::read_npy_f32(&few).unwrap().1, values[..3000]);
    one_error_line(
        &run(&png),
        "holding 2000000 samples of 2 values needs about",
    );
    assert!(!png.exists());
}

#[test]
fn non_finite_noise_options_and_checkpoints_are_refused_naming_them() {
    let ring = tiny_run("nan-ring", false);
    let dir = tmp("nan");
    std::fs::create_dir_all(&dir).unwrap();
    let zdim = 8; // ring8's small preset
    let mut z = vec![0.5f32; 3 * zdim];
    z[zdim + 3] = f32::NAN;
    let zfile = dir.join("z.npy");
    duel::output::write_npy(&zfile, &z, &[3, zdim]).unwrap();
    let x = dir.join("x.npy");
    let err = common::cli::fails(&[
        "sample",
        "--run",
        s(&ring),
        "--z",
        s(&zfile),
        "--out",
        s(&x),
    ]);
    assert!(err.contains("z.npy: row 1, column 3 is NaN"), "{err}");
    assert!(!x.exists());
    z[zdim + 3] = f32::INFINITY;
    duel::output::write_npy(&zfile, &z, &[3, zdim]).unwrap();
    let err = common::cli::fails(&[
        "sample",
        "--run",
        s(&ring),
        "--z",
        s(&zfile),
        "--out",
        s(&x),
    ]);
    assert!(err.contains("row 1, column 3 is inf"), "{err}");

    let out = dir.join("run");
    let o = s(&out);
    let cases: &[(&[&str], &str)] = &[
        (
            &["train", "--lr-g", "nan", "--out", o],
            "--lr-g must be a positive",
        ),
        (
            &["train", "--gp", "inf", "--out", o],
            "--gp must be 0 (off) or positive",
        ),
        (
            &["train", "--momentum", "nan", "--out", o],
            "--momentum must be in [0, 1)",
        ),
        (
            &["train", "--lr-decay", "inf", "--out", o],
            "--lr-decay must be at least 1",
        ),
    ];
    refused_in_one_line(cases, &out);

    // A checkpoint holding a NaN weight: sampling and resuming are refused, naming the tensor.
    let ck = ring.join("checkpoint.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            let mut data = t.data().to_vec();
            if name == "generator.0.weight" {
                data[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
            }
            (name, t.dtype(), t.shape().to_vec(), data)
        })
        .collect();
    let views = owned.iter().map(|(n, d, sh, b)| {
        (
            n.clone(),
            safetensors::tensor::TensorView::new(*d, sh.clone(), b).unwrap(),
        )
    });
    let poisoned = safetensors::serialize(views, header.metadata().clone()).unwrap();
    std::fs::write(&ck, poisoned).unwrap();
    let err = common::cli::fails(&["sample", "--run", s(&ring), "--out", s(&x)]);
    assert!(
        err.contains("tensor generator.0.weight holds NaN at index 2"),
        "{err}"
    );
    refused_untouched(
        &["train", "--resume", s(&ring), "--steps", "5"],
        "tensor generator.0.weight holds NaN",
        &ring,
    );
}

#[test]
fn negative_and_out_of_range_numbers_reach_the_option_that_takes_them() {
    let out = tmp("numbers");
    let o = s(&out);
    let cases: &[(&[&str], &str)] = &[
        (
            &["train", "--lr-g", "-1", "--out", o],
            "--lr-g must be a positive learning rate",
        ),
        (
            &["train", "--gp", "-1", "--out", o],
            "--gp must be 0 (off) or positive",
        ),
        (
            &["train", "--clip", "-0.1", "--out", o],
            "--clip must be 0 (off) or positive, such as 0.01; not -0.1",
        ),
        (
            &["train", "--seed", "9223372036854775808", "--out", o],
            "--seed 9223372036854775808 is too large; the largest value a run can record is 9223372036854775807",
        ),
    ];
    refused_in_one_line(cases, &out);
    // The largest seed a run records is accepted.
    let run = tmp("largest-seed");
    ok(&[
        "train",
        "--dataset",
        "ring8",
        "--steps",
        "1",
        "--seed",
        "9223372036854775807",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        s(&run),
    ]);
}

#[test]
fn config_file_errors_name_the_file_line_and_key() {
    let dir = tmp("config");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("run");
    let cases = [
        (
            "batch = 16\nlr-g = \"fast\"\n",
            "run.toml line 2: lr-g: invalid type: string \"fast\", expected f32",
        ),
        (
            "# a comment\n\nsteps = 10\nbatch = -5\n",
            "run.toml line 4: batch: invalid value: integer `-5`, expected usize",
        ),
        (
            "batch = 16\nsteps = = 3\n",
            "run.toml line 2: not valid TOML",
        ),
    ];
    for (text, want) in cases {
        let file = dir.join("run.toml");
        std::fs::write(&file, text).unwrap();
        refused_in_one_line(
            &[(&["train", "--config", s(&file), "--out", s(&out)], want)],
            &out,
        );
    }
}

/// A 16×16 gray JPEG or PNG of noise, encoded in memory.
fn encoded(format: image::ImageFormat, seed: u8) -> Vec<u8> {
    let img = image::GrayImage::from_fn(16, 16, |x, y| {
        image::Luma([(x as u8).wrapping_mul(37) ^ (y as u8).wrapping_mul(11) ^ seed])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

#[test]
fn truncated_images_are_named_or_skipped_with_a_count_on_request() {
    for (format, ext) in [
        (image::ImageFormat::Jpeg, "jpg"),
        (image::ImageFormat::Png, "png"),
    ] {
        let dir = tmp(&format!("cut-{ext}"));
        let data = dir.join("images");
        std::fs::create_dir_all(&data).unwrap();
        for i in 0..4 {
            std::fs::write(data.join(format!("{i}.{ext}")), encoded(format, i * 40)).unwrap();
        }
        let whole = encoded(format, 200);
        std::fs::write(data.join(format!("cut.{ext}")), &whole[..whole.len() / 2]).unwrap();
        let out = dir.join("run");
        let train = |extra: &[&str]| -> Output {
            let mut args = vec![
                "train",
                "--dataset",
                s(&data),
                "--image-size",
                "16",
                "--batch",
                "4",
                "--steps",
                "1",
                "--backend",
                "cpu",
                "--quiet",
                "--out",
                s(&out),
            ];
            args.extend(extra);
            duel(&args)
        };
        one_error_line(&train(&[]), &format!("cut.{ext}: "));
        assert!(!out.exists());
        let skipped = train(&["--skip-bad-images"]);
        let err = String::from_utf8_lossy(&skipped.stderr);
        assert!(skipped.status.success(), "{err}");
        assert!(
            err.contains("skipped 1 of 5 images") && err.contains(&format!("cut.{ext}")),
            "{err}"
        );
    }
}

#[test]
fn noise_saved_in_fortran_order_big_endian_or_float64_samples_as_c_order_float32() {
    let ring = tiny_run("npy-ring", false);
    let dir = tmp("npy");
    std::fs::create_dir_all(&dir).unwrap();
    let (rows, zdim) = (5, 8);
    let z: Vec<f32> = (0..rows * zdim).map(|i| (i as f32 * 0.37).sin()).collect();
    let c_order = dir.join("z.npy");
    duel::output::write_npy(&c_order, &z, &[rows, zdim]).unwrap();
    // np.save(Z.T.astype('>f8').T): the same array, Fortran order, big-endian float64.
    let mut payload = Vec::new();
    for col in 0..zdim {
        for row in 0..rows {
            payload.extend((z[row * zdim + col] as f64).to_be_bytes());
        }
    }
    let mut dict =
        format!("{{'descr': '>f8', 'fortran_order': True, 'shape': ({rows}, {zdim}), }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((dict.len() as u16).to_le_bytes());
    bytes.extend(dict.as_bytes());
    bytes.extend(payload);
    let fortran = dir.join("zf.npy");
    std::fs::write(&fortran, bytes).unwrap();
    let (a, b) = (dir.join("a.npy"), dir.join("b.npy"));
    for (z, out) in [(&c_order, &a), (&fortran, &b)] {
        ok(&[
            "sample",
            "--run",
            s(&ring),
            "--z",
            s(z),
            "--backend",
            "cpu",
            "--out",
            s(out),
        ]);
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn command_line_mistakes_are_one_line_naming_the_option_and_its_values() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["train", "--model", "wgan"],
            "possible values: mlp, mlp-dropout, small, dcgan",
        ),
        (&["train", "--split", "validation"], "'--split <SPLIT>'"),
        (
            &["train", "--background", "grey"],
            "possible values: white, black",
        ),
        (&["train", "--batch", "many"], "'--batch <BATCH>'"),
        (&["train", "--bogus"], "unexpected argument '--bogus'"),
        (&["sample"], "--run <DIR>"),
    ];
    for (args, want) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_duel"))
            .args(*args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // clap's usage-error code, as before; one line, no usage block.
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: expected {want:?} in: {err}");
    }
    // --help still prints the whole reference, grouped under headings.
    let help = ok(&["train", "--help"]);
    for heading in [
        "Run:",
        "Data:",
        "Model:",
        "Objective:",
        "Optimiser:",
        "Schedule:",
        "Output:",
        "Device:",
    ] {
        assert!(
            help.contains(&format!("\n{heading}\n")),
            "no {heading} in:\n{help}"
        );
    }
}

//! `duel eval fid|kid --features inception` from the command line: on a tiny run and on two
//! folders of images, with the rule's weights standing in for pytorch-fid's file; and the
//! one-line refusals when the weights are missing or wrong.

mod common;

use common::cli::{ok, s, tmp};
use std::path::Path;

/// The number after `label` on the line that holds it.
fn number_after(text: &str, label: &str) -> f64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
        + label.len();
    text[at..]
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in:\n{text}"))
}

fn write_pngs(dir: &Path, n: usize, shade: u8) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let img = image::RgbImage::from_fn(32, 32, |x, y| {
            let v = (x * 7 + y * 3 + i as u32 * 40) as u8;
            image::Rgb([v, shade, v / 2])
        });
        img.save(dir.join(format!("{i}.png"))).unwrap();
    }
}

#[test]
fn inception_fid_and_kid_of_a_run_and_of_two_folders() {
    let root = tmp("inception");
    std::fs::create_dir_all(&root).unwrap();
    let weights = root.join("inception.safetensors");
    common::inception::write_weights(&weights);

    let run = root.join("run");
    ok(&[
        "train",
        "--steps",
        "2",
        "--batch",
        "8",
        "--backend",
        "cpu",
        "--out",
        s(&run),
    ]);
    let fid = ok(&[
        "eval",
        "fid",
        "--run",
        s(&run),
        "--features",
        "inception",
        "--inception",
        s(&weights),
        "--samples",
        "3",
        "--backend",
        "cpu",
    ]);
    assert!(fid.contains("Inception-v3 pool3"), "{fid}");
    assert!(fid.contains("3 generated vs 3 real images"), "{fid}");
    assert!(number_after(&fid, "Inception FID") > 0.0, "{fid}");

    // Two folders through DUEL_INCEPTION: a set against itself is at 0, against another not.
    let (a, b) = (root.join("a"), root.join("b"));
    write_pngs(&a, 3, 0);
    write_pngs(&b, 3, 200);
    let kid = |second: &Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_duel"))
            .args([
                "eval",
                "kid",
                "--features",
                "inception",
                "--backend",
                "cpu",
                "--images",
            ])
            .args([&a, second])
            .env("DUEL_INCEPTION", &weights)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let other = kid(&b);
    assert!(other.contains("3 vs 3 images"), "{other}");
    let same = kid(&a);
    assert!(
        number_after(&other, "Inception KID") > 10.0 * number_after(&same, "Inception KID").abs(),
        "{other}\n{same}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn missing_or_wrong_weights_are_refused_in_one_line() {
    let root = tmp("inception-refusals");
    std::fs::create_dir_all(&root).unwrap();
    let pth = root.join("pt_inception-2015-12-05-6726825d.pth");
    std::fs::write(&pth, b"PK\x03\x04").unwrap();
    let folders = ["--images", s(&root), s(&root)];
    let missing = root.join("nope.safetensors");
    let cases: [(&[&str], &str); 4] = [
        (&["--inception", s(&missing)], "nope.safetensors"),
        (&["--inception", s(&pth)], "save_file"),
        (&[], "DUEL_INCEPTION"),
        (&["--features", "digits"], "add --features inception"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["eval", "fid", "--backend", "cpu"];
        if !extra.contains(&"digits") {
            args.extend(["--features", "inception"]);
        }
        args.extend(folders);
        args.extend(extra);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_duel"))
            .args(&args)
            .env_remove("DUEL_INCEPTION")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            err.starts_with("error: ") && err.contains(want),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn inception_statistics_files_are_written_once_and_scored_against() {
    let root = tmp("inception-stats");
    std::fs::create_dir_all(&root).unwrap();
    let weights = root.join("inception.safetensors");
    common::inception::write_weights(&weights);
    let (a, b) = (root.join("a"), root.join("b"));
    write_pngs(&a, 3, 0);
    write_pngs(&b, 3, 200);
    let fid = |args: &[&str]| {
        let mut all = vec![
            "eval",
            "fid",
            "--features",
            "inception",
            "--inception",
            s(&weights),
            "--backend",
            "cpu",
        ];
        all.extend_from_slice(args);
        ok(&all)
    };
    // One folder's statistics, as pytorch-fid's --save-stats writes them.
    let stats = root.join("a.npz");
    let said = fid(&["--images", s(&a), "--save-stats", s(&stats)]);
    assert!(said.contains("a.npz"), "{said}");
    let read = duel::metrics::stats_file::read_stats(&stats, Some(2048)).unwrap();
    assert_eq!((read.mu.len(), read.sigma.len()), (2048, 2048 * 2048));
    // Against the file, a folder scores as it does against the folder itself.
    let by_file = number_after(
        &fid(&["--images", s(&b), "--reference", s(&stats)]),
        "Inception FID",
    );
    let by_folder = number_after(&fid(&["--images", s(&b), s(&a)]), "Inception FID");
    assert!(by_folder > 0.0, "{by_folder}");
    assert!(
        (by_file - by_folder).abs() <= 1e-3 * by_folder,
        "{by_file} vs {by_folder}"
    );
    // The file is never replaced, and statistics of another width are refused, in one line.
    let before = std::fs::read(&stats).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_duel"))
        .args(["eval", "fid", "--features", "inception", "--backend", "cpu"])
        .args([
            "--inception",
            s(&weights),
            "--images",
            s(&b),
            "--save-stats",
            s(&stats),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("exists"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(std::fs::read(&stats).unwrap(), before);
    let narrow = root.join("narrow.npz");
    let digits = duel::metrics::FidStats {
        mu: vec![0.0; 128],
        sigma: vec![0.0; 128 * 128],
        n: 2,
    };
    duel::metrics::stats_file::write_stats(&narrow, &digits).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_duel"))
        .args(["eval", "fid", "--features", "inception", "--backend", "cpu"])
        .args([
            "--inception",
            s(&weights),
            "--images",
            s(&b),
            "--reference",
            s(&narrow),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("narrow.npz"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

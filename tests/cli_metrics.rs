//! FID, KID, precision/recall and Stacked MNIST's modes from the command line, on tiny runs the
//! tests train: `duel eval fid|kid|pr|modes` and `duel train --eval-every`.

mod common;

use common::cli::{fails, ok, s, tmp};
use std::path::Path;

fn train(out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--steps",
        "20",
        "--batch",
        "16",
        "--log-every",
        "5",
        "--backend",
        "cpu",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

/// The numbers after `label` on the line starting with `line_start`.
fn numbers(text: &str, line_start: &str, label: &str) -> Vec<f64> {
    let line = text
        .lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no line {line_start:?} in:\n{text}"));
    let rest = &line[line
        .find(label)
        .unwrap_or_else(|| panic!("no {label} in {line}"))
        + label.len()..];
    rest.split(|c: char| c.is_whitespace() || c == '±')
        .filter(|w| !w.is_empty())
        .map_while(|w| w.parse().ok())
        .collect()
}

#[test]
fn fid_kid_and_precision_recall_of_an_mnist_run_beside_the_real_baseline() {
    let run = tmp("mnist");
    train(&run, &[]);
    let eval = |metric: &str| {
        ok(&[
            "eval",
            metric,
            "--run",
            s(&run),
            "--samples",
            "600",
            "--backend",
            "cpu",
        ])
    };
    let fid = eval("fid");
    assert!(fid.contains("not comparable with Inception-based"), "{fid}");
    assert!(fid.contains("600 samples of G"), "{fid}");
    assert!(
        fid.contains("600 embedded training digits against the same 1000 held-out digits"),
        "{fid}"
    );
    let g = numbers(&fid, "generator:", "FID")[0];
    let b = numbers(&fid, "real-vs-real baseline:", "FID")[0];
    // Real digits are close to the held-out ones; 20 steps of a GAN are far from them.
    assert!(
        b > 0.0 && b < g / 5.0,
        "generator {g}, baseline {b}:\n{fid}"
    );
    // Seeded: the same command prints the same scores.
    assert_eq!(
        fid.lines().take(4).collect::<Vec<_>>(),
        eval("fid").lines().take(4).collect::<Vec<_>>()
    );

    let kid = eval("kid");
    let g = numbers(&kid, "generator:", "KID");
    let b = numbers(&kid, "real-vs-real baseline:", "KID");
    assert_eq!((g.len(), b.len()), (2, 2), "{kid}");
    // Unbiased: the real sets' estimate is near 0 on the generator's scale.
    assert!(g[0] > 0.0 && b[0].abs() < g[0] / 20.0, "{kid}");

    let pr = eval("pr");
    let g = numbers(&pr, "generator:", "precision");
    let b = numbers(&pr, "real-vs-real baseline:", "precision");
    assert!((0.0..=1.0).contains(&g[0]), "{pr}");
    // Real digits cover each other's manifolds.
    assert!(b[0] > 0.6, "{pr}");
    let b_recall = numbers(&pr, "real-vs-real baseline:", "recall")[0];
    let g_recall = numbers(&pr, "generator:", "recall")[0];
    assert!(b_recall > 0.6 && g_recall < b_recall, "{pr}");

    // Which digits it draws: ten class rows whose shares sum to 100% in both columns, the
    // held-out digits' close to a tenth each, and the summary lines agreeing with the rows.
    let classes = eval("classes");
    let rows: Vec<Vec<f64>> = classes
        .lines()
        .filter(|l| l.starts_with("  ") && l.trim_start().chars().next().unwrap().is_ascii_digit())
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(|w| w.trim_end_matches('%').parse().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 10, "{classes}");
    for col in 0..2 {
        let sum: f64 = rows.iter().map(|r| r[col]).sum();
        assert!(
            (sum - 100.0).abs() < 0.6,
            "column {col} sums to {sum}:\n{classes}"
        );
    }
    assert!(
        rows.iter().all(|r| (6.0..15.0).contains(&r[1])),
        "{classes}"
    );
    let drawn = rows.iter().filter(|r| r[0] >= 1.0).count();
    assert!(
        classes.contains(&format!(
            "classes drawn (≥ 1% of samples): {drawn} of 10 (held out: 10)"
        )),
        "{classes}"
    );
    // Legibility: G's figures and the held-out digits' beside them; real digits are legible.
    let line = classes
        .lines()
        .find(|l| l.starts_with("legible (top-class p ≥ 0.9 and on the training digits' feature"))
        .unwrap_or_else(|| panic!("no legibility line:\n{classes}"));
    let pct: Vec<f64> = line
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.parse().ok())
        .collect();
    // [0.9, G's %, held-out %]
    assert_eq!(pct.len(), 3, "{line}");
    assert!((0.0..=100.0).contains(&pct[1]), "{line}");
    assert!(pct[2] > 85.0, "held-out digits are legible: {line}");
    let conf = numbers(&classes, "mean top-class probability:", "probability:");
    assert!((0.1..=1.0).contains(&conf[0]), "{classes}");
    let kl = numbers(&classes, "KL(classes", "uniform):")[0];
    assert!((0.0..=2.3027).contains(&kl), "{classes}");
    let held: f64 = classes.split("nats (held out: ").nth(1).unwrap()[..6]
        .parse()
        .unwrap();
    assert!(
        held < 0.02,
        "held-out digits are nearly balanced: {classes}"
    );
}

#[test]
fn runs_that_are_not_1x28x28_are_refused_in_one_line() {
    let stacked = tmp("stacked-refused");
    train(&stacked, &["--dataset", "stacked-mnist"]);
    for metric in ["fid", "kid", "pr"] {
        let err = fails(&["eval", metric, "--run", s(&stacked), "--backend", "cpu"]);
        assert!(
            err.contains("3×28×28") && err.contains("duel eval modes"),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    let ring = tmp("ring8-refused");
    ok(&[
        "train",
        "--dataset",
        "ring8",
        "--steps",
        "10",
        "--batch",
        "32",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        s(&ring),
    ]);
    let err = fails(&["eval", "fid", "--run", s(&ring), "--backend", "cpu"]);
    assert!(err.contains("2D points"), "{err}");
    // --eval-every cannot measure a 2D set: refused before anything is written.
    let never = tmp("ring8-eval-every");
    let err = fails(&[
        "train",
        "--dataset",
        "ring8",
        "--steps",
        "10",
        "--eval-every",
        "5",
        "--backend",
        "cpu",
        "--out",
        s(&never),
    ]);
    assert!(err.contains("--eval-every"), "{err}");
    assert!(!never.join("config.toml").exists());
}

#[test]
fn stacked_mnist_modes_with_the_papers_table() {
    let run = tmp("stacked");
    train(&run, &["--dataset", "stacked-mnist"]);
    let args = [
        "eval",
        "modes",
        "--run",
        s(&run),
        "--samples",
        "3000",
        "--backend",
        "cpu",
    ];
    let out = ok(&args);
    assert!(
        out.contains("stacked-mnist at iteration 20, 3000 samples"),
        "{out}"
    );
    let real = out.lines().find(|l| l.starts_with("real data")).unwrap();
    let real_modes: f64 = real
        .split_whitespace()
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // 3,000 real images cover ~95% of the 1,000 modes; 20 steps of a GAN cover a handful.
    assert!(real_modes > 900.0, "{out}");
    let line = out.lines().find(|l| l.starts_with("generator ")).unwrap();
    let g_modes: f64 = line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(g_modes < real_modes, "{out}");
    for row in ["DCGAN", "ALI", "Unrolled GAN", "VEEGAN", "PacDCGAN2"] {
        assert!(
            out.lines().any(|l| l.starts_with(row)),
            "no {row} row:\n{out}"
        );
    }
    assert!(out.contains("3.400") && out.contains("0.060"), "{out}");
    assert_eq!(out, ok(&args), "seeded: the same numbers twice");
}

/// The column `name` of a metrics.csv as text fields.
fn column(csv: &str, name: &str) -> Vec<String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let j = header
        .iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| panic!("no {name}: {csv}"));
    lines
        .map(|l| l.split(',').nth(j).unwrap_or("").to_string())
        .collect()
}

#[test]
fn eval_every_logs_fid_and_modes_into_the_metrics_plots_and_tensorboard() {
    let run = tmp("mnist-eval-every");
    let out = train(
        &run,
        &[
            "--preset",
            "mlp",
            "--eval-every",
            "10",
            "--eval-samples",
            "300",
        ],
    );
    assert!(
        out.contains("FID and legibility every --eval-every steps: 300 samples"),
        "{out}"
    );
    assert!(
        out.contains("FID ") && out.contains("| legible ") && out.contains("(300 samples)"),
        "{out}"
    );
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    // Legibility is logged beside FID, at the same steps, as fractions.
    for name in ["legible", "confidence"] {
        let v = column(&csv, name);
        assert_eq!(v.len(), 4, "{csv}");
        assert!(v[0].is_empty() && v[2].is_empty(), "{csv}");
        for x in [&v[1], &v[3]] {
            let x: f64 = x.parse().unwrap();
            assert!((0.0..=1.0).contains(&x), "{name} {x}: {csv}");
        }
    }
    let fid = column(&csv, "fid");
    // Logged at steps 5, 10, 15, 20: measured at 10 and 20 only.
    assert_eq!(fid.len(), 4, "{csv}");
    assert!(fid[0].is_empty() && fid[2].is_empty(), "{csv}");
    for v in [&fid[1], &fid[3]] {
        let v: f64 = v.parse().unwrap();
        assert!(v.is_finite() && v > 0.0, "{csv}");
    }
    // The plot gained a FID panel: three panels make it taller than the two-panel plot.
    let img = image::open(run.join("losses.png")).unwrap();
    let plain = tmp("mnist-plain");
    train(&plain, &["--preset", "mlp"]);
    let two = image::open(plain.join("losses.png")).unwrap();
    assert!(
        img.height() > two.height(),
        "{} vs {}",
        img.height(),
        two.height()
    );
    // TensorBoard has the scalar.
    let events: Vec<u8> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents")
        })
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(
        events.windows(11).any(|w| w == b"metrics/fid"),
        "no metrics/fid scalar"
    );
    // A resumed run may not change what is measured (the columns would not match).
    let err = fails(&["train", "--resume", s(&run), "--eval-every", "5"]);
    assert!(err.contains("--eval-every cannot change"), "{err}");

    let stacked = tmp("stacked-eval-every");
    let out = train(
        &stacked,
        &[
            "--dataset",
            "stacked-mnist",
            "--eval-every",
            "20",
            "--eval-samples",
            "400",
        ],
    );
    assert!(
        out.contains("modes every --eval-every steps: 400 samples"),
        "{out}"
    );
    let csv = std::fs::read_to_string(stacked.join("metrics.csv")).unwrap();
    let modes = column(&csv, "modes");
    let kl = column(&csv, "kl_uniform");
    assert!(modes[..3].iter().all(String::is_empty), "{csv}");
    let (m, k): (f64, f64) = (modes[3].parse().unwrap(), kl[3].parse().unwrap());
    assert!((1.0..=400.0).contains(&m), "{csv}");
    assert!(k > 0.0 && k <= 1000f64.ln() + 1e-6, "{csv}");
}

#[test]
fn eval_classes_of_a_conditional_run_reports_each_class_hit_rate() {
    let run = tmp("mnist-conditional-classes");
    train(&run, &["--preset", "mlp", "--conditional"]);
    let out = ok(&[
        "eval",
        "classes",
        "--run",
        s(&run),
        "--samples",
        "200",
        "--backend",
        "cpu",
    ]);
    let line = out
        .lines()
        .find(|l| l.starts_with("conditional: samples asked for each class"))
        .unwrap_or_else(|| panic!("no per-class line:\n{out}"));
    let rates: Vec<f64> = line
        .split("as it:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .filter_map(|w| w.strip_suffix('%'))
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(rates.len(), 10, "{out}");
    assert!(rates.iter().all(|r| (0.0..=100.0).contains(r)), "{out}");
    let min = rates.iter().cloned().fold(100.0, f64::min);
    assert!(out.contains(&format!("lowest: {min:.1}%")), "{out}");
    // An unconditional run has no such line.
    let plain = tmp("mnist-unconditional-classes");
    train(&plain, &["--preset", "mlp"]);
    let out = ok(&[
        "eval",
        "classes",
        "--run",
        s(&plain),
        "--samples",
        "50",
        "--backend",
        "cpu",
    ]);
    assert!(!out.contains("conditional:"), "{out}");
}

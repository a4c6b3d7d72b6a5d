//! The objectives of issue 11 from the command line: presets and mixed options train, log what
//! their loss makes meaningful, checkpoint spectral norm's vectors under PyTorch's names, resume
//! bit-identically, and refuse combinations that cannot work with one clear line.

mod common;

use common::cli::{TmpPath, ok, refused_in_one_line, s, tmp};
use duel::checkpoint::Checkpoint;
use safetensors::SafeTensors;

const RING8_CPU: [&str; 8] = [
    "--dataset",
    "ring8",
    "--batch",
    "16",
    "--log-every",
    "5",
    "--backend",
    "cpu",
];

/// Trains `extra` on ring8 for 20 steps in one go and in two halves; the checkpoints must agree
/// bit for bit. Returns the uninterrupted run's directory.
fn resume_is_exact(name: &str, extra: &[&str]) -> TmpPath {
    let (a, b) = (
        tmp(&format!("{name}-whole")),
        tmp(&format!("{name}-halves")),
    );
    let base = [&RING8_CPU[..], extra, &["--quiet"]].concat();
    ok(&[&["train", "--steps", "20", "--out", s(&a)], &base[..]].concat());
    ok(&[&["train", "--steps", "10", "--out", s(&b)], &base[..]].concat());
    ok(&["train", "--resume", s(&b), "--steps", "20", "--quiet"]);
    let ca = Checkpoint::load(&a.join("checkpoint.safetensors")).unwrap();
    let cb = Checkpoint::load(&b.join("checkpoint.safetensors")).unwrap();
    assert_eq!(cb.state.iteration, 20);
    assert!(
        ca.state == cb.state,
        "{name}: the resumed run differs from the uninterrupted one"
    );
    a
}

#[test]
fn spectral_norm_in_g_and_d_resumes_exactly_and_checkpoints_pytorch_names() {
    let run = resume_is_exact("sngan", &["--preset", "sngan", "--sn", "both"]);
    let ck = Checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    assert!(
        ck.state.d.state.iter().any(|&v| v != 0.0),
        "spectral norm's u and v are not in the checkpoint"
    );
    let bytes = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    // The small model's D: Linear(4 → 128) (a pack of 2 points), LeakyReLU, Linear(128 → 128),
    // LeakyReLU, Linear(128 → 1); as spectral_norm(nn.Linear) modules of an nn.Sequential.
    for (name, shape) in [
        ("discriminator.0.weight_orig", vec![128, 4]),
        ("discriminator.0.weight_u", vec![128]),
        ("discriminator.0.weight_v", vec![4]),
        ("discriminator.0.bias", vec![128]),
        ("discriminator.4.weight_orig", vec![1, 128]),
        ("discriminator.4.weight_u", vec![1]),
        ("generator.0.weight_orig", vec![128, 8]),
        ("generator_ema.0.weight_orig", vec![128, 8]),
        ("generator_ema.0.weight_u", vec![128]),
    ] {
        let t = st
            .tensor(name)
            .unwrap_or_else(|_| panic!("{name} is missing"));
        assert_eq!(t.shape(), &shape[..], "{name}");
    }
    assert!(st.tensor("discriminator.0.weight").is_err());
    // u is a unit vector, as the power iteration leaves it.
    let u: Vec<f32> =
        bytemuck::pod_collect_to_vec(st.tensor("discriminator.2.weight_u").unwrap().data());
    let norm = u.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "‖u‖ = {norm}");
    // Sampling uses the checkpoint's u and v with the averaged weights.
    let npy = run.join("points.npy");
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--count",
        "50",
        "--out",
        s(&npy),
    ]);
    let (shape, values) = duel::output::read_npy_f32(&npy).unwrap();
    assert_eq!(shape, vec![50, 2]);
    assert!(values.iter().all(|v| v.is_finite()));
}

#[test]
fn wgan_gp_resumes_exactly_and_logs_the_critics_estimate_and_penalty() {
    let run = resume_is_exact("wgan-gp", &["--preset", "wgan-gp", "--n-critic", "2"]);
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column: {header:?}"))
    };
    let last: Vec<f64> = metrics
        .lines()
        .last()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    // The critic's estimate is E[D(x)] − E[D(G(z))]; the penalty is positive.
    let w = last[col("wasserstein")];
    assert!((w - (last[col("d_real")] - last[col("d_fake")])).abs() < 1e-5);
    assert!(last[col("penalty")] > 0.0 && last[col("grad_norm")] > 0.0);
    assert!(col("modes") > col("grad_norm"));
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains("loss = \"wasserstein\"") && cfg.contains("gp = 10"),
        "{cfg}"
    );
    assert!(cfg.contains("k = 2"), "--n-critic sets k: {cfg}");
}

#[test]
fn objective_presets_train_the_dcgan_on_digits_and_the_mlp_on_request() {
    let shape = |run: &std::path::Path, name: &str| {
        let bytes = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        st.tensor(name)
            .unwrap_or_else(|_| panic!("{name} not in {:?}", st.names()))
            .shape()
            .to_vec()
    };
    let fast = [
        "--steps",
        "2",
        "--batch",
        "8",
        "--n-critic",
        "1",
        "--backend",
        "cpu",
        "--quiet",
    ];
    let conv = tmp("wgan-gp-dcgan");
    ok(&[
        &["train", "--preset", "wgan-gp", "--out", s(&conv)],
        &fast[..],
    ]
    .concat());
    let cfg = std::fs::read_to_string(conv.join("config.toml")).unwrap();
    assert!(cfg.contains("model = \"dcgan\""), "{cfg}");
    // D's first layer is DCGAN's 4×4 convolution from 1 channel to 64.
    assert_eq!(shape(&conv, "discriminator.0.weight"), [64, 1, 4, 4]);
    let mlp = tmp("wgan-gp-mlp");
    ok(&[
        &[
            "train",
            "--preset",
            "wgan-gp",
            "--model",
            "mlp",
            "--out",
            s(&mlp),
        ],
        &fast[..],
    ]
    .concat());
    assert_eq!(shape(&mlp, "discriminator.0.weight"), [1024, 784]);
}

#[test]
fn wgan_clipping_and_lsgan_train_and_print_their_quantities() {
    let run = tmp("wgan");
    let out = ok(&[
        &[
            "train",
            "--preset",
            "wgan",
            "--steps",
            "10",
            "--out",
            s(&run),
        ],
        &RING8_CPU[..],
    ]
    .concat());
    assert!(out.contains("W estimate"), "{out}");
    assert!(out.contains("critic loss"), "{out}");
    let ck = Checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    let worst = ck.state.d.params.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    assert!(worst <= 0.01, "a critic weight escaped the clip: {worst}");
    let run = tmp("lsgan");
    let out = ok(&[
        &[
            "train",
            "--preset",
            "lsgan",
            "--steps",
            "10",
            "--out",
            s(&run),
        ],
        &RING8_CPU[..],
    ]
    .concat());
    assert!(
        out.contains("D loss") && !out.contains("W estimate"),
        "{out}"
    );
}

#[test]
fn impossible_combinations_are_refused_up_front() {
    let out = tmp("refused").join("run");
    let o = s(&out);
    let cases: &[(&[&str], &str)] = &[
        (
            &["train", "--preset", "paper", "--gp", "10", "--out", o],
            "Maxout",
        ),
        (
            &["train", "--loss", "wasserstein", "--out", o],
            "--loss wasserstein needs a Lipschitz constraint",
        ),
        (
            &["train", "--preset", "wgan-gp", "--r1", "1", "--out", o],
            "--gp and --r1 are both set",
        ),
        (
            &[
                "train", "--loss", "hinge", "--g-loss", "minimax", "--out", o,
            ],
            "--g-loss minimax belongs to the original loss",
        ),
        (
            &["train", "--gp=-1", "--out", o],
            "--gp must be 0 (off) or positive",
        ),
        (
            &["train", "--preset", "dcgan", "--model", "mlp", "--out", o],
            "drop --model",
        ),
        (
            // --model offers only the models; a config file naming another is refused by name.
            &["train", "--preset", "wgan", "--model", "progan", "--out", o],
            "possible values: mlp, mlp-dropout, small, dcgan, dcgan32, dcgan64",
        ),
    ];
    refused_in_one_line(cases, &out);
    // A config file is checked as the command line is.
    let file = out.with_file_name("wgan-progan.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "preset = \"wgan\"\nmodel = \"progan\"\n").unwrap();
    let cases: &[(&[&str], &str)] = &[(
        &["train", "--config", s(&file), "--out", o],
        "not a network an objective preset can train",
    )];
    refused_in_one_line(cases, &out);
}

#[test]
fn help_names_the_new_options_and_presets() {
    let help = ok(&["train", "--help"]);
    for opt in [
        "--loss",
        "--gp",
        "--r1",
        "--clip",
        "--sn",
        "--n-critic",
        "--model",
        "wgan-gp",
        "sngan",
        "lsgan",
        "ttur",
        "rmsprop",
    ] {
        assert!(help.contains(opt), "train --help lacks {opt}");
    }
}

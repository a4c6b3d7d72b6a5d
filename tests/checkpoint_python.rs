//! Checkpoints a PyTorch/NumPy user can read: the README's Python snippet, run as written on a
//! fresh checkpoint, reproduces `duel sample --z` on the same noise; the tensors carry
//! PyTorch's names and shapes; and `--z` rejects noise of the wrong shape.

mod common;

use common::cli::{fails, ok, s, tmp};
use std::process::Command;

/// The first ```python block after the README's "Using a checkpoint from Python" heading.
fn readme_snippet() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let at = readme
        .find("### Using a checkpoint from Python")
        .expect("the README has the Python section");
    let rest = &readme[at..];
    let start = rest.find("```python\n").expect("a python block") + "```python\n".len();
    let end = rest[start..].find("```").expect("the block ends");
    rest[start..start + end].to_string()
}

fn python(dir: &std::path::Path, code: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .current_dir(dir)
        .output()
        .expect("python3 runs (install it, with numpy and safetensors, to run this test)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "python failed (this test needs numpy and safetensors: python3 -m pip install numpy \
         safetensors):\n{text}"
    );
    text
}

#[test]
fn readme_snippet_reproduces_duel_sample_z() {
    let dir = tmp("snippet");
    let run = dir.join("run");
    ok(&[
        "train",
        "--steps",
        "30",
        "--batch",
        "16",
        "--backend",
        "cpu",
        "--log-every",
        "10",
        "--sample-every",
        "30",
        "--out",
        s(&run),
    ]);
    std::fs::copy(
        run.join("checkpoint.safetensors"),
        dir.join("checkpoint.safetensors"),
    )
    .unwrap();
    // Noise written by NumPy itself, as a user would.
    python(
        &dir,
        "import numpy as np; np.save('z.npy', np.random.default_rng(3).standard_normal((9, 100)).astype(np.float32))",
    );
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--z",
        s(&dir.join("z.npy")),
        "--backend",
        "cpu",
        "--out",
        s(&dir.join("samples_duel.npy")),
    ]);
    python(&dir, &readme_snippet());
    let report = python(
        &dir,
        "import numpy as np\n\
         a = np.load('samples_duel.npy'); b = np.load('samples_numpy.npy')\n\
         assert a.shape == b.shape == (9, 1, 28, 28), (a.shape, b.shape)\n\
         d = float(np.abs(a - b).max()); print('max abs difference', d)\n\
         assert d < 1e-4, d\n\
         assert float(a.std()) > 0.01, 'samples are constant'\n",
    );
    assert!(report.contains("max abs difference"), "{report}");
    // PyTorch's names and shapes, as nn.Sequential's state_dict has them.
    let names = python(
        &dir,
        "from safetensors.numpy import load_file\n\
         t = load_file('checkpoint.safetensors')\n\
         for k in ['generator.0.weight', 'generator_ema.4.weight', 'discriminator.0.weight', 'discriminator.4.bias']:\n\
         \x20   print(k, t[k].shape)\n",
    );
    for line in [
        "generator.0.weight (1024, 100)",
        "generator_ema.4.weight (784, 1024)",
        "discriminator.0.weight (1024, 784)",
        "discriminator.4.bias (1,)",
    ] {
        assert!(names.contains(line), "{line} not in:\n{names}");
    }
    // Noise of the wrong width, or a --count that disagrees with it, is refused.
    python(
        &dir,
        "import numpy as np; np.save('bad.npy', np.zeros((4, 7), np.float32))",
    );
    let err = fails(&[
        "sample",
        "--run",
        s(&run),
        "--z",
        s(&dir.join("bad.npy")),
        "--out",
        s(&dir.join("x.npy")),
    ]);
    assert!(err.contains("[N, 100]"), "{err}");
    let err = fails(&[
        "sample",
        "--run",
        s(&run),
        "--z",
        s(&dir.join("z.npy")),
        "--count",
        "5",
        "--out",
        s(&dir.join("x.npy")),
    ]);
    assert!(err.contains("--count"), "{err}");
}

//! Checkpoints a PyTorch/NumPy user can read: the Python snippet of docs/outputs.md, run as
//! written on a fresh checkpoint, reproduces `duel sample --z` on the same noise; the tensors
//! carry PyTorch's names and shapes; and `--z` rejects noise of the wrong shape.

mod common;

use common::cli::{fails, ok, s, tmp};
use std::process::Command;

/// The first ```python block after the "Using a checkpoint from Python" heading of
/// docs/outputs.md (the page the README links for it).
fn readme_snippet() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/outputs.md")).unwrap();
    let at = readme
        .find("## Using a checkpoint from Python")
        .expect("docs/outputs.md has the Python section");
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
        "--preset",
        "mlp",
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

#[test]
fn a_conditional_generator_is_reproduced_from_its_checkpoint_in_numpy() {
    // The conditional MLP G: [z | E[y]] → Linear → ReLU → Linear → ReLU → Linear → Tanh, with
    // E = generator_ema.0.weight ([classes, classes], nn.Embedding's layout).
    let dir = tmp("conditional");
    let run = dir.join("run");
    ok(&[
        "train",
        "--preset",
        "mlp",
        "--conditional",
        "--steps",
        "20",
        "--batch",
        "16",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let code = r#"
import numpy as np
from safetensors.numpy import load_file
np.save("z.npy", np.random.default_rng(3).standard_normal((6, 100)).astype(np.float32))
"#;
    python(&dir, code);
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--z",
        s(&dir.join("z.npy")),
        "--class",
        "3",
        "--out",
        s(&dir.join("duel.npy")),
        "--backend",
        "cpu",
    ]);
    let check = r#"
import numpy as np
from safetensors.numpy import load_file
t = load_file("run/checkpoint.safetensors")
g = {k.removeprefix("generator_ema."): v for k, v in t.items() if k.startswith("generator_ema.")}
assert g["0.weight"].shape == (10, 10), g["0.weight"].shape
z = np.load("z.npy")
y = np.load("duel_labels.npy")
assert y.dtype == np.int64 and (y == 3).all(), y
h = np.concatenate([z, g["0.weight"][y]], 1)
h = np.maximum(h @ g["1.weight"].T + g["1.bias"], 0)
h = np.maximum(h @ g["3.weight"].T + g["3.bias"], 0)
x = (np.tanh(h @ g["5.weight"].T + g["5.bias"]).reshape(-1, 1, 28, 28) + 1) / 2
d = np.load("duel.npy")
err = np.abs(x - d).max()
assert err < 1e-4, err
other = (np.tanh(np.maximum(np.maximum(np.concatenate([z, g["0.weight"][y * 0]], 1) @ g["1.weight"].T + g["1.bias"], 0) @ g["3.weight"].T + g["3.bias"], 0) @ g["5.weight"].T + g["5.bias"]).reshape(-1, 1, 28, 28) + 1) / 2
assert np.abs(other - d).max() > 1e-3, "the class changes the sample"
print("max error", err)
"#;
    let said = python(&dir, check);
    assert!(said.contains("max error"), "{said}");
}

//! Inception weights: pytorch-fid's state dict (`pt_inception-2015-12-05-6726825d.pth`) as a
//! safetensors file, each BasicConv2d's BatchNorm folded into its convolution for inference:
//! scale = γ / √(var + 0.001) multiplies the weights, shift = β − mean · scale is the bias.

use super::arch::{BN_EPS, ConvSpec, all_convs};
use anyhow::{Context, Result, bail};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// The file pytorch-fid downloads; its name's suffix is the start of its SHA-256.
pub const PTH_NAME: &str = "pt_inception-2015-12-05-6726825d.pth";

/// The command that converts pytorch-fid's .pth into the safetensors file duel reads.
pub const CONVERT: &str = "python3 -c \"import torch, safetensors.torch as s; \
     s.save_file({k: v.float().contiguous() for k, v in torch.load('pt_inception-2015-12-05-6726825d.pth', \
     map_location='cpu').items()}, 'pt_inception-2015-12-05.safetensors')\"";

/// One convolution with its BatchNorm folded in: `w` is [kh·kw·cin, cout] with row
/// (ky·kw + kx)·cin + ci (the patch layout of `kernels::im2col`), `shift` is [cout].
#[derive(Clone, Debug, PartialEq)]
pub struct FoldedConv {
    pub spec: ConvSpec,
    pub w: Vec<f32>,
    pub shift: Vec<f32>,
}

/// Every convolution of the network, in `arch::all_convs` order.
#[derive(Clone, Debug, PartialEq)]
pub struct InceptionWeights {
    pub convs: Vec<FoldedConv>,
}

/// Folds BatchNorm (γ, β, running mean and variance) into the convolution `w` [cout, cin, kh, kw].
pub fn fold(spec: &ConvSpec, w: &[f32], bn: [&[f32]; 4]) -> FoldedConv {
    let [gamma, beta, mean, var] = bn;
    let (cin, cout) = (spec.cin, spec.cout);
    let (kh, kw) = spec.kernel;
    let scale: Vec<f64> = (0..cout)
        .map(|o| gamma[o] as f64 / (var[o] as f64 + BN_EPS).sqrt())
        .collect();
    let mut folded = vec![0.0; kh * kw * cin * cout];
    for o in 0..cout {
        for ci in 0..cin {
            for ky in 0..kh {
                for kx in 0..kw {
                    let v = w[((o * cin + ci) * kh + ky) * kw + kx] as f64 * scale[o];
                    folded[((ky * kw + kx) * cin + ci) * cout + o] = v as f32;
                }
            }
        }
    }
    let shift = (0..cout)
        .map(|o| (beta[o] as f64 - mean[o] as f64 * scale[o]) as f32)
        .collect();
    FoldedConv {
        spec: spec.clone(),
        w: folded,
        shift,
    }
}

impl InceptionWeights {
    /// Builds the network from `tensor(name, shape)`, which returns a state-dict tensor
    /// (`<conv>.conv.weight`, `<conv>.bn.weight`, ...) in PyTorch's layout.
    pub fn from_tensors(
        mut tensor: impl FnMut(&str, &[usize]) -> Result<Vec<f32>>,
    ) -> Result<Self> {
        let mut convs = Vec::new();
        for spec in all_convs() {
            let w = tensor(&format!("{}.conv.weight", spec.name), &spec.weight_shape())?;
            let mut bn = Vec::new();
            for part in ["weight", "bias", "running_mean", "running_var"] {
                bn.push(tensor(&format!("{}.bn.{part}", spec.name), &[spec.cout])?);
            }
            convs.push(fold(&spec, &w, [&bn[0], &bn[1], &bn[2], &bn[3]]));
        }
        Ok(Self { convs })
    }

    /// Reads pytorch-fid's weights converted to safetensors (`CONVERT`).
    pub fn load(path: &Path) -> Result<Self> {
        let how = format!(
            "get pytorch-fid's {PTH_NAME} and convert it with the command in docs/metrics.md"
        );
        let data = std::fs::read(path).with_context(|| {
            format!(
                "{}: cannot read the Inception weights; {how}",
                path.display()
            )
        })?;
        if data.starts_with(b"PK") || data.first() == Some(&0x80) {
            bail!(
                "{} is a PyTorch .pth file; duel reads it converted to safetensors: {CONVERT}",
                path.display()
            );
        }
        let st = SafeTensors::deserialize(&data)
            .with_context(|| format!("{}: not a safetensors file; {how}", path.display()))?;
        Self::from_tensors(|name, shape| {
            let t = st.tensor(name).map_err(|_| {
                anyhow::anyhow!(
                    "{}: tensor {name} is missing, so this is not pytorch-fid's FID Inception; {how}",
                    path.display()
                )
            })?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                bail!(
                    "{}: tensor {name} is {:?} {:?}, pytorch-fid's Inception has F32 {shape:?}; {how}",
                    path.display(),
                    t.dtype(),
                    t.shape()
                );
            }
            Ok(bytemuck::pod_collect_to_vec(t.data()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_matches_batch_norm_after_the_convolution() {
        // A 2×3 kernel, 2 → 3 channels: conv then BN on one patch equals the folded product.
        let spec = ConvSpec {
            name: "t".into(),
            cin: 2,
            cout: 3,
            kernel: (2, 3),
            stride: 1,
            pad: (0, 0),
        };
        let w: Vec<f32> = (0..36).map(|i| (i as f32 * 0.37).sin()).collect();
        let patch: Vec<f32> = (0..12).map(|i| (i as f32 * 0.71).cos()).collect();
        let (g, b, m, v) = (
            [0.9, 1.2, 0.5],
            [0.1, -0.3, 0.0],
            [0.2, -0.1, 0.4],
            [1.5, 0.7, 0.2],
        );
        let f = fold(&spec, &w, [&g, &b, &m, &v]);
        for o in 0..3 {
            // PyTorch's order: w[o, ci, ky, kx]; the patch in im2col's order (ky, kx, ci).
            let mut conv = 0.0f64;
            for ci in 0..2 {
                for ky in 0..2 {
                    for kx in 0..3 {
                        conv += w[((o * 2 + ci) * 2 + ky) * 3 + kx] as f64
                            * patch[(ky * 3 + kx) * 2 + ci] as f64;
                    }
                }
            }
            let bn =
                (conv - m[o] as f64) / (v[o] as f64 + BN_EPS).sqrt() * g[o] as f64 + b[o] as f64;
            let folded: f64 = (0..12)
                .map(|k| f.w[k * 3 + o] as f64 * patch[k] as f64)
                .sum::<f64>()
                + f.shift[o] as f64;
            assert!((bn - folded).abs() < 1e-5, "channel {o}: {bn} vs {folded}");
        }
    }

    #[test]
    fn a_pth_or_missing_file_is_refused_with_the_way_out() {
        let dir = std::env::temp_dir().join(format!("duel-inception-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pth = dir.join(PTH_NAME);
        std::fs::write(&pth, b"PK\x03\x04 not really").unwrap();
        let e = format!("{:#}", InceptionWeights::load(&pth).unwrap_err());
        assert!(
            e.contains("converted to safetensors") && e.contains("save_file"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            InceptionWeights::load(&dir.join("nope")).unwrap_err()
        );
        assert!(e.contains("nope") && e.contains(PTH_NAME), "{e}");
        let empty = safetensors::serialize(
            Vec::<(String, safetensors::tensor::TensorView)>::new(),
            None,
        )
        .unwrap();
        let other = dir.join("other.safetensors");
        std::fs::write(&other, empty).unwrap();
        let e = format!("{:#}", InceptionWeights::load(&other).unwrap_err());
        assert!(e.contains("Conv2d_1a_3x3.conv.weight is missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
